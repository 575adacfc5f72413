//! Pods that cannot progress: crash loops, image pulls, OOM kills, and the progress deadline.

use serde_json::json;

use super::*;
use crate::scenario::PodFailure;

fn waiting_reason(pod: &Value) -> Option<String> {
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_template_exceeds_the_progress_deadline() {
    let w = world(3);
    let mut d = deployment("web", 3, vec![container("web", "100m", "64Mi")]);
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    create(&w.store, "deployments", d);
    wait_for("first rollout", || rollout_complete(&w.store, "web")).await;
    w.scenario.fail_new_pods("web", PodFailure::CrashLoop);
    edit(&w.store, "deployments", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example/web:bad")
    });
    wait_for("ProgressDeadlineExceeded", || {
        get(&w.store, "deployments", "web")["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "Progressing"
                        && c["reason"] == "ProgressDeadlineExceeded"
                        && c["status"] == "False"
                })
            })
    })
    .await;
    assert!(!rollout_complete(&w.store, "web"));
    let pods = pods_of(&w.store, "web");
    let crashing: Vec<&Value> = pods
        .iter()
        .filter(|p| waiting_reason(p).as_deref() == Some("CrashLoopBackOff"))
        .collect();
    assert_eq!(crashing.len(), 1, "maxSurge 1: one new pod, crash looping");
    let status = &crashing[0]["status"]["containerStatuses"][0];
    assert!(status["restartCount"].as_i64().unwrap() >= 1);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(status["ready"], false);
    assert_eq!(
        pods.iter()
            .filter(|p| crate::controllers::common::pod_ready(p))
            .count(),
        3,
        "old pods stay"
    );
    let backoff = events(&w.store, "BackOff");
    assert!(
        backoff[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Back-off restarting failed container web in pod web-")
    );
    // A rollback to the old template recovers: the failure belongs to the bad template.
    edit(&w.store, "deployments", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example/web:1")
    });
    wait_for("rollback completes", || rollout_complete(&w.store, "web")).await;
    assert_eq!(
        get(&w.store, "deployments", "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
}

/// The kubelet's image manager (pkg/kubelet/images/image_manager.go `EnsureImageExists`)
/// answers ImagePullBackOff during the back-off and pulls again after it, failing with
/// ErrImagePull: `kubectl get pods` shows the two in turn, not ImagePullBackOff for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_alternates_between_err_image_pull_and_back_off() {
    let w = world(1);
    w.scenario.fail_new_pods("web", PodFailure::ImagePull);
    create(
        &w.store,
        "deployments",
        deployment("web", 1, vec![container("web", "100m", "64Mi")]),
    );
    let reason = || {
        pods_of(&w.store, "web")
            .first()
            .and_then(waiting_reason)
            .unwrap_or_default()
    };
    wait_for("ImagePullBackOff", || reason() == "ImagePullBackOff").await;
    wait_for("ErrImagePull again after the back-off", || {
        reason() == "ErrImagePull"
    })
    .await;
    wait_for("ImagePullBackOff again", || reason() == "ImagePullBackOff").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_failure_backs_off() {
    let w = world(1);
    w.scenario.fail_new_pods("web", PodFailure::ImagePull);
    create(
        &w.store,
        "deployments",
        deployment("web", 1, vec![container("web", "100m", "64Mi")]),
    );
    wait_for("ImagePullBackOff", || {
        pods_of(&w.store, "web")
            .iter()
            .any(|p| waiting_reason(p).as_deref() == Some("ImagePullBackOff"))
            && !events(&w.store, "BackOff").is_empty()
    })
    .await;
    let pod = pods_of(&w.store, "web").remove(0);
    assert_eq!(pod["status"]["phase"], "Pending");
    let failed = events(&w.store, "Failed");
    assert!(failed.iter().any(|e| {
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to pull image \"example/web:1\": ")
    }));
    assert!(failed.iter().any(|e| e["message"] == "Error: ErrImagePull"));
    assert!(
        events(&w.store, "BackOff")[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Back-off pulling image")
    );
    assert!(!rollout_complete(&w.store, "web"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_load_above_the_limit_oom_kills_until_it_drops() {
    let w = world(1);
    create(
        &w.store,
        "deployments",
        deployment("web", 2, vec![container("web", "100m", "64Mi")]),
    );
    wait_for("first rollout", || rollout_complete(&w.store, "web")).await;
    // The containers' limit is 2Gi.
    w.scenario.set_load("web", 200, 3 << 30);
    wait_for("OOMKilled pods", || {
        pods_of(&w.store, "web").iter().all(|p| {
            let s = &p["status"]["containerStatuses"][0];
            s["lastState"]["terminated"]["reason"] == "OOMKilled"
                && s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
    })
    .await;
    let pod = pods_of(&w.store, "web").remove(0);
    assert_eq!(
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        137
    );
    assert!(!crate::controllers::common::pod_ready(&pod));
    w.scenario.set_load("web", 200, 1 << 30);
    wait_for("recovery once the load drops", || {
        get(&w.store, "deployments", "web")["status"]["readyReplicas"] == 2
    })
    .await;
}
