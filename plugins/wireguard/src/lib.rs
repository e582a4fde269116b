//! wgnetconf WireGuard plugin: programs the `wgnetconf-tunnel` YANG module
//! (`tunnel / wireguard N / peer N`) into a WireGuard data plane.
//!
//! ```ignore
//! let mut plugin = WireguardPlugin::new("auto")?;   // or "boringtun", "kernel"
//! plugin.start(context)?;                            // opens the backend
//! ```
//!
//! Interface `wireguard N` is the system interface `wgN`. `enable false` on an
//! interface keeps the interface (key, port, addresses) but sets the link
//! down and programs no peers and no routes; `enable false` on a peer removes
//! it (and its routes) from the data plane, its config stays. A route via the
//! interface is added for every allowed-ip of every programmed peer, as
//! wg-quick does.
//!
//! The plugin keeps its picture of what it programmed ([`plan::Applied`]);
//! it is built from the commits it applied, starting empty, so the agent
//! must pass every commit (the boot config first) through the plugin.

pub mod backend;
pub mod drift;
pub mod events;
pub mod key_age;
pub mod keys;
pub mod model;
pub mod plan;
pub mod state;
pub mod validate;

pub use keys::{genkey, genpsk, pubkey, KeyError};

use wgnetconf_plugin_api::yang5::context::Context;
use wgnetconf_plugin_api::{Commit, DriftReport, Plugin, PluginError, PrepareCommit};
use yang5::data::DataTree;

use backend::Backend;
use plan::{Applied, Op, StateEdit};

/// What `abort` needs to undo the last successful apply.
struct Undo {
    ops: Vec<Op>,
    state: Vec<StateEdit>,
    /// Interfaces adopted by this commit: forgotten again on abort (the
    /// system keeps them, as they were before the commit).
    adopted: Vec<u16>,
    key_ages: key_age::Snapshot,
}

/// Test-only fault injection: with `WGNETCONF_FAULT_AFTER_OPS=N` in the
/// agent's environment, the first commit with more than N backend
/// operations fails after running N of them (which are then undone), once.
/// For the VM test of the kernel backend (`tests/vm`); never set in
/// production.
pub const FAULT_ENV: &str = "WGNETCONF_FAULT_AFTER_OPS";

/// Test-only, debug builds only: `WGNETCONF_FAULT=panic-in-apply` (read
/// once) makes every apply of a change panic before it programs anything, so the
/// agent's tests prove it survives a plugin's panic.
fn panic_in_apply() -> bool {
    #[cfg(debug_assertions)]
    {
        static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SET.get_or_init(|| {
            std::env::var("WGNETCONF_FAULT")
                .is_ok_and(|v| v.split(',').any(|f| f.trim() == "panic-in-apply"))
        })
    }
    #[cfg(not(debug_assertions))]
    false
}

pub struct WireguardPlugin {
    backend_name: String,
    /// Where userspace interfaces serve `wg`'s UAPI socket (none: `None`).
    uapi_dir: Option<std::path::PathBuf>,
    backend: Option<Box<dyn Backend>>,
    applied: Applied,
    last: Option<Undo>,
    /// [`FAULT_ENV`], until it fired.
    fault_after_ops: Option<usize>,
    /// For building notification trees (set at start).
    context: Option<&'static Context>,
    handshakes: events::HandshakeTracker,
    /// Where [`key_age::KeyAges`] keeps its file (`None`: memory only).
    state_dir: Option<std::path::PathBuf>,
    key_ages: key_age::KeyAges,
    /// The clock of key ages ([`key_age::clock`]; tests inject theirs).
    clock: fn() -> std::time::SystemTime,
    /// Differences found by drift checks, notifications to send.
    drift: drift::DriftTracker,
}

impl std::fmt::Debug for WireguardPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireguardPlugin")
            .field("backend", &self.backend_name)
            .field("interfaces", &self.applied.ifaces.len())
            .finish()
    }
}

