//! The install check of a release: every archive `scripts/release` wrote to `dist/`, installed
//! the way krew installs it (krew `internal/installation/install.go`: download, verify the
//! sha256 against the manifest, unpack, move the platform's `files` into
//! `store/<plugin>/<version>`, check `bin` is there, link it into `bin/`), then checked: the
//! right format and architecture (`file`), executable, and — for the platform of this machine —
//! static, found by `kubectl plugin list`, printing the manifest's version, and completing
//! through kubectl.
//!
//! It needs a release's archives, so it is ignored in the normal suite and run by
//! `scripts/install-check [DIST]` (`ORCHSCALE_DIST`, default `dist/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::release_completion::{kubectl, path_with};

fn dist() -> PathBuf {
    std::env::var_os("ORCHSCALE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("dist"))
}

fn output(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `file` says about each platform's executables.
fn expected_format(os: &str, arch: &str) -> &'static [&'static str] {
    match (os, arch) {
        ("linux", "amd64") => &["ELF 64-bit LSB", "x86-64", "static"],
        ("linux", "arm64") => &["ELF 64-bit LSB", "ARM aarch64", "static"],
        ("darwin", "amd64") => &["Mach-O 64-bit", "x86_64", "executable"],
        ("darwin", "arm64") => &["Mach-O 64-bit", "arm64", "executable"],
        ("windows", "amd64") => &["PE32+ executable", "x86-64", "MS Windows"],
        other => panic!("no expectation for {other:?}"),
    }
}

/// krew's install of one platform entry into `root` (a KREW_ROOT); returns the linked binary.
fn krew_install(root: &Path, platform: &Value, version: &str) -> PathBuf {
    let uri = platform["uri"].as_str().expect("uri");
    let name = uri.rsplit('/').next().expect("archive name");
    let archive = dist().join(name);
    assert!(archive.is_file(), "{} is missing", archive.display());
    let sum = output(Command::new("sha256sum").arg(&archive));
    assert_eq!(
        sum.split_whitespace().next(),
        platform["sha256"].as_str(),
        "{name}: the sha256 in the manifest"
    );
    let unpacked = root.join("tmp").join(name);
    std::fs::create_dir_all(&unpacked).unwrap();
    if name.ends_with(".zip") {
        output(
            Command::new("unzip")
                .arg("-q")
                .arg(&archive)
                .arg("-d")
                .arg(&unpacked),
        );
    } else {
        output(
            Command::new("tar")
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&unpacked),
        );
    }
    let store = root.join("store/orchscale").join(version);
    for rule in platform["files"].as_array().expect("files") {
        let from = rule["from"].as_str().expect("from");
        let to = rule["to"].as_str().expect("to");
        assert!(!from.contains(['*', '?', '[']), "literal names: {from}");
        // `to` is relative to the install folder; "." is that folder (create_dir_all refuses
        // a path ending in ".").
        let dir: PathBuf = store
            .components()
            .chain(Path::new(to).components())
            .filter(|c| *c != std::path::Component::CurDir)
            .collect();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::rename(unpacked.join(from), dir.join(from))
            .unwrap_or_else(|e| panic!("{name}: files rule {from} -> {to}: {e}"));
    }
    let bin = platform["bin"].as_str().expect("bin");
    let installed = store.join(bin);
    assert!(installed.is_file(), "{name}: bin {bin} is installed");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let link = root.join("bin").join(bin);
    std::os::unix::fs::symlink(&installed, &link).unwrap();
    link
}

#[test]
#[ignore = "needs a release's archives in dist/: scripts/install-check"]
fn every_release_archive_installs_as_krew_installs_it() {
    let manifest: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(dist().join("plugin.yaml")).expect("dist/plugin.yaml"),
    )
    .expect("the manifest");
    let version = manifest["spec"]["version"].as_str().expect("version");
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), 5, "five platforms");
    let mut ran_here = false;
    for platform in platforms {
        let labels = &platform["selector"]["matchLabels"];
        let (os, arch) = (labels["os"].as_str().unwrap(), labels["arch"].as_str().unwrap());
        let root = tempfile::tempdir().unwrap();
        let link = krew_install(root.path(), platform, version);
        let store = root.path().join("store/orchscale").join(version);
        let exe = if os == "windows" { ".exe" } else { "" };
        for binary in ["kubectl-orchscale", "kubectl_complete-orchscale"] {
            let path = store.join(format!("{binary}{exe}"));
            let described = output(Command::new("file").arg("-b").arg(&path));
            for expected in expected_format(os, arch) {
                assert!(described.contains(expected), "{os}/{arch} {binary}: {described}");
            }
            if os != "windows" {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o111, 0o111, "{os}/{arch} {binary} is executable");
            }
        }
        if (os, arch) == ("linux", "amd64") && cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            ran_here = true;
            check_runs_through_kubectl(root.path(), &link, version);
        }
    }
    assert!(
        ran_here || !cfg!(all(target_os = "linux", target_arch = "x86_64")),
        "the linux/amd64 archive ran here"
    );
}

/// The installed linux/amd64 binary: static, listed by `kubectl plugin list`, prints the
/// manifest's version, and completes through kubectl once its helper is on PATH.
fn check_runs_through_kubectl(root: &Path, link: &Path, version: &str) {
    let ldd = Command::new("ldd").arg(link).output().expect("ldd runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd: {said}"
    );
    let Some(kubectl) = kubectl() else {
        crate::harness::skip_or_fail("kubectl not found on PATH");
        return;
    };
    let bin = root.join("bin");
    let path = path_with(&bin, &kubectl);
    let listed = output(Command::new(&kubectl).args(["plugin", "list"]).env("PATH", &path));
    assert!(
        listed.lines().any(|l| Path::new(l.trim()) == link),
        "kubectl plugin list: {listed}"
    );
    let printed = output(
        Command::new(&kubectl)
            .args(["orchscale", "version", "-o", "json"])
            .env("PATH", &path),
    );
    let printed: Value = serde_json::from_str(&printed).expect("one JSON document");
    assert_eq!(
        format!("v{}", printed["version"].as_str().unwrap_or_default()),
        version
    );
    // The README's completion step: the helper from the plugin's folder, linked onto PATH.
    let helper = root
        .join("store/orchscale")
        .join(version)
        .join("kubectl_complete-orchscale");
    std::os::unix::fs::symlink(&helper, bin.join("kubectl_complete-orchscale")).unwrap();
    let completed = output(
        Command::new(&kubectl)
            .args(["__complete", "orchscale", "s"])
            .env("PATH", &path),
    );
    assert!(
        completed.lines().any(|l| l.starts_with("scale")),
        "kubectl __complete orchscale s: {completed}"
    );
}
