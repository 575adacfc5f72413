//! After the write: follow the rollout (or say why there is none), verify the pods, report in
//! text and JSON; `--rollback-on-failure` restores the previous values and follows that.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;

use super::target::Target;
use super::{ResourcesInput, resources_json, resources_text};
use crate::cli::Cli;
use crate::cluster::Cluster;
use crate::commands::shared::{pod_rows, pods_json, pods_table};
use crate::commands::write::{Body, write_unconditionally};
use crate::error::Error;
use crate::follow::{FollowSpec, follow, follow_ignoring, new_replica_set, pods_with_problems};
use crate::health::Counts;
use crate::plan::FieldPath;
use crate::plan::resources::{Disruption, ResourcesPlan};
use crate::report::Reporter;

/// What was written, for following and reporting.
pub struct Applied<'a> {
    /// `deployment/orchestrator`
    pub object: &'a str,
    pub name: &'a str,
    pub container: &'a str,
    pub plan: &'a ResourcesPlan,
    pub disruption: &'a Disruption,
    pub warnings: &'a [String],
}

impl Applied<'_> {
    /// `deployment/orchestrator container orchestrator: requests cpu 500m -> 750m`
    pub fn summary(&self) -> String {
        let changed: Vec<String> = self
            .plan
            .changes
            .iter()
            .map(|c| {
                let key = match &c.field {
                    FieldPath::ContainerResource { kind, name, .. } => format!("{} {name}", kind.as_str()),
                    other => other.text(),
                };
                format!("{key} {} -> {}", c.before_text(), c.after_text())
            })
            .collect();
        format!(
            "{} container {}: {}",
            self.object,
            self.container,
            changed.join(", ")
        )
    }

    /// The command's own JSON fields: the container's values, the restart, the warnings.
    pub fn fields(&self) -> ResourcesFields {
        ResourcesFields {
            container: resources_json(self.container, &self.plan.after),
            restart: Some(Restart {
                pods: self.disruption.pods_restarting,
                downtime: self.disruption.downtime,
                summary: self.disruption.summary.clone(),
            }),
            warnings: Some(self.warnings.to_vec()),
            ..ResourcesFields::default()
        }
    }
}

/// The `resources` / `db resources` fields of the JSON document.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesFields {
    /// `{name, requests, limits}` as stored.
    container: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart: Option<Restart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<Rollout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pods: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back: Option<bool>,
}

/// How the change restarts pods.
#[derive(Debug, Serialize)]
struct Restart {
    pods: i32,
    downtime: bool,
    summary: String,
}

/// The rollout's counts and what is known of where it goes.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rollout {
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_replica_set: Option<String>,
}

fn rollout_json(counts: &Counts, revision: Option<String>, new_replica_set: Option<String>) -> Rollout {
    Rollout {
        replicas: counts.desired,
        updated: counts.updated,
        ready: counts.ready,
        available: counts.available,
        revision,
        new_replica_set,
    }
}

/// Nothing to change: report the current values.
///
/// # Errors
/// None today; a `Result` so that the flow reads the same in every branch.
pub fn unchanged<W: Target>(
    cli: &Cli,
    input: &ResourcesInput,
    workload: &W,
    container: &str,
    plan: &ResourcesPlan,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let fields = ResourcesFields {
        container: resources_json(container, &plan.after),
        rollout: Some(rollout_json(&workload.counts(), workload.revision(), None)),
        ..ResourcesFields::default()
    };
    reporter.set_document(input.command, cli.global.dry_run, &[], true, fields);
    reporter.out(&format!("container {container}: {}", resources_text(&plan.after)));
    Ok(())
}

