//! What the sessions and the transports share: built by the agent (the
//! composition root, `agent.rs`) and handed down behind an `Arc`. It lives in
//! the session layer so that no layer below the agent imports the agent.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::registry::Registry;
use crate::auth::Users;
use crate::config::Config;
use crate::core::Core;
use crate::notify::Hub;

pub struct Shared {
    /// The configuration as the agent started with it. What a reload may
    /// change is read from `users` and `limits()` instead; the rest
    /// (listen addresses, directories, backend) takes a restart.
    pub config: Config,
    /// Who may log in: swapped by a reload.
    pub users: Users,
    /// The limits a reload may change.
    pub limits: RwLock<Limits>,
    /// Flips to `true` when the agent stops (SIGTERM/SIGINT): listeners stop
    /// accepting and sessions close.
    pub shutdown: watch::Receiver<bool>,
    /// Schema, datastores, plugins: one lock, so commits are serialised.
    /// An `Arc` of its own: the core's background tasks (`core/hooks.rs`)
    /// hold it without knowing about sessions.
    pub core: Arc<Mutex<Core>>,
    /// The core's schema (immutable after start): request bodies are
    /// parsed with it before the core lock is taken (`core/body.rs`).
    pub schema: Arc<crate::schema::Schema>,
    /// Reads run outside the core lock on blocking threads
    /// (`core/read.rs`); they take one of these slots first, fewer than
    /// the runtime's blocking threads, so operations on the core always
    /// find a thread.
    pub read_slots: tokio::sync::Semaphore,
    /// Request bodies parse outside the core lock (`core/body.rs`) in one
    /// of these slots.
    pub body_slots: Arc<tokio::sync::Semaphore>,
    /// Bytes of incoming messages all sessions' readers hold, against
    /// `max_buffered_bytes` (a reload sets a new cap).
    pub input_budget: Arc<crate::protocol::framing::InputBudget>,
    pub sessions: Registry,
    /// The NETCONF event stream (RFC 5277).
    pub hub: Arc<Hub>,
    /// What our `<hello>` announces.
    pub capabilities: Vec<String>,
}

/// Session and login limits: the reloadable part of the configuration
/// besides the users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub hello_timeout: Duration,
    /// A peer taking no byte of what the session writes for this long
    /// ends the session (`deadline.rs`).
    pub write_timeout: Duration,
    pub max_message_bytes: usize,
    pub auth_timeout: Duration,
}

impl Limits {
    pub fn of(config: &Config) -> Limits {
        Limits {
            hello_timeout: Duration::from_secs(config.netconf.hello_timeout_secs),
            write_timeout: Duration::from_secs(config.netconf.write_timeout_secs.max(1)),
            max_message_bytes: config.netconf.max_message_bytes,
            auth_timeout: Duration::from_secs(config.ssh.auth_timeout_secs.max(1)),
        }
    }
}

/// Blocking threads of the agent's runtime. The core's operations run on
/// them one at a time (behind one lock); request bodies are parsed
/// (`BODY_SLOTS`) and reads finished (`READ_SLOTS`) beside them, each in
/// fewer slots than threads, so two threads always remain for the core
/// (the operation holding it and one waiting) and the rest (password
/// checks). Each thread more adds its stack and buffers to the resident
/// memory (20 sessions waiting for the core cost ~25 MiB with tokio's
/// default of 512).
pub const BLOCKING_THREADS: usize = 6;

/// Reads that may run at once outside the core lock.
pub const READ_SLOTS: usize = 2;

/// Request bodies that may be parsed at once before the core lock: also
/// bounds the memory of parsing (a 64 MiB edit takes several times that
/// while libyang parses it), as the lock did when parsing ran under it.
pub const BODY_SLOTS: usize = 2;

impl Shared {
    /// The limits now (a new session or login takes them at its start).
    pub fn limits(&self) -> Limits {
        match self.limits.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_limits(&self, limits: Limits) {
        match self.limits.write() {
            Ok(mut l) => *l = limits,
            Err(p) => *p.into_inner() = limits,
        }
    }
}
