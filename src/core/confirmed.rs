//! Confirmed commit (RFC 6241 §8.4, `:confirmed-commit:1.1`).
//!
//! - The rollback point is running before the *first* confirmed commit; a
//!   follow-up confirmed commit keeps it and restarts the timer.
//! - The timer starts only once the commit applied: a confirmed commit
//!   whose apply fails arms nothing (and a first one leaves no rollback
//!   point).
//! - Without `<persist>`, the confirmed commit belongs to its session: only
//!   that session confirms, extends or cancels it, and the session ending
//!   rolls it back. With `<persist>`, any session may, giving the
//!   `<persist-id>`; it survives an agent restart (kill -9 included): the
//!   rollback point and the deadline are kept in `run_dir/confirmed-commit`
//!   (0600, written atomically) and the timer is re-armed at boot.
//! - Rollback goes through the commit pipeline like any commit, so the
//!   plugins (the data plane) follow.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tracing::{error, info, warn};
use yang5::data::DataTree;

use super::{one, Core, OpResult, Outcome};
use crate::datastore::{self, persist, print_config, FILE_MODE};
use crate::protocol::error::RpcError;
use crate::protocol::ext_rpc::{CommitParams, DEFAULT_CONFIRM_TIMEOUT};

/// Retry delay when a rollback itself failed.
const RETRY: Duration = Duration::from_secs(10);

struct Pending {
    rollback: DataTree<'static>,
    deadline: SystemTime,
    persist: Option<String>,
    /// The session that issued it; 0 once a persistent one's issuer ended
    /// (or after a restart): then no session is its issuer.
    session: u32,
}

pub struct Confirmed {
    path: PathBuf,
    pending: Option<Pending>,
    deadline: watch::Sender<Option<SystemTime>>,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

impl Confirmed {
    pub fn new(path: PathBuf) -> Confirmed {
        let (deadline, _) = watch::channel(None);
        Confirmed {
            path,
            pending: None,
            deadline,
        }
    }

    /// The deadline of the pending confirmed commit, as it changes.
    pub fn watch(&self) -> watch::Receiver<Option<SystemTime>> {
        self.deadline.subscribe()
    }

    /// A rollback that failed is tried again in [`RETRY`].
    fn retry_later(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.deadline = SystemTime::now() + RETRY;
        }
        self.arm();
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn arm(&self) {
        let d = self.pending.as_ref().map(|p| p.deadline);
        self.deadline.send_replace(d);
    }

    /// Writes the rollback point and deadline (header lines, an empty line,
    /// then the configuration XML).
    fn save(
        &self,
        rollback: &DataTree<'static>,
        deadline: SystemTime,
        persist: Option<&str>,
        session: u32,
    ) -> Result<(), RpcError> {
        let mut text = format!("deadline-ms {}\nsession {session}\n", millis(deadline));
        if let Some(p) = persist {
            text.push_str(&format!("persist {}\n", hex(p)));
        }
        text.push('\n');
        text.push_str(&print_config(rollback)?);
        persist::write_atomic(&self.path, text.as_bytes(), FILE_MODE).map_err(|e| {
            RpcError::operation_failed(format!(
                "cannot save the confirmed-commit rollback point to {}: {e}",
                self.path.display()
            ))
        })
    }

    fn save_pending(&self) -> Result<(), RpcError> {
        match &self.pending {
            Some(p) => self.save(&p.rollback, p.deadline, p.persist.as_deref(), p.session),
            None => self.remove(),
        }
    }

    fn remove(&self) -> Result<(), RpcError> {
        persist::remove_durable(&self.path).map_err(|e| {
            RpcError::operation_failed(format!("cannot remove {}: {e}", self.path.display()))
        })
    }
}

fn persist_id_error(message: impl Into<String>) -> Vec<RpcError> {
    one(RpcError::protocol("invalid-value", message).bad_element("persist-id"))
}

impl Core {
    /// May `session` (with `persist_id`) act on the pending confirmed commit?
    fn check_owner(&self, session: u32, persist_id: Option<&str>) -> Result<(), Vec<RpcError>> {
        let Some(p) = &self.ext.confirmed.pending else {
            return match persist_id {
                Some(_) => Err(persist_id_error(
                    "no confirmed commit with this persist-id is pending",
                )),
                None => Ok(()),
            };
        };
        match (&p.persist, persist_id) {
            (Some(want), Some(got)) if want == got => Ok(()),
            (_, Some(_)) => Err(persist_id_error(
                "no confirmed commit with this persist-id is pending",
            )),
            (Some(_), None) => Err(one(
                RpcError::protocol(
                    "missing-element",
                    "a persistent confirmed commit is pending: give its <persist-id>",
                )
                .bad_element("persist-id"),
            )),
            (None, None) if p.session == session => Ok(()),
            (None, None) => Err(one(
                RpcError::protocol(
                    "in-use",
                    format!(
                        "a confirmed commit of session {} is pending; only that session can confirm or cancel it",
                        p.session
                    ),
                )
                .with_info("session-id", p.session.to_string()),
            )),
        }
    }

