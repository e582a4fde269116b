//! The systemd watchdog (`WatchdogSec=`): a ping only after a probe that
//! went through the core — its lock taken and a trivial read done — so a
//! wedged core (a deadlock, an rpc that never returns) stops the pings and
//! systemd restarts the agent. A live runtime alone proves nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::core::Core;
use crate::systemd::Notifier;

/// Pings every `interval` (half of `WatchdogSec`) until shutdown.
pub fn spawn(
    core: Arc<Mutex<Core>>,
    notifier: Notifier,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "watchdog pings on"
    );
    tokio::spawn(async move {
        let mut missed = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = crate::shutdown::requested(&mut shutdown) => return,
            }
            let c = core.clone();
            // Awaited without a timeout on purpose: while the core is
            // wedged this waits, no ping goes out, and systemd acts.
            let ok = tokio::task::spawn_blocking(move || probe(&c))
                .await
                .unwrap_or(false);
            if ok {
                notifier.send("WATCHDOG=1");
                missed = false;
            } else if !missed {
                tracing::error!("watchdog probe failed (core lock poisoned): no ping");
                missed = true;
            }
        }
    });
}

/// Takes the core lock and reads something every working core has.
fn probe(core: &Mutex<Core>) -> bool {
    match core.lock() {
        Ok(core) => !core.schema.modules.is_empty(),
        Err(_) => false,
    }
}
