//! One NETCONF session over an authenticated byte stream: hello exchange,
//! framing switch, then rpcs until close-session, kill-session, the peer
//! hanging up, broken framing or agent shutdown.

mod deadline;
pub mod registry;
mod shared;

pub use shared::{Limits, Shared, BLOCKING_THREADS, BODY_SLOTS, READ_SLOTS};

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use crate::core::Outcome;
use crate::protocol::error::RpcError;
use crate::protocol::framing::{FrameReader, FrameWriter, Framing, FramingError};
use crate::protocol::{hello, limits, reply, rpc, xml};

/// Who is on the other end of a session, as the transport authenticated it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The authenticated user name (NACM will key on it).
    pub user: String,
    /// Where the session came from, for logs and monitoring
    /// (`ssh 127.0.0.1:40022`, `unix uid 1000`).
    pub source: String,
    /// uid 0 on the local socket (also when relayed by sshd): the NACM
    /// recovery session (RFC 8341 §3.3.3), which access control does not
    /// restrict, so a locked-out device can be repaired from its console.
    pub recovery: bool,
}

/// Runs one session to its end. Transports spawn this on the stream of an
/// accepted `netconf` subsystem.
pub async fn run<S>(agent: Arc<Shared>, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let max = agent.config.netconf.max_sessions;
    let Some((id, kill)) = agent.sessions.try_register(peer.clone(), max) else {
        // Refused before any hello: the transport closes the stream.
        warn!(user = %peer.user, source = %peer.source, max, "too many sessions; refused");
        return;
    };
    info!(session = id, user = %peer.user, source = %peer.source, "session start");
    agent.hub.session_start(id, &peer.user, &peer.source);
    let limits = agent.limits();
    let (r, w) = tokio::io::split(stream);
    let mut reader =
        FrameReader::new(r, limits.max_message_bytes).with_budget(agent.input_budget.clone());
    let mut writer = FrameWriter::new(deadline::WriteDeadline::new(w, limits.write_timeout));
    let mut shutdown = agent.shutdown.clone();
    let end = tokio::select! {
        r = serve(&agent, id, &mut reader, &mut writer) => r,
        _ = kill.notified() => "killed".to_string(),
        _ = crate::shutdown::requested(&mut shutdown) => "agent shutdown".to_string(),
    };
    writer.shutdown().await;
    // A session that took big messages freed their buffers just now.
    if reader.grew() {
        crate::memory::release_free_memory_soon();
    }
    drop(reader);
    // RFC 6022 dropped-sessions: ended other than by close-session,
    // kill-session or a bad hello (counted as in-bad-hellos).
    if end != "close-session" && end != "killed" && !end.starts_with("bad hello") {
        agent.sessions.monitor.session_dropped();
    }
    let a = agent.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut core) = a.core.lock() {
            core.session_ended(id);
        }
    })
    .await;
    agent.sessions.remove(id);
    agent.hub.session_end(id, &end);
    info!(session = id, reason = %end, "session end");
}

/// Messages from this size on are followed by a heap trim.
const BIG_MESSAGE: usize = 256 << 10;

async fn send<W: AsyncWrite + Unpin>(w: &mut FrameWriter<W>, msg: &str) -> Result<(), String> {
    w.write_message(msg.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))
}

/// Runs a read the core prepared, outside the core lock, on one of the
/// blocking threads reads may take (`Shared::read_slots`): the rest stay
/// free for the operations that need the core, so big reads never keep a
/// commit waiting for a thread.
async fn finish_read(agent: &Arc<Shared>, read: crate::core::read::Read) -> crate::core::OpResult {
    let failed = |e: String| {
        Err(vec![RpcError::operation_failed(format!(
            "internal error: {e}"
        ))])
    };
    let _slot = match agent.read_slots.acquire().await {
        Ok(s) => s,
        Err(e) => return failed(e.to_string()),
    };
    // A panic in the read (a bug) is this rpc's error: it held no lock.
    tokio::task::spawn_blocking(move || read.run())
        .await
        .unwrap_or_else(|e| failed(e.to_string()))
}

