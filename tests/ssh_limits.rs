//! Issue 12, the SSH side: no client, authenticated or not, can lock the
//! others out. The real agent binary over real TCP; other clients come from
//! other loopback source addresses (all of 127.0.0.0/8 is local on Linux),
//! so each is its own source for the per-source limits.

#[path = "common/netconf.rs"]
mod netconf;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use netconf::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A TCP connection to `dst` from `src` (port chosen by the kernel).
fn connect_from(rt: &tokio::runtime::Runtime, src: [u8; 4], dst: SocketAddr) -> TcpStream {
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4()?;
        // The probes below open many short connections from one address:
        // the port is chosen at connect, where the kernel may take one
        // whose earlier connection is in TIME_WAIT (bind with port 0 picks
        // only free ones, and a fast probe loop used them all up).
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on the socket this function owns, with a
        // pointer to a c_int that lives across the call and its size.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        s.bind(SocketAddr::from((src, 0)))?;
        let tcp = s.connect(dst).await?.into_std()?;
        tcp.set_nonblocking(false)?;
        Ok::<_, std::io::Error>(tcp)
    })
    .expect("connect from another loopback address")
}

/// Whether the agent closed `tcp` without a word: a connection refused at
/// accept. An admitted one gets the SSH version line first.
fn refused_at_accept(mut tcp: TcpStream) -> bool {
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => true,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Ok(_) => false,
        Err(e) => panic!("agent neither answered nor closed: {e}"),
    }
}

#[test]
fn idle_connections_from_one_source_do_not_lock_others_out() {
    let env = Env::new();
    let agent = env.start();
    let rt = runtime();
    // More than the global cap of unauthenticated connections, all from
    // 127.0.0.2, all held open and silent. The kernel queues them for
    // accept in order, so the agent sees every one before the login below.
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| connect_from(&rt, [127, 0, 0, 2], agent.addr))
        .collect();
    // The operator, from 127.0.0.1, logs in and is served.
    let mut c = agent.ssh2(&env);
    c.hello(&[BASE_1_0, BASE_1_1]);
    c.get_config("running");
    c.close();
    drop(idle);
}

#[test]
fn a_source_failing_authentication_is_refused_others_are_not() {
    let mut env = Env::new();
    // Only failed authentication counts here, so nothing else this test
    // does (probe connections closed unauthenticated) can trigger it.
    env.ssh = "penalty_authfail_secs = 60\npenalty_noauth_secs = 0\npenalty_timeout_secs = 0\n\
               penalty_min_secs = 15\n"
        .into();
    let agent = env.start();
    let rt = runtime();

    let mut sess = ssh2::Session::new().expect("session");
    sess.set_tcp_stream(connect_from(&rt, [127, 0, 0, 3], agent.addr));
    sess.set_timeout(WAIT.as_millis() as u32);
    sess.handshake().expect("handshake");
    assert!(sess.userauth_password("alice", "guess").is_err());
    let _ = sess.disconnect(None, "bye", None);
    drop(sess);

    // The penalty lands when the agent has seen that connection end, which
    // this side cannot observe: probe until a connection is refused. (An
    // upper bound only: the failed check is a debug build's argon2id, one
    // at a time, which takes seconds on a loaded machine.)
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        if refused_at_accept(connect_from(&rt, [127, 0, 0, 3], agent.addr)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "127.0.0.3 still admitted after a failed login with a 60 s penalty; agent log:\n{}",
            agent.stderr_text()
        );
    }
    // Another source is untouched.
    let mut c = agent.ssh2(&env);
    c.hello(&[BASE_1_0, BASE_1_1]);
    c.get_config("running");
    c.close();
}

