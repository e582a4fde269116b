//! The read side of get, get-config (and get-data): a tree, a filter
//! (subtree, RFC 6241 §6; XPath, RFC 6241 §8.9) and a with-defaults mode
//! (RFC 6243 §3) become the XML inside `<data>`.
//!
//! XPath filters arrive with XML namespace prefixes declared on `<filter>`
//! (or its ancestors); libyang evaluates JSON-style expressions whose
//! prefixes are module names, so every `prefix:` is rewritten to the name
//! of the module implementing the prefix's namespace.

use yang5::data::{Data, DataImplicitFlags, DataPrinterFlags, DataTree};
use yang5::schema::SchemaNodeKind;

use crate::datastore::{self, filter, print_xml, raw};
use crate::protocol::error::RpcError;
use crate::protocol::ext::WithDefaults;
use crate::protocol::rpc::Filter;
use crate::schema::Schema;

/// Which kind of retrieval: `get` reports state data, `get-config` only
/// configuration (this decides which default nodes report-all adds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    All,
    Config,
}

/// The `<data>` content for `tree` under `filter` and `wd` (the basic mode,
/// explicit, when the client sent no `<with-defaults>`).
pub fn render(
    schema: &Schema,
    tree: &DataTree<'static>,
    filter: Option<&Filter>,
    wd: Option<WithDefaults>,
    content: Content,
) -> Result<String, RpcError> {
    let wd = wd.unwrap_or(WithDefaults::Explicit);
    // report-all reports every default node: make sure the tree holds them
    // (a candidate edited with test-option set was never validated).
    let completed;
    let tree = if matches!(wd, WithDefaults::ReportAll | WithDefaults::ReportAllTagged) {
        let mut t = datastore::duplicate(tree)?;
        let flags = match content {
            Content::All => DataImplicitFlags::empty(),
            Content::Config => DataImplicitFlags::NO_STATE,
        };
        t.add_implicit(flags)
            .map_err(|e| RpcError::operation_failed(format!("cannot add defaults: {e}")))?;
        completed = t;
        &completed
    } else {
        tree
    };
    let nodes = match filter {
        None => return print(tree, wd),
        Some(Filter::Subtree(f)) => {
            let xpaths = filter::subtree_to_xpaths(schema, f);
            filter::select_nodes(tree, &xpaths)
        }
        Some(Filter::XPath { select, namespaces }) => {
            xpath_nodes(schema, tree, select, namespaces)?
        }
    };
    // Whole top-level subtrees (a filter naming a top container, the usual
    // "everything of this module"): printed where they are, without a copy,
    // in document order.
    if nodes.is_empty() {
        return Ok(String::new());
    }
    // SAFETY: `nodes` are nodes of `tree`, borrowed for the whole call (so
    // are the nodes reached from them below).
    if nodes.iter().all(|n| unsafe { raw::parent(*n) }.is_null()) {
        let mut out = String::new();
        let mut n = raw::first_of(tree);
        while !n.is_null() {
            if nodes.contains(&n) {
                // SAFETY: a top-level node of `tree`, borrowed.
                out.push_str(&unsafe { print_one(n, wd) }?);
            }
            // SAFETY: as above.
            n = unsafe { raw::next(n) };
        }
        return Ok(out);
    }
    // Siblings under one parent (one interface, some peers of one
    // interface): printed in place inside their ancestors' tags and keys,
    // without a copy either.
    // SAFETY: a node of `tree`, borrowed.
    let parent = unsafe { raw::parent(nodes[0]) };
    // SAFETY: nodes of `tree`, borrowed.
    if nodes.iter().all(|n| unsafe { raw::parent(*n) } == parent) {
        // (Nodes that print nothing in this mode, a default leaf in
        // explicit mode, take the copy below, which decides about their
        // ancestors as for any tree.)
        // SAFETY: `parent` and `nodes` belong to `tree`, borrowed.
        if let Some(out) = unsafe { print_in_ancestors(parent, &nodes, wd) }? {
            return Ok(out);
        }
    }
    let mut selected = DataTree::new(schema.ctx);
    // SAFETY: nodes of `tree`, borrowed.
    unsafe { filter::copy_with_ancestors(schema, &mut selected, nodes) }?;
    print(&selected, wd)
}

