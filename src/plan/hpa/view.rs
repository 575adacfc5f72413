//! Read-only views of an HPA: the SPEC's JSON summary (`hpa` object) and the text of the
//! `--watch` panel and its one-line change log for non-terminal output.

use crate::quantity::canonical_of as canonical;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus,
};
use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

use super::describe_target;

/// Conditions the panel shows, in this order.
const CONDITIONS: [&str; 3] = ["AbleToScale", "ScalingActive", "ScalingLimited"];
/// Scaling events shown at the bottom of the panel.
const RECENT_EVENTS: usize = 5;

/// One metric of the HPA: `(type, name)` identifies it in both spec and status.
struct MetricView {
    type_: String,
    name: String,
    target: String,
    current: Option<String>,
}

fn spec_identity(m: &MetricSpec) -> (String, String) {
    let name = match m.type_.as_str() {
        "Resource" => m.resource.as_ref().map(|r| r.name.clone()),
        "ContainerResource" => m
            .container_resource
            .as_ref()
            .map(|r| format!("{}/{}", r.container, r.name)),
        "Pods" => m.pods.as_ref().map(|p| p.metric.name.clone()),
        "Object" => m.object.as_ref().map(|o| o.metric.name.clone()),
        "External" => m.external.as_ref().map(|e| e.metric.name.clone()),
        _ => None,
    };
    (m.type_.clone(), name.unwrap_or_default())
}

fn status_identity(m: &MetricStatus) -> (String, String) {
    let name = match m.type_.as_str() {
        "Resource" => m.resource.as_ref().map(|r| r.name.clone()),
        "ContainerResource" => m
            .container_resource
            .as_ref()
            .map(|r| format!("{}/{}", r.container, r.name)),
        "Pods" => m.pods.as_ref().map(|p| p.metric.name.clone()),
        "Object" => m.object.as_ref().map(|o| o.metric.name.clone()),
        "External" => m.external.as_ref().map(|e| e.metric.name.clone()),
        _ => None,
    };
    (m.type_.clone(), name.unwrap_or_default())
}

fn spec_target_of(m: &MetricSpec) -> Option<&MetricTarget> {
    match m.type_.as_str() {
        "Resource" => m.resource.as_ref().map(|r| &r.target),
        "ContainerResource" => m.container_resource.as_ref().map(|r| &r.target),
        "Pods" => m.pods.as_ref().map(|p| &p.target),
        "Object" => m.object.as_ref().map(|o| &o.target),
        "External" => m.external.as_ref().map(|e| &e.target),
        _ => None,
    }
}

fn spec_target(m: &MetricSpec) -> String {
    spec_target_of(m).map(describe_target).unwrap_or_default()
}

fn status_current(m: &MetricStatus) -> Option<&MetricValueStatus> {
    match m.type_.as_str() {
        "Resource" => m.resource.as_ref().map(|r| &r.current),
        "ContainerResource" => m.container_resource.as_ref().map(|r| &r.current),
        "Pods" => m.pods.as_ref().map(|p| &p.current),
        "Object" => m.object.as_ref().map(|o| &o.current),
        "External" => m.external.as_ref().map(|e| &e.current),
        _ => None,
    }
}

fn describe_value(v: &MetricValueStatus) -> Option<String> {
    if let Some(pct) = v.average_utilization {
        Some(format!("{pct}%"))
    } else if let Some(q) = &v.average_value {
        Some(q.0.clone())
    } else {
        v.value.as_ref().map(|q| q.0.clone())
    }
}

fn metric_views(hpa: &HorizontalPodAutoscaler) -> Vec<MetricView> {
    let statuses: &[MetricStatus] = hpa
        .status
        .as_ref()
        .and_then(|s| s.current_metrics.as_deref())
        .unwrap_or_default();
    let specs: &[MetricSpec] = hpa
        .spec
        .as_ref()
        .and_then(|s| s.metrics.as_deref())
        .unwrap_or_default();
    specs
        .iter()
        .map(|m| {
            let identity = spec_identity(m);
            let current = statuses
                .iter()
                .find(|s| status_identity(s) == identity)
                .and_then(status_current)
                .and_then(describe_value);
            MetricView {
                target: spec_target(m),
                type_: identity.0,
                name: identity.1,
                current,
            }
        })
        .collect()
}

