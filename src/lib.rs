//! wgnetconf: a NETCONF server (RFC 6241/6242) that manages WireGuard tunnels.
//!
//! The layers, each a module, from the wire inwards (README's layer table
//! names every module):
//!
//! - [`cli`] and [`agent`]: the command line and the composition root, which
//!   builds everything below and hands it down; nothing below imports them.
//! - [`transport`]: SSH (russh) and the Unix socket behind OpenSSH's sshd;
//!   they authenticate a user and hand a byte stream to a session.
//! - [`auth`]: users, password hashes, authorized keys, the host key.
//! - [`protocol`]: framing (RFC 6242), hello, RPC parsing, replies, rpc-error.
//! - [`session`]: one NETCONF session: reads rpcs, runs operations.
//! - [`datastore`]: running (one owner: its tree, generation, `unique`
//!   index and journal), candidate and startup on libyang trees, locks,
//!   edit-config semantics, persistence.
//! - [`transaction`]: the commit pipeline validate → prepare → apply (→ abort)
//!   across the plugins (`wgnetconf-plugin-api`).
//! - [`nacm`]: access control (RFC 8341) over operations, data and
//!   notifications.
//! - [`schema`]: the libyang context with every module of the search path.
//! - [`systemd`]: sd_notify, the watchdog interval, journal detection.

pub mod agent;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod core;
pub mod datastore;
pub mod memory;
pub mod monitoring;
pub mod nacm;
pub mod notify;
pub mod protocol;
pub mod retrieval;
pub mod schema;
pub mod session;
pub mod shutdown;
pub mod systemd;
pub mod transaction;
pub mod transport;
