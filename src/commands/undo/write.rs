//! The undo's writes: the restore (patch or delete) with the resourceVersion read, re-read and
//! re-planned on 409, and the new audit record.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Resource;
use kube::api::Patch;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MAX_CONFLICT_ATTEMPTS;
use super::find::Found;
use crate::cluster::Cluster;
use crate::cluster::api::retry_on_conflict;
use crate::commands::shared::record_change;
use crate::error::Error;
use crate::plan::Change;
use crate::plan::undo::{ObjectKind, UndoPlan, UndoWrite, plan_undo};

/// Command line of the audit record an undo writes.
pub const UNDO_COMMAND: &str = "undo";

/// Writes the restore; returns the plan that was written (re-planned after a 409).
///
/// # Errors
/// API errors; a re-plan that fails after the object changed.
pub async fn apply(
    cluster: &Cluster,
    found: &Found,
    initial: &UndoPlan,
    dry_run: bool,
) -> Result<UndoPlan, Error> {
    match found.kind {
        ObjectKind::Deployment => apply_as::<Deployment>(cluster, found, initial, dry_run).await,
        ObjectKind::StatefulSet => apply_as::<StatefulSet>(cluster, found, initial, dry_run).await,
        ObjectKind::HorizontalPodAutoscaler => {
            apply_as::<HorizontalPodAutoscaler>(cluster, found, initial, dry_run).await
        }
        ObjectKind::ConfigMap => apply_as::<ConfigMap>(cluster, found, initial, dry_run).await,
    }
}

async fn apply_as<K>(
    cluster: &Cluster,
    found: &Found,
    initial: &UndoPlan,
    dry_run: bool,
) -> Result<UndoPlan, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let name = found.name.as_str();
    retry_on_conflict(MAX_CONFLICT_ATTEMPTS, |attempt| async move {
        let (plan, object) = if attempt == 1 {
            (initial.clone(), found.object.clone())
        } else {
            let object: K = cluster.get(name, "it was deleted meanwhile").await?;
            let object = serde_json::to_value(&object)
                .map_err(|e| Error::failed(format!("cannot read {name}: {e}"), "this is a bug"))?;
            (plan_undo(found.kind, &object, &found.record)?, object)
        };
        match &plan.write {
            UndoWrite::Nothing => {}
            UndoWrite::Merge(patch) => {
                cluster.patch::<K, _>(name, &Patch::Merge(patch), dry_run).await?;
            }
            UndoWrite::Strategic(patch) => {
                cluster
                    .patch::<K, _>(name, &Patch::Strategic(patch), dry_run)
                    .await?;
            }
            UndoWrite::Delete => {
                let rv = object["metadata"]["resourceVersion"].as_str();
                cluster.delete::<K>(name, rv, dry_run).await?;
            }
        }
        Ok::<UndoPlan, Error>(plan)
    })
    .await
}

/// Records the undo itself: command `undo`, previous = the values it replaced, so that a
/// second `undo` redoes the change.
///
/// # Errors
/// API errors of the annotation patch.
pub async fn record(
    cluster: &Cluster,
    found: &Found,
    changes: &[Change],
    dry_run: bool,
) -> Result<(), Error> {
    let object = format!("{}/{}", super::kind_name(found.kind), found.name);
    let name = found.name.as_str();
    match found.kind {
        ObjectKind::Deployment => {
            record_change::<Deployment>(cluster, name, UNDO_COMMAND, &object, changes, dry_run).await
        }
        ObjectKind::StatefulSet => {
            record_change::<StatefulSet>(cluster, name, UNDO_COMMAND, &object, changes, dry_run).await
        }
        ObjectKind::HorizontalPodAutoscaler => {
            record_change::<HorizontalPodAutoscaler>(cluster, name, UNDO_COMMAND, &object, changes, dry_run)
                .await
        }
        ObjectKind::ConfigMap => {
            record_change::<ConfigMap>(cluster, name, UNDO_COMMAND, &object, changes, dry_run).await
        }
    }
}
