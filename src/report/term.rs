//! Terminal progress bar (indicatif) on stderr; the only module that uses indicatif.
//!
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
