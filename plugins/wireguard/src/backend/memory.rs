//! In-memory backend for unit tests: records state and every call, and can
//! fail the Nth mutating call to prove that the plugin rolls back.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::{
    Backend, BackendError, InterfaceConfig, InterfaceDump, InterfaceState, PeerConfig, PeerState,
    Result,
};
use crate::keys::PublicKey;

#[derive(Clone, Debug)]
struct Iface {
    cfg: InterfaceConfig,
    addresses: BTreeSet<IpNet>,
    routes: BTreeSet<IpNet>,
    peers: BTreeMap<PublicKey, PeerConfig>,
    owner: BTreeMap<IpNet, PublicKey>,
}

/// Shared view of the calls made, so a test keeps a handle after the backend
/// moved into the plugin.
#[derive(Clone, Default, Debug)]
pub struct MemoryLog {
    inner: std::sync::Arc<std::sync::Mutex<LogInner>>,
}

#[derive(Default, Debug)]
struct LogInner {
    calls: Vec<String>,
    fail_at: Option<usize>,
    count: usize,
    ifaces: BTreeMap<String, Iface>,
}

impl MemoryLog {
    /// Every mutating call so far, e.g. `set_peers wg1 [<key>]`.
    pub fn calls(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|l| l.calls.clone())
            .unwrap_or_default()
    }
    pub fn clear(&self) {
        if let Ok(mut l) = self.inner.lock() {
            l.calls.clear();
        }
    }
    /// Fail the `n`th mutating call from now (1 = the next one), once.
    pub fn fail_nth(&self, n: usize) {
        if let Ok(mut l) = self.inner.lock() {
            l.fail_at = Some(l.count + n);
        }
    }
    /// Another backend over the same state: what it does happens "behind
    /// the plugin's back" (drift tests).
    pub fn out_of_band(&self) -> MemoryBackend {
        MemoryBackend { log: self.clone() }
    }
    /// The state after the last mutating call.
    pub fn dump(&self) -> Vec<InterfaceDump> {
        self.inner
            .lock()
            .map(|l| snapshot(&l.ifaces))
            .unwrap_or_default()
    }
}

/// State lives in the shared [`MemoryLog`] so tests can read it after the
/// backend moved into the plugin; reading is on demand (no per-call copy).
#[derive(Default)]
pub struct MemoryBackend {
    log: MemoryLog,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn log(&self) -> MemoryLog {
        self.log.clone()
    }

    fn call(&mut self, what: String) -> Result<()> {
        let mut l = self
            .log
            .inner
            .lock()
            .map_err(|_| BackendError::new("memory log poisoned"))?;
        l.count += 1;
        if l.fail_at == Some(l.count) {
            l.fail_at = None;
            return Err(BackendError(format!(
                "injected failure at call {}: {what}",
                l.count
            )));
        }
        l.calls.push(what);
        Ok(())
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut BTreeMap<String, Iface>) -> R) -> Result<R> {
        let mut l = self
            .log
            .inner
            .lock()
            .map_err(|_| BackendError::new("memory state poisoned"))?;
        Ok(f(&mut l.ifaces))
    }

    fn with_iface<R>(&mut self, name: &str, f: impl FnOnce(&mut Iface) -> R) -> Result<R> {
        self.with(|m| m.get_mut(name).map(f))?
            .ok_or_else(|| BackendError(format!("{name}: no such interface")))
    }
}

