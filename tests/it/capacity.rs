//! The capacity warning on a cluster with many pods in other namespaces: they are read page by
//! page with finished pods left out by the server, and still counted on their nodes.

use std::time::Duration;

use orchscale_sim::store::ObjectKey;
use orchscale_sim::{Sim, SimOptions};
use serde_json::{Value, json};

use crate::harness::{run, wait_ready};

/// A node with room for many small pods (4 CPU, 16Gi, 1000 pods).
fn wide_node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "1000"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

/// A pod bound to `node` requesting `cpu`, running or finished (`phase`).
fn bound_pod(node: &str, cpu: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"labels": {"app": "batch"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                 "resources": {"requests": {"cpu": cpu, "memory": "8Mi"}}}]},
        "status": {"phase": phase},
    })
}

#[test]
fn capacity_counts_pods_of_every_namespace_read_page_by_page() {
    let sim = Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts");
    wait_ready(&sim, 3);
    let store = sim.store();
    // Four more nodes, each filled by 300 running pods of four other namespaces to 2.1 of its
    // 4 CPU; and 100 finished pods requesting a whole node each, which hold no room.
    for n in 0..4 {
        let node = format!("wide-{n}");
        store
            .create(&ObjectKey::new("nodes", "", &node), wide_node(&node))
            .expect("node");
    }
    for i in 0..1200 {
        let (namespace, node) = (format!("team-{}", i % 4), format!("wide-{}", (i / 4) % 4));
        let key = ObjectKey::new("pods", &namespace, &format!("worker-{i}"));
        store
            .create(&key, bound_pod(&node, "7m", "Running"))
            .expect("pod");
    }
    for i in 0..100 {
        let key = ObjectKey::new("pods", "jobs", &format!("done-{i}"));
        store
            .create(&key, bound_pod(&format!("wide-{}", i % 4), "4", "Succeeded"))
            .expect("pod");
    }

    // Pods of 2 CPU + 50m: one fits on each seeded node (the rollout replaces the
    // orchestrator's own pods), none on the wide ones (1.9 CPU free): 3 of 4. Counting only
    // the namespace would say 7 fit; counting the finished pods, 0 on the wide nodes too.
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=2",
            "--limits",
            "cpu=3",
            "--dry-run",
        ],
    );
    out.assert_code(0);
    assert!(
        out.stderr.contains("WARNING: capacity: only 3 of 4 pods"),
        "{}",
        out.stderr
    );

    // A shortfall reads every node's pods (3 seeded + 4 wide nodes), each once, as `kubectl
    // describe node` lists them: bound to the node, without the finished pods, page by page
    // (limit 500); never the whole cluster's pods in one list.
    assert_node_reads(&sim, 0, 7);
}

/// The pod lists the capacity check sent after the first `since`: `count` of them, each of one
/// node's running pods (`spec.nodeName=<node>,status.phase!=Succeeded,status.phase!=Failed`,
/// limit 500), no node twice, and no list of every pod. Returns the nodes read.
fn assert_node_reads(sim: &Sim, since: usize, count: usize) -> Vec<String> {
    let lists: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/pods")
        .skip(since)
        .collect();
    assert_eq!(lists.len(), count, "{lists:#?}");
    let mut nodes = Vec::new();
    for list in &lists {
        assert!(list.query.contains("limit=500"), "{}", list.query);
        let selector = list
            .query
            .split('&')
            .find_map(|p| p.strip_prefix("fieldSelector="))
            .unwrap_or_else(|| panic!("a list of every pod: {}", list.query))
            .replace("%3D", "=")
            .replace("%21", "!")
            .replace("%2C", ",");
        let node = selector
            .strip_prefix("spec.nodeName=")
            .and_then(|s| s.strip_suffix(",status.phase!=Succeeded,status.phase!=Failed"))
            .unwrap_or_else(|| panic!("not one node's running pods: {selector}"));
        assert!(!nodes.contains(&node.to_owned()), "{node} read twice");
        nodes.push(node.to_owned());
    }
    nodes
}

#[test]
fn a_min_that_needs_no_more_pods_reads_no_cluster_wide_pods() {
    let sim = crate::harness::sim();
    let cluster_wide = |sim: &Sim| {
        sim.requests()
            .iter()
            .filter(|r| r.path == "/api/v1/pods" || r.path == "/api/v1/nodes")
            .count()
    };
    run(&sim, &["hpa", "--min", "2", "--dry-run"]).assert_code(0);
    assert_eq!(
        cluster_wide(&sim),
        0,
        "a lower --min needs no room: {:#?}",
        sim.requests()
    );
    // Down to 1 and back to 3: the HPA runs 3 replicas, which the room counts already.
    run(&sim, &["hpa", "--min", "1", "--yes"]).assert_code(0);
    run(&sim, &["hpa", "--min", "3", "--dry-run"]).assert_code(0);
    assert_eq!(cluster_wide(&sim), 0, "no room needed for pods that run already");
    run(&sim, &["hpa", "--min", "4", "--dry-run"]).assert_code(0);
    assert_eq!(
        cluster_wide(&sim),
        2,
        "a --min above the min and the running pods reads the nodes and one node's pods"
    );
}

