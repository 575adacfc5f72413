//! The sim's admin endpoint, for driving a running `orchscale-sim` from a shell. It takes the
//! admin user's bearer token (the kubeconfig's first user, `orchscale-sim`) and is neither
//! faulted, delayed nor logged.
//!
//! - `POST /sim/faults` with any of: `{"failNext": {"method": "PATCH", "resource":
//!   "deployments/scale", "status": 429, "retryAfter": 1, "count": 2}, "cutWatchesAfter": 5,
//!   "expireNextWatch": true, "latencyMs": 200, "deny": {"verb": "patch", "resource":
//!   "deployments"}, "allowAll": true, "healthStatus": 503, "reset": true}`, and the faults of
//!   lost and slow answers (`method`/`resource` match as in `failNext`; omitted: any; dry runs
//!   never match):
//!   - `"commitThenDrop": {"method": "PATCH", "resource": "deployments", "count": 1}`: the next
//!     `count` matching requests are applied, then their connection is dropped unanswered;
//!   - `"holdAnswer": {"method": "PATCH", "resource": "deployments", "count": 1, "holdMs":
//!     30000}`: applied, then answered only after `holdMs`;
//!   - `"outage": {"durationMs": 3000, "mode": "drop" | "unavailable"}`: for that long every API
//!     request is dropped unanswered (`drop`) or gets 503 (`unavailable`), and open watches end
//!     at once; `durationMs: 0` ends an outage (the admin endpoint is never affected);
//!   - `"secondWriter": {"method": "PATCH", "resource": "deployments", "patch": {"metadata":
//!     {"labels": {"x": "y"}}}}`: before the next matching write, the JSON merge patch is
//!     applied to the addressed object as another client would (new resourceVersion; generation
//!     bumped when the spec changes), so a write carrying the old resourceVersion gets 409.
//!
//!   RBAC denials (`deny`) apply to every user; `"deny": {"verb": "list", "resource": "events"}`
//!   and `{"verb": "watch", ...}` make event lists and watches 403 and access reviews
//!   `allowed: false`.
//! - `POST /sim/scenario` with any of: `{"podStartDelayMs": 500, "failNewPods": {"workload":
//!   "orchestrator", "failure": "CrashLoop" | "ImagePull" | "OomKilled"}, "clearPodFailures": true,
//!   "load": {"workload": "orchestrator", "totalCpuMillis": 3000, "memoryPerPodBytes": 734003200}}`
//! - `POST /sim/api` with any of (fields left out keep their value; the answer, like `GET
//!   /sim/api`, is the whole state): `{"resourceMutator": {"cpuStepMillis": 250,
//!   "limitsEqualRequests": true} | true | false | null, "limitRanger": true,
//!   "immutableConfigMaps": true, "eventsV1": true, "rbac": true}`:
//!   - `resourceMutator`: an Autopilot-like mutating admission on Deployments, StatefulSets and
//!     new Pods (dry runs included): CPU requests rounded up to `cpuStepMillis`, cpu and memory
//!     limits set to the requests when `limitsEqualRequests`, and a `Warning: 299 -
//!     "autopilot-default-resources-mutator:Autopilot updated Deployment ns/name: adjusted
//!     resources to meet requirements for containers [app] (see
//!     http://g.co/gke/autopilot-resources)"` header; `true` means the defaults (250, true);
//!   - `limitRanger`: new Pods get the `default`/`defaultRequest` of the namespace's LimitRanges
//!     (`limitranges` are always served) and the `kubernetes.io/limit-ranger` annotation;
//!   - `immutableConfigMaps`: a ConfigMap with `immutable: true` refuses changes of `data`,
//!     `binaryData` and `immutable` with 422 Invalid (FieldValueForbidden "field is immutable
//!     when `immutable` is set");
//!   - `eventsV1`: `events.k8s.io/v1` is in discovery and serves get, list and watch of the
//!     recorded events in its shape (`regarding`, `note`, ...);
//!   - `rbac`: `rbac.authorization.k8s.io/v1` is served, upstream's `admin`/`edit`/`view`
//!     ClusterRoles are seeded, and the kubeconfig's contexts `sim-ns-admin` (RoleBinding to
//!     `admin` in `llm-orchestrator`) and `sim-operator` (RoleBinding to the Role
//!     `orchscale-operator`: `admin` without `services/proxy`) are authorized by the stored
//!     roles and bindings. Those contexts are written into the kubeconfig when RBAC is on (at
//!     start, or rewritten when switched on); their tokens get 401 while `rbac` is off.
//! - `GET /sim/requests`: the request log as JSON.
//!
//! For example: `curl --cacert ca.pem -H "Authorization: Bearer $TOKEN" -d '{"healthStatus":503}'
//! https://127.0.0.1:PORT/sim/faults`.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api_behaviour::ResourceMutator;
use crate::faults::{FaultRule, OutageMode};
use crate::scenario::PodFailure;

