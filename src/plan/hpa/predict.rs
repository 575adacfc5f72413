//! Where the HPA controller takes the replica count, computed once for every command that
//! warns about it (`hpa`, `resources`, `scale`), so that their predictions cannot disagree.
//!
//! The rules are the controller's (kubernetes `pkg/controller/podautoscaler`):
//! - `horizontal.go` `reconcileAutoscaler`: a count outside minReplicas..maxReplicas goes to the
//!   nearest bound first; a target at 0 replicas (with minReplicas > 0) is left alone.
//! - `horizontal.go` `computeReplicasForMetrics`: a proposal per metric, the LARGEST wins; when
//!   every metric is invalid, or some are and the largest valid proposal would scale down, the
//!   controller does not scale.
//! - `replica_calculator.go` `GetResourceReplicas`: usageRatio = utilization ÷ target (the
//!   utilization a whole percent), no change within the tolerance (0.1, the
//!   `--horizontal-pod-autoscaler-tolerance` default), else ceil(usageRatio × pods).
//! - `horizontal.go` `normalizeDesiredReplicas`: the result clamped to min..max.
//!
//! Stabilization windows and rate policies only delay the count; the prediction is where it
//! settles at the current load.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::{HPA_TOLERANCE, current_utilization};

/// One metric of the HPA as the prediction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricModel {
    /// `cpu`, `memory`, or the metric's name for other kinds.
    pub name: String,
    /// The resource, for Resource metrics with a Utilization target (the only ones whose
    /// proposal this tool can compute from the HPA's status).
    pub resource: Option<String>,
    pub target_percent: Option<i32>,
    /// The utilization the HPA last reported, a whole percent as the controller computes it.
    pub current_percent: Option<i32>,
}

/// What the prediction needs from an HPA: bounds, the count it last saw, its metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HpaModel {
    pub min: i32,
    pub max: i32,
    /// `status.currentReplicas`; `None` before the HPA's first sync.
    pub current: Option<i32>,
    pub metrics: Vec<MetricModel>,
}

impl HpaModel {
    /// The model of `hpa`; an HPA without metrics scales on CPU 80% (the API's default).
    pub fn of(hpa: &HorizontalPodAutoscaler) -> HpaModel {
        let spec = hpa.spec.as_ref();
        let mut metrics: Vec<MetricModel> = spec
            .and_then(|s| s.metrics.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let resource = m.resource.as_ref().filter(|_| m.type_ == "Resource");
                let utilization = resource.filter(|r| r.target.type_ == "Utilization");
                let name = resource.map(|r| r.name.clone()).unwrap_or_else(|| {
                    [
                        m.pods.as_ref().map(|p| p.metric.name.clone()),
                        m.object.as_ref().map(|o| o.metric.name.clone()),
                        m.external.as_ref().map(|e| e.metric.name.clone()),
                        m.container_resource
                            .as_ref()
                            .map(|c| format!("{}/{}", c.container, c.name)),
                    ]
                    .into_iter()
                    .flatten()
                    .next()
                    .unwrap_or_else(|| m.type_.clone())
                });
                MetricModel {
                    resource: utilization.map(|r| r.name.clone()),
                    target_percent: utilization.and_then(|r| r.target.average_utilization),
                    current_percent: utilization.and_then(|r| current_utilization(hpa, &r.name)),
                    name,
                }
            })
            .collect();
        if spec.is_some_and(|s| s.metrics.as_ref().is_none_or(Vec::is_empty)) {
            metrics.push(MetricModel {
                name: "cpu".into(),
                resource: Some("cpu".into()),
                target_percent: Some(super::DEFAULT_CPU_UTILIZATION),
                current_percent: current_utilization(hpa, "cpu"),
            });
        }
        HpaModel {
            min: spec.and_then(|s| s.min_replicas).unwrap_or(1),
            max: spec.map_or(0, |s| s.max_replicas),
            current: hpa.status.as_ref().and_then(|s| s.current_replicas),
            metrics,
        }
    }
}

