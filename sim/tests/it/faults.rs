//! Injected faults: failing requests with Retry-After, denials, cut and expired watches, and the
//! request log that records what clients sent.

use std::time::Duration;

use orchscale_sim::FaultRule;
use serde_json::json;

use crate::common::{Client, DEPLOY, read_events, start};

#[tokio::test]
async fn fail_next_answers_the_status_with_retry_after_then_passes() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults().fail_next(FaultRule {
        method: Some("PATCH".into()),
        resource: Some("deployments/scale".into()),
        status: 429,
        retry_after: Some(1),
        count: 1,
    });
    let scale = format!("{DEPLOY}/scale");
    let body = json!({"spec": {"replicas": 4}});
    // A GET does not match the rule.
    assert_eq!(client.get(&scale).await.status, 200);
    let refused = client
        .json("PATCH", &scale, "application/merge-patch+json", &body)
        .await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(refused.json()["reason"], "TooManyRequests");
    assert_eq!(
        client
            .json("PATCH", &scale, "application/merge-patch+json", &body)
            .await
            .status,
        200
    );
    sim.faults().fail_next(FaultRule {
        method: None,
        resource: None,
        status: 503,
        retry_after: None,
        count: 1,
    });
    assert_eq!(client.get("/api/v1/nodes").await.status, 503);
    let statuses: Vec<u16> = sim.persisted_writes().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn denied_verbs_get_403_in_rbac_words() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults().deny("patch", "deployments");
    let denied = client
        .json("PATCH", DEPLOY, "application/merge-patch+json", &json!({}))
        .await;
    assert_eq!(denied.status, 403);
    let status = denied.json();
    assert_eq!(status["reason"], "Forbidden");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot patch resource \"deployments\""))
    );
    // Other verbs and subresources stay allowed, as RBAC rules are per verb and resource.
    assert_eq!(client.get(DEPLOY).await.status, 200);
    let scale = client
        .json(
            "PATCH",
            &format!("{DEPLOY}/scale"),
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(scale.status, 200);
}

#[tokio::test]
async fn watches_are_cut_after_n_events_and_expire_on_demand() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults().cut_watches_after(2);
    let stream = client.open("/api/v1/nodes?watch=true").await;
    let events = read_events(stream, 3).await;
    assert_eq!(events.len(), 2);
    sim.faults().cut_watches_after(0);
    sim.faults().expire_next_watch();
    let rv = sim.store().resource_version();
    let expired = read_events(
        client
            .open(&format!("/api/v1/nodes?watch=true&resourceVersion={rv}"))
            .await,
        1,
    )
    .await;
    assert_eq!(expired[0]["type"], "ERROR");
    assert_eq!(expired[0]["object"]["code"], 410);
}

#[tokio::test]
async fn latency_delays_answers_and_the_log_records_requests() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults().set_latency(Duration::from_millis(300));
    let started = std::time::Instant::now();
    client.get("/api/v1/nodes?limit=1").await;
    // A lower bound only: the answer cannot come before the added latency.
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.faults().set_latency(Duration::ZERO);
    client
        .json(
            "PATCH",
            DEPLOY,
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    let requests = sim.requests();
    let nodes = requests
        .iter()
        .find(|r| r.path == "/api/v1/nodes")
        .expect("logged");
    assert_eq!(nodes.query, "limit=1");
    assert_eq!(nodes.status, 200);
    let writes = sim.persisted_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert!(writes[0].body.contains("labels"));
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn admin_endpoint_sets_faults_and_lists_requests() {
    let sim = start();
    let client = Client::new(&sim);
    let deny = json!({"deny": {"verb": "get", "resource": "configmaps"}, "latencyMs": 0});
    let response = client
        .json("POST", "/sim/faults", "application/json", &deny)
        .await;
    assert_eq!(response.status, 200);
    let cm = "/api/v1/namespaces/llm-orchestrator/configmaps/orchestrator-config";
    assert_eq!(client.get(cm).await.status, 403);
    let scenario =
        json!({"load": {"workload": "orchestrator", "totalCpuMillis": 3000, "memoryPerPodBytes": 1}});
    assert_eq!(
        client
            .json("POST", "/sim/scenario", "application/json", &scenario)
            .await
            .status,
        200
    );
    assert_eq!(
        client
            .json("POST", "/sim/faults", "application/json", &json!({"deny": {}}))
            .await
            .status,
        400
    );
    let logged = client.get("/sim/requests").await.json();
    let paths: Vec<&str> = logged
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert_eq!(paths, [cm], "admin requests are not logged");
    assert_eq!(client.without_token().get("/sim/requests").await.status, 401);
}

#[tokio::test]
async fn status_zero_rules_reset_the_connection() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults().fail_next(FaultRule {
        method: Some("GET".into()),
        resource: Some("nodes".into()),
        status: 0,
        retry_after: None,
        count: 1,
    });
    assert!(
        client.try_get("/api/v1/nodes").await.is_err(),
        "the connection is dropped"
    );
    assert_eq!(client.try_get("/api/v1/nodes").await, Ok(200));
    let logged: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(logged, [0, 200]);
}
