//! Confirmed commit through the WireGuard plugin (memory backend): an apply
//! failure arms no timer, and a rollback goes through the pipeline, so the
//! data plane follows. Its own test binary: it sets the plugin's
//! fault-injection variable for the agents it starts.

#[path = "common/netconf.rs"]
mod netconf;

use std::time::{Duration, Instant};

use netconf::*;

const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";

fn start_with_wireguard(env: &Env) -> Agent {
    let path = env.config();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[wireguard]\nenabled = false\n",
        "[wireguard]\nenabled = true\nbackend = \"memory\"\n",
    );
    assert!(text.contains("backend = \"memory\""));
    std::fs::write(&path, text).unwrap();
    Agent::start(&path)
}

fn wg(instance: u16, port: u16) -> String {
    format!(
        "<tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>{instance}</instance><listen-port>{port}</listen-port></wireguard></tunnel>"
    )
}

/// oper-status of wg`instance` in `<get>`, i.e. whether the plugin
/// programmed it.
fn programmed(c: &mut Client, instance: u16) -> bool {
    let d = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><tunnel xmlns=\"{TUNNEL_NS}\"/></filter></get>"
        ))
        .data();
    d.find_all("tunnel/wireguard").into_iter().any(|w| {
        w.get("instance").as_deref() == Some(&instance.to_string()) && w.get("public-key").is_some()
    })
}

#[test]
fn apply_failure_arms_no_timer_and_rollback_reaches_the_data_plane() {
    // The first commit with more than 0 backend operations fails, once.
    std::env::set_var("WGNETCONF_FAULT_AFTER_OPS", "0");
    let env = Env::new();
    let agent = start_with_wireguard(&env);
    std::env::remove_var("WGNETCONF_FAULT_AFTER_OPS");
    let mut c = agent.session(&env);

    c.edit("candidate", &wg(1, 51820)).assert_ok();
    let r = c.rpc("<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>");
    let e = r.expect_error("application", "operation-failed");
    assert!(e.message.unwrap_or_default().contains("apply failed"));
    assert!(!env.run_dir().join("confirmed-commit").exists());
    assert!(!programmed(&mut c, 1));
    c.rpc("<cancel-commit/>")
        .expect_error("protocol", "operation-failed");

    // The candidate kept its change; now it applies, confirmed.
    c.rpc("<commit><confirmed/><confirm-timeout>2</confirm-timeout></commit>")
        .assert_ok();
    assert!(programmed(&mut c, 1));
    // The timeout removes the interface from the data plane again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while programmed(&mut c, 1) {
        assert!(Instant::now() < deadline, "wg1 still programmed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.get_config("running").find("tunnel/wireguard").is_none());
}
