//! `hpa [--min] [--max] [--cpu] [--memory] [--create] [--watch]`: read -> plan -> preview ->
//! permissions -> patch (or create) the autoscaling/v2 HPA -> audit -> verify -> watch -> report.
//!
//! Changing an HPA restarts nothing, so there is no prompt. The flags are checked in [`input`]
//! before connecting, `--create` is in [`create`], the live panel in [`watch`], and the
//! cluster's room for the `--min` warning in [`room`].

mod create;
mod input;
mod observe;
pub mod room;
pub mod watch;

pub use input::{HpaInput, input};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::jiff::Timestamp;
use kube::api::Patch;
use serde_json::{Map, json};

use super::shared::{audit_not_written, managed_warning, record_change};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::cluster::access::{Permission, check_all};
use crate::cluster::api::retry_on_conflict;
use crate::error::Error;
use crate::plan::Change;
use crate::plan::hpa::{HpaPlan, hpa_summary, plan_hpa_update, watch_panel_lines};
use crate::report::Reporter;
use crate::report::preview::Preview;
use watch::WatchSpec;

/// Attempts of the read-plan-write cycle when the HPA changes under us (409).
const MAX_CONFLICT_ATTEMPTS: u32 = 4;

/// # Errors
/// Usage errors (exit 2) before any write; a missing HPA (exit 1, hint `--create`); API,
/// permission and verification errors; Ctrl-C while watching after a change (130).
pub async fn run(
    cluster: &Cluster,
    cli: &Cli,
    input: &HpaInput,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let name = cli.targets.hpa.as_str();
    let started = Timestamp::now();
    let current: Option<HorizontalPodAutoscaler> = cluster.get_opt(name).await?;
    let outcome = match (current, input.writes()) {
        (None, _) if input.create => create::create(cluster, cli, input, reporter).await?,
        (None, _) => return Err(missing_hpa(cluster, cli).await),
        (Some(hpa), true) => update(cluster, cli, input, hpa, reporter).await?,
        (Some(hpa), false) => Outcome::unchanged(hpa),
    };
    finish(cluster, cli, input, outcome, started, reporter).await
}

/// What the write did, for the report.
#[derive(Debug, Clone)]
struct Outcome {
    hpa: HorizontalPodAutoscaler,
    changes: Vec<Change>,
    effect: Option<String>,
    /// "horizontalpodautoscaler/x: min 3 -> 5", said on Ctrl-C and in the result.
    applied: Option<String>,
}

impl Outcome {
    fn unchanged(hpa: HorizontalPodAutoscaler) -> Self {
        Outcome {
            hpa,
            changes: Vec::new(),
            effect: None,
            applied: None,
        }
    }
}

async fn missing_hpa(cluster: &Cluster, cli: &Cli) -> Error {
    let deployment = &cli.targets.deployment;
    let other = other_hpa_for(cluster, deployment).await.ok().flatten();
    let hint = match other {
        Some(other) => {
            format!("horizontalpodautoscaler/{other} targets deployment/{deployment}: use `--hpa {other}`")
        }
        None => format!(
            "create it with `kubectl orchscale hpa --create --min N --max N [--cpu PCT]` \
             (autoscaling/v2, targeting deployment/{deployment})"
        ),
    };
    Error::NotFound {
        kind: "horizontalpodautoscaler".into(),
        name: cli.targets.hpa.clone(),
        namespace: cluster.namespace.clone(),
        hint,
    }
}

/// The name of an HPA that already scales the deployment, if any.
async fn other_hpa_for(cluster: &Cluster, deployment: &str) -> Result<Option<String>, Error> {
    let hpas: Vec<HorizontalPodAutoscaler> = cluster.list("").await?;
    Ok(hpas.into_iter().find_map(|h| {
        let target = &h.spec.as_ref()?.scale_target_ref;
        (target.kind == "Deployment" && target.name == deployment).then(|| h.metadata.name.clone())?
    }))
}

/// The HPA with the deployment's replica count as its current one: the HPA's own status may be
/// a sync period old (or absent), and the deployment is what the HPA acts on.
fn with_live_replicas(
    hpa: &HorizontalPodAutoscaler,
    deployment: Option<&Deployment>,
) -> HorizontalPodAutoscaler {
    let mut hpa = hpa.clone();
    if let Some(replicas) = deployment.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) {
        hpa.status.get_or_insert_with(Default::default).current_replicas = Some(replicas);
    }
    hpa
}

