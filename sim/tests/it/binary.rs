//! The `orchscale-sim` binary: writes the kubeconfig, prints one usage line, serves until
//! SIGTERM, and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn binary_serves_until_sigterm_and_exits_zero() {
    let dir = std::env::temp_dir().join(format!("orchscale-sim-binary-test-{}", std::process::id()));
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchscale-sim"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--pod-start-delay")
        .arg("10")
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).expect("usage line");
    assert!(
        line.starts_with("orchscale-sim: serving https://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{line}"
    );
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written before the line");
    assert!(written.contains("current-context: orchscale-sim"));

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("orchscale-sim did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
