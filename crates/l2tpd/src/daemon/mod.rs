//! The tokio driver around the sans-IO protocol core: UDP sockets, timers,
//! the data plane, pppd supervision, signals and the management API.
//!
//! Files, one job each:
//! - `admission`: the decisions on a peer's new tunnel (SCCRQ) and new call (ICRQ / OCRQ);
//! - `registry`: the table of tunnels and their sessions, and the name indexes;
//! - `timers`: the driver's deadlines (pppd kills, re-dials, re-placed calls);
//! - `config`: the running configuration, indexed;
//! - `run`: the wakeup loop, signals, SIGUSR1 counters, shutdown;
//! - `sockets`: UDP sockets, receive queues, sending;
//! - `events`: what the core's events do to the registry;
//! - `dataplane`: the core's actions: kernel tunnels and sessions, pool addresses;
//! - `worker`: the thread that owns the data plane and starts pppd, so the
//!   loop never waits on either;
//! - `pppd`: pppd started, stopped, killed, and its reports;
//! - `local`: the one path that opens tunnels and the one that places calls;
//! - `persist`: persistent tunnels and calls (back-off, re-dial, re-place);
//! - `reload`: SIGHUP;
//! - `state`: the state file (what we own, for the next start) and start-up reconciliation;
//! - `api`: the management API's calls, one file per resource.

mod admission;
mod api;
mod config;
mod dataplane;
mod events;
mod local;
mod persist;
mod pppd;
mod registry;
mod reload;
mod run;
mod sockets;
mod state;
mod timers;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use l2tp_config::Config;
use l2tp_kernel::DataPlane;
use l2tp_proto::endpoint::{Endpoint, IncomingCall, Limits};
use l2tp_proto::wire::{SessionId, TunnelId};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use self::config::RunningConfig;
use self::persist::Persist;
use self::registry::Registry;
use self::timers::Timers;
use crate::pool::Pools;
use crate::ppp::PppEvent;

/// How long shutdown waits for StopCCN acknowledgements before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long a pppd may take to exit after SIGTERM before it is killed and
/// its kernel session deleted anyway: its LCP Terminate-Request over the
/// still-working link (up to `lcp-max-terminate` 2 × `lcp-restart` 3 s when
/// the peer does not answer), then its ip-down scripts, which it waits for.
const PPPD_GRACE: Duration = Duration::from_secs(10);

/// The daemon.
pub(crate) struct Daemon {
    /// The running configuration, indexed.
    config: RunningConfig,
    ep: Endpoint,
    rng: StdRng,
    /// The owner of the data plane: kernel calls and pppd starts run there.
    dpw: worker::Worker,
    /// Results of the worker's creations, as inputs of the loop.
    dp_tx: mpsc::UnboundedSender<worker::Done>,
    dp_rx: mpsc::UnboundedReceiver<worker::Done>,
    /// Kernel tunnels being created, by the ticket of their creation.
    tunnel_creates: std::collections::HashMap<TunnelId, worker::Ticket>,
    /// Kernel counters the API reply being built waits for (`TunnelShow`,
    /// `SessionShow`): the worker reads them and sends the reply.
    api_stats: Option<api::StatsQuery>,
    /// Null data plane: no kernel objects, no pppd.
    null_dp: bool,
    local: SocketAddr,
    sockets: sockets::Sockets,
    /// Every tunnel and session the driver knows.
    reg: Registry,
    /// The peers' calls whose pppd is negotiating, and the calls waiting
    /// for fewer to be (`[system] pppd_max_starting`).
    pppd_starts: admission::PppdStarts<(TunnelId, SessionId), IncomingCall>,
    /// The driver's deadlines.
    timers: Timers,
    /// Back-off and pending re-dials of persistent tunnels.
    persist: Persist,
    ppp_tx: mpsc::UnboundedSender<PppEvent>,
    ppp_rx: mpsc::UnboundedReceiver<PppEvent>,
    pools: Pools,
    /// Where the configuration is read from (for SIGHUP).
    config_paths: l2tp_config::ConfigPaths,
    /// Set by SIGTERM / SIGINT: when shutdown stops waiting for the peers.
    shutdown: Option<Instant>,
    /// The management API: calls to answer, events to publish, runtime changes.
    api: api::ApiState,
    /// What we own, written down for the next start (`[system] state_file`).
    state: Option<state::StateFile>,
    /// What the service manager is told (sd_notify): readiness, status, watchdog.
    notify: crate::notify::Notifier,
    /// Scrapes of the metrics endpoint (`[system] metrics_listen`), if on.
    metrics: Option<mpsc::Receiver<crate::metrics::Request>>,
    /// The core's call parameters of the last call placed, with the session
    /// parameters they were made from: the calls of a tunnel resolve to one
    /// `Arc<SessionParams>`, and so share one `Arc<CallParams>` too.
    last_call_params: Option<(
        Arc<l2tp_config::SessionParams>,
        Arc<l2tp_proto::session::CallParams>,
    )>,
}

