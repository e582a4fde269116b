//! Drift: the data plane changed behind the plugin's back (`wg set`, `ip
//! link del`, a crashed device). [`compare`] sets one applied interface
//! ([`AppliedIface`], what the commits programmed) against the backend's
//! [`InterfaceDump`] of it, field by field — only the fields configuration
//! sets — and yields the differences with the plan operations that put it
//! back; [`DriftTracker`] remembers since when each difference exists, so
//! a notification goes out once per new difference, and fills the
//! operational `drift` lists.
//!
//! Not compared: a peer's endpoint (it follows the peer when it roams, and
//! an endpoint set with `wg set` cannot be told from roaming), counters and
//! handshakes, routes via the interface the agent did not add (a routing
//! daemon may own them), IPv6 link-local addresses (the kernel adds them).
//! Interfaces that are not in running are never looked at.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use ipnet::IpNet;
use wgnetconf_plugin_api::yang5::context::Context;
use wgnetconf_plugin_api::PluginError;
use yang5::data::{Data, DataTree};

use crate::backend::{InterfaceConfig, InterfaceDump, PeerConfig};
use crate::keys::{PublicKey, SecretKey};
use crate::plan::{Applied, AppliedIface, Op};
use crate::state::date_and_time;
use crate::{events, model};

/// What differs (YANG typedef `drift-item`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    InterfaceMissing,
    PrivateKey,
    ListenPort,
    Mtu,
    LinkState,
    Address,
    Route,
    UnexpectedPeer,
    PeerMissing,
    PresharedKey,
    AllowedIps,
    PersistentKeepalive,
}

impl Item {
    pub fn as_str(self) -> &'static str {
        match self {
            Item::InterfaceMissing => "interface-missing",
            Item::PrivateKey => "private-key",
            Item::ListenPort => "listen-port",
            Item::Mtu => "mtu",
            Item::LinkState => "link-state",
            Item::Address => "address",
            Item::Route => "route",
            Item::UnexpectedPeer => "unexpected-peer",
            Item::PeerMissing => "peer-missing",
            Item::PresharedKey => "preshared-key",
            Item::AllowedIps => "allowed-ips",
            Item::PersistentKeepalive => "persistent-keepalive",
        }
    }
}

/// One difference of one interface: `peer` names the peer instance for a
/// peer's field, `None` for the interface's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub peer: Option<u32>,
    pub item: Item,
    /// Configured and found values, never a secret.
    pub detail: String,
}

/// The differences of one interface and the operations that repair them.
#[derive(Debug, Default)]
pub struct IfaceDrift {
    pub differences: Vec<Difference>,
    /// In the order a commit runs them (removals, settings, additions,
    /// routes); peers that did not drift are not named.
    pub repair: Vec<Op>,
}

fn nets(v: &[IpNet]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn missing_extra(missing: &[IpNet], extra: &[IpNet]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", nets(missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("unexpected {}", nets(extra)));
    }
    parts.join("; ")
}

