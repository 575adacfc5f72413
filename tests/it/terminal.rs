//! What a person at a terminal sees (script(1) gives the binary a pseudo-terminal): colour only
//! there and never with `NO_COLOR` or `--no-color`, a preview laid out for 80 columns, and the
//! downtime sentence of `db resources` said once.

use crate::harness::{run, sim, wait_ready};
use crate::prompt::{can_emulate_a_terminal, on_terminal};

/// SGR colour codes (red, green, yellow), as opposed to the cursor movements a prompt makes.
const COLOURS: [&str; 3] = ["\u{1b}[31m", "\u{1b}[32m", "\u{1b}[33m"];

fn coloured(text: &str) -> bool {
    COLOURS.iter().any(|c| text.contains(c))
}

const DRY_RUN: &str = "resources --requests cpu=600m --dry-run";

#[test]
fn colour_on_a_terminal_and_not_with_no_color_or_without_a_terminal() {
    if !can_emulate_a_terminal() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let out = on_terminal(&sim, DRY_RUN, &[("TERM", "xterm")], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // The diff: the value replaced in red, the value written in green.
    assert!(
        text.contains("\u{1b}[31m500m\u{1b}[0m -> \u{1b}[32m600m\u{1b}[0m"),
        "{text:?}"
    );
    // no-color.org: any non-empty value turns colour off.
    for (env, flag) in [(Some("1"), ""), (Some("0"), ""), (None, " --no-color")] {
        let env: Vec<(&str, &str)> = [("TERM", "xterm")]
            .into_iter()
            .chain(env.map(|v| ("NO_COLOR", v)))
            .collect();
        let out = on_terminal(&sim, &format!("{DRY_RUN}{flag}"), &env, "");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("500m -> 600m"), "{text:?}");
        assert!(!coloured(&text), "no colour with {env:?}{flag}: {text:?}");
    }
    // Without a terminal (pipes), no colour either.
    let piped = run(&sim, &["resources", "--requests", "cpu=600m", "--dry-run"]);
    piped.assert_code(0);
    assert!(piped.stderr.contains("500m -> 600m"), "{}", piped.stderr);
    assert!(!coloured(&piped.stderr) && !coloured(&piped.stdout), "{piped:?}");
}

#[test]
fn the_preview_fits_80_columns_and_paths_break_between_names() {
    if !can_emulate_a_terminal() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let out = on_terminal(&sim, DRY_RUN, &[("COLUMNS", "80"), ("NO_COLOR", "1")], "");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Everything before the result (stdout, "dry run: ..."): banner, diff, consequences.
    let before_result: Vec<&str> = text.lines().take_while(|l| !l.starts_with("dry run")).collect();
    assert!(before_result.iter().any(|l| l.starts_with("Changes:")), "{text}");
    for line in &before_result {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}\n{text}"
        );
    }
    // The path is one piece on its own line, not cut by the terminal in the middle of a name.
    assert!(
        before_result.contains(&"    spec.template.spec.containers[orchestrator].resources.requests.cpu:"),
        "{text}"
    );
    assert!(before_result.contains(&"      500m -> 600m"), "{text}");
}

#[test]
fn db_resources_says_its_downtime_sentence_once() {
    if !can_emulate_a_terminal() {
        return;
    }
    let sim = sim();
    wait_ready(&sim, 3);
    let out = on_terminal(
        &sim,
        "db resources --requests cpu=600m",
        &[("NO_COLOR", "1")],
        "n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "declined:\n{text}");
    assert_eq!(
        text.matches("the database restarts and is unavailable during the restart")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("DOWNTIME"), "{text}");
    assert!(
        text.contains("statefulset/postgres: 1 pod restarts, with downtime"),
        "{text}"
    );
    assert!(sim.persisted_writes().is_empty(), "{:?}", sim.persisted_writes());
}
