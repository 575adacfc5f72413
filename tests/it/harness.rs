//! Starts a simulated cluster per test and runs the built binary against it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use orchscale_sim::store::ObjectKey;
use orchscale_sim::{Sim, SimOptions};
use serde_json::Value;

pub const NAMESPACE: &str = "llm-orchestrator";

/// A sim with fast pods and an HPA that stays still (so replica counts are ours alone).
pub fn sim() -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts")
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
