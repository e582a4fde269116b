//! End-to-end tests of the transports and authentication: the real agent
//! binary (`wgnetconf serve --config F`), driven with libssh2 (`ssh2`),
//! OpenSSH's `ssh -s netconf`, the Unix socket and `wgnetconf relay`.
//!
//! Each test starts its own agent in a temp dir with port 0 and waits for
//! its `READY ssh=ADDR unix=PATH` line; the agent is killed when the guard
//! drops. Only what the transport guarantees is asserted: a server
//! `<hello>` in the base namespace, ending `]]>]]>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wgnetconf");
const BASE_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const EOM: &str = "]]>]]>";
/// Upper bound for anything to happen; never a synchronisation sleep.
const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A running agent; killed (and reaped) on drop.
struct Agent {
    child: Child,
    ssh: SocketAddr,
    unix: PathBuf,
    stderr: Arc<Mutex<String>>,
    stderr_lines: Receiver<String>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Starts `wgnetconf serve` on `config` and waits for its READY line.
    fn start(config: &Path) -> Result<Agent, Box<dyn std::error::Error>> {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            // The first start's password goes to stderr only outside
            // systemd: not a service of the systemd that may run the tests.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        // Build the guard first so an early error still kills the child.
        let (err_tx, err_rx) = mpsc::channel();
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = collected.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
                let _ = err_tx.send(line);
            }
        });
        let mut agent = Agent {
            child,
            ssh: SocketAddr::from(([127, 0, 0, 1], 0)),
            unix: PathBuf::new(),
            stderr: collected,
            stderr_lines: err_rx,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(WAIT)
            .map_err(|_| format!("no READY line; stderr:\n{}", agent.stderr_text()))?;
        let (ssh, unix) = parse_ready(&line).ok_or_else(|| format!("bad READY line {line:?}"))?;
        agent.ssh = ssh;
        agent.unix = unix;
        Ok(agent)
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_stderr(&self, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(_) => return Err(format!("no stderr line with {needle:?}")),
            }
        }
    }
}

/// `READY ssh=ADDR unix=PATH`
fn parse_ready(line: &str) -> Option<(SocketAddr, PathBuf)> {
    let mut ssh = None;
    let mut unix = None;
    let mut words = line.split_whitespace();
    if words.next()? != "READY" {
        return None;
    }
    for w in words {
        if let Some(a) = w.strip_prefix("ssh=") {
            ssh = a.parse().ok();
        } else if let Some(p) = w.strip_prefix("unix=") {
            unix = Some(PathBuf::from(p));
        }
    }
    Some((ssh?, unix?))
}

