//! The control-connection state machine of RFC 2661 §7.2, with the calls it
//! carries, HELLO keepalives (§6.5), tunnel authentication (§4.2, §5.1.1) and
//! tear-down (§5.7).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rand_core::RngCore;
use rustc_hash::FxHashMap;

use crate::endpoint::{IncomingCall, IncomingCallError};
use crate::event::{Action, AuthMode, CloseReason, Event, Output, Transmit, TunnelConfig};
use crate::ids::IdSpace;
use crate::reliable::{ReliableChannel, TimeoutOutcome};
use crate::session::{
    CallParams, CallType, KernelState, PeerCallInfo, Session, SessionState, default_call_params,
};
use crate::text::PeerText;
use crate::violation::Violation;
use crate::wire::{
    AvpValue, BearerCaps, CallErrors, Cdn, CdnResult, ControlHeader, ControlMessage, ErrorCode,
    FramingCaps, Iccn, Icrp, Icrq, Message, MessageType, Occn, Ocrp, Ocrq, ResultCode, Scccn,
    Sccrp, Sccrq, SessionId, StopCcn, StopCcnResult, TunnelId,
};

/// State of a control connection. Each state carries what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelState {
    /// We sent SCCRQ and wait for SCCRP (initiator).
    WaitCtlReply,
    /// We sent SCCRP and wait for SCCCN (responder).
    WaitCtlConn,
    /// The control connection is up.
    Established,
    /// We sent StopCCN; the state is freed once it is acknowledged or
    /// retransmissions give up (RFC 2661 §5.7).
    Closing,
    /// The peer sent StopCCN; we keep acknowledging its retransmissions until
    /// `until`, one full retransmission cycle (RFC 2661 §5.7).
    Lingering {
        /// When the state is freed.
        until: Instant,
    },
}

/// Per-tunnel protocol counters (OpenL2TP's names where they exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    /// HELLOs received.
    pub rx_hellos: u64,
    /// HELLOs sent.
    pub tx_hellos: u64,
    /// AVPs without the M bit that we do not recognise (ignored per RFC 2661 §4.1).
    pub ignored_avps: u64,
    /// Vendor-specific AVPs received (vendor id ≠ 0).
    pub vendor_avps: u64,
    /// Messages that broke the §6 rules or arrived in the wrong state.
    pub illegal_messages: u64,
    /// Messages that failed to decode (length, AVP format, hidden AVP) for this tunnel.
    pub bad_messages: u64,
    /// Call messages naming a session id we do not have.
    pub no_matching_session_discards: u64,
    /// Tunnel authentication failures.
    pub auth_fails: u64,
    /// The peer's new calls refused with CDN result 4 because the driver
    /// did not decide on them by their set-up deadline (see
    /// [`IncomingCall`]).
    pub undecided_calls: u64,
    /// Control messages received, by message type code (index = type, 0..=16).
    pub rx_by_type: [u64; 17],
    /// Control messages sent, by message type code.
    pub tx_by_type: [u64; 17],
    /// Control messages received that were malformed or illegal in their state,
    /// by message type code.
    pub rx_bad_by_type: [u64; 17],
}

/// One control connection and its calls.
#[derive(Debug)]
pub struct Tunnel {
    /// Our Assigned Tunnel ID (non-zero).
    pub id: TunnelId,
    /// The peer's Assigned Tunnel ID; 0 until known.
    pub peer_id: TunnelId,
    /// The peer's address and port.
    pub peer: SocketAddr,
    /// We sent the SCCRQ.
    pub initiator: bool,
    /// Current state.
    pub state: TunnelState,
    /// Parameters.
    pub config: TunnelConfig,
    /// Reliable delivery.
    pub channel: ReliableChannel,
    /// Calls, by our session id. Read-only outside this module: the tunnel
    /// keeps indexes (ids in use, setup deadlines, peer session ids) in step
    /// with it. Boxed: the map's slots stay small (an id and a pointer)
    /// however full it is, instead of holding a whole `Session` in every
    /// slot, used or not. A hash map with a non-keyed hasher (FxHash): the
    /// keys are ids we draw ourselves, never values a peer chooses, and a
    /// lookup costs one probe instead of a B-tree descent (a few percent of
    /// an LNS's CPU time at 65,535 calls). Iteration order is unspecified:
    /// code that acts on several calls in turn sorts their ids first.
    pub sessions: FxHashMap<SessionId, Box<Session>>,
    /// Session ids in use (allocation without scanning).
    session_ids: IdSpace,
    /// Setup deadlines of calls not yet established, earliest first.
    session_deadlines: BTreeSet<(Instant, SessionId)>,
    /// Our session id by the peer's Assigned Session ID, once known.
    by_peer_session: HashMap<SessionId, SessionId>,
    /// The peer's new calls reported to the driver and not yet decided
    /// ([`IncomingCall`]), by the peer's Assigned Session ID.
    pending_calls: HashMap<SessionId, PendingCall>,
    /// Their set-up deadlines, earliest first (peer's Assigned Session IDs).
    pending_deadlines: BTreeSet<(Instant, SessionId)>,
    /// Key of the next call reported: with `incarnation`, tells a pending
    /// call from a later one that reuses its peer session id.
    next_call_key: u64,
    /// Set by the endpoint when the tunnel is inserted: unique over the
    /// endpoint's life, so that an [`IncomingCall`] of a freed tunnel never
    /// matches a later tunnel that got the same id.
    pub(crate) incarnation: u64,
    /// The current input reported a call: its answer (on the driver's
    /// decision) carries the acknowledgement, not a ZLB of its own.
    call_reported: bool,
    /// Calls we placed that wait for their ICRQ / OCRQ to be sent
    /// ([`MAX_CALLS_STARTING`]), oldest first.
    calls_to_start: VecDeque<SessionId>,
    /// Calls we placed whose ICRQ / OCRQ is sent and not yet answered.
    calls_starting: usize,
    /// The peer's Host Name AVP.
    pub peer_host_name: Vec<u8>,
    /// The peer's Vendor Name AVP.
    pub peer_vendor_name: Option<Vec<u8>>,
    /// The peer's Framing Capabilities.
    pub peer_framing_caps: u32,
    /// The peer's Bearer Capabilities.
    pub peer_bearer_caps: u32,
    /// The kernel tunnel: None until requested.
    pub kernel: Option<KernelState>,
    /// Counters.
    pub counters: TunnelCounters,
    /// Why the tunnel is closing, once it is.
    pub close_reason: Option<CloseReason>,
    /// When the tunnel was created (for uptime reporting).
    pub created: Instant,
    our_challenge: Option<Vec<u8>>,
    /// Tie Breaker we sent in our SCCRQ (RFC 2661 §4.4.3).
    pub(crate) our_tie_breaker: Option<u64>,
    refusal: Option<Refusal>,
    setup_deadline: Option<Instant>,
    last_rx: Instant,
    next_serial: u32,
    freed: bool,
}

/// Why an incoming SCCRQ is refused ([`Endpoint::refuse`](crate::endpoint::Endpoint::refuse)):
/// the StopCCN Result Code (RFC 2661 §4.4.2), optional Error Code and the
/// text sent with them in the Result Code AVP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// StopCCN Result Code (RFC 2661 §4.4.2): 2 (general error, see the
    /// Error Code), 4 (requester is not authorized to establish a control
    /// channel), 6 (requester is being shut down)...
    pub result: u16,
    /// Error Code (RFC 2661 §4.4.2) with result 2, e.g. 4 "insufficient resources".
    pub error: Option<u16>,
    /// Text for the Result Code AVP's error message and the log.
    pub text: String,
}

impl Refusal {
    /// StopCCN result 2, error 4 ("insufficient resources to handle this
    /// operation", RFC 2661 §4.4.2), text "tunnel limit reached": the
    /// driver's `max_tunnels` is reached. Counted in
    /// [`EndpointCounters::tunnel_limit_refusals`](crate::endpoint::EndpointCounters::tunnel_limit_refusals).
    pub fn tunnel_limit() -> Self {
        Self {
            result: StopCcnResult::GENERAL_ERROR.0,
            error: Some(ErrorCode::INSUFFICIENT_RESOURCES.0),
            text: "tunnel limit reached".into(),
        }
    }

    /// StopCCN result 4 ("requester is not authorized to establish a
    /// control channel", RFC 2661 §4.4.2) with `text`: the driver's policy
    /// does not take tunnels from this peer.
    pub fn not_authorized(text: impl Into<String>) -> Self {
        Self {
            result: StopCcnResult::NOT_AUTHORIZED.0,
            error: None,
            text: text.into(),
        }
    }

    /// StopCCN result 6 ("requester is being shut down", RFC 2661 §4.4.2):
    /// what the endpoint answers after [`Command::Shutdown`](crate::event::Command::Shutdown).
    pub fn shutting_down() -> Self {
        Self {
            result: StopCcnResult::SHUTTING_DOWN.0,
            error: None,
            text: "shutting down".into(),
        }
    }
}

