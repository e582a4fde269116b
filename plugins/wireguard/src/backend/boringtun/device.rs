//! One userspace WireGuard interface: our own I/O loop around boringtun's
//! published noise core (`boringtun::noise::Tunn`, which keeps the
//! handshakes, sessions, timers, cookies and rate limiting).
//!
//! Three threads per interface:
//! - **tx**: reads the tun device (a TSO train of up to 64 KiB per read when
//!   the kernel offers it), splits it into IP packets ([`offload`]), finds
//!   the peer by allowed IP, encrypts every packet under the peer's lock,
//!   then sends the train with one UDP GSO `sendmsg` ([`udp`]) after the
//!   lock is released;
//! - **rx**: `recvmmsg` with UDP GRO, decrypts each datagram under its
//!   peer's lock, checks the inner source against the peer's allowed IPs,
//!   then merges in-order TCP segments ([`offload::Coalescer`]) into GSO
//!   writes to the tun device;
//! - **timers**: every 250 ms, boringtun's timers of each peer that has a
//!   session state (keepalives, rekeys, retransmitted handshakes) and the
//!   rate limiter's per-second reset.
//!
//! # Peers cost nothing until used
//!
//! A configured peer is its settings and its allowed IPs. Its `Tunn`
//! (~21 KiB, and a static Diffie-Hellman to build) is made on its first
//! packet either way — a packet to send or a handshake from it — or at
//! configuration when it has a persistent keepalive and an endpoint (it
//! sends by itself). The receiver index is assigned at configuration, so
//! data and responses find the peer without its `Tunn`.
//!
//! # One place for configuration and state
//!
//! Everything that reads or changes the interface's configuration or
//! run-time state goes through [`Device`]'s methods (`set_*`, `peers`,
//! `listen_port`): the backend uses them, and so does the `wg` UAPI socket
//! ([`super::uapi`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ::boringtun::noise::handshake::parse_handshake_anon;
use ::boringtun::noise::rate_limiter::RateLimiter;
use ::boringtun::noise::{Packet, Tunn, TunnResult};
use ::boringtun::x25519;

use super::allowed_ips::AllowedIps;
use super::offload::{self, Coalescer};
use super::tun::{self, Offloads, VnetHdr, VNET_HDR_LEN};
use super::udp::{self, RecvBatch, Udp};
use crate::backend::{BackendError, PeerConfig, PeerState, Result};
use crate::keys::{PublicKey, SecretKey};

/// Handshakes per second before cookies are demanded (boringtun's device
/// default). Each handshake is checked by both our lookup and the `Tunn`,
/// so it counts twice.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// boringtun's timer resolution.
const TIMER_TICK: Duration = Duration::from_millis(250);
/// nice value of the data threads: ahead of the applications whose
/// traffic they carry on a busy machine (0.6 → 0.95 Gbit/s measured with
/// the earlier loop); real-time scheduling starved the agent's NETCONF
/// work.
pub const THREAD_NICE: i32 = -10;
/// Room for one tun read: a 64 KiB train and its header.
const TUN_BUF: usize = VNET_HDR_LEN + 65_536;
/// Room for a train's datagrams: up to 64 segments of MTU + overhead.
const TRAIN_BUF: usize = 64 * (9_000 + 64);

struct PeerRun {
    cfg: PeerConfig,
    /// Current endpoint: configured, then wherever authenticated packets
    /// come from (roaming).
    endpoint: Option<SocketAddr>,
    tunn: Option<Box<Tunn>>,
}

pub struct Peer {
    index: u32,
    run: Mutex<PeerRun>,
}

struct Keys {
    secret: x25519::StaticSecret,
    public: x25519::PublicKey,
    rate_limiter: Arc<RateLimiter>,
}

struct Config {
    keys: Keys,
    peers: HashMap<PublicKey, Arc<Peer>>,
    by_index: HashMap<u32, Arc<Peer>>,
    allowed: AllowedIps<Arc<Peer>>,
    next_index: u32,
}

struct Shared {
    tun: OwnedFd,
    offloads: Offloads,
    cfg: RwLock<Config>,
    udp: RwLock<Arc<Udp>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a data thread must not take the configuration with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn cfg(&self) -> RwLockReadGuard<'_, Config> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner())
    }

    fn udp(&self) -> Arc<Udp> {
        self.udp.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The peer's `Tunn`, made now if it has none.
fn tunn<'a>(run: &'a mut PeerRun, keys: &Keys, index: u32) -> &'a mut Tunn {
    run.tunn.get_or_insert_with(|| {
        Box::new(Tunn::new(
            keys.secret.clone(),
            x25519::PublicKey::from(run.cfg.public_key.0),
            run.cfg.preshared_key.as_ref().map(|k| k.0),
            (run.cfg.persistent_keepalive > 0).then_some(run.cfg.persistent_keepalive),
            index,
            Some(keys.rate_limiter.clone()),
        ))
    })
}

