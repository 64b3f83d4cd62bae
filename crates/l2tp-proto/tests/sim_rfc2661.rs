//! The RFC 2661 control protocol under hostile conditions: all four call
//! types under 30 % loss with reordering and duplication, crossed SCCRQs and
//! the Tie Breaker, window exhaustion, authentication and hidden AVPs in both
//! directions, a thousand calls in one tunnel, WEN and SLI.

mod sim;

use std::time::Duration;

use l2tp_proto::event::{AuthMode, CloseReason, Command, Event, Output, TunnelConfig};
use l2tp_proto::session::CallType;
use l2tp_proto::wire::{ControlMessage, MessageType, SessionId, TunnelId};
use sim::{Impairments, Sim, accept_all};

fn cfg(name: &str) -> TunnelConfig {
    TunnelConfig {
        host_name: name.as_bytes().to_vec(),
        ..TunnelConfig::default()
    }
}

fn open(s: &mut Sim, on_b: bool, config: TunnelConfig) -> TunnelId {
    s.open_tunnel(on_b, config)
}

fn call(s: &mut Sim, tunnel: TunnelId, call_type: CallType) -> SessionId {
    s.place_call(tunnel, call_type)
}

fn up_calls(n: &sim::Node, t: CallType) -> usize {
    n.count_events(|e| matches!(e, Event::SessionUp { call_type, .. } if *call_type == t))
}

fn tunnels_up(n: &sim::Node) -> usize {
    n.count_events(|e| matches!(e, Event::TunnelUp { .. }))
}

#[test]
fn all_four_call_types_under_30_percent_loss_reordering_and_duplication() {
    let mut retransmits = 0;
    for seed in 100..130 {
        // At 30 % loss each way a retransmission and its acknowledgement both
        // arrive with p = 0.49: the default 5 retries lose a message's six
        // tries with p ≈ 1.8 %, so a lossy link is configured with more.
        let lossy = |name| {
            let mut c = cfg(name);
            c.channel.max_retries = 8;
            c
        };
        let mut s = Sim::new(
            seed,
            Impairments::lossy(0.3),
            None,
            accept_all(lossy("lns")),
        );
        let t = open(&mut s, false, lossy("lac"));
        for _ in 0..2 {
            call(&mut s, t, CallType::LacIncoming);
            call(&mut s, t, CallType::LnsOutgoing);
        }
        let ok = s.run_until(Duration::from_secs(600), |s| {
            up_calls(&s.a, CallType::LacIncoming) == 2
                && up_calls(&s.a, CallType::LnsOutgoing) == 2
                && up_calls(&s.b, CallType::LnsIncoming) == 2
                && up_calls(&s.b, CallType::LacOutgoing) == 2
        });
        assert!(ok, "seed {seed}: calls not all up after {:?}", s.elapsed());
        // Impairments really happened, and the channel really recovered from them.
        assert!(s.dropped > 0, "seed {seed}: nothing was lost");
        let ta = s.a.ep.tunnel(t).unwrap();
        let tb = s.b.ep.tunnel(ta.peer_id).unwrap();
        // (A seed whose losses hit only ZLBs recovers through later acknowledgements.)
        retransmits += ta.channel.counters().retransmits + tb.channel.counters().retransmits;
        // No call was torn down on the way.
        assert_eq!(
            s.a.count_events(|e| matches!(e, Event::SessionDown { .. })),
            0,
            "seed {seed}"
        );
        assert_eq!(
            s.b.count_events(|e| matches!(e, Event::SessionDown { .. })),
            0,
            "seed {seed}"
        );
    }
    assert!(retransmits > 30, "loss was recovered by retransmission");
}

#[test]
fn crossed_sccrqs_leave_one_tunnel_chosen_by_the_tie_breaker() {
    let mut a_won = 0;
    let mut b_won = 0;
    for seed in 0..20 {
        let tb = TunnelConfig {
            use_tiebreaker: true,
            ..cfg("x")
        };
        let mut s = Sim::new(
            seed,
            Impairments::NONE,
            accept_all(tb.clone()),
            accept_all(tb.clone()),
        );
        let ta = open(&mut s, false, tb.clone());
        let own = call(&mut s, ta, CallType::LacIncoming);
        let tbid = open(&mut s, true, tb);
        assert!(
            s.run_until(Duration::from_secs(10), |s| up_calls(
                &s.a,
                CallType::LacIncoming
            ) == 1),
            "seed {seed}"
        );
        s.run_for(Duration::from_secs(2));
        // Exactly one tunnel on each side, established once.
        assert_eq!(s.a.ep.tunnels().count(), 1, "seed {seed}");
        assert_eq!(s.b.ep.tunnels().count(), 1, "seed {seed}");
        assert_eq!(tunnels_up(&s.a), 1, "seed {seed}");
        assert_eq!(tunnels_up(&s.b), 1, "seed {seed}");
        let (ca, cb) = (s.a.ep.counters(), s.b.ep.counters());
        assert_eq!(ca.tie_breakers_won + ca.tie_breakers_lost, 1, "seed {seed}");
        assert_eq!(ca.tie_breakers_won, cb.tie_breakers_lost, "seed {seed}");
        let survivor = s.a.ep.tunnels().next().unwrap();
        if ca.tie_breakers_won == 1 {
            a_won += 1;
            assert_eq!(survivor.id, ta);
            assert!(survivor.initiator);
        } else {
            b_won += 1;
            assert_eq!(survivor.peer_id, tbid);
            assert!(!survivor.initiator);
            // Our call moved to the peer's tunnel with its session id.
            let moved = s.a.events().find_map(|e| match e {
                Event::TunnelReplaced { old, sessions, .. } => Some((*old, sessions.clone())),
                _ => None,
            });
            assert_eq!(moved, Some((ta, vec![own])), "seed {seed}");
            assert!(survivor.sessions.contains_key(&own), "seed {seed}");
        }
    }
    // The seeds exercise both outcomes.
    assert!(a_won > 0 && b_won > 0, "a won {a_won}, b won {b_won}");
}

