//! Synchronous netlink: rtnetlink (links, addresses, routes) and a generic
//! transport reused by the kernel backend's generic netlink family.
//!
//! Sockets are opened per call site in the calling thread's network
//! namespace, so an agent run with `ip netns exec NS ...` (or a thread that
//! entered a namespace with `setns`) programs that namespace.

use std::fmt::Debug;
use std::net::IpAddr;
use std::ops::ControlFlow;

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols, Socket, SocketAddr};

use super::{BackendError, Result};

/// A netlink socket speaking one protocol, request/response.
pub struct NlSocket {
    socket: Socket,
    seq: u32,
}

impl NlSocket {
    pub fn new(protocol: isize) -> Result<Self> {
        let mut socket =
            Socket::new(protocol).map_err(|e| BackendError(format!("netlink socket: {e}")))?;
        socket
            .bind_auto()
            .map_err(|e| BackendError(format!("netlink bind: {e}")))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| BackendError(format!("netlink connect: {e}")))?;
        let _ = socket.set_ext_ack(true);
        Ok(NlSocket { socket, seq: 1 })
    }

    /// Appends `inner` to `buf` as the next request (its own sequence
    /// number), on the 4-byte boundary the next message starts at.
    fn push_request<I>(&mut self, inner: I, flags: u16, buf: &mut Vec<u8>)
    where
        I: NetlinkSerializable + Debug,
    {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        let at = buf.len();
        buf.resize(at + msg.buffer_len(), 0);
        msg.serialize(&mut buf[at..]);
        buf.resize(buf.len().next_multiple_of(4), 0);
    }

    /// Send one request and collect the replies until the ACK (or DONE for
    /// a dump). An error reply becomes an `io::Error` text.
    pub fn request<I>(&mut self, inner: I, flags: u16) -> std::io::Result<Vec<I>>
    where
        I: NetlinkSerializable + NetlinkDeserializable + Debug,
    {
        // A non-dump request asks for an ACK too: a GET without it is
        // answered by the object alone, and the loop below would wait for an
        // ACK that never comes.
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let ack = if dump { 0 } else { NLM_F_ACK };
        let mut buf = Vec::new();
        self.push_request(inner, ack | flags, &mut buf);
        self.socket.send(&buf, 0)?;

        let seq = self.seq;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let end = for_each_message::<I, std::io::Result<()>>(&data, |reply| {
                if reply.header.sequence_number != seq {
                    return ControlFlow::Continue(());
                }
                match reply.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        ControlFlow::Break(Err(e.to_io()))
                    }
                    NetlinkPayload::Error(_) if !dump => ControlFlow::Break(Ok(())),
                    NetlinkPayload::Done(_) => ControlFlow::Break(Ok(())),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        ControlFlow::Continue(())
                    }
                    _ => ControlFlow::Continue(()),
                }
            })?;
            if let ControlFlow::Break(r) = end {
                return r.map(|()| out);
            }
        }
    }

    /// Sends `msgs` as requests with ACK in one `send` (the kernel runs
    /// them in order and acknowledges each) and returns each one's outcome,
    /// in order. An error of one does not stop the later ones.
    pub fn request_acks<I>(
        &mut self,
        msgs: Vec<I>,
        flags: u16,
    ) -> std::io::Result<Vec<std::io::Result<()>>>
    where
        I: NetlinkSerializable + NetlinkDeserializable + Debug,
    {
        let n = msgs.len();
        let first = self.seq.wrapping_add(1);
        let mut buf = Vec::new();
        for inner in msgs {
            self.push_request(inner, NLM_F_ACK | flags, &mut buf);
        }
        self.socket.send(&buf, 0)?;
        let mut out: Vec<Option<std::io::Result<()>>> = (0..n).map(|_| None).collect();
        let mut remaining = n;
        while remaining > 0 {
            let (data, _) = self.socket.recv_from_full()?;
            // Every message is looked at: the closure never breaks.
            let _ = for_each_message::<I, ()>(&data, |reply| {
                let i = reply.header.sequence_number.wrapping_sub(first) as usize;
                if let (Some(slot @ None), NetlinkPayload::Error(e)) =
                    (out.get_mut(i), reply.payload)
                {
                    *slot = Some(match e.code {
                        None => Ok(()),
                        Some(_) => Err(e.to_io()),
                    });
                    remaining -= 1;
                }
                ControlFlow::Continue(())
            })?;
        }
        Ok(out.into_iter().map(|o| o.unwrap_or(Ok(()))).collect())
    }
}

