//! Every NETCONF operation of RFC 6241 §7 (and the candidate, startup and
//! validate capabilities of §8), except edit-config (netconf_edit.rs) and
//! the lock rules (netconf_locks.rs).

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

#[test]
fn rpc_reply_echoes_every_rpc_attribute() {
    // RFC 6241 §4.2: the <rpc-reply> MUST carry all the attributes of the
    // <rpc>, message-id included, unchanged.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let r = c.raw_rpc(&format!(
        "<rpc message-id=\"101\" xmlns=\"{NC_NS}\" xmlns:ex=\"http://example.net/content/1.0\" ex:user-id=\"fred\"><get/></rpc>"
    ));
    assert_eq!(r.root.attr("message-id"), Some("101"), "{}", r.text);
    assert_eq!(r.root.attr("ex:user-id"), Some("fred"), "{}", r.text);
    r.data();
}

#[test]
fn get_returns_running_configuration() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let before = c.rpc("<get/>").data();
    assert!(before.find("system/hostname").is_none());
    seed(&mut c);
    let d = c.rpc("<get/>").data();
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert_eq!(d.values("system/dns"), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(
        d.server("b").and_then(|s| s.get("backup")).as_deref(),
        Some("a")
    );
    // Namespaced in the module's namespace.
    assert_eq!(
        d.find("system").and_then(|s| s.ns.clone()).as_deref(),
        Some(TEST_NS)
    );
    // A filter applies to <get> too.
    let d = c
        .rpc(&format!(
            "<get><filter type=\"subtree\">{}</filter></get>",
            system("<mtu/>")
        ))
        .data();
    assert_eq!(d.get("system/mtu").as_deref(), Some("1400"));
    assert!(d.find("system/hostname").is_none(), "{}", d.canon());
    assert!(d.find("servers").is_none());
}

#[test]
fn get_config_reads_each_datastore() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    // Until edited, the candidate reads as running (RFC 6241 §8.3.1).
    assert_eq!(
        c.get_config("candidate").canon(),
        c.get_config("running").canon()
    );
    c.edit("candidate", &system("<hostname>beta</hostname>"))
        .assert_ok();
    assert_eq!(
        c.get_config("candidate").get("system/hostname").as_deref(),
        Some("beta")
    );
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
    c.copy("running", "startup").assert_ok();
    assert_eq!(
        c.get_config("startup").get("system/hostname").as_deref(),
        Some("alpha")
    );
    // State data (config false) never appears in get-config.
    assert!(c.get_config("running").find("system/counter").is_none());
}

#[test]
fn subtree_filter_selection_nodes() {
    // RFC 6241 §6.2.3/§6.4.2: a selection node selects its whole subtree;
    // siblings not named are left out.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    let d = c.get_config_filtered("running", &servers(""));
    assert!(d.find("system").is_none(), "{}", d.canon());
    assert_eq!(d.values("servers/server/name"), ["a", "b"]);
    assert_eq!(
        d.server("a").map(|s| s.values("tag")),
        Some(vec!["x".into(), "y".into()])
    );

    let d = c.get_config_filtered("running", &system("<hostname/><dns/>"));
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert_eq!(d.values("system/dns"), ["10.0.0.1", "10.0.0.2"]);
    assert!(d.find("system/mtu").is_none(), "{}", d.canon());
    assert!(d.find("servers").is_none());

    // Two top-level selections.
    let d = c.get_config_filtered("running", &format!("{}{}", system(""), servers("")));
    assert!(d.find("system/mtu").is_some() && d.find("servers/server").is_some());

    // An empty filter selects nothing (§6.4.2).
    let d = c.get_config_filtered("running", "");
    assert!(d.is_empty(), "{}", d.canon());
}

#[test]
fn subtree_filter_content_match_on_list_key() {
    // RFC 6241 §6.4.5/§6.4.7: content match nodes pick list entries; with
    // only content match nodes the whole entry is returned, with selection
    // siblings only those (and the keys).
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    let d = c.get_config_filtered("running", &servers("<server><name>b</name></server>"));
    assert_eq!(d.values("servers/server/name"), ["b"]);
    let b = d.server("b").expect("b");
    assert_eq!(b.get("address").as_deref(), Some("10.0.0.11"));
    assert_eq!(b.get("backup").as_deref(), Some("a"));

    let d = c.get_config_filtered(
        "running",
        &servers("<server><name>a</name><port/></server>"),
    );
    let a = d.server("a").expect("a");
    assert_eq!(a.get("port").as_deref(), Some("80"));
    assert!(a.find("address").is_none(), "{}", d.canon());
    assert!(a.find("tag").is_none(), "{}", d.canon());
    assert!(d.server("b").is_none());

    // Content match on a non-key leaf.
    let d = c.get_config_filtered(
        "running",
        &servers("<server><port>81</port><name/></server>"),
    );
    assert_eq!(d.values("servers/server/name"), ["b"]);

    // No entry matches: nothing is returned.
    let d = c.get_config_filtered("running", &servers("<server><name>zz</name></server>"));
    assert!(d.find("servers/server").is_none(), "{}", d.canon());
}

