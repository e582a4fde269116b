//! RFC 7950 §8.3.3: on the candidate, constraint enforcement — unique,
//! must, leafref, mandatory, min/max-elements — waits for `<validate>` or
//! `<commit>`, so a client may pass through invalid states (swap the
//! listen-ports of two interfaces in two edits). What §8.3.1 requires of an
//! edit is still refused at once: types, ranges, lengths, patterns, keys
//! (libyang's parse of the edit), two cases of one choice, disabled
//! features. Running keeps its end-of-operation enforcement.

use crate::protocol::error::RpcError;

/// Does this error come from a constraint whose enforcement the candidate
/// delays?
fn delayed(e: &RpcError) -> bool {
    match e.app_tag.as_deref() {
        Some(
            "data-not-unique" | "too-many-elements" | "too-few-elements" | "must-violation"
            | "instance-required" | "missing-choice",
        ) => true,
        // libyang's mandatory leaf (`yang_error::classify`); a missing key
        // is refused by the parse, before any validation.
        _ => e.tag == "missing-element" && e.message.starts_with("Mandatory node"),
    }
}

/// The outcome of validating the candidate after an edit with
/// test-then-set: `Ok(true)` valid, `Ok(false)` invalid only in what waits
/// for validate/commit (the edit is kept, not marked valid), `Err` refused.
pub(super) fn edit_outcome(result: Result<(), Vec<RpcError>>) -> Result<bool, Vec<RpcError>> {
    match result {
        Ok(()) => Ok(true),
        Err(es) if !es.is_empty() && es.iter().all(delayed) => Ok(false),
        Err(es) => Err(es),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_and_refused() {
        let unique = RpcError::operation_failed("x").with_app_tag("data-not-unique");
        let mandatory = RpcError::app("missing-element", "Mandatory node \"address\" ...");
        let value = RpcError::app("invalid-value", "Value \"x\" does not match");
        assert_eq!(edit_outcome(Ok(())).ok(), Some(true));
        assert_eq!(edit_outcome(Err(vec![unique.clone()])).ok(), Some(false));
        assert_eq!(edit_outcome(Err(vec![mandatory])).ok(), Some(false));
        assert!(edit_outcome(Err(vec![unique, value])).is_err());
    }
}
