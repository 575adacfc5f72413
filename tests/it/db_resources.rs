//! `db resources`: the postgres statefulset's container, the downtime warning of a single
//! replica, OnDelete (nothing restarts), the ordered rollout of several replicas.

use std::time::Duration;

use orchscale_sim::Sim;
use orchscale_sim::store::{ObjectKey, UpdatePart};
use serde_json::Value;

use crate::harness::{NAMESPACE, object, run, sim};

fn postgres(sim: &Sim) -> Value {
    object(sim, "statefulsets", "postgres")
}

fn postgres_pods(sim: &Sim) -> Vec<Value> {
    let (pods, _) = sim.store().list("pods", Some(NAMESPACE));
    pods.into_iter()
        .filter(|p| {
            p["metadata"]["labels"]["app"] == "postgres" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

/// Waits (bounded) until postgres has `n` ready replicas at one revision.
fn wait_postgres(sim: &Sim, n: i64) {
    for _ in 0..400 {
        let s = postgres(sim);
        let status = &s["status"];
        if status["readyReplicas"].as_i64() == Some(n)
            && status["replicas"].as_i64() == Some(n)
            && status["currentRevision"] == status["updateRevision"]
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("postgres never reached {n} ready replicas");
}

fn change_postgres(sim: &Sim, f: impl FnOnce(&mut Value)) {
    sim.store()
        .modify(
            &ObjectKey::new("statefulsets", NAMESPACE, "postgres"),
            UpdatePart::Main,
            |s| {
                f(s);
                true
            },
        )
        .unwrap();
}

fn memory_request(pod_or_template: &Value) -> Value {
    pod_or_template["spec"]["containers"][0]["resources"]["requests"]["memory"].clone()
}

#[test]
fn single_replica_warns_of_downtime_and_rolls_out() {
    let sim = sim();
    wait_postgres(&sim, 1);
    let out = run(&sim, &["db", "resources", "--requests", "memory=1536Mi", "--yes"]);
    out.assert_code(0);
    assert!(out.stderr.contains("DOWNTIME"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the database restarts and is unavailable"),
        "{}",
        out.stderr
    );
    let s = postgres(&sim);
    assert_eq!(memory_request(&s["spec"]["template"]), "1536Mi");
    assert_eq!(
        s["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "2Gi"
    );
    assert_eq!(s["status"]["currentRevision"], s["status"]["updateRevision"]);
    assert_eq!(s["status"]["readyReplicas"], 1);
    let pods = postgres_pods(&sim);
    assert_eq!(pods.len(), 1);
    assert_eq!(memory_request(&pods[0]), "1536Mi");
    assert!(
        s["metadata"]["annotations"]["orchscale.io/last-change"]
            .as_str()
            .is_some_and(|a| a.contains("db resources --requests memory=1536Mi")),
        "{s}"
    );
    assert!(
        out.stdout.contains("statefulset/postgres rolled out"),
        "{}",
        out.stdout
    );
}

#[test]
fn on_delete_strategy_restarts_nothing_and_does_not_wait() {
    let sim = sim();
    change_postgres(&sim, |s| {
        s["spec"]["updateStrategy"] = serde_json::json!({"type": "OnDelete"});
    });
    wait_postgres(&sim, 1);
    let pod_before = postgres_pods(&sim)[0]["metadata"]["uid"].clone();
    // Nothing restarts, so there is nothing to confirm: no --yes needed.
    let out = run(&sim, &["db", "resources", "--requests", "memory=1536Mi"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("OnDelete: the patch alone restarts nothing")
            && out
                .stdout
                .contains("`kubectl delete pod -n llm-orchestrator postgres-0`"),
        "{}",
        out.stdout
    );
    assert!(!out.stderr.contains("following the rollout"), "{}", out.stderr);
    assert_eq!(memory_request(&postgres(&sim)["spec"]["template"]), "1536Mi");
    let pods = postgres_pods(&sim);
    assert_eq!(pods.len(), 1);
    assert_eq!(
        pods[0]["metadata"]["uid"], pod_before,
        "the pod was not restarted"
    );
    assert_eq!(memory_request(&pods[0]), "1Gi");
}

#[test]
fn three_replicas_update_in_order_to_completion() {
    let sim = sim();
    change_postgres(&sim, |s| s["spec"]["replicas"] = serde_json::json!(3));
    wait_postgres(&sim, 3);
    let out = run(
        &sim,
        &["db", "resources", "--requests", "cpu=750m", "--yes", "-o", "json"],
    );
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "db resources");
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["rollout"]["replicas"], 3);
    assert_eq!(doc["rollout"]["updated"], 3);
    assert_eq!(doc["rollout"]["ready"], 3);
    assert_eq!(
        doc["changes"][0]["field"],
        "spec.template.spec.containers[postgres].resources.requests.cpu"
    );
    let s = postgres(&sim);
    assert_eq!(s["status"]["currentRevision"], s["status"]["updateRevision"]);
    let pods = postgres_pods(&sim);
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "750m"
        );
    }
    assert!(!out.stderr.contains("DOWNTIME"), "{}", out.stderr);
}

#[test]
fn unknown_db_container_is_refused() {
    let sim = sim();
    let out = run(
        &sim,
        &[
            "db",
            "resources",
            "--db-container",
            "pg",
            "--limits",
            "memory=4Gi",
            "--yes",
        ],
    );
    out.assert_code(2);
    assert!(out.stderr.contains("its containers: postgres"), "{}", out.stderr);
    assert!(sim.persisted_writes().is_empty());
}

#[test]
fn a_partition_updates_only_the_ordinals_at_or_above_it() {
    let sim = sim();
    change_postgres(&sim, |s| {
        s["spec"]["replicas"] = serde_json::json!(3);
        s["spec"]["updateStrategy"] =
            serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    });
    wait_postgres(&sim, 3);
    let out = run(&sim, &["db", "resources", "--requests", "cpu=750m", "--yes"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("partition 1: postgres-0 keeps the old spec"),
        "{}",
        out.stderr
    );
    let mut pods = postgres_pods(&sim);
    pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or_default().to_string());
    let cpu: Vec<&Value> = pods
        .iter()
        .map(|p| &p["spec"]["containers"][0]["resources"]["requests"]["cpu"])
        .collect();
    assert_eq!(cpu, ["500m", "750m", "750m"], "postgres-0 keeps the old spec");
    assert_eq!(postgres(&sim)["status"]["updatedReplicas"], 2);
}
