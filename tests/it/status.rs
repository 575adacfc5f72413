//! `status`: the one-screen overview, read-only.

use crate::harness::{run, sim, wait_ready};

#[test]
fn status_shows_everything_and_writes_nothing() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["status"]);
    out.assert_code(0);
    for needle in [
        "Deployment orchestrator: 3 desired",
        "ghcr.io/example/llm-orchestrator:1.8.2",
        "HPA orchestrator: min 3 max 10",
        "cpu",
        "StatefulSet postgres",
        "max_connections: 1000",
        "database.max_connections = 20",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in:\n{}", out.stdout);
    }
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("orchestrator-"))
            .count(),
        3
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert!(sim.requests().iter().all(|r| r.method == "GET"), "only reads");
}

#[test]
fn status_json_has_the_same_data() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["status", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "status");
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["changes"], serde_json::json!([]));
    assert_eq!(doc["deployment"]["replicas"], 3);
    assert_eq!(doc["deployment"]["resources"]["requests"]["cpu"], "500m");
    assert_eq!(doc["hpa"]["min"], 3);
    assert_eq!(doc["hpa"]["max"], 10);
    assert_eq!(doc["statefulset"]["maxConnections"], 1000);
    assert_eq!(doc["poolSize"], 20);
    assert_eq!(doc["pods"].as_array().unwrap().len(), 3);
}

#[test]
fn status_in_the_wrong_namespace_fails_with_a_hint() {
    let sim = sim();
    let out = run(&sim, &["status", "-n", "default", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert_eq!(doc["deployment"], serde_json::Value::Null);
    assert!(doc["error"]["hint"].as_str().unwrap().contains("-n"), "{doc}");
    assert!(sim.persisted_writes().is_empty());
}

#[test]
fn a_part_it_may_not_read_is_shown_as_forbidden_not_a_failure() {
    // Config maps are often off-limits to operators who may scale: the rest still shows, as
    // validate and db connections do with a forbidden read.
    let sim = sim();
    wait_ready(&sim, 3);
    sim.faults().deny("get", "configmaps");
    let out = run(&sim, &["status"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("Deployment orchestrator: 3 desired"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("ConfigMap orchestrator-config: cannot read (forbidden)"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
}

#[test]
fn status_without_permission_to_list_pods_says_so_and_shows_the_rest() {
    // SPEC: where the cluster withholds something, the command says what it could not check
    // and goes on; status is read-only and must not fail on one part.
    let sim = sim();
    sim.faults().deny("list", "pods");
    let out = run(&sim, &["status", "-o", "json"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("cannot list pods in namespace llm-orchestrator (forbidden)"),
        "{}",
        out.stderr
    );
    let doc = out.json();
    assert!(doc["deployment"].is_object(), "{doc}");
    assert!(
        doc["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("cannot list pods")))),
        "{doc}"
    );
}
