//! The Deployment controller: one ReplicaSet per pod template (`<deployment>-<hash>`),
//! revisions, rolling update (maxSurge / maxUnavailable) and Recreate, scaling, and the
//! Deployment's status with Available / Progressing / ReplicaFailure conditions.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::{Value, json};

use super::common::{
    Scope, condition, controller_uid, is_terminating, key, name, namespace, owner_reference, template_hash,
    uid, update_main,
};
use super::deployment_status::{Snapshot, write_status};
use super::events::{Severity, record};
use super::replicaset::{PodInfo, pods_by_owner, terminating_by_owner};
use super::rollout::{fenceposts, new_rs_replicas, old_scale_down};
use crate::profile::Behaviour;
use crate::store::{ObjectKey, Store};

const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";

/// One ReplicaSet as the rollout sees it: spec size and its live pods.
struct Set {
    object: Value,
    /// Its pods that are terminating (counted only with `terminating_replicas`).
    terminating: i64,
    spec: i64,
    pods: i64,
    ready: i64,
}

impl Set {
    fn name(&self) -> &str {
        name(&self.object)
    }
    /// Pods that exist or are about to: deletions and creations the ReplicaSet controller has
    /// not made yet both count, so the surge limit holds while it catches up.
    fn footprint(&self) -> i64 {
        self.spec.max(self.pods)
    }
    /// Ready pods that stay (the ReplicaSet may be about to delete some).
    fn available(&self) -> i64 {
        self.ready.min(self.spec)
    }
    fn revision(&self) -> i64 {
        revision_of(&self.object)
    }
}

