//! edit-config semantics (RFC 6241 §7.2) on libyang trees.
//!
//! libyang parses the `<config>` payload, with `nc:operation` attributes as
//! metadata, into an edit tree; we walk that tree and apply each node to the
//! target by instance path (`find_path`/`new_path` use libyang's hash
//! lookups, so an edit costs in proportion to its own size, not to the size
//! of the datastore).

use yang5::data::{Data, DataNodeRef, DataTree};
use yang5::schema::SchemaNodeKind;

use super::raw;
use super::yang_error::{json_path_to_error_path, libyang_error};
use super::ValuelessDelete;
use crate::protocol::error::RpcError;
use crate::protocol::rpc::EditOp;
use crate::schema::Schema;

/// Applies `edit` to `target`. On error `target` may be half-edited: callers
/// edit a copy, so every error-option acts as rollback-on-error.
pub fn apply(
    schema: &Schema,
    target: &mut DataTree<'static>,
    edit: &DataTree<'static>,
    valueless: &[ValuelessDelete],
    default_op: EditOp,
) -> Result<(), RpcError> {
    for v in valueless {
        let present = exists(target, &v.path);
        if v.op == EditOp::Delete && !present {
            return Err(RpcError::app(
                "data-missing",
                format!(
                    "{} does not exist, so it cannot be deleted",
                    describe(&v.path)
                ),
            )
            .with_path(json_path_to_error_path(schema, &v.path))
            .bad_element(v.name.clone()));
        }
        if present {
            target
                .remove(&v.path)
                .map_err(|e| libyang_error(schema, &e))?;
        }
    }
    let Some(first) = edit.reference() else {
        return Ok(());
    };
    for node in first.inclusive_siblings() {
        apply_node(schema, target, &node, default_op)?;
    }
    Ok(())
}

pub(crate) fn op_of(node: &DataNodeRef<'_>, inherited: EditOp) -> Result<EditOp, RpcError> {
    for m in node.meta() {
        if m.name() == "operation" {
            return EditOp::parse(m.value()).ok_or_else(|| {
                RpcError::protocol(
                    "bad-attribute",
                    format!("unknown operation '{}'", m.value()),
                )
                .with_info("bad-attribute", "operation")
                .bad_element(node.schema().name().to_string())
            });
        }
    }
    Ok(inherited)
}

/// A node that exists only as an implicit default counts as absent for
/// create and delete (RFC 6243 §4.5.2 semantics for basic-mode explicit).
///
/// libyang's `is_default` is false for every container, but a non-presence
/// container that holds only defaults (as validation creates them) is just
/// as implicit: it is absent from get-config, so `create` on it must work
/// and `delete` on it must report data-missing.
pub(crate) fn exists(target: &DataTree<'static>, path: &str) -> bool {
    match target.find_path(path) {
        Ok(n) => raw::node_is_explicit(&n),
        Err(_) => false,
    }
}

/// [`exists`] for the node of `target` where `node` (of an edit) stands,
/// found by value rather than by path (see [`raw::find_twin`]).
pub(crate) fn exists_node(target: &DataTree<'static>, node: &DataNodeRef<'_>) -> bool {
    // SAFETY: `target` and `node`'s tree are borrowed for the call; the
    // twin is a node of `target`.
    unsafe {
        raw::find_twin(raw::first_of(target), node.as_raw()).is_some_and(|t| raw::is_explicit(t))
    }
}

/// Removes `twin` (a node of `target`) with its subtree.
///
/// # Safety
/// `twin` is a node of `target`, found since `target` last changed.
unsafe fn remove(schema: &Schema, target: &mut DataTree<'static>, twin: raw::Node) {
    raw::with_root(schema.ctx, target, |first| raw::free(twin, first));
}

/// Creates `node` (alone: a list entry with its keys) in `target`, under
/// the node where its parent stands.
///
/// # Safety
/// `node` is a live node (see [`raw`]) of a tree other than `target`.
unsafe fn insert_new(schema: &Schema, target: &mut DataTree<'static>, node: raw::Node) -> bool {
    let p = raw::parent(node);
    raw::with_root(schema.ctx, target, |first| {
        let parent = if p.is_null() {
            std::ptr::null_mut()
        } else {
            match raw::find_twin(*first, p) {
                Some(x) => x,
                None => return false,
            }
        };
        raw::dup_new(node, parent, first).is_some()
    })
}

