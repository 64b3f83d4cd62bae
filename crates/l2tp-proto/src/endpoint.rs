//! Many tunnels behind one driver-facing, sans-IO API.
//!
//! The driver feeds four kinds of input: received datagrams
//! ([`Endpoint::handle_datagram`]), expired timers ([`Endpoint::handle_timeout`]),
//! commands ([`Endpoint::handle_command`]) and results of data-plane actions
//! ([`Endpoint::handle_action_result`]). After each input it drains
//! [`Endpoint::poll_output`] and sleeps until [`Endpoint::poll_timeout`].
//!
//! Admission is the driver's decision: a peer's new tunnel (SCCRQ, RFC 2661
//! §6.1) that passes the endpoint's stateless checks comes out as
//! [`Output::Incoming`], and the driver answers it with [`Endpoint::accept`]
//! or [`Endpoint::refuse`] (see [`Incoming`]). So is the admission of a
//! peer's new call (ICRQ, RFC 2661 §6.6, or OCRQ, §6.9): one that passes the
//! tunnel's protocol checks comes out as [`Output::IncomingCall`], held
//! pending in its tunnel, and the driver answers it with
//! [`Endpoint::accept_call`] or [`Endpoint::refuse_call`] (see
//! [`IncomingCall`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand_core::RngCore;

use crate::event::{
    ActionResult, CloseReason, Command, CommandError, CommandOutcome, Output, TunnelConfig,
};
use crate::ids::IdSpace;
use crate::ratelimit::RateLimiter;
use crate::session::{CallType, PeerCallInfo};
use crate::tunnel::{CallRefusal, Refusal, Tunnel, TunnelState};
use crate::wire::{
    ControlMessage, ErrorCode, Message, MessageType, PacketKind, SessionId, StopCcnResult,
    TunnelId, decode_header,
};

/// A peer's new control connection (a valid SCCRQ to tunnel 0, RFC 2661
/// §6.1) that passed the endpoint's stateless checks, waiting for the
/// driver's decision: reported as [`Output::Incoming`], answered with
/// [`Endpoint::accept`] (SCCRP) or [`Endpoint::refuse`] (StopCCN).
///
/// Until then the endpoint holds no state for it: no tunnel id, no half-open
/// slot, no socket. Dropping an `Incoming` without a decision ignores the
/// SCCRQ: nothing is sent, and the peer retransmits it (RFC 2661 §5.8),
/// which is reported again as a new `Incoming`. Deciding twice (on a clone,
/// or on the reports of an SCCRQ and its retransmission) is harmless: the
/// second decision finds the tunnel the first one made
/// ([`IncomingError::Duplicate`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Where the SCCRQ came from (address and UDP port).
    peer: SocketAddr,
    /// The SCCRQ, parsed.
    sccrq: crate::wire::Sccrq,
    /// The SCCRQ as received, fed to the tunnel on acceptance so that its
    /// reliable channel numbers it.
    msg: ControlMessage,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer)
            .field("peer_tunnel", &self.sccrq.assigned_tunnel_id)
            .field("host_name", &self.host_name_text())
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// The peer's address and UDP port: the tunnel's peer if accepted.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The peer's Assigned Tunnel ID (RFC 2661 §4.4.3), never 0.
    pub fn peer_tunnel(&self) -> TunnelId {
        self.sccrq.assigned_tunnel_id
    }

    /// The peer's Host Name AVP (RFC 2661 §4.4.3), as sent: octets, not
    /// necessarily UTF-8. Print it through [`Self::host_name_text`].
    pub fn host_name(&self) -> &[u8] {
        &self.sccrq.host_name
    }

    /// The peer's Host Name for logs: escaped and bounded.
    pub fn host_name_text(&self) -> crate::text::PeerText {
        crate::text::PeerText::from(&self.sccrq.host_name[..])
    }

    /// The whole SCCRQ (RFC 2661 §6.1): protocol version, capabilities,
    /// Vendor Name, Challenge, Tie Breaker..., for decisions that need more.
    pub fn sccrq(&self) -> &crate::wire::Sccrq {
        &self.sccrq
    }
}

/// Why [`Endpoint::accept`] or [`Endpoint::refuse`] did not act as asked.
/// The SCCRQ is then answered as the variant says, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IncomingError {
    /// A tunnel for this SCCRQ (same peer address and Assigned Tunnel ID)
    /// exists already: the SCCRQ was decided before. Nothing is sent.
    #[error("the SCCRQ was already decided: tunnel {0}")]
    Duplicate(TunnelId),
    /// Shutdown began after the SCCRQ was reported: it was refused with
    /// StopCCN Result Code 6 (RFC 2661 §4.4.2) instead of accepted.
    #[error("shutting down: refused with StopCCN result 6")]
    ShuttingDown,
    /// The half-open bounds ([`Limits::max_half_open`],
    /// [`Limits::max_half_open_per_source`]) filled up after the SCCRQ was
    /// reported: it was dropped unanswered and counted in
    /// [`EndpointCounters::half_open_drops`].
    #[error("half-open tunnel bound reached: SCCRQ dropped")]
    HalfOpenFull,
    /// Every tunnel id is in use: the SCCRQ was dropped unanswered.
    #[error("no free tunnel id: SCCRQ dropped")]
    IdsExhausted,
}

/// A peer's new call (an ICRQ, RFC 2661 §6.6, or an OCRQ, §6.9) in an
/// established tunnel that passed the tunnel's protocol checks (a non-zero
/// Assigned Session ID not already in use, a call direction the tunnel
/// takes, a free session id of ours; each failure is answered with a CDN by
/// the tunnel itself), waiting for the driver's decision: reported as
/// [`Output::IncomingCall`], answered with [`Endpoint::accept_call`] (ICRP,
/// or OCRP then OCCN) or [`Endpoint::refuse_call`] (CDN with the driver's
/// Result Code, Error Code and text, RFC 2661 §4.4.2).
///
/// Unlike an SCCRQ, the request was taken into the tunnel's reliable
/// sequence (it is acknowledged and will not be retransmitted), so the
/// tunnel holds a small pending record for it until the decision: the
/// peer's Assigned Session ID counts as in use, and one of our session ids
/// is held back. A call dropped without a decision is refused with CDN
/// result 4 at its set-up deadline
/// ([`TunnelConfig::session_establish_timeout`] after the request, counted
/// in [`EndpointCounters::undecided_calls`]); it is never left unanswered.
/// When the tunnel closes, its pending calls go with it (its StopCCN clears
/// them). A decision on a call no longer pending (decided already, refused
/// at its deadline, tunnel closed or gone) is an [`IncomingCallError`] and
/// sends nothing. An accepted call must be established by the same deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// Our tunnel id.
    pub(crate) tunnel: TunnelId,
    /// The tunnel's incarnation (unique over the endpoint's life).
    pub(crate) incarnation: u64,
    /// The pending record's key in the tunnel.
    pub(crate) key: u64,
    /// `LnsIncoming` (ICRQ) or `LacOutgoing` (OCRQ).
    pub(crate) call_type: CallType,
    /// The peer's Assigned Session ID.
    pub(crate) peer_session: SessionId,
    /// Call Serial Number.
    pub(crate) serial: u32,
    /// What the request said about the call.
    pub(crate) info: PeerCallInfo,
}

