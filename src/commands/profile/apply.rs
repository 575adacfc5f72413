//! `apply -f`: one preview and one prompt for the whole profile, then each step in the safe
//! order through the write step (`commands::write`), followed and verified before the next,
//! with a verdict per step. A failure stops the run and says which steps are done; a step
//! already in place is `unchanged`, so running it again resumes at the first step not in
//! place. `--rollback-on-failure` applies the state read before the run (as `export` would
//! write it) to the steps that were written, in reverse order, with the same step code.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use super::preview::combined;
use super::{StepDoc, names, read_world};
use crate::cli::{ApplyArgs, Cli};
use crate::cluster::Cluster;
use crate::commands::driver::{Proposal, propose};
use crate::commands::preflight::{Step, WorkloadKind};
use crate::commands::resources::Target;
use crate::commands::shared::{hpa_for, restarted_at};
use crate::commands::write::{self, AuditSpec, Body, Intent, Settled, update};
use crate::error::Error;
use crate::follow::{FollowSpec, follow};
use crate::health::{Rollout, Workload};
use crate::plan::Change;
use crate::plan::audit::{now_rfc3339, parse as parse_record};
use crate::plan::connections::plan_connections;
use crate::plan::hpa::{plan_hpa_create, plan_hpa_update};
use crate::plan::profile::steps::{
    Names, StepKind, World, export, hpa_request, plan_all, plan_database, plan_deployment_resources,
};
use crate::plan::profile::{ProfileSpec, ScalingProfile};
use crate::plan::resources::statefulset_disruption;
use crate::plan::scale::{HpaRange, plan as plan_scale, scale_patch};
use crate::plan::undo::config_restart_needed;
use crate::report::Reporter;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Already in place: nothing written.
    Unchanged,
    /// Written, followed and verified (or, with --dry-run, accepted).
    Applied,
    /// Written or tried, and failed.
    Failed,
    /// Not reached: an earlier step failed.
    NotRun,
    /// Applied, then put back by --rollback-on-failure.
    RolledBack,
}

impl Verdict {
    pub(super) fn word(self) -> &'static str {
        match self {
            Verdict::Unchanged => "unchanged",
            Verdict::Applied => "applied",
            Verdict::Failed => "failed",
            Verdict::NotRun => "not run",
            Verdict::RolledBack => "rolled back",
        }
    }
}

/// A step's outcome.
pub(super) struct Outcome {
    pub verdict: Verdict,
    pub changes: Vec<Change>,
    pub detail: String,
}

impl Outcome {
    fn unchanged(detail: impl Into<String>) -> Self {
        Outcome {
            verdict: Verdict::Unchanged,
            changes: Vec::new(),
            detail: detail.into(),
        }
    }

    fn applied(changes: Vec<Change>, detail: impl Into<String>) -> Self {
        Outcome {
            verdict: Verdict::Applied,
            changes,
            detail: detail.into(),
        }
    }
}

/// A step's failure: whether its write was stored (so a rollback must undo it too), and why.
pub(super) struct StepError {
    pub written: bool,
    pub error: Error,
}

/// Before the write: nothing of this step is stored.
fn unwritten(error: Error) -> StepError {
    StepError {
        written: false,
        error,
    }
}

/// After the write: the step's change is stored.
fn after_write(error: Error) -> StepError {
    StepError { written: true, error }
}

