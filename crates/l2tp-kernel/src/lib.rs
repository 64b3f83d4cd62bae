//! Linux L2TP data plane for l2tpd: everything that touches the kernel.
//!
//! * [`KernelDataPlane`] creates kernel tunnels and sessions, either through the
//!   generic netlink family `l2tp` ([`DataPlaneMode::Netlink`], the API the kernel
//!   recommends, include/uapi/linux/l2tp.h) or through PPPoL2TP sockets alone
//!   ([`DataPlaneMode::Legacy`], the connect()-only API of xl2tpd/OpenL2TP,
//!   include/uapi/linux/if_pppol2tp.h). Either way a PPP session yields a connected
//!   PPPoL2TP socket ([`PppSession`]) that is handed to `pppd` (`plugin pppol2tp.so
//!   pppol2tp <fd>`).
//! * [`NullDataPlane`] records calls and creates nothing, for tests on hosts without
//!   kernel L2TP.
//! * [`tunnel_socket`] / [`listen_socket`] create the daemon's UDP sockets.
//! * [`LinkWatcher`] waits for `pppN` links to come up, driven by rtnetlink
//!   notifications (one shared multicast socket, no polling); [`link_addresses`],
//!   [`wait_for_link`], [`list_ppp_links`] are one-off rtnetlink queries (async, tokio).
//!
//! # Kernel behaviour the daemon relies on (seen on Debian's 6.1 kernel in the VM)
//!
//! * The tunnel socket keeps carrying the control channel: while a kernel tunnel is
//!   attached to a UDP socket, the kernel consumes L2TP *data* packets of sessions it
//!   knows and passes control packets (T bit set) — and data packets for session ids it
//!   does not know — up to the socket as ordinary datagrams. The daemon must ignore
//!   data packets it reads there.
//! * A UDP socket can carry one kernel tunnel in its whole life: attaching a second
//!   one fails with `EBUSY`, also after the first was deleted. Use a fresh
//!   [`tunnel_socket`] for every tunnel.
//! * Closing the tunnel's UDP socket destroys the kernel tunnel and all its sessions;
//!   after [`DataPlane::delete_tunnel`] the socket still sends and receives normally
//!   (e.g. for the StopCCN exchange).
//! * Deleting a session does not make pppd exit, in either mode: after a netlink
//!   `SESSION_DELETE` pppd keeps running on a dead channel; in legacy mode pppd's copy of
//!   the socket even keeps the session alive. Stop pppd yourself.
//! * Recommended teardown of a session: SIGTERM pppd (it sends LCP Terminate-Request
//!   through the still existing session) and wait for it (bounded), then
//!   [`DataPlane::delete_session`], then send CDN. Of a tunnel: sessions as above, send
//!   StopCCN and finish that exchange on the tunnel socket, [`DataPlane::delete_tunnel`],
//!   close the UDP socket.
//! * Tunnel and session deletion complete asynchronously in the kernel; they were
//!   gone from the dump within ~10 ms in the VM.
//! * Legacy mode: each tunnel management socket shows up as a session with id 0 in
//!   `ip l2tp show session` and [`DataPlane::list_sessions`].
//!
//! No neli or rtnetlink type appears in this crate's public API.

#![warn(missing_docs)]

mod error;
mod genl;
mod kernel;
mod link;
mod null;
mod pppox;
pub mod uapi;
mod udp;

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

pub use error::{Error, MODPROBE_HINT};
pub use kernel::KernelDataPlane;
pub use link::{
    IPV4_GRACE, LinkAddr, LinkInfo, LinkWatcher, LinkWatcherStats, link_addresses, list_ppp_links,
    wait_for_link,
};
pub use null::{Call, NullDataPlane};
pub use udp::{
    LISTEN_RCVBUF, connect_socket, listen_socket, tunnel_socket, unconnected_tunnel_socket,
};

/// An L2TP tunnel id as the kernel stores it (`L2TP_ATTR_CONN_ID`, u32).
/// L2TPv2 tunnel ids are 16-bit values; 0 is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TunnelId(pub u32);

