//! Userspace WireGuard: upstream boringtun 0.7 (`device` feature) running in
//! this process, one tun device and **one** worker thread per interface
//! (measured 1.41 Gbit/s with one thread against 0.5 with 2–4).
//!
//! # Configuration channel
//!
//! boringtun is configured through its UAPI text protocol (`set=1`/`get=1`).
//! Instead of its machine-wide socket `/var/run/wireguard/<name>.sock` (two
//! agents in two network namespaces both owning `wg1` would fight over it, and
//! that listener also installs SIGINT/SIGTERM handlers in the event loop), we
//! pass `DeviceConfig::uapi_fd`: one end of a private `socketpair(2)`. No file
//! is created anywhere, so any number of agents (each in its own network
//! namespace, e.g. under `ip netns exec`) can own an interface of the same
//! name, and closing our end stops the device.
//!
//! # Upstream traps handled here
//!
//! - `get=1` reports `last_handshake_time_sec` as the *age* of the handshake;
//!   we convert it to an absolute time.
//! - It never reports the private key; the public key is derived from the
//!   private key we hold (and `own_public_key` is cross-checked when present).
//! - Changing an existing peer panics in boringtun 0.7 ("Modifying existing
//!   peers is not yet supported"), so a peer update is sent as
//!   `remove=true` + re-add **in the same `set=1` transaction** (atomic under
//!   the device's write lock). The updated peer loses its session and
//!   counters; other peers are not affected. The kernel backend updates in
//!   place.
//! - Its UAPI parser carries `remove`, endpoint, keepalive and preshared key
//!   over from one peer section to the next; see [`peers_set_body`].
//! - A failed `listen_port` change leaves boringtun without sockets; we
//!   re-open the old port before reporting the error.
//! - Every `listen_port` change (including the first one, from the random
//!   port boringtun binds at creation) leaks the previous sockets: boringtun
//!   registers a `try_clone` of each socket with its event loop but
//!   unregisters by the original's fd, so the clones stay open, bound and
//!   *served* (WireGuard answered on the old port and on a random one).
//!   After each change we retire them: see [`retire_leaked_sockets`].
//! - boringtun reads the tun MTU once, at creation, and never reads more than
//!   that many bytes per packet when the UAPI socket is an fd. We therefore
//!   create the tun queue ourselves first, set its MTU to the model maximum
//!   (9000), let boringtun attach a second queue (it reads 9000), drop ours
//!   and set the configured MTU; later MTU changes are plain rtnetlink.
//! - The UDP receive buffer is where packets are lost under load; boringtun
//!   has no knob, so after it binds we raise `SO_RCVBUFFORCE` (4 MiB) on its
//!   listening sockets, found by port among this process's descriptors.
//!   `use_connected_socket` is off so all traffic arrives on those sockets.
//!
//! # Data-plane tuning (measured with `wgnetconf-bench --dataplane`)
//!
//! - The tun transmit queue is raised from 500 to [`TUN_TXQUEUELEN`]: with
//!   500, a single TCP stream lost packets where the kernel hands them to
//!   boringtun (tun `TX dropped` equal to TCP's retransmits, no UDP
//!   receive-buffer errors); with 2000, none.
//! - The worker thread runs at nice [`THREAD_NICE`] (it inherits the nice
//!   value and the name, `bt-wg<N>`, from the thread that creates the
//!   device, see [`spawning_device_thread`]): the tunnel then gets the CPU
//!   ahead of the applications it carries, 0.6 → 0.95 Gbit/s for one TCP
//!   stream on a 2-core machine. Real-time scheduling was no better and
//!   starved the agent's NETCONF work.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime};

use ::boringtun::device::{DeviceConfig, DeviceHandle};
use ipnet::IpNet;

use super::netlink::{link_index, Rtnl};
use super::{
    Backend, BackendError, InterfaceConfig, InterfaceDump, InterfaceState, PeerConfig, PeerState,
    Result,
};
use crate::keys::{from_hex, PublicKey, SecretKey};

/// Receive buffer asked for boringtun's UDP sockets.
pub const UDP_RCVBUF: i32 = 4 << 20;
/// MTU the tun queue is created with so boringtun reads whole packets.
const CREATE_MTU: u16 = 9000;

