//! `undo`: the most recent recorded change is reverted (checked in the store), a second undo
//! redoes it, creates are deleted, drift and pod restarts need --yes, dry run, JSON.

use orchscale_sim::Sim;
use orchscale_sim::store::{ObjectKey, UpdatePart};
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, live_pods, object, run, sim, stored_replicas, wait_ready};

const ANNOTATION: &str = "orchscale.io/last-change";

fn key(resource: &str, name: &str) -> ObjectKey {
    ObjectKey::new(resource, NAMESPACE, name)
}

fn hpa(sim: &Sim) -> Value {
    object(sim, "horizontalpodautoscalers", "orchestrator")
}

fn metric(name: &str, pct: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": pct}}})
}

fn record_of(object: &Value) -> Value {
    let text = object["metadata"]["annotations"][ANNOTATION]
        .as_str()
        .unwrap_or_else(|| panic!("no record on {}", object["metadata"]["name"]));
    serde_json::from_str(text).unwrap()
}

/// Edits an object in the store as someone else would (kubectl edit).
fn edit(sim: &Sim, resource: &str, name: &str, f: impl FnOnce(&mut Value)) {
    sim.store()
        .modify(&key(resource, name), UpdatePart::Main, |o| {
            f(o);
            true
        })
        .unwrap();
}

fn writes(sim: &Sim) -> Vec<String> {
    sim.persisted_writes()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn scale_then_undo_goes_back_and_a_second_undo_redoes() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "5"]).assert_code(0);
    assert_eq!(stored_replicas(&sim), 5);

    let out = run(&sim, &["undo"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 3);
    assert_eq!(live_pods(&sim).len(), 3, "the rollout finished at 3 pods");
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert!(
        out.stderr.contains("undoing `scale --replicas 5` made at"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("spec.replicas: 5 -> 3"), "{}", out.stderr);
    assert!(!out.stderr.contains("Continue?"), "no prompt for a scale");
    assert!(
        out.stdout
            .contains("back to its values before `scale --replicas 5`")
    );
    let record = record_of(&d);
    assert_eq!(record["command"], "undo");
    assert_eq!(record["previous"]["spec.replicas"], 5);
    assert_eq!(record["written"]["spec.replicas"], 3);

    // The undo is recorded like any change: undoing it redoes the scale.
    let out = run(&sim, &["undo"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("redoes the change it reverted"),
        "{}",
        out.stderr
    );
    assert_eq!(stored_replicas(&sim), 5);
}

#[test]
fn hpa_bounds_are_restored_and_metrics_kept_exactly() {
    let sim = sim();
    let original = hpa(&sim);
    // The sim's HPA never resyncs: no wait for its answer to the change (1.33: no
    // observedGeneration), which is not what this test is about.
    run(&sim, &["hpa", "--min", "5", "--max", "20", "--timeout", "1s"]).assert_code(0);
    let out = run(&sim, &["undo"]);
    out.assert_code(0);
    let after = hpa(&sim);
    assert_eq!(after["spec"]["minReplicas"], 3);
    assert_eq!(after["spec"]["maxReplicas"], 10);
    assert_eq!(after["spec"]["metrics"], original["spec"]["metrics"]);
    assert_eq!(after["spec"]["behavior"], original["spec"]["behavior"]);
    assert!(out.stderr.contains("spec.minReplicas: 5 -> 3"), "{}", out.stderr);
    let spec_patches: Vec<Value> = sim
        .persisted_writes()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .filter(|p| p.get("spec").is_some())
        .collect();
    let last = spec_patches.last().unwrap();
    assert!(
        last["metadata"]["resourceVersion"].is_string(),
        "guarded write: {last}"
    );
    assert!(last["spec"].get("metrics").is_none(), "metrics untouched: {last}");
}

#[test]
fn a_metric_the_change_added_is_removed_again() {
    let sim = sim();
    edit(&sim, "horizontalpodautoscalers", "orchestrator", |h| {
        h["spec"]["metrics"] = json!([metric("cpu", 70)]);
    });
    run(&sim, &["hpa", "--memory", "75"]).assert_code(0);
    assert_eq!(
        hpa(&sim)["spec"]["metrics"],
        json!([metric("cpu", 70), metric("memory", 75)])
    );
    run(&sim, &["undo"]).assert_code(0);
    assert_eq!(hpa(&sim)["spec"]["metrics"], json!([metric("cpu", 70)]));
}

#[test]
fn undo_of_create_deletes_the_hpa_after_asking() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.store()
        .delete(&key("horizontalpodautoscalers", "orchestrator"), None)
        .unwrap();
    run(&sim, &["hpa", "--create", "--min", "2", "--max", "6"]).assert_code(0);
    sim.clear_requests();

    // Deleting is asked first: no terminal and no --yes refuses.
    let out = run(&sim, &["undo"]);
    out.assert_code(3);
    assert!(out.stderr.contains("will be deleted"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));

    let out = run(&sim, &["undo", "--yes"]);
    out.assert_code(0);
    assert!(
        sim.store()
            .get(&key("horizontalpodautoscalers", "orchestrator"))
            .is_none(),
        "the HPA is gone"
    );
    assert!(
        out.stderr
            .contains("undoing `hpa --create --min 2 --max 6` made at"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("is gone, as before `hpa --create --min 2 --max 6` created it"),
        "{}",
        out.stdout
    );
}

#[test]
fn nothing_recorded_is_an_error_with_a_hint() {
    let sim = sim();
    let out = run(&sim, &["undo"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("no change recorded by kubectl-orchscale in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty());
    let json = run(&sim, &["undo", "-o", "json"]).json();
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no change recorded")
    );
}

#[test]
fn a_value_changed_since_needs_yes() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["hpa", "--max", "20"]).assert_code(0);
    edit(&sim, "horizontalpodautoscalers", "orchestrator", |h| {
        h["spec"]["maxReplicas"] = json!(15);
    });
    sim.clear_requests();

    let out = run(&sim, &["undo"]);
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("spec.maxReplicas was changed since `hpa --max 20`: it set 20, it is now 15"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));
    assert_eq!(hpa(&sim)["spec"]["maxReplicas"], 15);

    run(&sim, &["undo", "--yes"]).assert_code(0);
    assert_eq!(hpa(&sim)["spec"]["maxReplicas"], 10);
}

#[test]
fn dry_run_persists_nothing() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(0);
    let before = object(&sim, "deployments", "orchestrator");
    sim.clear_requests();
    let out = run(&sim, &["undo", "--dry-run", "-o", "json"]);
    out.assert_code(0);
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.query.contains("dryRun=All"))
    );
    let after = object(&sim, "deployments", "orchestrator");
    assert_eq!(after["spec"]["replicas"], 4);
    assert_eq!(
        after["metadata"]["annotations"][ANNOTATION],
        before["metadata"]["annotations"][ANNOTATION]
    );
    let doc = out.json();
    assert_eq!(doc["dryRun"], true);
    assert_eq!(doc["changes"][0]["after"], 3);
}

