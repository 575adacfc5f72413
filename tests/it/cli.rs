//! The command line itself: help, version, completion, commands not built yet, env vars.

use crate::harness::{run, run_with, sim};

fn offline(args: &[&str]) -> crate::harness::Output {
    run_with(std::path::Path::new("/nonexistent/kubeconfig"), args, &[])
}

#[test]
fn help_shows_every_command_and_an_example() {
    let out = offline(&["--help"]);
    out.assert_code(0);
    for command in [
        "scale",
        "hpa",
        "resources",
        "db",
        "validate",
        "status",
        "recommend",
        "undo",
        "completion",
        "version",
    ] {
        assert!(out.stdout.contains(command), "{command} in help:\n{}", out.stdout);
    }
    let scale = offline(&["scale", "--help"]);
    assert!(
        scale.stdout.contains("kubectl orchscale scale --replicas 5"),
        "{}",
        scale.stdout
    );
    assert!(
        scale.stdout.contains("--kubeconfig"),
        "global flags shown in subcommand help"
    );
}

#[test]
fn version_prints_build_info() {
    let out = offline(&["version"]);
    out.assert_code(0);
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")));
    assert!(out.stdout.contains("kubernetes API"));
    let json = offline(&["version", "-o", "json"]);
    assert_eq!(json.json()["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn completion_scripts_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = offline(&["completion", shell]);
        out.assert_code(0);
        assert!(out.stdout.contains("kubectl-orchscale"), "{shell}");
    }
    offline(&["completion", "tcsh"]).assert_code(2);
}

#[test]
fn bad_timeout_is_a_usage_error() {
    offline(&["status", "--timeout", "ten"]).assert_code(2);
}

#[test]
fn target_names_come_from_the_environment() {
    let sim = sim();
    let out = run_with(
        sim.kubeconfig(),
        &["scale", "--replicas", "5"],
        &[("ORCHSCALE_DEPLOYMENT", "missing")],
    );
    out.assert_code(1);
    assert!(
        out.stderr.contains("deployment \"missing\" not found"),
        "{}",
        out.stderr
    );
    let out = run_with(
        sim.kubeconfig(),
        &["status", "-o", "json"],
        &[("ORCHSCALE_NAMESPACE", "default")],
    );
    out.assert_code(1);
    assert_eq!(out.json()["namespace"], "default");
    // The flag wins over the variable.
    let out = run(&sim, &["status", "-o", "json", "-n", "llm-orchestrator"]);
    assert_eq!(out.json()["namespace"], "llm-orchestrator");
}

#[test]
fn usage_errors_in_json_mode_print_an_error_document() {
    let out = offline(&["scale", "-o", "json"]);
    out.assert_code(2);
    let doc = out.json();
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("--replicas"),
        "{doc}"
    );
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let commands: [&[&str]; 11] = [
        &["scale"],
        &["hpa"],
        &["resources"],
        &["db"],
        &["db", "resources"],
        &["db", "connections"],
        &["validate"],
        &["status"],
        &["undo"],
        &["completion"],
        &["version"],
    ];
    for command in commands {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let out = offline(&args);
        out.assert_code(0);
        assert!(
            out.stdout.contains("Example"),
            "{command:?} help has an example:\n{}",
            out.stdout
        );
        assert!(out.stdout.contains("kubectl orchscale"), "{command:?}");
    }
}
