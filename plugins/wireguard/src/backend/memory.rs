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
    dump: Vec<InterfaceDump>,
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
    /// The state after the last mutating call.
    pub fn dump(&self) -> Vec<InterfaceDump> {
        self.inner
            .lock()
            .map(|l| l.dump.clone())
            .unwrap_or_default()
    }
}

#[derive(Default)]
pub struct MemoryBackend {
    ifaces: BTreeMap<String, Iface>,
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

    fn publish(&mut self) {
        let d = self.snapshot();
        if let Ok(mut l) = self.log.inner.lock() {
            l.dump = d;
        }
    }

    fn snapshot(&self) -> Vec<InterfaceDump> {
        self.ifaces
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

    fn iface(&mut self, name: &str) -> Result<&mut Iface> {
        self.ifaces
            .get_mut(name)
            .ok_or_else(|| BackendError(format!("{name}: no such interface")))
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn create_interface(&mut self, cfg: &InterfaceConfig) -> Result<()> {
        if self.ifaces.contains_key(&cfg.name) {
            return Err(BackendError(format!("{}: exists", cfg.name)));
        }
        self.call(format!("create_interface {}", cfg.name))?;
        self.ifaces.insert(
            cfg.name.clone(),
            Iface {
                cfg: cfg.clone(),
                addresses: BTreeSet::new(),
                routes: BTreeSet::new(),
                peers: BTreeMap::new(),
            },
        );
        self.publish();
        Ok(())
    }

    fn remove_interface(&mut self, name: &str) -> Result<()> {
        self.iface(name)?;
        self.call(format!("remove_interface {name}"))?;
        self.ifaces.remove(name);
        self.publish();
        Ok(())
    }

    fn set_interface(&mut self, old: &InterfaceConfig, new: &InterfaceConfig) -> Result<()> {
        let _ = old;
        self.iface(&new.name)?;
        self.call(format!("set_interface {}", new.name))?;
        self.iface(&new.name)?.cfg = new.clone();
        self.publish();
        Ok(())
    }

    fn add_address(&mut self, iface: &str, addr: IpNet) -> Result<()> {
        self.iface(iface)?;
        self.call(format!("add_address {iface} {addr}"))?;
        if !self.iface(iface)?.addresses.insert(addr) {
            return Err(BackendError(format!("{iface}: address {addr} exists")));
        }
        self.publish();
        Ok(())
    }

    fn remove_address(&mut self, iface: &str, addr: IpNet) -> Result<()> {
        self.iface(iface)?;
        self.call(format!("remove_address {iface} {addr}"))?;
        self.iface(iface)?.addresses.remove(&addr);
        self.publish();
        Ok(())
    }

    fn set_peers(&mut self, iface: &str, peers: &[PeerConfig]) -> Result<()> {
        self.iface(iface)?;
        let keys: Vec<String> = peers.iter().map(|p| p.public_key.to_base64()).collect();
        self.call(format!("set_peers {iface} {}", keys.join(",")))?;
        let i = self.iface(iface)?;
        for p in peers {
            // WireGuard semantics: an allowed IP belongs to one peer; setting it
            // on another moves it.
            for other in i.peers.values_mut() {
                if other.public_key != p.public_key {
                    other.allowed_ips.retain(|a| !p.allowed_ips.contains(a));
                }
            }
            i.peers.insert(p.public_key, p.clone());
        }
        self.publish();
        Ok(())
    }

    fn remove_peers(&mut self, iface: &str, keys: &[PublicKey]) -> Result<()> {
        self.iface(iface)?;
        let names: Vec<String> = keys.iter().map(|k| k.to_base64()).collect();
        self.call(format!("remove_peers {iface} {}", names.join(",")))?;
        let i = self.iface(iface)?;
        for k in keys {
            i.peers.remove(k);
        }
        self.publish();
        Ok(())
    }

    fn add_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.iface(iface)?;
        if !self.iface(iface)?.cfg.up {
            return Err(BackendError(format!(
                "{iface}: route {dest}: network is down"
            )));
        }
        self.call(format!("add_route {iface} {dest}"))?;
        if !self.iface(iface)?.routes.insert(dest) {
            return Err(BackendError(format!("{iface}: route {dest} exists")));
        }
        self.publish();
        Ok(())
    }

    fn remove_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.iface(iface)?;
        self.call(format!("remove_route {iface} {dest}"))?;
        self.iface(iface)?.routes.remove(&dest);
        self.publish();
        Ok(())
    }

    fn dump(&mut self) -> Result<Vec<InterfaceDump>> {
        Ok(self.snapshot())
    }

    fn interface_state(&mut self, name: &str) -> Result<Option<InterfaceState>> {
        Ok(self.ifaces.get(name).map(|i| InterfaceState {
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
        }))
    }
}
