//! The world a sim starts with: three nodes, the `llm-orchestrator` namespace with the
//! orchestrator deployment, its HPA, service and config map, and the postgres statefulset.
//! Pods are not seeded: the workload controllers create them, as on a cluster.
//!
//! The `extra_pods` scale knob spreads that many pods over the cluster as a big production
//! cluster holds them, seeded already running (so 100,000 start in seconds, not through the
//! controllers one by one): one namespace `team-NNN` per 1,000 pods, each with a deployment
//! `worker` (label `app=worker`), its ReplicaSet and Running, Ready pods as the controllers
//! would have made them; one in twenty pods is a finished Job pod (Succeeded); one
//! `batch-node-N` per 100 running pods; and events: Normal ones about the team pods with a few
//! Warnings, and a busy `llm-orchestrator` history about other objects (a nightly report job),
//! one event per four pods. The orchestrator's selectors and its HPA's math are untouched.

use serde_json::{Value, json};

use crate::store::{ObjectKey, Store, StoreError};

/// The namespace of the orchestrator's workloads.
pub const NAMESPACE: &str = "llm-orchestrator";

/// The label `app` of the `extra_pods` deployments (one per team namespace).
pub const WORKER_APP: &str = "worker";

/// Pods per team namespace of the `extra_pods` spread.
const PODS_PER_NAMESPACE: usize = 1_000;

/// Running pods per batch node of the `extra_pods` spread (kubelet's max is 110).
const PODS_PER_NODE: usize = 100;

/// `config.yaml` of the `orchestrator-config` config map.
pub const CONFIG_YAML: &str = "# LLM Orchestrator configuration (managed by platform team)
server:
  port: 8080
  workers: 4
database:
  host: postgres.llm-orchestrator.svc
  port: 5432
  # Connections per pod; pods x max_connections must stay under postgres max_connections
  max_connections: 20
  timeout_seconds: 30
llm:
  provider: openai
  max_concurrent_requests: 50
";

/// Stores a seeded object, defaulted as the apiserver would have stored it (so a later write
/// through the API, which defaults too, does not change its spec by itself).
fn put(store: &Store, resource: &str, namespace: &str, mut object: Value) -> Result<(), StoreError> {
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    crate::server::defaults::apply(&kind, &mut object);
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    store
        .create(&ObjectKey::new(resource, namespace, &name), object)
        .map(|_| ())
}

/// A Ready node of the seeded shape (4 CPU, 16Gi, 110 pods).
pub(crate) fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64", "operatingSystem": "linux"},
        },
    })
}

/// A Ready node of a GPU pool as GKE and EKS make them (8 CPU, 32Gi, 110 pods, allocatable
/// `nvidia.com/gpu: 4`, which the device plugin advertises). Untainted, although those pools
/// carry `nvidia.com/gpu=present:NoSchedule`: the `gpu` tests add the taint where they test it
/// (the scheduler and the plugin's capacity check then want a toleration). Labelled as GKE labels
/// its accelerator pools, `cloud.google.com/gke-accelerator: nvidia-l4`: the label real GPU pods
/// are pinned by (`nodeSelector`), so tests pin pods to these nodes the way users do.
pub fn gpu_node(name: &str) -> Value {
    let mut node = node(name);
    let shape = json!({"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "4"});
    node["status"]["capacity"] = shape.clone();
    node["status"]["allocatable"] = shape;
    node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] = json!("nvidia-l4");
    node
}

/// Adds `count` GPU nodes, `gpu-node-0` on ([`gpu_node`]).
///
/// # Errors
/// `AlreadyExists` when one is there already.
pub fn gpu_nodes(store: &Store, count: usize) -> Result<(), StoreError> {
    for index in 0..count {
        put(store, "nodes", "", gpu_node(&format!("gpu-node-{index}")))?;
    }
    Ok(())
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn orchestrator_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "orchestrator", "namespace": NAMESPACE, "labels": {"app": "orchestrator"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "orchestrator"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "template": {
                "metadata": {"labels": {"app": "orchestrator"}},
                "spec": {"containers": [
                    {
                        "name": "orchestrator",
                        "image": "ghcr.io/example/llm-orchestrator:1.8.2",
                        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
                            "limits": {"cpu": "1", "memory": "2Gi"},
                        },
                    },
                    {
                        "name": "log-shipper",
                        "image": "fluent/fluent-bit:3.1",
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "128Mi"}},
                    },
                ]},
            },
        },
    })
}

