//! Generic netlink client for the kernel's `l2tp` family (include/uapi/linux/l2tp.h,
//! net/l2tp/l2tp_netlink.c). neli provides the socket and the message framing; the
//! attribute payloads are encoded and decoded here so that no neli type leaves the
//! module.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use neli::FromBytesWithInput;
use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::err::SocketError;
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::socket::synchronous::NlSocketHandle;
use neli::types::{Buffer, GenlBuffer};
use neli::utils::Groups;
#[cfg(test)]
use neli::{Size, ToBytes};

use crate::error::Error;
use crate::uapi::{self, attr, cmd};
use crate::{Encap, Pseudowire, SessionId, SessionInfo, Stats, TunnelId, TunnelInfo};

/// How long to wait for the kernel's answer to one request.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

const NLMSG_DONE: u16 = 3;

/// An ordered list of netlink attributes with raw payloads (host byte order numbers).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Attrs(pub Vec<(u16, Vec<u8>)>);

impl Attrs {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }
    pub(crate) fn u8(mut self, t: u16, v: u8) -> Self {
        self.0.push((t, vec![v]));
        self
    }
    pub(crate) fn u16(mut self, t: u16, v: u16) -> Self {
        self.0.push((t, v.to_ne_bytes().to_vec()));
        self
    }
    pub(crate) fn u32(mut self, t: u16, v: u32) -> Self {
        self.0.push((t, v.to_ne_bytes().to_vec()));
        self
    }
    pub(crate) fn u64(mut self, t: u16, v: u64) -> Self {
        self.0.push((t, v.to_ne_bytes().to_vec()));
        self
    }
    /// NUL-terminated string.
    pub(crate) fn string(mut self, t: u16, v: &str) -> Self {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        self.0.push((t, b));
        self
    }
}

/// Builds the neli message for a request.
fn build_message(
    nl_type: u16,
    flags: NlmF,
    seq: u32,
    pid: u32,
    command: u8,
    version: u8,
    attrs: &Attrs,
) -> Result<Nlmsghdr<u16, Genlmsghdr<u8, u16>>, String> {
    let mut buf = GenlBuffer::<u16, Buffer>::new();
    for (t, payload) in &attrs.0 {
        let a = NlattrBuilder::default()
            .nla_type(
                AttrTypeBuilder::default()
                    .nla_type(*t)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .nla_payload(Buffer::from(payload.clone()))
            .build()
            .map_err(|e| e.to_string())?;
        buf.push(a);
    }
    let genl = GenlmsghdrBuilder::default()
        .cmd(command)
        .version(version)
        .attrs(buf)
        .build()
        .map_err(|e| e.to_string())?;
    NlmsghdrBuilder::default()
        .nl_type(nl_type)
        .nl_flags(flags)
        .nl_seq(seq)
        .nl_pid(pid)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| e.to_string())
}

/// Serializes a request exactly as it is written to the netlink socket.
#[cfg(test)]
pub(crate) fn encode_request(
    nl_type: u16,
    dump: bool,
    seq: u32,
    pid: u32,
    command: u8,
    version: u8,
    attrs: &Attrs,
) -> Result<Vec<u8>, String> {
    let msg = build_message(
        nl_type,
        request_flags(dump),
        seq,
        pid,
        command,
        version,
        attrs,
    )?;
    let mut cur = Cursor::new(vec![0u8; msg.padded_size()]);
    msg.to_bytes(&mut cur).map_err(|e| e.to_string())?;
    Ok(cur.into_inner())
}

fn request_flags(dump: bool) -> NlmF {
    if dump {
        NlmF::REQUEST | NlmF::DUMP
    } else {
        NlmF::REQUEST | NlmF::ACK
    }
}

