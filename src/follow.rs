//! The rollout follower: watches a Deployment or StatefulSet, its pods, ReplicaSets and
//! Warning events until the rollout completes, fails, times out or the user presses Ctrl-C.
//!
//! Waiting is watching: kube's watcher resumes a stream that ends from the last
//! resourceVersion and re-lists on 410 Gone. Decisions come from `health`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::cli::format_duration;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::health::{self, Counts, PodProblem, Rollout, Workload};
use crate::interrupt;
use crate::report::{Progress, Reporter};

/// Watch failures in a row after which we give up (each is retried with backoff first).
const MAX_WATCH_ERRORS_IN_A_ROW: u32 = 5;

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
}

enum Update<K> {
    Workload(Result<Event<K>, watcher::Error>),
    Pod(Result<Event<Pod>, watcher::Error>),
    ReplicaSet(Result<Event<ReplicaSet>, watcher::Error>),
    Event(Result<Event<CoreEvent>, watcher::Error>),
}

/// Estimated time left, from the pace of pods becoming ready since the start.
pub fn estimate_eta(
    ready_at_start: i32,
    ready_now: i32,
    desired: i32,
    elapsed: Duration,
) -> Option<Duration> {
    let done = ready_now - ready_at_start;
    let left = desired - ready_now;
    if done <= 0 || left <= 0 {
        return None;
    }
    Some(elapsed.mul_f64(f64::from(left) / f64::from(done)))
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
    K: Workload + Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    K: Clone + DeserializeOwned + Debug + Send + 'static,
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
    K: Workload + Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    K: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut interrupt = interrupt::listen();
    let work = follow_until_done::<K>(cluster, spec, ignored_pod_uids, reporter);
    let result = tokio::select! {
        result = tokio::time::timeout(spec.timeout, work) => match result {
            Ok(inner) => inner,
            Err(_) => Err(Error::Timeout {
                what: format!("{} {} to roll out", K::KIND, spec.name),
                after: format_duration(spec.timeout),
                applied: spec.applied.to_string(),
            }),
        },
        _ = interrupt.interrupted() => Err(Error::Interrupted { applied: spec.applied.to_string() }),
    };
    reporter.progress_done();
    result
}

fn tolerate(errors: &mut u32, error: watcher::Error, what: &str, server: &str) -> Result<(), Error> {
    *errors += 1;
    tracing::debug!(%error, what, "watch failed; the watcher resumes");
    let forbidden = matches!(&error, watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403);
    if forbidden || *errors >= MAX_WATCH_ERRORS_IN_A_ROW {
        return Err(Error::Api {
            action: format!("watch {what}"),
            status: None,
            message: format!("{error} (server {server})"),
        });
    }
    Ok(())
}

