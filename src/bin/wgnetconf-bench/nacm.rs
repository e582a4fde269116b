//! `--nacm`: what access control (RFC 8341) costs the operations users
//! repeat most, one-peer edit + commit and get-config of running, at
//! `--base` peers on the plain model. Three ways of asking, interleaved
//! round by round (the order rotates) on one agent and one datastore:
//!
//! - `admin`: the bench user, in group `admin`, whose bootstrap rule-list
//!   starts with a rule permitting all (the agent skips every check);
//! - `nacm off`: user `ops` with `enable-nacm false` set by the admin for
//!   its turn (set back after it; not timed);
//! - `10 rules`: user `ops` under the rule-list below, which denies the
//!   key leaves, the NACM tree, monitoring's sessions, kill-session and
//!   delete-config and one interface, permits two interfaces and reading
//!   the tunnels: realistic for an operator of some sites, and permitting
//!   the measured operations (on interface `BASE_IF`).
//!
//! Before measuring it checks that the rules bite: `ops` reads no private
//! key and may not edit the denied interface.

use std::time::Instant;

use wgnetconf::client::Client;

use super::{
    connect, edit, iface_xml, machine, ms, peer_xml, rpc, Agent, Args, Report, Stats, BASE_IF,
    TUNNEL_NS,
};

const NACM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm";
const NCM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
/// Interface 3099: denied to `ops` whole.
const DENIED_IF: u32 = BASE_IF + 99;
/// A private key for the interfaces (`wgnetconf genkey` output).
const PRIVATE_KEY: &str = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

fn data_rule(
    name: &str,
    module: &str,
    ns: (&str, &str),
    path: &str,
    ops: &str,
    action: &str,
) -> String {
    format!(
        "<rule><name>{name}</name><module-name>{module}</module-name>\
         <path xmlns:{}=\"{}\">{path}</path>\
         <access-operations>{ops}</access-operations><action>{action}</action></rule>",
        ns.0, ns.1
    )
}

fn rpc_rule(name: &str, rpc: &str, action: &str) -> String {
    format!(
        "<rule><name>{name}</name><module-name>ietf-netconf</module-name>\
         <rpc-name>{rpc}</rpc-name><access-operations>exec</access-operations>\
         <action>{action}</action></rule>"
    )
}

/// The `ops` rule-list: 10 rules, key leaves denied before any permit (a
/// matching permit would override their `nacm:default-deny-all`).
fn rules() -> String {
    let t = ("wgt", TUNNEL_NS);
    let tun = "wgnetconf-tunnel";
    let wg = |i: u32| format!("/wgt:tunnel/wgt:wireguard[wgt:instance='{i}']");
    let list = [
        data_rule(
            "no-private-keys",
            tun,
            t,
            "/wgt:tunnel/wgt:wireguard/wgt:private-key",
            "*",
            "deny",
        ),
        data_rule(
            "no-preshared-keys",
            tun,
            t,
            "/wgt:tunnel/wgt:wireguard/wgt:peer/wgt:preshared-key",
            "*",
            "deny",
        ),
        rpc_rule("no-kill-session", "kill-session", "deny"),
        rpc_rule("no-delete-config", "delete-config", "deny"),
        "<rule><name>no-nacm</name><module-name>ietf-netconf-acm</module-name>\
         <access-operations>*</access-operations><action>deny</action></rule>"
            .to_string(),
        data_rule("site-a", tun, t, &wg(BASE_IF), "*", "permit"),
        data_rule("site-b", tun, t, &wg(BASE_IF + 1), "*", "permit"),
        data_rule("core", tun, t, &wg(DENIED_IF), "*", "deny"),
        data_rule(
            "no-sessions",
            "ietf-netconf-monitoring",
            ("ncm", NCM_NS),
            "/ncm:netconf-state/ncm:sessions",
            "read",
            "deny",
        ),
        data_rule("read-tunnels", tun, t, "/wgt:tunnel", "read", "permit"),
    ];
    format!(
        "<edit-config><target><running/></target><config>\
         <nacm xmlns=\"{NACM_NS}\"><rule-list><name>ops</name><group>ops</group>{}</rule-list></nacm>\
         </config></edit-config>",
        list.concat()
    )
}

fn enable(on: bool) -> String {
    format!(
        "<edit-config><target><running/></target><config>\
         <nacm xmlns=\"{NACM_NS}\"><enable-nacm>{on}</enable-nacm></nacm>\
         </config></edit-config>"
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Admin,
    Off,
    Rules,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Admin => "admin (first rule permits all)",
            Mode::Off => "enable-nacm false",
            Mode::Rules => "10-rule rule-list",
        }
    }
}

