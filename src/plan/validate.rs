//! The checks of `validate` (the runbook's Validation section), as pure verdicts over the
//! objects read: each gives a name, ok or not, and a one-line detail saying why.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use crate::health::{self, NotServed, Workload};

/// One line of the checklist (and one element of the JSON `checks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Check {
            name: name.to_string(),
            ok,
            detail: detail.into(),
        }
    }
}

/// Check names, stable for scripts reading the JSON.
pub const DEPLOYMENT: &str = "deployment available";
pub const PODS: &str = "pods ready";
pub const HPA: &str = "hpa scaling active";
pub const METRICS: &str = "metrics available";
pub const STATEFULSET: &str = "statefulset ready";
pub const HEALTH: &str = "health endpoint";

/// Available when the controller has seen the current spec and ready = available = updated =
/// desired.
pub fn deployment_check(name: &str, deployment: Option<&Deployment>) -> Check {
    let Some(d) = deployment else {
        return Check::new(DEPLOYMENT, false, format!("deployment/{name} not found"));
    };
    let n = d.counts();
    let ok = n.observed && n.ready == n.desired && n.available == n.desired && n.updated == n.desired;
    let mut detail = format!(
        "deployment/{name}: {}/{} ready, {} available, {} up to date",
        n.ready, n.desired, n.available, n.updated
    );
    if !n.observed {
        detail.push_str("; the controller has not observed the latest spec yet");
    }
    Check::new(DEPLOYMENT, ok, detail)
}

/// Every live pod (not terminating, not finished) Ready; the ones that are not are named, with why.
pub fn pods_check(pods: &[Pod]) -> Check {
    let live: Vec<&Pod> = pods.iter().filter(|p| health::is_live(p)).collect();
    if live.is_empty() {
        return Check::new(PODS, false, "no pods found for the deployment's selector");
    }
    let not_ready: Vec<String> = live
        .iter()
        .filter(|p| !health::pod_ready(p))
        .map(|p| match health::pod_problem(p) {
            Some(problem) => problem.to_string(),
            None => format!(
                "pod {}: not Ready ({})",
                p.metadata.name.as_deref().unwrap_or("?"),
                p.status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Pending".into())
            ),
        })
        .collect();
    let ready = live.len() - not_ready.len();
    if not_ready.is_empty() {
        Check::new(PODS, true, format!("{ready}/{} pods Ready", live.len()))
    } else {
        Check::new(
            PODS,
            false,
            format!("{ready}/{} pods Ready; {}", live.len(), not_ready.join("; ")),
        )
    }
}

/// The HPA exists and its ScalingActive condition is True (it can compute a replica count).
pub fn hpa_check(name: &str, hpa: Option<&HorizontalPodAutoscaler>) -> Check {
    let Some(hpa) = hpa else {
        return Check::new(
            HPA,
            false,
            format!("horizontalpodautoscaler/{name} not found: the deployment does not autoscale"),
        );
    };
    let spec = hpa.spec.as_ref();
    let bounds = format!(
        "min {} max {}",
        spec.and_then(|s| s.min_replicas).unwrap_or(1),
        spec.map(|s| s.max_replicas).unwrap_or_default()
    );
    let condition = hpa
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "ScalingActive"));
    match condition {
        Some(c) if c.status == "True" => Check::new(
            HPA,
            true,
            format!(
                "horizontalpodautoscaler/{name} ({bounds}): ScalingActive ({})",
                c.reason.as_deref().unwrap_or("True")
            ),
        ),
        Some(c) => Check::new(
            HPA,
            false,
            format!(
                "horizontalpodautoscaler/{name} ({bounds}): ScalingActive {}: {}: {}",
                c.status,
                c.reason.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or("-")
            ),
        ),
        None => Check::new(
            HPA,
            false,
            format!(
                "horizontalpodautoscaler/{name} ({bounds}): no ScalingActive condition yet \
                 (the HPA controller has not evaluated it)"
            ),
        ),
    }
}

/// How long after a pod became Ready metrics-server may still have no sample of it: it scrapes
/// every `--metric-resolution` (15 s by default, up to 60 s in managed clusters) and needs two
/// scrapes for a rate (sigs.k8s.io/metrics-server pkg/storage/pod.go `podStorage.GetMetrics`).
pub const NO_SAMPLE_YET: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether `pod` has not run long enough for a metrics sample: Ready less than
/// [`NO_SAMPLE_YET`] before `now`. A pod that is not Ready is not waited for (the pods check
/// names it already).
pub fn too_young_for_a_sample(pod: &Pod, now: k8s_openapi::jiff::Timestamp) -> bool {
    let ready_since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref());
    ready_since.is_some_and(|t| now.as_second() - t.0.as_second() < NO_SAMPLE_YET.as_secs() as i64)
}

