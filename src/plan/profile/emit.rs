//! GitOps output of a profile (`diff --emit`): the changes as strategic merge patch files, one
//! per object, built from the same planners' patches as `apply` sends (without the
//! resourceVersion precondition), for a kustomize overlay or `kubectl patch --patch-file`.
//!
//! `apply` restarts the deployment after a pool change; a GitOps tool applies files, so the
//! deployment's patch carries the pool as a pod template annotation
//! ([`POOL_ANNOTATION`]): the pods roll exactly when the pool changes, as a config checksum
//! annotation makes them roll in Helm charts.

use serde_json::{Value, json};

use super::ProfileSpec;
use super::steps::{Names, World, hpa_request, plan_database, plan_deployment_resources};
use crate::plan::PlanError;
use crate::plan::connections::plan_connections;
use crate::plan::hpa::{plan_hpa_create, plan_hpa_update};

/// The pod template annotation that rolls the deployment when the pool changes.
pub const POOL_ANNOTATION: &str = "orchscale.io/pool-connections";

/// One emitted file.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    /// `deployment-orchestrator.yaml`.
    pub file: String,
    /// `deployment`, as `kubectl patch` names the resource.
    pub resource: &'static str,
    pub name: String,
    /// A patch of an existing object, or (`false`) a whole new object (an HPA to create).
    pub patch: bool,
    /// The patch (or object) with apiVersion, kind and metadata.name/namespace.
    pub body: Value,
}

fn emitted(
    resource: &'static str,
    api_version: &str,
    kind: &str,
    name: &str,
    names: &Names,
    mut body: Value,
) -> Emitted {
    if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
    }
    let object = body.as_object_mut();
    if let Some(object) = object {
        object.insert("apiVersion".into(), json!(api_version));
        object.insert("kind".into(), json!(kind));
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        metadata["name"] = json!(name);
        metadata["namespace"] = json!(names.namespace);
        if metadata.as_object().is_some_and(|m| m.is_empty()) {
            object.remove("metadata");
        }
    }
    Emitted {
        file: format!("{resource}-{name}.yaml"),
        resource,
        name: name.to_string(),
        patch: true,
        body,
    }
}

/// The files that bring the objects of `world` to `spec`; an object already in place has none.
///
/// # Errors
/// The planners' [`PlanError`]s, or an object the profile needs that is missing.
pub fn emit(world: &World, names: &Names, spec: &ProfileSpec) -> Result<Vec<Emitted>, PlanError> {
    let missing = |kind: &str, name: &str| {
        PlanError::new(
            format!(
                "the profile sets {kind}/{name}, which is not found in namespace {}",
                names.namespace
            ),
            "check the namespace (-n) and the target names",
        )
    };
    let mut out = Vec::new();
    if let Some(resources) = spec.database.as_ref().and_then(|d| d.resources.as_ref()) {
        let sts = world
            .statefulset
            .as_ref()
            .ok_or_else(|| missing("statefulset", &names.statefulset))?;
        let plan = plan_database(sts, names, resources)?;
        if !plan.changes.is_empty() {
            out.push(emitted(
                "statefulset",
                "apps/v1",
                "StatefulSet",
                &names.statefulset,
                names,
                plan.patch,
            ));
        }
    }
    let mut pool_changed = None;
    if let Some(pool) = &spec.pool {
        let cm = world
            .configmap
            .as_ref()
            .ok_or_else(|| missing("configmap", &names.configmap))?;
        let n = u32::try_from(pool.connections.0).unwrap_or(0);
        let plan = plan_connections(cm, &names.config_key, n)?;
        if !plan.changes.is_empty() {
            pool_changed = Some(n);
            out.push(emitted(
                "configmap",
                "v1",
                "ConfigMap",
                &names.configmap,
                names,
                plan.patch,
            ));
        }
    }
    if !spec.resources.is_empty() || pool_changed.is_some() {
        let d = world
            .deployment
            .as_ref()
            .ok_or_else(|| missing("deployment", &names.deployment))?;
        let mut body = if spec.resources.is_empty() {
            json!({})
        } else {
            plan_deployment_resources(d, names, &spec.resources)?.patch
        };
        if let Some(n) = pool_changed {
            body["spec"]["template"]["metadata"]["annotations"][POOL_ANNOTATION] = json!(n.to_string());
        }
        if body.as_object().is_some_and(|b| !b.is_empty()) {
            out.push(emitted(
                "deployment",
                "apps/v1",
                "Deployment",
                &names.deployment,
                names,
                body,
            ));
        }
    }
    if let Some(hpa) = &spec.hpa {
        let request = hpa_request(hpa);
        match &world.hpa {
            Some(current) => {
                let plan = plan_hpa_update(current, &request, None)?;
                let name = current.metadata.name.clone().unwrap_or_else(|| names.hpa.clone());
                if !plan.changes.is_empty() {
                    out.push(emitted(
                        "horizontalpodautoscaler",
                        "autoscaling/v2",
                        "HorizontalPodAutoscaler",
                        &name,
                        names,
                        plan.patch,
                    ));
                }
            }
            None => {
                let plan = plan_hpa_create(&names.namespace, &names.hpa, &names.deployment, &request)?;
                let body = serde_json::to_value(&plan.hpa).unwrap_or(Value::Null);
                out.push(Emitted {
                    patch: false,
                    ..emitted(
                        "horizontalpodautoscaler",
                        "autoscaling/v2",
                        "HorizontalPodAutoscaler",
                        &names.hpa,
                        names,
                        body,
                    )
                });
            }
        }
    }
    if let Some(replicas) = spec.replicas {
        let d = world
            .deployment
            .as_ref()
            .ok_or_else(|| missing("deployment", &names.deployment))?;
        if d.spec.as_ref().and_then(|s| s.replicas) != Some(replicas.0) {
            let body = json!({"spec": {"replicas": replicas.0}});
            match out.iter_mut().find(|e| e.resource == "deployment") {
                Some(existing) => existing.body["spec"]["replicas"] = json!(replicas.0),
                None => out.push(emitted(
                    "deployment",
                    "apps/v1",
                    "Deployment",
                    &names.deployment,
                    names,
                    body,
                )),
            }
        }
    }
    Ok(out)
}

