//! The `hpa` command's plan: validate min/max/targets, change only the given fields of an
//! autoscaling/v2 HorizontalPodAutoscaler, build the guarded patch, and say what the HPA will do.
//!
//! The JSON summary and the `--watch` panel text live in [`view`] (re-exported here).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::{Change, ChangeValue, FieldPath, PlanError};

pub mod predict;
pub mod view;

pub use predict::{HpaModel, Prediction, WhatIf, predict};
pub use view::{hpa_summary, watch_change_line, watch_panel_lines};

/// The HPA controller ignores ratios within 10% of 1.0 (`--horizontal-pod-autoscaler-tolerance`).
pub const HPA_TOLERANCE: f64 = 0.1;
/// `kubectl autoscale` scales on 80% CPU when no target is given; `--create` does the same.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;
/// Kubernetes defaults `minReplicas` to 1 when unset.
const DEFAULT_MIN_REPLICAS: i32 = 1;

/// The user's `hpa` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HpaRequest {
    pub min: Option<i32>,
    pub max: Option<i32>,
    /// `--cpu PCT`: target average CPU utilization, percent of the request.
    pub cpu: Option<i32>,
    /// `--memory PCT`: target average memory utilization, percent of the request.
    pub memory: Option<i32>,
}

impl HpaRequest {
    fn targets(&self) -> impl Iterator<Item = (&'static str, i32)> {
        [("cpu", self.cpu), ("memory", self.memory)]
            .into_iter()
            .filter_map(|(name, pct)| pct.map(|pct| (name, pct)))
    }
}

/// What `hpa` will change on an existing HPA. Empty `changes` means nothing to do.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaPlan {
    pub changes: Vec<Change>,
    /// JSON merge patch: `metadata.resourceVersion` (precondition) plus only the changed spec
    /// fields; `spec.metrics` is the full new list, computed from the read object. `{}` when
    /// there is nothing to change.
    pub patch: Value,
    /// The spec after the change, for the preview and JSON output.
    pub new_spec: HorizontalPodAutoscalerSpec,
    pub warnings: Vec<String>,
    /// The expected effect (see [`expected_effect`]).
    pub effect: Effect,
}

/// A new HPA for `hpa --create`.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaCreatePlan {
    pub hpa: HorizontalPodAutoscaler,
    /// Every field set, with `before: None`.
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
}

