#[path = "common/netconf.rs"]
mod netconf;
use netconf::*;
use std::path::Path;

fn run(scoped: bool, edits: &[(&str, String)]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut e = Env::new();
    e.yang_dirs = vec![root.join("tests/yang-multi"), root.join("yang")];
    if !scoped { e.agent_env = vec![("WGNETCONF_SCOPED".into(), "0".into())]; }
    let ag = e.start();
    let mut c = ag.session(&e);
    let mut out = String::new();
    for (t, cfg) in edits {
        let r = if *t == "commit" { c.commit() } else { c.edit(t, &format!("<store xmlns=\"urn:wgnetconf:test:multi-s\">{cfg}</store>")) };
        out.push_str(if r.is_ok() {"ok; "} else {"ERR; "});
    }
    out.push_str(&c.get_config("running").canon());
    if scoped { eprintln!("STDERR {}", ag.stderr_text().replace(&"4".repeat(4000), "4x")); }
    out.replace(&"4".repeat(4096), "4x4096").replace("{urn:wgnetconf:test:multi-s}", "")
}

#[test]
fn repro() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for scoped in [true, false] {
    let mut e = Env::new();
    e.yang_dirs = vec![root.join("tests/yang-multi"), root.join("yang")];
    if !scoped { e.agent_env = vec![("WGNETCONF_SCOPED".into(), "0".into())]; }
    let ag = e.start();
    let mut c = ag.session(&e);
    c.edit("running", "<store xmlns=\"urn:wgnetconf:test:multi-s\"><entry><name>k1</name><v>same</v></entry></store>").assert_ok();
    let r = c.edit("running", "<store xmlns=\"urn:wgnetconf:test:multi-s\"><entry><name>it&apos;s</name><v>same</v></entry></store>");
    eprintln!("{scoped}: {}", r.text);
    }
}
