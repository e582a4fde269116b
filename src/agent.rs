//! The agent, the composition root: it loads the configuration, builds the
//! core (schema, datastores, plugins), hands the state the sessions share
//! (`session::Shared`) to the listeners, and stops them on SIGTERM/SIGINT.
//! Nothing below it imports it (`tests/layers.rs`); the command line is
//! `cli.rs`, the allocator tuning `memory.rs`. Under systemd it reports
//! its state (`systemd.rs`), pings the watchdog (`agent/watchdog.rs`) and
//! reloads on SIGHUP (`agent/reload.rs`).

pub mod reload;
mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};
use wgnetconf_plugin_api::Plugin;

use crate::auth::users::{Reveal, UserDb, Users};
use crate::config::Config;
use crate::core::Core;
use crate::datastore::{BootSource, Datastores};
use crate::schema::{default_yang_dirs, Schema};
use crate::session::registry::Registry;
use crate::session::{Limits, Shared};
use crate::systemd::Notifier;
use crate::transaction::Pipeline;

/// Crates that log message contents at debug or trace level (russh logs
/// the bytes of channel data, and an edit-config carries private keys):
/// kept at info whatever `WGNETCONF_LOG` asks, so that no log level shows
/// a key.
const CONTENT_LOGGERS: &[&str] = &["russh", "russh_keys", "russh_cryptovec"];

/// Logs go to stderr. When stderr is the journal, lines carry no colours
/// and no timestamp (the journal stamps them) but a `<N>` syslog priority
/// prefix, which journald turns into the entry's PRIORITY field, so
/// `journalctl -p warning` works; the tracing fields stay `key=value`.
fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("WGNETCONF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for c in CONTENT_LOGGERS {
        if let Ok(d) = format!("{c}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colours only on a terminal: a log file gets plain `key=value` fields
    // that tools (and the audit trail's readers) can grep.
    use std::io::IsTerminal as _;
    let _ = if crate::systemd::stderr_is_journal() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(JournalPrefix(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init()
    };
}

/// sd-daemon(3) priority prefixes in front of another event format.
struct JournalPrefix<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalPrefix<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let prio = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{prio}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The plugins this build carries, for the modules the schema loaded.
fn plugins(config: &Config, schema: &Schema) -> Result<Vec<Box<dyn Plugin>>, String> {
    let mut out: Vec<Box<dyn Plugin>> = Vec::new();
    let wg_loaded = schema.modules.iter().any(|m| m.name == "wgnetconf-tunnel");
    if config.wireguard.enabled && wg_loaded {
        let p = wgnetconf_wireguard::WireguardPlugin::new(&config.wireguard.backend)
            .map_err(|e| e.message)?
            .with_uapi_dir(config.uapi_dir())
            .with_state_dir(Some(config.state_dir.clone()));
        out.push(Box::new(p));
    }
    Ok(out)
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
        schema: Arc::new(schema),
        ds,
        pipeline,
        ext: crate::core::hooks::Extras::new(config),
        monitor: Arc::new(crate::monitoring::Monitor::new()),
        nacm,
        nacm_gen: None,
        history: crate::datastore::history::History::open(
            &config.state_dir.join("history"),
            config.history.entries,
        ),
        commit_comment: None,
        body: Default::default(),
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
    if ds.edit_running_at_boot(|running| bootstrap::add_policy(schema, running, &names))? {
        info!(users = ?names, "access control: rule-list admin (permit all) for group admin");
    }
    let mut startup = match ds.tree(crate::protocol::rpc::Datastore::Startup) {
        Some(t) => crate::datastore::duplicate(t).map_err(|e| e.message)?,
        None => crate::datastore::duplicate(ds.running()).map_err(|e| e.message)?,
    };
    bootstrap::add_policy(schema, &mut startup, &names)?;
    ds.set_startup(startup).map_err(|e| e.message)?;
    bootstrap::done(&config.state_dir)
}

pub fn serve_main(config_path: Option<PathBuf>) -> i32 {
    init_logging();
    // Before any thread exists (see memory.rs).
    crate::memory::one_arena();
    let notifier = Notifier::from_env();
    let config = match &config_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("wgnetconf: {e}");
                notifier.send(&format!("STATUS=configuration error: {e}"));
                return 2;
            }
        },
        None => Config::default(),
    };
    // Operations run on blocking threads, one at a time (the core is
    // behind one lock), body parses and reads beside them in fewer slots
    // than threads (`session::BLOCKING_THREADS`).
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(crate::session::BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wgnetconf: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(serve(config, config_path.as_deref(), &notifier)) {
        Ok(()) => 0,
        Err(e) => {
            error!("{e}");
            eprintln!("wgnetconf: {e}");
            notifier.send(&format!("STATUS=failed: {e}"));
            1
        }
    }
}

