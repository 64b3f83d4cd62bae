//! Ns/Nr wrap past 65535 (RFC 2661 §5.8: sequence numbers are modulo 2^16):
//! two reliable channels exchange 70,000 control messages over a link that
//! loses some datagrams in both directions; every message is delivered once,
//! in order, across the wrap.

use std::time::{Duration, Instant};

use l2tp_proto::reliable::{ChannelConfig, ReliableChannel, TimeoutOutcome};
use l2tp_proto::wire::{ControlHeader, ControlMessage, Message, SessionId, TunnelId};

const MESSAGES: usize = 70_000;

fn hello() -> Vec<u8> {
    let header = ControlHeader {
        tunnel_id: TunnelId(2),
        session_id: SessionId(0),
        ns: 0,
        nr: 0,
    };
    Message::Hello.to_control(header).encode(None).unwrap()
}

#[test]
fn seventy_thousand_messages_cross_the_sequence_number_wrap_in_order() {
    let cfg = ChannelConfig {
        retry_timeout: Duration::from_millis(100),
        retry_max_timeout: Duration::from_millis(400),
        max_retries: 10,
        ..ChannelConfig::default()
    };
    let mut x = ReliableChannel::new(cfg.clone());
    let mut y = ReliableChannel::new(cfg);
    x.set_peer(TunnelId(2), Some(16));
    y.set_peer(TunnelId(1), Some(16));
    let mut now = Instant::now();
    let template = hello();
    let mut queued = 0usize;
    let mut delivered = Vec::with_capacity(MESSAGES);
    let (mut sent_xy, mut sent_yx) = (0u64, 0u64);
    for _round in 0..5_000_000 {
        // Keep the sender busy, a window's worth at a time.
        while queued < MESSAGES && x.unacked() < 32 {
            x.queue(now, template.clone());
            queued += 1;
        }
        let mut moved = false;
        while let Some(d) = x.poll_transmit() {
            moved = true;
            sent_xy += 1;
            if sent_xy % 13 == 0 {
                continue; // lost
            }
            let m = ControlMessage::decode(&d, None).unwrap();
            delivered.extend(y.receive(now, m).into_iter().map(|m| m.header.ns));
            // As a tunnel does at the end of each input.
            y.flush_ack();
        }
        while let Some(d) = y.poll_transmit() {
            moved = true;
            sent_yx += 1;
            if sent_yx % 11 == 0 {
                continue; // lost acknowledgement
            }
            let m = ControlMessage::decode(&d, None).unwrap();
            assert!(x.receive(now, m).is_empty(), "only ZLBs flow back");
        }
        if delivered.len() == MESSAGES && x.is_idle() {
            break;
        }
        if !moved {
            let next = [x.poll_timeout(), y.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("something pending");
            now = now.max(next);
            assert_eq!(x.handle_timeout(now), TimeoutOutcome::Ok, "sender gave up");
            y.handle_timeout(now);
        }
    }
    assert_eq!(
        delivered.len(),
        MESSAGES,
        "every message delivered exactly once"
    );
    for (i, ns) in delivered.iter().enumerate() {
        assert_eq!(*ns, (i % 65536) as u16, "message {i} out of order");
    }
    assert_eq!(x.ns(), (MESSAGES % 65536) as u16, "Ns wrapped");
    assert_eq!(y.nr(), (MESSAGES % 65536) as u16, "Nr wrapped");
    assert!(
        x.counters().retransmits > 0 && y.counters().duplicates > 0,
        "loss was recovered by retransmission"
    );
}

#[test]
fn sequence_comparison_is_modulo_2_16() {
    use l2tp_proto::reliable::seq_lt;
    assert!(seq_lt(65535, 0));
    assert!(seq_lt(65000, 100));
    assert!(!seq_lt(100, 65000));
    assert!(!seq_lt(7, 7));
    assert!(seq_lt(0, 32767));
    assert!(!seq_lt(0, 32768));
}
