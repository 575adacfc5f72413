//! GPUs (`nvidia.com/gpu`) end to end on a sim with GPU nodes: a GPU rollout lands on them, the
//! preview foretells GPUs running out on the nodes and in a ResourceQuota, and the sim's
//! scheduler and quota admission refuse what the preview foretold.

use serde_json::json;

use crate::harness::{live_pods, run, sim_with_gpus, wait_ready};
use crate::resources::create_quota;

const GPU_LIMIT: &str = "spec.template.spec.containers[orchestrator].resources.limits.nvidia.com/gpu";

/// The scheduler binds a pod asking for a GPU only to a node whose allocatable GPUs minus its
/// pods' requests cover it (upstream's NodeResourcesFit, `fitsRequest` in
/// pkg/scheduler/framework/plugins/noderesources/fit.go): the three seeded nodes have none.
#[test]
fn a_gpu_rollout_lands_on_the_gpu_nodes() {
    let sim = sim_with_gpus(2);
    wait_ready(&sim, 3);
    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--yes"]);
    out.assert_code(0);
    assert!(
        !out.stderr.contains("capacity:"),
        "8 GPUs for 4 pods: {}",
        out.stderr
    );
    let pods = live_pods(&sim);
    assert_eq!(pods.len(), 3, "{pods:?}");
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        assert!(node.starts_with("gpu-node-"), "{node}: {pod}");
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"], "1",
            "{pod}"
        );
    }
}

/// Four pods of 4 GPUs (3 replicas + 1 surge) on one node of 4 GPUs: the preview says how many
/// fit and that GPUs run out, and a dry run writes nothing.
#[test]
fn gpus_that_the_nodes_cannot_hold_are_foretold_in_the_preview() {
    let sim = sim_with_gpus(1);
    wait_ready(&sim, 3);
    sim.clear_requests();
    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=4", "--dry-run"]);
    out.assert_code(0);
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("WARNING: capacity:"))
        .unwrap_or_else(|| panic!("no capacity warning in:\n{}", out.stderr));
    assert!(warning.contains("only 1 of 4 pods ("), "{warning}");
    assert!(warning.contains(" / 4 nvidia.com/gpu each)"), "{warning}");
    assert!(
        warning.contains("3 would stay Pending (short of nvidia.com/gpu on 4 nodes)"),
        "the GPU node holds one, the others none: {warning}"
    );
    assert!(out.stderr.contains(GPU_LIMIT), "previewed: {}", out.stderr);
    assert!(
        sim.persisted_writes().is_empty(),
        "a dry run writes nothing: {:?}",
        sim.persisted_writes()
    );
    let read_nodes = sim
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path == "/api/v1/nodes");
    assert!(read_nodes, "the check read the nodes");
}

/// Quota holds extended resources only as `requests.<name>` (upstream's pod evaluator,
/// pkg/quota/v1/evaluator/core/pods.go `podComputeUsageHelper`; the docs' "Resource quota for
/// extended resources"): three pods of one GPU against `requests.nvidia.com/gpu: 2` are
/// foretold in the preview, and the sim's admission refuses the third pod as the API server does.
#[test]
fn a_gpu_quota_is_foretold_and_enforced() {
    let sim = sim_with_gpus(2);
    wait_ready(&sim, 3);
    create_quota(&sim, json!({"requests.nvidia.com/gpu": "2"}));
    sim.clear_requests();
    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "WARNING: ResourceQuota compute: requests.nvidia.com/gpu would need 3 more, but only 2 \
             of 2 is left (0 used)"
        ),
        "{}",
        out.stderr
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());

    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--yes"]);
    out.assert_code(1);
    assert!(out.stderr.contains("FailedCreate"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("exceeded quota: compute, requested: requests.nvidia.com/gpu=1"),
        "{}",
        out.stderr
    );
}

/// GPU node pools are tainted (`nvidia.com/gpu=present:NoSchedule` on GKE, EKS and AKS) and
/// only pods that tolerate the taint go there (the scheduler's TaintToleration filter; the
/// rule is k8s.io/api core/v1 `Toleration.ToleratesTaint`). Without the toleration the preview
/// says the pods do not fit (the tainted nodes are no room for them) and the sim's scheduler
/// agrees; with it, the rollout lands on the GPU nodes and the preview finds the room.
#[test]
fn a_tainted_gpu_pool_takes_only_pods_that_tolerate_its_taint() {
    use orchscale_sim::store::{ObjectKey, UpdatePart};
    let sim = sim_with_gpus(2);
    wait_ready(&sim, 3);
    for node in ["gpu-node-0", "gpu-node-1"] {
        sim.store()
            .modify(&ObjectKey::new("nodes", "", node), UpdatePart::Main, |n| {
                n["spec"]["taints"] =
                    json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
                true
            })
            .unwrap();
    }

    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--dry-run"]);
    out.assert_code(0);
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("WARNING: capacity:"))
        .unwrap_or_else(|| panic!("no capacity warning without the toleration:\n{}", out.stderr));
    assert!(warning.contains("only 0 of 4 pods ("), "{warning}");

    let deployment = ObjectKey::new("deployments", "llm-orchestrator", "orchestrator");
    sim.store()
        .modify(&deployment, UpdatePart::Main, |d| {
            d["spec"]["template"]["spec"]["tolerations"] = json!([
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ]);
            true
        })
        .unwrap();
    wait_ready(&sim, 3);
    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--yes"]);
    out.assert_code(0);
    assert!(
        !out.stderr.contains("capacity:"),
        "the tolerated pool has 8 GPUs for 4 pods: {}",
        out.stderr
    );
    let pods = live_pods(&sim);
    assert_eq!(pods.len(), 3, "{pods:?}");
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        assert!(node.starts_with("gpu-node-"), "{node}: {pod}");
    }
}
