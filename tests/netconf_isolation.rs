//! Issue 12: no session's read, unread reply or buffered message stalls
//! the others (README "Security and limits").
//!
//! - A read runs outside the core lock, on a snapshot of the generation it
//!   read: while one `<get-config>` is held at the debug-only fault point
//!   `hold-in-read` (`src/core/fault.rs`), another session commits and
//!   reads, and the held read then answers with what it read.

#[path = "common/netconf.rs"]
mod netconf;

use std::path::Path;
use std::time::Instant;

use netconf::*;

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
    let mut env = Env::new();
    let hold = env.path("hold");
    env.agent_env = vec![
        ("WGNETCONF_FAULT".into(), "hold-in-read".into()),
        ("WGNETCONF_FAULT_HOLD".into(), hold.display().to_string()),
    ];
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
