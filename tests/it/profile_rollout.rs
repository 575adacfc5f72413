//! Rollouts on real clusters' profiles: Unschedulable pods with and without a node autoscaler.

use orchscale_sim::Flavor;

use crate::harness::{real, run, sim_of, stored_replicas, wait_ready};

/// Cluster Autoscaler (cluster-autoscaler/processors/status/eventing_scale_up_processor.go,
/// `EventingScaleUpStatusProcessor.Process`) records `TriggeredScaleUp` on each pod it adds a
/// node for, and the node joins later: the rollout waits for the node instead of failing, and
/// `--rollback-on-failure` keeps the change.
#[test]
fn unschedulable_pods_wait_for_the_node_a_scale_up_brings() {
    let sim = sim_of(real(33, Flavor::EksLike));
    wait_ready(&sim, 3);
    // 3 nodes of 4 CPU hold 21 orchestrator pods (550m each) at most, postgres aside.
    let out = run(
        &sim,
        &[
            "scale",
            "--replicas",
            "24",
            "--force",
            "--rollback-on-failure",
            "--yes",
        ],
    );
    out.assert_code(0);
    assert_eq!(stored_replicas(&sim), 24, "not rolled back");
    let (nodes, _) = sim.store().list("nodes", None);
    assert!(
        nodes.iter().any(|n| n["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("eks-ng-general-"))),
        "the autoscaler's node joined"
    );
}

/// The node takes longer than `--timeout`: the rollout times out, but the change is sound and
/// the cluster is growing for it, so `--rollback-on-failure` keeps it and says why.
#[test]
fn a_timeout_while_waiting_for_a_node_keeps_the_change() {
    let mut profile = real(33, Flavor::EksLike);
    if let Some(autoscaler) = profile.behaviour.node_autoscaler.as_mut() {
        autoscaler.provision_delay = std::time::Duration::from_secs(600);
    }
    let sim = sim_of(profile);
    wait_ready(&sim, 3);
    let out = run(
        &sim,
        &[
            "scale",
            "--replicas",
            "24",
            "--force",
            "--rollback-on-failure",
            "--yes",
            "--timeout",
            "4s",
        ],
    );
    out.assert_code(1);
    assert!(out.stderr.contains("timed out after 4s"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("waiting for nodes a node autoscaler is adding"),
        "{}",
        out.stderr
    );
    assert_eq!(stored_replicas(&sim), 24, "not rolled back:\n{}", out.stderr);
}

/// Without a node autoscaler nothing answers an Unschedulable pod: after the autoscaler's
/// grace (Cluster Autoscaler's 10 s `--scan-interval`) the rollout fails, naming the pod.
#[test]
fn unschedulable_pods_without_an_autoscaler_fail_the_rollout() {
    let sim = sim_of(real(33, Flavor::Plain));
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "24", "--force", "--yes"]);
    out.assert_code(1);
    assert!(out.stderr.contains("Unschedulable"), "{}", out.stderr);
}

fn is_terminating(sim: &orchscale_sim::Sim, name: &str) -> bool {
    crate::harness::object(sim, "pods", name)["metadata"]["deletionTimestamp"].is_string()
}

/// Graceful deletion (pkg/registry/core/pod/strategy.go `CheckGracefulDelete`): a deleted pod
/// stays, selected, with a deletionTimestamp for its grace period. The ReplicaSet controller
/// counts only `controller.FilterActivePods` as replicas, and `kubectl get pods` prints such a
/// pod `Terminating` (pkg/printers/internalversion/printers.go `printPod`). So do `scale`,
/// `resources` and `status`: terminating pods are no ready replicas, and `status` shows them.
#[test]
fn terminating_pods_are_shown_and_never_counted_as_replicas() {
    let mut profile = real(33, Flavor::Plain);
    profile.behaviour.grace_period_cap = Some(std::time::Duration::from_secs(5));
    let sim = sim_of(profile);
    wait_ready(&sim, 3);
    let scaled = run(
        &sim,
        &["scale", "--replicas", "2", "--force", "--yes", "-o", "json"],
    );
    scaled.assert_code(0);
    let document = scaled.json();
    let pods = document["pods"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 2, "{document}");
    assert!(
        pods.iter()
            .all(|p| !is_terminating(&sim, p["name"].as_str().unwrap_or_default())),
        "{document}"
    );
    let status = run(&sim, &["status", "-o", "json"]);
    status.assert_code(0);
    let document = status.json();
    let terminating = document["terminatingPods"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        terminating.len(),
        1,
        "the scaled-down pod, within its grace: {document}"
    );
    assert!(
        terminating
            .iter()
            .all(|name| is_terminating(&sim, name.as_str().unwrap_or_default()))
    );
    assert_eq!(document["pods"].as_array().map(Vec::len), Some(2), "{document}");
    let text = run(&sim, &["status"]);
    assert!(
        text.stdout
            .contains("terminating (not counted as replicas): orchestrator-"),
        "{}",
        text.stdout
    );

    // A rolling restart: the old pods terminate beside the new ones; only the new count.
    let restarted = run(
        &sim,
        &["resources", "--limits", "memory=3Gi", "--yes", "-o", "json"],
    );
    restarted.assert_code(0);
    let document = restarted.json();
    let pods = document["pods"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 2, "{document}");
    assert!(
        pods.iter()
            .all(|p| !is_terminating(&sim, p["name"].as_str().unwrap_or_default())),
        "{document}"
    );
}
