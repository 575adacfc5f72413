//! The `undo` plan: read a `orchscale.io/last-change` record's field paths, compare them with
//! the object as it is now, and build the write that restores the recorded previous values.
//!
//! The input language is the `field` of the [`Change`]s the other plans produce (scale, hpa,
//! resources, db connections). Each restore is computed from the CURRENT object, so that
//! unrelated edits made since (another metric, another config key) survive the undo.

use serde_json::Value;

use super::audit::LastChange;
use super::{Change, ChangeValue, PlanError};

mod patch;

pub use super::field::{FieldPath, parse_field};

/// The kinds of object a record can be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Deployment,
    HorizontalPodAutoscaler,
    StatefulSet,
    ConfigMap,
}

impl ObjectKind {
    /// Every kind, for lookups by name.
    const ALL: [ObjectKind; 4] = [
        ObjectKind::Deployment,
        ObjectKind::HorizontalPodAutoscaler,
        ObjectKind::StatefulSet,
        ObjectKind::ConfigMap,
    ];

    /// The kind's API coordinates: (name as this tool writes it, API group, plural resource).
    fn api(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ObjectKind::Deployment => ("deployment", "apps", "deployments"),
            ObjectKind::HorizontalPodAutoscaler => (
                "horizontalpodautoscaler",
                "autoscaling",
                "horizontalpodautoscalers",
            ),
            ObjectKind::StatefulSet => ("statefulset", "apps", "statefulsets"),
            ObjectKind::ConfigMap => ("configmap", "", "configmaps"),
        }
    }

    /// `deployment`, as in `deployment/orchestrator`.
    pub fn name(self) -> &'static str {
        self.api().0
    }

    /// The API group, `apps`.
    pub fn group(self) -> &'static str {
        self.api().1
    }

    /// The plural resource, `deployments`.
    pub fn resource(self) -> &'static str {
        self.api().2
    }

    /// The kind of a record's object (`deployment/orchestrator` → Deployment) and its name.
    ///
    /// # Errors
    /// An object of a kind this tool never changes.
    pub fn of_object(object: &str) -> Result<(ObjectKind, String), PlanError> {
        let (kind, name) = object.split_once('/').unwrap_or((object, ""));
        let kind = Self::ALL.into_iter().find(|k| k.name() == kind).ok_or_else(|| {
            PlanError::new(
                format!("the record names {object:?}, not an object kubectl-orchscale changes"),
                "restore the values by hand with kubectl",
            )
        })?;
        Ok((kind, name.to_string()))
    }
}

/// How the restore is written.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoWrite {
    /// Everything is already at the recorded values.
    Nothing,
    /// JSON merge patch (HPA, deployment replicas, configmap), with `metadata.resourceVersion`.
    Merge(Value),
    /// Strategic merge patch of the pod template's containers, with `metadata.resourceVersion`.
    Strategic(Value),
    /// The change created the object (`hpa --create`): undoing it deletes the object.
    Delete,
}

/// What `undo` will do.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoPlan {
    pub object: String,
    pub kind: ObjectKind,
    /// before = the value now, after = the recorded previous value (`None`: removed).
    pub changes: Vec<Change>,
    pub write: UndoWrite,
    /// The pod template changes: the workload's pods restart.
    pub restarts_pods: bool,
    /// Fields changed by someone else since the recorded change.
    pub drift: Vec<String>,
    /// Fields the record wrote whose current value could not be compared (old records).
    pub unverified: bool,
}

/// Plans the undo of `record` on `current` (the object as read now, as JSON).
///
/// # Errors
/// A record whose object does not match `kind`, a field path undo does not know, or a value
/// that cannot be written back (each with a hint to restore by hand).
pub fn plan_undo(kind: ObjectKind, current: &Value, record: &LastChange) -> Result<UndoPlan, PlanError> {
    let (record_kind, _) = ObjectKind::of_object(&record.object)?;
    if record_kind != kind {
        return Err(PlanError::new(
            format!("the record is for {}, not a {kind:?}", record.object),
            "this is a bug: undo read the record from another object",
        ));
    }
    let fields: Vec<(FieldPath, &String, Option<ChangeValue>)> = record
        .previous
        .iter()
        .map(|(field, before)| {
            let path = parse_field(field)?;
            let before = ChangeValue::read(&path, before);
            Ok((path, field, before))
        })
        .collect::<Result<_, PlanError>>()?;
    let created = kind == ObjectKind::HorizontalPodAutoscaler
        && fields
            .iter()
            .any(|(path, _, before)| *path == FieldPath::ScaleTargetRef && before.is_none());

    let mut drift = Vec::new();
    let mut unverified = false;
    let mut restore = Vec::new();
    let mut changes = Vec::new();
    for (path, field, before) in &fields {
        let now = current_value(current, path);
        match record.written.get(*field).map(|w| ChangeValue::read(path, w)) {
            Some(written) if written != now => {
                drift.push(format!(
                    "{} {field} was changed since `{}`: it set {}, it is now {}",
                    record.object,
                    record.command,
                    ChangeValue::show(written.as_ref()),
                    ChangeValue::show(now.as_ref())
                ));
            }
            Some(_) => {}
            None => unverified = true,
        }
        let target = if created { None } else { before.clone() };
        if now != target {
            changes.push(Change::new(&record.object, path.clone(), now, target.clone()));
            restore.push((path.clone(), target));
        }
    }

    let write = if created {
        UndoWrite::Delete
    } else if restore.is_empty() {
        UndoWrite::Nothing
    } else {
        patch::build_write(kind, current, &restore)?
    };
    let restarts_pods = matches!(write, UndoWrite::Strategic(_));
    Ok(UndoPlan {
        object: record.object.clone(),
        kind,
        changes,
        write,
        restarts_pods,
        drift,
        unverified,
    })
}

