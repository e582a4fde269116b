//! :xpath (RFC 6241 §8.9): `<filter type="xpath" select="...">` on get and
//! get-config, with the namespace prefixes declared on the filter element
//! (as ncclient sends them) or on an ancestor; and deterministic get-config
//! output (Ansible compares text to decide `changed`).

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const XPATH_CAP: &str = "urn:ietf:params:netconf:capability:xpath:1.0";
const NCM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";

/// A get-config of running with an XPath filter whose prefix `x` is
/// declared on `<filter>`, as ncclient's `filter=('xpath', (select, nsmap))`
/// sends it.
fn xpath_get_config(c: &mut Client, select: &str) -> Reply {
    c.rpc(&format!(
        "<get-config><source><running/></source><filter type=\"xpath\" xmlns:x=\"{TEST_NS}\" select=\"{select}\"/></get-config>"
    ))
}

#[test]
fn hello_announces_xpath() {
    let env = Env::new();
    let agent = env.start();
    let c = agent.session(&env);
    assert!(
        c.server_capabilities().iter().any(|x| x == XPATH_CAP),
        "{:?}",
        c.server_capabilities()
    );
}

#[test]
fn xpath_selects_with_prefixes_declared_on_the_filter() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);

    // One leaf: its ancestors come along, nothing else.
    let d = xpath_get_config(&mut c, "/x:system/x:hostname").data();
    assert_eq!(d.get("system/hostname").as_deref(), Some("alpha"));
    assert!(d.find("system/mtu").is_none(), "{}", d.canon());
    assert!(d.find("servers").is_none(), "{}", d.canon());
    assert_eq!(
        d.find("system").and_then(|s| s.ns.clone()).as_deref(),
        Some(TEST_NS)
    );

    // A list entry by key predicate: the whole entry, keys included.
    let d = xpath_get_config(&mut c, "/x:servers/x:server[x:name='b']").data();
    assert_eq!(d.values("servers/server/name"), ["b"], "{}", d.canon());
    assert_eq!(
        d.server("b").and_then(|s| s.get("backup")).as_deref(),
        Some("a")
    );

    // A leaf inside list entries: the keys come with it.
    let d = xpath_get_config(&mut c, "/x:servers/x:server/x:port").data();
    assert_eq!(d.values("servers/server/name"), ["a", "b"], "{}", d.canon());
    assert_eq!(d.values("servers/server/port"), ["80", "81"]);
    assert!(d.find("servers/server/address").is_none(), "{}", d.canon());

    // Union, descendant axis, functions.
    let d = xpath_get_config(
        &mut c,
        "/x:system/x:mtu | //x:server[x:port &gt; 80]/x:address",
    )
    .data();
    assert_eq!(
        d.get("system/mtu").as_deref(),
        Some("1400"),
        "{}",
        d.canon()
    );
    assert_eq!(d.values("servers/server/name"), ["b"], "{}", d.canon());
    assert_eq!(d.values("servers/server/address"), ["10.0.0.11"]);
    let d = xpath_get_config(&mut c, "/x:system/x:dns[starts-with(., '10.0.0.2')]").data();
    assert_eq!(d.values("system/dns"), ["10.0.0.2"], "{}", d.canon());

    // Nothing matches: empty <data>.
    let d = xpath_get_config(&mut c, "/x:servers/x:server[x:name='zz']").data();
    assert!(d.is_empty(), "{}", d.canon());
}

