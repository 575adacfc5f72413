//! `recommend --apply`: the proposals planned by the existing planners (resources, `db
//! connections`, `hpa`), shown in one preview, confirmed once, then written in order —
//! database, pool, deployment, HPA — each through `commands::write` with an audit record of
//! one shared group (so one `undo` restores them all), following each rollout.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;

use super::gather::Objects;
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::driver::{Proposal, propose};
use crate::commands::preflight::{Step, WorkloadKind};
use crate::commands::resources::Target;
use crate::commands::shared::managed_warning;
use crate::commands::write::{self, AuditSpec, Body, Intent, Settled, update};
use crate::error::Error;
use crate::follow::{FollowSpec, follow};
use crate::plan::Change;
use crate::plan::connections::plan_connections;
use crate::plan::hpa::plan_hpa_update;
use crate::plan::recommend::Report;
use crate::plan::recommend::apply::{container_lists, hpa_request, pool, workload_plan};
use crate::report::Reporter;
use crate::report::preview::Preview;

/// The command line the audit records name.
const COMMAND: &str = "recommend --apply";

fn template_plan<W: Target>(
    workload: &W,
    object: &str,
    report: &Report,
) -> Result<(Vec<Change>, serde_json::Value), Error> {
    let empty = Default::default();
    let template = workload.template().unwrap_or(&empty);
    let rv = workload.meta().resource_version.clone().unwrap_or_default();
    Ok(workload_plan(
        template,
        object,
        &container_lists(&report.recommendations, object),
        &rv,
    )?)
}