#[derive(Default)]
struct Measures {
    edit: Stats,
    commit: Stats,
    total: Stats,
    get: Stats,
    bytes: usize,
}

pub async fn run(args: &Args) {
    let (base, per_round, gets, rounds) = if args.smoke {
        (50, 3, 1, 2)
    } else {
        (
            args.base,
            (args.incremental / args.rounds.max(1)).max(1),
            2,
            args.rounds.max(1),
        )
    };
    let agent = Agent::start_with("plain", !args.no_history, &[("ops", &["ops"])]);
    let mut admin = connect(&agent.target()).await;
    let mut ops = connect(&agent.target_as("ops")).await;
    println!("\nwgnetconf-bench --nacm, model plain, on {}\n", machine());

    // The interfaces, with private keys; BASE_IF has the peers.
    let peers: String = (0..base).map(|i| peer_xml(BASE_IF, i)).collect();
    let key = format!("<private-key>{PRIVATE_KEY}</private-key>");
    let named = |name: &str| format!("<description>{name}</description>{key}");
    let mut body = iface_xml(BASE_IF, 51820, &format!("{}{peers}", named("site-a")));
    body.push_str(&iface_xml(BASE_IF + 1, 51821, &named("site-b")));
    body.push_str(&iface_xml(DENIED_IF, 51899, &named("core")));
    rpc(&mut admin, &edit("candidate", &body)).await;
    rpc(&mut admin, "<commit/>").await;
    rpc(&mut admin, &rules()).await;

    // The rules bite.
    let get_config = "<get-config><source><running/></source></get-config>";
    let seen = ops.rpc(get_config).await.expect("get-config as ops");
    assert!(!seen.contains(PRIVATE_KEY), "ops reads a private key");
    assert!(
        seen.contains("<description>site-b</description>"),
        "ops reads the tunnels"
    );
    assert!(
        !seen.contains("<description>core</description>"),
        "ops reads the denied interface"
    );
    let denied = edit(
        "candidate",
        &format!(
            "<wireguard><instance>{DENIED_IF}</instance><description>x</description></wireguard>"
        ),
    );
    assert!(
        ops.rpc(&denied).await.is_err(),
        "ops edited the denied interface"
    );

    let modes = [Mode::Admin, Mode::Off, Mode::Rules];
    let mut m: Vec<Measures> = modes.iter().map(|_| Measures::default()).collect();
    let mut next = base;
    for round in 0..rounds {
        for k in 0..modes.len() {
            let idx = (round + k) % modes.len();
            let mode = modes[idx];
            if mode == Mode::Off {
                rpc(&mut admin, &enable(false)).await;
            }
            let c: &mut Client = if mode == Mode::Admin {
                &mut admin
            } else {
                &mut ops
            };
            for _ in 0..per_round {
                let body = edit(
                    "candidate",
                    &iface_xml(BASE_IF, 51820, &peer_xml(BASE_IF, next))
                        .replace("<listen-port>51820</listen-port>", ""),
                );
                next += 1;
                let te = rpc(c, &body).await;
                let tc = rpc(c, "<commit/>").await;
                m[idx].edit.push(ms(te));
                m[idx].commit.push(ms(tc));
                m[idx].total.push(ms(te + tc));
            }
            for _ in 0..gets {
                let t = Instant::now();
                let r = c.rpc(get_config).await.expect("get-config");
                m[idx].get.push(ms(t.elapsed()));
                m[idx].bytes = r.len();
            }
            if mode == Mode::Off {
                rpc(&mut admin, &enable(true)).await;
            }
        }
    }
    ops.close().await;
    admin.close().await;

    let mut rep = Report { rows: Vec::new() };
    println!(
        "| measure | {} | {} | {} |\n|---|---|---|---|",
        modes[0].name(),
        modes[1].name(),
        modes[2].name()
    );
    let cols = |f: &dyn Fn(&Measures) -> String| -> String {
        m.iter().map(f).collect::<Vec<_>>().join(" | ")
    };
    rep.row(
        format!(
            "one-peer edit+commit at {base}+ peers ({} samples each)",
            rounds * per_round
        ),
        cols(&|x| {
            format!(
                "median {:.2} ms, p99 {:.2}",
                x.total.median(),
                x.total.p99()
            )
        }),
    );
    rep.row(
        "  of which edit-config / commit (medians)",
        cols(&|x| format!("{:.2} / {:.2} ms", x.edit.median(), x.commit.median())),
    );
    rep.row(
        format!(
            "get-config running, {}+ peers ({} samples each)",
            base,
            rounds * gets
        ),
        cols(&|x| {
            format!(
                "median {:.1} ms, {:.2} MB",
                x.get.median(),
                x.bytes as f64 / 1e6
            )
        }),
    );
}
