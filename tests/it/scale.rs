//! `scale`: up, down, the HPA guard, dry run, JSON, plain progress, the audit annotation.

use crate::harness::{live_pods, object, run, sim, stored_replicas, wait_ready};

#[test]
fn scale_up_follows_the_rollout_and_lists_the_pods() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 5);
    assert!(
        out.stdout
            .contains("deployment/orchestrator is at 5 replicas, 5 ready"),
        "{}",
        out.stdout
    );
    let listed = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("orchestrator-"))
        .count();
    assert_eq!(listed, 5, "five pods listed:\n{}", out.stdout);
    assert!(
        out.stderr.contains("Target: context orchscale-sim"),
        "banner:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("spec.replicas: 3 -> 5"),
        "preview:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("keeps control"), "HPA note:\n{}", out.stderr);
}

#[test]
fn scale_down_within_the_hpa_range() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "5"]).assert_code(0);
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 4);
    assert!(out.stdout.contains("is at 4 replicas, 4 ready"), "{}", out.stdout);
    assert_eq!(live_pods(&sim).len(), 4);
}

#[test]
fn force_scales_outside_the_hpa_range_with_a_warning() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "2", "--force"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 2);
    assert!(out.stderr.contains("warning: --force"), "{}", out.stderr);
}

#[test]
fn hpa_guard_refuses_and_writes_nothing() {
    let sim = sim();
    let out = run(&sim, &["scale", "--replicas", "20"]);
    out.assert_code(2);
    assert!(out.stderr.contains("between 3 and 10"), "{}", out.stderr);
    assert!(
        out.stderr.contains("hint:") && out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    assert!(
        sim.persisted_writes().is_empty(),
        "writes: {:?}",
        sim.persisted_writes()
    );
    assert_eq!(stored_replicas(&sim), 3);
}

#[test]
fn negative_replicas_are_refused_before_any_request() {
    let sim = sim();
    let out = run(&sim, &["scale", "--replicas", "-1"]);
    out.assert_code(2);
    assert!(out.stderr.contains("0 or more"), "{}", out.stderr);
    assert!(
        sim.requests().is_empty(),
        "no request at all: {:?}",
        sim.requests()
    );
}

#[test]
fn dry_run_persists_nothing() {
    let sim = sim();
    let out = run(&sim, &["scale", "--replicas", "5", "--dry-run"]);
    out.assert_code(0);
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert_eq!(stored_replicas(&sim), 3);
    assert!(
        sim.persisted_writes().is_empty(),
        "writes: {:?}",
        sim.persisted_writes()
    );
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.query.contains("dryRun=All")),
        "the write went to the server as a dry run"
    );
}

#[test]
fn json_output_is_one_document_with_the_spec_fields() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "5", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "scale");
    assert_eq!(doc["context"], "orchscale-sim");
    assert_eq!(doc["namespace"], "llm-orchestrator");
    assert_eq!(doc["dryRun"], false);
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["replicas"], 5);
    assert_eq!(doc["readyReplicas"], 5);
    assert_eq!(
        doc["changes"][0],
        serde_json::json!({"object": "deployment/orchestrator", "field": "spec.replicas", "before": 3, "after": 5})
    );
    let pods = doc["pods"].as_array().expect("pods array");
    assert_eq!(pods.len(), 5);
    for pod in pods {
        assert!(pod["name"].is_string() && pod["ready"] == true, "{pod}");
        assert!(pod.get("cpu").is_some() && pod.get("memory").is_some(), "{pod}");
    }
    assert!(
        !out.stderr.contains("updated "),
        "no progress in JSON mode:\n{}",
        out.stderr
    );
}

#[test]
fn non_terminal_progress_is_plain_lines() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "6"]);
    out.assert_code(0);
    assert!(!out.stderr.contains('\x1b'), "no escape codes:\n{:?}", out.stderr);
    assert!(!out.stdout.contains('\x1b'), "no escape codes on stdout");
    let progress: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.contains(" deployment/orchestrator: ") && l.contains("updated "))
        .collect();
    assert!(!progress.is_empty(), "plain progress lines:\n{}", out.stderr);
    assert!(
        progress
            .iter()
            .any(|l| l.contains("100% updated 6/6, available 6/6")),
        "{progress:?}"
    );
}

#[test]
fn already_at_target_writes_nothing() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "3"]);
    out.assert_code(0);
    assert!(out.stderr.contains("already has 3 replicas"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty());
}

#[test]
fn the_change_is_recorded_for_undo() {
    let sim = sim();
    wait_ready(&sim, 3);
    run(&sim, &["scale", "--replicas", "4"]).assert_code(0);
    let d = object(&sim, "deployments", "orchestrator");
    let text = d["metadata"]["annotations"]["orchscale.io/last-change"]
        .as_str()
        .expect("annotation");
    let record: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(record["command"], "scale --replicas 4");
    assert_eq!(record["user"], "orchscale-sim");
    assert_eq!(record["previous"]["spec.replicas"], 3);
    assert!(record["time"].is_string());
    let patches: Vec<_> = sim
        .persisted_writes()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(
        patches
            .iter()
            .all(|r| r.query.contains("fieldManager=kubectl-orchscale")),
        "{patches:?}"
    );
}

#[test]
fn an_hpa_that_scales_back_is_named_with_the_lasting_fix() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .set_pod_start_delay(std::time::Duration::from_secs(120));
    let following = crate::harness::start_following(&sim, &["scale", "--replicas", "6", "--timeout", "2m"]);
    // What the HPA does at its next sync when the load does not need 6 pods.
    sim.store()
        .modify(
            &orchscale_sim::store::ObjectKey::new("deployments", crate::harness::NAMESPACE, "orchestrator"),
            orchscale_sim::store::UpdatePart::Main,
            |d| {
                d["spec"]["replicas"] = 3.into();
                true
            },
        )
        .unwrap();
    let (code, rest) = following.finish();
    assert_eq!(code, Some(1), "{rest}");
    assert!(
        rest.contains("HPA orchestrator changed deployment/orchestrator replicas from 6 to 3"),
        "{rest}"
    );
    assert!(rest.contains("hpa --min 6"), "{rest}");
}

#[test]
fn scale_to_zero_is_not_refused_by_the_hpa_guard() {
    // The HPA does not act on a target at 0 replicas (ScalingDisabled), so it would not undo it.
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "0"]);
    out.assert_code(0);
    assert!(out.stderr.contains("stops autoscaling"), "{}", out.stderr);
    assert!(out.stderr.contains("all 3 pods are terminated"), "{}", out.stderr);
    assert_eq!(stored_replicas(&sim), 0);
}
