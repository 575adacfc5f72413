//! `orchscale-sim`: runs the simulated cluster until SIGINT/SIGTERM, for trying the plugin by
//! hand: `orchscale-sim --kubeconfig /tmp/sim.kubeconfig`, then `export
//! KUBECONFIG=/tmp/sim.kubeconfig` in another shell. The admin endpoint `/sim/...` (see
//! `server::admin`) drives faults and the scenario while it runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
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
    /// Seconds between HPA syncs (kube-controller-manager's default is 15). The HPA also
    /// syncs at once when its spec changes.
    #[arg(long, default_value_t = 15)]
    hpa_sync_period: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = SimOptions {
        port: args.port,
        kubeconfig: Some(args.kubeconfig.clone()),
        pod_start_delay: Duration::from_millis(args.pod_start_delay),
        extra_pods: args.pods,
        hpa_sync_period: Duration::from_secs(args.hpa_sync_period.max(1)),
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
