//! The release scripts' own guards: `scripts/release` refuses a version the binary would not
//! print, and the macOS framework stubs bind every symbol to the framework that exports it.

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