impl IncomingCall {
    /// Our tunnel id: the tunnel the call would be in.
    pub fn tunnel(&self) -> TunnelId {
        self.tunnel
    }

    /// [`CallType::LnsIncoming`] for an ICRQ (we would be the LNS),
    /// [`CallType::LacOutgoing`] for an OCRQ (we would be the LAC).
    pub fn call_type(&self) -> CallType {
        self.call_type
    }

    /// The peer's Assigned Session ID (RFC 2661 §4.4.4), never 0.
    pub fn peer_session(&self) -> SessionId {
        self.peer_session
    }

    /// The Call Serial Number (RFC 2661 §4.4.5).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// What the request said about the call (RFC 2661 §4.4.5): Bearer Type,
    /// Calling and Called Number and Physical Channel ID of an ICRQ;
    /// Bearer Type, Framing Type and Called Number of an OCRQ. Numbers are
    /// octets as sent: print them through [`crate::text::PeerText`].
    pub fn info(&self) -> &PeerCallInfo {
        &self.info
    }
}

/// Why [`Endpoint::accept_call`] or [`Endpoint::refuse_call`] did not act
/// as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IncomingCallError {
    /// The call's tunnel is gone (freed). Nothing is sent.
    #[error("no such tunnel {0}")]
    NoSuchTunnel(TunnelId),
    /// The call is no longer pending: decided already, refused at its
    /// set-up deadline, or its tunnel closed. Nothing is sent.
    #[error("the call is no longer pending")]
    NotPending,
    /// No session id was free for an accepted call (not expected: one is
    /// held back for each pending call): it was refused with CDN result 4,
    /// error 4.
    #[error("no free session id: refused with CDN result 4 error 4")]
    IdsExhausted,
}

/// Resource limits the endpoint enforces on what peers and commands can make
/// it hold. `0` means no limit for `max_tunnels` and `max_sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Tunnels of all kinds (`[system] max_tunnels`): the endpoint fails
    /// [`Command::OpenTunnel`] beyond it ([`CommandError::TunnelLimit`]).
    /// Incoming tunnels are the driver's decision (see [`Incoming`]): it
    /// compares [`Endpoint::tunnel_count`] with its limit and refuses with
    /// [`Refusal::tunnel_limit`] (StopCCN result 2, error 4, RFC 2661 §4.4.2).
    pub max_tunnels: usize,
    /// Sessions over all tunnels (`[system] max_sessions`): the endpoint
    /// fails [`Command::PlaceCall`] beyond it ([`CommandError::SessionLimit`]).
    /// The peer's calls are the driver's decision (see [`IncomingCall`]): it
    /// compares [`Endpoint::session_count`] with its limit and refuses with
    /// [`CallRefusal::no_facilities`] (CDN result 4, RFC 2661 §4.4.2).
    pub max_sessions: usize,
    /// Half-open tunnels (a peer's SCCRQ answered, its SCCCN not yet
    /// received, including refusals still waiting for their StopCCN to be
    /// acknowledged); SCCRQs beyond it are dropped unanswered and counted,
    /// so that a flood costs neither state nor replies.
    pub max_half_open: usize,
    /// Half-open tunnels from one source address.
    pub max_half_open_per_source: usize,
    /// Tunnels we initiate that may wait for their SCCRP at once (0: no
    /// limit). Further ones are queued and dialled in turn, so that an LAC
    /// bringing up thousands of tunnels does not burst past its peer's
    /// half-open bound (or its own CPU) and into retransmissions.
    pub max_dialing: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tunnels: 0,
            max_sessions: 0,
            max_half_open: 4096,
            max_half_open_per_source: 1024,
            max_dialing: 1024,
        }
    }
}

/// What the endpoint tracks about each tunnel for its indexes.
#[derive(Debug, Default)]
struct Meta {
    /// The deadline under which the tunnel sits in `timers`.
    scheduled: Option<Instant>,
    /// An initiator waiting for SCCRP, listed in `dialing`.
    dialing: bool,
    /// A responder that never got established, counted in `half_open` by source.
    half_open: Option<IpAddr>,
    /// The tunnel was established once.
    established: bool,
    /// Sessions counted in `session_total`.
    sessions: usize,
    /// The tunnel's auth failures, illegal messages, retransmissions and
    /// undecided calls already added to the endpoint's totals.
    counted: [u64; 4],
}

/// Endpoint-wide counters (OpenL2TP's system counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    /// Datagrams shorter than a header, with a bad version, or otherwise undecodable.
    pub bad_rcvd_frames: u64,
    /// Datagrams with a version other than 2.
    pub wrong_version_frames: u64,
    /// Data messages that reached the control path (the kernel handles data).
    pub unexpected_data_frames: u64,
    /// Control messages received (including ZLBs).
    pub total_rcvd_control_frames: u64,
    /// Control messages for a tunnel id we do not have.
    pub no_matching_tunnel_id_discards: u64,
    /// Control messages whose source address does not match the tunnel's peer.
    pub mismatched_peer_discards: u64,
    /// Incoming tunnels refused ([`Endpoint::refuse`], and SCCRQs refused
    /// with StopCCN result 6 while shutting down).
    pub tunnels_refused: u64,
    /// Tunnels torn down because the peer stopped answering.
    pub tunnels_lost: u64,
    /// Tunnel authentication failures, over all tunnels ever (RFC 2661 §5.1.1).
    pub auth_fails: u64,
    /// Malformed or out-of-state messages, over all tunnels ever.
    pub illegal_messages: u64,
    /// Control message retransmissions, over all tunnels ever.
    pub retransmits: u64,
    /// The peer's new calls refused by the driver ([`Endpoint::refuse_call`]).
    pub calls_refused: u64,
    /// The peer's new calls the driver left undecided, refused with CDN
    /// result 4 at their set-up deadline (see [`IncomingCall`]), over all
    /// tunnels ever.
    pub undecided_calls: u64,
    /// Crossed SCCRQs resolved by the Tie Breaker in our favour (RFC 2661 §4.4.3).
    pub tie_breakers_won: u64,
    /// Crossed SCCRQs where our tunnel was discarded.
    pub tie_breakers_lost: u64,
    /// SCCRQs dropped unanswered because the half-open bounds were reached
    /// (see [`Limits`]).
    pub half_open_drops: u64,
    /// SCCRQs dropped because their Ns was not 0 (RFC 2661 §5.8: the first
    /// message of a control connection has Ns = 0); they get no state.
    pub sccrq_bad_ns_drops: u64,
    /// SCCRQs refused with StopCCN result 2, error 4 (insufficient
    /// resources: [`Refusal::tunnel_limit`], the driver's `max_tunnels`),
    /// or dropped because every tunnel id was in use.
    pub tunnel_limit_refusals: u64,
    /// SCCRPs accepted from another UDP port of the address we sent our
    /// SCCRQ to (RFC 2661 §8.1); the tunnel moved to that port.
    pub peer_port_changes: u64,
    /// StopCCNs (Result Code 2, Error Code 1) sent statelessly for control
    /// messages to a tunnel id we do not have (a restarted peer's SCCRP, or
    /// any message to a [stale tunnel](Endpoint::add_stale_tunnel)).
    pub unknown_tunnel_stopccns: u64,
    /// ZLBs sent statelessly to acknowledge a StopCCN for a tunnel we do not have.
    pub unknown_tunnel_zlbs: u64,
    /// Answers to unknown tunnels held back by the rate limit
    /// ([`UNKNOWN_TUNNEL_ANSWERS_PER_SEC`]).
    pub unknown_tunnel_answers_suppressed: u64,
}

