//! Commit history: every change of running, with who made it and the
//! change in a reversible form, bounded to the last `max` entries, kept in
//! the state directory (the run directory is a tmpfs on devices) so that
//! it survives kill -9 and reboots.
//!
//! A change is its roots (the instance paths of the subtrees it replaced,
//! as a scoped commit has them; the top-level nodes for a whole-datastore
//! commit) with those subtrees before and after, as XML with their
//! ancestors' keys: undoing it removes each root and merges the before
//! side back. (libyang's own diff is not used: built on partial trees,
//! it reads an ancestor present on one side only as created, and its
//! reverse would delete siblings the commit never touched.)
//!
//! One log, `commits.log`, 0600: records `H <length>\n` and a payload of
//! length-prefixed fields ([`super::fields`]): `I` id, `T` time (ms since
//! the epoch), `U` user, `S` session, `O` source, `C` comment, `R` a root
//! (repeated), `B` before, `A` after. Appended with one write, not
//! fsync'ed (a file per entry cost a commit a third more, in directory
//! updates): it survives a process kill (the page cache) and a clean
//! reboot; a torn record (power loss during the write) is left out and the
//! log rewritten without it. Once the log holds twice the bound, it is
//! rewritten with the kept records.
//!
//! The configuration before commit N is running with N and every later
//! entry undone, newest first.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use yang5::data::{Data, DataTree};

use super::scope::{self, Root};
use super::{duplicate, fields, parse_config, print_config, FILE_MODE};
use crate::protocol::error::RpcError;
use crate::schema::Schema;

/// Who made a commit, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub user: String,
    pub session: u32,
    pub source: String,
    pub comment: String,
}

/// What a commit changed (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub roots: Vec<String>,
    pub before: String,
    pub after: String,
}

/// The before side of a change, taken before the commit.
pub struct Before {
    /// `None`: the whole datastore.
    roots: Option<Vec<Root>>,
    top: Vec<String>,
    xml: String,
}

fn top_paths(tree: &DataTree<'static>, out: &mut Vec<String>) {
    if let Some(first) = tree.reference() {
        for n in first.inclusive_siblings() {
            let p = super::raw::node_path(&n);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
}

impl Before {
    /// A scoped commit's roots as `old` (the scope's copy of running)
    /// holds them.
    pub fn roots(
        schema: &Schema,
        roots: &[Root],
        old: &DataTree<'static>,
    ) -> Result<Before, RpcError> {
        Ok(Before {
            roots: Some(roots.iter().filter(|r| !r.anchor).cloned().collect()),
            top: Vec::new(),
            xml: scope::print_roots(schema.ctx, old, roots)?,
        })
    }

    /// The whole of `old`.
    pub fn whole(old: &DataTree<'static>) -> Result<Before, RpcError> {
        let mut top = Vec::new();
        top_paths(old, &mut top);
        Ok(Before {
            roots: None,
            top,
            xml: print_config(old)?,
        })
    }

    /// The change, with the after side as `running` holds it now.
    pub fn after(self, schema: &Schema, running: &DataTree<'static>) -> Result<Change, RpcError> {
        Ok(match self.roots {
            Some(roots) => Change {
                roots: roots.iter().map(|r| r.path.clone()).collect(),
                before: self.xml,
                after: scope::print_roots(schema.ctx, running, &roots)?,
            },
            None => {
                let mut top = self.top;
                top_paths(running, &mut top);
                Change {
                    roots: top,
                    before: self.xml,
                    after: print_config(running)?,
                }
            }
        })
    }
}

impl Change {
    /// Turns `tree` (holding the after side) back into the before side.
    fn undo(&self, schema: &Schema, tree: &mut DataTree<'static>) -> Result<(), RpcError> {
        for r in &self.roots {
            if tree.find_path(r).is_ok() {
                tree.remove(r)
                    .map_err(|e| failed(format!("undoing {r}: {e}")))?;
            }
        }
        let before = parse_config(schema, &self.before)?;
        if before.reference().is_some() {
            tree.merge(&before)
                .map_err(|e| failed(format!("restoring: {e}")))?;
        }
        Ok(())
    }
}

pub struct History {
    /// The log file: records appended, oldest first.
    path: PathBuf,
    max: usize,
    /// Oldest first, with where each record's payload is in the log.
    entries: VecDeque<(Meta, u64, usize)>,
    next: u64,
    /// Records in the log (kept ones and dropped ones before them).
    in_log: usize,
    file: Option<std::fs::File>,
}

fn failed(what: String) -> RpcError {
    RpcError::operation_failed(format!("commit history: {what}"))
}

fn no_such(id: u64) -> RpcError {
    RpcError::app("invalid-value", format!("no commit {id} in the history")).bad_element("id")
}

/// A record of the log: `H <length>\n`, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("H {}\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The records of a log: (payload offset, length) each; stops at the
/// first that is torn or damaged.
fn records(log: &[u8]) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < log.len() {
        let Some(nl) = log[at..].iter().take(24).position(|b| *b == b'\n') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&log[at..at + nl])
            .ok()
            .and_then(|h| h.strip_prefix("H "))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            break;
        };
        let start = at + nl + 1;
        if start + len > log.len() || decode(&log[start..start + len]).is_none() {
            break;
        }
        out.push((start as u64, len));
        at = start + len;
    }
    out
}

