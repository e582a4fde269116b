//! Plugin tests with a real libyang context (the module from `yang/`, IETF
//! imports from /usr/share/yuma/modules/ietf, `ietf-netconf` loaded as the
//! agent does) and the memory backend.

use std::sync::OnceLock;
use std::time::Instant;

use wgnetconf_plugin_api::{Commit, ErrorTag, Plugin, PluginError, PrepareCommit};
use yang5::context::{Context, ContextFlags};
use yang5::data::{
    Data, DataDiffFlags, DataFormat, DataParserFlags, DataTree, DataValidationFlags,
};

use crate::backend::memory::{MemoryBackend, MemoryLog};
use crate::backend::{Backend, InterfaceDump};
use crate::keys::{genkey, pubkey};
use crate::WireguardPlugin;

const IETF_DIR: &str = "/usr/share/yuma/modules/ietf";

pub(crate) fn context() -> &'static Context {
    static CTX: OnceLock<&'static Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let yang_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../yang");
        let mut ctx =
            Context::new(ContextFlags::NO_YANGLIBRARY | ContextFlags::DISABLE_SEARCHDIR_CWD)
                .expect("libyang context");
        ctx.set_searchdir(yang_dir).expect("yang dir");
        ctx.set_searchdir(IETF_DIR).expect("ietf dir");
        ctx.load_module("ietf-netconf", None, &["*"])
            .expect("ietf-netconf");
        ctx.load_module("wgnetconf-tunnel", Some("2026-12-05"), &[])
            .expect("wgnetconf-tunnel");
        Box::leak(Box::new(ctx))
    })
}

pub(crate) fn parse(json: &str) -> Result<DataTree<'static>, String> {
    DataTree::parse_string(
        context(),
        json,
        DataFormat::JSON,
        DataParserFlags::NO_STATE | DataParserFlags::STRICT,
        DataValidationFlags::NO_STATE,
    )
    .map_err(|e| e.to_string())
}

/// Runs commits through the plugin the way the agent's pipeline does.
pub(crate) struct Harness {
    pub plugin: WireguardPlugin,
    pub running: DataTree<'static>,
}

#[derive(Debug)]
pub(crate) enum CommitError {
    Yang(String),
    Validate(Vec<PluginError>),
    Apply(PluginError),
}

impl Harness {
    pub fn new(backend: Box<dyn Backend>) -> Self {
        Harness {
            plugin: WireguardPlugin::with_backend(backend),
            running: DataTree::new(context()),
        }
    }

    fn stage(&mut self, json: &str) -> Result<DataTree<'static>, CommitError> {
        let mut new = parse(json).map_err(CommitError::Yang)?;
        let diff = self
            .running
            .diff(&new, DataDiffFlags::DEFAULTS)
            .map_err(|e| CommitError::Yang(e.to_string()))?;
        let commit = Commit {
            context: context(),
            old: &self.running,
            new: &new,
            diff: &diff,
        };
        self.plugin
            .validate(&commit)
            .map_err(CommitError::Validate)?;
        let mut pc = PrepareCommit {
            context: context(),
            old: &self.running,
            new: &new,
            diff: &diff,
            sets: Vec::new(),
        };
        self.plugin.prepare(&mut pc).map_err(CommitError::Apply)?;
        let sets = pc.sets;
        for (path, value) in sets {
            new.new_path(&path, Some(&value), false)
                .map_err(|e| CommitError::Yang(e.to_string()))?;
        }
        new.validate(DataValidationFlags::NO_STATE)
            .map_err(|e| CommitError::Yang(e.to_string()))?;
        Ok(new)
    }

    /// validate → prepare → apply; running replaced on success.
    pub fn commit(&mut self, json: &str) -> Result<(), CommitError> {
        let new = self.stage(json)?;
        let diff = self
            .running
            .diff(&new, DataDiffFlags::DEFAULTS)
            .map_err(|e| CommitError::Yang(e.to_string()))?;
        let commit = Commit {
            context: context(),
            old: &self.running,
            new: &new,
            diff: &diff,
        };
        let applied = self.plugin.apply(&commit).map_err(CommitError::Apply);
        let _ = commit;
        drop(diff);
        applied?;
        self.running = new;
        Ok(())
    }

    /// apply, then abort as if a later plugin failed; running unchanged.
    pub fn commit_then_abort(&mut self, json: &str) -> Result<(), CommitError> {
        let new = self.stage(json)?;
        let diff = self
            .running
            .diff(&new, DataDiffFlags::DEFAULTS)
            .map_err(|e| CommitError::Yang(e.to_string()))?;
        let commit = Commit {
            context: context(),
            old: &self.running,
            new: &new,
            diff: &diff,
        };
        self.plugin.apply(&commit).map_err(CommitError::Apply)?;
        self.plugin.abort(&commit);
        Ok(())
    }

    pub fn leaf(&self, path: &str) -> Option<String> {
        self.running
            .find_path(path)
            .ok()
            .and_then(|n| n.value_canonical())
    }
}

