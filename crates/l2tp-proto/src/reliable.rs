//! The reliable control channel of RFC 2661 §5.8 and Appendix A.
//!
//! One [`ReliableChannel`] per tunnel. It numbers outgoing control messages
//! (Ns), acknowledges the peer's (Nr), retransmits unacknowledged messages
//! with exponential back-off, honours the peer's Receive Window Size with the
//! slow-start / congestion-avoidance window of Appendix A, queues messages that
//! arrive out of order and acknowledges duplicates.
//!
//! The channel works on encoded messages: the tunnel encodes a message once,
//! with Ns and Nr zero, and the channel patches both fields in place. Every
//! control message this crate encodes has the fixed 12-octet header
//! `T L S Ver | Length | Tunnel ID | Session ID | Ns | Nr` (RFC 2661 §3.1),
//! so Ns is at octets 8..10 and Nr at octets 10..12.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::wire::{CONTROL_HEADER_LEN, ControlMessage, TunnelId};

/// Octet offset of Ns in an encoded control message (RFC 2661 §3.1, L and S set, no O).
const NS_OFFSET: usize = 8;
/// Octet offset of Nr in an encoded control message.
const NR_OFFSET: usize = 10;

/// `a` precedes `b` in sequence-number space modulo 2^16 (RFC 2661 §5.8:
/// a value is "lower" if it is within the 32767 values preceding the other).
pub fn seq_lt(a: u16, b: u16) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 0x8000
}

/// Timers and windows of one control channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Receive Window Size we advertise (RFC 2661 §4.4.3), in messages; at least 1.
    pub rx_window: u16,
    /// Upper bound on the send window we use, whatever the peer advertises (messages).
    pub tx_window_max: u16,
    /// First retransmission timeout; it doubles per retry (RFC 2661 §5.8 recommends 1 s).
    pub retry_timeout: Duration,
    /// Cap on the doubled retransmission timeout (RFC 2661 §5.8: at least 8 s is recommended).
    pub retry_max_timeout: Duration,
    /// Retransmissions of one message before the channel gives up (RFC 2661 §5.8, default 5).
    pub max_retries: u32,
    /// How long an acknowledgement may wait for an outgoing message to carry it
    /// before a ZLB is sent instead. Zero (the default): a message that the
    /// input which delivered it did not answer is acknowledged by a ZLB at the
    /// end of that input. Otherwise a half-full receive window is acknowledged
    /// at once whatever the timer (RFC 2661 §5.8: acknowledgements must not be
    /// withheld as flow control).
    pub ack_timeout: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            rx_window: 16,
            tx_window_max: 16,
            retry_timeout: Duration::from_secs(1),
            retry_max_timeout: Duration::from_secs(8),
            max_retries: 5,
            ack_timeout: Duration::ZERO,
        }
    }
}

/// Counters of one control channel (OpenL2TP's per-tunnel set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    /// Control messages (not ZLBs) transmitted for the first time.
    pub tx_messages: u64,
    /// Retransmissions.
    pub retransmits: u64,
    /// ZLB acknowledgements sent.
    pub tx_zlbs: u64,
    /// ZLB acknowledgements received.
    pub rx_zlbs: u64,
    /// Control messages received in sequence and delivered.
    pub rx_messages: u64,
    /// Duplicates received (Ns already seen): acknowledged and dropped.
    pub duplicates: u64,
    /// Messages received ahead of sequence and queued.
    pub out_of_order: u64,
    /// Messages received ahead of sequence beyond our window, dropped.
    pub out_of_window: u64,
}

#[derive(Debug)]
struct InFlight {
    ns: u16,
    bytes: Vec<u8>,
    retries: u32,
    deadline: Instant,
}

/// What [`ReliableChannel::handle_timeout`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutOutcome {
    /// Nothing expired, or retransmissions were queued.
    Ok,
    /// A message was retransmitted `max_retries` times without acknowledgement:
    /// the tunnel must be cleared (RFC 2661 §5.8).
    GaveUp,
}

