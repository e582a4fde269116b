//! End-to-end: the WireGuard plugin's `peer-handshake` notification
//! (RFC 5277 stream NETCONF) when a real tunnel (boringtun, the guide's
//! Figure 1 in namespaces) completes its first handshake. A subscriber on
//! site A's Unix socket receives it.
//!
//! Root only (namespaces, tun devices): otherwise the test prints why it
//! is skipped and passes.

#[path = "common/netconf.rs"]
mod netconf;
#[path = "common/wg_sites.rs"]
mod wg_sites;

use std::time::{Duration, Instant};

use netconf::{Node, NC_NS};
use wg_sites::*;

/// Site A and B interfaces and peers, as in `wireguard_e2e.rs`.
fn configure(na: &mut Nc, nb: &mut Nc) {
    na.commit_tunnel(&wireguard(
        1,
        "<listen-port>51820</listen-port><address>10.255.0.1/24</address>",
    ))
    .expect("site A: wg1");
    nb.commit_tunnel(&wireguard(
        1,
        "<listen-port>51820</listen-port><address>10.255.0.2/24</address>",
    ))
    .expect("site B: wg1");
    let key = |nc: &mut Nc| {
        iface(&nc.get_tunnel(), 1)
            .and_then(|w| w.get("public-key"))
            .expect("public-key")
    };
    let (pa, pb) = (key(na), key(nb));
    na.commit_tunnel(&wireguard(1, &peer(1, &pb, Some(SITE_B_PUBLIC), &[NET_B])))
        .expect("site A: peer 1");
    nb.commit_tunnel(&wireguard(1, &peer(1, &pa, Some(SITE_A_PUBLIC), &[NET_A])))
        .expect("site B: peer 1");
}

#[test]
fn peer_handshake_up_is_notified() {
    if skip("peer_handshake_up_is_notified", &[]) {
        return;
    }
    let fig = Figure1::build("ev");
    let a = SiteAgent::start(&fig.site_a, &[]);
    let b = SiteAgent::start(&fig.site_b, &[]);

    let mut sub = Raw::connect(&a.sock);
    sub.send(&format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><create-subscription xmlns=\"{NOTIF_NS}\">\
         <filter type=\"subtree\"><peer-handshake xmlns=\"{TUNNEL_NS}\"/></filter>\
         </create-subscription></rpc>"
    ));
    let reply = sub
        .next(Instant::now() + DEADLINE)
        .expect("subscription reply");
    assert!(Node::parse(&reply).child("ok").is_some(), "{reply}");

    let (mut na, mut nb) = (a.session(), b.session());
    configure(&mut na, &mut nb);
    assert!(
        ping_until(&fig.host_a, HOST_B, DEADLINE).is_some(),
        "no ping through the tunnel; agent A log:\n{}",
        a.log()
    );
    // The plugin is polled every 5 s.
    let msg = sub
        .next(Instant::now() + Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no peer-handshake notification; agent A log:\n{}", a.log()));
    let n = Node::parse(&msg);
    assert!(n.is(NOTIF_NS, "notification"), "{msg}");
    let ev = n.child("peer-handshake").unwrap_or_else(|| panic!("{msg}"));
    assert_eq!(ev.ns.as_deref(), Some(TUNNEL_NS));
    assert_eq!(ev.get("wireguard").as_deref(), Some("1"), "{msg}");
    assert_eq!(ev.get("peer").as_deref(), Some("1"), "{msg}");
    assert_eq!(ev.get("state").as_deref(), Some("up"), "{msg}");
    assert!(ev.get("latest-handshake").is_some(), "{msg}");
    drop(fig);
}
