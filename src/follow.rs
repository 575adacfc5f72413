//! The rollout follower: watches a Deployment or StatefulSet, its pods, ReplicaSets and
//! Warning events until the rollout completes, fails, times out or the user presses Ctrl-C.
//!
//! Waiting is watching (`cluster::watch`): each watch resumes after a failure with a capped
//! backoff and re-lists on 410 Gone, so an API outage is ridden out until `--timeout`, said
//! once when it starts and once when it ends. A watch the server refuses degrades what is
//! shown (no inline events; the verdict from the workload's status alone), except the
//! workload's own. Decisions come from the pure [`tracker`].

mod progress;
mod tracker;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::{Resource, ResourceExt};

use crate::cli::format_duration;
use crate::cluster::watch::{self, Item, Reachability, Refusal, Scope};
use crate::cluster::{Cluster, Object};
use crate::error::Error;
use crate::health::{self, PodProblem, Workload};
use crate::interrupt;
use crate::report::{Progress, Reporter};
use progress::{Measured, Progression};
use tracker::{ChangedBy, Failure, Tracker, Verdict, who_changed_replicas};

/// What the follower needs to know about the target.
pub struct FollowSpec<'a> {
    pub name: &'a str,
    /// Label selector of the workload's pods, e.g. `app=orchestrator`.
    pub selector: &'a str,
    /// The tool's own deadline (`--timeout`).
    pub timeout: Duration,
    /// What was already applied, said on timeout or Ctrl-C.
    pub applied: &'a str,
    /// The replica count we set; someone else (an HPA) changing it ends the wait with a failure.
    pub expected_replicas: Option<i32>,
    /// The HPA that targets the workload, to name it when it moves the count.
    pub autoscaler: Option<&'a str>,
    /// The resourceVersion of the write that started the rollout: events are watched from
    /// there, so that those between the write and the watch are shown too.
    pub events_since: Option<&'a str>,
}

/// One item of one of the follower's watches.
enum Update<K> {
    Workload(Item<K>),
    Pod(Item<Pod>),
    ReplicaSet(Item<ReplicaSet>),
    Event(Item<CoreEvent>),
    /// A clock tick, so that a wait bounded in time (the node autoscaler's grace) ends.
    Tick,
}

impl<K> Update<K> {
    /// The watch it came from, for [`Reachability`].
    fn watch(&self) -> usize {
        match self {
            Update::Workload(_) => 0,
            Update::Pod(_) => 1,
            Update::ReplicaSet(_) => 2,
            Update::Event(_) | Update::Tick => 3,
        }
    }

    /// The failure text when the item is a failed request that the watch retries.
    fn failure(&self) -> Option<&str> {
        match self {
            Update::Workload(item) => item.failure(),
            Update::Pod(item) => item.failure(),
            Update::ReplicaSet(item) => item.failure(),
            Update::Event(item) => item.failure(),
            Update::Tick => None,
        }
    }
}

/// The name of the new ReplicaSet: the one whose revision matches the deployment's.
pub fn new_replica_set(revision: Option<&str>, sets: &BTreeMap<String, ReplicaSet>) -> Option<String> {
    let revision = revision?;
    sets.values()
        .find(|rs| {
            rs.annotations()
                .get("deployment.kubernetes.io/revision")
                .map(String::as_str)
                == Some(revision)
        })
        .map(|rs| rs.name_any())
}

