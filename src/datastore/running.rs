//! Running's owner: the tree, its generation, the `unique` index and the
//! journal change together or not at all.
//!
//! - The generation changes whenever the tree does (the candidate's
//!   validated scope and the NACM policy are keyed by it).
//! - The `unique` index counts the tree's values (`unique.rs`).
//! - The journal (`journal.rs`) holds what the tree holds once a change is
//!   in: a change that cannot be written is taken out again.
//!
//! - The snapshot ([`Running::snapshot`]) is a copy of the tree as of one
//!   generation, shared with reads served outside the core lock; it is
//!   dropped when the generation moves on, so a reader never sees a tree
//!   a commit is changing (libyang trees allow one writer or several
//!   readers, never both).
//!
//! The rest of the agent reads running's tree (`Datastores::running`,
//! [`Running::tree`]). It changes only here: a whole new tree ([`Running::replace`]), a scope
//! swapped in place ([`Running::stage`], then [`Staged::persist`]), a
//! boot-time edit ([`Running::edit_at_boot`]) or a reload from the run
//! directory after a panic ([`Running::reload_from`]). The plugins' phases
//! around a change are `transaction.rs`'s.

use std::sync::Arc;

use tracing::error;
use yang5::context::Context;
use yang5::data::DataTree;

use super::journal::Journal;
use super::scope::{self, Scope};
use super::unique::{self, UniqueIndex};
use crate::protocol::error::RpcError;
use crate::schema::Schema;

/// Nodes from which a scoped change is persisted as a new base: a big
/// change is cheaper to write whole than as a journal record (which copies
/// it first).
const BIG_RECORD: usize = 4096;

pub struct Running {
    tree: DataTree<'static>,
    generation: u64,
    unique: UniqueIndex,
    journal: Journal,
    /// A copy of `tree` at `generation`, made on the first read that asks
    /// for it; `None` until then and after every change.
    snapshot: Option<Arc<DataTree<'static>>>,
}

impl Running {
    /// Running as loaded at boot, with the journal it came from (or will be
    /// written to).
    pub(crate) fn new(tree: DataTree<'static>, journal: Journal) -> Running {
        Running {
            tree,
            generation: 0,
            unique: UniqueIndex::default(),
            journal,
            snapshot: None,
        }
    }

    pub fn tree(&self) -> &DataTree<'static> {
        &self.tree
    }

    /// Changes whenever running does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The tree as of this generation, to read without the core lock: one
    /// copy per generation, shared by every read until the next change.
    /// Nothing changes a snapshot (readers only print, filter and copy it;
    /// the canonical values libyang would cache while they do are cached
    /// here, before any reader has it).
    pub fn snapshot(&mut self) -> Result<Arc<DataTree<'static>>, RpcError> {
        if let Some(s) = &self.snapshot {
            return Ok(s.clone());
        }
        let copy = super::duplicate(&self.tree)?;
        // Readers share it: nothing of it may change after this, not even
        // a canonical value libyang would cache on first use.
        super::raw::cache_canonical(&copy);
        let copy = Arc::new(copy);
        self.snapshot = Some(copy.clone());
        Ok(copy)
    }

    /// The tree changed (in place or replaced): the generation moves on,
    /// and the snapshot of the old one is no longer running's (readers
    /// holding it finish with it).
    fn changed(&mut self) {
        self.generation += 1;
        self.snapshot = None;
    }

    /// libyang's validation of a scope, with the running entries its
    /// `unique` values collide with.
    pub fn check_scope(&mut self, schema: &Schema, sc: &mut Scope) -> Result<(), RpcError> {
        sc.add_unique_context(schema.ctx, &self.tree, &mut self.unique)?;
        sc.validate(schema)
    }

    /// Swaps a validated scope's change into running. Until
    /// [`Staged::persist`] succeeds the change is provisional: dropping the
    /// [`Staged`] swaps it out again. On `Err` running is untouched.
    pub fn stage<'a>(
        &'a mut self,
        ctx: &'static Context,
        sc: &'a mut Scope,
    ) -> Result<Staged<'a>, RpcError> {
        // From the trees about to be swapped: exact, prepared values included.
        let delta = unique::delta(&self.unique, &sc.old, &sc.new);
        let big = sc.new_size(BIG_RECORD) >= BIG_RECORD;
        scope::swap(ctx, &mut self.tree, sc)?;
        Ok(Staged {
            ctx,
            running: self,
            scope: sc,
            delta: Some(delta),
            big,
        })
    }

    /// Makes `new` running: written as the new base first; on a write
    /// error running is untouched and `new` is handed back.
    pub fn replace(&mut self, new: DataTree<'static>) -> Result<(), (RpcError, DataTree<'static>)> {
        if let Err(e) = self.journal.save_base(&new) {
            return Err((e, new));
        }
        self.tree = new;
        self.unique.clear();
        self.changed();
        Ok(())
    }

    /// An edit at boot, before the boot commit applies running through the
    /// plugins and writes it as a new base (the NACM bootstrap).
    pub fn edit_at_boot<T>(&mut self, f: impl FnOnce(&mut DataTree<'static>) -> T) -> T {
        let out = f(&mut self.tree);
        self.unique.clear();
        self.changed();
        out
    }

    /// Takes over `fresh` (running just reloaded from the run directory,
    /// after a panic): its tree and journal; the generation moves on.
    pub fn reload_from(&mut self, fresh: Running) {
        self.tree = fresh.tree;
        self.journal = fresh.journal;
        self.unique.clear();
        self.changed();
    }
}

