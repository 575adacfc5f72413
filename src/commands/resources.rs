//! `resources` (the orchestrator deployment's container) and `db resources` (the postgres
//! statefulset's container): read -> plan (merged values, requests <= limits) -> preview with
//! capacity / quota / HPA warnings -> permissions -> confirm the restart -> strategic merge
//! patch with the resourceVersion -> audit -> follow the rollout -> verify -> report.
//!
//! One flow for both, generic over the workload ([`Target`]); the flags are checked in
//! [`input`] before connecting, the warnings are in `checks`, following and reporting after
//! the write in `outcome`.

mod checks;
mod input;
mod outcome;
pub mod target;

pub use input::{ResourcesInput, input};
pub use target::Target;

use kube::api::Patch;
use serde_json::{Map, json};

use super::shared::{audit_not_written, managed_warning, record_change};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::cluster::access::{Permission, check_all};
use crate::cluster::api::retry_on_conflict;
use crate::error::Error;
use crate::plan::resources::{
    ContainerResources, ResourcesPlan, container_resources, plan_container_resources,
};
use crate::report::Reporter;
use crate::report::preview::Preview;
use outcome::Applied;

/// Attempts of the read-plan-write cycle when the workload changes under us (409).
const MAX_CONFLICT_ATTEMPTS: u32 = 4;

/// # Errors
/// Usage errors (exit 2) before any write (missing container, requests above limits);
/// NotConfirmed (exit 3); permission, API, rollout and verification errors (exit 1).
pub async fn run<W: Target>(
    cluster: &Cluster,
    cli: &Cli,
    input: &ResourcesInput,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let (name, container) = W::names(&cli.targets);
    let object = format!("{}/{name}", W::KIND);
    let dry_run = cli.global.dry_run;
    let not_found_hint = format!(
        "check the name ({}) and namespace (-n {ns}); list them with `kubectl get {} -n {ns}`",
        W::NAME_FLAG,
        W::RESOURCE,
        ns = cluster.namespace
    );
    let workload: W = cluster.get(name, &not_found_hint).await?;
    let plan = plan_for(&workload, &object, container, input)?;
    if plan.changes.is_empty() {
        reporter.info(&format!(
            "{object} container {container} already has these values: nothing to change"
        ));
        return outcome::unchanged(cluster, cli, input, &workload, container, &plan, reporter);
    }

    reporter.banner(cluster);
    let disruption = workload.disruption();
    let mut warnings: Vec<String> = managed_warning(&object, workload.meta()).into_iter().collect();
    warnings.extend(checks::warnings(cluster, &workload, name, container, &plan, reporter).await);
    reporter.preview(&Preview {
        changes: plan.changes.clone(),
        consequences: vec![
            disruption.summary.clone(),
            format!("other containers and the other resource keys of {container} keep their values"),
        ],
        warnings: warnings.clone(),
    });
    if disruption.downtime {
        reporter.warn(&format!("DOWNTIME: {}", disruption.summary));
    }

    check_all(
        cluster,
        &[Permission::new("patch", "apps", W::RESOURCE, Some(name))],
    )
    .await?;
    if disruption.pods_restarting > 0 {
        reporter.confirm(
            &format!("{object}: {}", disruption.summary),
            cli.global.yes,
            dry_run,
        )?;
    }

    let Some((plan, stored)) =
        write::<W>(cluster, name, &object, container, &workload, input, dry_run).await?
    else {
        reporter.info(&format!(
            "{object} container {container} already has these values: nothing to change"
        ));
        return outcome::unchanged(cluster, cli, input, &workload, container, &plan, reporter);
    };
    verify_stored(&object, container, &plan, &stored)?;
    // The change is made: a failed audit record must not hide that, so it is a warning.
    if let Err(e) = record_change::<W>(
        cluster,
        name,
        &input.command_line(),
        &object,
        &plan.changes,
        dry_run,
    )
    .await
    {
        reporter.warn(&audit_not_written(&e));
    }

    let applied = Applied {
        object: &object,
        name,
        container,
        plan: &plan,
        disruption: &disruption,
        warnings: &warnings,
    };
    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted {}; nothing was persisted",
            applied.summary()
        ));
        let mut extra = Map::new();
        applied.fill(&mut extra);
        reporter.set_document(input.command, cluster, true, &plan.changes, true, extra);
        return Ok(());
    }
    outcome::follow_and_report(cluster, cli, input, &applied, &stored, reporter).await
}

