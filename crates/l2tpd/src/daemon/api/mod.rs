//! The management API's calls, answered inside the daemon loop (the server
//! side is `crate::api`). Runtime changes to profiles, tunnels, sessions and
//! `[system]` go through an [`Overlay`] over the configuration files, so they
//! resolve and validate exactly as the files would.

mod monitor;
mod profile;
mod session;
mod system;
mod tunnel;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use l2tp_api::ApiError;
use l2tp_api::types::{self as t, Settings};
use l2tp_config::{Config, ConfigPaths, SessionType};
use l2tp_proto::endpoint::EndpointCounters;
use l2tp_proto::event::CommandError;
use l2tp_proto::tunnel::Tunnel;
use l2tp_proto::wire::{MessageType, SessionId, TunnelId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Daemon;
use crate::api::overlay::{self, LoadError, Overlay};
use crate::api::trace::{self, TraceFlags};
use crate::api::{ApiChannels, ApiRequest};

/// `[system]` keys `SystemModify` refuses: those a reload cannot change
/// ([`super::reload::RESTART_KEYS`]), and the secrets file, which is read
/// from the configuration files only.
fn fixed_key(key: &str) -> bool {
    super::reload::RESTART_KEYS.contains(&key) || key == "secrets_file"
}

/// The name of the scratch tunnel used to resolve calls placed in tunnels
/// the peer set up (never kept).
const RESOLVE_TUNNEL: &str = "#api-resolve";

/// The API's part of the daemon state.
pub(super) struct ApiState {
    channels: ApiChannels,
    overlay: Overlay,
    started: Instant,
    /// `started` as wall-clock time (the metrics' start time).
    started_wall: std::time::SystemTime,
    counters_base: EndpointCounters,
    /// Receive-queue drops (listening socket, tunnel sockets) at the last reset.
    queue_drops_base: (u64, u64),
    reset_at: Instant,
    /// Names of the tunnels created through the API (`[tunnel.NAME]` in the overlay).
    api_tunnels: HashSet<String>,
    /// Trace flags of profiles, by (table, name).
    profile_trace: HashMap<(String, String), TraceFlags>,
    next_name: u64,
    /// The effective configuration as TOML, for the configuration it was
    /// made of (see `profile_show`).
    effective: Option<(Arc<Config>, Arc<toml::Table>)>,
}

impl ApiState {
    /// Start the API server as the configuration says.
    pub(super) fn new(config: &Config) -> anyhow::Result<Self> {
        let overlay = Overlay::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self {
            channels: crate::api::start(&config.system)?,
            overlay,
            started: Instant::now(),
            started_wall: std::time::SystemTime::now(),
            counters_base: EndpointCounters::default(),
            queue_drops_base: (0, 0),
            reset_at: Instant::now(),
            api_tunnels: HashSet::new(),
            profile_trace: HashMap::new(),
            next_name: 1,
            effective: None,
        })
    }

    /// The next API call.
    pub(super) async fn recv(&mut self) -> Option<ApiRequest> {
        self.channels.requests.recv().await
    }

    /// Read the configuration files again and lay the runtime changes over
    /// them (SIGHUP and `SystemReload`).
    pub(super) fn reload(&mut self, paths: &ConfigPaths) -> Result<Config, LoadError> {
        let config = self.overlay.reload(paths)?;
        self.set_limits(&config);
        Ok(config)
    }

    /// Hand the API server the limits of `config` (`api_max_connections`).
    fn set_limits(&self, config: &Config) {
        self.channels.max_connections.store(
            config.system.api_max_connections as usize,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// Decode a call's parameters; a bad one is an `InvalidParameter` naming it.
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

/// Encode a reply.
fn reply<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::failed(format!("encoding the reply: {e}")))
}

/// The empty reply.
fn empty() -> Result<Value, ApiError> {
    reply(t::Empty {})
}

/// Parse trace flag names given as parameter `parameter`.
fn flags(names: &[String], parameter: &str) -> Result<TraceFlags, ApiError> {
    TraceFlags::parse(names).map_err(|e| ApiError::invalid(parameter, e))
}

/// A command the core refused, as an API error.
fn command_error(e: CommandError) -> ApiError {
    ApiError::failed(e.to_string())
}

/// Kernel data counters in the API's shape.
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

/// Kernel counters an API reply is to carry: read by the data-plane worker,
/// which then sends the reply (`TunnelShow`, `SessionShow`, `Metrics`).
#[derive(Debug, Clone, Copy)]
pub(super) enum StatsQuery {
    /// The kernel tunnel's counters, into the reply's `tunnel` object.
    Tunnel(TunnelId),
    /// The kernel session's counters, into the reply's `session` object.
    Session(TunnelId, SessionId),
    /// The metrics text, rendered once every tunnel's counters are read.
    Metrics { per_tunnel: bool },
}

impl StatsQuery {
    /// Read the counters from `dp` and set them as `kernel` of the reply's
    /// object, or `kernel_error` when the kernel refused (operation and errno).
    fn add_to(self, dp: &mut dyn l2tp_kernel::DataPlane, mut reply: Value) -> Value {
        let (key, stats) = match self {
            Self::Metrics { .. } => return reply,
            Self::Tunnel(t) => (
                "tunnel",
                dp.tunnel_stats(l2tp_kernel::TunnelId(u32::from(t.0))),
            ),
            Self::Session(t, s) => (
                "session",
                dp.session_stats(
                    l2tp_kernel::TunnelId(u32::from(t.0)),
                    l2tp_kernel::SessionId(u32::from(s.0)),
                ),
            ),
        };
        if let Some(obj) = reply.get_mut(key).and_then(Value::as_object_mut) {
            let stats = stats
                .map_err(|e| e.to_string())
                .and_then(|s| serde_json::to_value(kernel_stats(&s)).map_err(|e| e.to_string()));
            match stats {
                Ok(v) => obj.insert("kernel".into(), v),
                Err(e) => obj.insert("kernel_error".into(), Value::String(e)),
            };
        }
        reply
    }
}

/// Per-message-type counters, by message name, zeros left out.
fn by_type(v: &[u64; 17]) -> BTreeMap<String, u64> {
    v.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (MessageType(i as u16).to_string(), *n))
        .collect()
}

