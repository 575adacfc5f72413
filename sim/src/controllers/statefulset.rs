//! The StatefulSet controller: pods `<sts>-0..N-1` created in order (each once the previous is
//! Ready), removed from the highest ordinal, revisions `<sts>-<hash>` in the
//! `controller-revision-hash` label, RollingUpdate (with partition) from the highest ordinal down
//! one Ready pod at a time, and OnDelete.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::common::{
    Scope, controller_uid, generation, is_terminating, key, name, namespace, pod_ready, template_hash, uid,
};
use super::events::{Severity, record};
use super::pods::delete_pod;
use super::quota::QuotaCheck;
use super::replicaset::{collect_orphans, pod_from_template};
use crate::profile::CurrentRevisionRule;
use crate::scenario::Scenario;
use crate::store::{ObjectKey, Store, UpdatePart};

/// A pod of a StatefulSet as the controller sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub ordinal: usize,
    pub revision: String,
    pub ready: bool,
    /// Deleted, still in its grace period (graceful deletion).
    pub terminating: bool,
}

/// What one pass does to a StatefulSet, decided from its members (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create(usize),
    Delete(usize),
    Wait,
}

/// The next step with OrderedReady semantics: create the lowest missing ordinal once every
/// lower one is Ready, remove the highest ordinal beyond `replicas`, and for RollingUpdate
/// replace the highest ordinal >= `partition` that is not at `update_revision`, only while all
/// pods are Ready.
pub fn next_step(
    members: &[Member],
    replicas: usize,
    update_revision: &str,
    rolling: bool,
    partition: usize,
) -> Step {
    let by_ordinal: HashMap<usize, &Member> = members.iter().map(|m| (m.ordinal, m)).collect();
    if let Some(highest) = members
        .iter()
        .filter(|m| m.ordinal >= replicas)
        .max_by_key(|m| m.ordinal)
    {
        // OrderedReady: one condemned pod at a time, the next once it is gone.
        return if highest.terminating {
            Step::Wait
        } else {
            Step::Delete(highest.ordinal)
        };
    }
    for ordinal in 0..replicas {
        match by_ordinal.get(&ordinal) {
            None => return Step::Create(ordinal),
            // A terminating pod still holds its name: wait for it to go, then recreate.
            Some(m) if !m.ready || m.terminating => return Step::Wait,
            Some(_) => {}
        }
    }
    if rolling {
        let stale = members
            .iter()
            .filter(|m| m.ordinal >= partition && m.revision != update_revision)
            .map(|m| m.ordinal)
            .max();
        if let Some(ordinal) = stale {
            return Step::Delete(ordinal);
        }
    }
    Step::Wait
}

/// Whether `status.currentRevision` moves to the update revision now (pure).
///
/// Upstream (pkg/controller/statefulset/stateful_set_utils.go, `completeRollingUpdate`) promotes
/// it only when `updateStrategy.type` is RollingUpdate and updatedReplicas, readyReplicas and
/// replicas all equal spec.replicas; an OnDelete set keeps its currentRevision for good before
/// 1.36. The idealised rule promotes once every pod is updated, ready or not, for any strategy.
pub fn promotes(
    rule: CurrentRevisionRule,
    rolling: bool,
    replicas: usize,
    members: usize,
    updated: i64,
    ready: i64,
) -> bool {
    let replicas_i = i64::try_from(replicas).unwrap_or(i64::MAX);
    let all_updated = members == replicas && updated == replicas_i;
    match rule {
        CurrentRevisionRule::AllUpdated => all_updated,
        CurrentRevisionRule::RollingUpdateOnly => rolling && all_updated && ready == replicas_i,
        CurrentRevisionRule::AnyStrategyWhenReady => all_updated && ready == replicas_i,
    }
}

pub struct StatefulSetController {
    scenario: Arc<Scenario>,
}

