//! Part g of the benchmark: the data plane. First the ceilings on the same
//! namespaces (ceilings.rs: the veth alone, a tun pair without crypto, the
//! AEAD alone); then iperf3 (TCP) through the userspace tunnel
//! (`backend = "boringtun"`) between two network namespaces, each
//! configured by its own `wgnetconf serve` agent: 1 stream alone and while
//! a concurrent session commits one-peer edits (other peers of the same
//! interface) to one of the agents, back to back and every 100 ms (the
//! three interleaved run by run), then 4 streams, then 1 stream without tun
//! offloads; last, Debian's wireguard-go on the same veth as a reference. Every row
//! is the median of [`RUNS`] runs with their range, TCP's retransmits and
//! the receiving namespace's UDP receive-buffer errors (where packets are
//! lost).
//!
//! ```text
//!   ns A: wg2900 10.251.0.1 ~~ veth "under" 10.250.0.1 <-> 10.250.0.2 ~~ wg2900 10.251.0.2: ns B
//!         iperf3 -c                                                      iperf3 -s
//! ```
//!
//! The agents only ever hear NETCONF (our client over their Unix sockets).
//! Interface `wg2900` exists only inside the two namespaces (the rest of
//! the benchmark uses wg3000 and up, the tests single digits), the
//! namespace names carry the pid. Namespaces, agents, iperf3 and the
//! temporary directory are removed by Drop guards, also on a panic.
//!
//! Root only (namespaces, tun devices) and iperf3 is needed
//! (scripts/install-deps.sh installs it); otherwise the part is skipped
//! with the reason.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use wgnetconf::client::{Client, Target};
use wgnetconf_wireguard::backend::boringtun::OFFLOAD_ENV;

use super::{edit, peer_key, Report};

/// The tunnel interface (wg2900) in both namespaces.
const IFN: u32 = 2900;
const UNDER_A: &str = "10.250.0.1";
const UNDER_B: &str = "10.250.0.2";
const TUN_A: &str = "10.251.0.1";
const TUN_B: &str = "10.251.0.2";
const WG_PORT: u16 = 51820;
/// Other peers of wg2900 on the agent that receives the commits.
const OTHER_PEERS: usize = 8;
/// iperf3 runs per row (the row gives their median and range).
const RUNS: usize = 3;
/// The ceilings' and wireguard-go's iperf3 server (any address of B).
const CEILING_PORT: u16 = 5202;
/// Upper bound for anything to come up (agent, iperf3 server, handshake).
const DEADLINE: Duration = Duration::from_secs(20);

/// Why the data-plane part cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (needs network namespaces and tun devices)".into());
    }
    if std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_err()
    {
        return Some("/dev/net/tun is not usable".into());
    }
    for tool in ["ip", "ping", "ss", "iperf3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            return Some(format!(
                "no `{tool}` command (scripts/install-deps.sh installs it)"
            ));
        }
    }
    None
}

/// `--dataplane` alone: the header, then part g.
pub async fn standalone(smoke: bool) {
    println!(
        "\nwgnetconf-bench, data plane (boringtun), on {}\n",
        super::machine()
    );
    println!("| measure | result |\n|---|---|");
    let mut rep = Report { rows: Vec::new() };
    run(&mut rep, smoke).await;
}

pub fn run_cmd(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"))
}

