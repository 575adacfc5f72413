//! Plain progress: one line per change of the rollout's numbers, no escape codes.
//!
//! Used when stderr is not a terminal (CI logs, pipes), where a progress bar would be noise.
//! Each progress line starts with the time in RFC 3339 UTC to the second
//! (`2026-05-04T09:12:30Z`): CI logs are read later, elsewhere and across midnight, and
//! compared with the cluster's own times (events, audit logs, `kubectl get -o yaml`), which
//! Kubernetes writes in that form; a bare `HH:MM:SS` would not say which day nor which zone.

use std::io::Write;

use k8s_openapi::jiff::Timestamp;

use super::Progress;
use crate::cli::format_duration;

/// Writes a line whenever the progress text changes.
pub struct PlainProgress<W: Write> {
    out: W,
    last: Option<String>,
    clock: fn() -> Timestamp,
}

impl<W: Write> PlainProgress<W> {
    pub fn new(out: W) -> Self {
        Self::with_clock(out, Timestamp::now)
    }

    /// With the clock the timestamps come from (tests give a fixed one).
    pub fn with_clock(out: W, clock: fn() -> Timestamp) -> Self {
        PlainProgress {
            out,
            last: None,
            clock,
        }
    }

    /// Writes the line of `progress` when it says something new; the ETA, which changes every
    /// second, rides along without making a line of its own.
    pub fn update(&mut self, progress: &Progress) {
        let line = progress_line(progress);
        if self.last.as_deref() != Some(line.as_str()) {
            let time = timestamp((self.clock)());
            let eta = progress
                .eta
                .map(|eta| format!(", eta {}", eta_text(eta)))
                .unwrap_or_default();
            // A closed stderr is no reason to fail the command.
            let _ = writeln!(self.out, "{time} {line}{eta}");
            self.last = Some(line);
        }
    }

    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }
}

/// `2026-05-04T09:12:30Z`.
pub fn timestamp(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An ETA in whole seconds, at least one (`12s`, `1m5s`).
pub fn eta_text(eta: std::time::Duration) -> String {
    format_duration(std::time::Duration::from_secs(eta.as_secs().max(1)))
}

/// The phases as counts: `updated 2/3, available 1/3, 2 old left` (the bar says it too).
pub fn phases(p: &Progress) -> String {
    let mut text = format!(
        "updated {}/{}, available {}/{}",
        p.updated, p.desired, p.available, p.desired
    );
    if p.old > 0 {
        text.push_str(&format!(", {} old left", p.old));
    }
    if p.surplus > 0 {
        text.push_str(&format!(", {} to remove", p.surplus));
    }
    text
}

/// The one-line form of a progress event, without its time and ETA.
pub fn progress_line(p: &Progress) -> String {
    let mut line = format!("{}: {:>3}% {}", p.object, p.percent(), phases(p));
    if let Some(rs) = &p.new_replica_set {
        line.push_str(&format!(" (new replicaset {rs})"));
    }
    let said: Vec<&str> = [if p.complete { "rolled out" } else { "" }, p.note.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if !said.is_empty() {
        line.push_str(&format!(" - {}", said.join("; ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(available: i32) -> Progress {
        Progress {
            object: "deployment/orchestrator".into(),
            desired: 5,
            updated: 5,
            available,
            old: 0,
            surplus: 0,
            done_steps: (5 + available) as u64,
            total_steps: 10,
            complete: available == 5,
            new_replica_set: None,
            eta: None,
            note: String::new(),
        }
    }

    fn fixed() -> Timestamp {
        "2026-05-04T09:12:30.250Z".parse().unwrap()
    }

    #[test]
    fn one_line_per_change_with_its_time_and_no_escape_codes() {
        let mut out = Vec::new();
        {
            let mut plain = PlainProgress::with_clock(&mut out, fixed);
            plain.update(&progress(3));
            plain.update(&Progress {
                eta: Some(std::time::Duration::from_millis(4200)),
                ..progress(3)
            });
            plain.update(&Progress {
                eta: Some(std::time::Duration::from_millis(2500)),
                ..progress(4)
            });
            plain.update(&progress(5));
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "2026-05-04T09:12:30Z deployment/orchestrator:  80% updated 5/5, available 3/5",
                "2026-05-04T09:12:30Z deployment/orchestrator:  90% updated 5/5, available 4/5, eta 2s",
                "2026-05-04T09:12:30Z deployment/orchestrator: 100% updated 5/5, available 5/5 - rolled out",
            ]
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn pods_to_remove_are_said_apart_from_the_counts() {
        let rolling = Progress {
            updated: 3,
            available: 2,
            desired: 3,
            old: 1,
            done_steps: 6,
            total_steps: 9,
            complete: false,
            new_replica_set: Some("orchestrator-7d9f".into()),
            note: "1 pod(s) terminating".into(),
            ..progress(0)
        };
        assert_eq!(
            progress_line(&rolling),
            "deployment/orchestrator:  66% updated 3/3, available 2/3, 1 old left \
             (new replicaset orchestrator-7d9f) - 1 pod(s) terminating"
        );
        let down = Progress {
            surplus: 2,
            done_steps: 10,
            total_steps: 12,
            complete: false,
            ..progress(5)
        };
        assert!(progress_line(&down).contains("available 5/5, 2 to remove"));
    }
}
