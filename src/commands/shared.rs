//! Steps every writing command shares: preview with GitOps warnings, the audit record,
//! the pod list with usage.

use crate::cluster::Object;
use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};

use super::write::{Body, write_unconditionally};
use crate::cluster::Cluster;
use crate::cluster::metrics::{NotServed, PodUsage};
use crate::error::Error;
use crate::health;
use crate::plan::audit::now_rfc3339;
use crate::plan::connections::{RESTARTED_AT, restart_patch};
use crate::plan::{Change, ChangeValue, FieldPath};
use crate::quantity::{Quantity, format_cpu, format_memory};
use crate::report::Reporter;
use crate::report::preview::gitops_warning;

/// The label selector of a workload as a query string (`app=orchestrator,tier in (a,b)`).
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            _ => format!("!{}", expr.key),
        });
    }
    parts.join(",")
}

/// The HPA that scales the workload `kind`/`name` (its `scaleTargetRef`), found the one way
/// every command finds it: by target, not by name, since an HPA may be named anything. Without
/// permission to list HPAs the checks that need it cannot run: said once, and `None`.
///
/// # Errors
/// API errors other than 403.
pub(crate) async fn hpa_for(
    cluster: &Cluster,
    kind: &str,
    name: &str,
    reporter: &mut Reporter,
) -> Result<Option<HorizontalPodAutoscaler>, Error> {
    match cluster.list::<HorizontalPodAutoscaler>("").await {
        Ok(hpas) => Ok(hpas.into_iter().find(|h| {
            h.spec
                .as_ref()
                .is_some_and(|s| s.scale_target_ref.kind == kind && s.scale_target_ref.name == name)
        })),
        Err(e) if e.is_forbidden() => {
            reporter.warn(&format!(
                "cannot list horizontalpodautoscalers in namespace {} (forbidden): the checks that \
                 depend on the HPA of {} {name} are skipped",
                cluster.namespace,
                kind.to_lowercase()
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The GitOps/Helm warning for an object's metadata, if it is managed that way.
pub fn managed_warning(object: &str, meta: &ObjectMeta) -> Option<String> {
    gitops_warning(
        object,
        &meta.labels.clone().unwrap_or_default(),
        &meta.annotations.clone().unwrap_or_default(),
    )
}

/// The `previous` map of the audit record: each changed field's value before.
pub fn previous_values(changes: &[Change]) -> BTreeMap<String, Value> {
    changes
        .iter()
        .map(|c| (c.field.text(), record_value(c.before.as_ref())))
        .collect()
}

/// The `written` map of the audit record: each changed field's value after.
pub fn written_values(changes: &[Change]) -> BTreeMap<String, Value> {
    changes
        .iter()
        .map(|c| (c.field.text(), record_value(c.after.as_ref())))
        .collect()
}

fn record_value(value: Option<&ChangeValue>) -> Value {
    value.map_or(Value::Null, ChangeValue::record)
}

/// Reads an object that is one part of a larger view: a 403 calls `on_forbidden` and reads as
/// absent, so that one part the user may not read does not hide the others.
///
/// # Errors
/// API errors other than 403 (a missing object is `None`).
pub async fn get_unless_forbidden<K>(
    cluster: &Cluster,
    name: &str,
    on_forbidden: impl FnOnce(&Error),
) -> Result<Option<K>, Error>
where
    K: Object,
{
    match cluster.get_opt::<K>(name).await {
        Err(e) if e.is_forbidden() => {
            on_forbidden(&e);
            Ok(None)
        }
        other => other,
    }
}

/// The deployment's pod template `restartedAt` annotation (set by `kubectl rollout restart`).
pub fn restarted_at(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT))
        .cloned()
}

/// Restarts the deployment (a new `restartedAt` on its pod template, as `kubectl rollout
/// restart` does) and returns the change, for the preview of what was done.
///
/// A strategic merge patch of one annotation, without a resourceVersion, as kubectl sends it:
/// it cannot undo anyone else's change, and the controllers' status writes would only turn a
/// precondition into spurious 409s.
///
/// # Errors
/// API errors of the patch.
pub async fn restart(cluster: &Cluster, deployment: &Deployment, dry_run: bool) -> Result<Change, Error> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let before = restarted_at(deployment);
    // Sub-second precision: a restart in the same second as the one it follows must still
    // change the template, or nothing would restart.
    let now = now_rfc3339();
    write_unconditionally::<Deployment>(cluster, &name, Body::Strategic(restart_patch(&now)), dry_run)
        .await?;
    Ok(Change::new(
        format!("deployment/{name}"),
        FieldPath::RestartedAt,
        before.map(ChangeValue::Text),
        Some(ChangeValue::Text(now)),
    ))
}

/// One row of a pod list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub ready: bool,
    pub restarts: i32,
    pub node: String,
    /// Usage summed over the pod's containers; `None` without a metrics sample.
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
}

/// Sums the containers' usage of one pod; `None` when a value does not parse.
pub fn pod_usage_totals(usage: &PodUsage) -> (Option<Quantity>, Option<Quantity>) {
    let sum = |pick: fn(&(String, String, String)) -> &String| -> Option<Quantity> {
        usage.containers.iter().try_fold(Quantity::zero(), |acc, c| {
            acc.checked_add(&Quantity::parse(pick(c)).ok()?)
        })
    };
    (sum(|c| &c.1), sum(|c| &c.2))
}

/// The pods of a selector (terminating and finished ones left out) with usage when metrics are served.
/// The bool says whether metrics.k8s.io answered.
///
/// # Errors
/// API errors listing pods (metrics errors only degrade to "no metrics").
pub async fn pod_rows(cluster: &Cluster, selector: &str) -> Result<(Vec<PodRow>, bool), Error> {
    let list = pod_list(cluster, selector).await?;
    Ok((list.rows, list.metrics.is_ok()))
}

/// The pods of a selector as [`pod_rows`] has them, the terminating ones apart, and why
/// metrics.k8s.io gave no usage.
pub(crate) struct PodList {
    /// Live pods (not terminating, not finished).
    pub(crate) rows: Vec<PodRow>,
    /// Names of pods being deleted (deletionTimestamp set, within their grace period): still
    /// selected, as `kubectl get pods` shows them `Terminating`, but no replicas (upstream's
    /// ReplicaSet controller counts only `FilterActivePods`).
    pub(crate) terminating: Vec<String>,
    /// Why there is no usage (a failed request reads as unavailable).
    pub(crate) metrics: Result<(), NotServed>,
    /// Every pod listed (terminating and finished ones too), for views that show each pod's
    /// state as `kubectl get pods` does.
    pub(crate) pods: Vec<Pod>,
}

impl Default for PodList {
    /// No pods, metrics not missing: a list that could not be read (said apart).
    fn default() -> Self {
        PodList {
            rows: Vec::new(),
            terminating: Vec::new(),
            metrics: Ok(()),
            pods: Vec::new(),
        }
    }
}

/// [`PodList`] of a selector.
///
/// # Errors
/// API errors listing pods.
pub(crate) async fn pod_list(cluster: &Cluster, selector: &str) -> Result<PodList, Error> {
    let pods: Vec<Pod> = cluster.list(selector).await?;
    let metrics = match cluster.pod_metrics(selector).await {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "pod metrics unavailable");
            Err(NotServed::Unavailable)
        }
    };
    let mut rows: Vec<PodRow> = pods
        .iter()
        .filter(|p| health::is_live(p))
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let usage = metrics
                .as_ref()
                .ok()
                .and_then(|m| m.iter().find(|u| u.pod == name))
                .map(pod_usage_totals)
                .unwrap_or((None, None));
            PodRow {
                ready: health::pod_ready(p),
                restarts: health::pod_restarts(p),
                node: p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                cpu: usage.0,
                memory: usage.1,
                name,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut terminating: Vec<String> = pods
        .iter()
        .filter(|p| health::is_terminating(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    terminating.sort();
    Ok(PodList {
        rows,
        terminating,
        metrics: metrics.map(|_| ()),
        pods,
    })
}

/// The pods as the SPEC's JSON array `{name, ready, cpu, memory}` (+ restarts, node).
pub fn pods_json(rows: &[PodRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({"name": r.name, "ready": r.ready,
                       "cpu": r.cpu.as_ref().map(Quantity::canonical),
                       "memory": r.memory.as_ref().map(Quantity::canonical),
                       "restarts": r.restarts, "node": r.node})
            })
            .collect(),
    )
}

