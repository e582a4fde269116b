//! RFC 6022 ietf-netconf-monitoring (`/netconf-state`, `<get-schema>`) and
//! the RFC 8525 YANG library (with the RFC 7895 `modules-state` view and
//! the yang-library:1.1 capability), as a client sees them.

#[path = "common/netconf.rs"]
mod netconf;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use netconf::*;

const NCM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
const YL_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-yang-library";
const DS_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";
const TUNNEL_FILE: &str = "yang/wgnetconf-tunnel@2026-12-05.yang";

fn netconf_state(c: &mut Client) -> Node {
    let d = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><netconf-state xmlns=\"{NCM_NS}\"/></filter></get>"
        ))
        .data();
    d.child("netconf-state")
        .unwrap_or_else(|| panic!("no netconf-state in {}", d.canon()))
        .clone()
}

fn is_date_and_time(s: &str) -> bool {
    // 2026-11-25T17:00:00Z
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
}

/// The local name of an identityref value (`ncm:yang` or `yang`).
fn ident(s: &str) -> &str {
    s.rsplit(':').next().unwrap_or(s)
}

fn stat(state: &Node, name: &str) -> u64 {
    state
        .get(&format!("statistics/{name}"))
        .unwrap_or_else(|| panic!("no statistics/{name}"))
        .parse()
        .expect("counter")
}

fn session_entry(state: &Node, id: u32) -> Node {
    state
        .find_all("sessions/session")
        .into_iter()
        .find(|s| s.get("session-id") == Some(id.to_string()))
        .unwrap_or_else(|| panic!("no session {id} in {}", state.canon()))
        .clone()
}

fn counter(s: &Node, name: &str) -> u64 {
    s.get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .expect("counter")
}

