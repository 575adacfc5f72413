//! `recommend --apply`'s plans, from the proposals, through the existing planners: one
//! resources plan per container (joined into one patch per workload, so one rollout), the
//! HPA request of `hpa --min --max --cpu`, the pool of `db connections N`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::Recommendation;
use crate::plan::field::ResourceKind;
use crate::plan::hpa::HpaRequest;
use crate::plan::resources::{ResourceList, ResourcesPlan, plan_container_resources};
use crate::plan::{Change, FieldPath, PlanError};
use crate::quantity::Quantity;

/// The proposals that change something, for `object`.
fn changing<'a>(
    recs: &'a [Recommendation],
    object: &'a str,
) -> impl Iterator<Item = &'a Recommendation> + 'a {
    recs.iter().filter(move |r| r.object == object && r.changes())
}

/// Per container: the requests and limits the proposals set.
pub fn container_lists(
    recs: &[Recommendation],
    object: &str,
) -> BTreeMap<String, (ResourceList, ResourceList)> {
    let mut out: BTreeMap<String, (ResourceList, ResourceList)> = BTreeMap::new();
    for r in changing(recs, object) {
        if let FieldPath::ContainerResource {
            container,
            kind,
            name,
        } = &r.field
            && let Ok(q) = Quantity::parse(&r.recommended)
        {
            let entry = out.entry(container.clone()).or_default();
            match kind {
                ResourceKind::Requests => entry.0.insert(name.clone(), q),
                ResourceKind::Limits => entry.1.insert(name.clone(), q),
            };
        }
    }
    out
}

/// One workload's resources plans joined: the changes of every container and one strategic
/// merge patch listing each container (merged by name) with its changed keys.
///
/// # Errors
/// A container's plan refused (e.g. a request above its limit after merging).
pub fn workload_plan(
    template: &PodTemplateSpec,
    object: &str,
    lists: &BTreeMap<String, (ResourceList, ResourceList)>,
    resource_version: &str,
) -> Result<(Vec<Change>, Value), PlanError> {
    let mut changes = Vec::new();
    let mut patch: Option<Value> = None;
    for (container, (requests, limits)) in lists {
        let ResourcesPlan {
            changes: more,
            patch: one,
            ..
        } = plan_container_resources(template, object, container, requests, limits, resource_version)?;
        if more.is_empty() {
            continue;
        }
        changes.extend(more);
        match &mut patch {
            None => patch = Some(one),
            Some(joined) => {
                let added = one["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(list) = joined["spec"]["template"]["spec"]["containers"].as_array_mut() {
                    list.extend(added);
                }
            }
        }
    }
    Ok((changes, patch.unwrap_or_else(|| serde_json::json!({}))))
}

/// The `hpa` flags the proposals amount to.
pub fn hpa_request(recs: &[Recommendation], object: &str) -> HpaRequest {
    let mut request = HpaRequest::default();
    for r in changing(recs, object) {
        let value = r.recommended.parse::<i32>().ok();
        match &r.field {
            FieldPath::MinReplicas => request.min = value,
            FieldPath::MaxReplicas => request.max = value,
            FieldPath::MetricUtilization { resource } if resource == "cpu" => request.cpu = value,
            _ => {}
        }
    }
    request
}

/// The pool size the proposals set, if they change it.
pub fn pool(recs: &[Recommendation], object: &str) -> Option<u32> {
    changing(recs, object)
        .find(|r| matches!(r.field, FieldPath::MaxConnections { .. }))
        .and_then(|r| r.recommended.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::recommend::Evidence;
    use serde_json::json;

    fn rec(field: FieldPath, current: &str, recommended: &str) -> Recommendation {
        Recommendation {
            object: "deployment/orchestrator".into(),
            field,
            current: Some(current.into()),
            recommended: recommended.into(),
            reason: String::new(),
            evidence: Evidence {
                source: "prometheus",
                window_seconds: 0,
                samples: 0,
                statistic: String::new(),
                value: 0.0,
                unit: "cores",
            },
        }
    }

    fn res(container: &str, kind: ResourceKind, name: &str) -> FieldPath {
        FieldPath::ContainerResource {
            container: container.into(),
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn two_containers_join_into_one_patch_and_unchanged_values_are_left_out() {
        let template: PodTemplateSpec = serde_json::from_value(json!({"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}},
            {"name": "side", "resources": {"requests": {"cpu": "50m"}}}
        ]}}))
        .unwrap();
        let recs = vec![
            rec(res("app", ResourceKind::Requests, "cpu"), "500m", "450m"),
            rec(res("app", ResourceKind::Limits, "cpu"), "1", "1000m"),
            rec(res("side", ResourceKind::Requests, "cpu"), "50m", "30m"),
        ];
        let lists = container_lists(&recs, "deployment/orchestrator");
        assert_eq!(lists.len(), 2);
        assert!(lists["app"].1.is_empty(), "1 = 1000m: no change");
        let (changes, patch) = workload_plan(&template, "deployment/orchestrator", &lists, "7").unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "app", "resources": {"requests": {"cpu": "450m"}}},
                {"name": "side", "resources": {"requests": {"cpu": "30m"}}}
            ])
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn hpa_and_pool_proposals_become_the_commands_inputs() {
        let mut recs = vec![
            rec(FieldPath::MinReplicas, "3", "2"),
            rec(FieldPath::MaxReplicas, "10", "10"),
            rec(
                FieldPath::MetricUtilization {
                    resource: "cpu".into(),
                },
                "70",
                "80",
            ),
            rec(
                FieldPath::MaxConnections {
                    key: "config.yaml".into(),
                },
                "20",
                "124",
            ),
        ];
        for r in &mut recs {
            r.object = "x".into();
        }
        assert_eq!(
            hpa_request(&recs, "x"),
            HpaRequest {
                min: Some(2),
                max: None,
                cpu: Some(80),
                memory: None
            }
        );
        assert_eq!(pool(&recs, "x"), Some(124));
    }
}
