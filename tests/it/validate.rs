//! `validate`: all green on the seeded world, each failure named (health endpoint, crash-looping
//! pod, missing HPA), `--health-url` against a local HTTP server, the JSON `checks`, no writes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use orchscale_sim::store::ObjectKey;
use orchscale_sim::{PodFailure, Sim};
use serde_json::Value;

use crate::harness::{NAMESPACE, live_pods, object, run, sim, wait_ready};

const CHECKS: [&str; 6] = [
    "deployment available",
    "pods ready",
    "hpa scaling active",
    "metrics available",
    "statefulset ready",
    "health endpoint",
];

/// Waits (bounded) until the seeded world is at rest: 3 orchestrator pods and postgres Ready,
/// with a metrics sample for each orchestrator pod.
fn settled() -> Sim {
    let sim = sim();
    wait_ready(&sim, 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let sts = object(&sim, "statefulsets", "postgres");
        let (samples, _) = sim.store().list("podmetrics", Some(NAMESPACE));
        let sampled = samples
            .iter()
            .filter(|m| {
                m["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("orchestrator-"))
            })
            .count();
        if sts["status"]["readyReplicas"] == 1 && sampled >= 3 {
            return sim;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the seeded world did not settle");
}

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("check {name} in {doc}"))
}

fn no_writes(sim: &Sim) {
    let writes: Vec<_> = sim.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "validate only reads: {writes:?}");
}

