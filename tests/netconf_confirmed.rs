//! Confirmed commit (RFC 6241 §8.4, :confirmed-commit:1.1) against the real
//! agent: timeout, confirming commit, follow-up commits keeping the first
//! rollback point, persist/persist-id across sessions and across kill -9,
//! cancel-commit, session end, and the rpc-errors.

#[path = "common/netconf.rs"]
mod netconf;

use std::time::{Duration, Instant};

use netconf::*;

const CONFIRMED_CAP: &str = "urn:ietf:params:netconf:capability:confirmed-commit:1.1";

fn hostname(c: &mut Client) -> Option<String> {
    c.get_config("running").get("system/hostname")
}

fn set_candidate(c: &mut Client, name: &str) {
    c.edit(
        "candidate",
        &system(&format!("<hostname>{name}</hostname>")),
    )
    .assert_ok();
}

fn confirmed(c: &mut Client, extra: &str) -> Reply {
    c.rpc(&format!("<commit><confirmed/>{extra}</commit>"))
}

/// Waits (bounded) until running's hostname is `want`.
#[track_caller]
fn wait_hostname(c: &mut Client, want: Option<&str>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = hostname(c);
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "hostname stayed {got:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn capability_is_announced() {
    let env = Env::new();
    let agent = env.start();
    let c = agent.session(&env);
    assert!(c.server_capabilities().iter().any(|x| x == CONFIRMED_CAP));
}

#[test]
fn timeout_rolls_back_and_confirming_commit_keeps() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "base");
    c.commit().assert_ok();

    // Not confirmed: rolled back after the timeout.
    set_candidate(&mut c, "trial");
    confirmed(&mut c, "<confirm-timeout>2</confirm-timeout>").assert_ok();
    assert_eq!(hostname(&mut c).as_deref(), Some("trial"));
    wait_hostname(&mut c, Some("base"), Duration::from_secs(10));
    // The rollback is persisted like any commit.
    assert!(std::fs::read_to_string(env.run_dir().join("running.xml"))
        .unwrap()
        .contains("base"));
    assert!(!env.run_dir().join("confirmed-commit").exists());

    // Confirmed: stays past the timeout.
    set_candidate(&mut c, "kept");
    confirmed(&mut c, "<confirm-timeout>2</confirm-timeout>").assert_ok();
    c.commit().assert_ok();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hostname(&mut c).as_deref(), Some("kept"));
}

#[test]
fn follow_up_confirmed_commit_keeps_the_first_rollback_point() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "original");
    c.commit().assert_ok();

    set_candidate(&mut c, "first");
    confirmed(&mut c, "<confirm-timeout>60</confirm-timeout>").assert_ok();
    set_candidate(&mut c, "second");
    // Follow-up with a short timeout: the timer restarts from it.
    confirmed(&mut c, "<confirm-timeout>2</confirm-timeout>").assert_ok();
    assert_eq!(hostname(&mut c).as_deref(), Some("second"));
    // Back to before the FIRST confirmed commit, not to "first".
    wait_hostname(&mut c, Some("original"), Duration::from_secs(10));
}

#[test]
fn a_failing_confirmed_commit_arms_no_timer() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "stable");
    c.commit().assert_ok();
    // An invalid candidate (set without validation): the commit fails.
    c.rpc(&edit_config(
        "candidate",
        "<test-option>set</test-option>",
        &servers(&server("s", "10.0.0.1", "<weight>200</weight>")),
    ))
    .assert_ok();
    let r = confirmed(&mut c, "<confirm-timeout>1</confirm-timeout>");
    assert!(!r.is_ok(), "{}", r.text);
    assert!(!env.run_dir().join("confirmed-commit").exists());
    // No confirmed commit is pending: nothing to cancel, nothing rolls back.
    c.rpc("<discard-changes/>").assert_ok();
    c.rpc("<cancel-commit/>")
        .expect_error("protocol", "operation-failed");
    set_candidate(&mut c, "later");
    c.commit().assert_ok();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hostname(&mut c).as_deref(), Some("later"));
}

#[test]
fn non_persist_rolls_back_when_its_session_ends() {
    let env = Env::new();
    let agent = env.start();
    let mut watcher = agent.session(&env);
    let mut c = agent.session(&env);
    set_candidate(&mut c, "before");
    c.commit().assert_ok();
    set_candidate(&mut c, "during");
    confirmed(&mut c, "").assert_ok();
    // Another session cannot confirm or cancel it.
    let e = watcher.commit().expect_error("protocol", "in-use");
    assert_eq!(
        e.info("session-id"),
        Some(c.session_id.to_string().as_str())
    );
    watcher
        .rpc("<cancel-commit/>")
        .expect_error("protocol", "in-use");
    assert_eq!(hostname(&mut watcher).as_deref(), Some("during"));
    c.abort();
    wait_hostname(&mut watcher, Some("before"), Duration::from_secs(10));
}

