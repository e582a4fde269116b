//! The agent: configuration, the core (datastores and plugins), the
//! listeners, and the command line.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use tracing::{error, info};
use wgnetconf_plugin_api::Plugin;

use crate::auth::users::UserDb;
use crate::config::Config;
use crate::core::Core;
use crate::datastore::{BootSource, Datastores};
use crate::schema::{default_yang_dirs, Schema};
use crate::session::registry::Registry;
use crate::transaction::Pipeline;

/// Everything a session or a transport needs, shared behind an `Arc`.
pub struct Agent {
    pub config: Config,
    /// Flips to `true` when the agent stops (SIGTERM/SIGINT): listeners stop
    /// accepting and sessions close.
    pub shutdown: watch::Receiver<bool>,
    /// Schema, datastores, plugins: one lock, so commits are serialised.
    pub core: Mutex<Core>,
    pub sessions: Registry,
    /// The NETCONF event stream (RFC 5277).
    pub hub: Arc<crate::notify::Hub>,
    /// What our `<hello>` announces.
    pub capabilities: Vec<String>,
}

#[derive(Parser)]
#[command(
    name = "wgnetconf",
    version,
    about = "NETCONF server for WireGuard tunnels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent.
    Serve {
        /// TOML configuration file (see wgnetconf.example.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Relay stdin/stdout to the agent's Unix socket: the `netconf`
    /// subsystem command for OpenSSH's sshd.
    Relay {
        #[arg(long, default_value = "/run/wgnetconf/netconf.sock")]
        socket: PathBuf,
    },
    /// Show WireGuard interfaces and peers (like the device's
    /// `show tunnel wireguard [IFACE]`), read over NETCONF.
    Show {
        /// Interface, e.g. wg1; all when omitted.
        iface: Option<String>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Send one rpc read from stdin (the operation element, e.g.
    /// `<get-config><source><running/></source></get-config>`) and print the
    /// reply; exit status 1 on rpc-error. Connects like `show`.
    Rpc {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Read a password on stdin, print its argon2id hash for `password_hash`.
    HashPassword,
    /// Print a new private key (base64), like `wg genkey`.
    Genkey,
    /// Read a private key on stdin, print its public key, like `wg pubkey`.
    Pubkey,
    /// Print a new preshared key, like `wg genpsk`.
    Genpsk,
}

pub fn cli_main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve_main(config),
        Command::Relay { socket } => crate::transport::relay::run(&socket),
        Command::HashPassword => hash_password(),
        Command::Show { iface, connect } => show_main(&connect.target(), iface.as_deref()),
        Command::Rpc { connect } => rpc_main(&connect.target()),
        Command::Genkey => {
            println!("{}", wgnetconf_wireguard::genkey());
            0
        }
        Command::Genpsk => {
            println!("{}", wgnetconf_wireguard::genpsk());
            0
        }
        Command::Pubkey => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("wgnetconf: cannot read the private key from stdin");
                return 1;
            }
            match wgnetconf_wireguard::pubkey(line.trim()) {
                Ok(k) => {
                    println!("{k}");
                    0
                }
                Err(e) => {
                    // Like `wg pubkey`: say what is wrong, never echo the key.
                    eprintln!("wgnetconf: {e}");
                    1
                }
            }
        }
    }
}

/// How the client commands (`show`, `rpc`) reach an agent: the local Unix
/// socket by default, or SSH with `--host`.
#[derive(clap::Args)]
struct ConnectArgs {
    /// Connect over SSH to this host instead of the local Unix socket.
    #[arg(long)]
    host: Option<String>,
    #[arg(long, default_value_t = 830)]
    port: u16,
    #[arg(long, default_value = "admin")]
    user: String,
    /// SSH private key file.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Password, read from this environment variable (never the command line).
    #[arg(long, default_value = "WGNETCONF_PASSWORD")]
    password_env: String,
    #[arg(long, default_value = "/run/wgnetconf/netconf.sock")]
    socket: PathBuf,
}

impl ConnectArgs {
    fn target(self) -> crate::client::Target {
        match self.host {
            Some(host) => crate::client::Target::Ssh {
                host,
                port: self.port,
                user: self.user,
                password: std::env::var(&self.password_env).ok(),
                key: self.key,
            },
            None => crate::client::Target::Unix(self.socket),
        }
    }
}

/// Runs a client future on a small runtime; prints its text or error.
fn client_main<F>(fut: F) -> i32
where
    F: std::future::Future<Output = Result<String, crate::client::ClientError>>,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wgnetconf: {e}");
            return 1;
        }
    };
    match rt.block_on(fut) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(crate::client::ClientError::Rpc(reply)) => {
            println!("{reply}");
            1
        }
        Err(e) => {
            eprintln!("wgnetconf: {e}");
            1
        }
    }
}

