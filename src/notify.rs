//! Notifications (RFC 5277): the NETCONF event stream, its bounded replay
//! log, subscriptions, and the RFC 6470 base events.
//!
//! One [`Hub`] per agent. Events are stored as the XML of their event
//! element (what goes after `<eventTime>`); an emitted event goes into the
//! replay log (the last [`REPLAY_LOG`]) and to every live subscription.
//! A subscription lives in its session, which writes [`next`]'s messages
//! between replies (`:interleave`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;
use tracing::warn;

use crate::protocol::error::RpcError;
use crate::protocol::ext_rpc::{format_date_time, Subscribe, NOTIF_NS};
use crate::protocol::xml::{self, escape, escape_text, Elem};

/// How many events the replay log keeps.
pub const REPLAY_LOG: usize = 1000;
/// RFC 6470 `ietf-netconf-notifications`.
pub const NCN_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";
/// RFC 5277 `nc-notifications`: replayComplete, notificationComplete.
pub const NCEV_NS: &str = "urn:ietf:params:xml:ns:netmod:notification";
/// The only stream.
pub const STREAM: &str = "NETCONF";

#[derive(Debug)]
pub struct Event {
    pub time: SystemTime,
    /// The event element, standalone XML (its namespace declared on it).
    pub body: String,
}

/// Who a session is, for the RFC 6470 common session parameters.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub user: String,
    pub session_id: u32,
    pub source_host: Option<String>,
    /// The transport's description (`ssh 10.0.0.1:40022`, `unix uid 0`).
    pub source: String,
}

impl SessionInfo {
    /// `<username>`, `<session-id>`, `<source-host>`.
    pub fn xml(&self) -> String {
        let mut out = format!(
            "<username>{}</username><session-id>{}</session-id>",
            escape_text(&self.user),
            self.session_id
        );
        if let Some(h) = &self.source_host {
            out.push_str(&format!("<source-host>{}</source-host>", escape_text(h)));
        }
        out
    }
}

/// The IP address of a transport's source (`ssh 127.0.0.1:40022`).
fn source_host(source: &str) -> Option<String> {
    let addr = source.strip_prefix("ssh ")?;
    addr.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip().to_string())
}

#[derive(Default)]
struct Inner {
    log: VecDeque<Arc<Event>>,
    sessions: HashMap<u32, SessionInfo>,
    killed_by: HashMap<u32, u32>,
}

