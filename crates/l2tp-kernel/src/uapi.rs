//! Numeric constants of the Linux kernel uapi used by this crate.
//!
//! Sources: `include/uapi/linux/l2tp.h` (generic netlink family `l2tp`),
//! `include/uapi/linux/if_pppox.h`, `include/uapi/linux/if_pppol2tp.h`,
//! `include/uapi/linux/ppp-ioctl.h`, `include/uapi/linux/genetlink.h`.
//! The values were checked against the x86_64 uapi headers installed on the build host.

/// Generic netlink family name of the L2TP subsystem (`L2TP_GENL_NAME`).
pub const L2TP_GENL_NAME: &str = "l2tp";
/// Generic netlink version of the L2TP family (`L2TP_GENL_VERSION`).
pub const L2TP_GENL_VERSION: u8 = 1;
/// Multicast group of the L2TP family (`L2TP_GENL_MCGROUP`).
pub const L2TP_GENL_MCGROUP: &str = "l2tp";

/// `enum l2tp_cmd` (`L2TP_CMD_*`), the generic netlink commands of the family.
pub mod cmd {
    /// `L2TP_CMD_NOOP`
    pub const NOOP: u8 = 0;
    /// `L2TP_CMD_TUNNEL_CREATE`
    pub const TUNNEL_CREATE: u8 = 1;
    /// `L2TP_CMD_TUNNEL_DELETE`
    pub const TUNNEL_DELETE: u8 = 2;
    /// `L2TP_CMD_TUNNEL_MODIFY`
    pub const TUNNEL_MODIFY: u8 = 3;
    /// `L2TP_CMD_TUNNEL_GET` (supports dump)
    pub const TUNNEL_GET: u8 = 4;
    /// `L2TP_CMD_SESSION_CREATE`
    pub const SESSION_CREATE: u8 = 5;
    /// `L2TP_CMD_SESSION_DELETE`
    pub const SESSION_DELETE: u8 = 6;
    /// `L2TP_CMD_SESSION_MODIFY`
    pub const SESSION_MODIFY: u8 = 7;
    /// `L2TP_CMD_SESSION_GET` (supports dump)
    pub const SESSION_GET: u8 = 8;

    /// The uapi name of a command, for error messages.
    pub fn name(cmd: u8) -> &'static str {
        match cmd {
            NOOP => "L2TP_CMD_NOOP",
            TUNNEL_CREATE => "L2TP_CMD_TUNNEL_CREATE",
            TUNNEL_DELETE => "L2TP_CMD_TUNNEL_DELETE",
            TUNNEL_MODIFY => "L2TP_CMD_TUNNEL_MODIFY",
            TUNNEL_GET => "L2TP_CMD_TUNNEL_GET",
            SESSION_CREATE => "L2TP_CMD_SESSION_CREATE",
            SESSION_DELETE => "L2TP_CMD_SESSION_DELETE",
            SESSION_MODIFY => "L2TP_CMD_SESSION_MODIFY",
            SESSION_GET => "L2TP_CMD_SESSION_GET",
            _ => "L2TP_CMD_?",
        }
    }
}

/// `L2TP_ATTR_*` netlink attribute types (payload type in the comment).
pub mod attr {
    /// u16, `enum l2tp_pwtype`
    pub const PW_TYPE: u16 = 1;
    /// u16, `enum l2tp_encap_type`
    pub const ENCAP_TYPE: u16 = 2;
    /// u8 (v3 only)
    pub const L2SPEC_TYPE: u16 = 5;
    /// u8: 2 or 3
    pub const PROTO_VERSION: u16 = 7;
    /// NUL-terminated string (v3 Ethernet sessions only)
    pub const IFNAME: u16 = 8;
    /// u32: tunnel id
    pub const CONN_ID: u16 = 9;
    /// u32: peer tunnel id
    pub const PEER_CONN_ID: u16 = 10;
    /// u32: session id
    pub const SESSION_ID: u16 = 11;
    /// u32: peer session id
    pub const PEER_SESSION_ID: u16 = 12;
    /// u8 (GET) / flag (CREATE of unmanaged tunnels)
    pub const UDP_CSUM: u16 = 13;
    /// 0, 4 or 8 bytes (v3 only)
    pub const COOKIE: u16 = 15;
    /// 0, 4 or 8 bytes (v3 only)
    pub const PEER_COOKIE: u16 = 16;
    /// u32, unused (always 0 in GET replies)
    pub const DEBUG: u16 = 17;
    /// u8
    pub const RECV_SEQ: u16 = 18;
    /// u8
    pub const SEND_SEQ: u16 = 19;
    /// u8
    pub const LNS_MODE: u16 = 20;
    /// u8 (GET only)
    pub const USING_IPSEC: u16 = 21;
    /// u64 milliseconds (`NLA_MSECS`)
    pub const RECV_TIMEOUT: u16 = 22;
    /// u32: fd of a bound and connected tunnel socket (managed tunnel)
    pub const FD: u16 = 23;
    /// u32, `struct in_addr` (network byte order)
    pub const IP_SADDR: u16 = 24;
    /// u32, `struct in_addr` (network byte order)
    pub const IP_DADDR: u16 = 25;
    /// u16, host byte order
    pub const UDP_SPORT: u16 = 26;
    /// u16, host byte order
    pub const UDP_DPORT: u16 = 27;
    /// nested `L2TP_ATTR_STATS_*`
    pub const STATS: u16 = 30;
    /// 16 bytes `struct in6_addr`
    pub const IP6_SADDR: u16 = 31;
    /// 16 bytes `struct in6_addr`
    pub const IP6_DADDR: u16 = 32;
    /// flag
    pub const UDP_ZERO_CSUM6_TX: u16 = 33;
    /// flag
    pub const UDP_ZERO_CSUM6_RX: u16 = 34;
    /// padding for 64-bit attributes
    pub const PAD: u16 = 35;
}

