//! The configuration datastores (RFC 6241 §5, §8.3, §8.7) and their locks.
//!
//! - running: the active configuration. Persisted in the run directory
//!   (`<run_dir>/running.xml` plus `running.journal`, see [`journal`]),
//!   which survives an agent restart (SIGTERM or kill -9) but not a reboot
//!   (the run directory is tmpfs on a device), as with sysrepo's running.
//!   Owned by [`running::Running`]: the tree with its generation, `unique`
//!   index and journal, changed only through its methods (a whole new
//!   tree, or a scope swapped in place by a scoped commit, [`scope`]).
//! - startup: loaded into running at boot (when the run directory holds no
//!   running yet). Persisted in the state directory.
//! - candidate: shared by all sessions; running while unchanged, running
//!   plus pending edits while only edited, a tree of its own once read,
//!   replaced or running changed under it.
//!
//! Files are written atomically (see [`persist`]) and are 0600: they may hold
//! private keys.

pub mod disk;
pub mod edit;
pub mod eligibility;
pub mod fields;
pub mod filter;
pub mod history;
pub mod journal;
pub mod persist;
pub(crate) mod raw;
pub mod running;
pub mod scope;
pub(crate) mod unique;
pub mod yang_error;

use std::collections::HashMap;
use std::path::PathBuf;

use yang5::data::{
    Data, DataFormat, DataImplicitFlags, DataParserFlags, DataPrinterFlags, DataTree,
    DataValidationFlags,
};

use crate::protocol::error::RpcError;
use crate::protocol::rpc::{Datastore, EditOp};
use crate::protocol::xml::Elem;
use crate::protocol::NC_NS;
use crate::schema::Schema;
use yang_error::libyang_error;

pub const FILE_MODE: u32 = 0o600;

/// An edit-config accepted into the candidate and not yet committed: while
/// the candidate holds no tree of its own, it is running with these edits
/// applied in order (so editing it costs the edit, not a copy of running).
pub struct PendingEdit {
    pub tree: DataTree<'static>,
    pub valueless: Vec<ValuelessDelete>,
    pub op: EditOp,
}

pub struct Datastores {
    running: running::Running,
    /// The candidate as a whole tree (after copy-config, a replace, or once
    /// it has been read); `None` while it is running plus `pending`.
    candidate: Option<DataTree<'static>>,
    pending: Vec<PendingEdit>,
    /// The pending edits' scope as validated at edit time, with the running
    /// generation it was built on: a commit right after uses it as it is.
    validated_scope: Option<(scope::Scope, u64)>,
    /// The candidate passed libyang validation since its last change: a
    /// commit need not validate it again (validation costs in proportion to
    /// the whole datastore, and does not depend on running).
    candidate_valid: bool,
    startup: Option<DataTree<'static>>,
    startup_path: PathBuf,
    locks: HashMap<Datastore, u32>,
    /// When each lock was taken (ietf-netconf-monitoring locked-time).
    locked_at: HashMap<Datastore, std::time::SystemTime>,
    /// Where running came from at boot, and what was dropped then.
    boot: (BootSource, Option<String>),
}

/// Parses a `<config>` payload (or a datastore file) without validating it;
/// `nc:operation` attributes become metadata, state data is refused.
pub fn parse_config(schema: &Schema, xml: &str) -> Result<DataTree<'static>, RpcError> {
    if xml.trim().is_empty() {
        return Ok(DataTree::new(schema.ctx));
    }
    DataTree::parse_string(
        schema.ctx,
        xml,
        DataFormat::XML,
        DataParserFlags::NO_VALIDATION | DataParserFlags::STRICT | DataParserFlags::NO_STATE,
        DataValidationFlags::empty(),
    )
    .map_err(|e| with_bad_element(libyang_error(schema, &e), xml))
}

/// A leaf deleted or removed without a value (`<mtu nc:operation="delete"/>`),
/// taken out of an edit before libyang parses it: the element identifies the
/// leaf, and its empty text is no valid value of most types (RFC 6241 §7.2:
/// delete and remove act on "the configuration data identified by the
/// element").
#[derive(Clone, Debug)]
pub struct ValuelessDelete {
    pub op: EditOp,
    /// JSON data path of the leaf.
    pub path: String,
    pub name: String,
}