fn keys_of(private: &SecretKey) -> Keys {
    let secret = x25519::StaticSecret::from(private.0);
    let public = x25519::PublicKey::from(&secret);
    let rate_limiter = Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT));
    Keys {
        secret,
        public,
        rate_limiter,
    }
}

/// A threads' stop: a flag the busy loops check once per batch, and an
/// eventfd that, once signalled, stays readable for the waiting ones.
struct Stop {
    fd: OwnedFd,
    flag: AtomicBool,
}

impl Stop {
    fn new() -> Result<Arc<Stop>> {
        // SAFETY: eventfd(2); the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(BackendError(format!(
                "eventfd: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Arc::new(Stop {
            // SAFETY: `fd` is new and ours alone.
            fd: unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            flag: AtomicBool::new(false),
        }))
    }

    fn signal(&self) {
        self.flag.store(true, Ordering::Relaxed);
        let one: u64 = 1;
        // SAFETY: eventfd takes an 8-byte write from our buffer.
        unsafe { libc::write(self.fd.as_raw_fd(), &one as *const u64 as *const _, 8) };
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// Waits until one of `fds` is readable, or `stop` is (true), or `timeout`.
fn wait(fds: &[RawFd], stop: &Stop, timeout: Option<Duration>) -> bool {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .chain(std::iter::once(&stop.fd.as_raw_fd()))
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.map(|d| d.as_millis() as libc::c_int).unwrap_or(-1);
    // SAFETY: poll over our own pollfd array of the length given.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    r > 0 && p.last().is_some_and(|s| s.revents != 0)
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on our descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// A data thread named `name` at [`THREAD_NICE`].
fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            // who = 0 with PRIO_PROCESS is the calling thread on Linux.
            // Best effort: without CAP_SYS_NICE the thread keeps its value.
            // SAFETY: a plain syscall on the calling thread.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, THREAD_NICE) };
            f()
        })
        .map_err(|e| BackendError(format!("spawn thread: {e}")))
}

pub struct Device {
    name: String,
    shared: Arc<Shared>,
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
    rx: Option<(Arc<Stop>, JoinHandle<()>)>,
}

impl Device {
    /// Creates tun device `name` and starts the interface on `listen_port`,
    /// with the tun offloads the kernel grants when `offload`.
    pub fn start(
        name: &str,
        private_key: &SecretKey,
        listen_port: u16,
        offload: bool,
    ) -> Result<Device> {
        let (tun, offloads) = tun::open(name, offload)?;
        set_nonblocking(tun.as_raw_fd());
        tracing::debug!(iface = name, ?offloads, "tun offloads");
        let udp = Udp::bind(listen_port)?;
        let shared = Arc::new(Shared {
            tun,
            offloads,
            cfg: RwLock::new(Config {
                keys: keys_of(private_key),
                peers: HashMap::new(),
                by_index: HashMap::new(),
                allowed: AllowedIps::default(),
                next_index: 1,
            }),
            udp: RwLock::new(Arc::new(udp)),
        });
        let stop = Stop::new()?;
        let mut dev = Device {
            name: name.to_string(),
            shared,
            stop,
            threads: Vec::new(),
            rx: None,
        };
        let (s, st) = (dev.shared.clone(), dev.stop.clone());
        dev.threads
            .push(spawn(format!("tx-{name}"), move || tx_loop(&s, &st))?);
        let (s, st) = (dev.shared.clone(), dev.stop.clone());
        dev.threads
            .push(spawn(format!("tm-{name}"), move || timer_loop(&s, &st))?);
        dev.start_rx()?;
        Ok(dev)
    }

    fn start_rx(&mut self) -> Result<()> {
        let stop = Stop::new()?;
        let (s, st) = (self.shared.clone(), stop.clone());
        let main = self.stop.clone();
        let h = spawn(format!("rx-{}", self.name), move || rx_loop(&s, &st, &main))?;
        self.rx = Some((stop, h));
        Ok(())
    }

