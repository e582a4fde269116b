//! The `<hello>` exchange (RFC 6241 §8.1).

use super::xml::{escape, Elem};
use super::NC_NS;

pub const BASE_1_0: &str = "urn:ietf:params:netconf:base:1.0";
pub const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";

/// The capabilities this server implements, base ones first. Module
/// capabilities (`ns?module=..&revision=..`) are appended by the agent.
pub const SERVER_CAPABILITIES: &[&str] = &[
    BASE_1_0,
    BASE_1_1,
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:startup:1.0",
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:validate:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:notification:1.0",
    "urn:ietf:params:netconf:capability:interleave:1.0",
    "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,trim,report-all-tagged",
    "urn:ietf:params:netconf:capability:xpath:1.0",
];

pub fn server_hello(capabilities: &[String], session_id: u32) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NC_NS}\"><capabilities>"
    );
    for c in capabilities {
        out.push_str("<capability>");
        out.push_str(&escape(c));
        out.push_str("</capability>");
    }
    out.push_str(&format!(
        "</capabilities><session-id>{session_id}</session-id></hello>"
    ));
    out
}

/// What we learned from the client's hello.
#[derive(Debug)]
pub struct ClientHello {
    pub base_1_1: bool,
    pub capabilities: Vec<String>,
}

/// Checks the client hello. An error means the session must be closed
/// (RFC 6241 §8.1: no usable base capability, or a session-id sent by a
/// client).
pub fn parse_client_hello(root: &Elem) -> Result<ClientHello, String> {
    if !root.is(NC_NS, "hello") {
        return Err(format!("expected <hello>, got <{}>", root.local));
    }
    if root.child(NC_NS, "session-id").is_some() {
        return Err("a client hello must not carry a session-id".into());
    }
    let caps = root
        .child(NC_NS, "capabilities")
        .ok_or("the hello has no <capabilities>")?;
    let capabilities: Vec<String> = caps
        .elems()
        .filter(|e| e.local == "capability")
        .map(Elem::text)
        .collect();
    let base_1_0 = capabilities.iter().any(|c| c == BASE_1_0);
    let base_1_1 = capabilities.iter().any(|c| c == BASE_1_1);
    if !base_1_0 && !base_1_1 {
        return Err("the client supports neither base:1.0 nor base:1.1".into());
    }
    Ok(ClientHello {
        base_1_1,
        capabilities,
    })
}
