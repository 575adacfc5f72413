//! Starts a simulated cluster per test and runs the built binary against it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use orchscale_sim::profile::MetricsApi;
use orchscale_sim::store::ObjectKey;
use orchscale_sim::{Flavor, KubernetesVersion, Profile, Sim, SimOptions};
use serde_json::Value;

pub const NAMESPACE: &str = "llm-orchestrator";

/// A sim of what a current real cluster does (1.33 plain, [`real`]: HPAs without a
/// generation, graceful deletion, metrics in nanocores one resolution after a pod started, ...),
/// with fast pods and an HPA that stays still (so replica counts are ours alone).
pub fn sim() -> Sim {
    sim_of(real(33, Flavor::Plain))
}

/// What a real cluster of `1.<minor>` and `flavor` does ([`orchscale_sim::profile::profile`]),
/// with its long waits shortened for tests: terminating pods go after at most 1 s, a pod has
/// its first metrics sample 2 s after it starts, the node autoscaler's nodes join after 2 s.
pub fn real(minor: u8, flavor: Flavor) -> Profile {
    let version = KubernetesVersion::new(minor).expect("a supported Kubernetes version");
    let mut profile = orchscale_sim::profile::profile(version, flavor);
    profile.behaviour.grace_period_cap = Some(Duration::from_secs(1));
    profile.behaviour.metrics_resolution = Some(Duration::from_secs(2));
    if let Some(autoscaler) = profile.behaviour.node_autoscaler.as_mut() {
        autoscaler.provision_delay = Duration::from_secs(2);
    }
    profile
}

/// A sim of `profile` with fast pods and an HPA that stays still (as [`sim`]).
pub fn sim_of(profile: Profile) -> Sim {
    sim_of_with(profile, Duration::from_secs(3600))
}

/// A sim of `profile` whose HPA controller resyncs every `hpa_sync_period`.
pub fn sim_of_with(profile: Profile, hpa_sync_period: Duration) -> Sim {
    start(profile, hpa_sync_period, 0)
}

/// [`sim`] with `gpu_nodes` GPU nodes (`gpu-node-N`: 8 CPU, 32Gi, 4 `nvidia.com/gpu`) next to
/// the three seeded ones: the scheduler places a pod asking for a GPU only there.
pub fn sim_with_gpus(gpu_nodes: usize) -> Sim {
    start(real(33, Flavor::Plain), Duration::from_secs(3600), gpu_nodes)
}

fn start(profile: Profile, hpa_sync_period: Duration, gpu_nodes: usize) -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period,
        behaviour: profile.behaviour,
        api: profile.api,
        gpu_nodes,
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts")
}

/// The profiles the end-to-end matrix runs on, each with the name a failure shows. `rbac`:
/// the run uses the namespace admin's context (`--context sim-ns-admin`).
#[derive(Debug, Clone)]
pub struct Matrix {
    pub name: &'static str,
    pub profile: Profile,
    pub rbac: bool,
}

