//! `orchscale-sim`: runs the simulated cluster until SIGINT/SIGTERM, for trying the plugin by
//! hand: `orchscale-sim --kubeconfig /tmp/sim.kubeconfig`, then `export
//! KUBECONFIG=/tmp/sim.kubeconfig` in another shell. The admin endpoint `/sim/...` (see
//! `server::admin`) drives faults and the scenario while it runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchscale_sim::profile::{
    self, Behaviour, CurrentRevisionRule, Flavor, KubernetesVersion, MetricsApi, NodeAutoscaler,
};
use orchscale_sim::{Sim, SimOptions};

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
    /// Extra pods (a `batch-worker` deployment in namespace `batch`), to try the plugin at scale.
    #[arg(long, default_value_t = 0)]
    pods: usize,
    /// Seconds between HPA syncs (kube-controller-manager's default is 15). With HPA
    /// generations (1.36, or --hpa-generation true) the HPA also syncs at once when its spec
    /// changes.
    #[arg(long, default_value_t = 15)]
    hpa_sync_period: u64,
    #[command(flatten)]
    behaviour: BehaviourArgs,
}

/// The cluster profile and the behaviour switches: a profile sets every switch as a real
/// cluster of that version and flavour does; each switch flag then overrides one of them.
/// Without `--kubernetes-version` or `--flavor` the switches start from the idealised sim.
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
    fn behaviour(&self) -> Behaviour {
        let mut b = match (self.kubernetes_version, self.flavor) {
            (None, None) => Behaviour::default(),
            (version, flavor) => profile::profile(
                version.unwrap_or(KubernetesVersion::CURRENT),
                flavor.unwrap_or(Flavor::Plain),
            ),
        };
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
        b
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = SimOptions {
        port: args.port,
        kubeconfig: Some(args.kubeconfig.clone()),
        pod_start_delay: Duration::from_millis(args.pod_start_delay),
        extra_pods: args.pods,
        hpa_sync_period: Duration::from_secs(args.hpa_sync_period.max(1)),
        behaviour: args.behaviour.behaviour(),
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

    fn parse(flags: &[&str]) -> Result<Behaviour, clap::Error> {
        let args = ["orchscale-sim", "--kubeconfig", "/tmp/k"].iter().chain(flags);
        Args::try_parse_from(args).map(|a| a.behaviour.behaviour())
    }

    #[test]
    fn without_a_profile_the_sim_is_the_idealised_one() {
        assert_eq!(parse(&[]).expect("parses"), Behaviour::default());
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
}
