//! Will the new pods fit? A first-fit placement of the new pod size (CPU, memory and extended
//! resources such as `nvidia.com/gpu`) onto the nodes' free room (allocatable minus what
//! scheduled pods request), and the namespace's ResourceQuota headroom.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use serde::Deserialize;

use super::{ContainerResources, NodeSelection, ResourceList, is_extended};
use crate::quantity::{Quantity, format_cpu, format_memory, format_resource};

/// kubelet's default `--max-pods`, used when a node does not report `allocatable.pods`.
const DEFAULT_MAX_PODS: i64 = 110;
/// Nodes left out for one reason that the warning names one by one; more are counted.
const MAX_NAMED_SKIPS: usize = 3;
/// Bound on the "how many would fit" count (pods with no requests fit without end).
const MAX_COUNTED_PODS: i32 = 10_000;

/// The result of [`fit_check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitReport {
    pub pods_needed: i32,
    /// How many of `pods_needed` find room.
    pub pods_fitting: i32,
    /// How many pods of this size fit in total (at most 10 000): the cluster's room, e.g. for
    /// the `hpa --min` warning.
    pub max_pods: i32,
    /// Nodes left out, with the reason (`node-3: unschedulable (cordoned)`), or how many
    /// share a reason when more than a few do (`52 nodes: not matching the pod's node selector`).
    pub skipped_nodes: Vec<String>,
    /// One sentence for the preview.
    pub message: String,
}

impl FitReport {
    pub fn fits(&self) -> bool {
        self.pods_fitting >= self.pods_needed
    }
}

/// What one new pod requests, as the scheduler counts it: CPU, memory and each extended
/// resource (`nvidia.com/gpu`), which a node holds only as much of as its allocatable says;
/// and the taints it tolerates, which decide whether a tainted node is a candidate at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSize {
    pub cpu: Quantity,
    pub memory: Quantity,
    /// Extended resources by name (only those requested, none zero).
    pub extended: BTreeMap<String, Quantity>,
    /// The pod template's tolerations (GPU node pools are tainted on GKE, EKS and AKS, and
    /// the pods meant for them tolerate the taint).
    pub tolerations: Vec<Tolerance>,
    /// The nodes the pod template may go to at all: its `nodeSelector` and required node
    /// affinity (GPU pods are pinned to their pool that way).
    pub selection: NodeSelection,
}

impl PodSize {
    /// A pod requesting `cpu` and `memory`, no extended resource, tolerating no taint.
    pub fn new(cpu: Quantity, memory: Quantity) -> Self {
        PodSize {
            cpu,
            memory,
            extended: BTreeMap::new(),
            tolerations: Vec::new(),
            selection: NodeSelection::default(),
        }
    }

    /// For the preview: `250m CPU / 512 MiB each`, `… / 1 nvidia.com/gpu each`.
    fn describe(&self) -> String {
        let mut parts = vec![
            format!("{} CPU", format_cpu(&self.cpu)),
            format_memory(&self.memory),
        ];
        parts.extend(
            self.extended
                .iter()
                .map(|(name, q)| format!("{} {name}", format_resource(name, q))),
        );
        format!("{} each", parts.join(" / "))
    }
}

/// A node's room (allocatable or free), in nanos; pod slots counted.
struct Room {
    cpu: i128,
    memory: i128,
    pods: i64,
    extended: BTreeMap<String, i128>,
}

fn amount(map: Option<&BTreeMap<String, K8sQuantity>>, name: &str) -> i128 {
    map.and_then(|m| m.get(name))
        .and_then(|q| Quantity::try_from(q).ok())
        .map_or(0, |q| q.nanos())
}

