//! Commits that cost in proportion to the change, not to the datastore.
//!
//! An edit touches a few subtrees of running: its *roots* (a created peer,
//! a changed leaf, a deleted interface). Instead of copying running, editing
//! the copy, validating all of it and diffing it against running (each a
//! pass over every node: ~50 ms apiece at 10,000 peers), a scoped commit
//! builds a small *scope* tree holding
//!
//! - each root's subtree as it is in running,
//! - the root's ancestors, shallow (their leaves, not their other list
//!   entries), so `mandatory` and keys are there for libyang,
//! - the few sibling entries whose `unique` values collide with a changed
//!   entry's, found by one scan of the siblings' values,
//!
//! applies the edit to a copy of it, lets libyang validate that copy in full
//! and diff it against the original, and then swaps the roots' subtrees into
//! running (and back, if a plugin fails).
//!
//! That is only sound when nothing else in the datastore can make the change
//! valid or invalid: libyang's must/when/leafref XPath may look anywhere,
//! min/max-elements count entries the scope leaves out, a choice's case can
//! delete nodes outside the roots, and user order would be lost by the swap.
//! [`super::eligibility`] finds the modules free of those; any commit
//! touching another module takes the whole-datastore path.

use std::collections::{HashMap, HashSet};
use std::ptr;

use libyang5_sys as ffi;
use yang5::context::Context;
use yang5::data::{Data, DataDiff, DataDiffFlags, DataNodeRef, DataTree};
use yang5::schema::{DataValueType, SchemaNodeKind};

use super::edit;
use super::raw::{self, Node};
use super::unique::{self, UniqueIndex};
use super::yang_error::libyang_error;
use super::ValuelessDelete;
use crate::protocol::error::RpcError;
use crate::protocol::rpc::EditOp;
use crate::schema::Schema;

/// A subtree an edit may change: its instance path, and its parent's path
/// in running (for a root that does not exist yet).
#[derive(Clone, Debug)]
pub struct Root {
    pub path: String,
    pub parent: Option<String>,
    /// The edits delete or remove this existing list entry as a whole (and
    /// do nothing else inside it): the new tree needs no copy of its content.
    pub deleted: bool,
    /// Not a root but an existing node the edits name without changing
    /// anything below it (an entry given by its keys only): it must be in
    /// the scope (shallow, like an ancestor) or applying the edit there
    /// would create it; it is not swapped, journaled or reported.
    pub anchor: bool,
}

impl Root {
    fn covers(&self, other: &Root) -> bool {
        other.path == self.path
            || (other.path.len() > self.path.len()
                && other.path.starts_with(&self.path)
                && other.path.as_bytes()[self.path.len()] == b'/')
    }
}

/// The roots of `edit` against `target` (read only): where `edit::apply`
/// would create, replace, delete or set something. Mirrors `edit::apply_node`:
/// it descends through existing inner nodes merged (or with no operation)
/// and stops at the first node it would change.
pub fn collect_roots(
    target: &DataTree<'static>,
    edit_tree: &DataTree<'static>,
    valueless: &[ValuelessDelete],
    default_op: EditOp,
    out: &mut Vec<Root>,
) {
    for v in valueless {
        // Its parent comes into the scope even when the leaf is absent.
        out.push(Root {
            path: v.path.clone(),
            parent: v.path.rsplit_once('/').map(|(p, _)| p.to_string()),
            deleted: false,
            anchor: false,
        });
    }
    let Some(first) = edit_tree.reference() else {
        return;
    };
    for node in first.inclusive_siblings() {
        walk(target, &node, default_op, None, out);
    }
}