    fn stop_rx(&mut self) {
        if let Some((stop, h)) = self.rx.take() {
            stop.signal();
            let _ = h.join();
        }
    }

    pub fn listen_port(&self) -> u16 {
        self.shared.udp().port
    }

    /// Whether every data thread still runs. A thread that ended without
    /// being asked to (a panic, an error it could not get past) leaves the
    /// interface carrying nothing: `dump()` then reports it gone, so a
    /// drift check finds it and a repair starts it again.
    pub fn alive(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
            && self.rx.as_ref().is_some_and(|(_, h)| !h.is_finished())
    }

    /// Test support: ends the data threads as a crash would (the tun
    /// device and UDP socket stay open).
    #[doc(hidden)]
    pub fn stop_threads(&mut self) {
        self.stop.signal();
        self.stop_rx();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// The interface's private key (for the `wg` UAPI socket's `get`).
    pub fn private_key(&self) -> SecretKey {
        SecretKey(self.shared.cfg().keys.secret.to_bytes())
    }

    pub fn offloads(&self) -> Offloads {
        self.shared.offloads
    }

    /// Moves to `port` (0: any free port). On failure the old sockets stay.
    pub fn set_listen_port(&mut self, port: u16) -> Result<()> {
        if port != 0 && port == self.listen_port() {
            return Ok(());
        }
        let new = Udp::bind(port)?;
        self.stop_rx();
        *self.shared.udp.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        self.start_rx()
    }

    /// A new private key: every session ends (they were keyed for the old
    /// one); peers handshake again on their next packet.
    pub fn set_private_key(&self, key: &SecretKey) {
        let mut cfg = self.shared.cfg.write().unwrap_or_else(|e| e.into_inner());
        cfg.keys = keys_of(key);
        for p in cfg.peers.values() {
            lock(&p.run).tunn = None;
        }
        let keys = &cfg.keys;
        for p in cfg.peers.values() {
            let mut run = lock(&p.run);
            if wants_state_now(&run.cfg) {
                tunn(&mut run, keys, p.index);
            }
        }
    }

    /// Adds or updates peers. An update keeps the peer's session unless its
    /// preshared key or keepalive changed (boringtun fixes both at
    /// creation); a changed endpoint replaces the current one.
    pub fn set_peers(&self, peers: &[PeerConfig]) {
        let mut guard = self.shared.cfg.write().unwrap_or_else(|e| e.into_inner());
        let cfg = &mut *guard;
        // At most this many new: the maps grow once, not by doubling.
        cfg.peers.reserve(peers.len());
        cfg.by_index.reserve(peers.len());
        for p in peers {
            let peer = match cfg.peers.get(&p.public_key) {
                Some(old) => {
                    let old = old.clone();
                    let mut run = lock(&old.run);
                    for net in &run.cfg.allowed_ips {
                        if cfg.allowed.get(net).is_some_and(|o| Arc::ptr_eq(o, &old)) {
                            cfg.allowed.remove(net);
                        }
                    }
                    if run.cfg.preshared_key != p.preshared_key
                        || run.cfg.persistent_keepalive != p.persistent_keepalive
                    {
                        run.tunn = None;
                    }
                    if run.cfg.endpoint != p.endpoint && p.endpoint.is_some() {
                        run.endpoint = p.endpoint;
                    }
                    run.cfg = p.clone();
                    drop(run);
                    old
                }
                None => {
                    let index = next_index(cfg);
                    let peer = Arc::new(Peer {
                        index,
                        run: Mutex::new(PeerRun {
                            cfg: p.clone(),
                            endpoint: p.endpoint,
                            tunn: None,
                        }),
                    });
                    cfg.peers.insert(p.public_key, peer.clone());
                    cfg.by_index.insert(index, peer.clone());
                    peer
                }
            };
            for net in &p.allowed_ips {
                // An allowed IP belongs to one peer: the last to claim it.
                if let Some(prev) = cfg.allowed.insert(net, peer.clone()) {
                    if !Arc::ptr_eq(&prev, &peer) {
                        lock(&prev.run).cfg.allowed_ips.retain(|n| n != net);
                    }
                }
            }
            let mut run = lock(&peer.run);
            if wants_state_now(&run.cfg) {
                tunn(&mut run, &cfg.keys, peer.index);
            }
        }
    }

    pub fn remove_peers(&self, keys: &[PublicKey]) {
        let mut guard = self.shared.cfg.write().unwrap_or_else(|e| e.into_inner());
        let cfg = &mut *guard;
        for k in keys {
            let Some(peer) = cfg.peers.remove(k) else {
                continue;
            };
            cfg.by_index.remove(&peer.index);
            let run = lock(&peer.run);
            for net in &run.cfg.allowed_ips {
                if cfg.allowed.get(net).is_some_and(|o| Arc::ptr_eq(o, &peer)) {
                    cfg.allowed.remove(net);
                }
            }
        }
    }

    /// Every peer's configuration and state, sorted by key.
    pub fn peers(&self) -> Vec<(PeerConfig, PeerState)> {
        let cfg = self.shared.cfg();
        let now = SystemTime::now();
        let mut out: Vec<(PeerConfig, PeerState)> = cfg
            .peers
            .values()
            .map(|p| {
                let run = lock(&p.run);
                let mut c = run.cfg.clone();
                c.endpoint = run.endpoint;
                c.allowed_ips.sort();
                let (hs, tx, rx) = match &run.tunn {
                    Some(t) => {
                        let (age, tx, rx, _, _) = t.stats();
                        (age.and_then(|a| now.checked_sub(a)), tx as u64, rx as u64)
                    }
                    None => (None, 0, 0),
                };
                let s = PeerState {
                    public_key: c.public_key,
                    endpoint: run.endpoint,
                    last_handshake: hs,
                    rx_bytes: rx,
                    tx_bytes: tx,
                };
                (c, s)
            })
            .collect();
        out.sort_by_key(|a| a.0.public_key);
        out
    }
}

/// A peer that sends by itself (persistent keepalive to a known endpoint)
/// needs its state from the start.
fn wants_state_now(c: &PeerConfig) -> bool {
    c.persistent_keepalive > 0 && c.endpoint.is_some()
}

/// A free receiver index (24 bits: boringtun shifts it left by 8).
fn next_index(cfg: &mut Config) -> u32 {
    loop {
        let i = cfg.next_index;
        cfg.next_index = if i >= 0x00ff_ffff { 1 } else { i + 1 };
        if !cfg.by_index.contains_key(&i) {
            return i;
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.signal();
        self.stop_rx();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The tun device goes with `shared.tun`, the last reference to
        // which the threads held.
    }
}

/// Reads waiting on the tun device taken in one go: a TSO train is a batch
/// by itself, single packets (no offloads, or small packets) are gathered
/// up to this many.
const TX_BATCH: usize = 64;

/// The tun → UDP direction.
fn tx_loop(shared: &Shared, stop: &Stop) {
    let tun_fd = shared.tun.as_raw_fd();
    // Room for TX_BATCH MTU-sized reads and one whole train.
    let mut buf = vec![0u8; TUN_BUF + TX_BATCH * 9_100];
    let mut reads: Vec<(usize, usize)> = Vec::with_capacity(TX_BATCH);
    let mut out = vec![0u8; TRAIN_BUF];
    // (offset, length) of each datagram in `out`, and where they go.
    let mut dgrams: Vec<(usize, usize)> = Vec::with_capacity(TX_BATCH);
    let mut to: Option<(Arc<Peer>, SocketAddr)> = None;
    while !stop.is_set() {
        reads.clear();
        let mut off = 0;
        while reads.len() < TX_BATCH && buf.len() - off >= TUN_BUF {
            // SAFETY: read into our buffer, at most the length given.
            let n = unsafe { libc::read(tun_fd, buf[off..].as_mut_ptr().cast(), TUN_BUF) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) if reads.is_empty() => {
                        if wait(&[tun_fd], stop, None) {
                            return;
                        }
                        continue;
                    }
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    // The tun link was deleted (`ip link del`): nothing
                    // will come any more; wait for the device to be
                    // dropped (a drift repair re-creates it).
                    Some(libc::EBADFD) => {
                        tracing::warn!("tun read: {e}: the interface was deleted");
                        while !stop.is_set() {
                            wait(&[], stop, None);
                        }
                        return;
                    }
                    _ => {
                        tracing::warn!("tun read: {e}");
                        if wait(&[], stop, Some(Duration::from_millis(100))) {
                            return;
                        }
                        break;
                    }
                }
            }
            let n = n as usize;
            let train =
                VnetHdr::parse(&buf[off..off + n]).is_some_and(|h| h.gso_type != tun::GSO_NONE);
            reads.push((off, n));
            off += n;
            if train {
                break;
            }
        }
        for &(off, n) in &reads {
            let Some(hdr) = VnetHdr::parse(&buf[off..off + n]) else {
                continue;
            };
            let pkt = &mut buf[off + VNET_HDR_LEN..off + n];
            let Some(dst) = Tunn::dst_address(pkt) else {
                continue;
            };
            let cfg = shared.cfg();
            let Some(peer) = cfg.allowed.lookup(dst).cloned() else {
                continue;
            };
            let mut run = lock(&peer.run);
            let Some(endpoint) = run.endpoint else {
                continue;
            };
            // Another peer or endpoint, or no room for a train: send what
            // is gathered first.
            let same = to
                .as_ref()
                .is_some_and(|(p, e)| Arc::ptr_eq(p, &peer) && *e == endpoint);
            let room = dgrams.last().map(|&(o, l)| o + l).unwrap_or(0);
            if !same || room + n + TX_BATCH * 64 > out.len() {
                if let Some((_, e)) = to.take() {
                    send_datagrams(&shared.udp(), e, &out, &dgrams);
                }
                dgrams.clear();
            }
            to = Some((peer.clone(), endpoint));
            let t = tunn(&mut run, &cfg.keys, peer.index);
            drop(cfg);
            let mut pos = dgrams.last().map(|&(o, l)| o + l).unwrap_or(0);
            let r = offload::for_each_segment(&hdr, pkt, |seg| {
                if pos + seg.len() + 148 > out.len() {
                    return;
                }
                if let TunnResult::WriteToNetwork(p) = t.encapsulate(seg, &mut out[pos..]) {
                    let l = p.len();
                    dgrams.push((pos, l));
                    pos += l;
                }
            });
            if let Err(e) = r {
                tracing::debug!("tun read dropped: {}", e.0);
            }
        }
        if let Some((_, e)) = to.take() {
            send_datagrams(&shared.udp(), e, &out, &dgrams);
        }
        dgrams.clear();
    }
}

