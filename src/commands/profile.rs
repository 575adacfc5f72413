//! Scaling profiles: `export` (the current state as a profile), `diff -f` (one combined
//! preview with every single command's warnings, exit 0/1 as `kubectl diff`) and `apply -f`
//! (in [`apply`]). The format and the step plans are pure, in `plan::profile`.

mod apply;
mod emit;
pub(crate) mod fleet;
mod preview;
mod revert;
mod step;

pub(crate) use apply::{Application, run as apply, run_application};
pub(crate) use revert::undo_application;

use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use super::shared::hpa_for;
use crate::cli::{Cli, DiffArgs, ExportArgs};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::plan::profile::steps::{Names, StepKind, StepPlan, World, export as export_profile, plan_all};
use crate::plan::profile::{ScalingProfile, parse};
use crate::report::Reporter;

/// Reads and checks a profile file before connecting: unreadable or invalid is exit 2.
///
/// # Errors
/// [`Error::Usage`] naming the file (and the line and field of a mistake).
pub(crate) fn read_profile(path: &Path) -> Result<ScalingProfile, Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(
            format!("cannot read the profile {shown}: {e}"),
            "give the path of a ScalingProfile file with -f (write one with `kubectl orchscale export > FILE`)",
        )
    })?;
    Ok(parse(&shown, &text)?)
}

/// Checks the --emit flags before connecting (exit 2).
///
/// # Errors
/// `--emit helm-values` without a readable `--values-map`.
pub(crate) fn check_emit(args: &DiffArgs) -> Result<(), Error> {
    emit::values_map(args).map(|_| ())
}

/// The names the target flags give, for the pure planners.
pub(crate) fn names(cli: &Cli, cluster: &Cluster) -> Names {
    let t = &cli.targets;
    Names {
        namespace: cluster.namespace.clone(),
        deployment: t.deployment.clone(),
        hpa: t.hpa.clone(),
        statefulset: t.statefulset.clone(),
        db_container: t.db_container.clone(),
        configmap: t.configmap.clone(),
        config_key: t.config_key.clone(),
    }
}

/// Reads the objects a profile is about; a missing one is `None` (the step that needs it says so).
///
/// # Errors
/// API errors other than 404.
pub(crate) async fn read_world(
    cluster: &Cluster,
    cli: &Cli,
    reporter: &mut Reporter,
) -> Result<World, Error> {
    let t = &cli.targets;
    let (deployment, statefulset, configmap) = tokio::try_join!(
        cluster.get_opt::<Deployment>(&t.deployment),
        cluster.get_opt::<StatefulSet>(&t.statefulset),
        cluster.get_opt::<ConfigMap>(&t.configmap),
    )?;
    let hpa = match hpa_for(cluster, "Deployment", &t.deployment, reporter).await? {
        Some(hpa) => Some(hpa),
        None => cluster.get_opt(&t.hpa).await?,
    };
    Ok(World {
        deployment,
        hpa,
        statefulset,
        configmap,
    })
}

/// `export`: the current state as a profile, YAML on stdout (or `profile` in the JSON document).
///
/// # Errors
/// API errors; nothing to export (none of the objects found).
pub(crate) async fn export(
    cluster: &Cluster,
    cli: &Cli,
    args: &ExportArgs,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let world = read_world(cluster, cli, reporter).await?;
    let profile = export_profile(&args.name, &world, &names(cli, cluster))?;
    #[derive(Serialize)]
    struct Fields<'a> {
        profile: &'a ScalingProfile,
    }
    reporter.set_document("export", false, &[], true, Fields { profile: &profile });
    reporter.out(profile.to_yaml()?.trim_end());
    Ok(())
}

/// One step of the JSON document of `diff` and `apply`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepDoc {
    pub step: usize,
    pub kind: StepKind,
    pub object: String,
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `diff -f`: every step's plan in one preview, with the single commands' warnings.
///
/// # Errors
/// [`Error::Differences`] (exit 1) when there are differences; an invalid profile or a plan
/// refused (exit 2); API errors.
pub(crate) async fn diff(
    cluster: &Cluster,
    cli: &Cli,
    args: &DiffArgs,
    profile: &ScalingProfile,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let world = read_world(cluster, cli, reporter).await?;
    let names = names(cli, cluster);
    let steps = plan_all(&world, &names, &profile.spec, args.force)?;
    let combined = preview::combined(cluster, &world, &names, profile, &steps, reporter).await?;
    let changes: Vec<_> = steps.iter().flat_map(|s| s.changes.clone()).collect();
    let docs = step_docs(&steps);
    let emitted = if changes.is_empty() {
        Vec::new()
    } else {
        emit::write_files(args, &world, &names, profile, reporter)?
    };
    #[derive(Serialize)]
    struct Fields<'a> {
        profile: &'a str,
        differences: bool,
        steps: Vec<StepDoc>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        emitted: Vec<String>,
    }
    let fields = Fields {
        profile: &profile.metadata.name,
        differences: !changes.is_empty(),
        steps: docs,
        emitted,
    };
    reporter.set_document("diff", false, &changes, true, fields);
    if changes.is_empty() {
        reporter.out(&format!(
            "profile {} is in place in namespace {}: no differences",
            profile.metadata.name, cluster.namespace
        ));
        return Ok(());
    }
    if reporter.is_json() {
        for warning in &combined.preview.warnings {
            reporter.warn(warning);
        }
    } else {
        reporter.out(&format!(
            "profile {} against context {} (namespace {}):\n{}",
            profile.metadata.name,
            cluster.context,
            cluster.namespace,
            reporter.preview_text(&combined.preview).trim_end()
        ));
    }
    for alert in &combined.alerts {
        reporter.warn(alert);
    }
    Err(Error::Differences { count: changes.len() })
}

/// The steps as the JSON document lists them: in place or to change.
fn step_docs(steps: &[StepPlan]) -> Vec<StepDoc> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepDoc {
            step: i + 1,
            kind: s.kind,
            object: s.object.clone(),
            verdict: if s.changes.is_empty() {
                "in-place"
            } else {
                "differs"
            },
            detail: None,
        })
        .collect()
}
