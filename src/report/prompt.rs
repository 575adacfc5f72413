//! Confirmation before disruption: `Continue? [y/N]` on stderr, default no.
//!
//! `--yes` skips the prompt, `--dry-run` never prompts, and without a terminal on stdin the
//! command refuses (exit 3) rather than hang or assume yes.

use std::any::Any;
use std::io::IsTerminal;

use dialoguer::Confirm;
use dialoguer::console::Term;

use crate::error::Error;

/// What to do about a confirmation, decided from the flags and the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on without asking (`--yes`, or `--dry-run` which changes nothing).
    Proceed,
    /// Ask on the terminal.
    Ask,
    /// No terminal to ask and no `--yes`: refuse, nothing written.
    Refuse,
}

/// The pure rule of the SPEC's "Confirmation before disruption".
pub fn decide(yes: bool, dry_run: bool, stdin_is_terminal: bool) -> Decision {
    if dry_run || yes {
        Decision::Proceed
    } else if stdin_is_terminal {
        Decision::Ask
    } else {
        Decision::Refuse
    }
}

/// Asks `Continue? [y/N]` when the rule says so (the caller has said `question` above it; the
/// prompt's redraw with the answer repeats only its own line).
///
/// # Errors
/// [`Error::NotConfirmed`] (exit 3) when declined, refused for lack of a terminal, or when the
/// terminal fails.
pub fn confirm(question: &str, yes: bool, dry_run: bool, ctrl_c: Option<Box<dyn Any>>) -> Result<(), Error> {
    match decide(yes, dry_run, std::io::stdin().is_terminal()) {
        Decision::Proceed => Ok(()),
        Decision::Refuse => Err(Error::NotConfirmed {
            message: format!("{question}: not confirmed (no terminal to ask on stdin); nothing was written"),
            hint: "run it in a terminal, or pass --yes to confirm in scripts".into(),
        }),
        Decision::Ask => {
            // Ctrl-C at the prompt interrupts the read, which answers "no" below; `ctrl_c`
            // (a listener of the process's Ctrl-C handler, held while asking) keeps the handler
            // from exiting while that answer is being printed.
            let answer = Confirm::new()
                .with_prompt("Continue?")
                .default(false)
                .interact_on(&Term::stderr());
            match answer {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::NotConfirmed {
                    message: "declined; nothing was written".into(),
                    hint: "run the command again and answer y to apply it".into(),
                }),
                Err(e) => {
                    // dialoguer hides the cursor while it reads and leaves it hidden on error.
                    let _ = Term::stderr().show_cursor();
                    // The read saw the signal at once, the handler task may see it later: stay
                    // a listener until the process ends, so that it cannot exit mid-report.
                    std::mem::forget(ctrl_c);
                    Err(prompt_failed(&e))
                }
            }
        }
    }
}

/// The error of a prompt that got no answer: Ctrl-C at the prompt (the terminal is in raw
/// mode, so it arrives as an interrupted read) is a "no", not a terminal failure.
fn prompt_failed(error: &dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = error;
    if io.kind() == std::io::ErrorKind::Interrupted {
        Error::NotConfirmed {
            message: "interrupted at the prompt (Ctrl-C); nothing was written".into(),
            hint: "run the command again and answer y to apply it".into(),
        }
    } else {
        Error::NotConfirmed {
            message: format!("could not ask for confirmation ({error}); nothing was written"),
            hint: "pass --yes to confirm without a prompt".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_never_prompts() {
        assert_eq!(decide(false, true, true), Decision::Proceed);
        assert_eq!(decide(false, true, false), Decision::Proceed);
    }

    #[test]
    fn yes_skips_the_prompt() {
        assert_eq!(decide(true, false, false), Decision::Proceed);
        assert_eq!(decide(true, false, true), Decision::Proceed);
    }

    #[test]
    fn terminal_asks_and_no_terminal_refuses() {
        assert_eq!(decide(false, false, true), Decision::Ask);
        assert_eq!(decide(false, false, false), Decision::Refuse);
    }

    #[test]
    fn refusal_is_exit_3() {
        // stdin is not a terminal under the test runner.
        if std::io::stdin().is_terminal() {
            return;
        }
        let err = confirm("2 pods restart", false, false, None).unwrap_err();
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn ctrl_c_at_the_prompt_is_a_no_not_a_terminal_failure() {
        let interrupted = dialoguer::Error::IO(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "read interrupted",
        ));
        let err = prompt_failed(&interrupted);
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("interrupted at the prompt"), "{err}");
        assert!(!err.hint().contains("--yes"), "{}", err.hint());
        let broken = dialoguer::Error::IO(std::io::Error::other("no tty"));
        assert!(prompt_failed(&broken).to_string().contains("could not ask"));
    }
}
