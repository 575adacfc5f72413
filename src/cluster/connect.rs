//! Connecting as kubectl does: the kubeconfig entry chosen by `--context`/`--cluster`/`--user`,
//! kubectl's connection flags applied on top (as clientcmd's overrides), TLS checked the way
//! client-go checks it, the proxy chosen as client-go chooses it, and the bearer credential
//! resolved once per process ([`credentials`](super::credentials)).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use kube::config::{AuthInfo, Kubeconfig};

use super::credentials::{self, CredentialError};
use super::outgoing::Outgoing;
use super::{Cluster, load_kubeconfig, proxy, redact, retry};
use crate::error::Error;

/// How long connecting to the API server may take before we call it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a connection needs, independent of how the command line spells it.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `--kubeconfig`; else `$KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Kubeconfig cluster entry to use instead of the context's.
    pub cluster: Option<String>,
    /// Kubeconfig user entry to use instead of the context's.
    pub user: Option<String>,
    /// API server URL instead of the cluster entry's.
    pub server: Option<String>,
    /// Bearer token instead of the user entry's credentials.
    pub token: Option<String>,
    pub impersonate: Option<String>,
    pub impersonate_groups: Vec<String>,
    pub impersonate_uid: Option<String>,
    /// Longest wait for one request's answer (watches excepted); `None`: no limit.
    pub request_timeout: Option<Duration>,
    pub insecure_skip_tls_verify: bool,
    pub certificate_authority: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    /// Namespace the command works in.
    pub namespace: String,
    /// kubectl's `-v` level (6: request lines, 7+: request headers).
    pub verbosity: u8,
}

fn kubeconfig_error(message: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Kubeconfig {
        message: message.into(),
        hint: hint.into(),
    }
}

impl From<CredentialError> for Error {
    fn from(e: CredentialError) -> Self {
        kubeconfig_error(e.message, e.hint)
    }
}

/// Builds the client. Nothing is sent yet except an exec credential plugin's run: an
/// unreachable server shows up on the first request, mapped to [`Error::Unreachable`].
///
/// # Errors
/// Kubeconfig, context, TLS, proxy and credential errors, with no secret in the message.
pub async fn connect(options: &ConnectOptions) -> Result<Cluster, Error> {
    let env_value = std::env::var_os("KUBECONFIG");
    let mut kubeconfig = load_kubeconfig(options.kubeconfig.as_deref(), env_value.as_deref())?;
    let target = apply_overrides(&mut kubeconfig, options)?;

    // The bearer credential (and an exec plugin's client certificate) is resolved here, once.
    let mut auth_info = match &target.user {
        Some(user) => kubeconfig
            .auth_infos
            .iter()
            .find(|u| &u.name == user)
            .and_then(|u| u.auth_info.clone())
            .unwrap_or_default(),
        None => AuthInfo::default(),
    };
    if let Some(exec) = &mut auth_info.exec
        && exec.provide_cluster_info
    {
        exec.cluster = (&target.cluster_entry).try_into().ok();
    }
    let (credentials, identity) = credentials::resolve(&mut auth_info)?;
    if let Some(identity) = &identity {
        let b64 = base64::engine::general_purpose::STANDARD;
        auth_info.client_certificate_data = Some(b64.encode(&identity.certificate_pem));
        auth_info.client_key_data = Some(b64.encode(&identity.key_pem).into());
    }

    // The Config is assembled here rather than by kube's loader, which also reads the proxy
    // environment and refuses NO_PROXY values Go accepts (a trailing comma).
    let cluster_url: http::Uri = target.server.parse().map_err(|_| {
        kubeconfig_error(
            format!(
                "the server of cluster \"{}\" ({}) is not a URL",
                target.cluster,
                redact::url(&target.server)
            ),
            "fix the cluster's server in the kubeconfig or pass --server",
        )
    })?;
    let mut config = kube::Config::new(cluster_url);
    config.default_namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
    config.accept_invalid_certs = target.cluster_entry.insecure_skip_tls_verify.unwrap_or(false);
    config.disable_compression = target.cluster_entry.disable_compression.unwrap_or(false);
    config.root_cert = ca_bundle(&target.cluster_entry, &target.cluster)?;
    config.tls_server_name = target.cluster_entry.tls_server_name.clone();
    config.auth_info = auth_info;
    let env = |name: &str| std::env::var(name).ok();
    config.proxy_url =
        proxy::choose(&config.cluster_url, target.proxy_url.as_deref(), &env).map_err(|message| {
            kubeconfig_error(message, "fix the proxy setting (kubectl would refuse it too)")
        })?;
    config.connect_timeout = Some(match options.request_timeout {
        Some(limit) => limit.min(CONNECT_TIMEOUT),
        None => CONNECT_TIMEOUT,
    });
    // Our own retry layer replaces kube's, whose budget (15 attempts, up to 1000 s) is far too
    // long for a CLI.
    config.default_retry = false;
    let outgoing = Outgoing {
        credentials,
        request_timeout: options.request_timeout,
        verbosity: options.verbosity,
        server: config.cluster_url.to_string().trim_end_matches('/').to_string(),
    };
    let client = retry::build_client(config, outgoing).map_err(|e| {
        kubeconfig_error(
            format!(
                "cannot build a client for context \"{}\": {}",
                target.context,
                redact::text(&e.to_string())
            ),
            "check the user's client certificate and key (PEM: PKCS#1, PKCS#8 or EC) and the cluster's CA",
        )
    })?;
    Ok(Cluster {
        client,
        context: target.context,
        server: redact::url(&target.server),
        namespace: options.namespace.clone(),
        user: target.user,
    })
}

