//! Deterministic simulations of two endpoints: tunnel and call setup, loss,
//! retransmission schedule, tear-down, keepalives and authentication.

mod sim;

use std::time::Duration;

use l2tp_proto::event::{Action, AuthMode, CloseReason, Command, Event, Output, TunnelConfig};
use l2tp_proto::session::{CallParams, CallType};
use l2tp_proto::tunnel::Refusal;
use l2tp_proto::wire::{SessionId, TunnelId};
use sim::{Impairments, Sim, accept_all, addr_b};

fn lac_config() -> TunnelConfig {
    TunnelConfig {
        host_name: b"lac".to_vec(),
        ..TunnelConfig::default()
    }
}

fn lns_config() -> TunnelConfig {
    TunnelConfig {
        host_name: b"lns".to_vec(),
        ..TunnelConfig::default()
    }
}

fn open_tunnel(s: &mut Sim, config: TunnelConfig) -> TunnelId {
    s.open_tunnel(false, config)
}

fn place_call(s: &mut Sim, tunnel: TunnelId, call_type: CallType) -> SessionId {
    s.place_call(tunnel, call_type)
}

fn tunnel_up(n: &sim::Node) -> usize {
    n.count_events(|e| matches!(e, Event::TunnelUp { .. }))
}

fn sessions_up(n: &sim::Node) -> usize {
    n.count_events(|e| matches!(e, Event::SessionUp { .. }))
}

#[test]
fn tunnel_and_incoming_call_come_up_without_loss() {
    let mut s = Sim::new(1, Impairments::NONE, None, accept_all(lns_config()));
    let t = open_tunnel(&mut s, lac_config());
    let sid = place_call(&mut s, t, CallType::LacIncoming);
    assert!(
        s.run_until(Duration::from_secs(5), |s| sessions_up(&s.a) == 1
            && sessions_up(&s.b) == 1)
    );
    // Both sides agree on each other's ids.
    let ta = s.a.ep.tunnel(t).expect("LAC tunnel");
    let tb =
        s.b.ep
            .tunnel(ta.peer_id)
            .expect("LNS tunnel by the id the LAC learned");
    assert_eq!(tb.peer_id, t);
    assert_eq!(ta.peer_host_name, b"lns");
    assert_eq!(tb.peer_host_name, b"lac");
    let sa = &ta.sessions[&sid];
    let sb = &tb.sessions[&sa.peer_id];
    assert_eq!(sb.peer_id, sid);
    assert_eq!(sa.call_type, CallType::LacIncoming);
    assert_eq!(sb.call_type, CallType::LnsIncoming);
    // The LNS programs the kernel in LNS mode, the LAC not.
    let lns_mode = |n: &sim::Node| {
        n.actions()
            .find_map(|a| match a {
                l2tp_proto::event::Action::CreateSession { call_type, .. } => {
                    Some(call_type.is_lns())
                }
                _ => None,
            })
            .unwrap()
    };
    assert!(!lns_mode(&s.a));
    assert!(lns_mode(&s.b));
    // No loss: nothing retransmitted.
    assert_eq!(ta.channel.counters().retransmits, 0);
}

#[test]
fn outgoing_call_comes_up() {
    // A is the LNS placing an outgoing call (OCRQ) through B, the LAC.
    let mut s = Sim::new(2, Impairments::NONE, None, accept_all(lac_config()));
    let t = open_tunnel(&mut s, lns_config());
    place_call(&mut s, t, CallType::LnsOutgoing);
    assert!(
        s.run_until(Duration::from_secs(5), |s| sessions_up(&s.a) == 1
            && sessions_up(&s.b) == 1)
    );
    let b_type = s.b.events().find_map(|e| match e {
        Event::SessionUp { call_type, .. } => Some(*call_type),
        _ => None,
    });
    assert_eq!(b_type, Some(CallType::LacOutgoing));
}

