//! A deterministic two-endpoint network for tests: a virtual clock, a seeded
//! impairment model (loss, reordering by random delay, duplication) and a fake
//! driver that answers data-plane actions.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use l2tp_proto::endpoint::{Endpoint, Incoming, IncomingCall};
use l2tp_proto::event::{Action, ActionResult, Event, Output, TunnelConfig};
use l2tp_proto::tunnel::Refusal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Impairments applied to every datagram, each drawn from the network's seeded RNG.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Impairments {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra random delay in [0, jitter): reorders datagrams.
    pub jitter: Duration,
}

impl Impairments {
    pub(crate) const NONE: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        delay: Duration::from_millis(10),
        jitter: Duration::ZERO,
    };

    pub(crate) fn lossy(loss: f64) -> Self {
        Self {
            loss,
            duplicate: loss / 2.0,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(300),
        }
    }
}

/// One side of the simulation.
pub(crate) struct Node {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// The source address of what the node sends: `addr` unless a test
    /// makes it answer from another port (RFC 2661 §8.1).
    pub src: SocketAddr,
    pub ep: Endpoint,
    /// How the fake driver decides on incoming tunnels (`None`: refuse all).
    pub decide: Option<Decider>,
    pub rng: StdRng,
    /// Every output the endpoint produced, with the virtual time.
    pub log: Vec<(Instant, Output)>,
    /// When false, the node is "dead": it neither receives nor runs timers.
    pub alive: bool,
    /// Make the fake driver fail kernel session creation.
    pub fail_sessions: bool,
    /// Decide the peer's new calls one per this much virtual time, in order
    /// (a driver that is busy per call, as xl2tpd starting a pppd for each
    /// before it reads on); `None`: each at once.
    pub call_pace: Option<Duration>,
    /// Calls reported and not yet decided (with `call_pace`).
    held_calls: VecDeque<IncomingCall>,
    /// When the next held call is decided (with `call_pace`).
    next_call_decision: Option<Instant>,
    /// When the last held call was decided (with `call_pace`).
    last_call_decision: Option<Instant>,
}

impl Node {
    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> {
        self.log.iter().filter_map(|(_, o)| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
    }

    pub(crate) fn actions(&self) -> impl Iterator<Item = &Action> {
        self.log.iter().filter_map(|(_, o)| match o {
            Output::Action(a) => Some(a),
            _ => None,
        })
    }

    pub(crate) fn count_events(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events().filter(|e| f(e)).count()
    }

    /// Times at which control datagrams were transmitted.
    pub(crate) fn transmit_times(&self) -> Vec<Instant> {
        self.log
            .iter()
            .filter_map(|(t, o)| matches!(o, Output::Transmit(_)).then_some(*t))
            .collect()
    }
}

/// Two endpoints joined by an impaired virtual link.
pub(crate) struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub a: Node,
    pub b: Node,
    pub net: Impairments,
    net_rng: StdRng,
    /// In-flight datagrams by delivery time (ties broken by sequence).
    wire: BTreeMap<(Instant, u64), (bool /* to b */, SocketAddr, Vec<u8>)>,
    seq: u64,
    pub delivered: u64,
    pub dropped: u64,
}

pub(crate) fn addr_a() -> SocketAddr {
    "192.0.2.1:1701".parse().unwrap()
}
pub(crate) fn addr_b() -> SocketAddr {
    "192.0.2.2:1701".parse().unwrap()
}

/// The fake driver's admission decision on a peer's new tunnel (see
/// [`Sim::drain`]); a node without one refuses every tunnel with StopCCN
/// result 4.
pub(crate) type Decider = Box<dyn FnMut(&Incoming) -> Result<TunnelConfig, Refusal>>;

/// A decider accepting every incoming tunnel with `config`.
pub(crate) fn accept_all(config: TunnelConfig) -> Option<Decider> {
    Some(Box::new(move |_| Ok(config.clone())))
}

