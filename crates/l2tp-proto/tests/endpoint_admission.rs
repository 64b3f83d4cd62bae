//! Admission and scale rules of the endpoint, driven by a scripted peer:
//! SCCRQs reported to the driver and nothing held until it decides,
//! `max_tunnels` and `max_sessions` answered with the RFC 2661 §4.4.2
//! Result Codes, half-open bounds that drop SCCRQs without state, SCCRQs with
//! Ns ≠ 0, 65,535 calls in one tunnel, duplicate peer session ids, shutdown
//! of a tunnel with many calls, prompt acknowledgements and the deadline index.

mod scripted;

use std::net::SocketAddr;
use std::time::Duration;

use l2tp_proto::endpoint::Limits;
use l2tp_proto::event::{Command, Output, TunnelConfig};
use l2tp_proto::tunnel::Refusal;
use l2tp_proto::wire::{
    ControlHeader, ControlMessage, Message, MessageType, Sccrq, SessionId, TunnelId,
};
use scripted::*;

fn sccrq_for(peer_tunnel: u16) -> Message {
    let Message::Sccrq(m) = sccrq() else {
        unreachable!()
    };
    Message::Sccrq(Sccrq {
        assigned_tunnel_id: TunnelId(peer_tunnel),
        ..m
    })
}

/// Send a fresh SCCRQ (Ns = 0) for a new control connection from `from`;
/// returns the non-ZLB replies.
fn new_tunnel(p: &mut Peer, from: &str, peer_tunnel: u16) -> Vec<ControlMessage> {
    p.from = from.parse().unwrap();
    p.ns = 0;
    p.nr = 0;
    p.their_tunnel = TunnelId(0);
    // (Timers run between messages: other tunnels' retransmissions are left out.)
    p.send(SessionId(0), &sccrq_for(peer_tunnel), vec![])
        .into_iter()
        .filter(|m| !m.is_zlb() && m.header.tunnel_id.0 == peer_tunnel)
        .collect()
}

/// Place a call (ICRQ → ICRP, ICCN) and return our session id.
fn call(p: &mut Peer, peer_session: u16) -> SessionId {
    let replies = p.send(SessionId(0), &icrq_for(peer_session), vec![]);
    let Ok(Message::Icrp(icrp)) = Message::from_control(only(&replies, MessageType::ICRP)) else {
        panic!("ICRP for peer session {peer_session}: {replies:?}")
    };
    p.send(SessionId(icrp.assigned_session_id.0), &iccn(), vec![]);
    icrp.assigned_session_id
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// The driver's side of `max_tunnels` (as `l2tpd`'s admission does it):
/// the core reports the SCCRQ, the driver compares the tunnel count with
/// the limit and refuses with StopCCN 2/4. A tunnel opened locally is
/// refused by the core itself.
#[test]
fn max_tunnels_refuses_further_sccrqs_with_stopccn_2_4() {
    let mut p = Peer::new();
    p.ep.set_limits(limits(|l| l.max_tunnels = 2));
    for id in [10, 11] {
        only(
            &new_tunnel(&mut p, "192.0.2.1:1701", id),
            MessageType::SCCRP,
        );
    }
    p.ns = 0;
    p.their_tunnel = TunnelId(0);
    let cm = sccrq_for(12).to_control(ControlHeader::default());
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &cm.encode(None).unwrap());
    let Some(Output::Incoming(incoming)) = p.ep.poll_output() else {
        panic!("the SCCRQ is reported")
    };
    assert_eq!(p.ep.tunnel_count(), p.ep.limits().max_tunnels);
    p.ep.refuse(p.now, &mut p.rng, incoming, Refusal::tunnel_limit())
        .unwrap();
    let replies: Vec<ControlMessage> = std::iter::from_fn(|| p.ep.poll_output())
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(ControlMessage::decode(&t.data, None).unwrap()),
            _ => None,
        })
        .collect();
    let rc = result_of(only(&replies, MessageType::STOPCCN));
    assert_eq!(
        (rc.result, rc.error),
        (2, Some(4)),
        "general error / insufficient resources"
    );
    assert_eq!(p.ep.counters().tunnel_limit_refusals, 1);
    // A tunnel opened locally is refused too.
    let open = p.ep.handle_command(
        p.now,
        &mut p.rng,
        Command::OpenTunnel {
            peer: "192.0.2.9:1701".parse().unwrap(),
            config: Box::default(),
        },
    );
    assert_eq!(
        open.unwrap_err(),
        l2tp_proto::event::CommandError::TunnelLimit
    );
}

