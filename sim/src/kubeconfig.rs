//! The kubeconfig that points clients (kube-rs, kubectl) at a running sim: one cluster, the
//! all-powerful user and current context named `orchscale-sim` (no namespace), and one user and
//! context per RBAC user (`sim-ns-admin`, `sim-operator`, namespace `llm-orchestrator`) while
//! `ApiBehaviour::rbac` is on. The CA is inline; each user has a bearer token.

use std::io::Write;
use std::path::Path;

use base64::Engine;

/// The name of the cluster, user and context.
pub const NAME: &str = "orchscale-sim";

/// Renders the kubeconfig YAML; `rbac_users` are the RBAC users and their tokens.
pub fn render(server_url: &str, ca_pem: &str, token: &str, rbac_users: &[(&str, String)]) -> String {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut users = format!("- name: {NAME}\n  user:\n    token: {token}\n");
    let mut contexts = format!("- name: {NAME}\n  context:\n    cluster: {NAME}\n    user: {NAME}\n");
    for (user, token) in rbac_users {
        users.push_str(&format!("- name: {user}\n  user:\n    token: {token}\n"));
        contexts.push_str(&format!(
            "- name: {user}\n  context:\n    cluster: {NAME}\n    user: {user}\n    namespace: {}\n",
            crate::server::rbac::NAMESPACE
        ));
    }
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    server: {server_url}
    certificate-authority-data: {ca_data}
users:
{users}contexts:
{contexts}current-context: {NAME}
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
        let yaml = render("https://127.0.0.1:1234", "PEM", "tok", &[]);
        assert!(yaml.contains("server: https://127.0.0.1:1234"));
        assert!(yaml.contains("certificate-authority-data: UEVN"));
        assert!(yaml.contains("token: tok"));
        assert!(yaml.contains("current-context: orchscale-sim"));
        assert!(!yaml.contains("namespace:"));
    }

    #[test]
    fn rbac_users_get_a_context_in_their_namespace_after_the_admin() {
        let yaml = render("https://x", "PEM", "tok", &[("sim-ns-admin", "t2".to_owned())]);
        let admin = yaml.find("token: tok").expect("admin token");
        let second = yaml.find("token: t2").expect("second token");
        assert!(admin < second, "the admin user comes first");
        assert!(yaml.contains("- name: sim-ns-admin\n  context:\n    cluster: orchscale-sim\n    user: sim-ns-admin\n    namespace: llm-orchestrator\n"));
        assert!(yaml.contains("current-context: orchscale-sim"));
    }
}
