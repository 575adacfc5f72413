//! `status`: a read-only, one-screen overview of everything the runbook touches.
//!
//! Only GETs and LISTs: nothing is written (the e2e test checks the request log).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container, ResourceRequirements};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::shared::{PodList, get_unless_forbidden, pod_list, selector_string};
use crate::cli::{Cli, StatusArgs};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::health::Workload;
use crate::report::Reporter;

mod pods;
mod watch;

/// The overview as read once: the text, the JSON document's fields and the objects the
/// watch goes on from.
pub(crate) struct Overview {
    pub(crate) text: String,
    pub(crate) doc: Map<String, Value>,
    pub(crate) deployment: Option<Deployment>,
    pub(crate) statefulset: Option<StatefulSet>,
    /// The pods sections alone, by workload kind (`deployment`, `statefulset`), for the end
    /// of a watch.
    pub(crate) pods_text: Vec<(&'static str, String)>,
}

/// # Errors
/// API and transport errors; missing objects are shown as missing, not errors.
pub async fn run(
    cluster: &Cluster,
    cli: &Cli,
    args: &StatusArgs,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let t = &cli.targets;
    let view = overview(cluster, cli, reporter).await?;
    reporter.out(&view.text);
    // Without the deployment the overview is mostly empty: most likely the wrong namespace or
    // name, which deserves a failing exit code and a hint, as `kubectl get` would give.
    if view.deployment.is_none() {
        reporter.set_document("status", false, &[], false, view.doc);
        return Err(Error::NotFound {
            kind: "deployment".into(),
            name: t.deployment.clone(),
            namespace: cluster.namespace.clone(),
            hint: "check the namespace (-n) and the name (--deployment, ORCHSCALE_DEPLOYMENT)".into(),
        });
    }
    if args.watch {
        return watch::follow_in_progress(cluster, cli, view, reporter).await;
    }
    reporter.set_document("status", false, &[], true, view.doc);
    Ok(())
}

/// Reads everything once and renders it.
///
/// # Errors
/// API and transport errors; missing and forbidden objects are shown as such, not errors.
pub(crate) async fn overview(
    cluster: &Cluster,
    cli: &Cli,
    reporter: &mut Reporter,
) -> Result<Overview, Error> {
    let t = &cli.targets;
    let now = Timestamp::now();
    let deployment: Option<Deployment> = cluster.get_opt(&t.deployment).await?;
    let mut forbidden = Vec::new();
    let hpa: Option<HorizontalPodAutoscaler> = readable(cluster, &t.hpa, &mut forbidden, reporter).await?;
    let statefulset: Option<StatefulSet> =
        readable(cluster, &t.statefulset, &mut forbidden, reporter).await?;
    let configmap: Option<ConfigMap> = readable(cluster, &t.configmap, &mut forbidden, reporter).await?;
    // A part it may not read says so instead of "not found".
    let section = |label: &str, kind: &str, name: &str, text: String| {
        if forbidden.contains(&format!("{kind}/{name}")) {
            format!("\n{label} {name}: cannot read (forbidden)")
        } else {
            text
        }
    };
    let dep_selector = deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .map(|s| selector_string(&s.selector));
    let PodList {
        rows,
        terminating,
        metrics,
        pods: listed,
    } = match &dep_selector {
        Some(selector) => listed_pods(cluster, selector, reporter).await?,
        None => PodList::default(),
    };
    let sets: Vec<ReplicaSet> = match &dep_selector {
        Some(selector) => match cluster.list::<ReplicaSet>(selector).await {
            Ok(sets) => owned_by(sets, deployment.as_ref().and_then(|d| d.metadata.uid.as_deref())),
            Err(e) if e.is_forbidden() => {
                reporter.warn(&format!(
                    "cannot list replicasets in namespace {} (forbidden): pods are grouped by \
                     pod-template-hash, without revisions",
                    cluster.namespace
                ));
                Vec::new()
            }
            Err(e) => return Err(e),
        },
        None => Vec::new(),
    };
    let revision = deployment
        .as_ref()
        .and_then(|d| d.metadata.annotations.as_ref())
        .and_then(|a| a.get(crate::health::REVISION_ANNOTATION))
        .cloned();
    let views = listed.iter().map(|p| pods::PodView::new(p, &rows, now)).collect();
    let groups = pods::deployment_groups(revision.as_deref(), &sets, views, &listed, &t.container);

    let mut doc = Map::new();
    let mut text = vec![format!(
        "Context {} | server {} | namespace {}",
        cluster.context, cluster.server, cluster.namespace
    )];

    let dep_json = deployment.as_ref().map(|d| deployment_json(d, &t.container));
    text.push(deployment_text(&t.deployment, dep_json.as_ref()));
    doc.insert("deployment".into(), dep_json.unwrap_or(Value::Null));

    let mut pods_text = Vec::new();
    if deployment.is_some() {
        let note = match metrics {
            Ok(()) => String::new(),
            Err(why) => format!(" ({})", why.explain()),
        };
        let mut section = format!(
            "\nPods of deployment {} by revision, newest first{note}:\n{}",
            t.deployment,
            pods::table("deployment", &groups, now)
        );
        if !terminating.is_empty() {
            section.push_str(&format!(
                "\n  terminating (not counted as replicas): {}",
                terminating.join(", ")
            ));
        }
        text.push(section.clone());
        pods_text.push(("deployment", section));
    }
    doc.insert("pods".into(), json!(pods::pods_json(&groups)));
    doc.insert("revisions".into(), json!(pods::revisions_json(&groups)));
    doc.insert("terminatingPods".into(), json!(terminating));
    doc.insert("metricsAvailable".into(), Value::Bool(metrics.is_ok()));

    let hpa_json = hpa.as_ref().map(crate::plan::hpa::hpa_summary);
    text.push(section(
        "HPA",
        "horizontalpodautoscaler",
        &t.hpa,
        hpa_text(&t.hpa, hpa_json.as_ref()),
    ));
    doc.insert("hpa".into(), hpa_json.unwrap_or(Value::Null));

    let mut sts_json = statefulset.as_ref().map(|s| statefulset_json(s, &t.db_container));
    let mut sts_text = section(
        "StatefulSet",
        "statefulset",
        &t.statefulset,
        statefulset_text(&t.statefulset, sts_json.as_ref()),
    );
    if let Some(sts) = &statefulset {
        let selector = sts
            .spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .unwrap_or_default();
        let db = listed_pods(cluster, &selector, reporter).await?;
        let views = db
            .pods
            .iter()
            .map(|p| pods::PodView::new(p, &db.rows, now))
            .collect();
        let groups = pods::statefulset_groups(sts, views, &db.pods, &t.db_container);
        let table = format!(
            "\n\nPods of statefulset {} by revision, update revision first:\n{}",
            t.statefulset,
            pods::table("statefulset", &groups, now)
        );
        sts_text.push_str(&table);
        pods_text.push(("statefulset", table));
        if let Some(Value::Object(j)) = sts_json.as_mut() {
            j.insert("pods".into(), json!(pods::pods_json(&groups)));
            j.insert("revisions".into(), json!(pods::revisions_json(&groups)));
        }
    }
    text.push(sts_text);
    doc.insert("statefulset".into(), sts_json.unwrap_or(Value::Null));

    let pool = configmap
        .as_ref()
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(&t.config_key))
        .and_then(|yaml| pool_size(yaml));
    let pool_text = match (&configmap, pool) {
        (None, _) => format!("\nConfigMap {}: not found", t.configmap),
        (Some(_), Some(n)) => format!(
            "\nConfigMap {}: database.max_connections = {n} per pod",
            t.configmap
        ),
        (Some(_), None) => format!(
            "\nConfigMap {}: database.max_connections not found in {}",
            t.configmap, t.config_key
        ),
    };
    text.push(section("ConfigMap", "configmap", &t.configmap, pool_text));
    doc.insert("poolSize".into(), json!(pool));