    /// `<lock>` on running (RFC 6241 §7.5): not granted while a confirmed
    /// commit of another session is pending; a persistent one whose issuer
    /// ended blocks every session (session-id 0) until confirmed or
    /// cancelled.
    pub(super) fn confirmed_lock_check(&self, session: u32) -> Result<(), Vec<RpcError>> {
        match &self.ext.confirmed.pending {
            Some(p) if p.session != session || session == 0 => Err(one(RpcError::protocol(
                "lock-denied",
                if p.session == 0 {
                    "a persistent confirmed commit is pending: confirm or cancel it first"
                        .to_string()
                } else {
                    format!(
                        "a confirmed commit of session {} is pending: running cannot be locked",
                        p.session
                    )
                },
            )
            .with_info("session-id", p.session.to_string()))),
            _ => Ok(()),
        }
    }

    /// `<commit>`: plain, confirming, confirmed or follow-up confirmed.
    pub(super) fn confirmed_commit(&mut self, session: u32, p: CommitParams) -> OpResult {
        self.check_owner(session, p.persist_id.as_deref())?;
        self.commit_comment = p.comment.clone();
        if !p.confirmed {
            self.commit(session)?;
            if self.ext.confirmed.pending.take().is_some() {
                info!(session, "confirmed commit confirmed");
                self.ext.confirmed.arm();
                if let Err(e) = self.ext.confirmed.remove() {
                    warn!("{e}");
                }
                self.ext.confirm_event("complete", None);
            }
            return Ok(Outcome::Ok);
        }
        let timeout = p.timeout.unwrap_or(DEFAULT_CONFIRM_TIMEOUT);
        let first = self.ext.confirmed.pending.is_none();
        if first {
            // Saved before the apply: a crash from here on rolls back to it.
            let rollback = datastore::duplicate(self.ds.running()).map_err(one)?;
            let provisional = SystemTime::now() + Duration::from_secs(u64::from(timeout));
            self.ext
                .confirmed
                .save(&rollback, provisional, p.persist.as_deref(), session)
                .map_err(one)?;
            if let Err(e) = self.commit(session) {
                if let Err(r) = self.ext.confirmed.remove() {
                    warn!("{r}");
                }
                return Err(e);
            }
            self.ext.confirmed.pending = Some(Pending {
                rollback,
                deadline: SystemTime::now(),
                persist: None,
                session,
            });
        } else {
            // Follow-up: the rollback point stays; the timer restarts only
            // once this commit applied.
            self.commit(session)?;
        }
        let deadline = SystemTime::now() + Duration::from_secs(u64::from(timeout));
        if let Some(pending) = self.ext.confirmed.pending.as_mut() {
            pending.deadline = deadline;
            // A follow-up without <persist> keeps the persist-id it gave.
            if p.persist.is_some() {
                pending.persist = p.persist.clone();
            }
            pending.session = session;
        }
        if let Err(e) = self.ext.confirmed.save_pending() {
            // The commit is in; the timer still runs in memory.
            error!("{e}");
        }
        self.ext.confirmed.arm();
        info!(
            session,
            timeout,
            persist = p.persist.is_some(),
            first,
            "confirmed commit"
        );
        self.ext
            .confirm_event(if first { "start" } else { "extend" }, Some(timeout));
        Ok(Outcome::Ok)
    }

    /// `<cancel-commit>` (RFC 6241 §8.4.4.1).
    pub(super) fn cancel_commit(&mut self, session: u32, persist_id: Option<String>) -> OpResult {
        if self.ext.confirmed.pending.is_none() {
            return Err(match persist_id {
                Some(_) => persist_id_error("no confirmed commit with this persist-id is pending"),
                None => one(RpcError::protocol(
                    "operation-failed",
                    "no confirmed commit is pending",
                )),
            });
        }
        self.check_owner(session, persist_id.as_deref())?;
        self.roll_back("cancel").map_err(one)?;
        Ok(Outcome::Ok)
    }

