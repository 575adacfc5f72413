//! `validate` and `status` on real clusters' profiles: OnDelete StatefulSets, metrics in
//! nanocores and lagging behind pods, no metrics-server, and an operator without
//! `services/proxy`.

use std::time::Duration;

use orchscale_sim::Flavor;
use orchscale_sim::profile::MetricsApi;
use orchscale_sim::store::{ObjectKey, UpdatePart};
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, object, real, run, run_with, sim_of, wait_ready};

fn check<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {document}"))
}

/// StatefulSet currentRevision (pkg/controller/statefulset/stateful_set_utils.go
/// `completeRollingUpdate`): promoted only for RollingUpdate, never for OnDelete before 1.36,
/// while `computeReplicaStatus` counts the pods at updateRevision in updatedReplicas. A
/// database recreated at the new revision is ready, though currentRevision lags forever.
#[test]
fn an_on_delete_database_recreated_at_the_new_revision_is_ready() {
    let sim = sim_of(real(33, Flavor::Plain));
    let key = ObjectKey::new("statefulsets", NAMESPACE, "postgres");
    let settled = |check: &dyn Fn(&Value) -> bool| {
        for _ in 0..200 {
            if check(&object(&sim, "statefulsets", "postgres")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "postgres never settled: {}",
            object(&sim, "statefulsets", "postgres")
        );
    };
    settled(&|s| s["status"]["readyReplicas"] == 1 && s["status"]["currentRevision"].is_string());
    sim.store()
        .modify(&key, UpdatePart::Main, |sts| {
            sts["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
            sts["spec"]["template"]["metadata"]["annotations"] = json!({"orchscale.dev/restartedAt": "now"});
            true
        })
        .expect("postgres exists");
    settled(&|s| s["status"]["updateRevision"] != s["status"]["currentRevision"]);
    // Not updated yet: its pod runs the old revision until it is deleted.
    let pending = run(&sim, &["validate", "-o", "json"]).json();
    let sts = check(&pending, "statefulset ready");
    assert_eq!(sts["ok"], false, "{sts}");
    assert!(
        sts["detail"]
            .as_str()
            .is_some_and(|d| d.contains("OnDelete updates a pod only once it is deleted")),
        "{sts}"
    );
    sim.store()
        .delete(&ObjectKey::new("pods", NAMESPACE, "postgres-0"), None)
        .expect("postgres-0 exists");
    settled(&|s| {
        s["status"]["updatedReplicas"] == 1
            && s["status"]["readyReplicas"] == 1
            && s["status"]["updateRevision"] != s["status"]["currentRevision"]
    });

    let out = run(&sim, &["validate", "-o", "json"]);
    let document = out.json();
    let sts = check(&document, "statefulset ready");
    assert_eq!(sts["ok"], true, "{sts}");
    let status = run(&sim, &["status", "-o", "json"]);
    status.assert_code(0);
    assert_eq!(status.json()["statefulset"]["updated"], true, "{}", status.stdout);
    let text = run(&sim, &["status"]);
    assert!(!text.stdout.contains("rolling out"), "{}", text.stdout);
}

/// metrics-server (pkg/storage/pod.go `podStorage.GetMetrics`): no sample until a pod ran one
/// resolution, CPU in nanocores, memory in Ki. `validate` right after the pods became Ready
/// waits for their first samples instead of failing, and usage reads in millicores and MiB.
#[test]
fn metrics_lag_and_nanocores_on_1_33() {
    let mut profile = real(33, Flavor::Plain);
    profile.behaviour.metrics_resolution = Some(Duration::from_secs(4));
    let sim = sim_of(profile);
    wait_ready(&sim, 3);
    let out = run(
        &sim,
        &["validate", "--health-url", &format!("{}/healthz", sim.url())],
    );
    assert!(
        out.stderr.contains("metrics: no sample yet for 3 pod(s)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("✓ metrics available: metrics.k8s.io answers: samples for 3/3 pods"),
        "{}",
        out.stdout
    );

    let status = run(&sim, &["status", "-o", "json"]);
    status.assert_code(0);
    let pods = status.json()["pods"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 3, "{}", status.stdout);
    for pod in &pods {
        let cpu = pod["cpu"].as_str().expect("cpu usage");
        let memory = pod["memory"].as_str().expect("memory usage");
        assert!(
            cpu.ends_with('m') && !cpu.ends_with("nm"),
            "millicores, not nanocores: {pod}"
        );
        assert!(memory.ends_with("Mi"), "MiB, not Ki: {pod}");
    }
    let text = run(&sim, &["status"]);
    let raw = |token: &str| {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        token.strip_suffix('n').is_some_and(digits) || token.strip_suffix("Ki").is_some_and(digits)
    };
    assert!(!text.stdout.split_whitespace().any(raw), "{}", text.stdout);
    assert!(text.stdout.contains(" MiB"), "{}", text.stdout);
}

/// No metrics-server: no metrics.k8s.io group, its paths 404 (there is no APIService). The
/// commands say so once and go on; an unavailable APIService (503) is named as such.
#[test]
fn without_metrics_server_it_is_said_once_and_the_command_goes_on() {
    let mut profile = real(33, Flavor::Plain);
    profile.behaviour.metrics_api = MetricsApi::Absent;
    let sim = sim_of(profile);
    wait_ready(&sim, 3);
    let status = run(&sim, &["status"]);
    status.assert_code(0);
    let said = format!("{}{}", status.stdout, status.stderr);
    assert_eq!(said.matches("no metrics-server installed").count(), 1, "{said}");
    assert!(
        status.stdout.contains("StatefulSet postgres"),
        "went on:\n{}",
        status.stdout
    );
    let scale = run(&sim, &["scale", "--replicas", "4", "--yes"]);
    scale.assert_code(0);
    assert_eq!(
        scale.stderr.matches("metrics.k8s.io").count(),
        1,
        "{}",
        scale.stderr
    );

    let mut profile = real(33, Flavor::Plain);
    profile.behaviour.metrics_api = MetricsApi::Unavailable;
    let sim = sim_of(profile);
    let validate = run(&sim, &["validate", "-o", "json"]);
    let metrics = check(&validate.json(), "metrics available").clone();
    assert_eq!(metrics["ok"], false);
    assert!(
        metrics["detail"].as_str().is_some_and(|d| d.contains("503")),
        "{metrics}"
    );
}

/// The API server's service proxy needs `get services/proxy` (not in `view`, and not in the
/// restricted operator's role): the health check is "not checked: forbidden" with the
/// `--health-url` hint, and a check not run fails the checklist (exit 1).
#[test]
fn health_without_services_proxy_is_not_checked_and_says_how() {
    let mut profile = real(33, Flavor::Plain);
    profile.api.rbac = true;
    let sim = sim_of(profile);
    wait_ready(&sim, 3);
    let out = run_with(sim.kubeconfig(), &["validate", "--context", "sim-operator"], &[]);
    out.assert_code(1);
    assert!(
        out.stdout.contains("✗ health endpoint: not checked: forbidden"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("--health-url"), "{}", out.stdout);
    assert!(
        out.stdout.contains("✓ pods ready"),
        "the other checks ran:\n{}",
        out.stdout
    );
}