/// A `resources` change on the orchestrator container as that command would record it.
fn hand_made_resources_change(sim: &Sim) {
    let field = |k: &str| format!("spec.template.spec.containers[orchestrator].resources.{k}");
    let record = json!({
        "command": "resources --requests cpu=750m,nvidia.com/gpu=1 --limits nvidia.com/gpu=1",
        "time": "2099-01-01T00:00:00Z",
        "user": "alice",
        "object": "deployment/orchestrator",
        "previous": {field("requests.cpu"): "500m", field("requests.nvidia.com/gpu"): null,
                     field("limits.nvidia.com/gpu"): null},
        "written": {field("requests.cpu"): "750m", field("requests.nvidia.com/gpu"): 1,
                    field("limits.nvidia.com/gpu"): 1},
    });
    edit(sim, "deployments", "orchestrator", |d| {
        let c = &mut d["spec"]["template"]["spec"]["containers"][0];
        c["resources"]["requests"]["cpu"] = json!("750m");
        c["resources"]["requests"]["nvidia.com/gpu"] = json!("1");
        c["resources"]["limits"]["nvidia.com/gpu"] = json!("1");
        d["metadata"]["annotations"] = json!({ ANNOTATION: record.to_string() });
    });
}

#[test]
fn a_restore_that_restarts_pods_asks_and_follows_the_rollout() {
    let sim = sim();
    wait_ready(&sim, 3);
    hand_made_resources_change(&sim);
    wait_ready(&sim, 3);
    sim.clear_requests();

    let out = run(&sim, &["undo"]);
    out.assert_code(3);
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));
    assert!(out.stderr.contains("by alice"), "{}", out.stderr);

    let out = run(&sim, &["undo", "--yes"]);
    out.assert_code(0);
    let d = object(&sim, "deployments", "orchestrator");
    let resources = &d["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources["requests"],
        json!({"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"})
    );
    assert_eq!(resources["limits"], json!({"cpu": "1", "memory": "2Gi"}));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][1]["name"],
        "log-shipper"
    );
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 3);
    let patch = sim
        .persisted_writes()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.body.contains("containers"))
        .expect("the restore was written");
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
}