/// Bytes from the wire as text.
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A value as a settings object (empty if it is not an object).
fn to_object<T: Serialize>(v: &T) -> Settings {
    match serde_json::to_value(v) {
        Ok(Value::Object(o)) => o,
        _ => Settings::new(),
    }
}

/// Wall-clock time in microseconds since the epoch (event timestamps).
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
        self.api_stats = None;
        let result = self.api_call(&method, params);
        match &result {
            Err(e) => tracing::info!(
                %method,
                %caller,
                "API call refused: {}",
                crate::api::conn::printable(&e.to_string())
            ),
            Ok(_) if l2tp_api::access(&method) == Some(l2tp_api::Access::ReadWrite) => {
                tracing::info!(%method, %caller, "API call")
            }
            Ok(_) => tracing::debug!(%method, %caller, "API call"),
        }
        match (result, self.api_stats.take()) {
            // The reply waits for the kernel's counters, read on the worker.
            (Ok(value), Some(StatsQuery::Metrics { per_tunnel })) => {
                self.with_metrics(per_tunnel, move |snapshot| {
                    let text = crate::metrics::render(snapshot, crate::metrics::Format::Prometheus);
                    let value = serde_json::to_value(t::MetricsReply { text }).unwrap_or(value);
                    let _ = reply.send(Ok(value));
                });
            }
            (Ok(value), Some(query)) => self.dpw.submit(move |dp| {
                let _ = reply.send(Ok(query.add_to(dp, value)));
            }),
            (result, _) => {
                let _ = reply.send(result);
            }
        }
    }

    /// Dispatch one call by method name.
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
            "Metrics" => {
                let m: t::MetricsParams = params(p)?;
                // The text is rendered once the kernel counters are read.
                self.api_stats = Some(StatsQuery::Metrics {
                    per_tunnel: m.per_tunnel,
                });
                reply(t::MetricsReply {
                    text: String::new(),
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
                    let mut calls: Vec<_> = tun.sessions.values().collect();
                    calls.sort_unstable_by_key(|s| s.id);
                    for s in calls {
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
        self.api.set_limits(&config);
        self.set_config(Arc::new(config));
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

    // ---- lookups (the registry's name indexes) ----------------------------

    /// A tunnel by id or name (the lowest id of the tunnels with that name;
    /// `tunnel-<id>` for a peer's tunnel not up yet).
    fn find_tunnel(&self, r: &str) -> Result<TunnelId, ApiError> {
        if r.is_empty() {
            return Err(ApiError::invalid("tunnel", "missing: a tunnel id or name"));
        }
        if let Ok(n) = r.parse::<u16>()
            && self.ep.tunnel(TunnelId(n)).is_some()
        {
            return Ok(TunnelId(n));
        }
        let unnamed = r
            .strip_prefix("tunnel-")
            .and_then(|n| n.parse::<u16>().ok())
            .map(TunnelId)
            .filter(|id| self.reg.tunnel(*id).is_none());
        self.reg
            .tunnels_named(r)
            .chain(unnamed)
            .find(|id| self.ep.tunnel(*id).is_some())
            .ok_or_else(|| ApiError::NoSuchTunnel {
                tunnel: r.to_owned(),
                description: format!("no tunnel `{r}`"),
            })
    }

    /// A session's name; its id when the registry has none.
    fn session_name(&self, tunnel: TunnelId, session: SessionId) -> String {
        self.reg
            .session(tunnel, session)
            .map_or_else(|| session.0.to_string(), |c| c.name.to_string())
    }

    /// A session by tunnel and session id or name.
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
        self.reg
            .session_named(tid, sr)
            .filter(|sid| tun.sessions.contains_key(sid))
            .map(|sid| (tid, sid))
            .ok_or_else(|| ApiError::NoSuchSession {
                tunnel: tr.to_owned(),
                session: sr.to_owned(),
                description: format!("no session `{sr}` in tunnel `{tr}`"),
            })
    }

    /// Who set a tunnel up: `config`, `api` or `peer`.
    fn origin(&self, id: TunnelId) -> &'static str {
        match self.reg.tunnel(id) {
            Some(c) if c.local && self.api.api_tunnels.contains(&*c.name) => "api",
            Some(c) if c.local => "config",
            _ => "peer",
        }
    }
}

/// A name for something created through the API: `api-N` with the next
/// `N` of `counter` that `taken` does not refuse.
fn next_api_name(counter: &mut u64, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let n = format!("api-{}", *counter);
        *counter += 1;
        if !taken(&n) {
            return n;
        }
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
