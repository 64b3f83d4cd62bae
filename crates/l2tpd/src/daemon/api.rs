//! The management API's calls, answered inside the daemon loop (the server
//! side is `crate::api`). Runtime changes to profiles, tunnels, sessions and
//! `[system]` go through an [`Overlay`] over the configuration files, so they
//! resolve and validate exactly as the files would.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use l2tp_api::ApiError;
use l2tp_api::types::{self as t, Settings};
use l2tp_config::{Config, ConfigPaths, LocalSession, SessionType};
use l2tp_proto::endpoint::EndpointCounters;
use l2tp_proto::event::{Command, CommandError, CommandOutcome, Event};
use l2tp_proto::session::{CallType, KernelState, Session};
use l2tp_proto::tunnel::Tunnel;
use l2tp_proto::wire::{MessageType, SessionId, TunnelId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::broadcast;

use super::{Daemon, Redial, SessionCtx, incoming_policy};
use crate::api::overlay::{self, LoadError, Overlay, profile_table};
use crate::api::trace::{self, TraceFlags};
use crate::api::{ApiChannels, ApiRequest};

/// `[system]` keys that only change when l2tpd restarts.
const RESTART_KEYS: &[&str] = &[
    "listen_addr",
    "udp_port",
    "data_plane",
    "ppp_accm_events",
    "secrets_file",
    "api_socket",
    "api_group",
    "api_readonly_group",
];

/// The name of the scratch tunnel used to resolve calls placed in tunnels
/// the peer set up (never kept).
const RESOLVE_TUNNEL: &str = "#api-resolve";

/// The API's part of the daemon state.
pub(super) struct ApiState {
    channels: ApiChannels,
    overlay: Overlay,
    started: Instant,
    counters_base: EndpointCounters,
    /// Receive-queue drops (listening socket, tunnel sockets) at the last reset.
    queue_drops_base: (u64, u64),
    reset_at: Instant,
    /// Names of the tunnels created through the API (`[tunnel.NAME]` in the overlay).
    api_tunnels: HashSet<String>,
    /// Trace flags of profiles, by (table, name).
    profile_trace: HashMap<(String, String), TraceFlags>,
    next_name: u64,
    /// Names of live tunnels and sessions, for the events that come after
    /// the daemon has dropped its own record (`TunnelFreed`, `SessionDown`).
    tunnel_names: HashMap<u16, String>,
    session_names: HashMap<(u16, u16), String>,
}

impl ApiState {
    /// Start the API server as the configuration says.
    pub(super) fn new(config: &Config) -> anyhow::Result<ApiState> {
        let overlay = Overlay::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(ApiState {
            channels: crate::api::start(&config.system)?,
            overlay,
            started: Instant::now(),
            counters_base: EndpointCounters::default(),
            queue_drops_base: (0, 0),
            reset_at: Instant::now(),
            api_tunnels: HashSet::new(),
            profile_trace: HashMap::new(),
            next_name: 1,
            tunnel_names: HashMap::new(),
            session_names: HashMap::new(),
        })
    }

    /// The next API call.
    pub(super) async fn recv(&mut self) -> Option<ApiRequest> {
        self.channels.requests.recv().await
    }

    /// Read the configuration files again and lay the runtime changes over
    /// them (SIGHUP and `SystemReload`).
    pub(super) fn reload(&mut self, paths: &ConfigPaths) -> Result<Config, LoadError> {
        self.overlay.reload(paths)
    }
}

fn params<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        let parameter = msg
            .split('`')
            .nth(1)
            .filter(|p| !p.contains(' '))
            .unwrap_or("parameters")
            .to_owned();
        ApiError::invalid(parameter, msg)
    })
}

fn reply<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::failed(format!("encoding the reply: {e}")))
}

fn empty() -> Result<Value, ApiError> {
    reply(t::Empty {})
}

fn flags(names: &[String], parameter: &str) -> Result<TraceFlags, ApiError> {
    TraceFlags::parse(names).map_err(|e| ApiError::invalid(parameter, e))
}

fn command_error(e: CommandError) -> ApiError {
    ApiError::failed(e.to_string())
}

fn kernel_stats(s: &l2tp_kernel::Stats) -> t::KernelStats {
    t::KernelStats {
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
        tx_errors: s.tx_errors,
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        rx_seq_discards: s.rx_seq_discards,
        rx_oos_packets: s.rx_oos_packets,
        rx_errors: s.rx_errors,
        rx_cookie_discards: s.rx_cookie_discards,
        rx_invalid: s.rx_invalid,
    }
}

fn by_type(v: &[u64; 17]) -> BTreeMap<String, u64> {
    v.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (MessageType(i as u16).to_string(), *n))
        .collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn to_object<T: Serialize>(v: &T) -> Settings {
    match serde_json::to_value(v) {
        Ok(Value::Object(o)) => o,
        _ => Settings::new(),
    }
}

fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A settings object as a TOML table, refusing the keys given separately.
fn settings_table(
    settings: Option<&Settings>,
    path: &str,
    reserved: &[&str],
) -> Result<toml::Table, ApiError> {
    let Some(s) = settings else {
        return Ok(toml::Table::new());
    };
    for k in reserved {
        if s.contains_key(*k) {
            return Err(ApiError::invalid(
                format!("{path}.{k}"),
                format!("`{k}` is a parameter of its own, not a settings key"),
            ));
        }
    }
    overlay::json_object_to_toml(s, path)
}

impl Daemon {
    /// Answer one API call.
    pub(super) fn handle_api(&mut self, req: ApiRequest) {
        let ApiRequest {
            method,
            params,
            caller,
            reply,
        } = req;
        let result = self.api_call(&method, params);
        match &result {
            Err(e) => tracing::info!(%method, %caller, "API call refused: {e}"),
            Ok(_) if l2tp_api::access(&method) == Some(l2tp_api::Access::ReadWrite) => {
                tracing::info!(%method, %caller, "API call")
            }
            Ok(_) => tracing::debug!(%method, %caller, "API call"),
        }
        let _ = reply.send(result);
    }

