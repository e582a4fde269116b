//! The few libyang tree operations yang5 does not offer, on raw nodes:
//! copying one subtree into a given parent with its flags kept (default
//! nodes stay default, validated nodes stay validated), a "shallow" copy of
//! a list entry (everything but its nested lists), and taking a tree's root
//! pointer out and back so a top-level node can be inserted or freed.
//!
//! Every function here works on trees owned by a `DataTree` of the agent's
//! context; pointers never outlive the call that obtained them.
//!
//! A `Node` is a bare pointer that carries no lifetime, so every function
//! given one is `unsafe`: its caller promises the node is *live*, that is
//! NULL where the function says so, or else a node of a tree of the
//! agent's context that nobody frees or restructures (unlinks, inserts,
//! frees nodes of) for the duration of the call other than the function
//! itself. A node reached from a `&DataTree` or a `DataNodeRef` borrowed
//! for the call is live; so is one the caller found in a tree it owns and
//! has not changed since. The few functions that take a `DataNodeRef`
//! (which borrows its tree) are safe.

// Inside this module's unsafe fns too, each unsafe operation sits in a
// block that says why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{CStr, CString};
use std::ptr;

use libyang5_sys as ffi;
use yang5::context::Context;
use yang5::data::{Data, DataNodeRef, DataTree};

pub type Node = *mut ffi::lyd_node;

