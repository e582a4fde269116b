//! Checks YANG cannot express. Every error names the instance path of the
//! offending leaf (libyang JSON form) and says what to do.

use std::collections::{BTreeSet, HashMap};

use ipnet::IpNet;
use wgnetconf_plugin_api::PluginError;
use yang5::data::DataTree;

use crate::keys::{PublicKey, SecretKey};
use crate::model::{self, Touched};
use crate::plan::Applied;

/// Validate the touched interfaces of `new` against the applied state.
pub fn validate(applied: &Applied, new: &DataTree<'static>, touched: &Touched) -> Vec<PluginError> {
    let mut errs = Vec::new();
    for (&i, t) in touched {
        let Some(m) = model::read_iface(new, i) else {
            continue;
        };
        let base = model::iface_path(i);
        let old = applied.ifaces.get(&i);
        let own: Option<PublicKey> = match &m.private_key {
            Some(text) => match SecretKey::from_base64(text) {
                Ok(k) => match old {
                    Some(o) if o.cfg.private_key == k => Some(o.public_key),
                    _ => Some(k.public_key()),
                },
                Err(e) => {
                    errs.push(PluginError::invalid(
                        format!("{base}/private-key"),
                        format!("private key of wg{i}: {e}"),
                    ));
                    None
                }
            },
            None => None,
        };
        for a in &m.addresses {
            if a.parse::<IpNet>().is_err() {
                errs.push(PluginError::invalid(
                    format!("{base}/address[.='{a}']"),
                    format!("{a} is not an address with a prefix length (e.g. 10.0.0.1/24)"),
                ));
            }
        }
        let whole = t.whole || old.is_none();
        let key_changed = old.map(|o| Some(o.public_key) != own).unwrap_or(true);
        let peers = if whole || key_changed {
            model::read_all_peers(new, i)
        } else {
            t.peers
                .iter()
                .filter_map(|&p| model::read_peer(new, i, p))
                .collect()
        };
        let checked: BTreeSet<u32> = if whole || key_changed {
            peers.iter().map(|p| p.instance).collect()
        } else {
            t.peers.clone()
        };
        let mut seen: HashMap<IpNet, u32> = HashMap::with_capacity(peers.len());
        for pm in &peers {
            // Paths only for errors: built per peer they were a good part
            // of validating 10,000 valid peers.
            let pbase = || model::peer_path(i, pm.instance);
            match PublicKey::from_base64(&pm.public_key) {
                Ok(k) if Some(k) == own => errs.push(PluginError::invalid(
                    format!("{}/public-key", pbase()),
                    format!(
                        "peer {} of wg{i} has wg{i}'s own public key; a peer's public-key is the \
                         remote side's key (run 'wg pubkey' on the remote private key)",
                        pm.instance
                    ),
                )),
                Ok(_) => {}
                Err(e) => errs.push(PluginError::invalid(
                    format!("{}/public-key", pbase()),
                    format!("public key of peer {} of wg{i}: {e}", pm.instance),
                )),
            }
            if let Some(psk) = &pm.preshared_key {
                if let Err(e) = SecretKey::from_base64(psk) {
                    errs.push(PluginError::invalid(
                        format!("{}/preshared-key", pbase()),
                        format!("preshared key of peer {} of wg{i}: {e}", pm.instance),
                    ));
                }
            }
            for s in &pm.allowed_ips {
                let path = || format!("{}/allowed-ip[.='{s}']", pbase());
                let Ok(net) = s.parse::<IpNet>() else {
                    errs.push(PluginError::invalid(
                        path(),
                        format!("{s} is not an IP prefix (e.g. 10.0.2.0/24)"),
                    ));
                    continue;
                };
                if net.addr() != net.network() {
                    errs.push(PluginError::invalid(
                        path(),
                        format!(
                            "allowed-ip {s} has host bits set: did you mean {}/{}?",
                            net.network(),
                            net.prefix_len()
                        ),
                    ));
                    continue;
                }
                let mut owner = seen.get(&net).copied().filter(|&q| q != pm.instance);
                if owner.is_none() && !whole {
                    owner = old
                        .and_then(|o| o.owner.get(&net).copied())
                        .filter(|q| *q != pm.instance && !checked.contains(q));
                }
                match owner {
                    Some(q) => errs.push(PluginError::invalid(
                        path(),
                        format!(
                            "allowed-ip {net} is already an allowed-ip of peer {q} of wg{i}; a \
                             network can belong to one peer only (WireGuard would silently move \
                             it). Remove it from one of them"
                        ),
                    )),
                    None => {
                        seen.insert(net, pm.instance);
                    }
                }
            }
        }
    }
    errs
}