/// Plans everything, previews and confirms once, writes in order and follows the rollouts;
/// returns the changes as stored.
///
/// # Errors
/// A plan refused (exit 2), not confirmed (exit 3), permission, write, rollout errors.
pub(crate) async fn apply(
    cluster: &Cluster,
    cli: &Cli,
    objects: &Objects<'_>,
    report: &Report,
    reporter: &mut Reporter,
) -> Result<Vec<Change>, Error> {
    let t = &cli.targets;
    let dry_run = cli.global.dry_run;
    let sts_object = format!("statefulset/{}", t.statefulset);
    let cm_object = format!("configmap/{}", t.configmap);
    let dep_object = format!("deployment/{}", t.deployment);
    let hpa_object = format!("horizontalpodautoscaler/{}", t.hpa);

    // Every plan first: a refused one stops the command before anything is written.
    let sts_plan = match objects.statefulset {
        Some(sts) => Some(template_plan(sts, &sts_object, report)?),
        None => None,
    };
    let pool_size = pool(&report.recommendations, &cm_object);
    let cm_plan = match (objects.configmap, pool_size) {
        (Some(cm), Some(n)) => Some(plan_connections(cm, &t.config_key, n)?),
        _ => None,
    };
    let dep_plan = template_plan(objects.deployment, &dep_object, report)?;
    let request = hpa_request(&report.recommendations, &hpa_object);
    let hpa_plan = match objects.hpa {
        Some(hpa) if request != Default::default() => Some(plan_hpa_update(hpa, &request, None)?),
        _ => None,
    };

    let mut changes: Vec<Change> = Vec::new();
    let mut consequences = Vec::new();
    let mut warnings = Vec::new();
    let mut steps = Vec::new();
    let mut restarts = Vec::new();
    if let (Some(sts), Some((c, _))) = (objects.statefulset, &sts_plan)
        && !c.is_empty()
    {
        changes.extend(c.iter().cloned());
        let disruption = sts.disruption();
        consequences.push(format!("1. {sts_object}: {}", disruption.summary));
        warnings.extend(managed_warning(&sts_object, &sts.metadata));
        if disruption.downtime {
            warnings.push(format!("DOWNTIME: {}", disruption.summary));
        }
        if disruption.pods_restarting > 0 {
            restarts.push(format!("{sts_object}: {}", disruption.summary));
        }
        steps.push(Step::patch("apps", "statefulsets", &t.statefulset));
        steps.extend(Step::rollout(WorkloadKind::StatefulSet, &t.statefulset, dry_run));
    }
    if let (Some(cm), Some(plan)) = (objects.configmap, &cm_plan)
        && !plan.changes.is_empty()
    {
        changes.extend(plan.changes.iter().cloned());
        consequences.push(format!(
            "2. {cm_object}: the pool per pod; the deployment's pods load it when they restart"
        ));
        // Until step 4 lowers maxReplicas, the HPA may still reach the old maximum.
        let old_max = objects.hpa.and_then(|h| h.spec.as_ref()).map(|s| s.max_replicas);
        let db_max = objects
            .statefulset
            .and_then(crate::plan::connections::db_max_connections_from);
        let replicas = objects
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        if let Some(n) = pool_size
            && let Some(warning) = crate::plan::connections::pool_warning(n, old_max, replicas, db_max)
        {
            warnings.push(format!(
                "between steps 2 and 4 (until the new maxReplicas is written): {warning}"
            ));
        }
        warnings.extend(managed_warning(&cm_object, &cm.metadata));
        steps.push(Step::patch("", "configmaps", &t.configmap));
    }
    if !dep_plan.0.is_empty() {
        changes.extend(dep_plan.0.iter().cloned());
        let disruption = objects.deployment.disruption();
        consequences.push(format!("3. {dep_object}: {}", disruption.summary));
        warnings.extend(managed_warning(&dep_object, &objects.deployment.metadata));
        if disruption.pods_restarting > 0 {
            restarts.push(format!("{dep_object}: {}", disruption.summary));
        }
        steps.push(Step::patch("apps", "deployments", &t.deployment));
        steps.extend(Step::rollout(WorkloadKind::Deployment, &t.deployment, dry_run));
    }
    if let (Some(hpa), Some(plan)) = (objects.hpa, &hpa_plan)
        && !plan.changes.is_empty()
    {
        changes.extend(plan.changes.iter().cloned());
        consequences.push(format!("4. {hpa_object}: {}", plan.effect.text));
        warnings.extend(managed_warning(&hpa_object, &hpa.metadata));
        warnings.extend(plan.warnings.iter().cloned());
        steps.push(Step::patch("autoscaling", "horizontalpodautoscalers", &t.hpa));
    }
    if changes.is_empty() {
        reporter.out("nothing to apply: every value already is the recommended one");
        return Ok(Vec::new());
    }
    let proposal = Proposal {
        preview: Preview {
            changes: changes.clone(),
            consequences,
            warnings,
        },
        alerts: Vec::new(),
        steps,
        confirm: (!restarts.is_empty())
            .then(|| format!("apply the recommendations ({})", restarts.join("; "))),
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run).await?;

    let mut audit = AuditSpec::new(cluster, COMMAND, "");
    audit.group = write::write_id();
    let mut stored_changes = Vec::new();
    if let Some(sts) = objects.statefulset
        && sts_plan.as_ref().is_some_and(|(c, _)| !c.is_empty())
    {
        let audit = AuditSpec {
            object: sts_object.clone(),
            ..audit.clone()
        };
        let written =
            write_template(cluster, &t.statefulset, sts, &sts_object, report, &audit, dry_run).await?;
        stored_changes
            .extend(follow_written::<StatefulSet>(cluster, cli, &t.statefulset, written, reporter).await?);
    }
    if let (Some(cm), Some(n)) = (objects.configmap, pool_size)
        && cm_plan.as_ref().is_some_and(|p| !p.changes.is_empty())
    {
        let audit = AuditSpec {
            object: cm_object.clone(),
            ..audit.clone()
        };
        let key = t.config_key.clone();
        let settled = update(
            cluster,
            &t.configmap,
            cm.clone(),
            &audit,
            dry_run,
            |current: &ConfigMap| {
                let plan = plan_connections(current, &key, n)?;
                Ok(Intent::unless_empty(plan.changes, Body::Merge(plan.patch)))
            },
        )
        .await?;
        if let Settled::Written(written) = settled {
            written.report(reporter);
            reporter.info(&format!(
                "{}: {cm_object} database.max_connections = {n}",
                done_word(dry_run)
            ));
            stored_changes.extend(written.changes);
        }
    }
    if !dep_plan.0.is_empty() {
        let audit = AuditSpec {
            object: dep_object.clone(),
            ..audit.clone()
        };
        let written = write_template(
            cluster,
            &t.deployment,
            objects.deployment,
            &dep_object,
            report,
            &audit,
            dry_run,
        )
        .await?;
        stored_changes
            .extend(follow_written::<Deployment>(cluster, cli, &t.deployment, written, reporter).await?);
    }
    if let Some(hpa) = objects.hpa
        && hpa_plan.as_ref().is_some_and(|p| !p.changes.is_empty())
    {
        let audit = AuditSpec {
            object: hpa_object.clone(),
            ..audit.clone()
        };
        let settled = update(
            cluster,
            &t.hpa,
            hpa.clone(),
            &audit,
            dry_run,
            |current: &HorizontalPodAutoscaler| {
                let plan = plan_hpa_update(current, &request, None)?;
                Ok(Intent::unless_empty(plan.changes, Body::Merge(plan.patch)))
            },
        )
        .await?;
        if let Settled::Written(written) = settled {
            written.report(reporter);
            reporter.info(&format!("{}: {hpa_object}", done_word(dry_run)));
            stored_changes.extend(written.changes);
        }
    }
    reporter.out(&if dry_run {
        format!(
            "dry run: the API server accepted {} changes; nothing was persisted",
            stored_changes.len()
        )
    } else {
        format!(
            "applied {} changes (database, pool, deployment, HPA); `kubectl orchscale undo` reverts them all",
            stored_changes.len()
        )
    });
    Ok(stored_changes)
}

