//! The scheduler: binds pending pods to the node with the most free CPU among those whose
//! taints the pod tolerates, whose labels its node selector and required node affinity allow,
//! and whose allocatable room fits the pod's requests (cpu, memory, pod slots and extended resources such
//! as `nvidia.com/gpu`); otherwise marks them Unschedulable with the scheduler's message and a
//! FailedScheduling event. Retried every pass, so freed room is used.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::common::{Pending, condition, is_terminating, key, name, namespace, set_condition, update_main};
use super::events::{Severity, record};
use super::node_affinity::{ABSENT_NODE_REASON, ERR_REASON_POD, Required};
use super::quantity::milli_of;
use super::quota::{is_extended, pod_usage};
use crate::store::{ObjectKey, Store, UpdatePart};

/// Room of one node, in milli-units.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Room {
    pub cpu: i128,
    pub memory: i128,
    pub pods: i128,
    /// Extended resources (`nvidia.com/gpu`) by name; a node without one has none of it.
    pub extended: BTreeMap<String, i128>,
}

impl Room {
    /// Adds a pod's request to what a node holds.
    pub fn add(&mut self, request: &Room) {
        self.cpu += request.cpu;
        self.memory += request.memory;
        self.pods += request.pods;
        for (name, amount) in &request.extended {
            *self.extended.entry(name.clone()).or_default() += amount;
        }
    }

    fn extended_of(&self, name: &str) -> i128 {
        self.extended.get(name).copied().unwrap_or(0)
    }
}

/// What a pod asks for, in milli-units (pods: 1000 per pod).
pub fn requests_of(pod: &Value) -> Room {
    let usage = pod_usage(pod);
    let extended = usage
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("requests.").filter(|r| is_extended(r))?.to_owned(),
                *v,
            ))
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    Room {
        cpu: usage["requests.cpu"],
        memory: usage["requests.memory"],
        pods: 1000,
        extended,
    }
}

/// A node's allocatable room from its `status.allocatable` (extended resources included).
pub fn allocatable_of(node: &Value) -> Room {
    let alloc = &node["status"]["allocatable"];
    Room {
        cpu: milli_of(&alloc["cpu"]).unwrap_or(0),
        memory: milli_of(&alloc["memory"]).unwrap_or(0),
        pods: milli_of(&alloc["pods"]).unwrap_or(110_000),
        extended: alloc
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| is_extended(k))
            .filter_map(|(k, v)| Some((k.clone(), milli_of(v)?)))
            .collect(),
    }
}