/// (identifier, version) of every yang-format schema the server lists.
fn listed_schemas(state: &Node) -> BTreeSet<(String, String)> {
    state
        .find_all("schemas/schema")
        .into_iter()
        .filter(|s| s.get("format").as_deref().map(ident) == Some("yang"))
        .map(|s| {
            (
                s.get("identifier").unwrap_or_default(),
                s.get("version").unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn hello_announces_monitoring_and_yang_library() {
    let env = Env::new();
    let agent = env.start();
    let c = agent.session(&env);
    let caps = c.server_capabilities();
    assert!(
        caps.iter()
            .any(|x| x == &format!("{NCM_NS}?module=ietf-netconf-monitoring&revision=2010-10-04")),
        "{caps:?}"
    );
    let yl: Vec<&String> = caps
        .iter()
        .filter(|x| x.starts_with("urn:ietf:params:netconf:capability:yang-library:"))
        .collect();
    assert_eq!(yl.len(), 1, "{caps:?}");
    let (base, query) = yl[0].split_once('?').expect("parameters");
    assert_eq!(base, "urn:ietf:params:netconf:capability:yang-library:1.1");
    let params: Vec<&str> = query.split('&').collect();
    assert!(params.contains(&"revision=2019-01-04"), "{query}");
    assert!(
        params
            .iter()
            .any(|p| p.strip_prefix("content-id=").is_some_and(|v| !v.is_empty())),
        "{query}"
    );
}

#[test]
fn netconf_state_capabilities_datastores_and_locks() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let state = netconf_state(&mut c);
    // The same capabilities as the hello.
    let listed: BTreeSet<String> = state
        .values("capabilities/capability")
        .into_iter()
        .collect();
    let hello: BTreeSet<String> = c.server_capabilities().into_iter().collect();
    assert_eq!(listed, hello);

    let names: Vec<String> = state.values("datastores/datastore/name");
    assert_eq!(names, ["running", "candidate", "startup"]);
    assert!(state.find("datastores/datastore/locks").is_none());

    // A lock shows its holder and when it was taken.
    c.lock("candidate").assert_ok();
    let mut other = agent.session(&env);
    let state = netconf_state(&mut other);
    let cand = state
        .find_all("datastores/datastore")
        .into_iter()
        .find(|d| d.get("name").as_deref() == Some("candidate"))
        .expect("candidate")
        .clone();
    assert_eq!(
        cand.get("locks/global-lock/locked-by-session"),
        Some(c.session_id.to_string()),
        "{}",
        state.canon()
    );
    let t = cand
        .get("locks/global-lock/locked-time")
        .expect("locked-time");
    assert!(is_date_and_time(&t), "{t}");
    c.unlock("candidate").assert_ok();
    let state = netconf_state(&mut other);
    assert!(state.find("datastores/datastore/locks").is_none());
}

#[test]
fn netconf_state_schemas_list_every_module() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let state = netconf_state(&mut c);
    let listed = listed_schemas(&state);
    // Every module the hello announces is listed with its revision.
    for cap in c.server_capabilities() {
        let Some((ns, query)) = cap.split_once("?module=") else {
            continue;
        };
        let (name, rev) = match query.split_once("&revision=") {
            Some((n, r)) => (n.to_string(), r.to_string()),
            None => (query.to_string(), String::new()),
        };
        assert!(
            listed.contains(&(name.clone(), rev.clone())),
            "{name}@{rev} missing from {listed:?}"
        );
        let entry = state
            .find_all("schemas/schema")
            .into_iter()
            .find(|s| s.get("identifier") == Some(name.clone()))
            .expect("entry")
            .clone();
        assert_eq!(entry.get("namespace").as_deref(), Some(ns));
        assert_eq!(entry.get("location").as_deref(), Some("NETCONF"));
    }
    // Imported modules are served as well.
    assert!(
        listed.iter().any(|(n, _)| n == "ietf-yang-types"),
        "{listed:?}"
    );
}

#[test]
fn netconf_state_sessions_and_statistics() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    // Counted: two good rpcs, one error reply, one malformed message.
    c.get_config("running");
    c.rpc("<get-config><source><nowhere/></source></get-config>")
        .expect_error("protocol", "invalid-value");
    let r = c.raw_rpc("<rpc><not-closed></rpc>");
    assert!(r.text.contains("rpc-error"), "{}", r.text);
    c.rpc("<get-config><source><running/></source></get-config>");

    // A bad hello, a dropped session.
    let mut bad = agent.ssh2(&env);
    bad.read_server_hello();
    bad.send(&format!("<hello xmlns=\"{NC_NS}\"><capabilities><capability>urn:x</capability></capabilities></hello>"));
    bad.expect_closed();
    let dropped = agent.session(&env);
    let dropped_id = dropped.session_id;
    dropped.abort();

    let mut watcher = agent.session(&env);
    // Wait (bounded) for the dropped session to be gone.
    let deadline = std::time::Instant::now() + WAIT;
    let state = loop {
        let s = netconf_state(&mut watcher);
        let gone = !s
            .find_all("sessions/session")
            .iter()
            .any(|x| x.get("session-id") == Some(dropped_id.to_string()));
        if gone {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "session stays listed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };

    let me = session_entry(&state, c.session_id);
    assert_eq!(
        me.get("transport").as_deref().map(ident),
        Some("netconf-ssh")
    );
    assert_eq!(me.get("username").as_deref(), Some("alice"));
    assert_eq!(me.get("source-host").as_deref(), Some("127.0.0.1"));
    assert!(is_date_and_time(&me.get("login-time").unwrap_or_default()));
    assert_eq!(counter(&me, "in-rpcs"), 3, "{}", me.canon());
    assert_eq!(counter(&me, "in-bad-rpcs"), 1, "{}", me.canon());
    assert_eq!(counter(&me, "out-rpc-errors"), 2, "{}", me.canon());
    assert_eq!(counter(&me, "out-notifications"), 0);
    let w = session_entry(&state, watcher.session_id);
    assert!(counter(&w, "in-rpcs") >= 1);

    assert!(is_date_and_time(
        &state
            .get("statistics/netconf-start-time")
            .unwrap_or_default()
    ));
    assert_eq!(stat(&state, "in-bad-hellos"), 1, "{}", state.canon());
    // c, bad, dropped, watcher.
    assert_eq!(stat(&state, "in-sessions"), 4, "{}", state.canon());
    assert_eq!(stat(&state, "dropped-sessions"), 1, "{}", state.canon());
    assert!(stat(&state, "in-rpcs") >= 4);
    assert_eq!(stat(&state, "in-bad-rpcs"), 1);
    assert_eq!(stat(&state, "out-rpc-errors"), 2);

    // close-session is no drop.
    c.close();
    let state = netconf_state(&mut watcher);
    assert_eq!(stat(&state, "dropped-sessions"), 1, "{}", state.canon());
}

fn get_schema(c: &mut Client, params: &str) -> Reply {
    c.rpc(&format!(
        "<get-schema xmlns=\"{NCM_NS}\">{params}</get-schema>"
    ))
}

fn schema_text(r: &Reply) -> String {
    let data = r
        .root
        .child("data")
        .unwrap_or_else(|| panic!("no <data> in {}", r.text));
    // RFC 6022 §3.1: <data> of get-schema is in the monitoring namespace.
    assert_eq!(data.ns.as_deref(), Some(NCM_NS), "{}", r.text);
    data.text.clone()
}

/// pyang from the conformance venv or the PATH.
fn pyang() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/.venv/bin/pyang");
    if venv.is_file() {
        return Some(venv);
    }
    let ok = Command::new("pyang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| PathBuf::from("pyang"))
}

/// Parses a module text with pyang (and yanglint), imports from the IETF
/// directory; panics with their output when they refuse it.
fn assert_parses(name: &str, text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{name}.yang"));
    std::fs::write(&file, text).expect("write module");
    let mut parsers: Vec<Command> = Vec::new();
    match pyang() {
        Some(p) => {
            let mut cmd = Command::new(p);
            cmd.args(["--path", "/usr/share/yuma/modules/ietf"])
                .arg(&file);
            parsers.push(cmd);
        }
        None => eprintln!("pyang not found: the conformance suite checks get-schema with it"),
    }
    let mut cmd = Command::new("yanglint");
    cmd.args(["-p", "/usr/share/yuma/modules/ietf"]).arg(&file);
    parsers.push(cmd);
    for mut cmd in parsers {
        let out = cmd.output().expect("run the YANG parser");
        assert!(
            out.status.success(),
            "{cmd:?} refused {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn get_schema_returns_module_text_that_pyang_parses() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let file = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(TUNNEL_FILE))
        .expect("module file");

    let text = schema_text(&get_schema(
        &mut c,
        "<identifier>wgnetconf-tunnel</identifier>",
    ));
    assert_eq!(text, file, "get-schema returns the module as written");
    assert_parses("wgnetconf-tunnel", &text);

    // With version and format (identity with and without prefix).
    let r = get_schema(
        &mut c,
        "<identifier>wgnetconf-tunnel</identifier><version>2026-12-05</version><format>yang</format>",
    );
    assert_eq!(schema_text(&r), file);
    let r = c.rpc(&format!(
        "<get-schema xmlns=\"{NCM_NS}\" xmlns:ncm=\"{NCM_NS}\"><identifier>wgnetconf-tunnel</identifier><format>ncm:yang</format></get-schema>"
    ));
    assert_eq!(schema_text(&r), file);

    // Every module listed in /netconf-state/schemas can be fetched and
    // parses (libyang's internal ones are printed from the parsed module).
    let state = netconf_state(&mut c);
    for (name, version) in listed_schemas(&state) {
        let r = get_schema(
            &mut c,
            &format!("<identifier>{name}</identifier><version>{version}</version>"),
        );
        let text = schema_text(&r);
        assert!(text.contains(&format!("module {name}")), "{name}: {text}");
        if name.starts_with("ietf-") || name.starts_with("wgnetconf-") {
            assert_parses(&name, &text);
        }
    }

    // YIN is offered too.
    let r = get_schema(
        &mut c,
        "<identifier>wgnetconf-tunnel</identifier><format>yin</format>",
    );
    let yin = schema_text(&r);
    let root = Node::parse(&yin);
    assert!(
        root.is("urn:ietf:params:xml:ns:yang:yin:1", "module"),
        "{yin}"
    );
    assert_eq!(root.attr("name"), Some("wgnetconf-tunnel"));
}

#[test]
fn get_schema_errors() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let e = get_schema(&mut c, "<identifier>no-such-module</identifier>")
        .expect_error("application", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("identifier"));
    let e = get_schema(
        &mut c,
        "<identifier>wgnetconf-tunnel</identifier><version>1999-01-01</version>",
    )
    .expect_error("application", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("identifier"));
    let e = get_schema(&mut c, "<version>2026-11-25</version>")
        .expect_error("protocol", "missing-element");
    assert_eq!(e.info("bad-element"), Some("identifier"));
    let e = get_schema(
        &mut c,
        "<identifier>wgnetconf-tunnel</identifier><format>xsd</format>",
    )
    .expect_error("protocol", "invalid-value");
    assert_eq!(e.info("bad-element"), Some("format"));
    let e = get_schema(&mut c, "<identifier>wgnetconf-tunnel</identifier><frob/>")
        .expect_error("protocol", "unknown-element");
    assert_eq!(e.info("bad-element"), Some("frob"));
}

fn yang_library(c: &mut Client) -> Node {
    c.rpc(&format!(
        "<get><filter type=\"subtree\"><yang-library xmlns=\"{YL_NS}\"/><modules-state xmlns=\"{YL_NS}\"/></filter></get>"
    ))
    .data()
}

#[test]
fn yang_library_lists_every_loaded_module_with_its_revision() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let data = yang_library(&mut c);
    let lib = data
        .child("yang-library")
        .unwrap_or_else(|| panic!("no yang-library in {}", data.canon()));
    let set = lib
        .find_all("module-set")
        .into_iter()
        .find(|s| s.get("name").as_deref() == Some("complete"))
        .expect("module-set complete");
    let implemented: BTreeSet<(String, String)> = set
        .children_named("module")
        .map(|m| {
            (
                m.get("name").unwrap_or_default(),
                m.get("revision").unwrap_or_default(),
            )
        })
        .collect();
    let imported: BTreeSet<(String, String)> = set
        .children_named("import-only-module")
        .map(|m| {
            (
                m.get("name").unwrap_or_default(),
                m.get("revision").unwrap_or_default(),
            )
        })
        .collect();
    // Every module capability of the hello is an implemented module here.
    for cap in c.server_capabilities() {
        let Some((_, query)) = cap.split_once("?module=") else {
            continue;
        };
        let (name, rev) = query.split_once("&revision=").expect("revision");
        assert!(
            implemented.contains(&(name.to_string(), rev.to_string())),
            "{name}@{rev} not in {implemented:?}"
        );
    }
    for (name, rev) in [
        ("wgnetconf-test", "2026-11-25"),
        ("wgnetconf-tunnel", "2026-12-05"),
        ("ietf-netconf", "2011-06-01"),
        ("ietf-netconf-monitoring", "2010-10-04"),
        ("ietf-netconf-with-defaults", "2011-06-01"),
        ("ietf-yang-library", "2019-01-04"),
    ] {
        assert!(
            implemented.contains(&(name.to_string(), rev.to_string())),
            "{name}@{rev} not in {implemented:?}"
        );
    }
    // Implemented plus import-only is exactly what monitoring serves.
    let all: BTreeSet<(String, String)> = implemented.union(&imported).cloned().collect();
    let state = netconf_state(&mut c);
    assert_eq!(all, listed_schemas(&state));

    // Datastores, each with the complete schema.
    let ds: Vec<(String, String)> = lib
        .children_named("datastore")
        .map(|d| {
            let name = d.child("name").expect("name");
            let text = name.text();
            let (p, local) = text.split_once(':').expect("prefixed identity");
            let ns = name
                .scope
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, u)| u.clone());
            assert_eq!(ns.as_deref(), Some(DS_NS), "{text}");
            (local.to_string(), d.get("schema").unwrap_or_default())
        })
        .collect();
    assert_eq!(
        ds,
        [
            ("running".to_string(), "complete".to_string()),
            ("candidate".to_string(), "complete".to_string()),
            ("startup".to_string(), "complete".to_string()),
            ("intended".to_string(), "complete".to_string()),
            ("operational".to_string(), "complete".to_string())
        ]
    );
    // content-id is the capability's.
    let cap = c
        .server_capabilities()
        .into_iter()
        .find(|x| x.contains("yang-library:1.1"))
        .expect("capability");
    let id = cap.split("content-id=").nth(1).expect("content-id");
    assert_eq!(lib.get("content-id").as_deref(), Some(id));

    // RFC 7895 view for older clients: every module with its revision and
    // the same id.
    let old = data.child("modules-state").expect("modules-state");
    assert_eq!(old.get("module-set-id").as_deref(), Some(id));
    let listed: BTreeSet<(String, String)> = old
        .children_named("module")
        .map(|m| {
            (
                m.get("name").unwrap_or_default(),
                m.get("revision").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(listed, all);
    let ncm = old
        .children_named("module")
        .find(|m| m.get("name").as_deref() == Some("ietf-netconf-monitoring"))
        .expect("monitoring");
    assert_eq!(ncm.get("namespace").as_deref(), Some(NCM_NS));
    assert_eq!(ncm.get("conformance-type").as_deref(), Some("implement"));
}

#[test]
fn out_notifications_counts_what_a_subscriber_received() {
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.rpc("<create-subscription xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"/>")
        .assert_ok();
    let mut other = agent.session(&env);
    other
        .edit("running", &system("<hostname>beta</hostname>"))
        .assert_ok();
    let n = c.recv();
    assert!(n.contains("<notification"), "{n}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let state = netconf_state(&mut other);
        let sub = session_entry(&state, c.session_id);
        if counter(&sub, "out-notifications") >= 1 {
            assert!(stat(&state, "out-notifications") >= 1);
            assert_eq!(
                counter(
                    &session_entry(&state, other.session_id),
                    "out-notifications"
                ),
                0
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "out-notifications stays 0: {}",
            state.canon()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn operational_datastore_holds_the_yang_library_and_netconf_state() {
    // RFC 8342 §5.3 / RFC 8525: NMDA clients read the YANG library from
    // <operational> with get-data.
    let env = Env::new();
    let agent = env.start();
    let mut c = agent.session(&env);
    let r = c.rpc(&format!(
        "<get-data xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-nmda\" xmlns:ds=\"{DS_NS}\">\
         <datastore>ds:operational</datastore><subtree-filter><yang-library xmlns=\"{YL_NS}\"/>\
         <netconf-state xmlns=\"{NCM_NS}\"><sessions/></netconf-state></subtree-filter></get-data>"
    ));
    let data = r
        .root
        .child("data")
        .unwrap_or_else(|| panic!("no data in {}", r.text));
    let names = data.values("yang-library/module-set/module/name");
    assert!(names.iter().any(|n| n == "wgnetconf-test"), "{}", r.text);
    assert!(
        data.values("netconf-state/sessions/session/session-id")
            .contains(&c.session_id.to_string()),
        "{}",
        r.text
    );
}
