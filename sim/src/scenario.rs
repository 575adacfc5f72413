//! Controller-level knobs of the simulated cluster: pod start delay, HPA sync period, pods that
//! fail, and the load model the metrics controller turns into usage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::profile::Behaviour;

/// How the pods of a workload fail (see [`Scenario::fail_new_pods`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFailure {
    /// The container starts, exits 1, and is restarted with back-off: CrashLoopBackOff.
    CrashLoop,
    /// The image cannot be pulled: ErrImagePull, then ImagePullBackOff.
    ImagePull,
    /// The container is killed for memory (exit 137, OOMKilled), then CrashLoopBackOff.
    OomKilled,
}

/// The load one workload puts on its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// CPU the workload's ready pods share, in millicores.
    pub total_cpu_millis: u64,
    /// Memory each ready pod uses, in bytes.
    pub memory_per_pod_bytes: u64,
}

/// A failure rule for one workload. It binds to the pod template (by its hash) of the first
/// pod created after the rule was set, as a bad image would: a rollback to an earlier template
/// then creates healthy pods again, as it does on a real cluster.
#[derive(Debug, Clone)]
struct FailureRule {
    failure: PodFailure,
    template_hash: Option<String>,
}

#[derive(Debug)]
struct State {
    pod_start_delay: Duration,
    hpa_sync_period: Duration,
    rules: HashMap<String, FailureRule>,
    loads: HashMap<String, Load>,
    /// Failure decided for each pod at its creation, keyed `namespace/name`.
    failing_pods: HashMap<String, PodFailure>,
}

/// Shared, interior-mutable scenario; every method takes `&self`.
#[derive(Debug)]
pub struct Scenario {
    state: Mutex<State>,
    /// Bumped by every change, so that controllers idling between store events notice one.
    generation: AtomicU64,
    /// Fixed for the sim's life: which upstream behaviours the controllers (and the server's
    /// version and metrics routes) imitate.
    behaviour: Behaviour,
}

const MI: u64 = 1024 * 1024;

/// A change of the scenario in progress (see [`Scenario::change`]).
struct Change<'a> {
    guard: Option<std::sync::MutexGuard<'a, State>>,
    generation: &'a AtomicU64,
}

impl std::ops::Deref for Change<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("the guard lives until drop"))
    }
}

impl std::ops::DerefMut for Change<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("the guard lives until drop"))
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.guard.take();
        self.generation.fetch_add(1, Ordering::Release);
    }
}

impl Scenario {
    /// A scenario with the default load model: `orchestrator` shares 900m CPU and uses 700Mi per
    /// pod, `postgres` uses 200m CPU and 600Mi.
    pub fn new(pod_start_delay: Duration, hpa_sync_period: Duration) -> Scenario {
        let mut loads = HashMap::new();
        loads.insert(
            "orchestrator".to_owned(),
            Load {
                total_cpu_millis: 900,
                memory_per_pod_bytes: 700 * MI,
            },
        );
        loads.insert(
            "postgres".to_owned(),
            Load {
                total_cpu_millis: 200,
                memory_per_pod_bytes: 600 * MI,
            },
        );
        Scenario {
            state: Mutex::new(State {
                pod_start_delay,
                hpa_sync_period,
                rules: HashMap::new(),
                loads,
                failing_pods: HashMap::new(),
            }),
            generation: AtomicU64::new(0),
            behaviour: Behaviour::default(),
        }
    }

