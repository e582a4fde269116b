//! Data node access (RFC 8341 §3.4.5) over whole trees: what a user may
//! read of a tree (the rest is cut out before any filter runs, so that a
//! filter cannot reveal what it matched, §3.2.4), and whether an edit or a
//! change (a diff) needs only write access the user holds.

use libyang5_sys as ffi;
use yang5::data::{Data, DataDiff, DataDiffOp, DataNodeRef, DataTree};

use super::rules::ops;
use super::{PathState, View};
use crate::datastore::raw::{self, Node};
use crate::datastore::yang_error::json_path_to_error_path;
use crate::datastore::{edit, ValuelessDelete};
use crate::protocol::error::RpcError;
use crate::protocol::rpc::EditOp;
use crate::schema::Schema;

impl View<'_> {
    /// Removes from `tree` every node the user may not read, with its
    /// subtree; a list entry whose key may not be read goes whole.
    pub fn prune(&self, schema: &Schema, tree: &mut DataTree<'static>) {
        if self.unrestricted {
            return;
        }
        let root = self.root_state();
        // SAFETY: the closure walks `tree`'s top-level nodes, taking each
        // one's successor before it may free it with `raw::free`.
        unsafe {
            raw::with_root(schema.ctx, tree, |first| {
                let mut n = *first;
                while !n.is_null() {
                    let next = raw::next(n);
                    if !self.prune_node(n, &root, 0) {
                        raw::free(n, first);
                    }
                    n = next;
                }
            })
        };
    }

    /// Prunes below `node`; `false`: `node` itself must go.
    ///
    /// # Safety
    /// `node` is a live node (see [`raw`]) of a tree the caller owns and
    /// may change (its subtree is pruned).
    unsafe fn prune_node(&self, node: Node, parent: &PathState, depth: usize) -> bool {
        let state = self.child_state(parent, depth, node);
        if !self.data(node, &state, ops::READ) {
            return false;
        }
        let mut c = raw::first_child(node);
        let mut unused = std::ptr::null_mut();
        while !c.is_null() {
            let next = raw::next(c);
            if !self.prune_node(c, &state, depth + 1) {
                if raw::is_key(c) {
                    return false;
                }
                // Not a top-level node: `unused` is never its first.
                raw::free(c, &mut unused);
            }
            c = next;
        }
        true
    }

    /// Whether the user may read every node of `tree`.
    pub fn reads_all(&self, tree: &DataTree<'static>) -> bool {
        if self.unrestricted {
            return true;
        }
        let root = self.root_state();
        let mut n = raw::first_of(tree);
        while !n.is_null() {
            // SAFETY: top-level nodes of `tree`, borrowed for the call.
            unsafe {
                if !self.all(n, &root, 0, ops::READ) {
                    return false;
                }
                n = raw::next(n);
            }
        }
        true
    }

    /// # Safety
    /// `node` is a live node (see [`raw`]).
    unsafe fn all(&self, node: Node, parent: &PathState, depth: usize, access: u8) -> bool {
        let state = self.child_state(parent, depth, node);
        if !self.data(node, &state, access) {
            return false;
        }
        let mut c = raw::first_child(node);
        while !c.is_null() {
            if !self.all(c, &state, depth + 1, access) {
                return false;
            }
            c = raw::next(c);
        }
        true
    }

    /// `access` to `node` and every node below it.
    ///
    /// # Safety
    /// `node` is a live node (see [`raw`]).
    unsafe fn subtree(&self, schema: &Schema, node: Node, access: u8) -> Result<(), RpcError> {
        let state = self.state_of(node);
        self.subtree_from(schema, node, &state, access)
    }

    /// # Safety
    /// `node` is a live node (see [`raw`]).
    unsafe fn subtree_from(
        &self,
        schema: &Schema,
        node: Node,
        state: &PathState,
        access: u8,
    ) -> Result<(), RpcError> {
        self.one(schema, node, state, access)?;
        let depth = depth_of(node);
        let mut c = raw::first_child(node);
        while !c.is_null() {
            let s = self.child_state(state, depth + 1, c);
            self.subtree_from(schema, c, &s, access)?;
            c = raw::next(c);
        }
        Ok(())
    }

    /// # Safety
    /// `node` is a live node (see [`raw`]).
    unsafe fn one(
        &self,
        schema: &Schema,
        node: Node,
        state: &PathState,
        access: u8,
    ) -> Result<(), RpcError> {
        if self.data(node, state, access) {
            return Ok(());
        }
        self.nacm.denied_data_write();
        let path = raw::path(node);
        let what = match access {
            ops::CREATE => "create",
            ops::DELETE => "delete",
            _ => "update",
        };
        Err(
            RpcError::app("access-denied", format!("{what} access to {path} denied"))
                .with_path(json_path_to_error_path(schema, &path)),
        )
    }

    /// Whether the user may make the change `diff` describes (a commit's
    /// candidate against running, §3.2.8; a copy-config's target).
    pub fn check_diff(&self, schema: &Schema, diff: &DataDiff<'static>) -> Result<(), RpcError> {
        if self.unrestricted {
            return Ok(());
        }
        for (op, n) in diff.iter() {
            let node = n.as_raw();
            // SAFETY: `node` is a node of `diff`, borrowed for the call.
            unsafe {
                match op {
                    DataDiffOp::Create => self.subtree(schema, node, ops::CREATE)?,
                    DataDiffOp::Delete => self.subtree(schema, node, ops::DELETE)?,
                    DataDiffOp::Replace => {
                        let state = self.state_of(node);
                        self.one(schema, node, &state, ops::UPDATE)?
                    }
                }
            }
        }
        Ok(())
    }

    /// Delete access to every node of `tree` (delete-config).
    pub fn check_delete_all(
        &self,
        schema: &Schema,
        tree: &DataTree<'static>,
    ) -> Result<(), RpcError> {
        if self.unrestricted {
            return Ok(());
        }
        let mut n = raw::first_of(tree);
        while !n.is_null() {
            // SAFETY: top-level nodes of `tree`, borrowed for the call.
            unsafe {
                self.subtree(schema, n, ops::DELETE)?;
                n = raw::next(n);
            }
        }
        Ok(())
    }

    /// Whether the user may apply `edit` to `target` (edit-config, §3.4.5):
    /// create for what it creates, update for what it changes, delete for
    /// what it deletes or replaces away. Mirrors `datastore::edit::apply`.
    pub fn check_edit(
        &self,
        schema: &Schema,
        target: &DataTree<'static>,
        edit_tree: &DataTree<'static>,
        valueless: &[ValuelessDelete],
        default_op: EditOp,
    ) -> Result<(), RpcError> {
        if self.unrestricted {
            return Ok(());
        }
        for v in valueless {
            if let Ok(n) = target.find_path(&v.path) {
                // SAFETY: a node of `target`, borrowed for the call.
                unsafe { self.subtree(schema, n.as_raw(), ops::DELETE) }?;
            }
        }
        let root = self.root_state();
        let Some(first) = edit_tree.reference() else {
            return Ok(());
        };
        for node in first.inclusive_siblings() {
            self.edit_node(schema, target, &node, &root, 0, default_op)?;
        }
        Ok(())
    }

    fn edit_node(
        &self,
        schema: &Schema,
        target: &DataTree<'static>,
        node: &DataNodeRef<'_>,
        parent: &PathState,
        depth: usize,
        inherited: EditOp,
    ) -> Result<(), RpcError> {
        let raw_node = node.as_raw();
        // SAFETY: here and in the blocks below, `raw_node` (a node of the
        // edit) and the twin (a node of `target`) are nodes of trees
        // borrowed for the call, as are the nodes reached from them.
        if unsafe { raw::is_key(raw_node) } {
            return Ok(());
        }
        // SAFETY: see above.
        let state = unsafe { self.child_state(parent, depth, raw_node) };
        // A bad operation is refused by the edit itself.
        let op = edit::op_of(node, inherited).unwrap_or(inherited);
        // SAFETY: see above.
        let twin = unsafe { raw::find_twin(raw::first_of(target), raw_node) };
        // SAFETY: see above.
        let present = twin.is_some_and(|t| unsafe { raw::is_explicit(t) });
        // SAFETY: see above.
        unsafe {
            match (op, twin) {
                (EditOp::Delete | EditOp::Remove, Some(t)) if present => {
                    self.subtree_from(schema, t, &state, ops::DELETE)
                }
                (EditOp::Delete | EditOp::Remove, _) => Ok(()),
                (EditOp::Create | EditOp::Merge | EditOp::Replace, _) if !present => {
                    self.subtree_from(schema, raw_node, &state, ops::CREATE)
                }
                (EditOp::Replace, Some(t)) => {
                    // What the replacement drops is deleted.
                    let mut c = raw::first_child(t);
                    while !c.is_null() {
                        if !raw::is_key(c)
                            && raw::find_sibling_twin(raw::first_child(raw_node), c).is_none()
                        {
                            let s = self.child_state(&state, depth + 1, c);
                            self.subtree_from(schema, c, &s, ops::DELETE)?;
                        }
                        c = raw::next(c);
                    }
                    self.changed(schema, target, node, t, &state, depth, op)
                }
                (_, Some(t)) => self.changed(schema, target, node, t, &state, depth, op),
                (_, None) => {
                    // default-operation none on a missing level: descend.
                    for c in node.children() {
                        self.edit_node(schema, target, &c, &state, depth + 1, op)?;
                    }
                    Ok(())
                }
            }
        }
    }

    /// An existing node the edit merges into: update for a changed value,
    /// then its children.
    ///
    /// # Safety
    /// `twin` is a live node (see [`raw`]) of `target`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn changed(
        &self,
        schema: &Schema,
        target: &DataTree<'static>,
        node: &DataNodeRef<'_>,
        twin: Node,
        state: &PathState,
        depth: usize,
        op: EditOp,
    ) -> Result<(), RpcError> {
        let raw_node = node.as_raw();
        if raw::nodetype(raw_node) & (ffi::LYS_LEAF | ffi::LYS_LEAFLIST) != 0 {
            if op != EditOp::None && raw::canonical(raw_node) != raw::canonical(twin) {
                self.one(schema, twin, state, ops::UPDATE)?;
            }
            return Ok(());
        }
        for c in node.children() {
            self.edit_node(schema, target, &c, state, depth + 1, op)?;
        }
        Ok(())
    }
}

/// # Safety
/// `node` is a live node (see [`raw`]).
unsafe fn depth_of(node: Node) -> usize {
    let mut d = 0;
    let mut n = raw::parent(node);
    while !n.is_null() {
        d += 1;
        n = raw::parent(n);
    }
    d
}