    Ok(Overview {
        text: text.join("\n"),
        doc,
        deployment,
        statefulset,
        pods_text,
    })
}

/// The pods of a selector; without permission to list them, a warning and none (a read-only
/// overview goes on without the part it may not read: SPEC, it says what it could not check).
async fn listed_pods(cluster: &Cluster, selector: &str, reporter: &mut Reporter) -> Result<PodList, Error> {
    match pod_list(cluster, selector).await {
        Err(e) if e.is_forbidden() => {
            reporter.warn(&format!(
                "cannot list pods in namespace {} (forbidden): the pods are left out",
                cluster.namespace
            ));
            Ok(PodList::default())
        }
        other => other,
    }
}

/// The ReplicaSets a Deployment owns (its uid in their ownerReferences); all of them when the
/// uid is unknown.
fn owned_by(sets: Vec<ReplicaSet>, uid: Option<&str>) -> Vec<ReplicaSet> {
    let Some(uid) = uid else { return sets };
    sets.into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .as_ref()
                .is_none_or(|refs| refs.iter().any(|r| r.uid == uid))
        })
        .collect()
}

/// Reads one part of the overview; a forbidden one is warned about and left out (its kind/name
/// noted in `forbidden`) rather than an error that hides everything else.
async fn readable<K>(
    cluster: &Cluster,
    name: &str,
    forbidden: &mut Vec<String>,
    reporter: &mut Reporter,
) -> Result<Option<K>, Error>
where
    K: crate::cluster::Object,
{
    get_unless_forbidden(cluster, name, |_| {
        let object = format!("{}/{name}", crate::cluster::api::kind_of::<K>());
        reporter.warn(&format!("cannot read {object} (forbidden): it is left out"));
        forbidden.push(object);
    })
    .await
}

