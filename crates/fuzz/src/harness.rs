//! The bodies of the fuzz targets, one function per target.
//!
//! This file is shared: `crates/fuzz` compiles it as `l2tp_fuzz::harness`
//! for the cargo-fuzz targets, and `crates/l2tp-proto/tests/fuzz_regressions.rs`
//! includes it with `#[path]` so stable `cargo test` replays the regression
//! corpus through the very same code. It may therefore only use `std`,
//! `l2tp_proto` and `rand` (0.9, the `rand_core` 0.9 of `l2tp-proto`), and
//! must not refer to `crate::`.
//!
//! Every function panics (and so makes libFuzzer report a crash) when
//! `l2tp-proto` panics or breaks one of the properties checked here;
//! malformed input by itself is never a failure.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use l2tp_proto::endpoint::{Endpoint, EndpointCounters, IncomingCall, IncomingCallError};
use l2tp_proto::event::{
    Action, ActionResult, AuthMode, Command, CommandOutcome, Event, Output, Transmit, TunnelConfig,
};
use l2tp_proto::session::{CallParams, CallType};
use l2tp_proto::tunnel::CallRefusal;
use l2tp_proto::wire::{
    self, AttributeType, Avp, AvpValue, ControlMessage, EncodeError, Message, MessageType,
    SessionId, TunnelId, hidden,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The tunnel secret of the `hidden` target, and of the `endpoint` target
/// when its configuration byte asks for one. It is the secret of the xl2tpd
/// captures in `crates/l2tp-proto/tests/vectors/xl2tpd`.
pub const SECRET: &[u8] = b"l2tp-test-secret";

// ---------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------

/// Target `decode`: the input is one datagram.
///
/// [`wire::decode_header`], [`ControlMessage::decode`] without a secret and,
/// when that succeeds, [`Message::from_control`]. Checks that the header
/// error is the message error, that a message decoded without a secret
/// always re-encodes and decodes back to itself, and that a typed message
/// survives `to_control` → encode → decode → `from_control`.
pub fn decode(data: &[u8]) {
    let header = wire::decode_header(data);
    let decoded = ControlMessage::decode(data, None);
    if let Err(e) = &header {
        assert_eq!(decoded.as_ref().err(), Some(e), "header error not reported");
    }
    if let Ok(msg) = decoded {
        assert!(header.is_ok());
        check_round_trip(&msg, None);
    }
}

/// Re-encodes a decoded message (hiding with `secret` when given) and checks
/// decode(encode(msg)) == msg, then the same for the typed [`Message`].
fn check_round_trip(msg: &ControlMessage, secret: Option<&[u8]>) {
    let mut rng = StdRng::seed_from_u64(0);
    let encoded = match secret {
        Some(s) => msg.encode(Some((s, &mut rng))),
        None => msg.encode(None),
    };
    match encoded {
        Ok(bytes) => {
            let again = ControlMessage::decode(&bytes, secret)
                .unwrap_or_else(|e| panic!("own encoding does not decode: {e}\n{msg:?}"));
            assert_eq!(&again, msg, "decode(encode(x)) != x");
        }
        // The decoder unhides a Message Type or Random Vector AVP with the
        // H bit; the encoder refuses to hide them (RFC 2661 §4.3). Nothing
        // else that decoded may fail to encode.
        Err(EncodeError::MustNotBeHidden { .. }) if secret.is_some() => {
            assert!(msg.avps.iter().any(|a| a.hidden
                && matches!(
                    a.value,
                    AvpValue::MessageType(_) | AvpValue::RandomVector(_)
                )));
        }
        Err(e) => panic!("decoded message does not re-encode: {e}\n{msg:?}"),
    }

    let Ok(typed) = Message::from_control(msg) else {
        return;
    };
    let _ = (typed.message_type(), typed.other(), msg.unknown_mandatory());
    // `other` keeps the H bits it was received with; without a secret such
    // a message legitimately does not encode.
    if let Ok(bytes) = typed.to_control(msg.header).encode(None) {
        let back = ControlMessage::decode(&bytes, None)
            .unwrap_or_else(|e| panic!("typed encoding does not decode: {e}\n{typed:?}"));
        assert_eq!(
            Message::from_control(&back).as_ref(),
            Ok(&typed),
            "from_control(to_control(m)) != m"
        );
    }
}

// ---------------------------------------------------------------------------
// hidden
// ---------------------------------------------------------------------------

/// Target `hidden`.
///
/// 1. The whole input as a datagram, decoded with [`SECRET`] (unhiding every
///    hidden AVP), then re-encoded hiding again (see [`check_round_trip`]);
///    decoding with and without the secret must agree on messages that have
///    no hidden AVP.
/// 2. The input split as `attribute (2) ‖ secret_len (1) ‖ rv_len (1) ‖
///    pad_len (1) ‖ secret ‖ random vector ‖ padding ‖ value` (lengths
///    modulo 64, slices cut short at the end of the input):
///    [`hidden::unhide`] of `value` must not panic and never return more
///    than `value.len() - 2` octets; [`hidden::hide`] then `unhide` must give
///    `value` back.
pub fn hidden(data: &[u8]) {
    match ControlMessage::decode(data, Some(SECRET)) {
        Ok(msg) => {
            if !msg.avps.iter().any(|a| a.hidden) {
                assert_eq!(
                    ControlMessage::decode(data, None).as_ref(),
                    Ok(&msg),
                    "the secret changed a message without hidden AVPs"
                );
            }
            check_round_trip(&msg, Some(SECRET));
        }
        Err(e) => {
            // Without hidden AVPs the secret is never used, so decoding
            // without it fails the same way.
            if let Ok(plain) = ControlMessage::decode(data, None) {
                panic!("decodes without the secret but not with it: {e}\n{plain:?}");
            }
        }
    }

    let mut rest = data;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    };
    let attribute = match take(2) {
        [a, b] => AttributeType(u16::from_be_bytes([*a, *b])),
        _ => return,
    };
    let lens = take(3);
    let len = |i: usize| lens.get(i).map_or(0, |&b| usize::from(b % 64));
    let (secret_len, rv_len, pad_len) = (len(0), len(1), len(2));
    let secret = take(secret_len);
    let rv = take(rv_len);
    let padding = take(pad_len);
    let value = take(usize::MAX);

    match hidden::unhide(attribute, secret, rv, value) {
        Ok(plain) => assert!(plain.len() + 2 <= value.len(), "unhide grew the value"),
        Err(hidden::UnhideError::TooShort { len }) => assert!(len < 2 && len == value.len()),
        Err(hidden::UnhideError::LengthInvalid {
            original_length,
            available,
        }) => {
            assert_eq!(available + 2, value.len());
            assert!(usize::from(original_length) > available);
        }
        Err(e) => panic!("unexpected unhide error {e}"),
    }

    match hidden::hide(attribute, secret, rv, value, padding) {
        Ok(h) => {
            assert_eq!(h.len(), 2 + value.len() + padding.len());
            let back = hidden::unhide(attribute, secret, rv, &h);
            assert_eq!(back.as_deref(), Ok(value), "unhide(hide(v)) != v");
        }
        Err(e) => assert!(value.len() > usize::from(u16::MAX), "hide refused: {e}"),
    }
}

