//! The commit pipeline: validate → prepare → apply, with abort on failure.
//!
//! Every change to running (commit, edit-config or copy-config on running,
//! boot, rollback) goes through [`Pipeline::commit`], which takes the
//! scoped or the whole-datastore path by the [`Change`] it is given; the
//! caller serialises commits (the agent's core is behind one lock). The
//! change becomes final only after every plugin applied it, and only if
//! running's owner (`datastore::running`) wrote it; otherwise the plugins
//! abort and running is as it was.

use std::collections::HashSet;

use tracing::{debug, warn};
use wgnetconf_plugin_api::{Commit, Phase, Plugin, PluginError, PrepareCommit};
use yang5::data::{DataDiff, DataDiffFlags, DataTree};

use crate::datastore::running::Running;
use crate::datastore::scope::{self, Scope};
use crate::datastore::yang_error::{json_path_to_error_path, last_name, libyang_error};
use crate::datastore::{duplicate, validate_config};
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

/// A change to running, as [`Pipeline::commit`] takes it.
pub enum Change {
    /// A scope libyang validated (`Running::check_scope`): swapped into
    /// running in place, at the cost of the change.
    Scoped(Scope),
    /// A whole new running; `prevalidated`: libyang already validated it
    /// exactly as it is (a candidate validated at edit time).
    Whole {
        tree: DataTree<'static>,
        prevalidated: bool,
    },
    /// Boot: running as loaded, applied from nothing.
    Boot,
}

