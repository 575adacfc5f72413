//! `scale --replicas N`: read -> plan (HPA guard) -> preview -> permissions -> patch the
//! scale subresource -> audit -> follow the rollout -> verify the pods and their usage.

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;
use serde_json::{Value, json};

use super::driver::{Proposal, propose};
use super::preflight::{Step, WorkloadKind};
use super::shared::{hpa_for, managed_warning, pod_rows, pods_json, pods_table, selector_string};
use super::write::{AuditSpec, Body, Intent, Settled, update, write_unconditionally};
use crate::cli::{Cli, ScaleArgs};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::follow::{FollowSpec, follow, follow_ignoring, pods_with_problems};
use crate::health::Workload;
use crate::plan::scale::{HpaRange, ScalePlan, plan, scale_patch};
use crate::report::Reporter;
use crate::report::preview::Preview;

/// # Errors
/// Usage errors (exit 2) before any write; API, permission, rollout and verification errors.
pub async fn run(
    cluster: &Cluster,
    cli: &Cli,
    args: &ScaleArgs,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let name = cli.targets.deployment.as_str();
    let dry_run = cli.global.dry_run;
    let not_found_hint = format!(
        "check the name (--deployment) and namespace (-n {}); list them with `kubectl get deployments -n {}`",
        cluster.namespace, cluster.namespace
    );
    let deployment: Deployment = cluster.get(name, &not_found_hint).await?;
    let hpa = find_hpa(cluster, name, reporter).await?;
    let current = deployment.counts().desired;
    let scale_plan = plan(name, current, args.replicas, hpa.as_ref(), args.force)?;
    let selector = deployment
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default();

    if scale_plan.changes.is_empty() {
        hpa_note(reporter, &scale_plan);
        reporter.info(&format!(
            "{} already has {} replicas: nothing to change",
            scale_plan.object, current
        ));
        return verify_and_report(cluster, cli, reporter, &scale_plan, &selector, None).await;
    }

    let mut steps = vec![Step::patch("apps", "deployments", name)];
    steps.extend(Step::rollout(WorkloadKind::Deployment, name, dry_run));
    let proposal = Proposal {
        preview: Preview {
            changes: scale_plan.changes.clone(),
            consequences: scale_plan.consequences.clone(),
            warnings: managed_warning(&scale_plan.object, &deployment.metadata)
                .into_iter()
                .collect(),
        },
        alerts: scale_plan
            .hpa_note
            .iter()
            .filter(|_| scale_plan.hpa_warning)
            .cloned()
            .collect(),
        steps,
        confirm: None,
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run).await?;
    if !scale_plan.hpa_warning
        && let Some(note) = &scale_plan.hpa_note
    {
        reporter.info(note);
    }

    let written = match write_scale(cluster, name, &deployment, hpa.as_ref(), args, dry_run).await? {
        Settled::Written(written) => written,
        Settled::Unchanged(_) => {
            reporter.info(&format!(
                "{} already has {} replicas: nothing to change",
                scale_plan.object, scale_plan.target
            ));
            return verify_and_report(cluster, cli, reporter, &scale_plan, &selector, None).await;
        }
    };
    written.report(reporter);
    // What the cluster holds: the count as stored, from the count it replaced.
    let stored = written
        .stored
        .as_ref()
        .map_or(scale_plan.target, |d| d.counts().desired);
    let before = written.changes.first().and_then(|c| c.before.as_ref()?.as_i32());
    let applied_plan = ScalePlan {
        current: before.unwrap_or(scale_plan.current),
        target: stored,
        changes: written.changes.clone(),
        ..scale_plan.clone()
    };

    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted {} replicas {} -> {}; nothing was persisted",
            applied_plan.object, applied_plan.current, applied_plan.target
        ));
        let fields = ScaleFields {
            replicas: applied_plan.target,
            ready_replicas: Some(deployment_ready(cluster, name).await?),
            pods: Some(json!([])),
            metrics_available: None,
            prediction: prediction_json(&applied_plan),
        };
        reporter.set_document("scale", true, &applied_plan.changes, true, fields);
        return Ok(());
    }

    let applied_text = format!(
        "{} replicas were set to {} (from {})",
        applied_plan.object, applied_plan.target, applied_plan.current
    );
    reporter.info(&format!("applied: {applied_text}; following the rollout"));
    let spec = FollowSpec {
        name,
        selector: &selector,
        timeout: cli.global.timeout,
        applied: &applied_text,
        expected_replicas: Some(applied_plan.target),
        autoscaler: hpa.as_ref().map(|h| h.name.as_str()),
        events_since: written
            .stored
            .as_ref()
            .and_then(|d| d.metadata.resource_version.as_deref()),
    };
    if let Err(failure) = follow::<Deployment>(cluster, &spec, reporter).await {
        let failure = if args.rollback_on_failure && !failure.keeps_change() {
            roll_back(cluster, cli, &applied_plan, &selector, reporter, failure).await
        } else {
            failure
        };
        record_failure(reporter, &applied_plan);
        return Err(failure);
    }
    verify_and_report(
        cluster,
        cli,
        reporter,
        &applied_plan,
        &selector,
        Some(&applied_text),
    )
    .await
}

