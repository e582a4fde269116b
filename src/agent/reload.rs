//! Reload without restart (`systemctl reload`, SIGHUP): the configuration
//! file is read again and what can change live is applied — users, their
//! keys and passwords, NACM external groups, session and login limits —
//! without dropping established sessions of users who remain; sessions of
//! removed users are closed. Settings that need a restart (listen
//! addresses, directories, socket, backend) are reported in the log.
//!
//! `wgnetconf reload` (the unit's `ExecReload`) makes it synchronous, as
//! systemd 252 needs: it sends SIGHUP and waits until the agent's status
//! file (`<run_dir>/reload-status`) counts one more reload, then exits 0 if
//! it applied, 1 if not (the agent then keeps what it had).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::users::{Reveal, UserDb};
use crate::config::Config;
use crate::session::{Limits, Shared};

/// The agent's reload status, in its run directory.
pub fn status_path(run_dir: &Path) -> PathBuf {
    run_dir.join("reload-status")
}

/// What the status file says.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    pub pid: u32,
    pub reloads: u64,
    pub result: String,
}

impl Status {
    fn parse(text: &str) -> Option<Status> {
        let mut pid = None;
        let mut reloads = None;
        let mut result = String::new();
        for line in text.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            match k {
                "pid" => pid = v.parse().ok(),
                "reloads" => reloads = v.parse().ok(),
                "result" => result = v.to_string(),
                _ => {}
            }
        }
        Some(Status {
            pid: pid?,
            reloads: reloads?,
            result,
        })
    }

    fn read(run_dir: &Path) -> Option<Status> {
        Status::parse(&std::fs::read_to_string(status_path(run_dir)).ok()?)
    }

    /// Written atomically: the waiting `wgnetconf reload` never reads half.
    pub fn write(&self, run_dir: &Path) {
        let text = format!(
            "pid {}\nreloads {}\nresult {}\n",
            self.pid,
            self.reloads,
            self.result.replace('\n', " ")
        );
        if let Err(e) =
            crate::auth::files::write_private_atomic(&status_path(run_dir), text.as_bytes())
        {
            tracing::warn!(error = %e, "cannot write the reload status");
        }
    }
}

/// Reads the configuration again and applies what a reload may change.
/// Returns a one-line summary, or why nothing was applied.
pub async fn apply(
    agent: &Arc<Shared>,
    config_path: Option<&Path>,
    reveal: Reveal,
) -> Result<String, String> {
    let mut new = match config_path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let restart = needs_restart(&agent.config, &new);
    if !restart.is_empty() {
        tracing::warn!(
            settings = %restart.join(", "),
            "changed settings that take effect only after a restart (systemctl restart wgnetconf)"
        );
    }
    // Generated users live in the state directory the agent runs with.
    new.state_dir = agent.config.state_dir.clone();
    new.run_dir = agent.config.run_dir.clone();
    let cfg = new.clone();
    let db = tokio::task::spawn_blocking(move || UserDb::load(&cfg, reveal))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let groups = db.groups();
    let count = db.names().count();
    // NACM first: a session of a remaining user whose groups shrank must
    // not act with the old ones once the new database is visible.
    let core = agent.core.clone();
    tokio::task::spawn_blocking(move || match core.lock() {
        Ok(core) => {
            core.nacm.set_external_groups(groups);
            Ok(())
        }
        Err(_) => Err("the core lock is poisoned".to_string()),
    })
    .await
    .map_err(|e| e.to_string())??;
    let old = agent.users.replace(db);
    agent.set_limits(Limits::of(&new));
    agent.input_budget.set_cap(new.netconf.max_buffered_bytes);
    let current = agent.users.current();
    let closed = agent
        .sessions
        .kill_where(|peer| !peer.recovery && !current.contains(&peer.user));
    let mut removed: Vec<&str> = old.names().filter(|n| !current.contains(n)).collect();
    removed.sort_unstable();
    tracing::info!(
        users = count,
        removed = ?removed,
        closed_sessions = ?closed,
        "reloaded: users, keys, groups and limits applied"
    );
    let mut summary = format!("{count} users");
    if !closed.is_empty() {
        summary += &format!(", closed sessions {closed:?} of removed users");
    }
    if !restart.is_empty() {
        summary += &format!("; needs a restart: {}", restart.join(", "));
    }
    Ok(summary)
}