/// One metric in JSON: target and current value side by side, utilizations as integer
/// percentages (`...Percent`), average values and values as canonical quantity strings, `null`
/// where the metric has no such value (or no current value is reported yet).
fn metric_json(spec: &MetricSpec, statuses: &[MetricStatus]) -> Value {
    let identity = spec_identity(spec);
    let target = spec_target_of(spec);
    let current = statuses
        .iter()
        .find(|s| status_identity(s) == identity)
        .and_then(status_current);
    json!({
        "type": identity.0,
        "name": identity.1,
        "targetType": target.map(|t| t.type_.clone()),
        "targetUtilizationPercent": target.and_then(|t| t.average_utilization),
        "targetAverageValue": target.and_then(|t| t.average_value.as_ref()).map(canonical),
        "targetValue": target.and_then(|t| t.value.as_ref()).map(canonical),
        "currentUtilizationPercent": current.and_then(|c| c.average_utilization),
        "currentAverageValue": current.and_then(|c| c.average_value.as_ref()).map(canonical),
        "currentValue": current.and_then(|c| c.value.as_ref()).map(canonical),
    })
}

/// The one JSON form of an HPA, in every command's document (`hpa`, `status`, ...):
/// `{name, min, max, currentReplicas, desiredReplicas, metrics: [...], conditions: [...]}`;
/// unknown values are `null`. See `docs/schema/` (`$defs/hpa`).
pub fn hpa_summary(hpa: &HorizontalPodAutoscaler) -> Value {
    let spec = hpa.spec.as_ref();
    let status = hpa.status.as_ref();
    let statuses: &[MetricStatus] = status
        .and_then(|s| s.current_metrics.as_deref())
        .unwrap_or_default();
    let metrics: Vec<Value> = spec
        .and_then(|s| s.metrics.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|m| metric_json(m, statuses))
        .collect();
    let conditions: Vec<Value> = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message}))
        .collect();
    json!({
        "name": hpa.metadata.name,
        "min": spec.map(|s| s.min_replicas.unwrap_or(1)),
        "max": spec.map(|s| s.max_replicas),
        "currentReplicas": status.and_then(|s| s.current_replicas),
        "desiredReplicas": status.map(|s| s.desired_replicas),
        "metrics": metrics,
        "conditions": conditions,
    })
}

fn replicas_line(hpa: &HorizontalPodAutoscaler) -> String {
    let status = hpa.status.as_ref();
    let current = status
        .and_then(|s| s.current_replicas)
        .map_or("?".to_string(), |c| c.to_string());
    let desired = status.map_or("?".to_string(), |s| s.desired_replicas.to_string());
    let (min, max) = hpa.spec.as_ref().map_or(("?".to_string(), "?".to_string()), |s| {
        (
            s.min_replicas.unwrap_or(1).to_string(),
            s.max_replicas.to_string(),
        )
    });
    format!("replicas: current {current}, desired {desired} (min {min}, max {max})")
}

fn metric_line(m: &MetricView) -> String {
    let label = if m.name == "cpu" {
        "CPU".to_string()
    } else {
        m.name.clone()
    };
    let current = m.current.as_deref().unwrap_or("<unknown>");
    let kind = if m.type_ == "Resource" {
        String::new()
    } else {
        format!(" ({})", m.type_)
    };
    format!("{label}{kind}: {current} (target {})", m.target)
}

