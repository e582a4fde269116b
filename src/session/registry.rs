//! Live sessions: ids, who they are, and how to end one (kill-session,
//! shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::Peer;
use crate::monitoring::Monitor;

pub struct SessionEntry {
    pub peer: Peer,
    pub kill: Arc<Notify>,
}

#[derive(Default)]
pub struct Registry {
    next: AtomicU32,
    live: Mutex<HashMap<u32, SessionEntry>>,
    /// ietf-netconf-monitoring's view of the sessions and their counters.
    pub monitor: Arc<Monitor>,
}

impl Registry {
    pub fn with_monitor(monitor: Arc<Monitor>) -> Registry {
        Registry {
            monitor,
            ..Registry::default()
        }
    }

    /// A new session id (never 0: RFC 6241 reserves it for non-NETCONF
    /// lock holders).
    pub fn register(&self, peer: Peer) -> (u32, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let kill = Arc::new(Notify::new());
        self.monitor.session_started(id, &peer);
        if let Ok(mut live) = self.live.lock() {
            live.insert(
                id,
                SessionEntry {
                    peer,
                    kill: kill.clone(),
                },
            );
        }
        (id, kill)
    }

    /// [`Registry::register`] unless `max` sessions are live already
    /// (checked and inserted under one lock, so racing logins cannot both
    /// take the last place).
    pub fn try_register(&self, peer: Peer, max: usize) -> Option<(u32, Arc<Notify>)> {
        let mut live = self.live.lock().ok()?;
        if live.len() >= max {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let kill = Arc::new(Notify::new());
        self.monitor.session_started(id, &peer);
        live.insert(
            id,
            SessionEntry {
                peer,
                kill: kill.clone(),
            },
        );
        Some((id, kill))
    }

    pub fn remove(&self, id: u32) {
        self.monitor.session_ended(id);
        if let Ok(mut live) = self.live.lock() {
            live.remove(&id);
        }
    }

    /// Ends session `id`; false if there is no such session.
    pub fn kill(&self, id: u32) -> bool {
        let Ok(live) = self.live.lock() else {
            return false;
        };
        match live.get(&id) {
            Some(e) => {
                e.kill.notify_one();
                true
            }
            None => false,
        }
    }

    /// Ends every session whose peer `pred` selects (a reload removed its
    /// user); returns their ids.
    pub fn kill_where(&self, pred: impl Fn(&Peer) -> bool) -> Vec<u32> {
        let Ok(live) = self.live.lock() else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (id, e) in live.iter() {
            if pred(&e.peer) {
                e.kill.notify_one();
                ids.push(*id);
            }
        }
        ids.sort_unstable();
        ids
    }

    pub fn count(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or(0)
    }
}
