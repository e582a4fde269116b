//! The users allowed in: a password hash and/or authorized public keys per
//! user name. Built from `Config.users`; when that list is empty the agent
//! manages a generated `admin` user in `<state_dir>/users.toml` instead.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::public::KeyData;
use russh::keys::PublicKey;
use serde::{Deserialize, Serialize};

use super::files::write_private_atomic;
use super::password;
use crate::config::{Config, UserConfig};

/// The name of the user generated on first start when none is configured.
pub const GENERATED_ADMIN: &str = "admin";

/// Length of the generated admin password.
const GENERATED_PASSWORD_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum UserDbError {
    #[error("user {user:?}: {reason}")]
    Invalid { user: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("cannot create the admin user: {0}")]
    Generate(String),
}

#[derive(Debug)]
struct User {
    password_hash: Option<String>,
    /// NACM external groups.
    groups: Vec<String>,
    /// Keys from the config's `authorized_keys` lines, parsed once.
    keys: Vec<KeyData>,
    /// Re-read on every attempt, like sshd does, so edits apply at once.
    keys_file: Option<PathBuf>,
}

/// Who may log in and how. Cheap to share behind an `Arc`; read-only
/// (a reload builds a new one and swaps it in [`Users`]).
#[derive(Debug, Default)]
pub struct UserDb {
    users: HashMap<String, User>,
}

/// The user database the transports consult, swapped whole by a reload
/// (`systemctl reload`): every authentication reads the current one, so a
/// new key works at once, and a login in progress keeps the snapshot it
/// started with. The one place that holds it; sessions already open are
/// not affected (the reload closes those of removed users itself).
#[derive(Debug, Default)]
pub struct Users(std::sync::RwLock<std::sync::Arc<UserDb>>);

impl Users {
    pub fn new(db: UserDb) -> Users {
        Users(std::sync::RwLock::new(std::sync::Arc::new(db)))
    }

    /// The database now. A poisoned lock still holds a whole database
    /// (writers only assign an `Arc`), so it is used as it is.
    pub fn current(&self) -> std::sync::Arc<UserDb> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the database; returns the previous one.
    pub fn replace(&self, db: UserDb) -> std::sync::Arc<UserDb> {
        let new = std::sync::Arc::new(db);
        match self.0.write() {
            Ok(mut g) => std::mem::replace(&mut *g, new),
            Err(p) => std::mem::replace(&mut *p.into_inner(), new),
        }
    }
}

/// Where the first start's generated admin password goes: the console
/// (a person started the agent), or a 0600 file in the state directory
/// when the console is the journal (systemd), which must never hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    Console,
    File,
}

/// The file [`Reveal::File`] writes: `<state_dir>/initial-admin-password`.
pub fn initial_password_path(config: &Config) -> PathBuf {
    config.state_dir.join("initial-admin-password")
}

/// `users.toml`: the same `[[users]]` shape as the main configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserConfig>,
}

#[derive(Serialize)]
struct StoredUsers<'a> {
    users: Vec<StoredUser<'a>>,
}

#[derive(Serialize)]
struct StoredUser<'a> {
    name: &'a str,
    password_hash: &'a str,
    groups: Vec<String>,
}

