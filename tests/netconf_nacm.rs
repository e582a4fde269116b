//! Access control (RFC 8341) with real sessions on the WireGuard model
//! (plugin off): an operator without rules reads tunnels but no key and
//! writes nothing; a per-interface writer edits its interface only and
//! does not read its key; a commit needs the committer's access to every
//! change; denied notifications are not sent; root on the local socket
//! (the recovery session) bypasses it; `enable-nacm false` turns it off; a
//! state directory from before access control keeps its users working.

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

const TUN: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
const NACM: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm";
const NOTIF: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
const K1: &str = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const K2: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
const K3: &str = "KCm4ZjBbz6dGPpEPPsw9DWQJ+ZslLpPyjGYYnIdlgEQ=";
const K4: &str = "wG8ytdrTm3P6ECG7cSmbJU7jIWgwbCtPHjMRf/IeXFs=";
/// A peer's public key (readable by all).
const K5: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn env() -> Env {
    let mut e = Env::new();
    e.yang_dirs = Vec::new();
    e.users = vec![
        ("alice".into(), vec!["admin".into()]),
        ("oper".into(), vec!["monitor".into()]),
        ("writer".into(), vec!["wg1-writers".into()]),
    ];
    e.unix = true;
    e
}

fn tunnels() -> String {
    format!(
        "<tunnel xmlns=\"{TUN}\">\
         <wireguard><instance>1</instance><description>one</description>\
         <private-key>{K1}</private-key><listen-port>51820</listen-port>\
         <peer><instance>1</instance><description>p1</description>\
         <public-key>{K2}</public-key><preshared-key>{K3}</preshared-key></peer>\
         </wireguard>\
         <wireguard><instance>2</instance><description>two</description>\
         <private-key>{K4}</private-key><listen-port>51821</listen-port></wireguard>\
         </tunnel>"
    )
}

/// The README's per-interface writer: the key leaves denied first (a
/// permit on the interface would otherwise override default-deny-all),
/// then the interface permitted.
fn writer_rules() -> String {
    let wg1 = "/wgt:tunnel/wgt:wireguard[wgt:instance='1']";
    let rule = |name: &str, path: &str, action: &str| {
        format!(
            "<rule><name>{name}</name><module-name>wgnetconf-tunnel</module-name>\
             <path xmlns:wgt=\"{TUN}\">{path}</path>\
             <access-operations>*</access-operations><action>{action}</action></rule>"
        )
    };
    format!(
        "<nacm xmlns=\"{NACM}\"><rule-list><name>wg1-writers</name><group>wg1-writers</group>{}{}{}</rule-list></nacm>",
        rule("no-private-key", &format!("{wg1}/wgt:private-key"), "deny"),
        rule("no-preshared-key", &format!("{wg1}/wgt:peer/wgt:preshared-key"), "deny"),
        rule("wg1", wg1, "permit"),
    )
}

fn setup() -> (Env, Agent) {
    let env = env();
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit("running", &tunnels()).assert_ok();
    c.edit("running", &writer_rules()).assert_ok();
    (env, agent)
}

fn has_key(d: &Node) -> bool {
    let text = d.canon();
    [K1, K3, K4].iter().any(|k| text.contains(k))
}

