//! Completion through real kubectl: kubectl (1.26 and later) completes `kubectl orchscale …`
//! by running `kubectl_complete-orchscale` from PATH with the words after the plugin name and
//! reading cobra's format back (kubernetes/kubectl `pkg/cmd/plugin_completion.go`,
//! `pluginCompletion` and `getPluginCompletions`: one candidate per line, a last `:<directive>`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// kubectl on PATH.
pub fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

/// A PATH of `dir` then kubectl's folder only, so no other plugin is found.
pub fn path_with(dir: &Path, kubectl: &Path) -> OsString {
    let kubectl_dir = kubectl.parent().expect("kubectl's folder");
    std::env::join_paths([dir, kubectl_dir]).expect("a PATH")
}

/// `kubectl __complete orchscale WORDS…` with the plugin and its helper (linked from the
/// build) alone on PATH; the candidate lines and the directive line.
fn complete(words: &[&str]) -> Option<(Vec<String>, String)> {
    let Some(kubectl) = kubectl() else {
        crate::harness::skip_or_fail("kubectl not found on PATH");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    for bin in [
        env!("CARGO_BIN_EXE_kubectl-orchscale"),
        env!("CARGO_BIN_EXE_kubectl_complete-orchscale"),
    ] {
        let bin = Path::new(bin);
        std::os::unix::fs::symlink(bin, dir.path().join(bin.file_name().unwrap())).unwrap();
    }
    let out = Command::new(&kubectl)
        .arg("__complete")
        .arg("orchscale")
        .args(words)
        .env("PATH", path_with(dir.path(), &kubectl))
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let directive = lines.pop().unwrap_or_default();
    Some((lines, directive))
}

fn values(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect()
}

#[test]
fn kubectl_completes_the_commands_through_the_helper() {
    let Some((lines, directive)) = complete(&[""]) else {
        return;
    };
    let values = values(&lines);
    for command in ["scale", "hpa", "resources", "db", "validate", "status", "undo"] {
        assert!(values.contains(&command), "{command} in {lines:?}");
    }
    // cobra's ShellCompDirectiveNoFileComp: the shell offers these, not file names.
    assert_eq!(directive, ":4");
    assert!(
        lines.iter().any(|l| l.starts_with("scale\t")),
        "with descriptions: {lines:?}"
    );
}

#[test]
fn kubectl_completes_subcommands_flags_and_values() {
    let Some((lines, _)) = complete(&["db", "c"]) else {
        return;
    };
    assert_eq!(values(&lines), ["connections"]);
    let Some((lines, _)) = complete(&["scale", "--rep"]) else {
        return;
    };
    assert_eq!(values(&lines), ["--replicas"]);
    let Some((lines, _)) = complete(&["status", "-o", ""]) else {
        return;
    };
    assert_eq!(values(&lines), ["text", "json", "yaml"]);
}

/// Every (leaf) subcommand's path and its visible long flags, from the command line's
/// definition, so that a flag added later is covered too.
fn subcommands_and_flags() -> Vec<(Vec<String>, Vec<String>)> {
    use clap::CommandFactory;
    fn walk(command: &clap::Command, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Vec<String>)>) {
        let subcommands: Vec<&clap::Command> = command
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .collect();
        if subcommands.is_empty() {
            let flags = command
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            out.push((path.clone(), flags));
        }
        for sub in subcommands {
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut command = kubectl_orchscale::cli::Cli::command();
    command.build();
    let mut out = Vec::new();
    walk(&command, &mut Vec::new(), &mut out);
    out
}

#[test]
fn kubectl_completes_the_flags_of_every_subcommand_not_files() {
    let Some((lines, directive)) = complete(&["hpa", "--m"]) else {
        return;
    };
    assert_eq!(values(&lines), ["--min", "--max", "--memory"], "{lines:?}");
    assert_eq!(directive, ":4", "no file names");
    // A number has no candidates, and no file names either.
    let Some((lines, directive)) = complete(&["hpa", "--min", ""]) else {
        return;
    };
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(directive, ":4");
    let all = subcommands_and_flags();
    assert!(all.len() >= 10, "{all:?}");
    for (path, flags) in all {
        let mut words: Vec<&str> = path.iter().map(String::as_str).collect();
        words.push("--");
        let Some((lines, _)) = complete(&words) else {
            return;
        };
        let offered = values(&lines);
        for flag in &flags {
            assert!(
                offered.contains(&flag.as_str()),
                "{path:?}: {flag} in {offered:?}"
            );
        }
    }
}

/// `kubectl-orchscale completion bash`, sourced by bash, asked as bash asks at a TAB.
fn bash_candidates(words: &[&str]) -> Option<Vec<String>> {
    let bash = std::process::Command::new("bash").arg("--version").output();
    if bash.is_err() {
        crate::harness::skip_or_fail("bash not found to source the completion script");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_kubectl-orchscale"));
    std::os::unix::fs::symlink(bin, dir.path().join("kubectl-orchscale")).unwrap();
    let script = Command::new(bin).args(["completion", "bash"]).output().unwrap();
    assert!(script.status.success(), "{script:?}");
    let script_path = dir.path().join("completion.bash");
    std::fs::write(&script_path, &script.stdout).unwrap();
    // bash calls the function with the command, the word being completed and the one before;
    // COMP_WORDS starts with the command itself.
    let cword = words.len();
    let program = format!(
        "source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD={cword}; \
         _clap_complete_kubectl_orchscale kubectl-orchscale \"${{COMP_WORDS[{cword}]}}\" \
         \"${{COMP_WORDS[{}]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        cword - 1
    );
    let path = std::env::join_paths(
        std::iter::once(dir.path().to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program, "bash"])
        .arg(&script_path)
        .arg("kubectl-orchscale")
        .args(words)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    Some(
        stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn the_bash_script_completes_subcommands_and_their_flags() {
    let Some(flags) = bash_candidates(&["hpa", "--m"]) else {
        return;
    };
    assert_eq!(flags, ["--min", "--max", "--memory"]);
    let Some(commands) = bash_candidates(&["s"]) else {
        return;
    };
    assert_eq!(commands, ["scale", "status"]);
    let Some(nested) = bash_candidates(&["db", "connections", "--re"]) else {
        return;
    };
    assert!(nested.contains(&"--restart".to_string()), "{nested:?}");
}
