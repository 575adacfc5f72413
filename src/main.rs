//! The `kubectl-orchscale` binary: parse, set up logging on stderr, run, exit with the code.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = match kubectl_orchscale::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => kubectl_orchscale::usage_error(e),
    };
    // Logs go to stderr so stdout stays the result (one JSON document with -o json);
    // RUST_LOG overrides the default below.
    // Errors are reported by the tool itself (one line + hint), so library logs stay off unless
    // -v asks for detail. kube/hyper stay at warn even then: their debug output would show
    // request URLs and headers.
    let default = if cli.global.verbose {
        "warn,kubectl_orchscale=debug"
    } else {
        "off"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    std::process::exit(kubectl_orchscale::run(cli));
}