/// What metrics.k8s.io had for the deployment's live pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Samples {
    pub pods: usize,
    pub with_sample: usize,
    /// Pods without a sample that are too young to have one ([`too_young_for_a_sample`]).
    pub no_sample_yet: usize,
}

/// metrics.k8s.io answers and has samples for the pods; pods too young for a sample are "no
/// sample yet", a failure only once the caller's wait for them ended.
pub(crate) fn metrics_check(samples: Result<Samples, NotServed>) -> Check {
    let s = match samples {
        Err(why) => {
            return Check::new(
                METRICS,
                false,
                format!("{}: the HPA cannot scale on usage", why.explain()),
            );
        }
        Ok(s) => s,
    };
    let pods = s.pods;
    if s.no_sample_yet > 0 {
        return Check::new(
            METRICS,
            false,
            format!(
                "samples for {}/{pods} pods; no sample yet for {} that became Ready less than {}s \
                 ago (metrics-server samples every 15-60 s): run validate again shortly",
                s.with_sample,
                s.no_sample_yet,
                NO_SAMPLE_YET.as_secs()
            ),
        );
    }
    if s.with_sample == 0 && pods > 0 {
        return Check::new(
            METRICS,
            false,
            format!("metrics.k8s.io answers but has no sample for any of the {pods} pods"),
        );
    }
    Check::new(
        METRICS,
        true,
        format!(
            "metrics.k8s.io answers: samples for {}/{pods} pods",
            s.with_sample
        ),
    )
}

/// Ready when the controller observed the spec, readyReplicas = replicas and every pod runs
/// the update revision. An OnDelete set never promotes currentRevision before 1.36
/// (stateful_set_utils.go `completeRollingUpdate`), so it is judged by its `pods` (when they
/// could be read): each at `controller-revision-hash` = updateRevision and Ready; otherwise by
/// [`health::statefulset_updated`].
pub fn statefulset_check(name: &str, statefulset: Option<&StatefulSet>, pods: Option<&[Pod]>) -> Check {
    let Some(s) = statefulset else {
        return Check::new(STATEFULSET, false, format!("statefulset/{name} not found"));
    };
    let n = s.counts();
    let status = s.status.as_ref();
    let current = status.and_then(|s| s.current_revision.clone());
    let update = status.and_then(|s| s.update_revision.clone());
    let on_delete = s
        .spec
        .as_ref()
        .and_then(|sp| sp.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    // OnDelete with its pods read: how many run the update revision and are Ready.
    let by_pods = match (on_delete, pods, update.as_deref()) {
        (true, Some(pods), Some(revision)) => Some(
            pods.iter()
                .filter(|p| health::is_live(p) && health::pod_ready(p))
                .filter(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("controller-revision-hash"))
                        .is_some_and(|hash| hash == revision)
                })
                .count(),
        ),
        _ => None,
    };
    let updated = match by_pods {
        Some(count) => i32::try_from(count).unwrap_or(i32::MAX) >= n.desired,
        None => health::statefulset_updated(s),
    };
    let ok = n.observed && n.ready == n.desired && updated;
    let mut detail = format!("statefulset/{name}: {}/{} ready", n.ready, n.desired);
    if updated {
        detail.push_str(&format!(
            ", revision {}",
            update.as_deref().or(current.as_deref()).unwrap_or("(unknown)")
        ));
    } else if let Some(count) = by_pods {
        detail.push_str(&format!(
            ", update pending (OnDelete): {count}/{} pods at update revision {} and Ready; \
             OnDelete updates a pod only once it is deleted",
            n.desired,
            update.as_deref().unwrap_or("(none)"),
        ));
    } else {
        detail.push_str(&format!(
            ", update pending: {}/{} pods at update revision {} (current revision {})",
            n.updated,
            n.desired,
            update.as_deref().unwrap_or("(none)"),
            current.as_deref().unwrap_or("(none)")
        ));
    }
    if !n.observed {
        detail.push_str("; the controller has not observed the latest spec yet");
    }
    Check::new(STATEFULSET, ok, detail)
}