fn plan_for<W: Target>(
    workload: &W,
    object: &str,
    container: &str,
    input: &ResourcesInput,
) -> Result<ResourcesPlan, Error> {
    let empty = Default::default();
    let template = workload.template().unwrap_or(&empty);
    let resource_version = workload.meta().resource_version.clone().unwrap_or_default();
    Ok(plan_container_resources(
        template,
        object,
        container,
        &input.requests,
        &input.limits,
        &resource_version,
    )?)
}

/// Patches with the resourceVersion read; on 409 re-reads, re-plans and writes again.
/// `None` when a re-read shows the values are already there.
async fn write<W: Target>(
    cluster: &Cluster,
    name: &str,
    object: &str,
    container: &str,
    initial: &W,
    input: &ResourcesInput,
    dry_run: bool,
) -> Result<Option<(ResourcesPlan, W)>, Error> {
    retry_on_conflict(MAX_CONFLICT_ATTEMPTS, |attempt| async move {
        let workload: W = if attempt == 1 {
            initial.clone()
        } else {
            cluster.get(name, "it was deleted meanwhile").await?
        };
        let plan = plan_for(&workload, object, container, input)?;
        if plan.changes.is_empty() {
            return Ok(None);
        }
        let stored = cluster
            .patch::<W, _>(name, &Patch::Strategic(&plan.patch), dry_run)
            .await?;
        Ok(Some((plan, stored)))
    })
    .await
}

/// The container's resources as stored (or, with --dry-run, as they would be stored).
fn stored_resources<W: Target>(stored: &W, container: &str) -> Option<ContainerResources> {
    let spec = stored.template()?.spec.as_ref()?;
    let found = spec.containers.iter().find(|c| c.name == container)?;
    container_resources(found).ok()
}

/// The stored container must hold the merged values (an admission webhook or LimitRange may
/// have changed them): compared by value.
fn verify_stored<W: Target>(
    object: &str,
    container: &str,
    plan: &ResourcesPlan,
    stored: &W,
) -> Result<(), Error> {
    match stored_resources(stored, container) {
        Some(resources) if resources == plan.after => Ok(()),
        found => Err(Error::failed(
            format!(
                "{object} container {container} does not hold the values written (found {}): \
                 an admission webhook or LimitRange may have changed them",
                found.map_or_else(|| "no such container".to_string(), |r| resources_text(&r))
            ),
            format!("inspect it with `kubectl get {object} -o yaml`"),
        )),
    }
}

/// `requests cpu=750m, memory=1536Mi; limits cpu=1, memory=2Gi`
pub fn resources_text(resources: &ContainerResources) -> String {
    let list = |l: &crate::plan::resources::ResourceList| {
        if l.is_empty() {
            "(none)".to_string()
        } else {
            l.iter()
                .map(|(k, q)| format!("{k}={}", q.text()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    format!(
        "requests {}; limits {}",
        list(&resources.requests),
        list(&resources.limits)
    )
}

/// The container's values as JSON: `{name, requests: {cpu: "750m"}, limits: {...}}`.
pub fn resources_json(container: &str, resources: &ContainerResources) -> serde_json::Value {
    let list = |l: &crate::plan::resources::ResourceList| -> Map<String, serde_json::Value> {
        l.iter().map(|(k, q)| (k.clone(), json!(q.text()))).collect()
    };
    json!({"name": container, "requests": list(&resources.requests), "limits": list(&resources.limits)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::Quantity;

    #[test]
    fn resources_read_as_text_and_json() {
        let mut r = ContainerResources::default();
        r.requests.insert("cpu".into(), Quantity::parse("750m").unwrap());
        r.requests
            .insert("memory".into(), Quantity::parse("1536Mi").unwrap());
        assert_eq!(
            resources_text(&r),
            "requests cpu=750m, memory=1536Mi; limits (none)"
        );
        let j = resources_json("orchestrator", &r);
        assert_eq!(j["requests"]["memory"], "1536Mi");
        assert_eq!(j["limits"], json!({}));
    }
}