#[test]
fn send_window_never_exceeds_the_peers_receive_window() {
    let lns = TunnelConfig {
        channel: l2tp_proto::reliable::ChannelConfig {
            rx_window: 4,
            ..Default::default()
        },
        ..cfg("lns")
    };
    let mut s = Sim::new(
        21,
        Impairments {
            jitter: Duration::from_millis(50),
            ..Impairments::NONE
        },
        None,
        accept_all(lns),
    );
    let t = open(&mut s, false, cfg("lac"));
    for _ in 0..30 {
        call(&mut s, t, CallType::LacIncoming);
    }
    let mut max_in_flight = 0;
    let mut queued_seen = false;
    let ok = s.run_until(Duration::from_secs(60), |s| {
        let ch = &s.a.ep.tunnel(t).unwrap().channel;
        max_in_flight = max_in_flight.max(ch.in_flight());
        queued_seen |= ch.unacked() > ch.in_flight();
        up_calls(&s.a, CallType::LacIncoming) == 30
    });
    assert!(ok);
    assert!(
        max_in_flight <= 4,
        "in flight {max_in_flight} > peer's window 4"
    );
    assert_eq!(max_in_flight, 4, "the window was used fully");
    assert!(queued_seen, "messages waited for the window");
    assert_eq!(s.a.ep.tunnel(t).unwrap().channel.peer_rws(), 4);
}

fn auth_case(lac: TunnelConfig, lns: TunnelConfig) -> Sim {
    let mut s = Sim::new(31, Impairments::NONE, None, accept_all(lns));
    let t = open(&mut s, false, lac);
    call(&mut s, t, CallType::LacIncoming);
    s.run_for(Duration::from_secs(5));
    s
}

fn with_secret(name: &str, secret: &str, mode: AuthMode) -> TunnelConfig {
    TunnelConfig {
        secret: Some(secret.as_bytes().to_vec()),
        auth_mode: mode,
        ..cfg(name)
    }
}

#[test]
fn authentication_succeeds_when_only_the_lac_challenges() {
    let s = auth_case(
        with_secret("lac", "k", AuthMode::Challenge),
        with_secret("lns", "k", AuthMode::None),
    );
    assert_eq!(up_calls(&s.a, CallType::LacIncoming), 1);
}

#[test]
fn authentication_succeeds_when_only_the_lns_challenges() {
    let s = auth_case(
        with_secret("lac", "k", AuthMode::None),
        with_secret("lns", "k", AuthMode::Challenge),
    );
    assert_eq!(up_calls(&s.a, CallType::LacIncoming), 1);
}

#[test]
fn lns_refuses_a_wrong_challenge_response_with_result_4() {
    let s = auth_case(
        with_secret("lac", "wrong", AuthMode::None),
        with_secret("lns", "right", AuthMode::Challenge),
    );
    assert_eq!(
        tunnels_up(&s.b),
        0,
        "the LNS must not consider the tunnel up"
    );
    let b = s.b.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(
            &b,
            Some(CloseReason::ProtocolError {
                result: 4,
                violation: l2tp_proto::violation::Violation::NotAuthorized(
                    "wrong Challenge Response"
                ),
                ..
            })
        ),
        "{b:?}"
    );
    let a = s.a.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(a, Some(CloseReason::Peer { result: 4, .. })),
        "{a:?}"
    );
    assert_eq!(
        s.b.ep.counters().auth_fails,
        1,
        "the LNS counts the failure, even after freeing the tunnel"
    );
    assert_eq!(s.a.ep.counters().auth_fails, 0);
}

#[test]
fn a_challenge_without_a_configured_secret_is_refused() {
    let s = auth_case(cfg("lac"), with_secret("lns", "k", AuthMode::Challenge));
    let a = s.a.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(a, Some(CloseReason::ProtocolError { result: 4, .. })),
        "{a:?}"
    );
}

/// Decode every control message a node transmitted, unhiding with `secret`.
fn transmitted(n: &sim::Node, secret: &[u8]) -> Vec<ControlMessage> {
    n.log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Transmit(t) => Some(
                ControlMessage::decode(&t.data, Some(secret)).expect("our own messages decode"),
            ),
            _ => None,
        })
        .collect()
}

