//! `<rpc-reply>` bodies.

use super::error::RpcError;
use super::NC_NS;

pub fn ok(attrs: &str) -> String {
    format!("<rpc-reply xmlns=\"{NC_NS}\"{attrs}><ok/></rpc-reply>")
}

/// `<data>` with already-printed XML content (libyang output).
pub fn data(attrs: &str, content: &str) -> String {
    let mut out = String::with_capacity(content.len() + 128);
    out.push_str(&format!("<rpc-reply xmlns=\"{NC_NS}\"{attrs}><data>"));
    out.push_str(content);
    out.push_str("</data></rpc-reply>");
    out
}

/// An rpc-reply around `content` as it is (an rpc's own output elements).
pub fn raw(attrs: &str, content: &str) -> String {
    format!("<rpc-reply xmlns=\"{NC_NS}\"{attrs}>{content}</rpc-reply>")
}

pub fn errors(attrs: &str, errors: &[RpcError]) -> String {
    super::error::error_reply(attrs, errors)
}