/// `L2TP_ATTR_STATS_*`, nested in [`attr::STATS`]; all u64.
pub mod stats {
    /// `L2TP_ATTR_TX_PACKETS`
    pub const TX_PACKETS: u16 = 1;
    /// `L2TP_ATTR_TX_BYTES`
    pub const TX_BYTES: u16 = 2;
    /// `L2TP_ATTR_TX_ERRORS`
    pub const TX_ERRORS: u16 = 3;
    /// `L2TP_ATTR_RX_PACKETS`
    pub const RX_PACKETS: u16 = 4;
    /// `L2TP_ATTR_RX_BYTES`
    pub const RX_BYTES: u16 = 5;
    /// `L2TP_ATTR_RX_SEQ_DISCARDS`
    pub const RX_SEQ_DISCARDS: u16 = 6;
    /// `L2TP_ATTR_RX_OOS_PACKETS`
    pub const RX_OOS_PACKETS: u16 = 7;
    /// `L2TP_ATTR_RX_ERRORS`
    pub const RX_ERRORS: u16 = 8;
    /// `L2TP_ATTR_STATS_PAD`
    pub const PAD: u16 = 9;
    /// `L2TP_ATTR_RX_COOKIE_DISCARDS` (newer kernels)
    pub const RX_COOKIE_DISCARDS: u16 = 10;
    /// `L2TP_ATTR_RX_INVALID` (newer kernels)
    pub const RX_INVALID: u16 = 11;
}

/// `enum l2tp_pwtype` (`L2TP_PWTYPE_*`).
pub mod pwtype {
    /// `L2TP_PWTYPE_NONE`
    pub const NONE: u16 = 0x0000;
    /// `L2TP_PWTYPE_ETH_VLAN`
    pub const ETH_VLAN: u16 = 0x0004;
    /// `L2TP_PWTYPE_ETH`
    pub const ETH: u16 = 0x0005;
    /// `L2TP_PWTYPE_PPP`
    pub const PPP: u16 = 0x0007;
    /// `L2TP_PWTYPE_PPP_AC`
    pub const PPP_AC: u16 = 0x0008;
    /// `L2TP_PWTYPE_IP`
    pub const IP: u16 = 0x000b;
}

/// `enum l2tp_encap_type`: `L2TP_ENCAPTYPE_UDP`.
pub const ENCAPTYPE_UDP: u16 = 0;
/// `enum l2tp_encap_type`: `L2TP_ENCAPTYPE_IP`.
pub const ENCAPTYPE_IP: u16 = 1;

/// `AF_PPPOX` (include/linux/socket.h).
pub const AF_PPPOX: i32 = 24;
/// `PX_PROTO_OL2TP` (if_pppox.h).
pub const PX_PROTO_OL2TP: i32 = 1;
/// `SOL_PPPOL2TP`, setsockopt level of PPPoL2TP sockets.
pub const SOL_PPPOL2TP: i32 = 273;
/// `PPPOL2TP_SO_DEBUG` (int)
pub const PPPOL2TP_SO_DEBUG: i32 = 1;
/// `PPPOL2TP_SO_RECVSEQ` (int, 1 = drop data packets without sequence numbers)
pub const PPPOL2TP_SO_RECVSEQ: i32 = 2;
/// `PPPOL2TP_SO_SENDSEQ` (int, 1 = send sequence numbers)
pub const PPPOL2TP_SO_SENDSEQ: i32 = 3;
/// `PPPOL2TP_SO_LNSMODE` (int, 0 = LAC, 1 = LNS)
pub const PPPOL2TP_SO_LNSMODE: i32 = 4;
/// `PPPOL2TP_SO_REORDERTO` (int, milliseconds, 0 = no reordering)
pub const PPPOL2TP_SO_REORDERTO: i32 = 5;
/// `PPPIOCGL2TPSTATS` = `_IOR('t', 54, struct pppol2tp_ioc_stats)` (72-byte struct).
pub const PPPIOCGL2TPSTATS: u64 = 0x8048_7436;
/// `PPPIOCGCHAN` = `_IOR('t', 55, int)`: PPP channel index of a PPPoX socket.
pub const PPPIOCGCHAN: u64 = 0x8004_7437;

/// `GENL_ID_CTRL`, the netlink message type of the generic netlink controller.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16)
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string)
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `CTRL_ATTR_VERSION` (u32)
pub const CTRL_ATTR_VERSION: u16 = 3;

/// `ARPHRD_PPP` (include/uapi/linux/if_arp.h): link type of `pppN` interfaces.
pub const ARPHRD_PPP: u16 = 512;
