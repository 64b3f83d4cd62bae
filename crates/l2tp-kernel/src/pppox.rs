//! PPPoL2TP sockets: `socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP)`, their sockaddr
//! layouts (include/uapi/linux/if_pppol2tp.h), socket options and the stats ioctl.
//!
//! The sockaddr structs are `__packed` in the kernel headers; they are encoded here
//! byte by byte at the offsets measured with gcc against the uapi headers (see the
//! tests), so no packed Rust struct is needed.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::Stats;
use crate::error::Error;
use crate::uapi;

/// Size of `struct sockaddr_pppol2tp` (L2TPv2, IPv4 peer).
pub(crate) const SOCKADDR_PPPOL2TP_LEN: usize = 38;
/// Size of `struct sockaddr_pppol2tpin6` (L2TPv2, IPv6 peer).
pub(crate) const SOCKADDR_PPPOL2TPIN6_LEN: usize = 50;
/// Size of `struct sockaddr_pppol2tpv3` (L2TPv3, IPv4 peer).
pub(crate) const SOCKADDR_PPPOL2TPV3_LEN: usize = 46;
/// Size of `struct sockaddr_pppol2tpv3in6` (L2TPv3, IPv6 peer).
pub(crate) const SOCKADDR_PPPOL2TPV3IN6_LEN: usize = 58;
/// Size of `struct pppol2tp_ioc_stats`.
pub(crate) const IOC_STATS_LEN: usize = 72;

/// The fields of a PPPoL2TP socket address (`struct pppol2tp_addr` and its v3/IPv6
/// variants). `pid` is always 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PppoL2tpAddr {
    /// L2TP version of the tunnel: 2 selects the 16-bit id layouts, 3 the 32-bit ones.
    pub version: u8,
    /// Tunnel socket fd; -1 when the tunnel already exists (netlink-created).
    pub fd: RawFd,
    /// Peer address of the tunnel.
    pub peer: SocketAddr,
    /// Our tunnel id.
    pub s_tunnel: u32,
    /// Our session id (0 for a legacy tunnel management socket).
    pub s_session: u32,
    /// Peer's tunnel id.
    pub d_tunnel: u32,
    /// Peer's session id (0 for a legacy tunnel management socket).
    pub d_session: u32,
}

/// An encoded socket address, aligned so that it can be passed as `*const sockaddr`.
#[repr(C, align(8))]
pub(crate) struct SockaddrBuf {
    pub bytes: [u8; 64],
    pub len: usize,
}

