//! Opt-in behaviours of real API servers that the sim's default, idealised cluster lacks:
//! mutating admission (an Autopilot-like resource mutator, LimitRanger), immutable ConfigMaps,
//! `events.k8s.io/v1`, and RBAC evaluated from stored roles and bindings for the kubeconfig's
//! non-admin users. Set at start through [`crate::SimOptions::api`], changed while running
//! through [`crate::Sim::api`] or `POST /sim/api`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::store::Store;

/// Which real-cluster behaviours the API server shows; everything off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiBehaviour {
    /// A mutating admission like GKE Autopilot's `autopilot-default-resources-mutator` (and like
    /// Kyverno mutate policies) on Deployments, StatefulSets (pod template) and Pods.
    pub resource_mutator: Option<ResourceMutator>,
    /// LimitRanger: Pods created in a namespace holding a LimitRange get its container defaults.
    pub limit_ranger: bool,
    /// ConfigMaps with `immutable: true` refuse changes of `data`, `binaryData` and `immutable`.
    pub immutable_configmaps: bool,
    /// `events.k8s.io/v1` is served (discovery, get, list, watch) over the recorded events.
    pub events_v1: bool,
    /// `rbac.authorization.k8s.io/v1` is served, the default roles and bindings are seeded,
    /// and the kubeconfig's users `sim-ns-admin` and `sim-operator` are authorized by them.
    pub rbac: bool,
}

/// The resource mutator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceMutator {
    /// Each container's CPU request is rounded up to a multiple of this (Autopilot: 250m).
    pub cpu_step_millis: u64,
    /// Limits of cpu and memory are set equal to the requests (Autopilot does).
    pub limits_equal_requests: bool,
}

impl Default for ResourceMutator {
    fn default() -> Self {
        Self {
            cpu_step_millis: 250,
            limits_equal_requests: true,
        }
    }
}

/// The running server's behaviours, shared by the handlers; every method takes `&self`.
#[derive(Debug)]
pub struct Api {
    state: Mutex<ApiBehaviour>,
    store: Weak<Store>,
    /// The kubeconfig and its contents with the RBAC users' contexts, written when RBAC turns
    /// on (the Sim writes it without them while RBAC is off, so the default file is unchanged).
    rbac_kubeconfig: OnceLock<(PathBuf, String)>,
}

impl Api {
    /// Seeds the RBAC objects at once when `initial.rbac` is set.
    pub(crate) fn new(store: &Arc<Store>, initial: ApiBehaviour) -> Self {
        let api = Self {
            state: Mutex::new(ApiBehaviour::default()),
            store: Arc::downgrade(store),
            rbac_kubeconfig: OnceLock::new(),
        };
        api.set(initial);
        api
    }

    fn lock(&self) -> MutexGuard<'_, ApiBehaviour> {
        // Each change is one assignment: a poisoned lock still holds a consistent value.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The behaviours in force.
    pub fn get(&self) -> ApiBehaviour {
        self.lock().clone()
    }

    /// Replaces every behaviour. Turning `rbac` on seeds the default roles and bindings that
    /// are missing (see `server::rbac`) and rewrites the kubeconfig with the RBAC users'
    /// contexts; turning it off keeps both.
    pub fn set(&self, behaviour: ApiBehaviour) {
        // Seeded when RBAC turns on only: roles and bindings a test removed stay removed while
        // other switches change. Seeded outside the lock: the store's create hook reads it.
        let turns_on = behaviour.rbac && !self.lock().rbac;
        if turns_on && let Some(store) = self.store.upgrade() {
            crate::server::rbac::seed(&store);
        }
        if turns_on && let Some((path, contents)) = self.rbac_kubeconfig.get() {
            // Best effort: the tokens work either way; a failed write is seen by the client
            // that looks for the contexts.
            let _ = crate::kubeconfig::write(path, contents);
        }
        *self.lock() = behaviour;
    }

    /// Where the Sim wrote its kubeconfig and what it holds with the RBAC users' contexts.
    pub(crate) fn set_rbac_kubeconfig(&self, path: PathBuf, contents: String) {
        let _ = self.rbac_kubeconfig.set((path, contents));
    }

    /// Changes some behaviours: `sim.api().update(|b| b.limit_ranger = true)`.
    pub fn update(&self, change: impl FnOnce(&mut ApiBehaviour)) {
        let mut behaviour = self.get();
        change(&mut behaviour);
        self.set(behaviour);
    }
}