fn show_main(target: &crate::client::Target, iface: Option<&str>) -> i32 {
    client_main(crate::client::show::show(target, iface))
}

fn rpc_main(target: &crate::client::Target) -> i32 {
    let mut body = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut body) {
        eprintln!("wgnetconf: cannot read the rpc from stdin: {e}");
        return 1;
    }
    client_main(async move {
        let mut c = crate::client::Client::connect(target).await?;
        let reply = c.rpc(body.trim()).await;
        c.close().await;
        reply.map(|r| r + "\n")
    })
}

fn hash_password() -> i32 {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("wgnetconf: cannot read the password from stdin");
        return 1;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("wgnetconf: empty password");
        return 1;
    }
    match crate::auth::password::hash_argon2id(password) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("wgnetconf: {e}");
            1
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WGNETCONF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The plugins this build carries, for the modules the schema loaded.
fn plugins(config: &Config, schema: &Schema) -> Result<Vec<Box<dyn Plugin>>, String> {
    let mut out: Vec<Box<dyn Plugin>> = Vec::new();
    let wg_loaded = schema.modules.iter().any(|m| m.name == "wgnetconf-tunnel");
    if config.wireguard.enabled && wg_loaded {
        let p = wgnetconf_wireguard::WireguardPlugin::new(&config.wireguard.backend)
            .map_err(|e| e.message)?;
        out.push(Box::new(p));
    }
    Ok(out)
}

/// [`release_free_memory`] once a burst of big messages is over: the trim
/// holds the allocator's lock while it walks the heap, so it waits until
/// no big message came for a moment (a client reading get-config five times
/// in a row would otherwise have each read wait for the previous trim).
pub fn release_free_memory_soon() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_BIG: AtomicU64 = AtomicU64::new(0);
    const QUIET: std::time::Duration = std::time::Duration::from_millis(300);
    let stamp = LAST_BIG.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::spawn(async move {
        tokio::time::sleep(QUIET).await;
        // Only the last big message of a burst trims.
        if LAST_BIG.load(Ordering::SeqCst) == stamp {
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    });
}

/// Returns the allocator's free memory to the system (after a big request
/// or reply: glibc keeps freed heap otherwise, and the resident size would
/// stay at its peak).
pub fn release_free_memory() {
    let t = std::time::Instant::now();
    // SAFETY: malloc_trim only releases free pages of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    tracing::debug!(elapsed_us = t.elapsed().as_micros() as u64, "heap trimmed");
}

/// Builds the core: schema, datastores, plugins, and applies the boot
/// configuration.
pub fn build_core(config: &Config, users: &UserDb) -> Result<Core, String> {
    let mut dirs = default_yang_dirs();
    for d in &config.yang_dirs {
        // A configured directory that is also a default one is searched once
        // (libyang refuses a search directory twice).
        let same = |x: &std::path::PathBuf| match (x.canonicalize(), d.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => x == d,
        };
        if !dirs.iter().any(same) {
            dirs.push(d.clone());
        }
    }
    let schema = Schema::load(&dirs).map_err(|e| e.to_string())?;
    let (mut ds, source) =
        Datastores::open(&schema, config.run_dir.clone(), config.state_dir.clone())?;
    let nacm = Arc::new(crate::nacm::Nacm::new(&schema));
    nacm.set_external_groups(users.groups());
    bootstrap_access(&schema, &mut ds, source, config, users)?;
    let mut pipeline = Pipeline::new(plugins(config, &schema)?);
    pipeline.start(&schema)?;
    let mut core = Core {
        schema,
        ds,
        pipeline,
        ext: crate::core::hooks::Extras::new(config),
        monitor: Arc::new(crate::monitoring::Monitor::new()),
        nacm,
        nacm_gen: None,
    };
    match (source, core.ds.boot_status().1) {
        (BootSource::Running, None) => info!("restarting with the saved running configuration"),
        (BootSource::Running, Some(_)) => {
            info!("restarting with the part of the saved running configuration that validates")
        }
        (BootSource::Startup, _) => info!("boot: startup becomes running"),
        (BootSource::Empty, _) => info!("boot: no usable saved configuration, running is empty"),
    }
    core.boot()?;
    core.confirmed_restore()?;
    Ok(core)
}

