//! A node autoscaler (Cluster Autoscaler as on EKS, Autopilot's provisioner on GKE): pods the
//! scheduler marked Unschedulable trigger a scale-up of the node group (a `TriggeredScaleUp`
//! event on each pod), and the new nodes join the cluster a configurable delay later, after
//! which the scheduler places the pods. At the group's maximum a pod gets `NotTriggerScaleUp`.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{Value, json};

use super::common::{condition, is_terminating, uid};
use super::events::{Severity, record};
use super::node_affinity::{ERR_REASON_POD, Required};
use super::scheduler::{Room, requests_of};
use crate::profile::NodeAutoscaler as Config;
use crate::store::{ObjectKey, Store};

/// Allocatable room of a node the group adds (the seeded nodes' shape: 4 CPU, 16Gi, 110 pods).
/// It has no extended resources (no GPUs): a pod asking for one never triggers a scale-up.
const NEW_NODE: Room = Room {
    cpu: 4_000,
    memory: 16 * (1 << 30) * 1000,
    pods: 110_000,
    extended: std::collections::BTreeMap::new(),
};

pub struct NodeAutoscalerController {
    config: Config,
    /// Nodes ordered and not there yet: when each joins, and its name.
    provisioning: Vec<(Instant, String)>,
    /// Pods (by uid) that already triggered a scale-up (or were told they cannot).
    handled: HashSet<String>,
    added: usize,
}

fn fits_empty_node(request: &Room) -> bool {
    request.cpu <= NEW_NODE.cpu
        && request.memory <= NEW_NODE.memory
        && request.pods <= NEW_NODE.pods
        && request.extended.values().all(|amount| *amount <= 0)
}

/// How many new nodes the pods need, packed first-fit into empty nodes (at least one).
pub fn nodes_needed(requests: &[Room]) -> usize {
    let mut nodes: Vec<Room> = Vec::new();
    for request in requests {
        let fits = |used: &Room| {
            used.cpu + request.cpu <= NEW_NODE.cpu
                && used.memory + request.memory <= NEW_NODE.memory
                && used.pods + request.pods <= NEW_NODE.pods
        };
        match nodes.iter_mut().find(|n| fits(n)) {
            Some(node) => node.add(request),
            None => nodes.push(request.clone()),
        }
    }
    nodes.len().max(1)
}

/// The event message, as Cluster Autoscaler's `ScaleUpInfo.String()` prints the plan:
/// `pod triggered scale-up: [{<group> 3->4 (max: 10)}]`.
pub fn triggered_message(group: &str, from: usize, to: usize, max: usize) -> String {
    format!("pod triggered scale-up: [{{{group} {from}->{to} (max: {max})}}]")
}

impl NodeAutoscalerController {
    pub fn new(config: Config) -> Self {
        NodeAutoscalerController {
            config,
            provisioning: Vec::new(),
            handled: HashSet::new(),
            added: 0,
        }
    }

