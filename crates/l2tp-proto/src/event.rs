//! What the endpoint hands to its driver: transmits, events, actions; and
//! what the driver hands back: commands and action results.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::reliable::ChannelConfig;
use crate::session::{CallParams, CallType};
use crate::text::PeerText;
use crate::wire::{SessionId, TunnelId};

/// One output of the endpoint, drained with [`Endpoint::poll_output`](crate::endpoint::Endpoint::poll_output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `data` to the tunnel's peer over the tunnel's socket.
    Transmit(Transmit),
    /// Something happened that the driver may log or report.
    Event(Event),
    /// Program the data plane; report the result with an [`ActionResult`] when it can fail.
    Action(Action),
    /// A peer asks for a new tunnel (a valid SCCRQ, RFC 2661 §6.1): decide
    /// with [`Endpoint::accept`](crate::endpoint::Endpoint::accept) (SCCRP)
    /// or [`Endpoint::refuse`](crate::endpoint::Endpoint::refuse) (StopCCN,
    /// RFC 2661 §4.4.2: result 2 error 4 at the tunnel limit, 4 for a peer
    /// the policy refuses). Nothing is held until then; dropping it ignores
    /// the SCCRQ (the peer retransmits it and it is reported again).
    Incoming(crate::endpoint::Incoming),
    /// A peer asks for a new call in an established tunnel (an ICRQ, RFC
    /// 2661 §6.6, or OCRQ, §6.9, that passed the tunnel's protocol checks):
    /// decide with [`Endpoint::accept_call`](crate::endpoint::Endpoint::accept_call)
    /// (ICRP, or OCRP then OCCN) or
    /// [`Endpoint::refuse_call`](crate::endpoint::Endpoint::refuse_call)
    /// (CDN, RFC 2661 §4.4.2: result 4 at a session limit). The call is held
    /// pending until then; dropped undecided, it is refused with CDN result 4
    /// at its set-up deadline.
    IncomingCall(crate::endpoint::IncomingCall),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our tunnel id: the driver sends over the UDP socket of this tunnel,
    /// creating it (bound to the local address, connected to `peer`) on first use.
    /// 0 for a stateless answer to a message for a tunnel we do not have
    /// (StopCCN or ZLB, see [`Endpoint::add_stale_tunnel`](crate::endpoint::Endpoint::add_stale_tunnel)):
    /// send it from the listening socket.
    pub tunnel: TunnelId,
    /// The peer's address and UDP port. For a tunnel we initiated it changes
    /// once when the SCCRP came from another UDP port of the peer's address
    /// (RFC 2661 §8.1): from then on every transmit of the tunnel (the SCCCN
    /// first) and its [`Action::CreateTunnel`] carry the new port, and the
    /// driver must re-connect the tunnel's socket to it before the kernel
    /// tunnel is created. `Tunnel::peer` holds it too.
    pub peer: SocketAddr,
    /// The whole L2TP control message (RFC 2661 §3.1).
    pub data: Vec<u8>,
}

/// Data plane work for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the kernel tunnel over the tunnel's UDP socket (genetlink
    /// `L2TP_CMD_TUNNEL_CREATE` with `L2TP_ATTR_FD`). Reply with [`ActionResult::Tunnel`].
    CreateTunnel {
        /// Our tunnel id (`L2TP_ATTR_CONN_ID`).
        tunnel: TunnelId,
        /// The peer's tunnel id (`L2TP_ATTR_PEER_CONN_ID`).
        peer_tunnel: TunnelId,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// Delete the kernel tunnel and everything in it. No reply.
    DeleteTunnel {
        /// Our tunnel id.
        tunnel: TunnelId,
    },
    /// Create the kernel PPP session and start pppd on it. Reply with [`ActionResult::Session`].
    CreateSession {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id (`L2TP_ATTR_SESSION_ID`).
        session: SessionId,
        /// The peer's tunnel id.
        peer_tunnel: TunnelId,
        /// The peer's session id (`L2TP_ATTR_PEER_SESSION_ID`).
        peer_session: SessionId,
        /// The call type; LNS calls set `L2TP_ATTR_LNS_MODE`.
        call_type: CallType,
        /// Data messages carry sequence numbers (Sequencing Required, RFC 2661 §4.4.6).
        sequencing: bool,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// Stop pppd and delete the kernel session. No reply.
    DeleteSession {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
    },
}

/// The driver's report on an [`Action`] that can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResult {
    /// Result of [`Action::CreateTunnel`]; the error text names the kernel operation and errno.
    Tunnel {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Ok, or why it failed.
        result: Result<(), String>,
    },
    /// Result of [`Action::CreateSession`].
    Session {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// Ok, or why it failed.
        result: Result<(), String>,
    },
}