fn orchestrator_hpa() -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "orchestrator", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"},
            "minReplicas": 3, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
        // The status of an HPA that has been running at rest (the controller trusts it until
        // its first periodic sync), so the world starts as a live cluster looks, not as one
        // whose HPA has never seen a metric.
        "status": {
            "observedGeneration": 1,
            "currentReplicas": 3, "desiredReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 54, "averageValue": "300m"}}},
                {"type": "Resource", "resource": {"name": "memory", "current": {"averageUtilization": 64, "averageValue": "700Mi"}}},
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                 "message": "recommended size matches current size", "lastTransitionTime": crate::store::now_rfc3339()},
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                 "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                 "lastTransitionTime": crate::store::now_rfc3339()},
                {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
                 "message": "the desired count is within the acceptable range", "lastTransitionTime": crate::store::now_rfc3339()},
            ],
        },
    })
}

fn postgres_statefulset() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "postgres", "namespace": NAMESPACE, "labels": {"app": "postgres"}},
        "spec": {
            "replicas": 1, "serviceName": "postgres",
            "selector": {"matchLabels": {"app": "postgres"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "podManagementPolicy": "OrderedReady",
            "template": {
                "metadata": {"labels": {"app": "postgres"}},
                "spec": {"containers": [{
                    "name": "postgres", "image": "postgres:16",
                    "args": ["-c", "max_connections=1000"],
                    "ports": [{"containerPort": 5432, "name": "postgres", "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
                }]},
            },
        },
    })
}

fn worker_deployment(namespace: &str, replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "worker", "namespace": namespace, "labels": {"app": WORKER_APP}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": WORKER_APP}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": WORKER_APP}},
                "spec": {"containers": [{
                    "name": "worker", "image": "ghcr.io/example/batch-worker:2.0.0",
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "50m", "memory": "64Mi"}},
                }]},
            },
        },
    })
}

/// The 5-character suffix a ReplicaSet gives its pods, from an index.
fn pod_suffix(mut index: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[index % ALPHABET.len()];
            index /= ALPHABET.len();
            char::from(c)
        })
        .collect()
}

/// An event as the components record it (see `controllers::events`).
fn event(
    namespace: &str,
    kind: &str,
    object: &str,
    warning: bool,
    reason: &str,
    message: &str,
    index: usize,
) -> Value {
    let now = crate::store::now_rfc3339();
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{object}.{index:016x}"), "namespace": namespace},
        "involvedObject": {"kind": kind, "name": object, "namespace": namespace, "apiVersion": "v1"},
        "reason": reason, "message": message,
        "type": if warning { "Warning" } else { "Normal" },
        "count": 1, "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "kubelet"}, "reportingComponent": "kubelet",
    })
}

