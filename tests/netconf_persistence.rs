//! Persistence across agent restarts and reboots, file modes, clean stop.

#[path = "common/netconf.rs"]
mod netconf;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;

use netconf::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn sigterm_is_a_clean_stop_and_commit_survives_it() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.edit("candidate", &system("<hostname>committed</hostname>"))
        .assert_ok();
    c.commit().assert_ok();
    let before = c.get_config("running").canon();
    // A session is open while the agent stops: it is closed, and the exit
    // is still clean.
    let status = agent.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM exit: {status:?}");
    c.expect_closed();

    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(c.get_config("running").canon(), before);
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("committed")
    );
}

#[test]
fn commit_survives_kill_9() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.edit(
        "candidate",
        &servers(&server("k", "10.0.0.50", "<port>500</port>")),
    )
    .assert_ok();
    c.commit().assert_ok();
    // Uncommitted candidate changes are not persisted.
    c.edit("candidate", &system("<hostname>lost</hostname>"))
        .assert_ok();
    let before = c.get_config("running").canon();
    agent.kill9();

    let agent = env.start();
    let mut c = agent.session(&env);
    let d = c.get_config("running");
    assert_eq!(d.canon(), before);
    assert!(d.server("k").is_some());
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert_eq!(c.get_config("candidate").canon(), before);
}

#[test]
fn edit_of_running_survives_kill_9() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit("running", &system("<hostname>direct</hostname>"))
        .assert_ok();
    agent.kill9();
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("direct")
    );
}

#[test]
fn startup_becomes_running_at_boot() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.copy("running", "startup").assert_ok();
    let startup = c.get_config("startup").canon();
    // Running moves on after the save.
    c.edit("running", &system("<hostname>notsaved</hostname>"))
        .assert_ok();
    // A restart keeps running as it was (not startup).
    let status = agent.terminate();
    assert!(status.success());
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("notsaved")
    );
    assert_eq!(c.get_config("startup").canon(), startup);
    drop(c);
    agent.kill9();

    // "Reboot": the run dir (tmpfs on a device) is emptied.
    for entry in std::fs::read_dir(env.run_dir()).expect("run dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("rm");
        } else {
            std::fs::remove_file(&p).expect("rm");
        }
    }
    let agent = env.start();
    let mut c = agent.session(&env);
    let running = c.get_config("running");
    assert_eq!(running.canon(), startup);
    assert_eq!(running.get("system/hostname").as_deref(), Some("alpha"));
    assert_eq!(c.get_config("startup").canon(), startup);
    // And running was written back to the run dir at boot.
    assert!(env.run_dir().join("running.xml").exists());
}

#[test]
fn reboot_without_startup_gives_empty_running() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    // The first start saved startup (its access policy): delete it.
    c.rpc("<delete-config><target><startup/></target></delete-config>")
        .assert_ok();
    drop(c);
    agent.kill9();
    std::fs::remove_dir_all(env.run_dir()).expect("rm run dir");
    let agent = env.start();
    let mut c = agent.session(&env);
    let d = c.get_config("running");
    assert!(d.is_empty(), "{}", d.canon());
}

#[test]
fn datastore_files_are_private() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.copy("running", "startup").assert_ok();
    let running = env.run_dir().join("running.xml");
    let startup = env.state_dir().join("startup.xml");
    assert_eq!(mode(&running), 0o600, "running.xml");
    assert_eq!(mode(&startup), 0o600, "startup.xml");
    // Rewritten files keep the mode.
    c.edit("running", &system("<hostname>again</hostname>"))
        .assert_ok();
    c.copy("running", "startup").assert_ok();
    assert_eq!(mode(&running), 0o600, "running.xml after rewrite");
    assert_eq!(mode(&startup), 0o600, "startup.xml after rewrite");
    // The files hold the configuration (XML the agent reads back).
    let text = std::fs::read_to_string(&running).expect("read running.xml");
    assert!(text.contains("again") && text.contains(TEST_NS), "{text}");
}

#[test]
fn sigterm_after_the_last_session_closed_exits_zero() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.rpc("<get/>").data();
    c.close();
    let status = agent.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(status.signal(), None);
}

/// The SIGTERM handler exists before READY is printed, so a SIGTERM sent
/// as soon as READY is read still stops the agent cleanly (exit 0), not by
/// the signal's default action.
#[test]
fn sigterm_right_after_ready_exits_zero() {
    let env = Env::new();
    let agent = env.start();
    let status = agent.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(status.signal(), None);
}
