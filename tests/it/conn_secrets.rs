//! Secrets never printed: every command and every connection error path runs with canary
//! secrets (a token, a client key, an exec plugin's output and stderr, a URL password and a
//! query token, a proxy password); none appears on stdout, stderr, in the JSON document or in
//! any object written to the cluster. Also: `--as` reaches the server as Impersonate-User,
//! `-v=6` prints request lines (`-v=8` headers with Authorization redacted), a closed stdout
//! ends the program quietly, and SIGTERM is handled like Ctrl-C with exit 143.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::conn_support::*;
use crate::harness::{
    NAMESPACE, Output, can_send_sigint, run_with, sim, skip_or_fail, start_following, wait_ready,
};

const CANARIES: &[&str] = &[
    "CANARY-TOKEN",
    "CANARY-EXEC-OUT",
    "CANARY-EXEC-ERR",
    "CANARY-URL-PW",
    "CANARY-QUERY",
    "CANARY-PROXY-PW",
    "CANARY-KC",
    "Q0FOQVJZ",
];

fn assert_clean(what: &str, out: &Output, extra: &[&str]) {
    for canary in CANARIES.iter().chain(extra) {
        assert!(
            !out.stdout.contains(canary) && !out.stderr.contains(canary),
            "{what}: {canary} printed\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn conn_canary_secrets_never_appear_in_output_or_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if make_keys(d).is_none() {
        skip_or_fail("openssl not found to make client keys");
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let a = sim_access(&sim);
    let good = sim_cluster(&a);
    let key_pem = std::fs::read_to_string(d.join("pkcs8.pem")).unwrap();
    // A line from the middle of the private key: it must never be printed.
    let key_line = key_pem.lines().nth(5).unwrap().to_string();
    let secrets = [a.token.as_str(), key_line.as_str()];
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };

    // The working user: the sim's token from an exec plugin, plus a client certificate whose
    // key is a secret too; and a second one with token + key (exec is skipped with a cert).
    let counter = d.join("count");
    let plugin = exec_plugin(
        d,
        "plugin",
        &counter,
        &format!(
            "{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}",
            a.token
        ),
    );
    let exec_kc = write(
        d,
        "exec.yaml",
        &kubeconfig(
            &good,
            &format!(
                "exec:\n  apiVersion: client.authentication.k8s.io/v1beta1\n  command: {}\n  interactiveMode: Never",
                plugin.display()
            ),
        ),
    );
    let cert_kc = write(
        d,
        "cert.yaml",
        &kubeconfig(
            &good,
            &format!(
                "token: {}\nclient-certificate-data: {}\nclient-key-data: {}",
                a.token,
                b64(&std::fs::read(d.join("cert.pem")).unwrap()),
                b64(key_pem.as_bytes())
            ),
        ),
    );

    let health = format!(
        "https://admin:CANARY-URL-PW/x?y#z@127.0.0.1:{}/health?token=CANARY-QUERY",
        dead_port()
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["status"],
        vec!["status", "-o", "json", "-v=8"],
        vec!["validate", "--health-url", &health],
        vec!["validate", "--health-url", &health, "-o", "json"],
        vec![
            "validate",
            "--health-url",
            "ftp://u:CANARY-URL-PW@h/?token=CANARY-QUERY",
            "-o",
            "json",
        ],
        vec!["scale", "--replicas", "4", "--yes", "--timeout", "60s", "-v=6"],
        vec!["hpa", "--min", "2", "--max", "8", "-o", "json"],
        vec![
            "resources",
            "--requests",
            "cpu=300m",
            "--yes",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
        vec![
            "db",
            "resources",
            "--requests",
            "memory=600Mi",
            "--yes",
            "--timeout",
            "60s",
        ],
        vec![
            "db",
            "connections",
            "30",
            "--yes",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
        vec!["undo", "--yes", "--timeout", "60s", "-o", "json"],
        vec!["scale", "--replicas", "3", "--dry-run", "-o", "json", "-v=8"],
        vec!["version", "-o", "json"],
    ];
    for kc in [&exec_kc, &cert_kc] {
        for args in &commands {
            let out = run_with(kc, args, &[]);
            if args[0] == "status" {
                out.assert_code(0);
            }
            assert_clean(&format!("{args:?}"), &out, &secrets);
        }
    }
    assert!(
        runs(&counter) <= commands.len(),
        "the exec plugin ran {} times for {} commands",
        runs(&counter),
        commands.len()
    );

    // Error paths.
    let failing = script(
        d,
        "failing",
        "echo 'error: token=CANARY-EXEC-ERR Bearer CANARY-EXEC-ERR2' >&2\necho '{\"token\":\"CANARY-EXEC-OUT\"}'\nexit 2",
    );
    let garbage = script(d, "garbage", "echo 'CANARY-EXEC-OUT {not json'");
    let wrong_token = exec_plugin(
        d,
        "wrong",
        &d.join("c2"),
        "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"CANARY-EXEC-OUT\"}}",
    );
    let exec = |p: &Path| {
        format!(
            "exec:\n  apiVersion: client.authentication.k8s.io/v1beta1\n  command: {}\n  interactiveMode: Never",
            p.display()
        )
    };
    let broken_key =
        b64(b"-----BEGIN PRIVATE KEY-----\nQ0FOQVJZLWtleS1DQU5BUlk=\n-----END PRIVATE KEY-----\n");
    let error_kcs = [
        write(d, "e1.yaml", &kubeconfig(&good, "token: CANARY-TOKEN")),
        write(d, "e2.yaml", &kubeconfig(&good, &exec(&failing))),
        write(d, "e3.yaml", &kubeconfig(&good, &exec(&garbage))),
        write(d, "e4.yaml", &kubeconfig(&good, &exec(&wrong_token))),
        write(
            d,
            "e5.yaml",
            &kubeconfig(
                &good,
                &format!(
                    "token: CANARY-TOKEN\nclient-certificate-data: {}\nclient-key-data: {broken_key}",
                    b64(&std::fs::read(d.join("cert.pem")).unwrap())
                ),
            ),
        ),
        write(
            d,
            "e6.yaml",
            &kubeconfig(
                &format!(
                    "{good}\nproxy-url: http://user:CANARY-PROXY-PW@127.0.0.1:{}",
                    dead_port()
                ),
                "token: CANARY-TOKEN",
            ),
        ),
        write(
            d,
            "e7.yaml",
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: CANARY-KC-TOKEN\n   oops: [\n",
        ),
        write(
            d,
            "e8.yaml",
            &kubeconfig(
                &format!("{good}\nproxy-url: socks9://u:CANARY-PROXY-PW@h:1"),
                "token: CANARY-TOKEN",
            ),
        ),
    ];
    for kc in &error_kcs {
        for args in [
            vec!["status", "-o", "json"],
            vec!["scale", "--replicas", "4", "--yes", "-v=8"],
            vec!["validate", "--health-url", &health, "-o", "json"],
        ] {
            let out = run_with(kc, &args, &[]);
            assert_ne!(out.code, 0, "{kc:?} {args:?} should fail:\n{}", out.stderr);
            assert_clean(&format!("{} {args:?}", kc.display()), &out, &secrets);
        }
    }
    let out = run_with(
        &cert_kc,
        &["status", "--token", "CANARY-TOKEN", "-o", "json"],
        &[],
    );
    assert_clean("--token", &out, &secrets);
    let out = run_with(
        &cert_kc,
        &["status"],
        &[("HTTPS_PROXY", "http://u:CANARY-PROXY-PW@sim.invalid:1")],
    );
    assert_clean("HTTPS_PROXY with a password", &out, &secrets);

    // Nothing written to the cluster carries a secret (audit annotations included).
    for resource in [
        "deployments",
        "statefulsets",
        "configmaps",
        "horizontalpodautoscalers",
    ] {
        let (objects, _) = sim.store().list(resource, Some(NAMESPACE));
        let text = serde_json::to_string(&objects).unwrap();
        for canary in CANARIES.iter().chain(&secrets) {
            assert!(!text.contains(canary), "{resource} holds {canary}");
        }
    }
}

#[test]
fn conn_as_reaches_the_server_as_impersonate_user() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.clear_requests();
    let out = run_with(
        sim.kubeconfig(),
        &["status", "--as", "jane@example.com", "--as-group", "devs"],
        &[],
    );
    out.assert_code(0);
    let requests = sim.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.impersonate_user.as_deref() == Some("jane@example.com")),
        "{requests:?}"
    );
}

#[test]
fn conn_verbosity_six_prints_request_lines_and_eight_headers_redacted() {
    let sim = sim();
    wait_ready(&sim, 3);
    let a = sim_access(&sim);
    for flags in [vec!["-v=6"], vec!["-v", "6"], vec!["--v=6"]] {
        let mut args = vec!["status"];
        args.extend(flags.iter());
        let out = run_with(sim.kubeconfig(), &args, &[]);
        out.assert_code(0);
        let line = format!(
            "GET {}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/orchestrator 200 OK in ",
            a.url
        );
        assert!(
            out.stderr.contains(&line),
            "{flags:?}: no request line {line:?}:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("Authorization"), "headers only from 7 on");
    }
    let out = run_with(sim.kubeconfig(), &["status", "-v=8", "-o", "json"], &[]);
    out.assert_code(0);
    out.json();
    assert!(out.stderr.contains("authorization: Bearer ***"), "{}", out.stderr);
    assert!(!out.stderr.contains(&a.token), "the token is redacted");
    let plain = run_with(sim.kubeconfig(), &["status", "-vv"], &[]);
    plain.assert_code(0);
    assert!(!plain.stderr.contains(" 200 OK in "), "-vv is not level 6");
}

#[test]
fn conn_names_are_validated_before_any_request() {
    let sim = sim();
    wait_ready(&sim, 3);
    sim.clear_requests();
    for args in [
        vec![
            "scale",
            "--replicas",
            "4",
            "--deployment",
            "orchestrator?dryRun=All",
            "--yes",
        ],
        vec!["status", "-n", "../kube-system"],
        vec![
            "resources",
            "--requests",
            "cpu=1",
            "--container",
            "Orchestrator",
            "--yes",
        ],
        vec!["status", "--configmap", "a/b"],
    ] {
        let out = run_with(sim.kubeconfig(), &args, &[]);
        out.assert_code(2);
        assert!(
            out.stderr.contains("RFC 1123") || out.stderr.contains("invalid value"),
            "{}",
            out.stderr
        );
    }
    let out = run_with(
        sim.kubeconfig(),
        &["status"],
        &[("ORCHSCALE_DEPLOYMENT", "x?dryRun=All")],
    );
    out.assert_code(2);
    assert!(sim.requests().is_empty(), "no request was sent");
}

#[test]
fn conn_a_closed_stdout_ends_quietly() {
    let sim = sim();
    wait_ready(&sim, 3);
    // `| head -c 0`: the reader is gone before the first write.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-orchscale"))
        .args(["status", "-o", "json"])
        .env("KUBECONFIG", sim.kubeconfig())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(status.code(), Some(101), "no panic exit: {stderr}");
    assert!(stderr.trim().is_empty(), "quietly: {stderr}");
}

#[test]
fn conn_sigterm_during_a_rollout_says_what_was_applied_and_exits_143() {
    if !can_send_sigint() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    sim.scenario().set_pod_start_delay(Duration::from_secs(120));
    let following = start_following(&sim, &["scale", "--replicas", "5", "--timeout", "2m"]);
    let pid = following.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let seen = following.seen.clone();
    let (code, rest) = following.finish();
    let stderr = seen + &rest;
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("replicas were set to 5"),
        "says what was applied:\n{stderr}"
    );
}
