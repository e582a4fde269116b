//! A small namespace-resolved element tree for NETCONF envelopes.
//!
//! quick-xml's `NsReader` streams the message; we keep every element with
//! both its original qualified name and its resolved namespace. The resolved
//! namespace drives our own matching (operation names, filter matching); the
//! original names and `xmlns` declarations let us hand a subtree (the
//! `<config>` of an edit) to libyang exactly as the client meant it, including
//! prefixes used inside values (identityrefs, instance-identifiers).

use std::collections::HashSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// One attribute, `xmlns` declarations excluded.
#[derive(Clone, Debug)]
pub struct Attr {
    pub qname: String,
    pub local: String,
    pub ns: Option<String>,
    pub value: String,
}

#[derive(Clone, Debug)]
pub enum Child {
    Elem(Elem),
    Text(String),
    /// A child element kept as the client sent it (a data payload, see
    /// [`parse`]), made standalone: the namespace declarations in force
    /// at it are declared on it.
    Raw(String),
}

#[derive(Clone, Debug)]
pub struct Elem {
    pub qname: String,
    pub local: String,
    pub ns: Option<String>,
    pub attrs: Vec<Attr>,
    /// Namespace declarations made on this element: (prefix or None for the
    /// default namespace, uri).
    pub ns_decls: Vec<(Option<String>, String)>,
    pub children: Vec<Child>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

/// Bounds on the work one message may cause, so that parsing stays linear
/// in its size and no message can hold a runtime thread for long. Every
/// check runs on the raw start tag before the attributes are resolved or
/// stored; `[netconf]` in the configuration sets them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Element nesting depth; deeper documents are refused rather than
    /// risking the stack in recursive walks (here, in libyang, in filters).
    pub max_depth: usize,
    /// Attributes on one element, namespace declarations included.
    pub max_attrs_per_element: usize,
    /// Attributes in the whole message, namespace declarations included.
    pub max_attrs_per_message: usize,
}

/// Namespace declarations in force at once. quick-xml resolves a prefix by
/// scanning them, so without a bound a message could declare thousands
/// and make every later name lookup scan them all (quadratic work).
const MAX_NS_IN_SCOPE: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_attrs_per_element: 64,
            max_attrs_per_message: 1_000_000,
        }
    }
}

impl Limits {
    pub fn from_config(c: &crate::config::NetconfConfig) -> Limits {
        Limits {
            max_depth: c.max_depth.max(1),
            max_attrs_per_element: c.max_attributes_per_element,
            max_attrs_per_message: c.max_attributes_per_message,
        }
    }
}

/// XML 1.0 §2.3 names, as far as ASCII goes (quick-xml checks none): a
/// name starts with a letter, '_' or ':' and goes on with those, digits,
/// '-' and '.'. Non-ASCII characters are let through.
fn check_name(name: &[u8]) -> Result<(), XmlError> {
    let ok_start = |b: u8| !b.is_ascii() || b.is_ascii_alphabetic() || b == b'_' || b == b':';
    let ok_rest = |b: u8| ok_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.';
    match name.split_first() {
        Some((first, rest)) if ok_start(*first) && rest.iter().all(|b| ok_rest(*b)) => Ok(()),
        _ => Err(XmlError(format!(
            "'{}' is not an XML name",
            String::from_utf8_lossy(name)
        ))),
    }
}

/// XML 1.0 §2.4: the sequence "]]>" may not appear in text content.
fn check_text(raw: &[u8]) -> Result<(), XmlError> {
    if raw.windows(3).any(|w| w == b"]]>") {
        return Err(XmlError("']]>' in text content".into()));
    }
    Ok(())
}

/// What one message has used of its [`Limits`] so far.
struct Budget<'l> {
    limits: &'l Limits,
    attrs: usize,
    /// Namespace declarations on each open element, and their sum.
    ns_frames: Vec<usize>,
    ns_in_scope: usize,
}

