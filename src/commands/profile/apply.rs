//! `apply -f`: one preview and one prompt for the whole profile, then each step in the safe
//! order through the write step (`commands::write`), followed and verified before the next,
//! with a verdict per step. A failure stops the run and says which steps are done; a step
//! already in place is `unchanged`, so running it again resumes at the first step not in
//! place. `--rollback-on-failure` applies the state read before the run (as `export` would
//! write it) to the steps that were written, in reverse order, with the same step code.
//!
//! `recommend --apply` runs its proposals, turned into a profile, through the same
//! [`run_application`]: one mechanism for every multi-object change, one audit application id,
//! so that one `undo` reverts it as one.

use serde::Serialize;

use super::preview::combined;
use super::step::{Ctx, Verdict, restart_pending, run_step};
use super::{StepDoc, names, read_world};
use crate::cli::{ApplyArgs, Cli};
use crate::cluster::Cluster;
use crate::commands::driver::{Proposal, propose};
use crate::commands::preflight::{Step, WorkloadKind};
use crate::error::Error;
use crate::plan::Change;
use crate::plan::audit::now_rfc3339;
use crate::plan::profile::steps::{Names, StepKind, StepPlan, World, export, plan_all};
use crate::plan::profile::{ProfileSpec, ScalingProfile};
use crate::report::Reporter;

/// `apply -f`: the profile's application, and its JSON document.
///
/// # Errors
/// An invalid profile or a plan refused (exit 2, nothing written), not confirmed (exit 3),
/// permission and API errors, a step that failed (exit 1, the steps done named), Ctrl-C (130).
pub(crate) async fn run(
    cluster: &Cluster,
    cli: &Cli,
    args: &ApplyArgs,
    profile: &ScalingProfile,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let application = Application {
        profile,
        command: format!("apply -f {}", args.file.display()),
        force: args.force,
        rollback_on_failure: args.rollback_on_failure,
        warnings: Vec::new(),
    };
    let applied = run_application(cluster, cli, &application, reporter).await?;
    let ok = applied.failure.is_none();
    set_document(
        reporter,
        cli.global.dry_run,
        &profile.metadata.name,
        &applied.changes,
        ok,
        applied.steps,
        applied.rolled_back,
    );
    applied.failure.map_or(Ok(()), Err)
}

/// One application of a profile: `apply -f`'s, or `recommend --apply`'s proposals.
pub(crate) struct Application<'a> {
    pub profile: &'a ScalingProfile,
    /// The command as the audit records and the resume hint name it (`apply -f peak.yaml`,
    /// `recommend --apply`), without `kubectl orchscale`.
    pub command: String,
    /// Writes a replica count outside the HPA's range and a pool above what the database
    /// accepts at full scale (else refused, exit 2; the pool guard's warning stays in the preview).
    pub force: bool,
    /// When a step fails, put the steps already applied back, in reverse order.
    pub rollback_on_failure: bool,
    /// The caller's own warnings, shown in the combined preview with the steps' warnings.
    pub warnings: Vec<String>,
}

/// What an application did once its steps ran (or were all in place).
pub(crate) struct Applied {
    /// The changes written, as stored.
    pub changes: Vec<Change>,
    /// Every step with its verdict.
    pub steps: Vec<StepDoc>,
    pub rolled_back: bool,
    /// The stop of a step that failed (the steps name what is done); `None`: applied.
    pub failure: Option<Error>,
}

