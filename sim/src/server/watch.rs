//! Watch streams: newline-delimited `{"type","object"}` events replayed from the store's history
//! after the requested resourceVersion, then followed live; BOOKMARK events when asked,
//! `timeoutSeconds`, an `ERROR` event with a 410 Expired Status for compacted versions, and
//! the faults that cut streams short.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::store::{EventType, StoreError, StoreEvent, Stored};

use super::registry::ResourceInfo;
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::{ApiRequest, App, stream_body};

/// How often a watch that allows bookmarks gets one (the apiserver's is about a minute; shorter
/// here so clients' bookmark handling is exercised in short tests).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);

/// The filters and position of one watch stream.
struct Stream {
    info: &'static ResourceInfo,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    receiver: broadcast::Receiver<StoreEvent>,
    pending: VecDeque<Bytes>,
    /// The newest resourceVersion this stream has seen (delivered or filtered out).
    last_rv: u64,
    bookmark_at: Option<Instant>,
    deadline: Option<Instant>,
    /// Events still allowed before the stream is cut (fault injection); `None`: unlimited.
    budget: Option<usize>,
    /// Objects go out as one-row Tables (`kubectl get -w` asks for them).
    table: bool,
    done: bool,
    /// Changes when an injected outage starts: the stream ends then.
    outages: tokio::sync::watch::Receiver<u64>,
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// [`line`] of an object already encoded, byte for byte the same (serde_json writes an object's
/// keys sorted: `object`, then `type`).
fn encoded_line(event_type: &str, object: &[u8]) -> Bytes {
    let mut text = Vec::with_capacity(object.len() + event_type.len() + 24);
    text.extend_from_slice(b"{\"object\":");
    text.extend_from_slice(object);
    text.extend_from_slice(b",\"type\":");
    text.extend_from_slice(Value::from(event_type).to_string().as_bytes());
    text.extend_from_slice(b"}\n");
    Bytes::from(text)
}

fn bookmark(info: &ResourceInfo, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": metadata}),
    )
}

impl Stream {
    fn selects(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// Queues an event unless it was already replayed or is filtered out. As the apiserver's
    /// watch cache does, a change that moves an object into the selection is ADDED and one that
    /// moves it out is DELETED (carrying the object's new state, where the apiserver sends the
    /// old one: clients key on its name).
    fn offer(&mut self, event: &StoreEvent) {
        if event.resource_version <= self.last_rv {
            return;
        }
        self.last_rv = event.resource_version;
        let in_scope = event.key.resource == self.info.store_name
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| &event.key.namespace == ns);
        if !in_scope {
            return;
        }
        let now = self.selects(&event.object);
        let event_type = match (event.event_type, &event.previous) {
            (EventType::Modified, Some(previous)) => match (self.selects(previous), now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return,
            },
            _ if now => event.event_type.as_str(),
            _ => return,
        };
        self.push_event(event_type, &event.object);
    }

    /// Queues one event; the object goes out in its stored encoding, made once for every
    /// watch and list that sends this version (see [`Stored`]).
    fn push_event(&mut self, event_type: &str, object: &Stored) {
        if self.done {
            return;
        }
        if self.table {
            let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            let table = super::table::render(self.info, std::slice::from_ref(object.value()), &metadata);
            self.pending.push_back(line(event_type, &table));
        } else {
            let object = super::list::encoded(self.info, object);
            self.pending.push_back(encoded_line(event_type, &object));
        }
        if let Some(budget) = &mut self.budget {
            *budget -= 1;
            if *budget == 0 {
                self.done = true;
            }
        }
    }