/// A `DataTree` owning the sibling list that `raw` belongs to (empty for
/// NULL).
///
/// # Safety
/// `raw` is NULL or a top-level node of a tree of `ctx` that nothing else
/// owns any more (it came from `into_raw`, or was built here and is not
/// linked into another tree): the returned tree frees it on drop.
pub unsafe fn wrap(ctx: &'static Context, raw: Node) -> DataTree<'static> {
    if raw.is_null() {
        return DataTree::new(ctx);
    }
    // SAFETY: `raw` is a node of a tree nobody else owns any more (it came
    // from `into_raw` or was built here); the owning reference takes it over
    // and its `tree` frees it on drop.
    let owning = unsafe { yang5::data::DataTreeOwningRef::from_raw_node(ctx, raw) };
    std::mem::ManuallyDrop::into_inner(owning).tree
}

/// Runs `f` on the first top-level node of `tree`, which `f` may change
/// (insert before it, free it).
///
/// # Safety
/// `f` leaves `*first` NULL or the first top-level node of the tree it was
/// given (changed only through this module's functions), and does not let
/// any node of it escape into another owner.
pub unsafe fn with_root<R>(
    ctx: &'static Context,
    tree: &mut DataTree<'static>,
    f: impl FnOnce(&mut Node) -> R,
) -> R {
    let t = std::mem::replace(tree, DataTree::new(ctx));
    let mut raw = t.into_raw();
    let r = f(&mut raw);
    // SAFETY: the tree taken out of `tree` above, which `f` left whole
    // (this function's contract).
    *tree = unsafe { wrap(ctx, raw) };
    r
}

/// The node at instance path `path` (implicit nodes included), if any.
///
/// # Safety
/// `first` is NULL or a live node (see the module documentation).
pub unsafe fn find(first: Node, path: &str) -> Option<Node> {
    if first.is_null() {
        return None;
    }
    let c = CString::new(path).ok()?;
    let mut out: Node = ptr::null_mut();
    // SAFETY: `first` is live (this function's contract), `c` a
    // NUL-terminated path.
    let r = unsafe { ffi::lyd_find_path(first, c.as_ptr(), 0, &mut out) };
    (r == ffi::LY_ERR::LY_SUCCESS && !out.is_null()).then_some(out)
}

/// The node of the tree whose first top-level node is `first` that stands
/// where `node` (of another tree of the same context) stands: the same
/// schema nodes from the top, list entries with equal keys, leaf-list
/// entries with equal values. Matched by value with libyang's hashes, not
/// through a printed path: a key may hold any string, both quote
/// characters included, which no instance path can express.
///
/// # Safety
/// `first` and `node` are each NULL or a live node (see the module
/// documentation); their trees belong to one context.
pub unsafe fn find_twin(first: Node, node: Node) -> Option<Node> {
    if first.is_null() || node.is_null() {
        return None;
    }
    // SAFETY: `node` is live, and so are its ancestors and `first`'s tree
    // with the twins found in it (this function's contract).
    unsafe {
        let p = parent(node);
        let siblings = if p.is_null() {
            first
        } else {
            first_child(find_twin(first, p)?)
        };
        find_sibling_twin(siblings, node)
    }
}

/// Among `siblings` (any of them), the node that stands where `node` does
/// (see [`find_twin`]).
///
/// # Safety
/// As for [`find_twin`].
pub unsafe fn find_sibling_twin(siblings: Node, node: Node) -> Option<Node> {
    if siblings.is_null() || node.is_null() {
        return None;
    }
    let mut out: Node = ptr::null_mut();
    // List and leaf-list entries are matched by keys or value; a leaf or a
    // container by schema alone (lyd_find_sibling_first would compare a
    // leaf's value too).
    // SAFETY: `node` is live (this function's contract).
    let by_value = unsafe { nodetype(node) } & (ffi::LYS_LIST | ffi::LYS_LEAFLIST) != 0;
    // SAFETY: `siblings` and `node` are live nodes of trees of one context
    // (this function's contract), so their schema nodes are comparable.
    let r = unsafe {
        if by_value {
            ffi::lyd_find_sibling_first(siblings, node, &mut out)
        } else {
            ffi::lyd_find_sibling_val(siblings, schema_of(node), ptr::null(), 0, &mut out)
        }
    };
    (r == ffi::LY_ERR::LY_SUCCESS && !out.is_null()).then_some(out)
}

/// Whether `node` is in the configuration as a client sees it (basic mode
/// explicit): not a default leaf, and not a non-presence container that
/// holds only such leaves (validation creates those; get-config omits them).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn is_explicit(node: Node) -> bool {
    // SAFETY: `node` is live (this function's contract).
    let t = unsafe { nodetype(node) };
    if t & (ffi::LYS_LEAF | ffi::LYS_LEAFLIST) != 0 {
        // SAFETY: `node` is live (this function's contract).
        return unsafe { (*node).flags } & ffi::LYD_DEFAULT == 0;
    }
    // SAFETY: `node` is live; a container's schema node is valid while its
    // data node is.
    let np = t & ffi::LYS_CONTAINER != 0
        && unsafe { (*schema_of(node)).flags as u32 } & ffi::LYS_PRESENCE == 0;
    if !np {
        return true;
    }
    // SAFETY: `node` and its children are live (this function's contract).
    unsafe {
        let mut c = first_child(node);
        while !c.is_null() {
            if is_explicit(c) {
                return true;
            }
            c = next(c);
        }
    }
    false
}

/// A terminal node's canonical value (`None` for other nodes).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn canonical(node: Node) -> Option<String> {
    // SAFETY: `node` is live (this function's contract).
    if unsafe { nodetype(node) } & (ffi::LYS_LEAF | ffi::LYS_LEAFLIST) == 0 {
        return None;
    }
    // SAFETY: a live terminal node (`lyd_node_term`) of the agent's
    // context; libyang computes the canonical string if it is not cached
    // and keeps it in the node (NUL-terminated, valid while the node is).
    unsafe {
        let term = node as *mut ffi::lyd_node_term;
        let ctx = (*(*schema_of(node)).module).ctx;
        let p = ffi::lyd_value_get_canonical(ctx, &(*term).value);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// Makes libyang compute and keep every canonical value of `tree` (leaves,
/// leaf-lists, metadata). Some types (binary, IP addresses and prefixes,
/// unions of them) compute their canonical string on first use and store
/// it in the node: a write inside libyang's `const` getters, which printing
/// and XPath evaluation call. A tree read by several threads at once
/// (running's snapshot) gets them all while it still has one owner, so its
/// readers only read.
pub fn cache_canonical(tree: &DataTree<'static>) {
    for n in tree.traverse() {
        // SAFETY: a node of `tree`, borrowed for the call.
        let _ = unsafe { canonical(n.as_raw()) };
        for m in n.meta() {
            let _ = m.value();
        }
    }
}

/// Whether `node` is a list key leaf.
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn is_key(node: Node) -> bool {
    // SAFETY: `node` is live (this function's contract).
    let s = unsafe { schema_of(node) };
    // SAFETY: a compiled schema node of a live data node.
    !s.is_null() && unsafe { (*s).flags as u32 } & ffi::LYS_KEY != 0
}

/// The schema name of `node` (its element name in XML).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn name(node: Node) -> String {
    // SAFETY: `node` is live (this function's contract).
    let s = unsafe { schema_of(node) };
    if s.is_null() {
        return String::new();
    }
    // SAFETY: a compiled schema node of the agent's context; its name is
    // a NUL-terminated string of the context.
    unsafe { CStr::from_ptr((*s).name).to_string_lossy().into_owned() }
}