/// Plans every step, shows one combined preview, asks once, then runs the steps in order,
/// each followed and verified; stops at the first failure (with `rollback_on_failure`, puts
/// back the steps written). The caller sets the JSON document from the [`Applied`].
///
/// # Errors
/// Before any write: a plan refused or the pool guard (exit 2), not confirmed (exit 3),
/// permission and API errors. A step's failure is [`Applied::failure`].
pub(crate) async fn run_application(
    cluster: &Cluster,
    cli: &Cli,
    app: &Application<'_>,
    reporter: &mut Reporter,
) -> Result<Applied, Error> {
    let profile = app.profile;
    let world = read_world(cluster, cli, reporter).await?;
    let names = names(cli, cluster);
    let dry_run = cli.global.dry_run;
    // The state before, as `export` writes it: what --rollback-on-failure puts back.
    let before = export("before", &world, &names)?;
    let steps = plan_all(&world, &names, &profile.spec, app.force)?;
    let mut preview = combined(cluster, &world, &names, profile, &steps, reporter).await?;
    preview.preview.warnings.extend(app.warnings.iter().cloned());
    let pending = restart_pending(&world, &names);
    if pending && preview.restarts.is_none() {
        // The pool is in the config, but an earlier run stopped before the pods loaded it.
        let restart = format!(
            "deployment/{} (its pods still run with the pool an earlier apply wrote before it stopped)",
            names.deployment
        );
        preview
            .preview
            .consequences
            .push(format!("connection pool and restart: restarts {restart}"));
        preview.restarts = Some(restart);
    }
    let name = &profile.metadata.name;
    let command = app.command.as_str();
    if steps.iter().all(|s| s.changes.is_empty()) && !pending {
        for warning in &app.warnings {
            reporter.warn(warning);
        }
        let docs: Vec<StepDoc> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| doc(i, s.kind, &s.object, Verdict::Unchanged, None))
            .collect();
        reporter.out(&format!(
            "profile {name} is in place in namespace {}: nothing to change",
            cluster.namespace
        ));
        return Ok(Applied {
            changes: Vec::new(),
            steps: docs,
            rolled_back: false,
            failure: None,
        });
    }
    if let Some(guard) = preview.pool_guard.as_ref().filter(|_| !app.force) {
        return Err(Error::usage(
            format!("refused: {guard}"),
            "nothing was written; lower spec.pool.connections or the HPA's maxReplicas, or pass --force",
        ));
    }

    let to_run = steps
        .iter()
        .filter(|s| !s.changes.is_empty() || s.kind == StepKind::Pool && pending);
    let proposal = Proposal {
        preview: preview.preview.clone(),
        alerts: preview.alerts.clone(),
        steps: preflight(to_run, &world, &names, dry_run),
        confirm: preview
            .restarts
            .as_ref()
            .map(|r| format!("Apply profile {name}, step by step: restarts {r}")),
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run).await?;

    let application = format!("{name}/{}", now_rfc3339());
    let ctx = Ctx {
        cluster,
        cli,
        names: &names,
        force: app.force,
        dry_run,
        application: Some(&application),
    };
    let total = steps.len();
    let mut docs = Vec::new();
    let mut changes = Vec::new();
    let mut written_steps = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let audit_command = format!(
            "{command} (profile {name}, step {}/{total} {})",
            i + 1,
            step.kind.title()
        );
        reporter.info(&format!(
            "step {}/{total}: {} ({})",
            i + 1,
            step.kind.title(),
            step.object
        ));
        match run_step(&ctx, step.kind, &profile.spec, &audit_command, reporter).await {
            Ok(outcome) => {
                reporter.out(&format!(
                    "step {}/{total} {}: {} ({})",
                    i + 1,
                    step.kind.title(),
                    outcome.verdict.word(),
                    outcome.detail
                ));
                if outcome.verdict == Verdict::Applied {
                    written_steps.push(i);
                }
                changes.extend(outcome.changes);
                docs.push(doc(
                    i,
                    step.kind,
                    &step.object,
                    outcome.verdict,
                    Some(outcome.detail),
                ));
            }
            Err(failure) => {
                if failure.written {
                    written_steps.push(i);
                }
                docs.push(doc(
                    i,
                    step.kind,
                    &step.object,
                    Verdict::Failed,
                    Some(failure.error.to_string()),
                ));
                for (j, rest) in steps.iter().enumerate().skip(i + 1) {
                    docs.push(doc(j, rest.kind, &rest.object, Verdict::NotRun, None));
                }
                let rolled_back = app.rollback_on_failure && !failure.error.keeps_change() && !dry_run;
                let mut rollback_error = None;
                if rolled_back {
                    rollback_error = roll_back(
                        &ctx,
                        &before.spec,
                        command,
                        &steps_kinds(&steps, &written_steps),
                        reporter,
                    )
                    .await
                    .err();
                    for &j in &written_steps {
                        if rollback_error.is_none() {
                            docs[j].verdict = Verdict::RolledBack.word();
                        }
                    }
                }
                reporter.out(&table(&docs));
                let failure = step_failed(
                    i,
                    total,
                    step.kind,
                    command,
                    &docs,
                    failure.error,
                    rolled_back,
                    rollback_error,
                );
                return Ok(Applied {
                    changes,
                    steps: docs,
                    rolled_back,
                    failure: Some(failure),
                });
            }
        }
    }
    reporter.out(&table(&docs));
    reporter.out(&format!(
        "{}profile {name} is applied in namespace {}",
        if dry_run { "dry run: " } else { "" },
        cluster.namespace
    ));
    Ok(Applied {
        changes,
        steps: docs,
        rolled_back: false,
        failure: None,
    })
}

