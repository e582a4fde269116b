//! NACM (RFC 8341) applied to the operations: exec access before any
//! operation runs, read access on what reads return, write access on what
//! edits, commits and copies change (see `crate::nacm`).

use yang5::data::{DataDiffFlags, DataTree};

use super::{one, Core};
use crate::datastore::ValuelessDelete;
use crate::nacm::{Actor, View};
use crate::protocol::error::RpcError;
use crate::protocol::rpc::{EditOp, Operation};

/// The YANG module and name of a protocol operation, for rules.
pub fn operation_id(op: &Operation) -> (&'static str, &'static str) {
    const NC: &str = "ietf-netconf";
    match op {
        Operation::Get { .. } => (NC, "get"),
        Operation::GetConfig { .. } => (NC, "get-config"),
        Operation::EditConfig { .. } => (NC, "edit-config"),
        Operation::CopyConfig { .. } => (NC, "copy-config"),
        Operation::DeleteConfig { .. } => (NC, "delete-config"),
        Operation::Lock { .. } => (NC, "lock"),
        Operation::Unlock { .. } => (NC, "unlock"),
        Operation::CloseSession => (NC, "close-session"),
        Operation::KillSession { .. } => (NC, "kill-session"),
        Operation::Commit | Operation::ConfirmedCommit(_) => (NC, "commit"),
        Operation::DiscardChanges => (NC, "discard-changes"),
        Operation::Validate { .. } => (NC, "validate"),
        Operation::CancelCommit { .. } => (NC, "cancel-commit"),
        Operation::GetSchema(_) => ("ietf-netconf-monitoring", "get-schema"),
        Operation::GetData(_) => ("ietf-netconf-nmda", "get-data"),
        Operation::EditData(_) => ("ietf-netconf-nmda", "edit-data"),
        Operation::CreateSubscription(_) => ("notifications", "create-subscription"),
        Operation::Rollback(_) => ("wgnetconf-agent", "rollback"),
        Operation::Compare { .. } => ("wgnetconf-agent", "compare"),
        Operation::RotatePrivateKey { .. } => ("wgnetconf-agent", "rotate-private-key"),
        Operation::CheckDrift { .. } => ("wgnetconf-agent", "check-drift"),
    }
}

impl Core {
    /// Who session `session` is (an unknown session is nobody: a user
    /// without groups).
    pub fn actor(&self, session: u32) -> Actor {
        match self.monitor.session(session) {
            Some(s) => Actor {
                user: s.user,
                recovery: s.recovery,
            },
            None => Actor {
                user: String::new(),
                recovery: false,
            },
        }
    }

    /// Who session `session` is, for the audit trail.
    pub(super) fn who(&self, session: u32) -> super::audit::Who {
        let (user, source) = match self.monitor.session(session) {
            Some(s) => (s.user, s.source),
            None => ("(server)".to_string(), String::new()),
        };
        super::audit::Who {
            user,
            session,
            source,
        }
    }

    /// Running's `/nacm` is the policy: re-read when running changed.
    pub(super) fn refresh_access(&mut self) {
        let gen = self.ds.generation();
        if self.nacm_gen != Some(gen) {
            self.nacm.update(self.ds.running());
            self.nacm_gen = Some(gen);
        }
    }

    /// The rules of the session running the current operation.
    pub(super) fn view(&self) -> View<'_> {
        self.nacm.view(&self.actor(self.ext.actor.unwrap_or(0)))
    }

    /// Exec access to `op` for `session` (RFC 8341 §3.4.4).
    pub fn authorize(&mut self, session: u32, op: &Operation) -> Result<(), Vec<RpcError>> {
        self.refresh_access();
        let (module, name) = operation_id(op);
        let actor = self.actor(session);
        if self.nacm.view(&actor).rpc(module, name) {
            return Ok(());
        }
        self.nacm.denied_operation();
        Err(one(RpcError::protocol(
            "access-denied",
            format!("{name} is not permitted for user {}", actor.user),
        )))
    }

    /// Takes out of `tree` what the current user may not read (RFC 8341
    /// §3.2.4); nothing for a user whose rules permit everything.
    pub(super) fn prune_unreadable(&self, tree: &mut DataTree<'static>) {
        self.view().prune(&self.schema, tree);
    }

    /// Whether the current user may read all of `tree` (a copy-config
    /// source: a copy must not carry what its user cannot see).
    pub(super) fn check_reads_all(&self, tree: &DataTree<'static>) -> Result<(), RpcError> {
        if self.view().reads_all(tree) {
            return Ok(());
        }
        self.nacm.denied_operation();
        Err(RpcError::protocol(
            "access-denied",
            "the source holds data this user may not read",
        ))
    }

    /// Write access for an edit of `target` (edit-config, edit-data).
    pub(super) fn check_edit_access(
        &self,
        target: &DataTree<'static>,
        edit: &DataTree<'static>,
        valueless: &[ValuelessDelete],
        op: EditOp,
    ) -> Result<(), RpcError> {
        self.view()
            .check_edit(&self.schema, target, edit, valueless, op)
    }

    /// Write access for changing `old` into `new` (commit, copy-config,
    /// a replacing edit).
    pub(super) fn check_change(
        &self,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
    ) -> Result<(), RpcError> {
        let view = self.view();
        if view.unrestricted {
            return Ok(());
        }
        let diff = old
            .diff(new, DataDiffFlags::empty())
            .map_err(|e| RpcError::operation_failed(format!("cannot compare: {e}")))?;
        view.check_diff(&self.schema, &diff)
    }
}