#[test]
fn xpath_prefixes_from_ancestors_and_any_prefix_name() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    // The prefix is declared on <rpc>, not on <filter>, and is not the
    // module's own prefix (wt).
    let r = c.raw_rpc(&format!(
        "<rpc xmlns=\"{NC_NS}\" xmlns:zz=\"{TEST_NS}\" message-id=\"9\"><get><filter type=\"xpath\" select=\"/zz:system/zz:dns\"/></get></rpc>"
    ));
    let d = r.data();
    assert_eq!(
        d.values("system/dns"),
        ["10.0.0.1", "10.0.0.2"],
        "{}",
        r.text
    );
    assert!(d.find("system/hostname").is_none());
    // A prefixed NETCONF envelope (nc:filter, nc:select is not the form;
    // select stays unqualified) with the data prefix on the filter.
    let r = c.raw_rpc(&format!(
        "<nc:rpc xmlns:nc=\"{NC_NS}\" message-id=\"10\"><nc:get-config><nc:source><nc:running/></nc:source><nc:filter type=\"xpath\" xmlns:t=\"{TEST_NS}\" select=\"/t:servers/t:server[t:name=&quot;a&quot;]/t:tag\"/></nc:get-config></nc:rpc>"
    ));
    let d = r.data();
    assert_eq!(d.values("servers/server/tag"), ["x", "y"], "{}", r.text);
    assert_eq!(d.values("servers/server/name"), ["a"]);
}

#[test]
fn xpath_on_get_reaches_state_data() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    let r = c.rpc(&format!(
        "<get><filter type=\"xpath\" xmlns:m=\"{NCM_NS}\" select=\"/m:netconf-state/m:sessions/m:session[m:session-id={}]/m:username\"/></get>",
        c.session_id
    ));
    let d = r.data();
    assert_eq!(
        d.values("netconf-state/sessions/session/username"),
        ["alice"],
        "{}",
        r.text
    );
    assert!(d.find("system").is_none());
    // with-defaults applies to an XPath selection too.
    c.edit(
        "running",
        &system(
            "<mtu nc:operation=\"delete\" xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"/>",
        ),
    )
    .assert_ok();
    let d = c
        .rpc(&format!(
            "<get-config><source><running/></source><filter type=\"xpath\" xmlns:x=\"{TEST_NS}\" select=\"/x:system/x:mtu\"/><with-defaults xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults\">report-all</with-defaults></get-config>"
        ))
        .data();
    assert_eq!(
        d.get("system/mtu").as_deref(),
        Some("1500"),
        "{}",
        d.canon()
    );
    let d = xpath_get_config(&mut c, "/x:system/x:mtu").data();
    assert!(d.is_empty(), "{}", d.canon());
}

#[test]
fn xpath_errors() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    seed(&mut c);
    // An undeclared prefix.
    let e = c
        .rpc("<get-config><source><running/></source><filter type=\"xpath\" select=\"/q:system\"/></get-config>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-attribute"), Some("select"), "{e:?}");
    assert_eq!(e.info("bad-element"), Some("filter"), "{e:?}");
    // On get as well, with the prefix declared for another name.
    let e = c
        .rpc(&format!(
            "<get><filter type=\"xpath\" xmlns:x=\"{TEST_NS}\" select=\"/x:system/y:mtu\"/></get>"
        ))
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-attribute"), Some("select"), "{e:?}");
    // Not an expression.
    let e = xpath_get_config(&mut c, "/x:system[").expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-attribute"), Some("select"), "{e:?}");
    // Not a node set.
    let e = xpath_get_config(&mut c, "count(/x:servers/x:server)")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-attribute"), Some("select"), "{e:?}");
    // No select at all.
    let e = c
        .rpc("<get><filter type=\"xpath\"/></get>")
        .expect_error("protocol", "missing-attribute");
    assert_eq!(e.info("bad-attribute"), Some("select"), "{e:?}");
    // A namespace no module of this server implements: nothing selected.
    let d = c
        .rpc("<get><filter type=\"xpath\" xmlns:o=\"urn:other\" select=\"/o:thing\"/></get>")
        .data();
    assert!(d.is_empty(), "{}", d.canon());
    // The session goes on.
    assert_eq!(
        xpath_get_config(&mut c, "/x:system/x:hostname")
            .data()
            .get("system/hostname")
            .as_deref(),
        Some("alpha")
    );
}

const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";

