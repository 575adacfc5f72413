//! A small HTTPS client that reaches a started Sim through its kubeconfig (server URL, CA data,
//! token), as kube-rs and kubectl do, without depending on either.

use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orchscale_sim::{Sim, SimOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

pub const NS: &str = "llm-orchestrator";
pub const DEPLOY: &str = "/apis/apps/v1/namespaces/llm-orchestrator/deployments/orchestrator";

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// What the kubeconfig says about the cluster.
pub struct KubeconfigFacts {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub token: String,
}

pub fn read_kubeconfig(sim: &Sim) -> KubeconfigFacts {
    let text = std::fs::read_to_string(sim.kubeconfig()).expect("kubeconfig readable");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("{name} in kubeconfig"))
    };
    KubeconfigFacts {
        server: field("server:"),
        ca_pem: base64::engine::general_purpose::STANDARD
            .decode(field("certificate-authority-data:"))
            .expect("CA data is base64"),
        token: field("token:"),
    }
}

/// The bearer token of `user` in the sim's kubeconfig (`sim-ns-admin`, `sim-operator`).
pub fn user_token(sim: &Sim, user: &str) -> String {
    let text = std::fs::read_to_string(sim.kubeconfig()).expect("kubeconfig readable");
    let block = format!("- name: {user}\n  user:\n    token: ");
    let start = text
        .find(&block)
        .unwrap_or_else(|| panic!("user {user} in kubeconfig"))
        + block.len();
    text[start..]
        .lines()
        .next()
        .expect("token line")
        .trim()
        .to_owned()
}

pub fn start() -> Sim {
    Sim::start(SimOptions {
        pod_start_delay: Duration::from_millis(50),
        ..SimOptions::default()
    })
    .expect("sim starts")
}

pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Clone)]
pub struct Client {
    inner: HyperClient<Connector, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(sim: &Sim) -> Self {
        Self::build(sim, false)
    }

    /// A client that speaks only HTTP/2 (negotiated by ALPN).
    pub fn http2(sim: &Sim) -> Self {
        Self::build(sim, true)
    }

    fn build(sim: &Sim, http2_only: bool) -> Self {
        let facts = read_kubeconfig(sim);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&facts.ca_pem) {
            roots.add(cert.expect("CA PEM")).expect("CA added");
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only();
        let connector = if http2_only {
            builder.enable_http2().build()
        } else {
            builder.enable_http1().enable_http2().build()
        };
        let mut client = HyperClient::builder(TokioExecutor::new());
        client.http2_only(http2_only);
        Self {
            inner: client.build(connector),
            base: facts.server,
            token: Some(facts.token),
        }
    }

    /// The same client, authenticated as another kubeconfig user.
    pub fn as_user(&self, sim: &Sim, user: &str) -> Self {
        Self {
            token: Some(user_token(sim, user)),
            ..self.clone()
        }
    }

    pub fn without_token(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        accept: Option<&str>,
    ) -> Response {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.inner.request(request))
            .await
            .expect("response within 30 s")
            .expect("request succeeds");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        Response {
            status,
            headers,
            body,
        }
    }

    /// Sends and returns the response head, with the body left streaming (for watches).
    pub async fn open(&self, path: &str) -> hyper::Response<hyper::body::Incoming> {
        self.open_with_accept(path, "application/json").await
    }

    pub async fn open_with_accept(&self, path: &str, accept: &str) -> hyper::Response<hyper::body::Incoming> {
        let mut request = hyper::Request::builder()
            .uri(format!("{}{path}", self.base))
            .header("accept", accept);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).expect("request");
        tokio::time::timeout(Duration::from_secs(30), self.inner.request(request))
            .await
            .expect("response within 30 s")
            .expect("request succeeds")
    }

    /// A GET that may fail at the connection level (for injected resets).
    pub async fn try_get(&self, path: &str) -> Result<u16, String> {
        let mut request = hyper::Request::builder().uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).expect("request");
        match tokio::time::timeout(Duration::from_secs(30), self.inner.request(request)).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    /// A request that may end without an answer (a dropped connection): `Err` then.
    pub async fn try_json(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Response, String> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", content_type);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let response = match tokio::time::timeout(Duration::from_secs(30), self.inner.request(request)).await
        {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out".to_owned()),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send("GET", path, None, b"", None).await
    }

    pub async fn json(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Response {
        self.send(
            method,
            path,
            Some(content_type),
            body.to_string().as_bytes(),
            None,
        )
        .await
    }
}

/// Reads newline-delimited watch events until `count` arrived or the stream ended.
pub async fn read_events(response: hyper::Response<hyper::body::Incoming>, count: usize) -> Vec<Value> {
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < count {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        if let Ok(data) = frame.into_data() {
            buffer.extend_from_slice(&data);
        }
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            events.push(serde_json::from_slice(&line).expect("event JSON"));
        }
    }
    events
}

/// Polls `check` until it holds; panics after 30 s (a safety net, not a timing assertion).
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A test's tool is missing: under `CI=true` the test fails (CI never passes by skipping),
/// elsewhere it prints `SKIP: …` and the caller returns.
pub fn skip_or_fail(message: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}: CI=true, so a missing tool fails the test (.ci/run installs it)");
    }
    eprintln!("SKIP: {message}");
}

/// An access review; `resource` is `group/resource` for a named group (`apps/deployments`).
pub async fn can_i(client: &Client, verb: &str, resource: &str, sub: &str, namespace: &str) -> bool {
    let (group, resource) = resource.split_once('/').unwrap_or(("", resource));
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                        "resource": resource, "subresource": sub}}});
    let answer = client
        .json(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "application/json",
            &review,
        )
        .await;
    assert_eq!(answer.status, 201);
    answer.json()["status"]["allowed"].as_bool().expect("allowed")
}
