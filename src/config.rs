//! The agent's configuration file (TOML). Every field has a default so an
//! empty file (or none) gives a working agent; see `wgnetconf.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where running/startup, the SSH host key and generated users live.
    pub state_dir: PathBuf,
    /// Where running is kept between agent restarts. On a device this is a
    /// tmpfs (lost at reboot, when startup becomes running again).
    pub run_dir: PathBuf,
    /// Extra YANG directories; every module found there is loaded. The
    /// repository's `yang/` and the IETF modules are always searched.
    pub yang_dirs: Vec<PathBuf>,
    pub ssh: SshConfig,
    pub unix: UnixConfig,
    pub netconf: NetconfConfig,
    /// Users allowed to log in. Empty: the first start creates `admin`.
    pub users: Vec<UserConfig>,
    pub wireguard: WireguardConfig,
    pub history: HistoryConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Commits kept in `<state_dir>/history` (oldest go first); 0 turns
    /// the history off.
    pub entries: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { entries: 50 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Set to false to serve only the Unix socket (behind OpenSSH's sshd).
    pub enabled: bool,
    pub listen: Vec<SocketAddr>,
    /// Default: `<state_dir>/ssh_host_ed25519_key`, generated on first start.
    pub host_key: Option<PathBuf>,
    /// Seconds a client has to authenticate (OpenSSH's LoginGraceTime).
    pub auth_timeout_secs: u64,
    /// Connections not yet authenticated, in total (OpenSSH's MaxStartups);
    /// more are closed at accept.
    pub max_unauthenticated: usize,
    /// Once half of those are in use, a source holding this many gets no
    /// more: an IPv4 address or an IPv6 /64 (PerSourceMaxStartups,
    /// PerSourceNetBlockSize 32:64).
    pub max_unauthenticated_per_source: usize,
    /// Penalty seconds a source accrues per connection that failed to
    /// authenticate, that closed without trying, that reached the
    /// pre-auth timeout (PerSourcePenalties authfail, noauth,
    /// grace-exceeded). 0 disables that penalty.
    pub penalty_authfail_secs: u64,
    pub penalty_noauth_secs: u64,
    pub penalty_timeout_secs: u64,
    /// A source is refused once its accrued penalty reaches this (min),
    /// for the accrued time, never more than `penalty_max_secs` (max).
    pub penalty_min_secs: u64,
    pub penalty_max_secs: u64,
    /// Sources with a penalty tracked at once; past it new sources go
    /// unpenalised (max-sources, overflow:permissive).
    pub penalty_max_sources: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnixConfig {
    /// Socket the `wgnetconf relay` subsystem (run by sshd) connects to.
    /// Default: `<run_dir>/netconf.sock`. The run directory is 0755 (its
    /// files are 0600) so the relay, running as an sshd-authenticated user,
    /// can reach the socket; the agent admits it by its uid.
    pub socket: Option<PathBuf>,
    pub enabled: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetconfConfig {
    /// A client must send its `<hello>` within this many seconds.
    pub hello_timeout_secs: u64,
    /// Largest message (rpc) accepted, in bytes.
    pub max_message_bytes: usize,
    /// Bytes of incoming messages not yet whole, all sessions together; a
    /// session whose message would pass it gets resource-denied and is
    /// closed.
    pub max_buffered_bytes: usize,
    /// NETCONF sessions at once, over every transport; one more is refused
    /// (SSH: the `netconf` subsystem request fails; Unix socket: closed).
    pub max_sessions: usize,
    /// Element nesting depth of one message.
    pub max_depth: usize,
    /// Attributes (namespace declarations included) on one element.
    pub max_attributes_per_element: usize,
    /// Attributes (namespace declarations included) in one message.
    pub max_attributes_per_message: usize,
    /// Length in bytes of an XPath filter's `select`.
    pub max_xpath_bytes: usize,
    /// A session whose peer takes no byte of a reply (or notification)
    /// for this many seconds is closed, its locks released.
    pub write_timeout_secs: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// argon2id (`$argon2id$...`) or sha512-crypt (`$6$...`) hash.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// OpenSSH `authorized_keys` lines.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// A file in OpenSSH `authorized_keys` format.
    #[serde(default)]
    pub authorized_keys_file: Option<PathBuf>,
    /// NACM groups of this user (RFC 8341 external groups), in addition to
    /// those `/nacm/groups` names it in.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WireguardConfig {
    /// Load the WireGuard plugin at all.
    pub enabled: bool,
    /// `auto`, `kernel`, `boringtun` (or `memory`, for tests only).
    pub backend: String,
    /// Where userspace (boringtun) interfaces serve `wg`'s UAPI socket
    /// `<uapi_dir>/<name>.sock`; empty: no socket. Not per network
    /// namespace: agents in different namespaces need different ones.
    pub uapi_dir: PathBuf,
    /// Seconds between drift checks (the data plane compared with running,
    /// README "Drift detection and repair"); 0: only on `<check-drift>`.
    pub drift_check_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("/var/lib/wgnetconf"),
            run_dir: PathBuf::from("/run/wgnetconf"),
            yang_dirs: Vec::new(),
            ssh: SshConfig::default(),
            unix: UnixConfig::default(),
            netconf: NetconfConfig::default(),
            users: Vec::new(),
            wireguard: WireguardConfig::default(),
            history: HistoryConfig::default(),
        }
    }
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            enabled: true,
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 830))],
            host_key: None,
            auth_timeout_secs: 20,
            max_unauthenticated: 64,
            max_unauthenticated_per_source: 8,
            penalty_authfail_secs: 5,
            penalty_noauth_secs: 1,
            penalty_timeout_secs: 10,
            penalty_min_secs: 15,
            penalty_max_secs: 600,
            penalty_max_sources: 65536,
        }
    }
}

