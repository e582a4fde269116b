//! From a commit to the smallest list of backend operations, each with an
//! exact inverse; executing with a journal so a failure undoes what was done.
//!
//! The plugin keeps [`Applied`], its picture of what is programmed (the
//! running config as resolved: endpoints as socket addresses, keys decoded),
//! updated only when a commit applied. Planning reads the *new* tree only for
//! the interfaces and peers the diff names, and takes "old" from [`Applied`],
//! so a one-peer commit costs the same with 10 or 10,000 peers present.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};

use ipnet::IpNet;
use yang5::data::DataTree;

use crate::backend::{Adopted, Backend, BackendError, InterfaceConfig, PeerConfig};
use crate::keys::{PublicKey, SecretKey};
use crate::model::{self, IfaceModel, IfaceTouch, PeerModel, Touched};

/// One peer as configured and, when enabled, as programmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEntry {
    pub enable: bool,
    pub public_key: PublicKey,
    pub allowed_ips: Vec<IpNet>,
    /// What the backend has for it (None: disabled, or interface disabled).
    pub programmed: Option<PeerConfig>,
}

/// One interface as applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedIface {
    pub cfg: InterfaceConfig,
    pub enable: bool,
    pub public_key: PublicKey,
    pub addresses: BTreeSet<IpNet>,
    pub routes: BTreeSet<IpNet>,
    /// `drift-policy repair`: drift found is put back (`drift.rs`).
    pub drift_repair: bool,
    pub peers: HashMap<u32, PeerEntry>,
    /// allowed-ip → peer instance (all configured peers, enabled or not).
    pub owner: HashMap<IpNet, u32>,
}

impl AppliedIface {
    fn set_peer(&mut self, p: u32, entry: Option<PeerEntry>) -> Option<PeerEntry> {
        let old = self.peers.remove(&p);
        if let Some(o) = &old {
            for ip in &o.allowed_ips {
                if self.owner.get(ip) == Some(&p) {
                    self.owner.remove(ip);
                }
            }
        }
        if let Some(e) = entry {
            for ip in &e.allowed_ips {
                self.owner.insert(*ip, p);
            }
            self.peers.insert(p, e);
        }
        old
    }
}

/// What is programmed, by interface instance.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub ifaces: BTreeMap<u16, AppliedIface>,
}

/// A backend operation with what is needed to invert it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    CreateInterface(InterfaceConfig),
    RemoveInterface {
        cfg: InterfaceConfig,
        addresses: Vec<IpNet>,
        peers: Vec<PeerConfig>,
        routes: Vec<IpNet>,
    },
    SetInterface {
        old: InterfaceConfig,
        new: InterfaceConfig,
    },
    AddAddress(String, IpNet),
    RemoveAddress(String, IpNet),
    /// `(previous config if the peer existed with this key, new config)`.
    SetPeers(String, Vec<(Option<PeerConfig>, PeerConfig)>),
    RemovePeers(String, Vec<PeerConfig>),
    AddRoute(String, IpNet),
    RemoveRoute(String, IpNet),
}

impl Op {
    pub fn run(&self, b: &mut dyn Backend) -> Result<(), BackendError> {
        match self {
            Op::CreateInterface(cfg) => b.create_interface(cfg),
            Op::RemoveInterface { cfg, .. } => b.remove_interface(&cfg.name),
            Op::SetInterface { old, new } => b.set_interface(old, new),
            Op::AddAddress(n, a) => b.add_address(n, *a),
            Op::RemoveAddress(n, a) => b.remove_address(n, *a),
            Op::SetPeers(n, ps) => {
                let new: Vec<PeerConfig> = ps.iter().map(|(_, p)| p.clone()).collect();
                b.set_peers(n, &new)
            }
            Op::RemovePeers(n, ps) => {
                let keys: Vec<PublicKey> = ps.iter().map(|p| p.public_key).collect();
                b.remove_peers(n, &keys)
            }
            Op::AddRoute(n, r) => b.add_route(n, *r),
            Op::RemoveRoute(n, r) => b.remove_route(n, *r),
        }
    }

