//! The `wgnetconf-tunnel` YANG data ↔ Rust structs, and which interfaces and
//! peers a commit touches. Reads are by `find_path` on the entries named by
//! the diff, so the cost follows the size of the change, not of the config.

use std::collections::{BTreeMap, BTreeSet};

use yang5::data::{Data, DataDiff, DataNodeRef, DataTree};

pub const MODULE: &str = "wgnetconf-tunnel";
pub const TOP: &str = "/wgnetconf-tunnel:tunnel";

pub fn iface_path(i: u16) -> String {
    format!("{TOP}/wireguard[instance='{i}']")
}

pub fn peer_path(i: u16, p: u32) -> String {
    format!("{TOP}/wireguard[instance='{i}']/peer[instance='{p}']")
}

/// The system interface name of instance `i`.
pub fn iface_name(i: u16) -> String {
    format!("wg{i}")
}

/// Interface-level configuration as written (strings kept for error paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceModel {
    pub instance: u16,
    pub enable: bool,
    pub private_key: Option<String>,
    pub listen_port: u16,
    pub mtu: u16,
    pub addresses: Vec<String>,
    /// `drift-policy repair` (default `report`).
    pub drift_repair: bool,
}

/// One peer as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerModel {
    pub instance: u32,
    pub enable: bool,
    pub public_key: String,
    pub preshared_key: Option<String>,
    pub endpoint: Option<String>,
    pub listen_port: u16,
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<String>,
}

fn value(node: &DataNodeRef<'_>) -> String {
    node.value_canonical().unwrap_or_default()
}

fn parse_bool(s: &str) -> bool {
    s == "true"
}

/// Read one interface's settings (not its peers); `None` if absent.
pub fn read_iface(tree: &DataTree<'static>, i: u16) -> Option<IfaceModel> {
    let node = tree.find_path(&iface_path(i)).ok()?;
    let mut m = IfaceModel {
        instance: i,
        enable: true,
        private_key: None,
        listen_port: 51820,
        mtu: 1420,
        addresses: Vec::new(),
        drift_repair: false,
    };
    for child in node.children() {
        let schema = child.schema();
        match schema.name() {
            "enable" => m.enable = parse_bool(&value(&child)),
            "private-key" => m.private_key = Some(value(&child)),
            "listen-port" => m.listen_port = value(&child).parse().unwrap_or(51820),
            "mtu" => m.mtu = value(&child).parse().unwrap_or(1420),
            "address" => m.addresses.push(value(&child)),
            "drift-policy" => m.drift_repair = value(&child) == "repair",
            // Peers come after the leaves (schema order); stop scanning.
            "peer" => break,
            _ => {}
        }
    }
    Some(m)
}

fn peer_from_node(node: &DataNodeRef<'_>, instance: u32) -> PeerModel {
    let mut m = PeerModel {
        instance,
        enable: true,
        public_key: String::new(),
        preshared_key: None,
        endpoint: None,
        listen_port: 51820,
        persistent_keepalive: 0,
        allowed_ips: Vec::new(),
    };
    for child in node.children() {
        let schema = child.schema();
        match schema.name() {
            "enable" => m.enable = parse_bool(&value(&child)),
            "public-key" => m.public_key = value(&child),
            "preshared-key" => m.preshared_key = Some(value(&child)),
            "endpoint" => m.endpoint = Some(value(&child)),
            "listen-port" => m.listen_port = value(&child).parse().unwrap_or(51820),
            "persistent-keepalive" => m.persistent_keepalive = value(&child).parse().unwrap_or(0),
            "allowed-ip" => m.allowed_ips.push(value(&child)),
            _ => {}
        }
    }
    m
}

/// Read one peer; `None` if absent.
pub fn read_peer(tree: &DataTree<'static>, i: u16, p: u32) -> Option<PeerModel> {
    let node = tree.find_path(&peer_path(i, p)).ok()?;
    Some(peer_from_node(&node, p))
}

/// Every peer of interface `i` (O(peers); for creation, removal and enable
/// toggles only).
pub fn read_all_peers(tree: &DataTree<'static>, i: u16) -> Vec<PeerModel> {
    let Ok(node) = tree.find_path(&iface_path(i)) else {
        return Vec::new();
    };
    node.children()
        .filter(|c| c.schema().name() == "peer")
        .filter_map(|c| {
            let inst = key_of(&c)?.parse().ok()?;
            Some(peer_from_node(&c, inst))
        })
        .collect()
}

/// Instances of every interface in a tree.
pub fn iface_instances(tree: &DataTree<'static>) -> Vec<u16> {
    let Ok(top) = tree.find_path(TOP) else {
        return Vec::new();
    };
    top.children()
        .filter(|c| c.schema().name() == "wireguard")
        .filter_map(|c| key_of(&c)?.parse().ok())
        .collect()
}

fn key_of(node: &DataNodeRef<'_>) -> Option<String> {
    node.list_keys().next().and_then(|k| k.value_canonical())
}

/// What a commit changes in one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfaceTouch {
    /// The entry itself was created or deleted.
    pub whole: bool,
    /// An interface-level leaf changed.
    pub settings: bool,
    /// Peers with any change.
    pub peers: BTreeSet<u32>,
}

/// Interfaces touched by a diff, by instance.
pub type Touched = BTreeMap<u16, IfaceTouch>;

/// Which interfaces and peers a diff touches (cost: the diff's size).
pub fn touched(
    diff: &DataDiff<'static>,
    old: &DataTree<'static>,
    new: &DataTree<'static>,
) -> Touched {
    let mut out = Touched::new();
    for (_op, node) in wgnetconf_plugin_api::diff::changes(diff) {
        let mut wg: Option<(u16, bool)> = None; // (instance, node is the entry)
        let mut peer: Option<u32> = None;
        let mut whole_tunnel = false;
        let node_raw = node.as_raw();
        for anc in node.inclusive_ancestors() {
            let schema = anc.schema();
            match schema.name() {
                "peer" => peer = key_of(&anc).and_then(|k| k.parse().ok()),
                "wireguard" => {
                    wg = key_of(&anc)
                        .and_then(|k| k.parse().ok())
                        .map(|i| (i, anc.as_raw() == node_raw))
                }
                "tunnel" if anc.as_raw() == node_raw => whole_tunnel = true,
                _ => {}
            }
        }
        if whole_tunnel {
            for i in iface_instances(old).into_iter().chain(iface_instances(new)) {
                out.entry(i).or_default().whole = true;
            }
            continue;
        }
        let Some((i, is_entry)) = wg else { continue };
        let t = out.entry(i).or_default();
        if is_entry {
            t.whole = true;
        } else if let Some(p) = peer {
            t.peers.insert(p);
        } else {
            t.settings = true;
        }
    }
    out
}
