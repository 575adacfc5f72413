//! Finding the change to undo: the orchestrator's objects are read and the most recent
//! `orchscale.io/last-change` record among them wins.

use serde_json::Value;

use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::shared::get_unless_forbidden;
use crate::error::Error;
use crate::plan::audit::{ANNOTATION, LastChange, parse};
use crate::plan::undo::{ObjectKind, most_recent};
use crate::report::Reporter;

/// The object that carries the record to undo, as read.
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: ObjectKind,
    pub name: String,
    /// The object as JSON (what `plan_undo` reads).
    pub object: Value,
    pub record: LastChange,
}

/// Reads one object as JSON; `None` when it does not exist or may not be read (said as a
/// warning: its record, if any, cannot be considered).
async fn read<K>(cluster: &Cluster, name: &str, reporter: &mut Reporter) -> Result<Option<Value>, Error>
where
    K: crate::cluster::Object,
{
    let object: Option<K> = get_unless_forbidden(cluster, name, |_| {
        reporter.warn(&format!(
            "cannot read {} {name} in namespace {} (forbidden): a change recorded on it is not considered",
            crate::cluster::api::kind_of::<K>(),
            cluster.namespace
        ));
    })
    .await?;
    Ok(object.and_then(|o| serde_json::to_value(&o).ok()))
}

/// The objects undo looks at, in the fixed order that breaks ties between equal times.
pub fn targets(cli: &Cli) -> Vec<(ObjectKind, String)> {
    let t = &cli.targets;
    vec![
        (ObjectKind::Deployment, t.deployment.clone()),
        (ObjectKind::HorizontalPodAutoscaler, t.hpa.clone()),
        (ObjectKind::StatefulSet, t.statefulset.clone()),
        (ObjectKind::ConfigMap, t.configmap.clone()),
    ]
}

/// Reads the orchestrator's objects and returns the one with the most recent record.
///
/// # Errors
/// API errors reading the objects; [`Error::Failed`] (exit 1) when no record is found.
pub async fn latest_change(cluster: &Cluster, cli: &Cli, reporter: &mut Reporter) -> Result<Found, Error> {
    let mut candidates = Vec::new();
    for (kind, name) in targets(cli) {
        let object = with_kind!(kind, K => read::<K>(cluster, &name, reporter).await?);
        let Some(object) = object else { continue };
        let annotations = object["metadata"]["annotations"].clone();
        let annotations: std::collections::BTreeMap<String, String> =
            serde_json::from_value(annotations).unwrap_or_default();
        if !annotations.contains_key(ANNOTATION) {
            continue;
        }
        match parse(&annotations) {
            Ok(record) => candidates.push((
                Found {
                    kind,
                    name: name.clone(),
                    object,
                    record: record.clone(),
                },
                record,
            )),
            Err(e) => reporter.warn(&format!("{}/{name}: {}; it is skipped", kind.name(), e.message)),
        }
    }
    most_recent(candidates).map(|(found, _)| found).ok_or_else(|| {
        let names: Vec<String> = targets(cli)
            .iter()
            .map(|(kind, name)| format!("{}/{name}", kind.name()))
            .collect();
        Error::failed(
            format!(
                "no change recorded by kubectl-orchscale in namespace {}",
                cluster.namespace
            ),
            format!(
                "undo reverts changes this tool made (annotation {ANNOTATION} on {}); check the namespace (-n) and the object names (--deployment, --hpa, --statefulset, --configmap)",
                names.join(", ")
            ),
        )
    })
}