/// What every step needs.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub cluster: &'a Cluster,
    pub cli: &'a Cli,
    pub names: &'a Names,
    pub force: bool,
    pub dry_run: bool,
    /// The application id the steps' audit records share (none for a rollback or an undo).
    pub application: Option<&'a str>,
}

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
    let world = read_world(cluster, cli, reporter).await?;
    let names = names(cli, cluster);
    let dry_run = cli.global.dry_run;
    // The state before, as `export` writes it: what --rollback-on-failure puts back.
    let before = export("before", &world, &names)?;
    let steps = plan_all(&world, &names, &profile.spec, args.force)?;
    let mut preview = combined(cluster, &world, &names, profile, &steps, reporter).await?;
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
    let file = args.file.display().to_string();
    if steps.iter().all(|s| s.changes.is_empty()) && !pending {
        let docs: Vec<StepDoc> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| doc(i, s.kind, &s.object, Verdict::Unchanged, None))
            .collect();
        set_document(reporter, dry_run, name, &[], true, docs, false);
        reporter.out(&format!(
            "profile {name} is in place in namespace {}: nothing to change",
            cluster.namespace
        ));
        return Ok(());
    }
    if let Some(guard) = preview.pool_guard.as_ref().filter(|_| !args.force) {
        return Err(Error::usage(
            format!("refused: {guard}"),
            "nothing was written; lower spec.pool.connections or the HPA's maxReplicas, or pass --force",
        ));
    }

    let mut preflight = Vec::new();
    for step in steps
        .iter()
        .filter(|s| !s.changes.is_empty() || s.kind == StepKind::Pool && pending)
    {
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
    let proposal = Proposal {
        preview: preview.preview.clone(),
        alerts: preview.alerts.clone(),
        steps: preflight,
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
        force: args.force,
        dry_run,
        application: Some(&application),
    };
    let total = steps.len();
    let mut docs = Vec::new();
    let mut changes = Vec::new();
    let mut written_steps = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let command = format!(
            "apply -f {file} (profile {name}, step {}/{total} {})",
            i + 1,
            step.kind.title()
        );
        reporter.info(&format!(
            "step {}/{total}: {} ({})",
            i + 1,
            step.kind.title(),
            step.object
        ));
        match run_step(&ctx, step.kind, &profile.spec, &command, reporter).await {
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
                let rolled_back = args.rollback_on_failure && !failure.error.keeps_change() && !dry_run;
                let mut rollback_error = None;
                if rolled_back {
                    rollback_error = roll_back(
                        &ctx,
                        &before.spec,
                        &file,
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
                set_document(
                    reporter,
                    dry_run,
                    name,
                    &changes,
                    false,
                    docs.clone(),
                    rolled_back,
                );
                return Err(step_failed(
                    i,
                    total,
                    step.kind,
                    &file,
                    &docs,
                    failure.error,
                    rolled_back,
                    rollback_error,
                ));
            }
        }
    }
    reporter.out(&table(&docs));
    set_document(reporter, dry_run, name, &changes, true, docs, false);
    reporter.out(&format!(
        "{}profile {name} is applied in namespace {}",
        if dry_run { "dry run: " } else { "" },
        cluster.namespace
    ));
    Ok(())
}

fn steps_kinds(steps: &[crate::plan::profile::steps::StepPlan], indices: &[usize]) -> Vec<StepKind> {
    indices.iter().map(|&i| steps[i].kind).collect()
}

