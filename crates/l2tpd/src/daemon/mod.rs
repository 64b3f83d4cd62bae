//! The tokio driver around the sans-IO protocol core: UDP sockets, timers,
//! the data plane, pppd supervision and signals.

mod api;
mod sockets;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use l2tp_config::{Config, PppParams};
use l2tp_kernel::{DataPlane, SessionSpec, TunnelSpec};
use l2tp_proto::endpoint::{Endpoint, IncomingPolicy, Limits};
use l2tp_proto::event::{Action, ActionResult, Command, CommandOutcome, Event, Output, Transmit};
use l2tp_proto::session::CallType;
use l2tp_proto::wire::{CdnResult, SessionId, TunnelId};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::params;
use crate::pool::{Pools, Range};
use crate::ppp::{self, PppEvent, PppLaunch};

/// How long shutdown waits for StopCCN acknowledgements before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long a pppd may take to exit after SIGTERM (LCP Terminate over the
/// still-working link) before it is killed and its kernel session deleted anyway.
const PPPD_GRACE: Duration = Duration::from_millis(1500);
/// What the daemon knows about a tunnel beyond the protocol state.
struct TunnelCtx {
    /// Configuration name (`[tunnel.NAME]`) or `incoming-<peer>`.
    name: String,
    /// Created from a `[tunnel.NAME]` table (not by a peer).
    local: bool,
    /// Re-establish when it goes down (`persist = true`).
    persist: bool,
    /// Session and PPP parameters for calls the peer places (incoming tunnels).
    incoming: Option<(l2tp_config::SessionParams, PppParams)>,
}

struct SessionCtx {
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

/// A persistent tunnel or call to re-establish at `at`.
enum Redial {
    Tunnel {
        name: String,
        at: Instant,
    },
    Call {
        tunnel: TunnelId,
        session: String,
        at: Instant,
    },
}

impl Redial {
    fn at(&self) -> Instant {
        match self {
            Redial::Tunnel { at, .. } | Redial::Call { at, .. } => *at,
        }
    }
}

/// First re-dial delay of a persistent tunnel; doubles up to [`REDIAL_MAX`].
const REDIAL_FIRST: Duration = Duration::from_secs(1);
/// Longest re-dial delay.
const REDIAL_MAX: Duration = Duration::from_secs(60);
/// Delay before re-placing a persistent call that ended while its tunnel stayed up.
const RECALL_DELAY: Duration = Duration::from_secs(2);

struct Stopping {
    pid: u32,
    ctx: SessionCtx,
    deadline: Instant,
}

/// The endpoint's resource limits from `[system]`.
fn limits(config: &Config) -> Limits {
    let s = &config.system;
    Limits {
        max_tunnels: s.max_tunnels as usize,
        max_sessions: s.max_sessions as usize,
        max_half_open: s.max_half_open_tunnels as usize,
        max_half_open_per_source: s.max_half_open_tunnels_per_peer as usize,
    }
}

fn incoming_policy(config: Arc<Config>) -> Option<IncomingPolicy> {
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

    fn start_local_tunnels(&mut self) {
        let config = self.config.clone();
        for lt in config.local_tunnels() {
            self.open_local_tunnel(lt);
        }
    }

    /// Open a `[tunnel.NAME]` tunnel and place its configured calls.
    fn open_local_tunnel(&mut self, lt: &l2tp_config::LocalTunnel) -> Option<TunnelId> {
        let now = Instant::now();
        let peer = lt.peer;
        let tc = params::tunnel_config(&lt.params, &self.config);
        let id = match self.ep.handle_command(
            now,
            &mut self.rng,
            Command::OpenTunnel {
                peer,
                config: Box::new(tc),
            },
        ) {
            Ok(CommandOutcome::Tunnel(id)) => id,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(tunnel = %lt.name, "cannot open tunnel: {e}");
                return None;
            }
        };
        tracing::info!(tunnel = %lt.name, tunnel_id = id.0, %peer, persist = lt.persist, "opening tunnel");
        self.tunnels.insert(
            id,
            TunnelCtx {
                name: lt.name.clone(),
                local: true,
                persist: lt.persist,
                incoming: Some((lt.session_defaults.clone(), lt.ppp_defaults.clone())),
            },
        );
        for ls in &lt.sessions {
            self.place_local_call(id, lt, ls);
        }
        Some(id)
    }

