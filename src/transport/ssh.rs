//! The built-in SSH server (RFC 6242 over russh): password and publickey
//! authentication against the current user database (`Shared::users`,
//! swapped by a reload), the `netconf` subsystem and nothing else (no
//! shell, exec, pty, forwarding).
//!
//! Known limitation: paramiko (ncclient, Ansible) sends a fresh
//! SERVICE_REQUEST("ssh-userauth") before *each* authentication attempt.
//! russh 0.65 ignores a SERVICE_REQUEST once authentication has started, so
//! paramiko's default "try the keys, then the password" sequence hangs
//! after the first failed method. A paramiko login with a single method
//! (only a password, or only an authorized key, e.g. ncclient with
//! `allow_agent=False, look_for_keys=False`) works. For clients that need
//! more, run OpenSSH's sshd with `wgnetconf relay` as the subsystem (see
//! `conformance/sshd/`); we do not fork russh to work around it.
//!
//! Other limitations: host and user keys are ed25519/ECDSA only (russh is
//! built without its `rsa` feature), and authorized_keys options are not
//! supported (such lines are refused, see `auth::users`).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{
    Channel, ChannelId, ChannelMsg, ChannelOpenFailure, Disconnect, MethodKind, MethodSet, SshId,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::preauth::{self, BadEnd, Ticket};
use super::shutdown_requested;
use crate::auth::hostkey;
use crate::session::Shared as Agent;
use crate::session::{self, Peer};

/// Failed authentication requests before russh disconnects. russh counts
/// the client's initial "none" probe too, so this is 1 + 6 real attempts
/// (OpenSSH's MaxAuthTries is 6).
const MAX_AUTH_ATTEMPTS: usize = 7;
/// Session channels one connection may hold open at once.
const MAX_CHANNELS: usize = 8;
/// Constant delay of a rejected attempt, so timing tells nothing and
/// guessing is slow.
const REJECTION_TIME: Duration = Duration::from_secs(1);
/// At shutdown, how long sessions get to finish before we hang up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Binds every `config.ssh.listen` address (port 0 picks a free port) and
/// serves each until `agent.shutdown` flips. Returns the bound addresses
/// (print them; with port 0 that is the only way to learn the port) and
/// the accept loops' tasks. Loads or generates the host key first. Returns
/// no listeners if `config.ssh.enabled` is false.
pub async fn bind(agent: Arc<Agent>) -> io::Result<Vec<(SocketAddr, JoinHandle<()>)>> {
    if !agent.config.ssh.enabled {
        return Ok(Vec::new());
    }
    let key = hostkey::load_or_generate(&agent.config.host_key_path())?;
    let russh_config = Arc::new(russh_config(key));
    // Connections not yet authenticated, shared by all listeners: see
    // `preauth` for the per-source share and penalties.
    let gate = preauth::Gate::new(preauth::Limits::from_config(&agent.config.ssh));
    // Password checks run one at a time (`auth::password::verify` holds a
    // process-wide lock: 19 MiB each). Waiting here, not on that lock,
    // keeps a login burst from parking a blocking thread per attempt.
    let verify_gate = Arc::new(Semaphore::new(1));
    let mut listeners = Vec::new();
    for addr in &agent.config.ssh.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(listener);
    }
    let mut out = Vec::new();
    for listener in listeners {
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, "SSH listening");
        let ctx = Shared {
            agent: agent.clone(),
            russh_config: russh_config.clone(),
            gate: gate.clone(),
            verify_gate: verify_gate.clone(),
        };
        out.push((local, tokio::spawn(accept_loop(listener, ctx))));
    }
    Ok(out)
}

fn methods() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
}

/// A rejection that keeps both methods on offer, so the client may retry
/// (russh otherwise drops the failed method from the list it advertises).
fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

fn russh_config(key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: SshId::Standard(concat!("SSH-2.0-wgnetconf_", env!("CARGO_PKG_VERSION")).into()),
        methods: methods(),
        auth_rejection_time: REJECTION_TIME,
        // The "none" probe every client starts with is not a guess.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        max_auth_attempts: MAX_AUTH_ATTEMPTS,
        // NETCONF sessions may idle for hours; detect dead peers with
        // keepalives instead of an inactivity timeout.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    }
}

#[derive(Clone)]
struct Shared {
    agent: Arc<Agent>,
    russh_config: Arc<russh::server::Config>,
    gate: Arc<preauth::Gate>,
    verify_gate: Arc<Semaphore>,
}

async fn accept_loop(listener: TcpListener, ctx: Shared) {
    let mut shutdown = ctx.agent.shutdown.clone();
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "SSH accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown_requested(&mut shutdown) => break,
        };
        let ticket = match ctx.gate.admit(&addr) {
            Ok(t) => t,
            Err(why) => {
                // Debug: a flood from one source would otherwise flood the log.
                tracing::debug!(peer = %addr, %why, "SSH connection refused");
                continue;
            }
        };
        // Our own accept loop bypasses russh's, which is where its
        // `nodelay` option is applied: without this, Nagle and delayed ACKs
        // add ~40 ms to every small reply.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(peer = %addr, error = %e, "set_nodelay failed");
        }
        tokio::spawn(connection(tcp, addr, ctx.clone(), ticket));
    }
    tracing::info!("SSH listener stopped");
}

