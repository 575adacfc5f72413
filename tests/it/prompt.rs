//! The confirmation before a rolling restart, answered at a real terminal: script(1) gives the
//! binary a pseudo-terminal and types the answer into it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use orchscale_sim::Sim;
use serde_json::Value;

use crate::harness::{object, sim, wait_ready};

/// Whether script(1) is there to emulate a terminal; the tests skip, saying so, without it.
pub(crate) fn can_emulate_a_terminal() -> bool {
    let found = Command::new("script").arg("--version").output().is_ok();
    if !found {
        crate::harness::skip_or_fail("script(1) not found to emulate a terminal");
    }
    found
}

/// Runs `resources --requests cpu=600m` on a terminal and types `answer` at its prompt.
fn answer_the_prompt(sim: &Sim, answer: &str) -> Output {
    on_terminal(sim, "resources --requests cpu=600m", &[], answer)
}

/// Runs the binary with `args` (words split at spaces) on a pseudo-terminal (stdin, stdout and
/// stderr all on it, so its output is one stream) with `env` set, and types `typed` ahead.
pub(crate) fn on_terminal(sim: &Sim, args: &str, env: &[(&str, &str)], typed: &str) -> Output {
    let bin = env!("CARGO_BIN_EXE_kubectl-orchscale");
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .env("KUBECONFIG", sim.kubeconfig())
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    // Typed ahead: the terminal holds the keys until the prompt reads them.
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(typed.as_bytes()).expect("type the answer");
    drop(stdin);
    child.wait_with_output().expect("script ends")
}

fn orchestrator_cpu_request(sim: &Sim) -> Value {
    object(sim, "deployments", "orchestrator")["spec"]["template"]["spec"]["containers"][0]["resources"]
        ["requests"]["cpu"]
        .clone()
}

#[test]
fn answering_no_at_the_terminal_writes_nothing() {
    if !can_emulate_a_terminal() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let out = answer_the_prompt(&sim, "n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Continue? [y/N]"), "the prompt was shown:\n{text}");
    // The question is said once: the prompt's redraw with the answer repeats only its own line.
    assert_eq!(
        text.matches("deployment/orchestrator: 3 pods restart").count(),
        1,
        "the question once:\n{text}"
    );
    assert!(text.contains("Continue? no"), "the answer is shown:\n{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    assert_eq!(orchestrator_cpu_request(&sim), "500m");
}

#[test]
fn enter_alone_takes_the_default_no() {
    if !can_emulate_a_terminal() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let out = answer_the_prompt(&sim, "\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}

#[test]
fn answering_yes_at_the_terminal_applies_and_rolls_out() {
    if !can_emulate_a_terminal() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let out = answer_the_prompt(&sim, "y");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(orchestrator_cpu_request(&sim), "600m");
    assert!(!sim.persisted_writes().is_empty());
}
