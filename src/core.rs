//! The agent's core: schema, datastores and commit pipeline, and the
//! NETCONF operations on them (RFC 6241 §7, §8). One `Core` exists, behind a
//! lock, so operations — commits above all — are serialised. What needs no
//! core runs outside that lock: request bodies are parsed before it
//! (`core/body.rs`), reads are pruned, filtered and printed after it
//! (`core/read.rs`).

use tracing::info;
use yang5::data::DataTree;

use crate::datastore::{self, Datastores};
use crate::protocol::error::RpcError;
use crate::protocol::ext::WithDefaults;
use crate::protocol::rpc::{Datastore, EditOp, Filter, Operation, Source, TestOption};
use crate::retrieval::{self, Content};
use crate::schema::Schema;
use crate::transaction::{Change, Pipeline};
use read::ReadTree;

pub mod access;
mod audit;
pub mod body;
mod confirmed;
mod deferred;
mod drift;
mod fault;
mod history;
pub mod hooks;
mod nmda;
mod panics;
pub mod read;
mod scoped;

pub struct Core {
    /// Shared with reads running outside the lock; immutable after start.
    pub schema: std::sync::Arc<Schema>,
    pub ds: Datastores,
    pub pipeline: Pipeline,
    /// Confirmed commit, events (`core/hooks.rs`).
    pub ext: hooks::Extras,
    /// Counters and sessions for ietf-netconf-monitoring (shared with the
    /// session registry).
    pub monitor: std::sync::Arc<crate::monitoring::Monitor>,
    /// Access control (`nacm`), shared with sessions for notifications.
    pub nacm: std::sync::Arc<crate::nacm::Nacm>,
    /// The running generation the NACM policy was read from.
    pub nacm_gen: Option<u64>,
    /// Every commit that changed running (`core/history.rs`).
    pub history: crate::datastore::history::History,
    /// The `<comment>` of the commit in progress, for its history entry.
    pub(crate) commit_comment: Option<String>,
    /// The current operation's body, parsed before the lock (`core/body.rs`).
    pub(crate) body: body::Parsed,
}

/// What an operation produced.
pub enum Outcome {
    Ok,
    /// Printed XML for `<data>`.
    Data(String),
    /// close-session: reply ok, then end the session.
    Close,
    /// kill-session succeeded for this session id: the caller ends it.
    Kill(u32),
    /// The whole content of `<rpc-reply>` (an rpc's output in its own
    /// namespace, e.g. get-schema's `<data>`).
    Reply(String),
    /// A read to finish outside the core lock (`core/read.rs`): running it
    /// gives `Data` or `Reply`.
    Read(Box<read::Read>),
}

pub type OpResult = Result<Outcome, Vec<RpcError>>;

fn one(e: RpcError) -> Vec<RpcError> {
    vec![e]
}

/// Merges state data written as XML into the operational tree.
fn merge_state(schema: &Schema, oper: &mut DataTree<'static>, xml: &str) -> Result<(), RpcError> {
    let state = DataTree::parse_string(
        schema.ctx,
        xml,
        yang5::data::DataFormat::XML,
        yang5::data::DataParserFlags::NO_VALIDATION | yang5::data::DataParserFlags::STRICT,
        yang5::data::DataValidationFlags::empty(),
    )
    .map_err(|e| RpcError::operation_failed(format!("server state data: {e}")))?;
    oper.merge(&state)
        .map_err(|e| RpcError::operation_failed(format!("server state data: {e}")))
}

/// Operations that read or replace the candidate as a whole tree (rather
/// than edit or commit it): pending candidate edits become a tree first.
fn reads_candidate_whole(op: &Operation) -> bool {
    let cand = |d: &Datastore| *d == Datastore::Candidate;
    match op {
        Operation::CopyConfig { target, source, .. } => {
            cand(target) || matches!(source, Source::Datastore(d) if cand(d))
        }
        Operation::Validate { source } => matches!(source, Source::Datastore(d) if cand(d)),
        Operation::GetData(_) | Operation::EditData(_) => true,
        _ => false,
    }
}

