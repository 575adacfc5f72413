//! `recommend --apply`'s input to the profile apply: the proposals as a `ScalingProfile`
//! (the HPA's range and CPU target, each deployment container's requests and limits, the
//! database container's, the pool), so that they are written by `apply -f`'s own steps.

use super::Recommendation;
use crate::plan::FieldPath;
use crate::plan::field::ResourceKind;
use crate::plan::profile::{
    Amount, Count, DatabaseSpec, HpaSpec, PoolSpec, ProfileSpec, ResourceName, Resources, ScalingProfile,
};
use crate::quantity::Quantity;

/// The name of the profile `recommend --apply` applies (and of its application in the audit
/// records, `recommendations/<time>`).
pub const PROFILE_NAME: &str = "recommendations";

/// The proposals as a profile, and the proposals a profile cannot carry (said, not applied).
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendedProfile {
    pub profile: ScalingProfile,
    pub left_out: Vec<String>,
}

/// Every proposal (changing or not: a value already in place is a step in place) as a profile
/// value: `deployment` containers' resources under `spec.resources`, the `statefulset`
/// container `db_container`'s under `spec.database.resources`, the HPA's min, max and CPU
/// (memory) targets under `spec.hpa`, the pool under `spec.pool`. `None` when there is no
/// proposal at all.
pub fn recommended_profile(
    recs: &[Recommendation],
    deployment: &str,
    statefulset: &str,
    db_container: &str,
) -> Option<RecommendedProfile> {
    let mut spec = ProfileSpec::default();
    let mut left_out = Vec::new();
    let mut leave = |r: &Recommendation, why: &str| {
        left_out.push(format!(
            "{} {} = {}: not applied ({why})",
            r.object, r.field, r.recommended
        ));
    };
    for r in recs {
        match &r.field {
            FieldPath::ContainerResource {
                container,
                kind,
                name,
            } => {
                let Ok(amount) = Quantity::parse(&r.recommended) else {
                    leave(r, "not a quantity");
                    continue;
                };
                let resources = if r.object == deployment {
                    spec.resources.entry(container.clone()).or_default()
                } else if r.object == statefulset && container == db_container {
                    spec.database
                        .get_or_insert_with(DatabaseSpec::default)
                        .resources
                        .get_or_insert_with(Resources::default)
                } else {
                    leave(
                        r,
                        &format!("a profile sets the database's container {db_container} only"),
                    );
                    continue;
                };
                let list = match kind {
                    ResourceKind::Requests => &mut resources.requests,
                    ResourceKind::Limits => &mut resources.limits,
                };
                list.insert(ResourceName(name.clone()), Amount(amount));
            }
            FieldPath::MinReplicas | FieldPath::MaxReplicas | FieldPath::MetricUtilization { .. } => {
                let Some(count) = r.recommended.parse::<i32>().ok().filter(|n| *n >= 1) else {
                    leave(r, "not a count of at least 1");
                    continue;
                };
                let hpa = spec.hpa.get_or_insert_with(HpaSpec::default);
                match &r.field {
                    FieldPath::MinReplicas => hpa.min_replicas = Some(Count(count)),
                    FieldPath::MaxReplicas => hpa.max_replicas = Some(Count(count)),
                    FieldPath::MetricUtilization { resource } if resource == "cpu" => {
                        hpa.cpu_utilization = Some(Count(count));
                    }
                    FieldPath::MetricUtilization { resource } if resource == "memory" => {
                        hpa.memory_utilization = Some(Count(count));
                    }
                    _ => leave(r, "a profile sets CPU and memory targets only"),
                }
            }
            FieldPath::MaxConnections { .. } => match r.recommended.parse::<i32>() {
                Ok(n) if n >= 1 => {
                    spec.pool = Some(PoolSpec {
                        connections: Count(n),
                    });
                }
                _ => leave(r, "not a pool size of at least 1"),
            },
            _ => leave(r, "not a field a profile sets"),
        }
    }
    (spec != ProfileSpec::default()).then(|| RecommendedProfile {
        profile: ScalingProfile::new(PROFILE_NAME, spec),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::check;
    use crate::plan::recommend::Evidence;

    const DEP: &str = "deployment/orchestrator";
    const STS: &str = "statefulset/postgres";
    const HPA: &str = "horizontalpodautoscaler/orchestrator";
    const CM: &str = "configmap/orchestrator-config";

    fn rec(object: &str, field: FieldPath, current: &str, recommended: &str) -> Recommendation {
        Recommendation {
            object: object.into(),
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

    fn q(text: &str) -> Amount {
        Amount(Quantity::parse(text).unwrap())
    }

    fn rn(name: &str) -> ResourceName {
        ResourceName(name.into())
    }

    #[test]
    fn the_profile_holds_exactly_the_recommended_values() {
        let recs = vec![
            rec(STS, res("postgres", ResourceKind::Requests, "cpu"), "1", "700m"),
            rec(
                STS,
                res("postgres", ResourceKind::Limits, "memory"),
                "2Gi",
                "1536Mi",
            ),
            rec(
                CM,
                FieldPath::MaxConnections {
                    key: "config.yaml".into(),
                },
                "20",
                "110",
            ),
            rec(
                DEP,
                res("orchestrator", ResourceKind::Requests, "cpu"),
                "500m",
                "450m",
            ),
            // In place already: still the recommended value, a step that is in place.
            rec(
                DEP,
                res("orchestrator", ResourceKind::Limits, "cpu"),
                "1",
                "1000m",
            ),
            rec(
                DEP,
                res("log-shipper", ResourceKind::Requests, "memory"),
                "64Mi",
                "80Mi",
            ),
            rec(HPA, FieldPath::MinReplicas, "3", "2"),
            rec(HPA, FieldPath::MaxReplicas, "10", "9"),
            rec(
                HPA,
                FieldPath::MetricUtilization {
                    resource: "cpu".into(),
                },
                "70",
                "78",
            ),
        ];
        let out = recommended_profile(&recs, DEP, STS, "postgres").unwrap();
        assert!(out.left_out.is_empty(), "{:?}", out.left_out);
        let spec = &out.profile.spec;
        assert_eq!(out.profile.metadata.name, PROFILE_NAME);
        assert_eq!(
            spec.hpa,
            Some(HpaSpec {
                min_replicas: Some(Count(2)),
                max_replicas: Some(Count(9)),
                cpu_utilization: Some(Count(78)),
                memory_utilization: None,
            })
        );
        assert_eq!(
            spec.pool,
            Some(PoolSpec {
                connections: Count(110)
            })
        );
        assert_eq!(
            spec.database,
            Some(DatabaseSpec {
                resources: Some(Resources {
                    requests: [(rn("cpu"), q("700m"))].into(),
                    limits: [(rn("memory"), q("1536Mi"))].into(),
                }),
                max_connections: None,
            })
        );
        assert_eq!(spec.resources.len(), 2);
        assert_eq!(
            spec.resources["orchestrator"],
            Resources {
                requests: [(rn("cpu"), q("450m"))].into(),
                limits: [(rn("cpu"), q("1000m"))].into(),
            }
        );
        assert_eq!(
            spec.resources["log-shipper"],
            Resources {
                requests: [(rn("memory"), q("80Mi"))].into(),
                limits: Default::default(),
            }
        );
        assert_eq!(spec.replicas, None, "the HPA owns the replica count");
        check(&out.profile).unwrap();
    }

    #[test]
    fn what_a_profile_cannot_carry_is_said_and_no_proposal_is_no_profile() {
        let recs = vec![
            rec(STS, res("exporter", ResourceKind::Requests, "cpu"), "50m", "20m"),
            rec(
                DEP,
                res("orchestrator", ResourceKind::Requests, "cpu"),
                "500m",
                "450m",
            ),
        ];
        let out = recommended_profile(&recs, DEP, STS, "postgres").unwrap();
        assert_eq!(out.left_out.len(), 1, "{:?}", out.left_out);
        assert!(
            out.left_out[0].starts_with("statefulset/postgres "),
            "{:?}",
            out.left_out
        );
        assert!(out.profile.spec.database.is_none());
        assert_eq!(recommended_profile(&[], DEP, STS, "postgres"), None);
    }
}
