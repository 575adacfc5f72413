//! Completion, in two forms over one engine (clap's own, over [`Cli`], so the candidates follow
//! the command line as it is defined: subcommands, every flag, values):
//!
//! - `kubectl orchscale <TAB>`: `kubectl-orchscale __complete WORD…` answers in cobra's
//!   protocol, for kubectl's plugin completion (below);
//! - `kubectl-orchscale <TAB>`: `completion SHELL` prints a script that asks the binary for
//!   candidates at each TAB (`ORCHSCALE_COMPLETE=SHELL kubectl-orchscale -- WORD…`, answered by
//!   [`answer_shell`]). Static scripts (clap_complete's `generate`) were tried and dropped:
//!   their bash script breaks on a hyphenated binary name (its subcommand cases never match,
//!   so `hpa --m<TAB>` fell back to file names) and they offer files for every value.
//!
//! kubectl (1.26 and later) completes `kubectl orchscale …` by running the executable
//! `kubectl_complete-orchscale` from PATH with the words after the plugin name, the word being
//! completed last (possibly empty). It reads one candidate per line (`value<TAB>description`),
//! then a last line `:<directive>` (kubernetes/kubectl `pkg/cmd/plugin_completion.go`,
//! `getPluginCompletions`). The helper binary forwards here; the candidates come from clap's
//! own completion engine over [`Cli`], so they follow the command line as it is defined.

use std::ffi::OsString;
use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// The first argument that asks for completions instead of running a command (cobra's name).
pub const REQUEST: &str = "__complete";

/// The executable the shell scripts complete and call back.
const BIN: &str = "kubectl-orchscale";

/// The environment variable under which a shell script calls the binary back for candidates.
const SHELL_REQUEST: &str = "ORCHSCALE_COMPLETE";

/// Answers a shell script's call for candidates and exits; returns at once when the process
/// was not started for one (the variable is unset).
pub fn answer_shell() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(SHELL_REQUEST)
        .bin(BIN)
        .completer(BIN)
        .complete();
}

/// Writes the script that makes `shell` complete `kubectl-orchscale` (`completion SHELL`).
///
/// # Errors
/// Writing to `out` failed.
pub(crate) fn script(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(&name) else {
        return Err(std::io::Error::other(format!("no completion script for {name}")));
    };
    completer.write_registration(SHELL_REQUEST, BIN, BIN, BIN, out)
}

/// cobra's `ShellCompDirectiveError`: no completion could be made.
const DIRECTIVE_ERROR: u8 = 1;
/// cobra's `ShellCompDirectiveNoFileComp`: offer only these candidates, never file names
/// (paths, where a flag takes one, are among the candidates already).
const DIRECTIVE_NO_FILE_COMP: u8 = 4;

/// Answers a completion request for `words` (what follows `kubectl orchscale`, the word being
/// completed last) on stdout and returns the exit code.
pub fn run(words: &[OsString]) -> i32 {
    let stdout = std::io::stdout();
    match write(words, &mut stdout.lock()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Writes the candidates for `words` in cobra's format, then the directive line.
///
/// # Errors
/// Writing to `out` failed.
pub(crate) fn write(words: &[OsString], out: &mut impl Write) -> std::io::Result<()> {
    let mut args: Vec<OsString> = vec!["kubectl-orchscale".into()];
    args.extend(words.iter().cloned());
    if words.is_empty() {
        // kubectl always passes the word being completed; an empty one when there is none.
        args.push(OsString::new());
    }
    let index = args.len() - 1;
    let current_dir = std::env::current_dir().ok();
    let mut command = Cli::command();
    let candidates = clap_complete::engine::complete(&mut command, args, index, current_dir.as_deref());
    let Ok(candidates) = candidates else {
        return writeln!(out, ":{DIRECTIVE_ERROR}");
    };
    for candidate in candidates.iter().filter(|c| !c.is_hide_set()) {
        let value = candidate.get_value().to_string_lossy();
        // One line per candidate: a value or description with a line break would split it.
        if value.contains(['\n', '\r']) {
            continue;
        }
        let help = candidate
            .get_help()
            .map(|h| h.to_string())
            .and_then(|h| h.lines().next().map(str::to_string))
            .unwrap_or_default();
        if help.is_empty() {
            writeln!(out, "{value}")?;
        } else {
            writeln!(out, "{value}\t{help}")?;
        }
    }
    writeln!(out, ":{DIRECTIVE_NO_FILE_COMP}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(words: &[&str]) -> Vec<String> {
        let words: Vec<OsString> = words.iter().map(OsString::from).collect();
        let mut out = Vec::new();
        write(&words, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn values(lines: &[String]) -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.split('\t').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn commands_are_completed_with_descriptions_and_the_directive_last() {
        let lines = complete(&["s"]);
        assert_eq!(lines.last().map(String::as_str), Some(":4"), "{lines:?}");
        let values = values(&lines);
        assert!(
            values.contains(&"scale") && values.contains(&"status"),
            "{values:?}"
        );
        assert!(!values.contains(&"hpa"), "only words starting with s: {values:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("scale\t")),
            "a description after a tab: {lines:?}"
        );
    }

    #[test]
    fn flags_and_values_after_a_command_are_completed() {
        let flags = complete(&["scale", "--rep"]);
        assert!(values(&flags).contains(&"--replicas"), "{flags:?}");
        let outputs = complete(&["status", "-o", ""]);
        let outputs = values(&outputs);
        assert!(
            outputs.contains(&"json") && outputs.contains(&"text"),
            "{outputs:?}"
        );
    }

    #[test]
    fn no_words_completes_the_commands() {
        let lines = complete(&[]);
        assert!(values(&lines).contains(&"validate"), "{lines:?}");
        assert!(
            !values(&lines).contains(&REQUEST),
            "the request itself is no command"
        );
    }
}