/// The reliable delivery state of one tunnel's control connection.
#[derive(Debug)]
pub struct ReliableChannel {
    config: ChannelConfig,
    /// Tunnel ID put in the header of ZLBs we send: the peer's assigned tunnel id (0 until known).
    peer_tunnel_id: TunnelId,
    /// Next Ns we will assign.
    ns_next: u16,
    /// Next Ns we expect from the peer (our Nr).
    nr: u16,
    /// Peer's advertised Receive Window Size (RFC 2661 §4.4.3; 4 when absent).
    peer_rws: u16,
    /// Congestion window and slow-start threshold (RFC 2661 Appendix A), in messages.
    cwnd: u16,
    ssthresh: u16,
    /// Acknowledgements counted toward growing cwnd in congestion avoidance.
    cong_acks: u16,
    /// Encoded messages waiting for the send window.
    waiting: VecDeque<Vec<u8>>,
    /// Transmitted and not yet acknowledged, oldest first, with deadlines in
    /// the same order (see [`ReliableChannel::handle_timeout`]).
    in_flight: VecDeque<InFlight>,
    /// Messages ready to go to the network (first transmissions, retransmissions, ZLBs).
    outbox: VecDeque<Vec<u8>>,
    /// Out-of-order messages keyed by Ns.
    reorder: BTreeMap<u16, ControlMessage>,
    /// When set, an acknowledgement is owed; a ZLB goes out at this instant unless a message carries it first.
    ack_deadline: Option<Instant>,
    /// Messages delivered since we last sent an acknowledgement.
    owed: u16,
    counters: ChannelCounters,
}

impl ReliableChannel {
    /// A fresh channel: Ns = Nr = 0, the peer's window 4 until it advertises one
    /// (RFC 2661 §4.4.3 default).
    pub fn new(config: ChannelConfig) -> Self {
        Self {
            config,
            peer_tunnel_id: TunnelId(0),
            ns_next: 0,
            nr: 0,
            peer_rws: 4,
            cwnd: 1,
            ssthresh: 4,
            cong_acks: 0,
            waiting: VecDeque::new(),
            in_flight: VecDeque::new(),
            outbox: VecDeque::new(),
            reorder: BTreeMap::new(),
            ack_deadline: None,
            owed: 0,
            counters: ChannelCounters::default(),
        }
    }

    /// Record the peer's assigned tunnel id and advertised Receive Window Size
    /// (`None`: AVP absent, window 4).
    pub fn set_peer(&mut self, peer_tunnel_id: TunnelId, rws: Option<u16>) {
        self.peer_tunnel_id = peer_tunnel_id;
        self.peer_rws = rws.unwrap_or(4).max(1);
        self.ssthresh = self.peer_rws;
    }

    /// Our configuration.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Next Ns we will send.
    pub fn ns(&self) -> u16 {
        self.ns_next
    }

    /// Next Ns we expect from the peer.
    pub fn nr(&self) -> u16 {
        self.nr
    }

    /// Current congestion window (messages).
    pub fn cwnd(&self) -> u16 {
        self.cwnd
    }

    /// Current slow-start threshold (messages).
    pub fn ssthresh(&self) -> u16 {
        self.ssthresh
    }

    /// Peer's advertised receive window (messages).
    pub fn peer_rws(&self) -> u16 {
        self.peer_rws
    }

    /// Counters.
    pub fn counters(&self) -> &ChannelCounters {
        &self.counters
    }

    /// Messages transmitted and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Messages sent and not yet acknowledged, plus those waiting for the window.
    pub fn unacked(&self) -> usize {
        self.in_flight.len() + self.waiting.len()
    }

    /// True when every message we sent was acknowledged and nothing waits.
    pub fn is_idle(&self) -> bool {
        self.unacked() == 0
    }

    fn send_window(&self) -> usize {
        usize::from(
            self.cwnd
                .min(self.peer_rws)
                .min(self.config.tx_window_max.max(1)),
        )
    }

