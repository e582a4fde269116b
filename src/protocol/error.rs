//! RFC 6241 `<rpc-error>` (Appendix A) and its XML form.

use super::xml::{escape, escape_text};
use super::NC_NS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Transport,
    Rpc,
    Protocol,
    Application,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Transport => "transport",
            ErrorType::Rpc => "rpc",
            ErrorType::Protocol => "protocol",
            ErrorType::Application => "application",
        }
    }
}

/// An error-path in XML form: the path text with prefixes, and the
/// namespace declarations those prefixes need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorPath {
    pub path: String,
    pub namespaces: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub error_type: ErrorType,
    pub tag: &'static str,
    pub app_tag: Option<String>,
    /// Boxed: keeps `Result<_, RpcError>` small (clippy::result_large_err).
    pub path: Option<Box<ErrorPath>>,
    pub message: String,
    /// error-info children, written as `<name>value</name>`; a name may
    /// carry its own namespace (`non-unique` is in the YANG namespace).
    pub info: Vec<InfoItem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoItem {
    pub name: &'static str,
    pub ns: Option<&'static str>,
    pub value: String,
    /// Namespace declarations the value needs (a non-unique path).
    pub value_ns: Vec<(String, String)>,
}

pub const YANG_NS: &str = "urn:ietf:params:xml:ns:yang:1";

impl RpcError {
    pub fn new(error_type: ErrorType, tag: &'static str, message: impl Into<String>) -> Self {
        RpcError {
            error_type,
            tag,
            app_tag: None,
            path: None,
            message: message.into(),
            info: Vec::new(),
        }
    }

    pub fn app(tag: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Application, tag, message)
    }

    pub fn protocol(tag: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Protocol, tag, message)
    }

    pub fn rpc(tag: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Rpc, tag, message)
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::rpc("malformed-message", message)
    }

    pub fn operation_failed(message: impl Into<String>) -> Self {
        Self::app("operation-failed", message)
    }

    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::protocol("operation-not-supported", message)
    }

    pub fn with_app_tag(mut self, tag: impl Into<String>) -> Self {
        self.app_tag = Some(tag.into());
        self
    }

    pub fn with_path(mut self, path: ErrorPath) -> Self {
        self.path = Some(Box::new(path));
        self
    }

    pub fn with_info(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.info.push(InfoItem {
            name,
            ns: None,
            value: value.into(),
            value_ns: Vec::new(),
        });
        self
    }

    pub fn bad_element(self, name: impl Into<String>) -> Self {
        self.with_info("bad-element", name)
    }

    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<rpc-error><error-type>");
        out.push_str(self.error_type.as_str());
        out.push_str("</error-type><error-tag>");
        out.push_str(self.tag);
        out.push_str("</error-tag><error-severity>error</error-severity>");
        if let Some(t) = &self.app_tag {
            out.push_str("<error-app-tag>");
            out.push_str(&escape_text(t));
            out.push_str("</error-app-tag>");
        }
        if let Some(p) = &self.path {
            out.push_str("<error-path");
            for (prefix, ns) in &p.namespaces {
                out.push_str(&format!(" xmlns:{}=\"{}\"", prefix, escape(ns)));
            }
            out.push('>');
            out.push_str(&escape_text(&p.path));
            out.push_str("</error-path>");
        }
        out.push_str("<error-message xml:lang=\"en\">");
        out.push_str(&escape_text(&self.message));
        out.push_str("</error-message>");
        if !self.info.is_empty() {
            out.push_str("<error-info>");
            for i in &self.info {
                out.push('<');
                out.push_str(i.name);
                if let Some(ns) = i.ns {
                    out.push_str(&format!(" xmlns=\"{}\"", escape(ns)));
                }
                for (prefix, ns) in &i.value_ns {
                    out.push_str(&format!(" xmlns:{}=\"{}\"", prefix, escape(ns)));
                }
                out.push('>');
                out.push_str(&escape_text(&i.value));
                out.push_str("</");
                out.push_str(i.name);
                out.push('>');
            }
            out.push_str("</error-info>");
        }
        out.push_str("</rpc-error>");
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.tag)
    }
}

/// An rpc-reply carrying errors, echoing the rpc's attributes.
pub fn error_reply(attrs: &str, errors: &[RpcError]) -> String {
    let mut out = format!("<rpc-reply xmlns=\"{NC_NS}\"{attrs}>");
    for e in errors {
        e.write_xml(&mut out);
    }
    out.push_str("</rpc-reply>");
    out
}
