//! Retry policy for transient API faults, as a tower layer inside kube's client stack.
//!
//! Retried: 429 (honouring `Retry-After`), 500, 502, 503, 504 and connection resets, with
//! capped exponential backoff inside a bounded budget, because a CLI must not sit in retries
//! for minutes. Everything else (including "connection refused": nobody is listening) is
//! returned at once. 409 Conflict is not retried here: the command re-reads and re-plans.

use std::time::Duration;

use http::{Request, Response};
use kube::client::{Body, ClientBuilder};
use tower::BoxError;
use tower::buffer::BufferLayer;
use tower::retry::{Policy, RetryLayer};

/// The bounds of the retry budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// Total time we may spend sleeping between attempts.
    pub max_total_delay: Duration,
    /// First backoff delay; doubled on each retry.
    pub base_delay: Duration,
    /// Cap of one backoff delay.
    pub max_delay: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_attempts: 6,
            max_total_delay: Duration::from_secs(15),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(4),
        }
    }
}

/// Whether an HTTP status is a transient server-side fault worth another attempt.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Whether a transport error is a dropped connection (retry) rather than a missing server.
pub fn is_connection_reset(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        if let Some(hyper_error) = e.downcast_ref::<hyper::Error>()
            && hyper_error.is_incomplete_message()
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The server's requested delay from a `Retry-After` header given in seconds.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The delay before retry number `retry` (1-based): exponential, capped, or the server's wish.
pub fn backoff_delay(budget: &Budget, retry: u32, server_wish: Option<Duration>) -> Duration {
    if let Some(wish) = server_wish {
        return wish;
    }
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    budget.base_delay.saturating_mul(factor).min(budget.max_delay)
}

/// Per-request retry state; tower clones the policy for each request, so it starts fresh.
#[derive(Debug, Clone)]
pub struct TransientRetry {
    budget: Budget,
    attempts: u32,
    slept: Duration,
}

impl TransientRetry {
    pub fn new(budget: Budget) -> Self {
        TransientRetry {
            budget,
            attempts: 1,
            slept: Duration::ZERO,
        }
    }

    /// Decides whether to try again after a transient fault, and after how long.
    /// `None` when the budget is spent (or the server asks for more than what is left).
    pub fn next(&mut self, server_wish: Option<Duration>) -> Option<Duration> {
        if self.attempts >= self.budget.max_attempts {
            return None;
        }
        let delay = backoff_delay(&self.budget, self.attempts, server_wish);
        if self.slept + delay > self.budget.max_total_delay {
            return None;
        }
        self.attempts += 1;
        self.slept += delay;
        Some(delay)
    }
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for TransientRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        let wish = match result {
            Ok(response) if is_transient_status(response.status().as_u16()) => {
                retry_after(response.headers())
            }
            Ok(_) => return None,
            Err(error) if is_connection_reset(error.as_ref()) => None,
            Err(_) => return None,
        };
        let delay = self.next(wish)?;
        tracing::debug!(method = %req.method(), path = req.uri().path(), ?delay, "transient fault, retrying");
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Streaming bodies cannot be replayed; every request of ours has a buffered body.
        let body = req.body().try_clone()?;
        let mut clone = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *clone.headers_mut() = req.headers().clone();
        *clone.extensions_mut() = req.extensions().clone();
        Some(clone)
    }
}

/// Builds the kube client: kube's default stack, then `outgoing` (credentials, request
/// timeout, `-v` log) on each attempt, and the retry layer around them.
///
/// # Errors
/// kube's own errors building the TLS/auth stack.
pub fn build_client(
    config: kube::Config,
    outgoing: super::outgoing::Outgoing,
) -> Result<kube::Client, kube::Error> {
    let builder = ClientBuilder::try_from(config)?;
    // kube's boxed service is not Clone; the buffer makes it so, which tower's retry needs.
    Ok(builder
        .with_layer(&BufferLayer::new(64))
        .with_layer(&outgoing)
        .with_layer(&RetryLayer::new(TransientRetry::new(Budget::default())))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_the_spec_list() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 422, 501] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn connection_resets_are_transient_but_refusals_are_not() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_connection_reset(&reset));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_connection_reset(&refused));
        // Wrapped inside another error, as hyper-util does.
        let wrapped = std::io::Error::other(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(
            !is_connection_reset(&wrapped),
            "the outer io::Error decides: kind Other"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Budget::default();
        assert_eq!(backoff_delay(&b, 1, None), Duration::from_millis(200));
        assert_eq!(backoff_delay(&b, 2, None), Duration::from_millis(400));
        assert_eq!(backoff_delay(&b, 3, None), Duration::from_millis(800));
        assert_eq!(backoff_delay(&b, 10, None), Duration::from_secs(4));
        assert_eq!(
            backoff_delay(&b, 1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn budget_bounds_attempts_and_total_delay() {
        let mut r = TransientRetry::new(Budget::default());
        let delays: Vec<_> = std::iter::from_fn(|| r.next(None)).collect();
        assert_eq!(delays.len(), 5, "6 attempts in all");
        assert!(delays.iter().sum::<Duration>() <= Duration::from_secs(15));
    }

    #[test]
    fn a_retry_after_beyond_the_budget_gives_up() {
        let mut r = TransientRetry::new(Budget::default());
        assert_eq!(r.next(Some(Duration::from_secs(60))), None);
        assert_eq!(r.next(Some(Duration::from_secs(1))), Some(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_header_in_seconds() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
