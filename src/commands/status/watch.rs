//! `status --watch`: re-attaches to the rollout in progress (the deployment's, then the
//! statefulset's) with the same follower as the writing commands, and ends as they end: the
//! verdict line and exit 0, or the follower's failure (exit 1), timeout (1) or Ctrl-C (130).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use serde::Serialize;
use serde_json::json;

use super::Overview;
use crate::cli::Cli;
use crate::cluster::{Cluster, Object};
use crate::commands::shared::{pod_rows, selector_string};
use crate::error::Error;
use crate::follow::{FollowSpec, follow};
use crate::health::{Counts, REVISION_ANNOTATION, Rollout, Workload};
use crate::report::Reporter;

/// What `--watch` does with one workload, decided from its object alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attach {
    /// Done (or nothing ever changed): nothing to follow.
    Idle,
    /// In progress: follow it.
    Follow,
    /// Failed already (ProgressDeadlineExceeded, ReplicaFailure): the verdict is known.
    Failed { reason: String, message: String },
    /// In progress but it cannot move on its own: a paused deployment, an OnDelete
    /// statefulset waiting for pods to be deleted. Said, not followed.
    Stalled(String),
}

/// Whether the deployment's rollout is in progress, as `kubectl rollout status` judges it
/// (kubectl/pkg/polymorphichelpers/rollout_status.go `DeploymentStatusViewer.Status`: the
/// spec observed, updated = replicas, no old replicas left, available = updated; a
/// ProgressDeadlineExceeded condition fails it).
pub(crate) fn deployment_attach(d: &Deployment) -> Attach {
    match d.rollout() {
        Rollout::Complete(_) => Attach::Idle,
        Rollout::Failed { reason, message } => Attach::Failed { reason, message },
        Rollout::Progressing(_) if d.spec.as_ref().and_then(|s| s.paused) == Some(true) => Attach::Stalled(
            "it is paused: its rollout goes on when it is resumed (`kubectl rollout resume`)".into(),
        ),
        Rollout::Progressing(_) => Attach::Follow,
    }
}

/// Whether the statefulset's rollout is in progress (`StatefulSetStatusViewer.Status`: the
/// spec observed, ready = replicas, the update revision on the pods, partition honoured).
/// kubectl refuses OnDelete ("rollout status is only available for RollingUpdate strategy
/// type"): its pods change only when deleted, so it is said, not followed.
pub(crate) fn statefulset_attach(s: &StatefulSet) -> Attach {
    match s.rollout() {
        Rollout::Complete(_) => Attach::Idle,
        Rollout::Failed { reason, message } => Attach::Failed { reason, message },
        Rollout::Progressing(_) => {
            let on_delete = s
                .spec
                .as_ref()
                .and_then(|sp| sp.update_strategy.as_ref())
                .and_then(|u| u.type_.as_deref())
                == Some("OnDelete");
            if on_delete && !crate::health::statefulset_updated(s) {
                Attach::Stalled(
                    "its updateStrategy is OnDelete: each pod takes the new revision when it is deleted"
                        .into(),
                )
            } else {
                Attach::Follow
            }
        }
    }
}

/// One rollout `--watch` met, for the JSON document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RolloutJson {
    /// `deployment/orchestrator`.
    object: String,
    /// The revision it rolls to (deployment revision, statefulset update revision).
    revision: Option<String>,
    /// `complete`, `failed`, `stalled`.
    verdict: &'static str,
    message: String,
}

/// Follows whatever rollout is in progress and ends with its verdict.
///
/// # Errors
/// The follower's: a failed rollout, a timeout, Ctrl-C, API errors.
pub(super) async fn follow_in_progress(
    cluster: &Cluster,
    cli: &Cli,
    view: Overview,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let Overview {
        mut doc,
        deployment,
        statefulset,
        ..
    } = view;
    let mut rollouts: Vec<RolloutJson> = Vec::new();
    let mut verdicts: Vec<String> = Vec::new();
    // The kinds whose rollout was followed to its end.
    let mut followed: Vec<&'static str> = Vec::new();

    let mut outcome: Result<(), Error> = Ok(());
    if let Some(d) = &deployment {
        let step = attach_one(cluster, cli, d, deployment_attach(d), reporter).await;
        followed.extend(step.followed.then_some(Deployment::KIND));
        verdicts.extend(step.line);
        rollouts.extend(step.json);
        outcome = step.result;
    }
    if outcome.is_ok()
        && let Some(s) = &statefulset
    {
        let step = attach_one(cluster, cli, s, statefulset_attach(s), reporter).await;
        followed.extend(step.followed.then_some(StatefulSet::KIND));
        verdicts.extend(step.line);
        rollouts.extend(step.json);
        outcome = step.result;
    }

    // The end state as it is now: the pods of what was followed to its end.
    if !followed.is_empty() && outcome.is_ok() {
        let fresh = super::overview(cluster, cli, reporter).await?;
        doc = fresh.doc;
        verdicts.extend(
            fresh
                .pods_text
                .into_iter()
                .filter(|(kind, _)| followed.contains(kind))
                .map(|(_, text)| text),
        );
    }
    if rollouts.is_empty() {
        verdicts.push("no rollout in progress".to_string());
    }
    doc.insert("rollouts".into(), json!(rollouts));
    reporter.set_document("status", false, &[], outcome.is_ok(), doc);
    if !verdicts.is_empty() {
        reporter.out(&verdicts.join("\n"));
    }
    outcome
}

