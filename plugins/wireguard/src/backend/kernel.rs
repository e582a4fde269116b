//! The Linux WireGuard module, over generic netlink (family `wireguard`) for
//! keys and peers and rtnetlink for the link, addresses and routes.
//!
//! The family is resolved with `CTRL_CMD_GETFAMILY` when the backend opens;
//! without it [`KernelBackend::open`] fails with [`NO_MODULE`]. The kernel
//! updates a peer in place (sessions and counters of an updated peer
//! survive, also when its preshared key or keepalive changes, unlike the
//! userspace backend), and interfaces outlive the agent: shutdown leaves
//! them, and the next start adopts them ([`Backend::adopt`]) and reconciles
//! them to the configuration without recreating them.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};
use netlink_sys::protocols::NETLINK_GENERIC;

use super::netlink::{NlSocket, Rtnl};
use super::{
    Adopted, Backend, BackendError, InterfaceConfig, InterfaceDump, InterfaceState, PeerConfig,
    PeerState, Result,
};
use crate::keys::{PublicKey, SecretKey};

/// The refusal when the WireGuard generic netlink family is missing.
pub const NO_MODULE: &str = "the kernel has no WireGuard module (modprobe wireguard failed or it is not built); use backend = \"boringtun\"";

/// Resolve a generic netlink family id by name.
pub fn resolve_family(sock: &mut NlSocket, name: &str) -> std::io::Result<Option<u16>> {
    let msg = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
    });
    match sock.request(msg, NLM_F_ACK) {
        Ok(replies) => Ok(replies.into_iter().find_map(|r| {
            r.payload.nlas.iter().find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
        })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Does this kernel have the WireGuard family (after trying `modprobe`)?
pub fn family_id() -> Result<u16> {
    let mut sock = NlSocket::new(NETLINK_GENERIC)?;
    let lookup = |sock: &mut NlSocket| {
        resolve_family(sock, "wireguard")
            .map_err(|e| BackendError(format!("generic netlink family lookup: {e}")))
    };
    if let Some(id) = lookup(&mut sock)? {
        return Ok(id);
    }
    // The module may just not be loaded yet.
    let _ = std::process::Command::new("modprobe")
        .arg("wireguard")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    lookup(&mut sock)?.ok_or_else(|| BackendError::new(NO_MODULE))
}

/// `WG_CMD_SET_DEVICE` with key and port.
pub fn set_device_message(
    name: &str,
    key: Option<&SecretKey>,
    port: Option<u16>,
) -> WireguardMessage {
    let mut attributes = vec![WireguardAttribute::IfName(name.to_string())];
    if let Some(k) = key {
        attributes.push(WireguardAttribute::PrivateKey(k.0));
    }
    if let Some(p) = port {
        attributes.push(WireguardAttribute::ListenPort(p));
    }
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes,
    }
}

fn allowed_ip(net: &IpNet) -> WireguardAllowedIp {
    let family = match net.addr() {
        IpAddr::V4(_) => WireguardAddressFamily::Ipv4,
        IpAddr::V6(_) => WireguardAddressFamily::Ipv6,
    };
    WireguardAllowedIp(vec![
        WireguardAllowedIpAttr::Family(family),
        WireguardAllowedIpAttr::IpAddr(net.addr()),
        WireguardAllowedIpAttr::Cidr(net.prefix_len()),
    ])
}

/// `WG_CMD_SET_DEVICE` adding or replacing peers (allowed IPs replaced; an
/// absent preshared key is sent as zeros, which clears it).
pub fn set_peers_message(name: &str, peers: &[PeerConfig]) -> WireguardMessage {
    let peers = peers
        .iter()
        .map(|p| {
            let mut a = vec![
                WireguardPeerAttribute::PublicKey(p.public_key.0),
                WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps),
                WireguardPeerAttribute::PresharedKey(
                    p.preshared_key.as_ref().map(|k| k.0).unwrap_or([0; 32]),
                ),
                WireguardPeerAttribute::PersistentKeepalive(p.persistent_keepalive),
            ];
            if let Some(ep) = p.endpoint {
                a.push(WireguardPeerAttribute::Endpoint(ep));
            }
            a.push(WireguardPeerAttribute::AllowedIps(
                p.allowed_ips.iter().map(allowed_ip).collect(),
            ));
            WireguardPeer(a)
        })
        .collect();
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes: vec![
            WireguardAttribute::IfName(name.to_string()),
            WireguardAttribute::Peers(peers),
        ],
    }
}

