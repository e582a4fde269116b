//! NMDA (RFC 8342, RFC 8526) against the real agent: get-data on every
//! datastore (operational with the WireGuard plugin's state, memory
//! backend), config-filter, max-depth, subtree filter, edit-data on
//! running and candidate, and the rpc-errors.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const NMDA_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda";
const DS_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";
const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";

fn start_with_wireguard(env: &Env) -> Agent {
    let path = env.config();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[wireguard]\nenabled = false\n",
        "[wireguard]\nenabled = true\nbackend = \"memory\"\n",
    );
    std::fs::write(&path, text).unwrap();
    Agent::start(&path)
}

fn get_data(c: &mut Client, ds: &str, extra: &str) -> Reply {
    c.rpc(&format!(
        "<get-data xmlns=\"{NMDA_NS}\" xmlns:ds=\"{DS_NS}\"><datastore>ds:{ds}</datastore>{extra}</get-data>"
    ))
}

/// The reply's NMDA `<data>`.
#[track_caller]
fn data(r: &Reply) -> Node {
    let d = r
        .root
        .child("data")
        .unwrap_or_else(|| panic!("no data in {}", r.text))
        .clone();
    assert_eq!(d.ns.as_deref(), Some(NMDA_NS), "{}", r.text);
    d
}

fn edit_data(c: &mut Client, ds: &str, config: &str) -> Reply {
    c.rpc(&format!(
        "<edit-data xmlns=\"{NMDA_NS}\" xmlns:ds=\"{DS_NS}\"><datastore>ds:{ds}</datastore><config>{config}</config></edit-data>"
    ))
}

#[test]
fn capability_and_conventional_datastores() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    assert!(c
        .server_capabilities()
        .iter()
        .any(|x| x.contains("module=ietf-netconf-nmda")));

    edit_data(&mut c, "running", &system("<hostname>run</hostname>")).assert_ok();
    edit_data(&mut c, "candidate", &system("<hostname>cand</hostname>")).assert_ok();
    for (ds, want) in [
        ("running", Some("run")),
        ("intended", Some("run")),
        ("operational", Some("run")),
        ("candidate", Some("cand")),
        ("startup", None),
    ] {
        let r = get_data(&mut c, ds, "");
        assert_eq!(data(&r).get("system/hostname").as_deref(), want, "{ds}");
    }
    c.commit().assert_ok();
    c.copy("running", "startup").assert_ok();
    let r = get_data(&mut c, "startup", "");
    assert_eq!(data(&r).get("system/hostname").as_deref(), Some("cand"));

    // Subtree filter.
    edit_data(
        &mut c,
        "running",
        &servers(&format!(
            "{}{}",
            server("a", "10.0.0.1", "<port>81</port>"),
            server("b", "10.0.0.2", "<port>82</port>")
        )),
    )
    .assert_ok();
    let r = get_data(
        &mut c,
        "running",
        &format!("<subtree-filter><servers xmlns=\"{TEST_NS}\"><server><name>b</name></server></servers></subtree-filter>"),
    );
    let d = data(&r);
    assert!(
        d.server("b").is_some() && d.server("a").is_none(),
        "{}",
        r.text
    );
    assert!(d.get("system/hostname").is_none());

    // max-depth 2: list entries with their keys, nothing deeper.
    let r = get_data(&mut c, "running", "<max-depth>2</max-depth>");
    let d = data(&r);
    assert_eq!(d.values("servers/server/name"), ["a", "b"], "{}", r.text);
    assert!(d.find("servers/server/address").is_none(), "{}", r.text);

    // edit-data default-operation replace.
    c.rpc(&format!(
        "<edit-data xmlns=\"{NMDA_NS}\" xmlns:ds=\"{DS_NS}\"><datastore>ds:running</datastore><default-operation>replace</default-operation><config>{}</config></edit-data>",
        system("<hostname>only</hostname>")
    ))
    .assert_ok();
    let d = c.get_config("running");
    assert!(d.find("servers/server").is_none());
    assert_eq!(d.get("system/hostname").as_deref(), Some("only"));
}

#[test]
fn errors() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let e = get_data(&mut c, "nowhere", "").expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("datastore"));
    let e = c
        .rpc(&format!("<get-data xmlns=\"{NMDA_NS}\"/>"))
        .expect_error("protocol", "missing-element");
    assert_eq!(e.info("bad-element"), Some("datastore"));
    let e = edit_data(&mut c, "operational", &system("")).expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("datastore"));
    let e = get_data(&mut c, "running", "<frob/>").expect_error("protocol", "unknown-element");
    assert_eq!(e.info("bad-element"), Some("frob"));
    let e = get_data(&mut c, "running", "<max-depth>0</max-depth>")
        .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("max-depth"));
    // Validation errors come from the edit-config engine.
    let r = edit_data(
        &mut c,
        "running",
        &servers(&server("s", "10.0.0.1", "<weight>200</weight>")),
    );
    assert!(!r.is_ok());
}

#[test]
fn operational_has_the_plugin_state() {
    let env = Env::new();
    let agent = start_with_wireguard(&env);
    let mut c = agent.session(&env);
    edit_data(
        &mut c,
        "running",
        &format!("<tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>3</instance><listen-port>51999</listen-port></wireguard></tunnel>"),
    )
    .assert_ok();
    let r = get_data(&mut c, "operational", "");
    let d = data(&r);
    assert!(d.get("tunnel/wireguard/public-key").is_some(), "{}", r.text);
    assert!(
        d.get("tunnel/wireguard/oper-status").is_some(),
        "{}",
        r.text
    );
    // running has no state.
    let r = get_data(&mut c, "running", "");
    assert!(data(&r).get("tunnel/wireguard/oper-status").is_none());
    // config-filter false: state nodes with their keys only.
    let r = get_data(
        &mut c,
        "operational",
        "<config-filter>false</config-filter>",
    );
    let d = data(&r);
    assert!(
        d.get("tunnel/wireguard/oper-status").is_some(),
        "{}",
        r.text
    );
    assert_eq!(d.get("tunnel/wireguard/instance").as_deref(), Some("3"));
    assert!(
        d.get("tunnel/wireguard/listen-port").is_none(),
        "{}",
        r.text
    );
    // config-filter true: no state.
    let r = get_data(&mut c, "operational", "<config-filter>true</config-filter>");
    let d = data(&r);
    assert!(
        d.get("tunnel/wireguard/oper-status").is_none(),
        "{}",
        r.text
    );
    assert_eq!(
        d.get("tunnel/wireguard/listen-port").as_deref(),
        Some("51999")
    );
}
