//! libyang errors → RFC 6241 rpc-error, with the tags RFC 7950 §15 asks for,
//! and libyang's JSON-style instance paths → XML error-paths with prefixes.

use crate::protocol::error::{ErrorPath, InfoItem, RpcError, YANG_NS};
use crate::schema::Schema;

/// Converts `/mod-a:top/list[key='v']/mod-b:leaf` (module names, inherited
/// by unprefixed children, as libyang prints) into `/a:top/a:list[a:key='v']/b:leaf`
/// with each module's YANG prefix, and the namespace declarations needed.
pub fn json_path_to_error_path(schema: &Schema, path: &str) -> ErrorPath {
    let mut out = String::with_capacity(path.len() + 16);
    let mut namespaces: Vec<(String, String)> = Vec::new();
    let mut current_module: Option<String> = None;
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    // Whether we are at a point where a node name may start.
    let mut name_start = false;
    let mut pred_module: Option<String> = None;
    let mut in_pred = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                // Copy a quoted literal verbatim.
                let q = c;
                out.push(c);
                i += 1;
                while i < chars.len() && chars[i] != q {
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    out.push(q);
                }
                i += 1;
                name_start = false;
                continue;
            }
            '/' => {
                out.push(c);
                name_start = true;
                i += 1;
                continue;
            }
            '[' => {
                out.push(c);
                in_pred = true;
                pred_module = current_module.clone();
                name_start = true;
                i += 1;
                continue;
            }
            ']' => {
                out.push(c);
                in_pred = false;
                name_start = false;
                i += 1;
                continue;
            }
            _ => {}
        }
        if name_start && (c.is_alphabetic() || c == '_') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | ':'))
            {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect();
            let (module, name) = match token.split_once(':') {
                Some((m, n)) => (Some(m.to_string()), n.to_string()),
                None => (None, token.clone()),
            };
            let module = if in_pred {
                module.or_else(|| pred_module.clone())
            } else {
                let m = module.or_else(|| current_module.clone());
                current_module = m.clone();
                m
            };
            match module.and_then(|m| {
                schema
                    .ctx
                    .get_module_implemented(&m)
                    .or_else(|| schema.ctx.get_module_latest(&m))
            }) {
                Some(m) => {
                    let prefix = m.prefix().to_string();
                    if !namespaces.iter().any(|(p, _)| p == &prefix) {
                        namespaces.push((prefix.clone(), m.namespace().to_string()));
                    }
                    out.push_str(&prefix);
                    out.push(':');
                    out.push_str(&name);
                }
                None => out.push_str(&name),
            }
            name_start = false;
            continue;
        }
        out.push(c);
        if !c.is_whitespace() && c != '=' {
            name_start = false;
        }
        i += 1;
    }
    ErrorPath {
        path: out,
        namespaces,
    }
}

/// The last node name of a JSON path (`.../server[name='a']/port` → `port`).
pub fn last_name(path: &str) -> String {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut last_slash = 0;
    for (i, c) in path.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, '/') if depth == 0 => last_slash = i,
            _ => {}
        }
    }
    let seg = &path[last_slash + 1..];
    let seg = seg.split('[').next().unwrap_or(seg);
    seg.rsplit(':').next().unwrap_or(seg).to_string()
}

/// The first double-quoted word of a libyang message.
fn quoted(msg: &str, n: usize) -> Option<String> {
    msg.split('"').nth(2 * n + 1).map(str::to_string)
}

/// The leaves and the two entries of libyang's
/// `Unique data leaf(s) "port" not satisfied in "/a" and "/b".`, split on
/// that fixed text, not on every quote: a key holding `'` is written
/// `[name="it's"]` in the paths.
fn unique_parts(msg: &str) -> Option<(&str, &str, &str)> {
    let rest = msg.strip_prefix("Unique data leaf(s) \"")?;
    let (leaves, rest) = rest.split_once("\" not satisfied in \"")?;
    let rest = &rest[..rest.rfind('"')?];
    let (a, b) = rest.rsplit_once("\" and \"")?;
    Some((leaves, a, b))
}