impl StatefulSetController {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        StatefulSetController { scenario }
    }

    /// One pass over the StatefulSets (and their pods) of the namespaces in `scope`.
    pub fn pass(&mut self, store: &Store, scope: &Scope) {
        let sets = scope.scan(store, "statefulsets", |s| (!is_terminating(s)).then(|| s.clone()));
        let mut members: HashMap<String, Vec<Member>> = HashMap::new();
        let graceful = self.scenario.behaviour().graceful_deletion;
        let pods = scope.scan(store, "pods", |p| {
            if (is_terminating(p) && !graceful) || super::common::controller_ref(p)?.0 != "StatefulSet" {
                return None;
            }
            let owner = controller_uid(p)?.to_owned();
            let ordinal = name(p).rsplit_once('-')?.1.parse().ok()?;
            let revision = p["metadata"]["labels"]["controller-revision-hash"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            Some((
                owner,
                Member {
                    ordinal,
                    revision,
                    ready: pod_ready(p),
                    terminating: is_terminating(p),
                },
            ))
        });
        for (owner, member) in pods {
            members.entry(owner).or_default().push(member);
        }
        for set in &sets {
            let owned = members.remove(uid(set)).unwrap_or_default();
            self.sync(store, set, owned);
        }
        let live: HashSet<&str> = sets.iter().map(uid).collect();
        collect_orphans(store, "StatefulSet", &live, self.scenario.behaviour(), scope);
    }

    fn sync(&self, store: &Store, set: &Value, mut members: Vec<Member>) {
        let sts_name = name(set);
        let ns = namespace(set);
        let replicas = usize::try_from(set["spec"]["replicas"].as_i64().unwrap_or(1).max(0)).unwrap_or(0);
        let update_revision = format!("{sts_name}-{}", template_hash(&set["spec"]["template"]));
        let current_revision = set["status"]["currentRevision"]
            .as_str()
            .unwrap_or(&update_revision)
            .to_owned();
        let strategy = &set["spec"]["updateStrategy"];
        let rolling = strategy["type"].as_str().unwrap_or("RollingUpdate") == "RollingUpdate";
        let partition = usize::try_from(
            strategy["rollingUpdate"]["partition"]
                .as_i64()
                .unwrap_or(0)
                .max(0),
        )
        .unwrap_or(0);
        let pod_name = |ordinal: usize| format!("{sts_name}-{ordinal}");
        match next_step(&members, replicas, &update_revision, rolling, partition) {
            Step::Create(ordinal) => {
                // Below the partition a recreated pod keeps the current revision.
                let revision = if rolling && ordinal < partition {
                    &current_revision
                } else {
                    &update_revision
                };
                if let Some(template) = self.template_for(store, set, revision, &update_revision) {
                    self.create_pod(store, set, &template, ordinal, revision);
                }
            }
            Step::Delete(ordinal) => {
                let pod_key = ObjectKey::new("pods", ns, &pod_name(ordinal));
                if let Ok(deleted) = delete_pod(store, &pod_key, self.scenario.behaviour(), None, None) {
                    if is_terminating(&deleted) {
                        if let Some(m) = members.iter_mut().find(|m| m.ordinal == ordinal) {
                            m.terminating = true;
                        }
                    } else {
                        members.retain(|m| m.ordinal != ordinal);
                    }
                    let message = format!(
                        "delete Pod {} in StatefulSet {sts_name} successful",
                        pod_name(ordinal)
                    );
                    record(
                        store,
                        set,
                        Severity::Normal,
                        "SuccessfulDelete",
                        &message,
                        "statefulset-controller",
                    );
                }
            }
            Step::Wait => {}
        }
        let count =
            |f: &dyn Fn(&Member) -> bool| i64::try_from(members.iter().filter(|m| f(m)).count()).unwrap_or(0);
        // updateStatefulSet's status loop: every created pod is a replica, ready ones count as
        // ready, and only pods that are not terminating count as current / updated.
        let updated = count(&|m| m.revision == update_revision && !m.terminating);
        let ready = count(&|m| m.ready);
        let current_revision = if promotes(
            self.scenario.behaviour().current_revision,
            rolling,
            replicas,
            members.len(),
            updated,
            ready,
        ) {
            update_revision.clone()
        } else {
            current_revision
        };
        let status = json!({
            "observedGeneration": generation(set),
            "replicas": members.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": count(&|m| m.revision == current_revision && !m.terminating),
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": 0,
        });
        if set["status"] != status {
            let _ = store.modify(&key("statefulsets", set), UpdatePart::Status, |s| {
                s["status"] = status;
                true
            });
        }
        // Remember each revision's template, so pods below a partition are recreated from it.
        self.remember_revision(store, set, &update_revision);
    }

    fn template_for(
        &self,
        store: &Store,
        set: &Value,
        revision: &str,
        update_revision: &str,
    ) -> Option<Value> {
        if revision == update_revision {
            return Some(set["spec"]["template"].clone());
        }
        store
            .get(&ObjectKey::new("controllerrevisions", namespace(set), revision))
            .map(|r| r["data"]["spec"]["template"].clone())
    }

    fn remember_revision(&self, store: &Store, set: &Value, revision: &str) {
        let revision_key = ObjectKey::new("controllerrevisions", namespace(set), revision);
        if store.get(&revision_key).is_some() {
            return;
        }
        let number = store
            .scan("controllerrevisions", Some(namespace(set)), |r| {
                (super::common::controller_uid(r) == Some(uid(set)))
                    .then(|| r["revision"].as_i64().unwrap_or(0))
            })
            .into_iter()
            .max()
            .unwrap_or(0);
        let object = json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": revision,
                "namespace": namespace(set),
                "labels": set["spec"]["selector"]["matchLabels"].clone(),
                "ownerReferences": [super::common::owner_reference(set)],
            },
            "data": {"spec": {"template": set["spec"]["template"].clone()}},
            "revision": number + 1,
        });
        let _ = store.create(&revision_key, object);
    }

    fn create_pod(&self, store: &Store, set: &Value, template: &Value, ordinal: usize, revision: &str) {
        let ns = namespace(set);
        let sts_name = name(set);
        let pod_name = format!("{sts_name}-{ordinal}");
        let mut pod = pod_from_template(set, template, &pod_name, None);
        pod["metadata"]["labels"]["controller-revision-hash"] = json!(revision);
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
        pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
        pod["spec"]["hostname"] = json!(pod_name);
        if let Some(service) = set["spec"]["serviceName"].as_str() {
            pod["spec"]["subdomain"] = json!(service);
        }
        if let Err(message) = QuotaCheck::load(store, ns).admit(&pod_name, &pod) {
            let message = format!("create Pod {pod_name} in StatefulSet {sts_name} failed error: {message}");
            record(
                store,
                set,
                Severity::Warning,
                "FailedCreate",
                &message,
                "statefulset-controller",
            );
            return;
        }
        let hash = revision.rsplit_once('-').map_or(revision, |(_, h)| h);
        self.scenario.decide_new_pod(sts_name, hash, ns, &pod_name);
        if store.create(&ObjectKey::new("pods", ns, &pod_name), pod).is_ok() {
            let message = format!("create Pod {pod_name} in StatefulSet {sts_name} successful");
            record(
                store,
                set,
                Severity::Normal,
                "SuccessfulCreate",
                &message,
                "statefulset-controller",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ordinal: usize, revision: &str, ready: bool) -> Member {
        Member {
            ordinal,
            revision: revision.into(),
            ready,
            terminating: false,
        }
    }

    #[test]
    fn terminating_pods_hold_their_ordinal_until_gone() {
        let mut terminating = m(1, "r", true);
        terminating.terminating = true;
        assert_eq!(
            next_step(&[m(0, "r", true), terminating.clone()], 2, "r", true, 0),
            Step::Wait
        );
        let mut condemned = m(2, "r", true);
        condemned.terminating = true;
        assert_eq!(
            next_step(&[m(0, "r", true), m(1, "r", true), condemned], 1, "r", true, 0),
            Step::Wait,
            "one condemned pod at a time"
        );
    }

    #[test]
    fn current_revision_rules() {
        use CurrentRevisionRule::*;
        // 3 replicas, all 3 updated, 2 ready.
        assert!(promotes(AllUpdated, false, 3, 3, 3, 2));
        assert!(!promotes(RollingUpdateOnly, true, 3, 3, 3, 2), "waits for Ready");
        assert!(promotes(RollingUpdateOnly, true, 3, 3, 3, 3));
        assert!(
            !promotes(RollingUpdateOnly, false, 3, 3, 3, 3),
            "never for OnDelete"
        );
        assert!(promotes(AnyStrategyWhenReady, false, 3, 3, 3, 3));
        assert!(!promotes(AnyStrategyWhenReady, false, 3, 3, 2, 3));
    }

    #[test]
    fn creates_in_order_waiting_for_ready() {
        assert_eq!(next_step(&[], 3, "r2", true, 0), Step::Create(0));
        assert_eq!(next_step(&[m(0, "r2", false)], 3, "r2", true, 0), Step::Wait);
        assert_eq!(next_step(&[m(0, "r2", true)], 3, "r2", true, 0), Step::Create(1));
    }

    #[test]
    fn scales_down_from_the_highest_ordinal() {
        let members = [m(0, "r", true), m(1, "r", true), m(2, "r", true)];
        assert_eq!(next_step(&members, 1, "r", true, 0), Step::Delete(2));
    }

    #[test]
    fn rolling_update_replaces_highest_first_and_honours_partition() {
        let members = [m(0, "r1", true), m(1, "r1", true), m(2, "r2", true)];
        assert_eq!(next_step(&members, 3, "r2", true, 0), Step::Delete(1));
        assert_eq!(next_step(&members, 3, "r2", true, 2), Step::Wait);
        assert_eq!(
            next_step(&members, 3, "r2", false, 0),
            Step::Wait,
            "OnDelete waits for a delete"
        );
        let not_ready = [m(0, "r1", true), m(1, "r1", true), m(2, "r2", false)];
        assert_eq!(next_step(&not_ready, 3, "r2", true, 0), Step::Wait);
    }
}
