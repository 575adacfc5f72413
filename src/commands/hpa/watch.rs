//! `hpa --watch`: follows the HPA and its scaling events through watches (no polling) and
//! shows them as a live panel, until `--timeout` or Ctrl-C.
//!
//! Watching until the timeout is the normal end of a watch (exit 0). Ctrl-C is a normal end
//! too while only watching; after a change it exits 130 and says what was applied (SPEC 10).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::cli::format_duration;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::interrupt;
use crate::plan::hpa::{watch_change_line, watch_panel_lines};
use crate::report::Reporter;
use crate::report::panel::{LiveMode, TermPanel};

/// Watch failures in a row after which we give up (kube's watcher backs off and resumes first).
const MAX_WATCH_ERRORS_IN_A_ROW: u32 = 5;

/// What to watch and how it ends.
pub struct WatchSpec<'a> {
    /// Name of the HPA.
    pub name: &'a str,
    pub timeout: Duration,
    /// What the command already changed, when it did: Ctrl-C then exits 130 naming it.
    pub applied: Option<&'a str>,
    /// When the command started: events listed at the start of the watch that are this recent
    /// are news (the HPA may act on a change before the watch is up). `None` (watch alone):
    /// the last few are shown as context.
    pub since: Option<Timestamp>,
}

/// Events shown from the initial listing when watching alone.
const CONTEXT_EVENTS: usize = 5;

#[expect(
    clippy::large_enum_variant,
    reason = "one update is in flight at a time; boxing would only add an allocation per event"
)]
enum Update {
    Hpa(Result<Event<HorizontalPodAutoscaler>, watcher::Error>),
    Event(Result<Event<CoreEvent>, watcher::Error>),
}

/// The scaling events of one HPA, keyed by event name; an event counted up again (the same
/// reason and message repeating) is news as well.
#[derive(Debug, Default)]
pub struct HpaEvents {
    hpa: String,
    events: BTreeMap<String, CoreEvent>,
}

impl HpaEvents {
    pub fn new(hpa: &str) -> Self {
        HpaEvents {
            hpa: hpa.to_string(),
            events: BTreeMap::new(),
        }
    }

    /// Takes an event in; returns its one-line form when it is about this HPA and new (or
    /// repeated since last seen).
    pub fn observe(&mut self, event: CoreEvent) -> Option<String> {
        let involved = &event.involved_object;
        if involved.kind.as_deref() != Some("HorizontalPodAutoscaler")
            || involved.name.as_deref() != Some(self.hpa.as_str())
        {
            return None;
        }
        let name = event.metadata.name.clone().unwrap_or_default();
        let seen = self
            .events
            .get(&name)
            .is_some_and(|old| old.count == event.count && old.last_timestamp == event.last_timestamp);
        let line = line_of(&event);
        self.events.insert(name, event);
        (!seen).then_some(line)
    }

    /// The events of the initial listing worth a line: those at or after `since` (to the
    /// second, as events are stamped), else the last few.
    pub fn initial_lines(&self, since: Option<Timestamp>) -> Vec<String> {
        let mut events: Vec<&CoreEvent> = self.events.values().collect();
        events.sort_by_key(|e| event_time(e));
        let lines = events.iter().map(|e| (event_time(e), line_of(e)));
        match since {
            Some(since) => lines
                .filter(|(t, _)| t.is_some_and(|t| t.as_second() >= since.as_second()))
                .map(|(_, l)| l)
                .collect(),
            None => {
                let all: Vec<String> = lines.map(|(_, l)| l).collect();
                let skip = all.len().saturating_sub(CONTEXT_EVENTS);
                all.into_iter().skip(skip).collect()
            }
        }
    }

    pub fn all(&self) -> Vec<CoreEvent> {
        self.events.values().cloned().collect()
    }
}

fn event_time(e: &CoreEvent) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
}

fn line_of(event: &CoreEvent) -> String {
    format!(
        "event {}{}: {}",
        event.reason.as_deref().unwrap_or("?"),
        if event.type_.as_deref() == Some("Warning") {
            " (Warning)"
        } else {
            ""
        },
        event.message.as_deref().unwrap_or("").trim()
    )
}

