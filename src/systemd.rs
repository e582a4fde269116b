//! The service manager's side channel (sd_notify(3), without libsystemd):
//! one datagram per state change to `$NOTIFY_SOCKET` (`READY=1`,
//! `RELOADING=1`, `STOPPING=1`, `STATUS=...`, `WATCHDOG=1`), the watchdog
//! interval systemd asks for, and whether stderr is the journal. Outside
//! systemd (no `$NOTIFY_SOCKET`) every call is a no-op, so the agent runs
//! the same from a shell.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, read once at start: the variable is inherited
/// by nothing we spawn, and reading it again later would race with a
/// future `unset`.
#[derive(Clone, Debug)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier {
            socket: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// True when a service manager listens (`Type=notify`).
    pub fn active(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends `state` (newline-separated `KEY=value` lines). Errors are
    /// returned, not fatal: a lost `STATUS=` must not stop the agent, and a
    /// lost `READY=1` is reported by systemd's start timeout.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some(path) = &self.socket else {
            return Ok(());
        };
        let sock = UnixDatagram::unbound()?;
        // Never block: a datagram socket whose reader lags (its queue holds
        // net.unix.max_dgram_qlen messages) blocks the sender, and this runs
        // on the runtime's threads. A notification that cannot go now is
        // dropped and reported; the next one says the same or more.
        sock.set_nonblocking(true)?;
        match path.strip_prefix('@') {
            // Abstract namespace: '@' stands for the leading NUL byte.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(state.as_bytes(), &addr)?;
            }
            None => {
                sock.send_to(state.as_bytes(), path)?;
            }
        }
        Ok(())
    }

    /// [`Notifier::notify`] that logs a failure instead of returning it.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }
}

/// How often to ping the watchdog: half of `$WATCHDOG_USEC` (as
/// sd_watchdog_enabled(3) advises), if it is meant for this process
/// (`$WATCHDOG_PID` absent or ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// `CLOCK_MONOTONIC` in microseconds, for `MONOTONIC_USEC=` with
/// `RELOADING=1` (systemd 253+ matches a reload to its request with it;
/// 252 ignores it).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_MONOTONIC
    // always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// True if stderr is the journal: `$JOURNAL_STREAM` names the device and
/// inode of our stderr (systemd.exec(5)). Not just "the variable is set":
/// a child of a service inherits it with another stderr.
pub fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: `stat` is plain data, for which all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills a `stat` we own; fd 2 may be closed, then it
    // fails and we say no.
    let rc = unsafe { libc::fstat(2, &mut st) };
    rc == 0 && st.st_dev == dev && st.st_ino == ino
}

/// True when the agent runs as a systemd service: a notify socket, or
/// stderr going to the journal. Then secrets meant for the console (the
/// first start's admin password) go to a file instead.
pub fn under_systemd(notifier: &Notifier) -> bool {
    notifier.active() || stderr_is_journal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path)?;
        let n = Notifier {
            socket: Some(path.display().to_string()),
        };
        n.notify("READY=1\nSTATUS=up")?;
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf)?;
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
        Ok(())
    }

    #[test]
    fn sends_to_an_abstract_socket() -> io::Result<()> {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("wgnetconf-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let rx = UnixDatagram::bind_addr(&addr)?;
        let n = Notifier {
            socket: Some(format!("@{name}")),
        };
        n.notify("WATCHDOG=1")?;
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf)?;
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        Ok(())
    }

    #[test]
    fn a_reader_that_lags_does_not_block_the_sender() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let _rx = UnixDatagram::bind(&path)?;
        let n = Notifier {
            socket: Some(path.display().to_string()),
        };
        // Nobody reads: the queue fills (net.unix.max_dgram_qlen, 10 by
        // default), then sends fail at once instead of blocking forever.
        let refused = (0..10_000).find_map(|_| n.notify("WATCHDOG=1").err());
        let e = refused.expect("10,000 datagrams queued in an unread socket");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        Ok(())
    }

    #[test]
    fn no_socket_is_a_no_op() {
        let n = Notifier { socket: None };
        assert!(!n.active());
        assert!(n.notify("READY=1").is_ok());
    }
}
