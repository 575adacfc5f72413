//! The world a sim starts with: three nodes, the `llm-orchestrator` namespace with the
//! orchestrator deployment, its HPA, service and config map, and the postgres statefulset.
//! Pods are not seeded: the workload controllers create them, as on a cluster.
//!
//! The `extra_pods` scale knob adds a deployment `batch-worker` (label `app=batch-worker`) with
//! that many replicas in the namespace `batch`, so list and watch traffic grows with real pods
//! that the controllers own, without touching the orchestrator's selectors or its HPA's math.
//! One `batch-node-N` is added per 100 extra pods so that all of them can be scheduled.

use serde_json::{Value, json};

use crate::store::{ObjectKey, Store, StoreError};

/// The namespace of the orchestrator's workloads.
pub const NAMESPACE: &str = "llm-orchestrator";

/// The namespace of the `extra_pods` deployment.
pub const BATCH_NAMESPACE: &str = "batch";

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

fn batch_deployment(replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "batch-worker", "namespace": BATCH_NAMESPACE, "labels": {"app": "batch-worker"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "batch-worker"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "batch-worker"}},
                "spec": {"containers": [{
                    "name": "worker", "image": "ghcr.io/example/batch-worker:2.0.0",
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "50m", "memory": "64Mi"}},
                }]},
            },
        },
    })
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
        // The three seeded nodes hold 330 pods at most; batch nodes take the rest so that
        // every extra pod is scheduled (100 a node leaves room for the orchestrator's).
        for index in 0..extra_pods.div_ceil(100) {
            put(store, "nodes", "", node(&format!("batch-node-{index}")))?;
        }
        put(store, "namespaces", "", namespace(BATCH_NAMESPACE))?;
        put(
            store,
            "deployments",
            BATCH_NAMESPACE,
            batch_deployment(extra_pods),
        )?;
    }
    Ok(())
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
                .get(&ObjectKey::new("deployments", BATCH_NAMESPACE, "batch-worker"))
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
    fn extra_pods_add_a_batch_deployment() {
        let store = Store::new();
        seed(&store, 250).expect("seed");
        let batch = store
            .get(&ObjectKey::new("deployments", BATCH_NAMESPACE, "batch-worker"))
            .expect("batch");
        assert_eq!(batch["spec"]["replicas"], 250);
        // 3 seeded nodes + 3 batch nodes of 100 pods each: room for every extra pod.
        assert_eq!(store.list("nodes", None).0.len(), 6);
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