/// An L2TP session id as the kernel stores it (`L2TP_ATTR_SESSION_ID`, u32).
/// L2TPv2 session ids are 16-bit values; 0 is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub u32);

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Tunnel encapsulation (`enum l2tp_encap_type`, `L2TP_ATTR_ENCAP_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encap {
    /// L2TP over UDP (`L2TP_ENCAPTYPE_UDP` = 0); the only one L2TPv2 knows.
    #[default]
    Udp,
    /// L2TPv3 directly over IP protocol 115 (`L2TP_ENCAPTYPE_IP` = 1).
    Ip,
}

impl Encap {
    /// The uapi value (`L2TP_ENCAPTYPE_*`).
    pub fn to_uapi(self) -> u16 {
        match self {
            Self::Udp => uapi::ENCAPTYPE_UDP,
            Self::Ip => uapi::ENCAPTYPE_IP,
        }
    }
}

/// Pseudowire type of a session (`enum l2tp_pwtype`, `L2TP_ATTR_PW_TYPE`).
/// L2TPv2 tunnels accept only [`Pseudowire::Ppp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pseudowire {
    /// PPP (`L2TP_PWTYPE_PPP` = 7): the session is driven through a PPPoL2TP socket.
    #[default]
    Ppp,
    /// PPP, access-concentrator side (`L2TP_PWTYPE_PPP_AC` = 8).
    PppAc,
    /// Ethernet (`L2TP_PWTYPE_ETH` = 5): v3 only, the kernel creates an `l2tpethN` netdev.
    Eth,
    /// Ethernet VLAN (`L2TP_PWTYPE_ETH_VLAN` = 4).
    EthVlan,
    /// IP (`L2TP_PWTYPE_IP` = 11).
    Ip,
    /// `L2TP_PWTYPE_NONE` (0).
    None,
    /// Any other value reported by the kernel.
    Other(u16),
}

impl Pseudowire {
    /// The uapi value (`L2TP_PWTYPE_*`).
    pub fn to_uapi(self) -> u16 {
        match self {
            Self::Ppp => uapi::pwtype::PPP,
            Self::PppAc => uapi::pwtype::PPP_AC,
            Self::Eth => uapi::pwtype::ETH,
            Self::EthVlan => uapi::pwtype::ETH_VLAN,
            Self::Ip => uapi::pwtype::IP,
            Self::None => uapi::pwtype::NONE,
            Self::Other(v) => v,
        }
    }

    /// From the uapi value (`L2TP_PWTYPE_*`).
    pub fn from_uapi(v: u16) -> Self {
        match v {
            uapi::pwtype::PPP => Self::Ppp,
            uapi::pwtype::PPP_AC => Self::PppAc,
            uapi::pwtype::ETH => Self::Eth,
            uapi::pwtype::ETH_VLAN => Self::EthVlan,
            uapi::pwtype::IP => Self::Ip,
            uapi::pwtype::NONE => Self::None,
            other => Self::Other(other),
        }
    }

    fn is_ppp(self) -> bool {
        matches!(self, Self::Ppp | Self::PppAc)
    }
}

/// Parameters of a kernel tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    /// Our tunnel id (non-zero; ≤ 65535 for L2TPv2).
    pub tunnel_id: TunnelId,
    /// The peer's tunnel id (non-zero; ≤ 65535 for L2TPv2).
    pub peer_tunnel_id: TunnelId,
    /// L2TP version: 2 (RFC 2661) or 3 (RFC 3931).
    pub version: u8,
    /// Encapsulation; L2TPv2 is always [`Encap::Udp`].
    pub encap: Encap,
    /// Managed tunnel: our bound+connected UDP socket (`L2TP_ATTR_FD`; see
    /// [`tunnel_socket`]). The caller keeps ownership and must keep it open for the
    /// life of the tunnel: closing it destroys the kernel tunnel and its sessions.
    pub socket: RawFd,
    /// UDP checksums. `false` sets `SO_NO_CHECK` (IPv4: transmit without checksum) or
    /// `UDP_NO_CHECK6_TX` + `UDP_NO_CHECK6_RX` (IPv6: both ends must agree, an IPv6
    /// receiver drops zero-checksum datagrams otherwise) on [`TunnelSpec::socket`];
    /// `true` clears them. Keep `true` unless configured otherwise.
    pub udp_checksum: bool,
}

