//! Terminal progress bar (indicatif) on stderr; the only module that uses indicatif.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Progress;

pub struct TermProgress {
    bar: ProgressBar,
}

impl TermProgress {
    /// A bar already showing `first`, so it never draws an empty 0/0 frame.
    pub fn new(first: &Progress) -> Self {
        let bar =
            ProgressBar::with_draw_target(Some(first.desired.max(0) as u64), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} ready  {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        let term = TermProgress { bar };
        term.update(first);
        term.bar.enable_steady_tick(Duration::from_millis(120));
        term
    }

    pub fn update(&self, p: &Progress) {
        self.bar.set_prefix(p.object.clone());
        self.bar.set_length(p.desired.max(0) as u64);
        self.bar.set_position(p.ready.max(0) as u64);
        let mut msg = format!("updated {} available {}", p.updated, p.available);
        if let Some(rs) = &p.new_replica_set {
            msg.push_str(&format!("  rs {rs}"));
        }
        if let Some(eta) = p.eta {
            msg.push_str(&format!("  eta {}s", eta.as_secs().max(1)));
        }
        if !p.note.is_empty() {
            msg.push_str(&format!("  {}", p.note));
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
