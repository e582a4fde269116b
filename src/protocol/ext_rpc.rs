//! Parameters of the operations beyond RFC 6241 §7 that [`super::rpc`]
//! delegates here: confirmed commit and cancel-commit (RFC 6241 §8.4), NMDA
//! `<get-data>` / `<edit-data>` (RFC 8526) and `<create-subscription>`
//! (RFC 5277).

use std::time::SystemTime;

use super::error::RpcError;
use super::rpc::{self, Datastore, EditOp, Filter, Operation};
use super::xml::{Elem, Scope};
use super::NC_NS;

pub const NMDA_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda";
pub const DS_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";
/// RFC 5277: `<create-subscription>` and `<notification>`.
pub const NOTIF_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

/// Our own operations and the `<comment>` of `<commit>` (module
/// `wgnetconf-agent`).
pub const AGENT_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";

/// RFC 6241 §8.4.5: the default confirm-timeout, seconds.
pub const DEFAULT_CONFIRM_TIMEOUT: u32 = 600;

/// `<commit>` parameters (all absent: a plain or confirming commit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitParams {
    pub confirmed: bool,
    /// Seconds; `None` = [`DEFAULT_CONFIRM_TIMEOUT`].
    pub timeout: Option<u32>,
    pub persist: Option<String>,
    pub persist_id: Option<String>,
    /// `<comment xmlns="...wgnetconf-agent">`: kept in the commit history.
    pub comment: Option<String>,
}

/// `<rollback>` (wgnetconf-agent): running as it was before commit `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollback {
    pub id: u64,
    pub confirm_timeout: Option<u32>,
    pub comment: Option<String>,
}

/// The datastores of RFC 8342 that get-data can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmdaDatastore {
    Running,
    Candidate,
    Startup,
    Intended,
    Operational,
}

impl NmdaDatastore {
    pub fn name(self) -> &'static str {
        match self {
            NmdaDatastore::Running => "running",
            NmdaDatastore::Candidate => "candidate",
            NmdaDatastore::Startup => "startup",
            NmdaDatastore::Intended => "intended",
            NmdaDatastore::Operational => "operational",
        }
    }
}