/// A node as the capacity check reads it from the node list: its name, whether it is cordoned,
/// its taints, its Ready condition and its allocatable resources. Every other field (images,
/// addresses, managed fields: most of a real node's bytes) is skipped while parsing, never held.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListedNode {
    metadata: NodeMeta,
    spec: NodeSpec,
    status: NodeStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeMeta {
    name: String,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeSpec {
    unschedulable: Option<bool>,
    taints: Vec<NodeTaint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeTaint {
    key: String,
    value: Option<String>,
    effect: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeStatus {
    allocatable: Option<BTreeMap<String, K8sQuantity>>,
    conditions: Vec<NodeCondition>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

impl ListedNode {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// A pod as the capacity check reads it from a cluster-wide list: only the fields the
/// scheduler counts (node, container requests, overhead), its uid and whether it is going
/// away. Every other field of the list is skipped while parsing, never held.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ScheduledPod {
    metadata: SlimMeta,
    spec: SlimSpec,
    status: SlimStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimMeta {
    uid: Option<String>,
    deletion_timestamp: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimSpec {
    node_name: Option<String>,
    containers: Option<Vec<SlimContainer>>,
    init_containers: Option<Vec<SlimContainer>>,
    overhead: Option<BTreeMap<String, K8sQuantity>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimContainer {
    resources: Option<SlimResources>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimResources {
    requests: Option<BTreeMap<String, K8sQuantity>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimStatus {
    phase: Option<String>,
}

fn slim_containers(containers: Option<&Vec<Container>>) -> Option<Vec<SlimContainer>> {
    containers.map(|cs| {
        cs.iter()
            .map(|c| SlimContainer {
                resources: Some(SlimResources {
                    requests: c.resources.as_ref().and_then(|r| r.requests.clone()),
                }),
            })
            .collect()
    })
}

impl From<&Pod> for ScheduledPod {
    fn from(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        ScheduledPod {
            metadata: SlimMeta {
                uid: pod.metadata.uid.clone(),
                deletion_timestamp: pod
                    .metadata
                    .deletion_timestamp
                    .as_ref()
                    .map(|_| serde::de::IgnoredAny),
            },
            spec: SlimSpec {
                node_name: spec.and_then(|s| s.node_name.clone()),
                containers: slim_containers(spec.map(|s| &s.containers)),
                init_containers: slim_containers(spec.and_then(|s| s.init_containers.as_ref())),
                overhead: spec.and_then(|s| s.overhead.clone()),
            },
            status: SlimStatus {
                phase: pod.status.as_ref().and_then(|s| s.phase.clone()),
            },
        }
    }
}

impl ScheduledPod {
    /// The pod's uid (to tell a workload's own pods among a node's).
    pub fn uid(&self) -> Option<&str> {
        self.metadata.uid.as_deref()
    }

    /// Deleted, waiting for its containers to stop.
    pub fn is_terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }

    /// Finished pods (Succeeded, Failed) hold no room.
    fn is_active(&self) -> bool {
        !matches!(self.status.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    fn container_request(c: &SlimContainer, name: &str) -> i128 {
        amount(c.resources.as_ref().and_then(|r| r.requests.as_ref()), name)
    }

    /// The extended resources (`nvidia.com/gpu`) any of its containers or its overhead request.
    fn extended_names(&self) -> Vec<&str> {
        let spec = &self.spec;
        let containers = spec.containers.iter().chain(&spec.init_containers).flatten();
        let lists = containers
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref())
            .chain(spec.overhead.as_ref());
        let mut names: Vec<&str> = lists
            .flat_map(|list| list.keys())
            .map(String::as_str)
            .filter(|name| is_extended(name))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// What the scheduler counts for a pod: the larger of the containers' sum and the largest
    /// init container, plus the pod overhead.
    fn request(&self, name: &str) -> i128 {
        let spec = &self.spec;
        // Saturating: absurd quantities from the cluster must not overflow into a panic.
        let sum = spec
            .containers
            .iter()
            .flatten()
            .map(|c| Self::container_request(c, name))
            .fold(0, i128::saturating_add);
        let init = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| Self::container_request(c, name))
            .max()
            .unwrap_or(0);
        sum.max(init).saturating_add(amount(spec.overhead.as_ref(), name))
    }
}

/// What the scheduled, running pods of one node request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Usage {
    cpu: i128,
    memory: i128,
    pods: i64,
    /// Extended resources by name.
    extended: BTreeMap<String, i128>,
}

/// The requests of the running pods, summed per node: the state a list of pods folds into page
/// by page, as large as the number of nodes, not of pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeUsage(BTreeMap<String, Usage>);

impl NodeUsage {
    /// Counts a pod on its node (pods not scheduled yet, or finished, hold no room).
    pub fn add(&mut self, pod: &ScheduledPod) {
        let Some(node) = pod.spec.node_name.as_deref().filter(|_| pod.is_active()) else {
            return;
        };
        let usage = self.0.entry(node.to_owned()).or_default();
        usage.cpu = usage.cpu.saturating_add(pod.request("cpu"));
        usage.memory = usage.memory.saturating_add(pod.request("memory"));
        usage.pods = usage.pods.saturating_add(1);
        for name in pod.extended_names() {
            let used = usage.extended.entry(name.to_owned()).or_default();
            *used = used.saturating_add(pod.request(name));
        }
    }

    fn of(&self, node: &str) -> Usage {
        self.0.get(node).cloned().unwrap_or_default()
    }
}

/// One toleration of the pod template, as the API holds it (empty strings for absent fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tolerance {
    pub key: String,
    pub operator: String,
    pub value: String,
    pub effect: String,
}

impl Tolerance {
    /// Whether it tolerates the taint `key=value:effect`, by the API's rule
    /// (k8s.io/api core/v1 `Toleration.ToleratesTaint`): an empty effect matches every effect,
    /// an empty key every key; operator `Exists` matches any value, `Equal` (or empty) only
    /// the same value; any other operator tolerates nothing here (so such a node counts as no
    /// room, never as room that is not there).
    pub fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        if !self.effect.is_empty() && self.effect != effect {
            return false;
        }
        if !self.key.is_empty() && self.key != key {
            return false;
        }
        match self.operator.as_str() {
            "" | "Equal" => self.value == value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// Why `node` cannot take the new pods at all (cordoned, not Ready, a NoSchedule / NoExecute
/// taint that none of the tolerations tolerates: the scheduler's TaintToleration filter,
/// `FindMatchingUntoleratedTaint` over those two effects; or, checked after the taints as the
/// scheduler's filters run, labels that the pod's node selector or required node affinity
/// rule out: its NodeAffinity filter), or `None`.
fn skip_reason(node: &ListedNode, size: &PodSize) -> Option<String> {
    let tolerations = &size.tolerations;
    if node.spec.unschedulable == Some(true) {
        return Some("unschedulable (cordoned)".into());
    }
    let ready = node.status.conditions.iter().find(|c| c.type_ == "Ready");
    if let Some(ready) = ready.filter(|r| r.status != "True") {
        return Some(format!("not Ready ({})", ready.status));
    }
    let taint = node.spec.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute")
            && !tolerations
                .iter()
                .any(|tol| tol.tolerates(&t.key, t.value.as_deref().unwrap_or(""), &t.effect))
    });
    if let Some(t) = taint {
        return Some(format!("tainted {} {}", t.key, t.effect));
    }
    size.selection
        .rules_out(&node.metadata.name, &node.metadata.labels)
        .map(|what| format!("not matching the pod's {what}"))
}

/// A pod size in nanos, as the placement compares it with rooms.
struct Size {
    cpu: i128,
    memory: i128,
    extended: BTreeMap<String, i128>,
}

impl From<&PodSize> for Size {
    fn from(size: &PodSize) -> Self {
        Size {
            cpu: size.cpu.nanos(),
            memory: size.memory.nanos(),
            extended: size
                .extended
                .iter()
                .map(|(name, q)| (name.clone(), q.nanos()))
                .collect(),
        }
    }
}

/// How many pods of one size a node's free room (`cpu`, `memory`, pod slots, each extended
/// resource: a node without one has none of it) takes, placing them one by one as long as each
/// finds its whole request free (a zero request needs only that the resource is not
/// overcommitted); and the resources that bound the count (`cpu`, `nvidia.com/gpu`, `pods`).
fn pods_fitting<'a>(room: &Room, size: &'a Size) -> (i128, Vec<&'a str>) {
    let by = |free: i128, each: i128| {
        if each > 0 {
            (free / each).max(0)
        } else if free >= 0 {
            i128::MAX
        } else {
            0
        }
    };
    let mut counts = vec![
        ("cpu", by(room.cpu, size.cpu)),
        ("memory", by(room.memory, size.memory)),
        ("pods", i128::from(room.pods.max(0))),
    ];
    counts.extend(size.extended.iter().map(|(name, each)| {
        let free = room.extended.get(name).copied().unwrap_or(0);
        (name.as_str(), by(free, *each))
    }));
    let fitting = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
    let bound = counts
        .iter()
        .filter(|(_, n)| *n == fitting && fitting < i128::MAX)
        .map(|(name, _)| *name)
        .collect();
    (fitting, bound)
}

/// A candidate node: one the pod may schedule on, with its allocatable room.
struct Candidate {
    name: String,
    allocatable: Room,
}

/// The placement of `pods_needed` new pods of one size on the nodes, folded node by node as
/// each node's usage is read, so that a caller reads the pods of only as many nodes as the new
/// pods need: nodes with the most allocatable room for this size first
/// ([`Placement::next_reads`]), and [`Placement::enough`] as soon as they fit; a node without
/// room for one pod even when empty is counted as it comes, never read. Nodes come a page at a
/// time ([`Placement::add_nodes`]). Pods of one size fill each node independently, so the count
/// does not depend on the order the nodes are read in; when they do not fit, every candidate of
/// every page is read and the count is the whole cluster's.
pub struct Placement {
    nanos: Size,
    size: PodSize,
    pods_needed: i32,
    /// Candidates not read yet, in read order.
    candidates: Vec<Candidate>,
    /// Every node taken so far, by name.
    seen: BTreeSet<String>,
    /// Nodes left out, by reason (in the order the reasons first came), with their names.
    skipped: Vec<(String, Vec<String>)>,
    /// Pods placed on the nodes read so far (at most `MAX_COUNTED_PODS` or `pods_needed`).
    placed: i32,
    /// Per resource (`cpu`, `nvidia.com/gpu`, `pods`), on how many of the nodes read it was
    /// the one that bounded the node's count: what runs out, for the warning.
    bound_by: BTreeMap<String, usize>,
}

impl Placement {
    /// The candidates among `nodes` (the first page of the node list, or all of it) for
    /// `pods_needed` pods of `size`; later pages come in through [`Placement::add_nodes`].
    pub fn new(nodes: &[ListedNode], size: &PodSize, pods_needed: i32) -> Self {
        let mut placement = Placement {
            nanos: Size::from(size),
            size: size.clone(),
            pods_needed,
            candidates: Vec::new(),
            seen: BTreeSet::new(),
            skipped: Vec::new(),
            placed: 0,
            bound_by: BTreeMap::new(),
        };
        placement.add_nodes(nodes);
        placement
    }

    /// Takes more nodes (the next page of the node list) as candidates: cordoned, NotReady,
    /// nodes with a NoSchedule/NoExecute taint the pod does not tolerate and nodes its node
    /// selector or required node affinity rule out are left out ([`skip_reason`]), and a
    /// node already seen (a list that started over) is not counted twice. The candidates not
    /// read yet are ordered again, most room for this size first.
    pub fn add_nodes(&mut self, nodes: &[ListedNode]) {
        for node in nodes {
            let name = node.name().to_owned();
            if !self.seen.insert(name.clone()) {
                continue;
            }
            if let Some(reason) = skip_reason(node, &self.size) {
                match self.skipped.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, names)) => names.push(name),
                    None => self.skipped.push((reason, vec![name])),
                }
                continue;
            }
            let allocatable = node.status.allocatable.as_ref();
            let max_pods = allocatable
                .and_then(|a| a.get("pods"))
                .and_then(|q| Quantity::try_from(q).ok())
                .map_or(DEFAULT_MAX_PODS, |q| {
                    i64::try_from(q.nanos() / 1_000_000_000).unwrap_or(i64::MAX)
                });
            let candidate = Candidate {
                name,
                allocatable: Room {
                    cpu: amount(allocatable, "cpu"),
                    memory: amount(allocatable, "memory"),
                    pods: max_pods,
                    extended: self
                        .nanos
                        .extended
                        .keys()
                        .map(|name| (name.clone(), amount(allocatable, name)))
                        .collect(),
                },
            };
            if pods_fitting(&candidate.allocatable, &self.nanos).0 == 0 {
                // No room for one pod even were it empty (a GPU pod and a node without GPUs):
                // counted as it is, its pods need not be read.
                self.count(&candidate.allocatable);
            } else {
                self.candidates.push(candidate);
            }
        }
        // Most room for this size first (a stable sort: equal nodes keep the list's order).
        let nanos = &self.nanos;
        self.candidates
            .sort_by_key(|c| std::cmp::Reverse(pods_fitting(&c.allocatable, nanos).0));
    }

    /// Sets how many pods are needed, once it is known: a caller may start with an upper
    /// bound, to read the roomiest node while it counts what runs already.
    pub fn set_needed(&mut self, pods_needed: i32) {
        self.pods_needed = pods_needed;
    }

    /// The candidate nodes still to read, in the order to read them.
    #[cfg(test)]
    pub fn order(&self) -> Vec<String> {
        self.candidates.iter().map(|c| c.name.clone()).collect()
    }

    /// The next nodes to read at once (at most `at_most`, none when [`Placement::enough`]): the
    /// first ones in [`Placement::order`] until their allocatable room, were they empty, would
    /// take the pods still needed. The common case (a node with room) reads one node; a
    /// shortfall reads `at_most` at a time.
    pub fn next_reads(&self, at_most: usize) -> Vec<String> {
        if self.enough() {
            return Vec::new();
        }
        let missing = i128::from(self.pods_needed.saturating_sub(self.placed));
        let mut bound = 0i128;
        self.candidates
            .iter()
            .take(at_most.max(1))
            .take_while(|c| {
                let more = bound < missing;
                bound = bound.saturating_add(pods_fitting(&c.allocatable, &self.nanos).0);
                more
            })
            .map(|c| c.name.clone())
            .collect()
    }

    /// Whether the nodes read so far have room for every needed pod (at once for none needed):
    /// the rest need not be read.
    pub fn enough(&self) -> bool {
        self.placed >= self.pods_needed
    }

    /// Places pods on `node` (a candidate not placed on yet; others are ignored) in its
    /// allocatable minus `usage`'s requests of the scheduled pods that stay on it.
    pub fn place(&mut self, node: &str, usage: &NodeUsage) {
        let Some(at) = self.candidates.iter().position(|c| c.name == node) else {
            return;
        };
        let candidate = self.candidates.remove(at);
        let used = usage.of(node);
        let allocatable = candidate.allocatable;
        let room = Room {
            cpu: allocatable.cpu.saturating_sub(used.cpu),
            memory: allocatable.memory.saturating_sub(used.memory),
            pods: allocatable.pods.saturating_sub(used.pods),
            extended: allocatable
                .extended
                .into_iter()
                .map(|(name, alloc)| {
                    let taken = used.extended.get(&name).copied().unwrap_or(0);
                    (name, alloc.saturating_sub(taken))
                })
                .collect(),
        };
        self.count(&room);
    }

    /// Places pods in a node's free `room`, and notes what bounds their count there.
    fn count(&mut self, room: &Room) {
        let bound = MAX_COUNTED_PODS.max(self.pods_needed);
        let (fitting, bound_by) = pods_fitting(room, &self.nanos);
        for resource in bound_by {
            *self.bound_by.entry(resource.to_owned()).or_default() += 1;
        }
        let total = i128::from(self.placed).saturating_add(fitting);
        self.placed = i32::try_from(total.min(i128::from(bound))).unwrap_or(bound);
    }

    /// The result so far: exact once every candidate was placed on; after an early stop
    /// ([`Placement::enough`]) `max_pods` counts only the nodes read (at least `pods_needed`).
    pub fn report(&self) -> FitReport {
        let (pods_needed, placed) = (self.pods_needed, self.placed);
        let pods_fitting = placed.min(pods_needed.max(0));
        let size = self.size.describe();
        let message = if pods_fitting >= pods_needed {
            format!("{pods_needed} pods ({size}) fit in the nodes' free room (room for about {placed})")
        } else {
            format!(
                "only {pods_fitting} of {pods_needed} pods ({size}) fit in the nodes' free room: {} would stay Pending{}",
                pods_needed - pods_fitting,
                self.short_of()
            )
        };
        FitReport {
            pods_needed,
            pods_fitting,
            max_pods: placed,
            skipped_nodes: self.skipped_nodes(),
            message,
        }
    }

    /// The nodes left out, as the warning lists them: `node-3: unschedulable (cordoned)` for
    /// each node of a reason few nodes share, and one `52 nodes: not matching the pod's node
    /// selector` for a reason more share (a pool pinned by a selector leaves out every other
    /// node of the cluster, hundreds of names that would bury the warning).
    fn skipped_nodes(&self) -> Vec<String> {
        let mut listed = Vec::new();
        for (reason, names) in &self.skipped {
            if names.len() > MAX_NAMED_SKIPS {
                listed.push(format!("{} nodes: {reason}", names.len()));
            } else {
                listed.extend(names.iter().map(|name| format!("{name}: {reason}")));
            }
        }
        listed
    }

    /// What runs out, most nodes first: ` (short of nvidia.com/gpu on 3 nodes, cpu on 1 node)`
    /// (`pod slots` for `pods`); empty when no node was read.
    fn short_of(&self) -> String {
        let mut bound: Vec<(&String, &usize)> = self.bound_by.iter().collect();
        bound.sort_by_key(|(name, count)| (std::cmp::Reverse(**count), *name));
        let parts: Vec<String> = bound
            .into_iter()
            .map(|(name, count)| {
                let name = if name == "pods" { "pod slots" } else { name };
                let nodes = if *count == 1 { "node" } else { "nodes" };
                format!("{name} on {count} {nodes}")
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" (short of {})", parts.join(", "))
        }
    }
}

/// Whether `pods_needed` pods of `size` (CPU, memory, extended resources) fit on `nodes`,
/// placing them first-fit into each node's allocatable minus the requests `usage` of the
/// scheduled, running pods (of the pods that stay: leave out the ones the rollout replaces).
/// Cordoned, NotReady, NoSchedule/NoExecute-tainted nodes and those the pod's node selection
/// rules out are left out. Every node counts:
/// the whole cluster's [`Placement`] (what a node-by-node read that never stops early finds).
#[cfg(test)]
pub fn fit_check(nodes: &[ListedNode], usage: &NodeUsage, size: &PodSize, pods_needed: i32) -> FitReport {
    let mut placement = Placement::new(nodes, size, pods_needed);
    for node in placement.order() {
        placement.place(&node, usage);
    }
    placement.report()
}

/// The most a rollout adds to the namespace's quota usage for one container resource, in
/// quota names (`requests.cpu`, `limits.memory`, …): with `surge` extra pods, at worst every
/// new pod runs while `surge` old pods still exist; when the value shrinks, the first surge
/// pods are the peak.
pub fn rollout_quota_delta(
    before: &ContainerResources,
    after: &ContainerResources,
    replicas: i32,
    surge: i32,
) -> ResourceList {
    let mut delta = ResourceList::new();
    for (kind, old_list, new_list) in [
        ("requests", &before.requests, &after.requests),
        ("limits", &before.limits, &after.limits),
    ] {
        for (name, new) in new_list {
            let old = old_list.get(name).map_or(0, Quantity::nanos);
            let new = new.nanos();
            let new_pods = if new >= old {
                i128::from(replicas.max(1))
            } else {
                1
            };
            let peak = i128::from(surge.max(0))
                .saturating_mul(old)
                .saturating_add(new_pods.saturating_mul(new.saturating_sub(old)));
            delta.insert(format!("{kind}.{name}"), Quantity::from_nanos(peak));
        }
    }
    delta
}

/// Warnings for every ResourceQuota whose hard limit the extra usage `delta` (quota names:
/// `requests.cpu`, `limits.memory`, `pods`, …) would exceed, given what is already used.
pub fn quota_check(quotas: &[ResourceQuota], delta: &ResourceList) -> Vec<String> {
    let mut warnings = Vec::new();
    for quota in quotas {
        let name = quota.metadata.name.as_deref().unwrap_or("?");
        let status = quota.status.as_ref();
        let hard = status
            .and_then(|s| s.hard.as_ref())
            .or_else(|| quota.spec.as_ref().and_then(|s| s.hard.as_ref()));
        let used = status.and_then(|s| s.used.as_ref());
        for (key, extra) in delta.iter().filter(|(_, q)| q.nanos() > 0) {
            // `cpu`/`memory` in a quota mean `requests.cpu`/`requests.memory`.
            let alias = key
                .strip_prefix("requests.")
                .filter(|r| *r == "cpu" || *r == "memory");
            let Some((quota_key, hard)) = [Some(key.as_str()), alias]
                .into_iter()
                .flatten()
                .find_map(|k| hard.and_then(|h| h.get(k)).map(|q| (k, q)))
            else {
                continue;
            };
            let (Ok(hard), used) = (
                Quantity::try_from(hard),
                used.and_then(|u| u.get(quota_key))
                    .and_then(|q| Quantity::try_from(q).ok()),
            ) else {
                continue;
            };
            let used = used.unwrap_or_else(Quantity::zero);
            let resource = key.split_once('.').map_or(key.as_str(), |(_, r)| r);
            let show = |q: &Quantity| format_resource(resource, q);
            if used.nanos().saturating_add(extra.nanos()) > hard.nanos() {
                let left = hard.nanos().saturating_sub(used.nanos()).max(0);
                let left = if left == 0 {
                    "none".to_string()
                } else {
                    format!("only {}", show(&Quantity::from_nanos(left)))
                };
                warnings.push(format!(
                    "ResourceQuota {name}: {quota_key} would need {} more, but {left} of {} is left \
                     ({} used): new pods would be refused (FailedCreate) and the rollout would stall",
                    show(extra),
                    show(&hard),
                    show(&used),
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::super::selection::{Requirement, SelectorTerm};
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str, memory: &str, extra: serde_json::Value) -> ListedNode {
        let mut v = json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        if let Some(spec) = extra.get("spec") {
            v["spec"] = spec.clone();
        }
        if let Some(labels) = extra.get("labels") {
            v["metadata"]["labels"] = labels.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn pod(node: &str, cpu: &str, memory: &str, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn pod_size(cpu: &str, memory: &str) -> PodSize {
        PodSize::new(q(cpu), q(memory))
    }

    fn usage(pods: &[Pod]) -> NodeUsage {
        let mut usage = NodeUsage::default();
        for pod in pods {
            usage.add(&ScheduledPod::from(pod));
        }
        usage
    }

    #[test]
    fn a_listed_pod_reads_as_the_same_slim_pod_as_a_typed_one() {
        let json = json!({
            "metadata": {"name": "p", "namespace": "n", "uid": "u1", "labels": {"a": "b"},
                         "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "a", "overhead": {"cpu": "10m"},
                "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "2"}}}],
                "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1"}}},
                               {"name": "d", "image": "x"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let slim: ScheduledPod = serde_json::from_value(json.clone()).unwrap();
        let typed: Pod = serde_json::from_value(json).unwrap();
        let from_typed = ScheduledPod::from(&typed);
        assert!(slim.is_terminating() && from_typed.is_terminating());
        for name in ["cpu", "memory"] {
            assert_eq!(slim.request(name), from_typed.request(name), "{name}");
        }
        assert_eq!(
            slim.request("cpu"),
            q("2010m").nanos(),
            "the init container is larger"
        );
        let mut usage = NodeUsage::default();
        usage.add(&slim);
        assert_eq!(usage, {
            let mut other = NodeUsage::default();
            other.add(&from_typed);
            other
        });
        let null_lists: ScheduledPod =
            serde_json::from_value(json!({"spec": {"nodeName": "a", "containers": null}})).unwrap();
        assert_eq!(null_lists.request("cpu"), 0);
    }

    #[test]
    fn a_huge_pods_allocatable_does_not_wrap_into_no_room() {
        let mut huge = node("a", "4", "8Gi", json!({}));
        let allocatable = huge.status.allocatable.as_mut().unwrap();
        allocatable.insert(
            "pods".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("15e18".into()),
        );
        let report = fit_check(&[huge], &NodeUsage::default(), &pod_size("1", "1Gi"), 2);
        assert!(report.fits(), "{report:?}");
        assert_eq!(report.max_pods, 4, "CPU limits it, not a wrapped pod count");
    }

    #[test]
    fn first_fit_counts_pods_against_free_room() {
        let nodes = [node("a", "4", "8Gi", json!({})), node("b", "2", "4Gi", json!({}))];
        let pods = [pod("a", "3", "1Gi", "Running"), pod("a", "3", "1Gi", "Succeeded")];
        // Free: a = 1 CPU / 7Gi, b = 2 CPU / 4Gi → 1 + 2 pods of 1 CPU.
        let report = fit_check(&nodes, &usage(&pods), &pod_size("1", "1Gi"), 3);
        assert!(report.fits());
        assert_eq!(report.max_pods, 3);
        assert_eq!(
            report.message,
            "3 pods (1 core CPU / 1 GiB each) fit in the nodes' free room (room for about 3)"
        );
        let report = fit_check(&nodes, &usage(&pods), &pod_size("1", "1Gi"), 5);
        assert!(!report.fits());
        assert_eq!(report.pods_fitting, 3);
        assert!(report.message.starts_with("only 3 of 5 pods"));
        assert!(
            report
                .message
                .ends_with("2 would stay Pending (short of cpu on 2 nodes)"),
            "{}",
            report.message
        );
    }

    #[test]
    fn placement_reads_the_roomiest_nodes_first_and_stops_when_the_pods_fit() {
        let nodes = [
            node("small", "2", "8Gi", json!({})),
            node("big", "8", "8Gi", json!({})),
            node("cordoned", "64", "64Gi", json!({"spec": {"unschedulable": true}})),
            node("mid", "4", "8Gi", json!({})),
        ];
        let size = &pod_size("1", "1Gi");
        let mut placement = Placement::new(&nodes, size, 7);
        assert_eq!(
            placement.order(),
            ["big", "mid", "small"],
            "most room for this size first"
        );
        assert!(!placement.enough());
        assert_eq!(placement.next_reads(4), ["big"], "empty, it would take all 7");
        assert_eq!(
            Placement::new(&nodes, size, 12).next_reads(4),
            ["big", "mid"],
            "8 + 4 allocatable: two nodes at least"
        );
        assert_eq!(Placement::new(&nodes, size, 50).next_reads(2), ["big", "mid"]);
        // "big" is half full: 4 of the 7 pods.
        placement.place("big", &usage(&[pod("big", "4", "1Gi", "Running")]));
        assert!(!placement.enough());
        assert_eq!(placement.order(), ["mid", "small"]);
        assert_eq!(placement.next_reads(4), ["mid"]);
        placement.place("mid", &NodeUsage::default());
        assert!(
            placement.enough(),
            "4 + 4 pods of the 7 fit: \"small\" is not read"
        );
        assert!(placement.next_reads(4).is_empty());
        let report = placement.report();
        assert!(report.fits());
        assert_eq!(report.max_pods, 8, "counted over the nodes read");
        assert_eq!(report.skipped_nodes, ["cordoned: unschedulable (cordoned)"]);
        // A node read twice, or one that is no candidate, counts nothing more.
        placement.place("mid", &NodeUsage::default());
        placement.place("cordoned", &NodeUsage::default());
        assert_eq!(placement.report().max_pods, 8);
    }

    #[test]
    fn nodes_come_a_page_at_a_time_and_a_node_listed_again_counts_once() {
        let size = &pod_size("1", "1Gi");
        // The first page has room for 2 of the 5 pods: once it is read, the next page is needed.
        let mut placement = Placement::new(&[node("a", "2", "8Gi", json!({}))], size, 5);
        assert_eq!(placement.next_reads(4), ["a"]);
        placement.place("a", &NodeUsage::default());
        assert!(!placement.enough());
        assert!(
            placement.next_reads(4).is_empty(),
            "every candidate so far is read"
        );
        // The next page comes after a list that started over (410): "a" again, and "b".
        placement.add_nodes(&[node("a", "2", "8Gi", json!({})), node("b", "8", "8Gi", json!({}))]);
        assert_eq!(
            placement.order(),
            ["b"],
            "\"a\" is neither a candidate again nor counted twice"
        );
        placement.place("b", &NodeUsage::default());
        assert!(placement.enough());
        assert_eq!(placement.report().max_pods, 10);
    }

    #[test]
    fn a_node_without_room_for_one_pod_is_counted_without_a_read() {
        // A GPU pod on a page of CPU nodes: none is a node to read, and the next page is.
        let size = &gpu_size("1");
        let mut placement = Placement::new(
            &[
                node("cpu-1", "8", "32Gi", json!({})),
                node("cpu-2", "8", "32Gi", json!({})),
            ],
            size,
            2,
        );
        assert!(placement.order().is_empty());
        assert!(placement.next_reads(4).is_empty());
        placement.add_nodes(&[gpu_node("gpu-1", "1")]);
        assert_eq!(placement.next_reads(4), ["gpu-1"]);
        placement.place("gpu-1", &NodeUsage::default());
        let report = placement.report();
        assert_eq!((report.pods_fitting, report.max_pods), (1, 1));
        assert!(
            report
                .message
                .ends_with("1 would stay Pending (short of nvidia.com/gpu on 3 nodes)"),
            "the nodes not read count in what runs out: {}",
            report.message
        );
    }

    #[test]
    fn placement_node_by_node_counts_what_the_whole_check_counts() {
        let nodes = [
            node("a", "4", "8Gi", json!({})),
            node("b", "2", "3Gi", json!({})),
            node("c", "16", "2Gi", json!({})),
        ];
        let pods = [
            pod("a", "3", "1Gi", "Running"),
            pod("b", "500m", "1Gi", "Running"),
            pod("c", "1", "1Gi", "Failed"),
        ];
        let size = &pod_size("500m", "1Gi");
        for needed in [0, 1, 5, 9, 20] {
            let whole = fit_check(&nodes, &usage(&pods), size, needed);
            let mut placement = Placement::new(&nodes, size, needed);
            let mut read = 0;
            loop {
                let wave = placement.next_reads(2);
                if wave.is_empty() {
                    break;
                }
                for name in wave {
                    // One node's pods, as a list with `spec.nodeName=<node>` returns them.
                    let on_node: Vec<Pod> = pods
                        .iter()
                        .filter(|p| {
                            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str())
                        })
                        .cloned()
                        .collect();
                    placement.place(&name, &usage(&on_node));
                    read += 1;
                }
            }
            let report = placement.report();
            assert_eq!(report.fits(), whole.fits(), "{needed}");
            assert_eq!(report.pods_fitting, whole.pods_fitting, "{needed}");
            if whole.fits() {
                assert!(report.max_pods >= needed, "{needed}");
            } else {
                assert_eq!(read, 3, "a shortfall reads every node");
                assert_eq!(report, whole, "the warning's words are the whole check's");
            }
        }
        // Free: a 1 CPU / 7Gi (2 pods), b 1.5 CPU / 2Gi (2 pods), c 2Gi (2 pods): 6 in all.
        assert_eq!(fit_check(&nodes, &usage(&pods), size, 9).pods_fitting, 6);
        assert_eq!(
            Placement::new(&nodes, size, 0).order().len(),
            3,
            "none needed: enough at once"
        );
        assert!(Placement::new(&nodes, size, 0).enough());
    }

    #[test]
    fn zero_requests_fit_where_the_node_is_not_overcommitted() {
        let nodes = [
            node("over", "1", "1Gi", json!({})),
            node("ok", "1", "1Gi", json!({})),
        ];
        let pods = [pod("over", "2", "1Gi", "Running")];
        // Pod slots bound it: 110 - 0 on "ok"; "over" has CPU overcommitted.
        let report = fit_check(&nodes, &usage(&pods), &pod_size("0", "0"), 1);
        assert_eq!(report.max_pods, 110);
    }

    /// k8s.io/api core/v1 `Toleration.ToleratesTaint`: empty effect = every effect, empty key
    /// (with Exists) = every key, Exists = any value, Equal / empty operator = the same value.
    #[test]
    fn tolerations_match_taints_as_the_api_says() {
        let tol = |key: &str, operator: &str, value: &str, effect: &str| Tolerance {
            key: key.into(),
            operator: operator.into(),
            value: value.into(),
            effect: effect.into(),
        };
        let gpu = ("nvidia.com/gpu", "present", "NoSchedule");
        let tolerates = |t: Tolerance| t.tolerates(gpu.0, gpu.1, gpu.2);
        assert!(tolerates(tol("nvidia.com/gpu", "Exists", "", "NoSchedule")));
        assert!(tolerates(tol("nvidia.com/gpu", "Exists", "", "")));
        assert!(tolerates(tol("nvidia.com/gpu", "Equal", "present", "NoSchedule")));
        assert!(tolerates(tol("nvidia.com/gpu", "", "present", "")));
        assert!(tolerates(tol("", "Exists", "", "")), "tolerates everything");
        assert!(!tolerates(tol("nvidia.com/gpu", "Equal", "absent", "NoSchedule")));
        assert!(!tolerates(tol("nvidia.com/gpu", "Exists", "", "NoExecute")));
        assert!(!tolerates(tol("dedicated", "Exists", "", "")));
        assert!(
            !tolerates(tol("nvidia.com/gpu", "Gt", "1", "")),
            "unknown operator"
        );
    }

    /// The scheduler's TaintToleration filter: a NoSchedule/NoExecute taint keeps the pods off
    /// the node unless they tolerate it (a GPU pool's taint, tolerated by the GPU pods).
    #[test]
    fn a_tainted_node_is_a_candidate_for_pods_that_tolerate_its_taints() {
        let taints = json!({"spec": {"taints": [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
            {"key": "pool", "value": "gpu", "effect": "PreferNoSchedule"}
        ]}});
        let nodes = [node("gpu", "8", "8Gi", taints)];
        let plain = pod_size("1", "1Gi");
        assert_eq!(fit_check(&nodes, &NodeUsage::default(), &plain, 2).max_pods, 0);
        let mut tolerating = plain.clone();
        tolerating.tolerations = vec![Tolerance {
            key: "nvidia.com/gpu".into(),
            operator: "Exists".into(),
            ..Tolerance::default()
        }];
        let report = fit_check(&nodes, &NodeUsage::default(), &tolerating, 2);
        assert!(report.max_pods >= 2, "{report:?}");
        assert!(
            report.skipped_nodes.is_empty(),
            "PreferNoSchedule keeps no pod off"
        );
    }

    #[test]
    fn skips_cordoned_and_tainted_nodes() {
        let nodes = [
            node("cordoned", "8", "8Gi", json!({"spec": {"unschedulable": true}})),
            node(
                "tainted",
                "8",
                "8Gi",
                json!({"spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}}),
            ),
            node("ok", "1", "1Gi", json!({})),
        ];
        let report = fit_check(&nodes, &NodeUsage::default(), &pod_size("500m", "512Mi"), 2);
        assert_eq!(report.max_pods, 2);
        assert_eq!(
            report.skipped_nodes,
            [
                "cordoned: unschedulable (cordoned)",
                "tainted: tainted dedicated NoSchedule"
            ]
        );
    }

    /// The scheduler's NodeAffinity filter (pkg/scheduler/framework/plugins/nodeaffinity,
    /// `Filter`, via k8s.io/component-helpers `RequiredNodeAffinity.Match`): nodes the pod's
    /// nodeSelector or required node affinity rule out are no room for it, however large,
    /// and are named as left out; the taint check comes first, as the filters run.
    #[test]
    fn nodes_the_pods_node_selection_rules_out_are_no_room() {
        let pool = |p: &str| json!({"labels": {"pool": p}});
        let nodes = [
            node("big-cpu", "64", "256Gi", pool("cpu")),
            node("gpu-a", "4", "8Gi", pool("gpu")),
            node("bare", "64", "256Gi", json!({})),
            node(
                "tainted-gpu",
                "64",
                "256Gi",
                json!({"labels": {"pool": "gpu"}, "spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}),
            ),
        ];
        let mut size = pod_size("1", "1Gi");
        size.selection.node_selector = [("pool".to_owned(), "gpu".to_owned())].into();
        let report = fit_check(&nodes, &NodeUsage::default(), &size, 6);
        assert_eq!(report.pods_fitting, 4, "only gpu-a's 4 CPUs: {report:?}");
        assert_eq!(
            report.skipped_nodes,
            [
                "big-cpu: not matching the pod's node selector",
                "bare: not matching the pod's node selector",
                "tainted-gpu: tainted x NoSchedule"
            ]
        );
        assert!(fit_check(&nodes, &NodeUsage::default(), &size, 4).fits());
        // The same pool through a required node affinity (`pool In [gpu]`).
        let mut size = pod_size("1", "1Gi");
        size.selection.required = Some(vec![SelectorTerm {
            match_expressions: vec![Requirement {
                key: "pool".into(),
                operator: "In".into(),
                values: vec!["gpu".into()],
            }],
            ..Default::default()
        }]);
        let report = fit_check(&nodes, &NodeUsage::default(), &size, 6);
        assert_eq!(report.pods_fitting, 4);
        assert_eq!(
            report.skipped_nodes[0],
            "big-cpu: not matching the pod's node affinity"
        );
        let placement = Placement::new(&nodes, &size, 6);
        assert_eq!(placement.order(), ["gpu-a"], "no other node is read");
    }

    /// A pool pinned by a selector leaves out every other node: more than a few nodes with one
    /// reason are counted, not named, so the warning stays one readable line.
    #[test]
    fn many_nodes_left_out_for_one_reason_are_counted() {
        let mut nodes: Vec<ListedNode> = (0..52)
            .map(|i| node(&format!("cpu-{i}"), "8", "8Gi", json!({})))
            .collect();
        nodes.push(node("gpu-0", "8", "8Gi", json!({"labels": {"pool": "gpu"}})));
        nodes.push(node("off", "8", "8Gi", json!({"spec": {"unschedulable": true}})));
        let mut size = pod_size("1", "1Gi");
        size.selection.node_selector = [("pool".to_owned(), "gpu".to_owned())].into();
        let report = fit_check(&nodes, &NodeUsage::default(), &size, 20);
        assert_eq!(report.pods_fitting, 8);
        assert_eq!(
            report.skipped_nodes,
            [
                "52 nodes: not matching the pod's node selector",
                "off: unschedulable (cordoned)"
            ]
        );
    }

    #[test]
    fn memory_can_be_the_limit_and_init_containers_count() {
        let nodes = [node("a", "16", "3Gi", json!({}))];
        let init: Pod = serde_json::from_value(json!({
            "metadata": {"name": "i"},
            "spec": {"nodeName": "a",
                "initContainers": [{"name": "i", "resources": {"requests": {"memory": "1Gi"}}}],
                "containers": [{"name": "c", "resources": {"requests": {"memory": "256Mi"}}}]}
        }))
        .unwrap();
        let report = fit_check(&nodes, &usage(&[init]), &pod_size("100m", "1Gi"), 3);
        assert_eq!(report.pods_fitting, 2);
    }

    fn gpu_node(name: &str, gpus: &str) -> ListedNode {
        let mut node = node(name, "8", "32Gi", json!({}));
        let allocatable = node.status.allocatable.as_mut().unwrap();
        allocatable.insert(
            "nvidia.com/gpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(gpus.into()),
        );
        node
    }

    fn gpu_pod(node: &str, gpus: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "g"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {
                "requests": {"cpu": "100m", "memory": "1Gi", "nvidia.com/gpu": gpus},
                "limits": {"nvidia.com/gpu": gpus}}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap()
    }

    fn gpu_size(gpus: &str) -> PodSize {
        let mut size = pod_size("500m", "1Gi");
        size.extended.insert("nvidia.com/gpu".into(), q(gpus));
        size
    }

    /// As the scheduler's NodeResourcesFit (`fitsRequest`): an extended resource fits only in
    /// the node's allocatable of it minus its pods' requests; a node without it takes none.
    #[test]
    fn extended_resources_bound_the_count_and_the_warning_names_them() {
        let nodes = [
            node("plain", "16", "64Gi", json!({})),
            gpu_node("gpu-a", "4"),
            gpu_node("gpu-b", "4"),
        ];
        // gpu-a has 2 of its 4 GPUs taken: 2 + 4 pods of one GPU fit, none on "plain".
        let pods = [gpu_pod("gpu-a", "2"), pod("plain", "1", "1Gi", "Running")];
        let report = fit_check(&nodes, &usage(&pods), &gpu_size("1"), 8);
        assert_eq!(report.pods_fitting, 6);
        assert_eq!(
            report.message,
            "only 6 of 8 pods (500m CPU / 1 GiB / 1 nvidia.com/gpu each) fit in the nodes' free \
             room: 2 would stay Pending (short of nvidia.com/gpu on 3 nodes)"
        );
        // Pods of 4 GPUs: one fits (on gpu-b), gpu-a has 2 left.
        let report = fit_check(&nodes, &usage(&pods), &gpu_size("4"), 3);
        assert_eq!(report.pods_fitting, 1);
        assert!(
            report.message.starts_with("only 1 of 3 pods"),
            "{}",
            report.message
        );
        let report = fit_check(&nodes, &usage(&pods), &gpu_size("1"), 6);
        assert!(report.fits(), "{report:?}");
        // CPU still counts: pods of 3 CPU and a GPU take 2 on each GPU node (gpu-a: CPU and
        // GPUs both run out at 2), and every resource that runs out is named.
        let mut big = gpu_size("1");
        big.cpu = q("3");
        let report = fit_check(&nodes, &usage(&pods), &big, 5);
        assert_eq!(report.pods_fitting, 4);
        assert!(
            report
                .message
                .ends_with("(short of cpu on 2 nodes, nvidia.com/gpu on 2 nodes)"),
            "{}",
            report.message
        );
    }

    #[test]
    fn placement_reads_the_gpu_nodes_first_and_stops_there() {
        let nodes = [
            node("plain-a", "64", "256Gi", json!({})),
            node("plain-b", "64", "256Gi", json!({})),
            gpu_node("gpu-a", "4"),
        ];
        let size = gpu_size("1");
        let mut placement = Placement::new(&nodes, &size, 3);
        assert_eq!(placement.order()[0], "gpu-a", "the only node with room for them");
        assert_eq!(placement.next_reads(4), ["gpu-a"]);
        placement.place("gpu-a", &usage(&[gpu_pod("gpu-a", "1")]));
        assert!(placement.enough(), "3 of the 4 GPUs are free");
        // Without extended resources the plain nodes come first, as before.
        assert_eq!(
            Placement::new(&nodes, &pod_size("1", "1Gi"), 3).order()[0],
            "plain-a"
        );
    }

    #[test]
    fn a_node_counts_the_extended_requests_of_its_pods() {
        let mut both = NodeUsage::default();
        both.add(&ScheduledPod::from(&gpu_pod("gpu-a", "1")));
        both.add(&ScheduledPod::from(&gpu_pod("gpu-a", "2")));
        both.add(&ScheduledPod::from(&pod("gpu-a", "1", "1Gi", "Running")));
        assert_eq!(both.of("gpu-a").extended["nvidia.com/gpu"], q("3").nanos());
        assert_eq!(both.of("gpu-a").pods, 3);
    }

    /// Quota for extended resources holds only `requests.<name>` (upstream's pod evaluator,
    /// pkg/quota/v1/evaluator/core/pods.go `isExtendedResourceNameForQuota`; the docs' "Resource
    /// quota for extended resources"): the rollout's GPU requests are checked against it.
    #[test]
    fn quota_checks_requests_of_extended_resources() {
        let quota: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": "gpus"},
            "spec": {"hard": {"requests.nvidia.com/gpu": "2"}},
            "status": {"hard": {"requests.nvidia.com/gpu": "2"}, "used": {"requests.nvidia.com/gpu": "0"}}
        }))
        .unwrap();
        let none = ContainerResources::default();
        let one_gpu = ContainerResources {
            requests: [("nvidia.com/gpu".to_string(), q("1"))].into(),
            limits: [("nvidia.com/gpu".to_string(), q("1"))].into(),
        };
        let delta = rollout_quota_delta(&none, &one_gpu, 3, 1);
        assert_eq!(delta["requests.nvidia.com/gpu"], q("3"));
        let warnings = quota_check(std::slice::from_ref(&quota), &delta);
        assert_eq!(
            warnings,
            [
                "ResourceQuota gpus: requests.nvidia.com/gpu would need 3 more, but only 2 of 2 is \
              left (0 used): new pods would be refused (FailedCreate) and the rollout would stall"
            ]
        );
        let two = rollout_quota_delta(&none, &one_gpu, 2, 0);
        assert!(quota_check(&[quota], &two).is_empty(), "2 of 2 fit");
    }

    #[test]
    fn quota_warns_when_delta_exceeds_headroom() {
        let quota: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": "compute"},
            "spec": {"hard": {"requests.cpu": "6", "memory": "10Gi"}},
            "status": {"hard": {"requests.cpu": "6", "memory": "10Gi"}, "used": {"requests.cpu": "5", "memory": "4Gi"}}
        }))
        .unwrap();
        let delta: ResourceList = [
            ("requests.cpu".to_string(), q("2")),
            ("requests.memory".to_string(), q("2Gi")),
        ]
        .into();
        let warnings = quota_check(std::slice::from_ref(&quota), &delta);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("ResourceQuota compute: requests.cpu would need 2 cores more, but only 1 core of 6 cores is left (5 cores used)"));
        let full: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": "full"},
            "status": {"hard": {"requests.cpu": "2"}, "used": {"requests.cpu": "3"}}
        }))
        .unwrap();
        let warnings = quota_check(&[full], &delta);
        assert!(
            warnings[0].contains("but none of 2 cores is left (3 cores used)"),
            "{}",
            warnings[0]
        );
        let small: ResourceList = [("requests.cpu".to_string(), q("1"))].into();
        assert!(quota_check(&[quota], &small).is_empty());
    }

    #[test]
    fn rollout_delta_peaks() {
        let res = |cpu: &str| ContainerResources {
            requests: [("cpu".to_string(), q(cpu))].into(),
            limits: ResourceList::new(),
        };
        // Growing 500m -> 1 with 3 replicas and surge 1: 3 × 500m more + 1 old pod still there.
        assert_eq!(
            rollout_quota_delta(&res("500m"), &res("1"), 3, 1)["requests.cpu"],
            q("2")
        );
        // Shrinking: the first surge pod is the peak.
        assert_eq!(
            rollout_quota_delta(&res("1"), &res("500m"), 3, 1)["requests.cpu"],
            q("500m")
        );
        // No surge and shrinking: nothing extra.
        assert!(rollout_quota_delta(&res("1"), &res("500m"), 3, 0)["requests.cpu"].is_negative());
    }
}
