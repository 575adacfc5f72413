//! `orchscale-sim`: runs the simulated cluster until SIGINT/SIGTERM, for trying the plugin by
//! hand: `orchscale-sim --kubeconfig /tmp/sim.kubeconfig`, then `export
//! KUBECONFIG=/tmp/sim.kubeconfig` in another shell. The admin endpoint `/sim/...` (see
//! `server::admin`) drives faults and the scenario while it runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchscale_sim::profile::{
    self, Behaviour, CurrentRevisionRule, Flavor, KubernetesVersion, MetricsApi, NodeAutoscaler, Profile,
};
use orchscale_sim::{ApiBehaviour, Sim, SimOptions};

/// Simulated Kubernetes API server for kubectl-orchscale.
#[derive(Debug, Parser)]
#[command(name = "orchscale-sim", version)]
struct Args {
    /// Where to write the kubeconfig that points at the sim.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Port on 127.0.0.1; 0 lets the OS choose.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Milliseconds from pod creation to Ready.
    #[arg(long, default_value_t = 150)]
    pod_start_delay: u64,
    /// Extra pods spread as on a big cluster (team namespaces of 1,000, batch nodes of 100,
    /// finished Job pods, events), seeded running, to try the plugin at scale (up to 100,000).
    #[arg(long, default_value_t = 0)]
    pods: usize,
    /// GPU nodes (`gpu-node-N`: 8 CPU, 32Gi, allocatable `nvidia.com/gpu: 4`, untainted) next
    /// to the three seeded nodes, for trying `resources --limits nvidia.com/gpu=1`.
    #[arg(long, default_value_t = 0)]
    gpu_nodes: usize,
    /// Seconds between HPA syncs (kube-controller-manager's default is 15). With HPA
    /// generations (1.36, or --hpa-generation true) the HPA also syncs at once when its spec
    /// changes.
    #[arg(long, default_value_t = 15)]
    hpa_sync_period: u64,
    /// Serve a Prometheus over a synthetic usage history this long (`7d` when given without a
    /// value; `1h` is too thin to recommend from): a diurnal curve with a weekly peak and
    /// OOMKills, on a listener of its own and through the service proxy of
    /// `monitoring/prometheus-operated`.
    #[arg(long, value_name = "LENGTH", num_args = 0..=1, default_missing_value = "7d",
          value_parser = parse_history_length)]
    prometheus: Option<Duration>,
    #[command(flatten)]
    behaviour: BehaviourArgs,
    #[command(flatten)]
    api: ApiFlags,
}

impl Args {
    /// The profile's switches (the idealised sim's without `--kubernetes-version` or
    /// `--flavor`), then each flag's override.
    fn profile(&self) -> Profile {
        let mut profile = match (self.behaviour.kubernetes_version, self.behaviour.flavor) {
            (None, None) => Profile::default(),
            (version, flavor) => profile::profile(
                version.unwrap_or(KubernetesVersion::CURRENT),
                flavor.unwrap_or(Flavor::Plain),
            ),
        };
        self.behaviour.apply(&mut profile.behaviour);
        self.api.apply(&mut profile.api);
        profile
    }
}

