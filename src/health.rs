//! Pure health predicates over Deployments, StatefulSets and Pods: is the rollout done,
//! failed (and why), and which pods cannot progress.
//!
//! No I/O: the follower feeds these with objects from watches, tests with hand-built ones.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;

/// Annotation with a Deployment's revision, copied onto each of its ReplicaSets.
pub(crate) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Replica counts of a workload, as its controller reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// spec.replicas.
    pub desired: i32,
    /// Pods of the current template/revision.
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// All pods the controller counts (old ones included).
    pub total: i32,
    /// The controller has seen the latest spec (observedGeneration >= generation).
    pub observed: bool,
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Progressing(Counts),
    Complete(Counts),
    /// It cannot finish on its own: `reason` (e.g. ProgressDeadlineExceeded) and the message.
    Failed {
        reason: String,
        message: String,
    },
}

/// A label that selects pods, e.g. `pod-template-hash=5d8f7c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLabel {
    pub key: &'static str,
    pub value: String,
}

impl PodLabel {
    pub fn matches(&self, pod: &Pod) -> bool {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(self.key))
            .is_some_and(|v| *v == self.value)
    }
}

/// A workload the follower can watch.
pub trait Workload {
    /// Short kind for messages: `deployment`, `statefulset`.
    const KIND: &'static str;
    fn counts(&self) -> Counts;
    fn rollout(&self) -> Rollout;
    /// The label of the pods of the current template, as `kubectl rollout status` judges a
    /// rollout by them: the new ReplicaSet's `pod-template-hash` (the ReplicaSet at the
    /// Deployment's revision), a StatefulSet's `controller-revision-hash` = updateRevision.
    /// `None` until the controller has seen the current spec (before that, the revision named
    /// is the old one) or when the new ReplicaSet is not among `sets`.
    fn current_pods<'a>(&self, sets: impl IntoIterator<Item = &'a ReplicaSet>) -> Option<PodLabel>;
}

fn observed(generation: Option<i64>, observed_generation: Option<i64>) -> bool {
    match (generation, observed_generation) {
        (Some(g), Some(o)) => o >= g,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

impl Workload for Deployment {
    const KIND: &'static str = "deployment";

    fn counts(&self) -> Counts {
        let status = self.status.clone().unwrap_or_default();
        Counts {
            desired: self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            total: status.replicas.unwrap_or(0),
            observed: observed(self.metadata.generation, status.observed_generation),
        }
    }

    /// Complete when the controller observed the spec and updated = ready = available =
    /// desired with no old replicas left; failed on ProgressDeadlineExceeded or ReplicaFailure.
    fn rollout(&self) -> Rollout {
        let n = self.counts();
        let conditions = self
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        // A failure condition counts only once the controller has seen the current spec and the
        // rollout still needs pods: conditions left over from an earlier rollout (or from before
        // a scale-down that needs no new pod) are stale.
        let still_needs_pods = n.updated < n.desired || n.total < n.desired;
        let relevant: &[_] = if n.observed && still_needs_pods {
            &conditions
        } else {
            &[]
        };
        for c in relevant {
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            if c.type_ == "Progressing" && c.status == "False" && reason == "ProgressDeadlineExceeded" {
                return Rollout::Failed { reason, message };
            }
            if c.type_ == "ReplicaFailure" && c.status == "True" {
                let reason = if reason.is_empty() {
                    "ReplicaFailure".to_string()
                } else {
                    reason
                };
                return Rollout::Failed { reason, message };
            }
        }
        let done = n.observed
            && n.updated == n.desired
            && n.ready == n.desired
            && n.available == n.desired
            && n.total == n.desired;
        if done {
            Rollout::Complete(n)
        } else {
            Rollout::Progressing(n)
        }
    }

    fn current_pods<'a>(&self, sets: impl IntoIterator<Item = &'a ReplicaSet>) -> Option<PodLabel> {
        if !self.counts().observed {
            return None;
        }
        let revision = self.metadata.annotations.as_ref()?.get(REVISION_ANNOTATION)?;
        let new_set = sets.into_iter().find(|rs| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                == Some(revision)
        })?;
        let hash = new_set.metadata.labels.as_ref()?.get("pod-template-hash")?;
        Some(PodLabel {
            key: "pod-template-hash",
            value: hash.clone(),
        })
    }
}

