//! What the sessions and the transports share: built by the agent (the
//! composition root, `agent.rs`) and handed down behind an `Arc`. It lives in
//! the session layer so that no layer below the agent imports the agent.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::registry::Registry;
use crate::config::Config;
use crate::core::Core;
use crate::notify::Hub;

pub struct Shared {
    pub config: Config,
    /// Flips to `true` when the agent stops (SIGTERM/SIGINT): listeners stop
    /// accepting and sessions close.
    pub shutdown: watch::Receiver<bool>,
    /// Schema, datastores, plugins: one lock, so commits are serialised.
    /// An `Arc` of its own: the core's background tasks (`core/hooks.rs`)
    /// hold it without knowing about sessions.
    pub core: Arc<Mutex<Core>>,
    pub sessions: Registry,
    /// The NETCONF event stream (RFC 5277).
    pub hub: Arc<Hub>,
    /// What our `<hello>` announces.
    pub capabilities: Vec<String>,
}
