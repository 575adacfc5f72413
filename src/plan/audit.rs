//! The audit trail: the `orchscale.io/last-change` annotation, built and parsed here.
//!
//! Each change records on the changed object what command made it, when, by whom (the
//! kubeconfig user when known) and the values before, so that `undo` can restore them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::PlanError;

/// Annotation key of the audit record.
pub const ANNOTATION: &str = "orchscale.io/last-change";

/// Version of the record format this build writes. Version 1 records (no `v`, no `id`) were
/// written before the record travelled in the same write as the change; they still parse.
pub const RECORD_VERSION: u32 = 2;

/// The audit record stored (as JSON text) in the annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastChange {
    /// The record format's version ([`RECORD_VERSION`]); 1 when absent.
    #[serde(default = "version_one")]
    pub v: u32,
    /// Unique per write: a write whose answer was lost is recognised by finding its id stored.
    /// Absent in version 1 records.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The command, e.g. `scale --replicas 5`.
    pub command: String,
    /// RFC 3339 time of the change.
    pub time: String,
    /// The kubeconfig user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The changed object, e.g. `deployment/orchestrator`.
    pub object: String,
    /// Field path -> value before the change (`null` when it was unset).
    pub previous: BTreeMap<String, Value>,
    /// Field path -> value the change wrote (`null` when it removed the field), so that `undo`
    /// can tell whether someone changed the field since. Absent in hand-written records.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub written: BTreeMap<String, Value>,
    /// The profile application (`apply -f`, `recommend --apply`) this change is one step of,
    /// shared by its steps' records, so that `undo` reverts the whole application as one: the
    /// one mechanism for a change of several objects. Absent otherwise.
    ///
    /// Unknown keys are ignored when a record is read (no `deny_unknown_fields`): records of
    /// builds that marked such changes with a `group` key still parse, and undo one object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
}

impl LastChange {
    /// Builds the record; `previous` comes from the plan's changes (the `before` values).
    pub fn new(
        command: impl Into<String>,
        time: impl Into<String>,
        user: Option<String>,
        object: impl Into<String>,
        previous: BTreeMap<String, Value>,
    ) -> Self {
        LastChange {
            v: RECORD_VERSION,
            id: String::new(),
            command: command.into(),
            time: time.into(),
            user,
            object: object.into(),
            previous,
            written: BTreeMap::new(),
            application: None,
        }
    }

    /// The same record, marked as a step of the profile application `application`.
    pub fn with_application(mut self, application: Option<String>) -> Self {
        self.application = application;
        self
    }

    /// The same record, marked with the id of the write that carries it.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The same record, also saying what the change wrote (see [`LastChange::written`]).
    pub fn with_written(mut self, written: BTreeMap<String, Value>) -> Self {
        self.written = written;
        self
    }

    /// The same record, carrying an `earlier` record of the same profile application on the
    /// same object: an object keeps one record, so when an application writes it twice (e.g.
    /// a profile's `replicas` and `resources` steps both write the deployment), the second
    /// record must still hold what the first one changed, or `undo` of the application would
    /// restore only the second step. The earliest previous value of a field wins (the state
    /// before the application); the latest written value wins. Records of other changes (or
    /// of another application) are replaced, as always.
    pub fn carrying(mut self, earlier: Option<&LastChange>) -> Self {
        let same_application = earlier.filter(|e| {
            e.application.is_some() && e.application == self.application && e.object == self.object
        });
        if let Some(earlier) = same_application {
            for (field, value) in &earlier.previous {
                self.previous.insert(field.clone(), value.clone());
            }
            for (field, value) in &earlier.written {
                self.written.entry(field.clone()).or_insert_with(|| value.clone());
            }
        }
        self
    }

    /// The annotation value (compact JSON).
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A merge patch that sets the annotation and nothing else.
    pub fn merge_patch(&self) -> Value {
        json!({"metadata": {"annotations": {ANNOTATION: self.to_annotation()}}})
    }
}

fn version_one() -> u32 {
    1
}

/// The record's id on an object's annotations, if it carries a record of ours.
pub fn record_id(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    let text = annotations?.get(ANNOTATION)?;
    let record: LastChange = serde_json::from_str(text).ok()?;
    (!record.id.is_empty()).then_some(record.id)
}

