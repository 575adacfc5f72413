//! Fleets: `diff`, `apply`, `status` and `validate` on several contexts (`--context a,b,c` or
//! `--contexts-from FILE`). Each cluster runs the very same command, as this binary with one
//! `--context` and `-o json` (its stderr streamed, prefixed with the context), so a cluster
//! of a fleet behaves exactly as a cluster alone. Sequential by default, the first context
//! being the canary: its failure stops the rest, and for `apply` any failure does; `--parallel
//! N` runs read-only commands on N clusters at a time, after the canary. One table and one
//! JSON document with a verdict per cluster; exit 0 only when every cluster passed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use serde::Serialize;
use serde_json::Value;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::report::Reporter;

/// Whether the flags name several contexts (a list or a file): the command then runs as a
/// fleet, each cluster in a child process ([`contexts`] reads and checks them).
pub(crate) fn is_fleet(cli: &Cli) -> bool {
    let g = &cli.global;
    g.contexts_from.is_some() || g.context.as_deref().is_some_and(|c| c.contains(','))
}

/// The contexts the flags name when they name several (or a file), else `None`.
///
/// # Errors
/// A usage error (exit 2): an unreadable or empty file, an empty name in the list, `--parallel`
/// without several contexts.
pub(crate) fn contexts(cli: &Cli) -> Result<Option<Vec<String>>, Error> {
    let g = &cli.global;
    let listed = if let Some(file) = &g.contexts_from {
        Some(read_contexts(file)?)
    } else {
        match g.context.as_deref() {
            Some(list) if list.contains(',') => {
                let names: Vec<String> = list.split(',').map(|c| c.trim().to_string()).collect();
                if names.iter().any(String::is_empty) {
                    return Err(Error::usage(
                        format!("--context {list:?} has an empty name"),
                        "give the contexts separated by commas, e.g. --context eu,us,ap",
                    ));
                }
                Some(names)
            }
            _ => None,
        }
    };
    if listed.is_none() && g.parallel.is_some() {
        return Err(Error::usage(
            "--parallel needs several contexts",
            "name them with --context a,b,c or --contexts-from FILE",
        ));
    }
    Ok(listed)
}

fn read_contexts(file: &Path) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::usage(
            format!("cannot read --contexts-from {}: {e}", file.display()),
            "give a file with one context name per line",
        )
    })?;
    let names: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.is_empty() {
        return Err(Error::usage(
            format!("--contexts-from {} names no context", file.display()),
            "one context name per line; `#` starts a comment",
        ));
    }
    Ok(names)
}

