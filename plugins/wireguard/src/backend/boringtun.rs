//! Userspace WireGuard (`backend = "boringtun"`): our own I/O loop around
//! boringtun's published noise core, inside this process, one tun device
//! and three threads per interface ([`device`]). The name stays what users
//! configured when this was boringtun's whole `device` (one system call per
//! packet each way); the loop is now ours, with TSO/GRO on the tun device,
//! UDP GSO/GRO and batched socket calls, detected at run time with
//! fallbacks ([`tun`], [`udp`], [`offload`]).
//!
//! With a UAPI directory set ([`BoringtunBackend::set_uapi_dir`]; the
//! agent's `[wireguard] uapi_dir`), each interface also serves `wg`'s
//! `<dir>/<name>.sock` ([`uapi`]), over the same [`device::Device`] the
//! backend programs. Agents in different network namespaces that each own
//! an interface of the same name need different directories (the path is
//! not per namespace).
//!
//! Peers are updated in place: a change of allowed IPs or endpoint keeps
//! the session and counters; a change of preshared key or keepalive starts
//! a new session (boringtun fixes both when a peer's state is made).

pub mod allowed_ips;
pub mod device;
pub mod offload;
pub mod tun;
pub mod uapi;
pub mod udp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;

use super::netlink::{link_index, Rtnl};
use super::{
    Backend, BackendError, InterfaceConfig, InterfaceDump, InterfaceState, PeerConfig, PeerState,
    Result,
};
use crate::keys::PublicKey;
use device::Device;
use uapi::{lock, SharedDevice};

struct Iface {
    /// Held for its drop, which comes first: the socket goes before the
    /// device.
    _uapi: Option<uapi::Listener>,
    /// Holds the key too: `wg set` on the UAPI socket changes it there.
    dev: SharedDevice,
    /// Latest handshake reported per peer, see [`steady_handshakes`].
    handshakes: BTreeMap<PublicKey, SystemTime>,
}

impl Iface {
    /// Peers with configuration and state, handshake times steadied.
    fn peers(&mut self) -> Vec<(PeerConfig, PeerState)> {
        let mut peers = lock(&self.dev).peers();
        steady_handshakes(&mut peers, &mut self.handshakes);
        peers
    }
}

/// Keeps a peer's latest handshake steady between reads.
///
/// boringtun reports the handshake's *age*; the absolute time we derive
/// (`now - age`) moves by the time between boringtun's clock read and ours, so
/// the second-resolution `latest-handshake` would sometimes step by one
/// second without any new handshake. A time within a second of the one
/// reported before is the same handshake (WireGuard does not handshake
/// twice within REKEY_TIMEOUT, 5 s): report the earlier value.
fn steady_handshakes(
    peers: &mut [(PeerConfig, PeerState)],
    seen: &mut BTreeMap<PublicKey, SystemTime>,
) {
    let mut next = BTreeMap::new();
    for (_, st) in peers.iter_mut() {
        let Some(t) = st.last_handshake else {
            continue;
        };
        let t = match seen.get(&st.public_key) {
            Some(&prev)
                if t.duration_since(prev).unwrap_or_else(|e| e.duration())
                    < Duration::from_secs(1) =>
            {
                prev
            }
            _ => t,
        };
        st.last_handshake = Some(t);
        next.insert(st.public_key, t);
    }
    *seen = next;
}

pub struct BoringtunBackend {
    devices: BTreeMap<String, Iface>,
    rtnl: Rtnl,
    /// Ask the kernel for tun offloads (TSO/USO); see [`OFFLOAD_ENV`].
    offload: bool,
    /// Where interfaces serve their `wg` UAPI socket; none when `None`.
    uapi_dir: Option<PathBuf>,
}

/// `WGNETCONF_TUN_OFFLOAD=off` makes new interfaces run without tun
/// offloads, as on a kernel that has none: for comparing the two paths
/// (the benchmark) and for ruling offloads out when diagnosing.
pub const OFFLOAD_ENV: &str = "WGNETCONF_TUN_OFFLOAD";