/// What a commit changed, for netconf-config-change.
pub enum Committed {
    /// The diff from the old running to the new one.
    Diff(DataDiff<'static>),
    /// A scoped commit no plugin took part in (no diff is computed): each
    /// root and whether it was created, deleted or replaced.
    Roots(Vec<(String, &'static str)>),
}

/// Module names touched by a diff (its top-level nodes' modules).
fn touched_modules(diff: &DataDiff<'static>) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, n) in wgnetconf_plugin_api::diff::changes(diff) {
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

    /// Commits `change` to running: validate → prepare → apply, then
    /// running's owner writes it. On success the system runs the change;
    /// on error, running and the plugins are as they were.
    pub fn commit(
        &mut self,
        schema: &Schema,
        running: &mut Running,
        change: Change,
    ) -> Result<Committed, Vec<RpcError>> {
        match change {
            Change::Scoped(mut sc) => self.commit_scoped(schema, running, &mut sc),
            Change::Whole { tree, prevalidated } => self
                .commit_whole(schema, running, tree, prevalidated, false)
                .map(Committed::Diff),
            Change::Boot => {
                let tree = duplicate(running.tree()).map_err(|e| vec![e])?;
                self.commit_whole(schema, running, tree, false, true)
                    .map(Committed::Diff)
            }
        }
    }

    /// The whole-datastore path: from running (or, at `boot`, from nothing)
    /// to `new`, which replaces running once every plugin applied it.
    fn commit_whole(
        &mut self,
        schema: &Schema,
        running: &mut Running,
        mut new: DataTree<'static>,
        prevalidated: bool,
        boot: bool,
    ) -> Result<DataDiff<'static>, Vec<RpcError>> {
        let empty = DataTree::new(schema.ctx);
        let old: &DataTree<'static> = if boot { &empty } else { running.tree() };
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
        if let Err((e, new)) = running.replace(new) {
            let old: &DataTree<'static> = if boot { &empty } else { running.tree() };
            self.abort(&applied, schema, old, &new, &diff);
            return Err(vec![e]);
        }
        Ok(diff)
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
        running: &mut Running,
        scope: &mut Scope,
    ) -> Result<(), Vec<RpcError>> {
        let involved = self.interested(&scope::root_modules(&scope.roots));
        if involved.is_empty() {
            return Ok(());
        }
        let diff = scope.take_diff(schema).map_err(|e| vec![e])?;
        let errors = {
            let staged = running.stage(schema.ctx, scope).map_err(|e| vec![e])?;
            self.plugin_validate(schema, &involved, staged.old(), staged.running(), &diff)
        };
        scope.keep_diff(diff, errors.is_empty());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The scoped path (see `datastore::scope`), with `scope.new` already
    /// validated by libyang: the roots' subtrees are staged into running in
    /// place, and taken out again if a plugin or the write fails. Costs in
    /// proportion to the scope. The diff is computed only if a plugin
    /// takes part.
    fn commit_scoped(
        &mut self,
        schema: &Schema,
        running: &mut Running,
        scope: &mut Scope,
    ) -> Result<Committed, Vec<RpcError>> {
        let ctx = schema.ctx;
        let involved = self.interested(&scope::root_modules(&scope.roots));
        if involved.is_empty() {
            let changes = scope.changes();
            let mut staged = running.stage(ctx, scope).map_err(|e| vec![e])?;
            staged.persist().map_err(|e| vec![e])?;
            return Ok(Committed::Roots(changes));
        }
        // A candidate's scope cached when its last edit was accepted was
        // accepted by the plugins then, on this running: not again.
        let accepted = scope.plugins_accepted();
        let mut diff = scope.take_diff(schema).map_err(|e| vec![e])?;
        // Each `?` below drops the staged change: running is as it was.
        let staged = running.stage(ctx, scope).map_err(|e| vec![e])?;
        let (old, new) = (staged.old(), staged.running());
        if !accepted {
            let errors = self.plugin_validate(schema, &involved, old, new, &diff);
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        let sets = self.prepare(schema, &involved, old, new, &diff)?;
        let mut staged = if sets.is_empty() {
            staged
        } else {
            // The plugins' values go into the scope, validated again, with
            // the change out of running (the scope is built on running as
            // it is).
            drop(staged);
            scope
                .set_leaves(schema, running.tree(), &sets, &mut diff)
                .map_err(|e| vec![e])?;
            running.stage(ctx, scope).map_err(|e| vec![e])?
        };
        let applied = self.apply(schema, &involved, staged.old(), staged.running(), &diff)?;
        if let Err(e) = staged.persist() {
            self.abort(&applied, schema, staged.old(), staged.running(), &diff);
            return Err(vec![e]);
        }
        Ok(Committed::Diff(diff))
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use wgnetconf_plugin_api::{Commit, Plugin, PluginError, PrepareCommit};
    use yang5::data::Data;

    use super::*;
    use crate::datastore::disk::power_loss::PowerLossDisk;
    use crate::datastore::journal::Journal;
    use crate::datastore::{parse_config, print_config};
    use crate::protocol::rpc::EditOp;

    const NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
    const DESCRIPTION: &str = "/wgnetconf-tunnel:tunnel/wireguard[instance='2']/description";

    /// Records its phases; chooses a description in prepare (interface
    /// 2's unless told another path) and records whether the diff apply
    /// gets holds it.
    struct Recorder(Arc<Mutex<Vec<&'static str>>>, &'static str);

    impl Plugin for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn modules(&self) -> &[&'static str] {
            &["wgnetconf-tunnel"]
        }
        fn validate(&mut self, _: &Commit<'_>) -> Result<(), Vec<PluginError>> {
            self.0.lock().expect("log").push("validate");
            Ok(())
        }
        fn prepare(&mut self, c: &mut PrepareCommit<'_>) -> Result<(), PluginError> {
            if c.new.find_path(self.1).is_err() {
                c.set(self.1, "chosen");
            }
            Ok(())
        }
        fn apply(&mut self, c: &Commit<'_>) -> Result<(), PluginError> {
            let mut log = self.0.lock().expect("log");
            log.push("apply");
            let chosen = c.diff.iter().any(|(_, n)| {
                n.traverse()
                    .any(|d| d.path() == self.1 && d.value_canonical().as_deref() == Some("chosen"))
            });
            if chosen {
                log.push("chosen in diff");
            }
            Ok(())
        }
        fn abort(&mut self, _: &Commit<'_>) {
            self.0.lock().expect("log").push("abort");
        }
    }

    fn schema() -> Schema {
        Schema::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("yang")]).expect("schema")
    }

    fn tunnel(schema: &Schema, inner: &str) -> DataTree<'static> {
        let mut t = parse_config(schema, &format!("<tunnel xmlns=\"{NS}\">{inner}</tunnel>"))
            .expect("parse");
        validate_config(schema, &mut t).expect("valid");
        t
    }

    /// Running with interface 1, on a disk that refuses every write once
    /// `die` is set; the pipeline with the recorder.
    fn setup(
        schema: &Schema,
        disk: &PowerLossDisk,
    ) -> (Running, Pipeline, Arc<Mutex<Vec<&'static str>>>) {
        setup_choosing(schema, disk, DESCRIPTION)
    }

    /// [`setup`] with the recorder choosing the leaf at `chosen`.
    fn setup_choosing(
        schema: &Schema,
        disk: &PowerLossDisk,
        chosen: &'static str,
    ) -> (Running, Pipeline, Arc<Mutex<Vec<&'static str>>>) {
        let journal = Journal::with_disk(
            schema.ctx,
            Path::new("/run/test/running.xml").to_path_buf(),
            Arc::new(disk.clone()),
        );
        let running = Running::new(
            tunnel(
                schema,
                "<wireguard><instance>1</instance><listen-port>51001</listen-port></wireguard>",
            ),
            journal,
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let pipeline = Pipeline::new(vec![Box::new(Recorder(log.clone(), chosen))]);
        (running, pipeline, log)
    }

    fn scoped(schema: &Schema, running: &mut Running) -> Change {
        let edit = parse_config(
            schema,
            &format!(
                "<tunnel xmlns=\"{NS}\"><wireguard><instance>2</instance>\
              <listen-port>51002</listen-port></wireguard></tunnel>"
            ),
        )
        .expect("edit");
        let mut sc = Scope::of(schema, running.tree(), &[(&edit, &[], EditOp::Merge)])
            .expect("scope")
            .expect("scoped");
        running.check_scope(schema, &mut sc).expect("valid");
        Change::Scoped(sc)
    }

    #[test]
    fn a_write_that_fails_aborts_the_plugins_and_leaves_running() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        let (mut running, mut pipeline, log) = setup(&schema, &disk);
        let before = print_config(running.tree()).expect("print");
        disk.die_after(0);
        let change = scoped(&schema, &mut running);
        assert!(pipeline.commit(&schema, &mut running, change).is_err());
        assert_eq!(
            *log.lock().expect("log"),
            ["validate", "apply", "chosen in diff", "abort"]
        );
        assert_eq!(print_config(running.tree()).expect("print"), before);
        assert_eq!(running.generation(), 0);

        log.lock().expect("log").clear();
        let whole = Change::Whole {
            tree: tunnel(
                &schema,
                "<wireguard><instance>3</instance><listen-port>51003</listen-port></wireguard>",
            ),
            prevalidated: false,
        };
        assert!(pipeline.commit(&schema, &mut running, whole).is_err());
        assert_eq!(
            *log.lock().expect("log"),
            ["validate", "apply", "chosen in diff", "abort"]
        );
        assert_eq!(print_config(running.tree()).expect("print"), before);
        assert_eq!(running.generation(), 0);
    }

    #[test]
    fn a_scoped_commit_takes_the_plugins_values() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        let (mut running, mut pipeline, log) = setup(&schema, &disk);
        let change = scoped(&schema, &mut running);
        match pipeline.commit(&schema, &mut running, change) {
            Ok(Committed::Diff(_)) => {}
            Ok(Committed::Roots(_)) => panic!("a plugin took part: a diff"),
            Err(e) => panic!("commit refused: {e:?}"),
        }
        // Chosen inside the interface the commit creates: added to the
        // diff where it stands, without a new diff.
        assert_eq!(
            *log.lock().expect("log"),
            ["validate", "apply", "chosen in diff"]
        );
        let printed = print_config(running.tree()).expect("print");
        assert!(
            printed.contains("<description>chosen</description>"),
            "{printed}"
        );
        assert!(printed.contains("<instance>1</instance>"), "{printed}");
        assert_eq!(running.generation(), 1);
    }

