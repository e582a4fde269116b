//! Running's storage never takes the management plane down (issue 10):
//!
//! - any key value round-trips through edits, the journal and a restart
//!   (newlines with a line `M`, both quote characters, `]]>]]>`,
//!   non-ASCII, 4 KiB);
//! - SIGKILL at random moments while commits run: every acknowledged
//!   commit is in running after the restart, and the agent starts every
//!   time;
//! - damaged files in the run directory: the agent comes up serving, with
//!   the error in its log and in `/wgna:agent/boot/error`.
//!
//! The model is `tests/yang-strings` (string keys, no XPath constraints, so
//! edits take the scoped path and its journal records).

#[path = "common/netconf.rs"]
mod netconf;

use std::collections::HashMap;
use std::path::Path;

use netconf::*;

const TS: &str = "urn:wgnetconf:test-strings";
const AGENT_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";

fn env() -> Env {
    let mut e = Env::new();
    e.yang_dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/yang-strings")];
    e
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn entry(name: &str, inner: &str) -> String {
    format!(
        "<store xmlns=\"{TS}\"><entry><name>{}</name>{inner}</entry></store>",
        esc(name)
    )
}

/// Key values no path or separator handles naively.
fn hostile() -> Vec<String> {
    vec![
        "a\nM\nb".into(),
        "x\nD /ts:store\nM\n<y>".into(),
        "q'\"q".into(),
        "it's".into(),
        "say \"hi\"".into(),
        "]]>]]>".into(),
        "Grüße 東京 🚀".into(),
        "k".repeat(4096),
    ]
}

/// name → value of every entry in a `<data>`.
fn entries(data: &Node) -> HashMap<String, String> {
    data.find_all("store/entry")
        .into_iter()
        .map(|e| {
            let name = e.child("name").map(|n| n.text.clone()).unwrap_or_default();
            let value = e.child("value").map(|n| n.text.clone()).unwrap_or_default();
            (name, value)
        })
        .collect()
}

#[test]
fn any_key_value_is_edited_stored_and_restored() {
    let env = env();
    let agent = env.start();
    let mut c = agent.session(&env);
    let names = hostile();
    for n in &names {
        c.edit("running", &entry(n, "<value>one</value>"))
            .assert_ok();
        // A change of one leaf of the entry, to running (a journal record
        // whose delete names the entry's leaf).
        c.edit("running", &entry(n, "<value>two</value>"))
            .assert_ok();
    }
    // Through the candidate too.
    for n in &names {
        c.edit("candidate", &entry(n, "<value>three</value>"))
            .assert_ok();
    }
    c.commit().assert_ok();
    let want: HashMap<String, String> = names.iter().map(|n| (n.clone(), "three".into())).collect();
    assert_eq!(entries(&c.get_config("running")), want);
    // Delete and remove find the entry too.
    c.edit(
        "running",
        &format!(
            "<store xmlns=\"{TS}\" xmlns:nc=\"{NC_NS}\"><entry nc:operation=\"delete\"><name>{}</name></entry></store>",
            esc(&names[2])
        ),
    )
    .assert_ok();
    let mut want = want;
    want.remove(&names[2]);
    assert_eq!(entries(&c.get_config("running")), want);
    drop(c);
    agent.kill9();
    let agent = env.start();
    let mut c = agent.session(&env);
    assert_eq!(
        entries(&c.get_config("running")),
        want,
        "after kill -9; log:\n{}",
        agent.stderr_text()
    );
    c.rpc("<validate><source><running/></source></validate>")
        .assert_ok();
}

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

#[test]
fn sigkill_at_random_moments_keeps_every_acknowledged_commit() {
    let env = env();
    let names = hostile();
    let mut rng = Rng(0x0c0f_fee5_eed5);
    // name → value acknowledged last; name → value in flight at the kill.
    let mut acked: HashMap<String, String> = HashMap::new();
    let mut in_flight: Option<(String, String)> = None;
    let mut counter = 0u64;
    let mut kills_mid_commit = 0;
    for round in 0..60 {
        let agent = env.start();
        let mut c = agent.session(&env);
        let got = entries(&c.get_config("running"));
        for (n, v) in &acked {
            let ok = got.get(n) == Some(v)
                || in_flight
                    .as_ref()
                    .is_some_and(|(fn_, fv)| fn_ == n && got.get(n) == Some(fv));
            assert!(
                ok,
                "round {round}: entry {n:?} has {:?}, acknowledged {v:?}; log:\n{}",
                got.get(n),
                agent.stderr_text()
            );
        }
        acked = got;
        in_flight = None;
        // The kill comes at a random moment of the commits below.
        let pid = agent.pid();
        let after = std::time::Duration::from_micros(rng.pick(60_000));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(after);
            // SAFETY: kill(2) on the agent this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        for _ in 0..500 {
            counter += 1;
            let n = names[rng.pick(names.len() as u64) as usize].clone();
            let v = format!("v{counter}");
            let via_candidate = rng.pick(3) == 0;
            let target = if via_candidate {
                "candidate"
            } else {
                "running"
            };
            let msg = format!(
                "<rpc xmlns=\"{NC_NS}\" message-id=\"{counter}\">{}</rpc>",
                edit_config(target, "", &entry(&n, &format!("<value>{v}</value>")))
            );
            in_flight = Some((n.clone(), v.clone()));
            let mut msgs = vec![msg];
            if via_candidate {
                msgs.push(format!(
                    "<rpc xmlns=\"{NC_NS}\" message-id=\"c{counter}\"><commit/></rpc>"
                ));
            }
            // Each request is answered <ok/>, or the kill came first.
            let mut killed = false;
            for m in &msgs {
                let framed = c.frame(m);
                if c.try_send_raw(&framed).is_err() {
                    killed = true;
                    break;
                }
                let Ok(reply) = c.try_recv() else {
                    kills_mid_commit += 1;
                    killed = true;
                    break;
                };
                assert!(reply.contains("<ok/>"), "round {round}: {reply}");
            }
            if killed {
                break;
            }
            acked.insert(n, v);
            in_flight = None;
        }
        let _ = killer.join();
        agent.kill9();
    }
    assert!(
        kills_mid_commit >= 30,
        "only {kills_mid_commit} kills landed while a request was in flight"
    );
}

