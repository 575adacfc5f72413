//! Cluster access: kubeconfig loading and merging, context choice, the kube client.
//!
//! This module tree is the only place that talks to the Kubernetes API. Commands get a
//! [`Cluster`] and call its helpers (api.rs); every decision stays in pure code elsewhere.

pub mod access;
pub mod api;
pub mod connect;
pub mod credentials;
pub(crate) mod http;
pub mod metrics;
pub mod names;
pub mod objects;
pub mod outgoing;
pub mod prometheus;
pub mod proxy;
pub mod redact;
pub mod retry;
pub(crate) mod watch;

use std::path::{Path, PathBuf};

use kube::config::{Kubeconfig, KubeconfigError};

pub use connect::{ConnectOptions, connect};

use crate::error::Error;

/// A namespaced Kubernetes object this tool reads, writes or watches: the bounds kube's typed
/// API needs, named once.
pub trait Object:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<T> Object for T where
    T: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// A connected cluster: the client plus what the banner and the audit trail show.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// Context name from the kubeconfig.
    pub context: String,
    /// API server URL, as written in the kubeconfig.
    pub server: String,
    /// Namespace the command works in (-n).
    pub namespace: String,
    /// The kubeconfig user (auth-info) name, for the audit annotation.
    pub user: Option<String>,
}

/// The context picked from a kubeconfig, before any connection is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextChoice {
    pub context: String,
    pub cluster: String,
    pub server: String,
    pub user: Option<String>,
}

/// Reads the kubeconfig as kubectl does: `--kubeconfig`, else every file of `$KUBECONFIG`
/// merged (the first file to set a name wins), else `~/.kube/config`.
///
/// # Errors
/// [`Error::Kubeconfig`] when no file can be found or a file cannot be parsed.
pub fn load_kubeconfig(
    explicit: Option<&Path>,
    env_value: Option<&std::ffi::OsStr>,
) -> Result<Kubeconfig, Error> {
    if let Some(path) = explicit {
        return read_file(path);
    }
    if let Some(value) = env_value {
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return merge_files(&paths);
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| Error::Kubeconfig {
            message: "no kubeconfig: --kubeconfig and $KUBECONFIG are unset and $HOME is unknown".into(),
            hint: "pass --kubeconfig PATH".into(),
        })?;
    read_file(&home.join(".kube").join("config"))
}

/// Merges the files of a `$KUBECONFIG` list; like kubectl, files that do not exist are skipped.
fn merge_files(paths: &[PathBuf]) -> Result<Kubeconfig, Error> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths.iter().filter(|p| p.exists()) {
        let next = read_file(path)?;
        merged = Some(match merged {
            None => next,
            Some(base) => base.merge(next).map_err(|e| Error::Kubeconfig {
                message: format!("cannot merge kubeconfig {}: {e}", path.display()),
                hint: "check that every file of $KUBECONFIG is a kubeconfig (kind Config, apiVersion v1)"
                    .into(),
            })?,
        });
    }
    merged.ok_or_else(|| Error::Kubeconfig {
        message: format!(
            "no kubeconfig found: none of the files in $KUBECONFIG exist ({})",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        hint: "pass --kubeconfig PATH or fix $KUBECONFIG".into(),
    })
}

fn read_file(path: &Path) -> Result<Kubeconfig, Error> {
    if !path.exists() {
        return Err(Error::Kubeconfig {
            message: format!("kubeconfig {} does not exist", path.display()),
            hint: "pass --kubeconfig PATH or set $KUBECONFIG".into(),
        });
    }
    // kube's parse error quotes the lines around the error (a token among them): only the
    // file, line and column are shown.
    Kubeconfig::read_from(path).map_err(|e| {
        let detail = match &e {
            KubeconfigError::Parse(parse) => match parse.location() {
                Some(at) => format!("invalid YAML at line {}, column {}", at.line(), at.column()),
                None => "invalid YAML".to_string(),
            },
            KubeconfigError::ReadConfig(io, _) => io.to_string(),
            other => redact::text(&other.to_string()),
        };
        Error::Kubeconfig {
            message: format!("cannot read kubeconfig {}: {detail}", path.display()),
            hint: "check the file with `kubectl config view --kubeconfig <file>`".into(),
        }
    })
}