/// Control messages by type over all tunnels ever, live and freed
/// (see [`Endpoint::message_counters`]). Each array is indexed by message
/// type code (RFC 2661 §3.2), 0..=16, as [`crate::tunnel::TunnelCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCounters {
    /// Control messages received, by type (`TunnelCounters::rx_by_type`).
    pub rx_by_type: [u64; 17],
    /// Control messages sent, by type (`TunnelCounters::tx_by_type`).
    pub tx_by_type: [u64; 17],
    /// Received messages that were malformed or illegal in their state, by
    /// type (`TunnelCounters::rx_bad_by_type`); a subset of `rx_by_type`.
    pub rx_bad_by_type: [u64; 17],
}

impl MessageCounters {
    /// Add one tunnel's counts.
    fn add(&mut self, c: &crate::tunnel::TunnelCounters) {
        for i in 0..17 {
            self.rx_by_type[i] += c.rx_by_type[i];
            self.tx_by_type[i] += c.tx_by_type[i];
            self.rx_bad_by_type[i] += c.rx_bad_by_type[i];
        }
    }
}

/// At most this many stateless answers (StopCCN or ZLB) per second go to
/// control messages for tunnels we do not have, with bursts of as many, so
/// that forged datagrams cannot turn the endpoint into a reflector.
pub const UNKNOWN_TUNNEL_ANSWERS_PER_SEC: u32 = 32;

/// Per-datagram log lines about junk (undecodable or malformed datagrams,
/// unknown tunnels, wrong source addresses) are limited to this many per
/// second per kind, with bursts of as many; the next line allowed after a
/// pause reports how many were suppressed. The counters count everything.
pub const JUNK_LOG_LINES_PER_SEC: u32 = 10;

/// At most this many expired [stale tunnels](Endpoint::add_stale_tunnel)
/// are dropped per input, so that expiry costs O(1) per input; an expired
/// entry not yet dropped no longer answers for its id.
const STALE_EXPIRY_PER_INPUT: usize = 4;

/// A tunnel id a previous run of the daemon owned (see [`Endpoint::add_stale_tunnel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stale {
    peer: SocketAddr,
    peer_tunnel: TunnelId,
    until: Instant,
}

/// Kinds of junk log lines, each with its own [`RateLimiter`].
#[derive(Debug, Clone, Copy)]
enum Junk {
    Undecodable,
    Malformed,
    UnknownTunnel,
    MismatchedPeer,
    HalfOpenFull,
}

/// The log-line limiters, one per [`Junk`] kind.
#[derive(Debug, Clone)]
struct JunkLogs([RateLimiter; 5]);

impl Default for JunkLogs {
    fn default() -> Self {
        let r = RateLimiter::new(JUNK_LOG_LINES_PER_SEC, JUNK_LOG_LINES_PER_SEC);
        Self([r.clone(), r.clone(), r.clone(), r.clone(), r])
    }
}

impl JunkLogs {
    /// `Some(suppressed)` when a line of `kind` may be logged at `now`.
    fn allow(&mut self, kind: Junk, now: Instant) -> Option<u64> {
        self.0[kind as usize].allow(now)
    }
}