/// The permissions the steps to run need (checked before the prompt), for an application
/// and for its undo.
pub(super) fn preflight<'a>(
    to_run: impl Iterator<Item = &'a StepPlan>,
    world: &World,
    names: &'a Names,
    dry_run: bool,
) -> Vec<Step<'a>> {
    let mut preflight = Vec::new();
    for step in to_run {
        match step.kind {
            StepKind::DatabaseResources => {
                preflight.push(Step::patch("apps", "statefulsets", &names.statefulset));
                preflight.extend(Step::rollout(
                    WorkloadKind::StatefulSet,
                    &names.statefulset,
                    dry_run,
                ));
            }
            StepKind::Pool => {
                preflight.push(Step::patch("", "configmaps", &names.configmap));
                preflight.push(Step::patch("apps", "deployments", &names.deployment));
                preflight.extend(Step::rollout(
                    WorkloadKind::Deployment,
                    &names.deployment,
                    dry_run,
                ));
            }
            StepKind::DeploymentResources | StepKind::Replicas => {
                preflight.push(Step::patch("apps", "deployments", &names.deployment));
                preflight.extend(Step::rollout(
                    WorkloadKind::Deployment,
                    &names.deployment,
                    dry_run,
                ));
            }
            StepKind::Hpa if world.hpa.is_some() => {
                preflight.push(Step::patch("autoscaling", "horizontalpodautoscalers", &names.hpa));
            }
            StepKind::Hpa => preflight.push(Step::Write {
                verb: "create",
                group: "autoscaling",
                resource: "horizontalpodautoscalers",
                name: None,
            }),
        }
    }
    preflight
}

fn steps_kinds(steps: &[StepPlan], indices: &[usize]) -> Vec<StepKind> {
    indices.iter().map(|&i| steps[i].kind).collect()
}

/// The error of a run stopped at step `i`: what failed, which steps are done, how to resume.
#[expect(clippy::too_many_arguments, reason = "one place that words the stop")]
fn step_failed(
    i: usize,
    total: usize,
    kind: StepKind,
    command: &str,
    docs: &[StepDoc],
    error: Error,
    rolled_back: bool,
    rollback_error: Option<Error>,
) -> Error {
    if matches!(error, Error::Interrupted { .. }) {
        return error;
    }
    let done: Vec<String> = docs
        .iter()
        .filter(|d| d.verdict == Verdict::Applied.word() || d.verdict == Verdict::Unchanged.word())
        .map(|d| format!("{} ({})", d.step, d.verdict))
        .collect();
    let done = if done.is_empty() {
        "no step is done".to_string()
    } else {
        format!("steps done: {}", done.join(", "))
    };
    let message = format!("step {}/{total} {} failed: {error}; {done}", i + 1, kind.title());
    let hint = match (rolled_back, rollback_error) {
        (true, None) => format!(
            "the applied steps were rolled back; fix the cause ({}) and run `kubectl orchscale {command}` again",
            error.hint()
        ),
        (true, Some(e)) => format!("the rollback failed too: {e}; check with `kubectl orchscale status`"),
        (false, _) => format!(
            "fix the cause ({}) and run `kubectl orchscale {command}` again: it resumes at the first step not in place",
            error.hint()
        ),
    };
    Error::failed(message, hint)
}

