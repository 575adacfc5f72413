//! The cluster's room for pods of the deployment, for the `--min` warning (the pods it has plus
//! how many more of the same size fit in the nodes' free room), and the node-by-node read of
//! free room that it and `resources`' capacity check share.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::cluster::Cluster;
use crate::cluster::objects::Pager;
use crate::commands::shared::selector_string;
use crate::error::Error;
use crate::health;
use crate::plan::resources::{
    FitReport, ListedNode, NodeSelection, NodeUsage, Placement, PodSize, ScheduledPod, Tolerance,
    container_resources, is_extended,
};
use crate::quantity::Quantity;
use crate::report::Reporter;

/// What one pod of the template requests: CPU, memory and each extended resource
/// (`nvidia.com/gpu`), summed over its containers (a value that does not parse counts as zero,
/// which only makes the estimate generous), the taints it tolerates, and the nodes its
/// `nodeSelector` and required node affinity allow.
pub fn pod_requests(template: &PodTemplateSpec) -> PodSize {
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
    let mut size = PodSize::new(sum("cpu"), sum("memory"));
    let mut extended: Vec<String> = containers
        .iter()
        .filter_map(|c| container_resources(c).ok())
        .flat_map(|r| r.requests.into_keys())
        .filter(|name| is_extended(name))
        .collect();
    extended.sort();
    extended.dedup();
    for name in extended {
        let total = sum(&name);
        if !total.is_zero() {
            size.extended.insert(name, total);
        }
    }
    size.tolerations = template
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .map(|t| Tolerance {
            key: t.key.clone().unwrap_or_default(),
            operator: t.operator.clone().unwrap_or_default(),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.clone().unwrap_or_default(),
        })
        .collect();
    size.selection = template.spec.as_ref().map(NodeSelection::of).unwrap_or_default();
    size
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

/// Nodes in the first page of the node list: enough for the common case (a node with room
/// among them), small enough that a cluster of thousands of nodes is not read for it (a real
/// node object carries its image list, about 10 KB). Later pages, read only when these have
/// no room, are of the usual size.
const FIRST_NODE_PAGE: u32 = 10;

/// The node list as the capacity check reads it: the first page (read next to a command's own
/// reads), and the pager for the rest, read only when the first page's nodes have no room.
pub(crate) struct Nodes<'a> {
    first: Vec<ListedNode>,
    rest: Pager<'a, ListedNode>,
}

/// The first page of the cluster's nodes (as slim [`ListedNode`]s).
///
/// # Errors
/// API errors (403 without permission to list nodes) and transport errors.
pub(crate) async fn nodes(cluster: &Cluster) -> Result<Nodes<'_>, Error> {
    let mut rest = cluster.pager("/api/v1/nodes", "", FIRST_NODE_PAGE);
    let first = rest.next_page().await?.map(|page| page.items).unwrap_or_default();
    Ok(Nodes { first, rest })
}

/// [`nodes`] when `wanted` (a change that can need more room), else nothing: lets a command
/// start the read next to its own reads and skip it when it cannot matter.
pub(crate) async fn nodes_if(cluster: &Cluster, wanted: bool) -> Option<Result<Nodes<'_>, Error>> {
    if wanted { Some(nodes(cluster).await) } else { None }
}

/// Whether `needed` new pods of `size` (CPU, memory, extended resources) fit on the cluster's
/// `nodes`, reading the pods node by node (the candidates with the most room first, as many at
/// once as could take the pods still needed and at most a few, each as slim pods folded into
/// the node's sums) and stopping as soon as they fit: the common case reads one page of nodes
/// and one node's pods, however large the cluster. Only a shortfall reads every node and every
/// candidate's pods, so the report (and the warning built from it) counts the whole cluster
/// then. `counts` says which listed pods hold room that stays (e.g. not the workload's own,
/// which a rollout replaces).
///
/// # Errors
/// API errors (403 without permission to list pods in all namespaces) and transport errors.
pub(crate) async fn place(
    cluster: &Cluster,
    nodes: Nodes<'_>,
    size: &PodSize,
    needed: i32,
    counts: impl Fn(&ScheduledPod) -> bool,
) -> Result<FitReport, Error> {
    let Nodes { first, rest } = nodes;
    let placement = Placement::new(&first, size, needed);
    drop(first);
    fill(cluster, placement, rest, &counts).await
}

/// The pods of `node` that `counts` keeps, summed: one node's running pods, from the
/// server's node index, page by page.
async fn usage_on(
    cluster: &Cluster,
    node: String,
    counts: &impl Fn(&ScheduledPod) -> bool,
) -> Result<(String, NodeUsage), Error> {
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
    Ok((node, usage))
}