/// `WG_CMD_SET_DEVICE` removing peers.
pub fn remove_peers_message(name: &str, keys: &[PublicKey]) -> WireguardMessage {
    WireguardMessage {
        cmd: WireguardCmd::SetDevice,
        attributes: vec![
            WireguardAttribute::IfName(name.to_string()),
            WireguardAttribute::Peers(
                keys.iter()
                    .map(|k| {
                        WireguardPeer(vec![
                            WireguardPeerAttribute::PublicKey(k.0),
                            WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
                        ])
                    })
                    .collect(),
            ),
        ],
    }
}

pub struct KernelBackend {
    family: u16,
    genl: NlSocket,
    rtnl: Rtnl,
    /// Interfaces this backend created or adopted (dump covers those that
    /// still exist).
    ifaces: BTreeSet<String>,
}

impl KernelBackend {
    pub fn open() -> Result<Self> {
        let family = family_id()?;
        Ok(KernelBackend {
            family,
            genl: NlSocket::new(NETLINK_GENERIC)?,
            rtnl: Rtnl::new()?,
            ifaces: BTreeSet::new(),
        })
    }

    fn wg(&mut self, msg: WireguardMessage, what: &str) -> Result<Vec<WireguardMessage>> {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family);
        let dump = matches!(genl.payload.cmd, WireguardCmd::GetDevice);
        let flags = if dump { NLM_F_DUMP } else { NLM_F_ACK };
        self.genl
            .request(genl, flags)
            .map(|v| v.into_iter().map(|m| m.payload).collect())
            .map_err(|e| BackendError(format!("{what}: {e}")))
    }

    fn get(&mut self, name: &str) -> Result<(u16, Vec<(PeerConfig, PeerState)>)> {
        let replies = self.wg(
            WireguardMessage {
                cmd: WireguardCmd::GetDevice,
                attributes: vec![WireguardAttribute::IfName(name.to_string())],
            },
            &format!("{name}: get device"),
        )?;
        Ok(parse_device(&replies, SystemTime::now()))
    }
}

