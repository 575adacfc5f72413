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
use super::{Change, ChangeValue, FieldPath, PlanError};
use crate::quantity::Quantity;

pub mod capacity;
pub mod disruption;
pub mod hpa_shift;
pub mod selection;

pub use capacity::{
    FitReport, ListedNode, NodeUsage, Placement, PodSize, ScheduledPod, Tolerance, quota_check,
    rollout_quota_delta,
};
pub use disruption::{Disruption, max_surge_pods, rollout_disruption, statefulset_disruption};
pub use hpa_shift::utilization_shift;
pub use selection::NodeSelection;

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

    /// The [`utilization_shift`] warning for the CPU/memory requests this plan changes (one
    /// sentence over all of them: one prediction, as the HPA makes one decision).
    pub fn hpa_shifts(
        &self,
        hpa: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
    ) -> Vec<String> {
        let changed: Vec<hpa_shift::RequestChange> = ["cpu", "memory"]
            .into_iter()
            .filter_map(|name| {
                let old = self.before.requests.get(name)?;
                let new = self.after.requests.get(name)?;
                (old != new).then_some((name, old, new))
            })
            .collect();
        utilization_shift(hpa, &changed).into_iter().collect()
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
        if let Err(problem) = resource_name(name) {
            return Err(PlanError::new(
                format!("{flag} {piece:?}: {name:?} {problem}"),
                "container resources are cpu, memory, ephemeral-storage, hugepages-<size> and \
                 vendor-qualified extended resources such as nvidia.com/gpu",
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
        if is_extended(name) && quantity.nanos() % 1_000_000_000 != 0 {
            return Err(PlanError::new(
                format!("{flag} {piece:?}: {name} is an extended resource and must be a whole number"),
                format!("give whole devices, e.g. {flag} {name}=1"),
            ));
        }
        if list.insert(name.to_string(), quantity).is_some() {
            return Err(PlanError::new(format!("{flag} names {name} twice"), hint));
        }
    }
    Ok(list)
}

/// The kind of container resource a name is, by the API server's rules (upstream
/// `pkg/apis/core/helper`: `IsStandardContainerResourceName`, `IsHugePageResourceName`,
/// `IsExtendedResourceName`; validation in `ValidateContainerResourceName`), or why it is none.
///
/// # Errors
/// The reason, ready to follow the name in a message.
pub fn resource_name(name: &str) -> Result<(), String> {
    const STANDARD: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
    if STANDARD.contains(&name) {
        return Ok(());
    }
    if let Some(size) = name.strip_prefix("hugepages-") {
        return match Quantity::parse(size) {
            Ok(q) if !q.is_negative() && !q.is_zero() => Ok(()),
            _ => Err(format!(
                "is not a huge page size (hugepages-2Mi, hugepages-1Gi); {size:?} is no size"
            )),
        };
    }
    match name.split_once('/') {
        Some((domain, resource)) => {
            let label = |part: &str| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            };
            let qualified = !resource.is_empty()
                && resource.len() <= 63
                && resource
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && resource.starts_with(|c: char| c.is_ascii_alphanumeric())
                && resource.ends_with(|c: char| c.is_ascii_alphanumeric());
            if domain == "kubernetes.io" || domain.ends_with(".kubernetes.io") {
                Err("is in the kubernetes.io namespace, which has no container resources to request".into())
            } else if domain.len() > 253 || !domain.split('.').all(label) || !qualified {
                Err("is not a valid extended resource name (DOMAIN/NAME, e.g. nvidia.com/gpu)".into())
            } else {
                Ok(())
            }
        }
        None => Err(match name {
            "gpu" | "gpus" => "is not a resource: GPUs are extended resources named by their vendor, \
                               e.g. nvidia.com/gpu or amd.com/gpu"
                .to_string(),
            _ => match STANDARD.iter().find(|s| edit_distance(s, name) <= 2) {
                Some(near) => format!("is not a resource: did you mean {near}?"),
                None => "is not a container resource".to_string(),
            },
        }),
    }
}

/// Whether a valid resource name is an extended resource (`nvidia.com/gpu`): whole numbers,
/// requests equal to limits.
pub fn is_extended(name: &str) -> bool {
    name.contains('/')
}

/// Extended resources cannot be overcommitted: a request equals its limit. A flag giving only
/// one of them sets both, as the API server's defaulting would for a limit (and its validation
/// demands for a request).
pub fn mirror_extended(requests: &mut ResourceList, limits: &mut ResourceList) {
    for (name, q) in requests.iter().filter(|(n, _)| is_extended(n)) {
        limits.entry(name.clone()).or_insert_with(|| q.clone());
    }
    for (name, q) in limits.iter().filter(|(n, _)| is_extended(n)) {
        requests.entry(name.clone()).or_insert_with(|| q.clone());
    }
}

/// Levenshtein distance, for "did you mean" (short names only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
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
                old.map(ChangeValue::from),
                Some(ChangeValue::from(quantity)),
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

/// The keys that admission changed although the plan did not touch them (GKE Autopilot sets
/// limits equal to requests; a LimitRange or policy may add limits), as warnings: the plan's
/// own keys that differ are reported by `plan::outcome`.
pub fn changed_besides(
    object: &str,
    container: &str,
    planned: &ContainerResources,
    stored: &ContainerResources,
    changes: &[Change],
) -> Vec<String> {
    let mut said = Vec::new();
    for (kind, planned, stored) in [
        (ResourceKind::Requests, &planned.requests, &stored.requests),
        (ResourceKind::Limits, &planned.limits, &stored.limits),
    ] {
        let keys: std::collections::BTreeSet<&String> = planned.keys().chain(stored.keys()).collect();
        for key in keys {
            let (before, after) = (planned.get(key), stored.get(key));
            let ours = changes.iter().any(|c| {
                matches!(&c.field, FieldPath::ContainerResource { kind: k, name, .. } if *k == kind && name == key)
            });
            if before != after && !ours {
                let show =
                    |q: Option<&Quantity>| q.map_or_else(|| "(unset)".to_string(), |q| q.text().to_string());
                said.push(format!(
                    "{object} container {container} {} {key}: the API server stored {}, it was {} \
                     (changed by an admission webhook, policy or LimitRange, not by this command)",
                    kind.as_str(),
                    show(after),
                    show(before)
                ));
            }
        }
    }
    said
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
            ("=1", "--limits \"=1\": \"\" is not a container resource"),
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
        assert_eq!(plan.changes[0].before_text(), "500m");
        assert_eq!(plan.changes[0].after_text(), "1");
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
    fn resource_names_follow_the_api_servers_rules() {
        for ok in [
            "cpu",
            "memory",
            "ephemeral-storage",
            "hugepages-2Mi",
            "nvidia.com/gpu",
            "amd.com/gpu",
            "example.com/foo_bar",
        ] {
            assert_eq!(resource_name(ok), Ok(()), "{ok}");
        }
        assert!(resource_name("gpu").unwrap_err().contains("nvidia.com/gpu"));
        assert!(
            resource_name("memroy")
                .unwrap_err()
                .contains("did you mean memory?")
        );
        assert!(resource_name("cpus").unwrap_err().contains("did you mean cpu?"));
        assert!(resource_name("storage").is_err());
        assert!(resource_name("hugepages-x").is_err());
        assert!(
            resource_name("kubernetes.io/gpu")
                .unwrap_err()
                .contains("kubernetes.io")
        );
        assert!(resource_name("Nvidia.com/gpu").is_err(), "domains are lower case");
        assert!(resource_name("nvidia.com/").is_err());
    }

    #[test]
    fn extended_resources_are_whole_and_one_flag_sets_both() {
        let err = parse_resource_list("--limits", "nvidia.com/gpu=0.5").unwrap_err();
        assert!(err.message.contains("must be a whole number"), "{}", err.message);
        let err = parse_resource_list("--requests", "gpu=1").unwrap_err();
        assert!(
            err.message.contains("\"gpu\" is not a resource"),
            "{}",
            err.message
        );
        let mut requests = list("cpu=1");
        let mut limits = list("nvidia.com/gpu=2");
        mirror_extended(&mut requests, &mut limits);
        assert_eq!(requests["nvidia.com/gpu"].text(), "2");
        assert!(
            !limits.contains_key("cpu"),
            "only extended resources are mirrored"
        );
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
    fn keys_admission_changed_besides_the_plan_are_said() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        let mut planned = ContainerResources::default();
        planned.requests.insert("cpu".into(), q("600m"));
        planned.limits.insert("cpu".into(), q("1"));
        let mut stored = planned.clone();
        stored.requests.insert("cpu".into(), q("750m"));
        stored.limits.insert("cpu".into(), q("750m"));
        let changes = vec![Change::new(
            "deployment/o",
            "spec.template.spec.containers[o].resources.requests.cpu",
            Some(ChangeValue::quantity("500m")),
            Some(ChangeValue::quantity("750m")),
        )];
        let said = changed_besides("deployment/o", "o", &planned, &stored, &changes);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("limits cpu: the API server stored 750m, it was 1"),
            "{}",
            said[0]
        );
        assert!(changed_besides("deployment/o", "o", &planned, &planned, &changes).is_empty());
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
