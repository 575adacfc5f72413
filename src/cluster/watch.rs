//! Every watch of the plugin is built here: kube's watcher (re-list on 410 Gone, resume from
//! the last resourceVersion) with a capped backoff, its errors sorted into "retrying" and
//! "refused", and [`Reachability`] to say once when the API server stops and starts answering.
//!
//! A watch never gives up on its own: transient failures (connection errors, 5xx, 429) are
//! retried until the caller's deadline; only a refusal (403, 401, 404, ...) ends the stream.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};

use super::{Cluster, Object};

/// Which objects a watch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    /// One object, by name.
    Named(&'a str),
    /// The objects matching a label selector, e.g. `app=orchestrator`.
    Labels(&'a str),
    /// Every object of the kind in the namespace.
    All,
}

/// One item of a watch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item<K> {
    /// A (re-)list begins: objects that the list does not name again are gone.
    Relist,
    /// An object as it is now, from a list or a change.
    Object(K),
    /// The (re-)list is complete: from here on, objects are news.
    Listed,
    /// An object was deleted.
    Deleted(K),
    /// A request of the watch failed on the way (no answer, 5xx, 429); it is retried after a
    /// capped backoff. The text is for `-v`.
    Retrying(String),
    /// The server refuses the watch; the stream ends after this item.
    Refused(Refusal),
}

/// Why the server refused a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// HTTP status: 403 forbidden, 401 unauthorized, 404, ...
    pub(crate) status: u16,
    /// The server's message.
    pub(crate) message: String,
}

impl<K> Item<K> {
    /// The failure text of a [`Item::Retrying`].
    pub(crate) fn failure(&self) -> Option<&str> {
        match self {
            Item::Retrying(text) => Some(text),
            _ => None,
        }
    }
}

impl Refusal {
    pub(crate) fn is_forbidden(&self) -> bool {
        self.status == 403
    }
}

/// A watch on objects of kind `K` in the cluster's namespace; see the module text.
pub(crate) fn watch<K>(cluster: &Cluster, scope: Scope<'_>) -> impl Stream<Item = Item<K>> + Send + use<K>
where
    K: Object,
{
    let config = match scope {
        Scope::Named(name) => watcher::Config::default().fields(&format!("metadata.name={name}")),
        Scope::Labels(selector) => watcher::Config::default().labels(selector),
        Scope::All => watcher::Config::default(),
    };
    let inner = watcher::watcher(cluster.api::<K>(), config)
        .backoff(CappedBackoff::default())
        .filter_map(|result| std::future::ready(classify(result)))
        .boxed();
    // Ends after a refusal: the server will not change its mind while we wait.
    futures::stream::unfold((inner, false), |(mut inner, ended)| async move {
        if ended {
            return None;
        }
        let item = inner.next().await?;
        let refused = matches!(item, Item::Refused(_));
        Some((item, (inner, refused)))
    })
}

/// A watch of the objects matching `fields` (a field selector, e.g. `type=Warning`) that starts
/// at the server's current resourceVersion and never downloads what exists already: the version
/// comes from a list of at most one object, the watch follows from there (with bookmarks, so a
/// resumed watch stays within the server's history). For event streams, where only news
/// matter and the history of a busy namespace is megabytes. A 410 (the version expired while
/// the watch was down) starts again from the current version. The first [`Item::Listed`] says
/// the watch is in place; there is no [`Item::Relist`]. Failures are retried and refusals end
/// the stream, as for [`watch`].
///
/// `since`: a resourceVersion to start from instead (e.g. the one our write got), so that what
/// happened between the write and the watch is not lost.
pub(crate) fn watch_from_now<K>(
    cluster: &Cluster,
    fields: &str,
    since: Option<&str>,
) -> impl Stream<Item = Item<K>> + Send + use<K>
where
    K: Object,
{
    let state = FromNow {
        api: cluster.api::<K>(),
        fields: fields.to_string(),
        announced: false,
        version: since.filter(|v| !v.is_empty()).map(str::to_string),
        stream: None,
        backoff: CappedBackoff::default(),
        delay: None,
        opened_at: Instant::now(),
        ended: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    })
}

/// How long a watch request of [`watch_from_now`] lasts before it is resumed (the server's
/// own bound is 30–60 min; kube's watcher asks for 290 s).
const WATCH_TIMEOUT_SECS: u32 = 290;

type EventStream<K> = futures::stream::BoxStream<'static, Result<kube::core::WatchEvent<K>, kube::Error>>;

struct FromNow<K> {
    api: kube::Api<K>,
    fields: String,
    /// Whether [`Item::Listed`] was said (at once when the start version was given).
    announced: bool,
    /// The version to watch from; `None`: ask the server for its current one.
    version: Option<String>,
    stream: Option<EventStream<K>>,
    backoff: CappedBackoff,
    /// The wait before the next request, after a failure.
    delay: Option<Duration>,
    /// When the current watch request was answered.
    opened_at: Instant,
    ended: bool,
}