/// The protocol engine: all tunnels of one daemon.
pub struct Endpoint {
    /// Ordered, so that timers fire and outputs come out in the same order on every run.
    tunnels: BTreeMap<TunnelId, Tunnel>,
    /// Tunnel ids in use (allocation without scanning).
    tunnel_ids: IdSpace,
    /// Index entries of each tunnel.
    meta: HashMap<TunnelId, Meta>,
    /// Every tunnel's next deadline: the next timer is the first entry.
    timers: BTreeSet<(Instant, TunnelId)>,
    /// Initiator tunnels waiting for SCCRP, by peer address (Tie Breaker, RFC 2661 §4.4.3).
    dialing: BTreeSet<(IpAddr, TunnelId)>,
    /// Initiator tunnels not dialled yet ([`Limits::max_dialing`]), oldest first.
    to_dial: VecDeque<TunnelId>,
    /// Half-open responder tunnels by source address, and their total.
    half_open: HashMap<IpAddr, usize>,
    half_open_total: usize,
    /// Sessions over all tunnels (the peer's pending calls not included).
    session_total: usize,
    /// Tunnels ever inserted: the next one's incarnation.
    incarnations: u64,
    limits: Limits,
    /// Responder tunnels by (peer address, peer's tunnel id), to recognise
    /// retransmitted SCCRQs.
    by_peer: HashMap<(SocketAddr, TunnelId), TunnelId>,
    out: VecDeque<Output>,
    shutting_down: bool,
    /// Totals, kept up to date as tunnels change (see `reap`).
    counters: EndpointCounters,
    /// Message counts of the tunnels already freed.
    freed_messages: MessageCounters,
    /// Tunnel ids a previous run owned, by our id; their ids are reserved in
    /// `tunnel_ids` until they expire. At most 65,535 entries (one per id).
    stale: HashMap<TunnelId, Stale>,
    /// The same, by expiry, earliest first.
    stale_expiry: BTreeSet<(Instant, TunnelId)>,
    /// Stateless answers to unknown tunnels ([`UNKNOWN_TUNNEL_ANSWERS_PER_SEC`]).
    answers: RateLimiter,
    /// Junk log lines ([`JUNK_LOG_LINES_PER_SEC`]).
    junk_logs: JunkLogs,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("tunnels", &self.tunnels.len())
            .field("shutting_down", &self.shutting_down)
            .finish()
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoint {
    /// A new endpoint without tunnels, with the default [`Limits`]. Peers'
    /// new tunnels are reported as [`Output::Incoming`] for the driver to
    /// [accept](Self::accept) or [refuse](Self::refuse), their new calls as
    /// [`Output::IncomingCall`] ([accept](Self::accept_call),
    /// [refuse](Self::refuse_call)).
    pub fn new() -> Self {
        Self {
            tunnels: BTreeMap::new(),
            tunnel_ids: IdSpace::default(),
            meta: HashMap::new(),
            timers: BTreeSet::new(),
            dialing: BTreeSet::new(),
            to_dial: VecDeque::new(),
            half_open: HashMap::new(),
            half_open_total: 0,
            session_total: 0,
            incarnations: 0,
            limits: Limits::default(),
            by_peer: HashMap::new(),
            out: VecDeque::new(),
            shutting_down: false,
            counters: EndpointCounters::default(),
            freed_messages: MessageCounters::default(),
            stale: HashMap::new(),
            stale_expiry: BTreeSet::new(),
            answers: RateLimiter::new(
                UNKNOWN_TUNNEL_ANSWERS_PER_SEC,
                UNKNOWN_TUNNEL_ANSWERS_PER_SEC,
            ),
            junk_logs: JunkLogs::default(),
        }
    }

    /// Remember that a previous run owned tunnel `local` with `peer` (address
    /// and UDP port), whose id for it was `peer_tunnel`, until `until`.
    /// Until then `local` is not given to new tunnels, and a control message
    /// from `peer` to `local` is answered with a StopCCN to `peer_tunnel`
    /// (Result Code 2, Error Code 1, RFC 2661 §4.4.2), so that a peer that
    /// did not see us restart learns at its next message, not after its
    /// HELLO and retransmission timeouts. The driver calls this at start
    /// with what it persisted.
    ///
    /// Returns false (and records nothing) when `local` or `peer_tunnel` is
    /// 0 or `local` is a live tunnel's id. Adding an id again replaces its
    /// entry. At most one entry per id (65,535); expired entries go a few per
    /// input (O(1) each).
    pub fn add_stale_tunnel(
        &mut self,
        local: TunnelId,
        peer: SocketAddr,
        peer_tunnel: TunnelId,
        until: Instant,
    ) -> bool {
        if local.0 == 0 || peer_tunnel.0 == 0 || self.tunnels.contains_key(&local) {
            return false;
        }
        let entry = Stale {
            peer,
            peer_tunnel,
            until,
        };
        match self.stale.insert(local, entry) {
            Some(old) => {
                self.stale_expiry.remove(&(old.until, local));
            }
            None => self.tunnel_ids.insert(local.0),
        }
        self.stale_expiry.insert((until, local));
        true
    }

    /// Number of stale tunnel ids held (expired ones included until dropped), O(1).
    pub fn stale_tunnel_count(&self) -> usize {
        self.stale.len()
    }

    /// Drop up to [`STALE_EXPIRY_PER_INPUT`] expired stale tunnels.
    fn expire_stale(&mut self, now: Instant) {
        for _ in 0..STALE_EXPIRY_PER_INPUT {
            match self.stale_expiry.first() {
                Some(&(until, id)) if until <= now => {
                    self.stale_expiry.remove(&(until, id));
                    if self.stale.remove(&id).is_some() {
                        self.tunnel_ids.remove(id.0);
                    }
                }
                _ => return,
            }
        }
    }

    /// Answer a control message for tunnel `tid`, which we do not have, the
    /// way RFC 2661 lets a peer that lost its state tell the other side:
    ///
    /// - a StopCCN is acknowledged with a ZLB to its Assigned Tunnel ID, so
    ///   that the peer stops retransmitting it (§5.7 has the sender wait for
    ///   the acknowledgement);
    /// - an SCCRP (its Assigned Tunnel ID names the peer's tunnel), or any
    ///   message from the peer of a [stale tunnel](Self::add_stale_tunnel),
    ///   gets a StopCCN with Result Code 2, Error Code 1 ("No control
    ///   connection exists yet for this LAC-LNS pair", §4.4.2);
    /// - anything else names no tunnel of the peer's to answer to and is
    ///   dropped (a ZLB needs no answer).
    ///
    /// The answer's Ns is the message's Nr and its Nr the message's Ns + 1,
    /// so the peer takes it as the next message in sequence. It is sent from
    /// the listening socket (`Transmit::tunnel` 0) and holds no state.
    /// Answers are rate-limited ([`UNKNOWN_TUNNEL_ANSWERS_PER_SEC`]).
    fn answer_unknown_tunnel(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: TunnelId,
        data: &[u8],
    ) {
        let stale = self
            .stale
            .get(&tid)
            .filter(|s| s.until > now && s.peer == from)
            .map(|s| s.peer_tunnel);
        let msg = ControlMessage::decode(data, None).ok();
        let (ns, nr) = match (&msg, decode_header(data)) {
            (Some(m), _) => (m.header.ns, m.header.nr),
            (None, Ok((h, _))) => match (h.ns, h.nr) {
                (Some(ns), Some(nr)) => (ns, nr),
                _ => return,
            },
            (None, Err(_)) => return,
        };
        let mt = msg.as_ref().and_then(|m| m.message_type());
        let assigned = msg.as_ref().and_then(|m| {
            m.avps.iter().find_map(|a| match a.value {
                crate::wire::AvpValue::AssignedTunnelId(id) if id.0 != 0 => Some(id),
                _ => None,
            })
        });
        let zlb = mt == Some(MessageType::STOPCCN);
        let to = if zlb {
            assigned.or(stale)
        } else if msg.is_some() && mt.is_none() {
            // A ZLB: nothing to answer.
            None
        } else if let Some(p) = stale {
            Some(p)
        } else if mt == Some(MessageType::SCCRP) {
            assigned
        } else {
            None
        };
        let Some(to) = to else {
            return;
        };
        if self.answers.allow(now).is_none() {
            self.counters.unknown_tunnel_answers_suppressed += 1;
            return;
        }
        let header = crate::wire::ControlHeader {
            tunnel_id: to,
            session_id: crate::wire::SessionId(0),
            ns: nr,
            nr: ns.wrapping_add(1),
        };
        let avps = if zlb {
            self.counters.unknown_tunnel_zlbs += 1;
            Vec::new()
        } else {
            self.counters.unknown_tunnel_stopccns += 1;
            Message::StopCcn(crate::wire::StopCcn {
                assigned_tunnel_id: tid,
                result_code: crate::tunnel::result_code(
                    StopCcnResult::GENERAL_ERROR.0,
                    Some(ErrorCode::NO_CONTROL_CONNECTION.0),
                    Some(b"No control connection exists yet for this LAC-LNS pair".to_vec()),
                ),
                other: Vec::new(),
            })
            .to_avps()
        };
        match (ControlMessage { header, avps }).encode(None) {
            Ok(data) => {
                tracing::debug!(%from, tunnel = %tid, peer_tunnel = %to, stale = stale.is_some(),
                    "control message for a tunnel we do not have: sending {}",
                    if zlb { "ZLB" } else { "StopCCN" });
                self.out.push_back(Output::Transmit(crate::event::Transmit {
                    tunnel: TunnelId(0),
                    peer: from,
                    data,
                }));
            }
            Err(e) => tracing::error!("cannot encode the answer to an unknown tunnel: {e}"),
        }
    }

    /// Replace the resource limits; they apply to what comes next (nothing is
    /// torn down when a limit is lowered below the current use).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The resource limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of tunnels held (any state), O(1).
    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    /// Number of sessions over all tunnels, O(1).
    pub fn session_count(&self) -> usize {
        self.session_total
    }

    /// Number of half-open responder tunnels (see [`Limits::max_half_open`]), O(1).
    pub fn half_open_count(&self) -> usize {
        self.half_open_total
    }

    /// Endpoint-wide counters; the per-tunnel totals include freed and live
    /// tunnels. O(1): kept up to date as tunnels change.
    pub fn counters(&self) -> EndpointCounters {
        self.counters.clone()
    }

    /// Control messages by type over all tunnels ever: the freed tunnels'
    /// totals plus each live tunnel's counts. O(live tunnels) (17 × 3 adds
    /// per tunnel), so it is meant for a scrape, not for every input.
    pub fn message_counters(&self) -> MessageCounters {
        let mut m = self.freed_messages.clone();
        for t in self.tunnels.values() {
            m.add(&t.counters);
        }
        m
    }

    /// A tunnel, by our tunnel id.
    pub fn tunnel(&self, id: TunnelId) -> Option<&Tunnel> {
        self.tunnels.get(&id)
    }

    /// All tunnels, in no particular order.
    pub fn tunnels(&self) -> impl Iterator<Item = &Tunnel> {
        self.tunnels.values()
    }

    /// True when no tunnel state is left (all closed and freed).
    pub fn is_idle(&self) -> bool {
        self.tunnels.is_empty()
    }

    /// Next output to act on.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Earliest instant at which [`handle_timeout`](Self::handle_timeout) has
    /// work: the first entry of the deadline index, O(log n).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(d, _)| *d)
    }

