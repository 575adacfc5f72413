//! Scaling profiles end to end on the sim: export -> edit -> diff (exit 1) -> apply -> diff
//! (exit 0); a failure in step 3 stops apply with steps 1-2 done, and a second apply does only
//! what is missing; --rollback-on-failure puts the cluster back to its exported state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orchscale_sim::Sim;
use orchscale_sim::store::ObjectKey;
use serde_json::{Value, json};

use crate::harness::{NAMESPACE, object, run, sim, wait_ready};

/// The peak profile the tests apply: every step changes something. The database's memory
/// (step 1), the pool (step 2, with its restart), the orchestrator's CPU request (step 3) and
/// the HPA's range (step 4).
const PEAK: &str = "apiVersion: orchscale.io/v1
kind: ScalingProfile
metadata:
  name: peak
spec:
  hpa:
    minReplicas: 3
    maxReplicas: 12
  resources:
    orchestrator:
      requests:
        cpu: 750m
  database:
    resources:
      requests:
        memory: 1536Mi
  pool:
    connections: 30
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn export(sim: &Sim) -> Value {
    let out = run(sim, &["export", "--name", "normal", "-o", "json"]);
    out.assert_code(0);
    out.json()["profile"].clone()
}

/// Which objects the requests since the last clear wrote (`PATCH`/`POST`/`DELETE`, dry runs
/// and access reviews left out), as `resource/name`.
fn written_objects(sim: &Sim) -> Vec<String> {
    let mut written: Vec<String> = sim
        .persisted_writes()
        .iter()
        .filter(|r| !r.path.contains("selfsubjectaccessreviews"))
        .map(|r| {
            let parts: Vec<&str> = r.path.trim_end_matches('/').rsplit('/').take(2).collect();
            format!("{}/{}", parts.get(1).unwrap_or(&""), parts.first().unwrap_or(&""))
        })
        .collect();
    written.dedup();
    written
}

/// PEAK with an orchestrator pod four times as large in memory (4Gi + the 64Mi sidecar): the
/// profile the quota of [`create_quota`] stops at step 3.
fn peak_big() -> String {
    PEAK.replace(
        "      requests:\n        cpu: 750m\n",
        "      requests:\n        cpu: 750m\n        memory: 4Gi\n      limits:\n        memory: 8Gi\n",
    )
}

