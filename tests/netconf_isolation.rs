//! Issue 12: no session's read, unread reply or buffered message stalls
//! the others (README "Security and limits").
//!
//! - A read runs outside the core lock, on a snapshot of the generation it
//!   read: while one `<get-config>` is held at the debug-only fault point
//!   `hold-in-read` (`src/core/fault.rs`), another session commits and
//!   reads, and the held read then answers with what it read.
//! - A request body is parsed before the core lock: while one session's
//!   edit is held in its parse (`hold-in-parse`), another commits and
//!   reads; released, the edit applies.
//! - A peer that sends a big `<get-config>` and stops reading is closed
//!   after `write_timeout_secs`, its lock released; others are served
//!   meanwhile.
//! - Incoming messages of all sessions share `max_buffered_bytes`: the
//!   session whose message crosses it gets `resource-denied` and is
//!   closed; the others are served.

#[path = "common/netconf.rs"]
mod netconf;

use std::path::{Path, PathBuf};
use std::time::Instant;

use netconf::*;

/// An environment whose agent holds the first call of fault point `point`
/// (`src/core/fault.rs`): it writes `hold.held` and waits for
/// `hold.release` in the environment's directory.
fn holding_at(point: &str) -> Env {
    let mut env = Env::new();
    let hold = env.path("hold");
    env.agent_env = vec![
        ("WGNETCONF_FAULT".into(), point.into()),
        ("WGNETCONF_FAULT_HOLD".into(), hold.display().to_string()),
    ];
    env
}

/// Waits (with a deadline) until `path` exists.
fn wait_for_file(path: &Path, agent: &Agent) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < WAIT,
            "{} never appeared; agent stderr:\n{}",
            path.display(),
            agent.stderr_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Session A's `<get-config>` is held after the core handed it its
/// snapshot; session B's edit of running (a commit) and B's own read are
/// answered meanwhile; released, A's reply is whole and shows running as
/// it was when A asked, not B's commit.
#[test]
fn a_held_read_delays_no_commit_and_answers_its_generation() {
    let env = holding_at("hold-in-read");
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    // Seeded without a read: the first read is A's.
    b.edit("running", &seed_config()).assert_ok();
    // A's read is the first read to reach the fault point: it is held.
    a.send(&format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"a1\">\
         <get-config><source><running/></source></get-config></rpc>"
    ));
    wait_for_file(&env.path("hold.held"), &agent);

    // B commits and reads while A's read holds its snapshot.
    b.edit("running", &system("<hostname>beta</hostname>"))
        .assert_ok();
    let now = b.get_config("running");
    assert_eq!(now.get("system/hostname").as_deref(), Some("beta"));

    std::fs::write(env.path("hold.release"), "").expect("release the read");
    let reply = Reply::new(a.recv());
    assert_eq!(reply.root.attr("message-id"), Some("a1"), "{}", reply.text);
    let read = reply.data();
    assert_eq!(
        read.get("system/hostname").as_deref(),
        Some("alpha"),
        "A reads the generation it asked for: {}",
        reply.text
    );
    assert_eq!(read.values("servers/server/name"), ["a", "b"]);
    assert_eq!(read.get("system/mtu").as_deref(), Some("1400"));
    // Both sessions go on; A now reads B's commit.
    assert_eq!(
        a.get_config("running").get("system/hostname").as_deref(),
        Some("beta")
    );
    a.close();
    b.close();
}

/// Session A's edit-config is held while its `<config>` is parsed (before
/// the core lock); B's commit and read are answered meanwhile; released,
/// A's edit is applied on top of B's commit.
#[test]
fn an_edit_held_in_its_parse_delays_no_commit() {
    let env = holding_at("hold-in-parse");
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    a.send(&format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"a1\">{}</rpc>",
        edit_config("running", "", &system("<hostname>delta</hostname>"))
    ));
    wait_for_file(&env.path("hold.held"), &agent);

    // The first edit-config was A's: B's passes the point.
    b.edit("running", &system("<mtu>1400</mtu>")).assert_ok();
    assert_eq!(
        b.get_config("running").get("system/mtu").as_deref(),
        Some("1400")
    );

    std::fs::write(env.path("hold.release"), "").expect("release the parse");
    let reply = Reply::new(a.recv());
    assert_eq!(reply.root.attr("message-id"), Some("a1"), "{}", reply.text);
    reply.assert_ok();
    let now = a.get_config("running");
    assert_eq!(now.get("system/hostname").as_deref(), Some("delta"));
    assert_eq!(now.get("system/mtu").as_deref(), Some("1400"));
    a.close();
    b.close();
}

const STRINGS_NS: &str = "urn:wgnetconf:test-strings";
const NCM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";

/// `<store>` of the strings model with entries `(name, port, value)`.
fn store(entries: &[(String, u16, String)]) -> String {
    let inner: String = entries
        .iter()
        .map(|(n, p, v)| {
            format!("<entry><name>{n}</name><port>{p}</port><value>{v}</value></entry>")
        })
        .collect();
    format!("<store xmlns=\"{STRINGS_NS}\">{inner}</store>")
}

