//! Reads served outside the core lock. `<get>`, `<get-config>` and
//! `<get-data>` take under the lock only what they read — running's
//! snapshot (one copy per generation, `Running::snapshot`), a copy of the
//! candidate or startup, or the operational tree with the plugins' state —
//! and the reader's access rules as of that moment, and hand back a
//! [`Read`]. The session runs it after the lock is released: NACM pruning,
//! filtering and printing of a big datastore never delay a commit, and a
//! commit never waits for them.
//!
//! libyang allows several readers of one tree or one writer, never both: a
//! [`Read`] only finds, prints and copies the tree it holds (a shared
//! snapshot is never changed); what has to change a tree (NACM pruning,
//! report-all's defaults, get-data's depth) changes a copy of its own.

use std::sync::Arc;

use yang5::data::DataTree;

use super::{fault, nmda, one, Core, OpResult, Outcome};
use crate::datastore;
use crate::nacm::rules::Policy;
use crate::nacm::{Actor, Nacm};
use crate::protocol::error::RpcError;
use crate::protocol::ext::WithDefaults;
use crate::protocol::ext_rpc::NMDA_NS;
use crate::protocol::rpc::{Datastore, Filter};
use crate::retrieval::{self, Content};
use crate::schema::Schema;

/// The tree a read reads.
pub(super) enum ReadTree {
    /// Running's snapshot, shared with other reads: only read.
    Shared(Arc<DataTree<'static>>),
    /// A tree of this read's own.
    Own(DataTree<'static>),
}

impl ReadTree {
    fn get(&self) -> &DataTree<'static> {
        match self {
            ReadTree::Shared(t) => t,
            ReadTree::Own(t) => t,
        }
    }

    /// A tree this read may change (a shared one is copied).
    fn into_own(self) -> Result<DataTree<'static>, RpcError> {
        match self {
            ReadTree::Shared(t) => datastore::duplicate(&t),
            ReadTree::Own(t) => Ok(t),
        }
    }
}

/// get-data's shaping (RFC 8526 §3.1.1), done before access control and
/// the filter, as under the lock before.
pub(super) struct NmdaShape {
    /// config-filter false: only the config-false nodes.
    pub state_only: bool,
    pub max_depth: Option<u16>,
}

/// One read, ready to run without the core.
pub struct Read {
    schema: Arc<Schema>,
    tree: ReadTree,
    /// Whose rules prune the tree, under the policy of the generation read.
    nacm: Arc<Nacm>,
    policy: Arc<Policy>,
    actor: Actor,
    filter: Option<Filter>,
    wd: Option<WithDefaults>,
    content: Content,
    /// get-data: its shaping, and the reply is its own `<data>`.
    nmda: Option<NmdaShape>,
}

impl Read {
    /// The `<data>` (get, get-config) or the whole reply (get-data).
    pub fn run(self) -> OpResult {
        fault::point("hold-in-read");
        let mut tree = self.tree;
        if let Some(shape) = &self.nmda {
            if shape.state_only {
                tree = ReadTree::Own(nmda::state_only(&self.schema, tree.get()).map_err(one)?);
            }
            if let Some(d) = shape.max_depth {
                let mut own = tree.into_own().map_err(one)?;
                nmda::prune(&mut own, d);
                tree = ReadTree::Own(own);
            }
        }
        // Unreadable nodes go before the filter runs (RFC 8341 §3.2.4).
        let view = self.nacm.view_under(&self.actor, self.policy.clone());
        if !view.unrestricted {
            // A shared tree is copied; one of this read's own is pruned
            // where it is.
            let mut own = tree.into_own().map_err(one)?;
            view.prune(&self.schema, &mut own);
            tree = ReadTree::Own(own);
        }
        let xml = retrieval::render(
            &self.schema,
            tree.get(),
            self.filter.as_ref(),
            self.wd,
            self.content,
        )
        .map_err(one)?;
        Ok(match self.nmda {
            Some(_) => Outcome::Reply(format!("<data xmlns=\"{NMDA_NS}\">{xml}</data>")),
            None => Outcome::Data(xml),
        })
    }
}

impl Core {
    /// A read of `tree` by the session running the current operation, to
    /// run outside the lock ([`Outcome::Read`]).
    pub(super) fn read(
        &self,
        tree: ReadTree,
        filter: Option<Filter>,
        wd: Option<WithDefaults>,
        content: Content,
        nmda: Option<NmdaShape>,
    ) -> OpResult {
        Ok(Outcome::Read(Box::new(Read {
            schema: self.schema.clone(),
            tree,
            nacm: self.nacm.clone(),
            policy: self.nacm.policy(),
            actor: self.actor(self.ext.actor.unwrap_or(0)),
            filter,
            wd,
            content,
            nmda,
        })))
    }

    /// What a read of configuration datastore `ds` reads: running's
    /// snapshot (also for a candidate that is running unchanged), else a
    /// copy. A deleted (or never saved) startup reads as empty, as clients
    /// such as Ansible's netconf_get expect; at boot it means "nothing to
    /// apply" alike.
    pub(super) fn read_tree(&mut self, ds: Datastore) -> Result<ReadTree, RpcError> {
        let unchanged = match ds {
            Datastore::Running => true,
            Datastore::Candidate => !self.ds.candidate_modified(),
            Datastore::Startup => false,
        };
        if unchanged {
            return self.ds.running_snapshot().map(ReadTree::Shared);
        }
        if ds == Datastore::Candidate {
            if let Some(tree) = self.ds.pending_snapshot(&self.schema)? {
                return Ok(ReadTree::Own(tree));
            }
        }
        match self.ds.tree(ds) {
            Some(t) => datastore::duplicate(t).map(ReadTree::Own),
            None => Ok(ReadTree::Own(DataTree::new(self.schema.ctx))),
        }
    }
}
