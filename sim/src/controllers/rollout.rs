//! The pure arithmetic of a Deployment rollout, as kube's deployment controller does it:
//! maxSurge / maxUnavailable resolution and how far the new and old ReplicaSets may move.

use serde_json::Value;

/// Resolves an int-or-percent against `replicas`; percentages round up (`round_up`, as for
/// maxSurge) or down (as for maxUnavailable). `None` for an unparsable value.
pub fn int_or_percent(value: &Value, replicas: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let percent: i64 = value.as_str()?.strip_suffix('%')?.trim().parse().ok()?;
    let scaled = replicas * percent;
    Some(if round_up {
        (scaled + 99).div_euclid(100)
    } else {
        scaled.div_euclid(100)
    })
}

/// (maxSurge, maxUnavailable) of a rolling update; both zero would deadlock, so unavailable
/// becomes 1 then (kube's `ResolveFenceposts`). Defaults are 25% each.
pub fn fenceposts(rolling: &Value, replicas: i64) -> (i64, i64) {
    let default = Value::from("25%");
    let surge_value = rolling
        .get("maxSurge")
        .filter(|v| !v.is_null())
        .unwrap_or(&default);
    let unavailable_value = rolling
        .get("maxUnavailable")
        .filter(|v| !v.is_null())
        .unwrap_or(&default);
    let surge = int_or_percent(surge_value, replicas, true).unwrap_or(0).max(0);
    let unavailable = int_or_percent(unavailable_value, replicas, false)
        .unwrap_or(0)
        .max(0);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The new ReplicaSet's next size during a rolling update (kube's `NewRSNewReplicas`):
/// `all_pods` counts every pod that exists or is about to (per ReplicaSet the larger of
/// spec.replicas and its live pods, so pods waiting for deletion still count).
pub fn new_rs_replicas(replicas: i64, surge: i64, all_pods: i64, new_spec: i64) -> i64 {
    if new_spec >= replicas {
        return replicas;
    }
    let max_total = replicas + surge;
    if all_pods >= max_total {
        return new_spec;
    }
    new_spec + (max_total - all_pods).min(replicas - new_spec)
}

/// How many old pods may go now (kube's `reconcileOldReplicaSets`, both phases): the
/// unhealthy ones first (`old_unhealthy`), then healthy ones while the available count stays
/// at least `replicas - unavailable`. Returns (unhealthy to remove, healthy to remove).
pub fn old_scale_down(
    replicas: i64,
    unavailable: i64,
    all_pods: i64,
    new_unavailable: i64,
    old_unhealthy: i64,
    available: i64,
) -> (i64, i64) {
    let min_available = replicas - unavailable;
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return (0, 0);
    }
    let unhealthy = old_unhealthy.min(max_scaled_down).max(0);
    // Removing unhealthy pods does not lower the available count.
    let healthy = (available - min_available).max(0);
    (unhealthy, healthy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        assert_eq!(int_or_percent(&json!("25%"), 3, true), Some(1));
        assert_eq!(int_or_percent(&json!("25%"), 3, false), Some(0));
        assert_eq!(int_or_percent(&json!("50%"), 5, true), Some(3));
        assert_eq!(int_or_percent(&json!(2), 5, true), Some(2));
        assert_eq!(int_or_percent(&json!("x"), 5, true), None);
    }

    #[test]
    fn fenceposts_default_and_avoid_deadlock() {
        assert_eq!(fenceposts(&json!({}), 4), (1, 1));
        assert_eq!(
            fenceposts(&json!({"maxSurge": 1, "maxUnavailable": 0}), 3),
            (1, 0)
        );
        assert_eq!(
            fenceposts(&json!({"maxSurge": 0, "maxUnavailable": 0}), 3),
            (0, 1)
        );
        assert_eq!(
            fenceposts(&json!({"maxSurge": "0%", "maxUnavailable": "10%"}), 3),
            (0, 1)
        );
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        assert_eq!(new_rs_replicas(3, 1, 3, 0), 1);
        assert_eq!(new_rs_replicas(3, 1, 4, 1), 1, "at max total, wait");
        assert_eq!(new_rs_replicas(3, 1, 3, 1), 2);
        assert_eq!(new_rs_replicas(3, 1, 2, 3), 3);
        assert_eq!(new_rs_replicas(3, 1, 5, 5), 3, "shrinks to replicas when above");
    }

    #[test]
    fn old_pods_go_only_while_availability_holds() {
        // 3 old ready + 1 new not ready: nothing may go with maxUnavailable 0.
        assert_eq!(old_scale_down(3, 0, 4, 1, 0, 3), (0, 0));
        // The new pod is ready: one old pod may go.
        assert_eq!(old_scale_down(3, 0, 4, 0, 0, 4), (0, 1));
        // An unhealthy old pod goes first.
        assert_eq!(old_scale_down(3, 1, 4, 0, 1, 3), (1, 1));
    }
}