/// The cluster profile and the controllers' behaviour switches: a profile sets every switch (and
/// the API server's, see [`ApiFlags`]) as a real cluster of that version and flavour does; each
/// switch flag then overrides one of them. Without `--kubernetes-version` or `--flavor` the
/// switches start from the idealised sim.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Cluster profile")]
struct BehaviourArgs {
    /// Kubernetes version to imitate, 1.27 .. 1.36 (e.g. 1.33); /version answers it.
    #[arg(long, value_parser = clap::value_parser!(KubernetesVersion))]
    kubernetes_version: Option<KubernetesVersion>,
    /// plain, eks-like, gke-autopilot-like or aks-like (the version defaults to 1.33).
    #[arg(long, value_parser = clap::value_parser!(Flavor))]
    flavor: Option<Flavor>,
    /// HPAs carry metadata.generation and status.observedGeneration and react to a spec change
    /// at once (1.36); false: neither, and a change waits for the next HPA sync.
    #[arg(long)]
    hpa_generation: Option<bool>,
    /// A pure scale keeps Progressing=True/NewReplicaSetAvailable (never ProgressDeadlineExceeded).
    #[arg(long)]
    scale_keeps_progress_complete: Option<bool>,
    /// Deleted pods stay Terminating for their terminationGracePeriodSeconds.
    #[arg(long)]
    graceful_deletion: Option<bool>,
    /// Milliseconds: upper bound of a terminating pod's grace period.
    #[arg(long)]
    grace_period_cap_ms: Option<u64>,
    /// ReplicaSets and Deployments report status.terminatingReplicas.
    #[arg(long)]
    terminating_replicas: Option<bool>,
    /// A node autoscaler adds nodes for Unschedulable pods (TriggeredScaleUp, then a node).
    #[arg(long)]
    node_autoscaler: Option<bool>,
    /// Milliseconds from TriggeredScaleUp to the new node.
    #[arg(long)]
    scale_up_delay_ms: Option<u64>,
    /// Most nodes the autoscaled node group may reach.
    #[arg(long)]
    max_nodes: Option<usize>,
    /// When a StatefulSet's currentRevision moves: all-updated, rolling-update-only or
    /// any-strategy-when-ready.
    #[arg(long, value_parser = parse_revision_rule)]
    current_revision: Option<CurrentRevisionRule>,
    /// metrics.k8s.io: available, absent (404, not in discovery) or unavailable (503).
    #[arg(long, value_parser = parse_metrics_api)]
    metrics_api: Option<MetricsApi>,
    /// CPU usage in nanocores (253011429n), as metrics-server reports it.
    #[arg(long)]
    metrics_nanocores: Option<bool>,
    /// Milliseconds: metrics-server's resolution (no sample for a pod younger than this); 0: none.
    #[arg(long)]
    metrics_resolution_ms: Option<u64>,
}

fn parse_revision_rule(text: &str) -> Result<CurrentRevisionRule, String> {
    match text {
        "all-updated" => Ok(CurrentRevisionRule::AllUpdated),
        "rolling-update-only" => Ok(CurrentRevisionRule::RollingUpdateOnly),
        "any-strategy-when-ready" => Ok(CurrentRevisionRule::AnyStrategyWhenReady),
        _ => Err("expected all-updated, rolling-update-only or any-strategy-when-ready".to_owned()),
    }
}

fn parse_metrics_api(text: &str) -> Result<MetricsApi, String> {
    match text {
        "available" => Ok(MetricsApi::Available),
        "absent" => Ok(MetricsApi::Absent),
        "unavailable" => Ok(MetricsApi::Unavailable),
        _ => Err("expected available, absent or unavailable".to_owned()),
    }
}

impl BehaviourArgs {
    /// Overrides the switches of `b` whose flags were given.
    fn apply(&self, b: &mut Behaviour) {
        let ms = Duration::from_millis;
        set(&mut b.hpa_generation, self.hpa_generation);
        set(
            &mut b.scale_keeps_progress_complete,
            self.scale_keeps_progress_complete,
        );
        set(&mut b.graceful_deletion, self.graceful_deletion);
        set(&mut b.terminating_replicas, self.terminating_replicas);
        set(&mut b.metrics_nanocores, self.metrics_nanocores);
        set(&mut b.current_revision, self.current_revision);
        set(&mut b.metrics_api, self.metrics_api);
        if let Some(cap) = self.grace_period_cap_ms {
            b.grace_period_cap = Some(ms(cap));
        }
        if let Some(resolution) = self.metrics_resolution_ms {
            b.metrics_resolution = (resolution > 0).then(|| ms(resolution));
        }
        match self.node_autoscaler {
            Some(false) => b.node_autoscaler = None,
            Some(true) if b.node_autoscaler.is_none() => {
                b.node_autoscaler = Some(NodeAutoscaler {
                    node_group: "node-group".to_owned(),
                    provision_delay: Duration::from_secs(60),
                    max_nodes: 10,
                });
            }
            _ => {}
        }
        if let Some(autoscaler) = &mut b.node_autoscaler {
            if let Some(delay) = self.scale_up_delay_ms {
                autoscaler.provision_delay = ms(delay);
            }
            if let Some(max) = self.max_nodes {
                autoscaler.max_nodes = max;
            }
        }
    }
}

