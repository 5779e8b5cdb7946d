//! Graceful shutdown: SIGTERM, SIGINT or SHUTDOWN trigger it; the listener stops
//! accepting, connections finish the command in flight and close, then the engine is
//! closed (flush + sync) and the process exits 0.

use tokio::sync::watch;

/// A one-way, many-listener shutdown flag.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }
}

impl Shutdown {
    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves when shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// Installs the SIGTERM and SIGINT handlers now and returns the future that triggers
/// `shutdown` when one arrives. The handlers are installed before the caller serves
/// anything: a handler installed inside a spawned task may not be in place yet when the
/// first reply goes out, and a SIGTERM then meets the default action, which ends the
/// process without the graceful close (seen on a loaded CI machine).
pub fn on_signals(shutdown: Shutdown) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::warn!("cannot install signal handlers; use SHUTDOWN to stop");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
            _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
        }
        shutdown.trigger();
    }
}
