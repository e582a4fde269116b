//! `wg` on the agent's userspace interfaces: Debian's wireguard-tools `wg`
//! talking to the UAPI socket each boringtun interface serves in the
//! agent's `[wireguard] uapi_dir`.
//!
//! Two agents, each in its own network namespace (the guide's Figure 1
//! sites) and each owning a `wg1`, each with its own socket directory;
//! `wg` runs in the agent's namespace with that directory bind-mounted on
//! `/var/run/wireguard` in a private mount namespace
//! ([`SiteAgent::wg`]).
//!
//! Root only (namespaces, tun devices, mounts): otherwise skipped with the
//! reason (a failure under `WGNETCONF_REQUIRE_ALL=1`). Namespaces and agents
//! are removed by Drop guards, also when an assertion fails.

#[path = "common/netconf.rs"]
mod netconf;
#[path = "common/wg_sites.rs"]
mod wg_sites;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use netconf::NC_NS;
use wg_sites::*;

/// The agent-generated public key of `wg<instance>`, read with `<get>`.
fn public_key(nc: &mut Nc, instance: u16) -> String {
    iface(&nc.get_tunnel(), instance)
        .and_then(|w| w.get("public-key"))
        .unwrap_or_else(|| panic!("no public-key for wg{instance} in <get>"))
}

/// `wg ARGS` on `agent`, which must succeed; its output.
#[track_caller]
fn wg_ok(agent: &SiteAgent, args: &[&str]) -> String {
    let (ok, out) = agent.wg(args);
    assert!(
        ok,
        "{}: wg {}: {out}\nagent log:\n{}",
        agent.ns,
        args.join(" "),
        agent.log()
    );
    out
}

#[track_caller]
fn assert_has(text: &str, want: &str, what: &str) {
    assert!(text.contains(want), "{what}: no {want:?} in:\n{text}");
}

