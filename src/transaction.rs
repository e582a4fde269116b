//! The commit pipeline: validate → prepare → apply, with abort on failure.
//!
//! Every change to running (commit, edit-config or copy-config on running,
//! boot) goes through [`Pipeline::commit`]; the caller serialises commits
//! (the agent's core is behind one lock). Running is replaced only after
//! every plugin applied, and only if persisting it succeeded.

use std::collections::HashSet;

use tracing::{debug, warn};
use wgnetconf_plugin_api::{Commit, Phase, Plugin, PluginError, PrepareCommit};
use yang5::data::{DataDiff, DataDiffFlags, DataTree};

use crate::datastore::scope::{self, Scope};
use crate::datastore::validate_config;
use crate::datastore::yang_error::{json_path_to_error_path, last_name, libyang_error};
use crate::protocol::error::RpcError;
use crate::schema::Schema;

pub struct Pipeline {
    plugins: Vec<Box<dyn Plugin>>,
}

/// Converts a plugin's error into an rpc-error.
pub fn plugin_error(schema: &Schema, phase: Phase, e: &PluginError) -> RpcError {
    let message = match phase {
        Phase::Apply => format!("apply failed: {}", e.message),
        _ => e.message.clone(),
    };
    let mut r = RpcError::app(e.tag.as_str(), message);
    if let Some(t) = &e.app_tag {
        r = r.with_app_tag(t.clone());
    }
    if let Some(p) = &e.path {
        r = r
            .with_path(json_path_to_error_path(schema, p))
            .bad_element(last_name(p));
    }
    r
}

/// Swaps a scope's change back out of running after a failure (logged if
/// that fails too: nothing else can be done about it there).
fn undo_swap(schema: &Schema, running: &mut DataTree<'static>, scope: &mut Scope) {
    if let Err(e) = scope::swap(schema.ctx, running, scope) {
        warn!(error = %e.message, "restoring running after a failed commit");
    }
}

/// Module names touched by a diff (its top-level nodes' modules).
fn touched_modules(diff: &DataDiff<'static>) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, n) in diff.iter() {
        out.insert(n.owner_module().name().to_string());
    }
    out
}

impl Pipeline {
    pub fn new(plugins: Vec<Box<dyn Plugin>>) -> Self {
        Pipeline { plugins }
    }

    pub fn plugins_mut(&mut self) -> &mut [Box<dyn Plugin>] {
        &mut self.plugins
    }

    /// Whether a plugin takes part in changes of `module`.
    pub fn handles(&self, module: &str) -> bool {
        self.plugins.iter().any(|p| p.modules().contains(&module))
    }