/// The command line of one cluster's run: this run's arguments without the fleet's flags and
/// the output format (each cluster's run gets its own `--context` and `-o json`).
pub(crate) fn child_args(args: &[String]) -> Vec<String> {
    const WITH_VALUE: [&str; 5] = ["--context", "--contexts-from", "--parallel", "-o", "--output"];
    let mut out = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if WITH_VALUE.contains(&arg.as_str()) {
            skip_next = true;
            continue;
        }
        let inline = WITH_VALUE.iter().any(|f| arg.starts_with(&format!("{f}=")));
        let short_output = arg.starts_with("-o") && !arg.starts_with("--") && arg.len() > 2;
        if inline || short_output {
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// One cluster's run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterResult {
    context: String,
    /// `ok`, `in place`, `differs`, `failed`, `not run`.
    verdict: &'static str,
    /// The run's exit code (`None`: not run).
    exit_code: Option<i32>,
    detail: String,
    /// The run's own JSON document.
    #[serde(skip_serializing_if = "Value::is_null")]
    document: Value,
}

impl ClusterResult {
    fn passed(&self) -> bool {
        matches!(self.verdict, "ok" | "in place" | "differs")
    }
}

/// Runs the command on every context; see the module doc.
///
/// # Errors
/// A usage error (a command that does not run on fleets, `--parallel` with `apply`, an invalid
/// profile), not confirmed (exit 3), [`Error::Differences`] (diff: exit 1), or a failure
/// naming the clusters that failed (exit 1).
pub(crate) fn run(cli: &Cli, contexts: &[String], reporter: &mut Reporter) -> Result<(), Error> {
    let command = cli.command.name();
    let writes = match &cli.command {
        Command::Diff(args) => {
            super::read_profile(&args.file)?;
            if args.emit.is_some() {
                return Err(Error::usage(
                    "--emit writes the files of one cluster: it does not run on several contexts",
                    "run `diff --emit` with one --context per cluster, each with its own --emit-dir",
                ));
            }
            false
        }
        Command::Apply(args) => {
            super::read_profile(&args.file)?;
            true
        }
        Command::Status(_) | Command::Validate(_) => false,
        _ => {
            return Err(Error::usage(
                format!("`{command}` runs on one context at a time"),
                "several contexts (--context a,b,c, --contexts-from) are for diff, apply, status and validate",
            ));
        }
    };
    if writes && cli.global.parallel.is_some() {
        return Err(Error::usage(
            "--parallel is for read-only commands: apply runs one cluster after the other",
            "drop --parallel; the first context is the canary, and a failure stops the rest",
        ));
    }
    let exe = std::env::current_exe().map_err(|e| {
        Error::failed(
            format!("cannot find this program to run it per cluster: {e}"),
            "run it per context",
        )
    })?;
    let raw: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut args = child_args(&raw);
    if writes {
        let list = contexts.join(", ");
        let question = format!(
            "{command} on {} clusters, one after the other: {list} ({} is the canary; a failure stops the rest)",
            contexts.len(),
            contexts[0]
        );
        reporter.confirm(&question, cli.global.yes, cli.global.dry_run)?;
        if !cli.global.dry_run && !args.iter().any(|a| a == "--yes" || a == "-y") {
            args.push("--yes".into());
        }
    }
    let parallel = usize::from(cli.global.parallel.unwrap_or(1));
    let mut results: Vec<ClusterResult> = Vec::new();
    let canary = run_one(&exe, &args, &contexts[0], command);
    let stop = !canary.passed();
    results.push(canary);
    let mut rest = contexts[1..].iter();
    if !stop {
        if parallel > 1 {
            let rest: Vec<&String> = rest.by_ref().collect();
            for chunk in rest.chunks(parallel) {
                let done: Vec<ClusterResult> = std::thread::scope(|scope| {
                    let handles: Vec<_> = chunk
                        .iter()
                        .map(|ctx| scope.spawn(|| run_one(&exe, &args, ctx, command)))
                        .collect();
                    handles
                        .into_iter()
                        .zip(chunk.iter())
                        .map(|(h, ctx)| {
                            h.join()
                                .unwrap_or_else(|_| not_run(ctx, "the run's thread panicked"))
                        })
                        .collect()
                });
                results.extend(done);
            }
        } else {
            for ctx in rest.by_ref() {
                let result = run_one(&exe, &args, ctx, command);
                let failed = !result.passed();
                results.push(result);
                if failed && writes {
                    break;
                }
            }
        }
    }
    let stopped_by = results.iter().find(|r| !r.passed()).map(|r| r.context.clone());
    for ctx in rest {
        let why = format!("stopped: {} failed", stopped_by.as_deref().unwrap_or("a cluster"));
        results.push(not_run(ctx, &why));
    }
    report(reporter, cli, command, &results)
}

fn not_run(context: &str, why: &str) -> ClusterResult {
    ClusterResult {
        context: context.to_string(),
        verdict: "not run",
        exit_code: None,
        detail: why.to_string(),
        document: Value::Null,
    }
}

/// Runs this program for one context: stdout is its JSON document, stderr is streamed with
/// the context as prefix.
fn run_one(exe: &Path, args: &[String], context: &str, command: &str) -> ClusterResult {
    let child = Process::new(exe)
        .args(args)
        .args(["--context", context, "-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return not_run(context, &format!("cannot start the run: {e}")),
    };
    let stderr = child.stderr.take();
    let prefix = context.to_string();
    let streamer = std::thread::spawn(move || {
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{prefix}] {line}");
            }
        }
    });
    let output = child.wait_with_output();
    let _ = streamer.join();
    let (code, stdout) = match output {
        Ok(o) => (
            o.status.code().unwrap_or(1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        ),
        Err(e) => return not_run(context, &format!("the run failed: {e}")),
    };
    let document: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    let error = document["error"]["message"].as_str().map(str::to_string);
    let (verdict, detail) = match (command, code) {
        ("diff", 0) => ("in place", "no differences".to_string()),
        ("diff", 1) => (
            "differs",
            format!(
                "{} field(s) differ",
                document["changes"].as_array().map_or(0, Vec::len)
            ),
        ),
        (_, 0) => ("ok", summary(command, &document)),
        ("validate", _) => (
            "failed",
            checks(&document)
                .or(error)
                .unwrap_or_else(|| format!("exit {code}")),
        ),
        _ => ("failed", error.unwrap_or_else(|| format!("exit {code}"))),
    };
    ClusterResult {
        context: context.to_string(),
        verdict,
        exit_code: Some(code),
        detail,
        document,
    }
}

