//! Data-plane backends. They know nothing of YANG: the plugin turns a commit
//! into a short list of [`Backend`] calls (see `plan.rs`), each of which has an
//! exact inverse, so a half-applied commit can be undone.
//!
//! - [`boringtun`](self::boringtun): userspace WireGuard in this process:
//!   our own I/O loop (tun offloads, UDP GSO/GRO) around boringtun's noise
//!   core, one tun device and three threads per interface. Works on
//!   kernels without the WireGuard module.
//! - [`kernel`](self::kernel): the Linux WireGuard module over generic netlink.
//! - [`memory`](self::memory): in-memory, for unit tests, with fault injection.
//!
//! Addresses, MTU, link state and routes go through rtnetlink
//! ([`netlink`](self::netlink)) for both real backends.

use std::net::SocketAddr;
use std::path::Path;
use std::time::SystemTime;

use ipnet::IpNet;

use crate::keys::{PublicKey, SecretKey};

pub mod boringtun;
pub mod kernel;
pub mod memory;
pub mod netlink;

/// Why a backend call failed. The message is for an operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    pub fn new(msg: impl Into<String>) -> Self {
        BackendError(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// Interface-level settings of one WireGuard interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// System name, `wg<instance>`.
    pub name: String,
    pub private_key: SecretKey,
    pub listen_port: u16,
    pub mtu: u16,
    /// Administrative link state.
    pub up: bool,
}

/// One peer as programmed into the data plane.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    pub preshared_key: Option<SecretKey>,
    pub endpoint: Option<SocketAddr>,
    /// Seconds, 0 = off.
    pub persistent_keepalive: u16,
    /// Sorted, no duplicates.
    pub allowed_ips: Vec<IpNet>,
}

/// Everything a backend has programmed for one interface, sorted, for exact
/// before/after comparison (no counters, no handshake times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDump {
    pub name: String,
    pub public_key: Option<PublicKey>,
    pub listen_port: u16,
    pub mtu: u16,
    pub up: bool,
    pub addresses: Vec<IpNet>,
    /// Routes via this interface in the main table that this backend added.
    pub routes: Vec<IpNet>,
    pub peers: Vec<PeerConfig>,
}

/// An interface that exists in the system but that the backend did not
/// create in this process (kernel interfaces outlive the agent), as it is
/// programmed: the plugin reconciles it to the configuration instead of
/// creating it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adopted {
    pub cfg: InterfaceConfig,
    pub addresses: Vec<IpNet>,
    /// Routes via the interface in the main table (static, as added by
    /// [`Backend::add_route`]).
    pub routes: Vec<IpNet>,
    pub peers: Vec<PeerConfig>,
}

/// Run-time state of one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    pub public_key: PublicKey,
    /// The endpoint in use (follows roaming).
    pub endpoint: Option<SocketAddr>,
    /// Absolute time of the last completed handshake.
    pub last_handshake: Option<SystemTime>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Run-time state of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceState {
    pub name: String,
    pub public_key: Option<PublicKey>,
    pub listen_port: u16,
    /// Link administratively and operationally up.
    pub up: bool,
    pub peers: Vec<PeerState>,
}

/// A WireGuard data plane. Every mutating call is all-or-nothing for what it
/// names, or as close as the underlying system allows; the plugin undoes
/// earlier calls of a commit when a later one fails.
pub trait Backend: Send {
    /// `boringtun`, `kernel` or `memory`.
    fn kind(&self) -> &'static str;

    /// Create the interface with its key, port, MTU and link state; no
    /// addresses, peers or routes.
    fn create_interface(&mut self, cfg: &InterfaceConfig) -> Result<()>;
    /// Delete the interface (its addresses, peers and routes go with it).
    fn remove_interface(&mut self, name: &str) -> Result<()>;
    /// Change what differs between `old` and `new` (same name).
    fn set_interface(&mut self, old: &InterfaceConfig, new: &InterfaceConfig) -> Result<()>;

    fn add_address(&mut self, iface: &str, addr: IpNet) -> Result<()>;
    fn remove_address(&mut self, iface: &str, addr: IpNet) -> Result<()>;

    /// Add or replace peers (allowed IPs replaced, not merged). Peers not
    /// named are not touched.
    fn set_peers(&mut self, iface: &str, peers: &[PeerConfig]) -> Result<()>;
    fn remove_peers(&mut self, iface: &str, keys: &[PublicKey]) -> Result<()>;

    /// A route to `dest` via the interface (main table), as wg-quick adds
    /// for each allowed IP.
    fn add_route(&mut self, iface: &str, dest: IpNet) -> Result<()>;
    fn remove_route(&mut self, iface: &str, dest: IpNet) -> Result<()>;
    /// [`Backend::add_route`] for each of `dests`, in order. On failure the
    /// routes before the index returned are added and none from it on.
    /// Backends on rtnetlink send the requests in batches.
    fn add_routes(
        &mut self,
        iface: &str,
        dests: &[IpNet],
    ) -> std::result::Result<(), (usize, BackendError)> {
        for (i, d) in dests.iter().enumerate() {
            self.add_route(iface, *d).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// What is programmed, for every interface this backend manages.
    fn dump(&mut self) -> Result<Vec<InterfaceDump>>;
    /// Run-time state of one interface; `None` if it does not exist.
    fn interface_state(&mut self, name: &str) -> Result<Option<InterfaceState>>;

    /// Take over interface `name` if it already exists in the system, and
    /// report what it has; `None` when it does not exist (or this backend's
    /// interfaces cannot outlive it). After this the backend manages it as
    /// if it had created it.
    fn adopt(&mut self, _name: &str) -> Result<Option<Adopted>> {
        Ok(None)
    }

    /// Agent shutdown: remove what must not outlive the process (boringtun
    /// devices). Kernel interfaces stay, with their sessions, for the next
    /// start to adopt. Best effort.
    fn shutdown(&mut self) {}
}

/// The backend names [`open`] accepts.
pub const BACKENDS: &[&str] = &["auto", "kernel", "boringtun", "memory"];

/// Open a backend by name: `auto` (kernel when the WireGuard generic netlink
/// family exists, else boringtun when /dev/net/tun is usable), `kernel`,
/// `boringtun`, or `memory` (tests only). Userspace interfaces serve `wg`'s
/// UAPI socket in `uapi_dir` when given (kernel ones need none: `wg` talks
/// netlink to them).
pub fn open(name: &str, uapi_dir: Option<&Path>) -> Result<Box<dyn Backend>> {
    let boringtun = || {
        boringtun::BoringtunBackend::open().map(|mut b| {
            b.set_uapi_dir(uapi_dir.map(Path::to_path_buf));
            b
        })
    };
    match name {
        "kernel" => Ok(Box::new(kernel::KernelBackend::open()?)),
        "boringtun" => Ok(Box::new(boringtun()?)),
        "memory" => Ok(Box::new(memory::MemoryBackend::new())),
        "auto" => match kernel::KernelBackend::open() {
            Ok(k) => Ok(Box::new(k)),
            Err(kerr) => match boringtun() {
                Ok(b) => {
                    tracing::info!(
                        "wireguard: kernel backend unavailable ({kerr}); using boringtun"
                    );
                    Ok(Box::new(b))
                }
                Err(berr) => Err(BackendError(format!(
                    "no usable WireGuard backend: kernel: {kerr}; boringtun: {berr}"
                ))),
            },
        },
        other => Err(BackendError(format!(
            "unknown WireGuard backend {other:?}; use one of auto, kernel, boringtun, memory"
        ))),
    }
}
