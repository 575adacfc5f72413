//! `undo`: find the most recent `orchscale.io/last-change` record on the orchestrator's
//! objects -> plan the restore (pure, `plan::undo`) -> preview -> confirm when pods restart,
//! the HPA is deleted or someone changed the values since -> permissions -> write with the
//! resourceVersion -> a new audit record -> follow the rollout -> verify.
//!
//! The new record's command is `undo` and its previous values are the values the undo replaced,
//! so a second `undo` redoes the change. Undoing `hpa --create` deletes the HPA, and with it
//! the record: the next `undo` then reverts the change recorded before it.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::driver::{Proposal, propose};
use super::preflight::Step;
use super::shared::{hpa_for, managed_warning, selector_string};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::follow::{FollowSpec, follow};
use crate::plan::Change;
use crate::plan::scale::HpaRange;
use crate::plan::undo::{FieldPath, ObjectKind, UndoPlan, UndoWrite, config_restart_needed, plan_undo};
use crate::report::Reporter;
use crate::report::preview::Preview;

/// Runs `$body` with `$K` the k8s-openapi type of `$kind`: the one place where an
/// [`ObjectKind`] read from a record becomes a typed API call.
macro_rules! with_kind {
    ($kind:expr, $K:ident => $body:expr) => {
        match $kind {
            ObjectKind::Deployment => {
                type $K = k8s_openapi::api::apps::v1::Deployment;
                $body
            }
            ObjectKind::StatefulSet => {
                type $K = k8s_openapi::api::apps::v1::StatefulSet;
                $body
            }
            ObjectKind::HorizontalPodAutoscaler => {
                type $K = k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
                $body
            }
            ObjectKind::ConfigMap => {
                type $K = k8s_openapi::api::core::v1::ConfigMap;
                $body
            }
        }
    };
}

mod find;
mod preview;
mod write;

use find::{Found, latest_change};
use preview::{
    applied_text, consequences, downtime_warning, follow_steps, made_line, question, range_warning,
    write_step,
};