fn snapshot(ifaces: &BTreeMap<String, Iface>) -> Vec<InterfaceDump> {
    ifaces
        .values()
        .map(|i| InterfaceDump {
            name: i.cfg.name.clone(),
            public_key: Some(i.cfg.private_key.public_key()),
            listen_port: i.cfg.listen_port,
            mtu: i.cfg.mtu,
            up: i.cfg.up,
            addresses: i.addresses.iter().copied().collect(),
            routes: i.routes.iter().copied().collect(),
            peers: i.peers.values().cloned().collect(),
        })
        .collect()
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn create_interface(&mut self, cfg: &InterfaceConfig) -> Result<()> {
        if self.with(|m| m.contains_key(&cfg.name))? {
            return Err(BackendError(format!("{}: exists", cfg.name)));
        }
        self.call(format!("create_interface {}", cfg.name))?;
        self.with(|m| {
            m.insert(
                cfg.name.clone(),
                Iface {
                    cfg: cfg.clone(),
                    addresses: BTreeSet::new(),
                    routes: BTreeSet::new(),
                    peers: BTreeMap::new(),
                    owner: BTreeMap::new(),
                },
            )
        })?;
        Ok(())
    }

    fn remove_interface(&mut self, name: &str) -> Result<()> {
        self.with_iface(name, |_| ())?;
        self.call(format!("remove_interface {name}"))?;
        self.with(|m| m.remove(name))?;
        Ok(())
    }

    fn set_interface(&mut self, _old: &InterfaceConfig, new: &InterfaceConfig) -> Result<()> {
        self.with_iface(&new.name, |_| ())?;
        self.call(format!("set_interface {}", new.name))?;
        self.with_iface(&new.name, |i| i.cfg = new.clone())
    }

    fn add_address(&mut self, iface: &str, addr: IpNet) -> Result<()> {
        if self.with_iface(iface, |i| i.addresses.contains(&addr))? {
            return Err(BackendError(format!("{iface}: address {addr} exists")));
        }
        self.call(format!("add_address {iface} {addr}"))?;
        self.with_iface(iface, |i| i.addresses.insert(addr))
            .map(|_| ())
    }

    fn remove_address(&mut self, iface: &str, addr: IpNet) -> Result<()> {
        self.with_iface(iface, |_| ())?;
        self.call(format!("remove_address {iface} {addr}"))?;
        self.with_iface(iface, |i| i.addresses.remove(&addr))
            .map(|_| ())
    }

    fn set_peers(&mut self, iface: &str, peers: &[PeerConfig]) -> Result<()> {
        self.with_iface(iface, |_| ())?;
        let keys: Vec<String> = peers.iter().map(|p| p.public_key.to_base64()).collect();
        self.call(format!("set_peers {iface} {}", keys.join(",")))?;
        self.with_iface(iface, |i| {
            for p in peers {
                if let Some(old) = i.peers.get(&p.public_key) {
                    for a in &old.allowed_ips {
                        i.owner.remove(a);
                    }
                }
                // WireGuard semantics: an allowed IP belongs to one peer;
                // setting it on another moves it.
                for a in &p.allowed_ips {
                    if let Some(prev) = i.owner.insert(*a, p.public_key) {
                        if prev != p.public_key {
                            if let Some(o) = i.peers.get_mut(&prev) {
                                o.allowed_ips.retain(|x| x != a);
                            }
                        }
                    }
                }
                i.peers.insert(p.public_key, p.clone());
            }
        })
    }

    fn remove_peers(&mut self, iface: &str, keys: &[PublicKey]) -> Result<()> {
        self.with_iface(iface, |_| ())?;
        let names: Vec<String> = keys.iter().map(|k| k.to_base64()).collect();
        self.call(format!("remove_peers {iface} {}", names.join(",")))?;
        self.with_iface(iface, |i| {
            for k in keys {
                if let Some(old) = i.peers.remove(k) {
                    for a in &old.allowed_ips {
                        i.owner.remove(a);
                    }
                }
            }
        })
    }

    fn add_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        let (up, exists) = self.with_iface(iface, |i| (i.cfg.up, i.routes.contains(&dest)))?;
        if !up {
            return Err(BackendError(format!(
                "{iface}: route {dest}: network is down"
            )));
        }
        if exists {
            return Err(BackendError(format!("{iface}: route {dest} exists")));
        }
        self.call(format!("add_route {iface} {dest}"))?;
        self.with_iface(iface, |i| i.routes.insert(dest))
            .map(|_| ())
    }

    fn remove_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.with_iface(iface, |_| ())?;
        self.call(format!("remove_route {iface} {dest}"))?;
        self.with_iface(iface, |i| i.routes.remove(&dest))
            .map(|_| ())
    }

    fn dump(&mut self) -> Result<Vec<InterfaceDump>> {
        self.with(|m| snapshot(m))
    }

    fn interface_state(&mut self, name: &str) -> Result<Option<InterfaceState>> {
        self.with(|m| {
            m.get(name).map(|i| InterfaceState {
                name: name.to_string(),
                public_key: Some(i.cfg.private_key.public_key()),
                listen_port: i.cfg.listen_port,
                up: i.cfg.up,
                peers: i
                    .peers
                    .values()
                    .map(|p| PeerState {
                        public_key: p.public_key,
                        endpoint: p.endpoint,
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                    })
                    .collect(),
            })
        })
    }
}