    /// Operations that undo this one, in order.
    pub fn inverse(&self) -> Vec<Op> {
        match self {
            Op::CreateInterface(cfg) => vec![Op::RemoveInterface {
                cfg: cfg.clone(),
                addresses: vec![],
                peers: vec![],
                routes: vec![],
            }],
            Op::RemoveInterface {
                cfg,
                addresses,
                peers,
                routes,
            } => {
                let n = &cfg.name;
                let mut v = vec![Op::CreateInterface(cfg.clone())];
                v.extend(addresses.iter().map(|a| Op::AddAddress(n.clone(), *a)));
                if !peers.is_empty() {
                    v.push(Op::SetPeers(
                        n.clone(),
                        peers.iter().map(|p| (None, p.clone())).collect(),
                    ));
                }
                v.extend(routes.iter().map(|r| Op::AddRoute(n.clone(), *r)));
                v
            }
            Op::SetInterface { old, new } => vec![Op::SetInterface {
                old: new.clone(),
                new: old.clone(),
            }],
            Op::AddAddress(n, a) => vec![Op::RemoveAddress(n.clone(), *a)],
            Op::RemoveAddress(n, a) => vec![Op::AddAddress(n.clone(), *a)],
            Op::SetPeers(n, ps) => {
                let created: Vec<PeerConfig> = ps
                    .iter()
                    .filter(|(o, _)| o.is_none())
                    .map(|(_, p)| p.clone())
                    .collect();
                let restored: Vec<(Option<PeerConfig>, PeerConfig)> = ps
                    .iter()
                    .filter_map(|(o, p)| o.clone().map(|o| (Some(p.clone()), o)))
                    .collect();
                let mut v = Vec::new();
                if !created.is_empty() {
                    v.push(Op::RemovePeers(n.clone(), created));
                }
                if !restored.is_empty() {
                    v.push(Op::SetPeers(n.clone(), restored));
                }
                v
            }
            Op::RemovePeers(n, ps) => vec![Op::SetPeers(
                n.clone(),
                ps.iter().map(|p| (None, p.clone())).collect(),
            )],
            Op::AddRoute(n, r) => vec![Op::RemoveRoute(n.clone(), *r)],
            Op::RemoveRoute(n, r) => vec![Op::AddRoute(n.clone(), *r)],
        }
    }

    /// Whether a failure of this op may have left part of it applied.
    fn may_be_partial(&self) -> bool {
        matches!(self, Op::SetPeers(..) | Op::RemovePeers(..))
    }
}

/// Run `ops` in order. On failure, undo the failed op (if it can be partial)
/// and every op before it, in reverse, and return the error.
pub fn execute(b: &mut dyn Backend, ops: &[Op]) -> Result<(), BackendError> {
    execute_failing_at(b, ops, None)
}

/// [`execute`], where op number `fail_at` (0-based), if any, fails without
/// running: test-only fault injection (`WGNETCONF_FAULT_AFTER_OPS`).
pub fn execute_failing_at(
    b: &mut dyn Backend,
    ops: &[Op],
    fail_at: Option<usize>,
) -> Result<(), BackendError> {
    let mut k = 0;
    while k < ops.len() {
        let op = &ops[k];
        // A run of routes via one interface goes to the backend in one
        // call (batched over rtnetlink), unless a fault is injected in it;
        // a failure is the failure of the route it names.
        if let Op::AddRoute(n, _) = op {
            let dests: Vec<IpNet> = ops[k..]
                .iter()
                .map_while(|o| match o {
                    Op::AddRoute(m, d) if m == n => Some(*d),
                    _ => None,
                })
                .collect();
            if dests.len() > 1 && !fail_at.is_some_and(|f| (k..k + dests.len()).contains(&f)) {
                if let Err((j, e)) = b.add_routes(n, &dests) {
                    tracing::warn!(
                        "wireguard: {e}; undoing {} operation(s) of this commit",
                        k + j
                    );
                    undo(b, &ops[..k + j]);
                    return Err(e);
                }
                k += dests.len();
                continue;
            }
        }
        let injected = fail_at == Some(k);
        let r = if injected {
            Err(BackendError(format!(
                "injected failure before operation {} of {} (WGNETCONF_FAULT_AFTER_OPS={k})",
                k + 1,
                ops.len()
            )))
        } else {
            op.run(b)
        };
        if let Err(e) = r {
            tracing::warn!("wireguard: {e}; undoing {k} operation(s) of this commit");
            if op.may_be_partial() && !injected {
                for inv in op.inverse() {
                    let _ = inv.run(b);
                }
            }
            undo(b, &ops[..k]);
            return Err(e);
        }
        k += 1;
    }
    Ok(())
}

