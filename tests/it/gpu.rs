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

/// Pins the orchestrator's pods to the GPU pool by its node label, as GPU workloads are pinned
/// (`nodeSelector: {cloud.google.com/gke-accelerator: nvidia-l4}`), and waits until its pods
/// run there.
fn pin_to_the_gpu_pool(sim: &orchscale_sim::Sim) {
    use orchscale_sim::store::{ObjectKey, UpdatePart};
    let deployment = ObjectKey::new("deployments", "llm-orchestrator", "orchestrator");
    sim.store()
        .modify(&deployment, UpdatePart::Main, |d| {
            d["spec"]["template"]["spec"]["nodeSelector"] =
                json!({"cloud.google.com/gke-accelerator": "nvidia-l4"});
            true
        })
        .unwrap();
    for _ in 0..200 {
        let pods = live_pods(sim);
        let pinned = pods.len() == 3
            && pods
                .iter()
                .all(|p| p["spec"]["nodeName"] == "gpu-node-0" && p["status"]["phase"] == "Running");
        if pinned {
            wait_ready(sim, 3);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the pinned pods never ran on gpu-node-0: {:?}", live_pods(sim));
}

/// The scheduler's NodeAffinity filter (pkg/scheduler/framework/plugins/nodeaffinity/
/// node_affinity.go, `Filter`; the match is k8s.io/component-helpers nodeaffinity
/// `RequiredNodeAffinity.Match`): pods pinned to a pool by a nodeSelector go only to its nodes,
/// so the capacity check counts only the pool's room. GPUs: 4 pods (3 + 1 surge) of one GPU fit
/// the pool's 4; of two GPUs only 2 do, and the warning names the pool as what runs short and
/// the other nodes as left out. CPU: pods of 3 CPU fit the cluster (a 4-CPU node each) but not
/// the pool (one 8-CPU node): the preview warns, writes nothing, and the real rollout stalls
/// with the pods Pending that the warning foretold, the sim's scheduler saying why.
#[test]
fn pods_pinned_to_the_gpu_pool_count_only_its_room() {
    let sim = sim_with_gpus(1);
    wait_ready(&sim, 3);
    let cpu = [
        "resources",
        "--requests",
        "cpu=3",
        "--limits",
        "cpu=4",
        "--dry-run",
    ];
    let out = run(&sim, &cpu);
    out.assert_code(0);
    assert!(
        !out.stderr.contains("capacity:"),
        "unpinned, the 4-CPU nodes take them: {}",
        out.stderr
    );

    pin_to_the_gpu_pool(&sim);
    sim.clear_requests();
    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--dry-run"]);
    out.assert_code(0);
    assert!(
        !out.stderr.contains("capacity:"),
        "4 GPUs for 4 pods: {}",
        out.stderr
    );
    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=2", "--dry-run"]);
    out.assert_code(0);
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("WARNING: capacity:"))
        .unwrap_or_else(|| panic!("no capacity warning:\n{}", out.stderr));
    assert!(
        warning.contains("only 2 of 4 pods (") && warning.contains("(short of nvidia.com/gpu on 1 node)"),
        "only the pool's node counts: {warning}"
    );
    for node in ["node-a", "node-b", "node-c"] {
        assert!(
            warning.contains(&format!("{node}: not matching the pod's node selector")),
            "{warning}"
        );
    }

    let out = run(&sim, &cpu);
    out.assert_code(0);
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("WARNING: capacity:"))
        .unwrap_or_else(|| panic!("pinned, the pool is too small:\n{}", out.stderr));
    let fitting: usize = warning
        .split("only ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{warning}"));
    assert!(fitting < 4, "{warning}");
    assert!(warning.contains("short of cpu on 1 node"), "{warning}");
    assert!(
        sim.persisted_writes().is_empty(),
        "dry runs write nothing: {:?}",
        sim.persisted_writes()
    );

    let real = [&cpu[..5], &["--yes"]].concat();
    let out = run(&sim, &real);
    out.assert_code(1);
    assert!(out.stderr.contains("Unschedulable"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("0/4 nodes are available: 1 Insufficient cpu, 3 node(s) didn't match Pod's node affinity/selector."),
        "the scheduler's message:\n{}",
        out.stderr
    );
    let new: Vec<_> = live_pods(&sim)
        .into_iter()
        .filter(|p| p["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "3")
        .collect();
    let bound: Vec<&str> = new
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    assert_eq!(
        bound.len(),
        fitting,
        "as many run as the warning said fit: {new:?}"
    );
    assert!(bound.iter().all(|n| *n == "gpu-node-0"), "{bound:?}");
    assert!(new.len() > bound.len(), "the rest stay Pending: {new:?}");
}
