//! Shared harness for the `tests/netconf_*.rs` suites: a temp environment
//! (state dir, run dir, client key, config), the real agent binary started
//! on 127.0.0.1:0 and awaited on its `READY` line, and a small NETCONF
//! client over libssh2 (`ssh2`) or OpenSSH (`ssh -s netconf`).
//!
//! Included with `#[path = "common/netconf.rs"] mod netconf;` so it does not
//! depend on (or collide with) any other `tests/common` module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

pub const BIN: &str = env!("CARGO_BIN_EXE_wgnetconf");
pub const NC_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
pub const YANG_NS: &str = "urn:ietf:params:xml:ns:yang:1";
pub const TEST_NS: &str = "urn:wgnetconf:test";
pub const BASE_1_0: &str = "urn:ietf:params:netconf:base:1.0";
pub const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";
pub const EOM: &[u8] = b"]]>]]>";
/// Upper bound for anything to happen; never a synchronisation sleep.
pub const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Environment and agent
// ---------------------------------------------------------------------------

/// A temp dir holding `state/`, `run/`, a client key pair and the config.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// Raw TOML for the `[netconf]` table (e.g. `hello_timeout_secs = 1`).
    pub netconf: String,
    /// Raw TOML added to the `[ssh]` table (e.g. `penalty_min_secs = 1`).
    pub ssh: String,
    /// Raw TOML added to alice's `[[users]]` entry (e.g. a `password_hash`).
    pub user_extra: String,
    /// YANG directories (default: `tests/yang`).
    pub yang_dirs: Vec<PathBuf>,
    /// Extra environment of the agent process.
    pub agent_env: Vec<(String, String)>,
    /// `[[users]]`: name and NACM groups, all with the env's key (default:
    /// alice in group admin, which the first start permits everything).
    pub users: Vec<(String, Vec<String>)>,
    /// Serve the local socket (`<dir>/netconf.sock`) for the relay.
    pub unix: bool,
    /// The WireGuard plugin's backend (`None`: the plugin is off).
    pub wireguard: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        Self::with_netconf("")
    }

    pub fn with_netconf(netconf: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "netconf-test", "-f"])
            .arg(dir.path().join("id_ed25519"))
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen");
        assert!(status.success(), "ssh-keygen failed");
        Env {
            dir,
            netconf: netconf.to_string(),
            ssh: String::new(),
            user_extra: String::new(),
            yang_dirs: vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/yang")],
            agent_env: Vec::new(),
            users: vec![("alice".into(), vec!["admin".into()])],
            unix: false,
            wireguard: None,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.path("netconf.sock")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.path("run")
    }

    pub fn key(&self) -> PathBuf {
        self.path("id_ed25519")
    }

    /// Writes the config file and returns its path.
    pub fn config(&self) -> PathBuf {
        let pubkey = std::fs::read_to_string(self.path("id_ed25519.pub")).expect("pubkey");
        let yang = self
            .yang_dirs
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        // The first user gets `user_extra` (e.g. a password hash).
        let users: String = self
            .users
            .iter()
            .enumerate()
            .map(|(i, (name, groups))| {
                format!(
                    "[[users]]\nname = {name:?}\ngroups = {groups:?}\nauthorized_keys = [{:?}]\n{}\n",
                    pubkey.trim(),
                    if i == 0 { self.user_extra.as_str() } else { "" }
                )
            })
            .collect();
        let unix = if self.unix {
            format!("enabled = true\nsocket = {:?}", self.socket())
        } else {
            "enabled = false".to_string()
        };
        let text = format!(
            "state_dir = {state:?}\n\
             run_dir = {run:?}\n\
             yang_dirs = [{yang}]\n\
             [ssh]\nlisten = [\"127.0.0.1:0\"]\n{ssh}\n\
             [unix]\n{unix}\n\
             [netconf]\n{netconf}\n\
             [wireguard]\n{wireguard}\n\
             {users}",
            state = self.state_dir(),
            run = self.run_dir(),
            netconf = self.netconf,
            ssh = self.ssh,
            wireguard = match &self.wireguard {
                Some(b) => format!("enabled = true\nbackend = {b:?}"),
                None => "enabled = false".to_string(),
            },
        );
        let path = self.path("wgnetconf.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Starts an agent on this environment.
    pub fn start(&self) -> Agent {
        Agent::start_with_env(&self.config(), &self.agent_env)
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `wgnetconf serve`; killed and reaped on drop.
pub struct Agent {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The agent's stderr so far, read by a thread of its own; the condvar
    /// is notified at each line (`wait_stderr`).
    stderr: Arc<(Mutex<String>, Condvar)>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Agent {
    pub fn start(config: &Path) -> Agent {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &Path, envs: &[(String, String)]) -> Agent {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            // Not a service of the systemd that may run the tests: the
            // agent would send it READY=1 and hide its password in a file.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("WGNETCONF_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wgnetconf");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let collected = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let sink = collected.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.0.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
                sink.1.notify_all();
            }
        });
        let mut agent = Agent {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: collected,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(_) => panic!("no READY line; stderr:\n{}", agent.stderr_text()),
        };
        let addr = line
            .strip_prefix("READY ")
            .and_then(|rest| rest.split_whitespace().find_map(|w| w.strip_prefix("ssh=")))
            .and_then(|a| a.split(',').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("bad READY line {line:?}"));
        agent.addr = addr;
        agent
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The agent's stderr once `done` holds for it, or as it is when `WAIT`
    /// runs out: a line is read by another thread, so it may arrive after
    /// the reply that shows its effect.
    pub fn wait_stderr(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let (text, cv) = &*self.stderr;
        let Ok(mut s) = text.lock() else {
            return String::new();
        };
        loop {
            let now = Instant::now();
            if done(&s) || now >= deadline {
                return s.clone();
            }
            s = match cv.wait_timeout(s, deadline - now) {
                Ok((s, _)) => s,
                Err(_) => return String::new(),
            };
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("child").id() as i32
    }

    /// Sends `sig` and waits (bounded) for the process to exit.
    fn signal_and_wait(&mut self, sig: i32) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(r, 0, "kill({sig}) failed");
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "agent did not exit after signal {sig}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal_and_wait(libc::SIGTERM)
    }

    /// kill -9.
    pub fn kill9(mut self) {
        self.signal_and_wait(libc::SIGKILL);
    }

    /// A libssh2 session authenticated as alice with the env's key, with the
    /// `netconf` subsystem open; the server hello is not read yet.
    pub fn ssh2(&self, env: &Env) -> Client {
        self.ssh2_as(env, "alice")
    }

    /// [`Agent::session`] as `user` (one of the env's users).
    pub fn session_as(&self, env: &Env, user: &str) -> Client {
        let mut c = self.ssh2_as(env, user);
        c.hello(&[BASE_1_0, BASE_1_1]);
        c
    }

    /// A session through `wgnetconf relay` on the local socket, run as this
    /// process's user (root in the test command: the recovery session).
    pub fn relay_session(&self, env: &Env) -> Client {
        let mut child = Command::new(BIN)
            .args(["relay", "--socket"])
            .arg(env.socket())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relay");
        let stdin = child.stdin.take();
        let rx = pipe_reader(child.stdout.take().expect("stdout"));
        let mut c = Client::new(Box::new(OpenSshWire { child, stdin, rx }));
        c.hello(&[BASE_1_0, BASE_1_1]);
        c
    }

    /// [`Agent::ssh2`] as `user`.
    pub fn ssh2_as(&self, env: &Env, user: &str) -> Client {
        self.ssh2_over_as(env, TcpStream::connect(self.addr).expect("connect"), user)
    }

    /// [`Agent::ssh2`] over a TCP connection the caller made (e.g. from
    /// another loopback source address).
    pub fn ssh2_over(&self, env: &Env, tcp: TcpStream) -> Client {
        self.ssh2_over_as(env, tcp, "alice")
    }

    /// [`Agent::session_as`] with another private key than the env's.
    pub fn ssh2_as_key(&self, _env: &Env, user: &str, key: &Path) -> Client {
        let tcp = TcpStream::connect(self.addr).expect("connect");
        let mut c = self.ssh2_with_key(tcp, user, key);
        c.hello(&[BASE_1_0, BASE_1_1]);
        c
    }

    /// [`Agent::ssh2_over`] as `user`.
    pub fn ssh2_over_as(&self, env: &Env, tcp: TcpStream, user: &str) -> Client {
        self.ssh2_with_key(tcp, user, &env.key())
    }

    fn ssh2_with_key(&self, tcp: TcpStream, user: &str, key: &Path) -> Client {
        let keep = tcp.try_clone().expect("clone tcp");
        let mut sess = ssh2::Session::new().expect("ssh2 session");
        sess.set_tcp_stream(tcp);
        sess.set_timeout(WAIT.as_millis() as u32);
        sess.handshake().expect("ssh handshake");
        sess.userauth_pubkey_file(user, Some(&key.with_extension("pub")), key, None)
            .expect("key auth");
        assert!(sess.authenticated());
        let mut channel = sess.channel_session().expect("channel");
        channel.subsystem("netconf").expect("netconf subsystem");
        Client::new(Box::new(Ssh2Wire {
            _sess: sess,
            channel,
            tcp: keep,
        }))
    }

    /// `ssh -s netconf` (OpenSSH, key auth) as alice.
    pub fn openssh(&self, env: &Env) -> Client {
        let mut child = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
                "-i",
            ])
            .arg(env.key())
            .arg("-p")
            .arg(self.addr.port().to_string())
            .args(["-s", "alice@127.0.0.1", "netconf"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssh");
        let stdin = child.stdin.take();
        let rx = pipe_reader(child.stdout.take().expect("stdout"));
        Client::new(Box::new(OpenSshWire { child, stdin, rx }))
    }

    /// A client that has done the hello exchange offering `caps`.
    pub fn session(&self, env: &Env) -> Client {
        let mut c = self.ssh2(env);
        c.hello(&[BASE_1_0, BASE_1_1]);
        c
    }
}

// ---------------------------------------------------------------------------
// Byte transports
// ---------------------------------------------------------------------------

/// A child's stdout as chunks on a channel (empty chunk: end of stream).
fn pipe_reader(mut stdout: std::process::ChildStdout) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Vec::new());
                    break;
                }
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

