//! Scaling profiles (`orchscale.io/v1` `ScalingProfile`): the typed file format, read with the
//! file, line and field of any mistake (exit 2), and written back by `export`.
//!
//! Every value is checked while it is read (quantities with [`Quantity`], resource names with
//! the API server's rules, counts and percentages in range), so an error carries the position
//! serde-saphyr reports and the field path serde_path_to_error tracks. What a profile means
//! against a cluster (the changes, in which order) is [`steps`].

pub mod emit;
pub mod records;
pub mod steps;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::PlanError;
use super::resources::{ContainerResources, ResourceList, resource_name};
use crate::quantity::Quantity;

/// `apiVersion` of a profile.
pub const API_VERSION: &str = "orchscale.io/v1";
/// `kind` of a profile.
pub const KIND: &str = "ScalingProfile";

/// A scaling profile: the desired shape of the orchestrator, any subset of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingProfile {
    #[serde(deserialize_with = "api_version")]
    pub api_version: String,
    #[serde(deserialize_with = "kind")]
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ProfileSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
}

/// What the profile sets; an absent part is left as it is in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileSpec {
    /// The deployment's replica count (for a deployment without an HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Count<0>>,
    /// The HPA's range and targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSpec>,
    /// Requests/limits per container of the orchestrator deployment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSpec>,
}

/// The HPA's fields a profile sets (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HpaSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<Count<1>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<Count<1>>,
    /// Target average CPU utilization, percent of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_utilization: Option<Count<1>>,
    /// Target average memory utilization, percent of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_utilization: Option<Count<1>>,
}

/// A container's requests and limits; only the keys given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<ResourceName, Amount>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<ResourceName, Amount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The postgres container's requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// postgres's own `max_connections` (`-c max_connections=N`): read, not changed; the
    /// profile states what it expects, and the pool guard uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Count<1>>,
}

/// The per-pod connection pool (`database.max_connections` of the orchestrator's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub connections: Count<1>,
}

/// A whole number of at least `MIN`, refused while read otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Count<const MIN: i32>(pub i32);

impl<'de, const MIN: i32> Deserialize<'de> for Count<MIN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(deserializer)?;
        match i32::try_from(n) {
            Ok(n) if n >= MIN => Ok(Count(n)),
            _ if n < i64::from(MIN) => Err(de::Error::custom(format!("{n} is below {MIN}"))),
            _ => Err(de::Error::custom(format!("{n} is out of range"))),
        }
    }
}

/// A container resource name (`cpu`, `memory`, `ephemeral-storage`, `hugepages-2Mi`,
/// `nvidia.com/gpu`), checked by the API server's rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ResourceName(pub String);

impl<'de> Deserialize<'de> for ResourceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        resource_name(&name).map_err(|why| de::Error::custom(format!("{name:?} {why}")))?;
        Ok(ResourceName(name))
    }
}

/// A non-negative quantity (`500m`, `2Gi`, or a YAML number such as `1` or `0.5`), written
/// back as the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount(pub Quantity);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.text())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 500m, 2Gi or 1")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Amount, E> {
                let q = Quantity::parse(text).map_err(E::custom)?;
                if q.is_negative() {
                    return Err(E::custom(format!("{text:?} is negative")));
                }
                Ok(Amount(q))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Amount, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Amount, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Amount, E> {
                self.visit_str(&n.to_string())
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

fn api_version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    if value == API_VERSION {
        Ok(value)
    } else {
        Err(de::Error::custom(format!("{value:?} is not {API_VERSION:?}")))
    }
}

fn kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    if value == KIND {
        Ok(value)
    } else {
        Err(de::Error::custom(format!("{value:?} is not {KIND:?}")))
    }
}

impl Resources {
    /// The requests and limits as the resources planner takes them.
    pub fn lists(&self) -> (ResourceList, ResourceList) {
        let list = |m: &BTreeMap<ResourceName, Amount>| -> ResourceList {
            m.iter().map(|(k, v)| (k.0.clone(), v.0.clone())).collect()
        };
        (list(&self.requests), list(&self.limits))
    }