struct Device {
    /// Our end of the UAPI socketpair.
    uapi: BufReader<UnixStream>,
    handle: Option<DeviceHandle>,
    private_key: SecretKey,
    listen_port: u16,
    /// Latest handshake reported per peer, see [`steady_handshakes`].
    handshakes: BTreeMap<PublicKey, SystemTime>,
}

impl Device {
    /// One UAPI exchange; returns the reply lines before `errno=`.
    fn uapi(&mut self, request: &str) -> Result<Vec<String>> {
        let stream = self.uapi.get_mut();
        stream
            .write_all(request.as_bytes())
            .map_err(|e| BackendError(format!("boringtun UAPI write: {e}")))?;
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .uapi
                .read_line(&mut line)
                .map_err(|e| BackendError(format!("boringtun UAPI read: {e}")))?;
            if n == 0 {
                return Err(BackendError::new(
                    "boringtun UAPI: device closed the channel",
                ));
            }
            let line = line.trim_end_matches('\n');
            if let Some(errno) = line.strip_prefix("errno=") {
                // Consume the blank line that ends the reply.
                let mut blank = String::new();
                let _ = self.uapi.read_line(&mut blank);
                let errno: i32 = errno.trim().parse().unwrap_or(libc::EIO);
                if errno != 0 {
                    return Err(BackendError(
                        std::io::Error::from_raw_os_error(errno).to_string(),
                    ));
                }
                return Ok(lines);
            }
            lines.push(line.to_string());
        }
    }

    fn set(&mut self, body: &str) -> Result<()> {
        self.uapi(&format!("set=1\n{body}\n")).map(|_| ())
    }

    /// Moves the device to `port`; on failure it is back on the old port.
    /// Either way the sockets boringtun leaks are retired and the receive
    /// buffer of the live ones raised.
    fn set_listen_port(&mut self, port: u16) -> Result<()> {
        let old = self.listen_port;
        let before = udp_sockets(Some(old));
        let r = self.set(&format!("listen_port={port}\n"));
        let live = match &r {
            Ok(()) => port,
            Err(_) => {
                // boringtun dropped its old sockets before failing: re-open.
                let _ = self.set(&format!("listen_port={old}\n"));
                old
            }
        };
        self.listen_port = live;
        let retired = retire_leaked_sockets(&before);
        if retired > 0 {
            tracing::debug!("boringtun: closed {retired} leaked socket(s) of port {old}");
        }
        raise_rcvbuf(live);
        r
    }
}

/// Parsed `get=1`.
#[derive(Default, Debug)]
struct UapiGet {
    own_public_key: Option<PublicKey>,
    listen_port: u16,
    peers: Vec<(PeerConfig, PeerState)>,
}