use super::status::ApiError;
use super::{App, json_response};

pub fn handle(app: &App, method: &Method, path: &str, body: &[u8]) -> Response {
    let result = match (method, path) {
        (&Method::GET, "requests") => Ok(requests(app)),
        (&Method::POST, "faults") => parse(body).and_then(|v| faults(app, &v)),
        (&Method::POST, "scenario") => parse(body).and_then(|v| scenario(app, &v)),
        (&Method::GET, "api") => Ok(api_state(app)),
        (&Method::POST, "api") => parse(body).and_then(|v| api(app, &v)),
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!("no admin endpoint {method} /sim/{path}"),
        )),
    };
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => e.into_response(),
    }
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

fn requests(app: &App) -> Value {
    let entries: Vec<Value> = app
        .log
        .all()
        .into_iter()
        .map(|r| {
            json!({"method": r.method, "path": r.path, "query": r.query,
                   "contentType": r.content_type, "body": r.body, "status": r.status})
        })
        .collect();
    Value::Array(entries)
}

fn text(value: &Value, field: &str) -> Result<String, ApiError> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("missing string field {field:?}")))
}

fn number(value: &Value, field: &str) -> Result<u64, ApiError> {
    value[field]
        .as_u64()
        .ok_or_else(|| ApiError::bad_request(format!("missing number field {field:?}")))
}

fn faults(app: &App, request: &Value) -> Result<Value, ApiError> {
    let faults = &app.faults;
    if request["reset"] == true {
        faults.reset();
    }
    if let Some(rule) = request.get("failNext") {
        let status = u16::try_from(number(rule, "status")?)
            .map_err(|_| ApiError::bad_request("status out of range"))?;
        faults.fail_next(FaultRule {
            method: rule["method"].as_str().map(str::to_owned),
            resource: rule["resource"].as_str().map(str::to_owned),
            status,
            retry_after: rule["retryAfter"].as_u64(),
            count: rule["count"].as_u64().map_or(1, |c| c as usize),
        });
    }
    if let Some(events) = request.get("cutWatchesAfter").and_then(Value::as_u64) {
        faults.cut_watches_after(events as usize);
    }
    if request["expireNextWatch"] == true {
        faults.expire_next_watch();
    }
    if let Some(ms) = request.get("latencyMs").and_then(Value::as_u64) {
        faults.set_latency(Duration::from_millis(ms));
    }
    if let Some(deny) = request.get("deny") {
        faults.deny(&text(deny, "verb")?, &text(deny, "resource")?);
    }
    if request["allowAll"] == true {
        faults.allow_all();
    }
    let matcher = |rule: &Value| {
        (
            rule["method"].as_str().map(str::to_owned),
            rule["resource"].as_str().map(str::to_owned),
        )
    };
    if let Some(rule) = request.get("commitThenDrop") {
        let (method, resource) = matcher(rule);
        let count = rule["count"].as_u64().map_or(1, |c| c as usize);
        faults.commit_then_drop(method.as_deref(), resource.as_deref(), count);
    }
    if let Some(rule) = request.get("holdAnswer") {
        let (method, resource) = matcher(rule);
        let count = rule["count"].as_u64().map_or(1, |c| c as usize);
        let hold = Duration::from_millis(number(rule, "holdMs")?);
        faults.hold_answer(method.as_deref(), resource.as_deref(), count, hold);
    }
    if let Some(outage) = request.get("outage") {
        let mode = match outage["mode"].as_str().unwrap_or("drop") {
            "drop" => OutageMode::Drop,
            "unavailable" => OutageMode::Unavailable,
            other => return Err(ApiError::bad_request(format!("unknown outage mode {other:?}"))),
        };
        faults.outage(Duration::from_millis(number(outage, "durationMs")?), mode);
    }
    if let Some(rule) = request.get("secondWriter") {
        let (method, resource) = matcher(rule);
        let patch = rule
            .get("patch")
            .filter(|p| p.is_object())
            .ok_or_else(|| ApiError::bad_request("secondWriter needs a \"patch\" object"))?;
        faults.second_writer(method.as_deref(), resource.as_deref(), patch.clone());
    }
    if let Some(status) = request.get("healthStatus").and_then(Value::as_u64) {
        let status = u16::try_from(status).map_err(|_| ApiError::bad_request("healthStatus out of range"))?;
        faults.set_health_status(status);
    }
    Ok(json!({"status": "ok"}))
}