/// Parameters of a kernel session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// Our tunnel id (the tunnel must exist in the kernel).
    pub tunnel_id: TunnelId,
    /// Our session id (non-zero; ≤ 65535 for L2TPv2).
    pub session_id: SessionId,
    /// The peer's tunnel id.
    pub peer_tunnel_id: TunnelId,
    /// The peer's session id (non-zero; ≤ 65535 for L2TPv2).
    pub peer_session_id: SessionId,
    /// Pseudowire type; L2TPv2 accepts only [`Pseudowire::Ppp`].
    pub pseudowire: Pseudowire,
    /// LNS mode (`L2TP_ATTR_LNS_MODE` / `PPPOL2TP_SO_LNSMODE`): as LNS the kernel
    /// follows the peer's wish for sequence numbers.
    pub lns_mode: bool,
    /// Send sequence numbers on data packets (`L2TP_ATTR_SEND_SEQ`).
    pub send_seq: bool,
    /// Drop data packets without sequence numbers (`L2TP_ATTR_RECV_SEQ`).
    pub recv_seq: bool,
    /// Reorder timeout in milliseconds, 0 = no reordering (`L2TP_ATTR_RECV_TIMEOUT`,
    /// `PPPOL2TP_SO_REORDERTO`).
    pub reorder_timeout_ms: u64,
    /// Peer address of the tunnel (needed for the PPPoL2TP sockaddr).
    pub peer_addr: SocketAddr,
}

/// Result of creating a PPP session: the connected PPPoL2TP socket to hand to pppd.
///
/// The socket is created with `SOCK_CLOEXEC`; to pass it to pppd, `dup2()` it to the
/// wanted descriptor number in the child (which clears close-on-exec on the copy) and
/// run `pppd plugin pppol2tp.so pppol2tp <n> ...`. Do not clear `FD_CLOEXEC` on this
/// descriptor itself: every other child spawned meanwhile would inherit the session.
///
/// Dropping this value only closes the caller's descriptor: the data plane keeps its
/// own duplicate, so the kernel session lives at least until
/// [`DataPlane::delete_session`] (or the tunnel's deletion), whether or not pppd still
/// runs. Drop it once pppd has been spawned.
#[derive(Debug)]
pub struct PppSession {
    /// The connected PPPoL2TP socket (`AF_PPPOX`, `PX_PROTO_OL2TP`).
    pub fd: OwnedFd,
    /// Our tunnel id.
    pub tunnel_id: TunnelId,
    /// Our session id.
    pub session_id: SessionId,
}