/// Sends datagrams laid out back to back in `out`, as GSO trains: runs
/// of equal size where only the last may be shorter.
fn send_datagrams(udp: &Udp, to: SocketAddr, out: &[u8], dgrams: &[(usize, usize)]) {
    let mut i = 0;
    while i < dgrams.len() {
        let (start, seg) = dgrams[i];
        let mut end = start + seg;
        let mut j = i + 1;
        while j < dgrams.len()
            && j - i < udp::MAX_GSO_SEGMENTS
            && dgrams[j].1 <= seg
            && end + dgrams[j].1 <= start + udp::MAX_GSO_BYTES
        {
            end += dgrams[j].1;
            j += 1;
            if dgrams[j - 1].1 < seg {
                break;
            }
        }
        udp.send_train(to, &out[start..end], seg);
        i = j;
    }
}

/// The UDP → tun direction, until `stop` (a listen-port change) or
/// `main` (the device goes).
fn rx_loop(shared: &Shared, stop: &Stop, main: &Stop) {
    let udp = shared.udp();
    let fds: Vec<RawFd> = [udp.v4.as_ref(), udp.v6.as_ref()]
        .into_iter()
        .flatten()
        .map(|f| f.as_raw_fd())
        .collect();
    let mut batch = RecvBatch::new(8);
    let mut plain = vec![0u8; 2 * 65_536];
    // (offset, length) of each decrypted packet in `plain`.
    let mut packets: Vec<(usize, usize)> = Vec::with_capacity(64);
    let mut replies: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    let mut coalescer = Coalescer::new(shared.offloads.tso);
    let tun_fd = shared.tun.as_raw_fd();
    let mut write = |b: &[u8]| write_tun(tun_fd, b);
    while !stop.is_set() && !main.is_set() {
        let mut got = 0;
        for &fd in &fds {
            got += batch.recv(fd, |r| {
                packets.clear();
                replies.clear();
                decrypt_slot(shared, &r, &mut plain, &mut packets, &mut replies);
                for (to, p) in replies.drain(..) {
                    udp.send(to, &p);
                }
                for &(o, l) in &packets {
                    coalescer.push(&plain[o..o + l], &mut write);
                }
            });
        }
        coalescer.flush(&mut write);
        if got == 0 {
            // Either stop ends the wait; the loop condition tells which.
            let mut all = fds.clone();
            all.push(main.fd.as_raw_fd());
            wait(&all, stop, None);
        }
    }
}

