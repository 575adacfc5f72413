//! How far a rollout is and when it will be done, as pure functions over the controller's
//! counts and the times pods turned over: what the progress bar and the plain lines show.
//!
//! The measure follows what `kubectl rollout status` waits for (kubectl
//! `pkg/polymorphichelpers/rollout_status.go`, `DeploymentStatusViewer.Status`): once the
//! controller has observed the spec, (1) `updatedReplicas` reaches `spec.replicas` ("N out of D
//! new replicas have been updated"), (2) no replica is left beyond the updated ones ("N old
//! replicas are pending termination") and (3) the updated replicas are available ("N of D updated
//! replicas are available"). Ready pods alone say nothing: with `maxUnavailable: 0` every pod
//! stays Ready through a rolling restart. A StatefulSet is judged the same way on its update
//! revision (`StatefulSetStatusViewer.Status` waits for ready replicas, then updated ones).
//!
//! Progress is counted in steps: each desired replica has two (updated, then available), and
//! each pod to remove (old template, or beyond the count on a scale-down) has one, its going.
//! The bar is full exactly when every step is done, which is when the rollout is complete.

use std::time::{Duration, Instant};

use crate::health::Counts;

/// Where a rollout stands, per phase, every count within its total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Steps {
    /// spec.replicas.
    pub(crate) desired: i32,
    /// Replicas of the current template, at most `desired`.
    pub(crate) updated: i32,
    /// Available replicas of the current template, at most `desired`.
    pub(crate) available: i32,
    /// Replicas of an older template still to remove (kubectl: "old replicas are pending
    /// termination").
    pub(crate) old: i32,
    /// Replicas of the current template beyond `desired` still to remove (a scale-down).
    pub(crate) surplus: i32,
    /// Steps done, of [`Steps::total`].
    pub(crate) done: u64,
    pub(crate) total: u64,
}

impl Steps {
    /// Every step is done: the rollout is complete.
    #[cfg(test)]
    fn complete(&self) -> bool {
        self.done == self.total
    }

    /// Pods still to come up or to go.
    pub(crate) fn remaining(&self) -> i32 {
        (self.desired - self.available) + self.old + self.surplus
    }

    /// Pods that have come up or gone (the turnovers the pace is measured on), given the most
    /// pods that were ever to remove.
    pub(crate) fn turned_over(&self, most_to_remove: i32) -> i32 {
        self.available + (most_to_remove - self.old - self.surplus).max(0)
    }
}

fn non_negative(n: i32) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(0)
}

/// Measures a rollout from the workload's counts.
///
/// `new_available` is the new ReplicaSet's own `availableReplicas` when the follower knows it;
/// the workload's `availableReplicas` counts old pods too, so without it the updated available
/// ones are bounded from below (all old ones taken as available), never overstated.
/// `most_to_remove` is the most pods that were ever to remove during this follow (the steps of
/// phase 3); a value below the current count is raised to it.
pub(crate) fn measure(counts: &Counts, new_available: Option<i32>, most_to_remove: i32) -> Steps {
    let desired = counts.desired.max(0);
    if !counts.observed {
        // The counts are those of the previous spec: nothing of this rollout is done yet.
        return Steps {
            desired,
            updated: 0,
            available: 0,
            old: 0,
            surplus: 0,
            done: 0,
            total: non_negative(2 * desired).max(1),
        };
    }
    let old = (counts.total - counts.updated).max(0);
    let surplus = (counts.updated - desired).max(0);
    let updated = counts.updated.clamp(0, desired);
    let lower_bound = counts.available - old;
    let available = new_available
        .map_or(lower_bound, |n| n.max(lower_bound))
        .clamp(0, updated);
    let to_remove = old + surplus;
    let most = most_to_remove.max(to_remove);
    let done = non_negative(updated) + non_negative(available) + non_negative(most - to_remove);
    let total = non_negative(2 * desired) + non_negative(most);
    // Nothing to do at all (zero replicas, none to remove) is one step, done: a bar of
    // length zero would have no fraction to show.
    let (done, total) = if total == 0 { (1, 1) } else { (done, total) };
    Steps {
        desired,
        updated,
        available,
        old,
        surplus,
        done,
        total,
    }
}

/// The time left, from the pace of the turnovers seen so far: none before two pods have turned
/// over (one is no pace), nor once the pace says it should be done already (the rollout is
/// slower than it was: no honest figure). The pace is measured from the follow's start, so that
/// two turnovers a moment apart (a new pod available, then the old one it replaces deleted) do
/// not make it look instant.
pub(crate) fn eta(started: Instant, turnovers: &[Instant], remaining: i32, now: Instant) -> Option<Duration> {
    let (&last, n) = (turnovers.last()?, turnovers.len());
    if n < 2 || remaining <= 0 {
        return None;
    }
    let per_pod = last.saturating_duration_since(started).div_f64(n as f64);
    let left = per_pod.mul_f64(f64::from(remaining));
    left.checked_sub(now.saturating_duration_since(last))
        .filter(|d| !d.is_zero())
}

