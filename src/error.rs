//! The one error type of the plugin, its exit codes (SPEC "Exit codes") and its hints.
//!
//! Every error is shown as one line saying what failed, plus a hint line saying what to do.
//! Messages never carry tokens, keys or certificates: they are built from names, URLs and
//! the API server's own status messages only.

use crate::plan::PlanError;

/// Exit code: done, and verified.
pub const EXIT_OK: i32 = 0;
/// Exit code: failed (API error, rollout failed or timed out, a check failed).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: invalid usage or input; nothing was written.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: not confirmed; nothing was written.
pub const EXIT_NOT_CONFIRMED: i32 = 3;
/// Exit code: interrupted (Ctrl-C).
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input refused before any write.
    #[error("{message}")]
    Usage { message: String, hint: String },

    /// `--context` (or current-context) names a context the kubeconfig does not have.
    #[error("context \"{context}\" not found in the kubeconfig")]
    UnknownContext { context: String, available: Vec<String> },

    /// The kubeconfig could not be read or is incomplete.
    #[error("{message}")]
    Kubeconfig { message: String, hint: String },

    /// The API server could not be reached at all.
    #[error("cannot reach the Kubernetes API server at {server}: {detail}")]
    Unreachable {
        server: String,
        detail: String,
        /// kube's error, kept for `-v` and for callers that look at the cause.
        #[source]
        source: Option<Box<kube::Error>>,
    },

    /// A write got no answer within the write timeout (it may still have been stored: the
    /// write step reads the object back to settle that).
    #[error("no answer within {after} to: {action}")]
    NoAnswer { action: String, after: String },

    /// A write's answer was lost and the object could not be read back: whether it was stored
    /// is unknown.
    #[error(
        "{action}: the answer was lost ({cause}) and reading the object back failed too ({read_back}): whether the change was stored is unknown"
    )]
    OutcomeUnknown {
        action: String,
        cause: String,
        read_back: String,
    },

    /// The API server answered with an error.
    #[error("failed to {action}: {message}")]
    Api {
        action: String,
        /// The HTTP status the server answered with; `None` when no answer came.
        status: Option<u16>,
        message: String,
        /// kube's error, kept for `-v` and for callers that look at the cause.
        #[source]
        source: Option<Box<kube::Error>>,
    },

    /// An object the command needs does not exist.
    #[error("{kind} \"{name}\" not found in namespace {namespace}")]
    NotFound {
        kind: String,
        name: String,
        namespace: String,
        hint: String,
    },

    /// The SelfSubjectAccessReview preflight found a write the user may not make.
    #[error("missing permission: {verb} {resource} in namespace {namespace}")]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
    },

    /// A rollout or a verification failed.
    #[error("{message}")]
    Failed { message: String, hint: String },

    /// `--timeout` passed before the rollout completed.
    #[error("timed out after {after} waiting for {what}")]
    Timeout {
        what: String,
        after: String,
        applied: String,
        /// Pods were waiting for nodes a node autoscaler is adding (`TriggeredScaleUp`): the
        /// change is sound, so `--rollback-on-failure` keeps it.
        waiting_for_nodes: bool,
    },

    /// The user declined, or there was no terminal to ask and no `--yes`.
    #[error("{message}")]
    NotConfirmed { message: String, hint: String },

    /// Ctrl-C during a wait.
    #[error("interrupted: {applied}")]
    Interrupted { applied: String },

    /// `diff` found differences: exit 1 as `kubectl diff`, the preview being the output (no
    /// error line).
    #[error("{count} field(s) differ from the profile")]
    Differences { count: usize },
}

