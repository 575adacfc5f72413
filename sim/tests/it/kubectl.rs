//! Fidelity: real kubectl against the sim, through the Sim's kubeconfig. Each test prints
//! `SKIP: kubectl not found on PATH` and returns when kubectl is not installed (under
//! `CI=true` it fails instead).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use orchscale_sim::Sim;
use orchscale_sim::store::ObjectKey;
use serde_json::Value;

use crate::common::{NS, start};

fn kubectl_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
}

/// Runs kubectl against the sim; `None` (after printing SKIP) when kubectl is missing.
fn kubectl(sim: &Sim, args: &[&str]) -> Option<Output> {
    let Some(binary) = kubectl_path() else {
        crate::common::skip_or_fail("kubectl not found on PATH");
        return None;
    };
    let output = Command::new(binary)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig())
        .arg("--request-timeout=30s")
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs");
    Some(output)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs kubectl and requires success, returning stdout.
fn ok(sim: &Sim, args: &[&str]) -> Option<String> {
    let output = kubectl(sim, args)?;
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(stdout(&output))
}

/// Retries a kubectl command until it succeeds (controllers need a moment to start pods).
fn eventually_ok(sim: &Sim, args: &[&str]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = kubectl(sim, args)?;
        if output.status.success() {
            return Some(stdout(&output));
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} kept failing: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn deployment(sim: &Sim) -> Value {
    sim.store()
        .get(&ObjectKey::new("deployments", NS, "orchestrator"))
        .expect("seeded deployment")
}

#[test]
fn get_prints_every_seeded_kind() {
    let sim = start();
    let expected = [
        ("deploy", "orchestrator"),
        ("hpa", "Deployment/orchestrator"),
        ("sts", "postgres"),
        ("cm", "orchestrator-config"),
        ("svc", "orchestrator"),
        ("nodes", "node-a"),
    ];
    for (kind, needle) in expected {
        let Some(out) = ok(&sim, &["get", kind, "-n", NS]) else {
            return;
        };
        assert!(out.contains(needle), "kubectl get {kind}: {out}");
        assert!(
            out.starts_with("NAME"),
            "kubectl get {kind} prints a table: {out}"
        );
    }
    // The controllers create the pods shortly after start.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let Some(pods) = ok(
            &sim,
            &["get", "pods", "-n", NS, "-l", "app=orchestrator", "-o", "name"],
        ) else {
            return;
        };
        if pods.contains("pod/orchestrator-") {
            break;
        }
        assert!(Instant::now() < deadline, "no orchestrator pods listed: {pods}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for kind in ["rs", "events", "pods", "ns"] {
        if ok(&sim, &["get", kind, "-n", NS]).is_none() {
            return;
        }
    }
    let Some(yaml) = ok(&sim, &["get", "deploy", "orchestrator", "-n", NS, "-o", "yaml"]) else {
        return;
    };
    assert!(yaml.contains("log-shipper"));
}

#[test]
fn scale_then_rollout_status_finishes() {
    let sim = start();
    let Some(out) = ok(
        &sim,
        &["scale", "deployment", "orchestrator", "--replicas=5", "-n", NS],
    ) else {
        return;
    };
    assert!(out.contains("scaled"));
    assert_eq!(deployment(&sim)["spec"]["replicas"], 5);
    let Some(status) = ok(
        &sim,
        &[
            "rollout",
            "status",
            "deployment/orchestrator",
            "--timeout=60s",
            "-n",
            NS,
        ],
    ) else {
        return;
    };
    assert!(status.contains("successfully rolled out"), "{status}");
}