fn walk(
    target: &DataTree<'static>,
    node: &DataNodeRef<'_>,
    inherited: EditOp,
    parent: Option<String>,
    out: &mut Vec<Root>,
) {
    let snode = node.schema();
    if snode.is_list_key() {
        return;
    }
    // A bad operation attribute is reported by edit::apply on the scope;
    // treating the node as a root keeps the walk total.
    let op = edit::op_of(node, inherited).unwrap_or(EditOp::Replace);
    let path = raw::node_path(node);
    let is_leaf = matches!(
        snode.kind(),
        SchemaNodeKind::Leaf | SchemaNodeKind::LeafList
    );
    let present = edit::exists_node(target, node);
    if is_leaf
        || !present
        || matches!(
            op,
            EditOp::Create | EditOp::Delete | EditOp::Remove | EditOp::Replace
        )
    {
        // Only list entries: a shallow copy of one still exists for the
        // delete (its keys), which a non-presence container holding only
        // lists would not.
        let deleted = present
            && snode.kind() == SchemaNodeKind::List
            && matches!(op, EditOp::Delete | EditOp::Remove);
        out.push(Root {
            path,
            parent,
            deleted,
            anchor: false,
        });
        return;
    }
    let before = out.len();
    for child in node.children() {
        walk(target, &child, op, Some(path.clone()), out);
    }
    if out.len() == before {
        // Nothing below changes (keys only, or operations that find
        // nothing): without it, the scope would lack the node and the edit
        // create it there (a second instance beside running's, or
        // data-missing for default-operation none).
        out.push(Root {
            path,
            parent,
            deleted: false,
            anchor: true,
        });
    }
}

/// Sorts the roots and drops every root inside another one, and every
/// anchor with a root at or below it (that root brings it along).
pub fn normalize(roots: &mut Vec<Root>) {
    roots.sort_by(|a, b| a.path.cmp(&b.path));
    let mut kept: Vec<Root> = Vec::with_capacity(roots.len());
    for r in roots.drain(..) {
        // A root another edit touches too (or inside it) is no plain delete
        // any more: an edit before the delete may need its content.
        if let Some(k) = kept.iter_mut().find(|k| !k.anchor && k.covers(&r)) {
            k.deleted = false;
            continue;
        }
        if r.anchor && kept.iter().any(|k| k.anchor && k.path == r.path) {
            continue;
        }
        kept.push(r);
    }
    let real: Vec<Root> = kept.iter().filter(|k| !k.anchor).cloned().collect();
    kept.retain(|a| !a.anchor || !real.iter().any(|k| a.covers(k)));
    *roots = kept;
}

/// Whether an instance path may not find its node again: libyang prints a
/// key value holding both quote characters inside one of them, and no
/// XPath literal can hold both. (Conservative: a path whose keys hold one
/// kind each counts too.)
pub fn unaddressable(path: &str) -> bool {
    path.contains('\'') && path.contains('"')
}

/// Top-level module names of the roots.
pub fn root_modules(roots: &[Root]) -> HashSet<String> {
    roots
        .iter()
        .filter_map(|r| {
            r.path
                .strip_prefix('/')
                .and_then(|p| p.split(':').next())
                .map(str::to_string)
        })
        .collect()
}

/// The scope of one commit: `old` holds the roots as running has them,
/// `new` the same after the edit (validated by [`Scope::validate`]).
pub struct Scope {
    pub roots: Vec<Root>,
    /// The diff, kept between validation and commit.
    diff: Option<DataDiff<'static>>,
    /// The plugins accepted the kept diff (see [`Scope::plugins_accepted`]).
    accepted: bool,
    pub old: DataTree<'static>,
    pub new: DataTree<'static>,
}

/// Copies `node`'s ancestors (shallow) and returns the copy of its parent in
/// `tree` (NULL for a top-level node).
///
/// # Safety
/// `node` is a live node (see [`raw`]) of running; `*first` is NULL or the
/// first top-level node of a scope tree the caller owns and may change.
unsafe fn ensure_parent(node: Node, first: &mut Node) -> Option<Node> {
    let p = raw::parent(node);
    if p.is_null() {
        return Some(ptr::null_mut());
    }
    ensure_node(p, first)
}

/// The copy of running's `node` in the scope tree, made shallow with its
/// ancestors if it is not there yet.
///
/// # Safety
/// As for [`ensure_parent`].
unsafe fn ensure_node(node: Node, first: &mut Node) -> Option<Node> {
    if let Some(n) = raw::find(*first, &raw::path(node)) {
        return Some(n);
    }
    let parent = ensure_parent(node, first)?;
    raw::dup_shallow(node, parent, first)
}

