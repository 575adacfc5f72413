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
    let signals = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let Ok(runtime) = signals else {
        eprintln!("orchscale-sim: cannot wait for signals");
        return ExitCode::FAILURE;
    };
    runtime.block_on(wait_for_signal());
    drop(sim);
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
