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

/// The names of every page of `path` (which has no `?continue`), read `limit` at a time.
async fn all_pages(client: &Client, path: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = format!("{path}&limit={limit}");
    loop {
        let page = client.get(&next).await.json();
        seen.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(token) => next = format!("{path}&limit={limit}&continue={token}"),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn a_nodes_pods_are_listed_by_spec_node_name_from_the_index_as_they_change() {
    // `spec.nodeName` and `status.phase` are selectable pod fields (upstream
    // pkg/registry/core/pod/strategy.go, `PodToSelectableFields`), and the watch cache indexes
    // pods by node (same file, `Indexers`: `NodeNameIndexFunc`), which is how `kubectl describe
    // node` lists a node's running pods (staging/src/k8s.io/kubectl/pkg/describe/describe.go,
    // `NodeDescriber.Describe`: `spec.nodeName=<node>,status.phase!=Succeeded,status.phase!=Failed`).
    let sim = start();
    let store = sim.store();
    let on = |node: &str, phase: &str| {
        let mut p = pod(phase);
        p["spec"]["nodeName"] = json!(node);
        p
    };
    for i in 0..300 {
        let ns = format!("team-{}", i % 3);
        let node = format!("idx-{}", i % 4);
        let phase = if i % 7 == 0 { "Failed" } else { "Running" };
        store
            .create(
                &ObjectKey::new("pods", &ns, &format!("p-{i:03}")),
                on(&node, phase),
            )
            .unwrap();
    }
    // Not scheduled yet; then bound to idx-1 (as the scheduler's binding does).
    let mut pending = pod("Pending");
    pending["spec"].as_object_mut().unwrap().remove("nodeName");
    store
        .create(&ObjectKey::new("pods", "team-0", "late"), pending)
        .unwrap();
    let client = Client::new(&sim);
    let select = |node: &str| {
        format!(
            "fieldSelector=spec.nodeName%3D{node}%2Cstatus.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"
        )
    };
    // What the selector means, worked out from the whole list.
    let expected = |node: &str, namespace: Option<&str>| {
        let (pods, _) = sim.store().list("pods", namespace);
        pods.iter()
            .filter(|p| p["spec"]["nodeName"] == node)
            .filter(|p| p["status"]["phase"] != "Succeeded" && p["status"]["phase"] != "Failed")
            .map(|p| {
                format!(
                    "{}/{}",
                    p["metadata"]["namespace"].as_str().unwrap(),
                    p["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let idx1 = all_pages(&client, &format!("/api/v1/pods?{}", select("idx-1")), 20).await;
    assert_eq!(idx1, expected("idx-1", None));
    assert_eq!(
        idx1.len(),
        75 - 10,
        "75 pods on idx-1, 10 of them Failed: {idx1:?}"
    );
    assert!(!idx1.contains(&"team-0/late".to_owned()));

    // Binding, deleting and a namespaced list follow the index.
    store
        .modify(
            &ObjectKey::new("pods", "team-0", "late"),
            orchscale_sim::store::UpdatePart::Main,
            |p| {
                p["spec"]["nodeName"] = json!("idx-1");
                true
            },
        )
        .unwrap();
    store
        .delete(&ObjectKey::new("pods", "team-1", "p-001"), None)
        .unwrap();
    let idx1 = all_pages(&client, &format!("/api/v1/pods?{}", select("idx-1")), 20).await;
    assert_eq!(idx1, expected("idx-1", None));
    assert!(idx1.contains(&"team-0/late".to_owned()));
    assert!(!idx1.contains(&"team-1/p-001".to_owned()));
    let namespaced = all_pages(
        &client,
        &format!("/api/v1/namespaces/team-2/pods?{}", select("idx-2")),
        7,
    )
    .await;
    assert_eq!(namespaced, expected("idx-2", Some("team-2")));
    assert!(!namespaced.is_empty());
    // A node without pods, and pods not scheduled (`spec.nodeName=`), are answered too.
    assert!(
        all_pages(&client, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnone", 5)
            .await
            .is_empty()
    );
    let unscheduled: Vec<String> = all_pages(&client, "/api/v1/pods?fieldSelector=spec.nodeName%3D", 500)
        .await
        .into_iter()
        .filter(|n| n.starts_with("team-"))
        .collect();
    assert!(unscheduled.is_empty(), "{unscheduled:?}");
}