    /// Queue an encoded control message (12-octet header, Ns and Nr to be filled in).
    /// It is numbered now and transmitted as soon as the send window allows.
    ///
    /// # Panics
    /// Never for messages produced by this crate's encoder; a buffer shorter than
    /// the control header is a programming error and is dropped with a debug assertion.
    pub fn queue(&mut self, now: Instant, mut bytes: Vec<u8>) {
        if bytes.len() < CONTROL_HEADER_LEN {
            debug_assert!(false, "control message shorter than its header");
            return;
        }
        bytes[NS_OFFSET..NS_OFFSET + 2].copy_from_slice(&self.ns_next.to_be_bytes());
        self.ns_next = self.ns_next.wrapping_add(1);
        self.waiting.push_back(bytes);
        self.pump(now);
    }

    /// Move waiting messages into flight while the window allows.
    fn pump(&mut self, now: Instant) {
        while self.in_flight.len() < self.send_window() {
            let Some(mut bytes) = self.waiting.pop_front() else {
                break;
            };
            let ns = u16::from_be_bytes([bytes[NS_OFFSET], bytes[NS_OFFSET + 1]]);
            self.stamp_nr(&mut bytes);
            self.outbox.push_back(bytes.clone());
            self.counters.tx_messages += 1;
            // Never due before the messages ahead of it (acknowledgements are
            // cumulative, so it cannot be acknowledged before them either).
            let deadline = self
                .in_flight
                .back()
                .map_or(now, |b| b.deadline)
                .max(now + self.config.retry_timeout);
            self.in_flight.push_back(InFlight {
                ns,
                bytes,
                retries: 0,
                deadline,
            });
        }
    }

    fn stamp_nr(&mut self, bytes: &mut [u8]) {
        bytes[NR_OFFSET..NR_OFFSET + 2].copy_from_slice(&self.nr.to_be_bytes());
        // Any message we send carries the acknowledgement.
        self.ack_deadline = None;
        self.owed = 0;
    }

    /// Process the Nr of a received message (acknowledgement of our messages).
    fn process_ack(&mut self, now: Instant, nr: u16) {
        let mut acked = 0u16;
        while let Some(front) = self.in_flight.front() {
            if seq_lt(front.ns, nr) {
                self.in_flight.pop_front();
                acked = acked.saturating_add(1);
            } else {
                break;
            }
        }
        for _ in 0..acked {
            // RFC 2661 Appendix A: slow start below ssthresh, else congestion avoidance.
            if self.cwnd < self.ssthresh {
                self.cwnd = self.cwnd.saturating_add(1);
            } else {
                self.cong_acks = self.cong_acks.saturating_add(1);
                if self.cong_acks >= self.cwnd {
                    self.cong_acks = 0;
                    self.cwnd = self.cwnd.saturating_add(1);
                }
            }
        }
        self.cwnd = self.cwnd.min(self.peer_rws.max(1));
        if acked > 0 {
            self.pump(now);
        }
    }

    /// Feed a received control message (already decoded). Returns the messages
    /// now deliverable in sequence (possibly several, when a gap was filled;
    /// empty for a ZLB, a duplicate or an out-of-order message).
    pub fn receive(&mut self, now: Instant, msg: ControlMessage) -> Vec<ControlMessage> {
        self.process_ack(now, msg.header.nr);
        if msg.is_zlb() {
            self.counters.rx_zlbs += 1;
            return Vec::new();
        }
        let ns = msg.header.ns;
        if ns == self.nr {
            let mut out = vec![msg];
            self.nr = self.nr.wrapping_add(1);
            while let Some(next) = self.reorder.remove(&self.nr) {
                out.push(next);
                self.nr = self.nr.wrapping_add(1);
            }
            self.counters.rx_messages += out.len() as u64;
            self.owe_ack(now, out.len());
            out
        } else if seq_lt(ns, self.nr) {
            // Already delivered: the peer missed our acknowledgement. Ack at once.
            self.counters.duplicates += 1;
            self.send_zlb();
            Vec::new()
        } else if ns.wrapping_sub(self.nr) < self.config.rx_window.max(1) {
            if self.reorder.insert(ns, msg).is_some() {
                self.counters.duplicates += 1;
            } else {
                self.counters.out_of_order += 1;
            }
            Vec::new()
        } else {
            self.counters.out_of_window += 1;
            Vec::new()
        }
    }

