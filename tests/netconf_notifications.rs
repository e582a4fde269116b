//! Notifications (RFC 5277, RFC 6470) against the real agent: capabilities,
//! create-subscription, interleave, config-change from another session,
//! session start/end, confirmed-commit events, replay with startTime and
//! stopTime, and the rpc-errors.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const NOTIF_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
const NCN_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";

fn subscribe(c: &mut Client, extra: &str) -> Reply {
    c.rpc(&format!(
        "<create-subscription xmlns=\"{NOTIF_NS}\">{extra}</create-subscription>"
    ))
}

/// The next notification's event element (skips nothing: the next message
/// must be a notification).
#[track_caller]
fn next_event(c: &mut Client) -> Node {
    let text = c.recv();
    let n = Node::parse(&text);
    assert!(n.is(NOTIF_NS, "notification"), "not a notification: {text}");
    assert!(n.get("eventTime").is_some(), "{text}");
    n.children
        .iter()
        .find(|e| e.local != "eventTime")
        .cloned()
        .unwrap_or_else(|| panic!("no event in {text}"))
}

/// Reads notifications until one named `name`.
#[track_caller]
fn event_named(c: &mut Client, name: &str) -> Node {
    for _ in 0..20 {
        let e = next_event(c);
        if e.local == name {
            return e;
        }
    }
    panic!("no {name} notification");
}

#[test]
fn capabilities() {
    let env = Env::new();
    let agent = env.start();
    let c = agent.session(&env);
    let caps = c.server_capabilities();
    for cap in [
        "urn:ietf:params:netconf:capability:notification:1.0",
        "urn:ietf:params:netconf:capability:interleave:1.0",
    ] {
        assert!(caps.iter().any(|x| x == cap), "{cap} missing");
    }
    assert!(caps
        .iter()
        .any(|x| x.contains("module=ietf-netconf-notifications")));
}

#[test]
fn config_change_from_another_session_with_interleave() {
    let env = Env::new();
    let agent = env.start();
    let mut sub = agent.session(&env);
    subscribe(&mut sub, "").assert_ok();
    // Interleave: rpcs still work on the subscribed session.
    sub.get_config("running");

    let mut other = agent.session(&env);
    other
        .edit("candidate", &system("<hostname>h1</hostname>"))
        .assert_ok();
    other.commit().assert_ok();

    let e = event_named(&mut sub, "netconf-config-change");
    assert_eq!(e.ns.as_deref(), Some(NCN_NS));
    assert_eq!(e.get("datastore").as_deref(), Some("running"));
    assert_eq!(e.get("changed-by/username").as_deref(), Some("alice"));
    assert_eq!(
        e.get("changed-by/session-id"),
        Some(other.session_id.to_string())
    );
    assert_eq!(
        e.get("changed-by/source-host").as_deref(),
        Some("127.0.0.1")
    );
    let edit = e.find("edit").expect("an edit");
    let target = edit.find("target").expect("target");
    assert!(target.text.contains(":system"), "{}", target.text);
    // The target's prefix is declared.
    assert!(target.scope.iter().any(|(_, ns)| ns == TEST_NS));
    assert_eq!(edit.get("operation").as_deref(), Some("create"));

    // An rpc reply still comes after notifications.
    sub.get_config("running");
}

