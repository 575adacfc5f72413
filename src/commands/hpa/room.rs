//! The cluster's room for pods of the deployment, for the `--min` warning: the pods it has
//! plus how many more of the same size fit in the nodes' free room.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};

use crate::cluster::Cluster;
use crate::commands::shared::selector_string;
use crate::error::Error;
use crate::health;
use crate::plan::resources::{NodeUsage, ScheduledPod, container_resources, fit_check};
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

/// The server-side filter of the capacity list: finished pods hold no room, so the API server
/// leaves them out instead of sending them.
pub(crate) const ACTIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// The nodes and what the running pods on them request: every pod of every namespace, read
/// page by page as slim pods and folded into per-node sums, so that neither the download held
/// at once nor the memory grows with the pods. The node list and the pod pages are read at
/// the same time. `terminating`: whether pods being deleted still count (their room is not
/// free until they are gone; a rollout's own replaced pods are taken out by the caller).
///
/// # Errors
/// API errors (403 without permission to list cluster-wide) and transport errors.
pub(crate) async fn cluster_usage(
    cluster: &Cluster,
    terminating: bool,
) -> Result<(Vec<Node>, NodeUsage), Error> {
    let pods = cluster.fold_pages(
        "/api/v1/pods",
        ACTIVE_PODS,
        NodeUsage::default,
        |usage, pod: ScheduledPod| {
            if terminating || !pod.is_terminating() {
                usage.add(&pod);
            }
        },
    );
    tokio::try_join!(cluster.list_cluster::<Node>(), pods)
}

/// [`cluster_usage`] when `wanted` (a change that can need more room), else nothing: lets a
/// command start the read next to its own reads and skip it when it cannot matter.
pub(crate) async fn usage_if(
    cluster: &Cluster,
    wanted: bool,
) -> Option<Result<(Vec<Node>, NodeUsage), Error>> {
    if wanted {
        Some(cluster_usage(cluster, true).await)
    } else {
        None
    }
}

/// Pods of the deployment that exist now plus pods of its size that still fit, from the
/// cluster's usage read by [`usage_if`]; `None` when the nodes or pods cannot be listed (e.g.
/// no permission to list nodes): the warning is then left out, never the change.
pub async fn room(
    cluster: &Cluster,
    deployment: &Deployment,
    usage: Result<(Vec<Node>, NodeUsage), Error>,
    reporter: &mut Reporter,
) -> Option<i32> {
    let spec = deployment.spec.as_ref()?;
    let (cpu, memory) = pod_requests(&spec.template);
    let listed = async {
        let (nodes, usage) = usage?;
        let own: Vec<Pod> = cluster.list(&selector_string(&spec.selector)).await?;
        Ok::<_, Error>((nodes, usage, own))
    };
    match listed.await {
        Ok((nodes, usage, own)) => {
            let existing = own.iter().filter(|p| health::is_live(p)).count();
            let more = fit_check(&nodes, &usage, (&cpu, &memory), 0).max_pods;
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
