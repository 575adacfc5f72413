//! The undo's write: the restore (patch or delete) with the resourceVersion read and the new
//! audit record, through the one write step (`commands::write`).

use crate::cluster::Object;

use super::find::Found;
use crate::cluster::Cluster;
use crate::commands::write::{AuditSpec, Body, Intent, Settled, deleted_after_read, write};
use crate::error::Error;
use crate::plan::undo::{ObjectKind, UndoPlan, UndoWrite, plan_undo};
use crate::report::Reporter;

/// Command line of the audit record an undo writes.
pub const UNDO_COMMAND: &str = "undo";

/// Writes the restore with the undo's own audit record in the same request (command `undo`,
/// previous = the values it replaces, so that a second `undo` redoes the change); returns the
/// plan that was written (re-planned after a 409), its changes as the server stored them.
///
/// # Errors
/// API errors; a re-plan that fails after the object changed.
pub async fn apply(
    cluster: &Cluster,
    found: &Found,
    initial: &UndoPlan,
    dry_run: bool,
    reporter: &mut Reporter,
) -> Result<UndoPlan, Error> {
    with_kind!(found.kind, K => apply_as::<K>(cluster, found, initial, dry_run, reporter).await)
}

async fn apply_as<K>(
    cluster: &Cluster,
    found: &Found,
    initial: &UndoPlan,
    dry_run: bool,
    reporter: &mut Reporter,
) -> Result<UndoPlan, Error>
where
    K: Object,
{
    let name = found.name.as_str();
    let object = format!("{}/{}", found.kind.name(), found.name);
    let audit = AuditSpec::new(cluster, UNDO_COMMAND.to_string(), object.clone());
    let current: Option<K> = serde_json::from_value(found.object.clone()).ok();
    let mut planned = initial.clone();
    let mut first = true;
    // A deletion carries no record: the object and its record go together.
    let audit = (initial.write != UndoWrite::Delete).then_some(&audit);
    let settled = write(cluster, name, current, audit, dry_run, |current: Option<&K>| {
        let resource_version = current.and_then(|c| c.meta().resource_version.clone());
        let plan = if std::mem::take(&mut first) {
            initial.clone()
        } else {
            let current = current.ok_or_else(|| deleted_after_read(&object, &cluster.namespace))?;
            let json = serde_json::to_value(current)
                .map_err(|e| Error::failed(format!("cannot read {object}: {e}"), "this is a bug"))?;
            plan_undo(found.kind, &json, &found.record)?
        };
        let body = match &plan.write {
            UndoWrite::Nothing => None,
            UndoWrite::Merge(patch) => Some(Body::Merge(patch.clone())),
            UndoWrite::Strategic(patch) => Some(Body::Strategic(patch.clone())),
            UndoWrite::Delete => Some(Body::Delete { resource_version }),
        };
        let intent = body.map(|body| Intent {
            changes: plan.changes.clone(),
            body,
        });
        planned = plan;
        Ok(intent)
    })
    .await?;
    match settled {
        Settled::Unchanged(_) => Ok(planned),
        Settled::Written(written) => {
            written.report(reporter);
            Ok(UndoPlan {
                changes: written.changes,
                ..planned
            })
        }
    }
}
