//! Cluster profiles: each behaviour switch shows the upstream behaviour it imitates (the rule is
//! cited per test), against the idealised sim where the contrast is the point.

use std::time::Duration;

use orchscale_sim::profile::{self, Behaviour, Flavor, KubernetesVersion, MetricsApi};
use orchscale_sim::{ApiBehaviour, Sim, SimOptions};
use serde_json::{Value, json};

use crate::common::{Client, DEPLOY, NS, wait_until};

const HPA: &str = "/apis/autoscaling/v2/namespaces/llm-orchestrator/horizontalpodautoscalers/orchestrator";
const STS: &str = "/apis/apps/v1/namespaces/llm-orchestrator/statefulsets/postgres";
const MERGE: &str = "application/merge-patch+json";

fn version(minor: u8) -> KubernetesVersion {
    KubernetesVersion::new(minor).expect("supported version")
}

fn sim_with(behaviour: Behaviour, hpa_sync_period: Duration) -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period,
        behaviour,
        ..SimOptions::default()
    })
    .expect("sim starts")
}

/// A profile whose terminating pods go after at most `cap`.
fn real(minor: u8, flavor: Flavor) -> Behaviour {
    Behaviour {
        grace_period_cap: Some(Duration::from_millis(600)),
        ..profile::profile(version(minor), flavor).behaviour
    }
}

fn progressing(deployment: &Value) -> Option<(String, String)> {
    deployment["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Progressing")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

async fn scale(client: &Client, replicas: i64) {
    let body = json!({"spec": {"replicas": replicas}});
    let patched = client
        .json("PATCH", &format!("{DEPLOY}/scale"), MERGE, &body)
        .await;
    assert_eq!(patched.status, 200);
}

#[tokio::test]
async fn version_answers_the_profile_and_the_sim_its_own_by_default() {
    let sim = sim_with(real(33, Flavor::Plain), Duration::from_secs(1));
    let answered = Client::new(&sim).get("/version").await.json();
    assert_eq!(answered["gitVersion"], "v1.33.4");
    assert_eq!(answered["minor"], "33");
    let idealised = sim_with(Behaviour::default(), Duration::from_secs(1));
    let answered = Client::new(&idealised).get("/version").await.json();
    assert_eq!(answered["gitVersion"], "v1.32.0-orchscale-sim");
}

/// Upstream before 1.36: the HPA registry strategy sets no `metadata.generation` and the
/// controller writes no `status.observedGeneration` (both added by kubernetes#138228), and
/// pkg/controller/podautoscaler/horizontal.go `enqueueHPA` adds every HPA event with
/// `queue.AddRateLimited`, so a spec change waits in the queue for the resync interval
/// ("Requests spend resync interval in queue"), not reconciled at once (kubernetes#138294).
#[tokio::test]
async fn hpa_before_1_36_has_no_generation_and_a_change_waits_for_the_resync() {
    let sim = sim_with(real(33, Flavor::Plain), Duration::from_secs(3600));
    let client = Client::new(&sim);
    let hpa = client.get(HPA).await.json();
    assert!(hpa["metadata"].get("generation").is_none(), "{hpa}");
    assert!(hpa["status"].get("observedGeneration").is_none(), "{hpa}");
    let patched = client
        .json("PATCH", HPA, MERGE, &json!({"spec": {"minReplicas": 5}}))
        .await;
    assert_eq!(patched.status, 200);
    let stored = patched.json();
    assert_eq!(stored["spec"]["minReplicas"], 5, "the spec is stored at once");
    assert!(stored["metadata"].get("generation").is_none(), "{stored}");
    // The controller runs a pass on every HPA event (every 50 ms at most); a second is many
    // passes, none of which may act on the change before the resync.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deployment = client.get(DEPLOY).await.json();
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "no reconcile before the resync"
    );
    assert_eq!(client.get(HPA).await.json()["status"]["desiredReplicas"], 3);
    // The resync comes: the change is acted on, still without an observedGeneration.
    sim.scenario().set_hpa_sync_period(Duration::from_millis(200));
    wait_until("the resync scales the target to the new minimum", || async {
        client.get(DEPLOY).await.json()["spec"]["replicas"] == 5
    })
    .await;
    let hpa = client.get(HPA).await.json();
    assert!(hpa["status"].get("observedGeneration").is_none(), "{hpa}");
}

