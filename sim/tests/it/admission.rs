//! Admission as real clusters run it, each behind a switch of `ApiBehaviour`: the Autopilot-like
//! resource mutator, LimitRanger, immutable ConfigMaps, and `events.k8s.io/v1`.

use orchscale_sim::{ApiBehaviour, ResourceMutator};
use serde_json::{Value, json};

use crate::common::{Client, DEPLOY, NS, start, wait_until};

const MERGE: &str = "application/merge-patch+json";

fn warnings(response: &crate::common::Response) -> Vec<String> {
    response
        .headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .expect("container")
}

// GKE Autopilot's autopilot-default-resources-mutator (a mutating admission webhook: webhooks
// run on dry run too, k8s.io/apiserver pkg/admission/plugin/webhook/mutating `Admit`, and their
// warnings reach the client as `Warning: 299` headers, k8s.io/apiserver pkg/warning).
#[tokio::test]
async fn the_resource_mutator_rounds_cpu_requests_sets_limits_and_warns() {
    let sim = start();
    let client = Client::new(&sim);
    sim.api()
        .update(|b| b.resource_mutator = Some(ResourceMutator::default()));
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "orchestrator", "resources": {"requests": {"cpu": "300m", "memory": "1Gi"}}}]}}}});
    let strategic = "application/strategic-merge-patch+json";
    let preview = client
        .json("PATCH", &format!("{DEPLOY}?dryRun=All"), strategic, &patch)
        .await;
    assert_eq!(preview.status, 200);
    assert_eq!(
        container(&preview.json(), "orchestrator")["resources"]["requests"]["cpu"],
        "500m",
        "admission runs on dry run"
    );
    let written = client.json("PATCH", DEPLOY, strategic, &patch).await;
    assert_eq!(written.status, 200);
    assert_eq!(
        warnings(&written),
        [
            "299 - \"autopilot-default-resources-mutator:Autopilot updated Deployment llm-orchestrator/orchestrator: \
          adjusted resources to meet requirements for containers [orchestrator log-shipper] \
          (see http://g.co/gke/autopilot-resources)\""
        ]
    );
    let stored = client.get(DEPLOY).await.json();
    let resources = &container(&stored, "orchestrator")["resources"];
    assert_eq!(resources["requests"]["cpu"], "500m");
    assert_eq!(resources["limits"], json!({"cpu": "500m", "memory": "1Gi"}));
    // The new pods come from the mutated template.
    wait_until("pods with the mutated requests", || async {
        let pods = client
            .get(&format!(
                "/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dorchestrator"
            ))
            .await
            .json();
        pods["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|p| p["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "500m")
        })
    })
    .await;
    // A write that meets the requirements already carries no warning; one that does not is
    // adjusted (and warned about) again.
    let compliant = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "orchestrator", "resources": {"requests": {"cpu": "750m"}, "limits": {"cpu": "750m"}}}]}}}});
    let again = client.json("PATCH", DEPLOY, strategic, &compliant).await;
    assert_eq!(again.status, 200);
    assert!(warnings(&again).is_empty(), "{:?}", warnings(&again));
    let repeated = client.json("PATCH", DEPLOY, strategic, &patch).await;
    assert_eq!(warnings(&repeated).len(), 1);
    sim.api().update(|b| b.resource_mutator = None);
    let plain = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "orchestrator", "resources": {"requests": {"cpu": "300m"}}}]}}}});
    let off = client.json("PATCH", DEPLOY, strategic, &plain).await;
    assert_eq!(
        container(&off.json(), "orchestrator")["resources"]["requests"]["cpu"],
        "300m"
    );
}

