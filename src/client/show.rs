//! `wgnetconf show [IFACE]`: the device guide's `show tunnel wireguard`
//! view, read over NETCONF (`<get>` of the tunnel subtree, config and state).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Client, ClientError, Target};
use crate::protocol::xml::Elem;

pub const TUNNEL_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel";

fn leaf(e: &Elem, name: &str) -> Option<String> {
    e.elems().find(|c| c.local == name).map(Elem::text)
}

fn leaves(e: &Elem, name: &str) -> Vec<String> {
    e.elems()
        .filter(|c| c.local == name)
        .map(Elem::text)
        .collect()
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Seconds since a yang:date-and-time in UTC (`YYYY-MM-DDTHH:MM:SSZ`).
fn age(stamp: &str) -> Option<u64> {
    let s = stamp.trim_end_matches('Z');
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time
        .split(':')
        .map(|x| x.split('.').next().unwrap_or(x).parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let days = wgnetconf_plugin_api::time::days_from_civil(y, m, day);
    let then = days * 86400 + hh * 3600 + mm * 60 + ss;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    u64::try_from(now - then).ok()
}

/// Renders the view from the `<data>` of a `<get>`.
pub fn render(data: &Elem, only: Option<u32>) -> String {
    let mut out = String::new();
    let Some(tunnel) = data.elems().find(|e| e.local == "tunnel") else {
        return out;
    };
    for wg in tunnel.elems().filter(|e| e.local == "wireguard") {
        let Some(inst) = leaf(wg, "instance").and_then(|i| i.parse::<u32>().ok()) else {
            continue;
        };
        if only.is_some_and(|o| o != inst) {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("interface: wg{inst}\n"));
        if let Some(d) = leaf(wg, "description") {
            out.push_str(&format!("  description: {d}\n"));
        }
        out.push_str(&format!(
            "  public key: {}\n",
            leaf(wg, "public-key").unwrap_or_else(|| "(none)".into())
        ));
        out.push_str(&format!(
            "  listen port: {}\n",
            leaf(wg, "listen-port").unwrap_or_else(|| "51820".into())
        ));
        if leaf(wg, "enable").as_deref() == Some("false") {
            out.push_str("  enabled: no\n");
        }
        if let Some(s) = leaf(wg, "oper-status") {
            out.push_str(&format!("  status: {s}\n"));
        }
        if let Some(age) = leaf(wg, "private-key-age") {
            let max = leaf(wg, "max-private-key-age")
                .map(|m| format!(", maximum {m}"))
                .unwrap_or_default();
            let over = if leaf(wg, "private-key-age-exceeded").as_deref() == Some("true") {
                ": EXCEEDED, rotate the key"
            } else {
                ""
            };
            out.push_str(&format!("  private key age: {age} seconds{max}{over}\n"));
        }
        for a in leaves(wg, "address") {
            out.push_str(&format!("  address: {a}\n"));
        }
        for peer in wg.elems().filter(|e| e.local == "peer") {
            out.push_str(&format!(
                "\n  peer {}: {}\n",
                leaf(peer, "instance").unwrap_or_default(),
                leaf(peer, "public-key").unwrap_or_default()
            ));
            if let Some(d) = leaf(peer, "description") {
                out.push_str(&format!("    description: {d}\n"));
            }
            if leaf(peer, "enable").as_deref() == Some("false") {
                out.push_str("    enabled: no\n");
            }
            let endpoint = leaf(peer, "current-endpoint").or_else(|| {
                leaf(peer, "endpoint").map(|h| match leaf(peer, "listen-port") {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                })
            });
            if let Some(e) = endpoint {
                out.push_str(&format!("    endpoint: {e}\n"));
            }
            let ips = leaves(peer, "allowed-ip");
            out.push_str(&format!(
                "    allowed ips: {}\n",
                if ips.is_empty() {
                    "(none)".to_string()
                } else {
                    ips.join(", ")
                }
            ));
            match leaf(peer, "latest-handshake") {
                Some(h) => match age(&h) {
                    Some(a) => {
                        out.push_str(&format!("    latest handshake: {h} ({a} seconds ago)\n"))
                    }
                    None => out.push_str(&format!("    latest handshake: {h}\n")),
                },
                None => out.push_str("    latest handshake: (none)\n"),
            }
            let rx = leaf(peer, "rx-bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let tx = leaf(peer, "tx-bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.push_str(&format!(
                "    transfer: {} received, {} sent\n",
                bytes(rx),
                bytes(tx)
            ));
            match leaf(peer, "persistent-keepalive").filter(|k| k != "0") {
                Some(k) => out.push_str(&format!("    persistent keepalive: every {k} seconds\n")),
                None => out.push_str("    persistent keepalive: off\n"),
            }
        }
    }
    out
}

/// Parses `wg1` (or `1`) into the instance number.
pub fn instance_of(iface: &str) -> Option<u32> {
    iface.strip_prefix("wg").unwrap_or(iface).parse().ok()
}

pub async fn show(target: &Target, iface: Option<&str>) -> Result<String, ClientError> {
    let only = match iface {
        Some(i) => Some(
            instance_of(i)
                .ok_or_else(|| ClientError::Protocol(format!("{i}: not a wgN interface name")))?,
        ),
        None => None,
    };
    let mut c = Client::connect(target).await?;
    let filter = format!("<filter type=\"subtree\"><tunnel xmlns=\"{TUNNEL_NS}\"/></filter>");
    let data = c.get_data(&format!("<get>{filter}</get>")).await?;
    c.close().await;
    Ok(render(&data, only))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::xml;

    #[test]
    fn renders_interfaces_and_peers() {
        let d = xml::parse(format!(
            "<data><tunnel xmlns=\"{TUNNEL_NS}\"><wireguard><instance>1</instance><public-key>PUB</public-key><listen-port>51821</listen-port><max-private-key-age>3600</max-private-key-age><private-key-age>4000</private-key-age><private-key-age-exceeded>true</private-key-age-exceeded><peer><instance>2</instance><public-key>PEER</public-key><endpoint>192.0.2.1</endpoint><listen-port>51820</listen-port><allowed-ip>10.0.2.0/24</allowed-ip><rx-bytes>2048</rx-bytes><tx-bytes>10</tx-bytes><persistent-keepalive>25</persistent-keepalive></peer></wireguard><wireguard><instance>2</instance></wireguard></tunnel></data>"
        ).as_bytes())
        .unwrap();
        let all = render(&d, None);
        assert!(all.contains("interface: wg1\n  public key: PUB\n  listen port: 51821"));
        assert!(
            all.contains(
                "  private key age: 4000 seconds, maximum 3600: EXCEEDED, rotate the key\n"
            ),
            "{all}"
        );
        assert!(all.contains("peer 2: PEER"));
        assert!(all.contains("endpoint: 192.0.2.1:51820"));
        assert!(all.contains("allowed ips: 10.0.2.0/24"));
        assert!(all.contains("transfer: 2.00 KiB received, 10 B sent"));
        assert!(all.contains("persistent keepalive: every 25 seconds"));
        assert!(all.contains("interface: wg2"));
        let one = render(&d, Some(2));
        assert!(!one.contains("wg1"));
    }

    #[test]
    fn handshake_age() {
        assert!(age("2000-01-01T00:00:00Z").unwrap() > 700_000_000);
        assert_eq!(instance_of("wg7"), Some(7));
        assert_eq!(instance_of("eth0"), None);
    }
}