fn api_state(app: &App) -> Value {
    let behaviour = app.api.get();
    json!({
        "resourceMutator": behaviour.resource_mutator.map(|m| json!({
            "cpuStepMillis": m.cpu_step_millis, "limitsEqualRequests": m.limits_equal_requests,
        })),
        "limitRanger": behaviour.limit_ranger,
        "immutableConfigMaps": behaviour.immutable_configmaps,
        "eventsV1": behaviour.events_v1,
        "rbac": behaviour.rbac,
    })
}

fn api(app: &App, request: &Value) -> Result<Value, ApiError> {
    let mut behaviour = app.api.get();
    if let Some(mutator) = request.get("resourceMutator") {
        behaviour.resource_mutator = match mutator {
            Value::Null | Value::Bool(false) => None,
            Value::Bool(true) => Some(ResourceMutator::default()),
            Value::Object(_) => {
                let defaults = ResourceMutator::default();
                Some(ResourceMutator {
                    cpu_step_millis: mutator["cpuStepMillis"]
                        .as_u64()
                        .unwrap_or(defaults.cpu_step_millis)
                        .max(1),
                    limits_equal_requests: mutator["limitsEqualRequests"]
                        .as_bool()
                        .unwrap_or(defaults.limits_equal_requests),
                })
            }
            _ => {
                return Err(ApiError::bad_request(
                    "resourceMutator: an object, a boolean or null",
                ));
            }
        };
    }
    let switch = |field: &str, value: &mut bool| -> Result<(), ApiError> {
        match request.get(field) {
            None => Ok(()),
            Some(Value::Bool(on)) => {
                *value = *on;
                Ok(())
            }
            Some(_) => Err(ApiError::bad_request(format!("{field}: a boolean"))),
        }
    };
    switch("limitRanger", &mut behaviour.limit_ranger)?;
    switch("immutableConfigMaps", &mut behaviour.immutable_configmaps)?;
    switch("eventsV1", &mut behaviour.events_v1)?;
    switch("rbac", &mut behaviour.rbac)?;
    app.api.set(behaviour);
    Ok(api_state(app))
}

fn scenario(app: &App, request: &Value) -> Result<Value, ApiError> {
    let scenario = &app.scenario;
    if let Some(ms) = request.get("podStartDelayMs").and_then(Value::as_u64) {
        scenario.set_pod_start_delay(Duration::from_millis(ms));
    }
    if request["clearPodFailures"] == true {
        scenario.clear_pod_failures();
    }
    if let Some(rule) = request.get("failNewPods") {
        let failure = match text(rule, "failure")?.as_str() {
            "CrashLoop" => PodFailure::CrashLoop,
            "ImagePull" => PodFailure::ImagePull,
            "OomKilled" => PodFailure::OomKilled,
            other => return Err(ApiError::bad_request(format!("unknown failure {other:?}"))),
        };
        scenario.fail_new_pods(&text(rule, "workload")?, failure);
    }
    if let Some(load) = request.get("load") {
        scenario.set_load(
            &text(load, "workload")?,
            number(load, "totalCpuMillis")?,
            number(load, "memoryPerPodBytes")?,
        );
    }
    Ok(json!({"status": "ok"}))
}