// plugin/pkg/admission/limitranger: `SupportsAttributes` (Pods on create, not their templates),
// `defaultContainerResourceRequirements` and `mergePodResourceRequirements` (only missing
// values, annotation "LimitRanger plugin set: ..."); pkg/apis/core/v1/defaults.go
// `SetDefaults_LimitRangeItem` (defaultRequest falls back to default).
#[tokio::test]
async fn limit_ranger_defaults_the_pods_of_a_namespace_with_a_limit_range() {
    let sim = start();
    let client = Client::new(&sim);
    sim.api().update(|b| b.limit_ranger = true);
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    let pod = |name: &str| {
        json!({"metadata": {"name": name}, "spec": {"containers": [
            {"name": "app", "image": "busybox:1", "resources": {"requests": {"cpu": "50m"}}}]}})
    };
    let before = client
        .json("POST", &pods, "application/json", &pod("before"))
        .await;
    assert_eq!(before.status, 201);
    assert!(
        before.json()["spec"]["containers"][0]["resources"]
            .get("limits")
            .is_none(),
        "no LimitRange yet"
    );
    let range = json!({"metadata": {"name": "defaults"}, "spec": {"limits": [{"type": "Container",
        "default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "100m"}}]}});
    let created = client
        .json(
            "POST",
            &format!("/api/v1/namespaces/{NS}/limitranges"),
            "application/json",
            &range,
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.json()["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "100m", "memory": "512Mi"})
    );
    let after = client
        .json("POST", &pods, "application/json", &pod("after"))
        .await
        .json();
    assert_eq!(
        after["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "50m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}})
    );
    assert_eq!(
        after["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: memory request for container app; cpu, memory limit for container app"
    );
    // Templates are not defaulted; the pods the controllers create from them are.
    let deployment = json!({"metadata": {"name": "bare", "labels": {"app": "bare"}}, "spec": {"replicas": 1,
        "selector": {"matchLabels": {"app": "bare"}},
        "template": {"metadata": {"labels": {"app": "bare"}},
                     "spec": {"containers": [{"name": "bare", "image": "busybox:1"}]}}}});
    let stored = client
        .json(
            "POST",
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            "application/json",
            &deployment,
        )
        .await
        .json();
    assert!(container(&stored, "bare").get("resources").is_none());
    wait_until("a defaulted pod of the bare deployment", || async {
        let listed = client.get(&format!("{pods}?labelSelector=app%3Dbare")).await.json();
        listed["items"].as_array().is_some_and(|items| {
            items.iter().any(|p| {
                p["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "100m"
                    && p["metadata"]["annotations"]["kubernetes.io/limit-ranger"]
                        == "LimitRanger plugin set: cpu, memory request for container bare; cpu, memory limit for container bare"
            })
        })
    })
    .await;
}

// pkg/apis/core/validation/validation.go `ValidateConfigMapUpdate`: field.Forbidden on
// `immutable`, `data` and `binaryData` with "field is immutable when `immutable` is set".
#[tokio::test]
async fn immutable_configmaps_refuse_data_changes_with_422() {
    let sim = start();
    let client = Client::new(&sim);
    sim.api().update(|b| b.immutable_configmaps = true);
    let collection = format!("/api/v1/namespaces/{NS}/configmaps");
    let frozen = json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"a": "1"}});
    assert_eq!(
        client
            .json("POST", &collection, "application/json", &frozen)
            .await
            .status,
        201
    );
    let path = format!("{collection}/frozen");
    let refused = client
        .json("PATCH", &path, MERGE, &json!({"data": {"a": "2"}}))
        .await;
    assert_eq!(refused.status, 422);
    let status = refused.json();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldValueForbidden", "field": "data",
                "message": "Forbidden: field is immutable when `immutable` is set"}])
    );
    let unset = client
        .json("PATCH", &path, MERGE, &json!({"immutable": false}))
        .await;
    assert_eq!(unset.status, 422);
    assert_eq!(unset.json()["details"]["causes"][0]["field"], "immutable");
    let dry = client
        .json(
            "PATCH",
            &format!("{path}?dryRun=All"),
            MERGE,
            &json!({"data": {"a": "2"}}),
        )
        .await;
    assert_eq!(dry.status, 422, "validation runs on dry run");
    let labelled = client
        .json(
            "PATCH",
            &path,
            MERGE,
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(labelled.status, 200, "metadata stays writable");
    assert_eq!(client.get(&path).await.json()["data"]["a"], "1");
}

