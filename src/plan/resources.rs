//! The `resources` and `db resources` plans: parse `--requests`/`--limits`, merge them into one
//! container's current resources, validate after merging, and build a strategic merge patch
//! that touches only the changed keys.
//!
//! Capacity and quota checks, the HPA utilization shift and the rollout disruption summary are
//! in the submodules and re-exported here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use serde_json::{Map, Value, json};

use super::field::ResourceKind;
use super::{Change, FieldPath, PlanError};
use crate::quantity::Quantity;

pub mod capacity;
pub mod disruption;
pub mod hpa_shift;

pub use capacity::{FitReport, NodeUsage, ScheduledPod, fit_check, quota_check, rollout_quota_delta};
pub use disruption::{Disruption, max_surge_pods, rollout_disruption, statefulset_disruption};
pub use hpa_shift::utilization_shift;

/// Resource name → quantity, e.g. `cpu → 500m`.
pub type ResourceList = BTreeMap<String, Quantity>;

/// A container's requests and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

/// What `resources` / `db resources` will change. Empty `changes` means nothing to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcesPlan {
    pub changes: Vec<Change>,
    /// Strategic merge patch: `metadata.resourceVersion` (precondition) and the container,
    /// merged by name, carrying only the changed keys. `{}` when there is nothing to change.
    pub patch: Value,
    pub before: ContainerResources,
    pub after: ContainerResources,
}

impl ResourcesPlan {
    /// The container's CPU and memory requests after the change (zero when unset), for
    /// [`fit_check`].
    pub fn new_cpu_memory_requests(&self) -> (Quantity, Quantity) {
        let get = |name: &str| {
            self.after
                .requests
                .get(name)
                .cloned()
                .unwrap_or_else(Quantity::zero)
        };
        (get("cpu"), get("memory"))
    }

    /// The pod template with this plan's values in `container` (for the new pod size).
    pub fn applied_to(&self, template: &PodTemplateSpec, container: &str) -> PodTemplateSpec {
        let mut template = template.clone();
        let to_k8s = |list: &ResourceList| -> BTreeMap<String, K8sQuantity> {
            list.iter().map(|(k, q)| (k.clone(), q.to_k8s())).collect()
        };
        let found = template
            .spec
            .as_mut()
            .and_then(|s| s.containers.iter_mut().find(|c| c.name == container));
        if let Some(found) = found {
            let resources = found.resources.get_or_insert_with(Default::default);
            resources.requests = Some(to_k8s(&self.after.requests));
            resources.limits = Some(to_k8s(&self.after.limits));
        }
        template
    }

    /// A strategic merge patch that puts back the values this plan changed (`null` removes a
    /// key that was unset before), for `--rollback-on-failure`. No resourceVersion: it restores
    /// our own change, whatever the controllers wrote to the status since.
    pub fn restore_patch(&self, container: &str) -> Value {
        let mut resources = Map::new();
        for (kind, before, after) in [
            ("requests", &self.before.requests, &self.after.requests),
            ("limits", &self.before.limits, &self.after.limits),
        ] {
            let restored: Map<String, Value> = after
                .iter()
                .filter(|(name, q)| before.get(*name) != Some(*q))
                .map(|(name, _)| {
                    let value = before.get(name).map_or(Value::Null, |q| json!(q.text()));
                    (name.clone(), value)
                })
                .collect();
            if !restored.is_empty() {
                resources.insert(kind.into(), Value::Object(restored));
            }
        }
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": container, "resources": Value::Object(resources)}
        ]}}}})
    }

    /// [`utilization_shift`] warnings for every CPU/memory request this plan changes.
    pub fn hpa_shifts(
        &self,
        hpa: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
    ) -> Vec<String> {
        ["cpu", "memory"]
            .into_iter()
            .filter_map(|name| {
                let old = self.before.requests.get(name)?;
                let new = self.after.requests.get(name)?;
                (old != new)
                    .then(|| utilization_shift(hpa, old, new, name))
                    .flatten()
            })
            .collect()
    }
}

