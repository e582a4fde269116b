//! Transports: how bytes reach a NETCONF session.
//!
//! - [`ssh`]: the built-in SSH server (russh), `netconf` subsystem only.
//! - [`unix`]: a Unix socket; the peer's uid (SO_PEERCRED) is the identity.
//!   OpenSSH's sshd reaches it through [`relay`], run as the subsystem
//!   command, so sshd does the SSH and authentication work.
//!
//! Both listeners stop accepting when `Agent::shutdown` flips to true, and
//! hand every accepted stream to `session::run` in its own task.

pub mod preauth;
pub mod relay;
pub mod ssh;
pub mod unix;

use tokio::sync::watch;

/// Resolves once the agent is shutting down. A dropped sender means nobody
/// can ever ask for shutdown, so that waits forever rather than stopping.
pub(crate) async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
