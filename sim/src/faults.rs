//! HTTP-level faults the tests inject: failing requests (with Retry-After), cut or expired
//! watches, latency, RBAC denials (403 on the API and `allowed: false` in access reviews), the
//! status the orchestrator's `/health` answers through the service proxy, and the faults of
//! lost and slow answers: writes committed and then dropped or answered late, API outages, and
//! a second writer that changes an object just before a client's write.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

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

/// What happens to a matching request once the server has handled it (and stored its change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterCommit {
    /// The connection is dropped without an answer, as by a reset after the write reached etcd.
    Drop,
    /// The answer is held back this long; the store already holds the change meanwhile.
    Hold(Duration),
}

/// How every API request fails during an [`Faults::outage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageMode {
    /// The connection is dropped without an answer (an unreachable server, a reset by a proxy).
    Drop,
    /// 503 ServiceUnavailable, as a load balancer in front of a restarting apiserver answers.
    Unavailable,
}

/// Which requests a rule matches: `None` matches any method or resource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Match {
    method: Option<String>,
    resource: Option<String>,
}

impl Match {
    fn new(method: Option<&str>, resource: Option<&str>) -> Self {
        Self {
            method: method.map(str::to_owned),
            resource: resource.map(str::to_owned),
        }
    }

    fn matches(&self, method: &str, resource: &str) -> bool {
        matches(self.method.as_deref(), self.resource.as_deref(), method, resource)
    }
}

fn matches(rule_method: Option<&str>, rule_resource: Option<&str>, method: &str, resource: &str) -> bool {
    rule_method.is_none_or(|m| m.eq_ignore_ascii_case(method)) && rule_resource.is_none_or(|r| r == resource)
}

#[derive(Debug)]
struct CommitRule {
    on: Match,
    count: usize,
    after: AfterCommit,
}

#[derive(Debug)]
struct SecondWriter {
    on: Match,
    patch: Value,
}

#[derive(Debug)]
struct State {
    rules: Vec<FaultRule>,
    cut_watches_after: usize,
    expire_next_watch: bool,
    latency: Duration,
    denied: Vec<(String, String)>,
    health_status: u16,
    commit_rules: Vec<CommitRule>,
    outage: Option<(Instant, OutageMode)>,
    second_writers: Vec<SecondWriter>,
}

/// Every fault knob; all methods take `&self`, so tests share it with the running server.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
    /// Bumped when an outage starts, so open watch streams end at once.
    outages: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            state: Mutex::new(initial_state()),
            outages: watch::Sender::new(0),
        }
    }
}