/// Maps a libyang error (from parsing an edit or validating a tree).
pub fn libyang_error(schema: &Schema, err: &yang5::Error) -> RpcError {
    let msg = err
        .msg
        .clone()
        .unwrap_or_else(|| "invalid data".to_string());
    let path = err.path.clone();
    let apptag = err.apptag.clone();
    let with_path = |e: RpcError| match &path {
        Some(p) => e.with_path(json_path_to_error_path(schema, p)),
        None => e,
    };
    let leaf = path.as_deref().map(last_name);
    let e = match apptag.as_deref() {
        Some("data-not-unique") => {
            let mut e = RpcError::operation_failed(msg.clone()).with_app_tag("data-not-unique");
            if let Some((leaves, a, b)) = unique_parts(&msg) {
                for entry in [a, b] {
                    for l in leaves.split_whitespace() {
                        let p = json_path_to_error_path(schema, &format!("{entry}/{l}"));
                        e.info.push(InfoItem {
                            name: "non-unique",
                            ns: Some(YANG_NS),
                            value: p.path,
                            value_ns: p.namespaces,
                        });
                    }
                }
            }
            e
        }
        Some(t @ ("too-many-elements" | "too-few-elements" | "must-violation")) => {
            RpcError::operation_failed(msg.clone()).with_app_tag(t)
        }
        Some(t @ ("instance-required" | "missing-choice")) => {
            RpcError::app("data-missing", msg.clone()).with_app_tag(t)
        }
        Some(t) => RpcError::operation_failed(msg.clone()).with_app_tag(t),
        None => classify(&msg, leaf.clone()),
    };
    with_path(e)
}

fn classify(msg: &str, leaf: Option<String>) -> RpcError {
    let bad = |e: RpcError, name: Option<String>| match name {
        Some(n) => e.bad_element(n),
        None => e,
    };
    if msg.starts_with("No module with namespace") {
        let ns = quoted(msg, 0).unwrap_or_default();
        let e = RpcError::app("unknown-namespace", msg);
        return e.with_info("bad-namespace", ns);
    }
    if msg.starts_with("Node \"") && msg.contains("not found") {
        return RpcError::app("unknown-element", msg)
            .bad_element(quoted(msg, 0).unwrap_or_default());
    }
    if msg.starts_with("Mandatory node") {
        return RpcError::app("missing-element", msg)
            .bad_element(quoted(msg, 0).unwrap_or_default());
    }
    if msg.starts_with("Mandatory choice") {
        return RpcError::app("data-missing", msg).with_app_tag("missing-choice");
    }
    // Two cases of one choice: an error of the edit itself (RFC 7950
    // §8.3.1), not a constraint the candidate may hold until commit.
    if msg.starts_with("Data for both cases") {
        return RpcError::app("invalid-value", msg);
    }
    if msg.contains("missing its key") || msg.contains("List instance is missing") {
        return bad(RpcError::app("missing-element", msg), quoted(msg, 0));
    }
    if msg.contains("Duplicate instance") {
        return bad(RpcError::protocol("bad-element", msg), leaf);
    }
    if msg.starts_with("Invalid")
        || msg.starts_with("Unsatisfied")
        || msg.starts_with("Value")
        || msg.contains("does not match")
        || msg.contains("out of")
    {
        return bad(RpcError::app("invalid-value", msg), leaf);
    }
    if msg.contains("annotation") || msg.contains("attribute") || msg.contains("metadata") {
        return RpcError::protocol("bad-attribute", msg);
    }
    bad(RpcError::operation_failed(msg), leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_entries_with_quotes_in_their_keys() {
        let msg = r#"Unique data leaf(s) "v w" not satisfied in "/s:store/entry[name="it's"]" and "/s:store/entry[name='k1']"."#;
        assert_eq!(
            unique_parts(msg),
            Some((
                "v w",
                r#"/s:store/entry[name="it's"]"#,
                "/s:store/entry[name='k1']"
            ))
        );
    }

    #[test]
    fn last_names() {
        assert_eq!(last_name("/m:a/b[k='x/y']/c"), "c");
        assert_eq!(last_name("/m:a/b[k='x/y']"), "b");
        assert_eq!(last_name("/m:a"), "a");
    }
}