impl BoringtunBackend {
    /// Check that a tun device can be opened; netlink must work too.
    pub fn open() -> Result<Self> {
        // SAFETY: a NUL-terminated path; the result is checked and closed.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(BackendError(format!(
                "boringtun backend: cannot open /dev/net/tun: {} (needs the tun module and root/CAP_NET_ADMIN)",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(fd) };
        let offload = !matches!(
            std::env::var(OFFLOAD_ENV).as_deref(),
            Ok("off") | Ok("0") | Ok("false")
        );
        Ok(BoringtunBackend {
            devices: BTreeMap::new(),
            rtnl: Rtnl::new()?,
            offload,
            uapi_dir: None,
        })
    }

    /// Whether interfaces created from now on ask for tun offloads.
    pub fn set_offload(&mut self, offload: bool) {
        self.offload = offload;
    }

    /// Interfaces created from now on serve `<dir>/<name>.sock` (`None`:
    /// no socket).
    /// Test support: the data threads of interface `name` end, as in a
    /// crash of the device (see [`Device::alive`](device::Device::alive)).
    #[doc(hidden)]
    pub fn crash_for_test(&mut self, name: &str) -> Result<()> {
        let iface = self.dev(name)?;
        lock(&iface.dev).stop_threads();
        Ok(())
    }

    pub fn set_uapi_dir(&mut self, dir: Option<PathBuf>) {
        self.uapi_dir = dir;
    }

    /// The offloads interface `name` got from the kernel.
    pub fn offloads(&self, name: &str) -> Option<tun::Offloads> {
        self.devices.get(name).map(|i| lock(&i.dev).offloads())
    }

    fn dev(&mut self, name: &str) -> Result<&mut Iface> {
        self.devices
            .get_mut(name)
            .ok_or_else(|| BackendError(format!("{name}: no such boringtun interface")))
    }

    fn destroy(&mut self, name: &str) -> Result<()> {
        // Dropping the device joins its threads and closes the tun queue.
        self.devices.remove(name);
        // The link goes when the kernel has released the queue; wait for
        // that so the name can be reused at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while link_index(name).is_some() {
            if Instant::now() > deadline {
                return Err(BackendError(format!(
                    "{name}: tun device did not go away within 5 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn create(&mut self, cfg: &InterfaceConfig) -> Result<()> {
        let name = &cfg.name;
        // A device of that name that stopped working behind our back (its
        // tun link deleted with `ip link del`, or its threads ended in a
        // crash; a drift repair re-creates it) goes first: its threads, UAPI
        // socket and any tun link left.
        let stopped = self
            .devices
            .get(name)
            .is_some_and(|i| !lock(&i.dev).alive() || link_index(name).is_none());
        if stopped {
            tracing::info!("{name}: dropping the device that stopped working");
            self.destroy(name)?;
        }
        if link_index(name).is_some() {
            return Err(BackendError(format!(
                "{name}: an interface of that name already exists"
            )));
        }
        let dev = Device::start(name, &cfg.private_key, cfg.listen_port, self.offload)
            .map_err(|e| BackendError(format!("{name}: {e}")))?;
        let dev = Arc::new(Mutex::new(dev));
        // The interface works without its socket: a failure is logged.
        let uapi = self.uapi_dir.as_ref().and_then(|dir| {
            uapi::Listener::start(dir, name, Arc::downgrade(&dev))
                .map_err(|e| tracing::warn!("{name}: no wg UAPI socket: {e}"))
                .ok()
        });
        self.devices.insert(
            name.clone(),
            Iface {
                _uapi: uapi,
                dev,
                handshakes: BTreeMap::new(),
            },
        );
        set_txqueuelen(name, TUN_TXQUEUELEN);
        self.rtnl.set_link(name, Some(cfg.mtu), Some(cfg.up))?;
        Ok(())
    }
}

impl Drop for BoringtunBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Transmit queue of the tun device: the packets the kernel holds for
/// the tx thread to read (the tun default is 500). A full queue drops, and a
/// TCP sender bursts more than 500 packets ahead of the worker: at 500
/// those drops were all of the single stream's retransmits.
pub const TUN_TXQUEUELEN: i32 = 2000;
/// Sets the transmit queue length of `name` (SIOCSIFTXQLEN; for a tun
/// device its ring of packets waiting for the reader). Best effort.
fn set_txqueuelen(name: &str, len: i32) {
    #[repr(C)]
    struct IfReqQlen {
        name: [u8; libc::IFNAMSIZ],
        qlen: libc::c_int,
        _pad: [u8; 20],
    }
    if name.len() >= libc::IFNAMSIZ {
        return;
    }
    let mut req = IfReqQlen {
        name: [0; libc::IFNAMSIZ],
        qlen: len,
        _pad: [0; 20],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: an ioctl on our own socket with an ifreq-sized buffer.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        if libc::ioctl(fd, libc::SIOCSIFTXQLEN as _, &req) < 0 {
            tracing::debug!(
                "{name}: txqueuelen {len}: {}",
                std::io::Error::last_os_error()
            );
        }
        libc::close(fd);
    }
}

impl Backend for BoringtunBackend {
    fn kind(&self) -> &'static str {
        "boringtun"
    }

    fn create_interface(&mut self, cfg: &InterfaceConfig) -> Result<()> {
        let r = self.create(cfg);
        if r.is_err() {
            let _ = self.destroy(&cfg.name);
        }
        r
    }

    fn remove_interface(&mut self, name: &str) -> Result<()> {
        self.dev(name)?;
        self.destroy(name)
    }

    fn set_interface(&mut self, old: &InterfaceConfig, new: &InterfaceConfig) -> Result<()> {
        let name = new.name.clone();
        let iface = self.dev(&name)?;
        {
            let mut dev = lock(&iface.dev);
            let new_key = dev.private_key() != new.private_key;
            if dev.listen_port() != new.listen_port {
                // First, so that a port in use changes nothing.
                dev.set_listen_port(new.listen_port).map_err(|e| {
                    BackendError(format!("{name}: listen port {}: {e}", new.listen_port))
                })?;
            }
            if new_key {
                dev.set_private_key(&new.private_key);
            }
        }
        let mtu = (old.mtu != new.mtu).then_some(new.mtu);
        let up = (old.up != new.up).then_some(new.up);
        if mtu.is_some() || up.is_some() {
            self.rtnl.set_link(&name, mtu, up)?;
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
        lock(&self.dev(iface)?.dev).set_peers(peers);
        Ok(())
    }

    fn remove_peers(&mut self, iface: &str, keys: &[PublicKey]) -> Result<()> {
        lock(&self.dev(iface)?.dev).remove_peers(keys);
        Ok(())
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

    /// Devices whose tun link is gone (`ip link del`) or whose threads
    /// ended (crashed) are left out: the interface no longer exists, or
    /// carries nothing, for the system.
    fn dump(&mut self) -> Result<Vec<InterfaceDump>> {
        let names: Vec<String> = self.devices.keys().cloned().collect();
        let mut out = Vec::new();
        for name in names {
            let Some(link) = self.rtnl.link(&name)? else {
                continue;
            };
            let iface = self.dev(&name)?;
            if !lock(&iface.dev).alive() {
                continue;
            }
            let peers = iface.peers();
            let (public_key, listen_port) = {
                let dev = lock(&iface.dev);
                (Some(dev.private_key().public_key()), dev.listen_port())
            };
            out.push(InterfaceDump {
                public_key,
                listen_port,
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
        let Some(iface) = self.devices.get_mut(name) else {
            return Ok(None);
        };
        let peers = iface.peers();
        let (public_key, listen_port) = {
            let dev = lock(&iface.dev);
            (Some(dev.private_key().public_key()), dev.listen_port())
        };
        let link = self.rtnl.link(name)?;
        Ok(Some(InterfaceState {
            name: name.to_string(),
            public_key,
            listen_port,
            up: link.map(|l| l.oper_up).unwrap_or(false),
            peers: peers.into_iter().map(|(_, s)| s).collect(),
        }))
    }

    fn shutdown(&mut self) {
        let names: Vec<String> = self.devices.keys().cloned().collect();
        for n in names {
            if let Err(e) = self.destroy(&n) {
                tracing::warn!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_handshake_is_steady_across_reads() {
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let key = PublicKey([0x11; 32]);
        let mut seen = BTreeMap::new();
        let mut read = |now_ms: u64, age: Duration| {
            let mut peers = vec![(
                PeerConfig {
                    public_key: key,
                    preshared_key: None,
                    endpoint: None,
                    persistent_keepalive: 0,
                    allowed_ips: Vec::new(),
                },
                PeerState {
                    public_key: key,
                    endpoint: None,
                    last_handshake: at(now_ms).checked_sub(age),
                    rx_bytes: 0,
                    tx_bytes: 0,
                },
            )];
            steady_handshakes(&mut peers, &mut seen);
            peers[0].1.last_handshake.expect("handshake")
        };
        // Handshake at 999.9995 s; the second read's clock is 1 ms later
        // than boringtun's: 1000.0005 s, the next second.
        let first = read(1_004_999, Duration::new(4, 999_500_000));
        assert_eq!(first, at(999_999) + Duration::from_micros(500));
        assert_eq!(read(1_006_001, Duration::new(6, 500_000)), first);
        // A new handshake (10 s later) is reported as such.
        assert_eq!(read(1_011_000, Duration::from_secs(1)), at(1_010_000));
    }
}