#[test]
fn all_green_on_the_seeded_world() {
    let sim = settled();
    sim.clear_requests();
    let out = run(&sim, &["validate"]);
    out.assert_code(0);
    // It names what it checked: the context, its server and the namespace.
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("Context orchscale-sim | server https://127.0.0.1:")
            && first.ends_with(" | namespace llm-orchestrator"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\u{1b}'), "no colour without a terminal");
    for name in CHECKS {
        assert!(
            out.stdout.contains(&format!("✓ {name}: ")),
            "{name}:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("all 6 checks passed"), "{}", out.stdout);
    assert!(!out.stdout.contains('✗'), "{}", out.stdout);
    let proxied = sim
        .requests()
        .into_iter()
        .any(|r| r.path == "/api/v1/namespaces/llm-orchestrator/services/orchestrator:http/proxy/health");
    assert!(proxied, "health through the service proxy");
    no_writes(&sim);
}

#[test]
fn json_lists_every_check_with_its_shape() {
    let sim = settled();
    let out = run(&sim, &["validate", "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["command"], "validate");
    assert_eq!(doc["result"], "ok");
    assert_eq!(doc["changes"], serde_json::json!([]));
    let checks = doc["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS);
    for c in checks {
        assert_eq!(c["ok"], true, "{c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
        assert_eq!(c.as_object().unwrap().len(), 3, "{{name, ok, detail}}: {c}");
    }
    assert!(
        check(&doc, "deployment available")["detail"]
            .as_str()
            .unwrap()
            .contains("3/3 ready")
    );
}

#[test]
fn a_failing_health_endpoint_fails_validation() {
    let sim = settled();
    // 503 is transient to the API client, so this run also shows that retries end in a verdict.
    sim.faults().set_health_status(503);
    let text = run(&sim, &["validate"]);
    text.assert_code(1);
    assert!(text.stdout.contains("✗ health endpoint: "), "{}", text.stdout);
    assert!(text.stdout.contains("503"), "{}", text.stdout);
    assert!(
        text.stdout.contains("✓ pods ready"),
        "only the health check fails:\n{}",
        text.stdout
    );
    assert!(text.stdout.contains("1 of 6 checks failed"), "{}", text.stdout);
    assert!(
        text.stderr.contains("validation failed: health endpoint"),
        "{}",
        text.stderr
    );
    sim.faults().set_health_status(404);
    let out = run(&sim, &["validate", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["result"], "failed");
    let health = check(&doc, "health endpoint");
    assert_eq!(health["ok"], false);
    assert!(health["detail"].as_str().unwrap().contains("404"), "{health}");
    assert_eq!(check(&doc, "pods ready")["ok"], true);
    no_writes(&sim);
}

#[test]
fn a_crash_looping_pod_is_named() {
    let sim = settled();
    sim.scenario()
        .fail_new_pods("orchestrator", PodFailure::CrashLoop);
    let victim = live_pods(&sim)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    sim.store()
        .delete(&ObjectKey::new("pods", NAMESPACE, &victim), None)
        .unwrap();
    // The ReplicaSet replaces it with a pod that crash-loops.
    let deadline = Instant::now() + Duration::from_secs(20);
    let crashing = loop {
        let found = live_pods(&sim).into_iter().find(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["state"]["waiting"]["reason"] == "CrashLoopBackOff")
        });
        if let Some(pod) = found {
            break pod["metadata"]["name"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no pod crash-looped");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = run(&sim, &["validate"]);
    out.assert_code(1);
    assert!(
        out.stdout.contains(&format!("pod {crashing}: CrashLoopBackOff")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("✗ pods ready: 2/3 pods Ready"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_missing_hpa_is_named() {
    let sim = settled();
    sim.store()
        .delete(
            &ObjectKey::new("horizontalpodautoscalers", NAMESPACE, "orchestrator"),
            None,
        )
        .unwrap();
    let out = run(&sim, &["validate", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    let hpa = check(&doc, "hpa scaling active");
    assert_eq!(hpa["ok"], false);
    assert!(
        hpa["detail"]
            .as_str()
            .unwrap()
            .contains("horizontalpodautoscaler/orchestrator not found"),
        "{hpa}"
    );
}

/// A one-shot HTTP server on 127.0.0.1 answering every request with `status` until `count`
/// requests were answered or 20 s passed.
fn health_server(status: u16, count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut answered = 0;
        while answered < count && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = if status == 200 { "ok" } else { "down" };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    answered += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    url
}

#[test]
fn health_url_is_checked_directly() {
    let sim = settled();
    sim.faults().set_health_status(503);
    let ok_url = health_server(200, 1);
    let out = run(&sim, &["validate", "--health-url", &ok_url, "-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    let health = check(&doc, "health endpoint");
    assert_eq!(
        health["detail"],
        format!("GET {ok_url}: 200 OK"),
        "the URL, not the proxy"
    );

    let bad_url = health_server(500, 1);
    let out = run(&sim, &["validate", "--health-url", &bad_url]);
    out.assert_code(1);
    assert!(
        out.stdout
            .contains(&format!("✗ health endpoint: GET {bad_url}: 500")),
        "{}",
        out.stdout
    );
    no_writes(&sim);
}

#[test]
fn a_bad_health_url_is_refused_before_any_request_and_credentials_stay_hidden() {
    let sim = sim();
    let before = sim.requests().len();
    let out = run(
        &sim,
        &[
            "validate",
            "--health-url",
            "ftp://admin:s3cret@h/health",
            "-o",
            "json",
        ],
    );
    out.assert_code(2);
    assert_eq!(sim.requests().len(), before, "no request for bad input");
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
    assert!(out.stderr.contains("http:// or https://"), "{}", out.stderr);
    assert!(out.json()["error"]["hint"].as_str().is_some(), "{}", out.stdout);

    let out = run(
        &sim,
        &[
            "validate",
            "--health-url",
            "http://admin:s3cret@127.0.0.1:1/health",
        ],
    );
    out.assert_code(1);
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
    assert!(
        out.stdout.contains("GET http://***@127.0.0.1:1/health"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_failed_validation_in_json_mode_points_at_the_checks_not_a_checklist_above() {
    let sim = sim();
    let out = run(&sim, &["validate", "--deployment", "missing", "-o", "json"]);
    out.assert_code(1);
    let hint = out.json()["error"]["hint"].as_str().unwrap().to_string();
    assert!(
        !hint.contains("above"),
        "nothing is printed above in JSON mode: {hint}"
    );
    assert!(hint.contains("detail"), "{hint}");
}

#[test]
fn an_object_it_may_not_read_is_a_failed_check_not_a_crash() {
    let sim = settled();
    sim.faults().deny("get", "statefulsets");
    let out = run(&sim, &["validate", "-o", "json"]);
    out.assert_code(1);
    let doc = out.json();
    let sts = check(&doc, "statefulset ready");
    assert_eq!(sts["ok"], false);
    assert!(
        sts["detail"].as_str().unwrap().contains("forbidden")
            || sts["detail"].as_str().unwrap().contains("403"),
        "{sts}"
    );
    assert_eq!(
        check(&doc, "deployment available")["ok"],
        true,
        "the other checks still ran"
    );
    assert_eq!(doc["checks"].as_array().unwrap().len(), 6);
}