/// Parses an edit-config `<config>` payload: like [`parse_config`], with the
/// value-less leaf deletes and removes returned apart.
pub fn parse_edit(
    schema: &Schema,
    xml: &str,
) -> Result<(DataTree<'static>, Vec<ValuelessDelete>), RpcError> {
    let mut out = Vec::new();
    // Only an element with an operation attribute can be one: skip the
    // second parse of (possibly large) edits that have none.
    if !xml.contains("delete") && !xml.contains("remove") {
        return Ok((parse_config(schema, xml)?, out));
    }
    if let Ok(mut root) = crate::protocol::xml::parse(format!("<c>{xml}</c>").as_bytes()) {
        strip_valueless(schema, &mut root, "", "", None, &mut out);
        if !out.is_empty() {
            let stripped: String = root.elems().map(|e| e.to_xml(&[])).collect();
            return Ok((parse_config(schema, &stripped)?, out));
        }
    }
    Ok((parse_config(schema, xml)?, out))
}

/// A key value as an XPath literal; `None` when it holds both quote
/// characters, which no instance path can express.
fn quote_value(v: &str) -> Option<String> {
    match (v.contains('\''), v.contains('"')) {
        (true, true) => None,
        (true, false) => Some(format!("\"{v}\"")),
        _ => Some(format!("'{v}'")),
    }
}

