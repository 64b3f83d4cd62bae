//! Fast recovery, deterministic: an SCCRP from another UDP port of the
//! peer (RFC 2661 §8.1) moves the tunnel to that port; control messages for
//! tunnels we do not have get a stateless StopCCN (Result Code 2, Error
//! Code 1) or, for a StopCCN, a ZLB; stale tunnels of a previous run answer
//! their old peer and keep their ids out of allocation until they expire;
//! the answers are rate-limited.

mod scripted;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use l2tp_proto::endpoint::{Endpoint, UNKNOWN_TUNNEL_ANSWERS_PER_SEC};
use l2tp_proto::event::{Action, Command, CommandError, CommandOutcome, Output, TunnelConfig};
use l2tp_proto::wire::{
    Avp, AvpValue, ControlHeader, ControlMessage, FramingCaps, Message, MessageType, ResultCode,
    Sccrp, SessionId, StopCcn, TunnelId,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use scripted::result_of;

const LNS: &str = "192.0.2.9:1701";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Lac {
    ep: Endpoint,
    rng: StdRng,
    now: Instant,
}

impl Lac {
    fn new() -> Self {
        Self {
            ep: Endpoint::new(),
            rng: StdRng::seed_from_u64(3),
            now: Instant::now(),
        }
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

    /// Open a tunnel to the LNS; returns our id and the SCCRQ sent.
    fn open(&mut self) -> TunnelId {
        let out = self.ep.handle_command(
            self.now,
            &mut self.rng,
            Command::OpenTunnel {
                peer: addr(LNS),
                config: Box::default(),
            },
        );
        let Ok(CommandOutcome::Tunnel(id)) = out else {
            panic!("{out:?}")
        };
        let sent = self.outputs();
        assert!(
            sent.iter()
                .any(|o| matches!(o, Output::Transmit(t) if t.peer == addr(LNS))),
            "SCCRQ to the LNS: {sent:?}"
        );
        id
    }

    fn feed(&mut self, from: &str, bytes: &[u8]) -> Vec<Output> {
        self.ep
            .handle_datagram(self.now, &mut self.rng, addr(from), bytes);
        self.outputs()
    }
}

fn sccrp(to: TunnelId, peer_tunnel: u16) -> Vec<u8> {
    ControlMessage {
        header: ControlHeader {
            tunnel_id: to,
            session_id: SessionId(0),
            ns: 0,
            nr: 1,
        },
        avps: Message::Sccrp(Sccrp {
            protocol_version: (1, 0),
            framing_capabilities: FramingCaps(3),
            host_name: b"lns".to_vec(),
            assigned_tunnel_id: TunnelId(peer_tunnel),
            bearer_capabilities: None,
            firmware_revision: None,
            vendor_name: None,
            receive_window_size: Some(4),
            challenge: None,
            challenge_response: None,
            other: Vec::new(),
        })
        .to_avps(),
    }
    .encode(None)
    .unwrap()
}

fn transmits(out: &[Output]) -> Vec<(TunnelId, SocketAddr, ControlMessage)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some((
                t.tunnel,
                t.peer,
                ControlMessage::decode(&t.data, None).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn sccrp_from_another_port_of_the_peer_moves_the_tunnel() {
    let mut lac = Lac::new();
    let id = lac.open();
    let moved = "192.0.2.9:40001";
    let out = lac.feed(moved, &sccrp(id, 55));
    let sent = transmits(&out);
    let scccn = sent
        .iter()
        .find(|(_, _, m)| m.message_type() == Some(MessageType::SCCCN))
        .expect("SCCCN");
    assert_eq!(scccn.1, addr(moved), "the SCCCN goes to the new port");
    assert_eq!(scccn.2.header.tunnel_id, TunnelId(55));
    let create = out.iter().find_map(|o| match o {
        Output::Action(Action::CreateTunnel { peer, .. }) => Some(*peer),
        _ => None,
    });
    assert_eq!(
        create,
        Some(addr(moved)),
        "the kernel tunnel is created towards the new port"
    );
    let t = lac.ep.tunnel(id).unwrap();
    assert_eq!(t.peer, addr(moved));
    assert_eq!(t.state_name(), "established");
    assert_eq!(lac.ep.counters().peer_port_changes, 1);
    // The old port is no longer the peer: its messages are dropped.
    let hello = ControlMessage {
        header: ControlHeader {
            tunnel_id: id,
            session_id: SessionId(0),
            ns: 1,
            nr: 2,
        },
        avps: Message::Hello.to_avps(),
    }
    .encode(None)
    .unwrap();
    assert!(transmits(&lac.feed(LNS, &hello)).is_empty());
    assert_eq!(lac.ep.counters().mismatched_peer_discards, 1);
    // HELLO from the new port is acknowledged there.
    let acks = transmits(&lac.feed(moved, &hello));
    assert!(acks.iter().all(|(_, p, _)| *p == addr(moved)));
    assert!(!acks.is_empty());
}

#[test]
fn sccrp_from_another_address_is_dropped() {
    let mut lac = Lac::new();
    let id = lac.open();
    let out = lac.feed("192.0.2.10:1701", &sccrp(id, 55));
    assert!(transmits(&out).is_empty(), "{out:?}");
    let t = lac.ep.tunnel(id).unwrap();
    assert_eq!(t.peer, addr(LNS));
    assert_eq!(t.state_name(), "wait-ctl-reply");
    assert_eq!(lac.ep.counters().mismatched_peer_discards, 1);
    assert_eq!(lac.ep.counters().peer_port_changes, 0);
    // Nor may an established tunnel move: a second SCCRP from yet another
    // port after the tunnel is up is not from the peer.
    let out = lac.feed(LNS, &sccrp(id, 55));
    assert!(
        transmits(&out)
            .iter()
            .any(|(_, _, m)| m.message_type() == Some(MessageType::SCCCN))
    );
    let out = lac.feed("192.0.2.9:40002", &sccrp(id, 55));
    assert!(transmits(&out).is_empty());
    assert_eq!(lac.ep.tunnel(id).unwrap().peer, addr(LNS));
}

fn msg(to: u16, ns: u16, nr: u16, m: Message) -> Vec<u8> {
    ControlMessage {
        header: ControlHeader {
            tunnel_id: TunnelId(to),
            session_id: SessionId(0),
            ns,
            nr,
        },
        avps: m.to_avps(),
    }
    .encode(None)
    .unwrap()
}

fn stopccn(assigned: u16) -> Message {
    Message::StopCcn(StopCcn {
        assigned_tunnel_id: TunnelId(assigned),
        result_code: ResultCode {
            result: 1,
            error: None,
            message: None,
        },
        other: Vec::new(),
    })
}

#[test]
fn sccrp_for_an_unknown_tunnel_gets_stopccn_2_1_in_sequence() {
    let mut lac = Lac::new();
    // A restarted LAC: the LNS answers the SCCRQ of the previous run.
    let out = lac.feed(LNS, &sccrp(TunnelId(321), 66));
    let sent = transmits(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    let (tunnel, peer, m) = &sent[0];
    assert_eq!(*tunnel, TunnelId(0), "stateless: from the listening socket");
    assert_eq!(*peer, addr(LNS));
    assert_eq!(m.message_type(), Some(MessageType::STOPCCN));
    assert_eq!(m.header.tunnel_id, TunnelId(66), "to the peer's tunnel");
    assert_eq!(
        (m.header.ns, m.header.nr),
        (1, 1),
        "Ns = its Nr, Nr = its Ns + 1"
    );
    let rc = result_of(m);
    assert_eq!((rc.result, rc.error), (2, Some(1)));
    let Ok(Message::StopCcn(s)) = Message::from_control(m) else {
        panic!()
    };
    assert_eq!(s.assigned_tunnel_id, TunnelId(321));
    assert!(lac.ep.is_idle(), "no state");
    let c = lac.ep.counters();
    assert_eq!(c.unknown_tunnel_stopccns, 1);
    assert_eq!(c.no_matching_tunnel_id_discards, 1);
}

#[test]
fn stopccn_for_an_unknown_tunnel_is_acknowledged_with_a_zlb() {
    let mut lac = Lac::new();
    let out = lac.feed(LNS, &msg(321, 7, 3, stopccn(66)));
    let sent = transmits(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    let (_, peer, m) = &sent[0];
    assert_eq!(*peer, addr(LNS));
    assert!(m.is_zlb());
    assert_eq!(m.header.tunnel_id, TunnelId(66));
    assert_eq!((m.header.ns, m.header.nr), (3, 8));
    assert_eq!(lac.ep.counters().unknown_tunnel_zlbs, 1);
    assert!(lac.ep.is_idle());
}

#[test]
fn other_messages_for_an_unknown_tunnel_name_no_tunnel_to_answer() {
    let mut lac = Lac::new();
    for m in [Message::Hello, icrq()] {
        assert!(transmits(&lac.feed(LNS, &msg(321, 4, 4, m))).is_empty());
    }
    // Nor is a ZLB answered.
    let zlb = ControlMessage {
        header: ControlHeader {
            tunnel_id: TunnelId(321),
            session_id: SessionId(0),
            ns: 4,
            nr: 4,
        },
        avps: Vec::new(),
    }
    .encode(None)
    .unwrap();
    assert!(transmits(&lac.feed(LNS, &zlb)).is_empty());
    let c = lac.ep.counters();
    assert_eq!(c.no_matching_tunnel_id_discards, 3);
    assert_eq!(c.unknown_tunnel_stopccns + c.unknown_tunnel_zlbs, 0);
}

fn icrq() -> Message {
    scripted::icrq_for(12)
}

#[test]
fn a_stale_tunnel_answers_its_old_peer_until_it_expires() {
    let mut lac = Lac::new();
    let until = lac.now + Duration::from_secs(60);
    assert!(
        lac.ep
            .add_stale_tunnel(TunnelId(500), addr(LNS), TunnelId(77), until)
    );
    assert_eq!(lac.ep.stale_tunnel_count(), 1);
    // The peer's HELLO (it did not see us restart) gets StopCCN 2/1 at once.
    let sent = transmits(&lac.feed(LNS, &msg(500, 5, 3, Message::Hello)));
    assert_eq!(sent.len(), 1);
    let m = &sent[0].2;
    assert_eq!(m.message_type(), Some(MessageType::STOPCCN));
    assert_eq!(m.header.tunnel_id, TunnelId(77));
    assert_eq!((m.header.ns, m.header.nr), (3, 6));
    let rc = result_of(m);
    assert_eq!((rc.result, rc.error), (2, Some(1)));
    // So does a call message.
    let sent = transmits(&lac.feed(LNS, &msg(500, 6, 3, icrq())));
    assert_eq!(sent[0].2.header.tunnel_id, TunnelId(77));
    // Another source is not that peer: nothing.
    assert!(transmits(&lac.feed("192.0.2.9:1702", &msg(500, 5, 3, Message::Hello))).is_empty());
    assert_eq!(lac.ep.counters().unknown_tunnel_stopccns, 2);
    // Expired: no answer, and the entry goes with the next input.
    lac.now = until + Duration::from_secs(1);
    assert!(transmits(&lac.feed(LNS, &msg(500, 7, 3, Message::Hello))).is_empty());
    assert_eq!(lac.ep.stale_tunnel_count(), 0);
    assert_eq!(lac.ep.counters().unknown_tunnel_stopccns, 2);
}

#[test]
fn stale_ids_are_not_allocated_until_they_expire() {
    let mut lac = Lac::new();
    let until = lac.now + Duration::from_secs(60);
    // Every id but 65,535 is stale.
    for id in 1..u16::MAX {
        assert!(
            lac.ep
                .add_stale_tunnel(TunnelId(id), addr(LNS), TunnelId(9), until)
        );
    }
    let id = lac.open();
    assert_eq!(id, TunnelId(u16::MAX), "the one id not stale");
    // A live tunnel's id cannot be made stale; 0 is refused.
    assert!(!lac.ep.add_stale_tunnel(id, addr(LNS), TunnelId(9), until));
    assert!(
        !lac.ep
            .add_stale_tunnel(TunnelId(0), addr(LNS), TunnelId(9), until)
    );
    assert!(
        !lac.ep
            .add_stale_tunnel(TunnelId(3), addr(LNS), TunnelId(0), until)
    );
    // All ids taken now.
    let more = lac.ep.handle_command(
        lac.now,
        &mut lac.rng,
        Command::OpenTunnel {
            peer: addr(LNS),
            config: Box::new(TunnelConfig::default()),
        },
    );
    assert_eq!(more, Err(CommandError::IdsExhausted("tunnel")));
    // Expiry is a few entries per input, no scan: one input frees a few ids.
    lac.now = until;
    lac.feed("192.0.2.77:1701", &[0u8; 3]);
    assert_eq!(lac.ep.stale_tunnel_count(), 65_534 - 4);
    let more = lac.ep.handle_command(
        lac.now,
        &mut lac.rng,
        Command::OpenTunnel {
            peer: addr(LNS),
            config: Box::new(TunnelConfig::default()),
        },
    );
    assert!(matches!(more, Ok(CommandOutcome::Tunnel(_))), "{more:?}");
}

#[test]
fn answers_to_unknown_tunnels_are_rate_limited() {
    let mut lac = Lac::new();
    let mut answered = 0;
    for i in 0..200u16 {
        answered += transmits(&lac.feed(LNS, &sccrp(TunnelId(1000 + i), 66))).len();
    }
    let burst = UNKNOWN_TUNNEL_ANSWERS_PER_SEC as usize;
    assert_eq!(answered, burst, "one burst at one instant");
    let c = lac.ep.counters();
    assert_eq!(c.unknown_tunnel_stopccns, burst as u64);
    assert_eq!(c.unknown_tunnel_answers_suppressed, 200 - burst as u64);
    assert_eq!(c.no_matching_tunnel_id_discards, 200, "every one counted");
    // A second later the bucket has refilled.
    lac.now += Duration::from_secs(1);
    assert_eq!(transmits(&lac.feed(LNS, &sccrp(TunnelId(5), 66))).len(), 1);
}

#[test]
fn hidden_avps_of_an_unknown_tunnel_do_not_stop_the_stale_answer() {
    // A message we cannot decode without the old secret still gets its
    // StopCCN when it comes from a stale tunnel's peer (from the header).
    let mut lac = Lac::new();
    lac.ep.add_stale_tunnel(
        TunnelId(600),
        addr(LNS),
        TunnelId(88),
        lac.now + Duration::from_secs(5),
    );
    let mut bytes = ControlMessage {
        header: ControlHeader {
            tunnel_id: TunnelId(600),
            session_id: SessionId(0),
            ns: 2,
            nr: 9,
        },
        avps: vec![
            Avp::new(AvpValue::MessageType(MessageType::HELLO)),
            Avp::new(AvpValue::RandomVector(vec![1; 16])),
            Avp::new(AvpValue::ReceiveWindowSize(4)),
        ],
    }
    .encode(None)
    .unwrap();
    // Set the H bit of the last AVP (8 + 22 octets after the 12-octet header).
    bytes[12 + 8 + 22] |= 0x40;
    let sent = transmits(&lac.feed(LNS, &bytes));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.header.tunnel_id, TunnelId(88));
    assert_eq!((sent[0].2.header.ns, sent[0].2.header.nr), (9, 3));
}
