//! The HTTPS API server: TLS listener (HTTP/1.1 and HTTP/2), bearer-token auth, injected faults
//! and latency, the request log, and dispatch of each request to the module that answers it.

mod access;
pub mod admin;
pub(crate) mod admission;
pub(crate) mod defaults;
mod discovery;
mod events_v1;
mod handlers;
mod list;
mod openapi;
mod patch;
mod protobuf;
mod proxy;
pub mod rbac;
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

use crate::api_behaviour::{Api, ApiBehaviour};
use crate::faults::{AfterCommit, Faults, OutageMode};
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
    /// Opt-in behaviours of real API servers.
    pub api: Arc<Api>,
    /// The admin user's bearer token: everything is allowed to it (but what faults deny).
    pub token: String,
    /// The bearer tokens of the users RBAC authorizes ([`rbac::USERS`]), valid while
    /// `ApiBehaviour::rbac` is on.
    pub rbac_tokens: Vec<(&'static str, String)>,
    /// `127.0.0.1:PORT`, as `/api` advertises it.
    pub server_address: String,
    /// The simulated Prometheus behind the Service `monitoring/prometheus-operated`, if any.
    pub prometheus: Option<Arc<crate::prometheus::Prometheus>>,
}

/// Who sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// The kubeconfig's first user: all-powerful.
    Admin,
    /// A user whose requests the stored RBAC objects authorize.
    Rbac(&'static str),
}

impl App {
    /// Whether `info` is served now (its gate is open; metrics.k8s.io only with a
    /// metrics-server).
    pub fn serves(&self, info: &registry::ResourceInfo) -> bool {
        serves(&self.api.get(), self.scenario.behaviour().metrics_api, info)
    }
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
                // An error from the service makes hyper drop the connection unanswered.
                let after = match before_handling(&app, &request) {
                    Before::Handle(after) => after,
                    Before::Answer(response) => return Ok(response),
                    Before::Drop(why) => return Err(std::io::Error::other(why)),
                };
                let response = match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                match after {
                    None => Ok(response),
                    Some(AfterCommit::Drop) => Err(std::io::Error::other(
                        "connection dropped after the commit by a fault rule",
                    )),
                    Some(AfterCommit::Hold(hold)) => {
                        tokio::time::sleep(hold).await;
                        Ok(response)
                    }
                }
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

/// What the connection-level faults make of a request before it is handled.
enum Before {
    /// Handled; then dropped or held when a commit rule matched.
    Handle(Option<AfterCommit>),
    /// Answered at once (503 during an outage).
    Answer(Response),
    /// Dropped without an answer.
    Drop(&'static str),
}

/// Outages, status-0 rules (drop before handling) and commit rules (drop or hold after
/// handling); every request they end is logged with the status it got (0: dropped). The admin
/// endpoint is exempt.
fn before_handling(app: &App, request: &Request<hyper::body::Incoming>) -> Before {
    let path = request.uri().path();
    let resource = match routes::parse(path) {
        Route::Resource(target) => target.resource_path(),
        Route::Admin(_) => return Before::Handle(None),
        _ => String::new(),
    };
    let method = request.method().as_str();
    let log = |status: u16| {
        app.log.push(LoggedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: request.uri().query().unwrap_or("").to_owned(),
            content_type: None,
            body: String::new(),
            status,
            impersonate_user: request
                .headers()
                .get("impersonate-user")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
    };
    match app.faults.outage_now() {
        Some(OutageMode::Drop) => {
            log(0);
            return Before::Drop("API outage injected by a fault");
        }
        Some(OutageMode::Unavailable) => {
            log(503);
            return Before::Answer(ApiError::injected(503, None).into_response());
        }
        None => {}
    }
    if app.faults.take_reset(method, &resource) {
        log(0);
        return Before::Drop("connection reset injected by a fault rule");
    }
    let dry_run = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "dryRun=All"));
    if dry_run || resource.is_empty() {
        return Before::Handle(None);
    }
    Before::Handle(app.faults.take_after_commit(method, &resource))
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

/// The user a request's bearer token names; RBAC users only while `ApiBehaviour::rbac` is on.
fn authenticate(app: &App, headers: &HeaderMap) -> Option<User> {
    if authorized(headers, &app.token) {
        return Some(User::Admin);
    }
    let user = app
        .rbac_tokens
        .iter()
        .find(|(_, token)| authorized(headers, token))
        .map(|(user, _)| User::Rbac(user))?;
    app.api.get().rbac.then_some(user)
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
    let user = authenticate(&app, &parts.headers);
    let response = match (user, &route) {
        (None, _) => ApiError::unauthorized().into_response(),
        // Test-control traffic is neither delayed, faulted nor logged.
        (Some(User::Admin), Route::Admin(rest)) => return admin::handle(&app, &parts.method, rest, &body),
        (Some(_), Route::Admin(_)) => {
            return ApiError::new(
                403,
                "Forbidden",
                "the admin endpoint takes the admin user's token",
            )
            .into_response();
        }
        (Some(user), _) => {
            let latency = app.faults.latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
                .map(|q| q.0)
                .unwrap_or_default();
            dispatch(
                &app,
                user,
                route.clone(),
                parts.method.clone(),
                query,
                &parts.headers,
                content_type.clone(),
                body.clone(),
            )
            .await
            .unwrap_or_else(IntoResponse::into_response)
        }
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
    count_sent(response, app.log.sent_counter())
}

/// The response with its body bytes added to `sent` as they go out (a watch's as it flows).
fn count_sent(response: Response, sent: Arc<std::sync::atomic::AtomicU64>) -> Response {
    use futures::StreamExt;
    let (parts, body) = response.into_parts();
    let counted = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            sent.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(counted))
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    app: &App,
    user: User,
    route: Route,
    method: Method,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    content_type: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Route::ResourceList { group, .. } = &route
        && let Some(refused) = metrics_api_unavailable(app, group)
    {
        return Ok(refused);
    }
    let (behaviour, api) = (app.scenario.behaviour(), app.api.get());
    let served = |info: &registry::ResourceInfo| serves(&api, behaviour.metrics_api, info);
    let document = match route {
        Route::Version => discovery::version(behaviour.version),
        Route::CoreVersions => discovery::core_versions(&app.server_address),
        Route::Groups => discovery::groups(&served),
        Route::Group(group) if discovery::group_served(&group, &served) => discovery::group(&group, &served),
        Route::ResourceList { group, version }
            if registry::of_group_version(&group, &version).any(&served) =>
        {
            discovery::resource_list(&group, &version, &served)
        }
        Route::Group(_) | Route::ResourceList { .. } => return Err(not_found()),
        Route::Resource(target) if !served(target.info) => return Err(not_found()),
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
            return resource(app, user, request).await;
        }
    };
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    Ok(json_response(StatusCode::OK, &document))
}

const METRICS_GROUP: &str = "metrics.k8s.io";

/// Whether `info` is served with `api` and `metrics` in force: its [`registry::Gate`] is open,
/// and metrics.k8s.io is there unless metrics-server is absent (a cluster without it has no such
/// group: not in discovery, 404 on every path of it).
fn serves(api: &ApiBehaviour, metrics: MetricsApi, info: &registry::ResourceInfo) -> bool {
    info.gate.open(api) && !(metrics == MetricsApi::Absent && info.group == METRICS_GROUP)
}

/// metrics.k8s.io as a cluster answers it whose metrics-server APIService is unavailable:
/// kube-aggregator's proxy handler (`proxyHandler.ServeHTTP`,
/// staging/src/k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go) answers
/// `proxyError(w, req, "service unavailable", 503)`, a plain-text body, for every path of the
/// group version, while the group itself stays in discovery. The proxy sits inside the
/// apiserver's filter chain (`DefaultBuildHandlerChain`, authorization first), so a request
/// RBAC forbids gets its 403 before this. (An absent metrics-server is [`serves`]'s: the group
/// is not served at all.)
fn metrics_api_unavailable(app: &App, group: &str) -> Option<Response> {
    (group == METRICS_GROUP && app.scenario.behaviour().metrics_api == MetricsApi::Unavailable).then(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "service unavailable\n",
        )
            .into_response()
    })
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