/// A change to predict under; the default is "as it is now".
#[derive(Debug, Clone, Default)]
pub struct WhatIf<'a> {
    pub min: Option<i32>,
    pub max: Option<i32>,
    /// New utilization targets: (resource, percent).
    pub targets: &'a [(String, i32)],
    /// Measured utilization multiplied per resource (a request divided by the factor).
    pub utilization_factor: &'a [(String, f64)],
    /// The count the deployment is set to (`scale`); the load spreads over it, so each pod's
    /// utilization moves by current ÷ replicas.
    pub replicas: Option<i32>,
}

/// Why the prediction is the count it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The metric with the largest proposal; `within_tolerance`: it proposes the count as is.
    Metric {
        name: String,
        utilization: i32,
        target: i32,
        within_tolerance: bool,
    },
    /// The count was outside the bounds, or the proposal was clamped to one.
    Min,
    Max,
    /// A metric the prediction cannot read, so the controller would not scale down (or no
    /// metric could be computed at all).
    Unknown {
        names: Vec<String>,
    },
}

/// Where the controller takes the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    /// The count it is at (the count `scale` sets, or the HPA's current one).
    pub from: i32,
    pub replicas: i32,
    pub decided: Decided,
    /// Every computed proposal, (metric, replicas), in the HPA's order.
    pub proposals: Vec<(String, i32)>,
}

impl Prediction {
    /// The JSON form (`prediction` in the `hpa` document): `{from, replicas, decidedBy, metric,
    /// proposals: [{metric, replicas}]}`; `decidedBy` is `metric`, `minReplicas`, `maxReplicas`
    /// or `missingMetric`.
    pub fn to_json(&self) -> serde_json::Value {
        let (decided_by, metric) = match &self.decided {
            Decided::Metric { name, .. } => ("metric", Some(name.as_str())),
            Decided::Min => ("minReplicas", None),
            Decided::Max => ("maxReplicas", None),
            Decided::Unknown { .. } => ("missingMetric", None),
        };
        let proposals: Vec<serde_json::Value> = self
            .proposals
            .iter()
            .map(|(metric, replicas)| serde_json::json!({"metric": metric, "replicas": replicas}))
            .collect();
        serde_json::json!({
            "from": self.from,
            "replicas": self.replicas,
            "decidedBy": decided_by,
            "metric": metric,
            "proposals": proposals,
        })
    }

    /// `memory 90% against 80% decides` / `minReplicas 3 decides` ..., for the sentences.
    pub fn reason(&self) -> String {
        match &self.decided {
            Decided::Metric {
                name,
                utilization,
                target,
                within_tolerance,
            } => {
                let others: Vec<String> = self
                    .proposals
                    .iter()
                    .filter(|(n, _)| n != name)
                    .map(|(n, r)| format!("{n} alone: {r}"))
                    .collect();
                let label = if name == "cpu" { "CPU" } else { name.as_str() };
                let of = if *within_tolerance { "within 10% of" } else { "of" };
                let said = format!("{label} at {utilization}% {of} its {target}% target");
                if others.is_empty() {
                    said
                } else {
                    format!("the largest proposal wins: {said}; {}", others.join(", "))
                }
            }
            Decided::Min => "held at minReplicas".into(),
            Decided::Max => "held at maxReplicas".into(),
            Decided::Unknown { names } => format!(
                "no current value for {}: the controller does not scale down without every metric",
                names.join(", ")
            ),
        }
    }
}

/// ceil() that forgives float noise (10 × 0.8 must be 8, not 9).
fn ceil(x: f64) -> i32 {
    (x - 1e-9).ceil() as i32
}

