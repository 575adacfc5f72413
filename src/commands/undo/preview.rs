//! What `undo` says before it writes: the line naming the change, the consequences, the
//! confirmation question, the permissions it needs, and the line saying what was applied.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};

use super::find::Found;
use super::write;
use crate::cli::Cli;
use crate::commands::preflight::{Step, WorkloadKind};
use crate::plan::audit::LastChange;
use crate::plan::resources::{rollout_disruption, statefulset_disruption};
use crate::plan::scale::HpaRange;
use crate::plan::undo::{ObjectKind, UndoPlan, UndoWrite};

/// The loud warning when the restore makes the workload unavailable (one replica, Recreate).
pub(super) fn downtime_warning(found: &Found, plan: &UndoPlan) -> Option<String> {
    if !plan.restarts_pods {
        return None;
    }
    let disruption = match found.kind {
        ObjectKind::Deployment => rollout_disruption(&serde_json::from_value(found.object.clone()).ok()?),
        ObjectKind::StatefulSet => {
            statefulset_disruption(&serde_json::from_value(found.object.clone()).ok()?)
        }
        _ => return None,
    };
    disruption
        .downtime
        .then(|| format!("DOWNTIME: {}", disruption.summary))
}

/// `undoing `scale --replicas 5` made at <time> by <user>`; an undo of an undo says it redoes.
pub(super) fn made_line(record: &LastChange) -> String {
    let by = record
        .user
        .as_ref()
        .map(|u| format!(" by {u}"))
        .unwrap_or_default();
    if record.command == write::UNDO_COMMAND {
        format!(
            "undoing the `undo` made at {}{by}: this redoes the change it reverted",
            record.time
        )
    } else {
        format!("undoing `{}` made at {}{by}", record.command, record.time)
    }
}

/// What the undo does besides the fields, for the preview.
pub(super) fn consequences(
    found: &Found,
    plan: &UndoPlan,
    cli: &Cli,
    restart: Option<&Deployment>,
) -> Vec<String> {
    if let Some(deployment) = restart {
        return vec![
            format!(
                "the pods were restarted after `{}` and loaded its value: deployment/{} restarts so they load the restored one",
                found.record.command, cli.targets.deployment
            ),
            rollout_disruption(deployment).summary,
        ];
    }
    match (&plan.write, found.kind) {
        (UndoWrite::Delete, _) => vec![format!(
            "{} is deleted: deployment/{} keeps its current replica count and is no longer scaled automatically",
            plan.object, cli.targets.deployment
        )],
        (UndoWrite::Strategic(_), ObjectKind::Deployment) => {
            serde_json::from_value::<Deployment>(found.object.clone())
                .map(|d| vec![rollout_disruption(&d).summary])
                .unwrap_or_default()
        }
        (UndoWrite::Strategic(_), ObjectKind::StatefulSet) => {
            serde_json::from_value::<StatefulSet>(found.object.clone())
                .map(|s| vec![statefulset_disruption(&s).summary])
                .unwrap_or_default()
        }
        (_, ObjectKind::Deployment) => {
            let replicas = plan
                .changes
                .iter()
                .find(|c| c.field == crate::plan::FieldPath::Replicas);
            let number = |v: &Option<crate::plan::ChangeValue>| v.as_ref().and_then(|v| v.as_i32());
            match replicas.map(|c| (number(&c.before), number(&c.after))) {
                Some((Some(now), Some(then))) => crate::plan::scale::consequences(now, then),
                _ => Vec::new(),
            }
        }
        (_, ObjectKind::ConfigMap) => vec![format!(
            "no pod restarts: deployment/{} was not restarted since `{}`, so its pods still run \
             with the value being restored",
            cli.targets.deployment, found.record.command
        )],
        _ => vec!["no pod restarts".into()],
    }
}

/// The confirmation question, when the undo needs one: pods restart, an object is deleted,
/// or the values were changed by someone else since the recorded change.
/// The question is short: what pods do and how the restore goes are the preview's
/// consequences, printed just above it (said once, not again in the question).
pub(super) fn question(plan: &UndoPlan, restart: bool) -> Option<String> {
    let mut reasons = Vec::new();
    if plan.restarts_pods || restart {
        reasons.push("pods restart (the consequences above)".to_string());
    }
    if plan.write == UndoWrite::Delete {
        reasons.push(format!("{} will be deleted", plan.object));
    }
    if !plan.drift.is_empty() {
        reasons.push(format!(
            "{} was changed since the recorded change: the undo overwrites that",
            plan.object
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("\n"))
}

/// A restored count outside the HPA's range does not last: say so.
pub(super) fn range_warning(range: &HpaRange, target: i32) -> Option<String> {
    (!(range.min..=range.max).contains(&target)).then(|| {
        format!(
            "HPA {} keeps the deployment between {} and {} replicas: it will move the restored {target} \
             back into that range at its next sync; change the range with `kubectl orchscale hpa --min/--max`",
            range.name, range.min, range.max
        )
    })
}

pub(super) fn applied_text(plan: &UndoPlan, command: &str) -> String {
    if plan.write == UndoWrite::Delete {
        return format!("{} deleted (undoing `{command}`)", plan.object);
    }
    let fields: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{} {} -> {}", c.field, c.before_text(), c.after_text()))
        .collect();
    format!(
        "{} restored ({}), undoing `{command}`",
        plan.object,
        fields.join(", ")
    )
}

/// The restore's write, for the permission preflight.
pub(super) fn write_step<'a>(found: &'a Found, plan: &UndoPlan) -> Step<'a> {
    let (group, resource) = (found.kind.group(), found.kind.resource());
    let verb = if plan.write == UndoWrite::Delete {
        "delete"
    } else {
        "patch"
    };
    Step::Write {
        verb,
        group,
        resource,
        name: Some(&found.name),
    }
}