impl<'l> Budget<'l> {
    fn new(limits: &'l Limits) -> Self {
        Budget {
            limits,
            attrs: 0,
            ns_frames: Vec::new(),
            ns_in_scope: 0,
        }
    }

    /// Checks one start tag at nesting depth `depth` (the root is 1):
    /// depth, attribute counts and duplicates (a HashSet, so linear; the
    /// check quick-xml offers is quadratic). Returns its namespace
    /// declarations count, for [`Budget::open`].
    fn tag(&mut self, start: &BytesStart<'_>, depth: usize) -> Result<usize, XmlError> {
        if depth > self.limits.max_depth {
            return Err(XmlError(format!(
                "elements nested deeper than {}",
                self.limits.max_depth
            )));
        }
        check_name(start.name().as_ref())?;
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut decls = 0usize;
        for a in start.attributes().with_checks(false) {
            let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
            check_name(a.key.as_ref())?;
            // XML 1.0 §3.1 [10]: no '<' in an attribute value.
            if a.value.contains(&b'<') {
                return Err(XmlError("'<' in an attribute value".into()));
            }
            if seen.len() >= self.limits.max_attrs_per_element {
                return Err(XmlError(format!(
                    "more than {} attributes on one element",
                    self.limits.max_attrs_per_element
                )));
            }
            self.attrs += 1;
            if self.attrs > self.limits.max_attrs_per_message {
                return Err(XmlError(format!(
                    "more than {} attributes in the message",
                    self.limits.max_attrs_per_message
                )));
            }
            let key = a.key.into_inner();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                decls += 1;
            }
            if !seen.insert(key) {
                return Err(XmlError(format!(
                    "duplicate attribute '{}'",
                    String::from_utf8_lossy(key)
                )));
            }
        }
        if self.ns_in_scope + decls > MAX_NS_IN_SCOPE {
            return Err(XmlError(format!(
                "more than {MAX_NS_IN_SCOPE} namespace declarations in scope"
            )));
        }
        Ok(decls)
    }

    /// An element with `decls` declarations was opened.
    fn open(&mut self, decls: usize) {
        self.ns_frames.push(decls);
        self.ns_in_scope += decls;
    }

    /// The innermost open element was closed.
    fn close(&mut self) {
        self.ns_in_scope -= self.ns_frames.pop().unwrap_or(0);
    }
}

impl Elem {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    pub fn elems(&self) -> impl Iterator<Item = &Elem> {
        self.children.iter().filter_map(|c| match c {
            Child::Elem(e) => Some(e),
            Child::Text(_) | Child::Raw(_) => None,
        })
    }

    /// The first child element with this local name whose namespace is `ns`
    /// or, as ncclient sends some elements, no namespace at all.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Elem> {
        self.elems()
            .find(|e| e.local == local && (e.ns.as_deref() == Some(ns) || e.ns.is_none()))
    }

    /// Concatenated text content (direct children only), trimmed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            if let Child::Text(t) = c {
                s.push_str(t);
            }
        }
        s.trim().to_string()
    }

    pub fn has_elem_children(&self) -> bool {
        self.elems().next().is_some()
    }

    pub fn attr(&self, local: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.local == local)
    }

    /// Serialises this element and its subtree. `scope` holds the namespace
    /// declarations in force at the parent; they are re-declared on this
    /// element (unless it shadows them) so the result stands alone.
    pub fn to_xml(&self, scope: &[(Option<String>, String)]) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(scope));
        out
    }

    fn write(&self, out: &mut String, scope: Option<&[(Option<String>, String)]>) {
        out.push('<');
        out.push_str(&self.qname);
        if let Some(scope) = scope {
            for (prefix, uri) in scope {
                if self.ns_decls.iter().any(|(p, _)| p == prefix) {
                    continue;
                }
                write_decl(out, prefix.as_deref(), uri);
            }
        }
        for (prefix, uri) in &self.ns_decls {
            write_decl(out, prefix.as_deref(), uri);
        }
        for a in &self.attrs {
            out.push(' ');
            out.push_str(&a.qname);
            out.push_str("=\"");
            out.push_str(&escape(&a.value));
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Child::Elem(e) => e.write(out, None),
                Child::Text(t) => out.push_str(&escape_text(t)),
                Child::Raw(r) => out.push_str(r),
            }
        }
        out.push_str("</");
        out.push_str(&self.qname);
        out.push('>');
    }
}

