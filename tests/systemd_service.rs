//! The agent as a systemd service, outside the VM: the real agent with a
//! notify socket of the test's own (what systemd gives a `Type=notify`
//! service): READY=1 once listening, watchdog pings that stop when the
//! core is wedged, RELOADING=1/READY=1 around a reload, STOPPING=1 at
//! SIGTERM, and the first start's admin password in a 0600 file instead
//! of the journal. And the reload itself (`wgnetconf reload`, the unit's
//! ExecReload): a user's key changed while that user's old session stays
//! open, a removed user's session closed, a broken file refused.

#[path = "common/netconf.rs"]
mod netconf;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netconf::{Env, BIN, WAIT};

/// The test's end of `$NOTIFY_SOCKET`, read all the time by a thread of
/// its own, as systemd does: a socket nobody reads fills up (10 datagrams)
/// and the agent's notifications are dropped.
struct Notify {
    rx: mpsc::Receiver<String>,
}

impl Notify {
    fn bind(env: &Env) -> (Notify, String) {
        let path = env.path("notify");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        (Notify { rx }, path.display().to_string())
    }

    /// The next datagram, or None after `timeout`.
    fn next_within(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Datagrams until one has the line `line`; returns that one.
    fn until(&self, line: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = self.next_within(deadline - Instant::now()) {
                if m.lines().any(|l| l == line) {
                    return m;
                }
                seen.push(m);
            }
        }
        panic!("no {line:?} from the agent; got {seen:?}");
    }
}

fn reload(config: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["reload", "--timeout", "20", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .expect("run wgnetconf reload");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn notify_watchdog_reload_stop_and_password_file() {
    let mut env = Env::new();
    // No [[users]]: the first start generates admin.
    env.users.clear();
    let (notify, path) = Notify::bind(&env);
    env.agent_env = vec![
        ("NOTIFY_SOCKET".into(), path),
        // 300 ms: a ping every 150 ms.
        ("WATCHDOG_USEC".into(), "300000".into()),
    ];
    let config = env.config();
    let agent = env.start();

    let ready = notify.until("READY=1");
    assert!(
        ready.lines().any(|l| l.starts_with("STATUS=serving")),
        "READY without a STATUS: {ready:?}"
    );
    notify.until("WATCHDOG=1");

    // The password: in a 0600 file, never in the log.
    let file = env.state_dir().join("initial-admin-password");
    let mode = std::fs::metadata(&file)
        .expect("initial-admin-password")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let password = std::fs::read_to_string(&file).expect("read password");
    let password = password.trim_end();
    assert!(password.len() >= 20);
    let log = agent.stderr_text();
    assert!(!log.contains(password), "password in the log:\n{log}");
    assert!(log.contains("initial-admin-password"), "log: {log}");
    let tcp = std::net::TcpStream::connect(agent.addr).expect("connect");
    let mut sess = ssh2::Session::new().expect("session");
    sess.set_tcp_stream(tcp);
    sess.set_timeout(WAIT.as_millis() as u32);
    sess.handshake().expect("handshake");
    sess.userauth_password("admin", password)
        .expect("the password in the file logs in");

    // A reload is bracketed by RELOADING=1 and READY=1.
    let (ok, text) = reload(&config);
    assert!(ok, "reload failed: {text}\nagent:\n{}", agent.stderr_text());
    let reloading = notify.until("RELOADING=1");
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    notify.until("READY=1");

    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}");
    notify.until("STOPPING=1");
}

#[test]
fn a_wedged_core_stops_the_watchdog() {
    // The fault point exists in debug builds only (the test command's):
    // in a release build the edit would not hang and the test would fail
    // below, saying the pings went on.
    let mut env = Env::new();
    let (notify, path) = Notify::bind(&env);
    env.agent_env = vec![
        ("NOTIFY_SOCKET".into(), path),
        ("WATCHDOG_USEC".into(), "200000".into()),
        ("WGNETCONF_FAULT".into(), "hang-in-edit".into()),
    ];
    let agent = env.start();
    notify.until("READY=1");
    // A healthy core: pings come.
    notify.until("WATCHDOG=1");
    notify.until("WATCHDOG=1");

    // An edit that never returns, holding the core lock.
    let mut c = agent.session(&env);
    c.send(&format!(
        "<rpc xmlns=\"{}\" message-id=\"1\">{}</rpc>",
        netconf::NC_NS,
        netconf::edit_config("running", "", &netconf::system("<hostname>x</hostname>"))
    ));
    // A ping already on its way may still come; then silence: a second
    // without one is five intervals. Pings that went on would keep every
    // wait short until the deadline.
    let deadline = Instant::now() + WAIT;
    let mut late = 0;
    while notify.next_within(Duration::from_secs(1)).is_some() {
        late += 1;
        assert!(
            Instant::now() < deadline,
            "watchdog pings went on with the core wedged ({late} after the edit)"
        );
    }
    assert!(late <= 3, "{late} pings after the edit");
}

/// The env's config with `[[users]]` replaced by `users` (TOML text).
fn with_users(env: &Env, listen: &str, users: &str) -> String {
    let text = std::fs::read_to_string(env.config()).expect("config");
    let base = text.split("[[users]]").next().expect("config text");
    let base = base.replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [{listen:?}]"),
    );
    format!("{base}{users}")
}

