//! Terminal progress bar (indicatif) on stderr; the only module that uses indicatif.
//!
//! The bar counts the rollout's steps (`follow::progress`), not Ready pods: it is full only
//! once the rollout is complete, and the message says each phase's count.

use std::time::Duration;

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
        let style = ProgressStyle::with_template("{spinner} {prefix} [{bar:16}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let term = TermProgress { bar };
        term.update(first);
        term.bar.set_draw_target(ProgressDrawTarget::stderr());
        term.bar.enable_steady_tick(Duration::from_millis(120));
        term
    }

    /// The bar's line fits 80 columns with the phases (for a name of up to 12 characters): the
    /// object's name only (the kind was said when the change was applied), a short bar, then
    /// the phases; the rest (ETA, note, ReplicaSet) follows, cut at the terminal's width.
    pub fn update(&self, p: &Progress) {
        let name = p.object.rsplit('/').next().unwrap_or(&p.object);
        self.bar.set_prefix(name.to_string());
        self.bar.set_length(p.total_steps);
        self.bar.set_position(p.done_steps);
        let mut msg = format!("{:>3}% {}", p.percent(), super::plain::phases(p));
        if let Some(eta) = p.eta {
            msg.push_str(&format!("  eta {}", super::plain::eta_text(eta)));
        }
        if !p.note.is_empty() {
            msg.push_str(&format!("  {}", p.note));
        }
        if let Some(rs) = &p.new_replica_set {
            msg.push_str(&format!("  rs {rs}"));
        }
        self.bar.set_message(msg);
    }

    /// Prints a line above the bar without tearing it.
    pub fn line(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
