//! Deployment rollouts, scaling, quota and scheduling, end to end.

use serde_json::json;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_completes_within_surge_and_availability() {
    let w = world(3);
    create(
        &w.store,
        "deployments",
        deployment("web", 3, vec![container("web", "100m", "64Mi")]),
    );
    wait_for("first rollout", || rollout_complete(&w.store, "web")).await;
    let tracker = track_pods(&w.store, "web");
    edit(&w.store, "deployments", "web", |d| {
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "2026-11-28T08:00:00Z"});
    });
    wait_for("the restart rollout", || {
        let d = get(&w.store, "deployments", "web");
        rollout_complete(&w.store, "web")
            && d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    })
    .await;
    let d = get(&w.store, "deployments", "web");
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);
    let sets = w.store.scan("replicasets", Some(NS), |rs| Some(rs.clone()));
    assert_eq!(sets.len(), 2);
    let new_rs = sets
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
        .unwrap();
    let old_rs = sets
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
        .unwrap();
    assert_eq!(old_rs["spec"]["replicas"], 0);
    let hash = new_rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(new_rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        new_rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert!(
        pods_of(&w.store, "web")
            .iter()
            .all(|p| p["metadata"]["labels"]["pod-template-hash"] == hash)
    );
    let t = tracker.lock().unwrap();
    assert!(
        t.max_pods <= 4,
        "surge 1 over 3 replicas allows 4 pods, saw {}",
        t.max_pods
    );
    assert!(
        t.min_ready.unwrap_or(0) >= 3,
        "maxUnavailable 0 keeps 3 ready, saw {:?}",
        t.min_ready
    );
    assert_eq!(t.deleted.len(), 3);
    drop(t);
    let scaled = events(&w.store, "ScalingReplicaSet");
    assert!(scaled.iter().any(|e| {
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Scaled down replica set web-")
    }));
    assert!(!events(&w.store, "SuccessfulCreate").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_up_and_down() {
    let w = world(2);
    create(
        &w.store,
        "deployments",
        deployment("web", 2, vec![container("web", "100m", "64Mi")]),
    );
    wait_for("first rollout", || rollout_complete(&w.store, "web")).await;
    edit(&w.store, "deployments", "web", |d| {
        d["spec"]["replicas"] = json!(5)
    });
    wait_for("scale to 5", || {
        rollout_complete(&w.store, "web")
            && get(&w.store, "deployments", "web")["status"]["readyReplicas"] == 5
    })
    .await;
    assert_eq!(pods_of(&w.store, "web").len(), 5);
    edit(&w.store, "deployments", "web", |d| {
        d["spec"]["replicas"] = json!(1)
    });
    wait_for("scale to 1", || {
        rollout_complete(&w.store, "web") && get(&w.store, "deployments", "web")["status"]["replicas"] == 1
    })
    .await;
    assert_eq!(pods_of(&w.store, "web").len(), 1);
    let d = get(&w.store, "deployments", "web");
    let available = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Available")
        .unwrap()
        .clone();
    assert_eq!(available["reason"], "MinimumReplicasAvailable");
    assert_eq!(
        w.store.scan("replicasets", Some(NS), |rs| Some(rs.clone())).len(),
        1,
        "scaling makes no new ReplicaSet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refuses_pods_with_failed_create() {
    let w = world(1);
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": NS},
        "spec": {"hard": {"requests.cpu": "1", "pods": "10"}}});
    create(&w.store, "resourcequotas", quota);
    create(
        &w.store,
        "deployments",
        deployment("web", 3, vec![container("web", "500m", "64Mi")]),
    );
    wait_for("ReplicaFailure on the deployment", || {
        get(&w.store, "deployments", "web")["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "ReplicaFailure" && c["reason"] == "FailedCreate")
            })
    })
    .await;
    let rs = w
        .store
        .scan("replicasets", Some(NS), |rs| Some(rs.clone()))
        .remove(0);
    let failure = rs["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .unwrap()
        .clone();
    let message = failure["message"].as_str().unwrap();
    assert!(message.starts_with("pods \"web-"), "{message}");
    assert!(
        message.ends_with("is forbidden: exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=1, limited: requests.cpu=1"),
        "{message}"
    );
    let failed = events(&w.store, "FailedCreate");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Error creating: pods \"web-")
    );
    assert_eq!(failed[0]["type"], "Warning");
    assert_eq!(pods_of(&w.store, "web").len(), 2);
    wait_for("quota status", || {
        get(&w.store, "resourcequotas", "compute")["status"]["used"]["requests.cpu"] == "1"
    })
    .await;
    assert_eq!(
        get(&w.store, "resourcequotas", "compute")["status"]["hard"]["pods"],
        "10"
    );
    // Raising the quota lets the last pod in, and the failure clears.
    edit(&w.store, "resourcequotas", "compute", |q| {
        q["spec"]["hard"]["requests.cpu"] = json!("2")
    });
    wait_for("rollout once the quota allows it", || {
        rollout_complete(&w.store, "web")
    })
    .await;
    let d = get(&w.store, "deployments", "web");
    let conditions = d["status"]["conditions"].as_array().unwrap();
    assert!(conditions.iter().all(|c| c["type"] != "ReplicaFailure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_wait_for_room() {
    let w = world(0);
    add_node(&w.store, "small", "1", "4Gi");
    create(
        &w.store,
        "deployments",
        deployment("web", 3, vec![container("web", "400m", "64Mi")]),
    );
    wait_for("an unschedulable pod", || {
        pods_of(&w.store, "web").iter().any(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "PodScheduled"
                        && c["reason"] == "Unschedulable"
                        && c["message"] == "0/1 nodes are available: 1 Insufficient cpu."
                })
            })
        }) && !events(&w.store, "FailedScheduling").is_empty()
    })
    .await;
    let failed = events(&w.store, "FailedScheduling");
    assert_eq!(failed[0]["source"]["component"], "default-scheduler");
    assert_eq!(failed[0]["type"], "Warning");
    assert!(!rollout_complete(&w.store, "web"));
    add_node(&w.store, "big", "4", "16Gi");
    wait_for("all pods ready once a node is added", || {
        rollout_complete(&w.store, "web")
    })
    .await;
    let nodes: Vec<String> = pods_of(&w.store, "web")
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_owned())
        .collect();
    assert!(nodes.contains(&"big".to_owned()));
    assert!(!events(&w.store, "Scheduled").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_removes_old_pods_before_new_ones_and_prunes_history() {
    let w = world(2);
    let mut d = deployment("web", 2, vec![container("web", "100m", "64Mi")]);
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    d["spec"]["revisionHistoryLimit"] = json!(1);
    create(&w.store, "deployments", d);
    wait_for("first rollout", || rollout_complete(&w.store, "web")).await;
    for (round, image) in ["example/web:2", "example/web:3"].iter().enumerate() {
        let tracker = track_pods(&w.store, "web");
        edit(&w.store, "deployments", "web", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image)
        });
        let revision = (round + 2).to_string();
        wait_for("the recreate rollout", || {
            rollout_complete(&w.store, "web")
                && get(&w.store, "deployments", "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    == revision.as_str()
        })
        .await;
        let t = tracker.lock().unwrap();
        assert!(
            t.max_pods <= 2,
            "Recreate never runs old and new pods together, saw {}",
            t.max_pods
        );
        assert_eq!(t.min_ready, Some(0), "every old pod went first");
    }
    wait_for("history pruned to one old ReplicaSet", || {
        w.store.scan("replicasets", Some(NS), |rs| Some(rs.clone())).len() == 2
    })
    .await;
}