pub struct Hub {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        let (tx, _) = broadcast::channel(1024);
        Hub {
            inner: Mutex::new(Inner::default()),
            tx,
        }
    }

    /// Sends an event (its element's XML) now.
    pub fn emit(&self, body: String) {
        let ev = Arc::new(Event {
            time: SystemTime::now(),
            body,
        });
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.log.len() >= REPLAY_LOG {
            inner.log.pop_front();
        }
        inner.log.push_back(ev.clone());
        // No receiver is not an error: nobody subscribed.
        let _ = self.tx.send(ev);
    }

    pub fn session(&self, id: u32) -> Option<SessionInfo> {
        self.inner.lock().ok()?.sessions.get(&id).cloned()
    }

    /// A session started: remembered, and netconf-session-start sent.
    pub fn session_start(&self, id: u32, user: &str, source: &str) {
        let info = SessionInfo {
            user: user.to_string(),
            session_id: id,
            source_host: source_host(source),
            source: source.to_string(),
        };
        let body = format!(
            "<netconf-session-start xmlns=\"{NCN_NS}\">{}</netconf-session-start>",
            info.xml()
        );
        if let Ok(mut inner) = self.inner.lock() {
            inner.sessions.insert(id, info);
        }
        self.emit(body);
    }

    /// kill-session by `by` ended `victim`.
    pub fn killed(&self, victim: u32, by: u32) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.killed_by.insert(victim, by);
        }
    }

    /// A session ended; `reason` is the session's own account of why.
    pub fn session_end(&self, id: u32, reason: &str) {
        let (info, killed_by) = match self.inner.lock() {
            Ok(mut inner) => (inner.sessions.remove(&id), inner.killed_by.remove(&id)),
            Err(_) => return,
        };
        let Some(info) = info else { return };
        let term = if killed_by.is_some() || reason == "killed" {
            "killed"
        } else if reason == "close-session" {
            "closed"
        } else if reason.starts_with("no hello") {
            "timeout"
        } else if reason.starts_with("bad hello") {
            "bad-hello"
        } else if reason.starts_with("peer closed")
            || reason.starts_with("framing")
            || reason.starts_with("write")
            || reason.starts_with("closed before hello")
        {
            "dropped"
        } else {
            "other"
        };
        let killed = killed_by
            .map(|k| format!("<killed-by>{k}</killed-by>"))
            .unwrap_or_default();
        self.emit(format!(
            "<netconf-session-end xmlns=\"{NCN_NS}\">{}{killed}<termination-reason>{term}</termination-reason></netconf-session-end>",
            info.xml()
        ));
    }

    /// Starts a subscription (RFC 5277 §2.1.1), replay included.
    pub fn subscribe(&self, p: &Subscribe) -> Result<Subscription, RpcError> {
        if p.stream != STREAM {
            return Err(RpcError::protocol(
                "invalid-value",
                format!("no stream '{}'; the only stream is NETCONF", p.stream),
            )
            .bad_element("stream"));
        }
        let now = SystemTime::now();
        if let Some(s) = p.start {
            if s > now {
                return Err(
                    RpcError::protocol("invalid-value", "startTime is in the future")
                        .bad_element("startTime"),
                );
            }
        }
        if let Some(stop) = p.stop {
            match p.start {
                None => {
                    return Err(
                        RpcError::protocol("missing-element", "stopTime needs startTime")
                            .bad_element("startTime"),
                    )
                }
                Some(s) if stop < s => {
                    return Err(RpcError::protocol(
                        "invalid-value",
                        "stopTime is earlier than startTime",
                    )
                    .bad_element("stopTime"))
                }
                _ => {}
            }
        }
        let inner = self
            .inner
            .lock()
            .map_err(|_| RpcError::operation_failed("internal error: event hub poisoned"))?;
        let replay: VecDeque<Arc<Event>> = match p.start {
            None => VecDeque::new(),
            Some(s) => inner
                .log
                .iter()
                .filter(|e| e.time >= s && p.stop.is_none_or(|t| e.time <= t))
                .cloned()
                .collect(),
        };
        // Under the same lock as `emit`: no event is both replayed and live,
        // none is lost between the two.
        let rx = self.tx.subscribe();
        Ok(Subscription {
            replay,
            replay_complete: p.start.is_some(),
            rx,
            stop: p.stop,
            filter: p.filter.clone(),
            access: None,
        })
    }
}

/// Whether the subscriber may receive an event (its body): access control
/// decides it (RFC 8341 §3.4.6), outside this layer.
pub type Access = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub struct Subscription {
    replay: VecDeque<Arc<Event>>,
    /// replayComplete still to send.
    replay_complete: bool,
    rx: broadcast::Receiver<Arc<Event>>,
    stop: Option<SystemTime>,
    filter: Option<Elem>,
    access: Option<Access>,
}

impl Subscription {
    /// Events `access` refuses are not sent to this subscriber.
    pub fn set_access(&mut self, access: Access) {
        self.access = Some(access);
    }

    fn wants(&self, body: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| matches(f, body))
            && self.access.as_ref().is_none_or(|a| a(body))
    }
}

/// A `<notification>` message.
pub fn message(time: SystemTime, body: &str) -> String {
    format!(
        "<notification xmlns=\"{NOTIF_NS}\"><eventTime>{}</eventTime>{body}</notification>",
        format_date_time(time)
    )
}

fn complete(name: &str) -> String {
    message(SystemTime::now(), &format!("<{name} xmlns=\"{NCEV_NS}\"/>"))
}

/// RFC 6241 §6 subtree filter applied to one event element: a top-level
/// filter element selects events of its name and namespace whose content
/// matches its content-match leaves (anywhere below the event).
fn matches(filter: &Elem, body: &str) -> bool {
    let Ok(ev) = xml::parse(body.as_bytes()) else {
        return false;
    };
    fn has(e: &Elem, name: &str, text: &str) -> bool {
        e.elems()
            .any(|c| (c.local == name && c.text().trim() == text) || has(c, name, text))
    }
    filter.elems().any(|f| {
        f.local == ev.local
            && (f.ns.is_none() || f.ns == ev.ns)
            && f.elems()
                .filter(|c| !c.has_elem_children() && !c.text().trim().is_empty())
                .all(|c| has(&ev, &c.local, c.text().trim()))
    })
}