/// Follows the rollout the patch started and verifies the pods; when the patch restarts
/// nothing by itself (OnDelete, a paused deployment, a partition above every ordinal) it says
/// what to do instead and does not wait for a rollout that will not happen.
///
/// # Errors
/// The rollout's failure (after the rollback when asked), a timeout, Ctrl-C, a failed check.
pub async fn follow_and_report<W: Target>(
    cluster: &Cluster,
    cli: &Cli,
    input: &ResourcesInput,
    applied: &Applied<'_>,
    stored: &W,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let summary = applied.summary();
    let mut fields = applied.fields();
    if applied.disruption.pods_restarting == 0 {
        fields.rollout = Some(rollout_json(&stored.counts(), stored.revision(), None));
        reporter.set_document(input.command, false, &applied.plan.changes, true, fields);
        reporter.out(&format!(
            "applied: {summary}\nno rollout to follow: {}",
            applied.disruption.summary
        ));
        return Ok(());
    }

    let selector = stored.selector();
    let applied_text = format!("{summary} was applied");
    reporter.info(&format!("applied: {summary}; following the rollout"));
    let spec = FollowSpec {
        name: applied.name,
        selector: &selector,
        timeout: cli.global.timeout,
        applied: &applied_text,
        // The HPA may move the count during the rollout (the new requests shift utilization);
        // that does not make the rollout fail.
        expected_replicas: None,
        autoscaler: None,
        events_since: stored.meta().resource_version.as_deref(),
    };
    let latest = match follow::<W>(cluster, &spec, reporter).await {
        Ok(latest) => latest,
        Err(failure) => {
            let rolled_back = input.rollback_on_failure && !failure.keeps_change();
            let failure = if rolled_back {
                roll_back::<W>(cluster, cli, applied, &selector, &applied_text, reporter, failure).await
            } else {
                failure
            };
            fields.rolled_back = Some(rolled_back);
            reporter.set_document(input.command, false, &applied.plan.changes, false, fields);
            return Err(failure);
        }
    };
    verify_and_report(cluster, input, applied, &latest, &selector, fields, reporter).await
}

/// The name of the Deployment's new ReplicaSet (the one at its revision); `None` for a
/// StatefulSet or when it cannot be listed.
async fn new_replica_set_of<W: Target>(cluster: &Cluster, workload: &W, selector: &str) -> Option<String> {
    if W::KIND != "deployment" {
        return None;
    }
    let sets: Vec<ReplicaSet> = cluster.list(selector).await.ok()?;
    let sets: BTreeMap<String, ReplicaSet> = sets.into_iter().map(|rs| (rs.name_any(), rs)).collect();
    new_replica_set(workload.revision().as_deref(), &sets)
}

async fn verify_and_report<W: Target>(
    cluster: &Cluster,
    input: &ResourcesInput,
    applied: &Applied<'_>,
    latest: &W,
    selector: &str,
    mut fields: ResourcesFields,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let counts = latest.counts();
    let new_rs = new_replica_set_of(cluster, latest, selector).await;
    let (rows, _) = pod_rows(cluster, selector).await?;
    let ready = rows.iter().filter(|r| r.ready).count();
    let ok = rows.len() == counts.desired.max(0) as usize && ready == rows.len();
    fields.rollout = Some(rollout_json(&counts, latest.revision(), new_rs.clone()));
    fields.pods = Some(pods_json(&rows));
    reporter.set_document(input.command, false, &applied.plan.changes, ok, fields);

    let at = match (&new_rs, latest.revision()) {
        (Some(rs), _) => format!(" (new ReplicaSet {rs})"),
        (None, Some(revision)) => format!(" (revision {revision})"),
        (None, None) => String::new(),
    };
    reporter.verdict(
        ok,
        &format!(
            "{} rolled out: {} of {} pods updated, {} ready, {} available{at}",
            applied.object, counts.updated, counts.desired, counts.ready, counts.available,
        ),
    );
    reporter.out(&format!(
        "container {}: {}\n{}",
        applied.container,
        resources_text(&applied.plan.after),
        pods_table(&rows)
    ));
    if ok {
        Ok(())
    } else {
        Err(Error::failed(
            format!(
                "verification failed: {} pods found ({ready} ready), expected {}",
                rows.len(),
                counts.desired
            ),
            format!(
                "{} was applied; check the pods with `kubectl orchscale status`",
                applied.summary()
            ),
        ))
    }
}

