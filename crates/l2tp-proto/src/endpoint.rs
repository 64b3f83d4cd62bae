//! Many tunnels behind one driver-facing, sans-IO API.
//!
//! The driver feeds four kinds of input: received datagrams
//! ([`Endpoint::handle_datagram`]), expired timers ([`Endpoint::handle_timeout`]),
//! commands ([`Endpoint::handle_command`]) and results of data-plane actions
//! ([`Endpoint::handle_action_result`]). After each input it drains
//! [`Endpoint::poll_output`] and sleeps until [`Endpoint::poll_timeout`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;

use crate::event::{
    ActionResult, CloseReason, Command, CommandError, CommandOutcome, Output, TunnelConfig,
};
use crate::session::CallType;
use crate::tunnel::{Tunnel, alloc_id};
use crate::wire::{
    ControlMessage, Message, MessageType, PacketKind, StopCcnResult, TunnelId, decode_header,
};

/// Decides whether to accept an incoming tunnel (an SCCRQ from `peer` whose Host
/// Name AVP is `host_name`) and with which parameters; `None` refuses it with
/// StopCCN result 4 (not authorized).
pub type IncomingPolicy = Box<dyn FnMut(SocketAddr, &[u8]) -> Option<TunnelConfig> + Send>;

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
    /// Incoming tunnels refused by policy.
    pub tunnels_refused: u64,
    /// Tunnels torn down because the peer stopped answering.
    pub tunnels_lost: u64,
    /// Tunnel authentication failures, over all tunnels ever (RFC 2661 §5.1.1).
    pub auth_fails: u64,
    /// Malformed or out-of-state messages, over all tunnels ever.
    pub illegal_messages: u64,
    /// Control message retransmissions, over all tunnels ever.
    pub retransmits: u64,
    /// Crossed SCCRQs resolved by the Tie Breaker in our favour (RFC 2661 §4.4.3).
    pub tie_breakers_won: u64,
    /// Crossed SCCRQs where our tunnel was discarded.
    pub tie_breakers_lost: u64,
}

/// The protocol engine: all tunnels of one daemon.
pub struct Endpoint {
    /// Ordered, so that timers fire and outputs come out in the same order on every run.
    tunnels: BTreeMap<TunnelId, Tunnel>,
    /// Responder tunnels by (peer address, peer's tunnel id), to recognise
    /// retransmitted SCCRQs.
    by_peer: HashMap<(SocketAddr, TunnelId), TunnelId>,
    policy: Option<IncomingPolicy>,
    out: VecDeque<Output>,
    shutting_down: bool,
    counters: EndpointCounters,
    /// Totals carried over from freed tunnels.
    closed: EndpointCounters,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("tunnels", &self.tunnels.len())
            .field("shutting_down", &self.shutting_down)
            .finish()
    }
}

impl Endpoint {
    /// A new endpoint. `policy`: how to treat incoming SCCRQs (`None`: refuse all,
    /// LAC-only operation).
    pub fn new(policy: Option<IncomingPolicy>) -> Self {
        Endpoint {
            tunnels: BTreeMap::new(),
            by_peer: HashMap::new(),
            policy,
            out: VecDeque::new(),
            shutting_down: false,
            counters: EndpointCounters::default(),
            closed: EndpointCounters::default(),
        }
    }

    /// Replace the incoming-tunnel policy (configuration reload). Existing tunnels keep theirs.
    pub fn set_policy(&mut self, policy: Option<IncomingPolicy>) {
        self.policy = policy;
    }

    /// Endpoint-wide counters; the per-tunnel totals include freed and live tunnels.
    pub fn counters(&self) -> EndpointCounters {
        let mut c = self.counters.clone();
        c.auth_fails = self.closed.auth_fails
            + self
                .tunnels
                .values()
                .map(|t| t.counters.auth_fails)
                .sum::<u64>();
        c.illegal_messages = self.closed.illegal_messages
            + self
                .tunnels
                .values()
                .map(|t| t.counters.illegal_messages)
                .sum::<u64>();
        c.retransmits = self.closed.retransmits
            + self
                .tunnels
                .values()
                .map(|t| t.channel.counters().retransmits)
                .sum::<u64>();
        c
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

    /// Earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tunnels.values().filter_map(Tunnel::poll_timeout).min()
    }