async fn follow_until_done<K>(
    cluster: &Cluster,
    spec: &FollowSpec<'_>,
    ignored_pod_uids: &[String],
    reporter: &mut Reporter,
) -> Result<K, Error>
where
    K: Workload + Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    K: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let by_name = watch::Config::default().fields(&format!("metadata.name={}", spec.name));
    let by_selector = watch::Config::default().labels(spec.selector);
    let workloads = watch::watcher(cluster.api::<K>(), by_name)
        .default_backoff()
        .map(Update::Workload);
    let pods = watch::watcher(cluster.api::<Pod>(), by_selector.clone())
        .default_backoff()
        .map(Update::Pod);
    let events = watch::watcher(cluster.api::<CoreEvent>(), watch::Config::default())
        .default_backoff()
        .map(Update::Event);
    let mut streams: Vec<std::pin::Pin<Box<dyn Stream<Item = Update<K>> + Send>>> =
        vec![workloads.boxed(), pods.boxed(), events.boxed()];
    if K::KIND == "deployment" {
        let sets = watch::watcher(cluster.api::<ReplicaSet>(), by_selector).default_backoff();
        streams.push(sets.map(Update::ReplicaSet).boxed());
    }
    let mut updates = futures::stream::select_all(streams);

    let started = Instant::now();
    let object = format!("{}/{}", K::KIND, spec.name);
    let mut latest: Option<K> = None;
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    let mut sets: BTreeMap<String, ReplicaSet> = BTreeMap::new();
    let mut seen_events: HashSet<(String, String, String)> = HashSet::new();
    let mut events_listed = false;
    let mut ready_at_start: Option<i32> = None;
    let mut errors = 0u32;

    while let Some(update) = updates.next().await {
        match update {
            Update::Workload(Ok(Event::Apply(k) | Event::InitApply(k))) if k.name_any() == spec.name => {
                errors = 0;
                latest = Some(k);
            }
            Update::Workload(Ok(Event::Delete(k))) if k.name_any() == spec.name => {
                return Err(Error::failed(
                    format!("{object} was deleted while its rollout was followed"),
                    format!(
                        "{}; someone or something deleted it: check with `kubectl get {}`",
                        spec.applied,
                        K::KIND
                    ),
                ));
            }
            Update::Workload(Ok(_)) => errors = 0,
            Update::Pod(Ok(event)) => {
                errors = 0;
                apply_event(&mut pods, event);
            }
            Update::ReplicaSet(Ok(event)) => {
                errors = 0;
                apply_event(&mut sets, event);
            }
            Update::Event(Ok(event)) => {
                errors = 0;
                match event {
                    Event::InitDone => events_listed = true,
                    Event::Apply(e) | Event::InitApply(e) => {
                        if let Some(line) = warning_line(&e, spec.name, &mut seen_events)
                            && events_listed
                        {
                            reporter.warn(&line);
                        }
                    }
                    _ => {}
                }
            }
            Update::Workload(Err(e)) => tolerate(&mut errors, e, &object, &cluster.server)?,
            Update::Pod(Err(e)) => tolerate(&mut errors, e, "pods", &cluster.server)?,
            Update::ReplicaSet(Err(e)) => tolerate(&mut errors, e, "replicasets", &cluster.server)?,
            Update::Event(Err(e)) => tolerate(&mut errors, e, "events", &cluster.server)?,
        }

        let Some(workload) = latest.as_ref() else { continue };
        let desired = workload.counts().desired;
        if let Some(expected) = spec.expected_replicas
            && desired != expected
        {
            return Err(replicas_overridden(&object, desired, expected, spec));
        }
        let problems: Vec<PodProblem> = pods
            .values()
            .filter(|p| {
                !p.metadata
                    .uid
                    .as_ref()
                    .is_some_and(|u| ignored_pod_uids.contains(u))
            })
            .filter_map(health::pod_problem)
            .collect();
        if !problems.is_empty() {
            return Err(pods_failed(&object, &problems, spec.applied));
        }
        match workload.rollout() {
            Rollout::Failed { reason, message } => {
                return Err(Error::failed(
                    format!("rollout of {object} failed: {reason}: {message}"),
                    format!(
                        "{}; fix the cause, then check with `kubectl orchscale status`",
                        spec.applied
                    ),
                ));
            }
            Rollout::Complete(counts) => {
                reporter.progress(&progress(&object, &counts, &sets, workload, None, ""));
                return Ok(workload.clone());
            }
            Rollout::Progressing(counts) => {
                let start = *ready_at_start.get_or_insert(counts.ready);
                let eta = estimate_eta(start, counts.ready, counts.desired, started.elapsed());
                let note = if !counts.observed {
                    "waiting for the controller to see the change"
                } else if counts.total > counts.desired {
                    "old pods terminating"
                } else {
                    ""
                };
                reporter.progress(&progress(&object, &counts, &sets, workload, eta, note));
            }
        }
    }
    Err(Error::failed(
        format!("the watch on {object} ended unexpectedly"),
        format!(
            "{}; check the rollout with `kubectl orchscale status`",
            spec.applied
        ),
    ))
}

