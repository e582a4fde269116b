//! The SSH server's host key: loaded from `Config::host_key_path()`, or
//! generated (ed25519) on first start and stored in OpenSSH format so that
//! `ssh-keygen -l -f` and friends can read it.

use std::io;
use std::path::Path;

use rand::rngs::OsRng;
use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey};

use super::files::write_private_atomic;

/// Loads the host key at `path`, generating it first if the file does not
/// exist. An existing file that cannot be parsed is an error, never
/// silently replaced: clients have pinned that key.
pub fn load_or_generate(path: &Path) -> io::Result<PrivateKey> {
    match std::fs::read(path) {
        Ok(bytes) => load(path, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => generate(path),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot read host key {}: {e}", path.display()),
        )),
    }
}

fn load(path: &Path, bytes: &[u8]) -> io::Result<PrivateKey> {
    let key = PrivateKey::from_openssh(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "host key {} is not an OpenSSH private key: {e}",
                path.display()
            ),
        )
    })?;
    if key.is_encrypted() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "host key {} is encrypted; a host key must not have a passphrase",
                path.display()
            ),
        ));
    }
    tracing::info!(
        path = %path.display(),
        fingerprint = %key.public_key().fingerprint(HashAlg::Sha256),
        "loaded SSH host key"
    );
    Ok(key)
}

fn generate(path: &Path) -> io::Result<PrivateKey> {
    // ssh-key's own `random()` wants a newer rand_core than ours, so draw
    // the 32-byte seed from the OS and expand it.
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    // Best effort: the key object owns its copy (and zeroizes it on drop).
    seed.fill(0);
    std::hint::black_box(&seed);
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| io::Error::other(format!("cannot encode host key: {e}")))?;
    write_private_atomic(path, text.as_bytes()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write host key {}: {e}", path.display()),
        )
    })?;
    tracing::info!(
        path = %path.display(),
        fingerprint = %key.public_key().fingerprint(HashAlg::Sha256),
        "generated SSH host key"
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_then_reloads_same_key() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("wgnc-hostkey-{}", std::process::id()));
        let path = dir.join("state").join("ssh_host_ed25519_key");
        let first = load_or_generate(&path)?;
        let second = load_or_generate(&path)?;
        assert_eq!(
            first.public_key().key_data(),
            second.public_key().key_data()
        );
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir.join("state"))?.permissions().mode() & 0o777,
            0o700
        );
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn garbage_is_an_error_not_overwritten() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("wgnc-hostkey-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("key");
        std::fs::write(&path, "not a key")?;
        assert!(load_or_generate(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path)?, "not a key");
        std::fs::remove_dir_all(&dir)
    }
}
