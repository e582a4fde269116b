//! The cross-platform WireGuard UAPI socket
//! (<https://www.wireguard.com/xplatform/>) of one userspace interface,
//! `<dir>/<name>.sock`, so that `wg show`, `wg showconf` and `wg set` work
//! on the agent's interfaces as on wireguard-go's.
//!
//! It reads and changes the same [`Device`] the backend programs (through
//! the same methods), so `wg` and the agent's operational state agree. A
//! `set` is an out-of-band change: the agent reports what the device then
//! has and does not put running back.
//!
//! The socket's input is untrusted even though only root can connect
//! (mode 0600): lines, requests and connections are bounded, and a
//! `set` is parsed whole and checked before anything is changed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

use ipnet::IpNet;

use super::device::Device;
use crate::backend::{BackendError, PeerConfig, Result};
use crate::keys::{from_hex, PublicKey, SecretKey};

/// The device as the backend and the socket share it: the mutex orders a
/// `wg set` against the agent's own commits.
pub type SharedDevice = Arc<Mutex<Device>>;

/// The device behind the mutex, also after a panic elsewhere (the device's
/// own locks keep it consistent).
pub fn lock(dev: &Mutex<Device>) -> MutexGuard<'_, Device> {
    dev.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest line accepted. The longest valid ones (a key, an IPv6
/// endpoint or allowed IP) are under 100 bytes.
const MAX_LINE: u64 = 512;
/// Lines of one `set`: a whole `wg setconf` of ~10,000 peers with a dozen
/// allowed IPs each.
const MAX_SET_LINES: usize = 262_144;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 8;
/// A client that sends or reads nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(10);

/// wg reads `errno=N` and reports `-N`: like wireguard-go we answer the
/// negated errno.
fn errno(e: i32) -> i64 {
    -i64::from(e)
}

/// A listening socket and its accept thread; dropping it stops the thread
/// and removes the socket file (connections still open finish their
/// request and then find the device gone).
pub struct Listener {
    path: PathBuf,
    /// (st_dev, st_ino) of our socket file: a file someone put there since
    /// is not removed.
    id: (u64, u64),
    wake: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Serves `<dir>/<name>.sock` for `dev`. Fails when another live
    /// process serves that path (a stale file from a killed one is
    /// replaced).
    pub fn start(dir: &Path, name: &str, dev: Weak<Mutex<Device>>) -> Result<Listener> {
        let err = |what: &str, e: std::io::Error| BackendError(format!("{what}: {e}"));
        let path = dir.join(format!("{name}.sock"));
        std::fs::create_dir_all(dir).map_err(|e| err(&dir.display().to_string(), e))?;
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(BackendError(format!(
                    "{} is served by another process",
                    path.display()
                )));
            }
            std::fs::remove_file(&path).map_err(|e| err(&path.display().to_string(), e))?;
        }
        // Bound with the umask's mode, then narrowed: connecting needs write
        // permission, which a umask of 022 or stricter never gives others,
        // so there is no window in which a non-root user could connect.
        let listener = UnixListener::bind(&path).map_err(|e| err("bind", e))?;
        let meta = std::fs::metadata(&path).map_err(|e| err("stat", e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err("chmod", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| err("nonblocking", e))?;
        let (wake, woken) = UnixStream::pair().map_err(|e| err("socketpair", e))?;
        let tname = format!("uapi-{name}");
        let thread = std::thread::Builder::new()
            .name(tname.clone())
            .spawn(move || accept_loop(&listener, &woken, &dev, &tname))
            .map_err(|e| err("spawn", e))?;
        Ok(Listener {
            id: (meta.dev(), meta.ino()),
            path,
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // EOF on the other end wakes the accept thread's poll.
        let _ = self.wake.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn accept_loop(
    listener: &UnixListener,
    woken: &UnixStream,
    dev: &Weak<Mutex<Device>>,
    tname: &str,
) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let mut fds = [listener.as_raw_fd(), woken.as_raw_fd()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: poll over our own array of two pollfds, its length given.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            tracing::warn!("{tname}: poll: {}", std::io::Error::last_os_error());
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::debug!("{tname}: accept: {e}");
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            tracing::debug!("{tname}: {MAX_CONNECTIONS} connections open; refusing another");
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (dev, count, name) = (dev.clone(), active.clone(), tname.to_string());
        let spawned = std::thread::Builder::new()
            .name(tname.to_string())
            .spawn(move || {
                serve(stream, &dev, &name);
                count.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("{tname}: spawn: {e}");
        }
    }
}

/// Why a connection ends without an answer.
struct Closed;

/// One line without its `\n`, at most [`MAX_LINE`] bytes; `Closed` on EOF,
/// timeout, an over-long line or one that is not UTF-8.
fn read_line(r: &mut impl BufRead) -> std::result::Result<String, Closed> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(MAX_LINE + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|_| Closed)?;
    if buf.pop() != Some(b'\n') {
        return Err(Closed);
    }
    String::from_utf8(buf).map_err(|_| Closed)
}

/// Requests of one connection, in turn, until it closes.
fn serve(stream: UnixStream, dev: &Weak<Mutex<Device>>, tname: &str) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(IDLE)).is_err()
        || stream.set_write_timeout(Some(IDLE)).is_err()
    {
        return;
    }
    let mut r = BufReader::new(&stream);
    let mut w = BufWriter::new(&stream);
    loop {
        let Ok(op) = read_line(&mut r) else { return };
        let answer = match op.as_str() {
            "get=1" => match read_line(&mut r) {
                Ok(l) if l.is_empty() => match dev.upgrade() {
                    Some(d) => get(&lock(&d)),
                    None => format!("errno={}\n\n", errno(libc::ENODEV)),
                },
                _ => return,
            },
            "set=1" => {
                let answer = match read_set(&mut r) {
                    Err(Closed) => return,
                    Ok(Err(e)) => e,
                    Ok(Ok(req)) => match dev.upgrade() {
                        Some(d) => apply(&mut lock(&d), &req, tname),
                        None => errno(libc::ENODEV),
                    },
                };
                format!("errno={answer}\n\n")
            }
            _ => {
                let _ = write!(w, "errno={}\n\n", errno(libc::EINVAL));
                let _ = w.flush();
                return;
            }
        };
        if w.write_all(answer.as_bytes()).is_err() || w.flush().is_err() {
            return;
        }
    }
}

/// The `get` answer: the interface, then each peer, then `errno=0`.
fn get(dev: &Device) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "private_key={}", dev.private_key().expose_hex());
    let _ = writeln!(s, "listen_port={}", dev.listen_port());
    // No fwmark support: the sockets are never marked.
    let _ = writeln!(s, "fwmark=0");
    for (c, st) in dev.peers() {
        let _ = writeln!(s, "public_key={}", c.public_key.to_hex());
        let psk = c.preshared_key.unwrap_or(SecretKey([0; 32]));
        let _ = writeln!(s, "preshared_key={}", psk.expose_hex());
        let _ = writeln!(s, "protocol_version=1");
        if let Some(ep) = st.endpoint {
            let _ = writeln!(s, "endpoint={ep}");
        }
        let since = st
            .last_handshake
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let _ = writeln!(s, "last_handshake_time_sec={}", since.as_secs());
        let _ = writeln!(s, "last_handshake_time_nsec={}", since.subsec_nanos());
        let _ = writeln!(s, "tx_bytes={}", st.tx_bytes);
        let _ = writeln!(s, "rx_bytes={}", st.rx_bytes);
        let _ = writeln!(
            s,
            "persistent_keepalive_interval={}",
            c.persistent_keepalive
        );
        for a in &c.allowed_ips {
            let _ = writeln!(s, "allowed_ip={a}");
        }
    }
    s.push_str("errno=0\n\n");
    s
}