pub trait Wire: Send {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Some bytes; empty at end of stream.
    fn recv(&mut self) -> std::io::Result<Vec<u8>>;
    /// Drops the connection abruptly (no NETCONF or SSH goodbye).
    fn abort(&mut self);
    /// Ends the input the server reads (SSH channel EOF), keeping the
    /// output open to read what comes back.
    fn send_eof(&mut self);
}

struct Ssh2Wire {
    _sess: ssh2::Session,
    channel: ssh2::Channel,
    tcp: TcpStream,
}

impl Wire for Ssh2Wire {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.channel.write_all(bytes)?;
        self.channel.flush()
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let n = self.channel.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn abort(&mut self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    fn send_eof(&mut self) {
        let _ = self.channel.send_eof();
    }
}

struct OpenSshWire {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Vec<u8>>,
}

impl Wire for OpenSshWire {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        match self.rx.recv_timeout(WAIT) {
            Ok(b) => Ok(b),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(Vec::new()),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    fn send_eof(&mut self) {
        self.stdin = None;
    }

    fn abort(&mut self) {
        // SIGKILL: the kernel closes the TCP connection under it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OpenSshWire {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// NETCONF client
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub enum RecvError {
    /// The server closed the session (end of stream between messages).
    Closed,
    /// End of stream in the middle of a message.
    Truncated(String),
    Io(std::io::Error),
}

pub struct Client {
    wire: Box<dyn Wire>,
    buf: Vec<u8>,
    eof: bool,
    /// Both ends use chunked framing (RFC 6242 §4.1).
    pub chunked: bool,
    pub session_id: u32,
    pub server_hello: Option<Node>,
    next_id: u32,
    /// The raw bytes of the last message received, framing included.
    pub last_raw: Vec<u8>,
}

impl Client {
    fn new(wire: Box<dyn Wire>) -> Client {
        Client {
            wire,
            buf: Vec::new(),
            eof: false,
            chunked: false,
            session_id: 0,
            server_hello: None,
            next_id: 1,
            last_raw: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.wire.send(bytes).expect("send");
    }

    /// Sends, ignoring a write error (the server may have closed already).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.wire.send(bytes)
    }

    /// One message in the current framing.
    pub fn send(&mut self, msg: &str) {
        let framed = self.frame(msg);
        self.send_raw(&framed);
    }

    pub fn frame(&self, msg: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.chunked {
            out.extend_from_slice(format!("\n#{}\n", msg.len()).as_bytes());
            out.extend_from_slice(msg.as_bytes());
            out.extend_from_slice(b"\n##\n");
        } else {
            out.extend_from_slice(msg.as_bytes());
            out.extend_from_slice(EOM);
        }
        out
    }

    fn fill(&mut self) -> Result<(), RecvError> {
        if self.eof {
            return Err(RecvError::Closed);
        }
        let bytes = self.wire.recv().map_err(RecvError::Io)?;
        if bytes.is_empty() {
            self.eof = true;
        }
        self.buf.extend_from_slice(&bytes);
        Ok(())
    }

    /// Parses one complete message off the front of `buf`, if there is one.
    /// Panics on broken framing from the server: that is a test failure.
    fn take_message(&mut self) -> Option<Vec<u8>> {
        if !self.chunked {
            let i = self.buf.windows(EOM.len()).position(|w| w == EOM)?;
            let msg = self.buf[..i].to_vec();
            self.last_raw = self.buf[..i + EOM.len()].to_vec();
            self.buf.drain(..i + EOM.len());
            return Some(msg);
        }
        let b = &self.buf;
        let mut pos = 0;
        let mut msg = Vec::new();
        loop {
            if b.len() < pos + 3 {
                return None;
            }
            assert_eq!(
                &b[pos..pos + 2],
                b"\n#",
                "bad chunk start in {:?}",
                lossy(b)
            );
            pos += 2;
            if b[pos] == b'#' {
                if b.len() < pos + 2 {
                    return None;
                }
                assert_eq!(b[pos + 1], b'\n', "bad end-of-chunks in {:?}", lossy(b));
                pos += 2;
                assert!(!msg.is_empty(), "end-of-chunks without a chunk");
                self.last_raw = b[..pos].to_vec();
                self.buf.drain(..pos);
                return Some(msg);
            }
            let nl = b[pos..].iter().position(|c| *c == b'\n')?;
            let digits = std::str::from_utf8(&b[pos..pos + nl]).expect("chunk size utf8");
            assert!(
                !digits.is_empty() && !digits.starts_with('0') && digits.len() <= 10,
                "bad chunk size {digits:?}"
            );
            let size: usize = digits.parse().expect("chunk size");
            pos += nl + 1;
            if b.len() < pos + size {
                return None;
            }
            msg.extend_from_slice(&b[pos..pos + size]);
            pos += size;
        }
    }

    /// The next whole message.
    pub fn try_recv(&mut self) -> Result<String, RecvError> {
        loop {
            if let Some(m) = self.take_message() {
                return Ok(String::from_utf8(m).expect("reply is UTF-8"));
            }
            if self.eof {
                return if self.buf.iter().all(u8::is_ascii_whitespace) {
                    Err(RecvError::Closed)
                } else {
                    Err(RecvError::Truncated(lossy(&self.buf)))
                };
            }
            self.fill()?;
        }
    }

    pub fn recv(&mut self) -> String {
        match self.try_recv() {
            Ok(m) => m,
            Err(e) => panic!("no message from the server: {e:?}"),
        }
    }

    /// Reads until the server ends the session; returns the messages that
    /// came before. Panics if it stays open for [`WAIT`].
    pub fn expect_closed(&mut self) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            match self.try_recv() {
                Ok(m) => got.push(m),
                Err(RecvError::Closed) | Err(RecvError::Truncated(_)) => return got,
                Err(RecvError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    panic!("the session stayed open; got {got:?}")
                }
                // A reset or an SSH-level close also ends the session.
                Err(RecvError::Io(_)) => return got,
            }
        }
    }

