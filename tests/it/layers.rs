//! The layer rules of the README's Layout section, checked on the source: a `use crate::…` (or
//! `crate::…::` path) that breaks one fails here, naming the file, the line and the rule.

use std::path::{Path, PathBuf};

/// Which modules may not be reached from which files.
struct Rule {
    /// Files under this path (relative to `src/`) follow the rule.
    files: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        files: "plan",
        forbidden: &["cluster", "report", "commands", "cli", "follow", "interrupt"],
        why: "plan/ holds pure decisions: no API, no terminal, no commands",
    },
    Rule {
        files: "quantity.rs",
        forbidden: &["cluster", "report", "commands", "cli", "follow", "interrupt"],
        why: "quantity is a pure value type",
    },
    Rule {
        files: "health.rs",
        forbidden: &["cluster", "report", "commands", "cli", "follow", "interrupt"],
        why: "health predicates are plain functions over objects",
    },
    Rule {
        files: "follow/tracker.rs",
        forbidden: &["report", "commands", "cli", "interrupt"],
        why: "the follower's verdict is a pure tracker over watch items",
    },
    Rule {
        files: "report",
        forbidden: &["cluster", "follow", "interrupt", "commands"],
        why: "report/ only renders what it is given",
    },
    Rule {
        files: "cluster",
        forbidden: &["cli", "report", "commands", "follow", "interrupt"],
        why: "cluster/ takes a connection config and answers with data",
    },
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a line names (`use crate::cluster::…`, `crate::report::json::…`).
fn crate_paths(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .filter(|(at, _)| {
            // Not `orchscale_crate::` or the like: a path segment starts here.
            *at == 0 || !line[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .filter_map(|(at, _)| {
            let rest = &line[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).expect("readable source");
        for rule in RULES.iter().filter(|r| {
            relative == r.files || relative.starts_with(&format!("{}/", r.files.trim_end_matches(".rs")))
        }) {
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for module in crate_paths(code) {
                    if rule.forbidden.contains(&module) {
                        found.push(format!(
                            "src/{relative}:{}: uses crate::{module} ({})",
                            number + 1,
                            rule.why
                        ));
                    }
                }
            }
        }
        // Watches are built in one place.
        if relative != "cluster/watch.rs" && text.contains("watcher::watcher(") {
            found.push(format!(
                "src/{relative}: builds a kube watcher (watches are built in cluster/watch.rs)"
            ));
        }
        // Only cluster/ talks to the API server.
        if !relative.starts_with("cluster/")
            && (text.contains("Api::namespaced(") || text.contains("Api::all("))
        {
            found.push(format!("src/{relative}: calls kube::Api outside cluster/"));
        }
    }
    found
}

#[test]
fn the_layer_rules_hold() {
    let found = violations();
    assert!(found.is_empty(), "layer rules broken:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_crate_paths() {
    assert_eq!(crate_paths("use crate::cluster::Cluster;"), ["cluster"]);
    assert_eq!(
        crate_paths("let x = crate::report::json::document(crate::plan::X);"),
        ["report", "plan"]
    );
    assert!(crate_paths("use my_crate::cluster;").is_empty());
}
