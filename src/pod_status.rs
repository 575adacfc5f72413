//! A pod's READY, STATUS, RESTARTS and AGE exactly as `kubectl get pods` prints them, plus the
//! reason kubectl leaves out (an Unschedulable Pending pod, the OOM kill behind a crash loop).
//!
//! Pure: the clock is a parameter, so unit tests need no server. The rules are upstream's
//! `printPod` (kubernetes pkg/printers/internalversion/printers.go) and the durations
//! apimachinery's `HumanDuration` (k8s.io/apimachinery/pkg/util/duration/duration.go).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;

use crate::health;
use crate::plan::resources::is_extended;

/// What `kubectl get pods` shows of one pod, plus why when kubectl's word hides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodStatus {
    /// Containers Ready and Running (READY's x).
    pub(crate) ready_containers: usize,
    /// Containers, restartable init containers (sidecars) included (READY's y).
    pub(crate) total_containers: usize,
    /// The STATUS column: Running, Pending, CrashLoopBackOff, Init:0/1, Terminating, ...
    pub(crate) status: String,
    /// The reason behind `status` that kubectl does not print: `Unschedulable` for a Pending
    /// pod the scheduler could not place, the last termination (`OOMKilled`, `exit code 1`) of
    /// a crash-looping container.
    pub(crate) detail: Option<String>,
    /// The RESTARTS count.
    pub(crate) restarts: i32,
    /// When the last restart happened (the latest `lastState.terminated.finishedAt`).
    pub(crate) last_restart: Option<Timestamp>,
}

impl PodStatus {
    /// STATUS with its detail: `Pending (Unschedulable)`, `CrashLoopBackOff (OOMKilled)`.
    pub(crate) fn status_text(&self) -> String {
        match &self.detail {
            Some(detail) => format!("{} ({detail})", self.status),
            None => self.status.clone(),
        }
    }

    /// RESTARTS as kubectl prints it: `3 (45s ago)` once a restart time is known.
    pub(crate) fn restarts_text(&self, now: Timestamp) -> String {
        match self.last_restart {
            Some(at) if self.restarts != 0 => {
                format!(
                    "{} ({} ago)",
                    self.restarts,
                    human_duration(seconds_between(at, now))
                )
            }
            _ => self.restarts.to_string(),
        }
    }
}

fn seconds_between(then: Timestamp, now: Timestamp) -> i64 {
    now.as_second() - then.as_second()
}

/// A pod's age in seconds at `now`; `None` without a creationTimestamp.
pub(crate) fn age_seconds(pod: &Pod, now: Timestamp) -> Option<i64> {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| seconds_between(t.0, now))
}

/// AGE as kubectl prints it (`<unknown>` without a creationTimestamp).
pub(crate) fn age_text(age_seconds: Option<i64>) -> String {
    age_seconds.map_or_else(|| "<unknown>".to_string(), human_duration)
}

/// apimachinery's `duration.HumanDuration`: about 2-3 significant figures (`45s`, `3m12s`,
/// `12m`, `5h3m`, `2d4h`, `400d`, `3y20d`), `0s` for a second of clock skew and `<invalid>`
/// beyond it.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// A sidecar: an init container with `restartPolicy: Always`.
fn restartable(container: Option<&Container>) -> bool {
    container.and_then(|c| c.restart_policy.as_deref()) == Some("Always")
}

