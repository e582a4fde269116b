//! The agent's shutdown signal as the layers below it see it: a watch
//! channel that flips to `true` once (SIGTERM/SIGINT). Kept apart from the
//! transports so the core's background tasks can wait on it too.

use tokio::sync::watch;

/// Resolves once the agent is shutting down. A dropped sender means nobody
/// can ever ask for shutdown, so that waits forever rather than stopping.
pub async fn requested(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
