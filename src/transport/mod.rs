//! Transports: how bytes reach a NETCONF session.
//!
//! - [`ssh`]: the built-in SSH server (russh), `netconf` subsystem only.
//! - [`unix`]: a Unix socket; the peer's uid (SO_PEERCRED) is the identity.
//!   OpenSSH's sshd reaches it through [`relay`], run as the subsystem
//!   command, so sshd does the SSH and authentication work.
//!
//! Both listeners stop accepting when `Shared::shutdown` flips to true, and
//! hand every accepted stream to `session::run` in its own task.

pub mod preauth;
pub mod relay;
pub mod ssh;
pub mod unix;

pub(crate) use crate::shutdown::requested as shutdown_requested;