impl Core {
    /// Applies the boot configuration through the plugins: the system comes
    /// up with running before the first session is served.
    pub fn boot(&mut self) -> Result<(), String> {
        // Nothing is pending at boot: the candidate is running.
        let running = self
            .ds
            .running_for_commit(&self.schema, true)
            .map_err(|e| e.message)?;
        self.pipeline
            .commit(&self.schema, running, Change::Boot)
            .map_err(|es| {
                es.iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        Ok(())
    }

    /// One rpc; `Core::handle` (`core/panics.rs`) runs it.
    fn dispatch(&mut self, session: u32, op: Operation) -> OpResult {
        self.ext.actor = Some(session);
        self.authorize(session, &op)?;
        if reads_candidate_whole(&op) {
            self.ds.materialize_candidate(&self.schema).map_err(one)?;
        }
        match op {
            Operation::Get {
                filter,
                with_defaults,
            } => self.get(filter, with_defaults),
            Operation::GetConfig {
                source,
                filter,
                with_defaults,
            } => self.get_config(source, filter, with_defaults),
            Operation::GetSchema(req) => crate::monitoring::schemas::get_schema(&self.schema, &req)
                .map(Outcome::Reply)
                .map_err(one),
            Operation::EditConfig {
                target,
                default_operation,
                test_option,
                error_option: _,
                config,
            } => self.edit_config(session, target, default_operation, test_option, &config),
            // with-defaults only shapes a copy to a <url> (RFC 6243 §4.5.3);
            // datastores keep what they hold.
            Operation::CopyConfig {
                target,
                source,
                with_defaults: _,
            } => self.copy_config(session, target, source),
            Operation::DeleteConfig { target } => self.delete_config(session, target),
            Operation::Lock { target } => {
                if target == Datastore::Running {
                    self.confirmed_lock_check(session)?;
                }
                self.ds.lock(target, session).map_err(one)?;
                Ok(Outcome::Ok)
            }
            Operation::Unlock { target } => {
                self.ds.unlock(target, session).map_err(one)?;
                Ok(Outcome::Ok)
            }
            Operation::CloseSession => Ok(Outcome::Close),
            Operation::KillSession { session_id } => {
                if session_id == session {
                    return Err(one(RpcError::protocol(
                        "invalid-value",
                        "a session cannot kill itself; use close-session",
                    )
                    .bad_element("session-id")));
                }
                Ok(Outcome::Kill(session_id))
            }
            Operation::Commit => self.confirmed_commit(session, Default::default()),
            Operation::ConfirmedCommit(p) => self.confirmed_commit(session, p),
            Operation::CancelCommit { persist_id } => self.cancel_commit(session, persist_id),
            Operation::GetData(p) => self.get_data(p),
            Operation::EditData(p) => self.edit_data(session, p),
            Operation::Rollback(p) => self.rollback(session, p),
            Operation::Compare { from, to } => self.compare(from, to),
            Operation::RotatePrivateKey { instance } => self.rotate_private_key(instance),
            Operation::CheckDrift { repair } => Ok(self.check_drift_rpc(repair)),
            Operation::CreateSubscription(_) => Err(one(RpcError::operation_failed(
                "create-subscription is run by the session",
            ))),
            Operation::DiscardChanges => {
                self.ds
                    .check_writable(Datastore::Candidate, session)
                    .map_err(one)?;
                self.ds.discard_candidate();
                Ok(Outcome::Ok)
            }
            Operation::Validate { source } => self.validate(source),
        }
    }

    /// Running with the plugins' state data and the server's own
    /// (monitoring, YANG library): what `<get>` reads.
    pub fn operational_tree(&mut self) -> Result<DataTree<'static>, RpcError> {
        let mut oper = datastore::duplicate(self.ds.running())?;
        self.pipeline.operational(self.ds.running(), &mut oper)?;
        let own = crate::monitoring::state::state_tree(&self.schema, &self.ds, &self.monitor)?;
        oper.merge(&own)
            .map_err(|e| RpcError::operation_failed(format!("server state data: {e}")))?;
        // The NACM counters (config false leaves of /nacm), and our own
        // module's commit history.
        let nacm = format!(
            "<nacm xmlns=\"{}\">{}</nacm>",
            crate::nacm::bootstrap::NACM_NS,
            self.nacm.state_xml()
        );
        merge_state(&self.schema, &mut oper, &nacm)?;
        let agent_ns = crate::protocol::ext_rpc::AGENT_NS;
        if self.schema.module_by_ns(agent_ns).is_some() {
            let history = format!("<agent xmlns=\"{agent_ns}\">{}</agent>", self.history_xml());
            merge_state(&self.schema, &mut oper, &history)?;
        }
        Ok(oper)
    }

    /// The operational tree is gathered under the lock (the plugins' state
    /// is read there); filter and print run outside it (`core/read.rs`).
    fn get(&mut self, filter: Option<Filter>, wd: Option<WithDefaults>) -> OpResult {
        let oper = self.operational_tree().map_err(one)?;
        self.read(ReadTree::Own(oper), filter, wd, Content::All, None)
    }

    fn get_config(
        &mut self,
        source: Datastore,
        filter: Option<Filter>,
        wd: Option<WithDefaults>,
    ) -> OpResult {
        let tree = self.read_tree(source).map_err(one)?;
        self.read(tree, filter, wd, Content::Config, None)
    }

    fn existing(&self, ds: Datastore) -> Result<&DataTree<'static>, RpcError> {
        self.ds.tree(ds).ok_or_else(|| {
            RpcError::app(
                "invalid-value",
                format!(
                    "the {} datastore does not exist (deleted or never saved)",
                    ds.name()
                ),
            )
        })
    }

