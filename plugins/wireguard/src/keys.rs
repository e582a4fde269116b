//! WireGuard keys: Curve25519 private/public keys and preshared keys, in the
//! base64 text form `wg genkey` / `wg pubkey` / `wg genpsk` print.
//!
//! Secret keys never appear in logs: [`SecretKey`]'s `Debug` is redacted and
//! it has no `Display`.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore as _;

/// Length of every WireGuard key in bytes.
pub const KEY_LEN: usize = 32;

/// A key that failed to decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn decode(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| KeyError(format!("not valid base64 ({e})")))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        KeyError(format!(
            "decodes to {} bytes, a WireGuard key is {KEY_LEN} bytes (44 base64 characters)",
            bytes.len()
        ))
    })
}

/// A public key (peer identity). Not secret: `Debug`/`Display` print base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode(text).map(PublicKey)
    }
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// A private key or a preshared key. `Debug` prints `<redacted>`; there is no
/// `Display`, the base64 form needs an explicit [`SecretKey::expose_base64`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretKey(pub [u8; KEY_LEN]);

impl SecretKey {
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode(text).map(SecretKey)
    }

    /// A fresh random key, clamped as a Curve25519 private key (what
    /// `wg genkey` prints; clamping is harmless for a preshared key).
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        SecretKey(bytes)
    }

    /// 32 random bytes (`wg genpsk`).
    pub fn generate_psk() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// The secret in base64. Only for writing it where it belongs (the
    /// datastore, the backend); never for logs.
    pub fn expose_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The secret in hex, for the `wg` UAPI socket's `get` (root only);
    /// never for logs.
    pub fn expose_hex(&self) -> String {
        hex(&self.0)
    }

    /// The public key of this private key (X25519 base point multiplication).
    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // Best effort; volatile so the compiler keeps the wipe.
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned `&mut u8` into our own array.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A key in the 64-hex-digit form of the `wg` UAPI; `None` unless exactly
/// that (no sign, no spaces).
pub(crate) fn from_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    let text = text.as_bytes();
    if text.len() != KEY_LEN * 2 || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, pair) in text.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A new private key in base64, like `wg genkey` (the caller adds the
/// newline).
pub fn genkey() -> String {
    SecretKey::generate().expose_base64()
}

/// The public key of a base64 private key, like `wg pubkey`.
pub fn pubkey(private_b64: &str) -> Result<String, KeyError> {
    Ok(SecretKey::from_base64(private_b64)?
        .public_key()
        .to_base64())
}

/// A new preshared key in base64, like `wg genpsk`.
pub fn genpsk() -> String {
    SecretKey::generate_psk().expose_base64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genkey_pubkey_roundtrip_and_format() {
        let k = genkey();
        assert_eq!(k.len(), 44);
        assert!(k.ends_with('='));
        let p = pubkey(&k).unwrap();
        assert_eq!(p.len(), 44);
        assert_ne!(p, k);
        assert_eq!(genpsk().len(), 44);
    }

    #[test]
    fn pubkey_matches_wireguard_test_vector() {
        // RFC 7748 section 6.1 (Alice): private/public.
        let private =
            hex_to_b64("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex_to_b64("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(pubkey(&private).unwrap(), public);
    }

    fn hex_to_b64(h: &str) -> String {
        STANDARD.encode(from_hex(h).unwrap())
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert!(pubkey("YWJj").unwrap_err().0.contains("bytes"));
        assert!(pubkey("!!!!").unwrap_err().0.contains("base64"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let k = SecretKey::generate();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&k.expose_base64()));
        assert!(dbg.contains("redacted"));
    }
}
