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

use super::driver::{Proposal, propose};
use super::preflight::Step;
use super::shared::managed_warning;
use super::write::{self, AuditSpec, Body, Intent, Settled};
use crate::cli::{Cli, format_duration};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::plan::Change;
use crate::plan::hpa::{Effect, hpa_summary, plan_hpa_update, watch_panel_lines};
use crate::report::Reporter;
use crate::report::preview::Preview;
use watch::WatchSpec;

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
        (None, _) => return Err(missing_hpa(cluster, cli, reporter).await),
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
    effect: Option<Effect>,
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

async fn missing_hpa(cluster: &Cluster, cli: &Cli, reporter: &mut Reporter) -> Error {
    let deployment = &cli.targets.deployment;
    let other = other_hpa_for(cluster, deployment, reporter).await.ok().flatten();
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
async fn other_hpa_for(
    cluster: &Cluster,
    deployment: &str,
    reporter: &mut Reporter,
) -> Result<Option<String>, Error> {
    let hpa = super::shared::hpa_for(cluster, "Deployment", deployment, reporter).await?;
    Ok(hpa.and_then(|h| h.metadata.name))
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
    // The cluster's room matters only for a --min above the current one and above the pods
    // that run already (the room counts them); read next to the deployment, so its time does
    // not add up.
    let current_min = hpa.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1);
    let running = hpa.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0);
    let raises_min = input
        .request
        .min
        .is_some_and(|min| min > current_min && min > running);
    let (deployment, nodes) = tokio::join!(
        cluster.get_opt::<Deployment>(&deployment_name),
        room::nodes_if(cluster, raises_min)
    );
    let deployment = deployment?;
    let room = match (&deployment, nodes, input.request.min) {
        (Some(d), Some(nodes), Some(min)) => room::room(cluster, d, nodes, min, reporter).await,
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

    let object = format!("horizontalpodautoscaler/{name}");
    let mut warnings: Vec<String> = managed_warning(&object, &hpa.metadata).into_iter().collect();
    warnings.extend(plan.warnings.iter().cloned());
    let proposal = Proposal {
        preview: Preview {
            changes: plan.changes.clone(),
            consequences: vec![plan.effect.text.clone(), "no pod restarts".into()],
            warnings,
        },
        steps: vec![
            Step::patch("autoscaling", "horizontalpodautoscalers", name),
            Step::Observe {
                group: "autoscaling",
                resource: "horizontalpodautoscalers",
                lost: "the controller's answer to the change is not awaited; the status shown may predate it",
            },
        ],
        ..Proposal::default()
    };
    propose(cluster, reporter, &proposal, cli.global.yes, cli.global.dry_run).await?;

    let dry_run = cli.global.dry_run;
    let audit = AuditSpec::new(cluster, input.command_line(), object.clone());
    let live = deployment.as_ref();
    let mut effect = plan.effect.clone();
    let settled = write::update(cluster, name, hpa, &audit, dry_run, |current| {
        let plan = plan_hpa_update(&with_live_replicas(current, live), &input.request, room)?;
        effect = plan.effect;
        Ok(Intent::unless_empty(plan.changes, Body::Merge(plan.patch)))
    })
    .await?;
    let written = match settled {
        Settled::Written(written) => written,
        Settled::Unchanged(current) => {
            reporter.info(&format!("{object} already has these values: nothing to change"));
            let hpa = match current {
                Some(hpa) => hpa,
                None => cluster.get(name, "the HPA was deleted meanwhile").await?,
            };
            return Ok(Outcome::unchanged(hpa));
        }
    };
    written.report(reporter);
    let stored = written.stored.clone().ok_or_else(|| {
        Error::failed(
            format!("{object} came back empty"),
            "this is a bug: please report it",
        )
    })?;
    let applied = Applied {
        changes: written.changes.clone(),
        effect,
    };
    let summary = changes_text(&applied.changes);
    let applied_text = format!("{object}: {summary}");
    if dry_run {
        reporter.out(&format!(
            "dry run: the API server accepted {applied_text}; nothing was persisted"
        ));
    } else {
        reporter.out(&format!("applied: {applied_text}"));
        reporter.out(&format!("expected effect: {}", applied.effect.text));
    }
    Ok(Outcome {
        hpa: stored,
        changes: applied.changes,
        effect: Some(applied.effect),
        applied: Some(format!("{applied_text} was applied")),
    })
}