/// A scope's change swapped into running, not yet persisted. Holds running
/// borrowed, so nothing else sees the provisional state; dropped without
/// [`Staged::persist`], it swaps the change out again.
pub struct Staged<'a> {
    ctx: &'static Context,
    running: &'a mut Running,
    scope: &'a mut Scope,
    /// The index change to apply once persisted; `None` once it is.
    delta: Option<unique::Delta>,
    big: bool,
}

impl Staged<'_> {
    /// Running with the change.
    pub fn running(&self) -> &DataTree<'static> {
        &self.running.tree
    }

    /// The scope's roots as running had them.
    pub fn old(&self) -> &DataTree<'static> {
        &self.scope.old
    }

    /// Writes the change (a journal record, or a new base for a big one)
    /// and makes it final: generation and `unique` index follow. On a write
    /// error nothing is final: the caller aborts what the plugins applied,
    /// then drops this, which swaps the change out.
    pub fn persist(&mut self) -> Result<(), RpcError> {
        if self.delta.is_none() {
            return Ok(());
        }
        let r = &mut *self.running;
        if self.big {
            r.journal.save_base(&r.tree)?;
        } else {
            r.journal.append(&r.tree, &self.scope.roots)?;
        }
        if let Some(d) = self.delta.take() {
            r.unique.apply(d);
        }
        r.changed();
        Ok(())
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if self.delta.is_none() {
            return;
        }
        if let Err(e) = scope::swap(self.ctx, &mut self.running.tree, self.scope) {
            // The swap put back what it had exchanged: running holds the
            // change, unwritten. Whatever was derived from the tree before
            // is stale now.
            error!(error = %e.message, "cannot take a failed commit out of running");
            self.running.unique.clear();
            self.running.changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::disk::power_loss::PowerLossDisk;
    use super::super::{parse_config, print_config};
    use super::*;
    use crate::protocol::rpc::EditOp;

    const NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
    const KEY: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=";

    fn schema() -> Schema {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Schema::load(&[root.join("yang")]).expect("schema")
    }

    fn tunnel(schema: &Schema, inner: &str) -> DataTree<'static> {
        parse_config(schema, &format!("<tunnel xmlns=\"{NS}\">{inner}</tunnel>")).expect("parse")
    }

    fn running(schema: &Schema, inner: &str, disk: &PowerLossDisk) -> Running {
        let journal = Journal::with_disk(
            schema.ctx,
            Path::new("/run/test/running.xml").to_path_buf(),
            Arc::new(disk.clone()),
        );
        Running::new(tunnel(schema, inner), journal)
    }

    fn scope_of(schema: &Schema, on: &DataTree<'static>, edit: &DataTree<'static>) -> Scope {
        Scope::of(schema, on, &[(edit, &[], EditOp::Merge)])
            .expect("scope")
            .expect("the tunnel module takes the scoped path")
    }

    fn peer(wg: u32, peer: u32) -> String {
        format!(
            "<wireguard><instance>{wg}</instance><peer><instance>{peer}</instance>\
             <public-key>{KEY}</public-key></peer></wireguard>"
        )
    }

    #[test]
    fn a_change_that_cannot_be_written_is_taken_out_again() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        let mut r = running(
            &schema,
            "<wireguard><instance>1</instance></wireguard>",
            &disk,
        );
        let before = print_config(r.tree()).expect("print");
        let edit = tunnel(&schema, &peer(1, 7));
        let mut sc = scope_of(&schema, r.tree(), &edit);
        disk.die_after(0);
        {
            let mut staged = r.stage(schema.ctx, &mut sc).expect("stage");
            assert!(print_config(staged.running()).expect("print").contains(KEY));
            assert!(staged.persist().is_err(), "the dead disk refuses the write");
        }
        assert_eq!(print_config(r.tree()).expect("print"), before);
        assert_eq!(r.generation(), 0);

        // The same scope, written this time: final, and the generation moves.
        disk.power_cut(0, 0);
        let mut staged = r.stage(schema.ctx, &mut sc).expect("stage");
        staged.persist().expect("written");
        drop(staged);
        assert!(print_config(r.tree()).expect("print").contains(KEY));
        assert_eq!(r.generation(), 1);
    }

    #[test]
    fn one_snapshot_per_generation_and_none_of_a_change() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        let mut r = running(
            &schema,
            "<wireguard><instance>1</instance></wireguard>",
            &disk,
        );
        let first = r.snapshot().expect("snapshot");
        let again = r.snapshot().expect("snapshot");
        assert!(Arc::ptr_eq(&first, &again), "repeated reads share one copy");
        let edit = tunnel(&schema, &peer(1, 7));
        let mut sc = scope_of(&schema, r.tree(), &edit);
        r.stage(schema.ctx, &mut sc)
            .expect("stage")
            .persist()
            .expect("written");
        // The old snapshot is as it was; the next read gets the change.
        assert!(!print_config(&first).expect("print").contains(KEY));
        let next = r.snapshot().expect("snapshot");
        assert!(!Arc::ptr_eq(&first, &next));
        assert!(print_config(&next).expect("print").contains(KEY));
    }

    /// Canonical values libyang computes on first use (the endpoint's
    /// inet:ip-address, not yet cached after parsing) are all in the
    /// snapshot before a reader sees it: concurrent readers printing it
    /// never write into it.
    #[test]
    fn a_snapshot_has_every_canonical_value_cached() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        let mut r = running(
            &schema,
            &format!(
                "<wireguard><instance>1</instance><peer><instance>1</instance>\
                 <public-key>{KEY}</public-key><allowed-ip>10.0.0.1/24</allowed-ip>\
                 <allowed-ip>FD00:0:0::1/64</allowed-ip>\
                 <endpoint>FD00:0:0::7</endpoint></peer></wireguard>"
            ),
            &disk,
        );
        let snap = r.snapshot().expect("snapshot");
        let mut terms = 0;
        for n in snap.traverse() {
            // SAFETY: a node of the snapshot, borrowed for the loop.
            let kind = unsafe { super::super::raw::nodetype(n.as_raw()) };
            if kind & (libyang5_sys::LYS_LEAF | libyang5_sys::LYS_LEAFLIST) == 0 {
                continue;
            }
            terms += 1;
            // SAFETY: a terminal node of a live tree.
            let cached = unsafe {
                !(*(n.as_raw() as *mut libyang5_sys::lyd_node_term))
                    .value
                    ._canonical
                    .is_null()
            };
            assert!(cached, "{} has no cached canonical value", n.path());
        }
        assert!(terms >= 5, "{terms}");
    }

    #[test]
    fn a_swap_that_fails_half_way_leaves_both_trees_as_they_were() {
        let schema = schema();
        let disk = PowerLossDisk::default();
        // Built on a running with interfaces 1 and 2, staged on one with
        // only interface 1: the first root (interface 1's description)
        // swaps, the second (a peer of interface 2) finds no parent.
        let two = tunnel(
            &schema,
            "<wireguard><instance>1</instance><description>a</description></wireguard>\
             <wireguard><instance>2</instance></wireguard>",
        );
        let edit = tunnel(
            &schema,
            &format!(
                "<wireguard><instance>1</instance><description>b</description></wireguard>{}",
                peer(2, 1)
            ),
        );
        let mut sc = scope_of(&schema, &two, &edit);
        assert_eq!(sc.roots.iter().filter(|r| !r.anchor).count(), 2);
        let mut r = running(
            &schema,
            "<wireguard><instance>1</instance><description>a</description></wireguard>",
            &disk,
        );
        let before = print_config(r.tree()).expect("print");
        let scope_before = print_config(&sc.new).expect("print");
        assert!(r.stage(schema.ctx, &mut sc).is_err());
        assert_eq!(print_config(r.tree()).expect("print"), before);
        assert_eq!(print_config(&sc.new).expect("print"), scope_before);
        assert!(scope_before.contains("<description>b</description>"));
        assert_eq!(r.generation(), 0);
    }
}