async fn serve(
    config: Config,
    config_path: Option<&Path>,
    notifier: &Notifier,
) -> Result<(), String> {
    // Under systemd the console is the journal: the first start's admin
    // password goes to a file instead (auth/users.rs).
    let reveal = if crate::systemd::under_systemd(notifier) {
        Reveal::File
    } else {
        Reveal::Console
    };
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
    notifier.send("STATUS=starting: loading the schema and applying running");
    let users = UserDb::load(&config, reveal).map_err(|e| e.to_string())?;
    let cfg = config.clone();
    let (core, users) =
        tokio::task::spawn_blocking(move || build_core(&cfg, &users).map(|core| (core, users)))
            .await
            .map_err(|e| e.to_string())??;
    let capabilities = crate::monitoring::capabilities(&core.schema);
    let schema = core.schema.clone();
    core.monitor.set_capabilities(capabilities.clone());
    let sessions = Registry::with_monitor(core.monitor.clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let input_budget =
        crate::protocol::framing::InputBudget::new(config.netconf.max_buffered_bytes);
    let agent = Arc::new(Shared {
        limits: std::sync::RwLock::new(Limits::of(&config)),
        config,
        users: Users::new(users),
        shutdown: shutdown_rx,
        hub: core.ext.hub.clone(),
        core: Arc::new(Mutex::new(core)),
        schema,
        read_slots: tokio::sync::Semaphore::new(crate::session::READ_SLOTS),
        body_slots: Arc::new(tokio::sync::Semaphore::new(crate::session::BODY_SLOTS)),
        input_budget,
        sessions,
        capabilities,
    });
    crate::core::hooks::spawn_tasks(&agent.core, &agent.shutdown);
    let ssh = crate::transport::ssh::bind(agent.clone())
        .await
        .map_err(|e| e.to_string())?;
    let unix = if agent.config.unix.enabled {
        Some(
            crate::transport::unix::bind(agent.clone())
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
    // Signal handlers first: a SIGTERM right after READY must stop cleanly,
    // and a SIGHUP must reload, not kill (its default action).
    let mut signals = Signals::install();
    // The one line tests and scripts wait for: everything is listening and
    // the boot configuration is applied. systemd hears the same moment.
    println!("READY ssh={} unix={}", ssh_addrs.join(","), unix_path);
    info!(ssh = %ssh_addrs.join(","), unix = %unix_path, "ready");
    let status = format!(
        "STATUS=serving NETCONF on ssh {} unix {}",
        if ssh_addrs.is_empty() {
            "off".to_string()
        } else {
            ssh_addrs.join(",")
        },
        if unix_path.is_empty() {
            "off"
        } else {
            &unix_path
        }
    );
    let mut reloads = 0u64;
    reload::Status {
        pid: std::process::id(),
        reloads,
        result: "ok: started".into(),
    }
    .write(&agent.config.run_dir);
    notifier.send(&format!("READY=1\n{status}"));
    if let Some(interval) = crate::systemd::watchdog_interval() {
        watchdog::spawn(
            agent.core.clone(),
            notifier.clone(),
            interval,
            agent.shutdown.clone(),
        );
    }

    while signals.wait().await == Wake::Reload {
        info!("reload requested");
        notifier.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            crate::systemd::monotonic_usec()
        ));
        let result = match reload::apply(&agent, config_path, reveal).await {
            Ok(summary) => format!("ok: {summary}"),
            Err(e) => {
                error!(error = %e, "reload failed: nothing changed");
                format!("failed: {e}")
            }
        };
        reloads += 1;
        // READY=1 before the status `wgnetconf reload` waits for: systemd
        // has it queued before the reload command exits.
        notifier.send(&format!("READY=1\n{status}"));
        reload::Status {
            pid: std::process::id(),
            reloads,
            result,
        }
        .write(&agent.config.run_dir);
    }
    info!("stopping");
    notifier.send("STOPPING=1\nSTATUS=stopping: closing sessions");
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

/// What a signal asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    Stop,
    Reload,
}

/// SIGTERM and SIGINT (stop), SIGHUP (reload), installed before the agent
/// announces READY.
struct Signals(
    Option<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
);

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(i), Ok(h)) => Signals(Some((t, i, h))),
            _ => Signals(None),
        }
    }

    async fn wait(&mut self) -> Wake {
        let Some((term, int, hup)) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => Wake::Stop,
            _ = int.recv() => Wake::Stop,
            _ = hup.recv() => Wake::Reload,
        }
    }
}