#[derive(Clone, Debug)]
pub struct GetData {
    pub datastore: NmdaDatastore,
    pub filter: Option<Filter>,
    /// `Some(true)`: config nodes only; `Some(false)`: state nodes only.
    pub config_filter: Option<bool>,
    /// `None` = unbounded.
    pub max_depth: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct EditData {
    pub datastore: Datastore,
    pub default_operation: EditOp,
    pub config: String,
}

#[derive(Clone, Debug)]
pub struct Subscribe {
    pub stream: String,
    /// The `<filter>` element (subtree) over the notification content.
    pub filter: Option<Elem>,
    pub start: Option<SystemTime>,
    pub stop: Option<SystemTime>,
}

/// Operations outside the base namespace that we implement; `None` when
/// `op` is none of them.
pub fn parse_foreign(op: &Elem, scope: &Scope) -> Option<Result<Operation, RpcError>> {
    let ns = op.ns.as_deref()?;
    Some(match (ns, op.local.as_str()) {
        (NMDA_NS, "get-data") => get_data(op, scope).map(Operation::GetData),
        (NMDA_NS, "edit-data") => edit_data(op, scope).map(Operation::EditData),
        (NOTIF_NS, "create-subscription") => {
            create_subscription(op).map(Operation::CreateSubscription)
        }
        (AGENT_NS, "rollback") => rollback(op).map(Operation::Rollback),
        (AGENT_NS, "compare") => compare(op),
        (AGENT_NS, "rotate-private-key") => {
            number::<u16>(op, "instance", true).map(|i| Operation::RotatePrivateKey {
                instance: i.unwrap_or(0),
            })
        }
        (AGENT_NS, "check-drift") => check_drift(op),
        _ => return None,
    })
}

/// `<check-drift>`: `<repair>` true repairs every difference found, false
/// or absent follows each interface's drift-policy.
fn check_drift(op: &Elem) -> Result<Operation, RpcError> {
    only_params(op, &["repair"])?;
    let repair = match op.elems().find(|c| c.local == "repair") {
        None => false,
        Some(c) => match c.text().trim() {
            "true" => true,
            "false" => false,
            t => {
                return Err(invalid(
                    "repair",
                    format!("<repair> '{t}' is not a boolean"),
                ))
            }
        },
    };
    Ok(Operation::CheckDrift { repair })
}

/// The number in child `name` of `op`, if present (`required`: else
/// missing-element).
fn number<T: std::str::FromStr>(
    op: &Elem,
    name: &str,
    required: bool,
) -> Result<Option<T>, RpcError> {
    match op.elems().find(|c| c.local == name) {
        Some(c) => c.text().trim().parse().map(Some).map_err(|_| {
            invalid(
                name,
                format!("<{name}> '{}' is not a valid number", c.text()),
            )
        }),
        None if required => Err(RpcError::protocol(
            "missing-element",
            format!("<{}> needs <{name}>", op.local),
        )
        .bad_element(name.to_string())),
        None => Ok(None),
    }
}

fn only_params(op: &Elem, names: &[&str]) -> Result<(), RpcError> {
    match op.elems().find(|c| !names.contains(&c.local.as_str())) {
        Some(c) => Err(unknown_param(op, c)),
        None => Ok(()),
    }
}

fn rollback(op: &Elem) -> Result<Rollback, RpcError> {
    only_params(op, &["id", "confirm-timeout", "comment"])?;
    Ok(Rollback {
        id: number(op, "id", true)?.unwrap_or(0),
        confirm_timeout: number::<u32>(op, "confirm-timeout", false)?.filter(|t| *t > 0),
        comment: op.elems().find(|c| c.local == "comment").map(|c| c.text()),
    })
}

fn compare(op: &Elem) -> Result<Operation, RpcError> {
    only_params(op, &["from", "to"])?;
    Ok(Operation::Compare {
        from: number(op, "from", true)?.unwrap_or(0),
        to: number(op, "to", false)?,
    })
}

fn unknown_param(op: &Elem, c: &Elem) -> RpcError {
    RpcError::protocol(
        "unknown-element",
        format!("<{}> is not a parameter of <{}>", c.local, op.local),
    )
    .bad_element(c.local.clone())
}

fn invalid(elem: &str, message: impl Into<String>) -> RpcError {
    RpcError::protocol("invalid-value", message).bad_element(elem.to_string())
}

/// `<commit>` with children: confirmed commit parameters.
pub fn commit(op: &Elem) -> Result<Operation, RpcError> {
    let mut p = CommitParams::default();
    for c in op.elems() {
        match c.local.as_str() {
            "confirmed" => p.confirmed = true,
            "confirm-timeout" => {
                let t = c.text();
                let v = t
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        invalid(
                            "confirm-timeout",
                            format!(
                                "confirm-timeout '{t}' is not a number of seconds 1..4294967295"
                            ),
                        )
                    })?;
                p.timeout = Some(v);
            }
            "persist" => p.persist = Some(c.text()),
            "persist-id" => p.persist_id = Some(c.text()),
            "comment" if c.ns.as_deref() == Some(AGENT_NS) => p.comment = Some(c.text()),
            _ => return Err(unknown_param(op, c)),
        }
    }
    if !p.confirmed {
        // RFC 6241 §8.4.5.1: confirm-timeout and persist go with confirmed.
        for name in ["confirm-timeout", "persist"] {
            if op.child(NC_NS, name).is_some() {
                return Err(RpcError::protocol(
                    "missing-element",
                    format!("<{name}> needs <confirmed/>"),
                )
                .bad_element("confirmed"));
            }
        }
    }
    if p == CommitParams::default() {
        return Ok(Operation::Commit);
    }
    Ok(Operation::ConfirmedCommit(p))
}

pub fn cancel_commit(op: &Elem) -> Result<Operation, RpcError> {
    let mut persist_id = None;
    for c in op.elems() {
        match c.local.as_str() {
            "persist-id" => persist_id = Some(c.text()),
            _ => return Err(unknown_param(op, c)),
        }
    }
    Ok(Operation::CancelCommit { persist_id })
}