#[test]
fn an_operator_reads_tunnels_without_keys_and_writes_nothing() {
    let (env, agent) = setup();
    let mut admin = agent.session(&env);
    assert!(
        has_key(&admin.get_config("running")),
        "the admin reads keys"
    );
    let mut op = agent.session_as(&env, "oper");
    let d = op.get_config("running");
    assert!(!has_key(&d), "{}", d.canon());
    assert_eq!(
        d.values("tunnel/wireguard/description"),
        vec!["one".to_string(), "two".to_string()]
    );
    assert_eq!(
        d.get("tunnel/wireguard/peer/public-key").as_deref(),
        Some(K2)
    );
    // <get> and get-data too.
    let g = op.rpc("<get/>").data();
    assert!(!has_key(&g), "{}", g.canon());
    assert!(g.find("nacm").is_none(), "/nacm is default-deny-all");
    // A content match on a key must not tell whether the guess is right.
    let guess = format!(
        "<tunnel xmlns=\"{TUN}\"><wireguard><private-key>{K1}</private-key></wireguard></tunnel>"
    );
    assert!(op.get_config_filtered("running", &guess).is_empty());
    assert!(!admin.get_config_filtered("running", &guess).is_empty());
    let xpath = op
        .rpc(&format!(
            "<get-config><source><running/></source>\
             <filter type=\"xpath\" xmlns:t=\"{TUN}\" select=\"/t:tunnel/t:wireguard[t:private-key='{K1}']\"/>\
             </get-config>"
        ))
        .data();
    assert!(xpath.is_empty(), "{}", xpath.canon());

    // Writes: none, not even of a description.
    let e = op
        .edit(
            "running",
            &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>2</instance><description>x</description></wireguard></tunnel>"),
        )
        .expect_error("application", "access-denied");
    assert_eq!(
        e.path.as_deref(),
        Some("/wgt:tunnel/wgt:wireguard[wgt:instance='2']/wgt:description")
    );
    op.edit(
        "candidate",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>3</instance></wireguard></tunnel>"),
    )
    .expect_error("application", "access-denied");
    op.rpc(&format!(
        "<kill-session><session-id>{}</session-id></kill-session>",
        admin.session_id
    ))
    .expect_error("protocol", "access-denied");
    op.rpc("<delete-config><target><startup/></target></delete-config>")
        .expect_error("protocol", "access-denied");
    op.copy("running", "startup")
        .expect_error("protocol", "access-denied");
    // The admin can do all of it.
    admin
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            op.session_id
        ))
        .assert_ok();
    admin.copy("running", "startup").assert_ok();
    let counters = admin
        .rpc(&format!(
            "<get><filter type=\"subtree\"><nacm xmlns=\"{NACM}\"/></filter></get>"
        ))
        .data();
    let n = |leaf: &str| -> u64 {
        counters
            .get(&format!("nacm/{leaf}"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(n("denied-operations") >= 3, "{}", counters.canon());
    assert!(n("denied-data-writes") >= 2, "{}", counters.canon());
}

#[test]
fn a_per_interface_writer_edits_its_interface_only_and_reads_no_key() {
    let (env, agent) = setup();
    let mut w = agent.session_as(&env, "writer");
    let edit = |i: u32, d: &str| {
        format!(
            "<tunnel xmlns=\"{TUN}\"><wireguard><instance>{i}</instance><description>{d}</description></wireguard></tunnel>"
        )
    };
    w.edit("running", &edit(1, "mine")).assert_ok();
    w.edit("running", &edit(2, "theirs"))
        .expect_error("application", "access-denied");
    // A new peer in its interface: created.
    w.edit(
        "running",
        &format!(
            "<tunnel xmlns=\"{TUN}\"><wireguard><instance>1</instance>\
             <peer><instance>2</instance><public-key>{K5}</public-key></peer></wireguard></tunnel>"
        ),
    )
    .assert_ok();
    // Its key: neither written nor read.
    w.edit(
        "running",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>1</instance><private-key>{K2}</private-key></wireguard></tunnel>"),
    )
    .expect_error("application", "access-denied");
    let d = w.get_config("running");
    assert!(!has_key(&d), "{}", d.canon());
    assert_eq!(
        d.get("tunnel/wireguard/description").as_deref(),
        Some("mine")
    );
    // Deleting the interface would delete its key: refused.
    w.edit(
        "running",
        &format!(
            "<tunnel xmlns=\"{TUN}\" xmlns:nc=\"{NC_NS}\"><wireguard nc:operation=\"delete\"><instance>1</instance></wireguard></tunnel>"
        ),
    )
    .expect_error("application", "access-denied");
    let mut admin = agent.session(&env);
    let r = admin.get_config("running");
    assert!(r.canon().contains(K1), "the key is unchanged");
    assert_eq!(
        r.values("tunnel/wireguard/description"),
        vec!["mine".to_string(), "two".to_string()]
    );
}

#[test]
fn a_commit_needs_the_committers_access_to_every_change() {
    let (env, agent) = setup();
    let mut admin = agent.session(&env);
    admin
        .edit(
            "candidate",
            &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>2</instance><description>by admin</description></wireguard></tunnel>"),
        )
        .assert_ok();
    let mut w = agent.session_as(&env, "writer");
    w.commit().expect_error("application", "access-denied");
    assert_eq!(
        admin
            .get_config("running")
            .values("tunnel/wireguard/description"),
        vec!["one".to_string(), "two".to_string()]
    );
    admin.commit().assert_ok();
    assert_eq!(
        admin
            .get_config("running")
            .values("tunnel/wireguard/description"),
        vec!["one".to_string(), "by admin".to_string()]
    );
}

#[test]
fn a_denied_notification_is_not_sent() {
    let env = env();
    let agent = env.start();
    let mut admin = agent.session(&env);
    admin
        .edit(
            "running",
            &format!(
                "<nacm xmlns=\"{NACM}\"><rule-list><name>monitor</name><group>monitor</group>\
                 <rule><name>no-config-change</name><module-name>ietf-netconf-notifications</module-name>\
                 <notification-name>netconf-config-change</notification-name>\
                 <access-operations>read</access-operations><action>deny</action></rule>\
                 </rule-list></nacm>"
            ),
        )
        .assert_ok();
    let mut op = agent.session_as(&env, "oper");
    op.rpc(&format!("<create-subscription xmlns=\"{NOTIF}\"/>"))
        .assert_ok();
    // Denied: the admin's change. Permitted, after it: the end of the
    // admin's session. The first notification the operator gets is that.
    admin.edit("running", &tunnels()).assert_ok();
    admin.close();
    let n = Node::parse(&op.recv());
    assert!(n.find("netconf-config-change").is_none(), "{}", n.canon());
    assert!(n.find("netconf-session-end").is_some(), "{}", n.canon());
}

#[test]
fn root_on_the_local_socket_bypasses_access_control() {
    let (env, agent) = setup();
    let mut root = agent.relay_session(&env);
    let d = root.get_config("running");
    assert!(
        has_key(&d),
        "the recovery session reads keys: {}",
        d.canon()
    );
    // Even with every rule-list gone and writes denied by default.
    root.rpc(&format!(
        "<edit-config><target><running/></target><config>\
         <nacm xmlns=\"{NACM}\" xmlns:nc=\"{NC_NS}\"><rule-list nc:operation=\"remove\"><name>admin</name></rule-list></nacm>\
         </config></edit-config>"
    ))
    .assert_ok();
    let mut admin = agent.session(&env);
    admin
        .edit(
            "running",
            &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>2</instance><description>x</description></wireguard></tunnel>"),
        )
        .expect_error("application", "access-denied");
    root.edit(
        "running",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>2</instance><description>repaired</description></wireguard></tunnel>"),
    )
    .assert_ok();
}

#[test]
fn enable_nacm_false_turns_it_off() {
    let (env, agent) = setup();
    let mut op = agent.session_as(&env, "oper");
    assert!(!has_key(&op.get_config("running")));
    let mut admin = agent.session(&env);
    admin
        .edit(
            "running",
            &format!("<nacm xmlns=\"{NACM}\"><enable-nacm>false</enable-nacm></nacm>"),
        )
        .assert_ok();
    assert!(has_key(&op.get_config("running")));
    op.edit(
        "running",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>2</instance><description>x</description></wireguard></tunnel>"),
    )
    .assert_ok();
}

#[test]
fn an_upgraded_state_directory_keeps_its_users_working() {
    // A device of the previous version: running stored, no /nacm, users
    // without groups.
    let mut env = env();
    env.users = vec![("alice".into(), Vec::new())];
    std::fs::create_dir_all(env.run_dir()).expect("run dir");
    std::fs::write(
        env.run_dir().join("running.xml"),
        format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>5</instance><description>old</description></wireguard></tunnel>"),
    )
    .expect("running");
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(
        c.get_config("running")
            .get("tunnel/wireguard/description")
            .as_deref(),
        Some("old")
    );
    c.edit(
        "running",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>5</instance><description>still admin</description></wireguard></tunnel>"),
    )
    .assert_ok();
    c.rpc("<delete-config><target><startup/></target></delete-config>")
        .assert_ok();

    // A new device: only who [[users]] groups names is an administrator.
    let mut env = self::env();
    env.users = vec![("alice".into(), Vec::new())];
    let agent = env.start();
    let mut c = agent.session(&env);
    c.edit(
        "running",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>5</instance></wireguard></tunnel>"),
    )
    .expect_error("application", "access-denied");
}

#[test]
fn changes_and_refusals_are_in_the_audit_trail() {
    let (env, agent) = setup();
    let mut op = agent.session_as(&env, "oper");
    op.edit(
        "running",
        &format!("<tunnel xmlns=\"{TUN}\"><wireguard><instance>2</instance><description>x</description></wireguard></tunnel>"),
    )
    .expect_error("application", "access-denied");
    let log = agent.wait_stderr(|log| {
        log.lines()
            .any(|l| l.contains("audit") && l.contains("refused") && l.contains("user=oper"))
    });
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("audit")).collect();
    let changed = lines
        .iter()
        .find(|l| l.contains("configuration changed") && l.contains("user=alice"))
        .unwrap_or_else(|| panic!("no audit line for alice's change:\n{log}"));
    assert!(changed.contains("source=ssh 127.0.0.1:"), "{changed}");
    assert!(changed.contains("/wgt:tunnel"), "{changed}");
    assert!(!changed.contains(K1), "a key in the audit trail: {changed}");
    let refused = lines
        .iter()
        .find(|l| l.contains("refused") && l.contains("user=oper"))
        .unwrap_or_else(|| panic!("no audit line for oper's refused edit:\n{log}"));
    assert!(refused.contains("access-denied"), "{refused}");
}
