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