/// Real API servers' behaviours: off without a profile, as the profile's cluster has them with
/// one; each flag overrides one (`--events-v1` alone is `--events-v1=true`). `POST /sim/api`
/// changes them while running.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "API server behaviours")]
struct ApiFlags {
    /// An Autopilot-like mutating admission: CPU requests rounded up to a step, limits set to
    /// requests, with a Warning header (on with --flavor gke-autopilot-like).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    resource_mutator: Option<bool>,
    /// The resource mutator's CPU step in millicores [default: 250].
    #[arg(long)]
    resource_mutator_cpu_step: Option<u64>,
    /// The resource mutator leaves limits alone (only rounds CPU requests).
    #[arg(long)]
    resource_mutator_keep_limits: bool,
    /// LimitRanger: Pods get the container defaults of their namespace's LimitRanges.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    limit_ranger: Option<bool>,
    /// ConfigMaps with `immutable: true` refuse data changes (422).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    immutable_configmaps: Option<bool>,
    /// Serve events.k8s.io/v1 over the recorded events.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    events_v1: Option<bool>,
    /// RBAC for the kubeconfig's users sim-ns-admin and sim-operator (roles and bindings seeded).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    rbac: Option<bool>,
}

impl ApiFlags {
    /// Overrides the behaviours of `api` whose flags were given.
    fn apply(&self, api: &mut ApiBehaviour) {
        if let Some(on) = self.resource_mutator {
            api.resource_mutator = on.then(|| api.resource_mutator.unwrap_or_default());
        }
        if let Some(mutator) = &mut api.resource_mutator {
            if let Some(step) = self.resource_mutator_cpu_step {
                mutator.cpu_step_millis = step;
            }
            if self.resource_mutator_keep_limits {
                mutator.limits_equal_requests = false;
            }
        }
        set(&mut api.limit_ranger, self.limit_ranger);
        set(&mut api.immutable_configmaps, self.immutable_configmaps);
        set(&mut api.events_v1, self.events_v1);
        set(&mut api.rbac, self.rbac);
    }
}

fn parse_history_length(text: &str) -> Result<Duration, String> {
    orchscale_sim::prometheus::promql::parse_duration(text).map(Duration::from_secs)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let profile = args.profile();
    let options = SimOptions {
        port: args.port,
        kubeconfig: Some(args.kubeconfig.clone()),
        pod_start_delay: Duration::from_millis(args.pod_start_delay),
        extra_pods: args.pods,
        gpu_nodes: args.gpu_nodes,
        hpa_sync_period: Duration::from_secs(args.hpa_sync_period.max(1)),
        behaviour: profile.behaviour,
        api: profile.api,
        prometheus: args
            .prometheus
            .map(orchscale_sim::prometheus::History::with_length),
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("orchscale-sim: cannot wait for signals");
        return ExitCode::FAILURE;
    };
    // The handlers are in place before the usage line: a SIGTERM sent as soon as it is read
    // must stop the sim cleanly, not kill it.
    let stop = {
        let _context = runtime.enter();
        StopSignals::install()
    };
    let sim = match Sim::start(options) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("orchscale-sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "orchscale-sim: serving {}; export KUBECONFIG={}",
        sim.url(),
        args.kubeconfig.display()
    );
    if let Some(url) = sim.prometheus_url() {
        eprintln!("orchscale-sim: Prometheus at {url} (and through services/prometheus-operated:9090/proxy)");
    }
    runtime.block_on(stop.wait());
    drop(sim);
    ExitCode::SUCCESS
}

