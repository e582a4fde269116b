//! Hello exchange and RFC 6242 framing, against the real agent over SSH.

#[path = "common/netconf.rs"]
mod netconf;

use std::time::{Duration, Instant};

use netconf::*;

fn get_body() -> &'static str {
    "<get-config><source><running/></source></get-config>"
}

#[test]
fn server_hello_announces_capabilities_and_session_id() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.ssh2(&env);
    c.read_server_hello();
    // RFC 6242 §4.1: the hello is sent with end-of-message framing.
    assert!(c.last_raw.ends_with(EOM), "hello not ]]>]]>-framed");
    assert!(
        c.session_id > 0,
        "session-id must be non-zero (RFC 6241 §8.1)"
    );
    let caps = c.server_capabilities();
    for want in [
        BASE_1_0,
        BASE_1_1,
        "urn:ietf:params:netconf:capability:candidate:1.0",
        "urn:ietf:params:netconf:capability:startup:1.0",
        "urn:ietf:params:netconf:capability:writable-running:1.0",
        "urn:ietf:params:netconf:capability:validate:1.1",
        "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
        "urn:wgnetconf:test?module=wgnetconf-test&revision=2026-11-25",
    ] {
        assert!(
            caps.iter().any(|c| c == want),
            "missing {want} in {caps:#?}"
        );
    }
    // Two sessions get different ids.
    let mut d = agent.ssh2(&env);
    d.read_server_hello();
    assert_ne!(c.session_id, d.session_id);
}

#[test]
fn base_1_0_client_gets_end_of_message_framing() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.ssh2(&env);
    c.hello(&[BASE_1_0]);
    assert!(!c.chunked);
    c.rpc(get_body()).data();
    assert!(
        c.last_raw.ends_with(EOM),
        "reply not EOM-framed: {:?}",
        c.last_raw
    );
    assert!(!c.last_raw.starts_with(b"\n#"));
    // Two rpcs in one write are answered in order.
    let two = format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"a\">{}</rpc>]]>]]><rpc xmlns=\"{NC_NS}\" message-id=\"b\"><get/></rpc>]]>]]>",
        get_body()
    );
    c.send_raw(two.as_bytes());
    let r1 = Reply::new(c.recv());
    let r2 = Reply::new(c.recv());
    assert_eq!(r1.root.attr("message-id"), Some("a"));
    assert_eq!(r2.root.attr("message-id"), Some("b"));
    c.close();
}

#[test]
fn base_1_1_hello_in_eom_then_chunked_both_ways() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.ssh2(&env);
    // RFC 6242 §4.1: the hellos use EOM; chunked framing starts after both
    // peers announced base:1.1.
    c.hello(&[BASE_1_0, BASE_1_1]);
    assert!(c.chunked);
    c.rpc(get_body()).data();
    assert!(
        c.last_raw.starts_with(b"\n#"),
        "reply not chunked: {:?}",
        String::from_utf8_lossy(&c.last_raw)
    );
    assert!(c.last_raw.ends_with(b"\n##\n"));
    // One rpc split over several chunks, a second one in the same write.
    let rpc = format!("<rpc xmlns=\"{NC_NS}\" message-id=\"split\"><get-config><source><candidate/></source></get-config></rpc>");
    let (a, rest) = rpc.split_at(7);
    let (b, d) = rest.split_at(20);
    let second = format!("<rpc xmlns=\"{NC_NS}\" message-id=\"next\"><get/></rpc>");
    let raw = format!(
        "\n#{}\n{a}\n#{}\n{b}\n#{}\n{d}\n##\n\n#{}\n{second}\n##\n",
        a.len(),
        b.len(),
        d.len(),
        second.len()
    );
    c.send_raw(raw.as_bytes());
    let r1 = Reply::new(c.recv());
    assert_eq!(r1.root.attr("message-id"), Some("split"), "{}", r1.text);
    r1.data();
    let r2 = Reply::new(c.recv());
    assert_eq!(r2.root.attr("message-id"), Some("next"), "{}", r2.text);
    r2.data();
    c.close();
}

#[test]
fn base_1_1_only_client_is_accepted() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.ssh2(&env);
    c.hello(&[BASE_1_1]);
    assert!(c.chunked);
    c.rpc(get_body()).data();
    assert!(c.last_raw.starts_with(b"\n#"));
}

