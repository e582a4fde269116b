//! Operational state: the config-false nodes, filled from the backend.

use std::collections::HashMap;

use wgnetconf_plugin_api::PluginError;
use yang5::data::{Data, DataTree};

use crate::backend::Backend;
use crate::keys::PublicKey;
use crate::model;
use crate::plan::Applied;

pub use wgnetconf_plugin_api::time::date_and_time;

fn set(oper: &mut DataTree<'static>, path: &str, value: &str) -> Result<(), PluginError> {
    oper.new_path(path, Some(value), false)
        .map(|_| ())
        .map_err(|e| PluginError::failed(format!("operational {path}: {e}")))
}

/// Fill public-key, oper-status and per-peer state of every applied interface.
pub fn fill(
    backend: &mut dyn Backend,
    applied: &Applied,
    oper: &mut DataTree<'static>,
) -> Result<(), PluginError> {
    for (&i, a) in &applied.ifaces {
        let base = model::iface_path(i);
        if oper.find_path(&base).is_err() {
            continue;
        }
        set(
            oper,
            &format!("{base}/public-key"),
            &a.public_key.to_base64(),
        )?;
        let st = backend
            .interface_state(&a.cfg.name)
            .map_err(|e| PluginError::failed(format!("{}: {e}", a.cfg.name)))?;
        let up = a.enable && st.as_ref().map(|s| s.up).unwrap_or(false);
        set(
            oper,
            &format!("{base}/oper-status"),
            if up { "up" } else { "down" },
        )?;
        let Some(st) = st else { continue };
        let by_key: HashMap<PublicKey, u32> = a
            .peers
            .iter()
            .filter(|(_, e)| e.programmed.is_some())
            .map(|(p, e)| (e.public_key, *p))
            .collect();
        for ps in &st.peers {
            let Some(&p) = by_key.get(&ps.public_key) else {
                continue;
            };
            let pbase = model::peer_path(i, p);
            if let Some(ep) = ps.endpoint {
                set(oper, &format!("{pbase}/current-endpoint"), &ep.to_string())?;
            }
            if let Some(t) = ps.last_handshake {
                set(
                    oper,
                    &format!("{pbase}/latest-handshake"),
                    &date_and_time(t),
                )?;
            }
            set(oper, &format!("{pbase}/rx-bytes"), &ps.rx_bytes.to_string())?;
            set(oper, &format!("{pbase}/tx-bytes"), &ps.tx_bytes.to_string())?;
        }
    }
    Ok(())
}

/// Every programmed peer of every enabled interface with its last
/// handshake, for [`crate::events`]. Interfaces the backend cannot read are
/// skipped.
pub fn handshakes(backend: &mut dyn Backend, applied: &Applied) -> Vec<crate::events::Seen> {
    let mut out = Vec::new();
    for (&i, a) in &applied.ifaces {
        if !a.enable {
            continue;
        }
        let Ok(Some(st)) = backend.interface_state(&a.cfg.name) else {
            continue;
        };
        let by_key: HashMap<PublicKey, u32> = a
            .peers
            .iter()
            .filter(|(_, e)| e.programmed.is_some())
            .map(|(p, e)| (e.public_key, *p))
            .collect();
        for ps in &st.peers {
            if let Some(&p) = by_key.get(&ps.public_key) {
                out.push((i, p, ps.public_key, ps.last_handshake));
            }
        }
    }
    out.sort_by_key(|s| (s.0, s.1));
    out
}
