//! `unique` constraints at the cost of the change.
//!
//! To validate an edit in scope, libyang must see every running entry that
//! collides with a changed entry's `unique` values. Scanning the siblings
//! for them costs a pass over the list (4 ms at 10,000 peers, most of it
//! cache misses), so running's values are counted in an index, per list and
//! parent, built by one scan the first time a list is edited and kept up to
//! date by each scoped commit's changes. A scan then happens only when the
//! index shows a real collision (the edit is about to be refused).
//!
//! Values are dictionary pointers of canonical values: equal values share
//! one pointer in a libyang context, and a pointer stays valid while a
//! node holds the value. A whole-datastore commit clears the index.

use std::collections::HashMap;
use std::ptr;

use libyang5_sys as ffi;
use yang5::data::DataTree;
use yang5::schema::SchemaNode;

use super::raw::{self, Node};

/// The `unique` statements of a list, each as its leaves' schema nodes
/// (none for NULL or another kind of node).
///
/// # Safety
/// `list` is NULL or a compiled schema node of a live context.
pub unsafe fn uniques(list: *const ffi::lysc_node) -> Vec<Vec<*const ffi::lysc_node>> {
    // SAFETY: `list` is NULL or a compiled schema node (this function's
    // contract); a list's `uniques` is a sized array of sized arrays of
    // leaf pointers.
    unsafe {
        if list.is_null() || (*list).nodetype as u32 & ffi::LYS_LIST == 0 {
            return Vec::new();
        }
        let l = list as *const ffi::lysc_node_list;
        raw::sized_array((*l).uniques)
            .iter()
            .map(|u| {
                raw::sized_array(*u)
                    .iter()
                    .map(|leaf| *leaf as *const ffi::lysc_node)
                    .collect()
            })
            .collect()
    }
}

/// Whether every `unique` of the list names its own child leaves (the scope
/// copies entries shallowly, with their leaves).
pub fn uniques_direct(list: &SchemaNode<'_>) -> bool {
    let raw_list = list.as_raw() as *const ffi::lysc_node;
    // SAFETY: a compiled node of the context `list` borrows.
    unsafe { uniques(raw_list) }
        .iter()
        .flatten()
        // SAFETY: compiled leaf nodes of a live context.
        .all(|leaf| unsafe { (**leaf).parent as *const ffi::lysc_node } == raw_list)
}

/// Default values of leaves as dictionary pointers (what a default node's
/// canonical value points to), released on drop.
#[derive(Default)]
pub struct Defaults(HashMap<usize, *const std::os::raw::c_char>);

impl Defaults {
    /// # Safety
    /// `leaf` is a compiled leaf of a context that outlives `self` (drop
    /// releases the value through it).
    unsafe fn of(&mut self, leaf: *const ffi::lysc_node) -> Option<usize> {
        if let Some(p) = self.0.get(&(leaf as usize)) {
            return (!p.is_null()).then_some(*p as usize);
        }
        let mut canonical: *const std::os::raw::c_char = ptr::null();
        // SAFETY: a compiled leaf; libyang stores the default's canonical
        // form in the context dictionary (released in Drop).
        unsafe {
            let l = leaf as *const ffi::lysc_node_leaf;
            if !(*l).dflt.str_.is_null() {
                let r = ffi::lyd_value_validate_dflt(
                    leaf,
                    (*l).dflt.str_,
                    (*l).dflt.prefixes,
                    ptr::null(),
                    ptr::null_mut(),
                    &mut canonical,
                );
                if r != ffi::LY_ERR::LY_SUCCESS {
                    canonical = ptr::null();
                }
            }
        }
        self.0.insert(leaf as usize, canonical);
        (!canonical.is_null()).then_some(canonical as usize)
    }
}

impl Drop for Defaults {
    fn drop(&mut self) {
        for (leaf, p) in self.0.drain() {
            if !p.is_null() {
                // SAFETY: `p` came from lyd_value_validate_dflt on this leaf's
                // context.
                unsafe {
                    let ctx = (*(*(leaf as *const ffi::lysc_node)).module).ctx;
                    ffi::lydict_remove(ctx, p);
                }
            }
        }
    }
}

/// One `unique`'s values of an entry: (which unique of the list, the
/// canonical-value pointers of its leaves).
pub type Tuple = (u8, Vec<usize>);

/// `entry`'s values for unique number `u` (a missing leaf counts with its
/// default when `defaults` is given: the entry has not been validated yet);
/// `None` when one has no value (then the constraint does not apply).
///
/// # Safety
/// `entry` is a live node (see [`raw`]); `leaves` are compiled leaves of
/// its context, which outlives `defaults`.
pub unsafe fn tuple(
    entry: Node,
    u: usize,
    leaves: &[*const ffi::lysc_node],
    mut defaults: Option<&mut Defaults>,
) -> Option<Tuple> {
    let vals: Option<Vec<usize>> = leaves
        .iter()
        .map(|l| match raw::child_by_schema(entry, *l) {
            Some(c) => Some(raw::canonical_ptr(c) as usize),
            None => defaults.as_deref_mut().and_then(|d| d.of(*l)),
        })
        .collect();
    vals.map(|v| (u as u8, v))
}

