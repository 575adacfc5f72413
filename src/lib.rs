//! kubectl-orchscale: the LLM Orchestrator scaling runbook as safe, guided kubectl commands.

pub mod cli;
pub mod cluster;
pub(crate) mod commands;
pub mod complete;
pub mod error;
pub mod follow;
pub mod health;
pub(crate) mod interrupt;
pub(crate) mod plan;
pub(crate) mod pod_status;
pub(crate) mod quantity;
pub mod report;

use cli::Cli;
use error::Error;
use report::Reporter;

/// Runs the parsed command and returns the process exit code (SPEC "Exit codes").
///
/// Prints the outcome: the JSON document (JSON mode), or the error as one line plus a hint
/// on stderr (and `{"error": {...}}` on stdout in JSON mode).
pub fn run(cli: Cli) -> i32 {
    let mut reporter = Reporter::new(&cli.global);
    reporter.listen_for_ctrl_c_with(|| Box::new(interrupt::listen()));
    // One thread: a command is a chain of API round trips, and a single-threaded runtime spares
    // each one the wake-ups across threads (measured: `hpa --min` 11.7 -> 10.0 ms, system time
    // 3.3 -> 1.4 ms). A fleet waits on its clusters' child processes from a blocking section
    // (`block_in_place`), which needs the multi-threaded runtime.
    let mut builder = if commands::is_fleet(&cli) {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return error::EXIT_FAILED;
        }
    };
    let result = runtime.block_on(async {
        interrupt::install(reporter.is_json());
        commands::dispatch(&cli, &mut reporter).await
    });
    reporter.progress_done();
    let document = reporter.take_document();
    match result {
        Ok(()) => {
            if reporter.is_json()
                && let Some(doc) = document
            {
                println!("{}", report::json::render(reporter.format(), &doc));
            }
            error::EXIT_OK
        }
        // `diff` with differences: its preview (or document) is the output, exit 1.
        Err(Error::Differences { .. }) => {
            if let Some(doc) = document.filter(|_| reporter.is_json()) {
                println!("{}", report::json::render(reporter.format(), &doc));
            }
            error::EXIT_FAILED
        }
        Err(err) => {
            let document = document.or_else(|| {
                // No document of its own: the error document, with the warnings said before.
                let mut error = report::json::error_document(&err.to_string(), &err.hint());
                report::json::add_warnings(&mut error, reporter.warnings());
                Some(error)
            });
            report_error(&err, &reporter, document);
            match err.exit_code() {
                // A wait ended by SIGTERM rather than Ctrl-C: the code a SIGTERM'd process has.
                error::EXIT_INTERRUPTED if interrupt::terminated() => interrupt::EXIT_TERMINATED,
                code => code,
            }
        }
    }
}

/// Reports a command-line error from clap and exits: help and version print normally; usage
/// errors exit 2, and in JSON mode also print the error document on stdout.
pub fn usage_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let is_usage = !matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    if is_usage && let Some(format) = cli::document_format(&args) {
        let message = error.kind().as_str().unwrap_or("invalid usage").to_string();
        let rendered = error.render().to_string();
        // The first paragraph of clap's message, on one line (the usage and tips follow it).
        let first: Vec<&str> = rendered
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let detail = if first.is_empty() {
            message
        } else {
            first.join(" ").trim_start_matches("error: ").to_string()
        };
        let document = report::json::error_document(
            &detail,
            "see `kubectl orchscale --help` for the flags and examples",
        );
        println!("{}", report::json::render(format, &document));
    }
    error.exit()
}

fn report_error(err: &Error, reporter: &Reporter, document: Option<serde_json::Value>) {
    // The document format (`-o json` / `-o yaml`), `None` for text.
    let format = reporter.is_json().then(|| reporter.format());
    let verbose = reporter.is_verbose();
    let hint = err.hint();
    let line = reporter
        .stderr_palette()
        .paint(report::term::Tone::Bad, &format!("error: {err}"));
    eprintln!("{line}");
    if verbose {
        // The causes kube reported, for whoever debugs; redacted like every -v line.
        let mut cause = std::error::Error::source(err);
        while let Some(c) = cause {
            eprintln!("cause: {}", cluster::redact::text(&c.to_string()));
            cause = c.source();
        }
    }
    if !hint.is_empty() {
        eprintln!("hint: {hint}");
    }
    if let Some(format) = format {
        let error = report::json::error_document(&err.to_string(), &hint);
        // A command that got as far as building its document reports it, marked failed,
        // with the error inside: still exactly one JSON document on stdout.
        let doc = match document {
            Some(serde_json::Value::Object(mut doc)) => {
                doc.insert("result".into(), serde_json::json!("failed"));
                doc.insert("error".into(), error["error"].clone());
                serde_json::Value::Object(doc)
            }
            _ => error,
        };
        println!("{}", report::json::render(format, &doc));
    }
}
