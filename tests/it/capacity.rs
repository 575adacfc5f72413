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

    // Page by page (limit 500) and without the finished pods: 1,200 + the seeded world's
    // running pods take three pages.
    let lists: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/pods")
        .collect();
    assert_eq!(lists.len(), 3, "{lists:#?}");
    for (i, list) in lists.iter().enumerate() {
        assert!(list.query.contains("limit=500"), "{}", list.query);
        assert!(
            list.query
                .contains("fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"),
            "{}",
            list.query
        );
        assert_eq!(list.query.contains("continue="), i > 0, "{}", list.query);
    }
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
        "a --min above the min and the running pods reads nodes and pods once each"
    );
}
