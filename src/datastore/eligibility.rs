//! Which modules' edits may take the scoped commit path ([`super::scope`]).
//!
//! A scoped commit validates only the subtrees an edit touches (plus their
//! ancestors, shallow). That is sound for a top-level module only when
//! nothing outside those subtrees can make the change valid or invalid.
//! Deciding that module by module, from its own statements, misses what
//! *other* modules attach to it: an augment carrying a `must` that reads
//! another module, a leafref into it, a deviation adding a `must`, a `when`
//! on a uses or a case, a submodule's statements. So the rule is decided on
//! the whole compiled context, where libyang has already put every augment,
//! deviation, uses and submodule statement onto the nodes they apply to:
//!
//! - for every XPath expression on a configuration node (must, when —
//!   including those compiled onto cases and choices — and leafref paths,
//!   also inside unions), libyang's atoms of the expression are the nodes
//!   it can read; the top-level module of each atom and of the node
//!   carrying the expression take the whole-datastore path;
//! - a required `instance-identifier` may point anywhere: then no module
//!   is scoped, nor when libyang cannot atomize an expression (when unsure,
//!   the whole-datastore path is always right);
//! - in a module's own data tree (augmented nodes included): no choice
//!   (a case deletes nodes outside the roots), min/max-elements (they count
//!   entries the scope leaves out), user-ordered lists (the swap would lose
//!   the order), `unique` only on direct leaves (entries are copied
//!   shallowly).
//!
//! "Module" means the top-level module of a data node, as
//! [`super::scope::root_modules`] names the roots. The set is computed once
//! per context (`Schema::load`); the agent never changes its modules at
//! runtime.

use std::collections::HashSet;
use std::ffi::CStr;
use std::ptr;

use libyang5_sys as ffi;
use yang5::context::Context;
use yang5::schema::{SchemaNode, SchemaNodeKind};

use super::raw;
use super::unique;

/// Why no module at all may take the scoped path.
#[derive(Debug, thiserror::Error)]
enum Unsound {
    #[error("{0} is a required instance-identifier (it may point anywhere)")]
    InstanceIdentifier(String),
    #[error("libyang cannot tell which nodes the XPath on {0} reads")]
    Atoms(String),
}

/// Modules whose configuration edits may be validated and committed in
/// scope (see the module documentation).
pub fn eligible_modules(ctx: &Context) -> HashSet<String> {
    let implemented = ctx
        .modules(false)
        .filter(|m| m.is_implemented())
        .map(|m| m.name().to_string());
    match ineligible(ctx) {
        Ok(bad) => implemented.filter(|m| !bad.contains(m)).collect(),
        Err(why) => {
            tracing::info!("no module is committed in scope: {why}");
            HashSet::new()
        }
    }
}

/// The top-level modules that must take the whole-datastore path.
fn ineligible(ctx: &Context) -> Result<HashSet<String>, Unsound> {
    let mut bad = HashSet::new();
    for m in ctx.modules(false).filter(|m| m.is_implemented()) {
        // Augmented nodes are in the target module's compiled tree, so this
        // walk sees them under the module whose roots they belong to.
        for top in m.data() {
            for n in top.traverse() {
                // Running holds configuration only: constraints of state
                // nodes are never evaluated on it.
                if !n.is_config() {
                    continue;
                }
                if !shape_scopable(&n) {
                    bad.insert(m.name().to_string());
                }
                // SAFETY: `n` is a compiled node of `ctx`, alive for this
                // call; libyang's compiled structures are not changed by it.
                let read = unsafe { xpath_reads(n.as_raw()) }?;
                if !read.is_empty() {
                    bad.insert(m.name().to_string());
                    bad.extend(read);
                }
            }
        }
    }
    Ok(bad)
}

/// No choice, min/max-elements, user-ordered list or nested `unique`.
fn shape_scopable(n: &SchemaNode<'_>) -> bool {
    match n.kind() {
        SchemaNodeKind::Choice => false,
        SchemaNodeKind::List | SchemaNodeKind::LeafList => {
            n.min_elements().unwrap_or(0) == 0
                && n.max_elements().is_none()
                && !n.is_user_ordered()
                && (n.kind() != SchemaNodeKind::List || unique::uniques_direct(n))
        }
        _ => true,
    }
}