impl History {
    /// The history in `dir` (created if missing), keeping `max` entries
    /// (0: none, the history is off).
    pub fn open(dir: &Path, max: usize) -> History {
        let path = dir.join("commits.log");
        let log = std::fs::read(&path).unwrap_or_default();
        let recs = records(&log);
        let mut entries: VecDeque<(Meta, u64, usize)> = recs
            .iter()
            .filter_map(|(off, len)| {
                let (m, _) = decode(&log[*off as usize..*off as usize + len])?;
                Some((m, *off, *len))
            })
            .collect();
        let end = recs.last().map(|(o, l)| *o as usize + l).unwrap_or(0);
        let in_log = entries.len();
        while max > 0 && entries.len() > max {
            entries.pop_front();
        }
        let next = entries.back().map(|(m, _, _)| m.id + 1).unwrap_or(1);
        let mut h = History {
            path,
            max,
            entries,
            next,
            in_log,
            file: None,
        };
        if end < log.len() {
            tracing::warn!(
                "commit history: {} ends in a damaged record (a write cut short); it is left out",
                h.path.display()
            );
            h.compact(&log);
        }
        h
    }

    /// Whether commits are recorded (`entries` > 0).
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Meta> {
        self.entries.iter().map(|(m, _, _)| m)
    }

