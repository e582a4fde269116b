//! The commit history's operations (`wgnetconf-agent`): every change of
//! running is recorded (`datastore::history`), `<rollback>` commits the
//! configuration from before a commit, `<compare>` returns the difference
//! between two points as `<edit-config>` content, and
//! `<rotate-private-key>` gives an interface a new key.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;
use yang5::data::{Data, DataDiffFlags};

use super::{one, Core, OpResult, Outcome};
use crate::datastore;
use crate::datastore::history::{Before, Change, Meta};
use crate::protocol::error::RpcError;
use crate::protocol::ext_rpc::{CommitParams, Rollback, AGENT_NS};
use crate::protocol::rpc::Datastore;
use crate::protocol::NC_NS;
use crate::transaction::Change as Commit;

const YANG_NS: &str = "urn:ietf:params:xml:ns:yang:1";

impl Core {
    /// Records the change just made to running with the
    /// acting session and the commit's comment. A history that cannot be
    /// written does not undo the commit: it is logged.
    pub(super) fn record_history(&mut self, change: Result<Change, RpcError>) {
        let comment = self.commit_comment.take().unwrap_or_default();
        if !self.history.enabled() {
            return;
        }
        let who = self.who(self.ext.actor.unwrap_or(0));
        let meta = Meta {
            id: 0,
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            user: if self.ext.actor.is_some() {
                who.user
            } else {
                "(server)".into()
            },
            session: self.ext.actor.unwrap_or(0),
            source: who.source,
            comment,
        };
        let recorded = change.and_then(|c| self.history.record(meta, &c));
        if let Err(e) = recorded {
            warn!(error = %e.message, "commit history");
        }
    }

    /// The before side of `change` for its history entry (taken before the
    /// commit); `None` when nothing is recorded (history off, or a boot
    /// that restarts the agent on the running it had).
    pub(super) fn history_before(&self, change: &Commit) -> Option<Result<Before, RpcError>> {
        if !self.history.enabled() {
            return None;
        }
        Some(match change {
            Commit::Scoped(sc) => Before::roots(&self.schema, &sc.roots, &sc.old),
            Commit::Whole { .. } => Before::whole(self.ds.running()),
            Commit::Boot => {
                if self.ds.boot_status().0 == datastore::BootSource::Running {
                    return None;
                }
                Before::whole(&yang5::data::DataTree::new(self.schema.ctx))
            }
        })
    }

    /// `/wgna:agent/history` as XML children of `<agent>`.
    pub(super) fn history_xml(&self) -> String {
        let esc = crate::protocol::xml::escape_text;
        let mut out = String::from("<history>");
        for m in self.history.entries() {
            let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(m.time_ms);
            out.push_str(&format!(
                "<commit><id>{}</id><time>{}</time><user>{}</user><session-id>{}</session-id><source>{}</source>{}</commit>",
                m.id,
                wgnetconf_plugin_api::time::date_and_time(time),
                esc(&m.user),
                m.session,
                esc(&m.source),
                if m.comment.is_empty() {
                    String::new()
                } else {
                    format!("<comment>{}</comment>", esc(&m.comment))
                },
            ));
        }
        out.push_str("</history>");
        out
    }

    /// The candidate must hold nothing of its own: rollback and rotation
    /// commit through it (or beside it) and would take or lose those edits.
    fn candidate_unmodified(&self) -> Result<(), Vec<RpcError>> {
        if self.ds.candidate_modified() {
            return Err(one(RpcError::protocol(
                "in-use",
                "the candidate holds uncommitted changes: commit or discard them first",
            )));
        }
        Ok(())
    }

    /// `<rollback>`: the configuration from before commit `id`, committed
    /// like a candidate (validated, access-checked, optionally confirmed).
    pub(super) fn rollback(&mut self, session: u32, p: Rollback) -> OpResult {
        self.candidate_unmodified()?;
        let target = self
            .history
            .before(&self.schema, self.ds.running(), p.id)
            .map_err(one)?;
        self.ds.set_candidate(target);
        let params = CommitParams {
            confirmed: p.confirm_timeout.is_some(),
            timeout: p.confirm_timeout,
            comment: Some(
                p.comment
                    .unwrap_or_else(|| format!("rollback to before {}", p.id)),
            ),
            ..CommitParams::default()
        };
        let r = self.confirmed_commit(session, params);
        if r.is_err() {
            // The candidate was running until the rollback put it there.
            self.ds.discard_candidate();
        }
        r
    }