impl<K> FromNow<K>
where
    K: Object,
{
    async fn next_item(&mut self) -> Option<Item<K>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(delay) = self.delay.take() {
                tokio::time::sleep(delay).await;
            }
            if self.version.is_some() && !self.announced {
                self.announced = true;
                return Some(Item::Listed);
            }
            let Some(version) = self.version.clone() else {
                let params = kube::api::ListParams::default().fields(&self.fields).limit(1);
                match self.api.list(&params).await {
                    Ok(list) => match list.metadata.resource_version.filter(|v| !v.is_empty()) {
                        Some(version) => {
                            self.version = Some(version);
                            self.backoff.reset();
                            if std::mem::replace(&mut self.announced, true) {
                                continue;
                            }
                            return Some(Item::Listed);
                        }
                        None => return Some(self.retry("the list carries no resourceVersion".into())),
                    },
                    Err(e) => match self.failed(e) {
                        Some(item) => return Some(item),
                        None => continue,
                    },
                }
            };
            let Some(stream) = self.stream.as_mut() else {
                let params = kube::api::WatchParams::default()
                    .fields(&self.fields)
                    .timeout(WATCH_TIMEOUT_SECS);
                match self.api.watch(&params, &version).await {
                    Ok(stream) => {
                        self.stream = Some(stream.boxed());
                        self.opened_at = Instant::now();
                    }
                    Err(e) => {
                        if let Some(item) = self.failed(e) {
                            return Some(item);
                        }
                    }
                }
                continue;
            };
            use kube::core::WatchEvent;
            match stream.next().await {
                // The server ended the request (its timeout): resume from the last version,
                // after a back-off when it ended at once (a server that keeps cutting streams
                // must not be asked again in a tight loop).
                None => {
                    self.stream = None;
                    if self.opened_at.elapsed() < Duration::from_secs(1) {
                        self.delay = self.backoff.next();
                    }
                }
                Some(Ok(WatchEvent::Added(k) | WatchEvent::Modified(k))) => {
                    self.seen(&k);
                    return Some(Item::Object(k));
                }
                Some(Ok(WatchEvent::Deleted(k))) => {
                    self.seen(&k);
                    return Some(Item::Deleted(k));
                }
                Some(Ok(WatchEvent::Bookmark(b))) => self.version = Some(b.metadata.resource_version),
                Some(Ok(WatchEvent::Error(status))) => {
                    self.stream = None;
                    if let Some(item) = self.status(status.code, status.message) {
                        return Some(item);
                    }
                }
                Some(Err(e)) => {
                    self.stream = None;
                    if let Some(item) = self.failed(e) {
                        return Some(item);
                    }
                }
            }
        }
    }

    fn seen(&mut self, object: &K) {
        if let Some(version) = object.meta().resource_version.clone() {
            self.version = Some(version);
        }
        self.backoff.reset();
    }

    fn retry(&mut self, text: String) -> Item<K> {
        self.delay = self.backoff.next();
        Item::Retrying(text)
    }

    /// A failed request: `None` when it needs no attention (410: start again from now).
    fn failed(&mut self, error: kube::Error) -> Option<Item<K>> {
        tracing::debug!(%error, "watch request failed");
        match &error {
            kube::Error::Api(s) => self.status(s.code, s.message.clone()),
            _ => Some(self.retry(error.to_string())),
        }
    }

    fn status(&mut self, code: u16, message: String) -> Option<Item<K>> {
        if code == 410 {
            self.version = None;
            return None;
        }
        if is_refusal(code) {
            self.ended = true;
            return Some(Item::Refused(Refusal {
                status: code,
                message,
            }));
        }
        Some(self.retry(format!("{code}: {message}")))
    }
}

/// Sorts a watcher result; `None` for what needs no attention (410 Gone: the watcher re-lists,
/// which shows up as [`Item::Relist`]).
fn classify<K>(result: Result<Event<K>, watcher::Error>) -> Option<Item<K>> {
    match result {
        Ok(Event::Init) => Some(Item::Relist),
        Ok(Event::InitApply(k) | Event::Apply(k)) => Some(Item::Object(k)),
        Ok(Event::InitDone) => Some(Item::Listed),
        Ok(Event::Delete(k)) => Some(Item::Deleted(k)),
        Err(error) => {
            tracing::debug!(%error, "watch request failed");
            let status = match &error {
                watcher::Error::InitialListFailed(kube::Error::Api(s))
                | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some((s.code, s.message.clone())),
                watcher::Error::WatchError(s) => Some((s.code, s.message.clone())),
                _ => None,
            };
            match status {
                Some((410, _)) => None,
                Some((code, message)) if is_refusal(code) => Some(Item::Refused(Refusal {
                    status: code,
                    message,
                })),
                _ => Some(Item::Retrying(error.to_string())),
            }
        }
    }
}

