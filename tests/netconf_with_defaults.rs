//! :with-defaults (RFC 6243): basic mode explicit, and the four retrieval
//! modes on get, get-config and copy-config, on the test model's defaults
//! (system/mtu 1500, server/port 8080, server/weight 10).

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const WD_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";
/// RFC 6243 §6: the namespace of the `default` XML attribute.
const WD_ATTR_NS: &str = "urn:ietf:params:xml:ns:netconf:default:1.0";
const WD_CAP: &str = "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,trim,report-all-tagged";

fn wd(mode: &str) -> String {
    format!("<with-defaults xmlns=\"{WD_NS}\">{mode}</with-defaults>")
}

/// hostname set, mtu left to its default; server a sets port to the
/// default value explicitly and leaves weight; server b sets both.
fn seed_defaults(c: &mut Client) {
    let cfg = format!(
        "{}{}",
        system("<hostname>alpha</hostname>"),
        servers(&format!(
            "{}{}",
            server("a", "10.0.0.1", "<port>8080</port>"),
            server("b", "10.0.0.2", "<port>81</port><weight>20</weight>")
        ))
    );
    c.edit("running", &cfg).assert_ok();
}

fn get_config_wd(c: &mut Client, source: &str, mode: &str) -> Node {
    c.rpc(&format!(
        "<get-config><source><{source}/></source>{}</get-config>",
        wd(mode)
    ))
    .data()
}

/// The value of a `default` attribute in the RFC 6243 §6 namespace, if any.
fn default_attr(n: &Node) -> Option<String> {
    n.attrs.iter().find_map(|(k, v)| {
        let (prefix, local) = k.split_once(':')?;
        if local != "default" {
            return None;
        }
        let ns = n.scope.iter().find(|(p, _)| p == prefix).map(|(_, u)| u)?;
        (ns == WD_ATTR_NS).then(|| v.clone())
    })
}

fn server_leaf<'a>(d: &'a Node, name: &str, leaf: &str) -> Option<&'a Node> {
    d.server(name).and_then(|s| s.child(leaf))
}

#[test]
fn hello_announces_with_defaults_basic_mode_explicit() {
    let env = Env::new();
    let agent = env.start();
    let c = {
        let mut c = agent.ssh2(&env);
        c.hello(&[BASE_1_0, BASE_1_1]);
        c
    };
    let caps = c.server_capabilities();
    assert!(caps.iter().any(|x| x == WD_CAP), "{caps:?}");
    // The module itself is announced too (RFC 6243 §4.3 needs it loaded).
    assert!(
        caps.iter()
            .any(|x| x.starts_with(&format!("{WD_NS}?module=ietf-netconf-with-defaults"))),
        "{caps:?}"
    );
}

#[test]
fn explicit_is_the_basic_mode() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed_defaults(&mut c);
    for d in [
        c.get_config("running"),
        get_config_wd(&mut c, "running", "explicit"),
    ] {
        assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
        // Never set: not reported.
        assert!(d.find("system/mtu").is_none(), "{}", d.canon());
        assert!(server_leaf(&d, "a", "weight").is_none(), "{}", d.canon());
        // Set by the client to the default value: reported.
        assert_eq!(
            server_leaf(&d, "a", "port").map(Node::text).as_deref(),
            Some("8080")
        );
        assert_eq!(
            server_leaf(&d, "b", "weight").map(Node::text).as_deref(),
            Some("20")
        );
        assert!(default_attr(d.find("system/hostname").unwrap()).is_none());
    }
    // Same bytes with and without the parameter.
    let plain = c.rpc("<get-config><source><running/></source></get-config>");
    let explicit = c.rpc(&format!(
        "<get-config><source><running/></source>{}</get-config>",
        wd("explicit")
    ));
    assert_eq!(plain.data().canon(), explicit.data().canon());
}

#[test]
fn report_all_reports_every_default() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed_defaults(&mut c);
    let d = get_config_wd(&mut c, "running", "report-all");
    assert_eq!(
        d.get("system/mtu").as_deref(),
        Some("1500"),
        "{}",
        d.canon()
    );
    assert_eq!(
        server_leaf(&d, "a", "weight").map(Node::text).as_deref(),
        Some("10")
    );
    assert_eq!(
        server_leaf(&d, "a", "port").map(Node::text).as_deref(),
        Some("8080")
    );
    assert_eq!(
        server_leaf(&d, "b", "weight").map(Node::text).as_deref(),
        Some("20")
    );
    // No tags in report-all.
    let mtu = d.find("system/mtu").unwrap();
    assert!(default_attr(mtu).is_none());

    // get reports them too, and a filter applies.
    let g = c
        .rpc(&format!(
            "<get><filter type=\"subtree\">{}</filter>{}</get>",
            system(""),
            wd("report-all")
        ))
        .data();
    assert_eq!(
        g.get("system/mtu").as_deref(),
        Some("1500"),
        "{}",
        g.canon()
    );
    assert!(g.find("servers").is_none(), "{}", g.canon());

    // A candidate edited with test-option set (never validated) still
    // reports its defaults.
    c.rpc(&edit_config(
        "candidate",
        "<test-option>set</test-option>",
        &servers(&server("c", "10.0.0.3", "")),
    ))
    .assert_ok();
    let d = get_config_wd(&mut c, "candidate", "report-all");
    assert_eq!(
        server_leaf(&d, "c", "port").map(Node::text).as_deref(),
        Some("8080"),
        "{}",
        d.canon()
    );
    assert_eq!(
        server_leaf(&d, "c", "weight").map(Node::text).as_deref(),
        Some("10")
    );
}