    /// A container's current values as a profile's resources.
    pub fn of(current: &ContainerResources) -> Resources {
        let map = |l: &ResourceList| -> BTreeMap<ResourceName, Amount> {
            l.iter()
                .map(|(k, q)| (ResourceName(k.clone()), Amount(q.clone())))
                .collect()
        };
        Resources {
            requests: map(&current.requests),
            limits: map(&current.limits),
        }
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }
}

impl HpaSpec {
    fn is_empty(&self) -> bool {
        self == &HpaSpec::default()
    }
}

impl ScalingProfile {
    /// A profile named `name` with `spec`.
    pub fn new(name: impl Into<String>, spec: ProfileSpec) -> Self {
        ScalingProfile {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: Metadata { name: name.into() },
            spec,
        }
    }

    /// The profile as YAML (what `export` prints).
    ///
    /// # Errors
    /// A [`PlanError`] if the serializer fails (not expected for these types).
    pub fn to_yaml(&self) -> Result<String, PlanError> {
        serde_saphyr::to_string(self).map_err(|e| {
            PlanError::new(
                format!("cannot write the profile as YAML: {e}"),
                "please report it",
            )
        })
    }
}

/// Reads a profile from `text`; `file` names it in errors (`peak.yaml:7:9: spec.hpa.minReplicas: …`).
///
/// # Errors
/// A [`PlanError`] (exit 2) with the file, line, column and field: YAML syntax, an unknown
/// field, a wrong apiVersion/kind, a bad quantity or resource name, a count out of range;
/// then the checks across fields ([`check`]).
pub fn parse(file: &str, text: &str) -> Result<ScalingProfile, PlanError> {
    // serde-saphyr knows the line, serde_path_to_error the field: the path is kept aside
    // while the error goes back through serde-saphyr, which adds the location.
    let mut path = String::new();
    let profile = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, ScalingProfile>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("{file}:{}:{}", l.line(), l.column()))
            .unwrap_or_else(|| file.to_string());
        let field = if path.is_empty() || path == "." {
            String::new()
        } else {
            format!(" {path}:")
        };
        PlanError::new(
            format!("invalid profile {at}:{field} {}", first_line(&message_of(&e))),
            "see docs/profile.md for the format (docs/schema/scaling-profile.schema.json validates it)",
        )
    })?;
    check(&profile).map_err(|e| PlanError::new(format!("invalid profile {file}: {}", e.message), e.hint))?;
    Ok(profile)
}

