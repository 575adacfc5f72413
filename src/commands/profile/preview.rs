//! The combined preview of a profile's steps (for `diff` and `apply`): every change, each
//! step's consequences, and the warnings the single commands give, from their own checks —
//! capacity, quota and HPA shift (`resources::checks`), the HPA's room (`hpa::room`), the
//! pool guard, GitOps ownership, downtime.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::Resource;

use crate::cluster::Cluster;
use crate::commands::hpa::room;
use crate::commands::resources::checks;
use crate::commands::shared::managed_warning;
use crate::error::Error;
use crate::plan::profile::ScalingProfile;
use crate::plan::profile::steps::{
    Names, StepKind, StepPlan, World, plan_database, plan_deployment_resources, pool_guard,
};
use crate::plan::resources::{rollout_disruption, statefulset_disruption};
use crate::report::Reporter;
use crate::report::preview::Preview;

/// What `diff` shows and `apply` confirms.
#[derive(Debug, Clone, Default)]
pub(crate) struct Combined {
    pub preview: Preview,
    /// Said as warnings after the preview, even with -q (DOWNTIME).
    pub alerts: Vec<String>,
    /// The pool guard's warning, refused by `apply` without --force.
    pub pool_guard: Option<String>,
    /// What restarts, for the one question `apply` asks; `None` when no pod restarts.
    pub restarts: Option<String>,
}

/// Builds the combined preview of `steps` (planned by `plan_all` against `world`).
///
/// # Errors
/// A step's planner (already run once by `plan_all`, so not expected).
pub(crate) async fn combined(
    cluster: &Cluster,
    world: &World,
    names: &Names,
    profile: &ScalingProfile,
    steps: &[StepPlan],
    reporter: &mut Reporter,
) -> Result<Combined, Error> {
    let mut out = Combined::default();
    let mut restarts = Vec::new();
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let label = format!("step {}/{total} {}", i + 1, step.kind.title());
        out.preview.changes.extend(step.changes.iter().cloned());
        if step.changes.is_empty() {
            out.preview
                .consequences
                .push(format!("{label}: {} is in place", step.object));
            continue;
        }
        for note in &step.notes {
            out.preview.consequences.push(format!("{label}: {note}"));
        }
        out.preview.warnings.extend(step.warnings.iter().cloned());
        match step.kind {
            StepKind::DatabaseResources => {
                let (Some(sts), Some(resources)) = (
                    &world.statefulset,
                    profile.spec.database.as_ref().and_then(|d| d.resources.as_ref()),
                ) else {
                    continue;
                };
                out.preview.warnings.extend(managed(&step.object, sts));
                let plan = plan_database(sts, names, resources)?;
                out.preview.warnings.extend(
                    checks::warnings::<StatefulSet>(
                        cluster,
                        sts,
                        &names.statefulset,
                        &names.db_container,
                        &plan,
                        reporter,
                    )
                    .await,
                );
                let disruption = statefulset_disruption(sts);
                out.preview
                    .consequences
                    .push(format!("{label}: {}", disruption.summary));
                if disruption.downtime {
                    out.alerts.push(format!("DOWNTIME: {}", disruption.summary));
                }
                if disruption.pods_restarting > 0 {
                    restarts.push(format!("{} ({} pod(s))", step.object, disruption.pods_restarting));
                }
            }
            StepKind::Pool => {
                if let Some(cm) = &world.configmap {
                    out.preview.warnings.extend(managed(&step.object, cm));
                }
                let pool = profile.spec.pool.as_ref().map_or(0, |p| p.connections.0);
                out.pool_guard = pool_guard(world, &profile.spec, u32::try_from(pool).unwrap_or(0));
                out.preview.warnings.extend(out.pool_guard.iter().cloned());
                match &world.deployment {
                    Some(d) => {
                        let disruption = rollout_disruption(d);
                        out.preview.consequences.push(format!(
                            "{label}: then deployment/{} restarts to load it: {}",
                            names.deployment, disruption.summary
                        ));
                        if disruption.pods_restarting > 0 {
                            restarts.push(format!(
                                "deployment/{} ({} pod(s), to load the pool)",
                                names.deployment, disruption.pods_restarting
                            ));
                        }
                    }
                    None => out.preview.consequences.push(format!(
                        "{label}: deployment/{} is not found: no restart",
                        names.deployment
                    )),
                }
            }
            StepKind::DeploymentResources => {
                let Some(d) = &world.deployment else { continue };
                out.preview.warnings.extend(managed(&step.object, d));
                let plan = plan_deployment_resources(d, names, &profile.spec.resources)?;
                for (container, container_plan) in &plan.containers {
                    out.preview.warnings.extend(
                        checks::warnings::<Deployment>(
                            cluster,
                            d,
                            &names.deployment,
                            container,
                            container_plan,
                            reporter,
                        )
                        .await,
                    );
                }
                let disruption = rollout_disruption(d);
                out.preview
                    .consequences
                    .push(format!("{label}: {}", disruption.summary));
                if disruption.pods_restarting > 0 {
                    restarts.push(format!(
                        "deployment/{} ({} pod(s), new resources)",
                        names.deployment, disruption.pods_restarting
                    ));
                }
            }
            StepKind::Hpa => {
                if let Some(hpa) = &world.hpa {
                    out.preview.warnings.extend(managed(&step.object, hpa));
                }
                out.preview
                    .warnings
                    .extend(hpa_room(cluster, world, profile, reporter).await);
                out.preview.consequences.push(format!("{label}: no pod restarts"));
            }
            StepKind::Replicas => {
                if let Some(d) = &world.deployment {
                    out.preview.warnings.extend(managed(&step.object, d));
                }
                out.preview
                    .consequences
                    .push(format!("{label}: pods start or stop; none restarts"));
            }
        }
    }
    out.restarts = (!restarts.is_empty()).then(|| restarts.join(", "));
    Ok(out)
}

fn managed<K: Resource>(object: &str, k: &K) -> Option<String> {
    managed_warning(object, k.meta())
}

/// The `hpa --min` warning: a minimum above what the cluster has room for (read only when the
/// profile raises the minimum above the current one and the pods running).
async fn hpa_room(
    cluster: &Cluster,
    world: &World,
    profile: &ScalingProfile,
    reporter: &mut Reporter,
) -> Option<String> {
    let min = profile.spec.hpa.as_ref()?.min_replicas?.0;
    let hpa = world.hpa.as_ref();
    let current_min = hpa.and_then(|h| h.spec.as_ref()?.min_replicas).unwrap_or(1);
    let running = hpa.and_then(|h| h.status.as_ref()?.current_replicas).unwrap_or(0);
    let deployment = world.deployment.as_ref()?;
    let nodes = room::nodes_if(cluster, min > current_min && min > running).await?;
    let room = room::room(cluster, deployment, nodes, min, reporter).await;
    crate::plan::hpa::room_warning(Some(min), room)
}
