//! metrics-server: PodMetrics for every Running+Ready pod and NodeMetrics per node
//! (metrics.k8s.io/v1beta1, stored as `podmetrics` / `nodemetrics`), computed from the scenario's
//! load model: a workload's CPU split over its ready pods, memory per pod.
//!
//! With the behaviour's switches it reports as metrics-server does: CPU in nanocores, and at
//! its resolution: a pod gets its first sample only once it has run for one resolution (two
//! scrapes of the cumulative CPU counter make a rate), samples are refreshed once per
//! resolution, and `window` is the resolution.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{Scope, is_terminating, name, namespace, pod_ready, workload_of};
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

/// CPU as the API shows it: millicores (`300m`), or nanocores (`299011429n`) as metrics-server
/// writes them, with a pod-specific sub-millicore remainder that rounds up to the same millicores.
pub fn format_cpu_usage(millis: u64, nanocores: bool, salt: &str) -> String {
    if !nanocores {
        return format!("{millis}m");
    }
    let remainder = u64::from(super::common::fnv32_of_json(&json!(salt))) % 1_000_000;
    format!("{}n", (millis * 1_000_000).saturating_sub(remainder).max(1))
}

/// A duration as Go's `time.Duration.String()` prints it (metav1.Duration): `15s`, `300ms`, `1m30s`.
pub fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let (minutes, rest) = (millis / 60_000, millis % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let fraction = format!("{:03}", rest % 1000);
        format!("{}.{}s", rest / 1000, fraction.trim_end_matches('0'))
    };
    if minutes > 0 {
        format!("{minutes}m{seconds}")
    } else {
        seconds
    }
}

struct ReadyPod {
    namespace: String,
    name: String,
    labels: Value,
    node: String,
    workload: Option<String>,
    containers: Vec<String>,
}

/// What a metrics object says, without its timestamp: compared instead of the built object.
#[derive(Debug, Clone, PartialEq)]
struct Signature {
    usage: Vec<ContainerUsage>,
    labels: Value,
}

pub struct MetricsServer {
    scenario: Arc<Scenario>,
    /// What was last written per object, and when.
    written: HashMap<ObjectKey, (Signature, Instant)>,
    /// When each pod was first seen Running and Ready (for the resolution's first sample).
    first_seen: HashMap<ObjectKey, Instant>,
    /// What each Ready pod (by its podmetrics key) uses on which node, as its namespace's last
    /// pass found: the nodes' sums come from here, so a pass over some namespaces still sums
    /// every pod of a node.
    on_nodes: HashMap<ObjectKey, (String, u64, u64)>,
}