/// Reads nodes' pods in waves into `placement` until the pods fit or every node (of every page
/// of `rest`) was read.
async fn fill(
    cluster: &Cluster,
    mut placement: Placement,
    mut rest: Pager<'_, ListedNode>,
    counts: &impl Fn(&ScheduledPod) -> bool,
) -> Result<FitReport, Error> {
    while !placement.enough() {
        let wave = placement.next_reads(CONCURRENT_NODE_READS);
        if wave.is_empty() {
            // Every candidate so far was read and the pods do not fit yet: the next nodes.
            match rest.next_page().await? {
                Some(page) => placement.add_nodes(&page.items),
                None => break,
            }
            continue;
        }
        let reads = wave.into_iter().map(|node| usage_on(cluster, node, counts));
        for (node, usage) in futures::future::try_join_all(reads).await? {
            placement.place(&node, &usage);
        }
    }
    Ok(placement.report())
}

/// Whether `min` pods of the deployment fit the cluster: the pods it has plus how many more
/// of the same size fit in the nodes' free room (`nodes` from [`nodes_if`]), read node by
/// node until the pods `min` adds fit ([`place`]). The room is exact when it is below `min`
/// (the warning's number), at least `min` otherwise. `None` when the nodes or pods cannot be
/// listed (e.g. no permission to list nodes): the warning is then left out, never the change.
pub async fn room(
    cluster: &Cluster,
    deployment: &Deployment,
    nodes: Result<Nodes<'_>, Error>,
    min: i32,
    reporter: &mut Reporter,
) -> Option<i32> {
    let spec = deployment.spec.as_ref()?;
    let size = pod_requests(&spec.template);
    let listed = async {
        let Nodes { first, rest } = nodes?;
        // At most `min` pods are needed: the roomiest node's pods are read while the
        // deployment's own are counted, so that the two reads do not add up.
        let mut placement = Placement::new(&first, &size, min);
        drop(first);
        let own = async {
            let own: Vec<Pod> = cluster.list(&selector_string(&spec.selector)).await?;
            Ok::<_, Error>(
                i32::try_from(own.iter().filter(|p| health::is_live(p)).count()).unwrap_or(i32::MAX),
            )
        };
        let roomiest = futures::future::try_join_all(
            placement
                .next_reads(1)
                .into_iter()
                .map(|node| usage_on(cluster, node, &|_: &ScheduledPod| true)),
        );
        let (existing, read) = tokio::try_join!(own, roomiest)?;
        // Pods being deleted still hold their room until they are gone.
        placement.set_needed(min.saturating_sub(existing));
        for (node, usage) in read {
            placement.place(&node, &usage);
        }
        let more = fill(cluster, placement, rest, &|_: &ScheduledPod| true).await?;
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
        let size = pod_requests(&template);
        assert_eq!(size.cpu, Quantity::parse("550m").unwrap());
        assert_eq!(size.memory, Quantity::parse("1088Mi").unwrap());
        assert!(size.extended.is_empty());
    }

    #[test]
    fn the_templates_tolerations_come_with_its_size() {
        let template: PodTemplateSpec = serde_json::from_value(json!({"spec": {
            "containers": [{"name": "model"}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        }}))
        .unwrap();
        let size = pod_requests(&template);
        assert_eq!(
            size.tolerations,
            [Tolerance {
                key: "nvidia.com/gpu".into(),
                operator: "Exists".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
            }]
        );
    }

    /// The template's nodeSelector and required node affinity come with its size as typed data,
    /// so the placement leaves out the nodes they rule out.
    #[test]
    fn the_templates_node_selection_comes_with_its_size() {
        use crate::plan::resources::selection::{Requirement, SelectorTerm};
        let template: PodTemplateSpec = serde_json::from_value(json!({"spec": {
            "containers": [{"name": "model"}],
            "nodeSelector": {"karpenter.sh/nodepool": "gpu"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6.xlarge"]}
                ]}]
            }}}
        }}))
        .unwrap();
        let size = pod_requests(&template);
        assert_eq!(
            size.selection.node_selector,
            [("karpenter.sh/nodepool".to_string(), "gpu".to_string())].into()
        );
        assert_eq!(
            size.selection.required,
            Some(vec![SelectorTerm {
                match_expressions: vec![Requirement {
                    key: "node.kubernetes.io/instance-type".into(),
                    operator: "In".into(),
                    values: vec!["g6.xlarge".into()],
                }],
                match_fields: Vec::new(),
            }])
        );
        assert_eq!(
            pod_requests(&PodTemplateSpec::default()).selection,
            NodeSelection::default(),
            "no selection: every node"
        );
    }

    #[test]
    fn a_template_without_spec_requests_nothing() {
        let size = pod_requests(&PodTemplateSpec::default());
        assert!(size.cpu.is_zero() && size.memory.is_zero());
    }

    #[test]
    fn pod_requests_count_extended_resources_of_every_container() {
        let template: PodTemplateSpec = serde_json::from_value(json!({"spec": {"containers": [
            {"name": "model", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}},
            {"name": "sidecar", "resources": {"requests": {"cpu": "50m", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}},
            {"name": "disk", "resources": {"requests": {"ephemeral-storage": "1Gi"}}}
        ]}}))
        .unwrap();
        let size = pod_requests(&template);
        assert_eq!(
            size.extended,
            [("nvidia.com/gpu".to_string(), Quantity::parse("3").unwrap())].into()
        );
    }
}