fn initial_state() -> State {
    State {
        rules: Vec::new(),
        cut_watches_after: 0,
        expire_next_watch: false,
        latency: Duration::ZERO,
        denied: Vec::new(),
        health_status: 200,
        commit_rules: Vec::new(),
        outage: None,
        second_writers: Vec::new(),
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
        *self.lock() = initial_state();
    }

    /// The next `count` requests matching `method` and `resource` (as [`FaultRule`] matches;
    /// `None` matches any) are applied (stored, resourceVersion bumped, controllers react) and
    /// then their connection is dropped without an answer: a reset after the write reached etcd.
    /// Dry runs (`dryRun=All`) do not match, since they commit nothing.
    pub fn commit_then_drop(&self, method: Option<&str>, resource: Option<&str>, count: usize) {
        self.push_commit_rule(method, resource, count, AfterCommit::Drop);
    }

    /// The next `count` matching requests (dry runs excluded) are applied, then their answer is
    /// held back for `hold`; the store holds the change meanwhile.
    pub fn hold_answer(&self, method: Option<&str>, resource: Option<&str>, count: usize, hold: Duration) {
        self.push_commit_rule(method, resource, count, AfterCommit::Hold(hold));
    }

    fn push_commit_rule(
        &self,
        method: Option<&str>,
        resource: Option<&str>,
        count: usize,
        after: AfterCommit,
    ) {
        if count > 0 {
            self.lock().commit_rules.push(CommitRule {
                on: Match::new(method, resource),
                count,
                after,
            });
        }
    }

    /// For `duration` from now every API request fails as `mode` says and open watches are cut
    /// at once; afterwards everything works again. The `/sim/` admin endpoint is not affected.
    /// A zero duration ends an outage in progress.
    pub fn outage(&self, duration: Duration, mode: OutageMode) {
        self.lock().outage = (!duration.is_zero()).then(|| (Instant::now() + duration, mode));
        if !duration.is_zero() {
            self.outages.send_modify(|epoch| *epoch += 1);
        }
    }

    /// On the next write request matching `method` and `resource` (dry runs excluded; for a
    /// subresource such as `deployments/scale`, the object it belongs to), before handling it,
    /// `patch` (a JSON merge patch) is applied to the stored object as another client would:
    /// a new resourceVersion, and a generation bump when the spec changes. A write that carries
    /// the resourceVersion it read before then meets 409 Conflict.
    pub fn second_writer(&self, method: Option<&str>, resource: Option<&str>, patch: Value) {
        self.lock().second_writers.push(SecondWriter {
            on: Match::new(method, resource),
            patch,
        });
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

    /// What to do with this request after handling it, if a commit rule matches; spends one use.
    pub(crate) fn take_after_commit(&self, method: &str, resource: &str) -> Option<AfterCommit> {
        let mut state = self.lock();
        let index = state
            .commit_rules
            .iter()
            .position(|r| r.count > 0 && r.on.matches(method, resource))?;
        let rule = &mut state.commit_rules[index];
        rule.count -= 1;
        let after = rule.after;
        if rule.count == 0 {
            state.commit_rules.remove(index);
        }
        Some(after)
    }

    /// The failure mode of an outage in progress.
    pub(crate) fn outage_now(&self) -> Option<OutageMode> {
        let mut state = self.lock();
        match state.outage {
            Some((until, mode)) if Instant::now() < until => Some(mode),
            Some(_) => {
                state.outage = None;
                None
            }
            None => None,
        }
    }

    /// Changes when an outage starts: watch streams end on it.
    pub(crate) fn outage_starts(&self) -> watch::Receiver<u64> {
        self.outages.subscribe()
    }

    /// The merge patch a second writer applies before this request, if one matches; spent once.
    pub(crate) fn take_second_writer(&self, method: &str, resource: &str) -> Option<Value> {
        let mut state = self.lock();
        let index = state
            .second_writers
            .iter()
            .position(|w| w.on.matches(method, resource))?;
        Some(state.second_writers.remove(index).patch)
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
                && matches(r.method.as_deref(), r.resource.as_deref(), method, resource)
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
    fn commit_rules_match_count_times_and_keep_their_kind() {
        let faults = Faults::default();
        faults.commit_then_drop(Some("PATCH"), Some("deployments"), 1);
        faults.hold_answer(None, Some("configmaps"), 2, Duration::from_secs(3));
        assert_eq!(faults.take_after_commit("GET", "deployments"), None);
        assert_eq!(
            faults.take_after_commit("patch", "deployments"),
            Some(AfterCommit::Drop)
        );
        assert_eq!(faults.take_after_commit("PATCH", "deployments"), None);
        let hold = Some(AfterCommit::Hold(Duration::from_secs(3)));
        assert_eq!(faults.take_after_commit("PUT", "configmaps"), hold);
        assert_eq!(faults.take_after_commit("PATCH", "configmaps"), hold);
        assert_eq!(faults.take_after_commit("PATCH", "configmaps"), None);
    }

    #[test]
    fn outages_end_and_signal_watches() {
        let faults = Faults::default();
        let mut starts = faults.outage_starts();
        assert_eq!(faults.outage_now(), None);
        faults.outage(Duration::from_secs(60), OutageMode::Unavailable);
        assert!(starts.has_changed().unwrap_or(false));
        starts.mark_unchanged();
        assert_eq!(faults.outage_now(), Some(OutageMode::Unavailable));
        faults.outage(Duration::ZERO, OutageMode::Drop);
        assert_eq!(faults.outage_now(), None);
        assert!(
            !starts.has_changed().unwrap_or(true),
            "ending an outage cuts nothing"
        );
    }

    #[test]
    fn second_writers_fire_once_on_a_match() {
        let faults = Faults::default();
        faults.second_writer(Some("PATCH"), Some("deployments"), serde_json::json!({"a": 1}));
        assert_eq!(faults.take_second_writer("PATCH", "deployments/scale"), None);
        assert_eq!(
            faults.take_second_writer("PATCH", "deployments"),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(faults.take_second_writer("PATCH", "deployments"), None);
    }

    #[test]
    fn expire_next_watch_fires_once() {
        let faults = Faults::default();
        faults.expire_next_watch();
        assert!(faults.take_expire_watch());
        assert!(!faults.take_expire_watch());
    }
}