    /// Reads the server hello (always end-of-message framed).
    pub fn read_server_hello(&mut self) -> Node {
        assert!(!self.chunked);
        let text = self.recv();
        let hello = Node::parse(&text);
        assert!(hello.is(NC_NS, "hello"), "not a hello: {text}");
        let sid = hello
            .child("session-id")
            .unwrap_or_else(|| panic!("no session-id in {text}"))
            .text();
        self.session_id = sid.parse().expect("numeric session-id");
        self.server_hello = Some(hello.clone());
        hello
    }

    pub fn server_capabilities(&self) -> Vec<String> {
        self.server_hello
            .as_ref()
            .and_then(|h| h.child("capabilities"))
            .map(|c| c.children_named("capability").map(Node::text).collect())
            .unwrap_or_default()
    }

    /// Hello exchange: read the server's, send ours with `caps` (EOM), and
    /// switch to chunked framing if both sides offer base:1.1.
    pub fn hello(&mut self, caps: &[&str]) {
        self.read_server_hello();
        let mut msg = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NC_NS}\"><capabilities>"
        );
        for c in caps {
            msg.push_str(&format!("<capability>{c}</capability>"));
        }
        msg.push_str("</capabilities></hello>");
        self.send(&msg);
        let server_11 = self.server_capabilities().iter().any(|c| c == BASE_1_1);
        self.chunked = server_11 && caps.contains(&BASE_1_1);
    }

