//! The writes that restore recorded values: merge patches for replicas, HPAs and config,
//! a strategic merge patch for containers, each computed from the object as it is now.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{FieldPath, ObjectKind, UndoWrite, is_resource_metric};
use crate::plan::connections::set_max_connections;
use crate::plan::{ChangeValue, PlanError};

/// The target a recorded value stands for (the inverse of [`describe_target`]).
fn target_of(value: &ChangeValue, current: &Value) -> Result<Value, PlanError> {
    if let ChangeValue::Percent(pct) = value {
        return Ok(json!({"type": "Utilization", "averageUtilization": pct}));
    }
    let text = value.to_string();
    let text = text.trim();
    let bad = || {
        PlanError::new(
            format!("the recorded metric target {text:?} is not one undo can write back"),
            format!(
                "restore the HPA's metrics by hand with {}",
                edit_command("hpa", current)
            ),
        )
    };
    if let Some(v) = text.strip_prefix("averageValue ") {
        return Ok(json!({"type": "AverageValue", "averageValue": v}));
    }
    if let Some(v) = text.strip_prefix("value ") {
        return Ok(json!({"type": "Value", "value": v}));
    }
    Err(bad())
}

fn with_resource_version(mut patch: Value, current: &Value) -> Value {
    if let Some(rv) = current["metadata"]["resourceVersion"].as_str() {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    patch
}

fn int_value(path: &FieldPath, value: &ChangeValue) -> Result<Value, PlanError> {
    value.as_count().map(Value::from).ok_or_else(|| {
        PlanError::new(
            format!(
                "the recorded value {:?} of {} is not a number",
                value.to_string(),
                path.text()
            ),
            "the record may have been edited by hand; restore the value with kubectl",
        )
    })
}

pub(super) fn build_write(
    kind: ObjectKind,
    current: &Value,
    restore: &[(FieldPath, Option<ChangeValue>)],
) -> Result<UndoWrite, PlanError> {
    match kind {
        ObjectKind::Deployment | ObjectKind::StatefulSet
            if restore.iter().all(|(p, _)| *p == FieldPath::Replicas) =>
        {
            let mut spec = Map::new();
            for (path, value) in restore {
                let value = match value {
                    Some(v) => int_value(path, v)?,
                    None => Value::Null,
                };
                spec.insert("replicas".into(), value);
            }
            Ok(UndoWrite::Merge(with_resource_version(
                json!({ "spec": spec }),
                current,
            )))
        }
        ObjectKind::Deployment | ObjectKind::StatefulSet => {
            container_patch(current, restore).map(UndoWrite::Strategic)
        }
        ObjectKind::HorizontalPodAutoscaler => hpa_patch(current, restore).map(UndoWrite::Merge),
        ObjectKind::ConfigMap => configmap_patch(current, restore).map(UndoWrite::Merge),
    }
}

fn unexpected(path: &FieldPath, kind: &str) -> PlanError {
    PlanError::new(
        format!(
            "the record names {} on a {kind}, where undo cannot restore it",
            path.text()
        ),
        "the record may have been edited by hand; restore the value with kubectl",
    )
}

/// Containers, merged by name: each recorded key set back, or deleted (`null`) when it was
/// absent before. Other keys and containers are not in the patch, so they keep their values.
fn container_patch(
    current: &Value,
    restore: &[(FieldPath, Option<ChangeValue>)],
) -> Result<Value, PlanError> {
    let mut containers: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (path, value) in restore {
        let FieldPath::ContainerResource {
            container,
            kind,
            name,
        } = path
        else {
            return Err(unexpected(path, "workload together with a resources change"));
        };
        let resources = containers.entry(container).or_default();
        let list = resources
            .entry(kind.as_str())
            .or_insert_with(|| Value::Object(Map::new()));
        // As recorded (the user's spelling), as the change wrote it.
        list[name.as_str()] = value.as_ref().map_or(Value::Null, |v| json!(v.to_string()));
    }
    let containers: Vec<Value> = containers
        .into_iter()
        .map(|(name, resources)| json!({"name": name, "resources": resources}))
        .collect();
    Ok(with_resource_version(
        json!({"spec": {"template": {"spec": {"containers": containers}}}}),
        current,
    ))
}

/// Bounds set back; `spec.metrics` recomputed from the current list (merge patches replace
/// lists): the restored targets changed in place, a metric the change added removed, a metric
/// it changed but someone removed since added back. Every other metric stays as it is now.
fn hpa_patch(current: &Value, restore: &[(FieldPath, Option<ChangeValue>)]) -> Result<Value, PlanError> {
    let mut spec = Map::new();
    let mut metrics: Vec<Value> = current["spec"]["metrics"].as_array().cloned().unwrap_or_default();
    let mut metrics_changed = false;
    for (path, value) in restore {
        match path {
            FieldPath::MinReplicas => {
                let v = match value {
                    Some(v) => int_value(path, v)?,
                    None => Value::Null,
                };
                spec.insert("minReplicas".into(), v);
            }
            FieldPath::MaxReplicas => {
                let Some(v) = value else {
                    return Err(unexpected(path, "HPA without a previous value"));
                };
                spec.insert("maxReplicas".into(), int_value(path, v)?);
            }
            FieldPath::MetricUtilization { resource } | FieldPath::MetricTarget { resource } => {
                metrics_changed = true;
                match value {
                    None => metrics.retain(|m| !is_resource_metric(m, resource)),
                    Some(recorded) => {
                        let target = target_of(recorded, current)?;
                        match metrics.iter_mut().find(|m| is_resource_metric(m, resource)) {
                            Some(m) => m["resource"]["target"] = target,
                            None => metrics.push(json!({"type": "Resource",
                                "resource": {"name": resource, "target": target}})),
                        }
                    }
                }
            }
            other => return Err(unexpected(other, "HorizontalPodAutoscaler")),
        }
    }
    if metrics_changed {
        // No metrics at all is written as an unset field: Kubernetes then scales on CPU 80%,
        // as it did before a change that wrote that default out.
        let list = if metrics.is_empty() {
            Value::Null
        } else {
            Value::Array(metrics)
        };
        spec.insert("metrics".into(), list);
    }
    Ok(with_resource_version(json!({ "spec": spec }), current))
}

/// `kubectl edit <kind> -n NS NAME` for the object `current`, for a hint to paste as it is.
fn edit_command(kind: &str, current: &Value) -> String {
    let meta = &current["metadata"];
    let ns = meta["namespace"]
        .as_str()
        .map(|ns| format!(" -n {ns}"))
        .unwrap_or_default();
    let name = meta["name"].as_str().map(|n| format!(" {n}")).unwrap_or_default();
    format!("`kubectl edit {kind}{ns}{name}`")
}

/// `max_connections` set back inside the CURRENT config.yaml text, so that other keys edited
/// since the change keep their new values.
fn configmap_patch(
    current: &Value,
    restore: &[(FieldPath, Option<ChangeValue>)],
) -> Result<Value, PlanError> {
    let mut data = Map::new();
    for (path, value) in restore {
        let FieldPath::MaxConnections { key } = path else {
            return Err(unexpected(path, "ConfigMap"));
        };
        let Some(value) = value else {
            return Err(PlanError::new(
                format!(
                    "database.max_connections was absent from {key} before the change; undo does not delete keys from config.yaml"
                ),
                format!(
                    "remove the line by hand with {}, or set a value with `kubectl orchscale db connections N`",
                    edit_command("configmap", current)
                ),
            ));
        };
        let n = value
            .as_count()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                PlanError::new(
                    format!(
                        "the recorded database.max_connections {:?} is not a number",
                        value.to_string()
                    ),
                    format!("restore it by hand with {}", edit_command("configmap", current)),
                )
            })?;
        let text = data
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| current["data"][key].as_str().map(str::to_string))
            .ok_or_else(|| {
                PlanError::new(
                    format!("the configmap has no key {key:?} any more"),
                    format!("restore it by hand with {}", edit_command("configmap", current)),
                )
            })?;
        let (new_text, _) = set_max_connections(&text, n)?;
        data.insert(key.clone(), Value::String(new_text));
    }
    Ok(with_resource_version(json!({ "data": data }), current))
}
