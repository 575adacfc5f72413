//! `validate --health-url`: one plain HTTP(S) GET to a URL outside the API server, with a
//! short timeout and no retries (a health check reports what it sees).
//!
//! HTTPS verifies the server against the system's trust store, never skipped (`cluster::http`).

use std::time::Duration;

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
    let uri = check_url(url).map_err(|e| e.to_string())?;
    let response = crate::cluster::http::send(uri, TIMEOUT).await?;
    let status = response.status();
    Ok((
        status.as_u16(),
        status.canonical_reason().unwrap_or("").to_string(),
    ))
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
