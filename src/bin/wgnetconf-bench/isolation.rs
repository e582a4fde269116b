//! Issue 12: what one client's load costs the others, with `base` peers in
//! running. Reported, with no assertion on the figures:
//!
//! - peak RSS of 20 password logins at once (argon2id, one check at a
//!   time), the peak measured from the RSS before them (the kernel's
//!   high-water mark is reset first: `clear_refs` 5);
//! - RSS before a burst of large messages (sessions each sending an 8 MiB
//!   edit that is refused), at its end, and 5 s after (freed heap
//!   returned);
//! - session B's `<get-config>` of one peer while session A's worst hostile
//!   message of the corpus (an element with 100,000 attributes, 1 MB)
//!   is being sent and refused, against B alone;
//! - B's one-peer edit+commit while A reads the whole running (`base`
//!   peers) over and over, against B alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    connect, edit, iface_xml, ms, peer_xml, rpc, Agent, Client, Report, Stats, BASE_IF, LOGINS,
};

/// Resets the agent's peak RSS (VmHWM) to its current RSS.
fn reset_peak(agent: &Agent) {
    let _ = std::fs::write(format!("/proc/{}/clear_refs", agent.child.id()), "5");
}

/// 20 password logins at once; the row's peak is theirs.
pub async fn logins(agent: &Agent, rep: &mut Report, peers: usize) {
    reset_peak(agent);
    let (before, _) = agent.rss();
    let t = Instant::now();
    let tasks: Vec<_> = (0..LOGINS)
        .map(|_| {
            let pt = agent.password_target();
            tokio::spawn(async move { Client::connect(&pt).await })
        })
        .collect();
    let mut clients = Vec::new();
    for l in tasks {
        clients.push(l.await.expect("login task").expect("password login"));
    }
    let took = t.elapsed();
    let (_, peak) = agent.rss();
    for c in clients {
        c.close().await;
    }
    rep.row(
        format!("{LOGINS} password logins at once (argon2id), one source, {peers} peers"),
        format!(
            "all in {:.0} ms; RSS {before:.1} MiB, peak during {peak:.1} MiB",
            ms(took)
        ),
    );
}

/// A burst of large refused edits from `sessions` sessions at once.
pub async fn burst(agent: &Agent, rep: &mut Report, sessions: usize, mib: usize, settle: Duration) {
    let target = agent.target();
    let (before, _) = agent.rss();
    reset_peak(agent);
    // A description longer than the model's 64 characters: the whole
    // message is read, parsed and validated, then refused.
    let body = edit(
        "candidate",
        &format!(
            "<wireguard><instance>{}</instance><description>{}</description></wireguard>",
            BASE_IF + 900,
            "x".repeat(mib << 20)
        ),
    );
    let body = Arc::new(body);
    let t = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|_| {
            let target = target.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut c = connect(&target).await;
                let refused = c.rpc(&body).await.is_err();
                c.close().await;
                refused
            })
        })
        .collect();
    for task in tasks {
        assert!(
            task.await.expect("burst task"),
            "an invalid edit was accepted"
        );
    }
    let took = t.elapsed();
    let (end, peak) = agent.rss();
    tokio::time::sleep(settle).await;
    let (after, _) = agent.rss();
    rep.row(
        format!("burst: {sessions} sessions x {mib} MiB invalid edit at once"),
        format!(
            "done in {:.0} ms; RSS before {before:.1} MiB, peak {peak:.1}, at the end {end:.1}, {:.0} s later {after:.1} MiB",
            ms(took),
            settle.as_secs_f64()
        ),
    );
}

/// B's latency of `b_op` alone, then while `a_load` runs in a loop on
/// session A.
async fn beside(
    agent: &Agent,
    samples: usize,
    a_load: String,
    b_op: impl Fn(usize) -> Vec<String>,
) -> (Stats, Stats, usize) {
    let target = agent.target();
    let mut b = connect(&target).await;
    let mut alone = Stats::default();
    for k in 0..samples {
        let t = Instant::now();
        for body in b_op(k) {
            let _ = b.rpc(&body).await;
        }
        alone.push(ms(t.elapsed()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let a_stop = stop.clone();
    let a_target = target.clone();
    let (ready, connected) = tokio::sync::oneshot::channel();
    let a = tokio::spawn(async move {
        let mut a = connect(&a_target).await;
        let _ = ready.send(());
        let mut rounds = 0;
        while !a_stop.load(Ordering::Relaxed) {
            let _ = a.rpc(&a_load).await;
            rounds += 1;
        }
        a.close().await;
        rounds
    });
    // B's samples start once A is in session (its first request on the way).
    let _ = connected.await;
    let mut loaded = Stats::default();
    for k in 0..samples {
        let t = Instant::now();
        for body in b_op(samples + k) {
            let _ = b.rpc(&body).await;
        }
        loaded.push(ms(t.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = a.await.unwrap_or(0);
    b.close().await;
    (alone, loaded, rounds)
}

/// B's reads beside A's attribute floods, and B's commits beside A's
/// whole reads of running (`peers` peers on interface `BASE_IF`).
pub async fn latencies(agent: &Agent, rep: &mut Report, peers: usize, samples: usize) {
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let flood = format!("<get-config{attrs}><source><running/></source></get-config>");
    let one_peer = format!(
        "<get-config><source><running/></source><filter type=\"subtree\">\
         <tunnel xmlns=\"{}\"><wireguard><instance>{BASE_IF}</instance><peer><instance>1</instance></peer></wireguard></tunnel>\
         </filter></get-config>",
        super::TUNNEL_NS
    );
    let (alone, loaded, rounds) = beside(agent, samples, flood, |_| vec![one_peer.clone()]).await;
    rep.row(
        format!("B: get-config of one peer at {peers} peers, while A sends 1 MB attribute floods"),
        format!(
            "median {:.1} ms (alone {:.1} ms), p99 {:.1} ms; A's floods refused meanwhile: {rounds}",
            loaded.median(),
            alone.median(),
            loaded.p99()
        ),
    );
    let whole = "<get-config><source><running/></source></get-config>".to_string();
    let ifn = BASE_IF;
    let commit = |k: usize| {
        let peer = iface_xml(ifn, 51820, &peer_xml(ifn, peers + 1000 + k))
            .replace("<listen-port>51820</listen-port>", "");
        vec![edit("candidate", &peer), "<commit/>".to_string()]
    };
    let (alone, loaded, rounds) = beside(agent, samples, whole, commit).await;
    rep.row(
        format!("B: one-peer edit+commit at {peers} peers, while A reads all of running"),
        format!(
            "median {:.1} ms (alone {:.1} ms), p99 {:.1} ms; A's whole reads meanwhile: {rounds}",
            loaded.median(),
            alone.median(),
            loaded.p99()
        ),
    );
    // The sampled peers go again.
    let mut c = connect(&agent.target()).await;
    let mut del = String::new();
    for k in 0..2 * samples {
        del.push_str(&format!(
            "<peer xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:operation=\"remove\"><instance>{}</instance></peer>",
            peers + 1000 + k + 1
        ));
    }
    rpc(
        &mut c,
        &edit(
            "running",
            &iface_xml(ifn, 51820, &del).replace("<listen-port>51820</listen-port>", ""),
        ),
    )
    .await;
    c.close().await;
}
