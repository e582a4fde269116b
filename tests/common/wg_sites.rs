//! Harness for `tests/wireguard_e2e.rs`: the tunnelling guide's Figure 1 in
//! network namespaces, one `wgnetconf serve` per site running inside its
//! namespace, NETCONF to it over its Unix socket (our own client) or over
//! OpenSSH inside the namespace, and ping helpers.
//!
//! ```text
//!  hostA 10.0.1.2 -- siteA 10.0.1.1 | wg1 | 203.0.113.1 ~~ "internet" ~~
//!       198.51.100.1 | wg1 | siteB 10.0.2.1 -- hostB 10.0.2.2
//! ```
//!
//! Everything is torn down by Drop guards (agents and other processes by
//! pid, then the namespaces, which takes their veths with them), also when
//! an assertion fails. Included with
//! `#[path = "common/wg_sites.rs"] mod wg_sites;` next to `common/netconf.rs`
//! (whose `Env` and `Node` it reuses).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::netconf::{Env, Node, BIN, NC_NS};

pub const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
pub const NOTIF_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
/// Upper bound for anything to happen (agent start, a first handshake);
/// never a synchronisation sleep.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Why the end-to-end tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (needs network namespaces and CAP_NET_ADMIN)".into());
    }
    if std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_err()
    {
        return Some("/dev/net/tun is not usable".into());
    }
    ["ip", "ping", "ss", "ssh"].iter().find_map(|t| missing(t))
}

/// `Some(why)` if command `tool` is not on PATH.
fn missing(tool: &str) -> Option<String> {
    let absent = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true);
    absent.then(|| format!("no `{tool}` command"))
}

/// Whether `test` cannot run here: prints why and returns true, or fails
/// under `WGNETCONF_REQUIRE_ALL=1` (CI on a machine that must run
/// everything). `extra` names further commands the test needs.
pub fn skip(test: &str, extra: &[&str]) -> bool {
    let why = skip_reason().or_else(|| extra.iter().find_map(|t| missing(t)));
    let Some(why) = why else { return false };
    assert!(
        std::env::var_os("WGNETCONF_REQUIRE_ALL").is_none(),
        "{test} cannot run under WGNETCONF_REQUIRE_ALL: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    true
}

/// Runs a command, returns its output (never panics on a non-zero exit).
pub fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"))
}

