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

use crate::error::Error;

/// Longest wait for the health endpoint's answer (connect included).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Checks `--health-url` before any request: an absolute http(s) URL with a host.
///
/// # Errors
/// [`Error::Usage`] (exit 2) saying what is accepted; the URL is shown without credentials.
pub fn check_url(url: &str) -> Result<http::Uri, Error> {
    let refuse = |why: &str| {
        Error::usage(
            format!("--health-url {}: {why}", display_url(url)),
            "give the endpoint as an absolute URL, e.g. --health-url https://orchestrator.example.com/health",
        )
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| refuse(&format!("not a valid URL ({e})")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(refuse("the URL must start with http:// or https://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(refuse("the URL has no host"));
    }
    Ok(uri)
}

/// The URL as it may be printed: userinfo, query values and fragment masked (a password may
/// hold `/`, `?` or `#`; a query may carry a token), since secrets never appear in the output.
pub fn display_url(url: &str) -> String {
    crate::cluster::redact::url(url)
}

/// GETs `url` and returns its status code and reason phrase; `Err` says why there was no
/// answer (bad URL, refused, TLS, timeout).
pub async fn get_status(url: &str) -> Result<(u16, String), String> {
    let response = send(url, TIMEOUT).await?;
    let status = response.status();
    Ok((
        status.as_u16(),
        status.canonical_reason().unwrap_or("").to_string(),
    ))
}

/// GETs `url` (e.g. a Prometheus query) and returns its status code and body, waiting at most
/// `timeout` for the answer and the body.
pub(crate) async fn get_text(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let response = send(url, timeout).await?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| format!("no complete answer within {}s", timeout.as_secs()))?
        .map_err(|e| innermost(&e))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One GET, with no retries; HTTPS against the system's trust store.
async fn send(url: &str, timeout: Duration) -> Result<http::Response<hyper::body::Incoming>, String> {
    let uri = check_url(url).map_err(|e| e.to_string())?;
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

    #[test]
    fn bad_health_urls_are_usage_errors() {
        for bad in ["notaurl", "ftp://h/health", "https:///health"] {
            let err = check_url(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
        assert!(check_url("https://orchestrator.example.com/health").is_ok());
        assert!(check_url("http://10.0.0.1:8080/health").is_ok());
    }

    #[test]
    fn credentials_in_the_url_never_print() {
        let shown = display_url("https://admin:s3cret@orchestrator.example.com/health");
        assert!(!shown.contains("s3cret") && !shown.contains("admin"), "{shown}");
        assert_eq!(shown, "https://***@orchestrator.example.com/health");
        let err = check_url("ftp://admin:s3cret@h/health").unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert_eq!(display_url("http://h:8080/health"), "http://h:8080/health");
    }
}