pub(crate) struct Peer {
    pub instance: u32,
    pub key: String,
    pub extra: String,
}

pub(crate) fn peer(instance: u32, allowed: &[&str], extra: &str) -> Peer {
    let ips: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    let mut extra = extra.to_string();
    if !ips.is_empty() {
        extra.push_str(&format!(",\"allowed-ip\":[{}]", ips.join(",")));
    }
    Peer {
        instance,
        key: pubkey(&genkey()).expect("pubkey"),
        extra,
    }
}

pub(crate) fn config(iface: &str, peers: &[Peer]) -> String {
    let ps: Vec<String> = peers
        .iter()
        .map(|p| {
            format!(
                "{{\"instance\":{},\"public-key\":\"{}\"{}}}",
                p.instance, p.key, p.extra
            )
        })
        .collect();
    format!(
        "{{\"wgnetconf-tunnel:tunnel\":{{\"wireguard\":[{{\"instance\":1{iface},\"peer\":[{}]}}]}}}}",
        ps.join(",")
    )
}

fn memory() -> (Box<dyn Backend>, MemoryLog) {
    let b = MemoryBackend::new();
    let log = b.log();
    (Box::new(b), log)
}

const IFACE: &str = ",\"address\":[\"10.0.0.1/24\"]";

fn validate_errors(r: Result<(), CommitError>) -> Vec<PluginError> {
    match r {
        Err(CommitError::Validate(v)) => v,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[test]
fn private_key_is_generated_and_programmed() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    h.commit(&config(IFACE, &[peer(1, &["10.0.2.0/24"], "")]))
        .expect("commit");
    let key = h
        .leaf("/wgnetconf-tunnel:tunnel/wireguard[instance='1']/private-key")
        .expect("generated private key in running");
    let dump = log.dump();
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0].name, "wg1");
    assert_eq!(
        dump[0].public_key.map(|k| k.to_base64()),
        Some(pubkey(&key).expect("key"))
    );
    // Interface addresses keep their host part.
    assert_eq!(dump[0].addresses[0].to_string(), "10.0.0.1/24");
    assert_eq!(dump[0].routes[0].to_string(), "10.0.2.0/24");
    assert_eq!(dump[0].mtu, 1420);
    assert_eq!(dump[0].listen_port, 51820);
}

#[test]
fn allowed_ip_with_host_bits_is_refused_with_a_hint() {
    let (b, _log) = memory();
    let mut h = Harness::new(b);
    let errs = validate_errors(h.commit(&config(IFACE, &[peer(2, &["10.0.1.1/24"], "")])));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].tag, ErrorTag::InvalidValue);
    assert_eq!(
        errs[0].path.as_deref(),
        Some("/wgnetconf-tunnel:tunnel/wireguard[instance='1']/peer[instance='2']/allowed-ip[.='10.0.1.1/24']")
    );
    assert!(
        errs[0].message.contains("did you mean 10.0.1.0/24?"),
        "{}",
        errs[0].message
    );
    // The error path resolves in the would-be tree.
    let new = parse(&config(IFACE, &[peer(2, &["10.0.1.1/24"], "")])).expect("parse");
    assert!(new.find_path(errs[0].path.as_deref().unwrap_or("")).is_ok());
}

