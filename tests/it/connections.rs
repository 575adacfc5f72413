//! `db connections N`: exactly one line of config.yaml changes (checked in the store), the
//! restart rolls every pod, `--no-restart`, the pool warning, confirmation, dry run, bad input,
//! a missing key and a 409 on the configmap patch.

use orchscale_sim::FaultRule;
use orchscale_sim::seed::CONFIG_YAML;
use orchscale_sim::store::{ObjectKey, UpdatePart};
use serde_json::Value;

use crate::harness::{NAMESPACE, live_pods, object, run, sim};

fn config_text(sim: &orchscale_sim::Sim) -> String {
    object(sim, "configmaps", "orchestrator-config")["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml")
        .to_string()
}

/// Line pairs that differ between two texts of the same line count.
fn differing_lines(before: &str, after: &str) -> Vec<(String, String)> {
    assert_eq!(before.lines().count(), after.lines().count(), "{after}");
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn deployment_writes(sim: &orchscale_sim::Sim) -> Vec<orchscale_sim::LoggedRequest> {
    sim.persisted_writes()
        .into_iter()
        .filter(|r| r.path.contains("/deployments/"))
        .collect()
}

#[test]
fn changes_one_line_restarts_every_pod_and_records_the_change() {
    let sim = sim();
    crate::harness::wait_ready(&sim, 3);
    let old_pods: Vec<String> = live_pods(&sim)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let out = run(&sim, &["db", "connections", "50", "--yes", "-o", "json"]);
    out.assert_code(0);

    let after = config_text(&sim);
    assert_eq!(
        differing_lines(CONFIG_YAML, &after),
        [(
            "  max_connections: 20".to_string(),
            "  max_connections: 50".to_string()
        )]
    );
    assert_eq!(
        after,
        CONFIG_YAML.replace("max_connections: 20", "max_connections: 50")
    );

    let cm = object(&sim, "configmaps", "orchestrator-config");
    let record: Value = serde_json::from_str(
        cm["metadata"]["annotations"]["orchscale.io/last-change"]
            .as_str()
            .expect("audit annotation"),
    )
    .unwrap();
    assert_eq!(record["command"], "db connections 50");
    assert_eq!(record["object"], "configmap/orchestrator-config");
    assert_eq!(
        record["previous"]["data[\"config.yaml\"].database.max_connections"],
        20
    );

    // The restart: kubectl's annotation on the template, the rollout done on new pods only.
    let d = object(&sim, "deployments", "orchestrator");
    let restarted_at = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .expect("restartedAt on the pod template");
    assert!(
        restarted_at.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{restarted_at}"
    );
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 3);
    let pods = live_pods(&sim);
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(!old_pods.contains(&name.to_string()), "{name} was restarted");
        let ready = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready, "{name} Ready");
    }
    let restart = deployment_writes(&sim);
    assert_eq!(restart.len(), 1, "one write to the deployment: {restart:?}");
    assert_eq!(
        restart[0].content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert!(restart[0].query.contains("fieldManager=kubectl-orchscale"));

    let doc = out.json();
    assert_eq!(doc["command"], "db connections");
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["dryRun"], false);
    assert_eq!(doc["maxConnections"]["before"], 20);
    assert_eq!(doc["maxConnections"]["after"], 50);
    assert_eq!(doc["restarted"], true);
    assert_eq!(doc["changes"][0]["before"], 20);
    assert_eq!(doc["changes"][0]["after"], 50);
    assert_eq!(doc["changes"][1]["object"], "deployment/orchestrator");
}