impl AsFd for PppSession {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PppSession {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Data-plane counters of a tunnel or session (`L2TP_ATTR_STATS`, nested u64s, or
/// `struct pppol2tp_ioc_stats`). Packets and bytes are L2TP payload counts as kept by
/// the kernel; fields a source does not report stay 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Data packets sent.
    pub tx_packets: u64,
    /// Data bytes sent.
    pub tx_bytes: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Data packets received.
    pub rx_packets: u64,
    /// Data bytes received.
    pub rx_bytes: u64,
    /// Packets discarded for sequence-number reasons.
    pub rx_seq_discards: u64,
    /// Packets received out of sequence.
    pub rx_oos_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Packets discarded for a wrong cookie (L2TPv3; newer kernels only).
    pub rx_cookie_discards: u64,
    /// Invalid packets (newer kernels only).
    pub rx_invalid: u64,
}

/// A kernel tunnel as reported by `L2TP_CMD_TUNNEL_GET` (the same data
/// `ip l2tp show tunnel` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelInfo {
    /// Our tunnel id (`L2TP_ATTR_CONN_ID`).
    pub tunnel_id: TunnelId,
    /// The peer's tunnel id (`L2TP_ATTR_PEER_CONN_ID`).
    pub peer_tunnel_id: TunnelId,
    /// L2TP version (`L2TP_ATTR_PROTO_VERSION`), 0 if not reported.
    pub version: u8,
    /// Encapsulation (`L2TP_ATTR_ENCAP_TYPE`).
    pub encap: Encap,
    /// Local address and UDP port of the tunnel socket (`L2TP_ATTR_IP[6]_SADDR`,
    /// `L2TP_ATTR_UDP_SPORT`; port 0 for IP encapsulation).
    pub local: Option<SocketAddr>,
    /// Peer address and UDP port (`L2TP_ATTR_IP[6]_DADDR`, `L2TP_ATTR_UDP_DPORT`).
    pub peer: Option<SocketAddr>,
    /// UDP checksums on transmit (`L2TP_ATTR_UDP_CSUM` for IPv4, absence of
    /// `L2TP_ATTR_UDP_ZERO_CSUM6_TX` for IPv6); `None` if not reported.
    pub udp_checksum: Option<bool>,
    /// The tunnel socket uses IPsec (`L2TP_ATTR_USING_IPSEC`).
    pub using_ipsec: bool,
    /// Tunnel counters.
    pub stats: Stats,
}

/// A kernel session as reported by `L2TP_CMD_SESSION_GET` (the same data
/// `ip l2tp show session` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Our tunnel id (`L2TP_ATTR_CONN_ID`).
    pub tunnel_id: TunnelId,
    /// Our session id (`L2TP_ATTR_SESSION_ID`).
    pub session_id: SessionId,
    /// The peer's tunnel id (`L2TP_ATTR_PEER_CONN_ID`).
    pub peer_tunnel_id: TunnelId,
    /// The peer's session id (`L2TP_ATTR_PEER_SESSION_ID`).
    pub peer_session_id: SessionId,
    /// Pseudowire type (`L2TP_ATTR_PW_TYPE`).
    pub pseudowire: Pseudowire,
    /// Interface name (`L2TP_ATTR_IFNAME`); the kernel reports it only for Ethernet
    /// pseudowires, never for PPP.
    pub ifname: Option<String>,
    /// Our cookie (L2TPv3).
    pub cookie: Option<Vec<u8>>,
    /// The peer's cookie (L2TPv3).
    pub peer_cookie: Option<Vec<u8>>,
    /// `L2TP_ATTR_RECV_SEQ`
    pub recv_seq: bool,
    /// `L2TP_ATTR_SEND_SEQ`
    pub send_seq: bool,
    /// `L2TP_ATTR_LNS_MODE`
    pub lns_mode: bool,
    /// Reorder timeout in milliseconds (`L2TP_ATTR_RECV_TIMEOUT`).
    pub reorder_timeout_ms: u64,
    /// `L2TP_ATTR_USING_IPSEC`
    pub using_ipsec: bool,
    /// Session counters.
    pub stats: Stats,
}

/// How [`KernelDataPlane`] talks to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataPlaneMode {
    /// Generic netlink family `l2tp` (TUNNEL_CREATE with the daemon's UDP socket,
    /// SESSION_CREATE, then a PPPoL2TP socket connected to the session). Recommended
    /// by the kernel documentation; needs `l2tp_netlink` and `l2tp_ppp`.
    #[default]
    Netlink,
    /// PPPoL2TP sockets only (a tunnel management socket with session ids 0/0, then
    /// one socket per session), as xl2tpd and OpenL2TP do. Needs only `l2tp_ppp`
    /// (listing tunnels/sessions still uses netlink when available).
    Legacy,
}

impl std::str::FromStr for DataPlaneMode {
    type Err = Error;
    /// Accepts `netlink` and `legacy` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "netlink" => Ok(Self::Netlink),
            "legacy" => Ok(Self::Legacy),
            other => Err(Error::InvalidArgument(format!(
                "data plane mode {other:?} (expected \"netlink\" or \"legacy\")"
            ))),
        }
    }
}

impl fmt::Display for DataPlaneMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Netlink => "netlink",
            Self::Legacy => "legacy",
        })
    }
}

