//! The faults of lost and slow answers (issue 7): writes committed and then dropped or answered
//! late, API outages that also cut watches, a second writer between a client's read and its
//! write, and events made forbidden for list and watch.

use std::time::Duration;

use orchscale_sim::OutageMode;
use serde_json::{Value, json};

use crate::common::{Client, DEPLOY, NS, can_i, start, wait_until};

const MERGE: &str = "application/merge-patch+json";
const CONFIG: &str = "/api/v1/namespaces/llm-orchestrator/configmaps/orchestrator-config";

/// Reads a watch stream to its end: whether it ended (within a 30 s safety net) and how many
/// lines came.
async fn stream_end(response: hyper::Response<hyper::body::Incoming>) -> (bool, usize) {
    use http_body_util::BodyExt;
    let mut body = response.into_body();
    let mut lines = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    lines += data.iter().filter(|b| **b == b'\n').count();
                }
            }
            Ok(None | Some(Err(_))) => return (true, lines),
            Err(_) => return (false, lines),
        }
    }
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("resourceVersion")
}

#[tokio::test]
async fn commit_then_drop_stores_the_write_and_drops_its_answer() {
    let sim = start();
    let client = Client::new(&sim);
    let before = client.get(DEPLOY).await.json();
    sim.faults()
        .commit_then_drop(Some("PATCH"), Some("deployments"), 1);
    // A dry run commits nothing, so it neither matches nor spends the rule.
    let dry = client
        .json(
            "PATCH",
            &format!("{DEPLOY}?dryRun=All"),
            MERGE,
            &json!({"spec": {"replicas": 4}}),
        )
        .await;
    assert_eq!(dry.status, 200);
    let lost = client
        .try_json("PATCH", DEPLOY, MERGE, &json!({"spec": {"replicas": 4}}))
        .await;
    assert!(
        lost.is_err(),
        "the answer is dropped: {:?}",
        lost.map(|r| r.status)
    );
    let stored = client.get(DEPLOY).await.json();
    assert_eq!(stored["spec"]["replicas"], 4);
    assert!(rv(&stored) > rv(&before), "the write was committed");
    // The controllers act on the stored change, as they would after a real commit.
    wait_until("the deployment to run 4 replicas", || async {
        client.get(DEPLOY).await.json()["status"]["replicas"] == 4
    })
    .await;
    let answered = client
        .json("PATCH", DEPLOY, MERGE, &json!({"spec": {"replicas": 3}}))
        .await;
    assert_eq!(answered.status, 200, "the rule is spent after one request");
    let logged: Vec<u16> = sim.persisted_writes().iter().map(|r| r.status).collect();
    assert_eq!(
        logged,
        [200, 200],
        "the dropped write was handled (and logged) as stored"
    );
}

#[tokio::test]
async fn held_answers_arrive_after_the_change_is_stored() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults()
        .hold_answer(Some("PATCH"), Some("configmaps"), 1, Duration::from_secs(3));
    let patch = json!({"data": {"held": "yes"}});
    let writer = client.clone();
    let pending = tokio::spawn(async move { writer.json("PATCH", CONFIG, MERGE, &patch).await });
    wait_until("the held write to be stored", || async {
        client.get(CONFIG).await.json()["data"]["held"] == "yes"
    })
    .await;
    assert!(
        !pending.is_finished(),
        "the answer is still held while the store has the change"
    );
    let answer = pending.await.expect("writer task");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["data"]["held"], "yes");
}

#[tokio::test]
async fn outages_fail_every_request_cut_watches_and_end() {
    let sim = start();
    let client = Client::new(&sim);
    let watch = client
        .open(&format!("/api/v1/namespaces/{NS}/pods?watch=true"))
        .await;
    let reader = tokio::spawn(stream_end(watch));
    sim.faults()
        .outage(Duration::from_secs(600), OutageMode::Unavailable);
    let (ended, lines) = reader.await.expect("reader");
    assert!(ended, "the watch stream ends on the outage");
    assert!(lines > 0, "the initial events came before the outage");
    let refused = client.get("/api/v1/nodes").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["reason"], "ServiceUnavailable");
    assert_eq!(
        client.get("/sim/requests").await.status,
        200,
        "the admin endpoint is not affected"
    );
    sim.faults().outage(Duration::from_secs(600), OutageMode::Drop);
    assert!(
        client.try_get("/api/v1/nodes").await.is_err(),
        "connections are dropped"
    );
    sim.faults().outage(Duration::ZERO, OutageMode::Drop);
    assert_eq!(client.try_get("/api/v1/nodes").await, Ok(200));
    // A short outage ends by itself.
    sim.faults()
        .outage(Duration::from_millis(300), OutageMode::Unavailable);
    wait_until("the outage to end", || async {
        client.get("/api/v1/nodes").await.status == 200
    })
    .await;
}