/// Where the watch is: the last HPA seen and its events. Lives outside the watch future so
/// that it survives the timeout or Ctrl-C that drops the future.
struct State {
    latest: Option<HorizontalPodAutoscaler>,
    events: HpaEvents,
    panel: Option<TermPanel>,
}

/// Watches until `--timeout` or Ctrl-C and returns the HPA as last seen.
///
/// # Errors
/// [`Error::Interrupted`] on Ctrl-C after a change; a failure when the HPA is deleted or the
/// watches keep failing.
pub async fn watch(
    cluster: &Cluster,
    spec: &WatchSpec<'_>,
    reporter: &mut Reporter,
) -> Result<Option<HorizontalPodAutoscaler>, Error> {
    // Before anything is printed: a Ctrl-C answering the panel must reach this wait.
    let mut interrupt = interrupt::listen();
    let mode = reporter.live_mode();
    let mut state = State {
        latest: None,
        events: HpaEvents::new(spec.name),
        panel: (mode == LiveMode::Terminal).then(TermPanel::new),
    };
    reporter.info(&format!(
        "watching horizontalpodautoscaler/{} for {} (until --timeout; Ctrl-C stops)",
        spec.name,
        format_duration(spec.timeout)
    ));
    let outcome = {
        let work = watch_until_error(cluster, spec, mode, &mut state, reporter);
        tokio::select! {
            result = tokio::time::timeout(spec.timeout, work) => match result {
                Ok(failure) => Err(failure),
                Err(_) => Ok("--timeout"),
            },
            _ = interrupt.interrupted() => match spec.applied {
                Some(applied) => Err(Error::Interrupted { applied: applied.to_string() }),
                None => Ok("Ctrl-C"),
            },
        }
    };
    if let Some(panel) = state.panel.as_mut() {
        panel.clear();
    }
    let ended_by = outcome?;
    reporter.info(&format!(
        "stopped watching horizontalpodautoscaler/{} ({ended_by})",
        spec.name
    ));
    Ok(state.latest)
}

