//! After a change, the final view waits briefly for the HPA controller to observe the new
//! spec, so that the replicas and conditions shown are the controller's answer to it rather
//! than its status from before the change.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::cluster::watch::{Item, Scope, watch};
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

/// Long enough for a live controller (it syncs at once when the spec changes), short enough
/// not to stall a command whose change is already made and verified.
pub const OBSERVE_WAIT: Duration = Duration::from_secs(10);

/// The HPA once its status reports `generation` as observed, or `None` when that does not
/// happen within `wait` (or the watch fails: the caller then shows what it has).
pub async fn observed(
    cluster: &Cluster,
    name: &str,
    generation: i64,
    wait: Duration,
) -> Option<HorizontalPodAutoscaler> {
    let mut events = std::pin::pin!(watch::<HorizontalPodAutoscaler>(cluster, Scope::Named(name)));
    let first_observed = async {
        while let Some(item) = events.next().await {
            if let Item::Object(hpa) = item
                && is_observed(&hpa, generation)
            {
                return Some(hpa);
            }
        }
        None
    };
    tokio::time::timeout(wait, first_observed).await.ok().flatten()
}

/// Whether the controller has seen `generation` of the spec.
fn is_observed(hpa: &HorizontalPodAutoscaler, generation: i64) -> bool {
    hpa.status
        .as_ref()
        .and_then(|status| status.observed_generation)
        .is_some_and(|observed| observed >= generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(generation: i64, observed: Option<i64>) -> HorizontalPodAutoscaler {
        let mut value = json!({
            "metadata": {"name": "orchestrator", "generation": generation},
            "spec": {"maxReplicas": 10, "scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"}},
        });
        if let Some(observed) = observed {
            value["status"] = json!({"observedGeneration": observed, "desiredReplicas": 3});
        }
        serde_json::from_value(value).expect("valid HPA")
    }

    #[test]
    fn observed_only_once_the_status_reaches_the_generation() {
        assert!(!is_observed(&hpa(2, None), 2));
        assert!(!is_observed(&hpa(2, Some(1)), 2));
        assert!(is_observed(&hpa(2, Some(2)), 2));
        assert!(is_observed(&hpa(2, Some(3)), 2));
    }
}