fn apply_node(
    schema: &Schema,
    target: &mut DataTree<'static>,
    node: &DataNodeRef<'_>,
    inherited: EditOp,
) -> Result<(), RpcError> {
    let snode = node.schema();
    let op = op_of(node, inherited)?;
    let kind = snode.kind();
    if snode.is_list_key() {
        // Keys are part of the list entry's path; an operation on a key
        // alone is meaningless except the entry's own.
        if op != inherited && matches!(op, EditOp::Delete | EditOp::Remove | EditOp::Create) {
            return Err(RpcError::protocol(
                "bad-attribute",
                "an operation on a list key is not allowed; operate on the list entry",
            )
            .with_info("bad-attribute", "operation")
            .bad_element(snode.name().to_string()));
        }
        return Ok(());
    }
    // For messages only: nodes are found by value (a key may hold what no
    // path can express).
    let path = raw::node_path(node);
    // SAFETY: `target` and `node`'s tree are borrowed for the call.
    let mut twin = unsafe { raw::find_twin(raw::first_of(target), node.as_raw()) };
    // SAFETY: the twin was found in `target` just now.
    let present = twin.is_some_and(|t| unsafe { raw::is_explicit(t) });
    let is_leaf = matches!(kind, SchemaNodeKind::Leaf | SchemaNodeKind::LeafList);
    match op {
        EditOp::Create if present => {
            return Err(
                RpcError::app("data-exists", format!("{} already exists", describe(&path)))
                    .with_path(json_path_to_error_path(schema, &path))
                    .bad_element(snode.name().to_string()),
            )
        }
        EditOp::Delete if !present => {
            return Err(RpcError::app(
                "data-missing",
                format!(
                    "{} does not exist, so it cannot be deleted",
                    describe(&path)
                ),
            )
            .with_path(json_path_to_error_path(schema, &path))
            .bad_element(snode.name().to_string()))
        }
        EditOp::Delete | EditOp::Remove => {
            if let (true, Some(t)) = (present, twin) {
                // SAFETY: found in `target`, unchanged since.
                unsafe { remove(schema, target, t) };
            }
            return Ok(());
        }
        EditOp::Replace if present => {
            if let Some(t) = twin.take() {
                // SAFETY: found in `target`, unchanged since.
                unsafe { remove(schema, target, t) };
            }
        }
        _ => {}
    }
    // Bulk fast path: a whole subtree that is not in the target (or was just
    // removed by replace) and carries no attributes anywhere below it is
    // copied in with one libyang merge, instead of a path lookup and insert
    // per node. Its parents exist already (created or checked above us).
    let fresh = !present || op == EditOp::Replace;
    if !is_leaf
        && fresh
        && matches!(op, EditOp::Merge | EditOp::Create | EditOp::Replace)
        && !has_attributes(node)
    {
        // SAFETY: `node`'s tree is borrowed for the call.
        let copy = unsafe { raw::dup_with_parents(schema.ctx, node.as_raw()) }
            .ok_or_else(|| RpcError::operation_failed("cannot copy the edit"))?;
        // The copy is moved into the target, not copied a second time.
        // SAFETY: the closure only merges a tree of its own into `target`.
        let ok =
            unsafe { raw::with_root(schema.ctx, target, |first| raw::merge_into(first, copy)) };
        if !ok {
            return Err(RpcError::operation_failed("cannot merge the edit"));
        }
        return Ok(());
    }
    if op == EditOp::None {
        // RFC 6241 §7.2, default-operation none: "If the configuration in
        // the <config> parameter contains data for which there is not a
        // corresponding level in the target datastore, an <rpc-error> is
        // returned with an <error-tag> value of data-missing." Implicit
        // nodes (defaults, non-presence containers) are levels that exist.
        if twin.is_none() {
            return Err(RpcError::app(
                "data-missing",
                format!(
                    "{} does not exist (default-operation none creates nothing)",
                    describe(&path)
                ),
            )
            .with_path(json_path_to_error_path(schema, &path))
            .bad_element(snode.name().to_string()));
        }
        if !present {
            // Descend so that deeper explicit operations take effect.
            for child in node.children() {
                apply_node(schema, target, &child, op)?;
            }
            return Ok(());
        }
    }
    let cannot = || RpcError::operation_failed(format!("cannot set {}", describe(&path)));
    if is_leaf {
        if op != EditOp::None {
            let ok = match twin {
                // An existing leaf (or a default one) takes the value; a
                // leaf-list entry is its value.
                // SAFETY: the twin is a node of `target` as found above
                // (a removed one was taken out of `twin`).
                Some(t) => unsafe { raw::set_term(t, &node.value_canonical().unwrap_or_default()) },
                // SAFETY: `node`'s tree (the edit) is borrowed for the call.
                None => unsafe { insert_new(schema, target, node.as_raw()) },
            };
            if !ok {
                return Err(cannot());
            }
        }
        return Ok(());
    }
    // SAFETY: `node`'s tree (the edit) is borrowed for the call.
    if op != EditOp::None && twin.is_none() && !unsafe { insert_new(schema, target, node.as_raw()) }
    {
        return Err(cannot());
    }
    // Children of a replaced or created node inherit that operation; the
    // node is fresh, so they are simply created.
    for child in node.children() {
        apply_node(schema, target, &child, op)?;
    }
    Ok(())
}

/// `/m:a/b[k='1']/c` → `c (in /m:a/b[k='1'])`-like text for messages.
fn describe(path: &str) -> String {
    path.to_string()
}

/// Whether `node` or a descendant carries metadata from the request (an
/// `nc:operation`, a with-defaults tag...). libyang's own bookkeeping
/// metadata (`lyds_tree`, on sorted lists) does not count.
fn has_attributes(node: &DataNodeRef<'_>) -> bool {
    node.traverse()
        .any(|n| n.meta().any(|m| m.name() != "lyds_tree"))
}