async fn update(
    cluster: &Cluster,
    cli: &Cli,
    input: &HpaInput,
    hpa: HorizontalPodAutoscaler,
    reporter: &mut Reporter,
) -> Result<Outcome, Error> {
    let name = cli.targets.hpa.as_str();
    if input.create {
        reporter.info(&format!(
            "horizontalpodautoscaler/{name} exists already: changing only the given fields"
        ));
    }
    let deployment_name = hpa
        .spec
        .as_ref()
        .map(|s| s.scale_target_ref.name.clone())
        .unwrap_or_else(|| cli.targets.deployment.clone());
    let deployment: Option<Deployment> = cluster.get_opt(&deployment_name).await?;
    let room = match (&deployment, input.request.min) {
        (Some(d), Some(_)) => room::room(cluster, d, reporter).await,
        _ => None,
    };
    let plan = plan_hpa_update(
        &with_live_replicas(&hpa, deployment.as_ref()),
        &input.request,
        room,
    )?;
    if plan.changes.is_empty() {
        reporter.info(&format!(
            "horizontalpodautoscaler/{name} already has these values: nothing to change"
        ));
        return Ok(Outcome::unchanged(hpa));
    }

    reporter.banner(cluster);
    let object = format!("horizontalpodautoscaler/{name}");
    let mut warnings: Vec<String> = managed_warning(&object, &hpa.metadata).into_iter().collect();
    warnings.extend(plan.warnings.iter().cloned());
    reporter.preview(&Preview {
        changes: plan.changes.clone(),
        consequences: vec![plan.effect.clone(), "no pod restarts".into()],
        warnings,
    });
    check_all(
        cluster,
        &[Permission::new(
            "patch",
            "autoscaling",
            "horizontalpodautoscalers",
            Some(name),
        )],
    )
    .await?;

    let dry_run = cli.global.dry_run;
    let Some((applied, stored)) = write_update(cluster, cli, &hpa, deployment.as_ref(), input, room).await?
    else {
        reporter.info(&format!("{object} already has these values: nothing to change"));
        let hpa = cluster.get(name, "the HPA was deleted meanwhile").await?;
        return Ok(Outcome::unchanged(hpa));
    };
    verify(&object, &applied, &stored)?;
    // The change is made: a failed audit record must not hide that, so it is a warning.
    if let Err(e) = record_change::<HorizontalPodAutoscaler>(
        cluster,
        name,
        &input.command_line(),
        &object,
        &applied.changes,
        dry_run,
    )
    .await
    {
        reporter.warn(&audit_not_written(&e));
    }
    let summary = changes_text(&applied.changes);
    let applied_text = format!("{object}: {summary}");
    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted {applied_text}; nothing was persisted"
        ));
    } else {
        reporter.out(&format!("applied: {applied_text}"));
        reporter.out(&format!("expected effect: {}", applied.effect));
    }
    Ok(Outcome {
        hpa: stored,
        changes: applied.changes,
        effect: Some(applied.effect),
        applied: Some(format!("{applied_text} was applied")),
    })
}

/// Patches with the resourceVersion read; on 409 re-reads, re-plans and writes again.
/// `None` when a re-read shows the values are already there.
async fn write_update(
    cluster: &Cluster,
    cli: &Cli,
    initial: &HorizontalPodAutoscaler,
    deployment: Option<&Deployment>,
    input: &HpaInput,
    room: Option<i32>,
) -> Result<Option<(HpaPlan, HorizontalPodAutoscaler)>, Error> {
    let name = cli.targets.hpa.as_str();
    retry_on_conflict(MAX_CONFLICT_ATTEMPTS, |attempt| async move {
        let hpa = if attempt == 1 {
            initial.clone()
        } else {
            cluster.get(name, "the HPA was deleted meanwhile").await?
        };
        let plan = plan_hpa_update(&with_live_replicas(&hpa, deployment), &input.request, room)?;
        if plan.changes.is_empty() {
            return Ok(None);
        }
        let stored = cluster
            .patch::<HorizontalPodAutoscaler, _>(name, &Patch::Merge(&plan.patch), cli.global.dry_run)
            .await?;
        Ok(Some((plan, stored)))
    })
    .await
}

/// The stored HPA must carry the planned bounds and metrics (the patch response is the stored
/// object, or with --dry-run the object as it would be stored).
fn verify(object: &str, plan: &HpaPlan, stored: &HorizontalPodAutoscaler) -> Result<(), Error> {
    let Some(spec) = stored.spec.as_ref() else {
        return Err(Error::failed(
            format!("{object} came back without a spec"),
            "inspect it with `kubectl get hpa -o yaml`",
        ));
    };
    let wanted = &plan.new_spec;
    let same = spec.min_replicas.unwrap_or(1) == wanted.min_replicas.unwrap_or(1)
        && spec.max_replicas == wanted.max_replicas
        && spec.metrics == wanted.metrics;
    if same {
        Ok(())
    } else {
        Err(Error::failed(
            format!("{object} does not hold the values written (another writer, or an admission webhook?)"),
            "inspect it with `kubectl get hpa -o yaml` and run the command again",
        ))
    }
}