    /// Running replaced by `new` through the pipeline, persisted.
    fn commit_running(&mut self, new: DataTree<'static>) -> Result<(), Vec<RpcError>> {
        let change = Change::Whole {
            tree: new,
            prevalidated: false,
        };
        self.commit_change(change, false)
    }

    fn edit_config(
        &mut self,
        session: u32,
        target: Datastore,
        default_op: EditOp,
        test_option: TestOption,
        config: &str,
    ) -> OpResult {
        if target == Datastore::Startup {
            return Err(one(RpcError::protocol(
                "invalid-value",
                "edit-config cannot target startup; use copy-config",
            )
            .bad_element("target")));
        }
        if test_option != TestOption::TestOnly {
            self.ds.check_writable(target, session).map_err(one)?;
        }
        let (edit_tree, valueless) = self.parsed_edit(config).map_err(one)?;
        retrieval::check_default_tags(&edit_tree).map_err(one)?;
        if default_op != EditOp::Replace && !self.view().unrestricted {
            // A candidate that is running plus pending edits is checked
            // against running (no copy of 10,000 peers per edit): stricter
            // at worst (an update of what a pending edit created counts as
            // a create), never looser.
            self.check_edit_access(
                self.existing(target).map_err(one)?,
                &edit_tree,
                &valueless,
                default_op,
            )
            .map_err(one)?;
        }
        let planned = self
            .plan_edit(target, default_op, &edit_tree, &valueless)
            .map_err(one)?;
        fault::point("panic-in-edit");
        let mut new = match planned {
            scoped::Planned::Scoped(sc) => {
                let pending = datastore::PendingEdit {
                    tree: edit_tree,
                    valueless,
                    op: default_op,
                };
                return self.edit_in_scope(target, test_option, sc, pending);
            }
            scoped::Planned::Whole(new) => new,
        };
        fault::point("hang-in-edit");
        match (target, test_option) {
            (_, TestOption::TestOnly) => {
                self.pipeline
                    .validate(&self.schema, self.ds.running(), &mut new)?;
            }
            (Datastore::Candidate, TestOption::Set) => self.ds.set_candidate(new),
            (Datastore::Candidate, TestOption::TestThenSet) => {
                // Constraints wait for validate/commit (`core/deferred.rs`);
                // the plugins check only a tree libyang found valid.
                let checked = datastore::validate_config(&self.schema, &mut new).map_err(one);
                let valid = deferred::edit_outcome(checked)?;
                if valid {
                    self.pipeline
                        .check_plugins(&self.schema, self.ds.running(), &new)?;
                    self.ds.set_candidate_validated(new);
                } else {
                    self.ds.set_candidate(new);
                }
            }
            // Running is the system: it is always validated and applied.
            (_, _) => self.commit_running(new)?,
        }
        Ok(Outcome::Ok)
    }

