//! Filtered reads (issue 15): `<get-config>` with subtree and XPath
//! filters selecting everything, one interface or one peer, next to the
//! unfiltered read, in two layouts — the `wgnetconf-tunnel` model
//! (`/tunnel/wireguard[instance]/peer[instance]`, numeric keys) and the
//! keyed one of `tests/yang-bench` (`/tunnels/wireguard[name]/peer[public-key]`,
//! string keys) — each with all peers in one interface and with 100
//! interfaces of 100 peers. Reported: the agent's CPU time per read (all
//! its threads, from /proc) and the client's wall time, medians.

use std::time::Instant;

use super::{ms, peer_key, rpc, Client, Report, Stats, BASE_IF, TUNNEL_NS};

pub const KEYED_NS: &str = "urn:wgnetconf:bench:keyed";

/// The agent's CPU time so far, in ms (every thread's schedstat).
pub fn agent_cpu_ms(pid: u32) -> f64 {
    let mut ns: u64 = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e6
}

/// One of the two data layouts: how to write an edit, and the filters.
struct Layout {
    name: &'static str,
    /// (interface, peers) → the `<config>` content.
    config: fn(u32, &str) -> String,
    peer: fn(u32, usize) -> String,
    /// (interface, peer) → subtree filters and XPath selects: all, one
    /// interface, one peer.
    subtree: fn(Option<(u32, Option<usize>)>) -> String,
    xpath: fn(Option<(u32, Option<usize>)>) -> String,
    delete: fn(u32) -> String,
}

fn ours_config(ifn: u32, peers: &str) -> String {
    format!(
        "<tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>{ifn}</instance><listen-port>{}</listen-port>{peers}</wireguard></tunnel>",
        30000 + ifn
    )
}

fn ours_subtree(sel: Option<(u32, Option<usize>)>) -> String {
    match sel {
        None => format!("<tunnel xmlns=\"{TUNNEL_NS}\"/>"),
        Some((i, None)) => format!(
            "<tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>{i}</instance></wireguard></tunnel>"
        ),
        Some((i, Some(p))) => format!(
            "<tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>{i}</instance><peer><instance>{}</instance></peer></wireguard></tunnel>",
            p + 1
        ),
    }
}

fn ours_xpath(sel: Option<(u32, Option<usize>)>) -> String {
    match sel {
        None => "/t:tunnel".into(),
        Some((i, None)) => format!("/t:tunnel/t:wireguard[t:instance='{i}']"),
        Some((i, Some(p))) => format!(
            "/t:tunnel/t:wireguard[t:instance='{i}']/t:peer[t:instance='{}']",
            p + 1
        ),
    }
}

fn ours_delete(ifn: u32) -> String {
    format!(
        "<tunnel xmlns=\"{TUNNEL_NS}\" xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><wireguard nc:operation=\"delete\"><instance>{ifn}</instance></wireguard></tunnel>"
    )
}

fn keyed_config(ifn: u32, peers: &str) -> String {
    format!(
        "<tunnels xmlns=\"{KEYED_NS}\"><wireguard><name>wg{ifn}</name><listen-port>{}</listen-port>{peers}</wireguard></tunnels>",
        30000 + ifn
    )
}

fn keyed_peer(ifn: u32, i: usize) -> String {
    format!(
        "<peer><public-key>{}</public-key><endpoint>192.0.2.{}:51820</endpoint><allowed-ip>10.{}.{}.{}/32</allowed-ip></peer>",
        peer_key(ifn, i),
        i % 250 + 1,
        ifn % 250,
        (i >> 8) & 255,
        i & 255
    )
}

fn keyed_subtree(sel: Option<(u32, Option<usize>)>) -> String {
    match sel {
        None => format!("<tunnels xmlns=\"{KEYED_NS}\"/>"),
        Some((i, None)) => format!(
            "<tunnels xmlns=\"{KEYED_NS}\"><wireguard><name>wg{i}</name></wireguard></tunnels>"
        ),
        Some((i, Some(p))) => format!(
            "<tunnels xmlns=\"{KEYED_NS}\"><wireguard><name>wg{i}</name><peer><public-key>{}</public-key></peer></wireguard></tunnels>",
            peer_key(i, p)
        ),
    }
}