/// Why a tunnel or session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Closed locally by a command; carries the Result Code we sent.
    Local {
        /// Result Code sent in StopCCN / CDN.
        result: u16,
        /// Error Code sent, if any.
        error: Option<u16>,
        /// Error message sent, if any.
        message: Option<String>,
    },
    /// The peer sent StopCCN / CDN with this Result Code.
    Peer {
        /// Result Code received.
        result: u16,
        /// Error Code received.
        error: Option<u16>,
        /// Error message received, as sent (prints escaped and bounded).
        message: Option<PeerText>,
    },
    /// The peer stopped acknowledging: retransmissions gave up (RFC 2661 §5.8).
    PeerUnreachable,
    /// Establishment took longer than its timeout.
    SetupTimeout,
    /// The tunnel carrying the session went away.
    TunnelClosed,
    /// The peer violated the protocol; we sent StopCCN / CDN with this Result Code.
    ProtocolError {
        /// Result Code sent.
        result: u16,
        /// Error Code sent.
        error: Option<u16>,
        /// What the peer did.
        violation: crate::violation::Violation,
    },
    /// The data plane could not be programmed.
    DataPlane(String),
    /// Two SCCRQs crossed and this tunnel lost the tie breaker (RFC 2661 §4.4.3):
    /// it was discarded without StopCCN.
    TieBreakerLost,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn rc<M: std::fmt::Display>(
            f: &mut std::fmt::Formatter<'_>,
            r: u16,
            e: &Option<u16>,
            m: &Option<M>,
        ) -> std::fmt::Result {
            write!(f, "result {r}")?;
            if let Some(e) = e {
                write!(f, " error {e}")?;
            }
            if let Some(m) = m {
                write!(f, " \"{m}\"")?;
            }
            Ok(())
        }
        match self {
            Self::Local {
                result,
                error,
                message,
            } => {
                f.write_str("closed locally, ")?;
                rc(f, *result, error, message)
            }
            Self::Peer {
                result,
                error,
                message,
            } => {
                f.write_str("closed by peer, ")?;
                rc(f, *result, error, message)
            }
            Self::PeerUnreachable => f.write_str("peer unreachable: retransmissions exhausted"),
            Self::SetupTimeout => f.write_str("establishment timed out"),
            Self::TunnelClosed => f.write_str("tunnel closed"),
            Self::ProtocolError {
                result,
                error,
                violation,
            } => {
                write!(f, "protocol error: {violation} (sent ")?;
                rc::<String>(f, *result, error, &None)?;
                f.write_str(")")
            }
            Self::DataPlane(e) => write!(f, "data plane: {e}"),
            Self::TieBreakerLost => f.write_str("lost the tie breaker to the peer's SCCRQ"),
        }
    }
}

/// Things the driver may log or report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The control connection is established (SCCCN sent or received).
    TunnelUp {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// The peer's tunnel id.
        peer_tunnel: TunnelId,
        /// The peer's address.
        peer: SocketAddr,
        /// The peer's Host Name AVP, as sent (prints escaped and bounded,
        /// see [`PeerText`]).
        peer_host_name: PeerText,
    },
    /// The tunnel is no longer usable; its sessions are gone.
    TunnelDown {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Why.
        reason: CloseReason,
    },
    /// The tunnel's state is gone entirely (after StopCCN acknowledgement or linger):
    /// the driver may close its UDP socket.
    TunnelFreed {
        /// Our tunnel id.
        tunnel: TunnelId,
    },
    /// A call is established and its data plane programmed.
    SessionUp {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// The peer's session id.
        peer_session: SessionId,
        /// The call type.
        call_type: CallType,
    },
    /// A call ended.
    SessionDown {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// Our SCCRQ lost a tie breaker (RFC 2661 §4.4.3): tunnel `old` was discarded
    /// and the calls waiting on it now belong to `new`, the peer's tunnel,
    /// keeping their session ids.
    TunnelReplaced {
        /// The discarded tunnel.
        old: TunnelId,
        /// The tunnel the peer opened, which carries the calls now.
        new: TunnelId,
        /// The calls moved, by session id.
        sessions: Vec<SessionId>,
    },
    /// The peer sent a WAN-Error-Notify (RFC 2661 §6.15) for a session.
    WanErrorNotify {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// The Call Errors AVP counters (CRC, framing, hardware overruns,
        /// buffer overruns, timeouts, alignment).
        errors: [u32; 6],
    },
    /// The peer sent Set-Link-Info (RFC 2661 §6.16) for a session.
    SetLinkInfo {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        recv_accm: u32,
    },
}