/// Parses `cpu=500m,memory=1Gi` (any resource name: `ephemeral-storage`, `nvidia.com/gpu`).
///
/// # Errors
/// An empty list or entry, a missing `=`, a bad name, a duplicate, a bad or negative quantity;
/// the message names `flag` and the bad piece.
pub fn parse_resource_list(flag: &str, text: &str) -> Result<ResourceList, PlanError> {
    let hint = format!("write {flag} cpu=500m,memory=1Gi");
    if text.trim().is_empty() {
        return Err(PlanError::new(format!("{flag} is empty"), hint));
    }
    let mut list = ResourceList::new();
    for piece in text.split(',').map(str::trim) {
        if piece.is_empty() {
            return Err(PlanError::new(
                format!("{flag} {text:?} has an empty entry"),
                hint,
            ));
        }
        let Some((name, value)) = piece.split_once('=').map(|(n, v)| (n.trim(), v.trim())) else {
            return Err(PlanError::new(
                format!("{flag} {piece:?} is not NAME=QUANTITY"),
                hint,
            ));
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_name {
            return Err(PlanError::new(
                format!("{flag} {piece:?}: {name:?} is not a resource name"),
                hint,
            ));
        }
        let quantity = Quantity::parse(value)
            .map_err(|e| PlanError::new(format!("{flag} {piece:?}: {e}"), hint.clone()))?;
        if quantity.is_negative() {
            return Err(PlanError::new(
                format!("{flag} {piece:?}: a resource amount cannot be negative"),
                hint,
            ));
        }
        if list.insert(name.to_string(), quantity).is_some() {
            return Err(PlanError::new(format!("{flag} names {name} twice"), hint));
        }
    }
    Ok(list)
}

/// Reads a container's current requests and limits.
///
/// # Errors
/// A current value that is not a valid quantity (named, with the container).
pub fn container_resources(container: &Container) -> Result<ContainerResources, PlanError> {
    let read = |kind: &str, map: Option<&BTreeMap<String, K8sQuantity>>| -> Result<ResourceList, PlanError> {
        map.into_iter()
            .flatten()
            .map(|(name, q)| {
                Quantity::try_from(q).map(|q| (name.clone(), q)).map_err(|e| {
                    PlanError::new(
                        format!("the current {kind}.{name} of container {}: {e}", container.name),
                        "fix the value in the cluster first (kubectl edit)",
                    )
                })
            })
            .collect()
    };
    let resources = container.resources.as_ref();
    Ok(ContainerResources {
        requests: read("requests", resources.and_then(|r| r.requests.as_ref()))?,
        limits: read("limits", resources.and_then(|r| r.limits.as_ref()))?,
    })
}

/// Plans new requests/limits for `container` in `pod_template` (of `object`, e.g.
/// `deployment/orchestrator`), merged with its current values.
///
/// # Errors
/// No field given, the container missing (the message lists those that exist), a request
/// above its limit after merging, extended resources whose request and limit differ.
pub fn plan_container_resources(
    pod_template: &PodTemplateSpec,
    object: &str,
    container: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    resource_version: &str,
) -> Result<ResourcesPlan, PlanError> {
    if requests.is_empty() && limits.is_empty() {
        return Err(PlanError::new(
            "nothing to change: give --requests and/or --limits",
            "e.g. --requests cpu=1,memory=2Gi --limits cpu=2,memory=4Gi",
        ));
    }
    let containers = pod_template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let Some(found) = containers.iter().find(|c| c.name == container) else {
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        return Err(PlanError::new(
            format!(
                "{object} has no container {container:?}; its containers: {}",
                names.join(", ")
            ),
            "name the container with --container (or --db-container)",
        ));
    };
    let before = container_resources(found)?;
    let mut after = before.clone();
    let mut changes = Vec::new();
    let mut patch_requests = Map::new();
    let mut patch_limits = Map::new();
    for (kind, given, merged, patch) in [
        (
            ResourceKind::Requests,
            requests,
            &mut after.requests,
            &mut patch_requests,
        ),
        (ResourceKind::Limits, limits, &mut after.limits, &mut patch_limits),
    ] {
        for (name, quantity) in given {
            let old = merged.get(name);
            if old == Some(quantity) {
                continue; // Same value, maybe spelled differently (1000m == 1): nothing to do.
            }
            changes.push(Change::new(
                object,
                FieldPath::ContainerResource {
                    container: container.to_string(),
                    kind,
                    name: name.clone(),
                },
                old.map(|q| q.text().to_string()),
                Some(quantity.text().to_string()),
            ));
            patch.insert(name.clone(), json!(quantity.text()));
            merged.insert(name.clone(), quantity.clone());
        }
    }
    validate_merged(&after, requests, limits)?;

    let patch = if changes.is_empty() {
        json!({})
    } else {
        let mut resources = Map::new();
        if !patch_requests.is_empty() {
            resources.insert("requests".into(), Value::Object(patch_requests));
        }
        if !patch_limits.is_empty() {
            resources.insert("limits".into(), Value::Object(patch_limits));
        }
        json!({
            "metadata": { "resourceVersion": resource_version },
            "spec": { "template": { "spec": { "containers": [
                { "name": container, "resources": Value::Object(resources) }
            ] } } }
        })
    };
    Ok(ResourcesPlan {
        changes,
        patch,
        before,
        after,
    })
}

/// Requests must not exceed limits, and extended resources (`vendor.com/x`) need request ==
/// limit; checked on the merged values, naming where each side comes from.
fn validate_merged(
    after: &ContainerResources,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Result<(), PlanError> {
    let describe = |kind: &str, name: &str, q: &Quantity, given: &ResourceList| {
        let flag = if kind == "requests" {
            "--requests"
        } else {
            "--limits"
        };
        if given.contains_key(name) {
            format!("{flag} {name}={}", q.text())
        } else {
            format!("the current {kind}.{name} {}", q.text())
        }
    };
    for (name, request) in &after.requests {
        let Some(limit) = after.limits.get(name) else {
            continue;
        };
        let extended = name.contains('/') && !name.contains("kubernetes.io/");
        if request > limit || (extended && request != limit) {
            let relation = if extended { "must equal" } else { "would be above" };
            return Err(PlanError::new(
                format!(
                    "{} {relation} {}",
                    describe("requests", name, request, requests),
                    describe("limits", name, limit, limits)
                ),
                if extended {
                    format!(
                        "extended resources need the same request and limit: give both --requests {name}=N and --limits {name}=N"
                    )
                } else {
                    format!(
                        "a request cannot exceed its limit: raise the limit too (--limits {name}=...) or lower the request"
                    )
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> PodTemplateSpec {
        serde_json::from_value(json!({
            "spec": {"containers": [
                {"name": "orchestrator", "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "2Gi"},
                    "limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}
                }},
                {"name": "sidecar", "resources": {"requests": {"cpu": "100m"}}}
            ]}
        }))
        .unwrap()
    }

    fn list(text: &str) -> ResourceList {
        parse_resource_list("--requests", text).unwrap()
    }

    fn plan(requests: &str, limits: &str) -> Result<ResourcesPlan, PlanError> {
        let parse = |flag, t: &str| {
            if t.is_empty() {
                Ok(ResourceList::new())
            } else {
                parse_resource_list(flag, t)
            }
        };
        plan_container_resources(
            &template(),
            "deployment/orchestrator",
            "orchestrator",
            &parse("--requests", requests)?,
            &parse("--limits", limits)?,
            "7",
        )
    }

    #[test]
    fn parses_resource_lists() {
        let parsed = list(" cpu=500m, memory=1Gi ,ephemeral-storage=10Gi,nvidia.com/gpu=1");
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed["cpu"], Quantity::parse("0.5").unwrap());
        assert_eq!(parsed["nvidia.com/gpu"].text(), "1");
    }

    #[test]
    fn refuses_bad_lists_naming_flag_and_piece() {
        let cases = [
            ("", "--limits is empty"),
            (
                "cpu=1,,memory=1Gi",
                "--limits \"cpu=1,,memory=1Gi\" has an empty entry",
            ),
            ("cpu", "--limits \"cpu\" is not NAME=QUANTITY"),
            ("=1", "--limits \"=1\": \"\" is not a resource name"),
            ("cpu=1,cpu=2", "--limits names cpu twice"),
            (
                "cpu=-1",
                "--limits \"cpu=-1\": a resource amount cannot be negative",
            ),
            (
                "memory=lots",
                "--limits \"memory=lots\": \"lots\" is not a valid quantity",
            ),
        ];
        for (text, message) in cases {
            let err = parse_resource_list("--limits", text).unwrap_err();
            assert!(err.message.starts_with(message), "{text}: {}", err.message);
        }
    }

    #[test]
    fn changes_only_named_keys_and_builds_strategic_patch() {
        let plan = plan("cpu=1,memory=2Gi", "cpu=2").unwrap();
        let fields: Vec<String> = plan.changes.iter().map(|c| c.field.text()).collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.containers[orchestrator].resources.requests.cpu",
                "spec.template.spec.containers[orchestrator].resources.requests.memory",
                "spec.template.spec.containers[orchestrator].resources.limits.cpu",
            ]
        );
        assert_eq!(plan.changes[0].before.as_deref(), Some("500m"));
        assert_eq!(plan.changes[0].after.as_deref(), Some("1"));
        assert_eq!(
            plan.patch,
            json!({
                "metadata": {"resourceVersion": "7"},
                "spec": {"template": {"spec": {"containers": [{"name": "orchestrator", "resources": {
                    "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2"}
                }}]}}}
            })
        );
        assert_eq!(plan.after.requests["ephemeral-storage"].text(), "2Gi");
        assert_eq!(plan.after.limits["nvidia.com/gpu"].text(), "1");
        assert_eq!(plan.after.limits["memory"].text(), "2Gi");
    }

    #[test]
    fn equal_values_are_noops() {
        let plan = plan("cpu=0.5,memory=1024Mi", "cpu=1000m").unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(plan.patch, json!({}));
        assert_eq!(plan.after, plan.before);
    }

    #[test]
    fn request_above_limit_after_merge_is_refused() {
        let err = plan("cpu=2", "").unwrap_err();
        assert_eq!(
            err.message,
            "--requests cpu=2 would be above the current limits.cpu 1"
        );
        let err = plan("", "memory=512Mi").unwrap_err();
        assert_eq!(
            err.message,
            "the current requests.memory 1Gi would be above --limits memory=512Mi"
        );
        let err = plan("cpu=3", "cpu=2").unwrap_err();
        assert_eq!(err.message, "--requests cpu=3 would be above --limits cpu=2");
        assert!(plan("cpu=2", "cpu=2").is_ok());
    }

    #[test]
    fn extended_resources_need_equal_request_and_limit() {
        let err = plan("nvidia.com/gpu=2", "").unwrap_err();
        assert_eq!(
            err.message,
            "--requests nvidia.com/gpu=2 must equal the current limits.nvidia.com/gpu 1"
        );
        assert!(plan("nvidia.com/gpu=2", "nvidia.com/gpu=2").is_ok());
    }

    #[test]
    fn missing_container_lists_existing_ones() {
        let err = plan_container_resources(
            &template(),
            "statefulset/postgres",
            "postgres",
            &list("cpu=1"),
            &ResourceList::new(),
            "1",
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "statefulset/postgres has no container \"postgres\"; its containers: orchestrator, sidecar"
        );
    }

    #[test]
    fn helpers_feed_fit_check_and_hpa_shift() {
        let plan = plan("cpu=250m", "").unwrap();
        let (cpu, memory) = plan.new_cpu_memory_requests();
        assert_eq!((cpu.text(), memory.text()), ("250m", "1Gi"));
        let hpa = serde_json::from_value(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"}, "minReplicas": 1, "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]},
            "status": {"currentReplicas": 3, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 60}}}]}
        }))
        .unwrap();
        let shifts = plan.hpa_shifts(&hpa);
        assert_eq!(shifts.len(), 1);
        assert!(
            shifts[0].starts_with(
                "CPU request 500m -> 250m doubles measured utilization (60% -> 120% of request)"
            )
        );
    }

    #[test]
    fn restore_patch_puts_back_before_values_and_removes_new_keys() {
        let plan = plan("cpu=750m,nvidia.com/gpu=1", "cpu=2,nvidia.com/gpu=1").unwrap();
        assert_eq!(
            plan.restore_patch("orchestrator"),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "orchestrator", "resources": {
                "requests": {"cpu": "500m", "nvidia.com/gpu": null}, "limits": {"cpu": "1"}
            }}]}}}})
        );
    }

    #[test]
    fn applied_to_sets_the_new_values_in_the_container_only() {
        let plan = plan("cpu=750m", "").unwrap();
        let after = plan.applied_to(&template(), "orchestrator");
        let containers = &after.spec.as_ref().unwrap().containers;
        let requests = containers[0]
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(requests["cpu"].0, "750m");
        assert_eq!(requests["ephemeral-storage"].0, "2Gi");
        assert_eq!(containers[1], template().spec.unwrap().containers[1]);
    }

    #[test]
    fn no_field_is_refused() {
        let err = plan("", "").unwrap_err();
        assert!(err.message.starts_with("nothing to change"));
    }

    #[test]
    fn container_without_resources_gets_new_keys() {
        let mut t = template();
        t.spec.as_mut().unwrap().containers[0].resources = None;
        let plan = plan_container_resources(
            &t,
            "deployment/o",
            "orchestrator",
            &list("cpu=1"),
            &ResourceList::new(),
            "3",
        )
        .unwrap();
        assert_eq!(plan.changes[0].before, None);
        assert_eq!(
            plan.patch["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "1"}})
        );
    }

    #[test]
    fn invalid_current_value_is_reported() {
        let mut t = template();
        t.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert("cpu".into(), K8sQuantity("bogus".into()));
        let err = plan_container_resources(
            &t,
            "deployment/o",
            "orchestrator",
            &list("cpu=1"),
            &ResourceList::new(),
            "3",
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("the current requests.cpu of container orchestrator")
        );
    }
}