/// Follows a rollout to its end.
///
/// # Errors
/// [`Error::Failed`] when the rollout fails (naming pods and why), [`Error::Timeout`] at
/// `--timeout`, [`Error::Interrupted`] on Ctrl-C, API errors when the watches keep failing.
pub async fn follow<K>(cluster: &Cluster, spec: &FollowSpec<'_>, reporter: &mut Reporter) -> Result<K, Error>
where
    K: Workload + Object,
{
    follow_ignoring::<K>(cluster, spec, &[], reporter).await
}

/// The uids of the workload's pods that have a problem now (see [`health::pod_problem`]):
/// what a rollback passes to [`follow_ignoring`], since those pods are the failure already
/// reported and stay until the controller removes them. An unreadable list is empty.
pub async fn pods_with_problems(cluster: &Cluster, selector: &str) -> Vec<String> {
    cluster
        .list::<Pod>(selector)
        .await
        .unwrap_or_default()
        .iter()
        .filter(|pod| health::pod_problem(pod).is_some())
        .filter_map(|pod| pod.metadata.uid.clone())
        .collect()
}

/// [`follow`], leaving out the problems of the pods with these uids: after a rollback, the
/// pods of the failed template still exist (Pending, crash-looping) until the controller
/// removes them, and must not fail the rollback's own rollout.
///
/// # Errors
/// As [`follow`].
pub async fn follow_ignoring<K>(
    cluster: &Cluster,
    spec: &FollowSpec<'_>,
    ignored_pod_uids: &[String],
    reporter: &mut Reporter,
) -> Result<K, Error>
where
    K: Workload + Object,
{
    let mut interrupt = interrupt::listen();
    // Whether the latest verdict had pods waiting for a node scale-up, for the timeout.
    let waiting_for_nodes = std::cell::Cell::new(false);
    let work = follow_until_done::<K>(cluster, spec, ignored_pod_uids, &waiting_for_nodes, reporter);
    let result = tokio::select! {
        result = tokio::time::timeout(spec.timeout, work) => match result {
            Ok(inner) => inner,
            Err(_) => Err(Error::Timeout {
                what: format!("{} {} to roll out", K::KIND, spec.name),
                after: format_duration(spec.timeout),
                applied: spec.applied.to_string(),
                waiting_for_nodes: waiting_for_nodes.get(),
            }),
        },
        _ = interrupt.interrupted() => Err(Error::Interrupted { applied: spec.applied.to_string() }),
    };
    reporter.progress_done();
    result
}

async fn follow_until_done<K>(
    cluster: &Cluster,
    spec: &FollowSpec<'_>,
    ignored_pod_uids: &[String],
    waiting_for_nodes: &std::cell::Cell<bool>,
    reporter: &mut Reporter,
) -> Result<K, Error>
where
    K: Workload + Object,
{
    let workloads = watch::watch::<K>(cluster, Scope::Named(spec.name)).map(Update::Workload);
    let pods = watch::watch::<Pod>(cluster, Scope::Labels(spec.selector)).map(Update::Pod);
    // Only Warning events are shown, and only news: the server selects them (`type=Warning`)
    // and the watch starts at the current version, without the namespace's event history.
    // Pods and ReplicaSets have generated names, which `involvedObject.name` cannot select by
    // prefix: the workload's are picked out here (`warning_line`).
    let events =
        watch::watch_from_now::<CoreEvent>(cluster, "type=Warning", spec.events_since).map(Update::Event);
    // The node autoscaler's answers (TriggeredScaleUp, NotTriggerScaleUp) are Normal events:
    // a field selector cannot OR them with the Warnings, so they get a watch of their own.
    let autoscaler =
        watch::watch_from_now::<CoreEvent>(cluster, "source=cluster-autoscaler", spec.events_since)
            .map(Update::Event);
    let mut streams: Vec<std::pin::Pin<Box<dyn Stream<Item = Update<K>> + Send>>> = vec![
        workloads.boxed(),
        pods.boxed(),
        events.boxed(),
        autoscaler.boxed(),
    ];
    if K::KIND == "deployment" {
        let sets = watch::watch::<ReplicaSet>(cluster, Scope::Labels(spec.selector));
        streams.push(sets.map(Update::ReplicaSet).boxed());
    }
    let ticks = futures::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Update::Tick, ()))
    });
    streams.push(ticks.boxed());
    let mut updates = futures::stream::select_all(streams);

    let object = format!("{}/{}", K::KIND, spec.name);
    let mut tracker = Tracker::<K>::new(spec.name, spec.expected_replicas, ignored_pod_uids);
    let mut reachability = Reachability::default();
    let mut seen_events: HashSet<(String, String, String)> = HashSet::new();
    let mut events_listed = false;
    let mut progression = Progression::default();

    while let Some(update) = updates.next().await {
        let failure = update.failure();
        if let Some(failure) = failure {
            reporter.detail(&format!("a watch request failed, retrying: {failure}"));
        }
        let watched = !matches!(update, Update::Tick);
        if watched
            && let Some(transition) = reachability.saw(update.watch(), failure.is_some(), Instant::now())
        {
            reporter.info(&transition.to_string());
        }
        match update {
            Update::Workload(Item::Refused(refusal)) => {
                return Err(workload_refused(
                    &object,
                    &refusal,
                    &cluster.namespace,
                    spec.applied,
                ));
            }
            Update::Workload(item) => tracker.workload(item),
            Update::Pod(Item::Refused(refusal)) | Update::ReplicaSet(Item::Refused(refusal)) => {
                reporter.warn(&status_only(
                    K::KIND,
                    &object,
                    &cluster.namespace,
                    &refusal_reason(&refusal),
                ));
            }
            Update::Pod(item) => tracker.pod(item),
            Update::ReplicaSet(item) => tracker.replica_set(item),
            Update::Event(Item::Refused(refusal)) => {
                reporter.warn(&events_not_shown(&cluster.namespace, &refusal_reason(&refusal)));
            }
            Update::Event(Item::Listed) => events_listed = true,
            Update::Event(Item::Object(e)) => {
                tracker.event(&e);
                if let Some(line) = warning_line(&e, spec.name, &mut seen_events)
                    && events_listed
                {
                    reporter.warn(&line);
                }
            }
            Update::Event(_) | Update::Tick => {}
        }

        tracker.tick(Instant::now());
        let verdict = tracker.verdict();
        waiting_for_nodes.set(matches!(
            &verdict,
            Verdict::Progressing {
                waiting_for_nodes: Some(tracker::NodeWait::ScaleUpTriggered(_)),
                ..
            }
        ));
        match verdict {
            Verdict::Waiting => {}
            Verdict::Failed(failure) => {
                return Err(failed(cluster, spec, &object, tracker.latest(), failure).await);
            }
            Verdict::Complete {
                counts,
                new_replica_set,
            } => {
                let measured = progression.observe(&counts, tracker.new_available(), Instant::now());
                let note = terminating_note(tracker.terminating());
                reporter.progress(&progress(&object, &measured, new_replica_set, true, note));
                if let Some(done) = tracker.latest() {
                    return Ok(done.clone());
                }
            }
            Verdict::Progressing {
                counts,
                new_replica_set,
                waiting_for_nodes,
            } => {
                let measured = progression.observe(&counts, tracker.new_available(), Instant::now());
                let note = if !counts.observed {
                    "waiting for the controller to see the change".to_string()
                } else if let Some(wait) = &waiting_for_nodes {
                    wait.note()
                } else {
                    terminating_note(tracker.terminating())
                };
                reporter.progress(&progress(&object, &measured, new_replica_set, false, note));
            }
        }
    }
    // Only a refused workload watch ends its stream, and that returned above.
    Err(Error::failed(
        format!("the watch on {object} ended unexpectedly"),
        format!(
            "{}; check the rollout with `kubectl orchscale status`",
            spec.applied
        ),
    ))
}

