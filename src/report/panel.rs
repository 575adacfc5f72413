//! Live panels (`hpa --watch`): redrawn in place on a terminal (stderr), plain lines otherwise.
//!
//! Only this module and term.rs write terminal control codes.

use dialoguer::console::{Term, truncate_str};

/// How a live view is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// JSON mode or -q: nothing live; the final state goes into the result.
    Off,
    /// stderr is not a terminal: one plain line per change.
    Plain,
    /// stderr is a terminal: the panel is redrawn in place.
    Terminal,
}

/// Chooses the mode from the output settings.
pub fn live_mode(json: bool, quiet: bool, stderr_is_terminal: bool) -> LiveMode {
    if json || quiet {
        LiveMode::Off
    } else if stderr_is_terminal {
        LiveMode::Terminal
    } else {
        LiveMode::Plain
    }
}

/// A block of lines on stderr that each draw replaces.
pub struct TermPanel {
    term: Term,
    drawn: usize,
}

impl TermPanel {
    pub fn new() -> Self {
        TermPanel {
            term: Term::stderr(),
            drawn: 0,
        }
    }

    /// Replaces the panel with `lines`. Lines are cut to the terminal's width, since a wrapped
    /// line would make the next redraw erase too little.
    pub fn draw(&mut self, lines: &[String]) {
        let width = usize::from(self.term.size().1).max(20);
        // A terminal that went away is no reason to fail the command.
        let _ = self.term.clear_last_lines(self.drawn);
        for line in lines {
            let _ = self.term.write_line(&truncate_str(line, width, "…"));
        }
        self.drawn = lines.len();
    }

    /// Erases the panel (the final state is printed as the result instead).
    pub fn clear(&mut self) {
        let _ = self.term.clear_last_lines(self.drawn);
        self.drawn = 0;
    }
}

impl Default for TermPanel {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_follows_output_settings() {
        assert_eq!(live_mode(true, false, true), LiveMode::Off);
        assert_eq!(live_mode(false, true, true), LiveMode::Off);
        assert_eq!(live_mode(false, false, true), LiveMode::Terminal);
        assert_eq!(live_mode(false, false, false), LiveMode::Plain);
    }
}
