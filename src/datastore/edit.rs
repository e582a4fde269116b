//! edit-config semantics (RFC 6241 §7.2) on libyang trees.
//!
//! libyang parses the `<config>` payload, with `nc:operation` attributes as
//! metadata, into an edit tree; we walk that tree and apply each node to the
//! target by instance path (`find_path`/`new_path` use libyang's hash
//! lookups, so an edit costs in proportion to its own size, not to the size
//! of the datastore).

use yang5::data::{Data, DataNodeRef, DataTree};
use yang5::schema::SchemaNodeKind;

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
        Ok(n) => explicit(&n),
        Err(_) => false,
    }
}

fn explicit(n: &DataNodeRef<'_>) -> bool {
    let s = n.schema();
    match s.kind() {
        SchemaNodeKind::Leaf | SchemaNodeKind::LeafList => !n.is_default(),
        SchemaNodeKind::Container if s.is_np_container() => n.children().any(|c| explicit(&c)),
        _ => true,
    }
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
    let path = node.path();
    let present = exists(target, &path);
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
            if present {
                target
                    .remove(&path)
                    .map_err(|e| libyang_error(schema, &e))?;
            }
            return Ok(());
        }
        EditOp::Replace if present => {
            target
                .remove(&path)
                .map_err(|e| libyang_error(schema, &e))?;
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
        let copy = super::raw::dup_with_parents(schema.ctx, node.as_raw())
            .ok_or_else(|| RpcError::operation_failed("cannot copy the edit"))?;
        // The copy is moved into the target, not copied a second time.
        let ok = super::raw::with_root(schema.ctx, target, |first| {
            super::raw::merge_into(first, copy)
        });
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
        if target.find_path(&path).is_err() {
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
    if is_leaf {
        if op != EditOp::None {
            let value = node.value_canonical();
            let value = if kind == SchemaNodeKind::LeafList {
                None // the value is in the path predicate
            } else {
                value
            };
            target
                .new_path(&path, value.as_deref(), false)
                .map_err(|e| libyang_error(schema, &e))?;
        }
        return Ok(());
    }
    if op != EditOp::None {
        target
            .new_path(&path, None, false)
            .map_err(|e| libyang_error(schema, &e))?;
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