/// Boots an agent on a run directory damaged by `damage` after a few
/// commits; returns the agent (serving) and its `/agent/boot`.
fn boot_after(damage: impl Fn(&Path)) -> (Agent, Env, Option<String>, String) {
    let env = env();
    // Five entries in the base (each start writes one), three more in
    // journal records.
    for (from, to) in [(0, 5), (5, 8)] {
        let agent = env.start();
        let mut c = agent.session(&env);
        for i in from..to {
            c.edit(
                "running",
                &entry(&format!("e\n{i}"), &format!("<value>v{i}</value>")),
            )
            .assert_ok();
        }
        drop(c);
        agent.kill9();
    }
    damage(&env.run_dir());
    let agent = env.start();
    let mut c = agent.session(&env);
    let d = c
        .rpc(&format!(
            "<get><filter type=\"subtree\"><agent xmlns=\"{AGENT_NS}\"/></filter></get>"
        ))
        .data();
    let error = d.get("agent/boot/error");
    let source = d.get("agent/boot/source").unwrap_or_default();
    c.rpc("<validate><source><running/></source></validate>")
        .assert_ok();
    drop(c);
    (agent, env, error, source)
}

/// Whether the agent's log gets `needle`.
fn logged(agent: &Agent, needle: &str) -> bool {
    agent
        .wait_stderr(|log| log.contains(needle))
        .contains(needle)
}

fn rejected_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().contains(".rejected-"))
                    .unwrap_or(false)
            })
            .count()
        })
        .unwrap_or(0)
}

fn nth_record(j: &[u8], n: usize) -> usize {
    j.windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"R ")
        .nth(n)
        .map(|(i, _)| i)
        .expect("record")
}

#[test]
fn damaged_run_directories_never_keep_the_agent_down() {
    let journal = |run: &Path| run.join("running.journal");
    let base = |run: &Path| run.join("running.xml");

    // A torn last record: a normal crash, no error.
    let (_a, _e, error, source) = boot_after(|run| {
        let mut j = std::fs::read(journal(run)).expect("journal");
        let end = j.iter().rposition(|b| *b != 0).expect("records");
        j[end - 8..=end].fill(0);
        std::fs::write(journal(run), j).expect("write");
    });
    assert_eq!((error, source.as_str()), (None, "running"));

    // A flipped byte inside a record's field, intact records after it.
    let (a, e, error, source) = boot_after(|run| {
        let mut j = std::fs::read(journal(run)).expect("journal");
        let at = nth_record(&j, 1) + 30;
        j[at] ^= 0x01;
        std::fs::write(journal(run), j).expect("write");
    });
    let error = error.expect("boot error in operational state");
    assert!(error.contains("damaged"), "{error}");
    assert_eq!(source, "running", "the records before the damage are kept");
    assert!(logged(&a, "rejected at boot"), "{}", a.stderr_text());
    assert_eq!(rejected_files(&e.run_dir()), 2);

    // A truncated base: running falls back to startup (the first start
    // saved one: its access policy).
    let (a, e, error, source) = boot_after(|run| {
        let b = std::fs::read(base(run)).expect("base");
        std::fs::write(base(run), &b[..b.len() / 2]).expect("write");
    });
    assert!(error.is_some());
    assert_eq!(source, "startup");
    assert!(logged(&a, "rejected at boot"));
    assert_eq!(rejected_files(&e.run_dir()), 2);

    // A base of another model.
    let (_a, _e, error, source) = boot_after(|run| {
        std::fs::write(
            base(run),
            "<system xmlns=\"urn:example:elsewhere\"><x>1</x></system>",
        )
        .expect("write");
    });
    assert!(error.is_some());
    assert_eq!(source, "startup");

    // A base that parses but does not validate (a unique port twice).
    let (_a, _e, error, source) = boot_after(|run| {
        std::fs::write(
            base(run),
            format!(
                "<store xmlns=\"{TS}\"><entry><name>a</name><port>1</port></entry>\
                 <entry><name>b</name><port>1</port></entry></store>"
            ),
        )
        .expect("write");
    });
    assert!(error.unwrap_or_default().contains("does not validate"));
    assert_eq!(source, "startup");

    // Files of the previous format (journal version 1) load as they are.
    let (a, e, error, source) = boot_after(|run| {
        let xml = std::fs::read(base(run)).expect("base");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &xml {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let payload = format!(
            "D /wgnetconf-test-strings:store/entry[name='v1']\nM\n\
             <store xmlns=\"{TS}\"><entry><name>v1</name><value>old format</value></entry></store>"
        );
        let mut s: u64 = 0xcbf2_9ce4_8422_2325;
        for b in payload.as_bytes() {
            s ^= u64::from(*b);
            s = s.wrapping_mul(0x0100_0000_01b3);
        }
        let j = format!(
            "wgnetconf-journal 1 base={h:016x}\nR {} {s:016x}\n{payload}",
            payload.len()
        );
        std::fs::write(journal(run), j).expect("write");
    });
    assert_eq!((error, source.as_str()), (None, "running"));
    let mut c = a.session(&e);
    assert_eq!(
        entries(&c.get_config("running"))
            .get("v1")
            .map(String::as_str),
        Some("old format")
    );
}