/// 1.36 (kubernetes#138228, #138294): the HPA has a generation, the controller observes it, and
/// reconciles a spec change at once rather than at the next resync.
#[tokio::test]
async fn hpa_on_1_36_observes_its_generation_at_once() {
    let sim = sim_with(real(36, Flavor::Plain), Duration::from_secs(3600));
    let client = Client::new(&sim);
    let patched = client
        .json("PATCH", HPA, MERGE, &json!({"spec": {"minReplicas": 5}}))
        .await;
    assert_eq!(patched.json()["metadata"]["generation"], 2);
    wait_until("observedGeneration 2 and the target at 5", || async {
        let hpa = client.get(HPA).await.json();
        hpa["status"]["observedGeneration"] == 2 && client.get(DEPLOY).await.json()["spec"]["replicas"] == 5
    })
    .await;
}

/// A pure scale of a completed Deployment: upstream `syncDeployment` sees a scaling event and
/// runs `sync` -> `syncDeploymentStatus` (pkg/controller/deployment/sync.go), which keeps the
/// conditions, and on later passes `syncRolloutStatus` (progress.go) skips progress estimation
/// while `isCompleteDeployment` (replicas == updatedReplicas, reason NewReplicaSetAvailable);
/// `util.DeploymentTimedOut` (util/deployment_util.go) answers false for NewRSAvailableReason. So
/// a stuck scale-up never gets ProgressDeadlineExceeded. The idealised sim, run side by side,
/// reports it: that is the contrast and the event the faithful sim is checked at.
#[tokio::test]
async fn a_stuck_pure_scale_keeps_new_replica_set_available() {
    let faithful = sim_with(real(33, Flavor::Plain), Duration::from_secs(3600));
    let idealised = sim_with(Behaviour::default(), Duration::from_secs(3600));
    let (real_client, ideal_client) = (Client::new(&faithful), Client::new(&idealised));
    for (sim, client) in [(&faithful, &real_client), (&idealised, &ideal_client)] {
        wait_until("the seeded rollout complete", || async {
            progressing(&client.get(DEPLOY).await.json()).is_some_and(|(_, r)| r == "NewReplicaSetAvailable")
        })
        .await;
        let deadline = json!({"spec": {"progressDeadlineSeconds": 1}});
        assert_eq!(client.json("PATCH", DEPLOY, MERGE, &deadline).await.status, 200);
        // New pods never become ready: the scale-up is stuck.
        sim.scenario().set_pod_start_delay(Duration::from_secs(600));
        scale(client, 5).await;
    }
    wait_until("the idealised sim reports the deadline", || async {
        progressing(&ideal_client.get(DEPLOY).await.json())
            == Some(("False".into(), "ProgressDeadlineExceeded".into()))
    })
    .await;
    let deployment = real_client.get(DEPLOY).await.json();
    assert_eq!(
        progressing(&deployment),
        Some(("True".into(), "NewReplicaSetAvailable".into())),
        "{deployment}"
    );
    assert_eq!(deployment["status"]["replicas"], 5);
    assert_eq!(deployment["status"]["readyReplicas"], 3);
}

