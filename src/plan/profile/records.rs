//! The state before a profile application, from its steps' audit records: every field they
//! changed, at its `previous` value, as a profile spec that the apply steps can write back
//! (what `undo` of a whole application does).

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use super::steps::World;
use super::{Amount, Count, DatabaseSpec, HpaSpec, PoolSpec, ProfileSpec, ResourceName, Resources};
use crate::plan::FieldPath;
use crate::plan::audit::{LastChange, parse};
use crate::plan::field::{ResourceKind, parse_field};
use crate::quantity::Quantity;

/// The records of `world`'s objects that are steps of `application`.
pub fn records_of(world: &World, application: &str) -> Vec<LastChange> {
    let metas = [
        world.statefulset.as_ref().map(|o| &o.metadata),
        world.configmap.as_ref().map(|o: &ConfigMap| &o.metadata),
        world.deployment.as_ref().map(|o| &o.metadata),
        world.hpa.as_ref().map(|o| &o.metadata),
    ];
    metas
        .into_iter()
        .flatten()
        .filter_map(|m| parse(m.annotations.as_ref()?).ok())
        .filter(|r| r.application.as_deref() == Some(application))
        .collect()
}

/// A count as the record keeps it: a number, or text such as `70%`.
fn count(value: &Value) -> Option<i32> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().trim_end_matches('%').parse().ok(),
        _ => None,
    }
}

fn quantity(value: &Value) -> Option<Quantity> {
    match value {
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        Value::String(s) => Quantity::parse(s).ok(),
        _ => None,
    }
}

/// The spec that puts back what `records` changed, and what it cannot put back (a field that
/// was unset before: a patch of values does not remove it; an HPA the application created).
pub fn before_application(records: &[LastChange]) -> (ProfileSpec, Vec<String>) {
    let mut spec = ProfileSpec::default();
    let mut kept = Vec::new();
    for record in records {
        let kind = record.object.split('/').next().unwrap_or_default();
        for (field, previous) in &record.previous {
            let Ok(path) = parse_field(field) else {
                kept.push(format!("{} {field}: not a field undo knows", record.object));
                continue;
            };
            if previous.is_null() {
                match path {
                    FieldPath::ScaleTargetRef => kept.push(format!(
                        "{} was created by the application: undo keeps it (delete it with `kubectl delete {}`)",
                        record.object, record.object
                    )),
                    FieldPath::RestartedAt => {}
                    _ => kept.push(format!(
                        "{} {field} was unset before: it keeps the application's value",
                        record.object
                    )),
                }
                continue;
            }
            match (kind, path) {
                ("deployment", FieldPath::Replicas) => spec.replicas = count(previous).map(Count),
                ("horizontalpodautoscaler", FieldPath::MinReplicas) => {
                    hpa(&mut spec).min_replicas = count(previous).map(Count);
                }
                ("horizontalpodautoscaler", FieldPath::MaxReplicas) => {
                    hpa(&mut spec).max_replicas = count(previous).map(Count);
                }
                ("horizontalpodautoscaler", FieldPath::MetricUtilization { resource }) => {
                    let value = count(previous).map(Count);
                    match resource.as_str() {
                        "cpu" => hpa(&mut spec).cpu_utilization = value,
                        "memory" => hpa(&mut spec).memory_utilization = value,
                        _ => kept.push(format!("{} {field}: not a profile field", record.object)),
                    }
                }
                ("configmap", FieldPath::MaxConnections { .. }) => {
                    spec.pool = count(previous).map(|n| PoolSpec {
                        connections: Count(n),
                    });
                }
                (
                    "deployment" | "statefulset",
                    FieldPath::ContainerResource {
                        container,
                        kind: list,
                        name,
                    },
                ) => {
                    let Some(q) = quantity(previous) else {
                        kept.push(format!("{} {field}: {previous} is not a quantity", record.object));
                        continue;
                    };
                    let resources = if kind == "deployment" {
                        spec.resources.entry(container).or_default()
                    } else {
                        spec.database
                            .get_or_insert_with(DatabaseSpec::default)
                            .resources
                            .get_or_insert_with(Resources::default)
                    };
                    let target = match list {
                        ResourceKind::Requests => &mut resources.requests,
                        ResourceKind::Limits => &mut resources.limits,
                    };
                    target.insert(ResourceName(name), Amount(q));
                }
                (_, FieldPath::RestartedAt) => {}
                _ => kept.push(format!("{} {field}: not a profile field", record.object)),
            }
        }
    }
    (spec, kept)
}

fn hpa(spec: &mut ProfileSpec) -> &mut HpaSpec {
    spec.hpa.get_or_insert_with(HpaSpec::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn record(object: &str, previous: Value) -> LastChange {
        let previous: BTreeMap<String, Value> = serde_json::from_value(previous).unwrap();
        LastChange::new("apply -f peak.yaml", "t", None, object, previous)
            .with_application(Some("peak/t".into()))
    }

    #[test]
    fn previous_values_become_the_spec_that_restores_them() {
        let records = [
            record(
                "statefulset/postgres",
                json!({"spec.template.spec.containers[postgres].resources.requests.memory": "1Gi"}),
            ),
            record(
                "configmap/orchestrator-config",
                json!({"data[\"config.yaml\"].database.max_connections": 20}),
            ),
            record(
                "deployment/orchestrator",
                json!({"spec.template.spec.containers[orchestrator].resources.requests.cpu": "500m",
                       "spec.template.spec.containers[orchestrator].resources.limits.nvidia.com/gpu": null}),
            ),
            record(
                "horizontalpodautoscaler/orchestrator",
                json!({"spec.maxReplicas": 10, "spec.metrics[cpu].target.averageUtilization": "70%"}),
            ),
        ];
        let (spec, kept) = before_application(&records);
        let db = spec.database.unwrap().resources.unwrap();
        assert_eq!(
            db.requests[&ResourceName("memory".into())].0,
            Quantity::parse("1Gi").unwrap()
        );
        assert_eq!(spec.pool.unwrap().connections, Count(20));
        let orchestrator = &spec.resources["orchestrator"];
        assert_eq!(
            orchestrator.requests[&ResourceName("cpu".into())].0.text(),
            "500m"
        );
        let hpa = spec.hpa.unwrap();
        assert_eq!(
            (hpa.max_replicas, hpa.cpu_utilization, hpa.min_replicas),
            (Some(Count(10)), Some(Count(70)), None)
        );
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept[0].contains("was unset before"), "{kept:?}");
    }
}
