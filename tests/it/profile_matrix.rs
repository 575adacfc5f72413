//! The profile matrix: a named subset of the end-to-end suite (scale, status, hpa, undo,
//! resources, db resources, db connections, validate) run against each real-cluster profile of
//! [`harness::matrix`]: 1.27, 1.33 and 1.36 plain, eks-like, gke-autopilot-like, a namespace
//! admin (RBAC on) and a cluster without metrics-server. Each test is named after its profile,
//! and each assertion names it too.

use orchscale_sim::Sim;
use orchscale_sim::profile::MetricsApi;
use serde_json::Value;

use crate::harness::{self, Matrix, Output, object, run_with, sim_of, stored_replicas, wait_ready};

/// The profile's sim, settled (3 ready orchestrator pods).
fn start(index: usize) -> (Matrix, Sim) {
    let entry = harness::matrix().swap_remove(index);
    let sim = sim_of(entry.profile.clone());
    wait_ready(&sim, 3);
    (entry, sim)
}

/// Runs the binary as the profile's user (the namespace admin's context with RBAC on).
fn run(m: &Matrix, sim: &Sim, args: &[&str]) -> Output {
    let mut all: Vec<&str> = Vec::new();
    if m.rbac {
        all.extend(["--context", "sim-ns-admin"]);
    }
    all.extend_from_slice(args);
    run_with(sim.kubeconfig(), &all, &[])
}

fn ok(m: &Matrix, out: &Output, what: &str) {
    assert_eq!(
        out.code, 0,
        "[{}] {what}: exit {}\nstdout:\n{}\nstderr:\n{}",
        m.name, out.code, out.stdout, out.stderr
    );
}

fn hpa_max(sim: &Sim) -> Value {
    object(sim, "horizontalpodautoscalers", "orchestrator")["spec"]["maxReplicas"].clone()
}

fn scale_and_status(index: usize) {
    let (m, sim) = start(index);
    let out = run(&m, &sim, &["scale", "--replicas", "4", "--yes"]);
    ok(&m, &out, "scale --replicas 4");
    assert_eq!(stored_replicas(&sim), 4, "[{}]", m.name);
    let status = run(&m, &sim, &["status", "-o", "json"]);
    ok(&m, &status, "status");
    let document = status.json();
    assert_eq!(document["deployment"]["replicas"], 4, "[{}] {document}", m.name);
    let metrics = m.profile.behaviour.metrics_api == MetricsApi::Available;
    assert_eq!(document["metricsAvailable"], metrics, "[{}] {document}", m.name);
}

fn hpa_and_undo(index: usize) {
    let (m, sim) = start(index);
    let out = run(&m, &sim, &["hpa", "--max", "20"]);
    ok(&m, &out, "hpa --max 20");
    assert_eq!(hpa_max(&sim), 20, "[{}]", m.name);
    let undo = run(&m, &sim, &["undo", "--yes"]);
    ok(&m, &undo, "undo of hpa --max 20");
    assert_eq!(hpa_max(&sim), 10, "[{}]", m.name);
}

fn resources_and_db_resources(index: usize) {
    let (m, sim) = start(index);
    let args = ["resources", "--limits", "memory=3Gi", "--yes", "-o", "json"];
    let out = run(&m, &sim, &args);
    ok(&m, &out, "resources --limits memory=3Gi");
    assert_eq!(
        out.json()["changes"].as_array().map(Vec::len),
        Some(1),
        "[{}]",
        m.name
    );
    let args = ["db", "resources", "--limits", "memory=4Gi", "--yes", "-o", "json"];
    let db = run(&m, &sim, &args);
    ok(&m, &db, "db resources --limits memory=4Gi");
    assert_eq!(
        db.json()["changes"].as_array().map(Vec::len),
        Some(1),
        "[{}]",
        m.name
    );
}

fn connections_and_validate(index: usize) {
    let (m, sim) = start(index);
    let out = run(&m, &sim, &["db", "connections", "40", "--yes"]);
    ok(&m, &out, "db connections 40");
    let validate = run(&m, &sim, &["validate", "-o", "json"]);
    let document = validate.json();
    let failed: Vec<&str> = document["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["ok"] != true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    // Without metrics-server the metrics check fails, and only it.
    let expected: Vec<&str> = if m.profile.behaviour.metrics_api == MetricsApi::Available {
        Vec::new()
    } else {
        vec!["metrics available"]
    };
    assert_eq!(failed, expected, "[{}] validate: {document}", m.name);
}

macro_rules! profile_tests {
    ($($profile:ident = $index:expr),* $(,)?) => {$(
        mod $profile {
            #[test]
            fn scale_and_status() {
                super::scale_and_status($index);
            }
            #[test]
            fn hpa_and_undo() {
                super::hpa_and_undo($index);
            }
            #[test]
            fn resources_and_db_resources() {
                super::resources_and_db_resources($index);
            }
            #[test]
            fn connections_and_validate() {
                super::connections_and_validate($index);
            }
        }
    )*};
}

// The order of `harness::matrix()`.
profile_tests! {
    v1_27_plain = 0,
    v1_33_plain = 1,
    v1_36_plain = 2,
    v1_33_eks_like = 3,
    v1_33_gke_autopilot_like = 4,
    v1_33_namespace_admin_rbac = 5,
    v1_33_no_metrics_server = 6,
}

#[test]
fn the_matrix_names_each_profile_once() {
    let names: Vec<&str> = harness::matrix().iter().map(|m| m.name).collect();
    assert_eq!(names.len(), 7);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names);
}