    /// Sends `<rpc message-id=N>body</rpc>` and returns the reply, checking
    /// that it is an rpc-reply echoing the message-id.
    pub fn rpc(&mut self, body: &str) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        let msg = format!("<rpc xmlns=\"{NC_NS}\" message-id=\"{id}\">{body}</rpc>");
        self.send(&msg);
        let text = self.recv();
        let reply = Reply::new(text);
        assert!(
            reply.root.is(NC_NS, "rpc-reply"),
            "not an rpc-reply: {}",
            reply.text
        );
        assert_eq!(
            reply.root.attr("message-id"),
            Some(id.to_string().as_str()),
            "message-id not echoed: {}",
            reply.text
        );
        reply
    }

    /// Sends a raw message (framed) and returns the parsed reply.
    pub fn raw_rpc(&mut self, msg: &str) -> Reply {
        self.send(msg);
        Reply::new(self.recv())
    }

    /// Ends what the server reads (EOF), e.g. after a truncated message.
    pub fn send_eof(&mut self) {
        self.wire.send_eof();
    }

    /// Drops the connection without close-session.
    pub fn abort(mut self) {
        self.wire.abort();
    }

    // ----- operation shorthands -----

    pub fn get_config(&mut self, source: &str) -> Node {
        self.rpc(&format!(
            "<get-config><source><{source}/></source></get-config>"
        ))
        .data()
    }

    pub fn get_config_filtered(&mut self, source: &str, filter: &str) -> Node {
        self.rpc(&format!(
            "<get-config><source><{source}/></source><filter type=\"subtree\">{filter}</filter></get-config>"
        ))
        .data()
    }

    pub fn edit(&mut self, target: &str, config: &str) -> Reply {
        self.rpc(&edit_config(target, "", config))
    }

    pub fn lock(&mut self, target: &str) -> Reply {
        self.rpc(&format!("<lock><target><{target}/></target></lock>"))
    }

    pub fn unlock(&mut self, target: &str) -> Reply {
        self.rpc(&format!("<unlock><target><{target}/></target></unlock>"))
    }

    pub fn commit(&mut self) -> Reply {
        self.rpc("<commit/>")
    }

    pub fn copy(&mut self, source: &str, target: &str) -> Reply {
        self.rpc(&format!(
            "<copy-config><target><{target}/></target><source><{source}/></source></copy-config>"
        ))
    }

    pub fn close(&mut self) {
        self.rpc("<close-session/>").assert_ok();
        let rest = self.expect_closed();
        assert!(rest.is_empty(), "messages after close-session: {rest:?}");
    }
}

