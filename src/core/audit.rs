//! The audit trail: one log line (target `audit`) per change of running or
//! startup, and per refused attempt to change them, with who (user,
//! session, source address and transport) and what (the changed paths and
//! their operations — paths only, never values, so no key reaches the log)
//! and the outcome. Failed logins are logged by the transports.

use tracing::info;

use crate::notify::Edit;
use crate::protocol::error::RpcError;
use crate::protocol::rpc::{Datastore, Operation};

/// Who acted, as the audit line names them.
pub struct Who {
    pub user: String,
    pub session: u32,
    pub source: String,
}

/// Operations that change (or try to change) running or startup.
pub fn changes_config(op: &Operation) -> bool {
    match op {
        Operation::EditConfig { target, .. } => *target == Datastore::Running,
        Operation::CopyConfig { target, .. } => *target != Datastore::Candidate,
        Operation::DeleteConfig { .. }
        | Operation::Commit
        | Operation::ConfirmedCommit(_)
        | Operation::CancelCommit { .. }
        | Operation::Rollback(_)
        | Operation::RotatePrivateKey { .. } => true,
        Operation::EditData(p) => p.datastore == Datastore::Running,
        _ => false,
    }
}

fn paths(edits: &[Edit]) -> String {
    if edits.is_empty() {
        return "(whole datastore)".into();
    }
    edits
        .iter()
        .map(|e| format!("{} {}", e.operation, e.target))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `datastore` changed by `who` (`None`: by the server itself, e.g. a
/// confirmed commit's timeout).
pub fn changed(who: Option<&Who>, datastore: &str, edits: &[Edit]) {
    match who {
        Some(w) => info!(
            target: "audit",
            user = %w.user,
            session = w.session,
            source = %w.source,
            datastore,
            changes = %paths(edits),
            outcome = "ok",
            "configuration changed"
        ),
        None => info!(
            target: "audit",
            user = "(server)",
            datastore,
            changes = %paths(edits),
            outcome = "ok",
            "configuration changed"
        ),
    }
}

/// An attempt to change the configuration that was refused.
pub fn refused(who: &Who, operation: &str, errors: &[RpcError]) {
    let tags: Vec<String> = errors
        .iter()
        .map(|e| match &e.path {
            Some(p) => format!("{} at {}", e.tag, p.path),
            None => e.tag.to_string(),
        })
        .collect();
    info!(
        target: "audit",
        user = %who.user,
        session = who.session,
        source = %who.source,
        operation,
        outcome = %format!("refused: {}", tags.join("; ")),
        "configuration change refused"
    );
}