// ---------------------------------------------------------------------------
// endpoint
// ---------------------------------------------------------------------------

/// Input format of the `endpoint` target.
///
/// ```text
/// input := config step*
/// config: u8, see the CFG_* bits
/// step   := op payload
///   op & 3 == 0 or 3 : datagram from peer A (0) or peer B (3);
///                      payload: u16 BE length, then that many octets
///                      (fewer if the input ends); DG_* bits patch its header
///   op & 3 == 1      : time; payload: u16 BE n; advance the clock by
///                      n × 8 ms, or with TIME_JUMP to the endpoint's next
///                      deadline; then `handle_timeout`
///   op & 3 == 2      : command; payload: u8 c, c % 6 selects OpenTunnel to
///                      peer A, PlaceCall LacIncoming / LnsOutgoing in the
///                      newest tunnel, CloseSession of the newest session,
///                      CloseTunnel of the newest tunnel, Shutdown
///   op & FAIL_ACTIONS: the data-plane actions this step causes fail
///                      (otherwise they succeed)
/// ```
///
/// Patching lets short inputs (such as the xl2tpd captures in the seed
/// corpus) reach deep states although our tunnel and session ids come from
/// the seeded RNG and sequence numbers depend on what we sent.
pub mod format {
    /// Configuration: the tunnel secret is [`SECRET`](super::SECRET).
    pub const CFG_SECRET: u8 = 0x01;
    /// Configuration: hide AVPs (with a secret).
    pub const CFG_HIDE_AVPS: u8 = 0x02;
    /// Configuration: require Challenge authentication.
    pub const CFG_CHALLENGE: u8 = 0x04;
    /// Configuration: send a Tie Breaker in our SCCRQ.
    pub const CFG_TIEBREAKER: u8 = 0x08;
    /// Configuration: at most one session per tunnel.
    pub const CFG_ONE_SESSION: u8 = 0x10;
    /// Configuration: no HELLOs.
    pub const CFG_NO_HELLO: u8 = 0x20;
    /// Configuration: the admission decision refuses every SCCRQ.
    pub const CFG_REFUSE: u8 = 0x40;
    /// Configuration: the peer's new calls (ICRQ / OCRQ) are left undecided,
    /// to be refused by the endpoint at their set-up deadline; otherwise
    /// they are decided as `l2tpd` does (accepted up to the tunnel's
    /// `max_sessions`, then CDN result 4).
    pub const CFG_CALLS_UNDECIDED: u8 = 0x80;