impl Workload for StatefulSet {
    const KIND: &'static str = "statefulset";

    fn counts(&self) -> Counts {
        let status = self.status.clone().unwrap_or_default();
        Counts {
            desired: self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            total: status.replicas,
            observed: observed(self.metadata.generation, status.observed_generation),
        }
    }

    /// Complete when every replica runs the update revision ([`statefulset_updated`]) and is
    /// ready.
    fn rollout(&self) -> Rollout {
        let n = self.counts();
        let done = n.observed && statefulset_updated(self) && n.ready == n.desired && n.total == n.desired;
        if done {
            Rollout::Complete(n)
        } else {
            Rollout::Progressing(n)
        }
    }

    fn current_pods<'a>(&self, _sets: impl IntoIterator<Item = &'a ReplicaSet>) -> Option<PodLabel> {
        if !self.counts().observed {
            return None;
        }
        let revision = self.status.as_ref()?.update_revision.clone()?;
        Some(PodLabel {
            key: "controller-revision-hash",
            value: revision,
        })
    }
}

/// Whether the StatefulSet's pods run its update revision. `status.updatedReplicas` counts the
/// pods whose `controller-revision-hash` is updateRevision (pkg/controller/statefulset/
/// stateful_set_control.go `computeReplicaStatus`), whatever the strategy; currentRevision is
/// no guide for OnDelete, which upstream never promotes before 1.36 (stateful_set_utils.go
/// `completeRollingUpdate` is for RollingUpdate only). With a RollingUpdate partition, the
/// ordinals below it keep the old revision, so the ones at or above it are enough, as
/// `kubectl rollout status` says "partitioned roll out complete".
pub fn statefulset_updated(sts: &StatefulSet) -> bool {
    let n = sts.counts();
    let status = sts.status.clone().unwrap_or_default();
    if status.update_revision.is_none() || status.current_revision == status.update_revision {
        return true;
    }
    let strategy = sts.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let partition = strategy
        .filter(|u| u.type_.as_deref() != Some("OnDelete"))
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0);
    n.updated >= n.desired - partition
}

/// A pod that cannot progress on its own, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    /// CrashLoopBackOff, ImagePullBackOff, ErrImagePull, OOMKilled, Unschedulable, ...
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "pod {}: {}", self.pod, self.reason)
        } else {
            write!(f, "pod {}: {} ({})", self.pod, self.reason, self.message)
        }
    }
}

/// Waiting reasons from which a container does not recover without a change.
const STUCK_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Whether a pod is being deleted (scale-down, old ReplicaSet): its state does not matter.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether the pod counts as one of the workload's pods: not being deleted, and not finished
/// (phase Succeeded or Failed, e.g. Evicted). A finished pod stays listed until it is
/// garbage-collected, but its controller has already replaced it.
pub fn is_live(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !is_terminating(pod) && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Why a pod cannot progress, if it cannot.
pub fn pod_problem(pod: &Pod) -> Option<PodProblem> {
    if !is_live(pod) {
        return None;
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let problem = |reason: &str, message: Option<&String>| PodProblem {
        pod: name.clone(),
        reason: reason.to_string(),
        message: message.cloned().unwrap_or_default(),
    };
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in containers {
        let state = cs.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("");
            if STUCK_WAITING.contains(&reason) {
                // A crash loop is most useful with the reason of the last crash (e.g. OOMKilled).
                let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref());
                if reason == "CrashLoopBackOff"
                    && let Some(t) = last
                    && t.reason.as_deref() == Some("OOMKilled")
                {
                    return Some(problem(
                        "OOMKilled",
                        Some(&format!("container {} ran out of memory", cs.name)),
                    ));
                }
                return Some(problem(reason, waiting.message.as_ref()));
            }
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref())
            && t.reason.as_deref() == Some("OOMKilled")
        {
            return Some(problem(
                "OOMKilled",
                Some(&format!("container {} ran out of memory", cs.name)),
            ));
        }
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
    });
    unschedulable.map(|c| problem("Unschedulable", c.message.as_ref()))
}