/// What happened with one workload.
struct Step {
    followed: bool,
    line: Option<String>,
    json: Option<RolloutJson>,
    result: Result<(), Error>,
}

/// A workload `--watch` can follow.
trait Watched: Workload + Object {
    fn selector(&self) -> String;
    /// The revision rolled to.
    fn target_revision(&self) -> Option<String>;
}

impl Watched for Deployment {
    fn selector(&self) -> String {
        self.spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .unwrap_or_default()
    }
    fn target_revision(&self) -> Option<String> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .cloned()
    }
}

impl Watched for StatefulSet {
    fn selector(&self) -> String {
        self.spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .unwrap_or_default()
    }
    fn target_revision(&self) -> Option<String> {
        self.status.as_ref().and_then(|s| s.update_revision.clone())
    }
}

async fn attach_one<W: Watched>(
    cluster: &Cluster,
    cli: &Cli,
    workload: &W,
    attach: Attach,
    reporter: &mut Reporter,
) -> Step {
    let name = workload.meta().name.clone().unwrap_or_default();
    let object = format!("{}/{name}", W::KIND);
    let revision = workload.target_revision();
    let at = revision
        .as_deref()
        .map(|r| format!(" (revision {r})"))
        .unwrap_or_default();
    let json = |verdict: &'static str, message: String| RolloutJson {
        object: object.clone(),
        revision: revision.clone(),
        verdict,
        message,
    };
    match attach {
        Attach::Idle => Step {
            followed: false,
            line: None,
            json: None,
            result: Ok(()),
        },
        Attach::Stalled(why) => {
            let line = format!("{object}{at} has a rollout in progress that is not followed: {why}");
            Step {
                followed: false,
                line: Some(line.clone()),
                json: Some(json("stalled", line)),
                result: Ok(()),
            }
        }
        Attach::Failed { reason, message } => {
            let text = format!("rollout of {object}{at} failed: {reason}: {message}");
            Step {
                followed: false,
                line: None,
                json: Some(json("failed", text.clone())),
                result: Err(Error::failed(
                    text,
                    "status --watch changed nothing; fix the cause (`kubectl describe` the new \
                     pods), or roll back with `kubectl rollout undo`",
                )),
            }
        }
        Attach::Follow => {
            reporter.info(&format!(
                "{object}{at} is rolling out (started elsewhere); following the rollout"
            ));
            let selector = workload.selector();
            let applied =
                format!("status --watch changed nothing (the rollout of {object}{at} was started elsewhere)");
            let spec = FollowSpec {
                name: &name,
                selector: &selector,
                timeout: cli.global.timeout,
                applied: &applied,
                // Whoever started it may scale too; only the rollout is judged.
                expected_replicas: None,
                autoscaler: (W::KIND == "deployment").then_some(cli.targets.hpa.as_str()),
                events_since: workload.meta().resource_version.as_deref(),
            };
            let outcome = match follow::<W>(cluster, &spec, reporter).await {
                Ok(done) => verify(cluster, &done, &selector, &applied).await.map(|()| done),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(done) => {
                    let new_rs = new_replica_set::<W>(cluster, &done, &selector).await;
                    let line = verdict_line(&object, &done.counts(), new_rs.as_deref(), revision.as_deref());
                    Step {
                        followed: true,
                        line: Some(line.clone()),
                        json: Some(json("complete", line)),
                        result: Ok(()),
                    }
                }
                Err(e) => Step {
                    followed: true,
                    line: None,
                    json: Some(json("failed", e.to_string())),
                    result: Err(e),
                },
            }
        }
    }
}

/// The check the writing commands make after their rollout: as many live pods as desired,
/// all Ready.
async fn verify<W: Watched>(cluster: &Cluster, done: &W, selector: &str, applied: &str) -> Result<(), Error> {
    let (rows, _) = pod_rows(cluster, selector).await?;
    let ready = rows.iter().filter(|r| r.ready).count();
    let desired = usize::try_from(done.counts().desired).unwrap_or(0);
    if rows.len() == desired && ready == rows.len() {
        return Ok(());
    }
    Err(Error::failed(
        format!(
            "verification failed: {} pods found ({ready} ready), expected {desired}",
            rows.len()
        ),
        format!("{applied}; check the pods with `kubectl orchscale status`"),
    ))
}

