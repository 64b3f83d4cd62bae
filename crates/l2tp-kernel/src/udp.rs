//! The daemon's UDP sockets.
//!
//! One UDP socket per tunnel, bound to the local address/port and connected to the
//! peer, is what the kernel's managed tunnels (and the legacy API) expect. Next to it
//! the daemon keeps one listening socket on the same local address/port for new
//! incoming SCCRQs. Both are created with `SO_REUSEADDR` (and not `SO_REUSEPORT`):
//! Linux lets any number of UDP sockets that all set `SO_REUSEADDR` bind the same
//! address/port, and its UDP lookup scores a connected socket whose remote
//! address/port match above an unconnected one, so datagrams from a tunnel's peer
//! reach the tunnel socket and everything else reaches the listener, whatever the
//! creation order. `SO_REUSEPORT` is avoided on purpose: it forms a load-balancing
//! group among unconnected sockets and only older kernels got connected members of a
//! group right; it adds nothing here. The listener must set `SO_REUSEADDR` as well
//! (use [`listen_socket`]), or binding the tunnel socket fails with `EADDRINUSE`.
//!
//! The kernel cannot tell apart two tunnel sockets with the same 5-tuple (l2tp.rst,
//! "Limitations"): two tunnels to the same peer address *and port* need different
//! local ports.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrLike, SockaddrStorage, bind, connect, getpeername,
    getsockname, setsockopt, socket, sockopt,
};

use crate::error::Error;

/// `UDP_NO_CHECK6_TX` (include/uapi/linux/udp.h).
const UDP_NO_CHECK6_TX: libc::c_int = 101;
/// `UDP_NO_CHECK6_RX` (include/uapi/linux/udp.h).
const UDP_NO_CHECK6_RX: libc::c_int = 102;

/// A non-blocking, close-on-exec UDP socket bound to `addr`, with
/// `SO_REUSEADDR` when `reuse` is set.
fn new_udp(addr: &SocketAddr, what: &str, reuse: bool) -> Result<OwnedFd, Error> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| Error::io(format!("socket({what})"), e.into()))?;
    if reuse {
        setsockopt(&fd, sockopt::ReuseAddr, &true)
            .map_err(|e| Error::io(format!("setsockopt({what}, SO_REUSEADDR)"), e.into()))?;
    }
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)
            .map_err(|e| Error::io(format!("setsockopt({what}, IPV6_V6ONLY)"), e.into()))?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr))
        .map_err(|e| Error::io(format!("bind({what}, {addr})"), e.into()))?;
    Ok(fd)
}

/// Creates the per-tunnel UDP socket: `SO_REUSEADDR` (unless `local` has port
/// 0, so that the ephemeral port is unique), bound to `local`, connected to
/// `peer`, non-blocking, close-on-exec (IPv6: `IPV6_V6ONLY`). Pass its fd as
/// [`crate::TunnelSpec::socket`] and keep it open for the life of the tunnel; the
/// daemon keeps sending and receiving control messages on it.
///
/// `local` and `peer` must be of the same address family. `local` may have port 0
/// (the kernel picks one; read it back with `local_addr()`).
pub fn tunnel_socket(local: SocketAddr, peer: SocketAddr) -> Result<UdpSocket, Error> {
    if local.is_ipv4() != peer.is_ipv4() {
        return Err(Error::InvalidArgument(format!(
            "tunnel socket {local} -> {peer}: address families differ"
        )));
    }
    // Tunnel sockets share the listening port; on port 0 the kernel must
    // pick a port no other socket uses, which SO_REUSEADDR would let it skip.
    let fd = new_udp(&local, "tunnel socket", local.port() != 0)?;
    connect(fd.as_raw_fd(), &SockaddrStorage::from(peer)).map_err(|e| {
        Error::io(
            format!("connect(tunnel socket {local} -> {peer})"),
            e.into(),
        )
    })?;
    Ok(UdpSocket::from(fd))
}

/// Creates a tunnel socket bound to `local`, not yet connected: on port 0 an
/// ephemeral port (no `SO_REUSEADDR`), otherwise that port shared with
/// `SO_REUSEADDR`. For a tunnel we dial from a port other than the listening
/// port: it sends with `send_to` and receives from any port of the peer,
/// because the peer may answer our SCCRQ from another UDP port (RFC 2661
/// §8.1); connect it with [`connect_socket`] once the SCCRP has fixed the
/// peer's port, before the kernel tunnel is created on it.
pub fn unconnected_tunnel_socket(local: SocketAddr) -> Result<UdpSocket, Error> {
    Ok(UdpSocket::from(new_udp(
        &local,
        "tunnel socket",
        local.port() != 0,
    )?))
}