impl SockaddrBuf {
    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_ne_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// `struct sockaddr_in` (16 bytes) at `off`.
fn put_sockaddr_in(b: &mut [u8], off: usize, a: &std::net::SocketAddrV4) {
    put_u16(b, off, libc::AF_INET as u16);
    b[off + 2..off + 4].copy_from_slice(&a.port().to_be_bytes());
    b[off + 4..off + 8].copy_from_slice(&a.ip().octets());
    // sin_zero: 8 bytes, already zero.
}

/// `struct sockaddr_in6` (28 bytes) at `off`.
fn put_sockaddr_in6(b: &mut [u8], off: usize, a: &std::net::SocketAddrV6) {
    put_u16(b, off, libc::AF_INET6 as u16);
    b[off + 2..off + 4].copy_from_slice(&a.port().to_be_bytes());
    b[off + 4..off + 8].copy_from_slice(&a.flowinfo().to_be_bytes());
    b[off + 8..off + 24].copy_from_slice(&a.ip().octets());
    put_u32(b, off + 24, a.scope_id());
}

impl PppoL2tpAddr {
    /// Encodes the address in the layout the kernel selects by length:
    /// v2/IPv4 38 bytes, v2/IPv6 50, v3/IPv4 46, v3/IPv6 58.
    pub(crate) fn encode(&self) -> Result<SockaddrBuf, Error> {
        let mut buf = SockaddrBuf {
            bytes: [0; 64],
            len: 0,
        };
        let b = &mut buf.bytes;
        // struct sockaddr_pppol2tp*: sa_family u16 @0, sa_protocol u32 @2, addr @6.
        put_u16(b, 0, uapi::AF_PPPOX as u16);
        put_u32(b, 2, uapi::PX_PROTO_OL2TP as u32);
        // pid i32 @6 (0), fd i32 @10.
        put_u32(b, 10, self.fd as u32);
        match self.version {
            2 => {
                let ids = [self.s_tunnel, self.s_session, self.d_tunnel, self.d_session];
                let mut ids16 = [0u16; 4];
                for (dst, id) in ids16.iter_mut().zip(ids) {
                    *dst = u16::try_from(id).map_err(|_| {
                        Error::InvalidArgument(format!("L2TPv2 id {id} does not fit in 16 bits"))
                    })?;
                }
                match &self.peer {
                    SocketAddr::V4(a) => {
                        // addr @14 (16 bytes), then u16 ids @30, 32, 34, 36.
                        put_sockaddr_in(b, 14, a);
                        for (i, id) in ids16.iter().enumerate() {
                            put_u16(b, 30 + 2 * i, *id);
                        }
                        buf.len = SOCKADDR_PPPOL2TP_LEN;
                    }
                    SocketAddr::V6(a) => {
                        // u16 ids @14, 16, 18, 20, then addr @22 (28 bytes).
                        for (i, id) in ids16.iter().enumerate() {
                            put_u16(b, 14 + 2 * i, *id);
                        }
                        put_sockaddr_in6(b, 22, a);
                        buf.len = SOCKADDR_PPPOL2TPIN6_LEN;
                    }
                }
            }
            3 => {
                let ids = [self.s_tunnel, self.s_session, self.d_tunnel, self.d_session];
                match &self.peer {
                    SocketAddr::V4(a) => {
                        // addr @14 (16 bytes), then u32 ids @30, 34, 38, 42.
                        put_sockaddr_in(b, 14, a);
                        for (i, id) in ids.iter().enumerate() {
                            put_u32(b, 30 + 4 * i, *id);
                        }
                        buf.len = SOCKADDR_PPPOL2TPV3_LEN;
                    }
                    SocketAddr::V6(a) => {
                        // u32 ids @14, 18, 22, 26, then addr @30 (28 bytes).
                        for (i, id) in ids.iter().enumerate() {
                            put_u32(b, 14 + 4 * i, *id);
                        }
                        put_sockaddr_in6(b, 30, a);
                        buf.len = SOCKADDR_PPPOL2TPV3IN6_LEN;
                    }
                }
            }
            v => {
                return Err(Error::InvalidArgument(format!(
                    "L2TP version {v} (expected 2 or 3)"
                )));
            }
        }
        Ok(buf)
    }
}

/// Opens `socket(AF_PPPOX, SOCK_DGRAM | SOCK_CLOEXEC, PX_PROTO_OL2TP)`.
///
/// `EAFNOSUPPORT` (no pppox) and `EPROTONOSUPPORT` (no l2tp_ppp) become
/// [`Error::NotSupported`].
pub(crate) fn open_socket() -> Result<OwnedFd, Error> {
    // SAFETY: plain socket(2) call with constant arguments; no pointers involved.
    let fd = unsafe {
        libc::socket(
            uapi::AF_PPPOX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            uapi::PX_PROTO_OL2TP,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAFNOSUPPORT) | Some(libc::EPROTONOSUPPORT) => Err(Error::NotSupported {
                detail: format!("socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP): {err}"),
            }),
            _ => Err(Error::io(
                "socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP)",
                err,
            )),
        };
    }
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `connect(2)` of a PPPoL2TP socket.
pub(crate) fn connect(fd: &OwnedFd, addr: &PppoL2tpAddr, op: &str) -> Result<(), Error> {
    let buf = addr.encode()?;
    // SAFETY: `buf.bytes` is a live, 8-byte aligned buffer of at least `buf.len` bytes
    // holding the encoded sockaddr; the kernel copies `buf.len` bytes from it and does
    // not keep the pointer.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            buf.bytes.as_ptr().cast::<libc::sockaddr>(),
            buf.len as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(Error::io(op, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `setsockopt(fd, SOL_PPPOL2TP, opt, &value, sizeof(int))`.
pub(crate) fn set_option(fd: &OwnedFd, opt: i32, value: i32, op: &str) -> Result<(), Error> {
    // SAFETY: passes a pointer to a live local int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            uapi::SOL_PPPOL2TP,
            opt,
            (&value as *const i32).cast::<libc::c_void>(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(Error::io(op, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Decodes a `struct pppol2tp_ioc_stats` (72 bytes): u16 tunnel_id @0, u16 session_id
/// @2, u32 using_ipsec:1 @4, then eight u64 counters @8..72.
pub(crate) fn decode_ioc_stats(b: &[u8; IOC_STATS_LEN]) -> (u16, u16, Stats) {
    let u64_at = |off: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[off..off + 8]);
        u64::from_ne_bytes(a)
    };
    let tunnel = u16::from_ne_bytes([b[0], b[1]]);
    let session = u16::from_ne_bytes([b[2], b[3]]);
    let stats = Stats {
        tx_packets: u64_at(8),
        tx_bytes: u64_at(16),
        tx_errors: u64_at(24),
        rx_packets: u64_at(32),
        rx_bytes: u64_at(40),
        rx_seq_discards: u64_at(48),
        rx_oos_packets: u64_at(56),
        rx_errors: u64_at(64),
        ..Stats::default()
    };
    (tunnel, session, stats)
}

/// `ioctl(fd, PPPIOCGL2TPSTATS, &stats)`: session stats on a session socket, tunnel
/// stats on a legacy tunnel management socket. Returns (tunnel id, session id, stats).
pub(crate) fn ioctl_stats(fd: &OwnedFd, op: &str) -> Result<(u16, u16, Stats), Error> {
    let mut buf = [0u8; IOC_STATS_LEN];
    // SAFETY: PPPIOCGL2TPSTATS writes exactly sizeof(struct pppol2tp_ioc_stats) = 72
    // bytes (encoded in the ioctl number) into the live buffer we pass.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            uapi::PPPIOCGL2TPSTATS as _,
            buf.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if rc < 0 {
        return Err(Error::io(op, std::io::Error::last_os_error()));
    }
    Ok(decode_ioc_stats(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_ne_bytes([b[off], b[off + 1]])
    }
    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    // Offsets measured on x86_64 by compiling a C program against
    // /usr/include/linux/if_pppol2tp.h and if_pppox.h (kernel headers 6.x) with gcc:
    //   sizeof sockaddr_pppol2tp=38 in6=50 v3=46 v3in6=58
    //   sockaddr_pppol2tp: sa_family 0, sa_protocol 2, pppol2tp 6
    //   pppol2tp_addr: pid 0, fd 4, addr 8, s_tunnel 24, s_session 26, d_tunnel 28, d_session 30
    //   pppol2tpin6_addr: pid 0, fd 4, s_tunnel 8, s_session 10, d_tunnel 12, d_session 14, addr 16
    //   pppol2tpv3_addr: pid 0, fd 4, addr 8, s_tunnel 24, s_session 28, d_tunnel 32, d_session 36
    //   pppol2tpv3in6_addr: pid 0, fd 4, s_tunnel 8, s_session 12, d_tunnel 16, d_session 20, addr 24
    //   sockaddr_in: sin_port 2, sin_addr 4 (size 16);
    //   sockaddr_in6: sin6_port 2, sin6_flowinfo 4, sin6_addr 8, sin6_scope_id 24 (size 28)
    //   sizeof pppol2tp_ioc_stats=72: tunnel_id 0, session_id 2, tx_packets 8, rx_errors 64
    //   PPPIOCGL2TPSTATS=0x80487436 AF_PPPOX=24 PX_PROTO_OL2TP=1 SOL_PPPOL2TP=273
    const ADDR: usize = 6; // offset of the inner pppol2tp*_addr

    fn sample(version: u8, peer: SocketAddr) -> PppoL2tpAddr {
        PppoL2tpAddr {
            version,
            fd: -1,
            peer,
            s_tunnel: 100,
            s_session: 1000,
            d_tunnel: 200,
            d_session: 2000,
        }
    }

    #[test]
    fn v2_ipv4_layout() {
        let peer = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 1701));
        let buf = sample(2, peer).encode().unwrap();
        let b = buf.as_slice();
        assert_eq!(b.len(), 38);
        assert_eq!(u16_at(b, 0), 24, "sa_family AF_PPPOX");
        assert_eq!(u32_at(b, 2), 1, "sa_protocol PX_PROTO_OL2TP");
        assert_eq!(u32_at(b, ADDR), 0, "pid");
        assert_eq!(u32_at(b, ADDR + 4) as i32, -1, "fd");
        let sin = ADDR + 8;
        assert_eq!(u16_at(b, sin), libc::AF_INET as u16);
        assert_eq!(&b[sin + 2..sin + 4], &1701u16.to_be_bytes());
        assert_eq!(&b[sin + 4..sin + 8], &[192, 0, 2, 7]);
        assert_eq!(&b[sin + 8..sin + 16], &[0; 8]);
        assert_eq!(u16_at(b, ADDR + 24), 100, "s_tunnel");
        assert_eq!(u16_at(b, ADDR + 26), 1000, "s_session");
        assert_eq!(u16_at(b, ADDR + 28), 200, "d_tunnel");
        assert_eq!(u16_at(b, ADDR + 30), 2000, "d_session");
    }

    #[test]
    fn v2_ipv6_layout() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let peer = SocketAddr::V6(SocketAddrV6::new(ip, 1701, 0x12345, 3));
        let mut a = sample(2, peer);
        a.fd = 7;
        let buf = a.encode().unwrap();
        let b = buf.as_slice();
        assert_eq!(b.len(), 50);
        assert_eq!(u16_at(b, 0), 24);
        assert_eq!(u32_at(b, 2), 1);
        assert_eq!(u32_at(b, ADDR), 0);
        assert_eq!(u32_at(b, ADDR + 4), 7);
        assert_eq!(u16_at(b, ADDR + 8), 100);
        assert_eq!(u16_at(b, ADDR + 10), 1000);
        assert_eq!(u16_at(b, ADDR + 12), 200);
        assert_eq!(u16_at(b, ADDR + 14), 2000);
        let sin6 = ADDR + 16;
        assert_eq!(u16_at(b, sin6), libc::AF_INET6 as u16);
        assert_eq!(&b[sin6 + 2..sin6 + 4], &1701u16.to_be_bytes());
        assert_eq!(&b[sin6 + 4..sin6 + 8], &0x12345u32.to_be_bytes());
        assert_eq!(&b[sin6 + 8..sin6 + 24], &ip.octets());
        assert_eq!(u32_at(b, sin6 + 24), 3);
        assert_eq!(sin6 + 28, 50);
    }

    #[test]
    fn v3_layouts() {
        let peer4 = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1701));
        let mut a = sample(3, peer4);
        a.s_tunnel = 0x1_0000;
        let buf = a.encode().unwrap();
        let b = buf.as_slice();
        assert_eq!(b.len(), 46);
        assert_eq!(u16_at(b, ADDR + 8), libc::AF_INET as u16);
        assert_eq!(u32_at(b, ADDR + 24), 0x1_0000);
        assert_eq!(u32_at(b, ADDR + 28), 1000);
        assert_eq!(u32_at(b, ADDR + 32), 200);
        assert_eq!(u32_at(b, ADDR + 36), 2000);

        let peer6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1701, 0, 0));
        let buf = sample(3, peer6).encode().unwrap();
        let b = buf.as_slice();
        assert_eq!(b.len(), 58);
        assert_eq!(u32_at(b, ADDR + 8), 100);
        assert_eq!(u32_at(b, ADDR + 12), 1000);
        assert_eq!(u32_at(b, ADDR + 16), 200);
        assert_eq!(u32_at(b, ADDR + 20), 2000);
        assert_eq!(u16_at(b, ADDR + 24), libc::AF_INET6 as u16);
    }