fn write_decl(out: &mut String, prefix: Option<&str>, uri: &str) {
    match prefix {
        Some(p) => {
            out.push_str(" xmlns:");
            out.push_str(p);
        }
        None => out.push_str(" xmlns"),
    }
    out.push_str("=\"");
    out.push_str(&escape(uri));
    out.push('"');
}

/// Escapes element content (quotes need no escaping there).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes attribute values (and is safe for content too).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Namespace scope: a stack of declaration frames, innermost last.
#[derive(Default, Clone, Debug)]
pub struct Scope(Vec<Vec<(Option<String>, String)>>);

impl Scope {
    pub fn push(&mut self, decls: &[(Option<String>, String)]) {
        self.0.push(decls.to_vec());
    }

    /// The declarations in force (innermost wins), flattened.
    pub fn flatten(&self) -> Vec<(Option<String>, String)> {
        let mut out: Vec<(Option<String>, String)> = Vec::new();
        for frame in self.0.iter().rev() {
            for (p, u) in frame {
                if !out.iter().any(|(q, _)| q == p) {
                    out.push((p.clone(), u.clone()));
                }
            }
        }
        out
    }
}

/// Parses one whole message into its root element, within the default
/// [`Limits`] (for XML the agent itself made or already accepted).
pub fn parse(input: &[u8]) -> Result<Elem, XmlError> {
    parse_limited(input, &Limits::default())
}