#[test]
fn half_open_tunnels_are_bounded_per_source_and_in_all_without_replies() {
    let mut p = Peer::new();
    p.ep.set_limits(limits(|l| {
        l.max_half_open = 5;
        l.max_half_open_per_source = 3;
    }));
    for id in 1..=3 {
        only(
            &new_tunnel(&mut p, "192.0.2.1:1701", id),
            MessageType::SCCRP,
        );
    }
    // The fourth and fifth from the same address get no reply and no state.
    for id in 4..=5 {
        assert!(new_tunnel(&mut p, "192.0.2.1:1701", id).is_empty());
    }
    assert_eq!(p.ep.counters().half_open_drops, 2);
    assert_eq!(p.ep.tunnel_count(), 3);
    assert_eq!(p.ep.half_open_count(), 3);
    // Another source still gets in, up to the global bound.
    only(
        &new_tunnel(&mut p, "198.51.100.7:1701", 6),
        MessageType::SCCRP,
    );
    let replies = new_tunnel(&mut p, "198.51.100.7:1701", 7);
    let Ok(Message::Sccrp(sccrp)) = Message::from_control(only(&replies, MessageType::SCCRP))
    else {
        panic!("SCCRP")
    };
    assert!(new_tunnel(&mut p, "203.0.113.5:1701", 8).is_empty());
    assert_eq!(p.ep.counters().half_open_drops, 3);
    // Once a half-open tunnel is established, its slot is free again.
    p.from = "198.51.100.7:1701".parse().unwrap();
    p.their_tunnel = sccrp.assigned_tunnel_id;
    p.ns = 1;
    p.send(SessionId(0), &Message::Scccn(Default::default()), vec![]);
    assert_eq!(p.ep.half_open_count(), 4);
    only(
        &new_tunnel(&mut p, "203.0.113.5:1701", 9),
        MessageType::SCCRP,
    );
}

#[test]
fn refused_tunnels_count_as_half_open_until_freed() {
    let mut p = Peer::new();
    p.accept_with = None;
    p.ep.set_limits(limits(|l| l.max_half_open_per_source = 2));
    for id in 1..=2 {
        let replies = new_tunnel(&mut p, "192.0.2.1:1701", id);
        assert_eq!(result_of(only(&replies, MessageType::STOPCCN)).result, 4);
    }
    // Their StopCCNs are not acknowledged yet: a flood of refusals holds no more.
    assert!(new_tunnel(&mut p, "192.0.2.1:1701", 3).is_empty());
    assert_eq!(p.ep.half_open_count(), 2);
}

#[test]
fn sccrq_with_nonzero_ns_gets_no_state() {
    let mut p = Peer::new();
    p.ns = 5;
    let replies = p.send(SessionId(0), &sccrq_for(99), vec![]);
    assert!(replies.is_empty(), "{replies:?}");
    assert_eq!(p.ep.tunnel_count(), 0);
    assert_eq!(p.ep.counters().sccrq_bad_ns_drops, 1);
}

/// The driver's side of `max_sessions` (as `l2tpd`'s admission does it):
/// the core reports each ICRQ, the driver compares the session count with
/// its limit and refuses with CDN result 4. A call we place is refused by
/// the core itself at `Limits::max_sessions`.
#[test]
fn system_session_limit_refuses_calls_with_cdn_4() {
    let mut p = Peer::new();
    p.decide_call = session_limits(2);
    p.establish();
    call(&mut p, 1);
    call(&mut p, 2);
    let replies = p.send(SessionId(0), &icrq_for(3), vec![]);
    let rc = result_of(only(&replies, MessageType::CDN));
    assert_eq!(rc.result, 4, "temporary lack of facilities");
    assert_eq!(
        rc.message.as_deref(),
        Some(&b"system session limit reached"[..])
    );
    assert_eq!(p.ep.session_count(), 2);
    assert_eq!(p.ep.counters().calls_refused, 1);
    // Our own calls: the core's limit.
    p.ep.set_limits(limits(|l| l.max_sessions = 2));
    let tunnel = p.ep.tunnels().next().unwrap().id;
    let place = p.ep.handle_command(
        p.now,
        &mut p.rng,
        Command::PlaceCall {
            tunnel,
            call_type: l2tp_proto::session::CallType::LacIncoming,
            params: Default::default(),
        },
    );
    assert_eq!(
        place.unwrap_err(),
        l2tp_proto::event::CommandError::SessionLimit
    );
}

