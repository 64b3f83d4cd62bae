//! A scripted peer for endpoint tests: it sends hand-built control messages
//! to one [`Endpoint`] acting as LNS, numbering them itself, and collects
//! what the endpoint sends back.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Instant;

use l2tp_proto::endpoint::{Endpoint, IncomingCall};
use l2tp_proto::event::{Output, TunnelConfig};
use l2tp_proto::tunnel::{CallRefusal, Refusal};
use l2tp_proto::wire::{
    AttributeType, Avp, AvpValue, ControlHeader, ControlMessage, FramingCaps, Icrq, Message,
    MessageType, ResultCode, Sccrq, SessionId, TunnelId,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub(crate) const PEER_TUNNEL: TunnelId = TunnelId(4242);
pub(crate) const PEER_SESSION: SessionId = SessionId(777);

pub(crate) struct Peer {
    pub ep: Endpoint,
    /// The fake driver's admission decision on every new tunnel: accept
    /// with this configuration, or (`None`) refuse with StopCCN result 4.
    pub accept_with: Option<TunnelConfig>,
    /// The fake driver's admission decision on every new call of the peer
    /// (an `Output::IncomingCall`): accept (`Ok`) or refuse with a CDN.
    /// `None` leaves every call undecided. Accepts all by default.
    pub decide_call: Option<CallPolicy>,
    pub rng: StdRng,
    pub now: Instant,
    pub from: SocketAddr,
    pub ns: u16,
    pub nr: u16,
    /// Our tunnel id at the endpoint, once SCCRP told us.
    pub their_tunnel: TunnelId,
}

/// A fake driver's decision on a peer's new call, given the endpoint as it
/// is when the call is reported.
pub(crate) type CallPolicy = Box<dyn FnMut(&Endpoint, &IncomingCall) -> Result<(), CallRefusal>>;

/// Accept every call.
pub(crate) fn accept_every_call() -> Option<CallPolicy> {
    Some(Box::new(|_, _| Ok(())))
}

/// The session limits as `l2tpd`'s admission decides them: `max_sessions`
/// over all tunnels (0: none), then the tunnel's own `max_sessions`, each
/// refused with CDN result 4.
pub(crate) fn session_limits(max_sessions: usize) -> Option<CallPolicy> {
    Some(Box::new(move |ep: &Endpoint, call: &IncomingCall| {
        if max_sessions != 0 && ep.session_count() >= max_sessions {
            return Err(CallRefusal::no_facilities("system session limit reached"));
        }
        match ep.tunnel(call.tunnel()) {
            Some(t)
                if t.config.max_sessions != 0
                    && t.session_count() >= t.config.max_sessions as usize =>
            {
                Err(CallRefusal::no_facilities("tunnel session limit reached"))
            }
            _ => Ok(()),
        }
    }))
}

pub(crate) fn unknown_avp(mandatory: bool) -> Avp {
    Avp {
        mandatory,
        hidden: false,
        value: AvpValue::Unknown {
            vendor_id: 0,
            attribute: AttributeType(99),
            value: vec![1, 2, 3],
        },
    }
}

pub(crate) fn sccrq() -> Message {
    Message::Sccrq(Sccrq {
        protocol_version: (1, 0),
        host_name: b"scripted".to_vec(),
        framing_capabilities: FramingCaps(3),
        assigned_tunnel_id: PEER_TUNNEL,
        bearer_capabilities: None,
        receive_window_size: Some(8),
        challenge: None,
        tie_breaker: None,
        firmware_revision: None,
        vendor_name: None,
        other: Vec::new(),
    })
}

pub(crate) fn icrq() -> Message {
    icrq_for(PEER_SESSION.0)
}

/// ICRQ for a call whose Assigned Session ID (the peer's) is `peer_session`.
pub(crate) fn icrq_for(peer_session: u16) -> Message {
    Message::Icrq(Icrq {
        assigned_session_id: SessionId(peer_session),
        call_serial_number: u32::from(peer_session),
        bearer_type: None,
        physical_channel_id: None,
        calling_number: None,
        called_number: None,
        sub_address: None,
        other: Vec::new(),
    })
}

/// A plain ICCN (64 kb/s, synchronous framing, no proxy AVPs).
pub(crate) fn iccn() -> Message {
    Message::Iccn(l2tp_proto::wire::Iccn {
        tx_connect_speed: 64000,
        framing_type: FramingCaps(1),
        initial_received_lcp_confreq: None,
        last_sent_lcp_confreq: None,
        last_received_lcp_confreq: None,
        proxy_authen_type: None,
        proxy_authen_name: None,
        proxy_authen_challenge: None,
        proxy_authen_id: None,
        proxy_authen_response: None,
        private_group_id: None,
        rx_connect_speed: None,
        sequencing_required: false,
        other: Vec::new(),
    })
}

impl Peer {
    pub(crate) fn new() -> Self {
        Self {
            ep: Endpoint::new(),
            accept_with: Some(TunnelConfig::default()),
            decide_call: accept_every_call(),
            rng: StdRng::seed_from_u64(7),
            now: Instant::now(),
            from: "192.0.2.1:1701".parse().unwrap(),
            ns: 0,
            nr: 0,
            their_tunnel: TunnelId(0),
        }
    }

    /// Send `msg` (plus `extra` AVPs) in sequence; returns the control messages the endpoint sent back.
    pub(crate) fn send(
        &mut self,
        session: SessionId,
        msg: &Message,
        extra: Vec<Avp>,
    ) -> Vec<ControlMessage> {
        let mut avps = msg.to_avps();
        avps.extend(extra);
        let cm = ControlMessage {
            header: ControlHeader {
                tunnel_id: self.their_tunnel,
                session_id: session,
                ns: self.ns,
                nr: self.nr,
            },
            avps,
        };
        self.ns = self.ns.wrapping_add(1);
        self.raw(&cm.encode(None).unwrap())
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> Vec<ControlMessage> {
        self.ep
            .handle_datagram(self.now, &mut self.rng, self.from, bytes);
        let mut held = self.decide();
        // Let the acknowledgement timer fire so that ZLBs show too.
        self.now += std::time::Duration::from_millis(500);
        self.ep.handle_timeout(self.now, &mut self.rng);
        held.extend(std::iter::from_fn(|| self.ep.poll_output()));
        let mut got = Vec::new();
        for o in held {
            if let Output::Transmit(t) = o {
                let m = ControlMessage::decode(&t.data, None).expect("endpoint output decodes");
                if !m.is_zlb() {
                    self.nr = m.header.ns.wrapping_add(1);
                }
                got.push(m);
            }
        }
        got
    }

    /// Drain the outputs, deciding each [`Output::Incoming`] at once with
    /// [`Self::accept_with`] and each [`Output::IncomingCall`] with
    /// [`Self::decide_call`] (their answers are drained too); returns the rest.
    pub(crate) fn decide(&mut self) -> Vec<Output> {
        let mut rest = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Incoming(i) => {
                    let _ = match &self.accept_with {
                        Some(c) => self.ep.accept(self.now, &mut self.rng, i, c.clone()),
                        None => self.ep.refuse(
                            self.now,
                            &mut self.rng,
                            i,
                            Refusal::not_authorized("tunnel not accepted from this peer"),
                        ),
                    };
                }
                Output::IncomingCall(c) => {
                    let Some(policy) = self.decide_call.as_mut() else {
                        continue;
                    };
                    let _ = match policy(&self.ep, &c) {
                        Ok(()) => self.ep.accept_call(self.now, &mut self.rng, c).map(drop),
                        Err(r) => self.ep.refuse_call(self.now, &mut self.rng, c, r),
                    };
                }
                o => rest.push(o),
            }
        }
        rest
    }

    /// Bring the tunnel up: SCCRQ → SCCRP, SCCCN.
    pub(crate) fn establish(&mut self) {
        let replies = self.send(SessionId(0), &sccrq(), vec![]);
        let sccrp = replies
            .iter()
            .find(|m| m.message_type() == Some(MessageType::SCCRP))
            .expect("SCCRP");
        let Ok(Message::Sccrp(p)) = Message::from_control(sccrp) else {
            panic!("SCCRP")
        };
        self.their_tunnel = p.assigned_tunnel_id;
        self.send(SessionId(0), &Message::Scccn(Default::default()), vec![]);
    }

    pub(crate) fn tunnel_state(&self) -> Option<&'static str> {
        self.ep.tunnels().next().map(|t| t.state_name())
    }
}

pub(crate) fn result_of(m: &ControlMessage) -> ResultCode {
    m.avps
        .iter()
        .find_map(|a| match &a.value {
            AvpValue::ResultCode(r) => Some(r.clone()),
            _ => None,
        })
        .expect("Result Code AVP")
}

pub(crate) fn only(replies: &[ControlMessage], t: MessageType) -> &ControlMessage {
    let found: Vec<_> = replies
        .iter()
        .filter(|m| m.message_type() == Some(t))
        .collect();
    assert_eq!(found.len(), 1, "expected one {t} in {replies:?}");
    found[0]
}