    /// Place the call of a `[tunnel.T.session.NAME]` table in tunnel `id`.
    fn place_local_call(
        &mut self,
        id: TunnelId,
        lt: &l2tp_config::LocalTunnel,
        ls: &l2tp_config::LocalSession,
    ) {
        let call_type = match ls.session_type {
            l2tp_config::SessionType::LacIncoming => CallType::LacIncoming,
            l2tp_config::SessionType::LnsOutgoing => CallType::LnsOutgoing,
            other => {
                tracing::error!(tunnel = %lt.name, session = %ls.name, "session_type {other} is placed by the peer, not by us; skipped");
                return;
            }
        };
        let cmd = Command::PlaceCall {
            tunnel: id,
            call_type,
            params: Box::new(params::call_params(&ls.params)),
        };
        match self.ep.handle_command(Instant::now(), &mut self.rng, cmd) {
            Ok(CommandOutcome::Session(sid)) => {
                tracing::info!(tunnel = %lt.name, session = %ls.name, tunnel_id = id.0, session_id = sid.0, "placing call");
                self.sessions.insert(
                    (id.0, sid.0),
                    SessionCtx {
                        name: ls.name.clone(),
                        local_call: Some(ls.name.clone()),
                        ppp: Some(ls.ppp.clone()),
                        pppd_pid: None,
                        ifname: None,
                        pool_addr: None,
                        kernel: false,
                    },
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(tunnel = %lt.name, session = %ls.name, "cannot place call: {e}")
            }
        }
    }

    /// Re-establish persistent tunnels and calls that are due.
    fn run_redials(&mut self, now: Instant) {
        let (due, later): (Vec<Redial>, Vec<Redial>) = std::mem::take(&mut self.redials)
            .into_iter()
            .partition(|r| r.at() <= now);
        self.redials = later;
        let config = self.config.clone();
        for r in due {
            match r {
                Redial::Tunnel { name, .. } => match config.local_tunnel(&name) {
                    Some(lt) => {
                        tracing::info!(tunnel = %name, "re-establishing persistent tunnel");
                        self.open_local_tunnel(lt);
                    }
                    None => {
                        tracing::info!(tunnel = %name, "persistent tunnel no longer configured; not re-established")
                    }
                },
                Redial::Call {
                    tunnel, session, ..
                } => {
                    let Some(ctx) = self.tunnels.get(&tunnel) else {
                        continue;
                    };
                    let open = self.ep.tunnel(tunnel).is_some_and(|t| t.is_open());
                    if let (true, Some(lt)) = (open, config.local_tunnel(&ctx.name))
                        && let Some(ls) = lt.sessions.iter().find(|s| s.name == session)
                    {
                        self.place_local_call(tunnel, lt, ls);
                    }
                }
            }
        }
    }

    /// SIGHUP: read the configuration again. An invalid one is rejected and the
    /// running one kept. Profile changes apply to tunnels and calls created from
    /// now on; `[tunnel.NAME]` tables added or removed bring tunnels up or down,
    /// and calls added to or removed from a running tunnel are placed or cleared.
    /// Established sessions of unchanged tunnels are left alone.
    fn reload(&mut self) {
        let new = match self.api.reload(&self.config_paths) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(
                    "configuration reload failed; keeping the running configuration:\n{e}"
                );
                return;
            }
        };
        for w in new.warnings() {
            tracing::warn!("{w}");
        }
        let restart_keys: Vec<&str> = self
            .config
            .changes(&new)
            .system_keys
            .into_iter()
            .filter(|k| {
                matches!(
                    *k,
                    "listen_addr"
                        | "udp_port"
                        | "data_plane"
                        | "ppp_accm_events"
                        | "api_socket"
                        | "api_group"
                        | "api_readonly_group"
                )
            })
            .collect();
        if !restart_keys.is_empty() {
            tracing::warn!(
                "system keys {} change only when l2tpd restarts",
                restart_keys.join(", ")
            );
        }
        let old_names: HashSet<String> = self
            .config
            .local_tunnels()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let new_names: HashSet<String> =
            new.local_tunnels().iter().map(|t| t.name.clone()).collect();
        self.config = new.clone();
        self.ep.set_policy(incoming_policy(new.clone()));
        self.ep.set_limits(limits(&new));
        let now = Instant::now();
        let (mut added, mut removed) = (0, 0);
        for name in old_names.difference(&new_names) {
            removed += 1;
            self.redials
                .retain(|r| !matches!(r, Redial::Tunnel { name: n, .. } if n == name));
            let ids: Vec<TunnelId> = self
                .tunnels
                .iter()
                .filter(|(_, c)| c.local && &c.name == name)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(c) = self.tunnels.get_mut(&id) {
                    c.persist = false;
                }
                tracing::info!(tunnel = %name, tunnel_id = id.0, "tunnel removed from the configuration: closing it");
                let cmd = Command::CloseTunnel {
                    tunnel: id,
                    result: 1,
                    message: Some("removed from the configuration".into()),
                };
                let _ = self.ep.handle_command(now, &mut self.rng, cmd);
            }
        }
        for lt in new.local_tunnels() {
            if !old_names.contains(&lt.name) {
                added += 1;
                self.open_local_tunnel(lt);
                continue;
            }
            // A tunnel in both: calls added or removed.
            let Some((&id, ctx)) = self
                .tunnels
                .iter_mut()
                .find(|(_, c)| c.local && c.name == lt.name)
            else {
                continue;
            };
            ctx.persist = lt.persist;
            let running: HashMap<String, u16> = self
                .sessions
                .iter()
                .filter(|((t, _), _)| *t == id.0)
                .filter_map(|((_, s), c)| c.local_call.clone().map(|n| (n, *s)))
                .collect();
            for ls in &lt.sessions {
                if !running.contains_key(&ls.name) {
                    self.place_local_call(id, lt, ls);
                }
            }
            for (name, sid) in running {
                if !lt.sessions.iter().any(|s| s.name == name) {
                    if let Some(c) = self.sessions.get_mut(&(id.0, sid)) {
                        c.local_call = None;
                    }
                    let cmd = Command::CloseSession {
                        tunnel: id,
                        session: SessionId(sid),
                        result: 3,
                        message: Some("removed from the configuration".into()),
                    };
                    let _ = self.ep.handle_command(now, &mut self.rng, cmd);
                }
            }
        }
        let sources: Vec<String> = self
            .config
            .sources()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        tracing::info!(added, removed, sources = %sources.join(" "), "configuration reloaded");
    }

    /// Run until SIGTERM / SIGINT, then tear everything down.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut sigusr1 = signal(SignalKind::user_defined1())?;
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            self.process_outputs().await;
            if let Some(d) = shutdown_deadline
                && ((self.ep.is_idle() && self.stopping.is_empty()) || Instant::now() >= d)
            {
                break;
            }
            let next_stop = self.stopping.values().map(|s| s.deadline).min();
            let next_redial = self.redials.iter().map(Redial::at).min();
            let next = [
                self.ep.poll_timeout(),
                shutdown_deadline,
                next_stop,
                next_redial,
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            // Biased: signals and timers first, then datagrams (established
            // tunnels' before the listening socket's, see `sockets`), then
            // pppd and the API.
            tokio::select! {
                biased;
                () = sleep => {
                    let now = Instant::now();
                    self.ep.handle_timeout(now, &mut self.rng);
                    self.expire_stopping(now);
                    self.run_redials(now);
                }
                Some(d) = self.sockets.recv() => {
                    let _trace = crate::api::trace::enter_datagram(&d.data);
                    self.ep.handle_datagram(Instant::now(), &mut self.rng, d.from, &d.data);
                }
                Some(ev) = self.ppp_rx.recv() => self.on_ppp_event(ev),
                Some(req) = self.api.recv() => self.handle_api(req),
                _ = sigterm.recv() => {
                    tracing::info!("SIGTERM: closing all tunnels");
                    self.begin_shutdown(&mut shutdown_deadline);
                }
                _ = sigint.recv() => {
                    tracing::info!("SIGINT: closing all tunnels");
                    self.begin_shutdown(&mut shutdown_deadline);
                }
                _ = sigusr1.recv() => self.log_counters(),
                _ = sighup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if shutdown_deadline.is_none() {
                        self.reload();
                    }
                }
            }
        }
        self.final_cleanup().await;
        tracing::info!("l2tpd stopped");
        Ok(())
    }

    /// Log the system counters and each tunnel's state and counters (SIGUSR1).
    fn log_counters(&self) {
        let c = self.ep.counters();
        tracing::info!(
            tunnels = self.ep.tunnel_count(),
            sessions = self.ep.session_count(),
            total_rcvd_control_frames = c.total_rcvd_control_frames,
            bad_rcvd_frames = c.bad_rcvd_frames,
            wrong_version_frames = c.wrong_version_frames,
            unexpected_data_frames = c.unexpected_data_frames,
            no_matching_tunnel_id_discards = c.no_matching_tunnel_id_discards,
            mismatched_peer_discards = c.mismatched_peer_discards,
            tunnels_refused = c.tunnels_refused,
            tunnels_lost = c.tunnels_lost,
            auth_fails = c.auth_fails,
            illegal_messages = c.illegal_messages,
            retransmits = c.retransmits,
            tie_breakers_won = c.tie_breakers_won,
            tie_breakers_lost = c.tie_breakers_lost,
            half_open = self.ep.half_open_count(),
            half_open_drops = c.half_open_drops,
            sccrq_bad_ns_drops = c.sccrq_bad_ns_drops,
            tunnel_limit_refusals = c.tunnel_limit_refusals,
            tunnel_sockets = self.sockets.count(),
            listen_queue_drops = self.sockets.drops().0,
            tunnel_queue_drops = self.sockets.drops().1,
            "counters: system"
        );
        for t in self.ep.tunnels() {
            let ch = t.channel.counters();
            let by_type = |v: &[u64; 17]| {
                v.iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| format!("{}={n}", l2tp_proto::wire::MessageType(i as u16)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            tracing::info!(
                tunnel = %self.tunnel_name(t.id),
                tunnel_id = t.id.0,
                peer_tunnel_id = t.peer_id.0,
                peer = %t.peer,
                state = %t.state_name(),
                sessions = t.session_count(),
                ns = t.channel.ns(),
                nr = t.channel.nr(),
                cwnd = t.channel.cwnd(),
                ssthresh = t.channel.ssthresh(),
                peer_rws = t.channel.peer_rws(),
                retransmits = ch.retransmits,
                tx_zlbs = ch.tx_zlbs,
                rx_zlbs = ch.rx_zlbs,
                duplicates = ch.duplicates,
                out_of_order = ch.out_of_order,
                tx_hellos = t.counters.tx_hellos,
                rx_hellos = t.counters.rx_hellos,
                auth_fails = t.counters.auth_fails,
                illegal_messages = t.counters.illegal_messages,
                ignored_avps = t.counters.ignored_avps,
                vendor_avps = t.counters.vendor_avps,
                rx = %by_type(&t.counters.rx_by_type),
                tx = %by_type(&t.counters.tx_by_type),
                rx_bad = %by_type(&t.counters.rx_bad_by_type),
                "counters: tunnel"
            );
        }
    }

    fn begin_shutdown(&mut self, deadline: &mut Option<Instant>) {
        if deadline.is_none() {
            self.shutting_down = true;
            self.redials.clear();
            let _ = self
                .ep
                .handle_command(Instant::now(), &mut self.rng, Command::Shutdown);
            *deadline = Some(Instant::now() + SHUTDOWN_GRACE);
        }
    }

    async fn final_cleanup(&mut self) {
        let keys: Vec<(u16, u16)> = self.sessions.keys().copied().collect();
        for (t, s) in keys {
            self.delete_session(TunnelId(t), SessionId(s));
        }
        // Wait (bounded) for every pppd to exit, then kill the stragglers.
        let deadline = tokio::time::Instant::now() + PPPD_GRACE;
        while !self.stopping.is_empty() {
            match tokio::time::timeout_at(deadline, self.ppp_rx.recv()).await {
                Ok(Some(ev)) => self.on_ppp_event(ev),
                Ok(None) | Err(_) => break,
            }
        }
        self.expire_stopping(Instant::now() + PPPD_GRACE);
        let tunnels: HashSet<TunnelId> = self
            .sockets
            .tunnels()
            .chain(self.tunnels_to_delete.drain())
            .collect();
        for t in tunnels {
            if let Err(e) = self.dp.delete_tunnel(l2tp_kernel::TunnelId(u32::from(t.0))) {
                tracing::debug!(tunnel_id = t.0, "final tunnel delete: {e}");
            }
        }
        self.sockets.clear();
    }

    /// Kill pppds that did not exit within their grace period and delete their sessions.
    fn expire_stopping(&mut self, now: Instant) {
        let expired: Vec<(u16, u16)> = self
            .stopping
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(st) = self.stopping.remove(&key) {
                tracing::warn!(
                    tunnel_id = key.0,
                    session_id = key.1,
                    pid = st.pid,
                    "pppd did not exit after SIGTERM; sending SIGKILL"
                );
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(st.pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                self.finish_session(key, st.ctx);
            }
        }
    }

    /// Drain the core's outputs. Datagrams go out first, so that replies and
    /// acknowledgements never wait behind kernel calls or pppd start-ups;
    /// actions and events then run in the order the core gave them.
    async fn process_outputs(&mut self) {
        let mut rest = Vec::new();
        loop {
            while let Some(o) = self.ep.poll_output() {
                match o {
                    Output::Transmit(t) => self.transmit(t).await,
                    other => rest.push(other),
                }
            }
            if rest.is_empty() {
                return;
            }
            // Action results feed the core again: go round until it is quiet.
            for o in rest.drain(..) {
                match o {
                    Output::Action(a) => self.action(a),
                    Output::Event(e) => self.event(e),
                    Output::Transmit(_) => unreachable!("transmits are sent above"),
                }
            }
        }
    }

    /// The socket of `tunnel`, opened from the tunnel's local address (its
    /// `local_addr` or the listening address) when it has none yet.
    fn tunnel_socket(
        &mut self,
        tunnel: TunnelId,
        peer: SocketAddr,
    ) -> std::io::Result<Arc<UdpSocket>> {
        if let Some(s) = self.sockets.get(tunnel) {
            return Ok(s);
        }
        let local = self
            .tunnels
            .get(&tunnel)
            .and_then(|c| self.config.tunnel_local_addr(&c.name))
            .map_or(self.local, |ip| SocketAddr::new(ip, self.local.port()));
        let ep = &self.ep;
        let opened = self.sockets.open(tunnel, local, peer, |id| {
            ep.tunnel(id).is_some_and(|t| t.is_open())
        });
        if let Err(e) = &opened
            && crate::fdlimit::is_exhaustion(e)
        {
            crate::fdlimit::report_exhaustion("opening a tunnel socket", e);
        }
        opened
    }

    /// Send a control message: from the tunnel's own socket, from a new one
    /// for a tunnel we dial, else (a half-open or refused tunnel of a peer)
    /// from the listening socket.
    async fn transmit(&mut self, t: Transmit) {
        let dialed = self.ep.tunnel(t.tunnel).is_some_and(|x| x.initiator);
        let socket = match self.sockets.get(t.tunnel) {
            Some(s) => Some(s),
            None if dialed => match self.tunnel_socket(t.tunnel, t.peer) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(tunnel_id = t.tunnel.0, peer = %t.peer, "cannot open tunnel socket: {e}");
                    return;
                }
            },
            None => None,
        };
        let sent = match socket {
            Some(s) => s.send(&t.data).await.map(|_| ()),
            None => self.sockets.send_from_listener(t.peer, &t.data).await,
        };
        if let Err(e) = sent {
            // Loss is recovered by retransmission.
            tracing::debug!(tunnel_id = t.tunnel.0, peer = %t.peer, "send: {e}");
        }
    }

    fn tunnel_name(&self, id: TunnelId) -> String {
        self.tunnels
            .get(&id)
            .map_or_else(|| format!("tunnel-{}", id.0), |c| c.name.clone())
    }

    fn event(&mut self, e: Event) {
        self.api_event(&e);
        match e {
            Event::TunnelUp {
                tunnel,
                peer_tunnel,
                peer,
                peer_host_name,
            } => {
                // A persistent tunnel that came up starts its back-off afresh.
                if let Some(c) = self.tunnels.get(&tunnel)
                    && c.local
                {
                    self.backoff.remove(&c.name);
                }
                if !self.tunnels.contains_key(&tunnel) {
                    let m = self
                        .config
                        .match_peer(peer.ip(), Some(peer_host_name.as_bytes()));
                    let (_, session, ppp) = self.config.resolve_incoming(&m);
                    self.tunnels.insert(
                        tunnel,
                        TunnelCtx {
                            name: format!("incoming-{peer}"),
                            local: false,
                            persist: false,
                            incoming: Some((session, ppp)),
                        },
                    );
                }
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, peer_tunnel_id = peer_tunnel.0, %peer, peer_host_name, "tunnel up");
            }
            Event::TunnelDown { tunnel, reason } => {
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, "tunnel down: {reason}");
                if let Some(c) = self.tunnels.get(&tunnel)
                    && c.persist
                    && !self.shutting_down
                    && reason != l2tp_proto::event::CloseReason::TieBreakerLost
                {
                    let delay = self.backoff.get(&c.name).copied().unwrap_or(REDIAL_FIRST);
                    self.backoff
                        .insert(c.name.clone(), (delay * 2).min(REDIAL_MAX));
                    tracing::info!(tunnel = %c.name, "persistent tunnel: re-establishing in {delay:?}");
                    self.redials.push(Redial::Tunnel {
                        name: c.name.clone(),
                        at: Instant::now() + delay,
                    });
                }
            }
            Event::TunnelFreed { tunnel } => {
                // The socket closes when no tunnel uses it any more.
                self.sockets.release(tunnel);
                self.tunnels.remove(&tunnel);
                tracing::debug!(tunnel_id = tunnel.0, "tunnel freed");
            }
            Event::SessionUp {
                tunnel,
                session,
                peer_session,
                call_type,
            } => {
                let ctx = self.sessions.get(&(tunnel.0, session.0));
                tracing::info!(
                    tunnel = %self.tunnel_name(tunnel),
                    session = ctx.map_or("", |c| c.name.as_str()),
                    tunnel_id = tunnel.0, session_id = session.0, peer_session_id = peer_session.0,
                    call_type = %call_type,
                    pppd_pid = ctx.and_then(|c| c.pppd_pid).unwrap_or(0),
                    "session up"
                );
            }
            Event::SessionDown {
                tunnel,
                session,
                reason,
            } => {
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, session_id = session.0, "session down: {reason}");
                // A configured call of a persistent tunnel that is still up is placed again.
                let recall = self
                    .sessions
                    .get(&(tunnel.0, session.0))
                    .and_then(|c| c.local_call.clone());
                if let Some(name) = recall
                    && !self.shutting_down
                    && self.tunnels.get(&tunnel).is_some_and(|c| c.persist)
                    && self.ep.tunnel(tunnel).is_some_and(|t| t.is_open())
                {
                    tracing::info!(tunnel = %self.tunnel_name(tunnel), session = %name, "persistent call: placing it again in {RECALL_DELAY:?}");
                    self.redials.push(Redial::Call {
                        tunnel,
                        session: name,
                        at: Instant::now() + RECALL_DELAY,
                    });
                }
                // Sessions that never reached the data plane leave no DeleteSession action.
                if self
                    .sessions
                    .get(&(tunnel.0, session.0))
                    .is_some_and(|c| !c.kernel)
                {
                    self.sessions.remove(&(tunnel.0, session.0));
                }
            }
            Event::TunnelReplaced { old, new, sessions } => {
                tracing::info!(
                    old_tunnel_id = old.0,
                    tunnel_id = new.0,
                    calls = sessions.len(),
                    "crossed SCCRQs: the peer's tunnel replaces ours"
                );
                if let Some(ctx) = self.tunnels.remove(&old) {
                    self.tunnels.insert(new, ctx);
                }
                for s in sessions {
                    if let Some(c) = self.sessions.remove(&(old.0, s.0)) {
                        self.sessions.insert((new.0, s.0), c);
                    }
                }
            }
            Event::WanErrorNotify {
                tunnel,
                session,
                errors,
            } => {
                tracing::info!(
                    tunnel_id = tunnel.0,
                    session_id = session.0,
                    ?errors,
                    "WAN-Error-Notify"
                );
            }
            Event::SetLinkInfo {
                tunnel,
                session,
                send_accm,
                recv_accm,
            } => {
                tracing::info!(
                    tunnel_id = tunnel.0,
                    session_id = session.0,
                    send_accm = format_args!("{send_accm:#010x}"),
                    recv_accm = format_args!("{recv_accm:#010x}"),
                    "Set-Link-Info"
                );
            }
        }
    }

    fn action(&mut self, a: Action) {
        let now = Instant::now();
        match a {
            Action::CreateTunnel {
                tunnel,
                peer_tunnel,
                peer,
            } => {
                let result = self.create_tunnel(tunnel, peer_tunnel, peer);
                if let Err(e) = &result {
                    tracing::error!(tunnel_id = tunnel.0, "kernel tunnel: {e}");
                }
                self.ep.handle_action_result(
                    now,
                    &mut self.rng,
                    ActionResult::Tunnel { tunnel, result },
                );
            }
            Action::DeleteTunnel { tunnel } => {
                self.tunnels_to_delete.insert(tunnel);
                self.maybe_delete_tunnel(tunnel);
            }
            Action::CreateSession {
                tunnel,
                session,
                peer_tunnel,
                peer_session,
                call_type,
                sequencing,
                peer,
            } => {
                let result = self.create_session(
                    tunnel,
                    session,
                    peer_tunnel,
                    peer_session,
                    call_type,
                    sequencing,
                    peer,
                );
                if let Err(e) = &result {
                    tracing::error!(
                        tunnel_id = tunnel.0,
                        session_id = session.0,
                        "session data plane: {e}"
                    );
                }
                self.ep.handle_action_result(
                    now,
                    &mut self.rng,
                    ActionResult::Session {
                        tunnel,
                        session,
                        result,
                    },
                );
            }
            Action::DeleteSession { tunnel, session } => self.delete_session(tunnel, session),
        }
    }

    fn create_tunnel(
        &mut self,
        tunnel: TunnelId,
        peer_tunnel: TunnelId,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let socket = self
            .tunnel_socket(tunnel, peer)
            .map_err(|e| format!("tunnel socket: {e}"))?;
        let spec = TunnelSpec {
            tunnel_id: l2tp_kernel::TunnelId(u32::from(tunnel.0)),
            peer_tunnel_id: l2tp_kernel::TunnelId(u32::from(peer_tunnel.0)),
            version: 2,
            encap: l2tp_kernel::Encap::Udp,
            socket: socket.as_raw_fd(),
            udp_checksum: true,
        };
        self.dp.create_tunnel(&spec).map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &mut self,
        tunnel: TunnelId,
        session: SessionId,
        peer_tunnel: TunnelId,
        peer_session: SessionId,
        call_type: CallType,
        sequencing: bool,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let key = (tunnel.0, session.0);
        let (session_params, ppp) = match self.sessions.get(&key).and_then(|c| c.ppp.clone()) {
            Some(ppp) => (None, ppp),
            None => match self.tunnels.get(&tunnel).and_then(|c| c.incoming.clone()) {
                Some((s, p)) => (Some(s), p),
                None => return Err("no ppp profile for this session".into()),
            },
        };
        // The LNS assigns the peer's address: from the profile's pool, else its fixed remote address.
        let mut pool_addr = None;
        // remote_ipaddr, when set, takes precedence over ip_pool (l2tp-config's rule).
        let remote = match (call_type.is_lns(), ppp.remote_ipaddr, &ppp.ip_pool) {
            (false, _, _) => None,
            (true, Some(a), _) => Some(a),
            (true, None, Some(pool)) => {
                let range = Range {
                    start: IpAddr::V4(pool.start()),
                    end: IpAddr::V4(pool.end()),
                };
                match self.pools.allocate(range) {
                    Some(IpAddr::V4(a)) => {
                        pool_addr = Some((range, IpAddr::V4(a)));
                        Some(a)
                    }
                    _ => {
                        tracing::warn!(
                            tunnel_id = tunnel.0,
                            session_id = session.0,
                            "IP pool {pool} exhausted: refusing the call"
                        );
                        return Err(format!("IP pool {pool} exhausted"));
                    }
                }
            }
            (true, None, None) => None,
        };
        let seq = sequencing
            || session_params
                .as_ref()
                .is_some_and(|s| s.use_sequence_numbers);
        let spec = SessionSpec {
            tunnel_id: l2tp_kernel::TunnelId(u32::from(tunnel.0)),
            session_id: l2tp_kernel::SessionId(u32::from(session.0)),
            peer_tunnel_id: l2tp_kernel::TunnelId(u32::from(peer_tunnel.0)),
            peer_session_id: l2tp_kernel::SessionId(u32::from(peer_session.0)),
            pseudowire: l2tp_kernel::Pseudowire::Ppp,
            lns_mode: call_type.is_lns(),
            send_seq: seq,
            recv_seq: seq,
            reorder_timeout_ms: session_params
                .as_ref()
                .map_or(0, |s| s.reorder_timeout.as_millis() as u64),
            peer_addr: peer,
        };
        let ppp_session = match self.dp.create_session(&spec) {
            // The null data plane runs the control protocol only: no pppd.
            Ok(_) if self.null_dp => None,
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                if let Some((r, a)) = pool_addr {
                    self.pools.release(r, a);
                }
                return Err("the data plane returned no PPPoL2TP socket for a PPP session".into());
            }
            Err(e) => {
                if let Some((r, a)) = pool_addr {
                    self.pools.release(r, a);
                }
                return Err(e.to_string());
            }
        };
        let name = self.tunnel_name(tunnel);
        let ctx = self.sessions.entry(key).or_insert_with(|| SessionCtx {
            name: format!("{}/{}", name, session.0),
            local_call: None,
            ppp: None,
            pppd_pid: None,
            ifname: None,
            pool_addr: None,
            kernel: false,
        });
        ctx.kernel = true;
        ctx.pool_addr = pool_addr;
        let Some(ppp_session) = ppp_session else {
            return Ok(());
        };
        let launch = PppLaunch {
            pppd: self.config.system.pppd_path.clone(),
            tunnel_id: tunnel.0,
            session_id: session.0,
            lns_mode: call_type.is_lns(),
            options: ppp.pppd_args(call_type.is_lns(), remote),
            ipparam: name,
            event_plugin: self.config.system.ppp_accm_events,
        };
        match ppp::spawn(&launch, ppp_session.fd, self.ppp_tx.clone()) {
            Ok(pid) => {
                if let Some(c) = self.sessions.get_mut(&key) {
                    c.pppd_pid = Some(pid);
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.dp.delete_session(spec.tunnel_id, spec.session_id);
                if let Some((r, a)) = pool_addr {
                    self.pools.release(r, a);
                }
                Err(format!("{e:#}"))
            }
        }
    }

    /// Stop a session's pppd (SIGTERM); its kernel session goes when pppd has exited.
    fn delete_session(&mut self, tunnel: TunnelId, session: SessionId) {
        let key = (tunnel.0, session.0);
        let Some(ctx) = self.sessions.remove(&key) else {
            return;
        };
        match ctx.pppd_pid {
            Some(pid) => {
                ppp::terminate(pid);
                self.stopping.insert(
                    key,
                    Stopping {
                        pid,
                        ctx,
                        deadline: Instant::now() + PPPD_GRACE,
                    },
                );
            }
            None => self.finish_session(key, ctx),
        }
    }

    /// Delete the kernel session and return the pool address.
    fn finish_session(&mut self, key: (u16, u16), ctx: SessionCtx) {
        if ctx.kernel
            && let Err(e) = self.dp.delete_session(
                l2tp_kernel::TunnelId(u32::from(key.0)),
                l2tp_kernel::SessionId(u32::from(key.1)),
            )
        {
            tracing::warn!(
                tunnel_id = key.0,
                session_id = key.1,
                "kernel session delete: {e}"
            );
        }
        if let Some((r, a)) = ctx.pool_addr {
            self.pools.release(r, a);
        }
        tracing::debug!(
            tunnel_id = key.0,
            session_id = key.1,
            ifname = ctx.ifname.as_deref().unwrap_or(""),
            "session cleaned up"
        );
        self.maybe_delete_tunnel(TunnelId(key.0));
    }

    /// Delete a kernel tunnel the protocol gave up on, once none of its sessions is stopping.
    fn maybe_delete_tunnel(&mut self, tunnel: TunnelId) {
        if !self.tunnels_to_delete.contains(&tunnel)
            || self.stopping.keys().any(|k| k.0 == tunnel.0)
        {
            return;
        }
        self.tunnels_to_delete.remove(&tunnel);
        match self
            .dp
            .delete_tunnel(l2tp_kernel::TunnelId(u32::from(tunnel.0)))
        {
            Ok(()) => tracing::debug!(tunnel_id = tunnel.0, "kernel tunnel deleted"),
            Err(e) => tracing::warn!(tunnel_id = tunnel.0, "kernel tunnel delete: {e}"),
        }
    }

    fn on_ppp_event(&mut self, ev: PppEvent) {
        match ev {
            PppEvent::Interface { key, ifname } => {
                tracing::debug!(tunnel_id = key.0, session_id = key.1, %ifname, "pppd created its interface");
                if let Some(c) = self.sessions.get_mut(&key) {
                    c.ifname = Some(ifname.clone());
                    if !self.null_dp {
                        ppp::watch_link(key, ifname, self.ppp_tx.clone());
                    }
                }
            }
            PppEvent::LinkUp { key, ifname, addrs } => {
                if self.sessions.contains_key(&key) {
                    tracing::info!(tunnel_id = key.0, session_id = key.1, %ifname, addrs = %addrs.join(", "), "ppp link up");
                }
            }
            PppEvent::Plugin(crate::ppp_events::PluginEvent::Accm {
                tunnel_id,
                session_id,
                send_accm,
                recv_accm,
            }) => {
                if !self.sessions.contains_key(&(tunnel_id, session_id)) {
                    return;
                }
                tracing::info!(
                    tunnel_id,
                    session_id,
                    send_accm = format_args!("{send_accm:#010x}"),
                    recv_accm = format_args!("{recv_accm:#010x}"),
                    "pppd negotiated ACCM: sending SLI"
                );
                let cmd = Command::SendSli {
                    tunnel: TunnelId(tunnel_id),
                    session: SessionId(session_id),
                    send_accm,
                    recv_accm,
                };
                if let Err(e) = self.ep.handle_command(Instant::now(), &mut self.rng, cmd) {
                    tracing::debug!(tunnel_id, session_id, "SLI not sent: {e}");
                }
            }
            PppEvent::Plugin(crate::ppp_events::PluginEvent::UpDown {
                tunnel_id,
                session_id,
                up,
                ifname,
            }) => {
                tracing::debug!(
                    tunnel_id,
                    session_id,
                    up,
                    ifname = ifname.as_deref().unwrap_or(""),
                    "pppd reports PPP {}",
                    if up { "up" } else { "down" }
                );
            }
            PppEvent::Exited {
                key,
                pid,
                code,
                signal,
            } => {
                if self.stopping.get(&key).is_some_and(|s| s.pid == pid) {
                    if let Some(st) = self.stopping.remove(&key) {
                        tracing::debug!(
                            tunnel_id = key.0,
                            session_id = key.1,
                            pid,
                            "pppd exited after SIGTERM"
                        );
                        self.finish_session(key, st.ctx);
                    }
                    return;
                }
                let Some(c) = self.sessions.get_mut(&key) else {
                    return;
                };
                if c.pppd_pid != Some(pid) {
                    return;
                }
                c.pppd_pid = None;
                let text = match (code, signal) {
                    (Some(c), _) => format!("pppd exited with code {c} ({})", ppp::exit_text(c)),
                    (None, Some(s)) => format!("pppd killed by signal {s}"),
                    _ => "pppd exited".to_string(),
                };
                tracing::info!(tunnel_id = key.0, session_id = key.1, pid, "{text}");
                let cmd = Command::CloseSession {
                    tunnel: TunnelId(key.0),
                    session: SessionId(key.1),
                    result: CdnResult::GENERAL_ERROR.0,
                    message: Some(text),
                };
                let _ = self.ep.handle_command(Instant::now(), &mut self.rng, cmd);
            }
        }
    }
}
