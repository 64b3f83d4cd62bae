//! RFC 2661 rules the endpoint used to let pass, each driven by a scripted
//! peer and checked by the Result / Error Code of the answer: ICRQ and OCRQ
//! with Assigned Session ID 0, a peer session id used twice, a Challenge of
//! 0 octets, hidden Random Vector / Message Type AVPs, and a StopCCN that
//! names another tunnel; and peer strings in events, which print escaped.

mod scripted;

use l2tp_proto::event::{CloseReason, Event, Output, TunnelConfig};
use l2tp_proto::wire::{
    Avp, AvpValue, BearerCaps, ControlHeader, ControlMessage, DecodeError, FramingCaps, Message,
    MessageType, Ocrq, ResultCode, Sccrq, SessionId, StopCcn, TunnelId,
};
use scripted::*;

fn established() -> Peer {
    let mut p = Peer::new();
    p.establish();
    assert_eq!(p.tunnel_state(), Some("established"));
    p
}

fn ocrq_for(peer_session: u16) -> Message {
    Message::Ocrq(Ocrq {
        assigned_session_id: SessionId(peer_session),
        call_serial_number: 1,
        minimum_bps: 0,
        maximum_bps: 64000,
        bearer_type: BearerCaps(1),
        framing_type: FramingCaps(1),
        called_number: b"12345".to_vec(),
        sub_address: None,
        other: Vec::new(),
    })
}

fn illegal(p: &Peer) -> u64 {
    p.ep.tunnels().next().unwrap().counters.illegal_messages
}

#[test]
fn icrq_with_assigned_session_id_zero_is_refused_with_cdn_2_5() {
    let mut p = established();
    let replies = p.send(SessionId(0), &icrq_for(0), vec![]);
    let cdn = only(&replies, MessageType::CDN);
    let rc = result_of(cdn);
    assert_eq!((rc.result, rc.error), (2, Some(5)), "{rc:?}");
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::ICRP))
    );
    assert_eq!(p.ep.session_count(), 0, "no call state for it");
    assert_eq!(illegal(&p), 1);
    assert_eq!(p.ep.counters().illegal_messages, 1);
    // The tunnel is fine and takes a proper call afterwards.
    assert_eq!(p.tunnel_state(), Some("established"));
    let replies = p.send(SessionId(0), &icrq_for(5), vec![]);
    only(&replies, MessageType::ICRP);
}

#[test]
fn ocrq_with_assigned_session_id_zero_is_refused_with_cdn_2_5() {
    let mut p = established();
    let replies = p.send(SessionId(0), &ocrq_for(0), vec![]);
    let rc = result_of(only(&replies, MessageType::CDN));
    assert_eq!((rc.result, rc.error), (2, Some(5)), "{rc:?}");
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::OCRP))
    );
    assert_eq!(p.ep.session_count(), 0);
    assert_eq!(illegal(&p), 1);
}

#[test]
fn a_peer_session_id_in_use_is_refused_with_cdn_2_5() {
    let mut p = established();
    only(
        &p.send(SessionId(0), &icrq_for(777), vec![]),
        MessageType::ICRP,
    );
    let replies = p.send(SessionId(0), &icrq_for(777), vec![]);
    let cdn = only(&replies, MessageType::CDN);
    let rc = result_of(cdn);
    assert_eq!((rc.result, rc.error), (2, Some(5)), "{rc:?}");
    // The CDN goes to the peer's session id; the first call is untouched.
    assert_eq!(cdn.header.session_id, SessionId(777));
    assert_eq!(p.ep.session_count(), 1);
}

fn sccrq_with_challenge(challenge: Vec<u8>) -> Message {
    let Message::Sccrq(m) = sccrq() else {
        unreachable!()
    };
    Message::Sccrq(Sccrq {
        challenge: Some(challenge),
        ..m
    })
}

#[test]
fn a_challenge_of_zero_octets_is_answered_with_stopccn_2_2() {
    let mut p = Peer::new();
    let replies = p.send(SessionId(0), &sccrq_with_challenge(Vec::new()), vec![]);
    let stop = only(&replies, MessageType::STOPCCN);
    let rc = result_of(stop);
    assert_eq!(
        (rc.result, rc.error),
        (2, Some(2)),
        "length is wrong: {rc:?}"
    );
    assert_eq!(stop.header.tunnel_id, PEER_TUNNEL);
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::SCCRP))
    );
    assert_eq!(p.ep.counters().illegal_messages, 1);
    // A one-octet Challenge is fine (answered: the endpoint has a secret).
    let mut q = Peer::new();
    q.accept_with = Some(TunnelConfig {
        secret: Some(b"s3cret".to_vec()),
        ..TunnelConfig::default()
    });
    let replies = q.send(SessionId(0), &sccrq_with_challenge(vec![7]), vec![]);
    only(&replies, MessageType::SCCRP);
}

/// An established tunnel whose endpoint has a secret (so hidden AVPs decode).
fn established_with_secret() -> Peer {
    let mut p = Peer::new();
    p.accept_with = Some(TunnelConfig {
        secret: Some(b"s3cret".to_vec()),
        ..TunnelConfig::default()
    });
    p.establish();
    assert_eq!(p.tunnel_state(), Some("established"));
    p
}

