//! `kubectl_complete-orchscale`: the executable kubectl (1.26 and later) runs from PATH to
//! complete `kubectl orchscale …`. It hands the words to `kubectl-orchscale __complete`, which
//! prints the candidates in cobra's format (see the plugin's `complete` module).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let plugin = plugin_binary();
    let status = Command::new(&plugin)
        .arg("__complete")
        .args(std::env::args_os().skip(1))
        .status();
    match status {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(error) => {
            eprintln!(
                "kubectl_complete-orchscale: cannot run {}: {error}",
                plugin.display()
            );
            std::process::exit(1)
        }
    }
}

/// The plugin binary beside this helper (release archives and krew's store hold both in one
/// folder; a symlink to the helper is followed to it), else `kubectl-orchscale` on PATH.
fn plugin_binary() -> PathBuf {
    let name = format!("kubectl-orchscale{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().ok();
    let dirs = exe
        .iter()
        .flat_map(|exe| [exe.canonicalize().ok(), Some(exe.clone())])
        .flatten()
        .filter_map(|exe| exe.parent().map(|dir| dir.join(&name)));
    dirs.into_iter()
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}
