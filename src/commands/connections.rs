//! `db connections N [--restart | --no-restart]`: set `database.max_connections` inside the
//! ConfigMap's config.yaml (that one line, nothing else), warn when the pools can exceed the
//! database's own limit, then restart the deployment so the pods load it.
//!
//! Confirmation: when a restart follows (the default, or `--restart`) the WHOLE operation is
//! confirmed before anything is written, so "not confirmed" (exit 3) always means nothing was
//! written, as the SPEC's exit code says. `--restart` chooses the restart; it is not a yes
//! (`--yes` is). `--no-restart` changes only the config: no pod restarts, so no prompt.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;

use super::driver::{Proposal, propose};
use super::preflight::{Step, WorkloadKind};
use super::shared::{get_unless_forbidden, managed_warning};
use super::write::{AuditSpec, Body, Intent, Settled, update};
use crate::cli::{Cli, ConnectionsArgs};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::plan::connections::{
    ConnectionsPlan, changed_line, db_max_connections_from, largest_pool, plan_connections, pool_warning,
};
use crate::plan::resources::disruption::rollout_disruption;
use crate::plan::{Change, ChangeValue};
use crate::report::Reporter;
use crate::report::preview::Preview;

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
    // The SPEC's pool guard: a pool the database cannot serve at full scale is refused before
    // anything is written, unless --force (then it is a warning).
    if let Some(over) = warning
        .as_deref()
        .filter(|_| !plan.changes.is_empty() && !args.force)
    {
        return Err(Error::usage(
            format!("refused: {over}"),
            format!(
                "nothing was written; choose at most {} per pod, or pass --force to write {n} anyway",
                largest_pool(world.hpa_max, replicas, world.db_max).unwrap_or(0)
            ),
        ));
    }

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
            finish_document(reporter, dry_run, &[], before, n, false, true);
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

    let disruption = deployment.as_ref().map(rollout_disruption);
    let paused = deployment
        .as_ref()
        .is_some_and(|d| d.spec.as_ref().and_then(|s| s.paused) == Some(true));
    let mut steps = Vec::new();
    if !plan.changes.is_empty() {
        steps.push(Step::patch("", "configmaps", &t.configmap));
    }
    if deployment.is_some() {
        steps.push(Step::patch("apps", "deployments", &t.deployment));
        steps.extend(Step::rollout(WorkloadKind::Deployment, &t.deployment, dry_run));
    }
    // A deployment at 0 replicas restarts no pod: nothing to confirm. The preview said how;
    // the question repeats the gist: what restarts and with which strategy.
    let confirm = disruption
        .as_ref()
        .filter(|d| d.pods_restarting > 0)
        .map(|disruption| {
            let how = disruption
                .summary
                .split(": ")
                .next()
                .unwrap_or(&disruption.summary);
            if plan.changes.is_empty() {
                format!("Restart deployment/{} ({how})", t.deployment)
            } else {
                format!(
                    "Change {object}, then restart deployment/{} ({how})",
                    t.deployment
                )
            }
        });
    let proposal = Proposal {
        preview: preview(
            cli,
            &plan,
            &world,
            warning.as_deref(),
            disruption.as_ref().map(|d| d.summary.as_str()),
        ),
        alerts: paused
            .then(|| {
                format!(
                    "deployment/{} is paused: the restart takes effect only when it is resumed \
                     (`kubectl rollout resume -n {} deployment/{}`)",
                    t.deployment, cluster.namespace, t.deployment
                )
            })
            .into_iter()
            .collect(),
        steps,
        confirm,
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run)
        .await
        .map_err(|e| match e {
            Error::NotConfirmed { message, hint } if !plan.changes.is_empty() => Error::NotConfirmed {
                message,
                hint: format!("{hint}; or change only the config with --no-restart"),
            },
            other => other,
        })?;

    let mut changes = Vec::new();
    if !plan.changes.is_empty() {
        let written = match write_config(cluster, cli, args, &world.configmap, n).await? {
            Settled::Written(written) => written,
            Settled::Unchanged(_) => {
                // Someone set the same value between our read and our write.
                reporter.info(&format!("{object} already has database.max_connections = {n}"));
                finish_document(reporter, dry_run, &[], before, n, false, true);
                return Ok(());
            }
        };
        written.report(reporter);
        let verb = if dry_run {
            "dry run: the API server accepted"
        } else {
            "applied:"
        };
        let change = written.changes.first();
        reporter.out(&format!(
            "{verb} {object} database.max_connections {} -> {}",
            ChangeValue::show(change.and_then(|c| c.before.as_ref())),
            ChangeValue::show(change.and_then(|c| c.after.as_ref()))
        ));
        changes = written.changes;
    }

    let Some(deployment) = deployment else {
        if !dry_run {
            reporter.out(&format!(
                "the orchestrator pods keep the old value until they restart: run \
                 `kubectl orchscale db connections {n} --restart` (or `kubectl rollout restart deployment/{} -n {}`)",
                t.deployment, cluster.namespace
            ));
        }
        finish_document(reporter, dry_run, &changes, before, n, false, true);
        return Ok(());
    };
    let restarted = super::restart::restart(cluster, cli, &deployment, &changes, reporter).await;
    match restarted {
        Ok(change) => {
            changes.push(change);
            finish_document(reporter, dry_run, &changes, before, n, !dry_run, true);
            Ok(())
        }
        Err((change, error)) => {
            changes.extend(change);
            finish_document(reporter, dry_run, &changes, before, n, true, false);
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
    let hpa = super::shared::hpa_for(cluster, "Deployment", &t.deployment, reporter).await?;
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
    K: crate::cluster::Object,
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

/// Merge-patches `data[key]` with the resourceVersion read and the audit record (see
/// [`super::write`]); the outcome reports the value as stored.
async fn write_config(
    cluster: &Cluster,
    cli: &Cli,
    args: &ConnectionsArgs,
    initial: &ConfigMap,
    n: u32,
) -> Result<Settled<ConfigMap>, Error> {
    let t = &cli.targets;
    let audit = AuditSpec::new(
        cluster,
        command_line(args, n),
        format!("configmap/{}", t.configmap),
    );
    update(
        cluster,
        &t.configmap,
        initial.clone(),
        &audit,
        cli.global.dry_run,
        |configmap| {
            let plan = plan_connections(configmap, &t.config_key, n)?;
            Ok(Intent::unless_empty(plan.changes, Body::Merge(plan.patch)))
        },
    )
    .await
}

/// The `db connections` fields of the JSON document.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionsFields {
    max_connections: MaxConnections,
    restarted: bool,
}

#[derive(Debug, serde::Serialize)]
struct MaxConnections {
    before: Option<u32>,
    after: u32,
}

/// The JSON document: common fields, `maxConnections {before, after}`, `restarted`.
fn finish_document(
    reporter: &mut Reporter,
    dry_run: bool,
    changes: &[Change],
    before: Option<u32>,
    after: u32,
    restarted: bool,
    ok: bool,
) {
    let fields = ConnectionsFields {
        max_connections: MaxConnections { before, after },
        restarted,
    };
    reporter.set_document("db connections", dry_run, changes, ok, fields);
}