fn orchestrator_pods(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Graceful deletion: pkg/registry/core/pod/strategy.go `CheckGracefulDelete` takes the grace
/// period from the pod's `terminationGracePeriodSeconds` (default 30) for a scheduled pod, and
/// staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go `BeforeDelete` sets
/// deletionTimestamp (now + grace) and deletionGracePeriodSeconds and keeps the object; it still
/// matches label selectors. The ReplicaSet controller (pkg/controller/replicaset/replica_set.go
/// `syncReplicaSet`) counts only `controller.FilterActivePods` (no deletionTimestamp) as
/// replicas, so it creates a replacement at once; since 1.35 (DeploymentReplicaSetTerminating
/// Replicas, beta) `status.terminatingReplicas` counts the terminating ones.
#[tokio::test]
async fn deleted_pods_terminate_gracefully_and_are_not_replicas() {
    // Long enough for the test to see the pod terminating beside its replacement.
    let behaviour = Behaviour {
        grace_period_cap: Some(Duration::from_secs(3)),
        ..real(35, Flavor::Plain)
    };
    let sim = sim_with(behaviour, Duration::from_secs(3600));
    let client = Client::new(&sim);
    let selected = format!("/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dorchestrator");
    wait_until("3 running orchestrator pods", || async {
        let pods = orchestrator_pods(&client.get(&selected).await.json());
        pods.len() == 3 && pods.iter().all(|p| p["status"]["phase"] == "Running")
    })
    .await;
    let victim = orchestrator_pods(&client.get(&selected).await.json())[0]["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_owned();
    let path = format!("/api/v1/namespaces/{NS}/pods/{victim}");
    let deleted = client.send("DELETE", &path, None, b"", None).await;
    assert_eq!(deleted.status, 200);
    let deleted = deleted.json();
    assert!(deleted["metadata"]["deletionTimestamp"].is_string(), "{deleted}");
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(
        client.get(&path).await.status,
        200,
        "still there while terminating"
    );
    wait_until("a replacement beside the terminating pod", || async {
        let pods = orchestrator_pods(&client.get(&selected).await.json());
        let terminating = pods
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
            .count();
        pods.len() == 4 && terminating == 1
    })
    .await;
    let rs_list = client
        .get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets"))
        .await
        .json();
    let rs = &orchestrator_pods(&rs_list)[0];
    assert_eq!(
        rs["status"]["replicas"], 3,
        "terminating pods are not replicas: {rs}"
    );
    assert_eq!(rs["status"]["terminatingReplicas"], 1, "{rs}");
    wait_until("the pod gone after its (capped) grace period", || async {
        client.get(&path).await.status == 404
    })
    .await;
    wait_until("terminatingReplicas back to 0", || async {
        client.get(DEPLOY).await.json()["status"]["terminatingReplicas"] == 0
    })
    .await;
}

/// Cluster Autoscaler (cluster-autoscaler/processors/status/eventing_scale_up_processor.go,
/// `EventingScaleUpStatusProcessor.Process`): each pod that triggered a scale-up gets a Normal
/// `TriggeredScaleUp` event "pod triggered scale-up: [{<group> <from>-><to> (max: <max>)}]"
/// (`ScaleUpInfo.String()`); the node joins later and the scheduler places the pod.
#[tokio::test]
async fn unschedulable_pods_trigger_a_scale_up_and_get_a_node() {
    let mut behaviour = real(33, Flavor::EksLike);
    let autoscaler = behaviour
        .node_autoscaler
        .as_mut()
        .expect("eks-like has an autoscaler");
    autoscaler.provision_delay = Duration::from_millis(500);
    autoscaler.max_nodes = 6;
    let sim = sim_with(behaviour, Duration::from_secs(3600));
    let client = Client::new(&sim);
    // 3 nodes of 4 CPU hold 21 orchestrator pods (550m each) at most, postgres aside.
    scale(&client, 24).await;
    let events = format!("/api/v1/namespaces/{NS}/events");
    wait_until("a TriggeredScaleUp event from cluster-autoscaler", || async {
        let list = client.get(&events).await.json();
        list["items"].as_array().is_some_and(|items| {
            items.iter().any(|e| {
                e["reason"] == "TriggeredScaleUp"
                    && e["type"] == "Normal"
                    && e["source"]["component"] == "cluster-autoscaler"
                    && e["involvedObject"]["kind"] == "Pod"
                    && e["message"].as_str().is_some_and(|m| {
                        m.starts_with("pod triggered scale-up: [{eks-ng-general 3->")
                            && m.ends_with(" (max: 6)}]")
                    })
            })
        })
    })
    .await;
    let selected = format!("/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dorchestrator");
    wait_until("every pod scheduled on the grown cluster", || async {
        let pods = orchestrator_pods(&client.get(&selected).await.json());
        pods.len() == 24 && pods.iter().all(|p| p["spec"]["nodeName"].is_string())
    })
    .await;
    let nodes = client.get("/api/v1/nodes").await.json();
    let added: Vec<&str> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("eks-ng-general-"))
        .collect();
    assert!(!added.is_empty(), "{nodes}");
}

/// StatefulSet currentRevision (pkg/controller/statefulset/stateful_set_utils.go
/// `completeRollingUpdate`): promoted to updateRevision only when updateStrategy is
/// RollingUpdate and updated, ready and total replicas all equal spec.replicas; an OnDelete set
/// keeps its currentRevision before 1.36 even once every pod was recreated at the new revision.
#[tokio::test]
async fn on_delete_statefulset_keeps_its_current_revision_before_1_36() {
    let sim = sim_with(real(33, Flavor::Plain), Duration::from_secs(3600));
    let client = Client::new(&sim);
    wait_until("postgres rolled out", || async {
        let sts = client.get(STS).await.json();
        sts["status"]["readyReplicas"] == 1 && sts["status"]["currentRevision"].is_string()
    })
    .await;
    let before = client.get(STS).await.json()["status"]["currentRevision"].clone();
    let change = json!({"spec": {
        "updateStrategy": {"type": "OnDelete", "rollingUpdate": null},
        "template": {"metadata": {"annotations": {"orchscale.dev/restartedAt": "now"}}},
    }});
    assert_eq!(client.json("PATCH", STS, MERGE, &change).await.status, 200);
    let pod = format!("/api/v1/namespaces/{NS}/pods/postgres-0");
    assert_eq!(client.send("DELETE", &pod, None, b"", None).await.status, 200);
    wait_until(
        "postgres-0 recreated at the update revision and ready",
        || async {
            let sts = client.get(STS).await.json();
            sts["status"]["updatedReplicas"] == 1
                && sts["status"]["readyReplicas"] == 1
                && sts["status"]["updateRevision"] != before
        },
    )
    .await;
    let sts = client.get(STS).await.json();
    assert_eq!(
        sts["status"]["currentRevision"], before,
        "OnDelete: never promoted: {sts}"
    );
    assert_eq!(sts["status"]["currentReplicas"], 0, "{sts}");

    // The same set back on RollingUpdate: promoted once every pod is updated and Ready.
    let rolling =
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}});
    assert_eq!(client.json("PATCH", STS, MERGE, &rolling).await.status, 200);
    wait_until("RollingUpdate promotes currentRevision", || async {
        let sts = client.get(STS).await.json();
        sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    })
    .await;
}

