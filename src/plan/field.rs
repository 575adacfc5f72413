//! The typed path of a field a command changes. Its text form (`spec.replicas`,
//! `spec.template.spec.containers[orchestrator].resources.requests.cpu`, ...) is the key of the
//! audit record's `previous` / `written` maps and the `field` of the JSON `changes`: a
//! versioned encoding, parsed back only when `undo` reads a record, never display text.

use crate::plan::PlanError;

/// `requests` or `limits` of a container's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceKind {
    Requests,
    Limits,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Requests => "requests",
            ResourceKind::Limits => "limits",
        }
    }
}

/// A field a command of this tool changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    /// `spec.replicas` (scale).
    Replicas,
    /// `spec.minReplicas` (hpa).
    MinReplicas,
    /// `spec.maxReplicas` (hpa).
    MaxReplicas,
    /// `spec.scaleTargetRef`: only `hpa --create` records it (before `null`).
    ScaleTargetRef,
    /// `spec.metrics[<resource>].target.averageUtilization` (hpa --cpu / --memory).
    MetricUtilization { resource: String },
    /// `spec.metrics[<resource>].target`: an AverageValue/Value target turned into Utilization.
    MetricTarget { resource: String },
    /// `spec.template.spec.containers[<container>].resources.<requests|limits>.<name>`.
    ContainerResource {
        container: String,
        kind: ResourceKind,
        name: String,
    },
    /// `data["<key>"].database.max_connections` (db connections).
    MaxConnections { key: String },
    /// The pod template's `kubectl.kubernetes.io/restartedAt` annotation (a rolling restart).
    RestartedAt,
}

impl FieldPath {
    /// The path as the plans write it.
    pub fn text(&self) -> String {
        match self {
            FieldPath::Replicas => "spec.replicas".into(),
            FieldPath::MinReplicas => "spec.minReplicas".into(),
            FieldPath::MaxReplicas => "spec.maxReplicas".into(),
            FieldPath::ScaleTargetRef => "spec.scaleTargetRef".into(),
            FieldPath::MetricUtilization { resource } => {
                format!("spec.metrics[{resource}].target.averageUtilization")
            }
            FieldPath::MetricTarget { resource } => format!("spec.metrics[{resource}].target"),
            FieldPath::ContainerResource {
                container,
                kind,
                name,
            } => format!(
                "spec.template.spec.containers[{container}].resources.{}.{name}",
                kind.as_str()
            ),
            FieldPath::MaxConnections { key } => format!("data[{key:?}].database.max_connections"),
            FieldPath::RestartedAt => RESTARTED_AT_PATH.to_string(),
        }
    }
}

/// The text of [`FieldPath::RestartedAt`].
const RESTARTED_AT_PATH: &str = "spec.template.metadata.annotations[\"kubectl.kubernetes.io/restartedAt\"]";

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl serde::Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Tests write paths as text; production code builds them typed.
#[cfg(test)]
impl From<&str> for FieldPath {
    fn from(text: &str) -> Self {
        parse_field(text).unwrap_or_else(|e| panic!("{text}: {}", e.message))
    }
}

fn unknown(field: &str) -> PlanError {
    PlanError::new(
        format!("the record names a field undo does not know: {field:?}"),
        "it may come from a newer kubectl-orchscale or have been edited by hand; restore the value with kubectl",
    )
}

/// `name]rest` → (`name`, `rest`), the name non-empty.
fn bracketed(text: &str) -> Option<(&str, &str)> {
    let (name, rest) = text.split_once(']')?;
    (!name.is_empty()).then_some((name, rest))
}