/// A pod asking for `nvidia.com/gpu` fits only where the node's allocatable of it, minus what
/// its pods request, covers the request; elsewhere it waits with the scheduler's message.
/// Upstream: `fitsRequest` (pkg/scheduler/framework/plugins/noderesources/fit.go) checks every
/// scalar resource of the pod's request against `allocatable.ScalarResources[name]` minus the
/// node's requested and reports `Insufficient <name>` per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_pods_land_on_gpu_nodes_until_their_gpus_run_out() {
    let w = world(2);
    let gpu_node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "gpu-0", "labels": {"kubernetes.io/hostname": "gpu-0"}},
        "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "4"}},
    });
    w.store
        .create(&ObjectKey::new("nodes", "", "gpu-0"), gpu_node)
        .unwrap();
    let mut gpu = container("web", "100m", "64Mi");
    gpu["resources"]["limits"]["nvidia.com/gpu"] = json!("2");
    gpu["resources"]["requests"]["nvidia.com/gpu"] = json!("2");
    create(&w.store, "deployments", deployment("web", 3, vec![gpu]));
    // Two pods of 2 GPUs fill gpu-0's 4; the third fits nowhere (the 4-CPU nodes have none).
    wait_for("two bound pods and one unschedulable", || {
        let pods = pods_of(&w.store, "web");
        let bound = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()))
            .count();
        let waiting = pods.iter().any(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["reason"] == "Unschedulable"
                        && c["message"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
                })
            })
        });
        bound == 2 && waiting
    })
    .await;
    for pod in pods_of(&w.store, "web") {
        if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            assert_eq!(node, "gpu-0", "a GPU pod on a node without GPUs");
        }
    }
    let failed = events(&w.store, "FailedScheduling");
    assert_eq!(
        failed[0]["message"],
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    );
}