/// The `kustomization.yaml` of an overlay: `base` (when given) and any new object as
/// resources, every patch file as a patch.
pub fn kustomization(files: &[Emitted], base: Option<&str>) -> String {
    let mut out = String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
    let new: Vec<&Emitted> = files.iter().filter(|f| !f.patch).collect();
    if base.is_some() || !new.is_empty() {
        out.push_str("resources:\n");
        if let Some(base) = base {
            out.push_str(&format!("- {base}\n"));
        }
        for f in new {
            out.push_str(&format!("- {}\n", f.file));
        }
    } else {
        out.push_str("# resources: the base these patches apply to, e.g. `- ../base` (--kustomize-base)\n");
    }
    let patches: Vec<&Emitted> = files.iter().filter(|f| f.patch).collect();
    if !patches.is_empty() {
        out.push_str("patches:\n");
        for f in patches {
            out.push_str(&format!("- path: {}\n", f.file));
        }
    }
    out
}

/// A `--values-map`: profile field (`hpa.maxReplicas`, `resources.orchestrator`,
/// `database.resources`, `pool.connections`, `replicas`, ...) → dotted path in the chart's
/// values (`autoscaling.maxReplicas`).
pub type ValuesMap = std::collections::BTreeMap<String, String>;

/// The profile's values as a Helm values fragment, placed by `map`; the fields the profile
/// sets that the map does not place are returned apart (said as a warning).
///
/// # Errors
/// A map key that is not a profile field, or an empty path (exit 2).
pub fn helm_values(spec: &ProfileSpec, map: &ValuesMap) -> Result<(Value, Vec<String>), PlanError> {
    let mut fields: Vec<(String, Option<Value>)> = vec![
        ("replicas".into(), spec.replicas.map(|c| json!(c.0))),
        (
            "pool.connections".into(),
            spec.pool.as_ref().map(|p| json!(p.connections.0)),
        ),
    ];
    let hpa = spec.hpa.clone().unwrap_or_default();
    for (name, value) in [
        ("minReplicas", hpa.min_replicas),
        ("maxReplicas", hpa.max_replicas),
        ("cpuUtilization", hpa.cpu_utilization),
        ("memoryUtilization", hpa.memory_utilization),
    ] {
        fields.push((format!("hpa.{name}"), value.map(|c| json!(c.0))));
    }
    let resources = |r: &super::Resources| serde_json::to_value(r).unwrap_or(Value::Null);
    for (container, r) in &spec.resources {
        fields.push((format!("resources.{container}"), Some(resources(r))));
    }
    fields.push((
        "database.resources".into(),
        spec.database
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .map(resources),
    ));
    for key in map.keys() {
        let known = fields.iter().any(|(f, _)| f == key) || key.starts_with("resources.");
        if !known {
            return Err(PlanError::new(
                format!("--values-map: {key:?} is not a profile field"),
                "map replicas, hpa.minReplicas, hpa.maxReplicas, hpa.cpuUtilization, hpa.memoryUtilization, \
                 resources.<container>, database.resources or pool.connections to a values path",
            ));
        }
    }
    let mut values = json!({});
    let mut unmapped = Vec::new();
    for (field, value) in fields {
        let Some(value) = value else { continue };
        let Some(path) = map.get(&field) else {
            unmapped.push(format!("spec.{field}"));
            continue;
        };
        let keys: Vec<&str> = path.split('.').collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(PlanError::new(
                format!("--values-map: the path {path:?} of {field} has an empty key"),
                "write the values path with dots, e.g. autoscaling.maxReplicas",
            ));
        }
        place(&mut values, &keys, value);
    }
    Ok((values, unmapped))
}