/// The ids of the sessions ietf-netconf-monitoring lists.
fn session_ids(c: &mut Client) -> Vec<String> {
    c.rpc(&format!(
        "<get><filter type=\"subtree\"><netconf-state xmlns=\"{NCM_NS}\"><sessions/></netconf-state></filter></get>"
    ))
    .data()
    .values("netconf-state/sessions/session/session-id")
}

/// Session A locks the candidate, asks for 8 MiB of running and reads
/// nothing: more than SSH's window and the socket buffers hold, so the
/// agent's write stalls. B commits and reads meanwhile; after the write
/// timeout (1 s here) A's session is gone from /netconf-state/sessions and
/// B can take the candidate's lock.
#[test]
fn a_peer_that_stops_reading_is_closed_and_its_lock_released() {
    let mut env = Env::with_netconf("write_timeout_secs = 1");
    env.yang_dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/yang-strings")];
    let agent = env.start();
    let mut b = agent.session(&env);
    let mib = "v".repeat(1 << 20);
    for i in 0..8u16 {
        b.edit(
            "running",
            &store(&[(format!("big{i}"), 100 + i, mib.clone())]),
        )
        .assert_ok();
    }
    let mut a = agent.session(&env);
    a.lock("candidate").assert_ok();
    let a_id = a.session_id.to_string();
    assert!(session_ids(&mut b).contains(&a_id));
    a.send(&format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"a1\">\
         <get-config><source><running/></source></get-config></rpc>"
    ));

    // B is served while A's reply waits for a reader.
    b.edit("running", &store(&[("small".into(), 1, "x".into())]))
        .assert_ok();
    let read = b.get_config_filtered(
        "running",
        &format!("<store xmlns=\"{STRINGS_NS}\"><entry><name>small</name></entry></store>"),
    );
    assert_eq!(read.get("store/entry/port").as_deref(), Some("1"));

    // A's session ends, and its lock with it.
    let start = Instant::now();
    while session_ids(&mut b).contains(&a_id) {
        assert!(
            start.elapsed() < WAIT,
            "session {a_id} still listed; agent stderr:\n{}",
            agent.stderr_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    b.lock("candidate").assert_ok();
    b.unlock("candidate").assert_ok();
    assert!(
        agent.stderr_text().contains("read nothing for 1 s"),
        "{}",
        agent.stderr_text()
    );
    b.close();
    drop(a);
}

/// Two sessions each send 2 MiB of a message without finishing it, under
/// a 3 MiB cap on what all sessions' messages may hold: the one whose
/// bytes cross it (whichever arrives second) gets resource-denied
/// (error-type rpc, RFC 6241 Appendix A) and is closed; a third session
/// is served, and the other finishes its message and gets its reply.
#[test]
fn messages_over_the_shared_cap_are_refused_and_others_served() {
    let env = Env::with_netconf("max_buffered_bytes = 3145728");
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit("running", &system("<hostname>gamma</hostname>"))
        .assert_ok();
    let open = |agent: &Agent| {
        let mut s = agent.ssh2(&env);
        s.hello(&[BASE_1_0]);
        s
    };
    let head = format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"big\">\
         <get-config><source><running/></source></get-config>{}",
        " ".repeat(2 << 20)
    );
    let mut sessions = [open(&agent), open(&agent)];
    let ids: Vec<String> = sessions.iter().map(|s| s.session_id.to_string()).collect();
    for s in sessions.iter_mut() {
        // The loser's channel may close under its write.
        let _ = s.try_send_raw(head.as_bytes());
    }
    // One of them is closed (gone from the sessions list).
    let start = Instant::now();
    let loser = loop {
        let listed = session_ids(&mut c);
        if let Some(i) = ids.iter().position(|id| !listed.contains(id)) {
            break i;
        }
        assert!(
            start.elapsed() < WAIT,
            "both sessions still listed; agent stderr:\n{}",
            agent.stderr_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let [first, second] = sessions;
    let (mut lost, mut kept) = if loser == 0 {
        (first, second)
    } else {
        (second, first)
    };
    let got = lost.expect_closed();
    assert_eq!(got.len(), 1, "{got:?}");
    let e = Reply::new(got[0].clone()).expect_error("rpc", "resource-denied");
    let message = e.message.unwrap_or_default();
    assert!(message.contains("3145728"), "{message}");
    // The third session is served; the other finishes and is answered.
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("gamma")
    );
    kept.send_raw(format!("</rpc>{}", String::from_utf8_lossy(EOM)).as_bytes());
    let reply = Reply::new(kept.recv());
    assert_eq!(
        reply.data().get("system/hostname").as_deref(),
        Some("gamma"),
        "{}",
        reply.text
    );
    kept.close();
    c.close();
}