fn revision_of(object: &Value) -> i64 {
    object["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
pub struct DeploymentController {
    /// When each deployment (by uid) last made progress, for progressDeadlineSeconds.
    last_progress: HashMap<String, Instant>,
    behaviour: Behaviour,
}

impl DeploymentController {
    pub fn new(behaviour: Behaviour) -> Self {
        DeploymentController {
            last_progress: HashMap::new(),
            behaviour,
        }
    }

    /// One pass over the Deployments (their ReplicaSets and pods) of the namespaces in `scope`.
    pub fn pass(&mut self, store: &Store, scope: &Scope) {
        let deployments = scope.scan(store, "deployments", |d| (!is_terminating(d)).then(|| d.clone()));
        let sets = scope.scan(store, "replicasets", |rs| {
            (!is_terminating(rs)).then(|| rs.clone())
        });
        let mut pods = pods_by_owner(store, scope);
        let terminating = if self.behaviour.terminating_replicas {
            Some(terminating_by_owner(store, scope))
        } else {
            None
        };
        let live: HashSet<&str> = deployments.iter().map(uid).collect();
        let mut by_owner: HashMap<&str, Vec<Set>> = HashMap::new();
        for rs in &sets {
            let Some(owner) = controller_uid(rs) else { continue };
            if super::common::controller_ref(rs).map(|r| r.0) != Some("Deployment") {
                continue;
            }
            if !live.contains(owner) {
                // Garbage collection of ReplicaSets whose Deployment is gone.
                let _ = store.delete(&key("replicasets", rs), None);
                continue;
            }
            let owned: Vec<PodInfo> = pods.remove(uid(rs)).unwrap_or_default();
            by_owner.entry(owner).or_default().push(Set {
                terminating: terminating
                    .as_ref()
                    .and_then(|t| t.get(uid(rs)).copied())
                    .unwrap_or(0),
                object: rs.clone(),
                spec: rs["spec"]["replicas"].as_i64().unwrap_or(1),
                pods: i64::try_from(owned.len()).unwrap_or(0),
                ready: i64::try_from(owned.iter().filter(|p| p.ready).count()).unwrap_or(0),
            });
        }
        for deployment in &deployments {
            let mut owned = by_owner.remove(uid(deployment)).unwrap_or_default();
            owned.sort_by(|a, b| {
                let created = |s: &Set| {
                    s.object["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                };
                created(a)
                    .cmp(&created(b))
                    .then_with(|| uid(&a.object).cmp(uid(&b.object)))
            });
            self.sync(store, deployment, owned);
        }
        // Deployments out of scope keep theirs; a pass over every namespace forgets the gone.
        if scope.is_all() {
            self.last_progress.retain(|u, _| live.contains(u.as_str()));
        }
    }

    fn sync(&mut self, store: &Store, deployment: &Value, mut sets: Vec<Set>) {
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
        let template = &deployment["spec"]["template"];
        let hash = template_hash(template);
        let recreate = deployment["spec"]["strategy"]["type"] == "Recreate";
        let (surge, unavailable) = if recreate {
            (0, replicas)
        } else {
            fenceposts(&deployment["spec"]["strategy"]["rollingUpdate"], replicas)
        };
        let max_revision = sets.iter().map(Set::revision).max().unwrap_or(0);
        let mut progress_reason: Option<(&str, String)> = None;
        let new_index = match sets
            .iter()
            .position(|s| s.object["metadata"]["labels"]["pod-template-hash"] == hash)
        {
            Some(i) => {
                if sets[i].revision() < max_revision {
                    // Rolling back to an older template makes its ReplicaSet the newest revision.
                    let revision = (max_revision + 1).to_string();
                    if let Ok(updated) = update_main(store, &key("replicasets", &sets[i].object), |rs| {
                        rs["metadata"]["annotations"][REVISION] = json!(revision);
                        true
                    }) {
                        sets[i].object = updated;
                    }
                    progress_reason = Some((
                        "FoundNewReplicaSet",
                        format!("Found new replica set \"{}\"", sets[i].name()),
                    ));
                }
                i
            }
            None if deployment["spec"]["paused"].as_bool() == Some(true) => return,
            None => {
                let all_pods: i64 = sets.iter().map(Set::footprint).sum();
                let initial = if recreate {
                    if all_pods == 0 { replicas } else { 0 }
                } else {
                    new_rs_replicas(replicas, surge, all_pods, 0)
                };
                let Some(created) =
                    create_replica_set(store, deployment, &hash, initial, max_revision + 1, surge)
                else {
                    return;
                };
                progress_reason = Some((
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{}\"", name(&created)),
                ));
                if initial > 0 {
                    scaled_event(store, deployment, name(&created), 0, initial);
                }
                sets.push(Set {
                    terminating: 0,
                    object: created,
                    spec: initial,
                    pods: 0,
                    ready: 0,
                });
                sets.len() - 1
            }
        };
        let new_revision = sets[new_index].revision().to_string();
        if deployment["metadata"]["annotations"][REVISION].as_str() != Some(new_revision.as_str()) {
            let _ = update_main(store, &key("deployments", deployment), |d| {
                d["metadata"]["annotations"][REVISION] = json!(new_revision);
                true
            });
        }
        if deployment["spec"]["paused"].as_bool() != Some(true) {
            if recreate {
                self.recreate(store, deployment, &mut sets, new_index, replicas);
            } else {
                rolling(
                    store,
                    deployment,
                    &mut sets,
                    new_index,
                    replicas,
                    surge,
                    unavailable,
                );
            }
        }
        prune_history(store, deployment, &sets, new_index);
        let new_rs = &sets[new_index];
        let snapshot = Snapshot {
            new_rs_name: new_rs.name(),
            new_pods: new_rs.pods,
            new_ready: new_rs.ready,
            total: sets.iter().map(|s| s.pods).sum(),
            ready: sets.iter().map(|s| s.ready).sum(),
            spec_total: sets.iter().map(|s| s.spec).sum(),
            replicas,
            unavailable,
            terminating: self
                .behaviour
                .terminating_replicas
                .then(|| sets.iter().map(|s| s.terminating).sum()),
            keep_complete_on_scale: self.behaviour.scale_keeps_progress_complete,
            failure: sets
                .iter()
                .filter_map(|s| condition(&s.object, "ReplicaFailure"))
                .find(|c| c["status"] == "True")
                .cloned(),
        };
        write_status(
            store,
            deployment,
            &snapshot,
            progress_reason,
            &mut self.last_progress,
        );
    }

    fn recreate(&self, store: &Store, deployment: &Value, sets: &mut [Set], new_index: usize, replicas: i64) {
        let mut old_pods = 0;
        for (i, set) in sets.iter_mut().enumerate() {
            if i != new_index {
                if set.spec > 0 {
                    scale(store, deployment, set, 0, replicas, 0);
                }
                old_pods += set.pods;
            }
        }
        // Recreate starts new pods only once every old pod is gone.
        if old_pods == 0 && sets[new_index].spec != replicas {
            scale(store, deployment, &mut sets[new_index], replicas, replicas, 0);
        }
    }
}

/// Deletes the oldest empty old ReplicaSets beyond spec.revisionHistoryLimit (default 10).
fn prune_history(store: &Store, deployment: &Value, sets: &[Set], new_index: usize) {
    let limit = usize::try_from(
        deployment["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0),
    )
    .unwrap_or(10);
    let mut empty: Vec<&Set> = sets
        .iter()
        .enumerate()
        .filter(|(i, s)| *i != new_index && s.spec == 0 && s.pods == 0)
        .map(|(_, s)| s)
        .collect();
    if empty.len() <= limit {
        return;
    }
    empty.sort_by_key(|s| s.revision());
    for set in &empty[..empty.len() - limit] {
        let _ = store.delete(&key("replicasets", &set.object), None);
    }
}

/// One step of a rolling update: grow the new ReplicaSet within the surge, then shrink old
/// ones while availability stays at replicas - maxUnavailable.
fn rolling(
    store: &Store,
    deployment: &Value,
    sets: &mut [Set],
    new_index: usize,
    replicas: i64,
    surge: i64,
    unavailable: i64,
) {
    let all_pods: i64 = sets.iter().map(Set::footprint).sum();
    let new_spec = sets[new_index].spec;
    let target = new_rs_replicas(replicas, surge, all_pods, new_spec);
    if target != new_spec {
        scale(store, deployment, &mut sets[new_index], target, replicas, surge);
    }
    let old_spec: i64 = sets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != new_index)
        .map(|(_, s)| s.spec)
        .sum();
    if old_spec == 0 {
        return;
    }
    let all_pods: i64 = sets.iter().map(Set::footprint).sum();
    let new_unavailable = (sets[new_index].spec - sets[new_index].ready).max(0);
    let old_unhealthy: i64 = sets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != new_index)
        .map(|(_, s)| (s.spec - s.ready).max(0))
        .sum();
    let available: i64 = sets.iter().map(Set::available).sum();
    let (mut unhealthy, mut healthy) = old_scale_down(
        replicas,
        unavailable,
        all_pods,
        new_unavailable,
        old_unhealthy,
        available,
    );
    for i in (0..sets.len()).filter(|i| *i != new_index) {
        let set = &mut sets[i];
        let set_unhealthy = (set.spec - set.ready).max(0).min(unhealthy);
        unhealthy -= set_unhealthy;
        let set_healthy = (set.spec - set_unhealthy).min(healthy).max(0);
        healthy -= set_healthy;
        let target = set.spec - set_unhealthy - set_healthy;
        if target != set.spec {
            scale(store, deployment, set, target, replicas, surge);
        }
    }
}

fn scale(store: &Store, deployment: &Value, set: &mut Set, to: i64, replicas: i64, surge: i64) {
    let from = set.spec;
    let result = update_main(store, &key("replicasets", &set.object), |rs| {
        rs["spec"]["replicas"] = json!(to);
        rs["metadata"]["annotations"][DESIRED] = json!(replicas.to_string());
        rs["metadata"]["annotations"][MAX] = json!((replicas + surge).to_string());
        true
    });
    if let Ok(updated) = result {
        set.object = updated;
        set.spec = to;
        scaled_event(store, deployment, set.name(), from, to);
    }
}

fn scaled_event(store: &Store, deployment: &Value, rs_name: &str, from: i64, to: i64) {
    let direction = if to > from { "up" } else { "down" };
    let message = format!("Scaled {direction} replica set {rs_name} from {from} to {to}");
    record(
        store,
        deployment,
        Severity::Normal,
        "ScalingReplicaSet",
        &message,
        "deployment-controller",
    );
}

pub(crate) fn create_replica_set(
    store: &Store,
    deployment: &Value,
    hash: &str,
    replicas: i64,
    revision: i64,
    surge: i64,
) -> Option<Value> {
    let rs_name = format!("{}-{hash}", name(deployment));
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": namespace(deployment),
            "labels": template["metadata"]["labels"].clone(),
            "annotations": {
                REVISION: revision.to_string(),
                DESIRED: desired.to_string(),
                MAX: (desired + surge).to_string(),
            },
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
        "status": {"replicas": 0, "observedGeneration": 0},
    });
    let rs_key = ObjectKey::new("replicasets", namespace(deployment), &rs_name);
    store.create(&rs_key, rs).ok()
}
