//! NMDA (RFC 8342, RFC 8526): `<get-data>` on running, candidate, startup,
//! intended (running here: no template expansion or inactive config) and
//! operational (running plus the plugins' config-false state), and
//! `<edit-data>` on running and candidate with the edit-config engine.

use yang5::data::DataTree;

use super::read::{NmdaShape, ReadTree};
use super::{one, Core, OpResult};
use crate::datastore::filter;
use crate::protocol::ext_rpc::{EditData, GetData, NmdaDatastore};
use crate::protocol::rpc::{Datastore, TestOption};
use crate::retrieval::Content;
use crate::schema::Schema;

/// The top-most config-false nodes of `tree`, with their ancestors and list
/// keys (RFC 8526 config-filter false).
pub(super) fn state_only(
    schema: &Schema,
    tree: &DataTree<'static>,
) -> Result<DataTree<'static>, crate::protocol::error::RpcError> {
    let mut paths = Vec::new();
    for n in tree.traverse() {
        let s = n.schema();
        if s.is_config() {
            continue;
        }
        let parent_config = n.ancestors().next().is_none_or(|p| p.schema().is_config());
        if parent_config {
            paths.push(crate::datastore::raw::node_path(&n));
        }
    }
    filter::select(schema, tree, &paths)
}

/// Drops nodes deeper than `depth` (top-level nodes are depth 1); list keys
/// stay with their list entry.
pub(super) fn prune(tree: &mut DataTree<'static>, depth: u16) {
    let mut cut = Vec::new();
    for n in tree.traverse() {
        let d = n.ancestors().count() + 1;
        if d == usize::from(depth) + 1 && !n.schema().is_list_key() {
            cut.push(crate::datastore::raw::node_path(&n));
        }
    }
    for p in cut {
        let _ = tree.remove(&p);
    }
}

impl Core {
    /// Taken under the lock, shaped, filtered and printed outside it
    /// (`core/read.rs`).
    pub(super) fn get_data(&mut self, p: GetData) -> OpResult {
        let tree = match p.datastore {
            NmdaDatastore::Running | NmdaDatastore::Intended => {
                self.read_tree(Datastore::Running).map_err(one)?
            }
            NmdaDatastore::Candidate => self.read_tree(Datastore::Candidate).map_err(one)?,
            NmdaDatastore::Startup => self.read_tree(Datastore::Startup).map_err(one)?,
            NmdaDatastore::Operational if p.config_filter == Some(true) => {
                self.read_tree(Datastore::Running).map_err(one)?
            }
            // The plugins' state plus the server's own: monitoring and the
            // YANG library (RFC 8525 lives in <operational>).
            NmdaDatastore::Operational => ReadTree::Own(self.operational_tree().map_err(one)?),
        };
        let shape = NmdaShape {
            state_only: p.config_filter == Some(false),
            max_depth: p.max_depth,
        };
        self.read(tree, p.filter, None, Content::Config, Some(shape))
    }

    pub(super) fn edit_data(&mut self, session: u32, p: EditData) -> OpResult {
        self.edit_config(
            session,
            p.datastore,
            p.default_operation,
            TestOption::TestThenSet,
            &p.config,
        )
    }
}