/// `nodes` (children of `parent`, in document order) inside `parent`'s
/// ancestor chain: each ancestor's start tag (with its namespace where the
/// module changes) and list keys, the nodes' subtrees, the end tags.
///
/// # Safety
/// `parent` and `nodes` are live nodes (see [`raw`]).
unsafe fn print_in_ancestors(
    parent: raw::Node,
    nodes: &[raw::Node],
    wd: WithDefaults,
) -> Result<Option<String>, RpcError> {
    let parent_ns = raw::namespace(parent);
    let mut inner = String::new();
    let mut c = raw::first_child(parent);
    while !c.is_null() {
        if nodes.contains(&c) {
            inner.push_str(&print_child(c, wd, &parent_ns)?);
        }
        c = raw::next(c);
    }
    if inner.is_empty() {
        return Ok(None);
    }
    let mut chain = Vec::new();
    let mut p = parent;
    while !p.is_null() {
        chain.push(p);
        p = raw::parent(p);
    }
    chain.reverse();
    let mut out = String::new();
    let mut module = "";
    for a in &chain {
        let (m, name) = crate::nacm::path::names(*a);
        if m != module {
            let ns = raw::namespace(*a);
            let ns = crate::protocol::xml::escape_text(&ns).replace('"', "&quot;");
            out.push_str(&format!("<{name} xmlns=\"{ns}\">"));
            module = m;
        } else {
            out.push_str(&format!("<{name}>"));
        }
        let ns = raw::namespace(*a);
        let mut c = raw::first_child(*a);
        while !c.is_null() {
            if raw::is_key(c) && !nodes.contains(&c) {
                out.push_str(&print_child(c, wd, &ns)?);
            }
            c = raw::next(c);
        }
    }
    out.push_str(&inner);
    for a in chain.iter().rev() {
        out.push_str(&format!("</{}>", crate::nacm::path::names(*a).1));
    }
    Ok(Some(out))
}

fn wd_flags(wd: WithDefaults) -> DataPrinterFlags {
    match wd {
        WithDefaults::Explicit => DataPrinterFlags::WD_EXPLICIT,
        WithDefaults::Trim => DataPrinterFlags::WD_TRIM,
        WithDefaults::ReportAll => DataPrinterFlags::WD_ALL,
        // libyang tags with the RFC 6243 §6 attribute
        // (urn:ietf:params:xml:ns:netconf:default:1.0) once
        // ietf-netconf-with-defaults is in the context.
        WithDefaults::ReportAllTagged => {
            DataPrinterFlags::from_bits_retain(libyang5_sys::LYD_PRINT_WD_ALL_TAG)
        }
    }
}

/// [`print_one`] for a node printed inside its parent's start tag: the
/// namespace declaration libyang puts on a standalone print is dropped
/// when the parent's is the same (as a whole-tree print has it).
///
/// # Safety
/// `node` is a live node (see [`raw`]).
unsafe fn print_child(
    node: raw::Node,
    wd: WithDefaults,
    parent_ns: &str,
) -> Result<String, RpcError> {
    let text = print_one(node, wd)?;
    let decl = format!(" xmlns=\"{}\"", raw::namespace(node));
    let first_tag_end = text.find('>').unwrap_or(0);
    if raw::namespace(node) == parent_ns {
        if let Some(i) = text[..first_tag_end].find(&decl) {
            return Ok(format!("{}{}", &text[..i], &text[i + decl.len()..]));
        }
    }
    Ok(text)
}

/// One node's subtree (not its siblings) in a with-defaults mode.
///
/// # Safety
/// `node` is a live node (see [`raw`]).
unsafe fn print_one(node: raw::Node, wd: WithDefaults) -> Result<String, RpcError> {
    datastore::print_node_xml(node, DataPrinterFlags::SHRINK | wd_flags(wd))
}

/// Prints a whole tree in a with-defaults mode.
pub fn print(tree: &DataTree<'static>, wd: WithDefaults) -> Result<String, RpcError> {
    if tree.reference().is_none() {
        return Ok(String::new());
    }
    print_xml(
        tree,
        DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::SHRINK | wd_flags(wd),
    )
}

/// RFC 6243 §6 on input: a client may send data tagged `default="true"`
/// (report-all-tagged output copied back) in edit-config or copy-config.
/// libyang's parser turns the tag into its default-node flag; the tag is
/// right on a node whose value is the schema default, and invalid-value on
/// any other (else the value would silently count as a default).
pub fn check_default_tags(tree: &DataTree<'static>) -> Result<(), RpcError> {
    for node in tree.traverse() {
        // SAFETY: a node of a live tree.
        let flagged = unsafe { (*node.as_raw()).flags } & libyang5_sys::LYD_DEFAULT != 0;
        let term = matches!(
            node.schema().kind(),
            SchemaNodeKind::Leaf | SchemaNodeKind::LeafList
        );
        if flagged && term && !node.is_default() {
            let name = node.schema().name().to_string();
            return Err(RpcError::protocol(
                "invalid-value",
                format!("<{name}> is tagged default=\"true\" but its value is not the default"),
            )
            .with_info("bad-attribute", "default")
            .bad_element(name));
        }
    }
    Ok(())
}

fn bad_select(message: String) -> RpcError {
    RpcError::protocol("invalid-value", message)
        .with_info("bad-attribute", "select")
        .bad_element("filter")
}

