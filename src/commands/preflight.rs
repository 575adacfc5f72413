//! The permission preflight, derived from what a command will do after its first write:
//! the writes themselves, and the reads and watches that follow them.
//!
//! A write or a watch the command cannot do without (following the rollout of the workload
//! it changed) is required: missing, the command stops before writing. A read that only adds
//! detail (the pods of a rollout, Warning events, pod metrics) is optional: missing, the
//! command says which step it skips and goes on (a warning, also in the JSON `warnings`).

use crate::cluster::Cluster;
use crate::cluster::access::{Permission, check_all, is_allowed};
use crate::error::Error;
use crate::follow::{events_not_shown, status_only};
use crate::report::Reporter;

/// A workload whose rollout a command follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }
}

/// Something a command will do against the API once it starts writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// A write: `verb` (patch, create, delete) on `resource` of `group`, by name when known.
    Write {
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        name: Option<&'a str>,
    },
    /// Following the rollout of a workload: its watch, its pods (and ReplicaSets), its events.
    Follow { kind: WorkloadKind, name: &'a str },
    /// Listing the workload's pods to verify them at the end.
    ListPods,
    /// Watching an object after the write for its controller's answer (an HPA's status): what
    /// is lost without it, said when the permission is missing.
    Observe {
        group: &'static str,
        resource: &'static str,
        lost: &'static str,
    },
}

impl<'a> Step<'a> {
    /// A patch of one named object.
    pub(crate) fn patch(group: &'static str, resource: &'static str, name: &'a str) -> Self {
        Step::Write {
            verb: "patch",
            group,
            resource,
            name: Some(name),
        }
    }

    /// What following a rollout to its verified end needs: the follow, then the pod list. A
    /// dry run follows nothing.
    pub(crate) fn rollout(kind: WorkloadKind, name: &'a str, dry_run: bool) -> Vec<Self> {
        if dry_run {
            Vec::new()
        } else {
            vec![Step::Follow { kind, name }, Step::ListPods]
        }
    }
}

/// A permission whose absence skips a step, and what the user loses then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Optional {
    pub permission: Permission,
    /// The warning said when it is missing.
    pub skipped: String,
}

/// The checks a command's steps need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Checks {
    pub required: Vec<Permission>,
    pub optional: Vec<Optional>,
}

impl Checks {
    fn require(&mut self, permission: Permission) {
        if !self.required.contains(&permission) {
            self.required.push(permission);
        }
    }

    fn allow(&mut self, permission: Permission, skipped: String) {
        if !self.optional.iter().any(|o| o.permission == permission) {
            self.optional.push(Optional { permission, skipped });
        }
    }
}

/// The checks for `steps` in namespace `namespace` (pure: what a command will do decides).
pub(crate) fn derive(steps: &[Step<'_>], namespace: &str) -> Checks {
    let mut checks = Checks::default();
    for step in steps {
        match step {
            Step::Write {
                verb,
                group,
                resource,
                name,
            } => checks.require(Permission::new(verb, group, resource, *name)),
            Step::Follow { kind, name } => {
                let object = format!("{}/{name}", kind.kind());
                // kube's watcher lists, then watches; a rollout not watched cannot be followed.
                for verb in ["list", "watch"] {
                    checks.require(Permission::new(verb, "apps", kind.resource(), None));
                }
                let mut feeds = vec![("", "pods")];
                if *kind == WorkloadKind::Deployment {
                    feeds.push(("apps", "replicasets"));
                }
                for (group, resource) in feeds {
                    for verb in ["list", "watch"] {
                        checks.allow(
                            Permission::new(verb, group, resource, None),
                            status_only(kind.kind(), &object, namespace, "forbidden"),
                        );
                    }
                }
                for verb in ["list", "watch"] {
                    checks.allow(
                        Permission::new(verb, "", "events", None),
                        events_not_shown(namespace, "forbidden"),
                    );
                }
            }
            Step::Observe {
                group,
                resource,
                lost,
            } => {
                for verb in ["list", "watch"] {
                    checks.allow(
                        Permission::new(verb, group, resource, None),
                        format!("cannot {verb} {resource} in namespace {namespace} (forbidden): {lost}"),
                    );
                }
            }
            Step::ListPods => checks.allow(
                Permission::new("list", "", "pods", None),
                format!(
                    "cannot list pods in namespace {namespace} (forbidden): the pods are not listed \
                     and the verdict comes from the workload's status"
                ),
            ),
        }
    }
    checks
}

/// Runs the preflight before the first write: a required permission missing is
/// [`Error::Forbidden`] (nothing written); an optional one missing is said once as a warning.
///
/// # Errors
/// [`Error::Forbidden`]; API errors of the access reviews.
pub(crate) async fn preflight(
    cluster: &Cluster,
    reporter: &mut Reporter,
    steps: &[Step<'_>],
) -> Result<(), Error> {
    let checks = derive(steps, &cluster.namespace);
    check_all(cluster, &checks.required).await?;
    for optional in &checks.optional {
        if !is_allowed(cluster, &optional.permission).await? {
            reporter.warn(&optional.skipped);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_following_the_workload_are_required() {
        let checks = derive(
            &[
                Step::Write {
                    verb: "patch",
                    group: "apps",
                    resource: "deployments",
                    name: Some("orchestrator"),
                },
                Step::Follow {
                    kind: WorkloadKind::Deployment,
                    name: "orchestrator",
                },
            ],
            "ns",
        );
        assert_eq!(
            checks.required,
            vec![
                Permission::new("patch", "apps", "deployments", Some("orchestrator")),
                Permission::new("list", "apps", "deployments", None),
                Permission::new("watch", "apps", "deployments", None),
            ]
        );
        let optional: Vec<_> = checks
            .optional
            .iter()
            .map(|o| format!("{} {}", o.permission.verb, o.permission.resource))
            .collect();
        assert_eq!(
            optional,
            [
                "list pods",
                "watch pods",
                "list replicasets",
                "watch replicasets",
                "list events",
                "watch events"
            ]
        );
        assert!(
            checks.optional[5]
                .skipped
                .contains("Warning events are not shown")
        );
    }

    #[test]
    fn statefulsets_have_no_replicasets_and_steps_are_deduplicated() {
        let follow = Step::Follow {
            kind: WorkloadKind::StatefulSet,
            name: "postgres",
        };
        let checks = derive(&[follow.clone(), follow, Step::ListPods], "ns");
        assert!(checks.required.iter().all(|p| p.resource == "statefulsets"));
        assert!(
            !checks
                .optional
                .iter()
                .any(|o| o.permission.resource == "replicasets")
        );
        assert_eq!(
            checks
                .optional
                .iter()
                .filter(|o| o.permission.resource == "pods")
                .count(),
            2,
            "list pods once (ListPods adds nothing new), watch pods once"
        );
    }

    #[test]
    fn a_command_that_follows_nothing_checks_only_its_writes() {
        let checks = derive(
            &[Step::Write {
                verb: "create",
                group: "autoscaling",
                resource: "horizontalpodautoscalers",
                name: None,
            }],
            "ns",
        );
        assert_eq!(checks.required.len(), 1);
        assert!(checks.optional.is_empty());
    }
}
