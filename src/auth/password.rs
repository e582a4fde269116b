//! Password hashes: argon2id (PHC string, `$argon2id$...`) for everything we
//! create, and sha512-crypt (`$6$...`) so hashes from `/etc/shadow` or
//! `mkpasswd -m sha-512` can be pasted into the configuration.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;

/// Which scheme a stored hash uses; anything else is refused at load time
/// so a typo in the config does not silently lock a user out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Argon2,
    Sha512Crypt,
}

/// Recognises the scheme of `hash`, or says why it is not usable.
pub fn scheme(hash: &str) -> Result<Scheme, String> {
    if hash.starts_with("$6$") {
        // sha512_check reports format errors only when checking, so probe
        // the shape here: `$6$[rounds=N$]salt$hash`.
        let parts = hash.split('$').count();
        if parts == 4 || parts == 5 {
            return Ok(Scheme::Sha512Crypt);
        }
        return Err("malformed sha512-crypt hash".into());
    }
    if hash.starts_with("$argon2") {
        return PasswordHash::new(hash)
            .map(|_| Scheme::Argon2)
            .map_err(|e| format!("malformed argon2 hash: {e}"));
    }
    Err("unsupported password hash (want $argon2id$... or $6$...)".into())
}

/// True if `password` matches `hash`. Comparison of the derived values is
/// constant-time in both crates (argon2 via `password-hash`'s `Output`,
/// sha-crypt via `subtle`). CPU-heavy: call from a blocking thread.
pub fn verify(password: &str, hash: &str) -> bool {
    match scheme(hash) {
        Ok(Scheme::Argon2) => match PasswordHash::new(hash) {
            // Parameters (memory, iterations) come from the hash itself.
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        },
        Ok(Scheme::Sha512Crypt) => sha_crypt::sha512_check(password, hash).is_ok(),
        Err(_) => false,
    }
}

/// Hashes `password` with argon2id (crate defaults: 19 MiB, 2 passes) and
/// a random salt, as a PHC string.
pub fn hash_argon2id(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// A fresh random password: `len` characters of [A-Za-z0-9] from the OS
/// RNG (24 characters ≈ 142 bits).
pub fn random_password(len: usize) -> String {
    Alphanumeric.sample_string(&mut OsRng, len)
}

/// Burns roughly the time of a real verification, so probing for user
/// names by timing learns nothing. The hash is of a random password and
/// is computed once per process.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(hash) = DUMMY.get_or_init(|| hash_argon2id(&random_password(24)).ok()) {
        let _ = verify(password, hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_roundtrip() -> Result<(), String> {
        let h = hash_argon2id("s3cret")?;
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", &h));
        assert!(!verify("s3cret ", &h));
        Ok(())
    }

    #[test]
    fn sha512_crypt() {
        // openssl passwd -6 -salt saltsalt secret
        let h = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        assert_eq!(scheme(h), Ok(Scheme::Sha512Crypt));
        assert!(verify("secret", h));
        assert!(!verify("Secret", h));
    }

    #[test]
    fn rejects_unknown_schemes() {
        assert!(scheme("$1$abc$def").is_err());
        assert!(scheme("plaintext").is_err());
        assert!(!verify("plaintext", "plaintext"));
    }

    #[test]
    fn random_passwords_are_long_and_distinct() {
        let a = random_password(24);
        assert_eq!(a.len(), 24);
        assert_ne!(a, random_password(24));
    }
}
