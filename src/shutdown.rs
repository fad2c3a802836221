//! Waiting for the signal to stop (SIGTERM from Lambda, systemd, Kubernetes,
//! `kill`; SIGINT from Ctrl-C).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A stop request; listening starts when it is built, so a signal that
/// arrives before [`Shutdown::recv`] is awaited is not lost.
pub struct Shutdown {
    term: Signal,
    int: Signal,
}

impl Shutdown {
    pub fn listen() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves at the first SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
