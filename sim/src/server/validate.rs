//! Object validation as kube-apiserver does it for the fields the plugin writes: names, replica
//! counts, container names/images/resources (quantities, requests ≤ limits) and HPA bounds.
//! Failures are 422 Invalid with one cause per field, worded like the apiserver's.

use serde_json::Value;

use super::registry::ResourceInfo;
use super::status::{ApiError, Cause};
use crate::controllers::quantity::milli_of;

/// Validates an object about to be stored (after a create, update or patch).
///
/// # Errors
/// 422 Invalid listing every failing field.
pub fn validate(info: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !is_dns_subdomain(name) && info.kind != "Event" {
        causes.push(Cause::invalid(
            "metadata.name",
            &Value::from(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    match info.kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" => {
            check_replicas(&object["spec"]["replicas"], "spec.replicas", &mut causes);
            check_pod_spec(
                &object["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut causes,
            );
        }
        "Pod" => check_pod_spec(&object["spec"], "spec", &mut causes),
        "HorizontalPodAutoscaler" => check_hpa(&object["spec"], &mut causes),
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(info.kind, info.group, name, causes))
    }
}

/// Validates a Scale written to a scale subresource.
///
/// # Errors
/// 422 Invalid (`Scale.autoscaling`) when `spec.replicas` is negative.
pub fn validate_scale(name: &str, replicas: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    check_replicas(replicas, "spec.replicas", &mut causes);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Scale", "autoscaling", name, causes))
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn check_replicas(replicas: &Value, field: &str, causes: &mut Vec<Cause>) {
    if replicas.as_i64().is_some_and(|r| r < 0) {
        causes.push(Cause::invalid(
            field,
            replicas,
            "must be greater than or equal to 0",
        ));
    }
}

fn check_pod_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec[list].as_array() else {
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            let at = format!("{path}.{list}[{i}]");
            if container["name"].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required(format!("{at}.name"), ""));
            }
            if container["image"].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required(format!("{at}.image"), ""));
            }
            check_resources(&container["resources"], &format!("{at}.resources"), causes);
        }
    }
}

fn check_resources(resources: &Value, path: &str, causes: &mut Vec<Cause>) {
    let parsed = |part: &str, causes: &mut Vec<Cause>| -> Vec<(String, i128)> {
        let mut values = Vec::new();
        for (resource, quantity) in resources[part].as_object().into_iter().flatten() {
            let field = format!("{path}.{part}[{resource}]");
            // The controllers' parser is the one source of truth for what a quantity is.
            match milli_of(quantity) {
                Some(value) if value < 0 => {
                    causes.push(Cause::invalid(field, quantity, "must be greater than or equal to 0"));
                }
                Some(value) => values.push((resource.clone(), value)),
                _ => causes.push(Cause::invalid(
                    field,
                    quantity,
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )),
            }
        }
        values
    };
    let requests = parsed("requests", causes);
    let limits = parsed("limits", causes);
    for (resource, request) in &requests {
        let Some((_, limit)) = limits.iter().find(|(r, _)| r == resource) else {
            continue;
        };
        if request > limit {
            let shown = resources["requests"][resource].clone();
            let limit_shown = resources["limits"][resource]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            causes.push(Cause::invalid(
                format!("{path}.requests"),
                &shown,
                &format!("must be less than or equal to {resource} limit of {limit_shown}"),
            ));
        }
    }
}

