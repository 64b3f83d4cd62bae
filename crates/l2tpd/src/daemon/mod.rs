//! The tokio driver around the sans-IO protocol core: UDP sockets, timers,
//! the data plane, pppd supervision and signals.

mod api;
mod dataplane;
mod events;
mod local;
mod persist;
mod pppd;
mod reload;
mod run;
mod sockets;

use persist::Redial;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use l2tp_config::{Config, PppParams};
use l2tp_kernel::DataPlane;
use l2tp_proto::endpoint::{Endpoint, IncomingPolicy, Limits};
use l2tp_proto::wire::TunnelId;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::params;
use crate::pool::{Pools, Range};
use crate::ppp::PppEvent;

/// How long shutdown waits for StopCCN acknowledgements before giving up.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long a pppd may take to exit after SIGTERM (LCP Terminate over the
/// still-working link) before it is killed and its kernel session deleted anyway.
pub(super) const PPPD_GRACE: Duration = Duration::from_millis(1500);
/// What the daemon knows about a tunnel beyond the protocol state.
pub(super) struct TunnelCtx {
    /// Configuration name (`[tunnel.NAME]`) or `incoming-<peer>`.
    name: String,
    /// Created from a `[tunnel.NAME]` table (not by a peer).
    local: bool,
    /// Re-establish when it goes down (`persist = true`).
    persist: bool,
    /// Session and PPP parameters for calls the peer places (incoming tunnels).
    incoming: Option<(l2tp_config::SessionParams, PppParams)>,
}

pub(super) struct SessionCtx {
    name: String,
    /// The `[tunnel.T.session.NAME]` this call was placed for, if any.
    local_call: Option<String>,
    ppp: Option<PppParams>,
    pppd_pid: Option<u32>,
    ifname: Option<String>,
    pool_addr: Option<(Range, IpAddr)>,
    kernel: bool,
}

/// The daemon.
pub struct Daemon {
    config: Arc<Config>,
    ep: Endpoint,
    rng: StdRng,
    dp: Box<dyn DataPlane>,
    /// Null data plane: no kernel objects, no pppd.
    null_dp: bool,
    local: SocketAddr,
    sockets: sockets::Sockets,
    tunnels: HashMap<TunnelId, TunnelCtx>,
    sessions: HashMap<(u16, u16), SessionCtx>,
    ppp_tx: mpsc::UnboundedSender<PppEvent>,
    ppp_rx: mpsc::UnboundedReceiver<PppEvent>,
    pools: Pools,
    /// Sessions whose pppd was sent SIGTERM: the kernel session is deleted
    /// when pppd exits or at the deadline (deleting it first would leave pppd
    /// running on a dead channel).
    stopping: HashMap<(u16, u16), Stopping>,
    /// Kernel tunnels to delete once their stopping sessions are gone.
    tunnels_to_delete: HashSet<TunnelId>,
    /// Where the configuration is read from (for SIGHUP).
    config_paths: l2tp_config::ConfigPaths,
    /// Persistent tunnels and calls waiting to be re-established.
    redials: Vec<Redial>,
    /// Current back-off per persistent tunnel name.
    backoff: HashMap<String, Duration>,
    shutting_down: bool,
    /// The management API: calls to answer, events to publish, runtime changes.
    api: api::ApiState,
}
pub(super) struct Stopping {
    pid: u32,
    ctx: SessionCtx,
    deadline: Instant,
}

/// The endpoint's resource limits from `[system]`.
pub(super) fn limits(config: &Config) -> Limits {
    let s = &config.system;
    Limits {
        max_tunnels: s.max_tunnels as usize,
        max_sessions: s.max_sessions as usize,
        max_half_open: s.max_half_open_tunnels as usize,
        max_half_open_per_source: s.max_half_open_tunnels_per_peer as usize,
    }
}

pub(super) fn incoming_policy(config: Arc<Config>) -> Option<IncomingPolicy> {
    if config.system.deny_remote_tunnel_creates {
        return None;
    }
    Some(Box::new(move |peer: SocketAddr, host_name: &[u8]| {
        let m = config.match_peer(peer.ip(), Some(host_name));
        let (tunnel, _, _) = config.resolve_incoming(&m);
        // auth_mode simple (and challenge, which adds the Challenge on top):
        // only peers that match a configured peer profile may open tunnels.
        if tunnel.auth_mode != l2tp_config::AuthMode::None
            && m.matched_by == l2tp_config::MatchedBy::Default
        {
            tracing::warn!(%peer, host_name = %String::from_utf8_lossy(host_name), auth_mode = %tunnel.auth_mode,
                "refusing tunnel: the peer matches no configured peer profile");
            return None;
        }
        let mut tc = params::tunnel_config(&tunnel, &config);
        tc.accept_lns_calls = m.we_can_be_lns();
        tc.accept_lac_calls = m.we_can_be_lac();
        Some(tc)
    }))
}

impl Daemon {
    /// Bind the listening socket, open the data plane, start locally configured tunnels.
    pub async fn new(
        config: Config,
        config_paths: l2tp_config::ConfigPaths,
        dp: Box<dyn DataPlane>,
        null_dp: bool,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let local = SocketAddr::new(config.system.listen_addr, config.system.udp_port);
        let std_sock = l2tp_kernel::listen_socket(local)
            .with_context(|| format!("binding the L2TP listening socket {local}"))?;
        let sockets = sockets::Sockets::new(UdpSocket::from_std(std_sock)?);
        let (ppp_tx, ppp_rx) = mpsc::unbounded_channel();
        let mut ep = Endpoint::new(incoming_policy(config.clone()));
        ep.set_limits(limits(&config));
        let api = api::ApiState::new(&config)?;
        let mut d = Daemon {
            config,
            ep,
            rng: StdRng::from_os_rng(),
            dp,
            null_dp,
            local,
            sockets,
            tunnels: HashMap::new(),
            sessions: HashMap::new(),
            ppp_tx,
            ppp_rx,
            pools: Pools::default(),
            stopping: HashMap::new(),
            tunnels_to_delete: HashSet::new(),
            config_paths,
            redials: Vec::new(),
            backoff: HashMap::new(),
            shutting_down: false,
            api,
        };
        if d.config.system.ppp_accm_events && !null_dp {
            crate::ppp_events::listen(d.ppp_tx.clone()).context("ppp_accm_events")?;
        }
        tracing::info!(listen = %d.local, data_plane = %d.config.system.data_plane, "l2tpd started");
        d.start_local_tunnels();
        Ok(d)
    }

    pub(super) fn tunnel_name(&self, id: TunnelId) -> String {
        self.tunnels
            .get(&id)
            .map_or_else(|| format!("tunnel-{}", id.0), |c| c.name.clone())
    }
}
