//! The HorizontalPodAutoscaler controller (autoscaling/v2): every sync period, per HPA, reads the
//! target's pods and their PodMetrics, computes the desired replicas per Resource metric
//! (Utilization or AverageValue), stabilizes, clamps to min..max, scales the target and writes
//! status with AbleToScale / ScalingActive / ScalingLimited.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{generation, is_terminating, key, namespace, set_condition, uid, update_main};
use super::events::{Severity, record};
use super::hpa_math::{Recommendation, scale_up_limit, stabilize};
use super::hpa_metrics::from_metrics;
use crate::scenario::Scenario;
use crate::store::{ObjectKey, Store, UpdatePart, now_rfc3339};

#[derive(Default)]
struct HpaState {
    last_sync: Option<Instant>,
    observed_generation: i64,
    history: Vec<Recommendation>,
}

pub struct HpaController {
    scenario: Arc<Scenario>,
    states: HashMap<String, HpaState>,
}

impl HpaController {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        HpaController {
            scenario,
            states: HashMap::new(),
        }
    }

    pub fn pass(&mut self, store: &Store) {
        let hpas = store.scan("horizontalpodautoscalers", None, |h| {
            (!is_terminating(h)).then(|| h.clone())
        });
        let period = self.scenario.hpa_sync_period();
        // 1.36 (kubernetes#138294) reconciles a changed spec at once. Before, every HPA goes
        // through the work queue with a fixed resync delay (pkg/controller/podautoscaler/
        // horizontal.go, enqueueHPA: `queue.AddRateLimited`, "Requests spend resync interval in
        // queue"), a new one included, and the HPA has no generation to observe.
        let immediate = self.scenario.behaviour().hpa_generation;
        let now = Instant::now();
        for hpa in &hpas {
            let state = self.states.entry(uid(hpa).to_owned()).or_insert_with(|| {
                // An HPA whose status already reflects its spec (one that was running before
                // the controller started) waits for its first period, as after a leader change.
                let observed = hpa["status"]["observedGeneration"].as_i64();
                if !immediate || observed == Some(generation(hpa)) {
                    HpaState {
                        last_sync: Some(now),
                        observed_generation: generation(hpa),
                        ..HpaState::default()
                    }
                } else {
                    HpaState::default()
                }
            });
            let due = state.last_sync.is_none_or(|at| now.duration_since(at) >= period)
                || (immediate && state.observed_generation != generation(hpa));
            if due {
                state.last_sync = Some(now);
                state.observed_generation = generation(hpa);
                sync(store, hpa, state, now, immediate);
            }
        }
        self.states.retain(|u, _| hpas.iter().any(|h| uid(h) == u));
    }
}

