//! The `kubectl-orchscale` binary: parse, set up logging on stderr, run, exit with the code.

use tracing_subscriber::EnvFilter;

fn main() {
    restore_sigpipe();
    kubectl_orchscale::complete::answer_shell();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == kubectl_orchscale::complete::REQUEST)
    {
        std::process::exit(kubectl_orchscale::complete::run(&args[2..]));
    }
    let cli = match kubectl_orchscale::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => kubectl_orchscale::usage_error(e),
    };
    // Logs go to stderr so stdout stays the result (one JSON document with -o json);
    // RUST_LOG overrides the default below.
    // Errors are reported by the tool itself (one line + hint), so library logs stay off unless
    // -v asks for detail. kube/hyper stay at warn even then: their debug output would show
    // request URLs and headers.
    // kubectl's request log (-v=6 and up) is printed by the cluster layer itself, redacted.
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

/// Rust ignores SIGPIPE, so a write to a closed stdout (`-o json | head -c 100`) fails and
/// `println!` panics. With the default action back, the process ends quietly there, as kubectl
/// and every Unix filter do. Sockets are unaffected: Rust sends with MSG_NOSIGNAL.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