fn up_down(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

fn link_local_v6(n: &IpNet) -> bool {
    matches!(n, IpNet::V6(v) if v.addr().segments()[0] & 0xffc0 == 0xfe80)
}

/// `a` against what the backend has of it (`None`: the interface is gone).
pub fn compare(a: &AppliedIface, found: Option<&InterfaceDump>) -> IfaceDrift {
    let mut out = IfaceDrift::default();
    let name = &a.cfg.name;
    let want_peers: BTreeMap<u32, &PeerConfig> = a
        .peers
        .iter()
        .filter_map(|(&p, e)| e.programmed.as_ref().map(|c| (p, c)))
        .collect();
    let Some(d) = found else {
        out.differences.push(Difference {
            peer: None,
            item: Item::InterfaceMissing,
            detail: format!("{name} does not exist"),
        });
        // Re-created whole: what removing it would undo.
        let mut peers: Vec<PeerConfig> = want_peers.values().map(|&p| p.clone()).collect();
        peers.sort();
        out.repair = Op::RemoveInterface {
            cfg: a.cfg.clone(),
            addresses: a.addresses.iter().copied().collect(),
            peers,
            routes: a.routes.iter().copied().collect(),
        }
        .inverse();
        return out;
    };
    let mut diff = |peer: Option<u32>, item: Item, detail: String| {
        out.differences.push(Difference { peer, item, detail })
    };

    // Interface settings.
    let key_differs = d.public_key != Some(a.public_key);
    if key_differs {
        diff(
            None,
            Item::PrivateKey,
            format!(
                "configured public key {}, found {}",
                a.public_key.to_base64(),
                d.public_key
                    .map(|k| k.to_base64())
                    .unwrap_or_else(|| "none".into())
            ),
        );
    }
    // listen-port 0 asks for any free port: nothing to compare.
    let port_differs = a.cfg.listen_port != 0 && a.cfg.listen_port != d.listen_port;
    if port_differs {
        diff(
            None,
            Item::ListenPort,
            format!("configured {}, found {}", a.cfg.listen_port, d.listen_port),
        );
    }
    if a.cfg.mtu != d.mtu {
        diff(
            None,
            Item::Mtu,
            format!("configured {}, found {}", a.cfg.mtu, d.mtu),
        );
    }
    if a.cfg.up != d.up {
        diff(
            None,
            Item::LinkState,
            format!("configured {}, found {}", up_down(a.cfg.up), up_down(d.up)),
        );
    }
    let found_addrs: BTreeSet<IpNet> = d.addresses.iter().copied().collect();
    let addr_missing: Vec<IpNet> = a.addresses.difference(&found_addrs).copied().collect();
    // The kernel's own IPv6 link-local address is not unexpected (one
    // that is configured is compared like any other).
    let addr_extra: Vec<IpNet> = found_addrs
        .difference(&a.addresses)
        .copied()
        .filter(|n| !link_local_v6(n))
        .collect();
    if !addr_missing.is_empty() || !addr_extra.is_empty() {
        diff(
            None,
            Item::Address,
            missing_extra(&addr_missing, &addr_extra),
        );
    }
    let found_routes: BTreeSet<IpNet> = d.routes.iter().copied().collect();
    let route_missing: Vec<IpNet> = a.routes.difference(&found_routes).copied().collect();
    if !route_missing.is_empty() {
        diff(None, Item::Route, missing_extra(&route_missing, &[]));
    }

    // Peers, by public key.
    let found_peers: HashMap<PublicKey, &PeerConfig> =
        d.peers.iter().map(|p| (p.public_key, p)).collect();
    let wanted_keys: BTreeSet<PublicKey> = want_peers.values().map(|p| p.public_key).collect();
    let extra: Vec<PeerConfig> = d
        .peers
        .iter()
        .filter(|p| !wanted_keys.contains(&p.public_key))
        .cloned()
        .collect();
    if !extra.is_empty() {
        let keys: Vec<String> = extra.iter().map(|p| p.public_key.to_base64()).collect();
        diff(None, Item::UnexpectedPeer, keys.join(" "));
    }
    let mut set_peers = Vec::new();
    for (&p, &w) in &want_peers {
        let Some(&f) = found_peers.get(&w.public_key) else {
            diff(
                Some(p),
                Item::PeerMissing,
                format!("public key {}", w.public_key.to_base64()),
            );
            set_peers.push((None, w.clone()));
            continue;
        };
        let mut drifted = false;
        if f.preshared_key != w.preshared_key {
            let has = |k: &Option<SecretKey>| if k.is_some() { "set" } else { "none" };
            diff(
                Some(p),
                Item::PresharedKey,
                format!(
                    "configured {}, found {} (values not shown)",
                    has(&w.preshared_key),
                    has(&f.preshared_key)
                ),
            );
            drifted = true;
        }
        if f.allowed_ips != w.allowed_ips {
            diff(
                Some(p),
                Item::AllowedIps,
                format!(
                    "configured {}, found {}",
                    nets(&w.allowed_ips),
                    nets(&f.allowed_ips)
                ),
            );
            drifted = true;
        }
        if f.persistent_keepalive != w.persistent_keepalive {
            diff(
                Some(p),
                Item::PersistentKeepalive,
                format!(
                    "configured {}, found {}",
                    w.persistent_keepalive, f.persistent_keepalive
                ),
            );
            drifted = true;
        }
        if drifted {
            // The endpoint stays the one in use: a roamed peer is not
            // sent back to its configured address.
            let mut put = w.clone();
            put.endpoint = f.endpoint;
            set_peers.push((Some(f.clone()), put));
        }
    }

    // The repair, in the order plan.rs runs a commit.
    if !extra.is_empty() {
        out.repair.push(Op::RemovePeers(name.clone(), extra));
    }
    for n in &addr_extra {
        out.repair.push(Op::RemoveAddress(name.clone(), *n));
    }
    if key_differs || port_differs || a.cfg.mtu != d.mtu || a.cfg.up != d.up {
        let old = InterfaceConfig {
            name: name.clone(),
            // The key in use is not read back; any other key makes the
            // backend set ours (an undo after a later failure would set
            // this one, which no peer knows: the interface stays drifted).
            private_key: if key_differs {
                SecretKey([0; 32])
            } else {
                a.cfg.private_key.clone()
            },
            listen_port: if port_differs {
                d.listen_port
            } else {
                a.cfg.listen_port
            },
            mtu: d.mtu,
            up: d.up,
        };
        out.repair.push(Op::SetInterface {
            old,
            new: a.cfg.clone(),
        });
    }
    for n in &addr_missing {
        out.repair.push(Op::AddAddress(name.clone(), *n));
    }
    if !set_peers.is_empty() {
        out.repair.push(Op::SetPeers(name.clone(), set_peers));
    }
    for n in &route_missing {
        out.repair.push(Op::AddRoute(name.clone(), *n));
    }
    out
}

/// A notification to send (`drift-detected`, `drift-repaired`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Detected {
        iface: u16,
        difference: Difference,
    },
    Repaired {
        iface: u16,
        differences: u32,
        /// `Err(message)`: the repair failed and was undone.
        result: Result<(), String>,
    },
}