/// Runs until something goes wrong (the HPA deleted, watches failing); the timeout and
/// Ctrl-C end it from outside.
async fn watch_until_error(
    cluster: &Cluster,
    spec: &WatchSpec<'_>,
    mode: LiveMode,
    state: &mut State,
    reporter: &mut Reporter,
) -> Error {
    let name = spec.name;
    let hpas = cluster
        .watch_named::<HorizontalPodAutoscaler>(name)
        .map(Update::Hpa);
    // Events cannot be selected by involvedObject on every server: filtered here instead.
    let events = watcher::watcher(cluster.api::<CoreEvent>(), watcher::Config::default())
        .default_backoff()
        .map(Update::Event);
    let streams: Vec<std::pin::Pin<Box<dyn Stream<Item = Update> + Send>>> =
        vec![hpas.boxed(), events.boxed()];
    let mut updates = futures::stream::select_all(streams);
    let mut events_listed = false;
    let mut errors = 0u32;

    while let Some(update) = updates.next().await {
        let mut redraw = false;
        match update {
            Update::Hpa(Ok(Event::Apply(next) | Event::InitApply(next))) => {
                errors = 0;
                match (&state.latest, mode) {
                    (None, LiveMode::Plain) => {
                        for line in watch_panel_lines(&next, &state.events.all()) {
                            reporter.info(&line);
                        }
                    }
                    (Some(prev), LiveMode::Plain) => {
                        if let Some(line) = watch_change_line(prev, &next) {
                            reporter.info(&line);
                        }
                    }
                    _ => {}
                }
                state.latest = Some(next);
                redraw = true;
            }
            Update::Hpa(Ok(Event::Delete(_))) => {
                return Error::failed(
                    format!("horizontalpodautoscaler/{name} was deleted while watching"),
                    "the deployment keeps its current replica count; recreate the HPA with `hpa --create`",
                );
            }
            Update::Hpa(Ok(_)) => errors = 0,
            Update::Event(Ok(event)) => {
                errors = 0;
                match event {
                    Event::InitDone if !events_listed => {
                        events_listed = true;
                        if mode == LiveMode::Plain {
                            for line in state.events.initial_lines(spec.since) {
                                reporter.info(&line);
                            }
                        }
                    }
                    Event::Apply(e) | Event::InitApply(e) => {
                        if let Some(line) = state.events.observe(e) {
                            redraw = true;
                            if events_listed && mode == LiveMode::Plain {
                                reporter.info(&line);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Update::Hpa(Err(e)) => {
                if let Some(failure) = tolerate(&mut errors, e, "horizontalpodautoscalers", &cluster.server) {
                    return failure;
                }
            }
            Update::Event(Err(e)) => {
                if let Some(failure) = tolerate(&mut errors, e, "events", &cluster.server) {
                    return failure;
                }
            }
        }
        if redraw && let (Some(panel), Some(hpa)) = (state.panel.as_mut(), state.latest.as_ref()) {
            panel.draw(&watch_panel_lines(hpa, &state.events.all()));
        }
    }
    Error::failed(
        format!("the watch on horizontalpodautoscaler/{name} ended unexpectedly"),
        "run `kubectl orchscale hpa --watch` again",
    )
}

/// Counts a watch failure; the error to end with when it is a 403 or one too many in a row.
fn tolerate(errors: &mut u32, error: watcher::Error, what: &str, server: &str) -> Option<Error> {
    *errors += 1;
    tracing::debug!(%error, what, "watch failed; the watcher resumes");
    let forbidden = matches!(&error, watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403);
    (forbidden || *errors >= MAX_WATCH_ERRORS_IN_A_ROW).then(|| Error::Api {
        action: format!("watch {what}"),
        status: None,
        message: format!("{error} (server {server})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, kind: &str, object: &str, count: i32) -> CoreEvent {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "involvedObject": {"kind": kind, "name": object},
            "reason": "SuccessfulRescale", "type": "Normal", "count": count,
            "message": "New size: 5; reason: Current number of replicas below Spec.MinReplicas",
            "lastTimestamp": "2026-11-28T08:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn only_events_of_this_hpa_count() {
        let mut events = HpaEvents::new("orchestrator");
        assert_eq!(
            events.observe(event("a", "HorizontalPodAutoscaler", "orchestrator", 1)),
            Some("event SuccessfulRescale: New size: 5; reason: Current number of replicas below Spec.MinReplicas".into())
        );
        assert_eq!(events.observe(event("b", "Deployment", "orchestrator", 1)), None);
        assert_eq!(
            events.observe(event("c", "HorizontalPodAutoscaler", "other", 1)),
            None
        );
        assert_eq!(events.all().len(), 1);
    }

    #[test]
    fn repeats_are_news_but_replays_are_not() {
        let mut events = HpaEvents::new("orchestrator");
        assert!(
            events
                .observe(event("a", "HorizontalPodAutoscaler", "orchestrator", 1))
                .is_some()
        );
        assert_eq!(
            events.observe(event("a", "HorizontalPodAutoscaler", "orchestrator", 1)),
            None,
            "the same event again (a re-list) is not news"
        );
        assert!(
            events
                .observe(event("a", "HorizontalPodAutoscaler", "orchestrator", 2))
                .is_some(),
            "counted up: it happened again"
        );
    }

    #[test]
    fn initial_events_are_news_when_recent_else_context() {
        let mut events = HpaEvents::new("orchestrator");
        let mut old = event("old", "HorizontalPodAutoscaler", "orchestrator", 1);
        old.last_timestamp = serde_json::from_value(json!("2026-11-28T07:00:00Z")).unwrap();
        events.observe(old);
        events.observe(event("new", "HorizontalPodAutoscaler", "orchestrator", 1));
        let since: Timestamp = "2026-11-28T08:00:00.700Z".parse().unwrap();
        let lines = events.initial_lines(Some(since));
        assert_eq!(
            lines.len(),
            1,
            "same second counts, the hour before does not: {lines:?}"
        );
        assert!(lines[0].contains("New size: 5"));
        assert_eq!(events.initial_lines(None).len(), 2);
    }

    #[test]
    fn too_many_watch_failures_end_the_watch() {
        let mut errors = 0;
        for _ in 1..MAX_WATCH_ERRORS_IN_A_ROW {
            let e = watcher::Error::NoResourceVersion;
            assert!(tolerate(&mut errors, e, "events", "https://s").is_none());
        }
        let last = tolerate(
            &mut errors,
            watcher::Error::NoResourceVersion,
            "events",
            "https://s",
        );
        assert!(last.is_some_and(|e| e.exit_code() == 1));
    }
}
