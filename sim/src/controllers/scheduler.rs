//! The scheduler: binds pending pods to the node with the most free CPU among those whose
//! allocatable room fits the pod's requests; otherwise marks them Unschedulable with the
//! scheduler's message and a FailedScheduling event. Retried every pass, so freed room is used.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::common::{Pending, condition, is_terminating, key, name, namespace, set_condition, update_main};
use super::events::{Severity, record};
use super::quantity::milli_of;
use super::quota::pod_usage;
use crate::store::{ObjectKey, Store, UpdatePart};

/// Room of one node, in milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Room {
    pub cpu: i128,
    pub memory: i128,
    pub pods: i128,
}

/// What a pod asks for, in milli-units (pods: 1000 per pod).
pub fn requests_of(pod: &Value) -> Room {
    let usage = pod_usage(pod);
    Room {
        cpu: usage["requests.cpu"],
        memory: usage["requests.memory"],
        pods: 1000,
    }
}

/// Why the pod does not fit the node (empty: it fits), in the scheduler's words.
pub fn misfits(allocatable: &Room, used: &Room, request: &Room) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if used.pods + request.pods > allocatable.pods {
        reasons.push("Too many pods");
    }
    if used.cpu + request.cpu > allocatable.cpu {
        reasons.push("Insufficient cpu");
    }
    if used.memory + request.memory > allocatable.memory {
        reasons.push("Insufficient memory");
    }
    reasons
}

/// "0/3 nodes are available: 1 Insufficient memory, 3 Insufficient cpu." from per-node reasons.
pub fn unschedulable_message(node_count: usize, reasons_per_node: &[Vec<&'static str>]) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in reasons_per_node.iter().flatten() {
        *histogram.entry(reason).or_default() += 1;
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
}

/// A pod waiting for a node, read without cloning it.
struct Waiting {
    key: ObjectKey,
    created: String,
    request: Room,
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
        let alloc = &n["status"]["allocatable"];
        Some(Node {
            name: name(n).to_owned(),
            allocatable: Room {
                cpu: milli_of(&alloc["cpu"]).unwrap_or(0),
                memory: milli_of(&alloc["memory"]).unwrap_or(0),
                pods: milli_of(&alloc["pods"]).unwrap_or(110_000),
            },
            used: Room::default(),
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
            node.used.cpu += request.cpu;
            node.used.memory += request.memory;
            node.used.pods += request.pods;
        }
    }
    for pod in &pending {
        schedule_one(store, &mut nodes, pod);
    }
    Pending::Timed
}

fn schedule_one(store: &Store, nodes: &mut [Node], pod: &Waiting) {
    let request = pod.request;
    let reasons: Vec<Vec<&'static str>> = nodes
        .iter()
        .map(|n| misfits(&n.allocatable, &n.used, &request))
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
    node.used.cpu += request.cpu;
    node.used.memory += request.memory;
    node.used.pods += request.pods;
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
        };
        let used = Room {
            cpu: 3600,
            memory: 1000,
            pods: 3000,
        };
        assert!(
            misfits(
                &alloc,
                &used,
                &Room {
                    cpu: 400,
                    memory: 1000,
                    pods: 1000
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
                    pods: 1000
                }
            ),
            vec!["Insufficient cpu", "Insufficient memory"]
        );
    }

    #[test]
    fn message_counts_reasons_like_the_scheduler() {
        let reasons = vec![
            vec!["Insufficient cpu"],
            vec!["Insufficient cpu", "Insufficient memory"],
            vec!["Insufficient cpu"],
        ];
        assert_eq!(
            unschedulable_message(3, &reasons),
            "0/3 nodes are available: 1 Insufficient memory, 3 Insufficient cpu."
        );
    }
}