impl WireguardPlugin {
    /// A plugin that opens backend `backend_name` at [`Plugin::start`]:
    /// `auto` (kernel if the WireGuard module is there, else boringtun),
    /// `kernel`, `boringtun`, or `memory` (tests). Fails on an unknown name.
    pub fn new(backend_name: &str) -> Result<Self, PluginError> {
        if !backend::BACKENDS.contains(&backend_name) {
            return Err(PluginError::failed(format!(
                "unknown WireGuard backend {backend_name:?}; use one of {}",
                backend::BACKENDS.join(", ")
            )));
        }
        Ok(WireguardPlugin {
            backend_name: backend_name.to_string(),
            uapi_dir: None,
            backend: None,
            applied: Applied::default(),
            last: None,
            fault_after_ops: std::env::var(FAULT_ENV)
                .ok()
                .and_then(|v| v.trim().parse().ok()),
            context: None,
            handshakes: events::HandshakeTracker::default(),
            state_dir: None,
            key_ages: key_age::KeyAges::default(),
            clock: key_age::clock,
            drift: drift::DriftTracker::default(),
        })
    }

    /// A plugin over an already opened backend (tests, custom backends).
    pub fn with_backend(backend: Box<dyn Backend>) -> Self {
        WireguardPlugin {
            backend_name: backend.kind().to_string(),
            uapi_dir: None,
            backend: Some(backend),
            applied: Applied::default(),
            last: None,
            fault_after_ops: None,
            context: None,
            handshakes: events::HandshakeTracker::default(),
            state_dir: None,
            key_ages: key_age::KeyAges::default(),
            clock: key_age::clock,
            drift: drift::DriftTracker::default(),
        }
    }

    /// Userspace (boringtun) interfaces serve `<dir>/<name>.sock`, the
    /// standard WireGuard UAPI socket `wg` uses (`None`: no socket). Takes
    /// effect at [`Plugin::start`].
    pub fn with_uapi_dir(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.uapi_dir = dir;
        self
    }

    /// Private-key set-times are kept in `<dir>/`[`key_age::FILE`] (the
    /// agent's state_dir), so a restart does not reset key ages (`None`:
    /// in memory). Read at [`Plugin::start`].
    pub fn with_state_dir(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.state_dir = dir;
        self
    }

    /// The backend in use (after `start`).
    pub fn backend_mut(&mut self) -> Option<&mut (dyn Backend + 'static)> {
        self.backend.as_deref_mut()
    }

    /// Name of the backend actually used (`auto` resolved after `start`).
    pub fn backend_kind(&self) -> &str {
        self.backend
            .as_ref()
            .map(|b| b.kind())
            .unwrap_or(&self.backend_name)
    }

    /// What the plugin believes is programmed.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    fn backend(&mut self) -> Result<&mut (dyn Backend + 'static), PluginError> {
        self.backend
            .as_deref_mut()
            .ok_or_else(|| PluginError::failed("WireGuard backend not started"))
    }

    /// Interfaces `new` has that the plugin has not applied but the system
    /// already has (kernel interfaces outlive the agent: at boot, all of
    /// them): take them over as they are, so that the commit reconciles them
    /// (changing only what differs, sessions kept) instead of creating them.
    fn adopt(
        &mut self,
        new: &DataTree<'static>,
        touched: &mut model::Touched,
    ) -> Result<Vec<u16>, PluginError> {
        let mut adopted = Vec::new();
        for (&i, t) in touched.iter_mut() {
            if self.applied.ifaces.contains_key(&i) || model::read_iface(new, i).is_none() {
                continue;
            }
            let found = match self.backend()?.adopt(&model::iface_name(i)) {
                Ok(f) => f,
                Err(e) => {
                    for j in &adopted {
                        self.applied.ifaces.remove(j);
                    }
                    return Err(PluginError::failed(e.0).with_path(model::iface_path(i)));
                }
            };
            if let Some(ad) = found {
                self.applied
                    .ifaces
                    .insert(i, plan::adopted_iface(i, &ad, new));
                t.whole = true;
                adopted.push(i);
            }
        }
        Ok(adopted)
    }

    /// The undo of the previous commit: once another commit (or edit) is
    /// validated or prepared, that one is over and cannot be aborted any
    /// more. Dropped early because after a bulk commit it holds a copy of
    /// every peer and route, which the next big commit would otherwise
    /// allocate on top of.
    fn forget_last_commit(&mut self) {
        self.last = None;
    }

    /// Plan and execute; returns the ops run and the inverse state edits.
    fn apply_touched(
        &mut self,
        new: &DataTree<'static>,
        touched: &model::Touched,
        adopted: &[u16],
    ) -> Result<(Vec<Op>, Vec<StateEdit>), PluginError> {
        let perr = |e: plan::PlanError| PluginError::failed(e.message).with_path(e.path);
        let mut plan = plan::plan(&self.applied, new, touched).map_err(perr)?;
        for &i in adopted {
            plan::reconcile_routes(&mut plan, &self.applied, new, i).map_err(perr)?;
        }
        let fail_at = match self.fault_after_ops {
            Some(n) if plan.ops.len() > n => {
                self.fault_after_ops = None;
                Some(n)
            }
            _ => None,
        };
        let backend = self.backend()?;
        plan::execute_failing_at(backend, &plan.ops, fail_at).map_err(|e| {
            PluginError::failed(format!(
                "{e} (the WireGuard changes of this commit were undone)"
            ))
        })?;
        let inverse = self.applied.edit_all(plan.edits);
        Ok((plan.ops, inverse))
    }
}

