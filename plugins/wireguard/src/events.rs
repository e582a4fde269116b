//! Peer handshake notifications (`wgnetconf-tunnel:peer-handshake`): a
//! peer is up while its last handshake is less than [`DOWN_AFTER`] old.
//! The plugin keeps each peer's last reported state and reports changes
//! when the agent polls it ([`wgnetconf_plugin_api::Plugin::events`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use wgnetconf_plugin_api::yang5::context::Context;
use yang5::data::DataTree;

use crate::keys::PublicKey;
use crate::model;
use crate::state::date_and_time;

/// WireGuard's REJECT_AFTER_TIME: without a handshake for this long the
/// session keys are unusable, the peer is down.
pub const DOWN_AFTER: Duration = Duration::from_secs(180);

/// A peer seen by one poll: interface instance, peer instance, key, last
/// handshake.
pub type Seen = (u16, u32, PublicKey, Option<SystemTime>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub iface: u16,
    pub peer: u32,
    pub public_key: PublicKey,
    pub up: bool,
    pub latest: Option<SystemTime>,
}

/// The last reported state of each peer (absent = down, never reported).
#[derive(Default, Debug)]
pub struct HandshakeTracker {
    up: HashMap<(u16, u32), bool>,
}

impl HandshakeTracker {
    /// The state changes since the last call. Peers not seen any more are
    /// forgotten without an event (they left the configuration).
    pub fn update(&mut self, now: SystemTime, seen: &[Seen]) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut next = HashMap::new();
        for &(iface, peer, public_key, latest) in seen {
            let up = latest.is_some_and(|t| now.duration_since(t).unwrap_or_default() < DOWN_AFTER);
            let was = self.up.get(&(iface, peer)).copied().unwrap_or(false);
            if up != was {
                out.push(Transition {
                    iface,
                    peer,
                    public_key,
                    up,
                    latest,
                });
            }
            next.insert((iface, peer), up);
        }
        self.up = next;
        out
    }
}

/// A notification `name` of the tunnel module with its `leaves`
/// (name, value; a `None` value leaves the leaf out): the one way the
/// plugin's notifications (handshakes, key age, drift) are built.
pub fn tree(
    ctx: &'static Context,
    name: &str,
    leaves: &[(&str, Option<String>)],
) -> Result<DataTree<'static>, yang5::Error> {
    let mut tree = DataTree::new(ctx);
    for (leaf, value) in leaves {
        if let Some(v) = value {
            let path = format!("/{}:{name}/{leaf}", model::MODULE);
            tree.new_path(&path, Some(v), false)?;
        }
    }
    Ok(tree)
}

/// The notification tree of one transition.
pub fn notification(
    ctx: &'static Context,
    t: &Transition,
) -> Result<DataTree<'static>, yang5::Error> {
    let state = if t.up { "up" } else { "down" };
    tree(
        ctx,
        "peer-handshake",
        &[
            ("wireguard", Some(t.iface.to_string())),
            ("peer", Some(t.peer.to_string())),
            ("public-key", Some(t.public_key.to_base64())),
            ("state", Some(state.to_string())),
            ("latest-handshake", t.latest.map(date_and_time)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use yang5::data::Data;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    #[test]
    fn up_then_down_after_180_s() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut tr = HandshakeTracker::default();
        // No handshake yet: down, nothing to report.
        assert!(tr.update(t0, &[(1, 1, key(1), None)]).is_empty());
        // A handshake: up.
        let ev = tr.update(t0 + Duration::from_secs(5), &[(1, 1, key(1), Some(t0))]);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].up);
        // Still up at 179 s, re-handshakes do not repeat the event.
        assert!(tr
            .update(t0 + Duration::from_secs(179), &[(1, 1, key(1), Some(t0))])
            .is_empty());
        // Down at 180 s without a new handshake.
        let ev = tr.update(t0 + Duration::from_secs(180), &[(1, 1, key(1), Some(t0))]);
        assert_eq!(ev.len(), 1);
        assert!(!ev[0].up);
        assert_eq!(ev[0].latest, Some(t0));
        // Up again with a new handshake.
        let t1 = t0 + Duration::from_secs(300);
        let ev = tr.update(t1, &[(1, 1, key(1), Some(t1))]);
        assert!(ev[0].up);
        // A peer that leaves is forgotten silently.
        assert!(tr.update(t1, &[]).is_empty());
    }

    #[test]
    fn notification_tree_prints_as_the_yang_notification() {
        let t = Transition {
            iface: 1,
            peer: 2,
            public_key: key(7),
            up: false,
            latest: Some(SystemTime::UNIX_EPOCH),
        };
        let tree = notification(crate::tests::context(), &t).unwrap();
        let xml = tree
            .print_string(
                yang5::data::DataFormat::XML,
                yang5::data::DataPrinterFlags::WITH_SIBLINGS,
            )
            .unwrap();
        assert!(
            xml.starts_with(
                "<peer-handshake xmlns=\"urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("<state>down</state>"), "{xml}");
        assert!(
            xml.contains("<latest-handshake>1970-01-01T00:00:00Z</latest-handshake>"),
            "{xml}"
        );
    }
}