    pub fn pass(&mut self, store: &Store) {
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = self.provisioning.drain(..).partition(|(at, _)| *at <= now);
        self.provisioning = waiting;
        for (_, node) in due {
            let _ = store.create(&ObjectKey::new("nodes", "", &node), self.node(&node));
        }
        if self.provisioning.is_empty() {
            // Pods still unschedulable once the nodes are there may trigger another scale-up.
            self.handled.clear();
        }
        let pending = store.scan("pods", None, |p| {
            let unbound = p["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
            let unschedulable = condition(p, "PodScheduled")
                .is_some_and(|c| c["status"] == "False" && c["reason"] == "Unschedulable");
            (unbound && unschedulable && !is_terminating(p) && !self.handled.contains(uid(p)))
                .then(|| (p.clone(), requests_of(p)))
        });
        if pending.is_empty() {
            return;
        }
        // A pod no new node could hold does not trigger anything (upstream's wording).
        let (pending, too_big): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, r)| fits_empty_node(r));
        for (pod, _) in &too_big {
            self.handled.insert(uid(pod).to_owned());
            let message = "pod didn't trigger scale-up (it wouldn't fit if a new node is added)";
            record(
                store,
                pod,
                Severity::Normal,
                "NotTriggerScaleUp",
                message,
                "cluster-autoscaler",
            );
        }
        // Nor does one that a new node of the group could never take by its labels: the
        // autoscaler runs the scheduler's filters against the group's node template, and the
        // NodeAffinity filter's reason is what it reports.
        let template = self.node("template");
        let (pending, elsewhere): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(pod, _)| Required::of(pod).matches(&template));
        for (pod, _) in &elsewhere {
            self.handled.insert(uid(pod).to_owned());
            let message = format!("pod didn't trigger scale-up: 1 {ERR_REASON_POD}");
            record(
                store,
                pod,
                Severity::Normal,
                "NotTriggerScaleUp",
                &message,
                "cluster-autoscaler",
            );
        }
        if pending.is_empty() {
            return;
        }
        let current = store.scan("nodes", None, |_| Some(())).len() + self.provisioning.len();
        let max = self.config.max_nodes;
        let requests: Vec<Room> = pending.iter().map(|(_, r)| r.clone()).collect();
        let target = (current + nodes_needed(&requests)).min(max);
        let (reason, message) = if target > current {
            let ready_at = now + self.config.provision_delay;
            for _ in current..target {
                self.added += 1;
                let name = format!("{}-{}", self.config.node_group, self.added);
                self.provisioning.push((ready_at, name));
            }
            (
                "TriggeredScaleUp",
                triggered_message(&self.config.node_group, current, target, max),
            )
        } else {
            (
                "NotTriggerScaleUp",
                "pod didn't trigger scale-up: 1 max node group size reached".to_owned(),
            )
        };
        for (pod, _) in &pending {
            self.handled.insert(uid(pod).to_owned());
            record(
                store,
                pod,
                Severity::Normal,
                reason,
                &message,
                "cluster-autoscaler",
            );
        }
    }

    fn node(&self, name: &str) -> Value {
        let mut node = crate::seed::node(name);
        node["metadata"]["labels"]["orchscale.dev/node-group"] = json!(self.config.node_group);
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_packed_into_new_nodes() {
        let pod = |cpu| Room {
            cpu,
            memory: 1 << 30,
            pods: 1000,
            ..Room::default()
        };
        assert_eq!(nodes_needed(&[pod(500)]), 1);
        assert_eq!(nodes_needed(&[pod(2000), pod(2000)]), 1);
        assert_eq!(nodes_needed(&[pod(3000), pod(3000)]), 2);
        assert_eq!(nodes_needed(&[]), 1);
        assert!(fits_empty_node(&pod(4000)));
        assert!(!fits_empty_node(&pod(4001)));
        let mut gpu = pod(500);
        gpu.extended.insert("nvidia.com/gpu".into(), 1000);
        assert!(!fits_empty_node(&gpu), "the group's nodes have no GPU");
    }

    /// Cluster Autoscaler runs the scheduler's filters against the group's node template: a pod
    /// pinned elsewhere by its nodeSelector triggers nothing, and says which filter failed.
    #[test]
    fn a_pod_pinned_elsewhere_triggers_no_scale_up() {
        let store = Store::new();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                     "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        });
        store.create(&ObjectKey::new("pods", "ns", "p"), pod).unwrap();
        let mut autoscaler = NodeAutoscalerController::new(Config {
            node_group: "group".into(),
            provision_delay: std::time::Duration::from_secs(60),
            max_nodes: 10,
        });
        autoscaler.pass(&store);
        assert!(autoscaler.provisioning.is_empty(), "no node ordered");
        let events = store.scan("events", Some("ns"), |e| Some(e.clone()));
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["reason"], "NotTriggerScaleUp");
        assert_eq!(
            events[0]["message"],
            "pod didn't trigger scale-up: 1 node(s) didn't match Pod's node affinity/selector"
        );
    }

    #[test]
    fn message_reads_like_cluster_autoscaler() {
        assert_eq!(
            triggered_message("node-group", 3, 4, 10),
            "pod triggered scale-up: [{node-group 3->4 (max: 10)}]"
        );
    }
}
