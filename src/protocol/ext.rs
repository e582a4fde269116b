//! Parameters and operations from modules beyond the base protocol:
//! `<with-defaults>` (RFC 6243 §4.5) on the retrieval operations and
//! `<get-schema>` (RFC 6022 §3.1). The base parser (`rpc.rs`) calls in here.

use super::error::RpcError;
use super::xml::Elem;
use super::NC_NS;

/// `ietf-netconf-with-defaults` (RFC 6243 §5).
pub const WD_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";
/// The XML attribute namespace of `default="true"` (RFC 6243 §6).
pub const WD_ATTR_NS: &str = "urn:ietf:params:xml:ns:netconf:default:1.0";
/// `ietf-netconf-monitoring` (RFC 6022 §5).
pub const NCM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";

/// The with-defaults retrieval modes (RFC 6243 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithDefaults {
    ReportAll,
    Trim,
    Explicit,
    ReportAllTagged,
}

impl WithDefaults {
    pub fn parse(s: &str) -> Option<WithDefaults> {
        Some(match s {
            "report-all" => WithDefaults::ReportAll,
            "trim" => WithDefaults::Trim,
            "explicit" => WithDefaults::Explicit,
            "report-all-tagged" => WithDefaults::ReportAllTagged,
            _ => return None,
        })
    }
}

/// A schema format of `<get-schema>` (identities of RFC 6022 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaFormat {
    Yang,
    Yin,
}

impl SchemaFormat {
    pub fn name(self) -> &'static str {
        match self {
            SchemaFormat::Yang => "yang",
            SchemaFormat::Yin => "yin",
        }
    }
}

/// Operations (by local name) that take `<with-defaults>`.
const WITH_DEFAULTS_OPS: &[&str] = &["get", "get-config", "copy-config", "get-data"];

/// A child of a base operation that is a parameter some extension adds:
/// `<with-defaults>` in its own namespace. The base checks let it pass.
pub fn is_extension_param(op: &Elem, child: &Elem) -> bool {
    (child.local == "with-defaults"
        && child.ns.as_deref() == Some(WD_NS)
        && WITH_DEFAULTS_OPS.contains(&op.local.as_str()))
        // The commit history's comment (wgnetconf-agent).
        || (child.local == "comment"
            && child.ns.as_deref() == Some(super::ext_rpc::AGENT_NS)
            && op.local == "commit")
}

/// The `<with-defaults>` parameter of `op`, if present. It must be in the
/// with-defaults namespace (or, as some clients send parameters, in no
/// namespace); in the base namespace it is no parameter of the operation.
pub fn with_defaults_param(op: &Elem) -> Result<Option<WithDefaults>, RpcError> {
    let Some(e) = op.elems().find(|e| e.local == "with-defaults") else {
        return Ok(None);
    };
    if e.ns.as_deref() == Some(NC_NS) {
        return Err(RpcError::protocol(
            "unknown-element",
            format!("<with-defaults> belongs to the namespace {WD_NS}, not the base namespace"),
        )
        .bad_element("with-defaults"));
    }
    let value = e.text();
    WithDefaults::parse(&value).map(Some).ok_or_else(|| {
        RpcError::protocol(
            "invalid-value",
            format!(
                "with-defaults '{value}' is not report-all, trim, explicit or report-all-tagged"
            ),
        )
        .bad_element("with-defaults")
    })
}

/// `<get-schema>` (RFC 6022 §3.1): identifier, optional version, optional
/// format (default yang).
#[derive(Clone, Debug)]
pub struct GetSchema {
    pub identifier: String,
    pub version: Option<String>,
    pub format: SchemaFormat,
}

pub fn parse_get_schema(op: &Elem) -> Result<GetSchema, RpcError> {
    let mut identifier = None;
    let mut version = None;
    let mut format = SchemaFormat::Yang;
    for c in op.elems() {
        if c.ns.is_some() && c.ns.as_deref() != Some(NCM_NS) {
            return Err(RpcError::protocol(
                "unknown-namespace",
                format!(
                    "<{}> is not in the ietf-netconf-monitoring namespace",
                    c.local
                ),
            )
            .bad_element(c.local.clone())
            .with_info("bad-namespace", c.ns.clone().unwrap_or_default()));
        }
        match c.local.as_str() {
            "identifier" => identifier = Some(c.text()),
            "version" => version = Some(c.text()),
            "format" => {
                // An identityref: `yang`, `ncm:yang` (any prefix bound to
                // the monitoring namespace).
                let text = c.text();
                let name = match text.split_once(':') {
                    Some((_, n)) => n.to_string(),
                    None => text.clone(),
                };
                format = match name.as_str() {
                    "yang" => SchemaFormat::Yang,
                    "yin" => SchemaFormat::Yin,
                    _ => {
                        return Err(RpcError::protocol(
                            "invalid-value",
                            format!("schema format '{text}' is not supported (yang, yin)"),
                        )
                        .bad_element("format"))
                    }
                };
            }
            other => {
                return Err(RpcError::protocol(
                    "unknown-element",
                    format!("<{other}> is not a parameter of <get-schema>"),
                )
                .bad_element(other.to_string()))
            }
        }
    }
    let identifier = identifier.filter(|i| !i.is_empty()).ok_or_else(|| {
        RpcError::protocol("missing-element", "<get-schema> needs an <identifier>")
            .bad_element("identifier")
    })?;
    Ok(GetSchema {
        identifier,
        version: version.filter(|v| !v.is_empty()),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::xml;

    fn op(s: &str) -> Elem {
        xml::parse(s.as_bytes()).expect("xml")
    }

    #[test]
    fn with_defaults_values() {
        let e = op(&format!(
            "<get xmlns=\"{NC_NS}\"><with-defaults xmlns=\"{WD_NS}\">trim</with-defaults></get>"
        ));
        assert_eq!(with_defaults_param(&e).unwrap(), Some(WithDefaults::Trim));
        let e = op(&format!(
            "<get xmlns=\"{NC_NS}\"><with-defaults xmlns=\"{WD_NS}\">all</with-defaults></get>"
        ));
        assert_eq!(with_defaults_param(&e).unwrap_err().tag, "invalid-value");
        let e = op(&format!(
            "<get xmlns=\"{NC_NS}\"><with-defaults>trim</with-defaults></get>"
        ));
        assert_eq!(with_defaults_param(&e).unwrap_err().tag, "unknown-element");
    }

    #[test]
    fn get_schema_params() {
        let e = op(&format!(
            "<get-schema xmlns=\"{NCM_NS}\"><identifier>m</identifier><format>ncm:yin</format></get-schema>"
        ));
        let g = parse_get_schema(&e).unwrap();
        assert_eq!(g.identifier, "m");
        assert_eq!(g.format, SchemaFormat::Yin);
        let e = op(&format!("<get-schema xmlns=\"{NCM_NS}\"/>"));
        assert_eq!(parse_get_schema(&e).unwrap_err().tag, "missing-element");
    }
}
