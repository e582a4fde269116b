//! What the core carries beyond RFC 6241's operations: the confirmed-commit
//! state, the event hub, and the background tasks the agent starts for them
//! (the confirm timer, the plugins' event poll).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{info, warn};

use super::confirmed::Confirmed;
use super::Core;
use crate::config::Config;
use crate::datastore::yang_error::json_path_to_error_path;
use crate::notify::{self, Edit, Hub};
use crate::schema::Schema;

/// At most this many `<edit>`s in one netconf-config-change; a bigger
/// change reports none (the list is optional, RFC 6470).
const MAX_EDITS: usize = 100;
/// How often the plugins are asked for events.
const EVENT_POLL: Duration = Duration::from_secs(5);

pub struct Extras {
    pub confirmed: Confirmed,
    pub hub: Arc<Hub>,
    /// The session whose operation is running (`None`: the server itself,
    /// e.g. a confirmed-commit timeout).
    pub(crate) actor: Option<u32>,
    /// run_dir and state_dir, to reload running after a panic.
    pub(crate) dirs: (std::path::PathBuf, std::path::PathBuf),
    /// Between periodic drift checks (`[wireguard] drift_check_secs`;
    /// `None`: off).
    pub(crate) drift_every: Option<Duration>,
}

impl Extras {
    pub fn new(config: &Config) -> Extras {
        Extras {
            confirmed: Confirmed::new(config.run_dir.join("confirmed-commit")),
            hub: Arc::new(Hub::new()),
            actor: None,
            dirs: (config.run_dir.clone(), config.state_dir.clone()),
            drift_every: (config.wireguard.drift_check_secs > 0)
                .then(|| Duration::from_secs(config.wireguard.drift_check_secs)),
        }
    }

    /// netconf-config-change for `datastore` with `edits`.
    pub fn config_changed(&self, datastore: &str, edits: Vec<Edit>) {
        let by = self.actor.and_then(|s| self.hub.session(s));
        let who = by.as_ref().map(|b| super::audit::Who {
            user: b.user.clone(),
            session: b.session_id,
            source: b.source.clone(),
        });
        super::audit::changed(who.as_ref(), datastore, &edits);
        self.hub
            .emit(notify::config_change(by.as_ref(), datastore, &edits));
    }

    /// netconf-confirmed-commit `event` by the acting session.
    pub fn confirm_event(&self, event: &str, timeout: Option<u32>) {
        let by = self.actor.and_then(|s| self.hub.session(s));
        self.hub
            .emit(notify::confirmed_commit(by.as_ref(), event, timeout));
    }
}

/// The edits of a commit's diff, for `netconf-config-change` (the pipeline
/// already computed the diff: no second pass over the datastore).
pub fn changes_of(schema: &Schema, diff: &yang5::data::DataDiff<'static>) -> Vec<Edit> {
    let mut out = Vec::new();
    for (op, node) in wgnetconf_plugin_api::diff::changes(diff) {
        if out.len() == MAX_EDITS {
            return Vec::new();
        }
        let p = json_path_to_error_path(schema, &crate::datastore::raw::node_path(&node));
        out.push(Edit {
            target: p.path,
            namespaces: p.namespaces,
            operation: match op {
                yang5::data::DataDiffOp::Create => "create",
                yang5::data::DataDiffOp::Delete => "delete",
                yang5::data::DataDiffOp::Replace => "replace",
            },
        });
    }
    out
}

/// The edits of a scoped commit, one per root (the scope's roots are the
/// subtrees it created, deleted or replaced).
pub fn changes_of_roots(schema: &Schema, roots: &[(String, &'static str)]) -> Vec<Edit> {
    if roots.len() > MAX_EDITS {
        return Vec::new();
    }
    roots
        .iter()
        .map(|(path, op)| {
            let p = json_path_to_error_path(schema, path);
            Edit {
                target: p.path,
                namespaces: p.namespaces,
                operation: op,
            }
        })
        .collect()
}

/// Starts the confirm timer, the plugins' event poll and the periodic
/// drift check on `core`; all stop when `shutdown` flips.
pub fn spawn_tasks(core: &Arc<Mutex<Core>>, shutdown: &watch::Receiver<bool>) {
    let (deadline, drift_every) = match core.lock() {
        Ok(core) => (core.ext.confirmed.watch(), core.ext.drift_every),
        Err(_) => return,
    };
    tokio::spawn(confirm_timer(core.clone(), deadline, shutdown.clone()));
    // Plugins' events (notifications) every few seconds.
    tokio::spawn(every(
        core.clone(),
        EVENT_POLL,
        shutdown.clone(),
        Core::poll_plugin_events,
    ));
    if let Some(period) = drift_every {
        // Drift checks (`core/drift.rs`).
        tokio::spawn(every(
            core.clone(),
            period,
            shutdown.clone(),
            Core::check_drift_periodic,
        ));
    }
}

/// Every `period`, `work` on a blocking thread with the core's lock, like
/// a commit: serialised with commits, sessions wait only for that one run.
async fn every(
    core: Arc<Mutex<Core>>,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    work: fn(&mut Core),
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = crate::shutdown::requested(&mut shutdown) => return,
        }
        let a = core.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut core) = a.lock() {
                work(&mut core);
            }
        })
        .await;
    }
}

async fn confirm_timer(
    core: Arc<Mutex<Core>>,
    mut deadline: watch::Receiver<Option<SystemTime>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let d = *deadline.borrow_and_update();
        let wait = d.map(|t| t.duration_since(SystemTime::now()).unwrap_or_default());
        tokio::select! {
            r = deadline.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {
                let a = core.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(mut core) = a.lock() {
                        core.confirmed_expired();
                    }
                })
                .await;
            }
            _ = crate::shutdown::requested(&mut shutdown) => return,
        }
    }
}

impl Core {
    /// Asks every plugin for its events and sends them.
    pub fn poll_plugin_events(&mut self) {
        self.guarded("event poll", Core::poll_events);
    }

    pub(super) fn poll_events(&mut self) {
        let hub = self.ext.hub.clone();
        for p in self.pipeline.plugins_mut() {
            for tree in p.events() {
                match crate::datastore::print_xml(
                    &tree,
                    yang5::data::DataPrinterFlags::WITH_SIBLINGS
                        | yang5::data::DataPrinterFlags::SHRINK,
                ) {
                    Ok(xml) if !xml.is_empty() => {
                        info!(plugin = p.name(), "event");
                        hub.emit(xml)
                    }
                    Ok(_) => {}
                    Err(e) => warn!(plugin = p.name(), error = %e, "cannot print an event"),
                }
            }
        }
    }
}
