//! `hpa`: only the given fields change (checked in the store), validation before writing,
//! a missing HPA and `--create`, dry run, 409 retry, `--watch`, JSON, permissions.

use std::time::Duration;

use orchscale_sim::store::{ObjectKey, UpdatePart};
use orchscale_sim::{FaultRule, Flavor, Sim, SimOptions};
use serde_json::{Value, json};

use crate::harness::{
    NAMESPACE, can_send_sigint, object, real, run, sim, sim_of_with, start_until, stored_replicas, wait_ready,
};

fn hpa(sim: &Sim) -> Value {
    object(sim, "horizontalpodautoscalers", "orchestrator")
}

fn hpa_key() -> ObjectKey {
    ObjectKey::new("horizontalpodautoscalers", NAMESPACE, "orchestrator")
}

fn metric(name: &str, pct: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": pct}}})
}

/// A sim whose HPA controller syncs every second, as the "acts every ~1 s" world.
fn live_sim() -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(1),
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts")
}

/// A 1.33 cluster whose HPA controller resyncs every second (a real one: every 15 s), so that
/// a change's final view gets the controller's answer (HPAs have no observedGeneration).
fn resyncing_sim() -> Sim {
    sim_of_with(real(33, Flavor::Plain), Duration::from_secs(1))
}

/// Waits (bounded) until `check` holds for the HPA in the store.
fn wait_hpa(sim: &Sim, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(h) = sim.store().get(&hpa_key()).filter(|h| check(h)) {
            return h;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the HPA never {what}: {}", hpa(sim));
}

#[test]
fn min_and_max_keep_every_metric_and_record_the_change() {
    let sim = resyncing_sim();
    let before = hpa(&sim);
    let out = run(&sim, &["hpa", "--min", "5", "--max", "20"]);
    out.assert_code(0);
    let after = hpa(&sim);
    assert_eq!(after["spec"]["minReplicas"], 5);
    assert_eq!(after["spec"]["maxReplicas"], 20);
    assert_eq!(
        after["spec"]["metrics"], before["spec"]["metrics"],
        "metrics kept exactly"
    );
    assert_eq!(after["spec"]["behavior"], before["spec"]["behavior"]);
    assert!(
        out.stderr.contains("spec.minReplicas: 3 -> 5"),
        "preview:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("spec.maxReplicas: 10 -> 20"),
        "preview:\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("min 5 > current 3 replicas: the HPA will scale up to 5 now"),
        "expected effect:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Continue?"), "no prompt for an HPA change");
    // The final view is the controller's answer to the new spec, not its status from before
    // (1.33: no observedGeneration; its status changing after the write tells).
    assert!(!out.stderr.contains("predates"), "{}", out.stderr);
    assert!(out.stdout.contains("desired 5"), "final view:\n{}", out.stdout);

    let text = after["metadata"]["annotations"]["orchscale.io/last-change"]
        .as_str()
        .expect("audit annotation");
    let record: Value = serde_json::from_str(text).unwrap();
    assert_eq!(record["command"], "hpa --min 5 --max 20");
    assert_eq!(record["previous"]["spec.minReplicas"], 3);
    assert_eq!(record["previous"]["spec.maxReplicas"], 10);
    let patches: Vec<_> = sim
        .persisted_writes()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(
        patches.len(),
        1,
        "the change with its audit record, in one write: {patches:?}"
    );
    assert!(
        patches
            .iter()
            .all(|r| r.path.ends_with("/horizontalpodautoscalers/orchestrator")
                && r.query.contains("fieldManager=kubectl-orchscale")),
        "{patches:?}"
    );
    assert!(
        patches[0].body.contains("resourceVersion"),
        "guarded write: {}",
        patches[0].body
    );
}

#[test]
fn cpu_changes_only_the_cpu_target() {
    let sim = sim();
    let before = hpa(&sim);
    let out = run(&sim, &["hpa", "--cpu", "60"]);
    out.assert_code(0);
    let after = hpa(&sim);
    assert_eq!(
        after["spec"]["metrics"],
        json!([metric("cpu", 60), metric("memory", 80)]),
        "only the CPU target moved"
    );
    for field in ["minReplicas", "maxReplicas", "behavior", "scaleTargetRef"] {
        assert_eq!(after["spec"][field], before["spec"][field], "{field} unchanged");
    }
    assert!(
        out.stderr
            .contains("spec.metrics[cpu].target.averageUtilization: 70% -> 60%"),
        "{}",
        out.stderr
    );
}