/// A parsed `set` request.
#[derive(Debug, Default)]
struct SetRequest {
    private_key: Option<SecretKey>,
    listen_port: Option<u16>,
    replace_peers: bool,
    peers: Vec<PeerChange>,
}

#[derive(Debug)]
struct PeerChange {
    key: PublicKey,
    remove: bool,
    update_only: bool,
    /// `Some(None)`: remove the preshared key (all-zero key).
    preshared_key: Option<Option<SecretKey>>,
    endpoint: Option<SocketAddr>,
    keepalive: Option<u16>,
    replace_allowed_ips: bool,
    allowed_ips: Vec<IpNet>,
}

/// Reads a `set` up to its empty line. `Ok(Err(errno))` for a request
/// that was read whole but is invalid (the client gets an answer);
/// `Err(Closed)` when the connection must end.
fn read_set(
    r: &mut impl BufRead,
) -> std::result::Result<std::result::Result<SetRequest, i64>, Closed> {
    let mut req = SetRequest::default();
    let mut bad: Option<i64> = None;
    for _ in 0..MAX_SET_LINES {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(bad.map_or(Ok(req), Err));
        }
        if bad.is_none() {
            if let Err(e) = set_line(&mut req, &line) {
                bad = Some(e);
            }
        }
    }
    Err(Closed)
}