fn write_tun(fd: RawFd, b: &[u8]) {
    // SAFETY: write from our buffer of the length given. A failed write
    // is a dropped packet.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
}

/// Decrypts one received slot (one datagram or a GRO train from one
/// sender) into `plain`; packets for the tun go to `packets`, datagrams
/// to send back (handshake responses, cookies, queued data) to `replies`.
fn decrypt_slot(
    shared: &Shared,
    r: &udp::Received<'_>,
    plain: &mut [u8],
    packets: &mut Vec<(usize, usize)>,
    replies: &mut Vec<(SocketAddr, Vec<u8>)>,
) {
    let cfg = shared.cfg();
    let from_ip: IpAddr = r.from.ip();
    let mut pos = 0;
    for d in r.data.chunks(r.seg.max(1)) {
        if pos + d.len() > plain.len() {
            break;
        }
        let peer = match Tunn::parse_incoming_packet(d) {
            Ok(Packet::HandshakeInit(p)) => {
                let mut cookie = [0u8; 64];
                match cfg
                    .keys
                    .rate_limiter
                    .verify_packet(Some(from_ip), d, &mut cookie)
                {
                    Ok(_) => {}
                    Err(TunnResult::WriteToNetwork(c)) => {
                        replies.push((r.from, c.to_vec()));
                        continue;
                    }
                    Err(_) => continue,
                }
                parse_handshake_anon(&cfg.keys.secret, &cfg.keys.public, &p)
                    .ok()
                    .and_then(|h| cfg.peers.get(&PublicKey(h.peer_static_public)))
            }
            Ok(Packet::HandshakeResponse(p)) => cfg.by_index.get(&(p.receiver_idx >> 8)),
            Ok(Packet::PacketCookieReply(p)) => cfg.by_index.get(&(p.receiver_idx >> 8)),
            Ok(Packet::PacketData(p)) => cfg.by_index.get(&(p.receiver_idx >> 8)),
            Err(_) => None,
        };
        let Some(peer) = peer else {
            continue;
        };
        let mut run = lock(&peer.run);
        let index = peer.index;
        let t = tunn(&mut run, &cfg.keys, index);
        let mut ok = true;
        match t.decapsulate(Some(from_ip), d, &mut plain[pos..]) {
            TunnResult::Done => {}
            TunnResult::Err(_) => ok = false,
            TunnResult::WriteToNetwork(p) => {
                replies.push((r.from, p.to_vec()));
                // Packets queued while the handshake ran go out now.
                let mut q = vec![0u8; 65_536 + 64];
                while let TunnResult::WriteToNetwork(p) = t.decapsulate(None, &[], &mut q) {
                    replies.push((r.from, p.to_vec()));
                }
            }
            TunnResult::WriteToTunnelV4(p, src) => {
                let l = p.len();
                if allowed_from(&cfg, peer, IpAddr::V4(src)) {
                    packets.push((pos, l));
                    pos += l;
                }
            }
            TunnResult::WriteToTunnelV6(p, src) => {
                let l = p.len();
                if allowed_from(&cfg, peer, IpAddr::V6(src)) {
                    packets.push((pos, l));
                    pos += l;
                }
            }
        }
        if ok {
            run.endpoint = Some(r.from);
        }
    }
}

