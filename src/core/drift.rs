//! Drift checks: each plugin compares the system with what it applied and
//! repairs per its policy (`Plugin::check_drift`), periodically
//! (`core/hooks.rs`, `[wireguard] drift_check_secs`) and on
//! `<check-drift>` (wgnetconf-agent). What they find goes out as
//! notifications at once. Running is never changed.

use wgnetconf_plugin_api::DriftReport;

use super::{Core, Outcome};
use crate::protocol::ext_rpc::AGENT_NS;

impl Core {
    /// One check by every plugin, then their notifications.
    fn check_drift(&mut self, repair_all: bool) -> DriftReport {
        let mut report = DriftReport::default();
        for p in self.pipeline.plugins_mut() {
            report += p.check_drift(repair_all);
        }
        self.poll_events();
        report
    }

    /// The periodic check; a plugin's panic is survived like an
    /// operation's.
    pub fn check_drift_periodic(&mut self) {
        self.guarded("drift check", |c| c.check_drift(false));
    }

    /// `<check-drift>`: the counts of what was found, repaired, and what
    /// failed to repair.
    pub(super) fn check_drift_rpc(&mut self, repair: bool) -> Outcome {
        let r = self.check_drift(repair);
        Outcome::Reply(format!(
            "<found xmlns=\"{AGENT_NS}\">{}</found>\
             <repaired xmlns=\"{AGENT_NS}\">{}</repaired>\
             <failed xmlns=\"{AGENT_NS}\">{}</failed>",
            r.found, r.repaired, r.failed
        ))
    }
}
