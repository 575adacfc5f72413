//! SelfSubjectAccessReview (JSON and protobuf), the service proxy and the metrics API.

use orchscale_sim::store::ObjectKey;
use serde_json::json;

use crate::common::{Client, NS, start, wait_until};

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

fn review(verb: &str, resource: &str, subresource: &str) -> serde_json::Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
           "spec": {"resourceAttributes": {"namespace": NS, "verb": verb, "group": "apps",
                                           "resource": resource, "subresource": subresource}}})
}

#[tokio::test]
async fn access_reviews_allow_unless_denied_and_are_not_writes() {
    let sim = start();
    let client = Client::new(&sim);
    let allowed = client
        .json(
            "POST",
            SSAR,
            "application/json",
            &review("patch", "deployments", "scale"),
        )
        .await;
    assert_eq!(allowed.status, 201);
    assert_eq!(allowed.json()["status"]["allowed"], true);
    sim.faults().deny("patch", "deployments/scale");
    let denied = client
        .json(
            "POST",
            SSAR,
            "application/json",
            &review("patch", "deployments", "scale"),
        )
        .await;
    assert_eq!(denied.json()["status"]["allowed"], false);
    let other = client
        .json(
            "POST",
            SSAR,
            "application/json",
            &review("patch", "deployments", ""),
        )
        .await;
    assert_eq!(other.json()["status"]["allowed"], true);
    assert!(sim.persisted_writes().is_empty());
}

#[tokio::test]
async fn access_reviews_speak_protobuf() {
    use k8s_pb::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use prost::Message;

    let sim = start();
    sim.faults().deny("patch", "deployments");
    let client = Client::new(&sim);
    let request = SelfSubjectAccessReview {
        spec: Some(SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("patch".into()),
                resource: Some("deployments".into()),
                group: Some("apps".into()),
                namespace: Some(NS.into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("authorization.k8s.io/v1".into()),
            kind: Some("SelfSubjectAccessReview".into()),
        }),
        raw: Some(request.encode_to_vec()),
        ..Default::default()
    };
    let mut body = b"k8s\x00".to_vec();
    body.extend(envelope.encode_to_vec());
    let protobuf = "application/vnd.kubernetes.protobuf";
    let response = client
        .send(
            "POST",
            SSAR,
            Some(protobuf),
            &body,
            Some("application/vnd.kubernetes.protobuf, application/json"),
        )
        .await;
    assert_eq!(response.status, 201);
    assert_eq!(
        response.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some(protobuf)
    );
    let unknown = Unknown::decode(&response.body[4..]).expect("envelope");
    let answer = SelfSubjectAccessReview::decode(unknown.raw.unwrap_or_default().as_slice()).expect("review");
    assert_eq!(answer.status.and_then(|s| s.allowed), Some(false));
    let as_json = client
        .send("POST", SSAR, Some(protobuf), &body, Some("application/json"))
        .await;
    assert_eq!(as_json.json()["status"]["allowed"], false);
}

#[tokio::test]
async fn service_proxy_answers_health_and_503_without_endpoints() {
    let sim = start();
    let client = Client::new(&sim);
    let health = format!("/api/v1/namespaces/{NS}/services/orchestrator/proxy/health");
    // The orchestrator's pods become ready once the controllers have started them.
    wait_until("a ready orchestrator pod", || async {
        client.get(&health).await.status == 200
    })
    .await;
    for name in ["orchestrator", "orchestrator:80", "http:orchestrator:"] {
        let health = client
            .get(&format!("/api/v1/namespaces/{NS}/services/{name}/proxy/health"))
            .await;
        assert_eq!(health.status, 200, "{name}");
        assert_eq!(health.json(), json!({"status": "ok"}));
    }
    sim.faults().set_health_status(503);
    let unhealthy = client
        .get(&format!(
            "/api/v1/namespaces/{NS}/services/orchestrator/proxy/health"
        ))
        .await;
    assert_eq!(unhealthy.status, 503);
    let missing = client
        .get(&format!("/api/v1/namespaces/{NS}/services/nope/proxy/health"))
        .await;
    assert_eq!(missing.status, 404);
    let lonely = json!({"metadata": {"name": "lonely"}, "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}});
    client
        .json(
            "POST",
            &format!("/api/v1/namespaces/{NS}/services"),
            "application/json",
            &lonely,
        )
        .await;
    let no_endpoints = client
        .get(&format!("/api/v1/namespaces/{NS}/services/lonely/proxy/health"))
        .await;
    assert_eq!(no_endpoints.status, 503);
    assert!(
        no_endpoints.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("no endpoints available"))
    );
}

#[tokio::test]
async fn metrics_api_serves_pod_and_node_metrics_from_the_store() {
    let sim = start();
    let client = Client::new(&sim);
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods");
    // The metrics controller writes PodMetrics once pods are ready.
    wait_until("pod metrics", || async {
        client.get(&path).await.json()["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    })
    .await;
    let list = client.get(&path).await.json();
    assert_eq!(list["kind"], "PodMetricsList");
    let name = list["items"][0]["metadata"]["name"]
        .as_str()
        .expect("pod metrics item")
        .to_owned();
    let stored = sim
        .store()
        .get(&ObjectKey::new("podmetrics", NS, &name))
        .expect("stored as podmetrics");
    let one = client.get(&format!("{path}/{name}")).await.json();
    assert_eq!(one["kind"], "PodMetrics");
    assert_eq!(one["metadata"]["name"], stored["metadata"]["name"]);
    let nodes = client.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(nodes.status, 200);
    assert_eq!(nodes.json()["kind"], "NodeMetricsList");
}