    fn insert_tunnel(&mut self, mut t: Tunnel) {
        let id = t.id;
        t.incarnation = self.incarnations;
        self.incarnations += 1;
        self.tunnel_ids.insert(id.0);
        self.meta.insert(id, Meta::default());
        self.tunnels.insert(id, t);
    }

    fn alloc_tunnel_id(&mut self, rng: &mut dyn RngCore) -> Option<TunnelId> {
        let tunnels = &self.tunnels;
        let stale = &self.stale;
        self.tunnel_ids
            .alloc(
                rng,
                |id| tunnels.contains_key(&TunnelId(id)) || stale.contains_key(&TunnelId(id)),
                || tunnels.keys().chain(stale.keys()).map(|k| k.0),
            )
            .map(TunnelId)
    }

    /// Bring the indexes up to date after anything happened to tunnel `id`,
    /// and free its state once it is done. O(log n).
    fn reap(&mut self, id: TunnelId) {
        let Some(t) = self.tunnels.get(&id) else {
            return;
        };
        let freed = t.is_freed();
        let meta = self.meta.entry(id).or_default();
        let (deadline, dialing, half_open, sessions) = if freed {
            (None, false, None, 0)
        } else {
            meta.established |= t.state == TunnelState::Established;
            // Refusals (closing at once) count until freed, like any
            // responder that never got established.
            let half_open = (!t.initiator && !meta.established).then(|| t.peer.ip());
            (
                t.poll_timeout(),
                t.initiator && t.state == TunnelState::WaitCtlReply && !t.awaiting_dial(),
                half_open,
                t.session_count(),
            )
        };
        if meta.scheduled != deadline {
            if let Some(d) = meta.scheduled {
                self.timers.remove(&(d, id));
            }
            if let Some(d) = deadline {
                self.timers.insert((d, id));
            }
            meta.scheduled = deadline;
        }
        if meta.dialing != dialing {
            if dialing {
                self.dialing.insert((t.peer.ip(), id));
            } else {
                self.dialing.remove(&(t.peer.ip(), id));
            }
            meta.dialing = dialing;
        }
        if meta.half_open != half_open {
            if let Some(ip) = meta.half_open {
                self.half_open_total -= 1;
                if let Some(n) = self.half_open.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        self.half_open.remove(&ip);
                    }
                }
            }
            if let Some(ip) = half_open {
                self.half_open_total += 1;
                *self.half_open.entry(ip).or_default() += 1;
            }
            meta.half_open = half_open;
        }
        self.session_total = self.session_total - meta.sessions + sessions;
        meta.sessions = sessions;
        // The tunnel's counters only grow: add what is new to the totals.
        let now = [
            t.counters.auth_fails,
            t.counters.illegal_messages,
            t.channel.counters().retransmits,
            t.counters.undecided_calls,
        ];
        let c = &mut self.counters;
        c.auth_fails += now[0].saturating_sub(meta.counted[0]);
        c.illegal_messages += now[1].saturating_sub(meta.counted[1]);
        c.retransmits += now[2].saturating_sub(meta.counted[2]);
        c.undecided_calls += now[3].saturating_sub(meta.counted[3]);
        meta.counted = now;
        if freed && let Some(t) = self.tunnels.remove(&id) {
            self.freed_messages.add(&t.counters);
            self.meta.remove(&id);
            self.tunnel_ids.remove(id.0);
            if self.by_peer.get(&(t.peer, t.peer_id)) == Some(&id) {
                self.by_peer.remove(&(t.peer, t.peer_id));
            }
        }
    }

    /// Dial queued tunnels while fewer than [`Limits::max_dialing`] wait for
    /// their SCCRP. O(1) per tunnel dialled.
    fn dial_queued(&mut self, now: Instant, rng: &mut dyn RngCore) {
        while self.limits.max_dialing == 0 || self.dialing.len() < self.limits.max_dialing {
            let Some(id) = self.to_dial.pop_front() else {
                return;
            };
            if let Some(t) = self.tunnels.get_mut(&id) {
                t.dial(now, rng);
                t.flush(&mut self.out);
            }
            self.reap(id);
        }
    }

    /// True when a new half-open tunnel from `from` would break the bounds:
    /// its SCCRQ is then dropped, counted and (rate-limited) logged.
    fn half_open_full(&mut self, now: Instant, from: SocketAddr) -> bool {
        let full = self.half_open_total >= self.limits.max_half_open
            || self.half_open.get(&from.ip()).copied().unwrap_or(0)
                >= self.limits.max_half_open_per_source;
        if full {
            self.counters.half_open_drops += 1;
            if let Some(suppressed) = self.junk_logs.allow(Junk::HalfOpenFull, now) {
                tracing::debug!(%from, half_open = self.half_open_total, suppressed, "half-open tunnel bound reached: SCCRQ dropped");
            }
        }
        full
    }

    /// Feed a datagram received from `from` on any of the driver's sockets.
    /// Malformed input is counted and dropped; it never panics.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        from: SocketAddr,
        data: &[u8],
    ) {
        self.expire_stale(now);
        let header = match decode_header(data) {
            Ok((h, _)) => h,
            Err(e) => {
                self.counters.bad_rcvd_frames += 1;
                if matches!(e, crate::wire::DecodeError::WrongVersion(_)) {
                    self.counters.wrong_version_frames += 1;
                }
                if let Some(suppressed) = self.junk_logs.allow(Junk::Undecodable, now) {
                    tracing::debug!(%from, suppressed, "dropping undecodable datagram: {e}");
                }
                return;
            }
        };
        if header.kind == PacketKind::Data {
            self.counters.unexpected_data_frames += 1;
            return;
        }
        self.counters.total_rcvd_control_frames += 1;
        let tid = header.tunnel_id;
        if tid.0 == 0 {
            self.handle_new_tunnel(now, rng, from, data);
            return;
        }
        let Some(t) = self.tunnels.get_mut(&tid) else {
            self.counters.no_matching_tunnel_id_discards += 1;
            if let Some(suppressed) = self.junk_logs.allow(Junk::UnknownTunnel, now) {
                tracing::debug!(%from, suppressed, "control message for unknown tunnel {tid}");
            }
            self.answer_unknown_tunnel(now, from, tid, data);
            return;
        };
        let decoded = ControlMessage::decode(data, t.config.secret.as_deref());
        if t.peer != from {
            // RFC 2661 §8.1: the responder may answer our SCCRQ from a port
            // of its choosing (xl2tpd and OpenL2TP use ephemeral ones); the
            // tunnel then talks to that port. Only the port may differ, only
            // for the first message of a tunnel we initiated, and only for an
            // SCCRP; anything else from another address is dropped.
            let moved = t.initiator
                && t.state == TunnelState::WaitCtlReply
                && t.peer_id.0 == 0
                && t.peer.ip() == from.ip()
                && decoded.as_ref().is_ok_and(|m| {
                    m.header.ns == 0 && m.message_type() == Some(MessageType::SCCRP)
                });
            if !moved {
                self.counters.mismatched_peer_discards += 1;
                if let Some(suppressed) = self.junk_logs.allow(Junk::MismatchedPeer, now) {
                    tracing::debug!(%from, tunnel = %tid, suppressed, "control message from {from}, expected {}", t.peer);
                }
                return;
            }
            tracing::info!(tunnel = %tid, old = %t.peer, new = %from,
                "SCCRP from another port of the peer: the tunnel moves to it (RFC 2661 §8.1)");
            t.peer = from;
            self.counters.peer_port_changes += 1;
        }
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                t.counters.bad_messages += 1;
                if let Some(suppressed) = self.junk_logs.allow(Junk::Malformed, now) {
                    tracing::info!(tunnel = %tid, %from, suppressed, "dropping malformed control message: {e}");
                }
                return;
            }
        };
        t.receive(now, rng, msg, &mut self.out);
        self.reap(tid);
        self.dial_queued(now, rng);
    }

    fn handle_new_tunnel(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        from: SocketAddr,
        data: &[u8],
    ) {
        let msg = match ControlMessage::decode(data, None) {
            Ok(m) => m,
            Err(e) => {
                self.counters.bad_rcvd_frames += 1;
                if let Some(suppressed) = self.junk_logs.allow(Junk::Malformed, now) {
                    tracing::info!(%from, suppressed, "dropping malformed message for tunnel 0: {e}");
                }
                return;
            }
        };
        if msg.message_type() == Some(MessageType::STOPCCN) {
            // A peer that could not read our SCCRP never learnt our tunnel id and
            // sends its StopCCN to tunnel 0 (xl2tpd does); its Assigned Tunnel ID
            // names the tunnel its SCCRQ opened.
            let assigned = msg.avps.iter().find_map(|a| match a.value {
                crate::wire::AvpValue::AssignedTunnelId(id) => Some(id),
                _ => None,
            });
            if let Some(&id) = assigned.and_then(|peer| self.by_peer.get(&(from, peer))) {
                if let Some(t) = self.tunnels.get_mut(&id) {
                    t.receive(now, rng, msg, &mut self.out);
                }
                self.reap(id);
                return;
            }
            // A StopCCN for a tunnel we do not know (any more): acknowledge it
            // so that the peer stops retransmitting.
            self.counters.no_matching_tunnel_id_discards += 1;
            self.answer_unknown_tunnel(now, from, TunnelId(0), data);
            return;
        }
        if msg.message_type() != Some(MessageType::SCCRQ) {
            // Only SCCRQ may be sent to tunnel 0 (RFC 2661 §3.1); anything else
            // for a tunnel we cannot identify is dropped.
            self.counters.no_matching_tunnel_id_discards += 1;
            return;
        }
        if msg.header.ns != 0 {
            // Not the first message of a control connection: no state for it.
            self.counters.sccrq_bad_ns_drops += 1;
            return;
        }
        let Some(peer_tunnel) = msg.avps.iter().find_map(|a| match a.value {
            crate::wire::AvpValue::AssignedTunnelId(id) if id.0 != 0 => Some(id),
            _ => None,
        }) else {
            // Nobody to answer: an SCCRQ must name its tunnel (RFC 2661 §6.1).
            self.counters.bad_rcvd_frames += 1;
            if let Some(suppressed) = self.junk_logs.allow(Junk::Malformed, now) {
                tracing::info!(%from, suppressed, "dropping SCCRQ without an Assigned Tunnel ID");
            }
            return;
        };
        if let Some(&id) = self.by_peer.get(&(from, peer_tunnel)) {
            // A retransmitted SCCRQ: the channel acknowledges the duplicate.
            if let Some(t) = self.tunnels.get_mut(&id) {
                t.receive(now, rng, msg, &mut self.out);
            }
            self.reap(id);
            return;
        }
        if self.half_open_full(now, from) {
            return;
        }
        let sccrq = match Message::from_control(&msg) {
            Ok(Message::Sccrq(m)) => m,
            _ => {
                // Breaks RFC 2661 §4.1 / §6.1: a short-lived tunnel answers it with
                // StopCCN carrying the reason, then goes away.
                let Some(id) = self.alloc_tunnel_id(rng) else {
                    return;
                };
                let mut t = Tunnel::accept(id, from, TunnelConfig::default(), now, None);
                t.receive(now, rng, msg, &mut self.out);
                self.by_peer.insert((from, peer_tunnel), id);
                self.insert_tunnel(t);
                self.reap(id);
                return;
            }
        };
        // RFC 2661 §4.4.3: our SCCRQ to this peer crossed theirs.
        let mut adopted: Option<(TunnelId, TunnelConfig, Vec<crate::session::Session>)> = None;
        let crossed = self
            .dialing
            .range((from.ip(), TunnelId(0))..=(from.ip(), TunnelId(u16::MAX)))
            .next()
            .and_then(|(_, id)| self.tunnels.get(id))
            .map(|t| (t.id, t.our_tie_breaker));
        if let Some((ours, our_tb)) = crossed
            && (our_tb.is_some() || sccrq.tie_breaker.is_some())
        {
            let verdict = match (our_tb, sccrq.tie_breaker) {
                (Some(o), Some(p)) if o == p => None,
                (Some(o), Some(p)) => Some(o < p),
                (Some(_), None) => Some(true),
                _ => Some(false),
            };
            if verdict == Some(true) {
                // The lower value wins; the peer discards its tunnel. Drop its SCCRQ silently.
                self.counters.tie_breakers_won += 1;
                tracing::info!(%from, tunnel = %ours, "crossed SCCRQ: we won the tie breaker, ignoring the peer's");
                return;
            }
            self.counters.tie_breakers_lost += 1;
            let Some(t) = self.tunnels.get_mut(&ours) else {
                return;
            };
            let config = t.config.clone();
            let calls = t.discard_for_tie_breaker(&mut self.out);
            self.reap(ours);
            if verdict.is_none() {
                // Equal values: both sides discard their tunnels.
                tracing::info!(%from, tunnel = %ours, "crossed SCCRQ with an equal tie breaker: both discarded");
                for s in calls {
                    self.out
                        .push_back(Output::Event(crate::event::Event::SessionDown {
                            tunnel: ours,
                            session: s.id,
                            reason: CloseReason::TieBreakerLost,
                        }));
                }
                self.out
                    .push_back(Output::Event(crate::event::Event::TunnelFreed {
                        tunnel: ours,
                    }));
                return;
            }
            tracing::info!(%from, tunnel = %ours, "crossed SCCRQ: the peer won the tie breaker; accepting its tunnel");
            adopted = Some((ours, config, calls));
        }
        if let Some((old, config, calls)) = adopted {
            // The peer's tunnel takes over ours: the core decides, with our
            // tunnel's configuration (the driver accepted that peer when it
            // opened the tunnel).
            self.open_responder(now, rng, from, msg, &sccrq, Ok(config), Some((old, calls)));
            return;
        }
        if self.shutting_down {
            let r = Refusal::shutting_down();
            self.open_responder(now, rng, from, msg, &sccrq, Err(r), None);
            return;
        }
        if self.tunnel_ids.len() >= usize::from(u16::MAX) {
            // Every id is in use: the SCCRQ cannot even be refused with state.
            self.counters.tunnel_limit_refusals += 1;
            tracing::warn!(%from, "no free tunnel id for incoming SCCRQ");
            return;
        }
        tracing::debug!(%from, peer_tunnel = %sccrq.assigned_tunnel_id,
            host_name = %crate::text::PeerText::from(&sccrq.host_name[..]), "incoming SCCRQ: asking the driver");
        self.out.push_back(Output::Incoming(Incoming {
            peer: from,
            sccrq,
            msg,
        }));
    }

    /// Accept a peer's new tunnel with `config`: the tunnel is created, the
    /// SCCRQ fed to it, and its SCCRP queued (RFC 2661 §5.1; or a StopCCN if
    /// the SCCRQ breaks the rules a tunnel checks, e.g. a Challenge without a
    /// secret under `auth_mode` challenge). Returns our tunnel id.
    ///
    /// The endpoint checks again what may have changed since the report:
    /// errors say what happened instead ([`IncomingError`]). O(log n).
    pub fn accept(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        incoming: Incoming,
        config: TunnelConfig,
    ) -> Result<TunnelId, IncomingError> {
        self.decide(now, rng, incoming, Ok(config))
    }

    /// Refuse a peer's new tunnel: a short-lived tunnel answers the SCCRQ
    /// with a StopCCN carrying `refusal`'s Result Code, Error Code and text
    /// (RFC 2661 §4.4.2, §6.4) and is freed once the StopCCN is acknowledged
    /// or lingers out. Until then it counts as half-open, so that a flood of
    /// refused SCCRQs holds no more than the half-open bounds allow.
    /// Counted in [`EndpointCounters::tunnels_refused`] (and
    /// [`EndpointCounters::tunnel_limit_refusals`] for result 2, error 4).
    /// Returns the short-lived tunnel's id. O(log n).
    pub fn refuse(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        incoming: Incoming,
        refusal: Refusal,
    ) -> Result<TunnelId, IncomingError> {
        self.decide(now, rng, incoming, Err(refusal))
    }

    /// The driver's decision on `incoming`, after checking again what the
    /// report checked (an input may have come between them).
    fn decide(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        incoming: Incoming,
        decision: Result<TunnelConfig, Refusal>,
    ) -> Result<TunnelId, IncomingError> {
        let Incoming { peer, sccrq, msg } = incoming;
        if let Some(&id) = self.by_peer.get(&(peer, sccrq.assigned_tunnel_id)) {
            return Err(IncomingError::Duplicate(id));
        }
        if self.half_open_full(now, peer) {
            return Err(IncomingError::HalfOpenFull);
        }
        // Shutting down: whatever the decision, the answer is now result 6.
        let overruled = self.shutting_down && decision.is_ok();
        let decision = match self.shutting_down {
            true => Err(Refusal::shutting_down()),
            false => decision,
        };
        let id = self
            .open_responder(now, rng, peer, msg, &sccrq, decision, None)
            .ok_or(IncomingError::IdsExhausted)?;
        if overruled {
            return Err(IncomingError::ShuttingDown);
        }
        Ok(id)
    }

    /// Create the responder tunnel for a new SCCRQ from `from` and feed it
    /// the SCCRQ: accepted with a configuration, or refused; `adopted`: the
    /// tunnel of ours it replaces after a lost tie breaker, with its calls.
    /// `None` when no tunnel id is free (the SCCRQ is dropped).
    #[allow(clippy::too_many_arguments)]
    fn open_responder(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        from: SocketAddr,
        msg: ControlMessage,
        sccrq: &crate::wire::Sccrq,
        decision: Result<TunnelConfig, Refusal>,
        adopted: Option<(TunnelId, Vec<crate::session::Session>)>,
    ) -> Option<TunnelId> {
        let Some(id) = self.alloc_tunnel_id(rng) else {
            // Every id is in use: the SCCRQ cannot even be refused with state.
            self.counters.tunnel_limit_refusals += 1;
            tracing::warn!(%from, "no free tunnel id for incoming SCCRQ");
            return None;
        };
        let (config, refusal) = match decision {
            Ok(c) => (c, None),
            Err(r) => {
                self.counters.tunnels_refused += 1;
                if r.result == StopCcnResult::GENERAL_ERROR.0
                    && r.error == Some(ErrorCode::INSUFFICIENT_RESOURCES.0)
                {
                    self.counters.tunnel_limit_refusals += 1;
                }
                (TunnelConfig::default(), Some(r))
            }
        };
        let refused = refusal.is_some();
        let mut t = Tunnel::accept(id, from, config, now, refusal);
        tracing::info!(%from, tunnel = %id, peer_tunnel = %sccrq.assigned_tunnel_id,
            host_name = %crate::text::PeerText::from(&sccrq.host_name[..]), refused, "incoming SCCRQ");
        if let Some((old, calls)) = adopted {
            let sessions = t.adopt_calls(calls);
            self.out
                .push_back(Output::Event(crate::event::Event::TunnelReplaced {
                    old,
                    new: id,
                    sessions,
                }));
            self.out
                .push_back(Output::Event(crate::event::Event::TunnelFreed {
                    tunnel: old,
                }));
        }
        t.receive(now, rng, msg, &mut self.out);
        self.by_peer.insert((from, sccrq.assigned_tunnel_id), id);
        self.insert_tunnel(t);
        self.reap(id);
        Some(id)
    }

    /// Accept a peer's new call: the tunnel gives it a session id and sends
    /// its ICRP (RFC 2661 §7.4.2), or for an OCRQ its OCRP then OCCN (the
    /// LAC connects at once, §7.5.1); the answer carries the acknowledgement
    /// of the request. Returns our session id. O(log n).
    pub fn accept_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call: IncomingCall,
    ) -> Result<SessionId, IncomingCallError> {
        let id = self.decide_call(now, rng, call, Ok(()))?;
        id.ok_or(IncomingCallError::NotPending)
    }

    /// Refuse a peer's new call: the tunnel answers the request with a CDN
    /// carrying `refusal`'s Result Code, Error Code and text (RFC 2661
    /// §4.4.2, §6.12). Counted in [`EndpointCounters::calls_refused`].
    /// O(log n).
    pub fn refuse_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call: IncomingCall,
        refusal: CallRefusal,
    ) -> Result<(), IncomingCallError> {
        self.decide_call(now, rng, call, Err(refusal))?;
        self.counters.calls_refused += 1;
        Ok(())
    }

    fn decide_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call: IncomingCall,
        decision: Result<(), CallRefusal>,
    ) -> Result<Option<SessionId>, IncomingCallError> {
        let tunnel = call.tunnel;
        let t = self
            .tunnels
            .get_mut(&tunnel)
            .filter(|t| t.incarnation == call.incarnation)
            .ok_or(IncomingCallError::NoSuchTunnel(tunnel))?;
        let answer = t.answer_call(now, rng, call, decision, &mut self.out);
        self.reap(tunnel);
        answer
    }

    /// Fire every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn RngCore) {
        let due: Vec<TunnelId> = self
            .timers
            .range(..=(now, TunnelId(u16::MAX)))
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            if let Some(t) = self.tunnels.get_mut(&id) {
                let was_open = t.is_open();
                t.handle_timeout(now, rng, &mut self.out);
                if was_open && t.close_reason == Some(CloseReason::PeerUnreachable) {
                    self.counters.tunnels_lost += 1;
                }
            }
            self.reap(id);
        }
        self.dial_queued(now, rng);
    }

    /// Execute a command.
    pub fn handle_command(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        cmd: Command,
    ) -> Result<CommandOutcome, CommandError> {
        match cmd {
            Command::OpenTunnel { peer, config } => {
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if self.limits.max_tunnels != 0 && self.tunnels.len() >= self.limits.max_tunnels {
                    return Err(CommandError::TunnelLimit);
                }
                let id = self
                    .alloc_tunnel_id(rng)
                    .ok_or(CommandError::IdsExhausted("tunnel"))?;
                self.insert_tunnel(Tunnel::prepare(id, peer, *config, now));
                self.to_dial.push_back(id);
                self.dial_queued(now, rng);
                Ok(CommandOutcome::Tunnel(id))
            }
            Command::PlaceCall {
                tunnel,
                call_type,
                params,
            } => {
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if !matches!(call_type, CallType::LacIncoming | CallType::LnsOutgoing) {
                    return Err(CommandError::BadCallType(call_type));
                }
                if self.limits.max_sessions != 0 && self.session_total >= self.limits.max_sessions {
                    return Err(CommandError::SessionLimit);
                }
                let t = self
                    .tunnels
                    .get_mut(&tunnel)
                    .ok_or(CommandError::NoSuchTunnel(tunnel))?;
                if !t.is_open() {
                    return Err(CommandError::TunnelClosing(tunnel));
                }
                if t.config.max_sessions != 0 && t.session_count() >= t.config.max_sessions as usize
                {
                    return Err(CommandError::TooManySessions(tunnel));
                }
                let id = t
                    .place_call(now, rng, call_type, params, &mut self.out)
                    .ok_or(CommandError::IdsExhausted("session"));
                self.reap(tunnel);
                Ok(CommandOutcome::Session(id?))
            }
            Command::CloseSession {
                tunnel,
                session,
                result,
                error,
                message,
            } => {
                let t = self
                    .tunnels
                    .get_mut(&tunnel)
                    .ok_or(CommandError::NoSuchTunnel(tunnel))?;
                if !t.sessions.contains_key(&session) {
                    return Err(CommandError::NoSuchSession { tunnel, session });
                }
                t.clear_session(
                    now,
                    rng,
                    session,
                    crate::wire::CdnResult(result),
                    error,
                    message.unwrap_or_else(|| "closed by administrator".into()),
                    &mut self.out,
                );
                t.start_queued_calls(now, rng);
                t.flush(&mut self.out);
                self.reap(tunnel);
                Ok(CommandOutcome::Done)
            }
            Command::CloseTunnel {
                tunnel,
                result,
                message,
            } => {
                let t = self
                    .tunnels
                    .get_mut(&tunnel)
                    .ok_or(CommandError::NoSuchTunnel(tunnel))?;
                t.close_locally(now, rng, result, message, &mut self.out);
                self.reap(tunnel);
                self.dial_queued(now, rng);
                Ok(CommandOutcome::Done)
            }
            Command::SetHelloInterval { tunnel, interval } => {
                let t = self
                    .tunnels
                    .get_mut(&tunnel)
                    .ok_or(CommandError::NoSuchTunnel(tunnel))?;
                t.config.hello_interval = interval;
                self.reap(tunnel);
                Ok(CommandOutcome::Done)
            }
            Command::SendSli {
                tunnel,
                session,
                send_accm,
                recv_accm,
            } => {
                let msg = Message::Sli(crate::wire::Sli {
                    accm: (send_accm, recv_accm),
                    other: Vec::new(),
                });
                self.call_notification(now, rng, tunnel, session, msg)
            }
            Command::SendWen {
                tunnel,
                session,
                errors,
            } => {
                let [
                    crc_errors,
                    framing_errors,
                    hardware_overruns,
                    buffer_overruns,
                    timeout_errors,
                    alignment_errors,
                ] = errors;
                let call_errors = crate::wire::CallErrors {
                    crc_errors,
                    framing_errors,
                    hardware_overruns,
                    buffer_overruns,
                    timeout_errors,
                    alignment_errors,
                };
                self.call_notification(
                    now,
                    rng,
                    tunnel,
                    session,
                    Message::Wen(crate::wire::Wen {
                        call_errors,
                        other: Vec::new(),
                    }),
                )
            }
            Command::Shutdown => {
                self.shutting_down = true;
                let ids: Vec<TunnelId> = self.tunnels.keys().copied().collect();
                for id in ids {
                    if let Some(t) = self.tunnels.get_mut(&id) {
                        let message = Some("l2tpd shutting down".to_string());
                        t.close_locally(
                            now,
                            rng,
                            StopCcnResult::SHUTTING_DOWN.0,
                            message,
                            &mut self.out,
                        );
                    }
                    self.reap(id);
                }
                Ok(CommandOutcome::Done)
            }
        }
    }

    fn call_notification(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        tunnel: TunnelId,
        session: crate::wire::SessionId,
        msg: Message,
    ) -> Result<CommandOutcome, CommandError> {
        let t = self
            .tunnels
            .get_mut(&tunnel)
            .ok_or(CommandError::NoSuchTunnel(tunnel))?;
        let sent = t.send_call_notification(now, rng, session, msg, &mut self.out);
        self.reap(tunnel);
        if sent {
            Ok(CommandOutcome::Done)
        } else {
            Err(CommandError::NoSuchSession { tunnel, session })
        }
    }

    /// The driver's report on an action.
    pub fn handle_action_result(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        result: ActionResult,
    ) {
        match result {
            ActionResult::Tunnel { tunnel, result } => {
                if let Some(t) = self.tunnels.get_mut(&tunnel) {
                    t.tunnel_created(now, rng, result, &mut self.out);
                }
                self.reap(tunnel);
                self.dial_queued(now, rng);
            }
            ActionResult::Session {
                tunnel,
                session,
                result,
            } => {
                if let Some(t) = self.tunnels.get_mut(&tunnel) {
                    t.session_created(now, rng, session, result, &mut self.out);
                }
                self.reap(tunnel);
            }
        }
    }
}
