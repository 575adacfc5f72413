//! Bearer credentials as client-go handles them: an inline token, a `tokenFile` (trimmed,
//! re-read once a minute so a rotated file is picked up), or an exec credential plugin run
//! once per process and its answer cached until its `expirationTimestamp`.
//!
//! kube 5 would run an exec plugin three times while building one client (its auth layer, its
//! TLS identity and the client's expiry each call `Auth::try_from`), keeps a `tokenFile`'s
//! trailing newline, and quotes a failing plugin's output. So the user entry kube sees has no
//! token, tokenFile or exec: this module resolves them once and [`Credentials`] adds the header.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kube::config::{AuthInfo, ExecConfig, ExecInteractiveMode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::redact;

/// How often client-go re-reads a token file.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);

const EXEC_V1: &str = "client.authentication.k8s.io/v1";
const EXEC_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// Why a credential could not be obtained: what failed, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialError {
    pub message: String,
    pub hint: String,
}

impl std::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CredentialError {}

/// A client certificate and key an exec plugin returned (PEM).
pub struct ExecIdentity {
    pub certificate_pem: String,
    pub key_pem: String,
}

enum Source {
    Static(String),
    File {
        path: PathBuf,
        token: String,
        read_at: Instant,
        refresh: Duration,
    },
    Exec {
        config: Box<ExecConfig>,
        token: String,
        expires: Option<SystemTime>,
    },
}

/// The bearer token source of a connection; clones share one cache.
#[derive(Clone)]
pub struct Credentials {
    source: Arc<Mutex<Source>>,
}

impl Credentials {
    /// The `Authorization` value for the next request, refreshing an expired source first.
    ///
    /// # Errors
    /// An exec plugin that fails when its cached credential has expired.
    pub async fn authorization(&self) -> Result<String, CredentialError> {
        let mut source = self.source.lock().await;
        match &mut *source {
            Source::Static(token) => Ok(format!("Bearer {token}")),
            Source::File {
                path,
                token,
                read_at,
                refresh,
            } => {
                if read_at.elapsed() >= *refresh {
                    // As client-go: when the re-read fails, the last token read stays in use.
                    if let Ok(text) = std::fs::read_to_string(&*path) {
                        let fresh = text.trim();
                        if !fresh.is_empty() {
                            *token = fresh.to_string();
                        }
                    }
                    *read_at = Instant::now();
                }
                Ok(format!("Bearer {token}"))
            }
            Source::Exec {
                config,
                token,
                expires,
            } => {
                if expires.is_some_and(|at| SystemTime::now() >= at) {
                    let config_copy = config.clone();
                    let answer = tokio::task::spawn_blocking(move || run_exec(&config_copy))
                        .await
                        .map_err(|e| CredentialError {
                            message: format!("exec credential plugin did not finish: {e}"),
                            hint: String::new(),
                        })??;
                    *token = answer.token.unwrap_or_default();
                    *expires = answer.expires;
                }
                Ok(format!("Bearer {token}"))
            }
        }
    }
}

/// Takes the bearer sources out of `auth_info` (so kube does not run them) and resolves them
/// once, as client-go orders them: token, then tokenFile, then the exec plugin unless the user
/// already authenticates with basic auth or a client certificate.
///
/// # Errors
/// An unreadable token file, an exec plugin that is missing, fails or answers nonsense.
pub fn resolve(
    auth_info: &mut AuthInfo,
) -> Result<(Option<Credentials>, Option<ExecIdentity>), CredentialError> {
    use secrecy::ExposeSecret;
    let token = auth_info.token.take();
    let token_file = auth_info.token_file.take();
    let exec = auth_info.exec.take();
    let wrap = |s: Source| {
        Some(Credentials {
            source: Arc::new(Mutex::new(s)),
        })
    };
    if let Some(token) = token.filter(|t| !t.expose_secret().is_empty()) {
        return Ok((wrap(Source::Static(token.expose_secret().to_string())), None));
    }
    if let Some(file) = token_file.filter(|f| !f.is_empty()) {
        let path = PathBuf::from(&file);
        let text = std::fs::read_to_string(&path).map_err(|e| CredentialError {
            message: format!("cannot read the kubeconfig user's tokenFile {file}: {e}"),
            hint: "check the path of tokenFile in the kubeconfig's users entry".into(),
        })?;
        return Ok((
            wrap(Source::File {
                path,
                token: text.trim().to_string(),
                read_at: Instant::now(),
                refresh: TOKEN_FILE_REFRESH,
            }),
            None,
        ));
    }
    let has_basic = auth_info.username.is_some() && auth_info.password.is_some();
    let has_cert = auth_info.client_certificate.is_some() || auth_info.client_certificate_data.is_some();
    if let Some(exec) = exec
        && !has_basic
        && !has_cert
    {
        let answer = run_exec(&exec)?;
        if let (Some(certificate_pem), Some(key_pem)) = (answer.certificate_pem, answer.key_pem) {
            return Ok((
                None,
                Some(ExecIdentity {
                    certificate_pem,
                    key_pem,
                }),
            ));
        }
        let token = answer.token.unwrap_or_default();
        return Ok((
            wrap(Source::Exec {
                config: Box::new(exec),
                token,
                expires: answer.expires,
            }),
            None,
        ));
    }
    Ok((None, None))
}