    fn interested(&self, modules: &HashSet<String>) -> Vec<usize> {
        self.plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.modules().iter().any(|m| modules.contains(*m)))
            .map(|(i, _)| i)
            .collect()
    }

    fn diff(
        schema: &Schema,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
    ) -> Result<DataDiff<'static>, RpcError> {
        old.diff(new, DataDiffFlags::DEFAULTS)
            .map_err(|e| libyang_error(schema, &e))
    }

    /// libyang validation plus the plugins' own checks, nothing applied.
    /// `new` gets its default nodes added.
    pub fn validate(
        &mut self,
        schema: &Schema,
        old: &DataTree<'static>,
        new: &mut DataTree<'static>,
    ) -> Result<(), Vec<RpcError>> {
        if self.plugins.is_empty() {
            // Nothing would look at the diff: skip that whole-tree pass.
            return validate_config(schema, new).map_err(|e| vec![e]);
        }
        self.validate_with_diff(schema, old, new).map(|_| ())
    }

    /// [`Pipeline::validate`], returning the diff it computed so a commit
    /// does not compute it twice.
    fn validate_with_diff(
        &mut self,
        schema: &Schema,
        old: &DataTree<'static>,
        new: &mut DataTree<'static>,
    ) -> Result<DataDiff<'static>, Vec<RpcError>> {
        validate_config(schema, new).map_err(|e| vec![e])?;
        self.plugin_checks(schema, old, new)
    }

    /// The plugins' checks of `new`, which libyang already validated.
    pub fn check_plugins(
        &mut self,
        schema: &Schema,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
    ) -> Result<(), Vec<RpcError>> {
        if self.plugins.is_empty() {
            return Ok(());
        }
        self.plugin_checks(schema, old, new).map(|_| ())
    }

    /// The diff from `old` to `new` and the plugins' validation of it.
    fn plugin_checks(
        &mut self,
        schema: &Schema,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
    ) -> Result<DataDiff<'static>, Vec<RpcError>> {
        let diff = Self::diff(schema, old, new).map_err(|e| vec![e])?;
        let involved = self.interested(&touched_modules(&diff));
        let errors = self.plugin_validate(schema, &involved, old, new, &diff);
        if errors.is_empty() {
            Ok(diff)
        } else {
            Err(errors)
        }
    }

    /// Runs the whole pipeline from `old` (running) to `new`. On success the
    /// system runs `new` (returned, validated, with server-chosen values);
    /// `persist` is called before the plugins' work is final, and its error
    /// undoes the apply. On error the system is as it was.
    pub fn commit(
        &mut self,
        schema: &Schema,
        old: &DataTree<'static>,
        new: DataTree<'static>,
        persist: impl FnOnce(&DataTree<'static>) -> Result<(), RpcError>,
    ) -> Result<DataTree<'static>, Vec<RpcError>> {
        self.commit_checked(schema, old, new, false, persist)
            .map(|(tree, _)| tree)
    }

    /// [`Pipeline::commit`], also returning the commit's diff; with
    /// `prevalidated`, libyang already validated `new` exactly as it is (a
    /// candidate validated at edit time), so only the plugins' checks run
    /// again.
    pub fn commit_checked(
        &mut self,
        schema: &Schema,
        old: &DataTree<'static>,
        mut new: DataTree<'static>,
        prevalidated: bool,
        persist: impl FnOnce(&DataTree<'static>) -> Result<(), RpcError>,
    ) -> Result<(DataTree<'static>, DataDiff<'static>), Vec<RpcError>> {
        let mut diff = if prevalidated {
            self.plugin_checks(schema, old, &new)?
        } else {
            self.validate_with_diff(schema, old, &mut new)?
        };
        let modules = touched_modules(&diff);
        let involved = self.interested(&modules);

        // Prepare: plugins may propose server-chosen values.
        let sets = self.prepare(schema, &involved, old, &new, &diff)?;
        if !sets.is_empty() {
            for (path, value) in &sets {
                new.new_path(path, Some(value), false)
                    .map_err(|e| vec![libyang_error(schema, &e)])?;
            }
            validate_config(schema, &mut new).map_err(|e| vec![e])?;
            diff = Self::diff(schema, old, &new).map_err(|e| vec![e])?;
        }

        let applied = self.apply(schema, &involved, old, &new, &diff)?;
        if let Err(e) = persist(&new) {
            self.abort(&applied, schema, old, &new, &diff);
            return Err(vec![e]);
        }
        Ok((new, diff))
    }

    /// The validate phase of the involved plugins: their refusals.
    fn plugin_validate(
        &mut self,
        schema: &Schema,
        involved: &[usize],
        old: &DataTree<'static>,
        new: &DataTree<'static>,
        diff: &DataDiff<'static>,
    ) -> Vec<RpcError> {
        let mut errors = Vec::new();
        for &i in involved {
            let commit = Commit {
                context: schema.ctx,
                old,
                new,
                diff,
            };
            if let Err(es) = self.plugins[i].validate(&commit) {
                errors.extend(es.iter().map(|e| plugin_error(schema, Phase::Validate, e)));
            }
        }
        errors
    }

    /// The prepare phase: the values the involved plugins propose.
    fn prepare(
        &mut self,
        schema: &Schema,
        involved: &[usize],
        old: &DataTree<'static>,
        new: &DataTree<'static>,
        diff: &DataDiff<'static>,
    ) -> Result<Vec<(String, String)>, Vec<RpcError>> {
        let mut sets = Vec::new();
        for &i in involved {
            let mut pc = PrepareCommit {
                context: schema.ctx,
                old,
                new,
                diff,
                sets: Vec::new(),
            };
            self.plugins[i]
                .prepare(&mut pc)
                .map_err(|e| vec![plugin_error(schema, Phase::Prepare, &e)])?;
            sets.extend(pc.sets);
        }
        Ok(sets)
    }

    /// The plugins' checks of a validated scope, nothing applied (running
    /// holds the change only while they look at it).
    pub fn validate_scoped(
        &mut self,
        schema: &Schema,
        running: &mut DataTree<'static>,
        scope: &mut Scope,
    ) -> Result<(), Vec<RpcError>> {
        let involved = self.interested(&scope::root_modules(&scope.roots));
        if involved.is_empty() {
            return Ok(());
        }
        let ctx = schema.ctx;
        let diff = scope.take_diff(schema).map_err(|e| vec![e])?;
        scope::swap(ctx, running, scope).map_err(|e| vec![e])?;
        let errors = self.plugin_validate(schema, &involved, &scope.old, running, &diff);
        scope::swap(ctx, running, scope).map_err(|e| vec![e])?;
        scope.keep_diff(diff);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The pipeline for a commit whose change is confined to `scope` (see
    /// `datastore::scope`), with `scope.new` already validated by libyang:
    /// the roots' subtrees are swapped into `running` in place, and swapped
    /// back if a plugin or `persist` fails. Costs in proportion to the scope.
    /// Returns the diff if a plugin needed one (it is computed only then).
    pub fn commit_scoped(
        &mut self,
        schema: &Schema,
        running: &mut DataTree<'static>,
        scope: &mut Scope,
        persist: impl FnOnce(&DataTree<'static>, &Scope) -> Result<(), RpcError>,
    ) -> Result<Option<DataDiff<'static>>, Vec<RpcError>> {
        let involved = self.interested(&scope::root_modules(&scope.roots));
        let (diff, applied) = if involved.is_empty() {
            // No plugin takes part: no diff, only the swap.
            scope::swap(schema.ctx, running, scope).map_err(|e| vec![e])?;
            (None, Vec::new())
        } else {
            let (d, a) = self.plugins_scoped(schema, &involved, running, scope)?;
            (Some(d), a)
        };
        if let Err(e) = persist(running, scope) {
            if let Some(d) = &diff {
                self.abort(&applied, schema, &scope.old, running, d);
            }
            undo_swap(schema, running, scope);
            return Err(vec![e]);
        }
        Ok(diff)
    }

    /// The plugins' phases of a scoped commit: validate, prepare (its values
    /// go into the scope, validated again), apply. On success running holds
    /// the scope's change; on error it is as it was.
    fn plugins_scoped(
        &mut self,
        schema: &Schema,
        involved: &[usize],
        running: &mut DataTree<'static>,
        scope: &mut Scope,
    ) -> Result<(DataDiff<'static>, Vec<usize>), Vec<RpcError>> {
        let ctx = schema.ctx;
        let mut diff = scope.take_diff(schema).map_err(|e| vec![e])?;
        scope::swap(ctx, running, scope).map_err(|e| vec![e])?;
        let errors = self.plugin_validate(schema, involved, &scope.old, running, &diff);
        if !errors.is_empty() {
            undo_swap(schema, running, scope);
            return Err(errors);
        }
        let sets = match self.prepare(schema, involved, &scope.old, running, &diff) {
            Ok(s) => s,
            Err(e) => {
                undo_swap(schema, running, scope);
                return Err(e);
            }
        };
        if !sets.is_empty() {
            undo_swap(schema, running, scope);
            for (path, value) in &sets {
                scope
                    .set_leaf(schema, running, path, value)
                    .map_err(|e| vec![e])?;
            }
            scope.validate(schema).map_err(|e| vec![e])?;
            diff = scope.take_diff(schema).map_err(|e| vec![e])?;
            scope::swap(ctx, running, scope).map_err(|e| vec![e])?;
        }
        match self.apply(schema, involved, &scope.old, running, &diff) {
            Ok(applied) => Ok((diff, applied)),
            Err(e) => {
                undo_swap(schema, running, scope);
                Err(e)
            }
        }
    }

    /// The apply phase, undoing the earlier plugins if a later one fails:
    /// the plugins that applied.
    fn apply(
        &mut self,
        schema: &Schema,
        involved: &[usize],
        old: &DataTree<'static>,
        new: &DataTree<'static>,
        diff: &DataDiff<'static>,
    ) -> Result<Vec<usize>, Vec<RpcError>> {
        let mut applied: Vec<usize> = Vec::new();
        for &i in involved {
            let commit = Commit {
                context: schema.ctx,
                old,
                new,
                diff,
            };
            debug!(plugin = self.plugins[i].name(), "apply");
            if let Err(e) = self.plugins[i].apply(&commit) {
                warn!(plugin = self.plugins[i].name(), error = %e, "apply failed; aborting commit");
                self.abort(&applied, schema, old, new, diff);
                return Err(vec![plugin_error(schema, Phase::Apply, &e)]);
            }
            applied.push(i);
        }
        Ok(applied)
    }

    fn abort(
        &mut self,
        applied: &[usize],
        schema: &Schema,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
        diff: &DataDiff<'static>,
    ) {
        for &j in applied.iter().rev() {
            let commit = Commit {
                context: schema.ctx,
                old,
                new,
                diff,
            };
            self.plugins[j].abort(&commit);
        }
    }

    /// Operational state of every plugin added to `oper`.
    pub fn operational(
        &mut self,
        running: &DataTree<'static>,
        oper: &mut DataTree<'static>,
    ) -> Result<(), RpcError> {
        for p in &mut self.plugins {
            p.operational(running, oper)
                .map_err(|e| RpcError::operation_failed(format!("{}: {}", p.name(), e.message)))?;
        }
        Ok(())
    }

    pub fn start(&mut self, schema: &Schema) -> Result<(), String> {
        for p in &mut self.plugins {
            p.start(schema.ctx)
                .map_err(|e| format!("plugin {}: {}", p.name(), e.message))?;
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        for p in &mut self.plugins {
            p.stop();
        }
    }
}