/// The first access policy, once (see `nacm::bootstrap`): into running
/// (applied and saved by the boot commit) and into startup. On a new
/// device the `admin` group is who `[[users]] groups` (or the generated
/// admin) puts there; on a device upgraded from a version without access
/// control (stored configuration, no `/nacm`), every user known now joins
/// it, so that nobody loses access.
fn bootstrap_access(
    schema: &crate::schema::Schema,
    ds: &mut Datastores,
    source: BootSource,
    config: &Config,
    users: &UserDb,
) -> Result<(), String> {
    use crate::nacm::bootstrap;
    if !bootstrap::due(&config.state_dir) {
        return Ok(());
    }
    let upgraded =
        source != BootSource::Empty || ds.tree(crate::protocol::rpc::Datastore::Startup).is_some();
    let mut names: Vec<String> = if upgraded {
        users.names().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    names.sort();
    if bootstrap::add_policy(schema, &mut ds.running, &names)? {
        info!(users = ?names, "access control: rule-list admin (permit all) for group admin");
    }
    let mut startup = match ds.tree(crate::protocol::rpc::Datastore::Startup) {
        Some(t) => crate::datastore::duplicate(t).map_err(|e| e.message)?,
        None => crate::datastore::duplicate(&ds.running).map_err(|e| e.message)?,
    };
    bootstrap::add_policy(schema, &mut startup, &names)?;
    ds.set_startup(startup).map_err(|e| e.message)?;
    bootstrap::done(&config.state_dir)
}

fn serve_main(config_path: Option<PathBuf>) -> i32 {
    init_logging();
    // libyang trees are built and freed on whichever blocking thread runs
    // an rpc; with glibc's default of 8 arenas per core, each thread keeps
    // its own freed datastore copies and RSS grows to several times the
    // data (measured: 445 MiB after 10,000-peer runs). One arena keeps
    // freed memory reusable across threads (peak RSS of the plain benchmark
    // at 10,000 peers: 70 MiB with two arenas, 46 MiB with one; operations
    // run one at a time, so there is little allocator contention to lose).
    // SAFETY: mallopt only tunes the allocator; called before any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let config = match config_path {
        Some(p) => match Config::load(&p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("wgnetconf: {e}");
                return 2;
            }
        },
        None => Config::default(),
    };
    // Operations run on blocking threads but one at a time (the core is
    // behind one lock): a few threads suffice, and each one more would
    // add its stack and buffers to the resident memory (20 sessions
    // waiting for the core cost ~25 MiB with the default of 512).
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wgnetconf: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(serve(config)) {
        Ok(()) => 0,
        Err(e) => {
            error!("{e}");
            eprintln!("wgnetconf: {e}");
            1
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    crate::auth::files::ensure_private_dir(&config.state_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.state_dir.display()))?;
    // The run directory holds the Unix socket the sshd relay (running as
    // the logged-in user) connects to: searchable by all; running.xml in it
    // is 0600.
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = &config.run_dir;
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let users = Arc::new(UserDb::load(&config).map_err(|e| e.to_string())?);
    let cfg = config.clone();
    let db = users.clone();
    let core = tokio::task::spawn_blocking(move || build_core(&cfg, &db))
        .await
        .map_err(|e| e.to_string())??;
    let capabilities = crate::monitoring::capabilities(&core.schema);
    core.monitor.set_capabilities(capabilities.clone());
    let sessions = Registry::with_monitor(core.monitor.clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let agent = Arc::new(Agent {
        config,
        shutdown: shutdown_rx,
        hub: core.ext.hub.clone(),
        core: Mutex::new(core),
        sessions,
        capabilities,
    });
    crate::core::hooks::spawn_tasks(&agent);
    let ssh = crate::transport::ssh::bind(agent.clone(), users.clone())
        .await
        .map_err(|e| e.to_string())?;
    let unix = if agent.config.unix.enabled {
        Some(
            crate::transport::unix::bind(agent.clone(), users.clone())
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let ssh_addrs: Vec<String> = ssh.iter().map(|(a, _)| a.to_string()).collect();
    let unix_path = unix
        .as_ref()
        .map(|(p, _)| p.display().to_string())
        .unwrap_or_default();
    // Signal handlers first: a SIGTERM right after READY must stop cleanly.
    let signals = Signals::install();
    // The one line tests and scripts wait for: everything is listening and
    // the boot configuration is applied.
    println!("READY ssh={} unix={}", ssh_addrs.join(","), unix_path);
    info!(ssh = %ssh_addrs.join(","), unix = %unix_path, "ready");

    signals.wait().await;
    info!("stopping");
    let _ = shutdown_tx.send(true);
    // Sessions notice the shutdown and close; give them a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while agent.sessions.count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (_, task) in ssh {
        task.abort();
    }
    if let Some((path, task)) = unix {
        task.abort();
        let _ = std::fs::remove_file(path);
    }
    let a = agent.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut core) = a.core.lock() {
            core.pipeline.stop();
        }
    })
    .await;
    info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, installed before the agent announces READY.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => Signals(Some((t, i))),
            _ => Signals(None),
        }
    }

    async fn wait(self) {
        let Some((mut term, mut int)) = self.0 else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