/// One decoded reply message: the genetlink command and its top-level attributes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    #[allow(dead_code)]
    pub cmd: u8,
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Reply {
    fn get(&self, t: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(at, _)| *at == t)
            .map(|(_, v)| v.as_slice())
    }
    fn has(&self, t: u16) -> bool {
        self.get(t).is_some()
    }
    fn u8(&self, t: u16) -> Option<u8> {
        self.get(t).and_then(|v| v.first().copied())
    }
    fn u16(&self, t: u16) -> Option<u16> {
        self.get(t)
            .and_then(|v| v.get(..2))
            .map(|v| u16::from_ne_bytes([v[0], v[1]]))
    }
    fn u32(&self, t: u16) -> Option<u32> {
        self.get(t)
            .and_then(|v| v.get(..4))
            .map(|v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
    }
    fn u64(&self, t: u16) -> Option<u64> {
        self.get(t).and_then(|v| v.get(..8)).map(|v| {
            let mut a = [0u8; 8];
            a.copy_from_slice(v);
            u64::from_ne_bytes(a)
        })
    }
    fn string(&self, t: u16) -> Option<String> {
        self.get(t).map(|v| {
            let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        })
    }
}

/// Parses a run of `struct nlattr` (4-byte aligned TLVs); used for nested attributes.
pub(crate) fn parse_attrs(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let t = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff; // strip NESTED/NET_BYTEORDER
        if len < 4 || len > b.len() {
            break;
        }
        out.push((t, b[4..len].to_vec()));
        let adv = (len + 3) & !3;
        if adv >= b.len() {
            break;
        }
        b = &b[adv..];
    }
    out
}

/// Decodes the nested `L2TP_ATTR_STATS`.
pub(crate) fn parse_stats(nested: &[u8]) -> Stats {
    let mut s = Stats::default();
    for (t, v) in parse_attrs(nested) {
        let Some(v8) = v.get(..8) else { continue };
        let mut a = [0u8; 8];
        a.copy_from_slice(v8);
        let n = u64::from_ne_bytes(a);
        match t {
            uapi::stats::TX_PACKETS => s.tx_packets = n,
            uapi::stats::TX_BYTES => s.tx_bytes = n,
            uapi::stats::TX_ERRORS => s.tx_errors = n,
            uapi::stats::RX_PACKETS => s.rx_packets = n,
            uapi::stats::RX_BYTES => s.rx_bytes = n,
            uapi::stats::RX_SEQ_DISCARDS => s.rx_seq_discards = n,
            uapi::stats::RX_OOS_PACKETS => s.rx_oos_packets = n,
            uapi::stats::RX_ERRORS => s.rx_errors = n,
            uapi::stats::RX_COOKIE_DISCARDS => s.rx_cookie_discards = n,
            uapi::stats::RX_INVALID => s.rx_invalid = n,
            _ => {}
        }
    }
    s
}

pub(crate) fn parse_tunnel(r: &Reply) -> Option<TunnelInfo> {
    let tunnel_id = r.u32(attr::CONN_ID)?;
    let peer_tunnel_id = r.u32(attr::PEER_CONN_ID).unwrap_or(0);
    let sport = r.u16(attr::UDP_SPORT);
    let dport = r.u16(attr::UDP_DPORT);
    let (local_ip, peer_ip): (Option<IpAddr>, Option<IpAddr>) = if r.has(attr::IP6_SADDR) {
        let ip6 = |t| {
            r.get(t).and_then(|v| {
                <[u8; 16]>::try_from(v)
                    .ok()
                    .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            })
        };
        (ip6(attr::IP6_SADDR), ip6(attr::IP6_DADDR))
    } else {
        // IP_SADDR/IP_DADDR carry a `struct in_addr` (network byte order).
        let ip4 = |t| {
            r.get(t).and_then(|v| {
                <[u8; 4]>::try_from(v.get(..4)?)
                    .ok()
                    .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            })
        };
        (ip4(attr::IP_SADDR), ip4(attr::IP_DADDR))
    };
    let encap = match r.u16(attr::ENCAP_TYPE) {
        Some(uapi::ENCAPTYPE_IP) => Encap::Ip,
        _ => Encap::Udp,
    };
    let udp_checksum = if r.has(attr::UDP_CSUM) {
        r.u8(attr::UDP_CSUM).map(|v| v != 0)
    } else if encap == Encap::Udp && r.has(attr::IP6_SADDR) {
        Some(!r.has(attr::UDP_ZERO_CSUM6_TX))
    } else {
        None
    };
    Some(TunnelInfo {
        tunnel_id: TunnelId(tunnel_id),
        peer_tunnel_id: TunnelId(peer_tunnel_id),
        version: r.u8(attr::PROTO_VERSION).unwrap_or(0),
        encap,
        local: local_ip.map(|ip| SocketAddr::new(ip, sport.unwrap_or(0))),
        peer: peer_ip.map(|ip| SocketAddr::new(ip, dport.unwrap_or(0))),
        udp_checksum,
        using_ipsec: r.u8(attr::USING_IPSEC).is_some_and(|v| v != 0),
        stats: r.get(attr::STATS).map(parse_stats).unwrap_or_default(),
    })
}

