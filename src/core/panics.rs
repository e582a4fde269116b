//! A panic in one operation (a bug, in the agent or a plugin) must not take
//! the agent down with it: without this, it would poison the core's lock,
//! and every later rpc, the confirm timer and the event poll would fail.
//! The panic is caught while the lock is held (so it is released normally),
//! the rpc is answered `operation-failed`, and the datastores are put back
//! as they were before it:
//!
//! - running is reloaded from `run_dir` (the scoped commit changes it in
//!   place; what is persisted is the last commit that completed);
//! - the candidate needs nothing: operations change it only once they
//!   succeeded (`Core::commit` keeps it until running took it);
//! - a confirmed commit that never got armed leaves no rollback file.
//!
//! A plugin that panicked in apply may have programmed part of its change:
//! the plugin API has no way to resynchronise it yet (`abort` needs the
//! commit it panicked in), so that is logged.

use std::panic::{self, AssertUnwindSafe};

use tracing::error;

use super::{Core, OpResult};
use crate::datastore::Datastores;
use crate::protocol::error::RpcError;
use crate::protocol::rpc::Operation;

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// The rpc's name, for the log and the error message.
fn name(op: &Operation) -> &'static str {
    match op {
        Operation::Get { .. } => "get",
        Operation::GetConfig { .. } => "get-config",
        Operation::EditConfig { .. } => "edit-config",
        Operation::CopyConfig { .. } => "copy-config",
        Operation::DeleteConfig { .. } => "delete-config",
        Operation::Lock { .. } => "lock",
        Operation::Unlock { .. } => "unlock",
        Operation::CloseSession => "close-session",
        Operation::KillSession { .. } => "kill-session",
        Operation::Commit | Operation::ConfirmedCommit(_) => "commit",
        Operation::DiscardChanges => "discard-changes",
        Operation::Validate { .. } => "validate",
        Operation::GetSchema(_) => "get-schema",
        Operation::CancelCommit { .. } => "cancel-commit",
        Operation::GetData(_) => "get-data",
        Operation::EditData(_) => "edit-data",
        Operation::CreateSubscription(_) => "create-subscription",
        Operation::Rollback(_) => "rollback",
        Operation::Compare { .. } => "compare",
        Operation::RotatePrivateKey { .. } => "rotate-private-key",
        Operation::CheckDrift { .. } => "check-drift",
    }
}

impl Core {
    /// Runs `f` on the core; a panic in it is logged, the datastores are
    /// restored, and `None` returned.
    pub(super) fn guarded<T>(&mut self, what: &str, f: impl FnOnce(&mut Core) -> T) -> Option<T> {
        // AssertUnwindSafe: after a panic the core is not used as the panic
        // left it; `restore_after_panic` puts running back from disk.
        match panic::catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(v) => Some(v),
            Err(payload) => {
                error!(
                    operation = what,
                    panic = %message(&*payload),
                    "panic: running reloaded from run_dir, the candidate kept; a plugin that \
                     panicked in apply may have programmed part of its change"
                );
                self.restore_after_panic();
                None
            }
        }
    }

    /// Runs one rpc (`Core::dispatch`); a panic becomes operation-failed.
    pub fn handle(&mut self, session: u32, op: Operation) -> OpResult {
        self.handle_parsed(session, op, Default::default())
    }

    /// [`Core::handle`] with the rpc's body parsed before the lock
    /// (`core/body.rs`).
    pub fn handle_parsed(
        &mut self,
        session: u32,
        op: Operation,
        body: super::body::Parsed,
    ) -> OpResult {
        self.body = body;
        let what = name(&op);
        let audited = super::audit::changes_config(&op);
        let result = self
            .guarded(what, |core| core.dispatch(session, op))
            .unwrap_or_else(|| {
                Err(vec![RpcError::operation_failed(format!(
                    "internal error in {what}; nothing was changed (see the agent's log)"
                ))])
            });
        // Unused (the rpc failed before it), it goes now.
        self.body = Default::default();
        if let (true, Err(errors)) = (audited, &result) {
            super::audit::refused(&self.who(session), what, errors);
        }
        result
    }

    fn restore_after_panic(&mut self) {
        self.ext.actor = None;
        let (run_dir, state_dir) = self.ext.dirs.clone();
        match Datastores::open(&self.schema, run_dir, state_dir) {
            Ok((fresh, _)) => {
                self.ds.reload_running(fresh);
            }
            Err(e) => error!(error = %e, "cannot reload running after a panic"),
        }
        self.confirmed_after_panic();
    }
}
