//! `validate --health-url`: one plain HTTP(S) GET to a URL outside the API server, with a
//! short timeout and no retries (a health check reports what it sees).
//!
//! HTTPS verifies the server against the system's trust store, never skipped.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Longest wait for the health endpoint's answer (connect included).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// GETs `url` and returns its status code and reason phrase; `Err` says why there was no
/// answer (bad URL, refused, TLS, timeout).
pub async fn get_status(url: &str) -> Result<(u16, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a valid URL ({e})"))?;
    let scheme = uri.scheme_str().unwrap_or("").to_string();
    if scheme != "http" && scheme != "https" {
        return Err("the URL must start with http:// or https://".into());
    }
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
        tokio::time::timeout(TIMEOUT, client.request(request)).await
    } else {
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        tokio::time::timeout(TIMEOUT, client.request(request)).await
    };
    match answer {
        Err(_) => Err(format!("no answer within {}s", TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(innermost(&e)),
        Ok(Ok(response)) => {
            let status = response.status();
            Ok((
                status.as_u16(),
                status.canonical_reason().unwrap_or("").to_string(),
            ))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_are_refused_without_a_request() {
        assert!(
            get_status("not a url")
                .await
                .unwrap_err()
                .contains("not a valid URL")
        );
        assert!(get_status("ftp://h/x").await.unwrap_err().contains("http://"));
    }

    #[tokio::test]
    async fn a_closed_port_is_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = get_status(&format!("http://127.0.0.1:{port}/health"))
            .await
            .unwrap_err();
        assert!(err.to_lowercase().contains("refused"), "{err}");
    }
}
