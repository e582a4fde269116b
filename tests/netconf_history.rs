//! Commit history (issue 16) with real sessions: every change of running is
//! listed in `/wgna:agent/history` (also after kill -9); `<rollback>` to
//! before commit N gives back, byte for byte, the `<get-config>` from
//! before N; `<compare>`'s output applied with `<edit-config>` reproduces
//! its target; a user who may not read keys sees none in either;
//! `<rotate-private-key>` puts a new key in running and startup; a key older
//! than `max-private-key-age` raises the alarm flag and a notification, a
//! rotation clears it, and the key's age survives kill -9.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const TUN: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
const AGENT: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";
const K1: &str = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const K2: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

fn env() -> Env {
    let mut e = Env::new();
    e.yang_dirs = Vec::new();
    e.users = vec![
        ("alice".into(), vec!["admin".into()]),
        ("oper".into(), Vec::new()),
    ];
    e
}

fn wg(inner: &str) -> String {
    format!("<tunnel xmlns=\"{TUN}\">{inner}</tunnel>")
}

/// The ids of the history, oldest first.
fn history(c: &mut Client) -> Vec<(u64, String)> {
    let d = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><agent xmlns=\"{AGENT}\"><history/></agent></filter></get>"
        ))
        .data();
    d.find_all("agent/history/commit")
        .into_iter()
        .map(|n| {
            (
                n.get("id").and_then(|v| v.parse().ok()).unwrap_or(0),
                n.get("comment").unwrap_or_default(),
            )
        })
        .collect()
}

/// A reply from its `<data` on (the message-id differs).
fn strip(s: &str) -> String {
    s.split_once("<data")
        .map(|(_, d)| d.to_string())
        .unwrap_or_default()
}

fn running_text(c: &mut Client) -> String {
    c.rpc("<get-config><source><running/></source></get-config>")
        .text
}

#[test]
fn rollback_compare_and_restart() {
    let env = env();
    let agent = env.start();
    let mut c = agent.session(&env);
    let base = history(&mut c).len();
    c.edit(
        "running",
        &wg(&format!(
            "<wireguard><instance>1</instance><description>one</description><private-key>{K1}</private-key></wireguard>"
        )),
    )
    .assert_ok();
    let before_two = running_text(&mut c);
    c.edit(
        "candidate",
        &wg("<wireguard><instance>2</instance><description>two</description><listen-port>51822</listen-port></wireguard>"),
    )
    .assert_ok();
    c.rpc(&format!(
        "<commit><comment xmlns=\"{AGENT}\">add two</comment></commit>"
    ))
    .assert_ok();
    c.edit(
        "running",
        &wg(&format!(
            "<wireguard><instance>1</instance><description>uno</description><private-key>{K2}</private-key></wireguard>"
        )),
    )
    .assert_ok();
    let h = history(&mut c);
    assert_eq!(h.len(), base + 3, "{h:?}");
    let (two, comment) = h[base + 1].clone();
    assert_eq!(comment, "add two");

    // The history survives kill -9.
    drop(c);
    agent.kill9();
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(history(&mut c), h);

    // compare from before commit "two" to now, applied to a copy of that
    // configuration, gives now.
    let now = running_text(&mut c);
    let diff = c.rpc(&format!(
        "<compare xmlns=\"{AGENT}\"><from>{two}</from></compare>"
    ));
    let config = diff
        .root
        .find("config")
        .unwrap_or_else(|| panic!("no <config> in {}", diff.text));
    assert!(diff.text.contains("operation="), "{}", diff.text);

    // Rollback to before "two": byte-identical get-config.
    c.rpc(&format!(
        "<rollback xmlns=\"{AGENT}\"><id>{two}</id></rollback>"
    ))
    .assert_ok();
    assert_eq!(strip(&running_text(&mut c)), strip(&before_two));
    assert!(config.find("tunnel").is_some(), "{}", diff.text);
    // ... and the compare output replayed on it reproduces "now".
    let inner = diff
        .text
        .split_once("<config xmlns=\"urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent\">")
        .and_then(|(_, r)| r.rsplit_once("</config>"))
        .map(|(i, _)| i.to_string())
        .expect("config content");
    c.edit("running", &inner).assert_ok();
    let again = running_text(&mut c);
    assert_eq!(strip(&again), strip(&now));
}

#[test]
fn an_operator_sees_no_key_in_compare_or_history() {
    let env = env();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit(
        "running",
        &wg(&format!(
            "<wireguard><instance>1</instance><private-key>{K1}</private-key></wireguard>"
        )),
    )
    .assert_ok();
    let first = history(&mut c).last().map(|h| h.0).expect("an entry");
    c.edit(
        "running",
        &wg(&format!(
            "<wireguard><instance>1</instance><private-key>{K2}</private-key></wireguard>"
        )),
    )
    .assert_ok();
    let mut op = agent.session_as(&env, "oper");
    let r = op.rpc(&format!(
        "<compare xmlns=\"{AGENT}\"><from>{first}</from></compare>"
    ));
    assert!(r.is_ok() || r.text.contains("<config"), "{}", r.text);
    for k in [K1, K2] {
        assert!(!r.text.contains(k), "a key in compare: {}", r.text);
    }
    let h = op
        .rpc(&format!(
            "<get><filter type=\"subtree\"><agent xmlns=\"{AGENT}\"/></filter></get>"
        ))
        .text;
    for k in [K1, K2] {
        assert!(!h.contains(k), "a key in the history: {h}");
    }
    // The admin's compare shows the key change.
    let r = c.rpc(&format!(
        "<compare xmlns=\"{AGENT}\"><from>{first}</from></compare>"
    ));
    assert!(r.text.contains(K2), "{}", r.text);
    // And the operator may not roll back (a commit needing key access).
    op.rpc(&format!(
        "<rollback xmlns=\"{AGENT}\"><id>{first}</id></rollback>"
    ))
    .expect_error("application", "access-denied");
}

