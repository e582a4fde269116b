//! The interface's UDP sockets (one IPv4, one IPv6-only, on the listen
//! port, as WireGuard implementations bind) and batched I/O on them:
//! trains of equal-sized datagrams go out in one `sendmsg` with UDP GSO
//! (`UDP_SEGMENT`) when the kernel offers it, else in one `sendmmsg`;
//! reception is `recvmmsg` with UDP GRO, so one call returns up to 64 KiB
//! of datagrams per slot.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::{BackendError, Result};

const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
/// Receive and send buffers asked for (SO_*BUFFORCE as root): the receive
/// buffer is where packets are lost under load.
pub const UDP_BUF: libc::c_int = 4 << 20;
/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Most bytes in one GSO send.
pub const MAX_GSO_BYTES: usize = 65_000;

pub struct Udp {
    pub v4: Option<OwnedFd>,
    pub v6: Option<OwnedFd>,
    pub port: u16,
    /// UDP GSO works on these sockets (cleared at the first EIO).
    gso: AtomicBool,
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: setsockopt reads one c_int we own.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

fn bind_one(v6: bool, port: u16) -> std::io::Result<OwnedFd> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is new and ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    if v6 {
        setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1);
    }
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if !setsockopt_int(raw, libc::SOL_SOCKET, force, UDP_BUF) {
            setsockopt_int(raw, libc::SOL_SOCKET, plain, UDP_BUF);
        }
    }
    // Best effort: without GRO each datagram is its own slot.
    setsockopt_int(raw, SOL_UDP, UDP_GRO, 1);
    let r = if v6 {
        // SAFETY: a C struct of integers and pointers; all-zero is valid.
        let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sa.sin6_port = port.to_be();
        // SAFETY: bind reads a sockaddr_in6 we own, of the size given.
        unsafe {
            libc::bind(
                raw,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    } else {
        // SAFETY: a C struct of integers and pointers; all-zero is valid.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = port.to_be();
        // SAFETY: as above, sockaddr_in.
        unsafe {
            libc::bind(
                raw,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

fn local_port(fd: RawFd) -> u16 {
    // SAFETY: a C struct of integers and pointers; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `ss`.
    if unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } != 0 {
        return 0;
    }
    from_storage(&ss).map(|a| a.port()).unwrap_or(0)
}

/// Whether the kernel accepts `UDP_SEGMENT` on this socket (Linux 4.18+).
fn gso_supported(fd: RawFd) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one c_int into `v`.
    unsafe {
        libc::getsockopt(
            fd,
            SOL_UDP,
            UDP_SEGMENT,
            &mut v as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        ) == 0
    }
}

impl Udp {
    /// Both sockets on `port` (0: a free port, the same for both). IPv6 is
    /// optional (a namespace may have it disabled); IPv4 is not.
    pub fn bind(port: u16) -> Result<Udp> {
        let err = |e: std::io::Error| BackendError(format!("UDP port {port}: {e}"));
        for _ in 0..16 {
            let v4 = bind_one(false, port).map_err(err)?;
            let actual = local_port(v4.as_raw_fd());
            let v6 = match bind_one(true, actual) {
                Ok(s) => Some(s),
                // The random IPv4 port is taken on IPv6: another one.
                Err(e) if port == 0 && e.raw_os_error() == Some(libc::EADDRINUSE) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => return Err(err(e)),
                Err(_) => None,
            };
            let gso = gso_supported(v4.as_raw_fd());
            return Ok(Udp {
                v4: Some(v4),
                v6,
                port: actual,
                gso: AtomicBool::new(gso),
            });
        }
        Err(BackendError(
            "no free UDP port for both IPv4 and IPv6".into(),
        ))
    }

    fn fd_for(&self, dst: &SocketAddr) -> Option<RawFd> {
        match dst {
            SocketAddr::V4(_) => self.v4.as_ref().map(|f| f.as_raw_fd()),
            SocketAddr::V6(_) => self.v6.as_ref().map(|f| f.as_raw_fd()),
        }
    }

    /// Sends one datagram. Errors are dropped packets, as on any network.
    pub fn send(&self, dst: SocketAddr, data: &[u8]) {
        self.send_train(dst, data, data.len().max(1));
    }

    /// Sends `data`, a train of datagrams of `seg` bytes each (the last may
    /// be shorter), to `dst`.
    pub fn send_train(&self, dst: SocketAddr, data: &[u8], seg: usize) {
        let Some(fd) = self.fd_for(&dst) else {
            return;
        };
        let (sa, salen) = to_storage(&dst);
        if data.len() > seg && self.gso.load(Ordering::Relaxed) {
            if send_gso(fd, &sa, salen, data, seg) {
                return;
            }
            // EIO: the route's device cannot checksum for GSO. Never again.
            self.gso.store(false, Ordering::Relaxed);
        }
        let chunks: Vec<&[u8]> = data.chunks(seg).collect();
        let mut iov: Vec<libc::iovec> = chunks
            .iter()
            .map(|c| libc::iovec {
                iov_base: c.as_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: a C struct of integers and pointers; all-zero is valid.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = &sa as *const _ as *mut libc::c_void;
                m.msg_hdr.msg_namelen = salen;
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut done = 0;
        while done < msgs.len() {
            // SAFETY: every mmsghdr points at our iovecs, our data and our
            // sockaddr, all alive for this call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs[done..].as_mut_ptr(),
                    (msgs.len() - done) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EAGAIN) && wait_writable(fd) {
                    continue;
                }
                return;
            }
            done += n as usize;
        }
    }
}

/// Blocks until `fd` can take more (the socket's send buffer is full).
fn wait_writable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd we own.
    unsafe { libc::poll(&mut p, 1, 1000) > 0 }
}

/// One `sendmsg` with `UDP_SEGMENT`; false when the kernel refused GSO.
fn send_gso(
    fd: RawFd,
    sa: &libc::sockaddr_storage,
    salen: libc::socklen_t,
    data: &[u8],
    seg: usize,
) -> bool {
    // SAFETY: CMSG_SPACE is a pure size computation.
    const SPACE: usize = unsafe { libc::CMSG_SPACE(2) } as usize;
    let mut control = [0u64; SPACE.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: a C struct of integers and pointers; all-zero is valid.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_name = sa as *const _ as *mut libc::c_void;
    m.msg_namelen = salen;
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    m.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    m.msg_controllen = SPACE as _;
    // SAFETY: the control buffer is CMSG_SPACE(2) bytes, aligned for
    // cmsghdr; CMSG_FIRSTHDR/DATA stay inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg as u16);
    }
    loop {
        // SAFETY: `m` points at our iovec, data, sockaddr and control.
        let n = unsafe { libc::sendmsg(fd, &m, 0) };
        if n >= 0 {
            return true;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) if wait_writable(fd) => continue,
            Some(libc::EIO) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => return false,
            // Any other error drops the train, as a lossy network would.
            _ => return true,
        }
    }
}

pub fn to_storage(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: a C struct of integers and pointers; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v) => {
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in; we write through a pointer to our own value.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v.ip()).to_be();
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v) => {
            // SAFETY: as above, sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v.port().to_be();
            sin6.sin6_addr.s6_addr = v.ip().octets();
            sin6.sin6_flowinfo = v.flowinfo();
            sin6.sin6_scope_id = v.scope_id();
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

pub fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Room for one slot: a datagram or a GRO train.
const SLOT: usize = 65_536;

/// Slots for `recvmmsg`: each receives one datagram or, with GRO, a train
/// of up to 64 KiB.
pub struct RecvBatch {
    /// The slots back to back, one allocation: large enough for pages of
    /// its own, which stay untouched (not resident) until packets arrive.
    /// Eight 64 KiB vectors came from the heap, zeroed by hand: 512 KiB
    /// resident per interface from its creation.
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<[u64; 8]>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

/// One received slot: sender, bytes, and the datagram size of the train
/// (its whole length when it is one datagram).
pub struct Received<'a> {
    pub from: SocketAddr,
    pub data: &'a [u8],
    pub seg: usize,
}

impl RecvBatch {
    pub fn new(slots: usize) -> RecvBatch {
        RecvBatch {
            bufs: vec![0u8; slots * SLOT],
            // SAFETY: a C struct of integers and pointers; all-zero is valid.
            names: vec![unsafe { std::mem::zeroed() }; slots],
            controls: vec![[0u64; 8]; slots],
            iovs: Vec::with_capacity(slots),
            msgs: Vec::with_capacity(slots),
        }
    }

    /// Non-blocking `recvmmsg` on `fd`; calls `f` per slot filled and
    /// returns how many (0: nothing waiting).
    pub fn recv(&mut self, fd: RawFd, mut f: impl FnMut(Received<'_>)) -> usize {
        self.iovs.clear();
        self.msgs.clear();
        for b in self.bufs.chunks_exact_mut(SLOT) {
            self.iovs.push(libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            });
        }
        for i in 0..self.iovs.len() {
            // SAFETY: a C struct of integers and pointers; all-zero is valid.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = &mut self.names[i] as *mut _ as *mut libc::c_void;
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            m.msg_hdr.msg_iov = &mut self.iovs[i];
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_control = self.controls[i].as_mut_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_controllen = std::mem::size_of::<[u64; 8]>() as _;
            self.msgs.push(m);
        }
        // SAFETY: every mmsghdr points into buffers owned by `self` that
        // outlive the call and are as large as the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                self.msgs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return 0;
        }
        for i in 0..n as usize {
            let m = &self.msgs[i];
            let len = m.msg_len as usize;
            let Some(from) = from_storage(&self.names[i]) else {
                continue;
            };
            let mut seg = len;
            // SAFETY: the kernel filled msg_controllen bytes of our control
            // buffer; the CMSG_* macros walk inside that length.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&m.msg_hdr);
                while !c.is_null() {
                    if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                        let s = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                        if s > 0 {
                            seg = s as usize;
                        }
                    }
                    c = libc::CMSG_NXTHDR(&m.msg_hdr, c);
                }
            }
            f(Received {
                from: unmap(from),
                data: &self.bufs[i * SLOT..i * SLOT + len.min(SLOT)],
                seg,
            });
        }
        n as usize
    }
}

/// An IPv4-mapped IPv6 sender as the IPv4 address it is.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v) => match v.ip().to_ipv4_mapped() {
            Some(ip4) => SocketAddr::V4(SocketAddrV4::new(ip4, v.port())),
            None => a,
        },
        a => a,
    }
}