/// The top-level modules the XPath constraints on `n` can read (its musts,
/// whens, leafref paths), empty when it has none.
///
/// # Safety
/// `n` is a compiled schema node of a live context.
unsafe fn xpath_reads(n: *const ffi::lysc_node) -> Result<HashSet<String>, Unsound> {
    let mut out = HashSet::new();
    let cur_mod = (*n).module;
    for must in raw::sized_array(ffi::lysc_node_musts(n)) {
        atoms(n, cur_mod, must.cond, must.prefixes, n, &mut out)?;
    }
    for when in raw::sized_array(ffi::lysc_node_when(n)) {
        // A when is evaluated from its context node (NULL: the root), in
        // the module of the node it conditions (validation.c does the same).
        let w = &**when;
        atoms(w.context, cur_mod, w.cond, w.prefixes, n, &mut out)?;
    }
    if (*n).nodetype as u32 & (ffi::LYS_LEAF | ffi::LYS_LEAFLIST) != 0 {
        // Leaves and leaf-lists share the layout up to `type_`.
        let t = (*(n as *const ffi::lysc_node_leaf)).type_;
        type_reads(n, t, &mut out)?;
    }
    if !out.is_empty() {
        out.insert(module_name(top_module(n)));
    }
    Ok(out)
}

/// Leafref paths of `t` (a union's members included); a required
/// instance-identifier makes the whole context unsound for scoping.
///
/// # Safety
/// `n` is a compiled leaf or leaf-list of a live context, `t` its type or
/// one of its union's members (or NULL).
unsafe fn type_reads(
    n: *const ffi::lysc_node,
    t: *const ffi::lysc_type,
    out: &mut HashSet<String>,
) -> Result<(), Unsound> {
    if t.is_null() {
        return Ok(());
    }
    match (*t).basetype {
        ffi::LY_DATA_TYPE::LY_TYPE_LEAFREF => {
            let l = &*(t as *const ffi::lysc_type_leafref);
            atoms(n, (*n).module, l.path, l.prefixes, n, out)
        }
        ffi::LY_DATA_TYPE::LY_TYPE_INST => {
            let i = &*(t as *const ffi::lysc_type_instanceid);
            if i.require_instance != 0 {
                return Err(Unsound::InstanceIdentifier(node_path(n)));
            }
            Ok(())
        }
        ffi::LY_DATA_TYPE::LY_TYPE_UNION => {
            let u = &*(t as *const ffi::lysc_type_union);
            for m in raw::sized_array(u.types) {
                type_reads(n, *m, out)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Adds the top-level module of every atom of `expr` to `out`.
///
/// # Safety
/// `ctx_node` (NULL: the root), `cur_mod`, `expr` and `prefixes` belong to
/// the compiled node `carrier` of a live context.
unsafe fn atoms(
    ctx_node: *const ffi::lysc_node,
    cur_mod: *const ffi::lys_module,
    expr: *const ffi::lyxp_expr,
    prefixes: *const ffi::lysc_prefix,
    carrier: *const ffi::lysc_node,
    out: &mut HashSet<String>,
) -> Result<(), Unsound> {
    let mut set: *mut ffi::ly_set = ptr::null_mut();
    let r = ffi::lys_find_expr_atoms(
        ctx_node,
        cur_mod,
        expr,
        prefixes,
        ffi::LYS_FIND_XP_SCHEMA,
        &mut set,
    );
    if r != ffi::LY_ERR::LY_SUCCESS || set.is_null() {
        if !set.is_null() {
            ffi::ly_set_free(set, None);
        }
        return Err(Unsound::Atoms(node_path(carrier)));
    }
    let s = &*set;
    if s.count > 0 {
        let nodes = std::slice::from_raw_parts(s.__bindgen_anon_1.snodes, s.count as usize);
        for a in nodes {
            out.insert(module_name(top_module(*a)));
        }
    }
    // Only the set is ours; its schema nodes belong to the context.
    ffi::ly_set_free(set, None);
    // The carrier is constrained even by an expression reading nothing
    // (`must "false()"`).
    out.insert(module_name(top_module(carrier)));
    Ok(())
}

/// The module of the top-level schema node above `n`.
///
/// # Safety
/// `n` is a compiled schema node of a live context.
unsafe fn top_module(mut n: *const ffi::lysc_node) -> *const ffi::lys_module {
    while !(*n).parent.is_null() {
        n = (*n).parent;
    }
    (*n).module
}

/// # Safety
/// `m` is a module of a live context.
unsafe fn module_name(m: *const ffi::lys_module) -> String {
    CStr::from_ptr((*m).name).to_string_lossy().into_owned()
}

/// The schema path of `n`, for the log.
///
/// # Safety
/// `n` is a compiled schema node of a live context.
unsafe fn node_path(n: *const ffi::lysc_node) -> String {
    let p = ffi::lysc_path(n, ffi::LYSC_PATH_TYPE::LYSC_PATH_DATA, ptr::null_mut(), 0);
    if p.is_null() {
        return String::new();
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    libc::free(p as *mut libc::c_void);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use yang5::context::ContextFlags;

    const A: &str = r#"module a { yang-version 1.1; namespace "urn:t:a"; prefix a;
      container a { list item { key name; leaf name { type string; } } } }"#;
    const Z: &str = r#"module z { yang-version 1.1; namespace "urn:t:z"; prefix z;
      container z { leaf limit { type uint32; }
        list target { key id; leaf id { type string; } } } }"#;
    /// A bystander that nothing reads: must stay eligible.
    const S: &str = r#"module s { yang-version 1.1; namespace "urn:t:s"; prefix s;
      container store { list entry { key name; unique "v";
        leaf name { type string; } leaf v { type string; } } } }"#;

    /// Eligible modules among those named, for a context of `modules`
    /// (name, text), all loaded implemented (submodules are only found).
    fn eligible(modules: &[(&str, &str)], load: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in modules {
            std::fs::write(dir.path().join(format!("{name}.yang")), text).expect("write");
        }
        let mut ctx = Context::new(ContextFlags::DISABLE_SEARCHDIR_CWD).expect("ctx");
        ctx.set_searchdir(dir.path()).expect("searchdir");
        for m in load {
            ctx.load_module(m, None, &["*"]).expect("load");
        }
        let all = eligible_modules(&ctx);
        let mut out: Vec<String> = modules
            .iter()
            .map(|(n, _)| n.to_string())
            .filter(|n| all.contains(n))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn an_augment_reading_another_module_makes_both_ineligible() {
        let x = r#"module x { yang-version 1.1; namespace "urn:t:x"; prefix x;
          import a { prefix a; } import z { prefix z; }
          augment "/a:a/a:item" { leaf size { type uint32; must ". < /z:z/z:limit"; } } }"#;
        let mods = [("a", A), ("z", Z), ("x", x), ("s", S)];
        assert_eq!(eligible(&mods, &["a", "z", "x", "s"]), ["s", "x"]);
        // Without X, A and Z are free of constraints.
        assert_eq!(eligible(&mods, &["a", "z", "s"]), ["a", "s", "z"]);
    }

    #[test]
    fn a_leafref_in_an_augmented_union_reaches_its_target_module() {
        let x = r#"module x { yang-version 1.1; namespace "urn:t:x"; prefix x;
          import a { prefix a; } import z { prefix z; }
          augment "/a:a/a:item" { leaf ref { type union {
            type uint8; type leafref { path "/z:z/z:target/z:id"; } } } } }"#;
        let mods = [("a", A), ("z", Z), ("x", x), ("s", S)];
        assert_eq!(eligible(&mods, &["a", "z", "x", "s"]), ["s", "x"]);
    }

    #[test]
    fn a_deviation_adding_a_must_is_seen() {
        let d = r#"module d { yang-version 1.1; namespace "urn:t:d"; prefix d;
          import s { prefix s; } import z { prefix z; }
          deviation "/s:store/s:entry/s:v" { deviate add { must "/z:z/z:limit > 0"; } } }"#;
        let mods = [("a", A), ("z", Z), ("s", S), ("d", d)];
        assert_eq!(eligible(&mods, &["a", "z", "s", "d"]), ["a", "d"]);
    }

    #[test]
    fn a_submodule_when_is_seen() {
        let m = r#"module m { yang-version 1.1; namespace "urn:t:m"; prefix m;
          include m-sub; }"#;
        let sub = r#"submodule m-sub { yang-version 1.1; belongs-to m { prefix m; }
          import z { prefix z; }
          container mc { leaf v { type string; when "/z:z/z:limit > 3"; } } }"#;
        let mods = [("a", A), ("z", Z), ("m", m), ("m-sub", sub)];
        assert_eq!(eligible(&mods, &["a", "z", "m"]), ["a"]);
    }

    #[test]
    fn a_when_on_a_case_or_a_uses_is_seen() {
        // The case's when reads A; the choice itself already excludes C.
        let c = r#"module c { yang-version 1.1; namespace "urn:t:c"; prefix c;
          import a { prefix a; }
          container cc { choice ch {
            case one { when "/a:a/a:item"; leaf o { type string; } }
            case two { leaf t { type string; } } } } }"#;
        let mods = [("a", A), ("z", Z), ("c", c)];
        assert_eq!(eligible(&mods, &["a", "z", "c"]), ["z"]);
        // A when on a uses inside an augment of Z, reading Z's limit: Z.
        let u = r#"module u { yang-version 1.1; namespace "urn:t:u"; prefix u;
          import a { prefix a; } import z { prefix z; }
          grouping g { leaf extra { type string; } }
          augment "/a:a" { uses g { when "/z:z/z:limit = 1"; } } }"#;
        let mods = [("a", A), ("z", Z), ("u", u), ("s", S)];
        assert_eq!(eligible(&mods, &["a", "z", "u", "s"]), ["s", "u"]);
    }

    #[test]
    fn constraints_inside_one_module_exclude_only_it() {
        let own = r#"module own { yang-version 1.1; namespace "urn:t:own"; prefix o;
          container o { leaf lo { type uint8; } leaf hi { type uint8; must ". > ../lo"; } } }"#;
        let mods = [("a", A), ("own", own), ("s", S)];
        assert_eq!(eligible(&mods, &["a", "own", "s"]), ["a", "s"]);
    }

    #[test]
    fn a_required_instance_identifier_in_configuration_excludes_every_module() {
        let i = r#"module i { yang-version 1.1; namespace "urn:t:i"; prefix i;
          container ic { leaf p { type instance-identifier; } } }"#;
        let mods = [("a", A), ("z", Z), ("i", i)];
        assert!(eligible(&mods, &["a", "z", "i"]).is_empty());
        // Not required, or not configuration: it constrains nothing.
        let loose = r#"module i { yang-version 1.1; namespace "urn:t:i"; prefix i;
          container ic { leaf p { type instance-identifier { require-instance false; } } }
          container st { config false; leaf p { type instance-identifier; } }
          notification n { leaf p { type instance-identifier; } } }"#;
        let mods = [("a", A), ("z", Z), ("i", loose)];
        assert_eq!(eligible(&mods, &["a", "z", "i"]), ["a", "i", "z"]);
    }

    #[test]
    fn the_shape_rules_hold_for_augmented_nodes() {
        let x = r#"module x { yang-version 1.1; namespace "urn:t:x"; prefix x;
          import a { prefix a; }
          augment "/a:a/a:item" { leaf-list tags { type string; max-elements 3; } } }"#;
        let mods = [("a", A), ("z", Z), ("x", x)];
        assert_eq!(eligible(&mods, &["a", "z", "x"]), ["x", "z"]);
    }

    #[test]
    fn the_wireguard_model_stays_eligible_next_to_the_protocol_modules() {
        let yang = Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
        let schema = crate::schema::Schema::load(&[yang]).expect("schema");
        assert!(
            schema.scoped.contains("wgnetconf-tunnel"),
            "{:?}",
            schema.scoped
        );
    }
}
