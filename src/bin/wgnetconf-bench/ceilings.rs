//! The ceilings the data-plane figures are read against, measured on the
//! same two namespaces and veth as the tunnel (see dataplane.rs):
//!
//! - the veth alone (TCP between the underlay addresses, no tunnel);
//! - a tun pair without crypto: one tun device in each namespace and a
//!   thread per direction copying packets from one to the other, first
//!   packet by packet (no offloads: what a userspace tunnel's system calls
//!   cost without any crypto), then with TSO/GRO (each read is up to 64 KiB
//!   of TCP segments, written as they are to the other side);
//! - the crypto alone: ChaCha20-Poly1305 (ring, which boringtun's noise
//!   core also uses) sealing and opening 1,420-byte packets on one core;
//! - Debian's `wireguard-go`, configured with `wg`, through the same veth.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wgnetconf_wireguard::backend::boringtun::tun;

use super::dataplane::{in_ns, ip, Proc};

/// Tun pair addresses (inside namespaces A and B).
pub const PAIR_A: &str = "10.254.0.1";
pub const PAIR_B: &str = "10.254.0.2";
/// wireguard-go's tunnel addresses.
pub const GO_A: &str = "10.249.0.1";
pub const GO_B: &str = "10.249.0.2";
const MTU: &str = "1420";

/// Runs `f` on a fresh thread that entered network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on an fd we own, for this thread only (CLONE_NEWNET).
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Two tun devices (`tp0` in each namespace) joined by two copying
/// threads; stopped and removed on drop.
pub struct TunPair {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TunPair {
    pub fn start(ns_a: &str, ns_b: &str, offload: bool) -> TunPair {
        let open = |ns: &str| {
            in_netns(ns, move || {
                let (fd, got) = tun::open("tp0", offload).expect("tun pair device");
                assert!(!offload || got.tso, "the kernel refused TSO on tun");
                fd
            })
        };
        let (a, b) = (Arc::new(open(ns_a)), Arc::new(open(ns_b)));
        for (ns, addr, peer) in [(ns_a, PAIR_A, PAIR_B), (ns_b, PAIR_B, PAIR_A)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/32"),
                "peer",
                &format!("{peer}/32"),
                "dev",
                "tp0",
            ]);
            ip(&["-n", ns, "link", "set", "tp0", "mtu", MTU, "up"]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = [(a.clone(), b.clone()), (b, a)]
            .into_iter()
            .map(|(from, to)| {
                let stop = stop.clone();
                std::thread::spawn(move || copy(&from, &to, &stop))
            })
            .collect();
        TunPair { stop, threads }
    }
}

/// Copies packets (with their virtio_net_hdr) from one tun to the other
/// until `stop`; the poll timeout only bounds how long stopping takes.
fn copy(from: &OwnedFd, to: &OwnedFd, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536 + tun::VNET_HDR_LEN];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        // SAFETY: read on our descriptor into our buffer, at most its length.
        let n = unsafe { libc::read(from.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            // SAFETY: write from our buffer, of the `n` bytes read into it.
            unsafe { libc::write(to.as_raw_fd(), buf.as_ptr().cast(), n as usize) };
        }
    }
}

impl Drop for TunPair {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The devices go with the last descriptor (the threads' Arcs).
    }
}

/// ChaCha20-Poly1305 on one core, 1,420-byte packets for `secs`: Gbit/s
/// of plaintext sealed, opened, and sealed+opened (a tunnel whose both
/// ends are on this machine does both for every packet).
pub fn crypto(secs: f64) -> (f64, f64, f64) {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("key"));
    let nonce = |n: u64| {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_le_bytes());
        Nonce::assume_unique_for_key(b)
    };
    let mut pkt = vec![0x5au8; 1420];
    let run = |f: &mut dyn FnMut(u64)| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < secs {
            for _ in 0..256 {
                f(n);
                n += 1;
            }
        }
        n as f64 * 1420.0 * 8.0 / start.elapsed().as_secs_f64() / 1e9
    };
    let seal = run(&mut |n| {
        let tag = key
            .seal_in_place_separate_tag(nonce(n), Aad::empty(), &mut pkt)
            .expect("seal");
        let _ = std::hint::black_box(tag);
    });
    let mut sealed = vec![0x5au8; 1420];
    let tag = key
        .seal_in_place_separate_tag(nonce(0), Aad::empty(), &mut sealed)
        .expect("seal");
    sealed.extend_from_slice(tag.as_ref());
    let mut work = sealed.clone();
    let open = run(&mut |_| {
        work.copy_from_slice(&sealed);
        let r = key.open_in_place(nonce(0), Aad::empty(), &mut work);
        std::hint::black_box(r.is_ok());
    });
    (seal, open, 1.0 / (1.0 / seal + 1.0 / open))
}

/// `wg genkey` and its public key.
fn wg_keypair() -> (String, String) {
    let out = Command::new("wg")
        .arg("genkey")
        .output()
        .expect("wg genkey");
    let private = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg pubkey");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(private.as_bytes())
        .expect("wg pubkey stdin");
    let out = child.wait_with_output().expect("wg pubkey");
    (
        private,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Why the wireguard-go reference cannot run, if it cannot.
pub fn wireguard_go_missing() -> Option<&'static str> {
    for tool in ["wireguard-go", "wg"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Some(tool);
        }
    }
    None
}

/// Debian's wireguard-go in both namespaces, `(namespace, interface,
/// underlay address)` per site (its UAPI socket
/// `/var/run/wireguard/<name>.sock` is not per namespace, so the names
/// differ), each the other's peer over the veth. Stopped on drop (its interface goes with it).
pub struct WireguardGo {
    _procs: Vec<Proc>,
    socks: Vec<String>,
}

impl WireguardGo {
    pub fn start(sites: [(&str, &str, &str); 2], dir: &std::path::Path) -> WireguardGo {
        let keys = [wg_keypair(), wg_keypair()];
        let mut procs = Vec::new();
        let mut socks = Vec::new();
        for (i, (ns, name, _)) in sites.iter().enumerate() {
            let sock = format!("/var/run/wireguard/{name}.sock");
            let _ = std::fs::remove_file(&sock);
            procs.push(Proc(
                Command::new("ip")
                    .args(["netns", "exec", ns, "wireguard-go", "-f", name])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn wireguard-go"),
            ));
            socks.push(sock.clone());
            let start = Instant::now();
            while !std::path::Path::new(&sock).exists() {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "wireguard-go {name} did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let keyfile = dir.join(format!("{name}.key"));
            std::fs::write(&keyfile, &keys[i].0).expect("key file");
            let peer_under = sites[1 - i].2;
            let (addr, peer_addr) = if i == 0 { (GO_A, GO_B) } else { (GO_B, GO_A) };
            let out = in_ns(
                ns,
                &[
                    "wg",
                    "set",
                    name,
                    "private-key",
                    &keyfile.to_string_lossy(),
                    "listen-port",
                    "51900",
                    "peer",
                    &keys[1 - i].1,
                    "endpoint",
                    &format!("{peer_under}:51900"),
                    "allowed-ips",
                    &format!("{peer_addr}/32"),
                ],
            );
            assert!(
                out.status.success(),
                "wg set {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", name]);
            ip(&["-n", ns, "link", "set", name, "mtu", MTU, "up"]);
        }
        WireguardGo {
            _procs: procs,
            socks,
        }
    }
}

impl Drop for WireguardGo {
    fn drop(&mut self) {
        for s in &self.socks {
            let _ = std::fs::remove_file(s);
        }
    }
}