/// The error for a failure the tracker found, saying what was applied.
async fn failed<K>(
    cluster: &Cluster,
    spec: &FollowSpec<'_>,
    object: &str,
    latest: Option<&K>,
    failure: Failure,
) -> Error
where
    K: Workload + Resource,
{
    match failure {
        Failure::Deleted => Error::failed(
            format!("{object} was deleted while its rollout was followed"),
            format!(
                "{}; someone or something deleted it: check with `kubectl get {} -n {}`",
                spec.applied,
                K::KIND,
                cluster.namespace
            ),
        ),
        Failure::ReplicasChanged { expected, now } => {
            let meta = latest.map(|k| k.meta().clone()).unwrap_or_default();
            let by = changed_by(cluster, spec, &meta, K::KIND, now).await;
            replicas_overridden(object, &cluster.namespace, now, expected, &by, spec)
        }
        Failure::Pods(problems) => pods_failed(object, &cluster.namespace, &problems, spec.applied),
        Failure::Condition { reason, message } => Error::failed(
            format!("rollout of {object} failed: {reason}: {message}"),
            format!(
                "{}; fix the cause, then check with `kubectl orchscale status`",
                spec.applied
            ),
        ),
    }
}

/// Who changed the replica count: managedFields, else the HPA's own status. The HPA controller
/// writes the scale before its status, so an HPA whose status does not show the new count yet
/// is read once more after a moment.
async fn changed_by(
    cluster: &Cluster,
    spec: &FollowSpec<'_>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &str,
    now: i32,
) -> ChangedBy {
    let read_hpa = || async {
        match spec.autoscaler {
            Some(name) => cluster
                .get_opt::<HorizontalPodAutoscaler>(name)
                .await
                .ok()
                .flatten(),
            None => None,
        }
    };
    let by = who_changed_replicas(meta, kind, now, read_hpa().await.as_ref());
    if by != (ChangedBy::SomeoneElse { manager: None }) || spec.autoscaler.is_none() {
        return by;
    }
    tokio::time::sleep(HPA_STATUS_GRACE).await;
    who_changed_replicas(meta, kind, now, read_hpa().await.as_ref())
}