fn condition_lines(hpa: &HorizontalPodAutoscaler) -> Vec<String> {
    let conditions = hpa
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    CONDITIONS
        .iter()
        .filter_map(|wanted| conditions.iter().find(|c| c.type_ == *wanted))
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("");
            let message = c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            format!("{:<14} {:<5} {reason}{message}", c.type_, c.status)
        })
        .collect()
}

fn event_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
}

fn event_line(e: &Event) -> String {
    let time = event_time(e).map_or("--:--:--".to_string(), |t| t.strftime("%H:%M:%S").to_string());
    let warning = if e.type_.as_deref() == Some("Warning") {
        " (Warning)"
    } else {
        ""
    };
    format!(
        "  {time} {}{warning}: {}",
        e.reason.as_deref().unwrap_or("?"),
        e.message.as_deref().unwrap_or("").trim()
    )
}

/// The `--watch` panel: replicas, utilization per metric against its target, the
/// AbleToScale / ScalingActive / ScalingLimited conditions, and the most recent events.
pub fn watch_panel_lines(hpa: &HorizontalPodAutoscaler, recent_events: &[Event]) -> Vec<String> {
    let name = hpa.metadata.name.as_deref().unwrap_or("?");
    let target = hpa
        .spec
        .as_ref()
        .map(|s| {
            format!(
                " → {}/{}",
                s.scale_target_ref.kind.to_lowercase(),
                s.scale_target_ref.name
            )
        })
        .unwrap_or_default();
    let mut lines = vec![format!("HPA {name}{target}"), replicas_line(hpa)];
    lines.extend(metric_views(hpa).iter().map(metric_line));
    lines.extend(condition_lines(hpa));
    let mut events: Vec<&Event> = recent_events.iter().collect();
    events.sort_by_key(|e| event_time(e));
    if !events.is_empty() {
        lines.push("recent events:".to_string());
        let skip = events.len().saturating_sub(RECENT_EVENTS);
        lines.extend(events.into_iter().skip(skip).map(event_line));
    }
    lines
}

