//! Admission as the driver's decision: a peer's new SCCRQ is reported as
//! [`Output::Incoming`] and the endpoint holds nothing for it until the
//! driver accepts it (SCCRP) or refuses it (StopCCN with the driver's
//! Result and Error Codes, RFC 2661 §4.4.2); an `Incoming` dropped without a
//! decision leaves no trace, and the peer's retransmission is reported again.

mod scripted;

use l2tp_proto::endpoint::{Incoming, IncomingError};
use l2tp_proto::event::{Command, Output, TunnelConfig};
use l2tp_proto::tunnel::Refusal;
use l2tp_proto::wire::{ControlHeader, ControlMessage, Message, MessageType, TunnelId};
use scripted::*;

/// The peer's SCCRQ (Ns = 0, to tunnel 0), encoded.
fn sccrq_bytes() -> Vec<u8> {
    sccrq()
        .to_control(ControlHeader::default())
        .encode(None)
        .unwrap()
}

/// Feed the SCCRQ; returns what came out, undecided.
fn feed_sccrq(p: &mut Peer) -> Vec<Output> {
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &sccrq_bytes());
    std::iter::from_fn(|| p.ep.poll_output()).collect()
}

/// The one output, an `Incoming`.
fn the_incoming(out: Vec<Output>) -> Incoming {
    match <[Output; 1]>::try_from(out) {
        Ok([Output::Incoming(i)]) => i,
        Ok(o) => panic!("expected an Incoming alone: {o:?}"),
        Err(o) => panic!("expected an Incoming alone: {o:?}"),
    }
}

/// The control messages sent since the last call.
fn sent(p: &mut Peer) -> Vec<ControlMessage> {
    std::iter::from_fn(|| p.ep.poll_output())
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(ControlMessage::decode(&t.data, None).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_sccrq_is_reported_and_nothing_is_held_until_accepted() {
    let mut p = Peer::new();
    let incoming = the_incoming(feed_sccrq(&mut p));
    assert_eq!(incoming.peer(), p.from);
    assert_eq!(incoming.peer_tunnel(), PEER_TUNNEL);
    assert_eq!(incoming.host_name(), b"scripted");
    assert_eq!(incoming.sccrq().receive_window_size, Some(8));
    assert_eq!(p.ep.tunnel_count(), 0, "no tunnel before the decision");
    assert_eq!(p.ep.half_open_count(), 0, "no half-open slot either");
    assert_eq!(p.ep.poll_timeout(), None, "no timer");
    let config = TunnelConfig {
        host_name: b"decided".to_vec(),
        ..TunnelConfig::default()
    };
    let id = p.ep.accept(p.now, &mut p.rng, incoming, config).unwrap();
    let replies = sent(&mut p);
    let Ok(Message::Sccrp(sccrp)) = Message::from_control(only(&replies, MessageType::SCCRP))
    else {
        panic!("SCCRP")
    };
    assert_eq!(sccrp.assigned_tunnel_id, id);
    assert_eq!(sccrp.host_name, b"decided", "the driver's configuration");
    assert_eq!(
        only(&replies, MessageType::SCCRP).header.tunnel_id,
        PEER_TUNNEL
    );
    assert_eq!(p.ep.tunnel_count(), 1);
    assert_eq!(p.ep.half_open_count(), 1);
    assert_eq!(p.ep.tunnel(id).unwrap().peer_id, PEER_TUNNEL);
}

#[test]
fn a_refusal_is_a_stopccn_with_the_drivers_result_and_error_code() {
    let mut p = Peer::new();
    let incoming = the_incoming(feed_sccrq(&mut p));
    let refusal = Refusal {
        result: 2,
        error: Some(6),
        text: "a vendor-specific reason".into(),
    };
    p.ep.refuse(p.now, &mut p.rng, incoming, refusal).unwrap();
    let replies = sent(&mut p);
    let stop = only(&replies, MessageType::STOPCCN);
    assert_eq!(stop.header.tunnel_id, PEER_TUNNEL);
    let rc = result_of(stop);
    assert_eq!((rc.result, rc.error), (2, Some(6)));
    assert_eq!(
        rc.message.as_deref(),
        Some(&b"a vendor-specific reason"[..])
    );
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::SCCRP))
    );
    let c = p.ep.counters();
    assert_eq!((c.tunnels_refused, c.tunnel_limit_refusals), (1, 0));
    // The refusal waits for its acknowledgement as a half-open tunnel.
    assert_eq!(p.ep.half_open_count(), 1);

    let mut q = Peer::new();
    let incoming = the_incoming(feed_sccrq(&mut q));
    q.ep.refuse(
        q.now,
        &mut q.rng,
        incoming,
        Refusal::not_authorized("not you"),
    )
    .unwrap();
    let rc = result_of(only(&sent(&mut q), MessageType::STOPCCN));
    // (Error Code 0, "no general error", carries the message, §4.4.2.)
    assert_eq!((rc.result, rc.error), (4, Some(0)), "not authorized");
    assert_eq!(rc.message.as_deref(), Some(&b"not you"[..]));
}