/// How long after a changed count the HPA's status may still show its previous decision.
const HPA_STATUS_GRACE: Duration = Duration::from_secs(1);

/// The warning when events cannot be watched (said by the follower, or ahead by the preflight).
pub(crate) fn events_not_shown(namespace: &str, reason: &str) -> String {
    format!("Warning events are not shown: cannot watch events in namespace {namespace} ({reason})")
}

/// The warning when a workload's pods (and ReplicaSets) cannot be watched.
pub(crate) fn status_only(kind: &str, object: &str, namespace: &str, reason: &str) -> String {
    let watched = if kind == "deployment" {
        "pods and replicasets"
    } else {
        "pods"
    };
    format!(
        "cannot watch the {watched} of {object} in namespace {namespace} ({reason}): \
         the rollout is judged from the {kind} status only, without naming failing pods"
    )
}

fn refusal_reason(refusal: &Refusal) -> String {
    match refusal.status {
        403 => "forbidden".to_string(),
        401 => "unauthorized".to_string(),
        status => format!("HTTP {status}: {}", refusal.message),
    }
}

/// The workload's own watch was refused: nothing can be followed.
fn workload_refused(object: &str, refusal: &Refusal, namespace: &str, applied: &str) -> Error {
    let kind = object.split('/').next().unwrap_or(object);
    let fix = if refusal.is_forbidden() {
        format!("ask a cluster admin for list and watch on {kind}s in namespace {namespace}")
    } else if refusal.status == 401 {
        "log in again or refresh the token".to_string()
    } else {
        format!("the server said: {}", refusal.message)
    };
    Error::failed(
        format!(
            "cannot watch {object} in namespace {namespace} ({}): its rollout cannot be followed",
            refusal_reason(refusal)
        ),
        format!(
            "{applied}; the rollout continues in the cluster: check it with `kubectl orchscale status`; {fix}"
        ),
    )
}

/// Pods being deleted within their grace period (old ones, or those of a scale-down): not
/// replicas any more, but still running until they stop.
fn terminating_note(terminating: usize) -> String {
    if terminating > 0 {
        format!("{terminating} pod(s) terminating")
    } else {
        String::new()
    }
}

/// The progress event of a measure. The bar is full only when the verdict is complete (a
/// StatefulSet whose revision is not promoted yet may have every step done): until then it
/// stops one step short.
fn progress(
    object: &str,
    measured: &Measured,
    new_replica_set: Option<String>,
    complete: bool,
    note: String,
) -> Progress {
    let steps = measured.steps;
    let done_steps = if complete {
        steps.total
    } else {
        steps.done.min(steps.total.saturating_sub(1))
    };
    Progress {
        object: object.to_string(),
        desired: steps.desired,
        updated: steps.updated,
        available: steps.available,
        old: steps.old,
        surplus: steps.surplus,
        done_steps,
        total_steps: steps.total,
        complete,
        new_replica_set: new_replica_set.filter(|_| measured.template_replaced),
        eta: if complete { None } else { measured.eta },
        note,
    }
}

/// A Warning event about the workload or its ReplicaSets/pods, once per (object, reason, message).
pub fn warning_line(
    event: &CoreEvent,
    workload: &str,
    seen: &mut HashSet<(String, String, String)>,
) -> Option<String> {
    if event.type_.as_deref() != Some("Warning") {
        return None;
    }
    let involved = event.involved_object.name.clone().unwrap_or_default();
    // ReplicaSets and pods of a workload are named after it.
    if involved != workload && !involved.starts_with(&format!("{workload}-")) {
        return None;
    }
    let reason = event.reason.clone().unwrap_or_default();
    let message = event.message.clone().unwrap_or_default();
    let kind = event
        .involved_object
        .kind
        .clone()
        .unwrap_or_default()
        .to_lowercase();
    if !seen.insert((involved.clone(), reason.clone(), message.clone())) {
        return None;
    }
    Some(format!("event {kind}/{involved}: {reason}: {message}"))
}

