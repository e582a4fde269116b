//! Password hashes: argon2id (PHC string, `$argon2id$...`) for everything we
//! create, and sha512-crypt (`$6$...`) so hashes from `/etc/shadow` or
//! `mkpasswd -m sha-512` can be pasted into the configuration.

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// OWASP's first recommendation for argon2id (Password Storage Cheat
/// Sheet): 19 MiB of memory, 2 passes, 1 lane.
const OWASP_M_KIB: u32 = 19 * 1024;
const OWASP_T: u32 = 2;
const OWASP_P: u32 = 1;

fn owasp_argon2id() -> Result<Argon2<'static>, String> {
    let params = Params::new(OWASP_M_KIB, OWASP_T, OWASP_P, None)
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Held for every verification, agent-wide: each argon2id check allocates
/// its memory cost (19 MiB for our hashes) for its whole run, so twenty
/// logins at once would otherwise hold twenty times that. One at a time
/// keeps the peak at one; the price is latency under a login burst.
static VERIFYING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// True if `password` matches `hash`. Comparison of the derived values is
/// constant-time in both crates (argon2 via `password-hash`'s `Output`,
/// sha-crypt via `subtle`). CPU-heavy: call from a blocking thread. Runs
/// one at a time across the process (see [`VERIFYING`]).
pub fn verify(password: &str, hash: &str) -> bool {
    // A poisoned lock only means another verification panicked; the
    // lock guards no data, so go on.
    let _one_at_a_time = VERIFYING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match scheme(hash) {
        Ok(Scheme::Argon2) => match PasswordHash::new(hash) {
            Ok(parsed) => verify_argon2(password, &parsed).unwrap_or(false),
            Err(_) => false,
        },
        Ok(Scheme::Sha512Crypt) => sha_crypt::sha512_check(password, hash).is_ok(),
        Err(_) => false,
    }
}

/// What `PasswordVerifier::verify_password` does, but with the working
/// memory mapped for this verification alone ([`Mapped`]). Measured with
/// the crate's own allocation: 20 logins at once, verified one at a time,
/// still grew the agent's peak RSS by ~190 MiB, because while one check
/// ran the other connections' small allocations were carved out of the
/// 19 MiB the previous check had freed, so the next one extended the heap.
/// Parameters (algorithm, version, memory, passes) come from the hash.
fn verify_argon2(password: &str, hash: &PasswordHash<'_>) -> Option<bool> {
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(hash).ok()?;
    let expected = hash.hash?;
    let mut salt_buf = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt_buf).ok()?;
    let mut out = vec![0u8; expected.len()];
    // The check maps 19 MiB (at OWASP's parameters) on top of whatever the
    // heap holds: give the heap's free pages back first, so the peak is
    // the live data plus one check, not plus what earlier work freed.
    crate::memory::release_free_memory();
    let memory = Mapped::new(params.block_count())?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        .ok()?;
    // Output's equality is constant-time.
    let got = Output::new_with_encoding(&out, expected.encoding()).ok()?;
    Some(got == expected)
}

/// argon2's working memory, mapped from the kernel for one verification
/// and unmapped when dropped, so it never becomes heap that other
/// allocations fragment.
struct Mapped {
    ptr: std::ptr::NonNull<Block>,
    blocks: usize,
}

impl Mapped {
    fn new(blocks: usize) -> Option<Mapped> {
        let bytes = blocks.checked_mul(std::mem::size_of::<Block>())?;
        if bytes == 0 {
            return None;
        }
        // SAFETY: an anonymous private mapping of `bytes` with no address
        // hint; the result is checked against MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Mapped {
            ptr: std::ptr::NonNull::new(p.cast())?,
            blocks,
        })
    }
}

impl AsMut<[Block]> for Mapped {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is `blocks` Blocks long, page-aligned (Block
        // needs 64), zero-filled by the kernel (all-zero is a valid Block:
        // it is plain u64s), and only reachable through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.blocks) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no slice of it
        // outlives `self`.
        unsafe {
            libc::munmap(
                self.ptr.as_ptr().cast(),
                self.blocks * std::mem::size_of::<Block>(),
            );
        }
    }
}

/// Hashes `password` with argon2id at OWASP's parameters (19 MiB, 2
/// passes, 1 lane) and a random salt, as a PHC string.
pub fn hash_argon2id(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    owasp_argon2id()?
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
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
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
