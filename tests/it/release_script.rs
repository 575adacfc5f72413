//! The scripts' own guards: `scripts/release` refuses a version the binary would not print,
//! the macOS framework stubs bind every symbol to the framework that exports it, and
//! `scripts/try-it N` works for any N.

use std::path::Path;
use std::process::Command;

fn script(name: &str) -> Command {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name))
}

/// Symbols of a text stub (`symbols: [ _A, _B ]`) and its install name.
fn stub(path: &Path) -> (Vec<String>, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .trim()
            .to_string()
    };
    let symbols = line("symbols:")
        .trim_matches(['[', ']', ' '])
        .split(", ")
        .map(str::to_string)
        .collect();
    (symbols, line("install-name:"))
}

#[test]
fn release_refuses_a_version_that_is_not_the_crates() {
    let out = script("release").arg("v9.9.9").output().expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "v9.9.9 is not the crate version v{}",
            env!("CARGO_PKG_VERSION")
        )),
        "{stderr}"
    );
}

#[test]
fn macos_stubs_bind_each_symbol_to_the_framework_that_exports_it() {
    let out = tempfile::tempdir().unwrap();
    let run = script("macos-sdk-stubs")
        .arg(out.path())
        .output()
        .expect("bash runs");
    assert!(run.status.success(), "{run:?}");
    let frameworks = String::from_utf8(run.stdout).unwrap();
    let frameworks = Path::new(frameworks.trim());
    let (security, security_name) = stub(&frameworks.join("Security.framework/Security.tbd"));
    let (core, core_name) = stub(&frameworks.join("CoreFoundation.framework/CoreFoundation.tbd"));
    assert_eq!(
        security_name,
        "'/System/Library/Frameworks/Security.framework/Versions/A/Security'"
    );
    assert_eq!(
        core_name,
        "'/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation'"
    );
    // What rustls' platform verifier and native roots call, each from its own framework.
    for symbol in ["_SecTrustEvaluateWithError", "_SecTrustSettingsCopyCertificates"] {
        assert!(security.iter().any(|s| s == symbol), "{symbol} in Security");
        assert!(
            !core.iter().any(|s| s == symbol),
            "{symbol} not in CoreFoundation"
        );
    }
    for symbol in ["_CFRelease", "_kCFAllocatorDefault"] {
        assert!(core.iter().any(|s| s == symbol), "{symbol} in CoreFoundation");
        assert!(!security.iter().any(|s| s == symbol), "{symbol} not in Security");
    }
    let shared: Vec<&String> = security.iter().filter(|s| core.contains(s)).collect();
    assert!(shared.is_empty(), "one framework per symbol: {shared:?}");
}

/// `scripts/try-it N` with N above the HPA's maximum (10 in the seeded world): the script
/// raises the ceiling with the plugin first, then scales and sets the floor, exit 0. It runs
/// against this test's simulated cluster with the tested binary (TRY_IT_BIN,
/// TRY_IT_KUBECONFIG), so it neither builds nor starts a cluster of its own.
#[test]
fn try_it_works_above_the_hpa_maximum() {
    use crate::harness::{object, sim, stored_replicas, wait_ready};
    let sim = sim();
    wait_ready(&sim, 3);
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        crate::harness::tested_binary(),
        bin.path().join("kubectl-orchscale"),
    )
    .unwrap();
    let out = script("try-it")
        .arg("12")
        .env("TRY_IT_BIN", bin.path())
        .env("TRY_IT_KUBECONFIG", sim.kubeconfig())
        .env_remove("KUBECONFIG")
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("12 is above the HPA's maximum: raising it first\n+ kubectl-orchscale hpa --max 12"),
        "{stderr}"
    );
    assert_eq!(stored_replicas(&sim), 12);
    let hpa = object(&sim, "horizontalpodautoscalers", "orchestrator");
    assert_eq!(hpa["spec"]["maxReplicas"], 12, "{hpa}");
    assert_eq!(hpa["spec"]["minReplicas"], 12, "{hpa}");
}
