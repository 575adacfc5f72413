//! What a profile means against the objects read: the current state as a profile (`export`),
//! and the steps that bring the cluster to the profile, in the safe order (database resources,
//! then the pool and its restart, then the deployment's resources, then the HPA or replicas),
//! each planned by the single command's own planner.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::{Count, DatabaseSpec, HpaSpec, PoolSpec, ProfileSpec, Resources, ScalingProfile};
use crate::plan::connections::{
    db_max_connections_from, plan_connections, pool_warning, read_max_connections,
};
use crate::plan::hpa::{HpaRequest, plan_hpa_create, plan_hpa_update};
use crate::plan::resources::{ResourcesPlan, container_resources, plan_container_resources};
use crate::plan::scale::{HpaRange, plan as plan_scale};
use crate::plan::{Change, PlanError};

/// The objects a profile is about, as read (`None`: not found).
#[derive(Debug, Clone, Default)]
pub struct World {
    pub deployment: Option<Deployment>,
    /// The HPA that targets the deployment.
    pub hpa: Option<HorizontalPodAutoscaler>,
    pub statefulset: Option<StatefulSet>,
    pub configmap: Option<ConfigMap>,
}

/// The names the target flags give.
#[derive(Debug, Clone)]
pub struct Names {
    pub namespace: String,
    pub deployment: String,
    pub hpa: String,
    pub statefulset: String,
    pub db_container: String,
    pub configmap: String,
    pub config_key: String,
}

#[cfg(test)]
impl Names {
    /// The default targets in namespace `ns`, for the planners' unit tests.
    pub(crate) fn for_tests() -> Self {
        Names {
            namespace: "ns".into(),
            deployment: "orchestrator".into(),
            hpa: "orchestrator".into(),
            statefulset: "postgres".into(),
            db_container: "postgres".into(),
            configmap: "orchestrator-config".into(),
            config_key: "config.yaml".into(),
        }
    }
}

/// The steps of an application, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    DatabaseResources,
    Pool,
    DeploymentResources,
    Hpa,
    Replicas,
}

impl StepKind {
    /// The step as the report names it.
    pub fn title(self) -> &'static str {
        match self {
            StepKind::DatabaseResources => "database resources",
            StepKind::Pool => "connection pool and restart",
            StepKind::DeploymentResources => "deployment resources",
            StepKind::Hpa => "HPA",
            StepKind::Replicas => "replicas",
        }
    }
}

/// One step's plan against the objects read.
#[derive(Debug, Clone)]
pub struct StepPlan {
    pub kind: StepKind,
    /// `statefulset/postgres`.
    pub object: String,
    /// Empty: the step is in place.
    pub changes: Vec<Change>,
    /// Said in the preview (e.g. the HPA's expected effect, a scale's HPA note).
    pub notes: Vec<String>,
    /// Warnings of the planner itself (e.g. the HPA's room, targets).
    pub warnings: Vec<String>,
}