/// Undo executed ops (best effort, reverse order).
pub fn undo(b: &mut dyn Backend, done: &[Op]) {
    for op in done.iter().rev() {
        for inv in op.inverse() {
            if let Err(e) = inv.run(b) {
                tracing::error!("wireguard: undo failed: {e}");
            }
        }
    }
}

/// A state change to [`Applied`], invertible.
#[derive(Debug)]
pub enum StateEdit {
    Iface(u16, Option<AppliedIface>),
    Settings {
        i: u16,
        cfg: InterfaceConfig,
        enable: bool,
        public_key: PublicKey,
        addresses: BTreeSet<IpNet>,
        drift_repair: bool,
    },
    Peer(u16, u32, Option<PeerEntry>),
    Routes {
        i: u16,
        add: Vec<IpNet>,
        remove: Vec<IpNet>,
    },
}

impl Applied {
    /// Apply one edit; returns its inverse.
    pub fn edit(&mut self, e: StateEdit) -> StateEdit {
        match e {
            StateEdit::Iface(i, v) => {
                let old = match v {
                    Some(v) => self.ifaces.insert(i, v),
                    None => self.ifaces.remove(&i),
                };
                StateEdit::Iface(i, old)
            }
            StateEdit::Settings {
                i,
                cfg,
                enable,
                public_key,
                addresses,
                drift_repair,
            } => match self.ifaces.get_mut(&i) {
                Some(a) => StateEdit::Settings {
                    i,
                    cfg: std::mem::replace(&mut a.cfg, cfg),
                    enable: std::mem::replace(&mut a.enable, enable),
                    public_key: std::mem::replace(&mut a.public_key, public_key),
                    addresses: std::mem::replace(&mut a.addresses, addresses),
                    drift_repair: std::mem::replace(&mut a.drift_repair, drift_repair),
                },
                None => StateEdit::Routes {
                    i,
                    add: vec![],
                    remove: vec![],
                },
            },
            StateEdit::Peer(i, p, v) => match self.ifaces.get_mut(&i) {
                Some(a) => StateEdit::Peer(i, p, a.set_peer(p, v)),
                None => StateEdit::Peer(i, p, None),
            },
            StateEdit::Routes { i, add, remove } => {
                if let Some(a) = self.ifaces.get_mut(&i) {
                    for r in &remove {
                        a.routes.remove(r);
                    }
                    for r in &add {
                        a.routes.insert(*r);
                    }
                }
                StateEdit::Routes {
                    i,
                    add: remove,
                    remove: add,
                }
            }
        }
    }

    /// Apply edits in order; returns the inverses in the order to apply them.
    pub fn edit_all(&mut self, edits: Vec<StateEdit>) -> Vec<StateEdit> {
        let mut inv: Vec<StateEdit> = edits.into_iter().map(|e| self.edit(e)).collect();
        inv.reverse();
        inv
    }
}

/// Resolve `host` (IP literal, IPv6 with `%zone`, or DNS name) and port.
pub fn resolve_endpoint(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if let Some((addr, zone)) = host.split_once('%') {
        if let Ok(v6) = addr.parse::<std::net::Ipv6Addr>() {
            let scope = zone
                .parse::<u32>()
                .ok()
                .or_else(|| crate::backend::netlink::link_index(zone));
            return match scope {
                Some(s) => Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, s))),
                None => Err(format!("endpoint {host}: no interface {zone:?}")),
            };
        }
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve endpoint host name {host:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("endpoint host name {host:?} has no address"))
}

/// A planning failure, with the YANG path it concerns.
#[derive(Debug)]
pub struct PlanError {
    pub path: String,
    pub message: String,
}

fn perr(path: String, message: impl Into<String>) -> PlanError {
    PlanError {
        path,
        message: message.into(),
    }
}

