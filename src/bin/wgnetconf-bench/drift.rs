//! `--drift`: what a drift check costs (README "Drift detection and
//! repair"), at `--base` peers on one boringtun interface: the check holds
//! the core's lock, so its time is how long commits and reads wait for
//! it. Measured through `<check-drift>` (which is the periodic check plus
//! its RPC round trip): with nothing drifted, and with one peer's
//! allowed-ips changed behind the agent's back on the interface's `wg`
//! UAPI socket and repaired by the same call. A `<get>` of the tunnels at
//! the same size is shown beside it (it reads the same interface state).

use std::io::{Read, Write};
use std::time::Instant;

use super::{
    connect, edit, iface_xml, machine, ms, peer_key, peer_xml, rpc, Agent, Args, Report, Stats,
    BASE_IF, TUNNEL_NS,
};

const AGENT_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";

/// `wg set` of peer `i`'s allowed-ips on the UAPI socket of `wg<ifn>`.
fn move_allowed_ip(agent: &Agent, ifn: u32, i: usize, to: &str) {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(peer_key(ifn, i))
        .expect("key");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let path = agent.dir.join(format!("wireguard/wg{ifn}.sock"));
    let mut s = std::os::unix::net::UnixStream::connect(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    write!(
        s,
        "set=1\npublic_key={hex}\nreplace_allowed_ips=true\nallowed_ip={to}\n\n"
    )
    .expect("uapi write");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.contains("errno=0"), "uapi set: {out}");
}

pub async fn run(args: &Args) {
    let (n, samples) = if args.smoke { (50, 3) } else { (args.base, 20) };
    let agent = Agent::start("wg", true);
    let mut c = connect(&agent.target()).await;
    println!("\nwgnetconf-bench --drift, on {}\n", machine());
    println!("| measure | result |\n|---|---|");
    let mut rep = Report { rows: Vec::new() };
    let ifn = BASE_IF;
    let peers: String = (0..n).map(|i| peer_xml(ifn, i)).collect();
    rpc(&mut c, &edit("candidate", &iface_xml(ifn, 20000, &peers))).await;
    rpc(&mut c, "<commit/>").await;

    let check = |repair: bool| {
        format!("<check-drift xmlns=\"{AGENT_NS}\"><repair>{repair}</repair></check-drift>")
    };
    let mut clean = Stats::default();
    for _ in 0..samples {
        clean.push(ms(rpc(&mut c, &check(false)).await));
    }
    rep.row(
        format!("check-drift, {n} peers, nothing drifted, {samples} samples"),
        format!("median {:.1} ms, p99 {:.1} ms", clean.median(), clean.p99()),
    );
    let mut repair = Stats::default();
    for k in 0..samples {
        move_allowed_ip(&agent, ifn, k % n, "192.0.2.0/24");
        let t = Instant::now();
        let reply = c.rpc(&check(true)).await.expect("check-drift");
        repair.push(ms(t.elapsed()));
        assert!(
            reply.contains(">1</repaired>"),
            "the drift was not repaired: {reply}"
        );
    }
    rep.row(
        format!("check-drift repair=true, one of {n} peers drifted, {samples} samples"),
        format!(
            "median {:.1} ms, p99 {:.1} ms",
            repair.median(),
            repair.p99()
        ),
    );
    let mut get = Stats::default();
    let body =
        format!("<get><filter type=\"subtree\"><tunnel xmlns=\"{TUNNEL_NS}\"/></filter></get>");
    for _ in 0..samples {
        get.push(ms(rpc(&mut c, &body).await));
    }
    rep.row(
        format!("get of the tunnels (same {n} peers, state included), {samples} samples"),
        format!("median {:.1} ms, p99 {:.1} ms", get.median(), get.p99()),
    );
    c.close().await;
}