/// Undoes the most recent change; a step of a profile application (`apply -f`, `recommend
/// --apply`) undoes the whole application, as one.
///
/// # Errors
/// No record found (exit 1), a record undo cannot restore (exit 2), not confirmed (exit 3),
/// API, permission, rollout and verification errors.
pub async fn run(cluster: &Cluster, cli: &Cli, reporter: &mut Reporter) -> Result<(), Error> {
    let found = latest_change(cluster, cli, reporter).await?;
    if let Some(application) = &found.record.application {
        return super::profile::undo_application(cluster, cli, application, reporter).await;
    }
    let plan = plan_undo(found.kind, &found.object, &found.record)?;
    let record = &found.record;
    let made = made_line(record);
    let dry_run = cli.global.dry_run;

    if plan.write == UndoWrite::Nothing {
        reporter.info(&made);
        for drift in &plan.drift {
            reporter.warn(drift);
        }
        reporter.out(&format!(
            "{} already has the values it had before `{}`: nothing to undo",
            plan.object, record.command
        ));
        document(reporter, dry_run, &plan.changes, true, &found);
        return Ok(());
    }

    reporter.info(&made);
    let meta: ObjectMeta = serde_json::from_value(found.object["metadata"].clone()).unwrap_or_default();
    let mut warnings: Vec<String> = managed_warning(&plan.object, &meta).into_iter().collect();
    warnings.extend(downtime_warning(&found, &plan));
    warnings.extend(plan.drift.iter().cloned());
    if plan.unverified {
        warnings.push(format!(
            "the record does not say what `{}` wrote: undo cannot tell whether the values were changed since",
            record.command
        ));
    }
    let guard = replica_guard(cluster, &found, &plan, reporter).await;
    warnings.extend(
        guard
            .as_ref()
            .and_then(|(range, target)| range_warning(range, *target)),
    );
    let restart = config_restart(cluster, cli, &found, &plan).await?;
    let consequences = consequences(&found, &plan, cli, restart.as_ref());
    let mut steps = vec![write_step(&found, &plan)];
    if restart.is_some() {
        steps.push(Step::patch("apps", "deployments", &cli.targets.deployment));
    }
    if !dry_run {
        steps.extend(follow_steps(
            &found,
            &plan,
            restart.is_some(),
            &cli.targets.deployment,
        ));
    }
    let proposal = Proposal {
        preview: Preview {
            changes: plan.changes.clone(),
            consequences: consequences.clone(),
            warnings,
        },
        alerts: Vec::new(),
        steps,
        confirm: question(&plan, restart.is_some()),
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run).await?;

    let applied = write::apply(cluster, &found, &plan, dry_run, reporter).await?;
    if applied.write == UndoWrite::Nothing {
        // A re-read after a 409 found the values already restored (by someone else).
        reporter.out(&format!(
            "{} already has the values it had before `{}`: nothing to undo",
            applied.object, record.command
        ));
        document(reporter, dry_run, &[], true, &found);
        return Ok(());
    }
    let mut applied_text = applied_text(&applied, &record.command);
    let mut all_changes = applied.changes.clone();
    if let Some(deployment) = &restart {
        let change = super::shared::restart(cluster, deployment, dry_run).await.map_err(|e| {
            Error::failed(
                format!("{applied_text}, but the restart of deployment/{} failed: {e}", cli.targets.deployment),
                format!(
                    "the pods keep the undone value until they restart: `kubectl rollout restart deployment/{} -n {}`",
                    cli.targets.deployment, cluster.namespace
                ),
            )
        })?;
        applied_text.push_str(&format!("; deployment/{} restarted", cli.targets.deployment));
        all_changes.push(change);
    }
    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted: {applied_text}; nothing was persisted"
        ));
        document(reporter, true, &all_changes, true, &found);
        return Ok(());
    }
    reporter.out(&format!("applied: {applied_text}"));

    let followed = match &restart {
        Some(deployment) => follow_restart(cluster, cli, deployment, &applied_text, reporter).await,
        None => {
            let autoscaler = guard.as_ref().map(|(range, _)| range.name.as_str());
            follow_rollout(
                cluster,
                cli,
                &found,
                &applied,
                &applied_text,
                autoscaler,
                reporter,
            )
            .await
        }
    };
    if let Err(failure) = followed {
        document(reporter, false, &all_changes, false, &found);
        return Err(failure);
    }
    verify(cluster, &found, &applied, &all_changes, reporter).await
}

/// For a config change: the deployment to restart so its pods load the restored value, when
/// they were restarted after the change (see [`config_restart_needed`]).
async fn config_restart(
    cluster: &Cluster,
    cli: &Cli,
    found: &Found,
    plan: &UndoPlan,
) -> Result<Option<Deployment>, Error> {
    if found.kind != ObjectKind::ConfigMap || !matches!(plan.write, UndoWrite::Merge(_)) {
        return Ok(None);
    }
    let Some(deployment) = cluster.get_opt::<Deployment>(&cli.targets.deployment).await? else {
        return Ok(None);
    };
    let restarted_at = super::shared::restarted_at(&deployment);
    Ok(config_restart_needed(restarted_at.as_deref(), &found.record.time).then_some(deployment))
}

/// Follows the restart of the deployment after a restored config, and verifies its pods as
/// `db connections` does (one mechanism: `commands::restart`).
async fn follow_restart(
    cluster: &Cluster,
    cli: &Cli,
    deployment: &Deployment,
    applied_text: &str,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    super::restart::follow_restarted(cluster, cli, deployment, applied_text, reporter).await
}