fn check_hpa(spec: &Value, causes: &mut Vec<Cause>) {
    let min = spec["minReplicas"].as_i64().unwrap_or(1);
    let max = &spec["maxReplicas"];
    if min < 1 {
        causes.push(Cause::invalid(
            "spec.minReplicas",
            &spec["minReplicas"],
            "must be greater than or equal to 1",
        ));
    }
    match max.as_i64() {
        None => causes.push(Cause::required("spec.maxReplicas", "")),
        Some(m) if m < 1 => causes.push(Cause::invalid("spec.maxReplicas", max, "must be greater than 0")),
        Some(m) if m < min => {
            causes.push(Cause::invalid(
                "spec.maxReplicas",
                max,
                "must be greater than or equal to `minReplicas`",
            ));
        }
        Some(_) => {}
    }
    let target = &spec["scaleTargetRef"];
    for field in ["kind", "name"] {
        if target[field].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.scaleTargetRef.{field}"), ""));
        }
    }
    for (i, metric) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
        for source in ["resource", "containerResource"] {
            let utilization = &metric[source]["target"]["averageUtilization"];
            if utilization.as_i64().is_some_and(|u| u <= 0) {
                causes.push(Cause::invalid(
                    format!("spec.metrics[{i}].{source}.target.averageUtilization"),
                    utilization,
                    "must be greater than 0",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry;
    use serde_json::json;

    fn info(plural: &str, group: &str, version: &str) -> &'static ResourceInfo {
        registry::find(group, version, plural).expect("registered")
    }

    fn fields(error: ApiError) -> Vec<String> {
        error.details.expect("details")["causes"]
            .as_array()
            .expect("causes")
            .iter()
            .map(|c| c["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn quantities_are_those_the_controllers_read() {
        let deploy = |requests: Value| {
            json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "x", "resources": {"requests": requests, "limits": {"cpu": "1"}}}]}}}})
        };
        let info = info("deployments", "apps", "v1");
        assert!(validate(info, &deploy(json!({"cpu": 0.5, "memory": "1Ei"}))).is_ok());
        assert!(validate(info, &deploy(json!({"cpu": "100n"}))).is_ok());
        assert!(validate(info, &deploy(json!({"cpu": "1001m"}))).is_err());
        assert!(validate(info, &deploy(json!({"cpu": "-1"}))).is_err());
        assert!(validate(info, &deploy(json!({"cpu": "1.2.3"}))).is_err());
    }

    #[test]
    fn containers_need_names_valid_quantities_and_requests_within_limits() {
        let deploy = json!({"metadata": {"name": "web"}, "spec": {"replicas": -1, "template": {"spec": {"containers": [
            {"image": "x", "resources": {"requests": {"cpu": "2", "memory": "lots"}, "limits": {"cpu": "1"}}}]}}}});
        let error = validate(info("deployments", "apps", "v1"), &deploy).expect_err("invalid");
        assert_eq!(error.code, 422);
        assert_eq!(
            fields(error),
            [
                "spec.replicas",
                "spec.template.spec.containers[0].name",
                "spec.template.spec.containers[0].resources.requests[memory]",
                "spec.template.spec.containers[0].resources.requests",
            ]
        );
    }

    #[test]
    fn hpa_bounds_and_utilization_are_checked() {
        let hpa = json!({"metadata": {"name": "web"}, "spec": {"minReplicas": 5, "maxReplicas": 3,
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]}});
        let error =
            validate(info("horizontalpodautoscalers", "autoscaling", "v2"), &hpa).expect_err("invalid");
        assert_eq!(
            fields(error),
            [
                "spec.maxReplicas",
                "spec.metrics[0].resource.target.averageUtilization"
            ]
        );
        let zero_min = json!({"metadata": {"name": "web"}, "spec": {"minReplicas": 0, "maxReplicas": 3,
            "scaleTargetRef": {"kind": "Deployment", "name": "web"}}});
        let error =
            validate(info("horizontalpodautoscalers", "autoscaling", "v2"), &zero_min).expect_err("invalid");
        assert_eq!(fields(error), ["spec.minReplicas"]);
    }

    #[test]
    fn names_are_required_and_valid_objects_pass() {
        let error = validate(info("configmaps", "", "v1"), &json!({"metadata": {}})).expect_err("no name");
        assert_eq!(fields(error), ["metadata.name"]);
        assert!(
            validate(
                info("configmaps", "", "v1"),
                &json!({"metadata": {"name": "cfg"}})
            )
            .is_ok()
        );
        assert_eq!(validate_scale("web", &json!(-2)).expect_err("negative").code, 422);
    }
}