/// The value of `path` in `object` (as JSON), typed as the plans' changes are.
pub fn current_value(object: &Value, path: &FieldPath) -> Option<ChangeValue> {
    let spec = &object["spec"];
    match path {
        FieldPath::Replicas => ChangeValue::read(path, &spec["replicas"]),
        FieldPath::MinReplicas => ChangeValue::read(path, &spec["minReplicas"]),
        FieldPath::MaxReplicas => ChangeValue::read(path, &spec["maxReplicas"]),
        FieldPath::ScaleTargetRef => {
            let r = &spec["scaleTargetRef"];
            r["name"].as_str().map(|name| {
                ChangeValue::text(format!(
                    "{} {} {name}",
                    r["apiVersion"].as_str().unwrap_or(""),
                    r["kind"].as_str().unwrap_or("")
                ))
            })
        }
        FieldPath::MetricUtilization { resource } | FieldPath::MetricTarget { resource } => {
            let metric = find_metric(spec["metrics"].as_array()?, resource)?;
            describe_target(&metric["resource"]["target"])
        }
        FieldPath::ContainerResource {
            container,
            kind,
            name,
        } => {
            let containers = spec["template"]["spec"]["containers"].as_array()?;
            let c = containers.iter().find(|c| c["name"] == container.as_str())?;
            ChangeValue::read(path, &c["resources"][kind.as_str()][name])
        }
        FieldPath::RestartedAt => {
            ChangeValue::read(path, &spec["template"]["metadata"]["annotations"][RESTARTED_AT])
        }
        FieldPath::MaxConnections { key } => {
            let text = object["data"][key].as_str()?;
            super::connections::read_max_connections(text).map(ChangeValue::count)
        }
    }
}

fn find_metric<'a>(metrics: &'a [Value], resource: &str) -> Option<&'a Value> {
    metrics.iter().find(|m| is_resource_metric(m, resource))
}

fn is_resource_metric(metric: &Value, resource: &str) -> bool {
    metric["type"] == "Resource" && metric["resource"]["name"] == resource
}

/// A metric target as the plans' changes hold it: a percentage for a utilization target,
/// else `averageValue 500m` as `plan::hpa::describe_target` writes it.
fn describe_target(target: &Value) -> Option<ChangeValue> {
    if let Some(pct) = target["averageUtilization"].as_i64() {
        Some(i32::try_from(pct).map_or_else(|_| ChangeValue::text(pct.to_string()), ChangeValue::Percent))
    } else if let Some(v) = target["averageValue"].as_str() {
        Some(ChangeValue::text(format!("averageValue {v}")))
    } else if let Some(v) = target["value"].as_str() {
        Some(ChangeValue::text(format!("value {v}")))
    } else {
        target["type"].as_str().map(ChangeValue::text)
    }
}

pub use super::connections::RESTARTED_AT;

/// Whether undoing a config change needs the deployment's pods restarted: only when they were
/// restarted after the change (`restartedAt` at or after the record's time) and so loaded the
/// value being undone. Pods not restarted since still run with the value the undo restores.
pub fn config_restart_needed(restarted_at: Option<&str>, record_time: &str) -> bool {
    let parse = |t: &str| t.parse::<k8s_openapi::jiff::Timestamp>().ok();
    match (restarted_at.and_then(parse), parse(record_time)) {
        // kubectl writes restartedAt at whole seconds, often within the second of the
        // record: compare seconds.
        (Some(restarted), Some(changed)) => restarted.as_second() >= changed.as_second(),
        // A restart time we cannot compare: restarting is the safe side.
        (Some(_), None) => true,
        (None, _) => restarted_at.is_some(),
    }
}

/// The most recent of the records found, by their `time`; on equal times the first given wins
/// (callers pass them in a fixed order). A time that does not parse counts as oldest.
pub fn most_recent<T>(records: Vec<(T, LastChange)>) -> Option<(T, LastChange)> {
    let time = |r: &LastChange| r.time.parse::<k8s_openapi::jiff::Timestamp>().ok();
    let mut best: Option<(T, LastChange)> = None;
    for (tag, record) in records {
        let newer = match &best {
            None => true,
            Some((_, b)) => time(&record) > time(b),
        };
        if newer {
            best = Some((tag, record));
        }
    }
    best
}

#[cfg(test)]
mod tests;
