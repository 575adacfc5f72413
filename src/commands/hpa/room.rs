//! The cluster's room for pods of the deployment, for the `--min` warning (the pods it has plus
//! how many more of the same size fit in the nodes' free room), and the node-by-node read of
//! free room that it and `resources`' capacity check share.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};

use crate::cluster::Cluster;
use crate::commands::shared::selector_string;
use crate::error::Error;
use crate::health;
use crate::plan::resources::{FitReport, NodeUsage, Placement, ScheduledPod, container_resources};
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

/// The server-side filter of a node's pods, as `kubectl describe node` lists them
/// (staging/src/k8s.io/kubectl/pkg/describe/describe.go, `NodeDescriber.Describe`): the pods
/// bound to the node, finished ones (which hold no room) left out by the API server, which
/// serves `spec.nodeName` from an index (pkg/registry/core/pod/storage, the watch cache's
/// `NodeNameTriggerFunc`) instead of sending the cluster.
fn on_node(node: &str) -> String {
    format!("spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed")
}

/// Nodes whose pods are read at the same time.
const CONCURRENT_NODE_READS: usize = 4;

/// Whether `needed` new pods of `size` (CPU, memory) fit on `nodes`, reading the pods node by
/// node (the candidates with the most room first, as many at once as could take the pods still
/// needed and at most a few, each as slim pods folded into the node's sums) and stopping as
/// soon as they fit: the common case reads one node, however large the cluster. Only a shortfall reads every candidate, so the report
/// (and the warning built from it) counts the whole cluster then. `counts` says which listed
/// pods hold room that stays (e.g. not the workload's own, which a rollout replaces).
///
/// # Errors
/// API errors (403 without permission to list pods in all namespaces) and transport errors.
pub(crate) async fn place(
    cluster: &Cluster,
    nodes: &[Node],
    size: (&Quantity, &Quantity),
    needed: i32,
    counts: impl Fn(&ScheduledPod) -> bool,
) -> Result<FitReport, Error> {
    let mut placement = Placement::new(nodes, size, needed);
    if placement.enough() {
        return Ok(placement.report());
    }
    let read = |node: String| {
        let counts = &counts;
        async move {
            let usage = cluster
                .fold_pages(
                    "/api/v1/pods",
                    &on_node(&node),
                    NodeUsage::default,
                    |usage, pod: ScheduledPod| {
                        if counts(&pod) {
                            usage.add(&pod);
                        }
                    },
                )
                .await?;
            Ok::<_, Error>((node, usage))
        }
    };
    loop {
        let wave = placement.next_reads(CONCURRENT_NODE_READS);
        if wave.is_empty() {
            return Ok(placement.report());
        }
        for (node, usage) in futures::future::try_join_all(wave.into_iter().map(read)).await? {
            placement.place(&node, &usage);
        }
    }
}

/// The cluster's nodes when `wanted` (a change that can need more room), else nothing: lets a
/// command start the read next to its own reads and skip it when it cannot matter.
pub(crate) async fn nodes_if(cluster: &Cluster, wanted: bool) -> Option<Result<Vec<Node>, Error>> {
    if wanted {
        Some(cluster.list_cluster::<Node>().await)
    } else {
        None
    }
}

/// Whether `min` pods of the deployment fit the cluster: the pods it has plus how many more
/// of the same size fit in the nodes' free room (`nodes` from [`nodes_if`]), read node by
/// node until the pods `min` adds fit ([`place`]). The room is exact when it is below `min`
/// (the warning's number), at least `min` otherwise. `None` when the nodes or pods cannot be
/// listed (e.g. no permission to list nodes): the warning is then left out, never the change.
pub async fn room(
    cluster: &Cluster,
    deployment: &Deployment,
    nodes: Result<Vec<Node>, Error>,
    min: i32,
    reporter: &mut Reporter,
) -> Option<i32> {
    let spec = deployment.spec.as_ref()?;
    let (cpu, memory) = pod_requests(&spec.template);
    let listed = async {
        let nodes = nodes?;
        let own: Vec<Pod> = cluster.list(&selector_string(&spec.selector)).await?;
        let existing = i32::try_from(own.iter().filter(|p| health::is_live(p)).count()).unwrap_or(i32::MAX);
        // Pods being deleted still hold their room until they are gone.
        let more = place(
            cluster,
            &nodes,
            (&cpu, &memory),
            min.saturating_sub(existing),
            |_| true,
        )
        .await?;
        Ok::<_, Error>(existing.saturating_add(more.max_pods))
    };
    match listed.await {
        Ok(room) => Some(room),
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
