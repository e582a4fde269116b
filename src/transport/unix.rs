//! The Unix-socket transport. Whoever connects is identified by the
//! kernel (SO_PEERCRED), not by anything they send: uid 0 is `root` and
//! always allowed; any other uid is allowed only if its account name is a
//! configured user. This is how sessions arrive from OpenSSH's sshd via
//! `wgnetconf relay`, which runs as the logged-in user.

use std::ffi::CStr;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::shutdown_requested;
use crate::session::Shared;
use crate::session::{self, Peer};

/// Binds `Config::socket_path()` and serves it until shutdown; returns the
/// path and the accept loop's task. Removes a stale socket left by a crash,
/// but refuses to start if another agent still answers on it, or if the
/// path is not a socket. The socket is mode 0666: access control is the
/// uid check, so any local user can at least be told no.
pub async fn bind(agent: Arc<Shared>) -> io::Result<(PathBuf, JoinHandle<()>)> {
    let path = agent.config.socket_path();
    prepare_path(&path).await?;
    let listener = UnixListener::bind(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    tracing::info!(path = %path.display(), "listening on the unix socket");
    let task = tokio::spawn(accept_loop(listener, path.clone(), agent));
    Ok((path, task))
}

async fn prepare_path(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            // 0755, not 0700: non-root relays must be able to reach the socket.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use: is another agent running?", path.display()),
        ));
    }
    tracing::info!(path = %path.display(), "removing stale socket");
    std::fs::remove_file(path)
}

async fn accept_loop(listener: UnixListener, path: PathBuf, agent: Arc<Shared>) {
    let mut shutdown = agent.shutdown.clone();
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "unix accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown_requested(&mut shutdown) => break,
        };
        let agent = agent.clone();
        tokio::spawn(async move {
            if let Some(peer) = identify(&stream, &agent).await {
                tracing::info!(user = %peer.user, source = %peer.source, "unix session");
                session::run(agent, stream, peer).await;
            }
        });
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    tracing::info!(path = %path.display(), "unix socket closed");
}

/// Who is connected, if they may be: `None` (and a log line) otherwise,
/// after which dropping the stream closes it.
async fn identify(stream: &UnixStream, agent: &Shared) -> Option<Peer> {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            tracing::warn!(error = %e, "unix connection without peer credentials refused");
            return None;
        }
    };
    let source = format!("unix uid {uid}");
    if uid == 0 {
        return Some(Peer {
            user: "root".into(),
            source,
            recovery: true,
        });
    }
    // NSS lookups may block (LDAP, sssd): keep them off the runtime.
    let name = tokio::task::spawn_blocking(move || user_name(uid))
        .await
        .ok()
        .flatten();
    match name {
        Some(user) if agent.users.current().contains(&user) => Some(Peer {
            user,
            source,
            recovery: false,
        }),
        Some(user) => {
            tracing::warn!(uid, %user, "unix connection refused: not a configured user");
            None
        }
        None => {
            tracing::warn!(uid, "unix connection refused: uid has no account name");
            None
        }
    }
}

/// The account name of `uid` (getpwuid_r), if it has one.
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `passwd` is plain data (integers and pointers), for which
        // all-zero is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r fills `pwd` with pointers into `buf`, of the
        // length given, which outlives every use of them below.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            let bigger = buf.len() * 2;
            buf.resize(bigger, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name is a NUL-terminated string in `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return name.to_str().ok().map(str::to_owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