/// Connect `socket` (a UDP socket) to `peer`; again to move it to another
/// peer port. Errors name the operation and the errno.
pub fn connect_socket(socket: &impl AsRawFd, peer: SocketAddr) -> Result<(), Error> {
    connect(socket.as_raw_fd(), &SockaddrStorage::from(peer))
        .map_err(|e| Error::io(format!("connect(tunnel socket -> {peer})"), e.into()))
}

/// Creates the daemon's listening UDP socket for new tunnels: `SO_REUSEADDR`, bound
/// to `local`, unconnected, non-blocking, close-on-exec (IPv6: `IPV6_V6ONLY`),
/// with a receive buffer of [`LISTEN_RCVBUF`] bytes where allowed.
/// Tunnel sockets from [`tunnel_socket`] can then share its address and port.
pub fn listen_socket(local: SocketAddr) -> Result<UdpSocket, Error> {
    let fd = new_udp(&local, "listening socket", true)?;
    // A burst of SCCRQs (an LAC bringing up thousands of tunnels at once)
    // overflows the default receive buffer (net.core.rmem_default, ~208 KiB,
    // a few hundred small datagrams); lost SCCRQs then wait for their
    // retransmission a second later. As root the buffer may exceed
    // net.core.rmem_max (SO_RCVBUFFORCE); otherwise it is capped there.
    if setsockopt(&fd, sockopt::RcvBufForce, &LISTEN_RCVBUF).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &LISTEN_RCVBUF);
    }
    Ok(UdpSocket::from(fd))
}

/// Receive buffer asked for on the listening socket, in bytes.
pub const LISTEN_RCVBUF: usize = 8 << 20;

fn storage_to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = s.as_sockaddr_in() {
        Some(SocketAddr::V4((*a).into()))
    } else {
        s.as_sockaddr_in6().map(|a| SocketAddr::V6((*a).into()))
    }
}

/// The peer address of a connected socket (`getpeername`).
pub(crate) fn peer_addr(fd: RawFd) -> Result<SocketAddr, Error> {
    let s: SockaddrStorage =
        getpeername(fd).map_err(|e| Error::io("getpeername(tunnel socket)", e.into()))?;
    storage_to_std(&s).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "tunnel socket has a non-IP peer address (family {:?})",
            s.family()
        ))
    })
}

