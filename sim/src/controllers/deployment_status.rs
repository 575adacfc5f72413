//! The status of a Deployment: counts, and the Available / Progressing / ReplicaFailure
//! conditions with kube's reasons, messages, timestamps and progress deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{condition, generation, key, uid};
use crate::store::{Store, UpdatePart, now_rfc3339};

/// What the status is computed from: the deployment's ReplicaSets and their live pods.
pub struct Snapshot<'a> {
    pub new_rs_name: &'a str,
    pub new_pods: i64,
    pub new_ready: i64,
    pub total: i64,
    pub ready: i64,
    pub spec_total: i64,
    pub replicas: i64,
    pub unavailable: i64,
    /// A ReplicaFailure condition of one of the ReplicaSets, copied to the Deployment.
    pub failure: Option<Value>,
    /// Terminating pods of all its ReplicaSets, when `status.terminatingReplicas` is reported.
    pub terminating: Option<i64>,
    /// Upstream's rule for a completed rollout: Progressing stays NewReplicaSetAvailable while
    /// no old pods are left (a pure scale), so it never times out.
    pub keep_complete_on_scale: bool,
}

/// Writes a Deployment's status from a snapshot of its ReplicaSets (kube's `calculateStatus`
/// and `syncRolloutStatus`). `last_progress` remembers, per deployment uid, when it last made
/// progress, for progressDeadlineSeconds.
pub fn write_status(
    store: &Store,
    deployment: &Value,
    snap: &Snapshot,
    progress_reason: Option<(&str, String)>,
    last_progress: &mut HashMap<String, Instant>,
) {
    let (total, ready, spec_total, replicas, unavailable) = (
        snap.total,
        snap.ready,
        snap.spec_total,
        snap.replicas,
        snap.unavailable,
    );
    let old = &deployment["status"];
    let mut status = json!({
        "observedGeneration": generation(deployment),
        "replicas": total,
        "updatedReplicas": snap.new_pods,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": (spec_total - ready).max(0),
        "conditions": old["conditions"].clone(),
    });
    if let Some(terminating) = snap.terminating {
        status["terminatingReplicas"] = json!(terminating);
    }
    for (field, value) in [
        ("replicas", total),
        ("updatedReplicas", snap.new_pods),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
    ] {
        if value == 0 && field != "replicas" {
            // The API omits zero counts.
            status.as_object_mut().map(|m| m.remove(field));
        }
    }
    if ready >= replicas - unavailable {
        put_condition(
            &mut status,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            false,
        );
    } else {
        put_condition(
            &mut status,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            false,
        );
    }
    let now = Instant::now();
    let deployment_uid = uid(deployment).to_owned();
    let rs_name = snap.new_rs_name.to_owned();
    let complete =
        snap.new_pods == replicas && total == replicas && ready == replicas && snap.new_ready == replicas;
    let progressed = |field: &str, value: i64, up: bool| {
        let before = old[field].as_i64().unwrap_or(0);
        if up { value > before } else { value < before }
    };
    let progressing = progressed("updatedReplicas", snap.new_pods, true)
        || progressed("replicas", total, false)
        || progressed("readyReplicas", ready, true)
        || progressed("availableReplicas", ready, true);
    // A new spec, or a rollout or scale under way (as opposed to a pod of a finished
    // rollout failing, after which kube keeps NewReplicaSetAvailable).
    let in_flight = old["observedGeneration"].as_i64() != Some(generation(deployment))
        || snap.new_pods != replicas
        || total != replicas;
    let current = condition(deployment, "Progressing").map(|c| c["reason"].as_str().unwrap_or("").to_owned());
    // Upstream, a scale (template unchanged) goes through `sync` -> `syncDeploymentStatus`,
    // which copies the conditions as they are, and the rollout path's `syncRolloutStatus`
    // (pkg/controller/deployment/progress.go) estimates no progress while
    // `isCompleteDeployment` (replicas == updatedReplicas and Progressing's reason is
    // NewReplicaSetAvailable); `util.DeploymentTimedOut` also answers false for that reason. So a
    // stuck scale-up keeps Progressing=True/NewReplicaSetAvailable and never hits the deadline.
    let complete_deployment = snap.keep_complete_on_scale
        && current.as_deref() == Some("NewReplicaSetAvailable")
        && snap.total == snap.new_pods;
    if let Some((reason, message)) = progress_reason {
        put_condition(&mut status, "Progressing", "True", reason, &message, true);
        last_progress.insert(deployment_uid.clone(), now);
    } else if complete_deployment {
        last_progress.insert(deployment_uid.clone(), now);
    } else if complete {
        let message = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
        put_condition(
            &mut status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &message,
            false,
        );
    } else if progressing
        || current.is_none()
        || (current.as_deref() == Some("NewReplicaSetAvailable") && in_flight)
    {
        // kube keeps NewReplicaSetAvailable until it sees progress; we leave it as soon as
        // the rollout is no longer complete, so that "completed" means exactly that.
        let message = format!("ReplicaSet \"{rs_name}\" is progressing.");
        put_condition(
            &mut status,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &message,
            true,
        );
        last_progress.insert(deployment_uid.clone(), now);
    } else if current.as_deref() != Some("ProgressDeadlineExceeded") {
        let deadline = Duration::from_secs(
            deployment["spec"]["progressDeadlineSeconds"]
                .as_u64()
                .unwrap_or(600),
        );
        let since = *last_progress.entry(deployment_uid.clone()).or_insert(now);
        if now.duration_since(since) > deadline {
            let message = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
            put_condition(
                &mut status,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &message,
                false,
            );
        }
    }
    let failure = snap.failure.clone();
    match failure {
        Some(c) => {
            put_condition(
                &mut status,
                "ReplicaFailure",
                "True",
                c["reason"].as_str().unwrap_or("FailedCreate"),
                c["message"].as_str().unwrap_or_default(),
                false,
            );
        }
        None => {
            if let Some(conditions) = status["conditions"].as_array_mut() {
                conditions.retain(|c| c["type"] != "ReplicaFailure");
            }
        }
    }
    if *old != status {
        let _ = store.modify(&key("deployments", deployment), UpdatePart::Status, |d| {
            d["status"] = status;
            true
        });
    }
}

/// Sets a Deployment condition the way the deployment controller does: lastUpdateTime moves on
/// every change (and on `touch`, which marks progress), lastTransitionTime only when the status flips.
fn put_condition(
    status: &mut Value,
    type_: &str,
    cond_status: &str,
    reason: &str,
    message: &str,
    touch: bool,
) -> bool {
    let now = now_rfc3339();
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"].as_array_mut().expect("made an array above");
    let existing = conditions.iter().position(|c| c["type"] == type_);
    let mut transition = now.clone();
    if let Some(i) = existing {
        let c = &conditions[i];
        if !touch && c["status"] == cond_status && c["reason"] == reason && c["message"] == message {
            return false;
        }
        if c["status"] == cond_status {
            transition = c["lastTransitionTime"].as_str().unwrap_or(&now).to_owned();
        }
    }
    let new = json!({
        "type": type_, "status": cond_status, "lastUpdateTime": now,
        "lastTransitionTime": transition, "reason": reason, "message": message,
    });
    match existing {
        Some(i) => conditions[i] = new,
        None => conditions.push(new),
    }
    true
}