    fn api_call(&mut self, method: &str, p: Value) -> Result<Value, ApiError> {
        match method {
            "SystemShow" => {
                params::<t::NoParams>(p)?;
                reply(t::SystemShowReply {
                    system: self.system_info(),
                })
            }
            "SystemCounters" => {
                params::<t::NoParams>(p)?;
                reply(t::SystemCountersReply {
                    counters: self.system_counters(),
                })
            }
            "SystemResetCounters" => {
                params::<t::NoParams>(p)?;
                self.api.counters_base = self.ep.counters();
                self.api.queue_drops_base = self.sockets.drops();
                self.api.reset_at = Instant::now();
                empty()
            }
            "SystemModify" => self.system_modify(params(p)?),
            "SystemReload" => {
                params::<t::NoParams>(p)?;
                self.system_reload()
            }
            "TunnelList" => {
                params::<t::NoParams>(p)?;
                let mut tunnels: Vec<t::TunnelSummary> =
                    self.ep.tunnels().map(|t| self.tunnel_summary(t)).collect();
                tunnels.sort_by_key(|t| t.id);
                reply(t::TunnelListReply { tunnels })
            }
            "TunnelShow" => {
                let r: t::TunnelRef = params(p)?;
                let id = self.find_tunnel(&r.tunnel)?;
                reply(t::TunnelShowReply {
                    tunnel: self.tunnel_info(id),
                })
            }
            "TunnelCreate" => self.tunnel_create(params(p)?),
            "TunnelModify" => self.tunnel_modify(params(p)?),
            "TunnelDelete" => self.tunnel_delete(params(p)?),
            "SessionList" => {
                let r: t::SessionListParams = params(p)?;
                let only = r
                    .tunnel
                    .as_deref()
                    .map(|t| self.find_tunnel(t))
                    .transpose()?;
                let mut sessions = Vec::new();
                let mut tunnels: Vec<&Tunnel> = self.ep.tunnels().collect();
                tunnels.sort_by_key(|t| t.id.0);
                for tun in tunnels {
                    if only.is_some_and(|o| o != tun.id) {
                        continue;
                    }
                    for s in tun.sessions.values() {
                        sessions.push(self.session_summary(tun, s));
                    }
                }
                reply(t::SessionListReply { sessions })
            }
            "SessionShow" => {
                let r: t::SessionRef = params(p)?;
                let (tid, sid) = self.find_session(&r.tunnel, &r.session)?;
                reply(t::SessionShowReply {
                    session: self.session_info(tid, sid),
                })
            }
            "SessionCreate" => self.session_create(params(p)?),
            "SessionModify" => {
                let r: t::SessionModifyParams = params(p)?;
                let (tid, sid) = self.find_session(&r.tunnel, &r.session)?;
                if let Some(f) = &r.trace_flags {
                    trace::set_session(tid.0, sid.0, flags(f, "trace_flags")?);
                }
                empty()
            }
            "SessionDelete" => self.session_delete(params(p)?),
            "ProfileList" => {
                let r: t::ProfileListParams = params(p)?;
                self.profile_list(r.kind.as_deref())
            }
            "ProfileShow" => {
                let r: t::ProfileRef = params(p)?;
                self.profile_show(&r.kind, &r.name)
            }
            "ProfileCreate" => self.profile_create(params(p)?),
            "ProfileModify" => self.profile_modify(params(p)?),
            "ProfileDelete" => {
                let r: t::ProfileRef = params(p)?;
                self.profile_delete(&r.kind, &r.name)
            }
            other => Err(ApiError::MethodNotFound {
                method: format!("{}.{other}", l2tp_api::INTERFACE),
            }),
        }
    }

    /// Use a new configuration built from the overlay (no tunnels are opened or closed).
    fn apply_config(&mut self, config: Config) {
        self.config = Arc::new(config);
        self.ep.set_policy(incoming_policy(self.config.clone()));
    }

    /// Change the overlay with `f`, rebuild and apply the configuration; on
    /// error the overlay is restored and the error mapped (see
    /// [`overlay::api_error`]).
    fn change_overlay(
        &mut self,
        prefix: &str,
        param_prefix: &str,
        f: impl FnOnce(&mut Overlay) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let saved = self.api.overlay.clone();
        let result = f(&mut self.api.overlay).and_then(|()| {
            self.api
                .overlay
                .build()
                .map_err(|e| overlay::api_error(&e, prefix, param_prefix))
        });
        match result {
            Ok(config) => {
                self.apply_config(config);
                Ok(())
            }
            Err(e) => {
                self.api.overlay = saved;
                Err(e)
            }
        }
    }

    // ---- system ----------------------------------------------------------

