//! Lists page by page as the apiserver serves them: `limit`/`continue`, every page at the first
//! page's resourceVersion, `remainingItemCount` only for unselected lists, field selectors on
//! pages, and 410 Expired with the rest's token for a continue token older than the history.

use orchscale_sim::store::ObjectKey;
use serde_json::{Value, json};

use crate::common::{Client, start};

fn pod(phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"app": "filler"}},
           "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}]},
           "status": {"phase": phase}})
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            let meta = &p["metadata"];
            format!(
                "{}/{}",
                meta["namespace"].as_str().unwrap_or(""),
                meta["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn pages_cover_every_object_once_at_the_first_pages_version() {
    let sim = start();
    let store = sim.store();
    for i in 0..1_050 {
        let (ns, phase) = (
            format!("team-{}", i % 3),
            if i % 10 == 0 { "Succeeded" } else { "Running" },
        );
        store
            .create(&ObjectKey::new("pods", &ns, &format!("p-{i:04}")), pod(phase))
            .unwrap();
    }
    let client = Client::new(&sim);
    let whole = client.get("/api/v1/pods").await.json();
    let expected = names(&whole);
    assert!(expected.len() >= 1_050);
    assert!(whole["metadata"].get("continue").is_none());

    // Unselected: remainingItemCount, and every page at the first page's version
    // (k8s.io/apiserver/pkg/storage/etcd3/store.go, GetList: a continued list reads at the
    // token's revision and returns it as the list's resourceVersion).
    let mut seen = Vec::new();
    let mut path = "/api/v1/pods?limit=500".to_owned();
    let mut first_rv = None;
    loop {
        let page = client.get(&path).await.json();
        let rv = page["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_owned();
        assert_eq!(first_rv.get_or_insert_with(|| rv.clone()), &rv);
        seen.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(token) => {
                assert_eq!(
                    page["metadata"]["remainingItemCount"].as_u64(),
                    Some((expected.len() - seen.len()) as u64)
                );
                path = format!("/api/v1/pods?limit=500&continue={token}");
                // A write between pages does not change the version the pages report.
                store
                    .create(
                        &ObjectKey::new("configmaps", "team-0", &format!("w-{}", seen.len())),
                        json!({"apiVersion": "v1", "kind": "ConfigMap"}),
                    )
                    .unwrap();
            }
            None => break,
        }
    }
    assert_eq!(seen, expected, "every object once, in order");

    // Selected pages: finished pods left out by the field selector, no remainingItemCount.
    let selector = "fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed";
    let mut running = Vec::new();
    let mut path = format!("/api/v1/pods?limit=400&{selector}");
    loop {
        let page = client.get(&path).await.json();
        assert!(
            page["metadata"].get("remainingItemCount").is_none(),
            "{}",
            page["metadata"]
        );
        running.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(token) => path = format!("/api/v1/pods?limit=400&{selector}&continue={token}"),
            None => break,
        }
    }
    assert_eq!(
        running.len(),
        expected.len() - 105,
        "the 105 Succeeded pods are left out"
    );
}

#[tokio::test]
async fn a_continue_token_older_than_the_history_is_expired_with_the_rests_token() {
    let sim = start();
    let client = Client::new(&sim);
    let page = client.get("/api/v1/nodes?limit=1").await.json();
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_owned();
    // A change after the token's version, then compaction: the history (the sim's etcd
    // revisions) no longer holds what happened since the first page.
    let bump = |name: &str| {
        sim.store()
            .create(
                &ObjectKey::new("configmaps", "default", name),
                json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            )
            .unwrap();
    };
    bump("before-compaction");
    sim.store().compact();
    bump("after-compaction");
    // Upstream: k8s.io/apiserver/pkg/storage/etcd3/store.go, GetList, on ErrCompacted with a
    // continue key: 410 ResourceExpired carrying a token for the inconsistent rest
    // (handleCompactedErrorForPaging).
    let expired = client
        .get(&format!("/api/v1/nodes?limit=1&continue={token}"))
        .await;
    assert_eq!(expired.status, 410);
    let status = expired.json();
    assert_eq!(status["reason"], "Expired");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("too old to display a consistent list result")
    );
    let rest = status["metadata"]["continue"].as_str().expect("the rest's token");
    let rest = client
        .get(&format!("/api/v1/nodes?limit=5&continue={rest}"))
        .await
        .json();
    assert_eq!(names(&rest).len(), 2, "the nodes after the first: {rest}");
    assert_eq!(
        client
            .get("/api/v1/nodes?limit=1&continue=not-a-token")
            .await
            .status,
        400
    );
}