    /// Step kind: datagram from peer A.
    pub const OP_DATAGRAM: u8 = 0;
    /// Step kind: advance the clock.
    pub const OP_TIME: u8 = 1;
    /// Step kind: a command.
    pub const OP_COMMAND: u8 = 2;
    /// Step kind: datagram from peer B.
    pub const OP_DATAGRAM_B: u8 = 3;

    /// Datagram: overwrite Tunnel ID with our newest tunnel id.
    pub const DG_TUNNEL: u8 = 0x04;
    /// Datagram: overwrite Session ID with our newest session id.
    pub const DG_SESSION: u8 = 0x08;
    /// Datagram: overwrite Ns / Nr with what the addressed tunnel expects
    /// next / has sent so far.
    pub const DG_SEQ: u8 = 0x10;
    /// Datagram: overwrite the Length field with the datagram's length.
    pub const DG_LENGTH: u8 = 0x20;
    /// Datagram: use the oldest instead of the newest tunnel / session id.
    pub const DG_OLDEST: u8 = 0x80;
    /// Every patch.
    pub const DG_ALL: u8 = DG_TUNNEL | DG_SESSION | DG_SEQ | DG_LENGTH;

    /// Time: jump to the endpoint's next deadline.
    pub const TIME_JUMP: u8 = 0x04;

    /// Any step: the actions it causes fail.
    pub const FAIL_ACTIONS: u8 = 0x40;

    /// Command selectors.
    pub const CMD_OPEN_TUNNEL: u8 = 0;
    /// Place an incoming call (we are LAC).
    pub const CMD_LAC_INCOMING: u8 = 1;
    /// Place an outgoing call (we are LNS).
    pub const CMD_LNS_OUTGOING: u8 = 2;
    /// Close the newest session.
    pub const CMD_CLOSE_SESSION: u8 = 3;
    /// Close the newest tunnel.
    pub const CMD_CLOSE_TUNNEL: u8 = 4;
    /// Shut down.
    pub const CMD_SHUTDOWN: u8 = 5;

    /// Builds an `endpoint` input.
    #[derive(Debug, Clone)]
    pub struct Input(pub Vec<u8>);

    impl Input {
        /// Starts an input with configuration byte `config`.
        pub fn new(config: u8) -> Self {
            Self(vec![config])
        }
        /// A datagram step; `op` holds the kind and flags.
        pub fn datagram(mut self, op: u8, bytes: &[u8]) -> Self {
            let len = u16::try_from(bytes.len()).expect("datagram too long");
            self.0.push(op);
            self.0.extend_from_slice(&len.to_be_bytes());
            self.0.extend_from_slice(bytes);
            self
        }
        /// A time step advancing by `n` × 8 ms.
        pub fn time(mut self, n: u16) -> Self {
            self.0.push(OP_TIME);
            self.0.extend_from_slice(&n.to_be_bytes());
            self
        }
        /// A time step jumping to the next deadline.
        pub fn jump(mut self) -> Self {
            self.0.push(OP_TIME | TIME_JUMP);
            self.0.extend_from_slice(&[0, 0]);
            self
        }
        /// A command step.
        pub fn command(mut self, c: u8) -> Self {
            self.0.extend_from_slice(&[OP_COMMAND, c]);
            self
        }
    }
}

use format::*;

/// Peer A's address (the peer of tunnels we open).
pub const PEER_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1701);
/// Peer B's address.
pub const PEER_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000);

/// What an `endpoint` run produced (for the regression tests; the fuzz
/// target ignores it).
#[derive(Debug, Clone, Default)]
pub struct EndpointRun {
    /// Datagrams transmitted.
    pub transmits: usize,
    /// Events, in order.
    pub events: Vec<Event>,
    /// Actions answered (with success or failure).
    pub actions: usize,
    /// Endpoint-wide counters at the end.
    pub counters: EndpointCounters,
    /// Sum of the `bad_messages` counters of the tunnels left at the end.
    pub bad_messages: u64,
}

