//! Segmentation and coalescing between the tun device's offloaded packets
//! and WireGuard's one-IP-packet-per-datagram.
//!
//! - [`for_each_segment`]: a tun read (a `virtio_net_hdr` and up to 64 KiB:
//!   a TCP (TSO) or UDP (USO) segment train with one set of headers, or one
//!   packet whose checksum is left to us) becomes the IP packets it stands
//!   for, each with its headers and checksums complete. The segments are
//!   built in place: segment i's headers are written over the tail of
//!   segment i−1's payload, which has been consumed by then.
//! - [`Coalescer`]: decrypted packets on their way to the tun device; runs
//!   of in-order TCP segments of one flow are merged into one GSO packet
//!   (what the kernel's GRO does for a NIC) so the receiving stack handles
//!   one packet per 64 KiB, not per 1.4 KiB. Each merged segment's TCP
//!   checksum is verified first: the merged packet's checksum is left to
//!   the kernel, which would otherwise never see a bad one.

use super::tun::{
    VnetHdr, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN,
};

const TCP: u8 = 6;
const UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_CWR: u8 = 0x80;

/// Ones'-complement sum of `data` (as big-endian 16-bit words) added to `acc`.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        // 2^16 ≡ 1 (mod 2^16 − 1): a 32-bit word adds its two halves.
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let r = chunks.remainder();
    let b = |i: usize| r.get(i).copied().unwrap_or(0) as u64;
    acc += match r.len() {
        0 => 0,
        1 => b(0) << 8,
        2 => (b(0) << 8) | b(1),
        _ => ((b(0) << 8) | b(1)) + (b(2) << 8),
    };
    acc
}

pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The pseudo-header sum of the IP packet starting at `ip` for an L4
/// segment of `len` bytes of protocol `proto`.
fn pseudo(ip: &[u8], proto: u8, len: usize) -> u64 {
    let acc = proto as u64 + len as u64;
    if ip[0] >> 4 == 4 {
        sum(&ip[12..20], acc)
    } else {
        sum(&ip[8..40], acc)
    }
}

