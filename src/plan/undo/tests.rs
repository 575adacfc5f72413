use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::plan::connections::restart_patch;

fn record(object: &str, command: &str, previous: Value, written: Value) -> LastChange {
    let to_map = |v: Value| -> BTreeMap<String, Value> { serde_json::from_value(v).unwrap() };
    LastChange::new(command, "2026-11-28T08:00:00Z", None, object, to_map(previous))
        .with_written(to_map(written))
}

fn hpa(min: i64, max: i64, metrics: Value) -> Value {
    json!({
        "metadata": {"name": "orchestrator", "resourceVersion": "7"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"},
                 "minReplicas": min, "maxReplicas": max, "metrics": metrics}
    })
}

fn util(resource: &str, pct: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": resource,
           "target": {"type": "Utilization", "averageUtilization": pct}}})
}

fn deployment() -> Value {
    json!({
        "metadata": {"name": "orchestrator", "resourceVersion": "12"},
        "spec": {"replicas": 5, "template": {"spec": {"containers": [
            {"name": "orchestrator", "resources": {
                "requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1Gi"},
                "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}}},
            {"name": "sidecar", "resources": {"requests": {"cpu": "50m"}}}
        ]}}}
    })
}

#[test]
fn scale_restores_the_replicas_with_a_guarded_merge_patch() {
    let rec = record(
        "deployment/orchestrator",
        "scale --replicas 5",
        json!({"spec.replicas": 3}),
        json!({"spec.replicas": 5}),
    );
    let plan = plan_undo(ObjectKind::Deployment, &deployment(), &rec).unwrap();
    assert_eq!(
        plan.changes,
        vec![Change::new(
            "deployment/orchestrator",
            "spec.replicas",
            Some(ChangeValue::count(5)),
            Some(ChangeValue::count(3))
        )]
    );
    assert_eq!(
        plan.write,
        UndoWrite::Merge(json!({"metadata": {"resourceVersion": "12"}, "spec": {"replicas": 3}}))
    );
    assert!(!plan.restarts_pods);
    assert!(plan.drift.is_empty());
    assert!(!plan.unverified);
}

#[test]
fn a_value_changed_since_is_reported_as_drift() {
    let rec = record(
        "deployment/orchestrator",
        "scale --replicas 7",
        json!({"spec.replicas": 3}),
        json!({"spec.replicas": 7}),
    );
    let plan = plan_undo(ObjectKind::Deployment, &deployment(), &rec).unwrap();
    assert_eq!(plan.drift.len(), 1);
    assert_eq!(
        plan.drift[0],
        "deployment/orchestrator spec.replicas was changed since `scale --replicas 7`: it set 7, it is now 5"
    );
    // The restore is still planned: the command decides whether to go on.
    assert_eq!(plan.changes.len(), 1);
}

#[test]
fn records_without_written_values_are_unverified() {
    let rec = LastChange::new(
        "scale --replicas 5",
        "2026-11-28T08:00:00Z",
        None,
        "deployment/orchestrator",
        serde_json::from_value(json!({"spec.replicas": 3})).unwrap(),
    );
    let plan = plan_undo(ObjectKind::Deployment, &deployment(), &rec).unwrap();
    assert!(plan.unverified);
    assert!(plan.drift.is_empty());
}

#[test]
fn already_restored_is_nothing_to_do() {
    let rec = record(
        "deployment/orchestrator",
        "scale --replicas 3",
        json!({"spec.replicas": 5}),
        json!({"spec.replicas": 3}),
    );
    let plan = plan_undo(ObjectKind::Deployment, &deployment(), &rec).unwrap();
    assert!(plan.changes.is_empty());
    assert_eq!(plan.write, UndoWrite::Nothing);
    assert_eq!(plan.drift.len(), 1);
}

#[test]
fn hpa_bounds_are_restored_and_metrics_left_alone() {
    let current = hpa(5, 20, json!([util("cpu", 70), util("memory", 80)]));
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "hpa --min 5 --max 20",
        json!({"spec.minReplicas": 3, "spec.maxReplicas": 10}),
        json!({"spec.minReplicas": 5, "spec.maxReplicas": 20}),
    );
    let plan = plan_undo(ObjectKind::HorizontalPodAutoscaler, &current, &rec).unwrap();
    assert_eq!(
        plan.write,
        UndoWrite::Merge(json!({"metadata": {"resourceVersion": "7"},
                                "spec": {"minReplicas": 3, "maxReplicas": 10}}))
    );
    assert_eq!(plan.changes.len(), 2);
    assert!(plan.drift.is_empty());
}

#[test]
fn hpa_target_is_restored_in_place_keeping_other_metrics() {
    let external = json!({"type": "External", "external": {"metric": {"name": "queue"},
                           "target": {"type": "Value", "value": "10"}}});
    let current = hpa(
        3,
        10,
        json!([util("cpu", 50), external.clone(), util("memory", 80)]),
    );
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "hpa --cpu 50",
        json!({"spec.metrics[cpu].target.averageUtilization": "70%"}),
        json!({"spec.metrics[cpu].target.averageUtilization": "50%"}),
    );
    let plan = plan_undo(ObjectKind::HorizontalPodAutoscaler, &current, &rec).unwrap();
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    assert_eq!(plan.changes[0].before_text(), "50%");
    assert_eq!(plan.changes[0].after_text(), "70%");
    let UndoWrite::Merge(patch) = plan.write else {
        panic!("merge patch expected")
    };
    assert_eq!(
        patch["spec"]["metrics"],
        json!([util("cpu", 70), external, util("memory", 80)])
    );
}

