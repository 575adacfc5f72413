//! The one write step of every command: plan against the object read, send the write with
//! its resourceVersion precondition and the audit record in the same request, re-plan on 409,
//! and settle lost or late answers by reading the object back.
//!
//! The audit record (`orchscale.io/last-change`) travels in the write itself, so a change is
//! never stored without its record, and the record's unique id tells our own write apart from
//! anyone else's when the server's answer was lost: a write whose connection dropped, or whose
//! answer came after the write timeout, is read back; carrying our id it was applied, without
//! it it was not, and it is planned and sent again (the precondition keeps that safe).

use crate::cluster::Object;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};

use kube::Resource;
use kube::api::Patch;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::cluster::api::kind_of;
use crate::error::Error;
use crate::plan::Change;
use crate::plan::audit::{self, ANNOTATION, LastChange, now_rfc3339, record_id};
use crate::plan::outcome::{Difference, observe};
use crate::report::Reporter;

use super::shared::{previous_values, written_values};

/// Rounds of plan → write when the object keeps changing under us (409 Conflict), or when a
/// write whose answer was lost turns out not to have been applied.
const MAX_WRITE_ROUNDS: u32 = 4;

/// The request a plan asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// A JSON merge patch (carrying `metadata.resourceVersion` when planned with one).
    Merge(Value),
    /// A strategic merge patch (the same, for lists merged by key such as containers).
    Strategic(Value),
    /// A new object.
    Create(Value),
    /// Deletion, with the resourceVersion read as a precondition.
    Delete { resource_version: Option<String> },
}

/// One planned write: what it changes and the request that makes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Intent {
    pub changes: Vec<Change>,
    pub body: Body,
}

impl Intent {
    /// The write, or `None` when the plan changes nothing.
    pub(crate) fn unless_empty(changes: Vec<Change>, body: Body) -> Option<Intent> {
        (!changes.is_empty()).then_some(Intent { changes, body })
    }
}

/// What the audit record says besides the changes: the command and the object's name.
#[derive(Debug, Clone)]
pub(crate) struct AuditSpec {
    /// The command line recorded, e.g. `scale --replicas 5`.
    pub command: String,
    /// `deployment/orchestrator`.
    pub object: String,
    /// The kubeconfig user, when known.
    pub user: Option<String>,
    /// The profile application this write is a step of (see `LastChange::application`).
    pub application: Option<String>,
}

impl AuditSpec {
    /// The record of `command` on `object`, by the kubeconfig user of `cluster`.
    pub(crate) fn new(cluster: &Cluster, command: impl Into<String>, object: impl Into<String>) -> Self {
        AuditSpec {
            command: command.into(),
            object: object.into(),
            user: cluster.user.clone(),
            application: None,
        }
    }

    /// The same record, as a step of the profile application `id`.
    pub(crate) fn in_application(mut self, id: Option<&str>) -> Self {
        self.application = id.map(str::to_string);
        self
    }
}

/// The error when the object a command planned against is gone when it comes to writing.
pub(crate) fn deleted_after_read(object: &str, namespace: &str) -> Error {
    Error::failed(
        format!("{object} was deleted after it was read; nothing was written"),
        format!("check it with `kubectl get {object} -n {namespace}` and run the command again"),
    )
}

/// How the server's answer to the write came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The server answered with the stored object.
    Received,
    /// The answer was lost or late (`why`); reading back showed that the write was applied.
    Lost { why: String },
}

/// The outcome of [`write`].
#[derive(Debug, Clone)]
pub(crate) enum Settled<K> {
    /// A (re-)read showed nothing left to change; the object as read.
    Unchanged(Option<K>),
    /// The write is stored (or with --dry-run, accepted): the plan written and the object as
    /// the server holds it now (`None` after a deletion).
    Written(Written<K>),
}

/// A write the server stored (or, with --dry-run, accepted).
#[derive(Debug, Clone)]
pub(crate) struct Written<K> {
    pub stored: Option<K>,
    pub answer: Answer,
    /// The intent's changes with `after` as the server stored it.
    pub changes: Vec<Change>,
    /// Fields stored with other values than planned (admission), for the report.
    pub differences: Vec<Difference>,
    /// A warning when the audit record could not be brought in line with the stored values.
    pub record_warning: Option<String>,
}

