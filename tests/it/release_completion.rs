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
