//! `hpa --create`: a new autoscaling/v2 HPA targeting the deployment, previewed, checked
//! with an access review, and created with the audit record in its annotations.

use k8s_openapi::api::apps::v1::Deployment;

use super::{HpaInput, Outcome, changes_text, other_hpa_for, room, with_live_replicas};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::driver::{Proposal, propose};
use crate::commands::preflight::Step;
use crate::commands::write::{AuditSpec, Body, Intent, Settled, write};
use crate::error::Error;
use crate::plan::hpa::{expected_effect, plan_hpa_create, room_warning};
use crate::report::Reporter;
use crate::report::preview::Preview;

/// `--create`: an autoscaling/v2 HPA targeting the deployment, with the audit record in its
/// annotations from the start (one write).
pub(super) async fn create(
    cluster: &Cluster,
    cli: &Cli,
    input: &HpaInput,
    reporter: &mut Reporter,
) -> Result<Outcome, Error> {
    let (name, deployment_name) = (cli.targets.hpa.as_str(), cli.targets.deployment.as_str());
    let (deployment, nodes) = tokio::join!(
        cluster.get::<Deployment>(
            deployment_name,
            "the HPA must target an existing deployment: check --deployment and -n",
        ),
        room::nodes_if(cluster, input.request.min.is_some())
    );
    let deployment = deployment?;
    if let Some(other) = other_hpa_for(cluster, deployment_name, reporter).await? {
        return Err(Error::usage(
            format!(
                "horizontalpodautoscaler/{other} already scales deployment/{deployment_name}: two HPAs on one deployment fight each other"
            ),
            format!("change that one with `kubectl orchscale hpa --hpa {other} ...`"),
        ));
    }
    let mut plan = plan_hpa_create(&cluster.namespace, name, deployment_name, &input.request)?;
    let room = match (nodes, input.request.min) {
        (Some(nodes), Some(min)) => room::room(cluster, &deployment, nodes, min, reporter).await,
        _ => None,
    };
    plan.warnings.extend(room_warning(input.request.min, room));
    let object = format!("horizontalpodautoscaler/{name}");
    let targets: Vec<(String, i32)> = plan
        .hpa
        .spec
        .iter()
        .flat_map(|s| s.metrics.iter().flatten())
        .filter_map(|m| m.resource.as_ref())
        .filter_map(|r| Some((r.name.clone(), r.target.average_utilization?)))
        .collect();
    let (min, max) = plan
        .hpa
        .spec
        .as_ref()
        .map_or((1, 1), |s| (s.min_replicas.unwrap_or(1), s.max_replicas));
    let effect = expected_effect(
        &with_live_replicas(&plan.hpa, Some(&deployment)),
        min,
        max,
        &targets,
    );

    let proposal = Proposal {
        preview: Preview {
            changes: plan.changes.clone(),
            consequences: vec![
                format!("the HPA takes over the replica count of deployment/{deployment_name}"),
                effect.text.clone(),
                "no pod restarts".into(),
            ],
            warnings: plan.warnings.clone(),
        },
        steps: vec![Step::Write {
            verb: "create",
            group: "autoscaling",
            resource: "horizontalpodautoscalers",
            name: None,
        }],
        ..Proposal::default()
    };
    propose(cluster, reporter, &proposal, cli.global.yes, cli.global.dry_run).await?;

    let dry_run = cli.global.dry_run;
    let audit = AuditSpec::new(cluster, input.command_line(), object.clone());
    let body = serde_json::to_value(&plan.hpa).map_err(|e| {
        Error::failed(
            format!("cannot build {object}: {e}"),
            "this is a bug: please report it",
        )
    })?;
    let settled = write(
        cluster,
        name,
        None,
        Some(&audit),
        dry_run,
        |current| match current {
            // Only reached when a creation met 409 AlreadyExists and the HPA is not ours.
            Some(_) => Err(Error::failed(
                format!("{object} was created by someone else meanwhile"),
                "change it with `kubectl orchscale hpa --min/--max/--cpu/--memory` (without --create)",
            )),
            None => Ok(Some(Intent {
                changes: plan.changes.clone(),
                body: Body::Create(body.clone()),
            })),
        },
    )
    .await?;
    let Settled::Written(written) = settled else {
        return Err(Error::failed(
            format!("{object} was not created"),
            "this is a bug: please report it",
        ));
    };
    written.report(reporter);
    let stored = written.stored.ok_or_else(|| {
        Error::failed(
            format!("{object} came back empty"),
            "this is a bug: please report it",
        )
    })?;
    let applied_text = format!("{object} created ({})", changes_text(&plan.changes[1..]));
    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted: {applied_text}; nothing was persisted"
        ));
    } else {
        reporter.out(&format!("applied: {applied_text}"));
        reporter.out(&format!("expected effect: {}", effect.text));
    }
    Ok(Outcome {
        hpa: stored,
        changes: written.changes,
        effect: Some(effect),
        applied: Some(applied_text),
    })
}