/// Two WireGuard instances of the tunnel module (stored only: the test
/// agents run no WireGuard plugin), in the order given.
fn tunnels(first: u16, second: u16) -> String {
    let wg = |i: u16| {
        format!(
            "<wireguard><instance>{i}</instance><description>wg {i}</description>\
             <listen-port>{}</listen-port></wireguard>",
            51820 + i
        )
    };
    format!(
        "<tunnel xmlns=\"{TUNNEL_NS}\">{}{}</tunnel>",
        wg(first),
        wg(second)
    )
}

/// The bytes inside `<data>...</data>` of a reply.
fn data_bytes(r: &Reply) -> String {
    let start = r.text.find("<data>").map(|i| i + "<data>".len());
    let end = r.text.rfind("</data>");
    match (start, end) {
        (Some(s), Some(e)) if s <= e => r.text[s..e].to_string(),
        _ => {
            assert!(r.text.contains("<data/>"), "no <data> in {}", r.text);
            String::new()
        }
    }
}

fn running_bytes(c: &mut Client) -> String {
    data_bytes(&c.rpc("<get-config><source><running/></source></get-config>"))
}

#[test]
fn get_config_output_is_deterministic() {
    // The same configuration built in two different orders, on two agents:
    // leaf-list values, list entries, top-level containers and leaves all
    // arrive in another order; get-config must print the same bytes.
    let env1 = Env::new();
    let agent1 = env1.start();
    let mut c1 = agent1.session(&env1);
    c1.edit(
        "running",
        &system("<hostname>alpha</hostname><dns>10.0.0.1</dns><dns>10.0.0.2</dns>"),
    )
    .assert_ok();
    c1.edit("running", &system("<mtu>1400</mtu>")).assert_ok();
    c1.edit(
        "running",
        &servers(&server(
            "a",
            "10.0.0.10",
            "<port>80</port><tag>x</tag><tag>y</tag>",
        )),
    )
    .assert_ok();
    c1.edit(
        "running",
        &servers(&server(
            "b",
            "10.0.0.11",
            "<port>81</port><backup>a</backup>",
        )),
    )
    .assert_ok();
    c1.edit("running", &tunnels(1, 2)).assert_ok();

    let env2 = Env::new();
    let agent2 = env2.start();
    let mut c2 = agent2.session(&env2);
    c2.edit("candidate", &tunnels(2, 1)).assert_ok();
    c2.edit(
        "candidate",
        &servers(&format!(
            "{}{}",
            server("b", "10.0.0.11", "<backup>a</backup><port>81</port>"),
            server("a", "10.0.0.10", "<tag>y</tag><tag>x</tag><port>80</port>")
        )),
    )
    .assert_ok();
    c2.edit(
        "candidate",
        &system("<dns>10.0.0.2</dns><mtu>1400</mtu><dns>10.0.0.1</dns>"),
    )
    .assert_ok();
    c2.edit("candidate", &system("<hostname>alpha</hostname>"))
        .assert_ok();
    c2.commit().assert_ok();

    let b1 = running_bytes(&mut c1);
    let b2 = running_bytes(&mut c2);
    assert!(
        b1.contains("alpha") && b1.contains("10.0.0.11") && b1.contains("wg 2"),
        "{b1}"
    );
    assert_eq!(b1, b2, "same data, different bytes");
    // Reading again, and reading the candidate (same data), gives the same.
    assert_eq!(running_bytes(&mut c1), b1);
    assert_eq!(
        data_bytes(&c2.rpc("<get-config><source><candidate/></source></get-config>")),
        b1
    );
    // A delete and re-create of an entry changes nothing either.
    c1.rpc(&edit_config(
        "running",
        "",
        &servers("<server xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:operation=\"delete\"><name>b</name></server>"),
    ))
    .assert_ok();
    c1.edit(
        "running",
        &servers(&server(
            "b",
            "10.0.0.11",
            "<port>81</port><backup>a</backup>",
        )),
    )
    .assert_ok();
    assert_eq!(running_bytes(&mut c1), b1);
    // And a restart (running reloaded from its file) prints it the same.
    drop(c1);
    agent1.terminate();
    let agent1 = env1.start();
    let mut c1 = agent1.session(&env1);
    assert_eq!(running_bytes(&mut c1), b1);
}
