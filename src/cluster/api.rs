//! Thin API helpers on [`Cluster`]: get, list, patch, metrics; kube errors mapped to [`Error`].
//!
//! These make no decisions. Writes carry the field manager `kubectl-orchscale` and honour
//! `--dry-run` (server-side `dryRun=All`).

use std::fmt::Debug;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};
use serde::Serialize;

use super::{Cluster, Object};
use crate::error::Error;

/// Field manager of every write, so `managedFields` shows who changed what.
pub const FIELD_MANAGER: &str = "kubectl-orchscale";

/// Longest wait for a single non-watch request; a server that accepts and never answers
/// must not hang the CLI.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for the answer to a write. Shorter than [`REQUEST_TIMEOUT`]: a write left
/// unanswered is settled by reading the object back (see `commands::write`), which beats waiting.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps a kube error into ours, naming what we tried to do and the server when unreachable.
///
/// This is the one place where an HTTP status becomes an [`Error`]; kube's error stays
/// attached as its source.
pub fn map_error(error: kube::Error, action: &str, server: &str) -> Error {
    let mapped = match &error {
        kube::Error::Api(status) => Error::Api {
            action: action.to_string(),
            status: Some(status.code),
            message: if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            },
            source: None,
        },
        kube::Error::HyperError(e) => transport_error(e, action, server),
        kube::Error::Service(e) => transport_error(e.as_ref(), action, server),
        other => Error::Api {
            action: action.to_string(),
            status: None,
            message: other.to_string(),
            source: None,
        },
    };
    mapped.with_source(error)
}

/// A transport failure: connect errors mean the server is unreachable; the rest is reported
/// with the innermost cause, which names the problem (refused, TLS, timeout) without secrets.
fn transport_error(error: &(dyn std::error::Error + 'static), action: &str, server: &str) -> Error {
    let mut innermost = error.to_string();
    let mut connect = false;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        // hyper-util says "client error (Connect)" for any failure to establish the connection
        // (DNS, TCP, TLS); a connection dropped later is not "unreachable".
        if text.contains("(Connect)") || text.contains("tcp connect error") || text.contains("dns error") {
            connect = true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
            )
        {
            connect = true;
        }
        innermost = text;
        current = e.source();
    }
    // hyper-timeout's connect timeout surfaces as tokio's bare "deadline has elapsed".
    if innermost == "deadline has elapsed" {
        connect = true;
        innermost = "no TLS connection within the connect timeout (the server does not answer)".to_string();
    }
    if connect {
        Error::Unreachable {
            server: server.to_string(),
            detail: innermost,
            source: None,
        }
    } else {
        Error::Api {
            action: action.to_string(),
            status: None,
            message: format!("{innermost} (server {server})"),
            source: None,
        }
    }
}

/// A write, bounded by [`WRITE_TIMEOUT`]: no answer in time is [`Error::NoAnswer`], not
/// "unreachable", since the request may have been stored.
async fn bounded_write<T>(
    action: &str,
    server: &str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(WRITE_TIMEOUT, fut).await {
        Ok(result) => result.map_err(|e| map_error(e, action, server)),
        Err(_) => Err(Error::NoAnswer {
            action: action.to_string(),
            after: format!("{}s", WRITE_TIMEOUT.as_secs()),
        }),
    }
}

pub(super) async fn bounded<T>(
    action: &str,
    server: &str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(result) => result.map_err(|e| map_error(e, action, server)),
        Err(_) => Err(Error::Unreachable {
            server: server.to_string(),
            detail: format!("no answer within {}s to: {action}", REQUEST_TIMEOUT.as_secs()),
            source: None,
        }),
    }
}

/// The short kind name used in messages, e.g. `deployment`.
pub fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_lowercase()
}

impl Cluster {
    /// A namespaced API in the command's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Object,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Reads one object; a missing object is [`Error::NotFound`] with `hint`.
    ///
    /// # Errors
    /// NotFound, API and transport errors.
    pub async fn get<K>(&self, name: &str, hint: &str) -> Result<K, Error>
    where
        K: Object,
    {
        self.get_opt(name).await?.ok_or_else(|| Error::NotFound {
            kind: kind_of::<K>(),
            name: name.to_string(),
            namespace: self.namespace.clone(),
            hint: hint.to_string(),
        })
    }

    /// Reads one object, `None` when it does not exist.
    ///
    /// # Errors
    /// API and transport errors.
    pub async fn get_opt<K>(&self, name: &str) -> Result<Option<K>, Error>
    where
        K: Object,
    {
        let action = format!("get {} {}/{name}", kind_of::<K>(), self.namespace);
        bounded(&action, &self.server, self.api::<K>().get_opt(name)).await
    }