/// Puts back the steps written (`kinds`, in the order they ran) to the state read before the
/// run, in reverse order, with the same step code.
async fn roll_back(
    ctx: &Ctx<'_>,
    before: &ProfileSpec,
    command: &str,
    kinds: &[StepKind],
    reporter: &mut Reporter,
) -> Result<(), Error> {
    for kind in kinds.iter().rev() {
        reporter.warn(&format!("rolling back step {}", kind.title()));
        let audit_command = format!("{command} --rollback-on-failure (restoring {})", kind.title());
        match run_step(ctx, *kind, before, &audit_command, reporter).await {
            Ok(outcome) => reporter.out(&format!(
                "rollback of {}: {} ({})",
                kind.title(),
                outcome.verdict.word(),
                outcome.detail
            )),
            Err(failure) => return Err(failure.error),
        }
    }
    Ok(())
}

pub(super) fn doc(
    i: usize,
    kind: StepKind,
    object: &str,
    verdict: Verdict,
    detail: Option<String>,
) -> StepDoc {
    StepDoc {
        step: i + 1,
        kind,
        object: object.to_string(),
        verdict: verdict.word(),
        detail,
    }
}

/// The verdicts as a table: one line per step.
pub(super) fn table(docs: &[StepDoc]) -> String {
    let mut out = format!("{:<4}  {:<28}  {:<40}  {}\n", "STEP", "WHAT", "OBJECT", "VERDICT");
    for d in docs {
        let kind = serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<4}  {:<28}  {:<40}  {}\n",
            d.step, kind, d.object, d.verdict
        ));
    }
    out.trim_end().to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    profile: &'a str,
    steps: Vec<StepDoc>,
    rolled_back: bool,
}

fn set_document(
    reporter: &mut Reporter,
    dry_run: bool,
    name: &str,
    changes: &[Change],
    ok: bool,
    steps: Vec<StepDoc>,
    rolled_back: bool,
) {
    let fields = Fields {
        profile: name,
        steps,
        rolled_back,
    };
    reporter.set_document("apply", dry_run, changes, ok, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<StepDoc> {
        vec![
            doc(
                0,
                StepKind::DatabaseResources,
                "statefulset/postgres",
                Verdict::Unchanged,
                None,
            ),
            doc(
                1,
                StepKind::Pool,
                "configmap/orchestrator-config",
                Verdict::Applied,
                None,
            ),
            doc(
                2,
                StepKind::DeploymentResources,
                "deployment/orchestrator",
                Verdict::Failed,
                None,
            ),
            doc(
                3,
                StepKind::Hpa,
                "horizontalpodautoscaler/orchestrator",
                Verdict::NotRun,
                None,
            ),
        ]
    }

    #[test]
    fn the_table_has_one_line_per_step_with_its_verdict() {
        let table = table(&docs());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[0].starts_with("STEP  WHAT"), "{table}");
        assert!(
            lines[3].starts_with("3     deployment-resources") && lines[3].ends_with("failed"),
            "{table}"
        );
        assert!(lines[4].ends_with("not run"), "{table}");
    }

    #[test]
    fn a_stop_names_the_steps_done_and_how_to_resume() {
        let error = Error::failed("pods cannot start", "check the quota");
        let stopped = step_failed(
            2,
            4,
            StepKind::DeploymentResources,
            "apply -f peak.yaml",
            &docs(),
            error,
            false,
            None,
        );
        assert_eq!(stopped.exit_code(), 1);
        assert_eq!(
            stopped.to_string(),
            "step 3/4 deployment resources failed: pods cannot start; steps done: 1 (unchanged), 2 (applied)"
        );
        assert!(
            stopped
                .hint()
                .contains("run `kubectl orchscale apply -f peak.yaml` again: it resumes")
        );
        let rolled = step_failed(
            2,
            4,
            StepKind::DeploymentResources,
            "apply -f peak.yaml",
            &docs(),
            Error::failed("x", "y"),
            true,
            None,
        );
        assert!(
            rolled.hint().starts_with("the applied steps were rolled back"),
            "{}",
            rolled.hint()
        );
        let interrupted = Error::Interrupted { applied: "a".into() };
        let kept = step_failed(
            2,
            4,
            StepKind::DeploymentResources,
            "p",
            &docs(),
            interrupted,
            false,
            None,
        );
        assert_eq!(kept.exit_code(), 130, "Ctrl-C stays an interrupt");
    }
}
