//! One step of a profile application, run to a profile's values: re-read the object, re-plan
//! with the single command's planner, write through the write step (with the audit record and
//! the application's id), follow the rollout and verify it. `apply`, its rollback and the undo
//! of an application all run their steps here.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;

use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::resources::Target;
use crate::commands::shared::{hpa_for, restarted_at};
use crate::commands::write::{self, AuditSpec, Body, Intent, Settled, update};
use crate::error::Error;
use crate::follow::{FollowSpec, follow};
use crate::health::{Rollout, Workload};
use crate::plan::Change;
use crate::plan::audit::parse as parse_record;
use crate::plan::connections::plan_connections;
use crate::plan::hpa::{plan_hpa_create, plan_hpa_update};
use crate::plan::profile::ProfileSpec;
use crate::plan::profile::steps::{
    Names, StepKind, World, hpa_request, plan_database, plan_deployment_resources,
};
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

/// A settled write, reported: its changes and the object as stored, to follow; or, when there
/// is nothing to follow (a dry run stores nothing), the step's end.
fn reported<K>(
    written: write::Written<K>,
    dry_run: bool,
    reporter: &mut Reporter,
) -> Result<(Vec<Change>, K), Outcome> {
    written.report(reporter);
    let changes = written.changes.clone();
    match written.stored.filter(|_| !dry_run) {
        Some(stored) => Ok((changes, stored)),
        None => Err(Outcome::applied(changes, "dry run: accepted")),
    }
}

/// A step's failure: whether its write was stored (so a rollback must undo it too), and why.
pub(super) struct StepError {
    pub written: bool,
    pub error: Error,
}

/// Before the write: nothing of this step is stored.
pub(super) fn unwritten(error: Error) -> StepError {
    StepError {
        written: false,
        error,
    }
}

/// After the write: the step's change is stored.
pub(super) fn after_write(error: Error) -> StepError {
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

/// Whether the pool is set by an earlier `apply` whose restart did not happen (the run
/// stopped between writing the config and restarting): the pods still use the old value, so
/// the pool step is not in place although the config is.
pub(super) fn restart_pending(world: &World, names: &Names) -> bool {
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
    let (changes, stored) = match reported(written, ctx.dry_run, reporter) {
        Ok(written) => written,
        Err(done) => return Ok(done),
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
    let (changes, stored) = match reported(written, ctx.dry_run, reporter) {
        Ok(written) => written,
        Err(done) => return Ok(done),
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
    let (changes, stored) = match reported(written, ctx.dry_run, reporter) {
        Ok(written) => written,
        Err(done) => return Ok(done),
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