fn container<'a>(containers: &'a [Container], name: &str) -> Option<&'a Container> {
    containers.iter().find(|c| c.name == name)
}

/// requests/limits of a container as `{requests: {cpu: ..}, limits: {..}}`.
pub fn resources_json(resources: Option<&ResourceRequirements>) -> Value {
    let side = |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
        Value::Object(
            m.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), json!(crate::quantity::canonical_of(v))))
                .collect(),
        )
    };
    json!({
        "requests": side(resources.and_then(|r| r.requests.as_ref())),
        "limits": side(resources.and_then(|r| r.limits.as_ref())),
    })
}

fn resources_text(resources: &Value) -> String {
    let side = |key: &str| {
        resources[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    format!("requests {}  limits {}", side("requests"), side("limits"))
}

fn deployment_json(d: &Deployment, container_name: &str) -> Value {
    let n = d.counts();
    let spec = d.spec.as_ref();
    let pod_spec = spec.and_then(|s| s.template.spec.as_ref());
    let c = pod_spec.and_then(|p| container(&p.containers, container_name));
    let strategy = spec.and_then(|s| s.strategy.as_ref());
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    // As the API holds it: a number of pods, or a percentage string ("25%").
    let int_or_str = |v: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>| {
        v.map(|v| match v {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => json!(i),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => json!(s),
        })
    };
    let conditions: Vec<Value> = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message}))
        .collect();
    json!({
        "name": d.metadata.name,
        "replicas": n.desired, "updatedReplicas": n.updated, "readyReplicas": n.ready,
        "availableReplicas": n.available,
        "image": c.and_then(|c| c.image.clone()),
        "container": container_name,
        "containerFound": c.is_some(),
        "strategy": {
            "type": strategy.and_then(|s| s.type_.clone()).unwrap_or_else(|| "RollingUpdate".into()),
            "maxSurge": int_or_str(rolling.and_then(|r| r.max_surge.as_ref())),
            "maxUnavailable": int_or_str(rolling.and_then(|r| r.max_unavailable.as_ref())),
        },
        "resources": resources_json(c.and_then(|c| c.resources.as_ref())),
        "conditions": conditions,
    })
}

fn conditions_text(conditions: &Value) -> String {
    conditions
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let reason = c["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!(
                "{}={}{reason}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn deployment_text(name: &str, d: Option<&Value>) -> String {
    let Some(d) = d else {
        return format!("\nDeployment {name}: not found");
    };
    let s = &d["strategy"];
    let int_or_str = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let surge = int_or_str(&s["maxSurge"])
        .map(|v| format!(" maxSurge {v}"))
        .unwrap_or_default();
    let unavailable = int_or_str(&s["maxUnavailable"])
        .map(|v| format!(" maxUnavailable {v}"))
        .unwrap_or_default();
    format!(
        "\nDeployment {name}: {} desired, {} updated, {} ready, {} available\n  image {}\n  strategy {}{surge}{unavailable}\n  \
         container {}: {}\n  conditions: {}",
        d["replicas"],
        d["updatedReplicas"],
        d["readyReplicas"],
        d["availableReplicas"],
        d["image"].as_str().unwrap_or("-"),
        s["type"].as_str().unwrap_or("-"),
        d["container"].as_str().unwrap_or("-"),
        if d["containerFound"] == true {
            resources_text(&d["resources"])
        } else {
            "not found".into()
        },
        conditions_text(&d["conditions"]),
    )
}

fn hpa_text(name: &str, h: Option<&Value>) -> String {
    let Some(h) = h else {
        return format!("\nHPA {name}: not found");
    };
    let mut out = format!(
        "\nHPA {name}: min {} max {}, current {} desired {}",
        h["min"], h["max"], h["currentReplicas"], h["desiredReplicas"]
    );
    for m in h["metrics"].as_array().into_iter().flatten() {
        let show = |v: &Value, pct: bool| match (v.as_i64(), v.as_str()) {
            (Some(n), _) if pct => format!("{n}%"),
            (_, Some(s)) => s.to_string(),
            _ => "?".into(),
        };
        let (current, target) = if m["targetUtilizationPercent"].is_null() {
            (
                show(&m["currentAverageValue"], false),
                show(&m["targetAverageValue"], false),
            )
        } else {
            (
                show(&m["currentUtilizationPercent"], true),
                show(&m["targetUtilizationPercent"], true),
            )
        };
        out.push_str(&format!(
            "\n  {} {current} / target {target}",
            m["name"].as_str().unwrap_or("?")
        ));
    }
    out.push_str(&format!("\n  conditions: {}", conditions_text(&h["conditions"])));
    out
}

/// `max_connections` from postgres arguments: `-c max_connections=N` (or `-cmax_connections=N`).
pub fn postgres_max_connections(args: &[String]) -> Option<i64> {
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        let setting = if arg == "-c" {
            iter.peek().map(|s| s.as_str())
        } else {
            arg.strip_prefix("-c").or_else(|| arg.strip_prefix("--"))
        };
        if let Some(value) = setting
            .and_then(|s| {
                s.trim()
                    .strip_prefix("max_connections")
                    .or_else(|| s.trim().strip_prefix("max-connections"))
            })
            .and_then(|rest| rest.trim_start().strip_prefix('='))
        {
            return value.trim().parse().ok();
        }
    }
    None
}

