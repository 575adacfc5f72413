//! Rollout progress as the user sees it: the bar under a pseudo-terminal (script(1)) during a
//! rolling restart with `maxUnavailable: 0`, and the plain lines a CI log gets.
//!
//! What "progress" means follows kubectl `pkg/polymorphichelpers/rollout_status.go`,
//! `DeploymentStatusViewer.Status`: a rollout is done once updatedReplicas = spec.replicas, no
//! replica beyond the updated ones is left, and availableReplicas = updatedReplicas; Ready pods
//! alone are no measure (with maxUnavailable 0 all stay Ready while old ones are replaced).

use std::process::{Command, Stdio};
use std::time::Duration;

use orchscale_sim::{Flavor, Sim, SimOptions};
use serde_json::Value;

use crate::harness::{object, real, run, sim, wait_ready};

/// A sim whose pods take `start` to become Ready, so that a rollout is observable mid-way.
fn slow_sim(start: Duration) -> Sim {
    let profile = real(33, Flavor::Plain);
    Sim::start(SimOptions {
        pod_start_delay: start,
        hpa_sync_period: Duration::from_secs(3600),
        behaviour: profile.behaviour,
        api: profile.api,
        ..SimOptions::default()
    })
    .expect("the simulated cluster starts")
}

/// The deployment's rollout is complete as `kubectl rollout status` judges it.
fn rollout_complete(d: &Value) -> bool {
    let status = &d["status"];
    let desired = d["spec"]["replicas"].as_i64();
    let observed = status["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64();
    observed
        && status["updatedReplicas"].as_i64() == desired
        && status["replicas"].as_i64() == desired
        && status["availableReplicas"].as_i64() == desired
}

/// The progress bars drawn in a terminal capture: the 30 characters between `[` and `]`.
fn bars(screen: &str) -> Vec<String> {
    let chars: Vec<char> = screen.chars().collect();
    let mut found = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if *c != '[' || i + 31 >= chars.len() || chars[i + 31] != ']' {
            continue;
        }
        let inside: String = chars[i + 1..i + 31].iter().collect();
        if inside.chars().all(|c| matches!(c, '=' | '>' | ' ')) {
            found.push(inside);
        }
    }
    found
}

fn full(bar: &str) -> bool {
    bar.chars().all(|c| c == '=')
}

#[test]
fn bars_are_recognised() {
    let screen = format!(
        "⠁ [{}>{}] deployment/orchestrator  33%\n  updated 1/3\r⠂ [{}] x 100% [not a bar]",
        "=".repeat(9),
        " ".repeat(20),
        "=".repeat(30)
    );
    let found = bars(&screen);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(!full(&found[0]) && full(&found[1]));
}

/// A rolling restart (`resources --requests`) of 3 replicas with maxSurge 1, maxUnavailable 0
/// on a terminal: while the sim says the rollout is not complete, and even while every pod is
/// Ready, no bar drawn so far is full.
#[test]
fn the_bar_is_not_full_until_the_rolling_restart_is_complete() {
    if Command::new("script").arg("--version").output().is_err() {
        crate::harness::skip_or_fail("script(1) not found to emulate a terminal");
        return;
    }
    let sim = slow_sim(Duration::from_millis(800));
    wait_ready(&sim, 3);
    let strategy = object(&sim, "deployments", "orchestrator")["spec"]["strategy"].clone();
    assert_eq!(strategy["rollingUpdate"]["maxUnavailable"], 0, "{strategy}");
    let dir = tempfile::tempdir().unwrap();
    let screen_file = dir.path().join("screen");
    let bin = env!("CARGO_BIN_EXE_kubectl-orchscale");
    let mut child = Command::new("script")
        .args(["-qfec", &format!("{bin} resources --requests cpu=600m --yes")])
        .arg(&screen_file)
        .env("KUBECONFIG", sim.kubeconfig())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script runs");
    // Checks taken while the rollout was in progress: (bars drawn so far, all pods Ready).
    let mut mid_rollout: Vec<(usize, bool)> = Vec::new();
    let mut exit = None;
    for _ in 0..1200 {
        // The screen first, then the cluster: a rollout not complete now was not complete when
        // any of those bars was drawn.
        let screen = std::fs::read_to_string(&screen_file).unwrap_or_default();
        let d = object(&sim, "deployments", "orchestrator");
        if !rollout_complete(&d) {
            let drawn = bars(&screen);
            assert!(
                !drawn.iter().any(|b| full(b)),
                "a full bar while the rollout is in progress ({}):\n{screen}",
                d["status"]
            );
            let all_ready = d["status"]["readyReplicas"].as_i64() >= d["spec"]["replicas"].as_i64();
            mid_rollout.push((drawn.len(), all_ready));
        }
        if let Some(status) = child.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let screen = std::fs::read_to_string(&screen_file).unwrap_or_default();
    let exit = exit.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the command did not end:\n{screen}")
    });
    assert_eq!(exit.code(), Some(0), "{screen}");
    assert!(
        rollout_complete(&object(&sim, "deployments", "orchestrator")),
        "the rollout completed"
    );
    assert!(
        mid_rollout
            .iter()
            .any(|&(drawn, all_ready)| drawn > 0 && all_ready),
        "the bar was seen mid-rollout while every pod was Ready: {mid_rollout:?}\n{screen}"
    );
    assert!(
        screen.contains("old left"),
        "the old pods to replace are said:\n{screen}"
    );
    // Once two pods have turned over (the first new one available, the old one it replaces
    // gone), the pace gives an ETA for the two replicas left.
    assert!(screen.contains("  eta "), "an ETA was shown:\n{screen}");
}

