//! A small namespace-resolved element tree for NETCONF envelopes.
//!
//! quick-xml's `NsReader` streams the message; we keep every element with
//! both its original qualified name and its resolved namespace. The resolved
//! namespace drives our own matching (operation names, filter matching); the
//! original names and `xmlns` declarations let us hand a subtree (the
//! `<config>` of an edit) to libyang exactly as the client meant it, including
//! prefixes used inside values (identityrefs, instance-identifiers).

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

/// Largest element depth accepted; deeper documents are refused rather than
/// risking the stack in recursive walks.
const MAX_DEPTH: usize = 256;

impl Elem {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    pub fn elems(&self) -> impl Iterator<Item = &Elem> {
        self.children.iter().filter_map(|c| match c {
            Child::Elem(e) => Some(e),
            Child::Text(_) => None,
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

/// Parses one whole message into its root element.
pub fn parse(input: &[u8]) -> Result<Elem, XmlError> {
    if input.contains(&0) {
        return Err(XmlError("NUL byte in message".into()));
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError("message is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError(format!("not well-formed XML: {e}")))?;
        match ev {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError("elements nested too deeply".into()));
                }
                let elem = start_elem(&reader, &start)?;
                stack.push(elem);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                let elem = start_elem(&reader, &start)?;
                attach(&mut stack, &mut root, elem);
            }
            Event::End(_) => {
                let elem = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                attach(&mut stack, &mut root, elem);
            }
            Event::Text(t) => {
                let s = t
                    .xml_content()
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
    for a in start.attributes() {
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
    fn subtree_keeps_prefixes_from_ancestors() {
        let doc = br#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:x="urn:x" message-id="1"><edit-config><config><x:a x:b="1"><c>&lt;v&gt;</c></x:a></config></edit-config></rpc>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.attr("message-id").unwrap().value, "1");
        let edit = root.elems().next().unwrap();
        let config = edit.elems().next().unwrap();
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