/// Picks the context (`--context`, else current-context) and its cluster server.
///
/// # Errors
/// [`Error::UnknownContext`] (exit 2) naming the contexts that exist;
/// [`Error::Kubeconfig`] when no context is chosen or its cluster is missing.
pub fn select_context(kubeconfig: &Kubeconfig, wanted: Option<&str>) -> Result<ContextChoice, Error> {
    let available: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let name = match wanted.or(kubeconfig.current_context.as_deref()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            return Err(Error::Kubeconfig {
                message: "the kubeconfig has no current-context and --context is not given".into(),
                hint: if available.is_empty() {
                    "the kubeconfig has no contexts".into()
                } else {
                    format!("pass --context; contexts: {}", available.join(", "))
                },
            });
        }
    };
    let Some(named) = kubeconfig.contexts.iter().find(|c| c.name == name) else {
        return Err(Error::UnknownContext {
            context: name,
            available,
        });
    };
    let context = named.context.as_ref();
    let cluster_name = context.map(|c| c.cluster.clone()).unwrap_or_default();
    let user = context.and_then(|c| c.user.clone()).filter(|u| !u.is_empty());
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| Error::Kubeconfig {
            message: format!("context \"{name}\" refers to cluster \"{cluster_name}\", which has no server"),
            hint: "fix the kubeconfig's clusters section".into(),
        })?;
    Ok(ContextChoice {
        context: name,
        cluster: cluster_name,
        server,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: sim
clusters:
- name: sim
  cluster:
    server: https://127.0.0.1:6443
- name: shared
  cluster:
    server: https://first.example:6443
contexts:
- name: sim
  context: {cluster: sim, user: admin}
- name: shared
  context: {cluster: shared, user: admin}
users:
- name: admin
  user: {token: not-a-real-token}
"#;

    const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: shared
  cluster:
    server: https://second.example:6443
- name: staging
  cluster:
    server: https://staging.example:6443
contexts:
- name: staging
  context: {cluster: staging, user: dev}
users:
- name: dev
  user: {token: other}
"#;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn kubeconfig_list_merges_first_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&dir, "a", FIRST);
        let b = write(&dir, "b", SECOND);
        let missing = dir.path().join("missing");
        let list = std::env::join_paths([a, missing, b]).unwrap();
        let kc = load_kubeconfig(None, Some(&list)).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("sim"));
        let names: Vec<_> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["sim", "shared", "staging"]);
        let shared = select_context(&kc, Some("shared")).unwrap();
        assert_eq!(shared.server, "https://first.example:6443");
        let staging = select_context(&kc, Some("staging")).unwrap();
        assert_eq!(staging.user.as_deref(), Some("dev"));
    }

    #[test]
    fn explicit_kubeconfig_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&dir, "a", FIRST);
        let b = write(&dir, "b", SECOND);
        let kc = load_kubeconfig(Some(&b), Some(a.as_os_str())).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("staging"));
    }

    #[test]
    fn current_context_is_the_default() {
        let kc = Kubeconfig::from_yaml(FIRST).unwrap();
        let choice = select_context(&kc, None).unwrap();
        assert_eq!(
            choice,
            ContextChoice {
                context: "sim".into(),
                cluster: "sim".into(),
                server: "https://127.0.0.1:6443".into(),
                user: Some("admin".into()),
            }
        );
    }

    #[test]
    fn unknown_context_lists_the_existing_ones() {
        let kc = Kubeconfig::from_yaml(FIRST).unwrap();
        match select_context(&kc, Some("prod")) {
            Err(Error::UnknownContext { context, available }) => {
                assert_eq!(context, "prod");
                assert_eq!(available, ["sim", "shared"]);
            }
            other => panic!("expected UnknownContext, got {:?}", other.map(|c| c.context)),
        }
    }

    #[test]
    fn missing_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = load_kubeconfig(Some(&missing), None).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
        let err = load_kubeconfig(None, Some(missing.as_os_str())).unwrap_err();
        assert!(err.to_string().contains("none of the files"));
    }
}
