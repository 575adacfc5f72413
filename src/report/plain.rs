//! Plain progress: one line per change of the rollout's numbers, no escape codes.
//!
//! Used when stderr is not a terminal (CI logs, pipes), where a progress bar would be noise.

use std::io::Write;

use super::Progress;

/// Writes a line whenever the progress text changes.
pub struct PlainProgress<W: Write> {
    out: W,
    last: Option<String>,
}

impl<W: Write> PlainProgress<W> {
    pub fn new(out: W) -> Self {
        PlainProgress { out, last: None }
    }

    pub fn update(&mut self, progress: &Progress) {
        let line = progress_line(progress);
        if self.last.as_deref() != Some(line.as_str()) {
            // A closed stderr is no reason to fail the command.
            let _ = writeln!(self.out, "{line}");
            self.last = Some(line);
        }
    }

    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }
}

/// The one-line form of a progress event (without the ETA, which changes every second).
pub fn progress_line(p: &Progress) -> String {
    let mut line = format!(
        "{}: updated {}/{}, ready {}/{}, available {}/{}",
        p.object, p.updated, p.desired, p.ready, p.desired, p.available, p.desired
    );
    if let Some(rs) = &p.new_replica_set {
        line.push_str(&format!(" (new replicaset {rs})"));
    }
    if !p.note.is_empty() {
        line.push_str(&format!(" - {}", p.note));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(ready: i32) -> Progress {
        Progress {
            object: "deployment/orchestrator".into(),
            desired: 5,
            updated: 5,
            ready,
            available: ready,
            new_replica_set: None,
            eta: None,
            note: String::new(),
        }
    }

    #[test]
    fn one_line_per_change_and_no_escape_codes() {
        let mut out = Vec::new();
        {
            let mut plain = PlainProgress::new(&mut out);
            plain.update(&progress(3));
            plain.update(&progress(3));
            plain.update(&progress(4));
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("ready 4/5"));
        assert!(!text.contains('\x1b'));
    }
}
