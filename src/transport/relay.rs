//! `wgnetconf relay [--socket PATH]`: the `Subsystem netconf` command for
//! OpenSSH's sshd. sshd has authenticated the user and runs us as that
//! user; we splice stdin/stdout to the agent's Unix socket, where the agent
//! identifies the user by uid (SO_PEERCRED). Blocking std I/O: one thread
//! per direction, nothing else to do.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Runs the relay to completion; returns the process exit code (0: the
/// agent closed the session; 1: could not connect, or an I/O error).
pub fn run(socket: &Path) -> i32 {
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "wgnetconf relay: cannot connect to the agent at {}: {e} (is `wgnetconf serve` running?)",
                socket.display()
            );
            return 1;
        }
    };
    let to_agent = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wgnetconf relay: {e}");
            return 1;
        }
    };

    // stdin → agent. At EOF, half-close so the agent sees the end of input
    // but can still finish writing replies. This thread is not joined: if
    // the agent hangs up first, it may stay blocked on stdin, and returning
    // from main ends it.
    std::thread::spawn(move || pump_stdin(to_agent));

    pump_to_stdout(stream, socket)
}

fn pump_stdin(mut to_agent: UnixStream) {
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to_agent.write_all(&buf[..n]).is_err() {
                    // The agent is gone; the other direction reports it.
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = to_agent.shutdown(Shutdown::Write);
}

/// agent → stdout until the agent closes. Flushes after every read:
/// NETCONF messages do not end in newlines, so line buffering would hold
/// them back.
fn pump_to_stdout(mut from_agent: UnixStream, socket: &Path) -> i32 {
    let mut stdout = io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0usize;
    loop {
        match from_agent.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                if let Err(e) = stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()) {
                    // The SSH client went away: not our error to report.
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return 0;
                    }
                    eprintln!("wgnetconf relay: writing to stdout: {e}");
                    return 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The agent closed the session while input we sent was still
            // unread (say, right after <close-session> or a framing error):
            // on a Unix socket that reads as a reset, but it is just the end.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && total > 0 => break,
            Err(e) => {
                eprintln!("wgnetconf relay: reading from {}: {e}", socket.display());
                return 1;
            }
        }
    }
    if total == 0 {
        // The agent closes without a word when it refuses the uid.
        eprintln!(
            "wgnetconf relay: the agent at {} closed the connection without a greeting \
             (is this user in the agent's configured users?)",
            socket.display()
        );
        return 1;
    }
    0
}
