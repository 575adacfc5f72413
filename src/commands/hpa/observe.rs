//! After a change, the final view waits for the HPA controller's answer to the new spec where
//! that answer can be told, so that the replicas and conditions shown are not its status from
//! before the change presented as current.
//!
//! Before Kubernetes 1.36 an HPA has no `metadata.generation` and its status no
//! `observedGeneration` (kubernetes#138228), and a changed spec waits in the controller's queue
//! for the next resync (`--horizontal-pod-autoscaler-sync-period`, 15 s by default;
//! pkg/controller/podautoscaler/horizontal.go `enqueueHPA`, kubernetes#138294). The controller
//! writes its status only when it differs (`updateStatusIfNeeded`), so a status change after our
//! write is its answer; when the new spec cannot change the status, nothing tells, and waiting
//! would be a stall.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::cluster::watch::{Item, Scope, watch};
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};

/// With a generation the controller reconciles a change at once: long enough for it, short
/// enough not to stall a command whose change is already made and verified.
pub(crate) const OBSERVE_WAIT: Duration = Duration::from_secs(10);

/// kube-controller-manager's default `--horizontal-pod-autoscaler-sync-period`: without a
/// generation, the controller acts on a change at its next resync, at most this much later.
pub(crate) const HPA_SYNC_PERIOD: Duration = Duration::from_secs(15);

/// How the controller's answer to the stored spec can be told.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sign {
    /// The HPA has a generation (1.36+): its status reports it as observed.
    Generation(i64),
    /// No generation, but the new spec must change the status (e.g. desiredReplicas outside the
    /// new bounds): any status other than the one stored with the change is the answer.
    StatusChange(Option<HorizontalPodAutoscalerStatus>),
    /// No generation and nothing in the status has to change: it cannot be told.
    Untellable,
}

impl Sign {
    /// How long to wait for the sign, at most `timeout` (the user's bound).
    pub(crate) fn wait(&self, timeout: Duration) -> Duration {
        match self {
            Sign::Generation(_) => timeout.min(OBSERVE_WAIT),
            Sign::StatusChange(_) => timeout.min(HPA_SYNC_PERIOD),
            Sign::Untellable => Duration::ZERO,
        }
    }

    fn seen(&self, hpa: &HorizontalPodAutoscaler) -> bool {
        match self {
            Sign::Generation(generation) => hpa
                .status
                .as_ref()
                .and_then(|status| status.observed_generation)
                .is_some_and(|observed| observed >= *generation),
            Sign::StatusChange(before) => hpa.status != *before,
            Sign::Untellable => false,
        }
    }
}

/// What tells that the controller acted on `stored` (the HPA as our write stored it).
pub(crate) fn sign(stored: &HorizontalPodAutoscaler) -> Sign {
    if let Some(generation) = stored.metadata.generation {
        return Sign::Generation(generation);
    }
    let spec = stored.spec.as_ref();
    let min = spec.and_then(|s| s.min_replicas).unwrap_or(1);
    let max = spec.map_or(min, |s| s.max_replicas).max(min);
    let desired = stored.status.as_ref().map(|s| s.desired_replicas);
    match desired {
        // A scale-to-zero target (desired 0) is left alone by the controller.
        Some(desired) if desired != 0 && desired != desired.clamp(min, max) => {
            Sign::StatusChange(stored.status.clone())
        }
        _ => Sign::Untellable,
    }
}

/// The HPA once `sign` shows, or `None` when it does not within `wait` (or the watch fails:
/// the caller then shows what it has).
pub(crate) async fn observed(
    cluster: &Cluster,
    name: &str,
    sign: &Sign,
    wait: Duration,
) -> Option<HorizontalPodAutoscaler> {
    if wait.is_zero() {
        return None;
    }
    let mut events = std::pin::pin!(watch::<HorizontalPodAutoscaler>(cluster, Scope::Named(name)));
    let first_observed = async {
        while let Some(item) = events.next().await {
            if let Item::Object(hpa) = item
                && sign.seen(&hpa)
            {
                return Some(hpa);
            }
        }
        None
    };
    tokio::time::timeout(wait, first_observed).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn hpa(generation: Option<i64>, min: i32, status: Option<Value>) -> HorizontalPodAutoscaler {
        let mut value = json!({
            "metadata": {"name": "orchestrator"},
            "spec": {"minReplicas": min, "maxReplicas": 10,
                     "scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"}},
        });
        if let Some(generation) = generation {
            value["metadata"]["generation"] = json!(generation);
        }
        if let Some(status) = status {
            value["status"] = status;
        }
        serde_json::from_value(value).expect("valid HPA")
    }

    #[test]
    fn with_a_generation_observed_only_once_the_status_reaches_it() {
        let sign = sign(&hpa(Some(2), 5, None));
        assert_eq!(sign, Sign::Generation(2));
        let observed = |o: i64| {
            hpa(
                Some(2),
                5,
                Some(json!({"observedGeneration": o, "desiredReplicas": 3})),
            )
        };
        assert!(!sign.seen(&hpa(Some(2), 5, None)));
        assert!(!sign.seen(&observed(1)));
        assert!(sign.seen(&observed(2)));
        assert!(sign.seen(&observed(3)));
    }

    #[test]
    fn without_a_generation_a_status_change_tells_only_when_one_must_come() {
        let before = json!({"currentReplicas": 3, "desiredReplicas": 3});
        // min 5 over desired 3: the controller must raise desiredReplicas.
        let stored = hpa(None, 5, Some(before.clone()));
        let sign = sign(&stored);
        assert!(matches!(sign, Sign::StatusChange(_)), "{sign:?}");
        assert!(
            !sign.seen(&stored),
            "the status stored with the change is no answer"
        );
        assert!(sign.seen(&hpa(
            None,
            5,
            Some(json!({"currentReplicas": 3, "desiredReplicas": 5}))
        )));
        // min 2 under desired 3: nothing has to change, so nothing can tell.
        assert_eq!(super::sign(&hpa(None, 2, Some(before))), Sign::Untellable);
        assert_eq!(super::sign(&hpa(None, 5, None)), Sign::Untellable);
    }

    #[test]
    fn waits_are_bounded_by_the_timeout() {
        let status_change = Sign::StatusChange(None);
        assert_eq!(status_change.wait(Duration::from_secs(600)), HPA_SYNC_PERIOD);
        assert_eq!(status_change.wait(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(Sign::Generation(1).wait(Duration::from_secs(600)), OBSERVE_WAIT);
        assert_eq!(Sign::Untellable.wait(Duration::from_secs(600)), Duration::ZERO);
    }
}