/// The XML namespace of `node`'s module.
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn namespace(node: Node) -> String {
    // SAFETY: `node` is live (this function's contract).
    let s = unsafe { schema_of(node) };
    if s.is_null() {
        return String::new();
    }
    // SAFETY: a compiled schema node of the agent's context and its module;
    // the namespace is a NUL-terminated string of the context.
    unsafe {
        let ns = (*(*s).module).ns;
        if ns.is_null() {
            return String::new();
        }
        CStr::from_ptr(ns).to_string_lossy().into_owned()
    }
}

/// Sets the value of a leaf (explicit afterwards, also if it held that
/// value as a default).
///
/// # Safety
/// `node` is a live leaf or leaf-list entry (see the module
/// documentation).
pub unsafe fn set_term(node: Node, value: &str) -> bool {
    let Ok(v) = CString::new(value) else {
        return false;
    };
    // SAFETY: `node` is a live leaf or leaf-list entry (this function's
    // contract), `v` a NUL-terminated string.
    let r = unsafe { ffi::lyd_change_term(node, v.as_ptr()) };
    matches!(
        r,
        ffi::LY_ERR::LY_SUCCESS | ffi::LY_ERR::LY_EEXIST | ffi::LY_ERR::LY_ENOT
    )
}

/// The instance path of `node` (`/m:a/b[k='1']`).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn path(node: Node) -> String {
    // SAFETY: `node` is live (this function's contract); lyd_path
    // allocates the string with malloc when given no buffer.
    unsafe {
        let p = ffi::lyd_path(node, ffi::LYD_PATH_TYPE::LYD_PATH_STD, ptr::null_mut(), 0);
        if p.is_null() {
            return String::new();
        }
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        libc::free(p as *mut libc::c_void);
        s
    }
}

/// `node`'s compiled schema node (NULL for an opaque node).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn schema_of(node: Node) -> *const ffi::lysc_node {
    // SAFETY: `node` is live (this function's contract).
    unsafe { (*node).schema }
}

/// `node`'s schema node type (`LYS_*`; 0 for an opaque node).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn nodetype(node: Node) -> u32 {
    // SAFETY: `node` is live (this function's contract).
    let s = unsafe { schema_of(node) };
    if s.is_null() {
        0
    } else {
        // SAFETY: the compiled schema node of a live data node.
        unsafe { (*s).nodetype as u32 }
    }
}

/// `node`'s parent (NULL for a top-level node).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn parent(node: Node) -> Node {
    // SAFETY: `node` is live (this function's contract).
    unsafe { (*node).parent }
}

/// `node`'s next sibling (NULL for the last).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn next(node: Node) -> Node {
    // SAFETY: `node` is live (this function's contract).
    unsafe { (*node).next }
}

/// First child of an inner node (NULL for terminals).
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn first_child(node: Node) -> Node {
    // SAFETY: `node` is live (this function's contract).
    if unsafe { nodetype(node) } & (ffi::LYS_CONTAINER | ffi::LYS_LIST) == 0 {
        return ptr::null_mut();
    }
    // SAFETY: `node` is live, and containers and lists are
    // `lyd_node_inner`.
    unsafe { (*(node as *mut ffi::lyd_node_inner)).child }
}

