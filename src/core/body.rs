//! Request bodies parsed before the core lock is taken: the `<config>` of
//! edit-config and edit-data (`datastore::parse_edit`) and the inline
//! `<config>` of copy-config and validate (`datastore::parse_config`) need
//! only the schema, which is immutable after start, and libyang parses
//! data in one context from several threads (functions taking a `const`
//! context are thread-safe; its errors are kept per thread). So a session
//! parses its own multi-megabyte edit on its own thread, and the core's
//! lock is held only for checking and applying it.

use yang5::data::DataTree;

use super::{fault, Core};
use crate::datastore::{self, ValuelessDelete};
use crate::protocol::error::RpcError;
use crate::protocol::rpc::{Operation, Source};
use crate::schema::Schema;

type Edit = Result<(DataTree<'static>, Vec<ValuelessDelete>), RpcError>;

/// What an operation's body became; empty for operations without one.
#[derive(Default)]
pub struct Parsed {
    edit: Option<Edit>,
    config: Option<Result<DataTree<'static>, RpcError>>,
}

/// Whether `op` has a body [`parse`] parses.
pub fn has_body(op: &Operation) -> bool {
    matches!(
        op,
        Operation::EditConfig { .. }
            | Operation::EditData(_)
            | Operation::CopyConfig {
                source: Source::Config(_),
                ..
            }
            | Operation::Validate {
                source: Source::Config(_)
            }
    )
}

/// Parses `op`'s body (no lock needed).
pub fn parse(schema: &Schema, op: &Operation) -> Parsed {
    let mut out = Parsed::default();
    match op {
        Operation::EditConfig { config, .. } => {
            fault::point("hold-in-parse");
            out.edit = Some(datastore::parse_edit(schema, config));
        }
        Operation::EditData(p) => out.edit = Some(datastore::parse_edit(schema, &p.config)),
        Operation::CopyConfig {
            source: Source::Config(xml),
            ..
        }
        | Operation::Validate {
            source: Source::Config(xml),
        } => out.config = Some(datastore::parse_config(schema, xml)),
        _ => {}
    }
    out
}

impl Core {
    /// The edit parsed before the lock, else parsed now.
    pub(super) fn parsed_edit(&mut self, config: &str) -> Edit {
        self.body
            .edit
            .take()
            .unwrap_or_else(|| datastore::parse_edit(&self.schema, config))
    }

    /// The inline configuration parsed before the lock, else parsed now.
    pub(super) fn parsed_config(&mut self, xml: &str) -> Result<DataTree<'static>, RpcError> {
        self.body
            .config
            .take()
            .unwrap_or_else(|| datastore::parse_config(&self.schema, xml))
    }
}