/// Parses a recorded field path.
///
/// # Errors
/// A path none of this tool's commands writes.
pub fn parse_field(field: &str) -> Result<FieldPath, PlanError> {
    let simple = match field {
        "spec.replicas" => Some(FieldPath::Replicas),
        "spec.minReplicas" => Some(FieldPath::MinReplicas),
        "spec.maxReplicas" => Some(FieldPath::MaxReplicas),
        "spec.scaleTargetRef" => Some(FieldPath::ScaleTargetRef),
        RESTARTED_AT_PATH => Some(FieldPath::RestartedAt),
        _ => None,
    };
    if let Some(path) = simple {
        return Ok(path);
    }
    if let Some(rest) = field.strip_prefix("spec.metrics[") {
        let (resource, rest) = bracketed(rest).ok_or_else(|| unknown(field))?;
        let resource = resource.to_string();
        return match rest {
            ".target.averageUtilization" => Ok(FieldPath::MetricUtilization { resource }),
            ".target" => Ok(FieldPath::MetricTarget { resource }),
            _ => Err(unknown(field)),
        };
    }
    if let Some(rest) = field.strip_prefix("spec.template.spec.containers[") {
        let (container, rest) = bracketed(rest).ok_or_else(|| unknown(field))?;
        let rest = rest.strip_prefix(".resources.").ok_or_else(|| unknown(field))?;
        // The resource name is the rest, dots and slashes included (`nvidia.com/gpu`).
        let (kind, name) = if let Some(name) = rest.strip_prefix("requests.") {
            (ResourceKind::Requests, name)
        } else if let Some(name) = rest.strip_prefix("limits.") {
            (ResourceKind::Limits, name)
        } else {
            return Err(unknown(field));
        };
        if name.is_empty() {
            return Err(unknown(field));
        }
        return Ok(FieldPath::ContainerResource {
            container: container.to_string(),
            kind,
            name: name.to_string(),
        });
    }
    if let Some(quoted) = field
        .strip_prefix("data[")
        .and_then(|rest| rest.strip_suffix("].database.max_connections"))
    {
        // The key is written with Rust's `{:?}`, which is JSON's quoting for ordinary keys.
        let key: String = serde_json::from_str(quoted).map_err(|_| unknown(field))?;
        if key.is_empty() {
            return Err(unknown(field));
        }
        return Ok(FieldPath::MaxConnections { key });
    }
    Err(unknown(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_path_parses_and_prints_back() {
        let cases = [
            ("spec.replicas", FieldPath::Replicas),
            ("spec.minReplicas", FieldPath::MinReplicas),
            ("spec.maxReplicas", FieldPath::MaxReplicas),
            ("spec.scaleTargetRef", FieldPath::ScaleTargetRef),
            (
                "spec.metrics[cpu].target.averageUtilization",
                FieldPath::MetricUtilization {
                    resource: "cpu".into(),
                },
            ),
            (
                "spec.metrics[memory].target",
                FieldPath::MetricTarget {
                    resource: "memory".into(),
                },
            ),
            (
                "spec.template.spec.containers[orchestrator].resources.requests.cpu",
                FieldPath::ContainerResource {
                    container: "orchestrator".into(),
                    kind: ResourceKind::Requests,
                    name: "cpu".into(),
                },
            ),
            (
                "spec.template.spec.containers[postgres].resources.limits.nvidia.com/gpu",
                FieldPath::ContainerResource {
                    container: "postgres".into(),
                    kind: ResourceKind::Limits,
                    name: "nvidia.com/gpu".into(),
                },
            ),
            (
                "data[\"config.yaml\"].database.max_connections",
                FieldPath::MaxConnections {
                    key: "config.yaml".into(),
                },
            ),
            (
                "spec.template.metadata.annotations[\"kubectl.kubernetes.io/restartedAt\"]",
                FieldPath::RestartedAt,
            ),
        ];
        for (text, path) in cases {
            assert_eq!(parse_field(text).unwrap(), path, "{text}");
            assert_eq!(path.text(), text);
        }
    }

    #[test]
    fn unknown_paths_are_refused_with_a_hint() {
        for text in [
            "",
            "spec.paused",
            "spec.metrics[].target",
            "spec.metrics[cpu].target.averageValue",
            "spec.template.spec.containers[x].resources.requests.",
            "spec.template.spec.containers[x].resources.claims.a",
            "spec.template.spec.containers[x].image",
            "data[config.yaml].database.max_connections",
            "data[\"\"].database.max_connections",
        ] {
            let err = parse_field(text).unwrap_err();
            assert!(err.message.contains("does not know"), "{text}: {}", err.message);
            assert!(err.hint.contains("kubectl"));
        }
    }
}
