//! The kubeconfig that points clients (kube-rs, kubectl) at a running sim: one cluster, user
//! and context named `orchscale-sim`, the CA inline, a bearer token, no namespace.

use std::io::Write;
use std::path::Path;

use base64::Engine;

/// The name of the cluster, user and context.
pub const NAME: &str = "orchscale-sim";

/// Renders the kubeconfig YAML.
pub fn render(server_url: &str, ca_pem: &str, token: &str) -> String {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    server: {server_url}
    certificate-authority-data: {ca_data}
users:
- name: {NAME}
  user:
    token: {token}
contexts:
- name: {NAME}
  context:
    cluster: {NAME}
    user: {NAME}
current-context: {NAME}
preferences: {{}}
"
    )
}

/// Writes the kubeconfig, readable by its owner only (it holds the token).
///
/// # Errors
/// When the file cannot be created or written.
pub fn write(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cluster_user_and_current_context_without_namespace() {
        let yaml = render("https://127.0.0.1:1234", "PEM", "tok");
        assert!(yaml.contains("server: https://127.0.0.1:1234"));
        assert!(yaml.contains("certificate-authority-data: UEVN"));
        assert!(yaml.contains("token: tok"));
        assert!(yaml.contains("current-context: orchscale-sim"));
        assert!(!yaml.contains("namespace:"));
    }
}