/// The settings that differ and that only a restart applies.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |changed: bool, name: &'static str| {
        if changed {
            out.push(name);
        }
    };
    check(old.state_dir != new.state_dir, "state_dir");
    check(old.run_dir != new.run_dir, "run_dir");
    check(old.yang_dirs != new.yang_dirs, "yang_dirs");
    check(old.ssh.enabled != new.ssh.enabled, "ssh.enabled");
    check(old.ssh.listen != new.ssh.listen, "ssh.listen");
    check(old.ssh.host_key != new.ssh.host_key, "ssh.host_key");
    check(old.unix.enabled != new.unix.enabled, "unix.enabled");
    check(old.unix.socket != new.unix.socket, "unix.socket");
    check(
        old.wireguard.enabled != new.wireguard.enabled,
        "wireguard.enabled",
    );
    check(
        old.wireguard.backend != new.wireguard.backend,
        "wireguard.backend",
    );
    out
}

/// `wgnetconf reload`: signals the agent and waits for its answer. The
/// pid is `pid` (the unit passes `$MAINPID`) or the status file's.
pub fn request(config_path: Option<&Path>, pid: Option<u32>, timeout: Duration) -> i32 {
    // A file that does not parse is refused here, before the agent is
    // bothered (it would refuse it too, and this is where its run_dir is
    // read from).
    let config = match config_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("wgnetconf: {e}: not reloading; the agent keeps its configuration");
                return 1;
            }
        },
        None => Config::default(),
    };
    let run_dir = &config.run_dir;
    let Some(before) = Status::read(run_dir) else {
        eprintln!(
            "wgnetconf: no agent status in {}: is the agent running (and ready)?",
            status_path(run_dir).display()
        );
        return 1;
    };
    let pid = pid.unwrap_or(before.pid);
    if pid != before.pid {
        eprintln!(
            "wgnetconf: the status file is from pid {}, not {pid}: is the agent still starting?",
            before.pid
        );
        return 1;
    }
    let Ok(target) = libc::pid_t::try_from(pid) else {
        eprintln!("wgnetconf: bad pid {pid}");
        return 1;
    };
    // SAFETY: kill(2) with a pid and a signal number; no memory involved.
    if unsafe { libc::kill(target, libc::SIGHUP) } != 0 {
        eprintln!(
            "wgnetconf: cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    // Two reloads asked for at once may be served by one (signals
    // coalesce); either way the answer read is one that started after
    // this request's signal.
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = Status::read(run_dir) {
            if s.pid == pid && s.reloads > before.reloads {
                return if s.result.starts_with("ok") {
                    println!("wgnetconf: reloaded: {}", s.result);
                    0
                } else {
                    eprintln!("wgnetconf: reload {}", s.result);
                    1
                };
            }
        }
        // SAFETY: as above; signal 0 only checks that the process exists.
        if unsafe { libc::kill(target, 0) } != 0 {
            eprintln!("wgnetconf: the agent (pid {pid}) exited during the reload");
            return 1;
        }
        if Instant::now() > deadline {
            eprintln!("wgnetconf: no answer from the agent within {timeout:?}");
            return 1;
        }
        // Polling a file the agent replaces atomically: the agent's answer
        // is the condition, this is only how often we look.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Status {
            pid: 42,
            reloads: 3,
            result: "failed: bad\nline".into(),
        };
        s.write(dir.path());
        let back = Status::read(dir.path()).expect("status");
        assert_eq!(back.pid, 42);
        assert_eq!(back.reloads, 3);
        assert_eq!(back.result, "failed: bad line");
    }

    #[test]
    fn restart_settings_are_named() {
        let old = Config::default();
        let mut new = Config::default();
        new.netconf.hello_timeout_secs = 5;
        assert!(needs_restart(&old, &new).is_empty());
        new.ssh.listen = vec!["127.0.0.1:8300".parse().expect("addr")];
        new.wireguard.backend = "boringtun".into();
        assert_eq!(
            needs_restart(&old, &new),
            vec!["ssh.listen", "wireguard.backend"]
        );
    }
}