/// The namespace of prefix `prefix` in scope at `e`.
fn resolve_prefix(e: &Elem, scope: &Scope, prefix: Option<&str>) -> Option<String> {
    let mut scope = scope.clone();
    scope.push(&e.ns_decls);
    scope
        .flatten()
        .into_iter()
        .find(|(p, _)| p.as_deref() == prefix)
        .map(|(_, u)| u)
}

/// An identityref of ietf-datastores (`ds:running`).
fn datastore_ident(e: &Elem, scope: &Scope) -> Result<NmdaDatastore, RpcError> {
    let text = e.text();
    let text = text.trim();
    let (prefix, name) = match text.split_once(':') {
        Some((p, n)) => (Some(p), n),
        None => (None, text),
    };
    let ns = resolve_prefix(e, scope, prefix);
    if ns.as_deref() != Some(DS_NS) {
        return Err(invalid(
            "datastore",
            format!("'{text}' is not an ietf-datastores identity"),
        ));
    }
    Ok(match name {
        "running" => NmdaDatastore::Running,
        "candidate" => NmdaDatastore::Candidate,
        "startup" => NmdaDatastore::Startup,
        "intended" => NmdaDatastore::Intended,
        "operational" => NmdaDatastore::Operational,
        _ => {
            return Err(invalid(
                "datastore",
                format!("datastore '{text}' is not implemented"),
            ))
        }
    })
}

fn check_nmda_children(op: &Elem, known: &[&str]) -> Result<(), RpcError> {
    for c in op.elems() {
        if c.ns.as_deref() != Some(NMDA_NS)
            && !(c.ns.is_none() && known.contains(&c.local.as_str()))
        {
            return Err(RpcError::protocol(
                "unknown-namespace",
                format!("<{}> is not in the ietf-netconf-nmda namespace", c.local),
            )
            .bad_element(c.local.clone())
            .with_info("bad-namespace", c.ns.clone().unwrap_or_default()));
        }
        if !known.contains(&c.local.as_str()) {
            return Err(unknown_param(op, c));
        }
    }
    Ok(())
}

fn required<'a>(op: &'a Elem, name: &str) -> Result<&'a Elem, RpcError> {
    op.elems().find(|c| c.local == name).ok_or_else(|| {
        RpcError::protocol(
            "missing-element",
            format!("<{}> needs a <{}> parameter", op.local, name),
        )
        .bad_element(name.to_string())
    })
}

fn get_data(op: &Elem, scope: &Scope) -> Result<GetData, RpcError> {
    check_nmda_children(
        op,
        &[
            "datastore",
            "subtree-filter",
            "xpath-filter",
            "config-filter",
            "max-depth",
            "origin-filter",
            "negated-origin-filter",
            "with-origin",
            "with-defaults",
        ],
    )?;
    let mut scope = scope.clone();
    scope.push(&op.ns_decls);
    let datastore = datastore_ident(required(op, "datastore")?, &scope)?;
    let mut filter = None;
    for c in op.elems() {
        match c.local.as_str() {
            "subtree-filter" => filter = Some(Filter::Subtree(c.clone())),
            "xpath-filter" => {
                let mut s = scope.clone();
                s.push(&c.ns_decls);
                let namespaces = s
                    .flatten()
                    .into_iter()
                    .filter_map(|(p, u)| p.map(|p| (p, u)))
                    .collect();
                filter = Some(Filter::XPath {
                    select: c.text().trim().to_string(),
                    namespaces,
                });
            }
            "origin-filter" | "negated-origin-filter" | "with-origin" => {
                return Err(RpcError::not_supported(format!(
                    "<{}> needs the origin feature, which is not supported",
                    c.local
                ))
                .bad_element(c.local.clone()))
            }
            _ => {}
        }
    }
    if op
        .elems()
        .filter(|c| c.local.ends_with("-filter") && c.local != "config-filter")
        .count()
        > 1
    {
        return Err(RpcError::protocol(
            "invalid-value",
            "subtree-filter and xpath-filter are alternatives",
        )
        .bad_element("xpath-filter"));
    }
    let config_filter = match op.elems().find(|c| c.local == "config-filter") {
        None => None,
        Some(c) => match c.text().trim() {
            "true" => Some(true),
            "false" => Some(false),
            t => return Err(invalid("config-filter", format!("'{t}' is not a boolean"))),
        },
    };
    let max_depth = match op.elems().find(|c| c.local == "max-depth") {
        None => None,
        Some(c) => match c.text().trim() {
            "unbounded" => None,
            t => Some(t.parse::<u16>().ok().filter(|v| *v > 0).ok_or_else(|| {
                invalid(
                    "max-depth",
                    format!("max-depth '{t}' is not 1..65535 or unbounded"),
                )
            })?),
        },
    };
    Ok(GetData {
        datastore,
        filter,
        config_filter,
        max_depth,
    })
}