/// What the write stored, for the report.
struct Applied {
    changes: Vec<Change>,
    effect: Effect,
}

/// `minReplicas 3 -> 5, maxReplicas 10 -> 20`
fn changes_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            let text = c.field.text();
            let field = text.strip_prefix("spec.").unwrap_or(&text);
            format!("{field} {} -> {}", c.before_text(), c.after_text())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `hpa` fields of the JSON document (SPEC: `hpa {min, max, metrics, currentReplicas,
/// desiredReplicas}`), and the expected effect of a change.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HpaFields<'a> {
    hpa: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    effect: Option<&'a str>,
    /// Where the HPA takes the count over every metric (`null`: it does not act, or no change).
    prediction: Option<serde_json::Value>,
    /// The status shown is from before the change, not the controller's answer to it.
    status_predates_change: bool,
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
    // `statusPredatesChange`: the HPA's status is from before the change (not its answer).
    let document = |reporter: &mut Reporter, hpa: &HorizontalPodAutoscaler, predates: bool| {
        let fields = HpaFields {
            hpa: hpa_summary(hpa),
            effect: outcome.effect.as_ref().map(|e| e.text.as_str()),
            prediction: outcome
                .effect
                .as_ref()
                .and_then(|e| e.prediction.as_ref())
                .map(crate::plan::hpa::Prediction::to_json),
            status_predates_change: predates,
        };
        reporter.set_document("hpa", dry_run, &outcome.changes, true, fields);
    };
    // Recorded before watching too, so that a watch ending in an error (Ctrl-C after the
    // change, the HPA deleted) still reports the change made, marked failed.
    document(reporter, &outcome.hpa, false);
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
    let mut predates = false;
    if changed && !input.watch {
        let sign = observe::sign(&hpa);
        let wait = sign.wait(cli.global.timeout);
        if matches!(sign, observe::Sign::StatusChange(_)) && !wait.is_zero() {
            reporter.info(&format!(
                "the new spec is stored; waiting up to {} for the HPA controller's next sync \
                 (this HPA reports no observedGeneration, so its status changing tells)",
                format_duration(wait)
            ));
        }
        match observe::observed(cluster, &cli.targets.hpa, &sign, wait).await {
            Some(latest) => hpa = latest,
            None => {
                let why = match sign {
                    observe::Sign::Generation(_) => "the HPA controller has not reported on the new spec yet",
                    observe::Sign::StatusChange(_) => {
                        "the new spec is stored, and the HPA controller has not synced since"
                    }
                    observe::Sign::Untellable if hpa.status.is_none() => {
                        "the HPA is stored; the HPA controller reports on it at its first sync \
                         (within its sync period, 15 s by default)"
                    }
                    observe::Sign::Untellable => {
                        "the new spec is stored; the HPA controller acts on it at its next sync \
                         (within its sync period, 15 s by default), and this HPA reports no \
                         observedGeneration to tell when"
                    }
                };
                if hpa.status.is_some() {
                    reporter.info(&format!(
                        "{why}: the status below predates the change (`--watch` follows it)"
                    ));
                } else {
                    reporter.info(&format!("{why} (`--watch` follows it)"));
                }
                predates = true;
            }
        }
    }
    document(reporter, &hpa, predates);
    let mut lines = watch_panel_lines(&hpa, &[]);
    if predates {
        // Said where the status is, not only on stderr: it is not the answer to the change.
        lines.insert(
            1.min(lines.len()),
            "status (from before the change; the controller acts on the new spec at its next sync):"
                .to_string(),
        );
    }
    reporter.out(&lines.join("\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(v: serde_json::Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn changes_read_as_one_line() {
        let changes = vec![
            Change::new(
                "h",
                "spec.minReplicas",
                Some(crate::plan::ChangeValue::count(3)),
                Some(crate::plan::ChangeValue::count(5)),
            ),
            Change::new(
                "h",
                "spec.metrics[memory].target.averageUtilization",
                None,
                Some(crate::plan::ChangeValue::Percent(75)),
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
}
