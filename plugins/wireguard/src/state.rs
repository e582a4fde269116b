//! Operational state: the config-false nodes, filled from the backend.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use wgnetconf_plugin_api::PluginError;
use yang5::data::{Data, DataTree};

use crate::backend::Backend;
use crate::keys::PublicKey;
use crate::model;
use crate::plan::Applied;

/// RFC 3339 / yang:date-and-time in UTC, e.g. `2026-11-25T10:00:00Z`.
pub fn date_and_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn date_and_time_format() {
        assert_eq!(date_and_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            date_and_time(UNIX_EPOCH + Duration::from_secs(1_795_609_845)),
            "2026-11-25T12:30:45Z"
        );
    }
}
