//! The terminal: whether a stream gets colour and how wide it is (the one place that decides),
//! and the progress bar (indicatif) on stderr; the only module that uses indicatif.
//!
//! Colour is `anstyle`'s escape codes: clap already builds it (no new crate in the tree) and
//! it only renders SGR sequences, so the decision stays here rather than in a crate's global
//! state (owo-colors' `supports-colors` or console's `colors_enabled` would each decide again).
//! The bar counts the rollout's steps (`follow::progress`), not Ready pods: it is full only
//! once the rollout is complete, and the message says each phase's count.

use std::time::Duration;

use dialoguer::console::{Term, truncate_str};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Progress;

pub struct TermProgress {
    bar: ProgressBar,
}

impl TermProgress {
    /// A bar already showing `first`, so it never draws an empty frame: it is drawn only once
    /// its numbers are set.
    pub fn new(first: &Progress) -> Self {
        let bar = ProgressBar::with_draw_target(Some(first.total_steps), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{spinner} [{bar:30}] {wide_msg}\n  {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let term = TermProgress { bar };
        term.update(first);
        term.bar.set_draw_target(ProgressDrawTarget::stderr());
        term.bar.enable_steady_tick(Duration::from_millis(120));
        term
    }

    /// Two lines, so that 80 columns hold what matters: the bar with the object, its percentage
    /// and ETA, then the phases' counts, the note and the new ReplicaSet. Each is cut at the
    /// terminal's width (the least important last), since a wrapped line would make the next
    /// redraw erase too little.
    pub fn update(&self, p: &Progress) {
        let mut head = format!("{} {:>3}%", p.object, p.percent());
        if let Some(eta) = p.eta {
            head.push_str(&format!("  eta {}", super::plain::eta_text(eta)));
        }
        let mut phases = super::plain::phases(p);
        if !p.note.is_empty() {
            phases.push_str(&format!("  {}", p.note));
        }
        if let Some(rs) = &p.new_replica_set {
            phases.push_str(&format!("  (new replicaset {rs})"));
        }
        let width = usize::from(Term::stderr().size().1).max(20);
        self.bar
            .set_prefix(truncate_str(&phases, width.saturating_sub(3), "…").into_owned());
        self.bar.set_length(p.total_steps);
        self.bar.set_position(p.done_steps);
        self.bar.set_message(head);
    }

    /// Prints a line above the bar without tearing it.
    pub fn line(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// What a coloured piece of text means; only meaningful things are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// A verified result, a passed check: green.
    Good,
    /// An error, a failed check: red.
    Bad,
    /// A warning: yellow.
    Warning,
    /// The value a change replaces (a diff's `-`): red.
    Removed,
    /// The value a change writes (a diff's `+`): green.
    Added,
}

/// Colour for one stream (stdout or stderr), on or off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Palette {
    on: bool,
}

impl Palette {
    /// No colour.
    #[cfg(test)]
    pub(crate) const OFF: Palette = Palette { on: false };

    /// Colour for a stream: off with `--no-color`, with `NO_COLOR` set to anything but the
    /// empty string (no-color.org), with `TERM=dumb`, or when the stream is no terminal.
    pub(crate) fn decide(
        no_color_flag: bool,
        no_color_env: Option<&std::ffi::OsStr>,
        term: Option<&std::ffi::OsStr>,
        is_terminal: bool,
    ) -> Palette {
        let env_says_no = no_color_env.is_some_and(|v| !v.is_empty());
        let dumb = term.is_some_and(|t| t == "dumb");
        Palette {
            on: is_terminal && !no_color_flag && !env_says_no && !dumb,
        }
    }

    /// [`Palette::decide`] from this process's environment.
    pub(crate) fn from_env(no_color_flag: bool, is_terminal: bool) -> Palette {
        Palette::decide(
            no_color_flag,
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
            is_terminal,
        )
    }

    #[cfg(test)]
    pub(crate) fn is_on(self) -> bool {
        self.on
    }

    /// `text` in the colour of `tone` (unchanged when off).
    pub(crate) fn paint(self, tone: Tone, text: &str) -> String {
        if !self.on || text.is_empty() {
            return text.to_string();
        }
        use anstyle::AnsiColor;
        let colour = match tone {
            Tone::Good | Tone::Added => AnsiColor::Green,
            Tone::Bad | Tone::Removed => AnsiColor::Red,
            Tone::Warning => AnsiColor::Yellow,
        };
        let style = colour.on_default();
        format!("{style}{text}{style:#}")
    }
}

/// The width text on stderr is laid out for when it is a terminal: `COLUMNS` when set to a
/// number (as a user or a test sets it), else the terminal's width. `None` (no wrapping) when
/// stderr is no terminal, whatever `COLUMNS` says, so that logs keep one line per item.
pub(crate) fn stderr_width(is_terminal: bool) -> Option<usize> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    width_from(columns, is_terminal, || {
        dialoguer::console::Term::stderr()
            .size_checked()
            .map(|(_, cols)| usize::from(cols))
    })
}

fn width_from(
    columns: Option<usize>,
    is_terminal: bool,
    terminal: impl FnOnce() -> Option<usize>,
) -> Option<usize> {
    if !is_terminal {
        return None;
    }
    columns
        .filter(|c| *c > 0)
        .or_else(|| terminal().filter(|c| *c > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_a_refusal() {
        assert!(Palette::decide(false, None, None, true).is_on());
        assert!(!Palette::decide(false, None, None, false).is_on(), "no terminal");
        assert!(!Palette::decide(true, None, None, true).is_on(), "--no-color");
        assert!(!Palette::decide(false, Some(OsStr::new("1")), None, true).is_on());
        assert!(
            !Palette::decide(false, Some(OsStr::new("0")), None, true).is_on(),
            "any non-empty NO_COLOR, even 0"
        );
        assert!(
            Palette::decide(false, Some(OsStr::new("")), None, true).is_on(),
            "an empty NO_COLOR is ignored (no-color.org)"
        );
        assert!(!Palette::decide(false, None, Some(OsStr::new("dumb")), true).is_on());
    }

    #[test]
    fn paint_wraps_in_sgr_only_when_on() {
        let on = Palette::decide(false, None, None, true);
        assert_eq!(on.paint(Tone::Good, "ok"), "\u{1b}[32mok\u{1b}[0m");
        assert_eq!(on.paint(Tone::Removed, "3"), "\u{1b}[31m3\u{1b}[0m");
        assert_eq!(on.paint(Tone::Warning, "w"), "\u{1b}[33mw\u{1b}[0m");
        assert_eq!(Palette::OFF.paint(Tone::Bad, "x"), "x");
    }

    #[test]
    fn columns_wins_then_the_terminal_then_no_wrapping() {
        assert_eq!(width_from(Some(80), true, || Some(200)), Some(80));
        assert_eq!(
            width_from(Some(80), false, || Some(200)),
            None,
            "logs stay one line"
        );
        assert_eq!(width_from(None, true, || Some(120)), Some(120));
        assert_eq!(width_from(None, false, || Some(120)), None);
        assert_eq!(width_from(Some(0), true, || None), None);
        assert_eq!(width_from(Some(0), true, || Some(100)), Some(100));
    }
}
