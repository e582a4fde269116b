//! edit-config (RFC 6241 §7.2): every operation at container, list entry,
//! leaf and leaf-list level; default-operation; test-option; error-option.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

/// `xmlns:nc` for operation attributes, on the top element.
fn sys_op(op: &str, inner: &str) -> String {
    format!(
        "<system xmlns=\"{TEST_NS}\" xmlns:nc=\"{NC_NS}\" nc:operation=\"{op}\">{inner}</system>"
    )
}

/// `<servers xmlns:nc=..>inner</servers>` so inner elements can carry nc:operation.
fn srv_nc(inner: &str) -> String {
    format!("<servers xmlns=\"{TEST_NS}\" xmlns:nc=\"{NC_NS}\">{inner}</servers>")
}

fn sys_nc(inner: &str) -> String {
    format!("<system xmlns=\"{TEST_NS}\" xmlns:nc=\"{NC_NS}\">{inner}</system>")
}

fn agent_with_seed() -> (Env, Agent, Client) {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    (env, agent, c)
}

#[test]
fn merge_at_every_level() {
    let (_env, _agent, mut c) = agent_with_seed();
    // Leaf: changed, siblings kept.
    c.edit("running", &system("<mtu>9000</mtu>")).assert_ok();
    // Leaf-list: values are added.
    c.edit("running", &system("<dns>10.0.0.3</dns>"))
        .assert_ok();
    // List entry: a new one, and a leaf merged into an existing one.
    c.edit(
        "running",
        &servers(&format!(
            "{}<server><name>a</name><weight>50</weight></server>",
            server("c", "10.0.0.12", "<port>82</port>")
        )),
    )
    .assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert_eq!(d.get("system/mtu").as_deref(), Some("9000"));
    assert_eq!(d.values("system/dns"), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(d.values("servers/server/name"), ["a", "b", "c"]);
    let a = d.server("a").unwrap();
    assert_eq!(a.get("weight").as_deref(), Some("50"));
    assert_eq!(a.get("port").as_deref(), Some("80"));
    assert_eq!(a.values("tag"), ["x", "y"]);
    // Container merge on an empty datastore creates it.
    c.edit("candidate", &format!("<system xmlns=\"{TEST_NS}\"/>"))
        .assert_ok();
}

#[test]
fn replace_at_every_level() {
    let (_env, _agent, mut c) = agent_with_seed();
    // Container: its old content goes.
    c.edit("running", &sys_op("replace", "<hostname>rep</hostname>"))
        .assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/hostname").as_deref(), Some("rep"));
    assert!(d.find("system/dns").is_none(), "{}", d.canon());
    assert!(d.find("system/mtu").is_none(), "{}", d.canon());
    // List entry: replaced as a whole (its tags go).
    c.edit("running", &srv_nc("<server nc:operation=\"replace\"><name>a</name><address>10.9.9.9</address><port>80</port></server>"))
        .assert_ok();
    let d = c.get_config("running");
    let a = d.server("a").unwrap();
    assert_eq!(a.get("address").as_deref(), Some("10.9.9.9"));
    assert!(a.find("tag").is_none(), "{}", d.canon());
    assert!(
        d.server("b").is_some(),
        "replace of one entry removed another"
    );
    // Leaf.
    c.edit(
        "running",
        &sys_nc("<mtu nc:operation=\"replace\">1280</mtu>"),
    )
    .assert_ok();
    // Leaf-list value: replace of one value keeps the others (it names
    // one instance).
    c.edit("running", &sys_nc("<dns>1.1.1.1</dns><dns>2.2.2.2</dns>"))
        .assert_ok();
    c.edit(
        "running",
        &sys_nc("<dns nc:operation=\"replace\">3.3.3.3</dns>"),
    )
    .assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/mtu").as_deref(), Some("1280"));
    assert!(
        d.values("system/dns").contains(&"3.3.3.3".to_string()),
        "{}",
        d.canon()
    );
}

#[test]
fn create_at_every_level_and_data_exists() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    // Container.
    c.edit("running", &sys_op("create", "<hostname>new</hostname>"))
        .assert_ok();
    let e = c
        .edit("running", &sys_op("create", ""))
        .expect_error("application", "data-exists");
    assert_error_path(&e, "/wt:system");
    // Leaf.
    c.edit(
        "running",
        &sys_nc("<mtu nc:operation=\"create\">2000</mtu>"),
    )
    .assert_ok();
    let e = c
        .edit(
            "running",
            &sys_nc("<mtu nc:operation=\"create\">2001</mtu>"),
        )
        .expect_error("application", "data-exists");
    assert_error_path(&e, "/wt:system/wt:mtu");
    // Leaf-list value.
    c.edit(
        "running",
        &sys_nc("<dns nc:operation=\"create\">9.9.9.9</dns>"),
    )
    .assert_ok();
    c.edit(
        "running",
        &sys_nc("<dns nc:operation=\"create\">9.9.9.9</dns>"),
    )
    .expect_error("application", "data-exists");
    // List entry.
    let entry = |op: &str| {
        srv_nc(&format!(
            "<server nc:operation=\"{op}\"><name>n</name><address>1.2.3.4</address></server>"
        ))
    };
    c.edit("running", &entry("create")).assert_ok();
    let e = c
        .edit("running", &entry("create"))
        .expect_error("application", "data-exists");
    assert_error_path(&e, "/wt:servers/wt:server[wt:name='n']");
    let d = c.get_config("running");
    assert_eq!(d.get("system/hostname").as_deref(), Some("new"));
    assert_eq!(d.get("system/mtu").as_deref(), Some("2000"));
    assert_eq!(d.values("system/dns"), ["9.9.9.9"]);
    assert_eq!(d.values("servers/server/name"), ["n"]);
}