#[test]
fn configmap_restore_edits_only_max_connections() {
    let sim = sim();
    let field = "data[\"config.yaml\"].database.max_connections";
    let cm = object(&sim, "configmaps", "orchestrator-config");
    let original = cm["data"]["config.yaml"].as_str().unwrap().to_string();
    let record = json!({
        "command": "db connections 50", "time": "2099-01-01T00:00:00Z",
        "object": "configmap/orchestrator-config",
        "previous": { field: 20 }, "written": { field: 50 },
    });
    // The change, and an unrelated edit someone made after it.
    let changed = original
        .replace("max_connections: 20", "max_connections: 50")
        .replacen("database:", "extra: kept\ndatabase:", 1);
    edit(&sim, "configmaps", "orchestrator-config", |c| {
        c["data"]["config.yaml"] = json!(changed);
        c["metadata"]["annotations"] = json!({ ANNOTATION: record.to_string() });
    });

    let out = run(&sim, &["undo", "-o", "json"]);
    out.assert_code(0);
    let text = object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(text, original.replacen("database:", "extra: kept\ndatabase:", 1));
    let doc = out.json();
    assert_eq!(doc["changes"][0]["field"], field);
    assert_eq!(doc["changes"][0]["before"], 50);
    assert_eq!(doc["changes"][0]["after"], 20);
}

#[test]
fn json_output_names_what_was_undone() {
    let sim = sim();
    run(&sim, &["hpa", "--cpu", "60"]).assert_code(0);
    let out = run(&sim, &["undo", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "undo");
    assert_eq!(doc["namespace"], NAMESPACE);
    assert_eq!(doc["dryRun"], false);
    assert_eq!(doc["result"], "ok");
    assert!(doc["context"].is_string());
    assert_eq!(doc["undone"]["command"], "hpa --cpu 60");
    assert_eq!(doc["undone"]["object"], "horizontalpodautoscaler/orchestrator");
    assert!(doc["undone"]["time"].is_string());
    assert_eq!(
        doc["changes"],
        json!([{"object": "horizontalpodautoscaler/orchestrator",
                "field": "spec.metrics[cpu].target.averageUtilization",
                "before": 60, "after": 70}])
    );
    assert_eq!(hpa(&sim)["spec"]["metrics"][0], metric("cpu", 70));
}

#[test]
fn the_most_recent_record_wins_across_objects() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["hpa", "--max", "12"]).assert_code(0);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(0);
    run(&sim, &["undo"]).assert_code(0);
    assert_eq!(stored_replicas(&sim), 3);
    assert_eq!(hpa(&sim)["spec"]["maxReplicas"], 12, "the older change stays");
}

#[test]
fn missing_permission_writes_nothing() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(0);
    sim.faults().deny("patch", "deployments");
    sim.clear_requests();
    let out = run(&sim, &["undo"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch deployments in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));
}

#[test]
fn config_undo_restarts_pods_that_loaded_the_change_after_asking() {
    let sim = sim();
    wait_ready(&sim, 3);
    let field = "data[\"config.yaml\"].database.max_connections";
    let original = object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let record = json!({
        "command": "db connections 50 --restart", "time": "2026-01-01T00:00:00Z",
        "object": "configmap/orchestrator-config",
        "previous": { field: 20 }, "written": { field: 50 },
    });
    edit(&sim, "configmaps", "orchestrator-config", |c| {
        c["data"]["config.yaml"] = json!(original.replace("max_connections: 20", "max_connections: 50"));
        c["metadata"]["annotations"] = json!({ ANNOTATION: record.to_string() });
    });
    // The pods were restarted after the change, so they run with 50.
    edit(&sim, "deployments", "orchestrator", |d| {
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:05Z"});
    });
    wait_ready(&sim, 3);
    sim.clear_requests();

    let out = run(&sim, &["undo"]);
    out.assert_code(3);
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));
    assert!(
        out.stderr.contains("restarts so they load the restored one"),
        "{}",
        out.stderr
    );

    let out = run(&sim, &["undo", "--yes", "-o", "json"]);
    out.assert_code(0);
    let config = object(&sim, "configmaps", "orchestrator-config");
    assert_eq!(config["data"]["config.yaml"], original);
    let d = object(&sim, "deployments", "orchestrator");
    let restarted = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap();
    assert_ne!(restarted, "2026-01-01T00:00:05Z", "restarted again");
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 3);
    let doc = out.json();
    assert_eq!(doc["changes"].as_array().unwrap().len(), 2);
    assert_eq!(doc["changes"][1]["object"], "deployment/orchestrator");
}