    /// The next chunk of the response, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if self.done {
                return None;
            }
            let bookmark_at = self.bookmark_at;
            let deadline = self.deadline;
            // Timers first, in order: a due bookmark goes out before a due deadline ends the
            // stream (even when the task was starved past both), and a steady flow of events
            // cannot starve either of them.
            tokio::select! {
                biased;
                () = sleep_until(bookmark_at) => {
                    self.pending.push_back(bookmark(self.info, self.last_rv, false));
                    self.bookmark_at = Some(Instant::now() + BOOKMARK_INTERVAL);
                }
                () = sleep_until(deadline) => return None,
                Ok(()) = self.outages.changed() => return None,
                received = self.receiver.recv() => match received {
                    Ok(event) => self.offer(&event),
                    // Lagged: events were lost, so the stream ends and the client re-lists.
                    Err(_) => return None,
                },
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn streaming_response(stream: Stream) -> Response {
    let body = futures::stream::unfold(stream, |mut stream| async move {
        stream
            .next()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), stream))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        stream_body(body),
    )
        .into_response()
}

/// A watch that fails at once with 410: one `ERROR` event, as the apiserver's watch cache sends.
fn expired_response(requested: u64, oldest: u64) -> Response {
    let status = ApiError::expired(requested, oldest).to_status();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        line("ERROR", &status),
    )
        .into_response()
}

pub fn serve(app: &App, request: &ApiRequest) -> Result<Response, ApiError> {
    let info = request.target.info;
    let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(&super::events_v1::field_selector(
        info,
        request.param("fieldSelector").unwrap_or(""),
    ))?;
    let timeout = request.number("timeoutSeconds")?;
    let requested = request
        .param("resourceVersion")
        .filter(|rv| !rv.is_empty() && *rv != "0");
    let send_initial = request.flag("sendInitialEvents") || requested.is_none();
    let since = match requested {
        Some(rv) => rv
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        None => 0,
    };
    if requested.is_some() && app.faults.take_expire_watch() {
        return Ok(expired_response(since, app.store.resource_version()));
    }
    let (initial, start) = if send_initial {
        let (items, rv) = super::list::selected(app, request)?;
        (items, rv)
    } else {
        (Vec::new(), since)
    };
    let (past, receiver) = match app.store.watch_from(info.store_name, start) {
        Ok(watch) => watch,
        Err(StoreError::Gone { oldest }) => return Ok(expired_response(since, oldest)),
        Err(e) => return Err(ApiError::from_store(e, info, "")),
    };
    let now = Instant::now();
    let cut_after = app.faults.watch_cut_after();
    let mut stream = Stream {
        info,
        namespace: request.target.namespace.clone(),
        labels,
        fields,
        receiver,
        pending: VecDeque::new(),
        last_rv: start,
        bookmark_at: request
            .flag("allowWatchBookmarks")
            .then(|| now + BOOKMARK_INTERVAL),
        deadline: timeout.map(|t| now + Duration::from_secs(t)),
        budget: (cut_after > 0).then_some(cut_after),
        table: super::table::wants_table(&request.accept),
        done: false,
        outages: app.faults.outage_starts(),
    };
    for object in &initial {
        stream.push_event("ADDED", object);
    }
    if request.flag("sendInitialEvents") && request.flag("allowWatchBookmarks") {
        stream.pending.push_back(bookmark(info, start, true));
    }
    for event in &past {
        stream.offer(event);
    }
    Ok(streaming_response(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry;

    #[test]
    fn bookmark_lines_carry_kind_and_version() {
        let info = registry::find("apps", "v1", "deployments").expect("registered");
        let chunk = bookmark(info, 42, true);
        let value: Value = serde_json::from_slice(&chunk).expect("json line");
        assert_eq!(value["type"], "BOOKMARK");
        assert_eq!(value["object"]["kind"], "Deployment");
        assert_eq!(value["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(
            value["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert!(chunk.ends_with(b"\n"));
    }

    #[test]
    fn an_encoded_event_line_is_the_line_of_the_object() {
        let object = json!({"kind": "Pod", "metadata": {"name": "p", "labels": {"b": "2", "a": "é\""}},
            "status": {"phase": "Running"}});
        let encoded = serde_json::to_vec(&object).unwrap();
        for event_type in ["ADDED", "MODIFIED", "DELETED"] {
            assert_eq!(encoded_line(event_type, &encoded), line(event_type, &object));
        }
    }
}
