//! The command line: `serve` (the agent, `agent.rs`), `relay` (for sshd),
//! the client commands `show` and `rpc`, and the key and password helpers.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Reload the running agent's configuration and wait until it has.
    ///
    /// The agent (signalled with SIGHUP) reads its configuration file
    /// again and applies users, keys, groups and limits without dropping
    /// the sessions of users who remain; settings that need a restart are
    /// named in its log. This is the systemd unit's `ExecReload`. Exit
    /// status 1 if the agent refused the new configuration (it keeps the
    /// one it had).
    Reload {
        /// The agent's configuration file (its run_dir holds the status).
        #[arg(long, short, default_value = "/etc/wgnetconf/wgnetconf.toml")]
        config: PathBuf,
        /// The agent's pid (systemd's $MAINPID); default: the one in the
        /// agent's status file.
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds to wait for the agent's answer.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
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
    /// List the commit history (id, time, user, source, comment).
    History {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Make running what it was before commit ID (a commit like any other).
    Rollback {
        id: u64,
        /// A confirmed commit: undone unless confirmed within SECONDS.
        #[arg(long, value_name = "SECONDS")]
        confirm: Option<u32>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Print the edit-config content that turns the configuration before
    /// commit FROM into the one before TO (running when omitted).
    Compare {
        from: u64,
        to: Option<u64>,
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
    /// Write the man pages and shell completions into DIR (packaging).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
}

use crate::protocol::ext_rpc::AGENT_NS;

pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => crate::agent::serve_main(config),
        Command::Reload {
            config,
            pid,
            timeout,
        } => {
            // A missing file means the defaults, as for `serve` without one.
            let config = config.exists().then_some(config);
            crate::agent::reload::request(
                config.as_deref(),
                pid,
                std::time::Duration::from_secs(timeout),
            )
        }
        Command::Relay { socket } => crate::transport::relay::run(&socket),
        Command::GenerateDocs { dir } => match generate_docs(&dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("wgnetconf: {}: {e}", dir.display());
                1
            }
        },
        Command::HashPassword => hash_password(),
        Command::Show { iface, connect } => show_main(&connect.target(), iface.as_deref()),
        Command::Rpc { connect } => rpc_main(&connect.target()),
        Command::History { connect } => one_rpc(
            &connect.target(),
            format!(
                "<get><filter type=\"subtree\"><agent xmlns=\"{AGENT_NS}\"><history/></agent></filter></get>"
            ),
        ),
        Command::Rollback {
            id,
            confirm,
            connect,
        } => one_rpc(
            &connect.target(),
            format!(
                "<rollback xmlns=\"{AGENT_NS}\"><id>{id}</id>{}</rollback>",
                confirm
                    .map(|s| format!("<confirm-timeout>{s}</confirm-timeout>"))
                    .unwrap_or_default()
            ),
        ),
        Command::Compare { from, to, connect } => one_rpc(
            &connect.target(),
            format!(
                "<compare xmlns=\"{AGENT_NS}\"><from>{from}</from>{}</compare>",
                to.map(|t| format!("<to>{t}</to>")).unwrap_or_default()
            ),
        ),
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

/// Sends `body` and prints the reply (exit status 1 on rpc-error).
fn one_rpc(target: &crate::client::Target, body: String) -> i32 {
    client_main(async move {
        let mut c = crate::client::Client::connect(target).await?;
        let reply = c.rpc(&body).await;
        c.close().await;
        reply.map(|r| format!("{r}\n"))
    })
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

/// The man pages (`wgnetconf.1` and one `wgnetconf-<command>.1` per
/// visible subcommand) in `<dir>/man1` and the bash, zsh and fish
/// completions in `<dir>/completions`, all from the clap definitions
/// above, so they never drift from the binary.
fn generate_docs(dir: &std::path::Path) -> std::io::Result<()> {
    use clap_complete::Shell;
    let man = dir.join("man1");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    // Without the hidden commands (this one): clap_complete would offer them.
    let full = Cli::command();
    let visible = full.get_subcommands().filter(|c| !c.is_hide_set()).cloned();
    let mut cmd = clap::Command::new("wgnetconf")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommands(visible);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    clap_mangen::generate_to(cmd.clone(), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "wgnetconf", &comp)?;
    }
    Ok(())
}
