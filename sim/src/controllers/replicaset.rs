//! The ReplicaSet controller: keeps `spec.replicas` pods per ReplicaSet (creating them from the
//! template through quota admission, deleting the least useful first), writes the ReplicaSet's
//! status and the ReplicaFailure/FailedCreate condition, and collects orphaned pods.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::common::{
    Scope, controller_uid, generation, is_terminating, key, name, namespace, owner_reference, pod_ready,
    random_suffix, remove_condition, set_condition, uid,
};
use super::events::{Severity, record};
use super::pods::delete_pod;
use super::quota::QuotaCheck;
use crate::profile::Behaviour;
use crate::scenario::Scenario;
use crate::store::{ObjectKey, Store, UpdatePart, now_rfc3339};

/// Most pods one ReplicaSet creates per pass, so one huge scale-up does not stall the others.
const CREATE_BURST: usize = 500;

/// The fields of a pod the ReplicaSet and Deployment controllers decide on.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub name: String,
    pub ready: bool,
    pub scheduled: bool,
    pub running: bool,
    pub created: String,
}

/// Live (non-terminating) pods per controlling owner uid, in the namespaces of `scope`.
pub fn pods_by_owner(store: &Store, scope: &Scope) -> HashMap<String, Vec<PodInfo>> {
    let mut by_owner: HashMap<String, Vec<PodInfo>> = HashMap::new();
    let pods = scope.scan(store, "pods", |p| {
        if is_terminating(p) || !super::quota::counts(p) {
            return None;
        }
        let owner = controller_uid(p)?.to_owned();
        Some((
            owner,
            PodInfo {
                name: name(p).to_owned(),
                ready: pod_ready(p),
                scheduled: p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()),
                running: p["status"]["phase"] == "Running",
                created: p["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
        ))
    });
    for (owner, pod) in pods {
        by_owner.entry(owner).or_default().push(pod);
    }
    by_owner
}

/// Terminating pods per controlling owner uid (`status.terminatingReplicas`: pods with a
/// deletionTimestamp that are not yet Succeeded/Failed), in the namespaces of `scope`.
pub fn terminating_by_owner(store: &Store, scope: &Scope) -> HashMap<String, i64> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    let owners = scope.scan(store, "pods", |p| {
        let phase = p["status"]["phase"].as_str().unwrap_or_default();
        (is_terminating(p) && phase != "Succeeded" && phase != "Failed")
            .then(|| controller_uid(p).map(str::to_owned))
            .flatten()
    });
    for owner in owners {
        *counts.entry(owner).or_default() += 1;
    }
    counts
}

/// The order in which pods go on scale-down: unscheduled, then pending, then not ready, then
/// the newest (kube's `ActivePods` ranking, simplified).
pub fn deletion_order(pods: &mut [PodInfo]) {
    pods.sort_by(|a, b| {
        a.scheduled
            .cmp(&b.scheduled)
            .then(a.running.cmp(&b.running))
            .then(a.ready.cmp(&b.ready))
            .then(b.created.cmp(&a.created))
            .then(b.name.cmp(&a.name))
    });
}

/// A new pod for `owner` from `template`, named `name`, as the controllers create it.
pub fn pod_from_template(
    owner: &Value,
    template: &Value,
    pod_name: &str,
    generate_name: Option<&str>,
) -> Value {
    let mut metadata = json!({
        "name": pod_name,
        "namespace": namespace(owner),
        "labels": template["metadata"]["labels"].clone(),
        "ownerReferences": [owner_reference(owner)],
    });
    if let Some(annotations) = template["metadata"]["annotations"].as_object() {
        metadata["annotations"] = json!(annotations);
    }
    if let Some(prefix) = generate_name {
        metadata["generateName"] = json!(prefix);
    }
    let mut spec = template["spec"].clone();
    for (field, default) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("serviceAccountName", json!("default")),
    ] {
        if spec.get(field).is_none() {
            spec[field] = default;
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    })
}

pub struct ReplicaSetController {
    scenario: Arc<Scenario>,
}

