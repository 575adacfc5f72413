//! The follower's judgement, without I/O: fed with what the watches see, it says where the
//! rollout stands. Pod failures count only for the pods of the current template (the new
//! ReplicaSet, the update revision), as `kubectl rollout status` judges a rollout: the pods of
//! an old ReplicaSet being replaced may crash or be stuck Pending without failing it.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::cluster::api::FIELD_MANAGER;
use crate::cluster::watch::Item;
use crate::health::{self, Counts, PodProblem, Rollout, Workload};

/// Where the rollout stands, from what was seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The workload has not been seen yet.
    Waiting,
    Progressing {
        counts: Counts,
        new_replica_set: Option<String>,
        /// Pods of the current template that are Unschedulable while a node autoscaler works
        /// on them (or may still answer): not a failure yet.
        waiting_for_nodes: Option<NodeWait>,
    },
    Complete {
        counts: Counts,
        new_replica_set: Option<String>,
    },
    Failed(Failure),
}

/// Why the rollout cannot complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The workload was deleted (seen deleted, or missing from a (re-)list).
    Deleted,
    /// spec.replicas moved away from what we set.
    ReplicasChanged { expected: i32, now: i32 },
    /// Pods of the current template that cannot progress.
    Pods(Vec<PodProblem>),
    /// The controller's verdict (ProgressDeadlineExceeded, ReplicaFailure).
    Condition { reason: String, message: String },
}

/// Unschedulable pods of the current template that are not a failure (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeWait {
    /// A node autoscaler answered `TriggeredScaleUp` for them: a node is on its way.
    ScaleUpTriggered(usize),
    /// No autoscaler has answered yet, within [`AUTOSCALER_GRACE`].
    AutoscalerMayAnswer(usize),
}

impl NodeWait {
    /// The progress note.
    pub(crate) fn note(&self) -> String {
        match self {
            NodeWait::ScaleUpTriggered(n) => format!("{n} pod(s) waiting for a node (scale-up triggered)"),
            NodeWait::AutoscalerMayAnswer(n) => {
                format!("{n} pod(s) unschedulable: waiting for a node autoscaler's answer")
            }
        }
    }
}

/// How long an Unschedulable pod waits for a node autoscaler's event before it fails the
/// rollout: Cluster Autoscaler looks for unschedulable pods every `--scan-interval` (10 s by
/// default) and then records `TriggeredScaleUp` or `NotTriggerScaleUp` on each
/// (cluster-autoscaler/processors/status/eventing_scale_up_processor.go).
pub(crate) const AUTOSCALER_GRACE: Duration = Duration::from_secs(10);

/// A node autoscaler's answer for a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ScaleUp {
    Triggered,
    NotTriggered(String),
}

/// What the follower knows of the workload, its ReplicaSets and its pods.
#[derive(Debug)]
pub(crate) struct Tracker<K> {
    name: String,
    expected_replicas: Option<i32>,
    ignored_pod_uids: HashSet<String>,
    workload: Option<K>,
    /// The workload was named by the (re-)list in progress.
    listed: bool,
    deleted: bool,
    pods: BTreeMap<String, Pod>,
    sets: BTreeMap<String, ReplicaSet>,
    /// The latest node autoscaler event per pod name.
    scale_ups: BTreeMap<String, ScaleUp>,
    /// When each pod was first seen Unschedulable.
    unschedulable_since: BTreeMap<String, Instant>,
    /// The follower's clock ([`Tracker::tick`]).
    now: Instant,
}

impl<K: Workload + ResourceExt + Clone> Tracker<K> {
    pub(crate) fn new(name: &str, expected_replicas: Option<i32>, ignored_pod_uids: &[String]) -> Self {
        Tracker {
            name: name.to_string(),
            expected_replicas,
            ignored_pod_uids: ignored_pod_uids.iter().cloned().collect(),
            workload: None,
            listed: false,
            deleted: false,
            pods: BTreeMap::new(),
            sets: BTreeMap::new(),
            scale_ups: BTreeMap::new(),
            unschedulable_since: BTreeMap::new(),
            now: Instant::now(),
        }
    }

    /// How many of the workload's pods are being deleted (within their grace period): still
    /// selected, never counted as replicas.
    pub(crate) fn terminating(&self) -> usize {
        self.pods.values().filter(|p| health::is_terminating(p)).count()
    }

