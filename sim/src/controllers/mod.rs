//! The simulated cluster's controllers: async tasks over the store that do what
//! kube-controller-manager, the scheduler, the kubelet and metrics-server do, closely enough for
//! clients to see real status. Each controller lives in its own module; this one only starts them.

pub(crate) mod common;
pub(crate) mod deployment;
mod deployment_status;
mod events;
mod hpa;
mod hpa_math;
mod hpa_metrics;
mod metrics;
mod node_affinity;
mod node_autoscaler;
pub(crate) mod pods;
pub(crate) mod quantity;
mod quota;
pub(crate) mod replicaset;
mod rollout;
mod scheduler;
mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::scenario::Scenario;
use crate::store::Store;
use common::{Pending, Scope, Ticks};

pub use pods::delete_pod;
pub use quantity::{bytes as parse_bytes, cpu_millis as parse_cpu_millis};
pub use quota::admit_pod;

/// Handle on the running controllers; dropping it or calling [`Controllers::stop`] ends every task.
pub struct Controllers {
    tasks: Vec<JoinHandle<()>>,
}

impl Controllers {
    /// Ends every controller task. Passes are synchronous between awaits, so an abort never
    /// leaves a half-written object.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts every controller on the current tokio runtime.
///
/// # Panics
/// When called outside a tokio runtime.
pub fn spawn(store: Arc<Store>, scenario: Arc<Scenario>) -> Controllers {
    let ms = Duration::from_millis;
    let mut deployments = deployment::DeploymentController::new(scenario.behaviour().clone());
    let mut replicasets = replicaset::ReplicaSetController::new(Arc::clone(&scenario));
    let mut statefulsets = statefulset::StatefulSetController::new(Arc::clone(&scenario));
    let mut kubelet = pods::Kubelet::new(Arc::clone(&scenario));
    let mut metrics_server = metrics::MetricsServer::new(Arc::clone(&scenario));
    let scraped = scenario.behaviour().metrics_resolution.is_some();
    let mut autoscaler = hpa::HpaController::new(Arc::clone(&scenario));
    // Passes that visit every pod of the cluster idle between changes (`Ticks::WhenChanged`), so
    // that a big idle cluster costs nothing; the others tick on.
    // The passes say when time-based steps are pending; the idle tick is a safety net.
    let idling = Ticks::WhenChanged { idle: ms(30_000) };
    let loop_of = |resources, period, ticks, pass| {
        let events = store.subscribe();
        tokio::spawn(common::run_loop(
            Arc::clone(&store),
            events,
            resources,
            period,
            ticks,
            Arc::clone(&scenario),
            pass,
        ))
    };
    // The workload controllers and the kubelet visit only the namespaces where something they
    // follow changed (or where time-based steps wait), so that a change costs its namespace's
    // objects, not the cluster's; every namespace on the idle tick.
    let scoped_loop_of = |resources, period, pass: ScopedPass| {
        let events = store.subscribe();
        tokio::spawn(common::run_scoped_loop(
            Arc::clone(&store),
            events,
            resources,
            period,
            ms(30_000),
            Arc::clone(&scenario),
            pass,
        ))
    };
    let node_autoscaler = scenario
        .behaviour()
        .node_autoscaler
        .clone()
        .map(node_autoscaler::NodeAutoscalerController::new);
    let mut tasks = vec![
        scoped_loop_of(
            &["deployments", "replicasets", "pods"],
            ms(100),
            Box::new(move |s: &Store, scope: &Scope| {
                deployments.pass(s, scope);
                rollouts_pending(s)
            }),
        ),
        scoped_loop_of(
            &["replicasets", "pods", "resourcequotas"],
            ms(100),
            Box::new(move |s: &Store, scope: &Scope| {
                replicasets.pass(s, scope);
                becoming_available(s, "replicasets")
            }),
        ),
        loop_of(
            &["pods", "nodes"],
            ms(100),
            idling,
            Box::new(scheduler::pass) as Pass,
        ),
        scoped_loop_of(
            &["pods"],
            ms(50),
            Box::new(move |s: &Store, scope: &Scope| kubelet.pass(s, scope)),
        ),
        scoped_loop_of(
            &["statefulsets", "pods"],
            ms(100),
            Box::new(move |s: &Store, scope: &Scope| {
                statefulsets.pass(s, scope);
                becoming_available(s, "statefulsets")
            }),
        ),
        loop_of(
            &["resourcequotas"],
            ms(250),
            Ticks::Always,
            Box::new(|s: &Store| {
                quota::sync_status(s);
                Pending::Timed
            }),
        ),
        scoped_loop_of(
            &["pods", "nodes"],
            ms(250),
            Box::new(move |s: &Store, scope: &Scope| {
                metrics_server.pass(s, scope);
                // At a scrape resolution, samples come due with time (every pod's).
                if scraped { Scope::All } else { Scope::none() }
            }),
        ),
        loop_of(
            &["horizontalpodautoscalers"],
            ms(50),
            Ticks::Always,
            Box::new(move |s: &Store| {
                autoscaler.pass(s);
                Pending::Timed
            }),
        ),
    ];
    if let Some(mut node_autoscaler) = node_autoscaler {
        tasks.push(loop_of(
            &["pods", "nodes"],
            ms(100),
            idling,
            Box::new(move |s: &Store| {
                node_autoscaler.pass(s);
                Pending::Timed
            }),
        ));
    }
    Controllers { tasks }
}

type Pass = Box<dyn FnMut(&Store) -> Pending + Send>;
type ScopedPass = Box<dyn FnMut(&Store, &Scope) -> Scope + Send>;

fn count(object: &serde_json::Value, pointer: &str) -> i64 {
    object
        .pointer(pointer)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
}

/// The namespaces where a deployment rolls out: its progress deadline and minReadySeconds run
/// on time. A rollout past its deadline waits for a change.
fn rollouts_pending(store: &Store) -> Scope {
    let rolling = store.scan("deployments", None, |d| {
        let wanted = d
            .pointer("/spec/replicas")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1);
        let done = [
            "/status/replicas",
            "/status/updatedReplicas",
            "/status/availableReplicas",
        ]
        .iter()
        .all(|p| count(d, p) == wanted)
            && count(d, "/status/observedGeneration") == count(d, "/metadata/generation");
        let stalled =
            common::condition(d, "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded");
        (!done && !stalled).then(|| common::namespace(d).to_owned())
    });
    Scope::Only(rolling.into_iter().collect())
}

/// The namespaces where ready pods of a ReplicaSet or StatefulSet wait out minReadySeconds
/// before they count as available.
fn becoming_available(store: &Store, resource: &str) -> Scope {
    let waiting = store.scan(resource, None, |o| {
        (count(o, "/status/readyReplicas") != count(o, "/status/availableReplicas"))
            .then(|| common::namespace(o).to_owned())
    });
    Scope::Only(waiting.into_iter().collect())
}

#[cfg(test)]
mod tests;
