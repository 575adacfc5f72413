//! Type checks of the fields the sim reads and defaults: kube-apiserver decodes every body into
//! typed Go structs, so a wrongly typed field (`"spec": "x"`, `"replicas": "3"`) is a 400
//! BadRequest there, and must be one here rather than reach the handlers and controllers.

use serde_json::Value;

use super::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Array,
    Integer,
}

impl Shape {
    fn matches(self, value: &Value) -> bool {
        match self {
            Shape::Object => value.is_object(),
            Shape::Array => value.is_array(),
            // Counts are int32 in the Go types; a larger number does not decode.
            Shape::Integer => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        }
    }

    fn go_type(self) -> &'static str {
        match self {
            Shape::Object => "object",
            Shape::Array => "array",
            Shape::Integer => "int32",
        }
    }
}

use Shape::{Array, Integer, Object};

/// Fields of every kind; `[]` stands for every element of an array.
const COMMON: &[(&str, Shape)] = &[
    ("", Object),
    ("metadata", Object),
    ("metadata.labels", Object),
    ("metadata.annotations", Object),
    ("spec", Object),
    ("status", Object),
];

/// Fields of a pod spec, relative to where it sits.
const POD_SPEC: &[(&str, Shape)] = &[
    ("", Object),
    ("containers", Array),
    ("containers[]", Object),
    ("containers[].resources", Object),
    ("containers[].resources.requests", Object),
    ("containers[].resources.limits", Object),
    ("containers[].ports", Array),
    ("containers[].ports[]", Object),
    ("containers[].env", Array),
    ("containers[].env[]", Object),
    ("initContainers", Array),
    ("initContainers[]", Object),
    ("initContainers[].resources", Object),
    ("initContainers[].resources.requests", Object),
    ("initContainers[].resources.limits", Object),
];

const WORKLOAD: &[(&str, Shape)] = &[
    ("spec.replicas", Integer),
    ("spec.selector", Object),
    ("spec.template", Object),
    ("spec.template.metadata", Object),
    ("spec.template.metadata.labels", Object),
    ("spec.template.metadata.annotations", Object),
];

fn rules(kind: &str) -> (Vec<(&'static str, Shape)>, Option<&'static str>) {
    let mut rules = COMMON.to_vec();
    let pod_spec = match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" => {
            rules.extend_from_slice(WORKLOAD);
            rules.extend_from_slice(&[
                ("spec.progressDeadlineSeconds", Integer),
                ("spec.strategy", Object),
                ("spec.strategy.rollingUpdate", Object),
                ("spec.updateStrategy", Object),
                ("spec.updateStrategy.rollingUpdate", Object),
            ]);
            Some("spec.template.spec")
        }
        "Pod" => Some("spec"),
        "HorizontalPodAutoscaler" => {
            rules.extend_from_slice(&[
                ("spec.minReplicas", Integer),
                ("spec.maxReplicas", Integer),
                ("spec.scaleTargetRef", Object),
                ("spec.metrics", Array),
                ("spec.metrics[]", Object),
                ("spec.metrics[].resource", Object),
                ("spec.metrics[].resource.target", Object),
                ("spec.behavior", Object),
                ("spec.behavior.scaleUp", Object),
                ("spec.behavior.scaleDown", Object),
            ]);
            None
        }
        "Service" => {
            rules.extend_from_slice(&[
                ("spec.ports", Array),
                ("spec.ports[]", Object),
                ("spec.selector", Object),
            ]);
            None
        }
        "ConfigMap" => {
            rules.push(("data", Object));
            None
        }
        "Node" => {
            rules.push(("status.allocatable", Object));
            None
        }
        _ => None,
    };
    (rules, pod_spec)
}

/// Every value at `path` (dotted, `[]` for each array element), with its printable location.
fn values_at<'a>(root: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut current = vec![(String::new(), root)];
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (key, each) = match segment.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (segment, false),
        };
        let mut next = Vec::new();
        for (at, value) in current {
            let Some(child) = value.get(key) else {
                continue;
            };
            let at = if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            };
            if each {
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    next.push((format!("{at}[{i}]"), item));
                }
            } else {
                next.push((at, child));
            }
        }
        current = next;
    }
    current
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_rule(kind: &str, object: &Value, path: &str, shape: Shape) -> Result<(), ApiError> {
    for (at, value) in values_at(object, path) {
        // null decodes to the zero value in Go, as absence does.
        if !value.is_null() && !shape.matches(value) {
            let field = if at.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}.{at}")
            };
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go struct field {field} of type {}",
                json_type(value),
                shape.go_type()
            )));
        }
    }
    Ok(())
}

/// Checks the types of the fields of `object` (of `kind`) that the sim reads.
///
/// # Errors
/// 400 BadRequest naming the first wrongly typed field.
pub fn check(kind: &str, object: &Value) -> Result<(), ApiError> {
    if !object.is_object() {
        // A patch can turn the whole object into null (`{"$patch": "delete"}`) or anything else.
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type {kind}",
            json_type(object)
        )));
    }
    let (rules, pod_spec) = rules(kind);
    for (path, shape) in rules {
        check_rule(kind, object, path, shape)?;
    }
    if let Some(prefix) = pod_spec {
        for (path, shape) in POD_SPEC {
            let full = if path.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{path}")
            };
            check_rule(kind, object, &full, *shape)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn well_typed_and_absent_fields_pass() {
        let deploy = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {"spec": {
            "containers": [{"name": "c", "ports": [{"containerPort": 80}], "resources": null}]}}}});
        assert_eq!(check("Deployment", &deploy), Ok(()));
        assert_eq!(check("ConfigMap", &json!({"metadata": {"name": "c"}})), Ok(()));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let deploy =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}, {"ports": "80"}]}}}});
        let error = check("Deployment", &deploy).expect_err("ports must be an array");
        assert_eq!(error.code, 400);
        assert!(
            error
                .message
                .contains("Deployment.spec.template.spec.containers[1].ports"),
            "{}",
            error.message
        );
        assert!(check("Deployment", &json!([1])).is_err());
        assert!(check("Deployment", &Value::Null).is_err());
        assert!(check("HorizontalPodAutoscaler", &json!({"spec": {"maxReplicas": "3"}})).is_err());
        assert!(check("Deployment", &json!({"spec": {"replicas": 3_000_000_000u64}})).is_err());
        assert!(check("Deployment", &json!({"spec": {"replicas": 2.5}})).is_err());
        assert!(check("ConfigMap", &json!({"data": ["a"]})).is_err());
    }
}
