//! TLS, auth, kubeconfig and discovery documents.

use crate::common::{Client, read_kubeconfig, start};

#[tokio::test]
async fn kubeconfig_points_at_a_listening_https_server() {
    let sim = start();
    let facts = read_kubeconfig(&sim);
    assert_eq!(facts.server, sim.url());
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    let text = std::fs::read_to_string(sim.kubeconfig()).expect("kubeconfig");
    assert!(text.contains("current-context: orchscale-sim"));
    assert!(
        !text.contains("namespace:"),
        "RBAC users' contexts only with RBAC on"
    );
    let version = Client::new(&sim).get("/version").await;
    assert_eq!(version.status, 200);
    assert_eq!(version.json()["major"], "1");
}

#[tokio::test]
async fn requests_without_the_token_get_401_status() {
    let sim = start();
    let response = Client::new(&sim).without_token().get("/api/v1/namespaces").await;
    assert_eq!(response.status, 401);
    let status = response.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
}

#[tokio::test]
async fn http2_is_negotiated() {
    let sim = start();
    let response = Client::http2(&sim).get("/api").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["versions"][0], "v1");
}

#[tokio::test]
async fn discovery_lists_groups_and_resources() {
    let sim = start();
    let client = Client::new(&sim);
    let groups = client.get("/apis").await.json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in ["apps", "autoscaling", "metrics.k8s.io", "authorization.k8s.io"] {
        assert!(names.contains(&group), "{group} in {names:?}");
    }
    let core = client.get("/api/v1").await.json();
    let resources = core["resources"].as_array().expect("resources");
    let pods = resources.iter().find(|r| r["name"] == "pods").expect("pods");
    assert_eq!(pods["shortNames"][0], "po");
    assert!(resources.iter().any(|r| r["name"] == "services/proxy"));
    let hpa = client.get("/apis/autoscaling/v2").await.json();
    assert_eq!(hpa["resources"][0]["shortNames"][0], "hpa");
    assert_eq!(client.get("/apis/batch/v1").await.status, 404);
    assert_eq!(client.get("/openapi/v2").await.status, 404);
}

#[tokio::test]
async fn openapi_v3_declares_field_validation() {
    let sim = start();
    let client = Client::new(&sim);
    let root = client.get("/openapi/v3").await.json();
    let url = root["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("core document")
        .to_owned();
    let core = client.get(&url).await.json();
    let patch = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
    assert_eq!(client.get("/openapi/v3/apis/batch/v1").await.status, 404);
}
