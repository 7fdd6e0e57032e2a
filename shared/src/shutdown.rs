//! Graceful shutdown, after mini-redis: one broadcast channel tells every task to stop,
//! and every task holds a clone of an `mpsc::Sender` as a drop guard, so the owner knows
//! all tasks have finished when the channel closes.

use tokio::sync::{broadcast, mpsc};

/// Ctrl-C (SIGINT) and SIGTERM (what Docker and systemd send), registered at creation so
/// that no signal arriving afterwards falls through to the default action (exit).
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves at the next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    match Signals::listen() {
        Ok(mut signals) => signals.recv().await,
        Err(error) => {
            tracing::error!(%error, "failed to listen for shutdown signals");
            std::future::pending::<()>().await
        }
    }
}

/// Owned by the process: triggers shutdown and waits until every task has stopped.
pub struct ShutdownController {
    notify: broadcast::Sender<()>,
    complete_tx: mpsc::Sender<()>,
    complete_rx: mpsc::Receiver<()>,
}

impl Default for ShutdownController {
    fn default() -> Self {
        let (notify, _) = broadcast::channel(1);
        let (complete_tx, complete_rx) = mpsc::channel(1);
        Self {
            notify,
            complete_tx,
            complete_rx,
        }
    }
}

impl ShutdownController {
    /// A listener for a new task; the task must hold it until it has fully stopped.
    pub fn listener(&self) -> Shutdown {
        Shutdown {
            notified: false,
            notify: self.notify.subscribe(),
            _complete: self.complete_tx.clone(),
        }
    }

    /// Tells every task to stop and waits until all of them dropped their listener.
    pub async fn shutdown(self) {
        let Self {
            notify,
            complete_tx,
            mut complete_rx,
        } = self;
        drop(notify);
        drop(complete_tx);
        let _ = complete_rx.recv().await;
    }
}

/// A task's view of shutdown: `recv()` resolves once shutdown was requested.
#[derive(Debug)]
pub struct Shutdown {
    notified: bool,
    notify: broadcast::Receiver<()>,
    /// Dropped when the task ends; the controller waits for all of these.
    _complete: mpsc::Sender<()>,
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        self.notified
    }

    pub async fn recv(&mut self) {
        if self.notified {
            return;
        }
        // Closed (sender dropped) or a message: either way, stop.
        let _ = self.notify.recv().await;
        self.notified = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn shutdown_waits_for_every_task_to_finish() {
        let controller = ShutdownController::default();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..3 {
            let mut listener = controller.listener();
            let finished = finished.clone();
            tokio::spawn(async move {
                listener.recv().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(listener);
            });
        }
        tokio::time::timeout(Duration::from_secs(2), controller.shutdown())
            .await
            .expect("shutdown completes");
        assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
