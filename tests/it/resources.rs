//! `resources`: the rolling restart with new values, only the named keys changing, the
//! refusals before any write, the capacity / quota / HPA warnings and the failures they
//! foretell, --rollback-on-failure, dry run, JSON.

use std::time::Duration;

use orchscale_sim::Sim;
use orchscale_sim::store::ObjectKey;
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, live_pods, object, run, sim, sim_with_gpus, wait_ready};

const CPU_REQUEST: &str = "spec.template.spec.containers[orchestrator].resources.requests.cpu";

/// The orchestrator deployment's container `name` as stored.
fn container(sim: &Sim, name: &str) -> Value {
    let d = object(sim, "deployments", "orchestrator");
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name}"))
        .clone()
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn assert_nothing_written(sim: &Sim) {
    assert!(
        sim.persisted_writes().is_empty(),
        "writes: {:?}",
        sim.persisted_writes()
    );
}

fn assert_original_values(sim: &Sim) {
    let main = container(sim, "orchestrator");
    assert_eq!(
        main["resources"],
        json!({"requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
               "limits": {"cpu": "1", "memory": "2Gi"}})
    );
}

#[test]
fn new_requests_roll_out_and_only_the_named_keys_change() {
    let sim = sim();
    wait_ready(&sim, 3);
    let sidecar_before = container(&sim, "log-shipper");
    let out = run(
        &sim,
        &["resources", "--requests", "cpu=750m,memory=1536Mi", "--yes"],
    );
    out.assert_code(0);

    let main = container(&sim, "orchestrator");
    assert_eq!(
        main["resources"],
        json!({"requests": {"cpu": "750m", "memory": "1536Mi", "ephemeral-storage": "1Gi"},
               "limits": {"cpu": "1", "memory": "2Gi"}})
    );
    assert_eq!(container(&sim, "log-shipper"), sidecar_before);

    let deployment = object(&sim, "deployments", "orchestrator");
    let revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
    let (sets, _) = sim.store().list("replicasets", Some(NAMESPACE));
    let new_rs = sets
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision)
        .expect("the new ReplicaSet");
    let pods = live_pods(&sim);
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["name"], new_rs["metadata"]["name"],
            "every pod is from the new ReplicaSet: {pod}"
        );
        assert!(pod_ready(pod), "{pod}");
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "750m"
        );
    }

    let record: Value = serde_json::from_str(
        deployment["metadata"]["annotations"]["orchscale.io/last-change"]
            .as_str()
            .expect("audit annotation"),
    )
    .unwrap();
    assert_eq!(record["command"], "resources --requests cpu=750m,memory=1536Mi");
    assert_eq!(record["previous"][CPU_REQUEST], "500m");

    assert!(
        out.stderr.contains(&format!("{CPU_REQUEST}: 500m -> 750m")),
        "preview:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("3 pods restart"), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("deployment/orchestrator rolled out: 3 of 3 pods updated"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "new ReplicaSet {}",
            new_rs["metadata"]["name"].as_str().unwrap()
        )),
        "{}",
        out.stdout
    );
    // The patch was a strategic merge patch carrying the resourceVersion.
    let patch = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/deployments/orchestrator"))
        .expect("a PATCH of the deployment");
    assert!(
        patch.query.contains("fieldManager=kubectl-orchscale"),
        "{patch:?}"
    );
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/strategic-merge-patch+json"),
        "{patch:?}"
    );
    let body: Value = serde_json::from_str(&patch.body).unwrap();
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"],
        json!([{"name": "orchestrator", "resources": {"requests": {"cpu": "750m", "memory": "1536Mi"}}}]),
        "only the changed keys of the named container"
    );
}

#[test]
fn without_a_terminal_or_yes_nothing_is_written() {
    let sim = sim();
    let out = run(&sim, &["resources", "--requests", "cpu=750m"]);
    out.assert_code(3);
    assert!(out.stderr.contains("not confirmed"), "{}", out.stderr);
    assert!(out.stderr.contains("3 pods restart"), "{}", out.stderr);
    assert_nothing_written(&sim);
    assert_original_values(&sim);
}

#[test]
fn dry_run_never_prompts_and_persists_nothing() {
    let sim = sim();
    let out = run(&sim, &["resources", "--requests", "cpu=750m", "--dry-run"]);
    out.assert_code(0);
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert!(!out.stderr.contains("not confirmed"), "{}", out.stderr);
    assert_nothing_written(&sim);
    assert_original_values(&sim);
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.query.contains("dryRun=All")),
        "the patch went to the server as a dry run"
    );
}