/// One line on a cluster that passed.
fn summary(command: &str, document: &Value) -> String {
    match command {
        "apply" => {
            let applied = document["steps"]
                .as_array()
                .map_or(0, |s| s.iter().filter(|s| s["verdict"] == "applied").count());
            format!("{applied} step(s) applied")
        }
        "validate" => checks(document).unwrap_or_else(|| "every check passed".to_string()),
        "status" => {
            let d = &document["deployment"];
            match (d["readyReplicas"].as_i64(), d["replicas"].as_i64()) {
                (Some(ready), Some(replicas)) => format!("deployment {ready}/{replicas} ready"),
                _ => "ok".to_string(),
            }
        }
        _ => "ok".to_string(),
    }
}

/// `validate`'s checks (SPEC: `checks` [{name, ok, detail}]) as `5/6 checks passed; failed: x`.
fn checks(document: &Value) -> Option<String> {
    let checks = document["checks"].as_array()?;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c["ok"] != true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    let passed = checks.len() - failed.len();
    Some(if failed.is_empty() {
        format!("{passed}/{} checks passed", checks.len())
    } else {
        format!(
            "{passed}/{} checks passed; failed: {}",
            checks.len(),
            failed.join(", ")
        )
    })
}

#[derive(Serialize)]
struct Fields<'a> {
    fleet: bool,
    clusters: &'a [ClusterResult],
}

/// The table, the document and the exit code.
fn report(reporter: &mut Reporter, cli: &Cli, command: &str, results: &[ClusterResult]) -> Result<(), Error> {
    let width = results.iter().map(|r| r.context.len()).max().unwrap_or(7).max(7);
    let mut table = format!("{:<width$}  {:<8}  {:>4}  DETAIL\n", "CONTEXT", "VERDICT", "EXIT");
    for r in results {
        let code = r.exit_code.map_or("-".to_string(), |c| c.to_string());
        table.push_str(&format!(
            "{:<width$}  {:<8}  {:>4}  {}\n",
            r.context, r.verdict, code, r.detail
        ));
    }
    reporter.out(table.trim_end());
    let ok = results.iter().all(ClusterResult::passed);
    reporter.set_document(
        command,
        cli.global.dry_run,
        &[],
        ok,
        Fields {
            fleet: true,
            clusters: results,
        },
    );
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.context.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(Error::failed(
            format!(
                "{command} did not pass on {} of {} clusters: {}",
                failed.len(),
                results.len(),
                failed.join(", ")
            ),
            "the table says why per cluster; run the command again with --context NAME for the details",
        ));
    }
    let differing = results.iter().filter(|r| r.verdict == "differs").count();
    if differing > 0 {
        return Err(Error::Differences { count: differing });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_clusters_run_drops_the_fleet_flags_and_the_output_format() {
        let args = strings(&[
            "apply",
            "-f",
            "peak.yaml",
            "--context",
            "a,b",
            "-o",
            "text",
            "--parallel=2",
            "--yes",
            "--contexts-from=x",
            "-ojson",
            "--output=json",
            "-n",
            "ns",
        ]);
        assert_eq!(
            child_args(&args),
            strings(&["apply", "-f", "peak.yaml", "--yes", "-n", "ns"])
        );
    }

    #[test]
    fn only_a_passing_verdict_passes() {
        for (verdict, passed) in [
            ("ok", true),
            ("in place", true),
            ("differs", true),
            ("failed", false),
            ("not run", false),
        ] {
            let r = ClusterResult {
                verdict,
                ..not_run("a", "x")
            };
            assert_eq!(r.passed(), passed, "{verdict}");
        }
    }
}