/// Seeds `pods` pods spread as the module text says.
fn spread(store: &Store, pods: usize) -> Result<(), StoreError> {
    use crate::controllers::{common, deployment, pods as kubelet, replicaset};
    let finished = pods / 20;
    let running = pods - finished;
    let nodes = running.div_ceil(PODS_PER_NODE).max(1);
    for index in 0..nodes {
        put(store, "nodes", "", node(&format!("batch-node-{index}")))?;
    }
    let node_of = |index: usize| format!("batch-node-{}", (index / PODS_PER_NODE) % nodes);
    let namespaces = pods.div_ceil(PODS_PER_NAMESPACE).max(1);
    let mut placed = 0;
    for team in 0..namespaces {
        let ns = format!("team-{team:03}");
        put(store, "namespaces", "", namespace(&ns))?;
        let replicas = running / namespaces + usize::from(team < running % namespaces);
        let mut object = worker_deployment(&ns, replicas);
        crate::server::defaults::apply("Deployment", &mut object);
        let stored = store.create(&ObjectKey::new("deployments", &ns, "worker"), object)?;
        let hash = common::template_hash(&stored["spec"]["template"]);
        let replicas_i64 = i64::try_from(replicas).unwrap_or(i64::MAX);
        let Some(rs) = deployment::create_replica_set(store, &stored, &hash, replicas_i64, 1, 0) else {
            return Err(StoreError::AlreadyExists);
        };
        let rs_name = common::name(&rs).to_owned();
        for index in 0..replicas {
            let pod_name = format!("{rs_name}-{}", pod_suffix(placed));
            let mut pod = replicaset::pod_from_template(
                &rs,
                &rs["spec"]["template"],
                &pod_name,
                Some(&format!("{rs_name}-")),
            );
            pod["spec"]["nodeName"] = json!(node_of(placed));
            kubelet::set_running_ready(&mut pod, placed);
            store.create(&ObjectKey::new("pods", &ns, &pod_name), pod)?;
            if index % 10 == 0 {
                let warning = index % 500 == 0;
                let (reason, message) = if warning {
                    ("BackOff", "Back-off restarting failed container worker")
                } else {
                    (
                        "Pulled",
                        "Container image \"ghcr.io/example/batch-worker:2.0.0\" already present on machine",
                    )
                };
                store.create(
                    &ObjectKey::new("events", &ns, &format!("{pod_name}.{placed:016x}")),
                    event(&ns, "Pod", &pod_name, warning, reason, message, placed),
                )?;
            }
            placed += 1;
        }
    }
    for index in 0..finished {
        let ns = format!("team-{:03}", index % namespaces);
        let job = format!("report-{}", index / 4);
        let pod_name = format!("{job}-{}", pod_suffix(index));
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": ns, "labels": {"job-name": job},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                                              "uid": format!("00000000-0000-4000-9000-{index:012x}"), "controller": true}]},
            "spec": {"nodeName": node_of(index), "restartPolicy": "Never", "containers": [{
                "name": "report", "image": "ghcr.io/example/report:1.0",
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "report", "image": "ghcr.io/example/report:1.0", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
        });
        store.create(&ObjectKey::new("pods", &ns, &pod_name), pod)?;
    }
    // The orchestrator's namespace has a busy history about other objects.
    for index in 0..pods / 4 {
        let object = format!("nightly-report-{}", pod_suffix(index / 4));
        let warning = index % 25 == 0;
        let (reason, message) = if warning {
            (
                "FailedMount",
                "MountVolume.SetUp failed for volume \"reports\": configmap \"reports\" not found",
            )
        } else {
            ("Started", "Started container report")
        };
        store.create(
            &ObjectKey::new("events", NAMESPACE, &format!("{object}.{index:016x}")),
            event(NAMESPACE, "Pod", &object, warning, reason, message, index),
        )?;
    }
    Ok(())
}

/// Creates the seeded world in an empty store.
///
/// # Errors
/// `AlreadyExists` when the store is not empty.
pub fn seed(store: &Store, extra_pods: usize) -> Result<(), StoreError> {
    for name in ["node-a", "node-b", "node-c"] {
        put(store, "nodes", "", node(name))?;
    }
    for name in ["default", "kube-system", NAMESPACE] {
        put(store, "namespaces", "", namespace(name))?;
    }
    put(store, "deployments", NAMESPACE, orchestrator_deployment())?;
    let mut hpa = orchestrator_hpa();
    if !store.tracks_generation("horizontalpodautoscalers") {
        // An HPA without a generation has no observedGeneration either (before 1.36).
        if let Some(status) = hpa["status"].as_object_mut() {
            status.remove("observedGeneration");
        }
    }
    put(store, "horizontalpodautoscalers", NAMESPACE, hpa)?;
    put(store, "statefulsets", NAMESPACE, postgres_statefulset())?;
    put(
        store,
        "configmaps",
        NAMESPACE,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "orchestrator-config", "namespace": NAMESPACE},
            "data": {"config.yaml": CONFIG_YAML},
        }),
    )?;
    put(
        store,
        "services",
        NAMESPACE,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "orchestrator", "namespace": NAMESPACE, "labels": {"app": "orchestrator"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                     "selector": {"app": "orchestrator"},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}},
        }),
    )?;
    put(
        store,
        "services",
        NAMESPACE,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "postgres", "namespace": NAMESPACE, "labels": {"app": "postgres"}},
            "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                     "selector": {"app": "postgres"},
                     "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}},
        }),
    )?;
    if extra_pods > 0 {
        spread(store, extra_pods)?;
    }
    Ok(())
}