#[test]
fn trim_drops_every_default_value() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed_defaults(&mut c);
    let d = get_config_wd(&mut c, "running", "trim");
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert!(d.find("system/mtu").is_none(), "{}", d.canon());
    // Explicitly set to the default value: trimmed as well (RFC 6243 §3.2).
    assert!(server_leaf(&d, "a", "port").is_none(), "{}", d.canon());
    assert!(server_leaf(&d, "a", "weight").is_none());
    // The list entry itself and non-default values stay.
    assert_eq!(
        d.server("a").and_then(|s| s.get("address")).as_deref(),
        Some("10.0.0.1")
    );
    assert_eq!(
        server_leaf(&d, "b", "port").map(Node::text).as_deref(),
        Some("81")
    );
    assert_eq!(
        server_leaf(&d, "b", "weight").map(Node::text).as_deref(),
        Some("20")
    );
}

#[test]
fn report_all_tagged_marks_defaults_with_the_rfc6243_attribute() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed_defaults(&mut c);
    let r = c.rpc(&format!(
        "<get-config><source><running/></source>{}</get-config>",
        wd("report-all-tagged")
    ));
    let d = r.data();
    let mtu = d.find("system/mtu").unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(mtu.text(), "1500");
    assert_eq!(default_attr(mtu).as_deref(), Some("true"), "{}", r.text);
    let weight = server_leaf(&d, "a", "weight").expect("a/weight");
    assert_eq!(default_attr(weight).as_deref(), Some("true"), "{}", r.text);
    // Set explicitly to the default value: also default data, tagged.
    let port = server_leaf(&d, "a", "port").expect("a/port");
    assert_eq!(default_attr(port).as_deref(), Some("true"), "{}", r.text);
    // Non-default values carry no tag.
    for n in [
        d.find("system/hostname").unwrap(),
        server_leaf(&d, "b", "port").unwrap(),
        server_leaf(&d, "b", "weight").unwrap(),
    ] {
        assert!(default_attr(n).is_none(), "{} in {}", n.local, r.text);
    }
}

#[test]
fn with_defaults_errors() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let e = c
        .rpc(&format!(
            "<get-config><source><running/></source>{}</get-config>",
            wd("everything")
        ))
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("with-defaults"));
    // In the base namespace it is no parameter of get-config.
    let e = c
        .rpc("<get-config><source><running/></source><with-defaults>trim</with-defaults></get-config>")
        .expect_error("protocol", "unknown-element");
    assert_eq!(e.info("bad-element"), Some("with-defaults"));
    // Not a parameter of edit-config.
    let e = c
        .rpc(&edit_config("running", &wd("trim"), &system("")))
        .expect_error("protocol", "unknown-namespace");
    assert_eq!(e.info("bad-element"), Some("with-defaults"));
}

#[test]
fn copy_config_accepts_with_defaults() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed_defaults(&mut c);
    c.rpc(&format!(
        "<copy-config><target><startup/></target><source><running/></source>{}</copy-config>",
        wd("report-all")
    ))
    .assert_ok();
    assert_eq!(
        c.get_config("startup").canon(),
        c.get_config("running").canon()
    );
    let e = c
        .rpc(&format!(
            "<copy-config><target><startup/></target><source><running/></source>{}</copy-config>",
            wd("bogus")
        ))
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("with-defaults"));
}

#[test]
fn report_all_tagged_output_copies_back() {
    // RFC 6243 §6: a client may send the tagged data back (the `default`
    // attribute in a <config>); a tag on a value that is not the default is
    // invalid-value.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed_defaults(&mut c);
    let r = c.rpc(&format!(
        "<get-config><source><running/></source>{}</get-config>",
        wd("report-all-tagged")
    ));
    let start = r.text.find("<data>").expect("data") + "<data>".len();
    let end = r.text.rfind("</data>").expect("/data");
    let tagged = r.text[start..end].to_string();
    assert!(tagged.contains(WD_ATTR_NS), "{tagged}");
    c.rpc(&format!(
        "<copy-config><target><candidate/></target><source><config>{tagged}</config></source></copy-config>"
    ))
    .assert_ok();
    assert_eq!(
        get_config_wd(&mut c, "candidate", "report-all").canon(),
        get_config_wd(&mut c, "running", "report-all").canon()
    );
    let e = c
        .rpc(&edit_config(
            "candidate",
            "",
            &system(&format!(
                "<mtu xmlns:wd=\"{WD_ATTR_NS}\" wd:default=\"true\">1400</mtu>"
            )),
        ))
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("mtu"), "{e:?}");
    let e = c
        .rpc(&format!(
            "<copy-config><target><candidate/></target><source><config>{}</config></source></copy-config>",
            system(&format!(
                "<mtu xmlns:wd=\"{WD_ATTR_NS}\" wd:default=\"true\">9000</mtu>"
            ))
        ))
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("mtu"), "{e:?}");
    // Nothing of it reached the candidate.
    assert_eq!(
        get_config_wd(&mut c, "candidate", "report-all").canon(),
        get_config_wd(&mut c, "running", "report-all").canon()
    );
}
