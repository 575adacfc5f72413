//! Pure planning of `scale --replicas N`: the HPA range guard, the change, the patch.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::{Value, json};

use super::hpa::{HpaModel, Prediction, WhatIf, predict};
use super::{Change, ChangeValue, FieldPath, PlanError};

/// The replica range of an HPA that targets the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaRange {
    pub name: String,
    pub min: i32,
    pub max: i32,
    /// What the HPA's prediction needs (the same [`predict`] as `hpa` and `resources` use).
    pub model: HpaModel,
}

impl HpaRange {
    /// The range of `hpa` when it targets `apps/v1 Deployment <deployment>`.
    pub fn of(hpa: &HorizontalPodAutoscaler, deployment: &str) -> Option<HpaRange> {
        let spec = hpa.spec.as_ref()?;
        let target = &spec.scale_target_ref;
        if target.kind != "Deployment" || target.name != deployment {
            return None;
        }
        Some(HpaRange {
            name: hpa.metadata.name.clone().unwrap_or_default(),
            // The API defaults minReplicas to 1.
            min: spec.min_replicas.unwrap_or(1),
            max: spec.max_replicas,
            model: HpaModel::of(hpa),
        })
    }
}

/// What `scale` will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePlan {
    pub object: String,
    pub current: i32,
    pub target: i32,
    /// Empty when already at the target.
    pub changes: Vec<Change>,
    pub consequences: Vec<String>,
    /// What the HPA will do about it (info when within range, warning when forced).
    pub hpa_note: Option<String>,
    /// True when `hpa_note` is a warning (forced outside the range).
    pub hpa_warning: bool,
    /// Where the HPA takes the new count at the current load (`prediction` in JSON).
    pub hpa_prediction: Option<Prediction>,
}

/// Plans `scale --replicas requested` from the current count and the HPA, if any.
///
/// # Errors
/// Negative or huge counts; a count outside the HPA's range without `--force`.
pub fn plan(
    deployment: &str,
    current: i32,
    requested: i64,
    hpa: Option<&HpaRange>,
    force: bool,
) -> Result<ScalePlan, PlanError> {
    if requested < 0 {
        return Err(PlanError::new(
            format!("--replicas must be 0 or more, got {requested}"),
            "give the number of pods you want, e.g. --replicas 5",
        ));
    }
    let target = i32::try_from(requested).map_err(|_| {
        PlanError::new(
            format!("--replicas {requested} is too large"),
            "give a replica count the cluster can run",
        )
    })?;
    let object = format!("deployment/{deployment}");
    let (mut hpa_note, mut hpa_warning, mut hpa_prediction) = (None, false, None);
    if let Some(range) = hpa.filter(|r| target == 0 && r.min > 0) {
        // The HPA controller leaves a target at 0 replicas alone (ScalingActive False,
        // ScalingDisabled) until someone scales it up: it does not undo this.
        hpa_warning = true;
        hpa_note = Some(format!(
            "HPA {} stops autoscaling while {object} has 0 replicas (ScalingDisabled); it takes over \
             again after a scale up, e.g. `kubectl orchscale scale --replicas {}`",
            range.name, range.min
        ));
    } else if let Some(range) = hpa {
        let inside = (range.min..=range.max).contains(&target);
        if !inside && !force {
            let bound = if target < range.min { range.min } else { range.max };
            let fix = if target < range.min {
                format!("`kubectl orchscale hpa --min {target}`")
            } else {
                format!("`kubectl orchscale hpa --max {target}`")
            };
            return Err(PlanError::new(
                format!(
                    "HPA {} keeps {object} between {} and {} replicas: it would undo --replicas {target} \
                     (back to {bound}) at its next sync",
                    range.name, range.min, range.max
                ),
                format!("change the HPA's range with {fix}, or pass --force to scale anyway"),
            ));
        }
        hpa_prediction = predict(
            &range.model,
            &WhatIf {
                replicas: Some(target),
                ..WhatIf::default()
            },
        );
        let prediction = hpa_prediction.clone().filter(|p| p.replicas != target);
        if let Some(p) = prediction.filter(|_| inside) {
            // The load stays: spread over the new count, the HPA proposes what it proposes now.
            hpa_warning = true;
            hpa_note = Some(format!(
                "HPA {} ({}..{}) keeps control of the replica count: at the current load it will move \
                 {object} from {target} to about {} replicas at its next sync ({}); for a lasting floor \
                 use `kubectl orchscale hpa --min {target}`",
                range.name,
                range.min,
                range.max,
                p.replicas,
                p.reason()
            ));
        } else if inside {
            hpa_note = Some(format!(
                "HPA {} ({}..{}) keeps control of the replica count and may move it at its next sync; \
                 for a lasting floor use `kubectl orchscale hpa --min {target}`",
                range.name, range.min, range.max
            ));
        } else {
            hpa_warning = true;
            hpa_note = Some(format!(
                "--force: HPA {} ({}..{}) will move the count back into its range at its next sync",
                range.name, range.min, range.max
            ));
        }
    }
    let changes = if current == target {
        Vec::new()
    } else {
        vec![Change::new(
            object.clone(),
            FieldPath::Replicas,
            Some(ChangeValue::count(current)),
            Some(ChangeValue::count(target)),
        )]
    };
    Ok(ScalePlan {
        consequences: consequences(current, target),
        object,
        current,
        target,
        changes,
        hpa_note,
        hpa_warning,
        hpa_prediction,
    })
}

