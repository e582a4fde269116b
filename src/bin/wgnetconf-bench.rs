//! wgnetconf-bench: drives a real agent over NETCONF/SSH and prints a table
//! of medians and p99s (see README "Performance").
//!
//! It starts its own agent (the `wgnetconf` binary next to this one) with a
//! temporary state, on the `wgnetconf-tunnel` model, either with the
//! WireGuard plugin on the boringtun backend (`--model wg`: real tun devices,
//! interface numbers from 3000 up so nothing else collides) or with the
//! plugin disabled (`--model plain`: the same YANG, stored and validated
//! only), so protocol/datastore cost and data-plane cost are seen apart.
//!
//!   cargo build --release && target/release/wgnetconf-bench --model plain
//!   target/release/wgnetconf-bench --model wg --sizes 100,1000,10000
//!   target/release/wgnetconf-bench --smoke        # tiny sizes, for CI
//!   target/release/wgnetconf-bench --dataplane    # only the data plane (ceilings, tunnel, wireguard-go)
//!   target/release/wgnetconf-bench --nacm         # access control's cost (nacm.rs)
//!   target/release/wgnetconf-bench --drift        # a drift check's cost (drift.rs)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use wgnetconf::client::{Client, Target};

#[path = "wgnetconf-bench/ceilings.rs"]
mod ceilings;
#[path = "wgnetconf-bench/dataplane.rs"]
mod dataplane;
#[path = "wgnetconf-bench/drift.rs"]
mod drift;
#[path = "wgnetconf-bench/filters.rs"]
mod filters;
#[path = "wgnetconf-bench/isolation.rs"]
mod isolation;
#[path = "wgnetconf-bench/nacm.rs"]
mod nacm;

const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";
/// First interface instance used by the benchmark.
const BASE_IF: u32 = 3000;
/// The bench user's password, for the password-login measurement.
const PASSWORD: &str = "bench-password-not-secret";
/// Password logins at once in that measurement.
const LOGINS: usize = 20;

#[derive(Parser)]
#[command(about = "Benchmark a wgnetconf agent over NETCONF/SSH")]
struct Args {
    /// `plain` (no plugin) or `wg` (WireGuard plugin, boringtun backend).
    #[arg(long, default_value = "plain")]
    model: String,
    /// Bulk sizes (peers under one interface).
    #[arg(long, default_value = "100,1000,10000", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Peers present for the incremental, get-config and rejection runs.
    #[arg(long, default_value_t = 10000)]
    base: usize,
    /// One-peer edit+commit samples at `base` peers.
    #[arg(long, default_value_t = 200)]
    incremental: usize,
    /// Parallel sessions, and edits per session.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    #[arg(long, default_value_t = 50)]
    edits: usize,
    /// The agent keeps no commit history (`[history] entries = 0`), to
    /// measure what the history costs.
    #[arg(long)]
    no_history: bool,
    /// Tiny sizes: proves the benchmark runs (CI), asserts no timing.
    #[arg(long)]
    smoke: bool,
    /// Only the data plane (iperf3 through boringtun between two
    /// namespaces, see dataplane.rs); `--model wg` runs include it.
    #[arg(long)]
    dataplane: bool,
    /// `--model wg` without its data-plane part (repeated model runs).
    #[arg(long)]
    no_dataplane: bool,
    /// Only access control's cost: one-peer commits and get-config at
    /// `base` peers, as an administrator, with `enable-nacm false` and as
    /// a user under a 10-rule rule-list, interleaved (see nacm.rs).
    #[arg(long)]
    nacm: bool,
    /// Only a drift check's cost at `base` peers (see drift.rs).
    #[arg(long)]
    drift: bool,
    /// Rounds of the `--nacm` run (each user's turn in every round).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

struct Agent {
    child: Child,
    dir: PathBuf,
    port: u16,
    key: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own unreaped child; no memory
        // involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Agent {
    fn start(model: &str, history: bool) -> Agent {
        Agent::start_with(model, history, &[])
    }

