//! The service proxy subresource (`services/<name>[:port]/proxy/<path>`): answers for a service
//! with ready endpoints as its pods would — `/health` with the status the faults set — and 503
//! "no endpoints available" when no ready pod matches the service's selector.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::ObjectKey;

use super::select::LabelSelector;
use super::status::ApiError;
use super::{ApiRequest, App};

/// The service name in `name`, `name:port` or `scheme:name:port` forms.
pub fn service_name(spec: &str) -> &str {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [scheme, name, _] if matches!(*scheme, "http" | "https") => name,
        [name, ..] => name,
        [] => spec,
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn has_ready_endpoint(app: &App, namespace: &str, service: &Value) -> bool {
    let Some(selector) = service["spec"]["selector"].as_object() else {
        return false;
    };
    let text: Vec<String> = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let Ok(selector) = LabelSelector::parse(&text.join(",")) else {
        return false;
    };
    let (pods, _) = app.store.list("pods", Some(namespace));
    pods.iter().any(|p| selector.matches(p) && is_ready(p))
}

pub fn handle(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let namespace = request.target.namespace_str();
    let name = service_name(request.target.name_str());
    let info = request.target.info;
    let service = app
        .store
        .get(&ObjectKey::new("services", namespace, name))
        .ok_or_else(|| ApiError::not_found(info, name))?;
    if let Some(prometheus) = &app.prometheus
        && namespace == crate::prometheus::SERVICE_NAMESPACE
        && name == crate::prometheus::SERVICE_NAME
    {
        return Ok(prometheus_answer(prometheus, request));
    }
    if !has_ready_endpoint(app, namespace, &service) {
        return Err(ApiError::new(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{name}\""),
        ));
    }
    match request.target.proxy_path.trim_end_matches('/') {
        "health" | "healthz" => {
            let code = app.faults.health_status();
            let body = if (200..300).contains(&code) {
                json!({"status": "ok"})
            } else {
                json!({"status": "unhealthy"})
            };
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok((
                code,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response())
        }
        _ => Ok((
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "404 page not found\n",
        )
            .into_response()),
    }
}

/// The simulated Prometheus answering through the proxy, as a real one behind
/// `services/prometheus-operated:9090/proxy/api/v1/query…` does. Upstream's service proxy
/// accepts the service as `name`, `name:port` or `scheme:name:port`
/// (pkg/registry/core/service/storage/storage.go, `ResourceLocation`, via
/// `utilnet.SplitSchemeNamePort`) and forwards the rest of the path and the query unchanged.
fn prometheus_answer(prometheus: &crate::prometheus::Prometheus, request: &ApiRequest) -> Response {
    // The proxied query string is forwarded as the client wrote it; the API server's own parsing
    // of it (`request.query`) already decoded it.
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request.query.iter())
        .finish();
    let params = crate::prometheus::params(&query, &request.content_type, &request.body);
    let (code, body) = prometheus.answer(&request.target.proxy_path, &params);
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_parse_from_every_form() {
        assert_eq!(service_name("orchestrator"), "orchestrator");
        assert_eq!(service_name("orchestrator:80"), "orchestrator");
        assert_eq!(service_name("http:orchestrator:"), "orchestrator");
        assert_eq!(service_name("https:orchestrator:443"), "orchestrator");
    }

    #[test]
    fn readiness_comes_from_the_ready_condition() {
        assert!(is_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        ));
        assert!(!is_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
        ));
        assert!(!is_ready(&json!({})));
    }
}