#[test]
fn subtree_filter_containment_nodes() {
    // RFC 6241 §6.2.4: a containment node (an element with children) keeps
    // the ancestors of what its children select.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    let d = c.get_config_filtered("running", &servers("<server><tag/></server>"));
    let a = d.server("a").expect("entry a with its key");
    assert_eq!(a.values("tag"), ["x", "y"]);
    assert!(a.find("address").is_none(), "{}", d.canon());
    // b has no tag: at most its key comes back, never its other leaves.
    if let Some(b) = d.server("b") {
        assert!(b.find("address").is_none(), "{}", d.canon());
    }
    // A filter in a namespace no module has selects nothing.
    let d = c.get_config_filtered("running", "<system xmlns=\"urn:nobody\"/>");
    assert!(d.is_empty(), "{}", d.canon());
}

#[test]
fn unnamespaced_filter_inside_namespaced_get() {
    // ncclient sends <filter> without a namespace inside a prefixed
    // <nc:get>: RFC 6241 §6.1 names it the <filter> parameter all the same.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    for op in ["get", "get-config"] {
        let source = if op == "get-config" {
            "<nc:source><nc:running/></nc:source>"
        } else {
            ""
        };
        let r = c.raw_rpc(&format!(
            "<nc:rpc xmlns:nc=\"{NC_NS}\" message-id=\"7\"><nc:{op}>{source}<filter type=\"subtree\"><system xmlns=\"{TEST_NS}\"><hostname/></system></filter></nc:{op}></nc:rpc>"
        ));
        assert_eq!(r.root.attr("message-id"), Some("7"));
        let d = r.data();
        assert_eq!(
            d.get("system/hostname").as_deref(),
            Some("alpha"),
            "{}",
            r.text
        );
        assert!(d.find("servers").is_none(), "{}", r.text);
        assert!(d.find("system/mtu").is_none(), "{}", r.text);
    }
}

#[test]
fn copy_config_running_to_startup_and_candidate_to_running() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.copy("running", "startup").assert_ok();
    assert_eq!(
        c.get_config("startup").canon(),
        c.get_config("running").canon()
    );

    c.edit("candidate", &system("<hostname>gamma</hostname>"))
        .assert_ok();
    c.copy("candidate", "running").assert_ok();
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("gamma")
    );
    // Startup is a separate datastore: unchanged.
    assert_eq!(
        c.get_config("startup").get("system/hostname").as_deref(),
        Some("alpha")
    );

    // startup → running brings it back.
    c.copy("startup", "running").assert_ok();
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
}

#[test]
fn copy_config_inline_config_replaces_target() {
    // RFC 6241 §7.3: the target is replaced by the <config> as a whole.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    let inline = format!(
        "<copy-config><target><candidate/></target><source><config>{}</config></source></copy-config>",
        system("<hostname>inline</hostname>")
    );
    c.rpc(&inline).assert_ok();
    let cand = c.get_config("candidate");
    assert_eq!(cand.get("system/hostname").as_deref(), Some("inline"));
    assert!(cand.find("servers/server").is_none(), "{}", cand.canon());
    assert!(cand.find("system/dns").is_none());
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
    c.rpc("<discard-changes/>").assert_ok();

    let inline = format!(
        "<copy-config><target><running/></target><source><config>{}</config></source></copy-config>",
        servers(&server("solo", "192.0.2.1", ""))
    );
    c.rpc(&inline).assert_ok();
    let run = c.get_config("running");
    assert_eq!(run.values("servers/server/name"), ["solo"]);
    assert!(run.find("system/hostname").is_none(), "{}", run.canon());

    // An invalid inline config is refused and running stays.
    let bad = format!(
        "<copy-config><target><running/></target><source><config>{}</config></source></copy-config>",
        servers("<server><name>noaddr</name></server>")
    );
    c.rpc(&bad).error();
    assert_eq!(
        c.get_config("running").values("servers/server/name"),
        ["solo"]
    );

    // An inline config carries no edit operations.
    let op = format!(
        "<copy-config><target><candidate/></target><source><config><system xmlns=\"{TEST_NS}\" xmlns:nc=\"{NC_NS}\" nc:operation=\"delete\"/></config></source></copy-config>"
    );
    c.rpc(&op).error();
}