impl UserDb {
    /// The user database for `config`: its `users` if any; otherwise the
    /// generated users in `<state_dir>/users.toml`, creating `admin` with a
    /// random password on first start (shown once as `reveal` says, only
    /// its hash kept in `users.toml`). There is no built-in default password.
    pub fn load(config: &Config, reveal: Reveal) -> Result<UserDb, UserDbError> {
        if !config.users.is_empty() {
            return UserDb::from_users(&config.users);
        }
        let path = generated_users_path(config);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: UsersFile =
                    toml::from_str(&text).map_err(|source| UserDbError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                let db = UserDb::from_users(&file.users)?;
                tracing::info!(path = %path.display(), users = db.users.len(), "loaded generated users");
                Ok(db)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_admin(&path, reveal, &initial_password_path(config))
            }
            Err(source) => Err(UserDbError::Io { path, source }),
        }
    }

    /// Builds the database from explicit user entries, checking every
    /// password hash and key line so mistakes show at startup, not at the
    /// first failed login.
    pub fn from_users(entries: &[UserConfig]) -> Result<UserDb, UserDbError> {
        let mut users = HashMap::new();
        for entry in entries {
            let invalid = |reason: String| UserDbError::Invalid {
                user: entry.name.clone(),
                reason,
            };
            if entry.name.is_empty() || entry.name.chars().any(|c| c.is_control() || c == ' ') {
                return Err(invalid("invalid user name".into()));
            }
            if let Some(hash) = &entry.password_hash {
                password::scheme(hash).map_err(invalid)?;
            }
            let mut keys = Vec::new();
            for (i, line) in entry.authorized_keys.iter().enumerate() {
                match parse_authorized_key(line) {
                    Ok(Some(key)) => keys.push(key.key_data().clone()),
                    Ok(None) => {}
                    Err(e) => return Err(invalid(format!("authorized_keys[{i}]: {e}"))),
                }
            }
            if let Some(file) = &entry.authorized_keys_file {
                if !file.exists() {
                    tracing::warn!(user = %entry.name, path = %file.display(), "authorized_keys_file does not exist (yet)");
                }
            }
            let user = User {
                password_hash: entry.password_hash.clone(),
                groups: entry.groups.clone(),
                keys,
                keys_file: entry.authorized_keys_file.clone(),
            };
            if users.insert(entry.name.clone(), user).is_some() {
                return Err(invalid("listed twice".into()));
            }
        }
        Ok(UserDb { users })
    }

    /// Every user's NACM external groups.
    pub fn groups(&self) -> HashMap<String, Vec<String>> {
        self.users
            .iter()
            .map(|(n, u)| (n.clone(), u.groups.clone()))
            .collect()
    }

    /// True if `name` is a configured user (whatever its credentials).
    pub fn contains(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// The configured user names, unordered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// True if `password` is right for `user`. Unknown users and users
    /// without a password still cost one hash computation, so timing does
    /// not reveal which names exist. CPU-heavy (argon2): call it from a
    /// blocking thread.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        match self
            .users
            .get(user)
            .and_then(|u| u.password_hash.as_deref())
        {
            Some(hash) => password::verify(password, hash),
            None => {
                password::dummy_verify(password);
                false
            }
        }
    }

    /// True if `key` is authorized for `user`: one of its configured lines
    /// or a line of its `authorized_keys_file` (read now). Compares the key
    /// material only, never the comment.
    pub fn key_authorized(&self, user: &str, key: &PublicKey) -> bool {
        let Some(u) = self.users.get(user) else {
            return false;
        };
        if u.keys.iter().any(|k| k == key.key_data()) {
            return true;
        }
        match &u.keys_file {
            Some(path) => file_authorizes(user, path, key.key_data()),
            None => false,
        }
    }
}

fn generated_users_path(config: &Config) -> PathBuf {
    config.state_dir.join("users.toml")
}

/// First start without configured users: make `admin` with a random
/// password. The file is written before the password is shown, so a shown
/// password always works.
fn create_admin(path: &Path, reveal: Reveal, reveal_path: &Path) -> Result<UserDb, UserDbError> {
    let secret = password::random_password(GENERATED_PASSWORD_LEN);
    let hash = password::hash_argon2id(&secret).map_err(UserDbError::Generate)?;
    let stored = StoredUsers {
        users: vec![StoredUser {
            name: GENERATED_ADMIN,
            password_hash: &hash,
            groups: vec![GENERATED_ADMIN_GROUP.into()],
        }],
    };
    let body = toml::to_string(&stored).map_err(|e| UserDbError::Generate(e.to_string()))?;
    let text = format!(
        "# Generated by wgnetconf on first start because no users were configured.\n\
         # Only an argon2id hash is stored. Replace with [[users]] in the config\n\
         # (which then takes precedence) or edit this file.\n{body}"
    );
    write_private_atomic(path, text.as_bytes()).map_err(|source| UserDbError::Io {
        path: path.to_owned(),
        source,
    })?;
    match reveal {
        // Deliberately not through tracing: log sinks must never see it.
        Reveal::Console => eprintln!(
            "wgnetconf: created user {GENERATED_ADMIN} with password {secret} (shown once)"
        ),
        // Under systemd stderr is the journal: the password goes to a file
        // only root reads, and the log says where, never what.
        Reveal::File => {
            write_private_atomic(reveal_path, format!("{secret}\n").as_bytes()).map_err(
                |source| UserDbError::Io {
                    path: reveal_path.to_owned(),
                    source,
                },
            )?;
            tracing::info!(
                path = %reveal_path.display(),
                user = GENERATED_ADMIN,
                "the initial admin password is in this file (mode 0600); delete it once read"
            );
        }
    }
    tracing::info!(path = %path.display(), user = GENERATED_ADMIN, "created the initial admin user");
    UserDb::from_users(&[UserConfig {
        name: GENERATED_ADMIN.into(),
        password_hash: Some(hash),
        authorized_keys: Vec::new(),
        authorized_keys_file: None,
        groups: vec![GENERATED_ADMIN_GROUP.into()],
    }])
}