    /// Rewrites the log with the kept records only (atomically).
    fn compact(&mut self, log: &[u8]) {
        let mut out = Vec::new();
        let mut kept = VecDeque::new();
        for (m, off, len) in &self.entries {
            let payload = &log[*off as usize..*off as usize + len];
            let at = out.len() + format!("H {len}\n").len();
            out.extend_from_slice(&frame(payload));
            kept.push_back((m.clone(), at as u64, *len));
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match super::persist::write_atomic(&self.path, &out, FILE_MODE) {
            Ok(()) => {
                self.entries = kept;
                self.in_log = self.entries.len();
                self.file = None;
            }
            Err(e) => tracing::warn!("commit history: {}: {e}", self.path.display()),
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<u64, RpcError> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
            }
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(FILE_MODE)
                .open(&self.path)
                .map_err(|e| failed(format!("{}: {e}", self.path.display())))?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().ok_or_else(|| failed("no log".into()))?;
        let at = f
            .metadata()
            .map(|m| m.len())
            .map_err(|e| failed(format!("{}: {e}", self.path.display())))?;
        f.write_all(bytes)
            .map_err(|e| failed(format!("{}: {e}", self.path.display())))?;
        Ok(at)
    }

    /// Records a commit; returns its id. Entries beyond the bound go,
    /// oldest first (the log is rewritten once it holds twice the bound).
    pub fn record(&mut self, mut meta: Meta, change: &Change) -> Result<u64, RpcError> {
        if self.max == 0 {
            return Ok(0);
        }
        meta.id = self.next;
        let payload = encode(&meta, change);
        let framed = frame(&payload);
        let at = self.append(&framed)?;
        let off = at + (framed.len() - payload.len()) as u64;
        self.next += 1;
        let id = meta.id;
        self.entries.push_back((meta, off, payload.len()));
        self.in_log += 1;
        while self.entries.len() > self.max {
            self.entries.pop_front();
        }
        if self.in_log >= 2 * self.max {
            if let Ok(log) = std::fs::read(&self.path) {
                self.compact(&log);
            }
        }
        Ok(id)
    }

    /// The change of entry `id`, read from `log` (the log's bytes).
    fn change_in(&self, log: &[u8], id: u64) -> Result<Change, RpcError> {
        let (_, off, len) = self
            .entries
            .iter()
            .find(|(m, _, _)| m.id == id)
            .ok_or_else(|| no_such(id))?;
        log.get(*off as usize..*off as usize + len)
            .and_then(decode)
            .map(|(_, c)| c)
            .ok_or_else(|| failed(format!("entry {id} is damaged")))
    }

    /// The configuration just before commit `id`: `running` with `id` and
    /// every later commit undone, newest first (the log read once).
    pub fn before(
        &self,
        schema: &Schema,
        running: &DataTree<'static>,
        id: u64,
    ) -> Result<DataTree<'static>, RpcError> {
        if !self.entries.iter().any(|(m, _, _)| m.id == id) {
            return Err(no_such(id));
        }
        let log = std::fs::read(&self.path)
            .map_err(|e| failed(format!("{}: {e}", self.path.display())))?;
        let mut tree = duplicate(running)?;
        for (m, _, _) in self.entries.iter().rev().take_while(|(m, _, _)| m.id >= id) {
            self.change_in(&log, m.id)?.undo(schema, &mut tree)?;
        }
        Ok(tree)
    }
}

fn encode(m: &Meta, c: &Change) -> Vec<u8> {
    let (id, t, s) = (
        m.id.to_string(),
        m.time_ms.to_string(),
        m.session.to_string(),
    );
    let mut f: Vec<(u8, &str)> = vec![
        (b'I', &id),
        (b'T', &t),
        (b'U', &m.user),
        (b'S', &s),
        (b'O', &m.source),
        (b'C', &m.comment),
    ];
    f.extend(c.roots.iter().map(|r| (b'R', r.as_str())));
    f.push((b'B', &c.before));
    f.push((b'A', &c.after));
    fields::encode(&f)
}