impl Sim {
    pub(crate) fn new(
        seed: u64,
        net: Impairments,
        policy_a: Option<Decider>,
        policy_b: Option<Decider>,
    ) -> Self {
        let start = Instant::now();
        let node = |name, addr, policy, s| Node {
            name,
            addr,
            src: addr,
            ep: Endpoint::new(),
            decide: policy,
            rng: StdRng::seed_from_u64(s),
            log: Vec::new(),
            alive: true,
            fail_sessions: false,
            call_pace: None,
            held_calls: VecDeque::new(),
            next_call_decision: None,
            last_call_decision: None,
        };
        Self {
            start,
            now: start,
            a: node(
                "a",
                addr_a(),
                policy_a,
                seed.wrapping_mul(3).wrapping_add(1),
            ),
            b: node(
                "b",
                addr_b(),
                policy_b,
                seed.wrapping_mul(7).wrapping_add(2),
            ),
            net,
            net_rng: StdRng::seed_from_u64(seed),
            wire: BTreeMap::new(),
            seq: 0,
            delivered: 0,
            dropped: 0,
        }
    }

    /// Seconds of virtual time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn node(&mut self, to_b: bool) -> &mut Node {
        if to_b { &mut self.b } else { &mut self.a }
    }

    /// Drain outputs of one node: transmits go on the wire, actions are answered.
    pub(crate) fn drain(&mut self, is_b: bool) {
        loop {
            let now = self.now;
            let node = self.node(is_b);
            let Some(o) = node.ep.poll_output() else {
                break;
            };
            node.log.push((now, o.clone()));
            match o {
                Output::Transmit(t) => {
                    let from = node.src;
                    let other = if is_b { &self.a } else { &self.b };
                    assert!(
                        t.peer == other.addr || t.peer == other.src,
                        "transmit to the wrong peer: {}",
                        t.peer
                    );
                    self.send(!is_b, from, t.data);
                }
                Output::Incoming(i) => {
                    // Decided at once, as the daemon does: the answer is
                    // the next output.
                    let node = self.node(is_b);
                    let decision = match node.decide.as_mut() {
                        Some(d) => d(&i),
                        None => Err(Refusal::not_authorized(
                            "tunnel not accepted from this peer",
                        )),
                    };
                    let _ = match decision {
                        Ok(c) => node.ep.accept(now, &mut node.rng, i, c),
                        Err(r) => node.ep.refuse(now, &mut node.rng, i, r),
                    };
                }
                Output::IncomingCall(c) => {
                    // The fake driver has no session limits: every call is
                    // accepted, at once (its ICRP / OCRP the next output)
                    // or in its turn with `call_pace`.
                    let node = self.node(is_b);
                    match node.call_pace {
                        None => {
                            let _ = node.ep.accept_call(now, &mut node.rng, c);
                        }
                        Some(pace) => {
                            let next = node.last_call_decision.map_or(now, |l| now.max(l + pace));
                            node.next_call_decision.get_or_insert(next);
                            node.held_calls.push_back(c);
                        }
                    }
                }
                Output::Action(Action::CreateTunnel { tunnel, .. }) => {
                    let node = self.node(is_b);
                    node.ep.handle_action_result(
                        now,
                        &mut node.rng,
                        ActionResult::Tunnel {
                            tunnel,
                            result: Ok(()),
                        },
                    );
                }
                Output::Action(Action::CreateSession {
                    tunnel, session, ..
                }) => {
                    let node = self.node(is_b);
                    let result = if node.fail_sessions {
                        Err("SESSION_CREATE: Cannot allocate memory (os error 12)".into())
                    } else {
                        Ok(())
                    };
                    node.ep.handle_action_result(
                        now,
                        &mut node.rng,
                        ActionResult::Session {
                            tunnel,
                            session,
                            result,
                        },
                    );
                }
                _ => {}
            }
        }
    }

    fn send(&mut self, to_b: bool, from: SocketAddr, data: Vec<u8>) {
        if self.net_rng.random_bool(self.net.loss.clamp(0.0, 1.0)) {
            self.dropped += 1;
            return;
        }
        let copies = if self.net_rng.random_bool(self.net.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = if self.net.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(
                    self.net_rng
                        .random_range(0..self.net.jitter.as_micros() as u64),
                )
            };
            self.seq += 1;
            self.wire.insert(
                (self.now + self.net.delay + jitter, self.seq),
                (to_b, from, data.clone()),
            );
        }
    }

    /// Advance to the next event (delivery or timer), process it. False when nothing is left.
    pub(crate) fn step(&mut self) -> bool {
        self.drain(false);
        self.drain(true);
        let next_wire = self.wire.keys().next().map(|k| k.0);
        let ta = if self.a.alive {
            self.a.ep.poll_timeout()
        } else {
            None
        };
        let tb = if self.b.alive {
            self.b.ep.poll_timeout()
        } else {
            None
        };
        let decision = |n: &Node| n.next_call_decision.filter(|_| n.alive);
        let (da, db) = (decision(&self.a), decision(&self.b));
        let Some(next) = [next_wire, ta, tb, da, db].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        if let Some(is_b) = [(da, false), (db, true)]
            .into_iter()
            .find_map(|(d, is_b)| (d == Some(next)).then_some(is_b))
        {
            // The paced driver decides on its oldest held call.
            let node = self.node(is_b);
            if let Some(c) = node.held_calls.pop_front() {
                let _ = node.ep.accept_call(now, &mut node.rng, c);
                node.last_call_decision = Some(now);
            }
            node.next_call_decision =
                (!node.held_calls.is_empty()).then(|| now + node.call_pace.unwrap_or_default());
        } else if next_wire == Some(next) {
            let key = *self.wire.keys().next().unwrap();
            let (to_b, from, data) = self.wire.remove(&key).unwrap();
            let node = self.node(to_b);
            if node.alive {
                node.ep.handle_datagram(now, &mut node.rng, from, &data);
                self.delivered += 1;
            }
        } else {
            for is_b in [false, true] {
                let node = self.node(is_b);
                if node.alive && node.ep.poll_timeout().is_some_and(|t| t <= now) {
                    node.ep.handle_timeout(now, &mut node.rng);
                }
            }
        }
        self.drain(false);
        self.drain(true);
        true
    }

    /// Run until `cond` holds or `limit` of virtual time passes (bounded in steps too).
    pub(crate) fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        for _ in 0..2_000_000 {
            if cond(self) {
                return true;
            }
            if self.now > deadline || !self.step() {
                return cond(self);
            }
        }
        cond(self)
    }

    /// Open a tunnel from A to B (or from B to A with `from_b`).
    pub(crate) fn open_tunnel(
        &mut self,
        from_b: bool,
        config: TunnelConfig,
    ) -> l2tp_proto::wire::TunnelId {
        let now = self.now;
        let (node, peer) = if from_b {
            (&mut self.b, addr_a())
        } else {
            (&mut self.a, addr_b())
        };
        let cmd = l2tp_proto::event::Command::OpenTunnel {
            peer,
            config: Box::new(config),
        };
        match node.ep.handle_command(now, &mut node.rng, cmd) {
            Ok(l2tp_proto::event::CommandOutcome::Tunnel(t)) => t,
            other => panic!("open tunnel: {other:?}"),
        }
    }

    /// Place a call of `call_type` from A in `tunnel`.
    pub(crate) fn place_call(
        &mut self,
        tunnel: l2tp_proto::wire::TunnelId,
        call_type: l2tp_proto::session::CallType,
    ) -> l2tp_proto::wire::SessionId {
        let now = self.now;
        let cmd = l2tp_proto::event::Command::PlaceCall {
            tunnel,
            call_type,
            params: std::sync::Arc::default(),
        };
        match self.a.ep.handle_command(now, &mut self.a.rng, cmd) {
            Ok(l2tp_proto::event::CommandOutcome::Session(id)) => id,
            other => panic!("place call: {other:?}"),
        }
    }

    /// Run for `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_until(d, |s| s.now >= deadline);
    }
}
