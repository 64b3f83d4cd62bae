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
//! (SCCRP / StopCCN, ICRP / OCRP / CDN) is the next output.

use std::time::Instant;

use l2tp_proto::endpoint::{Incoming, IncomingCall, IncomingCallError, IncomingError};
use l2tp_proto::event::TunnelConfig;
use l2tp_proto::session::CallType;
use l2tp_proto::tunnel::{CallRefusal, Refusal};

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
    /// refuse it (CDN, RFC 2661 §4.4.2), as [`Self::call_admission`] decides.
    pub(super) fn admit_call(&mut self, call: IncomingCall) {
        let now = Instant::now();
        let (tunnel, peer_session) = (call.tunnel(), call.peer_session());
        let result = match self.call_admission(&call) {
            Ok(()) => self.ep.accept_call(now, &mut self.rng, call).map(drop),
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