/// One exchange on a UAPI socket as any client would: `request` written,
/// the write side closed, everything read until the agent closes.
fn uapi_raw(path: &std::path::Path, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    // The agent may close before reading all of an over-long request.
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The protocol itself, on the socket without `wg`: the answer's lines,
/// errno values, and input that must not be trusted.
fn check_protocol(agent: &SiteAgent) {
    let path = agent.uapi_dir.join("wg1.sock");
    let get = uapi_raw(&path, b"get=1\n\n");
    let lines: Vec<&str> = get.lines().collect();
    assert!(
        lines.first().is_some_and(|l| {
            l.strip_prefix("private_key=")
                .is_some_and(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        }),
        "get: {get}"
    );
    for want in [
        "listen_port=51820",
        "fwmark=0",
        "protocol_version=1",
        "endpoint=198.51.100.1:51820",
        "persistent_keepalive_interval=0",
        "allowed_ip=10.0.2.0/24",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "rx_bytes=0",
        "tx_bytes=0",
    ] {
        assert!(lines.contains(&want), "get: no line {want:?} in:\n{get}");
    }
    assert!(get.ends_with("\nerrno=0\n\n"), "get: {get:?}");
    // Invalid values and unknown keys are refused (negated errno, as
    // wireguard-go answers and wg expects); unknown operations too.
    assert_eq!(
        uapi_raw(&path, b"set=1\nlisten_port=x\n\n"),
        "errno=-22\n\n"
    );
    assert_eq!(uapi_raw(&path, b"set=1\nfwmark=7\n\n"), "errno=-95\n\n");
    assert_eq!(uapi_raw(&path, b"set=1\nbogus=1\n\n"), "errno=-22\n\n");
    assert_eq!(uapi_raw(&path, b"dance=1\n\n"), "errno=-22\n\n");
    // An over-long line ends the connection without an answer; the
    // socket keeps serving.
    let mut long = b"set=1\nendpoint=".to_vec();
    long.extend(std::iter::repeat_n(b'1', 100_000));
    long.extend_from_slice(b"\n\n");
    assert_eq!(uapi_raw(&path, &long), "");
    assert!(uapi_raw(&path, b"get=1\n\n").ends_with("errno=0\n\n"));
}

#[test]
fn wg_shows_and_sets_the_agents_userspace_interfaces() {
    if skip(
        "wg_shows_and_sets_the_agents_userspace_interfaces",
        &["wg", "unshare", "mount"],
    ) {
        return;
    }
    let fig = Figure1::build("u");
    let a = SiteAgent::start(&fig.site_a, &[]);
    let b = SiteAgent::start(&fig.site_b, &[]);
    assert_ne!(a.uapi_dir, b.uapi_dir);
    let (mut na, mut nb) = (a.session(), b.session());
    na.commit_tunnel(&wireguard(
        1,
        "<listen-port>51820</listen-port><address>10.255.0.1/24</address>",
    ))
    .expect("site A: commit wg1");
    nb.commit_tunnel(&wireguard(
        1,
        "<listen-port>51821</listen-port><address>10.255.0.2/24</address>",
    ))
    .expect("site B: commit wg1");
    let (pa, pb) = (public_key(&mut na, 1), public_key(&mut nb, 1));
    na.commit_tunnel(&wireguard(1, &peer(1, &pb, Some(SITE_B_PUBLIC), &[NET_B])))
        .expect("site A: commit peer 1");
    nb.commit_tunnel(&wireguard(1, &peer(1, &pa, Some(SITE_A_PUBLIC), &[NET_A])))
        .expect("site B: commit peer 1");

    // The socket: in the agent's own directory, a socket, root's, 0600.
    for agent in [&a, &b] {
        let path = agent.uapi_dir.join("wg1.sock");
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\nagent log:\n{}", path.display(), agent.log()));
        assert!(
            meta.file_type().is_socket(),
            "{} is no socket",
            path.display()
        );
        assert_eq!(meta.mode() & 0o777, 0o600, "mode of {}", path.display());
        assert_eq!(meta.uid(), 0, "owner of {}", path.display());
    }

    // Both agents answer, each for its own wg1, through its own directory.
    assert_eq!(wg_ok(&a, &["show", "wg1", "public-key"]).trim(), pa);
    assert_eq!(wg_ok(&b, &["show", "wg1", "public-key"]).trim(), pb);
    let show_a = wg_ok(&a, &["show", "wg1"]);
    assert_has(&show_a, &format!("public key: {pa}"), "wg show (A)");
    assert_has(&show_a, "listening port: 51820", "wg show (A)");
    assert_has(&show_a, &format!("peer: {pb}"), "wg show (A)");
    assert_has(&show_a, "endpoint: 198.51.100.1:51820", "wg show (A)");
    assert_has(&show_a, "allowed ips: 10.0.2.0/24", "wg show (A)");
    let show_b = wg_ok(&b, &["show", "wg1"]);
    assert_has(&show_b, "listening port: 51821", "wg show (B)");
    assert_has(&show_b, &format!("peer: {pa}"), "wg show (B)");
    assert_has(&show_b, "allowed ips: 10.0.1.0/24", "wg show (B)");

    check_protocol(&a);

    // showconf: the private key the agent generated (running) and the peer.
    let private_a = iface(&na.get_config("running"), 1)
        .and_then(|w| w.get("private-key"))
        .expect("site A: private-key in running");
    let conf_a = wg_ok(&a, &["showconf", "wg1"]);
    assert_has(
        &conf_a,
        &format!("PrivateKey = {private_a}"),
        "wg showconf (A)",
    );
    assert_has(&conf_a, "ListenPort = 51820", "wg showconf (A)");
    assert_has(
        &conf_a,
        &format!("[Peer]\nPublicKey = {pb}"),
        "wg showconf (A)",
    );
    assert_has(&conf_a, "AllowedIPs = 10.0.2.0/24", "wg showconf (A)");

    // An out-of-band change with `wg set`. The operational state shows
    // the data plane's endpoint (current-endpoint) but only running's
    // allowed IPs (none are config-false), so the endpoint is what `<get>`
    // is checked on; the new allowed IP is checked with `wg show`, which
    // reads it back from the same device.
    wg_ok(
        &a,
        &[
            "set",
            "wg1",
            "peer",
            &pb,
            "allowed-ips",
            "10.0.2.0/24,10.9.0.0/16",
            "endpoint",
            "192.0.2.99:4242",
        ],
    );
    let data = na.get_tunnel();
    assert_eq!(
        peer_leaf(&data, 1, 1, "current-endpoint").as_deref(),
        Some("192.0.2.99:4242"),
        "site A: <get> does not show the wg set endpoint"
    );
    let allowed = wg_ok(&a, &["show", "wg1", "allowed-ips"]);
    assert_has(
        &allowed,
        "10.0.2.0/24 10.9.0.0/16",
        "wg show allowed-ips (A)",
    );
    // Running keeps what was committed, and the agent did not put it back
    // into the device (report, do not revert).
    let running = na.get_config("running");
    assert_eq!(
        peer_leaf(&running, 1, 1, "endpoint").as_deref(),
        Some(SITE_B_PUBLIC)
    );
    assert_has(
        &wg_ok(&a, &["show", "wg1", "endpoints"]),
        "192.0.2.99:4242",
        "wg show endpoints (A) after <get>",
    );
    // B's interface was not touched by A's socket.
    assert!(
        !wg_ok(&b, &["show", "wg1", "allowed-ips"]).contains("10.9.0.0/16"),
        "site B got site A's change"
    );

    // A bad request is refused and changes nothing: port 51821 is free on
    // A, an invalid key is not.
    let (ok, out) = a.wg(&["set", "wg1", "peer", "not-a-key"]);
    assert!(!ok, "wg set with a bad key succeeded: {out}");

    // Removing the interface removes its socket, only that agent's.
    nb.rpc(&edit_tunnel(&format!(
        "<wireguard xmlns:nc=\"{NC_NS}\" nc:operation=\"delete\"><instance>1</instance></wireguard>"
    )))
    .expect("site B: delete wg1");
    nb.rpc("<commit/>").expect("site B: commit the delete");
    assert!(
        !b.uapi_dir.join("wg1.sock").exists(),
        "site B: wg1.sock outlives wg1"
    );
    let (ok, out) = b.wg(&["show", "wg1"]);
    assert!(!ok, "wg show on a removed interface succeeded: {out}");
    assert_eq!(wg_ok(&a, &["show", "wg1", "public-key"]).trim(), pa);
}