#[test]
fn rotate_private_key_reaches_running_and_startup() {
    let mut env = env();
    env.wireguard = Some("memory".into());
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit(
        "running",
        &wg("<wireguard><instance>1</instance></wireguard>"),
    )
    .assert_ok();
    let key = |c: &mut Client, ds: &str| {
        c.get_config(ds)
            .get("tunnel/wireguard/private-key")
            .unwrap_or_else(|| panic!("no private key in {ds}"))
    };
    let k0 = key(&mut c, "running");
    c.copy("running", "startup").assert_ok();
    let r = c.rpc(&format!(
        "<rotate-private-key xmlns=\"{AGENT}\"><instance>1</instance></rotate-private-key>"
    ));
    let public = r
        .root
        .find("public-key")
        .map(|n| n.text())
        .unwrap_or_else(|| panic!("no public-key in {}", r.text));
    let k1 = key(&mut c, "running");
    assert_ne!(k0, k1, "the key changed");
    assert_eq!(key(&mut c, "startup"), k1, "startup has the new key");
    let oper = c.rpc("<get/>").data();
    assert_eq!(oper.get("tunnel/wireguard/public-key"), Some(public));
    // An operator may not rotate (it deletes a key they may not touch).
    let mut op = agent.session_as(&env, "oper");
    op.rpc(&format!(
        "<rotate-private-key xmlns=\"{AGENT}\"><instance>1</instance></rotate-private-key>"
    ))
    .expect_error("application", "access-denied");
}

const NOTIF_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

/// `(private-key-age, private-key-age-exceeded)` of wg1 in `<get>`.
fn key_age(c: &mut Client) -> (u64, bool) {
    let d = c.rpc("<get/>").data();
    let age = d
        .get("tunnel/wireguard/private-key-age")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no private-key-age in <get>"));
    let exceeded = d.get("tunnel/wireguard/private-key-age-exceeded");
    (age, exceeded.as_deref() == Some("true"))
}

/// Polls `<get>` (bounded) until the alarm flag is `want`.
#[track_caller]
fn wait_alarm(c: &mut Client, want: bool) -> u64 {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (age, exceeded) = key_age(c);
        if exceeded == want {
            return age;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "private-key-age-exceeded stayed {exceeded} (age {age})"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The next `private-key-age-exceeded` notification (others skipped; the
/// client's read timeout bounds the wait).
#[track_caller]
fn age_notification(c: &mut Client) -> Node {
    loop {
        let n = Node::parse(&c.recv());
        assert!(n.is(NOTIF_NS, "notification"), "not a notification");
        if let Some(e) = n.find("private-key-age-exceeded") {
            return e.clone();
        }
    }
}

/// The agent's clock runs `skew` seconds ahead (debug builds, test only).
fn set_clock(env: &Env, skew: u64) {
    std::fs::write(env.path("clock"), skew.to_string()).expect("clock file");
}

#[test]
fn key_age_alarm_rotation_and_restart() {
    let mut env = env();
    env.wireguard = Some("memory".into());
    env.agent_env = vec![(
        "WGNETCONF_TEST_CLOCK_FILE".into(),
        env.path("clock").display().to_string(),
    )];
    set_clock(&env, 0);
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit(
        "running",
        &wg("<wireguard><instance>1</instance><max-private-key-age>3600</max-private-key-age></wireguard>"),
    )
    .assert_ok();
    c.copy("running", "startup").assert_ok();
    let mut sub = agent.session(&env);
    sub.rpc(&format!("<create-subscription xmlns=\"{NOTIF_NS}\"/>"))
        .assert_ok();
    let (age, exceeded) = key_age(&mut c);
    assert!(
        age < 3600 && !exceeded,
        "a new key: age {age}, alarm {exceeded}"
    );

    // Two hours later the key is over its maximum: flag and notification.
    set_clock(&env, 7200);
    let age = wait_alarm(&mut c, true);
    assert!(age >= 7200, "age {age}");
    let n = age_notification(&mut sub);
    assert_eq!(n.get("wireguard").as_deref(), Some("1"));
    assert_eq!(n.get("max-private-key-age").as_deref(), Some("3600"));
    let notified: u64 = n
        .get("private-key-age")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(notified > 3600, "notified age {notified}");

    // A rotation resets the age and clears the alarm.
    let r = c.rpc(&format!(
        "<rotate-private-key xmlns=\"{AGENT}\"><instance>1</instance></rotate-private-key>"
    ));
    assert!(r.root.find("public-key").is_some(), "{}", r.text);
    let (age, exceeded) = key_age(&mut c);
    assert!(
        age < 3600 && !exceeded,
        "after rotation: age {age}, alarm {exceeded}"
    );

    // Half an hour later, kill -9 and restart: the age goes on.
    set_clock(&env, 7200 + 1800);
    let (before, _) = key_age(&mut c);
    assert!(before >= 1800, "age {before}");
    drop(c);
    drop(sub);
    agent.kill9();
    let agent = env.start();
    let mut c = agent.session(&env);
    let (after, exceeded) = key_age(&mut c);
    assert!(
        after >= before && !exceeded,
        "a restart reset the age: {before} s before, {after} s after"
    );

    // The new key crosses the maximum in turn: notified again.
    let mut sub = agent.session(&env);
    sub.rpc(&format!("<create-subscription xmlns=\"{NOTIF_NS}\"/>"))
        .assert_ok();
    set_clock(&env, 7200 + 3700);
    wait_alarm(&mut c, true);
    let n = age_notification(&mut sub);
    assert_eq!(n.get("wireguard").as_deref(), Some("1"));
}
