//! Admission: the driver's decision on a peer's new tunnel and on a peer's
//! new call. The core reports a valid SCCRQ as an [`Incoming`] once its
//! stateless checks passed (Ns = 0, half-open bounds, duplicates, Tie
//! Breaker, shutdown, free ids) and holds nothing for it; [`Daemon::admit`]
//! decides. It reports an ICRQ / OCRQ as an [`IncomingCall`] once the
//! tunnel's protocol checks passed (Assigned Session ID non-zero and not in
//! use, call direction, free session ids) and holds it pending;
//! [`Daemon::admit_call`] decides (session limits, IP pool). Both decide at
//! once, while the outputs are drained, from the running configuration (so
//! a reload changes what is decided next and nothing else), and the answer
//! (SCCRP / StopCCN, ICRP / OCRP / CDN) is the next output; except that a
//! call waits for its decision while `[system] pppd_max_starting` calls
//! have their pppd negotiating ([`PppdStarts`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use l2tp_proto::endpoint::{Incoming, IncomingCall, IncomingCallError, IncomingError};
use l2tp_proto::event::TunnelConfig;
use l2tp_proto::session::CallType;
use l2tp_proto::tunnel::{CallRefusal, Refusal};
use l2tp_proto::wire::{SessionId, TunnelId};

use super::Daemon;
use crate::params;
use crate::pool::Range;

impl Daemon {
    /// Answer a peer's new SCCRQ: accept it (SCCRP) or refuse it (StopCCN,
    /// RFC 2661 §4.4.2), as [`Self::admission`] decides.
    pub(super) fn admit(&mut self, incoming: Incoming) {
        let now = Instant::now();
        let peer = incoming.peer();
        let result = match self.admission(&incoming) {
            Ok(config) => self.ep.accept(now, &mut self.rng, incoming, config),
            Err(refusal) => {
                tracing::info!(%peer, result = refusal.result, error = ?refusal.error,
                    "refusing incoming tunnel: {}", refusal.text);
                self.ep.refuse(now, &mut self.rng, incoming, refusal)
            }
        };
        match result {
            Ok(_) => {}
            Err(e @ IncomingError::Duplicate(_)) => tracing::debug!(%peer, "incoming tunnel: {e}"),
            Err(e) => tracing::info!(%peer, "incoming tunnel: {e}"),
        }
    }

    /// Whether to take a peer's new tunnel, and with which parameters. In
    /// order:
    ///
    /// 1. `[system] max_tunnels` reached (tunnels of all kinds, counted by
    ///    the core in O(1)): StopCCN result 2, error 4 "tunnel limit reached";
    /// 2. `[system] deny_remote_tunnel_creates`: StopCCN result 4;
    /// 3. the peer profile matching the peer's address and Host Name; with
    ///    `auth_mode` simple or challenge, a peer matching no configured
    ///    peer profile (only the default one) gets StopCCN result 4;
    /// 4. accepted with the matched profile's tunnel parameters, taking the
    ///    call directions the profile allows (`lac_lns`).
    fn admission(&self, incoming: &Incoming) -> Result<TunnelConfig, Refusal> {
        let config = &*self.config;
        let max = config.system.max_tunnels as usize;
        if max != 0 && self.ep.tunnel_count() >= max {
            return Err(Refusal::tunnel_limit());
        }
        if config.system.deny_remote_tunnel_creates {
            return Err(Refusal::not_authorized(
                "tunnel not accepted from this peer",
            ));
        }
        let peer = incoming.peer();
        let m = config.match_peer(peer.ip(), Some(incoming.host_name()));
        let (tunnel, _, _) = config.resolve_incoming(&m);
        // auth_mode simple (and challenge, which adds the Challenge on top):
        // only peers that match a configured peer profile may open tunnels.
        if tunnel.auth_mode != l2tp_config::AuthMode::None
            && m.matched_by == l2tp_config::MatchedBy::Default
        {
            tracing::warn!(%peer, host_name = %incoming.host_name_text(), auth_mode = %tunnel.auth_mode,
                "refusing tunnel: the peer matches no configured peer profile");
            return Err(Refusal::not_authorized(
                "tunnel not accepted from this peer",
            ));
        }
        let mut tc = params::tunnel_config(&tunnel, config);
        tc.accept_lns_calls = m.we_can_be_lns();
        tc.accept_lac_calls = m.we_can_be_lac();
        Ok(tc)
    }