/// SIGINT and SIGTERM, listened for from `install` on.
struct StopSignals {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// Registers the handlers now; must run inside a tokio runtime.
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals =
                signal(SignalKind::interrupt()).and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
            StopSignals {
                signals: signals.ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut interrupt, mut terminate)) = self.signals {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchscale_sim::ResourceMutator;

    fn parse_profile(flags: &[&str]) -> Result<Profile, clap::Error> {
        let args = ["orchscale-sim", "--kubeconfig", "/tmp/k"].iter().chain(flags);
        Args::try_parse_from(args).map(|a| a.profile())
    }

    fn parse(flags: &[&str]) -> Result<Behaviour, clap::Error> {
        parse_profile(flags).map(|p| p.behaviour)
    }

    fn parse_api(flags: &[&str]) -> ApiBehaviour {
        parse_profile(flags).expect("parses").api
    }

    #[test]
    fn without_a_profile_the_sim_is_the_idealised_one() {
        assert_eq!(parse_profile(&[]).expect("parses"), Profile::default());
        assert_eq!(parse_api(&[]), ApiBehaviour::default(), "every API behaviour off");
    }

    #[test]
    fn a_profile_sets_the_switches_and_each_flag_overrides_one() {
        let b = parse(&[
            "--flavor",
            "eks-like",
            "--scale-up-delay-ms",
            "500",
            "--hpa-generation",
            "true",
        ])
        .expect("parses");
        assert_eq!(
            b.version,
            Some(KubernetesVersion::CURRENT),
            "a flavor alone is 1.33"
        );
        assert!(b.hpa_generation, "overridden");
        assert!(b.graceful_deletion, "from the profile");
        let autoscaler = b.node_autoscaler.expect("eks-like");
        assert_eq!(autoscaler.provision_delay, Duration::from_millis(500));
        let b = parse(&[
            "--kubernetes-version",
            "1.36",
            "--metrics-api",
            "unavailable",
            "--metrics-resolution-ms",
            "0",
            "--current-revision",
            "all-updated",
        ])
        .expect("parses");
        assert_eq!(b.version.map(KubernetesVersion::minor), Some(36));
        assert_eq!(b.metrics_api, MetricsApi::Unavailable);
        assert_eq!(b.metrics_resolution, None);
        assert_eq!(b.current_revision, CurrentRevisionRule::AllUpdated);
        assert!(b.node_autoscaler.is_none(), "plain");
    }

    #[test]
    fn unsupported_versions_and_flavors_are_refused() {
        assert!(parse(&["--kubernetes-version", "1.26"]).is_err());
        assert!(parse(&["--kubernetes-version", "1.37"]).is_err());
        assert!(parse(&["--flavor", "openshift"]).is_err());
    }

    #[test]
    fn api_flags_make_the_behaviour() {
        assert_eq!(
            parse_api(&[
                "--resource-mutator",
                "--resource-mutator-cpu-step",
                "100",
                "--resource-mutator-keep-limits",
                "--limit-ranger",
                "--immutable-configmaps",
                "--events-v1",
                "--rbac",
            ]),
            ApiBehaviour {
                resource_mutator: Some(ResourceMutator {
                    cpu_step_millis: 100,
                    limits_equal_requests: false,
                }),
                limit_ranger: true,
                immutable_configmaps: true,
                events_v1: true,
                rbac: true,
            }
        );
    }

    #[test]
    fn a_profile_sets_the_api_behaviours_and_flags_override_them() {
        let api = parse_api(&["--flavor", "gke-autopilot-like"]);
        assert_eq!(api.resource_mutator, Some(ResourceMutator::default()));
        assert!(api.events_v1 && !api.rbac);
        let api = parse_api(&[
            "--flavor",
            "gke-autopilot-like",
            "--resource-mutator=false",
            "--events-v1",
            "false",
            "--rbac",
        ]);
        assert_eq!(api.resource_mutator, None);
        assert!(!api.events_v1 && api.rbac);
        let api = parse_api(&[
            "--kubernetes-version",
            "1.30",
            "--resource-mutator-cpu-step",
            "500",
        ]);
        assert_eq!(api.resource_mutator, None, "plain: no mutator, whatever its step");
        assert!(api.events_v1);
    }
}