/// A temp dir with a config file, an ed25519 client key pair
/// (`id_ed25519{,.pub}`) and helpers to write the config.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Result<Setup, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        // Reachable by other uids (relay as `nobody`); secrets inside are
        // protected by their own modes.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        // What another uid runs lives here, not in target/: the checkout
        // may sit under a directory only root can traverse (issue 18).
        let bin = dir.path().join("wgnetconf");
        std::fs::copy(BIN, &bin)?;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
            .arg(dir.path().join("id_ed25519"))
            .status()?;
        assert!(status.success(), "ssh-keygen failed");
        Ok(Setup { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `wgnetconf relay` from the copy of the binary any uid can execute.
    fn relay(&self, socket: &Path) -> Command {
        let mut cmd = Command::new(self.path("wgnetconf"));
        cmd.arg("relay").arg("--socket").arg(socket);
        cmd
    }

    fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes the config; `users` is raw TOML appended at the end.
    fn config(&self, extra_ssh: &str, users: &str) -> Result<PathBuf, std::io::Error> {
        let path = self.path("wgnetconf.toml");
        let text = format!(
            "state_dir = {state:?}\n\
             run_dir = {run:?}\n\
             [ssh]\nlisten = [\"127.0.0.1:0\"]\n{extra_ssh}\n\
             [unix]\nsocket = {sock:?}\n\
             [wireguard]\nenabled = false\n\
             {users}\n",
            state = self.state_dir(),
            run = self.path("run"),
            sock = self.path("netconf.sock"),
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// `alice` with a password, her key in an authorized_keys file;
    /// `nobody` (uid 65534 on Debian) configured without credentials.
    fn standard_config(&self, extra_ssh: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let hash = wgnetconf::auth::password::hash_argon2id(PASSWORD)?;
        let keys = self.path("alice_authorized_keys");
        std::fs::copy(self.path("id_ed25519.pub"), &keys)?;
        let users = format!(
            "[[users]]\nname = \"alice\"\ngroups = [\"admin\"]\npassword_hash = {hash:?}\nauthorized_keys_file = {keys:?}\n\
             [[users]]\nname = \"nobody\"\n"
        );
        Ok(self.config(extra_ssh, &users)?)
    }
}

/// Reads until the end-of-message marker (or EOF) and checks it is a hello.
fn read_hello(r: &mut dyn Read) -> Result<String, Box<dyn std::error::Error>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(EOM) {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got)?;
    assert_hello(&text);
    Ok(text)
}

fn assert_hello(text: &str) {
    assert!(text.contains("<hello"), "no <hello> in {text:?}");
    assert!(text.contains(BASE_NS), "no base namespace in {text:?}");
    assert!(
        text.trim_end().ends_with(EOM),
        "no ]]>]]> at the end of {text:?}"
    );
}

fn ssh2_session(addr: SocketAddr) -> Result<ssh2::Session, Box<dyn std::error::Error>> {
    let tcp = TcpStream::connect(addr)?;
    let mut sess = ssh2::Session::new()?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout(WAIT.as_millis() as u32);
    sess.handshake()?;
    Ok(sess)
}

fn ssh2_netconf_hello(sess: &ssh2::Session) -> Result<String, Box<dyn std::error::Error>> {
    let mut channel = sess.channel_session()?;
    channel.subsystem("netconf")?;
    let hello = read_hello(&mut channel)?;
    Ok(hello)
}

/// `ssh` (OpenSSH) with key auth only and no host-key bookkeeping.
fn openssh(setup: &Setup, agent: &Agent, user: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=30",
        "-i",
    ])
    .arg(setup.path("id_ed25519"))
    .arg("-p")
    .arg(agent.ssh.port().to_string())
    .arg(format!("{user}@127.0.0.1"));
    cmd
}

/// Runs `cmd` with stdin closed at once; returns (status, stdout, stderr),
/// killing it if it outlives [`WAIT`].
fn run_bounded(
    mut cmd: Command,
) -> Result<(std::process::ExitStatus, String, String), Box<dyn std::error::Error>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut o = String::new();
        let mut e = String::new();
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        let _ = tx.send((o, e));
    });
    match rx.recv_timeout(WAIT) {
        Ok((o, e)) => Ok((child.wait()?, o, e)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err("command did not finish in time".into())
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn password_auth_gets_hello() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let sess = ssh2_session(agent.ssh)?;
    sess.userauth_password("alice", PASSWORD)?;
    assert!(sess.authenticated());
    ssh2_netconf_hello(&sess)?;
    Ok(())
}

#[test]
fn key_auth_gets_hello() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let sess = ssh2_session(agent.ssh)?;
    sess.userauth_pubkey_file(
        "alice",
        Some(&setup.path("id_ed25519.pub")),
        &setup.path("id_ed25519"),
        None,
    )?;
    assert!(sess.authenticated());
    ssh2_netconf_hello(&sess)?;
    Ok(())
}

#[test]
fn unauthorized_key_is_rejected() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let other = setup.path("other_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()?;
    assert!(status.success());
    let sess = ssh2_session(agent.ssh)?;
    let r = sess.userauth_pubkey_file("alice", Some(&other.with_extension("pub")), &other, None);
    assert!(r.is_err(), "an unlisted key was accepted");
    assert!(!sess.authenticated());
    Ok(())
}

#[test]
fn wrong_password_then_right_one_on_same_connection() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let sess = ssh2_session(agent.ssh)?;
    assert!(sess.userauth_password("alice", "wrong").is_err());
    assert!(!sess.authenticated());
    // The failure must keep password among the methods on offer.
    let methods = sess.auth_methods("alice")?;
    assert!(
        methods.contains("password"),
        "methods after failure: {methods}"
    );
    sess.userauth_password("alice", PASSWORD)?;
    assert!(sess.authenticated());
    ssh2_netconf_hello(&sess)?;
    Ok(())
}

#[test]
fn unknown_user_is_rejected() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let sess = ssh2_session(agent.ssh)?;
    assert!(sess.userauth_password("mallory", PASSWORD).is_err());
    assert!(!sess.authenticated());
    // `nobody` exists but has no password: no way in over SSH.
    assert!(sess.userauth_password("nobody", "").is_err());
    assert!(!sess.authenticated());
    Ok(())
}

