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
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Set to false to serve only the Unix socket (behind OpenSSH's sshd).
    pub enabled: bool,
    pub listen: Vec<SocketAddr>,
    /// Default: `<state_dir>/ssh_host_ed25519_key`, generated on first start.
    pub host_key: Option<PathBuf>,
    /// Seconds a client has to authenticate.
    pub auth_timeout_secs: u64,
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
        }
    }
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            enabled: true,
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 830))],
            host_key: None,
            auth_timeout_secs: 60,
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
        }
    }
}

impl Default for WireguardConfig {
    fn default() -> Self {
        WireguardConfig {
            enabled: true,
            backend: "auto".into(),
            uapi_dir: PathBuf::from("/var/run/wireguard"),
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
        assert!(c.users.is_empty());
        assert_eq!(c.uapi_dir(), Some(PathBuf::from("/var/run/wireguard")));
    }
}
