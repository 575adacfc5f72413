//! Cluster access: unknown context, unreachable server, kubeconfig lists.

use std::time::{Duration, Instant};

use crate::harness::{run, run_with, sim};

#[test]
fn unknown_context_is_exit_2_naming_the_contexts() {
    let sim = sim();
    let out = run(&sim, &["--context", "prod", "scale", "--replicas", "5"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("context \"prod\" not found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("orchscale-sim"),
        "names the existing context:\n{}",
        out.stderr
    );
    assert!(sim.requests().is_empty());
}

#[test]
fn unknown_context_in_json_mode_prints_an_error_document() {
    let sim = sim();
    let out = run(&sim, &["status", "--context", "prod", "-o", "json"]);
    out.assert_code(2);
    let doc = out.json();
    assert!(doc["error"]["message"].as_str().unwrap().contains("prod"));
    assert!(doc["error"]["hint"].as_str().unwrap().contains("orchscale-sim"));
    assert!(out.stderr.contains("error:"), "text on stderr too");
}

#[test]
fn unreachable_server_fails_fast_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was just free: bind, read it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster:\n    server: {url}\n\
             contexts:\n- name: dead\n  context: {{cluster: dead, user: u}}\nusers:\n- name: u\n  user: {{token: secret-token-value}}\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = run_with(&kubeconfig, &["scale", "--replicas", "5"], &[]);
    out.assert_code(1);
    assert!(out.stderr.contains(&url), "names the server URL:\n{}", out.stderr);
    assert!(
        !out.stderr.contains("secret-token-value"),
        "never prints the token"
    );
    // A safety net, not a timing assertion: it must not hang.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn kubeconfig_list_in_the_environment_is_merged() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    std::fs::write(
        &other,
        "apiVersion: v1\nkind: Config\ncurrent-context: staging\nclusters:\n- name: staging\n  cluster:\n    \
         server: https://127.0.0.1:1\ncontexts:\n- name: staging\n  context: {cluster: staging, user: u}\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let list = std::env::join_paths([sim.kubeconfig().to_path_buf(), other]).unwrap();
    let out = run_with(
        std::path::Path::new(&list),
        &["--context", "orchscale-sim", "status"],
        &[],
    );
    out.assert_code(0);
    let out = run_with(std::path::Path::new(&list), &["--context", "nope", "status"], &[]);
    out.assert_code(2);
    assert!(out.stderr.contains("orchscale-sim, staging"), "{}", out.stderr);
}

#[test]
fn a_refused_token_says_to_log_in_again_without_showing_it() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(sim.kubeconfig()).unwrap();
    let bad: String = original
        .lines()
        .map(|l| {
            if l.trim().starts_with("token: ") {
                "    token: wrong-token-value".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, bad).unwrap();
    let out = run_with(&kubeconfig, &["status"], &[]);
    out.assert_code(1);
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-token-value"));
}