/// Plans `hpa [--min] [--max] [--cpu] [--memory]` on the HPA as read from the cluster.
/// `room` is how many of the workload's pods fit on the cluster (when known): a `--min`
/// above it is a warning, not an error.
///
/// # Errors
/// No field given, min < 1, max < 1, min > max (with the current value for the one not given),
/// utilization ≤ 0, or an HPA without a spec.
pub fn plan_hpa_update(
    current: &HorizontalPodAutoscaler,
    req: &HpaRequest,
    room: Option<i32>,
) -> Result<HpaPlan, PlanError> {
    if req == &HpaRequest::default() {
        return Err(PlanError::new(
            "nothing to change: give at least one of --min, --max, --cpu, --memory",
            "e.g. `kubectl orchscale hpa --min 5 --max 20` or `kubectl orchscale hpa --cpu 60`",
        ));
    }
    let name = current.metadata.name.as_deref().unwrap_or("?");
    let namespace = current.metadata.namespace.as_deref().unwrap_or("default");
    let spec = current.spec.as_ref().ok_or_else(|| {
        PlanError::new(
            format!("horizontalpodautoscaler/{name} has no spec"),
            format!(
                "inspect it with `kubectl get hpa {name} -n {namespace} -o yaml`; recreate it with `hpa --create`"
            ),
        )
    })?;
    let current_min = spec.min_replicas.unwrap_or(DEFAULT_MIN_REPLICAS);
    let new_min = req.min.unwrap_or(current_min);
    let new_max = req.max.unwrap_or(spec.max_replicas);
    validate_bounds(req, current_min, spec.max_replicas)?;
    validate_targets(req)?;

    let object = format!("horizontalpodautoscaler/{name}");
    let mut warnings = target_warnings(req);
    warnings.extend(room_warning(req.min, room));
    let mut changes = Vec::new();
    let mut spec_patch = serde_json::Map::new();
    let mut new_spec = spec.clone();

    if new_min != current_min || (req.min.is_some() && spec.min_replicas.is_none()) {
        changes.push(Change::new(
            &object,
            FieldPath::MinReplicas,
            spec.min_replicas.map(ChangeValue::count),
            Some(ChangeValue::count(new_min)),
        ));
        spec_patch.insert("minReplicas".into(), json!(new_min));
        new_spec.min_replicas = Some(new_min);
    }
    if new_max != spec.max_replicas {
        changes.push(Change::new(
            &object,
            FieldPath::MaxReplicas,
            Some(ChangeValue::count(spec.max_replicas)),
            Some(ChangeValue::count(new_max)),
        ));
        spec_patch.insert("maxReplicas".into(), json!(new_max));
        new_spec.max_replicas = new_max;
    }

    let mut metrics = spec.metrics.clone().unwrap_or_default();
    let mut changed_targets = Vec::new();
    if metrics.is_empty() && req.targets().any(|(name, _)| name != "cpu") {
        // An HPA without metrics scales on CPU 80%; adding only a memory metric would silently
        // drop that, so the implicit default is written out.
        metrics.push(utilization_metric("cpu", DEFAULT_CPU_UTILIZATION));
        changes.push(Change::new(
            &object,
            FieldPath::MetricUtilization {
                resource: "cpu".into(),
            },
            None,
            Some(ChangeValue::Percent(DEFAULT_CPU_UTILIZATION)),
        ));
        warnings.push(format!(
            "the HPA had no metrics, so Kubernetes scaled it on CPU {DEFAULT_CPU_UTILIZATION}%; \
             that target is written explicitly so it is kept next to the new one"
        ));
    }
    for (resource, pct) in req.targets() {
        if let Some(change) = set_utilization(&mut metrics, &object, resource, pct) {
            changes.push(change);
            changed_targets.push((resource.to_string(), pct));
        }
    }
    if spec
        .metrics
        .as_ref()
        .map(|m| m != &metrics)
        .unwrap_or(!metrics.is_empty())
    {
        spec_patch.insert(
            "metrics".into(),
            serde_json::to_value(&metrics).unwrap_or(Value::Null),
        );
        new_spec.metrics = Some(metrics);
    }

    let effect = expected_effect(current, new_min, new_max, &changed_targets);
    let patch = if changes.is_empty() {
        json!({})
    } else {
        let mut patch = json!({ "spec": Value::Object(spec_patch) });
        if let Some(rv) = &current.metadata.resource_version {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
        patch
    };
    Ok(HpaPlan {
        changes,
        patch,
        new_spec,
        warnings,
        effect,
    })
}

/// The checks that need no cluster (bounds ≥ 1, `--min` ≤ `--max` when both are given,
/// utilization > 0), run before connecting so that bad input makes no request at all.
///
/// # Errors
/// The same [`PlanError`]s as [`plan_hpa_update`] for those checks.
pub fn precheck(req: &HpaRequest) -> Result<(), PlanError> {
    // With no current values, a lone --min or --max can only break the lower bound of 1.
    validate_bounds(req, DEFAULT_MIN_REPLICAS, i32::MAX)?;
    validate_targets(req)
}

fn validate_bounds(req: &HpaRequest, current_min: i32, current_max: i32) -> Result<(), PlanError> {
    let bound_hint = "minReplicas must be at least 1 and at most maxReplicas";
    if let Some(min) = req.min.filter(|m| *m < 1) {
        return Err(PlanError::new(
            format!("--min {min} is below 1: an HPA keeps at least one replica"),
            bound_hint,
        ));
    }
    if let Some(max) = req.max.filter(|m| *m < 1) {
        return Err(PlanError::new(format!("--max {max} is below 1"), bound_hint));
    }
    let message = match (req.min, req.max) {
        (Some(min), Some(max)) if min > max => format!("--min {min} is above --max {max}"),
        (Some(min), None) if min > current_max => {
            format!("--min {min} is above the HPA's current maxReplicas {current_max}")
        }
        (None, Some(max)) if current_min > max => {
            format!("--max {max} is below the HPA's current minReplicas {current_min}")
        }
        _ => return Ok(()),
    };
    Err(PlanError::new(
        message,
        "give both --min and --max, with --min ≤ --max",
    ))
}

fn validate_targets(req: &HpaRequest) -> Result<(), PlanError> {
    for (resource, pct) in req.targets() {
        if pct <= 0 {
            return Err(PlanError::new(
                format!("--{resource} {pct} is not a valid target: utilization must be above 0%"),
                format!("e.g. --{resource} 70 scales out when pods use more than 70% of their request"),
            ));
        }
    }
    Ok(())
}

fn target_warnings(req: &HpaRequest) -> Vec<String> {
    req.targets()
        .filter(|(_, pct)| *pct > 100)
        .map(|(resource, pct)| {
            format!(
                "--{resource} {pct}: a target above 100% is legal (utilization is measured against \
                 the request, and pods may use more than they request up to their limit), but the \
                 HPA adds pods only when they use {:.1}× their {resource} request",
                f64::from(pct) / 100.0
            )
        })
        .collect()
}

/// The warning for a `--min` above `room`, how many pods of the workload fit in the cluster.
pub fn room_warning(min: Option<i32>, room: Option<i32>) -> Option<String> {
    let (min, room) = (min?, room?);
    (min > room).then(|| {
        format!(
            "--min {min}, but only about {room} pods of this size fit in the cluster's free room: \
             the extra pods will stay Pending until nodes are added"
        )
    })
}

fn utilization_metric(resource: &str, pct: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: utilization_target(pct),
        }),
        ..Default::default()
    }
}

