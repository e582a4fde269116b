//! A rule's `path` (RFC 8341 `node-instance-identifier`), as libyang gives
//! its canonical value: JSON-style, `/module:node[key='value']/child`,
//! where a step without a prefix is in its parent's module. A rule path
//! identifies nodes; a rule applies to those nodes and their descendants.

use std::ffi::CStr;

use crate::datastore::raw::{self, Node};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The step's module (inherited from the step before when absent).
    pub module: String,
    /// A node name, or `*` for any.
    pub name: String,
    /// `[key='value']` predicates (key `.` for a leaf-list value).
    pub preds: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulePath {
    pub steps: Vec<Step>,
}

impl RulePath {
    /// A path no node has.
    pub fn never() -> RulePath {
        RulePath {
            steps: vec![Step {
                module: String::new(),
                name: "\0".into(),
                preds: Vec::new(),
            }],
        }
    }

    /// Parses a canonical `node-instance-identifier`; `None` if it is not
    /// one we understand.
    pub fn parse(s: &str) -> Option<RulePath> {
        let b = s.trim().as_bytes();
        if b.first() != Some(&b'/') {
            return None;
        }
        let mut steps: Vec<Step> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'/' {
                return None;
            }
            i += 1;
            let start = i;
            while i < b.len() && b[i] != b'/' && b[i] != b'[' {
                i += 1;
            }
            let qname = std::str::from_utf8(&b[start..i]).ok()?;
            let (module, name) = match qname.split_once(':') {
                Some((m, n)) => (m.to_string(), n.to_string()),
                None => (steps.last()?.module.clone(), qname.to_string()),
            };
            if name.is_empty() {
                return None;
            }
            let mut preds = Vec::new();
            while i < b.len() && b[i] == b'[' {
                i += 1;
                let kstart = i;
                while i < b.len() && b[i] != b'=' && b[i] != b']' {
                    i += 1;
                }
                let key = std::str::from_utf8(&b[kstart..i]).ok()?.trim();
                let key = key.rsplit(':').next()?.to_string();
                if b.get(i) != Some(&b'=') {
                    // A position (`[1]`): not an identity; refuse.
                    return None;
                }
                i += 1;
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
                let q = *b.get(i)?;
                if q != b'\'' && q != b'"' {
                    return None;
                }
                i += 1;
                let vstart = i;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                let value = std::str::from_utf8(b.get(vstart..i)?).ok()?.to_string();
                i += 1;
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
                if b.get(i) != Some(&b']') {
                    return None;
                }
                i += 1;
                preds.push((key, value));
            }
            steps.push(Step {
                module,
                name,
                preds,
            });
        }
        (!steps.is_empty()).then_some(RulePath { steps })
    }

    /// Whether step `depth` (0: top level) identifies `node`.
    ///
    /// # Safety
    /// `node` is a live node (see the `datastore::raw` module).
    pub unsafe fn step_matches(&self, depth: usize, node: Node) -> bool {
        let Some(step) = self.steps.get(depth) else {
            return false;
        };
        let (module, name) = names(node);
        if step.name != "*" && (step.name != name || step.module != module) {
            return false;
        }
        step.preds.iter().all(|(k, v)| {
            if k == "." {
                return raw::canonical(node).as_deref() == Some(v.as_str());
            }
            let mut c = raw::first_child(node);
            while !c.is_null() {
                if names(c).1 == k.as_str() {
                    return raw::canonical(c).as_deref() == Some(v.as_str());
                }
                c = raw::next(c);
            }
            false
        })
    }
}

/// A data node's schema module and name.
///
/// # Safety
/// `node` is a live node (see the `datastore::raw` module).
pub unsafe fn names(node: Node) -> (&'static str, &'static str) {
    let s = raw::schema_of(node);
    if s.is_null() {
        return ("", "");
    }
    // SAFETY: a compiled schema node of the agent's context (which lives as
    // long as the process) and its module; names are NUL-terminated.
    unsafe {
        let name = CStr::from_ptr((*s).name).to_str().unwrap_or("");
        let module = CStr::from_ptr((*(*s).module).name).to_str().unwrap_or("");
        (module, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_paths() {
        let p = RulePath::parse("/wgnetconf-tunnel:tunnel/wireguard[instance='1']/private-key")
            .expect("parse");
        assert_eq!(p.steps.len(), 3);
        assert_eq!(p.steps[1].module, "wgnetconf-tunnel");
        assert_eq!(p.steps[1].preds, vec![("instance".into(), "1".into())]);
        let p = RulePath::parse("/a:x[a:k=\"it's\"]/b:y").expect("parse");
        assert_eq!(p.steps[0].preds, vec![("k".into(), "it's".into())]);
        assert_eq!(p.steps[1].module, "b");
        assert!(RulePath::parse("x").is_none());
        assert!(RulePath::parse("/a:x[1]").is_none());
        assert!(
            RulePath::parse("/y").is_none(),
            "the first step needs a module"
        );
    }
}