/// What the undo follows after its write: the restart after a restored config, or the
/// rollout a restored replica count or pod template starts.
pub(super) fn follow_steps<'a>(
    found: &'a Found,
    plan: &UndoPlan,
    restart: bool,
    deployment: &'a str,
) -> Vec<Step<'a>> {
    let follow = |kind, name| Step::rollout(kind, name, false);
    let rollout = plan.restarts_pods
        || plan
            .changes
            .iter()
            .any(|c| c.field == crate::plan::FieldPath::Replicas);
    match found.kind {
        _ if restart => follow(WorkloadKind::Deployment, deployment),
        ObjectKind::Deployment if rollout => follow(WorkloadKind::Deployment, &found.name),
        ObjectKind::StatefulSet if rollout => follow(WorkloadKind::StatefulSet, &found.name),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Change;

    fn plan(write: UndoWrite, restarts_pods: bool, drift: Vec<String>) -> UndoPlan {
        UndoPlan {
            object: "deployment/orchestrator".into(),
            kind: ObjectKind::Deployment,
            changes: vec![Change::new(
                "deployment/orchestrator",
                "spec.replicas",
                Some(crate::plan::ChangeValue::count(5)),
                Some(crate::plan::ChangeValue::count(3)),
            )],
            write,
            restarts_pods,
            drift,
            unverified: false,
        }
    }

    #[test]
    fn the_made_line_names_command_time_and_user_and_says_when_it_redoes() {
        let mut record = LastChange::new(
            "scale --replicas 5",
            "2026-11-28T08:00:00Z",
            Some("alice".into()),
            "deployment/orchestrator",
            Default::default(),
        );
        assert_eq!(
            made_line(&record),
            "undoing `scale --replicas 5` made at 2026-11-28T08:00:00Z by alice"
        );
        record.command = "undo".into();
        record.user = None;
        assert_eq!(
            made_line(&record),
            "undoing the `undo` made at 2026-11-28T08:00:00Z: this redoes the change it reverted"
        );
    }

    #[test]
    fn only_restarts_deletes_and_drift_ask() {
        let merge = UndoWrite::Merge(json!({}));
        assert_eq!(question(&plan(merge.clone(), false, vec![]), false), None);
        let restart = question(&plan(merge.clone(), true, vec![]), false);
        assert_eq!(restart.as_deref(), Some("pods restart (the consequences above)"));
        assert!(question(&plan(merge.clone(), false, vec![]), true).is_some());
        let delete = question(&plan(UndoWrite::Delete, false, vec![]), false).unwrap();
        assert!(delete.contains("will be deleted"));
        let drift = question(&plan(merge, false, vec!["changed".into()]), false).unwrap();
        assert!(drift.contains("overwrites"));
    }

    #[test]
    fn applied_text_lists_the_restored_fields() {
        let text = applied_text(
            &plan(UndoWrite::Merge(json!({})), false, vec![]),
            "scale --replicas 5",
        );
        assert_eq!(
            text,
            "deployment/orchestrator restored (spec.replicas 5 -> 3), undoing `scale --replicas 5`"
        );
        let text = applied_text(&plan(UndoWrite::Delete, false, vec![]), "hpa --create");
        assert_eq!(text, "deployment/orchestrator deleted (undoing `hpa --create`)");
    }

    #[test]
    fn a_count_outside_the_hpa_range_is_a_warning() {
        let range = HpaRange {
            name: "orchestrator".into(),
            min: 3,
            max: 10,
            model: crate::plan::hpa::HpaModel::default(),
        };
        assert_eq!(range_warning(&range, 3), None);
        assert_eq!(range_warning(&range, 10), None);
        let warning = range_warning(&range, 2).unwrap();
        assert!(warning.contains("between 3 and 10"), "{warning}");
        assert!(warning.contains("restored 2"), "{warning}");
    }

    #[test]
    fn a_single_replica_statefulset_restore_warns_of_downtime() {
        let sts = json!({"metadata": {"name": "postgres"},
            "spec": {"replicas": 1, "serviceName": "postgres", "selector": {"matchLabels": {"app": "postgres"}},
                     "template": {"spec": {"containers": [{"name": "postgres"}]}}}});
        let found = Found {
            kind: ObjectKind::StatefulSet,
            name: "postgres".into(),
            object: sts,
            record: LastChange::new(
                "db resources",
                "t",
                None,
                "statefulset/postgres",
                Default::default(),
            ),
        };
        let mut p = plan(UndoWrite::Strategic(json!({})), true, vec![]);
        let warning = downtime_warning(&found, &p).unwrap();
        assert!(warning.starts_with("DOWNTIME: "), "{warning}");
        p.restarts_pods = false;
        assert_eq!(downtime_warning(&found, &p), None);
    }

    #[test]
    fn permissions_cover_the_write() {
        let found = Found {
            kind: ObjectKind::HorizontalPodAutoscaler,
            name: "orchestrator".into(),
            object: json!({}),
            record: LastChange::new(
                "hpa --create",
                "t",
                None,
                "horizontalpodautoscaler/orchestrator",
                Default::default(),
            ),
        };
        let deletion = plan(UndoWrite::Delete, false, vec![]);
        assert_eq!(
            write_step(&found, &deletion),
            Step::Write {
                verb: "delete",
                group: "autoscaling",
                resource: "horizontalpodautoscalers",
                name: Some("orchestrator")
            }
        );
        assert!(follow_steps(&found, &deletion, false, "orchestrator").is_empty());
        assert_eq!(
            follow_steps(&found, &deletion, true, "orchestrator")[0],
            Step::Follow {
                kind: WorkloadKind::Deployment,
                name: "orchestrator"
            },
            "a restart is followed on the deployment"
        );
    }
}