impl EndpointRun {
    /// Number of events matching `f`.
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }
}

fn config_from(byte: u8) -> TunnelConfig {
    let mut c = TunnelConfig::default();
    if byte & CFG_SECRET != 0 {
        c.secret = Some(SECRET.to_vec());
    }
    c.hide_avps = byte & CFG_HIDE_AVPS != 0;
    if byte & CFG_CHALLENGE != 0 {
        c.auth_mode = AuthMode::Challenge;
    }
    c.use_tiebreaker = byte & CFG_TIEBREAKER != 0;
    if byte & CFG_ONE_SESSION != 0 {
        c.max_sessions = 1;
    }
    if byte & CFG_NO_HELLO != 0 {
        c.hello_interval = None;
    }
    c
}

struct Driver {
    ep: Endpoint,
    /// The admission decision on every incoming tunnel: accept with this
    /// configuration, or (`None`) refuse with StopCCN result 4.
    accept_with: Option<TunnelConfig>,
    /// Leave the peer's new calls undecided ([`format::CFG_CALLS_UNDECIDED`]).
    calls_undecided: bool,
    rng: StdRng,
    base: Instant,
    offset: Duration,
    secret: Option<Vec<u8>>,
    /// Our tunnel ids and (tunnel, session) ids, in order of appearance.
    tunnels: Vec<TunnelId>,
    sessions: Vec<(TunnelId, SessionId)>,
    seen: HashSet<(u16, u16)>,
    run: EndpointRun,
}

impl Driver {
    fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// Drains the outputs, answering actions, until the endpoint is quiet.
    fn drain(&mut self, fail: bool) {
        loop {
            let mut results = Vec::new();
            while let Some(out) = self.ep.poll_output() {
                match out {
                    Output::Transmit(t) => self.check_transmit(&t),
                    Output::Event(e) => self.run.events.push(e),
                    Output::Incoming(i) => {
                        let now = self.now();
                        // Refusals and repeated decisions are answered by the endpoint.
                        let _ = match &self.accept_with {
                            Some(c) => self.ep.accept(now, &mut self.rng, i, c.clone()),
                            None => self.ep.refuse(
                                now,
                                &mut self.rng,
                                i,
                                l2tp_proto::tunnel::Refusal::not_authorized(
                                    "tunnel not accepted from this peer",
                                ),
                            ),
                        };
                    }
                    Output::IncomingCall(c) => {
                        if !self.calls_undecided {
                            self.decide_call(c);
                        }
                    }
                    Output::Action(Action::CreateTunnel { tunnel, .. }) => {
                        results.push(ActionResult::Tunnel {
                            tunnel,
                            result: if fail {
                                Err("fuzz: EIO".into())
                            } else {
                                Ok(())
                            },
                        });
                    }
                    Output::Action(Action::CreateSession {
                        tunnel, session, ..
                    }) => {
                        self.note_session(tunnel, session);
                        results.push(ActionResult::Session {
                            tunnel,
                            session,
                            result: if fail {
                                Err("fuzz: EIO".into())
                            } else {
                                Ok(())
                            },
                        });
                    }
                    Output::Action(Action::DeleteTunnel { .. } | Action::DeleteSession { .. }) => {}
                }
            }
            if results.is_empty() {
                break;
            }
            self.run.actions += results.len();
            let now = self.now();
            for r in results {
                self.ep.handle_action_result(now, &mut self.rng, r);
            }
        }
    }

    /// Decides a peer's new call as `l2tpd` does with no system limit: the
    /// tunnel's `max_sessions` reached is CDN result 4, else accepted.
    /// Deciding a call no longer pending must fail without a panic.
    fn decide_call(&mut self, c: IncomingCall) {
        let now = self.now();
        let full = self.ep.tunnel(c.tunnel()).is_some_and(|t| {
            t.config.max_sessions != 0 && t.session_count() >= t.config.max_sessions as usize
        });
        let again = c.clone();
        let first = if full {
            self.ep.refuse_call(
                now,
                &mut self.rng,
                c,
                CallRefusal::no_facilities("tunnel session limit reached"),
            )
        } else {
            self.ep.accept_call(now, &mut self.rng, c).map(drop)
        };
        if first.is_ok() {
            let twice = self.ep.accept_call(now, &mut self.rng, again);
            assert_eq!(
                twice,
                Err(IncomingCallError::NotPending),
                "a call decided twice"
            );
        }
    }