/// One TCP connection: the SSH session runs in russh's task; this task
/// enforces the authentication deadline and hangs up at shutdown.
async fn connection(tcp: TcpStream, addr: SocketAddr, ctx: Shared, ticket: Ticket) {
    let timeout = ctx.agent.limits().auth_timeout;
    let deadline = Instant::now() + timeout;
    let (authed_tx, authed_rx) = oneshot::channel();
    let attempted = Arc::new(AtomicBool::new(false));
    let handler = Connection {
        attempted: attempted.clone(),
        agent: ctx.agent.clone(),
        verify_gate: ctx.verify_gate.clone(),
        addr,
        user: None,
        channels: HashMap::new(),
        authed: Some(authed_tx),
    };
    // A second handle on the socket, to cut it if russh does not end the
    // session after we ask it to disconnect (dropping `RunningSession`
    // would not stop its task).
    let (tcp, cutter) = match split_off_cutter(tcp) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(peer = %addr, error = %e, "cannot set up SSH connection");
            return;
        }
    };
    // run_stream waits for the client's version line: bound that too.
    let running = match tokio::time::timeout_at(
        deadline,
        russh::server::run_stream(ctx.russh_config.clone(), tcp, handler),
    )
    .await
    {
        Ok(Ok(running)) => running,
        Ok(Err(e)) => {
            tracing::debug!(peer = %addr, error = %e, "SSH handshake failed");
            ctx.gate.penalise(&addr, BadEnd::NoAttempt);
            return;
        }
        Err(_) => {
            tracing::info!(peer = %addr, "SSH client sent no version line in time");
            ctx.gate.penalise(&addr, BadEnd::Timeout);
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let mut shutdown = ctx.agent.shutdown.clone();

    // How a connection that ended unauthenticated counts against its source.
    let unauthenticated_end = || {
        if attempted.load(Ordering::Relaxed) {
            BadEnd::AuthFailed
        } else {
            BadEnd::NoAttempt
        }
    };
    let authenticated = tokio::select! {
        r = &mut running => {
            log_end(addr, r);
            ctx.gate.penalise(&addr, unauthenticated_end());
            return;
        }
        r = authed_rx => match r {
            Ok(()) => true,
            // The handler went without authenticating anyone: the
            // connection ended, and this branch can win the race against
            // `running`'s end (the penalty was then lost, one time in two).
            Err(_) => {
                if let Ok(r) = tokio::time::timeout(Duration::from_secs(1), &mut running).await {
                    log_end(addr, r);
                }
                ctx.gate.penalise(&addr, unauthenticated_end());
                return;
            }
        },
        () = tokio::time::sleep_until(deadline) => {
            tracing::info!(peer = %addr, "SSH authentication timed out");
            ctx.gate.penalise(&addr, BadEnd::Timeout);
            false
        }
        () = shutdown_requested(&mut shutdown) => false,
    };
    // Authenticated (or on the way out): the slot is someone else's now.
    drop(ticket);
    if !authenticated {
        let _ = handle
            .disconnect(
                Disconnect::ByApplication,
                "authentication timeout".into(),
                String::new(),
            )
            .await;
        if tokio::time::timeout(Duration::from_secs(1), &mut running)
            .await
            .is_err()
        {
            let _ = cutter.shutdown(std::net::Shutdown::Both);
        }
        return;
    }

    tokio::select! {
        r = &mut running => log_end(addr, r),
        () = shutdown_requested(&mut shutdown) => {
            // Sessions see the same flag and close; give them a moment to
            // send their last words before hanging up.
            if let Ok(r) = tokio::time::timeout(SHUTDOWN_GRACE, &mut running).await {
                log_end(addr, r);
                return;
            }
            let _ = handle
                .disconnect(Disconnect::ByApplication, "server shutting down".into(), String::new())
                .await;
            if tokio::time::timeout(Duration::from_secs(1), &mut running).await.is_err() {
                let _ = cutter.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Returns the stream for russh and a duplicate of its socket whose
/// `shutdown` ends the connection from outside.
fn split_off_cutter(tcp: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let std_tcp = tcp.into_std()?;
    let cutter = std_tcp.try_clone()?;
    Ok((TcpStream::from_std(std_tcp)?, cutter))
}

/// Runs one NETCONF session on an accepted `netconf` channel. Not simply
/// `channel.into_stream()`: that stream closes the channel when dropped,
/// leaving no way to send `exit-status` first, and OpenSSH's `ssh -s`
/// then exits with 255 as if the connection had failed. So client data is
/// pumped into a pipe the session reads, the session writes straight to
/// the channel, and when it is done we report status 0 and close.
async fn serve_netconf(agent: Arc<Agent>, channel: Channel<Msg>, peer: Peer) {
    let (mut from_client, to_client) = channel.split();
    let (mut pipe_in, pipe_out) = tokio::io::duplex(64 * 1024);
    let upstream = tokio::spawn(async move {
        while let Some(msg) = from_client.wait().await {
            match msg {
                ChannelMsg::Data { data } if pipe_in.write_all(&data).await.is_err() => break,
                ChannelMsg::Data { .. } => {}
                ChannelMsg::Eof | ChannelMsg::Close => break,
                // Window adjustments, stderr, requests: nothing for NETCONF.
                _ => {}
            }
        }
        // Dropping the pipe's write end is the session's end of input.
    });
    let stream = tokio::io::join(pipe_out, to_client.make_writer());
    session::run(agent, stream, peer).await;
    let _ = to_client.exit_status(0).await;
    let _ = to_client.close().await;
    upstream.abort();
}

fn log_end(addr: SocketAddr, r: Result<(), russh::Error>) {
    match r {
        Ok(()) => tracing::debug!(peer = %addr, "SSH connection closed"),
        Err(e) => tracing::debug!(peer = %addr, error = %e, "SSH connection ended"),
    }
}

/// russh's per-connection handler.
struct Connection {
    /// Set at the first real authentication attempt (not the "none"
    /// probe), so a connection that ends unauthenticated is penalised as
    /// a failure rather than as one that never tried.
    attempted: Arc<AtomicBool>,
    agent: Arc<Agent>,
    verify_gate: Arc<Semaphore>,
    addr: SocketAddr,
    /// Set once authentication succeeds.
    user: Option<String>,
    /// Session channels opened but not yet turned into a NETCONF session.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Tells `connection` that the authentication deadline no longer applies.
    authed: Option<oneshot::Sender<()>>,
}

impl Connection {
    fn accepted(&mut self, user: &str, method: &str) -> Auth {
        // `?user`: client-chosen, so escaped (no forged log lines).
        tracing::info!(peer = %self.addr, ?user, method, "SSH authentication succeeded");
        self.user = Some(user.to_owned());
        Auth::Accept
    }

    fn rejected(&self, user: &str, method: &str) -> Auth {
        self.attempted.store(true, Ordering::Relaxed);
        tracing::info!(peer = %self.addr, ?user, method, "SSH authentication failed");
        reject()
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        // argon2 takes tens of milliseconds of CPU: not on the runtime.
        let Ok(_permit) = self.verify_gate.clone().acquire_owned().await else {
            return Ok(reject());
        };
        // The database now: a reload between two attempts applies to the next.
        let users = self.agent.users.current();
        let (u, p) = (user.to_owned(), password.to_owned());
        let ok = tokio::task::spawn_blocking(move || users.verify_password(&u, &p))
            .await
            .unwrap_or(false);
        Ok(if ok {
            self.accepted(user, "password")
        } else {
            self.rejected(user, "password")
        })
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only a probe: say whether a signature with this key would do.
        let authorized = self
            .agent
            .users
            .current()
            .key_authorized(user, offer.public_key);
        Ok(if authorized {
            Auth::Accept
        } else {
            self.attempted.store(true, Ordering::Relaxed);
            reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            if self
                .agent
                .users
                .current()
                .key_authorized(user, key.public_key)
            {
                self.accepted(user, "publickey")
            } else {
                self.rejected(user, "publickey")
            },
        )
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        if let Some(tx) = self.authed.take() {
            let _ = tx.send(());
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "netconf"
            && self.agent.sessions.count() >= self.agent.config.netconf.max_sessions
        {
            // A clean, visible refusal (`ssh -s` reports the failed
            // subsystem request); `session::run` enforces the cap exactly.
            tracing::warn!(peer = %self.addr, "too many NETCONF sessions; subsystem refused");
            session.channel_failure(id)?;
            return Ok(());
        }
        if name == "netconf" {
            if let (Some(user), Some(channel)) = (self.user.clone(), self.channels.remove(&id)) {
                session.channel_success(id)?;
                let peer = Peer {
                    user,
                    source: format!("ssh {}", self.addr),
                    recovery: false,
                };
                tracing::info!(user = %peer.user, source = %peer.source, "netconf subsystem");
                // The session must not run inside this callback: russh
                // processes nothing else on this connection until we return.
                tokio::spawn(serve_netconf(self.agent.clone(), channel, peer));
                return Ok(());
            }
        }
        tracing::info!(peer = %self.addr, subsystem = ?name, "subsystem refused");
        session.channel_failure(id)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        _command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.addr, "exec refused");
        session.channel_failure(id)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.addr, "shell refused");
        session.channel_failure(id)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        id: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)?;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        id: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(id)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Only answered if the client asked for a reply.
        session.channel_failure(id)?;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        id: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&id);
        Ok(())
    }
}
