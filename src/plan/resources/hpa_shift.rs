//! The HPA side effect of a request change: the HPA measures utilization as usage ÷ request,
//! so a new request moves the measured utilization even though the load is the same.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use crate::plan::hpa::{HPA_TOLERANCE, current_utilization, desired_replicas};
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

/// When changing `resource`'s request from `old_request` to `new_request` moves the HPA's
/// measured utilization across its target by more than the tolerance, says so, in which
/// direction and to about how many replicas; `None` when the HPA does not scale on that
/// resource's utilization or nothing would move.
pub fn utilization_shift(
    hpa: &HorizontalPodAutoscaler,
    old_request: &Quantity,
    new_request: &Quantity,
    resource: &str,
) -> Option<String> {
    let spec = hpa.spec.as_ref()?;
    let target = spec
        .metrics
        .as_ref()?
        .iter()
        .filter(|m| m.type_ == "Resource")
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == resource && r.target.type_ == "Utilization")?
        .target
        .average_utilization?;
    let label = if resource == "cpu" { "CPU" } else { resource };
    let change = format!("{label} request {} -> {}", old_request.text(), new_request.text());
    if new_request.is_zero() {
        return Some(format!(
            "{change}: without a request the HPA cannot compute {label} utilization and stops scaling on it"
        ));
    }
    let factor = old_request.ratio(new_request)?;
    if (factor - 1.0).abs() <= HPA_TOLERANCE {
        return None;
    }
    let words = factor_words(factor);
    let Some(current_util) = current_utilization(hpa, resource) else {
        let direction = if factor > 1.0 { "up" } else { "down" };
        return Some(format!(
            "{change} {words}: the HPA (target {target}%) may scale {direction} \
             once it measures the new pods"
        ));
    };
    let new_util = (f64::from(current_util) * factor).round() as i32;
    if (f64::from(new_util) / f64::from(target) - 1.0).abs() <= HPA_TOLERANCE {
        return None;
    }
    let current = hpa.status.as_ref().and_then(|s| s.current_replicas)?;
    let (min, max) = (spec.min_replicas.unwrap_or(1), spec.max_replicas);
    let desired = desired_replicas(current, new_util, target, min, max);
    let shift = format!("{change} {words} ({current_util}% -> {new_util}% of request)");
    Some(match desired.cmp(&current) {
        std::cmp::Ordering::Greater => {
            format!("{shift}: the HPA will likely scale up from {current} to about {desired} replicas")
        }
        std::cmp::Ordering::Less => format!(
            "{shift}: the HPA will likely scale down from {current} to about {desired} replicas \
             (after its stabilization window)"
        ),
        // Held at minReplicas, lower utilization changes nothing: not worth a warning.
        std::cmp::Ordering::Equal if new_util < target => return None,
        std::cmp::Ordering::Equal => format!(
            "{shift}, against a target of {target}%: the HPA stays at {current} replicas only because of \
             its maxReplicas {max}"
        ),
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
            utilization_shift(&hpa(Some(60), 3, 1, 10), &q("500m"), &q("250m"), "cpu").as_deref(),
            Some(
                "CPU request 500m -> 250m doubles measured utilization (60% -> 120% of request): the HPA \
                 will likely scale up from 3 to about 6 replicas"
            )
        );
    }

    #[test]
    fn doubling_the_request_scales_down() {
        let text = utilization_shift(&hpa(Some(60), 6, 1, 10), &q("500m"), &q("1"), "cpu").unwrap();
        assert!(
            text.starts_with("CPU request 500m -> 1 halves measured utilization (60% -> 30% of request)")
        );
        assert!(text.contains("scale down from 6 to about 3 replicas"));
    }

    #[test]
    fn clamped_at_max_is_explained() {
        let text = utilization_shift(&hpa(Some(60), 10, 1, 10), &q("500m"), &q("250m"), "cpu").unwrap();
        assert!(text.ends_with("stays at 10 replicas only because of its maxReplicas 10"));
    }

    #[test]
    fn held_at_min_says_nothing() {
        // 54% -> 36% would scale 3 down to 2, but minReplicas is 3: nothing moves.
        assert_eq!(
            utilization_shift(&hpa(Some(54), 3, 3, 10), &q("500m"), &q("750m"), "cpu"),
            None
        );
    }

    #[test]
    fn small_or_irrelevant_changes_say_nothing() {
        let h = hpa(Some(60), 3, 1, 10);
        assert_eq!(utilization_shift(&h, &q("500m"), &q("520m"), "cpu"), None);
        assert_eq!(utilization_shift(&h, &q("1Gi"), &q("512Mi"), "memory"), None);
        assert!(utilization_shift(&h, &q("500m"), &q("1000m"), "cpu").is_some());
        assert_eq!(utilization_shift(&h, &q("500m"), &q("500m"), "cpu"), None);
        // 30% -> 60%: lands on the target, nothing moves.
        assert_eq!(
            utilization_shift(&hpa(Some(30), 3, 1, 10), &q("500m"), &q("250m"), "cpu"),
            None
        );
    }

    #[test]
    fn unknown_utilization_gives_a_direction_only() {
        let text = utilization_shift(&hpa(None, 3, 1, 10), &q("1"), &q("400m"), "cpu").unwrap();
        assert_eq!(
            text,
            "CPU request 1 -> 400m multiplies measured utilization by 2.5: the HPA (target 60%) may scale up once it measures the new pods"
        );
        let text = utilization_shift(&hpa(Some(60), 3, 1, 10), &q("1"), &q("0"), "cpu").unwrap();
        assert!(text.contains("cannot compute CPU utilization"));
    }
}
