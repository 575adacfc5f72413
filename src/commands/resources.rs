//! `resources` (the orchestrator deployment's container) and `db resources` (the postgres
//! statefulset's container): read -> plan (merged values, requests <= limits) -> preview with
//! capacity / quota / HPA warnings -> permissions -> confirm the restart -> strategic merge
//! patch with the resourceVersion -> audit -> follow the rollout -> verify -> report.
//!
//! One flow for both, generic over the workload ([`Target`]); the flags are checked in
//! [`input`] before connecting, the warnings are in `checks`, following and reporting after
//! the write in `outcome`.

pub(crate) mod checks;
mod input;
mod outcome;
pub mod target;

pub use input::{ResourcesInput, input};
pub use target::Target;

use serde_json::{Map, json};

use super::driver::{Proposal, propose};
use super::preflight::Step;
use super::shared::managed_warning;
use super::write::{AuditSpec, Body, Intent, Settled, update};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::error::Error;
use crate::plan::resources::{
    ContainerResources, ResourcesPlan, changed_besides, container_resources, plan_container_resources,
};
use crate::report::Reporter;
use crate::report::preview::Preview;
use outcome::Applied;

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
        return outcome::unchanged(cli, input, &workload, container, &plan, reporter);
    }

    let disruption = workload.disruption();
    let mut warnings: Vec<String> = managed_warning(&object, workload.meta()).into_iter().collect();
    warnings.extend(checks::warnings(cluster, &workload, name, container, &plan, reporter).await);
    let mut steps = vec![Step::patch("apps", W::RESOURCE, name)];
    steps.extend(Step::rollout(W::WORKLOAD, name, dry_run));
    let proposal = Proposal {
        preview: Preview {
            changes: plan.changes.clone(),
            // With downtime the sentence is the DOWNTIME warning below (said once).
            consequences: (!disruption.downtime)
                .then(|| disruption.summary.clone())
                .into_iter()
                .chain([format!(
                    "other containers and the other resource keys of {container} keep their values"
                )])
                .collect(),
            warnings: warnings.clone(),
        },
        alerts: disruption
            .downtime
            .then(|| format!("DOWNTIME: {}", disruption.summary))
            .into_iter()
            .collect(),
        steps,
        confirm: (disruption.pods_restarting > 0).then(|| disruption.question(&object)),
    };
    propose(cluster, reporter, &proposal, cli.global.yes, dry_run).await?;

    let written =
        match write_resources::<W>(cluster, name, &object, container, &workload, input, dry_run).await? {
            Settled::Written(written) => written,
            Settled::Unchanged(_) => {
                reporter.info(&format!(
                    "{object} container {container} already has these values: nothing to change"
                ));
                return outcome::unchanged(cli, input, &workload, container, &plan, reporter);
            }
        };
    written.report(reporter);
    warnings.extend(written.differences.iter().map(ToString::to_string));
    // The report and the rollout follow what the cluster stored (admission may have changed it).
    let stored = written
        .stored
        .clone()
        .ok_or_else(|| Error::failed(format!("{object} came back empty"), "this is a bug"))?;
    let stored_values = stored_resources(&stored, container).unwrap_or_else(|| plan.after.clone());
    for besides in changed_besides(&object, container, &plan.after, &stored_values, &written.changes) {
        reporter.warn(&besides);
        warnings.push(besides);
    }
    let plan = ResourcesPlan {
        changes: written.changes.clone(),
        after: stored_values,
        ..plan
    };

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
        reporter.set_document(input.command, true, &plan.changes, true, applied.fields());
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

/// Patches with the resourceVersion read and the audit record (see [`super::write`]).
async fn write_resources<W: Target>(
    cluster: &Cluster,
    name: &str,
    object: &str,
    container: &str,
    initial: &W,
    input: &ResourcesInput,
    dry_run: bool,
) -> Result<Settled<W>, Error> {
    let audit = AuditSpec::new(cluster, input.command_line(), object.to_string());
    update(cluster, name, initial.clone(), &audit, dry_run, |workload| {
        let plan = plan_for(workload, object, container, input)?;
        Ok(Intent::unless_empty(plan.changes, Body::Strategic(plan.patch)))
    })
    .await
}

/// The container's resources as stored (or, with --dry-run, as they would be stored).
fn stored_resources<W: Target>(stored: &W, container: &str) -> Option<ContainerResources> {
    let spec = stored.template()?.spec.as_ref()?;
    let found = spec.containers.iter().find(|c| c.name == container)?;
    container_resources(found).ok()
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
        // One spelling per value (the JSON contract), whatever the user typed.
        l.iter().map(|(k, q)| (k.clone(), json!(q.canonical()))).collect()
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
