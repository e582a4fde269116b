//! Authentication material: the SSH host key, password hashes, and the user
//! database (passwords and authorized keys) that both transports consult.

pub mod files;
pub mod hostkey;
pub mod password;
pub mod users;

pub use users::{UserDb, UserDbError, Users};
