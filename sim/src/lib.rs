//! orchscale-sim: a simulated Kubernetes API server on loopback, for the tests,
//! benchmarks and try-it command of kubectl-orchscale.
//!
//! [`Sim::start`] seeds the world ([`seed`]), starts the controllers and an HTTPS server on
//! `127.0.0.1` on a thread of its own, and writes a kubeconfig that points at it. Clients
//! (kube-rs, kubectl) reach it through that kubeconfig only; tests steer it through
//! [`Sim::faults`], [`Sim::scenario`] and [`Sim::api`] (real clusters' admission, RBAC users
//! and `events.k8s.io`, all off by default) and inspect it through [`Sim::store`] and
//! [`Sim::requests`].
//!
//! ```no_run
//! use orchscale_sim::{FaultRule, Sim, SimOptions};
//!
//! let sim = Sim::start(SimOptions::default())?;
//! // Point a client at `sim.kubeconfig()`; the next PATCH of a scale subresource gets a 429.
//! sim.faults().fail_next(FaultRule {
//!     method: Some("PATCH".into()),
//!     resource: Some("deployments/scale".into()),
//!     status: 429,
//!     retry_after: Some(1),
//!     count: 1,
//! });
//! assert!(sim.persisted_writes().is_empty());
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod api_behaviour;
pub mod controllers;
pub mod faults;
pub mod kubeconfig;
pub mod profile;
pub mod prometheus;
pub mod request_log;
pub mod scenario;
pub mod seed;
pub mod server;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use api_behaviour::{Api, ApiBehaviour, ResourceMutator};
pub use faults::{FaultRule, Faults, OutageMode};
pub use profile::{Behaviour, Flavor, KubernetesVersion, Profile};
pub use request_log::LoggedRequest;
pub use scenario::{PodFailure, Scenario};

use request_log::RequestLog;
use store::Store;

/// How a [`Sim`] starts.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// 0: the OS chooses.
    pub port: u16,
    /// `None`: a file in a temporary directory owned (and removed) by the Sim.
    pub kubeconfig: Option<PathBuf>,
    /// From pod creation to Ready.
    pub pod_start_delay: Duration,
    /// Scale knob: pods spread over team namespaces, nodes, finished pods and events (see [`seed`]).
    pub extra_pods: usize,
    /// GPU nodes `gpu-node-N` next to the seeded ones (see [`seed::gpu_node`]); 0 by default.
    pub gpu_nodes: usize,
    pub hpa_sync_period: Duration,
    /// Which upstream behaviours the controllers imitate; the default is the idealised sim,
    /// [`profile::profile`] gives a real cluster's.
    pub behaviour: Behaviour,
    /// Real API servers' behaviours (admission, RBAC users, events.k8s.io), all off by default;
    /// changed while running through [`Sim::api`].
    pub api: ApiBehaviour,
    /// A Prometheus over this usage history: served on a listener of its own
    /// ([`Sim::prometheus_url`]) and through the service proxy of the seeded Service
    /// `monitoring/prometheus-operated`. `None` (the default): no Prometheus, no such Service.
    pub prometheus: Option<prometheus::History>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            port: 0,
            kubeconfig: None,
            pod_start_delay: Duration::from_millis(150),
            extra_pods: 0,
            gpu_nodes: 0,
            hpa_sync_period: Duration::from_secs(1),
            behaviour: Behaviour::default(),
            api: ApiBehaviour::default(),
            prometheus: None,
        }
    }
}

