//! A scripted peer sends hand-built datagrams to an endpoint acting as LNS:
//! unknown AVPs with and without the M bit (RFC 2661 §4.1), unknown message
//! types (§3.2), malformed messages, messages out of state and garbage. Each
//! is answered per the RFC (StopCCN / CDN with the right Result and Error
//! Codes) or counted and dropped; nothing panics.

mod scripted;

use l2tp_proto::wire::{
    AttributeType, Avp, AvpValue, ControlHeader, ControlMessage, Message, MessageType, ResultCode,
    SessionId, TunnelId,
};
use scripted::*;

#[test]
fn unknown_mandatory_avp_in_sccrq_is_answered_with_stopccn_2_8() {
    let mut p = Peer::new();
    let replies = p.send(SessionId(0), &sccrq(), vec![unknown_avp(true)]);
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::SCCRP)),
        "no SCCRP for a bad SCCRQ"
    );
    let rc = result_of(only(&replies, MessageType::STOPCCN));
    assert_eq!(
        (rc.result, rc.error),
        (2, Some(8)),
        "general error / unknown mandatory AVP"
    );
    assert_eq!(p.ep.counters().illegal_messages, 1);
}

#[test]
fn unknown_optional_avp_is_ignored_and_counted() {
    let mut p = Peer::new();
    let replies = p.send(SessionId(0), &sccrq(), vec![unknown_avp(false)]);
    only(&replies, MessageType::SCCRP);
    let t = p.ep.tunnels().next().unwrap();
    assert_eq!(t.counters.ignored_avps, 1);
    // A vendor AVP without M bit is counted as a vendor AVP.
    let vendor = Avp {
        mandatory: false,
        hidden: false,
        value: AvpValue::Unknown {
            vendor_id: 9,
            attribute: AttributeType(1),
            value: vec![0],
        },
    };
    p.their_tunnel = t.id;
    p.send(
        SessionId(0),
        &Message::Scccn(Default::default()),
        vec![vendor],
    );
    assert_eq!(p.ep.tunnels().next().unwrap().counters.vendor_avps, 1);
    assert_eq!(p.tunnel_state(), Some("established"));
}

#[test]
fn unknown_mandatory_avp_in_icrq_refuses_the_call_with_cdn_2_8_and_keeps_the_tunnel() {
    let mut p = Peer::new();
    p.establish();
    let replies = p.send(SessionId(0), &icrq(), vec![unknown_avp(true)]);
    let cdn = only(&replies, MessageType::CDN);
    assert_eq!(
        cdn.header.session_id, PEER_SESSION,
        "CDN addressed to the peer's session"
    );
    let rc = result_of(cdn);
    assert_eq!((rc.result, rc.error), (2, Some(8)));
    assert_eq!(p.tunnel_state(), Some("established"));
    assert_eq!(p.ep.tunnels().next().unwrap().session_count(), 0);
}

#[test]
fn unknown_mandatory_avp_in_iccn_clears_that_session_only() {
    let mut p = Peer::new();
    p.establish();
    let replies = p.send(SessionId(0), &icrq(), vec![]);
    let Ok(Message::Icrp(icrp)) = Message::from_control(only(&replies, MessageType::ICRP)) else {
        panic!()
    };
    let iccn = iccn();
    let replies = p.send(icrp.assigned_session_id, &iccn, vec![unknown_avp(true)]);
    let rc = result_of(only(&replies, MessageType::CDN));
    assert_eq!((rc.result, rc.error), (2, Some(8)));
    assert_eq!(p.tunnel_state(), Some("established"));
}

#[test]
fn unknown_message_type_without_m_bit_is_ignored_with_m_bit_clears_the_tunnel() {
    let mut p = Peer::new();
    p.establish();
    let odd = |mandatory| ControlMessage {
        header: ControlHeader::default(),
        avps: vec![Avp {
            mandatory,
            hidden: false,
            value: AvpValue::MessageType(MessageType(50)),
        }],
    };
    let mut m = odd(false);
    m.header = ControlHeader {
        tunnel_id: p.their_tunnel,
        session_id: SessionId(0),
        ns: p.ns,
        nr: p.nr,
    };
    p.ns += 1;
    let replies = p.raw(&m.encode(None).unwrap());
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::STOPCCN))
    );
    assert_eq!(p.tunnel_state(), Some("established"));
    let mut m = odd(true);
    m.header = ControlHeader {
        tunnel_id: p.their_tunnel,
        session_id: SessionId(0),
        ns: p.ns,
        nr: p.nr,
    };
    p.ns += 1;
    let replies = p.raw(&m.encode(None).unwrap());
    let rc = result_of(only(&replies, MessageType::STOPCCN));
    assert_eq!(rc.result, 2);
}