/// The deployment's new ReplicaSet, by its revision (none for a statefulset or unreadable).
async fn new_replica_set<W: Watched>(cluster: &Cluster, workload: &W, selector: &str) -> Option<String> {
    if W::KIND != "deployment" {
        return None;
    }
    let revision = workload.target_revision()?;
    let sets: Vec<ReplicaSet> = cluster.list(selector).await.ok()?;
    sets.into_iter()
        .find(|rs| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                == Some(&revision)
        })
        .and_then(|rs| rs.metadata.name)
}

/// The verdict as `resources` says it: `deployment/x rolled out: 3 of 3 pods updated, 3
/// ready, 3 available (new ReplicaSet x-7c9f)`.
fn verdict_line(object: &str, n: &Counts, new_rs: Option<&str>, revision: Option<&str>) -> String {
    let at = match (new_rs, revision) {
        (Some(rs), _) => format!(" (new ReplicaSet {rs})"),
        (None, Some(revision)) => format!(" (revision {revision})"),
        (None, None) => String::new(),
    };
    format!(
        "{object} rolled out: {} of {} pods updated, {} ready, {} available{at}",
        n.updated, n.desired, n.ready, n.available
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(spec_extra: serde_json::Value, status: serde_json::Value) -> Deployment {
        let mut spec = json!({"replicas": 3, "selector": {"matchLabels": {"app": "orchestrator"}},
                              "template": {"spec": {"containers": [{"name": "orchestrator"}]}}});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            s.extend(extra.clone());
        }
        serde_json::from_value(json!({"metadata": {"name": "orchestrator", "generation": 2},
            "spec": spec, "status": status}))
        .unwrap()
    }

    #[test]
    fn a_deployment_is_followed_only_while_its_rollout_is_in_progress() {
        // rollout_status.go DeploymentStatusViewer: updated < replicas waits; old replicas
        // pending termination wait; available < updated waits; all equal is done.
        let done = deployment(
            json!({}),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                   "readyReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(deployment_attach(&done), Attach::Idle);
        let rolling = deployment(
            json!({}),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                   "readyReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(deployment_attach(&rolling), Attach::Follow);
        let unobserved = deployment(
            json!({}),
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                   "readyReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(deployment_attach(&unobserved), Attach::Follow);
        let paused = deployment(
            json!({"paused": true}),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1}),
        );
        assert!(matches!(deployment_attach(&paused), Attach::Stalled(_)));
        let deadline = deployment(
            json!({}),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                   "conditions": [{"type": "Progressing", "status": "False",
                                   "reason": "ProgressDeadlineExceeded", "message": "timed out"}]}),
        );
        assert!(
            matches!(deployment_attach(&deadline), Attach::Failed { reason, .. } if reason == "ProgressDeadlineExceeded")
        );
    }

    #[test]
    fn an_on_delete_statefulset_is_said_not_followed() {
        let sts = |strategy: &str| -> StatefulSet {
            serde_json::from_value(json!({
                "metadata": {"name": "postgres", "generation": 3},
                "spec": {"replicas": 1, "selector": {}, "serviceName": "postgres", "template": {},
                         "updateStrategy": {"type": strategy}},
                "status": {"observedGeneration": 3, "replicas": 1, "readyReplicas": 1,
                           "updatedReplicas": 0,
                           "currentRevision": "postgres-1", "updateRevision": "postgres-2"}
            }))
            .unwrap()
        };
        assert!(matches!(statefulset_attach(&sts("OnDelete")), Attach::Stalled(_)));
        assert_eq!(statefulset_attach(&sts("RollingUpdate")), Attach::Follow);
    }

    #[test]
    fn the_verdict_reads_as_the_writing_commands_say_it() {
        let n = Counts {
            desired: 3,
            updated: 3,
            ready: 3,
            available: 3,
            total: 3,
            observed: true,
        };
        assert_eq!(
            verdict_line(
                "deployment/orchestrator",
                &n,
                Some("orchestrator-7c9f"),
                Some("3")
            ),
            "deployment/orchestrator rolled out: 3 of 3 pods updated, 3 ready, 3 available \
             (new ReplicaSet orchestrator-7c9f)"
        );
        assert_eq!(
            verdict_line("statefulset/postgres", &n, None, Some("postgres-2")),
            "statefulset/postgres rolled out: 3 of 3 pods updated, 3 ready, 3 available (revision postgres-2)"
        );
    }
}
