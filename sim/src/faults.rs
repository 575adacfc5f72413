//! HTTP-level faults the tests inject: failing requests (with Retry-After), cut or expired
//! watches, latency, RBAC denials (403 on the API and `allowed: false` in access reviews), and
//! the status the orchestrator's `/health` answers through the service proxy.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Fails the next `count` requests matching `method` and `resource` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// `"PATCH"`; `None` matches any method.
    pub method: Option<String>,
    /// `"deployments"`, or with a subresource `"deployments/scale"`; `None` matches any resource.
    pub resource: Option<String>,
    /// 429, 500, 503, 409, …; 0 drops the connection without an answer (a connection reset).
    pub status: u16,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// How many matching requests fail before the rule is spent.
    pub count: usize,
}

#[derive(Debug)]
struct State {
    rules: Vec<FaultRule>,
    cut_watches_after: usize,
    expire_next_watch: bool,
    latency: Duration,
    denied: Vec<(String, String)>,
    health_status: u16,
}

/// Every fault knob; all methods take `&self`, so tests share it with the running server.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                rules: Vec::new(),
                cut_watches_after: 0,
                expire_next_watch: false,
                latency: Duration::ZERO,
                denied: Vec::new(),
                health_status: 200,
            }),
        }
    }
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (each write is one assignment).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails the next `rule.count` requests that match the rule.
    pub fn fail_next(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// Ends each watch stream after `events` events (bookmarks not counted); 0 turns this off.
    pub fn cut_watches_after(&self, events: usize) {
        self.lock().cut_watches_after = events;
    }

    /// The next watch that names a resourceVersion gets 410 Gone (an `ERROR` event), as after a
    /// compaction.
    pub fn expire_next_watch(&self) {
        self.lock().expire_next_watch = true;
    }

    /// Delay added before every API request is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Denies `verb` on `resource` (`"patch"`, `"deployments/scale"`; `"*"` matches any): the API
    /// answers 403 and access reviews answer `allowed: false`.
    pub fn deny(&self, verb: &str, resource: &str) {
        self.lock().denied.push((verb.to_owned(), resource.to_owned()));
    }

    /// Lifts every denial.
    pub fn allow_all(&self) {
        self.lock().denied.clear();
    }

    /// The status code the orchestrator's `/health` answers through the service proxy.
    pub fn set_health_status(&self, status: u16) {
        self.lock().health_status = status;
    }

    /// Removes every fault and restores the defaults.
    pub fn reset(&self) {
        *self.lock() = Self::default()
            .state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The failure to inject for this request, if a rule answering with a status matches;
    /// spends one use of the rule.
    pub(crate) fn take_failure(&self, method: &str, resource: &str) -> Option<(u16, Option<u64>)> {
        self.take_rule(method, resource, |status| status != 0)
    }

    /// Whether to drop this request's connection (a status-0 rule matches); spends one use.
    pub(crate) fn take_reset(&self, method: &str, resource: &str) -> bool {
        self.take_rule(method, resource, |status| status == 0).is_some()
    }

    fn take_rule(
        &self,
        method: &str,
        resource: &str,
        kind: impl Fn(u16) -> bool,
    ) -> Option<(u16, Option<u64>)> {
        let mut state = self.lock();
        let index = state.rules.iter().position(|r| {
            r.count > 0
                && kind(r.status)
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.resource.as_deref().is_none_or(|res| res == resource)
        })?;
        let rule = &mut state.rules[index];
        rule.count -= 1;
        let failure = (rule.status, rule.retry_after);
        if rule.count == 0 {
            state.rules.remove(index);
        }
        Some(failure)
    }

    pub(crate) fn is_denied(&self, verb: &str, resource: &str) -> bool {
        self.lock()
            .denied
            .iter()
            .any(|(v, r)| (v == "*" || v == verb) && (r == "*" || r == resource))
    }

    pub(crate) fn watch_cut_after(&self) -> usize {
        self.lock().cut_watches_after
    }

    /// Whether this watch must expire; clears the flag.
    pub(crate) fn take_expire_watch(&self) -> bool {
        std::mem::take(&mut self.lock().expire_next_watch)
    }

    pub(crate) fn latency(&self) -> Duration {
        self.lock().latency
    }

    pub(crate) fn health_status(&self) -> u16 {
        self.lock().health_status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fail_matching_requests_count_times() {
        let faults = Faults::default();
        faults.fail_next(FaultRule {
            method: Some("PATCH".into()),
            resource: Some("deployments/scale".into()),
            status: 429,
            retry_after: Some(1),
            count: 2,
        });
        assert_eq!(faults.take_failure("GET", "deployments/scale"), None);
        assert_eq!(faults.take_failure("PATCH", "deployments"), None);
        assert_eq!(
            faults.take_failure("patch", "deployments/scale"),
            Some((429, Some(1)))
        );
        assert_eq!(
            faults.take_failure("PATCH", "deployments/scale"),
            Some((429, Some(1)))
        );
        assert_eq!(faults.take_failure("PATCH", "deployments/scale"), None);
    }

    #[test]
    fn reset_rules_are_separate_from_status_rules() {
        let faults = Faults::default();
        faults.fail_next(FaultRule {
            method: None,
            resource: None,
            status: 0,
            retry_after: None,
            count: 1,
        });
        assert_eq!(faults.take_failure("GET", "pods"), None);
        assert!(faults.take_reset("GET", "pods"));
        assert!(!faults.take_reset("GET", "pods"));
    }

    #[test]
    fn denials_match_verb_and_resource_with_wildcards() {
        let faults = Faults::default();
        faults.deny("patch", "deployments/scale");
        assert!(faults.is_denied("patch", "deployments/scale"));
        assert!(!faults.is_denied("patch", "deployments"));
        faults.deny("*", "configmaps");
        assert!(faults.is_denied("get", "configmaps"));
        faults.reset();
        assert!(!faults.is_denied("get", "configmaps"));
        assert_eq!(faults.health_status(), 200);
    }

    #[test]
    fn expire_next_watch_fires_once() {
        let faults = Faults::default();
        faults.expire_next_watch();
        assert!(faults.take_expire_watch());
        assert!(!faults.take_expire_watch());
    }
}
