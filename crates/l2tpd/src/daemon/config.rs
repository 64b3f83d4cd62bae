//! The running configuration as the driver reads it: `[tunnel.NAME]` tables
//! indexed by name (l2tp-config keeps them in a list), and the parameters
//! of calls in incoming tunnels resolved once per peer profile and shared
//! by every such tunnel and session (`Arc`), instead of a copy each.
//!
//! A new configuration (SIGHUP, an API change) gets a new [`RunningConfig`];
//! tunnels and calls set up under the old one keep what they took from it.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use l2tp_config::{Config, LocalTunnel, PeerMatch};

use super::registry::CallDefaults;

/// The running configuration and its indexes. Cheap to clone.
#[derive(Clone)]
pub(super) struct RunningConfig(Arc<Indexed>);

struct Indexed {
    config: Arc<Config>,
    /// `[tunnel.NAME]` → its position in `config.local_tunnels()`.
    local: HashMap<String, usize>,
    /// Peer profile name → parameters of calls in its incoming tunnels.
    incoming: HashMap<String, Arc<CallDefaults>>,
}

impl RunningConfig {
    /// Index `config`: O(size of the configuration).
    pub(super) fn new(config: Arc<Config>) -> Self {
        let local = config
            .local_tunnels()
            .iter()
            .enumerate()
            .map(|(i, lt)| (lt.name.clone(), i))
            .collect();
        let incoming = config
            .peer_profiles()
            .iter()
            .map(|p| {
                let m = PeerMatch {
                    profile: p,
                    matched_by: l2tp_config::MatchedBy::Default,
                };
                (p.name.clone(), Arc::new(resolve(&config, &m)))
            })
            .collect();
        Self(Arc::new(Indexed {
            config,
            local,
            incoming,
        }))
    }

    /// The configuration itself, shared.
    pub(super) fn arc(&self) -> Arc<Config> {
        self.0.config.clone()
    }

    /// The `[tunnel.NAME]` table named `name`, O(1).
    pub(super) fn local_tunnel(&self, name: &str) -> Option<&LocalTunnel> {
        let i = *self.0.local.get(name)?;
        self.0.config.local_tunnels().get(i)
    }

    /// Session and PPP parameters of calls a peer matched by `m` places.
    pub(super) fn incoming_calls(&self, m: &PeerMatch<'_>) -> Arc<CallDefaults> {
        match self.0.incoming.get(&m.profile.name) {
            Some(c) => c.clone(),
            None => Arc::new(resolve(&self.0.config, m)),
        }
    }
}

/// What calls in an incoming tunnel of the peer matched by `m` resolve to.
fn resolve(config: &Config, m: &PeerMatch<'_>) -> CallDefaults {
    let (_, session, ppp) = config.resolve_incoming(m);
    CallDefaults {
        session: Arc::new(session),
        ppp: Arc::new(ppp),
    }
}

impl Deref for RunningConfig {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.0.config
    }
}
