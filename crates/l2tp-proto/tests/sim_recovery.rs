//! Fast recovery between two simulated endpoints: an LNS that answers from
//! another UDP port (RFC 2661 §8.1, as xl2tpd and OpenL2TP do), and an LNS
//! that restarts and tells the LAC at its next message, from the stale
//! tunnels the driver gives it, instead of leaving it to time out.

mod sim;

use std::time::Duration;

use l2tp_proto::endpoint::Endpoint;
use l2tp_proto::event::{Action, CloseReason, Event, Output, TunnelConfig};
use l2tp_proto::session::CallType;
use sim::{Impairments, Sim, accept_all, addr_b};

fn config(name: &str) -> TunnelConfig {
    TunnelConfig {
        host_name: name.as_bytes().to_vec(),
        hello_interval: Some(Duration::from_secs(10)),
        ..TunnelConfig::default()
    }
}

fn sessions_up(n: &sim::Node) -> usize {
    n.count_events(|e| matches!(e, Event::SessionUp { .. }))
}

#[test]
fn an_lns_answering_from_an_ephemeral_port_gets_the_tunnel_and_its_calls() {
    let mut s = Sim::new(11, Impairments::lossy(0.1), None, accept_all(config("lns")));
    let ephemeral = "192.0.2.2:40123".parse().unwrap();
    s.b.src = ephemeral;
    let t = s.open_tunnel(false, config("lac"));
    s.place_call(t, CallType::LacIncoming);
    assert!(
        s.run_until(Duration::from_secs(60), |s| sessions_up(&s.a) == 1
            && sessions_up(&s.b) == 1),
        "call up over the moved tunnel"
    );
    let ta = s.a.ep.tunnel(t).unwrap();
    assert_eq!(ta.peer, ephemeral);
    assert_eq!(s.a.ep.counters().peer_port_changes, 1);
    // The kernel tunnel was created towards the new port, and everything
    // after the first SCCRQ(s) went there.
    let created: Vec<_> =
        s.a.actions()
            .filter_map(|a| match a {
                Action::CreateTunnel { peer, .. } => Some(*peer),
                _ => None,
            })
            .collect();
    assert_eq!(created, vec![ephemeral]);
    let dests: Vec<_> =
        s.a.log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Transmit(x) => Some(x.peer),
                _ => None,
            })
            .collect();
    let first_moved = dests.iter().position(|d| *d == ephemeral).unwrap();
    assert!(dests[..first_moved].iter().all(|d| *d == addr_b()));
    assert!(dests[first_moved..].iter().all(|d| *d == ephemeral));
}

/// Bring a tunnel with a call up, then restart B: a fresh endpoint, given
/// (or not) B's old tunnel as stale. Returns the sim and A's tunnel id.
fn restart_lns(stale: bool) -> (Sim, l2tp_proto::wire::TunnelId) {
    let mut s = Sim::new(5, Impairments::NONE, None, accept_all(config("lns")));
    let t = s.open_tunnel(false, config("lac"));
    s.place_call(t, CallType::LacIncoming);
    assert!(
        s.run_until(Duration::from_secs(5), |s| sessions_up(&s.a) == 1
            && sessions_up(&s.b) == 1)
    );
    let ta = s.a.ep.tunnel(t).unwrap();
    let (b_id, a_id) = (ta.peer_id, t);
    let b_peer = s.b.ep.tunnel(b_id).unwrap().peer;
    // B restarts: all its state is gone.
    s.b.ep = Endpoint::new();
    s.b.decide = accept_all(config("lns"));
    if stale {
        let until = s.now + Duration::from_secs(300);
        assert!(s.b.ep.add_stale_tunnel(b_id, b_peer, a_id, until));
    }
    (s, t)
}

fn a_down(s: &Sim) -> Option<CloseReason> {
    s.a.events().find_map(|e| match e {
        Event::TunnelDown { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn a_restarted_lns_with_stale_tunnels_clears_the_lac_at_its_next_hello() {
    let (mut s, t) = restart_lns(true);
    assert!(s.run_until(Duration::from_secs(120), |s| a_down(s).is_some()));
    let reason = a_down(&s).unwrap();
    assert!(
        matches!(
            reason,
            CloseReason::Peer {
                result: 2,
                error: Some(1),
                ..
            }
        ),
        "the LNS's StopCCN, not a timeout: {reason}"
    );
    // The HELLO was answered in sequence: nothing was retransmitted.
    assert_eq!(s.a.ep.counters().retransmits, 0);
    assert_eq!(s.b.ep.counters().unknown_tunnel_stopccns, 1);
    // The calls went with it.
    assert!(
        s.a.events()
            .any(|e| matches!(e, Event::SessionDown { tunnel, .. } if *tunnel == t))
    );
}

#[test]
fn without_stale_tunnels_the_lac_only_learns_by_timing_out() {
    let (mut s, _) = restart_lns(false);
    assert!(s.run_until(Duration::from_secs(300), |s| a_down(s).is_some()));
    assert_eq!(a_down(&s), Some(CloseReason::PeerUnreachable));
    assert!(s.a.ep.counters().retransmits > 0);
    assert_eq!(s.b.ep.counters().unknown_tunnel_stopccns, 0);
}
