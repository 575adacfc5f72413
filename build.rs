//! Build info for `kubectl orchscale version`: the git commit (when built from a checkout)
//! and the target triple. No rerun-if lines on purpose: cargo then reruns it whenever the
//! package changes, which keeps the commit current.

use std::process::Command;

fn main() {
    if let Ok(target) = std::env::var("TARGET") {
        println!("cargo:rustc-env=ORCHSCALE_TARGET={target}");
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=ORCHSCALE_GIT_COMMIT={commit}");
    }
}