/// Parses one whole message from a client into its root element, refusing
/// it as soon as it exceeds `limits`.
pub fn parse_limited(input: &[u8], limits: &Limits) -> Result<Elem, XmlError> {
    let mut budget = Budget::new(limits);
    if input.contains(&0) {
        return Err(XmlError("NUL byte in message".into()));
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError("message is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    let mut first = true;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError(format!("not well-formed XML: {e}")))?;
        // XML 1.0 §2.8: the XML declaration comes first or not at all.
        if matches!(ev, Event::Decl(_))
            && !(first && text.trim_start_matches('\u{feff}').starts_with("<?xml"))
        {
            return Err(XmlError("XML declaration not at the start".into()));
        }
        first = false;
        match ev {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                let decls = budget.tag(&start, stack.len() + 1)?;
                let elem = start_elem(&reader, &start)?;
                if is_edit_payload(&stack, &elem) {
                    budget.open(decls);
                    let elem = raw_payload(&mut reader, text, &stack, elem, &mut budget)?;
                    budget.close();
                    attach(&mut stack, &mut root, elem);
                    continue;
                }
                budget.open(decls);
                stack.push(elem);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                budget.tag(&start, stack.len() + 1)?;
                let elem = start_elem(&reader, &start)?;
                attach(&mut stack, &mut root, elem);
            }
            Event::End(_) => {
                let elem = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                budget.close();
                attach(&mut stack, &mut root, elem);
            }
            Event::Text(t) => {
                check_text(&t)?;
                // XML 1.0 end-of-line handling only: `xml_content` follows
                // XML 1.1 and would turn U+2028 and U+0085 into newlines.
                let s = t
                    .xml10_content()
                    .map_err(|e| XmlError(format!("bad text: {e}")))?
                    .into_owned();
                push_text(&mut stack, root.is_some(), s)?;
            }
            Event::CData(c) => {
                let s = std::str::from_utf8(&c)
                    .map_err(|_| XmlError("CDATA is not UTF-8".into()))?
                    .to_string();
                push_text(&mut stack, root.is_some(), s)?;
            }
            Event::GeneralRef(r) => {
                let s = resolve_ref(&r)?;
                push_text(&mut stack, root.is_some(), s)?;
            }
            Event::DocType(_) => return Err(XmlError("DOCTYPE is not allowed".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError(
            "unexpected end of message inside an element".into(),
        ));
    }
    root.ok_or_else(|| XmlError("empty message".into()))
}

/// `<rpc><edit-config><config>`: its data goes to libyang as text, so it
/// is not built into elements here (a 10,000-peer edit would make ~60,000
/// of them, only to be printed again).
fn is_edit_payload(stack: &[Elem], elem: &Elem) -> bool {
    use crate::protocol::NC_NS;
    stack.len() == 2
        && elem.is(NC_NS, "config")
        && stack[1].is(NC_NS, "edit-config")
        && stack[0].is(NC_NS, "rpc")
}

/// Reads the children of the payload element `elem` (whose start tag was
/// just read) as raw text, each with the namespace declarations in force
/// declared on it; returns `elem` with them as [`Child::Raw`].
fn raw_payload(
    reader: &mut NsReader<&[u8]>,
    text: &str,
    stack: &[Elem],
    mut elem: Elem,
    budget: &mut Budget<'_>,
) -> Result<Elem, XmlError> {
    // Depth of `elem` itself; its data children are one deeper.
    let base = stack.len() + 1;
    let mut scope: Vec<(Option<String>, String)> = Vec::new();
    for decls in stack.iter().map(|e| &e.ns_decls).chain([&elem.ns_decls]) {
        for (p, u) in decls {
            scope.retain(|(q, _)| q != p);
            scope.push((p.clone(), u.clone()));
        }
    }
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader
            .read_event()
            .map_err(|e| XmlError(format!("not well-formed XML: {e}")))?;
        let mut odd = false;
        let (own, after) = match ev {
            Event::Start(start) => {
                let decls = budget.tag(&start, base + 1)?;
                budget.open(decls);
                check_prefixes(reader, &start)?;
                let own = declared_prefixes(&start)?;
                odd |= odd_operation(reader, &start);
                let mut depth = 1usize;
                while depth > 0 {
                    match reader
                        .read_event()
                        .map_err(|e| XmlError(format!("not well-formed XML: {e}")))?
                    {
                        Event::Start(s) => {
                            depth += 1;
                            let decls = budget.tag(&s, base + depth)?;
                            budget.open(decls);
                            check_prefixes(reader, &s)?;
                            odd |= odd_operation(reader, &s);
                        }
                        Event::Empty(s) => {
                            budget.tag(&s, base + depth + 1)?;
                            check_prefixes(reader, &s)?;
                            odd |= odd_operation(reader, &s);
                        }
                        Event::End(_) => {
                            depth -= 1;
                            budget.close();
                        }
                        Event::Eof => {
                            return Err(XmlError(
                                "unexpected end of message inside an element".into(),
                            ))
                        }
                        Event::DocType(_) => return Err(XmlError("DOCTYPE is not allowed".into())),
                        Event::Decl(_) => {
                            return Err(XmlError("XML declaration not at the start".into()))
                        }
                        Event::GeneralRef(r) => {
                            resolve_ref(&r)?;
                        }
                        Event::Text(t) => check_text(&t)?,
                        _ => {}
                    }
                }
                (own, reader.buffer_position() as usize)
            }
            Event::Empty(start) => {
                budget.tag(&start, base + 1)?;
                check_prefixes(reader, &start)?;
                odd |= odd_operation(reader, &start);
                (
                    declared_prefixes(&start)?,
                    reader.buffer_position() as usize,
                )
            }
            Event::End(_) => return Ok(elem),
            Event::Eof => {
                return Err(XmlError(
                    "unexpected end of message inside an element".into(),
                ))
            }
            Event::DocType(_) => return Err(XmlError("DOCTYPE is not allowed".into())),
            Event::Decl(_) => return Err(XmlError("XML declaration not at the start".into())),
            Event::Text(t) => {
                check_text(&t)?;
                continue;
            }
            // Comments and the like between data elements carry nothing
            // for libyang.
            _ => continue,
        };
        let raw = text
            .get(before..after)
            .ok_or_else(|| XmlError("bad element boundaries".into()))?;
        let name_end = raw
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_whitespace() || *c == '>' || *c == '/')
            .map(|(i, _)| i)
            .unwrap_or(raw.len());
        let mut out = String::with_capacity(raw.len() + 128);
        out.push_str(&raw[..name_end]);
        for (p, u) in &scope {
            if !own.contains(p) {
                write_decl(&mut out, p.as_deref(), u);
            }
        }
        out.push_str(&raw[name_end..]);
        if odd {
            // An operation attribute the envelope checks must refuse by
            // name (bad-attribute): give them the element.
            elem.children
                .push(Child::Elem(parse_limited(out.as_bytes(), budget.limits)?));
        } else {
            elem.children.push(Child::Raw(out));
        }
    }
}

