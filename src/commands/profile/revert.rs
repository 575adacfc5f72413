//! `undo` of a whole profile application: when the newest record is a step of an `apply -f`,
//! every record of that application (they share its id) is read, their `previous` values
//! become a profile spec (`plan::profile::records`), and the apply steps write it back in
//! reverse order, each followed and verified, after one preview and one prompt.

use serde::Serialize;

use super::apply::{doc, preflight, table};
use super::preview::combined;
use super::step::{Ctx, Verdict, run_step};
use super::{names, read_world};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::driver::{Proposal, propose};
use crate::error::Error;
use crate::plan::ChangeValue;
use crate::plan::FieldPath;
use crate::plan::field::parse_field;
use crate::plan::profile::ScalingProfile;
use crate::plan::profile::records::{before_application, records_of};
use crate::plan::profile::steps::{StepKind, World, plan_all};
use crate::plan::undo::current_value;
use crate::report::Reporter;

/// # Errors
/// Not confirmed (exit 3), permission and API errors, a step that failed (exit 1).
pub(crate) async fn undo_application(
    cluster: &Cluster,
    cli: &Cli,
    application: &str,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let world = read_world(cluster, cli, reporter).await?;
    let names = names(cli, cluster);
    let dry_run = cli.global.dry_run;
    let records = records_of(&world, application);
    let (before, kept) = before_application(&records);
    reporter.info(&format!(
        "the newest change is a step of the profile application {application} ({} object(s) changed): \
         undoing the whole application",
        records.len()
    ));
    let steps = plan_all(&world, &names, &before, true)?;
    let profile = ScalingProfile::new(format!("before {application}"), before.clone());
    let mut preview = combined(cluster, &world, &names, &profile, &steps, reporter).await?;
    let drift = drift(&world, &records);
    preview.preview.warnings.extend(kept);
    preview.preview.warnings.extend(drift.iter().cloned());
    let to_undo: Vec<StepKind> = steps
        .iter()
        .filter(|s| !s.changes.is_empty())
        .map(|s| s.kind)
        .collect();
    if to_undo.is_empty() {
        for warning in &preview.preview.warnings {
            reporter.warn(warning);
        }
        document(reporter, dry_run, application, &[], true, Vec::new());
        reporter.out(&format!(
            "the objects already have the values they had before the profile application {application}: nothing to undo"
        ));
        return Ok(());
    }
    let question = match (&preview.restarts, drift.is_empty()) {
        (Some(r), _) => Some(format!(
            "Undo the profile application {application}: restarts {r}"
        )),
        (None, false) => Some(format!(
            "Undo the profile application {application}, overwriting values changed since"
        )),
        (None, true) => None,
    };
    let proposal = Proposal {
        preview: preview.preview.clone(),
        alerts: preview.alerts.clone(),
        steps: preflight(
            steps.iter().filter(|s| !s.changes.is_empty()),
            &world,
            &names,
            dry_run,
        ),
        confirm: question,
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run).await?;

    let ctx = Ctx {
        cluster,
        cli,
        names: &names,
        force: true,
        dry_run,
        application: None,
    };
    let command = format!("undo (profile application {application})");
    let mut docs = Vec::new();
    let mut changes = Vec::new();
    // The reverse of the apply order: the HPA first, the database last.
    for (i, kind) in to_undo.iter().rev().enumerate() {
        let object = steps
            .iter()
            .find(|s| s.kind == *kind)
            .map(|s| s.object.clone())
            .unwrap_or_default();
        reporter.info(&format!(
            "undo {}/{}: {} ({object})",
            i + 1,
            to_undo.len(),
            kind.title()
        ));
        match run_step(&ctx, *kind, &before, &command, reporter).await {
            Ok(outcome) => {
                reporter.out(&format!(
                    "undo {}/{} {}: {} ({})",
                    i + 1,
                    to_undo.len(),
                    kind.title(),
                    outcome.verdict.word(),
                    outcome.detail
                ));
                changes.extend(outcome.changes);
                docs.push(doc(i, *kind, &object, outcome.verdict, Some(outcome.detail)));
            }
            Err(failure) => {
                docs.push(doc(
                    i,
                    *kind,
                    &object,
                    Verdict::Failed,
                    Some(failure.error.to_string()),
                ));
                reporter.out(&table(&docs));
                document(reporter, dry_run, application, &changes, false, docs);
                if matches!(failure.error, Error::Interrupted { .. }) {
                    return Err(failure.error);
                }
                return Err(Error::failed(
                    format!(
                        "undo of the profile application {application} stopped at {}: {}",
                        kind.title(),
                        failure.error
                    ),
                    format!(
                        "{}; the steps before it are undone: fix the cause and run `kubectl orchscale undo` again",
                        failure.error.hint()
                    ),
                ));
            }
        }
    }
    reporter.out(&table(&docs));
    document(reporter, dry_run, application, &changes, true, docs);
    reporter.out(&format!(
        "{}the profile application {application} is undone",
        if dry_run { "dry run: " } else { "" }
    ));
    Ok(())
}

/// Fields the application wrote that hold another value now (someone changed them since).
fn drift(world: &World, records: &[crate::plan::audit::LastChange]) -> Vec<String> {
    let objects = [
        (
            "statefulset",
            world
                .statefulset
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok()),
        ),
        (
            "configmap",
            world
                .configmap
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok()),
        ),
        (
            "deployment",
            world
                .deployment
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok()),
        ),
        (
            "horizontalpodautoscaler",
            world.hpa.as_ref().and_then(|o| serde_json::to_value(o).ok()),
        ),
    ];
    let mut found = Vec::new();
    for record in records {
        let kind = record.object.split('/').next().unwrap_or_default();
        let Some((_, Some(object))) = objects.iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        for (field, written) in &record.written {
            let Ok(path) = parse_field(field) else { continue };
            if path == FieldPath::RestartedAt {
                continue;
            }
            let written = ChangeValue::read(&path, written);
            let now = current_value(object, &path);
            if written != now {
                found.push(format!(
                    "{} {field} was changed since the application ({} -> {}): undo overwrites it",
                    record.object,
                    ChangeValue::show(written.as_ref()),
                    ChangeValue::show(now.as_ref())
                ));
            }
        }
    }
    found
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    application: &'a str,
    steps: Vec<super::StepDoc>,
}

fn document(
    reporter: &mut Reporter,
    dry_run: bool,
    application: &str,
    changes: &[crate::plan::Change],
    ok: bool,
    steps: Vec<super::StepDoc>,
) {
    reporter.set_document("undo", dry_run, changes, ok, Fields { application, steps });
}