fn allowed_from(cfg: &Config, peer: &Arc<Peer>, src: IpAddr) -> bool {
    cfg.allowed
        .lookup(src)
        .is_some_and(|p| Arc::ptr_eq(p, peer))
}

/// boringtun's timers for every peer with a session state, each tick.
fn timer_loop(shared: &Shared, stop: &Stop) {
    let mut buf = vec![0u8; 65_536];
    let mut last_reset = Instant::now();
    let mut sends: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    while !wait(&[], stop, Some(TIMER_TICK)) {
        {
            let cfg = shared.cfg();
            if last_reset.elapsed() >= Duration::from_secs(1) {
                cfg.keys.rate_limiter.reset_count();
                last_reset = Instant::now();
            }
            for p in cfg.peers.values() {
                let mut run = lock(&p.run);
                let endpoint = run.endpoint;
                let Some(t) = run.tunn.as_mut() else {
                    continue;
                };
                match t.update_timers(&mut buf) {
                    TunnResult::WriteToNetwork(pkt) => {
                        if let Some(ep) = endpoint {
                            sends.push((ep, pkt.to_vec()));
                        }
                    }
                    TunnResult::Err(e) => tracing::trace!("peer timers: {e:?}"),
                    _ => {}
                }
            }
        }
        let udp = shared.udp();
        for (to, p) in sends.drain(..) {
            udp.send(to, &p);
        }
    }
}
