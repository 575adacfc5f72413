//! The simulated Prometheus over HTTP: its own plain-HTTP listener and the API server's service
//! proxy to `monitoring/prometheus-operated`, GET and POST, success and `bad_data`.

use std::time::Duration;

use orchscale_sim::prometheus::History;
use orchscale_sim::{Sim, SimOptions};

use crate::common::Client;

fn start() -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        prometheus: Some(History::default()),
        ..SimOptions::default()
    })
    .expect("sim starts")
}

const MEMORY: &str =
    r#"container_memory_working_set_bytes{namespace="llm-orchestrator",container="orchestrator"}"#;

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn the_service_proxy_reaches_prometheus_with_get_and_post() {
    let sim = start();
    let client = Client::new(&sim);
    // Upstream's service proxy path: services/<name>:<port>/proxy/<path>
    // (pkg/registry/core/service/storage/storage.go, ResourceLocation).
    let base = "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/api/v1";
    let got = client
        .get(&format!("{base}/query?query={}", encode(MEMORY)))
        .await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    let body = got.json();
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(3), "{body}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let form = format!(
        "query={}&start={}&end={now}&step=1h",
        encode(&format!("sum({MEMORY})")),
        now - 86_400
    );
    let got = client
        .send(
            "POST",
            &format!("{base}/query_range"),
            Some("application/x-www-form-urlencoded"),
            form.as_bytes(),
            None,
        )
        .await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    let body = got.json();
    assert_eq!(body["data"]["resultType"], "matrix");
    assert_eq!(
        body["data"]["result"][0]["values"].as_array().map(Vec::len),
        Some(25)
    );

    let got = client.get(&format!("{base}/query?query={}", encode("up"))).await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["errorType"], "bad_data");
}

#[tokio::test]
async fn the_own_listener_answers_plain_http() {
    use http_body_util::BodyExt;
    let sim = start();
    let url = sim.prometheus_url().expect("a Prometheus URL").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<hyper::body::Bytes>>();
    let uri: hyper::Uri = format!("{url}/api/v1/query?query={}", encode(MEMORY))
        .parse()
        .unwrap();
    let response = client.get(uri).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["data"]["result"][0]["metric"]["namespace"],
        "llm-orchestrator"
    );
}

#[tokio::test]
async fn without_a_history_there_is_no_prometheus_service() {
    let sim = crate::common::start();
    assert!(sim.prometheus_url().is_none());
    let got = Client::new(&sim)
        .get("/api/v1/namespaces/monitoring/services/prometheus-operated/proxy/api/v1/query?query=up")
        .await;
    assert_eq!(got.status, 404);
}
