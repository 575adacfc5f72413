//! get, list (selectors, pagination), create, update, delete, dry runs and validation errors.

use serde_json::json;

use crate::common::{Client, DEPLOY, NS, start};

const CM: &str = "/api/v1/namespaces/llm-orchestrator/configmaps";

#[tokio::test]
async fn get_returns_seeded_objects_and_404_status() {
    let sim = start();
    let client = Client::new(&sim);
    let deploy = client.get(DEPLOY).await.json();
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(deploy["kind"], "Deployment");
    let missing = client
        .get("/apis/apps/v1/namespaces/llm-orchestrator/deployments/nope")
        .await;
    assert_eq!(missing.status, 404);
    let status = missing.json();
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["details"]["name"], "nope");
    assert_eq!(status["message"], "deployments.apps \"nope\" not found");
}

#[tokio::test]
async fn lists_filter_by_selectors_and_paginate() {
    let sim = start();
    let client = Client::new(&sim);
    let nodes = client.get("/api/v1/nodes").await.json();
    assert_eq!(nodes["kind"], "NodeList");
    assert!(nodes["metadata"]["resourceVersion"].as_str().is_some());
    assert_eq!(nodes["items"].as_array().map(Vec::len), Some(3));
    let selected = client
        .get("/api/v1/nodes?labelSelector=kubernetes.io%2Fhostname%20in%20(node-a,node-c)")
        .await
        .json();
    assert_eq!(selected["items"].as_array().map(Vec::len), Some(2));
    let by_name = client
        .get("/api/v1/nodes?fieldSelector=metadata.name%3Dnode-b")
        .await
        .json();
    assert_eq!(by_name["items"][0]["metadata"]["name"], "node-b");
    let page = client.get("/api/v1/nodes?limit=2").await.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    let token = page["metadata"]["continue"].as_str().expect("continue token");
    let rest = client
        .get(&format!("/api/v1/nodes?limit=2&continue={token}"))
        .await
        .json();
    assert_eq!(rest["items"][0]["metadata"]["name"], "node-c");
    assert!(rest["metadata"].get("continue").is_none());
    let all = client.get("/apis/apps/v1/deployments").await.json();
    assert_eq!(all["kind"], "DeploymentList");
    assert!(
        all["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|d| d["metadata"]["namespace"] == NS))
    );
    assert_eq!(
        client.get("/api/v1/nodes?labelSelector=a%20in%20b").await.status,
        400
    );
}

#[tokio::test]
async fn create_update_delete_with_conflicts() {
    let sim = start();
    let client = Client::new(&sim);
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra"}, "data": {"a": "1"}});
    let created = client.json("POST", CM, "application/json", &body).await;
    assert_eq!(created.status, 201);
    let created = created.json();
    assert_eq!(created["metadata"]["namespace"], NS);
    let again = client.json("POST", CM, "application/json", &body).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["reason"], "AlreadyExists");

    let mut changed = created.clone();
    changed["data"]["a"] = json!("2");
    let updated = client
        .json("PUT", &format!("{CM}/extra"), "application/json", &changed)
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["data"]["a"], "2");
    // `changed` still carries the old resourceVersion.
    let stale = client
        .json("PUT", &format!("{CM}/extra"), "application/json", &changed)
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.json()["reason"], "Conflict");

    let deleted = client
        .send("DELETE", &format!("{CM}/extra"), None, b"", None)
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["status"], "Success");
    assert_eq!(client.get(&format!("{CM}/extra")).await.status, 404);
    assert_eq!(
        client
            .send("DELETE", &format!("{CM}/extra"), None, b"", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn dry_run_writes_validate_but_persist_nothing() {
    let sim = start();
    let client = Client::new(&sim);
    let body = json!({"metadata": {"name": "dry"}, "data": {}});
    let created = client
        .json("POST", &format!("{CM}?dryRun=All"), "application/json", &body)
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(client.get(&format!("{CM}/dry")).await.status, 404);
    let patch = json!({"spec": {"replicas": 7}});
    let patched = client
        .json(
            "PATCH",
            &format!("{DEPLOY}?dryRun=All"),
            "application/merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["spec"]["replicas"], 7);
    assert_eq!(client.get(DEPLOY).await.json()["spec"]["replicas"], 3);
    let invalid = json!({"spec": {"replicas": -1}});
    let refused = client
        .json(
            "PATCH",
            &format!("{DEPLOY}?dryRun=All"),
            "application/merge-patch+json",
            &invalid,
        )
        .await;
    assert_eq!(refused.status, 422);
    let deleted = client
        .send("DELETE", &format!("{DEPLOY}?dryRun=All"), None, b"", None)
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(client.get(DEPLOY).await.status, 200);
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
    // Only `All` exists; anything else is refused rather than taken for a real write.
    let unknown = client
        .json(
            "PATCH",
            &format!("{DEPLOY}?dryRun=true"),
            "application/merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(unknown.status, 422);
    let status = unknown.json();
    assert_eq!(status["details"]["kind"], "PatchOptions");
    assert_eq!(status["details"]["causes"][0]["field"], "dryRun");
    assert_eq!(client.get(DEPLOY).await.json()["spec"]["replicas"], 3);
}

#[tokio::test]
async fn invalid_objects_get_422_with_field_causes() {
    let sim = start();
    let client = Client::new(&sim);
    let no_name = client
        .json("POST", CM, "application/json", &json!({"metadata": {}}))
        .await;
    assert_eq!(no_name.status, 422);
    assert_eq!(no_name.json()["details"]["causes"][0]["field"], "metadata.name");

    let hpa = "/apis/autoscaling/v2/namespaces/llm-orchestrator/horizontalpodautoscalers/orchestrator";
    let bad = client
        .json(
            "PATCH",
            hpa,
            "application/merge-patch+json",
            &json!({"spec": {"minReplicas": 11}}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let status = bad.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["kind"], "HorizontalPodAutoscaler");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.maxReplicas");

    let resources = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "orchestrator", "resources": {"requests": {"cpu": "3"}, "limits": {"cpu": "1"}}}]}}}});
    let above = client
        .json(
            "PATCH",
            DEPLOY,
            "application/strategic-merge-patch+json",
            &resources,
        )
        .await;
    assert_eq!(above.status, 422);
    assert_eq!(
        above.json()["details"]["causes"][0]["field"],
        "spec.template.spec.containers[0].resources.requests"
    );
    let garbage = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "orchestrator", "resources": {"requests": {"memory": "lots"}}}]}}}});
    let malformed = client
        .json(
            "PATCH",
            DEPLOY,
            "application/strategic-merge-patch+json",
            &garbage,
        )
        .await;
    assert_eq!(malformed.status, 422);
    assert_eq!(client.get(DEPLOY).await.json()["metadata"]["generation"], 1);
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let sim = start();
    let client = Client::new(&sim);
    let scale_path = format!("{DEPLOY}/scale");
    let scale = client.get(&scale_path).await.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=orchestrator");
    let patched = client
        .json(
            "PATCH",
            &scale_path,
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 5}}),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(client.get(DEPLOY).await.json()["spec"]["replicas"], 5);
    let stale = patched.json();
    // Without a resourceVersion the PUT is unconditional (controllers write status meanwhile).
    let put = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "orchestrator", "namespace": "llm-orchestrator"}, "spec": {"replicas": 4}});
    let replaced = client.json("PUT", &scale_path, "application/json", &put).await;
    assert_eq!(replaced.status, 200);
    assert_eq!(replaced.json()["spec"]["replicas"], 4);
    // `stale` carries the version before the PUT.
    let conflict = client.json("PUT", &scale_path, "application/json", &stale).await;
    assert_eq!(conflict.status, 409);
    let negative = client
        .json(
            "PATCH",
            &scale_path,
            "application/merge-patch+json",
            &json!({"spec": {"replicas": -1}}),
        )
        .await;
    assert_eq!(negative.status, 422);
    assert_eq!(negative.json()["details"]["kind"], "Scale");
    let sts = "/apis/apps/v1/namespaces/llm-orchestrator/statefulsets/postgres/scale";
    assert_eq!(client.get(sts).await.json()["status"]["selector"], "app=postgres");
}