/// The replica count was moved away from what we set: by the workload's HPA only when the
/// evidence says so (see [`tracker::who_changed_replicas`]).
fn replicas_overridden(
    object: &str,
    namespace: &str,
    now: i32,
    expected: i32,
    by: &ChangedBy,
    spec: &FollowSpec<'_>,
) -> Error {
    match by {
        ChangedBy::Autoscaler => {
            let hpa = spec
                .autoscaler
                .map_or_else(|| "its HPA".to_string(), |name| format!("HPA {name}"));
            Error::failed(
                format!(
                    "{hpa} changed {object} replicas from {expected} to {now} during the rollout \
                     (its recommendation at the current load)"
                ),
                format!(
                    "{}; the HPA keeps control of the count: for a lasting floor use \
                     `kubectl orchscale hpa --min {expected}`",
                    spec.applied
                ),
            )
        }
        ChangedBy::SomeoneElse { manager } => {
            let who = match manager {
                Some(m) => format!("someone else (field manager \"{m}\")"),
                None => "someone else".to_string(),
            };
            Error::failed(
                format!(
                    "{object} replicas were changed from {expected} to {now} by {who} during the rollout"
                ),
                format!(
                    "{}; find out who changes it (`kubectl get {object} -n {namespace} -o yaml`, managedFields)",
                    spec.applied
                ),
            )
        }
    }
}

