//! The preview of a write: before -> after per field, consequences, GitOps/Helm warnings.

use std::collections::BTreeMap;

use crate::plan::Change;

/// What a command shows before it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    pub changes: Vec<Change>,
    /// e.g. "2 new pods start; no pod restarts".
    pub consequences: Vec<String>,
    pub warnings: Vec<String>,
}

/// Who manages an object when it carries Argo CD, Flux or Helm labels/annotations.
pub fn gitops_manager(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    if let Some(app) = labels
        .get("argocd.argoproj.io/instance")
        .or_else(|| annotations.get("argocd.argoproj.io/instance"))
    {
        return Some(format!("Argo CD (application {app})"));
    }
    if annotations.contains_key("argocd.argoproj.io/tracking-id") {
        return Some("Argo CD".into());
    }
    for (prefix, kind) in [
        ("kustomize.toolkit.fluxcd.io/", "Kustomization"),
        ("helm.toolkit.fluxcd.io/", "HelmRelease"),
    ] {
        let mut keys = labels
            .iter()
            .chain(annotations.iter())
            .filter(|(k, _)| k.starts_with(prefix));
        let all: Vec<_> = keys.by_ref().collect();
        if let Some((_, name)) = all.iter().find(|(k, _)| k.ends_with("/name")) {
            return Some(format!("Flux ({kind} {name})"));
        }
        if !all.is_empty() {
            return Some(format!("Flux {kind}"));
        }
    }
    if let Some(release) = annotations.get("meta.helm.sh/release-name") {
        return Some(format!("Helm (release {release})"));
    }
    if labels.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("Helm") {
        return Some("Helm".into());
    }
    None
}

/// The warning for an object managed by GitOps or Helm, if it is.
pub fn gitops_warning(
    object: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    gitops_manager(labels, annotations).map(|manager| {
        format!(
            "{object} is managed by {manager}: its next sync would revert this change; \
             make the change in its source (Git / values) too"
        )
    })
}

/// The preview as text lines.
pub fn render(preview: &Preview) -> String {
    let mut out = String::from("Changes:\n");
    for c in &preview.changes {
        out.push_str(&format!(
            "  {} {}: {} -> {}\n",
            c.object,
            c.field,
            c.before_text(),
            c.after_text()
        ));
    }
    for line in &preview.consequences {
        out.push_str(&format!("  consequence: {line}\n"));
    }
    for line in &preview.warnings {
        out.push_str(&format!("  WARNING: {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_objects_are_not_managed() {
        assert_eq!(gitops_manager(&map(&[("app", "x")]), &map(&[])), None);
    }

    #[test]
    fn helm_is_detected_by_label_or_annotation() {
        assert_eq!(
            gitops_manager(&map(&[("app.kubernetes.io/managed-by", "Helm")]), &map(&[])),
            Some("Helm".into())
        );
        assert_eq!(
            gitops_manager(&map(&[]), &map(&[("meta.helm.sh/release-name", "orch")])),
            Some("Helm (release orch)".into())
        );
    }

    #[test]
    fn argo_is_detected() {
        assert_eq!(
            gitops_manager(&map(&[("argocd.argoproj.io/instance", "orch-prod")]), &map(&[])),
            Some("Argo CD (application orch-prod)".into())
        );
        assert_eq!(
            gitops_manager(&map(&[]), &map(&[("argocd.argoproj.io/tracking-id", "a:b")])),
            Some("Argo CD".into())
        );
    }

    #[test]
    fn flux_is_detected() {
        let labels = map(&[("kustomize.toolkit.fluxcd.io/name", "apps")]);
        assert_eq!(
            gitops_manager(&labels, &map(&[])),
            Some("Flux (Kustomization apps)".into())
        );
        let labels = map(&[("helm.toolkit.fluxcd.io/namespace", "flux")]);
        assert_eq!(
            gitops_manager(&labels, &map(&[])),
            Some("Flux HelmRelease".into())
        );
    }

    #[test]
    fn warning_says_the_sync_reverts() {
        let w = gitops_warning(
            "deployment/x",
            &map(&[("app.kubernetes.io/managed-by", "Helm")]),
            &map(&[]),
        )
        .unwrap();
        assert!(w.contains("its next sync would revert this change"));
        assert!(w.starts_with("deployment/x"));
    }

    #[test]
    fn render_shows_before_and_after() {
        let preview = Preview {
            changes: vec![Change::new(
                "deployment/x",
                "spec.replicas",
                Some(crate::plan::ChangeValue::count(3)),
                Some(crate::plan::ChangeValue::count(5)),
            )],
            consequences: vec!["2 new pods start".into()],
            warnings: vec!["careful".into()],
        };
        let text = render(&preview);
        assert!(text.contains("deployment/x spec.replicas: 3 -> 5"));
        assert!(text.contains("consequence: 2 new pods start"));
        assert!(text.contains("WARNING: careful"));
    }
}
