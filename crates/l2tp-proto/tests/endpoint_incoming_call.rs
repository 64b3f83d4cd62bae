//! Call admission as the driver's decision: a peer's ICRQ / OCRQ that
//! passes the tunnel's protocol checks is reported as
//! [`Output::IncomingCall`] and held pending, unanswered, until the driver
//! accepts it (ICRP, or OCRP then OCCN, carrying the acknowledgement) or
//! refuses it (CDN with the driver's Result and Error Codes, RFC 2661
//! §4.4.2). A call left undecided is refused with CDN result 4 at its
//! set-up deadline; a decision on a call no longer pending is an error and
//! sends nothing.

mod scripted;

use std::time::Duration;

use l2tp_proto::endpoint::{IncomingCall, IncomingCallError};
use l2tp_proto::event::{Command, Event, Output, TunnelConfig};
use l2tp_proto::session::CallType;
use l2tp_proto::tunnel::CallRefusal;
use l2tp_proto::wire::{
    BearerCaps, ControlHeader, ControlMessage, FramingCaps, Icrq, Message, MessageType, Ocrq,
    SessionId, TunnelId,
};
use scripted::*;

/// Set-up deadline of the tunnels in these tests.
const SETUP: Duration = Duration::from_secs(10);

/// An established tunnel whose peer's calls are left to each test to decide.
fn established() -> Peer {
    let mut p = Peer::new();
    p.accept_with = Some(TunnelConfig {
        session_establish_timeout: SETUP,
        hello_interval: None,
        ..TunnelConfig::default()
    });
    p.establish();
    p.decide_call = None;
    p
}

/// Send `msg` in sequence; returns the outputs of that one input, undecided.
fn feed(p: &mut Peer, session: SessionId, msg: &Message) -> Vec<Output> {
    let cm = msg.to_control(ControlHeader {
        tunnel_id: p.their_tunnel,
        session_id: session,
        ns: p.ns,
        nr: p.nr,
    });
    p.ns = p.ns.wrapping_add(1);
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &cm.encode(None).unwrap());
    outputs(p)
}

fn outputs(p: &mut Peer) -> Vec<Output> {
    std::iter::from_fn(|| p.ep.poll_output()).collect()
}

/// The control messages among `out` (learning the Nr to send next).
fn sent(p: &mut Peer, out: &[Output]) -> Vec<ControlMessage> {
    let mut got = Vec::new();
    for o in out {
        if let Output::Transmit(t) = o {
            let m = ControlMessage::decode(&t.data, None).unwrap();
            if !m.is_zlb() {
                p.nr = m.header.ns.wrapping_add(1);
            }
            got.push(m);
        }
    }
    got
}

/// The one `IncomingCall` among `out`.
fn the_call(out: &[Output]) -> IncomingCall {
    let calls: Vec<&IncomingCall> = out
        .iter()
        .filter_map(|o| match o {
            Output::IncomingCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "one IncomingCall in {out:?}");
    calls[0].clone()
}

fn icrq_from(peer_session: u16, calling: &[u8]) -> Message {
    Message::Icrq(Icrq {
        assigned_session_id: SessionId(peer_session),
        call_serial_number: 4711,
        bearer_type: Some(BearerCaps(2)),
        physical_channel_id: Some(9),
        calling_number: Some(calling.to_vec()),
        called_number: Some(b"100".to_vec()),
        sub_address: None,
        other: Vec::new(),
    })
}

fn tunnel_id(p: &Peer) -> TunnelId {
    p.ep.tunnels().next().unwrap().id
}

#[test]
fn an_icrq_is_reported_and_nothing_is_answered_until_decided() {
    let mut p = established();
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"5551234"));
    let call = the_call(&out);
    assert!(
        sent(&mut p, &out).is_empty(),
        "no ICRP, no CDN, and no ZLB: the answer will carry the acknowledgement"
    );
    assert_eq!(call.tunnel(), tunnel_id(&p));
    assert_eq!(call.call_type(), CallType::LnsIncoming);
    assert_eq!(call.peer_session(), SessionId(21));
    assert_eq!(call.serial(), 4711);
    assert_eq!(call.info().calling_number.as_deref(), Some(&b"5551234"[..]));
    assert_eq!(call.info().called_number.as_deref(), Some(&b"100"[..]));
    assert_eq!(call.info().bearer_type, Some(2));
    assert_eq!(call.info().physical_channel_id, Some(9));
    assert_eq!(p.ep.session_count(), 0, "a pending call is not a session");
    let t = p.ep.tunnel(call.tunnel()).unwrap();
    assert_eq!((t.session_count(), t.pending_call_count()), (0, 1));
}

