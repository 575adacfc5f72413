//! Rollouts that do not finish: failing pods, --rollback-on-failure, --timeout, Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use orchscale_sim::PodFailure;
use orchscale_sim::store::ObjectKey;

use crate::harness::{live_pods, run, sim, stored_replicas, wait_ready};

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
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CrashLoopBackOff")
    );
    assert_eq!(doc["changes"][0]["after"], "5", "says what was applied");
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
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario().set_pod_start_delay(Duration::from_secs(120));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-orchscale"))
        .args(["scale", "--replicas", "5", "--timeout", "2m"])
        .env("KUBECONFIG", sim.kubeconfig())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains("following the rollout") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("following the rollout"), "{seen}");
    // Let the follower start its watches, then interrupt it as a terminal's Ctrl-C would.
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(
        rest.contains("interrupted") && rest.contains("replicas were set to 5"),
        "{rest}"
    );
    assert!(rest.contains("continues in the cluster"), "{rest}");
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