/// Copies `node` (with its subtree when `recursive`) as the last child of
/// `parent`, or as a new top-level sibling of `*first` when `parent` is NULL.
/// Flags are kept.
///
/// # Safety
/// `node` is a live node; `parent` is NULL or a live node of the target
/// tree, whose first top-level node is `*first` (NULL: empty), which the
/// caller may change (see the module documentation); one context.
pub unsafe fn dup_into(
    node: Node,
    parent: Node,
    first: &mut Node,
    recursive: bool,
) -> Option<Node> {
    let mut opts = ffi::LYD_DUP_WITH_FLAGS;
    if recursive {
        opts |= ffi::LYD_DUP_RECURSIVE;
    }
    // SAFETY: this function's contract is `dup_with`'s.
    unsafe { dup_with(node, parent, first, opts) }
}

/// Copies `node` alone (a list entry with its keys) as a new node — new
/// flags, no metadata (an edit's `nc:operation` stays behind) — into
/// `parent`, or as a top-level sibling of `*first`.
///
/// # Safety
/// As for [`dup_into`].
pub unsafe fn dup_new(node: Node, parent: Node, first: &mut Node) -> Option<Node> {
    // SAFETY: this function's contract is `dup_with`'s.
    unsafe { dup_with(node, parent, first, ffi::LYD_DUP_NO_META) }
}

/// # Safety
/// As for [`dup_into`].
unsafe fn dup_with(node: Node, parent: Node, first: &mut Node, opts: u32) -> Option<Node> {
    let mut dup: Node = ptr::null_mut();
    // SAFETY: live nodes of one context (this function's contract); with a
    // parent, libyang links the copy into it.
    let r = unsafe { ffi::lyd_dup_single(node, parent, opts, &mut dup) };
    if r != ffi::LY_ERR::LY_SUCCESS || dup.is_null() {
        return None;
    }
    if parent.is_null() {
        if first.is_null() {
            *first = dup;
        } else {
            // SAFETY: `*first` is the first top-level node of the target
            // tree, which the caller lets us change (this function's
            // contract); `dup` is a new, unlinked node of its context.
            let r = unsafe { ffi::lyd_insert_sibling(*first, dup, first) };
            if r != ffi::LY_ERR::LY_SUCCESS {
                // SAFETY: the copy is not linked anywhere.
                unsafe { ffi::lyd_free_tree(dup) };
                return None;
            }
        }
    }
    Some(dup)
}

/// Copies `node` without its nested lists: keys, leaves, leaf-lists and
/// containers (shallowly themselves). What constraints of an unchanged
/// ancestor or sibling entry need, without the entries below it.
///
/// # Safety
/// As for [`dup_into`].
pub unsafe fn dup_shallow(node: Node, parent: Node, first: &mut Node) -> Option<Node> {
    // SAFETY: this function's contract is `dup_into`'s. Below, `node`'s
    // children are live with it; `copy` is a live node of the target tree,
    // and a copy made under it is never a top-level node (so `unused`,
    // NULL, stands for no tree's first node).
    unsafe {
        let copy = dup_into(node, parent, first, false)?;
        let mut c = first_child(node);
        while !c.is_null() {
            let t = nodetype(c);
            let s = schema_of(c);
            let is_key = !s.is_null() && (*s).flags as u32 & ffi::LYS_KEY != 0;
            if t & ffi::LYS_LIST != 0 {
                // Nested lists are left out. Children come in schema order,
                // so once only lists can follow, the (possibly 10,000)
                // remaining entries need not be walked.
                if only_lists_after(s) {
                    break;
                }
            } else if is_key && t & ffi::LYS_LEAF != 0 {
                // keys came with the entry
            } else if t & ffi::LYS_CONTAINER != 0 {
                let mut unused = ptr::null_mut();
                dup_shallow(c, copy, &mut unused)?;
            } else {
                let mut unused = ptr::null_mut();
                dup_into(c, copy, &mut unused, true)?;
            }
            c = next(c);
        }
        Some(copy)
    }
}