    /// Answer a peer's new call: accept it (ICRP, or OCRP then OCCN) or
    /// refuse it (CDN, RFC 2661 §4.4.2), as [`Self::call_admission`] decides;
    /// or hold it while `[system] pppd_max_starting` calls have their pppd
    /// negotiating (decided in arrival order as links come up and calls
    /// end; the core clears one not decided by its set-up deadline with CDN
    /// result 4).
    pub(super) fn admit_call(&mut self, call: IncomingCall) {
        let limit = self.pppd_start_limit();
        if self.pppd_starts.must_hold(Instant::now(), limit) {
            if self.pppd_starts.held() >= MAX_HELD_CALLS {
                let refusal =
                    CallRefusal::no_facilities("too many calls waiting for PPP negotiation");
                self.answer_call(call, Err(refusal));
                return;
            }
            tracing::debug!(
                tunnel_id = call.tunnel().0,
                peer_session_id = call.peer_session().0,
                starting = self.pppd_starts.starting(),
                waiting = self.pppd_starts.held(),
                "incoming call waits: pppd_max_starting calls are negotiating PPP"
            );
            self.pppd_starts.hold(call);
            return;
        }
        self.decide_call(call);
    }

    /// `[system] pppd_max_starting`, or 0 (no limit) with the null data
    /// plane, which starts no pppd.
    fn pppd_start_limit(&self) -> usize {
        if self.null_dp {
            0
        } else {
            self.config.system.pppd_max_starting as usize
        }
    }

    /// Session `s` of tunnel `t` no longer counts against
    /// `pppd_max_starting` (its PPP link is up, or the call or its pppd
    /// ended): decide the calls held for that.
    pub(super) fn pppd_start_settled(&mut self, t: TunnelId, s: SessionId) {
        if self.pppd_starts.settled(&(t, s)) {
            self.decide_held_calls();
        }
    }

    /// Decide held calls, oldest first, while the limit allows (after a
    /// call settled, or a reload that raised the limit).
    pub(super) fn decide_held_calls(&mut self) {
        let limit = self.pppd_start_limit();
        while let Some(call) = self.pppd_starts.next(Instant::now(), limit) {
            self.decide_call(call);
        }
    }

    /// Accept or refuse `call` now, as [`Self::call_admission`] decides.
    fn decide_call(&mut self, call: IncomingCall) {
        let decision = self.call_admission(&call);
        self.answer_call(call, decision);
    }

    /// Accept `call` (ICRP / OCRP) or refuse it (CDN). An accepted call
    /// counts against `pppd_max_starting`, if set, until it settles (a
    /// limit set by a reload counts the calls accepted after it).
    fn answer_call(&mut self, call: IncomingCall, decision: Result<(), CallRefusal>) {
        let now = Instant::now();
        let (tunnel, peer_session) = (call.tunnel(), call.peer_session());
        let result = match decision {
            Ok(()) => self
                .ep
                .accept_call(now, &mut self.rng, call)
                .map(|session| {
                    if self.pppd_start_limit() != 0 {
                        self.pppd_starts.started(now, (tunnel, session));
                    }
                }),
            Err(refusal) => {
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0,
                    peer_session_id = peer_session.0, result = refusal.result,
                    error = ?refusal.error, "refusing call: {}", refusal.text);
                self.ep.refuse_call(now, &mut self.rng, call, refusal)
            }
        };
        match result {
            Ok(()) => {}
            Err(e @ IncomingCallError::NotPending) => {
                tracing::debug!(
                    tunnel_id = tunnel.0,
                    peer_session_id = peer_session.0,
                    "incoming call: {e}"
                )
            }
            Err(e) => {
                tracing::info!(
                    tunnel_id = tunnel.0,
                    peer_session_id = peer_session.0,
                    "incoming call: {e}"
                )
            }
        }
    }

    /// Whether to take a peer's new call. Each refusal is CDN result 4 ("no
    /// appropriate facilities available – temporary condition", RFC 2661
    /// §4.4.2), so that the peer may try again later. In order:
    ///
    /// 1. shutting down;
    /// 2. `[system] max_sessions` reached (sessions of all tunnels, counted
    ///    by the core in O(1), the peer's undecided calls not included):
    ///    "system session limit reached";
    /// 3. the tunnel's `max_sessions` reached: "tunnel session limit
    ///    reached";
    /// 4. for an ICRQ (we are the LNS), the peer profile's PPP profile
    ///    assigns the peer's address from an `ip_pool` (no `remote_ipaddr`)
    ///    and every address of the pool is in use: "IP pool ... exhausted".
    ///    (The address itself is taken when the call is up; a call accepted
    ///    meanwhile may still find the pool empty, and its session then
    ///    fails with CDN 2/4.)
    ///
    /// The call direction was decided with the tunnel (`lac_lns` of the
    /// peer profile, `accept_lns_calls` / `accept_lac_calls`): the core
    /// answers a call the tunnel does not take with CDN 3 itself.
    fn call_admission(&mut self, call: &IncomingCall) -> Result<(), CallRefusal> {
        if self.shutting_down() {
            return Err(CallRefusal::no_facilities("shutting down"));
        }
        let max = self.config.system.max_sessions as usize;
        if max != 0 && self.ep.session_count() >= max {
            return Err(CallRefusal::no_facilities("system session limit reached"));
        }
        let tunnel = call.tunnel();
        if let Some(t) = self.ep.tunnel(tunnel)
            && t.config.max_sessions != 0
            && t.session_count() >= t.config.max_sessions as usize
        {
            return Err(CallRefusal::no_facilities("tunnel session limit reached"));
        }
        if call.call_type() == CallType::LnsIncoming && self.ensure_tunnel_entry(tunnel) {
            let ppp = self
                .reg
                .tunnel(tunnel)
                .and_then(|e| e.incoming.as_ref())
                .map(|d| d.ppp.clone());
            if let Some(ppp) = ppp
                && ppp.remote_ipaddr.is_none()
                && let Some(pool) = &ppp.ip_pool
                && self.pools.is_exhausted(Range::from(pool))
            {
                return Err(CallRefusal::no_facilities(format!(
                    "IP pool {pool} exhausted"
                )));
            }
        }
        Ok(())
    }
}