fn label_pool(store: &Store, node: &str) {
    store
        .modify(&ObjectKey::new("nodes", "", node), UpdatePart::Main, |n| {
            n["metadata"]["labels"]["pool"] = json!("gpu");
            true
        })
        .unwrap();
}

/// The scheduler's NodeAffinity filter (pkg/scheduler/framework/plugins/nodeaffinity/
/// node_affinity.go, `Filter`, `ErrReasonPod`) runs before NodeResourcesFit: a node the pod's
/// nodeSelector rules out gives "node(s) didn't match Pod's node affinity/selector" however much
/// room it has, and pods land only on nodes with the label once one has room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_go_only_to_nodes_their_node_selector_allows() {
    let w = world(0);
    add_node(&w.store, "big", "16", "64Gi");
    add_node(&w.store, "pool-small", "1", "4Gi");
    label_pool(&w.store, "pool-small");
    let mut d = deployment("web", 3, vec![container("web", "400m", "64Mi")]);
    d["spec"]["template"]["spec"]["nodeSelector"] = json!({"pool": "gpu"});
    create(&w.store, "deployments", d);
    let message = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node \
                   affinity/selector.";
    wait_for("a pod the selected pool has no room for", || {
        pods_of(&w.store, "web").iter().any(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["reason"] == "Unschedulable" && c["message"] == message)
            })
        })
    })
    .await;
    assert!(
        pods_of(&w.store, "web")
            .iter()
            .all(|p| p["spec"]["nodeName"].as_str().is_none_or(|n| n == "pool-small")),
        "nothing on the big node"
    );
    add_node(&w.store, "pool-big", "4", "16Gi");
    label_pool(&w.store, "pool-big");
    wait_for("all pods ready on the pool", || rollout_complete(&w.store, "web")).await;
    for pod in pods_of(&w.store, "web") {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        assert!(node.starts_with("pool-"), "{node}");
    }
}

/// Pods pinned to nodes by name (`matchFields` `metadata.name In`): the NodeAffinity PreFilter
/// narrows the nodes to those names and the others are reported as absent
/// (pkg/scheduler/schedule_one.go `SetAbsentNodesStatus`, "node(s) didn't satisfy plugin(s)
/// [NodeAffinity]"), not as failing the filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_pinned_by_node_name_report_the_other_nodes_as_absent() {
    let w = world(0);
    add_node(&w.store, "big", "16", "64Gi");
    add_node(&w.store, "small", "1", "4Gi");
    let mut d = deployment("web", 3, vec![container("web", "400m", "64Mi")]);
    d["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["small"]}]}
    ]}}});
    create(&w.store, "deployments", d);
    let message = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't satisfy plugin(s) \
                   [NodeAffinity].";
    wait_for("a pod the named node has no room for", || {
        pods_of(&w.store, "web").iter().any(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["reason"] == "Unschedulable" && c["message"] == message)
            })
        })
    })
    .await;
    assert!(
        pods_of(&w.store, "web")
            .iter()
            .all(|p| p["spec"]["nodeName"].as_str().is_none_or(|n| n == "small")),
        "nothing on the big node"
    );
}
