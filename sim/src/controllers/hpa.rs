//! The HorizontalPodAutoscaler controller (autoscaling/v2): every sync period, per HPA, reads the
//! target's pods and their PodMetrics, computes the desired replicas per Resource metric
//! (Utilization or AverageValue), stabilizes, clamps to min..max, scales the target and writes
//! status with AbleToScale / ScalingActive / ScalingLimited.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{
    generation, is_terminating, key, name, namespace, pod_ready, selector_matches, set_condition, uid,
};
use super::events::{Severity, record};
use super::hpa_math::{Recommendation, replicas_for, scale_up_limit, stabilize};
use super::quantity::{format_bytes, format_cpu, milli_of};
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

/// A pod of the target as the metric computation sees it.
struct TargetPod {
    name: String,
    ready: bool,
    /// Per container: (name, cpu request, memory request), in milli-units.
    requests: Vec<(String, Option<i128>, Option<i128>)>,
}

/// Outcome of one metric.
struct MetricResult {
    replicas: i64,
    status: Value,
    description: String,
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
        let now = Instant::now();
        for hpa in &hpas {
            let state = self.states.entry(uid(hpa).to_owned()).or_default();
            let due = state.last_sync.is_none_or(|at| now.duration_since(at) >= period)
                || state.observed_generation != generation(hpa);
            if due {
                state.last_sync = Some(now);
                state.observed_generation = generation(hpa);
                sync(store, hpa, state, now);
            }
        }
        self.states.retain(|u, _| hpas.iter().any(|h| uid(h) == u));
    }
}

fn sync(store: &Store, hpa: &Value, state: &mut HpaState, now: Instant) {
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
    status["observedGeneration"] = json!(generation(hpa));
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
        let limited = stabilized.min(scale_up_limit(current));
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
        let scaled = store.modify(&key(resource, &target), UpdatePart::Main, |t| {
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

/// Desired replicas over every Resource metric (the highest wins) and why; sets ScalingActive
/// and `currentMetrics`. On a metric error, scaling only goes up (as kube does).
fn from_metrics(
    store: &Store,
    hpa: &Value,
    target: &Value,
    current: i64,
    status: &mut Value,
) -> (i64, String) {
    let ns = namespace(hpa);
    let selector = &target["spec"]["selector"];
    let pods = store.scan("pods", Some(ns), |p| {
        if is_terminating(p) || !selector_matches(selector, &p["metadata"]["labels"]) {
            return None;
        }
        let requests = p["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let r = &c["resources"];
                let pick = |res: &str| milli_of(&r["requests"][res]).or_else(|| milli_of(&r["limits"][res]));
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    pick("cpu"),
                    pick("memory"),
                )
            })
            .collect();
        Some(TargetPod {
            name: name(p).to_owned(),
            ready: pod_ready(p),
            requests,
        })
    });
    let usage: HashMap<String, (i128, i128)> = store
        .scan("podmetrics", Some(ns), |m| {
            let (mut cpu, mut memory) = (0, 0);
            for c in m["containers"].as_array().into_iter().flatten() {
                cpu += milli_of(&c["usage"]["cpu"]).unwrap_or(0);
                memory += milli_of(&c["usage"]["memory"]).unwrap_or(0);
            }
            Some((name(m).to_owned(), (cpu, memory)))
        })
        .into_iter()
        .collect();
    let mut best: Option<MetricResult> = None;
    let mut current_metrics = Vec::new();
    let mut error: Option<String> = None;
    for metric in hpa["spec"]["metrics"].as_array().into_iter().flatten() {
        if metric["type"] != "Resource" {
            continue;
        }
        match resource_metric(&metric["resource"], &pods, &usage, current) {
            Ok(result) => {
                current_metrics.push(result.status.clone());
                if best.as_ref().is_none_or(|b| result.replicas > b.replicas) {
                    best = Some(result);
                }
            }
            Err(message) => {
                error.get_or_insert(message);
            }
        }
    }
    status["currentMetrics"] = json!(current_metrics);
    let Some(best) = best else {
        let message =
            error.unwrap_or_else(|| "the HPA was unable to compute the replica count: no metrics".to_owned());
        set_condition(
            status,
            "ScalingActive",
            "False",
            "FailedGetResourceMetric",
            &message,
        );
        return (current, String::new());
    };
    match &error {
        Some(message) => set_condition(
            status,
            "ScalingActive",
            "False",
            "FailedGetResourceMetric",
            message,
        ),
        None => set_condition(
            status,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            &format!(
                "the HPA was able to successfully calculate a replica count from {}",
                best.description
            ),
        ),
    };
    if error.is_some() && best.replicas < current {
        return (current, String::new());
    }
    let reason = if best.replicas > current {
        format!("{} above target", best.description)
    } else {
        "All metrics below target".to_owned()
    };
    (best.replicas, reason)
}

fn resource_metric(
    spec: &Value,
    pods: &[TargetPod],
    usage: &HashMap<String, (i128, i128)>,
    current: i64,
) -> Result<MetricResult, String> {
    let resource = spec["name"].as_str().unwrap_or("cpu");
    let is_cpu = resource == "cpu";
    let fail = |why: String| {
        format!(
            "the HPA was unable to compute the replica count: failed to get {resource} utilization: {why}"
        )
    };
    let target = &spec["target"];
    let utilization_target = target["averageUtilization"].as_i64();
    let value_target = milli_of(&target["averageValue"]);
    let mut ready = Vec::new();
    let mut unready = Vec::new();
    for pod in pods {
        let mut request: i128 = 0;
        for (container, cpu, memory) in &pod.requests {
            match if is_cpu { cpu } else { memory } {
                Some(r) => request += r,
                None if utilization_target.is_some() => {
                    return Err(fail(format!(
                        "missing request for {resource} in container {container} of Pod {}",
                        pod.name
                    )));
                }
                None => {}
            }
        }
        let reference = match (utilization_target, value_target) {
            (Some(_), _) => request,
            (None, Some(v)) => v,
            (None, None) => return Err(fail("no target set".to_owned())),
        };
        match usage.get(&pod.name) {
            Some((cpu, memory)) if pod.ready => ready.push((if is_cpu { *cpu } else { *memory }, reference)),
            _ => unready.push(reference),
        }
    }
    if ready.is_empty() {
        return Err(fail(format!(
            "unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        )));
    }
    let target_percent = utilization_target.unwrap_or(100);
    let (replicas, utilization) = replicas_for(current, &ready, &unready, target_percent);
    let total: i128 = ready.iter().map(|s| s.0).sum();
    let average = total / ready.len() as i128;
    let average_text = if is_cpu {
        format_cpu(i64::try_from(average).unwrap_or(0))
    } else {
        format_bytes(i64::try_from(average / 1000).unwrap_or(0))
    };
    let mut current_status = json!({"averageValue": average_text});
    let description = if utilization_target.is_some() {
        current_status["averageUtilization"] = json!(utilization);
        format!("{resource} resource utilization (percentage of request)")
    } else {
        format!("{resource} resource")
    };
    Ok(MetricResult {
        replicas,
        status: json!({"type": "Resource", "resource": {"name": resource, "current": current_status}}),
        description,
    })
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