/// Evaluates an XPath filter: the selected nodes (outermost, each once).
pub fn xpath_nodes(
    schema: &Schema,
    data: &DataTree<'static>,
    select: &str,
    namespaces: &[(String, String)],
) -> Result<Vec<raw::Node>, RpcError> {
    let Some(xpath) = to_json_xpath(schema, select, namespaces)? else {
        // A namespace no loaded module implements: nothing matches.
        return Ok(Vec::new());
    };
    if data.reference().is_none() {
        return Ok(Vec::new());
    }
    // An instance path: a hash lookup (see `filter::find`).
    if let Some(n) = filter::find_instance(data, &xpath) {
        return Ok(vec![n]);
    }
    let set = data
        .find_xpath(&xpath)
        .map_err(|e| bad_select(format!("XPath filter '{select}': {e}")))?;
    // SAFETY: nodes of `data`, borrowed for the call.
    Ok(unsafe { filter::outermost(set.map(|n| n.as_raw()).collect()) })
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Rewrites the XML prefixes of an XPath expression into module names.
/// `Ok(None)`: a prefix names a namespace no loaded module implements (the
/// expression can select nothing). An undeclared prefix is invalid-value
/// with bad-attribute `select`. Literals of the form `prefix:name` with a
/// declared prefix (identityref values) are rewritten too.
pub fn to_json_xpath(
    schema: &Schema,
    select: &str,
    namespaces: &[(String, String)],
) -> Result<Option<String>, RpcError> {
    if select.trim().is_empty() {
        return Err(bad_select("the XPath filter's select is empty".into()));
    }
    if select.contains('\0') {
        return Err(bad_select("NUL in the XPath filter".into()));
    }
    // Some(module) for a prefix bound to a loaded module, None for a
    // prefix bound to any other namespace; Err for an undeclared one.
    let module_of = |prefix: &str| -> Result<Option<String>, RpcError> {
        let ns = namespaces
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
            .ok_or_else(|| {
                bad_select(format!(
                    "the XPath filter uses the prefix '{prefix}', which is not declared"
                ))
            })?;
        Ok(schema.module_by_ns(ns).map(|m| m.name().to_string()))
    };
    let chars: Vec<char> = select.chars().collect();
    let mut out = String::with_capacity(select.len() + 32);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && chars[end] != c {
                end += 1;
            }
            if end >= chars.len() {
                return Err(bad_select(format!(
                    "unterminated literal in the XPath filter '{select}'"
                )));
            }
            let lit: String = chars[start..end].iter().collect();
            out.push(c);
            out.push_str(&literal(&lit, namespaces, schema));
            out.push(c);
            i = end + 1;
            continue;
        }
        if is_name_start(c) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let prefixed = i + 1 < chars.len()
                && chars[i] == ':'
                && (is_name_start(chars[i + 1]) || chars[i + 1] == '*');
            if prefixed {
                match module_of(&name)? {
                    Some(m) => out.push_str(&m),
                    None => return Ok(None),
                }
                out.push(':');
                i += 1;
            } else {
                out.push_str(&name);
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    Ok(Some(out))
}

/// A literal `prefix:name` whose prefix is declared for a loaded module
/// becomes `module:name`; anything else stays as it is.
fn literal(lit: &str, namespaces: &[(String, String)], schema: &Schema) -> String {
    if let Some((p, name)) = lit.split_once(':') {
        let plain =
            |s: &str| s.chars().next().is_some_and(is_name_start) && s.chars().all(is_name_char);
        if plain(p) && plain(name) {
            if let Some(m) = namespaces
                .iter()
                .find(|(q, _)| q == p)
                .and_then(|(_, ns)| schema.module_by_ns(ns))
            {
                return format!("{}:{name}", m.name());
            }
        }
    }
    lit.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn schema() -> Schema {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/yang");
        Schema::load(&[dir]).expect("schema")
    }

    fn ns(prefix: &str, uri: &str) -> Vec<(String, String)> {
        vec![(prefix.to_string(), uri.to_string())]
    }

    #[test]
    fn prefixes_become_module_names() {
        let s = schema();
        let n = ns("x", "urn:wgnetconf:test");
        let got = |sel: &str| to_json_xpath(&s, sel, &n).expect("ok").expect("some");
        assert_eq!(
            got("/x:system/x:hostname"),
            "/wgnetconf-test:system/wgnetconf-test:hostname"
        );
        assert_eq!(
            got("child::x:servers/x:*[x:name = 'a:b' and x:tag=\"x:y\"]"),
            "child::wgnetconf-test:servers/wgnetconf-test:*[wgnetconf-test:name = 'a:b' and wgnetconf-test:tag=\"wgnetconf-test:y\"]"
        );
        assert_eq!(
            got("count(//x:server) > 1.5"),
            "count(//wgnetconf-test:server) > 1.5"
        );
    }

    #[test]
    fn bad_prefixes_and_literals() {
        let s = schema();
        let n = ns("x", "urn:wgnetconf:test");
        let e = to_json_xpath(&s, "/y:system", &n).unwrap_err();
        assert_eq!(e.tag, "invalid-value");
        assert!(e
            .info
            .iter()
            .any(|i| i.name == "bad-attribute" && i.value == "select"));
        assert!(to_json_xpath(&s, "/x:system[x:a='b]", &n).is_err());
        assert!(to_json_xpath(&s, "  ", &n).is_err());
        let other = ns("o", "urn:other");
        assert!(to_json_xpath(&s, "/o:thing", &other).expect("ok").is_none());
    }
}
