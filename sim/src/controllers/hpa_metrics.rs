//! The metric side of the HorizontalPodAutoscaler: the target's pods, their requests and
//! PodMetrics, turned into a desired replica count per Resource metric (Utilization or
//! AverageValue), `currentMetrics`, and the ScalingActive condition.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::common::{is_terminating, name, namespace, pod_ready, selector_matches, set_condition};
use super::hpa_math::replicas_for;
use super::quantity::{format_bytes, format_cpu, milli_of};
use crate::store::Store;

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

/// Desired replicas over every Resource metric (the highest wins) and why; sets ScalingActive
/// and `currentMetrics`. On a metric error, scaling only goes up (as kube does).
pub fn from_metrics(
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
    let mut error: Option<(&str, String)> = None;
    for metric in hpa["spec"]["metrics"].as_array().into_iter().flatten() {
        // No custom or external metrics API is served here, so the controller's metrics client
        // fails for Pods, Object and External metrics, and computeReplicasForMetrics
        // (pkg/controller/podautoscaler/horizontal.go) counts each as an invalid metric: with
        // any invalid metric the count may go up, never down. (ContainerResource metrics are not
        // modelled and stay ignored.)
        let failed = match metric["type"].as_str() {
            Some("Pods") => Some(("FailedGetPodsMetric", "pods")),
            Some("Object") => Some(("FailedGetObjectMetric", "object")),
            Some("External") => Some(("FailedGetExternalMetric", "external")),
            _ => None,
        };
        if let Some((reason, kind)) = failed {
            let name = metric[kind]["metric"]["name"].as_str().unwrap_or_default();
            error.get_or_insert((
                reason,
                format!(
                    "the HPA was unable to compute the replica count: unable to get {kind} metric {name}: \
                     no custom metrics API (custom.metrics.k8s.io) is served"
                ),
            ));
            continue;
        }
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
                error.get_or_insert(("FailedGetResourceMetric", message));
            }
        }
    }
    status["currentMetrics"] = json!(current_metrics);
    let Some(best) = best else {
        let (reason, message) = error.unwrap_or_else(|| {
            (
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: no metrics".to_owned(),
            )
        });
        set_condition(status, "ScalingActive", "False", reason, &message);
        return (current, String::new());
    };
    match &error {
        Some((reason, message)) => set_condition(status, "ScalingActive", "False", reason, message),
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
