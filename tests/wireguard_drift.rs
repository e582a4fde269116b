//! End-to-end drift detection and repair on the boringtun backend: the
//! guide's Figure 1 in namespaces, two agents, real tunnels. Site A's `wg1`
//! has two peers — site B's `wg1` (peer 1, carrying host A ↔ host B) and
//! site B's `wg2` (peer 2, with a persistent keepalive so it handshakes on
//! its own). Behind agent A's back, Debian's `wg` (on the interface's UAPI
//! socket) changes peer 1's allowed-ips, then removes peer 1, and `ip link
//! del` deletes `wg1`; each is reported in `<get>` and by a notification,
//! and put back (by `<check-drift>` with repair, or by the periodic check
//! under `drift-policy repair`), with peer 2's latest-handshake unchanged
//! where the repair did not need to touch it. Site B moving to another
//! port (site A's peer 1 roams) is not drift.
//!
//! Root only (namespaces, tun devices, mounts): otherwise skipped with the
//! reason (a failure under `WGNETCONF_REQUIRE_ALL=1`). Namespaces and
//! agents are removed by Drop guards, also when an assertion fails.

#[path = "common/netconf.rs"]
mod netconf;
#[path = "common/wg_sites.rs"]
mod wg_sites;

use std::time::Instant;

use netconf::{Node, NC_NS};
use wg_sites::*;

const AGENT_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";
/// Site B's second interface, site A's peer 2.
const NET_C: &str = "10.0.3.0/24";

fn public_key(nc: &mut Nc, instance: u16) -> String {
    iface(&nc.get_tunnel(), instance)
        .and_then(|w| w.get("public-key"))
        .unwrap_or_else(|| panic!("no public-key for wg{instance} in <get>"))
}

/// A peer with endpoint `host`:`port` and a persistent keepalive.
fn peer_at(
    instance: u32,
    key: &str,
    host: &str,
    port: u16,
    allowed: &str,
    keepalive: u16,
) -> String {
    format!(
        "<peer><instance>{instance}</instance><public-key>{key}</public-key>\
         <endpoint>{host}</endpoint><listen-port>{port}</listen-port>\
         <persistent-keepalive>{keepalive}</persistent-keepalive>\
         <allowed-ip>{allowed}</allowed-ip></peer>"
    )
}

/// `<check-drift>` on `nc`: (found, repaired, failed).
fn check_drift(nc: &mut Nc, repair: bool) -> (u32, u32, u32) {
    let r = nc
        .rpc(&format!(
            "<check-drift xmlns=\"{AGENT_NS}\"><repair>{repair}</repair></check-drift>"
        ))
        .unwrap_or_else(|e| panic!("check-drift: {e}"));
    let n = Node::parse(&r);
    let num = |leaf: &str| -> u32 {
        n.get(leaf)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no <{leaf}> in {r}"))
    };
    (num("found"), num("repaired"), num("failed"))
}

/// The `drift` entries of wg1 (peer `None`) or of its peer, from `<get>`:
/// (item, since).
fn drift_items(nc: &mut Nc, peer: Option<u32>) -> Vec<(String, String)> {
    let data = nc.get_tunnel();
    let Some(w) = iface(&data, 1) else {
        return Vec::new();
    };
    let node = match peer {
        None => w,
        Some(p) => match w
            .children_named("peer")
            .find(|n| n.get("instance") == Some(p.to_string()))
        {
            Some(n) => n.clone(),
            None => return Vec::new(),
        },
    };
    node.children_named("drift")
        .map(|d| {
            (
                d.get("item").unwrap_or_default(),
                d.get("since").unwrap_or_default(),
            )
        })
        .collect()
}

/// The next notification's content element (`drift-detected`,
/// `drift-repaired`) on `sub`.
#[track_caller]
fn next_event(sub: &mut Raw, a: &SiteAgent) -> Node {
    let msg = sub
        .next(Instant::now() + DEADLINE)
        .unwrap_or_else(|| panic!("no notification; agent A log:\n{}", a.log()));
    let n = Node::parse(&msg);
    assert!(n.is(NOTIF_NS, "notification"), "{msg}");
    let ev = n
        .elems()
        .find(|e| e.ns.as_deref() == Some(TUNNEL_NS))
        .cloned();
    ev.unwrap_or_else(|| panic!("no wgnetconf-tunnel event in {msg}"))
}