/// Tunnel authentication mode (OpenL2TP's `auth_mode`, RFC 2661 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No tunnel authentication; a peer's Challenge is still answered when we have a secret.
    #[default]
    None,
    /// The peer must match a configured peer (checked by the driver's admission decision); no Challenge sent.
    Simple,
    /// We send a Challenge and require a correct Challenge Response.
    Challenge,
}

/// Parameters of one tunnel (a locally created one, or one the driver
/// [accepted](crate::endpoint::Endpoint::accept)). `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// Host Name AVP we send (RFC 2661 §4.4.3).
    pub host_name: Vec<u8>,
    /// Vendor Name AVP we send.
    pub vendor_name: Option<Vec<u8>>,
    /// Firmware Revision AVP we send.
    pub firmware_revision: Option<u16>,
    /// Framing Capabilities: bit 0 synchronous, bit 1 asynchronous.
    pub framing_caps: u32,
    /// Bearer Capabilities: bit 0 digital, bit 1 analog (0: AVP omitted).
    pub bearer_caps: u32,
    /// Reliable delivery timers and windows.
    pub channel: ChannelConfig,
    /// Send HELLO after this long without a message from the peer (`None`: never).
    pub hello_interval: Option<Duration>,
    /// Tunnel secret (RFC 2661 §4.2): answers Challenges, hides AVPs.
    pub secret: Option<Vec<u8>>,
    /// Authentication mode.
    pub auth_mode: AuthMode,
    /// Hide the AVPs RFC 2661 §4.3 allows hiding (never in SCCRQ).
    pub hide_avps: bool,
    /// Give up establishing the tunnel after this long.
    pub establish_timeout: Duration,
    /// Give up establishing a call after this long: a call we place, from
    /// its ICRQ / OCRQ (not while it waits its turn, see
    /// [`MAX_CALLS_STARTING`](crate::tunnel::MAX_CALLS_STARTING)); a peer's
    /// call, from its ICRQ / OCRQ.
    pub session_establish_timeout: Duration,
    /// Accept incoming calls from the peer (ICRQ): we act as LNS.
    pub accept_lns_calls: bool,
    /// Accept outgoing-call requests from the peer (OCRQ): we act as LAC.
    pub accept_lac_calls: bool,
    /// Maximum number of sessions in the tunnel (0: no limit): the endpoint
    /// fails [`Command::PlaceCall`] beyond it
    /// ([`CommandError::TooManySessions`]); the peer's calls are the
    /// driver's decision, which reads it (see
    /// [`IncomingCall`](crate::endpoint::IncomingCall)).
    pub max_sessions: u32,
    /// Send a Tie Breaker AVP in our SCCRQ (RFC 2661 §4.4.3).
    pub use_tiebreaker: bool,
    /// Our UDP port for the tunnel, for the driver (RFC 2661 §8.1 lets
    /// either side choose its port; the core does not use it): `None` the
    /// listening port, `Some(0)` an ephemeral port of the tunnel's own,
    /// `Some(p)` port `p`.
    pub local_port: Option<u16>,
}

impl std::fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelConfig")
            .field("host_name", &String::from_utf8_lossy(&self.host_name))
            .field("channel", &self.channel)
            .field("hello_interval", &self.hello_interval)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("auth_mode", &self.auth_mode)
            .field("hide_avps", &self.hide_avps)
            .field("accept_lns_calls", &self.accept_lns_calls)
            .field("accept_lac_calls", &self.accept_lac_calls)
            .field("max_sessions", &self.max_sessions)
            .field("use_tiebreaker", &self.use_tiebreaker)
            .field("local_port", &self.local_port)
            .finish_non_exhaustive()
    }
}