#[test]
fn create_of_a_leaf_at_its_default_is_allowed() {
    // mtu has a default but was never set: RFC 6243 §4.5.2 ("explicit"
    // basic mode) treats it as absent, so create works.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit("running", &system("<hostname>h</hostname>"))
        .assert_ok();
    c.edit(
        "running",
        &sys_nc("<mtu nc:operation=\"create\">1500</mtu>"),
    )
    .assert_ok();
}

#[test]
fn delete_at_every_level_and_data_missing() {
    let (_env, _agent, mut c) = agent_with_seed();
    // Leaf-list value.
    c.edit(
        "running",
        &sys_nc("<dns nc:operation=\"delete\">10.0.0.1</dns>"),
    )
    .assert_ok();
    c.edit(
        "running",
        &sys_nc("<dns nc:operation=\"delete\">10.0.0.1</dns>"),
    )
    .expect_error("application", "data-missing");
    // Leaf.
    c.edit("running", &sys_nc("<mtu nc:operation=\"delete\"/>"))
        .assert_ok();
    let e = c
        .edit("running", &sys_nc("<mtu nc:operation=\"delete\"/>"))
        .expect_error("application", "data-missing");
    assert_error_path(&e, "/wt:system/wt:mtu");
    // List entry (b's backup refers to a; delete b first).
    c.edit(
        "running",
        &srv_nc("<server nc:operation=\"delete\"><name>b</name></server>"),
    )
    .assert_ok();
    let e = c
        .edit(
            "running",
            &srv_nc("<server nc:operation=\"delete\"><name>b</name></server>"),
        )
        .expect_error("application", "data-missing");
    assert_error_path(&e, "/wt:servers/wt:server[wt:name='b']");
    let d = c.get_config("running");
    assert_eq!(d.values("system/dns"), ["10.0.0.2"]);
    assert!(d.find("system/mtu").is_none());
    assert_eq!(d.values("servers/server/name"), ["a"]);
    // Container.
    c.edit("running", &sys_op("delete", "")).assert_ok();
    c.edit("running", &sys_op("delete", ""))
        .expect_error("application", "data-missing");
    let d = c.get_config("running");
    assert!(d.find("system").is_none(), "{}", d.canon());
    assert!(d.server("a").is_some());
}