/// Puts running's subtree at `path` (if any) into the scope tree, with
/// shallow ancestors; for a missing root, its parent.
///
/// # Safety
/// `running` is NULL or the first top-level node of running, borrowed for
/// the call; `*first` as for [`ensure_parent`].
unsafe fn copy_root(running: Node, root: &Root, first: &mut Node) -> Option<()> {
    match raw::find(running, &root.path) {
        Some(n) => {
            let parent = ensure_parent(n, first)?;
            // A leaf or container root may have come with a shallow ancestor.
            if let Some(stale) = raw::find(*first, &root.path) {
                raw::free(stale, first);
            }
            raw::dup_into(n, parent, first, true)?;
        }
        None => {
            if let Some(pp) = &root.parent {
                if let Some(p) = raw::find(running, pp) {
                    ensure_node(p, first)?;
                }
            }
        }
    }
    Some(())
}

fn failed(what: &str) -> RpcError {
    RpcError::operation_failed(format!("cannot build the commit scope: {what}"))
}

/// One edit as the scope sees it: its tree, its value-less deletes and
/// its default operation.
pub type EditRef<'e> = (&'e DataTree<'static>, &'e [ValuelessDelete], EditOp);

impl Scope {
    /// The scope of `edits` applied in order to `running`, or `None` when
    /// a touched module needs whole-datastore validation.
    pub fn of(
        schema: &Schema,
        running: &DataTree<'static>,
        edits: &[EditRef<'_>],
    ) -> Result<Option<Scope>, RpcError> {
        let mut roots: Vec<Root> = Vec::new();
        for (tree, valueless, op) in edits {
            collect_roots(running, tree, valueless, *op, &mut roots);
        }
        normalize(&mut roots);
        // Roots are found again by instance path (scope, swap, journal):
        // a key holding both quote characters has no path libyang can
        // read back, so such edits take the whole-datastore path, which
        // finds nodes by value and stores running whole.
        if roots.iter().any(|r| unaddressable(&r.path)) {
            return Ok(None);
        }
        if !root_modules(&roots)
            .iter()
            .all(|m| schema.scoped.contains(m))
        {
            return Ok(None);
        }
        let mut sc = Scope::build(schema.ctx, running, roots)?;
        for (tree, valueless, op) in edits {
            sc.apply_edit(schema, tree, valueless, *op)?;
        }
        Ok(Some(sc))
    }

    /// The scope of `roots` (normalised) in `running`.
    pub fn build(
        ctx: &'static Context,
        running: &DataTree<'static>,
        roots: Vec<Root>,
    ) -> Result<Scope, RpcError> {
        let run = raw::first_of(running);
        // SAFETY: `run` is running's first node, borrowed for the call; the
        // nodes under `first` and `nfirst` are trees built here and owned by
        // nobody else until `wrap` hands each to its `DataTree`.
        unsafe {
            let mut first: Node = ptr::null_mut();
            for r in &roots {
                if r.anchor {
                    continue;
                }
                if copy_root(run, r, &mut first).is_none() {
                    let tree = raw::wrap(ctx, first);
                    drop(tree);
                    return Err(failed(&r.path));
                }
            }
            // Anchors last: a root's copy may hold them already.
            for r in roots.iter().filter(|r| r.anchor) {
                if let Some(n) = raw::find(run, &r.path) {
                    if ensure_node(n, &mut first).is_none() {
                        drop(raw::wrap(ctx, first));
                        return Err(failed(&r.path));
                    }
                }
            }
            let old = raw::wrap(ctx, first);
            let mut nfirst: Node = ptr::null_mut();
            for r in &roots {
                if r.anchor {
                    continue;
                }
                let ok = match (r.deleted, raw::find(run, &r.path)) {
                    // Only for the delete to find it: no copy of its content.
                    (true, Some(n)) => ensure_parent(n, &mut nfirst)
                        .and_then(|p| raw::dup_shallow(n, p, &mut nfirst))
                        .map(|_| ()),
                    _ => copy_root(run, r, &mut nfirst),
                };
                if ok.is_none() {
                    drop(raw::wrap(ctx, nfirst));
                    return Err(failed(&r.path));
                }
            }
            for r in roots.iter().filter(|r| r.anchor) {
                if let Some(n) = raw::find(run, &r.path) {
                    if ensure_node(n, &mut nfirst).is_none() {
                        drop(raw::wrap(ctx, nfirst));
                        return Err(failed(&r.path));
                    }
                }
            }
            let new = raw::wrap(ctx, nfirst);
            Ok(Scope {
                roots,
                diff: None,
                accepted: false,
                old,
                new,
            })
        }
    }

    /// Applies one edit to the scope's new tree.
    pub fn apply_edit(
        &mut self,
        schema: &Schema,
        edit_tree: &DataTree<'static>,
        valueless: &[ValuelessDelete],
        default_op: EditOp,
    ) -> Result<(), RpcError> {
        self.diff = None;
        edit::apply(schema, &mut self.new, edit_tree, valueless, default_op)
    }

    /// Adds to both trees the running entries whose `unique` values equal
    /// those of an entry in the new tree: libyang then sees (and reports)
    /// every collision the change causes. The index tells whether running
    /// holds such an entry outside the scope; only then are the siblings
    /// scanned for it (the edit is about to be refused).
    pub fn add_unique_context(
        &mut self,
        ctx: &'static Context,
        running: &DataTree<'static>,
        index: &mut UniqueIndex,
    ) -> Result<(), RpcError> {
        let run = raw::first_of(running);
        let old_groups = unique::entries_by_group(&self.old);
        let mut defaults = unique::Defaults::default();
        let mut hits: Vec<Node> = Vec::new();
        // SAFETY: `run` and `rparent` are nodes of running, the groups' entries
        // nodes of the scope's trees, all borrowed and unchanged while this
        // loop runs.
        unsafe {
            for ((s, ppath), entries) in unique::entries_by_group(&self.new) {
                let rparent = if ppath.is_empty() {
                    ptr::null_mut()
                } else {
                    match raw::find(run, &ppath) {
                        Some(p) => p,
                        // A new parent: nothing in running to collide with.
                        None => continue,
                    }
                };
                // The scope's entries as running has them: counted in the index
                // but not outside the scope.
                let mut inside: HashMap<unique::Tuple, u32> = HashMap::new();
                if let Some(olds) = old_groups.get(&(s, ppath.clone())) {
                    for e in olds {
                        for t in unique::tuples(*e, None) {
                            *inside.entry(t).or_default() += 1;
                        }
                    }
                }
                let list = s as *const ffi::lysc_node;
                let mut colliding: HashSet<unique::Tuple> = HashSet::new();
                for e in &entries {
                    for t in unique::tuples(*e, Some(&mut defaults)) {
                        let total = index.count(running, list, &ppath, rparent, &t);
                        if total > inside.get(&t).copied().unwrap_or(0) {
                            colliding.insert(t);
                        }
                    }
                }
                if colliding.is_empty() {
                    continue;
                }
                let mut sib = if rparent.is_null() {
                    run
                } else {
                    raw::first_child(rparent)
                };
                while !sib.is_null() {
                    if raw::schema_of(sib) == list
                        && unique::tuples(sib, None)
                            .iter()
                            .any(|t| colliding.contains(t))
                    {
                        hits.push(sib);
                    }
                    sib = raw::next(sib);
                }
            }
        }
        drop(defaults);
        for h in hits {
            // SAFETY: `h` is a node of running, borrowed for the call.
            let path = unsafe { raw::path(h) };
            if raw::find_in(&self.old, &path).is_some() {
                continue; // already in the scope, as the edit left it
            }
            for tree in [&mut self.old, &mut self.new] {
                // SAFETY: `h` is a node of running (borrowed); the closure
                // changes the scope tree only through `raw`.
                let ok = unsafe {
                    raw::with_root(ctx, tree, |first| {
                        let parent = ensure_parent(h, first)?;
                        raw::dup_shallow(h, parent, first)
                    })
                };
                ok.ok_or_else(|| failed(&path))?;
            }
        }
        Ok(())
    }

    /// Sets a leaf in the new tree (a value a plugin chose in prepare); the
    /// leaf becomes a root of its own unless a root holds it already.
    pub fn set_leaf(
        &mut self,
        schema: &Schema,
        running: &DataTree<'static>,
        path: &str,
        value: &str,
    ) -> Result<(), RpcError> {
        let covered = self.roots.iter().any(|r| {
            !r.anchor
                && (path == r.path
                    || (path.starts_with(&r.path)
                        && path.as_bytes().get(r.path.len()) == Some(&b'/')))
        });
        if !covered {
            let root = Root {
                path: path.to_string(),
                parent: path.rsplit_once('/').map(|(p, _)| p.to_string()),
                deleted: false,
                anchor: false,
            };
            let run = raw::first_of(running);
            for tree in [&mut self.old, &mut self.new] {
                // SAFETY: `run` is running's first node (borrowed); the
                // closure changes the scope tree only through `raw`.
                unsafe { raw::with_root(schema.ctx, tree, |first| copy_root(run, &root, first)) }
                    .ok_or_else(|| failed(path))?;
            }
            self.roots.push(root);
        }
        self.new
            .new_path(path, Some(value), false)
            .map_err(|e| libyang_error(schema, &e))?;
        self.diff = None;
        Ok(())
    }

    /// Sets the leaves the plugins chose in prepare (each as
    /// [`Scope::set_leaf`]) and brings `diff`, the scope's diff before them,
    /// up to date with the scope validated again. A leaf that
    /// [`stands_alone`] and lands inside a subtree `diff` creates (a key
    /// generated for a new interface) is added to that subtree of the diff,
    /// which is then exactly what a new diff would be, and libyang has
    /// nothing left to check (it checked the value when it stored it).
    /// Otherwise the whole scope is validated and diffed again (at 10,000
    /// new peers those two passes were ~70 ms of the commit).
    pub fn set_leaves(
        &mut self,
        schema: &Schema,
        running: &DataTree<'static>,
        sets: &[(String, String)],
        diff: &mut DataDiff<'static>,
    ) -> Result<(), RpcError> {
        let mut in_place = true;
        for (path, value) in sets {
            let existed = raw::find_in(&self.new, path).is_some();
            self.set_leaf(schema, running, path, value)?;
            in_place = in_place && !existed && self.add_to_created(schema, path, diff);
        }
        if !in_place {
            self.validate(schema)?;
            *diff = self.take_diff(schema)?;
        }
        Ok(())
    }

    /// Copies the new leaf at `path` into `diff` if it stands alone and its
    /// parent is inside a subtree the diff creates; false (nothing changed)
    /// otherwise.
    fn add_to_created(&self, schema: &Schema, path: &str, diff: &mut DataDiff<'static>) -> bool {
        let Ok(leaf) = self.new.find_path(path) else {
            return false;
        };
        if !stands_alone(schema, &leaf) {
            return false;
        }
        let leaf = leaf.as_raw();
        let Some((parent_path, _)) = path.rsplit_once('/') else {
            return false;
        };
        let created = diff.find_path(parent_path).is_ok_and(|p| {
            p.inclusive_ancestors()
                .find_map(|a| {
                    a.meta()
                        .find(|m| m.name() == "operation")
                        .map(|m| m.value() == "create")
                })
                .unwrap_or(false)
        });
        if !created {
            return false;
        }
        // SAFETY: the first node of `diff`, borrowed (mutably) for the call.
        let Some(parent) = (unsafe { raw::find(diff.raw(), parent_path) }) else {
            return false;
        };
        // The parent is not top-level, so the diff's first node stays.
        let mut first = diff.raw();
        // SAFETY: `leaf` is a node of the scope's new tree and `parent` one
        // of `diff`, both borrowed for the call; the copy goes into `diff`.
        unsafe { raw::dup_into(leaf, parent, &mut first, false) }.is_some()
    }

    /// libyang's full validation of the new tree (small: the scope only).
    pub fn validate(&mut self, schema: &Schema) -> Result<(), RpcError> {
        self.diff = None;
        super::validate_config(schema, &mut self.new)
    }

    /// Whether the plugins accepted this scope as it is (its kept diff):
    /// every change clears the kept diff. The caller knows whether the
    /// plugins' state is still the one they checked it against (a scope
    /// cached with the candidate is dropped when running changes).
    pub fn plugins_accepted(&self) -> bool {
        self.diff.is_some() && self.accepted
    }

    /// libyang's diff from the old to the new scope: the commit's diff (the
    /// one [`Scope::keep_diff`] kept, if the scope has not changed since).
    pub fn take_diff(&mut self, schema: &Schema) -> Result<DataDiff<'static>, RpcError> {
        if let Some(d) = self.diff.take() {
            return Ok(d);
        }
        self.old
            .diff(&self.new, DataDiffFlags::DEFAULTS)
            .map_err(|e| libyang_error(schema, &e))
    }

