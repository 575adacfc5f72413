//! Everything the user sees: text vs JSON, -q/-v, progress, the banner, previews.
//!
//! Commands never print directly; they call the [`Reporter`]. stdout carries the result
//! (text, or the one JSON document), stderr carries banner, preview, progress and warnings.

pub mod json;
pub mod panel;
pub mod plain;
pub mod preview;
pub mod prompt;
pub mod term;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cli::{GlobalOpts, OutputFormat};
use crate::plan::Change;
use plain::PlainProgress;
use preview::Preview;
use term::{Palette, TermProgress, Tone};

/// How much to say on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// One step of a rollout, as the follower sees it: per phase of what `kubectl rollout status`
/// waits for (updated, available, old replicas gone), every count within its total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `deployment/orchestrator`.
    pub object: String,
    /// spec.replicas.
    pub desired: i32,
    /// Replicas of the current template, at most `desired`.
    pub updated: i32,
    /// Available replicas of the current template, at most `updated`.
    pub available: i32,
    /// Replicas of an older template still to remove.
    pub old: i32,
    /// Replicas beyond `desired` still to remove (a scale-down).
    pub surplus: i32,
    /// Steps done of `total_steps` (see `follow::progress`): equal only once the rollout is
    /// complete, so that the bar is full only then.
    pub done_steps: u64,
    pub total_steps: u64,
    /// The rollout is complete.
    pub complete: bool,
    /// The ReplicaSet of a template change (none on a pure scale).
    pub new_replica_set: Option<String>,
    pub eta: Option<Duration>,
    /// Free text such as "2 pod(s) terminating".
    pub note: String,
}

impl Progress {
    /// Whole percent done, 100 only when complete.
    pub fn percent(&self) -> u64 {
        if self.done_steps >= self.total_steps {
            100
        } else {
            self.done_steps * 100 / self.total_steps
        }
    }
}

enum ProgressSink {
    None,
    Plain(PlainProgress<std::io::Stderr>),
    Term(TermProgress),
}

/// Where the command works, for the banner and the JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub context: String,
    pub server: String,
    pub namespace: String,
}

/// The command's output channel.
pub struct Reporter {
    /// Set once connected.
    target: Target,
    /// Every warning said, for the JSON document's `warnings`.
    warnings: Vec<String>,
    /// Makes a listener of the process's Ctrl-C handler, held while a prompt asks (see
    /// [`prompt::confirm`]); given by the caller so that reporting needs no signal handling.
    ctrl_c_listener: Option<fn() -> Box<dyn std::any::Any>>,
    format: OutputFormat,
    verbosity: Verbosity,
    sink: ProgressSink,
    stderr_is_terminal: bool,
    /// Colour on stdout and on stderr (see [`term::Palette::decide`]).
    stdout_palette: Palette,
    stderr_palette: Palette,
    /// The width stderr's previews are laid out for (`None`: one line per item).
    stderr_width: Option<usize>,
    /// The JSON document the command built, printed by `lib::run` (once).
    document: Option<Value>,
    /// Banner and preview hidden by JSON mode: shown after all if a prompt asks, since nobody
    /// should confirm a change without seeing where it goes and what it is.
    unshown: Vec<String>,
}

impl Reporter {
    pub fn new(global: &GlobalOpts) -> Self {
        let verbosity = if global.quiet {
            Verbosity::Quiet
        } else if global.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let json = global.output != OutputFormat::Text;
        Reporter {
            target: Target::default(),
            warnings: Vec::new(),
            ctrl_c_listener: None,
            format: global.output,
            verbosity,
            sink: ProgressSink::None,
            stderr_is_terminal,
            stdout_palette: Palette::from_env(global.no_color || json, std::io::stdout().is_terminal()),
            stderr_palette: Palette::from_env(global.no_color, stderr_is_terminal),
            stderr_width: term::stderr_width(stderr_is_terminal),
            document: None,
            unshown: Vec::new(),
        }
    }

    /// `-v` (or a higher `-v=N`): details and causes are said.
    pub fn is_verbose(&self) -> bool {
        self.verbosity >= Verbosity::Verbose
    }

    /// `-o json` or `-o yaml`: the result is one document on stdout (not text), and stderr
    /// carries only warnings and prompts.
    pub fn is_json(&self) -> bool {
        self.format.is_document()
    }

    /// The document format (`-o`).
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    fn chatty(&self) -> bool {
        !self.is_json() && self.verbosity >= Verbosity::Normal
    }