/// One difference as reported: since when, and its latest detail.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    since: SystemTime,
    detail: String,
}

/// The differences the last check left in place, since when each exists,
/// and the notifications not yet sent.
#[derive(Debug, Default)]
pub struct DriftTracker {
    known: BTreeMap<(u16, Option<u32>, Item), Known>,
    /// The last failed repair's message per interface: a repair that keeps
    /// failing the same way is notified once.
    failing: BTreeMap<u16, String>,
    last_check: Option<SystemTime>,
    pending: Vec<Event>,
}

impl DriftTracker {
    /// Records one check: `found` is every interface's differences (before
    /// any repair), `repaired` each repaired interface's outcome. New
    /// differences are notified; repaired ones and those no longer found
    /// are forgotten.
    pub fn record(
        &mut self,
        now: SystemTime,
        found: Vec<(u16, Difference)>,
        repaired: Vec<(u16, u32, Result<(), String>)>,
    ) {
        let fixed: BTreeSet<u16> = repaired
            .iter()
            .filter(|r| r.2.is_ok())
            .map(|r| r.0)
            .collect();
        let mut next = BTreeMap::new();
        for (i, d) in found {
            let key = (i, d.peer, d.item);
            let since = match self.known.get(&key) {
                Some(k) => k.since,
                None => {
                    // Logged once, like the notification.
                    tracing::warn!(
                        "wireguard: drift on {}{}: {}: {}",
                        model::iface_name(i),
                        d.peer.map(|p| format!(" peer {p}")).unwrap_or_default(),
                        d.item.as_str(),
                        d.detail
                    );
                    self.pending.push(Event::Detected {
                        iface: i,
                        difference: d.clone(),
                    });
                    now
                }
            };
            if !fixed.contains(&i) {
                next.insert(
                    key,
                    Known {
                        since,
                        detail: d.detail,
                    },
                );
            }
        }
        self.known = next;
        let mut failing = BTreeMap::new();
        for (i, n, result) in repaired {
            if let Err(e) = &result {
                failing.insert(i, e.clone());
                if self.failing.get(&i) == Some(e) {
                    continue;
                }
            }
            self.pending.push(Event::Repaired {
                iface: i,
                differences: n,
                result,
            });
        }
        self.failing = failing;
        self.last_check = Some(now);
    }