#[test]
fn request_above_the_current_limit_is_refused() {
    let sim = sim();
    let out = run(&sim, &["resources", "--requests", "cpu=3", "--yes"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("--requests cpu=3 would be above the current limits.cpu 1"),
        "{}",
        out.stderr
    );
    assert_nothing_written(&sim);
}

#[test]
fn bad_quantity_is_refused_before_any_request() {
    let sim = sim();
    for bad in ["cpu=lots", "cpu=-1", "memory"] {
        let out = run(&sim, &["resources", "--requests", bad, "--yes"]);
        out.assert_code(2);
        assert!(out.stderr.contains("--requests"), "{}", out.stderr);
    }
    let out = run(&sim, &["resources", "--yes"]);
    out.assert_code(2);
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
    assert!(sim.requests().is_empty(), "requests: {:?}", sim.requests());
}

#[test]
fn unknown_container_lists_the_containers() {
    let sim = sim();
    let out = run(
        &sim,
        &["resources", "--container", "api", "--requests", "cpu=1", "--yes"],
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains("no container \"api\"")
            && out.stderr.contains("its containers: orchestrator, log-shipper"),
        "{}",
        out.stderr
    );
    assert_nothing_written(&sim);
}

#[test]
fn requests_that_fit_no_node_are_foretold_and_fail_fast() {
    let sim = sim();
    wait_ready(&sim, 3);
    let args = ["resources", "--requests", "cpu=6", "--limits", "cpu=8"];
    let preview = run(&sim, &[&args[..], &["--dry-run"]].concat());
    preview.assert_code(0);
    assert!(
        preview.stderr.contains("WARNING: capacity: only 0 of 4 pods"),
        "{}",
        preview.stderr
    );

    let out = run(&sim, &[&args[..], &["--yes"]].concat());
    out.assert_code(1);
    assert!(out.stderr.contains("Unschedulable"), "{}", out.stderr);
    assert!(
        out.stderr.contains("nodes are available") && out.stderr.contains("Insufficient cpu"),
        "the scheduler's message:\n{}",
        out.stderr
    );
    assert_eq!(
        container(&sim, "orchestrator")["resources"]["requests"]["cpu"],
        "6"
    );
}

#[test]
fn rollback_on_failure_restores_the_previous_values() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=6",
            "--limits",
            "cpu=8",
            "--yes",
            "--rollback-on-failure",
        ],
    );
    out.assert_code(1);
    assert!(out.stderr.contains("Unschedulable"), "{}", out.stderr);
    assert!(out.stderr.contains("rolled back"), "{}", out.stderr);
    assert_original_values(&sim);
    wait_ready(&sim, 3);
    for pod in live_pods(&sim) {
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "500m"
        );
    }
}

#[test]
fn memory_limit_below_the_usage_fails_with_oom_killed() {
    let sim = sim();
    wait_ready(&sim, 3);
    // The load model uses 700Mi per pod: a 512Mi limit is killed.
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "memory=256Mi",
            "--limits",
            "memory=512Mi",
            "--yes",
            "-o",
            "json",
        ],
    );
    out.assert_code(1);
    assert!(out.stderr.contains("OOMKilled"), "{}", out.stderr);
    assert!(out.stderr.contains("raise its memory limit"), "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    assert_eq!(doc["rolledBack"], false);
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("OOMKilled"),
        "{doc}"
    );
    assert_eq!(
        doc["changes"].as_array().unwrap().len(),
        2,
        "says what was applied"
    );
    assert_eq!(
        container(&sim, "orchestrator")["resources"]["limits"]["memory"],
        "512Mi"
    );
}