/// Whether every schema sibling after `s` is a list (nothing but list
/// entries can follow an instance of `s`).
///
/// # Safety
/// `s` is a compiled schema node of a live context.
unsafe fn only_lists_after(s: *const ffi::lysc_node) -> bool {
    // SAFETY: compiled schema nodes of a live context.
    unsafe {
        let mut n = (*s).next as *const ffi::lysc_node;
        while !n.is_null() {
            if (*n).nodetype as u32 & ffi::LYS_LIST == 0 {
                return false;
            }
            n = (*n).next;
        }
    }
    true
}

/// Frees `node` and its subtree, keeping `*first` pointing at the tree.
///
/// # Safety
/// `node` is a live node of the tree whose first top-level node is
/// `*first` (see the module documentation), and no pointer into its
/// subtree is used afterwards.
pub unsafe fn free(node: Node, first: &mut Node) {
    // SAFETY: `node` is a live node of the tree whose first node is
    // `*first` (this function's contract); lyd_free_tree unlinks it first.
    unsafe {
        if node == *first {
            *first = next(node);
        }
        ffi::lyd_free_tree(node)
    };
}

/// Items of a libyang sized array (its count is stored just before it).
///
/// # Safety
/// `arr` is NULL or a libyang sized array of `T`.
pub unsafe fn sized_array<'a, T>(arr: *mut T) -> &'a [T] {
    if arr.is_null() {
        return &[];
    }
    // SAFETY: a libyang sized array (this function's contract) stores its
    // count in the 64-bit word before its first item.
    unsafe {
        let count = *(arr as *const u64).offset(-1) as usize;
        std::slice::from_raw_parts(arr, count)
    }
}

/// The canonical value of a terminal node, as the context's dictionary
/// pointer (equal values are the same pointer).
///
/// # Safety
/// `node` is a live leaf or leaf-list entry (see the module
/// documentation).
pub unsafe fn canonical_ptr(node: Node) -> *const std::os::raw::c_char {
    // SAFETY: `node` is a live leaf or leaf-list entry (this function's
    // contract), which are `lyd_node_term`.
    unsafe { (*(node as *mut ffi::lyd_node_term)).value._canonical }
}

/// The child of `parent` instance of schema node `schema` (a leaf). A
/// linear walk: list entries have a handful of children, for which it is
/// several times faster than libyang's hash lookup (this runs once per
/// sibling entry in the unique scan).
///
/// # Safety
/// `parent` is a live node (see the module documentation); `schema` is
/// only compared.
pub unsafe fn child_by_schema(parent: Node, schema: *const ffi::lysc_node) -> Option<Node> {
    // SAFETY: `parent` and so its children are live (this function's
    // contract).
    unsafe {
        let mut c = first_child(parent);
        while !c.is_null() {
            if schema_of(c) == schema {
                return Some(c);
            }
            c = next(c);
        }
    }
    None
}

/// The raw pointer of a tree's first top-level node (NULL when empty).
pub fn first_of(tree: &DataTree<'static>) -> Node {
    tree.raw()
}

/// Merges the tree `src` (consumed: its nodes are moved where the target
/// has no match) into the tree whose first node is `*first`, keeping flags
/// (default nodes stay default).
///
/// # Safety
/// `*first` is NULL or the first top-level node of a tree of `src`'s
/// context that the caller owns and may change (see the module
/// documentation).
pub unsafe fn merge_into(first: &mut Node, src: DataTree<'static>) -> bool {
    let src = src.into_raw();
    if src.is_null() {
        return true;
    }
    if first.is_null() {
        *first = src;
        return true;
    }
    // SAFETY: `*first` heads a tree the caller lets us change (this
    // function's contract) and `src` a tree of its own of one context;
    // DESTRUCT hands `src` over.
    let r = unsafe {
        ffi::lyd_merge_siblings(
            first,
            src,
            (ffi::LYD_MERGE_WITH_FLAGS | ffi::LYD_MERGE_DESTRUCT) as u16,
        )
    };
    r == ffi::LY_ERR::LY_SUCCESS
}

