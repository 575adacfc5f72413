//! Ctrl-C (SIGINT). The handler is installed once at start, so the signal's default action
//! never kills the process between two steps. During a wait that listens for it (a rollout,
//! an HPA watch) a Ctrl-C becomes that wait's outcome: what was applied and exit 130, or the
//! end of a watch. Anywhere else the process ends at once with exit 130, as it would without
//! a handler.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use crate::error::EXIT_INTERRUPTED;

/// How many waits listen now.
static LISTENERS: AtomicUsize = AtomicUsize::new(0);
/// Counts the interrupts delivered to listeners; each listener sees the ones after it began.
static INTERRUPTS: OnceLock<watch::Sender<u64>> = OnceLock::new();

fn interrupts() -> &'static watch::Sender<u64> {
    INTERRUPTS.get_or_init(|| watch::channel(0).0)
}

/// Installs the handler. Call once, inside the runtime, before the command starts.
pub fn install() {
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
        eprintln!("\ninterrupted");
        std::process::exit(EXIT_INTERRUPTED);
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