    /// A scope the plugins accepted (a candidate's, when its last edit was
    /// accepted) is committed without their validating it again; one
    /// changed since is validated again.
    #[test]
    fn an_accepted_scope_is_not_validated_again_at_commit() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        let (mut running, mut pipeline, log) = setup(&schema, &disk);
        let Change::Scoped(mut sc) = scoped(&schema, &mut running) else {
            unreachable!()
        };
        pipeline
            .validate_scoped(&schema, &mut running, &mut sc)
            .expect("accepted");
        assert!(sc.plugins_accepted());
        pipeline
            .commit(&schema, &mut running, Change::Scoped(sc))
            .expect("committed");
        assert_eq!(
            *log.lock().expect("log"),
            ["validate", "apply", "chosen in diff"]
        );

        log.lock().expect("log").clear();
        let edit = parse_config(
            &schema,
            &format!(
                "<tunnel xmlns=\"{NS}\"><wireguard><instance>3</instance>\
              <listen-port>51003</listen-port></wireguard></tunnel>"
            ),
        )
        .expect("edit");
        let mut sc = Scope::of(&schema, running.tree(), &[(&edit, &[], EditOp::Merge)])
            .expect("scope")
            .expect("scoped");
        running.check_scope(&schema, &mut sc).expect("valid");
        pipeline
            .validate_scoped(&schema, &mut running, &mut sc)
            .expect("accepted");
        // Changed after the plugins saw it: their acceptance is void.
        sc.validate(&schema).expect("valid");
        assert!(!sc.plugins_accepted());
        pipeline
            .commit(&schema, &mut running, Change::Scoped(sc))
            .expect("committed");
        assert_eq!(*log.lock().expect("log"), ["validate", "validate", "apply"]);
    }

    #[test]
    fn a_value_chosen_outside_the_created_subtrees_is_diffed_again() {
        const OTHER: &str = "/wgnetconf-tunnel:tunnel/wireguard[instance='1']/description";
        let schema = schema();
        let disk = PowerLossDisk::default();
        let (mut running, mut pipeline, log) = setup_choosing(&schema, &disk, OTHER);
        let change = scoped(&schema, &mut running);
        if let Err(e) = pipeline.commit(&schema, &mut running, change) {
            panic!("commit refused: {e:?}");
        }
        assert_eq!(
            *log.lock().expect("log"),
            ["validate", "apply", "chosen in diff"]
        );
        let one = running
            .tree()
            .find_path(OTHER)
            .expect("interface 1's description");
        assert_eq!(one.value_canonical().as_deref(), Some("chosen"));
        assert!(running
            .tree()
            .find_path("/wgnetconf-tunnel:tunnel/wireguard[instance='2']")
            .is_ok());
    }
}