#[test]
fn an_accepted_icrq_gets_an_icrp_with_a_fresh_session_id_that_acknowledges_it() {
    let mut p = established();
    let icrq_ns = p.ns;
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let call = the_call(&out);
    let id = p.ep.accept_call(p.now, &mut p.rng, call).unwrap();
    let out = outputs(&mut p);
    let replies = sent(&mut p, &out);
    assert_eq!(replies.len(), 1, "the ICRP alone, no ZLB: {replies:?}");
    let icrp = only(&replies, MessageType::ICRP);
    assert_eq!(icrp.header.session_id, SessionId(21), "to the peer's call");
    assert_eq!(
        icrp.header.nr,
        icrq_ns.wrapping_add(1),
        "acknowledges the ICRQ"
    );
    let Ok(Message::Icrp(m)) = Message::from_control(icrp) else {
        panic!("ICRP")
    };
    assert_eq!(m.assigned_session_id, id);
    assert_ne!(id.0, 0);
    let t = p.ep.tunnel(tunnel_id(&p)).unwrap();
    assert_eq!((t.session_count(), t.pending_call_count()), (1, 0));
    let s = &t.sessions[&id];
    assert_eq!(
        (s.peer_id, s.call_type),
        (SessionId(21), CallType::LnsIncoming)
    );
    assert_eq!(s.peer_info().calling_number.as_deref(), Some(&b"1"[..]));
    // The ICCN brings the call up.
    let out = feed(&mut p, id, &iccn());
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Action(l2tp_proto::event::Action::CreateSession { session, .. }) if *session == id))
    );
}

#[test]
fn a_refused_call_gets_a_cdn_with_the_drivers_result_and_error_code() {
    let mut p = established();
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let refusal = CallRefusal {
        result: 2,
        error: Some(4),
        text: "out of modems".into(),
    };
    p.ep.refuse_call(p.now, &mut p.rng, the_call(&out), refusal)
        .unwrap();
    let out = outputs(&mut p);
    let replies = sent(&mut p, &out);
    let cdn = only(&replies, MessageType::CDN);
    assert_eq!(cdn.header.session_id, SessionId(21));
    let rc = result_of(cdn);
    assert_eq!((rc.result, rc.error), (2, Some(4)));
    assert_eq!(rc.message.as_deref(), Some(&b"out of modems"[..]));
    assert_eq!(p.ep.session_count(), 0);
    assert_eq!(p.ep.counters().calls_refused, 1);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Event(_))),
        "a refused call was never a session: no SessionDown"
    );
    // result 4 as the driver's session limits send it (Error Code 0 in
    // front of the text, RFC 2661 §4.4.2).
    let out = feed(&mut p, SessionId(0), &icrq_from(22, b"1"));
    p.ep.refuse_call(
        p.now,
        &mut p.rng,
        the_call(&out),
        CallRefusal::no_facilities("system session limit reached"),
    )
    .unwrap();
    let out = outputs(&mut p);
    let rc = result_of(only(&sent(&mut p, &out), MessageType::CDN));
    assert_eq!((rc.result, rc.error), (4, Some(0)));
}

#[test]
fn a_call_left_undecided_is_refused_with_cdn_4_at_its_setup_deadline() {
    let mut p = established();
    let start = p.now;
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let call = the_call(&out);
    drop(out);
    // The driver never decides: run the timers up to the deadline.
    let mut cdn_at = None;
    while let Some(t) = p.ep.poll_timeout() {
        if t > start + SETUP + Duration::from_secs(1) {
            break;
        }
        p.now = t;
        p.ep.handle_timeout(p.now, &mut p.rng);
        let out = outputs(&mut p);
        let replies = sent(&mut p, &out);
        if let Some(cdn) = replies
            .iter()
            .find(|m| m.message_type() == Some(MessageType::CDN))
        {
            let rc = result_of(cdn);
            assert_eq!(rc.result, 4, "no appropriate facilities, temporary");
            assert_eq!(
                rc.message.as_deref(),
                Some(&b"no admission decision in time"[..])
            );
            assert_eq!(cdn.header.session_id, SessionId(21));
            cdn_at = Some(p.now);
            break;
        }
    }
    assert_eq!(cdn_at, Some(start + SETUP), "at the set-up deadline");
    assert_eq!(p.ep.counters().undecided_calls, 1);
    let t = p.ep.tunnel(tunnel_id(&p)).unwrap();
    assert_eq!(t.pending_call_count(), 0);
    // Too late to decide now.
    assert_eq!(
        p.ep.accept_call(p.now, &mut p.rng, call),
        Err(IncomingCallError::NotPending)
    );
    assert!(outputs(&mut p).is_empty(), "nothing more is sent");
}

#[test]
fn a_stale_decision_does_not_decide_a_later_call_with_the_same_peer_session_id() {
    let mut p = established();
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let first = the_call(&out);
    p.ep.refuse_call(
        p.now,
        &mut p.rng,
        first.clone(),
        CallRefusal::no_facilities("busy"),
    )
    .unwrap();
    let out = outputs(&mut p);
    sent(&mut p, &out);
    // The peer tries again with the same Assigned Session ID.
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let second = the_call(&out);
    assert_eq!(
        p.ep.accept_call(p.now, &mut p.rng, first),
        Err(IncomingCallError::NotPending),
        "the first call's report decides nothing"
    );
    assert!(outputs(&mut p).is_empty());
    p.ep.accept_call(p.now, &mut p.rng, second).unwrap();
    let out = outputs(&mut p);
    only(&sent(&mut p, &out), MessageType::ICRP);
}

