//! The agent: configuration, the datastores and plugins, the listeners, and
//! the command line.

use tokio::sync::watch;

use crate::config::Config;

/// Everything a session or a transport needs, shared behind an `Arc`.
pub struct Agent {
    pub config: Config,
    /// Flips to `true` when the agent stops (SIGTERM/SIGINT): listeners stop
    /// accepting and sessions close.
    pub shutdown: watch::Receiver<bool>,
}

pub fn cli_main() -> i32 {
    0
}