async fn resource(app: &App, user: User, request: ApiRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let verb = request.verb();
    if let Some((code, retry_after)) = app
        .faults
        .take_failure(request.method.as_str(), &target.resource_path())
    {
        return Err(ApiError::injected(code, retry_after));
    }
    // Access reviews are always allowed: they answer whether *other* requests are.
    if target.info.stored {
        let name = match user {
            User::Admin => crate::kubeconfig::NAME,
            User::Rbac(name) => name,
        };
        let denied = app.faults.is_denied(verb, &target.resource_path())
            || matches!(user, User::Rbac(name) if rbac::allows(&app.store, name, &attributes(target, verb)).is_none());
        if denied {
            return Err(ApiError::forbidden_for(
                name,
                target.info,
                target.subresource.as_deref(),
                verb,
                target.name_str(),
                target.namespace_str(),
            ));
        }
    }
    if let Some(refused) = metrics_api_unavailable(app, target.info.group) {
        return Ok(refused);
    }
    if !target.info.stored {
        return access::review(app, user, &request);
    }
    request.check_dry_run()?;
    second_writer(app, &request);
    match target.subresource.as_deref() {
        Some("proxy") => proxy::handle(app, &request),
        Some("scale") => scale::handle(app, &request),
        _ => handlers::handle(app, request).await,
    }
}

/// RBAC's attributes of a request to `target`.
fn attributes<'a>(target: &'a Target, verb: &'a str) -> rbac::Attributes<'a> {
    rbac::Attributes {
        verb,
        group: target.info.group,
        resource: target.info.plural,
        subresource: target.subresource.as_deref().unwrap_or(""),
        namespace: target.namespace_str(),
        name: target.name_str(),
    }
}

/// Applies a second writer's merge patch to the addressed object, when a rule matches this
/// write (dry runs excluded): another client's write that lands just before this one.
fn second_writer(app: &App, request: &ApiRequest) {
    let writes = matches!(request.verb(), "create" | "update" | "patch" | "delete");
    if !writes || request.dry_run() || request.target.name.is_none() {
        return;
    }
    let Some(merge) = app
        .faults
        .take_second_writer(request.method.as_str(), &request.target.resource_path())
    else {
        return;
    };
    let body = merge.to_string();
    // A patch that does not apply (or an object that does not exist) leaves the store as it is.
    let _ = app.store.modify(
        &handlers::key_of(request),
        crate::store::UpdatePart::Main,
        |object| match patch::apply(patch::PatchType::Merge, object, body.as_bytes()) {
            Ok(patched) if &patched != object => {
                *object = patched;
                true
            }
            _ => false,
        },
    );
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