/// A token unique to this process and write, for the audit record's id.
fn write_id() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{:016x}", random ^ u64::from(std::process::id()))
}

/// The body with the audit record added to its metadata (patches and creations).
fn with_record(body: &Body, record: Option<&LastChange>) -> Body {
    let Some(record) = record else {
        return body.clone();
    };
    let add = |mut value: Value| {
        value["metadata"]["annotations"][ANNOTATION] = Value::String(record.to_annotation());
        value
    };
    match body {
        Body::Merge(v) => Body::Merge(add(v.clone())),
        Body::Strategic(v) => Body::Strategic(add(v.clone())),
        Body::Create(v) => Body::Create(add(v.clone())),
        Body::Delete { .. } => body.clone(),
    }
}

/// Whether an error leaves the write's fate unknown: the request may have reached the server
/// and been stored although no answer (or only a gateway's) came back.
pub(crate) fn outcome_unknown(error: &Error) -> bool {
    match error {
        Error::NoAnswer { .. } => true,
        Error::Api { status: None, .. } => true,
        Error::Api {
            status: Some(code), ..
        } => *code >= 500,
        _ => false,
    }
}

/// The record of ours an object carries, if any (an unreadable one counts as none).
fn earlier_record<K: Object>(object: Option<&K>) -> Option<LastChange> {
    audit::parse(object?.meta().annotations.as_ref()?).ok()
}

/// Plans against `initial`, writes, and settles the outcome (see the module doc).
///
/// `plan` gets the object as read (`None` when it does not exist) and returns the write to
/// make, `None` when nothing is left to change, or an error (e.g. the object was deleted).
/// With `audit`, the record (previous and written values of the intent's changes) goes into the
/// same request.
///
/// # Errors
/// The plan's errors, API errors of the write, and [`Error::OutcomeUnknown`] when the answer
/// was lost and the object cannot be read back either.
pub(crate) async fn write<K, F>(
    cluster: &Cluster,
    name: &str,
    initial: Option<K>,
    audit: Option<&AuditSpec>,
    dry_run: bool,
    mut plan: F,
) -> Result<Settled<K>, Error>
where
    K: Object,
    F: FnMut(Option<&K>) -> Result<Option<Intent>, Error>,
{
    let id = write_id();
    let mut current = initial;
    let mut round = 1;
    loop {
        let Some(intent) = plan(current.as_ref())? else {
            return Ok(Settled::Unchanged(current));
        };
        let record = audit.map(|a| {
            LastChange::new(
                a.command.clone(),
                now_rfc3339(),
                a.user.clone(),
                a.object.clone(),
                previous_values(&intent.changes),
            )
            .with_written(written_values(&intent.changes))
            .with_id(id.clone())
            .with_application(a.application.clone())
            .carrying(earlier_record(current.as_ref()).as_ref())
        });
        let body = with_record(&intent.body, record.as_ref());
        let error = match send::<K>(cluster, name, &body, dry_run).await {
            Ok(stored) => {
                note_written::<K>(cluster, name, &body, dry_run);
                let written = settle(cluster, name, intent, stored, Answer::Received, record, dry_run).await;
                return Ok(Settled::Written(written));
            }
            Err(e) => e,
        };
        let unknown = outcome_unknown(&error);
        // A dry run stores nothing, so only its conflicts (a stale read) are worth a new round.
        if !(error.is_conflict() || unknown && !dry_run) {
            return Err(error);
        }
        // A 409 may be our own earlier attempt, stored before its answer was lost (the
        // transport layer re-sends a request whose connection dropped): read back and look.
        let reread = cluster.get_opt::<K>(name).await;
        let reread = match reread {
            Ok(object) => object,
            Err(read_error) if unknown => {
                return Err(Error::OutcomeUnknown {
                    action: describe::<K>(cluster, name, &body),
                    cause: error.to_string(),
                    read_back: read_error.to_string(),
                });
            }
            Err(read_error) => return Err(read_error),
        };
        if let Some(stored) = settled_as_ours(&body, reread.as_ref(), &id) {
            note_written::<K>(cluster, name, &body, dry_run);
            let answer = Answer::Lost {
                why: error.to_string(),
            };
            let written = settle(cluster, name, intent, stored, answer, record, dry_run).await;
            return Ok(Settled::Written(written));
        }
        if round >= MAX_WRITE_ROUNDS {
            return Err(error);
        }
        tracing::debug!(round, %error, "write not applied: planning again against the object read back");
        round += 1;
        current = reread;
    }
}