#[test]
fn ipv6_allowed_ip_with_host_bits_is_refused() {
    let (b, _log) = memory();
    let mut h = Harness::new(b);
    let errs = validate_errors(h.commit(&config(IFACE, &[peer(1, &["2001:db8::1/64"], "")])));
    assert!(
        errs[0].message.contains("did you mean 2001:db8::/64?"),
        "{}",
        errs[0].message
    );
}

#[test]
fn peer_with_the_interfaces_own_key_is_refused() {
    let (b, _log) = memory();
    let mut h = Harness::new(b);
    let private = genkey();
    let own = pubkey(&private).expect("pubkey");
    let iface = format!("{IFACE},\"private-key\":\"{private}\"");
    let mut p = peer(3, &["10.0.3.0/24"], "");
    p.key = own;
    let errs = validate_errors(h.commit(&config(&iface, &[p])));
    assert_eq!(
        errs[0].path.as_deref(),
        Some("/wgnetconf-tunnel:tunnel/wireguard[instance='1']/peer[instance='3']/public-key")
    );
    assert!(errs[0].message.contains("own public key"));
}

#[test]
fn same_allowed_ip_on_two_peers_is_refused() {
    let (b, _log) = memory();
    let mut h = Harness::new(b);
    // Both in one commit.
    let errs = validate_errors(h.commit(&config(
        IFACE,
        &[peer(1, &["10.0.2.0/24"], ""), peer(2, &["10.0.2.0/24"], "")],
    )));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].message.contains("already an allowed-ip of peer 1"),
        "{}",
        errs[0].message
    );
    assert!(errs[0]
        .path
        .as_deref()
        .unwrap_or("")
        .contains("peer[instance='2']"));

    // One in running, the other added later: detected without re-reading
    // every peer.
    let p1 = peer(1, &["10.0.2.0/24"], "");
    let p1_again = Peer {
        instance: 1,
        key: p1.key.clone(),
        extra: p1.extra.clone(),
    };
    h.commit(&config(IFACE, &[p1])).expect("first");
    let errs =
        validate_errors(h.commit(&config(IFACE, &[p1_again, peer(2, &["10.0.2.0/24"], "")])));
    assert!(errs[0].message.contains("peer 1"), "{}", errs[0].message);
}

#[test]
fn listen_port_default_collision_is_refused_by_yang() {
    let (b, _log) = memory();
    let mut h = Harness::new(b);
    let json = "{\"wgnetconf-tunnel:tunnel\":{\"wireguard\":[{\"instance\":1},{\"instance\":2}]}}";
    match h.commit(json) {
        Err(CommitError::Yang(msg)) => assert!(msg.to_lowercase().contains("unique"), "{msg}"),
        other => panic!("expected a unique violation, got {other:?}"),
    }
}

fn many_peers(n: u32) -> Vec<Peer> {
    (1..=n)
        .map(|i| peer(i, &[&format!("10.{}.{}.0/24", 100 + i / 256, i % 256)], ""))
        .collect()
}

pub(crate) fn clone_peers(ps: &[Peer]) -> Vec<Peer> {
    ps.iter()
        .map(|p| Peer {
            instance: p.instance,
            key: p.key.clone(),
            extra: p.extra.clone(),
        })
        .collect()
}

fn iface_with_key() -> String {
    format!("{IFACE},\"private-key\":\"{}\"", genkey())
}