    /// Everything we send must be a well-formed control message. Learns
    /// our tunnel id and, from ICRQ / ICRP / OCRQ / OCRP, our session id.
    fn check_transmit(&mut self, t: &Transmit) {
        self.run.transmits += 1;
        let msg = ControlMessage::decode(&t.data, self.secret.as_deref())
            .unwrap_or_else(|e| panic!("we sent an undecodable message: {e}\n{:02x?}", t.data));
        self.note_tunnel(t.tunnel);
        if matches!(
            msg.message_type(),
            Some(MessageType::ICRQ | MessageType::ICRP | MessageType::OCRQ | MessageType::OCRP)
        ) && let Some(Avp {
            value: AvpValue::AssignedSessionId(s),
            ..
        }) = msg.find(AttributeType::ASSIGNED_SESSION_ID)
        {
            self.note_session(t.tunnel, *s);
        }
        if !msg.is_zlb()
            && let Err(e) = Message::from_control(&msg)
        {
            panic!("we sent a message that breaks RFC 2661 §6: {e}\n{msg:?}");
        }
    }

    fn note_tunnel(&mut self, id: TunnelId) {
        // Session 0 stands for the tunnel itself.
        if self.seen.insert((id.0, 0)) {
            self.tunnels.push(id);
        }
    }

    fn note_session(&mut self, tunnel: TunnelId, session: SessionId) {
        self.note_tunnel(tunnel);
        if session.0 != 0 && self.seen.insert((tunnel.0, session.0)) {
            self.sessions.push((tunnel, session));
        }
    }

    fn pick<T: Copy>(list: &[T], oldest: bool) -> Option<T> {
        if oldest { list.first() } else { list.last() }.copied()
    }

    fn datagram(&mut self, op: u8, mut data: Vec<u8>) {
        let from = if op & 3 == OP_DATAGRAM_B {
            PEER_B
        } else {
            PEER_A
        };
        patch(&mut data, op, self);
        let now = self.now();
        self.ep.handle_datagram(now, &mut self.rng, from, &data);
    }

    fn timeout(&mut self, op: u8, n: u16) {
        let step = Duration::from_millis(8 * u64::from(n));
        match self.ep.poll_timeout() {
            Some(deadline) if op & TIME_JUMP != 0 => {
                self.offset = self
                    .offset
                    .max(deadline.saturating_duration_since(self.base));
            }
            _ => self.offset += step,
        }
        let now = self.now();
        // A deadline at or before `now` that survives handle_timeout would
        // make a driver spin; allow a few rounds of re-arming, not more.
        for round in 0.. {
            self.ep.handle_timeout(now, &mut self.rng);
            self.drain(op & FAIL_ACTIONS != 0);
            match self.ep.poll_timeout() {
                Some(d) if d <= now => assert!(round < 100, "timer at {d:?} <= now never clears"),
                _ => break,
            }
        }
    }

    fn command(&mut self, c: u8) {
        let now = self.now();
        let tunnel = Self::pick(&self.tunnels, false).unwrap_or(TunnelId(1));
        let cmd = match c % 6 {
            CMD_OPEN_TUNNEL => Command::OpenTunnel {
                peer: PEER_A,
                config: Box::new(config_from_secret(self.secret.clone(), c)),
            },
            CMD_LAC_INCOMING => Command::PlaceCall {
                tunnel,
                call_type: CallType::LacIncoming,
                params: std::sync::Arc::default(),
            },
            CMD_LNS_OUTGOING => Command::PlaceCall {
                tunnel,
                call_type: CallType::LnsOutgoing,
                params: std::sync::Arc::new(CallParams {
                    called_number: Some(b"5551234".to_vec()),
                    ..CallParams::default()
                }),
            },
            CMD_CLOSE_SESSION => {
                let (tunnel, session) =
                    Self::pick(&self.sessions, false).unwrap_or((tunnel, SessionId(1)));
                Command::CloseSession {
                    tunnel,
                    session,
                    result: 3,
                    error: None,
                    message: Some("fuzz".into()),
                }
            }
            CMD_CLOSE_TUNNEL => Command::CloseTunnel {
                tunnel,
                result: 1,
                message: None,
            },
            _ => Command::Shutdown,
        };
        match self.ep.handle_command(now, &mut self.rng, cmd) {
            Ok(CommandOutcome::Tunnel(id)) => self.note_tunnel(id),
            Ok(CommandOutcome::Session(id)) => self.note_session(tunnel, id),
            _ => {}
        }
    }
}

