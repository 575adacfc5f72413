//! `completion SHELL` and `version`: no cluster needed.

use serde_json::json;

use crate::error::Error;
use crate::report::Reporter;

/// Kubernetes API version the client is built against (k8s-openapi feature).
pub const KUBE_API_VERSION: &str = "1.34";

/// Prints the completion script for `shell` on stdout (see [`crate::complete`]).
///
/// # Errors
/// stdout could not be written.
pub fn completion(shell: clap_complete::Shell) -> Result<(), Error> {
    crate::complete::script(shell, &mut std::io::stdout().lock())
        .map_err(|e| Error::failed(format!("cannot write the completion script: {e}"), ""))
}

/// Version and build info: version, git commit, target, Kubernetes API version.
pub fn version(reporter: &mut Reporter) {
    let version = env!("CARGO_PKG_VERSION");
    let commit = option_env!("ORCHSCALE_GIT_COMMIT").unwrap_or("unknown");
    let target = option_env!("ORCHSCALE_TARGET").unwrap_or("unknown");
    if reporter.is_json() {
        let document = json!({"version": version, "gitCommit": commit, "target": target, "kubernetesApi": KUBE_API_VERSION});
        println!("{}", crate::report::json::render(reporter.format(), &document));
    } else {
        reporter.out(&format!(
            "kubectl-orchscale {version}\n  git commit:      {commit}\n  target:          {target}\n  \
             kubernetes API:  {KUBE_API_VERSION} (k8s-openapi, client kube-rs)"
        ));
    }
}