    /// Keeps a diff from [`Scope::take_diff`] for the commit that follows a
    /// validation (the plugins look at the same diff twice).
    /// `accepted`: the plugins' validation of it found nothing.
    pub fn keep_diff(&mut self, diff: DataDiff<'static>, accepted: bool) {
        self.diff = Some(diff);
        self.accepted = accepted;
    }
}

/// Whether libyang's validation of a tree can say nothing about the new
/// leaf `node` that it did not check when storing its value: a leaf of a
/// module committed in scope (no must, when or leafref reads its nodes,
/// none sits in its tree), no key, no default, of a type that needs no
/// other node (no leafref, instance-identifier or union), named by no
/// `unique` of a list above it.
fn stands_alone(schema: &Schema, node: &DataNodeRef<'_>) -> bool {
    let snode = node.schema();
    if snode.kind() != SchemaNodeKind::Leaf
        || snode.is_list_key()
        || snode.has_default()
        || !schema.scoped.contains(snode.module().name())
    {
        return false;
    }
    let self_typed = snode.leaf_type().is_some_and(|t| {
        !matches!(
            t.base_type(),
            DataValueType::LeafRef | DataValueType::InstanceId | DataValueType::Union
        )
    });
    let s = snode.as_raw() as *const ffi::lysc_node;
    self_typed
        && !node.ancestors().any(|a| {
            // SAFETY: the compiled schema node of a node of a borrowed
            // tree; the context lives as long as the process.
            unsafe { unique::uniques(a.schema().as_raw() as *const ffi::lysc_node) }
                .iter()
                .flatten()
                .any(|leaf| *leaf == s)
        })
}