/// Why a peer's new call is refused ([`Endpoint::refuse_call`](crate::endpoint::Endpoint::refuse_call)):
/// the CDN Result Code (RFC 2661 §4.4.2), optional Error Code and the text
/// sent with them in the Result Code AVP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRefusal {
    /// CDN Result Code (RFC 2661 §4.4.2): 2 (general error, see the Error
    /// Code), 3 (administrative reasons), 4 (no appropriate facilities
    /// available, temporary condition), 5 (permanent condition)...
    pub result: u16,
    /// Error Code (RFC 2661 §4.4.2) with result 2, e.g. 4 "insufficient
    /// resources"; `None` sends 0 ("no general error") in front of the text.
    pub error: Option<u16>,
    /// Text for the Result Code AVP's error message and the log.
    pub text: String,
}

impl CallRefusal {
    /// CDN result 4 ("no appropriate facilities available – temporary
    /// condition", RFC 2661 §4.4.2) with `text`: a session limit, an
    /// exhausted IP pool; the peer may try again later.
    pub fn no_facilities(text: impl Into<String>) -> Self {
        Self {
            result: CdnResult::NO_FACILITIES_TEMPORARY.0,
            error: None,
            text: text.into(),
        }
    }
}

/// A peer's new call reported to the driver and not yet decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingCall {
    /// The key of the [`IncomingCall`] reported for it.
    key: u64,
    /// When the call is refused without a decision (and, once accepted,
    /// must be established by).
    deadline: Instant,
}

/// Up to this many calls get a CDN each before the StopCCN that closes their
/// tunnel at our initiative; beyond it the StopCCN alone clears them (RFC 2661
/// §5.7 does not require CDNs first), so that closing a tunnel of 65,535
/// calls costs one message, not a window-paced stream of CDNs.
pub const MAX_CDNS_BEFORE_STOPCCN: usize = 16;

/// Calls we place that may wait for their ICRP / OCRP at once in one tunnel,
/// at most: the bound in effect is twice the send window (the peer's
/// Receive Window Size, up to our `tx_window_max`), at least
/// [`MIN_CALLS_STARTING`] and at most this; further calls wait their turn,
/// and their `session_establish_timeout` runs from when their ICRQ / OCRQ
/// is sent. Without the bound, 65,535 calls placed at once queue 65,535
/// ICRQs on the reliable channel ahead of the first ICCN, and no call
/// completes until every ICRQ is through the window; and a peer that
/// answers calls slowly would see the later calls' ICRQs only after their
/// timeout had run out in our queue (xl2tpd, which starts a pppd per call
/// before it reads on, brought up 61 of 100 calls placed at once in VM
/// scenario 85, the others timing out after 120 s). Twice the window: a
/// full window of ICRQs and of ICCNs is always ready to go (with 32 against
/// l2tpd's window of 64, 65,535 calls came up about 7 % slower in
/// interleaved runs than with 128).
pub const MAX_CALLS_STARTING: usize = 128;

/// The least bound on calls we place waiting for their ICRP / OCRP at once
/// (see [`MAX_CALLS_STARTING`]), whatever the peer's window: with twice
/// xl2tpd's window of 4, 100 calls took 162 s in one run of VM scenario 85
/// and 403 s in another (our LAC retransmitted 199 messages to xl2tpd,
/// which reads nothing while it starts a pppd); with 32, 169 s. A call
/// started last waits for at most 32 of the peer's calls, about 30 s for
/// xl2tpd there, well within the 120 s default timeout.
pub const MIN_CALLS_STARTING: usize = 32;

/// A Challenge AVP of 0 octets (RFC 2661 §4.4.3: "one or more octets of
/// random data") is malformed: StopCCN 2/2, "Length is wrong" (§4.4.2). A
/// Challenge of nothing would make the response a function of the secret
/// alone, replayable for ever.
fn empty_challenge(message: MessageType, challenge: &Option<Vec<u8>>) -> Option<Violation> {
    challenge
        .as_ref()
        .filter(|c| c.is_empty())
        .map(|_| Violation::AvpLength {
            message,
            avp: "Challenge",
            len: 0,
        })
}