#[test]
fn a_metric_the_change_added_is_removed() {
    let current = hpa(3, 10, json!([util("cpu", 70), util("memory", 75)]));
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "hpa --memory 75",
        json!({"spec.metrics[memory].target.averageUtilization": null}),
        json!({"spec.metrics[memory].target.averageUtilization": "75%"}),
    );
    let plan = plan_undo(ObjectKind::HorizontalPodAutoscaler, &current, &rec).unwrap();
    assert_eq!(plan.changes[0].after, None);
    let UndoWrite::Merge(patch) = plan.write else {
        panic!("merge patch expected")
    };
    assert_eq!(patch["spec"]["metrics"], json!([util("cpu", 70)]));
}

#[test]
fn the_implicit_cpu_default_written_out_goes_back_to_no_metrics() {
    let current = hpa(3, 10, json!([util("cpu", 80), util("memory", 75)]));
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "hpa --memory 75",
        json!({"spec.metrics[cpu].target.averageUtilization": null,
               "spec.metrics[memory].target.averageUtilization": null}),
        json!({"spec.metrics[cpu].target.averageUtilization": "80%",
               "spec.metrics[memory].target.averageUtilization": "75%"}),
    );
    let plan = plan_undo(ObjectKind::HorizontalPodAutoscaler, &current, &rec).unwrap();
    let UndoWrite::Merge(patch) = plan.write else {
        panic!("merge patch expected")
    };
    assert_eq!(patch["spec"]["metrics"], Value::Null);
    assert!(patch["spec"].as_object().unwrap().contains_key("metrics"));
}

#[test]
fn a_removed_metric_is_added_back_and_other_target_kinds_restored() {
    let current = hpa(3, 10, json!([util("memory", 60)]));
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "hpa --cpu 60 --memory 60",
        json!({"spec.metrics[cpu].target.averageUtilization": "70%",
               "spec.metrics[memory].target": "averageValue 500Mi"}),
        json!({"spec.metrics[cpu].target.averageUtilization": "60%",
               "spec.metrics[memory].target": "averageUtilization 60%"}),
    );
    let plan = plan_undo(ObjectKind::HorizontalPodAutoscaler, &current, &rec).unwrap();
    // cpu was removed by someone since: that is drift.
    assert_eq!(plan.drift.len(), 1);
    assert!(plan.drift[0].contains("it is now (unset)"));
    let UndoWrite::Merge(patch) = plan.write else {
        panic!("merge patch expected")
    };
    assert_eq!(
        patch["spec"]["metrics"],
        json!([
            {"type": "Resource", "resource": {"name": "memory",
             "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
            util("cpu", 70)
        ])
    );
}

#[test]
fn undo_of_create_deletes_the_hpa() {
    let current = hpa(2, 6, json!([util("cpu", 80)]));
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "hpa --create --min 2 --max 6",
        json!({"spec.scaleTargetRef": null, "spec.minReplicas": null, "spec.maxReplicas": null,
               "spec.metrics[cpu].target.averageUtilization": null}),
        json!({"spec.scaleTargetRef": "apps/v1 Deployment orchestrator", "spec.minReplicas": 2,
               "spec.maxReplicas": 6, "spec.metrics[cpu].target.averageUtilization": "80%"}),
    );
    let plan = plan_undo(ObjectKind::HorizontalPodAutoscaler, &current, &rec).unwrap();
    assert_eq!(plan.write, UndoWrite::Delete);
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    assert_eq!(plan.changes.len(), 4);
    assert!(plan.changes.iter().all(|c| c.after.is_none()));
    let min = plan
        .changes
        .iter()
        .find(|c| c.field == FieldPath::MinReplicas)
        .unwrap();
    assert_eq!(min.before_text(), "2");
}

#[test]
fn resources_restore_with_null_for_keys_that_were_absent() {
    let rec = record(
        "deployment/orchestrator",
        "resources --requests cpu=1 --limits nvidia.com/gpu=1",
        json!({"spec.template.spec.containers[orchestrator].resources.requests.cpu": "500m",
               "spec.template.spec.containers[orchestrator].resources.limits.nvidia.com/gpu": null}),
        json!({"spec.template.spec.containers[orchestrator].resources.requests.cpu": "1000m",
               "spec.template.spec.containers[orchestrator].resources.limits.nvidia.com/gpu": 1}),
    );
    let plan = plan_undo(ObjectKind::Deployment, &deployment(), &rec).unwrap();
    // 1000m equals 1: no drift.
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    assert!(plan.restarts_pods);
    assert_eq!(
        plan.write,
        UndoWrite::Strategic(json!({
            "metadata": {"resourceVersion": "12"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "orchestrator", "resources": {
                    "requests": {"cpu": "500m"}, "limits": {"nvidia.com/gpu": null}}}
            ]}}}
        }))
    );
}

