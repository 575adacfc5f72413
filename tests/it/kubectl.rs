//! Through real kubectl: the binary on PATH is found as the `orchscale` plugin.

use std::process::{Command, Stdio};

use crate::harness::{sim, stored_replicas, wait_ready};

/// kubectl on PATH, if any.
pub(crate) fn kubectl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

#[test]
fn kubectl_orchscale_scale_works_through_kubectl() {
    let Some(kubectl) = kubectl() else {
        crate::harness::skip_or_fail("kubectl not found on PATH");
        return;
    };
    let sim = sim();
    wait_ready(&sim, 3);
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-orchscale"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let kubeconfig = sim.kubeconfig().to_str().unwrap().to_string();
    let output = Command::new(kubectl)
        .args([
            "orchscale",
            "scale",
            "--replicas",
            "5",
            "--kubeconfig",
            &kubeconfig,
        ])
        .env("PATH", path)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("is at 5 replicas, 5 ready"), "{stdout}");
    assert_eq!(stored_replicas(&sim), 5);
}