/// Waits (bounded) until the postgres StatefulSet has rolled out and is ready.
fn wait_postgres_ready(sim: &Sim) -> Value {
    for _ in 0..200 {
        let s = object(sim, "statefulsets", "postgres");
        let status = &s["status"];
        if status["readyReplicas"] == 1
            && status["currentRevision"] == status["updateRevision"]
            && status["observedGeneration"] == s["metadata"]["generation"]
        {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("postgres never became ready");
}

#[test]
fn db_resources_restore_follows_the_statefulset_rollout() {
    let sim = sim();
    wait_postgres_ready(&sim);
    let field = "spec.template.spec.containers[postgres].resources.requests.memory";
    let record = json!({
        "command": "db resources --requests memory=1536Mi", "time": "2099-01-01T00:00:00Z",
        "object": "statefulset/postgres",
        "previous": { field: "1Gi" }, "written": { field: "1536Mi" },
    });
    edit(&sim, "statefulsets", "postgres", |s| {
        s["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("1536Mi");
        s["metadata"]["annotations"] = json!({ ANNOTATION: record.to_string() });
    });
    wait_postgres_ready(&sim);
    sim.clear_requests();

    run(&sim, &["undo"]).assert_code(3);
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));

    let out = run(&sim, &["undo", "--yes"]);
    out.assert_code(0);
    let s = wait_postgres_ready(&sim);
    let resources = &s["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
    assert_eq!(resources["limits"], json!({"cpu": "1", "memory": "2Gi"}));
    assert!(out.stderr.contains("statefulset/postgres"), "{}", out.stderr);
    assert!(out.stderr.contains("DOWNTIME: "), "{}", out.stderr);
}

#[test]
fn an_unreadable_record_is_skipped_with_a_warning() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(0);
    edit(&sim, "configmaps", "orchestrator-config", |c| {
        c["metadata"]["annotations"] = json!({ ANNOTATION: "{edited by hand" });
    });
    let out = run(&sim, &["undo"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "configmap/orchestrator-config: the orchscale.io/last-change annotation is not readable"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(stored_replicas(&sim), 3);
}

#[test]
fn db_connections_then_undo_restores_the_pool_and_restarts_only_when_needed() {
    let sim = sim();
    wait_ready(&sim, 3);
    let original = object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let restarted_at = |sim: &Sim| {
        object(sim, "deployments", "orchestrator")["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .clone()
    };

    // Not restarted: the pods still run with 20, so the undo restarts nothing and asks nothing.
    run(&sim, &["db", "connections", "15", "--no-restart"]).assert_code(0);
    let out = run(&sim, &["undo"]);
    out.assert_code(0);
    assert!(out.stderr.contains("no pod restarts"), "{}", out.stderr);
    assert_eq!(
        object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"],
        original
    );
    assert_eq!(restarted_at(&sim), Value::Null);

    // Restarted: the pods loaded 15, so the undo restarts them again, after asking.
    run(&sim, &["db", "connections", "15", "--restart", "--yes"]).assert_code(0);
    let first_restart = restarted_at(&sim);
    assert!(first_restart.is_string());
    run(&sim, &["undo"]).assert_code(3);
    let out = run(&sim, &["undo", "--yes"]);
    out.assert_code(0);
    assert_eq!(
        object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"],
        original
    );
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert!(
        out.stdout.contains("deployment/orchestrator restarted"),
        "{}",
        out.stdout
    );
    assert_ne!(restarted_at(&sim), first_restart, "restarted again");
}

#[test]
fn a_restored_count_outside_the_hpa_range_is_warned_about() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "5"]).assert_code(0);
    // The HPA's floor rises above the count the undo would restore (its controller may act on
    // that at once, so the preview is checked with a dry run, which never prompts).
    edit(&sim, "horizontalpodautoscalers", "orchestrator", |h| {
        h["spec"]["minReplicas"] = json!(4);
    });
    sim.clear_requests();
    let out = run(&sim, &["undo", "--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "HPA orchestrator keeps the deployment between 4 and 10 replicas: it will move the restored 3"
        ),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", writes(&sim));
}

#[test]
fn records_written_before_the_v2_format_still_undo() {
    // Exactly what kubectl-orchscale wrote before records carried `v` and `id` (and before the
    // record travelled in the same write as the change): a separate annotation patch.
    let sim = sim();
    wait_ready(&sim, 3);
    let v1 = json!({
        "command": "scale --replicas 5",
        "time": "2026-11-28T08:00:00.123456789Z",
        "user": "orchscale-sim",
        "object": "deployment/orchestrator",
        "previous": {"spec.replicas": 3},
        "written": {"spec.replicas": 5},
    });
    edit(&sim, "deployments", "orchestrator", |d| {
        d["spec"]["replicas"] = json!(5);
        d["metadata"]["annotations"] = json!({ ANNOTATION: v1.to_string() });
    });
    wait_ready(&sim, 5);
    let out = run(&sim, &["undo", "--yes", "-o", "json"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("was changed since"), "{}", out.stderr);
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(d["spec"]["replicas"], 3);
    let record: Value =
        serde_json::from_str(d["metadata"]["annotations"][ANNOTATION].as_str().unwrap()).unwrap();
    assert_eq!(record["v"], 2, "the undo writes the current format: {record}");
    assert_eq!(record["previous"]["spec.replicas"], 5);
    assert_eq!(out.json()["undone"]["command"], "scale --replicas 5");
}