/// metrics-server (sigs.k8s.io/metrics-server pkg/storage/pod.go `podStorage.GetMetrics`):
/// a pod has no PodMetrics until two scrapes of its cumulative CPU counter exist (one metric
/// resolution after it started), CPU usage is a rate in nanocores (`resource.NewScaledQuantity(
/// ..., -9)`), memory the working set in Ki, `window` the interval between the two scrapes.
#[tokio::test]
async fn metrics_come_in_nanocores_one_resolution_after_the_pod_runs() {
    let behaviour = Behaviour {
        metrics_resolution: Some(Duration::from_secs(5)),
        ..real(33, Flavor::Plain)
    };
    let sim = sim_with(behaviour, Duration::from_secs(3600));
    let client = Client::new(&sim);
    let selected = format!("/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dorchestrator");
    wait_until("3 ready orchestrator pods", || async {
        let pods = orchestrator_pods(&client.get(&selected).await.json());
        pods.len() == 3
            && pods.iter().all(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
    })
    .await;
    let metrics =
        format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods?labelSelector=app%3Dorchestrator");
    let early = client.get(&metrics).await.json();
    assert_eq!(
        early["items"].as_array().map(Vec::len),
        Some(0),
        "no sample yet for pods Ready for less than the resolution: {early}"
    );
    wait_until("samples for the 3 pods", || async {
        client.get(&metrics).await.json()["items"]
            .as_array()
            .map(Vec::len)
            == Some(3)
    })
    .await;
    let sample = &client.get(&metrics).await.json()["items"][0];
    assert_eq!(sample["window"], "5s");
    assert!(sample["timestamp"].is_string(), "{sample}");
    let usage = &sample["containers"][0]["usage"];
    let cpu = usage["cpu"].as_str().expect("cpu");
    assert!(
        cpu.ends_with('n') && cpu[..cpu.len() - 1].bytes().all(|b| b.is_ascii_digit()),
        "{usage}"
    );
    assert!(
        usage["memory"].as_str().is_some_and(|m| m.ends_with("Ki")),
        "{usage}"
    );
}

fn groups(list: &Value) -> Vec<String> {
    list["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str().map(str::to_owned))
        .collect()
}

/// Without metrics-server there is no APIService for metrics.k8s.io: the group is not in
/// discovery and its paths are 404.
#[tokio::test]
async fn without_metrics_server_the_group_does_not_exist() {
    let behaviour = Behaviour {
        metrics_api: MetricsApi::Absent,
        ..Behaviour::default()
    };
    let sim = sim_with(behaviour, Duration::from_secs(3600));
    let client = Client::new(&sim);
    let apis = client.get("/apis").await.json();
    assert!(!groups(&apis).contains(&"metrics.k8s.io".to_owned()), "{apis}");
    assert!(groups(&apis).contains(&"apps".to_owned()));
    for path in [
        "/apis/metrics.k8s.io",
        "/apis/metrics.k8s.io/v1beta1",
        "/apis/metrics.k8s.io/v1beta1/nodes",
        "/apis/metrics.k8s.io/v1beta1/namespaces/llm-orchestrator/pods",
    ] {
        assert_eq!(client.get(path).await.status, 404, "{path}");
    }
}

/// An unavailable APIService: kube-aggregator still lists the group (the APIService exists), and
/// its proxy handler (staging/src/k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go,
/// `proxyHandler.ServeHTTP`) answers `proxyError(w, req, "service unavailable", 503)`.
#[tokio::test]
async fn an_unavailable_metrics_apiservice_answers_503() {
    let behaviour = Behaviour {
        metrics_api: MetricsApi::Unavailable,
        ..Behaviour::default()
    };
    let sim = sim_with(behaviour, Duration::from_secs(3600));
    let client = Client::new(&sim);
    assert!(groups(&client.get("/apis").await.json()).contains(&"metrics.k8s.io".to_owned()));
    for path in [
        "/apis/metrics.k8s.io/v1beta1",
        "/apis/metrics.k8s.io/v1beta1/namespaces/llm-orchestrator/pods",
    ] {
        let response = client.get(path).await;
        assert_eq!(response.status, 503, "{path}");
        assert_eq!(String::from_utf8_lossy(&response.body), "service unavailable\n");
    }
}

fn sim_with_api(behaviour: Behaviour, api: ApiBehaviour) -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        hpa_sync_period: Duration::from_secs(3600),
        behaviour,
        api,
        ..SimOptions::default()
    })
    .expect("sim starts")
}