fn parse_get(lines: &[String], now: SystemTime) -> UapiGet {
    let mut out = UapiGet::default();
    let mut cur: Option<(PeerConfig, PeerState)> = None;
    let mut hs_sec: Option<u64> = None;
    let mut hs_nsec: u32 = 0;
    let finish = |cur: &mut Option<(PeerConfig, PeerState)>,
                  hs_sec: &mut Option<u64>,
                  hs_nsec: &mut u32,
                  out: &mut UapiGet| {
        if let Some((mut c, mut s)) = cur.take() {
            c.allowed_ips.sort();
            if let Some(sec) = hs_sec.take() {
                let age = Duration::new(sec, *hs_nsec);
                s.last_handshake = now.checked_sub(age);
            }
            *hs_nsec = 0;
            out.peers.push((c, s));
        }
    };
    for line in lines {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "own_public_key" => out.own_public_key = from_hex(v).map(PublicKey),
            "listen_port" => out.listen_port = v.parse().unwrap_or(0),
            "public_key" => {
                finish(&mut cur, &mut hs_sec, &mut hs_nsec, &mut out);
                if let Some(k) = from_hex(v) {
                    let key = PublicKey(k);
                    cur = Some((
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
                            last_handshake: None,
                            rx_bytes: 0,
                            tx_bytes: 0,
                        },
                    ));
                }
            }
            _ => {
                let Some((c, s)) = cur.as_mut() else {
                    continue;
                };
                match k {
                    "preshared_key" => {
                        c.preshared_key = from_hex(v).filter(|b| b != &[0u8; 32]).map(SecretKey)
                    }
                    "persistent_keepalive_interval" => {
                        c.persistent_keepalive = v.parse().unwrap_or(0)
                    }
                    "endpoint" => {
                        let ep = v.parse::<SocketAddr>().ok();
                        c.endpoint = ep;
                        s.endpoint = ep;
                    }
                    "allowed_ip" => {
                        if let Ok(net) = v.parse::<IpNet>() {
                            c.allowed_ips.push(net);
                        }
                    }
                    "last_handshake_time_sec" => hs_sec = v.parse().ok(),
                    "last_handshake_time_nsec" => hs_nsec = v.parse().unwrap_or(0),
                    "rx_bytes" => s.rx_bytes = v.parse().unwrap_or(0),
                    "tx_bytes" => s.tx_bytes = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
    finish(&mut cur, &mut hs_sec, &mut hs_nsec, &mut out);
    out.peers.sort_by_key(|a| a.0.public_key);
    out
}

/// Keeps a peer's latest handshake steady between reads.
///
/// boringtun reports the handshake's *age*; the absolute time we derive
/// (`now - age`) moves by the UAPI round trip from one read to the next, so
/// the second-resolution `latest-handshake` would sometimes step by one
/// second without any new handshake. A time within a second of the one
/// reported before is the same handshake (WireGuard does not handshake
/// twice within REKEY_TIMEOUT, 5 s): report the earlier value.
fn steady_handshakes(get: &mut UapiGet, seen: &mut BTreeMap<PublicKey, SystemTime>) {
    let mut next = BTreeMap::new();
    for (_, st) in get.peers.iter_mut() {
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

/// The `set=1` body that (re)programs peers: each is removed and re-added in
/// the same transaction (boringtun 0.7 panics on in-place updates).
///
/// boringtun's UAPI parser does not reset a peer section's fields when the
/// next `public_key=` starts: `remove`, `endpoint`, keepalive and preshared
/// key carry over to the following peer. So every section sets `remove`,
/// the preshared key (zeros = none, as in the protocol) and the keepalive
/// explicitly, and peers without an endpoint come first (an endpoint cannot
/// be unset, only carried over).
pub fn peers_set_body(peers: &[PeerConfig]) -> String {
    let mut ordered: Vec<&PeerConfig> = peers.iter().collect();
    ordered.sort_by_key(|p| p.endpoint.is_some());
    let zero = "00".repeat(32);
    let mut s = String::new();
    for p in ordered {
        let key = p.public_key.to_hex();
        s.push_str(&format!(
            "public_key={key}\nremove=true\npublic_key={key}\nremove=false\n"
        ));
        match &p.preshared_key {
            Some(psk) => s.push_str(&format!("preshared_key={}\n", psk.expose_hex())),
            None => s.push_str(&format!("preshared_key={zero}\n")),
        }
        if let Some(ep) = p.endpoint {
            s.push_str(&format!("endpoint={ep}\n"));
        }
        s.push_str(&format!(
            "persistent_keepalive_interval={}\n",
            p.persistent_keepalive
        ));
        s.push_str("replace_allowed_ips=true\n");
        for a in &p.allowed_ips {
            s.push_str(&format!("allowed_ip={a}\n"));
        }
    }
    s
}

pub struct BoringtunBackend {
    devices: BTreeMap<String, Device>,
    rtnl: Rtnl,
}

impl BoringtunBackend {
    /// Check that a tun device can be opened; netlink must work too.
    pub fn open() -> Result<Self> {
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(BackendError(format!(
                "boringtun backend: cannot open /dev/net/tun: {} (needs the tun module and root/CAP_NET_ADMIN)",
                std::io::Error::last_os_error()
            )));
        }
        unsafe { libc::close(fd) };
        Ok(BoringtunBackend {
            devices: BTreeMap::new(),
            rtnl: Rtnl::new()?,
        })
    }

    fn dev(&mut self, name: &str) -> Result<&mut Device> {
        self.devices
            .get_mut(name)
            .ok_or_else(|| BackendError(format!("{name}: no such boringtun interface")))
    }

    fn destroy(&mut self, name: &str) -> Result<()> {
        if let Some(dev) = self.devices.remove(name) {
            let Device { uapi, handle, .. } = dev;
            // Closing our end makes the event loop see EOF and exit; dropping
            // the handle triggers the exit notifier as well.
            drop(uapi);
            drop(handle);
        }
        // The tun device disappears when boringtun's thread has closed its
        // queue; wait for that so the name can be reused at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while link_index(name).is_some() {
            if Instant::now() > deadline {
                return Err(BackendError(format!(
                    "{name}: boringtun device did not go away within 5 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn create(&mut self, cfg: &InterfaceConfig) -> Result<()> {
        let name = &cfg.name;
        if link_index(name).is_some() {
            return Err(BackendError(format!(
                "{name}: an interface of that name already exists"
            )));
        }
        // Our own queue first, so the MTU boringtun reads is CREATE_MTU.
        let pre = open_tun_queue(name)?;
        self.rtnl.set_link(name, Some(CREATE_MTU), None)?;

        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| BackendError(format!("socketpair for boringtun UAPI: {e}")))?;
        let theirs_fd = theirs.into_raw_fd();
        let config = DeviceConfig {
            n_threads: 1,
            use_connected_socket: false,
            use_multi_queue: false,
            uapi_fd: theirs_fd,
        };
        let handle = match spawning_device_thread(name, || DeviceHandle::new(name, config)) {
            Ok(h) => h,
            Err(e) => {
                // boringtun did not take ownership of the fd.
                drop(unsafe { OwnedFd::from_raw_fd(theirs_fd) });
                return Err(BackendError(format!("{name}: boringtun: {e}")));
            }
        };
        drop(pre);
        let _ = ours.set_read_timeout(Some(Duration::from_secs(10)));
        self.devices.insert(
            name.clone(),
            Device {
                uapi: BufReader::new(ours),
                handle: Some(handle),
                private_key: cfg.private_key.clone(),
                listen_port: cfg.listen_port,
                handshakes: BTreeMap::new(),
            },
        );
        let dev = self.dev(name)?;
        dev.set(&format!("private_key={}\n", cfg.private_key.expose_hex()))?;
        // boringtun listens on a random port until told otherwise.
        let random = parse_get(&dev.uapi("get=1\n\n")?, SystemTime::now()).listen_port;
        dev.listen_port = random;
        dev.set_listen_port(cfg.listen_port)
            .map_err(|e| BackendError(format!("{name}: listen port {}: {e}", cfg.listen_port)))?;
        set_txqueuelen(name, TUN_TXQUEUELEN);
        self.rtnl.set_link(name, Some(cfg.mtu), Some(cfg.up))?;
        Ok(())
    }

    fn get(&mut self, name: &str) -> Result<UapiGet> {
        let dev = self.dev(name)?;
        let lines = dev.uapi("get=1\n\n")?;
        let mut get = parse_get(&lines, SystemTime::now());
        steady_handshakes(&mut get, &mut dev.handshakes);
        Ok(get)
    }
}

impl Drop for BoringtunBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Transmit queue of the tun device: the packets the kernel holds for
/// boringtun to read (the tun default is 500). A full queue drops, and a
/// TCP sender bursts more than 500 packets ahead of the worker: at 500
/// those drops were all of the single stream's retransmits.
pub const TUN_TXQUEUELEN: i32 = 2000;
/// nice value of boringtun's worker thread. It does all of the interface's
/// crypto and packet I/O, and on a busy machine it competes with the
/// applications whose traffic it carries; ahead of them, the tunnel keeps
/// up instead of dropping.
pub const THREAD_NICE: i32 = -10;

/// Runs `spawn` (which starts boringtun's worker thread) with the calling
/// thread's name and nice value set to what the worker should inherit
/// (Linux threads inherit both from their creator), then restores them.
fn spawning_device_thread<T>(name: &str, spawn: impl FnOnce() -> T) -> T {
    let mut old_name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into our buffer.
    let got_name = unsafe { libc::prctl(libc::PR_GET_NAME, old_name.as_mut_ptr()) } == 0;
    let mut new_name = [0u8; 16];
    let label = format!("bt-{name}");
    let n = label.len().min(15);
    new_name[..n].copy_from_slice(&label.as_bytes()[..n]);
    // SAFETY: a NUL-terminated buffer of 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, new_name.as_ptr()) };
    // who = 0 with PRIO_PROCESS is the calling thread on Linux.
    // SAFETY: plain syscalls on the calling thread.
    let old_nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    // Best effort: without CAP_SYS_NICE the worker keeps our value.
    let nice = THREAD_NICE;
    if nice != old_nice {
        // SAFETY: as above.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    }
    let r = spawn();
    if nice != old_nice {
        // SAFETY: as above; raising the value back needs no privilege.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, old_nice) };
    }
    if got_name {
        unsafe { libc::prctl(libc::PR_SET_NAME, old_name.as_ptr()) };
    }
    r
}

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

/// Open a tun queue named `name` with the flags boringtun uses, so it can
/// attach to the same device.
fn open_tun_queue(name: &str) -> Result<OwnedFd> {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    if name.len() >= libc::IFNAMSIZ {
        return Err(BackendError(format!("{name}: interface name too long")));
    }
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(BackendError(format!(
            "open /dev/net/tun: {}",
            std::io::Error::last_os_error()
        )));
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &req) } < 0 {
        return Err(BackendError(format!(
            "{name}: create tun device: {} (needs CAP_NET_ADMIN)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(fd)
}

/// One UDP socket descriptor of this process: fd, the socket's inode
/// (`socket:[N]`, shared by dup'ed descriptors) and its bound port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UdpFd {
    fd: i32,
    inode: String,
    port: u16,
}

/// This process's UDP socket descriptors, those bound to `port` if given.
fn udp_sockets(port: Option<u16>) -> Vec<UdpFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let inode = target.to_string_lossy().into_owned();
        if !inode.starts_with("socket:") {
            continue;
        }
        let Some(bound) = udp_port(fd) else {
            continue;
        };
        if port.is_none_or(|p| p == bound) {
            out.push(UdpFd {
                fd,
                inode,
                port: bound,
            });
        }
    }
    out
}

/// The local port of `fd` if it is a bound UDP (datagram) socket.
fn udp_port(fd: i32) -> Option<u16> {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt/getsockname write at most `len` bytes into the
    // buffers we own; a stale fd just fails.
    if unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            &mut ty as *mut _ as *mut _,
            &mut len,
        )
    } != 0
        || ty != libc::SOCK_DGRAM
    {
        return None;
    }
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut slen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut slen) } != 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            let sin = unsafe { &*(&ss as *const _ as *const libc::sockaddr_in) };
            Some(u16::from_be(sin.sin_port))
        }
        libc::AF_INET6 => {
            let sin6 = unsafe { &*(&ss as *const _ as *const libc::sockaddr_in6) };
            Some(u16::from_be(sin6.sin6_port))
        }
        _ => None,
    }
}

