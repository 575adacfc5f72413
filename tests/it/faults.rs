//! Transient faults and permissions: cut watches, 409, 503, 429, SSAR denial.

use orchscale_sim::FaultRule;

use crate::harness::{run, sim, stored_replicas, wait_ready};

fn rule(method: &str, resource: &str, status: u16, retry_after: Option<u64>) -> FaultRule {
    FaultRule {
        method: Some(method.into()),
        resource: Some(resource.into()),
        status,
        retry_after,
        count: 1,
    }
}

#[test]
fn a_watch_cut_mid_rollout_still_ends_in_success() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().cut_watches_after(2);
    let out = run(&sim, &["scale", "--replicas", "6"]);
    out.assert_code(0);
    assert!(out.stdout.contains("is at 6 replicas, 6 ready"), "{}", out.stdout);
}

#[test]
fn an_expired_watch_relists_and_succeeds() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().cut_watches_after(3);
    sim.faults().expire_next_watch();
    run(&sim, &["scale", "--replicas", "5"]).assert_code(0);
}

#[test]
fn a_conflict_on_the_scale_patch_is_retried() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().fail_next(rule("PATCH", "deployments", 409, None));
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 5);
    let scale_patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/orchestrator"))
        .collect();
    assert_eq!(scale_patches.len(), 2, "one 409, one success: {scale_patches:?}");
    assert_eq!(scale_patches[0].status, 409);
}

#[test]
fn a_503_is_retried() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().fail_next(rule("PATCH", "deployments", 503, None));
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 5);
}

#[test]
fn a_429_with_retry_after_is_retried() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().fail_next(rule("GET", "deployments", 429, Some(1)));
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(0);
    assert!(sim.requests().iter().any(|r| r.status == 429));
}

#[test]
fn persistent_5xx_gives_up_within_the_budget() {
    let sim = sim();
    sim.faults().fail_next(FaultRule {
        method: Some("GET".into()),
        resource: Some("deployments".into()),
        status: 500,
        retry_after: None,
        count: 100,
    });
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(1);
    let attempts = sim.requests().iter().filter(|r| r.status == 500).count();
    assert!((2..=6).contains(&attempts), "bounded retries, got {attempts}");
}

#[test]
fn a_missing_permission_is_named_and_nothing_is_written() {
    let sim = sim();
    sim.faults().deny("patch", "deployments");
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch deployments in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(stored_replicas(&sim), 3);
}

#[test]
fn without_permission_to_read_hpas_the_guard_is_skipped_with_a_warning() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().deny("list", "horizontalpodautoscalers");
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("the checks that depend on the HPA of deployment orchestrator are skipped"),
        "{}",
        out.stderr
    );
    assert_eq!(stored_replicas(&sim), 4);
}

#[test]
fn the_audit_record_travels_in_the_same_write_as_the_change() {
    // One request carries the change and its record, so no change is stored without one.
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(0);
    let patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let deployment = crate::harness::object(&sim, "deployments", "orchestrator");
    assert_eq!(deployment["spec"]["replicas"], 4);
    let record: serde_json::Value = serde_json::from_str(
        deployment["metadata"]["annotations"]["orchscale.io/last-change"]
            .as_str()
            .expect("the record"),
    )
    .unwrap();
    assert_eq!(record["v"], 2);
    assert_eq!(record["previous"]["spec.replicas"], 3);
    assert_eq!(record["written"]["spec.replicas"], 4);
    assert!(record["id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[test]
fn a_connection_reset_is_retried() {
    let sim = sim();
    wait_ready(&sim, 3);
    // Status 0: the sim drops the connection without an answer.
    sim.faults().fail_next(rule("GET", "deployments", 0, None));
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 4);
}

#[test]
fn connection_resets_that_persist_give_up_within_the_budget() {
    let sim = sim();
    sim.faults().fail_next(FaultRule {
        method: Some("GET".into()),
        resource: Some("deployments".into()),
        status: 0,
        retry_after: None,
        count: 50,
    });
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(1);
    assert!(out.stderr.contains("error: "), "{}", out.stderr);
    assert_eq!(stored_replicas(&sim), 3);
}