#[test]
fn deciding_twice_is_an_error_and_sends_nothing() {
    let mut p = established();
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let call = the_call(&out);
    p.ep.accept_call(p.now, &mut p.rng, call.clone()).unwrap();
    let out = outputs(&mut p);
    only(&sent(&mut p, &out), MessageType::ICRP);
    assert_eq!(
        p.ep.refuse_call(p.now, &mut p.rng, call, CallRefusal::no_facilities("x")),
        Err(IncomingCallError::NotPending)
    );
    assert!(outputs(&mut p).is_empty());
    assert_eq!(p.ep.counters().calls_refused, 0);
    assert_eq!(p.ep.session_count(), 1);
}

#[test]
fn a_second_icrq_with_a_pending_calls_peer_session_id_is_refused_with_cdn_2_5() {
    let mut p = established();
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let call = the_call(&out);
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"2"));
    assert!(!out.iter().any(|o| matches!(o, Output::IncomingCall(_))));
    let rc = result_of(only(&sent(&mut p, &out), MessageType::CDN));
    assert_eq!((rc.result, rc.error), (2, Some(5)), "invalid session id");
    // The pending call is untouched.
    p.ep.accept_call(p.now, &mut p.rng, call).unwrap();
    let out = outputs(&mut p);
    only(&sent(&mut p, &out), MessageType::ICRP);
}

#[test]
fn a_decision_after_the_tunnel_closed_is_an_error() {
    let mut p = established();
    let id = tunnel_id(&p);
    let out = feed(&mut p, SessionId(0), &icrq_from(21, b"1"));
    let call = the_call(&out);
    p.ep.handle_command(
        p.now,
        &mut p.rng,
        Command::CloseTunnel {
            tunnel: id,
            result: 1,
            message: None,
        },
    )
    .unwrap();
    let out = outputs(&mut p);
    let replies = sent(&mut p, &out);
    only(&replies, MessageType::STOPCCN);
    assert!(
        replies
            .iter()
            .all(|m| m.message_type() != Some(MessageType::CDN)),
        "the pending call goes with the tunnel: its StopCCN clears it"
    );
    assert_eq!(p.ep.tunnel(id).unwrap().pending_call_count(), 0);
    assert_eq!(
        p.ep.accept_call(p.now, &mut p.rng, call.clone()),
        Err(IncomingCallError::NotPending),
        "tunnel closing"
    );
    // The peer acknowledges the StopCCN: the tunnel is freed.
    let zlb = ControlMessage {
        header: ControlHeader {
            tunnel_id: p.their_tunnel,
            session_id: SessionId(0),
            ns: p.ns,
            nr: p.nr,
        },
        avps: Vec::new(),
    };
    p.ep.handle_datagram(p.now, &mut p.rng, p.from, &zlb.encode(None).unwrap());
    let out = outputs(&mut p);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::TunnelFreed { tunnel }) if *tunnel == id))
    );
    assert_eq!(
        p.ep.accept_call(p.now, &mut p.rng, call),
        Err(IncomingCallError::NoSuchTunnel(id))
    );
    assert!(outputs(&mut p).is_empty());
}

#[test]
fn an_accepted_ocrq_gets_an_ocrp_then_an_occn() {
    let mut p = established();
    let ocrq = Message::Ocrq(Ocrq {
        assigned_session_id: SessionId(33),
        call_serial_number: 8,
        minimum_bps: 0,
        maximum_bps: 64000,
        bearer_type: BearerCaps(1),
        framing_type: FramingCaps(1),
        called_number: b"5550000".to_vec(),
        sub_address: None,
        other: Vec::new(),
    });
    let out = feed(&mut p, SessionId(0), &ocrq);
    let call = the_call(&out);
    assert!(sent(&mut p, &out).is_empty(), "nothing before the decision");
    assert_eq!(call.call_type(), CallType::LacOutgoing);
    assert_eq!(call.info().called_number.as_deref(), Some(&b"5550000"[..]));
    let id = p.ep.accept_call(p.now, &mut p.rng, call).unwrap();
    let out = outputs(&mut p);
    let types: Vec<Option<MessageType>> = sent(&mut p, &out)
        .iter()
        .map(|m| m.message_type())
        .collect();
    assert_eq!(
        types,
        [Some(MessageType::OCRP), Some(MessageType::OCCN)],
        "OCRP then OCCN (RFC 2661 §7.5.1)"
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Action(l2tp_proto::event::Action::CreateSession { session, call_type: CallType::LacOutgoing, .. })
            if *session == id
    )));
}
