//! What the server tells clients about itself: the capability list of the
//! `<hello>`, RFC 6022 `ietf-netconf-monitoring` (`/netconf-state` and
//! `<get-schema>`), and the RFC 8525 YANG library (with the RFC 7895
//! `modules-state` view).
//!
//! [`Monitor`] holds the counters and the session table that
//! `/netconf-state` reports. The session registry and the session loop feed
//! it; the core reads it when it answers `<get>`.

pub mod schemas;
pub mod state;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use crate::protocol::hello::SERVER_CAPABILITIES;
use crate::schema::Schema;
use crate::session::Peer;

/// The message counters RFC 6022 keeps per session and globally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub in_rpcs: u64,
    pub in_bad_rpcs: u64,
    pub out_rpc_errors: u64,
    pub out_notifications: u64,
}

/// One live session as `/netconf-state/sessions/session` shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub user: String,
    /// The client's IP address; `None` for a local (Unix socket) client.
    pub source_host: Option<String>,
    /// The transport's description of the source (`ssh 10.0.0.1:40022`).
    pub source: String,
    /// The NACM recovery session (see `session::Peer`).
    pub recovery: bool,
    pub login: SystemTime,
    pub counters: Counters,
}

/// The `/netconf-state/statistics` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    pub in_bad_hellos: u64,
    pub in_sessions: u64,
    pub dropped_sessions: u64,
    pub counters: Counters,
}

#[derive(Default)]
struct Inner {
    stats: Statistics,
    sessions: BTreeMap<u32, SessionInfo>,
}

pub struct Monitor {
    start: SystemTime,
    inner: Mutex<Inner>,
    capabilities: OnceLock<Vec<String>>,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new()
    }
}

/// The client address in a transport's source text (`ssh 127.0.0.1:40022`).
fn source_host(source: &str) -> Option<String> {
    let addr = source.strip_prefix("ssh ")?;
    addr.trim()
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip().to_string())
}

impl Monitor {
    pub fn new() -> Monitor {
        Monitor {
            start: SystemTime::now(),
            inner: Mutex::new(Inner::default()),
            capabilities: OnceLock::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    fn session_counters(&self, id: u32, f: impl Fn(&mut Counters)) {
        self.with(|i| {
            f(&mut i.stats.counters);
            if let Some(s) = i.sessions.get_mut(&id) {
                f(&mut s.counters);
            }
        });
    }

    /// The capabilities the `<hello>` announces (set once by the agent).
    pub fn set_capabilities(&self, caps: Vec<String>) {
        let _ = self.capabilities.set(caps);
    }

    pub fn capabilities(&self) -> &[String] {
        self.capabilities.get().map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn start_time(&self) -> SystemTime {
        self.start
    }

    /// A session got its id and is about to send its `<hello>`.
    pub fn session_started(&self, id: u32, peer: &Peer) {
        let info = SessionInfo {
            user: peer.user.clone(),
            source_host: source_host(&peer.source),
            source: peer.source.clone(),
            recovery: peer.recovery,
            login: SystemTime::now(),
            counters: Counters::default(),
        };
        self.with(|i| {
            i.stats.in_sessions += 1;
            i.sessions.insert(id, info);
        });
    }

    pub fn session_ended(&self, id: u32) {
        self.with(|i| i.sessions.remove(&id));
    }

    /// A session ended other than by close-session, kill-session or a bad
    /// hello (RFC 6022 `dropped-sessions`).
    pub fn session_dropped(&self) {
        self.with(|i| i.stats.dropped_sessions += 1);
    }

    pub fn bad_hello(&self) {
        self.with(|i| i.stats.in_bad_hellos += 1);
    }

    /// A correct `<rpc>` arrived.
    pub fn rpc_received(&self, id: u32) {
        self.session_counters(id, |c| c.in_rpcs += 1);
    }

    /// A message came where an `<rpc>` was expected and was none.
    pub fn bad_rpc(&self, id: u32) {
        self.session_counters(id, |c| c.in_bad_rpcs += 1);
    }

    /// An `<rpc-reply>` carrying `<rpc-error>` was sent.
    pub fn rpc_error_sent(&self, id: u32) {
        self.session_counters(id, |c| c.out_rpc_errors += 1);
    }

    /// A `<notification>` was sent on session `id`.
    pub fn notification_sent(&self, id: u32) {
        self.session_counters(id, |c| c.out_notifications += 1);
    }

    pub fn statistics(&self) -> Statistics {
        self.with(|i| i.stats).unwrap_or_default()
    }

    /// One live session.
    pub fn session(&self, id: u32) -> Option<SessionInfo> {
        self.with(|i| i.sessions.get(&id).cloned()).flatten()
    }

    pub fn sessions(&self) -> Vec<(u32, SessionInfo)> {
        self.with(|i| i.sessions.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }
}

/// The YANG library capability (RFC 8526 §2, RFC 8525): revision of the
/// library and its content-id.
pub fn yang_library_capability(schema: &Schema) -> String {
    format!(
        "urn:ietf:params:netconf:capability:yang-library:1.1?revision={}&content-id={}",
        state::YANG_LIBRARY_REVISION,
        state::content_id(schema)
    )
}

/// Everything the `<hello>` announces: the protocol capabilities, the YANG
/// library, and one module capability per loaded module (kept for clients
/// that predate the YANG library).
pub fn capabilities(schema: &Schema) -> Vec<String> {
    let mut caps: Vec<String> = SERVER_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    caps.push(yang_library_capability(schema));
    caps.extend(schema.module_capabilities());
    caps
}

pub use wgnetconf_plugin_api::time::date_and_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_hosts() {
        assert_eq!(
            source_host("ssh 127.0.0.1:40022").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(source_host("ssh [::1]:830").as_deref(), Some("::1"));
        assert_eq!(source_host("unix uid 0"), None);
    }
}
