//! End-to-end tests of the controllers over a real Store: small worlds seeded in each test,
//! controllers running on the test's runtime, the store polled with a generous safety timeout.

mod autoscaling;
mod failures;
mod rollout;
mod scale;
mod statefulset;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Controllers, spawn};
use crate::scenario::Scenario;
use crate::store::{EventType, ObjectKey, Store, UpdatePart};

pub const NS: &str = "test";

pub struct World {
    pub store: Arc<Store>,
    pub scenario: Arc<Scenario>,
    _controllers: Controllers,
}

/// A store with `nodes` nodes of 4 CPU / 16Gi and running controllers with a 20 ms start delay.
pub fn world(nodes: usize) -> World {
    let store = Arc::new(Store::new());
    for i in 0..nodes {
        add_node(&store, &format!("node-{i}"), "4", "16Gi");
    }
    let scenario = Arc::new(Scenario::new(
        Duration::from_millis(20),
        Duration::from_millis(100),
    ));
    let controllers = spawn(Arc::clone(&store), Arc::clone(&scenario));
    World {
        store,
        scenario,
        _controllers: controllers,
    }
}

pub fn add_node(store: &Store, name: &str, cpu: &str, memory: &str) {
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}},
    });
    store.create(&ObjectKey::new("nodes", "", name), node).unwrap();
}

pub fn container(name: &str, cpu: &str, memory: &str) -> Value {
    json!({
        "name": name, "image": format!("example/{name}:1"),
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": "1", "memory": "2Gi"}},
    })
}

pub fn deployment(name: &str, replicas: i64, containers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    })
}

pub fn create(store: &Store, resource: &str, object: Value) {
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    store
        .create(&ObjectKey::new(resource, NS, &name), object)
        .unwrap();
}

pub fn get(store: &Store, resource: &str, name: &str) -> Value {
    store
        .get(&ObjectKey::new(resource, NS, name))
        .unwrap_or(Value::Null)
}

/// Changes an object's main part (spec) as a client would.
pub fn edit(store: &Store, resource: &str, name: &str, f: impl FnOnce(&mut Value)) {
    store
        .modify(&ObjectKey::new(resource, NS, name), UpdatePart::Main, |o| {
            f(o);
            true
        })
        .unwrap();
}

/// Polls until `done` holds; the timeout is only a safety net for a broken controller.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// kube-rs's `is_deployment_completed`, plus the generation check clients add.
pub fn rollout_complete(store: &Store, name: &str) -> bool {
    let d = get(store, "deployments", name);
    let progressing = d["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing").cloned());
    progressing.is_some_and(|c| c["reason"] == "NewReplicaSetAvailable" && c["status"] == "True")
        && d["status"]["observedGeneration"] == d["metadata"]["generation"]
}

pub fn pods_of(store: &Store, app: &str) -> Vec<Value> {
    store.scan("pods", Some(NS), |p| {
        (p["metadata"]["labels"]["app"] == app).then(|| p.clone())
    })
}

pub fn events(store: &Store, reason: &str) -> Vec<Value> {
    store.scan("events", Some(NS), |e| (e["reason"] == reason).then(|| e.clone()))
}

/// Follows every pod event of one app in order, recording the most pods and, once armed, the
/// fewest ready pods ever seen, and the order pods were deleted in.
#[derive(Default)]
pub struct PodTracker {
    pub max_pods: usize,
    pub min_ready: Option<usize>,
    pub deleted: Vec<String>,
}

pub fn track_pods(store: &Arc<Store>, app: &str) -> Arc<Mutex<PodTracker>> {
    let tracker = Arc::new(Mutex::new(PodTracker::default()));
    let mut events = store.subscribe();
    let mut pods: HashMap<String, bool> = store
        .scan("pods", Some(NS), |p| {
            (p["metadata"]["labels"]["app"] == app).then(|| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_owned(),
                    crate::controllers::common::pod_ready(p),
                )
            })
        })
        .into_iter()
        .collect();
    let app = app.to_owned();
    let shared = Arc::clone(&tracker);
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if event.key.resource != "pods" || event.object["metadata"]["labels"]["app"] != app.as_str() {
                continue;
            }
            let ready = crate::controllers::common::pod_ready(&event.object);
            match event.event_type {
                EventType::Deleted => {
                    pods.remove(&event.key.name);
                }
                _ => {
                    pods.insert(event.key.name.clone(), ready);
                }
            }
            let mut t = shared.lock().unwrap();
            if event.event_type == EventType::Deleted {
                t.deleted.push(event.key.name.clone());
            }
            t.max_pods = t.max_pods.max(pods.len());
            let ready_now = pods.values().filter(|r| **r).count();
            t.min_ready = Some(t.min_ready.map_or(ready_now, |m| m.min(ready_now)));
        }
    });
    tracker
}