/// The health endpoint: ok on a 2xx answer. `answer` is the status code and reason, or the
/// error that prevented an answer.
pub fn health_check(target: &str, answer: Result<(u16, String), String>) -> Check {
    match answer {
        Ok((code, reason)) => Check::new(
            HEALTH,
            (200..300).contains(&code),
            format!("GET {target}: {code} {reason}").trim_end().to_string(),
        ),
        Err(error) => Check::new(HEALTH, false, format!("GET {target}: {error}")),
    }
}

/// The health endpoint could not be reached through the service proxy because RBAC forbids
/// `get services/proxy`: not checked, which fails the checklist (a check not run is no pass).
pub fn not_checked_forbidden(target: &str) -> Check {
    Check::new(
        HEALTH,
        false,
        format!(
            "not checked: forbidden (GET {target} needs `get services/proxy` permission): \
             give the endpoint with --health-url URL, or ask for that permission"
        ),
    )
}

/// One check as text: `✓ name: detail` / `✗ name: detail`.
pub fn line(check: &Check) -> String {
    format!(
        "{} {}: {}",
        if check.ok { "✓" } else { "✗" },
        check.name,
        check.detail
    )
}

/// The checklist's verdict line.
pub fn verdict(checks: &[Check]) -> String {
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        format!("all {} checks passed", checks.len())
    } else {
        format!("{failed} of {} checks failed", checks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "o", "generation": 2},
            "spec": {"replicas": 3, "selector": {}, "template": {}}, "status": status}))
        .unwrap()
    }

    #[test]
    fn deployment_needs_every_replica_ready_and_observed() {
        let ok = deployment(
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3}),
        );
        let check = deployment_check("o", Some(&ok));
        assert!(check.ok, "{check:?}");
        assert_eq!(check.detail, "deployment/o: 3/3 ready, 3 available, 3 up to date");
        let short = deployment(json!({"observedGeneration": 2, "updatedReplicas": 3,
            "readyReplicas": 2, "availableReplicas": 2}));
        assert!(!deployment_check("o", Some(&short)).ok);
        let stale = deployment(json!({"observedGeneration": 1, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3}));
        let check = deployment_check("o", Some(&stale));
        assert!(!check.ok && check.detail.contains("not observed"));
        assert!(!deployment_check("o", None).ok);
    }

    fn pod(name: &str, ready: bool, waiting: Option<&str>) -> Pod {
        let mut status = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        if let Some(reason) = waiting {
            status["containerStatuses"] = json!([{"name": "c", "ready": false, "restartCount": 4,
                "image": "i", "imageID": "", "state": {"waiting": {"reason": reason, "message": "back-off"}}}]);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    #[test]
    fn pods_not_ready_are_named_with_why() {
        let pods = [
            pod("a", true, None),
            pod("b", false, Some("CrashLoopBackOff")),
            pod("c", false, None),
        ];
        let check = pods_check(&pods);
        assert!(!check.ok);
        assert_eq!(
            check.detail,
            "1/3 pods Ready; pod b: CrashLoopBackOff (back-off); pod c: not Ready (Running)"
        );
        assert!(pods_check(&pods[..1]).ok);
        assert!(!pods_check(&[]).ok);
    }

    #[test]
    fn evicted_pods_do_not_fail_the_pods_check() {
        let mut evicted = pod("old", false, None);
        evicted.status.as_mut().unwrap().phase = Some("Failed".into());
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        let check = pods_check(&[pod("a", true, None), evicted]);
        assert!(check.ok, "{check:?}");
        assert_eq!(check.detail, "1/1 pods Ready");
    }

    fn hpa(conditions: serde_json::Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({"metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "o"}, "minReplicas": 3, "maxReplicas": 10},
            "status": {"desiredReplicas": 3, "conditions": conditions}}))
        .unwrap()
    }

    #[test]
    fn hpa_needs_scaling_active() {
        let active = hpa(json!([{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]));
        let check = hpa_check("h", Some(&active));
        assert!(check.ok);
        assert!(check.detail.contains("min 3 max 10"), "{}", check.detail);
        let inactive = hpa(json!([{"type": "ScalingActive", "status": "False",
            "reason": "FailedGetResourceMetric", "message": "no metrics returned"}]));
        let check = hpa_check("h", Some(&inactive));
        assert!(!check.ok);
        assert!(
            check
                .detail
                .ends_with("ScalingActive False: FailedGetResourceMetric: no metrics returned")
        );
        assert!(!hpa_check("h", Some(&hpa(json!([])))).ok);
        assert!(hpa_check("h", None).detail.contains("not found"));
    }

    #[test]
    fn metrics_need_the_api_and_samples() {
        let samples = |with_sample, no_sample_yet| {
            Ok(Samples {
                pods: 3,
                with_sample,
                no_sample_yet,
            })
        };
        assert!(metrics_check(samples(3, 0)).ok);
        assert!(
            metrics_check(samples(2, 0)).ok,
            "an old pod may have lost its sample"
        );
        assert!(!metrics_check(samples(0, 0)).ok);
        let young = metrics_check(samples(2, 1));
        assert!(
            !young.ok && young.detail.contains("no sample yet for 1"),
            "{young:?}"
        );
        let absent = metrics_check(Err(NotServed::Absent));
        assert!(
            !absent.ok && absent.detail.contains("no metrics-server"),
            "{absent:?}"
        );
        assert!(metrics_check(Err(NotServed::Unavailable)).detail.contains("503"));
    }

    #[test]
    fn pods_are_too_young_for_a_sample_until_ready_for_a_while() {
        let now: k8s_openapi::jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let pod = |ready_at: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}}))
            .unwrap()
        };
        assert!(too_young_for_a_sample(&pod("2026-01-01T00:09:30Z"), now));
        assert!(!too_young_for_a_sample(&pod("2026-01-01T00:08:00Z"), now));
    }

    #[test]
    fn statefulset_needs_ready_replicas_and_one_revision() {
        let sts = |status: serde_json::Value| -> StatefulSet {
            serde_json::from_value(json!({"metadata": {"name": "p", "generation": 1},
                "spec": {"replicas": 1, "selector": {}, "serviceName": "p", "template": {}},
                "status": status}))
            .unwrap()
        };
        let ok = sts(json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
            "currentRevision": "p-1", "updateRevision": "p-1"}));
        assert!(statefulset_check("p", Some(&ok), None).ok);
        let pending = sts(json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
            "currentRevision": "p-1", "updateRevision": "p-2"}));
        let check = statefulset_check("p", Some(&pending), None);
        assert!(
            !check.ok
                && check
                    .detail
                    .contains("0/1 pods at update revision p-2 (current revision p-1)"),
            "{check:?}"
        );
        // OnDelete before 1.36: currentRevision never promoted; the pods at updateRevision
        // (updatedReplicas) and Ready are what tells.
        let on_delete = |updated: i32| -> StatefulSet {
            serde_json::from_value(json!({"metadata": {"name": "p", "generation": 2},
                "spec": {"replicas": 1, "selector": {}, "serviceName": "p", "template": {},
                         "updateStrategy": {"type": "OnDelete"}},
                "status": {"observedGeneration": 2, "replicas": 1, "readyReplicas": 1,
                           "updatedReplicas": updated, "currentRevision": "p-1", "updateRevision": "p-2"}}))
            .unwrap()
        };
        assert!(statefulset_check("p", Some(&on_delete(1)), None).ok);
        assert!(!statefulset_check("p", Some(&on_delete(0)), None).ok);
        // With its pods: the pod at the update revision and Ready is what counts.
        let pod = |hash: &str, ready: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": "p-0",
                "labels": {"controller-revision-hash": hash}},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
            .unwrap()
        };
        let stale = on_delete(0);
        assert!(statefulset_check("p", Some(&stale), Some(&[pod("p-2", "True")])).ok);
        let old = statefulset_check("p", Some(&stale), Some(&[pod("p-1", "True")]));
        assert!(
            !old.ok
                && old
                    .detail
                    .contains("OnDelete updates a pod only once it is deleted"),
            "{old:?}"
        );
        assert!(!statefulset_check("p", Some(&stale), Some(&[pod("p-2", "False")])).ok);
        let down = sts(json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 0}));
        assert!(!statefulset_check("p", Some(&down), None).ok);
    }

    #[test]
    fn health_is_ok_on_2xx_only() {
        assert!(health_check("x", Ok((200, "OK".into()))).ok);
        let check = health_check("http://h/health", Ok((503, "Service Unavailable".into())));
        assert!(!check.ok);
        assert_eq!(check.detail, "GET http://h/health: 503 Service Unavailable");
        assert!(!health_check("x", Err("connection refused".into())).ok);
    }

    #[test]
    fn render_marks_each_check_and_counts_failures() {
        let checks = [Check::new("a", true, "fine"), Check::new("b", false, "broken")];
        assert_eq!(line(&checks[0]), "✓ a: fine");
        assert_eq!(line(&checks[1]), "✗ b: broken");
        assert_eq!(verdict(&checks), "1 of 2 checks failed");
        assert_eq!(verdict(&checks[..1]), "all 1 checks passed");
    }
}