/// What scaling does to pods: new pods start or some are terminated; none restart.
pub fn consequences(current: i32, target: i32) -> Vec<String> {
    use std::cmp::Ordering::*;
    match target.cmp(&current) {
        Greater => vec![format!(
            "{} new pod(s) start; running pods are not restarted",
            target - current
        )],
        Less if target == 0 => vec![format!(
            "all {current} pods are terminated: no pod serves until the deployment is scaled up again"
        )],
        Less => vec![format!(
            "{} pod(s) are terminated (their in-flight requests drain); the others keep running",
            current - target
        )],
        Equal => Vec::new(),
    }
}

/// Merge patch for the `scale` subresource, carrying the resourceVersion read so that a
/// concurrent change makes the write fail with 409 instead of being overwritten.
pub fn scale_patch(target: i32, resource_version: Option<&str>) -> Value {
    match resource_version {
        Some(rv) => json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": target}}),
        None => json!({"spec": {"replicas": target}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> HpaRange {
        HpaRange {
            name: "orchestrator".into(),
            min: 3,
            max: 10,
            model: HpaModel::default(),
        }
    }

    #[test]
    fn negative_replicas_are_refused() {
        let err = plan("orchestrator", 3, -1, None, false).unwrap_err();
        assert!(err.message.contains("0 or more"));
    }

    #[test]
    fn outside_the_hpa_range_is_refused_without_force() {
        let err = plan("orchestrator", 3, 20, Some(&range()), false).unwrap_err();
        assert!(err.message.contains("between 3 and 10"), "{}", err.message);
        assert!(err.message.contains("undo"));
        assert!(err.hint.contains("--force"));
        assert!(err.hint.contains("hpa --max 20"));
        let err = plan("orchestrator", 3, 1, Some(&range()), false).unwrap_err();
        assert!(err.hint.contains("hpa --min 1"));
    }

    #[test]
    fn zero_is_allowed_with_an_hpa_since_the_hpa_stops_at_zero() {
        // The HPA controller does not scale a target at 0 replicas (ScalingDisabled): it would
        // not undo a scale to 0, so the guard must not refuse it with that reason.
        let p = plan("orchestrator", 3, 0, Some(&range()), false).unwrap();
        assert_eq!(p.target, 0);
        assert!(p.hpa_warning);
        let note = p.hpa_note.unwrap();
        assert!(note.contains("stops autoscaling"), "{note}");
        assert!(!note.contains("back into its range"), "{note}");
        let forced = plan("orchestrator", 3, 0, Some(&range()), true).unwrap();
        assert_eq!(forced.hpa_note.unwrap(), note, "--force changes nothing at 0");
    }

    #[test]
    fn force_overrides_the_guard_with_a_warning() {
        let p = plan("orchestrator", 3, 20, Some(&range()), true).unwrap();
        assert_eq!(p.target, 20);
        assert!(p.hpa_warning);
        assert!(p.hpa_note.unwrap().contains("back into its range"));
    }

    #[test]
    fn the_hpa_fight_is_predicted_over_every_metric() {
        use crate::plan::hpa::predict::MetricModel;
        let metric = |name: &str, target, current| MetricModel {
            name: String::from(name),
            resource: Some(String::from(name)),
            target_percent: Some(target),
            current_percent: Some(current),
        };
        // 4 pods: CPU 30% of 60% (alone: 2), memory 90% of 60% (6): memory decides.
        let range = HpaRange {
            model: HpaModel {
                min: 2,
                max: 10,
                current: Some(4),
                metrics: vec![metric("cpu", 60, 30), metric("memory", 60, 90)],
            },
            ..range()
        };
        let p = plan("orchestrator", 4, 8, Some(&range), false).unwrap();
        assert!(p.hpa_warning, "the HPA will undo it: a warning");
        assert_eq!(
            p.hpa_prediction.as_ref().map(|p| (p.from, p.replicas)),
            Some((8, 6))
        );
        let note = p.hpa_note.unwrap();
        assert!(note.contains("from 8 to about 6 replicas"), "{note}");
        assert!(
            note.contains("memory at 45% of its 60% target; cpu alone: 2"),
            "{note}"
        );
        // At the count the HPA wants there is nothing to fight.
        let p = plan("orchestrator", 4, 6, Some(&range), false).unwrap();
        assert!(!p.hpa_warning, "{:?}", p.hpa_note);
    }

    #[test]
    fn within_range_says_the_hpa_keeps_control() {
        let p = plan("orchestrator", 3, 5, Some(&range()), false).unwrap();
        assert!(!p.hpa_warning);
        let note = p.hpa_note.unwrap();
        assert!(note.contains("keeps control"));
        assert!(note.contains("hpa --min 5"));
        assert_eq!(
            p.changes,
            vec![Change::new(
                "deployment/orchestrator",
                "spec.replicas",
                Some(ChangeValue::count(3)),
                Some(ChangeValue::count(5))
            )]
        );
    }

    #[test]
    fn already_at_target_changes_nothing() {
        let p = plan("orchestrator", 5, 5, None, false).unwrap();
        assert!(p.changes.is_empty());
        assert!(p.consequences.is_empty());
    }

    #[test]
    fn consequences_count_pods() {
        assert!(consequences(3, 5)[0].starts_with("2 new pod(s) start"));
        assert!(consequences(5, 4)[0].starts_with("1 pod(s) are terminated"));
    }

    #[test]
    fn scaling_to_zero_says_nothing_keeps_running() {
        let text = &consequences(4, 0)[0];
        assert!(!text.contains("the others keep running"), "{text}");
        assert!(text.starts_with("all 4 pods are terminated"), "{text}");
        assert!(text.contains("no pod serves"), "{text}");
    }

    #[test]
    fn patch_carries_the_resource_version() {
        assert_eq!(
            scale_patch(5, Some("42")),
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 5}})
        );
        assert_eq!(scale_patch(5, None), json!({"spec": {"replicas": 5}}));
    }

    #[test]
    fn hpa_range_only_for_the_targeted_deployment() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orchestrator"},
                     "maxReplicas": 10}
        }))
        .unwrap();
        assert_eq!(
            HpaRange::of(&hpa, "orchestrator"),
            Some(HpaRange {
                name: "orchestrator".into(),
                min: 1,
                max: 10,
                model: HpaModel {
                    min: 1,
                    max: 10,
                    current: None,
                    metrics: vec![crate::plan::hpa::predict::MetricModel {
                        name: "cpu".into(),
                        resource: Some("cpu".into()),
                        target_percent: Some(80),
                        current_percent: None,
                    }],
                },
            })
        );
        assert_eq!(HpaRange::of(&hpa, "other"), None);
    }
}