/// The HPA that targets the deployment, with the replica count the undo restores, when the
/// undo restores a replica count. Errors only lose the check (the write is still guarded).
async fn replica_guard(
    cluster: &Cluster,
    found: &Found,
    plan: &UndoPlan,
    reporter: &mut Reporter,
) -> Option<(HpaRange, i32)> {
    if found.kind != ObjectKind::Deployment {
        return None;
    }
    let target = plan
        .changes
        .iter()
        .find(|c| c.field == FieldPath::Replicas)?
        .after
        .as_ref()?
        .as_i32()?;
    let hpa = hpa_for(cluster, "Deployment", &found.name, reporter)
        .await
        .ok()??;
    Some((HpaRange::of(&hpa, &found.name)?, target))
}

/// Follows the rollout a restored replica count or pod template starts.
async fn follow_rollout(
    cluster: &Cluster,
    cli: &Cli,
    found: &Found,
    applied: &UndoPlan,
    applied_text: &str,
    autoscaler: Option<&str>,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let replicas = applied
        .changes
        .iter()
        .find(|c| c.field == FieldPath::Replicas)
        .and_then(|c| c.after.as_ref()?.as_i32());
    if !applied.restarts_pods && replicas.is_none() {
        return Ok(());
    }
    let selector = found.object["spec"]["selector"].clone();
    let selector = serde_json::from_value(selector)
        .map(|s| selector_string(&s))
        .unwrap_or_default();
    let spec = FollowSpec {
        name: &found.name,
        selector: &selector,
        timeout: cli.global.timeout,
        applied: applied_text,
        expected_replicas: replicas,
        autoscaler,
        events_since: found.object["metadata"]["resourceVersion"].as_str(),
    };
    reporter.info("following the rollout");
    match found.kind {
        ObjectKind::Deployment => follow::<Deployment>(cluster, &spec, reporter).await.map(|_| ()),
        ObjectKind::StatefulSet => follow::<StatefulSet>(cluster, &spec, reporter).await.map(|_| ()),
        _ => Ok(()),
    }
}

/// Reads the object again and checks that every restored field holds its previous value.
async fn verify(
    cluster: &Cluster,
    found: &Found,
    applied: &UndoPlan,
    all_changes: &[Change],
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let name = found.name.as_str();
    let now: Option<Value> = with_kind!(found.kind, K => to_json(cluster.get_opt::<K>(name).await?));
    let ok = match (&now, &applied.write) {
        (None, UndoWrite::Delete) => true,
        (Some(object), write) if *write != UndoWrite::Delete => {
            plan_undo(found.kind, object, &found.record)?.changes.is_empty()
        }
        _ => false,
    };
    document(reporter, false, all_changes, ok, found);
    if ok {
        reporter.out(&if applied.write == UndoWrite::Delete {
            format!(
                "{} is gone, as before `{}` created it",
                applied.object, found.record.command
            )
        } else {
            format!(
                "{} is back to its values before `{}`",
                applied.object, found.record.command
            )
        });
        Ok(())
    } else {
        Err(Error::failed(
            format!(
                "verification failed: {} does not hold the restored values",
                applied.object
            ),
            "someone may have changed it meanwhile; check it with `kubectl orchscale status`",
        ))
    }
}

/// The `undo` fields of the JSON document: the change that was reverted.
#[derive(Debug, serde::Serialize)]
struct UndoFields<'a> {
    undone: Undone<'a>,
}

#[derive(Debug, serde::Serialize)]
struct Undone<'a> {
    command: &'a str,
    time: &'a str,
    user: Option<&'a str>,
    object: String,
}

fn to_json<K: serde::Serialize>(object: Option<K>) -> Option<Value> {
    object.and_then(|o| serde_json::to_value(o).ok())
}

fn document(reporter: &mut Reporter, dry_run: bool, changes: &[Change], ok: bool, found: &Found) {
    let fields = UndoFields {
        undone: Undone {
            command: &found.record.command,
            time: &found.record.time,
            user: found.record.user.as_deref(),
            object: format!("{}/{}", found.kind.name(), found.name),
        },
    };
    reporter.set_document("undo", dry_run, changes, ok, fields);
}
