//! core/v1 Events as the controllers record them: named `<object>.<hex>`, deduplicated by
//! raising `count` and `lastTimestamp` when the same reason and message repeat.

use serde_json::{Value, json};

use super::common::{fnv32_of_json, name, namespace, uid};
use crate::store::{ObjectKey, Store, UpdatePart, now_rfc3339};

/// Normal or Warning, as `Event.type` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// Records an event about `involved` (a stored object with apiVersion/kind/metadata).
pub fn record(
    store: &Store,
    involved: &Value,
    severity: Severity,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = namespace(involved);
    let kind = involved["kind"].as_str().unwrap_or_default();
    // The same object, reason and message always map to the same name, which is how
    // repeats find the event to count up (the real recorder keeps a cache for this).
    let identity = json!([kind, name(involved), uid(involved), reason, message]);
    let event_name = format!("{}.{:08x}", name(involved), fnv32_of_json(&identity));
    let key = ObjectKey::new("events", ns, &event_name);
    let now = now_rfc3339();
    let bumped = store.modify(&key, UpdatePart::Main, |event| {
        let count = event["count"].as_i64().unwrap_or(1);
        event["count"] = json!(count + 1);
        event["lastTimestamp"] = json!(now);
        true
    });
    if bumped.is_ok() {
        return;
    }
    let severity = match severity {
        Severity::Normal => "Normal",
        Severity::Warning => "Warning",
    };
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name, "namespace": ns},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": kind,
            "name": name(involved),
            "namespace": ns,
            "uid": uid(involved),
            "resourceVersion": involved["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": severity,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": null,
    });
    // A concurrent create of the same event only loses one count; nothing to report.
    let _ = store.create(&key, event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_count_up_on_one_event() {
        let store = Store::new();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "ns", "uid": "u1"}});
        record(&store, &pod, Severity::Warning, "BackOff", "Back-off", "kubelet");
        record(&store, &pod, Severity::Warning, "BackOff", "Back-off", "kubelet");
        record(
            &store,
            &pod,
            Severity::Normal,
            "Started",
            "Started container web",
            "kubelet",
        );
        let (events, _) = store.list("events", Some("ns"));
        assert_eq!(events.len(), 2);
        let backoff = events
            .iter()
            .find(|e| e["reason"] == "BackOff")
            .expect("backoff event");
        assert_eq!(backoff["count"], 2);
        assert_eq!(backoff["type"], "Warning");
        assert_eq!(backoff["involvedObject"]["name"], "web-1");
        assert!(name(backoff).starts_with("web-1."));
    }
}
