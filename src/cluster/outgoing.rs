//! The tower layer every API request passes on its way out: adds the bearer credential
//! ([`Credentials`]), applies `--request-timeout` (not to watches, which are long by design)
//! and prints kubectl's `-v` request log on stderr: at 6 and above the method, URL, status and
//! time; at 7 and above the request headers too, credentials redacted.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use kube::client::Body;
use tower::{BoxError, Layer, Service};

use super::credentials::Credentials;
use super::redact;

/// kubectl's level for request lines (`round_trippers.go`: URL, status, time).
pub const LEVEL_REQUESTS: u8 = 6;
/// kubectl's level for request headers.
pub const LEVEL_HEADERS: u8 = 7;

/// What the layer adds to each request.
#[derive(Clone)]
pub struct Outgoing {
    pub credentials: Option<Credentials>,
    pub request_timeout: Option<Duration>,
    /// kubectl's `-v` level.
    pub verbosity: u8,
    /// The server URL (without a trailing slash) the request lines show.
    pub server: String,
}

impl<S> Layer<S> for Outgoing {
    type Service = OutgoingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutgoingService {
            inner,
            outgoing: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct OutgoingService<S> {
    inner: S,
    outgoing: Outgoing,
}

/// Whether a request is a watch (left without a request timeout).
fn is_watch(uri: &http::Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

impl<S, B> Service<Request<Body>> for OutgoingService<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone is not ready yet; the ready one goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let outgoing = self.outgoing.clone();
        Box::pin(async move {
            if let Some(credentials) = &outgoing.credentials {
                let value = credentials.authorization().await?;
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    BoxError::from("the bearer token holds characters not allowed in an HTTP header")
                })?;
                value.set_sensitive(true);
                request.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            let line = format!(
                "{} {}{}",
                request.method(),
                outgoing.server,
                redact::url(&request.uri().to_string())
            );
            if outgoing.verbosity >= LEVEL_HEADERS {
                let mut text = format!("{line}\nRequest Headers:");
                for (name, value) in request.headers() {
                    let value = value.to_str().unwrap_or("<binary>");
                    text.push_str(&format!(
                        "\n    {}: {}",
                        name,
                        redact::header(name.as_str(), value)
                    ));
                }
                eprintln!("{text}");
            }
            let started = Instant::now();
            let timeout = outgoing.request_timeout.filter(|_| !is_watch(request.uri()));
            let future = inner.call(request);
            let result = match timeout {
                Some(limit) => match tokio::time::timeout(limit, future).await {
                    Ok(result) => result,
                    Err(_) => Err(BoxError::from(format!(
                        "no answer within the request timeout ({}s, --request-timeout)",
                        limit.as_secs_f64()
                    ))),
                },
                None => future.await,
            };
            if outgoing.verbosity >= LEVEL_REQUESTS {
                let millis = started.elapsed().as_millis();
                match &result {
                    Ok(response) => eprintln!("{line} {} in {millis} milliseconds", response.status()),
                    Err(error) => eprintln!(
                        "{line} failed in {millis} milliseconds: {}",
                        redact::text(&error.to_string())
                    ),
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_recognised() {
        assert!(is_watch(
            &"/api/v1/pods?watch=true&resourceVersion=1".parse().unwrap()
        ));
        assert!(!is_watch(&"/api/v1/pods?labelSelector=a".parse().unwrap()));
    }
}
