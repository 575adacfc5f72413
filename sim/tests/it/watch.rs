//! Watches: replay from a resourceVersion, live events, bookmarks, timeouts, 410 Gone.

use serde_json::json;

use crate::common::{Client, read_events, start};

const CM: &str = "/api/v1/namespaces/llm-orchestrator/configmaps";

#[tokio::test]
async fn watch_replays_after_the_version_then_follows_live() {
    let sim = start();
    let client = Client::new(&sim);
    let list = client.get(CM).await.json();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    let create = |name: &str| json!({"metadata": {"name": name}, "data": {}});
    assert_eq!(
        client
            .json("POST", CM, "application/json", &create("before"))
            .await
            .status,
        201
    );
    let stream = client
        .open(&format!("{CM}?watch=true&resourceVersion={rv}"))
        .await;
    assert_eq!(stream.status(), 200);
    let writer = client.clone();
    let later = tokio::spawn(async move {
        writer
            .json(
                "POST",
                CM,
                "application/json",
                &json!({"metadata": {"name": "after"}}),
            )
            .await;
        writer
            .send("DELETE", &format!("{CM}/before"), None, b"", None)
            .await;
    });
    let events = read_events(stream, 3).await;
    later.await.expect("writer");
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["object"]["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".into(), "before".into()),
            ("ADDED".into(), "after".into()),
            ("DELETED".into(), "before".into())
        ]
    );
}

#[tokio::test]
async fn watch_without_version_starts_with_the_current_objects_and_filters() {
    let sim = start();
    let client = Client::new(&sim);
    let stream = client
        .open("/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Dnode-b")
        .await;
    let events = read_events(stream, 1).await;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "node-b");
}

#[tokio::test]
async fn bookmarks_arrive_and_timeout_ends_the_stream() {
    let sim = start();
    let client = Client::new(&sim);
    let rv = sim.store().resource_version();
    let stream = client
        .open(&format!(
            "{CM}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=3"
        ))
        .await;
    let events = read_events(stream, 10).await;
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["type"] == "BOOKMARK"), "{events:?}");
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");
    // Ended by timeoutSeconds (read_events returns at end of stream, well before 10 events).
    assert!(events.len() < 10);
}

#[tokio::test]
async fn compacted_versions_get_a_410_error_event() {
    let sim = start();
    let client = Client::new(&sim);
    let old = sim.store().resource_version();
    client
        .json(
            "POST",
            CM,
            "application/json",
            &json!({"metadata": {"name": "x"}}),
        )
        .await;
    sim.store().compact();
    client
        .json(
            "POST",
            CM,
            "application/json",
            &json!({"metadata": {"name": "y"}}),
        )
        .await;
    let stream = client
        .open(&format!("{CM}?watch=true&resourceVersion={}", old - 1))
        .await;
    let events = read_events(stream, 2).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
}

#[tokio::test]
async fn send_initial_events_ends_with_an_annotated_bookmark() {
    let sim = start();
    let client = Client::new(&sim);
    let stream = client
        .open("/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
        .await;
    let events = read_events(stream, 4).await;
    assert_eq!(events.iter().filter(|e| e["type"] == "ADDED").count(), 3);
    assert_eq!(events[3]["type"], "BOOKMARK");
    assert_eq!(
        events[3]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn table_requests_get_tables_for_lists_and_watch_events() {
    let sim = start();
    let client = Client::new(&sim);
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let table = client
        .send("GET", "/api/v1/nodes", None, b"", Some(accept))
        .await
        .json();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"].as_array().map(Vec::len), Some(3));
    assert_eq!(table["rows"][0]["cells"][1], "Ready");
    let stream = client.open_with_accept("/api/v1/nodes?watch=true", accept).await;
    let events = read_events(stream, 1).await;
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert_eq!(events[0]["object"]["rows"][0]["object"]["kind"], "Node");
}

#[tokio::test]
async fn objects_entering_and_leaving_a_selector_are_added_and_deleted() {
    let sim = start();
    let client = Client::new(&sim);
    let rv = sim.store().resource_version();
    let stream = client
        .open(&format!(
            "{CM}?watch=true&resourceVersion={rv}&labelSelector=team%3Dx"
        ))
        .await;
    let merge = "application/merge-patch+json";
    let path = format!("{CM}/moving");
    let body = json!({"metadata": {"name": "moving", "labels": {"team": "y"}}});
    assert_eq!(
        client.json("POST", CM, "application/json", &body).await.status,
        201
    );
    for patch in [
        json!({"metadata": {"labels": {"team": "x"}}}),
        json!({"data": {"a": "1"}}),
        json!({"metadata": {"labels": {"team": "z"}}}),
        json!({"data": {"a": "2"}}),
    ] {
        assert_eq!(client.json("PATCH", &path, merge, &patch).await.status, 200);
    }
    // A last object in the selection marks the end of what the watch can see.
    let last = json!({"metadata": {"name": "last", "labels": {"team": "x"}}});
    assert_eq!(
        client.json("POST", CM, "application/json", &last).await.status,
        201
    );
    let events = read_events(stream, 4).await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED", "moving"),
            ("MODIFIED", "moving"),
            ("DELETED", "moving"),
            ("ADDED", "last")
        ]
    );
}