fn keyed_xpath(sel: Option<(u32, Option<usize>)>) -> String {
    match sel {
        None => "/k:tunnels".into(),
        Some((i, None)) => format!("/k:tunnels/k:wireguard[k:name='wg{i}']"),
        Some((i, Some(p))) => format!(
            "/k:tunnels/k:wireguard[k:name='wg{i}']/k:peer[k:public-key='{}']",
            peer_key(i, p)
        ),
    }
}

fn keyed_delete(ifn: u32) -> String {
    format!(
        "<tunnels xmlns=\"{KEYED_NS}\" xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><wireguard nc:operation=\"delete\"><name>wg{ifn}</name></wireguard></tunnels>"
    )
}

const LAYOUTS: [Layout; 2] = [
    Layout {
        name: "/tunnel/wireguard[instance]/peer[instance]",
        config: ours_config,
        peer: super::peer_xml,
        subtree: ours_subtree,
        xpath: ours_xpath,
        delete: ours_delete,
    },
    Layout {
        name: "/tunnels/wireguard[name]/peer[public-key]",
        config: keyed_config,
        peer: keyed_peer,
        subtree: keyed_subtree,
        xpath: keyed_xpath,
        delete: keyed_delete,
    },
];

fn edit_running(content: &str) -> String {
    format!("<edit-config><target><running/></target><config>{content}</config></edit-config>")
}

/// Median agent CPU and wall time of `n` runs of `body`.
async fn measure(c: &mut Client, pid: u32, body: &str, n: usize) -> (f64, f64, usize) {
    let (mut cpu, mut wall) = (Stats::default(), Stats::default());
    let mut bytes = 0;
    for _ in 0..n {
        let c0 = agent_cpu_ms(pid);
        let t = Instant::now();
        let r = c
            .rpc(body)
            .await
            .unwrap_or_else(|e| panic!("read failed: {e}"));
        wall.push(ms(t.elapsed()));
        cpu.push(agent_cpu_ms(pid) - c0);
        bytes = r.len();
    }
    (cpu.median(), wall.median(), bytes)
}

fn get_config(filter: &str) -> String {
    format!("<get-config><source><running/></source>{filter}</get-config>")
}

/// Filtered reads at `big` peers in one interface and at `ifaces` ×
/// `per` peers, in both layouts; everything is removed afterwards.
pub async fn run(
    c: &mut Client,
    pid: u32,
    rep: &mut Report,
    big: usize,
    ifaces: u32,
    per: usize,
    samples: usize,
) {
    for l in &LAYOUTS {
        for (count, peers) in [(1u32, big), (ifaces, per)] {
            let first = BASE_IF + 500;
            for k in 0..count {
                let ifn = first + k;
                let p: String = (0..peers).map(|i| (l.peer)(ifn, i)).collect();
                rpc(c, &edit_running(&(l.config)(ifn, &p))).await;
            }
            let mid = first + count / 2;
            let xp = |s: String| {
                format!(
                    "<filter type=\"xpath\" xmlns:t=\"{TUNNEL_NS}\" xmlns:k=\"{KEYED_NS}\" select=\"{s}\"/>"
                )
            };
            let st = |s: String| format!("<filter type=\"subtree\">{s}</filter>");
            let cases = [
                ("no filter", get_config("")),
                ("subtree, everything", get_config(&st((l.subtree)(None)))),
                ("XPath, everything", get_config(&xp((l.xpath)(None)))),
                (
                    "subtree, one interface",
                    get_config(&st((l.subtree)(Some((mid, None))))),
                ),
                (
                    "XPath, one interface",
                    get_config(&xp((l.xpath)(Some((mid, None))))),
                ),
                (
                    "subtree, one peer",
                    get_config(&st((l.subtree)(Some((mid, Some(peers / 2)))))),
                ),
                (
                    "XPath, one peer",
                    get_config(&xp((l.xpath)(Some((mid, Some(peers / 2)))))),
                ),
            ];
            let mut base_cpu = f64::NAN;
            for (what, body) in &cases {
                let (cpu, wall, bytes) = measure(c, pid, body, samples).await;
                if base_cpu.is_nan() {
                    base_cpu = cpu;
                }
                rep.row(
                    format!("get-config {what}: {} × {peers} peers, {}", count, l.name),
                    format!(
                        "agent CPU {cpu:.2} ms ({:.2}× unfiltered), wall {wall:.2} ms, {:.2} MB",
                        cpu / base_cpu,
                        bytes as f64 / 1e6
                    ),
                );
            }
            for k in 0..count {
                rpc(c, &edit_running(&(l.delete)(first + k))).await;
            }
        }
    }
}