/// The current state as a profile: replicas or the HPA (when one targets the deployment),
/// every container's requests/limits, the database container's, the database's
/// max_connections and the pool. Applying it to the same cluster changes nothing.
///
/// # Errors
/// A current value that is not a valid quantity (named), or none of the objects found.
pub fn export(name: &str, world: &World, names: &Names) -> Result<ScalingProfile, PlanError> {
    let mut spec = ProfileSpec::default();
    if let Some(hpa) = &world.hpa {
        spec.hpa = Some(hpa_spec_of(hpa));
    } else if let Some(d) = &world.deployment {
        spec.replicas = Some(Count(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
    }
    if let Some(d) = &world.deployment {
        for c in d
            .spec
            .iter()
            .flat_map(|s| s.template.spec.iter())
            .flat_map(|s| &s.containers)
        {
            let resources = Resources::of(&container_resources(c)?);
            if !resources.is_empty() {
                spec.resources.insert(c.name.clone(), resources);
            }
        }
    }
    if let Some(sts) = &world.statefulset {
        let found = sts
            .spec
            .iter()
            .flat_map(|s| s.template.spec.iter())
            .flat_map(|s| &s.containers)
            .find(|c| c.name == names.db_container);
        let resources = found
            .map(container_resources)
            .transpose()?
            .map(|r| Resources::of(&r));
        let database = DatabaseSpec {
            resources: resources.filter(|r| !r.is_empty()),
            max_connections: db_max_connections_from(sts)
                .and_then(|n| i32::try_from(n).ok())
                .map(Count),
        };
        if database != DatabaseSpec::default() {
            spec.database = Some(database);
        }
    }
    spec.pool = world
        .configmap
        .as_ref()
        .and_then(|cm| cm.data.as_ref()?.get(&names.config_key).cloned())
        .and_then(|text| read_max_connections(&text))
        .and_then(|n| i32::try_from(n).ok())
        .map(|n| PoolSpec {
            connections: Count(n),
        });
    if spec == ProfileSpec::default() {
        return Err(PlanError::new(
            format!(
                "nothing to export: none of deployment/{}, statefulset/{}, configmap/{} was found in namespace {}",
                names.deployment, names.statefulset, names.configmap, names.namespace
            ),
            "check the namespace (-n) and the target names (--deployment, --statefulset, --configmap)",
        ));
    }
    Ok(ScalingProfile::new(name, spec))
}

/// The HPA's range and utilization targets as a profile's `hpa`.
fn hpa_spec_of(hpa: &HorizontalPodAutoscaler) -> HpaSpec {
    let spec = hpa.spec.as_ref();
    let utilization = |resource: &str| {
        spec.and_then(|s| s.metrics.as_ref())?
            .iter()
            .filter_map(|m| m.resource.as_ref())
            .find(|r| r.name == resource && r.target.type_ == "Utilization")
            .and_then(|r| r.target.average_utilization)
            .map(Count)
    };
    HpaSpec {
        min_replicas: Some(Count(spec.and_then(|s| s.min_replicas).unwrap_or(1))),
        max_replicas: spec.map(|s| Count(s.max_replicas)),
        cpu_utilization: utilization("cpu"),
        memory_utilization: utilization("memory"),
    }
}

/// The HPA request a profile's `hpa` makes.
pub fn hpa_request(hpa: &HpaSpec) -> HpaRequest {
    HpaRequest {
        min: hpa.min_replicas.map(|c| c.0),
        max: hpa.max_replicas.map(|c| c.0),
        cpu: hpa.cpu_utilization.map(|c| c.0),
        memory: hpa.memory_utilization.map(|c| c.0),
    }
}

/// The database step's plan on the statefulset as read.
///
/// # Errors
/// The resources planner's (missing container, requests above limits).
pub fn plan_database(
    sts: &StatefulSet,
    names: &Names,
    resources: &Resources,
) -> Result<ResourcesPlan, PlanError> {
    let (requests, limits) = resources.lists();
    let template = sts.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    plan_container_resources(
        &template,
        &format!("statefulset/{}", names.statefulset),
        &names.db_container,
        &requests,
        &limits,
        sts.metadata.resource_version.as_deref().unwrap_or_default(),
    )
}

/// The deployment step's plan: every container the profile names, in one strategic merge
/// patch (one rollout), each container planned by the resources planner.
#[derive(Debug, Clone)]
pub struct DeploymentResourcesPlan {
    pub changes: Vec<Change>,
    /// `{}` when nothing changes.
    pub patch: Value,
    /// Per container, its plan (for the capacity, quota and HPA checks).
    pub containers: Vec<(String, ResourcesPlan)>,
}

/// [`DeploymentResourcesPlan`] on the deployment as read.
///
/// # Errors
/// The resources planner's, for any container.
pub fn plan_deployment_resources(
    deployment: &Deployment,
    names: &Names,
    resources: &BTreeMap<String, Resources>,
) -> Result<DeploymentResourcesPlan, PlanError> {
    let template = deployment
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let object = format!("deployment/{}", names.deployment);
    let rv = deployment.metadata.resource_version.clone().unwrap_or_default();
    let mut changes = Vec::new();
    let mut containers = Vec::new();
    let mut patched = Vec::new();
    for (container, wanted) in resources {
        let (requests, limits) = wanted.lists();
        let plan = plan_container_resources(&template, &object, container, &requests, &limits, &rv)?;
        if plan.changes.is_empty() {
            continue;
        }
        changes.extend(plan.changes.clone());
        let entry = &plan.patch["spec"]["template"]["spec"]["containers"];
        patched.extend(entry.as_array().into_iter().flatten().cloned());
        containers.push((container.clone(), plan));
    }
    let patch = if changes.is_empty() {
        json!({})
    } else {
        json!({"metadata": {"resourceVersion": rv},
               "spec": {"template": {"spec": {"containers": patched}}}})
    };
    Ok(DeploymentResourcesPlan {
        changes,
        patch,
        containers,
    })
}

/// The most pods the deployment can run while and after the profile is applied (the larger
/// of the HPA's maxReplicas now and in the profile), and the database's max_connections: what
/// the pool guard multiplies and compares. When the pool fits the profile's maxReplicas and
/// only the current, larger one is over, the warning says it holds until the HPA step.
pub fn pool_guard(world: &World, profile: &ProfileSpec, pool: u32) -> Option<String> {
    let current_max = world
        .hpa
        .as_ref()
        .and_then(|h| h.spec.as_ref())
        .map(|s| s.max_replicas);
    let profile_max = profile.hpa.as_ref().and_then(|h| h.max_replicas).map(|c| c.0);
    let hpa_max = match (current_max, profile_max) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let replicas = world
        .deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref()?.replicas)
        .unwrap_or(0)
        .max(profile.replicas.map_or(0, |c| c.0));
    let db_max = world.statefulset.as_ref().and_then(db_max_connections_from);
    let warning = pool_warning(pool, hpa_max, replicas, db_max)?;
    match (current_max, profile_max) {
        (Some(now), Some(new)) if now > new && pool_warning(pool, Some(new), replicas, db_max).is_none() => {
            Some(format!(
                "between the pool step and the HPA step (until maxReplicas {now} becomes {new}): {warning}"
            ))
        }
        _ => Some(warning),
    }
}

/// Every step's plan against `world`, in order; steps already in place have no changes.
/// `force`: a replica count outside the HPA's range (as `scale --force`).
///
/// # Errors
/// A [`PlanError`] of any step's planner, an object the profile needs that is missing, or a
/// database `maxConnections` other than the database's (this tool does not change it).
pub fn plan_all(
    world: &World,
    names: &Names,
    spec: &ProfileSpec,
    force: bool,
) -> Result<Vec<StepPlan>, PlanError> {
    let mut steps = Vec::new();
    let missing = |kind: &str, name: &str, flag: &str| {
        PlanError::new(
            format!(
                "the profile sets {kind}/{name}, which is not found in namespace {}",
                names.namespace
            ),
            format!("check the namespace (-n) and the name ({flag})"),
        )
    };
    if let Some(db) = &spec.database {
        let sts = world
            .statefulset
            .as_ref()
            .ok_or_else(|| missing("statefulset", &names.statefulset, "--statefulset"))?;
        if let Some(wanted) = db.max_connections {
            let current = db_max_connections_from(sts);
            if current.is_some_and(|c| i64::from(c) != i64::from(wanted.0)) {
                return Err(PlanError::new(
                    format!(
                        "spec.database.maxConnections is {} but statefulset/{} runs with max_connections={}: \
                         this tool does not change postgres's max_connections",
                        wanted.0,
                        names.statefulset,
                        current.unwrap_or_default()
                    ),
                    "change it in the statefulset (-c max_connections=N, a database restart), or drop the field",
                ));
            }
        }
        if let Some(resources) = &db.resources {
            let plan = plan_database(sts, names, resources)?;
            steps.push(StepPlan {
                kind: StepKind::DatabaseResources,
                object: format!("statefulset/{}", names.statefulset),
                changes: plan.changes,
                notes: Vec::new(),
                warnings: Vec::new(),
            });
        }
    }
    if let Some(pool) = &spec.pool {
        let cm = world
            .configmap
            .as_ref()
            .ok_or_else(|| missing("configmap", &names.configmap, "--configmap"))?;
        let n = u32::try_from(pool.connections.0).unwrap_or(0);
        let plan = plan_connections(cm, &names.config_key, n)?;
        steps.push(StepPlan {
            kind: StepKind::Pool,
            object: format!("configmap/{}", names.configmap),
            changes: plan.changes,
            notes: Vec::new(),
            warnings: Vec::new(),
        });
    }
    if !spec.resources.is_empty() {
        let d = world
            .deployment
            .as_ref()
            .ok_or_else(|| missing("deployment", &names.deployment, "--deployment"))?;
        let plan = plan_deployment_resources(d, names, &spec.resources)?;
        steps.push(StepPlan {
            kind: StepKind::DeploymentResources,
            object: format!("deployment/{}", names.deployment),
            changes: plan.changes,
            notes: Vec::new(),
            warnings: Vec::new(),
        });
    }
    if let Some(hpa) = &spec.hpa {
        let request = hpa_request(hpa);
        let plan = match &world.hpa {
            Some(current) => {
                let plan = plan_hpa_update(current, &request, None)?;
                StepPlan {
                    kind: StepKind::Hpa,
                    object: format!(
                        "horizontalpodautoscaler/{}",
                        current.metadata.name.as_deref().unwrap_or(&names.hpa)
                    ),
                    notes: if plan.changes.is_empty() {
                        Vec::new()
                    } else {
                        vec![plan.effect.text]
                    },
                    changes: plan.changes,
                    warnings: plan.warnings,
                }
            }
            None => {
                let plan = plan_hpa_create(&names.namespace, &names.hpa, &names.deployment, &request)
                    .map_err(|e| {
                        PlanError::new(
                            format!(
                                "no HPA targets deployment/{} and the profile's spec.hpa cannot create one: {}",
                                names.deployment, e.message
                            ),
                            "give spec.hpa.minReplicas and maxReplicas to create it",
                        )
                    })?;
                StepPlan {
                    kind: StepKind::Hpa,
                    object: format!("horizontalpodautoscaler/{}", names.hpa),
                    changes: plan.changes,
                    notes: vec!["the HPA is created (autoscaling/v2)".into()],
                    warnings: plan.warnings,
                }
            }
        };
        steps.push(plan);
    }
    if let Some(replicas) = spec.replicas {
        let d = world
            .deployment
            .as_ref()
            .ok_or_else(|| missing("deployment", &names.deployment, "--deployment"))?;
        let range = world
            .hpa
            .as_ref()
            .and_then(|h| HpaRange::of(h, &names.deployment));
        let current = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let plan = plan_scale(
            &names.deployment,
            current,
            i64::from(replicas.0),
            range.as_ref(),
            force,
        )?;
        let note = plan.hpa_note.clone();
        steps.push(StepPlan {
            kind: StepKind::Replicas,
            object: plan.object.clone(),
            changes: plan.changes,
            notes: note.iter().filter(|_| !plan.hpa_warning).cloned().collect(),
            warnings: note.into_iter().filter(|_| plan.hpa_warning).collect(),
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::parse;

    fn names() -> Names {
        Names::for_tests()
    }

    fn world() -> World {
        let container = |name: &str, cpu: &str| {
            json!({"name": name, "image": "x",
                   "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}})
        };
        World {
            deployment: Some(
                serde_json::from_value(json!({
                    "metadata": {"name": "orchestrator", "resourceVersion": "7"},
                    "spec": {"replicas": 3, "selector": {}, "template": {"spec": {"containers": [
                        container("orchestrator", "500m"), container("log-shipper", "50m")]}}}
                }))
                .unwrap(),
            ),
            hpa: Some(
                serde_json::from_value(json!({
                    "metadata": {"name": "orchestrator", "resourceVersion": "3"},
                    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"},
                             "minReplicas": 3, "maxReplicas": 10,
                             "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                 "target": {"type": "Utilization", "averageUtilization": 70}}}]}
                }))
                .unwrap(),
            ),
            statefulset: Some(
                serde_json::from_value(json!({
                    "metadata": {"name": "postgres", "resourceVersion": "5"},
                    "spec": {"serviceName": "postgres", "selector": {}, "template": {"spec": {"containers": [{
                        "name": "postgres", "args": ["-c", "max_connections=1000"],
                        "resources": {"requests": {"cpu": "500m"}}}]}}}
                }))
                .unwrap(),
            ),
            configmap: Some(
                serde_json::from_value(json!({
                    "metadata": {"name": "orchestrator-config", "resourceVersion": "2"},
                    "data": {"config.yaml": "database:\n  max_connections: 20\n"}
                }))
                .unwrap(),
            ),
        }
    }

    #[test]
    fn an_export_is_in_place() {
        let profile = export("normal", &world(), &names()).unwrap();
        let spec = &profile.spec;
        assert_eq!(spec.hpa.as_ref().unwrap().max_replicas, Some(Count(10)));
        assert_eq!(spec.hpa.as_ref().unwrap().memory_utilization, None);
        assert!(spec.replicas.is_none(), "the HPA owns the count");
        assert_eq!(spec.resources.len(), 2);
        assert_eq!(spec.pool.as_ref().unwrap().connections, Count(20));
        assert_eq!(spec.database.as_ref().unwrap().max_connections, Some(Count(1000)));
        let steps = plan_all(&world(), &names(), spec, false).unwrap();
        assert_eq!(steps.len(), 4);
        assert!(steps.iter().all(|s| s.changes.is_empty()), "{steps:?}");
        // And through YAML too.
        let again = parse("normal.yaml", &profile.to_yaml().unwrap()).unwrap();
        assert!(
            plan_all(&world(), &names(), &again.spec, false)
                .unwrap()
                .iter()
                .all(|s| s.changes.is_empty())
        );
    }

    #[test]
    fn steps_come_in_the_safe_order_with_their_changes() {
        let profile = parse(
            "peak.yaml",
            "apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata: {name: peak}\nspec:\n  \
             hpa: {minReplicas: 5, maxReplicas: 20}\n  resources:\n    orchestrator: {requests: {cpu: 750m}}\n    \
             log-shipper: {limits: {memory: 4Gi}}\n  pool: {connections: 40}\n  \
             database: {resources: {requests: {cpu: '1'}}}\n",
        )
        .unwrap();
        let steps = plan_all(&world(), &names(), &profile.spec, false).unwrap();
        let kinds: Vec<StepKind> = steps.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                StepKind::DatabaseResources,
                StepKind::Pool,
                StepKind::DeploymentResources,
                StepKind::Hpa
            ]
        );
        assert_eq!(steps[2].changes.len(), 2, "both containers, one step");
        let d = plan_deployment_resources(
            world().deployment.as_ref().unwrap(),
            &names(),
            &profile.spec.resources,
        )
        .unwrap();
        let containers = d.patch["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(d.patch["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn the_pool_guard_counts_the_larger_hpa_max() {
        let profile = ProfileSpec {
            hpa: Some(HpaSpec {
                max_replicas: Some(Count(40)),
                ..HpaSpec::default()
            }),
            ..ProfileSpec::default()
        };
        // 30 × 40 = 1200 > 997; 30 × 10 would fit.
        assert!(pool_guard(&world(), &profile, 30).is_some());
        assert!(pool_guard(&world(), &ProfileSpec::default(), 30).is_none());
        // 110 × 10 (now) = 1100 > 997; 110 × 9 (the profile's) = 990 fits: over only until
        // the HPA step lowers the maximum, and said so.
        let lower = ProfileSpec {
            hpa: Some(HpaSpec {
                max_replicas: Some(Count(9)),
                ..HpaSpec::default()
            }),
            ..ProfileSpec::default()
        };
        let guard = pool_guard(&world(), &lower, 110).unwrap();
        assert!(
            guard.starts_with("between the pool step and the HPA step (until maxReplicas 10 becomes 9): 110 connections per pod × 10 pods"),
            "{guard}"
        );
        let over = pool_guard(&world(), &lower, 120).unwrap();
        assert!(over.starts_with("120 connections per pod × 10 pods"), "{over}");
    }

    #[test]
    fn a_different_database_max_connections_is_refused() {
        let spec = ProfileSpec {
            database: Some(DatabaseSpec {
                resources: None,
                max_connections: Some(Count(500)),
            }),
            ..ProfileSpec::default()
        };
        let err = plan_all(&world(), &names(), &spec, false).unwrap_err();
        assert!(
            err.message.contains("does not change postgres's max_connections"),
            "{err}"
        );
    }

    #[test]
    fn replicas_outside_the_hpa_range_need_force() {
        let spec = ProfileSpec {
            replicas: Some(Count(12)),
            ..ProfileSpec::default()
        };
        assert!(plan_all(&world(), &names(), &spec, false).is_err());
        let steps = plan_all(&world(), &names(), &spec, true).unwrap();
        assert_eq!(steps[0].kind, StepKind::Replicas);
        assert_eq!(steps[0].warnings.len(), 1);
    }
}