/// `--rollback-on-failure`: put the previous values back and follow that rollout; returns the
/// error to report (the original failure, saying whether the rollback worked).
async fn roll_back<W: Target>(
    cluster: &Cluster,
    cli: &Cli,
    applied: &Applied<'_>,
    selector: &str,
    applied_text: &str,
    reporter: &mut Reporter,
    failure: Error,
) -> Error {
    // The failure's hint starts with what was applied; after a rollback that is no longer so.
    let hint = failure.hint();
    let cause_hint = hint
        .strip_prefix(&format!("{applied_text}; "))
        .unwrap_or(&hint)
        .to_string();
    reporter.warn(&format!(
        "{failure}; restoring the previous values of container {} ({})",
        applied.container,
        resources_text(&applied.plan.before)
    ));
    let failed_pods = pods_with_problems(cluster, selector).await;
    let patch = applied.plan.restore_patch(applied.container);
    if let Err(e) = write_unconditionally::<W>(cluster, applied.name, Body::Strategic(patch), false).await {
        return Error::failed(format!("{failure}; the rollback failed too: {e}"), e.hint());
    }
    let restored = format!(
        "{} container {} was rolled back to {}",
        applied.object,
        applied.container,
        resources_text(&applied.plan.before)
    );
    reporter.info(&format!("{restored}; following the rollback"));
    let spec = FollowSpec {
        name: applied.name,
        selector,
        timeout: cli.global.timeout,
        applied: &restored,
        expected_replicas: None,
        autoscaler: None,
        events_since: None,
    };
    match follow_ignoring::<W>(cluster, &spec, &failed_pods, reporter).await {
        Ok(_) => Error::failed(
            format!(
                "{failure}; rolled back: container {} has its previous values again ({})",
                applied.container,
                resources_text(&applied.plan.before)
            ),
            format!("the previous values are back and rolled out; {cause_hint}"),
        ),
        // Ctrl-C stays an interrupt (exit 130), saying the rollback was written.
        Err(e @ Error::Interrupted { .. }) => e,
        Err(e) => Error::failed(format!("{failure}; the rollback did not finish: {e}"), e.hint()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::resources::{ResourceList, parse_resource_list, plan_container_resources};
    use serde_json::json;

    fn plan() -> ResourcesPlan {
        let template = serde_json::from_value(json!({"spec": {"containers": [
            {"name": "orchestrator", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}
        ]}}))
        .unwrap();
        plan_container_resources(
            &template,
            "deployment/orchestrator",
            "orchestrator",
            &parse_resource_list("--requests", "cpu=750m,memory=1Gi").unwrap(),
            &ResourceList::new(),
            "1",
        )
        .unwrap()
    }

    #[test]
    fn summary_and_json_say_what_was_applied() {
        let plan = plan();
        let disruption = Disruption {
            pods_restarting: 3,
            downtime: false,
            summary: "3 pods restart".into(),
        };
        let warnings = vec!["capacity: tight".to_string()];
        let applied = Applied {
            object: "deployment/orchestrator",
            name: "orchestrator",
            container: "orchestrator",
            plan: &plan,
            disruption: &disruption,
            warnings: &warnings,
        };
        assert_eq!(
            applied.summary(),
            "deployment/orchestrator container orchestrator: requests cpu 500m -> 750m, \
             requests memory (unset) -> 1Gi"
        );
        let extra = serde_json::to_value(applied.fields()).unwrap();
        assert_eq!(extra["container"]["requests"]["memory"], "1Gi");
        assert_eq!(extra["restart"]["pods"], 3);
        assert_eq!(extra["warnings"][0], "capacity: tight");
    }

    #[test]
    fn rollout_json_has_the_counts_and_what_is_known() {
        let counts = Counts {
            desired: 3,
            updated: 2,
            ready: 3,
            available: 3,
            total: 4,
            observed: true,
        };
        let j = serde_json::to_value(rollout_json(
            &counts,
            Some("4".into()),
            Some("orchestrator-abc".into()),
        ))
        .unwrap();
        assert_eq!(
            j,
            json!({"replicas": 3, "updated": 2, "ready": 3, "available": 3,
                   "revision": "4", "newReplicaSet": "orchestrator-abc"})
        );
        let bare = serde_json::to_value(rollout_json(&counts, None, None)).unwrap();
        assert!(bare.get("revision").is_none());
    }
}