/// What a write did: with --dry-run the API server only accepted it.
fn done_word(dry_run: bool) -> &'static str {
    if dry_run { "accepted (dry run)" } else { "applied" }
}

/// The workload's joined resources patch, re-planned on a conflict.
async fn write_template<W: Target>(
    cluster: &Cluster,
    name: &str,
    workload: &W,
    object: &str,
    report: &Report,
    audit: &AuditSpec,
    dry_run: bool,
) -> Result<Settled<W>, Error> {
    update(cluster, name, workload.clone(), audit, dry_run, |current: &W| {
        let (changes, patch) = template_plan(current, object, report)?;
        Ok(Intent::unless_empty(changes, Body::Strategic(patch)))
    })
    .await
}

/// Follows the rollout a template write started (not with --dry-run, nor when it restarts
/// nothing); returns the changes as stored.
async fn follow_written<W: Target>(
    cluster: &Cluster,
    cli: &Cli,
    name: &str,
    settled: Settled<W>,
    reporter: &mut Reporter,
) -> Result<Vec<Change>, Error> {
    let Settled::Written(written) = settled else {
        return Ok(Vec::new());
    };
    written.report(reporter);
    let Some(stored) = written.stored.as_ref() else {
        return Ok(written.changes);
    };
    let object = format!("{}/{name}", W::KIND);
    if cli.global.dry_run || stored.disruption().pods_restarting == 0 {
        reporter.info(&format!("{}: {object}", done_word(cli.global.dry_run)));
        return Ok(written.changes);
    }
    let selector = stored.selector();
    let applied = format!("the new resources of {object} were applied");
    reporter.info(&format!("applied: {object}; following the rollout"));
    let spec = FollowSpec {
        name,
        selector: &selector,
        timeout: cli.global.timeout,
        applied: &applied,
        expected_replicas: None,
        autoscaler: None,
        events_since: stored.meta().resource_version.as_deref(),
    };
    let latest = follow::<W>(cluster, &spec, reporter).await?;
    let counts = latest.counts();
    reporter.info(&format!(
        "{object} rolled out: {} of {} pods updated, {} ready",
        counts.updated, counts.desired, counts.ready
    ));
    Ok(written.changes)
}