/// Creates a ResourceQuota and waits until the quota controller reports its usage.
pub(crate) fn create_quota(sim: &Sim, hard: Value) {
    let key = ObjectKey::new("resourcequotas", NAMESPACE, "compute");
    sim.store()
        .create(
            &key,
            json!({"apiVersion": "v1", "kind": "ResourceQuota",
                   "metadata": {"name": "compute", "namespace": NAMESPACE}, "spec": {"hard": hard}}),
        )
        .unwrap();
    for _ in 0..200 {
        if sim
            .store()
            .get(&key)
            .is_some_and(|q| q["status"]["used"].is_object())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the quota controller never reported usage");
}

#[test]
fn quota_exceeded_is_foretold_and_fails_with_failed_create() {
    let sim = sim();
    wait_ready(&sim, 3);
    create_quota(&sim, json!({"requests.cpu": "2200m"}));
    let out = run(&sim, &["resources", "--requests", "cpu=750m", "--yes"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("WARNING: ResourceQuota compute: requests.cpu would need"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("FailedCreate"), "{}", out.stderr);
    assert!(out.stderr.contains("exceeded quota"), "{}", out.stderr);
}

#[test]
fn halving_the_cpu_request_warns_that_the_hpa_scales_up() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["resources", "--requests", "cpu=250m", "--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("HPA orchestrator: CPU request 500m -> 250m doubles measured utilization"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("will likely scale up from 3 to about"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_patch_permission_writes_nothing() {
    let sim = sim();
    sim.faults().deny("patch", "deployments");
    let out = run(&sim, &["resources", "--requests", "cpu=750m", "--yes"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("missing permission: patch deployments in namespace llm-orchestrator"),
        "{}",
        out.stderr
    );
    assert_nothing_written(&sim);
    assert_original_values(&sim);
}

#[test]
fn json_output_has_the_spec_fields_and_the_rollout() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(
        &sim,
        &[
            "resources",
            "--requests",
            "cpu=750m,memory=1536Mi",
            "--yes",
            "-o",
            "json",
        ],
    );
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "resources");
    assert_eq!(doc["context"], "orchscale-sim");
    assert_eq!(doc["namespace"], "llm-orchestrator");
    assert_eq!(doc["dryRun"], false);
    assert_eq!(doc["result"], "ok");
    assert_eq!(
        doc["changes"][0],
        json!({"object": "deployment/orchestrator", "field": CPU_REQUEST, "before": "500m", "after": "750m"})
    );
    assert_eq!(doc["changes"].as_array().unwrap().len(), 2);
    assert_eq!(doc["rollout"]["replicas"], 3, "{}", doc["rollout"]);
    for key in ["updated", "ready", "available"] {
        assert_eq!(doc["rollout"][key], 3, "{key}: {}", doc["rollout"]);
    }
    assert!(doc["rollout"]["newReplicaSet"].is_string(), "{}", doc["rollout"]);
    assert_eq!(doc["container"]["requests"]["ephemeral-storage"], "1Gi");
    assert_eq!(doc["pods"].as_array().unwrap().len(), 3);
    assert!(
        !out.stderr.contains("updated "),
        "no progress in JSON mode:\n{}",
        out.stderr
    );
}

#[test]
fn same_values_by_value_change_nothing() {
    let sim = sim();
    let out = run(
        &sim,
        &["resources", "--requests", "cpu=0.5,memory=1024Mi", "--yes"],
    );
    out.assert_code(0);
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
    assert_nothing_written(&sim);
}

#[test]
fn resource_names_follow_kubernetes_rules_before_any_request() {
    // `gpu` and a typo are refused (exit 2) before anything is sent, as the API server would
    // refuse them only after the prompt (pkg/apis/core/validation ValidateContainerResourceName).
    let sim = sim();
    for (args, says) in [
        (
            &["resources", "--requests", "gpu=1", "--yes"][..],
            "nvidia.com/gpu",
        ),
        (
            &["resources", "--requests", "memroy=2Gi", "--yes"][..],
            "did you mean memory?",
        ),
        (
            &["resources", "--limits", "nvidia.com/gpu=0.5", "--yes"][..],
            "whole number",
        ),
    ] {
        let out = run(&sim, args);
        out.assert_code(2);
        assert!(out.stderr.contains(says), "{args:?}:\n{}", out.stderr);
    }
    assert!(
        sim.requests().is_empty(),
        "no request at all: {:?}",
        sim.requests()
    );
}

#[test]
fn an_extended_resource_limit_sets_its_request_too_and_rolls_out() {
    // Pods asking for a GPU schedule only on nodes that have one.
    let sim = sim_with_gpus(1);
    wait_ready(&sim, 3);
    let out = run(
        &sim,
        &["resources", "--limits", "nvidia.com/gpu=1", "--yes", "-o", "json"],
    );
    out.assert_code(0);
    let d = object(&sim, "deployments", "orchestrator");
    let resources = &d["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["nvidia.com/gpu"], "1", "{}", out.stderr);
    assert_eq!(
        resources["requests"]["nvidia.com/gpu"], "1",
        "requests equal limits"
    );
    let fields: Vec<String> = out.json()["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        fields.iter().any(|f| f.ends_with("requests.nvidia.com/gpu"))
            && fields.iter().any(|f| f.ends_with("limits.nvidia.com/gpu")),
        "both previewed and reported: {fields:?}"
    );
}