impl<K> Written<K> {
    /// Says what the cluster's answer leaves to say: a lost answer settled by reading back,
    /// values stored other than written, a record not brought in line.
    pub(crate) fn report(&self, reporter: &mut Reporter) {
        if let Answer::Lost { why } = &self.answer {
            reporter.warn(&format!(
                "the API server's answer to the write was lost ({why}); reading the object back shows \
                 the change was applied"
            ));
        }
        for difference in &self.differences {
            reporter.warn(&difference.to_string());
        }
        if let Some(warning) = &self.record_warning {
            reporter.warn(warning);
        }
    }
}

/// [`write`] of a change to an object that exists, with its audit record: `plan` gets the
/// object as read (and as re-read after a 409); an object gone by then is
/// [`deleted_after_read`].
///
/// # Errors
/// As [`write`].
pub(crate) async fn update<K, F>(
    cluster: &Cluster,
    name: &str,
    initial: K,
    audit: &AuditSpec,
    dry_run: bool,
    mut plan: F,
) -> Result<Settled<K>, Error>
where
    K: Object,
    F: FnMut(&K) -> Result<Option<Intent>, Error>,
{
    write(cluster, name, Some(initial), Some(audit), dry_run, |current| {
        plan(current.ok_or_else(|| deleted_after_read(&audit.object, &cluster.namespace))?)
    })
    .await
}

/// A write that restores or restarts whatever happened since (a rollback, a rolling restart):
/// no precondition, no audit record of its own; lost answers are settled like any write's.
///
/// # Errors
/// As [`write`].
pub(crate) async fn write_unconditionally<K>(
    cluster: &Cluster,
    name: &str,
    body: Body,
    dry_run: bool,
) -> Result<Option<K>, Error>
where
    K: Object,
{
    let intent = Intent {
        changes: Vec::new(),
        body,
    };
    match write::<K, _>(cluster, name, None, None, dry_run, |_| Ok(Some(intent.clone()))).await? {
        Settled::Written(written) => Ok(written.stored),
        Settled::Unchanged(object) => Ok(object),
    }
}

/// The outcome from the object as stored: the changes as the server holds them, and, when
/// admission changed a value, the audit record's `written` values brought in line with it (so
/// that `undo` does not mistake the mutation for a change made by someone else since).
async fn settle<K>(
    cluster: &Cluster,
    name: &str,
    intent: Intent,
    stored: Option<K>,
    answer: Answer,
    record: Option<LastChange>,
    dry_run: bool,
) -> Written<K>
where
    K: Object,
{
    let stored_json = stored.as_ref().and_then(|s| serde_json::to_value(s).ok());
    let (changes, differences) = match &stored_json {
        Some(json) => observe(&intent.changes, json),
        None => (intent.changes.clone(), Vec::new()),
    };
    let mut record_warning = None;
    if let Some(record) = record.filter(|_| !differences.is_empty() && !dry_run) {
        let record = record.with_written(written_values(&changes));
        if let Err(e) = cluster
            .patch::<K, _>(name, &Patch::Merge(record.merge_patch()), false)
            .await
        {
            record_warning = Some(format!(
                "the audit record on {} still names the values written, not the ones stored ({e}): \
                 `undo` will report them as changed since",
                record.object
            ));
        }
    }
    Written {
        stored,
        answer,
        changes,
        differences,
        record_warning,
    }
}

/// Whether the object read back shows that our write was applied: it carries our record id,
/// or (a deletion) it is gone. `Some(stored)` then.
fn settled_as_ours<K: Resource + Clone>(body: &Body, reread: Option<&K>, id: &str) -> Option<Option<K>> {
    match (body, reread) {
        (Body::Delete { .. }, None) => Some(None),
        (Body::Delete { .. }, Some(_)) => None,
        (_, Some(object)) if record_id(object.meta().annotations.as_ref()).as_deref() == Some(id) => {
            Some(Some(object.clone()))
        }
        _ => None,
    }
}