impl Default for TunnelConfig {
    fn default() -> Self {
        Self {
            host_name: b"l2tpd".to_vec(),
            vendor_name: Some(b"l2tpd".to_vec()),
            firmware_revision: Some(0x0100),
            framing_caps: 3,
            bearer_caps: 3,
            channel: ChannelConfig::default(),
            hello_interval: Some(Duration::from_secs(60)),
            secret: None,
            auth_mode: AuthMode::None,
            hide_avps: false,
            establish_timeout: Duration::from_secs(120),
            session_establish_timeout: Duration::from_secs(120),
            accept_lns_calls: true,
            accept_lac_calls: true,
            max_sessions: 0,
            use_tiebreaker: false,
            local_port: None,
        }
    }
}

/// Operator or driver requests, fed with [`Endpoint::handle_command`](crate::endpoint::Endpoint::handle_command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open a tunnel to `peer` (send SCCRQ). Answered with the new tunnel id.
    OpenTunnel {
        /// The peer's address and UDP port.
        peer: SocketAddr,
        /// Tunnel parameters.
        config: Box<TunnelConfig>,
    },
    /// Place a call in a tunnel (ICRQ for `LacIncoming`, OCRQ for `LnsOutgoing`).
    /// It waits for the tunnel if that is still being established.
    PlaceCall {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// `LacIncoming` or `LnsOutgoing` (the call types we initiate).
        call_type: CallType,
        /// Call parameters (shared: calls placed alike may hold one copy).
        params: Arc<CallParams>,
    },
    /// Clear a call: send CDN with `result` (CDN Result Code, RFC 2661 §4.4.2).
    CloseSession {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// CDN Result Code (RFC 2661 §4.4.2).
        result: u16,
        /// Error Code (§4.4.2; meaningful with Result Code 2, "see Error
        /// Code"); `None` sends 0 ("no general error") when a message is sent.
        error: Option<u16>,
        /// Optional error message.
        message: Option<String>,
    },
    /// Clear a tunnel: CDN for each session, then StopCCN with `result`
    /// (StopCCN Result Code, RFC 2661 §4.4.2).
    CloseTunnel {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// StopCCN Result Code.
        result: u16,
        /// Optional error message.
        message: Option<String>,
    },
    /// Send Set-Link-Info (RFC 2661 §6.16) for a call: the PPP side negotiated new
    /// ACCM values (the LNS tells the LAC).
    SendSli {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        recv_accm: u32,
    },
    /// Change a tunnel's HELLO interval at run time (`None`: no HELLOs).
    SetHelloInterval {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Send HELLO after this long without a message from the peer.
        interval: Option<Duration>,
    },
    /// Send WAN-Error-Notify (RFC 2661 §6.15) for a call: the LAC reports its
    /// WAN line's error counters to the LNS.
    SendWen {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
        /// CRC, framing, hardware overrun, buffer overrun, timeout and alignment errors.
        errors: [u32; 6],
    },
    /// Clear every tunnel (StopCCN result 6, "requester is being shut down") and
    /// refuse new ones.
    Shutdown,
}

/// What a command produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// The new tunnel's id.
    Tunnel(TunnelId),
    /// The new session's id.
    Session(SessionId),
    /// Done.
    Done,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No tunnel with this id.
    #[error("no such tunnel {0}")]
    NoSuchTunnel(TunnelId),
    /// No session with this id in the tunnel.
    #[error("no such session {session} in tunnel {tunnel}")]
    NoSuchSession {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
    },
    /// The tunnel is closing and takes no new calls.
    #[error("tunnel {0} is closing")]
    TunnelClosing(TunnelId),
    /// Only LacIncoming and LnsOutgoing calls are placed locally.
    #[error("call type {0} cannot be placed locally")]
    BadCallType(CallType),
    /// All 65535 ids are in use.
    #[error("no free {0} id")]
    IdsExhausted(&'static str),
    /// The tunnel's max_sessions is reached.
    #[error("tunnel {0} has reached its session limit")]
    TooManySessions(TunnelId),
    /// The system-wide session limit ([`crate::endpoint::Limits::max_sessions`])
    /// is reached (calls we place; the peer's calls are the driver's
    /// decision, see [`crate::endpoint::IncomingCall`]).
    #[error("the system session limit is reached")]
    SessionLimit,
    /// The system-wide tunnel limit ([`crate::endpoint::Limits::max_tunnels`]) is reached.
    #[error("the system tunnel limit is reached")]
    TunnelLimit,
    /// The endpoint is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}
