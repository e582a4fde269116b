//! NMDA (RFC 8342, RFC 8526): `<get-data>` on running, candidate, startup,
//! intended (running here: no template expansion or inactive config) and
//! operational (running plus the plugins' config-false state), and
//! `<edit-data>` on running and candidate with the edit-config engine.

use yang5::data::DataTree;

use super::{one, Core, OpResult, Outcome};
use crate::datastore::{self, filter};
use crate::protocol::ext_rpc::{EditData, GetData, NmdaDatastore, NMDA_NS};
use crate::protocol::rpc::{Datastore, TestOption};

/// The top-most config-false nodes of `tree`, with their ancestors and list
/// keys (RFC 8526 config-filter false).
fn state_only(
    core: &Core,
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
    filter::select(&core.schema, tree, &paths)
}

/// Drops nodes deeper than `depth` (top-level nodes are depth 1); list keys
/// stay with their list entry.
fn prune(tree: &mut DataTree<'static>, depth: u16) {
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
    pub(super) fn get_data(&mut self, p: GetData) -> OpResult {
        let mut tree = match p.datastore {
            NmdaDatastore::Running | NmdaDatastore::Intended => {
                datastore::duplicate(self.ds.running()).map_err(one)?
            }
            NmdaDatastore::Candidate => {
                let t = self.existing(Datastore::Candidate).map_err(one)?;
                datastore::duplicate(t).map_err(one)?
            }
            NmdaDatastore::Startup => match self.ds.tree(Datastore::Startup) {
                Some(t) => datastore::duplicate(t).map_err(one)?,
                None => DataTree::new(self.schema.ctx),
            },
            NmdaDatastore::Operational if p.config_filter == Some(true) => {
                datastore::duplicate(self.ds.running()).map_err(one)?
            }
            // The plugins' state plus the server's own: monitoring and the
            // YANG library (RFC 8525 lives in <operational>).
            NmdaDatastore::Operational => self.operational_tree().map_err(one)?,
        };
        if p.config_filter == Some(false) {
            tree = state_only(self, &tree).map_err(one)?;
        }
        if let Some(d) = p.max_depth {
            prune(&mut tree, d);
        }
        let xml = match self.filtered(&tree, p.filter)? {
            Outcome::Data(x) => x,
            _ => String::new(),
        };
        Ok(Outcome::Reply(format!(
            "<data xmlns=\"{NMDA_NS}\">{xml}</data>"
        )))
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