/// The session proper; returns why it ended.
async fn serve<R, W>(
    agent: &Arc<Shared>,
    id: u32,
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
) -> String
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let hello_msg = hello::server_hello(&agent.capabilities, id);
    if let Err(e) = send(writer, &hello_msg).await {
        return e;
    }
    let timeout = agent.limits().hello_timeout;
    let client_hello = match tokio::time::timeout(timeout, reader.next_message()).await {
        Err(_) => return "no hello within the timeout".into(),
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => return "closed before hello".into(),
        Ok(Err(e)) => return format!("hello: {e}"),
    };
    let limits = xml::Limits::from_config(&agent.config.netconf);
    let parsed = match xml::parse_limited(&client_hello, &limits) {
        Ok(root) => hello::parse_client_hello(&root),
        Err(e) => Err(e.to_string()),
    };
    let client = match parsed {
        Ok(c) => c,
        Err(e) => {
            warn!(session = id, error = %e, "bad client hello; closing");
            agent.sessions.monitor.bad_hello();
            return format!("bad hello: {e}");
        }
    };
    if client.base_1_1 {
        reader.framing = Framing::Chunked;
        writer.framing = Framing::Chunked;
    }
    debug!(session = id, chunked = client.base_1_1, "hello done");
    // RFC 6241 Appendix A: malformed-message "is new in :base:1.1 and MUST
    // NOT be sent to old clients"; they get operation-failed (error-type
    // rpc), the base:1.0 tag for failures no other tag covers.
    let malformed = |message: String| {
        if client.base_1_1 {
            RpcError::malformed(message)
        } else {
            RpcError::rpc("operation-failed", message)
        }
    };
    let monitor = &agent.sessions.monitor;
    // RFC 5277: this session's subscription; its notifications are
    // written while the session waits for the next rpc (:interleave).
    let mut subscription: Option<crate::notify::Subscription> = None;
    loop {
        let next = {
            let read = reader.next_message();
            tokio::pin!(read);
            loop {
                tokio::select! {
                    m = &mut read => break m,
                    n = crate::notify::next(&mut subscription) => {
                        if let Err(e) = send(writer, &n).await {
                            return e;
                        }
                        monitor.notification_sent(id);
                    }
                }
            }
        };
        let msg = match next {
            Ok(Some(m)) => m,
            Ok(None) => return "peer closed".into(),
            Err(FramingError::TooLarge(n)) => {
                let e = malformed(format!("message larger than {n} bytes; closing"));
                monitor.bad_rpc(id);
                monitor.rpc_error_sent(id);
                let _ = send(writer, &reply::errors("", &[e])).await;
                return "message too large".into();
            }
            Err(FramingError::OverBudget(n)) => {
                // RFC 6241 Appendix A: resource-denied, "insufficient
                // resources"; type rpc, as the message layer refused it.
                // The rest of the message cannot be skipped: closed.
                let e = RpcError::rpc(
                    "resource-denied",
                    format!(
                        "the messages being received by all sessions would exceed {n} bytes; closing"
                    ),
                );
                monitor.rpc_error_sent(id);
                let _ = send(writer, &reply::errors("", &[e])).await;
                warn!(
                    session = id,
                    max_buffered_bytes = n,
                    "incoming messages over the cap; closing"
                );
                return "incoming messages over the cap".into();
            }
            Err(e) => return format!("framing: {e}"),
        };
        let big = msg.len() > BIG_MESSAGE;
        let root = match xml::parse_limited(&msg, &limits) {
            Ok(r) => r,
            Err(e) => {
                let err = malformed(format!("malformed message: {e}"));
                monitor.bad_rpc(id);
                monitor.rpc_error_sent(id);
                if let Err(e) = send(writer, &reply::errors("", &[err])).await {
                    return e;
                }
                continue;
            }
        };
        let request = match rpc::parse(&root) {
            Ok(r) => {
                monitor.rpc_received(id);
                if let Err(e) = limits::check(&r.operation, agent.config.netconf.max_xpath_bytes) {
                    monitor.rpc_error_sent(id);
                    if let Err(e) = send(writer, &reply::errors(&r.reply_attrs, &[e])).await {
                        return e;
                    }
                    continue;
                }
                r
            }
            Err(e) => {
                // RFC 6022 in-bad-rpcs: errors of the <rpc> envelope (type
                // rpc); a refused operation parameter came in a correct rpc.
                if e.error.error_type == crate::protocol::ErrorType::Rpc {
                    monitor.bad_rpc(id);
                } else {
                    monitor.rpc_received(id);
                }
                monitor.rpc_error_sent(id);
                if let Err(e) = send(writer, &reply::errors(&e.reply_attrs, &[*e.error])).await {
                    return e;
                }
                continue;
            }
        };
        let attrs = request.reply_attrs.clone();
        if let rpc::Operation::CreateSubscription(p) = &request.operation {
            // Access control: exec on create-subscription, then per event.
            let access = match agent.core.lock() {
                Ok(mut core) => core
                    .authorize(id, &request.operation)
                    .map(|()| (core.nacm.clone(), core.actor(id))),
                Err(_) => Err(vec![RpcError::operation_failed(
                    "internal error: core lock poisoned",
                )]),
            };
            let (nacm, actor) = match access {
                Ok(a) => a,
                Err(es) => {
                    monitor.rpc_received(id);
                    monitor.rpc_error_sent(id);
                    if let Err(e) = send(writer, &reply::errors(&attrs, &es)).await {
                        return e;
                    }
                    continue;
                }
            };
            let text = crate::notify::create_subscription(&agent.hub, &mut subscription, p, &attrs);
            if let Some(s) = subscription.as_mut() {
                s.set_access(Box::new(move |body| {
                    nacm.notification_allowed(&actor, body)
                }));
            }
            if let Err(e) = send(writer, &text).await {
                return e;
            }
            continue;
        }
        let a = agent.clone();
        let slot = if crate::core::body::has_body(&request.operation) {
            agent.body_slots.clone().acquire_owned().await.ok()
        } else {
            None
        };
        let outcome = tokio::task::spawn_blocking(move || {
            // The body first, without the lock: it needs only the schema.
            let body = crate::core::body::parse(&a.schema, &request.operation);
            drop(slot);
            match a.core.lock() {
                Ok(mut core) => core.handle_parsed(id, request.operation, body),
                Err(_) => Err(vec![RpcError::operation_failed(
                    "internal error: core lock poisoned",
                )]),
            }
        })
        .await
        .unwrap_or_else(|e| {
            Err(vec![RpcError::operation_failed(format!(
                "internal error: {e}"
            ))])
        });
        let outcome = match outcome {
            Ok(Outcome::Read(read)) => finish_read(agent, *read).await,
            other => other,
        };
        let (text, close) = match outcome {
            Ok(Outcome::Ok) => (reply::ok(&attrs), false),
            Ok(Outcome::Data(xml)) => (reply::data(&attrs, &xml), false),
            Ok(Outcome::Reply(content)) => (reply::raw(&attrs, &content), false),
            Ok(Outcome::Close) => (reply::ok(&attrs), true),
            // `finish_read` turned every read into its data.
            Ok(Outcome::Read(_)) => {
                let e = RpcError::operation_failed("internal error: a read was not run");
                monitor.rpc_error_sent(id);
                (reply::errors(&attrs, &[e]), false)
            }
            Ok(Outcome::Kill(victim)) => {
                // Recorded first: the victim's session-end event reads it.
                agent.hub.killed(victim, id);
                if agent.sessions.kill(victim) {
                    // Release the victim's locks now, so the reply's "ok"
                    // means they are gone.
                    let a = agent.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Ok(mut core) = a.core.lock() {
                            core.session_ended(victim);
                        }
                    })
                    .await;
                    (reply::ok(&attrs), false)
                } else {
                    let e = RpcError::protocol("invalid-value", format!("no session {victim}"))
                        .bad_element("session-id");
                    monitor.rpc_error_sent(id);
                    (reply::errors(&attrs, &[e]), false)
                }
            }
            Err(errors) => {
                monitor.rpc_error_sent(id);
                (reply::errors(&attrs, &errors), false)
            }
        };
        if let Err(e) = send(writer, &text).await {
            return e;
        }
        if big || text.len() > BIG_MESSAGE {
            // A big request or reply leaves megabytes of freed heap; give
            // them back rather than let the resident size keep its peak.
            drop(text);
            crate::memory::release_free_memory_soon();
        }
        if close {
            return "close-session".into();
        }
    }
}