    /// Restores the rollback point through the pipeline. On failure the
    /// confirmed commit stays pending and is retried shortly.
    fn roll_back(&mut self, event: &str) -> Result<(), RpcError> {
        // Pending stays until the rollback is in (a panic in it, too,
        // leaves it pending: `confirmed_after_panic`).
        let Some(p) = self.ext.confirmed.pending.as_ref() else {
            return Ok(());
        };
        let tree = datastore::duplicate(&p.rollback)?;
        match self.commit_running(tree) {
            Ok(()) => {
                self.ext.confirmed.pending = None;
                info!(reason = event, "confirmed commit rolled back");
                self.ext.confirmed.arm();
                if let Err(e) = self.ext.confirmed.remove() {
                    warn!("{e}");
                }
                self.ext.confirm_event(event, None);
                Ok(())
            }
            Err(es) => {
                let msg = es
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                error!(reason = event, error = %msg, "confirmed-commit rollback failed; retrying");
                self.ext.confirmed.retry_later();
                Err(RpcError::operation_failed(format!(
                    "rollback failed: {msg}"
                )))
            }
        }
    }

    /// The confirm timer fired: roll back if the deadline has passed.
    pub fn confirmed_expired(&mut self) {
        self.guarded("confirm timer", Core::confirm_timeout);
    }

    /// After a panic (`core/panics.rs`): a first confirmed commit that never
    /// got armed leaves no rollback point behind; a pending one (its
    /// rollback may be what panicked) is retried later, not at once.
    pub(super) fn confirmed_after_panic(&mut self) {
        if self.ext.confirmed.pending.is_none() {
            if let Err(e) = self.ext.confirmed.remove() {
                warn!("{e}");
            }
        } else if self
            .ext
            .confirmed
            .pending
            .as_ref()
            .is_some_and(|p| p.deadline <= SystemTime::now())
        {
            self.ext.confirmed.retry_later();
        }
    }

    fn confirm_timeout(&mut self) {
        let due = self
            .ext
            .confirmed
            .pending
            .as_ref()
            .is_some_and(|p| p.deadline <= SystemTime::now());
        if due {
            self.ext.actor = None;
            let _ = self.roll_back("timeout");
        }
    }

    /// A session ended: its non-persistent confirmed commit rolls back; a
    /// persistent one stays, with no issuer any more.
    pub(super) fn confirmed_session_ended(&mut self, session: u32) {
        if let Some(p) = self.ext.confirmed.pending.as_mut() {
            if p.persist.is_some() && p.session == session {
                p.session = 0;
            }
        }
        let owned = self
            .ext
            .confirmed
            .pending
            .as_ref()
            .is_some_and(|p| p.persist.is_none() && p.session == session);
        if owned {
            self.ext.actor = Some(session);
            let _ = self.roll_back("cancel");
            self.ext.actor = None;
        }
    }

    /// At boot, after running is applied: a confirmed commit pending when
    /// the agent stopped is re-armed (persist) or rolled back (its session
    /// is gone, or its time is up).
    pub fn confirmed_restore(&mut self) -> Result<(), String> {
        let path = self.ext.confirmed.path.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let (head, xml) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
        let mut deadline = None;
        let mut persist = None;
        let mut session = 0;
        for line in head.lines() {
            match line.split_once(' ') {
                Some(("deadline-ms", v)) => {
                    deadline = v
                        .parse::<u64>()
                        .ok()
                        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
                }
                Some(("persist", v)) => persist = unhex(v),
                Some(("session", v)) => session = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        let Some(deadline) = deadline else {
            return Err(format!("{}: no deadline", path.display()));
        };
        let mut rollback = datastore::parse_config(&self.schema, xml)
            .map_err(|e| format!("{}: {}", path.display(), e.message))?;
        datastore::validate_config(&self.schema, &mut rollback)
            .map_err(|e| format!("{}: {}", path.display(), e.message))?;
        let keep = persist.is_some() && deadline > SystemTime::now();
        self.ext.confirmed.pending = Some(Pending {
            rollback,
            deadline,
            persist,
            // The sessions of the previous run are gone.
            session: if keep { 0 } else { session },
        });
        self.ext.actor = None;
        if keep {
            info!("a persistent confirmed commit is pending: timer re-armed");
            self.ext.confirmed.arm();
            Ok(())
        } else {
            info!("a confirmed commit was pending when the agent stopped: rolling back");
            let event = if self
                .ext
                .confirmed
                .pending
                .as_ref()
                .is_some_and(|p| p.persist.is_some())
            {
                "timeout"
            } else {
                "cancel"
            };
            if let Err(e) = self.roll_back(event) {
                warn!("{e}");
            }
            Ok(())
        }
    }
}