/// A copy of `node`'s subtree with its ancestors (keys only), flags kept, as
/// a tree of its own.
///
/// # Safety
/// `node` is a live node of a tree of `ctx` (see the module
/// documentation).
pub unsafe fn dup_with_parents(ctx: &'static Context, node: Node) -> Option<DataTree<'static>> {
    let mut dup: Node = ptr::null_mut();
    let opts = ffi::LYD_DUP_RECURSIVE | ffi::LYD_DUP_WITH_FLAGS | ffi::LYD_DUP_WITH_PARENTS;
    // SAFETY: `node` is live (this function's contract); the copy is a
    // new tree.
    let r = unsafe { ffi::lyd_dup_single(node, ptr::null_mut(), opts, &mut dup) };
    if r != ffi::LY_ERR::LY_SUCCESS || dup.is_null() {
        return None;
    }
    // SAFETY: the copy is a new tree of `ctx` that nothing else owns.
    Some(unsafe { wrap(ctx, dup) })
}

/// Unlinks `node` from its tree, keeping `*first` pointing at the tree.
///
/// # Safety
/// `node` is a live node of the tree whose first top-level node is
/// `*first`, which the caller owns and may change (see the module
/// documentation); the caller links or frees the unlinked subtree.
pub unsafe fn unlink(node: Node, first: &mut Node) {
    // SAFETY: `node` is a live node of the tree whose first node is
    // `*first` (this function's contract).
    unsafe {
        if node == *first {
            *first = next(node);
        }
        ffi::lyd_unlink_tree(node)
    };
}

/// Links the unlinked subtree `node` as a child of `parent`, or as a
/// top-level sibling of `*first` when `parent` is NULL.
///
/// # Safety
/// `node` is the top of a live, unlinked subtree; `parent` is NULL or a
/// live node of the tree whose first top-level node is `*first` (NULL:
/// empty), which the caller owns and may change (see the module
/// documentation); one context.
pub unsafe fn link(node: Node, parent: Node, first: &mut Node) -> bool {
    // SAFETY: `node` is unlinked; `parent`/`*first` belong to one live
    // tree of the same context that the caller lets us change (this
    // function's contract).
    let r = unsafe {
        if !parent.is_null() {
            ffi::lyd_insert_child(parent, node)
        } else if first.is_null() {
            *first = node;
            ffi::LY_ERR::LY_SUCCESS
        } else {
            ffi::lyd_insert_sibling(*first, node, first)
        }
    };
    r == ffi::LY_ERR::LY_SUCCESS
}

/// Counts the nodes of `node`'s subtree, stopping at `cap`.
///
/// # Safety
/// `node` is a live node (see the module documentation).
pub unsafe fn count(node: Node, cap: usize) -> usize {
    let mut n = 0;
    let mut stack = vec![node];
    while let Some(x) = stack.pop() {
        n += 1;
        if n >= cap {
            return n;
        }
        // SAFETY: `x` is `node` or one of its descendants, live with it
        // (this function's contract).
        unsafe {
            let mut c = first_child(x);
            while !c.is_null() {
                stack.push(c);
                c = next(c);
            }
        }
    }
    n
}

/// [`path`] of a node borrowed with its tree.
pub fn node_path(node: &DataNodeRef<'_>) -> String {
    // SAFETY: a `DataNodeRef` borrows its tree, which therefore stays
    // alive and unchanged for the call.
    unsafe { path(node.as_raw()) }
}

/// [`is_explicit`] of a node borrowed with its tree.
pub fn node_is_explicit(node: &DataNodeRef<'_>) -> bool {
    // SAFETY: a `DataNodeRef` borrows its tree, which therefore stays
    // alive and unchanged for the call.
    unsafe { is_explicit(node.as_raw()) }
}

/// [`find`] in a borrowed tree (the node is live while the borrow lasts).
pub fn find_in(tree: &DataTree<'static>, path: &str) -> Option<Node> {
    // SAFETY: the first top-level node of a borrowed tree (or NULL).
    unsafe { find(tree.raw(), path) }
}