/// One root's exchange as it was done: enough to take it back without
/// looking anything up again.
struct Exchanged {
    /// Running's subtree (now in the scope's new tree) and its old parent.
    x: Option<(Node, Node)>,
    /// The scope's subtree (now in running) and its old parent.
    y: Option<(Node, Node)>,
}

/// Exchanges, between `running` and the scope's new tree, the subtree at
/// each root (a missing one counts as absent on its side): afterwards
/// running holds the change and the scope's new tree what running had, so
/// calling it again undoes it. Nothing is copied.
///
/// All or nothing: if one root cannot be exchanged (its parent is missing
/// on the other side, or libyang refuses a link), the roots already
/// exchanged are put back where they were and both trees are as before.
/// Only [`super::running::Running`] calls it (running's owner keeps its
/// generation, `unique` index and journal in step with the swap).
pub(super) fn swap(
    ctx: &'static Context,
    running: &mut DataTree<'static>,
    scope: &mut Scope,
) -> Result<(), RpcError> {
    let roots = &scope.roots;
    let mut rfirst = std::mem::replace(running, DataTree::new(ctx)).into_raw();
    let mut nfirst = std::mem::replace(&mut scope.new, DataTree::new(ctx)).into_raw();
    let mut done: Vec<Exchanged> = Vec::new();
    let mut result = Ok(());
    for r in roots.iter().filter(|r| !r.anchor) {
        // SAFETY: `rfirst` and `nfirst` are the first nodes of the two
        // trees taken out of their owners above, changed only by
        // (un)exchange until they are wrapped again below.
        match unsafe { exchange(&mut rfirst, &mut nfirst, &r.path) } {
            Ok(Some(e)) => done.push(e),
            Ok(None) => {}
            Err(()) => {
                result = Err(failed(&r.path));
                break;
            }
        }
    }
    if result.is_err() {
        for e in done.iter().rev() {
            // SAFETY: as above; `e` is an exchange done on these trees.
            if !unsafe { unexchange(&mut rfirst, &mut nfirst, e) } {
                tracing::error!("a failed commit swap could not be taken back in full");
            }
        }
    }
    // SAFETY: the two trees taken out above, whole again (all or nothing).
    unsafe {
        *running = raw::wrap(ctx, rfirst);
        scope.new = raw::wrap(ctx, nfirst);
    }
    result
}