#[tokio::test]
async fn status_subresource_writes_only_status() {
    let sim = start();
    let client = Client::new(&sim);
    // The namespace, because no controller writes its status in between.
    let path = "/api/v1/namespaces/default";
    let patch = json!({"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Terminating"}});
    let response = client
        .json(
            "PATCH",
            &format!("{path}/status"),
            "application/merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(response.status, 200);
    let stored = client.get(path).await.json();
    assert_eq!(stored["status"]["phase"], "Terminating");
    assert!(stored["metadata"]["labels"].get("x").is_none());
    let main = client
        .json(
            "PATCH",
            path,
            "application/merge-patch+json",
            &json!({"status": {"phase": "Active"}, "metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(main.status, 200);
    let stored = client.get(path).await.json();
    assert_eq!(stored["status"]["phase"], "Terminating");
    assert_eq!(stored["metadata"]["labels"]["x"], "y");
}

#[tokio::test]
async fn unsupported_methods_and_media_types_are_refused() {
    let sim = start();
    let client = Client::new(&sim);
    let put_list = client.json("PUT", CM, "application/json", &json!({})).await;
    assert_eq!(put_list.status, 405);
    assert_eq!(put_list.json()["reason"], "MethodNotAllowed");
    let metrics = client
        .json(
            "POST",
            "/apis/metrics.k8s.io/v1beta1/namespaces/llm-orchestrator/pods",
            "application/json",
            &json!({}),
        )
        .await;
    assert_eq!(metrics.status, 405);
    let apply = client
        .send(
            "PATCH",
            &format!("{DEPLOY}?fieldManager=t"),
            Some("application/apply-patch+yaml"),
            b"spec: {}",
            None,
        )
        .await;
    assert_eq!(apply.status, 415, "YAML apply bodies are not parsed");
    assert_eq!(apply.json()["reason"], "UnsupportedMediaType");
    let text = client
        .send("PATCH", DEPLOY, Some("text/plain"), b"{}", None)
        .await;
    assert_eq!(text.status, 415);
    let missing_ns = client
        .json(
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            "application/json",
            &json!({"metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(missing_ns.status, 404);
}

#[tokio::test]
async fn writes_are_defaulted_without_changing_seeded_specs() {
    let sim = start();
    let client = Client::new(&sim);
    let labels = json!({"metadata": {"labels": {"team": "llm"}}});
    let patched = client
        .json("PATCH", DEPLOY, "application/merge-patch+json", &labels)
        .await
        .json();
    assert_eq!(
        patched["metadata"]["generation"], 1,
        "a metadata-only patch must not roll pods"
    );
    let body = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    let created = client
        .json(
            "POST",
            "/apis/apps/v1/namespaces/llm-orchestrator/deployments?dryRun=All",
            "application/json",
            &body,
        )
        .await
        .json();
    assert_eq!(created["spec"]["replicas"], 1);
    assert_eq!(
        created["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
}

#[tokio::test]
async fn nulls_sent_by_kubectl_are_not_a_spec_change() {
    let sim = start();
    let client = Client::new(&sim);
    // What `kubectl rollout undo` and manifests saved with `get -o yaml` carry.
    let mut deploy = client.get(DEPLOY).await.json();
    deploy["spec"]["template"]["metadata"]["creationTimestamp"] = serde_json::Value::Null;
    // Unconditional: the controllers write the status meanwhile, which would be a 409.
    deploy["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    let replaced = client.json("PUT", DEPLOY, "application/json", &deploy).await;
    assert_eq!(replaced.status, 200);
    let stored = replaced.json();
    assert_eq!(stored["metadata"]["generation"], 1, "no rollout for a null");
    assert!(
        stored["spec"]["template"]["metadata"]
            .get("creationTimestamp")
            .is_none()
    );
}
