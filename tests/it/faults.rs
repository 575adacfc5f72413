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
    sim.faults()
        .fail_next(rule("PATCH", "deployments/scale", 409, None));
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 5);
    let scale_patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/scale"))
        .collect();
    assert_eq!(scale_patches.len(), 2, "one 409, one success: {scale_patches:?}");
    assert_eq!(scale_patches[0].status, 409);
}

#[test]
fn a_503_is_retried() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults()
        .fail_next(rule("PATCH", "deployments/scale", 503, None));
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
    sim.faults().deny("patch", "deployments/scale");
    let out = run(&sim, &["scale", "--replicas", "5"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch deployments/scale in namespace llm-orchestrator"),
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
        out.stderr.contains("HPA range check is skipped"),
        "{}",
        out.stderr
    );
    assert_eq!(stored_replicas(&sim), 4);
}

#[test]
fn a_failed_audit_record_is_a_warning_not_a_lost_change() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().fail_next(FaultRule {
        method: Some("PATCH".into()),
        resource: Some("deployments".into()),
        status: 422,
        retry_after: None,
        count: 1,
    });
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(0);
    assert!(out.stderr.contains("audit record"), "{}", out.stderr);
    assert_eq!(stored_replicas(&sim), 4);
}
