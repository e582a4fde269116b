//! Every field of `<rpc-error>` (RFC 6241 §4.3, Appendix A) for the errors
//! a client meets, with the YANG-defined ones of RFC 7950 §15.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

fn start() -> (Env, Agent, Client) {
    let env = Env::new();
    let agent = env.start();
    let c = agent.session(&env);
    (env, agent, c)
}

/// The error of an edit of running that must fail, and running unchanged.
#[track_caller]
fn edit_error(c: &mut Client, config: &str) -> RpcErr {
    let before = c.get_config("running").canon();
    let r = c.edit("running", config);
    let e = r.error();
    assert_eq!(
        c.get_config("running").canon(),
        before,
        "running changed by a failed edit"
    );
    assert_eq!(e.severity, "error");
    assert!(
        e.message.as_deref().is_some_and(|m| !m.is_empty()),
        "no error-message in {}",
        r.text
    );
    e
}

#[test]
fn error_message_has_a_language() {
    // RFC 6241 §4.3: error-message carries xml:lang.
    let (_env, _agent, mut c) = start();
    let r = c.edit("running", &system("<mtu>1</mtu>"));
    let msg = r
        .root
        .find("rpc-error/error-message")
        .unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(msg.attr("xml:lang"), Some("en"), "{}", r.text);
}

#[test]
fn unknown_element() {
    let (_env, _agent, mut c) = start();
    let e = edit_error(&mut c, &system("<bogus>1</bogus>"));
    // Appendix A: unknown-element, error-info <bad-element>.
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "unknown-element"),
        "{e:?}"
    );
    assert_eq!(e.info("bad-element"), Some("bogus"), "{e:?}");
    // Unknown parameter of an operation: protocol layer.
    let r = c.rpc("<get-config><source><running/></source><bogus/></get-config>");
    let e = r.error();
    assert_eq!(e.tag, "unknown-element", "{}", r.text);
    assert_eq!(e.info("bad-element"), Some("bogus"), "{}", r.text);
}

#[test]
fn unknown_namespace() {
    let (_env, _agent, mut c) = start();
    // Appendix A: unknown-namespace, error-info <bad-element> and
    // <bad-namespace>.
    let e = edit_error(
        &mut c,
        "<system xmlns=\"urn:wrong\"><hostname>x</hostname></system>",
    );
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "unknown-namespace"),
        "{e:?}"
    );
    assert_eq!(e.info("bad-namespace"), Some("urn:wrong"), "{e:?}");
    assert_eq!(e.info("bad-element"), Some("system"), "{e:?}");
    // A child in a wrong namespace inside a known container.
    let e = edit_error(
        &mut c,
        &format!("<system xmlns=\"{TEST_NS}\"><hostname xmlns=\"urn:other\">x</hostname></system>"),
    );
    assert!(
        matches!(e.tag.as_str(), "unknown-namespace" | "unknown-element"),
        "{e:?}"
    );
    assert_eq!(e.error_type, "application", "{e:?}");
}

#[test]
fn bad_type_range_length_pattern_are_invalid_value() {
    let (_env, _agent, mut c) = start();
    c.edit("running", &servers(&server("a", "10.0.0.1", "")))
        .assert_ok();
    let cases = [
        // (config, error-path)
        (system("<mtu>abc</mtu>"), "/wt:system/wt:mtu"),
        (system("<mtu>100</mtu>"), "/wt:system/wt:mtu"),
        (system("<mtu>9001</mtu>"), "/wt:system/wt:mtu"),
        (
            system("<hostname>averyveryverylonghost</hostname>"),
            "/wt:system/wt:hostname",
        ),
        (system("<hostname></hostname>"), "/wt:system/wt:hostname"),
        (
            system("<hostname>Bad_Name</hostname>"),
            "/wt:system/wt:hostname",
        ),
        (
            servers("<server><name>a</name><weight>300</weight></server>"),
            "/wt:servers/wt:server[wt:name='a']/wt:weight",
        ),
    ];
    for (config, path) in cases {
        let e = edit_error(&mut c, &config);
        // RFC 6241 Appendix A, invalid-value: "The request specifies an
        // unacceptable value for one or more parameters."
        assert_eq!(
            (e.error_type.as_str(), e.tag.as_str()),
            ("application", "invalid-value"),
            "{config}: {e:?}"
        );
        assert_error_path(&e, path);
    }
}