fn hpa_note(reporter: &mut Reporter, scale_plan: &ScalePlan) {
    if let Some(note) = &scale_plan.hpa_note {
        if scale_plan.hpa_warning {
            reporter.warn(note);
        } else {
            reporter.info(note);
        }
    }
}

/// The range of the HPA that targets the deployment, if any ([`hpa_for`]).
async fn find_hpa(
    cluster: &Cluster,
    deployment: &str,
    reporter: &mut Reporter,
) -> Result<Option<HpaRange>, Error> {
    let hpa = hpa_for(cluster, "Deployment", deployment, reporter).await?;
    Ok(hpa.and_then(|h| HpaRange::of(&h, deployment)))
}

/// Patches `spec.replicas` with the resourceVersion read and the audit record (one request;
/// see [`super::write`]); on 409 re-reads and re-plans. `Unchanged` when a re-read shows the
/// target already reached.
async fn write_scale(
    cluster: &Cluster,
    name: &str,
    initial: &Deployment,
    hpa: Option<&HpaRange>,
    args: &ScaleArgs,
    dry_run: bool,
) -> Result<Settled<Deployment>, Error> {
    let audit = AuditSpec::new(
        cluster,
        format!("scale --replicas {}", args.replicas),
        format!("deployment/{name}"),
    );
    update(cluster, name, initial.clone(), &audit, dry_run, |deployment| {
        let scale_plan = plan(name, deployment.counts().desired, args.replicas, hpa, args.force)?;
        if scale_plan.changes.is_empty() {
            return Ok(None);
        }
        let patch = scale_patch(scale_plan.target, deployment.metadata.resource_version.as_deref());
        Ok(Some(Intent {
            changes: scale_plan.changes,
            body: Body::Merge(patch),
        }))
    })
    .await
}

async fn deployment_ready(cluster: &Cluster, name: &str) -> Result<i32, Error> {
    let d: Deployment = cluster.get(name, "the deployment was deleted meanwhile").await?;
    Ok(d.counts().ready)
}

