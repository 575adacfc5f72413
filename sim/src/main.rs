//! `orchscale-sim`: runs the simulated cluster until SIGINT/SIGTERM, for trying the plugin by
//! hand: `orchscale-sim --kubeconfig /tmp/sim.kubeconfig`, then `export
//! KUBECONFIG=/tmp/sim.kubeconfig` in another shell. The admin endpoint `/sim/...` (see
//! `server::admin`) drives faults and the scenario while it runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orchscale_sim::{ApiBehaviour, ResourceMutator, Sim, SimOptions};

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
    /// Seconds between HPA syncs (kube-controller-manager's default is 15). The HPA also
    /// syncs at once when its spec changes.
    #[arg(long, default_value_t = 15)]
    hpa_sync_period: u64,
    #[command(flatten)]
    api: ApiFlags,
}

/// Real API servers' behaviours (all off by default; `POST /sim/api` changes them while running).
#[derive(Debug, clap::Args)]
struct ApiFlags {
    /// An Autopilot-like mutating admission: CPU requests rounded up to a step, limits set to
    /// requests, with a Warning header.
    #[arg(long)]
    resource_mutator: bool,
    /// The resource mutator's CPU step in millicores.
    #[arg(long, default_value_t = 250)]
    resource_mutator_cpu_step: u64,
    /// The resource mutator leaves limits alone (only rounds CPU requests).
    #[arg(long)]
    resource_mutator_keep_limits: bool,
    /// LimitRanger: Pods get the container defaults of their namespace's LimitRanges.
    #[arg(long)]
    limit_ranger: bool,
    /// ConfigMaps with `immutable: true` refuse data changes (422).
    #[arg(long)]
    immutable_configmaps: bool,
    /// Serve events.k8s.io/v1 over the recorded events.
    #[arg(long)]
    events_v1: bool,
    /// RBAC for the kubeconfig's users sim-ns-admin and sim-operator (roles and bindings seeded).
    #[arg(long)]
    rbac: bool,
}

impl ApiFlags {
    fn behaviour(&self) -> ApiBehaviour {
        ApiBehaviour {
            resource_mutator: self.resource_mutator.then_some(ResourceMutator {
                cpu_step_millis: self.resource_mutator_cpu_step,
                limits_equal_requests: !self.resource_mutator_keep_limits,
            }),
            limit_ranger: self.limit_ranger,
            immutable_configmaps: self.immutable_configmaps,
            events_v1: self.events_v1,
            rbac: self.rbac,
        }
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
        api: args.api.behaviour(),
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

    #[test]
    fn api_flags_make_the_behaviour_and_default_to_off() {
        let args = Args::try_parse_from(["orchscale-sim", "--kubeconfig", "k"]).expect("parses");
        assert_eq!(args.api.behaviour(), ApiBehaviour::default());
        let args = Args::try_parse_from([
            "orchscale-sim",
            "--kubeconfig",
            "k",
            "--resource-mutator",
            "--resource-mutator-cpu-step",
            "100",
            "--resource-mutator-keep-limits",
            "--limit-ranger",
            "--immutable-configmaps",
            "--events-v1",
            "--rbac",
        ])
        .expect("parses");
        assert_eq!(
            args.api.behaviour(),
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
}
