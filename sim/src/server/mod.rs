//! The HTTPS API server: TLS listener (HTTP/1.1 and HTTP/2), bearer-token auth, injected faults
//! and latency, the request log, and dispatch of each request to the module that answers it.

mod access;
pub mod admin;
pub(crate) mod defaults;
mod discovery;
mod handlers;
mod list;
mod openapi;
mod patch;
mod proxy;
pub mod registry;
mod routes;
mod scale;
mod select;
mod shape;
mod status;
mod table;
pub mod tls;
mod validate;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::faults::Faults;
use crate::profile::MetricsApi;
use crate::request_log::{LoggedRequest, RequestLog};
use crate::scenario::Scenario;
use crate::store::Store;

use routes::{Route, Target};
use status::ApiError;

/// Bodies above this size are refused; the sim's clients send small objects.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Everything the request handlers share.
pub struct App {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub scenario: Arc<Scenario>,
    pub log: Arc<RequestLog>,
    /// The bearer token every request must carry.
    pub token: String,
    /// `127.0.0.1:PORT`, as `/api` advertises it.
    pub server_address: String,
}

/// One API request, parsed: what it addresses, its query, headers of interest and body.
pub struct ApiRequest {
    pub method: Method,
    pub target: Target,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub accept: String,
    pub body: Bytes,
}

impl ApiRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A whole-number query parameter; 400 when present but not a number, as the apiserver's
    /// parameter decoding answers.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.param(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("{name}: invalid value {text:?}: expected a whole number"))
            }),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    /// `dryRun=All` in the query (the body's DeleteOptions is checked by delete itself).
    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// 422 for a `dryRun` value other than `All`, the only one the apiserver knows: taking it
    /// for a real write would persist what the client meant as a preview.
    fn check_dry_run(&self) -> Result<(), ApiError> {
        let options = match self.method {
            Method::POST => "CreateOptions",
            Method::PUT => "UpdateOptions",
            Method::PATCH => "PatchOptions",
            Method::DELETE => "DeleteOptions",
            _ => return Ok(()),
        };
        match self.param("dryRun") {
            Some(value) if !value.is_empty() && value != "All" => {
                let cause = status::Cause {
                    field: "dryRun".to_owned(),
                    message: format!("Unsupported value: [{value:?}]: supported values: \"All\""),
                    reason: "FieldValueNotSupported",
                };
                Err(ApiError::invalid(options, "meta.k8s.io", "", vec![cause]))
            }
            _ => Ok(()),
        }
    }

    /// The RBAC verb of this request.
    pub fn verb(&self) -> &'static str {
        let named = self.target.name.is_some();
        match self.method {
            Method::GET | Method::HEAD if named => "get",
            Method::GET | Method::HEAD if self.flag("watch") => "watch",
            Method::GET | Method::HEAD => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if named => "delete",
            Method::DELETE => "deletecollection",
            _ => "unknown",
        }
    }
}

/// A JSON body with its content type.
pub fn json_body(value: &Value) -> impl IntoResponse + use<> {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string())
}

/// A JSON response with a status code.
pub fn json_response(code: StatusCode, value: &Value) -> Response {
    (code, json_body(value)).into_response()
}

/// Serves TLS connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let router = axum::Router::new().fallback(handle).with_state(app.clone());
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a reset during accept: keep serving.
                Err(_) => continue,
            },
            () = &mut shutdown => return,
        };
        let acceptor = acceptor.clone();
        let (router, app) = (router.clone(), app.clone());
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let (router, app) = (router.clone(), app.clone());
            async move {
                if injected_reset(&app, &request) {
                    // An error from the service makes hyper drop the connection unanswered.
                    return Err(std::io::Error::other("connection reset injected by a fault rule"));
                }
                router
                    .oneshot(request.map(Body::new))
                    .await
                    .map_err(|never| match never {})
            }
        });
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls_stream) = acceptor.accept(tcp).await else {
                return;
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            // Errors here are client disconnects; there is nobody to report them to.
            let _ = builder.serve_connection(TokioIo::new(tls_stream), service).await;
        });
    }
}

