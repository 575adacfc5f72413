//! `db connections N [--restart | --no-restart]`: set `database.max_connections` inside the
//! ConfigMap's config.yaml (that one line, nothing else), warn when the pools can exceed the
//! database's own limit, then restart the deployment so the pods load it.
//!
//! Confirmation: when a restart follows (the default, or `--restart`) the WHOLE operation is
//! confirmed before anything is written, so "not confirmed" (exit 3) always means nothing was
//! written, as the SPEC's exit code says. `--restart` chooses the restart; it is not a yes
//! (`--yes` is). `--no-restart` changes only the config: no pod restarts, so no prompt.

mod restart;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Patch;
use serde_json::{Map, Value, json};

use super::shared::{audit_not_written, get_unless_forbidden, managed_warning, record_change};
use crate::cli::{Cli, ConnectionsArgs};
use crate::cluster::Cluster;
use crate::cluster::access::{Permission, check_all};
use crate::cluster::api::retry_on_conflict;
use crate::error::Error;
use crate::plan::Change;
use crate::plan::connections::{
    ConnectionsPlan, changed_line, db_max_connections_from, plan_connections, pool_warning,
};
use crate::plan::resources::disruption::rollout_disruption;
use crate::report::Reporter;
use crate::report::preview::Preview;

/// Attempts of the read-plan-write cycle when the ConfigMap changes under us (409).
const MAX_CONFLICT_ATTEMPTS: u32 = 4;

/// What was read before planning.
struct World {
    configmap: ConfigMap,
    deployment: Option<Deployment>,
    hpa_max: Option<i32>,
    db_max: Option<u32>,
}