/// 1.27, 1.33 and 1.36 plain, eks-like, gke-autopilot-like, a namespace admin (RBAC on) and a
/// cluster without metrics-server.
pub fn matrix() -> Vec<Matrix> {
    let mut ns_admin = real(33, Flavor::Plain);
    ns_admin.api.rbac = true;
    let mut no_metrics = real(33, Flavor::Plain);
    no_metrics.behaviour.metrics_api = MetricsApi::Absent;
    let entry = |name, profile, rbac| Matrix { name, profile, rbac };
    vec![
        entry("1.27 plain", real(27, Flavor::Plain), false),
        entry("1.33 plain", real(33, Flavor::Plain), false),
        entry("1.36 plain", real(36, Flavor::Plain), false),
        entry("1.33 eks-like", real(33, Flavor::EksLike), false),
        entry(
            "1.33 gke-autopilot-like",
            real(33, Flavor::GkeAutopilotLike),
            false,
        ),
        entry("1.33 namespace-admin RBAC", ns_admin, true),
        entry("1.33 no metrics-server", no_metrics, false),
    ]
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout parsed as the one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The binary under test: `ORCHSCALE_TEST_BIN` (e.g. the release's musl build), else this build's.
pub fn tested_binary() -> std::ffi::OsString {
    std::env::var_os("ORCHSCALE_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_kubectl-orchscale").into())
}

/// Runs the binary with `args` against `kubeconfig`, stdin null, no ORCHSCALE_* variables.
pub fn run_with(kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(tested_binary());
    command
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("ORCHSCALE_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the binary runs");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary against the sim.
pub fn run(sim: &Sim, args: &[&str]) -> Output {
    run_with(sim.kubeconfig(), args, &[])
}

/// An object as the sim's store holds it.
pub fn object(sim: &Sim, resource: &str, name: &str) -> Value {
    sim.store()
        .get(&ObjectKey::new(resource, NAMESPACE, name))
        .unwrap_or_else(|| panic!("{resource}/{name} exists in the store"))
}

/// spec.replicas of the orchestrator deployment in the store.
pub fn stored_replicas(sim: &Sim) -> i64 {
    object(sim, "deployments", "orchestrator")["spec"]["replicas"]
        .as_i64()
        .expect("spec.replicas")
}

/// Waits (bounded) until the orchestrator deployment reports `n` ready replicas.
pub fn wait_ready(sim: &Sim, n: i64) {
    for _ in 0..200 {
        let d = object(sim, "deployments", "orchestrator");
        if d["status"]["readyReplicas"].as_i64() == Some(n) && d["status"]["replicas"].as_i64() == Some(n) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the orchestrator never reached {n} ready replicas");
}

/// Pods of the orchestrator in the store that are not being deleted.
pub fn live_pods(sim: &Sim) -> Vec<Value> {
    let (pods, _) = sim.store().list("pods", Some(NAMESPACE));
    pods.into_iter()
        .filter(|p| {
            p["metadata"]["labels"]["app"] == "orchestrator" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

/// A run of the binary in the background, stopped at "following the rollout".
pub struct Following {
    pub child: std::process::Child,
    pub stderr: std::io::BufReader<std::process::ChildStderr>,
    /// stderr up to and including the "following the rollout" line.
    pub seen: String,
}

impl Following {
    /// Waits for the process and returns its exit code and the rest of stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        (status.code(), rest)
    }

    /// Sends SIGINT as a terminal's Ctrl-C would; returns the exit code and all of stderr.
    pub fn interrupt(self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(killed.success(), "kill -INT {pid}");
        let seen = self.seen.clone();
        let (code, rest) = self.finish();
        (code, seen + &rest)
    }
}

/// Whether kill(1) is there to send SIGINT; the Ctrl-C tests skip, saying so, without it.
pub fn can_send_sigint() -> bool {
    let found = Command::new("kill").arg("-l").output().is_ok();
    if !found {
        skip_or_fail("kill(1) not found to send SIGINT");
    }
    found
}

/// Starts the binary and returns once a line of its stderr satisfies `reached`.
pub fn start_until(sim: &Sim, args: &[&str], reached: impl Fn(&str) -> bool) -> Following {
    use std::io::BufRead;
    let mut child = Command::new(tested_binary())
        .args(args)
        .env("KUBECONFIG", sim.kubeconfig())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    let mut found = false;
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if reached(&line) {
            found = true;
            break;
        }
        line.clear();
    }
    assert!(found, "the expected line never came:\n{seen}");
    Following { child, stderr, seen }
}

/// Starts the binary and returns once it follows the rollout (the write is done).
pub fn start_following(sim: &Sim, args: &[&str]) -> Following {
    let following = start_until(sim, args, |line| line.contains("following the rollout"));
    // Let the follower start its watches.
    std::thread::sleep(Duration::from_millis(300));
    following
}

/// A test's tool is missing: under `CI=true` the test fails (CI never passes by skipping),
/// elsewhere it prints `SKIP: …` and the caller returns.
pub fn skip_or_fail(message: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}: CI=true, so a missing tool fails the test (.ci/run installs it)");
    }
    println!("SKIP: {message}");
}