#[track_caller]
fn assert_event(ev: &Node, name: &str, leaves: &[(&str, &str)]) {
    assert!(ev.is(TUNNEL_NS, name), "want {name}, got {ev:?}");
    for (leaf, want) in leaves {
        assert_eq!(ev.get(leaf).as_deref(), Some(*want), "{leaf} of {ev:?}");
    }
}

/// Peer `p`'s latest-handshake on site A, once it has one.
fn handshake(nc: &mut Nc, p: u32) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(h) = peer_leaf(&nc.get_tunnel(), 1, p, "latest-handshake") {
            return h;
        }
        assert!(Instant::now() < end, "peer {p} never completed a handshake");
    }
}

#[test]
fn drift_is_reported_and_repaired_without_touching_other_peers() {
    if skip(
        "drift_is_reported_and_repaired_without_touching_other_peers",
        &["wg", "unshare", "mount"],
    ) {
        return;
    }
    let fig = Figure1::build("dr");
    // A checks every second, so the periodic repair below comes quickly.
    let a = SiteAgent::start_with(&fig.site_a, &[], "drift_check_secs = 1");
    let b = SiteAgent::start(&fig.site_b, &[]);
    let (mut na, mut nb) = (a.session(), b.session());
    na.commit_tunnel(&wireguard(
        1,
        "<listen-port>51820</listen-port><address>10.255.0.1/24</address>",
    ))
    .expect("site A: wg1");
    nb.commit_tunnel(&format!(
        "{}{}",
        wireguard(
            1,
            "<listen-port>51820</listen-port><address>10.255.0.2/24</address>"
        ),
        wireguard(
            2,
            "<listen-port>51821</listen-port><address>10.0.3.1/24</address>"
        )
    ))
    .expect("site B: wg1, wg2");
    let (pa, pb1, pb2) = (
        public_key(&mut na, 1),
        public_key(&mut nb, 1),
        public_key(&mut nb, 2),
    );
    na.commit_tunnel(&wireguard(
        1,
        &format!(
            "{}{}",
            peer(1, &pb1, Some(SITE_B_PUBLIC), &[NET_B]),
            peer_at(2, &pb2, SITE_B_PUBLIC, 51821, NET_C, 5)
        ),
    ))
    .expect("site A: peers");
    nb.commit_tunnel(&format!(
        "{}{}",
        wireguard(1, &peer(1, &pa, Some(SITE_A_PUBLIC), &[NET_A])),
        wireguard(2, &peer_at(1, &pa, SITE_A_PUBLIC, 51820, "10.0.4.0/24", 5))
    ))
    .expect("site B: peers");
    assert!(
        ping_until(&fig.host_a, HOST_B, DEADLINE).is_some(),
        "no ping through the tunnel; agent A log:\n{}",
        a.log()
    );
    let hs2 = handshake(&mut na, 2);
    assert_eq!(check_drift(&mut na, false), (0, 0, 0), "{}", a.log());

    let mut sub = Raw::connect(&a.sock);
    sub.send(&format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><create-subscription xmlns=\"{NOTIF_NS}\">\
         <filter type=\"subtree\"><drift-detected xmlns=\"{TUNNEL_NS}\"/>\
         <drift-repaired xmlns=\"{TUNNEL_NS}\"/></filter>\
         </create-subscription></rpc>"
    ));
    let reply = sub.next(Instant::now() + DEADLINE).expect("subscription");
    assert!(Node::parse(&reply).child("ok").is_some(), "{reply}");

    // 1. `wg set` changes peer 1's allowed-ips: reported, not repaired
    //    under the default policy (report).
    let wg = |args: &[&str]| {
        let (ok, out) = a.wg(args);
        assert!(ok, "wg {}: {out}\nagent log:\n{}", args.join(" "), a.log());
        out
    };
    wg(&["set", "wg1", "peer", &pb1, "allowed-ips", "10.9.9.0/24"]);
    assert_eq!(check_drift(&mut na, false), (1, 0, 0));
    let ev = next_event(&mut sub, &a);
    assert_event(
        &ev,
        "drift-detected",
        &[
            ("wireguard", "1"),
            ("peer", "1"),
            ("item", "allowed-ips"),
            ("detail", "configured 10.0.2.0/24, found 10.9.9.0/24"),
        ],
    );
    let items = drift_items(&mut na, Some(1));
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].0, "allowed-ips");
    assert!(!items[0].1.is_empty(), "no since: {items:?}");
    assert!(
        wg(&["show", "wg1", "allowed-ips"]).contains("10.9.9.0/24"),
        "the report policy changed the data plane"
    );
    // Repaired on request; peer 2 untouched.
    assert_eq!(check_drift(&mut na, true), (1, 1, 0));
    assert_event(
        &next_event(&mut sub, &a),
        "drift-repaired",
        &[
            ("wireguard", "1"),
            ("result", "repaired"),
            ("differences", "1"),
        ],
    );
    let shown = wg(&["show", "wg1", "allowed-ips"]);
    assert!(
        shown.contains(&format!("{pb1}\t{NET_B}")),
        "allowed-ips not put back:\n{shown}"
    );
    assert!(drift_items(&mut na, Some(1)).is_empty());
    assert_eq!(
        peer_leaf(&na.get_tunnel(), 1, 2, "latest-handshake"),
        Some(hs2.clone())
    );
    assert!(
        ping_until(&fig.host_a, HOST_B, DEADLINE).is_some(),
        "tunnel after repair 1"
    );

    // 2. `wg set ... remove` deletes peer 1.
    wg(&["set", "wg1", "peer", &pb1, "remove"]);
    assert_eq!(check_drift(&mut na, false), (1, 0, 0));
    assert_event(
        &next_event(&mut sub, &a),
        "drift-detected",
        &[("wireguard", "1"), ("peer", "1"), ("item", "peer-missing")],
    );
    assert_eq!(drift_items(&mut na, Some(1)).len(), 1);
    assert_eq!(check_drift(&mut na, true), (1, 1, 0));
    assert_event(
        &next_event(&mut sub, &a),
        "drift-repaired",
        &[("result", "repaired")],
    );
    assert!(wg(&["show", "wg1", "peers"]).contains(&pb1));
    assert_eq!(
        peer_leaf(&na.get_tunnel(), 1, 2, "latest-handshake"),
        Some(hs2)
    );
    assert!(
        ping_until(&fig.host_a, HOST_B, DEADLINE).is_some(),
        "tunnel after repair 2"
    );

    // 3. Under drift-policy repair the periodic check re-creates a deleted
    //    interface whole.
    na.commit_tunnel(&wireguard(1, "<drift-policy>repair</drift-policy>"))
        .expect("drift-policy repair");
    ip(&["-n", &fig.site_a, "link", "del", "wg1"]);
    assert_event(
        &next_event(&mut sub, &a),
        "drift-detected",
        &[("wireguard", "1"), ("item", "interface-missing")],
    );
    assert_event(
        &next_event(&mut sub, &a),
        "drift-repaired",
        &[("wireguard", "1"), ("result", "repaired")],
    );
    assert!(
        ping_until(&fig.host_a, HOST_B, DEADLINE).is_some(),
        "no tunnel after wg1 was re-created; agent A log:\n{}\n{}",
        a.log(),
        fig.describe()
    );
    let shown = wg(&["show", "wg1"]);
    assert!(shown.contains(&pb1) && shown.contains(&pb2), "{shown}");
    assert!(drift_items(&mut na, None).is_empty());

    // 4. Site B moves to port 51830: site A's peer 1 roams there. Not drift.
    nb.commit_tunnel(&wireguard(1, "<listen-port>51830</listen-port>"))
        .expect("site B: new port");
    assert!(
        ping_until(&fig.host_b, HOST_A, DEADLINE).is_some(),
        "no tunnel from site B's new port"
    );
    let roamed = format!("{SITE_B_PUBLIC}:51830");
    let end = Instant::now() + DEADLINE;
    while peer_leaf(&na.get_tunnel(), 1, 1, "current-endpoint").as_deref() != Some(&roamed) {
        assert!(
            Instant::now() < end,
            "site A's peer 1 did not roam to {roamed}"
        );
    }
    assert_eq!(check_drift(&mut na, false), (0, 0, 0));
    assert!(drift_items(&mut na, Some(1)).is_empty());
    drop(fig);
}