/// Exchanges the subtree at `path` between the two trees; `Ok(None)`:
/// neither has it. On `Err` both trees are as they were.
///
/// # Safety
/// `*rfirst` and `*nfirst` are each NULL or the first top-level node of a
/// tree of one context that the caller owns and may change (two trees).
unsafe fn exchange(
    rfirst: &mut Node,
    nfirst: &mut Node,
    path: &str,
) -> Result<Option<Exchanged>, ()> {
    let rn = raw::find(*rfirst, path);
    let nn = raw::find(*nfirst, path);
    // Each side's parent for the other side's subtree.
    let rparent = match (rn, nn) {
        (Some(x), _) => Some(raw::parent(x)),
        (None, Some(y)) => parent_in(*rfirst, y),
        (None, None) => return Ok(None),
    };
    let nparent = match (nn, rn) {
        (Some(y), _) => Some(raw::parent(y)),
        (None, Some(x)) => parent_in(*nfirst, x),
        (None, None) => return Ok(None),
    };
    let (Some(rparent), Some(nparent)) = (rparent, nparent) else {
        return Err(());
    };
    let e = Exchanged {
        x: rn.map(|x| (x, rparent)),
        y: nn.map(|y| (y, nparent)),
    };
    if let Some(x) = rn {
        raw::unlink(x, rfirst);
    }
    if let Some(y) = nn {
        raw::unlink(y, nfirst);
    }
    let y_in = nn.is_none_or(|y| raw::link(y, rparent, rfirst));
    let x_in = y_in && rn.is_none_or(|x| raw::link(x, nparent, nfirst));
    if x_in {
        return Ok(Some(e));
    }
    // Back as it was: what got linked across comes out again first.
    if y_in {
        if let Some(y) = nn {
            raw::unlink(y, rfirst);
        }
    }
    if let Some(x) = rn {
        raw::link(x, rparent, rfirst);
    }
    if let Some(y) = nn {
        raw::link(y, nparent, nfirst);
    }
    Err(())
}