/// Whether a status-0 fault rule drops this request's connection; logged with status 0.
fn injected_reset(app: &App, request: &Request<hyper::body::Incoming>) -> bool {
    let path = request.uri().path();
    let resource = match routes::parse(path) {
        Route::Resource(target) => target.resource_path(),
        Route::Admin(_) => return false,
        _ => String::new(),
    };
    if !app.faults.take_reset(request.method().as_str(), &resource) {
        return false;
    }
    app.log.push(LoggedRequest {
        method: request.method().to_string(),
        path: path.to_owned(),
        query: request.uri().query().unwrap_or("").to_owned(),
        content_type: None,
        body: String::new(),
        status: 0,
        impersonate_user: request
            .headers()
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    true
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let value = header_str(headers, header::AUTHORIZATION);
    value
        .strip_prefix("Bearer ")
        .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

/// Compares without an early exit, so response time says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(413, "RequestEntityTooLarge", "request body too large").into_response();
        }
    };
    let route = routes::parse(&path);
    let response = if !authorized(&parts.headers, &app.token) {
        ApiError::unauthorized().into_response()
    } else if let Route::Admin(rest) = &route {
        // Test-control traffic is neither delayed, faulted nor logged.
        return admin::handle(&app, &parts.method, rest, &body);
    } else {
        let latency = app.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        dispatch(
            &app,
            route,
            parts.method.clone(),
            query,
            &parts.headers,
            content_type.clone(),
            body.clone(),
        )
        .await
        .unwrap_or_else(IntoResponse::into_response)
    };
    app.log.push(LoggedRequest {
        method: parts.method.to_string(),
        path,
        query: raw_query,
        content_type: (!content_type.is_empty()).then_some(content_type),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
        impersonate_user: parts
            .headers
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    response
}

async fn dispatch(
    app: &App,
    route: Route,
    method: Method,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    content_type: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(refused) = metrics_api_gate(app, &route) {
        return Ok(refused);
    }
    let behaviour = app.scenario.behaviour();
    let document = match route {
        Route::Version => discovery::version(behaviour.version),
        Route::CoreVersions => discovery::core_versions(&app.server_address),
        Route::Groups if behaviour.metrics_api == MetricsApi::Absent => discovery::groups(&[METRICS_GROUP]),
        Route::Groups => discovery::groups(&[]),
        Route::Group(group) => discovery::group(&group),
        Route::ResourceList { group, version } => discovery::resource_list(&group, &version),
        Route::OpenApiRoot => openapi::root(),
        Route::OpenApiGroupVersion(path) => match openapi::group_version(&path) {
            Some(document) => document,
            None => return Err(not_found()),
        },
        Route::NotFound | Route::Admin(_) => return Err(not_found()),
        Route::Resource(target) => {
            let request = ApiRequest {
                method,
                target,
                query,
                content_type,
                accept: header_str(headers, header::ACCEPT),
                body,
            };
            return resource(app, request).await;
        }
    };
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    Ok(json_response(StatusCode::OK, &document))
}

const METRICS_GROUP: &str = "metrics.k8s.io";

/// metrics.k8s.io as a cluster without metrics-server answers it (404: no such group), or one
/// whose APIService is unavailable: kube-aggregator's proxy handler (`proxyHandler.ServeHTTP`,
/// staging/src/k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go) answers
/// `proxyError(w, req, "service unavailable", 503)`, a plain-text body, for every path of the
/// group version while the group itself stays in discovery.
fn metrics_api_gate(app: &App, route: &Route) -> Option<Response> {
    let group = match route {
        Route::Group(group) | Route::ResourceList { group, .. } => group.as_str(),
        Route::Resource(target) => target.info.group,
        _ => return None,
    };
    if group != METRICS_GROUP {
        return None;
    }
    match app.scenario.behaviour().metrics_api {
        MetricsApi::Available => None,
        MetricsApi::Absent => Some(not_found().into_response()),
        MetricsApi::Unavailable if matches!(route, Route::Group(_)) => None,
        MetricsApi::Unavailable => Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "service unavailable\n",
            )
                .into_response(),
        ),
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

async fn resource(app: &App, request: ApiRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let verb = request.verb();
    if let Some((code, retry_after)) = app
        .faults
        .take_failure(request.method.as_str(), &target.resource_path())
    {
        return Err(ApiError::injected(code, retry_after));
    }
    // Access reviews are always allowed: they answer whether *other* requests are.
    if target.info.stored && app.faults.is_denied(verb, &target.resource_path()) {
        return Err(ApiError::forbidden(
            target.info,
            target.subresource.as_deref(),
            verb,
            target.name_str(),
            target.namespace_str(),
        ));
    }
    if !target.info.stored {
        return access::review(app, &request);
    }
    request.check_dry_run()?;
    match target.subresource.as_deref() {
        Some("proxy") => proxy::handle(app, &request),
        Some("scale") => scale::handle(app, &request),
        _ => handlers::handle(app, request).await,
    }
}

/// The body of a streamed response.
pub fn stream_body<S>(stream: S) -> Body
where
    S: futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
{
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_must_match_exactly() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "secret"));
        headers.insert(header::AUTHORIZATION, "Bearer secret".parse().expect("header"));
        assert!(authorized(&headers, "secret"));
        headers.insert(header::AUTHORIZATION, "Bearer secreT".parse().expect("header"));
        assert!(!authorized(&headers, "secret"));
        headers.insert(header::AUTHORIZATION, "Basic secret".parse().expect("header"));
        assert!(!authorized(&headers, "secret"));
    }
}