fn utilization_target(pct: i32) -> MetricTarget {
    MetricTarget {
        type_: "Utilization".into(),
        average_utilization: Some(pct),
        ..Default::default()
    }
}

/// Sets `averageUtilization` on the Resource metric `resource` (adding the metric when absent),
/// leaving every other metric in place. Returns the change, `None` when already at `pct`.
fn set_utilization(metrics: &mut Vec<MetricSpec>, object: &str, resource: &str, pct: i32) -> Option<Change> {
    let field = FieldPath::MetricUtilization {
        resource: resource.to_string(),
    };
    let existing = metrics.iter_mut().find_map(|m| {
        m.resource
            .as_mut()
            .filter(|r| m.type_ == "Resource" && r.name == resource)
    });
    match existing {
        None => {
            metrics.push(utilization_metric(resource, pct));
            Some(Change::new(object, field, None, Some(ChangeValue::Percent(pct))))
        }
        Some(source) if source.target.type_ == "Utilization" => {
            let before = source.target.average_utilization;
            if before == Some(pct) {
                return None;
            }
            source.target = utilization_target(pct);
            Some(Change::new(
                object,
                field,
                before.map(ChangeValue::Percent),
                Some(ChangeValue::Percent(pct)),
            ))
        }
        Some(source) => {
            // An AverageValue/Value target becomes a Utilization target: show the whole target.
            let before = describe_target(&source.target);
            source.target = utilization_target(pct);
            Some(Change::new(
                object,
                FieldPath::MetricTarget {
                    resource: resource.to_string(),
                },
                Some(ChangeValue::Text(before)),
                Some(ChangeValue::Percent(pct)),
            ))
        }
    }
}

