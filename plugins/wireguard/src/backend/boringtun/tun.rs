//! The tun device of a userspace interface, opened with `IFF_VNET_HDR` so
//! that every read and write carries a `virtio_net_hdr`: with
//! `TUNSETOFFLOAD` the kernel then hands over TCP segments of up to 64 KiB
//! (TSO) with their checksum left to us, and accepts coalesced segments
//! (GRO) on write. What the running kernel accepts is probed at open and
//! reported in [`Offloads`]; without any, packets are plain IP packets
//! behind a zero header.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::backend::{BackendError, Result};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_VNET_HDR: libc::c_int = 0x4000;
/// `TUN_F_*` of `<linux/if_tun.h>`.
pub const TUN_F_CSUM: u32 = 0x01;
pub const TUN_F_TSO4: u32 = 0x02;
pub const TUN_F_TSO6: u32 = 0x04;
pub const TUN_F_USO4: u32 = 0x20;
pub const TUN_F_USO6: u32 = 0x40;

/// Size of `struct virtio_net_hdr` (the tun default header size).
pub const VNET_HDR_LEN: usize = 10;
/// `virtio_net_hdr.flags`: the checksum from `csum_start` is left to us.
pub const VNET_F_NEEDS_CSUM: u8 = 1;
/// `virtio_net_hdr.gso_type` values.
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

/// What the tun device does for us, as the kernel accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offloads {
    /// TCP segmentation (reads of up to 64 KiB) and coalesced writes.
    pub tso: bool,
    /// The same for UDP (Linux 6.2+).
    pub uso: bool,
}

/// `struct virtio_net_hdr`, little-endian on every Linux tun.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    pub fn write(&self, b: &mut [u8; VNET_HDR_LEN]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// One queue of tun device `name` (created if it does not exist), always
/// with a `virtio_net_hdr` in front of each packet, and the offloads the
/// kernel accepts when `offload` is asked: TSO+USO, else TSO, else none.
pub fn open(name: &str, offload: bool) -> Result<(OwnedFd, Offloads)> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(BackendError(format!("{name:?}: bad interface name")));
    }
    // SAFETY: a NUL-terminated path; the returned fd is checked.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(BackendError(format!(
            "open /dev/net/tun: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI | IFF_VNET_HDR) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq-sized buffer we own.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
        return Err(BackendError(format!(
            "{name}: create tun device: {} (needs CAP_NET_ADMIN)",
            std::io::Error::last_os_error()
        )));
    }
    let mut got = Offloads {
        tso: false,
        uso: false,
    };
    if offload {
        let tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        for (flags, o) in [
            (
                tso | TUN_F_USO4 | TUN_F_USO6,
                Offloads {
                    tso: true,
                    uso: true,
                },
            ),
            (
                tso,
                Offloads {
                    tso: true,
                    uso: false,
                },
            ),
        ] {
            // SAFETY: TUNSETOFFLOAD takes its argument by value.
            if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, flags as libc::c_ulong) }
                == 0
            {
                got = o;
                break;
            }
        }
    }
    Ok((fd, got))
}
