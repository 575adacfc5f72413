//! The patch types the apiserver accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch, which merges the lists of the built-in kinds by their merge keys
//! (containers by name, ports by containerPort, …) instead of replacing them.
//!
//! Server-side apply (`application/apply-patch+yaml`) is approximated: a JSON body is merged as
//! a strategic merge patch (and creates a missing object). Field ownership is not tracked, so
//! there are no apply conflicts and fields dropped from an applied config are not removed.

use serde_json::{Map, Value};

use super::status::ApiError;

/// The patch type a request's Content-Type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    /// Server-side apply, approximated (see the module docs).
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header (parameters ignored).
    ///
    /// # Errors
    /// 415 for anything else.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// Applies `patch` (the raw body) to `current`.
///
/// # Errors
/// 400 when the body is not valid JSON of the right shape; 422 when a JSON patch cannot be
/// applied (including a failing `test` operation), as the apiserver answers.
pub fn apply(patch_type: PatchType, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut result = current.clone();
    if patch_type == PatchType::Apply {
        strategic_merge(&mut result, &apply_body(body)?);
        return Ok(result);
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match patch_type {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            json_patch::merge(&mut result, &patch);
        }
        PatchType::Json => {
            let operations: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            json_patch::patch(&mut result, &operations).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchType::StrategicMerge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(&mut result, &patch);
        }
    }
    Ok(result)
}

/// The object of a server-side apply body. The sim reads the JSON form of YAML only
/// (what kube-rs and client-go send); other YAML is refused with 415.
///
/// # Errors
/// 415 when the body is not a JSON object.
pub fn apply_body(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the simulated cluster accepts apply patches in JSON form only",
        )),
    }
}

/// The merge key of a list field, by the field's name, for the built-in kinds the sim serves.
/// `ports` merge by `containerPort` in containers and by `port` in services.
fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "volumeClaimTemplates" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ports" if sample.get("containerPort").is_some() => Some("containerPort"),
        "ports" => Some("port"),
        _ => None,
    }
}

/// Merges `patch` into `target` by the strategic-merge rules.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch_map));
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_map) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            // $setElementOrder, $retainKeys, $deleteFromPrimitiveList: ordering and pruning
            // hints the sim does not need to honour for its clients.
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                let entry = target_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value);
                if entry.is_null() {
                    target_map.remove(key);
                }
            }
            Value::Array(items) => {
                let existing = target_map.remove(key);
                let merged = merge_list(existing, items, key);
                target_map.insert(key.clone(), merged);
            }
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merges a patch list into the stored one: by merge key when the field has one, else replaces.
fn merge_list(existing: Option<Value>, items: &[Value], field: &str) -> Value {
    let replace_all = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let key = items.first().and_then(|sample| merge_key(field, sample));
    let (Some(key), false) = (key, replace_all) else {
        let kept: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return Value::Array(kept);
    };
    let mut list = match existing {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    };
    for item in items {
        let id = item.get(key);
        let position = id.and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(index), true) => {
                list.remove(index);
            }
            (None, true) => {}
            (Some(index), false) => strategic_merge(&mut list[index], item),
            (None, false) => {
                let mut added = Value::Null;
                strategic_merge(&mut added, item);
                list.push(added);
            }
        }
    }
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "orchestrator", "image": "o:1", "ports": [{"containerPort": 8080}],
             "env": [{"name": "A", "value": "1"}],
             "resources": {"requests": {"cpu": "500m", "ephemeral-storage": "1Gi"}}},
            {"name": "log-shipper", "image": "l:1"}
        ]}}}})
    }

    fn apply_str(patch_type: PatchType, current: &Value, patch: Value) -> Result<Value, ApiError> {
        apply(patch_type, current, patch.to_string().as_bytes())
    }

    #[test]
    fn strategic_merge_keeps_other_containers_and_keys() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "orchestrator"}, {"name": "log-shipper"}],
            "containers": [{"name": "orchestrator", "resources": {"requests": {"cpu": "600m"}}}]}}}});
        let result = apply_str(PatchType::StrategicMerge, &deployment(), patch).expect("patch");
        let containers = &result["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(2));
        assert_eq!(containers[0]["resources"]["requests"]["cpu"], "600m");
        assert_eq!(containers[0]["resources"]["requests"]["ephemeral-storage"], "1Gi");
        assert_eq!(containers[1]["name"], "log-shipper");
        assert!(
            result["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
    }

    #[test]
    fn strategic_merge_adds_deletes_and_replaces_list_elements() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "orchestrator", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 9090}]},
            {"name": "log-shipper", "$patch": "delete"},
            {"name": "new", "image": "n:1"}]}}}});
        let result = apply_str(PatchType::StrategicMerge, &deployment(), patch).expect("patch");
        let containers = result["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = containers.iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, ["orchestrator", "new"]);
        assert_eq!(containers[0]["env"].as_array().map(Vec::len), Some(2));
        assert_eq!(containers[0]["ports"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn merge_patch_replaces_lists_and_null_deletes() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}});
        let result = apply_str(PatchType::Merge, &deployment(), patch).expect("patch");
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        let result =
            apply_str(PatchType::Merge, &json!({"a": 1, "b": 2}), json!({"a": null})).expect("patch");
        assert_eq!(result, json!({"b": 2}));
    }

    #[test]
    fn json_patch_failing_test_is_422_and_bad_body_is_400() {
        let ops = json!([{"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "other"},
                         {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "x"}]);
        let error = apply_str(PatchType::Json, &deployment(), ops).expect_err("test fails");
        assert_eq!(error.code, 422);
        let ok = json!([{"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "orchestrator"},
                        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "x"}]);
        let result = apply_str(PatchType::Json, &deployment(), ok).expect("patch");
        assert_eq!(result["spec"]["template"]["spec"]["containers"][0]["image"], "x");
        assert_eq!(
            apply(PatchType::Json, &deployment(), b"{").expect_err("bad").code,
            400
        );
    }

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Ok(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Ok(PatchType::Apply)
        );
        assert_eq!(
            PatchType::from_content_type("text/plain").map_err(|e| e.code),
            Err(415)
        );
        assert_eq!(apply_body(b"a: b").map_err(|e| e.code), Err(415));
    }
}