    fn source_tree(&mut self, source: Source) -> Result<DataTree<'static>, RpcError> {
        match source {
            Source::Datastore(ds) => datastore::duplicate(self.existing(ds)?),
            Source::Config(xml) => {
                let tree = self.parsed_config(&xml)?;
                retrieval::check_default_tags(&tree)?;
                // An inline config is a whole configuration: no operations.
                for n in tree.traverse() {
                    if n.meta().any(|m| m.name() == "operation") {
                        return Err(RpcError::protocol(
                            "bad-attribute",
                            "operation attributes are not allowed in a copy-config or validate <config>",
                        )
                        .with_info("bad-attribute", "operation")
                        .bad_element(n.schema().name().to_string()));
                    }
                }
                Ok(tree)
            }
        }
    }

    fn copy_config(&mut self, session: u32, target: Datastore, source: Source) -> OpResult {
        if let Source::Datastore(s) = source {
            if s == target {
                return Err(one(RpcError::protocol(
                    "invalid-value",
                    "copy-config source and target are the same datastore",
                )));
            }
        }
        self.ds.check_writable(target, session).map_err(one)?;
        let from_datastore = matches!(source, Source::Datastore(_));
        let mut new = self.source_tree(source).map_err(one)?;
        if !self.view().unrestricted {
            if from_datastore {
                self.check_reads_all(&new).map_err(one)?;
            }
            let empty = DataTree::new(self.schema.ctx);
            let old = self.ds.tree(target).unwrap_or(&empty);
            self.check_change(old, &new).map_err(one)?;
        }
        match target {
            Datastore::Running => self.commit_running(new)?,
            Datastore::Candidate => {
                datastore::validate_config(&self.schema, &mut new).map_err(one)?;
                self.ds.set_candidate(new);
            }
            Datastore::Startup => {
                datastore::validate_config(&self.schema, &mut new).map_err(one)?;
                self.ds.set_startup(new).map_err(one)?;
                info!("startup saved");
                self.ext.config_changed("startup", Vec::new());
            }
        }
        Ok(Outcome::Ok)
    }

    fn delete_config(&mut self, session: u32, target: Datastore) -> OpResult {
        if target != Datastore::Startup {
            return Err(one(RpcError::protocol(
                "invalid-value",
                format!("the {} datastore cannot be deleted", target.name()),
            )
            .bad_element("target")));
        }
        self.ds.check_writable(target, session).map_err(one)?;
        if let Some(t) = self.ds.tree(Datastore::Startup) {
            self.view().check_delete_all(&self.schema, t).map_err(one)?;
        }
        self.ds.delete_startup().map_err(one)?;
        self.ext.config_changed("startup", Vec::new());
        Ok(Outcome::Ok)
    }

    fn commit(&mut self, session: u32) -> OpResult {
        self.ds
            .check_writable(Datastore::Running, session)
            .map_err(one)?;
        self.ds
            .check_writable(Datastore::Candidate, session)
            .map_err(one)?;
        // The committing user needs write access to every change, whoever
        // made it (RFC 8341 §3.2.8).
        if !self.view().unrestricted {
            if self.ds.candidate_is_pending() {
                // Running plus pending edits: each edit checked against
                // running as if the committer made it (at the cost of the
                // edits, not of a copy and diff of the whole datastore).
                for p in self.ds.pending() {
                    self.check_edit_access(self.ds.running(), &p.tree, &p.valueless, p.op)
                        .map_err(one)?;
                }
            } else {
                let candidate = self.existing(Datastore::Candidate).map_err(one)?;
                self.check_change(self.ds.running(), candidate)
                    .map_err(one)?;
            }
        }
        if let Some(r) = self.commit_pending() {
            return r.map(|_| Outcome::Ok);
        }
        let prevalidated = self.ds.candidate_valid();
        // The candidate has a tree of its own; it stays until running took
        // it: a failed commit (or a panic, `core/panics.rs`) leaves it for
        // the client to fix.
        let copy =
            datastore::duplicate(self.existing(Datastore::Candidate).map_err(one)?).map_err(one)?;
        let change = Change::Whole {
            tree: copy,
            prevalidated,
        };
        self.commit_change(change, false)?;
        self.ds.discard_candidate();
        Ok(Outcome::Ok)
    }

    fn validate(&mut self, source: Source) -> OpResult {
        let mut tree = self.source_tree(source).map_err(one)?;
        self.pipeline
            .validate(&self.schema, self.ds.running(), &mut tree)?;
        Ok(Outcome::Ok)
    }

    /// A session ended: its locks and locked candidate changes go.
    pub fn session_ended(&mut self, session: u32) {
        self.guarded("session end", |core| {
            core.ds.release_session(session);
            core.confirmed_session_ended(session);
        });
    }
}