fn statefulset_json(s: &StatefulSet, container_name: &str) -> Value {
    let n = s.counts();
    let status = s.status.as_ref();
    let pod_spec = s.spec.as_ref().and_then(|sp| sp.template.spec.as_ref());
    let c = pod_spec.and_then(|p| container(&p.containers, container_name));
    let args: Vec<String> = c
        .map(|c| {
            c.command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": s.metadata.name,
        "replicas": n.desired, "readyReplicas": n.ready,
        "currentRevision": status.and_then(|s| s.current_revision.clone()),
        "updateRevision": status.and_then(|s| s.update_revision.clone()),
        "updatedReplicas": n.updated,
        // Every pod at the update revision (OnDelete never promotes currentRevision before 1.36).
        "updated": crate::health::statefulset_updated(s),
        "updateStrategy": s.spec.as_ref().and_then(|sp| sp.update_strategy.as_ref()).and_then(|u| u.type_.clone()),
        "container": container_name,
        "containerFound": c.is_some(),
        "resources": resources_json(c.and_then(|c| c.resources.as_ref())),
        "maxConnections": postgres_max_connections(&args),
    })
}

fn statefulset_text(name: &str, s: Option<&Value>) -> String {
    let Some(s) = s else {
        return format!("\nStatefulSet {name}: not found");
    };
    let revision = if s["updated"] == true {
        format!(
            "revision {}",
            s["updateRevision"]
                .as_str()
                .or(s["currentRevision"].as_str())
                .unwrap_or("-")
        )
    } else {
        format!(
            "revision {} -> {} (rolling out)",
            s["currentRevision"].as_str().unwrap_or("-"),
            s["updateRevision"].as_str().unwrap_or("-")
        )
    };
    format!(
        "\nStatefulSet {name}: {}/{} ready, {revision}\n  container {}: {}\n  max_connections: {}",
        s["readyReplicas"],
        s["replicas"],
        s["container"].as_str().unwrap_or("-"),
        if s["containerFound"] == true {
            resources_text(&s["resources"])
        } else {
            "not found".into()
        },
        s["maxConnections"]
            .as_i64()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "not readable from the args".into()),
    )
}

/// `database.max_connections` from the orchestrator's config.yaml.
pub fn pool_size(yaml: &str) -> Option<i64> {
    let value: Value = serde_saphyr::from_str(yaml).ok()?;
    value.get("database")?.get("max_connections")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_from_postgres_args() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            postgres_max_connections(&args(&["-c", "max_connections=200"])),
            Some(200)
        );
        assert_eq!(
            postgres_max_connections(&args(&["postgres", "-cmax_connections=50"])),
            Some(50)
        );
        assert_eq!(
            postgres_max_connections(&args(&["-c", "shared_buffers=1GB"])),
            None
        );
        assert_eq!(postgres_max_connections(&args(&[])), None);
    }

    #[test]
    fn pool_size_from_config_yaml() {
        let yaml =
            "# comment\nserver:\n  port: 8080\ndatabase:\n  host: db\n  # per pod\n  max_connections: 20\n";
        assert_eq!(pool_size(yaml), Some(20));
        assert_eq!(pool_size("database: {}\n"), None);
        assert_eq!(pool_size(": not yaml ["), None);
    }

    #[test]
    fn hpa_summary_pairs_current_with_target() {
        let h: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"}, "minReplicas": 3,
                     "maxReplicas": 10, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 60}}}]}
        }))
        .unwrap();
        let j = crate::plan::hpa::hpa_summary(&h);
        assert_eq!(j["min"], 3);
        assert_eq!(j["metrics"][0]["currentUtilizationPercent"], 60);
        assert_eq!(j["metrics"][1]["currentUtilizationPercent"], Value::Null);
        let text = hpa_text("orchestrator", Some(&j));
        assert!(text.contains("cpu 60% / target 70%"), "{text}");
        assert!(text.contains("memory ? / target 80%"), "{text}");
    }
}