impl Error {
    /// Whether `--rollback-on-failure` keeps the change after this failure: Ctrl-C (the user
    /// stopped watching, not the rollout), or a timeout while pods wait for the nodes a node
    /// autoscaler is adding (the change is sound; the cluster is growing for it).
    pub fn keeps_change(&self) -> bool {
        matches!(
            self,
            Error::Interrupted { .. }
                | Error::Timeout {
                    waiting_for_nodes: true,
                    ..
                }
        )
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn failed(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Failed {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The same error with kube's error as its source (API and transport errors only).
    pub fn with_source(self, cause: kube::Error) -> Self {
        match self {
            Error::Api {
                action,
                status,
                message,
                ..
            } => Error::Api {
                action,
                status,
                message,
                source: Some(Box::new(cause)),
            },
            Error::Unreachable { server, detail, .. } => Error::Unreachable {
                server,
                detail,
                source: Some(Box::new(cause)),
            },
            other => other,
        }
    }

    /// The HTTP status the API server answered with, if this is its answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => *status,
            _ => None,
        }
    }

    /// A 403 from the API server: the user may not do it.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// A 409 Conflict: the object changed since it was read (or already exists).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// The process exit code for this error, per the SPEC's table.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } | Error::UnknownContext { .. } => EXIT_USAGE,
            Error::NotConfirmed { .. } => EXIT_NOT_CONFIRMED,
            Error::Interrupted { .. } => EXIT_INTERRUPTED,
            Error::Kubeconfig { .. }
            | Error::Unreachable { .. }
            | Error::NoAnswer { .. }
            | Error::OutcomeUnknown { .. }
            | Error::Api { .. }
            | Error::NotFound { .. }
            | Error::Forbidden { .. }
            | Error::Failed { .. }
            | Error::Timeout { .. }
            | Error::Differences { .. } => EXIT_FAILED,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            Error::Usage { hint, .. }
            | Error::Kubeconfig { hint, .. }
            | Error::NotFound { hint, .. }
            | Error::Failed { hint, .. }
            | Error::NotConfirmed { hint, .. } => hint.clone(),
            Error::UnknownContext { available, .. } => {
                if available.is_empty() {
                    "the kubeconfig has no contexts; check --kubeconfig / $KUBECONFIG".to_string()
                } else {
                    format!("contexts in the kubeconfig: {}", available.join(", "))
                }
            }
            Error::Unreachable { detail, .. } if detail.contains("certificate") => {
                "TLS verification failed: check the server URL and certificate-authority(-data) of the \
                 kubeconfig's cluster (verification is never skipped unless the kubeconfig says so)"
                    .to_string()
            }
            Error::Unreachable { .. } => {
                "check the network, VPN and that the cluster is up (`kubectl cluster-info`), \
                 or pick another --context"
                    .to_string()
            }
            Error::NoAnswer { .. } => {
                "the API server is slow or overloaded: check the object with `kubectl orchscale status` \
                 before running the command again"
                    .to_string()
            }
            Error::OutcomeUnknown { .. } => {
                "check the object with `kubectl orchscale status` once the API server answers; \
                 running the command again is safe (it changes only what is not yet set)"
                    .to_string()
            }
            Error::Api { status, .. } => match status {
                Some(401) => "your credentials were refused: log in again or refresh the token".to_string(),
                Some(403) => "ask a cluster admin for the permission, or use another --context".to_string(),
                Some(409) => "the object kept changing under us: run the command again".to_string(),
                Some(422) | Some(400) => "the API server refused the value: check the input".to_string(),
                _ => "run again with -v for details; the API server may be overloaded".to_string(),
            },
            Error::Forbidden {
                verb,
                resource,
                namespace,
            } => format!(
                "nothing was written; check with `kubectl auth can-i {verb} {resource} -n {namespace}` \
                 and ask a cluster admin for the role"
            ),
            Error::Timeout {
                applied,
                waiting_for_nodes: true,
                ..
            } => format!(
                "{applied}; pods are waiting for nodes a node autoscaler is adding (scale-up \
                 triggered), so the change was kept: check it with `kubectl orchscale status`, \
                 or raise --timeout"
            ),
            Error::Timeout { applied, .. } => format!(
                "{applied}; the rollout continues in the cluster: check it with `kubectl orchscale status`, \
                 or raise --timeout"
            ),
            Error::Interrupted { .. } => {
                "the rollout continues in the cluster: follow it with `kubectl orchscale status`".to_string()
            }
            Error::Differences { .. } => "`kubectl orchscale apply -f` makes these changes".to_string(),
        }
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        Error::Usage {
            message: e.message,
            hint: e.hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_spec_table() {
        assert_eq!(Error::usage("x", "y").exit_code(), 2);
        let unknown = Error::UnknownContext {
            context: "prod".into(),
            available: vec!["a".into()],
        };
        assert_eq!(unknown.exit_code(), 2);
        assert_eq!(Error::failed("x", "y").exit_code(), 1);
        let declined = Error::NotConfirmed {
            message: "x".into(),
            hint: "y".into(),
        };
        assert_eq!(declined.exit_code(), 3);
        assert_eq!(Error::Interrupted { applied: "x".into() }.exit_code(), 130);
    }

    #[test]
    fn unknown_context_hint_names_the_contexts() {
        let e = Error::UnknownContext {
            context: "prod".into(),
            available: vec!["sim".into(), "staging".into()],
        };
        assert!(e.to_string().contains("prod"));
        assert_eq!(e.hint(), "contexts in the kubeconfig: sim, staging");
    }

    #[test]
    fn certificate_failures_get_a_tls_hint() {
        let tls = Error::Unreachable {
            server: "https://x".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
            source: None,
        };
        assert!(tls.hint().contains("certificate-authority"));
        let refused = Error::Unreachable {
            server: "https://x".into(),
            detail: "Connection refused".into(),
            source: None,
        };
        assert!(refused.hint().contains("cluster is up"));
    }

    #[test]
    fn forbidden_names_verb_resource_namespace() {
        let e = Error::Forbidden {
            verb: "patch".into(),
            resource: "deployments/scale".into(),
            namespace: "llm-orchestrator".into(),
        };
        assert_eq!(
            e.to_string(),
            "missing permission: patch deployments/scale in namespace llm-orchestrator"
        );
    }

    #[test]
    fn plan_errors_are_usage_errors() {
        let e: Error = PlanError::new("bad", "fix it").into();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.hint(), "fix it");
    }
}