/// A metric target in words: `60%`, `averageValue 500m`, `value 10k`.
pub fn describe_target(target: &MetricTarget) -> String {
    if let Some(pct) = target.average_utilization {
        format!("{pct}%")
    } else if let Some(v) = &target.average_value {
        format!("averageValue {}", v.0)
    } else if let Some(v) = &target.value {
        format!("value {}", v.0)
    } else {
        target.type_.clone()
    }
}

/// The current average utilization (percent) the HPA reports for Resource metric `resource`.
pub fn current_utilization(hpa: &HorizontalPodAutoscaler, resource: &str) -> Option<i32> {
    hpa.status
        .as_ref()?
        .current_metrics
        .as_ref()?
        .iter()
        .filter(|m| m.type_ == "Resource")
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == resource)?
        .current
        .average_utilization
}

/// The expected effect of a change to an HPA: in words, and the prediction behind them (the
/// `prediction` of the `hpa` JSON document).
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub text: String,
    pub prediction: Option<Prediction>,
}

/// The expected effect of new bounds and targets: scale-up/down forced by min/max, or where the
/// HPA takes the count at the current utilization over EVERY metric ([`predict`]: the largest
/// proposal wins, as the controller decides).
pub fn expected_effect(
    current_hpa: &HorizontalPodAutoscaler,
    new_min: i32,
    new_max: i32,
    new_targets: &[(String, i32)],
) -> Effect {
    let model = HpaModel::of(current_hpa);
    let what_if = WhatIf {
        min: Some(new_min),
        max: Some(new_max),
        targets: new_targets,
        ..WhatIf::default()
    };
    let prediction = predict(&model, &what_if);
    let text = effect_text(
        current_hpa,
        &model,
        new_min,
        new_max,
        new_targets,
        prediction.as_ref(),
    );
    Effect { text, prediction }
}

fn effect_text(
    current_hpa: &HorizontalPodAutoscaler,
    model: &HpaModel,
    new_min: i32,
    new_max: i32,
    new_targets: &[(String, i32)],
    prediction: Option<&Prediction>,
) -> String {
    let Some(current) = model.current else {
        return format!(
            "the HPA has not reported its replicas yet; it keeps them within {new_min}..{new_max} \
             at its next sync"
        );
    };
    if current == 0 && new_min > 0 {
        // The HPA controller leaves a target at 0 replicas alone until someone scales it up.
        return format!(
            "the deployment has 0 replicas: the HPA does not act on it (ScalingDisabled) until it is \
             scaled up; then it keeps it within {new_min}..{new_max}"
        );
    }
    if new_min > current {
        return format!("min {new_min} > current {current} replicas: the HPA will scale up to {new_min} now");
    }
    if new_max < current {
        return format!(
            "max {new_max} < current {current} replicas: the HPA will scale down to {new_max} now"
        );
    }
    let Some(p) = prediction else {
        return format!("{current} replicas are within {new_min}..{new_max}: nothing moves now");
    };
    let waiting: Vec<String> = new_targets
        .iter()
        .filter(|(resource, _)| current_utilization(current_hpa, resource).is_none())
        .map(|(resource, target)| {
            format!(
                "no current {} utilization is reported yet: the HPA applies the {target}% target once \
                 metrics arrive",
                resource_label(resource)
            )
        })
        .collect();
    let moves = match p.replicas.cmp(&current) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!("move from {current} to {} replicas", p.replicas)),
        std::cmp::Ordering::Less => Some(format!(
            "move from {current} to {} replicas after its scale-down stabilization window{}",
            p.replicas,
            scale_down_window(current_hpa)
        )),
    };
    let why = p.reason();
    let said = match moves {
        None if new_targets.is_empty() => {
            format!("{current} replicas are within {new_min}..{new_max}: nothing moves now")
        }
        None => format!("at the current utilization the HPA would keep {current} replicas: {why}"),
        Some(moves) if new_targets.is_empty() => format!(
            "{current} replicas are within {new_min}..{new_max}; at the current utilization the HPA \
             will {moves}: {why}"
        ),
        Some(moves) => format!("at the current utilization the HPA would {moves}: {why}"),
    };
    if waiting.is_empty() {
        said
    } else {
        format!("{}; {said}", waiting.join("; "))
    }
}

