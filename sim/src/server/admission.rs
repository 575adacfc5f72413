//! Admission as real clusters run it between defaulting and storage, each behind a switch of
//! [`ApiBehaviour`]: an Autopilot-like resource mutator (warnings in the response), LimitRanger
//! defaulting of Pods, and the immutable-ConfigMap rule of ValidateConfigMapUpdate. Dry runs go
//! through it too, as admission runs on dry run.

use serde_json::{Map, Value, json};

use crate::api_behaviour::{ApiBehaviour, ResourceMutator};
use crate::controllers::quantity::{format_cpu, milli_of};
use crate::store::{ObjectKey, Store};

use super::registry::ResourceInfo;
use super::status::{ApiError, Cause};

/// The annotation LimitRanger writes on the Pods it changed (plugin/pkg/admission/limitranger).
pub const LIMIT_RANGER_ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Runs admission on an object about to be created (`old` is `None`) or updated: mutates it
/// and returns the `Warning` texts for the response, or the refusal.
///
/// # Errors
/// 422 Invalid when an immutable ConfigMap would change.
pub fn admit(
    behaviour: &ApiBehaviour,
    store: &Store,
    info: &ResourceInfo,
    old: Option<&Value>,
    object: &mut Value,
) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    if info.kind == "ConfigMap"
        && behaviour.immutable_configmaps
        && let Some(old) = old
    {
        check_immutable_configmap(old, object)?;
    }
    let is_pod_create = info.kind == "Pod" && old.is_none();
    if let Some(mutator) = &behaviour.resource_mutator
        && (matches!(info.kind, "Deployment" | "StatefulSet") || is_pod_create)
        && let Some(warning) = mutate_resources(mutator, info.kind, object)
    {
        warnings.push(warning);
    }
    if is_pod_create && behaviour.limit_ranger {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
        limit_ranger(store, &namespace, object);
    }
    Ok(warnings)
}

/// Admission of a Pod created by the controllers (straight into the store, as the ReplicaSet
/// and StatefulSet controllers' creates pass the apiserver's admission on a real cluster).
/// Idempotent, so a Pod created over HTTP, admitted already, passes unchanged.
pub fn admit_created_pod(behaviour: &ApiBehaviour, store: &Store, key: &ObjectKey, pod: &mut Value) {
    if key.resource != "pods" {
        return;
    }
    if let Some(mutator) = &behaviour.resource_mutator {
        mutate_resources(mutator, "Pod", pod);
    }
    if behaviour.limit_ranger {
        limit_ranger(store, &key.namespace, pod);
    }
}

/// The pod spec of a Pod, or the pod template's of a workload.
fn pod_spec<'a>(kind: &str, object: &'a mut Value) -> Option<&'a mut Map<String, Value>> {
    let spec = if kind == "Pod" {
        object.get_mut("spec")
    } else {
        object
            .get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("spec"))
    };
    spec.and_then(Value::as_object_mut)
}

fn containers(spec: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    spec.iter_mut()
        .filter(|(k, _)| *k == "containers" || *k == "initContainers")
        .filter_map(|(_, v)| v.as_array_mut())
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// The object `value` holds, after replacing anything else with an empty object.
fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("replaced by an object above"),
    }
}

/// The `requests` or `limits` map of a container, created when absent.
fn resource_map<'a>(container: &'a mut Map<String, Value>, which: &str) -> &'a mut Map<String, Value> {
    let resources = as_object(container.entry("resources").or_insert_with(|| json!({})));
    as_object(resources.entry(which).or_insert_with(|| json!({})))
}

/// Drops `resources.requests`/`limits` maps left empty by [`resource_map`].
fn drop_empty(container: &mut Map<String, Value>) {
    if let Some(resources) = container.get_mut("resources").and_then(Value::as_object_mut) {
        resources.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
        if resources.is_empty() {
            container.remove("resources");
        }
    }
}

/// GKE Autopilot's `autopilot-default-resources-mutator`: CPU requests rounded up to a multiple
/// of the step, limits set equal to requests for cpu and memory. Returns the warning when
/// something changed.
fn mutate_resources(mutator: &ResourceMutator, kind: &str, object: &mut Value) -> Option<String> {
    let step = i128::from(mutator.cpu_step_millis.max(1));
    let mut changed = Vec::new();
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
    for container in containers(pod_spec(kind, object)?) {
        let before = container.get("resources").cloned();
        let requests = resource_map(container, "requests");
        if let Some(millis) = requests.get("cpu").and_then(milli_of) {
            let rounded = (millis + step - 1).div_euclid(step) * step;
            if rounded != millis {
                let rounded = i64::try_from(rounded).unwrap_or(i64::MAX);
                requests.insert("cpu".into(), json!(format_cpu(rounded)));
            }
        }
        if mutator.limits_equal_requests {
            let requests = requests.clone();
            let limits = resource_map(container, "limits");
            for resource in ["cpu", "memory"] {
                if let Some(request) = requests.get(resource)
                    && limits.get(resource).and_then(milli_of) != milli_of(request)
                {
                    limits.insert(resource.into(), request.clone());
                }
            }
        }
        drop_empty(container);
        if container.get("resources").cloned() != before {
            changed.push(container["name"].as_str().unwrap_or("").to_owned());
        }
    }
    if changed.is_empty() {
        return None;
    }
    Some(format!(
        "autopilot-default-resources-mutator:Autopilot updated {kind} {namespace}/{name}: adjusted \
         resources to meet requirements for containers [{}] (see http://g.co/gke/autopilot-resources)",
        changed.join(" ")
    ))
}