    /// The same scenario imitating `behaviour` (see [`crate::profile`]).
    #[must_use]
    pub fn with_behaviour(mut self, behaviour: Behaviour) -> Scenario {
        self.behaviour = behaviour;
        self
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// How many changes the scenario has seen: a controller that idles until the store changes
    /// compares it to wake up for a scenario change too.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The state, to change it: counts the change once the lock is released, so a controller
    /// that sees the new generation also sees the new state.
    fn change(&self) -> Change<'_> {
        Change {
            guard: Some(self.lock()),
            generation: &self.generation,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every write is a single field or map update, so a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_pod_start_delay(&self, delay: Duration) {
        self.change().pod_start_delay = delay;
    }

    /// The HPA controller's resync period from its next pass on.
    pub fn set_hpa_sync_period(&self, period: Duration) {
        self.change().hpa_sync_period = period;
    }

    /// Pods created from now on for this workload (deployment or statefulset name) fail this way.
    pub fn fail_new_pods(&self, workload: &str, failure: PodFailure) {
        self.change().rules.insert(
            workload.to_owned(),
            FailureRule {
                failure,
                template_hash: None,
            },
        );
    }

    /// Pods created from now on start normally; pods already failing keep failing.
    pub fn clear_pod_failures(&self) {
        self.change().rules.clear();
    }

    /// Load model: total CPU (millicores) the workload's ready pods share, and memory per pod (bytes).
    pub fn set_load(&self, workload: &str, total_cpu_millis: u64, memory_per_pod_bytes: u64) {
        self.change().loads.insert(
            workload.to_owned(),
            Load {
                total_cpu_millis,
                memory_per_pod_bytes,
            },
        );
    }

    pub fn pod_start_delay(&self) -> Duration {
        self.lock().pod_start_delay
    }

    pub fn hpa_sync_period(&self) -> Duration {
        self.lock().hpa_sync_period
    }

    /// The load of a workload, if one was set.
    pub fn load(&self, workload: &str) -> Option<Load> {
        self.lock().loads.get(workload).copied()
    }

    /// Decides, at a pod's creation, whether it fails, and remembers the decision for the pod.
    pub(crate) fn decide_new_pod(
        &self,
        workload: &str,
        template_hash: &str,
        namespace: &str,
        pod: &str,
    ) -> Option<PodFailure> {
        let mut state = self.lock();
        // A StatefulSet pod reuses its name: an earlier pod's decision must not stick to it.
        state.failing_pods.remove(&format!("{namespace}/{pod}"));
        let rule = state.rules.get_mut(workload)?;
        let bound = rule.template_hash.get_or_insert_with(|| template_hash.to_owned());
        if bound != template_hash {
            return None;
        }
        let failure = rule.failure;
        state.failing_pods.insert(format!("{namespace}/{pod}"), failure);
        Some(failure)
    }

    /// The failure decided for a pod at its creation.
    pub(crate) fn pod_failure(&self, namespace: &str, pod: &str) -> Option<PodFailure> {
        self.lock()
            .failing_pods
            .get(&format!("{namespace}/{pod}"))
            .copied()
    }

    /// Forgets a deleted pod (a new pod with the same name, as StatefulSets make, starts fresh).
    pub(crate) fn forget_pod(&self, namespace: &str, pod: &str) {
        self.lock().failing_pods.remove(&format!("{namespace}/{pod}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_rule_binds_to_the_first_template_it_meets() {
        let scenario = Scenario::new(Duration::from_millis(10), Duration::from_secs(1));
        assert_eq!(scenario.decide_new_pod("web", "aaa", "ns", "web-aaa-1"), None);
        scenario.fail_new_pods("web", PodFailure::CrashLoop);
        assert_eq!(
            scenario.decide_new_pod("web", "bbb", "ns", "web-bbb-1"),
            Some(PodFailure::CrashLoop)
        );
        // A rollback to the earlier template creates healthy pods.
        assert_eq!(scenario.decide_new_pod("web", "aaa", "ns", "web-aaa-2"), None);
        assert_eq!(
            scenario.pod_failure("ns", "web-bbb-1"),
            Some(PodFailure::CrashLoop)
        );
        scenario.forget_pod("ns", "web-bbb-1");
        assert_eq!(scenario.pod_failure("ns", "web-bbb-1"), None);
    }

    #[test]
    fn default_load_model_matches_the_seeded_world() {
        let scenario = Scenario::new(Duration::from_millis(10), Duration::from_secs(1));
        let load = scenario.load("orchestrator").expect("default load");
        assert_eq!(load.total_cpu_millis, 900);
        scenario.set_load("orchestrator", 3000, 100);
        assert_eq!(
            scenario.load("orchestrator").map(|l| l.total_cpu_millis),
            Some(3000)
        );
    }
}
