//! StatefulSet ordering, rolling update from the highest ordinal, and OnDelete.

use serde_json::json;

use super::*;

fn statefulset(name: &str, replicas: i64, strategy: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": strategy},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container(name, "100m", "64Mi")]}},
        },
    })
}

fn settled(store: &Store, name: &str, replicas: i64) -> bool {
    let s = get(store, "statefulsets", name);
    s["status"]["readyReplicas"] == replicas
        && s["status"]["updatedReplicas"] == replicas
        && s["status"]["currentRevision"] == s["status"]["updateRevision"]
        && s["status"]["observedGeneration"] == s["metadata"]["generation"]
}

fn revision_of(store: &Store, pod: &str) -> String {
    get(store, "pods", pod)["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_goes_from_the_highest_ordinal_down() {
    let w = world(2);
    create(&w.store, "statefulsets", statefulset("db", 3, "RollingUpdate"));
    wait_for("3 ready members", || settled(&w.store, "db", 3)).await;
    let names: Vec<String> = pods_of(&w.store, "db")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    let old_revision = revision_of(&w.store, "db-0");
    assert!(old_revision.starts_with("db-"));
    let tracker = track_pods(&w.store, "db");
    edit(&w.store, "statefulsets", "db", |s| {
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example/db:2")
    });
    wait_for("the update", || {
        settled(&w.store, "db", 3)
            && get(&w.store, "statefulsets", "db")["status"]["currentRevision"] != old_revision.as_str()
    })
    .await;
    assert_eq!(tracker.lock().unwrap().deleted, ["db-2", "db-1", "db-0"]);
    let status = get(&w.store, "statefulsets", "db")["status"].clone();
    assert_eq!(status["currentReplicas"], 3);
    assert!(
        ["db-0", "db-1", "db-2"]
            .iter()
            .all(|p| revision_of(&w.store, p) == status["updateRevision"].as_str().unwrap())
    );
    edit(&w.store, "statefulsets", "db", |s| {
        s["spec"]["replicas"] = json!(1)
    });
    wait_for("scale down", || {
        settled(&w.store, "db", 1) && pods_of(&w.store, "db").len() == 1
    })
    .await;
    assert_eq!(tracker.lock().unwrap().deleted[3..], ["db-2", "db-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_updates_only_deleted_pods() {
    let w = world(2);
    create(&w.store, "statefulsets", statefulset("db", 2, "OnDelete"));
    wait_for("2 ready members", || settled(&w.store, "db", 2)).await;
    let old_revision = revision_of(&w.store, "db-1");
    edit(&w.store, "statefulsets", "db", |s| {
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example/db:2")
    });
    wait_for("a new update revision", || {
        let s = get(&w.store, "statefulsets", "db");
        s["status"]["observedGeneration"] == 2 && s["status"]["updateRevision"] != old_revision.as_str()
    })
    .await;
    // Give the controller a few passes to (wrongly) touch a pod.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(revision_of(&w.store, "db-0"), old_revision);
    assert_eq!(revision_of(&w.store, "db-1"), old_revision);
    let status = get(&w.store, "statefulsets", "db")["status"].clone();
    assert_eq!(status["currentRevision"], old_revision.as_str());
    assert_eq!(status["updatedReplicas"], 0);
    w.store.delete(&ObjectKey::new("pods", NS, "db-1"), None).unwrap();
    let update_revision = status["updateRevision"].as_str().unwrap().to_owned();
    wait_for("db-1 recreated at the update revision", || {
        revision_of(&w.store, "db-1") == update_revision
            && get(&w.store, "statefulsets", "db")["status"]["updatedReplicas"] == 1
    })
    .await;
    assert_eq!(revision_of(&w.store, "db-0"), old_revision);
    assert_eq!(
        get(&w.store, "statefulsets", "db")["status"]["currentRevision"],
        old_revision.as_str()
    );
}