fn progress<K: Resource>(
    object: &str,
    counts: &Counts,
    sets: &BTreeMap<String, ReplicaSet>,
    workload: &K,
    eta: Option<Duration>,
    note: &str,
) -> Progress {
    let revision = workload
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"));
    Progress {
        object: object.to_string(),
        desired: counts.desired,
        updated: counts.updated,
        ready: counts.ready,
        available: counts.available,
        new_replica_set: new_replica_set(revision.map(String::as_str), sets),
        eta,
        note: note.to_string(),
    }
}

fn apply_event<K: ResourceExt>(map: &mut BTreeMap<String, K>, event: Event<K>) {
    match event {
        // A (re-)list replaces what we knew: objects deleted meanwhile disappear.
        Event::Init => map.clear(),
        Event::Apply(k) | Event::InitApply(k) => {
            map.insert(k.name_any(), k);
        }
        Event::Delete(k) => {
            map.remove(&k.name_any());
        }
        Event::InitDone => {}
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

/// The replica count was moved away from what we set, most often by the workload's HPA.
fn replicas_overridden(object: &str, now: i32, expected: i32, spec: &FollowSpec<'_>) -> Error {
    match spec.autoscaler {
        Some(hpa) => Error::failed(
            format!(
                "HPA {hpa} changed {object} replicas from {expected} to {now} during the rollout \
                 (its recommendation at the current load)"
            ),
            format!(
                "{}; the HPA keeps control of the count: for a lasting floor use \
                 `kubectl orchscale hpa --min {expected}`",
                spec.applied
            ),
        ),
        None => Error::failed(
            format!(
                "{object} replicas were changed from {expected} to {now} by someone else during the rollout"
            ),
            format!(
                "{}; find out who changes it (`kubectl get {object} -o yaml`, managedFields)",
                spec.applied
            ),
        ),
    }
}

fn pods_failed(object: &str, problems: &[PodProblem], applied: &str) -> Error {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let hint = match problems[0].reason.as_str() {
        "Unschedulable" => {
            "the cluster has no room for the pods: free capacity, add nodes, or lower requests"
        }
        "OOMKilled" => "the container needs more memory: raise its memory limit",
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
            "check the image name, tag and pull secrets"
        }
        _ => "check the pod logs (`kubectl logs --previous`) for why it crashes",
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

    #[test]
    fn eta_follows_the_pace() {
        assert_eq!(estimate_eta(3, 3, 5, Duration::from_secs(10)), None);
        assert_eq!(
            estimate_eta(3, 4, 5, Duration::from_secs(10)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            estimate_eta(0, 2, 6, Duration::from_secs(4)),
            Some(Duration::from_secs(8))
        );
        assert_eq!(estimate_eta(3, 5, 5, Duration::from_secs(4)), None);
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
        let mut spec = FollowSpec {
            name: "orchestrator",
            selector: "app=orchestrator",
            timeout: Duration::from_secs(1),
            applied: "replicas set to 5",
            expected_replicas: Some(5),
            autoscaler: Some("orchestrator"),
        };
        let err = replicas_overridden("deployment/orchestrator", 3, 5, &spec);
        assert!(
            err.to_string()
                .starts_with("HPA orchestrator changed deployment/orchestrator replicas from 5 to 3")
        );
        assert!(err.hint().contains("hpa --min 5"));
        spec.autoscaler = None;
        let err = replicas_overridden("deployment/orchestrator", 3, 5, &spec);
        assert!(err.to_string().contains("by someone else"));
    }

    #[test]
    fn pod_failures_name_pods_and_hint() {
        let problems = vec![PodProblem {
            pod: "orchestrator-x".into(),
            reason: "Unschedulable".into(),
            message: "0/3 nodes are available".into(),
        }];
        let err = pods_failed("deployment/orchestrator", &problems, "replicas set to 5");
        assert!(
            err.to_string()
                .contains("pod orchestrator-x: Unschedulable (0/3 nodes are available)")
        );
        assert!(err.hint().starts_with("replicas set to 5"));
        assert_eq!(err.exit_code(), 1);
    }
}
