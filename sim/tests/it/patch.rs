//! The three patch types over HTTPS, preconditions, and what survives a strategic merge.

use serde_json::json;

use crate::common::{Client, DEPLOY, start};

#[tokio::test]
async fn strategic_merge_keeps_the_sidecar_and_other_resource_keys() {
    let sim = start();
    let client = Client::new(&sim);
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "orchestrator"}, {"name": "log-shipper"}],
        "containers": [{"name": "orchestrator", "resources": {"requests": {"cpu": "600m"}}}]}}}});
    let response = client
        .json(
            "PATCH",
            &format!("{DEPLOY}?fieldManager=kubectl-set"),
            "application/strategic-merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(response.status, 200);
    let deploy = client.get(DEPLOY).await.json();
    let containers = &deploy["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["resources"]["requests"]["cpu"], "600m");
    assert_eq!(containers[0]["resources"]["requests"]["memory"], "1Gi");
    assert_eq!(containers[0]["resources"]["requests"]["ephemeral-storage"], "1Gi");
    assert_eq!(containers[1]["name"], "log-shipper");
    assert_eq!(deploy["metadata"]["generation"], 2);
}

#[tokio::test]
async fn merge_patch_replaces_lists_and_json_patch_test_guards() {
    let sim = start();
    let client = Client::new(&sim);
    let cm = "/api/v1/namespaces/llm-orchestrator/configmaps/orchestrator-config";
    let merged = client
        .json(
            "PATCH",
            cm,
            "application/merge-patch+json",
            &json!({"data": {"extra": "1"}}),
        )
        .await;
    assert_eq!(merged.status, 200);
    let data = &merged.json()["data"];
    assert_eq!(data["extra"], "1");
    assert!(data["config.yaml"].as_str().is_some());

    let guarded = json!([
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "orchestrator"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "ghcr.io/example/llm-orchestrator:1.9.0"}]);
    let ok = client
        .json("PATCH", DEPLOY, "application/json-patch+json", &guarded)
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.json()["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/example/llm-orchestrator:1.9.0"
    );
    let wrong = json!([
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "log-shipper"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "x"}]);
    let failed = client
        .json("PATCH", DEPLOY, "application/json-patch+json", &wrong)
        .await;
    assert_eq!(failed.status, 422);
    assert_eq!(failed.json()["kind"], "Status");
    let broken = client
        .send(
            "PATCH",
            DEPLOY,
            Some("application/json-patch+json"),
            b"{not json",
            None,
        )
        .await;
    assert_eq!(broken.status, 400);
}

#[tokio::test]
async fn patch_with_a_stale_resource_version_conflicts() {
    let sim = start();
    let client = Client::new(&sim);
    let cm = "/api/v1/namespaces/llm-orchestrator/configmaps/orchestrator-config";
    let current = client.get(cm).await.json();
    let rv = current["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    let first = json!({"metadata": {"resourceVersion": rv}, "data": {"a": "1"}});
    assert_eq!(
        client
            .json("PATCH", cm, "application/merge-patch+json", &first)
            .await
            .status,
        200
    );
    let stale = json!({"metadata": {"resourceVersion": rv}, "data": {"a": "2"}});
    let conflict = client
        .json("PATCH", cm, "application/merge-patch+json", &stale)
        .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["reason"], "Conflict");
    assert_eq!(client.get(cm).await.json()["data"]["a"], "1");
    let missing = client
        .json(
            "PATCH",
            "/api/v1/namespaces/llm-orchestrator/configmaps/none",
            "application/merge-patch+json",
            &json!({}),
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn server_side_apply_creates_then_merges_and_needs_a_field_manager() {
    let sim = start();
    let client = Client::new(&sim);
    let path = "/api/v1/namespaces/llm-orchestrator/configmaps/applied?fieldManager=orchscale";
    let apply = "application/apply-patch+yaml";
    let first =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    let created = client.json("PATCH", path, apply, &first).await;
    assert_eq!(created.status, 201);
    let second =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"b": "2"}});
    let merged = client.json("PATCH", path, apply, &second).await;
    assert_eq!(merged.status, 200);
    assert_eq!(merged.json()["data"], json!({"a": "1", "b": "2"}));
    let no_manager = client
        .json(
            "PATCH",
            "/api/v1/namespaces/llm-orchestrator/configmaps/applied",
            apply,
            &second,
        )
        .await;
    assert_eq!(no_manager.status, 422);
}
