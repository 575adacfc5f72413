//! Defaulting as kube-apiserver applies it to every written object (k8s.io/kubernetes
//! pkg/apis/*/v1/defaults.go), for the kinds and fields clients and controllers read back:
//! replica counts, rollout strategies, deadlines, HPA metrics, service ports, pod templates.

use serde_json::{Value, json};

/// Sets `object[key]` to `value` when it is missing or null.
fn default(object: &mut Value, key: &str, value: Value) {
    if object.get(key).is_none_or(Value::is_null) && object.is_object() {
        object[key] = value;
    }
}

/// The object under `key`, when it is one. Reads with `get_mut` only: indexing with `[]` would
/// insert `null` for every absent key and store fields the client never sent.
fn child<'a>(object: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    object.get_mut(key).filter(|v| v.is_object())
}

/// The elements of the array under `key` (none when absent or not an array).
fn items<'a>(object: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    object
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// Removes every object key whose value is `null`, at any depth. The apiserver decodes bodies
/// into Go types, where `null` is the zero value of an optional field and is not stored; kubectl
/// sends such nulls (`creationTimestamp: null` in the pod template of `rollout undo` and of
/// manifests saved with `get -o yaml`), and kept as JSON they would count as a spec change: a
/// new generation, a new pod-template-hash, a rollout that a real cluster does not start.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Fills in the defaulted fields of an object of `kind`.
pub fn apply(kind: &str, object: &mut Value) {
    let Some(spec) = child(object, "spec") else {
        return;
    };
    match kind {
        "Deployment" => {
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(spec, "strategy", json!({"type": "RollingUpdate"}));
            if let Some(strategy) = child(spec, "strategy")
                && strategy["type"] == "RollingUpdate"
            {
                default(strategy, "rollingUpdate", json!({}));
                if let Some(rolling) = child(strategy, "rollingUpdate") {
                    default(rolling, "maxSurge", json!("25%"));
                    default(rolling, "maxUnavailable", json!("25%"));
                }
            }
            template_spec(spec);
        }
        "ReplicaSet" => {
            default(spec, "replicas", json!(1));
            template_spec(spec);
        }
        "StatefulSet" => {
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if let Some(strategy) = child(spec, "updateStrategy")
                && strategy["type"] == "RollingUpdate"
            {
                default(strategy, "rollingUpdate", json!({}));
                if let Some(rolling) = child(strategy, "rollingUpdate") {
                    default(rolling, "partition", json!(0));
                }
            }
            template_spec(spec);
        }
        "Pod" => pod_template(spec),
        "HorizontalPodAutoscaler" => {
            default(spec, "minReplicas", json!(1));
            if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
                spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]);
            }
        }
        "Service" => {
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            for port in items(spec, "ports") {
                default(port, "protocol", json!("TCP"));
                let number = port["port"].clone();
                default(port, "targetPort", number);
            }
        }
        "LimitRange" => {
            for item in items(spec, "limits") {
                limit_range_item(item);
            }
        }
        _ => {}
    }
}

/// pkg/apis/core/v1/defaults.go `SetDefaults_LimitRangeItem`: for a Container item, a missing
/// `default` (limit) takes `max`, a missing `defaultRequest` takes `default`, then `min`.
fn limit_range_item(item: &mut Value) {
    if item["type"] != "Container" {
        return;
    }
    let fill = |item: &mut Value, target: &str, source: &str| {
        let source = item[source].as_object().cloned().unwrap_or_default();
        let mut values = item[target].as_object().cloned().unwrap_or_default();
        for (key, value) in source {
            values.entry(key).or_insert(value);
        }
        if !values.is_empty() {
            item[target] = Value::Object(values);
        }
    };
    fill(item, "default", "max");
    fill(item, "defaultRequest", "default");
    fill(item, "defaultRequest", "min");
}

/// Defaults `spec.template.spec` of a workload.
fn template_spec(spec: &mut Value) {
    if let Some(pod_spec) = child(spec, "template").and_then(|t| child(t, "spec")) {
        pod_template(pod_spec);
    }
}

fn pod_template(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    for list in ["initContainers", "containers"] {
        for container in items(spec, list) {
            let latest = container["image"]
                .as_str()
                .is_some_and(|i| !i.rsplit('/').next().unwrap_or(i).contains(':') || i.ends_with(":latest"));
            default(
                container,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            default(container, "terminationMessagePath", json!("/dev/termination-log"));
            default(container, "terminationMessagePolicy", json!("File"));
            for port in items(container, "ports") {
                default(port, "protocol", json!("TCP"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_get_strategy_deadline_and_container_defaults() {
        let mut deploy =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        apply("Deployment", &mut deploy);
        assert_eq!(deploy["spec"]["replicas"], 1);
        assert_eq!(deploy["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn limit_range_defaults_fall_back_to_max_then_default_then_min() {
        let mut range = json!({"spec": {"limits": [{"type": "Container",
            "max": {"cpu": "2", "memory": "1Gi"}, "min": {"ephemeral-storage": "1Gi"},
            "default": {"cpu": "500m"}}]}});
        apply("LimitRange", &mut range);
        let item = &range["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"})
        );
    }

    #[test]
    fn set_values_are_kept() {
        let mut deploy = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
        apply("Deployment", &mut deploy);
        assert_eq!(deploy["spec"]["replicas"], 0);
        assert!(deploy["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn nulls_are_dropped_at_every_depth() {
        let mut object = json!({"a": null, "b": {"c": null, "d": [{"e": null, "f": 1}]}});
        drop_nulls(&mut object);
        assert_eq!(object, json!({"b": {"d": [{"f": 1}]}}));
    }

    #[test]
    fn absent_fields_stay_absent() {
        let mut deploy =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        apply("Deployment", &mut deploy);
        let pod_spec = &deploy["spec"]["template"]["spec"];
        assert!(pod_spec.get("initContainers").is_none(), "{pod_spec}");
        assert!(pod_spec["containers"][0].get("ports").is_none());
        let mut bare = json!({"metadata": {"name": "d"}});
        apply("Deployment", &mut bare);
        assert_eq!(bare, json!({"metadata": {"name": "d"}}));
    }

    #[test]
    fn hpas_without_metrics_target_80_percent_cpu() {
        let mut hpa = json!({"spec": {"maxReplicas": 5}});
        apply("HorizontalPodAutoscaler", &mut hpa);
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
    }

    #[test]
    fn service_ports_default_protocol_and_target() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply("Service", &mut svc);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["type"], "ClusterIP");
    }
}