impl MetricsServer {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        MetricsServer {
            scenario,
            written: HashMap::new(),
            first_seen: HashMap::new(),
            on_nodes: HashMap::new(),
        }
    }

    /// One pass over the Ready pods of the namespaces in `scope` (their PodMetrics) and every
    /// node (NodeMetrics, summed over the pods of every namespace).
    pub fn pass(&mut self, store: &Store, scope: &Scope) {
        let pods = scope.scan(store, "pods", |p| {
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
        let mut live = HashSet::new();
        let behaviour = self.scenario.behaviour().clone();
        let now = Instant::now();
        let (pod_window, node_window) = match behaviour.metrics_resolution {
            Some(resolution) => (go_duration(resolution), go_duration(resolution)),
            None => ("30s".to_owned(), "20s".to_owned()),
        };
        let cpu = |millis: u64, salt: &str| format_cpu_usage(millis, behaviour.metrics_nanocores, salt);
        let seen: HashSet<ObjectKey> = pods
            .iter()
            .map(|p| ObjectKey::new("podmetrics", &p.namespace, &p.name))
            .collect();
        self.first_seen
            .retain(|k, _| seen.contains(k) || !scope.includes(&k.namespace));
        self.on_nodes
            .retain(|k, _| seen.contains(k) || !scope.includes(&k.namespace));
        for pod in &pods {
            let load = pod.workload.as_deref().and_then(|w| self.scenario.load(w));
            let (cpu_millis, memory) = match (load, &pod.workload) {
                (Some(load), Some(w)) => {
                    let ready = ready_per_workload
                        .get(&(pod.namespace.clone(), w.clone()))
                        .copied()
                        .unwrap_or(1);
                    (load.total_cpu_millis / ready.max(1), load.memory_per_pod_bytes)
                }
                _ => (IDLE_CPU_MILLIS, IDLE_MEMORY),
            };
            let usage = split_usage(&pod.containers, cpu_millis, memory);
            let key = ObjectKey::new("podmetrics", &pod.namespace, &pod.name);
            self.on_nodes.insert(
                key.clone(),
                (
                    pod.node.clone(),
                    usage.iter().map(|u| u.1).sum::<u64>(),
                    usage.iter().map(|u| u.2).sum::<u64>(),
                ),
            );
            let first_seen = *self.first_seen.entry(key.clone()).or_insert(now);
            if behaviour
                .metrics_resolution
                .is_some_and(|resolution| now.duration_since(first_seen) < resolution)
            {
                // Not scraped twice yet: no sample (the node still counts its usage).
                continue;
            }
            // Pods the scenario drives get a fresh sample every REFRESH; the others only when
            // their usage changes, so that a big idle cluster is not rewritten without end.
            let refresh = load.is_some();
            let signature = Signature {
                usage: usage.clone(),
                labels: pod.labels.clone(),
            };
            if self.is_fresh(store, &key, &signature, refresh, behaviour.metrics_resolution) {
                live.insert(key);
                continue;
            }
            let containers: Vec<Value> = usage
                .iter()
                .map(|(n, c, m)| {
                    let salt = format!("{}/{}/{n}", pod.namespace, pod.name);
                    json!({"name": n, "usage": {"cpu": cpu(*c, &salt), "memory": format_memory_ki(*m)}})
                })
                .collect();
            let object = json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "PodMetrics",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
                "window": pod_window,
                "containers": containers,
            });
            self.write(store, key.clone(), object, signature);
            live.insert(key);
        }
        let mut node_usage: HashMap<&str, (u64, u64)> = HashMap::new();
        for (node, cpu_millis, memory) in self.on_nodes.values() {
            let sum = node_usage.entry(node.as_str()).or_default();
            sum.0 += cpu_millis;
            sum.1 += memory;
        }
        let node_usage: HashMap<String, (u64, u64)> =
            node_usage.into_iter().map(|(n, u)| (n.to_owned(), u)).collect();
        let nodes = store.scan("nodes", None, |n| {
            Some((name(n).to_owned(), n["metadata"]["labels"].clone()))
        });
        for (node, labels) in nodes {
            let (cpu_millis, memory) = node_usage.get(&node).copied().unwrap_or_default();
            let key = ObjectKey::new("nodemetrics", "", &node);
            let signature = Signature {
                usage: vec![(String::new(), cpu_millis, memory)],
                labels: labels.clone(),
            };
            if self.is_fresh(store, &key, &signature, true, behaviour.metrics_resolution) {
                live.insert(key);
                continue;
            }
            let object = json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "NodeMetrics",
                "metadata": {"name": node, "labels": labels},
                "window": node_window,
                "usage": {
                    "cpu": cpu(cpu_millis + NODE_BASE_CPU_MILLIS, &node),
                    "memory": format_memory_ki(memory + NODE_BASE_MEMORY),
                },
            });
            self.write(store, key.clone(), object, signature);
            live.insert(key);
        }
        let stale: Vec<ObjectKey> = scope
            .scan(store, "podmetrics", |m| {
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

    /// Whether the metrics object written last is still good: same usage and labels, and (when
    /// `refresh`) younger than [`REFRESH`]; at a scrape `resolution`, younger than it.
    fn is_fresh(
        &self,
        store: &Store,
        key: &ObjectKey,
        signature: &Signature,
        refresh: bool,
        resolution: Option<Duration>,
    ) -> bool {
        let Some((last, at)) = self.written.get(key) else {
            return false;
        };
        let age = Instant::now().duration_since(*at);
        let fresh = match resolution {
            Some(resolution) => age < resolution,
            None => last == signature && (!refresh || age < REFRESH),
        };
        fresh && store.contains(key)
    }

    /// Writes a metrics object with the time of the sample.
    fn write(&mut self, store: &Store, key: ObjectKey, object: Value, signature: Signature) {
        let now = Instant::now();
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
            self.written.insert(key, (signature, now));
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

    #[test]
    fn nanocores_round_up_to_the_same_millicores() {
        assert_eq!(format_cpu_usage(253, false, "p"), "253m");
        let nano = format_cpu_usage(253, true, "ns/pod/app");
        assert!(nano.ends_with('n'), "{nano}");
        assert_eq!(super::super::quantity::cpu_millis(&nano), Some(253), "{nano}");
        assert_ne!(nano, "253000000n", "a real sample is not a round number");
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
