//! Allowed IPs of all peers of one interface: longest-prefix match from an
//! address to the peer that owns it (cryptokey routing). One hash map per
//! prefix length in use, probed from the longest: a handful of lookups per
//! packet whatever the number of peers, and 10,000 peers cost only their
//! entries.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

/// Prefix → value, longest match first.
pub struct AllowedIps<T> {
    /// Per family (0 = IPv4, 1 = IPv6), per prefix length (longest first).
    by_len: [BTreeMap<std::cmp::Reverse<u8>, HashMap<u128, T>>; 2],
}

impl<T> Default for AllowedIps<T> {
    fn default() -> Self {
        AllowedIps {
            by_len: [BTreeMap::new(), BTreeMap::new()],
        }
    }
}

/// (family, prefix length, masked address as u128).
fn key(net: &IpNet) -> (usize, u8, u128) {
    let net = net.trunc();
    match net {
        IpNet::V4(n) => (0, n.prefix_len(), u32::from(n.addr()) as u128),
        IpNet::V6(n) => (1, n.prefix_len(), u128::from(n.addr())),
    }
}

fn masked(addr: u128, bits: u8, width: u8) -> u128 {
    if bits == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - bits);
    let keep = if width == 32 {
        keep & 0xffff_ffff
    } else {
        keep
    };
    addr & keep
}

impl<T> AllowedIps<T> {
    /// Sets `net` to `value`; returns what it held.
    pub fn insert(&mut self, net: &IpNet, value: T) -> Option<T> {
        let (f, len, a) = key(net);
        self.by_len[f]
            .entry(std::cmp::Reverse(len))
            .or_default()
            .insert(a, value)
    }

    pub fn remove(&mut self, net: &IpNet) -> Option<T> {
        let (f, len, a) = key(net);
        let map = self.by_len[f].get_mut(&std::cmp::Reverse(len))?;
        let v = map.remove(&a);
        if map.is_empty() {
            self.by_len[f].remove(&std::cmp::Reverse(len));
        }
        v
    }

    pub fn get(&self, net: &IpNet) -> Option<&T> {
        let (f, len, a) = key(net);
        self.by_len[f].get(&std::cmp::Reverse(len))?.get(&a)
    }

    /// The value of the longest prefix that contains `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<&T> {
        let (f, width, a) = match addr {
            IpAddr::V4(v) => (0, 32u8, u32::from(v) as u128),
            IpAddr::V6(v) => (1, 128u8, u128::from(v)),
        };
        self.by_len[f]
            .iter()
            .find_map(|(len, map)| map.get(&masked(a, len.0, width)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_removal_falls_back() {
        let mut t = AllowedIps::default();
        let n = |s: &str| s.parse::<IpNet>().expect("net");
        t.insert(&n("10.0.0.0/8"), 1);
        t.insert(&n("10.0.2.0/24"), 2);
        t.insert(&n("0.0.0.0/0"), 3);
        t.insert(&n("fd00::/64"), 4);
        let a = |s: &str| s.parse::<IpAddr>().expect("addr");
        assert_eq!(t.lookup(a("10.0.2.9")), Some(&2));
        assert_eq!(t.lookup(a("10.9.2.9")), Some(&1));
        assert_eq!(t.lookup(a("192.0.2.1")), Some(&3));
        assert_eq!(t.lookup(a("fd00::1")), Some(&4));
        assert_eq!(t.lookup(a("fd01::1")), None);
        // A host route given with host bits set is its network.
        assert_eq!(t.remove(&n("10.0.2.7/24")), Some(2));
        assert_eq!(t.lookup(a("10.0.2.9")), Some(&1));
        t.insert(&n("10.0.2.9/32"), 5);
        assert_eq!(t.lookup(a("10.0.2.9")), Some(&5));
        assert_eq!(t.get(&n("10.0.2.9/32")), Some(&5));
    }
}