#[test]
fn a_source_holding_connections_to_the_timeout_is_refused() {
    let mut env = Env::new();
    // Only the timeout penalty counts here.
    env.ssh = "auth_timeout_secs = 3\npenalty_timeout_secs = 30\npenalty_authfail_secs = 0\n\
               penalty_noauth_secs = 0\npenalty_min_secs = 15\n"
        .into();
    let agent = env.start();
    let rt = runtime();
    // Connect and say nothing: the agent hangs up at the timeout, and has
    // recorded the penalty before it does.
    let mut idle = connect_from(&rt, [127, 0, 0, 4], agent.addr);
    idle.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut buf = [0u8; 256];
    loop {
        match idle.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the agent kept an idle connection past its timeout: {e}"),
        }
    }
    assert!(
        refused_at_accept(connect_from(&rt, [127, 0, 0, 4], agent.addr)),
        "a source that held a connection to the timeout was admitted again"
    );
    let mut c = agent.session(&env);
    c.get_config("running");
    c.close();
}

#[test]
fn sessions_past_the_cap_are_refused_cleanly() {
    let env = Env::with_netconf("max_sessions = 2");
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    a.get_config("running");
    b.get_config("running");

    // A third login succeeds, but its netconf subsystem request is refused.
    let tcp = TcpStream::connect(agent.addr).expect("connect");
    let mut sess = ssh2::Session::new().expect("session");
    sess.set_tcp_stream(tcp);
    sess.set_timeout(WAIT.as_millis() as u32);
    sess.handshake().expect("handshake");
    let key = env.key();
    sess.userauth_pubkey_file("alice", Some(&key.with_extension("pub")), &key, None)
        .expect("key auth");
    let mut ch = sess.channel_session().expect("channel");
    assert!(
        ch.subsystem("netconf").is_err(),
        "a third session was admitted with max_sessions = 2"
    );
    // The two admitted sessions are still served.
    a.get_config("running");
    b.get_config("running");
    a.close();
    b.close();
}

/// Peak resident memory of process `pid` (VmHWM), in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn concurrent_password_logins_hold_one_argon2_buffer() {
    const PASSWORD: &str = "correct horse battery staple";
    let mut env = Env::new();
    let hash = wgnetconf::auth::password::hash_argon2id(PASSWORD).expect("hash");
    assert!(
        hash.contains("m=19456,t=2,p=1"),
        "not OWASP parameters: {hash}"
    );
    env.user_extra = format!("password_hash = {hash:?}");
    // The checks run one at a time, most of a second each in a debug build
    // on a loaded machine: the last login must not hit the pre-auth
    // timeout while it waits its turn.
    env.ssh = "auth_timeout_secs = 300".into();
    let agent = env.start();
    // Twenty logins at once from one automation host: on a quiet agent the
    // per-source share does not cut them (see transport::preauth).
    let login = |_: u8| {
        let mut sess = ssh2::Session::new().expect("session");
        sess.set_tcp_stream(TcpStream::connect(agent.addr).expect("connect"));
        sess.set_timeout((4 * WAIT).as_millis() as u32);
        sess.handshake().expect("handshake");
        sess.userauth_password("alice", PASSWORD)
            .expect("password login");
        sess
    };
    // One login first: its 19 MiB are in the baseline peak.
    drop(login(1));
    let before = peak_rss_kib(agent.pid());
    let sessions: Vec<ssh2::Session> = std::thread::scope(|s| {
        let login = &login;
        let handles: Vec<_> = (0..20u8).map(|i| s.spawn(move || login(10 + i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login thread"))
            .collect()
    });
    assert!(sessions.iter().all(|s| s.authenticated()));
    let grown_mib = peak_rss_kib(agent.pid()).saturating_sub(before) / 1024;
    eprintln!(
        "peak RSS {} MiB before, grew by {grown_mib} MiB",
        before / 1024
    );
    // Each argon2id check holds 19 MiB while it runs: two at once would
    // already grow the peak by 19 MiB, four (the old limit) by 57.
    assert!(
        grown_mib < 19,
        "peak RSS grew by {grown_mib} MiB during 20 concurrent password logins"
    );
}