/// Whether the pod's condition `type_` (Ready, Initialized, ...) is True.
pub fn pod_condition(pod: &Pod, type_: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .is_some_and(|c| c.status == "True")
}

/// Whether the pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod_condition(pod, "Ready")
}

/// Restarts of all containers of the pod.
pub fn pod_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// Why metrics.k8s.io gave no samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotServed {
    /// 404: no metrics-server, so no metrics.k8s.io group at all.
    Absent,
    /// 503: the APIService exists but its backend (metrics-server) is down.
    Unavailable,
}

impl NotServed {
    /// One line for the user, said once by the command.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            NotServed::Absent => {
                "metrics.k8s.io is not served (no metrics-server installed): no CPU/memory usage"
            }
            NotServed::Unavailable => {
                "metrics.k8s.io is unavailable (503: its APIService's backend, metrics-server, is \
                 down): no CPU/memory usage"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "orchestrator", "generation": 2},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "orchestrator"}},
                     "template": {"spec": {"containers": [{"name": "orchestrator"}]}}},
            "status": status
        }))
        .unwrap()
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "orchestrator-abc-1"}, "status": status})).unwrap()
    }

    #[test]
    fn deployment_complete_needs_observed_generation_and_all_counts() {
        let done = deployment(
            json!({"observedGeneration": 2, "replicas": 5, "updatedReplicas": 5,
                                     "readyReplicas": 5, "availableReplicas": 5}),
        );
        assert!(matches!(done.rollout(), Rollout::Complete(_)));
        let stale = deployment(
            json!({"observedGeneration": 1, "replicas": 5, "updatedReplicas": 5,
                                      "readyReplicas": 5, "availableReplicas": 5}),
        );
        assert!(matches!(stale.rollout(), Rollout::Progressing(_)));
        let old_left = deployment(
            json!({"observedGeneration": 2, "replicas": 6, "updatedReplicas": 5,
                                         "readyReplicas": 5, "availableReplicas": 5}),
        );
        assert!(matches!(old_left.rollout(), Rollout::Progressing(_)));
        let counts = old_left.counts();
        assert_eq!((counts.desired, counts.total, counts.ready), (5, 6, 5));
    }

    #[test]
    fn deployment_fails_on_deadline_and_replica_failure() {
        let deadline = deployment(json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"x\" has timed out progressing."}]}));
        assert!(
            matches!(deadline.rollout(), Rollout::Failed { reason, .. } if reason == "ProgressDeadlineExceeded")
        );
        let quota = deployment(json!({"observedGeneration": 2, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
             "message": "pods \"x\" is forbidden: exceeded quota: compute"}]}));
        match quota.rollout() {
            Rollout::Failed { reason, message } => {
                assert_eq!(reason, "FailedCreate");
                assert!(message.contains("exceeded quota"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stale_failure_conditions_are_ignored() {
        let quota =
            json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"});
        // Not yet observed: the condition may predate the change.
        let unobserved = deployment(
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                                           "conditions": [quota.clone()]}),
        );
        assert!(matches!(unobserved.rollout(), Rollout::Progressing(_)));
        // A scale-down that needs no new pod is not blocked by a failure to create one.
        let enough = deployment(
            json!({"observedGeneration": 2, "replicas": 6, "updatedReplicas": 6,
                                       "readyReplicas": 6, "availableReplicas": 6, "conditions": [quota]}),
        );
        assert!(matches!(enough.rollout(), Rollout::Progressing(_)));
    }

    #[test]
    fn statefulset_complete_when_revisions_match_and_ready() {
        let sts = |current: &str, ready: i32| -> StatefulSet {
            serde_json::from_value(json!({
                "metadata": {"name": "postgres", "generation": 3},
                "spec": {"replicas": 1, "selector": {}, "serviceName": "postgres", "template": {}},
                "status": {"observedGeneration": 3, "replicas": 1, "readyReplicas": ready,
                           "currentRevision": current, "updateRevision": "postgres-2"}
            }))
            .unwrap()
        };
        assert!(matches!(sts("postgres-2", 1).rollout(), Rollout::Complete(_)));
        assert!(matches!(sts("postgres-1", 1).rollout(), Rollout::Progressing(_)));
        assert!(matches!(sts("postgres-2", 0).rollout(), Rollout::Progressing(_)));
    }

    #[test]
    fn partitioned_statefulset_is_complete_when_the_ordinals_above_are_updated() {
        let sts = |updated: i32| -> StatefulSet {
            serde_json::from_value(json!({
                "metadata": {"name": "postgres", "generation": 3},
                "spec": {"replicas": 3, "selector": {}, "serviceName": "postgres", "template": {},
                         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
                "status": {"observedGeneration": 3, "replicas": 3, "readyReplicas": 3,
                           "updatedReplicas": updated,
                           "currentRevision": "postgres-1", "updateRevision": "postgres-2"}
            }))
            .unwrap()
        };
        assert!(matches!(sts(2).rollout(), Rollout::Complete(_)));
        assert!(matches!(sts(1).rollout(), Rollout::Progressing(_)));
    }

    #[test]
    fn crash_loop_and_image_pull_are_problems() {
        let crash = pod(
            json!({"containerStatuses": [{"name": "orchestrator", "image": "i", "imageID": "",
            "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}),
        );
        let p = pod_problem(&crash).unwrap();
        assert_eq!(p.reason, "CrashLoopBackOff");
        assert_eq!(
            p.to_string(),
            "pod orchestrator-abc-1: CrashLoopBackOff (back-off 40s)"
        );
        assert_eq!(pod_restarts(&crash), 4);
        let pull = pod(
            json!({"containerStatuses": [{"name": "orchestrator", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
        );
        assert_eq!(pod_problem(&pull).unwrap().reason, "ImagePullBackOff");
    }

    #[test]
    fn oom_killed_is_named_even_inside_a_crash_loop() {
        let oom = pod(
            json!({"containerStatuses": [{"name": "orchestrator", "image": "i", "imageID": "",
            "ready": false, "restartCount": 2,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}),
        );
        assert_eq!(pod_problem(&oom).unwrap().reason, "OOMKilled");
    }

    #[test]
    fn unschedulable_carries_the_scheduler_message() {
        let p = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        );
        let problem = pod_problem(&p).unwrap();
        assert_eq!(problem.reason, "Unschedulable");
        assert!(problem.message.contains("Insufficient cpu"));
    }

    #[test]
    fn healthy_and_terminating_pods_have_no_problem() {
        let ready = pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(pod_problem(&ready), None);
        assert!(pod_ready(&ready));
        let mut dying = pod(
            json!({"containerStatuses": [{"name": "o", "image": "i", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        dying.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(pod_problem(&dying), None);
        assert!(!pod_ready(&dying));
    }

    #[test]
    fn evicted_and_completed_pods_are_not_live_and_have_no_problem() {
        // An evicted pod stays listed (phase Failed) until garbage-collected; its ReplicaSet
        // has already replaced it, so it is neither one of the replicas nor a stuck rollout.
        let evicted = pod(json!({"phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory.",
            "containerStatuses": [{"name": "o", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}));
        assert!(!is_live(&evicted));
        assert_eq!(pod_problem(&evicted), None);
        let done = pod(json!({"phase": "Succeeded"}));
        assert!(!is_live(&done));
        let running = pod(json!({"phase": "Running"}));
        assert!(is_live(&running));
        let pending = pod(json!({"phase": "Pending"}));
        assert!(is_live(&pending));
    }
}