/// plugin/pkg/admission/limitranger `mergePodResourceRequirements` with the defaults of each
/// LimitRange in the namespace (`defaultContainerResourceRequirements`: `defaultRequest` →
/// requests, `default` → limits of `Container` items): a container gets only the resources it
/// does not set, and the Pod is annotated with what was set.
fn limit_ranger(store: &Store, namespace: &str, pod: &mut Value) {
    let (ranges, _) = store.list("limitranges", Some(namespace));
    for range in ranges {
        let mut requests = Map::new();
        let mut limits = Map::new();
        for item in range["spec"]["limits"].as_array().into_iter().flatten() {
            if item["type"] != "Container" {
                continue;
            }
            requests.extend(item["defaultRequest"].as_object().cloned().unwrap_or_default());
            limits.extend(item["default"].as_object().cloned().unwrap_or_default());
        }
        if requests.is_empty() && limits.is_empty() {
            continue;
        }
        let mut notes = Vec::new();
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        for (list, prefix) in [("containers", "container"), ("initContainers", "init container")] {
            let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for container in items.iter_mut().filter_map(Value::as_object_mut) {
                let name = container["name"].as_str().unwrap_or("").to_owned();
                let set_limits = fill_missing(resource_map(container, "limits"), &limits);
                let set_requests = fill_missing(resource_map(container, "requests"), &requests);
                drop_empty(container);
                if !set_requests.is_empty() {
                    notes.push(format!("{} request for {prefix} {name}", set_requests.join(", ")));
                }
                if !set_limits.is_empty() {
                    notes.push(format!("{} limit for {prefix} {name}", set_limits.join(", ")));
                }
            }
        }
        if !notes.is_empty() {
            let meta = crate::store::metadata_mut(pod);
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            if annotations.is_object() {
                annotations[LIMIT_RANGER_ANNOTATION] =
                    json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
            }
        }
    }
}

/// Sets each default the map lacks; returns the names set, sorted (as upstream sorts them).
fn fill_missing(values: &mut Map<String, Value>, defaults: &Map<String, Value>) -> Vec<String> {
    let mut set: Vec<String> = Vec::new();
    for (resource, value) in defaults {
        if !values.contains_key(resource) {
            values.insert(resource.clone(), value.clone());
            set.push(resource.clone());
        }
    }
    set.sort();
    set
}

/// pkg/apis/core/validation `ValidateConfigMapUpdate`: once `immutable` is set, `immutable`
/// cannot be unset and `data`/`binaryData` cannot change; metadata stays writable.
fn check_immutable_configmap(old: &Value, new: &Value) -> Result<(), ApiError> {
    if old["immutable"] != true {
        return Ok(());
    }
    const DETAIL: &str = "field is immutable when `immutable` is set";
    let map = |value: &Value| value.as_object().cloned().unwrap_or_default();
    let mut causes = Vec::new();
    if new["immutable"] != true {
        causes.push(Cause::forbidden("immutable", DETAIL));
    }
    for field in ["data", "binaryData"] {
        if map(&new[field]) != map(&old[field]) {
            causes.push(Cause::forbidden(field, DETAIL));
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = old["metadata"]["name"].as_str().unwrap_or("");
    Err(ApiError::invalid("ConfigMap", "", name, causes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(resources: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"template": {"spec": {
            "containers": [{"name": "app", "resources": resources}, {"name": "side"}]}}}})
    }

    #[test]
    fn the_mutator_rounds_cpu_up_and_sets_limits_to_requests() {
        let mutator = ResourceMutator::default();
        let mut object = deployment(json!({"requests": {"cpu": "300m", "memory": "1Gi"}}));
        let warning = mutate_resources(&mutator, "Deployment", &mut object).expect("changed");
        let resources = &object["spec"]["template"]["spec"]["containers"][0]["resources"];
        assert_eq!(resources["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(resources["limits"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(
            warning,
            "autopilot-default-resources-mutator:Autopilot updated Deployment shop/web: adjusted \
             resources to meet requirements for containers [app] (see http://g.co/gke/autopilot-resources)"
        );
        assert!(
            object["spec"]["template"]["spec"]["containers"][1]
                .get("resources")
                .is_none(),
            "a container without resources stays without"
        );
        assert_eq!(
            mutate_resources(&mutator, "Deployment", &mut object),
            None,
            "idempotent"
        );
    }

    #[test]
    fn whole_cores_are_kept_and_limits_can_stay_apart() {
        let mutator = ResourceMutator {
            cpu_step_millis: 250,
            limits_equal_requests: false,
        };
        let mut object = deployment(json!({"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}));
        assert_eq!(mutate_resources(&mutator, "Deployment", &mut object), None);
        let mut object = deployment(json!({"requests": {"cpu": "1001m"}}));
        mutate_resources(&mutator, "Deployment", &mut object).expect("rounded");
        let resources = &object["spec"]["template"]["spec"]["containers"][0]["resources"];
        assert_eq!(resources, &json!({"requests": {"cpu": "1250m"}}));
    }

    // ValidateConfigMapUpdate: every change of data, binaryData or immutable is one
    // FieldValueForbidden cause; metadata changes pass.
    #[test]
    fn immutable_configmaps_refuse_data_changes_with_upstream_causes() {
        let old = json!({"metadata": {"name": "cfg"}, "immutable": true, "data": {"a": "1"}});
        let relabelled = json!({"metadata": {"name": "cfg", "labels": {"x": "y"}}, "immutable": true,
                                "data": {"a": "1"}});
        assert!(check_immutable_configmap(&old, &relabelled).is_ok());
        let changed = json!({"metadata": {"name": "cfg"}, "data": {"a": "2"}});
        let error = check_immutable_configmap(&old, &changed).expect_err("refused");
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "ConfigMap \"cfg\" is invalid: [immutable: Forbidden: field is immutable when `immutable` is set, \
             data: Forbidden: field is immutable when `immutable` is set]"
        );
    }
}