fn sync(store: &Store, hpa: &Value, state: &mut HpaState, now: Instant, observe_generation: bool) {
    let ns = namespace(hpa);
    let target_ref = &hpa["spec"]["scaleTargetRef"];
    let kind = target_ref["kind"].as_str().unwrap_or_default();
    let target_name = target_ref["name"].as_str().unwrap_or_default();
    let resource = match kind {
        "StatefulSet" => "statefulsets",
        _ => "deployments",
    };
    let mut status = hpa["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    if observe_generation {
        status["observedGeneration"] = json!(generation(hpa));
    } else if let Some(map) = status.as_object_mut() {
        map.remove("observedGeneration");
    }
    let Some(target) = store.get(&ObjectKey::new(resource, ns, target_name)) else {
        let message = format!(
            "the HPA controller was unable to get the target's current scale: {resource}.apps \"{target_name}\" not found"
        );
        set_condition(&mut status, "AbleToScale", "False", "FailedGetScale", &message);
        set_condition(&mut status, "ScalingActive", "False", "FailedGetScale", &message);
        write_status(store, hpa, status);
        return;
    };
    let current = target["spec"]["replicas"].as_i64().unwrap_or(1);
    let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
    let max = hpa["spec"]["maxReplicas"].as_i64().unwrap_or(min).max(min);
    let (mut desired, reason) = if current == 0 && min != 0 {
        let message = "scaling is disabled since the replica count of the target is zero";
        set_condition(&mut status, "ScalingActive", "False", "ScalingDisabled", message);
        (0, String::new())
    } else if current > max {
        let message = "the desired replica count is more than the maximum replica count";
        set_condition(&mut status, "ScalingLimited", "True", "TooManyReplicas", message);
        (
            max,
            "Current number of replicas above Spec.MaxReplicas".to_owned(),
        )
    } else if current < min {
        let message = "the desired replica count is less than the minimum replica count";
        set_condition(&mut status, "ScalingLimited", "True", "TooFewReplicas", message);
        (
            min,
            "Current number of replicas below Spec.MinReplicas".to_owned(),
        )
    } else {
        let (desired, reason) = from_metrics(store, hpa, &target, current, &mut status);
        state.history.push(Recommendation {
            at: now,
            replicas: desired,
        });
        let behavior = &hpa["spec"]["behavior"];
        let window = |dir: &str, default: u64| {
            Duration::from_secs(
                behavior[dir]["stabilizationWindowSeconds"]
                    .as_u64()
                    .unwrap_or(default),
            )
        };
        let (up_window, down_window) = (window("scaleUp", 0), window("scaleDown", 300));
        let keep = up_window.max(down_window);
        state.history.retain(|r| now.duration_since(r.at) <= keep);
        let stabilized = stabilize(current, &state.history, now, up_window, down_window);
        // selectPolicy: Disabled turns off scaling in that direction.
        let disabled = |dir: &str| behavior[dir]["selectPolicy"] == "Disabled";
        let mut limited = stabilized.min(scale_up_limit(current));
        if (limited > current && disabled("scaleUp")) || (limited < current && disabled("scaleDown")) {
            limited = current;
        }
        let (clamped, limit) = if limited > max {
            (
                max,
                Some((
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                )),
            )
        } else if limited < min {
            (
                min,
                Some((
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )),
            )
        } else {
            (limited, None)
        };
        match limit {
            Some((why, message)) => set_condition(&mut status, "ScalingLimited", "True", why, message),
            None => set_condition(
                &mut status,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            ),
        };
        (clamped, reason)
    };
    if desired != current && !(desired == 0 && current == 0) && !reason.is_empty() {
        let scaled = update_main(store, &key(resource, &target), |t| {
            t["spec"]["replicas"] = json!(desired);
            true
        });
        if scaled.is_ok() {
            let message = format!("the HPA controller was able to update the target scale to {desired}");
            set_condition(&mut status, "AbleToScale", "True", "SucceededRescale", &message);
            status["lastScaleTime"] = json!(now_rfc3339());
            let event = format!("New size: {desired}; reason: {reason}");
            record(
                store,
                hpa,
                Severity::Normal,
                "SuccessfulRescale",
                &event,
                "horizontal-pod-autoscaler",
            );
        } else {
            desired = current;
        }
    } else {
        desired = if reason.is_empty() { current } else { desired };
        set_condition(
            &mut status,
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size",
        );
    }
    status["currentReplicas"] = json!(target["status"]["replicas"].as_i64().unwrap_or(current));
    status["desiredReplicas"] = json!(desired);
    order_conditions(&mut status);
    write_status(store, hpa, status);
}

/// AbleToScale, ScalingActive, ScalingLimited, in the order kube writes them.
fn order_conditions(status: &mut Value) {
    if let Some(conditions) = status["conditions"].as_array_mut() {
        let rank = |c: &Value| match c["type"].as_str() {
            Some("AbleToScale") => 0,
            Some("ScalingActive") => 1,
            _ => 2,
        };
        conditions.sort_by_key(rank);
    }
}

fn write_status(store: &Store, hpa: &Value, status: Value) {
    if hpa["status"] == status {
        return;
    }
    let _ = store.modify(&key("horizontalpodautoscalers", hpa), UpdatePart::Status, |h| {
        h["status"] = status;
        true
    });
}