/// A ResourceQuota on requests.memory that every step of [`peak_big`] but the third fits.
/// Upstream counts a terminating pod against quota until twice its grace period has passed
/// (pkg/quota/v1/evaluator/core/pods.go, `QuotaV1Pod`), so the pool step's rolling restart
/// (maxSurge 1) may count up to 6 orchestrator pods of 1088Mi besides postgres's 1536Mi after
/// step 1: 8064Mi. Step 3's first new pod needs 3 x 1088Mi + 4160Mi + 1536Mi = 8960Mi. A quota
/// of 8500Mi passes the one and refuses the other whether terminating pods count or not.
fn create_quota(sim: &Sim) {
    let key = ObjectKey::new("resourcequotas", NAMESPACE, "compute");
    sim.store()
        .create(
            &key,
            json!({"apiVersion": "v1", "kind": "ResourceQuota",
                   "metadata": {"name": "compute", "namespace": NAMESPACE},
                   "spec": {"hard": {"requests.memory": "8500Mi"}}}),
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

fn container(sim: &Sim, resource: &str, name: &str, container: &str) -> Value {
    object(sim, resource, name)["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .cloned()
        .unwrap()
}

#[test]
fn export_edit_diff_apply_diff() {
    let sim = sim();
    wait_ready(&sim, 3);
    let dir = tempfile::tempdir().unwrap();

    // The export round-trips: as a file, it is in place (diff 0) and applying it writes nothing.
    let out = run(&sim, &["export", "--name", "normal"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .starts_with("apiVersion: orchscale.io/v1\nkind: ScalingProfile\n"),
        "{}",
        out.stdout
    );
    let normal = write(dir.path(), "normal.yaml", &out.stdout);
    let normal_path = normal.to_str().unwrap();
    run(&sim, &["diff", "-f", normal_path]).assert_code(0);
    sim.clear_requests();
    let out = run(&sim, &["apply", "-f", normal_path]);
    out.assert_code(0);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    assert_eq!(
        written_objects(&sim),
        Vec::<String>::new(),
        "applying an export writes nothing"
    );

    let peak = write(dir.path(), "peak.yaml", PEAK);
    let peak_path = peak.to_str().unwrap();
    let out = run(&sim, &["diff", "-f", peak_path]);
    out.assert_code(1);
    for field in [
        "statefulset/postgres spec.template.spec.containers[postgres].resources.requests.memory: 1Gi -> 1536Mi",
        "configmap/orchestrator-config",
        "deployment/orchestrator spec.template.spec.containers[orchestrator].resources.requests.cpu: 500m -> 750m",
        "horizontalpodautoscaler/orchestrator spec.maxReplicas: 10 -> 12",
        "DOWNTIME",
    ] {
        assert!(
            out.stdout.contains(field) || out.stderr.contains(field),
            "{field}\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    // An object a GitOps tool owns gets the single commands' revert warning, in JSON too.
    sim.store()
        .modify(
            &ObjectKey::new("horizontalpodautoscalers", NAMESPACE, "orchestrator"),
            orchscale_sim::store::UpdatePart::Main,
            |h| {
                h["metadata"]["labels"] = json!({"argocd.argoproj.io/instance": "orchestrator-prod"});
                true
            },
        )
        .unwrap();
    let doc = run(&sim, &["diff", "-f", peak_path, "-o", "json"]);
    doc.assert_code(1);
    assert!(
        doc.stderr
            .contains("managed by Argo CD (application orchestrator-prod)"),
        "{}",
        doc.stderr
    );
    let doc = doc.json();
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("Argo CD")),
        "{doc}"
    );
    assert_eq!(doc["differences"], true);
    let kinds: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["database-resources", "pool", "deployment-resources", "hpa"]
    );
    assert_eq!(doc["changes"].as_array().unwrap().len(), 4);

    // Without a terminal and without --yes, the restart is not confirmed: nothing written.
    sim.clear_requests();
    run(&sim, &["apply", "-f", peak_path]).assert_code(3);
    assert_eq!(written_objects(&sim), Vec::<String>::new());

    let out = run(&sim, &["apply", "-f", peak_path, "--yes"]);
    out.assert_code(0);
    for step in [
        "step 1/4 database resources: applied",
        "step 2/4 connection pool and restart: applied",
        "step 3/4 deployment resources: applied",
        "step 4/4 HPA: applied",
    ] {
        assert!(
            out.stdout.contains(step),
            "{step}\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    run(&sim, &["diff", "-f", peak_path]).assert_code(0);
    assert_eq!(
        container(&sim, "statefulsets", "postgres", "postgres")["resources"]["requests"]["memory"],
        "1536Mi"
    );
    assert_eq!(
        container(&sim, "deployments", "orchestrator", "orchestrator")["resources"]["requests"]["cpu"],
        "750m"
    );
    assert_eq!(
        object(&sim, "horizontalpodautoscalers", "orchestrator")["spec"]["maxReplicas"],
        12
    );
    let config = object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"].clone();
    assert!(
        config.as_str().unwrap().contains("max_connections: 30"),
        "{config}"
    );
    // The other container and the keys the profile does not name keep their values.
    assert_eq!(
        container(&sim, "deployments", "orchestrator", "log-shipper")["resources"]["requests"]["cpu"],
        "50m"
    );
    assert_eq!(
        container(&sim, "deployments", "orchestrator", "orchestrator")["resources"]["requests"]["ephemeral-storage"],
        "1Gi"
    );
    // Each step's write carries its audit record, naming the profile and the step.
    let record =
        object(&sim, "deployments", "orchestrator")["metadata"]["annotations"]["orchscale.io/last-change"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(
        record.contains("profile peak, step 3/4 deployment resources"),
        "{record}"
    );
}

#[test]
fn a_failure_in_step_3_stops_and_a_second_apply_does_only_what_is_missing() {
    let sim = sim();
    wait_ready(&sim, 3);
    let dir = tempfile::tempdir().unwrap();
    let peak = write(dir.path(), "peak.yaml", &peak_big());
    let peak_path = peak.to_str().unwrap();
    create_quota(&sim);
    // The preview foretells it with the `resources` command's own quota check.
    let out = run(&sim, &["diff", "-f", peak_path]);
    out.assert_code(1);
    assert!(
        out.stdout
            .contains("WARNING: ResourceQuota compute: requests.memory would need"),
        "{}",
        out.stdout
    );

    let out = run(&sim, &["apply", "-f", peak_path, "--yes", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    let verdicts: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["applied", "applied", "failed", "not run"], "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("step 3/4 deployment resources failed"),
        "{message}"
    );
    assert!(
        message.contains("steps done: 1 (applied), 2 (applied)"),
        "{message}"
    );
    assert!(
        out.stderr.contains("FailedCreate") || message.contains("quota"),
        "{message}\n{}",
        out.stderr
    );
    assert_eq!(
        object(&sim, "horizontalpodautoscalers", "orchestrator")["spec"]["maxReplicas"],
        10,
        "step 4 not run"
    );

    // The fault goes; the ReplicaSet controller notices (the condition clears) as it would
    // on its next sync.
    sim.store()
        .delete(&ObjectKey::new("resourcequotas", NAMESPACE, "compute"), None)
        .unwrap();
    for _ in 0..200 {
        let d = object(&sim, "deployments", "orchestrator");
        let failing = d["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "ReplicaFailure"));
        if !failing {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    sim.clear_requests();
    let out = run(&sim, &["apply", "-f", peak_path, "--yes"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("step 1/4 database resources: unchanged"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("step 2/4 connection pool and restart: unchanged"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("step 4/4 HPA: applied"), "{}", out.stdout);
    // Only what was missing is written: the HPA (step 3's spec was stored by the first run,
    // whose rollout the quota stopped).
    assert_eq!(written_objects(&sim), ["horizontalpodautoscalers/orchestrator"]);
    wait_ready(&sim, 3);
    run(&sim, &["diff", "-f", peak_path]).assert_code(0);
}

#[test]
fn rollback_on_failure_returns_to_the_exported_state() {
    let sim = sim();
    wait_ready(&sim, 3);
    let dir = tempfile::tempdir().unwrap();
    let before = export(&sim);
    let peak = write(dir.path(), "peak.yaml", &peak_big());
    create_quota(&sim);

    let out = run(
        &sim,
        &[
            "apply",
            "-f",
            peak.to_str().unwrap(),
            "--yes",
            "--rollback-on-failure",
            "-o",
            "json",
        ],
    );
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["rolledBack"], true, "{doc}");
    let verdicts: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["rolled back", "rolled back", "rolled back", "not run"],
        "{doc}"
    );

    // Field by field, the cluster is as exported before.
    let after = export(&sim);
    for field in ["hpa", "replicas", "resources", "database", "pool"] {
        assert_eq!(after["spec"][field], before["spec"][field], "spec.{field}");
    }
    assert_eq!(after, before);
}

#[test]
fn invalid_profiles_are_exit_2_with_file_line_and_field_before_any_request() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        &PEAK.replace("maxReplicas: 12", "maxReplicas: twelve"),
    );
    let out = run(&sim, &["apply", "-f", bad.to_str().unwrap(), "--yes"]);
    out.assert_code(2);
    assert!(out.stderr.contains("bad.yaml:8:"), "{}", out.stderr);
    assert!(out.stderr.contains("spec.hpa.maxReplicas"), "{}", out.stderr);
    let unknown = write(
        dir.path(),
        "unknown.yaml",
        &PEAK.replace("  pool:\n", "  pools:\n"),
    );
    let out = run(&sim, &["diff", "-f", unknown.to_str().unwrap()]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("unknown.yaml:17:") && out.stderr.contains("pools"),
        "{}",
        out.stderr
    );
    assert!(sim.requests().is_empty(), "refused before connecting");
}

#[test]
fn undo_reverts_a_whole_profile_application_as_one() {
    let sim = sim();
    wait_ready(&sim, 3);
    let dir = tempfile::tempdir().unwrap();
    let before = export(&sim);
    let peak = write(dir.path(), "peak.yaml", PEAK);
    run(&sim, &["apply", "-f", peak.to_str().unwrap(), "--yes"]).assert_code(0);
    // Every step's record carries the same application id.
    let application = |resource: &str, name: &str| -> Value {
        let record =
            object(&sim, resource, name)["metadata"]["annotations"]["orchscale.io/last-change"].clone();
        serde_json::from_str::<Value>(record.as_str().unwrap()).unwrap()["application"].clone()
    };
    let id = application("deployments", "orchestrator");
    assert!(id.as_str().unwrap().starts_with("peak/"), "{id}");
    for (resource, name) in [
        ("statefulsets", "postgres"),
        ("configmaps", "orchestrator-config"),
        ("horizontalpodautoscalers", "orchestrator"),
    ] {
        assert_eq!(application(resource, name), id, "{resource}/{name}");
    }

    // Without a terminal and without --yes: the restarts are not confirmed, nothing written.
    run(&sim, &["undo"]).assert_code(3);
    let out = run(&sim, &["undo", "--yes", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["application"], id);
    let kinds: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["hpa", "deployment-resources", "pool", "database-resources"],
        "reverse order"
    );
    assert_eq!(
        export(&sim),
        before,
        "field by field as exported before the application"
    );
}

/// A profile whose two steps both write the deployment (its replicas, then its resources):
/// the object keeps one record, which must still hold the first step's values, so that one
/// `undo` restores both (before, it restored the replicas and left the new resources).
#[test]
fn undo_restores_both_steps_that_wrote_the_same_object() {
    let sim = sim();
    wait_ready(&sim, 3);
    let hpa =
        orchscale_sim::store::ObjectKey::new("horizontalpodautoscalers", "llm-orchestrator", "orchestrator");
    sim.store().delete(&hpa, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = export(&sim);
    let profile = write(
        dir.path(),
        "two-steps.yaml",
        "apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata:\n  name: two-steps\nspec:\n  \
         replicas: 4\n  resources:\n    orchestrator:\n      requests: {cpu: 600m}\n",
    );
    run(&sim, &["apply", "-f", profile.to_str().unwrap(), "--yes"]).assert_code(0);
    let applied = export(&sim);
    assert_eq!(applied["spec"]["replicas"], 4, "{applied}");
    assert_eq!(
        applied["spec"]["resources"]["orchestrator"]["requests"]["cpu"], "600m",
        "{applied}"
    );

    run(&sim, &["undo", "--yes"]).assert_code(0);
    let after = export(&sim);
    assert_eq!(after["spec"]["replicas"], before["spec"]["replicas"], "{after}");
    assert_eq!(after["spec"]["resources"], before["spec"]["resources"], "{after}");
}

/// One kubeconfig with a context per sim (`a`, `b`, ...), each with its own cluster and user,
/// built from the server, CA and token of each sim's own kubeconfig.
fn fleet_kubeconfig(dir: &Path, sims: &[(&str, &Sim)]) -> PathBuf {
    let field = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in the sim's kubeconfig"))
            .trim()
            .to_string()
    };
    let (mut clusters, mut users, mut contexts) = (String::new(), String::new(), String::new());
    for (name, sim) in sims {
        let text = std::fs::read_to_string(sim.kubeconfig()).unwrap();
        clusters.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n",
            field(&text, "server:"),
            field(&text, "certificate-authority-data:")
        ));
        users.push_str(&format!(
            "- name: {name}\n  user:\n    token: {}\n",
            field(&text, "token:")
        ));
        contexts.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
        ));
    }
    write(
        dir,
        "fleet.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}current-context: a\n"
        ),
    )
}

#[test]
fn a_fleet_runs_in_canary_order_and_stops_at_the_failing_cluster() {
    let (a, b, c) = (sim(), sim(), sim());
    for s in [&a, &b, &c] {
        wait_ready(s, 3);
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fleet_kubeconfig(dir.path(), &[("a", &a), ("b", &b), ("c", &c)]);
    let peak = write(dir.path(), "peak.yaml", &peak_big());
    let peak = peak.to_str().unwrap();
    create_quota(&b);

    // Read-only, three at a time: every cluster differs from the profile.
    let out = crate::harness::run_with(
        &kubeconfig,
        &["diff", "-f", peak, "--context", "a,b,c", "--parallel", "3"],
        &[],
    );
    out.assert_code(1);
    for ctx in ["a", "b", "c"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(ctx) && l.contains("differs")),
            "{ctx}\n{}",
            out.stdout
        );
    }

    // status on all three, two at a time after the canary: one verdict each.
    let out = crate::harness::run_with(
        &kubeconfig,
        &["status", "--context", "a,b,c", "--parallel", "2", "-o", "json"],
        &[],
    );
    out.assert_code(0);
    let verdicts: Vec<String> = out.json()["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["context"].as_str().unwrap(),
                c["verdict"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(verdicts, ["a=ok", "b=ok", "c=ok"]);
    // validate as well, as text: one table line per cluster with its checks.
    let out = crate::harness::run_with(&kubeconfig, &["validate", "--context", "a,b,c"], &[]);
    out.assert_code(0);
    for ctx in ["a", "b", "c"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(ctx) && l.contains("ok") && l.contains("checks passed")),
            "{ctx}\n{}",
            out.stdout
        );
    }

    // apply --parallel is refused: writes go one cluster after the other.
    crate::harness::run_with(
        &kubeconfig,
        &[
            "apply",
            "-f",
            peak,
            "--context",
            "a,b,c",
            "--parallel",
            "2",
            "--yes",
        ],
        &[],
    )
    .assert_code(2);

    let contexts = write(dir.path(), "contexts", "# the canary first\na\nb\nc\n");
    let out = crate::harness::run_with(
        &kubeconfig,
        &[
            "apply",
            "-f",
            peak,
            "--contexts-from",
            contexts.to_str().unwrap(),
            "--yes",
            "-o",
            "json",
        ],
        &[],
    );
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["fleet"], true);
    let clusters: Vec<(String, String)> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["context"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected =
        [("a", "ok"), ("b", "failed"), ("c", "not run")].map(|(c, v)| (c.to_string(), v.to_string()));
    assert_eq!(clusters, expected, "{doc}");
    let b_doc = &doc["clusters"][1]["document"];
    assert!(
        b_doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("step 3/4 deployment resources failed"),
        "{b_doc}"
    );
    assert!(
        out.stderr.contains("[b] "),
        "each cluster's stderr is prefixed:\n{}",
        out.stderr
    );
    // a is at the profile, c untouched (never written to).
    assert_eq!(
        object(&a, "horizontalpodautoscalers", "orchestrator")["spec"]["maxReplicas"],
        12
    );
    assert_eq!(
        object(&c, "horizontalpodautoscalers", "orchestrator")["spec"]["maxReplicas"],
        10
    );
    assert!(c.persisted_writes().is_empty(), "{:?}", c.persisted_writes());
}

fn kubectl_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

/// Runs real kubectl against `sim`; panics with its stderr when it fails.
fn kubectl(kubectl: &Path, sim: &Sim, args: &[&str]) -> String {
    let output = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig())
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits (bounded) until the deployment's and the statefulset's rollouts are complete.
fn wait_rolled_out(sim: &Sim) {
    for _ in 0..400 {
        let d = object(sim, "deployments", "orchestrator");
        let s = object(sim, "statefulsets", "postgres");
        let deployment_done = d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && d["status"]["updatedReplicas"] == d["spec"]["replicas"]
            && d["status"]["readyReplicas"] == d["spec"]["replicas"]
            && d["status"]["replicas"] == d["spec"]["replicas"];
        let statefulset_done = s["status"]["observedGeneration"] == s["metadata"]["generation"]
            && s["status"]["currentRevision"] == s["status"]["updateRevision"]
            && s["status"]["readyReplicas"] == s["spec"]["replicas"];
        if deployment_done && statefulset_done {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the rollouts never finished");
}

#[test]
fn the_kustomize_overlay_applied_by_kubectl_gives_the_state_apply_gives() {
    let Some(kubectl_bin) = kubectl_on_path() else {
        crate::harness::skip_or_fail("kubectl not found on PATH");
        return;
    };
    let (by_tool, by_kustomize) = (sim(), sim());
    wait_ready(&by_tool, 3);
    wait_ready(&by_kustomize, 3);
    let dir = tempfile::tempdir().unwrap();
    let peak = write(dir.path(), "peak.yaml", PEAK);
    let peak = peak.to_str().unwrap();
    run(&by_tool, &["apply", "-f", peak, "--yes"]).assert_code(0);

    // The GitOps repository's base: the fresh cluster's objects as manifests.
    let base = dir.path().join("base");
    std::fs::create_dir(&base).unwrap();
    let mut resources = String::from("resources:\n");
    for object in [
        "deployment/orchestrator",
        "statefulset/postgres",
        "configmap/orchestrator-config",
        "hpa/orchestrator",
    ] {
        let text = kubectl(
            &kubectl_bin,
            &by_kustomize,
            &["get", object, "-n", NAMESPACE, "-o", "json"],
        );
        let mut manifest: Value = serde_json::from_str(&text).unwrap();
        let metadata = manifest["metadata"].as_object_mut().unwrap();
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            metadata.remove(field);
        }
        manifest.as_object_mut().unwrap().remove("status");
        let file = format!("{}.json", object.replace('/', "-"));
        std::fs::write(base.join(&file), manifest.to_string()).unwrap();
        resources.push_str(&format!("- {file}\n"));
    }
    std::fs::write(base.join("kustomization.yaml"), resources).unwrap();

    let overlay = dir.path().join("overlay");
    let out = run(
        &by_kustomize,
        &[
            "diff",
            "-f",
            peak,
            "--emit",
            "kustomize",
            "--emit-dir",
            overlay.to_str().unwrap(),
            "--kustomize-base",
            "../base",
        ],
    );
    out.assert_code(1);
    assert!(
        by_kustomize.persisted_writes().is_empty(),
        "diff --emit writes files, not objects"
    );
    let kustomization = std::fs::read_to_string(overlay.join("kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("- ../base") && kustomization.contains("- path: deployment-orchestrator.yaml"),
        "{kustomization}"
    );

    kubectl(
        &kubectl_bin,
        &by_kustomize,
        &["apply", "-k", overlay.to_str().unwrap()],
    );
    wait_rolled_out(&by_kustomize);
    wait_rolled_out(&by_tool);
    assert_eq!(
        export(&by_kustomize),
        export(&by_tool),
        "field by field, the same state"
    );
    run(&by_kustomize, &["diff", "-f", peak]).assert_code(0);
    // The pool's annotation rolled the pods, as apply's restart did.
    let template = &object(&by_kustomize, "deployments", "orchestrator")["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["orchscale.io/pool-connections"],
        "30"
    );
}

#[test]
fn patch_files_name_the_kubectl_patch_commands() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let peak = write(dir.path(), "peak.yaml", PEAK);
    let out_dir = dir.path().join("patches");
    let out = run(
        &sim,
        &[
            "diff",
            "-f",
            peak.to_str().unwrap(),
            "--emit",
            "patch",
            "--emit-dir",
            out_dir.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    out.assert_code(1);
    let emitted: Vec<String> = out.json()["emitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        emitted,
        [
            "statefulset-postgres.yaml",
            "configmap-orchestrator-config.yaml",
            "deployment-orchestrator.yaml",
            "horizontalpodautoscaler-orchestrator.yaml"
        ]
    );
    let text = run(
        &sim,
        &[
            "diff",
            "-f",
            peak.to_str().unwrap(),
            "--emit",
            "patch",
            "--emit-dir",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        text.stderr.contains(
            "kubectl patch deployment orchestrator -n llm-orchestrator --type strategic --patch-file"
        ),
        "{}",
        text.stderr
    );
    run(
        &sim,
        &["diff", "-f", peak.to_str().unwrap(), "--emit", "kustomize"],
    )
    .assert_code(2);
}

#[test]
fn a_pool_written_without_its_restart_is_restarted_by_the_next_apply() {
    let sim = sim();
    wait_ready(&sim, 3);
    let dir = tempfile::tempdir().unwrap();
    let pool = write(
        dir.path(),
        "pool.yaml",
        "apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata: {name: pool}\nspec:\n  pool: {connections: 30}\n",
    );
    let pool = pool.to_str().unwrap();
    // The config is written, then the restart's patch is refused (not retried).
    sim.faults().fail_next(orchscale_sim::FaultRule {
        method: Some("PATCH".into()),
        resource: Some("deployments".into()),
        status: 422,
        retry_after: None,
        count: 1,
    });
    let out = run(&sim, &["apply", "-f", pool, "--yes"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("step 1/1 connection pool and restart failed"),
        "{}",
        out.stderr
    );
    let config = object(&sim, "configmaps", "orchestrator-config")["data"]["config.yaml"].clone();
    assert!(
        config.as_str().unwrap().contains("max_connections: 30"),
        "{config}"
    );

    // The config is in place, but its pods were never restarted: the step is not done, and
    // the restart is confirmed first (no terminal, no --yes: exit 3, nothing written).
    sim.clear_requests();
    run(&sim, &["apply", "-f", pool]).assert_code(3);
    assert_eq!(written_objects(&sim), Vec::<String>::new());
    let out = run(&sim, &["apply", "-f", pool, "--yes"]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("step 1/1 connection pool and restart: applied"),
        "{}",
        out.stdout
    );
    assert_eq!(
        written_objects(&sim),
        ["deployments/orchestrator"],
        "only the restart"
    );
    // Now it is in place.
    sim.clear_requests();
    let out = run(&sim, &["apply", "-f", pool, "--yes"]);
    out.assert_code(0);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    assert_eq!(written_objects(&sim), Vec::<String>::new());
}

#[test]
fn helm_values_are_written_where_the_values_map_places_them() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let peak = write(dir.path(), "peak.yaml", PEAK);
    let peak = peak.to_str().unwrap();
    let map = write(
        dir.path(),
        "map.yaml",
        "hpa.minReplicas: autoscaling.minReplicas\nhpa.maxReplicas: autoscaling.maxReplicas\n\
         resources.orchestrator: resources\ndatabase.resources: postgresql.primary.resources\n",
    );
    let out_dir = dir.path().join("values");
    let out = run(
        &sim,
        &[
            "diff",
            "-f",
            peak,
            "--emit",
            "helm-values",
            "--values-map",
            map.to_str().unwrap(),
            "--emit-dir",
            out_dir.to_str().unwrap(),
        ],
    );
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("spec.pool.connections is not in --values-map"),
        "the field left out is said:\n{}",
        out.stderr
    );
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out_dir.join("values.yaml")).unwrap()).unwrap();
    assert_eq!(
        values,
        json!({"autoscaling": {"minReplicas": 3, "maxReplicas": 12},
               "resources": {"requests": {"cpu": "750m"}},
               "postgresql": {"primary": {"resources": {"requests": {"memory": "1536Mi"}}}}})
    );
    // Without a map, or with a key that is no profile field: exit 2 before any request.
    sim.clear_requests();
    run(
        &sim,
        &[
            "diff",
            "-f",
            peak,
            "--emit",
            "helm-values",
            "--emit-dir",
            out_dir.to_str().unwrap(),
        ],
    )
    .assert_code(2);
    let bad = write(dir.path(), "bad.yaml", "hpa.max: autoscaling.maxReplicas\n");
    let out = run(
        &sim,
        &[
            "diff",
            "-f",
            peak,
            "--emit",
            "helm-values",
            "--values-map",
            bad.to_str().unwrap(),
            "--emit-dir",
            out_dir.to_str().unwrap(),
        ],
    );
    out.assert_code(2);
    assert!(out.stderr.contains("not a profile field"), "{}", out.stderr);
}