#[test]
fn memory_is_added_when_the_hpa_has_none() {
    let sim = sim();
    sim.store()
        .modify(&hpa_key(), UpdatePart::Main, |h| {
            h["spec"]["metrics"] = json!([metric("cpu", 70)]);
            true
        })
        .unwrap();
    let before = hpa(&sim);
    run(&sim, &["hpa", "--memory", "75"]).assert_code(0);
    let after = hpa(&sim);
    assert_eq!(
        after["spec"]["metrics"],
        json!([metric("cpu", 70), metric("memory", 75)])
    );
    assert_eq!(after["spec"]["minReplicas"], before["spec"]["minReplicas"]);
    assert_eq!(after["spec"]["maxReplicas"], before["spec"]["maxReplicas"]);
    assert_eq!(after["spec"]["behavior"], before["spec"]["behavior"]);
}

#[test]
fn min_above_max_is_refused_before_any_request() {
    let sim = sim();
    let out = run(&sim, &["hpa", "--min", "8", "--max", "4"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--min 8 is above --max 4"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert!(
        sim.requests().is_empty(),
        "refused before connecting: {:?}",
        sim.requests()
    );
}

#[test]
fn min_above_the_current_max_is_refused_and_nothing_written() {
    let sim = sim();
    let before = hpa(&sim);
    let out = run(&sim, &["hpa", "--min", "12"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("--min 12 is above the HPA's current maxReplicas 10"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(hpa(&sim)["spec"], before["spec"]);
}

#[test]
fn bad_values_and_no_field_are_usage_errors() {
    let sim = sim();
    for args in [
        &["hpa"][..],
        &["hpa", "--cpu", "0"],
        &["hpa", "--memory", "-5"],
        &["hpa", "--min", "0"],
        &["hpa", "--create", "--min", "2"],
    ] {
        let out = run(&sim, args);
        out.assert_code(2);
        assert!(out.stderr.contains("hint:"), "{args:?}: {}", out.stderr);
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
}

#[test]
fn a_missing_hpa_is_an_error_that_names_create() {
    let sim = sim();
    sim.store().delete(&hpa_key(), None).unwrap();
    let out = run(&sim, &["hpa", "--min", "5"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("horizontalpodautoscaler \"orchestrator\" not found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint:") && out.stderr.contains("--create"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty());
}

#[test]
fn create_makes_a_v2_hpa_that_the_controller_acts_on() {
    // Before 1.36 a new HPA, too, waits in the controller's queue for its resync
    // (horizontal.go `enqueueHPA`: `AddRateLimited`).
    let sim = resyncing_sim();
    wait_ready(&sim, 3);
    sim.store().delete(&hpa_key(), None).unwrap();
    let out = run(
        &sim,
        &["hpa", "--create", "--min", "2", "--max", "6", "--cpu", "50"],
    );
    out.assert_code(0);
    let created = hpa(&sim);
    assert_eq!(created["apiVersion"], "autoscaling/v2");
    assert_eq!(
        created["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"})
    );
    assert_eq!(created["spec"]["minReplicas"], 2);
    assert_eq!(created["spec"]["maxReplicas"], 6);
    assert_eq!(created["spec"]["metrics"], json!([metric("cpu", 50)]));
    let record = created["metadata"]["annotations"]["orchscale.io/last-change"]
        .as_str()
        .expect("audit annotation");
    assert!(
        record.contains("hpa --create --min 2 --max 6 --cpu 50"),
        "{record}"
    );
    let acted = wait_hpa(&sim, "got a status from the controller", |h| {
        h["status"]["currentReplicas"].is_i64()
            && h["status"]["desiredReplicas"].is_i64()
            && h["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "ScalingActive" || c["type"] == "AbleToScale")
            })
    });
    assert!(acted["status"]["currentMetrics"].is_array(), "{acted}");
    let creates: Vec<_> = sim
        .persisted_writes()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert!(creates[0].query.contains("fieldManager=kubectl-orchscale"));
}

#[test]
fn create_dry_run_persists_nothing() {
    let sim = sim();
    sim.store().delete(&hpa_key(), None).unwrap();
    let out = run(
        &sim,
        &["hpa", "--create", "--min", "2", "--max", "6", "--dry-run"],
    );
    out.assert_code(0);
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert!(sim.store().get(&hpa_key()).is_none(), "nothing created");
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn dry_run_persists_nothing() {
    let sim = sim();
    let before = hpa(&sim);
    let out = run(&sim, &["hpa", "--min", "5", "--cpu", "60", "--dry-run"]);
    out.assert_code(0);
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert_eq!(hpa(&sim)["spec"], before["spec"]);
    assert_eq!(
        hpa(&sim)["metadata"]["annotations"],
        before["metadata"]["annotations"]
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    let patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(!patches.is_empty());
    assert!(
        patches.iter().all(|r| r.query.contains("dryRun=All")),
        "{patches:?}"
    );
}

#[test]
fn a_conflict_is_retried_and_the_result_is_exact() {
    let sim = resyncing_sim();
    let before = hpa(&sim);
    sim.faults().fail_next(FaultRule {
        method: Some("PATCH".into()),
        resource: Some("horizontalpodautoscalers".into()),
        status: 409,
        retry_after: None,
        count: 1,
    });
    let out = run(&sim, &["hpa", "--min", "4", "--max", "12"]);
    out.assert_code(0);
    let after = hpa(&sim);
    assert_eq!(after["spec"]["minReplicas"], 4);
    assert_eq!(after["spec"]["maxReplicas"], 12);
    assert_eq!(after["spec"]["metrics"], before["spec"]["metrics"]);
    let patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches[0].status, 409, "{patches:?}");
    assert_eq!(
        patches.len(),
        2,
        "409, then the re-planned change with its record: {patches:?}"
    );
}

#[test]
fn watch_shows_the_scale_up_to_the_new_min() {
    let sim = live_sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["hpa", "--min", "5", "--watch", "--timeout", "20s"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 5);
    assert!(
        !out.stderr.contains('\x1b'),
        "plain lines, no escape codes:\n{:?}",
        out.stderr
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("replicas: current") && l.contains("desired 5")),
        "a plain line with the new desired count:\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("replicas: current 5, desired 5")),
        "the scale-up reached 5 replicas:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("event SuccessfulRescale: New size: 5"),
        "the scaling event:\n{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("replicas: current 5, desired 5 (min 5, max 10)"),
        "final state:\n{}",
        out.stdout
    );
}

#[test]
fn json_output_has_the_spec_fields() {
    let sim = resyncing_sim();
    let out = run(&sim, &["hpa", "--min", "4", "--cpu", "65", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "hpa");
    assert_eq!(doc["context"], "orchscale-sim");
    assert_eq!(doc["namespace"], "llm-orchestrator");
    assert_eq!(doc["dryRun"], false);
    assert_eq!(doc["result"], "ok");
    assert_eq!(
        doc["changes"][0],
        json!({"object": "horizontalpodautoscaler/orchestrator", "field": "spec.minReplicas", "before": 3, "after": 4})
    );
    assert_eq!(doc["changes"].as_array().map(Vec::len), Some(2));
    let summary = &doc["hpa"];
    assert_eq!(summary["min"], 4);
    assert_eq!(summary["max"], 10);
    assert_eq!(summary["metrics"][0]["name"], "cpu");
    assert_eq!(summary["metrics"][0]["targetUtilizationPercent"], 65);
    assert_eq!(summary["metrics"][1]["targetUtilizationPercent"], 80);
    assert!(summary.get("currentReplicas").is_some() && summary.get("desiredReplicas").is_some());
    assert!(
        !out.stderr.contains("Changes:"),
        "no preview text in JSON mode:\n{}",
        out.stderr
    );
}

#[test]
fn watch_alone_in_json_mode_ends_at_the_timeout_with_the_state() {
    let sim = live_sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["hpa", "--watch", "--timeout", "3s", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["changes"], json!([]));
    assert_eq!(doc["hpa"]["min"], 3);
    assert!(doc["hpa"]["currentReplicas"].is_i64(), "{doc}");
    assert!(sim.persisted_writes().is_empty() || sim.persisted_writes().iter().all(|r| r.method == "GET"));
    assert!(
        sim.requests().iter().any(|r| r.query.contains("watch=true")),
        "followed with watches"
    );
}

#[test]
fn a_missing_permission_is_named_and_nothing_is_written() {
    let sim = sim();
    sim.faults().deny("patch", "horizontalpodautoscalers");
    let before = hpa(&sim);
    let out = run(&sim, &["hpa", "--min", "5"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch horizontalpodautoscalers in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(hpa(&sim)["spec"], before["spec"]);
}

#[test]
fn min_above_the_clusters_room_is_a_warning_not_an_error() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["hpa", "--min", "40", "--max", "50", "--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("--min 40, but only about"),
        "room warning:\n{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn a_target_above_100_is_legal_with_a_warning() {
    let sim = sim();
    let out = run(&sim, &["hpa", "--cpu", "150"]);
    out.assert_code(0);
    assert!(out.stderr.contains("above 100% is legal"), "{}", out.stderr);
    assert_eq!(
        hpa(&sim)["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        150
    );
}

/// Runs `args`, waits until the watch shows its panel, then interrupts it as Ctrl-C would.
fn interrupt_watch(sim: &Sim, args: &[&str]) -> (Option<i32>, String) {
    start_until(sim, args, |line| line.starts_with("HPA orchestrator")).interrupt()
}

#[test]
fn ctrl_c_ends_a_watch_alone_with_exit_0() {
    if !can_send_sigint() {
        return;
    }
    let sim = sim();
    let (code, stderr) = interrupt_watch(&sim, &["hpa", "--watch", "--timeout", "2m"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("stopped watching horizontalpodautoscaler/orchestrator (Ctrl-C)"),
        "{stderr}"
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn ctrl_c_after_a_change_exits_130_and_says_what_was_applied() {
    if !can_send_sigint() {
        return;
    }
    let sim = sim();
    let (code, stderr) = interrupt_watch(&sim, &["hpa", "--max", "15", "--watch", "--timeout", "2m"]);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("maxReplicas 10 -> 15"),
        "{stderr}"
    );
    assert_eq!(hpa(&sim)["spec"]["maxReplicas"], 15, "the change stays applied");
}

#[test]
fn a_gitops_managed_hpa_gets_the_revert_warning() {
    let sim = sim();
    sim.store()
        .modify(&hpa_key(), UpdatePart::Main, |h| {
            h["metadata"]["labels"] = json!({"argocd.argoproj.io/instance": "orchestrator-prod"});
            true
        })
        .unwrap();
    let out = run(&sim, &["hpa", "--max", "12", "-o", "json"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("managed by Argo CD (application orchestrator-prod)"),
        "warned even in JSON mode:\n{}",
        out.stderr
    );
    assert_eq!(out.json()["hpa"]["max"], 12);
}

#[test]
fn create_refuses_a_second_hpa_on_the_same_deployment() {
    let sim = sim();
    let out = run(
        &sim,
        &[
            "hpa",
            "--hpa",
            "orchestrator-v2",
            "--create",
            "--min",
            "2",
            "--max",
            "4",
        ],
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("horizontalpodautoscaler/orchestrator already scales deployment/orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn a_missing_hpa_name_points_to_the_one_that_exists() {
    let sim = sim();
    let out = run(&sim, &["hpa", "--hpa", "web", "--min", "4"]);
    out.assert_code(1);
    assert!(out.stderr.contains("use `--hpa orchestrator`"), "{}", out.stderr);
}

#[test]
fn the_hpa_deleted_while_watching_is_a_failure() {
    let sim = sim();
    let store = sim.store().clone();
    let deleter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        store.delete(&hpa_key(), None).unwrap();
    });
    let out = run(&sim, &["hpa", "--watch", "--timeout", "30s"]);
    deleter.join().unwrap();
    out.assert_code(1);
    assert!(
        out.stderr.contains("was deleted while watching"),
        "{}",
        out.stderr
    );
}

#[test]
fn cut_watches_are_resumed_and_the_scale_up_is_still_seen() {
    let sim = live_sim();
    wait_ready(&sim, 3);
    sim.faults().cut_watches_after(2);
    let out = run(
        &sim,
        &["hpa", "--min", "4", "--watch", "--timeout", "8s", "-o", "json"],
    );
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["hpa"]["min"], 4);
    assert_eq!(doc["hpa"]["desiredReplicas"], 4, "{doc}");
    assert_eq!(doc["hpa"]["currentReplicas"], 4, "{doc}");
    assert_eq!(doc["changes"][0]["field"], "spec.minReplicas");
}

#[test]
fn create_checks_the_create_permission_first() {
    let sim = sim();
    sim.store().delete(&hpa_key(), None).unwrap();
    sim.faults().deny("create", "horizontalpodautoscalers");
    let out = run(&sim, &["hpa", "--create", "--min", "2", "--max", "6"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: create horizontalpodautoscalers in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.store().get(&hpa_key()).is_none());
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}
