//! The preview of a write: before -> after per field, consequences, GitOps/Helm warnings.

use std::collections::BTreeMap;

use super::term::{Palette, Tone};
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

/// The preview as text lines, laid out for `width` columns (`None`: one line per item) and
/// coloured by `palette` (the value replaced red, the value written green, warnings yellow).
///
/// A change that does not fit on one line puts its object, its field path and its values on
/// lines of their own; a path longer than the line breaks after a `.` or before a `[`, and
/// prose between words, so nothing is cut in the middle of a word by the terminal.
pub(crate) fn render(preview: &Preview, width: Option<usize>, palette: Palette) -> String {
    let mut lines = vec!["Changes:".to_string()];
    for c in &preview.changes {
        let (before, after) = (c.before_text(), c.after_text());
        let values = format!(
            "{} -> {}",
            palette.paint(Tone::Removed, &before),
            palette.paint(Tone::Added, &after)
        );
        let one_line = format!("  {} {}: {before} -> {after}", c.object, c.field);
        if width.is_none_or(|w| columns(&one_line) <= w) {
            lines.push(format!("  {} {}: {values}", c.object, c.field));
            continue;
        }
        let width = width.unwrap_or(usize::MAX);
        lines.extend(fill(&path_tokens(&c.object), "  ", "    ", width));
        lines.extend(fill(
            &path_tokens(&format!("{}:", c.field)),
            "    ",
            "      ",
            width,
        ));
        lines.push(format!("      {values}"));
    }
    let width = width.unwrap_or(usize::MAX);
    for line in &preview.consequences {
        lines.extend(fill(
            &prose_tokens(&format!("consequence: {line}")),
            "  ",
            "    ",
            width,
        ));
    }
    for line in &preview.warnings {
        for wrapped in fill(&prose_tokens(&format!("WARNING: {line}")), "  ", "    ", width) {
            lines.push(palette.paint(Tone::Warning, &wrapped));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Display columns of plain text (no escape codes; the previews are ASCII but for names).
fn columns(text: &str) -> usize {
    text.chars().count()
}

/// A word to lay out and the glue that joins it to the word before on the same line (dropped
/// where a line breaks).
type Token<'a> = (&'a str, &'a str);

/// Words of prose: broken between words, joined by a space (runs of spaces, as in a quoted
/// YAML line, are kept where the line does not break).
pub(crate) fn prose_tokens(text: &str) -> Vec<Token<'_>> {
    text.split(' ').map(|w| (" ", w)).collect()
}

/// Pieces of an object or field path (`spec.template.spec.containers[orchestrator].resources`,
/// `statefulset/postgres`): a line may break after a `.` or `/` or before a `[`, never inside
/// a name.
fn path_tokens(path: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = 0;
    for (i, ch) in path.char_indices() {
        let end = match ch {
            '.' | '/' => i + ch.len_utf8(),
            '[' if i > start => i,
            _ => continue,
        };
        if end > start {
            tokens.push(("", &path[start..end]));
            start = end;
        }
    }
    if start < path.len() {
        tokens.push(("", &path[start..]));
    }
    tokens
}

/// Lines of at most `width` columns from `tokens`, the first after `first`, the others after
/// `next`. A single word longer than a line stays whole on a line of its own.
pub(crate) fn fill(tokens: &[Token<'_>], first: &str, next: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut empty = true;
    for &(glue, word) in tokens {
        let joined = if empty { 0 } else { columns(glue) };
        if !empty && columns(&line) + joined + columns(word) > width {
            lines.push(std::mem::replace(&mut line, next.to_string()));
            empty = true;
        }
        if !empty {
            line.push_str(glue);
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
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
        let text = render(&preview, None, Palette::OFF);
        assert!(text.contains("deployment/x spec.replicas: 3 -> 5"));
        assert!(text.contains("consequence: 2 new pods start"));
        assert!(text.contains("WARNING: careful"));
    }

    fn resources_preview() -> Preview {
        Preview {
            changes: vec![Change::new(
                "deployment/orchestrator",
                "spec.template.spec.containers[orchestrator-with-a-long-name].resources.requests.cpu",
                Some(crate::plan::ChangeValue::quantity("500m")),
                Some(crate::plan::ChangeValue::quantity("600m")),
            )],
            consequences: vec![
                "3 pods restart, RollingUpdate maxSurge 1, maxUnavailable 0: one new pod at a time; \
                 no pod leaves before its replacement is Ready"
                    .into(),
            ],
            warnings: vec![],
        }
    }

    #[test]
    fn at_80_columns_nothing_is_wider_and_paths_break_between_names() {
        let text = render(&resources_preview(), Some(80), Palette::OFF);
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{line:?} in\n{text}");
        }
        let path_lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("spec."))
            .take_while(|l| !l.contains("->"))
            .map(str::trim)
            .collect();
        assert_eq!(
            path_lines.concat(),
            "spec.template.spec.containers[orchestrator-with-a-long-name].resources.requests.cpu:",
            "the path, whole, across lines:\n{text}"
        );
        assert!(path_lines.len() > 1, "the path was broken:\n{text}");
        for pair in path_lines.windows(2) {
            assert!(
                pair[0].ends_with('.') || pair[1].starts_with('['),
                "a line ends between names: {pair:?}"
            );
        }
        assert!(text.contains("      500m -> 600m"), "{text}");
        let consequence: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("consequence:"))
            .map(str::trim)
            .collect();
        assert!(consequence.len() > 1, "{text}");
        assert_eq!(
            consequence.join(" "),
            format!("consequence: {}", resources_preview().consequences[0]),
            "prose breaks between words, nothing lost:\n{text}"
        );
    }

    #[test]
    fn unwrapped_prose_keeps_its_spaces() {
        let tokens = prose_tokens("line 9: \"  max_connections: 20\"");
        assert_eq!(
            fill(&tokens, "  ", "    ", usize::MAX),
            ["  line 9: \"  max_connections: 20\""]
        );
    }

    #[test]
    fn a_line_that_fits_stays_one_line() {
        let text = render(&resources_preview(), Some(200), Palette::OFF);
        assert!(text.contains(
            "  deployment/orchestrator spec.template.spec.containers[orchestrator-with-a-long-name]\
             .resources.requests.cpu: 500m -> 600m"
        ));
    }

    #[test]
    fn colour_marks_the_values_and_warnings_only() {
        let mut preview = resources_preview();
        preview.warnings.push("careful".into());
        let on = Palette::decide(false, None, None, true);
        let text = render(&preview, None, on);
        assert!(
            text.contains("\u{1b}[31m500m\u{1b}[0m -> \u{1b}[32m600m\u{1b}[0m"),
            "{text:?}"
        );
        assert!(text.contains("\u{1b}[33m  WARNING: careful\u{1b}[0m"), "{text:?}");
        assert!(
            text.starts_with("Changes:\n  deployment/orchestrator spec."),
            "{text:?}"
        );
    }
}