/// The kernel data plane as the daemon sees it.
///
/// All calls are synchronous and quick (one netlink round trip or a few socket calls).
pub trait DataPlane: Send {
    /// Creates the kernel tunnel over [`TunnelSpec::socket`].
    /// Fails with errno `EEXIST` if the tunnel id is taken, `EBUSY` if the socket is
    /// or was already attached to a tunnel.
    fn create_tunnel(&mut self, spec: &TunnelSpec) -> Result<(), Error>;

    /// Deletes the kernel tunnel and all its sessions. Deleting a tunnel the kernel
    /// no longer has (e.g. because its socket was closed) is not an error.
    fn delete_tunnel(&mut self, id: TunnelId) -> Result<(), Error>;

    /// Creates the kernel session and, for PPP pseudowires, returns the connected
    /// PPPoL2TP socket (`Some`); other pseudowires (netlink mode, L2TPv3) give `None`.
    fn create_session(&mut self, spec: &SessionSpec) -> Result<Option<PppSession>, Error>;

    /// Deletes the kernel session (netlink: `L2TP_CMD_SESSION_DELETE`; legacy: closes
    /// the data plane's copy of the session socket). pppd does **not** exit because of
    /// this: stop pppd first (see the crate docs). Deleting a session the kernel no
    /// longer has is not an error.
    fn delete_session(&mut self, tunnel: TunnelId, session: SessionId) -> Result<(), Error>;

    /// Counters of one session.
    fn session_stats(&mut self, tunnel: TunnelId, session: SessionId) -> Result<Stats, Error>;

    /// Counters of one tunnel.
    fn tunnel_stats(&mut self, tunnel: TunnelId) -> Result<Stats, Error>;

    /// All kernel tunnels (of any controller), like `ip l2tp show tunnel`.
    fn list_tunnels(&mut self) -> Result<Vec<TunnelInfo>, Error>;

    /// All kernel sessions (of any controller), like `ip l2tp show session`. Legacy
    /// tunnel management sockets appear as sessions with id 0.
    fn list_sessions(&mut self) -> Result<Vec<SessionInfo>, Error>;
}

/// Checks ids for the L2TP version (non-zero, 16-bit for v2).
fn check_id(what: &str, id: u32, version: u8) -> Result<(), Error> {
    if id == 0 {
        return Err(Error::InvalidArgument(format!("{what} 0 is reserved")));
    }
    if version == 2 && id > u32::from(u16::MAX) {
        return Err(Error::InvalidArgument(format!(
            "{what} {id} does not fit in 16 bits (L2TPv2)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudowire_roundtrip() {
        for p in [
            Pseudowire::Ppp,
            Pseudowire::PppAc,
            Pseudowire::Eth,
            Pseudowire::EthVlan,
            Pseudowire::Ip,
            Pseudowire::None,
            Pseudowire::Other(0x42),
        ] {
            assert_eq!(Pseudowire::from_uapi(p.to_uapi()), p);
        }
        assert_eq!(Pseudowire::Ppp.to_uapi(), 7);
        assert_eq!(Encap::Udp.to_uapi(), 0);
        assert_eq!(Encap::Ip.to_uapi(), 1);
    }

    #[test]
    fn mode_parsing() {
        assert_eq!(
            "netlink".parse::<DataPlaneMode>().unwrap(),
            DataPlaneMode::Netlink
        );
        assert_eq!(
            "Legacy".parse::<DataPlaneMode>().unwrap(),
            DataPlaneMode::Legacy
        );
        assert!("x".parse::<DataPlaneMode>().is_err());
        assert_eq!(DataPlaneMode::Legacy.to_string(), "legacy");
    }

    #[test]
    fn id_checks() {
        assert!(check_id("tunnel id", 1, 2).is_ok());
        assert!(check_id("tunnel id", 65535, 2).is_ok());
        assert!(check_id("tunnel id", 65536, 2).is_err());
        assert!(check_id("tunnel id", 65536, 3).is_ok());
        assert!(check_id("tunnel id", 0, 3).is_err());
    }
}