#[test]
fn hidden_avps_work_in_both_directions() {
    let secret = "hide-me";
    let lac = TunnelConfig {
        hide_avps: true,
        ..with_secret("lac", secret, AuthMode::Challenge)
    };
    let lns = TunnelConfig {
        hide_avps: true,
        ..with_secret("lns", secret, AuthMode::Challenge)
    };
    let mut s = Sim::new(41, Impairments::lossy(0.1), None, accept_all(lns));
    let t = open(&mut s, false, lac);
    call(&mut s, t, CallType::LacIncoming);
    call(&mut s, t, CallType::LnsOutgoing);
    assert!(s.run_until(Duration::from_secs(120), |s| up_calls(
        &s.a,
        CallType::LacIncoming
    ) == 1
        && up_calls(&s.a, CallType::LnsOutgoing) == 1));
    for (n, name) in [(&s.a, "lac"), (&s.b, "lns")] {
        let msgs = transmitted(n, secret.as_bytes());
        let hidden: usize = msgs
            .iter()
            .map(|m| m.avps.iter().filter(|a| a.hidden).count())
            .sum();
        assert!(hidden > 0, "{name} hid nothing");
        for m in &msgs {
            if matches!(
                m.message_type(),
                Some(MessageType::SCCRQ | MessageType::SCCRP)
            ) {
                assert!(
                    m.avps.iter().all(|a| !a.hidden),
                    "{name}: SCCRQ and SCCRP must not hide AVPs (Cisco, xl2tpd)"
                );
            }
            if m.avps.iter().any(|a| a.hidden) {
                assert!(
                    m.avps
                        .iter()
                        .any(|a| matches!(a.value, l2tp_proto::wire::AvpValue::RandomVector(_))),
                    "{name}: hidden AVPs without a Random Vector"
                );
            }
        }
    }
}

#[test]
fn a_thousand_calls_in_one_tunnel() {
    let net = Impairments {
        jitter: Duration::from_millis(30),
        ..Impairments::NONE
    };
    let mut s = Sim::new(51, net, None, accept_all(cfg("lns")));
    let t = open(&mut s, false, cfg("lac"));
    let ids: std::collections::HashSet<SessionId> = (0..1000)
        .map(|_| call(&mut s, t, CallType::LacIncoming))
        .collect();
    assert_eq!(ids.len(), 1000, "session ids are unique");
    assert!(s.run_until(Duration::from_secs(120), |s| up_calls(
        &s.b,
        CallType::LnsIncoming
    ) == 1000
        && up_calls(&s.a, CallType::LacIncoming) == 1000));
    let ta = s.a.ep.tunnel(t).unwrap();
    assert_eq!(ta.session_count(), 1000);
    // Each LAC session is paired with a distinct LNS session.
    let peers: std::collections::HashSet<SessionId> =
        ta.sessions.values().map(|x| x.peer_id).collect();
    assert_eq!(peers.len(), 1000);
}

#[test]
fn wen_and_sli_are_delivered_as_events() {
    let mut s = Sim::new(61, Impairments::NONE, None, accept_all(cfg("lns")));
    let t = open(&mut s, false, cfg("lac"));
    let sid = call(&mut s, t, CallType::LacIncoming);
    assert!(s.run_until(Duration::from_secs(5), |s| up_calls(
        &s.b,
        CallType::LnsIncoming
    ) == 1));
    let peer_t = s.a.ep.tunnel(t).unwrap().peer_id;
    let peer_s = s.a.ep.tunnel(t).unwrap().sessions[&sid].peer_id;
    let now = s.now;
    // The LAC reports WAN errors; the LNS tells the LAC the negotiated ACCM.
    s.a.ep
        .handle_command(
            now,
            &mut s.a.rng,
            Command::SendWen {
                tunnel: t,
                session: sid,
                errors: [1, 2, 3, 4, 5, 6],
            },
        )
        .unwrap();
    s.b.ep
        .handle_command(
            now,
            &mut s.b.rng,
            Command::SendSli {
                tunnel: peer_t,
                session: peer_s,
                send_accm: 0xffff_ffff,
                recv_accm: 0x000a_0000,
            },
        )
        .unwrap();
    s.run_for(Duration::from_secs(1));
    assert!(s.b.events().any(|e| matches!(e, Event::WanErrorNotify { session, errors: [1, 2, 3, 4, 5, 6], .. } if *session == peer_s)));
    assert!(s.a.events().any(|e| matches!(e, Event::SetLinkInfo { session, send_accm: 0xffff_ffff, recv_accm: 0x000a_0000, .. } if *session == sid)));
    // Unknown sessions are refused.
    let err = s.a.ep.handle_command(
        now,
        &mut s.a.rng,
        Command::SendSli {
            tunnel: t,
            session: SessionId(1),
            send_accm: 0,
            recv_accm: 0,
        },
    );
    assert!(
        err.is_err()
            || s.a
                .ep
                .tunnel(t)
                .unwrap()
                .sessions
                .contains_key(&SessionId(1))
    );
}
