//! A panic in one rpc (issue 11.5): through the agent's debug-only fault
//! points (`WGNETCONF_FAULT`, `src/core/fault.rs`), edit-config, commit and
//! a plugin's apply panic; the rpc gets operation-failed, running and the
//! candidate are as before it, and the agent keeps serving: other sessions,
//! later rpcs, and the confirmed-commit timer.

#[path = "common/netconf.rs"]
mod netconf;

use std::time::{Duration, Instant};

use netconf::*;

const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";

fn with_fault(fault: &str) -> Env {
    let mut env = Env::new();
    env.agent_env
        .push(("WGNETCONF_FAULT".to_string(), fault.to_string()));
    env
}

fn wg(instance: u16, port: u16) -> String {
    format!(
        "<tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>{instance}</instance><listen-port>{port}</listen-port></wireguard></tunnel>"
    )
}

/// The rpc-error of an rpc that panicked in the agent.
#[track_caller]
fn assert_internal_error(r: &Reply) {
    let e = r.expect_error("application", "operation-failed");
    let msg = e.message.unwrap_or_default();
    assert!(msg.contains("internal error"), "message {msg:?}");
}

/// copy-config of an inline `<config>`: reaches running without edit-config.
fn copy_inline(c: &mut Client, target: &str, config: &str) -> Reply {
    c.rpc(&format!(
        "<copy-config><target><{target}/></target><source><config>{config}</config></source></copy-config>"
    ))
}

/// Running's content as XML (with the access-control policy the agent
/// bootstrapped, which a copy-config must keep to keep write access).
fn running_xml(c: &mut Client) -> String {
    let text = c
        .rpc("<get-config><source><running/></source></get-config>")
        .text;
    let start = text.find("<data").expect("<data>");
    let open_end = start + text[start..].find('>').expect("<data>");
    if text[..open_end].ends_with('/') {
        return String::new();
    }
    let close = text.rfind("</data>").expect("</data>");
    text[open_end + 1..close].to_string()
}

#[test]
fn panic_in_edit_config_changes_nothing_and_the_agent_keeps_serving() {
    let env = with_fault("panic-in-edit");
    let agent = env.start();
    let mut c = agent.session(&env);
    let policy = running_xml(&mut c);
    copy_inline(&mut c, "running", &format!("{policy}{}", seed_config())).assert_ok();
    let running = c.get_config("running").canon();

    // Whole-datastore path (the test model) and scoped path (the tunnel
    // module), to the candidate and to running.
    for target in ["candidate", "running"] {
        for edit in [system("<hostname>changed</hostname>"), wg(1, 51820)] {
            assert_internal_error(&c.edit(target, &edit));
            assert_eq!(c.get_config("running").canon(), running, "{target}");
            assert_eq!(c.get_config("candidate").canon(), running, "{target}");
        }
    }
    // The same session and another one are served, locks work.
    let mut other = agent.session(&env);
    other.lock("running").assert_ok();
    other.unlock("running").assert_ok();
    c.lock("candidate").assert_ok();
    c.unlock("candidate").assert_ok();
    // The confirm timer still fires: a confirmed commit (no edit-config
    // involved) rolls back after its timeout.
    let trial =
        running_xml(&mut c).replace("<hostname>alpha</hostname>", "<hostname>trial</hostname>");
    assert!(trial.contains("trial"), "{trial}");
    copy_inline(&mut c, "candidate", &trial).assert_ok();
    c.rpc("<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>")
        .assert_ok();
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("trial")
    );
    assert_internal_error(&c.edit("candidate", &system("<mtu>1300</mtu>")));
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.get_config("running").canon() != running {
        assert!(
            Instant::now() < deadline,
            "the confirm timer did not roll back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn panic_in_commit_keeps_running_and_the_candidate() {
    // Running seeded by an agent without the fault, on the same run_dir.
    let mut env = Env::new();
    {
        let agent = env.start();
        let mut c = agent.session(&env);
        seed(&mut c);
        c.edit("running", &wg(1, 51820)).assert_ok();
        assert!(agent.terminate().success());
    }
    env.agent_env
        .push(("WGNETCONF_FAULT".to_string(), "panic-in-commit".to_string()));
    let agent = env.start();
    let mut c = agent.session(&env);
    let running = c.get_config("running").canon();
    // Scoped (tunnel) and whole-datastore (test model) commits.
    for edit in [wg(1, 51821), system("<hostname>changed</hostname>")] {
        c.edit("candidate", &edit).assert_ok();
        let candidate = c.get_config("candidate").canon();
        assert_ne!(candidate, running);
        assert_internal_error(&c.commit());
        assert_eq!(c.get_config("running").canon(), running);
        assert_eq!(c.get_config("candidate").canon(), candidate);
        // Still there after a second try; then discarded as usual.
        assert_internal_error(&c.commit());
        assert_eq!(c.get_config("candidate").canon(), candidate);
        c.rpc("<discard-changes/>").assert_ok();
        assert_eq!(c.get_config("candidate").canon(), running);
    }
    // Running as persisted is the same too: a restart shows it.
    drop(c);
    assert!(agent.terminate().success());
    let agent = Env::start(&env);
    let mut c = agent.session(&env);
    assert_eq!(c.get_config("running").canon(), running);
}

#[test]
fn panic_in_a_plugins_apply_keeps_running_and_other_commits_work() {
    let env = with_fault("panic-in-apply");
    let path = env.config();
    let text = std::fs::read_to_string(&path).expect("config").replace(
        "[wireguard]\nenabled = false\n",
        "[wireguard]\nenabled = true\nbackend = \"memory\"\n",
    );
    assert!(text.contains("backend = \"memory\""));
    std::fs::write(&path, text).expect("config");
    let agent = Agent::start_with_env(&path, &env.agent_env);
    let mut c = agent.session(&env);
    c.edit("running", &seed_config()).assert_ok();
    let running = c.get_config("running").canon();

    c.edit("candidate", &wg(1, 51820)).assert_ok();
    assert_internal_error(&c.commit());
    assert_eq!(c.get_config("running").canon(), running);
    assert!(c.get_config("candidate").find("tunnel/wireguard").is_some());
    c.rpc("<discard-changes/>").assert_ok();
    assert_internal_error(&c.edit("running", &wg(2, 51821)));
    assert_eq!(c.get_config("running").canon(), running);
    // Commits the plugin takes no part in go through.
    c.edit("candidate", &system("<hostname>after</hostname>"))
        .assert_ok();
    c.commit().assert_ok();
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("after")
    );
}
