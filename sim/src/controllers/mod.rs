//! The simulated cluster's controllers: async tasks over the store that do what
//! kube-controller-manager, the scheduler, the kubelet and metrics-server do, closely enough for
//! clients to see real status. Each controller lives in its own module; this one only starts them.

mod common;
mod deployment;
mod deployment_status;
mod events;
mod hpa;
mod hpa_math;
mod hpa_metrics;
mod metrics;
mod node_autoscaler;
mod pods;
pub(crate) mod quantity;
mod quota;
mod replicaset;
mod rollout;
mod scheduler;
mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::scenario::Scenario;
use crate::store::Store;

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
    let mut autoscaler = hpa::HpaController::new(Arc::clone(&scenario));
    let loop_of = |resources, period, pass| {
        let events = store.subscribe();
        tokio::spawn(common::run_loop(
            Arc::clone(&store),
            events,
            resources,
            period,
            pass,
        ))
    };
    let node_autoscaler = scenario
        .behaviour()
        .node_autoscaler
        .clone()
        .map(node_autoscaler::NodeAutoscalerController::new);
    let mut tasks = vec![
        loop_of(
            &["deployments", "replicasets", "pods"],
            ms(100),
            Box::new(move |s: &Store| deployments.pass(s)) as Pass,
        ),
        loop_of(
            &["replicasets", "pods", "resourcequotas"],
            ms(100),
            Box::new(move |s: &Store| replicasets.pass(s)),
        ),
        loop_of(&["pods", "nodes"], ms(100), Box::new(scheduler::pass)),
        loop_of(&["pods"], ms(50), Box::new(move |s: &Store| kubelet.pass(s))),
        loop_of(
            &["statefulsets", "pods"],
            ms(100),
            Box::new(move |s: &Store| statefulsets.pass(s)),
        ),
        loop_of(&["resourcequotas"], ms(250), Box::new(quota::sync_status)),
        loop_of(&[], ms(250), Box::new(move |s: &Store| metrics_server.pass(s))),
        loop_of(
            &["horizontalpodautoscalers"],
            ms(50),
            Box::new(move |s: &Store| autoscaler.pass(s)),
        ),
    ];
    if let Some(mut node_autoscaler) = node_autoscaler {
        tasks.push(loop_of(
            &["pods", "nodes"],
            ms(100),
            Box::new(move |s: &Store| node_autoscaler.pass(s)),
        ));
    }
    Controllers { tasks }
}

type Pass = Box<dyn FnMut(&Store) + Send>;

#[cfg(test)]
mod tests;