#[test]
fn touching_one_peer_of_many_emits_one_operation() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let iface = iface_with_key();
    let base = many_peers(50);
    h.commit(&config(&iface, &clone_peers(&base)))
        .expect("initial");

    // Change one peer's keepalive: one set_peers naming that peer only.
    log.clear();
    let mut ps = clone_peers(&base);
    ps[6].extra.push_str(",\"persistent-keepalive\":25");
    h.commit(&config(&iface, &ps)).expect("keepalive");
    assert_eq!(log.calls(), vec![format!("set_peers wg1 {}", ps[6].key)]);

    // Add a peer: set_peers + its route.
    log.clear();
    let mut more = clone_peers(&ps);
    more.push(peer(51, &["10.200.0.0/24"], ""));
    h.commit(&config(&iface, &more)).expect("add");
    assert_eq!(
        log.calls(),
        vec![
            format!("set_peers wg1 {}", more[50].key),
            "add_route wg1 10.200.0.0/24".to_string()
        ]
    );

    // Remove a peer: its route, then the peer.
    log.clear();
    let removed = more.remove(2);
    h.commit(&config(&iface, &more)).expect("remove");
    assert_eq!(
        log.calls(),
        vec![
            "remove_route wg1 10.100.3.0/24".to_string(),
            format!("remove_peers wg1 {}", removed.key)
        ]
    );

    // A description change programs nothing.
    log.clear();
    more[0].extra.push_str(",\"description\":\"site B\"");
    h.commit(&config(&iface, &more)).expect("description");
    assert_eq!(log.calls(), Vec::<String>::new());

    // Disabling a peer removes it and its route, config kept.
    log.clear();
    more[1].extra.push_str(",\"enable\":false");
    h.commit(&config(&iface, &more)).expect("disable");
    assert_eq!(
        log.calls(),
        vec![
            "remove_route wg1 10.100.2.0/24".to_string(),
            format!("remove_peers wg1 {}", more[1].key)
        ]
    );
}

#[test]
fn interface_disable_takes_link_down_and_unprograms_peers() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let iface = iface_with_key();
    let ps = many_peers(3);
    h.commit(&config(&iface, &clone_peers(&ps)))
        .expect("initial");
    let before = log.dump();
    h.commit(&config(
        &format!("{iface},\"enable\":false"),
        &clone_peers(&ps),
    ))
    .expect("disable");
    let d = log.dump();
    assert!(!d[0].up);
    assert!(d[0].peers.is_empty());
    assert!(d[0].routes.is_empty());
    assert_eq!(d[0].addresses, before[0].addresses);
    h.commit(&config(&iface, &clone_peers(&ps)))
        .expect("enable");
    assert_eq!(log.dump(), before);
}

fn big_change(base: &[Peer]) -> Vec<Peer> {
    // Change keepalive of peers 1..=4, add two, remove one, add an address.
    let mut ps = clone_peers(base);
    for p in ps.iter_mut().take(4) {
        p.extra.push_str(",\"persistent-keepalive\":10");
    }
    ps.remove(7);
    ps.push(peer(101, &["10.201.0.0/24"], ""));
    ps.push(peer(102, &["10.202.0.0/24"], ""));
    ps
}