/// `ip ARGS`, which must succeed.
#[track_caller]
pub fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip netns exec NS ARGS...`, stdout as text (stderr appended on failure).
pub fn in_ns(ns: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    let out = run("ip", &all);
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), text)
}

/// Network namespaces, deleted on drop (with the veths inside them).
pub struct Namespaces(pub Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The guide's Figure 1: four namespaces, three veth links, forwarding on
/// in both sites, default routes on the hosts. No tunnel yet.
pub struct Figure1 {
    pub host_a: String,
    pub site_a: String,
    pub site_b: String,
    pub host_b: String,
    _ns: Namespaces,
}

pub const SITE_A_PUBLIC: &str = "203.0.113.1";
pub const SITE_B_PUBLIC: &str = "198.51.100.1";
pub const HOST_A: &str = "10.0.1.2";
pub const HOST_B: &str = "10.0.2.2";
pub const NET_A: &str = "10.0.1.0/24";
pub const NET_B: &str = "10.0.2.0/24";

impl Figure1 {
    /// `tag` keeps the namespace names of concurrent tests apart.
    pub fn build(tag: &str) -> Figure1 {
        let pid = std::process::id();
        let name = |role: &str| format!("wge{pid}{tag}{role}");
        let f = Figure1 {
            host_a: name("hA"),
            site_a: name("sA"),
            site_b: name("sB"),
            host_b: name("hB"),
            _ns: Namespaces(vec![name("hA"), name("sA"), name("sB"), name("hB")]),
        };
        for ns in &f._ns.0 {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let (ha, sa, sb, hb) = (&f.host_a, &f.site_a, &f.site_b, &f.host_b);
        // Created directly inside the namespaces: no name is ever taken in
        // the root namespace.
        ip(&[
            "link", "add", "inet", "netns", sa, "type", "veth", "peer", "name", "inet", "netns", sb,
        ]);
        ip(&[
            "link", "add", "lan", "netns", sa, "type", "veth", "peer", "name", "eth0", "netns", ha,
        ]);
        ip(&[
            "link", "add", "lan", "netns", sb, "type", "veth", "peer", "name", "eth0", "netns", hb,
        ]);
        // The "internet": each public network is on-link from the other.
        ip(&["-n", sa, "addr", "add", "203.0.113.1/24", "dev", "inet"]);
        ip(&["-n", sb, "addr", "add", "198.51.100.1/24", "dev", "inet"]);
        ip(&["-n", sa, "addr", "add", "10.0.1.1/24", "dev", "lan"]);
        ip(&["-n", sb, "addr", "add", "10.0.2.1/24", "dev", "lan"]);
        ip(&["-n", ha, "addr", "add", "10.0.1.2/24", "dev", "eth0"]);
        ip(&["-n", hb, "addr", "add", "10.0.2.2/24", "dev", "eth0"]);
        for s in [sa, sb] {
            ip(&["-n", s, "link", "set", "inet", "up"]);
            ip(&["-n", s, "link", "set", "lan", "up"]);
            let (ok, err) = in_ns(s, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            assert!(ok, "forwarding in {s}: {err}");
        }
        ip(&["-n", sa, "route", "add", "198.51.100.0/24", "dev", "inet"]);
        ip(&["-n", sb, "route", "add", "203.0.113.0/24", "dev", "inet"]);
        for h in [ha, hb] {
            ip(&["-n", h, "link", "set", "eth0", "up"]);
        }
        ip(&["-n", ha, "route", "add", "default", "via", "10.0.1.1"]);
        ip(&["-n", hb, "route", "add", "default", "via", "10.0.2.1"]);
        assert!(
            ping_until(sa, SITE_B_PUBLIC, DEADLINE).is_some(),
            "no path over the internet veth"
        );
        f
    }

    /// `ip addr`, `ip route` and `ss -uln` of both sites, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for ns in [&self.site_a, &self.site_b] {
            for args in [
                &["ip", "addr"][..],
                &["ip", "route"][..],
                &["ss", "-Hnuln"][..],
            ] {
                s.push_str(&format!(
                    "--- {ns}: {}\n{}",
                    args.join(" "),
                    in_ns(ns, args).1
                ));
            }
        }
        s
    }
}

// ---------------------------------------------------------------------------
// A raw session, for notifications
// ---------------------------------------------------------------------------

/// A bare NETCONF 1.0 session on an agent's Unix socket (as root).
pub struct Raw {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(sock: &std::path::Path) -> Raw {
        let s = UnixStream::connect(sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut r = Raw { s, buf: Vec::new() };
        r.next(Instant::now() + DEADLINE).expect("server hello");
        r.send(&format!(
            "<hello xmlns=\"{NC_NS}\"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>"
        ));
        r
    }

    pub fn send(&mut self, msg: &str) {
        self.s.write_all(msg.as_bytes()).expect("send");
        self.s.write_all(b"]]>]]>").expect("send");
    }

    /// The next message, or `None` at `until`.
    pub fn next(&mut self, until: Instant) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(6).position(|w| w == b"]]>]]>") {
                let m = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 6);
                return Some(m);
            }
            if Instant::now() > until {
                return None;
            }
            let mut b = [0u8; 65536];
            match self.s.read(&mut b) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(_) => {}
            }
        }
    }
}

/// One `ping -c 1 -W 1` from namespace `ns`.
pub fn ping_once(ns: &str, dst: &str) -> bool {
    in_ns(ns, &["ping", "-n", "-q", "-c", "1", "-W", "1", dst]).0
}

/// Pings until a reply comes or `deadline` passes; the time it took.
pub fn ping_until(ns: &str, dst: &str, deadline: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if ping_once(ns, dst) {
            return Some(start.elapsed());
        }
    }
    None
}

/// A child process killed (by pid) and reaped on drop.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Waits for the exit, killing the process after `deadline`; the output.
    pub fn finish(mut self, deadline: Duration) -> Output {
        let mut child = self.0.take().expect("child");
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait_with_output().expect("wait")
    }

    pub fn running(&mut self) -> bool {
        matches!(self.0.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends SIGTERM to `child` and waits (bounded) for it; SIGKILL after that.
fn terminate(child: &mut Child, within: Duration) -> bool {
    // SAFETY: kill(2) on the pid of our own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + within;
    while Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

/// `ip netns exec NS wgnetconf serve` with the boringtun backend, a Unix
/// socket and SSH on the namespace's 127.0.0.1, and its own `wg` UAPI
/// directory; SIGTERM (so it removes its tun devices) and reaped on drop.
pub struct SiteAgent {
    child: Option<Child>,
    pub ns: String,
    pub env: Env,
    pub sock: PathBuf,
    /// `[wireguard] uapi_dir`: private to this agent, since several agents
    /// (one per namespace) each own a `wg1`.
    pub uapi_dir: PathBuf,
    pub ssh: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl SiteAgent {
    pub fn start(ns: &str, extra_env: &[(&str, &str)]) -> SiteAgent {
        SiteAgent::start_with(ns, extra_env, "")
    }

    /// [`SiteAgent::start`] with `wireguard` (TOML lines) added to the
    /// agent's `[wireguard]` section.
    pub fn start_with(ns: &str, extra_env: &[(&str, &str)], wireguard: &str) -> SiteAgent {
        let env = Env::new();
        let sock = env.path("netconf.sock");
        let uapi_dir = env.path("wireguard");
        let pubkey = std::fs::read_to_string(env.path("id_ed25519.pub")).expect("pubkey");
        let config = format!(
            "state_dir = {state:?}\nrun_dir = {run:?}\n\
             [ssh]\nlisten = [\"127.0.0.1:0\"]\n\
             [unix]\nsocket = {sock:?}\n\
             [wireguard]\nenabled = true\nbackend = \"boringtun\"\nuapi_dir = {uapi:?}\n{wireguard}\n\
             [[users]]\nname = \"alice\"\ngroups = [\"admin\"]\nauthorized_keys = [{key:?}]\n",
            state = env.state_dir(),
            run = env.run_dir(),
            uapi = uapi_dir,
            key = pubkey.trim(),
        );
        let path = env.path("agent.toml");
        std::fs::write(&path, config).expect("write config");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, BIN, "serve", "--config"])
            .arg(&path)
            .env("WGNETCONF_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // `ip netns exec` execs the agent: the child's pid is the agent's.
        let mut child = cmd.spawn().expect("spawn ip netns exec wgnetconf");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = SiteAgent {
            child: Some(child),
            ns: ns.to_string(),
            env,
            sock,
            uapi_dir,
            ssh: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: log,
        };
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{ns}: no READY line; stderr:\n{}", agent.log()));
        agent.ssh = line
            .strip_prefix("READY ")
            .and_then(|r| r.split_whitespace().find_map(|w| w.strip_prefix("ssh=")))
            .and_then(|a| a.split(',').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{ns}: bad READY line {line:?}"));
        agent
    }

    /// The agent's stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A NETCONF session over the Unix socket (our own client).
    pub fn session(&self) -> Nc {
        Nc::connect(&self.sock)
    }

    /// `wgnetconf show IFACE --socket SOCK`.
    pub fn show(&self, iface: &str) -> String {
        let sock = self.sock.to_string_lossy().into_owned();
        let out = run(BIN, &["show", iface, "--socket", &sock]);
        assert!(
            out.status.success(),
            "wgnetconf show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Debian's `wg ARGS` on this agent's userspace interfaces: inside its
    /// namespace and a private mount namespace where its UAPI directory is
    /// bind-mounted on `/var/run/wireguard` (where `wg` looks; it has no
    /// setting for another place). What the operator does by hand.
    pub fn wg(&self, args: &[&str]) -> (bool, String) {
        let script = "set -e; dir=$1; shift; \
            if [ ! -d /var/run/wireguard ]; then \
              mount -t tmpfs wgnetconf-test /run; mkdir /run/wireguard; fi; \
            mount --bind \"$dir\" /var/run/wireguard; exec wg \"$@\"";
        let dir = self.uapi_dir.to_string_lossy().into_owned();
        let mut all = vec![
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            &dir,
        ];
        all.extend_from_slice(args);
        let (ok, out) = in_ns(&self.ns, &all);
        (ok, out)
    }

    /// SIGTERM and wait for the exit; whether it exited in time.
    pub fn stop(mut self) -> bool {
        let mut c = self.child.take().expect("child");
        terminate(&mut c, Duration::from_secs(10))
    }

    /// Runs `rpcs` (operation bodies) in one `ssh -s netconf` session,
    /// started inside the agent's namespace with OpenSSH (key auth as
    /// alice, base:1.0 end-of-message framing); the rpc-replies.
    pub fn over_openssh(&self, rpcs: &[String]) -> Vec<String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "ssh", "-F", "/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args(["-o", "LogLevel=ERROR", "-i"])
            .arg(self.env.key())
            .args(["-p", &self.ssh.port().to_string(), "-s", "alice@127.0.0.1"])
            .arg("netconf")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssh");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut msg = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NC_NS}\"><capabilities>\
             <capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>"
        );
        for (i, body) in rpcs.iter().enumerate() {
            msg.push_str(&format!(
                "<rpc xmlns=\"{NC_NS}\" message-id=\"{}\">{body}</rpc>]]>]]>",
                i + 1
            ));
        }
        msg.push_str(&format!(
            "<rpc xmlns=\"{NC_NS}\" message-id=\"close\"><close-session/></rpc>]]>]]>"
        ));
        stdin.write_all(msg.as_bytes()).expect("write to ssh");
        stdin.flush().expect("flush ssh");
        // hello + one reply per rpc + the close-session reply.
        let want = rpcs.len() + 2;
        let mut got = Vec::new();
        let end = Instant::now() + DEADLINE;
        while got.windows(6).filter(|w| w == b"]]>]]>").count() < want {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => got.extend_from_slice(&b),
                Err(_) => break,
            }
        }
        drop(stdin);
        let _ = terminate(&mut child, Duration::from_secs(5));
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let msgs: Vec<String> = text
            .split("]]>]]>")
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(
            msgs.len(),
            want,
            "ssh -s netconf in {}: wanted {want} messages, got {text:?}; ssh stderr: {err}",
            self.ns
        );
        msgs[1..=rpcs.len()].to_vec()
    }
}

impl Drop for SiteAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(10));
        }
    }
}

// ---------------------------------------------------------------------------
// NETCONF over the Unix socket with wgnetconf's own client
// ---------------------------------------------------------------------------

/// A blocking wrapper around `wgnetconf::client::Client` (Unix socket).
pub struct Nc {
    // Dropped before the runtime it is registered with.
    client: Option<wgnetconf::client::Client>,
    rt: tokio::runtime::Runtime,
}

impl Nc {
    pub fn connect(sock: &Path) -> Nc {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let target = wgnetconf::client::Target::Unix(sock.to_path_buf());
        let client = rt
            .block_on(wgnetconf::client::Client::connect(&target))
            .unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
        Nc {
            client: Some(client),
            rt,
        }
    }

    /// One rpc; `Err(reply)` on rpc-error.
    pub fn rpc(&mut self, body: &str) -> Result<String, String> {
        let c = self.client.as_mut().expect("client");
        match self.rt.block_on(c.rpc(body)) {
            Ok(r) => Ok(r),
            Err(wgnetconf::client::ClientError::Rpc(r)) => Err(r),
            Err(e) => panic!("rpc {body}: {e}"),
        }
    }

    /// edit-config of `<tunnel>` content into candidate.
    pub fn edit(&mut self, tunnel: &str) -> Result<String, String> {
        self.rpc(&edit_tunnel(tunnel))
    }

    /// edit-config into candidate, then commit; `Err(reply)` from either.
    pub fn commit_tunnel(&mut self, tunnel: &str) -> Result<(), String> {
        self.edit(tunnel)?;
        self.rpc("<commit/>").map(|_| ())
    }

    /// `<get>` (config and state) of the tunnel subtree: the `<data>` node.
    pub fn get_tunnel(&mut self) -> Node {
        let r = self
            .rpc(&format!(
                "<get><filter type=\"subtree\"><tunnel xmlns=\"{TUNNEL_NS}\"/></filter></get>"
            ))
            .unwrap_or_else(|e| panic!("get: {e}"));
        data(&r)
    }

    /// `<get-config>` of a datastore, the `<data>` node.
    pub fn get_config(&mut self, source: &str) -> Node {
        let r = self
            .rpc(&format!(
                "<get-config><source><{source}/></source></get-config>"
            ))
            .unwrap_or_else(|e| panic!("get-config: {e}"));
        data(&r)
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            // A session that still answers is closed politely.
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), c.close()).await });
        }
    }
}

fn data(reply: &str) -> Node {
    Node::parse(reply)
        .child("data")
        .cloned()
        .unwrap_or_else(|| panic!("no <data> in {reply}"))
}

/// `<edit-config>` of `<tunnel>` content into the candidate.
pub fn edit_tunnel(tunnel: &str) -> String {
    format!(
        "<edit-config><target><candidate/></target><config>\
         <tunnel xmlns=\"{TUNNEL_NS}\">{tunnel}</tunnel></config></edit-config>"
    )
}

/// `<wireguard><instance>N</instance>inner</wireguard>`
pub fn wireguard(instance: u16, inner: &str) -> String {
    format!("<wireguard><instance>{instance}</instance>{inner}</wireguard>")
}

/// A `<peer>` with a public key, optional endpoint (port 51820) and
/// allowed-ips.
pub fn peer(instance: u32, key: &str, endpoint: Option<&str>, allowed: &[&str]) -> String {
    let mut p = format!("<peer><instance>{instance}</instance><public-key>{key}</public-key>");
    if let Some(ep) = endpoint {
        p.push_str(&format!(
            "<endpoint>{ep}</endpoint><listen-port>51820</listen-port>"
        ));
    }
    for a in allowed {
        p.push_str(&format!("<allowed-ip>{a}</allowed-ip>"));
    }
    p.push_str("</peer>");
    p
}

/// The `wireguard` entry `instance` of a `<data>` node.
pub fn iface(data: &Node, instance: u16) -> Option<Node> {
    data.find_all("tunnel/wireguard")
        .into_iter()
        .find(|w| w.get("instance") == Some(instance.to_string()))
        .cloned()
}

/// Leaf `leaf` of peer `p` of interface `i` in a `<data>` node.
pub fn peer_leaf(data: &Node, i: u16, p: u32, leaf: &str) -> Option<String> {
    iface(data, i)?
        .children_named("peer")
        .find(|n| n.get("instance") == Some(p.to_string()))?
        .get(leaf)
}

/// A fresh public key from `wgnetconf genkey | wgnetconf pubkey`.
pub fn new_public_key() -> String {
    let (_, public) = keypair();
    public
}

/// (private, public), base64, with the agent's own key commands.
pub fn keypair() -> (String, String) {
    let private = run(BIN, &["genkey"]);
    assert!(private.status.success(), "wgnetconf genkey");
    let mut child = Command::new(BIN)
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wgnetconf pubkey");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&private.stdout)
        .expect("write key");
    let public = child.wait_with_output().expect("pubkey");
    assert!(public.status.success(), "wgnetconf pubkey");
    (
        String::from_utf8_lossy(&private.stdout).trim().to_string(),
        String::from_utf8_lossy(&public.stdout).trim().to_string(),
    )
}

// ---------------------------------------------------------------------------
// wireguard-go
// ---------------------------------------------------------------------------

/// Debian's `wireguard-go -f NAME` inside a namespace. Its UAPI socket
/// `/var/run/wireguard/NAME.sock` is machine-wide (so `wg` reaches it from
/// any namespace): pick a name nothing else uses. SIGTERM and the socket
/// file removed on drop.
pub struct WireguardGo {
    child: Option<Child>,
    sock: PathBuf,
}

impl WireguardGo {
    pub fn start(ns: &str, name: &str) -> WireguardGo {
        let sock = PathBuf::from(format!("/var/run/wireguard/{name}.sock"));
        if sock.exists() {
            assert!(
                std::os::unix::net::UnixStream::connect(&sock).is_err(),
                "{} is in use: another wireguard-go owns {name}",
                sock.display()
            );
            // Stale, from a process that was killed.
            let _ = std::fs::remove_file(&sock);
        }
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "wireguard-go", "-f", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wireguard-go (Debian package wireguard-go)");
        let mut g = WireguardGo {
            child: Some(child),
            sock,
        };
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&g.sock).is_err() {
            let c = g.child.as_mut().expect("child");
            if c.try_wait().ok().flatten().is_some() || start.elapsed() > DEADLINE {
                let mut err = String::new();
                if let Some(mut e) = c.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("wireguard-go {name} did not come up in {ns}: {err}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        g
    }
}

impl Drop for WireguardGo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
        let _ = std::fs::remove_file(&self.sock);
    }
}