#[test]
fn attempts_are_bounded() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let sess = ssh2_session(agent.ssh)?;
    // One past the limit (7 counted rejections); each costs ~1 s.
    for _ in 0..8 {
        assert!(sess.userauth_password("alice", "wrong").is_err());
    }
    assert!(
        sess.userauth_password("alice", PASSWORD).is_err(),
        "the right password was still accepted after 8 failures"
    );
    assert!(!sess.authenticated());
    Ok(())
}

#[test]
fn auth_timeout_disconnects() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("auth_timeout_secs = 2")?)?;
    let mut tcp = TcpStream::connect(agent.ssh)?;
    tcp.set_read_timeout(Some(WAIT))?;
    tcp.write_all(b"SSH-2.0-idle_client\r\n")?;
    let started = Instant::now();
    // Never authenticate: the server must close the connection by itself.
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("server did not hang up: {e}").into()),
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(1));
    Ok(())
}

#[test]
fn exec_shell_and_other_subsystems_are_refused() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let sess = ssh2_session(agent.ssh)?;
    sess.userauth_password("alice", PASSWORD)?;

    let mut ch = sess.channel_session()?;
    assert!(ch.exec("id").is_err(), "exec was accepted");
    let _ = ch.close();
    let mut ch = sess.channel_session()?;
    assert!(ch.shell().is_err(), "shell was accepted");
    let _ = ch.close();
    let mut ch = sess.channel_session()?;
    assert!(ch.subsystem("sftp").is_err(), "sftp was accepted");
    let _ = ch.close();
    // The connection is still usable for netconf.
    ssh2_netconf_hello(&sess)?;

    // OpenSSH: a command is refused, the subsystem works and exits 0.
    let mut cmd = openssh(&setup, &agent, "alice");
    cmd.arg("id");
    let (status, out, _) = run_bounded(cmd)?;
    assert!(!status.success(), "exec over OpenSSH succeeded: {out}");
    assert!(!out.contains("uid="), "a command ran: {out}");
    Ok(())
}

#[test]
fn openssh_subsystem_gets_hello() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let mut cmd = openssh(&setup, &agent, "alice");
    cmd.args(["-s", "netconf"]);
    let (status, out, err) = run_bounded(cmd)?;
    assert_hello(&out);
    assert!(status.success(), "ssh -s netconf: {status}, stderr {err}");
    Ok(())
}

#[test]
fn host_key_is_private_and_stable_across_restart() -> TestResult {
    let setup = Setup::new()?;
    let config = setup.standard_config("")?;
    let key_path = setup.state_dir().join("ssh_host_ed25519_key");

    let first_key = {
        let agent = Agent::start(&config)?;
        let sess = ssh2_session(agent.ssh)?;
        let (key, _) = sess.host_key().ok_or("no host key")?;
        key.to_vec()
    };
    let mode = std::fs::metadata(&key_path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "host key mode {mode:o}");
    let text = std::fs::read_to_string(&key_path)?;
    assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));

    // The first agent was SIGKILLed: its socket is stale, which the
    // restart must cope with too.
    let agent = Agent::start(&config)?;
    let sess = ssh2_session(agent.ssh)?;
    let (key, _) = sess.host_key().ok_or("no host key")?;
    assert_eq!(key, &first_key[..], "host key changed across restart");
    assert_eq!(std::fs::read_to_string(&key_path)?, text);
    Ok(())
}

#[test]
fn first_start_without_users_creates_admin_once() -> TestResult {
    let setup = Setup::new()?;
    let config = setup.config("", "")?;
    let users_toml = setup.state_dir().join("users.toml");
    let prefix = "wgnetconf: created user admin with password ";

    let password = {
        let agent = Agent::start(&config)?;
        let line = agent.wait_stderr(prefix)?;
        let rest = line.split(prefix).nth(1).ok_or("no password")?;
        let password = rest
            .strip_suffix(" (shown once)")
            .ok_or_else(|| format!("unexpected line {line:?}"))?
            .to_owned();
        assert!(password.len() >= 20, "password too short");

        let mode = std::fs::metadata(&users_toml)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "users.toml mode {mode:o}");
        let stored = std::fs::read_to_string(&users_toml)?;
        assert!(!stored.contains(&password), "plaintext password stored");
        assert!(stored.contains("$argon2id$"));
        assert!(stored.contains("[[users]]"));

        let sess = ssh2_session(agent.ssh)?;
        sess.userauth_password("admin", &password)?;
        ssh2_netconf_hello(&sess)?;
        // Shown exactly once, and nowhere else in the logs.
        assert_eq!(agent.stderr_text().matches(password.as_str()).count(), 1);
        password
    };

    let agent = Agent::start(&config)?;
    let sess = ssh2_session(agent.ssh)?;
    sess.userauth_password("admin", &password)?;
    ssh2_netconf_hello(&sess)?;
    let log = agent.stderr_text();
    assert!(!log.contains(prefix), "admin created again: {log}");
    assert!(!log.contains(&password), "password logged on restart");
    Ok(())
}