/// The current time in RFC 3339 (UTC), for the record.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Reads the record from an object's annotations.
///
/// # Errors
/// A [`PlanError`] when the annotation is missing or not a record of ours.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<LastChange, PlanError> {
    let text = annotations.get(ANNOTATION).ok_or_else(|| {
        PlanError::new(
            format!("no {ANNOTATION} annotation: this object was not changed by kubectl-orchscale"),
            "only changes made by this tool can be undone",
        )
    })?;
    serde_json::from_str(text).map_err(|e| {
        PlanError::new(
            format!("the {ANNOTATION} annotation is not readable: {e}"),
            "it may have been edited by hand; restore the values with kubectl",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(application: Option<&str>, field: &str, before: i64, after: i64) -> LastChange {
        LastChange::new(
            "apply -f peak.yaml",
            "2026-11-30T00:00:00Z",
            None,
            "deployment/orchestrator",
            BTreeMap::from([(field.to_string(), json!(before))]),
        )
        .with_written(BTreeMap::from([(field.to_string(), json!(after))]))
        .with_application(application.map(str::to_string))
    }

    #[test]
    fn a_second_step_of_the_same_application_carries_the_first_ones_values() {
        let first = step(Some("app-1"), "spec.replicas", 3, 5);
        let second = step(Some("app-1"), "spec.template.x", 1, 2).carrying(Some(&first));
        assert_eq!(second.previous["spec.replicas"], json!(3));
        assert_eq!(second.previous["spec.template.x"], json!(1));
        assert_eq!(second.written["spec.replicas"], json!(5));
        // The same field twice: the state before the application, the value written last.
        let again = step(Some("app-1"), "spec.replicas", 5, 7).carrying(Some(&first));
        assert_eq!(again.previous["spec.replicas"], json!(3));
        assert_eq!(again.written["spec.replicas"], json!(7));
    }

    #[test]
    fn records_of_other_changes_are_replaced() {
        let first = step(Some("app-1"), "spec.replicas", 3, 5);
        for later in [
            step(Some("app-2"), "spec.template.x", 1, 2),
            step(None, "spec.template.x", 1, 2),
        ] {
            let carried = later.clone().carrying(Some(&first));
            assert_eq!(carried.previous, later.previous);
        }
        let plain = step(None, "spec.template.x", 1, 2);
        assert_eq!(
            plain
                .clone()
                .carrying(Some(&step(None, "spec.replicas", 3, 5)))
                .previous,
            plain.previous
        );
    }

    fn record() -> LastChange {
        let mut previous = BTreeMap::new();
        previous.insert("spec.replicas".to_string(), json!(3));
        LastChange::new(
            "scale --replicas 5",
            "2026-11-28T08:00:00Z",
            Some("admin".into()),
            "deployment/orchestrator",
            previous,
        )
    }

    #[test]
    fn round_trips_through_the_annotation() {
        let rec = record();
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION.to_string(), rec.to_annotation());
        assert_eq!(parse(&annotations).unwrap(), rec);
    }

    #[test]
    fn annotation_json_has_the_spec_fields() {
        let v: Value = serde_json::from_str(&record().to_annotation()).unwrap();
        assert_eq!(v["command"], "scale --replicas 5");
        assert_eq!(v["user"], "admin");
        assert_eq!(v["previous"]["spec.replicas"], 3);
        assert!(v["time"].is_string());
    }

    #[test]
    fn merge_patch_touches_only_the_annotation() {
        let patch = record().merge_patch();
        let annotations = patch["metadata"]["annotations"].as_object().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(patch.as_object().unwrap().len(), 1);
    }

    #[test]
    fn missing_or_garbled_annotations_are_explained() {
        let empty = BTreeMap::new();
        assert!(
            parse(&empty)
                .unwrap_err()
                .message
                .contains("not changed by kubectl-orchscale")
        );
        let mut bad = BTreeMap::new();
        bad.insert(ANNOTATION.to_string(), "{not json".to_string());
        assert!(parse(&bad).unwrap_err().message.contains("not readable"));
    }

    #[test]
    fn written_values_round_trip_and_old_records_still_parse() {
        let mut written = BTreeMap::new();
        written.insert("spec.replicas".to_string(), json!(5));
        let rec = record().with_written(written);
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION.to_string(), rec.to_annotation());
        assert_eq!(parse(&annotations).unwrap().written["spec.replicas"], 5);
        // A record without `written` (older, or hand-made) parses with an empty map, and one
        // with nothing written does not carry the key.
        let v: Value = serde_json::from_str(&record().to_annotation()).unwrap();
        assert!(v.get("written").is_none());
        annotations.insert(ANNOTATION.to_string(), record().to_annotation());
        assert!(parse(&annotations).unwrap().written.is_empty());
    }

    #[test]
    fn a_record_with_the_former_group_key_still_parses() {
        let mut v: Value = serde_json::from_str(&record().to_annotation()).unwrap();
        v["group"] = json!("5f3a9c2e11d04b7a");
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION.to_string(), v.to_string());
        let parsed = parse(&annotations).unwrap();
        assert_eq!(parsed, record());
        assert!(!parsed.to_annotation().contains("group"), "not written back");
    }

    #[test]
    fn time_is_rfc3339() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }
}