fn flag(v: &str) -> std::result::Result<bool, i64> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(errno(libc::EINVAL)),
    }
}

/// One `key=value` line of a `set` into `req`.
fn set_line(req: &mut SetRequest, line: &str) -> std::result::Result<(), i64> {
    let inval = errno(libc::EINVAL);
    let (k, v) = line.split_once('=').ok_or(inval)?;
    let key = || from_hex(v).ok_or(inval);
    if k == "public_key" {
        req.peers.push(PeerChange {
            key: PublicKey(key()?),
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        });
        return Ok(());
    }
    // After a public_key line, keys belong to that peer.
    if let Some(p) = req.peers.last_mut() {
        match k {
            "remove" => p.remove = flag(v)?,
            "update_only" => p.update_only = flag(v)?,
            "preshared_key" => {
                let b = key()?;
                p.preshared_key = Some((b != [0; 32]).then_some(SecretKey(b)));
            }
            "endpoint" => p.endpoint = Some(v.parse().map_err(|_| inval)?),
            "persistent_keepalive_interval" => p.keepalive = Some(v.parse().map_err(|_| inval)?),
            "replace_allowed_ips" => {
                if flag(v)? {
                    p.replace_allowed_ips = true;
                    p.allowed_ips.clear();
                }
            }
            "allowed_ip" => {
                let net: IpNet = v.parse().map_err(|_| inval)?;
                // As the kernel does: host bits are dropped.
                p.allowed_ips.push(net.trunc());
            }
            "protocol_version" if v == "1" => {}
            _ => return Err(inval),
        }
        return Ok(());
    }
    match k {
        "private_key" => {
            let b = key()?;
            // The device cannot run without a key.
            if b == [0; 32] {
                return Err(inval);
            }
            req.private_key = Some(SecretKey(b));
        }
        "listen_port" => req.listen_port = Some(v.parse().map_err(|_| inval)?),
        // The sockets are never marked: only "no mark" is true.
        "fwmark" if v == "0" => {}
        "fwmark" => return Err(errno(libc::EOPNOTSUPP)),
        "replace_peers" => {
            if flag(v)? {
                req.replace_peers = true;
            }
        }
        _ => return Err(inval),
    }
    Ok(())
}

