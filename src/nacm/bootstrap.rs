//! The first access policy (issue: nobody may be locked out).
//!
//! On the first start with NACM — a new device, or a state directory of a
//! version before NACM whose running has no `/nacm` — running (and
//! startup) get a rule-list `admin` for group `admin` that permits
//! everything. Who is in `admin`: on a new device, whoever `[[users]]
//! groups` puts there (the generated `admin` user is); on an upgraded one,
//! also every user known then, listed in `/nacm/groups`, so that every
//! account keeps working (restrict them afterwards). A marker file in the
//! state directory makes this happen once: a policy deleted on purpose is
//! not brought back.

use std::path::Path;

use yang5::data::{Data, DataTree};

use crate::datastore::{parse_config, persist, validate_config, FILE_MODE};
use crate::protocol::xml::escape_text;
use crate::schema::Schema;

pub const NACM_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm";
const MARKER: &str = "nacm-bootstrapped";

/// The bootstrap policy as XML.
pub fn policy_xml(users: &[String]) -> String {
    let members: String = users
        .iter()
        .map(|u| format!("<user-name>{}</user-name>", escape_text(u)))
        .collect();
    let groups = if users.is_empty() {
        String::new()
    } else {
        format!("<groups><group><name>admin</name>{members}</group></groups>")
    };
    format!(
        "<nacm xmlns=\"{NACM_NS}\">{groups}\
         <rule-list><name>admin</name><group>admin</group>\
         <rule><name>permit-all</name><module-name>*</module-name>\
         <access-operations>*</access-operations><action>permit</action>\
         <comment>Written by wgnetconf at its first start with access control.</comment>\
         </rule></rule-list></nacm>"
    )
}

/// Whether the bootstrap is due: no marker yet. `tree` then gets the
/// policy if it has no `/nacm` of its own; returns whether it changed.
pub fn due(state_dir: &Path) -> bool {
    !state_dir.join(MARKER).exists()
}

/// Adds the bootstrap policy to `tree` unless it has a `/nacm` already.
pub fn add_policy(
    schema: &Schema,
    tree: &mut DataTree<'static>,
    users: &[String],
) -> Result<bool, String> {
    // Validation leaves an implicit /nacm of defaults: only explicit
    // content is a policy of its own.
    if tree
        .find_path("/ietf-netconf-acm:nacm")
        .is_ok_and(|n| crate::datastore::raw::node_is_explicit(&n))
    {
        return Ok(false);
    }
    let policy = parse_config(schema, &policy_xml(users)).map_err(|e| e.message)?;
    tree.merge(&policy).map_err(|e| e.to_string())?;
    validate_config(schema, tree).map_err(|e| e.message)?;
    Ok(true)
}

/// Records that the bootstrap happened.
pub fn done(state_dir: &Path) -> Result<(), String> {
    persist::write_atomic(&state_dir.join(MARKER), b"", FILE_MODE)
        .map_err(|e| format!("{}: {e}", state_dir.join(MARKER).display()))
}