/// Statuses that another attempt will not change: client errors other than 408 (timeout),
/// 410 (expired, re-listed) and 429 (too many requests).
fn is_refusal(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 410 | 429)
}

/// Exponential backoff from 250 ms, doubling, capped at 2 s, without end: a CLI waiting for a
/// rollout retries until its own deadline, and notices a recovered server within 2 s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CappedBackoff {
    next: Duration,
}

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(2);

impl Default for CappedBackoff {
    fn default() -> Self {
        CappedBackoff { next: FIRST_DELAY }
    }
}

impl Iterator for CappedBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        Some(delay)
    }
}

impl Backoff for CappedBackoff {
    fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

/// A change of the API server's reachability, worth one line to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// A watch request failed while the server was answering.
    Lost,
    /// A watch that had failed got an answer again, this long after the first failure.
    Back { after: Duration },
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transition::Lost => write!(f, "API server not answering; retrying…"),
            Transition::Back { after } => write!(
                f,
                "API server answering again (after {:.1}s); following on",
                after.as_secs_f64()
            ),
        }
    }
}

/// Whether the API server answers, across several watches (numbered by the caller): lost at
/// the first failed request, back when a watch that failed gets an answer again, so that one
/// outage is one pair of lines however many watches notice it. Items of a watch that has not
/// failed (a stream opened before the outage) say nothing about it.
#[derive(Debug, Default)]
pub(crate) struct Reachability {
    failing: BTreeSet<usize>,
    since: Option<Instant>,
}

impl Reachability {
    /// Watch `watch` failed a request.
    pub(crate) fn failed(&mut self, watch: usize, now: Instant) -> Option<Transition> {
        self.failing.insert(watch);
        if self.since.is_some() {
            return None;
        }
        self.since = Some(now);
        Some(Transition::Lost)
    }

    /// Watch `watch` got an answer.
    pub(crate) fn answered(&mut self, watch: usize, now: Instant) -> Option<Transition> {
        if !self.failing.remove(&watch) {
            return None;
        }
        let since = self.since.take()?;
        Some(Transition::Back {
            after: now.saturating_duration_since(since),
        })
    }

    /// Takes one item of watch `watch` into account: a failure ([`Item::Retrying`]) or not.
    pub(crate) fn saw(&mut self, watch: usize, failure: bool, now: Instant) -> Option<Transition> {
        if failure {
            self.failed(watch, now)
        } else {
            self.answered(watch, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Api(
            kube::core::Status::failure("nope", "Reason")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn errors_are_retried_unless_refused() {
        let forbidden = classify::<()>(Err(api_error(403)));
        assert!(matches!(forbidden, Some(Item::Refused(r)) if r.is_forbidden() && r.message == "nope"));
        assert!(matches!(
            classify::<()>(Err(api_error(401))),
            Some(Item::Refused(_))
        ));
        for code in [500, 503, 429, 408] {
            assert!(
                matches!(classify::<()>(Err(api_error(code))), Some(Item::Retrying(_))),
                "{code}"
            );
        }
        assert!(matches!(
            classify::<()>(Err(watcher::Error::NoResourceVersion)),
            Some(Item::Retrying(_))
        ));
        assert_eq!(classify::<()>(Err(api_error(410))), None, "the watcher re-lists");
        assert_eq!(classify(Ok(Event::Init::<()>)), Some(Item::Relist));
        assert_eq!(classify(Ok(Event::Apply(1))), Some(Item::Object(1)));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = CappedBackoff::default();
        let delays: Vec<u64> = b.by_ref().take(6).map(|d| d.as_millis() as u64).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.next(), Some(FIRST_DELAY));
    }

    #[test]
    fn one_outage_is_one_pair_of_lines_across_watches() {
        let mut r = Reachability::default();
        let t0 = Instant::now();
        assert_eq!(r.answered(3, t0), None, "a stream opened before says nothing");
        assert_eq!(r.failed(1, t0), Some(Transition::Lost));
        assert_eq!(r.failed(2, t0), None, "said once");
        assert_eq!(r.failed(1, t0), None);
        assert_eq!(r.answered(3, t0), None, "a watch that never failed");
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(
            r.answered(2, t1),
            Some(Transition::Back {
                after: Duration::from_secs(3)
            })
        );
        assert_eq!(r.answered(1, t1), None, "back is said once too");
        assert_eq!(r.saw(1, true, t1), Some(Transition::Lost), "a new outage");
        assert_eq!(
            Transition::Lost.to_string(),
            "API server not answering; retrying…"
        );
    }
}