fn describe<K: Resource<DynamicType = ()>>(cluster: &Cluster, name: &str, body: &Body) -> String {
    let verb = match body {
        Body::Merge(_) | Body::Strategic(_) => "patch",
        Body::Create(_) => "create",
        Body::Delete { .. } => "delete",
    };
    format!("{verb} {} {}/{name}", kind_of::<K>(), cluster.namespace)
}

/// Notes a stored write (not a dry run) for what a Ctrl-C between steps reports.
fn note_written<K: Resource<DynamicType = ()>>(cluster: &Cluster, name: &str, body: &Body, dry_run: bool) {
    if !dry_run {
        crate::interrupt::note_written(&describe::<K>(cluster, name, body));
    }
}

async fn send<K>(cluster: &Cluster, name: &str, body: &Body, dry_run: bool) -> Result<Option<K>, Error>
where
    K: Object,
{
    match body {
        Body::Merge(patch) => cluster
            .patch::<K, _>(name, &Patch::Merge(patch), dry_run)
            .await
            .map(Some),
        Body::Strategic(patch) => cluster
            .patch::<K, _>(name, &Patch::Strategic(patch), dry_run)
            .await
            .map(Some),
        Body::Create(value) => {
            let object: K = serde_json::from_value(value.clone()).map_err(|e| {
                Error::failed(
                    format!("cannot build the {} to create: {e}", kind_of::<K>()),
                    "this is a bug: please report it",
                )
            })?;
            cluster.create(&object, dry_run).await.map(Some)
        }
        Body::Delete { resource_version } => cluster
            .delete::<K>(name, resource_version.as_deref(), dry_run)
            .await
            .map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    fn record(id: &str) -> LastChange {
        LastChange::new(
            "scale --replicas 5",
            "t",
            None,
            "deployment/d",
            Default::default(),
        )
        .with_id(id)
    }

    #[test]
    fn the_record_rides_in_patches_and_creations_but_not_deletions() {
        let rec = record("abc");
        let merge = with_record(
            &Body::Merge(json!({"metadata": {"resourceVersion": "7"}, "spec": {"replicas": 5}})),
            Some(&rec),
        );
        let Body::Merge(v) = merge else {
            panic!("merge stays merge")
        };
        assert_eq!(v["metadata"]["resourceVersion"], "7", "the precondition is kept");
        assert_eq!(v["spec"]["replicas"], 5);
        assert_eq!(v["metadata"]["annotations"][ANNOTATION], rec.to_annotation());
        let delete = Body::Delete {
            resource_version: Some("3".into()),
        };
        assert_eq!(with_record(&delete, Some(&rec)), delete);
        assert_eq!(with_record(&Body::Merge(json!({})), None), Body::Merge(json!({})));
    }

    #[test]
    fn lost_answers_are_recognised_by_the_record_id() {
        let annotated = |id: &str| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "d",
                "annotations": {ANNOTATION: record(id).to_annotation()}}}))
            .unwrap()
        };
        let patch = Body::Merge(json!({}));
        assert!(settled_as_ours(&patch, Some(&annotated("ours")), "ours").is_some());
        assert!(settled_as_ours(&patch, Some(&annotated("theirs")), "ours").is_none());
        assert!(settled_as_ours::<Deployment>(&patch, None, "ours").is_none());
        let delete = Body::Delete {
            resource_version: None,
        };
        assert_eq!(settled_as_ours::<Deployment>(&delete, None, "ours"), Some(None));
        assert!(settled_as_ours(&delete, Some(&annotated("ours")), "ours").is_none());
    }

    #[test]
    fn only_answers_that_may_hide_a_stored_write_are_unknown() {
        let api = |status| Error::Api {
            action: "patch".into(),
            status,
            message: "m".into(),
            source: None,
        };
        assert!(outcome_unknown(&api(None)));
        assert!(outcome_unknown(&api(Some(504))));
        assert!(!outcome_unknown(&api(Some(409))));
        assert!(!outcome_unknown(&api(Some(422))));
        assert!(outcome_unknown(&Error::NoAnswer {
            action: "patch".into(),
            after: "10s".into()
        }));
    }

    #[test]
    fn write_ids_differ() {
        assert_ne!(write_id(), write_id());
    }
}