/// The entries a connection uses, after the flags.
struct Target {
    context: String,
    cluster: String,
    /// The cluster entry after the flags (its proxy-url taken out).
    cluster_entry: kube::config::Cluster,
    /// The context's namespace (kube's default namespace).
    namespace: Option<String>,
    server: String,
    user: Option<String>,
    /// The cluster entry's `proxy-url`.
    proxy_url: Option<String>,
}

/// Applies kubectl's override flags to the chosen entries, as clientcmd merges them, and
/// refuses what client-go refuses.
fn apply_overrides(kubeconfig: &mut Kubeconfig, options: &ConnectOptions) -> Result<Target, Error> {
    let available: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context_name = match options
        .context
        .as_deref()
        .or(kubeconfig.current_context.as_deref())
    {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            return Err(kubeconfig_error(
                "the kubeconfig has no current-context and --context is not given",
                if available.is_empty() {
                    "the kubeconfig has no contexts".to_string()
                } else {
                    format!("pass --context; contexts: {}", available.join(", "))
                },
            ));
        }
    };
    let Some(named) = kubeconfig.contexts.iter().find(|c| c.name == context_name) else {
        return Err(Error::UnknownContext {
            context: context_name,
            available,
        });
    };
    let context = named.context.clone().unwrap_or_default();
    let cluster_name = options.cluster.clone().unwrap_or(context.cluster.clone());
    let user_name = options
        .user
        .clone()
        .or(context.user.clone())
        .filter(|u| !u.is_empty());

    let Some(cluster_named) = kubeconfig.clusters.iter_mut().find(|c| c.name == cluster_name) else {
        return Err(kubeconfig_error(
            format!("cluster \"{cluster_name}\" (of context \"{context_name}\") not found in the kubeconfig"),
            "fix the kubeconfig's clusters section or pass --cluster",
        ));
    };
    let cluster = cluster_named.cluster.get_or_insert_with(Default::default);
    if let Some(server) = &options.server {
        cluster.server = Some(server.clone());
    }
    if options.insecure_skip_tls_verify {
        // clientcmd: --insecure-skip-tls-verify without a CA flag clears the kubeconfig's CA.
        cluster.insecure_skip_tls_verify = Some(true);
        if options.certificate_authority.is_none() {
            cluster.certificate_authority = None;
            cluster.certificate_authority_data = None;
        }
    }
    if let Some(ca) = &options.certificate_authority {
        cluster.certificate_authority = Some(ca.display().to_string());
        cluster.certificate_authority_data = None;
    }
    if let Some(name) = &options.tls_server_name {
        cluster.tls_server_name = Some(name.clone());
    }
    let has_ca = cluster
        .certificate_authority
        .as_deref()
        .is_some_and(|c| !c.is_empty())
        || cluster
            .certificate_authority_data
            .as_deref()
            .is_some_and(|c| !c.is_empty());
    if cluster.insecure_skip_tls_verify == Some(true) && has_ca {
        // client-go transport.TLSConfigFor refuses this combination with the same words.
        return Err(kubeconfig_error(
            format!(
                "cluster \"{cluster_name}\": specifying a root certificates file with the insecure flag is not allowed"
            ),
            "remove insecure-skip-tls-verify or the certificate-authority from the kubeconfig's cluster",
        ));
    }
    let server = cluster.server.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
        kubeconfig_error(
            format!("context \"{context_name}\" refers to cluster \"{cluster_name}\", which has no server"),
            "fix the kubeconfig's clusters section or pass --server",
        )
    })?;
    let proxy_url = cluster.proxy_url.take();
    let cluster_entry = cluster.clone();

    if let Some(user) = &user_name {
        let Some(user_named) = kubeconfig.auth_infos.iter_mut().find(|u| &u.name == user) else {
            return Err(kubeconfig_error(
                format!("user \"{user}\" (of context \"{context_name}\") not found in the kubeconfig"),
                "fix the kubeconfig's users section or pass --user",
            ));
        };
        let auth = user_named.auth_info.get_or_insert_with(Default::default);
        if let Some(token) = &options.token {
            auth.token = Some(token.clone().into());
        }
        if let Some(user) = &options.impersonate {
            auth.impersonate = Some(user.clone());
        }
        if !options.impersonate_groups.is_empty() {
            auth.impersonate_groups = Some(options.impersonate_groups.clone());
        }
        if let Some(uid) = &options.impersonate_uid {
            auth.impersonate_uid = Some(uid.clone());
        }
        let groups = auth.impersonate_groups.as_ref().is_some_and(|g| !g.is_empty());
        if (groups || auth.impersonate_uid.is_some()) && auth.impersonate.is_none() {
            return Err(Error::usage(
                "requesting uid or groups without impersonating a user",
                "add --as USER to --as-group / --as-uid",
            ));
        }
    } else if options.token.is_some() || options.impersonate.is_some() {
        return Err(kubeconfig_error(
            format!("context \"{context_name}\" has no user to apply --token / --as to"),
            "pass --user NAME",
        ));
    }

    Ok(Target {
        context: context_name,
        cluster: cluster_name,
        cluster_entry,
        namespace: context.namespace.clone(),
        server,
        user: user_name,
        proxy_url,
    })
}

/// The cluster's CA certificates (DER), from certificate-authority-data or the file, as kube's
/// loader reads them; `None` when the cluster names no CA (the system roots apply).
fn ca_bundle(cluster: &kube::config::Cluster, name: &str) -> Result<Option<Vec<Vec<u8>>>, Error> {
    let fail = |what: String| {
        kubeconfig_error(
            format!("cannot load the certificate authority of cluster \"{name}\": {what}"),
            "fix certificate-authority(-data) in the kubeconfig's cluster or pass --certificate-authority",
        )
    };
    let pem_bytes = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) if !data.trim().is_empty() => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| fail("certificate-authority-data is not base64".into()))?,
        (_, Some(path)) if !path.is_empty() => {
            std::fs::read(path).map_err(|e| fail(format!("{path}: {e}")))?
        }
        _ => return Ok(None),
    };
    let certs: Vec<Vec<u8>> = pem::parse_many(&pem_bytes)
        .map_err(|_| fail("not PEM".into()))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE in it".into()));
    }
    Ok(Some(certs))
}