/// The NACM group of the generated admin, which the first start's rule-list
/// permits everything (see `nacm::bootstrap`).
pub const GENERATED_ADMIN_GROUP: &str = "admin";

/// One `authorized_keys` line: `Ok(None)` for blanks and comments. Lines
/// with options (`from=`, `command=`, `restrict`, ...) are refused: we
/// cannot enforce them, and ignoring a restriction would widen access.
pub fn parse_authorized_key(line: &str) -> Result<Option<PublicKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    PublicKey::from_openssh(line).map(Some).map_err(|e| {
        format!("not a plain OpenSSH public key line (options are not supported): {e}")
    })
}

fn file_authorizes(user: &str, path: &Path, key: &KeyData) -> bool {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(%user, path = %path.display(), error = %e, "cannot read authorized_keys_file");
            return false;
        }
    };
    let mut found = false;
    for (n, line) in text.lines().enumerate() {
        match parse_authorized_key(line) {
            Ok(Some(k)) => found |= k.key_data() == key,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%user, path = %path.display(), line = n + 1, error = %e, "skipping authorized_keys line")
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4P2pvDXc1BNUPg+SJhOrZmlb9hZhJ0xR13dkHQZnxL a@host";

    fn user(name: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            password_hash: None,
            authorized_keys: Vec::new(),
            authorized_keys_file: None,
            groups: Vec::new(),
        }
    }

    #[test]
    fn password_and_keys() -> Result<(), Box<dyn std::error::Error>> {
        let mut alice = user("alice");
        alice.password_hash = Some(password::hash_argon2id("pw")?);
        alice.authorized_keys = vec!["# comment".into(), KEY_A.into()];
        let db = UserDb::from_users(&[alice, user("bob")])?;
        assert!(db.verify_password("alice", "pw"));
        assert!(!db.verify_password("alice", "nope"));
        assert!(!db.verify_password("bob", "pw"));
        assert!(!db.verify_password("carol", "pw"));
        let key = PublicKey::from_openssh(KEY_A)?;
        assert!(db.key_authorized("alice", &key));
        assert!(!db.key_authorized("bob", &key));
        assert!(db.contains("bob") && !db.contains("carol"));
        Ok(())
    }

    #[test]
    fn rejects_bad_entries() {
        let mut a = user("a");
        a.password_hash = Some("plain".into());
        assert!(UserDb::from_users(&[a]).is_err());
        let mut b = user("b");
        b.authorized_keys = vec![format!("from=\"10.0.0.1\" {KEY_A}")];
        assert!(UserDb::from_users(&[b]).is_err());
        assert!(UserDb::from_users(&[user("c"), user("c")]).is_err());
        assert!(UserDb::from_users(&[user("")]).is_err());
    }

    #[test]
    fn generated_admin_persists_hash_only() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("wgnc-users-{}", std::process::id()));
        let config = Config {
            state_dir: dir.clone(),
            ..Config::default()
        };
        let first = UserDb::load(&config, Reveal::Console)?;
        assert!(first.contains(GENERATED_ADMIN));
        let path = dir.join("users.toml");
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&path)?;
        assert!(text.contains("$argon2id$"));
        let again = UserDb::load(&config, Reveal::File)?;
        assert!(again.contains(GENERATED_ADMIN));
        assert_eq!(std::fs::read_to_string(&path)?, text);
        // Not created again: the file reveal happens at creation only.
        assert!(!initial_password_path(&config).exists());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn file_reveal_writes_a_private_file() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let config = Config {
            state_dir: dir.path().join("state"),
            ..Config::default()
        };
        let db = UserDb::load(&config, Reveal::File)?;
        let file = initial_password_path(&config);
        assert_eq!(
            std::fs::metadata(&file)?.permissions().mode() & 0o777,
            0o600
        );
        let secret = std::fs::read_to_string(&file)?;
        assert!(db.verify_password(GENERATED_ADMIN, secret.trim_end()));
        Ok(())
    }
}