/// An `<edit-config>` body; `params` go between target and config.
pub fn edit_config(target: &str, params: &str, config: &str) -> String {
    format!(
        "<edit-config><target><{target}/></target>{params}<config>{config}</config></edit-config>"
    )
}

/// `<system xmlns="urn:wgnetconf:test">inner</system>`
pub fn system(inner: &str) -> String {
    format!("<system xmlns=\"{TEST_NS}\">{inner}</system>")
}

/// `<servers xmlns="urn:wgnetconf:test">inner</servers>`
pub fn servers(inner: &str) -> String {
    format!("<servers xmlns=\"{TEST_NS}\">{inner}</servers>")
}

/// `<server><name>n</name><address>a</address>extra</server>`
pub fn server(name: &str, address: &str, extra: &str) -> String {
    format!("<server><name>{name}</name><address>{address}</address>{extra}</server>")
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

pub struct Reply {
    pub text: String,
    pub root: Node,
}

/// One `<rpc-error>`, field by field.
#[derive(Clone, Debug)]
pub struct RpcErr {
    pub error_type: String,
    pub tag: String,
    pub severity: String,
    pub app_tag: Option<String>,
    pub path: Option<String>,
    /// Prefix → namespace bindings in scope on `<error-path>`.
    pub path_ns: Vec<(String, String)>,
    pub message: Option<String>,
    pub info: Vec<Info>,
}

/// One child of `<error-info>`.
#[derive(Clone, Debug)]
pub struct Info {
    pub name: String,
    pub ns: Option<String>,
    pub value: String,
    /// Prefix → namespace bindings in scope on the element.
    pub scope: Vec<(String, String)>,
}

impl RpcErr {
    pub fn info(&self, name: &str) -> Option<&str> {
        self.info
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.value.as_str())
    }

    pub fn infos(&self, name: &str) -> Vec<&str> {
        self.info
            .iter()
            .filter(|i| i.name == name)
            .map(|i| i.value.as_str())
            .collect()
    }
}