#[test]
fn tunnel_session_limit_refuses_calls_with_cdn_4() {
    let mut p = Peer::new();
    p.accept_with = Some(TunnelConfig {
        max_sessions: 1,
        ..TunnelConfig::default()
    });
    p.decide_call = session_limits(0);
    p.establish();
    call(&mut p, 1);
    let replies = p.send(SessionId(0), &icrq_for(2), vec![]);
    let rc = result_of(only(&replies, MessageType::CDN));
    assert_eq!(rc.result, 4, "temporary lack of facilities");
    assert_eq!(
        rc.message.as_deref(),
        Some(&b"tunnel session limit reached"[..])
    );
    assert_eq!(p.ep.session_count(), 1);
}

#[test]
fn a_duplicate_peer_session_id_is_refused_with_cdn_2_5() {
    let mut p = Peer::new();
    p.establish();
    call(&mut p, 7);
    let replies = p.send(SessionId(0), &icrq_for(7), vec![]);
    let rc = result_of(only(&replies, MessageType::CDN));
    assert_eq!((rc.result, rc.error), (2, Some(5)), "invalid session id");
    assert_eq!(p.ep.session_count(), 1, "the first call is untouched");
}

#[test]
fn sixty_five_thousand_five_hundred_thirty_five_calls_in_one_tunnel() {
    let mut p = Peer::new();
    p.establish();
    let mut ours = std::collections::HashSet::new();
    for peer_session in 1..=u16::MAX {
        let id = call(&mut p, peer_session);
        assert!(ours.insert(id.0), "session id {id} handed out twice");
        assert_ne!(id.0, 0);
    }
    assert_eq!(p.ep.session_count(), 65_535);
    // The whole id space is used: a further call (whatever its id) is
    // answered with a CDN, never with silence.
    let replies = p.send(SessionId(0), &icrq_for(1), vec![]);
    assert_eq!(result_of(only(&replies, MessageType::CDN)).result, 2);
    // Clearing one call frees exactly its id for the next.
    let cdn = Message::Cdn(l2tp_proto::wire::Cdn {
        result_code: l2tp_proto::wire::ResultCode {
            result: 3,
            error: None,
            message: None,
        },
        assigned_session_id: SessionId(500),
        q931_cause_code: None,
        other: Vec::new(),
    });
    let victim =
        p.ep.tunnels()
            .next()
            .unwrap()
            .sessions
            .values()
            .find(|s| s.peer_id.0 == 500)
            .unwrap()
            .id;
    p.send(victim, &cdn, vec![]);
    assert_eq!(p.ep.session_count(), 65_534);
    assert_eq!(call(&mut p, 500), victim);
}

/// Shut down an endpoint whose one tunnel has `calls` established calls;
/// returns (CDNs, StopCCNs) sent.
fn shutdown_messages(calls: u16) -> (usize, usize) {
    let mut p = Peer::new();
    p.establish();
    for s in 1..=calls {
        call(&mut p, s);
    }
    p.ep.handle_command(p.now, &mut p.rng, Command::Shutdown)
        .unwrap();
    let mut types = Vec::new();
    while let Some(o) = p.ep.poll_output() {
        if let Output::Transmit(t) = o {
            types.push(
                ControlMessage::decode(&t.data, None)
                    .unwrap()
                    .message_type(),
            );
        }
    }
    let count = |t| types.iter().filter(|m| **m == Some(t)).count();
    (count(MessageType::CDN), count(MessageType::STOPCCN))
}

#[test]
fn a_tunnel_with_many_calls_is_closed_by_one_stopccn() {
    assert_eq!(shutdown_messages(2), (2, 1), "few calls: a CDN each first");
    assert_eq!(shutdown_messages(1000), (0, 1), "many calls: StopCCN alone");
}

