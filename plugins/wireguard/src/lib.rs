//! wgnetconf WireGuard plugin.
pub mod backend;
pub mod keys;
pub use keys::{genkey, genpsk, pubkey};