/// `--rollback-on-failure`: restore the previous count and wait for it; returns the error to
/// report (the original failure, saying whether the rollback worked).
async fn roll_back(
    cluster: &Cluster,
    cli: &Cli,
    applied: &ScalePlan,
    selector: &str,
    reporter: &mut Reporter,
    failure: Error,
) -> Error {
    reporter.warn(&format!(
        "{failure}; rolling back to {} replicas",
        applied.current
    ));
    let failed_pods = pods_with_problems(cluster, selector).await;
    let name = cli.targets.deployment.as_str();
    // No precondition: the rollback restores the count whatever happened to it since.
    let restore = Body::Merge(scale_patch(applied.current, None));
    if let Err(e) = write_unconditionally::<Deployment>(cluster, name, restore, false).await {
        return Error::failed(format!("{failure}; the rollback failed too: {e}"), e.hint());
    }
    let restored = format!(
        "{} was rolled back to {} replicas",
        applied.object, applied.current
    );
    let spec = FollowSpec {
        name,
        selector,
        timeout: cli.global.timeout,
        applied: &restored,
        expected_replicas: Some(applied.current),
        autoscaler: None,
        events_since: None,
    };
    match follow_ignoring::<Deployment>(cluster, &spec, &failed_pods, reporter).await {
        Ok(_) => Error::failed(format!("{failure} (rolled back: {restored})"), failure.hint()),
        Err(e) => Error::failed(format!("{failure}; the rollback did not finish: {e}"), e.hint()),
    }
}

/// The `scale` fields of the JSON document (SPEC: `replicas`, `readyReplicas`, `pods`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaleFields {
    replicas: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_replicas: Option<i32>,
    /// `[{name, ready, cpu, memory, restarts, node}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pods: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_available: Option<bool>,
    /// Where the HPA takes the new count at the current load, as `hpa`'s `prediction`; `null`
    /// without an HPA (or one that does not act).
    prediction: Option<Value>,
}

fn prediction_json(plan: &ScalePlan) -> Option<Value> {
    plan.hpa_prediction
        .as_ref()
        .map(crate::plan::hpa::Prediction::to_json)
}

fn record_failure(reporter: &mut Reporter, applied: &ScalePlan) {
    let fields = ScaleFields {
        replicas: applied.target,
        ready_replicas: None,
        pods: None,
        metrics_available: None,
        prediction: prediction_json(applied),
    };
    reporter.set_document("scale", false, &applied.changes, false, fields);
}

/// Lists the pods (must be N, all Ready) with usage; prints the verdict and the JSON document.
async fn verify_and_report(
    cluster: &Cluster,
    cli: &Cli,
    reporter: &mut Reporter,
    applied: &ScalePlan,
    selector: &str,
    applied_text: Option<&str>,
) -> Result<(), Error> {
    let name = cli.targets.deployment.as_str();
    let deployment: Deployment = cluster.get(name, "the deployment was deleted meanwhile").await?;
    let counts = deployment.counts();
    let (rows, metrics) = pod_rows(cluster, selector).await?;
    let ready = rows.iter().filter(|r| r.ready).count();
    let ok = rows.len() == applied.target as usize && ready == rows.len();

    let fields = ScaleFields {
        replicas: applied.target,
        ready_replicas: Some(counts.ready),
        pods: Some(pods_json(&rows)),
        metrics_available: Some(metrics),
        prediction: prediction_json(applied),
    };
    reporter.set_document("scale", false, &applied.changes, ok, fields);

    if !metrics {
        reporter.info("metrics.k8s.io is not available: CPU/memory per pod are not shown");
    } else if rows.iter().any(|r| r.cpu.is_none()) {
        reporter
            .info("pods without CPU/memory have no metrics sample yet (metrics are sampled periodically)");
    }
    let verdict = if ok {
        format!(
            "{} is at {} replicas, {} ready:",
            applied.object, applied.target, ready
        )
    } else {
        format!(
            "{} should have {} ready pods, found {} pods ({} ready):",
            applied.object,
            applied.target,
            rows.len(),
            ready
        )
    };
    reporter.verdict(ok, &verdict);
    reporter.out(&pods_table(&rows));
    if ok {
        Ok(())
    } else {
        Err(Error::failed(
            format!(
                "verification failed: {} pods found ({} ready), expected {}",
                rows.len(),
                ready,
                applied.target
            ),
            format!(
                "{}; check the pods with `kubectl orchscale status`",
                applied_text.unwrap_or("nothing was changed")
            ),
        ))
    }
}