/// A HELLO in sequence whose AVP number `hide` has the H bit set on the wire.
fn hello_with_hidden(p: &mut Peer, avps: Vec<Avp>, hide: usize) -> Vec<u8> {
    let cm = ControlMessage {
        header: ControlHeader {
            tunnel_id: p.their_tunnel,
            session_id: SessionId(0),
            ns: p.ns,
            nr: p.nr,
        },
        avps,
    };
    let mut bytes = cm.encode(None).unwrap();
    // Walk the AVPs (12-octet header) to the one to flag.
    let mut off = 12;
    for _ in 0..hide {
        let len = usize::from(u16::from_be_bytes([bytes[off], bytes[off + 1]]) & 0x3ff);
        off += len;
    }
    bytes[off] |= 0x40; // H bit
    bytes
}

#[test]
fn a_hidden_random_vector_is_malformed() {
    let mut p = established_with_secret();
    let avps = vec![
        Avp::new(AvpValue::MessageType(MessageType::HELLO)),
        Avp::new(AvpValue::RandomVector(vec![1; 16])),
        Avp::new(AvpValue::RandomVector(vec![2; 16])),
    ];
    // The second Random Vector hidden under the first: it would unhide.
    let bytes = hello_with_hidden(&mut p, avps, 2);
    assert!(matches!(
        ControlMessage::decode(&bytes, Some(b"s3cret")),
        Err(DecodeError::HiddenForbidden { .. })
    ));
    let before = p.ep.tunnels().next().unwrap().counters.bad_messages;
    let replies = p.raw(&bytes);
    assert!(
        replies.is_empty(),
        "dropped unacknowledged, as malformed: {replies:?}"
    );
    let t = p.ep.tunnels().next().unwrap();
    assert_eq!(t.counters.bad_messages, before + 1);
    assert_eq!(t.counters.rx_hellos, 0);
    // A hidden Message Type is refused the same way.
    let avps = vec![
        Avp::new(AvpValue::MessageType(MessageType::HELLO)),
        Avp::new(AvpValue::RandomVector(vec![1; 16])),
    ];
    let bytes = hello_with_hidden(&mut p, avps, 0);
    assert!(matches!(
        ControlMessage::decode(&bytes, Some(b"s3cret")),
        Err(DecodeError::HiddenForbidden { .. })
    ));
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
fn a_stopccn_naming_another_tunnel_is_acknowledged_and_ignored() {
    let mut p = established();
    let replies = p.send(SessionId(0), &stopccn(PEER_TUNNEL.0 + 1), vec![]);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].is_zlb(), "acknowledged: {replies:?}");
    assert_eq!(p.tunnel_state(), Some("established"), "not torn down");
    assert_eq!(illegal(&p), 1, "counted as a violation");
    let t = p.ep.tunnels().next().unwrap();
    assert_eq!(t.counters.rx_bad_by_type[4], 1);
    // The peer's own id closes it.
    p.send(SessionId(0), &stopccn(PEER_TUNNEL.0), vec![]);
    assert_eq!(p.tunnel_state(), Some("lingering"));
}

#[test]
fn peer_strings_in_events_print_escaped() {
    let mut p = Peer::new();
    let Message::Sccrq(m) = sccrq() else {
        unreachable!()
    };
    let hostile = b"evil\nINFO forged\x1b[31m\x1b]0;title\x07\0end".to_vec();
    let msg = Message::Sccrq(Sccrq {
        host_name: hostile.clone(),
        ..m
    });
    let replies = p.send(SessionId(0), &msg, vec![]);
    let Ok(Message::Sccrp(sccrp)) = Message::from_control(only(&replies, MessageType::SCCRP))
    else {
        panic!()
    };
    p.their_tunnel = sccrp.assigned_tunnel_id;
    let cm = ControlMessage {
        header: ControlHeader {
            tunnel_id: p.their_tunnel,
            session_id: SessionId(0),
            ns: p.ns,
            nr: p.nr,
        },
        avps: Message::Scccn(Default::default()).to_avps(),
    };
    p.ns += 1;
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &cm.encode(None).unwrap());
    let mut host = None;
    while let Some(o) = p.ep.poll_output() {
        if let Output::Event(Event::TunnelUp { peer_host_name, .. }) = o {
            host = Some(peer_host_name);
        }
    }
    let host = host.expect("TunnelUp");
    assert_eq!(host.raw(), &hostile[..], "raw octets kept for matching");
    let shown = host.to_string();
    assert_eq!(shown, "evil\\nINFO forged\\x1b[31m\\x1b]0;title\\x07\\0end");
    assert!(!shown.chars().any(char::is_control));
    // The peer's StopCCN message is escaped in the close reason too.
    let stop = Message::StopCcn(StopCcn {
        assigned_tunnel_id: PEER_TUNNEL,
        result_code: ResultCode {
            result: 2,
            error: Some(0),
            message: Some(b"bye\r\n\x1b[2J".to_vec()),
        },
        other: Vec::new(),
    });
    p.send(SessionId(0), &stop, vec![]);
    let reason =
        p.ep.tunnels()
            .next()
            .and_then(|t| t.close_reason.clone())
            .expect("closed");
    let CloseReason::Peer { message, .. } = &reason else {
        panic!("{reason:?}")
    };
    assert_eq!(message.as_ref().unwrap().raw(), b"bye\r\n\x1b[2J");
    let text = reason.to_string();
    assert!(text.contains("bye\\r\\n\\x1b[2J"), "{text}");
    assert!(!text.chars().any(char::is_control), "{text}");
}
