//! The NETCONF protocol layer: framing (RFC 6242), hello, rpc parsing,
//! replies and rpc-error (RFC 6241). Nothing here knows about datastores.

pub mod error;
pub mod ext;
pub mod ext_rpc;
pub mod framing;
pub mod hello;
pub mod limits;
pub mod reply;
pub mod rpc;
pub mod xml;
pub mod xpath_cost;

/// The NETCONF base namespace.
pub const NC_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

pub use error::{ErrorType, RpcError};