/// serde-saphyr's message without the location it adds (the caller says it first).
fn message_of(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = match text.split_once(": ") {
        Some((at, rest)) if at.starts_with("line ") && at.contains(" column ") => rest,
        _ => text,
    };
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The checks across fields: `replicas` and `hpa` exclude each other, min ≤ max, something
/// to set at all, no empty parts.
///
/// # Errors
/// A [`PlanError`] naming the fields.
pub fn check(profile: &ScalingProfile) -> Result<(), PlanError> {
    let spec = &profile.spec;
    let hint = "see docs/profile.md";
    if spec.replicas.is_some() && spec.hpa.is_some() {
        return Err(PlanError::new(
            "spec.replicas and spec.hpa are both set: with an HPA the replica count is the HPA's",
            "give spec.hpa (minReplicas/maxReplicas) for an autoscaled deployment, spec.replicas otherwise",
        ));
    }
    if let Some(hpa) = &spec.hpa {
        if hpa.is_empty() {
            return Err(PlanError::new("spec.hpa sets no field", hint));
        }
        if let (Some(min), Some(max)) = (hpa.min_replicas, hpa.max_replicas)
            && min > max
        {
            return Err(PlanError::new(
                format!(
                    "spec.hpa.minReplicas {} is above spec.hpa.maxReplicas {}",
                    min.0, max.0
                ),
                hint,
            ));
        }
    }
    for (container, resources) in &spec.resources {
        if resources.is_empty() {
            return Err(PlanError::new(
                format!("spec.resources.{container} sets neither requests nor limits"),
                hint,
            ));
        }
    }
    if let Some(db) = &spec.database
        && db.resources.as_ref().is_some_and(Resources::is_empty)
    {
        return Err(PlanError::new(
            "spec.database.resources sets neither requests nor limits",
            hint,
        ));
    }
    if spec == &ProfileSpec::default() {
        return Err(PlanError::new(
            "spec sets nothing",
            "give at least one of replicas, hpa, resources, database, pool",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEAK: &str = "apiVersion: orchscale.io/v1
kind: ScalingProfile
metadata:
  name: peak
spec:
  hpa:
    minReplicas: 5
    maxReplicas: 20
    cpuUtilization: 60
  resources:
    orchestrator:
      requests:
        cpu: 750m
        memory: 1536Mi
      limits:
        cpu: 2
        memory: 3Gi
  database:
    resources:
      requests: {cpu: \"1\", memory: 2Gi}
    maxConnections: 1000
  pool:
    connections: 40
";

    fn error(text: &str) -> String {
        parse("peak.yaml", text).unwrap_err().message
    }

    #[test]
    fn a_full_profile_reads_into_typed_values() {
        let p = parse("peak.yaml", PEAK).unwrap();
        assert_eq!(p.metadata.name, "peak");
        let hpa = p.spec.hpa.as_ref().unwrap();
        assert_eq!(hpa.min_replicas, Some(Count(5)));
        assert_eq!(hpa.memory_utilization, None);
        let (requests, limits) = p.spec.resources["orchestrator"].lists();
        assert_eq!(requests["memory"], Quantity::parse("1.5Gi").unwrap());
        assert_eq!(limits["cpu"], Quantity::parse("2000m").unwrap());
        assert_eq!(p.spec.pool.as_ref().unwrap().connections, Count(40));
        assert_eq!(
            p.spec.database.as_ref().unwrap().max_connections,
            Some(Count(1000))
        );
    }

    #[test]
    fn a_profile_round_trips_through_yaml() {
        let p = parse("peak.yaml", PEAK).unwrap();
        let text = p.to_yaml().unwrap();
        assert_eq!(parse("again.yaml", &text).unwrap(), p, "{text}");
    }

    #[test]
    fn unknown_fields_are_named_with_their_line() {
        let text = PEAK.replace("    cpuUtilization: 60", "    cpuUtilisation: 60");
        let message = error(&text);
        assert!(
            message.starts_with("invalid profile peak.yaml:9:5: spec.hpa.cpuUtilisation: unknown field"),
            "{message}"
        );
        assert!(
            !message.contains("line 9"),
            "the position is said once: {message}"
        );
        assert!(message.contains("spec.hpa"), "{message}");
        assert!(message.contains("cpuUtilisation"), "{message}");
    }

    #[test]
    fn bad_quantities_and_names_are_named_with_their_line() {
        let message = error(&PEAK.replace("memory: 1536Mi", "memory: 1536Mo"));
        assert!(message.starts_with("invalid profile peak.yaml:14:"), "{message}");
        assert!(
            message.contains("spec.resources.orchestrator.requests.memory"),
            "{message}"
        );
        assert!(message.contains("1536Mo"), "{message}");
        let message = error(&PEAK.replace("        cpu: 750m", "        gpu: 1"));
        assert!(message.contains("peak.yaml:13:"), "{message}");
        assert!(message.contains("vendor"), "{message}");
        let message = error(&PEAK.replace("cpu: 2\n", "cpu: -2\n"));
        assert!(message.contains("negative"), "{message}");
    }

    #[test]
    fn counts_out_of_range_and_wrong_kinds_are_refused() {
        let message = error(&PEAK.replace("minReplicas: 5", "minReplicas: 0"));
        assert!(message.contains("peak.yaml:7:"), "{message}");
        assert!(message.contains("spec.hpa.minReplicas"), "{message}");
        assert!(message.contains("below 1"), "{message}");
        let message = error(&PEAK.replace("kind: ScalingProfile", "kind: Deployment"));
        assert!(
            message.contains("peak.yaml:2:") && message.contains("kind"),
            "{message}"
        );
        let message = error(&PEAK.replace("minReplicas: 5", "minReplicas: 30"));
        assert!(message.contains("minReplicas 30 is above"), "{message}");
        let message = error(&PEAK.replace("  hpa:\n", "  replicas: 4\n  hpa:\n"));
        assert!(message.contains("both set"), "{message}");
    }

    #[test]
    fn an_empty_spec_is_refused() {
        let message =
            error("apiVersion: orchscale.io/v1\nkind: ScalingProfile\nmetadata: {name: x}\nspec: {}\n");
        assert!(message.contains("spec sets nothing"), "{message}");
    }
}