fn ipv4_header_checksum(ip: &mut [u8]) {
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    ip[10] = 0;
    ip[11] = 0;
    let c = !fold(sum(&ip[..ihl], 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Why a tun read was dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Calls `f` with each IP packet of one tun read (`hdr` and the packet
/// behind it), checksums completed; returns how many.
pub fn for_each_segment(
    hdr: &VnetHdr,
    pkt: &mut [u8],
    mut f: impl FnMut(&[u8]),
) -> Result<usize, Malformed> {
    let l4 = hdr.csum_start as usize;
    if hdr.gso_type & !super::tun::GSO_ECN == GSO_NONE {
        if hdr.flags & VNET_F_NEEDS_CSUM != 0 {
            let at = l4 + hdr.csum_offset as usize;
            if at + 2 > pkt.len() {
                return Err(Malformed("checksum offset beyond the packet"));
            }
            let c = !fold(sum(&pkt[l4..], 0));
            pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        f(pkt);
        return Ok(1);
    }
    let gso = hdr.gso_type & !super::tun::GSO_ECN;
    let (proto, l4_len) = match gso {
        GSO_TCPV4 | GSO_TCPV6 => {
            let off = pkt.get(l4 + 12).ok_or(Malformed("short TCP header"))?;
            (TCP, ((off >> 4) as usize) * 4)
        }
        GSO_UDP_L4 => (UDP, 8),
        _ => return Err(Malformed("unknown GSO type")),
    };
    let hlen = l4 + l4_len;
    let mss = hdr.gso_size as usize;
    let v4 = pkt.first().map(|b| b >> 4) == Some(4);
    let min_l4 = if proto == TCP { 20 } else { 8 };
    if mss == 0 || hlen > pkt.len() || l4 < if v4 { 20 } else { 40 } || l4_len < min_l4 {
        return Err(Malformed("bad GSO headers"));
    }
    let mut headers = [0u8; 256];
    if hlen > headers.len() {
        return Err(Malformed("headers too long"));
    }
    headers[..hlen].copy_from_slice(&pkt[..hlen]);
    let payload = pkt.len() - hlen;
    let n = payload.div_ceil(mss);
    let id = u16::from_be_bytes([headers[4], headers[5]]);
    let seq = u32::from_be_bytes([
        headers[l4 + 4],
        headers[l4 + 5],
        headers[l4 + 6],
        headers[l4 + 7],
    ]);
    for i in 0..n {
        let start = hlen + i * mss;
        let plen = mss.min(pkt.len() - start);
        let seg = &mut pkt[start - hlen..start + plen];
        seg[..hlen].copy_from_slice(&headers[..hlen]);
        let total = hlen + plen;
        if v4 {
            seg[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            seg[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
            ipv4_header_checksum(seg);
        } else {
            seg[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
        }
        let (ck_at, seg_len) = if proto == TCP {
            let s = seq.wrapping_add((i * mss) as u32);
            seg[l4 + 4..l4 + 8].copy_from_slice(&s.to_be_bytes());
            let flags = &mut seg[l4 + 13];
            if i + 1 < n {
                *flags &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                *flags &= !TCP_CWR;
            }
            (l4 + 16, l4_len + plen)
        } else {
            seg[l4 + 4..l4 + 6].copy_from_slice(&((8 + plen) as u16).to_be_bytes());
            (l4 + 6, 8 + plen)
        };
        seg[ck_at] = 0;
        seg[ck_at + 1] = 0;
        let mut c = !fold(sum(&seg[l4..], pseudo(seg, proto, seg_len)));
        if proto == UDP && c == 0 {
            c = 0xffff;
        }
        seg[ck_at..ck_at + 2].copy_from_slice(&c.to_be_bytes());
        f(seg);
    }
    Ok(n)
}

/// The TCP view of an IP packet that may be merged with others.
struct Tcp {
    v4: bool,
    /// Offset of the TCP header and of the payload.
    l4: usize,
    data: usize,
    seq: u32,
    flags: u8,
}

/// `pkt` as a plain TCP segment (no IP options or extension headers, not
/// a fragment) with payload and a valid checksum, else None.
fn tcp_of(pkt: &[u8]) -> Option<Tcp> {
    let v4 = pkt.first()? >> 4 == 4;
    let l4 = if v4 {
        if pkt.len() < 40
            || pkt[0] & 0x0f != 5
            || pkt[9] != TCP
            || u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff != 0
            || u16::from_be_bytes([pkt[2], pkt[3]]) as usize != pkt.len()
        {
            return None;
        }
        20
    } else {
        if pkt.len() < 60
            || pkt[6] != TCP
            || u16::from_be_bytes([pkt[4], pkt[5]]) as usize + 40 != pkt.len()
        {
            return None;
        }
        40
    };
    let data = l4 + ((pkt[l4 + 12] >> 4) as usize) * 4;
    if data < l4 + 20 || data >= pkt.len() {
        return None;
    }
    if fold(sum(&pkt[l4..], pseudo(pkt, TCP, pkt.len() - l4))) != 0xffff {
        return None;
    }
    Some(Tcp {
        v4,
        l4,
        data,
        seq: u32::from_be_bytes([pkt[l4 + 4], pkt[l4 + 5], pkt[l4 + 6], pkt[l4 + 7]]),
        flags: pkt[l4 + 13],
    })
}

/// Largest merged IP packet.
const MAX_MERGED: usize = 65535;

/// Decrypted packets waiting for the tun device, merged where they can be.
/// `push` returns the buffer (virtio_net_hdr + packet) to write when the
/// packet cannot join the open merge; `flush` ends it.
pub struct Coalescer {
    /// Whether the tun accepts GSO packets (TSO granted).
    enabled: bool,
    buf: Vec<u8>,
    open: Option<Open>,
}

struct Open {
    tcp: Tcp,
    /// Payload size of the first segment (the GSO size).
    mss: usize,
    /// Payload bytes so far, segments so far.
    payload: usize,
    segments: usize,
    /// A shorter segment or PSH ended the run.
    closed: bool,
}

impl Coalescer {
    pub fn new(enabled: bool) -> Coalescer {
        Coalescer {
            enabled,
            buf: Vec::with_capacity(VNET_HDR_LEN + MAX_MERGED),
            open: None,
        }
    }

    /// Adds one decrypted IP packet. When it cannot join the open run,
    /// `write` gets the run first (a vnet header and the packet), then
    /// the packet starts a new run (or is written at once when it can
    /// never be merged).
    pub fn push(&mut self, pkt: &[u8], write: &mut impl FnMut(&[u8])) {
        if self.enabled && self.try_append(pkt) {
            return;
        }
        self.flush(write);
        let tcp = if self.enabled { tcp_of(pkt) } else { None };
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; VNET_HDR_LEN]);
        self.buf.extend_from_slice(pkt);
        match tcp {
            Some(tcp) if tcp.flags & !(TCP_ACK | TCP_PSH) == 0 && tcp.flags & TCP_ACK != 0 => {
                let mss = pkt.len() - tcp.data;
                let closed = tcp.flags & TCP_PSH != 0;
                self.open = Some(Open {
                    tcp,
                    mss,
                    payload: mss,
                    segments: 1,
                    closed,
                });
            }
            _ => {
                write(&self.buf);
                self.buf.clear();
            }
        }
    }

    fn try_append(&mut self, pkt: &[u8]) -> bool {
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        if open.closed {
            return false;
        }
        let head = &self.buf[VNET_HDR_LEN..];
        let t = &open.tcp;
        if pkt.len() <= t.data || pkt.len() < head.len().min(t.data) {
            return false;
        }
        // Same IP header apart from length, id and checksum (v4), same
        // TCP header apart from seq, flags, window and checksum.
        let same_ip = if t.v4 {
            pkt[0..2] == head[0..2] && pkt[6..10] == head[6..10] && pkt[12..20] == head[12..20]
        } else {
            pkt[0..4] == head[0..4] && pkt[6..40] == head[6..40]
        };
        let l4 = t.l4;
        if !same_ip
            || pkt[l4..l4 + 4] != head[l4..l4 + 4]
            || pkt[l4 + 8..l4 + 12] != head[l4 + 8..l4 + 12]
            || pkt[l4 + 12] != head[l4 + 12]
            || pkt[l4 + 20..t.data] != head[l4 + 20..t.data]
        {
            return false;
        }
        let flags = pkt[l4 + 13];
        let seq = u32::from_be_bytes([pkt[l4 + 4], pkt[l4 + 5], pkt[l4 + 6], pkt[l4 + 7]]);
        let plen = pkt.len() - t.data;
        if flags & !TCP_PSH != TCP_ACK
            || seq != t.seq.wrapping_add(open.payload as u32)
            || plen > open.mss
            || t.data + open.payload + plen > MAX_MERGED
        {
            return false;
        }
        if tcp_of(pkt).is_none() {
            return false;
        }
        self.buf.extend_from_slice(&pkt[t.data..]);
        open.payload += plen;
        open.segments += 1;
        if flags & TCP_PSH != 0 {
            self.buf[VNET_HDR_LEN + l4 + 13] |= TCP_PSH;
            open.closed = true;
        }
        if plen < open.mss {
            open.closed = true;
        }
        true
    }

    /// Writes the open run, if any.
    pub fn flush(&mut self, write: &mut impl FnMut(&[u8])) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.segments > 1 {
            let t = &open.tcp;
            let ip = &mut self.buf[VNET_HDR_LEN..];
            let total = ip.len();
            if t.v4 {
                ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                ipv4_header_checksum(ip);
            } else {
                ip[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            }
            // NEEDS_CSUM: the field holds the pseudo-header sum, the
            // kernel adds the segment's.
            let p = fold(pseudo(ip, TCP, total - t.l4));
            ip[t.l4 + 16..t.l4 + 18].copy_from_slice(&p.to_be_bytes());
            let hdr = VnetHdr {
                flags: VNET_F_NEEDS_CSUM,
                gso_type: if t.v4 { GSO_TCPV4 } else { GSO_TCPV6 },
                hdr_len: t.data as u16,
                gso_size: open.mss as u16,
                csum_start: t.l4 as u16,
                csum_offset: 16,
            };
            let mut h = [0u8; VNET_HDR_LEN];
            hdr.write(&mut h);
            self.buf[..VNET_HDR_LEN].copy_from_slice(&h);
        }
        write(&self.buf);
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP packet 10.0.0.1:1000 → 10.0.0.2:2000 with a valid
    /// checksum.
    fn tcp4(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let total = 40 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = TCP;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        ipv4_header_checksum(&mut p);
        p[20..22].copy_from_slice(&1000u16.to_be_bytes());
        p[22..24].copy_from_slice(&2000u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&7u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p[34..36].copy_from_slice(&512u16.to_be_bytes());
        p[40..].copy_from_slice(payload);
        let c = !fold(sum(&p[20..], pseudo(&p, TCP, total - 20)));
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn checksum_of_odd_lengths() {
        // RFC 1071's example words.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(
            fold(sum(&d[..7], 0)),
            fold(sum(&[&d[..6], &[0xf6, 0][..]].concat(), 0))
        );
    }

    #[test]
    fn tso_train_is_split_into_valid_segments_and_merged_back() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        // The train as the kernel hands it over: one header, checksum
        // field holding the pseudo-header sum only.
        let mut train = tcp4(1000, TCP_ACK | TCP_PSH, &payload);
        let hdr = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 1400,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut segs: Vec<Vec<u8>> = Vec::new();
        let n = for_each_segment(&hdr, &mut train, |s| segs.push(s.to_vec())).expect("split");
        assert_eq!(n, 3);
        let lens: Vec<usize> = segs.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [1440, 1440, 240]);
        for (i, s) in segs.iter().enumerate() {
            let t = tcp_of(s).expect("valid segment");
            assert_eq!(t.seq, 1000 + 1400 * i as u32);
            // PSH only on the last.
            assert_eq!(t.flags & TCP_PSH != 0, i == 2);
            assert_eq!(&s[40..], &payload[i * 1400..(i * 1400 + 1400).min(3000)]);
        }
        // Merged back: one GSO packet with the whole payload.
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut c = Coalescer::new(true);
        let mut w = |b: &[u8]| out.push(b.to_vec());
        for s in &segs {
            c.push(s, &mut w);
        }
        c.flush(&mut w);
        assert_eq!(out.len(), 1);
        let h = VnetHdr::parse(&out[0]).expect("hdr");
        assert_eq!(
            (h.gso_type, h.gso_size, h.csum_start),
            (GSO_TCPV4, 1400, 20)
        );
        assert_eq!(&out[0][VNET_HDR_LEN + 40..], &payload[..]);
        assert_eq!(out[0][VNET_HDR_LEN + 33] & TCP_PSH, TCP_PSH);
    }

    #[test]
    fn out_of_order_or_corrupt_segments_are_not_merged() {
        let a = tcp4(0, TCP_ACK, &[1; 100]);
        let gap = tcp4(200, TCP_ACK, &[2; 100]);
        let mut bad = tcp4(100, TCP_ACK, &[3; 100]);
        bad[50] ^= 1;
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut c = Coalescer::new(true);
        let mut w = |b: &[u8]| out.push(b.to_vec());
        for s in [&a, &gap, &bad] {
            c.push(s, &mut w);
        }
        c.flush(&mut w);
        // Three writes, each the packet as it came with an empty header.
        assert_eq!(out.len(), 3);
        for (o, p) in out.iter().zip([&a, &gap, &bad]) {
            assert_eq!(VnetHdr::parse(o), Some(VnetHdr::default()));
            assert_eq!(&o[VNET_HDR_LEN..], &p[..]);
        }
    }

    #[test]
    fn uso_train_is_split_into_udp_datagrams_with_checksums() {
        // IPv6 UDP, 2,500 bytes in 1,000-byte datagrams.
        let payload: Vec<u8> = (0..2500u32).map(|i| (i * 3) as u8).collect();
        let mut p = vec![0u8; 48 + payload.len()];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p[6] = UDP;
        p[7] = 64;
        p[8..24].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p[24..40].copy_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p[40..42].copy_from_slice(&443u16.to_be_bytes());
        p[42..44].copy_from_slice(&4433u16.to_be_bytes());
        p[48..].copy_from_slice(&payload);
        let hdr = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            hdr_len: 48,
            gso_size: 1000,
            csum_start: 40,
            csum_offset: 6,
        };
        let mut segs: Vec<Vec<u8>> = Vec::new();
        let n = for_each_segment(&hdr, &mut p, |s| segs.push(s.to_vec())).expect("split");
        assert_eq!(n, 3);
        for (i, s) in segs.iter().enumerate() {
            let plen = s.len() - 48;
            assert_eq!(plen, if i < 2 { 1000 } else { 500 });
            assert_eq!(u16::from_be_bytes([s[4], s[5]]) as usize, 8 + plen);
            assert_eq!(u16::from_be_bytes([s[44], s[45]]) as usize, 8 + plen);
            assert_eq!(fold(sum(&s[40..], pseudo(s, UDP, 8 + plen))), 0xffff);
            assert_eq!(&s[48..], &payload[i * 1000..i * 1000 + plen]);
        }
    }

    #[test]
    fn malformed_trains_are_refused() {
        let mut p = tcp4(0, TCP_ACK, &[0; 100]);
        let mut hdr = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 0,
            csum_start: 20,
            csum_offset: 16,
        };
        assert!(for_each_segment(&hdr, &mut p, |_| {}).is_err());
        hdr.gso_size = 50;
        hdr.csum_start = 200;
        assert!(for_each_segment(&hdr, &mut p, |_| {}).is_err());
        hdr.gso_type = 9;
        hdr.csum_start = 20;
        assert!(for_each_segment(&hdr, &mut p, |_| {}).is_err());
    }
}