/// Applies a checked `set`; the errno to answer. Only a listen port in use
/// can fail, and it is tried first, so a failed `set` changes nothing.
fn apply(dev: &mut Device, req: &SetRequest, tname: &str) -> i64 {
    if let Some(port) = req.listen_port {
        if let Err(e) = dev.set_listen_port(port) {
            tracing::warn!("{tname}: wg set: listen port {port}: {e}");
            return errno(libc::EADDRINUSE);
        }
    }
    if let Some(k) = &req.private_key {
        dev.set_private_key(k);
    }
    let mut peers: HashMap<PublicKey, PeerConfig> = dev
        .peers()
        .into_iter()
        .map(|(c, _)| (c.public_key, c))
        .collect();
    if req.replace_peers {
        let all: Vec<PublicKey> = peers.keys().copied().collect();
        dev.remove_peers(&all);
        peers.clear();
    }
    for ch in &req.peers {
        if ch.remove {
            dev.remove_peers(&[ch.key]);
            peers.remove(&ch.key);
            continue;
        }
        let mut cfg = match peers.get(&ch.key) {
            Some(c) => c.clone(),
            None if ch.update_only => continue,
            None => PeerConfig {
                public_key: ch.key,
                preshared_key: None,
                endpoint: None,
                persistent_keepalive: 0,
                allowed_ips: Vec::new(),
            },
        };
        if let Some(psk) = &ch.preshared_key {
            cfg.preshared_key = psk.clone();
        }
        if ch.endpoint.is_some() {
            cfg.endpoint = ch.endpoint;
        }
        if let Some(k) = ch.keepalive {
            cfg.persistent_keepalive = k;
        }
        if ch.replace_allowed_ips {
            cfg.allowed_ips.clear();
        }
        cfg.allowed_ips.extend_from_slice(&ch.allowed_ips);
        cfg.allowed_ips.sort();
        cfg.allowed_ips.dedup();
        dev.set_peers(std::slice::from_ref(&cfg));
        peers.insert(ch.key, cfg);
    }
    // Keys are not logged, only that the change happened.
    tracing::info!(
        "{tname}: wg set: configuration changed out of band ({} peer change(s)); running is not put back",
        req.peers.len()
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<SetRequest, i64> {
        let mut r = std::io::Cursor::new(text.as_bytes().to_vec());
        match read_set(&mut r) {
            Ok(x) => x,
            Err(Closed) => Err(i64::MIN),
        }
    }

    #[test]
    fn set_parses_peer_sections() {
        let k = "11".repeat(32);
        let req = parse(&format!(
            "listen_port=51821\npublic_key={k}\nreplace_allowed_ips=true\n\
             allowed_ip=10.0.0.5/24\nendpoint=[2001:db8::1]:51820\n\
             persistent_keepalive_interval=25\n\n"
        ))
        .expect("valid");
        assert_eq!(req.listen_port, Some(51821));
        let p = &req.peers[0];
        assert_eq!(p.key, PublicKey([0x11; 32]));
        assert_eq!(p.allowed_ips, vec!["10.0.0.0/24".parse::<IpNet>().unwrap()]);
        assert_eq!(p.endpoint, Some("[2001:db8::1]:51820".parse().unwrap()));
        assert_eq!(p.keepalive, Some(25));
    }

    #[test]
    fn set_refuses_bad_input() {
        let k = "11".repeat(32);
        let einval = errno(libc::EINVAL);
        assert_eq!(parse("private_key=+1\n\n").err(), Some(einval));
        assert_eq!(
            parse(&format!("private_key={}\n\n", "00".repeat(32))).err(),
            Some(einval)
        );
        assert_eq!(parse("listen_port=70000\n\n").err(), Some(einval));
        assert_eq!(parse("fwmark=1\n\n").err(), Some(errno(libc::EOPNOTSUPP)));
        assert_eq!(parse("bogus\n\n").err(), Some(einval));
        assert_eq!(
            parse(&format!("public_key={k}\nprivate_key={k}\n\n")).err(),
            Some(einval)
        );
        assert_eq!(
            parse(&format!("public_key={k}\nallowed_ip=10.0.0.1\n\n")).err(),
            Some(einval)
        );
        // Over-long line, missing end: the connection ends.
        assert_eq!(
            parse(&format!("endpoint={}\n\n", "1".repeat(600))).err(),
            Some(i64::MIN)
        );
        assert_eq!(parse("listen_port=1\n").err(), Some(i64::MIN));
    }
}