/// The failure of pods that cannot run; the hint names the first pod and its namespace, so
/// that the command it gives can be pasted as it is.
fn pods_failed(object: &str, namespace: &str, problems: &[PodProblem], applied: &str) -> Error {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let first = &problems[0];
    let pod = &first.pod;
    let describe = format!("`kubectl describe pod -n {namespace} {pod}`");
    let hint = match first.reason.as_str() {
        "Unschedulable" => format!(
            "the cluster has no room for the pods: free capacity, add nodes, or lower requests \
             ({describe} says why)"
        ),
        "OOMKilled" => format!(
            "the container needs more memory: raise its memory limit ({describe} shows the last state)"
        ),
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
            format!("check the image name, tag and pull secrets ({describe} shows the pull error)")
        }
        _ => {
            format!("check the pod's logs for why it crashes: `kubectl logs --previous -n {namespace} {pod}`")
        }
    };
    Error::failed(
        format!("rollout of {object} cannot progress: {}", list.join("; ")),
        format!("{applied}; {hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn counts(desired: i32, updated: i32, available: i32, total: i32) -> health::Counts {
        health::Counts {
            desired,
            updated,
            ready: available,
            available,
            total,
            observed: true,
        }
    }

    #[test]
    fn the_bar_is_full_only_with_the_verdict_and_names_no_replica_set_on_a_pure_scale() {
        let now = Instant::now();
        // Every step done by the counts, but the controller's verdict is not complete yet (a
        // StatefulSet whose update revision is not promoted): one step short.
        let mut p = Progression::default();
        let measured = p.observe(&counts(3, 3, 3, 3), Some(3), now);
        let shown = progress("statefulset/postgres", &measured, None, false, String::new());
        assert_eq!((shown.done_steps, shown.total_steps), (5, 6));
        assert!(shown.percent() < 100);
        let done = progress("statefulset/postgres", &measured, None, true, String::new());
        assert_eq!(done.percent(), 100);
        // A pure scale: the ReplicaSet at the revision is no "new" one.
        let scale = progress(
            "deployment/orchestrator",
            &measured,
            Some("orchestrator-abc".into()),
            true,
            String::new(),
        );
        assert_eq!(scale.new_replica_set, None);
        // A template change: old replicas were seen.
        let mut rolling = Progression::default();
        rolling.observe(&counts(3, 1, 3, 4), Some(0), now);
        let measured = rolling.observe(&counts(3, 3, 3, 3), Some(3), now);
        let shown = progress(
            "deployment/orchestrator",
            &measured,
            Some("orchestrator-abc".into()),
            true,
            String::new(),
        );
        assert_eq!(shown.new_replica_set.as_deref(), Some("orchestrator-abc"));
    }

    #[test]
    fn new_replica_set_matches_the_revision() {
        let rs = |name: &str, rev: &str| -> ReplicaSet {
            serde_json::from_value(json!({"metadata": {"name": name,
                "annotations": {"deployment.kubernetes.io/revision": rev}}}))
            .unwrap()
        };
        let mut sets = BTreeMap::new();
        sets.insert("a".to_string(), rs("orchestrator-a", "1"));
        sets.insert("b".to_string(), rs("orchestrator-b", "2"));
        assert_eq!(new_replica_set(Some("2"), &sets), Some("orchestrator-b".into()));
        assert_eq!(new_replica_set(None, &sets), None);
    }

    fn event(kind: &str, name: &str, type_: &str, reason: &str) -> CoreEvent {
        serde_json::from_value(json!({"metadata": {"name": "e"}, "type": type_, "reason": reason,
            "message": "exceeded quota", "involvedObject": {"kind": kind, "name": name}}))
        .unwrap()
    }

    #[test]
    fn warnings_are_filtered_and_deduplicated() {
        let mut seen = HashSet::new();
        let e = event("ReplicaSet", "orchestrator-abc", "Warning", "FailedCreate");
        assert_eq!(
            warning_line(&e, "orchestrator", &mut seen),
            Some("event replicaset/orchestrator-abc: FailedCreate: exceeded quota".into())
        );
        assert_eq!(warning_line(&e, "orchestrator", &mut seen), None, "deduplicated");
        let normal = event("Pod", "orchestrator-abc-1", "Normal", "Started");
        assert_eq!(warning_line(&normal, "orchestrator", &mut seen), None);
        let other = event("Pod", "postgres-0", "Warning", "BackOff");
        assert_eq!(warning_line(&other, "orchestrator", &mut seen), None);
    }

    #[test]
    fn an_hpa_moving_the_count_is_named_with_the_fix() {
        let spec = FollowSpec {
            name: "orchestrator",
            selector: "app=orchestrator",
            timeout: Duration::from_secs(1),
            applied: "replicas set to 5",
            expected_replicas: Some(5),
            autoscaler: Some("orchestrator"),
            events_since: None,
        };
        let err = replicas_overridden(
            "deployment/orchestrator",
            "ns",
            3,
            5,
            &ChangedBy::Autoscaler,
            &spec,
        );
        assert!(
            err.to_string()
                .starts_with("HPA orchestrator changed deployment/orchestrator replicas from 5 to 3")
        );
        assert!(err.hint().starts_with("replicas set to 5; "));
        assert!(err.hint().contains("hpa --min 5"));
        let someone = ChangedBy::SomeoneElse {
            manager: Some("kubectl".into()),
        };
        let err = replicas_overridden("deployment/orchestrator", "ns", 4, 5, &someone, &spec);
        assert!(
            err.to_string()
                .contains("from 5 to 4 by someone else (field manager \"kubectl\")"),
            "{err}"
        );
        assert!(err.hint().starts_with("replicas set to 5; "));
        assert!(!err.hint().contains("hpa --min"));
    }

    #[test]
    fn pod_failures_name_pods_and_hint() {
        let problems = vec![PodProblem {
            pod: "orchestrator-x".into(),
            reason: "Unschedulable".into(),
            message: "0/3 nodes are available".into(),
        }];
        let err = pods_failed("deployment/orchestrator", "llm", &problems, "replicas set to 5");
        assert!(
            err.to_string()
                .contains("pod orchestrator-x: Unschedulable (0/3 nodes are available)")
        );
        assert!(err.hint().starts_with("replicas set to 5"));
        assert!(
            err.hint()
                .contains("`kubectl describe pod -n llm orchestrator-x`"),
            "{}",
            err.hint()
        );
        assert_eq!(err.exit_code(), 1);
        let crashing = vec![PodProblem {
            pod: "orchestrator-y".into(),
            reason: "CrashLoopBackOff".into(),
            message: "back-off".into(),
        }];
        let err = pods_failed("deployment/orchestrator", "llm", &crashing, "applied");
        assert!(
            err.hint()
                .contains("`kubectl logs --previous -n llm orchestrator-y`"),
            "{}",
            err.hint()
        );
    }
}