fn edit_data(op: &Elem, scope: &Scope) -> Result<EditData, RpcError> {
    check_nmda_children(op, &["datastore", "default-operation", "config", "url"])?;
    let mut scope = scope.clone();
    scope.push(&op.ns_decls);
    let datastore = match datastore_ident(required(op, "datastore")?, &scope)? {
        NmdaDatastore::Running => Datastore::Running,
        NmdaDatastore::Candidate => Datastore::Candidate,
        other => {
            return Err(invalid(
                "datastore",
                format!("edit-data cannot write the {} datastore", other.name()),
            ))
        }
    };
    let default_operation = match op.elems().find(|c| c.local == "default-operation") {
        None => EditOp::Merge,
        Some(e) => match e.text().trim() {
            "merge" => EditOp::Merge,
            "replace" => EditOp::Replace,
            "none" => EditOp::None,
            other => {
                return Err(invalid(
                    "default-operation",
                    format!("default-operation '{other}' is not merge, replace or none"),
                ))
            }
        },
    };
    if op.elems().any(|c| c.local == "url") {
        return Err(
            RpcError::not_supported("the :url capability is not supported").bad_element("url"),
        );
    }
    let config = required(op, "config")?;
    rpc::check_operation_attrs(config)?;
    Ok(EditData {
        datastore,
        default_operation,
        config: rpc::config_payload(config, &scope),
    })
}

fn create_subscription(op: &Elem) -> Result<Subscribe, RpcError> {
    let mut s = Subscribe {
        stream: "NETCONF".into(),
        filter: None,
        start: None,
        stop: None,
    };
    for c in op.elems() {
        if c.ns.as_deref() != Some(NOTIF_NS) && !(c.ns.is_none() || c.local == "filter") {
            return Err(unknown_param(op, c));
        }
        match c.local.as_str() {
            "stream" => s.stream = c.text().trim().to_string(),
            "filter" => {
                let ty = c
                    .attrs
                    .iter()
                    .find(|a| a.local == "type")
                    .map(|a| a.value.as_str())
                    .unwrap_or("subtree");
                if ty != "subtree" {
                    return Err(RpcError::protocol(
                        "bad-attribute",
                        format!("notification filter type '{ty}' is not supported"),
                    )
                    .with_info("bad-attribute", "type")
                    .bad_element("filter"));
                }
                s.filter = Some(c.clone());
            }
            "startTime" => {
                s.start = Some(parse_date_time(&c.text()).ok_or_else(|| {
                    invalid("startTime", "startTime is not an RFC 3339 date-and-time")
                })?)
            }
            "stopTime" => {
                s.stop = Some(parse_date_time(&c.text()).ok_or_else(|| {
                    invalid("stopTime", "stopTime is not an RFC 3339 date-and-time")
                })?)
            }
            _ => return Err(unknown_param(op, c)),
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------
// RFC 3339 date-and-time
// ---------------------------------------------------------------------------

use wgnetconf_plugin_api::time::days_from_civil;

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)`.
pub fn parse_date_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 9)];
        nanos = frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32);
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos as u32))
}

pub use wgnetconf_plugin_api::time::date_and_time_micros as format_date_time;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn date_time_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_609_845, 123_456_000);
        let s = format_date_time(t);
        assert_eq!(s, "2026-11-25T12:30:45.123456Z");
        assert_eq!(parse_date_time(&s), Some(t));
        assert_eq!(
            parse_date_time("2026-11-25T13:30:45+01:00"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_609_845))
        );
        assert_eq!(parse_date_time("2026-11-25 13:30:45"), None);
        assert_eq!(parse_date_time("2026-13-25T13:30:45Z"), None);
    }
}