/// Hands the netlink messages of one received datagram to `f`, in order,
/// until `f` breaks (its value is returned) or the datagram ends.
fn for_each_message<I, R>(
    data: &[u8],
    mut f: impl FnMut(NetlinkMessage<I>) -> ControlFlow<R>,
) -> std::io::Result<ControlFlow<R>>
where
    I: NetlinkDeserializable + Debug,
{
    let mut offset = 0;
    while offset < data.len() {
        let reply = NetlinkMessage::<I>::deserialize(&data[offset..])
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let len = reply.header.length as usize;
        if len == 0 {
            break;
        }
        offset += (len + 3) & !3;
        if let ControlFlow::Break(r) = f(reply) {
            return Ok(ControlFlow::Break(r));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Route requests sent per `send` by [`Rtnl::add_routes`].
const ROUTES_PER_SEND: usize = 128;

fn io_err(what: &str, e: std::io::Error) -> BackendError {
    BackendError(format!("{what}: {e}"))
}

/// Index of a link by name in this thread's network namespace.
pub fn link_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: if_nametoindex reads the NUL-terminated name `c` owns.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

pub fn need_index(name: &str) -> Result<u32> {
    link_index(name).ok_or_else(|| BackendError(format!("{name}: no such interface")))
}

/// rtnetlink operations.
pub struct Rtnl {
    sock: NlSocket,
}

/// What [`Rtnl::link`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub mtu: u32,
    pub admin_up: bool,
    pub oper_up: bool,
}

impl Rtnl {
    pub fn new() -> Result<Self> {
        Ok(Rtnl {
            sock: NlSocket::new(protocols::NETLINK_ROUTE)?,
        })
    }

    fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> Result<()> {
        self.sock
            .request(msg, NLM_F_ACK | flags)
            .map(|_| ())
            .map_err(|e| io_err(what, e))
    }

    /// Create a link of kind `wireguard` (kernel backend).
    pub fn create_wireguard_link(&mut self, name: &str) -> Result<()> {
        let msg = wireguard_link_message(name);
        self.ack(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("create {name}"),
        )
    }

    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let index = need_index(name)?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.ack(
            RouteNetlinkMessage::DelLink(msg),
            0,
            &format!("delete {name}"),
        )
    }

    /// Set MTU and/or administrative state.
    pub fn set_link(&mut self, name: &str, mtu: Option<u16>, up: Option<bool>) -> Result<()> {
        let index = need_index(name)?;
        let msg = set_link_message(index, mtu, up);
        self.ack(RouteNetlinkMessage::SetLink(msg), 0, &format!("set {name}"))
    }

    pub fn link(&mut self, name: &str) -> Result<Option<LinkState>> {
        let Some(index) = link_index(name) else {
            return Ok(None);
        };
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let replies = self
            .sock
            .request(RouteNetlinkMessage::GetLink(msg), 0)
            .map_err(|e| io_err(&format!("get {name}"), e))?;
        for r in replies {
            if let RouteNetlinkMessage::NewLink(l) = r {
                let mtu = l
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::Mtu(m) => Some(*m),
                        _ => None,
                    })
                    .unwrap_or(0);
                return Ok(Some(LinkState {
                    index,
                    mtu,
                    admin_up: l.header.flags.contains(LinkFlags::Up),
                    oper_up: l.header.flags.contains(LinkFlags::Up)
                        && l.header.flags.contains(LinkFlags::Running),
                }));
            }
        }
        Ok(None)
    }

    pub fn add_address(&mut self, name: &str, addr: IpNet) -> Result<()> {
        let index = need_index(name)?;
        self.ack(
            RouteNetlinkMessage::NewAddress(address_message(index, addr)),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("{name}: add address {addr}"),
        )
    }

    pub fn remove_address(&mut self, name: &str, addr: IpNet) -> Result<()> {
        let index = need_index(name)?;
        self.ack(
            RouteNetlinkMessage::DelAddress(address_message(index, addr)),
            0,
            &format!("{name}: remove address {addr}"),
        )
    }

    /// Addresses of a link, without IPv6 link-local ones, sorted.
    pub fn addresses(&mut self, name: &str) -> Result<Vec<IpNet>> {
        let Some(index) = link_index(name) else {
            return Ok(Vec::new());
        };
        let replies = self
            .sock
            .request(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|e| io_err("dump addresses", e))?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            let local = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = addr {
                if let IpAddr::V6(v6) = ip {
                    if v6.segments()[0] & 0xffc0 == 0xfe80 {
                        continue;
                    }
                }
                if let Ok(net) = IpNet::new(ip, a.header.prefix_len) {
                    out.push(net);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn add_route(&mut self, name: &str, dest: IpNet) -> Result<()> {
        let index = need_index(name)?;
        self.ack(
            RouteNetlinkMessage::NewRoute(route_message(index, dest)),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("{name}: add route {dest}"),
        )
    }

    /// Routes to each of `dests` via `name`, in order, [`ROUTES_PER_SEND`]
    /// requests per system call. On failure the routes before the index
    /// returned are added and none from it on (later ones the kernel added
    /// from the same send are taken back).
    pub fn add_routes(
        &mut self,
        name: &str,
        dests: &[IpNet],
    ) -> std::result::Result<(), (usize, BackendError)> {
        let index = need_index(name).map_err(|e| (0, e))?;
        for (c, chunk) in dests.chunks(ROUTES_PER_SEND).enumerate() {
            let base = c * ROUTES_PER_SEND;
            let msgs = chunk
                .iter()
                .map(|d| RouteNetlinkMessage::NewRoute(route_message(index, *d)))
                .collect();
            let results = match self.sock.request_acks(msgs, NLM_F_CREATE | NLM_F_EXCL) {
                Ok(r) => r,
                Err(e) => {
                    // Unknown which went in: take the whole send back.
                    for d in chunk {
                        let _ = self.remove_route(name, *d);
                    }
                    return Err((base, io_err(&format!("{name}: add routes"), e)));
                }
            };
            let Some(j) = results.iter().position(|r| r.is_err()) else {
                continue;
            };
            for (k, r) in results.iter().enumerate().skip(j + 1) {
                if r.is_ok() {
                    let _ = self.remove_route(name, chunk[k]);
                }
            }
            let e = match results.into_iter().nth(j) {
                Some(Err(e)) => e,
                _ => std::io::Error::other("route refused"),
            };
            return Err((
                base + j,
                io_err(&format!("{name}: add route {}", chunk[j]), e),
            ));
        }
        Ok(())
    }

    pub fn remove_route(&mut self, name: &str, dest: IpNet) -> Result<()> {
        let index = need_index(name)?;
        self.ack(
            RouteNetlinkMessage::DelRoute(route_message(index, dest)),
            0,
            &format!("{name}: remove route {dest}"),
        )
    }

    /// Static routes (ours) via a link in the main table, sorted.
    pub fn routes(&mut self, name: &str) -> Result<Vec<IpNet>> {
        let Some(index) = link_index(name) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = RouteMessage::default();
            q.header.address_family = family;
            let replies = self
                .sock
                .request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)
                .map_err(|e| io_err("dump routes", e))?;
            for r in replies {
                let RouteNetlinkMessage::NewRoute(m) = r else {
                    continue;
                };
                if m.header.table != RouteHeader::RT_TABLE_MAIN
                    || m.header.protocol != RouteProtocol::Static
                {
                    continue;
                }
                let oif = m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                });
                if oif != Some(index) {
                    continue;
                }
                let dst = m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
                    RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
                    _ => None,
                });
                let dst = dst.unwrap_or(match family {
                    AddressFamily::Inet => IpAddr::from([0u8; 4]),
                    _ => IpAddr::from([0u16; 8]),
                });
                if let Ok(net) = IpNet::new(dst, m.header.destination_prefix_length) {
                    out.push(net);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

pub fn wireguard_link_message(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Wireguard,
        )]));
    msg
}