    /// Lists objects matching a label selector (empty: all).
    ///
    /// # Errors
    /// API and transport errors.
    pub async fn list<K>(&self, label_selector: &str) -> Result<Vec<K>, Error>
    where
        K: Object,
    {
        let action = format!("list {} in {}", kind_of::<K>(), self.namespace);
        let mut params = ListParams::default();
        if !label_selector.is_empty() {
            params = params.labels(label_selector);
        }
        let list = bounded(&action, &self.server, self.api::<K>().list(&params)).await?;
        Ok(list.items)
    }

    /// Patch parameters of every write: our field manager, dry run when asked.
    pub fn patch_params(dry_run: bool) -> PatchParams {
        let mut params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        if dry_run {
            params = params.dry_run();
        }
        params
    }

    /// Patches an object (merge, strategic or JSON patch).
    ///
    /// # Errors
    /// API errors (409 Conflict included: see [`is_conflict`]) and transport errors.
    pub async fn patch<K, P>(&self, name: &str, patch: &Patch<P>, dry_run: bool) -> Result<K, Error>
    where
        K: Object,
        P: Serialize + Debug,
    {
        let action = format!("patch {} {}/{name}", kind_of::<K>(), self.namespace);
        let api = self.api::<K>();
        bounded_write(
            &action,
            &self.server,
            api.patch(name, &Self::patch_params(dry_run), patch),
        )
        .await
    }

    /// Creates an object (e.g. `hpa --create`), with our field manager and `--dry-run`.
    ///
    /// # Errors
    /// API errors (409 AlreadyExists included) and transport errors.
    pub async fn create<K>(&self, object: &K, dry_run: bool) -> Result<K, Error>
    where
        K: Object,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let action = format!("create {} {}/{name}", kind_of::<K>(), self.namespace);
        let params = PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_string()),
        };
        bounded_write(&action, &self.server, self.api::<K>().create(&params, object)).await
    }

    /// Deletes an object (`undo` of `hpa --create`), with a resourceVersion precondition when
    /// given (a 409 then says it changed since it was read) and `--dry-run`.
    ///
    /// # Errors
    /// API errors (404, 409 included) and transport errors.
    pub async fn delete<K>(
        &self,
        name: &str,
        resource_version: Option<&str>,
        dry_run: bool,
    ) -> Result<(), Error>
    where
        K: Object,
    {
        let action = format!("delete {} {}/{name}", kind_of::<K>(), self.namespace);
        let params = DeleteParams {
            dry_run,
            preconditions: resource_version.map(|rv| Preconditions {
                resource_version: Some(rv.to_string()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        bounded_write(&action, &self.server, self.api::<K>().delete(name, &params))
            .await
            .map(|_| ())
    }

    /// Sends a raw GET and returns the body as text (e.g. a health endpoint through the
    /// service proxy). Non-2xx answers are [`Error::Api`] with their status code.
    ///
    /// # Errors
    /// API and transport errors.
    pub async fn get_raw_text(&self, path: &str) -> Result<String, Error> {
        let action = format!("get {path}");
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| Error::failed(format!("bad request path {path}: {e}"), "this is a bug"))?;
        bounded(&action, &self.server, self.client.request_text(request)).await
    }
}

/// The name of an object, for messages.
pub fn name_of<K: ResourceExt>(object: &K) -> String {
    object.name_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_recognised() {
        let conflict = Error::Api {
            action: "patch".into(),
            status: Some(409),
            message: "the object has been modified".into(),
            source: None,
        };
        assert!(conflict.is_conflict());
        assert!(!Error::failed("x", "y").is_conflict());
    }

    #[test]
    fn api_errors_keep_code_and_message() {
        let status =
            kube::core::Status::failure("deployments.apps \"x\" is forbidden", "Forbidden").with_code(403);
        let mapped = map_error(
            kube::Error::Api(Box::new(status)),
            "patch deployment",
            "https://s",
        );
        assert!(mapped.is_forbidden());
        let cause = std::error::Error::source(&mapped).expect("kube's error is kept as the source");
        assert!(cause.to_string().contains("forbidden"), "{cause}");
        match mapped {
            Error::Api { status, message, .. } => {
                assert_eq!(status, Some(403));
                assert!(message.contains("forbidden"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[derive(Debug)]
    struct Elapsed;
    impl std::fmt::Display for Elapsed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("deadline has elapsed")
        }
    }
    impl std::error::Error for Elapsed {}

    #[test]
    fn connect_timeouts_are_unreachable_servers() {
        match map_error(
            kube::Error::Service(Box::new(Elapsed)),
            "get x",
            "https://10.0.0.1:6443",
        ) {
            Error::Unreachable { server, detail, .. } => {
                assert_eq!(server, "https://10.0.0.1:6443");
                assert!(detail.contains("connect timeout"), "{detail}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refused_connections_are_unreachable_servers() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = map_error(
            kube::Error::Service(Box::new(refused)),
            "get x",
            "https://127.0.0.1:1",
        );
        match err {
            Error::Unreachable { server, .. } => assert_eq!(server, "https://127.0.0.1:1"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
