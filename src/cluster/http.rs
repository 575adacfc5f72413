//! Plain HTTP(S) GETs to URLs outside the API server (a health endpoint, Prometheus): one
//! request, a timeout, no retries; HTTPS verifies the server against the system's trust store,
//! never skipped.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Sends one GET to `uri` (http or https) and returns the response head, its body unread;
/// `Err` says why there was no answer (refused, DNS, TLS, timeout).
pub(crate) async fn send(uri: http::Uri, timeout: Duration) -> Result<http::Response<Incoming>, String> {
    let scheme = uri.scheme_str().unwrap_or("").to_string();
    let request = http::Request::get(uri)
        .header(
            http::header::USER_AGENT,
            concat!("kubectl-orchscale/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request ({e})"))?;
    let answer = if scheme == "https" {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no trusted root certificates on this system ({e})"))?
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        tokio::time::timeout(timeout, client.request(request)).await
    } else {
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        tokio::time::timeout(timeout, client.request(request)).await
    };
    match answer {
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
        Ok(Err(e)) => Err(innermost(&e)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// GETs `uri` and returns its status code and body, waiting at most `timeout` for the answer
/// and again for the body.
pub(crate) async fn get_text(uri: http::Uri, timeout: Duration) -> Result<(u16, String), String> {
    let response = send(uri, timeout).await?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| format!("no complete answer within {}s", timeout.as_secs()))?
        .map_err(|e| innermost(&e))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The innermost cause of a client error, which names the problem (refused, DNS, TLS).
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        text = e.to_string();
        current = e.source();
    }
    text
}