    /// The new ReplicaSet's own `availableReplicas` (the updated replicas that are available),
    /// when its watch has shown it; `None` for a StatefulSet or without the ReplicaSets.
    pub(crate) fn new_available(&self) -> Option<i32> {
        let revision = self
            .workload
            .as_ref()?
            .annotations()
            .get(health::REVISION_ANNOTATION)?;
        let name = super::new_replica_set(Some(revision), &self.sets)?;
        let set = self.sets.get(&name)?;
        Some(set.status.as_ref()?.available_replicas.unwrap_or(0))
    }

    /// Moves the tracker's clock (the autoscaler grace is measured on it).
    pub(crate) fn tick(&mut self, now: Instant) {
        self.now = now;
    }

    /// A node autoscaler's event about a pod: `TriggeredScaleUp` (a node is coming) or
    /// `NotTriggerScaleUp` (none will).
    pub(crate) fn event(&mut self, event: &CoreEvent) {
        if event.involved_object.kind.as_deref() != Some("Pod") {
            return;
        }
        let Some(pod) = event.involved_object.name.clone() else {
            return;
        };
        let answer = match event.reason.as_deref() {
            Some("TriggeredScaleUp") => ScaleUp::Triggered,
            Some("NotTriggerScaleUp") => ScaleUp::NotTriggered(event.message.clone().unwrap_or_default()),
            _ => return,
        };
        self.scale_ups.insert(pod, answer);
    }

    /// The workload as last seen.
    pub(crate) fn latest(&self) -> Option<&K> {
        self.workload.as_ref()
    }

    pub(crate) fn workload(&mut self, item: Item<K>) {
        match item {
            Item::Relist => self.listed = false,
            Item::Object(k) if k.name_any() == self.name => {
                self.listed = true;
                self.workload = Some(k);
            }
            // A list that does not name it: deleted before or while the watch was down.
            Item::Listed if !self.listed => self.deleted = true,
            Item::Deleted(k) if k.name_any() == self.name => self.deleted = true,
            _ => {}
        }
    }

    pub(crate) fn pod(&mut self, item: Item<Pod>) {
        apply(&mut self.pods, item);
        let now = self.now;
        let unschedulable: HashSet<&String> = self
            .pods
            .iter()
            .filter(|(_, p)| health::pod_problem(p).is_some_and(|problem| problem.reason == "Unschedulable"))
            .map(|(name, _)| name)
            .collect();
        self.unschedulable_since
            .retain(|name, _| unschedulable.contains(name));
        for name in unschedulable {
            self.unschedulable_since.entry(name.clone()).or_insert(now);
        }
    }

    pub(crate) fn replica_set(&mut self, item: Item<ReplicaSet>) {
        apply(&mut self.sets, item);
    }

    /// The pods of the current template that cannot progress (the ignored ones left out), and
    /// the Unschedulable ones that are not a failure yet: a node autoscaler triggered a scale-up
    /// for them, or may still answer (within [`AUTOSCALER_GRACE`]). `NotTriggerScaleUp` fails.
    fn current_problems(&self, workload: &K) -> (Vec<PodProblem>, Option<NodeWait>) {
        let Some(current) = workload.current_pods(self.sets.values()) else {
            return (Vec::new(), None);
        };
        let problems = self
            .pods
            .values()
            .filter(|p| current.matches(p))
            .filter(|p| {
                !p.metadata
                    .uid
                    .as_ref()
                    .is_some_and(|u| self.ignored_pod_uids.contains(u))
            })
            .filter_map(health::pod_problem);
        let (mut failing, mut triggered, mut may_answer) = (Vec::new(), 0, 0);
        for mut problem in problems {
            if problem.reason != "Unschedulable" {
                failing.push(problem);
                continue;
            }
            match self.scale_ups.get(&problem.pod) {
                Some(ScaleUp::Triggered) => triggered += 1,
                Some(ScaleUp::NotTriggered(message)) => {
                    problem.message = format!("{}; node autoscaler: {message}", problem.message);
                    failing.push(problem);
                }
                None => {
                    let since = self.unschedulable_since.get(&problem.pod).copied();
                    if since.is_some_and(|at| self.now.duration_since(at) < AUTOSCALER_GRACE) {
                        may_answer += 1;
                    } else {
                        failing.push(problem);
                    }
                }
            }
        }
        let wait = if triggered > 0 {
            Some(NodeWait::ScaleUpTriggered(triggered))
        } else if may_answer > 0 {
            Some(NodeWait::AutoscalerMayAnswer(may_answer))
        } else {
            None
        };
        (failing, wait)
    }