/// Discovery lists a group only while something of it is served: metrics.k8s.io only with a
/// metrics-server, events.k8s.io and rbac.authorization.k8s.io only with their switches on; the
/// two gates (controllers' `Behaviour`, API server's `ApiBehaviour`) apply together.
#[tokio::test]
async fn discovery_honours_the_metrics_gate_and_the_api_switches_together() {
    let without_metrics = Behaviour {
        metrics_api: MetricsApi::Absent,
        ..Behaviour::default()
    };
    let all_on = ApiBehaviour {
        events_v1: true,
        rbac: true,
        ..ApiBehaviour::default()
    };
    let sim = sim_with_api(without_metrics, all_on);
    let client = Client::new(&sim);
    let names = groups(&client.get("/apis").await.json());
    assert!(!names.contains(&"metrics.k8s.io".to_owned()), "{names:?}");
    assert!(names.contains(&"events.k8s.io".to_owned()), "{names:?}");
    assert!(
        names.contains(&"rbac.authorization.k8s.io".to_owned()),
        "{names:?}"
    );
    assert_eq!(client.get("/apis/metrics.k8s.io/v1beta1").await.status, 404);
    assert_eq!(client.get("/apis/events.k8s.io/v1").await.status, 200);
    drop(sim);

    let sim = sim_with_api(Behaviour::default(), ApiBehaviour::default());
    let client = Client::new(&sim);
    let names = groups(&client.get("/apis").await.json());
    assert!(names.contains(&"metrics.k8s.io".to_owned()), "{names:?}");
    assert!(!names.contains(&"events.k8s.io".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"rbac.authorization.k8s.io".to_owned()),
        "{names:?}"
    );
    assert_eq!(client.get("/apis/events.k8s.io/v1").await.status, 404);
}

