//! How an edit is carried out: at the cost of the change (see
//! `datastore::scope`) whenever every module the edit touches allows it,
//! else on the target's whole tree. [`Core::plan_edit`] decides, once per
//! edit; a commit of either kind goes through [`Core::commit_change`].

use yang5::data::DataTree;

use super::{deferred, hooks, one, Core, Outcome};
use crate::datastore::scope::{EditRef, Scope};
use crate::datastore::{self, edit, PendingEdit, ValuelessDelete};
use crate::protocol::error::RpcError;
use crate::protocol::rpc::{Datastore, EditOp, TestOption};
use crate::transaction::{Change, Committed};

/// An edit as it will be carried out.
pub(super) enum Planned {
    /// The scope of the edit on running (on a candidate without a tree of
    /// its own: of the pending edits and this one).
    Scoped(Scope),
    /// The target's whole tree with the edit applied.
    Whole(DataTree<'static>),
}

impl Core {
    /// The pending candidate edits plus (optionally) one more, as a scope
    /// of running.
    fn candidate_scope(&self, extra: Option<EditRef<'_>>) -> Result<Option<Scope>, RpcError> {
        let mut edits: Vec<EditRef<'_>> = self
            .ds
            .pending()
            .iter()
            .map(|p| (&p.tree, p.valueless.as_slice(), p.op))
            .collect();
        if let Some(e) = extra {
            edits.push(e);
        }
        Scope::of(&self.schema, self.ds.running(), &edits)
    }

    /// Scoped when the edit is no replace, its target is running or a
    /// candidate without a tree of its own, and its modules allow it;
    /// otherwise the target's whole tree (a replace: a new tree, checked
    /// against the user's write access as a whole).
    pub(super) fn plan_edit(
        &mut self,
        target: Datastore,
        op: EditOp,
        tree: &DataTree<'static>,
        valueless: &[ValuelessDelete],
    ) -> Result<Planned, RpcError> {
        let this = (tree, valueless, op);
        let scoped = match target {
            _ if op == EditOp::Replace => None,
            Datastore::Running => Scope::of(&self.schema, self.ds.running(), &[this])?,
            Datastore::Candidate if self.ds.candidate_is_pending() => {
                self.candidate_scope(Some(this))?
            }
            _ => None,
        };
        if let Some(sc) = scoped {
            return Ok(Planned::Scoped(sc));
        }
        if target == Datastore::Candidate {
            self.ds.materialize_candidate(&self.schema)?;
        }
        let mut new = if op == EditOp::Replace {
            DataTree::new(self.schema.ctx)
        } else {
            datastore::duplicate(self.existing(target)?)?
        };
        let apply_op = if op == EditOp::Replace {
            EditOp::Merge
        } else {
            op
        };
        edit::apply(&self.schema, &mut new, tree, valueless, apply_op)?;
        if op == EditOp::Replace {
            self.check_change(self.existing(target)?, &new)?;
        }
        Ok(Planned::Whole(new))
    }

    /// libyang's validation of a scope (with the running entries its
    /// `unique` values collide with).
    fn check_scope(&mut self, sc: &mut Scope) -> Result<(), Vec<RpcError>> {
        self.ds
            .running_for_check()
            .check_scope(&self.schema, sc)
            .map_err(one)
    }

    /// [`Core::check_scope`], then the plugins' checks on it.
    fn validate_scope(&mut self, sc: &mut Scope) -> Result<(), Vec<RpcError>> {
        self.check_scope(sc)?;
        self.pipeline
            .validate_scoped(&self.schema, self.ds.running_for_check(), sc)
    }

    /// An edit planned in scope (edit-config or edit-data, not a replace).
    pub(super) fn edit_in_scope(
        &mut self,
        target: Datastore,
        test_option: TestOption,
        mut sc: Scope,
        pending: PendingEdit,
    ) -> Result<Outcome, Vec<RpcError>> {
        super::fault::point("hang-in-edit");
        let mut validated = false;
        match (target, test_option) {
            (_, TestOption::TestOnly) => {
                self.validate_scope(&mut sc)?;
                return Ok(Outcome::Ok);
            }
            (Datastore::Candidate, TestOption::Set) => {}
            (Datastore::Candidate, TestOption::TestThenSet) => {
                // Constraints wait for validate/commit (`core/deferred.rs`):
                // the scope is cached as validated only if it is valid.
                validated = deferred::edit_outcome(self.check_scope(&mut sc))?;
                if validated {
                    self.pipeline.validate_scoped(
                        &self.schema,
                        self.ds.running_for_check(),
                        &mut sc,
                    )?;
                }
            }
            (_, _) => {
                self.check_scope(&mut sc)?;
                self.commit_change(Change::Scoped(sc), false)?;
                return Ok(Outcome::Ok);
            }
        }
        self.ds.push_pending(pending, validated.then_some(sc));
        Ok(Outcome::Ok)
    }

    /// Commits the pending candidate edits. `None`: the candidate has a
    /// tree of its own (the caller commits it whole).
    pub(super) fn commit_pending(&mut self) -> Option<Result<(), Vec<RpcError>>> {
        if !self.ds.candidate_is_pending() {
            return None;
        }
        if self.ds.pending().is_empty() {
            return Some(Ok(()));
        }
        let cached = self.ds.take_validated_scope();
        let result = (|| {
            let sc = match cached {
                // Validated when the last edit was accepted, on this running.
                Some(sc) => sc,
                None => {
                    let Some(mut sc) = self.candidate_scope(None).map_err(one)? else {
                        // Accepted edits were scoped; a schema cannot change since.
                        return Err(one(RpcError::operation_failed(
                            "the pending candidate edits cannot be committed in scope",
                        )));
                    };
                    self.check_scope(&mut sc)?;
                    sc
                }
            };
            self.commit_change(Change::Scoped(sc), true)
        })();
        if result.is_ok() {
            self.ds.take_pending();
        }
        Some(result)
    }

    /// The one way running changes after boot: `change` through the
    /// pipeline (which picks the scoped or the whole-datastore path by it),
    /// then netconf-config-change. `commits_pending`: the change is the
    /// candidate's pending edits (otherwise they become a tree first, so
    /// the candidate keeps what it was).
    pub(super) fn commit_change(
        &mut self,
        change: Change,
        commits_pending: bool,
    ) -> Result<(), Vec<RpcError>> {
        let before = self.history_before(&change);
        let running = self
            .ds
            .running_for_commit(&self.schema, commits_pending)
            .map_err(one)?;
        super::fault::point("panic-in-commit");
        let committed = self.pipeline.commit(&self.schema, running, change)?;
        let change = match &committed {
            Committed::Diff(d) => hooks::changes_of(&self.schema, d),
            Committed::Roots(roots) => hooks::changes_of_roots(&self.schema, roots),
        };
        if let Some(before) = before {
            let record = before.and_then(|b| b.after(&self.schema, self.ds.running()));
            self.record_history(record);
        }
        self.ext.config_changed("running", change);
        Ok(())
    }
}
