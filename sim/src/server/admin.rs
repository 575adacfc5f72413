//! The sim's admin endpoint, for driving a running `orchscale-sim` from a shell. It takes the
//! same bearer token as the API and is neither faulted, delayed nor logged.
//!
//! - `POST /sim/faults` with any of: `{"failNext": {"method": "PATCH", "resource":
//!   "deployments/scale", "status": 429, "retryAfter": 1, "count": 2}, "cutWatchesAfter": 5,
//!   "expireNextWatch": true, "latencyMs": 200, "deny": {"verb": "patch", "resource":
//!   "deployments"}, "allowAll": true, "healthStatus": 503, "reset": true}`
//! - `POST /sim/scenario` with any of: `{"podStartDelayMs": 500, "failNewPods": {"workload":
//!   "orchestrator", "failure": "CrashLoop" | "ImagePull" | "OomKilled"}, "clearPodFailures": true,
//!   "load": {"workload": "orchestrator", "totalCpuMillis": 3000, "memoryPerPodBytes": 734003200}}`
//! - `GET /sim/requests`: the request log as JSON.
//!
//! For example: `curl --cacert ca.pem -H "Authorization: Bearer $TOKEN" -d '{"healthStatus":503}'
//! https://127.0.0.1:PORT/sim/faults`.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::FaultRule;
use crate::scenario::PodFailure;

use super::status::ApiError;
use super::{App, json_response};

pub fn handle(app: &App, method: &Method, path: &str, body: &[u8]) -> Response {
    let result = match (method, path) {
        (&Method::GET, "requests") => Ok(requests(app)),
        (&Method::POST, "faults") => parse(body).and_then(|v| faults(app, &v)),
        (&Method::POST, "scenario") => parse(body).and_then(|v| scenario(app, &v)),
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
    if let Some(status) = request.get("healthStatus").and_then(Value::as_u64) {
        let status = u16::try_from(status).map_err(|_| ApiError::bad_request("healthStatus out of range"))?;
        faults.set_health_status(status);
    }
    Ok(json!({"status": "ok"}))
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
