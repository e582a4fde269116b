//! edit-config and commit at the cost of the change (see
//! `datastore::scope`): used whenever every module the edit touches allows
//! it, with the whole-datastore path of `core.rs` as the fallback.

use yang5::data::DataTree;

use super::{deferred, hooks, one, Core, Outcome};
use crate::datastore::scope::{self, Root, Scope};
use crate::datastore::{PendingEdit, ValuelessDelete};
use crate::protocol::error::RpcError;
use crate::protocol::rpc::{Datastore, EditOp, TestOption};

/// An edit the scoped path declined, handed back for the full path.
pub(super) struct Declined(pub DataTree<'static>, pub Vec<ValuelessDelete>);

impl Core {
    /// The scope of `edits` applied in order to running, or `None` when a
    /// touched module needs whole-datastore validation.
    fn scope_of<'e>(
        &self,
        edits: &[(&'e DataTree<'static>, &'e [ValuelessDelete], EditOp)],
    ) -> Result<Option<Scope>, RpcError> {
        let running = &self.ds.running;
        let mut roots: Vec<Root> = Vec::new();
        for (tree, valueless, op) in edits {
            scope::collect_roots(running, tree, valueless, *op, &mut roots);
        }
        scope::normalize(&mut roots);
        // Roots are found again by instance path (scope, swap, journal):
        // a key holding both quote characters has no path libyang can
        // read back, so such edits take the whole-datastore path, which
        // finds nodes by value and stores running whole.
        if roots.iter().any(|r| scope::unaddressable(&r.path)) {
            return Ok(None);
        }
        if !scope::root_modules(&roots)
            .iter()
            .all(|m| self.schema.scoped.contains(m))
        {
            return Ok(None);
        }
        let mut sc = Scope::build(self.schema.ctx, running, roots)?;
        for (tree, valueless, op) in edits {
            sc.apply_edit(&self.schema, tree, valueless, *op)?;
        }
        Ok(Some(sc))
    }

    /// The pending candidate edits plus (optionally) one more, as a scope.
    fn candidate_scope(
        &self,
        extra: Option<(&DataTree<'static>, &[ValuelessDelete], EditOp)>,
    ) -> Result<Option<Scope>, RpcError> {
        let mut edits: Vec<(&DataTree<'static>, &[ValuelessDelete], EditOp)> = self
            .ds
            .pending()
            .iter()
            .map(|p| (&p.tree, p.valueless.as_slice(), p.op))
            .collect();
        if let Some(e) = extra {
            edits.push(e);
        }
        self.scope_of(&edits)
    }

    /// libyang's validation of a scope (with the running entries its
    /// `unique` values collide with).
    fn check_scope(&mut self, sc: &mut Scope) -> Result<(), Vec<RpcError>> {
        sc.add_unique_context(self.schema.ctx, &self.ds.running, &mut self.ds.unique)
            .map_err(one)?;
        sc.validate(&self.schema).map_err(one)
    }

    /// [`Core::check_scope`], then the plugins' checks on it.
    fn validate_scope(&mut self, sc: &mut Scope) -> Result<(), Vec<RpcError>> {
        self.check_scope(sc)?;
        self.pipeline
            .validate_scoped(&self.schema, &mut self.ds.running, sc)
    }

    /// edit-config (not a replace) on running or on a candidate without a
    /// tree of its own. `Err(Declined)` hands the edit back.
    pub(super) fn edit_scoped(
        &mut self,
        target: Datastore,
        op: EditOp,
        test_option: TestOption,
        tree: DataTree<'static>,
        valueless: Vec<ValuelessDelete>,
    ) -> Result<Result<Outcome, Declined>, Vec<RpcError>> {
        if target == Datastore::Running {
            // Running changes under the candidate: it keeps what it was.
            self.ds.materialize_candidate(&self.schema).map_err(one)?;
        } else if !self.ds.candidate_is_pending() {
            return Ok(Err(Declined(tree, valueless)));
        }
        let this = (&tree, valueless.as_slice(), op);
        let sc = if target == Datastore::Candidate {
            self.candidate_scope(Some(this))
        } else {
            self.scope_of(&[this])
        };
        let Some(mut sc) = sc.map_err(one)? else {
            return Ok(Err(Declined(tree, valueless)));
        };
        super::fault::point("panic-in-edit");
        let mut validated = false;
        match (target, test_option) {
            (_, TestOption::TestOnly) => self.validate_scope(&mut sc)?,
            (Datastore::Candidate, TestOption::Set) => {}
            (Datastore::Candidate, TestOption::TestThenSet) => {
                // Constraints wait for validate/commit (`core/deferred.rs`):
                // the scope is cached as validated only if it is valid.
                validated = deferred::edit_outcome(self.check_scope(&mut sc))?;
                if validated {
                    self.pipeline
                        .validate_scoped(&self.schema, &mut self.ds.running, &mut sc)?;
                }
            }
            (_, _) => {
                self.check_scope(&mut sc)?;
                self.commit_scope(&mut sc)?;
            }
        }
        if target == Datastore::Candidate && test_option != TestOption::TestOnly {
            self.ds.push_pending(
                PendingEdit {
                    tree,
                    valueless,
                    op,
                },
                validated.then_some(sc),
            );
        }
        Ok(Ok(Outcome::Ok))
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
            if let Some(mut sc) = cached {
                // Validated when the last edit was accepted, on this running.
                return self.commit_scope(&mut sc);
            }
            let Some(mut sc) = self.candidate_scope(None).map_err(one)? else {
                // Accepted edits were scoped; a schema cannot change since.
                return Err(one(RpcError::operation_failed(
                    "the pending candidate edits cannot be committed in scope",
                )));
            };
            self.check_scope(&mut sc)?;
            self.commit_scope(&mut sc)
        })();
        if result.is_ok() {
            self.ds.take_pending();
        }
        Some(result)
    }

    /// The pipeline on a validated scope, persisted, notified.
    fn commit_scope(&mut self, sc: &mut Scope) -> Result<(), Vec<RpcError>> {
        // A big change is cheaper to persist as a new base than as a
        // journal record (which copies it first).
        let big = sc.new_size(BIG_RECORD) >= BIG_RECORD;
        let changes = sc.changes();
        let unique_delta = crate::datastore::unique::delta(&self.ds.unique, &sc.old, &sc.new);
        super::fault::point("panic-in-commit");
        let ds = &mut self.ds;
        let diff =
            self.pipeline
                .commit_scoped(&self.schema, &mut ds.running, sc, |running, scope| {
                    if big {
                        ds.journal.save_base(running)
                    } else {
                        ds.journal.append(running, &scope.roots)
                    }
                })?;
        self.ds.running_changed();
        if sc.prepared {
            // The delta predates the plugins' values: count again lazily.
            self.ds.unique.clear();
        } else {
            self.ds.unique.apply(unique_delta);
        }
        let change = match &diff {
            Some(d) => hooks::changes_of(&self.schema, d),
            None => hooks::changes_of_roots(&self.schema, &changes),
        };
        // The history's change: the roots before (the scope's pristine
        // copy) and as running holds them now (a plugin's prepared values
        // included).
        let record = crate::datastore::history::Change::of_roots(
            &self.schema,
            &sc.roots,
            &sc.old,
            &self.ds.running,
        );
        self.record_history(record);
        self.ext.config_changed("running", change);
        Ok(())
    }
}

/// Nodes from which a commit is persisted as a new base.
const BIG_RECORD: usize = 4096;