/// Peers and port from `WG_CMD_GET_DEVICE` replies (possibly split over
/// several messages).
pub fn parse_device(
    replies: &[WireguardMessage],
    _now: SystemTime,
) -> (u16, Vec<(PeerConfig, PeerState)>) {
    let mut port = 0;
    let mut peers: Vec<(PeerConfig, PeerState)> = Vec::new();
    for m in replies {
        for a in &m.attributes {
            match a {
                WireguardAttribute::ListenPort(p) => port = *p,
                WireguardAttribute::Peers(ps) => {
                    for p in ps {
                        let mut c = PeerConfig {
                            public_key: PublicKey([0; 32]),
                            preshared_key: None,
                            endpoint: None,
                            persistent_keepalive: 0,
                            allowed_ips: Vec::new(),
                        };
                        let mut s = PeerState {
                            public_key: PublicKey([0; 32]),
                            endpoint: None,
                            last_handshake: None,
                            rx_bytes: 0,
                            tx_bytes: 0,
                        };
                        for pa in &p.0 {
                            match pa {
                                WireguardPeerAttribute::PublicKey(k) => {
                                    c.public_key = PublicKey(*k);
                                    s.public_key = PublicKey(*k);
                                }
                                WireguardPeerAttribute::PresharedKey(k) if k != &[0; 32] => {
                                    c.preshared_key = Some(SecretKey(*k))
                                }
                                WireguardPeerAttribute::Endpoint(ep) => {
                                    c.endpoint = Some(*ep);
                                    s.endpoint = Some(*ep);
                                }
                                WireguardPeerAttribute::PersistentKeepalive(k) => {
                                    c.persistent_keepalive = *k
                                }
                                WireguardPeerAttribute::LastHandshake(t) if t.seconds > 0 => {
                                    // The kernel reports an absolute (wall clock) time.
                                    s.last_handshake = Some(
                                        SystemTime::UNIX_EPOCH
                                            + Duration::new(
                                                t.seconds as u64,
                                                t.nano_seconds as u32,
                                            ),
                                    )
                                }
                                WireguardPeerAttribute::RxBytes(b) => s.rx_bytes = *b,
                                WireguardPeerAttribute::TxBytes(b) => s.tx_bytes = *b,
                                WireguardPeerAttribute::AllowedIps(ips) => {
                                    for ip in ips {
                                        let addr = ip.0.iter().find_map(|x| match x {
                                            WireguardAllowedIpAttr::IpAddr(a) => Some(*a),
                                            _ => None,
                                        });
                                        let cidr = ip.0.iter().find_map(|x| match x {
                                            WireguardAllowedIpAttr::Cidr(c) => Some(*c),
                                            _ => None,
                                        });
                                        if let (Some(a), Some(len)) = (addr, cidr) {
                                            if let Ok(n) = IpNet::new(a, len) {
                                                c.allowed_ips.push(n);
                                            }
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                        // A peer split across messages continues the last one.
                        if let Some(last) = peers.last_mut() {
                            if last.0.public_key == c.public_key {
                                last.0.allowed_ips.extend(c.allowed_ips);
                                continue;
                            }
                        }
                        peers.push((c, s));
                    }
                }
                _ => {}
            }
        }
    }
    for (c, _) in peers.iter_mut() {
        c.allowed_ips.sort();
        c.allowed_ips.dedup();
    }
    peers.sort_by_key(|a| a.0.public_key);
    (port, peers)
}

impl Backend for KernelBackend {
    fn kind(&self) -> &'static str {
        "kernel"
    }

    fn create_interface(&mut self, cfg: &InterfaceConfig) -> Result<()> {
        let name = &cfg.name;
        self.rtnl.create_wireguard_link(name)?;
        let r = (|| {
            self.wg(
                set_device_message(name, Some(&cfg.private_key), Some(cfg.listen_port)),
                &format!("{name}: set key and listen port {}", cfg.listen_port),
            )?;
            self.rtnl.set_link(name, Some(cfg.mtu), Some(cfg.up))
        })();
        if r.is_err() {
            let _ = self.rtnl.delete_link(name);
            return r;
        }
        self.ifaces.insert(name.clone());
        Ok(())
    }

    fn remove_interface(&mut self, name: &str) -> Result<()> {
        // Already deleted behind our back (`ip link del`, drift): removing
        // it from the configuration must still work.
        if self.rtnl.link(name)?.is_some() {
            self.rtnl.delete_link(name)?;
        }
        self.ifaces.remove(name);
        Ok(())
    }

    fn set_interface(&mut self, old: &InterfaceConfig, new: &InterfaceConfig) -> Result<()> {
        let name = &new.name;
        let key = (old.private_key != new.private_key).then_some(&new.private_key);
        let port = (old.listen_port != new.listen_port).then_some(new.listen_port);
        if key.is_some() || port.is_some() {
            // One message: the kernel applies key and port together or not at all.
            self.wg(
                set_device_message(name, key, port),
                &format!("{name}: set key/listen port {}", new.listen_port),
            )?;
        }
        let mtu = (old.mtu != new.mtu).then_some(new.mtu);
        let up = (old.up != new.up).then_some(new.up);
        if mtu.is_some() || up.is_some() {
            if let Err(e) = self.rtnl.set_link(name, mtu, up) {
                if key.is_some() || port.is_some() {
                    let undo_key = key.map(|_| &old.private_key);
                    let undo_port = port.map(|_| old.listen_port);
                    let _ = self.wg(set_device_message(name, undo_key, undo_port), "undo");
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn add_address(&mut self, iface: &str, addr: IpNet) -> Result<()> {
        self.rtnl.add_address(iface, addr)
    }

    fn remove_address(&mut self, iface: &str, addr: IpNet) -> Result<()> {
        self.rtnl.remove_address(iface, addr)
    }

    fn set_peers(&mut self, iface: &str, peers: &[PeerConfig]) -> Result<()> {
        if peers.is_empty() {
            return Ok(());
        }
        self.wg(
            set_peers_message(iface, peers),
            &format!("{iface}: set peers"),
        )
        .map(|_| ())
    }

    fn remove_peers(&mut self, iface: &str, keys: &[PublicKey]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.wg(
            remove_peers_message(iface, keys),
            &format!("{iface}: remove peers"),
        )
        .map(|_| ())
    }

    fn add_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.rtnl.add_route(iface, dest)
    }

    fn remove_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.rtnl.remove_route(iface, dest)
    }

    fn add_routes(
        &mut self,
        iface: &str,
        dests: &[IpNet],
    ) -> std::result::Result<(), (usize, BackendError)> {
        self.rtnl.add_routes(iface, dests)
    }

    fn dump(&mut self) -> Result<Vec<InterfaceDump>> {
        let names: Vec<String> = self.ifaces.iter().cloned().collect();
        let mut out = Vec::new();
        for name in names {
            // Deleted behind our back (`ip link del`): not there any more.
            let Some(link) = self.rtnl.link(&name)? else {
                continue;
            };
            let replies = self.wg(
                WireguardMessage {
                    cmd: WireguardCmd::GetDevice,
                    attributes: vec![WireguardAttribute::IfName(name.clone())],
                },
                &format!("{name}: get device"),
            )?;
            let public_key = replies.iter().find_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    WireguardAttribute::PublicKey(k) => Some(PublicKey(*k)),
                    _ => None,
                })
            });
            let (port, peers) = parse_device(&replies, SystemTime::now());
            out.push(InterfaceDump {
                public_key,
                listen_port: port,
                mtu: link.mtu as u16,
                up: link.admin_up,
                addresses: self.rtnl.addresses(&name)?,
                routes: self.rtnl.routes(&name)?,
                peers: peers.into_iter().map(|(c, _)| c).collect(),
                name,
            });
        }
        Ok(out)
    }

    fn interface_state(&mut self, name: &str) -> Result<Option<InterfaceState>> {
        let Some(link) = self.rtnl.link(name)? else {
            return Ok(None);
        };
        let (port, peers) = self.get(name)?;
        Ok(Some(InterfaceState {
            name: name.to_string(),
            public_key: None,
            listen_port: port,
            up: link.oper_up,
            peers: peers.into_iter().map(|(_, s)| s).collect(),
        }))
    }

    fn adopt(&mut self, name: &str) -> Result<Option<Adopted>> {
        let Some(link) = self.rtnl.link(name)? else {
            return Ok(None);
        };
        // GET_DEVICE fails on a link that is not a WireGuard one.
        let replies = self.wg(
            WireguardMessage {
                cmd: WireguardCmd::GetDevice,
                attributes: vec![WireguardAttribute::IfName(name.to_string())],
            },
            &format!("{name} exists but is not a usable WireGuard interface"),
        )?;
        let private_key = replies
            .iter()
            .find_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    WireguardAttribute::PrivateKey(k) => Some(SecretKey(*k)),
                    _ => None,
                })
            })
            .unwrap_or(SecretKey([0; 32]));
        let (listen_port, peers) = parse_device(&replies, SystemTime::now());
        let adopted = Adopted {
            cfg: InterfaceConfig {
                name: name.to_string(),
                private_key,
                listen_port,
                mtu: link.mtu as u16,
                up: link.admin_up,
            },
            addresses: self.rtnl.addresses(name)?,
            routes: self.rtnl.routes(name)?,
            peers: peers.into_iter().map(|(c, _)| c).collect(),
        };
        self.ifaces.insert(name.to_string());
        tracing::info!(
            "wireguard: adopting the existing kernel interface {name} ({} peer(s))",
            adopted.peers.len()
        );
        Ok(Some(adopted))
    }

    /// Kernel interfaces outlive the agent: they stay, with their peers'
    /// sessions, and the next start adopts them ([`Backend::adopt`]).
    fn shutdown(&mut self) {
        if !self.ifaces.is_empty() {
            tracing::info!(
                "wireguard: leaving kernel interface(s) {} in place",
                self.ifaces.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, ParseableParametrized};
    use netlink_packet_generic::GenlHeader;

    fn bytes(msg: &WireguardMessage) -> Vec<u8> {
        let mut b = vec![0u8; msg.buffer_len()];
        msg.emit(&mut b);
        b
    }

    fn roundtrip(msg: &WireguardMessage) -> WireguardMessage {
        let b = bytes(msg);
        let header = GenlHeader {
            cmd: msg.cmd.into(),
            version: 1,
        };
        WireguardMessage::parse_with_param(&b[..], header).unwrap()
    }

    #[test]
    fn set_device_message_bytes() {
        let key = SecretKey([7; 32]);
        let msg = set_device_message("wg1", Some(&key), Some(51820));
        let b = bytes(&msg);
        // WGDEVICE_A_IFNAME (2) "wg1\0", padded to 8 bytes.
        assert_eq!(&b[0..8], &[8, 0, 2, 0, b'w', b'g', b'1', 0]);
        // WGDEVICE_A_PRIVATE_KEY (3), 4 + 32 bytes.
        assert_eq!(&b[8..12], &[36, 0, 3, 0]);
        assert_eq!(&b[12..44], &[7u8; 32]);
        // WGDEVICE_A_LISTEN_PORT (6), u16 in host order, padded.
        assert_eq!(&b[44..50], &[6, 0, 6, 0, 0x6c, 0xca]);
        assert_eq!(roundtrip(&msg), msg);
    }

    #[test]
    fn set_peers_message_structure() {
        let p = PeerConfig {
            public_key: PublicKey([1; 32]),
            preshared_key: None,
            endpoint: Some("192.0.2.1:51820".parse().unwrap()),
            persistent_keepalive: 25,
            allowed_ips: vec!["10.0.2.0/24".parse().unwrap()],
        };
        let msg = set_peers_message("wg1", &[p]);
        let back = roundtrip(&msg);
        assert_eq!(back, msg);
        let WireguardAttribute::Peers(peers) = &msg.attributes[1] else {
            panic!("no peers attribute");
        };
        let attrs = &peers[0].0;
        assert!(attrs.contains(&WireguardPeerAttribute::Flags(
            WireguardPeerFlags::ReplaceAllowedIps
        )));
        assert!(attrs.contains(&WireguardPeerAttribute::PresharedKey([0; 32])));
        assert!(attrs.contains(&WireguardPeerAttribute::PersistentKeepalive(25)));
        let (_, parsed) = parse_device(std::slice::from_ref(&msg), SystemTime::now());
        assert_eq!(
            parsed[0].0.allowed_ips,
            vec!["10.0.2.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(
            parsed[0].0.endpoint,
            Some("192.0.2.1:51820".parse().unwrap())
        );
    }

    #[test]
    fn remove_peers_message_sets_remove_flag() {
        let msg = remove_peers_message("wg1", &[PublicKey([9; 32])]);
        let WireguardAttribute::Peers(peers) = &roundtrip(&msg).attributes[1] else {
            panic!("no peers attribute");
        };
        assert_eq!(
            peers[0].0,
            vec![
                WireguardPeerAttribute::PublicKey([9; 32]),
                WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
            ]
        );
    }

    /// This machine's kernel has no WireGuard module: opening the kernel
    /// backend must refuse with the operator message. (Where the module
    /// exists the test checks the opposite: it opens.)
    #[test]
    fn kernel_backend_refuses_without_module() {
        let has_module = std::path::Path::new("/sys/module/wireguard").exists();
        match KernelBackend::open() {
            Ok(_) => assert!(has_module, "opened without /sys/module/wireguard"),
            Err(e) => {
                if !has_module {
                    assert_eq!(e.0, NO_MODULE);
                }
            }
        }
    }
}