#[test]
fn an_unanswered_message_is_acknowledged_within_the_same_input() {
    let mut p = Peer::new();
    p.establish();
    let replies = p.send(SessionId(0), &icrq_for(1), vec![]);
    let Ok(Message::Icrp(icrp)) = Message::from_control(only(&replies, MessageType::ICRP)) else {
        panic!("ICRP")
    };
    // The ICCN needs no answer: the ZLB comes out of handle_datagram itself,
    // before any timer runs.
    let cm = iccn().to_control(ControlHeader {
        tunnel_id: p.their_tunnel,
        session_id: icrp.assigned_session_id,
        ns: p.ns,
        nr: p.nr,
    });
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &cm.encode(None).unwrap());
    let mut zlbs = 0;
    while let Some(o) = p.ep.poll_output() {
        if let Output::Transmit(t) = o {
            let m = ControlMessage::decode(&t.data, None).unwrap();
            assert!(m.is_zlb());
            assert_eq!(m.header.nr, p.ns.wrapping_add(1), "acknowledges the ICCN");
            zlbs += 1;
        }
    }
    assert_eq!(zlbs, 1);
}

#[test]
fn the_next_deadline_is_the_earliest_of_all_tunnels_and_only_due_tunnels_fire() {
    let mut p = Peer::new();
    let start = p.now;
    // 1,000 tunnels opened 1 ms apart: each retransmits its SCCRQ 1 s after.
    for i in 0..1000u32 {
        let now = start + Duration::from_millis(u64::from(i));
        let peer: SocketAddr = format!("192.0.2.{}:{}", 1 + i % 200, 1701 + i)
            .parse()
            .unwrap();
        p.ep.handle_command(
            now,
            &mut p.rng,
            Command::OpenTunnel {
                peer,
                config: Box::new(TunnelConfig::default()),
            },
        )
        .unwrap();
    }
    while p.ep.poll_output().is_some() {}
    let first = start + Duration::from_secs(1);
    assert_eq!(p.ep.poll_timeout(), Some(first));
    // At 1.0095 s exactly ten tunnels are due; each retransmits once.
    let now = first + Duration::from_micros(9_500);
    p.ep.handle_timeout(now, &mut p.rng);
    let mut retransmitted = 0;
    while let Some(o) = p.ep.poll_output() {
        if matches!(o, Output::Transmit(_)) {
            retransmitted += 1;
        }
    }
    assert_eq!(retransmitted, 10);
    assert_eq!(
        p.ep.poll_timeout(),
        Some(first + Duration::from_millis(10)),
        "the eleventh tunnel is next"
    );
}

#[test]
fn tunnels_we_open_are_dialled_a_few_at_a_time() {
    let mut p = Peer::new();
    p.ep.set_limits(limits(|l| l.max_dialing = 10));
    let mut ids = Vec::new();
    for i in 0..50u16 {
        let peer: SocketAddr = format!("192.0.2.9:{}", 2000 + i).parse().unwrap();
        let open = Command::OpenTunnel {
            peer,
            config: Box::default(),
        };
        match p.ep.handle_command(p.now, &mut p.rng, open) {
            Ok(l2tp_proto::event::CommandOutcome::Tunnel(id)) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    let sent = |p: &mut Peer| {
        let mut n = 0;
        while let Some(o) = p.ep.poll_output() {
            if let Output::Transmit(t) = o {
                let m = ControlMessage::decode(&t.data, None).unwrap();
                assert_eq!(m.message_type(), Some(MessageType::SCCRQ));
                n += 1;
            }
        }
        n
    };
    assert_eq!(sent(&mut p), 10, "ten SCCRQs out, forty tunnels queued");
    assert_eq!(p.ep.tunnel_count(), 50);
    // A queued tunnel that is closed goes without a word to its peer...
    let close = |id| Command::CloseTunnel {
        tunnel: id,
        result: 1,
        message: None,
    };
    p.ep.handle_command(p.now, &mut p.rng, close(ids[49]))
        .unwrap();
    assert_eq!(sent(&mut p), 0);
    // ...while one that stops dialling lets the next one go.
    p.ep.handle_command(p.now, &mut p.rng, close(ids[0]))
        .unwrap();
    assert_eq!(sent(&mut p), 1, "one SCCRQ for the next queued tunnel");
}