#[test]
fn tunnel_and_session_come_up_under_20_percent_loss() {
    for seed in 0..40 {
        let mut s = Sim::new(
            seed,
            Impairments::lossy(0.2),
            None,
            accept_all(lns_config()),
        );
        let t = open_tunnel(&mut s, lac_config());
        place_call(&mut s, t, CallType::LacIncoming);
        place_call(&mut s, t, CallType::LacIncoming);
        let ok = s.run_until(Duration::from_secs(120), |s| {
            sessions_up(&s.a) == 2 && sessions_up(&s.b) == 2
        });
        assert!(
            ok,
            "seed {seed}: not up after {:?}; a events {:?}",
            s.elapsed(),
            s.a.events().collect::<Vec<_>>()
        );
        assert_eq!(tunnel_up(&s.a), 1, "seed {seed}");
        assert_eq!(tunnel_up(&s.b), 1, "seed {seed}");
    }
}

#[test]
fn retransmissions_follow_rfc2661_schedule_then_tunnel_is_cleared() {
    // The LNS is dead from the start: SCCRQ is never answered.
    let mut s = Sim::new(3, Impairments::NONE, None, None);
    s.b.alive = false;
    let t = open_tunnel(&mut s, lac_config());
    s.run_for(Duration::from_secs(60));
    let times: Vec<u64> =
        s.a.transmit_times()
            .iter()
            .map(|t| (*t - s.start).as_millis() as u64)
            .collect();
    // Send at 0, then retransmit after 1, 2, 4, 8, 8 s (doubling, capped at 8 s), 5 retries.
    assert_eq!(times, vec![0, 1000, 3000, 7000, 15000, 23000]);
    let down = s.a.events().find_map(|e| match e {
        Event::TunnelDown { tunnel, reason } if *tunnel == t => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(down, Some(CloseReason::PeerUnreachable));
    assert!(s.a.count_events(|e| matches!(e, Event::TunnelFreed { .. })) == 1);
    // Given up 8 s after the last retransmission.
    let freed_at =
        s.a.log
            .iter()
            .find_map(|(t, o)| matches!(o, Output::Event(Event::TunnelFreed { .. })).then_some(*t))
            .unwrap();
    assert_eq!((freed_at - s.start).as_millis(), 31_000);
    assert!(s.a.ep.is_idle());
}

#[test]
fn retransmission_cap_and_count_are_configurable() {
    let mut s = Sim::new(4, Impairments::NONE, None, None);
    s.b.alive = false;
    let mut cfg = lac_config();
    cfg.channel.retry_timeout = Duration::from_millis(200);
    cfg.channel.retry_max_timeout = Duration::from_millis(400);
    cfg.channel.max_retries = 3;
    open_tunnel(&mut s, cfg);
    s.run_for(Duration::from_secs(10));
    let times: Vec<u64> =
        s.a.transmit_times()
            .iter()
            .map(|t| (*t - s.start).as_millis() as u64)
            .collect();
    assert_eq!(times, vec![0, 200, 600, 1000]);
}

#[test]
fn shutdown_sends_cdn_and_stopccn_and_peer_clears_everything() {
    let mut s = Sim::new(5, Impairments::NONE, None, accept_all(lns_config()));
    let t = open_tunnel(&mut s, lac_config());
    place_call(&mut s, t, CallType::LacIncoming);
    assert!(s.run_until(Duration::from_secs(5), |s| sessions_up(&s.b) == 1));
    let now = s.now;
    s.a.ep
        .handle_command(now, &mut s.a.rng, Command::Shutdown)
        .unwrap();
    assert!(
        s.run_until(Duration::from_secs(5), |s| s.a.ep.is_idle()),
        "LAC did not free its tunnel"
    );
    // The LNS saw the CDN for the session and StopCCN (result 6) for the tunnel.
    let b_session_down = s.b.events().find_map(|e| match e {
        Event::SessionDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(b_session_down, Some(CloseReason::Peer { result: 3, .. })),
        "{b_session_down:?}"
    );
    let b_tunnel_down = s.b.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(b_tunnel_down, Some(CloseReason::Peer { result: 6, .. })),
        "{b_tunnel_down:?}"
    );
    // Both deleted their kernel objects.
    for n in [&s.a, &s.b] {
        assert_eq!(
            n.actions()
                .filter(|a| matches!(a, l2tp_proto::event::Action::DeleteSession { .. }))
                .count(),
            1,
            "{}",
            n.name
        );
        assert_eq!(
            n.actions()
                .filter(|a| matches!(a, l2tp_proto::event::Action::DeleteTunnel { .. }))
                .count(),
            1,
            "{}",
            n.name
        );
    }
    // The LNS lingers a full retransmission cycle (31 s by default) and then frees.
    assert!(!s.b.ep.is_idle());
    s.run_for(Duration::from_secs(40));
    assert!(s.b.ep.is_idle());
}

#[test]
fn hello_is_sent_when_idle_and_dead_peer_clears_tunnel() {
    let mut cfg = lac_config();
    cfg.hello_interval = Some(Duration::from_secs(2));
    cfg.channel.retry_timeout = Duration::from_millis(200);
    cfg.channel.retry_max_timeout = Duration::from_millis(400);
    cfg.channel.max_retries = 3;
    let mut s = Sim::new(6, Impairments::NONE, None, accept_all(lns_config()));
    let t = open_tunnel(&mut s, cfg);
    place_call(&mut s, t, CallType::LacIncoming);
    assert!(s.run_until(Duration::from_secs(5), |s| sessions_up(&s.a) == 1));
    s.run_for(Duration::from_secs(5));
    let hellos = s.a.ep.tunnel(t).unwrap().counters.tx_hellos;
    assert!(
        hellos >= 2,
        "expected HELLOs every 2 s of silence, got {hellos}"
    );
    assert!(
        s.b.ep
            .tunnel(s.a.ep.tunnel(t).unwrap().peer_id)
            .unwrap()
            .counters
            .rx_hellos
            >= 2
    );
    // Now the LNS vanishes (kill -9): the next HELLO is never acknowledged.
    s.b.alive = false;
    let gone = s.run_until(Duration::from_secs(10), |s| s.a.ep.is_idle());
    assert!(gone, "tunnel not cleared after peer loss");
    let reason = s.a.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason, Some(CloseReason::PeerUnreachable));
    assert_eq!(
        s.a.actions()
            .filter(|a| matches!(a, l2tp_proto::event::Action::DeleteSession { .. }))
            .count(),
        1
    );
    assert_eq!(
        s.a.actions()
            .filter(|a| matches!(a, l2tp_proto::event::Action::DeleteTunnel { .. }))
            .count(),
        1
    );
}

#[test]
fn challenge_authentication_succeeds_with_shared_secret() {
    let secret = b"s3cret".to_vec();
    let lac = TunnelConfig {
        secret: Some(secret.clone()),
        auth_mode: AuthMode::Challenge,
        ..lac_config()
    };
    let lns = TunnelConfig {
        secret: Some(secret),
        auth_mode: AuthMode::Challenge,
        ..lns_config()
    };
    let mut s = Sim::new(7, Impairments::NONE, None, accept_all(lns));
    open_tunnel(&mut s, lac);
    assert!(s.run_until(Duration::from_secs(5), |s| tunnel_up(&s.a) == 1
        && tunnel_up(&s.b) == 1));
}

#[test]
fn challenge_authentication_fails_with_wrong_secret() {
    let lac = TunnelConfig {
        secret: Some(b"right".to_vec()),
        auth_mode: AuthMode::Challenge,
        ..lac_config()
    };
    let lns = TunnelConfig {
        secret: Some(b"wrong".to_vec()),
        auth_mode: AuthMode::Challenge,
        ..lns_config()
    };
    let mut s = Sim::new(8, Impairments::NONE, None, accept_all(lns));
    let t = open_tunnel(&mut s, lac);
    s.run_for(Duration::from_secs(5));
    assert_eq!(tunnel_up(&s.a), 0);
    assert_eq!(tunnel_up(&s.b), 0);
    // The LAC checks the SCCRP's Challenge Response first and sends StopCCN result 4.
    let reason = s.a.events().find_map(|e| match e {
        Event::TunnelDown { tunnel, reason } if *tunnel == t => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(reason, Some(CloseReason::ProtocolError { result: 4, .. })),
        "{reason:?}"
    );
    let b_reason = s.b.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(b_reason, Some(CloseReason::Peer { result: 4, .. })),
        "{b_reason:?}"
    );
}

#[test]
fn refused_tunnel_gets_stopccn_not_sccrp() {
    let refuse = |_: &_| Err(Refusal::not_authorized("not you"));
    let mut s = Sim::new(9, Impairments::NONE, None, Some(Box::new(refuse)));
    let t = open_tunnel(&mut s, lac_config());
    s.run_for(Duration::from_secs(3));
    let reason = s.a.events().find_map(|e| match e {
        Event::TunnelDown { tunnel, reason } if *tunnel == t => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(reason, Some(CloseReason::Peer { result: 4, .. })),
        "{reason:?}"
    );
    assert_eq!(s.b.ep.counters().tunnels_refused, 1);
    assert_eq!(tunnel_up(&s.b), 0);
}

#[test]
fn kernel_session_failure_sends_cdn() {
    let mut s = Sim::new(10, Impairments::NONE, None, accept_all(lns_config()));
    s.b.fail_sessions = true;
    let t = open_tunnel(&mut s, lac_config());
    place_call(&mut s, t, CallType::LacIncoming);
    s.run_for(Duration::from_secs(3));
    let a_reason = s.a.events().find_map(|e| match e {
        Event::SessionDown { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(
            a_reason,
            Some(CloseReason::Peer {
                result: 2,
                error: Some(4),
                ..
            })
        ),
        "{a_reason:?}"
    );
    // The tunnel itself stays up.
    assert_eq!(s.a.ep.tunnel(t).unwrap().state_name(), "established");
}

#[test]
fn peer_cdn_clears_one_session_only() {
    let mut s = Sim::new(11, Impairments::NONE, None, accept_all(lns_config()));
    let t = open_tunnel(&mut s, lac_config());
    let s1 = place_call(&mut s, t, CallType::LacIncoming);
    let s2 = place_call(&mut s, t, CallType::LacIncoming);
    assert!(s.run_until(Duration::from_secs(5), |s| sessions_up(&s.b) == 2));
    let peer_t = s.a.ep.tunnel(t).unwrap().peer_id;
    let peer_s1 = s.a.ep.tunnel(t).unwrap().sessions[&s1].peer_id;
    let now = s.now;
    s.b.ep
        .handle_command(
            now,
            &mut s.b.rng,
            Command::CloseSession {
                tunnel: peer_t,
                session: peer_s1,
                result: 3,
                error: None,
                message: None,
            },
        )
        .unwrap();
    s.run_for(Duration::from_secs(2));
    let ta = s.a.ep.tunnel(t).unwrap();
    assert!(!ta.sessions.contains_key(&s1));
    assert!(ta.sessions.contains_key(&s2));
    let _ = CallParams::default();
}

#[test]
fn tunnel_config_debug_never_shows_the_secret() {
    let c = TunnelConfig {
        secret: Some(b"hunter2".to_vec()),
        ..TunnelConfig::default()
    };
    let text = format!(
        "{c:?} {:?}",
        Command::OpenTunnel {
            peer: addr_b(),
            config: Box::new(c.clone())
        }
    );
    assert!(
        !text.contains("hunter2") && !text.contains("104, 117"),
        "{text}"
    );
    assert!(text.contains("<redacted>"));
}

#[test]
fn same_seed_same_run() {
    // The core is deterministic: two runs with one seed produce identical outputs.
    let run = || {
        let mut s = Sim::new(77, Impairments::lossy(0.2), None, accept_all(lns_config()));
        for _ in 0..3 {
            let t = open_tunnel(&mut s, lac_config());
            place_call(&mut s, t, CallType::LacIncoming);
        }
        s.run_for(Duration::from_secs(60));
        let rel = |n: &sim::Node| {
            n.log
                .iter()
                .map(|(t, o)| ((*t - s.start).as_micros(), format!("{o:?}")))
                .collect::<Vec<_>>()
        };
        (rel(&s.a), rel(&s.b))
    };
    let (a1, b1) = run();
    let (a2, b2) = run();
    assert!(a1.len() > 20);
    assert_eq!(a1, a2);
    assert_eq!(b1, b2);
}

#[test]
fn a_thousand_tunnels_opened_at_once_come_up_without_a_retransmission() {
    let mut s = Sim::new(11, Impairments::NONE, None, accept_all(lns_config()));
    // The LNS's per-source half-open bound is far below 1,000: the LAC's own
    // dialling limit keeps it from bursting past it.
    s.b.ep.set_limits(l2tp_proto::endpoint::Limits {
        max_half_open_per_source: 64,
        ..Default::default()
    });
    s.a.ep.set_limits(l2tp_proto::endpoint::Limits {
        max_dialing: 32,
        ..Default::default()
    });
    for _ in 0..1000 {
        open_tunnel(&mut s, lac_config());
    }
    let up = |n: &sim::Node| n.count_events(|e| matches!(e, Event::TunnelUp { .. }));
    assert!(s.run_until(Duration::from_secs(60), |s| up(&s.a) == 1000
        && up(&s.b) == 1000));
    assert_eq!(s.b.ep.counters().half_open_drops, 0);
    assert_eq!(
        s.a.ep.counters().retransmits + s.b.ep.counters().retransmits,
        0
    );
}

#[test]
fn calls_placed_at_once_complete_while_later_ones_are_still_starting() {
    use l2tp_proto::event::Output;
    use l2tp_proto::wire::{ControlMessage, MessageType};
    let mut s = Sim::new(12, Impairments::NONE, None, accept_all(lns_config()));
    let t = open_tunnel(&mut s, lac_config());
    const CALLS: usize = 2000;
    for _ in 0..CALLS {
        place_call(&mut s, t, CallType::LacIncoming);
    }
    assert!(
        s.run_until(Duration::from_secs(60), |s| sessions_up(&s.a) == CALLS
            && sessions_up(&s.b) == CALLS)
    );
    // The LNS had its first call up before the LAC sent its last ICRQ: ICRQs
    // are not all queued ahead of the first ICCN.
    let last_icrq =
        s.a.log
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Transmit(tx) => ControlMessage::decode(&tx.data, None)
                    .ok()
                    .filter(|m| m.message_type() == Some(MessageType::ICRQ))
                    .map(|_| *at),
                _ => None,
            })
            .max()
            .unwrap();
    let first_up =
        s.b.log
            .iter()
            .find(|(_, o)| matches!(o, Output::Event(Event::SessionUp { .. })))
            .map(|(at, _)| *at)
            .unwrap();
    assert!(
        first_up < last_icrq,
        "first call up only after every ICRQ was sent"
    );
    assert_eq!(
        s.a.ep.counters().retransmits + s.b.ep.counters().retransmits,
        0
    );
}

/// A peer that advertises a window of 4 and answers one call at a time
/// (xl2tpd starts a pppd per call before it reads on) has at most
/// MIN_CALLS_STARTING (32, more than twice its window) of our calls waiting
/// for an ICRP at once; the others wait their turn, and a call's
/// establishment timeout runs from its ICRQ, not from when it was placed:
/// 100 calls placed at once all come up, although the last is answered
/// long after that timeout.
#[test]
fn calls_to_a_slow_peer_with_a_small_window_wait_their_turn_and_all_come_up() {
    use l2tp_proto::wire::{ControlMessage, MessageType};
    let mut lns = lns_config();
    lns.channel.rx_window = 4;
    let mut s = Sim::new(13, Impairments::NONE, None, accept_all(lns));
    s.b.call_pace = Some(Duration::from_millis(250));
    let lac = TunnelConfig {
        session_establish_timeout: Duration::from_secs(10),
        ..lac_config()
    };
    let t = open_tunnel(&mut s, lac);
    assert!(s.run_until(Duration::from_secs(5), |s| tunnel_up(&s.a) == 1));
    const CALLS: usize = 100;
    for _ in 0..CALLS {
        place_call(&mut s, t, CallType::LacIncoming);
    }
    // 100 decisions a quarter of a second apart: 25 s, 2.5 times the
    // timeout; 32 of them (the calls waiting at once) take 8 s.
    assert!(
        s.run_until(Duration::from_secs(120), |s| sessions_up(&s.a) == CALLS
            && sessions_up(&s.b) == CALLS)
    );
    assert!(s.elapsed() > Duration::from_secs(22), "{:?}", s.elapsed());
    assert_eq!(
        s.a.count_events(|e| matches!(e, Event::SessionDown { .. })),
        0
    );
    // Calls waiting for their ICRP, by the LAC's log: one more per ICRQ
    // sent, one fewer per kernel session asked for (on its ICRP, before
    // the ICCN and the next ICRQ are sent).
    let (mut waiting, mut most) = (0usize, 0usize);
    for (_, o) in &s.a.log {
        match o {
            Output::Transmit(tx) => {
                let icrq = ControlMessage::decode(&tx.data, None)
                    .ok()
                    .is_some_and(|m| m.message_type() == Some(MessageType::ICRQ));
                waiting += usize::from(icrq);
            }
            Output::Action(Action::CreateSession { .. }) => waiting -= 1,
            _ => {}
        }
        most = most.max(waiting);
    }
    assert_eq!(most, l2tp_proto::tunnel::MIN_CALLS_STARTING);
}

#[test]
fn message_counters_keep_the_counts_of_freed_tunnels() {
    use l2tp_proto::wire::MessageType;
    let mut s = Sim::new(6, Impairments::NONE, None, accept_all(lns_config()));
    let t = open_tunnel(&mut s, lac_config());
    place_call(&mut s, t, CallType::LacIncoming);
    assert!(s.run_until(Duration::from_secs(5), |s| sessions_up(&s.b) == 1));
    let i = |m: MessageType| usize::from(m.0);
    // Live: the totals are the tunnel's own counts.
    let live = s.a.ep.message_counters();
    let own = s.a.ep.tunnel(t).unwrap().counters.clone();
    assert_eq!(live.tx_by_type, own.tx_by_type);
    assert_eq!(live.rx_by_type, own.rx_by_type);
    assert_eq!(live.tx_by_type[i(MessageType::SCCRQ)], 1);
    let now = s.now;
    s.a.ep
        .handle_command(now, &mut s.a.rng, Command::Shutdown)
        .unwrap();
    assert!(s.run_until(Duration::from_secs(5), |s| s.a.ep.is_idle()));
    assert!(s.a.ep.tunnel(t).is_none());
    // Freed: nothing is lost, and the StopCCN and CDN were added.
    let freed = s.a.ep.message_counters();
    assert_eq!(freed.tx_by_type[i(MessageType::SCCRQ)], 1);
    assert_eq!(freed.tx_by_type[i(MessageType::ICRQ)], 1);
    assert_eq!(freed.tx_by_type[i(MessageType::STOPCCN)], 1);
    assert_eq!(freed.tx_by_type[i(MessageType::CDN)], 1);
    assert_eq!(freed.rx_by_type[i(MessageType::SCCRP)], 1);
    for k in 0..17 {
        assert!(freed.rx_by_type[k] >= live.rx_by_type[k]);
        assert!(freed.rx_bad_by_type[k] <= freed.rx_by_type[k]);
    }
}
