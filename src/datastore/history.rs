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
//! One file per entry, `<id>.commit`, 0600, of length-prefixed fields
//! ([`super::fields`]): `I` id, `T` time (ms since the epoch), `U` user,
//! `S` session, `O` source, `C` comment, `R` a root (repeated), `B` before,
//! `A` after. Written with one write, not fsync'ed: it costs a commit next
//! to nothing, survives a process kill (the page cache) and a clean reboot;
//! a torn entry (power loss during the write) fails to decode and is left
//! out.
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

impl Change {
    /// A scoped commit's change: its roots as `old` (the scope's copy) and
    /// `running` (after the commit) hold them.
    pub fn of_roots(
        schema: &Schema,
        roots: &[Root],
        old: &DataTree<'static>,
        running: &DataTree<'static>,
    ) -> Result<Change, RpcError> {
        Ok(Change {
            roots: roots
                .iter()
                .filter(|r| !r.anchor)
                .map(|r| r.path.clone())
                .collect(),
            before: print_config(&scope::roots_of(schema.ctx, old, roots)?)?,
            after: print_config(&scope::roots_of(schema.ctx, running, roots)?)?,
        })
    }

    /// A whole-datastore change from `old` to `new`.
    pub fn whole(old: &DataTree<'static>, new: &DataTree<'static>) -> Result<Change, RpcError> {
        let mut roots: Vec<String> = Vec::new();
        for t in [old, new] {
            if let Some(first) = t.reference() {
                for n in first.inclusive_siblings() {
                    let p = super::raw::path(n.as_raw());
                    if !roots.contains(&p) {
                        roots.push(p);
                    }
                }
            }
        }
        Ok(Change {
            roots,
            before: print_config(old)?,
            after: print_config(new)?,
        })
    }

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
    dir: PathBuf,
    max: usize,
    /// Oldest first.
    entries: VecDeque<Meta>,
    next: u64,
}

fn failed(what: String) -> RpcError {
    RpcError::operation_failed(format!("commit history: {what}"))
}

fn no_such(id: u64) -> RpcError {
    RpcError::app("invalid-value", format!("no commit {id} in the history")).bad_element("id")
}

impl History {
    /// The history in `dir` (created if missing), keeping `max` entries
    /// (0: none, the history is off).
    pub fn open(dir: &Path, max: usize) -> History {
        let mut entries = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("commit") {
                    continue;
                }
                match std::fs::read(&p).ok().and_then(|b| decode(&b)) {
                    Some((meta, _)) => entries.push(meta),
                    None => tracing::warn!(
                        "commit history: {} is damaged (a write cut short); left out",
                        p.display()
                    ),
                }
            }
        }
        entries.sort_by_key(|m| m.id);
        let next = entries.last().map(|m| m.id + 1).unwrap_or(1);
        History {
            dir: dir.to_path_buf(),
            max,
            entries: entries.into(),
            next,
        }
    }

    /// Whether commits are recorded (`entries` > 0).
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Meta> {
        self.entries.iter()
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:010}.commit"))
    }

    /// Records a commit; returns its id. Entries beyond the bound go,
    /// oldest first.
    pub fn record(&mut self, mut meta: Meta, change: &Change) -> Result<u64, RpcError> {
        if self.max == 0 {
            return Ok(0);
        }
        meta.id = self.next;
        let bytes = encode(&meta, change);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| failed(format!("{}: {e}", self.dir.display())))?;
        let path = self.path(meta.id);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        self.next += 1;
        let id = meta.id;
        self.entries.push_back(meta);
        while self.entries.len() > self.max {
            if let Some(old) = self.entries.pop_front() {
                let _ = std::fs::remove_file(self.path(old.id));
            }
        }
        Ok(id)
    }

    /// The change of entry `id`.
    pub fn change(&self, id: u64) -> Result<Change, RpcError> {
        if !self.entries.iter().any(|m| m.id == id) {
            return Err(no_such(id));
        }
        let bytes = std::fs::read(self.path(id))
            .map_err(|e| failed(format!("{}: {e}", self.path(id).display())))?;
        decode(&bytes)
            .map(|(_, c)| c)
            .ok_or_else(|| failed(format!("entry {id} is damaged")))
    }

    /// The configuration just before commit `id`: `running` with `id` and
    /// every later commit undone, newest first.
    pub fn before(
        &self,
        schema: &Schema,
        running: &DataTree<'static>,
        id: u64,
    ) -> Result<DataTree<'static>, RpcError> {
        if !self.entries.iter().any(|m| m.id == id) {
            return Err(no_such(id));
        }
        let mut tree = duplicate(running)?;
        for m in self.entries.iter().rev().take_while(|m| m.id >= id) {
            self.change(m.id)?.undo(schema, &mut tree)?;
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
            let change = Change::whole(&w[0], &w[1]).expect("change");
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