/// Retires the sockets a boringtun `listen_port` change leaked.
///
/// `before` are the UDP descriptors on the old port, taken before the
/// change: each of the device's sockets had two (boringtun's own and the
/// clone its event loop reads). boringtun closes its own and keeps the
/// clone registered forever. A socket that went from two descriptors to one
/// is such a clone: we `dup2` a fresh unbound, non-blocking UDP socket over
/// it. That closes the leaked socket (the port is free, epoll forgets it,
/// nothing is served on it any more) while the descriptor number stays
/// valid for boringtun, which closes it when the device goes. Sockets of
/// other devices (two descriptors before and after) are not touched.
/// Returns how many were retired.
fn retire_leaked_sockets(before: &[UdpFd]) -> usize {
    use std::collections::HashMap;
    let mut count_before: HashMap<&str, usize> = HashMap::new();
    for s in before {
        *count_before.entry(&s.inode).or_default() += 1;
    }
    let after = udp_sockets(None);
    let mut count_after: HashMap<&str, usize> = HashMap::new();
    for s in &after {
        *count_after.entry(&s.inode).or_default() += 1;
    }
    let mut retired = 0;
    for s in &after {
        let (b, a) = (
            count_before.get(s.inode.as_str()).copied().unwrap_or(0),
            count_after.get(s.inode.as_str()).copied().unwrap_or(0),
        );
        if !(b >= 2 && a == 1) {
            continue;
        }
        // SAFETY: `fresh` is ours; dup3 atomically replaces `s.fd`, which
        // boringtun's (never unregistered) handler owns and keeps open until
        // the device is dropped, so the number cannot be reused meanwhile.
        unsafe {
            let fresh = libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            if fresh < 0 {
                continue;
            }
            if libc::dup3(fresh, s.fd, libc::O_CLOEXEC) >= 0 {
                retired += 1;
            }
            libc::close(fresh);
        }
    }
    retired
}