fn decode(bytes: &[u8]) -> Option<(Meta, Change)> {
    let mut m = Meta::default();
    let mut c = Change::default();
    let (mut before, mut after) = (None, None);
    for (k, v) in fields::decode(bytes)? {
        match k {
            b'I' => m.id = v.parse().ok()?,
            b'T' => m.time_ms = v.parse().ok()?,
            b'U' => m.user = v,
            b'S' => m.session = v.parse().ok()?,
            b'O' => m.source = v,
            b'C' => m.comment = v,
            b'R' => c.roots.push(v),
            b'B' => before = Some(v),
            b'A' => after = Some(v),
            _ => return None,
        }
    }
    c.before = before?;
    c.after = after?;
    Some((m, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::validate_config;

    const TS: &str = "urn:wgnetconf:test-strings";

    fn schema() -> Schema {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Schema::load(&[root.join("yang"), root.join("tests/yang-strings")]).expect("schema")
    }

    fn config(schema: &Schema, entries: &[(&str, &str)]) -> DataTree<'static> {
        let inner: String = entries
            .iter()
            .map(|(n, v)| {
                format!(
                    "<entry><name>{}</name><value>{}</value></entry>",
                    crate::protocol::xml::escape_text(n),
                    crate::protocol::xml::escape_text(v)
                )
            })
            .collect();
        let mut t =
            parse_config(schema, &format!("<store xmlns=\"{TS}\">{inner}</store>")).expect("parse");
        validate_config(schema, &mut t).expect("valid");
        t
    }

    /// A history side printed without a copy (one root) reads back as the
    /// same tree as the printed copy: list entries with awkward keys, a
    /// nested entry, a leaf, the top container, and two roots (printed
    /// from the copy).
    #[test]
    fn roots_printed_in_place_read_back_as_their_copy() {
        let schema = schema();
        let mut tree = config(&schema, &[("a\nM<&b", "1"), ("plain", "2")]);
        tree.new_path(
            "/wgnetconf-test-strings:store/entry[name='plain']/item[id='7']/note",
            Some("n"),
            false,
        )
        .expect("item");
        let entry = |k: &str| format!("/wgnetconf-test-strings:store/entry[name='{k}']");
        let root = |p: String| crate::datastore::scope::Root {
            parent: p.rsplit_once('/').map(|(a, _)| a.to_string()),
            path: p,
            deleted: false,
            anchor: false,
        };
        let cases = [
            vec![root(entry("a\nM<&b"))],
            vec![root(format!("{}/item[id='7']", entry("plain")))],
            vec![root(format!("{}/value", entry("plain")))],
            vec![root("/wgnetconf-test-strings:store".into())],
            vec![root(entry("plain")), root(entry("a\nM<&b"))],
            vec![root(entry("absent"))],
        ];
        for roots in cases {
            let copy = scope::roots_of(schema.ctx, &tree, &roots).expect("copy");
            let text = scope::print_roots(schema.ctx, &tree, &roots).expect("print");
            let absent = roots[0].path.contains("absent");
            assert_eq!(text.is_empty(), absent, "{text}");
            let back = parse_config(&schema, &text).expect("parse");
            assert_eq!(
                print_config(&back).expect("print"),
                print_config(&copy).expect("print"),
                "{:?}: {text}",
                roots.iter().map(|r| &r.path).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn commits_are_undone_newest_first_and_the_bound_holds() {
        let schema = schema();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = History::open(dir.path(), 3);
        let states = [
            config(&schema, &[]),
            config(&schema, &[("a\nM\nb", "1")]),
            config(&schema, &[("a\nM\nb", "2"), ("q'\"q", "x")]),
            config(&schema, &[("q'\"q", "y")]),
            config(&schema, &[("q'\"q", "y"), ("東京", "z")]),
        ];
        let mut ids = Vec::new();
        for w in states.windows(2) {
            let meta = Meta {
                user: "alice".into(),
                comment: "step\nwith a newline".into(),
                ..Meta::default()
            };
            let change = Before::whole(&w[0])
                .and_then(|b| b.after(&schema, &w[1]))
                .expect("change");
            ids.push(h.record(meta, &change).expect("record"));
        }
        assert_eq!(ids, vec![1, 2, 3, 4]);
        // Bounded to 3, also on disk; reopened, the same.
        let h = History::open(dir.path(), 3);
        let kept: Vec<u64> = h.entries().map(|m| m.id).collect();
        assert_eq!(kept, vec![2, 3, 4]);
        assert_eq!(
            h.entries().next().map(|m| m.comment.as_str()),
            Some("step\nwith a newline")
        );
        let running = &states[4];
        for (id, want) in [(4, &states[3]), (3, &states[2]), (2, &states[1])] {
            let mut got = h.before(&schema, running, id).expect("before");
            validate_config(&schema, &mut got).expect("valid");
            assert_eq!(
                print_config(&got).expect("print"),
                print_config(want).expect("print"),
                "before commit {id}"
            );
        }
        assert!(h.before(&schema, running, 1).is_err(), "commit 1 is gone");
    }
}
