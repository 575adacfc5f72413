//! The runbook's recovery paths, through the real binary: the rollout that fixes failing pods
//! is judged by its own (new ReplicaSet's) pods, not by the failing pods it replaces.
//!
//! Upstream rule: `kubectl rollout status` (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
//! rollout_status.go, `DeploymentStatusViewer.Status`) decides from the Deployment's status
//! counts of the new ReplicaSet (updatedReplicas, availableReplicas) and never from pods of old
//! ReplicaSets; the deployment controller (pkg/controller/deployment/util/deployment_util.go,
//! `FindNewReplicaSet` / `SetNewReplicaSetAnnotations`) marks the new ReplicaSet with the
//! Deployment's `deployment.kubernetes.io/revision`.

use serde_json::Value;

use crate::harness::{live_pods, object, run, sim, wait_ready};

const GI: u64 = 1024 * 1024 * 1024;

fn memory_limit(pod: &Value) -> &Value {
    &pod["spec"]["containers"][0]["resources"]["limits"]["memory"]
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

#[test]
fn raising_the_memory_limit_of_oom_killed_pods_succeeds_once_the_new_pods_are_ready() {
    let sim = sim();
    wait_ready(&sim, 3);
    // Each pod now needs 3Gi; the 2Gi limit gets every pod OOMKilled.
    sim.scenario().set_load("orchestrator", 900, 3 * GI);
    let scaled = run(&sim, &["scale", "--replicas", "5"]);
    scaled.assert_code(1);
    assert!(scaled.stderr.contains("OOMKilled"), "{}", scaled.stderr);

    let out = run(&sim, &["resources", "--limits", "memory=4Gi", "--yes"]);
    out.assert_code(0);
    assert!(out.stdout.contains("rolled out"), "{}", out.stdout);
    wait_ready(&sim, 5);
    let pods = live_pods(&sim);
    assert_eq!(pods.len(), 5);
    for pod in &pods {
        assert_eq!(memory_limit(pod), "4Gi", "{pod}");
        assert!(is_ready(pod), "{pod}");
    }
}

#[test]
fn undo_after_an_unschedulable_stall_succeeds() {
    let sim = sim();
    wait_ready(&sim, 3);
    // 6 CPUs per pod fit no 4-CPU node: the new ReplicaSet's pods stay Pending.
    let stalled = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=6",
            "--limits",
            "cpu=8",
            "--yes",
            "--timeout",
            "5s",
        ],
    );
    stalled.assert_code(1);
    assert!(stalled.stderr.contains("Unschedulable"), "{}", stalled.stderr);

    let out = run(&sim, &["undo", "--yes"]);
    out.assert_code(0);
    let d = object(&sim, "deployments", "orchestrator");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "500m"
    );
    wait_ready(&sim, 3);
    for pod in live_pods(&sim) {
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"], "500m",
            "{pod}"
        );
    }
}