#[test]
fn cancel_commit_rolls_back() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "a");
    c.commit().assert_ok();
    set_candidate(&mut c, "b");
    confirmed(&mut c, "").assert_ok();
    c.rpc("<cancel-commit/>").assert_ok();
    assert_eq!(hostname(&mut c).as_deref(), Some("a"));
    // Nothing pending any more.
    c.rpc("<cancel-commit/>")
        .expect_error("protocol", "operation-failed");
}

#[test]
fn persist_id_from_another_session_and_errors() {
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    set_candidate(&mut a, "p0");
    a.commit().assert_ok();
    set_candidate(&mut a, "p1");
    confirmed(&mut a, "<persist>tok-1</persist>").assert_ok();

    // Unknown persist-id.
    let e = b
        .rpc("<commit><persist-id>nope</persist-id></commit>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("persist-id"));
    let e = b
        .rpc("<cancel-commit><persist-id>nope</persist-id></cancel-commit>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("persist-id"));
    // A persistent one needs its persist-id.
    let e = b.commit().expect_error("protocol", "missing-element");
    assert_eq!(e.info("bad-element"), Some("persist-id"));
    // Bad timeout.
    let e = b
        .rpc("<commit><confirmed/><confirm-timeout>soon</confirm-timeout></commit>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("confirm-timeout"));
    let e = b
        .rpc("<commit><frob/></commit>")
        .expect_error("protocol", "unknown-element");
    assert_eq!(e.info("bad-element"), Some("frob"));

    // The issuing session may go: a persistent commit is not rolled back.
    a.close();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hostname(&mut b).as_deref(), Some("p1"));
    // Confirmed from another session with the persist-id.
    b.rpc("<commit><persist-id>tok-1</persist-id></commit>")
        .assert_ok();
    assert!(!env.run_dir().join("confirmed-commit").exists());
    // Without a pending commit, a persist-id is unknown.
    b.rpc("<commit><persist-id>tok-1</persist-id></commit>")
        .expect_error("protocol", "invalid-value");
}

#[test]
fn persist_survives_kill_9_and_still_rolls_back_on_time() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "safe");
    c.commit().assert_ok();
    set_candidate(&mut c, "risky");
    let start = Instant::now();
    confirmed(
        &mut c,
        "<confirm-timeout>6</confirm-timeout><persist>k9</persist>",
    )
    .assert_ok();
    let file = env.run_dir().join("confirmed-commit");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    agent.kill9();

    let agent = env.start();
    let mut c = agent.session(&env);
    // Still the confirmed configuration, still pending.
    assert_eq!(hostname(&mut c).as_deref(), Some("risky"));
    assert!(start.elapsed() < Duration::from_secs(5), "restart too slow");
    // And rolled back on time (6 s after the commit, not 6 s after boot).
    wait_hostname(&mut c, Some("safe"), Duration::from_secs(12));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5),
        "rolled back early: {elapsed:?}"
    );
    assert!(!file.exists());
}

#[test]
fn persist_confirmed_after_restart() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "one");
    c.commit().assert_ok();
    set_candidate(&mut c, "two");
    confirmed(
        &mut c,
        "<confirm-timeout>30</confirm-timeout><persist>r</persist>",
    )
    .assert_ok();
    drop(c);
    agent.terminate();
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(hostname(&mut c).as_deref(), Some("two"));
    c.rpc("<commit><persist-id>r</persist-id></commit>")
        .assert_ok();
    assert!(!env.run_dir().join("confirmed-commit").exists());
}

#[test]
fn non_persist_pending_at_kill_9_rolls_back_at_boot() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    set_candidate(&mut c, "old");
    c.commit().assert_ok();
    set_candidate(&mut c, "new");
    confirmed(&mut c, "").assert_ok();
    agent.kill9();
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(hostname(&mut c).as_deref(), Some("old"));
}

#[test]
fn follow_up_by_persist_id_keeps_the_persist() {
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    set_candidate(&mut a, "f0");
    a.commit().assert_ok();
    set_candidate(&mut a, "f1");
    confirmed(&mut a, "<persist>keep</persist>").assert_ok();
    // Follow-up from another session, naming the persist-id, no new persist.
    set_candidate(&mut b, "f2");
    confirmed(&mut b, "<persist-id>keep</persist-id>").assert_ok();
    // Still persistent: b ending does not roll back; a confirms with the id.
    b.close();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hostname(&mut a).as_deref(), Some("f2"));
    a.rpc("<commit><persist-id>keep</persist-id></commit>")
        .assert_ok();
    assert_eq!(hostname(&mut a).as_deref(), Some("f2"));
}