/// The configuration of tunnels we open: the same secret as incoming ones,
/// the other options from the command byte's high bits.
fn config_from_secret(secret: Option<Vec<u8>>, c: u8) -> TunnelConfig {
    let mut config = config_from(c & !CFG_SECRET);
    config.secret = secret;
    config
}

/// Applies the DG_* patches of `op` to a datagram's header, in place.
fn patch(data: &mut [u8], op: u8, d: &Driver) {
    let Some(&[f0, f1]) = data.get(..2) else {
        return;
    };
    let flags = u16::from_be_bytes([f0, f1]);
    let has_len = flags & 0x4000 != 0;
    let has_seq = flags & 0x0800 != 0;
    let tid_at = if has_len { 4 } else { 2 };
    let sid_at = tid_at + 2;
    let ns_at = sid_at + 2;
    let len = data.len();
    let mut put = |at: usize, v: u16| {
        if let Some(slot) = data.get_mut(at..at + 2) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
    };
    let oldest = op & DG_OLDEST != 0;
    if op & DG_TUNNEL != 0
        && let Some(t) = Driver::pick(&d.tunnels, oldest)
    {
        put(tid_at, t.0);
    }
    if op & DG_SESSION != 0
        && let Some((_, s)) = Driver::pick(&d.sessions, oldest)
    {
        put(sid_at, s.0);
    }
    if op & DG_LENGTH != 0 && has_len {
        put(2, u16::try_from(len).unwrap_or(u16::MAX));
    }
    if op & DG_SEQ != 0 && has_seq {
        let tid = data
            .get(tid_at..tid_at + 2)
            .map(|b| TunnelId(u16::from_be_bytes([b[0], b[1]])));
        if let Some(t) = tid.and_then(|tid| d.ep.tunnel(tid)) {
            let (ns, nr) = (t.channel.nr(), t.channel.ns());
            if let Some(slot) = data.get_mut(ns_at..ns_at + 4) {
                slot[..2].copy_from_slice(&ns.to_be_bytes());
                slot[2..].copy_from_slice(&nr.to_be_bytes());
            }
        }
    }
}

/// Target `endpoint`: an [`Endpoint`] that accepts every incoming tunnel
/// (unless [`format::CFG_REFUSE`]) and decides the peer's calls as `l2tpd`
/// does (unless [`format::CFG_CALLS_UNDECIDED`]), fed the steps of [`format`] at virtual instants (one `Instant::now()` as
/// the base, offsets after that), with a seeded RNG. After every step the
/// outputs are drained and `CreateTunnel` / `CreateSession` answered.
/// Checks: no panic; every transmitted message decodes (with the tunnel
/// secret) and, unless a ZLB, is a valid RFC 2661 §6 message; a timer that
/// is due does not stay due after `handle_timeout`.
pub fn endpoint(data: &[u8]) -> EndpointRun {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return EndpointRun::default();
    };
    let config = config_from(cfg);
    let refuse = cfg & CFG_REFUSE != 0;
    let mut d = Driver {
        ep: Endpoint::new(),
        accept_with: (!refuse).then(|| config.clone()),
        calls_undecided: cfg & CFG_CALLS_UNDECIDED != 0,
        rng: StdRng::seed_from_u64(0),
        base: Instant::now(),
        offset: Duration::ZERO,
        secret: config.secret.clone(),
        tunnels: Vec::new(),
        sessions: Vec::new(),
        seen: HashSet::new(),
        run: EndpointRun::default(),
    };
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    };
    while let [op] = *take(1) {
        match op & 3 {
            OP_TIME => {
                let n = match take(2) {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    [a] => u16::from(*a),
                    _ => 0,
                };
                d.timeout(op, n);
            }
            OP_COMMAND => {
                let c = take(1).first().copied().unwrap_or(0);
                d.command(c);
                d.drain(op & FAIL_ACTIONS != 0);
            }
            _ => {
                let len = match take(2) {
                    [a, b] => usize::from(u16::from_be_bytes([*a, *b])),
                    _ => 0,
                };
                let bytes = take(len).to_vec();
                d.datagram(op, bytes);
                d.drain(op & FAIL_ACTIONS != 0);
            }
        }
    }
    d.run.counters = d.ep.counters().clone();
    d.run.bad_messages = d.ep.tunnels().map(|t| t.counters.bad_messages).sum();
    d.run
}