pub fn set_link_message(index: u32, mtu: Option<u16>, up: Option<bool>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    if let Some(up) = up {
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
    }
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu.into()));
    }
    msg
}

pub fn address_message(index: u32, addr: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix_len();
    match addr.addr() {
        IpAddr::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(v4.into()));
            msg.attributes.push(AddressAttribute::Address(v4.into()));
        }
        IpAddr::V6(v6) => {
            msg.header.family = AddressFamily::Inet6;
            msg.attributes.push(AddressAttribute::Address(v6.into()));
        }
    }
    msg
}

pub fn route_message(index: u32, dest: IpNet) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.scope = RouteScope::Link;
    msg.header.kind = RouteType::Unicast;
    msg.header.destination_prefix_length = dest.prefix_len();
    match dest.addr() {
        IpAddr::V4(v4) => {
            msg.header.address_family = AddressFamily::Inet;
            if dest.prefix_len() > 0 {
                msg.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet(v4)));
            }
        }
        IpAddr::V6(v6) => {
            msg.header.address_family = AddressFamily::Inet6;
            msg.header.scope = RouteScope::Universe;
            if dest.prefix_len() > 0 {
                msg.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet6(v6)));
            }
        }
    }
    msg.attributes.push(RouteAttribute::Oif(index));
    msg
}