/// Takes one completed [`exchange`] back: each subtree returns to the
/// parent it had. `false` if libyang refused a link.
///
/// # Safety
/// As for [`exchange`]; `e` is an exchange done on these two trees and not
/// taken back yet.
unsafe fn unexchange(rfirst: &mut Node, nfirst: &mut Node, e: &Exchanged) -> bool {
    if let Some((y, _)) = e.y {
        raw::unlink(y, rfirst);
    }
    if let Some((x, _)) = e.x {
        raw::unlink(x, nfirst);
    }
    let mut ok = true;
    if let Some((x, rparent)) = e.x {
        ok &= raw::link(x, rparent, rfirst);
    }
    if let Some((y, nparent)) = e.y {
        ok &= raw::link(y, nparent, nfirst);
    }
    ok
}

/// The node of `tree` that corresponds to `node`'s parent in another tree
/// (NULL for a top-level node); `None` if `tree` lacks it.
///
/// # Safety
/// `first` is NULL or a live node (see [`raw`]), `node` a live node.
unsafe fn parent_in(first: Node, node: Node) -> Option<Node> {
    let p = raw::parent(node);
    if p.is_null() {
        return Some(ptr::null_mut());
    }
    raw::find(first, &raw::path(p))
}

impl Scope {
    /// What changed, per root, for netconf-config-change: created, deleted
    /// or replaced (call before [`swap`]).
    pub fn changes(&self) -> Vec<(String, &'static str)> {
        self.roots
            .iter()
            .filter(|r| !r.anchor)
            .filter_map(|r| {
                let op = match (
                    raw::find_in(&self.old, &r.path),
                    raw::find_in(&self.new, &r.path),
                ) {
                    (None, Some(_)) => "create",
                    (Some(_), None) => "delete",
                    (Some(_), Some(_)) => "replace",
                    (None, None) => return None,
                };
                Some((r.path.clone(), op))
            })
            .collect()
    }

