//! Distribution: `plugin.yaml` is a krew manifest that krew would accept for this binary, on
//! every platform, with the version the binary prints, the RBAC of the docs Role in its
//! caveats; `.krew.yaml` (krew-release-bot's template) renders to the same manifest.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

fn read(file: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn manifest() -> Value {
    serde_saphyr::from_str(&read("plugin.yaml")).expect("plugin.yaml is valid YAML")
}

/// The platforms krew users run on: macOS laptops (Intel and Apple silicon), Linux runners
/// (amd64 and arm64, glibc or musl), Windows.
const PLATFORMS: &[(&str, &str)] = &[
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];

#[test]
fn plugin_yaml_is_a_krew_manifest_for_the_binary() {
    let m = manifest();
    assert_eq!(m["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "orchscale");
    let version = m["spec"]["version"].as_str().expect("spec.version");
    assert!(
        version.starts_with('v'),
        "krew versions are v-prefixed semver: {version}"
    );
    assert!(
        m["spec"]["shortDescription"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert!(
        m["spec"]["homepage"]
            .as_str()
            .is_some_and(|h| h.starts_with("https://")),
        "krew shows the homepage"
    );
    let platforms = m["spec"]["platforms"].as_array().expect("spec.platforms");
    let mut seen = BTreeSet::new();
    for platform in platforms {
        let labels = &platform["selector"]["matchLabels"];
        let (os, arch) = (
            labels["os"].as_str().expect("os label"),
            labels["arch"].as_str().expect("arch label"),
        );
        assert!(seen.insert((os, arch)), "one entry per platform: {os}/{arch}");
        let exe = if os == "windows" { ".exe" } else { "" };
        let archive = if os == "windows" { "zip" } else { "tar.gz" };
        let uri = platform["uri"].as_str().expect("uri");
        assert!(
            uri.starts_with("https://")
                && uri.ends_with(&format!("kubectl-orchscale_{version}_{os}_{arch}.{archive}")),
            "{uri}"
        );
        assert!(uri.contains(&format!("/download/{version}/")), "{uri}");
        let sha = platform["sha256"].as_str().expect("sha256");
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()) && sha.chars().any(|c| c != '0'),
            "a real sha256: {sha}"
        );
        let bin = format!("kubectl-orchscale{exe}");
        assert_eq!(platform["bin"], bin.as_str(), "{os}/{arch}");
        let from: Vec<&str> = platform["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                assert_eq!(f["to"], ".", "{f}");
                f["from"].as_str().expect("from")
            })
            .collect();
        let helper = format!("kubectl_complete-orchscale{exe}");
        assert_eq!(from, [bin.as_str(), helper.as_str(), "LICENSE"], "{os}/{arch}");
    }
    let expected: BTreeSet<_> = PLATFORMS.iter().copied().collect();
    assert_eq!(seen, expected, "every platform has an archive");
}

/// `kubectl orchscale version` prints the version krew installed.
#[test]
fn the_binary_prints_the_manifests_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-orchscale"))
        .args(["version", "-o", "json"])
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let version = manifest()["spec"]["version"].clone();
    assert_eq!(
        Some(format!("v{}", printed["version"].as_str().expect("version")).as_str()),
        version.as_str()
    );
}

/// The caveats list every rule of `docs/rbac/orchscale-operator-role.yaml` (which
/// `release_rbac` proves enough and needed), one line per rule, and nothing else.
#[test]
fn the_caveats_list_the_documented_rbac() {
    let caveats = manifest()["spec"]["caveats"]
        .as_str()
        .expect("caveats")
        .to_string();
    let roles: Vec<Value> = serde_saphyr::from_str_multiple(&read("docs/rbac/orchscale-operator-role.yaml"))
        .expect("the docs Role file");
    let join = |v: &Value| {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|s| s.as_str().expect("a string"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut expected = Vec::new();
    for role in &roles {
        for rule in role["rules"].as_array().expect("rules") {
            let group = join(&rule["apiGroups"]);
            let group = if group.is_empty() {
                String::new()
            } else {
                format!(" ({group})")
            };
            expected.push(format!(
                "{}{group}: {}",
                join(&rule["resources"]),
                join(&rule["verbs"])
            ));
        }
    }
    let listed: Vec<&str> = caveats
        .lines()
        .filter(|l| l.starts_with("  ") && l.trim_end().ends_with(|c: char| c.is_alphabetic()))
        .filter(|l| l.contains(": "))
        .map(str::trim)
        .collect();
    assert_eq!(listed, expected, "caveats:\n{caveats}");
}

/// krew-release-bot fills `{{ .TagName }}` and each `{{addURIAndSha "URI" .TagName }}` in
/// `.krew.yaml`; filled with this release's values it is `plugin.yaml` itself.
#[test]
fn the_krew_release_bot_template_renders_to_plugin_yaml() {
    let m = manifest();
    let version = m["spec"]["version"].as_str().expect("version");
    let mut rendered = String::new();
    let mut platforms = m["spec"]["platforms"].as_array().expect("platforms").iter();
    for line in read(".krew.yaml").lines() {
        let line = line.replace("{{ .TagName }}", version);
        if let Some(rest) = line.trim_start().strip_prefix("{{addURIAndSha \"") {
            let uri = rest
                .strip_suffix("\" .TagName }}")
                .expect("{{addURIAndSha \"URI\" .TagName }}");
            let platform = platforms.next().expect("a platform per template entry");
            assert_eq!(platform["uri"], uri);
            let indent = &line[..line.len() - line.trim_start().len()];
            rendered.push_str(&format!(
                "{indent}uri: {uri}\n{indent}sha256: {}\n",
                platform["sha256"]
            ));
        } else {
            rendered.push_str(&line);
            rendered.push('\n');
        }
    }
    assert!(platforms.next().is_none(), "a template entry per platform");
    let template: Value = serde_saphyr::from_str(&rendered).expect("rendered template is YAML");
    assert_eq!(template, m);
}