// --- Drift detection and repair (drift.rs) ---
impl WireguardPlugin {
    /// Compares every applied interface with the backend's dump and
    /// repairs those whose policy says so (all, with `repair_all`), each
    /// through [`plan::execute`]: all of an interface's repair or none.
    fn check_drift_now(&mut self, repair_all: bool) -> DriftReport {
        let mut report = DriftReport::default();
        let Some(b) = self.backend.as_deref_mut() else {
            return report;
        };
        let dump = match b.dump() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("wireguard: drift check: cannot read the data plane: {e}");
                return report;
            }
        };
        let now = std::time::SystemTime::now();
        let mut found = Vec::new();
        let mut repaired = Vec::new();
        for (&i, a) in &self.applied.ifaces {
            let d = drift::compare(a, dump.iter().find(|d| d.name == a.cfg.name));
            if d.differences.is_empty() {
                continue;
            }
            let n = d.differences.len() as u32;
            report.found += n;
            if repair_all || a.drift_repair {
                match plan::execute(b, &d.repair) {
                    Ok(()) => {
                        tracing::info!("wireguard: {}: drift repaired", a.cfg.name);
                        report.repaired += n;
                        repaired.push((i, n, Ok(())));
                    }
                    Err(e) => {
                        tracing::warn!("wireguard: {}: drift repair failed: {e}", a.cfg.name);
                        report.failed += n;
                        repaired.push((i, n, Err(e.0)));
                    }
                }
            }
            found.extend(d.differences.into_iter().map(|x| (i, x)));
        }
        self.drift.record(now, found, repaired);
        report
    }

    fn drift_events(&mut self, ctx: &'static Context) -> Vec<DataTree<'static>> {
        self.drift
            .take_events()
            .iter()
            .filter_map(|e| match drift::notification(ctx, e) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("wireguard: cannot build a drift notification: {e}");
                    None
                }
            })
            .collect()
    }
}

impl Plugin for WireguardPlugin {
    fn name(&self) -> &str {
        "wireguard"
    }

    fn modules(&self) -> &[&'static str] {
        &[model::MODULE]
    }

    fn start(&mut self, context: &'static Context) -> Result<(), PluginError> {
        self.context = Some(context);
        self.key_ages = key_age::KeyAges::load(self.state_dir.clone());
        if self.backend.is_none() {
            let b = backend::open(&self.backend_name, self.uapi_dir.as_deref())
                .map_err(|e| PluginError::failed(e.0))?;
            tracing::info!("wireguard: using the {} backend", b.kind());
            self.backend = Some(b);
        }
        if let Some(n) = self.fault_after_ops {
            tracing::warn!("wireguard: {FAULT_ENV}={n}: the first commit with more than {n} operations will fail (test only)");
        }
        Ok(())
    }