/// One plain line saying what changed between two observations of the HPA (replicas, metric
/// values, condition status/reason), or `None` when nothing the panel shows changed.
pub fn watch_change_line(prev: &HorizontalPodAutoscaler, next: &HorizontalPodAutoscaler) -> Option<String> {
    let mut parts = Vec::new();
    let replicas = |h: &HorizontalPodAutoscaler| {
        h.status
            .as_ref()
            .map(|s| (s.current_replicas, s.desired_replicas))
    };
    if replicas(prev) != replicas(next) {
        parts.push(replicas_line(next));
    }
    let before = metric_views(prev);
    for m in metric_views(next) {
        let old = before.iter().find(|b| b.type_ == m.type_ && b.name == m.name);
        if old.map(|o| (&o.current, &o.target)) != Some((&m.current, &m.target)) {
            let was = old
                .and_then(|o| o.current.clone())
                .unwrap_or_else(|| "<unknown>".into());
            parts.push(format!("{} (was {was})", metric_line(&m)));
        }
    }
    let conditions = |h: &HorizontalPodAutoscaler| {
        h.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
    };
    let old_conditions = conditions(prev);
    for c in conditions(next)
        .iter()
        .filter(|c| CONDITIONS.contains(&c.type_.as_str()))
    {
        let old = old_conditions.iter().find(|o| o.type_ == c.type_);
        if old.map(|o| (&o.status, &o.reason)) != Some((&c.status, &c.reason)) {
            parts.push(format!(
                "{} {} ({})",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("")
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(v: Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(v).unwrap()
    }

    fn sample() -> HorizontalPodAutoscaler {
        hpa(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"},
                "minReplicas": 3, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "queue_depth"}, "target": {"type": "AverageValue", "averageValue": "30"}}}
                ]
            },
            "status": {
                "currentReplicas": 3, "desiredReplicas": 4,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 75, "averageValue": "300m"}}}
                ],
                "conditions": [
                    {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"},
                    {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "the HPA controller was able to update the target scale to 4"}
                ]
            }
        }))
    }

    #[test]
    fn summary_has_exactly_the_spec_fields() {
        let s = hpa_summary(&sample());
        assert_eq!(
            s,
            json!({
                "name": "orchestrator", "min": 3, "max": 10, "currentReplicas": 3, "desiredReplicas": 4,
                "metrics": [
                    {"type": "Resource", "name": "cpu", "targetType": "Utilization",
                     "targetUtilizationPercent": 60, "targetAverageValue": null, "targetValue": null,
                     "currentUtilizationPercent": 75, "currentAverageValue": "300m", "currentValue": null},
                    {"type": "Pods", "name": "queue_depth", "targetType": "AverageValue",
                     "targetUtilizationPercent": null, "targetAverageValue": "30", "targetValue": null,
                     "currentUtilizationPercent": null, "currentAverageValue": null, "currentValue": null}
                ],
                "conditions": [
                    {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"},
                    {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "the HPA controller was able to update the target scale to 4"}
                ]
            })
        );
    }

    #[test]
    fn summary_without_status_uses_nulls() {
        let mut h = sample();
        h.status = None;
        let s = hpa_summary(&h);
        assert_eq!(s["currentReplicas"], Value::Null);
        assert_eq!(s["desiredReplicas"], Value::Null);
        assert_eq!(s["metrics"][0]["currentUtilizationPercent"], Value::Null);
    }

    #[test]
    fn panel_shows_replicas_metrics_conditions_and_events() {
        let events: Vec<Event> = vec![
            serde_json::from_value(json!({
                "metadata": {"name": "e2"}, "involvedObject": {},
                "reason": "SuccessfulRescale", "type": "Normal",
                "message": "New size: 4; reason: cpu resource utilization (percentage of request) above target",
                "lastTimestamp": "2026-11-28T08:01:02Z"
            }))
            .unwrap(),
            serde_json::from_value(json!({
                "metadata": {"name": "e1"}, "involvedObject": {},
                "reason": "FailedGetResourceMetric", "type": "Warning", "message": "no metrics",
                "lastTimestamp": "2026-11-28T07:59:00Z"
            }))
            .unwrap(),
        ];
        let lines = watch_panel_lines(&sample(), &events);
        assert_eq!(lines[0], "HPA orchestrator → deployment/orchestrator");
        assert_eq!(lines[1], "replicas: current 3, desired 4 (min 3, max 10)");
        assert_eq!(lines[2], "CPU: 75% (target 60%)");
        assert_eq!(lines[3], "queue_depth (Pods): <unknown> (target averageValue 30)");
        assert!(lines[4].starts_with("AbleToScale    True  SucceededRescale: the HPA controller"));
        assert!(lines[5].starts_with("ScalingLimited False DesiredWithinRange"));
        assert_eq!(lines[6], "recent events:");
        assert_eq!(
            lines[7],
            "  07:59:00 FailedGetResourceMetric (Warning): no metrics"
        );
        assert!(lines[8].starts_with("  08:01:02 SuccessfulRescale: New size: 4"));
    }

    #[test]
    fn change_line_reports_only_what_moved() {
        let prev = sample();
        assert_eq!(watch_change_line(&prev, &prev), None);
        let mut next = prev.clone();
        let status = next.status.as_mut().unwrap();
        status.current_replicas = Some(4);
        status.current_metrics.as_mut().unwrap()[0]
            .resource
            .as_mut()
            .unwrap()
            .current
            .average_utilization = Some(58);
        status.conditions.as_mut().unwrap()[0].status = "True".into();
        status.conditions.as_mut().unwrap()[0].reason = Some("TooManyReplicas".into());
        let line = watch_change_line(&prev, &next).unwrap();
        assert_eq!(
            line,
            "replicas: current 4, desired 4 (min 3, max 10); CPU: 58% (target 60%) (was 75%); \
             ScalingLimited True (TooManyReplicas)"
        );
    }
}
