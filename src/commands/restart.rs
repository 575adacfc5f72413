//! The rolling restart after `db connections`: what `kubectl rollout restart` does (the pod
//! template's restartedAt annotation), followed to the end and verified on the pods.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::shared::{self, selector_string};
use crate::error::Error;
use crate::follow::{FollowSpec, follow};
use crate::health::{self, Workload};
use crate::plan::Change;
use crate::report::Reporter;

/// Restarts the deployment ([`shared::restart`]) and waits until every pod runs the new
/// template and is Ready.
///
/// # Errors
/// The restart's change (when it was written) and the error: API errors, a failed or
/// timed-out rollout, Ctrl-C, or pods that are not all new and Ready at the end.
pub async fn restart(
    cluster: &Cluster,
    cli: &Cli,
    deployment: &Deployment,
    config_changes: &[Change],
    reporter: &mut Reporter,
) -> Result<Change, (Option<Change>, Error)> {
    let name = cli.targets.deployment.as_str();
    let dry_run = cli.global.dry_run;
    let change = shared::restart(cluster, deployment, dry_run)
        .await
        .map_err(|e| (None, e))?;
    let now = change.after.as_ref().map(ToString::to_string).unwrap_or_default();
    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted the restart of deployment/{name}; nothing was persisted"
        ));
        return Ok(change);
    }
    let config = if config_changes.is_empty() {
        String::new()
    } else {
        "the config change and ".to_string()
    };
    let applied = format!("{config}the restart of deployment/{name} (restartedAt {now}) were applied");
    follow_restarted(cluster, cli, deployment, &applied, reporter)
        .await
        .map_err(|e| (Some(change.clone()), e))?;
    Ok(change)
}

/// Follows a restarted deployment until every pod runs the new template and is Ready, then
/// prints the pods' summary. A paused deployment restarts only when resumed: said, not awaited.
///
/// # Errors
/// API errors, a failed or timed-out rollout, Ctrl-C, pods not all new and Ready at the end.
pub(super) async fn follow_restarted(
    cluster: &Cluster,
    cli: &Cli,
    deployment: &Deployment,
    applied: &str,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let name = cli.targets.deployment.as_str();
    if deployment.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        reporter.out(&format!(
            "deployment/{name} is paused: its pods restart when it is resumed"
        ));
        return Ok(());
    }
    // Said from what the caller applied (a restart, an undo, a profile's new resources).
    reporter.info(&format!("{applied}; following the rollout of deployment/{name}"));
    let selector = deployment
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default();
    let spec = FollowSpec {
        name,
        selector: &selector,
        timeout: cli.global.timeout,
        applied,
        // The HPA may move the count during the restart; that is not a failure of it.
        expected_replicas: None,
        autoscaler: Some(cli.targets.hpa.as_str()),
        events_since: deployment.metadata.resource_version.as_deref(),
    };
    let done = follow::<Deployment>(cluster, &spec, reporter).await?;
    let summary = verify(cluster, &done, &selector, applied).await?;
    reporter.verdict(true, &summary);
    Ok(())
}

/// Every live pod belongs to the new ReplicaSet and is Ready, and there are as many as desired.
async fn verify(
    cluster: &Cluster,
    deployment: &Deployment,
    selector: &str,
    applied: &str,
) -> Result<String, Error> {
    let name = deployment.metadata.name.as_deref().unwrap_or("?");
    let revision = deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned();
    let sets: Vec<ReplicaSet> = cluster.list(selector).await?;
    let new_set = sets.iter().find(|rs| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            == revision.as_ref()
    });
    let hash = new_set
        .and_then(|rs| rs.metadata.labels.as_ref())
        .and_then(|l| l.get("pod-template-hash"))
        .cloned();
    let pods: Vec<Pod> = cluster.list(selector).await?;
    let live: Vec<&Pod> = pods.iter().filter(|p| health::is_live(p)).collect();
    let is_new = |p: &Pod| {
        hash.is_some()
            && p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                == hash.as_ref()
    };
    let new_ready = live.iter().filter(|p| is_new(p) && health::pod_ready(p)).count();
    let desired = usize::try_from(deployment.counts().desired).unwrap_or(0);
    let set_name = new_set
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();
    if new_ready == desired && live.len() == desired {
        return Ok(format!(
            "deployment/{name} restarted: {new_ready}/{desired} pods Ready on replicaset/{set_name}; \
             they run with the new configuration"
        ));
    }
    let old: Vec<&str> = live
        .iter()
        .filter(|p| !is_new(p))
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    Err(Error::failed(
        format!(
            "verification failed: {new_ready} of {desired} pods are new and Ready ({} live pods; not restarted: {})",
            live.len(),
            if old.is_empty() {
                "none".to_string()
            } else {
                old.join(", ")
            }
        ),
        format!("{applied}; check the pods with `kubectl orchscale status`"),
    ))
}