#[test]
fn delete_config_startup_only() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.copy("running", "startup").assert_ok();
    assert!(env.state_dir().join("startup.xml").exists());
    c.rpc("<delete-config><target><startup/></target></delete-config>")
        .assert_ok();
    assert!(!env.state_dir().join("startup.xml").exists());
    // A deleted startup reads as empty <data/> (Ansible's netconf_get).
    let r = c.rpc("<get-config><source><startup/></source></get-config>");
    let d = r
        .root
        .child("data")
        .expect("no <data> for a deleted startup");
    assert!(d.is_empty(), "startup still has data: {}", r.text);
    // RFC 6241 §7.4: "The <running> configuration datastore cannot be
    // deleted."
    let r = c.rpc("<delete-config><target><running/></target></delete-config>");
    r.error();
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
}

#[test]
fn commit_and_discard_changes() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let mut other = agent.session(&env);
    seed(&mut c);
    c.edit("candidate", &system("<hostname>next</hostname>"))
        .assert_ok();
    // The candidate is shared (RFC 6241 §8.3.1): another session sees it.
    assert_eq!(
        other
            .get_config("candidate")
            .get("system/hostname")
            .as_deref(),
        Some("next")
    );
    c.rpc("<discard-changes/>").assert_ok();
    assert_eq!(
        c.get_config("candidate").get("system/hostname").as_deref(),
        Some("alpha")
    );

    c.edit("candidate", &system("<hostname>next</hostname>"))
        .assert_ok();
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
    c.commit().assert_ok();
    assert_eq!(
        other
            .get_config("running")
            .get("system/hostname")
            .as_deref(),
        Some("next")
    );
    // After a commit candidate and running agree.
    assert_eq!(
        c.get_config("candidate").canon(),
        c.get_config("running").canon()
    );
    // A commit with nothing pending is fine.
    c.commit().assert_ok();
}

#[test]
fn failed_commit_keeps_running_and_candidate() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    // test-option set skips validation: the candidate may be invalid
    // (RFC 6241 §8.3.1 "The candidate may be temporarily inconsistent").
    let body = edit_config(
        "candidate",
        "<test-option>set</test-option>",
        &servers("<server><name>c</name><port>99</port></server>"),
    );
    c.rpc(&body).assert_ok();
    let e = c.commit().error();
    assert_eq!(e.tag, "missing-element", "{e:?}");
    assert!(c.get_config("running").server("c").is_none());
    assert!(
        c.get_config("candidate").server("c").is_some(),
        "candidate lost its changes"
    );
}

#[test]
fn validate_candidate_running_and_inline_config() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    c.rpc("<validate><source><running/></source></validate>")
        .assert_ok();
    c.rpc("<validate><source><candidate/></source></validate>")
        .assert_ok();
    let body = edit_config(
        "candidate",
        "<test-option>set</test-option>",
        &servers(&server("c", "10.0.0.12", "<weight>200</weight>")),
    );
    c.rpc(&body).assert_ok();
    let e = c
        .rpc("<validate><source><candidate/></source></validate>")
        .error();
    assert_eq!(e.app_tag.as_deref(), Some("must-violation"), "{e:?}");

    let good = format!(
        "<validate><source><config>{}</config></source></validate>",
        servers(&server("v", "10.1.1.1", ""))
    );
    c.rpc(&good).assert_ok();
    let bad = format!(
        "<validate><source><config>{}</config></source></validate>",
        servers(&format!(
            "{}{}",
            server("v", "10.1.1.1", ""),
            server("w", "10.1.1.2", "")
        ))
    );
    // Both at the default port 8080: not unique.
    let e = c.rpc(&bad).error();
    assert_eq!(e.app_tag.as_deref(), Some("data-not-unique"), "{e:?}");
    // validate changes nothing.
    assert!(c.get_config("running").server("v").is_none());
}

#[test]
fn close_session_replies_ok_then_ends() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let r = c.rpc("<close-session/>");
    r.assert_ok();
    let rest = c.expect_closed();
    assert!(rest.is_empty(), "{rest:?}");
    // Over OpenSSH too: ssh exits once the session is closed.
    let mut c = agent.openssh(&env);
    c.hello(&[BASE_1_0]);
    c.close();
}

#[test]
fn unsupported_operations_and_parameters() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let e = c.rpc("<frobnicate/>").error();
    assert_eq!(e.tag, "operation-not-supported", "{e:?}");
    // No :url capability.
    let e = c
        .rpc("<copy-config><target><url>file:///x</url></target><source><running/></source></copy-config>")
        .error();
    assert_eq!(e.tag, "operation-not-supported", "{e:?}");
    // An unknown filter type (:xpath is implemented: tests/netconf_xpath.rs).
    let e = c
        .rpc("<get><filter type=\"regex\" select=\"/system\"/></get>")
        .error();
    assert_eq!(e.tag, "bad-attribute", "{e:?}");
    // The session still works.
    c.rpc("<get/>").data();
}
