//! The scenario knobs that shape the world: extra pods at scale, and the pod start delay.

use std::time::Duration;

use orchscale_sim::{Sim, SimOptions};
use serde_json::{Value, json};

use crate::common::{Client, DEPLOY, NS, start, wait_until};

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

#[tokio::test]
async fn extra_pods_are_spread_running_and_listed_in_pages() {
    let sim = Sim::start(SimOptions {
        extra_pods: 1_500,
        pod_start_delay: Duration::from_millis(10),
        ..SimOptions::default()
    })
    .expect("sim starts");
    let client = Client::new(&sim);
    let pods = "/api/v1/namespaces/team-000/pods";
    let list = client.get(pods).await.json();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    // 1,500 pods over two team namespaces: 713 running workers + 38 finished Job pods here.
    assert_eq!(items.len(), 751);
    assert_eq!(
        items.iter().filter(|p| ready(p)).count(),
        713,
        "seeded running and Ready"
    );
    let page = client.get(&format!("{pods}?limit=100")).await.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(100));
    assert_eq!(page["metadata"]["remainingItemCount"], 651);
    let nodes = client.get("/api/v1/nodes").await.json();
    assert_eq!(
        nodes["items"].as_array().map(Vec::len),
        Some(3 + 15),
        "3 seeded + 15 batch nodes for 1,425 running pods"
    );
    // The controllers take the seeded pods as their own: the deployment settles with every
    // replica available and no pod is added or removed.
    wait_until("the team deployment available", || async {
        let d = client
            .get("/apis/apps/v1/namespaces/team-000/deployments/worker")
            .await
            .json();
        d["status"]["availableReplicas"] == 713 && d["status"]["updatedReplicas"] == 713
    })
    .await;
    let list = client.get(pods).await.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(751));
}

#[tokio::test]
async fn pod_start_delay_holds_new_pods_back_until_lowered() {
    let sim = start();
    let client = Client::new(&sim);
    let pods = format!("/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dorchestrator");
    let ready_count = |list: &Value| {
        list["items"]
            .as_array()
            .map_or(0, |i| i.iter().filter(|p| ready(p)).count())
    };
    wait_until("3 ready orchestrator pods", || async {
        ready_count(&client.get(&pods).await.json()) == 3
    })
    .await;
    // The orchestrator's HPA would scale the manual fourth pod away at its next sync (its
    // minimum is 3 and the load does not need 4), deleting the very pod this test waits for:
    // without the HPA, the pod count is the test's alone.
    let hpa = format!("/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/orchestrator");
    assert_eq!(client.send("DELETE", &hpa, None, b"", None).await.status, 200);
    // Far longer than this test runs: a new pod cannot be ready unless the knob is ignored.
    sim.scenario().set_pod_start_delay(Duration::from_secs(600));
    let scale = json!({"spec": {"replicas": 4}});
    let patched = client
        .json(
            "PATCH",
            &format!("{DEPLOY}/scale"),
            "application/merge-patch+json",
            &scale,
        )
        .await;
    assert_eq!(patched.status, 200);
    wait_until("a fourth pod", || async {
        client.get(&pods).await.json()["items"].as_array().map(Vec::len) == Some(4)
    })
    .await;
    assert_eq!(ready_count(&client.get(&pods).await.json()), 3);
    sim.scenario().set_pod_start_delay(Duration::ZERO);
    wait_until("the fourth pod ready once the delay is lifted", || async {
        ready_count(&client.get(&pods).await.json()) == 4
    })
    .await;
}