#[test]
fn injected_failure_rolls_back_every_step() {
    let iface = iface_with_key();
    let base = many_peers(10);
    let changed_iface = format!("{iface},\"mtu\":1380,\"listen-port\":51000");
    // Fail each call of the change in turn; each time the backend must be
    // exactly as before and a retry without the fault must succeed.
    let mut calls_in_change = 0;
    for nth in 1.. {
        let (b, log) = memory();
        let mut h = Harness::new(b);
        h.commit(&config(&iface, &clone_peers(&base)))
            .expect("initial");
        let before: Vec<InterfaceDump> = log.dump();
        let applied_before = h.plugin.applied().ifaces.len();
        log.clear();
        log.fail_nth(nth);
        let change = config(&changed_iface, &big_change(&base));
        match h.commit(&change) {
            Err(CommitError::Apply(e)) => {
                assert_eq!(e.tag, ErrorTag::OperationFailed);
                assert!(e.message.contains("injected failure"), "{}", e.message);
                assert_eq!(
                    log.dump(),
                    before,
                    "backend not restored after failing call {nth}"
                );
                assert_eq!(h.plugin.applied().ifaces.len(), applied_before);
                h.commit(&change).expect("retry without fault");
                assert_ne!(log.dump(), before);
            }
            Ok(()) => {
                calls_in_change = nth - 1;
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    // route -, peers -, set_interface, address?, set_peers, routes +
    assert!(calls_in_change >= 5, "only {calls_in_change} calls");
}

#[test]
fn abort_undoes_a_successful_apply() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let iface = iface_with_key();
    let base = many_peers(10);
    h.commit(&config(&iface, &clone_peers(&base)))
        .expect("initial");
    let before = log.dump();
    h.commit_then_abort(&config(
        &format!("{iface},\"mtu\":1300"),
        &big_change(&base),
    ))
    .expect("apply");
    assert_eq!(log.dump(), before);
    // The plugin's own picture was restored too: the same change applies.
    h.commit(&config(
        &format!("{iface},\"mtu\":1300"),
        &big_change(&base),
    ))
    .expect("after abort");
}

#[test]
fn interface_removal_and_its_undo() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let iface = iface_with_key();
    h.commit(&config(&iface, &many_peers(3))).expect("initial");
    let before = log.dump();
    h.commit_then_abort("{}").expect("remove then abort");
    assert_eq!(log.dump(), before);
    h.commit("{}").expect("remove");
    assert!(log.dump().is_empty());
}

#[test]
fn unresolvable_endpoint_fails_naming_it() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let p = peer(
        1,
        &["10.0.2.0/24"],
        ",\"endpoint\":\"no-such-host.invalid\"",
    );
    match h.commit(&config(IFACE, &[p])) {
        Err(CommitError::Apply(e)) => {
            assert!(e.message.contains("no-such-host.invalid"), "{}", e.message);
            assert!(e.path.as_deref().unwrap_or("").ends_with("/endpoint"));
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert!(log.dump().is_empty());
}

#[test]
fn endpoint_ip_and_port_are_programmed() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let p = peer(
        1,
        &["10.0.2.0/24"],
        ",\"endpoint\":\"192.0.2.7\",\"listen-port\":51999,\"persistent-keepalive\":25",
    );
    h.commit(&config(IFACE, &[p])).expect("commit");
    let d = log.dump();
    assert_eq!(
        d[0].peers[0].endpoint,
        Some("192.0.2.7:51999".parse().expect("addr"))
    );
    assert_eq!(d[0].peers[0].persistent_keepalive, 25);
}

#[test]
fn operational_state_is_filled() {
    let (b, _log) = memory();
    let mut h = Harness::new(b);
    h.commit(&config(
        IFACE,
        &[peer(1, &["10.0.2.0/24"], ",\"endpoint\":\"192.0.2.7\"")],
    ))
    .expect("commit");
    let mut oper = h.running.duplicate().expect("dup");
    h.plugin
        .operational(&h.running, &mut oper)
        .expect("operational");
    let base = "/wgnetconf-tunnel:tunnel/wireguard[instance='1']";
    let get = |p: &str| oper.find_path(p).ok().and_then(|n| n.value_canonical());
    let private = h.leaf(&format!("{base}/private-key")).expect("key");
    assert_eq!(
        get(&format!("{base}/public-key")),
        Some(pubkey(&private).expect("pk"))
    );
    assert_eq!(get(&format!("{base}/oper-status")).as_deref(), Some("up"));
    assert_eq!(
        get(&format!("{base}/peer[instance='1']/current-endpoint")).as_deref(),
        Some("192.0.2.7:51820")
    );
    assert_eq!(
        get(&format!("{base}/peer[instance='1']/rx-bytes")).as_deref(),
        Some("0")
    );
}

#[test]
fn unknown_backend_is_refused() {
    let e = WireguardPlugin::new("wireguard-go").expect_err("refused");
    assert!(e.message.contains("auto, kernel, boringtun, memory"));
}

/// One-peer commits with 10,000 peers present: the plugin's share
/// (validate + prepare + apply, with the memory backend).
#[test]
fn one_peer_commit_with_10000_peers_is_proportional() {
    let (b, log) = memory();
    let mut h = Harness::new(b);
    let iface = iface_with_key();
    let base = many_peers(10_000);
    h.commit(&config(&iface, &clone_peers(&base)))
        .expect("initial");
    let mut ps = clone_peers(&base);
    ps[5000].extra.push_str(",\"persistent-keepalive\":25");
    let json = config(&iface, &ps);
    let new = parse(&json).expect("parse");
    let diff = h.running.diff(&new, DataDiffFlags::DEFAULTS).expect("diff");
    let commit = Commit {
        context: context(),
        old: &h.running,
        new: &new,
        diff: &diff,
    };
    log.clear();
    let t0 = Instant::now();
    let touched = crate::model::touched(&diff, &h.running, &new);
    let t_touched = t0.elapsed();
    let t = Instant::now();
    h.plugin.validate(&commit).expect("validate");
    let t_validate = t.elapsed();
    h.plugin.apply(&commit).expect("apply");
    let took = t.elapsed();
    eprintln!(
        "one-peer change with 10000 peers: touched {t_touched:?}, validate {t_validate:?}, \
         validate+apply {took:?}"
    );
    assert_eq!(touched.len(), 1);
    assert_eq!(log.calls().len(), 1);
    drop(diff);
    h.running = new;

    // Steady state: the next one-peer commit (the first one also dropped
    // the undo record of the 10000-peer initial commit).
    ps[6000].extra.push_str(",\"persistent-keepalive\":30");
    let new = parse(&config(&iface, &ps)).expect("parse");
    let diff = h.running.diff(&new, DataDiffFlags::DEFAULTS).expect("diff");
    let commit = Commit {
        context: context(),
        old: &h.running,
        new: &new,
        diff: &diff,
    };
    let t = Instant::now();
    h.plugin.validate(&commit).expect("validate");
    h.plugin.apply(&commit).expect("apply");
    let took2 = t.elapsed();
    eprintln!("next one-peer change: validate+apply {took2:?}");
    assert!(took2.as_millis() < 50, "took {took2:?}");
    // Generous for debug builds on a loaded machine; release is far below.
    assert!(took.as_millis() < 50, "took {took:?}");
}

/// The plugins' walk over a diff (`wgnetconf_plugin_api::diff::changes`),
/// which skips created and deleted subtrees, finds exactly the changes
/// libyang's full walk does, in the same order: created and deleted peers,
/// a changed leaf, a created leaf-list value, a created interface.
#[test]
fn the_diff_walk_finds_every_change_the_full_walk_finds() {
    let a = peer(1, &["10.0.1.0/24"], "");
    let b = peer(2, &["10.0.2.0/24"], "");
    let c = peer(3, &["10.0.3.0/24"], "");
    let old = parse(&config(&format!("{IFACE},\"mtu\":1400"), &[a, b])).expect("old");
    let b2 = peer(
        2,
        &["10.0.2.0/24", "10.0.22.0/24"],
        ",\"persistent-keepalive\":25",
    );
    let two = format!(
        "{{\"instance\":2,\"listen-port\":51999,\"private-key\":\"{}\",\"peer\":[{{\"instance\":9,\"public-key\":\"{}\"}}]}}",
        genkey(),
        pubkey(&genkey()).expect("pubkey")
    );
    // config() gives interface 1 only; interface 2 joins its list.
    let one = config(&format!("{IFACE},\"mtu\":1380"), &[b2, c]);
    let new_json = format!(
        "{}}},{two}]}}}}",
        one.strip_suffix("}]}}").expect("config's end")
    );
    let new = parse(&new_json).expect("new");
    let diff = old.diff(&new, DataDiffFlags::DEFAULTS).expect("diff");
    let full: Vec<(String, String)> = diff
        .iter()
        .map(|(op, n)| (format!("{op:?}"), n.path()))
        .collect();
    let walked: Vec<(String, String)> = wgnetconf_plugin_api::diff::changes(&diff)
        .into_iter()
        .map(|(op, n)| (format!("{op:?}"), n.path()))
        .collect();
    assert!(full.len() >= 6, "{full:?}");
    assert_eq!(walked, full);
}