impl Default for UnixConfig {
    fn default() -> Self {
        UnixConfig {
            socket: None,
            enabled: true,
        }
    }
}

impl Default for NetconfConfig {
    fn default() -> Self {
        NetconfConfig {
            hello_timeout_secs: 60,
            max_message_bytes: 64 * 1024 * 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            max_sessions: 64,
            max_depth: 128,
            max_attributes_per_element: 64,
            max_attributes_per_message: 1_000_000,
            max_xpath_bytes: 4096,
            write_timeout_secs: 60,
        }
    }
}

impl Default for WireguardConfig {
    fn default() -> Self {
        WireguardConfig {
            enabled: true,
            backend: "auto".into(),
            uapi_dir: PathBuf::from("/var/run/wireguard"),
            drift_check_secs: 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn host_key_path(&self) -> PathBuf {
        self.ssh
            .host_key
            .clone()
            .unwrap_or_else(|| self.state_dir.join("ssh_host_ed25519_key"))
    }

    /// The `wg` UAPI directory, `None` when configured empty.
    pub fn uapi_dir(&self) -> Option<PathBuf> {
        let d = &self.wireguard.uapi_dir;
        (!d.as_os_str().is_empty()).then(|| d.clone())
    }

    pub fn socket_path(&self) -> PathBuf {
        self.unix
            .socket
            .clone()
            .unwrap_or_else(|| self.run_dir.join("netconf.sock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_to_defaults() {
        let text = include_str!("../wgnetconf.example.toml");
        let c = Config::parse(text).expect("example config parses");
        assert_eq!(c.ssh.listen, SshConfig::default().listen);
        assert_eq!(c.netconf.max_message_bytes, 64 * 1024 * 1024);
        // The limits the example documents are the defaults.
        let (s, d) = (&c.ssh, SshConfig::default());
        assert_eq!(
            (
                s.auth_timeout_secs,
                s.max_unauthenticated,
                s.max_unauthenticated_per_source
            ),
            (
                d.auth_timeout_secs,
                d.max_unauthenticated,
                d.max_unauthenticated_per_source
            )
        );
        assert_eq!(
            (
                s.penalty_authfail_secs,
                s.penalty_noauth_secs,
                s.penalty_timeout_secs,
                s.penalty_min_secs,
                s.penalty_max_secs,
                s.penalty_max_sources
            ),
            (
                d.penalty_authfail_secs,
                d.penalty_noauth_secs,
                d.penalty_timeout_secs,
                d.penalty_min_secs,
                d.penalty_max_secs,
                d.penalty_max_sources
            )
        );
        let (n, d) = (&c.netconf, NetconfConfig::default());
        assert_eq!(
            (
                n.max_sessions,
                n.max_depth,
                n.max_attributes_per_element,
                n.max_attributes_per_message,
                n.max_xpath_bytes
            ),
            (
                d.max_sessions,
                d.max_depth,
                d.max_attributes_per_element,
                d.max_attributes_per_message,
                d.max_xpath_bytes
            )
        );
        assert!(c.users.is_empty());
        assert_eq!(c.uapi_dir(), Some(PathBuf::from("/var/run/wireguard")));
        assert_eq!(
            c.wireguard.drift_check_secs,
            WireguardConfig::default().drift_check_secs
        );
        assert_eq!(WireguardConfig::default().drift_check_secs, 30);
    }
}