#[test]
fn preview_shows_the_line_and_the_restart() {
    let sim = sim();
    let out = run(&sim, &["db", "connections", "30", "--restart", "--yes"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("config.yaml line 9: \"  max_connections: 20\" -> \"  max_connections: 30\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("3 pods restart, RollingUpdate maxSurge 1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Target: context"), "{}", out.stderr);
    assert!(out.stdout.contains("restarted: 3/3 pods Ready"), "{}", out.stdout);
    let writes = sim.persisted_writes();
    let patch = writes
        .iter()
        .find(|r| r.path.ends_with("/configmaps/orchestrator-config"))
        .expect("configmap patch");
    assert!(patch.body.contains("resourceVersion"), "guarded: {}", patch.body);
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
}

#[test]
fn no_restart_changes_only_the_config() {
    let sim = sim();
    let out = run(&sim, &["db", "connections", "40", "--no-restart", "-o", "json"]);
    out.assert_code(0);
    assert_eq!(
        config_text(&sim),
        CONFIG_YAML.replace("max_connections: 20", "max_connections: 40")
    );
    assert!(
        deployment_writes(&sim).is_empty(),
        "{:?}",
        deployment_writes(&sim)
    );
    let doc = out.json();
    assert_eq!(doc["restarted"], false);
    assert_eq!(doc["changes"].as_array().unwrap().len(), 1);
    let text = run(&sim, &["db", "connections", "41", "--no-restart"]);
    text.assert_code(0);
    assert!(
        text.stdout.contains("keep the old value until they restart"),
        "{}",
        text.stdout
    );
    assert!(!text.stderr.contains("Continue?"));
}

#[test]
fn a_pool_the_database_cannot_serve_is_refused_unless_forced() {
    // SPEC: N × the HPA's maxReplicas above max_connections minus the reserved ones is exit 2,
    // nothing written, unless --force (which writes, saying why it is risky).
    let sim = sim();
    let out = run(&sim, &["db", "connections", "150", "--no-restart"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("150 connections per pod × 10 pods (the HPA's maxReplicas) = 1500 connections, but the database accepts 1000"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("choose at most 99 per pod"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(config_text(&sim), CONFIG_YAML);

    let forced = run(&sim, &["db", "connections", "150", "--no-restart", "--force"]);
    forced.assert_code(0);
    assert!(forced.stderr.contains("1500 connections"), "{}", forced.stderr);
    assert!(config_text(&sim).contains("max_connections: 150"));
    let quiet = run(&sim, &["db", "connections", "99", "--no-restart"]);
    quiet.assert_code(0);
    assert!(!quiet.stderr.contains("connections per pod"), "{}", quiet.stderr);
}

#[test]
fn without_a_terminal_or_yes_nothing_is_written() {
    let sim = sim();
    for args in [
        &["db", "connections", "50"][..],
        &["db", "connections", "50", "--restart"],
    ] {
        let out = run(&sim, args);
        out.assert_code(3);
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
        assert!(
            out.stderr.contains("Change configmap/orchestrator-config, then restart deployment/orchestrator (3 pods restart, RollingUpdate maxSurge 1, maxUnavailable 0)"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("--no-restart"),
            "the hint offers the config-only way: {}",
            out.stderr
        );
    }
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(config_text(&sim), CONFIG_YAML);
}

#[test]
fn dry_run_persists_nothing_and_never_prompts() {
    let sim = sim();
    let out = run(&sim, &["db", "connections", "50", "--dry-run", "-o", "json"]);
    out.assert_code(0);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(config_text(&sim), CONFIG_YAML);
    let dry: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(
        dry.iter().all(|r| r.query.contains("dryRun=All")) && !dry.is_empty(),
        "{dry:?}"
    );
    let doc = out.json();
    assert_eq!(doc["dryRun"], true);
    assert_eq!(doc["restarted"], false);
    assert_eq!(doc["maxConnections"]["after"], 50);
    assert!(!out.stderr.contains("Continue?"));
    assert!(
        object(&sim, "deployments", "orchestrator")["spec"]["template"]["metadata"]["annotations"].is_null()
    );
}

#[test]
fn bad_pool_sizes_are_refused_before_any_request() {
    let sim = sim();
    for n in ["0", "-5", "abc"] {
        let out = run(&sim, &["db", "connections", n, "--yes"]);
        out.assert_code(2);
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
}

#[test]
fn a_missing_key_lists_the_keys() {
    let sim = sim();
    let out = run(
        &sim,
        &["db", "connections", "50", "--config-key", "other.yaml", "--yes"],
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("configmap/orchestrator-config has no key \"other.yaml\"; its keys: config.yaml"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty());
}

#[test]
fn the_same_value_changes_nothing() {
    let sim = sim();
    let out = run(&sim, &["db", "connections", "20", "-o", "json"]);
    out.assert_code(0);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(out.json()["changes"], serde_json::json!([]));
    assert_eq!(out.json()["restarted"], false);
    // An explicit --restart still restarts: pods may run with a value set earlier.
    let out = run(
        &sim,
        &["db", "connections", "20", "--restart", "--yes", "-o", "json"],
    );
    out.assert_code(0);
    assert_eq!(out.json()["restarted"], true);
    let writes = sim.persisted_writes();
    assert!(
        writes.iter().all(|r| !r.path.contains("/configmaps/")),
        "the config is not written: {writes:?}"
    );
    assert_eq!(deployment_writes(&sim).len(), 1, "{writes:?}");
}

#[test]
fn a_conflict_is_retried_on_a_fresh_read() {
    let sim = sim();
    // Another line of the config was edited by someone else; the 409 forces a re-read, and the
    // re-planned write keeps that edit.
    sim.faults().fail_next(FaultRule {
        method: Some("PATCH".into()),
        resource: Some("configmaps".into()),
        status: 409,
        retry_after: None,
        count: 1,
    });
    let key = ObjectKey::new("configmaps", NAMESPACE, "orchestrator-config");
    sim.store()
        .modify(&key, UpdatePart::Main, |cm| {
            let text = cm["data"]["config.yaml"]
                .as_str()
                .unwrap()
                .replace("workers: 4", "workers: 8");
            cm["data"]["config.yaml"] = Value::String(text);
            true
        })
        .unwrap();
    let out = run(&sim, &["db", "connections", "60", "--no-restart"]);
    out.assert_code(0);
    assert_eq!(
        config_text(&sim),
        CONFIG_YAML
            .replace("workers: 4", "workers: 8")
            .replace("max_connections: 20", "max_connections: 60")
    );
    let patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/configmaps/orchestrator-config"))
        .collect();
    assert_eq!(patches[0].status, 409, "{patches:?}");
    assert_eq!(
        patches.len(),
        2,
        "the 409, then the change with its record: {patches:?}"
    );
}

#[test]
fn missing_permissions_are_found_before_any_write() {
    let sim = sim();
    sim.faults().deny("patch", "deployments");
    let out = run(&sim, &["db", "connections", "50", "--yes"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch deployments in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(config_text(&sim), CONFIG_YAML, "the config is not written either");
    // Without a restart, the deployment permission is not needed.
    run(&sim, &["db", "connections", "50", "--no-restart"]).assert_code(0);
    sim.faults().deny("patch", "configmaps");
    let out = run(&sim, &["db", "connections", "60", "--no-restart"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("missing permission: patch configmaps"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_permission_is_reported_before_the_prompt() {
    // As resources does: no "Continue?" for a change the user may not make anyway.
    let sim = sim();
    sim.faults().deny("patch", "deployments");
    let out = run(&sim, &["db", "connections", "50"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch deployments in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn a_restart_that_cannot_finish_fails_saying_the_config_was_applied() {
    let sim = sim();
    crate::harness::wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", orchscale_sim::PodFailure::CrashLoop);
    let out = run(&sim, &["db", "connections", "50", "--yes", "-o", "json"]);
    out.assert_code(1);
    assert!(out.stderr.contains("CrashLoopBackOff"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the config change and the restart of deployment/orchestrator"),
        "the hint says what was applied: {}",
        out.stderr
    );
    assert_eq!(
        config_text(&sim),
        CONFIG_YAML.replace("max_connections: 20", "max_connections: 50")
    );
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert_eq!(doc["restarted"], true);
    assert_eq!(doc["maxConnections"]["after"], 50);
}