/// Sets `value` at the path `keys` in `values`, making maps on the way (a value in the way of
/// a deeper path is replaced by a map).
fn place(values: &mut Value, keys: &[&str], value: Value) {
    let Some((key, rest)) = keys.split_first() else {
        *values = value;
        return;
    };
    if !values.is_object() {
        *values = json!({});
    }
    if let Some(map) = values.as_object_mut() {
        place(map.entry(key.to_string()).or_insert(Value::Null), rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::parse;

    fn names() -> Names {
        Names::for_tests()
    }

    fn world() -> World {
        World {
            deployment: Some(
                serde_json::from_value(
                    json!({"metadata": {"name": "orchestrator", "resourceVersion": "7"},
                    "spec": {"replicas": 3, "selector": {}, "template": {"spec": {"containers": [
                        {"name": "orchestrator", "resources": {"requests": {"cpu": "500m"}}}]}}}}),
                )
                .unwrap(),
            ),
            configmap: Some(
                serde_json::from_value(
                    json!({"metadata": {"name": "orchestrator-config", "resourceVersion": "2"},
                    "data": {"config.yaml": "database:\n  max_connections: 20\n"}}),
                )
                .unwrap(),
            ),
            ..World::default()
        }
    }

    #[test]
    fn patches_carry_the_changes_without_preconditions_and_roll_the_pool() {
        let profile = parse(
            "p.yaml",
            "apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata: {name: p}\nspec:\n  \
             resources: {orchestrator: {requests: {cpu: 750m}}}\n  pool: {connections: 30}\n  hpa: {minReplicas: 2, maxReplicas: 6}\n",
        )
        .unwrap();
        let files = emit(&world(), &names(), &profile.spec).unwrap();
        let kinds: Vec<&str> = files.iter().map(|f| f.resource).collect();
        assert_eq!(kinds, ["configmap", "deployment", "horizontalpodautoscaler"]);
        let deployment = &files[1].body;
        assert_eq!(deployment["kind"], "Deployment");
        assert_eq!(
            deployment["metadata"],
            json!({"name": "orchestrator", "namespace": "ns"})
        );
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["annotations"][POOL_ANNOTATION],
            "30"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "750m"
        );
        assert!(
            files[0].body["data"]["config.yaml"]
                .as_str()
                .unwrap()
                .contains("max_connections: 30")
        );
        assert!(!files[2].patch, "no HPA yet: a new object");
        let k = kustomization(&files, Some("../base"));
        assert!(
            k.contains("resources:\n- ../base\n- horizontalpodautoscaler-orchestrator.yaml\n"),
            "{k}"
        );
        assert!(
            k.contains(
                "patches:\n- path: configmap-orchestrator-config.yaml\n- path: deployment-orchestrator.yaml\n"
            ),
            "{k}"
        );
    }

    #[test]
    fn helm_values_are_placed_by_the_map() {
        let profile = parse(
            "p.yaml",
            "apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata: {name: p}\nspec:\n  \
             resources: {orchestrator: {requests: {cpu: 750m}}}\n  pool: {connections: 30}\n  hpa: {minReplicas: 2, maxReplicas: 6}\n",
        )
        .unwrap();
        let map: ValuesMap = [
            ("hpa.maxReplicas", "autoscaling.maxReplicas"),
            ("hpa.minReplicas", "autoscaling.minReplicas"),
            ("resources.orchestrator", "resources"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (values, unmapped) = helm_values(&profile.spec, &map).unwrap();
        assert_eq!(
            values,
            json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 6}, "resources": {"requests": {"cpu": "750m"}}})
        );
        assert_eq!(unmapped, ["spec.pool.connections"]);
        let bad: ValuesMap = [("hpa.max".to_string(), "x".to_string())].into_iter().collect();
        assert!(
            helm_values(&profile.spec, &bad)
                .unwrap_err()
                .message
                .contains("not a profile field")
        );
        let empty: ValuesMap = [("hpa.maxReplicas".to_string(), "a..b".to_string())]
            .into_iter()
            .collect();
        assert!(
            helm_values(&profile.spec, &empty)
                .unwrap_err()
                .message
                .contains("empty key")
        );
    }
}
