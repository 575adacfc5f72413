//! Output rules: GitOps warnings, -q, dry run in JSON, secrets, the terminal progress bar.

use std::process::Command;

use orchscale_sim::store::{ObjectKey, UpdatePart};

use crate::harness::{NAMESPACE, object, run, sim, wait_ready};

#[test]
fn helm_managed_objects_get_a_warning_in_the_preview() {
    let sim = sim();
    wait_ready(&sim, 3);
    let mut d = object(&sim, "deployments", "orchestrator");
    d["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm".into();
    d["metadata"]["annotations"]["meta.helm.sh/release-name"] = "orchestrator".into();
    sim.store()
        .update(
            &ObjectKey::new("deployments", NAMESPACE, "orchestrator"),
            d,
            UpdatePart::Main,
        )
        .unwrap();
    let out = run(&sim, &["scale", "--replicas", "4", "--dry-run"]);
    out.assert_code(0);
    assert!(
        out.stderr.contains("managed by Helm (release orchestrator)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("its next sync would revert this change"),
        "{}",
        out.stderr
    );
}

#[test]
fn quiet_hides_progress_and_info_but_keeps_the_target_the_change_and_the_result() {
    let sim = sim();
    wait_ready(&sim, 3);
    let out = run(&sim, &["scale", "--replicas", "4", "-q"]);
    out.assert_code(0);
    // -q never hides what a write is about to change, nor where.
    assert!(
        out.stderr
            .starts_with("Target: context orchscale-sim | server https://127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Changes:\n  deployment/orchestrator spec.replicas: 3 -> 4"),
        "{}",
        out.stderr
    );
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    for chatter in ["following the rollout", "ready", "HPA orchestrator"] {
        assert!(
            !said.iter().any(|l| l.contains(chatter)),
            "no {chatter:?} with -q:\n{}",
            out.stderr
        );
    }
    // Warnings stay (the HPA will move 4 back to 3 at the sim's load).
    assert!(out.stderr.contains("keeps control"), "{}", out.stderr);
    assert!(out.stdout.contains("is at 4 replicas"), "{}", out.stdout);
}

#[test]
fn dry_run_in_json_mode_says_so() {
    let sim = sim();
    let out = run(&sim, &["scale", "--replicas", "5", "--dry-run", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["dryRun"], true);
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["changes"][0]["after"], 5);
    assert_eq!(doc["replicas"], 5);
}

#[test]
fn the_token_never_appears_even_verbose() {
    let sim = sim();
    wait_ready(&sim, 3);
    let kubeconfig = std::fs::read_to_string(sim.kubeconfig()).unwrap();
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("the sim's kubeconfig has a token")
        .to_string();
    for args in [
        &["scale", "--replicas", "4", "-v"][..],
        &["status", "-v", "-o", "json"],
    ] {
        let out = run(&sim, args);
        out.assert_code(0);
        assert!(
            !out.stdout.contains(&token) && !out.stderr.contains(&token),
            "token leaked with {args:?}"
        );
    }
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    if Command::new("script").arg("--version").output().is_err() {
        crate::harness::skip_or_fail("script(1) not found to emulate a terminal");
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let bin = env!("CARGO_BIN_EXE_kubectl-orchscale");
    let out = Command::new("script")
        .args(["-qec", &format!("{bin} scale --replicas 5"), "/dev/null"])
        .env("KUBECONFIG", sim.kubeconfig())
        .output()
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("updated ") && text.contains('['),
        "a bar was drawn:\n{text}"
    );
    assert!(
        !text.contains("deployment/orchestrator: "),
        "no plain lines on a terminal:\n{text}"
    );
}
