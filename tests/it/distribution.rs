//! Distribution: `plugin.yaml` is a krew manifest that krew would accept for this binary.

use serde_json::Value;

fn manifest() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plugin.yaml");
    let text = std::fs::read_to_string(path).expect("plugin.yaml at the repository root");
    serde_saphyr::from_str(&text).expect("plugin.yaml is valid YAML")
}

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
    let platforms = m["spec"]["platforms"].as_array().expect("spec.platforms");
    assert!(!platforms.is_empty());
    for platform in platforms {
        let labels = &platform["selector"]["matchLabels"];
        assert!(
            labels["os"].is_string() && labels["arch"].is_string(),
            "{platform}"
        );
        let uri = platform["uri"].as_str().expect("uri");
        assert!(uri.starts_with("https://") && uri.contains(version), "{uri}");
        let sha = platform["sha256"].as_str().expect("sha256");
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{sha}"
        );
        let bin = platform["bin"].as_str().expect("bin");
        assert!(bin.starts_with("kubectl-orchscale"), "{bin}");
        let files = platform["files"].as_array().expect("files");
        assert!(
            files.iter().any(|f| f["from"] == bin),
            "the binary is installed: {platform}"
        );
    }
}