/// The state file in use: `[system] state_file` if set (empty: none), else
/// [`DEFAULT_STATE_FILE`] with a kernel data plane and none with the null
/// one (which owns no kernel objects or pppds).
fn state_file_path(config: &Config, null_dp: bool) -> Option<std::path::PathBuf> {
    match &config.system.state_file {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some(p.clone()),
        None if null_dp => None,
        None => Some(DEFAULT_STATE_FILE.into()),
    }
}

/// Where a daemon with a kernel data plane records what it owns by default.
const DEFAULT_STATE_FILE: &str = "/run/l2tpd/l2tpd.state";

/// The endpoint's resource limits from `[system]`.
fn limits(config: &Config) -> Limits {
    let s = &config.system;
    Limits {
        max_tunnels: s.max_tunnels as usize,
        max_sessions: s.max_sessions as usize,
        max_half_open: s.max_half_open_tunnels as usize,
        max_half_open_per_source: s.max_half_open_tunnels_per_peer as usize,
        max_dialing: s.max_dialing_tunnels as usize,
    }
}

impl Daemon {
    /// Bind the listening socket, open the data plane, start locally configured tunnels.
    pub(crate) async fn new(
        config: Config,
        config_paths: l2tp_config::ConfigPaths,
        dp: Box<dyn DataPlane>,
        null_dp: bool,
    ) -> anyhow::Result<Self> {
        // First: a second l2tpd with the same state file stops here, before
        // it touches anything.
        let (state, previous) = match state_file_path(&config, null_dp) {
            Some(p) => {
                let (st, prev) = state::StateFile::open(&p).context("state file")?;
                (Some(st), prev)
            }
            None => (None, state::Owned::default()),
        };
        let config = RunningConfig::new(Arc::new(config));
        let local = SocketAddr::new(config.system.listen_addr, config.system.udp_port);
        let std_sock = l2tp_kernel::listen_socket(local)
            .with_context(|| format!("binding the L2TP listening socket {local}"))?;
        // With `udp_port = 0` the kernel chose the port: tunnels share that one.
        let local = SocketAddr::new(local.ip(), std_sock.local_addr()?.port());
        let sockets = sockets::Sockets::new(UdpSocket::from_std(std_sock)?)?;
        let (ppp_tx, ppp_rx) = mpsc::unbounded_channel();
        let (dp_tx, dp_rx) = mpsc::unbounded_channel();
        // The null data plane never blocks: its jobs run on the loop's thread.
        let dpw = if null_dp {
            worker::Worker::inline(dp)
        } else {
            let nice = i32::from(config.system.pppd_nice);
            worker::Worker::spawn(dp, tokio::runtime::Handle::current(), nice)
                .context("starting the data-plane worker thread")?
        };
        let mut ep = Endpoint::new();
        ep.set_limits(limits(&config));
        let api = api::ApiState::new(&config)?;
        let metrics = config
            .system
            .metrics_listen
            .map(crate::metrics::listen)
            .transpose()?;
        let mut d = Self {
            config,
            ep,
            rng: StdRng::from_os_rng(),
            dpw,
            dp_tx,
            dp_rx,
            tunnel_creates: std::collections::HashMap::new(),
            api_stats: None,
            null_dp,
            local,
            sockets,
            reg: Registry::default(),
            pppd_starts: admission::PppdStarts::default(),
            timers: Timers::default(),
            persist: Persist::default(),
            ppp_tx,
            ppp_rx,
            pools: Pools::default(),
            config_paths,
            shutdown: None,
            api,
            state,
            notify: crate::notify::Notifier::from_env(),
            metrics,
            last_call_params: None,
        };
        d.reconcile(&previous).await;
        if d.config.system.ppp_accm_events && !null_dp {
            crate::ppp_events::listen(d.ppp_tx.clone()).context("ppp_accm_events")?;
        }
        d.start_local_tunnels();
        Ok(d)
    }

    /// A tunnel's name, `tunnel-<id>` when the registry has none.
    fn tunnel_name(&self, id: TunnelId) -> String {
        self.reg
            .tunnel(id)
            .map_or_else(|| format!("tunnel-{}", id.0), |c| c.name.to_string())
    }

    /// Run under `config` from now on (SIGHUP, API changes): tunnels and
    /// calls set up from now on and incoming tunnels ([`Self::admit`]) follow it.
    fn set_config(&mut self, config: Arc<Config>) {
        self.config = RunningConfig::new(config);
    }

    /// (tunnels, sessions) the core holds, for `STATUS=`; O(1).
    fn counts(&self) -> (usize, usize) {
        (self.ep.tunnel_count(), self.ep.session_count())
    }

    /// Shutdown has begun (SIGTERM / SIGINT).
    fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }
}