#[tokio::test]
async fn a_second_writer_makes_a_write_with_the_old_resource_version_conflict() {
    let sim = start();
    let client = Client::new(&sim);
    // No controller writes ConfigMaps, so only the second writer moves its resourceVersion.
    let read = client.get(CONFIG).await.json();
    sim.faults().second_writer(
        Some("PATCH"),
        Some("configmaps"),
        json!({"data": {"other-writer": "yes"}}),
    );
    let mine = json!({"metadata": {"resourceVersion": read["metadata"]["resourceVersion"]},
                      "data": {"mine": "yes"}});
    // The dry run does not trigger the other writer.
    let preview = client
        .json("PATCH", &format!("{CONFIG}?dryRun=All"), MERGE, &mine)
        .await;
    assert_eq!(preview.status, 200);
    assert_eq!(client.get(CONFIG).await.json(), read);
    let conflict = client.json("PATCH", CONFIG, MERGE, &mine).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["reason"], "Conflict");
    let stored = client.get(CONFIG).await.json();
    assert_eq!(stored["data"]["other-writer"], "yes");
    assert!(stored["data"].get("mine").is_none(), "my write was refused");
    assert!(rv(&stored) > rv(&read));
    // Once: the same write with the new resourceVersion passes.
    let retried = json!({"metadata": {"resourceVersion": stored["metadata"]["resourceVersion"]},
                         "data": {"mine": "yes"}});
    assert_eq!(client.json("PATCH", CONFIG, MERGE, &retried).await.status, 200);
}

#[tokio::test]
async fn a_second_writer_changing_the_spec_bumps_the_generation() {
    let sim = start();
    let client = Client::new(&sim);
    let generation = client.get(DEPLOY).await.json()["metadata"]["generation"]
        .as_i64()
        .expect("generation");
    sim.faults().second_writer(
        Some("PATCH"),
        Some("deployments/scale"),
        json!({"spec": {"template": {"metadata": {"annotations": {"other-writer": "yes"}}}}}),
    );
    let scaled = client
        .json(
            "PATCH",
            &format!("{DEPLOY}/scale"),
            MERGE,
            &json!({"spec": {"replicas": 4}}),
        )
        .await;
    assert_eq!(scaled.status, 200);
    let stored = client.get(DEPLOY).await.json();
    assert_eq!(
        stored["spec"]["template"]["metadata"]["annotations"]["other-writer"], "yes",
        "a subresource write triggers the writer on the object it belongs to"
    );
    assert_eq!(stored["spec"]["replicas"], 4);
    assert_eq!(
        stored["metadata"]["generation"],
        generation + 2,
        "two spec changes"
    );
}

#[tokio::test]
async fn denied_events_are_forbidden_for_list_and_watch_and_in_access_reviews() {
    let sim = start();
    let client = Client::new(&sim);
    sim.faults().deny("list", "events");
    sim.faults().deny("watch", "events");
    let events = format!("/api/v1/namespaces/{NS}/events");
    let list = client.get(&events).await;
    assert_eq!(list.status, 403);
    assert!(
        list.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot list resource \"events\" in API group \"\""))
    );
    let watch = client.get(&format!("{events}?watch=true")).await;
    assert_eq!(watch.status, 403);
    assert!(
        watch.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot watch resource \"events\""))
    );
    assert!(!can_i(&client, "list", "events", "", NS).await);
    assert!(!can_i(&client, "watch", "events", "", NS).await);
    assert!(
        can_i(&client, "list", "pods", "", NS).await,
        "other resources stay allowed"
    );
    assert_eq!(
        client.get(&format!("/api/v1/namespaces/{NS}/pods")).await.status,
        200
    );
}

#[tokio::test]
async fn the_admin_endpoint_sets_the_lost_answer_faults() {
    let sim = start();
    let client = Client::new(&sim);
    let admin = |body: Value| {
        let client = client.clone();
        async move {
            let answer = client
                .json("POST", "/sim/faults", "application/json", &body)
                .await;
            assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
        }
    };
    admin(json!({"commitThenDrop": {"method": "PATCH", "resource": "configmaps", "count": 1}})).await;
    let dropped = client
        .try_json("PATCH", CONFIG, MERGE, &json!({"data": {"a": "1"}}))
        .await;
    assert!(dropped.is_err());
    assert_eq!(client.get(CONFIG).await.json()["data"]["a"], "1");
    admin(json!({"holdAnswer": {"method": "PATCH", "resource": "configmaps", "holdMs": 200}})).await;
    let started = std::time::Instant::now();
    let held = client
        .json("PATCH", CONFIG, MERGE, &json!({"data": {"a": "2"}}))
        .await;
    assert_eq!(held.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    admin(
        json!({"secondWriter": {"method": "PATCH", "resource": "configmaps",
                                  "patch": {"data": {"b": "other"}}}}),
    )
    .await;
    let stale = client.get(CONFIG).await.json()["metadata"]["resourceVersion"].clone();
    let conflict = client
        .json(
            "PATCH",
            CONFIG,
            MERGE,
            &json!({"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}),
        )
        .await;
    assert_eq!(conflict.status, 409);
    admin(json!({"outage": {"durationMs": 600000, "mode": "unavailable"}})).await;
    assert_eq!(client.get("/api/v1/nodes").await.status, 503);
    admin(json!({"outage": {"durationMs": 0}})).await;
    assert_eq!(client.get("/api/v1/nodes").await.status, 200);
    let bad = client
        .json(
            "POST",
            "/sim/faults",
            "application/json",
            &json!({"outage": {"durationMs": 1, "mode": "x"}}),
        )
        .await;
    assert_eq!(bad.status, 400);
}