    /// Nodes in the roots' new subtrees, counted up to `cap`.
    pub fn new_size(&self, cap: usize) -> usize {
        let mut total = 0;
        for r in self.roots.iter().filter(|r| !r.anchor) {
            if let Some(x) = raw::find_in(&self.new, &r.path) {
                // SAFETY: a node of the new tree, borrowed with `self`.
                total += unsafe { raw::count(x, cap) };
                if total >= cap {
                    break;
                }
            }
        }
        total
    }
}

/// [`roots_of`] as XML (explicit nodes only), without copying anything
/// when there is one root, a commit's usual case (at 10,000 new peers the
/// copy was ~13 MiB and half the time): the root's ancestors are written
/// as elements with their keys, the root's subtree printed where it is.
/// The text differs from printing [`roots_of`] only in namespace
/// declarations libyang reads the same.
pub fn print_roots(
    ctx: &'static Context,
    tree: &DataTree<'static>,
    roots: &[Root],
) -> Result<String, RpcError> {
    let mut real = roots.iter().filter(|r| !r.anchor);
    let (Some(root), None) = (real.next(), real.next()) else {
        return super::print_config(&roots_of(ctx, tree, roots)?);
    };
    use yang5::data::DataPrinterFlags as Print;
    let Some(node) = raw::find_in(tree, &root.path) else {
        return Ok(String::new());
    };
    // SAFETY: `node`, its ancestors and their keys are nodes of `tree`,
    // borrowed (and not changed) for the whole block.
    unsafe {
        let mut chain = Vec::new();
        let mut up = raw::parent(node);
        while !up.is_null() {
            chain.push(up);
            up = raw::parent(up);
        }
        chain.reverse();
        let mut out = String::new();
        let mut ns = String::new();
        for &a in &chain {
            let a_ns = raw::namespace(a);
            out.push('<');
            out.push_str(&raw::name(a));
            if a_ns != ns {
                let quoted = a_ns
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('"', "&quot;");
                out.push_str(&format!(" xmlns=\"{quoted}\""));
                ns = a_ns;
            }
            out.push('>');
            let mut k = raw::first_child(a);
            while !k.is_null() && raw::is_key(k) {
                out.push_str(&super::print_node_xml(k, Print::SHRINK)?);
                k = raw::next(k);
            }
        }
        out.push_str(&super::print_node_xml(
            node,
            Print::SHRINK | Print::WD_EXPLICIT,
        )?);
        for &a in chain.iter().rev() {
            out.push_str(&format!("</{}>", raw::name(a)));
        }
        Ok(out)
    }
}

/// The roots' subtrees as running holds them, with their ancestors (keys
/// only), flags kept so default nodes stay implicit: what a journal record
/// merges, and the new side of a commit's history entry.
pub fn roots_of(
    ctx: &'static Context,
    running: &DataTree<'static>,
    roots: &[Root],
) -> Result<DataTree<'static>, RpcError> {
    let mut out = DataTree::new(ctx);
    for r in roots.iter().filter(|r| !r.anchor) {
        let Some(node) = raw::find_in(running, &r.path) else {
            continue;
        };
        // SAFETY: a node of running, borrowed for the call.
        let copy = unsafe { raw::dup_with_parents(ctx, node) }
            .ok_or_else(|| RpcError::operation_failed("cannot copy a subtree of running"))?;
        // SAFETY: the closure only merges a tree of its own into `out`.
        if !unsafe { raw::with_root(ctx, &mut out, |first| raw::merge_into(first, copy)) } {
            return Err(RpcError::operation_failed(
                "cannot assemble the subtrees of running",
            ));
        }
    }
    Ok(out)
}