/// The element's and its prefixed attributes' prefixes are declared
/// (Namespaces in XML §5): payload data is not built into elements, so
/// this is where an unbound prefix in it is caught.
fn check_prefixes(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<(), XmlError> {
    resolved(reader.resolve_element(start.name()).0)?;
    for a in start.attributes().with_checks(false) {
        let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
        if a.key.prefix().is_some_and(|p| p.as_ref() != b"xmlns") {
            resolved(reader.resolve_attribute(a.key).0)?;
        }
    }
    Ok(())
}

/// Whether a start tag carries an `nc:operation` other than the five of
/// RFC 6241 §7.2.
fn odd_operation(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> bool {
    start.attributes().with_checks(false).flatten().any(|a| {
        a.key.local_name().as_ref() == b"operation"
            && matches!(
                reader.resolve_attribute(a.key).0,
                ResolveResult::Bound(ns) if ns.as_ref() == crate::protocol::NC_NS.as_bytes()
            )
            && !matches!(
                a.value.as_ref(),
                b"merge" | b"replace" | b"create" | b"delete" | b"remove"
            )
    })
}

/// Prefixes (None: the default namespace) declared on a start tag.
fn declared_prefixes(start: &BytesStart<'_>) -> Result<Vec<Option<String>>, XmlError> {
    let mut out = Vec::new();
    for a in start.attributes().with_checks(false) {
        let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
        let key = a.key.as_ref();
        if key == b"xmlns" {
            out.push(None);
        } else if let Some(p) = key.strip_prefix(b"xmlns:") {
            out.push(Some(utf8(p)?));
        }
    }
    Ok(out)
}

/// A finished element goes to its parent, or becomes the root.
fn attach(stack: &mut [Elem], root: &mut Option<Elem>, elem: Elem) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Child::Elem(elem)),
        None => *root = Some(elem),
    }
}

fn push_text(stack: &mut [Elem], after_root: bool, s: String) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            // Merge adjacent text (text split around entity references).
            if let Some(Child::Text(prev)) = parent.children.last_mut() {
                prev.push_str(&s);
            } else {
                parent.children.push(Child::Text(s));
            }
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None if after_root => Err(XmlError("content after the root element".into())),
        None => Err(XmlError("text outside the root element".into())),
    }
}

fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> Result<String, XmlError> {
    if let Ok(Some(ch)) = r.resolve_char_ref() {
        return Ok(ch.to_string());
    }
    let name = std::str::from_utf8(r).map_err(|_| XmlError("bad entity".into()))?;
    Ok(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "quot" => "\"",
        "apos" => "'",
        other => return Err(XmlError(format!("unknown entity &{other};"))),
    }
    .to_string())
}