    /// The notifications recorded since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    /// `last-drift-check` and the `drift` lists of interfaces and peers
    /// that are in `oper` (running).
    pub fn fill(&self, applied: &Applied, oper: &mut DataTree<'static>) -> Result<(), PluginError> {
        let set = |oper: &mut DataTree<'static>, path: &str, value: &str| {
            oper.new_path(path, Some(value), false)
                .map(|_| ())
                .map_err(|e| PluginError::failed(format!("operational {path}: {e}")))
        };
        if let Some(t) = self.last_check {
            if oper.find_path(model::TOP).is_ok() {
                set(
                    oper,
                    &format!("{}/last-drift-check", model::TOP),
                    &date_and_time(t),
                )?;
            }
        }
        for ((i, peer, item), k) in &self.known {
            if !applied.ifaces.contains_key(i) {
                continue;
            }
            let base = match peer {
                Some(p) => model::peer_path(*i, *p),
                None => model::iface_path(*i),
            };
            if oper.find_path(&base).is_err() {
                continue;
            }
            let entry = format!("{base}/drift[item='{}']", item.as_str());
            set(oper, &format!("{entry}/since"), &date_and_time(k.since))?;
            set(oper, &format!("{entry}/detail"), &k.detail)?;
        }
        Ok(())
    }
}