/// Calls held for `pppd_max_starting` at most; further ones are refused at
/// once with CDN result 4 (each held call stays pending in the core until
/// its set-up deadline, so a peer sending ICRQs faster than PPP comes up
/// would otherwise grow the queue for that long).
const MAX_HELD_CALLS: usize = 4096;

/// How long an accepted call counts against `pppd_max_starting` at most:
/// a safety net, as each call settles on its own (its link up, or not seen up
/// within 60 s, or the call or its pppd gone); a key missed there can then
/// hold no place for good.
const PPPD_STARTING_MAX: Duration = Duration::from_secs(120);

/// The peers' calls whose pppd is negotiating (`[system]
/// pppd_max_starting`), by key (tunnel id, session id), and the calls held
/// until fewer are, oldest first. `K` and `C` are generic for the tests.
/// Calls count for [`PPPD_STARTING_MAX`] at most; each operation is O(1)
/// amortised.
#[derive(Debug)]
pub(super) struct PppdStarts<K, C> {
    /// Negotiating calls, with when each started.
    starting: HashMap<K, Instant>,
    /// The same in start order (entries of calls settled since are skipped
    /// when they come up), for the expiry.
    order: VecDeque<(Instant, K)>,
    held: VecDeque<C>,
}

impl<K, C> Default for PppdStarts<K, C> {
    fn default() -> Self {
        Self {
            starting: HashMap::new(),
            order: VecDeque::new(),
            held: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Copy, C> PppdStarts<K, C> {
    /// Whether a new call must wait under `limit` (0: no limit): `limit`
    /// calls are negotiating, or calls that came earlier wait already.
    pub(super) fn must_hold(&mut self, now: Instant, limit: usize) -> bool {
        limit != 0 && (self.is_full(now, limit) || !self.held.is_empty())
    }

    /// Hold `call` until [`Self::next`] gives it back.
    pub(super) fn hold(&mut self, call: C) {
        self.held.push_back(call);
    }

    /// The oldest held call, if `limit` allows one more to negotiate.
    pub(super) fn next(&mut self, now: Instant, limit: usize) -> Option<C> {
        if limit != 0 && self.is_full(now, limit) {
            return None;
        }
        self.held.pop_front()
    }

    /// Call `key` was accepted at `now`: it negotiates until it settles.
    pub(super) fn started(&mut self, now: Instant, key: K) {
        self.expire(now);
        self.starting.insert(key, now);
        self.order.push_back((now, key));
    }

    /// Call `key` settled (link up, or gone): whether it was negotiating.
    pub(super) fn settled(&mut self, key: &K) -> bool {
        let was = self.starting.remove(key).is_some();
        if self.starting.is_empty() {
            self.order.clear();
        }
        was
    }

    /// Calls negotiating now.
    pub(super) fn starting(&self) -> usize {
        self.starting.len()
    }

    /// Calls held now.
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether `limit` calls negotiate, once those started more than
    /// [`PPPD_STARTING_MAX`] before `now` no longer count.
    fn is_full(&mut self, now: Instant, limit: usize) -> bool {
        self.expire(now);
        self.starting.len() >= limit
    }

    /// Forget the calls started more than [`PPPD_STARTING_MAX`] before
    /// `now`, and the start-order entries of calls settled since (so
    /// `order` holds at most that long's starts).
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.order.front()
            && now.saturating_duration_since(at) >= PPPD_STARTING_MAX
        {
            self.order.pop_front();
            if self.starting.get(&key) == Some(&at) {
                self.starting.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{PPPD_STARTING_MAX, PppdStarts};

    /// Up to the limit calls negotiate at once; the others wait, and each
    /// call that settles lets the oldest waiting one through, in order. A
    /// call that comes while others wait waits too, even with room.
    #[test]
    fn calls_past_the_limit_wait_in_order_for_one_to_settle() {
        let now = Instant::now();
        let mut p = PppdStarts::<u32, &str>::default();
        assert!(!p.must_hold(now, 2));
        p.started(now, 1);
        assert!(!p.must_hold(now, 2));
        p.started(now, 2);
        assert!(p.must_hold(now, 2));
        p.hold("c");
        p.hold("d");
        assert_eq!(p.next(now, 2), None);
        assert!(!p.settled(&7), "never started");
        assert!(p.settled(&1));
        assert!(!p.settled(&1), "settles once");
        assert_eq!(p.next(now, 2), Some("c"));
        p.started(now, 3);
        assert_eq!(p.next(now, 2), None);
        assert!(p.must_hold(now, 2));
        assert!(p.settled(&2));
        // Room for one, but "d" came first.
        assert!(p.must_hold(now, 2));
        assert_eq!(p.next(now, 2), Some("d"));
        p.started(now, 4);
        assert_eq!((p.starting(), p.held()), (2, 0));
        assert!(p.settled(&3) && p.settled(&4));
        assert!(!p.must_hold(now, 2));
    }

    /// Limit 0: nothing waits; a lower limit (a reload) holds new calls
    /// until enough have settled.
    #[test]
    fn no_limit_holds_nothing_and_a_lower_limit_takes_effect() {
        let now = Instant::now();
        let mut p = PppdStarts::<u32, &str>::default();
        for k in 0..100 {
            assert!(!p.must_hold(now, 0));
            p.started(now, k);
        }
        assert!(p.must_hold(now, 50));
        p.hold("x");
        assert_eq!(p.next(now, 50), None);
        assert_eq!(p.next(now, 0), Some("x"));
    }

    /// A call that never settles stops counting after PPPD_STARTING_MAX;
    /// one started again under the same key counts from its new start.
    #[test]
    fn a_call_that_never_settles_counts_for_a_bounded_time() {
        let t0 = Instant::now();
        let mut p = PppdStarts::<u32, &str>::default();
        p.started(t0, 1);
        let t1 = t0 + Duration::from_secs(10);
        p.started(t1, 2);
        assert!(p.must_hold(t1, 2));
        assert!(p.settled(&2));
        p.started(t1, 2);
        p.hold("w");
        assert_eq!(
            p.next(t0 + PPPD_STARTING_MAX - Duration::from_millis(1), 2),
            None
        );
        assert_eq!(p.next(t0 + PPPD_STARTING_MAX, 2), Some("w"));
        assert_eq!(p.starting(), 1, "key 1 expired, key 2 still counts");
        p.started(t0 + PPPD_STARTING_MAX, 3);
        assert!(p.must_hold(t1 + PPPD_STARTING_MAX - Duration::from_millis(1), 2));
        assert!(!p.must_hold(t1 + PPPD_STARTING_MAX, 2));
    }

    /// Calls that settle while others negotiate leave no trace past
    /// PPPD_STARTING_MAX: the start order holds that long's starts at most.
    #[test]
    fn the_start_order_holds_a_bounded_window() {
        let t0 = Instant::now();
        let mut p = PppdStarts::<u32, &str>::default();
        p.started(t0, 0);
        for k in 1..=1000u32 {
            let at = t0 + Duration::from_secs(u64::from(k));
            p.started(at, k);
            assert!(p.settled(&k));
            assert!(p.order.len() <= 121, "{} at {k}", p.order.len());
        }
        assert_eq!(p.starting(), 0, "key 0 expired");
    }
}
