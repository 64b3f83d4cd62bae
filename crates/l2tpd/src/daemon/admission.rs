//! Admission: the driver's decision on a peer's new tunnel. The core
//! reports a valid SCCRQ as an [`Incoming`] once its stateless checks passed
//! (Ns = 0, half-open bounds, duplicates, Tie Breaker, shutdown, free ids)
//! and holds nothing for it; [`Daemon::admit`] decides at once, while the
//! outputs are drained, from the running configuration (so a reload changes
//! what is decided next and nothing else).

use std::time::Instant;

use l2tp_proto::endpoint::{Incoming, IncomingError};
use l2tp_proto::event::TunnelConfig;
use l2tp_proto::tunnel::Refusal;

use super::Daemon;
use crate::params;

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
}