/// The next message of the session's subscription; pending forever when
/// there is none. Cancel-safe (the session selects on it next to reading).
pub async fn next(sub: &mut Option<Subscription>) -> String {
    loop {
        let Some(s) = sub.as_mut() else {
            return std::future::pending().await;
        };
        if let Some(e) = s.replay.pop_front() {
            if s.wants(&e.body) {
                return message(e.time, &e.body);
            }
            continue;
        }
        if s.replay_complete {
            s.replay_complete = false;
            return complete("replayComplete");
        }
        let received = match s.stop {
            None => s.rx.recv().await,
            Some(stop) => {
                let wait = stop.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::select! {
                    r = s.rx.recv() => r,
                    _ = tokio::time::sleep(wait) => {
                        *sub = None;
                        return complete("notificationComplete");
                    }
                }
            }
        };
        match received {
            Ok(e) => {
                if s.stop.is_some_and(|t| e.time > t) {
                    *sub = None;
                    return complete("notificationComplete");
                }
                if s.wants(&e.body) {
                    return message(e.time, &e.body);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "notification subscriber too slow; events dropped"
                );
            }
            Err(broadcast::error::RecvError::Closed) => {
                *sub = None;
            }
        }
    }
}

/// The session's answer to `<create-subscription>`: the reply text, and the
/// subscription installed on success.
pub fn create_subscription(
    hub: &Hub,
    sub: &mut Option<Subscription>,
    p: &Subscribe,
    attrs: &str,
) -> String {
    if sub.is_some() {
        let e = RpcError::protocol(
            "in-use",
            "this session already has a subscription (RFC 5277 allows one)",
        )
        .bad_element("create-subscription");
        return crate::protocol::reply::errors(attrs, &[e]);
    }
    match hub.subscribe(p) {
        Ok(s) => {
            *sub = Some(s);
            crate::protocol::reply::ok(attrs)
        }
        Err(e) => crate::protocol::reply::errors(attrs, &[e]),
    }
}

/// One `<edit>` of netconf-config-change: an instance-identifier (prefixes
/// declared on `<target>`) and the operation.
#[derive(Clone, Debug)]
pub struct Edit {
    pub target: String,
    pub namespaces: Vec<(String, String)>,
    pub operation: &'static str,
}

/// netconf-config-change (RFC 6470 §2.2.2); `by` `None` = the server.
pub fn config_change(by: Option<&SessionInfo>, datastore: &str, edits: &[Edit]) -> String {
    let mut out = format!("<netconf-config-change xmlns=\"{NCN_NS}\"><changed-by>");
    match by {
        Some(i) => out.push_str(&i.xml()),
        None => out.push_str("<server/>"),
    }
    out.push_str(&format!("</changed-by><datastore>{datastore}</datastore>"));
    for e in edits {
        out.push_str("<edit><target");
        for (p, ns) in &e.namespaces {
            out.push_str(&format!(" xmlns:{p}=\"{}\"", escape(ns)));
        }
        out.push_str(&format!(
            ">{}</target><operation>{}</operation></edit>",
            escape_text(&e.target),
            e.operation
        ));
    }
    out.push_str("</netconf-config-change>");
    out
}

/// netconf-confirmed-commit (RFC 6470 §2.2.4).
pub fn confirmed_commit(by: Option<&SessionInfo>, event: &str, timeout: Option<u32>) -> String {
    let mut out = format!("<netconf-confirmed-commit xmlns=\"{NCN_NS}\">");
    if event != "timeout" {
        if let Some(i) = by {
            out.push_str(&i.xml());
        }
    }
    out.push_str(&format!("<confirm-event>{event}</confirm-event>"));
    if let Some(t) = timeout {
        out.push_str(&format!("<timeout>{t}</timeout>"));
    }
    out.push_str("</netconf-confirmed-commit>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_by_name_and_content() {
        let f = xml::parse(
            format!("<filter><netconf-config-change xmlns=\"{NCN_NS}\"><datastore>running</datastore></netconf-config-change></filter>").as_bytes(),
        )
        .unwrap();
        let ev = config_change(None, "running", &[]);
        assert!(matches(&f, &ev));
        assert!(!matches(&f, &config_change(None, "startup", &[])));
        assert!(!matches(&f, &confirmed_commit(None, "timeout", None)));
    }

    #[tokio::test]
    async fn replay_then_live() {
        let hub = Hub::new();
        hub.emit(format!("<a xmlns=\"{NCN_NS}\"/>"));
        let p = Subscribe {
            stream: STREAM.into(),
            filter: None,
            start: Some(SystemTime::UNIX_EPOCH),
            stop: None,
        };
        let mut sub = Some(hub.subscribe(&p).unwrap());
        hub.emit(format!("<b xmlns=\"{NCN_NS}\"/>"));
        assert!(next(&mut sub).await.contains("<a "));
        assert!(next(&mut sub).await.contains("replayComplete"));
        assert!(next(&mut sub).await.contains("<b "));
    }
}
