//! Ctrl-C (SIGINT) and SIGTERM, which is handled the same way (a CI job cancelled, a pod
//! stopped) but ends with exit 143 (128 + 15) as a process killed by it would. The handler is installed once at start, so the signal's default action
//! never kills the process between two steps. During a wait that listens for it (a rollout,
//! an HPA watch) a Ctrl-C becomes that wait's outcome: what was applied and exit 130, or the
//! end of a watch. Anywhere else the process ends at once with exit 130, as it would without
//! a handler, saying which writes had completed (the cluster access notes each one here).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::sync::watch;

use crate::error::EXIT_INTERRUPTED;

/// Exit code after SIGTERM (128 + 15).
pub const EXIT_TERMINATED: i32 = 143;

/// Whether the interrupt was a SIGTERM (exit 143) rather than a Ctrl-C (exit 130).
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Whether a SIGTERM arrived; the process then exits 143 instead of 130.
pub fn terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// How many waits listen now.
static LISTENERS: AtomicUsize = AtomicUsize::new(0);
/// Counts the interrupts delivered to listeners; each listener sees the ones after it began.
static INTERRUPTS: OnceLock<watch::Sender<u64>> = OnceLock::new();

/// The writes that completed (not dry runs), for a Ctrl-C between steps.
static WRITTEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Whether the error also goes to stdout as the JSON document.
static JSON: AtomicBool = AtomicBool::new(false);

/// Notes a write that completed, e.g. `patch deployment ns/orchestrator`.
pub fn note_written(action: &str) {
    WRITTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(action.to_string());
}

fn interrupts() -> &'static watch::Sender<u64> {
    INTERRUPTS.get_or_init(|| watch::channel(0).0)
}

/// Installs the handler. Call once, inside the runtime, before the command starts.
pub fn install(json: bool) {
    JSON.store(json, Ordering::SeqCst);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // `signal` registers the handler now (not on first poll), so there is no window.
        match signal(SignalKind::interrupt()) {
            Ok(mut sigint) => {
                tokio::spawn(async move {
                    while sigint.recv().await.is_some() {
                        on_interrupt();
                    }
                });
            }
            Err(error) => tracing::debug!(%error, "no SIGINT handler: Ctrl-C keeps its default action"),
        }
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                tokio::spawn(async move {
                    while sigterm.recv().await.is_some() {
                        TERMINATED.store(true, Ordering::SeqCst);
                        on_interrupt();
                    }
                });
            }
            Err(error) => tracing::debug!(%error, "no SIGTERM handler: it keeps its default action"),
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt();
        }
    });
}

fn on_interrupt() {
    if LISTENERS.load(Ordering::SeqCst) > 0 {
        interrupts().send_modify(|count| *count += 1);
    } else {
        // Between steps: stop now, as the default action would, but with the SPEC's code.
        let (message, hint) = between_steps(&WRITTEN.lock().unwrap_or_else(|p| p.into_inner()));
        let message = if terminated() {
            message.replace("interrupted (Ctrl-C)", "terminated (SIGTERM)")
        } else {
            message
        };
        eprintln!("\nerror: {message}\nhint: {hint}");
        if JSON.load(Ordering::SeqCst) {
            println!("{}", crate::report::json::error_document(&message, &hint));
        }
        std::process::exit(if terminated() {
            EXIT_TERMINATED
        } else {
            EXIT_INTERRUPTED
        });
    }
}

/// What a Ctrl-C between steps says, given the writes that had completed.
fn between_steps(written: &[String]) -> (String, String) {
    if written.is_empty() {
        (
            "interrupted (Ctrl-C) before any write had completed".to_string(),
            "check with `kubectl orchscale status` before running the command again".to_string(),
        )
    } else {
        (
            format!("interrupted (Ctrl-C) after these writes: {}", written.join("; ")),
            "they stay in the cluster and a rollout they started continues: follow it with \
             `kubectl orchscale status`, revert the change with `kubectl orchscale undo`"
                .to_string(),
        )
    }
}

/// A wait's subscription to Ctrl-C, from its creation until it is dropped. Create it before
/// the wait prints anything a user (or a test) could answer with Ctrl-C.
pub struct Listener {
    receiver: watch::Receiver<u64>,
}

/// Starts listening for Ctrl-C.
pub fn listen() -> Listener {
    LISTENERS.fetch_add(1, Ordering::SeqCst);
    Listener {
        receiver: interrupts().subscribe(),
    }
}

impl Listener {
    /// Resolves at the first Ctrl-C after [`listen`].
    pub async fn interrupted(&mut self) {
        if self.receiver.changed().await.is_err() {
            // The sender is a static and never dropped; should it be, never resolve.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        LISTENERS.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn between_steps_says_which_writes_completed() {
        let (message, hint) = between_steps(&[]);
        assert!(message.contains("before any write"), "{message}");
        assert!(hint.contains("status"), "{hint}");
        let (message, hint) = between_steps(&["patch deployment ns/web".to_string()]);
        assert!(
            message.ends_with("after these writes: patch deployment ns/web"),
            "{message}"
        );
        assert!(hint.contains("undo"), "{hint}");
    }

    #[tokio::test]
    async fn a_listener_sees_only_interrupts_after_it_began() {
        interrupts().send_modify(|count| *count += 1);
        let mut listener = listen();
        let early = tokio::time::timeout(Duration::from_millis(50), listener.interrupted()).await;
        assert!(
            early.is_err(),
            "an interrupt from before listen() is not this wait's"
        );
        on_interrupt();
        let seen = tokio::time::timeout(Duration::from_secs(5), listener.interrupted()).await;
        assert!(seen.is_ok(), "the interrupt after listen() ends the wait");
    }
}