/// Every tuple of one entry.
///
/// # Safety
/// `entry` is a live node (see [`raw`]) of a context that outlives
/// `defaults`.
pub unsafe fn tuples(entry: Node, defaults: Option<&mut Defaults>) -> Vec<Tuple> {
    let us = uniques(raw::schema_of(entry));
    let mut d = defaults;
    us.iter()
        .enumerate()
        .filter_map(|(i, u)| tuple(entry, i, u, d.as_deref_mut()))
        .collect()
}

/// (list schema, parent instance path; "" for a top-level list).
pub type GroupKey = (usize, String);

/// Running's unique values, counted per list and parent.
#[derive(Default)]
pub struct UniqueIndex {
    groups: HashMap<GroupKey, HashMap<Tuple, u32>>,
}

/// Changes to apply to the index once a commit is in.
pub type Delta = Vec<(GroupKey, Tuple, i32)>;

impl UniqueIndex {
    /// Forgets everything (running was replaced as a whole).
    pub fn clear(&mut self) {
        self.groups.clear();
    }

    /// How many entries of `list` under running's `rparent` (NULL: top
    /// level) have `t`; the group is counted on first use.
    ///
    /// # Safety
    /// `rparent` is NULL or a node of `running` (borrowed for the call).
    pub unsafe fn count(
        &mut self,
        running: &DataTree<'static>,
        list: *const ffi::lysc_node,
        ppath: &str,
        rparent: Node,
        t: &Tuple,
    ) -> u32 {
        let key = (list as usize, ppath.to_string());
        let group = self.groups.entry(key).or_insert_with(|| {
            let mut g: HashMap<Tuple, u32> = HashMap::new();
            let mut sib = if rparent.is_null() {
                raw::first_of(running)
            } else {
                raw::first_child(rparent)
            };
            while !sib.is_null() {
                if raw::schema_of(sib) == list {
                    for t in tuples(sib, None) {
                        *g.entry(t).or_default() += 1;
                    }
                }
                sib = raw::next(sib);
            }
            g
        });
        group.get(t).copied().unwrap_or(0)
    }

    /// Applies a committed change (only to groups already counted; others
    /// are counted from running when first needed).
    pub fn apply(&mut self, delta: Delta) {
        for (key, t, d) in delta {
            let Some(g) = self.groups.get_mut(&key) else {
                continue;
            };
            let c = g.entry(t.clone()).or_default();
            let n = i64::from(*c) + i64::from(d);
            if n <= 0 {
                g.remove(&t);
            } else {
                *c = n as u32;
            }
        }
    }
}

/// The entries with `unique` statements in a tree, by (list, parent path).
pub fn entries_by_group(tree: &DataTree<'static>) -> HashMap<GroupKey, Vec<Node>> {
    let mut parents: HashMap<usize, String> = HashMap::new();
    let mut out: HashMap<GroupKey, Vec<Node>> = HashMap::new();
    let mut stack = vec![raw::first_of(tree)];
    // SAFETY: every node walked is a node of `tree`, borrowed for the call.
    unsafe {
        while let Some(mut n) = stack.pop() {
            while !n.is_null() {
                let s = raw::schema_of(n);
                if raw::nodetype(n) & ffi::LYS_LIST != 0 && !uniques(s).is_empty() {
                    let p = raw::parent(n);
                    let ppath = if p.is_null() {
                        String::new()
                    } else {
                        parents
                            .entry(p as usize)
                            .or_insert_with(|| raw::path(p))
                            .clone()
                    };
                    out.entry((s as usize, ppath)).or_default().push(n);
                }
                let c = raw::first_child(n);
                if !c.is_null() {
                    stack.push(c);
                }
                n = raw::next(n);
            }
        }
    }
    out
}

/// The index change from `old` to `new` (a scope's trees, `new` validated),
/// for the groups `index` has counted (others are counted when needed).
pub fn delta(index: &UniqueIndex, old: &DataTree<'static>, new: &DataTree<'static>) -> Delta {
    let mut out = Delta::new();
    for (tree, sign) in [(old, -1), (new, 1)] {
        for (key, entries) in entries_by_group(tree) {
            if !index.groups.contains_key(&key) {
                continue;
            }
            for e in entries {
                // SAFETY: a node of `tree` (`old` or `new`), borrowed.
                for t in unsafe { tuples(e, None) } {
                    out.push((key.clone(), t, sign));
                }
            }
        }
    }
    out
}