    fn validate(&mut self, commit: &Commit<'_>) -> Result<(), Vec<PluginError>> {
        self.forget_last_commit();
        let touched = model::touched(commit.diff, commit.old, commit.new);
        let errs = validate::validate(&self.applied, commit.new, &touched);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    fn prepare(&mut self, commit: &mut PrepareCommit<'_>) -> Result<(), PluginError> {
        self.forget_last_commit();
        let touched = model::touched(commit.diff, commit.old, commit.new);
        for (&i, t) in &touched {
            if !(t.whole || t.settings || !self.applied.ifaces.contains_key(&i)) {
                continue;
            }
            let Some(m) = model::read_iface(commit.new, i) else {
                continue;
            };
            if m.private_key.is_none() {
                let path = format!("{}/private-key", model::iface_path(i));
                let key = keys::SecretKey::generate();
                commit.set(path, key.expose_base64());
                tracing::info!("wireguard: generated a private key for wg{i}");
            }
        }
        Ok(())
    }

    fn apply(&mut self, commit: &Commit<'_>) -> Result<(), PluginError> {
        // Only for a change of an interface: the boot commit of an empty
        // running passes, so the agent starts.
        if panic_in_apply()
            && commit
                .diff
                .iter()
                .any(|(_, n)| n.path().contains("wireguard["))
        {
            panic!("wireguard: panic-in-apply (WGNETCONF_FAULT, test only)");
        }
        self.forget_last_commit();
        let mut touched = model::touched(commit.diff, commit.old, commit.new);
        let adopted = self.adopt(commit.new, &mut touched)?;
        match self.apply_touched(commit.new, &touched, &adopted) {
            Ok((ops, state)) => {
                let key_ages = self.key_ages.snapshot();
                self.key_ages.read_max(commit.new, touched.keys());
                self.key_ages.applied(&self.applied, (self.clock)());
                self.last = Some(Undo {
                    ops,
                    state,
                    adopted,
                    key_ages,
                });
                Ok(())
            }
            Err(e) => {
                for i in adopted {
                    self.applied.ifaces.remove(&i);
                }
                Err(e)
            }
        }
    }

    fn abort(&mut self, _commit: &Commit<'_>) {
        let Some(undo) = self.last.take() else {
            return;
        };
        if let Some(b) = self.backend.as_deref_mut() {
            plan::undo(b, &undo.ops);
        }
        let _ = self.applied.edit_all(undo.state);
        for i in undo.adopted {
            self.applied.ifaces.remove(&i);
        }
        self.key_ages.restore(undo.key_ages);
    }

    fn operational(
        &mut self,
        _running: &DataTree<'static>,
        oper: &mut DataTree<'static>,
    ) -> Result<(), PluginError> {
        let Some(b) = self.backend.as_deref_mut() else {
            return Ok(());
        };
        state::fill(b, &self.applied, oper)?;
        self.key_ages
            .fill(oper, (self.clock)())
            .map_err(PluginError::failed)?;
        self.drift.fill(&self.applied, oper)
    }

    fn events(&mut self) -> Vec<DataTree<'static>> {
        let Some(ctx) = self.context else {
            return Vec::new();
        };
        let mut out = self.key_ages.events(ctx, (self.clock)());
        out.extend(self.drift_events(ctx));
        let Some(b) = self.backend.as_deref_mut() else {
            return out;
        };
        let seen = state::handshakes(b, &self.applied);
        let transitions = self.handshakes.update(std::time::SystemTime::now(), &seen);
        let handshakes = transitions
            .iter()
            .filter_map(|t| match events::notification(ctx, t) {
                Ok(tree) => {
                    tracing::info!(
                        "wireguard: wg{} peer {} handshake {}",
                        t.iface,
                        t.peer,
                        if t.up { "up" } else { "down" }
                    );
                    Some(tree)
                }
                Err(e) => {
                    tracing::warn!("wireguard: cannot build a peer-handshake notification: {e}");
                    None
                }
            });
        out.extend(handshakes);
        out
    }

    fn check_drift(&mut self, repair_all: bool) -> DriftReport {
        self.check_drift_now(repair_all)
    }

    fn stop(&mut self) {
        if let Some(b) = self.backend.as_deref_mut() {
            b.shutdown();
        }
    }
}

#[cfg(test)]
mod tests;
