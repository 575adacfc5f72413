//! The `scale` subresource of deployments, replicasets and statefulsets: an autoscaling/v1
//! `Scale` view (spec.replicas, status.replicas, status.selector) that GET, PUT and PATCH use.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::store::{StoreError, UpdatePart, metadata_mut, rv_of};

use super::handlers::{current, key_of};
use super::patch::{self, PatchType};
use super::select::selector_string;
use super::status::ApiError;
use super::{ApiRequest, App, json_response, validate};

/// The Scale view of a workload object.
pub fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&object["spec"]["selector"]),
        },
    })
}

pub fn handle(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    // Without a resourceVersion in the request, a concurrent status write by a controller is
    // not the client's conflict: retry on the fresh object, as the apiserver does for patches.
    for _ in 0..5 {
        match write_scale(app, request) {
            Err(Attempt::Retry) => continue,
            Err(Attempt::Fail(e)) => return Err(e),
            Ok(response) => return Ok(response),
        }
    }
    Err(ApiError::conflict(request.target.info, request.target.name_str()))
}

enum Attempt {
    Retry,
    Fail(ApiError),
}

impl From<ApiError> for Attempt {
    fn from(e: ApiError) -> Self {
        Attempt::Fail(e)
    }
}

fn write_scale(app: &App, request: &ApiRequest) -> Result<Response, Attempt> {
    let object = current(app, request)?;
    let scale = scale_of(&object);
    let desired = match request.method {
        Method::GET | Method::HEAD => return Ok(json_response(StatusCode::OK, &scale)),
        Method::PUT => serde_json::from_slice::<Value>(&request.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding Scale: {e}")))?,
        Method::PATCH => {
            let patch_type = PatchType::from_content_type(&request.content_type)?;
            patch::apply(patch_type, &scale, &request.body)?
        }
        _ => return Err(ApiError::method_not_allowed(request.method.as_str()).into()),
    };
    let info = request.target.info;
    let name = request.target.name_str();
    let precondition = desired["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
        .map(|rv| rv.parse::<u64>().ok());
    if precondition.is_some_and(|rv| rv != Some(rv_of(&object))) {
        return Err(ApiError::conflict(info, name).into());
    }
    let replicas = &desired["spec"]["replicas"];
    if !replicas.is_null() && replicas.as_i64().is_none_or(|r| i32::try_from(r).is_err()) {
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {replicas} into Go struct field ScaleSpec.spec.replicas of type int32"
        ))
        .into());
    }
    validate::validate_scale(name, replicas)?;
    let Some(replicas) = replicas.as_i64() else {
        let cause = super::status::Cause::required("spec.replicas", "");
        return Err(ApiError::invalid("Scale", "autoscaling", name, vec![cause]).into());
    };
    let mut updated = object.clone();
    updated["spec"]["replicas"] = json!(replicas);
    if request.dry_run() {
        return Ok(json_response(StatusCode::OK, &scale_of(&updated)));
    }
    metadata_mut(&mut updated).insert("resourceVersion".into(), json!(rv_of(&object).to_string()));
    match app.store.update(&key_of(request), updated, UpdatePart::Main) {
        Ok(stored) => Ok(json_response(StatusCode::OK, &scale_of(&stored))),
        Err(StoreError::Conflict { .. }) if precondition.is_none() => Err(Attempt::Retry),
        Err(e) => Err(ApiError::from_store(e, info, name).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_carries_replicas_and_selector_string() {
        let deploy = json!({"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let scale = scale_of(&deploy);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
    }
}