#[test]
fn broken_chunked_framing_closes_the_session() {
    // RFC 6242 §4.2: a message is `1*chunk end-of-chunks` with chunk-size
    // `[1-9][0-9]*`; a receiver that meets anything else cannot find the
    // next message boundary, so the session has to end.
    let env = Env::new();
    let agent = env.start();
    let cases: [&[u8]; 5] = [
        b"\n#abc\n<rpc/>\n##\n",
        b"\n#05\n<rpc/>\n##\n",
        b"<rpc xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\"><get/></rpc>]]>]]>",
        b"\n##\n",
        b"\n#3\nabcX#\n",
    ];
    for bad in cases {
        let mut c = agent.ssh2(&env);
        c.hello(&[BASE_1_0, BASE_1_1]);
        c.send_raw(bad);
        let got = c.expect_closed();
        assert!(
            got.iter()
                .all(|m| !m.contains("<ok/>") && !m.contains("<data")),
            "{:?} was answered: {got:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // The agent itself is fine.
    let mut c = agent.session(&env);
    c.rpc(get_body()).data();
}

#[test]
fn message_over_the_size_limit_is_refused() {
    let env = Env::with_netconf("max_message_bytes = 2048");
    let agent = env.start();
    let big = format!(
        "<get-config><source><running/></source><filter type=\"subtree\">{}</filter></get-config>",
        system(&"<hostname/>".repeat(400))
    );
    for caps in [&[BASE_1_0][..], &[BASE_1_0, BASE_1_1][..]] {
        let mut c = agent.ssh2(&env);
        c.hello(caps);
        // Under the limit: fine.
        c.rpc(get_body()).data();
        let msg = format!("<rpc xmlns=\"{NC_NS}\" message-id=\"big\">{big}</rpc>");
        assert!(msg.len() > 2048);
        let framed = c.frame(&msg);
        let _ = c.try_send_raw(&framed);
        let got = c.expect_closed();
        for m in &got {
            let r = Reply::new(m.clone());
            let e = r.error();
            // malformed-message is base:1.1 only (RFC 6241 Appendix A).
            let want = if c.chunked {
                "malformed-message"
            } else {
                "operation-failed"
            };
            assert_eq!(
                (e.error_type.as_str(), e.tag.as_str()),
                ("rpc", want),
                "{m}"
            );
        }
    }
    let mut c = agent.session(&env);
    c.rpc(get_body()).data();
}

#[test]
fn hello_timeout_closes_a_silent_session_only() {
    let env = Env::with_netconf("hello_timeout_secs = 1");
    let agent = env.start();
    let mut talker = agent.session(&env);
    let started = Instant::now();
    let mut silent = agent.ssh2(&env);
    silent.read_server_hello();
    let got = silent.expect_closed();
    assert!(got.is_empty(), "{got:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    // A session that said hello in time outlives the timeout.
    talker.rpc(get_body()).data();
    talker.close();
}

#[test]
fn bad_client_hellos_end_the_session() {
    let env = Env::new();
    let agent = env.start();
    let hellos = [
        // RFC 6241 §8.1: a client hello with a session-id ends the session.
        format!("<hello xmlns=\"{NC_NS}\"><capabilities><capability>{BASE_1_0}</capability></capabilities><session-id>4</session-id></hello>"),
        // No base capability in common.
        format!("<hello xmlns=\"{NC_NS}\"><capabilities><capability>urn:example:other</capability></capabilities></hello>"),
        // An rpc instead of a hello.
        format!("<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><get/></rpc>"),
        // Not XML.
        "<hello".to_string(),
    ];
    for h in hellos {
        let mut c = agent.ssh2(&env);
        c.read_server_hello();
        c.send(&h);
        let got = c.expect_closed();
        assert!(got.iter().all(|m| !m.contains("<data")), "{h}: {got:?}");
    }
}

#[test]
fn openssh_subsystem_full_session() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.openssh(&env);
    c.hello(&[BASE_1_0, BASE_1_1]);
    assert!(c.chunked);
    c.edit("running", &system("<hostname>viassh</hostname>"))
        .assert_ok();
    let data = c.get_config("running");
    assert_eq!(data.get("system/hostname").as_deref(), Some("viassh"));
    assert!(c.last_raw.starts_with(b"\n#"));
    c.close();

    // And a base:1.0-only OpenSSH client.
    let mut c = agent.openssh(&env);
    c.hello(&[BASE_1_0]);
    let data = c.get_config("running");
    assert!(c.last_raw.ends_with(EOM));
    assert_eq!(data.get("system/hostname").as_deref(), Some("viassh"));
    c.close();
}