fn user_block(name: &str, groups: &str, key_pub: &Path) -> String {
    let key = std::fs::read_to_string(key_pub).expect("public key");
    format!(
        "[[users]]\nname = {name:?}\ngroups = {groups}\nauthorized_keys = [{:?}]\n",
        key.trim()
    )
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "new-key", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
}

/// Public-key login as `user` with `key`: Ok if the agent accepts it.
fn key_login(addr: std::net::SocketAddr, user: &str, key: &Path) -> Result<(), ssh2::Error> {
    let tcp = std::net::TcpStream::connect(addr).expect("connect");
    let mut sess = ssh2::Session::new()?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout(WAIT.as_millis() as u32);
    sess.handshake()?;
    sess.userauth_pubkey_file(user, Some(&key.with_extension("pub")), key, None)
}

#[test]
fn reload_swaps_keys_keeps_sessions_and_closes_removed_users() {
    let mut env = Env::new();
    env.users = vec![
        ("alice".into(), vec!["admin".into()]),
        ("bob".into(), vec!["admin".into()]),
    ];
    let config = env.config();
    let agent = env.start();
    let mut alice_old = agent.session_as(&env, "alice");
    let mut bob = agent.session_as(&env, "bob");
    alice_old.get_config("running");
    bob.get_config("running");

    // alice gets a new key (the old one goes), bob goes, and the listen
    // address changes (a restart setting: reported, not applied).
    let new_key = env.path("id_new");
    keygen(&new_key);
    let text = with_users(
        &env,
        "127.0.0.1:1",
        &user_block("alice", "[\"admin\"]", &new_key.with_extension("pub")),
    );
    std::fs::write(&config, text).expect("write config");
    let (ok, out) = reload(&config);
    assert!(ok, "reload failed: {out}");
    assert!(out.contains("needs a restart: ssh.listen"), "{out}");
    let log = agent.stderr_text();
    assert!(log.contains("take effect only after a restart"), "{log}");

    // alice's established session goes on; bob's is closed.
    alice_old.get_config("running");
    bob.expect_closed();
    // The new key logs in, the old one no longer does; bob cannot.
    key_login(agent.addr, "alice", &new_key).expect("alice with the new key");
    assert!(key_login(agent.addr, "alice", &env.key()).is_err());
    assert!(key_login(agent.addr, "bob", &env.key()).is_err());
    let mut alice_new = agent.ssh2_as_key(&env, "alice", &new_key);
    alice_new.get_config("running");

    // Still in group admin: her old session may write.
    let edit = netconf::edit_config("running", "", &netconf::system("<hostname>a</hostname>"));
    alice_old.rpc(&edit).assert_ok();

    // The agent refuses a user it cannot use (a password hash of no known
    // scheme) and changes nothing.
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{good}[[users]]\nname = \"carol\"\npassword_hash = \"plain\"\n"),
    )
    .expect("write config");
    let (ok, out) = reload(&config);
    assert!(!ok, "an invalid user was accepted: {out}");
    assert!(
        out.contains("reload failed") && out.contains("carol"),
        "{out}"
    );
    key_login(agent.addr, "alice", &new_key).expect("alice still has the new key");

    // A file that does not parse: `wgnetconf reload` refuses it without
    // signalling the agent; a bare SIGHUP makes the agent refuse it.
    std::fs::write(&config, "this is [not toml").expect("write config");
    let requested = |a: &netconf::Agent| a.stderr_text().matches("reload requested").count();
    let before = requested(&agent);
    let (ok, out) = reload(&config);
    assert!(!ok, "a broken configuration was accepted: {out}");
    assert!(out.contains("not reloading"), "{out}");
    assert_eq!(requested(&agent), before, "the agent was signalled");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(agent.pid(), libc::SIGHUP) }, 0);
    let deadline = Instant::now() + WAIT;
    while !agent
        .stderr_text()
        .contains("reload failed: nothing changed")
    {
        assert!(
            Instant::now() < deadline,
            "no refusal in the log:\n{}",
            agent.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    key_login(agent.addr, "alice", &new_key).expect("alice still has the new key");
    alice_old.get_config("running");
    alice_new.get_config("running");

    // alice leaves group admin: NACM sees it at her sessions' next
    // operation (reads are permitted by default, writes are not).
    let text = with_users(
        &env,
        "127.0.0.1:1",
        &user_block("alice", "[]", &new_key.with_extension("pub")),
    );
    std::fs::write(&config, text).expect("write config");
    let (ok, out) = reload(&config);
    assert!(ok, "reload failed: {out}");
    alice_old.get_config("running");
    // Another value: an edit that changes nothing writes nothing.
    let edit = netconf::edit_config("running", "", &netconf::system("<hostname>b</hostname>"));
    let reply = alice_old.rpc(&edit);
    assert!(
        reply.errors().iter().any(|e| e.tag == "access-denied"),
        "a write outside group admin was not denied: {}",
        reply.text
    );
}