    #[test]
    fn v2_rejects_wide_ids_and_bad_versions() {
        let peer = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1701));
        let mut a = sample(2, peer);
        a.d_session = 70000;
        assert!(matches!(a.encode(), Err(Error::InvalidArgument(_))));
        let a = sample(4, peer);
        assert!(matches!(a.encode(), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn ioc_stats_decoding() {
        let mut b = [0u8; IOC_STATS_LEN];
        b[0..2].copy_from_slice(&100u16.to_ne_bytes());
        b[2..4].copy_from_slice(&1000u16.to_ne_bytes());
        for i in 0..8u64 {
            let off = 8 + 8 * i as usize;
            b[off..off + 8].copy_from_slice(&(i + 1).to_ne_bytes());
        }
        let (t, s, st) = decode_ioc_stats(&b);
        assert_eq!((t, s), (100, 1000));
        assert_eq!(st.tx_packets, 1);
        assert_eq!(st.tx_bytes, 2);
        assert_eq!(st.tx_errors, 3);
        assert_eq!(st.rx_packets, 4);
        assert_eq!(st.rx_bytes, 5);
        assert_eq!(st.rx_seq_discards, 6);
        assert_eq!(st.rx_oos_packets, 7);
        assert_eq!(st.rx_errors, 8);
    }

    #[test]
    fn pppox_socket_on_host_without_l2tp() {
        // On the build host (no CONFIG_PPP/CONFIG_L2TP) this must be NotSupported; on a
        // kernel with l2tp_ppp the socket opens. Either way it must not be another error.
        match open_socket() {
            Ok(_) => {}
            Err(e) => assert!(e.is_not_supported(), "unexpected error: {e}"),
        }
    }
}