#[test]
fn remove_at_every_level_is_silent_when_missing() {
    let (_env, _agent, mut c) = agent_with_seed();
    for _ in 0..2 {
        // Second round: everything is gone already, still <ok/>
        // (RFC 6241 §7.2: "silently ignored by the server").
        c.edit(
            "running",
            &sys_nc("<dns nc:operation=\"remove\">10.0.0.1</dns>"),
        )
        .assert_ok();
        c.edit("running", &sys_nc("<hostname nc:operation=\"remove\"/>"))
            .assert_ok();
        c.edit(
            "running",
            &srv_nc("<server nc:operation=\"remove\"><name>b</name></server>"),
        )
        .assert_ok();
        let d = c.get_config("running");
        assert_eq!(d.values("system/dns"), ["10.0.0.2"]);
        assert!(d.find("system/hostname").is_none());
        assert_eq!(d.values("servers/server/name"), ["a"]);
    }
    for _ in 0..2 {
        c.edit("running", &sys_op("remove", "")).assert_ok();
        assert!(c.get_config("running").find("system").is_none());
    }
}

#[test]
fn deleting_a_leafref_target_in_use_fails() {
    // b's backup points at a: removing a leaves a dangling leafref
    // (RFC 7950 §9.9, require-instance true by default).
    let (_env, _agent, mut c) = agent_with_seed();
    let e = c
        .edit(
            "running",
            &srv_nc("<server nc:operation=\"delete\"><name>a</name></server>"),
        )
        .error();
    assert_eq!(e.app_tag.as_deref(), Some("instance-required"), "{e:?}");
    assert!(c.get_config("running").server("a").is_some());
}

#[test]
fn default_operation_merge_replace_none() {
    let (_env, _agent, mut c) = agent_with_seed();
    // merge (explicit) is the default.
    c.rpc(&edit_config(
        "running",
        "<default-operation>merge</default-operation>",
        &system("<mtu>1300</mtu>"),
    ))
    .assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/mtu").as_deref(), Some("1300"));
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));

    // none: data without an operation changes nothing; an explicit
    // operation below still applies.
    c.rpc(&edit_config(
        "running",
        "<default-operation>none</default-operation>",
        &sys_nc("<mtu>1301</mtu><hostname nc:operation=\"merge\">viaop</hostname>"),
    ))
    .assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/mtu").as_deref(), Some("1300"));
    assert_eq!(d.get("system/hostname").as_deref(), Some("viaop"));
    // none + delete deep in the tree does not create the parents.
    c.rpc(&edit_config(
        "running",
        "<default-operation>none</default-operation>",
        &srv_nc("<server><name>a</name><tag nc:operation=\"delete\">x</tag></server>"),
    ))
    .assert_ok();
    assert_eq!(
        c.get_config("running").server("a").unwrap().values("tag"),
        ["y"]
    );

    // replace: the whole datastore becomes the <config>.
    c.rpc(&edit_config(
        "running",
        "<default-operation>replace</default-operation>",
        &system("<hostname>only</hostname>"),
    ))
    .assert_ok();
    let d = c.get_config("running");
    assert_eq!(d.get("system/hostname").as_deref(), Some("only"));
    assert!(d.find("servers").is_none(), "{}", d.canon());
    assert!(d.find("system/dns").is_none(), "{}", d.canon());
}

#[test]
fn default_operation_none_refuses_missing_levels() {
    // RFC 6241 §7.2, default-operation none: "If the configuration in the
    // <config> parameter contains data for which there is not a
    // corresponding level in the target datastore, an <rpc-error> is
    // returned with an <error-tag> value of data-missing."
    let (_env, _agent, mut c) = agent_with_seed();
    let r = c.rpc(&edit_config(
        "running",
        "<default-operation>none</default-operation>",
        &srv_nc("<server><name>ghost</name><tag nc:operation=\"merge\">t</tag></server>"),
    ));
    let e = r.expect_error("application", "data-missing");
    assert!(e.path.is_some(), "{e:?}");
    assert!(c.get_config("running").server("ghost").is_none());
}