    /// Prints a line on stderr without tearing a progress bar.
    fn stderr_line(&mut self, text: &str) {
        match &mut self.sink {
            ProgressSink::Term(term) => term.line(text),
            ProgressSink::Plain(plain) => plain.line(text),
            ProgressSink::None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    /// `text` laid out for stderr's width: a line too long breaks between words, its next
    /// lines indented two more spaces, so that the terminal never cuts a word.
    fn fitted(&self, text: &str) -> String {
        let Some(width) = self.stderr_width else {
            return text.to_string();
        };
        let mut lines = Vec::new();
        for line in text.lines() {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            lines.extend(preview::fill(
                &preview::prose_tokens(body),
                indent,
                &format!("{indent}  "),
                width,
            ));
        }
        lines.join("\n")
    }

    /// Information (stderr); hidden by -q and in JSON mode.
    pub fn info(&mut self, text: &str) {
        if self.chatty() {
            let text = self.fitted(text);
            self.stderr_line(&text);
        }
    }

    /// Details for -v (stderr).
    pub fn detail(&mut self, text: &str) {
        if !self.is_json() && self.verbosity >= Verbosity::Verbose {
            self.stderr_line(text);
        }
    }

    /// Warnings (stderr); shown even with -q and in JSON mode, since they are about safety.
    /// A warning is said once: a step that meets the same limit again stays quiet.
    pub fn warn(&mut self, text: &str) {
        if self.warnings.iter().any(|w| w == text) {
            return;
        }
        let fitted = self.fitted(&format!("warning: {text}"));
        let line = self.stderr_palette.paint(Tone::Warning, &fitted);
        self.stderr_line(&line);
        self.warnings.push(text.to_string());
    }

    /// How to listen for Ctrl-C while a prompt asks.
    pub fn listen_for_ctrl_c_with(&mut self, listener: fn() -> Box<dyn std::any::Any>) {
        self.ctrl_c_listener = Some(listener);
    }

    /// Where the command works (set once connected): the banner and the JSON document say it.
    pub fn set_target(&mut self, target: Target) {
        self.target = target;
    }

    /// The target banner before any write: context, cluster server, namespace.
    pub fn banner(&mut self) {
        let parts = [
            format!("Target: context {}", self.target.context),
            format!("server {}", self.target.server),
            format!("namespace {}", self.target.namespace),
        ];
        let tokens: Vec<(&str, &str)> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| (if i == 0 { "" } else { " | " }, p.as_str()))
            .collect();
        let lines = preview::fill(&tokens, "", "  ", self.stderr_width.unwrap_or(usize::MAX));
        self.show_or_keep(&lines.join("\n"));
    }

    /// Where the command works, as one line of its result (stdout), e.g. for `validate`.
    pub(crate) fn target_line(&self) -> String {
        format!(
            "Context {} | server {} | namespace {}",
            self.target.context, self.target.server, self.target.namespace
        )
    }

    /// Shows context before a write (stderr), also with -q: nobody should have a change made
    /// without seeing where it goes and what it is. JSON mode keeps it for a prompt.
    fn show_or_keep(&mut self, text: &str) {
        if !self.is_json() {
            self.stderr_line(text);
        } else {
            self.unshown.push(text.to_string());
        }
    }

    /// The hidden banner and preview, taken when a prompt is about to ask.
    fn unshown_before_prompt(&mut self, asking: bool) -> Vec<String> {
        if asking {
            std::mem::take(&mut self.unshown)
        } else {
            Vec::new()
        }
    }

    /// The preview of a write (stderr in text mode; JSON mode reports `changes` instead).
    pub fn preview(&mut self, preview: &Preview) {
        for warning in &preview.warnings {
            if self.is_json() {
                self.warn(warning);
            }
        }
        let text = preview::render(preview, self.stderr_width, self.stderr_palette);
        self.show_or_keep(text.trim_end());
    }

    /// How a live view (the `hpa --watch` panel) is shown: off in JSON mode and with -q,
    /// redrawn in place when stderr is a terminal, plain lines otherwise.
    pub fn live_mode(&self) -> panel::LiveMode {
        panel::live_mode(
            self.is_json(),
            self.verbosity == Verbosity::Quiet,
            self.stderr_is_terminal,
        )
    }

    /// A rollout progress event: a bar on a terminal, plain lines otherwise, none in JSON/-q.
    pub fn progress(&mut self, progress: &Progress) {
        if !self.chatty() {
            return;
        }
        if matches!(self.sink, ProgressSink::None) {
            self.sink = if self.stderr_is_terminal {
                ProgressSink::Term(TermProgress::new(progress))
            } else {
                ProgressSink::Plain(PlainProgress::new(std::io::stderr()))
            };
        }
        match &mut self.sink {
            ProgressSink::Term(term) => term.update(progress),
            ProgressSink::Plain(plain) => plain.update(progress),
            ProgressSink::None => {}
        }
    }

    /// Ends the progress display (clears the bar).
    pub fn progress_done(&mut self) {
        if let ProgressSink::Term(term) = &self.sink {
            term.finish();
        }
        self.sink = ProgressSink::None;
    }

    /// Asks `Continue? [y/N]` after `question` (e.g. "3 pods restart, one at a time"), per the
    /// SPEC's confirmation rule; clears the progress display first so the prompt is readable.
    ///
    /// # Errors
    /// [`crate::error::Error::NotConfirmed`] (exit 3) when declined or when there is no terminal.
    pub fn confirm(&mut self, question: &str, yes: bool, dry_run: bool) -> Result<(), crate::error::Error> {
        self.progress_done();
        let asking = prompt::decide(yes, dry_run, std::io::stdin().is_terminal()) == prompt::Decision::Ask;
        for line in self.unshown_before_prompt(asking) {
            self.stderr_line(&line);
        }
        if asking {
            // Said here, once: the prompt below asks only "Continue?", so that its redraw with
            // the answer does not repeat the question.
            let question = self.fitted(question);
            self.stderr_line(&question);
        }
        let ctrl_c = if asking {
            self.ctrl_c_listener.map(|listen| listen())
        } else {
            None
        };
        prompt::confirm(question, yes, dry_run, ctrl_c)
    }

    /// The verdict of a command in text mode (stdout), green when verified, red when not.
    pub(crate) fn verdict(&mut self, ok: bool, text: &str) {
        let tone = if ok { Tone::Good } else { Tone::Bad };
        let painted = self.stdout_palette.paint(tone, text);
        self.out(&painted);
    }

    /// A preview as text for stdout (a command whose result is the preview, as `diff`):
    /// coloured as stdout is, one line per item.
    pub(crate) fn preview_text(&self, preview: &Preview) -> String {
        preview::render(preview, None, self.stdout_palette)
    }

    /// Colour for stderr, for the error line printed after the command (`lib::run`).
    pub(crate) fn stderr_palette(&self) -> Palette {
        self.stderr_palette
    }

    /// The result in text mode (stdout); nothing in JSON mode.
    pub fn out(&mut self, text: &str) {
        if !self.is_json() {
            self.progress_done();
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    }

    /// Records the command's JSON document (printed once, at the end, by `lib::run`).
    /// `fields` are the command's own (a serde type per command): an object whose fields join
    /// the common ones.
    pub fn set_document(
        &mut self,
        command: &str,
        dry_run: bool,
        changes: &[Change],
        ok: bool,
        fields: impl serde::Serialize,
    ) {
        let extra = match serde_json::to_value(fields) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        self.document = Some(json::document(
            command,
            &self.target.context,
            &self.target.namespace,
            dry_run,
            changes,
            ok,
            extra,
        ));
    }

    /// Every warning said so far (for a failure's error document).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Takes the recorded document, if any, with every warning said in `warnings` (the
    /// command's own first), so that a script sees what a person reads on stderr.
    pub fn take_document(&mut self) -> Option<Value> {
        let mut document = self.document.take()?;
        json::add_warnings(&mut document, &self.warnings);
        Some(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn reporter(flags: &[&str]) -> Reporter {
        let mut args = vec!["kubectl-orchscale"];
        args.extend_from_slice(flags);
        args.push("status");
        Reporter::new(&crate::cli::Cli::try_parse_from(args).unwrap().global)
    }

    #[test]
    fn a_prompt_shows_the_target_that_json_hid() {
        {
            let mut r = reporter(&["-o", "json"]);
            let flags = "-o json";
            r.show_or_keep("Target: context prod | server https://prod:6443 | namespace x");
            assert!(
                r.unshown_before_prompt(false).is_empty(),
                "no prompt: stays hidden"
            );
            assert_eq!(
                r.unshown_before_prompt(true),
                ["Target: context prod | server https://prod:6443 | namespace x"],
                "{flags:?}"
            );
            assert!(r.unshown_before_prompt(true).is_empty(), "shown once");
        }
        for flags in [&[][..], &["-q"][..]] {
            let mut shown = reporter(flags);
            shown.show_or_keep("Target: shown at once, -q too");
            assert!(shown.unshown_before_prompt(true).is_empty(), "{flags:?}");
        }
    }
}