impl ReplicaSetController {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        ReplicaSetController { scenario }
    }

    /// One pass over the ReplicaSets (and their pods) of the namespaces in `scope`.
    pub fn pass(&mut self, store: &Store, scope: &Scope) {
        let sets = scope.scan(store, "replicasets", |rs| {
            (!is_terminating(rs)).then(|| rs.clone())
        });
        let mut pods = pods_by_owner(store, scope);
        let behaviour = self.scenario.behaviour();
        let terminating = if behaviour.terminating_replicas {
            Some(terminating_by_owner(store, scope))
        } else {
            None
        };
        let mut quotas: HashMap<String, QuotaCheck> = HashMap::new();
        let uids: HashSet<&str> = sets.iter().map(uid).collect();
        for rs in &sets {
            let owned = pods.remove(uid(rs)).unwrap_or_default();
            let terminating = terminating.as_ref().map(|t| t.get(uid(rs)).copied().unwrap_or(0));
            self.sync(store, rs, owned, terminating, &mut quotas);
        }
        collect_orphans(store, "ReplicaSet", &uids, behaviour, scope);
    }

    fn sync(
        &self,
        store: &Store,
        rs: &Value,
        mut owned: Vec<PodInfo>,
        terminating: Option<i64>,
        quotas: &mut HashMap<String, QuotaCheck>,
    ) {
        let desired = usize::try_from(rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0)).unwrap_or(0);
        let ns = namespace(rs).to_owned();
        let mut failure: Option<String> = None;
        let mut created = 0;
        if owned.len() < desired {
            let quota = quotas
                .entry(ns.clone())
                .or_insert_with(|| QuotaCheck::load(store, &ns));
            let template = &rs["spec"]["template"];
            let hash = template["metadata"]["labels"]["pod-template-hash"]
                .as_str()
                .unwrap_or_default();
            let workload = super::common::controller_ref(rs).map_or(name(rs), |(_, n)| n);
            for _ in 0..(desired - owned.len()).min(CREATE_BURST) {
                let pod_name = format!("{}-{}", name(rs), random_suffix(5));
                let pod = pod_from_template(rs, template, &pod_name, Some(&format!("{}-", name(rs))));
                if let Err(message) = quota.admit(&pod_name, &pod) {
                    failure = Some(message);
                    break;
                }
                self.scenario.decide_new_pod(workload, hash, &ns, &pod_name);
                if store.create(&ObjectKey::new("pods", &ns, &pod_name), pod).is_ok() {
                    created += 1;
                    record(
                        store,
                        rs,
                        Severity::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {pod_name}"),
                        "replicaset-controller",
                    );
                    owned.push(PodInfo {
                        name: pod_name,
                        ready: false,
                        scheduled: false,
                        running: false,
                        created: now_rfc3339(),
                    });
                }
            }
            if let Some(message) = &failure {
                record(
                    store,
                    rs,
                    Severity::Warning,
                    "FailedCreate",
                    &format!("Error creating: {message}"),
                    "replicaset-controller",
                );
            }
        } else if owned.len() > desired {
            deletion_order(&mut owned);
            let excess = owned.len() - desired;
            for pod in owned.drain(..excess) {
                let pod_key = ObjectKey::new("pods", &ns, &pod.name);
                if delete_pod(store, &pod_key, self.scenario.behaviour(), None, None).is_ok() {
                    record(
                        store,
                        rs,
                        Severity::Normal,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {}", pod.name),
                        "replicaset-controller",
                    );
                }
            }
        }
        let ready = i64::try_from(owned.iter().filter(|p| p.ready).count()).unwrap_or(0);
        let replicas = i64::try_from(owned.len()).unwrap_or(0);
        let observed = generation(rs);
        let _ = store.modify(&key("replicasets", rs), UpdatePart::Status, |stored| {
            let mut status = stored["status"].take();
            if !status.is_object() {
                status = json!({});
            }
            status["replicas"] = json!(replicas);
            status["fullyLabeledReplicas"] = json!(replicas);
            status["readyReplicas"] = json!(ready);
            status["availableReplicas"] = json!(ready);
            status["observedGeneration"] = json!(observed);
            // FilterActivePods: terminating pods are not replicas; since 1.35 (the
            // DeploymentReplicaSetTerminatingReplicas gate) they are counted on their own.
            if let Some(terminating) = terminating {
                status["terminatingReplicas"] = json!(terminating);
            }
            match &failure {
                Some(message) => {
                    set_condition(&mut status, "ReplicaFailure", "True", "FailedCreate", message);
                }
                // The condition clears once creation works again (or nothing needs creating).
                None if created > 0 || owned.len() >= desired => {
                    remove_condition(&mut status, "ReplicaFailure");
                    if status["conditions"].as_array().is_some_and(Vec::is_empty) {
                        status.as_object_mut().map(|m| m.remove("conditions"));
                    }
                }
                None => {}
            }
            stored["status"] = status;
            true
        });
    }
}

/// Deletes pods whose controlling owner of `kind` no longer exists (the garbage collector),
/// gracefully when the behaviour says so. Only pods in the namespaces of `scope`, where
/// `live_owner_uids` names every live owner (owners and pods share a namespace).
pub fn collect_orphans(
    store: &Store,
    kind: &str,
    live_owner_uids: &HashSet<&str>,
    behaviour: &Behaviour,
    scope: &Scope,
) {
    let orphans = scope.scan(store, "pods", |p| {
        let (owner_kind, _) = super::common::controller_ref(p)?;
        let owner_uid = controller_uid(p)?;
        (owner_kind == kind && !live_owner_uids.contains(owner_uid) && !is_terminating(p))
            .then(|| key("pods", p))
    });
    for orphan in orphans {
        let _ = delete_pod(store, &orphan, behaviour, None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, scheduled: bool, ready: bool, created: &str) -> PodInfo {
        PodInfo {
            name: name.into(),
            ready,
            scheduled,
            running: scheduled,
            created: created.into(),
        }
    }

    #[test]
    fn scale_down_removes_unscheduled_then_unready_then_newest() {
        let mut pods = vec![
            info("old-ready", true, true, "2026-01-01T00:00:00Z"),
            info("new-ready", true, true, "2026-01-02T00:00:00Z"),
            info("unready", true, false, "2026-01-01T00:00:00Z"),
            info("pending", false, false, "2026-01-01T00:00:00Z"),
        ];
        deletion_order(&mut pods);
        let order: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["pending", "unready", "new-ready", "old-ready"]);
    }

    #[test]
    fn pods_copy_the_template_and_point_at_their_owner() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"}});
        let template = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": [{"name": "web"}]}});
        let pod = pod_from_template(&rs, &template, "web-abc-xyz12", Some("web-abc-"));
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], "abc");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(pod["spec"]["containers"][0]["name"], "web");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
    }
}