#[test]
fn test_option_test_only_changes_nothing() {
    let (_env, _agent, mut c) = agent_with_seed();
    for target in ["running", "candidate"] {
        c.rpc(&edit_config(
            target,
            "<test-option>test-only</test-option>",
            &system("<hostname>tested</hostname>"),
        ))
        .assert_ok();
        assert_eq!(
            c.get_config(target).get("system/hostname").as_deref(),
            Some("alpha")
        );
        // And it does test: an invalid edit is refused.
        let e = c
            .rpc(&edit_config(
                target,
                "<test-option>test-only</test-option>",
                &system("<mtu>10</mtu>"),
            ))
            .error();
        assert_eq!(e.tag, "invalid-value", "{e:?}");
    }
}

#[test]
fn test_option_set_and_test_then_set_on_candidate() {
    let (_env, _agent, mut c) = agent_with_seed();
    // test-then-set (the default) refuses what the edit itself gets wrong
    // (RFC 7950 §8.3.1, a value out of range): candidate unchanged.
    let e = c
        .rpc(&edit_config(
            "candidate",
            "<test-option>test-then-set</test-option>",
            &system("<mtu>10</mtu>"),
        ))
        .error();
    assert_eq!(e.tag, "invalid-value", "{e:?}");
    assert_ne!(
        c.get_config("candidate").get("system/mtu").as_deref(),
        Some("10")
    );
    // A missing mandatory leaf waits for validate/commit (§8.3.3): the
    // candidate takes it, validate and commit refuse it.
    let invalid = servers("<server><name>z</name></server>"); // no address
    c.rpc(&edit_config(
        "candidate",
        "<test-option>test-then-set</test-option>",
        &invalid,
    ))
    .assert_ok();
    assert!(c.get_config("candidate").server("z").is_some());
    let e = c
        .rpc("<validate><source><candidate/></source></validate>")
        .error();
    assert_eq!(e.tag, "missing-element", "{e:?}");
    let e = c.commit().error();
    assert_eq!(e.tag, "missing-element", "{e:?}");
    assert!(c.get_config("running").server("z").is_none());
    c.rpc("<discard-changes/>").assert_ok();
    // set: no validation either, the candidate takes it.
    c.rpc(&edit_config(
        "candidate",
        "<test-option>set</test-option>",
        &invalid,
    ))
    .assert_ok();
    assert!(c.get_config("candidate").server("z").is_some());
    // Running always holds a valid configuration, whatever the option.
    let e = c
        .rpc(&edit_config(
            "running",
            "<test-option>set</test-option>",
            &invalid,
        ))
        .error();
    assert_eq!(e.tag, "missing-element", "{e:?}");
    assert!(c.get_config("running").server("z").is_none());
    // test-then-set on a valid edit works.
    c.rpc(&edit_config(
        "running",
        "<test-option>test-then-set</test-option>",
        &system("<mtu>1400</mtu>"),
    ))
    .assert_ok();
}

