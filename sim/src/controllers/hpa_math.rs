//! The pure replica arithmetic of the HorizontalPodAutoscaler (kube's replica calculator and
//! behavior stabilization), kept apart from the store so it can be tested on numbers.

use std::time::{Duration, Instant};

/// Usage ratios within 10% of 1.0 do not scale (kube's default tolerance).
pub const TOLERANCE: f64 = 0.1;

/// Replicas one Resource metric asks for. `ready` holds (usage, per-pod reference) of the pods
/// with metrics: the reference is the pod's request for Utilization targets (`target_percent`
/// the averageUtilization), or the averageValue for AverageValue targets (`target_percent` 100).
/// `unready` pods have no metrics: they are ignored when scaling down and count as using nothing
/// when scaling up (kube's rebalancing of unready pods). Returns (replicas, utilization percent).
pub fn replicas_for(
    current: i64,
    ready: &[(i128, i128)],
    unready_refs: &[i128],
    target_percent: i64,
) -> (i64, i64) {
    let usage: i128 = ready.iter().map(|s| s.0).sum();
    let reference: i128 = ready.iter().map(|s| s.1).sum();
    if reference <= 0 || target_percent <= 0 || ready.is_empty() {
        return (current, 0);
    }
    let utilization = i64::try_from(usage * 100 / reference).unwrap_or(i64::MAX);
    let ratio = utilization as f64 / target_percent as f64;
    let ready_count = ready.len() as f64;
    if unready_refs.is_empty() || ratio <= 1.0 {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return (current, utilization);
        }
        return ((ratio * ready_count).ceil() as i64, utilization);
    }
    // Scaling up with unready pods: they count at zero usage, and the scale-up must survive that.
    let padded_reference = reference + unready_refs.iter().sum::<i128>();
    let new_ratio = (usage * 100 / padded_reference) as f64 / target_percent as f64;
    if (1.0 - new_ratio).abs() <= TOLERANCE || new_ratio < 1.0 {
        return (current, utilization);
    }
    let replicas = (new_ratio * (ready_count + unready_refs.len() as f64)).ceil() as i64;
    (replicas.max(current), utilization)
}

/// A past recommendation, for the stabilization windows.
#[derive(Debug, Clone, Copy)]
pub struct Recommendation {
    pub at: Instant,
    pub replicas: i64,
}

/// Applies the stabilization windows (kube's `stabilizeRecommendationWithBehaviors`): a scale-up
/// goes only as high as the lowest recommendation within the up window, a scale-down only as
/// low as the highest recommendation within the down window. `history` must already hold the
/// current recommendation.
pub fn stabilize(
    current: i64,
    history: &[Recommendation],
    now: Instant,
    up_window: Duration,
    down_window: Duration,
) -> i64 {
    let within = |r: &&Recommendation, window: Duration| now.duration_since(r.at) <= window;
    let up = history
        .iter()
        .filter(|r| within(r, up_window))
        .map(|r| r.replicas)
        .min();
    let down = history
        .iter()
        .filter(|r| within(r, down_window))
        .map(|r| r.replicas)
        .max();
    let mut recommendation = current;
    if let Some(up) = up
        && recommendation < up
    {
        recommendation = up;
    }
    if let Some(down) = down
        && recommendation > down
    {
        recommendation = down;
    }
    recommendation
}

/// The default scale-up rate (100% or 4 pods per period, whichever is more).
pub fn scale_up_limit(current: i64) -> i64 {
    (current * 2).max(current + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilization_drives_replicas_with_tolerance() {
        // 3 pods at 300m of 500m = 60% against 70%: ratio 0.857, scale down to ceil(2.57) = 3.
        let pods = [(300, 500), (300, 500), (300, 500)];
        assert_eq!(replicas_for(3, &pods, &[], 70), (3, 60));
        // 1000m each = 200%: ceil(3 * 200/70) = 9.
        let hot = [(1000, 500), (1000, 500), (1000, 500)];
        assert_eq!(replicas_for(3, &hot, &[], 70), (9, 200));
        // 66% against 70% is within the 10% tolerance.
        let near = [(330, 500), (330, 500)];
        assert_eq!(replicas_for(2, &near, &[], 70).0, 2);
        // 20% against 70%: down to ceil(3 * 0.2857) = 1.
        let cold = [(100, 500), (100, 500), (100, 500)];
        assert_eq!(replicas_for(3, &cold, &[], 70).0, 1);
    }

    #[test]
    fn unready_pods_damp_a_scale_up() {
        let hot = [(400, 500), (400, 500)];
        // 80% vs 70% with two unready pods counted as zero: 40% -> below target, no scale.
        assert_eq!(replicas_for(4, &hot, &[500, 500], 70).0, 4);
        let very_hot = [(1000, 500), (1000, 500)];
        // 100% after padding: ceil(4 * 100/70) = 6.
        assert_eq!(replicas_for(4, &very_hot, &[500, 500], 70).0, 6);
    }

    #[test]
    fn average_value_targets_use_the_value_as_reference() {
        // 3 pods using 900Mi each against an averageValue of 600Mi: ceil(3 * 1.5) = 5.
        let pods = [(900, 600), (900, 600), (900, 600)];
        assert_eq!(replicas_for(3, &pods, &[], 100).0, 5);
    }

    #[test]
    fn scale_down_waits_for_the_window_and_scale_up_does_not() {
        let now = Instant::now();
        let earlier = now.checked_sub(Duration::from_secs(60)).unwrap_or(now);
        let history = [
            Recommendation {
                at: earlier,
                replicas: 6,
            },
            Recommendation { at: now, replicas: 3 },
        ];
        let window = Duration::from_secs(300);
        assert_eq!(stabilize(6, &history, now, Duration::ZERO, window), 6);
        let short = Duration::from_secs(30);
        assert_eq!(stabilize(6, &history, now, Duration::ZERO, short), 3);
        let up = [Recommendation { at: now, replicas: 9 }];
        assert_eq!(stabilize(3, &up, now, Duration::ZERO, window), 9);
        assert_eq!(scale_up_limit(3), 7);
        assert_eq!(scale_up_limit(10), 20);
    }
}