/// CHAP-style response of RFC 2661 §4.2: MD5 over the message type carrying
/// the response (one octet: 2 for SCCRP, 3 for SCCCN), the secret and the challenge.
pub fn challenge_response(message_type: MessageType, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([message_type.0 as u8]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// Sum of all retransmission timeouts of one message: how long a peer may keep
/// retransmitting (RFC 2661 §5.7 "full retransmission cycle").
fn retransmission_cycle(cfg: &crate::reliable::ChannelConfig) -> Duration {
    let mut total = Duration::ZERO;
    let mut t = cfg.retry_timeout;
    for _ in 0..=cfg.max_retries {
        total += t;
        t = (t * 2).min(cfg.retry_max_timeout);
    }
    total
}

/// Proxy LCP and authentication AVPs of an ICCN as (attribute type, value) pairs.
fn proxy_info(m: &Iccn) -> Vec<(u16, Vec<u8>)> {
    use crate::wire::AttributeType as A;
    let mut v = Vec::new();
    let mut push = |a: A, x: &Option<Vec<u8>>| {
        if let Some(x) = x {
            v.push((a.0, x.clone()));
        }
    };
    push(
        A::INITIAL_RECEIVED_LCP_CONFREQ,
        &m.initial_received_lcp_confreq,
    );
    push(A::LAST_SENT_LCP_CONFREQ, &m.last_sent_lcp_confreq);
    push(A::LAST_RECEIVED_LCP_CONFREQ, &m.last_received_lcp_confreq);
    push(A::PROXY_AUTHEN_NAME, &m.proxy_authen_name);
    push(A::PROXY_AUTHEN_CHALLENGE, &m.proxy_authen_challenge);
    push(A::PROXY_AUTHEN_RESPONSE, &m.proxy_authen_response);
    if let Some(t) = m.proxy_authen_type {
        v.push((A::PROXY_AUTHEN_TYPE.0, t.to_be_bytes().to_vec()));
    }
    if let Some(id) = m.proxy_authen_id {
        v.push((A::PROXY_AUTHEN_ID.0, id.to_be_bytes().to_vec()));
    }
    v
}

/// A Result Code AVP value; an error message needs an Error Code in front of
/// it (RFC 2661 §4.4.2), so "no general error" (0) is supplied when absent.
pub(crate) fn result_code(result: u16, error: Option<u16>, message: Option<Vec<u8>>) -> ResultCode {
    let error = if message.is_some() {
        Some(error.unwrap_or(0))
    } else {
        error
    };
    ResultCode {
        result,
        error,
        message,
    }
}

fn type_index(t: MessageType) -> usize {
    usize::from(t.0).min(16)
}

impl Tunnel {
    fn new(
        id: TunnelId,
        peer: SocketAddr,
        initiator: bool,
        config: TunnelConfig,
        now: Instant,
    ) -> Self {
        let channel = ReliableChannel::new(config.channel.clone());
        let setup_deadline = Some(now + config.establish_timeout);
        Self {
            id,
            peer_id: TunnelId(0),
            peer,
            initiator,
            state: if initiator {
                TunnelState::WaitCtlReply
            } else {
                TunnelState::WaitCtlConn
            },
            config,
            channel,
            sessions: FxHashMap::default(),
            session_ids: IdSpace::default(),
            session_deadlines: BTreeSet::new(),
            by_peer_session: HashMap::new(),
            pending_calls: HashMap::new(),
            pending_deadlines: BTreeSet::new(),
            next_call_key: 0,
            incarnation: 0,
            call_reported: false,
            calls_to_start: VecDeque::new(),
            calls_starting: 0,
            peer_host_name: Vec::new(),
            peer_vendor_name: None,
            peer_framing_caps: 0,
            peer_bearer_caps: 0,
            kernel: None,
            counters: TunnelCounters::default(),
            close_reason: None,
            created: now,
            our_challenge: None,
            our_tie_breaker: None,
            refusal: None,
            setup_deadline,
            last_rx: now,
            next_serial: 1,
            freed: false,
        }
    }

    /// A tunnel we initiate, not dialled yet: [`Tunnel::dial`] sends its
    /// SCCRQ when the endpoint lets it (see `Limits::max_dialing`). Calls
    /// placed meanwhile wait for it like for any tunnel coming up.
    pub(crate) fn prepare(
        id: TunnelId,
        peer: SocketAddr,
        config: TunnelConfig,
        now: Instant,
    ) -> Self {
        let mut t = Self::new(id, peer, true, config, now);
        t.setup_deadline = None;
        t
    }

    /// True for a tunnel we initiate whose SCCRQ is not sent yet.
    pub fn awaiting_dial(&self) -> bool {
        self.initiator && self.state == TunnelState::WaitCtlReply && self.setup_deadline.is_none()
    }

    /// Send the SCCRQ of a prepared tunnel; the establishment timer starts now.
    pub(crate) fn dial(&mut self, now: Instant, rng: &mut dyn RngCore) {
        if !self.awaiting_dial() {
            return;
        }
        self.setup_deadline = Some(now + self.config.establish_timeout);
        let id = self.id;
        let t = self;
        if t.config.auth_mode == AuthMode::Challenge && t.config.secret.is_some() {
            let mut c = vec![0u8; 16];
            rng.fill_bytes(&mut c);
            t.our_challenge = Some(c);
        }
        let tie_breaker = t.config.use_tiebreaker.then(|| rng.next_u64());
        t.our_tie_breaker = tie_breaker;
        let sccrq = Sccrq {
            protocol_version: (1, 0),
            host_name: t.config.host_name.clone(),
            framing_capabilities: FramingCaps(t.config.framing_caps),
            assigned_tunnel_id: id,
            bearer_capabilities: (t.config.bearer_caps != 0)
                .then_some(BearerCaps(t.config.bearer_caps)),
            receive_window_size: Some(t.config.channel.rx_window),
            challenge: t.our_challenge.clone(),
            tie_breaker,
            firmware_revision: t.config.firmware_revision,
            vendor_name: t.config.vendor_name.clone(),
            other: Vec::new(),
        };
        t.send(now, rng, SessionId(0), Message::Sccrq(sccrq));
    }

    /// A tunnel created by a received SCCRQ (responder). The SCCRQ itself is fed
    /// through [`Tunnel::receive`] so that the channel numbers it. With
    /// `refusal`, the SCCRQ is answered with a StopCCN carrying its Result
    /// Code, Error Code and text instead of SCCRP.
    pub(crate) fn accept(
        id: TunnelId,
        peer: SocketAddr,
        config: TunnelConfig,
        now: Instant,
        refusal: Option<Refusal>,
    ) -> Self {
        let mut t = Self::new(id, peer, false, config, now);
        t.refusal = refusal;
        t
    }

    /// True once the state can be dropped.
    pub fn is_freed(&self) -> bool {
        self.freed
    }

    /// True while the tunnel can carry new calls or is being set up.
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            TunnelState::WaitCtlReply | TunnelState::WaitCtlConn | TunnelState::Established
        )
    }

    /// Short state name for logs and the management API.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            TunnelState::WaitCtlReply => "wait-ctl-reply",
            TunnelState::WaitCtlConn => "wait-ctl-conn",
            TunnelState::Established => "established",
            TunnelState::Closing => "closing",
            TunnelState::Lingering { .. } => "lingering",
        }
    }

    /// Whether to hide AVPs in a message of type `t` (RFC 2661 §4.3). Never in
    /// SCCRQ (Cisco cannot handle it) nor SCCRP (xl2tpd as LAC looks up the
    /// secret only after parsing the SCCRP, so it cannot unhide anything in it).
    fn hide_for(&self, t: MessageType) -> bool {
        self.config.hide_avps
            && self.config.secret.is_some()
            && t != MessageType::SCCRQ
            && t != MessageType::SCCRP
    }

    /// Encode and queue a message on the reliable channel.
    fn send(&mut self, now: Instant, rng: &mut dyn RngCore, session: SessionId, msg: Message) {
        let mt = msg.message_type();
        let hide = self.hide_for(mt);
        let avps = msg.to_avps_hiding(|_| hide);
        let cm = ControlMessage {
            header: ControlHeader {
                tunnel_id: self.peer_id,
                session_id: session,
                ns: 0,
                nr: 0,
            },
            avps,
        };
        let secret = self.config.secret.clone();
        let encoded = match (&secret, hide) {
            (Some(s), true) => cm.encode(Some((s.as_slice(), rng))),
            _ => cm.encode(None),
        };
        match encoded {
            Ok(bytes) => {
                self.counters.tx_by_type[type_index(mt)] += 1;
                tracing::debug!(tunnel = %self.id, peer_tunnel = %self.peer_id, session = %session, "send {mt}");
                self.channel.queue(now, bytes);
            }
            Err(e) => {
                // Our own messages always encode; this would be a bug, not peer input.
                tracing::error!(tunnel = %self.id, "cannot encode {mt}: {e}");
            }
        }
    }

    /// Move datagrams from the channel to the output queue.
    pub(crate) fn flush(&mut self, out: &mut VecDeque<Output>) {
        while let Some(data) = self.channel.poll_transmit() {
            out.push_back(Output::Transmit(Transmit {
                tunnel: self.id,
                peer: self.peer,
                data,
            }));
        }
    }

    /// Earliest deadline of this tunnel and its calls.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut d = self.channel.poll_timeout();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                d = Some(d.map_or(x, |d| d.min(x)));
            }
        };
        match self.state {
            TunnelState::WaitCtlReply | TunnelState::WaitCtlConn => consider(self.setup_deadline),
            TunnelState::Established => {
                if let Some(h) = self.config.hello_interval {
                    consider(Some(self.last_rx + h));
                }
                consider(self.session_deadlines.first().map(|(d, _)| *d));
                consider(self.pending_deadlines.first().map(|(d, _)| *d));
            }
            TunnelState::Lingering { until } => consider(Some(until)),
            TunnelState::Closing => {}
        }
        d
    }

    /// Feed a decoded control message addressed to this tunnel.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        msg: ControlMessage,
        out: &mut VecDeque<Output>,
    ) {
        self.last_rx = now;
        for m in self.channel.receive(now, msg) {
            self.process(now, rng, m, out);
        }
        self.start_queued_calls(now, rng);
        self.after_input(out);
    }

    /// How many calls we place may wait for their ICRP / OCRP at once: twice
    /// the send window (the peer's Receive Window Size, up to our
    /// `tx_window_max`), within [`MIN_CALLS_STARTING`] and
    /// [`MAX_CALLS_STARTING`].
    fn calls_starting_limit(&self) -> usize {
        let window = self
            .channel
            .peer_rws()
            .min(self.channel.config().tx_window_max);
        (2 * usize::from(window)).clamp(MIN_CALLS_STARTING, MAX_CALLS_STARTING)
    }

    /// Send the ICRQ / OCRQ of queued calls while fewer than
    /// [`Self::calls_starting_limit`] wait for an answer.
    pub(crate) fn start_queued_calls(&mut self, now: Instant, rng: &mut dyn RngCore) {
        if self.state != TunnelState::Established {
            return;
        }
        while self.calls_starting < self.calls_starting_limit() {
            let Some(id) = self.calls_to_start.pop_front() else {
                return;
            };
            if self
                .sessions
                .get(&id)
                .is_some_and(|s| s.state == SessionState::WaitTunnel)
            {
                self.start_call(now, rng, id);
            }
        }
    }

    fn after_input(&mut self, out: &mut VecDeque<Output>) {
        // A call reported to the driver is answered on its decision, which
        // carries the acknowledgement (with a zero ack delay, a driver that
        // does not decide at once gets the ZLB from the next timeout).
        if !std::mem::take(&mut self.call_reported) {
            self.channel.flush_ack();
        }
        if self.state == TunnelState::Closing && self.channel.is_idle() {
            self.free(out);
        }
        self.flush(out);
    }

    fn free(&mut self, out: &mut VecDeque<Output>) {
        if !self.freed {
            self.freed = true;
            out.push_back(Output::Event(Event::TunnelFreed { tunnel: self.id }));
        }
    }

    fn count_bad(&mut self, t: MessageType) {
        self.counters.illegal_messages += 1;
        self.counters.rx_bad_by_type[type_index(t)] += 1;
    }

    fn count_avps(&mut self, msg: &ControlMessage) {
        for avp in &msg.avps {
            if let AvpValue::Unknown { vendor_id, .. } = &avp.value {
                if *vendor_id != 0 {
                    self.counters.vendor_avps += 1;
                } else {
                    self.counters.ignored_avps += 1;
                }
            }
        }
    }

    /// Handle one in-sequence message.
    fn process(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        msg: ControlMessage,
        out: &mut VecDeque<Output>,
    ) {
        let Some(mt) = msg.message_type() else { return };
        self.counters.rx_by_type[type_index(mt)] += 1;
        tracing::debug!(tunnel = %self.id, session = %msg.header.session_id, "recv {mt}");
        if matches!(
            self.state,
            TunnelState::Closing | TunnelState::Lingering { .. }
        ) {
            // Only acknowledgements matter now (done by the channel).
            return;
        }
        self.count_avps(&msg);
        let header_session = msg.header.session_id;
        // RFC 2661 §4.1: an unrecognised AVP with the M bit set ends the call
        // it belongs to, or the tunnel for a tunnel message.
        if let Some(avp) = msg.unknown_mandatory() {
            let v = Violation::UnknownMandatoryAvp {
                message: mt,
                vendor_id: avp.vendor_id(),
                attribute: avp.attribute().0,
            };
            self.reject(now, rng, &msg, v, out);
            return;
        }
        let typed = match Message::from_control(&msg) {
            Ok(t) => t,
            Err(crate::wire::MessageError::UnknownMessageType {
                mandatory: false, ..
            }) => {
                // RFC 2661 §3.2: an unknown message type without the M bit is ignored.
                self.count_bad(mt);
                tracing::info!(tunnel = %self.id, "ignoring unknown message type {mt}");
                return;
            }
            Err(crate::wire::MessageError::UnknownMessageType { .. }) => {
                self.reject(now, rng, &msg, Violation::UnknownMandatoryMessage(mt), out);
                return;
            }
            Err(crate::wire::MessageError::UnknownMandatoryAvp {
                vendor_id,
                attribute,
                ..
            }) => {
                let v = Violation::UnknownMandatoryAvp {
                    message: mt,
                    vendor_id,
                    attribute: attribute.0,
                };
                self.reject(now, rng, &msg, v, out);
                return;
            }
            Err(e) => {
                self.reject(
                    now,
                    rng,
                    &msg,
                    Violation::Malformed {
                        message: mt,
                        reason: e.to_string(),
                    },
                    out,
                );
                return;
            }
        };
        match typed {
            Message::Sccrq(m) => self.on_sccrq(now, rng, m, out),
            Message::Sccrp(m) => self.on_sccrp(now, rng, m, out),
            Message::Scccn(m) => self.on_scccn(now, rng, m, out),
            Message::StopCcn(m) => self.on_stopccn(now, m, out),
            Message::Hello => self.counters.rx_hellos += 1,
            other => {
                if self.state != TunnelState::Established {
                    self.count_bad(mt);
                    let v = Violation::UnexpectedMessage {
                        message: mt,
                        state: self.state_name(),
                    };
                    self.protocol_error(now, rng, v, out);
                    return;
                }
                self.on_call_message(now, rng, header_session, other, out);
            }
        }
    }

    /// Answer a message that breaks the rules: StopCCN for a tunnel message (or
    /// an unknown message type with the M bit, RFC 2661 §3.2), CDN for a call
    /// message, refusing the call outright when it was an ICRQ / OCRQ. A call
    /// message for a session we do not have is counted and dropped.
    fn reject(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        msg: &ControlMessage,
        violation: Violation,
        out: &mut VecDeque<Output>,
    ) {
        let Some(mt) = msg.message_type() else { return };
        self.count_bad(mt);
        let header_session = msg.header.session_id;
        if mt == MessageType::SCCRQ && self.peer_id.0 == 0 {
            // Address the StopCCN to the tunnel the bad SCCRQ announced.
            if let Some(peer) = msg.avps.iter().find_map(|a| match a.value {
                AvpValue::AssignedTunnelId(id) => Some(id),
                _ => None,
            }) {
                self.peer_id = peer;
                self.channel.set_peer(peer, None);
            }
        }
        if !mt.is_known() || !mt.is_session_message() {
            self.protocol_error(now, rng, violation, out);
        } else if mt == MessageType::ICRQ || mt == MessageType::OCRQ {
            let peer_session = msg.avps.iter().find_map(|a| match a.value {
                AvpValue::AssignedSessionId(id) => Some(id),
                _ => None,
            });
            let (result, error) = violation.cdn();
            match peer_session {
                Some(peer) => {
                    self.refuse_call(now, rng, peer, result, error, &violation.to_string())
                }
                None => {
                    tracing::info!(tunnel = %self.id, "dropping {mt} without an Assigned Session ID: {violation}")
                }
            }
        } else if self.sessions.contains_key(&header_session) {
            self.clear_session_violation(now, rng, header_session, violation, out);
        } else {
            self.counters.no_matching_session_discards += 1;
            tracing::info!(tunnel = %self.id, "dropping {mt} for unknown session {header_session}: {violation}");
        }
    }

    /// Refuse a call the peer requested with CDN (our side of the call never existed).
    fn refuse_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        peer_session: SessionId,
        result: CdnResult,
        error: Option<ErrorCode>,
        text: &str,
    ) {
        // The refused call never exists on our side; when every id is taken
        // the CDN still goes out, with Assigned Session ID 0.
        let id = self.alloc_session_id(rng).unwrap_or(SessionId(0));
        tracing::info!(tunnel = %self.id, "refusing call from peer session {peer_session}: {text}");
        let cdn = Cdn {
            result_code: result_code(result.0, error.map(|e| e.0), Some(text.as_bytes().to_vec())),
            assigned_session_id: id,
            q931_cause_code: None,
            other: Vec::new(),
        };
        self.send(now, rng, peer_session, Message::Cdn(cdn));
    }

    /// An SCCRQ, SCCRP or SCCCN in the wrong state: StopCCN with result 7.
    fn unexpected(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        mt: MessageType,
        out: &mut VecDeque<Output>,
    ) {
        self.count_bad(mt);
        let v = Violation::UnexpectedMessage {
            message: mt,
            state: self.state_name(),
        };
        self.protocol_error(now, rng, v, out);
    }

    /// Tunnel authentication failed: count it and send StopCCN result 4.
    fn auth_failed(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        v: Violation,
        out: &mut VecDeque<Output>,
    ) {
        self.counters.auth_fails += 1;
        self.protocol_error(now, rng, v, out);
    }

    /// Record what the peer announced in its SCCRQ / SCCRP; its Protocol
    /// Version must be 1.0 (RFC 2661 §4.4.3).
    #[allow(clippy::too_many_arguments)]
    fn learn_peer(
        &mut self,
        version: (u8, u8),
        assigned: TunnelId,
        rws: Option<u16>,
        host_name: &[u8],
        vendor_name: &Option<Vec<u8>>,
        framing: FramingCaps,
        bearer: Option<BearerCaps>,
    ) -> Result<(), Violation> {
        self.peer_id = assigned;
        self.channel.set_peer(assigned, rws);
        self.peer_host_name = host_name.to_vec();
        self.peer_vendor_name = vendor_name.clone();
        self.peer_framing_caps = framing.0;
        self.peer_bearer_caps = bearer.map_or(0, |b| b.0);
        match version {
            (1, 0) => Ok(()),
            (v, r) => Err(Violation::UnsupportedVersion(v, r)),
        }
    }

    /// Our Challenge Response (RFC 2661 §4.2) to the peer's `challenge`, to be
    /// carried in a message of type `carrier`; an error when we have no secret.
    fn respond_to_challenge(
        &self,
        challenge: &Option<Vec<u8>>,
        carrier: MessageType,
    ) -> Result<Option<[u8; 16]>, Violation> {
        match (challenge, &self.config.secret) {
            (Some(c), Some(s)) => Ok(Some(challenge_response(carrier, s, c))),
            (Some(_), None) => Err(Violation::NotAuthorized(
                "the peer sent a Challenge but no secret is configured",
            )),
            (None, _) => Ok(None),
        }
    }

    /// Check the peer's response (in a message of type `carrier`) to our Challenge, if we sent one.
    fn verify_response(
        &self,
        carrier: MessageType,
        got: Option<[u8; 16]>,
    ) -> Result<(), Violation> {
        let Some(ours) = &self.our_challenge else {
            return Ok(());
        };
        let secret = self.config.secret.as_deref().unwrap_or_default();
        match got {
            Some(r) if r == challenge_response(carrier, secret, ours) => Ok(()),
            Some(_) => Err(Violation::NotAuthorized("wrong Challenge Response")),
            None => Err(Violation::NotAuthorized("no Challenge Response")),
        }
    }

    fn on_sccrq(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        m: Sccrq,
        out: &mut VecDeque<Output>,
    ) {
        if self.initiator || self.state != TunnelState::WaitCtlConn || self.peer_id.0 != 0 {
            return self.unexpected(now, rng, MessageType::SCCRQ, out);
        }
        let learned = self.learn_peer(
            m.protocol_version,
            m.assigned_tunnel_id,
            m.receive_window_size,
            &m.host_name,
            &m.vendor_name,
            m.framing_capabilities,
            m.bearer_capabilities,
        );
        if let Some(Refusal {
            result,
            error,
            text,
        }) = self.refusal.take()
        {
            let reason = CloseReason::Local {
                result,
                error,
                message: Some(text.clone()),
            };
            self.close(
                now,
                rng,
                result_code(result, error, Some(text.into_bytes())),
                reason,
                false,
                out,
            );
            return;
        }
        if let Err(v) = learned {
            return self.protocol_error(now, rng, v, out);
        }
        if let Some(v) = empty_challenge(MessageType::SCCRQ, &m.challenge) {
            self.count_bad(MessageType::SCCRQ);
            return self.protocol_error(now, rng, v, out);
        }
        let challenge_response = match self.respond_to_challenge(&m.challenge, MessageType::SCCRP) {
            Ok(r) => r,
            Err(v) => return self.auth_failed(now, rng, v, out),
        };
        if self.config.auth_mode == AuthMode::Challenge {
            if self.config.secret.is_none() {
                return self.protocol_error(
                    now,
                    rng,
                    Violation::NotAuthorized("auth_mode challenge requires a secret"),
                    out,
                );
            }
            let mut c = vec![0u8; 16];
            rng.fill_bytes(&mut c);
            self.our_challenge = Some(c);
        }
        let sccrp = Sccrp {
            protocol_version: (1, 0),
            framing_capabilities: FramingCaps(self.config.framing_caps),
            bearer_capabilities: (self.config.bearer_caps != 0)
                .then_some(BearerCaps(self.config.bearer_caps)),
            firmware_revision: self.config.firmware_revision,
            host_name: self.config.host_name.clone(),
            vendor_name: self.config.vendor_name.clone(),
            assigned_tunnel_id: self.id,
            receive_window_size: Some(self.config.channel.rx_window),
            challenge: self.our_challenge.clone(),
            challenge_response,
            other: Vec::new(),
        };
        self.send(now, rng, SessionId(0), Message::Sccrp(sccrp));
    }

    fn on_sccrp(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        m: Sccrp,
        out: &mut VecDeque<Output>,
    ) {
        if self.state != TunnelState::WaitCtlReply {
            return self.unexpected(now, rng, MessageType::SCCRP, out);
        }
        let learned = self.learn_peer(
            m.protocol_version,
            m.assigned_tunnel_id,
            m.receive_window_size,
            &m.host_name,
            &m.vendor_name,
            m.framing_capabilities,
            m.bearer_capabilities,
        );
        if let Err(v) = learned {
            return self.protocol_error(now, rng, v, out);
        }
        if let Some(v) = empty_challenge(MessageType::SCCRP, &m.challenge) {
            self.count_bad(MessageType::SCCRP);
            return self.protocol_error(now, rng, v, out);
        }
        if let Err(v) = self.verify_response(MessageType::SCCRP, m.challenge_response) {
            return self.auth_failed(now, rng, v, out);
        }
        let challenge_response = match self.respond_to_challenge(&m.challenge, MessageType::SCCCN) {
            Ok(r) => r,
            Err(v) => return self.auth_failed(now, rng, v, out),
        };
        self.send(
            now,
            rng,
            SessionId(0),
            Message::Scccn(Scccn {
                challenge_response,
                other: Vec::new(),
            }),
        );
        self.established(now, rng, out);
    }

    fn on_scccn(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        m: Scccn,
        out: &mut VecDeque<Output>,
    ) {
        if self.state != TunnelState::WaitCtlConn || self.peer_id.0 == 0 {
            return self.unexpected(now, rng, MessageType::SCCCN, out);
        }
        if let Err(v) = self.verify_response(MessageType::SCCCN, m.challenge_response) {
            return self.auth_failed(now, rng, v, out);
        }
        self.established(now, rng, out);
    }

    fn established(&mut self, now: Instant, rng: &mut dyn RngCore, out: &mut VecDeque<Output>) {
        self.state = TunnelState::Established;
        self.setup_deadline = None;
        self.kernel = Some(KernelState::Pending);
        out.push_back(Output::Action(Action::CreateTunnel {
            tunnel: self.id,
            peer_tunnel: self.peer_id,
            peer: self.peer,
        }));
        out.push_back(Output::Event(Event::TunnelUp {
            tunnel: self.id,
            peer_tunnel: self.peer_id,
            peer: self.peer,
            peer_host_name: PeerText::new(self.peer_host_name.clone()),
        }));
        // Calls requested while the tunnel was coming up.
        let mut waiting: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| s.state == SessionState::WaitTunnel)
            .map(|s| s.id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            self.start_call(now, rng, id);
        }
    }

    fn on_stopccn(&mut self, now: Instant, m: StopCcn, out: &mut VecDeque<Output>) {
        if self.peer_id.0 != 0 && m.assigned_tunnel_id != self.peer_id {
            // RFC 2661 §6.4: the StopCCN's Assigned Tunnel ID names the
            // sender's tunnel being closed (so that it can be matched even
            // without our tunnel id). Another id means the StopCCN is about
            // some other tunnel of the peer's, not this one: it is
            // acknowledged (by the channel, like any message in sequence),
            // counted as an illegal message, and otherwise ignored; the
            // tunnel stays up.
            self.count_bad(MessageType::STOPCCN);
            tracing::info!(tunnel = %self.id, peer_tunnel = %self.peer_id,
                assigned = %m.assigned_tunnel_id,
                "ignoring StopCCN whose Assigned Tunnel ID is not the peer's");
            return;
        }
        let reason = CloseReason::Peer {
            result: m.result_code.result,
            error: m.result_code.error,
            message: m.result_code.message.clone().map(PeerText::new),
        };
        tracing::info!(tunnel = %self.id, "peer sent StopCCN: {reason}");
        // Acknowledge at once rather than waiting for the ack timer.
        self.channel.send_zlb();
        self.teardown(reason, out);
        self.state = TunnelState::Lingering {
            until: now + retransmission_cycle(&self.config.channel),
        };
    }

    /// Tear down calls and the kernel tunnel and report the tunnel down.
    fn teardown(&mut self, reason: CloseReason, out: &mut VecDeque<Output>) {
        // Undecided calls go with the tunnel: its StopCCN clears them.
        self.pending_calls.clear();
        self.pending_deadlines.clear();
        let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.drop_session(id, CloseReason::TunnelClosed, out);
        }
        if self.kernel.take().is_some() {
            out.push_back(Output::Action(Action::DeleteTunnel { tunnel: self.id }));
        }
        out.push_back(Output::Event(Event::TunnelDown {
            tunnel: self.id,
            reason: reason.clone(),
        }));
        self.close_reason = Some(reason);
    }

    /// Close the tunnel with StopCCN (RFC 2661 §5.7). With `clear_calls`, each
    /// call gets a CDN first.
    pub(crate) fn close(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        result: ResultCode,
        reason: CloseReason,
        clear_calls: bool,
        out: &mut VecDeque<Output>,
    ) {
        if !self.is_open() {
            return;
        }
        if self.awaiting_dial() {
            // The peer never heard of this tunnel: nothing to tell it.
            self.teardown(reason, out);
            self.state = TunnelState::Closing;
            self.free(out);
            return;
        }
        if clear_calls {
            let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                self.clear_session(
                    now,
                    rng,
                    id,
                    CdnResult::ADMINISTRATIVE,
                    None,
                    "tunnel closing".into(),
                    out,
                );
            }
        }
        let stop = StopCcn {
            assigned_tunnel_id: self.id,
            result_code: result,
            other: Vec::new(),
        };
        self.send(now, rng, SessionId(0), Message::StopCcn(stop));
        self.teardown(reason, out);
        self.state = TunnelState::Closing;
        self.after_input(out);
    }

    /// Close the tunnel at our own initiative: CDN for each call, then StopCCN
    /// with `result` (RFC 2661 §4.4.2 StopCCN Result Code) and `message`.
    pub(crate) fn close_locally(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        result: u16,
        message: Option<String>,
        out: &mut VecDeque<Output>,
    ) {
        let reason = CloseReason::Local {
            result,
            error: None,
            message: message.clone(),
        };
        let clear_calls = self.sessions.len() <= MAX_CDNS_BEFORE_STOPCCN;
        self.close(
            now,
            rng,
            result_code(result, None, message.map(String::into_bytes)),
            reason,
            clear_calls,
            out,
        );
    }

    /// Answer a violation in a tunnel message with StopCCN (RFC 2661 §4.4.2 codes).
    fn protocol_error(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        violation: Violation,
        out: &mut VecDeque<Output>,
    ) {
        let (result, error) = violation.stopccn();
        tracing::warn!(tunnel = %self.id, peer = %self.peer, "{violation}: sending StopCCN result {}", result.0);
        let text = violation.to_string();
        let reason = CloseReason::ProtocolError {
            result: result.0,
            error: error.map(|e| e.0),
            violation,
        };
        self.close(
            now,
            rng,
            result_code(result.0, error.map(|e| e.0), Some(text.into_bytes())),
            reason,
            false,
            out,
        );
    }

    /// Fire expired timers.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        out: &mut VecDeque<Output>,
    ) {
        if self.channel.handle_timeout(now) == TimeoutOutcome::GaveUp {
            tracing::warn!(tunnel = %self.id, peer = %self.peer, "retransmissions exhausted, clearing tunnel");
            if self.is_open() {
                self.teardown(CloseReason::PeerUnreachable, out);
            }
            self.state = TunnelState::Closing;
            self.free(out);
            return;
        }
        match self.state {
            TunnelState::WaitCtlReply | TunnelState::WaitCtlConn => {
                if self.setup_deadline.is_some_and(|d| d <= now) {
                    self.close(
                        now,
                        rng,
                        result_code(
                            StopCcnResult::GENERAL_ERROR.0,
                            None,
                            Some(b"establishment timed out".to_vec()),
                        ),
                        CloseReason::SetupTimeout,
                        false,
                        out,
                    );
                }
            }
            TunnelState::Established => {
                if let Some(h) = self.config.hello_interval
                    && self.last_rx + h <= now
                {
                    // RFC 2661 §6.5: keepalive after a period of silence.
                    self.last_rx = now;
                    self.counters.tx_hellos += 1;
                    self.send(now, rng, SessionId(0), Message::Hello);
                }
                let expired: Vec<SessionId> = self
                    .session_deadlines
                    .iter()
                    .take_while(|(d, _)| *d <= now)
                    .map(|(_, id)| *id)
                    .collect();
                for id in expired {
                    let rc = result_code(
                        CdnResult::TIMEOUT.0,
                        None,
                        Some(b"call establishment timed out".to_vec()),
                    );
                    self.clear_session_with(now, rng, id, rc, CloseReason::SetupTimeout, out);
                }
                while let Some(&(d, peer)) = self.pending_deadlines.first()
                    && d <= now
                {
                    // The driver dropped the call undecided: never leave the
                    // peer without an answer.
                    self.pending_deadlines.remove(&(d, peer));
                    self.pending_calls.remove(&peer);
                    self.counters.undecided_calls += 1;
                    tracing::warn!(tunnel = %self.id, peer_session = %peer,
                        "no admission decision for the call by its set-up deadline: refusing it");
                    self.refuse_call(
                        now,
                        rng,
                        peer,
                        CdnResult::NO_FACILITIES_TEMPORARY,
                        None,
                        "no admission decision in time",
                    );
                }
            }
            TunnelState::Lingering { until } => {
                if until <= now {
                    self.free(out);
                }
            }
            TunnelState::Closing => {}
        }
        self.start_queued_calls(now, rng);
        self.after_input(out);
    }

    /// Our SCCRQ crossed the peer's and lost the tie breaker: discard this
    /// tunnel without StopCCN (RFC 2661 §4.4.3) and hand over the calls that
    /// were waiting for it.
    pub(crate) fn discard_for_tie_breaker(&mut self, out: &mut VecDeque<Output>) -> Vec<Session> {
        let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        let calls: Vec<Session> = ids
            .into_iter()
            .filter_map(|id| self.remove_session(id).map(|s| *s))
            .collect();
        out.push_back(Output::Event(Event::TunnelDown {
            tunnel: self.id,
            reason: CloseReason::TieBreakerLost,
        }));
        self.close_reason = Some(CloseReason::TieBreakerLost);
        self.state = TunnelState::Closing;
        // The endpoint reports TunnelFreed after it has said where the calls went.
        self.freed = true;
        calls
    }

    /// Take over calls from a tunnel that lost the tie breaker; they start once
    /// this tunnel is established.
    pub(crate) fn adopt_calls(&mut self, calls: Vec<Session>) -> Vec<SessionId> {
        let mut ids = Vec::new();
        for mut s in calls {
            if self.sessions.contains_key(&s.id) {
                continue;
            }
            s.state = SessionState::WaitTunnel;
            s.peer_id = SessionId(0);
            ids.push(s.id);
            self.insert_session(s);
        }
        ids
    }

    /// Send a call-scoped notification (SLI, RFC 2661 §6.16, or WEN, §6.15) for
    /// an established call; false when there is no such call.
    pub(crate) fn send_call_notification(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        id: SessionId,
        msg: Message,
        out: &mut VecDeque<Output>,
    ) -> bool {
        let Some(s) = self.sessions.get(&id) else {
            return false;
        };
        if !s.is_established() {
            return false;
        }
        let peer = s.peer_id;
        self.send(now, rng, peer, msg);
        self.flush(out);
        true
    }

    // ----- calls -----

    /// Number of sessions, for limits and reporting.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of the peer's new calls waiting for the driver's decision
    /// (see [`IncomingCall`]); not counted in [`Self::session_count`]. O(1).
    pub fn pending_call_count(&self) -> usize {
        self.pending_calls.len()
    }

    /// A free session id (RFC 2661 §4.4.4: non-zero), without scanning.
    fn alloc_session_id(&mut self, rng: &mut dyn RngCore) -> Option<SessionId> {
        let sessions = &self.sessions;
        self.session_ids
            .alloc(
                rng,
                |id| sessions.contains_key(&SessionId(id)),
                || sessions.keys().map(|k| k.0),
            )
            .map(SessionId)
    }

    /// Add a call and its index entries.
    fn insert_session(&mut self, s: Session) {
        self.session_ids.insert(s.id.0);
        if let Some(d) = s.setup_deadline {
            self.session_deadlines.insert((d, s.id));
        }
        if s.peer_id.0 != 0 {
            self.by_peer_session.insert(s.peer_id, s.id);
        }
        self.sessions.insert(s.id, Box::new(s));
    }

    /// Remove a call and its index entries.
    fn remove_session(&mut self, id: SessionId) -> Option<Box<Session>> {
        let s = self.sessions.remove(&id)?;
        if s.state == SessionState::WaitReply {
            self.calls_starting = self.calls_starting.saturating_sub(1);
        }
        self.session_ids.remove(id.0);
        if let Some(d) = s.setup_deadline {
            self.session_deadlines.remove(&(d, id));
        }
        if s.peer_id.0 != 0 && self.by_peer_session.get(&s.peer_id) == Some(&id) {
            self.by_peer_session.remove(&s.peer_id);
        }
        Some(s)
    }

    /// Record the peer's Assigned Session ID of call `id`.
    fn set_peer_session(&mut self, id: SessionId, peer: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if s.peer_id.0 != 0 && self.by_peer_session.get(&s.peer_id) == Some(&id) {
                self.by_peer_session.remove(&s.peer_id);
            }
            s.peer_id = peer;
            if peer.0 != 0 {
                self.by_peer_session.insert(peer, id);
            }
        }
    }

    /// Create a call we initiate (LacIncoming or LnsOutgoing).
    pub(crate) fn place_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call_type: CallType,
        params: Arc<CallParams>,
        out: &mut VecDeque<Output>,
    ) -> Option<SessionId> {
        let id = self.alloc_session_id(rng)?;
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1).max(1);
        let session = Session {
            id,
            peer_id: SessionId(0),
            call_type,
            state: SessionState::WaitTunnel,
            serial,
            sequencing: params.sequencing_required,
            setup_deadline: Some(now + self.config.session_establish_timeout),
            params,
            peer_info: None,
        };
        self.insert_session(session);
        if self.state == TunnelState::Established {
            self.start_call(now, rng, id);
        }
        self.flush(out);
        Some(id)
    }

    /// Send ICRQ / OCRQ for a call waiting for the tunnel, or queue it while
    /// [`Self::calls_starting_limit`] calls wait for an answer. Its setup
    /// deadline runs from the ICRQ / OCRQ: a queued call has none (it waits
    /// on our own bound, not on the peer, and the calls ahead of it each
    /// end within their own timeout).
    fn start_call(&mut self, now: Instant, rng: &mut dyn RngCore, id: SessionId) {
        let queue = self.calls_starting >= self.calls_starting_limit();
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if !s.call_type.is_initiator() {
            return;
        }
        if let Some(d) = s.setup_deadline.take() {
            self.session_deadlines.remove(&(d, id));
        }
        if queue {
            self.calls_to_start.push_back(id);
            return;
        }
        let deadline = now + self.config.session_establish_timeout;
        s.setup_deadline = Some(deadline);
        self.session_deadlines.insert((deadline, id));
        self.calls_starting += 1;
        s.state = SessionState::WaitReply;
        let p = s.params.clone();
        let msg = match s.call_type {
            CallType::LacIncoming => Message::Icrq(Icrq {
                assigned_session_id: id,
                call_serial_number: s.serial,
                bearer_type: p.bearer_type.map(BearerCaps),
                physical_channel_id: None,
                calling_number: p.calling_number.clone(),
                called_number: p.called_number.clone(),
                sub_address: p.sub_address.clone(),
                other: Vec::new(),
            }),
            CallType::LnsOutgoing => Message::Ocrq(Ocrq {
                assigned_session_id: id,
                call_serial_number: s.serial,
                minimum_bps: p.minimum_bps,
                maximum_bps: p.maximum_bps,
                bearer_type: BearerCaps(p.bearer_type.unwrap_or(3)),
                framing_type: FramingCaps(p.framing_type),
                called_number: p.called_number.clone().unwrap_or_default(),
                sub_address: p.sub_address.clone(),
                other: Vec::new(),
            }),
            CallType::LnsIncoming | CallType::LacOutgoing => return,
        };
        self.send(now, rng, SessionId(0), msg);
    }

    fn connect_message(p: &CallParams, outgoing: bool) -> Message {
        if outgoing {
            Message::Occn(Occn {
                tx_connect_speed: p.tx_connect_speed,
                framing_type: FramingCaps(p.framing_type),
                rx_connect_speed: p.rx_connect_speed,
                sequencing_required: p.sequencing_required,
                other: Vec::new(),
            })
        } else {
            Message::Iccn(Iccn {
                tx_connect_speed: p.tx_connect_speed,
                framing_type: FramingCaps(p.framing_type),
                initial_received_lcp_confreq: None,
                last_sent_lcp_confreq: None,
                last_received_lcp_confreq: None,
                proxy_authen_type: None,
                proxy_authen_name: None,
                proxy_authen_challenge: None,
                proxy_authen_id: None,
                proxy_authen_response: None,
                private_group_id: None,
                rx_connect_speed: p.rx_connect_speed,
                sequencing_required: p.sequencing_required,
                other: Vec::new(),
            })
        }
    }

    fn session_up(&mut self, id: SessionId, out: &mut VecDeque<Output>) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.state = SessionState::Established {
            kernel: KernelState::Pending,
        };
        if let Some(d) = s.setup_deadline.take() {
            self.session_deadlines.remove(&(d, id));
        }
        let s = &self.sessions[&id];
        out.push_back(Output::Action(Action::CreateSession {
            tunnel: self.id,
            session: id,
            peer_tunnel: self.peer_id,
            peer_session: s.peer_id,
            call_type: s.call_type,
            sequencing: s.sequencing,
            peer: self.peer,
        }));
    }

    fn find_session(
        &self,
        header_session: SessionId,
        assigned: Option<SessionId>,
    ) -> Option<SessionId> {
        if header_session.0 != 0 && self.sessions.contains_key(&header_session) {
            return Some(header_session);
        }
        // Some peers put 0 in the header of a CDN for a call they never heard back
        // on; fall back to the peer's Assigned Session ID.
        let peer = assigned.filter(|p| p.0 != 0)?;
        self.by_peer_session.get(&peer).copied()
    }

    fn on_call_message(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        header_session: SessionId,
        msg: Message,
        out: &mut VecDeque<Output>,
    ) {
        let mt = msg.message_type();
        match msg {
            Message::Icrq(m) => self.on_new_call(
                now,
                rng,
                CallType::LnsIncoming,
                m.assigned_session_id,
                m.call_serial_number,
                PeerCallInfo {
                    bearer_type: m.bearer_type.map(|b| b.0),
                    calling_number: m.calling_number,
                    called_number: m.called_number,
                    physical_channel_id: m.physical_channel_id,
                    ..PeerCallInfo::default()
                },
                out,
            ),
            Message::Ocrq(m) => self.on_new_call(
                now,
                rng,
                CallType::LacOutgoing,
                m.assigned_session_id,
                m.call_serial_number,
                PeerCallInfo {
                    bearer_type: Some(m.bearer_type.0),
                    framing_type: Some(m.framing_type.0),
                    called_number: Some(m.called_number),
                    ..PeerCallInfo::default()
                },
                out,
            ),
            Message::Cdn(m) => {
                let Some(id) = self.find_session(header_session, Some(m.assigned_session_id))
                else {
                    self.counters.no_matching_session_discards += 1;
                    return;
                };
                let reason = CloseReason::Peer {
                    result: m.result_code.result,
                    error: m.result_code.error,
                    message: m.result_code.message.clone().map(PeerText::new),
                };
                self.drop_session(id, reason, out);
            }
            Message::Wen(m) => {
                if let Some(id) = self.find_session(header_session, None) {
                    let CallErrors {
                        crc_errors,
                        framing_errors,
                        hardware_overruns,
                        buffer_overruns,
                        timeout_errors,
                        alignment_errors,
                    } = m.call_errors;
                    out.push_back(Output::Event(Event::WanErrorNotify {
                        tunnel: self.id,
                        session: id,
                        errors: [
                            crc_errors,
                            framing_errors,
                            hardware_overruns,
                            buffer_overruns,
                            timeout_errors,
                            alignment_errors,
                        ],
                    }));
                } else {
                    self.counters.no_matching_session_discards += 1;
                }
            }
            Message::Sli(m) => {
                if let Some(id) = self.find_session(header_session, None) {
                    out.push_back(Output::Event(Event::SetLinkInfo {
                        tunnel: self.id,
                        session: id,
                        send_accm: m.accm.0,
                        recv_accm: m.accm.1,
                    }));
                } else {
                    self.counters.no_matching_session_discards += 1;
                }
            }
            other => {
                let Some(id) = self.find_session(header_session, None) else {
                    self.counters.no_matching_session_discards += 1;
                    tracing::debug!(tunnel = %self.id, "{mt} for unknown session {header_session}");
                    return;
                };
                let Some(s) = self.sessions.get_mut(&id) else {
                    return;
                };
                match (s.call_type, &s.state, other) {
                    (
                        CallType::LacIncoming,
                        SessionState::WaitReply,
                        Message::Icrp(Icrp {
                            assigned_session_id,
                            ..
                        }),
                    ) => {
                        let iccn = Self::connect_message(&s.params, false);
                        self.calls_starting = self.calls_starting.saturating_sub(1);
                        self.set_peer_session(id, assigned_session_id);
                        self.send(now, rng, assigned_session_id, iccn);
                        self.session_up(id, out);
                    }
                    (CallType::LnsIncoming, SessionState::WaitConnect, Message::Iccn(m)) => {
                        s.sequencing |= m.sequencing_required;
                        s.peer_info_mut().tx_connect_speed = Some(m.tx_connect_speed);
                        s.peer_info_mut().rx_connect_speed = m.rx_connect_speed;
                        s.peer_info_mut().framing_type = Some(m.framing_type.0);
                        s.peer_info_mut().private_group_id = m.private_group_id.clone();
                        s.peer_info_mut().proxy = proxy_info(&m);
                        self.session_up(id, out);
                    }
                    (
                        CallType::LnsOutgoing,
                        SessionState::WaitReply,
                        Message::Ocrp(Ocrp {
                            assigned_session_id,
                            physical_channel_id,
                            ..
                        }),
                    ) => {
                        s.peer_info_mut().physical_channel_id = physical_channel_id;
                        s.state = SessionState::WaitConnect;
                        self.calls_starting = self.calls_starting.saturating_sub(1);
                        self.set_peer_session(id, assigned_session_id);
                    }
                    (CallType::LnsOutgoing, SessionState::WaitConnect, Message::Occn(m)) => {
                        s.sequencing |= m.sequencing_required;
                        s.peer_info_mut().tx_connect_speed = Some(m.tx_connect_speed);
                        s.peer_info_mut().rx_connect_speed = m.rx_connect_speed;
                        s.peer_info_mut().framing_type = Some(m.framing_type.0);
                        self.session_up(id, out);
                    }
                    (_, _, _) => {
                        let v = Violation::UnexpectedMessage {
                            message: mt,
                            state: s.state_name(),
                        };
                        self.count_bad(mt);
                        self.clear_session_violation(now, rng, id, v, out);
                    }
                }
            }
        }
    }

    /// A peer's ICRQ / OCRQ in an established tunnel (RFC 2661 §6.6, §6.9).
    /// The checks that do not depend on policy are made here, each answered
    /// with a CDN (RFC 2661 §4.4.2): Assigned Session ID 0 (2/5), a call
    /// direction the tunnel does not take (3), the peer's Assigned Session
    /// ID already in use, by a call or a pending one (2/5), every session id
    /// of ours in use or held for pending calls (4/4). Anything else is
    /// reported to the driver as an [`IncomingCall`] and held pending until
    /// it decides ([`Self::answer_call`]) or the set-up deadline passes.
    #[allow(clippy::too_many_arguments)]
    fn on_new_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call_type: CallType,
        peer_session: SessionId,
        serial: u32,
        info: PeerCallInfo,
        out: &mut VecDeque<Output>,
    ) {
        if peer_session.0 == 0 {
            // RFC 2661 §4.4.3: the Assigned Session ID is non-zero; 0 in a
            // header means the tunnel itself, so no call can be addressed
            // with it. Refuse with CDN Result Code 2, Error Code 5 ("The
            // Session ID is invalid in this context", §4.4.2).
            let v = Violation::ZeroSessionId(call_type.request_type());
            self.count_bad(call_type.request_type());
            let (result, error) = v.cdn();
            self.refuse_call(now, rng, peer_session, result, error, &v.to_string());
            return;
        }
        let allowed = match call_type {
            CallType::LnsIncoming => self.config.accept_lns_calls,
            _ => self.config.accept_lac_calls,
        };
        if !allowed {
            self.refuse_call(
                now,
                rng,
                peer_session,
                CdnResult::ADMINISTRATIVE,
                None,
                &format!("{call_type} calls not accepted on this tunnel"),
            );
            return;
        }
        if self.by_peer_session.contains_key(&peer_session)
            || self.pending_calls.contains_key(&peer_session)
        {
            // RFC 2661 §4.4.4: the peer already uses this id for a call of ours.
            self.count_bad(call_type.request_type());
            self.refuse_call(
                now,
                rng,
                peer_session,
                CdnResult::GENERAL_ERROR,
                Some(ErrorCode::INVALID_SESSION_ID),
                "Assigned Session ID already in use in this tunnel",
            );
            return;
        }
        // One of our ids is held back for each pending call, so that an
        // accepted call always gets one.
        if self.session_ids.len() + self.pending_calls.len() >= usize::from(u16::MAX) {
            self.refuse_call(
                now,
                rng,
                peer_session,
                CdnResult::NO_FACILITIES_TEMPORARY,
                Some(ErrorCode::INSUFFICIENT_RESOURCES),
                "no free session id in this tunnel",
            );
            return;
        }
        let deadline = now + self.config.session_establish_timeout;
        let key = self.next_call_key;
        self.next_call_key += 1;
        self.pending_calls
            .insert(peer_session, PendingCall { key, deadline });
        self.pending_deadlines.insert((deadline, peer_session));
        self.call_reported = true;
        tracing::debug!(tunnel = %self.id, peer_session = %peer_session, %call_type,
            "new call: asking the driver");
        out.push_back(Output::IncomingCall(IncomingCall {
            tunnel: self.id,
            incarnation: self.incarnation,
            key,
            call_type,
            peer_session,
            serial,
            info,
        }));
    }

    /// The driver's decision on a pending call: `Ok(())` accepts it (ICRP,
    /// or OCRP then OCCN for an outgoing call, RFC 2661 §7.4.2, §7.5.1) and
    /// returns our new session id; a refusal answers with a CDN carrying
    /// its codes and text. Errors when the call is not pending (any more).
    pub(crate) fn answer_call(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call: IncomingCall,
        decision: Result<(), CallRefusal>,
        out: &mut VecDeque<Output>,
    ) -> Result<Option<SessionId>, IncomingCallError> {
        let peer_session = call.peer_session;
        let pending = match self.pending_calls.get(&peer_session) {
            Some(&p) if p.key == call.key && call.incarnation == self.incarnation => p,
            _ => return Err(IncomingCallError::NotPending),
        };
        self.pending_calls.remove(&peer_session);
        self.pending_deadlines
            .remove(&(pending.deadline, peer_session));
        let answer = self.answer_pending(now, rng, call, pending, decision, out);
        self.after_input(out);
        answer
    }

    fn answer_pending(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        call: IncomingCall,
        pending: PendingCall,
        decision: Result<(), CallRefusal>,
        out: &mut VecDeque<Output>,
    ) -> Result<Option<SessionId>, IncomingCallError> {
        let IncomingCall {
            call_type,
            peer_session,
            serial,
            info,
            ..
        } = call;
        if let Err(r) = decision {
            self.refuse_call(
                now,
                rng,
                peer_session,
                CdnResult(r.result),
                r.error.map(ErrorCode),
                &r.text,
            );
            return Ok(None);
        }
        let Some(id) = self.alloc_session_id(rng) else {
            // Not expected: an id is held back for every pending call.
            self.refuse_call(
                now,
                rng,
                peer_session,
                CdnResult::NO_FACILITIES_TEMPORARY,
                Some(ErrorCode::INSUFFICIENT_RESOURCES),
                "no free session id in this tunnel",
            );
            return Err(IncomingCallError::IdsExhausted);
        };
        let session = Session {
            id,
            peer_id: peer_session,
            call_type,
            state: SessionState::WaitConnect,
            serial,
            sequencing: false,
            setup_deadline: Some(pending.deadline),
            params: default_call_params(),
            peer_info: Some(Box::new(info)),
        };
        self.insert_session(session);
        match call_type {
            CallType::LnsIncoming => {
                self.send(
                    now,
                    rng,
                    peer_session,
                    Message::Icrp(Icrp {
                        assigned_session_id: id,
                        other: Vec::new(),
                    }),
                );
            }
            _ => {
                // LAC outgoing: there is no real dial-out to wait for, so the
                // call connects at once (OCRP then OCCN, RFC 2661 §7.5.1).
                self.send(
                    now,
                    rng,
                    peer_session,
                    Message::Ocrp(Ocrp {
                        assigned_session_id: id,
                        physical_channel_id: None,
                        other: Vec::new(),
                    }),
                );
                let occn = Self::connect_message(&CallParams::default(), true);
                self.send(now, rng, peer_session, occn);
                self.session_up(id, out);
            }
        }
        Ok(Some(id))
    }

    /// Remove a call locally without telling the peer (tunnel going away or peer sent CDN).
    fn drop_session(&mut self, id: SessionId, reason: CloseReason, out: &mut VecDeque<Output>) {
        let Some(s) = self.remove_session(id) else {
            return;
        };
        if matches!(s.state, SessionState::Established { .. }) {
            out.push_back(Output::Action(Action::DeleteSession {
                tunnel: self.id,
                session: id,
            }));
        }
        out.push_back(Output::Event(Event::SessionDown {
            tunnel: self.id,
            session: id,
            reason,
        }));
    }

    /// Clear a call with CDN (RFC 2661 §5.4 / §6.12) carrying `result`, and
    /// report it down with `reason`.
    fn clear_session_with(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        id: SessionId,
        result: ResultCode,
        reason: CloseReason,
        out: &mut VecDeque<Output>,
    ) {
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        let peer = s.peer_id;
        if s.state != SessionState::WaitTunnel {
            let cdn = Cdn {
                result_code: result,
                assigned_session_id: id,
                q931_cause_code: None,
                other: Vec::new(),
            };
            self.send(now, rng, peer, Message::Cdn(cdn));
        }
        self.drop_session(id, reason, out);
    }

    /// Clear a call locally (administrator, pppd, tunnel closing) with CDN.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn clear_session(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        id: SessionId,
        result: CdnResult,
        error: Option<u16>,
        message: String,
        out: &mut VecDeque<Output>,
    ) {
        let reason = CloseReason::Local {
            result: result.0,
            error,
            message: Some(message.clone()),
        };
        self.clear_session_with(
            now,
            rng,
            id,
            result_code(result.0, error, Some(message.into_bytes())),
            reason,
            out,
        );
    }

    /// Clear a call after the peer violated the protocol in a call message.
    fn clear_session_violation(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        id: SessionId,
        violation: Violation,
        out: &mut VecDeque<Output>,
    ) {
        let (result, error) = violation.cdn();
        tracing::warn!(tunnel = %self.id, session = %id, "{violation}: sending CDN result {}", result.0);
        let rc = result_code(
            result.0,
            error.map(|e| e.0),
            Some(violation.to_string().into_bytes()),
        );
        let reason = CloseReason::ProtocolError {
            result: result.0,
            error: error.map(|e| e.0),
            violation,
        };
        self.clear_session_with(now, rng, id, rc, reason, out);
    }

    /// The driver's report on a kernel tunnel.
    pub(crate) fn tunnel_created(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        result: Result<(), String>,
        out: &mut VecDeque<Output>,
    ) {
        if self.kernel != Some(KernelState::Pending) {
            return;
        }
        match result {
            Ok(()) => self.kernel = Some(KernelState::Created),
            Err(e) => {
                self.kernel = None;
                let reason = CloseReason::DataPlane(e.clone());
                self.close(
                    now,
                    rng,
                    result_code(
                        StopCcnResult::GENERAL_ERROR.0,
                        Some(ErrorCode::INSUFFICIENT_RESOURCES.0),
                        Some(e.into_bytes()),
                    ),
                    reason,
                    true,
                    out,
                );
            }
        }
        self.after_input(out);
    }

    /// The driver's report on a kernel session.
    pub(crate) fn session_created(
        &mut self,
        now: Instant,
        rng: &mut dyn RngCore,
        id: SessionId,
        result: Result<(), String>,
        out: &mut VecDeque<Output>,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.state
            != (SessionState::Established {
                kernel: KernelState::Pending,
            })
        {
            return;
        }
        match result {
            Ok(()) => {
                s.state = SessionState::Established {
                    kernel: KernelState::Created,
                };
                out.push_back(Output::Event(Event::SessionUp {
                    tunnel: self.id,
                    session: id,
                    peer_session: s.peer_id,
                    call_type: s.call_type,
                }));
            }
            Err(e) => {
                let peer = s.peer_id;
                let cdn = Cdn {
                    result_code: result_code(
                        CdnResult::GENERAL_ERROR.0,
                        Some(ErrorCode::INSUFFICIENT_RESOURCES.0),
                        Some(e.clone().into_bytes()),
                    ),
                    assigned_session_id: id,
                    q931_cause_code: None,
                    other: Vec::new(),
                };
                self.send(now, rng, peer, Message::Cdn(cdn));
                self.drop_session(id, CloseReason::DataPlane(e), out);
            }
        }
        self.after_input(out);
    }
}
