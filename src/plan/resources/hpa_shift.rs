//! The HPA side effect of a request change: the HPA measures utilization as usage ÷ request,
//! so a new request moves the measured utilization even though the load is the same.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use crate::plan::hpa::{HPA_TOLERANCE, HpaModel, WhatIf, current_utilization, predict};
use crate::quantity::Quantity;

fn factor_words(factor: f64) -> String {
    if (factor - 2.0).abs() < 0.01 {
        "doubles measured utilization".to_string()
    } else if (factor - 0.5).abs() < 0.01 {
        "halves measured utilization".to_string()
    } else {
        let shown = format!("{factor:.2}");
        format!(
            "multiplies measured utilization by {}",
            shown.trim_end_matches('0').trim_end_matches('.')
        )
    }
}

fn label(resource: &str) -> &str {
    if resource == "cpu" { "CPU" } else { resource }
}

/// One request a plan changes: (resource, before, after).
pub type RequestChange<'a> = (&'a str, &'a Quantity, &'a Quantity);

/// When the request changes move the HPA's measured utilization (usage ÷ request) enough to
/// move the replica count, says so in ONE sentence, with the count the HPA goes to over all its
/// metrics ([`predict`], the same prediction `hpa` and `scale` make); `None` when the HPA does not
/// scale on a changed resource's utilization or nothing would move.
pub fn utilization_shift(hpa: &HorizontalPodAutoscaler, changes: &[RequestChange]) -> Option<String> {
    let spec = hpa.spec.as_ref()?;
    let model = HpaModel::of(hpa);
    let mut factors: Vec<(String, f64)> = Vec::new();
    let mut said: Vec<String> = Vec::new();
    let mut unmeasured: Vec<String> = Vec::new();
    for (resource, old, new) in changes {
        let Some(target) = model
            .metrics
            .iter()
            .find(|m| m.resource.as_deref() == Some(*resource))
            .and_then(|m| m.target_percent)
        else {
            continue;
        };
        let change = format!("{} request {} -> {}", label(resource), old.text(), new.text());
        if new.is_zero() {
            return Some(format!(
                "{change}: without a request the HPA cannot compute {l} utilization and stops scaling on it",
                l = label(resource)
            ));
        }
        let Some(factor) = old.ratio(new).filter(|f| (f - 1.0).abs() > HPA_TOLERANCE) else {
            continue;
        };
        let words = factor_words(factor);
        match current_utilization(hpa, resource) {
            Some(now) => {
                let then = (f64::from(now) * factor).floor() as i32;
                said.push(format!("{change} {words} ({now}% -> {then}% of request)"));
            }
            None => {
                let direction = if factor > 1.0 { "up" } else { "down" };
                unmeasured.push(format!(
                    "{change} {words}: the HPA (target {target}%) may scale {direction} once it measures the new pods"
                ));
            }
        }
        factors.push(((*resource).to_string(), factor));
    }
    if !unmeasured.is_empty() {
        return Some(unmeasured.join("; "));
    }
    if factors.is_empty() {
        return None;
    }
    let prediction = predict(
        &model,
        &WhatIf {
            utilization_factor: &factors,
            ..WhatIf::default()
        },
    )?;
    let current = prediction.from;
    let shift = said.join("; ");
    let why = prediction.reason();
    Some(match prediction.replicas.cmp(&current) {
        std::cmp::Ordering::Greater => format!(
            "{shift}: the HPA will likely scale up from {current} to about {} replicas ({why})",
            prediction.replicas
        ),
        std::cmp::Ordering::Less => format!(
            "{shift}: the HPA will likely scale down from {current} to about {} replicas (after its \
             stabilization window; {why})",
            prediction.replicas
        ),
        std::cmp::Ordering::Equal if prediction.decided == crate::plan::hpa::predict::Decided::Max => {
            format!(
                "{shift}: the HPA stays at {current} replicas only because of its maxReplicas {}",
                spec.max_replicas
            )
        }
        // Held at minReplicas, within tolerance, or held by another metric: nothing moves.
        std::cmp::Ordering::Equal => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(util: Option<i32>, replicas: i32, min: i32, max: i32) -> HorizontalPodAutoscaler {
        let metrics = util.map_or(json!([]), |u| {
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}])
        });
        serde_json::from_value(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"},
                "minReplicas": min, "maxReplicas": max,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]
            },
            "status": {"currentReplicas": replicas, "desiredReplicas": replicas, "currentMetrics": metrics}
        }))
        .unwrap()
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn halving_the_request_doubles_utilization_and_scales_up() {
        assert_eq!(
            utilization_shift(&hpa(Some(60), 3, 1, 10), &[("cpu", &q("500m"), &q("250m"))]).as_deref(),
            Some(
                "CPU request 500m -> 250m doubles measured utilization (60% -> 120% of request): the HPA \
                 will likely scale up from 3 to about 6 replicas (CPU at 120% of its 60% target)"
            )
        );
    }

    #[test]
    fn doubling_the_request_scales_down() {
        let text = utilization_shift(&hpa(Some(60), 6, 1, 10), &[("cpu", &q("500m"), &q("1"))]).unwrap();
        assert!(
            text.starts_with("CPU request 500m -> 1 halves measured utilization (60% -> 30% of request)")
        );
        assert!(text.contains("scale down from 6 to about 3 replicas"));
    }

    #[test]
    fn clamped_at_max_is_explained() {
        let text = utilization_shift(&hpa(Some(60), 10, 1, 10), &[("cpu", &q("500m"), &q("250m"))]).unwrap();
        assert!(text.ends_with("stays at 10 replicas only because of its maxReplicas 10"));
    }

    #[test]
    fn held_at_min_says_nothing() {
        // 54% -> 36% would scale 3 down to 2, but minReplicas is 3: nothing moves.
        assert_eq!(
            utilization_shift(&hpa(Some(54), 3, 3, 10), &[("cpu", &q("500m"), &q("750m"))]),
            None
        );
    }

    #[test]
    fn small_or_irrelevant_changes_say_nothing() {
        let h = hpa(Some(60), 3, 1, 10);
        assert_eq!(utilization_shift(&h, &[("cpu", &q("500m"), &q("520m"))]), None);
        assert_eq!(utilization_shift(&h, &[("memory", &q("1Gi"), &q("512Mi"))]), None);
        assert!(utilization_shift(&h, &[("cpu", &q("500m"), &q("1000m"))]).is_some());
        assert_eq!(utilization_shift(&h, &[("cpu", &q("500m"), &q("500m"))]), None);
        // 30% -> 60%: lands on the target, nothing moves.
        assert_eq!(
            utilization_shift(&hpa(Some(30), 3, 1, 10), &[("cpu", &q("500m"), &q("250m"))]),
            None
        );
    }

    #[test]
    fn both_requests_make_one_prediction_over_every_metric() {
        // CPU and memory metrics: halving the CPU request alone would say "about 6"; with the
        // memory request halved too, memory (50% -> 100% of 60%) decides: one sentence, one count.
        let h: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "orchestrator"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "orchestrator"},
                "minReplicas": 1, "maxReplicas": 20,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}}}
                ]
            },
            "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "memory", "current": {"averageUtilization": 90}}}
            ]}
        }))
        .unwrap();
        let text = utilization_shift(
            &h,
            &[("cpu", &q("500m"), &q("250m")), ("memory", &q("2Gi"), &q("1Gi"))],
        )
        .unwrap();
        assert!(text.contains("from 3 to about 9 replicas"), "{text}");
        assert!(
            text.contains("memory at 180% of its 60% target; cpu alone: 6"),
            "{text}"
        );
    }

    #[test]
    fn unknown_utilization_gives_a_direction_only() {
        let text = utilization_shift(&hpa(None, 3, 1, 10), &[("cpu", &q("1"), &q("400m"))]).unwrap();
        assert_eq!(
            text,
            "CPU request 1 -> 400m multiplies measured utilization by 2.5: the HPA (target 60%) may scale up once it measures the new pods"
        );
        let text = utilization_shift(&hpa(Some(60), 3, 1, 10), &[("cpu", &q("1"), &q("0"))]).unwrap();
        assert!(text.contains("cannot compute CPU utilization"));
    }
}