    fn reap(&mut self, id: TunnelId) {
        if self.tunnels.get(&id).is_some_and(Tunnel::is_freed) {
            if let Some(t) = self.tunnels.remove(&id) {
                self.by_peer.remove(&(t.peer, t.peer_id));
                // Keep the freed tunnel's counts in the system totals.
                self.closed.auth_fails += t.counters.auth_fails;
                self.closed.illegal_messages += t.counters.illegal_messages;
                self.closed.retransmits += t.channel.counters().retransmits;
            }
        }
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
        let header = match decode_header(data) {
            Ok((h, _)) => h,
            Err(e) => {
                self.counters.bad_rcvd_frames += 1;
                if matches!(e, crate::wire::DecodeError::WrongVersion(_)) {
                    self.counters.wrong_version_frames += 1;
                }
                tracing::debug!(%from, "dropping undecodable datagram: {e}");
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
            tracing::debug!(%from, "control message for unknown tunnel {tid}");
            return;
        };
        if t.peer != from {
            self.counters.mismatched_peer_discards += 1;
            tracing::debug!(%from, tunnel = %tid, "control message from {from}, expected {}", t.peer);
            return;
        }
        let msg = match ControlMessage::decode(data, t.config.secret.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                t.counters.bad_messages += 1;
                tracing::info!(tunnel = %tid, %from, "dropping malformed control message: {e}");
                return;
            }
        };
        t.receive(now, rng, msg, &mut self.out);
        self.reap(tid);
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
                tracing::info!(%from, "dropping malformed message for tunnel 0: {e}");
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
        }
        if msg.message_type() != Some(MessageType::SCCRQ) {
            // Only SCCRQ may be sent to tunnel 0 (RFC 2661 §3.1); anything else
            // for a tunnel we cannot identify is dropped.
            self.counters.no_matching_tunnel_id_discards += 1;
            return;
        }
        let Some(peer_tunnel) = msg.avps.iter().find_map(|a| match a.value {
            crate::wire::AvpValue::AssignedTunnelId(id) if id.0 != 0 => Some(id),
            _ => None,
        }) else {
            // Nobody to answer: an SCCRQ must name its tunnel (RFC 2661 §6.1).
            self.counters.bad_rcvd_frames += 1;
            tracing::info!(%from, "dropping SCCRQ without an Assigned Tunnel ID");
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
        let sccrq = match Message::from_control(&msg) {
            Ok(Message::Sccrq(m)) => m,
            _ => {
                // Breaks RFC 2661 §4.1 / §6.1: a short-lived tunnel answers it with
                // StopCCN carrying the reason, then goes away.
                let Some(id) =
                    alloc_id(rng, |id| self.tunnels.contains_key(&TunnelId(id))).map(TunnelId)
                else {
                    return;
                };
                let mut t = Tunnel::accept(id, from, TunnelConfig::default(), now, None);
                t.receive(now, rng, msg, &mut self.out);
                self.by_peer.insert((from, peer_tunnel), id);
                self.tunnels.insert(id, t);
                self.reap(id);
                return;
            }
        };
        // RFC 2661 §4.4.3: our SCCRQ to this peer crossed theirs.
        let mut adopted: Option<(TunnelId, TunnelConfig, Vec<crate::session::Session>)> = None;
        let crossed = self
            .tunnels
            .values()
            .find(|t| {
                t.initiator
                    && t.state == crate::tunnel::TunnelState::WaitCtlReply
                    && t.peer.ip() == from.ip()
            })
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
        let accepted = if let Some((_, config, _)) = &adopted {
            Some(config.clone())
        } else if self.shutting_down {
            None
        } else {
            self.policy.as_mut().and_then(|p| p(from, &sccrq.host_name))
        };
        let Some(id) = alloc_id(rng, |id| self.tunnels.contains_key(&TunnelId(id))).map(TunnelId)
        else {
            tracing::warn!(%from, "no free tunnel id for incoming SCCRQ");
            return;
        };
        let refusal = match (&accepted, self.shutting_down) {
            (Some(_), _) => None,
            (None, true) => Some("shutting down".to_string()),
            (None, false) => Some("tunnel not accepted from this peer".to_string()),
        };
        if refusal.is_some() {
            self.counters.tunnels_refused += 1;
        }
        let mut t = Tunnel::accept(id, from, accepted.unwrap_or_default(), now, refusal);
        tracing::info!(%from, tunnel = %id, peer_tunnel = %sccrq.assigned_tunnel_id,
            host_name = %String::from_utf8_lossy(&sccrq.host_name), "incoming SCCRQ");
        if let Some((old, _, calls)) = adopted {
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
        self.tunnels.insert(id, t);
        self.reap(id);
    }

    /// Fire every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn RngCore) {
        let due: Vec<TunnelId> = self
            .tunnels
            .iter()
            .filter(|(_, t)| t.poll_timeout().is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
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
                let id = alloc_id(rng, |id| self.tunnels.contains_key(&TunnelId(id)))
                    .map(TunnelId)
                    .ok_or(CommandError::IdsExhausted("tunnel"))?;
                let mut t = Tunnel::open(id, peer, *config, now, rng);
                t.flush(&mut self.out);
                self.tunnels.insert(id, t);
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
                    .place_call(now, rng, call_type, *params, &mut self.out)
                    .ok_or(CommandError::IdsExhausted("session"))?;
                Ok(CommandOutcome::Session(id))
            }
            Command::CloseSession {
                tunnel,
                session,
                result,
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
                    message.unwrap_or_else(|| "closed by administrator".into()),
                    &mut self.out,
                );
                t.flush(&mut self.out);
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
                Ok(CommandOutcome::Done)
            }
            Command::SetHelloInterval { tunnel, interval } => {
                let t = self
                    .tunnels
                    .get_mut(&tunnel)
                    .ok_or(CommandError::NoSuchTunnel(tunnel))?;
                t.config.hello_interval = interval;
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
        if t.send_call_notification(now, rng, session, msg, &mut self.out) {
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