/// # Errors
/// Usage errors (exit 2: bad N, missing key) before any write; not confirmed (exit 3, nothing
/// written); API, permission, rollout and verification errors (exit 1).
pub async fn run(
    cluster: &Cluster,
    cli: &Cli,
    args: &ConnectionsArgs,
    n: u32,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let t = &cli.targets;
    let dry_run = cli.global.dry_run;
    let world = read_world(cluster, cli, reporter).await?;
    let plan = plan_connections(&world.configmap, &t.config_key, n)?;
    let before = plan.before.as_deref().and_then(|b| b.trim().parse::<u32>().ok());
    let object = format!("configmap/{}", t.configmap);
    let replicas = world
        .deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    let warning = pool_warning(n, world.hpa_max, replicas, world.db_max);

    // With nothing to change, a restart happens only when asked for explicitly.
    let restart = if plan.changes.is_empty() {
        args.restart
    } else {
        !args.no_restart
    };
    let deployment = match (restart, &world.deployment) {
        (true, Some(d)) => Some(d.clone()),
        (true, None) => return Err(missing_deployment(cluster, cli)),
        (false, _) => None,
    };

    if plan.changes.is_empty() {
        if deployment.is_none() {
            if let Some(w) = &warning {
                reporter.warn(w);
            }
            if !args.no_restart {
                reporter.info(&format!(
                    "pods that started before it was set may still use an older value: \
                     `kubectl orchscale db connections {n} --restart` restarts them"
                ));
            }
            finish_document(reporter, cluster, dry_run, &[], before, n, false, true);
            reporter.out(&format!(
                "{object} already has database.max_connections = {n} in {}: nothing to change",
                t.config_key
            ));
            return Ok(());
        }
        reporter.info(&format!(
            "{object} already has database.max_connections = {n} in {}: only the restart is left",
            t.config_key
        ));
    }

    reporter.banner(cluster);
    let disruption = deployment.as_ref().map(rollout_disruption);
    reporter.preview(&preview(
        cli,
        &plan,
        &world,
        warning.as_deref(),
        disruption.as_ref().map(|d| d.summary.as_str()),
    ));
    if let Some(d) = &deployment
        && d.spec.as_ref().and_then(|s| s.paused) == Some(true)
    {
        reporter.warn(&format!(
            "deployment/{} is paused: the restart takes effect only when it is resumed \
             (`kubectl rollout resume deployment/{}`)",
            t.deployment, t.deployment
        ));
    }
    // Permissions before the prompt: no question about a change that would be refused.
    let mut permissions = Vec::new();
    if !plan.changes.is_empty() {
        permissions.push(Permission::new("patch", "", "configmaps", Some(&t.configmap)));
    }
    if deployment.is_some() {
        permissions.push(Permission::new(
            "patch",
            "apps",
            "deployments",
            Some(&t.deployment),
        ));
    }
    check_all(cluster, &permissions).await?;

    // A deployment at 0 replicas restarts no pod: nothing to confirm.
    if let Some(disruption) = disruption.as_ref().filter(|d| d.pods_restarting > 0) {
        // The preview said how; the question repeats the gist: what restarts and with which strategy.
        let how = disruption
            .summary
            .split(": ")
            .next()
            .unwrap_or(&disruption.summary);
        let question = if plan.changes.is_empty() {
            format!("Restart deployment/{} ({how})", t.deployment)
        } else {
            format!(
                "Change {object}, then restart deployment/{} ({how})",
                t.deployment
            )
        };
        reporter
            .confirm(&question, cli.global.yes, dry_run)
            .map_err(|e| match e {
                Error::NotConfirmed { message, hint } if !plan.changes.is_empty() => Error::NotConfirmed {
                    message,
                    hint: format!("{hint}; or change only the config with --no-restart"),
                },
                other => other,
            })?;
    }

    let mut changes = Vec::new();
    if !plan.changes.is_empty() {
        let Some(applied) = write_config(cluster, cli, &world.configmap, n).await? else {
            // Someone set the same value between our read and our write.
            reporter.info(&format!("{object} already has database.max_connections = {n}"));
            finish_document(reporter, cluster, dry_run, &[], before, n, false, true);
            return Ok(());
        };
        if let Err(e) = record_change::<ConfigMap>(
            cluster,
            &t.configmap,
            &command_line(args, n),
            &object,
            &applied.changes,
            dry_run,
        )
        .await
        {
            reporter.warn(&audit_not_written(&e));
        }
        let verb = if dry_run {
            "dry run: the API server accepted"
        } else {
            "applied:"
        };
        reporter.out(&format!(
            "{verb} {object} database.max_connections {} -> {n}",
            applied.before.as_deref().unwrap_or("(unset)")
        ));
        changes = applied.changes;
    }

    let Some(deployment) = deployment else {
        if !dry_run {
            reporter.out(&format!(
                "the orchestrator pods keep the old value until they restart: run \
                 `kubectl orchscale db connections {n} --restart` (or `kubectl rollout restart deployment/{} -n {}`)",
                t.deployment, cluster.namespace
            ));
        }
        finish_document(reporter, cluster, dry_run, &changes, before, n, false, true);
        return Ok(());
    };
    let restarted = restart::restart(cluster, cli, &deployment, &changes, reporter).await;
    match restarted {
        Ok(change) => {
            changes.push(change);
            finish_document(reporter, cluster, dry_run, &changes, before, n, !dry_run, true);
            Ok(())
        }
        Err((change, error)) => {
            changes.extend(change);
            finish_document(reporter, cluster, dry_run, &changes, before, n, true, false);
            Err(error)
        }
    }
}

/// The command as recorded in the audit trail.
fn command_line(args: &ConnectionsArgs, n: u32) -> String {
    let flag = if args.no_restart {
        " --no-restart"
    } else if args.restart {
        " --restart"
    } else {
        ""
    };
    format!("db connections {n}{flag}")
}

async fn read_world(cluster: &Cluster, cli: &Cli, reporter: &mut Reporter) -> Result<World, Error> {
    let t = &cli.targets;
    let hint = format!(
        "check the name (--configmap) and namespace (-n {}); list them with `kubectl get configmaps -n {}`",
        cluster.namespace, cluster.namespace
    );
    let configmap: ConfigMap = cluster.get(&t.configmap, &hint).await?;
    let deployment: Option<Deployment> = cluster.get_opt(&t.deployment).await?;
    let hpa: Option<HorizontalPodAutoscaler> = optional(cluster, &t.hpa, reporter).await?;
    let statefulset: Option<StatefulSet> = optional(cluster, &t.statefulset, reporter).await?;
    let db_max = statefulset.as_ref().and_then(db_max_connections_from);
    match (&statefulset, db_max) {
        (None, _) => reporter.info(&format!(
            "statefulset/{} not found: the database's max_connections is unknown, the pool check is skipped",
            t.statefulset
        )),
        (Some(_), None) => reporter.info(&format!(
            "statefulset/{} does not set max_connections on its command line or env \
             (postgresql.conf or the default applies): the pool check is skipped",
            t.statefulset
        )),
        _ => {}
    }
    Ok(World {
        configmap,
        deployment,
        hpa_max: hpa.and_then(|h| h.spec.map(|s| s.max_replicas)),
        db_max,
    })
}