#[test]
fn session_start_end_and_confirmed_commit_events() {
    let env = Env::new();
    let agent = env.start();
    let mut sub = agent.session(&env);
    subscribe(&mut sub, "").assert_ok();

    let mut c = agent.session(&env);
    let id = c.session_id.to_string();
    let e = event_named(&mut sub, "netconf-session-start");
    assert_eq!(e.get("session-id"), Some(id.clone()));
    assert_eq!(e.get("username").as_deref(), Some("alice"));

    c.edit("candidate", &system("<hostname>x</hostname>"))
        .assert_ok();
    c.rpc("<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>")
        .assert_ok();
    let e = event_named(&mut sub, "netconf-confirmed-commit");
    assert_eq!(e.get("confirm-event").as_deref(), Some("start"));
    assert_eq!(e.get("timeout").as_deref(), Some("1"));
    assert_eq!(e.get("session-id"), Some(id.clone()));
    // The rollback is done by the server, then reported.
    let e = event_named(&mut sub, "netconf-config-change");
    assert!(e.find("changed-by/server").is_some());
    let e = event_named(&mut sub, "netconf-confirmed-commit");
    assert_eq!(e.get("confirm-event").as_deref(), Some("timeout"));
    assert!(e.get("session-id").is_none());

    c.close();
    let e = event_named(&mut sub, "netconf-session-end");
    assert_eq!(e.get("session-id"), Some(id));
    assert_eq!(e.get("termination-reason").as_deref(), Some("closed"));

    let victim = agent.session(&env);
    let vid = victim.session_id.to_string();
    let mut killer = agent.session(&env);
    killer
        .rpc(&format!(
            "<kill-session><session-id>{vid}</session-id></kill-session>"
        ))
        .assert_ok();
    let e = event_named(&mut sub, "netconf-session-end");
    assert_eq!(e.get("session-id"), Some(vid));
    assert_eq!(e.get("termination-reason").as_deref(), Some("killed"));
    assert_eq!(e.get("killed-by"), Some(killer.session_id.to_string()));
}

#[test]
fn replay_with_start_and_stop_time() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit("running", &system("<hostname>r1</hostname>"))
        .assert_ok();
    c.edit("running", &system("<hostname>r2</hostname>"))
        .assert_ok();

    let mut sub = agent.session(&env);
    subscribe(
        &mut sub,
        "<startTime>2000-01-01T00:00:00Z</startTime>\
         <filter type=\"subtree\"><netconf-config-change xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-notifications\"/></filter>",
    )
    .assert_ok();
    let a = next_event(&mut sub);
    let b = next_event(&mut sub);
    assert_eq!(a.local, "netconf-config-change");
    assert_eq!(b.local, "netconf-config-change");
    assert_eq!(next_event(&mut sub).local, "replayComplete");
    // Live events follow, still filtered (no session-start of `late`).
    let mut late = agent.session(&env);
    late.edit("running", &system("<hostname>r3</hostname>"))
        .assert_ok();
    assert_eq!(next_event(&mut sub).local, "netconf-config-change");

    // A stop time in the past: replay, replayComplete, notificationComplete,
    // and the session can subscribe again.
    let mut s2 = agent.session(&env);
    subscribe(
        &mut s2,
        "<startTime>2000-01-01T00:00:00Z</startTime><stopTime>2000-01-02T00:00:00Z</stopTime>",
    )
    .assert_ok();
    assert_eq!(next_event(&mut s2).local, "replayComplete");
    assert_eq!(next_event(&mut s2).local, "notificationComplete");
    subscribe(&mut s2, "").assert_ok();
}

#[test]
fn subscription_errors() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let e = subscribe(&mut c, "<stream>OTHER</stream>").expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("stream"));
    let e = subscribe(&mut c, "<startTime>2999-01-01T00:00:00Z</startTime>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("startTime"));
    let e = subscribe(&mut c, "<startTime>yesterday</startTime>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("startTime"));
    let e = subscribe(
        &mut c,
        "<startTime>2020-01-02T00:00:00Z</startTime><stopTime>2020-01-01T00:00:00Z</stopTime>",
    )
    .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("stopTime"));
    let e = subscribe(&mut c, "<stopTime>2020-01-01T00:00:00Z</stopTime>")
        .expect_error("protocol", "missing-element");
    assert_eq!(e.info("bad-element"), Some("startTime"));
    subscribe(&mut c, "").assert_ok();
    subscribe(&mut c, "").expect_error("protocol", "in-use");
}