#[test]
fn unique_violation_lists_both_instances() {
    // RFC 7950 §15.1: operation-failed, error-app-tag data-not-unique,
    // error-info <non-unique> (YANG namespace) once per non-unique leaf.
    let (_env, _agent, mut c) = start();
    let two = servers(&format!(
        "{}{}",
        server("a", "10.0.0.1", "<port>80</port>"),
        server("b", "10.0.0.2", "<port>80</port>")
    ));
    let e = edit_error(&mut c, &two);
    check_non_unique(&e);

    // RFC 7950 §7.8.3: "including leafs with default values": two entries
    // both at the default port 8080 collide.
    let defaults = servers(&format!(
        "{}{}",
        server("a", "10.0.0.1", ""),
        server("b", "10.0.0.2", "")
    ));
    let e = edit_error(&mut c, &defaults);
    check_non_unique(&e);
    // One explicit 8080 and one default collide too.
    c.edit(
        "running",
        &servers(&server("a", "10.0.0.1", "<port>8080</port>")),
    )
    .assert_ok();
    let e = edit_error(&mut c, &servers(&server("b", "10.0.0.2", "")));
    check_non_unique(&e);
}

fn check_non_unique(e: &RpcErr) {
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "operation-failed"),
        "{e:?}"
    );
    assert_eq!(e.app_tag.as_deref(), Some("data-not-unique"), "{e:?}");
    let nu: Vec<_> = e.info.iter().filter(|i| i.name == "non-unique").collect();
    assert_eq!(nu.len(), 2, "{e:?}");
    let want_scope = vec![("wt".to_string(), TEST_NS.to_string())];
    let mut got: Vec<String> = nu
        .iter()
        .map(|i| {
            assert_eq!(
                i.ns.as_deref(),
                Some(YANG_NS),
                "non-unique namespace: {e:?}"
            );
            resolve_path(&i.value, &i.scope)
        })
        .collect();
    got.sort();
    let want: Vec<String> = ["a", "b"]
        .iter()
        .map(|n| {
            resolve_path(
                &format!("/wt:servers/wt:server[wt:name='{n}']/wt:port"),
                &want_scope,
            )
        })
        .collect();
    assert_eq!(got, want, "{e:?}");
}

#[test]
fn missing_mandatory_leaf() {
    let (_env, _agent, mut c) = start();
    let e = edit_error(&mut c, &servers("<server><name>m</name></server>"));
    // Appendix A: missing-element, error-info <bad-element>.
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "missing-element"),
        "{e:?}"
    );
    assert_eq!(e.info("bad-element"), Some("address"), "{e:?}");
    let path = e.path.clone().unwrap_or_default();
    assert!(path.contains("name='m'"), "{e:?}");
}

#[test]
fn create_existing_and_delete_missing() {
    let (_env, _agent, mut c) = start();
    c.edit("running", &system("<hostname>h</hostname>"))
        .assert_ok();
    let nc = format!("xmlns:nc=\"{NC_NS}\"");
    let e = edit_error(
        &mut c,
        &format!("<system xmlns=\"{TEST_NS}\" {nc}><hostname nc:operation=\"create\">g</hostname></system>"),
    );
    // Appendix A: data-exists, error-type application.
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "data-exists"),
        "{e:?}"
    );
    assert_error_path(&e, "/wt:system/wt:hostname");
    assert_eq!(e.info("bad-element"), Some("hostname"), "{e:?}");
    let e = edit_error(
        &mut c,
        &format!(
            "<system xmlns=\"{TEST_NS}\" {nc}><dns nc:operation=\"delete\">1.1.1.1</dns></system>"
        ),
    );
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "data-missing"),
        "{e:?}"
    );
    let path = e.path.clone().unwrap_or_default();
    assert!(path.contains("dns"), "{e:?}");
    resolve_path(&path, &e.path_ns);
}

#[test]
fn lock_denied_and_in_use_fields() {
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    a.lock("running").assert_ok();
    let r = b.lock("running");
    let e = r.expect_error("protocol", "lock-denied");
    assert_eq!(
        e.infos("session-id"),
        [a.session_id.to_string().as_str()],
        "{}",
        r.text
    );
    assert!(e.message.as_deref().is_some_and(|m| !m.is_empty()));
    // session-id is in the base namespace (RFC 6241 Appendix B).
    let sid = r.root.find("rpc-error/error-info/session-id").unwrap();
    assert_eq!(sid.ns.as_deref(), Some(NC_NS));
    let e = b
        .edit("running", &system("<hostname>x</hostname>"))
        .expect_error("protocol", "in-use");
    assert!(e.message.as_deref().is_some_and(|m| !m.is_empty()));
}

#[test]
fn malformed_message_keeps_the_session() {
    // Appendix A: malformed-message, error-type rpc, "the message is not
    // well-formed XML"; the framing is intact so the session goes on.
    let (_env, _agent, mut c) = start();
    for bad in [
        format!("<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><get></rpc>"),
        "<rpc".to_string(),
        format!("<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><get/></rpc><rpc/>"),
        format!("<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><p:get/></rpc>"),
    ] {
        let r = c.raw_rpc(&bad);
        assert!(r.root.is(NC_NS, "rpc-reply"), "{}", r.text);
        let e = r.expect_error("rpc", "malformed-message");
        assert!(e.message.is_some());
    }
    c.rpc("<get/>").data();
}

