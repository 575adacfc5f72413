//! `hpa --watch`: follows the HPA and its scaling events through watches (no polling) and
//! shows them as a live panel, until `--timeout` or Ctrl-C.
//!
//! Watching until the timeout is the normal end of a watch (exit 0). Ctrl-C is a normal end
//! too while only watching; after a change it exits 130 and says what was applied (SPEC 10).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::jiff::Timestamp;

use crate::cli::format_duration;
use crate::cluster::Cluster;
use crate::cluster::watch::{self, Item, Reachability, Scope};
use crate::error::Error;
use crate::interrupt;
use crate::plan::hpa::{watch_change_line, watch_panel_lines};
use crate::report::Reporter;
use crate::report::panel::{LiveMode, TermPanel};

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
    Hpa(Item<HorizontalPodAutoscaler>),
    Event(Item<CoreEvent>),
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

/// Runs until something goes wrong (the HPA deleted or its watch refused); the timeout and
/// Ctrl-C end it from outside. An API outage is ridden out, said once when it starts and once
/// when it ends.
async fn watch_until_error(
    cluster: &Cluster,
    spec: &WatchSpec<'_>,
    mode: LiveMode,
    state: &mut State,
    reporter: &mut Reporter,
) -> Error {
    let name = spec.name;
    let hpas = watch::watch::<HorizontalPodAutoscaler>(cluster, Scope::Named(name)).map(Update::Hpa);
    // Events cannot be selected by involvedObject on every server: filtered here instead.
    let events = watch::watch::<CoreEvent>(cluster, Scope::All).map(Update::Event);
    let streams: Vec<std::pin::Pin<Box<dyn Stream<Item = Update> + Send>>> =
        vec![hpas.boxed(), events.boxed()];
    let mut updates = futures::stream::select_all(streams);
    let mut events_listed = false;
    let mut hpa_listed = false;
    let mut reachability = Reachability::default();

    while let Some(update) = updates.next().await {
        let (watch, failure) = match &update {
            Update::Hpa(item) => (0, item.failure()),
            Update::Event(item) => (1, item.failure()),
        };
        if let Some(failure) = failure {
            reporter.detail(&format!("a watch request failed, retrying: {failure}"));
        }
        if let Some(transition) = reachability.saw(watch, failure.is_some(), Instant::now())
            && mode == LiveMode::Plain
        {
            reporter.info(&transition.to_string());
        }
        let mut redraw = false;
        match update {
            Update::Hpa(Item::Object(next)) => {
                hpa_listed = true;
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
            Update::Hpa(Item::Relist) => hpa_listed = false,
            Update::Hpa(Item::Deleted(_)) => return deleted(name),
            // A (re-)list that does not name it: deleted while the watch was down.
            Update::Hpa(Item::Listed) if !hpa_listed && state.latest.is_some() => return deleted(name),
            Update::Hpa(Item::Refused(refusal)) => {
                return Error::failed(
                    format!(
                        "cannot watch horizontalpodautoscaler/{name} in namespace {} (HTTP {}: {})",
                        cluster.namespace, refusal.status, refusal.message
                    ),
                    match spec.applied {
                        Some(applied) => format!("{applied}; check the HPA with `kubectl orchscale hpa`"),
                        None => {
                            "ask a cluster admin for list and watch on horizontalpodautoscalers".to_string()
                        }
                    },
                );
            }
            Update::Hpa(_) => {}
            Update::Event(Item::Listed) if !events_listed => {
                events_listed = true;
                if mode == LiveMode::Plain {
                    for line in state.events.initial_lines(spec.since) {
                        reporter.info(&line);
                    }
                }
            }
            Update::Event(Item::Object(e)) => {
                if let Some(line) = state.events.observe(e) {
                    redraw = true;
                    if events_listed && mode == LiveMode::Plain {
                        reporter.info(&line);
                    }
                }
            }
            Update::Event(Item::Refused(refusal)) => reporter.warn(&format!(
                "scaling events are not shown: cannot watch events in namespace {} (HTTP {})",
                cluster.namespace, refusal.status
            )),
            Update::Event(_) => {}
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

fn deleted(name: &str) -> Error {
    Error::failed(
        format!("horizontalpodautoscaler/{name} was deleted while watching"),
        "the deployment keeps its current replica count; recreate the HPA with `hpa --create`",
    )
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
}