#[test]
fn message_out_of_state_is_an_fsm_error() {
    let mut p = Peer::new();
    p.send(SessionId(0), &sccrq(), vec![]);
    p.their_tunnel = p.ep.tunnels().next().unwrap().id;
    // ICRQ before SCCCN: StopCCN result 7 (FSM error).
    let replies = p.send(SessionId(0), &icrq(), vec![]);
    assert_eq!(result_of(only(&replies, MessageType::STOPCCN)).result, 7);
}

#[test]
fn call_message_for_an_unknown_session_is_dropped_not_fatal() {
    let mut p = Peer::new();
    p.establish();
    let icrp = Message::Icrp(l2tp_proto::wire::Icrp {
        assigned_session_id: SessionId(5),
        other: Vec::new(),
    });
    let replies = p.send(SessionId(9999), &icrp, vec![]);
    assert!(
        replies.iter().all(|m| m.is_zlb()),
        "only acknowledged: {replies:?}"
    );
    assert_eq!(p.tunnel_state(), Some("established"));
    assert_eq!(
        p.ep.tunnels()
            .next()
            .unwrap()
            .counters
            .no_matching_session_discards,
        1
    );
}

#[test]
fn garbage_and_truncated_datagrams_are_counted_and_dropped() {
    let mut p = Peer::new();
    p.establish();
    let before = p.ep.counters().bad_rcvd_frames;
    for junk in [
        &[][..],
        &[0xc8][..],
        &[0xc8, 0x02, 0, 0x40][..],
        &[0x00, 0x03, 0, 0, 0, 0][..],
    ] {
        assert!(p.raw(junk).is_empty());
    }
    assert!(p.ep.counters().bad_rcvd_frames >= before + 3);
    assert!(p.ep.counters().wrong_version_frames >= 1);
    // A control message whose AVP claims a length past the end, for our tunnel.
    let mut bytes = p.send_bytes_for_test();
    let n = bytes.len();
    bytes[n - 7] = 0x03; // AVP length high bits: far past the message
    assert!(p.raw(&bytes).is_empty());
    assert_eq!(p.ep.tunnels().next().unwrap().counters.bad_messages, 1);
    assert_eq!(p.tunnel_state(), Some("established"));
}

impl Peer {
    /// An encoded HELLO for our tunnel, not sent.
    fn send_bytes_for_test(&mut self) -> Vec<u8> {
        let cm = ControlMessage {
            header: ControlHeader {
                tunnel_id: self.their_tunnel,
                session_id: SessionId(0),
                ns: self.ns,
                nr: self.nr,
            },
            avps: vec![
                Avp::new(AvpValue::MessageType(MessageType::HELLO)),
                Avp::new(AvpValue::ReceiveWindowSize(4)),
            ],
        };
        cm.encode(None).unwrap()
    }
}

#[test]
fn stopccn_to_tunnel_zero_from_a_peer_that_never_learnt_our_id_is_honoured() {
    let mut p = Peer::new();
    let replies = p.send(SessionId(0), &sccrq(), vec![]);
    only(&replies, MessageType::SCCRP);
    // The peer could not read our SCCRP (say it was hidden) and clears the
    // tunnel it opened, addressed to tunnel 0 (our id is unknown to it).
    assert_eq!(p.their_tunnel, TunnelId(0));
    let stop = Message::StopCcn(l2tp_proto::wire::StopCcn {
        assigned_tunnel_id: PEER_TUNNEL,
        result_code: ResultCode {
            result: 2,
            error: Some(6),
            message: Some(b"Invalid Hidden AVP".to_vec()),
        },
        other: Vec::new(),
    });
    let replies = p.send(SessionId(0), &stop, vec![]);
    assert!(
        replies.iter().any(|m| m.is_zlb()),
        "the StopCCN is acknowledged: {replies:?}"
    );
    assert_eq!(
        p.tunnel_state(),
        Some("lingering"),
        "our tunnel was cleared, not left retransmitting SCCRP"
    );
    // A StopCCN naming a tunnel nobody opened gets no state, but a ZLB to
    // the tunnel it names, so that its sender stops retransmitting it.
    let mut q = Peer::new();
    let stray = Message::StopCcn(l2tp_proto::wire::StopCcn {
        assigned_tunnel_id: TunnelId(9),
        result_code: ResultCode {
            result: 1,
            error: None,
            message: None,
        },
        other: Vec::new(),
    });
    let replies = q.send(SessionId(0), &stray, vec![]);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].is_zlb());
    assert_eq!(replies[0].header.tunnel_id, TunnelId(9));
    assert!(q.ep.is_idle());
    assert_eq!(q.ep.counters().no_matching_tunnel_id_discards, 1);
    assert_eq!(q.ep.counters().unknown_tunnel_zlbs, 1);
}
