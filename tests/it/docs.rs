//! The documentation in the repository keeps up with the binary: `docs/reference.md` names every
//! command and long flag that `--help` shows, the README links it and nothing outside the
//! repository, and CI runs the README's test command.

use std::process::Command;

fn help(words: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-orchscale"))
        .args(words)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{words:?} --help: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The subcommands listed under `Commands:` (without `help`).
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The long flags of the option lines (`  -n, --namespace <NS>  ...`, `      --dry-run  ...`).
fn long_flags(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| {
            l.split("  ")
                .next()
                .unwrap_or_default()
                .split([' ', ','])
                .filter(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches("...").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `text` has `flag` as a whole word (`--max` is not named by `--max-surge`).
fn names(text: &str, flag: &str) -> bool {
    text.match_indices(flag)
        .any(|(at, _)| !text[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
}

fn reference() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md"))
        .expect("docs/reference.md")
}

#[test]
fn the_reference_names_every_command_and_long_flag_of_the_help() {
    let reference = reference();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&words);
        if !path.is_empty() {
            let command = format!("`{}", path.join(" "));
            assert!(
                reference.contains(&command),
                "docs/reference.md does not name the command {command}`"
            );
        }
        for flag in long_flags(&text) {
            assert!(
                names(&reference, &flag),
                "docs/reference.md does not name {flag} (in `{} --help`)",
                path.join(" ")
            );
            seen += 1;
        }
        for sub in commands(&text) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
    }
    assert!(seen > 100, "the help's flags were found ({seen})");
}

#[test]
fn the_readme_links_the_reference_and_nothing_outside_the_repository() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains("(docs/reference.md)"),
        "README links docs/reference.md"
    );
    // A Markdown link (or image) whose target climbs out of the repository.
    for (name, text) in [
        ("README.md", readme.as_str()),
        ("docs/reference.md", &reference()),
    ] {
        assert!(!text.contains("](../"), "{name}: a link outside the repository");
    }
}

/// The first line of the first code block after `heading` in `markdown`.
fn first_command_after(markdown: &str, heading: &str) -> Option<String> {
    markdown
        .lines()
        .skip_while(|l| *l != heading)
        .skip_while(|l| !l.starts_with("```"))
        .nth(1)
        .map(str::to_string)
}

#[test]
fn ci_runs_exactly_the_readmes_test_command() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let command = first_command_after(&readme, "## Run the tests").expect("a test command");
    assert_eq!(command, "cargo test --workspace", "needs only Rust");
    let ci = std::fs::read_to_string(format!("{root}/.ci/run")).unwrap();
    let run = ci
        .lines()
        .skip_while(|l| !l.starts_with("# The README's test command"))
        .nth(1);
    assert_eq!(run, Some(command.as_str()), ".ci/run's last step");
}

#[test]
fn the_help_parsers_find_what_they_look_for() {
    let text = "Commands:\n  scale  Set\n  help  Print\n\nOptions:\n  -n, --namespace <NS>  Namespace, see --other\n      --v...  x\n";
    assert_eq!(commands(text), ["scale"]);
    assert_eq!(long_flags(text), ["--namespace", "--v"]);
    assert!(names("`--max N`", "--max") && !names("`--max-surge`", "--max"));
}
