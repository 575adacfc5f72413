//! The cluster's room for pods of the deployment, for the `--min` warning: the pods it has
//! plus how many more of the same size fit in the nodes' free room.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};

use crate::cluster::Cluster;
use crate::commands::shared::selector_string;
use crate::health;
use crate::plan::resources::{container_resources, fit_check};
use crate::quantity::Quantity;
use crate::report::Reporter;

/// The CPU and memory one pod of the template requests (the sum over its containers; a value
/// that does not parse counts as zero, which only makes the estimate generous).
pub fn pod_requests(template: &PodTemplateSpec) -> (Quantity, Quantity) {
    let containers = template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let sum = |name: &str| {
        containers
            .iter()
            .filter_map(|c| container_resources(c).ok()?.requests.get(name).cloned())
            .fold(Quantity::zero(), |acc, q| acc.checked_add(&q).unwrap_or(acc))
    };
    (sum("cpu"), sum("memory"))
}

/// Pods of the deployment that exist now plus pods of its size that still fit; `None` when
/// the nodes or pods cannot be listed (e.g. no permission to list nodes): the warning is then
/// left out, never the change.
pub async fn room(cluster: &Cluster, deployment: &Deployment, reporter: &mut Reporter) -> Option<i32> {
    let spec = deployment.spec.as_ref()?;
    let (cpu, memory) = pod_requests(&spec.template);
    let listed = async {
        let nodes: Vec<Node> = cluster.list_cluster().await?;
        let pods: Vec<Pod> = cluster.list_cluster().await?;
        let own: Vec<Pod> = cluster.list(&selector_string(&spec.selector)).await?;
        Ok::<_, crate::error::Error>((nodes, pods, own))
    };
    match listed.await {
        Ok((nodes, pods, own)) => {
            let existing = own.iter().filter(|p| health::is_live(p)).count();
            let more = fit_check(&nodes, &pods, (&cpu, &memory), 0).max_pods;
            Some(more.saturating_add(i32::try_from(existing).unwrap_or(i32::MAX)))
        }
        Err(e) => {
            reporter.detail(&format!("cannot estimate the cluster's room for --min: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_requests_sum_the_containers() {
        let template: PodTemplateSpec = serde_json::from_value(json!({"spec": {"containers": [
            {"name": "orchestrator", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"name": "log-shipper", "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}},
            {"name": "bare"}
        ]}}))
        .unwrap();
        let (cpu, memory) = pod_requests(&template);
        assert_eq!(cpu, Quantity::parse("550m").unwrap());
        assert_eq!(memory, Quantity::parse("1088Mi").unwrap());
    }

    #[test]
    fn a_template_without_spec_requests_nothing() {
        let (cpu, memory) = pod_requests(&PodTemplateSpec::default());
        assert!(cpu.is_zero() && memory.is_zero());
    }
}