#[test]
fn set_resources_keeps_the_sidecar_and_other_keys() {
    let sim = start();
    let args = [
        "set",
        "resources",
        "deployment",
        "orchestrator",
        "-c",
        "orchestrator",
        "--requests=cpu=600m",
        "-n",
        NS,
    ];
    if ok(&sim, &args).is_none() {
        return;
    }
    let deploy = deployment(&sim);
    let containers = &deploy["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["resources"]["requests"]["cpu"], "600m");
    assert_eq!(containers[0]["resources"]["requests"]["memory"], "1Gi");
    assert_eq!(containers[0]["resources"]["requests"]["ephemeral-storage"], "1Gi");
    assert_eq!(containers[0]["resources"]["limits"]["cpu"], "1");
    assert_eq!(containers[1]["name"], "log-shipper");
    assert_eq!(containers[1]["resources"]["requests"]["cpu"], "50m");
}

#[test]
fn patch_merge_json_and_server_dry_run() {
    let sim = start();
    let merge = [
        "patch",
        "deployment",
        "orchestrator",
        "-n",
        NS,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"llm"}}}"#,
    ];
    if ok(&sim, &merge).is_none() {
        return;
    }
    assert_eq!(deployment(&sim)["metadata"]["labels"]["tier"], "llm");
    let json = [
        "patch",
        "deployment",
        "orchestrator",
        "-n",
        NS,
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/template/spec/containers/0/name","value":"orchestrator"},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"ghcr.io/example/llm-orchestrator:1.9.0"}]"#,
    ];
    ok(&sim, &json);
    assert_eq!(
        deployment(&sim)["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/example/llm-orchestrator:1.9.0"
    );
    let before = deployment(&sim);
    sim.clear_requests();
    let dry = [
        "patch",
        "deployment",
        "orchestrator",
        "-n",
        NS,
        "--type",
        "merge",
        "--dry-run=server",
        "-o",
        "jsonpath={.spec.replicas}",
        "-p",
        r#"{"spec":{"replicas":9}}"#,
    ];
    let Some(out) = ok(&sim, &dry) else { return };
    assert_eq!(out.trim(), "9");
    assert_eq!(deployment(&sim)["spec"], before["spec"]);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn top_pods_and_service_proxy_health() {
    let sim = start();
    let Some(top) = eventually_ok(&sim, &["top", "pods", "-n", NS]) else {
        return;
    };
    assert!(top.contains("CPU(cores)"), "{top}");
    let path = format!("/api/v1/namespaces/{NS}/services/orchestrator:80/proxy/health");
    let Some(health) = eventually_ok(&sim, &["get", "--raw", &path]) else {
        return;
    };
    assert_eq!(health.trim(), r#"{"status":"ok"}"#);
}

#[test]
fn auth_can_i_follows_denials() {
    let sim = start();
    let Some(yes) = ok(&sim, &["auth", "can-i", "patch", "deployments", "-n", NS]) else {
        return;
    };
    assert_eq!(yes.trim(), "yes");
    sim.faults().deny("patch", "deployments");
    let Some(no) = kubectl(&sim, &["auth", "can-i", "patch", "deployments", "-n", NS]) else {
        return;
    };
    assert!(!no.status.success());
    assert!(stdout(&no).starts_with("no"), "{}", stdout(&no));
}

#[test]
fn rollout_restart_rolls_and_finishes() {
    let sim = start();
    // Let the first rollout settle so the restart is a second revision.
    if ok(
        &sim,
        &[
            "rollout",
            "status",
            "deployment/orchestrator",
            "--timeout=60s",
            "-n",
            NS,
        ],
    )
    .is_none()
    {
        return;
    }
    ok(&sim, &["rollout", "restart", "deployment/orchestrator", "-n", NS]);
    let annotations = &deployment(&sim)["spec"]["template"]["metadata"]["annotations"];
    assert!(annotations.get("kubectl.kubernetes.io/restartedAt").is_some());
    let Some(status) = ok(
        &sim,
        &[
            "rollout",
            "status",
            "deployment/orchestrator",
            "--timeout=60s",
            "-n",
            NS,
        ],
    ) else {
        return;
    };
    assert!(status.contains("successfully rolled out"), "{status}");
}

/// kubectl's client minor version (`32` for v1.32), when it can be read.
fn client_minor(sim: &Sim) -> Option<u32> {
    let out = ok(sim, &["version", "--client", "-o", "json"])?;
    let version: Value = serde_json::from_str(&out).ok()?;
    version["clientVersion"]["minor"]
        .as_str()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

fn kubectl_with_stdin(sim: &Sim, args: &[&str], input: &str) -> Option<Output> {
    use std::io::Write;
    let binary = kubectl_path()?;
    let mut child = Command::new(binary)
        .arg("--kubeconfig")
        .arg(sim.kubeconfig())
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(input.as_bytes())
        .expect("manifest written");
    Some(child.wait_with_output().expect("kubectl finishes"))
}

#[test]
fn create_and_apply_manifests_with_server_side_field_validation() {
    let sim = start();
    // Older kubectl validates against /openapi/v2 schemas, which the sim does not serve.
    match client_minor(&sim) {
        None => return,
        Some(minor) if minor < 26 => {
            eprintln!("SKIP: kubectl 1.{minor} validates manifests with OpenAPI v2 schemas");
            return;
        }
        Some(_) => {}
    }
    let manifest = |value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  key: {value}\n")
    };
    for (args, value) in [(["create", "-f", "-"], "one"), (["apply", "-f", "-"], "two")] {
        let mut full = args.to_vec();
        full.extend(["-n", NS]);
        let Some(output) = kubectl_with_stdin(&sim, &full, &manifest(value)) else {
            return;
        };
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stored = sim
            .store()
            .get(&ObjectKey::new("configmaps", NS, "applied"))
            .expect("config map created");
        assert_eq!(stored["data"]["key"], value);
    }
}

#[test]
fn rollout_undo_reuses_the_previous_replica_set() {
    let sim = start();
    let rollout_status = [
        "rollout",
        "status",
        "deployment/orchestrator",
        "--timeout=60s",
        "-n",
        NS,
    ];
    let image = "orchestrator=ghcr.io/example/llm-orchestrator:1.9.0";
    for args in [
        &rollout_status[..],
        &["set", "image", "deployment/orchestrator", image, "-n", NS],
        &rollout_status,
        // kubectl sends the old template back with `creationTimestamp: null` in its metadata.
        &["rollout", "undo", "deployment/orchestrator", "-n", NS],
        &rollout_status,
    ] {
        if ok(&sim, args).is_none() {
            return;
        }
    }
    let (sets, _) = sim.store().list("replicasets", Some(NS));
    let orchestrator: Vec<&Value> = sets
        .iter()
        .filter(|rs| rs["metadata"]["labels"]["app"] == "orchestrator")
        .collect();
    assert_eq!(
        orchestrator.len(),
        2,
        "the first ReplicaSet is scaled back up, not replaced"
    );
    assert_eq!(
        deployment(&sim)["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/example/llm-orchestrator:1.8.2"
    );
}

#[test]
fn create_configmap_in_protobuf_and_immutable_data_refused() {
    let sim = start();
    sim.api().update(|b| b.immutable_configmaps = true);
    let Some(_) = ok(
        &sim,
        &["create", "configmap", "pbtest", "--from-literal=a=b", "-n", NS],
    ) else {
        return;
    };
    let stored = sim
        .store()
        .get(&ObjectKey::new("configmaps", NS, "pbtest"))
        .expect("created");
    assert_eq!(stored["data"]["a"], "b");
    let post = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/configmaps"))
        .expect("create logged");
    // kubectl's typed clients send protobuf; older ones JSON: both are decoded.
    assert!(
        post.content_type
            .as_deref()
            .is_some_and(|t| t.contains("protobuf") || t.contains("json")),
        "{post:?}"
    );
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  a: b\n";
    let Some(created) = kubectl_with_stdin(&sim, &["create", "-n", NS, "-f", "-"], manifest) else {
        return;
    };
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    // ValidateConfigMapUpdate's words reach the user.
    let Some(refused) = kubectl(
        &sim,
        &["patch", "cm", "frozen", "-n", NS, "-p", r#"{"data":{"a":"c"}}"#],
    ) else {
        return;
    };
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn rbac_contexts_see_what_their_roles_grant() {
    let sim = Sim::start(orchscale_sim::SimOptions {
        api: orchscale_sim::ApiBehaviour {
            rbac: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("sim starts");
    let Some(nodes) = kubectl(&sim, &["--context", "sim-ns-admin", "get", "nodes"]) else {
        return;
    };
    assert!(!nodes.status.success());
    assert!(
        String::from_utf8_lossy(&nodes.stderr)
            .contains("User \"sim-ns-admin\" cannot list resource \"nodes\""),
        "{}",
        String::from_utf8_lossy(&nodes.stderr)
    );
    // The context's namespace is llm-orchestrator.
    let Some(deployments) = ok(
        &sim,
        &["--context", "sim-ns-admin", "get", "deploy", "-o", "name"],
    ) else {
        return;
    };
    assert!(
        deployments.contains("deployment.apps/orchestrator"),
        "{deployments}"
    );
    let can_i = |context: &str, args: &[&str]| {
        let mut all = vec!["--context", context, "auth", "can-i"];
        all.extend_from_slice(args);
        kubectl(&sim, &all).map(|o| stdout(&o).trim().to_owned())
    };
    let proxy = ["get", "services", "--subresource=proxy"];
    assert_eq!(can_i("sim-ns-admin", &proxy).as_deref(), Some("yes"));
    assert_eq!(can_i("sim-operator", &proxy).as_deref(), Some("no"));
    assert_eq!(
        can_i("sim-ns-admin", &["list", "pods", "-A"]).as_deref(),
        Some("no")
    );
    assert_eq!(can_i("orchscale-sim", &["list", "nodes"]).as_deref(), Some("yes"));
}