/// The capacity warning on a cluster of many namespaces (the sim's `--pods` spread: 2,000 pods
/// in two team namespaces on 19 batch nodes, a hundred finished Job pods, events), where a list
/// of every pod takes pages: with room, the check reads one node's pods; without, every
/// node's, and the warning counts the whole cluster.
#[test]
fn capacity_on_a_big_cluster_reads_pods_node_by_node_and_stops_when_they_fit() {
    let sim = Sim::start(SimOptions {
        extra_pods: 2_000,
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts");
    wait_ready(&sim, 3);
    let nodes = sim.store().list("nodes", None).0.len();
    assert_eq!(nodes, 22, "3 seeded nodes and 19 batch nodes");
    let team_namespaces: std::collections::BTreeSet<String> = sim
        .store()
        .list("pods", None)
        .0
        .iter()
        .filter_map(|p| p["metadata"]["namespace"].as_str().map(str::to_owned))
        .filter(|ns| ns.starts_with("team-"))
        .collect();
    assert_eq!(team_namespaces.len(), 2, "{team_namespaces:?}");

    // 4 pods of 600m (+50m of the log shipper): a batch node (1 of 4 CPU and 100 of 110 pod
    // slots taken) has room for 4 of them, so one node's pods are read and no warning is given.
    let out = run(&sim, &["resources", "--requests", "cpu=600m", "--dry-run"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("capacity:"), "{}", out.stderr);
    let read = assert_node_reads(&sim, 0, 1);
    assert!(read[0].starts_with("batch-node-"), "{read:?}");

    // Pods of 3 CPU + 50m (1 GiB + 64 MiB): none fits on a batch node (3 CPU free), one on each seeded node
    // (the rollout replaces the orchestrator's own pods; postgres takes 500m of one): 3 of 4.
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=3",
            "--limits",
            "cpu=4",
            "--dry-run",
        ],
    );
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "WARNING: capacity: only 3 of 4 pods (3.05 cores CPU / 1088 MiB each) fit in the nodes' \
             free room: 1 would stay Pending (short of cpu on 22 nodes); they would be Unschedulable \
             and the rollout would stall"
        ),
        "{}",
        out.stderr
    );
    // Every node read, each once, by its own list.
    assert_node_reads(&sim, 1, nodes);
}

/// The node lists the capacity check sent after the first `since`, as their `limit`s: the
/// first page is small (10), a later one, read only when the nodes so far have no room, the
/// usual 500 with the server's continue token.
fn node_pages(sim: &Sim, since: usize) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/nodes")
        .skip(since)
        .map(|r| {
            let limit = r
                .query
                .split('&')
                .find_map(|p| p.strip_prefix("limit="))
                .unwrap_or("none");
            let continued = r.query.split('&').any(|p| p.starts_with("continue="));
            format!("limit={limit}{}", if continued { " continue" } else { "" })
        })
        .collect()
}

/// On a cluster of 58 nodes (53 batch nodes of the `--pods` spread, 2 GPU nodes, the 3 seeded
/// ones) the node list takes two pages, and the second is read only when the first has no
/// room: CPU pods find it among the first 10 nodes; GPU pods find none there (nodes without a
/// GPU are counted as no room without reading their pods) and the GPU nodes in the second
/// page; a shortfall reads both pages and every candidate's pods, and counts all 58 nodes.
#[test]
fn the_node_list_is_read_a_page_at_a_time_and_only_as_far_as_the_room_needs() {
    let sim = Sim::start(SimOptions {
        extra_pods: 5_500,
        gpu_nodes: 2,
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts");
    wait_ready(&sim, 3);
    let nodes = sim.store().list("nodes", None).0.len();
    assert_eq!(nodes, 58, "3 seeded, 53 batch and 2 GPU nodes");

    let out = run(&sim, &["resources", "--requests", "cpu=600m", "--dry-run"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("capacity:"), "{}", out.stderr);
    assert_eq!(node_pages(&sim, 0), ["limit=10"]);
    let read = assert_node_reads(&sim, 0, 1);
    assert!(read[0].starts_with("batch-node-"), "{read:?}");

    let out = run(&sim, &["resources", "--limits", "nvidia.com/gpu=1", "--dry-run"]);
    out.assert_code(0);
    assert!(!out.stderr.contains("capacity:"), "{}", out.stderr);
    assert_eq!(node_pages(&sim, 1), ["limit=10", "limit=500 continue"]);
    let read = assert_node_reads(&sim, 1, 1);
    assert!(
        read[0].starts_with("gpu-node-"),
        "only a GPU node's pods are read: {read:?}"
    );

    // 3 CPU + 50m per pod: a batch node (1 of 4 CPU taken) has no room, a seeded or GPU node one
    // each (postgres takes 500m of a seeded one; the rollout replaces the orchestrator's own).
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=3",
            "--limits",
            "cpu=4",
            "--dry-run",
        ],
    );
    out.assert_code(0);
    assert!(
        !out.stderr.contains("WARNING: capacity:"),
        "3 seeded and 2 GPU nodes take the 4 pods: {}",
        out.stderr
    );
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=7",
            "--limits",
            "cpu=8",
            "--dry-run",
        ],
    );
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "WARNING: capacity: only 2 of 4 pods (7.05 cores CPU / 1088 MiB each) fit in the nodes' \
             free room: 2 would stay Pending (short of cpu on 58 nodes)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(node_pages(&sim, 5), ["limit=10", "limit=500 continue"]);
}