#[test]
fn a_dropped_incoming_sends_nothing_and_the_retransmission_is_reported_again() {
    let mut p = Peer::new();
    drop(the_incoming(feed_sccrq(&mut p)));
    assert!(sent(&mut p).is_empty());
    assert_eq!(p.ep.tunnel_count(), 0);
    assert_eq!(p.ep.half_open_count(), 0);
    assert_eq!(p.ep.poll_timeout(), None);
    // The peer retransmits the same SCCRQ (RFC 2661 §5.8).
    p.now += std::time::Duration::from_secs(1);
    let incoming = the_incoming(feed_sccrq(&mut p));
    assert_eq!(incoming.peer_tunnel(), PEER_TUNNEL);
    p.ep.accept(p.now, &mut p.rng, incoming, TunnelConfig::default())
        .unwrap();
    only(&sent(&mut p), MessageType::SCCRP);
}

#[test]
fn deciding_twice_finds_the_first_decision() {
    let mut p = Peer::new();
    let first = the_incoming(feed_sccrq(&mut p));
    // The peer retransmitted before the driver decided: two reports.
    let second = the_incoming(feed_sccrq(&mut p));
    let id =
        p.ep.accept(p.now, &mut p.rng, first, TunnelConfig::default())
            .unwrap();
    only(&sent(&mut p), MessageType::SCCRP);
    let again =
        p.ep.refuse(p.now, &mut p.rng, second, Refusal::tunnel_limit());
    assert_eq!(again, Err(IncomingError::Duplicate(id)));
    assert!(sent(&mut p).is_empty(), "nothing more is sent");
    assert_eq!(p.ep.tunnel_count(), 1);
    assert_eq!(p.ep.counters().tunnels_refused, 0);
}

#[test]
fn shutdown_before_the_decision_turns_it_into_stopccn_6() {
    let mut p = Peer::new();
    let incoming = the_incoming(feed_sccrq(&mut p));
    p.ep.handle_command(p.now, &mut p.rng, Command::Shutdown)
        .unwrap();
    let accepted =
        p.ep.accept(p.now, &mut p.rng, incoming, TunnelConfig::default());
    assert_eq!(accepted, Err(IncomingError::ShuttingDown));
    let rc = result_of(only(&sent(&mut p), MessageType::STOPCCN));
    assert_eq!(rc.result, 6, "requester is being shut down");
    // A new SCCRQ while shutting down is answered by the core alone.
    p.from = "192.0.2.77:1701".parse().unwrap();
    let out = feed_sccrq(&mut p);
    assert!(out.iter().all(|o| !matches!(o, Output::Incoming(_))));
    let replies: Vec<ControlMessage> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(ControlMessage::decode(&t.data, None).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(result_of(only(&replies, MessageType::STOPCCN)).result, 6);
}

#[test]
fn half_open_bounds_are_checked_again_at_the_decision() {
    let mut p = Peer::new();
    p.ep.set_limits(l2tp_proto::endpoint::Limits {
        max_half_open_per_source: 1,
        ..Default::default()
    });
    let first = the_incoming(feed_sccrq(&mut p));
    let other = sccrq_bytes();
    let mut cm = ControlMessage::decode(&other, None).unwrap();
    for a in &mut cm.avps {
        if let l2tp_proto::wire::AvpValue::AssignedTunnelId(id) = &mut a.value {
            *id = TunnelId(999);
        }
    }
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &cm.encode(None).unwrap());
    let second = the_incoming(std::iter::from_fn(|| p.ep.poll_output()).collect());
    assert_eq!(second.peer_tunnel(), TunnelId(999));
    p.ep.accept(p.now, &mut p.rng, first, TunnelConfig::default())
        .unwrap();
    only(&sent(&mut p), MessageType::SCCRP);
    let late =
        p.ep.accept(p.now, &mut p.rng, second, TunnelConfig::default());
    assert_eq!(late, Err(IncomingError::HalfOpenFull));
    assert!(sent(&mut p).is_empty(), "dropped unanswered");
    assert_eq!(p.ep.counters().half_open_drops, 1);
    assert_eq!(p.ep.tunnel_count(), 1);
}