    fn owe_ack(&mut self, now: Instant, delivered: usize) {
        if self.ack_deadline.is_none() {
            self.ack_deadline = Some(now + self.config.ack_timeout);
        }
        self.owed = self
            .owed
            .saturating_add(u16::try_from(delivered).unwrap_or(u16::MAX));
    }

    /// Called at the end of each input, once the tunnel had its chance to
    /// answer: an acknowledgement still owed goes out as a ZLB now when the
    /// ack delay is zero or half our receive window is unacknowledged.
    pub fn flush_ack(&mut self) {
        if self.ack_deadline.is_some()
            && (self.config.ack_timeout.is_zero()
                || self.owed >= (self.config.rx_window / 2).max(1))
        {
            self.send_zlb();
        }
    }

    /// Send a ZLB acknowledgement now (RFC 2661 §5.8).
    pub fn send_zlb(&mut self) {
        let mut zlb = Vec::with_capacity(CONTROL_HEADER_LEN);
        zlb.extend_from_slice(&0xc802u16.to_be_bytes()); // T, L, S, Ver 2
        zlb.extend_from_slice(&(CONTROL_HEADER_LEN as u16).to_be_bytes());
        zlb.extend_from_slice(&self.peer_tunnel_id.0.to_be_bytes());
        zlb.extend_from_slice(&0u16.to_be_bytes());
        zlb.extend_from_slice(&self.ns_next.to_be_bytes());
        zlb.extend_from_slice(&self.nr.to_be_bytes());
        self.ack_deadline = None;
        self.owed = 0;
        self.counters.tx_zlbs += 1;
        self.outbox.push_back(zlb);
    }

    /// Next datagram to transmit, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// Earliest instant at which [`handle_timeout`](Self::handle_timeout) has
    /// work. O(1): in-flight deadlines are in queue order.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let rtx = self.in_flight.front().map(|m| m.deadline);
        match (rtx, self.ack_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Retransmission timeout for a message retransmitted `retries` times:
    /// `retry_timeout * 2^retries`, capped at `retry_max_timeout`.
    fn backoff(&self, retries: u32) -> Duration {
        let factor = 1u32.checked_shl(retries.min(31)).unwrap_or(u32::MAX);
        self.config
            .retry_timeout
            .checked_mul(factor)
            .unwrap_or(self.config.retry_max_timeout)
            .min(self.config.retry_max_timeout)
    }

    /// Fire expired timers: retransmit the oldest unacknowledged message when
    /// its timer expires (doubling its timeout, collapsing the congestion
    /// window, RFC 2661 Appendix A) and send an owed ZLB. The peer keeps
    /// later messages that arrived out of order and acknowledges
    /// cumulatively, so later messages are not retransmitted before the
    /// oldest is acknowledged: their deadlines move with it, which keeps
    /// deadlines in queue order and a window of any size costs O(1) here
    /// while nothing is lost.
    pub fn handle_timeout(&mut self, now: Instant) -> TimeoutOutcome {
        if let Some(front) = self.in_flight.front()
            && front.deadline <= now
        {
            if front.retries >= self.config.max_retries {
                return TimeoutOutcome::GaveUp;
            }
            let retries = front.retries + 1;
            let deadline = now + self.backoff(retries);
            self.ssthresh = (self.cwnd / 2).max(1);
            self.cwnd = 1;
            self.cong_acks = 0;
            let mut bytes = std::mem::take(&mut self.in_flight[0].bytes);
            self.stamp_nr(&mut bytes);
            self.outbox.push_back(bytes.clone());
            self.counters.retransmits += 1;
            for (i, m) in self.in_flight.iter_mut().enumerate() {
                if i == 0 {
                    m.bytes = std::mem::take(&mut bytes);
                    m.retries = retries;
                } else if m.deadline >= deadline {
                    break;
                }
                m.deadline = deadline;
            }
        }
        if self.ack_deadline.is_some_and(|d| d <= now) {
            self.send_zlb();
        }
        TimeoutOutcome::Ok
    }
}