/// Raise SO_RCVBUF on this process's UDP sockets bound to `port`
/// (boringtun's listeners). Best effort.
pub fn raise_rcvbuf(port: u16) -> usize {
    let mut done = 0;
    for s in udp_sockets(Some(port)) {
        let size: libc::c_int = UDP_RCVBUF;
        let set = |opt| {
            // SAFETY: setsockopt reads one c_int we own.
            let r = unsafe {
                libc::setsockopt(
                    s.fd,
                    libc::SOL_SOCKET,
                    opt,
                    &size as *const _ as *const _,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            r == 0
        };
        if set(libc::SO_RCVBUFFORCE) || set(libc::SO_RCVBUF) {
            done += 1;
        }
    }
    done
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
        let dev = self.dev(&name)?;
        if old.private_key != new.private_key || dev.private_key != new.private_key {
            dev.set(&format!("private_key={}\n", new.private_key.expose_hex()))?;
            dev.private_key = new.private_key.clone();
        }
        if dev.listen_port != new.listen_port {
            if let Err(e) = dev.set_listen_port(new.listen_port) {
                if old.private_key != new.private_key {
                    let _ = dev.set(&format!("private_key={}\n", old.private_key.expose_hex()));
                    dev.private_key = old.private_key.clone();
                }
                return Err(BackendError(format!(
                    "{name}: listen port {}: {e}",
                    new.listen_port
                )));
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
        if peers.is_empty() {
            return Ok(());
        }
        let body = peers_set_body(peers);
        self.dev(iface)?
            .set(&body)
            .map_err(|e| BackendError(format!("{iface}: set peers: {e}")))
    }

    fn remove_peers(&mut self, iface: &str, keys: &[PublicKey]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut body = String::new();
        for k in keys {
            body.push_str(&format!("public_key={}\nremove=true\n", k.to_hex()));
        }
        self.dev(iface)?
            .set(&body)
            .map_err(|e| BackendError(format!("{iface}: remove peers: {e}")))
    }

    fn add_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.rtnl.add_route(iface, dest)
    }

    fn remove_route(&mut self, iface: &str, dest: IpNet) -> Result<()> {
        self.rtnl.remove_route(iface, dest)
    }

    fn dump(&mut self) -> Result<Vec<InterfaceDump>> {
        let names: Vec<String> = self.devices.keys().cloned().collect();
        let mut out = Vec::new();
        for name in names {
            let get = self.get(&name)?;
            let public_key = Some(self.dev(&name)?.private_key.public_key());
            let link = self.rtnl.link(&name)?;
            out.push(InterfaceDump {
                public_key,
                listen_port: get.listen_port,
                mtu: link.as_ref().map(|l| l.mtu as u16).unwrap_or(0),
                up: link.as_ref().map(|l| l.admin_up).unwrap_or(false),
                addresses: self.rtnl.addresses(&name)?,
                routes: self.rtnl.routes(&name)?,
                peers: get.peers.into_iter().map(|(c, _)| c).collect(),
                name,
            });
        }
        Ok(out)
    }

    fn interface_state(&mut self, name: &str) -> Result<Option<InterfaceState>> {
        if !self.devices.contains_key(name) {
            return Ok(None);
        }
        let get = self.get(name)?;
        let derived = self.dev(name)?.private_key.public_key();
        if let Some(reported) = get.own_public_key {
            if reported != derived {
                tracing::warn!(iface = name, "boringtun reports a different own public key");
            }
        }
        let link = self.rtnl.link(name)?;
        Ok(Some(InterfaceState {
            name: name.to_string(),
            public_key: Some(derived),
            listen_port: get.listen_port,
            up: link.map(|l| l.oper_up).unwrap_or(false),
            peers: get.peers.into_iter().map(|(_, s)| s).collect(),
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

    /// A UDP socket on 127.0.0.1 (port `port`, 0 = any) and a dup of it,
    /// as boringtun has (its own and the event loop's clone).
    fn socket_pair_on(port: u16) -> (std::net::UdpSocket, OwnedFd) {
        let s = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("bind");
        let clone: OwnedFd = s.try_clone().expect("dup").into();
        (s, clone)
    }

    #[test]
    fn leaked_listen_sockets_are_retired_and_others_left_alone() {
        // The device being moved: two descriptors per socket before.
        let (own, clone) = socket_pair_on(0);
        let port = own.local_addr().expect("addr").port();
        let before = udp_sockets(Some(port));
        assert_eq!(before.len(), 2, "{before:?}");
        // boringtun drops its own socket, the clone stays.
        drop(own);
        assert_eq!(retire_leaked_sockets(&before), 1);
        // The descriptor is still open but no longer bound to the port.
        let fd = clone.as_raw_fd();
        assert_eq!(udp_port(fd), Some(0));
        assert!(udp_sockets(Some(port)).is_empty());
        // Nothing else is touched: a pair that keeps both descriptors.
        let (keep, keep_clone) = socket_pair_on(0);
        let kport = keep.local_addr().expect("addr").port();
        let before = udp_sockets(Some(kport));
        assert_eq!(retire_leaked_sockets(&before), 0);
        assert_eq!(udp_port(keep_clone.as_raw_fd()), Some(kport));
    }

    #[test]
    fn latest_handshake_is_steady_across_reads() {
        let k = "11".repeat(32);
        let reply = |sec: u64, nsec: u32| -> Vec<String> {
            vec![
                "listen_port=51820".into(),
                format!("public_key={k}"),
                format!("last_handshake_time_sec={sec}"),
                format!("last_handshake_time_nsec={nsec}"),
            ]
        };
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let mut seen = BTreeMap::new();
        let mut read = |now_ms: u64, sec: u64, nsec: u32| {
            let mut g = parse_get(&reply(sec, nsec), at(now_ms));
            steady_handshakes(&mut g, &mut seen);
            g.peers[0].1.last_handshake.expect("handshake")
        };
        // Handshake at 999.9995 s; the second read's clock is 1 ms later
        // than boringtun's: 1000.0005 s, the next second.
        let first = read(1_004_999, 4, 999_500_000);
        assert_eq!(first, at(999_999) + Duration::from_micros(500));
        // boringtun computed the age at 1006.000 s, we read the clock at 1006.001.
        assert_eq!(read(1_006_001, 6, 500_000), first);
        // A new handshake (10 s later) is reported as such.
        let second = read(1_011_000, 1, 0);
        assert_eq!(second, at(1_010_000));
    }

    #[test]
    fn get_reply_is_parsed_with_absolute_handshake_time() {
        let k = "11".repeat(32);
        let lines: Vec<String> = [
            "own_public_key=".to_string() + &"22".repeat(32),
            "listen_port=51820".into(),
            format!("public_key={k}"),
            "endpoint=192.0.2.1:51821".into(),
            "allowed_ip=10.0.2.0/24".into(),
            "allowed_ip=10.0.1.0/24".into(),
            "last_handshake_time_sec=5".into(),
            "last_handshake_time_nsec=0".into(),
            "rx_bytes=10".into(),
            "tx_bytes=20".into(),
        ]
        .into();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let g = parse_get(&lines, now);
        assert_eq!(g.listen_port, 51820);
        assert_eq!(g.peers.len(), 1);
        let (c, s) = &g.peers[0];
        assert_eq!(c.allowed_ips[0].to_string(), "10.0.1.0/24");
        assert_eq!(
            s.last_handshake,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(995))
        );
        assert_eq!((s.rx_bytes, s.tx_bytes), (10, 20));
        assert_eq!(s.endpoint, Some("192.0.2.1:51821".parse().unwrap()));
    }

    #[test]
    fn peer_update_is_remove_and_readd_in_one_transaction() {
        let p = PeerConfig {
            public_key: PublicKey([1; 32]),
            preshared_key: None,
            endpoint: Some("192.0.2.1:51820".parse().unwrap()),
            persistent_keepalive: 25,
            allowed_ips: vec!["10.0.2.0/24".parse().unwrap()],
        };
        let mut q = p.clone();
        q.public_key = PublicKey([2; 32]);
        q.endpoint = None;
        let body = peers_set_body(&[p, q]);
        let (k1, k2, z) = ("01".repeat(32), "02".repeat(32), "00".repeat(32));
        // The peer without endpoint first; every field explicit.
        assert_eq!(
            body,
            format!(
                "public_key={k2}\nremove=true\npublic_key={k2}\nremove=false\npreshared_key={z}\n\
                 persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.2.0/24\n\
                 public_key={k1}\nremove=true\npublic_key={k1}\nremove=false\npreshared_key={z}\n\
                 endpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\n\
                 allowed_ip=10.0.2.0/24\n"
            )
        );
    }
}