#[test]
fn unix_socket_as_root_gets_hello() -> TestResult {
    if !is_root() {
        eprintln!("skipped: needs root (uid 0 is the always-allowed peer)");
        return Ok(());
    }
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    assert_eq!(agent.unix, setup.path("netconf.sock"));
    let mode = std::fs::metadata(&agent.unix)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "socket mode {mode:o}");
    let mut s = UnixStream::connect(&agent.unix)?;
    s.set_read_timeout(Some(WAIT))?;
    read_hello(&mut s)?;
    Ok(())
}

#[test]
fn relay_pipes_hello() -> TestResult {
    let setup = Setup::new()?;
    let agent = Agent::start(&setup.standard_config("")?)?;
    let mut child = setup
        .relay(&agent.unix)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read_hello(&mut out).map_err(|e| e.to_string()));
    });
    let hello = rx.recv_timeout(WAIT);
    // Close stdin: the relay half-closes and exits once the agent is done.
    drop(child.stdin.take());
    let status = child.wait()?;
    hello.map_err(|_| "no hello through the relay")??;
    if is_root() {
        assert!(status.success(), "relay exit {status}");
    }
    Ok(())
}

#[test]
fn relay_as_configured_and_unconfigured_uid() -> TestResult {
    if !is_root() {
        eprintln!("skipped: needs root to run the relay as another uid");
        return Ok(());
    }
    let setup = Setup::new()?;
    // Only alice is configured here: `nobody` must be refused...
    let hash = wgnetconf::auth::password::hash_argon2id(PASSWORD)?;
    let config = setup.config(
        "",
        &format!("[[users]]\nname = \"alice\"\ngroups = [\"admin\"]\npassword_hash = {hash:?}\n"),
    )?;
    {
        let agent = Agent::start(&config)?;
        let mut cmd = setup.relay(&agent.unix);
        cmd.uid(65534).gid(65534);
        let (status, out, err) = run_bounded(cmd)?;
        assert!(!status.success(), "unconfigured uid got a session: {out}");
        assert!(!out.contains("<hello"), "unconfigured uid got a hello");
        assert!(err.contains("closed the connection"), "relay stderr: {err}");
        agent.wait_stderr("not a configured user")?;
    }
    // ...and let in once its name is a configured user.
    let config = setup.standard_config("")?;
    let agent = Agent::start(&config)?;
    let mut cmd = setup.relay(&agent.unix);
    cmd.uid(65534).gid(65534);
    let (status, out, err) = run_bounded(cmd)?;
    assert_hello(&out);
    assert!(status.success(), "relay as nobody: {status} {err}");
    Ok(())
}

#[test]
fn relay_without_agent_fails_clearly() -> TestResult {
    let setup = Setup::new()?;
    let (status, _, err) = run_bounded(setup.relay(&setup.path("absent.sock")))?;
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("cannot connect to the agent"), "stderr: {err}");
    Ok(())
}

#[test]
fn sigterm_stops_listeners_and_sessions() -> TestResult {
    let setup = Setup::new()?;
    let mut agent = Agent::start(&setup.standard_config("")?)?;
    // An authenticated session, idle after the greeting.
    let sess = ssh2_session(agent.ssh)?;
    sess.userauth_password("alice", PASSWORD)?;
    let mut channel = sess.channel_session()?;
    channel.subsystem("netconf")?;
    read_hello(&mut channel)?;

    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(agent.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = agent.child.try_wait()? {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "agent still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "agent exit {status}");
    // The session saw the end, the port and the socket are gone.
    let mut rest = String::new();
    let _ = channel.read_to_string(&mut rest);
    assert!(channel.eof(), "session channel still open");
    assert!(
        TcpStream::connect(agent.ssh).is_err(),
        "still accepting SSH"
    );
    assert!(!agent.unix.exists(), "socket left behind");
    Ok(())
}