fn strip_valueless(
    schema: &Schema,
    parent: &mut Elem,
    data_path: &str,
    schema_path: &str,
    module: Option<&str>,
    out: &mut Vec<ValuelessDelete>,
) {
    use crate::protocol::xml::Child;
    use yang5::schema::SchemaNodeKind;
    let mut i = 0;
    while i < parent.children.len() {
        let Child::Elem(c) = &parent.children[i] else {
            i += 1;
            continue;
        };
        let Some(m) = c.ns.as_deref().and_then(|ns| schema.module_by_ns(ns)) else {
            i += 1;
            continue;
        };
        let mname = m.name().to_string();
        let step = if module == Some(mname.as_str()) {
            c.local.clone()
        } else {
            format!("{mname}:{}", c.local)
        };
        let spath = format!("{schema_path}/{step}");
        let Ok(snode) = schema.ctx.find_path(&spath) else {
            i += 1;
            continue;
        };
        let mut dpath = format!("{data_path}/{step}");
        match snode.kind() {
            SchemaNodeKind::Leaf => {
                let op = c
                    .attrs
                    .iter()
                    .find(|a| a.local == "operation" && a.ns.as_deref() == Some(NC_NS))
                    .and_then(|a| match a.value.as_str() {
                        "delete" => Some(EditOp::Delete),
                        "remove" => Some(EditOp::Remove),
                        _ => None,
                    });
                if let Some(op) = op {
                    if !snode.is_list_key() && !c.has_elem_children() && c.text().is_empty() {
                        out.push(ValuelessDelete {
                            op,
                            path: dpath,
                            name: c.local.clone(),
                        });
                        parent.children.remove(i);
                        continue;
                    }
                }
            }
            SchemaNodeKind::Container => {}
            SchemaNodeKind::List => {
                let mut complete = true;
                for k in snode.list_keys() {
                    // Without a path, value-less deletes below stay in the
                    // payload for libyang (an empty value of most types is
                    // refused: an error, never a delete that goes astray).
                    match c
                        .elems()
                        .find(|e| e.local == k.name())
                        .and_then(|e| quote_value(&e.text()))
                    {
                        Some(q) => dpath.push_str(&format!("[{}={q}]", k.name())),
                        None => complete = false,
                    }
                }
                if !complete {
                    i += 1;
                    continue;
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        if let Child::Elem(c) = &mut parent.children[i] {
            strip_valueless(schema, c, &dpath, &spath, Some(&mname), out);
        }
        i += 1;
    }
}

/// RFC 6241 Appendix A: unknown-namespace carries, besides
/// `<bad-namespace>`, the `<bad-element>` "that contains the unexpected
/// namespace". libyang names only the namespace; find the element.
fn with_bad_element(err: RpcError, xml: &str) -> RpcError {
    if err.tag != "unknown-namespace" || err.info.iter().any(|i| i.name == "bad-element") {
        return err;
    }
    let Some(ns) = err
        .info
        .iter()
        .find(|i| i.name == "bad-namespace")
        .map(|i| i.value.clone())
    else {
        return err;
    };
    // The payload is a sequence of top-level elements: wrap it.
    let Ok(root) = crate::protocol::xml::parse(format!("<c>{xml}</c>").as_bytes()) else {
        return err;
    };
    fn find(e: &crate::protocol::xml::Elem, ns: &str) -> Option<String> {
        e.elems().find_map(|c| {
            if c.ns.as_deref() == Some(ns) {
                Some(c.local.clone())
            } else {
                find(c, ns)
            }
        })
    }
    match find(&root, &ns) {
        Some(name) => err.bad_element(name),
        None => err,
    }
}

/// Full libyang validation of a configuration (adds default nodes).
///
/// Every module's default nodes are added first: libyang validates module
/// by module and adds a module's defaults only when it gets to it, so a
/// `when` or `must` reading another module's default would otherwise see
/// nothing in data read from a file (stored without defaults) and refuse
/// what it accepted before.
pub fn validate_config(schema: &Schema, tree: &mut DataTree<'static>) -> Result<(), RpcError> {
    tree.add_implicit(DataImplicitFlags::NO_STATE)
        .map_err(|e| libyang_error(schema, &e))?;
    tree.validate(DataValidationFlags::NO_STATE)
        .map_err(|e| libyang_error(schema, &e))
}

/// XML of a configuration as we store and return it: explicit nodes only
/// (with-defaults basic mode `explicit`).
pub fn print_config(tree: &DataTree<'static>) -> Result<String, RpcError> {
    if tree.reference().is_none() {
        return Ok(String::new());
    }
    print_xml(
        tree,
        DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::SHRINK | DataPrinterFlags::WD_EXPLICIT,
    )
}

/// Prints a tree as XML. yang5's `print_string` dereferences the NULL that
/// libyang returns for an empty output (a tree of defaults only printed in
/// explicit mode), so we call `lyd_print_mem` ourselves.
pub fn print_xml(tree: &DataTree<'static>, flags: DataPrinterFlags) -> Result<String, RpcError> {
    // SAFETY: the first top-level node (or NULL) of a borrowed tree.
    unsafe { print_node_xml(tree.raw(), flags) }
}

/// Prints one node's subtree as XML (its following siblings too with
/// `WITH_SIBLINGS`).
///
/// # Safety
/// `node` is NULL or a live node (see [`raw`]).
pub(crate) unsafe fn print_node_xml(
    node: raw::Node,
    flags: DataPrinterFlags,
) -> Result<String, RpcError> {
    use libyang5_sys as ffi;
    if node.is_null() {
        return Ok(String::new());
    }
    let mut out: *mut std::os::raw::c_char = std::ptr::null_mut();
    // SAFETY: `node` is live (this function's contract); libyang allocates `out` with malloc, which we free below.
    let ret = unsafe { ffi::lyd_print_mem(&mut out, node, DataFormat::XML as u32, flags.bits()) };
    if ret != ffi::LY_ERR::LY_SUCCESS {
        return Err(RpcError::operation_failed("cannot print data"));
    }
    if out.is_null() {
        return Ok(String::new());
    }
    // SAFETY: libyang returned a NUL-terminated string it allocated.
    let s = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: allocated by libyang with malloc, not used after this.
    unsafe { libc::free(out as *mut libc::c_void) };
    Ok(s)
}

pub fn duplicate(tree: &DataTree<'static>) -> Result<DataTree<'static>, RpcError> {
    tree.duplicate()
        .map_err(|e| RpcError::operation_failed(format!("cannot copy data: {e}")))
}

/// Startup as stored, validated; `Err`: it exists but does not load.
fn load_file(schema: &Schema, path: &PathBuf) -> Result<Option<DataTree<'static>>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut tree = parse_config(schema, &text)
                .map_err(|e| format!("{}: {}", path.display(), e.message))?;
            validate_config(schema, &mut tree)
                .map_err(|e| format!("{}: {}", path.display(), e.message))?;
            Ok(Some(tree))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What boot should do with the loaded configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootSource {
    /// Running from the run directory: the agent restarted.
    Running,
    /// Startup became running: the device booted.
    Startup,
    /// Nothing stored: empty running.
    Empty,
}

impl BootSource {
    pub fn name(self) -> &'static str {
        match self {
            BootSource::Running => "running",
            BootSource::Startup => "startup",
            BootSource::Empty => "empty",
        }
    }
}

impl Datastores {
    /// Opens the datastores. The returned running still has to be applied
    /// through the plugins by the caller.
    ///
    /// Stored data never keeps the agent from starting: running that does
    /// not load or validate gives way to the longest prefix of its journal
    /// that does, else to startup, else to an empty configuration; a
    /// startup that does not is moved aside too. What was dropped is logged
    /// and kept in [`Datastores::boot_problem`] (operational state).
    pub fn open(
        schema: &Schema,
        run_dir: PathBuf,
        state_dir: PathBuf,
    ) -> Result<(Datastores, BootSource), String> {
        let journal = journal::Journal::new(schema.ctx, run_dir.join("running.xml"));
        let startup_path = state_dir.join("startup.xml");
        let loaded = journal.load(schema);
        let mut problems: Vec<String> = loaded.problem.into_iter().collect();
        let startup = match load_file(schema, &startup_path) {
            Ok(s) => s,
            Err(e) => {
                let aside = disk::Disk::move_aside(&disk::Fs, &startup_path);
                let p = match aside {
                    Ok(to) => format!("{e} (moved aside: {})", to.display()),
                    Err(m) => format!("{e} (cannot move it aside: {m})"),
                };
                tracing::error!("stored startup configuration rejected at boot: {p}");
                problems.push(p);
                None
            }
        };
        let (running, source) = match loaded.tree {
            Some(r) => (r, BootSource::Running),
            None => match &startup {
                Some(s) => (duplicate(s).map_err(|e| e.message)?, BootSource::Startup),
                None => {
                    let mut t = DataTree::new(schema.ctx);
                    validate_config(schema, &mut t).map_err(|e| e.message)?;
                    (t, BootSource::Empty)
                }
            },
        };
        Ok((
            Datastores {
                running: running::Running::new(running, journal),
                candidate: None,
                pending: Vec::new(),
                validated_scope: None,
                candidate_valid: false,
                startup,
                startup_path,
                locks: HashMap::new(),
                locked_at: HashMap::new(),
                boot: (source, (!problems.is_empty()).then(|| problems.join("; "))),
            },
            source,
        ))
    }

    /// Where running came from at boot, and what stored data was dropped
    /// then (and why), if any.
    pub fn boot_status(&self) -> (BootSource, Option<&str>) {
        (self.boot.0, self.boot.1.as_deref())
    }

    /// The tree of a datastore (the candidate reads as running until edited).
    /// `None` for a deleted (or never written) startup.
    pub fn tree(&self, ds: Datastore) -> Option<&DataTree<'static>> {
        match ds {
            Datastore::Running => Some(self.running.tree()),
            Datastore::Candidate => Some(
                self.candidate
                    .as_ref()
                    .unwrap_or_else(|| self.running.tree()),
            ),
            Datastore::Startup => self.startup.as_ref(),
        }
    }

    pub fn candidate_modified(&self) -> bool {
        self.candidate.is_some() || !self.pending.is_empty()
    }

    /// A changed candidate, not validated (test-option set).
    pub fn set_candidate(&mut self, tree: DataTree<'static>) {
        self.candidate = Some(tree);
        self.pending.clear();
        self.validated_scope = None;
        self.candidate_valid = false;
    }

    /// A changed candidate that libyang just validated.
    pub fn set_candidate_validated(&mut self, tree: DataTree<'static>) {
        self.candidate = Some(tree);
        self.pending.clear();
        self.validated_scope = None;
        self.candidate_valid = true;
    }

    /// Whether the candidate passed validation since its last change.
    pub fn candidate_valid(&self) -> bool {
        self.candidate.is_some() && self.candidate_valid
    }

    pub fn discard_candidate(&mut self) {
        self.candidate = None;
        self.pending.clear();
        self.validated_scope = None;
    }

    pub fn take_candidate(&mut self) -> Option<DataTree<'static>> {
        self.candidate.take()
    }

    /// Whether the candidate is running plus pending edits (no tree).
    pub fn candidate_is_pending(&self) -> bool {
        self.candidate.is_none()
    }

    pub fn pending(&self) -> &[PendingEdit] {
        &self.pending
    }

    /// One more pending edit; `validated`: the scope of all pending edits,
    /// validated just now on the current running.
    pub fn push_pending(&mut self, edit: PendingEdit, validated: Option<scope::Scope>) {
        self.pending.push(edit);
        self.validated_scope = validated.map(|s| (s, self.running.generation()));
    }

    pub fn take_pending(&mut self) -> Vec<PendingEdit> {
        self.validated_scope = None;
        std::mem::take(&mut self.pending)
    }

    /// The validated scope of the pending edits, if running has not changed
    /// since it was built.
    pub fn take_validated_scope(&mut self) -> Option<scope::Scope> {
        match self.validated_scope.take() {
            Some((s, gen)) if gen == self.running.generation() => Some(s),
            _ => None,
        }
    }

    /// Running as it is.
    pub fn running(&self) -> &DataTree<'static> {
        self.running.tree()
    }

    /// Running as of now, shared with reads outside the core lock
    /// ([`running::Running::snapshot`]).
    pub fn running_snapshot(&mut self) -> Result<std::sync::Arc<DataTree<'static>>, RpcError> {
        self.running.snapshot()
    }

    /// Changes whenever running does.
    pub fn generation(&self) -> u64 {
        self.running.generation()
    }

    /// Running, to commit a change to it (the pipeline's
    /// `Pipeline::commit`). Running changes under the candidate, which keeps
    /// what it was: its pending edits become a tree of their own first,
    /// unless they are what is committed (`commits_pending`).
    pub fn running_for_commit(
        &mut self,
        schema: &Schema,
        commits_pending: bool,
    ) -> Result<&mut running::Running, RpcError> {
        if !commits_pending {
            self.materialize_candidate(schema)?;
        }
        Ok(&mut self.running)
    }

    /// Running, to check a scope against it (its `unique` index, and the
    /// plugins' look at the change, staged and swapped out again).
    pub fn running_for_check(&mut self) -> &mut running::Running {
        &mut self.running
    }

    pub fn restore_pending(&mut self, edits: Vec<PendingEdit>) {
        self.pending = edits;
    }

    /// The candidate as a tree, built from running and the pending edits
    /// without keeping it (`None`: it has a tree of its own, or no edits).
    pub fn pending_snapshot(&self, schema: &Schema) -> Result<Option<DataTree<'static>>, RpcError> {
        if self.candidate.is_some() || self.pending.is_empty() {
            return Ok(None);
        }
        let mut tree = duplicate(self.running.tree())?;
        for p in &self.pending {
            edit::apply(schema, &mut tree, &p.tree, &p.valueless, p.op)?;
        }
        // Default nodes, as a validated candidate has them (an invalid one,
        // edited with test-option set, is shown as it is).
        let _ = validate_config(schema, &mut tree);
        Ok(Some(tree))
    }

    /// Turns pending edits into a candidate tree of its own: before running
    /// changes other than by committing them (so the candidate keeps what
    /// it was), and before the candidate is read or replaced as a whole.
    pub fn materialize_candidate(&mut self, schema: &Schema) -> Result<(), RpcError> {
        if self.candidate.is_some() || self.pending.is_empty() {
            return Ok(());
        }
        let mut tree = duplicate(self.running.tree())?;
        for p in &self.pending {
            edit::apply(schema, &mut tree, &p.tree, &p.valueless, p.op)?;
        }
        self.pending.clear();
        self.validated_scope = None;
        self.candidate = Some(tree);
        self.candidate_valid = false;
        Ok(())
    }

    /// An edit of running at boot, before the boot commit applies and
    /// writes it (the first access policy).
    pub fn edit_running_at_boot<T>(&mut self, f: impl FnOnce(&mut DataTree<'static>) -> T) -> T {
        self.running.edit_at_boot(f)
    }

    /// Running reloaded from `fresh` (the datastores opened again from the
    /// run directory after a panic); the candidate and startup stay.
    pub fn reload_running(&mut self, fresh: Datastores) {
        self.running.reload_from(fresh.running);
    }

    pub fn set_startup(&mut self, tree: DataTree<'static>) -> Result<(), RpcError> {
        let xml = print_config(&tree)?;
        persist::write_atomic(&self.startup_path, xml.as_bytes(), FILE_MODE).map_err(|e| {
            RpcError::operation_failed(format!(
                "cannot save startup to {}: {e}",
                self.startup_path.display()
            ))
        })?;
        self.startup = Some(tree);
        Ok(())
    }

    pub fn delete_startup(&mut self) -> Result<(), RpcError> {
        persist::remove_durable(&self.startup_path)
            .map_err(|e| RpcError::operation_failed(format!("cannot delete startup: {e}")))?;
        self.startup = None;
        Ok(())
    }

    // ----- locks (RFC 6241 §7.5, §7.6) -----

    pub fn lock_holder(&self, ds: Datastore) -> Option<u32> {
        self.locks.get(&ds).copied()
    }

    pub fn lock(&mut self, ds: Datastore, session: u32) -> Result<(), RpcError> {
        if let Some(holder) = self.lock_holder(ds) {
            let msg = if holder == session {
                format!("this session already holds the lock on {}", ds.name())
            } else {
                format!("{} is locked by session {holder}", ds.name())
            };
            return Err(
                RpcError::protocol("lock-denied", msg).with_info("session-id", holder.to_string())
            );
        }
        if ds == Datastore::Candidate && self.candidate_modified() {
            return Err(RpcError::protocol(
                "lock-denied",
                "the candidate has uncommitted changes: commit or discard-changes first",
            )
            .with_info("session-id", "0"));
        }
        self.locks.insert(ds, session);
        self.locked_at.insert(ds, std::time::SystemTime::now());
        Ok(())
    }

    /// The lock holder of `ds` and since when.
    pub fn lock_info(&self, ds: Datastore) -> Option<(u32, std::time::SystemTime)> {
        let holder = self.lock_holder(ds)?;
        let since = self.locked_at.get(&ds).copied()?;
        Some((holder, since))
    }

    pub fn unlock(&mut self, ds: Datastore, session: u32) -> Result<(), RpcError> {
        match self.lock_holder(ds) {
            Some(h) if h == session => {
                self.locks.remove(&ds);
                // RFC 6241 §8.3.5.2: unlocking without commit discards.
                if ds == Datastore::Candidate {
                    self.discard_candidate();
                }
                Ok(())
            }
            Some(h) => Err(RpcError::protocol(
                "lock-denied",
                format!(
                    "{} is locked by session {h}, not by this session",
                    ds.name()
                ),
            )
            .with_info("session-id", h.to_string())),
            None => Err(RpcError::protocol(
                "operation-failed",
                format!("{} is not locked", ds.name()),
            )),
        }
    }

    /// A write by `session` to `ds`: refused while another session holds
    /// the lock.
    pub fn check_writable(&self, ds: Datastore, session: u32) -> Result<(), RpcError> {
        match self.lock_holder(ds) {
            Some(h) if h != session => Err(RpcError::protocol(
                "in-use",
                format!("{} is locked by session {h}", ds.name()),
            )
            .with_info("session-id", h.to_string())),
            _ => Ok(()),
        }
    }

    /// A session ended (or was killed): its locks go, and so do the candidate
    /// changes it held the lock for.
    pub fn release_session(&mut self, session: u32) {
        let held: Vec<Datastore> = self
            .locks
            .iter()
            .filter(|(_, s)| **s == session)
            .map(|(d, _)| *d)
            .collect();
        for ds in held {
            self.locks.remove(&ds);
            if ds == Datastore::Candidate {
                self.discard_candidate();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";

    fn wg(schema: &Schema, instance: u16) -> DataTree<'static> {
        parse_config(
            schema,
            &format!(
                "<tunnel xmlns=\"{NS}\"><wireguard><instance>{instance}</instance>\
                 <listen-port>{}</listen-port></wireguard></tunnel>",
                51000 + instance
            ),
        )
        .expect("parse")
    }

    /// The scope validated with the last pending edit is what a commit
    /// installs, but only on the running it was built on.
    #[test]
    fn a_validated_scope_is_reused_only_while_running_is_unchanged() {
        let schema = Schema::load(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("yang")])
            .expect("schema");
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut ds, _) =
            Datastores::open(&schema, dir.path().join("run"), dir.path().join("state"))
                .expect("open");
        std::fs::create_dir_all(dir.path().join("run")).expect("run dir");
        let pend = |ds: &mut Datastores| {
            let edit = wg(&schema, 1);
            let sc = scope::Scope::of(&schema, ds.running(), &[(&edit, &[], EditOp::Merge)])
                .expect("scope")
                .expect("scoped");
            let p = PendingEdit {
                tree: edit,
                valueless: Vec::new(),
                op: EditOp::Merge,
            };
            ds.push_pending(p, Some(sc));
        };
        pend(&mut ds);
        assert!(ds.take_validated_scope().is_some());

        pend(&mut ds);
        let gen = ds.generation();
        let mut other = wg(&schema, 2);
        validate_config(&schema, &mut other).expect("valid");
        ds.running_for_commit(&schema, true)
            .expect("running")
            .replace(other)
            .map_err(|(e, _)| e)
            .expect("replaced");
        assert_ne!(ds.generation(), gen);
        assert!(ds.take_validated_scope().is_none());
    }
}