    pub(crate) fn verdict(&self) -> Verdict {
        if self.deleted {
            return Verdict::Failed(Failure::Deleted);
        }
        let Some(workload) = self.workload.as_ref() else {
            return Verdict::Waiting;
        };
        let counts = workload.counts();
        if let Some(expected) = self.expected_replicas
            && counts.desired != expected
        {
            return Verdict::Failed(Failure::ReplicasChanged {
                expected,
                now: counts.desired,
            });
        }
        let (problems, waiting_for_nodes) = self.current_problems(workload);
        if !problems.is_empty() {
            return Verdict::Failed(Failure::Pods(problems));
        }
        let new_replica_set = workload
            .annotations()
            .get(health::REVISION_ANNOTATION)
            .and_then(|revision| super::new_replica_set(Some(revision), &self.sets));
        match workload.rollout() {
            Rollout::Failed { reason, message } => Verdict::Failed(Failure::Condition { reason, message }),
            Rollout::Complete(counts) => Verdict::Complete {
                counts,
                new_replica_set,
            },
            Rollout::Progressing(counts) => Verdict::Progressing {
                counts,
                new_replica_set,
                waiting_for_nodes,
            },
        }
    }
}

fn apply<K: ResourceExt>(map: &mut BTreeMap<String, K>, item: Item<K>) {
    match item {
        // A (re-)list replaces what we knew: objects deleted meanwhile disappear.
        Item::Relist => map.clear(),
        Item::Object(k) => {
            map.insert(k.name_any(), k);
        }
        Item::Deleted(k) => {
            map.remove(&k.name_any());
        }
        Item::Listed | Item::Retrying(_) | Item::Refused(_) => {}
    }
}

/// Who moved the replica count away from what we set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangedBy {
    /// The workload's HorizontalPodAutoscaler.
    Autoscaler,
    /// Anyone else; the field manager that owns spec.replicas when managedFields name one.
    SomeoneElse { manager: Option<String> },
}

/// Field managers of the HPA controller's writes: its own name, or the controller manager
/// writing through the scale subresource (the only one of its controllers that does).
fn is_autoscaler_manager(manager: &str, subresource: Option<&str>) -> bool {
    manager.contains("horizontal-pod-autoscaler")
        || (manager == "kube-controller-manager" && subresource == Some("scale"))
}

