//! Limits on a parsed request that the XML reader cannot see: an XPath
//! filter's cost in libyang grows with its length and, far faster, with
//! what its predicates reach (see `xpath_cost`), and libyang evaluates it
//! under the lock every session shares. Refused here, before any of it
//! reaches libyang.

use super::rpc::{Filter, Operation};
use super::RpcError;

/// The XPath expression of `op`, if it has one, and the element that
/// carries it (for error-info).
fn xpath(op: &Operation) -> Option<(&str, &'static str, Option<&'static str>)> {
    let filter = match op {
        Operation::Get { filter, .. } | Operation::GetConfig { filter, .. } => {
            filter.as_ref().map(|f| (f, "filter", Some("select")))
        }
        Operation::GetData(g) => g.filter.as_ref().map(|f| (f, "xpath-filter", None)),
        _ => None,
    }?;
    match filter.0 {
        Filter::XPath { select, .. } => Some((select, filter.1, filter.2)),
        Filter::Subtree(_) => None,
    }
}

/// `too-big` (RFC 6241 Appendix A: "the request ... is too large for the
/// implementation to handle") when an XPath filter is longer than
/// `max_bytes` or could cost more than linear work (`xpath_cost`).
pub fn check(op: &Operation, max_bytes: usize) -> Result<(), RpcError> {
    let Some((select, element, attribute)) = xpath(op) else {
        return Ok(());
    };
    let why = if select.len() > max_bytes {
        format!(
            "XPath filter of {} bytes; at most {max_bytes} are accepted",
            select.len()
        )
    } else if let Err(why) = super::xpath_cost::check(select) {
        format!("XPath filter too costly to evaluate: {why}")
    } else {
        return Ok(());
    };
    let e = RpcError::protocol("too-big", why);
    Err(match attribute {
        Some(a) => e.with_info("bad-attribute", a).bad_element(element),
        None => e.bad_element(element),
    })
}