/// The namespace `monitoring` and the Service `prometheus-operated` (as the Prometheus Operator
/// names its governing Service, port 9090 `web`) in front of the simulated Prometheus. It has no
/// selector: the sim runs no Prometheus pod, and a selector-less Service is how Kubernetes fronts
/// a backend it does not schedule (its endpoints are managed outside the endpoints controller).
///
/// # Errors
/// When the store refuses an object.
pub fn seed_prometheus_service(store: &Store) -> Result<(), StoreError> {
    use crate::prometheus::{SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_PORT};
    put(store, "namespaces", "", namespace(SERVICE_NAMESPACE))?;
    put(
        store,
        "services",
        SERVICE_NAMESPACE,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE,
                         "labels": {"operated-prometheus": "true"}},
            "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                     "ports": [{"name": "web", "port": SERVICE_PORT, "targetPort": "web", "protocol": "TCP"}]},
            "status": {"loadBalancer": {}},
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_the_orchestrator_world() {
        let store = Store::new();
        seed(&store, 0).expect("seed");
        let deploy = store
            .get(&ObjectKey::new("deployments", NAMESPACE, "orchestrator"))
            .expect("deployment");
        let containers = deploy["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["resources"]["requests"]["ephemeral-storage"], "1Gi");
        assert_eq!(store.list("nodes", None).0.len(), 3);
        assert!(
            store
                .get(&ObjectKey::new("deployments", "team-000", "worker"))
                .is_none()
        );
        let config = store
            .get(&ObjectKey::new("configmaps", NAMESPACE, "orchestrator-config"))
            .expect("configmap");
        assert!(
            config["data"]["config.yaml"]
                .as_str()
                .is_some_and(|c| c.contains("max_connections: 20"))
        );
    }

    #[test]
    fn extra_pods_spread_over_namespaces_nodes_finished_pods_and_events() {
        let store = Store::new();
        seed(&store, 2_500).expect("seed");
        let (pods, _) = store.list("pods", None);
        let team = |p: &Value| {
            p["metadata"]["namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with("team-"))
        };
        let extra: Vec<&Value> = pods.iter().filter(|p| team(p)).collect();
        assert_eq!(extra.len(), 2_500);
        let finished = extra
            .iter()
            .filter(|p| p["status"]["phase"] == "Succeeded")
            .count();
        assert_eq!(finished, 125, "one in twenty");
        let namespaces: std::collections::BTreeSet<&str> = extra
            .iter()
            .filter_map(|p| p["metadata"]["namespace"].as_str())
            .collect();
        assert_eq!(namespaces.len(), 3, "one per 1,000 pods");
        // 2,375 running pods, 100 a node: 24 batch nodes next to the 3 seeded ones.
        assert_eq!(store.list("nodes", None).0.len(), 27);
        let rs = store.list("replicasets", Some("team-000")).0;
        assert_eq!(rs.len(), 1);
        let running = extra
            .iter()
            .filter(|p| p["metadata"]["namespace"] == "team-000" && p["status"]["phase"] == "Running")
            .count();
        assert_eq!(rs[0]["spec"]["replicas"], running, "the ReplicaSet owns its pods");
        assert!(extra.iter().all(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| n.starts_with("batch-node-"))
        }));
        let events = store.list("events", Some(NAMESPACE)).0;
        assert_eq!(
            events.len(),
            625,
            "one event in the orchestrator's namespace per four pods"
        );
        assert!(events.iter().any(|e| e["type"] == "Warning"));
        let orchestrator_pods = pods
            .iter()
            .filter(|p| p["metadata"]["namespace"] == NAMESPACE)
            .count();
        assert_eq!(
            orchestrator_pods, 0,
            "the orchestrator's pods are the controllers' to create"
        );
    }

    #[test]
    fn an_hpa_without_generation_is_seeded_without_observed_generation() {
        let mut store = Store::new();
        store.untrack_generation("horizontalpodautoscalers");
        seed(&store, 0).expect("seed");
        let hpa = store
            .get(&ObjectKey::new(
                "horizontalpodautoscalers",
                NAMESPACE,
                "orchestrator",
            ))
            .expect("hpa");
        assert!(hpa["metadata"].get("generation").is_none(), "{hpa}");
        assert!(hpa["status"].get("observedGeneration").is_none(), "{hpa}");
        assert_eq!(hpa["status"]["desiredReplicas"], 3);
        let deploy = store
            .get(&ObjectKey::new("deployments", NAMESPACE, "orchestrator"))
            .expect("deployment");
        assert_eq!(deploy["metadata"]["generation"], 1, "other resources keep theirs");
    }
}