fn start_elem(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<Elem, XmlError> {
    let (res, _) = reader.resolve_element(start.name());
    let qname = utf8(start.name().as_ref())?;
    let local = utf8(start.local_name().as_ref())?;
    let ns = resolved(res)?;
    let mut attrs = Vec::new();
    let mut ns_decls = Vec::new();
    // Duplicates and counts were checked by `Budget::tag`, linearly.
    for a in start.attributes().with_checks(false) {
        let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
        let key = utf8(a.key.as_ref())?;
        let value = a
            .unescape_value()
            .map_err(|e| XmlError(format!("bad attribute value: {e}")))?
            .into_owned();
        if key == "xmlns" {
            ns_decls.push((None, value));
            continue;
        }
        if let Some(p) = key.strip_prefix("xmlns:") {
            ns_decls.push((Some(p.to_string()), value));
            continue;
        }
        let (ares, alocal) = reader.resolve_attribute(a.key);
        let ans = resolved(ares)?;
        attrs.push(Attr {
            qname: key,
            local: utf8(alocal.as_ref())?,
            ns: ans,
            value,
        });
    }
    Ok(Elem {
        qname,
        local,
        ns,
        attrs,
        ns_decls,
        children: Vec::new(),
    })
}

fn resolved(res: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match res {
        ResolveResult::Bound(ns) => Ok(Some(utf8(ns.as_ref())?)),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(XmlError(format!(
            "undeclared namespace prefix '{}'",
            String::from_utf8_lossy(&p)
        ))),
    }
}

fn utf8(b: &[u8]) -> Result<String, XmlError> {
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| XmlError("name is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_payload_is_kept_raw_and_standalone() {
        let doc = br#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:x="urn:x" message-id="1"><edit-config><target><running/></target><config xmlns:y="urn:y"> <x:a x:b="1"><c>&lt;v&gt;</c><y:d/></x:a><e xmlns="urn:e"/></config></edit-config></rpc>"#;
        let root = parse(doc).unwrap();
        let edit = root.elems().next().unwrap();
        let config = edit
            .child("urn:ietf:params:xml:ns:netconf:base:1.0", "config")
            .unwrap();
        let raws: Vec<&str> = config
            .children
            .iter()
            .filter_map(|c| match c {
                Child::Raw(r) => Some(r.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(raws.len(), 2, "{:?}", config.children);
        // Each parses alone, with the namespaces it had in the message.
        let a = parse(raws[0].as_bytes()).unwrap();
        assert_eq!(a.ns.as_deref(), Some("urn:x"));
        let c = a.elems().next().unwrap();
        assert_eq!(
            c.ns.as_deref(),
            Some("urn:ietf:params:xml:ns:netconf:base:1.0")
        );
        assert_eq!(c.text(), "<v>");
        assert_eq!(a.elems().nth(1).unwrap().ns.as_deref(), Some("urn:y"));
        let e = parse(raws[1].as_bytes()).unwrap();
        assert_eq!(e.ns.as_deref(), Some("urn:e"));
        // Unbalanced payloads are still refused.
        assert!(parse(br#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><edit-config><config><a><b></a></config></edit-config></rpc>"#).is_err());
    }

    #[test]
    fn subtree_keeps_prefixes_from_ancestors() {
        let doc = br#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:x="urn:x" message-id="1"><validate><source><config><x:a x:b="1"><c>&lt;v&gt;</c></x:a></config></source></validate></rpc>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.attr("message-id").unwrap().value, "1");
        let validate = root.elems().next().unwrap();
        let source = validate.elems().next().unwrap();
        let config = source.elems().next().unwrap();
        let a = config.elems().next().unwrap();
        assert_eq!(a.ns.as_deref(), Some("urn:x"));
        let mut scope = Scope::default();
        scope.push(&root.ns_decls);
        let xml = a.to_xml(&scope.flatten());
        let back = parse(xml.as_bytes()).unwrap();
        assert_eq!(back.ns.as_deref(), Some("urn:x"));
        let c = back.elems().next().unwrap();
        assert_eq!(
            c.ns.as_deref(),
            Some("urn:ietf:params:xml:ns:netconf:base:1.0")
        );
        assert_eq!(c.text(), "<v>");
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        assert!(parse(b"<a>\0</a>").is_err());
        assert!(parse(b"<p:a/>").is_err());
        assert!(parse(b"").is_err());
    }
}