/// The error of a run stopped at step `i`: what failed, which steps are done, how to resume.
#[expect(clippy::too_many_arguments, reason = "one place that words the stop")]
fn step_failed(
    i: usize,
    total: usize,
    kind: StepKind,
    file: &str,
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
            "the applied steps were rolled back; fix the cause ({}) and run `kubectl orchscale apply -f {file}` again",
            error.hint()
        ),
        (true, Some(e)) => format!("the rollback failed too: {e}; check with `kubectl orchscale status`"),
        (false, _) => format!(
            "fix the cause ({}) and run `kubectl orchscale apply -f {file}` again: it resumes at the first step not in place",
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
    file: &str,
    kinds: &[StepKind],
    reporter: &mut Reporter,
) -> Result<(), Error> {
    for kind in kinds.iter().rev() {
        reporter.warn(&format!("rolling back step {}", kind.title()));
        let command = format!(
            "apply -f {file} --rollback-on-failure (restoring {})",
            kind.title()
        );
        match run_step(ctx, *kind, before, &command, reporter).await {
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

/// Whether the pool is set by an earlier `apply` whose restart did not happen (the run
/// stopped between writing the config and restarting): the pods still use the old value, so
/// the pool step is not in place although the config is.
fn restart_pending(world: &World, names: &Names) -> bool {
    let (Some(cm), Some(d)) = (&world.configmap, &world.deployment) else {
        return false;
    };
    pool_restart_pending(cm, d, names)
}

fn pool_restart_pending(cm: &ConfigMap, d: &Deployment, names: &Names) -> bool {
    let Some(record) = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| parse_record(a).ok())
    else {
        return false;
    };
    let ours = record.application.is_some() && record.previous.keys().any(|k| k.contains(&names.config_key));
    ours && !config_restart_needed(restarted_at(d).as_deref(), &record.time)
}

/// Runs one step to `spec`'s values: re-read, re-plan, write (with the audit record), follow,
/// verify. A step whose part of `spec` is absent or in place is `unchanged`.
pub(super) async fn run_step(
    ctx: &Ctx<'_>,
    kind: StepKind,
    spec: &ProfileSpec,
    command: &str,
    reporter: &mut Reporter,
) -> Result<Outcome, StepError> {
    match kind {
        StepKind::DatabaseResources => database(ctx, spec, command, reporter).await,
        StepKind::Pool => pool(ctx, spec, command, reporter).await,
        StepKind::DeploymentResources => deployment_resources(ctx, spec, command, reporter).await,
        StepKind::Hpa => hpa(ctx, spec, command, reporter).await,
        StepKind::Replicas => replicas(ctx, spec, command, reporter).await,
    }
}

/// Whether the workload's rollout is complete (all replicas updated, ready and available).
fn rolled_out<W: Workload>(workload: &W) -> bool {
    matches!(workload.rollout(), Rollout::Complete(_))
}

fn hint(kind: &str, flag: &str) -> String {
    format!("check the name ({flag}) and namespace (-n); list them with `kubectl get {kind}`")
}

async fn database(
    ctx: &Ctx<'_>,
    spec: &ProfileSpec,
    command: &str,
    reporter: &mut Reporter,
) -> Result<Outcome, StepError> {
    let Some(resources) = spec.database.as_ref().and_then(|d| d.resources.as_ref()) else {
        return Ok(Outcome::unchanged("not in the profile"));
    };
    let (cluster, names) = (ctx.cluster, ctx.names);
    let name = names.statefulset.as_str();
    let object = format!("statefulset/{name}");
    let sts: StatefulSet = cluster
        .get(name, &hint("statefulsets", "--statefulset"))
        .await
        .map_err(unwritten)?;
    let audit = AuditSpec::new(cluster, command, object.clone()).in_application(ctx.application);
    let settled = update(cluster, name, sts, &audit, ctx.dry_run, |s| {
        let plan = plan_database(s, names, resources)?;
        Ok(Intent::unless_empty(plan.changes, Body::Strategic(plan.patch)))
    })
    .await
    .map_err(unwritten)?;
    let Settled::Written(written) = settled else {
        return Ok(Outcome::unchanged("in place"));
    };
    written.report(reporter);
    let changes = written.changes.clone();
    let Some(stored) = written.stored.filter(|_| !ctx.dry_run) else {
        return Ok(Outcome::applied(changes, "dry run: accepted"));
    };
    let disruption = statefulset_disruption(&stored);
    if disruption.pods_restarting == 0 {
        return Ok(Outcome::applied(
            changes,
            format!("no rollout: {}", disruption.summary),
        ));
    }
    let selector = stored.selector();
    let applied = format!("{object}: new resources were applied");
    reporter.info(&format!("applied: {object} resources; following the rollout"));
    let spec = FollowSpec {
        name,
        selector: &selector,
        timeout: ctx.cli.global.timeout,
        applied: &applied,
        expected_replicas: None,
        autoscaler: None,
        events_since: stored.metadata.resource_version.as_deref(),
    };
    let done = follow::<StatefulSet>(cluster, &spec, reporter)
        .await
        .map_err(after_write)?;
    let counts = done.counts();
    Ok(Outcome::applied(
        changes,
        format!("rolled out, {}/{} ready", counts.ready, counts.desired),
    ))
}

async fn pool(
    ctx: &Ctx<'_>,
    spec: &ProfileSpec,
    command: &str,
    reporter: &mut Reporter,
) -> Result<Outcome, StepError> {
    let Some(pool) = &spec.pool else {
        return Ok(Outcome::unchanged("not in the profile"));
    };
    let (cluster, names) = (ctx.cluster, ctx.names);
    let n = u32::try_from(pool.connections.0).unwrap_or(0);
    let cm: ConfigMap = cluster
        .get(&names.configmap, &hint("configmaps", "--configmap"))
        .await
        .map_err(unwritten)?;
    let deployment: Option<Deployment> = cluster.get_opt(&names.deployment).await.map_err(unwritten)?;
    let audit = AuditSpec::new(cluster, command, format!("configmap/{}", names.configmap))
        .in_application(ctx.application);
    let settled = update(cluster, &names.configmap, cm, &audit, ctx.dry_run, |c| {
        let plan = plan_connections(c, &names.config_key, n)?;
        Ok(Intent::unless_empty(plan.changes, Body::Merge(plan.patch)))
    })
    .await
    .map_err(unwritten)?;
    let changes = match settled {
        Settled::Written(written) => {
            written.report(reporter);
            written.changes
        }
        Settled::Unchanged(cm) => {
            let pending = match (&cm, &deployment) {
                (Some(cm), Some(d)) => pool_restart_pending(cm, d, names),
                _ => false,
            };
            if !pending {
                return Ok(Outcome::unchanged("in place"));
            }
            reporter.info(&format!(
                "configmap/{} has the pool already, but deployment/{} has not restarted since: restarting it",
                names.configmap, names.deployment
            ));
            Vec::new()
        }
    };
    let Some(deployment) = deployment else {
        return Ok(Outcome::applied(
            changes,
            format!("deployment/{} not found: nothing to restart", names.deployment),
        ));
    };
    match crate::commands::restart::restart(cluster, ctx.cli, &deployment, &changes, reporter).await {
        Ok(restart) => {
            let mut all = changes;
            all.push(restart);
            let detail = if ctx.dry_run {
                "dry run: accepted"
            } else {
                "config written; deployment restarted, all pods new and Ready"
            };
            Ok(Outcome::applied(all, detail))
        }
        Err((_, error)) => Err(StepError {
            written: !changes.is_empty(),
            error,
        }),
    }
}

async fn deployment_resources(
    ctx: &Ctx<'_>,
    spec: &ProfileSpec,
    command: &str,
    reporter: &mut Reporter,
) -> Result<Outcome, StepError> {
    if spec.resources.is_empty() {
        return Ok(Outcome::unchanged("not in the profile"));
    }
    let (cluster, names) = (ctx.cluster, ctx.names);
    let name = names.deployment.as_str();
    let object = format!("deployment/{name}");
    let d: Deployment = cluster
        .get(name, &hint("deployments", "--deployment"))
        .await
        .map_err(unwritten)?;
    let audit = AuditSpec::new(cluster, command, object.clone()).in_application(ctx.application);
    let settled = update(cluster, name, d, &audit, ctx.dry_run, |d| {
        let plan = plan_deployment_resources(d, names, &spec.resources)?;
        Ok(Intent::unless_empty(plan.changes, Body::Strategic(plan.patch)))
    })
    .await
    .map_err(unwritten)?;
    let written = match settled {
        Settled::Written(written) => written,
        // In place, but an earlier run may have stopped before its rollout finished (a pod
        // that could not start, Ctrl-C): the step is done only once the rollout is.
        Settled::Unchanged(Some(current)) if !ctx.dry_run && !rolled_out(&current) => {
            let applied = format!("the resources of {object} were in place; their rollout had not finished");
            crate::commands::restart::follow_restarted(cluster, ctx.cli, &current, &applied, reporter)
                .await
                .map_err(after_write)?;
            return Ok(Outcome::applied(
                Vec::new(),
                "in place; the unfinished rollout finished, all pods new and Ready",
            ));
        }
        Settled::Unchanged(_) => return Ok(Outcome::unchanged("in place")),
    };
    written.report(reporter);
    let changes = written.changes.clone();
    let Some(stored) = written.stored.filter(|_| !ctx.dry_run) else {
        return Ok(Outcome::applied(changes, "dry run: accepted"));
    };
    let applied = format!("the new resources of {object} were applied");
    crate::commands::restart::follow_restarted(cluster, ctx.cli, &stored, &applied, reporter)
        .await
        .map_err(after_write)?;
    Ok(Outcome::applied(changes, "rolled out, all pods new and Ready"))
}

async fn hpa(
    ctx: &Ctx<'_>,
    spec: &ProfileSpec,
    command: &str,
    reporter: &mut Reporter,
) -> Result<Outcome, StepError> {
    let Some(wanted) = &spec.hpa else {
        return Ok(Outcome::unchanged("not in the profile"));
    };
    let (cluster, names) = (ctx.cluster, ctx.names);
    let request = hpa_request(wanted);
    let current = match hpa_for(cluster, "Deployment", &names.deployment, reporter).await {
        Ok(Some(hpa)) => Some(hpa),
        Ok(None) => cluster
            .get_opt::<HorizontalPodAutoscaler>(&names.hpa)
            .await
            .map_err(unwritten)?,
        Err(e) => return Err(unwritten(e)),
    };
    let name = current
        .as_ref()
        .and_then(|h| h.metadata.name.clone())
        .unwrap_or_else(|| names.hpa.clone());
    let audit = AuditSpec::new(cluster, command, format!("horizontalpodautoscaler/{name}"))
        .in_application(ctx.application);
    let settled = match current {
        Some(hpa) => update(cluster, &name, hpa, &audit, ctx.dry_run, |h| {
            let plan = plan_hpa_update(h, &request, None)?;
            Ok(Intent::unless_empty(plan.changes, Body::Merge(plan.patch)))
        })
        .await
        .map_err(unwritten)?,
        None => {
            let plan = plan_hpa_create(&names.namespace, &name, &names.deployment, &request)
                .map_err(|e| unwritten(e.into()))?;
            let body = serde_json::to_value(&plan.hpa).map_err(|e| {
                unwritten(Error::failed(
                    format!("cannot build the HPA: {e}"),
                    "please report it",
                ))
            })?;
            let intent = Intent {
                changes: plan.changes,
                body: Body::Create(body),
            };
            write::write::<HorizontalPodAutoscaler, _>(
                cluster,
                &name,
                None,
                Some(&audit),
                ctx.dry_run,
                |_| Ok(Some(intent.clone())),
            )
            .await
            .map_err(unwritten)?
        }
    };
    let Settled::Written(written) = settled else {
        return Ok(Outcome::unchanged("in place"));
    };
    written.report(reporter);
    // An HPA restarts nothing: it is verified by what the API server stored.
    if ctx.dry_run {
        Ok(Outcome::applied(written.changes, "dry run: accepted"))
    } else if written.differences.is_empty() {
        Ok(Outcome::applied(written.changes, "stored as written"))
    } else {
        Err(after_write(Error::failed(
            format!(
                "horizontalpodautoscaler/{name} was stored with other values: {}",
                written
                    .differences
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "an admission webhook or policy changed it; check it with `kubectl get hpa -o yaml`",
        )))
    }
}

async fn replicas(
    ctx: &Ctx<'_>,
    spec: &ProfileSpec,
    command: &str,
    reporter: &mut Reporter,
) -> Result<Outcome, StepError> {
    let Some(target) = spec.replicas else {
        return Ok(Outcome::unchanged("not in the profile"));
    };
    let (cluster, names) = (ctx.cluster, ctx.names);
    let name = names.deployment.as_str();
    let object = format!("deployment/{name}");
    let d: Deployment = cluster
        .get(name, &hint("deployments", "--deployment"))
        .await
        .map_err(unwritten)?;
    let hpa = hpa_for(cluster, "Deployment", name, reporter)
        .await
        .map_err(unwritten)?;
    let range = hpa.as_ref().and_then(|h| HpaRange::of(h, name));
    let audit = AuditSpec::new(cluster, command, object.clone()).in_application(ctx.application);
    let settled = update(cluster, name, d, &audit, ctx.dry_run, |d| {
        let plan = plan_scale(
            name,
            d.counts().desired,
            i64::from(target.0),
            range.as_ref(),
            ctx.force,
        )?;
        let patch = scale_patch(plan.target, d.metadata.resource_version.as_deref());
        Ok(Intent::unless_empty(plan.changes, Body::Merge(patch)))
    })
    .await
    .map_err(unwritten)?;
    let Settled::Written(written) = settled else {
        return Ok(Outcome::unchanged("in place"));
    };
    written.report(reporter);
    let changes = written.changes.clone();
    let Some(stored) = written.stored.filter(|_| !ctx.dry_run) else {
        return Ok(Outcome::applied(changes, "dry run: accepted"));
    };
    let selector = stored.selector();
    let applied = format!("{object} replicas were set to {}", target.0);
    reporter.info(&format!("applied: {applied}; following the rollout"));
    let follow_spec = FollowSpec {
        name,
        selector: &selector,
        timeout: ctx.cli.global.timeout,
        applied: &applied,
        expected_replicas: Some(target.0),
        autoscaler: hpa.as_ref().and_then(|h| h.metadata.name.as_deref()),
        events_since: stored.metadata.resource_version.as_deref(),
    };
    let done = follow::<Deployment>(cluster, &follow_spec, reporter)
        .await
        .map_err(after_write)?;
    let counts = done.counts();
    Ok(Outcome::applied(
        changes,
        format!("{}/{} ready", counts.ready, counts.desired),
    ))
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
            "peak.yaml",
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
            "peak.yaml",
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