/// Blames the HPA for a changed replica count only on evidence: the field manager that owns
/// spec.replicas is the HPA controller, or (when managedFields do not tell) the HPA targets
/// the workload and its status.desiredReplicas is the new count. Otherwise "someone else".
pub(crate) fn who_changed_replicas(
    workload: &ObjectMeta,
    kind: &str,
    now: i32,
    hpa: Option<&HorizontalPodAutoscaler>,
) -> ChangedBy {
    let owner = workload
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:spec").and_then(|s| s.get("f:replicas")).is_some())
        })
        .max_by_key(|entry| entry.time.as_ref().map(|t| t.0));
    if let Some(entry) = owner {
        let manager = entry.manager.as_deref().unwrap_or_default();
        if is_autoscaler_manager(manager, entry.subresource.as_deref()) {
            return ChangedBy::Autoscaler;
        }
        if !manager.is_empty() && manager != FIELD_MANAGER {
            return ChangedBy::SomeoneElse {
                manager: Some(manager.to_string()),
            };
        }
    }
    let name = workload.name.as_deref().unwrap_or_default();
    let hpa_says_so = hpa.is_some_and(|h| {
        let target = h.spec.as_ref().map(|s| &s.scale_target_ref);
        let targets_it = target.is_some_and(|t| t.kind.eq_ignore_ascii_case(kind) && t.name == name);
        let desired = h.status.as_ref().map(|s| s.desired_replicas);
        targets_it && desired == Some(now)
    });
    if hpa_says_so {
        ChangedBy::Autoscaler
    } else {
        ChangedBy::SomeoneElse { manager: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use serde_json::{Value, json};

    fn deployment(revision: &str, generation: i64, observed: i64, status: Value) -> Deployment {
        let mut status = status;
        status["observedGeneration"] = json!(observed);
        serde_json::from_value(json!({
            "metadata": {"name": "orchestrator", "generation": generation,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "orchestrator"}},
                     "template": {"spec": {"containers": [{"name": "orchestrator"}]}}},
            "status": status
        }))
        .unwrap()
    }

    fn replica_set(hash: &str, revision: &str) -> ReplicaSet {
        serde_json::from_value(json!({"metadata": {"name": format!("orchestrator-{hash}"),
            "labels": {"app": "orchestrator", "pod-template-hash": hash},
            "annotations": {"deployment.kubernetes.io/revision": revision}}}))
        .unwrap()
    }

    fn pod(name: &str, labels: Value, status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "uid": name, "labels": labels},
            "status": status}))
        .unwrap()
    }

    fn oom_killed() -> Value {
        json!({"phase": "Running", "containerStatuses": [{"name": "orchestrator", "image": "i",
            "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]})
    }

    fn unschedulable() -> Value {
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]})
    }

    fn ready() -> Value {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
    }

    fn hash(h: &str) -> Value {
        json!({"app": "orchestrator", "pod-template-hash": h})
    }

    fn rolling(tracker: &mut Tracker<Deployment>, d: Deployment) {
        tracker.workload(Item::Relist);
        tracker.workload(Item::Object(d));
        tracker.workload(Item::Listed);
    }

    #[test]
    fn old_replica_set_pods_do_not_fail_the_rollout_of_the_new_one() {
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        t.replica_set(Item::Object(replica_set("old", "1")));
        t.replica_set(Item::Object(replica_set("new", "2")));
        t.pod(Item::Object(pod("orchestrator-old-a", hash("old"), oom_killed())));
        t.pod(Item::Object(pod(
            "orchestrator-old-b",
            hash("old"),
            unschedulable(),
        )));
        t.pod(Item::Object(pod("orchestrator-new-a", hash("new"), ready())));
        let progressing = deployment(
            "2",
            2,
            2,
            json!({"replicas": 5, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
        );
        rolling(&mut t, progressing);
        assert!(
            matches!(&t.verdict(), Verdict::Progressing { new_replica_set: Some(rs), .. } if rs == "orchestrator-new"),
            "{:?}",
            t.verdict()
        );
        let done = deployment(
            "2",
            2,
            2,
            json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
        );
        t.workload(Item::Object(done));
        assert!(
            matches!(t.verdict(), Verdict::Complete { .. }),
            "{:?}",
            t.verdict()
        );
    }

    #[test]
    fn new_replica_set_pods_fail_it() {
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        t.replica_set(Item::Object(replica_set("old", "1")));
        t.replica_set(Item::Object(replica_set("new", "2")));
        t.pod(Item::Object(pod(
            "orchestrator-new-a",
            hash("new"),
            unschedulable(),
        )));
        rolling(
            &mut t,
            deployment("2", 2, 2, json!({"replicas": 4, "updatedReplicas": 1})),
        );
        // Unschedulable: a node autoscaler may answer within its grace; none did.
        assert!(
            matches!(
                t.verdict(),
                Verdict::Progressing {
                    waiting_for_nodes: Some(NodeWait::AutoscalerMayAnswer(1)),
                    ..
                }
            ),
            "{:?}",
            t.verdict()
        );
        t.tick(Instant::now() + AUTOSCALER_GRACE);
        match t.verdict() {
            Verdict::Failed(Failure::Pods(problems)) => {
                assert_eq!(problems.len(), 1);
                assert_eq!(problems[0].pod, "orchestrator-new-a");
                assert_eq!(problems[0].reason, "Unschedulable");
            }
            other => panic!("{other:?}"),
        }
    }

    fn autoscaler_event(pod: &str, reason: &str) -> CoreEvent {
        serde_json::from_value(
            json!({"metadata": {"name": "e"}, "reason": reason, "type": "Normal",
            "message": "pod didn't trigger scale-up: 1 max node group size reached",
            "involvedObject": {"kind": "Pod", "name": pod}}),
        )
        .unwrap()
    }

    #[test]
    fn a_triggered_scale_up_is_waited_for_and_a_refused_one_fails() {
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        t.replica_set(Item::Object(replica_set("new", "2")));
        t.pod(Item::Object(pod(
            "orchestrator-new-a",
            hash("new"),
            unschedulable(),
        )));
        rolling(
            &mut t,
            deployment("2", 2, 2, json!({"replicas": 4, "updatedReplicas": 1})),
        );
        t.event(&autoscaler_event("orchestrator-new-a", "TriggeredScaleUp"));
        t.tick(Instant::now() + AUTOSCALER_GRACE * 30);
        match t.verdict() {
            Verdict::Progressing {
                waiting_for_nodes: Some(wait),
                ..
            } => assert_eq!(wait.note(), "1 pod(s) waiting for a node (scale-up triggered)"),
            other => panic!("{other:?}"),
        }
        t.event(&autoscaler_event("orchestrator-new-a", "NotTriggerScaleUp"));
        match t.verdict() {
            Verdict::Failed(Failure::Pods(problems)) => {
                assert!(
                    problems[0].message.contains("max node group size reached"),
                    "{problems:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn before_the_controller_sees_the_change_no_pod_is_judged() {
        // The revision still names the old ReplicaSet until the controller has synced.
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        t.replica_set(Item::Object(replica_set("old", "1")));
        t.pod(Item::Object(pod("orchestrator-old-a", hash("old"), oom_killed())));
        rolling(&mut t, deployment("1", 3, 2, json!({"replicas": 3})));
        assert!(
            matches!(t.verdict(), Verdict::Progressing { .. }),
            "{:?}",
            t.verdict()
        );
    }

    #[test]
    fn a_pure_scale_judges_all_pods_of_the_current_set() {
        let mut t = Tracker::<Deployment>::new("orchestrator", Some(3), &[]);
        t.replica_set(Item::Object(replica_set("only", "1")));
        t.pod(Item::Object(pod("orchestrator-only-a", hash("only"), ready())));
        t.pod(Item::Object(pod(
            "orchestrator-only-b",
            hash("only"),
            unschedulable(),
        )));
        rolling(
            &mut t,
            deployment("1", 2, 2, json!({"replicas": 3, "updatedReplicas": 3})),
        );
        // No node autoscaler answered within its grace.
        t.tick(Instant::now() + AUTOSCALER_GRACE);
        assert!(
            matches!(t.verdict(), Verdict::Failed(Failure::Pods(_))),
            "{:?}",
            t.verdict()
        );
        // Leaving the failing pod out (a rollback's own follow), it is progressing again.
        let mut t2 = Tracker::<Deployment>::new("orchestrator", Some(3), &["orchestrator-only-b".into()]);
        t2.replica_set(Item::Object(replica_set("only", "1")));
        t2.pod(Item::Object(pod(
            "orchestrator-only-b",
            hash("only"),
            unschedulable(),
        )));
        rolling(
            &mut t2,
            deployment("1", 2, 2, json!({"replicas": 3, "updatedReplicas": 3})),
        );
        assert!(matches!(t2.verdict(), Verdict::Progressing { .. }));
    }

    #[test]
    fn without_replica_sets_the_status_alone_decides() {
        // The replicasets watch is forbidden: no pod is known to be new.
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        t.pod(Item::Object(pod("orchestrator-x-a", hash("x"), oom_killed())));
        rolling(
            &mut t,
            deployment(
                "2",
                2,
                2,
                json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
            ),
        );
        assert!(matches!(t.verdict(), Verdict::Complete { .. }));
    }

    #[test]
    fn statefulset_pods_of_the_update_revision_count() {
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "postgres", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "serviceName": "postgres", "template": {}},
            "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 1,
                       "currentRevision": "postgres-1", "updateRevision": "postgres-2"}
        }))
        .unwrap();
        let rev = |r: &str| json!({"app": "postgres", "controller-revision-hash": r});
        let mut t = Tracker::<StatefulSet>::new("postgres", None, &[]);
        t.workload(Item::Object(sts));
        t.pod(Item::Object(pod("postgres-0", rev("postgres-1"), oom_killed())));
        assert!(
            matches!(t.verdict(), Verdict::Progressing { .. }),
            "{:?}",
            t.verdict()
        );
        t.pod(Item::Object(pod("postgres-1", rev("postgres-2"), oom_killed())));
        assert!(matches!(t.verdict(), Verdict::Failed(Failure::Pods(p)) if p[0].pod == "postgres-1"));
    }

    #[test]
    fn a_relist_without_the_workload_means_deleted() {
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        rolling(&mut t, deployment("1", 1, 1, json!({})));
        assert!(!matches!(t.verdict(), Verdict::Failed(_)));
        t.workload(Item::Relist);
        t.workload(Item::Listed);
        assert_eq!(t.verdict(), Verdict::Failed(Failure::Deleted));
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        assert_eq!(t.verdict(), Verdict::Waiting);
        t.workload(Item::Retrying("503".into()));
        assert_eq!(t.verdict(), Verdict::Waiting);
    }

    #[test]
    fn a_relist_forgets_pods_deleted_meanwhile() {
        let mut t = Tracker::<Deployment>::new("orchestrator", None, &[]);
        t.replica_set(Item::Object(replica_set("new", "1")));
        t.pod(Item::Object(pod("orchestrator-new-a", hash("new"), oom_killed())));
        rolling(&mut t, deployment("1", 1, 1, json!({"replicas": 3})));
        assert!(matches!(t.verdict(), Verdict::Failed(Failure::Pods(_))));
        t.pod(Item::Relist);
        t.pod(Item::Listed);
        assert!(matches!(t.verdict(), Verdict::Progressing { .. }));
    }

    #[test]
    fn a_changed_count_is_flagged() {
        let mut t = Tracker::<Deployment>::new("orchestrator", Some(6), &[]);
        rolling(&mut t, deployment("1", 1, 1, json!({})));
        assert_eq!(
            t.verdict(),
            Verdict::Failed(Failure::ReplicasChanged { expected: 6, now: 3 })
        );
    }

    fn hpa(target: &str, desired: i32) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({"metadata": {"name": "orchestrator"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": target, "apiVersion": "apps/v1"},
                     "maxReplicas": 10},
            "status": {"currentReplicas": 3, "desiredReplicas": desired}}))
        .unwrap()
    }

    fn meta(managed: Value) -> ObjectMeta {
        serde_json::from_value(json!({"name": "orchestrator", "managedFields": managed})).unwrap()
    }

    fn entry(manager: &str, subresource: Option<&str>, time: &str) -> Value {
        json!({"manager": manager, "operation": "Update", "subresource": subresource, "time": time,
               "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    }

    #[test]
    fn the_hpa_is_blamed_when_its_desired_count_is_the_new_one() {
        let m = meta(json!([]));
        assert_eq!(
            who_changed_replicas(&m, "deployment", 3, Some(&hpa("orchestrator", 3))),
            ChangedBy::Autoscaler
        );
        assert_eq!(
            who_changed_replicas(&m, "deployment", 4, Some(&hpa("orchestrator", 3))),
            ChangedBy::SomeoneElse { manager: None },
            "a manual scale to 4 while the HPA wants 3"
        );
        assert_eq!(
            who_changed_replicas(&m, "deployment", 3, Some(&hpa("other", 3))),
            ChangedBy::SomeoneElse { manager: None },
            "an HPA of another deployment"
        );
        assert_eq!(
            who_changed_replicas(&m, "deployment", 3, None),
            ChangedBy::SomeoneElse { manager: None }
        );
    }

    #[test]
    fn managed_fields_name_the_writer_of_the_count() {
        let hpa_wrote = meta(json!([
            entry("kubectl-orchscale", Some("scale"), "2026-01-01T00:00:00Z"),
            entry("kube-controller-manager", Some("scale"), "2026-01-01T00:01:00Z"),
        ]));
        assert_eq!(
            who_changed_replicas(&hpa_wrote, "deployment", 4, None),
            ChangedBy::Autoscaler
        );
        let kubectl_wrote = meta(json!([
            entry("kubectl-orchscale", Some("scale"), "2026-01-01T00:00:00Z"),
            entry("kubectl", Some("scale"), "2026-01-01T00:01:00Z"),
        ]));
        assert_eq!(
            who_changed_replicas(&kubectl_wrote, "deployment", 3, Some(&hpa("orchestrator", 3))),
            ChangedBy::SomeoneElse {
                manager: Some("kubectl".into())
            },
            "managedFields win over a coincidence with the HPA's count"
        );
        // Our own entry is the owner: no evidence there, the HPA's status decides.
        let ours = meta(json!([entry(
            "kubectl-orchscale",
            Some("scale"),
            "2026-01-01T00:00:00Z"
        )]));
        assert_eq!(
            who_changed_replicas(&ours, "deployment", 3, Some(&hpa("orchestrator", 3))),
            ChangedBy::Autoscaler
        );
    }
}