#[track_caller]
pub fn ip(args: &[&str]) {
    let out = run_cmd("ip", args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run_cmd("ip", &all)
}

/// The temporary directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Network namespaces, deleted on drop (the veth goes with them).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A child process: SIGTERM, a bounded wait, SIGKILL, reaped, on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own unreaped child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ip netns exec NS wgnetconf serve`: boringtun backend, Unix socket only.
struct SiteAgent {
    proc: Proc,
    sock: PathBuf,
    log: PathBuf,
}

impl SiteAgent {
    /// `offload`: whether its interfaces ask the kernel for tun offloads.
    fn start(ns: &str, dir: &Path, offload: bool) -> SiteAgent {
        let d = dir.join(ns);
        std::fs::create_dir_all(&d).expect("agent dir");
        let sock = d.join("netconf.sock");
        let log = d.join("agent.log");
        let config = d.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {state:?}\nrun_dir = {run:?}\n\
                 [ssh]\nenabled = false\n\
                 [unix]\nsocket = {sock:?}\n\
                 [wireguard]\nenabled = true\nbackend = \"boringtun\"\nuapi_dir = {uapi:?}\n",
                state = d.join("state"),
                // Its own: both agents own a wg2900.
                uapi = d.join("wireguard"),
                run = d.join("run"),
            ),
        )
        .expect("agent config");
        let bin = std::env::current_exe()
            .expect("current exe")
            .with_file_name("wgnetconf");
        let stderr = std::fs::File::create(&log).expect("agent log");
        // `ip netns exec` execs the agent: the child's pid is the agent's.
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env("WGNETCONF_LOG", "warn")
            .env(OFFLOAD_ENV, if offload { "on" } else { "off" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("ip netns exec {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let agent = SiteAgent {
            proc: Proc(child),
            sock,
            log,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).unwrap_or_default();
        assert!(
            line.starts_with("READY"),
            "agent in {ns} did not start ({line:?}): {}",
            agent.log_text()
        );
        agent
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn target(&self) -> Target {
        Target::Unix(self.sock.clone())
    }

    fn pid(&self) -> u32 {
        self.proc.0.id()
    }
}

async fn rpc(c: &mut Client, body: &str) -> String {
    match c.rpc(body).await {
        Ok(r) => r,
        Err(e) => panic!("rpc {body}: {e}"),
    }
}

async fn commit(c: &mut Client, tunnel: &str) {
    rpc(c, &edit("candidate", tunnel)).await;
    rpc(c, "<commit/>").await;
}

/// wg2900's public key as the agent reports it (`<get>`).
async fn public_key(c: &mut Client) -> String {
    let r = rpc(
        c,
        &format!(
            "<get><filter type=\"subtree\"><tunnel xmlns=\"{}\"><wireguard><instance>{IFN}</instance><public-key/></wireguard></tunnel></filter></get>",
            super::TUNNEL_NS
        ),
    )
    .await;
    r.split("<public-key>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no public-key of wg{IFN} in {r}"))
}

/// The `<peer>` that is the other site.
fn site_peer(key: &str, endpoint: &str, allowed: &str) -> String {
    format!(
        "<peer><instance>1</instance><public-key>{key}</public-key><endpoint>{endpoint}</endpoint><listen-port>{WG_PORT}</listen-port><allowed-ip>{allowed}/32</allowed-ip></peer>"
    )
}

/// Other peer `k` (2..), its allowed-ip in 10.252.k.0/24 (`flip` moves it
/// to 10.253.k.0/24).
fn other_peer(k: usize, flip: bool) -> String {
    format!(
        "<peer><instance>{}</instance><public-key>{}</public-key><allowed-ip>10.{}.{k}.0/24</allowed-ip></peer>",
        k + 2,
        peer_key(IFN, k),
        if flip { 253 } else { 252 }
    )
}

fn wg(inner: &str) -> String {
    format!("<wireguard><instance>{IFN}</instance>{inner}</wireguard>")
}

/// A UDP counter of namespace `ns` (`/proc/net/snmp` is per namespace).
fn udp_counter(ns: &str, name: &str) -> u64 {
    let out = in_ns(ns, &["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(head), Some(vals)) = (rows.next(), rows.next()) else {
        return 0;
    };
    head.split_whitespace()
        .zip(vals.split_whitespace())
        .find(|(h, _)| *h == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The number after `"key":` in `json` at or after `from`.
fn json_number(json: &str, from: usize, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = json[from..].find(&pat)? + from + pat.len();
    let rest = json[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One iperf3 result: receiver's bits/s, sender's retransmits.
struct Iperf {
    bps: f64,
    retransmits: u64,
    udp_drops: u64,
}

/// `iperf3 -c dest -p port -t secs -P streams --json` in namespace A.
fn iperf(ns_a: &str, ns_b: &str, dest: &str, port: u16, secs: u32, streams: u32) -> Iperf {
    let drops0 = udp_counter(ns_b, "RcvbufErrors");
    let (t, p, port) = (secs.to_string(), streams.to_string(), port.to_string());
    let out = in_ns(
        ns_a,
        &[
            "iperf3", "-c", dest, "-p", &port, "-t", &t, "-P", &p, "--json",
        ],
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 -c {dest} -P {streams}: {json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recv = json
        .find("\"sum_received\"")
        .unwrap_or_else(|| panic!("no sum_received in iperf3 output: {json}"));
    let sent = json.find("\"sum_sent\"").unwrap_or(0);
    Iperf {
        bps: json_number(&json, recv, "bits_per_second").unwrap_or(0.0),
        retransmits: json_number(&json, sent, "retransmits").unwrap_or(0.0) as u64,
        udp_drops: udp_counter(ns_b, "RcvbufErrors").saturating_sub(drops0),
    }
}

/// Repeated measurements of one row.
struct Series(Vec<Iperf>);

impl Series {
    fn median_bps(&self) -> f64 {
        let mut v: Vec<f64> = self.0.iter().map(|r| r.bps).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    /// "median X Gbit/s (range a–b, n runs; retransmits, UDP drops)".
    fn text(&self) -> String {
        let lo = self.0.iter().map(|r| r.bps).fold(f64::INFINITY, f64::min);
        let hi = self.0.iter().map(|r| r.bps).fold(0.0, f64::max);
        let re: Vec<String> = self.0.iter().map(|r| r.retransmits.to_string()).collect();
        let dr: Vec<String> = self.0.iter().map(|r| r.udp_drops.to_string()).collect();
        format!(
            "**{:.2} Gbit/s** median ({:.2}–{:.2}, {} runs; TCP retransmits {}; UDP receive-buffer drops {})",
            self.median_bps() / 1e9,
            lo / 1e9,
            hi / 1e9,
            self.0.len(),
            re.join("/"),
            dr.join("/")
        )
    }
}

/// `runs` iperf3 runs (in a blocking task).
async fn series(
    ns: (&str, &str),
    dest: &'static str,
    port: u16,
    secs: u32,
    streams: u32,
    runs: usize,
) -> Series {
    let mut out = Vec::new();
    for _ in 0..runs {
        let (na, nb) = (ns.0.to_string(), ns.1.to_string());
        let r = tokio::task::spawn_blocking(move || iperf(&na, &nb, dest, port, secs, streams))
            .await
            .expect("iperf3");
        assert!(r.bps > 0.0, "no data through {dest}");
        out.push(r);
    }
    Series(out)
}

/// An `iperf3 -s` in namespace `ns` on `port` (bound to `bind` if given),
/// listening when this returns.
fn iperf_server(ns: &str, port: u16, bind: Option<&str>, log: &Path) -> Proc {
    let port_s = port.to_string();
    let mut args = vec!["netns", "exec", ns, "iperf3", "-s", "-p", &port_s];
    if let Some(b) = bind {
        args.extend(["-B", b]);
    }
    let server = Proc(
        Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).expect("iperf3 log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn iperf3 -s"),
    );
    let start = Instant::now();
    let filter = format!("sport = :{port}");
    while String::from_utf8_lossy(&in_ns(ns, &["ss", "-Htln", &filter]).stdout)
        .trim()
        .is_empty()
    {
        assert!(
            start.elapsed() < DEADLINE,
            "iperf3 server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Two agents configured as each other's peer, and the iperf3 server on
/// B's tunnel address.
struct Tunnel {
    agent_a: SiteAgent,
    agent_b: SiteAgent,
    ca: Client,
    cb: Client,
    server: Proc,
}

impl Tunnel {
    /// `offload`: see [`SiteAgent::start`]; each setting has its own
    /// agent directories.
    async fn up(ns_a: &str, ns_b: &str, dir: &Path, offload: bool) -> Tunnel {
        let dir = &dir.join(if offload { "offload" } else { "no-offload" });
        let agent_a = SiteAgent::start(ns_a, dir, offload);
        let agent_b = SiteAgent::start(ns_b, dir, offload);
        let mut ca = Client::connect(&agent_a.target()).await.expect("connect A");
        let mut cb = Client::connect(&agent_b.target()).await.expect("connect B");
        // Interfaces first (the agents generate the private keys), then each
        // site's peer; B also gets the other peers the commit loop edits.
        for (c, addr) in [(&mut ca, TUN_A), (&mut cb, TUN_B)] {
            commit(
                c,
                &wg(&format!(
                    "<listen-port>{WG_PORT}</listen-port><address>{addr}/24</address>"
                )),
            )
            .await;
        }
        let (ka, kb) = (public_key(&mut ca).await, public_key(&mut cb).await);
        commit(&mut ca, &wg(&site_peer(&kb, UNDER_B, TUN_B))).await;
        let others: String = (0..OTHER_PEERS).map(|k| other_peer(k, false)).collect();
        commit(
            &mut cb,
            &wg(&format!("{}{others}", site_peer(&ka, UNDER_A, TUN_A))),
        )
        .await;

        // iperf3 server in B, on the tunnel address.
        let server = iperf_server(ns_b, 5201, Some(TUN_B), &dir.join("iperf3-server.log"));
        // The first handshake.
        let start = Instant::now();
        while !in_ns(ns_a, &["ping", "-n", "-q", "-c", "1", "-W", "1", TUN_B])
            .status
            .success()
        {
            assert!(
                start.elapsed() < DEADLINE,
                "no ping through the tunnel; agent A: {} agent B: {}",
                agent_a.log_text(),
                agent_b.log_text()
            );
        }
        eprintln!(
            "data plane: agents pid {} ({ns_a}) and {} ({ns_b}), wg{IFN}",
            agent_a.pid(),
            agent_b.pid()
        );

        Tunnel {
            agent_a,
            agent_b,
            ca,
            cb,
            server,
        }
    }
}

/// Runs `measure` while another session commits one-peer edits to
/// `agent` (back to back, or one per `pace`); returns its result and the
/// number of commits made meanwhile.
async fn with_commits<T>(
    agent: &SiteAgent,
    pace: Option<Duration>,
    measure: impl std::future::Future<Output = T>,
) -> (T, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let target = agent.target();
    let committer = tokio::spawn(async move {
        let mut c = Client::connect(&target).await.expect("connect B");
        let mut n = 0usize;
        while !flag.load(Ordering::Relaxed) {
            let k = n % OTHER_PEERS;
            let flip = (n / OTHER_PEERS).is_multiple_of(2);
            commit(&mut c, &wg(&other_peer(k, flip))).await;
            n += 1;
            if let Some(p) = pace {
                tokio::time::sleep(p).await;
            }
        }
        c.close().await;
        n
    });
    let r = measure.await;
    stop.store(true, Ordering::Relaxed);
    (r, committer.await.expect("commit loop"))
}

/// The ceilings (ceilings.rs) on the namespaces `ns`, into `rep`.
async fn ceilings(rep: &mut Report, ns: (&str, &str), secs: u32, runs: usize) {
    let veth = series(ns, UNDER_B, CEILING_PORT, secs, 1, runs).await;
    rep.row(
        "ceiling: veth alone, 1 TCP stream (MTU 1500, no tunnel)",
        veth.text(),
    );
    for offload in [false, true] {
        let pair = super::ceilings::TunPair::start(ns.0, ns.1, offload);
        let r = series(ns, super::ceilings::PAIR_B, CEILING_PORT, secs, 1, runs).await;
        drop(pair);
        rep.row(
            format!(
                "ceiling: tun pair without crypto, {}, 1 TCP stream (MTU 1420)",
                if offload {
                    "TSO/GRO (64 KiB per read and write)"
                } else {
                    "one packet per read and write"
                }
            ),
            r.text(),
        );
    }
    let c = tokio::task::spawn_blocking(move || {
        super::ceilings::crypto(if secs > 1 { 2.0 } else { 0.2 })
    })
    .await
    .expect("crypto");
    rep.row(
        "ceiling: ChaCha20-Poly1305 (ring), 1,420-byte packets, one core",
        format!(
            "seal {:.2} Gbit/s, open {:.2} Gbit/s, seal+open {:.2} Gbit/s",
            c.0, c.1, c.2
        ),
    );
}

/// Part g; prints its rows into `rep`.
pub async fn run(rep: &mut Report, smoke: bool) {
    if let Some(why) = skip_reason() {
        // The test command runs the smoke benchmark: there, a data plane
        // that cannot be measured is a failure, not a skip.
        if std::env::var_os("WGNETCONF_REQUIRE_ALL").is_some() {
            panic!("the data plane cannot be measured here: {why}");
        }
        println!("| data plane | SKIPPED: {why} |");
        return;
    }
    let secs: u32 = if smoke { 1 } else { 10 };
    // Medians of RUNS runs per row; one when smoke-testing.
    let runs = if smoke { 1 } else { RUNS };
    let pid = std::process::id();
    let dir = TempDir(std::env::temp_dir().join(format!("wgnetconf-bench-dp-{pid}")));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let (ns_a, ns_b) = (format!("wgdp{pid}a"), format!("wgdp{pid}b"));
    // Declared before the agents and iperf3: dropped after them.
    let _ns = Namespaces(vec![ns_a.clone(), ns_b.clone()]);
    for ns in [&ns_a, &ns_b] {
        ip(&["netns", "add", ns]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    // The underlay, created directly inside the namespaces.
    ip(&[
        "link", "add", "under", "netns", &ns_a, "type", "veth", "peer", "name", "under", "netns",
        &ns_b,
    ]);
    for (ns, addr) in [(&ns_a, UNDER_A), (&ns_b, UNDER_B)] {
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "under",
        ]);
        ip(&["-n", ns, "link", "set", "under", "up"]);
    }

    // The ceilings first, on an idle underlay, against a server on
    // CEILING_PORT (any address of B).
    let _ceiling_server =
        iperf_server(&ns_b, CEILING_PORT, None, &dir.0.join("iperf3-ceiling.log"));
    ceilings(rep, (&ns_a, &ns_b), secs, runs).await;

    let Tunnel {
        agent_a,
        agent_b,
        ca,
        cb,
        server: _server,
    } = Tunnel::up(&ns_a, &ns_b, &dir.0, true).await;
    let ns = (ns_a.as_str(), ns_b.as_str());
    // The single stream alone and while another session commits one-peer
    // edits (the other peers of wg2900, alternately moved between two
    // prefixes) to the receiving side's agent: back to back (which also
    // measures the CPU the commits take from a machine the tunnel already
    // saturates) and paced at 10 commits/s (does changing other peers
    // disturb the tunnel). The three are interleaved run by run, so that
    // the load of a shared machine drifting during the benchmark does not
    // pass for an effect of the commits.
    let paces = [None, Some(Duration::from_millis(100))];
    let mut one = Series(Vec::new());
    let mut during = [Series(Vec::new()), Series(Vec::new())];
    let mut commits = [0usize; 2];
    for _ in 0..runs {
        one.0.extend(series(ns, TUN_B, 5201, secs, 1, 1).await.0);
        for (i, pace) in paces.into_iter().enumerate() {
            let (r, n) = with_commits(&agent_b, pace, series(ns, TUN_B, 5201, secs, 1, 1)).await;
            during[i].0.extend(r.0);
            commits[i] += n;
        }
    }
    rep.row(
        format!("data plane: iperf3 TCP, 1 stream, {secs} s, through the agents' tunnel"),
        one.text(),
    );
    let total = secs as f64 * runs as f64;
    for (i, pace) in paces.into_iter().enumerate() {
        rep.row(
            format!(
                "data plane: 1 stream, {secs} s, while another session commits peer edits{}",
                if pace.is_some() {
                    " every 100 ms"
                } else {
                    " back to back"
                }
            ),
            format!(
                "{}, {} commits ({:.0}/s); {:.0} % of the median without",
                during[i].text(),
                commits[i],
                commits[i] as f64 / total,
                100.0 * during[i].median_bps() / one.median_bps().max(1.0)
            ),
        );
        assert!(commits[i] > 0, "no commit completed during the runs");
    }
    let four = series(ns, TUN_B, 5201, secs, 4, runs).await;
    rep.row(
        format!("data plane: iperf3 TCP, 4 streams, {secs} s"),
        four.text(),
    );
    ca.close().await;
    cb.close().await;
    drop(_server);
    drop(agent_a);
    drop(agent_b);

    // The fallback: the same tunnel without tun offloads, as on a kernel
    // that has none (packet by packet from the tun device).
    let plain = Tunnel::up(&ns_a, &ns_b, &dir.0, false).await;
    let r = series(ns, TUN_B, 5201, secs, 1, runs).await;
    rep.row(
        format!("data plane: 1 stream, {secs} s, without tun offloads ({OFFLOAD_ENV}=off)"),
        r.text(),
    );
    let Tunnel {
        agent_a,
        agent_b,
        ca,
        cb,
        server,
    } = plain;
    ca.close().await;
    cb.close().await;
    drop((server, agent_a, agent_b));

    // The reference: Debian's wireguard-go on the same veth.
    match super::ceilings::wireguard_go_missing() {
        Some(tool) => rep.row(
            "reference: wireguard-go, 1 TCP stream",
            format!("SKIPPED: no `{tool}` command"),
        ),
        None => {
            let pid = std::process::id();
            let (ga, gb) = (format!("wgo{pid}a"), format!("wgo{pid}b"));
            let go = super::ceilings::WireguardGo::start(
                [(&ns_a, &ga, UNDER_A), (&ns_b, &gb, UNDER_B)],
                &dir.0,
            );
            let r = series(ns, super::ceilings::GO_B, CEILING_PORT, secs, 1, runs).await;
            drop(go);
            rep.row(
                "reference: Debian's wireguard-go (MTU 1420), 1 TCP stream",
                r.text(),
            );
        }
    }
    // Guards drop here: iperf3, then the namespaces and the directory.
}