pub(crate) fn parse_session(r: &Reply) -> Option<SessionInfo> {
    Some(SessionInfo {
        tunnel_id: TunnelId(r.u32(attr::CONN_ID)?),
        session_id: SessionId(r.u32(attr::SESSION_ID)?),
        peer_tunnel_id: TunnelId(r.u32(attr::PEER_CONN_ID).unwrap_or(0)),
        peer_session_id: SessionId(r.u32(attr::PEER_SESSION_ID).unwrap_or(0)),
        pseudowire: Pseudowire::from_uapi(r.u16(attr::PW_TYPE).unwrap_or(0)),
        ifname: r.string(attr::IFNAME),
        cookie: r.get(attr::COOKIE).map(<[u8]>::to_vec),
        peer_cookie: r.get(attr::PEER_COOKIE).map(<[u8]>::to_vec),
        recv_seq: r.u8(attr::RECV_SEQ).is_some_and(|v| v != 0),
        send_seq: r.u8(attr::SEND_SEQ).is_some_and(|v| v != 0),
        lns_mode: r.u8(attr::LNS_MODE).is_some_and(|v| v != 0),
        reorder_timeout_ms: r.u64(attr::RECV_TIMEOUT).unwrap_or(0),
        using_ipsec: r.u8(attr::USING_IPSEC).is_some_and(|v| v != 0),
        stats: r.get(attr::STATS).map(parse_stats).unwrap_or_default(),
    })
}

/// A generic netlink socket with the resolved `l2tp` family id.
pub(crate) struct GenlL2tp {
    sock: NlSocketHandle,
    family: u16,
    seq: u32,
}

impl std::fmt::Debug for GenlL2tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenlL2tp")
            .field("family", &self.family)
            .field("pid", &self.sock.pid())
            .finish()
    }
}

fn socket_error(op: &str, e: SocketError) -> Error {
    match e {
        SocketError::Io(io) => {
            let kind = io.kind();
            if kind == std::io::ErrorKind::WouldBlock || kind == std::io::ErrorKind::TimedOut {
                Error::Timeout {
                    op: op.to_string(),
                    after: REPLY_TIMEOUT,
                }
            } else {
                Error::io(
                    op,
                    match io.raw_os_error() {
                        Some(n) => std::io::Error::from_raw_os_error(n),
                        None => std::io::Error::new(kind, io.to_string()),
                    },
                )
            }
        }
        other => Error::protocol(op, other.to_string()),
    }
}