/// Why the pod does not fit the node (empty: it fits), in the scheduler's words and order
/// (upstream's `fitsRequest`, pkg/scheduler/framework/plugins/noderesources/fit.go: pod slots,
/// cpu, memory, then each extended resource as `Insufficient <name>`).
pub fn misfits(allocatable: &Room, used: &Room, request: &Room) -> Vec<String> {
    let mut reasons = Vec::new();
    if used.pods + request.pods > allocatable.pods {
        reasons.push("Too many pods".to_owned());
    }
    if used.cpu + request.cpu > allocatable.cpu {
        reasons.push("Insufficient cpu".to_owned());
    }
    if used.memory + request.memory > allocatable.memory {
        reasons.push("Insufficient memory".to_owned());
    }
    for (name, amount) in &request.extended {
        if used.extended_of(name) + amount > allocatable.extended_of(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

/// "0/3 nodes are available: 1 Insufficient memory, 3 Insufficient cpu." from per-node reasons.
pub fn unschedulable_message(node_count: usize, reasons_per_node: &[Vec<String>]) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in reasons_per_node.iter().flatten() {
        *histogram.entry(reason.as_str()).or_default() += 1;
    }
    let mut parts: Vec<String> = histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    if parts.is_empty() {
        return format!("0/{node_count} nodes are available.");
    }
    format!("0/{node_count} nodes are available: {}.", parts.join(", "))
}

struct Node {
    name: String,
    allocatable: Room,
    used: Room,
    /// Its taints (`key`, `value`, `effect`).
    taints: Vec<(String, String, String)>,
    /// Its labels and name, as the NodeAffinity filter reads them.
    node: Value,
}

/// Whether one toleration (a pod's `spec.tolerations[]` item) tolerates the taint, by the API's
/// rule (k8s.io/api core/v1 `Toleration.ToleratesTaint`): an empty effect matches every effect,
/// an empty key every key; `Exists` any value, `Equal` (or no operator) the same value.
pub fn tolerates(toleration: &Value, key: &str, value: &str, effect: &str) -> bool {
    let field = |f: &str| toleration[f].as_str().unwrap_or_default();
    if !field("effect").is_empty() && field("effect") != effect {
        return false;
    }
    if !field("key").is_empty() && field("key") != key {
        return false;
    }
    match field("operator") {
        "" | "Equal" => field("value") == value,
        "Exists" => true,
        _ => false,
    }
}

/// The scheduler's TaintToleration filter (pkg/scheduler/framework/plugins/tainttoleration,
/// `Filter`): the first NoSchedule/NoExecute taint of the node that no toleration tolerates,
/// in its words, "node(s) had untolerated taint {key: value}"; `None` when the pod may go there.
/// It runs before NodeAffinity and NodeResourcesFit (the default plugin order,
/// pkg/scheduler/apis/config/v1/default_plugins.go), and the first filter that rejects a node
/// gives its only reason: a node the pod's node selection rules out says
/// "node(s) didn't match Pod's node affinity/selector" and nothing of its room.
pub fn untolerated(taints: &[(String, String, String)], tolerations: &[Value]) -> Option<String> {
    taints
        .iter()
        .filter(|(_, _, effect)| effect == "NoSchedule" || effect == "NoExecute")
        .find(|(key, value, effect)| !tolerations.iter().any(|t| tolerates(t, key, value, effect)))
        .map(|(key, value, _)| format!("node(s) had untolerated taint {{{key}: {value}}}"))
}

/// A pod waiting for a node, read without cloning it.
struct Waiting {
    key: ObjectKey,
    created: String,
    request: Room,
    /// Its `spec.tolerations`.
    tolerations: Vec<Value>,
    /// Its `spec.nodeSelector` and required node affinity.
    required: Required,
    /// The Unschedulable message it already carries, so an unchanged verdict writes nothing.
    message: Option<String>,
}

/// One scheduling pass over every pending pod of the cluster; [`Pending::Timed`] while pods
/// wait (they are retried every pass, as the scheduler's backoff queue retries them).
pub fn pass(store: &Store) -> Pending {
    // The pods not scheduled yet come from the store's node index, not a scan of every pod.
    let mut pending = store.scan_on_node("", |p| {
        let unbound = p["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
        (unbound && !is_terminating(p) && super::quota::counts(p)).then(|| Waiting {
            key: key("pods", p),
            created: p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            request: requests_of(p),
            tolerations: p["spec"]["tolerations"].as_array().cloned().unwrap_or_default(),
            required: Required::of(p),
            message: condition(p, "PodScheduled")
                .filter(|c| c["reason"] == "Unschedulable")
                .and_then(|c| c["message"].as_str().map(str::to_owned)),
        })
    });
    if pending.is_empty() {
        return Pending::Nothing;
    }
    pending.sort_by(|a, b| {
        a.created
            .cmp(&b.created)
            .then_with(|| a.key.name.cmp(&b.key.name))
    });
    let mut nodes = store.scan("nodes", None, |n| {
        if n["spec"]["unschedulable"].as_bool() == Some(true) {
            return None;
        }
        let field = |t: &Value, f: &str| t[f].as_str().unwrap_or_default().to_owned();
        Some(Node {
            name: name(n).to_owned(),
            allocatable: allocatable_of(n),
            used: Room::default(),
            taints: n["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (field(t, "key"), field(t, "value"), field(t, "effect")))
                .collect(),
            node: json!({"metadata": {"name": n["metadata"]["name"], "labels": n["metadata"]["labels"]}}),
        })
    });
    // A terminating pod still runs on its node until the kubelet has stopped it, so its
    // requests still take room there (the scheduler's cache drops a pod only when it is deleted).
    let bound = store.scan("pods", None, |p| {
        let node = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())?;
        let phase = p["status"]["phase"].as_str().unwrap_or_default();
        (phase != "Succeeded" && phase != "Failed").then(|| (node.to_owned(), requests_of(p)))
    });
    for (node_name, request) in bound {
        if let Some(node) = nodes.iter_mut().find(|n| n.name == node_name) {
            node.used.add(&request);
        }
    }
    for pod in &pending {
        schedule_one(store, &mut nodes, pod);
    }
    Pending::Timed
}

fn schedule_one(store: &Store, nodes: &mut [Node], pod: &Waiting) {
    let request = &pod.request;
    let named = pod.required.node_names();
    let reasons: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| match untolerated(&n.taints, &pod.tolerations) {
            _ if named.as_ref().is_some_and(|names| !names.contains(&n.name)) => {
                vec![ABSENT_NODE_REASON.to_owned()]
            }
            Some(taint) => vec![taint],
            None if !pod.required.matches(&n.node) => vec![ERR_REASON_POD.to_owned()],
            None => misfits(&n.allocatable, &n.used, request),
        })
        .collect();
    let best = nodes
        .iter_mut()
        .zip(&reasons)
        .filter(|(_, r)| r.is_empty())
        .map(|(n, _)| n)
        .max_by_key(|n| (n.allocatable.cpu - n.used.cpu, std::cmp::Reverse(n.name.clone())));
    let Some(node) = best else {
        let message = unschedulable_message(nodes.len(), &reasons);
        if pod.message.as_deref() == Some(message.as_str()) {
            return;
        }
        let written = store.modify(&pod.key, UpdatePart::Status, |p| {
            p["status"]["phase"] = json!("Pending");
            set_condition(
                &mut p["status"],
                "PodScheduled",
                "False",
                "Unschedulable",
                &message,
            )
        });
        if let Ok(stored) = written {
            record(
                store,
                &stored,
                Severity::Warning,
                "FailedScheduling",
                &message,
                "default-scheduler",
            );
        }
        return;
    };
    node.used.add(request);
    let node_name = node.name.clone();
    // The condition goes first and the binding (spec.nodeName, as the pods/binding subresource
    // sets it) second: the kubelet acts on bound pods only, so its status write can never race
    // with, and drop, the scheduler's condition.
    let marked = store.modify(&pod.key, UpdatePart::Status, |p| {
        set_condition(&mut p["status"], "PodScheduled", "True", "", "");
        true
    });
    if marked.is_err() {
        return;
    }
    let scheduled = update_main(store, &pod.key, |p| {
        p["spec"]["nodeName"] = json!(node_name);
        true
    });
    if let Ok(stored) = scheduled {
        let message = format!(
            "Successfully assigned {}/{} to {node_name}",
            namespace(&stored),
            name(&stored)
        );
        record(
            store,
            &stored,
            Severity::Normal,
            "Scheduled",
            &message,
            "default-scheduler",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_compares_used_plus_request_with_allocatable() {
        let alloc = Room {
            cpu: 4000,
            memory: 16_000,
            pods: 110_000,
            ..Room::default()
        };
        let used = Room {
            cpu: 3600,
            memory: 1000,
            pods: 3000,
            ..Room::default()
        };
        assert!(
            misfits(
                &alloc,
                &used,
                &Room {
                    cpu: 400,
                    memory: 1000,
                    pods: 1000,
                    ..Room::default()
                }
            )
            .is_empty()
        );
        assert_eq!(
            misfits(
                &alloc,
                &used,
                &Room {
                    cpu: 401,
                    memory: 15_001,
                    pods: 1000,
                    ..Room::default()
                }
            ),
            vec!["Insufficient cpu", "Insufficient memory"]
        );
    }

    #[test]
    fn message_counts_reasons_like_the_scheduler() {
        let reasons: Vec<Vec<String>> = [
            vec!["Insufficient cpu"],
            vec!["Insufficient cpu", "Insufficient memory"],
            vec!["Insufficient cpu"],
        ]
        .iter()
        .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
        .collect();
        assert_eq!(
            unschedulable_message(3, &reasons),
            "0/3 nodes are available: 1 Insufficient memory, 3 Insufficient cpu."
        );
    }

    /// Upstream's `fitsRequest` (pkg/scheduler/framework/plugins/noderesources/fit.go): every
    /// scalar resource of the request against allocatable minus requested, `Insufficient <name>`.
    /// k8s.io/api core/v1 `Toleration.ToleratesTaint` and the TaintToleration filter's words
    /// (pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go, `Filter`).
    #[test]
    fn taints_keep_pods_off_unless_tolerated() {
        let taints = [
            (
                "nvidia.com/gpu".to_owned(),
                "present".to_owned(),
                "NoSchedule".to_owned(),
            ),
            ("pool".to_owned(), "gpu".to_owned(), "PreferNoSchedule".to_owned()),
        ];
        assert_eq!(
            untolerated(&taints, &[]).as_deref(),
            Some("node(s) had untolerated taint {nvidia.com/gpu: present}")
        );
        let exists = json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(
            untolerated(&taints, &[exists]),
            None,
            "PreferNoSchedule never filters"
        );
        let wrong_value = json!({"key": "nvidia.com/gpu", "value": "absent"});
        assert!(untolerated(&taints, &[wrong_value]).is_some());
        let everything = json!({"operator": "Exists"});
        assert_eq!(untolerated(&taints, &[everything]), None);
        assert!(!tolerates(
            &json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}),
            "nvidia.com/gpu",
            "present",
            "NoSchedule"
        ));
    }

    #[test]
    fn extended_resources_fit_only_where_allocatable_covers_them() {
        let gpu = |n: i128| Room {
            cpu: 100,
            pods: 1000,
            extended: [("nvidia.com/gpu".to_owned(), n * 1000)].into(),
            ..Room::default()
        };
        let plain = Room {
            cpu: 4000,
            memory: 16_000,
            pods: 110_000,
            ..Room::default()
        };
        let gpu_node = Room {
            extended: [("nvidia.com/gpu".to_owned(), 4000)].into(),
            ..plain.clone()
        };
        assert_eq!(
            misfits(&plain, &Room::default(), &gpu(1)),
            ["Insufficient nvidia.com/gpu"]
        );
        assert!(misfits(&gpu_node, &Room::default(), &gpu(4)).is_empty());
        assert_eq!(
            misfits(&gpu_node, &gpu(3), &gpu(2)),
            ["Insufficient nvidia.com/gpu"]
        );
        assert!(
            misfits(&plain, &Room::default(), &gpu(0)).is_empty(),
            "none asked"
        );
        let node = crate::seed::gpu_node("gpu-node-0");
        assert_eq!(
            allocatable_of(&node),
            Room {
                cpu: 8000,
                memory: 32 * (1 << 30) * 1000,
                ..gpu_node
            }
        );
        let reasons = vec![vec!["Insufficient nvidia.com/gpu".to_owned()]; 3];
        assert_eq!(
            unschedulable_message(3, &reasons),
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
        );
    }
}