#[test]
fn malformed_message_is_not_sent_to_base_1_0_clients() {
    // RFC 6241 Appendix A, malformed-message: "This error-tag is new in
    // :base:1.1 and MUST NOT be sent to old clients."
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.ssh2(&env);
    c.hello(&[BASE_1_0]);
    let r = c.raw_rpc(&format!(
        "<rpc xmlns=\"{NC_NS}\" message-id=\"1\"><get></rpc>"
    ));
    let e = r.error();
    assert_ne!(e.tag, "malformed-message", "{}", r.text);
    assert_eq!(e.error_type, "rpc", "{}", r.text);
    c.rpc("<get/>").data();
}

#[test]
fn missing_message_id() {
    // RFC 6241 §4.1: message-id is mandatory; Appendix A missing-attribute
    // with bad-attribute and bad-element.
    let (_env, _agent, mut c) = start();
    let r = c.raw_rpc(&format!("<rpc xmlns=\"{NC_NS}\"><get/></rpc>"));
    let e = r.expect_error("rpc", "missing-attribute");
    assert_eq!(e.info("bad-attribute"), Some("message-id"), "{}", r.text);
    assert_eq!(e.info("bad-element"), Some("rpc"), "{}", r.text);
}

#[test]
fn must_violation() {
    // RFC 7950 §15.4: operation-failed, error-app-tag must-violation, the
    // must's own error-message.
    let (_env, _agent, mut c) = start();
    let e = edit_error(
        &mut c,
        &servers(&server("a", "10.0.0.1", "<weight>101</weight>")),
    );
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "operation-failed"),
        "{e:?}"
    );
    assert_eq!(e.app_tag.as_deref(), Some("must-violation"), "{e:?}");
    assert_eq!(
        e.message.as_deref(),
        Some("weight must be at most 100"),
        "{e:?}"
    );
    assert_error_path(&e, "/wt:servers/wt:server[wt:name='a']/wt:weight");

    c.edit("running", &servers(&server("a", "10.0.0.1", "")))
        .assert_ok();
    let e = edit_error(
        &mut c,
        &servers("<server><name>a</name><backup>a</backup></server>"),
    );
    assert_eq!(e.app_tag.as_deref(), Some("must-violation"), "{e:?}");
    assert_eq!(
        e.message.as_deref(),
        Some("a server cannot be its own backup"),
        "{e:?}"
    );
    assert_error_path(&e, "/wt:servers/wt:server[wt:name='a']/wt:backup");
}

#[test]
fn leafref_without_instance() {
    // RFC 7950 §15.5: data-missing, error-app-tag instance-required,
    // error-path the leafref.
    let (_env, _agent, mut c) = start();
    let e = edit_error(
        &mut c,
        &servers(&server("a", "10.0.0.1", "<backup>ghost</backup>")),
    );
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "data-missing"),
        "{e:?}"
    );
    assert_eq!(e.app_tag.as_deref(), Some("instance-required"), "{e:?}");
    assert_error_path(&e, "/wt:servers/wt:server[wt:name='a']/wt:backup");
}

#[test]
fn too_many_elements() {
    // RFC 7950 §15.2: operation-failed, error-app-tag too-many-elements.
    let (_env, _agent, mut c) = start();
    let e = edit_error(
        &mut c,
        &system("<dns>1</dns><dns>2</dns><dns>3</dns><dns>4</dns>"),
    );
    assert_eq!(
        (e.error_type.as_str(), e.tag.as_str()),
        ("application", "operation-failed"),
        "{e:?}"
    );
    assert_eq!(e.app_tag.as_deref(), Some("too-many-elements"), "{e:?}");
    let path = e
        .path
        .clone()
        .unwrap_or_else(|| panic!("no error-path: {e:?}"));
    let got = resolve_path(&path, &e.path_ns);
    assert!(
        got.starts_with(&format!("/{{{TEST_NS}}}system/{{{TEST_NS}}}dns")),
        "{got}"
    );
    // Three is fine.
    c.edit("running", &system("<dns>1</dns><dns>2</dns><dns>3</dns>"))
        .assert_ok();
}

#[test]
fn state_data_in_an_edit_is_refused() {
    let (_env, _agent, mut c) = start();
    let e = edit_error(&mut c, &system("<counter>5</counter>"));
    assert_eq!(e.error_type, "application", "{e:?}");
}

#[test]
fn several_rpc_errors_are_each_complete() {
    // Every rpc-error carries type, tag and severity (RFC 6241 §4.3).
    let (_env, _agent, mut c) = start();
    let r = c.edit(
        "running",
        &servers(&format!("{}{}", server("a", "1", ""), server("b", "2", ""))),
    );
    for e in r.errors() {
        assert!(!e.error_type.is_empty() && !e.tag.is_empty(), "{}", r.text);
        assert_eq!(e.severity, "error");
    }
    assert!(!r.errors().is_empty());
}