/// `minReplicas 3 -> 5, maxReplicas 10 -> 20`
fn changes_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            let field = c.field.strip_prefix("spec.").unwrap_or(&c.field);
            format!(
                "{field} {} -> {}",
                c.before.as_deref().unwrap_or("(unset)"),
                c.after.as_deref().unwrap_or("(unset)")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Watches when asked, then reports the HPA's state (text on stdout, or the JSON document).
async fn finish(
    cluster: &Cluster,
    cli: &Cli,
    input: &HpaInput,
    outcome: Outcome,
    started: Timestamp,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let dry_run = cli.global.dry_run;
    let document = |reporter: &mut Reporter, hpa: &HorizontalPodAutoscaler| {
        let mut extra = Map::new();
        extra.insert("hpa".into(), hpa_summary(hpa));
        if let Some(effect) = &outcome.effect {
            extra.insert("effect".into(), json!(effect));
        }
        reporter.set_document("hpa", cluster, dry_run, &outcome.changes, true, extra);
    };
    // Recorded before watching too, so that a watch ending in an error (Ctrl-C after the
    // change, the HPA deleted) still reports the change made, marked failed.
    document(reporter, &outcome.hpa);
    let mut hpa = outcome.hpa.clone();
    if input.watch {
        if dry_run && outcome.applied.is_some() {
            reporter.info("dry run: watching the HPA as it is in the cluster (unchanged)");
        }
        let spec = WatchSpec {
            name: &cli.targets.hpa,
            timeout: cli.global.timeout,
            applied: outcome.applied.as_deref().filter(|_| !dry_run),
            since: outcome.applied.is_some().then_some(started),
        };
        if let Some(latest) = watch::watch(cluster, &spec, reporter).await? {
            hpa = latest;
        }
    }
    let changed = outcome.applied.is_some() && !dry_run;
    if changed && !input.watch {
        let generation = hpa.metadata.generation.unwrap_or_default();
        let wait = cli.global.timeout.min(observe::OBSERVE_WAIT);
        match observe::observed(cluster, &cli.targets.hpa, generation, wait).await {
            Some(latest) => hpa = latest,
            None => reporter.info(
                "the HPA controller has not reported on the new spec yet: the status below predates the change",
            ),
        }
    }
    document(reporter, &hpa);
    reporter.out(&watch_panel_lines(&hpa, &[]).join("\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::hpa::HpaRequest;

    fn hpa(v: serde_json::Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn changes_read_as_one_line() {
        let changes = vec![
            Change::new("h", "spec.minReplicas", Some("3".into()), Some("5".into())),
            Change::new(
                "h",
                "spec.metrics[memory].target.averageUtilization",
                None,
                Some("75%".into()),
            ),
        ];
        assert_eq!(
            changes_text(&changes),
            "minReplicas 3 -> 5, metrics[memory].target.averageUtilization (unset) -> 75%"
        );
    }

    #[test]
    fn live_replicas_come_from_the_deployment() {
        let stale = hpa(serde_json::json!({"metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 10},
            "status": {"currentReplicas": 0, "desiredReplicas": 3}}));
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": 3, "selector": {}, "template": {}}}))
        .unwrap();
        let live = with_live_replicas(&stale, Some(&deployment));
        assert_eq!(live.status.as_ref().and_then(|s| s.current_replicas), Some(3));
        assert_eq!(live.status.as_ref().map(|s| s.desired_replicas), Some(3));
        assert_eq!(with_live_replicas(&stale, None), stale);
    }

    #[test]
    fn verification_compares_bounds_and_metrics() {
        let current = hpa(
            serde_json::json!({"metadata": {"name": "h", "resourceVersion": "1"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 3, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                  "target": {"type": "Utilization", "averageUtilization": 70}}}]}}),
        );
        let request = HpaRequest {
            min: Some(5),
            ..HpaRequest::default()
        };
        let plan = plan_hpa_update(&current, &request, None).unwrap();
        let mut stored = current.clone();
        stored.spec.as_mut().unwrap().min_replicas = Some(5);
        assert!(verify("h", &plan, &stored).is_ok());
        assert_eq!(verify("h", &plan, &current).unwrap_err().exit_code(), 1);
        stored.spec.as_mut().unwrap().metrics = None;
        assert!(verify("h", &plan, &stored).is_err(), "a dropped metric is caught");
    }
}
