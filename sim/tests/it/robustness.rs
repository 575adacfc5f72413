//! Malformed requests get a 4xx Status (never a panic or a dropped connection), watches end
//! when their client goes away, and collection deletes honour selectors and dry runs.

use serde_json::{Value, json};

use crate::common::{Client, DEPLOY, NS, start, wait_until};

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

fn assert_client_error(response: &crate::common::Response, what: &str) {
    assert!(
        (400..500).contains(&response.status),
        "{what}: {} {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json()["kind"], "Status", "{what}");
}

#[tokio::test]
async fn access_reviews_that_are_not_objects_are_bad_requests() {
    let sim = start();
    let client = Client::new(&sim);
    for body in [json!([]), json!("review"), json!(7)] {
        let response = client.json("POST", SSAR, "application/json", &body).await;
        assert_client_error(&response, &body.to_string());
        assert_eq!(response.status, 400);
    }
}

#[tokio::test]
async fn writes_with_wrongly_typed_fields_are_bad_requests() {
    let sim = start();
    let client = Client::new(&sim);
    let merge = "application/merge-patch+json";
    let patches = [
        json!({"spec": "x"}),
        json!({"spec": {"template": "x"}}),
        json!({"spec": {"template": {"spec": 3}}}),
        json!({"spec": {"template": {"spec": {"containers": [1]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": "80"}]}}}}),
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": "x"}}}),
        json!({"spec": {"replicas": "3"}}),
        json!({"metadata": "x"}),
    ];
    for patch in &patches {
        let response = client.json("PATCH", DEPLOY, merge, patch).await;
        assert_client_error(&response, &patch.to_string());
    }
    // A JSON patch may replace the whole object with something that is not an object.
    let root = json!([{"op": "replace", "path": "", "value": [1]}]);
    let response = client
        .json("PATCH", DEPLOY, "application/json-patch+json", &root)
        .await;
    assert_client_error(&response, "root replaced by an array");
    let delete_all = client
        .json(
            "PATCH",
            DEPLOY,
            "application/strategic-merge-patch+json",
            &json!({"$patch": "delete"}),
        )
        .await;
    assert_client_error(&delete_all, "strategic merge patch deleting the whole object");
    let put = json!({"metadata": {"name": "orchestrator"}, "spec": {"template": "x"}});
    let response = client.json("PUT", DEPLOY, "application/json", &put).await;
    assert_client_error(&response, "PUT");
    let create = json!({"metadata": {"name": "svc"}, "spec": {"ports": [80]}});
    let response = client
        .json(
            "POST",
            &format!("/api/v1/namespaces/{NS}/services"),
            "application/json",
            &create,
        )
        .await;
    assert_client_error(&response, "service ports");
    let hpa = "/apis/autoscaling/v2/namespaces/llm-orchestrator/horizontalpodautoscalers/orchestrator";
    let response = client
        .json("PATCH", hpa, merge, &json!({"spec": {"metrics": "cpu"}}))
        .await;
    assert_client_error(&response, "hpa metrics");
    // Nothing was stored, and the server still answers.
    assert_eq!(client.get(DEPLOY).await.json()["metadata"]["generation"], 1);
}

#[tokio::test]
async fn malformed_queries_and_bodies_get_statuses() {
    let sim = start();
    let client = Client::new(&sim);
    let cm = format!("/api/v1/namespaces/{NS}/configmaps");
    for path in [
        format!("{cm}?continue=bm90LWEtdG9rZW4="),
        format!("{cm}?watch=true&resourceVersion=abc"),
        format!("{cm}?fieldSelector=spec.unknown%3D1"),
        format!("{cm}?labelSelector=a%20in%20(b"),
        format!("{cm}?limit=ten"),
        format!("{cm}?watch=true&timeoutSeconds=soon"),
    ] {
        assert_client_error(&client.get(&path).await, &path);
    }
    let not_json = client
        .send("POST", &cm, Some("application/json"), b"{\"metadata\":", None)
        .await;
    assert_client_error(&not_json, "truncated body");
    let delete = client
        .send(
            "DELETE",
            &format!("{cm}/orchestrator-config"),
            Some("application/json"),
            b"[",
            None,
        )
        .await;
    assert_client_error(&delete, "DeleteOptions");
    let scale = client
        .send(
            "PUT",
            &format!("{DEPLOY}/scale"),
            Some("application/json"),
            b"nope",
            None,
        )
        .await;
    assert_client_error(&scale, "Scale");
    // Replica counts are int32: a client bug asking for billions of pods is refused.
    for replicas in [json!(5_000_000_000u64), json!("5"), json!(1.5)] {
        let patch = json!({"spec": {"replicas": replicas}});
        let merge = "application/merge-patch+json";
        let scale = client
            .json("PATCH", &format!("{DEPLOY}/scale"), merge, &patch)
            .await;
        assert_client_error(&scale, &patch.to_string());
        let main = client.json("PATCH", DEPLOY, merge, &patch).await;
        assert_client_error(&main, &patch.to_string());
    }
    assert_eq!(client.get(DEPLOY).await.json()["spec"]["replicas"], 3);
}

#[tokio::test]
async fn defaulting_adds_no_null_fields() {
    let sim = start();
    let client = Client::new(&sim);
    let patch = json!({"metadata": {"labels": {"touched": "yes"}}});
    let patched = client
        .json("PATCH", DEPLOY, "application/merge-patch+json", &patch)
        .await
        .json();
    let pod_spec = &patched["spec"]["template"]["spec"];
    assert!(pod_spec.get("initContainers").is_none(), "{pod_spec}");
    let sidecar = &pod_spec["containers"][1];
    assert_eq!(sidecar["name"], "log-shipper");
    assert!(sidecar.get("ports").is_none(), "{sidecar}");
    fn has_null(value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::Array(items) => items.iter().any(has_null),
            Value::Object(map) => map.values().any(has_null),
            _ => false,
        }
    }
    assert!(!has_null(&patched["spec"]), "{}", patched["spec"]);
}

#[tokio::test]
async fn delete_collection_honours_selectors_and_dry_run() {
    let sim = start();
    let client = Client::new(&sim);
    let cm = format!("/api/v1/namespaces/{NS}/configmaps");
    for (name, team) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let body = json!({"metadata": {"name": name, "labels": {"team": team}}});
        assert_eq!(
            client.json("POST", &cm, "application/json", &body).await.status,
            201
        );
    }
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    let dry = client
        .send(
            "DELETE",
            &format!("{cm}?labelSelector=team%3Dx&dryRun=All"),
            None,
            b"",
            None,
        )
        .await;
    assert_eq!(dry.status, 200);
    assert_eq!(names(&dry.json()), ["a", "b"]);
    assert_eq!(
        names(&client.get(&format!("{cm}?labelSelector=team")).await.json()),
        ["a", "b", "c"]
    );
    let deleted = client
        .send("DELETE", &format!("{cm}?labelSelector=team%3Dx"), None, b"", None)
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["kind"], "ConfigMapList");
    assert_eq!(
        names(&client.get(&format!("{cm}?labelSelector=team")).await.json()),
        ["c"]
    );
    assert!(client.get(&format!("{cm}/orchestrator-config")).await.status == 200);
}

#[tokio::test]
async fn a_watch_ends_when_its_client_goes_away() {
    let sim = start();
    let baseline = sim.store().receiver_count();
    for client in [Client::new(&sim), Client::http2(&sim)] {
        let stream = client.open("/api/v1/nodes?watch=true").await;
        assert_eq!(stream.status(), 200);
        wait_until("the watch subscribed", || async {
            sim.store().receiver_count() > baseline
        })
        .await;
        drop(stream);
        drop(client);
        wait_until("the watch's receiver dropped", || async {
            sim.store().receiver_count() == baseline
        })
        .await;
    }
}
