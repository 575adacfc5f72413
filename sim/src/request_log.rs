//! The log of every request the sim answered, in order, so tests can assert on what a client
//! sent (and that a dry run or a refused command wrote nothing).

use std::collections::VecDeque;
use std::sync::Mutex;

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    /// The request body (lossy UTF-8 for protobuf bodies).
    pub body: String,
    pub status: u16,
    /// The `Impersonate-User` header, so tests see `--as` reach the server.
    pub impersonate_user: Option<String>,
}

impl LoggedRequest {
    /// Whether this request persisted (or tried to persist) something: any method but
    /// GET/HEAD, except dry runs and access reviews, which never write.
    pub fn is_persisted_write(&self) -> bool {
        let read = self.method == "GET" || self.method == "HEAD";
        let dry_run = self.query.split('&').any(|p| p == "dryRun=All");
        let review = self.path.ends_with("accessreviews");
        !read && !dry_run && !review
    }
}

/// How many requests the log keeps: far more than any test sends, but a long-running
/// `orchscale-sim` (a watch-heavy try-it session) must not grow without bound.
const CAPACITY: usize = 200_000;

/// Append-only, thread-safe log of the newest [`CAPACITY`] requests.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<LoggedRequest>>,
    /// Response body bytes sent for logged requests (watch streams as they flow).
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<LoggedRequest>> {
        // Appends are single pushes: a poisoned lock still holds a consistent log.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn push(&self, request: LoggedRequest) {
        let mut entries = self.lock();
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    /// The counter of response body bytes, for the server to add to as bodies flow.
    pub fn sent_counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        std::sync::Arc::clone(&self.sent)
    }

    /// Response body bytes sent so far for logged requests.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn all(&self) -> Vec<LoggedRequest> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: &str) -> LoggedRequest {
        LoggedRequest {
            impersonate_user: None,
            method: method.into(),
            path: path.into(),
            query: query.into(),
            content_type: None,
            body: String::new(),
            status: 200,
        }
    }

    #[test]
    fn reads_dry_runs_and_reviews_are_not_persisted_writes() {
        assert!(!request("GET", "/api/v1/pods", "").is_persisted_write());
        assert!(
            !request(
                "PATCH",
                "/apis/apps/v1/namespaces/n/deployments/d",
                "dryRun=All&fieldManager=x"
            )
            .is_persisted_write()
        );
        assert!(
            !request(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                ""
            )
            .is_persisted_write()
        );
        assert!(
            request(
                "PATCH",
                "/apis/apps/v1/namespaces/n/deployments/d",
                "fieldManager=x"
            )
            .is_persisted_write()
        );
    }

    #[test]
    fn log_keeps_only_the_newest_requests() {
        let log = RequestLog::default();
        for i in 0..=CAPACITY {
            log.push(request("GET", &format!("/{i}"), ""));
        }
        let all = log.all();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].path, "/1");
        assert_eq!(all[CAPACITY - 1].path, format!("/{CAPACITY}"));
    }

    #[test]
    fn log_keeps_order_and_clears() {
        let log = RequestLog::default();
        log.push(request("GET", "/a", ""));
        log.push(request("PUT", "/b", ""));
        assert_eq!(
            log.all().iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["/a", "/b"]
        );
        log.clear();
        assert!(log.all().is_empty());
    }
}