    /// An agent with more users (name, groups), who log in with the
    /// bench user's key.
    fn start_with(model: &str, history: bool, users: &[(&str, &[&str])]) -> Agent {
        let dir = std::env::temp_dir().join(format!("wgnetconf-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key = dir.join("key");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
        let pubkey = std::fs::read_to_string(dir.join("key.pub")).expect("key.pub");
        let hash = wgnetconf::auth::password::hash_argon2id(PASSWORD).expect("argon2id");
        let config = dir.join("config.toml");
        let mut text = format!(
            "state_dir = \"{d}/state\"\nrun_dir = \"{d}/run\"\nyang_dirs = [{y:?}]\n[ssh]\nlisten = [\"127.0.0.1:0\"]\nauth_timeout_secs = 120\n[unix]\nenabled = false\n[wireguard]\nenabled = {wg}\nbackend = \"boringtun\"\nuapi_dir = \"{d}/wireguard\"\n[history]\nentries = {hist}\n[[users]]\nname = \"bench\"\ngroups = [\"admin\"]\nauthorized_keys = [\"{k}\"]\npassword_hash = \"{h}\"\n",
            d = dir.display(),
            y = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/yang-bench"),
            h = hash,
            hist = if history { 50 } else { 0 },
            wg = model == "wg",
            k = pubkey.trim()
        );
        for (name, groups) in users {
            let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
            text.push_str(&format!(
                "[[users]]\nname = \"{name}\"\ngroups = [{}]\nauthorized_keys = [\"{}\"]\n",
                groups.join(", "),
                pubkey.trim()
            ));
        }
        std::fs::write(&config, text).expect("config");
        let bin = std::env::current_exe()
            .expect("current exe")
            .with_file_name("wgnetconf");
        let mut child = Command::new(&bin)
            .args(["serve", "--config"])
            .arg(&config)
            .env("WGNETCONF_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("READY line");
        let port = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("ssh="))
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("agent did not start: {line:?}"));
        Agent {
            child,
            dir,
            port,
            key,
        }
    }

    fn target(&self) -> Target {
        self.target_as("bench")
    }

    fn target_as(&self, user: &str) -> Target {
        Target::Ssh {
            host: "127.0.0.1".into(),
            port: self.port,
            user: user.into(),
            password: None,
            key: Some(self.key.clone()),
        }
    }

    /// The same user, logging in with the password instead of the key.
    fn password_target(&self) -> Target {
        Target::Ssh {
            host: "127.0.0.1".into(),
            port: self.port,
            user: "bench".into(),
            password: Some(PASSWORD.into()),
            key: None,
        }
    }

    /// (current RSS, peak RSS) in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .unwrap_or(0.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// A valid, unique WireGuard public key for peer `i` of interface `ifn`.
fn peer_key(ifn: u32, i: usize) -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&ifn.to_be_bytes());
    b[4..12].copy_from_slice(&(i as u64).to_be_bytes());
    b[31] = 0x42;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn peer_xml(ifn: u32, i: usize) -> String {
    // One /32 per peer, unique across the benchmark's interfaces too (the
    // WireGuard plugin adds a route per allowed-ip): 6 bits of interface,
    // 18 bits of peer. The interfaces in use at the same time (BASE_IF,
    // BASE_IF+1.., the bulk ones at BASE_IF+100..) differ modulo 64.
    let ip = 0x0a00_0000u32 | ((ifn % 64) << 18) | (i as u32 + 1);
    format!(
        "<peer><instance>{}</instance><public-key>{}</public-key><allowed-ip>{}.{}.{}.{}/32</allowed-ip></peer>",
        i + 1,
        peer_key(ifn, i),
        ip >> 24,
        (ip >> 16) & 255,
        (ip >> 8) & 255,
        ip & 255
    )
}

fn edit(target: &str, body: &str) -> String {
    format!("<edit-config><target><{target}/></target><config><tunnel xmlns=\"{TUNNEL_NS}\">{body}</tunnel></config></edit-config>")
}

fn iface_xml(ifn: u32, port: u32, peers: &str) -> String {
    format!(
        "<wireguard><instance>{ifn}</instance><listen-port>{port}</listen-port>{peers}</wireguard>"
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Stats(Vec<f64>);

impl Stats {
    fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let idx = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
        v[idx.min(v.len() - 1)]
    }
    fn median(&self) -> f64 {
        self.pct(50.0)
    }
    fn p99(&self) -> f64 {
        self.pct(99.0)
    }
}

struct Report {
    rows: Vec<(String, String)>,
}

impl Report {
    fn row(&mut self, what: impl Into<String>, value: impl Into<String>) {
        let (w, v) = (what.into(), value.into());
        println!("| {w} | {v} |");
        self.rows.push((w, v));
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}, Linux {}", kernel.trim())
}

async fn connect(t: &Target) -> Client {
    Client::connect(t).await.expect("connect")
}

async fn rpc(c: &mut Client, body: &str) -> Duration {
    let t = Instant::now();
    if let Err(e) = c.rpc(body).await {
        panic!("rpc failed: {e}");
    }
    t.elapsed()
}

async fn run(args: Args) {
    if args.dataplane {
        return dataplane::standalone(args.smoke).await;
    }
    if args.nacm {
        return nacm::run(&args).await;
    }
    if args.drift {
        return drift::run(&args).await;
    }
    let (sizes, base, incremental, sessions, edits) = if args.smoke {
        (vec![10, 50], 50, 5, 3, 3)
    } else {
        (
            args.sizes.clone(),
            args.base,
            args.incremental,
            args.sessions,
            args.edits,
        )
    };
    let agent = Agent::start(&args.model, !args.no_history);
    let target = agent.target();
    let mut rep = Report { rows: Vec::new() };
    println!(
        "\nwgnetconf-bench, model {}, on {}\n",
        args.model,
        machine()
    );
    println!("| measure | result |\n|---|---|");

    // a. session setup.
    let mut setup = Stats::default();
    for _ in 0..20 {
        let t = Instant::now();
        let c = connect(&target).await;
        setup.push(ms(t.elapsed()));
        c.close().await;
    }
    rep.row(
        "session setup (TCP+SSH+hello), 20 samples",
        format!("median {:.1} ms, p99 {:.1} ms", setup.median(), setup.p99()),
    );

    let mut c = connect(&target).await;
    // b. bulk, each size on its own interface, removed afterwards.
    for (k, &n) in sizes.iter().enumerate() {
        let ifn = BASE_IF + 100 + k as u32;
        let peers: String = (0..n).map(|i| peer_xml(ifn, i)).collect();
        let body = edit("candidate", &iface_xml(ifn, 20000 + ifn % 10000, &peers));
        // The agent's CPU time too: on a machine shared with other work
        // it moves far less than the wall time.
        let cpu0 = filters::agent_cpu_ms(agent.child.id());
        let te = rpc(&mut c, &body).await;
        let tc = rpc(&mut c, "<commit/>").await;
        let cpu = filters::agent_cpu_ms(agent.child.id()) - cpu0;
        let (_, peak) = agent.rss();
        rep.row(
            format!("bulk {n} peers: edit-config / commit"),
            format!(
                "{:.1} ms / {:.1} ms (total {:.1} ms, agent CPU {:.0} ms), peak RSS {:.1} MiB",
                ms(te),
                ms(tc),
                ms(te + tc),
                cpu,
                peak
            ),
        );
        let del = edit(
            "candidate",
            &format!("<wireguard xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:operation=\"delete\"><instance>{ifn}</instance></wireguard>"),
        );
        rpc(&mut c, &del).await;
        rpc(&mut c, "<commit/>").await;
    }

    // Filtered reads (plain model: the second layout's interfaces are not
    // WireGuard's, and 100 interfaces of real tun devices are not the point).
    if args.model == "plain" {
        let (big, ifaces, per, samples) = if args.smoke {
            (50, 4, 5, 2)
        } else {
            (base, 100, 100, 5)
        };
        filters::run(
            &mut c,
            agent.child.id(),
            &mut rep,
            big,
            ifaces,
            per,
            samples,
        )
        .await;
    }

    // Base population for c–e.
    let ifn = BASE_IF;
    let peers: String = (0..base).map(|i| peer_xml(ifn, i)).collect();
    rpc(&mut c, &edit("candidate", &iface_xml(ifn, 51820, &peers))).await;
    rpc(&mut c, "<commit/>").await;

    // Password logins at once with the datastore populated; the peak is
    // theirs (isolation.rs resets the high-water mark first): argon2id
    // checks run one at a time (19 MiB each), so it must not grow with
    // their number. (The agent's auth_timeout_secs is raised above so
    // that the last of them, waiting its turn, is not cut in a debug
    // build, where each check takes most of a second.)
    isolation::logins(&agent, &mut rep, base).await;

    // c. incremental one-peer merges with commit.
    let mut inc = Stats::default();
    let mut inc_edit = Stats::default();
    let mut inc_cpu = Stats::default();
    let pid = agent.child.id();
    for j in 0..incremental {
        let i = base + j;
        let body = edit(
            "candidate",
            &iface_xml(ifn, 51820, &peer_xml(ifn, i))
                .replace("<listen-port>51820</listen-port>", ""),
        );
        let c0 = filters::agent_cpu_ms(pid);
        let te = rpc(&mut c, &body).await;
        let tc = rpc(&mut c, "<commit/>").await;
        inc_cpu.push(filters::agent_cpu_ms(pid) - c0);
        inc_edit.push(ms(te));
        inc.push(ms(te + tc));
    }
    rep.row(
        format!("one-peer edit+commit at {base} peers ({incremental} samples)"),
        format!(
            "median {:.2} ms, p99 {:.2} ms (edit alone median {:.2} ms), agent CPU median {:.3} ms",
            inc.median(),
            inc.p99(),
            inc_edit.median(),
            inc_cpu.median()
        ),
    );

    // d. get-config of the whole running.
    let mut gc = Stats::default();
    let mut bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = c
            .rpc("<get-config><source><running/></source></get-config>")
            .await
            .expect("get-config");
        gc.push(ms(t.elapsed()));
        bytes = r.len();
    }
    rep.row(
        format!("get-config running, {} peers", base + incremental),
        format!("median {:.1} ms, {:.2} MB", gc.median(), bytes as f64 / 1e6),
    );

    // e. rejections with the datastore populated.
    let mut rej = Stats::default();
    for k in 0..10 {
        // A second interface left at the default port 51820 collides: on
        // running, refused at once (the candidate would hold it until
        // validate/commit, RFC 7950 §8.3.3).
        let dup = edit(
            "running",
            &format!(
                "<wireguard><instance>{}</instance></wireguard>",
                BASE_IF + 1 + k
            ),
        );
        let long = edit(
            "candidate",
            &format!(
                "<wireguard><instance>{ifn}</instance><description>{}</description></wireguard>",
                "x".repeat(65)
            ),
        );
        for body in [dup, long] {
            let t = Instant::now();
            let r = c.rpc(&body).await;
            rej.push(ms(t.elapsed()));
            assert!(r.is_err(), "invalid edit was accepted");
        }
        rpc(&mut c, "<discard-changes/>").await;
    }
    rep.row(
        format!(
            "rejection of an invalid edit at {} peers",
            base + incremental
        ),
        format!("median {:.2} ms, p99 {:.2} ms", rej.median(), rej.p99()),
    );
    c.close().await;

    // What one client's load costs the others (isolation.rs).
    if args.smoke {
        isolation::burst(&agent, &mut rep, 2, 1, Duration::from_secs(1)).await;
        isolation::latencies(&agent, &mut rep, base, 3).await;
    } else {
        isolation::burst(&agent, &mut rep, 10, 8, Duration::from_secs(5)).await;
        isolation::latencies(&agent, &mut rep, base, 20).await;
    }

    // f. parallel sessions, each on its own interface.
    for locking in [false, true] {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..sessions {
            let target = target.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = connect(&target).await;
                let ifn = BASE_IF + 1 + s as u32;
                let port = 30000 + s as u32 + if locking { 100 } else { 0 };
                let mut done = Vec::new();
                for e in 0..edits {
                    let body = edit("running", &iface_xml(ifn, port, &peer_xml(ifn, e)));
                    if locking {
                        // Lock running; retry while another session holds it.
                        loop {
                            match c.rpc("<lock><target><running/></target></lock>").await {
                                Ok(_) => break,
                                Err(_) => tokio::task::yield_now().await,
                            }
                        }
                    }
                    if c.rpc(&body).await.is_ok() {
                        done.push(e);
                    }
                    if locking {
                        let _ = c.rpc("<unlock><target><running/></target></unlock>").await;
                    }
                }
                c.close().await;
                done
            }));
        }
        let mut acked: Vec<Vec<usize>> = Vec::new();
        for t in tasks {
            acked.push(t.await.unwrap_or_default());
        }
        let ok: usize = acked.iter().map(Vec::len).sum();
        let secs = t.elapsed().as_secs_f64();
        // Read back: every acknowledged edit must be in running.
        let mut c = connect(&target).await;
        let data = c
            .rpc("<get-config><source><running/></source></get-config>")
            .await
            .expect("read back");
        let mut lost = 0;
        for (s, done) in acked.iter().enumerate() {
            let ifn = BASE_IF + 1 + s as u32;
            for &e in done {
                if !data.contains(&peer_key(ifn, e)) {
                    lost += 1;
                }
            }
        }
        // Remove them for the next round.
        let mut del = String::new();
        for s in 0..sessions {
            del.push_str(&format!(
                "<wireguard xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:operation=\"remove\"><instance>{}</instance></wireguard>",
                BASE_IF + 1 + s as u32
            ));
        }
        rpc(&mut c, &edit("running", &del)).await;
        c.close().await;
        rep.row(
            format!(
                "{sessions} sessions x {edits} one-peer edits to running{}",
                if locking { " with lock/unlock" } else { "" }
            ),
            format!(
                "{:.0} commits/s, {ok} acknowledged, {lost} lost",
                ok as f64 / secs
            ),
        );
        assert_eq!(lost, 0, "acknowledged edits were lost");
    }
    let (rss, peak) = agent.rss();
    rep.row(
        "server RSS at the end / peak",
        format!("{rss:.1} MiB / {peak:.1} MiB"),
    );
    if args.model == "wg" && !args.no_dataplane {
        dataplane::run(&mut rep, args.smoke).await;
    }
    let _ = rep.rows.len();
}

fn main() {
    let args = Args::parse();
    if !Path::new("/proc/self/status").exists() {
        eprintln!("wgnetconf-bench needs Linux /proc");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args));
}