/// The progress lines of a run's stderr: every line that shows phase counts.
fn progress_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("updated ") && l.contains("available "))
        .collect()
}

/// Every progress line starts with an RFC 3339 UTC time and shows no count above its total.
fn assert_plain_lines(stderr: &str) -> Vec<&str> {
    let lines = progress_lines(stderr);
    assert!(!lines.is_empty(), "progress lines:\n{stderr}");
    for line in &lines {
        let (time, rest) = line.split_once(' ').unwrap_or_default();
        assert!(
            time.ends_with('Z') && time.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
            "no timestamp: {line:?}"
        );
        assert!(rest.starts_with("deployment/orchestrator: "), "{line:?}");
        for word in rest.split([' ', ',']) {
            if let Some((n, total)) = word.split_once('/')
                && let (Ok(n), Ok(total)) = (n.parse::<i64>(), total.parse::<i64>())
            {
                assert!(n <= total, "a count above its total in {line:?}");
            }
        }
        let percent: u64 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.strip_suffix('%'))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("a percentage in {line:?}"));
        assert_eq!(
            percent == 100,
            line.contains("rolled out"),
            "100% only when rolled out: {line:?}"
        );
    }
    assert!(
        lines.last().is_some_and(|l| l.contains(" 100% ")),
        "the last line is the complete rollout: {lines:?}"
    );
    assert!(!stderr.contains('\x1b'), "no escape codes:\n{stderr:?}");
    lines
}

#[test]
fn plain_lines_have_a_time_and_no_count_above_its_total() {
    let sim = sim();
    wait_ready(&sim, 3);
    // A pure scale up: no template change, so no "new replicaset".
    let up = run(&sim, &["scale", "--replicas", "6"]);
    up.assert_code(0);
    let lines = assert_plain_lines(&up.stderr);
    assert!(!lines.iter().any(|l| l.contains("new replicaset")), "{lines:?}");
    wait_ready(&sim, 6);
    // A scale down: the pods beyond the count are to remove, then terminating.
    let down = run(&sim, &["scale", "--replicas", "3"]);
    down.assert_code(0);
    let lines = assert_plain_lines(&down.stderr);
    assert!(!lines.iter().any(|l| l.contains("new replicaset")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("to remove") || l.contains("terminating")),
        "the scale-down shows the pods going: {lines:?}"
    );
    wait_ready(&sim, 3);
    // A rolling restart: the new ReplicaSet is named, the old pods are counted down.
    let restart = run(&sim, &["resources", "--requests", "cpu=600m", "--yes"]);
    restart.assert_code(0);
    let lines = assert_plain_lines(&restart.stderr);
    assert!(
        lines.iter().any(|l| l.contains("(new replicaset orchestrator-")),
        "{lines:?}"
    );
}
