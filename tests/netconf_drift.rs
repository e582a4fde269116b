//! `<check-drift>` (wgnetconf-agent) with real sessions, on the memory
//! backend: its reply, its parameter errors, the `drift-policy` leaf and
//! `last-drift-check`. The data-plane cases (real `wg set`, `ip link del`)
//! are in `wireguard_drift.rs` and the VM test.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const TUN: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
const AGENT: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";

#[test]
fn check_drift_answers_counts_and_refuses_bad_parameters() {
    let mut env = Env::new();
    env.yang_dirs = Vec::new();
    env.wireguard = Some("memory".into());
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit(
        "running",
        &format!(
            "<tunnel xmlns=\"{TUN}\"><wireguard><instance>1</instance>\
             <drift-policy>repair</drift-policy></wireguard></tunnel>"
        ),
    )
    .assert_ok();
    assert_eq!(
        c.get_config("running")
            .get("tunnel/wireguard/drift-policy")
            .as_deref(),
        Some("repair")
    );
    // Before any check: no last-drift-check.
    assert_eq!(c.rpc("<get/>").data().get("tunnel/last-drift-check"), None);
    let r = c.rpc(&format!(
        "<check-drift xmlns=\"{AGENT}\"><repair>true</repair></check-drift>"
    ));
    for leaf in ["found", "repaired", "failed"] {
        assert_eq!(
            r.root.find(leaf).map(|n| n.text()).as_deref(),
            Some("0"),
            "{leaf} in {}",
            r.text
        );
    }
    let checked = c.rpc("<get/>").data().get("tunnel/last-drift-check");
    assert!(
        checked.is_some_and(|t| t.ends_with('Z')),
        "no last-drift-check"
    );

    let e = c
        .rpc(&format!(
            "<check-drift xmlns=\"{AGENT}\"><repair>maybe</repair></check-drift>"
        ))
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("repair"));
    let e = c
        .rpc(&format!(
            "<check-drift xmlns=\"{AGENT}\"><now/></check-drift>"
        ))
        .expect_error("protocol", "unknown-element");
    assert_eq!(e.info("bad-element"), Some("now"));
    // A bad policy is libyang's to refuse.
    c.edit(
        "running",
        &format!(
            "<tunnel xmlns=\"{TUN}\"><wireguard><instance>1</instance>\
             <drift-policy>ignore</drift-policy></wireguard></tunnel>"
        ),
    )
    .expect_error("application", "invalid-value");
}
