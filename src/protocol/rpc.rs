//! Parsing an `<rpc>` into an [`Rpc`]: the envelope and the parameters of
//! every operation we implement (RFC 6241 §7, §8). Data payloads (`<config>`)
//! stay XML text for libyang; filters stay element trees.

use super::error::RpcError;
use super::ext::{self, GetSchema, WithDefaults};
use super::xml::{escape, Child, Elem, Scope};
use super::NC_NS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Datastore {
    Running,
    Candidate,
    Startup,
}

impl Datastore {
    pub fn name(self) -> &'static str {
        match self {
            Datastore::Running => "running",
            Datastore::Candidate => "candidate",
            Datastore::Startup => "startup",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditOp {
    Merge,
    Replace,
    Create,
    Delete,
    Remove,
    None,
}

impl EditOp {
    pub fn parse(s: &str) -> Option<EditOp> {
        Some(match s {
            "merge" => EditOp::Merge,
            "replace" => EditOp::Replace,
            "create" => EditOp::Create,
            "delete" => EditOp::Delete,
            "remove" => EditOp::Remove,
            "none" => EditOp::None,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestOption {
    TestThenSet,
    Set,
    TestOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorOption {
    StopOnError,
    ContinueOnError,
    RollbackOnError,
}

/// Where data comes from: a datastore or an inline `<config>`.
#[derive(Clone, Debug)]
pub enum Source {
    Datastore(Datastore),
    /// Standalone XML of the `<config>` children (namespaces re-declared).
    Config(String),
}

#[derive(Clone, Debug)]
pub enum Filter {
    /// The `<filter>` element; its children are the subtree filter.
    Subtree(Elem),
    /// An XPath select with the namespace prefixes in scope on `<filter>`.
    XPath {
        select: String,
        namespaces: Vec<(String, String)>,
    },
}

#[derive(Clone, Debug)]
pub enum Operation {
    Get {
        filter: Option<Filter>,
        with_defaults: Option<WithDefaults>,
    },
    GetConfig {
        source: Datastore,
        filter: Option<Filter>,
        with_defaults: Option<WithDefaults>,
    },
    EditConfig {
        target: Datastore,
        default_operation: EditOp,
        test_option: TestOption,
        error_option: ErrorOption,
        config: String,
    },
    CopyConfig {
        target: Datastore,
        source: Source,
        with_defaults: Option<WithDefaults>,
    },
    DeleteConfig {
        target: Datastore,
    },
    Lock {
        target: Datastore,
    },
    Unlock {
        target: Datastore,
    },
    CloseSession,
    KillSession {
        session_id: u32,
    },
    Commit,
    DiscardChanges,
    Validate {
        source: Source,
    },
    /// `<get-schema>` of ietf-netconf-monitoring (RFC 6022 §3.1).
    GetSchema(GetSchema),
    /// `<commit>` with confirmed-commit parameters (RFC 6241 §8.4).
    ConfirmedCommit(super::ext_rpc::CommitParams),
    CancelCommit {
        persist_id: Option<String>,
    },
    /// NMDA (RFC 8526).
    GetData(super::ext_rpc::GetData),
    EditData(super::ext_rpc::EditData),
    /// RFC 5277; run by the session, not the core.
    CreateSubscription(super::ext_rpc::Subscribe),
    /// wgnetconf-agent: the commit history's operations, key rotation.
    Rollback(super::ext_rpc::Rollback),
    Compare {
        from: u64,
        to: Option<u64>,
    },
    RotatePrivateKey {
        instance: u16,
    },
    /// wgnetconf-agent: compare the data plane with running now.
    CheckDrift {
        repair: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Rpc {
    /// The `<rpc>` attributes, serialised, to echo on `<rpc-reply>`
    /// (RFC 6241 §4.2), leading space included.
    pub reply_attrs: String,
    pub message_id: String,
    pub operation: Operation,
}

/// Error raised before the operation is known: reply with these attributes.
pub struct EnvelopeError {
    pub reply_attrs: String,
    /// Boxed: keeps `Result<Rpc, EnvelopeError>` small.
    pub error: Box<RpcError>,
}

pub fn parse(root: &Elem) -> Result<Rpc, EnvelopeError> {
    let reply_attrs = echo_attrs(root);
    let fail = |error: RpcError| EnvelopeError {
        reply_attrs: reply_attrs.clone(),
        error: Box::new(error),
    };
    if !root.is(NC_NS, "rpc") {
        return Err(fail(
            RpcError::rpc(
                "unknown-element",
                format!("expected <rpc>, got <{}>", root.local),
            )
            .bad_element(root.local.clone()),
        ));
    }
    // Unqualified (RFC 6241's schema), or in the base namespace as some
    // clients write it; `x:message-id` of another namespace is another
    // attribute.
    let message_id = root
        .attrs
        .iter()
        .find(|a| a.local == "message-id" && (a.ns.is_none() || a.ns.as_deref() == Some(NC_NS)))
        .map(|a| a.value.clone());
    let Some(message_id) = message_id else {
        return Err(fail(
            RpcError::rpc("missing-attribute", "the rpc has no message-id attribute")
                .with_info("bad-attribute", "message-id")
                .bad_element("rpc"),
        ));
    };
    let mut ops = root.elems();
    let Some(op) = ops.next() else {
        return Err(fail(
            RpcError::rpc("missing-element", "the rpc names no operation").bad_element("rpc"),
        ));
    };
    if let Some(extra) = ops.next() {
        return Err(fail(
            RpcError::rpc("unknown-element", "an rpc carries exactly one operation")
                .bad_element(extra.local.clone()),
        ));
    }
    let mut scope = Scope::default();
    scope.push(&root.ns_decls);
    scope.push(&op.ns_decls);
    let operation = parse_operation(op, &scope).map_err(fail)?;
    Ok(Rpc {
        reply_attrs,
        message_id,
        operation,
    })
}

fn echo_attrs(root: &Elem) -> String {
    let mut s = String::new();
    for (prefix, uri) in &root.ns_decls {
        if let Some(p) = prefix {
            s.push_str(&format!(" xmlns:{}=\"{}\"", p, escape(uri)));
        }
    }
    for a in &root.attrs {
        s.push_str(&format!(" {}=\"{}\"", a.qname, escape(&a.value)));
    }
    s
}

fn parse_operation(op: &Elem, scope: &Scope) -> Result<Operation, RpcError> {
    if let Some(r) = super::ext_rpc::parse_foreign(op, scope) {
        return r;
    }
    if op.is(ext::NCM_NS, "get-schema") {
        return ext::parse_get_schema(op).map(Operation::GetSchema);
    }
    if op.ns.as_deref() != Some(NC_NS) {
        return Err(match &op.ns {
            None => RpcError::protocol("unknown-namespace", "the operation has no namespace")
                .bad_element(op.local.clone()),
            Some(ns) => RpcError::not_supported(format!(
                "operation <{}> in namespace {} is not supported",
                op.local, ns
            ))
            .bad_element(op.local.clone()),
        });
    }
    check_children(op)?;
    check_known_params(op)?;
    Ok(match op.local.as_str() {
        "get" => Operation::Get {
            filter: filter(op, scope)?,
            with_defaults: ext::with_defaults_param(op)?,
        },
        "get-config" => Operation::GetConfig {
            source: datastore_param(op, "source")?,
            filter: filter(op, scope)?,
            with_defaults: ext::with_defaults_param(op)?,
        },
        "edit-config" => edit_config(op, scope)?,
        "copy-config" => Operation::CopyConfig {
            target: datastore_param(op, "target")?,
            source: source_param(op, scope, "source")?,
            with_defaults: ext::with_defaults_param(op)?,
        },
        "delete-config" => Operation::DeleteConfig {
            target: datastore_param(op, "target")?,
        },
        "lock" => Operation::Lock {
            target: datastore_param(op, "target")?,
        },
        "unlock" => Operation::Unlock {
            target: datastore_param(op, "target")?,
        },
        "close-session" => Operation::CloseSession,
        "kill-session" => {
            let el = required(op, "session-id")?;
            let id = el
                .text()
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    RpcError::protocol("invalid-value", "session-id must be a positive integer")
                        .bad_element("session-id")
                })?;
            Operation::KillSession { session_id: id }
        }
        "commit" => super::ext_rpc::commit(op)?,
        "cancel-commit" => super::ext_rpc::cancel_commit(op)?,
        "discard-changes" => Operation::DiscardChanges,
        "validate" => Operation::Validate {
            source: source_param(op, scope, "source")?,
        },
        other => {
            return Err(
                RpcError::not_supported(format!("operation <{other}> is not supported"))
                    .bad_element(other.to_string()),
            )
        }
    })
}

/// Parameters of base operations must be in the base namespace (or, as
/// ncclient sends `<filter>`, unqualified).
fn check_children(op: &Elem) -> Result<(), RpcError> {
    for c in op.elems() {
        if ext::is_extension_param(op, c) {
            continue;
        }
        if let Some(ns) = &c.ns {
            if ns != NC_NS {
                return Err(RpcError::protocol(
                    "unknown-namespace",
                    format!("<{}> is not in the NETCONF base namespace", c.local),
                )
                .bad_element(c.local.clone())
                .with_info("bad-namespace", ns.clone()));
            }
        }
    }
    Ok(())
}

/// The parameters each base operation takes (RFC 6241 §7); anything else
/// is an unknown-element (Appendix A: "An unexpected element is present"),
/// not something to ignore silently.
fn check_known_params(op: &Elem) -> Result<(), RpcError> {
    let known: &[&str] = match op.local.as_str() {
        "get" => &["filter", "with-defaults"],
        "get-config" => &["source", "filter", "with-defaults"],
        "edit-config" => &[
            "target",
            "default-operation",
            "test-option",
            "error-option",
            "config",
            "url",
        ],
        "copy-config" => &["target", "source", "with-defaults"],
        "validate" => &["source"],
        "delete-config" | "lock" | "unlock" => &["target"],
        "kill-session" => &["session-id"],
        "commit" => &["confirmed", "confirm-timeout", "persist", "persist-id"],
        "cancel-commit" => &["persist-id"],
        "close-session" | "discard-changes" => &[],
        _ => return Ok(()),
    };
    match op
        .elems()
        .find(|c| !known.contains(&c.local.as_str()) && !ext::is_extension_param(op, c))
    {
        Some(c) => Err(RpcError::protocol(
            "unknown-element",
            format!("<{}> is not a parameter of <{}>", c.local, op.local),
        )
        .bad_element(c.local.clone())),
        None => Ok(()),
    }
}

fn required<'a>(op: &'a Elem, name: &str) -> Result<&'a Elem, RpcError> {
    op.child(NC_NS, name).ok_or_else(|| {
        RpcError::protocol(
            "missing-element",
            format!("<{}> needs a <{}> parameter", op.local, name),
        )
        .bad_element(name.to_string())
    })
}

fn datastore_of(param: &Elem) -> Result<Datastore, RpcError> {
    let mut elems = param.elems();
    let ds = elems.next().ok_or_else(|| {
        RpcError::protocol(
            "missing-element",
            format!("<{}> names no datastore", param.local),
        )
        .bad_element(param.local.clone())
    })?;
    // A choice of one datastore: a second is an unexpected element
    // (RFC 6241 Appendix A), not something to ignore.
    if let Some(extra) = elems.next() {
        return Err(RpcError::protocol(
            "unknown-element",
            format!("<{}> names more than one datastore", param.local),
        )
        .bad_element(extra.local.clone()));
    }
    let d = match ds.local.as_str() {
        "running" => Datastore::Running,
        "candidate" => Datastore::Candidate,
        "startup" => Datastore::Startup,
        "url" => {
            return Err(
                RpcError::not_supported("the :url capability is not supported").bad_element("url"),
            )
        }
        other => {
            return Err(
                RpcError::protocol("invalid-value", format!("unknown datastore <{other}>"))
                    .bad_element(other.to_string()),
            )
        }
    };
    Ok(d)
}

fn datastore_param(op: &Elem, name: &str) -> Result<Datastore, RpcError> {
    datastore_of(required(op, name)?)
}

fn source_param(op: &Elem, scope: &Scope, name: &str) -> Result<Source, RpcError> {
    let param = required(op, name)?;
    if let Some(config) = param.child(NC_NS, "config") {
        let mut scope = scope.clone();
        scope.push(&param.ns_decls);
        return Ok(Source::Config(config_payload(config, &scope)));
    }
    datastore_of(param).map(Source::Datastore)
}

/// The children of `<config>` as standalone XML for libyang.
pub(crate) fn config_payload(config: &Elem, scope: &Scope) -> String {
    let mut scope = scope.clone();
    scope.push(&config.ns_decls);
    let decls = scope.flatten();
    let mut out = String::new();
    for child in &config.children {
        match child {
            Child::Elem(e) => out.push_str(&e.to_xml(&decls)),
            // Kept as sent by the parser, already standalone.
            Child::Raw(r) => out.push_str(r),
            Child::Text(_) => {}
        }
    }
    out
}

fn filter(op: &Elem, scope: &Scope) -> Result<Option<Filter>, RpcError> {
    let Some(f) = op.child(NC_NS, "filter") else {
        return Ok(None);
    };
    let ty = f
        .attrs
        .iter()
        .find(|a| a.local == "type" && (a.ns.is_none() || a.ns.as_deref() == Some(NC_NS)))
        .map(|a| a.value.as_str())
        .unwrap_or("subtree");
    match ty {
        "subtree" => Ok(Some(Filter::Subtree(f.clone()))),
        "xpath" => {
            let select = f
                .attrs
                .iter()
                .find(|a| a.local == "select")
                .map(|a| a.value.clone())
                .ok_or_else(|| {
                    RpcError::protocol("missing-attribute", "an xpath filter needs select")
                        .with_info("bad-attribute", "select")
                        .bad_element("filter")
                })?;
            let mut scope = scope.clone();
            scope.push(&f.ns_decls);
            let namespaces = scope
                .flatten()
                .into_iter()
                .filter_map(|(p, u)| p.map(|p| (p, u)))
                .collect();
            Ok(Some(Filter::XPath { select, namespaces }))
        }
        other => Err(RpcError::protocol(
            "bad-attribute",
            format!("filter type '{other}' is not supported"),
        )
        .with_info("bad-attribute", "type")
        .bad_element("filter")),
    }
}

/// RFC 6241 Appendix A, bad-attribute: "An attribute value is not
/// correct". An `operation` outside merge/replace/create/delete/remove is
/// refused here, naming the attribute and its element, before libyang
/// turns it into an anonymous invalid-value.
pub(crate) fn check_operation_attrs(e: &Elem) -> Result<(), RpcError> {
    for c in e.elems() {
        for a in &c.attrs {
            if a.local == "operation"
                && a.ns.as_deref() == Some(NC_NS)
                && !matches!(
                    a.value.as_str(),
                    "merge" | "replace" | "create" | "delete" | "remove"
                )
            {
                return Err(RpcError::protocol(
                    "bad-attribute",
                    format!("unknown edit operation '{}'", a.value),
                )
                .with_info("bad-attribute", "operation")
                .bad_element(c.local.clone()));
            }
        }
        check_operation_attrs(c)?;
    }
    Ok(())
}

fn edit_config(op: &Elem, scope: &Scope) -> Result<Operation, RpcError> {
    let target = datastore_param(op, "target")?;
    let default_operation = match op.child(NC_NS, "default-operation") {
        None => EditOp::Merge,
        Some(e) => match e.text().as_str() {
            "merge" => EditOp::Merge,
            "replace" => EditOp::Replace,
            "none" => EditOp::None,
            other => {
                return Err(RpcError::protocol(
                    "invalid-value",
                    format!("default-operation '{other}' is not merge, replace or none"),
                )
                .bad_element("default-operation"))
            }
        },
    };
    let test_option = match op.child(NC_NS, "test-option") {
        None => TestOption::TestThenSet,
        Some(e) => match e.text().as_str() {
            "test-then-set" => TestOption::TestThenSet,
            "set" => TestOption::Set,
            "test-only" => TestOption::TestOnly,
            other => {
                return Err(RpcError::protocol(
                    "invalid-value",
                    format!("test-option '{other}' is not test-then-set, set or test-only"),
                )
                .bad_element("test-option"))
            }
        },
    };
    let error_option = match op.child(NC_NS, "error-option") {
        None => ErrorOption::StopOnError,
        Some(e) => match e.text().as_str() {
            "stop-on-error" => ErrorOption::StopOnError,
            "continue-on-error" => ErrorOption::ContinueOnError,
            "rollback-on-error" => ErrorOption::RollbackOnError,
            other => {
                return Err(RpcError::protocol(
                    "invalid-value",
                    format!("error-option '{other}' is not known"),
                )
                .bad_element("error-option"))
            }
        },
    };
    let config = match op.child(NC_NS, "config") {
        Some(c) => {
            check_operation_attrs(c)?;
            let mut scope = scope.clone();
            scope.push(&op.ns_decls);
            config_payload(c, &scope)
        }
        None if op.child(NC_NS, "url").is_some() => {
            return Err(
                RpcError::not_supported("the :url capability is not supported").bad_element("url"),
            )
        }
        None => {
            return Err(RpcError::protocol(
                "missing-element",
                "<edit-config> needs a <config> parameter",
            )
            .bad_element("config"))
        }
    };
    Ok(Operation::EditConfig {
        target,
        default_operation,
        test_option,
        error_option,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::xml;

    fn p(s: &str) -> Result<Rpc, RpcError> {
        parse(&xml::parse(s.as_bytes()).unwrap()).map_err(|e| *e.error)
    }

    #[test]
    fn edit_config_payload_keeps_namespaces() {
        let rpc = p(r#"<rpc message-id="7" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><edit-config><target><candidate/></target><config><top xmlns="urn:t"><a nc:operation="delete"/></top></config></edit-config></rpc>"#).unwrap();
        assert_eq!(rpc.message_id, "7");
        assert!(rpc.reply_attrs.contains("message-id=\"7\""));
        match rpc.operation {
            Operation::EditConfig { target, config, .. } => {
                assert_eq!(target, Datastore::Candidate);
                assert!(config.contains("xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\""));
                assert!(config.starts_with("<top"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unnamespaced_filter_inside_get() {
        let rpc = p(r#"<nc:rpc xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><nc:get><filter type="subtree"><top xmlns="urn:t"/></filter></nc:get></nc:rpc>"#).unwrap();
        assert!(matches!(
            rpc.operation,
            Operation::Get {
                filter: Some(Filter::Subtree(_)),
                ..
            }
        ));
    }

    #[test]
    fn envelope_errors() {
        let e =
            p(r#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>"#).unwrap_err();
        assert_eq!(e.tag, "missing-attribute");
        let e = p(
            r#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><frob/></rpc>"#,
        )
        .unwrap_err();
        assert_eq!(e.tag, "operation-not-supported");
        let e = p(r#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><get-config><source><nowhere/></source></get-config></rpc>"#).unwrap_err();
        assert_eq!(e.tag, "invalid-value");
        let e = p(r#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><get-config><source><running/></source><frob/></get-config></rpc>"#).unwrap_err();
        assert_eq!(e.tag, "unknown-element");
        let e = p(r#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1"><edit-config><target><running/></target><config><a xmlns="urn:t" nc:operation="frob"/></config></edit-config></rpc>"#).unwrap_err();
        assert_eq!(e.tag, "bad-attribute");
    }
}