/// READY, STATUS and RESTARTS of a pod, in upstream `printPod`'s order: status.reason over the
/// phase; SchedulingGated; the first init container not done (`Init:<reason>`,
/// `Init:ExitCode:N`, `Init:x/y`); else the containers from last to first (a waiting reason,
/// a terminated reason, `ExitCode:N`/`Signal:N`), `Completed` with a container still running
/// shown as Running/NotReady; NodeLost while deleted is `Unknown`; deleted and not finished is
/// `Terminating`.
pub(crate) fn pod_status(pod: &Pod) -> PodStatus {
    let spec = pod.spec.as_ref();
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    let mut reason = match status.reason.as_deref() {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => phase.clone(),
    };
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated") {
            reason = "SchedulingGated".to_string();
        }
    }

    let init_specs: BTreeMap<&str, &Container> = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let init_count = init_specs.len();
    let total =
        spec.map_or(0, |s| s.containers.len()) + init_specs.values().filter(|c| restartable(Some(c))).count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut sidecar_last_restart: Option<Timestamp> = None;
    let later = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let finished_at = |cs: &k8s_openapi::api::core::v1::ContainerStatus| {
        cs.last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
            .map(|t| t.0)
    };

    let mut initializing = false;
    for (i, cs) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += cs.restart_count;
        last_restart = later(last_restart, finished_at(cs));
        let sidecar = restartable(init_specs.get(cs.name.as_str()).copied());
        if sidecar {
            sidecar_restarts += cs.restart_count;
            sidecar_last_restart = later(sidecar_last_restart, finished_at(cs));
        }
        let state = cs.state.clone().unwrap_or_default();
        if state.terminated.as_ref().is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if sidecar && cs.started == Some(true) {
            if cs.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = &state.terminated {
            reason = match t.reason.as_deref() {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => match t.signal {
                    Some(signal) if signal != 0 => format!("Init:Signal:{signal}"),
                    _ => format!("Init:ExitCode:{}", t.exit_code),
                },
            };
        } else if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }

    if !initializing || health::pod_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        let mut error_reason: Option<String> = None;
        for cs in status.container_statuses.iter().flatten().rev() {
            restarts += cs.restart_count;
            last_restart = later(last_restart, finished_at(cs));
            let state = cs.state.clone().unwrap_or_default();
            if let Some(r) = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.as_deref())
                .filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref() {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ => match t.signal {
                        Some(signal) if signal != 0 => format!("Signal:{signal}"),
                        _ => format!("ExitCode:{}", t.exit_code),
                    },
                };
                if t.exit_code != 0 {
                    error_reason = Some(reason.clone());
                }
            } else if cs.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" {
            if has_running && health::pod_ready(pod) {
                reason = "Running".to_string();
            } else if let Some(e) = error_reason {
                reason = e;
            } else if has_running {
                reason = "NotReady".to_string();
            }
        }
    }

    let deleting = pod.metadata.deletion_timestamp.is_some();
    if deleting && status.reason.as_deref() == Some("NodeLost") {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    PodStatus {
        ready_containers: ready,
        total_containers: total,
        detail: detail(pod, &reason),
        status: reason,
        restarts,
        last_restart,
    }
}

/// What kubectl's word hides: a Pending pod's PodScheduled=False reason (Unschedulable), and
/// a crash loop's last termination (OOMKilled, else the exit code).
fn detail(pod: &Pod, status: &str) -> Option<String> {
    let pod_status = pod.status.as_ref()?;
    match status {
        "Pending" => pod_status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .and_then(|c| c.reason.clone())
            .filter(|r| !r.is_empty()),
        "CrashLoopBackOff" => pod_status
            .container_statuses
            .iter()
            .flatten()
            .filter(|cs| {
                cs.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff")
            })
            .find_map(|cs| cs.last_state.as_ref()?.terminated.clone())
            .map(|t| match t.reason.as_deref() {
                Some("OOMKilled") => "OOMKilled".to_string(),
                _ => format!("exit code {}", t.exit_code),
            }),
        _ => None,
    }
}

/// Extended resources (domain-qualified names such as `nvidia.com/gpu`) the pod's containers
/// request, summed per name; whole numbers, as Kubernetes requires of them.
pub(crate) fn extended_requests(pod: &Pod) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let resources = c.resources.as_ref();
        // An extended resource's request defaults to its limit (they must be equal).
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        let names: std::collections::BTreeSet<&String> = requests
            .into_iter()
            .chain(limits)
            .flat_map(|m| m.keys())
            .collect();
        for name in names.into_iter().filter(|n| is_extended(n)) {
            let value = requests
                .and_then(|m| m.get(name))
                .or_else(|| limits.and_then(|m| m.get(name)))
                .and_then(|q| q.0.parse::<i64>().ok());
            if let Some(v) = value {
                *out.entry(name.clone()).or_insert(0) += v;
            }
        }
    }
    out
}