#[test]
fn statefulset_resources_restore_the_same_way() {
    let sts = json!({"metadata": {"name": "postgres", "resourceVersion": "3"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "postgres", "resources": {"requests": {"memory": "4Gi"}}}]}}}});
    let rec = record(
        "statefulset/postgres",
        "db resources --requests memory=4Gi",
        json!({"spec.template.spec.containers[postgres].resources.requests.memory": "2Gi"}),
        json!({"spec.template.spec.containers[postgres].resources.requests.memory": "4096Mi"}),
    );
    let plan = plan_undo(ObjectKind::StatefulSet, &sts, &rec).unwrap();
    assert!(plan.restarts_pods && plan.drift.is_empty());
    let UndoWrite::Strategic(patch) = plan.write else {
        panic!("strategic patch expected")
    };
    assert_eq!(
        patch["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "2Gi"
    );
}

const CONFIG: &str =
    "log_level: debug # changed since\ndatabase:\n  host: postgres\n  max_connections: 50 # pool\n";

fn configmap() -> Value {
    json!({"metadata": {"name": "orchestrator-config", "resourceVersion": "9"},
           "data": {"config.yaml": CONFIG, "other": "x"}})
}

#[test]
fn configmap_restores_max_connections_in_the_current_text() {
    let field = "data[\"config.yaml\"].database.max_connections";
    let rec = record(
        "configmap/orchestrator-config",
        "db connections 50",
        json!({ field: 20 }),
        json!({ field: 50 }),
    );
    let plan = plan_undo(ObjectKind::ConfigMap, &configmap(), &rec).unwrap();
    assert!(plan.drift.is_empty() && !plan.restarts_pods);
    assert_eq!(
        plan.changes,
        vec![Change::new(
            "configmap/orchestrator-config",
            field,
            Some(ChangeValue::count(50)),
            Some(ChangeValue::count(20))
        )]
    );
    assert_eq!(
        plan.write,
        UndoWrite::Merge(
            json!({"metadata": {"resourceVersion": "9"}, "data": {"config.yaml":
            "log_level: debug # changed since\ndatabase:\n  host: postgres\n  max_connections: 20 # pool\n"}})
        )
    );
}

#[test]
fn configmap_without_a_previous_value_is_refused() {
    let field = "data[\"config.yaml\"].database.max_connections";
    let rec = record(
        "configmap/orchestrator-config",
        "db connections 50",
        json!({ field: null }),
        json!({ field: 50 }),
    );
    let err = plan_undo(ObjectKind::ConfigMap, &configmap(), &rec).unwrap_err();
    assert!(err.message.contains("absent"), "{}", err.message);
}

#[test]
fn bad_records_are_refused() {
    let rec = record(
        "deployment/orchestrator",
        "x",
        json!({"spec.paused": true}),
        json!({}),
    );
    assert!(plan_undo(ObjectKind::Deployment, &deployment(), &rec).is_err());
    let rec = record(
        "deployment/orchestrator",
        "x",
        json!({"spec.replicas": "three"}),
        json!({}),
    );
    let err = plan_undo(ObjectKind::Deployment, &deployment(), &rec).unwrap_err();
    assert!(err.message.contains("not a number"));
    let rec = record("secret/x", "x", json!({}), json!({}));
    assert!(plan_undo(ObjectKind::Deployment, &deployment(), &rec).is_err());
    let rec = record(
        "horizontalpodautoscaler/orchestrator",
        "x",
        json!({"spec.replicas": 3}),
        json!({}),
    );
    assert!(plan_undo(ObjectKind::Deployment, &deployment(), &rec).is_err());
}

#[test]
fn the_most_recent_record_wins_and_ties_keep_the_order() {
    let at = |time: &str| {
        let mut r = record("deployment/x", "scale --replicas 1", json!({}), json!({}));
        r.time = time.into();
        r
    };
    let picked = most_recent(vec![
        ("a", at("2026-11-28T08:00:00Z")),
        ("b", at("2026-11-28T08:00:00.5Z")),
        ("c", at("not a time")),
        ("d", at("2026-11-28T08:00:00.500Z")),
    ]);
    assert_eq!(picked.map(|(tag, _)| tag), Some("b"));
    assert!(most_recent::<&str>(vec![]).is_none());
}

#[test]
fn config_undo_restarts_only_pods_that_loaded_the_change() {
    let changed = "2026-11-28T08:00:00Z";
    assert!(config_restart_needed(Some("2026-11-28T08:00:01Z"), changed));
    assert!(config_restart_needed(Some(changed), changed));
    // A restart in the same second as the change, written at whole seconds, came after it.
    assert!(config_restart_needed(Some(changed), "2026-11-28T08:00:00.750Z"));
    assert!(!config_restart_needed(Some("2026-11-28T07:59:59Z"), changed));
    assert!(!config_restart_needed(None, changed));
    assert!(config_restart_needed(Some("yesterday"), changed));
    assert_eq!(
        restart_patch("T"),
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "T"}}}}})
    );
}
