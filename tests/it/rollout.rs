//! Rollouts that do not finish: failing pods, --rollback-on-failure, --timeout, Ctrl-C.

use std::time::Duration;

use orchscale_sim::PodFailure;
use orchscale_sim::store::ObjectKey;

use crate::harness::{can_send_sigint, live_pods, run, sim, start_following, stored_replicas, wait_ready};

#[test]
fn crash_looping_pods_fail_the_rollout_naming_them() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::CrashLoop);
    let out = run(&sim, &["scale", "--replicas", "5", "-o", "json"]);
    out.assert_code(1);
    assert!(out.stderr.contains("CrashLoopBackOff"), "{}", out.stderr);
    assert!(
        out.stderr.contains("pod orchestrator-"),
        "names the pod:\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("`kubectl logs --previous -n llm-orchestrator orchestrator-"),
        "the hint's command names the namespace and the pod:\n{}",
        out.stderr
    );
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CrashLoopBackOff")
    );
    assert_eq!(doc["changes"][0]["after"], 5, "says what was applied");
}

#[test]
fn image_pull_failures_are_named() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::ImagePull);
    let out = run(&sim, &["scale", "--replicas", "4"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("ImagePullBackOff") || out.stderr.contains("ErrImagePull"),
        "{}",
        out.stderr
    );
}

#[test]
fn rollback_on_failure_restores_the_previous_count() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::CrashLoop);
    let out = run(&sim, &["scale", "--replicas", "5", "--rollback-on-failure"]);
    out.assert_code(1);
    assert!(out.stderr.contains("rolled back"), "{}", out.stderr);
    assert_eq!(stored_replicas(&sim), 3);
    wait_ready(&sim, 3);
    assert_eq!(live_pods(&sim).len(), 3);
}

#[test]
fn timeout_is_the_tools_own_and_says_what_was_applied() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario().set_pod_start_delay(Duration::from_secs(120));
    let out = run(&sim, &["scale", "--replicas", "5", "--timeout", "1s"]);
    out.assert_code(1);
    assert!(out.stderr.contains("timed out after 1s"), "{}", out.stderr);
    assert!(out.stderr.contains("replicas were set to 5"), "{}", out.stderr);
    assert!(out.stderr.contains("continues in the cluster"), "{}", out.stderr);
}

#[test]
fn ctrl_c_during_the_wait_exits_130() {
    if !can_send_sigint() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario().set_pod_start_delay(Duration::from_secs(120));
    let following = start_following(&sim, &["scale", "--replicas", "5", "--timeout", "2m"]);
    assert!(
        following.seen.contains("Target: context orchscale-sim"),
        "{}",
        following.seen
    );
    let (code, stderr) = following.interrupt();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("replicas were set to 5"),
        "{stderr}"
    );
    assert!(stderr.contains("continues in the cluster"), "{stderr}");
}

#[test]
fn a_deployment_deleted_mid_rollout_is_reported() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario().set_pod_start_delay(Duration::from_secs(120));
    let following = start_following(&sim, &["scale", "--replicas", "5", "--timeout", "2m"]);
    sim.store()
        .delete(
            &ObjectKey::new("deployments", crate::harness::NAMESPACE, "orchestrator"),
            None,
        )
        .unwrap();
    let (code, rest) = following.finish();
    assert_eq!(code, Some(1), "{rest}");
    assert!(
        rest.contains("was deleted while its rollout was followed"),
        "{rest}"
    );
}

#[test]
fn a_quota_that_refuses_pods_fails_fast_with_failed_create() {
    let sim = sim();
    wait_ready(&sim, 3);
    let quota = serde_json::json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": crate::harness::NAMESPACE},
        "spec": {"hard": {"pods": "5"}}});
    sim.store()
        .create(
            &ObjectKey::new("resourcequotas", crate::harness::NAMESPACE, "compute"),
            quota,
        )
        .unwrap();
    let out = run(&sim, &["scale", "--replicas", "8"]);
    out.assert_code(1);
    assert!(out.stderr.contains("FailedCreate"), "{}", out.stderr);
    assert!(out.stderr.contains("quota"), "{}", out.stderr);
}

#[test]
fn pods_that_do_not_fit_are_unschedulable_with_the_schedulers_message() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "40", "--force"]);
    out.assert_code(1);
    assert!(out.stderr.contains("Unschedulable"), "{}", out.stderr);
    assert!(out.stderr.contains("nodes are available"), "{}", out.stderr);
}