/// Extended resources as one cell: `nvidia.com/gpu=1`, `-` when none.
pub(crate) fn extended_text(resources: &BTreeMap<String, i64>) -> String {
    if resources.is_empty() {
        return "-".to_string();
    }
    resources
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    //! Expected words are upstream `printPod`'s (pkg/printers/internalversion/printers.go) for
    //! the same pod, and `HumanDuration`'s (k8s.io/apimachinery/pkg/util/duration) for ages.
    use super::*;
    use serde_json::{Value, json};

    fn pod(spec: Value, status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "orchestrator-abc-1",
            "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec, "status": status}))
        .unwrap()
    }

    fn one() -> Value {
        json!({"containers": [{"name": "orchestrator"}]})
    }

    fn container(state: Value, ready: bool, restarts: i32) -> Value {
        json!({"name": "orchestrator", "image": "i", "imageID": "", "ready": ready,
               "restartCount": restarts, "state": state})
    }

    #[test]
    fn human_duration_matches_apimachinery() {
        // duration.go HumanDuration's table.
        for (secs, text) in [
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (8 * 3600 + 59 * 60, "8h"),
            (47 * 3600, "47h"),
            (2 * 86_400 + 4 * 3600, "2d4h"),
            (3 * 86_400, "3d"),
            (400 * 86_400, "400d"),
            (3 * 365 * 86_400 + 20 * 86_400, "3y20d"),
            (9 * 365 * 86_400, "9y"),
        ] {
            assert_eq!(human_duration(secs), text, "{secs}s");
        }
    }

    #[test]
    fn running_and_ready_is_running() {
        let p = pod(
            one(),
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [container(json!({"running": {}}), true, 0)]}),
        );
        let s = pod_status(&p);
        assert_eq!((s.ready_containers, s.total_containers), (1, 1));
        assert_eq!(s.status_text(), "Running");
        assert_eq!(s.restarts_text(Timestamp::UNIX_EPOCH), "0");
    }

    #[test]
    fn waiting_reasons_win_over_the_phase() {
        // printPod: a container's waiting reason replaces the phase.
        for (phase, reason) in [
            ("Pending", "ErrImagePull"),
            ("Pending", "ImagePullBackOff"),
            ("Pending", "ContainerCreating"),
            ("Running", "CreateContainerConfigError"),
        ] {
            let p = pod(
                one(),
                json!({"phase": phase, "containerStatuses": [
                    container(json!({"waiting": {"reason": reason}}), false, 0)]}),
            );
            let s = pod_status(&p);
            assert_eq!(s.status, reason);
            assert_eq!(s.detail, None);
            assert_eq!((s.ready_containers, s.total_containers), (0, 1));
        }
    }

    #[test]
    fn a_crash_loop_keeps_kubectls_word_and_names_the_oom_kill() {
        let mut status = container(json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 3);
        status["lastState"] = json!({"terminated": {"reason": "OOMKilled", "exitCode": 137,
            "finishedAt": "2026-01-01T00:09:15Z"}});
        let p = pod(one(), json!({"phase": "Running", "containerStatuses": [status]}));
        let s = pod_status(&p);
        assert_eq!(s.status, "CrashLoopBackOff");
        assert_eq!(s.status_text(), "CrashLoopBackOff (OOMKilled)");
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        assert_eq!(s.restarts_text(now), "3 (45s ago)");

        let mut crash = container(json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 1);
        crash["lastState"] = json!({"terminated": {"reason": "Error", "exitCode": 1}});
        let p = pod(one(), json!({"phase": "Running", "containerStatuses": [crash]}));
        assert_eq!(pod_status(&p).status_text(), "CrashLoopBackOff (exit code 1)");
    }

    #[test]
    fn terminated_reasons_and_exit_codes() {
        let oom = pod(
            one(),
            json!({"phase": "Running", "containerStatuses": [
            container(json!({"terminated": {"reason": "OOMKilled", "exitCode": 137}}), false, 0)]}),
        );
        assert_eq!(pod_status(&oom).status, "OOMKilled");
        let done = pod(
            one(),
            json!({"phase": "Succeeded", "containerStatuses": [
            container(json!({"terminated": {"reason": "Completed", "exitCode": 0}}), false, 0)]}),
        );
        assert_eq!(pod_status(&done).status, "Completed");
        let bare = pod(
            one(),
            json!({"phase": "Failed", "containerStatuses": [
            container(json!({"terminated": {"exitCode": 2}}), false, 0)]}),
        );
        assert_eq!(pod_status(&bare).status, "ExitCode:2");
        let signal = pod(
            one(),
            json!({"phase": "Failed", "containerStatuses": [
            container(json!({"terminated": {"exitCode": 0, "signal": 9}}), false, 0)]}),
        );
        assert_eq!(pod_status(&signal).status, "Signal:9");
    }

    #[test]
    fn completed_beside_a_running_container_is_running_or_not_ready() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let statuses = json!([
            {"name": "a", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
             "state": {"running": {}}},
            {"name": "b", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]);
        let ready = pod(
            spec.clone(),
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": statuses.clone()}),
        );
        assert_eq!(pod_status(&ready).status, "Running");
        let not_ready = pod(spec, json!({"phase": "Running", "containerStatuses": statuses}));
        let s = pod_status(&not_ready);
        assert_eq!(s.status, "NotReady");
        assert_eq!((s.ready_containers, s.total_containers), (1, 2));
    }

    #[test]
    fn unschedulable_pods_are_pending_with_the_reason_shown() {
        let p = pod(
            one(),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]}),
        );
        let s = pod_status(&p);
        assert_eq!(s.status, "Pending", "kubectl prints the phase");
        assert_eq!(s.status_text(), "Pending (Unschedulable)");
        let gated = pod(
            one(),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(pod_status(&gated).status_text(), "SchedulingGated");
    }

    #[test]
    fn init_containers_come_first() {
        let spec = json!({"initContainers": [{"name": "migrate"}, {"name": "warm"}],
                          "containers": [{"name": "orchestrator"}]});
        let init = |state: Value| {
            json!({"name": "migrate", "image": "i", "imageID": "", "ready": false,
                   "restartCount": 2, "state": state})
        };
        let waiting = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                init(json!({"waiting": {"reason": "CrashLoopBackOff"}}))]}),
        );
        let s = pod_status(&waiting);
        assert_eq!(s.status, "Init:CrashLoopBackOff");
        assert_eq!(s.restarts, 2);
        let failed = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                init(json!({"terminated": {"exitCode": 3}}))]}),
        );
        assert_eq!(pod_status(&failed).status, "Init:ExitCode:3");
        let running = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                init(json!({"running": {}}))]}),
        );
        assert_eq!(pod_status(&running).status, "Init:0/2");
        let initializing = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                init(json!({"waiting": {"reason": "PodInitializing"}}))]}),
        );
        assert_eq!(pod_status(&initializing).status, "Init:0/2");
    }

    #[test]
    fn a_sidecar_counts_as_a_container() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                          "containers": [{"name": "orchestrator"}]});
        let p = pod(
            spec,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                {"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "image": "i", "imageID": "", "ready": true,
                "started": true, "restartCount": 1, "state": {"running": {}}}],
            "containerStatuses": [container(json!({"running": {}}), true, 0)]}),
        );
        let s = pod_status(&p);
        assert_eq!((s.ready_containers, s.total_containers), (2, 2));
        assert_eq!(s.status, "Running");
        assert_eq!(s.restarts, 1);
    }

    #[test]
    fn deletion_makes_terminating_unless_finished_or_node_lost() {
        let mut p = pod(
            one(),
            json!({"phase": "Running", "containerStatuses": [
                container(json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 0)]}),
        );
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(pod_status(&p).status_text(), "Terminating");
        let mut done = pod(json!({"containers": []}), json!({"phase": "Succeeded"}));
        done.metadata.deletion_timestamp = p.metadata.deletion_timestamp.clone();
        assert_eq!(pod_status(&done).status, "Succeeded");
        let mut lost = pod(one(), json!({"phase": "Running", "reason": "NodeLost"}));
        lost.metadata.deletion_timestamp = p.metadata.deletion_timestamp.clone();
        assert_eq!(pod_status(&lost).status, "Unknown");
        let evicted = pod(one(), json!({"phase": "Failed", "reason": "Evicted"}));
        assert_eq!(pod_status(&evicted).status, "Evicted");
    }

    #[test]
    fn age_is_from_the_creation_timestamp() {
        let p = pod(one(), json!({}));
        let now: Timestamp = "2026-01-01T00:03:12Z".parse().unwrap();
        assert_eq!(age_seconds(&p, now), Some(192));
        assert_eq!(age_text(age_seconds(&p, now)), "3m12s");
        assert_eq!(age_text(None), "<unknown>");
    }

    #[test]
    fn extended_resources_are_summed_and_shown() {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"},
                                        "limits": {"nvidia.com/gpu": "1"}}},
            {"name": "b", "resources": {"limits": {"nvidia.com/gpu": "2", "memory": "1Gi"}}}]}}))
        .unwrap();
        let ext = extended_requests(&p);
        assert_eq!(ext.get("nvidia.com/gpu"), Some(&3));
        assert_eq!(ext.len(), 1);
        assert_eq!(extended_text(&ext), "nvidia.com/gpu=3");
        assert_eq!(extended_text(&BTreeMap::new()), "-");
    }
}