/// The count the HPA controller settles at under `what_if`; `None` when it does not act:
/// before its first sync, or at 0 replicas with minReplicas > 0 (ScalingDisabled).
pub fn predict(model: &HpaModel, what_if: &WhatIf) -> Option<Prediction> {
    let min = what_if.min.unwrap_or(model.min);
    let max = what_if.max.unwrap_or(model.max).max(min);
    let now = model.current?;
    let from = what_if.replicas.unwrap_or(now);
    if from == 0 && min > 0 {
        return None;
    }
    let bounded = |replicas, decided| Prediction {
        from,
        replicas,
        decided,
        proposals: Vec::new(),
    };
    if from > max {
        return Some(bounded(max, Decided::Max));
    }
    if from < min {
        return Some(bounded(min, Decided::Min));
    }
    // A target for a resource the HPA does not scale on yet adds that metric, with no value
    // measured: an invalid metric to the controller until its first sample.
    let added: Vec<MetricModel> = what_if
        .targets
        .iter()
        .filter(|(r, _)| {
            !model
                .metrics
                .iter()
                .any(|m| m.resource.as_deref() == Some(r.as_str()))
        })
        .map(|(r, t)| MetricModel {
            name: r.clone(),
            resource: Some(r.clone()),
            target_percent: Some(*t),
            current_percent: None,
        })
        .collect();
    let mut proposals = Vec::new();
    let mut best: Option<(i32, Decided)> = None;
    let mut unknown = Vec::new();
    for metric in model.metrics.iter().chain(&added) {
        let resource = metric.resource.as_deref();
        let target = resource
            .and_then(|r| what_if.targets.iter().find(|(name, _)| name == r))
            .map(|(_, t)| *t)
            .or(metric.target_percent);
        let (Some(target), Some(current)) = (target.filter(|t| *t > 0), metric.current_percent) else {
            unknown.push(metric.name.clone());
            continue;
        };
        let factor = resource
            .and_then(|r| what_if.utilization_factor.iter().find(|(name, _)| name == r))
            .map_or(1.0, |(_, f)| *f);
        // The load stays: spread over `from` pods instead of `now`. The controller works with a
        // whole percent (GetResourceUtilizationRatio truncates).
        let utilization = if from > 0 {
            (f64::from(current) * factor * f64::from(now) / f64::from(from) + 1e-9).floor() as i32
        } else {
            current
        };
        let ratio = f64::from(utilization) / f64::from(target);
        let within_tolerance = (ratio - 1.0).abs() <= HPA_TOLERANCE;
        let proposal = if within_tolerance {
            from
        } else {
            ceil(ratio * f64::from(from))
        };
        proposals.push((metric.name.clone(), proposal));
        if best.as_ref().is_none_or(|(b, _)| proposal > *b) {
            let decided = Decided::Metric {
                name: metric.name.clone(),
                utilization,
                target,
                within_tolerance,
            };
            best = Some((proposal, decided));
        }
    }
    let (raw, decided) = match best {
        Some((b, _)) if !unknown.is_empty() && b < from => (from, Decided::Unknown { names: unknown }),
        Some(found) => found,
        None => (from, Decided::Unknown { names: unknown }),
    };
    let (replicas, decided) = if raw > max {
        (max, Decided::Max)
    } else if raw < min {
        (min, Decided::Min)
    } else {
        (raw, decided)
    };
    Some(Prediction {
        from,
        replicas,
        decided,
        proposals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, target: i32, current: Option<i32>) -> MetricModel {
        MetricModel {
            name: name.into(),
            resource: Some(name.into()),
            target_percent: Some(target),
            current_percent: current,
        }
    }

    fn model(current: i32, metrics: Vec<MetricModel>) -> HpaModel {
        HpaModel {
            min: 2,
            max: 10,
            current: Some(current),
            metrics,
        }
    }

    #[test]
    fn the_largest_proposal_wins_as_in_compute_replicas_for_metrics() {
        // CPU alone would go to 3, memory holds the HPA at 8 (the "10 to 3").
        let m = model(
            10,
            vec![metric("cpu", 60, Some(145)), metric("memory", 80, Some(64))],
        );
        let targets = [("cpu".to_string(), 150)];
        let p = predict(
            &m,
            &WhatIf {
                targets: &targets,
                ..WhatIf::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.replicas, 10,
            "memory 64/80 = 0.8 -> ceil(8.0) = 8, but cpu 145/150 is in tolerance"
        );
        assert_eq!(
            p.proposals,
            vec![("cpu".to_string(), 10), ("memory".to_string(), 8)]
        );
        let m = model(
            10,
            vec![metric("cpu", 60, Some(45)), metric("memory", 80, Some(64))],
        );
        let p = predict(
            &m,
            &WhatIf {
                targets: &targets,
                ..WhatIf::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.proposals,
            vec![("cpu".to_string(), 3), ("memory".to_string(), 8)]
        );
        assert_eq!(p.replicas, 8);
        assert!(
            matches!(&p.decided, Decided::Metric { name, .. } if name == "memory"),
            "{p:?}"
        );
        assert!(p.reason().contains("cpu alone: 3"), "{}", p.reason());
    }

    #[test]
    fn tolerance_and_clamping_follow_the_controller() {
        let m = model(3, vec![metric("cpu", 60, Some(63))]);
        assert_eq!(
            predict(&m, &WhatIf::default()).unwrap().replicas,
            3,
            "63/60 is within 0.1"
        );
        let m = model(3, vec![metric("cpu", 60, Some(300))]);
        let p = predict(&m, &WhatIf::default()).unwrap();
        assert_eq!(
            (p.replicas, p.decided),
            (10, Decided::Max),
            "ceil(15) clamped to max"
        );
        let m = model(4, vec![metric("cpu", 60, Some(10))]);
        assert_eq!(
            predict(&m, &WhatIf::default()).unwrap().replicas,
            2,
            "clamped to min"
        );
        let m = model(12, vec![metric("cpu", 60, Some(60))]);
        assert_eq!(predict(&m, &WhatIf::default()).unwrap().decided, Decided::Max);
        let m = model(0, vec![metric("cpu", 60, Some(60))]);
        assert_eq!(
            predict(&m, &WhatIf::default()),
            None,
            "ScalingDisabled at 0 replicas"
        );
    }

    #[test]
    fn a_new_metric_counts_as_missing_until_measured() {
        let m = model(6, vec![metric("cpu", 60, Some(20))]);
        let targets = [("memory".to_string(), 75)];
        let p = predict(
            &m,
            &WhatIf {
                targets: &targets,
                ..WhatIf::default()
            },
        )
        .unwrap();
        assert_eq!(p.replicas, 6, "no scale-down while memory has no sample");
        assert_eq!(
            p.decided,
            Decided::Unknown {
                names: vec!["memory".into()]
            }
        );
    }

    #[test]
    fn a_missing_metric_blocks_only_a_scale_down() {
        let m = model(6, vec![metric("cpu", 60, Some(20)), metric("memory", 80, None)]);
        let p = predict(&m, &WhatIf::default()).unwrap();
        assert_eq!(p.replicas, 6);
        assert!(matches!(p.decided, Decided::Unknown { .. }));
        let m = model(6, vec![metric("cpu", 60, Some(120)), metric("memory", 80, None)]);
        assert_eq!(predict(&m, &WhatIf::default()).unwrap().replicas, 10);
    }

    #[test]
    fn load_is_kept_when_the_count_or_the_request_changes() {
        let m = model(4, vec![metric("cpu", 60, Some(90))]);
        // 4 pods at 90% are 360% of one pod's request: 6 pods at 60%, wherever `scale` puts it.
        let at = |n| {
            predict(
                &m,
                &WhatIf {
                    replicas: Some(n),
                    ..WhatIf::default()
                },
            )
            .unwrap()
            .replicas
        };
        assert_eq!(at(4), 6);
        assert_eq!(at(8), 6);
        assert_eq!(at(6), 6);
        // Halving the request doubles utilization: 180% of 60% -> 12, clamped to 10.
        let factor = [("cpu".to_string(), 2.0)];
        let p = predict(
            &m,
            &WhatIf {
                utilization_factor: &factor,
                ..WhatIf::default()
            },
        )
        .unwrap();
        assert_eq!(p.replicas, 10);
    }
}