/// A running simulated cluster. Dropping it stops the server and the controllers.
pub struct Sim {
    url: String,
    prometheus_url: Option<String>,
    kubeconfig: PathBuf,
    /// The temporary directory holding the kubeconfig, when the Sim chose the path.
    temp_dir: Option<PathBuf>,
    store: Arc<Store>,
    faults: Arc<Faults>,
    scenario: Arc<Scenario>,
    log: Arc<RequestLog>,
    api: Arc<Api>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn random_token() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

fn temp_kubeconfig_dir() -> PathBuf {
    let unique = format!("orchscale-sim-{}-{}", std::process::id(), &random_token()[..12]);
    std::env::temp_dir().join(unique)
}

impl Sim {
    /// Starts on its own thread with its own tokio runtime (so sync tests can use it);
    /// returns once the server is listening and the kubeconfig is written.
    ///
    /// # Errors
    /// When the port cannot be bound, TLS material cannot be generated, or the kubeconfig
    /// cannot be written.
    pub fn start(options: SimOptions) -> std::io::Result<Sim> {
        let mut store = Store::new();
        if !options.behaviour.hpa_generation {
            // Before 1.36 the HPA registry strategy keeps no generation (kubernetes#138228).
            store.untrack_generation("horizontalpodautoscalers");
        }
        let store = Arc::new(store);
        seed::seed(&store, options.extra_pods)
            .and_then(|()| seed::gpu_nodes(&store, options.gpu_nodes))
            .map_err(|e| std::io::Error::other(format!("seeding the store: {e:?}")))?;
        if options.prometheus.is_some() {
            seed::seed_prometheus_service(&store)
                .map_err(|e| std::io::Error::other(format!("seeding the store: {e:?}")))?;
        }
        let prometheus = options
            .prometheus
            .as_ref()
            .map(|history| Arc::new(prometheus::Prometheus::new(history)));
        let prometheus_listener = match &prometheus {
            Some(_) => {
                let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
                listener.set_nonblocking(true)?;
                Some(listener)
            }
            None => None,
        };
        let prometheus_url = match &prometheus_listener {
            Some(listener) => Some(format!("http://127.0.0.1:{}", listener.local_addr()?.port())),
            None => None,
        };
        let faults = Arc::new(Faults::default());
        let scenario = Arc::new(
            Scenario::new(options.pod_start_delay, options.hpa_sync_period).with_behaviour(options.behaviour),
        );
        let log = Arc::new(RequestLog::default());
        let tls = server::tls::generate()?;
        let token = random_token();
        let api = Arc::new(Api::new(&store, options.api.clone()));
        let (hook_api, hook_store) = (Arc::downgrade(&api), Arc::downgrade(&store));
        store.set_create_hook(Box::new(move |key, object| {
            if let (Some(api), Some(store)) = (hook_api.upgrade(), hook_store.upgrade()) {
                server::admission::admit_created_pod(&api.get(), &store, key, object);
            }
        }));
        let rbac_tokens: Vec<(&'static str, String)> = server::rbac::USERS
            .iter()
            .map(|user| (*user, random_token()))
            .collect();

        // Bound here, synchronously, so the port is known (and errors reported) before returning;
        // the runtime lives only on the sim's thread, so a caller inside a runtime is fine.
        let listener = std::net::TcpListener::bind(("127.0.0.1", options.port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let url = format!("https://127.0.0.1:{port}");
        let app = Arc::new(server::App {
            store: store.clone(),
            faults: faults.clone(),
            scenario: scenario.clone(),
            log: log.clone(),
            api: api.clone(),
            token: token.clone(),
            rbac_tokens: rbac_tokens.clone(),
            server_address: format!("127.0.0.1:{port}"),
            prometheus: prometheus.clone(),
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let (controllers_store, controllers_scenario) = (store.clone(), scenario.clone());
        let server_config = tls.server_config.clone();
        let thread = std::thread::Builder::new()
            .name("orchscale-sim".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("orchscale-sim-worker")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let controllers = controllers::spawn(controllers_store, controllers_scenario);
                    let (prometheus_stop_tx, prometheus_stop_rx) = oneshot::channel::<()>();
                    if let (Some(listener), Some(prometheus)) = (prometheus_listener, prometheus) {
                        let listener = match tokio::net::TcpListener::from_std(listener) {
                            Ok(listener) => listener,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let stop = async {
                            let _ = prometheus_stop_rx.await;
                        };
                        tokio::spawn(prometheus::serve(listener, prometheus, stop));
                    }
                    let _ = ready_tx.send(Ok(()));
                    let stop = async {
                        let _ = shutdown_rx.await;
                    };
                    server::serve(listener, server_config, app, stop).await;
                    let _ = prometheus_stop_tx.send(());
                    controllers.stop();
                });
                // Dropping the runtime here ends every connection and watch stream.
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        let ready = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the sim thread ended before serving")));
        if let Err(e) = ready {
            let _ = thread.join();
            return Err(e);
        }

        let (kubeconfig, temp_dir) = match options.kubeconfig {
            Some(path) => (path, None),
            None => {
                let dir = temp_kubeconfig_dir();
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        let mut sim = Sim {
            url,
            prometheus_url,
            kubeconfig,
            temp_dir,
            store,
            faults,
            scenario,
            log,
            api,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };
        // The listener is bound, so the kubeconfig is written only once the server answers.
        // The RBAC users' contexts are in the file only while RBAC is on, so the default
        // kubeconfig is unchanged; turning RBAC on later rewrites it.
        let with_rbac = kubeconfig::render(&sim.url, &tls.ca_pem, &token, &rbac_tokens);
        let contents = if options.api.rbac {
            with_rbac.clone()
        } else {
            kubeconfig::render(&sim.url, &tls.ca_pem, &token, &[])
        };
        sim.api.set_rbac_kubeconfig(sim.kubeconfig.clone(), with_rbac);
        if let Err(e) = kubeconfig::write(&sim.kubeconfig, &contents) {
            sim.stop();
            return Err(e);
        }
        Ok(sim)
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT` of the simulated Prometheus, when [`SimOptions::prometheus`] set one.
    pub fn prometheus_url(&self) -> Option<&str> {
        self.prometheus_url.as_deref()
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// HTTP-level faults, RBAC denials and the health status.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Real API servers' behaviours: admission, immutable ConfigMaps, events.k8s.io, RBAC users.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Controller-level knobs.
    pub fn scenario(&self) -> &Arc<Scenario> {
        &self.scenario
    }

    /// Every request, in the order they were answered (the newest 200,000 in a long session).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.all()
    }

    /// Response body bytes the sim has sent for logged requests, watch streams included: what
    /// clients downloaded (a benchmark's "bytes").
    pub fn bytes_sent(&self) -> u64 {
        self.log.bytes_sent()
    }

    /// Requests that persisted (or tried to persist) something: every method but GET/HEAD,
    /// excluding `dryRun=All` and SelfSubjectAccessReview/SubjectAccessReview creates.
    pub fn persisted_writes(&self) -> Vec<LoggedRequest> {
        self.log
            .all()
            .into_iter()
            .filter(LoggedRequest::is_persisted_write)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.log.clear();
    }

    fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl std::fmt::Debug for Sim {
    // Hand-written so the token never shows up in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("url", &self.url)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}