fn iface_cfg(m: &IfaceModel) -> Result<(InterfaceConfig, PublicKey), PlanError> {
    let base = model::iface_path(m.instance);
    let text = m.private_key.as_deref().ok_or_else(|| {
        perr(
            format!("{base}/private-key"),
            "no private key (prepare did not run)",
        )
    })?;
    let key = SecretKey::from_base64(text)
        .map_err(|e| perr(format!("{base}/private-key"), format!("private key {e}")))?;
    let public = key.public_key();
    Ok((
        InterfaceConfig {
            name: model::iface_name(m.instance),
            private_key: key,
            listen_port: m.listen_port,
            mtu: m.mtu,
            up: m.enable,
        },
        public,
    ))
}

fn parse_nets(list: &[String], path: &str, leaf: &str) -> Result<Vec<IpNet>, PlanError> {
    let mut v = Vec::with_capacity(list.len());
    for s in list {
        let n: IpNet = s.parse().map_err(|_| {
            perr(
                format!("{path}/{leaf}[.='{s}']"),
                format!("{s} is not an IP prefix"),
            )
        })?;
        v.push(n);
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// Turn a peer as written into an entry; resolves the endpoint only when
/// the peer is to be programmed.
fn peer_entry(i: u16, m: &PeerModel, iface_enabled: bool) -> Result<PeerEntry, PlanError> {
    let base = model::peer_path(i, m.instance);
    let public_key = PublicKey::from_base64(&m.public_key)
        .map_err(|e| perr(format!("{base}/public-key"), format!("public key {e}")))?;
    let allowed_ips = parse_nets(&m.allowed_ips, &base, "allowed-ip")?;
    let programmed = if iface_enabled && m.enable {
        let preshared_key = match &m.preshared_key {
            Some(t) => Some(SecretKey::from_base64(t).map_err(|e| {
                perr(
                    format!("{base}/preshared-key"),
                    format!("preshared key {e}"),
                )
            })?),
            None => None,
        };
        let endpoint = match &m.endpoint {
            Some(h) => Some(resolve_endpoint(h, m.listen_port).map_err(|e| {
                perr(
                    format!("{base}/endpoint"),
                    format!("peer {} of wg{i}: {e}", m.instance),
                )
            })?),
            None => None,
        };
        Some(PeerConfig {
            public_key,
            preshared_key,
            endpoint,
            persistent_keepalive: m.persistent_keepalive,
            allowed_ips: allowed_ips.clone(),
        })
    } else {
        None
    };
    Ok(PeerEntry {
        enable: m.enable,
        public_key,
        allowed_ips,
        programmed,
    })
}

/// The applied picture of an interface the backend adopted (it existed
/// before this process; kernel interfaces outlive the agent): what the
/// system has, each system peer under the configured peer instance with the
/// same public key in `new`. Peers `new` does not have get instance numbers
/// `new` does not use, so planning against this picture removes them.
pub fn adopted_iface(i: u16, ad: &Adopted, new: &DataTree<'static>) -> AppliedIface {
    let configured: HashMap<PublicKey, u32> = model::read_all_peers(new, i)
        .iter()
        .filter_map(|p| {
            PublicKey::from_base64(&p.public_key)
                .ok()
                .map(|k| (k, p.instance))
        })
        .collect();
    let used: BTreeSet<u32> = configured.values().copied().collect();
    let mut spare = (0..=u32::MAX).rev().filter(|n| !used.contains(n));
    let mut a = AppliedIface {
        cfg: ad.cfg.clone(),
        enable: ad.cfg.up,
        public_key: ad.cfg.private_key.public_key(),
        addresses: ad.addresses.iter().copied().collect(),
        routes: ad.routes.iter().copied().collect(),
        drift_repair: false,
        peers: HashMap::new(),
        owner: HashMap::new(),
    };
    for p in &ad.peers {
        let instance = match configured.get(&p.public_key) {
            Some(&n) => n,
            None => spare.next().unwrap_or(u32::MAX),
        };
        a.set_peer(
            instance,
            Some(PeerEntry {
                enable: true,
                public_key: p.public_key,
                allowed_ips: p.allowed_ips.clone(),
                programmed: Some(p.clone()),
            }),
        );
    }
    a
}

/// For an adopted interface `i`, replace the plan's route operations (which
/// assume the routes are those of the programmed peers' allowed-ips) with the
/// difference between the routes the system has (`applied`'s, from
/// [`adopted_iface`]) and those `new` wants.
pub fn reconcile_routes(
    plan: &mut Plan,
    applied: &Applied,
    new: &DataTree<'static>,
    i: u16,
) -> Result<(), PlanError> {
    let (Some(a), Some(m)) = (applied.ifaces.get(&i), model::read_iface(new, i)) else {
        return Ok(());
    };
    let wanted = full_iface(new, &m)?.routes;
    let name = &a.cfg.name;
    plan.ops
        .retain(|op| !matches!(op, Op::AddRoute(n, _) | Op::RemoveRoute(n, _) if n == name));
    plan.edits
        .retain(|e| !matches!(e, StateEdit::Routes { i: j, .. } if *j == i));
    let remove: Vec<IpNet> = a.routes.difference(&wanted).copied().collect();
    let add: Vec<IpNet> = wanted.difference(&a.routes).copied().collect();
    let mut ops: Vec<Op> = remove
        .iter()
        .map(|r| Op::RemoveRoute(name.clone(), *r))
        .collect();
    ops.append(&mut plan.ops);
    ops.extend(add.iter().map(|r| Op::AddRoute(name.clone(), *r)));
    plan.ops = ops;
    if !add.is_empty() || !remove.is_empty() {
        plan.edits.push(StateEdit::Routes { i, add, remove });
    }
    Ok(())
}

/// The ops and state edits of one commit.
#[derive(Debug, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub edits: Vec<StateEdit>,
}

/// Build the plan for the touched interfaces.
pub fn plan(
    applied: &Applied,
    new: &DataTree<'static>,
    touched: &Touched,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for (&i, t) in touched {
        plan_iface(applied, new, i, t, &mut plan)?;
    }
    Ok(plan)
}

fn full_iface(new: &DataTree<'static>, m: &IfaceModel) -> Result<AppliedIface, PlanError> {
    let i = m.instance;
    let (cfg, public_key) = iface_cfg(m)?;
    let addresses = parse_nets(&m.addresses, &model::iface_path(i), "address")?
        .into_iter()
        .collect();
    let models = model::read_all_peers(new, i);
    let mut a = AppliedIface {
        cfg,
        enable: m.enable,
        public_key,
        addresses,
        routes: BTreeSet::new(),
        drift_repair: m.drift_repair,
        peers: HashMap::with_capacity(models.len()),
        owner: HashMap::with_capacity(models.len()),
    };
    for pm in models {
        let e = peer_entry(i, &pm, m.enable)?;
        if let Some(p) = &e.programmed {
            a.routes.extend(p.allowed_ips.iter().copied());
        }
        a.set_peer(pm.instance, Some(e));
    }
    Ok(a)
}

fn plan_iface(
    applied: &Applied,
    new: &DataTree<'static>,
    i: u16,
    t: &IfaceTouch,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let name = model::iface_name(i);
    let old = applied.ifaces.get(&i);
    let new_settings = if t.settings || t.whole || old.is_none() {
        model::read_iface(new, i)
    } else {
        // Only peers changed: the interface exists in new iff it exists in old.
        old.map(|_| IfaceModel {
            instance: i,
            enable: true,
            private_key: None,
            listen_port: 0,
            mtu: 0,
            addresses: vec![],
            drift_repair: false,
        })
    };
    match (old, new_settings) {
        (None, None) => Ok(()),
        (Some(o), None) => {
            let peers: Vec<PeerConfig> = o
                .peers
                .values()
                .filter_map(|e| e.programmed.clone())
                .collect();
            plan.ops.push(Op::RemoveInterface {
                cfg: o.cfg.clone(),
                addresses: o.addresses.iter().copied().collect(),
                peers,
                routes: o.routes.iter().copied().collect(),
            });
            plan.edits.push(StateEdit::Iface(i, None));
            Ok(())
        }
        (None, Some(m)) => {
            let a = full_iface(new, &m)?;
            plan.ops.push(Op::CreateInterface(a.cfg.clone()));
            for addr in &a.addresses {
                plan.ops.push(Op::AddAddress(name.clone(), *addr));
            }
            let mut programmed: Vec<PeerConfig> = a
                .peers
                .values()
                .filter_map(|e| e.programmed.clone())
                .collect();
            programmed.sort();
            if !programmed.is_empty() {
                plan.ops.push(Op::SetPeers(
                    name.clone(),
                    programmed.into_iter().map(|p| (None, p)).collect(),
                ));
            }
            for r in &a.routes {
                plan.ops.push(Op::AddRoute(name.clone(), *r));
            }
            plan.edits.push(StateEdit::Iface(i, Some(a)));
            Ok(())
        }
        (Some(o), Some(m)) => {
            // New interface-level state.
            let settings_changed = t.settings || t.whole;
            let (cfg, public_key, enable, addresses) = if settings_changed {
                let (cfg, pk) = iface_cfg(&m)?;
                let addrs: BTreeSet<IpNet> =
                    parse_nets(&m.addresses, &model::iface_path(i), "address")?
                        .into_iter()
                        .collect();
                (cfg, pk, m.enable, addrs)
            } else {
                (o.cfg.clone(), o.public_key, o.enable, o.addresses.clone())
            };
            let drift_repair = if settings_changed {
                m.drift_repair
            } else {
                o.drift_repair
            };
            // Which peers to recompute.
            let all = t.whole || enable != o.enable;
            let instances: BTreeSet<u32> = if all {
                let mut s: BTreeSet<u32> = o.peers.keys().copied().collect();
                s.extend(model::read_all_peers(new, i).iter().map(|p| p.instance));
                s
            } else {
                t.peers.clone()
            };
            let mut remove_peers = Vec::new();
            let mut set_peers = Vec::new();
            let mut old_routes = BTreeSet::new();
            let mut new_routes = BTreeSet::new();
            let mut peer_edits = Vec::new();
            for p in instances {
                let before = o.peers.get(&p);
                let after = match model::read_peer(new, i, p) {
                    Some(pm) => Some(peer_entry(i, &pm, enable)?),
                    None => None,
                };
                let old_prog = before.and_then(|e| e.programmed.clone());
                let new_prog = after.as_ref().and_then(|e| e.programmed.clone());
                if let Some(op) = &old_prog {
                    old_routes.extend(op.allowed_ips.iter().copied());
                }
                if let Some(np) = &new_prog {
                    new_routes.extend(np.allowed_ips.iter().copied());
                }
                match (&old_prog, &new_prog) {
                    (Some(a), Some(b)) if a.public_key == b.public_key => {
                        if a != b {
                            set_peers.push((Some(a.clone()), b.clone()));
                        }
                    }
                    _ => {
                        if let Some(a) = &old_prog {
                            remove_peers.push(a.clone());
                        }
                        if let Some(b) = &new_prog {
                            set_peers.push((None, b.clone()));
                        }
                    }
                }
                if before != after.as_ref() {
                    peer_edits.push(StateEdit::Peer(i, p, after));
                }
            }
            let route_del: Vec<IpNet> = old_routes.difference(&new_routes).copied().collect();
            let route_add: Vec<IpNet> = new_routes.difference(&old_routes).copied().collect();
            for r in &route_del {
                plan.ops.push(Op::RemoveRoute(name.clone(), *r));
            }
            if !remove_peers.is_empty() {
                plan.ops.push(Op::RemovePeers(name.clone(), remove_peers));
            }
            for a in o.addresses.difference(&addresses) {
                plan.ops.push(Op::RemoveAddress(name.clone(), *a));
            }
            if cfg != o.cfg {
                plan.ops.push(Op::SetInterface {
                    old: o.cfg.clone(),
                    new: cfg.clone(),
                });
            }
            for a in addresses.difference(&o.addresses) {
                plan.ops.push(Op::AddAddress(name.clone(), *a));
            }
            if !set_peers.is_empty() {
                plan.ops.push(Op::SetPeers(name.clone(), set_peers));
            }
            for r in &route_add {
                plan.ops.push(Op::AddRoute(name.clone(), *r));
            }
            if settings_changed {
                plan.edits.push(StateEdit::Settings {
                    i,
                    cfg,
                    enable,
                    public_key,
                    addresses,
                    drift_repair,
                });
            }
            plan.edits.extend(peer_edits);
            if !route_add.is_empty() || !route_del.is_empty() {
                plan.edits.push(StateEdit::Routes {
                    i,
                    add: route_add,
                    remove: route_del,
                });
            }
            Ok(())
        }
    }
}