#[test]
fn error_options_are_accepted_and_edits_are_atomic() {
    // The agent applies an edit-config all or nothing whatever the
    // error-option (it announces :rollback-on-error, RFC 6241 §8.5): one
    // bad change among good ones leaves the target unchanged.
    let (_env, _agent, mut c) = agent_with_seed();
    let before_run = c.get_config("running").canon();
    let bad_edits = [
        // Good leaf, out-of-range leaf.
        system("<hostname>changed</hostname><mtu>1</mtu>"),
        // Good new entry, create of an existing one.
        srv_nc(&format!(
            "{}<server nc:operation=\"create\"><name>a</name><address>x</address></server>",
            server("new", "10.0.0.99", "<port>99</port>")
        )),
        // Good delete, then a bad one (validation-time: two at port 80;
        // on the candidate that waits for commit, RFC 7950 §8.3.3).
        srv_nc(&format!(
            "<server nc:operation=\"delete\"><name>b</name></server>{}",
            server("dup", "10.0.0.98", "<port>80</port>")
        )),
    ];
    for option in ["stop-on-error", "continue-on-error", "rollback-on-error"] {
        for target in ["running", "candidate"] {
            let before = c.get_config(target).canon();
            let edits = if target == "candidate" {
                &bad_edits[..2]
            } else {
                &bad_edits[..]
            };
            for edit in edits {
                let r = c.rpc(&edit_config(
                    target,
                    &format!("<error-option>{option}</error-option>"),
                    edit,
                ));
                assert!(
                    !r.errors().is_empty() && !r.is_ok(),
                    "{option} {target}: {}",
                    r.text
                );
                assert_eq!(
                    c.get_config(target).canon(),
                    before,
                    "{option} {target}: partial edit applied by {edit}"
                );
            }
            // A good edit with the option works.
            c.rpc(&edit_config(
                target,
                &format!("<error-option>{option}</error-option>"),
                &system("<mtu>1400</mtu>"),
            ))
            .assert_ok();
        }
    }
    assert_eq!(c.get_config("running").canon(), before_run);
}

#[test]
fn edit_config_on_candidate_then_commit() {
    let (_env, _agent, mut c) = agent_with_seed();
    c.edit("candidate", &sys_op("delete", "")).assert_ok();
    c.edit(
        "candidate",
        &srv_nc(&server("c", "10.0.0.13", "<port>83</port>")),
    )
    .assert_ok();
    assert!(c.get_config("running").find("system").is_some());
    c.commit().assert_ok();
    let d = c.get_config("running");
    assert!(d.find("system").is_none(), "{}", d.canon());
    assert_eq!(d.values("servers/server/name"), ["a", "b", "c"]);
}

#[test]
fn unknown_operation_attribute_value_is_refused() {
    let (_env, _agent, mut c) = agent_with_seed();
    let e = c
        .edit("running", &sys_op("frob", "<hostname>x</hostname>"))
        .expect_error("protocol", "bad-attribute");
    assert_eq!(e.info("bad-attribute"), Some("operation"), "{e:?}");
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
}

#[test]
fn edit_config_startup_is_refused() {
    // The agent changes startup only with copy-config and delete-config
    // (RFC 6241 §8.7.1: running is saved to startup with <copy-config>).
    let (_env, _agent, mut c) = agent_with_seed();
    c.copy("running", "startup").assert_ok();
    let before = c.get_config("startup").canon();
    c.edit("startup", &system("<hostname>x</hostname>")).error();
    assert_eq!(c.get_config("startup").canon(), before);
    assert_eq!(
        c.get_config("running").get("system/hostname").as_deref(),
        Some("alpha")
    );
}

#[test]
fn valueless_leaf_delete_inside_a_list_entry() {
    // `<port nc:operation="delete"/>`: the element identifies the leaf
    // (RFC 6241 §7.2); an empty value is not needed, nor checked.
    let (_env, _agent, mut c) = agent_with_seed();
    c.edit(
        "running",
        &srv_nc("<server><name>a</name><port nc:operation=\"delete\"/><weight nc:operation=\"remove\"/></server>"),
    )
    .assert_ok();
    let d = c.get_config("running");
    let a = d.server("a").unwrap();
    assert!(a.find("port").is_none(), "{}", d.canon());
    assert_eq!(a.get("address").as_deref(), Some("10.0.0.10"));
    // Deleting it again: data-missing, with the entry's path.
    let e = c
        .edit(
            "running",
            &srv_nc("<server><name>a</name><port nc:operation=\"delete\"/></server>"),
        )
        .expect_error("application", "data-missing");
    assert_error_path(&e, "/wt:servers/wt:server[wt:name='a']/wt:port");
    // In an entry that does not exist: data-missing too, nothing created.
    c.edit(
        "running",
        &srv_nc("<server><name>zz</name><port nc:operation=\"delete\"/></server>"),
    )
    .expect_error("application", "data-missing");
    assert!(c.get_config("running").server("zz").is_none());
}