/// Reads an object that only feeds a warning: without permission to read it, say so and go on.
async fn optional<K>(cluster: &Cluster, name: &str, reporter: &mut Reporter) -> Result<Option<K>, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    get_unless_forbidden(cluster, name, |_| {
        reporter.warn(&format!(
            "cannot read {}/{name} (forbidden): the pool check may be incomplete",
            crate::cluster::api::kind_of::<K>()
        ));
    })
    .await
}

fn missing_deployment(cluster: &Cluster, cli: &Cli) -> Error {
    Error::NotFound {
        kind: "deployment".into(),
        name: cli.targets.deployment.clone(),
        namespace: cluster.namespace.clone(),
        hint: "name the orchestrator with --deployment, or change only the config with --no-restart".into(),
    }
}

fn preview(
    cli: &Cli,
    plan: &ConnectionsPlan,
    world: &World,
    pool_warning: Option<&str>,
    restart: Option<&str>,
) -> Preview {
    let t = &cli.targets;
    let object = format!("configmap/{}", t.configmap);
    let mut consequences = Vec::new();
    let old_text = world
        .configmap
        .data
        .as_ref()
        .and_then(|d| d.get(&t.config_key))
        .cloned()
        .unwrap_or_default();
    match (changed_line(&old_text, &plan.new_text), &plan.before) {
        (Some((line, _, after)), None) => {
            consequences.push(format!("{} line {line} added: {:?}", t.config_key, after))
        }
        (Some((line, before, after)), Some(_)) => consequences.push(format!(
            "{} line {line}: {before:?} -> {after:?} (every other line stays as it is)",
            t.config_key
        )),
        (None, _) => {}
    }
    consequences.push(match restart {
        Some(summary) => format!("then deployment/{} restarts to load it: {summary}", t.deployment),
        None => "no pod restarts: the orchestrator pods keep the old value until they restart (--no-restart)"
            .to_string(),
    });
    let mut warnings: Vec<String> = managed_warning(&object, &world.configmap.metadata)
        .into_iter()
        .collect();
    warnings.extend(pool_warning.map(str::to_string));
    Preview {
        changes: plan.changes.clone(),
        consequences,
        warnings,
    }
}

/// Merge-patches `data[key]` with the resourceVersion read; on 409 re-reads, re-plans and
/// writes again. Checks that the stored text is exactly the planned one. `None` when a
/// re-read shows the value is already there.
async fn write_config(
    cluster: &Cluster,
    cli: &Cli,
    initial: &ConfigMap,
    n: u32,
) -> Result<Option<ConnectionsPlan>, Error> {
    let t = &cli.targets;
    retry_on_conflict(MAX_CONFLICT_ATTEMPTS, |attempt| async move {
        let configmap = if attempt == 1 {
            initial.clone()
        } else {
            cluster
                .get::<ConfigMap>(&t.configmap, "the configmap was deleted meanwhile")
                .await?
        };
        let plan = plan_connections(&configmap, &t.config_key, n)?;
        if plan.changes.is_empty() {
            return Ok(None);
        }
        let stored: ConfigMap = cluster
            .patch(&t.configmap, &Patch::Merge(&plan.patch), cli.global.dry_run)
            .await?;
        let text = stored.data.as_ref().and_then(|d| d.get(&t.config_key));
        if text != Some(&plan.new_text) {
            return Err(Error::failed(
                format!(
                    "configmap/{} does not hold the text written (another writer, or an admission webhook?)",
                    t.configmap
                ),
                "inspect it with `kubectl get configmap -o yaml` and run the command again",
            ));
        }
        Ok(Some(plan))
    })
    .await
}

/// The JSON document: common fields, `maxConnections {before, after}`, `restarted`.
#[expect(clippy::too_many_arguments, reason = "one flat document, built in one place")]
fn finish_document(
    reporter: &mut Reporter,
    cluster: &Cluster,
    dry_run: bool,
    changes: &[Change],
    before: Option<u32>,
    after: u32,
    restarted: bool,
    ok: bool,
) {
    let mut extra = Map::new();
    extra.insert(
        "maxConnections".into(),
        json!({"before": before.map_or(Value::Null, Value::from), "after": after}),
    );
    extra.insert("restarted".into(), json!(restarted));
    reporter.set_document("db connections", cluster, dry_run, changes, ok, extra);
}