/// The notification tree of one event.
pub fn notification(ctx: &'static Context, e: &Event) -> Result<DataTree<'static>, yang5::Error> {
    match e {
        Event::Detected { iface, difference } => events::tree(
            ctx,
            "drift-detected",
            &[
                ("wireguard", Some(iface.to_string())),
                ("peer", difference.peer.map(|p| p.to_string())),
                ("item", Some(difference.item.as_str().to_string())),
                ("detail", Some(difference.detail.clone())),
            ],
        ),
        Event::Repaired {
            iface,
            differences,
            result,
        } => {
            let outcome = if result.is_ok() { "repaired" } else { "failed" };
            events::tree(
                ctx,
                "drift-repaired",
                &[
                    ("wireguard", Some(iface.to_string())),
                    ("result", Some(outcome.to_string())),
                    ("differences", Some(differences.to_string())),
                    ("error-message", result.as_ref().err().cloned()),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryLog;
    use crate::backend::Backend;
    use crate::keys::PublicKey;
    use crate::tests::{config, peer, Harness};
    use wgnetconf_plugin_api::Plugin;

    const IFACE: &str = ",\"address\":[\"10.0.0.1/24\"]";
    const BASE: &str = "/wgnetconf-tunnel:tunnel/wireguard[instance='1']";

    fn key(p: &crate::tests::Peer) -> PublicKey {
        PublicKey::from_base64(&p.key).expect("key")
    }

    /// Site with three peers on the memory backend; the handle changes
    /// the "data plane" behind the plugin's back.
    fn site(policy: &str) -> (Harness, MemoryLog, Vec<crate::tests::Peer>, String) {
        let b = crate::backend::memory::MemoryBackend::new();
        let log = b.log();
        let mut h = Harness::new(Box::new(b));
        h.plugin.start(crate::tests::context()).expect("start");
        let ps = vec![
            peer(1, &["10.0.1.0/24"], ",\"endpoint\":\"192.0.2.1\""),
            peer(2, &["10.0.2.0/24"], ""),
            peer(3, &["10.0.3.0/24"], ""),
        ];
        let iface = format!("{IFACE},\"private-key\":\"{}\"{policy}", crate::genkey());
        h.commit(&config(&iface, &ps)).expect("commit");
        (h, log, ps, iface)
    }

    fn oper(h: &mut Harness) -> DataTree<'static> {
        let mut oper = h.running.duplicate().expect("dup");
        h.plugin
            .operational(&h.running, &mut oper)
            .expect("operational");
        oper
    }

    fn get(oper: &DataTree<'static>, path: &str) -> Option<String> {
        oper.find_path(path).ok().and_then(|n| n.value_canonical())
    }

    fn printed(h: &mut Harness) -> Vec<String> {
        h.plugin
            .events()
            .iter()
            .map(|t| {
                t.print_string(
                    yang5::data::DataFormat::XML,
                    yang5::data::DataPrinterFlags::WITH_SIBLINGS,
                )
                .expect("print")
            })
            .collect()
    }

    #[test]
    fn out_of_band_peer_changes_are_reported_once_then_repaired_alone() {
        let (mut h, log, ps, _) = site("");
        let before = log.dump();
        let mut oob = log.out_of_band();
        let mut moved = before[0]
            .peers
            .iter()
            .find(|p| p.public_key == key(&ps[0]))
            .cloned()
            .expect("p1");
        moved.allowed_ips = vec!["10.9.0.0/24".parse().expect("net")];
        oob.set_peers("wg1", &[moved]).expect("wg set allowed-ips");
        oob.remove_peers("wg1", &[key(&ps[1])])
            .expect("wg set remove");

        // Policy report: found, notified, left alone.
        log.clear();
        let r = h.plugin.check_drift(false);
        assert_eq!((r.found, r.repaired, r.failed), (2, 0, 0));
        assert!(log.calls().is_empty(), "{:?}", log.calls());
        let ev = printed(&mut h);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(
            ev[0].contains("<item>allowed-ips</item>") && ev[0].contains("<peer>1</peer>"),
            "{ev:?}"
        );
        assert!(
            ev[0].contains("configured 10.0.1.0/24, found 10.9.0.0/24"),
            "{ev:?}"
        );
        assert!(
            ev[1].contains("<item>peer-missing</item>") && ev[1].contains("<peer>2</peer>"),
            "{ev:?}"
        );
        let o = oper(&mut h);
        let since = get(
            &o,
            &format!("{BASE}/peer[instance='1']/drift[item='allowed-ips']/since"),
        )
        .expect("since in operational state");
        assert!(get(
            &o,
            &format!("{BASE}/peer[instance='2']/drift[item='peer-missing']/detail")
        )
        .is_some());
        assert!(get(&o, "/wgnetconf-tunnel:tunnel/last-drift-check").is_some());
        assert!(o
            .find_path(&format!("{BASE}/peer[instance='3']/drift"))
            .is_err());

        // A second check: the same differences, no new notification, the
        // same "since".
        assert_eq!(h.plugin.check_drift(false).found, 2);
        assert!(printed(&mut h).is_empty());
        let o = oper(&mut h);
        assert_eq!(
            get(
                &o,
                &format!("{BASE}/peer[instance='1']/drift[item='allowed-ips']/since")
            ),
            Some(since)
        );

        // Repair: one set_peers naming the two drifted peers, peer 3 untouched.
        log.clear();
        let r = h.plugin.check_drift(true);
        assert_eq!((r.found, r.repaired, r.failed), (2, 2, 0));
        let calls = log.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].starts_with("set_peers wg1 "), "{calls:?}");
        assert!(
            calls[0].contains(&ps[0].key) && calls[0].contains(&ps[1].key),
            "{calls:?}"
        );
        assert!(!calls[0].contains(&ps[2].key), "{calls:?}");
        assert_eq!(log.dump(), before);
        let ev = printed(&mut h);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(
            ev[0].contains("<drift-repaired") && ev[0].contains("<result>repaired</result>"),
            "{ev:?}"
        );
        let o = oper(&mut h);
        assert!(o
            .find_path(&format!("{BASE}/peer[instance='1']/drift"))
            .is_err());
        assert_eq!(h.plugin.check_drift(false).found, 0);
    }

    #[test]
    fn a_kernel_link_local_address_is_not_drift() {
        let (mut h, log, _, _) = site("");
        log.out_of_band()
            .add_address("wg1", "fe80::1/64".parse().expect("net"))
            .expect("link-local");
        assert_eq!(h.plugin.check_drift(false).found, 0);
        log.out_of_band()
            .add_address("wg1", "2001:db8::1/64".parse().expect("net"))
            .expect("global");
        assert_eq!(h.plugin.check_drift(false).found, 1);
    }

    #[test]
    fn a_roamed_endpoint_is_not_drift() {
        let (mut h, log, ps, _) = site("");
        let mut p1 = log.dump()[0]
            .peers
            .iter()
            .find(|p| p.public_key == key(&ps[0]))
            .cloned()
            .expect("p1");
        p1.endpoint = Some("198.51.100.77:40000".parse().expect("addr"));
        log.out_of_band().set_peers("wg1", &[p1]).expect("roam");
        assert_eq!(h.plugin.check_drift(false).found, 0);
        assert!(printed(&mut h).is_empty());
    }

    #[test]
    fn a_deleted_interface_is_recreated_whole_under_policy_repair() {
        let (mut h, log, _, _) = site(",\"drift-policy\":\"repair\"");
        let before = log.dump();
        log.out_of_band()
            .remove_interface("wg1")
            .expect("ip link del");
        let r = h.plugin.check_drift(false);
        assert_eq!((r.found, r.repaired), (1, 1));
        assert_eq!(log.dump(), before);
        let ev = printed(&mut h);
        assert!(ev[0].contains("<item>interface-missing</item>"), "{ev:?}");
        assert!(ev[1].contains("<result>repaired</result>"), "{ev:?}");
    }

    #[test]
    fn settings_addresses_and_unexpected_peers_are_put_back() {
        let (mut h, log, _, _) = site("");
        let before = log.dump();
        let mut oob = log.out_of_band();
        let mut cfg = h.plugin.applied().ifaces[&1].cfg.clone();
        let old = cfg.clone();
        cfg.listen_port = 40001;
        cfg.mtu = 1300;
        oob.set_interface(&old, &cfg).expect("port, mtu");
        oob.add_address("wg1", "10.77.0.1/24".parse().expect("net"))
            .expect("addr");
        oob.remove_address("wg1", "10.0.0.1/24".parse().expect("net"))
            .expect("addr");
        oob.remove_route("wg1", "10.0.3.0/24".parse().expect("net"))
            .expect("route");
        let stranger = PeerConfig {
            public_key: PublicKey([9; 32]),
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: 0,
            allowed_ips: vec!["10.66.0.0/24".parse().expect("net")],
        };
        oob.set_peers("wg1", &[stranger]).expect("peer");
        let r = h.plugin.check_drift(false);
        assert_eq!(r.found, 5, "{:?}", printed(&mut h));
        let o = oper(&mut h);
        assert_eq!(
            get(&o, &format!("{BASE}/drift[item='address']/detail")).as_deref(),
            Some("missing 10.0.0.1/24; unexpected 10.77.0.1/24")
        );
        assert_eq!(
            get(&o, &format!("{BASE}/drift[item='listen-port']/detail")).as_deref(),
            Some("configured 51820, found 40001")
        );
        assert!(get(&o, &format!("{BASE}/drift[item='unexpected-peer']/detail")).is_some());
        assert!(get(&o, &format!("{BASE}/drift[item='route']/detail")).is_some());
        assert_eq!(h.plugin.check_drift(true).repaired, 5);
        assert_eq!(log.dump(), before);
    }

    #[test]
    fn a_failed_repair_is_undone_reported_and_notified_once() {
        let (mut h, log, _, _) = site("");
        log.out_of_band()
            .remove_interface("wg1")
            .expect("ip link del");
        let _ = printed(&mut h);
        // create_interface, then the first address fails.
        log.fail_nth(2);
        let r = h.plugin.check_drift(true);
        assert_eq!((r.found, r.repaired, r.failed), (1, 0, 1));
        assert!(log.dump().is_empty(), "the partial repair was undone");
        let ev = printed(&mut h);
        assert!(
            ev.iter()
                .any(|e| e.contains("<result>failed</result>") && e.contains("injected failure")),
            "{ev:?}"
        );
        let o = oper(&mut h);
        assert!(get(&o, &format!("{BASE}/drift[item='interface-missing']/since")).is_some());
        // Repaired at the next try.
        assert_eq!(h.plugin.check_drift(true).repaired, 1);
        assert_eq!(log.dump().len(), 1);
    }

    #[test]
    fn changing_the_policy_programs_nothing() {
        let (mut h, log, ps, iface) = site("");
        log.clear();
        let iface = format!("{iface},\"drift-policy\":\"repair\"");
        h.commit(&config(&iface, &crate::tests::clone_peers(&ps)))
            .expect("policy");
        assert!(log.calls().is_empty(), "{:?}", log.calls());
        assert!(h.plugin.applied().ifaces[&1].drift_repair);
    }
}