/// kube-aggregator's proxy (the 503 of an unavailable APIService) sits behind the apiserver's
/// authorization filter (k8s.io/apiserver pkg/server/config.go `DefaultBuildHandlerChain`,
/// `WithAuthorization`): a request RBAC forbids gets its 403, an allowed one the 503.
#[tokio::test]
async fn rbac_answers_before_an_unavailable_metrics_apiservice() {
    let unavailable = Behaviour {
        metrics_api: MetricsApi::Unavailable,
        ..Behaviour::default()
    };
    let rbac = ApiBehaviour {
        rbac: true,
        ..ApiBehaviour::default()
    };
    let sim = sim_with_api(unavailable, rbac);
    let ns_admin = Client::new(&sim).as_user(&sim, "sim-ns-admin");
    // Bound in its namespace only: node metrics (cluster-scoped) are forbidden.
    assert_eq!(
        ns_admin.get("/apis/metrics.k8s.io/v1beta1/nodes").await.status,
        403
    );
    let pods = ns_admin
        .get(&format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods"))
        .await;
    assert_eq!(pods.status, 503);
    assert_eq!(String::from_utf8_lossy(&pods.body), "service unavailable\n");
}

/// A profile sets the API server's switches too: a gke-autopilot-like cluster serves
/// events.k8s.io/v1 and runs Autopilot's resource mutator (CPU requests up to 250m steps).
#[tokio::test]
async fn a_profile_starts_its_clusters_api_server() {
    let profile = profile::profile(version(33), Flavor::GkeAutopilotLike);
    let sim = sim_with_api(
        Behaviour {
            grace_period_cap: Some(Duration::from_millis(600)),
            ..profile.behaviour
        },
        profile.api,
    );
    let client = Client::new(&sim);
    assert!(groups(&client.get("/apis").await.json()).contains(&"events.k8s.io".to_owned()));
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "orchestrator", "resources": {"requests": {"cpu": "300m"}}}]}}}});
    let written = client
        .json("PATCH", DEPLOY, "application/strategic-merge-patch+json", &patch)
        .await;
    assert_eq!(written.status, 200);
    let containers = written.json()["spec"]["template"]["spec"]["containers"].clone();
    let orchestrator = containers
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "orchestrator"))
        .expect("container")
        .clone();
    assert_eq!(orchestrator["resources"]["requests"]["cpu"], "500m");
}