    /// `<compare>`: from the configuration before `from` to the one before
    /// `to` (running when absent), as `<edit-config>` content; what the
    /// user may not read is left out of both sides.
    pub(super) fn compare(&mut self, from: u64, to: Option<u64>) -> OpResult {
        let mut a = self
            .history
            .before(&self.schema, self.ds.running(), from)
            .map_err(one)?;
        let mut b = match to {
            Some(id) => self
                .history
                .before(&self.schema, self.ds.running(), id)
                .map_err(one)?,
            None => datastore::duplicate(self.ds.running()).map_err(one)?,
        };
        self.prune_unreadable(&mut a);
        self.prune_unreadable(&mut b);
        let diff = a
            .diff(&b, DataDiffFlags::empty())
            .map_err(|e| one(RpcError::operation_failed(format!("compare: {e}"))))?;
        let xml = crate::datastore::print_xml(
            yang5::data::Data::tree(&diff),
            // Explicit nodes only: a created subtree's defaults stay
            // implicit when the edit is replayed.
            yang5::data::DataPrinterFlags::WITH_SIBLINGS
                | yang5::data::DataPrinterFlags::SHRINK
                | yang5::data::DataPrinterFlags::WD_EXPLICIT,
        )
        .map_err(one)?;
        Ok(Outcome::Reply(format!(
            "<config xmlns=\"{AGENT_NS}\">{}</config>",
            edit_config_of(&xml)
        )))
    }

    /// `<rotate-private-key>`: a new key generated by the plugin (which
    /// generates one for an interface that has none), committed to running
    /// and, if startup holds the interface, to startup.
    pub(super) fn rotate_private_key(&mut self, instance: u16) -> OpResult {
        if !self.pipeline.handles("wgnetconf-tunnel") {
            return Err(one(RpcError::protocol(
                "operation-not-supported",
                "no WireGuard plugin runs here to generate keys",
            )));
        }
        self.candidate_unmodified()?;
        let iface = format!("/wgnetconf-tunnel:tunnel/wireguard[instance='{instance}']");
        let key = format!("{iface}/private-key");
        if self.ds.running().find_path(&iface).is_err() {
            return Err(one(RpcError::app(
                "invalid-value",
                format!("no wireguard {instance} in running"),
            )
            .bad_element("instance")));
        }
        let mut new = datastore::duplicate(self.ds.running()).map_err(one)?;
        if new.find_path(&key).is_ok() {
            new.remove(&key)
                .map_err(|e| one(RpcError::operation_failed(format!("rotate: {e}"))))?;
        }
        // Deleting the key needs the user's access to it; the new one is
        // the server's.
        self.check_change(self.ds.running(), &new).map_err(one)?;
        self.commit_comment = Some(format!("rotate-private-key {instance}"));
        self.commit_running(new)?;
        let value = self
            .ds
            .running()
            .find_path(&key)
            .ok()
            .and_then(|n| n.value_canonical())
            .ok_or_else(|| {
                one(RpcError::operation_failed(
                    "no new private key was generated",
                ))
            })?;
        if let Some(startup) = self.ds.tree(Datastore::Startup) {
            if startup.find_path(&iface).is_ok() {
                let mut s = datastore::duplicate(startup).map_err(one)?;
                s.new_path(&key, Some(&value), false)
                    .map_err(|e| one(RpcError::operation_failed(format!("startup: {e}"))))?;
                self.ds.set_startup(s).map_err(one)?;
                self.ext.config_changed("startup", Vec::new());
            }
        }
        let public = self
            .operational_tree()
            .ok()
            .and_then(|t| {
                t.find_path(&format!("{iface}/public-key"))
                    .ok()
                    .and_then(|n| n.value_canonical())
            })
            .unwrap_or_default();
        Ok(Outcome::Reply(format!(
            "<public-key xmlns=\"{AGENT_NS}\">{public}</public-key>"
        )))
    }
}

/// A libyang diff printed as XML, turned into `<edit-config>` content:
/// `yang:operation` becomes `nc:operation` (none dropped), the other
/// `yang:` bookkeeping attributes go. Attribute values are escaped, so no
/// value can contain a quote the scan would stop at.
fn edit_config_of(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len());
    let mut rest = diff;
    while let Some(i) = rest.find(" yang:") {
        out.push_str(&rest[..i]);
        let attr = &rest[i + 1..];
        let Some(eq) = attr.find("=\"") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = &attr[..eq];
        let Some(end) = attr[eq + 2..].find('"') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let value = &attr[eq + 2..eq + 2 + end];
        if name == "yang:operation" && value != "none" {
            out.push_str(&format!(" nc:operation=\"{value}\""));
        }
        rest = &attr[eq + 2 + end + 1..];
    }
    out.push_str(rest);
    out.replace(
        &format!("xmlns:yang=\"{YANG_NS}\""),
        &format!("xmlns:nc=\"{NC_NS}\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_attributes_become_edit_config_operations() {
        let d = format!(
            "<store xmlns=\"urn:x\" xmlns:yang=\"{YANG_NS}\" yang:operation=\"none\">\
             <entry yang:operation=\"create\"><name>a&quot;b</name></entry>\
             <v yang:operation=\"replace\" yang:orig-default=\"false\" yang:orig-value=\"o&quot;ld\">n</v></store>"
        );
        let e = edit_config_of(&d);
        assert_eq!(
            e,
            format!(
                "<store xmlns=\"urn:x\" xmlns:nc=\"{NC_NS}\">\
                 <entry nc:operation=\"create\"><name>a&quot;b</name></entry>\
                 <v nc:operation=\"replace\">n</v></store>"
            )
        );
    }
}