impl GenlL2tp {
    /// Opens a generic netlink socket and resolves the family `l2tp`.
    /// A missing family is [`Error::NotSupported`].
    pub(crate) fn open() -> Result<Self, Error> {
        let sock = NlSocketHandle::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| socket_error("socket(AF_NETLINK, NETLINK_GENERIC)", e))?;
        // Bound every wait for a reply.
        let tv = libc::timeval {
            tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: passes a pointer to a live `timeval` and its exact size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast::<libc::c_void>(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::io(
                "setsockopt(netlink, SO_RCVTIMEO)",
                std::io::Error::last_os_error(),
            ));
        }
        let mut me = Self {
            sock,
            family: 0,
            seq: 0,
        };
        let op = "CTRL_CMD_GETFAMILY \"l2tp\"";
        let replies = match me.transact(
            op,
            uapi::GENL_ID_CTRL,
            uapi::CTRL_CMD_GETFAMILY,
            1,
            false,
            Attrs::new().string(uapi::CTRL_ATTR_FAMILY_NAME, uapi::L2TP_GENL_NAME),
        ) {
            Ok(r) => r,
            Err(Error::Kernel { cause, .. }) if cause.raw_os_error() == Some(libc::ENOENT) => {
                return Err(Error::NotSupported {
                    detail: format!("generic netlink family \"l2tp\" not found ({cause})"),
                });
            }
            Err(e) => return Err(e),
        };
        let family = replies
            .iter()
            .find_map(|r| r.u16(uapi::CTRL_ATTR_FAMILY_ID))
            .ok_or_else(|| Error::protocol(op, "reply without CTRL_ATTR_FAMILY_ID"))?;
        let version = replies.iter().find_map(|r| r.u32(uapi::CTRL_ATTR_VERSION));
        tracing::debug!(family, ?version, "resolved generic netlink family l2tp");
        me.family = family;
        Ok(me)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and collects the replies until the ACK (or DONE for dumps).
    /// An `NLMSG_ERROR` with a non-zero code becomes [`Error::Kernel`] naming `op`.
    fn transact(
        &mut self,
        op: &str,
        nl_type: u16,
        command: u8,
        version: u8,
        dump: bool,
        attrs: Attrs,
    ) -> Result<Vec<Reply>, Error> {
        let seq = self.next_seq();
        let msg = build_message(
            nl_type,
            request_flags(dump),
            seq,
            self.sock.pid(),
            command,
            version,
            &attrs,
        )
        .map_err(|e| Error::protocol(op, format!("cannot build request: {e}")))?;
        self.sock.send(&msg).map_err(|e| socket_error(op, e))?;

        let mut out = Vec::new();
        loop {
            let (iter, _groups) = self
                .sock
                .recv::<u16, Buffer>()
                .map_err(|e| socket_error(op, e))?;
            for m in iter {
                let m = m.map_err(|e| socket_error(op, e))?;
                if *m.nl_seq() != seq {
                    tracing::trace!(
                        seq = *m.nl_seq(),
                        "ignoring netlink message of another request"
                    );
                    continue;
                }
                match m.nl_payload() {
                    NlPayload::Ack(_) => return Ok(out),
                    NlPayload::Err(e) => {
                        let code = *e.error();
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(Error::kernel(op, code.abs()));
                    }
                    NlPayload::DumpExtAck(e) => {
                        let code = *e.error();
                        if code != 0 {
                            return Err(Error::kernel(op, code.abs()));
                        }
                        return Ok(out);
                    }
                    NlPayload::Payload(p) => {
                        if *m.nl_type() == NLMSG_DONE {
                            return Ok(out);
                        }
                        let bytes: &[u8] = p.as_ref();
                        let g = Genlmsghdr::<u8, u16>::from_bytes_with_input(
                            &mut Cursor::new(bytes),
                            bytes.len(),
                        )
                        .map_err(|e| Error::protocol(op, format!("bad genetlink message: {e}")))?;
                        let attrs = g
                            .attrs()
                            .iter()
                            .map(|a| {
                                let t: u16 = *a.nla_type().nla_type();
                                (t, a.nla_payload().as_ref().to_vec())
                            })
                            .collect();
                        out.push(Reply {
                            cmd: *g.cmd(),
                            attrs,
                        });
                    }
                    NlPayload::Empty => {
                        if *m.nl_type() == NLMSG_DONE {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    /// A request to the l2tp family.
    pub(crate) fn request(
        &mut self,
        op: &str,
        command: u8,
        dump: bool,
        attrs: Attrs,
    ) -> Result<Vec<Reply>, Error> {
        let family = self.family;
        self.transact(op, family, command, uapi::L2TP_GENL_VERSION, dump, attrs)
    }

    pub(crate) fn tunnel_get(&mut self, id: TunnelId) -> Result<TunnelInfo, Error> {
        let op = format!("{} tunnel {}", cmd::name(cmd::TUNNEL_GET), id.0);
        let replies = self.request(
            &op,
            cmd::TUNNEL_GET,
            false,
            Attrs::new().u32(attr::CONN_ID, id.0),
        )?;
        replies
            .iter()
            .find_map(parse_tunnel)
            .ok_or_else(|| Error::protocol(&op, "no tunnel in reply"))
    }

    pub(crate) fn session_get(&mut self, t: TunnelId, s: SessionId) -> Result<SessionInfo, Error> {
        let op = format!(
            "{} tunnel {} session {}",
            cmd::name(cmd::SESSION_GET),
            t.0,
            s.0
        );
        let replies = self.request(
            &op,
            cmd::SESSION_GET,
            false,
            Attrs::new()
                .u32(attr::CONN_ID, t.0)
                .u32(attr::SESSION_ID, s.0),
        )?;
        replies
            .iter()
            .find_map(parse_session)
            .ok_or_else(|| Error::protocol(&op, "no session in reply"))
    }

    pub(crate) fn tunnel_dump(&mut self) -> Result<Vec<TunnelInfo>, Error> {
        let op = format!("{} (dump)", cmd::name(cmd::TUNNEL_GET));
        let replies = self.request(&op, cmd::TUNNEL_GET, true, Attrs::new())?;
        Ok(replies.iter().filter_map(parse_tunnel).collect())
    }

    pub(crate) fn session_dump(&mut self) -> Result<Vec<SessionInfo>, Error> {
        let op = format!("{} (dump)", cmd::name(cmd::SESSION_GET));
        let replies = self.request(&op, cmd::SESSION_GET, true, Attrs::new())?;
        Ok(replies.iter().filter_map(parse_session).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends one `struct nlattr` as the uapi dictates: u16 nla_len (header 4 +
    /// payload, unpadded), u16 nla_type, payload, zero padding to 4 bytes.
    fn nla(out: &mut Vec<u8>, t: u16, payload: &[u8]) {
        out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&t.to_ne_bytes());
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    /// `struct nlmsghdr` (16 bytes) + `struct genlmsghdr` (4 bytes) + attributes.
    fn message(family: u16, flags: u16, seq: u32, command: u8, attrs: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((16 + 4 + attrs.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&family.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
        out.extend_from_slice(&[command, uapi::L2TP_GENL_VERSION, 0, 0]);
        out.extend_from_slice(attrs);
        out
    }

    #[test]
    fn tunnel_create_encoding_matches_uapi() {
        let attrs = Attrs::new()
            .u32(attr::CONN_ID, 100)
            .u32(attr::PEER_CONN_ID, 200)
            .u8(attr::PROTO_VERSION, 2)
            .u16(attr::ENCAP_TYPE, uapi::ENCAPTYPE_UDP)
            .u32(attr::FD, 7);
        let got = encode_request(0x1c, false, 1, 0, cmd::TUNNEL_CREATE, 1, &attrs).unwrap();

        let mut a = Vec::new();
        nla(&mut a, 9, &100u32.to_ne_bytes()); // L2TP_ATTR_CONN_ID
        nla(&mut a, 10, &200u32.to_ne_bytes()); // L2TP_ATTR_PEER_CONN_ID
        nla(&mut a, 7, &[2]); // L2TP_ATTR_PROTO_VERSION (u8, nla_len 5, padded to 8)
        nla(&mut a, 2, &0u16.to_ne_bytes()); // L2TP_ATTR_ENCAP_TYPE (u16, nla_len 6)
        nla(&mut a, 23, &7u32.to_ne_bytes()); // L2TP_ATTR_FD
        // NLM_F_REQUEST (1) | NLM_F_ACK (4); L2TP_CMD_TUNNEL_CREATE = 1
        let want = message(0x1c, 0x0005, 1, 1, &a);
        assert_eq!(got.len(), 60);
        assert_eq!(got, want);
        // Spot-check raw bytes on this (little-endian) build host.
        if cfg!(target_endian = "little") {
            assert_eq!(&got[0..4], &[60, 0, 0, 0]);
            assert_eq!(&got[16..20], &[1, 1, 0, 0]);
            assert_eq!(&got[20..28], &[8, 0, 9, 0, 100, 0, 0, 0]);
            assert_eq!(&got[36..44], &[5, 0, 7, 0, 2, 0, 0, 0]);
            assert_eq!(&got[44..52], &[6, 0, 2, 0, 0, 0, 0, 0]);
            assert_eq!(&got[52..60], &[8, 0, 23, 0, 7, 0, 0, 0]);
        }
    }

    #[test]
    fn session_create_and_dump_encoding() {
        let attrs = Attrs::new()
            .u32(attr::CONN_ID, 100)
            .u32(attr::SESSION_ID, 1000)
            .u16(attr::PW_TYPE, uapi::pwtype::PPP)
            .u8(attr::LNS_MODE, 1)
            .u64(attr::RECV_TIMEOUT, 250);
        let got = encode_request(0x1c, false, 9, 0, cmd::SESSION_CREATE, 1, &attrs).unwrap();
        let mut a = Vec::new();
        nla(&mut a, 9, &100u32.to_ne_bytes());
        nla(&mut a, 11, &1000u32.to_ne_bytes()); // L2TP_ATTR_SESSION_ID
        nla(&mut a, 1, &7u16.to_ne_bytes()); // L2TP_ATTR_PW_TYPE = L2TP_PWTYPE_PPP
        nla(&mut a, 20, &[1]); // L2TP_ATTR_LNS_MODE
        nla(&mut a, 22, &250u64.to_ne_bytes()); // L2TP_ATTR_RECV_TIMEOUT (NLA_MSECS, u64)
        assert_eq!(got, message(0x1c, 0x0005, 9, 5, &a));

        // Dumps: NLM_F_REQUEST | NLM_F_DUMP (0x300), no ACK; L2TP_CMD_SESSION_GET = 8.
        let got = encode_request(0x1c, true, 2, 0, cmd::SESSION_GET, 1, &Attrs::new()).unwrap();
        assert_eq!(got, message(0x1c, 0x0301, 2, 8, &[]));
    }

    #[test]
    fn getfamily_encoding() {
        let attrs = Attrs::new().string(uapi::CTRL_ATTR_FAMILY_NAME, "l2tp");
        let got = encode_request(
            uapi::GENL_ID_CTRL,
            false,
            1,
            0,
            uapi::CTRL_CMD_GETFAMILY,
            1,
            &attrs,
        )
        .unwrap();
        let mut a = Vec::new();
        nla(&mut a, 2, b"l2tp\0");
        let mut want = message(0x10, 0x0005, 1, 3, &a);
        want[17] = 1; // CTRL version
        assert_eq!(got, want);
    }

    #[test]
    fn nested_attr_parsing_and_stats() {
        let mut b = Vec::new();
        for (t, v) in [
            (uapi::stats::TX_PACKETS, 5u64),
            (uapi::stats::RX_BYTES, 1234),
        ] {
            b.extend_from_slice(&12u16.to_ne_bytes());
            b.extend_from_slice(&t.to_ne_bytes());
            b.extend_from_slice(&v.to_ne_bytes());
        }
        let s = parse_stats(&b);
        assert_eq!(s.tx_packets, 5);
        assert_eq!(s.rx_bytes, 1234);
        assert_eq!(s.rx_packets, 0);
    }

    #[test]
    fn tunnel_reply_parsing() {
        let r = Reply {
            cmd: cmd::TUNNEL_GET,
            attrs: vec![
                (attr::PROTO_VERSION, vec![2]),
                (attr::CONN_ID, 100u32.to_ne_bytes().to_vec()),
                (attr::PEER_CONN_ID, 200u32.to_ne_bytes().to_vec()),
                (attr::ENCAP_TYPE, 0u16.to_ne_bytes().to_vec()),
                (attr::UDP_CSUM, vec![1]),
                (attr::UDP_SPORT, 10001u16.to_ne_bytes().to_vec()),
                (attr::UDP_DPORT, 10002u16.to_ne_bytes().to_vec()),
                (attr::IP_SADDR, vec![127, 0, 0, 1]),
                (attr::IP_DADDR, vec![127, 0, 0, 2]),
            ],
        };
        let t = parse_tunnel(&r).unwrap();
        assert_eq!(t.tunnel_id, TunnelId(100));
        assert_eq!(t.peer_tunnel_id, TunnelId(200));
        assert_eq!(t.version, 2);
        assert_eq!(t.encap, Encap::Udp);
        assert_eq!(t.local, Some("127.0.0.1:10001".parse().unwrap()));
        assert_eq!(t.peer, Some("127.0.0.2:10002".parse().unwrap()));
        assert_eq!(t.udp_checksum, Some(true));
    }
}