/// ` (300 s)` from the HPA's behavior, or the Kubernetes default.
fn scale_down_window(hpa: &HorizontalPodAutoscaler) -> String {
    let seconds = hpa
        .spec
        .as_ref()
        .and_then(|s| s.behavior.as_ref())
        .and_then(|b| b.scale_down.as_ref())
        .and_then(|d| d.stabilization_window_seconds);
    match seconds {
        Some(s) => format!(" ({s} s)"),
        None => " (5 minutes by default)".to_string(),
    }
}

fn resource_label(resource: &str) -> String {
    match resource {
        "cpu" => "CPU".to_string(),
        other => other.to_string(),
    }
}

/// Plans `hpa --create`: an autoscaling/v2 HPA named `name` targeting apps/v1 Deployment
/// `deployment`, scaling on the given targets, or on CPU 80% when none is given (as
/// `kubectl autoscale` does).
///
/// # Errors
/// `--min` or `--max` missing, or any value that [`plan_hpa_update`] would refuse.
pub fn plan_hpa_create(
    namespace: &str,
    name: &str,
    deployment: &str,
    req: &HpaRequest,
) -> Result<HpaCreatePlan, PlanError> {
    let (Some(min), Some(max)) = (req.min, req.max) else {
        return Err(PlanError::new(
            "--create needs both --min and --max",
            format!(
                "e.g. `kubectl orchscale hpa --create --min 2 --max 10` (CPU {DEFAULT_CPU_UTILIZATION}% unless --cpu/--memory)"
            ),
        ));
    };
    validate_bounds(req, min, max)?;
    validate_targets(req)?;
    let mut targets: Vec<(&str, i32)> = req.targets().collect();
    if targets.is_empty() {
        targets.push(("cpu", DEFAULT_CPU_UTILIZATION));
    }
    let object = format!("horizontalpodautoscaler/{name}");
    let mut changes = vec![
        Change::new(
            &object,
            FieldPath::ScaleTargetRef,
            None,
            Some(ChangeValue::text(format!("apps/v1 Deployment {deployment}"))),
        ),
        Change::new(
            &object,
            FieldPath::MinReplicas,
            None,
            Some(ChangeValue::count(min)),
        ),
        Change::new(
            &object,
            FieldPath::MaxReplicas,
            None,
            Some(ChangeValue::count(max)),
        ),
    ];
    changes.extend(targets.iter().map(|(resource, pct)| {
        Change::new(
            &object,
            FieldPath::MetricUtilization {
                resource: resource.to_string(),
            },
            None,
            Some(ChangeValue::Percent(*pct)),
        )
    }));
    let hpa = HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: deployment.into(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(
                targets
                    .iter()
                    .map(|(r, pct)| utilization_metric(r, *pct))
                    .collect(),
            ),
            behavior: None,
        }),
        status: None,
    };
    Ok(HpaCreatePlan {
        hpa,
        changes,
        warnings: target_warnings(req),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(v: Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(v).unwrap()
    }

    /// min 3, max 10, CPU 70%, memory 80%, a Pods metric and a behavior; 3 replicas at CPU 63%.
    fn current() -> HorizontalPodAutoscaler {
        hpa(json!({
            "metadata": {"name": "orchestrator", "namespace": "llm-orchestrator", "resourceVersion": "42"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"},
                "minReplicas": 3, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "Pods", "pods": {"metric": {"name": "queue_depth"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}
            },
            "status": {
                "currentReplicas": 3, "desiredReplicas": 3,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 63}}}
                ]
            }
        }))
    }

    fn req(min: Option<i32>, max: Option<i32>, cpu: Option<i32>, memory: Option<i32>) -> HpaRequest {
        HpaRequest {
            min,
            max,
            cpu,
            memory,
        }
    }

    #[test]
    fn min_and_max_change_only_bounds() {
        let plan = plan_hpa_update(&current(), &req(Some(5), Some(20), None, None), None).unwrap();
        assert_eq!(
            plan.changes,
            vec![
                Change::new(
                    "horizontalpodautoscaler/orchestrator",
                    "spec.minReplicas",
                    Some(ChangeValue::count(3)),
                    Some(ChangeValue::count(5))
                ),
                Change::new(
                    "horizontalpodautoscaler/orchestrator",
                    "spec.maxReplicas",
                    Some(ChangeValue::count(10)),
                    Some(ChangeValue::count(20))
                ),
            ]
        );
        assert_eq!(
            plan.patch,
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"minReplicas": 5, "maxReplicas": 20}})
        );
        assert_eq!(plan.new_spec.metrics, current().spec.unwrap().metrics);
        assert_eq!(
            plan.effect.text,
            "min 5 > current 3 replicas: the HPA will scale up to 5 now"
        );
    }

    #[test]
    fn cpu_target_keeps_every_other_metric_in_order() {
        let plan = plan_hpa_update(&current(), &req(None, None, Some(60), None), None).unwrap();
        assert_eq!(
            plan.changes,
            vec![Change::new(
                "horizontalpodautoscaler/orchestrator",
                "spec.metrics[cpu].target.averageUtilization",
                Some(ChangeValue::Percent(70)),
                Some(ChangeValue::Percent(60))
            )]
        );
        let mut expected = current().spec.unwrap();
        expected.metrics.as_mut().unwrap()[0]
            .resource
            .as_mut()
            .unwrap()
            .target
            .average_utilization = Some(60);
        assert_eq!(plan.new_spec, expected);
        assert_eq!(
            plan.patch["spec"]["metrics"],
            serde_json::to_value(expected.metrics).unwrap()
        );
        assert_eq!(plan.patch["spec"].get("behavior"), None);
        assert_eq!(plan.patch["metadata"]["resourceVersion"], "42");
        // 63% against 60% is within the 10% tolerance.
        assert_eq!(
            plan.effect.text,
            "at the current utilization the HPA would keep 3 replicas: CPU at 63% within 10% of its 60% target"
        );
    }

    #[test]
    fn memory_is_added_when_absent() {
        let mut h = current();
        h.spec.as_mut().unwrap().metrics.as_mut().unwrap().pop();
        let plan = plan_hpa_update(&h, &req(None, None, None, Some(75)), None).unwrap();
        let metrics = plan.new_spec.metrics.as_ref().unwrap();
        assert_eq!(metrics.len(), 3);
        assert_eq!(
            metrics[..2],
            h.spec.as_ref().unwrap().metrics.as_ref().unwrap()[..]
        );
        assert_eq!(metrics[2], utilization_metric("memory", 75));
        assert_eq!(plan.changes[0].before, None);
        assert_eq!(plan.changes[0].after_text(), "75%");
        assert!(
            plan.effect
                .text
                .contains("no current memory utilization is reported yet")
        );
    }

    #[test]
    fn memory_on_hpa_without_metrics_keeps_the_implicit_cpu_default() {
        let mut h = current();
        h.spec.as_mut().unwrap().metrics = None;
        let plan = plan_hpa_update(&h, &req(None, None, None, Some(75)), None).unwrap();
        assert_eq!(
            plan.new_spec.metrics.unwrap(),
            vec![utilization_metric("cpu", 80), utilization_metric("memory", 75)]
        );
        assert_eq!(plan.changes.len(), 2);
        assert!(plan.warnings[0].contains("CPU 80%"));
    }

    #[test]
    fn average_value_target_becomes_utilization() {
        let mut h = current();
        h.spec.as_mut().unwrap().metrics.as_mut().unwrap()[0] = serde_json::from_value(json!(
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "500m"}}}
        ))
        .unwrap();
        let plan = plan_hpa_update(&h, &req(None, None, Some(60), None), None).unwrap();
        assert_eq!(plan.changes[0].field.text(), "spec.metrics[cpu].target");
        assert_eq!(plan.changes[0].before_text(), "averageValue 500m");
        assert_eq!(
            plan.new_spec.metrics.unwrap()[0]
                .resource
                .as_ref()
                .unwrap()
                .target,
            utilization_target(60)
        );
    }

    #[test]
    fn nothing_to_change_is_a_noop_plan() {
        let plan = plan_hpa_update(&current(), &req(Some(3), Some(10), Some(70), Some(80)), None).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(plan.patch, json!({}));
        assert_eq!(plan.new_spec, current().spec.unwrap());
    }

    #[test]
    fn refuses_bad_input_before_writing() {
        let cases = [
            (
                req(None, None, None, None),
                "nothing to change: give at least one of --min, --max, --cpu, --memory",
            ),
            (
                req(Some(12), None, None, None),
                "--min 12 is above the HPA's current maxReplicas 10",
            ),
            (
                req(None, Some(2), None, None),
                "--max 2 is below the HPA's current minReplicas 3",
            ),
            (req(Some(8), Some(4), None, None), "--min 8 is above --max 4"),
            (
                req(Some(0), None, None, None),
                "--min 0 is below 1: an HPA keeps at least one replica",
            ),
            (req(None, Some(0), None, None), "--max 0 is below 1"),
            (
                req(None, None, Some(0), None),
                "--cpu 0 is not a valid target: utilization must be above 0%",
            ),
            (
                req(None, None, None, Some(-5)),
                "--memory -5 is not a valid target: utilization must be above 0%",
            ),
        ];
        for (request, message) in cases {
            let err = plan_hpa_update(&current(), &request, None).unwrap_err();
            assert_eq!(err.message, message);
            assert!(!err.hint.is_empty());
        }
    }

    #[test]
    fn warns_on_targets_above_100_and_min_above_room() {
        let plan = plan_hpa_update(&current(), &req(Some(8), None, Some(150), None), Some(6)).unwrap();
        assert_eq!(plan.warnings.len(), 2);
        assert!(plan.warnings[0].contains("--cpu 150: a target above 100% is legal"));
        assert!(plan.warnings[0].contains("1.5×"));
        assert!(plan.warnings[1].contains("--min 8, but only about 6 pods"));
        let quiet = plan_hpa_update(&current(), &req(Some(5), None, None, None), Some(6)).unwrap();
        assert!(quiet.warnings.is_empty());
    }

    #[test]
    fn at_zero_replicas_the_hpa_does_not_scale_up() {
        let mut h = current();
        h.status.as_mut().unwrap().current_replicas = Some(0);
        let effect = expected_effect(&h, 5, 10, &[]).text;
        assert!(!effect.contains("will scale up"), "{effect}");
        assert!(effect.contains("ScalingDisabled"), "{effect}");
    }

    #[test]
    fn effect_covers_scale_down_and_target_moves() {
        let mut h = current();
        h.status.as_mut().unwrap().current_replicas = Some(6);
        assert_eq!(
            expected_effect(&h, 3, 4, &[]).text,
            "max 4 < current 6 replicas: the HPA will scale down to 4 now"
        );
        assert_eq!(
            expected_effect(&current(), 3, 10, &[("cpu".into(), 50)]).text,
            "at the current utilization the HPA would move from 3 to 4 replicas: CPU at 63% of its 50% target"
        );
        // CPU alone would go down to 2; memory and queue_depth report nothing, and the
        // controller does not scale down while a metric is missing (computeReplicasForMetrics).
        assert_eq!(
            expected_effect(&current(), 1, 10, &[("cpu".into(), 95)]).text,
            "at the current utilization the HPA would keep 3 replicas: no current value for \
             queue_depth, memory: the controller does not scale down without every metric"
        );
        let mut cpu_only = current();
        cpu_only
            .spec
            .as_mut()
            .unwrap()
            .metrics
            .as_mut()
            .unwrap()
            .truncate(1);
        assert_eq!(
            expected_effect(&cpu_only, 1, 10, &[("cpu".into(), 95)]).text,
            "at the current utilization the HPA would move from 3 to 2 replicas after its scale-down \
             stabilization window (120 s): CPU at 63% of its 95% target"
        );
        assert_eq!(
            expected_effect(&current(), 3, 10, &[]).text,
            "3 replicas are within 3..10: nothing moves now"
        );
        let mut no_status = current();
        no_status.status = None;
        assert!(
            expected_effect(&no_status, 3, 10, &[])
                .text
                .contains("has not reported")
        );
    }

    #[test]
    fn new_bounds_say_where_the_current_utilization_goes() {
        let cpu_only = |replicas: i32, util: i32| {
            hpa(json!({
                "metadata": {"name": "orchestrator"},
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"},
                    "minReplicas": 5, "maxReplicas": 6,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                 "target": {"type": "Utilization", "averageUtilization": 60}}}],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}
                },
                "status": {"currentReplicas": replicas, "desiredReplicas": replicas,
                    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                                        "current": {"averageUtilization": util}}}]}
            }))
        };
        // Lowering min from 5 releases a count kept up by the old floor.
        assert_eq!(
            expected_effect(&cpu_only(5, 30), 2, 6, &[]).text,
            "5 replicas are within 2..6; at the current utilization the HPA will move from 5 to 3 \
             replicas after its scale-down stabilization window (120 s): CPU at 30% of its 60% target"
        );
        // Raising max from 6 lets a count held at the old ceiling grow.
        assert_eq!(
            expected_effect(&cpu_only(6, 90), 5, 20, &[]).text,
            "6 replicas are within 5..20; at the current utilization the HPA will move from 6 to 9 \
             replicas: CPU at 90% of its 60% target"
        );
        assert_eq!(
            expected_effect(&cpu_only(5, 60), 5, 20, &[]).text,
            "5 replicas are within 5..20: nothing moves now"
        );
    }

    #[test]
    fn create_builds_a_v2_hpa_with_cpu_default() {
        let plan = plan_hpa_create(
            "ns",
            "orchestrator",
            "orchestrator",
            &req(Some(2), Some(6), None, None),
        )
        .unwrap();
        let value = serde_json::to_value(&plan.hpa).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "orchestrator", "namespace": "ns"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"},
                    "minReplicas": 2, "maxReplicas": 6,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
                }
            })
        );
        assert_eq!(plan.changes.len(), 4);
        assert!(plan.changes.iter().all(|c| c.before.is_none()));
    }

    #[test]
    fn create_uses_given_targets_and_requires_bounds() {
        let plan = plan_hpa_create("ns", "h", "d", &req(Some(1), Some(3), None, Some(70))).unwrap();
        assert_eq!(
            plan.hpa.spec.unwrap().metrics.unwrap(),
            vec![utilization_metric("memory", 70)]
        );
        let err = plan_hpa_create("ns", "h", "d", &req(Some(1), None, None, None)).unwrap_err();
        assert_eq!(err.message, "--create needs both --min and --max");
        let err = plan_hpa_create("ns", "h", "d", &req(Some(5), Some(3), None, None)).unwrap_err();
        assert_eq!(err.message, "--min 5 is above --max 3");
        assert!(plan_hpa_create("ns", "h", "d", &req(Some(1), Some(3), Some(0), None)).is_err());
    }
}