#[tokio::test]
async fn events_k8s_io_serves_the_recorded_events_in_its_shape() {
    let sim = start();
    let client = Client::new(&sim);
    let v1_events = format!("/apis/events.k8s.io/v1/namespaces/{NS}/events");
    assert_eq!(client.get(&v1_events).await.status, 404, "off by default");
    let groups = client.get("/apis").await.json();
    assert!(!groups.to_string().contains("events.k8s.io"));
    sim.api().update(|b| b.events_v1 = true);
    let groups = client.get("/apis").await.json();
    assert!(
        groups["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["name"] == "events.k8s.io"))
    );
    let resources = client.get("/apis/events.k8s.io/v1").await.json();
    assert_eq!(resources["resources"][0]["name"], "events");
    // A scale-up makes the controllers record events.
    client
        .json(
            "PATCH",
            &format!("{DEPLOY}/scale"),
            MERGE,
            &json!({"spec": {"replicas": 4}}),
        )
        .await;
    let core_events = format!("/api/v1/namespaces/{NS}/events");
    wait_until("recorded events", || async {
        client.get(&core_events).await.json()["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    })
    .await;
    let watch = client.open(&format!("{v1_events}?watch=true")).await;
    let watched = crate::common::read_events(watch, 1).await;
    let list = client.get(&v1_events).await.json();
    assert_eq!(list["apiVersion"], "events.k8s.io/v1");
    let first = &list["items"][0];
    assert_eq!(first["apiVersion"], "events.k8s.io/v1");
    assert!(first["regarding"]["name"].is_string());
    assert!(first["note"].is_string());
    assert!(first.get("involvedObject").is_none());
    assert_eq!(watched[0]["object"]["apiVersion"], "events.k8s.io/v1");
    let name = first["regarding"]["name"].as_str().expect("name");
    let selected = client
        .get(&format!("{v1_events}?fieldSelector=regarding.name%3D{name}"))
        .await
        .json();
    assert!(
        selected["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty() && i.iter().all(|e| e["regarding"]["name"] == name))
    );
}

#[tokio::test]
async fn the_admin_endpoint_switches_api_behaviours() {
    let sim = start();
    let client = Client::new(&sim);
    let state = client
        .json(
            "POST",
            "/sim/api",
            "application/json",
            &json!({"resourceMutator": {"cpuStepMillis": 100}, "immutableConfigMaps": true, "eventsV1": true}),
        )
        .await;
    assert_eq!(state.status, 200);
    assert_eq!(
        state.json(),
        json!({"resourceMutator": {"cpuStepMillis": 100, "limitsEqualRequests": true},
               "limitRanger": false, "immutableConfigMaps": true, "eventsV1": true, "rbac": false})
    );
    assert_eq!(
        sim.api().get(),
        ApiBehaviour {
            resource_mutator: Some(ResourceMutator {
                cpu_step_millis: 100,
                limits_equal_requests: true
            }),
            immutable_configmaps: true,
            events_v1: true,
            ..ApiBehaviour::default()
        }
    );
    let off = client
        .json(
            "POST",
            "/sim/api",
            "application/json",
            &json!({"resourceMutator": null, "limitRanger": true}),
        )
        .await
        .json();
    assert_eq!(off["resourceMutator"], Value::Null);
    assert_eq!(off["limitRanger"], true);
    assert_eq!(client.get("/sim/api").await.json(), off);
    let bad = client
        .json("POST", "/sim/api", "application/json", &json!({"rbac": "yes"}))
        .await;
    assert_eq!(bad.status, 400);
}