/// Sets or clears UDP checksums on a UDP socket. IPv4: `SO_NO_CHECK` (transmit only;
/// IPv4 receivers always accept a zero checksum). IPv6: `UDP_NO_CHECK6_TX` and
/// `UDP_NO_CHECK6_RX` together, since an IPv6 receiver drops zero-checksum datagrams
/// unless told otherwise (RFC 6936): both ends must agree. The kernel reports the
/// state in `L2TP_ATTR_UDP_CSUM` / `L2TP_ATTR_UDP_ZERO_CSUM6_TX|RX`.
pub(crate) fn set_udp_checksum(fd: RawFd, enabled: bool) -> Result<(), Error> {
    let s: SockaddrStorage =
        getsockname(fd).map_err(|e| Error::io("getsockname(tunnel socket)", e.into()))?;
    let opts: &[(libc::c_int, libc::c_int, &str)] = match s.family() {
        Some(AddressFamily::Inet) => &[(libc::SOL_SOCKET, libc::SO_NO_CHECK, "SO_NO_CHECK")],
        Some(AddressFamily::Inet6) => &[
            (libc::SOL_UDP, UDP_NO_CHECK6_TX, "UDP_NO_CHECK6_TX"),
            (libc::SOL_UDP, UDP_NO_CHECK6_RX, "UDP_NO_CHECK6_RX"),
        ],
        other => {
            return Err(Error::InvalidArgument(format!(
                "tunnel socket is not an IP socket (family {other:?})"
            )));
        }
    };
    let value: libc::c_int = i32::from(!enabled);
    for &(level, name, opname) in opts {
        // SAFETY: passes a pointer to a live local int and its exact size; `fd` is only
        // used for this call.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast::<libc::c_void>(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::io(
                format!("setsockopt(tunnel socket, {opname}, {value})"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// The local address of an IP socket (`getsockname`), if it is one.
pub(crate) fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    let s: SockaddrStorage = getsockname(fd).ok()?;
    storage_to_std(&s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv_from_with_timeout(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 64];
        for _ in 0..200 {
            match s.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
        None
    }

    /// The precedence the daemon relies on: a connected tunnel socket sharing the
    /// listener's address/port gets its peer's datagrams; other peers reach the listener.
    #[test]
    fn connected_tunnel_socket_takes_precedence_over_listener() {
        for listener_ip in ["127.0.0.1", "0.0.0.0"] {
            let listener = listen_socket(format!("{listener_ip}:0").parse().unwrap()).unwrap();
            let port = listener.local_addr().unwrap().port();
            let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

            let peer_a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let peer_b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let tunnel = tunnel_socket(local, peer_a.local_addr().unwrap()).unwrap();
            assert_eq!(tunnel.local_addr().unwrap(), local);
            assert_eq!(tunnel.peer_addr().unwrap(), peer_a.local_addr().unwrap());
            assert_eq!(local_addr(tunnel.as_raw_fd()), Some(local));

            peer_a.send_to(b"to-tunnel", local).unwrap();
            peer_b.send_to(b"to-listener", local).unwrap();
            let (got, _) = recv_from_with_timeout(&tunnel).expect("tunnel socket got nothing");
            assert_eq!(got, b"to-tunnel");
            let (got, from) = recv_from_with_timeout(&listener).expect("listener got nothing");
            assert_eq!(got, b"to-listener");
            assert_eq!(from, peer_b.local_addr().unwrap());
            // Nothing else is pending on either.
            let mut buf = [0u8; 16];
            assert!(tunnel.recv(&mut buf).is_err());
            assert!(listener.recv(&mut buf).is_err());

            // A second connected socket for the same peer address/port would share the
            // 5-tuple; with a different peer port it is fine.
            let peer_c = UdpSocket::bind("127.0.0.1:0").unwrap();
            let tunnel2 = tunnel_socket(local, peer_c.local_addr().unwrap()).unwrap();
            peer_c.send_to(b"to-tunnel2", local).unwrap();
            let (got, _) = recv_from_with_timeout(&tunnel2).expect("tunnel2 got nothing");
            assert_eq!(got, b"to-tunnel2");
        }
    }

    /// An unconnected tunnel socket hears the peer from any of its ports;
    /// connected afterwards, only from that one.
    #[test]
    fn unconnected_tunnel_socket_hears_any_peer_port_until_connected() {
        let t = unconnected_tunnel_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let local = t.local_addr().unwrap();
        assert_ne!(local.port(), 0, "an ephemeral port");
        let peer_a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer_b = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer_b.send_to(b"sccrp", local).unwrap();
        let (got, from) = recv_from_with_timeout(&t).expect("nothing from port b");
        assert_eq!(
            (got.as_slice(), from),
            (&b"sccrp"[..], peer_b.local_addr().unwrap())
        );
        connect_socket(&t, peer_b.local_addr().unwrap()).unwrap();
        peer_a.send_to(b"stray", local).unwrap();
        peer_b.send_to(b"scccn-ack", local).unwrap();
        let (got, _) = recv_from_with_timeout(&t).expect("nothing from port b");
        assert_eq!(got, b"scccn-ack");
        let mut buf = [0u8; 16];
        assert!(
            t.recv(&mut buf).is_err(),
            "the stray from port a is not received"
        );
    }

    /// On a given port, unconnected tunnel sockets share it with the
    /// listening socket and with each other (`SO_REUSEADDR`).
    #[test]
    fn unconnected_tunnel_sockets_share_a_given_port() {
        let l = listen_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = l.local_addr().unwrap();
        let a = unconnected_tunnel_socket(port).unwrap();
        let b = unconnected_tunnel_socket(port).unwrap();
        assert_eq!(a.local_addr().unwrap(), port);
        assert_eq!(b.local_addr().unwrap(), port);
    }

    #[test]
    fn tunnel_socket_needs_reuseaddr_on_listener() {
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = plain.local_addr().unwrap();
        let err = tunnel_socket(local, "127.0.0.1:9".parse().unwrap()).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EADDRINUSE), "{err}");
        assert!(
            err.to_string()
                .starts_with("bind(tunnel socket, 127.0.0.1:"),
            "{err}"
        );
    }

    #[test]
    fn checksum_option_and_peer() {
        let t = tunnel_socket(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
        )
        .unwrap();
        set_udp_checksum(t.as_raw_fd(), false).unwrap();
        set_udp_checksum(t.as_raw_fd(), true).unwrap();
        assert_eq!(
            peer_addr(t.as_raw_fd()).unwrap(),
            "127.0.0.1:9".parse::<SocketAddr>().unwrap()
        );
        let l = listen_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(peer_addr(l.as_raw_fd()).is_err());
        assert!(tunnel_socket("127.0.0.1:0".parse().unwrap(), "[::1]:9".parse().unwrap()).is_err());
    }

    #[test]
    fn ipv6_tunnel_socket() {
        // The host may lack IPv6 on loopback; only check when ::1 is bindable.
        if UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("skipping: no IPv6 loopback");
            return;
        }
        let t = tunnel_socket("[::1]:0".parse().unwrap(), "[::1]:9".parse().unwrap()).unwrap();
        set_udp_checksum(t.as_raw_fd(), false).unwrap();
        assert!(t.peer_addr().unwrap().is_ipv6());
    }
}
