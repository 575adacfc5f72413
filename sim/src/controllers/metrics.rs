//! metrics-server: PodMetrics for every Running+Ready pod and NodeMetrics per node
//! (metrics.k8s.io/v1beta1, stored as `podmetrics` / `nodemetrics`), computed from the scenario's
//! load model: a workload's CPU split over its ready pods, memory per pod.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{is_terminating, name, namespace, pod_ready, workload_of};
use crate::scenario::Scenario;
use crate::store::{ObjectKey, Store, UpdatePart, now_rfc3339};

/// How often unchanged metrics get a fresh timestamp (metrics-server scrapes every 15 s or so);
/// changed usage is written at once.
const REFRESH: Duration = Duration::from_secs(10);
/// What a sidecar container uses: a small fixed amount, as a log shipper would.
const SIDECAR_CPU_MILLIS: u64 = 5;
const SIDECAR_MEMORY: u64 = 24 << 20;
/// Usage of a pod without a load model.
const IDLE_CPU_MILLIS: u64 = 10;
const IDLE_MEMORY: u64 = 32 << 20;
/// What the node itself (kubelet, system daemons) uses.
const NODE_BASE_CPU_MILLIS: u64 = 250;
const NODE_BASE_MEMORY: u64 = 1 << 30;

/// Usage of one container: (name, cpu millicores, memory bytes).
pub type ContainerUsage = (String, u64, u64);

/// Splits a pod's usage over its containers: sidecars get a small fixed share, the first
/// (main) container the rest.
pub fn split_usage(containers: &[String], cpu_millis: u64, memory: u64) -> Vec<ContainerUsage> {
    let sidecars = u64::try_from(containers.len().saturating_sub(1)).unwrap_or(0);
    let sidecar_cpu = SIDECAR_CPU_MILLIS.min(cpu_millis / (sidecars + 2));
    let sidecar_memory = SIDECAR_MEMORY.min(memory / (sidecars + 2));
    containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                (
                    c.clone(),
                    (cpu_millis - sidecar_cpu * sidecars).max(1),
                    memory - sidecar_memory * sidecars,
                )
            } else {
                (c.clone(), sidecar_cpu.max(1), sidecar_memory)
            }
        })
        .collect()
}

pub fn format_memory_ki(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

struct ReadyPod {
    namespace: String,
    name: String,
    labels: Value,
    node: String,
    workload: Option<String>,
    containers: Vec<String>,
}

pub struct MetricsServer {
    scenario: Arc<Scenario>,
    /// What was last written per object, and when.
    written: HashMap<ObjectKey, (Value, Instant)>,
}

impl MetricsServer {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        MetricsServer {
            scenario,
            written: HashMap::new(),
        }
    }

    pub fn pass(&mut self, store: &Store) {
        let pods = store.scan("pods", None, |p| {
            if is_terminating(p) || p["status"]["phase"] != "Running" || !pod_ready(p) {
                return None;
            }
            Some(ReadyPod {
                namespace: namespace(p).to_owned(),
                name: name(p).to_owned(),
                labels: p["metadata"]["labels"].clone(),
                node: p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned(),
                workload: workload_of(p).map(str::to_owned),
                containers: p["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect(),
            })
        });
        let mut ready_per_workload: HashMap<(String, String), u64> = HashMap::new();
        for pod in &pods {
            if let Some(w) = &pod.workload {
                *ready_per_workload
                    .entry((pod.namespace.clone(), w.clone()))
                    .or_default() += 1;
            }
        }
        let mut node_usage: HashMap<String, (u64, u64)> = HashMap::new();
        let mut live = HashSet::new();
        for pod in &pods {
            let load = pod.workload.as_deref().and_then(|w| self.scenario.load(w));
            let (cpu, memory) = match (load, &pod.workload) {
                (Some(load), Some(w)) => {
                    let ready = ready_per_workload
                        .get(&(pod.namespace.clone(), w.clone()))
                        .copied()
                        .unwrap_or(1);
                    (load.total_cpu_millis / ready.max(1), load.memory_per_pod_bytes)
                }
                _ => (IDLE_CPU_MILLIS, IDLE_MEMORY),
            };
            let usage = split_usage(&pod.containers, cpu, memory);
            let node = node_usage.entry(pod.node.clone()).or_default();
            node.0 += usage.iter().map(|u| u.1).sum::<u64>();
            node.1 += usage.iter().map(|u| u.2).sum::<u64>();
            let containers: Vec<Value> = usage
                .iter()
                .map(|(n, c, m)| json!({"name": n, "usage": {"cpu": format!("{c}m"), "memory": format_memory_ki(*m)}}))
                .collect();
            let key = ObjectKey::new("podmetrics", &pod.namespace, &pod.name);
            let object = json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "PodMetrics",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
                "window": "30s",
                "containers": containers,
            });
            self.write(store, key.clone(), object);
            live.insert(key);
        }
        let nodes = store.scan("nodes", None, |n| {
            Some((name(n).to_owned(), n["metadata"]["labels"].clone()))
        });
        for (node, labels) in nodes {
            let (cpu, memory) = node_usage.get(&node).copied().unwrap_or_default();
            let key = ObjectKey::new("nodemetrics", "", &node);
            let object = json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "NodeMetrics",
                "metadata": {"name": node, "labels": labels},
                "window": "20s",
                "usage": {
                    "cpu": format!("{}m", cpu + NODE_BASE_CPU_MILLIS),
                    "memory": format_memory_ki(memory + NODE_BASE_MEMORY),
                },
            });
            self.write(store, key.clone(), object);
            live.insert(key);
        }
        let stale: Vec<ObjectKey> = store
            .scan("podmetrics", None, |m| {
                Some(ObjectKey::new("podmetrics", namespace(m), name(m)))
            })
            .into_iter()
            .chain(store.scan("nodemetrics", None, |m| {
                Some(ObjectKey::new("nodemetrics", "", name(m)))
            }))
            .filter(|k| !live.contains(k))
            .collect();
        for key in stale {
            let _ = store.delete(&key, None);
            self.written.remove(&key);
        }
    }

    /// Writes a metrics object when its usage changed or its timestamp is due a refresh.
    fn write(&mut self, store: &Store, key: ObjectKey, object: Value) {
        let now = Instant::now();
        if let Some((last, at)) = self.written.get(&key)
            && *last == object
            && now.duration_since(*at) < REFRESH
            && store.get(&key).is_some()
        {
            return;
        }
        let mut stamped = object.clone();
        stamped["timestamp"] = json!(now_rfc3339());
        let written = store
            .modify(&key, UpdatePart::Main, |existing| {
                stamped["metadata"]["creationTimestamp"] = existing["metadata"]["creationTimestamp"].clone();
                *existing = stamped.clone();
                true
            })
            .or_else(|_| store.create(&key, stamped.clone()));
        if written.is_ok() {
            self.written.insert(key, (object, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_container_gets_most_sidecars_a_little() {
        let containers = vec!["app".to_owned(), "log-shipper".to_owned()];
        let usage = split_usage(&containers, 300, 700 << 20);
        assert_eq!(usage[0], ("app".to_owned(), 295, (700 << 20) - (24 << 20)));
        assert_eq!(usage[1].1, 5);
        assert_eq!(usage.iter().map(|u| u.1).sum::<u64>(), 300);
        assert_eq!(format_memory_ki(2048), "2Ki");
    }
}