    fn system_info(&self) -> t::SystemInfo {
        t::SystemInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            interface_version: l2tp_api::INTERFACE_VERSION,
            pid: std::process::id(),
            uptime_secs: self.api.started.elapsed().as_secs(),
            listen: self.local.to_string(),
            data_plane: self.config.system.data_plane.to_string(),
            tunnels: self.ep.tunnels().count() as u64,
            sessions: self.ep.tunnels().map(|t| t.session_count() as u64).sum(),
            config_sources: self
                .config
                .sources()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            runtime_changes: self.api.overlay.has_changes(),
            trace_flags: trace::system().names(),
            settings: to_object(&self.config.system.to_settings()),
        }
    }

    fn system_counters(&self) -> t::SystemCounters {
        let c = self.ep.counters();
        let (listen_drops, tunnel_drops) = self.sockets.drops();
        let b = &self.api.counters_base;
        t::SystemCounters {
            seconds_since_reset: self.api.reset_at.elapsed().as_secs(),
            total_rcvd_control_frames: c
                .total_rcvd_control_frames
                .saturating_sub(b.total_rcvd_control_frames),
            bad_rcvd_frames: c.bad_rcvd_frames.saturating_sub(b.bad_rcvd_frames),
            wrong_version_frames: c
                .wrong_version_frames
                .saturating_sub(b.wrong_version_frames),
            unexpected_data_frames: c
                .unexpected_data_frames
                .saturating_sub(b.unexpected_data_frames),
            no_matching_tunnel_id_discards: c
                .no_matching_tunnel_id_discards
                .saturating_sub(b.no_matching_tunnel_id_discards),
            mismatched_peer_discards: c
                .mismatched_peer_discards
                .saturating_sub(b.mismatched_peer_discards),
            tunnels_refused: c.tunnels_refused.saturating_sub(b.tunnels_refused),
            tunnels_lost: c.tunnels_lost.saturating_sub(b.tunnels_lost),
            auth_fails: c.auth_fails.saturating_sub(b.auth_fails),
            illegal_messages: c.illegal_messages.saturating_sub(b.illegal_messages),
            retransmits: c.retransmits.saturating_sub(b.retransmits),
            tie_breakers_won: c.tie_breakers_won.saturating_sub(b.tie_breakers_won),
            tie_breakers_lost: c.tie_breakers_lost.saturating_sub(b.tie_breakers_lost),
            half_open_drops: c.half_open_drops.saturating_sub(b.half_open_drops),
            sccrq_bad_ns_drops: c.sccrq_bad_ns_drops.saturating_sub(b.sccrq_bad_ns_drops),
            tunnel_limit_refusals: c
                .tunnel_limit_refusals
                .saturating_sub(b.tunnel_limit_refusals),
            listen_queue_drops: listen_drops.saturating_sub(self.api.queue_drops_base.0),
            tunnel_queue_drops: tunnel_drops.saturating_sub(self.api.queue_drops_base.1),
            tunnels: self.ep.tunnel_count() as u64,
            half_open_tunnels: self.ep.half_open_count() as u64,
            sessions: self.ep.session_count() as u64,
            tunnel_sockets: self.sockets.count() as u64,
        }
    }

    fn system_modify(&mut self, p: t::SystemModifyParams) -> Result<Value, ApiError> {
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        if let Some(s) = &p.settings {
            if let Some(k) = s.keys().find(|k| RESTART_KEYS.contains(&k.as_str())) {
                return Err(ApiError::invalid(
                    format!("settings.{k}"),
                    format!("{k} changes only when l2tpd restarts"),
                ));
            }
            let table = settings_table(Some(s), "settings", &[])?;
            self.change_overlay("system", "settings", |o| {
                o.table_mut(&["system"]).extend(table);
                Ok(())
            })?;
        }
        if let Some(f) = new_flags {
            trace::set_system(f);
        }
        empty()
    }

    fn system_reload(&mut self) -> Result<Value, ApiError> {
        // Validate first, so that a bad configuration is an error reply;
        // `reload` then does the work exactly as SIGHUP does.
        let mut probe = self.api.overlay.clone();
        if let Err(e) = probe.reload(&self.config_paths) {
            return Err(ApiError::ConfigInvalid {
                errors: e.lines(),
                description: "the configuration is invalid; the running one is kept".into(),
            });
        }
        self.reload();
        reply(t::SystemReloadReply {
            config_sources: self
                .config
                .sources()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }

    // ---- lookups ---------------------------------------------------------

    fn find_tunnel(&self, r: &str) -> Result<TunnelId, ApiError> {
        if r.is_empty() {
            return Err(ApiError::invalid("tunnel", "missing: a tunnel id or name"));
        }
        if let Ok(n) = r.parse::<u16>()
            && self.ep.tunnel(TunnelId(n)).is_some()
        {
            return Ok(TunnelId(n));
        }
        self.ep
            .tunnels()
            .map(|t| t.id)
            .find(|id| self.tunnel_name(*id) == r)
            .ok_or_else(|| ApiError::NoSuchTunnel {
                tunnel: r.to_owned(),
                description: format!("no tunnel `{r}`"),
            })
    }

    fn session_name(&self, tunnel: TunnelId, session: SessionId) -> String {
        let key = (tunnel.0, session.0);
        match (self.sessions.get(&key), self.api.session_names.get(&key)) {
            (Some(c), _) => c.name.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => session.0.to_string(),
        }
    }

    fn find_session(&self, tr: &str, sr: &str) -> Result<(TunnelId, SessionId), ApiError> {
        let tid = self.find_tunnel(tr)?;
        if sr.is_empty() {
            return Err(ApiError::invalid(
                "session",
                "missing: a session id or name",
            ));
        }
        let Some(tun) = self.ep.tunnel(tid) else {
            return Err(ApiError::NoSuchTunnel {
                tunnel: tr.to_owned(),
                description: format!("no tunnel `{tr}`"),
            });
        };
        if let Ok(n) = sr.parse::<u16>()
            && tun.sessions.contains_key(&SessionId(n))
        {
            return Ok((tid, SessionId(n)));
        }
        tun.sessions
            .keys()
            .copied()
            .find(|sid| self.session_name(tid, *sid) == sr)
            .map(|sid| (tid, sid))
            .ok_or_else(|| ApiError::NoSuchSession {
                tunnel: tr.to_owned(),
                session: sr.to_owned(),
                description: format!("no session `{sr}` in tunnel `{tr}`"),
            })
    }

    fn origin(&self, id: TunnelId) -> &'static str {
        match self.tunnels.get(&id) {
            Some(c) if c.local && self.api.api_tunnels.contains(&c.name) => "api",
            Some(c) if c.local => "config",
            _ => "peer",
        }
    }

    // ---- tunnels ---------------------------------------------------------

    fn tunnel_summary(&self, t: &Tunnel) -> t::TunnelSummary {
        t::TunnelSummary {
            id: t.id.0,
            name: self.tunnel_name(t.id),
            origin: self.origin(t.id).to_owned(),
            peer_id: t.peer_id.0,
            peer: t.peer.to_string(),
            state: t.state_name().to_owned(),
            sessions: t.session_count() as u64,
            uptime_secs: t.created.elapsed().as_secs(),
            peer_host_name: lossy(&t.peer_host_name),
        }
    }

    fn tunnel_info(&mut self, id: TunnelId) -> t::TunnelInfo {
        let (kernel, kernel_error) = match self.ep.tunnel(id).and_then(|t| t.kernel) {
            Some(KernelState::Created) => {
                match self.dp.tunnel_stats(l2tp_kernel::TunnelId(u32::from(id.0))) {
                    Ok(s) => (Some(kernel_stats(&s)), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            }
            _ => (None, None),
        };
        let Some(t) = self.ep.tunnel(id) else {
            unreachable!("find_tunnel found it")
        };
        let ch = t.channel.counters();
        let cfg = t.channel.config();
        let mut sessions: Vec<t::SessionSummary> = t
            .sessions
            .values()
            .map(|s| self.session_summary(t, s))
            .collect();
        sessions.sort_by_key(|s| s.id);
        t::TunnelInfo {
            id: t.id.0,
            name: self.tunnel_name(id),
            origin: self.origin(id).to_owned(),
            peer_id: t.peer_id.0,
            peer: t.peer.to_string(),
            state: t.state_name().to_owned(),
            initiator: t.initiator,
            persist: self.tunnels.get(&id).is_some_and(|c| c.persist),
            uptime_secs: t.created.elapsed().as_secs(),
            peer_host_name: lossy(&t.peer_host_name),
            peer_vendor_name: t.peer_vendor_name.as_deref().map(lossy),
            peer_framing_caps: t.peer_framing_caps,
            peer_bearer_caps: t.peer_bearer_caps,
            close_reason: t.close_reason.as_ref().map(|r| r.to_string()),
            host_name: lossy(&t.config.host_name),
            hello_interval_ms: t.config.hello_interval.map(|d| d.as_millis() as u64),
            auth_mode: match t.config.auth_mode {
                l2tp_proto::event::AuthMode::None => "none",
                l2tp_proto::event::AuthMode::Simple => "simple",
                l2tp_proto::event::AuthMode::Challenge => "challenge",
            }
            .to_owned(),
            hide_avps: t.config.hide_avps,
            max_sessions: t.config.max_sessions,
            window: t::TunnelWindow {
                ns: t.channel.ns(),
                nr: t.channel.nr(),
                cwnd: t.channel.cwnd(),
                ssthresh: t.channel.ssthresh(),
                peer_rws: t.channel.peer_rws(),
                rx_window: cfg.rx_window,
                tx_window_max: cfg.tx_window_max,
                in_flight: t.channel.in_flight() as u64,
                unacked: t.channel.unacked() as u64,
                retry_timeout_ms: cfg.retry_timeout.as_millis() as u64,
                max_retries: cfg.max_retries,
            },
            counters: t::TunnelCounters {
                tx_messages: ch.tx_messages,
                rx_messages: ch.rx_messages,
                retransmits: ch.retransmits,
                tx_zlbs: ch.tx_zlbs,
                rx_zlbs: ch.rx_zlbs,
                duplicates: ch.duplicates,
                out_of_order: ch.out_of_order,
                out_of_window: ch.out_of_window,
                tx_hellos: t.counters.tx_hellos,
                rx_hellos: t.counters.rx_hellos,
                ignored_avps: t.counters.ignored_avps,
                vendor_avps: t.counters.vendor_avps,
                illegal_messages: t.counters.illegal_messages,
                bad_messages: t.counters.bad_messages,
                no_matching_session_discards: t.counters.no_matching_session_discards,
                auth_fails: t.counters.auth_fails,
                rx_by_type: by_type(&t.counters.rx_by_type),
                tx_by_type: by_type(&t.counters.tx_by_type),
                rx_bad_by_type: by_type(&t.counters.rx_bad_by_type),
            },
            kernel,
            kernel_error,
            trace_flags: trace::tunnel(id.0).names(),
            sessions,
        }
    }

    /// A name for something created through the API: `api-N`, unused by `taken`.
    fn next_api_name(&mut self, taken: impl Fn(&str) -> bool) -> String {
        loop {
            let n = format!("api-{}", self.api.next_name);
            self.api.next_name += 1;
            if !taken(&n) {
                return n;
            }
        }
    }

    fn tunnel_create(&mut self, p: t::TunnelCreateParams) -> Result<Value, ApiError> {
        if self.shutting_down {
            return Err(ApiError::failed("l2tpd is shutting down"));
        }
        let peer: IpAddr = p
            .peer
            .parse()
            .map_err(|_| ApiError::invalid("peer", format!("`{}` is not an IP address", p.peer)))?;
        let name = match p.name {
            Some(n) if n.is_empty() || n.starts_with('#') => {
                return Err(ApiError::invalid(
                    "name",
                    "must not be empty or start with #",
                ));
            }
            Some(n) => n,
            None => {
                let running: HashSet<String> =
                    self.tunnels.values().map(|c| c.name.clone()).collect();
                let config = self.config.clone();
                self.next_api_name(|n| running.contains(n) || config.local_tunnel(n).is_some())
            }
        };
        if self.config.local_tunnel(&name).is_some()
            || self.tunnels.values().any(|c| c.name == name)
        {
            return Err(ApiError::NameInUse {
                description: format!("a tunnel named `{name}` exists already"),
                name,
            });
        }
        let mut table = settings_table(p.settings.as_ref(), "settings", &["peer_addr", "session"])?;
        table.insert("peer_addr".into(), toml::Value::String(peer.to_string()));
        if let Some(sessions) = &p.sessions {
            let mut st = toml::Table::new();
            for (sname, s) in sessions {
                if sname.is_empty() {
                    return Err(ApiError::invalid("sessions", "a session name is empty"));
                }
                st.insert(
                    sname.clone(),
                    toml::Value::Table(overlay::json_object_to_toml(
                        s,
                        &format!("sessions.{sname}"),
                    )?),
                );
            }
            table.insert("session".into(), toml::Value::Table(st));
        }
        let prefix = format!("tunnel.{}", quote_key(&name));
        self.change_overlay(&prefix, "settings", |o| {
            *o.table_mut(&["tunnel", &name]) = table;
            Ok(())
        })
        .map_err(|e| match e {
            // Session keys are named as given: sessions.S.KEY.
            ApiError::InvalidParameter {
                parameter,
                description,
            } => ApiError::InvalidParameter {
                parameter: parameter
                    .strip_prefix("settings.session.")
                    .map_or(parameter.clone(), |r| format!("sessions.{r}")),
                description,
            },
            other => other,
        })?;
        let config = self.config.clone();
        let Some(lt) = config.local_tunnel(&name) else {
            return Err(ApiError::failed("the new tunnel did not resolve"));
        };
        if let Some(ls) = lt.sessions.iter().find(|s| !can_place(s.session_type)) {
            let e = ApiError::invalid(
                format!("sessions.{}.session_type", ls.name),
                format!(
                    "{} calls are placed by the peer: use lac_incoming or lns_outgoing",
                    ls.session_type
                ),
            );
            self.forget_api_tunnel(&name);
            return Err(e);
        }
        self.api.api_tunnels.insert(name.clone());
        let Some(id) = self.open_local_tunnel(lt) else {
            self.forget_api_tunnel(&name);
            return Err(ApiError::failed(
                "the tunnel could not be opened (see the daemon's log)",
            ));
        };
        self.api.tunnel_names.insert(id.0, name.clone());
        self.inherit_tunnel_trace(id);
        let session_ids = self
            .sessions
            .iter()
            .filter(|((t, _), _)| *t == id.0)
            .filter_map(|((_, s), c)| c.local_call.clone().map(|n| (n, *s)))
            .collect();
        reply(t::TunnelCreateReply {
            tunnel_id: id.0,
            name,
            session_ids,
        })
    }

    /// Drop an API tunnel's table from the overlay.
    fn forget_api_tunnel(&mut self, name: &str) {
        self.api.api_tunnels.remove(name);
        if self.api.overlay.remove("tunnel", name) {
            match self.api.overlay.build() {
                Ok(c) => self.apply_config(c),
                Err(e) => tracing::warn!(tunnel = %name, "removing the runtime tunnel: {e}"),
            }
        }
    }

    fn tunnel_modify(&mut self, p: t::TunnelModifyParams) -> Result<Value, ApiError> {
        let id = self.find_tunnel(&p.tunnel)?;
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        if let Some(persist) = p.persist {
            let Some(ctx) = self.tunnels.get(&id).filter(|c| c.local) else {
                return Err(ApiError::invalid(
                    "persist",
                    "only tunnels we set up (from the configuration or the API) can persist",
                ));
            };
            let name = ctx.name.clone();
            if self.config.local_tunnel(&name).is_some() {
                let prefix = format!("tunnel.{}", quote_key(&name));
                self.change_overlay(&prefix, "persist", |o| {
                    o.table_mut(&["tunnel", &name])
                        .insert("persist".into(), toml::Value::Boolean(persist));
                    Ok(())
                })?;
            }
            if let Some(c) = self.tunnels.get_mut(&id) {
                c.persist = persist;
            }
        }
        if let Some(text) = &p.hello_timeout {
            let d = l2tp_config::parse_duration(text)
                .map_err(|e| ApiError::invalid("hello_timeout", e))?;
            let interval = (!d.is_zero()).then_some(d);
            let cmd = l2tp_proto::event::Command::SetHelloInterval {
                tunnel: id,
                interval,
            };
            self.ep
                .handle_command(Instant::now(), &mut self.rng, cmd)
                .map_err(|e| ApiError::invalid("tunnel", e.to_string()))?;
        }
        if let Some(f) = new_flags {
            trace::set_tunnel(id.0, f);
        }
        empty()
    }

    fn tunnel_delete(&mut self, p: t::TunnelDeleteParams) -> Result<Value, ApiError> {
        let id = self.find_tunnel(&p.tunnel)?;
        let result = p.result_code.unwrap_or(1);
        if !(1..=7).contains(&result) {
            return Err(ApiError::invalid(
                "result_code",
                format!("{result} is not a StopCCN Result Code (1..7, RFC 2661 §4.4.2)"),
            ));
        }
        if let Some(ctx) = self.tunnels.get_mut(&id) {
            ctx.persist = false;
            let name = ctx.name.clone();
            self.redials
                .retain(|r| !matches!(r, Redial::Tunnel { name: n, .. } if *n == name));
            if self.api.api_tunnels.contains(&name) {
                self.forget_api_tunnel(&name);
            }
        }
        let cmd = Command::CloseTunnel {
            tunnel: id,
            result,
            message: p.message.or_else(|| Some("cleared by the operator".into())),
        };
        self.ep
            .handle_command(Instant::now(), &mut self.rng, cmd)
            .map_err(command_error)?;
        empty()
    }

    // ---- sessions --------------------------------------------------------

    fn session_summary(&self, t: &Tunnel, s: &Session) -> t::SessionSummary {
        let ctx = self.sessions.get(&(t.id.0, s.id.0));
        t::SessionSummary {
            tunnel_id: t.id.0,
            tunnel: self.tunnel_name(t.id),
            id: s.id.0,
            peer_id: s.peer_id.0,
            name: self.session_name(t.id, s.id),
            call_type: s.call_type.to_string(),
            state: s.state_name().to_owned(),
            pppd_pid: ctx.and_then(|c| c.pppd_pid),
            ifname: ctx.and_then(|c| c.ifname.clone()),
        }
    }

    fn session_info(&mut self, tid: TunnelId, sid: SessionId) -> t::SessionInfo {
        let in_kernel = self.sessions.get(&(tid.0, sid.0)).is_some_and(|c| c.kernel);
        let (kernel, kernel_error) = if in_kernel {
            match self.dp.session_stats(
                l2tp_kernel::TunnelId(u32::from(tid.0)),
                l2tp_kernel::SessionId(u32::from(sid.0)),
            ) {
                Ok(s) => (Some(kernel_stats(&s)), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        let Some((tun, s)) = self
            .ep
            .tunnel(tid)
            .and_then(|t| t.sessions.get(&sid).map(|s| (t, s)))
        else {
            unreachable!("find_session found it")
        };
        let sum = self.session_summary(tun, s);
        let pi = &s.peer_info;
        t::SessionInfo {
            tunnel_id: sum.tunnel_id,
            tunnel: sum.tunnel,
            id: sum.id,
            peer_id: sum.peer_id,
            name: sum.name,
            call_type: sum.call_type,
            state: sum.state,
            serial: s.serial,
            sequencing: s.sequencing,
            pppd_pid: sum.pppd_pid,
            ifname: sum.ifname,
            peer_info: t::PeerCallInfo {
                tx_connect_speed: pi.tx_connect_speed,
                rx_connect_speed: pi.rx_connect_speed,
                framing_type: pi.framing_type,
                bearer_type: pi.bearer_type,
                calling_number: pi.calling_number.as_deref().map(lossy),
                called_number: pi.called_number.as_deref().map(lossy),
                physical_channel_id: pi.physical_channel_id,
                private_group_id: pi.private_group_id.as_deref().map(lossy),
            },
            kernel,
            kernel_error,
            trace_flags: trace::session(tid.0, sid.0).names(),
        }
    }

    fn session_create(&mut self, p: t::SessionCreateParams) -> Result<Value, ApiError> {
        let tid = self.find_tunnel(&p.tunnel)?;
        let tname = self.tunnel_name(tid);
        let name = match p.name {
            Some(n) if n.is_empty() || n.contains('/') => {
                return Err(ApiError::invalid("name", "must not be empty or contain /"));
            }
            Some(n) => n,
            None => {
                let running: HashSet<String> = self
                    .sessions
                    .iter()
                    .filter(|((t, _), _)| *t == tid.0)
                    .map(|(_, c)| c.name.clone())
                    .collect();
                self.next_api_name(|n| running.contains(n))
            }
        };
        if self
            .sessions
            .iter()
            .any(|((t, _), c)| *t == tid.0 && c.name == name)
        {
            return Err(ApiError::NameInUse {
                description: format!("tunnel `{tname}` has a session named `{name}` already"),
                name,
            });
        }
        let table = settings_table(p.settings.as_ref(), "settings", &[])?;
        let local = self
            .tunnels
            .get(&tid)
            .is_some_and(|c| c.local && self.config.local_tunnel(&c.name).is_some());
        let ls = if local {
            // A [tunnel.T.session.NAME] table over the tunnel's own table.
            let prefix = format!("tunnel.{}.session.{}", quote_key(&tname), quote_key(&name));
            self.change_overlay(&prefix, "settings", |o| {
                *o.table_mut(&["tunnel", &tname, "session", &name]) = table;
                Ok(())
            })?;
            self.config
                .local_tunnel(&tname)
                .and_then(|lt| lt.sessions.iter().find(|s| s.name == name))
                .cloned()
        } else {
            // A tunnel the peer set up: resolve as a scratch tunnel to the peer
            // under its peer profile, then forget the scratch.
            let Some(tun) = self.ep.tunnel(tid) else {
                return Err(ApiError::failed("the tunnel went away"));
            };
            let m = self
                .config
                .match_peer(tun.peer.ip(), Some(&tun.peer_host_name));
            let mut scratch = self.api.overlay.clone();
            let tt = scratch.table_mut(&["tunnel", RESOLVE_TUNNEL]);
            tt.insert("peer_addr".into(), tun.peer.ip().to_string().into());
            tt.insert("peer_profile_name".into(), m.profile.name.clone().into());
            *scratch.table_mut(&["tunnel", RESOLVE_TUNNEL, "session", &name]) = table;
            let prefix = format!(
                "tunnel.{}.session.{}",
                quote_key(RESOLVE_TUNNEL),
                quote_key(&name)
            );
            let config = scratch
                .build()
                .map_err(|e| overlay::api_error(&e, &prefix, "settings"))?;
            config
                .local_tunnel(RESOLVE_TUNNEL)
                .and_then(|lt| lt.sessions.iter().find(|s| s.name == name))
                .cloned()
        };
        let Some(ls) = ls else {
            return Err(ApiError::failed("the new session did not resolve"));
        };
        let undo = |d: &mut Daemon| {
            if local {
                d.api.overlay.remove_session(&tname, &name);
                if let Ok(c) = d.api.overlay.build() {
                    d.apply_config(c);
                }
            }
        };
        let call_type = match ls.session_type {
            SessionType::LacIncoming => CallType::LacIncoming,
            SessionType::LnsOutgoing => CallType::LnsOutgoing,
            other => {
                undo(self);
                return Err(ApiError::invalid(
                    "settings.session_type",
                    format!(
                        "{other} calls are placed by the peer: use lac_incoming or lns_outgoing"
                    ),
                ));
            }
        };
        let cmd = Command::PlaceCall {
            tunnel: tid,
            call_type,
            params: Box::new(crate::params::call_params(&ls.params)),
        };
        let sid = match self.ep.handle_command(Instant::now(), &mut self.rng, cmd) {
            Ok(CommandOutcome::Session(sid)) => sid,
            Ok(_) => {
                undo(self);
                return Err(ApiError::failed("the call was not placed"));
            }
            Err(e) => {
                undo(self);
                return Err(command_error(e));
            }
        };
        tracing::info!(tunnel = %tname, session = %name, tunnel_id = tid.0, session_id = sid.0, "placing call (API)");
        self.sessions.insert(
            (tid.0, sid.0),
            SessionCtx {
                name: name.clone(),
                local_call: local.then(|| name.clone()),
                ppp: Some(ls.ppp.clone()),
                pppd_pid: None,
                ifname: None,
                pool_addr: None,
                kernel: false,
            },
        );
        self.api.session_names.insert((tid.0, sid.0), name.clone());
        self.inherit_session_trace(tid, sid, Some(&ls));
        reply(t::SessionCreateReply {
            tunnel_id: tid.0,
            session_id: sid.0,
            name,
        })
    }

    fn session_delete(&mut self, p: t::SessionDeleteParams) -> Result<Value, ApiError> {
        let (tid, sid) = self.find_session(&p.tunnel, &p.session)?;
        let result = p.result_code.unwrap_or(3);
        if !(1..=11).contains(&result) {
            return Err(ApiError::invalid(
                "result_code",
                format!("{result} is not a CDN Result Code (1..11, RFC 2661 §4.4.2)"),
            ));
        }
        let tname = self.tunnel_name(tid);
        if let Some(c) = self.sessions.get_mut(&(tid.0, sid.0))
            && let Some(call) = c.local_call.take()
            && self
                .api
                .overlay
                .table(&["tunnel", &tname, "session", &call])
                .is_some()
        {
            self.api.overlay.remove_session(&tname, &call);
            match self.api.overlay.build() {
                Ok(c) => self.apply_config(c),
                Err(e) => {
                    tracing::warn!(tunnel = %tname, session = %call, "removing the runtime session: {e}")
                }
            }
        }
        let cmd = Command::CloseSession {
            tunnel: tid,
            session: sid,
            result,
            message: p.message.or_else(|| Some("cleared by the operator".into())),
        };
        self.ep
            .handle_command(Instant::now(), &mut self.rng, cmd)
            .map_err(command_error)?;
        empty()
    }

    // ---- profiles --------------------------------------------------------

    /// Names of the profiles of a table, from the effective configuration.
    fn profile_names(&self, table: &str) -> Vec<String> {
        if table == "peer_profile" {
            return self
                .config
                .peer_profiles()
                .iter()
                .map(|p| p.name.clone())
                .collect();
        }
        let doc: toml::Table = self.config.to_toml_effective().parse().unwrap_or_default();
        match doc.get(table) {
            Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    fn profile_exists(&self, table: &str, name: &str) -> bool {
        match table {
            "tunnel_profile" => self.config.tunnel_profile(name).is_some(),
            "session_profile" => self.config.session_profile(name).is_some(),
            "ppp_profile" => self.config.ppp_profile(name).is_some(),
            _ => self.config.peer_profile(name).is_some(),
        }
    }

    fn profile_origin(&self, table: &str, name: &str) -> &'static str {
        let files =
            self.api.overlay.files_define(table, name) && !self.api.overlay.is_deleted(table, name);
        match (files, self.api.overlay.defines(table, name)) {
            (true, true) => "config+api",
            (true, false) => "config",
            (false, true) => "api",
            (false, false) => "builtin",
        }
    }

    fn profile_trace(&self, table: &str, name: &str) -> TraceFlags {
        self.api
            .profile_trace
            .get(&(table.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    fn profile_list(&self, kind: Option<&str>) -> Result<Value, ApiError> {
        let kinds: Vec<&str> = match kind {
            Some(k) => vec![k],
            None => l2tp_api::PROFILE_KINDS.to_vec(),
        };
        let mut profiles = Vec::new();
        for k in kinds {
            let table = profile_table(k)?;
            for name in self.profile_names(table) {
                profiles.push(t::ProfileSummary {
                    kind: k.to_owned(),
                    origin: self.profile_origin(table, &name).to_owned(),
                    trace_flags: self.profile_trace(table, &name).names(),
                    name,
                });
            }
        }
        reply(t::ProfileListReply { profiles })
    }

    fn no_such_profile(kind: &str, name: &str) -> ApiError {
        ApiError::NoSuchProfile {
            kind: kind.to_owned(),
            name: name.to_owned(),
            description: format!("no {kind} profile `{name}`"),
        }
    }

    fn profile_show(&self, kind: &str, name: &str) -> Result<Value, ApiError> {
        let table = profile_table(kind)?;
        let effective = match table {
            "tunnel_profile" => self
                .config
                .tunnel_profile(name)
                .map(|p| to_object(&p.to_settings())),
            "session_profile" => self
                .config
                .session_profile(name)
                .map(|p| to_object(&p.to_settings())),
            "ppp_profile" => self
                .config
                .ppp_profile(name)
                .map(|p| to_object(&p.to_settings())),
            _ => self
                .config
                .peer_profile(name)
                .map(|p| to_object(&p.params.to_settings())),
        }
        .ok_or_else(|| Self::no_such_profile(kind, name))?;
        let settings = if table == "peer_profile" {
            effective.clone()
        } else {
            let doc: toml::Table = self.config.to_toml_effective().parse().unwrap_or_default();
            match doc.get(table).and_then(|t| t.get(name)) {
                Some(toml::Value::Table(t)) => {
                    match overlay::toml_to_json(&toml::Value::Table(t.clone())) {
                        Value::Object(o) => o,
                        _ => Settings::new(),
                    }
                }
                _ => Settings::new(),
            }
        };
        reply(t::ProfileShowReply {
            profile: t::Profile {
                kind: kind.to_owned(),
                name: name.to_owned(),
                origin: self.profile_origin(table, name).to_owned(),
                settings,
                effective,
                trace_flags: self.profile_trace(table, name).names(),
            },
        })
    }

    fn profile_create(&mut self, p: t::ProfileCreateParams) -> Result<Value, ApiError> {
        let table = profile_table(&p.kind)?;
        if p.name.is_empty() {
            return Err(ApiError::invalid("name", "missing: the profile's name"));
        }
        if self.profile_exists(table, &p.name) {
            return Err(ApiError::ProfileExists {
                description: format!("a {} profile `{}` exists already", p.kind, p.name),
                kind: p.kind,
                name: p.name,
            });
        }
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        let settings = settings_table(p.settings.as_ref(), "settings", &[])?;
        let prefix = format!("{table}.{}", quote_key(&p.name));
        let name = p.name.clone();
        self.change_overlay(&prefix, "settings", |o| {
            *o.table_mut(&[table, &name]) = settings;
            Ok(())
        })?;
        if let Some(f) = new_flags {
            self.api.profile_trace.insert((table.to_owned(), p.name), f);
        }
        empty()
    }

    fn profile_modify(&mut self, p: t::ProfileModifyParams) -> Result<Value, ApiError> {
        let table = profile_table(&p.kind)?;
        if !self.profile_exists(table, &p.name) {
            return Err(Self::no_such_profile(&p.kind, &p.name));
        }
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        let settings = settings_table(p.settings.as_ref(), "settings", &[])?;
        let unset = p.unset.unwrap_or_default();
        let name = p.name.clone();
        let prefix = format!("{table}.{}", quote_key(&name));
        // A profile only the runtime changes define must keep its (maybe empty) table.
        let keep_empty = !self.api.overlay.files_define(table, &name)
            || self.api.overlay.is_deleted(table, &name);
        self.change_overlay(&prefix, "settings", |o| {
            let t = o.table_mut(&[table, &name]);
            for k in &unset {
                if t.remove(k).is_none() {
                    return Err(ApiError::invalid(
                        "unset",
                        format!("`{k}` was not set at run time"),
                    ));
                }
            }
            t.extend(settings);
            if t.is_empty() && !keep_empty {
                o.remove(table, &name);
            }
            Ok(())
        })?;
        if let Some(f) = new_flags {
            if f.is_empty() {
                self.api.profile_trace.remove(&(table.to_owned(), name));
            } else {
                self.api.profile_trace.insert((table.to_owned(), name), f);
            }
        }
        empty()
    }

    fn profile_delete(&mut self, kind: &str, name: &str) -> Result<Value, ApiError> {
        let table = profile_table(kind)?;
        if name == l2tp_config::DEFAULT_PROFILE {
            return Err(ApiError::invalid(
                "name",
                "the default profiles cannot be deleted",
            ));
        }
        if !self.profile_exists(table, name) {
            return Err(Self::no_such_profile(kind, name));
        }
        let prefix = format!("{table}.{}", quote_key(name));
        self.change_overlay(&prefix, "name", |o| {
            o.delete_profile(table, name);
            Ok(())
        })
        .map_err(|e| {
            let errors = match e {
                ApiError::ConfigInvalid { errors, .. } => errors,
                ApiError::InvalidParameter {
                    parameter,
                    description,
                } => vec![format!("{parameter}: {description}")],
                other => return other,
            };
            ApiError::ConfigInvalid {
                errors,
                description: format!("the {kind} profile `{name}` is in use"),
            }
        })?;
        self.api
            .profile_trace
            .remove(&(table.to_owned(), name.to_owned()));
        empty()
    }

    // ---- trace flags inherited from profiles ------------------------------

    /// A tunnel takes the trace flags of the default tunnel profile, its
    /// peer profile and that peer profile's tunnel profile.
    fn inherit_tunnel_trace(&self, id: TunnelId) {
        if self.api.profile_trace.is_empty() {
            return;
        }
        let Some(tun) = self.ep.tunnel(id) else {
            return;
        };
        let m = self
            .config
            .match_peer(tun.peer.ip(), Some(&tun.peer_host_name));
        let mut f = self
            .profile_trace("tunnel_profile", l2tp_config::DEFAULT_PROFILE)
            .union(self.profile_trace("peer_profile", &m.profile.name))
            .union(self.profile_trace("tunnel_profile", &m.profile.params.tunnel_profile_name));
        // A tunnel of ours may name its own tunnel profile.
        if let Some(n) = self
            .tunnels
            .get(&id)
            .filter(|c| c.local)
            .and_then(|c| self.config.local_tunnel(&c.name))
            .and_then(|lt| lt.tunnel_profile.as_deref())
        {
            f = f.union(self.profile_trace("tunnel_profile", n));
        }
        if !f.is_empty() {
            trace::set_tunnel(id.0, trace::tunnel(id.0).union(f));
        }
    }

    /// A session takes the trace flags of the default session and PPP
    /// profiles, its tunnel's peer profile's, and the ones it names.
    fn inherit_session_trace(&self, tid: TunnelId, sid: SessionId, ls: Option<&LocalSession>) {
        if self.api.profile_trace.is_empty() {
            return;
        }
        let Some(tun) = self.ep.tunnel(tid) else {
            return;
        };
        let m = self
            .config
            .match_peer(tun.peer.ip(), Some(&tun.peer_host_name));
        let mut f = self
            .profile_trace("session_profile", l2tp_config::DEFAULT_PROFILE)
            .union(self.profile_trace("ppp_profile", l2tp_config::DEFAULT_PROFILE))
            .union(self.profile_trace("session_profile", &m.profile.params.session_profile_name))
            .union(self.profile_trace("ppp_profile", &m.profile.params.ppp_profile_name));
        if let Some(ls) = ls
            && let Some(n) = &ls.params.ppp_profile_name
        {
            f = f.union(self.profile_trace("ppp_profile", n));
        }
        if !f.is_empty() {
            trace::set_session(tid.0, sid.0, trace::session(tid.0, sid.0).union(f));
        }
    }

    // ---- events ----------------------------------------------------------

    /// Publish a protocol event to `Monitor` callers and keep the API's
    /// state in step. Called before the daemon acts on the event.
    pub(super) fn api_event(&mut self, e: &Event) {
        let tname = |d: &Daemon, id: TunnelId, peer: Option<std::net::SocketAddr>| {
            match (d.tunnels.get(&id), peer, d.api.tunnel_names.get(&id.0)) {
                (Some(c), _, _) => c.name.clone(),
                // Named by the daemon when it handles TunnelUp.
                (None, Some(p), _) => format!("incoming-{p}"),
                (None, None, Some(n)) => n.clone(),
                (None, None, None) => d.tunnel_name(id),
            }
        };
        let mut ev = t::Event {
            timestamp_usec: now_usec(),
            kind: String::new(),
            tunnel_id: None,
            tunnel: None,
            session_id: None,
            session: None,
            peer: None,
            call_type: None,
            reason: None,
            description: String::new(),
        };
        let session_ev = |d: &Daemon, ev: &mut t::Event, tunnel: TunnelId, session: SessionId| {
            ev.tunnel_id = Some(tunnel.0);
            ev.tunnel = Some(tname(d, tunnel, None));
            ev.session_id = Some(session.0);
            ev.session = Some(d.session_name(tunnel, session));
        };
        match e {
            Event::TunnelUp {
                tunnel,
                peer_tunnel,
                peer,
                peer_host_name,
            } => {
                let name = tname(self, *tunnel, Some(*peer));
                ev.kind = "tunnel_up".into();
                ev.description = format!(
                    "tunnel {name} (id {}) up with {peer} (peer tunnel id {}, host name {peer_host_name:?})",
                    tunnel.0, peer_tunnel.0
                );
                ev.tunnel_id = Some(tunnel.0);
                ev.tunnel = Some(name.clone());
                ev.peer = Some(peer.to_string());
                self.api.tunnel_names.insert(tunnel.0, name);
                self.inherit_tunnel_trace(*tunnel);
            }
            Event::TunnelDown { tunnel, reason } => {
                let name = tname(self, *tunnel, None);
                ev.kind = "tunnel_down".into();
                ev.description = format!("tunnel {name} (id {}) down: {reason}", tunnel.0);
                ev.tunnel_id = Some(tunnel.0);
                ev.tunnel = Some(name.clone());
                ev.peer = self.ep.tunnel(*tunnel).map(|t| t.peer.to_string());
                ev.reason = Some(reason.to_string());
                // A runtime tunnel that will not come back is forgotten.
                if self
                    .tunnels
                    .get(tunnel)
                    .is_some_and(|c| c.local && !c.persist)
                    && self.api.api_tunnels.contains(&name)
                {
                    self.forget_api_tunnel(&name);
                }
            }
            Event::TunnelFreed { tunnel } => {
                ev.kind = "tunnel_freed".into();
                ev.tunnel_id = Some(tunnel.0);
                ev.tunnel = Some(tname(self, *tunnel, None));
                ev.description = format!(
                    "tunnel {} (id {}) freed",
                    ev.tunnel.as_deref().unwrap_or(""),
                    tunnel.0
                );
                trace::forget_tunnel(tunnel.0);
                self.api.tunnel_names.remove(&tunnel.0);
                self.api.session_names.retain(|(t, _), _| *t != tunnel.0);
            }
            Event::TunnelReplaced { old, new, sessions } => {
                ev.kind = "tunnel_replaced".into();
                ev.tunnel_id = Some(new.0);
                ev.tunnel = Some(tname(self, *old, None));
                ev.description = format!(
                    "tunnel id {} replaced by the peer's tunnel id {} (tie breaker), {} calls moved",
                    old.0,
                    new.0,
                    sessions.len()
                );
                let f = trace::tunnel(old.0);
                trace::forget_tunnel(old.0);
                if !f.is_empty() {
                    trace::set_tunnel(new.0, f);
                }
            }
            Event::SessionUp {
                tunnel,
                session,
                peer_session,
                call_type,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "session_up".into();
                ev.call_type = Some(call_type.to_string());
                ev.description = format!(
                    "session {} (id {}, peer id {}) up in tunnel {}, {call_type}",
                    ev.session.as_deref().unwrap_or(""),
                    session.0,
                    peer_session.0,
                    ev.tunnel.as_deref().unwrap_or("")
                );
                if let Some(n) = &ev.session {
                    self.api
                        .session_names
                        .insert((tunnel.0, session.0), n.clone());
                }
                self.inherit_session_trace(*tunnel, *session, None);
            }
            Event::SessionDown {
                tunnel,
                session,
                reason,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "session_down".into();
                ev.reason = Some(reason.to_string());
                ev.description = format!(
                    "session {} (id {}) down in tunnel {}: {reason}",
                    ev.session.as_deref().unwrap_or(""),
                    session.0,
                    ev.tunnel.as_deref().unwrap_or("")
                );
                trace::forget_session(tunnel.0, session.0);
                self.api.session_names.remove(&(tunnel.0, session.0));
            }
            Event::WanErrorNotify {
                tunnel,
                session,
                errors,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "wan_error_notify".into();
                ev.description = format!(
                    "WAN-Error-Notify for session {}: crc {} framing {} hardware overruns {} \
                     buffer overruns {} timeouts {} alignment {}",
                    session.0, errors[0], errors[1], errors[2], errors[3], errors[4], errors[5]
                );
            }
            Event::SetLinkInfo {
                tunnel,
                session,
                send_accm,
                recv_accm,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "set_link_info".into();
                ev.description = format!(
                    "Set-Link-Info for session {}: send ACCM {send_accm:#010x}, receive ACCM {recv_accm:#010x}",
                    session.0
                );
            }
        }
        // No monitor listening is fine.
        let _: Result<usize, broadcast::error::SendError<t::Event>> =
            self.api.channels.events.send(ev);
    }
}

/// Whether we place calls of this type (the others are placed by the peer).
fn can_place(t: SessionType) -> bool {
    matches!(t, SessionType::LacIncoming | SessionType::LnsOutgoing)
}

/// A key as it appears in a dotted key path of configuration errors.
fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}