/// What one plugin run returned.
struct ExecAnswer {
    token: Option<String>,
    certificate_pem: Option<String>,
    key_pem: Option<String>,
    expires: Option<SystemTime>,
}

#[derive(Deserialize)]
struct ExecCredentialOut {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    status: Option<ExecStatusOut>,
}

#[derive(Deserialize)]
struct ExecStatusOut {
    token: Option<String>,
    #[serde(rename = "clientCertificateData")]
    client_certificate_data: Option<String>,
    #[serde(rename = "clientKeyData")]
    client_key_data: Option<String>,
    #[serde(rename = "expirationTimestamp")]
    expiration_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

fn exec_error(command: &str, message: String, hint: &str) -> CredentialError {
    CredentialError {
        message: format!("exec credential plugin \"{command}\": {message}"),
        hint: hint.to_string(),
    }
}

/// Runs the plugin as client-go's exec authenticator does (k8s.io/client-go/plugin/pkg/client/
/// auth/exec/exec.go `refreshCredsLocked`): KUBERNETES_EXEC_INFO in the environment, stdin only
/// in interactive mode, the answer's apiVersion checked. Errors carry the exit code and the
/// plugin's stderr with credentials redacted; never its stdout.
fn run_exec(exec: &ExecConfig) -> Result<ExecAnswer, CredentialError> {
    let command = exec.command.clone().unwrap_or_default();
    let shown = redact::text(&command);
    if command.is_empty() {
        return Err(exec_error(
            "",
            "the kubeconfig's exec entry has no command".into(),
            "set users[].user.exec.command",
        ));
    }
    let api_version = exec.api_version.clone().unwrap_or_default();
    if api_version != EXEC_V1 && api_version != EXEC_V1BETA1 {
        return Err(exec_error(
            &shown,
            format!("unsupported apiVersion \"{}\"", redact::text(&api_version)),
            "use client.authentication.k8s.io/v1 or v1beta1 in the kubeconfig's exec entry",
        ));
    }
    let mode = match (&exec.interactive_mode, api_version.as_str()) {
        (Some(mode), _) => mode.clone(),
        (None, EXEC_V1) => {
            return Err(exec_error(
                &shown,
                "interactiveMode must be specified to use exec authentication plugin (apiVersion v1)".into(),
                "set interactiveMode: Never, IfAvailable or Always in the kubeconfig's exec entry",
            ));
        }
        (None, _) => ExecInteractiveMode::IfAvailable,
    };
    let terminal = std::io::stdin().is_terminal();
    let interactive = match mode {
        ExecInteractiveMode::Never => false,
        ExecInteractiveMode::IfAvailable => terminal,
        ExecInteractiveMode::Always => {
            if !terminal {
                return Err(exec_error(
                    &shown,
                    "interactiveMode is Always but standard input is not a terminal".into(),
                    "run the command from a terminal, or get a credential first (the plugin's login command)",
                ));
            }
            true
        }
    };
    let mut spec = serde_json::json!({ "interactive": interactive });
    if exec.provide_cluster_info
        && let Some(cluster) = &exec.cluster
    {
        spec["cluster"] = serde_json::to_value(cluster).unwrap_or_default();
    }
    let info = serde_json::json!({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec});

    let mut cmd = Command::new(&command);
    cmd.args(exec.args.iter().flatten());
    for pair in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (pair.get("name"), pair.get("value")) {
            cmd.env(name, value);
        }
    }
    for name in exec.drop_env.iter().flatten() {
        cmd.env_remove(name);
    }
    cmd.env("KUBERNETES_EXEC_INFO", info.to_string());
    cmd.stdout(Stdio::piped());
    if interactive {
        cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
    } else {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = exec
                .install_hint
                .as_deref()
                .map(|h| redact::text(h.trim()))
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| {
                    "install the credential plugin named in the kubeconfig's exec entry".into()
                });
            return Err(exec_error(&shown, "executable not found".into(), &hint));
        }
        Err(e) => {
            return Err(exec_error(
                &shown,
                format!("cannot run it: {e}"),
                "check the exec entry's command",
            ));
        }
    };
    if !output.status.success() {
        let code = output
            .status
            .code()
            .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = redact::text(stderr.trim());
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let detail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.into_iter().rev().collect::<Vec<_>>().join(" / "))
        };
        return Err(exec_error(
            &shown,
            format!("failed with {code}{detail}"),
            "run the plugin's login command (e.g. `aws sso login`, `gcloud auth login`) or check its configuration",
        ));
    }
    let parsed: ExecCredentialOut = serde_json::from_slice(&output.stdout).map_err(|e| {
        exec_error(
            &shown,
            format!(
                "its output is not an ExecCredential (invalid JSON at line {}, column {})",
                e.line(),
                e.column()
            ),
            "check the plugin's version: it must print an ExecCredential on stdout",
        )
    })?;
    if parsed.kind.as_deref() != Some("ExecCredential") {
        return Err(exec_error(
            &shown,
            "its output is not of kind ExecCredential".into(),
            "check the plugin's version",
        ));
    }
    let returned = parsed.api_version.unwrap_or_default();
    if returned != api_version {
        return Err(exec_error(
            &shown,
            format!(
                "it is configured to use API version {api_version}, but returned {}",
                redact::text(&returned)
            ),
            "set the kubeconfig exec entry's apiVersion to the one the plugin speaks",
        ));
    }
    let status = parsed.status.ok_or_else(|| {
        exec_error(
            &shown,
            "its ExecCredential has no status".into(),
            "check the plugin's version",
        )
    })?;
    let expires = status.expiration_timestamp.map(|t| SystemTime::from(t.0));
    let token = status.token.filter(|t| !t.is_empty());
    let pair = status.client_certificate_data.zip(status.client_key_data);
    if token.is_none() && pair.is_none() {
        return Err(exec_error(
            &shown,
            "it returned neither a token nor a client certificate and key".into(),
            "check the plugin's configuration",
        ));
    }
    let (certificate_pem, key_pem) = pair.map_or((None, None), |(c, k)| (Some(c), Some(k)));
    Ok(ExecAnswer {
        token,
        certificate_pem,
        key_pem,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_files_are_trimmed_and_re_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let credentials = Credentials {
            source: Arc::new(Mutex::new(Source::File {
                path: path.clone(),
                token: "first".into(),
                read_at: Instant::now(),
                refresh: Duration::ZERO,
            })),
        };
        assert_eq!(credentials.authorization().await.unwrap(), "Bearer first");
        std::fs::write(&path, "  second \n").unwrap();
        assert_eq!(credentials.authorization().await.unwrap(), "Bearer second");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            credentials.authorization().await.unwrap(),
            "Bearer second",
            "a vanished file keeps the last token, as client-go"
        );
    }

    #[test]
    fn resolve_reads_a_token_file_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let mut info = AuthInfo {
            token_file: Some(path.display().to_string()),
            ..AuthInfo::default()
        };
        let (credentials, identity) = resolve(&mut info).unwrap();
        assert!(identity.is_none() && info.token_file.is_none());
        let header = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(credentials.unwrap().authorization())
            .unwrap();
        assert_eq!(header, "Bearer abc");
    }

    #[test]
    fn a_missing_plugin_shows_the_install_hint() {
        let mut info = AuthInfo {
            exec: Some(ExecConfig {
                api_version: Some(EXEC_V1BETA1.into()),
                command: Some("orchscale-no-such-plugin".into()),
                args: None,
                env: None,
                drop_env: None,
                install_hint: Some("brew install the-plugin".into()),
                interactive_mode: Some(ExecInteractiveMode::Never),
                provide_cluster_info: false,
                cluster: None,
                other: Default::default(),
            }),
            ..AuthInfo::default()
        };
        let Err(err) = resolve(&mut info) else {
            panic!("a missing plugin is an error")
        };
        assert!(err.message.contains("not found"), "{}", err.message);
        assert_eq!(err.hint, "brew install the-plugin");
    }
}