impl Reply {
    pub fn new(text: String) -> Reply {
        let root = Node::parse(&text);
        Reply { text, root }
    }

    pub fn is_ok(&self) -> bool {
        self.root.child("ok").is_some() && self.root.child("rpc-error").is_none()
    }

    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "expected <ok/>, got {}", self.text);
    }

    #[track_caller]
    pub fn data(&self) -> Node {
        match self.root.child("data") {
            Some(d) => d.clone(),
            None => panic!("expected <data>, got {}", self.text),
        }
    }

    pub fn errors(&self) -> Vec<RpcErr> {
        self.root
            .children_named("rpc-error")
            .map(|e| {
                let t = |n: &str| e.child(n).map(Node::text);
                let path = e.child("error-path");
                RpcErr {
                    error_type: t("error-type").unwrap_or_default(),
                    tag: t("error-tag").unwrap_or_default(),
                    severity: t("error-severity").unwrap_or_default(),
                    app_tag: t("error-app-tag"),
                    path: path.map(Node::text),
                    path_ns: path.map(|p| p.scope.clone()).unwrap_or_default(),
                    message: t("error-message"),
                    info: e
                        .child("error-info")
                        .map(|i| {
                            i.elems()
                                .map(|c| Info {
                                    name: c.local.clone(),
                                    ns: c.ns.clone(),
                                    value: c.text(),
                                    scope: c.scope.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The only rpc-error; panics if the reply is ok or has several.
    #[track_caller]
    pub fn error(&self) -> RpcErr {
        let errors = self.errors();
        assert!(
            errors.len() == 1
                && self.root.child("ok").is_none()
                && self.root.child("data").is_none(),
            "expected exactly one rpc-error, got {}",
            self.text
        );
        errors.into_iter().next().expect("one error")
    }

    /// The only rpc-error, checked for type and tag.
    #[track_caller]
    pub fn expect_error(&self, error_type: &str, tag: &str) -> RpcErr {
        let e = self.error();
        assert_eq!(
            (e.error_type.as_str(), e.tag.as_str(), e.severity.as_str()),
            (error_type, tag, "error"),
            "wrong error in {}",
            self.text
        );
        e
    }
}

// ---------------------------------------------------------------------------
// A small namespace-aware XML tree (independent of the agent's own parser)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Node {
    pub local: String,
    pub ns: Option<String>,
    pub attrs: Vec<(String, String)>,
    /// Prefixed namespace bindings in scope here (innermost first).
    pub scope: Vec<(String, String)>,
    pub children: Vec<Node>,
    pub text: String,
}

impl Node {
    pub fn parse(text: &str) -> Node {
        let mut reader = NsReader::from_str(text);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<Node> = Vec::new();
        let mut scopes: Vec<Vec<(String, String)>> = vec![Vec::new()];
        let mut root = None;
        loop {
            let (res, ev) = reader
                .read_resolved_event()
                .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {text}"));
            let ns = match res {
                ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(p) => {
                    panic!("undeclared prefix {:?} in {text}", lossy(&p))
                }
            };
            match ev {
                Event::Start(ref s) | Event::Empty(ref s) => {
                    let empty = matches!(ev, Event::Empty(_));
                    let mut scope = scopes.last().cloned().unwrap_or_default();
                    let mut attrs = Vec::new();
                    for a in s.attributes() {
                        let a = a.expect("attribute");
                        let key = lossy(a.key.as_ref());
                        let value = a.unescape_value().expect("attribute value").into_owned();
                        if let Some(p) = key.strip_prefix("xmlns:") {
                            scope.retain(|(q, _)| q != p);
                            scope.insert(0, (p.to_string(), value.clone()));
                        }
                        attrs.push((key, value));
                    }
                    let node = Node {
                        local: lossy(s.local_name().as_ref()),
                        ns,
                        attrs,
                        scope: scope.clone(),
                        children: Vec::new(),
                        text: String::new(),
                    };
                    if empty {
                        match stack.last_mut() {
                            Some(p) => p.children.push(node),
                            None => root = Some(node),
                        }
                    } else {
                        scopes.push(scope);
                        stack.push(node);
                    }
                }
                Event::End(_) => {
                    scopes.pop();
                    let node = stack.pop().expect("balanced");
                    match stack.last_mut() {
                        Some(p) => p.children.push(node),
                        None => root = Some(node),
                    }
                }
                Event::Text(t) => {
                    if let Some(p) = stack.last_mut() {
                        p.text.push_str(&t.xml_content().expect("text"));
                    }
                }
                Event::CData(c) => {
                    if let Some(p) = stack.last_mut() {
                        p.text.push_str(&lossy(&c));
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(p) = stack.last_mut() {
                        let s = match r.resolve_char_ref() {
                            Ok(Some(ch)) => ch.to_string(),
                            _ => match lossy(&r).as_str() {
                                "lt" => "<".into(),
                                "gt" => ">".into(),
                                "amp" => "&".into(),
                                "quot" => "\"".into(),
                                "apos" => "'".into(),
                                other => panic!("unknown entity {other}"),
                            },
                        };
                        p.text.push_str(&s);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        root.unwrap_or_else(|| panic!("no root element in {text:?}"))
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        self.text.trim().to_string()
    }

    pub fn elems(&self) -> impl Iterator<Item = &Node> {
        self.children.iter()
    }

    pub fn child(&self, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.local == local)
    }

    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.local == local)
    }

    /// Every node at `a/b/c` (local names) below this one.
    pub fn find_all(&self, path: &str) -> Vec<&Node> {
        let mut cur = vec![self];
        for step in path.split('/').filter(|s| !s.is_empty()) {
            cur = cur
                .into_iter()
                .flat_map(|n| n.children.iter().filter(|c| c.local == step))
                .collect();
        }
        cur
    }

    pub fn find(&self, path: &str) -> Option<&Node> {
        self.find_all(path).into_iter().next()
    }

    /// Text of the first node at `path`.
    pub fn get(&self, path: &str) -> Option<String> {
        self.find(path).map(Node::text)
    }

    /// Texts of every node at `path` (leaf-list values, list keys).
    pub fn values(&self, path: &str) -> Vec<String> {
        self.find_all(path).into_iter().map(Node::text).collect()
    }

    /// The `servers/server` entry named `name`.
    pub fn server(&self, name: &str) -> Option<&Node> {
        self.find_all("servers/server")
            .into_iter()
            .find(|s| s.get("name").as_deref() == Some(name))
    }

    /// A canonical text form for comparing whole trees: element names
    /// (with namespace), text, children in document order.
    pub fn canon(&self) -> String {
        let mut out = String::new();
        self.canon_into(&mut out);
        out
    }

    fn canon_into(&self, out: &mut String) {
        out.push('{');
        out.push_str(self.ns.as_deref().unwrap_or(""));
        out.push('}');
        out.push_str(&self.local);
        let t = self.text();
        if !t.is_empty() {
            out.push('=');
            out.push_str(&t);
        }
        if !self.children.is_empty() {
            out.push('(');
            for c in &self.children {
                c.canon_into(out);
                out.push(',');
            }
            out.push(')');
        }
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A configuration touching every construct of the test model.
pub fn seed_config() -> String {
    format!(
        "{}{}",
        system("<hostname>alpha</hostname><mtu>1400</mtu><dns>10.0.0.1</dns><dns>10.0.0.2</dns>"),
        servers(&format!(
            "{}{}",
            server("a", "10.0.0.10", "<port>80</port><tag>x</tag><tag>y</tag>"),
            server("b", "10.0.0.11", "<port>81</port><backup>a</backup>")
        ))
    )
}

/// Writes [`seed_config`] to running and checks it took.
pub fn seed(c: &mut Client) {
    c.edit("running", &seed_config()).assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert_eq!(d.values("servers/server/name"), ["a", "b"]);
}

/// `prefix:name` steps of an error-path rewritten as `{namespace}name`
/// using the bindings in scope, so paths compare whatever prefixes the
/// server chose. Panics on a prefix that is not declared.
pub fn resolve_path(path: &str, scope: &[(String, String)]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let q = c;
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != q {
                out.push(chars[i]);
                i += 1;
            }
            if i < chars.len() {
                out.push(q);
            }
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | ':'))
            {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect();
            match token.split_once(':') {
                Some((p, name)) => {
                    let ns = scope
                        .iter()
                        .find(|(q, _)| q == p)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| panic!("prefix {p} of {path} is not declared"));
                    out.push_str(&format!("{{{ns}}}{name}"));
                }
                None => out.push_str(&token),
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Checks an rpc-error's error-path: `expected` is written with the `wt:`
/// prefix for the test module; the server's prefixes must be declared.
#[track_caller]
pub fn assert_error_path(e: &RpcErr, expected: &str) {
    let got = e
        .path
        .as_deref()
        .unwrap_or_else(|| panic!("no error-path in {e:?}"));
    let want_scope = vec![("wt".to_string(), TEST_NS.to_string())];
    assert_eq!(
        resolve_path(got, &e.path_ns),
        resolve_path(expected, &want_scope),
        "error-path {got:?} (bindings {:?})",
        e.path_ns
    );
}
