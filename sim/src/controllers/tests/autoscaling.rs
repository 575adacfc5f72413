//! Metrics and the HorizontalPodAutoscaler, end to end.

use serde_json::json;

use super::*;

fn hpa(name: &str, target: &str, metrics: Value) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 3, "maxReplicas": 10,
            "metrics": metrics,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    })
}

fn utilization(resource: &str, percent: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}}})
}

fn condition(object: &Value, type_: &str) -> Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or(Value::Null)
}

fn orchestrator() -> Value {
    deployment(
        "orchestrator",
        3,
        vec![
            container("orchestrator", "500m", "1Gi"),
            container("log-shipper", "50m", "64Mi"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_load_model() {
    let w = world(3);
    create(&w.store, "deployments", orchestrator());
    wait_for("rollout", || rollout_complete(&w.store, "orchestrator")).await;
    wait_for("podmetrics for 3 pods", || {
        w.store.scan("podmetrics", Some(NS), |m| Some(m.clone())).len() == 3
    })
    .await;
    let metrics = w.store.scan("podmetrics", Some(NS), |m| Some(m.clone()));
    let m = &metrics[0];
    assert_eq!(m["kind"], "PodMetrics");
    assert_eq!(m["apiVersion"], "metrics.k8s.io/v1beta1");
    assert_eq!(m["window"], "30s");
    assert_eq!(m["metadata"]["labels"]["app"], "orchestrator");
    // 900m over 3 pods; the sidecar takes 5m.
    assert_eq!(m["containers"][0]["usage"]["cpu"], "295m");
    assert_eq!(m["containers"][1]["usage"]["cpu"], "5m");
    assert_eq!(
        m["containers"][0]["usage"]["memory"],
        format!("{}Ki", (700 - 24) * 1024)
    );
    wait_for("nodemetrics", || {
        w.store.scan("nodemetrics", None, |m| Some(m.clone())).len() == 3
    })
    .await;
    edit(&w.store, "deployments", "orchestrator", |d| {
        d["spec"]["replicas"] = json!(1)
    });
    wait_for("podmetrics of deleted pods removed", || {
        w.store.scan("podmetrics", Some(NS), |m| Some(m.clone())).len() == 1
    })
    .await;
    wait_for("the load re-split", || {
        w.store.scan("podmetrics", Some(NS), |m| {
            Some(m["containers"][0]["usage"]["cpu"].clone())
        })[0]
            == "895m"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_rests_at_min_then_scales_up_with_load() {
    let w = world(3);
    create(&w.store, "deployments", orchestrator());
    create(
        &w.store,
        "horizontalpodautoscalers",
        hpa(
            "orchestrator",
            "orchestrator",
            json!([utilization("cpu", 70), utilization("memory", 80)]),
        ),
    );
    wait_for("a valid metric", || {
        condition(
            &get(&w.store, "horizontalpodautoscalers", "orchestrator"),
            "ScalingActive",
        )["reason"]
            == "ValidMetricFound"
    })
    .await;
    let h = get(&w.store, "horizontalpodautoscalers", "orchestrator");
    assert_eq!(h["status"]["desiredReplicas"], 3);
    assert_eq!(condition(&h, "AbleToScale")["reason"], "ReadyForNewScale");
    assert_eq!(condition(&h, "ScalingActive")["status"], "True");
    // 300m of 550m requested.
    assert_eq!(h["status"]["currentMetrics"][0]["resource"]["name"], "cpu");
    assert_eq!(
        h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        54
    );
    assert_eq!(
        h["status"]["currentMetrics"][0]["resource"]["current"]["averageValue"],
        "300m"
    );
    assert_eq!(h["status"]["currentMetrics"][1]["resource"]["name"], "memory");
    // Below target, 3 pods would go to 3 * 54/70 -> 3; the min holds anyway.
    assert_eq!(
        get(&w.store, "deployments", "orchestrator")["spec"]["replicas"],
        3
    );

    w.scenario.set_load("orchestrator", 3000, 700 << 20);
    wait_for("scale up", || {
        get(&w.store, "deployments", "orchestrator")["spec"]["replicas"]
            .as_i64()
            .unwrap()
            > 3
            && !events(&w.store, "SuccessfulRescale").is_empty()
    })
    .await;
    let rescale = events(&w.store, "SuccessfulRescale");
    let message = rescale[0]["message"].as_str().unwrap();
    assert!(message.starts_with("New size: "), "{message}");
    assert!(
        message.ends_with("; reason: cpu resource utilization (percentage of request) above target"),
        "{message}"
    );
    wait_for("status after the rescale", || {
        let h = get(&w.store, "horizontalpodautoscalers", "orchestrator");
        condition(&h, "AbleToScale")["reason"] == "SucceededRescale"
            && !h["status"]["lastScaleTime"].is_null()
    })
    .await;
    assert_eq!(
        condition(
            &get(&w.store, "horizontalpodautoscalers", "orchestrator"),
            "ScalingLimited"
        )["reason"],
        "DesiredWithinRange"
    );
    wait_for("the scaled deployment completes", || {
        rollout_complete(&w.store, "orchestrator")
            && get(&w.store, "deployments", "orchestrator")["status"]["readyReplicas"].as_i64() > Some(3)
    })
    .await;
    // Much more load than 10 pods can take: limited at max.
    w.scenario.set_load("orchestrator", 40_000, 700 << 20);
    wait_for("TooManyReplicas at max", || {
        let h = get(&w.store, "horizontalpodautoscalers", "orchestrator");
        condition(&h, "ScalingLimited")["reason"] == "TooManyReplicas"
            && get(&w.store, "deployments", "orchestrator")["spec"]["replicas"] == 10
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_reports_missing_target_and_missing_requests() {
    let w = world(1);
    create(
        &w.store,
        "horizontalpodautoscalers",
        hpa("ghost", "ghost", json!([utilization("cpu", 70)])),
    );
    let mut no_requests = deployment(
        "plain",
        3,
        vec![json!({"name": "plain", "image": "example/plain:1"})],
    );
    no_requests["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
    create(&w.store, "deployments", no_requests);
    create(
        &w.store,
        "horizontalpodautoscalers",
        hpa("plain", "plain", json!([utilization("cpu", 70)])),
    );
    wait_for("FailedGetScale", || {
        condition(
            &get(&w.store, "horizontalpodautoscalers", "ghost"),
            "ScalingActive",
        )["reason"]
            == "FailedGetScale"
    })
    .await;
    assert_eq!(
        condition(
            &get(&w.store, "horizontalpodautoscalers", "ghost"),
            "ScalingActive"
        )["status"],
        "False"
    );
    wait_for("FailedGetResourceMetric", || {
        let c = condition(
            &get(&w.store, "horizontalpodautoscalers", "plain"),
            "ScalingActive",
        );
        c["reason"] == "FailedGetResourceMetric"
            && c["message"]
                .as_str()
                .unwrap_or("")
                .contains("missing request for cpu")
    })
    .await;
    assert_eq!(get(&w.store, "deployments", "plain")["spec"]["replicas"], 3);
}

/// A Pods metric the sim cannot serve is an invalid metric, as upstream counts it
/// (pkg/controller/podautoscaler/horizontal.go computeReplicasForMetrics: "If all metrics are
/// invalid or some are invalid and we would scale down, return an error"): CPU alone would
/// scale down, and the count stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_metric_blocks_a_scale_down() {
    let w = world(1);
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": NS},
        "spec": {
            "replicas": 2, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container("db", "100m", "64Mi")]}},
        },
    });
    create(&w.store, "statefulsets", sts);
    w.scenario.set_load("db", 20, 32 << 20);
    let queue = json!({"type": "Pods", "pods": {"metric": {"name": "queue_depth"},
                       "target": {"type": "AverageValue", "averageValue": "30"}}});
    let mut h = hpa("db", "db", json!([utilization("cpu", 50), queue]));
    h["spec"]["scaleTargetRef"] = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"});
    h["spec"]["minReplicas"] = json!(1);
    h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = json!(0);
    create(&w.store, "horizontalpodautoscalers", h);
    wait_for("FailedGetPodsMetric with cpu measured", || {
        let h = get(&w.store, "horizontalpodautoscalers", "db");
        condition(&h, "ScalingActive")["reason"] == "FailedGetPodsMetric"
            && h["status"]["currentMetrics"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
    })
    .await;
    // The sync that measured CPU (alone it proposes 1, as in the test below) answered 2.
    let h = get(&w.store, "horizontalpodautoscalers", "db");
    assert_eq!(h["status"]["desiredReplicas"], 2, "{h:#}");
    assert_eq!(get(&w.store, "statefulsets", "db")["spec"]["replicas"], 2);
    assert!(events(&w.store, "SuccessfulRescale").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_scales_a_statefulset_down_without_a_window() {
    let w = world(1);
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": NS},
        "spec": {
            "replicas": 2, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container("db", "100m", "64Mi")]}},
        },
    });
    create(&w.store, "statefulsets", sts);
    w.scenario.set_load("db", 20, 32 << 20);
    let mut h = hpa("db", "db", json!([utilization("cpu", 50)]));
    h["spec"]["scaleTargetRef"] = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"});
    h["spec"]["minReplicas"] = json!(1);
    h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = json!(0);
    create(&w.store, "horizontalpodautoscalers", h);
    wait_for("scale down to 1", || {
        get(&w.store, "statefulsets", "db")["spec"]["replicas"] == 1
            && !events(&w.store, "SuccessfulRescale").is_empty()
    })
    .await;
    let rescale = events(&w.store, "SuccessfulRescale");
    assert_eq!(
        rescale[0]["message"],
        "New size: 1; reason: All metrics below target"
    );
    wait_for("db-1 removed", || pods_of(&w.store, "db").len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_min_scales_up_at_once_and_average_value_targets_work() {
    let w = world(3);
    create(&w.store, "deployments", orchestrator());
    let memory_value = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}});
    create(
        &w.store,
        "horizontalpodautoscalers",
        hpa("orchestrator", "orchestrator", json!([memory_value])),
    );
    wait_for("a valid metric", || {
        condition(
            &get(&w.store, "horizontalpodautoscalers", "orchestrator"),
            "ScalingActive",
        )["reason"]
            == "ValidMetricFound"
    })
    .await;
    let h = get(&w.store, "horizontalpodautoscalers", "orchestrator");
    assert_eq!(
        h["status"]["currentMetrics"][0]["resource"]["current"]["averageValue"],
        "700Mi"
    );
    assert!(
        h["status"]["currentMetrics"][0]["resource"]["current"]
            .get("averageUtilization")
            .is_none()
    );
    edit(&w.store, "horizontalpodautoscalers", "orchestrator", |h| {
        h["spec"]["minReplicas"] = json!(5)
    });
    wait_for("scale to the new min", || {
        get(&w.store, "deployments", "orchestrator")["spec"]["replicas"] == 5
            && !events(&w.store, "SuccessfulRescale").is_empty()
    })
    .await;
    assert_eq!(
        events(&w.store, "SuccessfulRescale")[0]["message"],
        "New size: 5; reason: Current number of replicas below Spec.MinReplicas"
    );
    // 1.5Gi per pod against 1Gi: more pods (memory per pod stays the same in the load model).
    w.scenario.set_load("orchestrator", 900, 3 << 29);
    wait_for("memory-driven scale up", || {
        get(&w.store, "deployments", "orchestrator")["spec"]["replicas"].as_i64() > Some(5)
            && events(&w.store, "SuccessfulRescale").iter().any(|e| {
                e["message"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("reason: memory resource above target")
            })
    })
    .await;
}