/// What the follower remembers between updates to measure progress and its pace.
#[derive(Debug, Default)]
pub(crate) struct Progression {
    /// The most pods that were ever to remove.
    most_to_remove: i32,
    /// A replica of an older template was seen: this is a rollout, not a pure scale.
    template_replaced: bool,
    /// When the first observed counts came.
    started: Option<Instant>,
    /// The most pods turned over so far (a pod that stops being available is not counted twice).
    high: i32,
    /// When each turnover was seen.
    turnovers: Vec<Instant>,
}

/// One measure with its estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Measured {
    pub(crate) steps: Steps,
    pub(crate) eta: Option<Duration>,
    /// Pods of an older template were seen during this follow (else it is a pure scale, and
    /// there is no "new" ReplicaSet to speak of).
    pub(crate) template_replaced: bool,
}

impl Progression {
    /// Measures `counts` at `now`, recording the pods that turned over since the last call.
    pub(crate) fn observe(&mut self, counts: &Counts, new_available: Option<i32>, now: Instant) -> Measured {
        let steps = measure(counts, new_available, self.most_to_remove);
        if counts.observed {
            self.most_to_remove = self.most_to_remove.max(steps.old + steps.surplus);
            self.template_replaced |= steps.old > 0;
            let turned = steps.turned_over(self.most_to_remove);
            let started = *self.started.get_or_insert_with(|| {
                // What had turned over before the follow started is no part of its pace.
                self.high = turned;
                now
            });
            while self.high < turned {
                self.high += 1;
                self.turnovers.push(now);
            }
            let eta = eta(started, &self.turnovers, steps.remaining(), now);
            return Measured {
                steps,
                eta,
                template_replaced: self.template_replaced,
            };
        }
        Measured {
            steps,
            eta: None,
            template_replaced: self.template_replaced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(desired: i32, updated: i32, available: i32, total: i32) -> Counts {
        Counts {
            desired,
            updated,
            ready: available,
            available,
            total,
            observed: true,
        }
    }

    /// A rolling restart of 3 replicas with maxSurge 1, maxUnavailable 0, as the deployment
    /// controller steps it: every pod stays available, so `available` (all ReplicaSets) is 3 or
    /// 4 throughout, yet the bar fills only as pods are replaced.
    #[test]
    fn a_rolling_restart_with_max_unavailable_zero_is_full_only_at_the_end() {
        // (updated, available of all sets, total, the new set's available)
        let course = [
            (0, 3, 3, None),
            (1, 3, 4, Some(0)),
            (1, 4, 4, Some(1)),
            (1, 3, 3, Some(1)),
            (2, 3, 4, Some(1)),
            (2, 4, 4, Some(2)),
            (2, 3, 3, Some(2)),
            (3, 3, 4, Some(2)),
            (3, 4, 4, Some(3)),
        ];
        let mut most = 0;
        let mut last = 0;
        for (updated, available, total, new) in course {
            let steps = measure(&counts(3, updated, available, total), new, most);
            most = most.max(steps.old + steps.surplus);
            assert!(!steps.complete(), "{steps:?}");
            assert!(steps.done >= last, "never backwards: {steps:?}");
            assert!(steps.available <= steps.updated && steps.updated <= steps.desired);
            last = steps.done;
        }
        let done = measure(&counts(3, 3, 3, 3), Some(3), most);
        assert!(done.complete(), "{done:?}");
        assert_eq!((done.done, done.total), (9, 9));
    }

    #[test]
    fn old_pods_pending_termination_keep_it_from_complete() {
        // kubectl: "1 old replicas are pending termination" although updated = available = 3.
        let steps = measure(&counts(3, 3, 4, 4), Some(3), 3);
        assert_eq!(steps.old, 1);
        assert!(!steps.complete());
        assert_eq!(steps.available, 3, "clamped to the updated replicas");
    }

    #[test]
    fn without_the_new_replica_set_available_is_a_lower_bound() {
        // 4 available of 5 pods, 2 of them old: at least 2 of the 3 new ones are available.
        assert_eq!(measure(&counts(3, 3, 4, 5), None, 0).available, 2);
        // The new set's own count wins when it knows more.
        assert_eq!(measure(&counts(3, 3, 4, 5), Some(3), 0).available, 3);
        // Never below the bound, never above the updated count.
        assert_eq!(measure(&counts(3, 1, 3, 4), Some(0), 0).available, 0);
        assert_eq!(measure(&counts(3, 1, 4, 4), Some(1), 0).available, 1);
    }

    #[test]
    fn a_scale_down_counts_the_pods_to_remove_and_no_count_exceeds_its_total() {
        // 10 -> 5: the ReplicaSet still has 10, 7, then 5 replicas.
        let first = measure(&counts(5, 10, 10, 10), Some(10), 0);
        assert_eq!((first.updated, first.available, first.surplus), (5, 5, 5));
        assert_eq!((first.done, first.total), (10, 15));
        let mid = measure(&counts(5, 7, 7, 7), Some(7), 5);
        assert_eq!((mid.done, mid.total), (13, 15));
        let done = measure(&counts(5, 5, 5, 5), Some(5), 5);
        assert!(done.complete());
        // To zero.
        let zero = measure(&counts(0, 2, 2, 2), Some(2), 0);
        assert_eq!((zero.done, zero.total), (0, 2));
        assert!(measure(&counts(0, 0, 0, 0), None, 2).complete());
        let nothing = measure(&counts(0, 0, 0, 0), None, 0);
        assert_eq!((nothing.done, nothing.total), (1, 1));
    }

    #[test]
    fn a_scale_up_fills_as_new_pods_come_up() {
        let start = measure(&counts(6, 3, 3, 3), Some(3), 0);
        assert_eq!((start.done, start.total), (6, 12));
        let created = measure(&counts(6, 6, 3, 6), Some(3), 0);
        assert_eq!((created.done, created.total), (9, 12));
        assert!(measure(&counts(6, 6, 6, 6), Some(6), 0).complete());
    }

    #[test]
    fn before_the_controller_observes_the_spec_nothing_is_done() {
        let stale = Counts {
            observed: false,
            ..counts(3, 3, 3, 3)
        };
        let steps = measure(&stale, Some(3), 0);
        assert_eq!(steps.done, 0);
        assert!(!steps.complete());
    }

    #[test]
    fn eta_waits_for_two_turnovers_then_follows_the_pace() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(eta(t0, &[], 4, at(1)), None);
        assert_eq!(eta(t0, &[at(10)], 4, at(10)), None, "one turnover is no pace");
        // Two pods in 10 s (a new one available, the old one gone): 5 s each, 4 to go.
        assert_eq!(
            eta(t0, &[at(10), at(10)], 4, at(10)),
            Some(Duration::from_secs(20))
        );
        // The clock moves on: the estimate counts down.
        assert_eq!(
            eta(t0, &[at(10), at(10)], 4, at(15)),
            Some(Duration::from_secs(15))
        );
        // Overdue: no figure rather than a wrong one.
        assert_eq!(eta(t0, &[at(10), at(10)], 4, at(31)), None);
        assert_eq!(eta(t0, &[at(5), at(10)], 0, at(10)), None, "nothing left");
    }

    #[test]
    fn the_progression_records_turnovers_on_a_fake_clock() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut p = Progression::default();
        let m = p.observe(&counts(3, 0, 3, 3), None, at(0));
        assert!(m.template_replaced && m.eta.is_none());
        assert_eq!(m.steps.old, 3);
        // The first new pod: created, then available, then its old pod deleted.
        p.observe(&counts(3, 1, 3, 4), Some(0), at(1));
        let one = p.observe(&counts(3, 1, 4, 4), Some(1), at(4));
        assert_eq!(one.eta, None, "one pod turned over");
        let two = p.observe(&counts(3, 1, 3, 3), Some(1), at(4));
        // Two turnovers in 4 s: 2 s a pod; 2 new pods to come up and 2 old ones to go.
        assert_eq!(two.eta, Some(Duration::from_secs(8)));
        // A pod that stops being available and comes back is not a new turnover.
        p.observe(&counts(3, 1, 2, 3), Some(0), at(5));
        let back = p.observe(&counts(3, 1, 3, 3), Some(1), at(6));
        assert_eq!(back.eta, Some(Duration::from_secs(6)));
        let done = p.observe(&counts(3, 3, 3, 3), Some(3), at(12));
        assert!(done.steps.complete() && done.eta.is_none());
    }

    #[test]
    fn a_pure_scale_is_no_template_change() {
        let mut p = Progression::default();
        let now = Instant::now();
        for c in [counts(5, 3, 3, 3), counts(5, 5, 3, 5), counts(5, 5, 5, 5)] {
            assert!(!p.observe(&c, Some(c.available), now).template_replaced);
        }
        let mut down = Progression::default();
        for c in [counts(2, 5, 5, 5), counts(2, 2, 2, 2)] {
            assert!(!down.observe(&c, Some(c.available), now).template_replaced);
        }
    }
}