/// The pods as a text table.
pub fn pods_table(rows: &[PodRow]) -> String {
    if rows.is_empty() {
        return "  (no pods)".to_string();
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<5}  {:>8}  {:<10}  {:>9}  {:>10}\n",
        "NAME", "READY", "RESTARTS", "NODE", "CPU", "MEMORY"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:<5}  {:>8}  {:<10}  {:>9}  {:>10}\n",
            r.name,
            if r.ready { "yes" } else { "no" },
            r.restarts,
            r.node,
            r.cpu.as_ref().map(format_cpu).unwrap_or_else(|| "-".into()),
            r.memory.as_ref().map(format_memory).unwrap_or_else(|| "-".into()),
        ));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_render_as_queries() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "orchestrator", "tier": "api"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert_eq!(
            selector_string(&sel),
            "app=orchestrator,tier=api,env in (a,b),!canary"
        );
    }

    #[test]
    fn previous_values_keep_numbers_as_numbers() {
        let changes = vec![
            Change::new(
                "d/x",
                "spec.replicas",
                Some(ChangeValue::count(3)),
                Some(ChangeValue::count(5)),
            ),
            Change::new(
                "d/x",
                "spec.template.spec.containers[x].resources.requests.cpu",
                Some(ChangeValue::quantity("500m")),
                Some(ChangeValue::quantity("1")),
            ),
            Change::new(
                "d/x",
                "spec.template.spec.containers[x].resources.limits.nvidia.com/gpu",
                None,
                Some(ChangeValue::quantity("1")),
            ),
        ];
        let prev = previous_values(&changes);
        assert_eq!(prev["spec.replicas"], json!(3));
        assert_eq!(
            prev["spec.template.spec.containers[x].resources.requests.cpu"],
            json!("500m")
        );
        assert_eq!(
            prev["spec.template.spec.containers[x].resources.limits.nvidia.com/gpu"],
            Value::Null
        );
        let written = written_values(&changes);
        assert_eq!(written["spec.replicas"], json!(5));
        assert_eq!(
            written["spec.template.spec.containers[x].resources.requests.cpu"],
            json!("1"),
            "quantities are recorded as written, as strings (older records hold numbers: undo reads both)"
        );
        assert_eq!(
            written["spec.template.spec.containers[x].resources.limits.nvidia.com/gpu"],
            json!("1")
        );
    }

    #[test]
    fn usage_is_summed_over_containers() {
        let usage = PodUsage {
            pod: "p".into(),
            containers: vec![
                ("a".into(), "300m".into(), "700Mi".into()),
                ("b".into(), "5m".into(), "20Mi".into()),
            ],
        };
        let (cpu, memory) = pod_usage_totals(&usage);
        assert_eq!(cpu.unwrap().canonical(), "305m");
        assert_eq!(format_memory(&memory.unwrap()), "720 MiB");
    }

    #[test]
    fn table_and_json_list_every_pod() {
        let rows = vec![PodRow {
            name: "orchestrator-1".into(),
            ready: true,
            restarts: 0,
            node: "node-a".into(),
            cpu: Some(Quantity::parse("300m").unwrap()),
            memory: None,
        }];
        let table = pods_table(&rows);
        assert!(table.lines().nth(1).unwrap().starts_with("orchestrator-1  yes"));
        assert!(table.contains("300m"), "{table}");
        assert_eq!(pods_json(&rows)[0]["memory"], Value::Null);
        assert_eq!(pods_json(&rows)[0]["cpu"], "300m");
        assert_eq!(pods_json(&rows)[0]["ready"], true);
    }
}
