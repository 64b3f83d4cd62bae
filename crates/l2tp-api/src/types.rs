//! The interface's types, parameters and replies (see `io.l2tpd.varlink`
//! for what each field means). Optional parameters are `Option`s that are
//! left out of the JSON when `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object of settings keys (l2tpd.toml(5) keys and values).
pub type Settings = Map<String, Value>;

/// The daemon as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// l2tpd's version.
    pub version: String,
    /// Version of the interface.
    pub interface_version: u32,
    /// The daemon's process id.
    pub pid: u32,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Local address and UDP port of the L2TP listening socket.
    pub listen: String,
    /// netlink, legacy or null.
    pub data_plane: String,
    /// Tunnels right now.
    pub tunnels: u64,
    /// Sessions right now.
    pub sessions: u64,
    /// Configuration files read, in merge order.
    pub config_sources: Vec<String>,
    /// Runtime changes are layered over the configuration files.
    pub runtime_changes: bool,
    /// System-wide trace flags.
    pub trace_flags: Vec<String>,
    /// The effective `[system]` table.
    pub settings: Settings,
}

/// System-wide protocol counters since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SystemCounters {
    pub seconds_since_reset: u64,
    pub total_rcvd_control_frames: u64,
    pub bad_rcvd_frames: u64,
    pub wrong_version_frames: u64,
    pub unexpected_data_frames: u64,
    pub no_matching_tunnel_id_discards: u64,
    pub mismatched_peer_discards: u64,
    pub tunnels_refused: u64,
    pub tunnels_lost: u64,
    pub auth_fails: u64,
    pub illegal_messages: u64,
    pub retransmits: u64,
    pub tie_breakers_won: u64,
    pub tie_breakers_lost: u64,
    pub half_open_drops: u64,
    pub sccrq_bad_ns_drops: u64,
    pub tunnel_limit_refusals: u64,
    pub calls_refused: u64,
    pub undecided_calls: u64,
    pub peer_port_changes: u64,
    pub unknown_tunnel_stopccns: u64,
    pub unknown_tunnel_zlbs: u64,
    pub unknown_tunnel_answers_suppressed: u64,
    pub listen_queue_drops: u64,
    pub tunnel_queue_drops: u64,
    pub tunnels: u64,
    pub half_open_tunnels: u64,
    pub sessions: u64,
    pub tunnel_sockets: u64,
}

/// Kernel data counters of a tunnel or session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct KernelStats {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_seq_discards: u64,
    pub rx_oos_packets: u64,
    pub rx_errors: u64,
    pub rx_cookie_discards: u64,
    pub rx_invalid: u64,
}

/// One line of `TunnelList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSummary {
    /// Our tunnel id.
    pub id: u16,
    /// The tunnel's name.
    pub name: String,
    /// config, api or peer.
    pub origin: String,
    /// The peer's tunnel id.
    pub peer_id: u16,
    /// The peer's address and port.
    pub peer: String,
    /// Protocol state.
    pub state: String,
    /// Number of sessions.
    pub sessions: u64,
    /// Seconds since the tunnel was created.
    pub uptime_secs: u64,
    /// The peer's Host Name AVP.
    pub peer_host_name: String,
}

/// The reliable control channel of a tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TunnelWindow {
    pub ns: u16,
    pub nr: u16,
    pub cwnd: u16,
    pub ssthresh: u16,
    pub peer_rws: u16,
    pub rx_window: u16,
    pub tx_window_max: u16,
    pub in_flight: u64,
    pub unacked: u64,
    pub retry_timeout_ms: u64,
    pub max_retries: u32,
}

/// Control-protocol counters of a tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TunnelCounters {
    pub tx_messages: u64,
    pub rx_messages: u64,
    pub retransmits: u64,
    pub tx_zlbs: u64,
    pub rx_zlbs: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub out_of_window: u64,
    pub tx_hellos: u64,
    pub rx_hellos: u64,
    pub ignored_avps: u64,
    pub vendor_avps: u64,
    pub illegal_messages: u64,
    pub bad_messages: u64,
    pub no_matching_session_discards: u64,
    pub auth_fails: u64,
    pub rx_by_type: BTreeMap<String, u64>,
    pub tx_by_type: BTreeMap<String, u64>,
    pub rx_bad_by_type: BTreeMap<String, u64>,
}

/// Everything about one tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TunnelInfo {
    pub id: u16,
    pub name: String,
    pub origin: String,
    pub peer_id: u16,
    pub peer: String,
    pub state: String,
    pub initiator: bool,
    pub persist: bool,
    pub uptime_secs: u64,
    pub peer_host_name: String,
    pub peer_vendor_name: Option<String>,
    pub peer_framing_caps: u32,
    pub peer_bearer_caps: u32,
    pub close_reason: Option<String>,
    pub host_name: String,
    pub hello_interval_ms: Option<u64>,
    pub auth_mode: String,
    pub hide_avps: bool,
    pub max_sessions: u32,
    pub window: TunnelWindow,
    pub counters: TunnelCounters,
    pub kernel: Option<KernelStats>,
    pub kernel_error: Option<String>,
    pub trace_flags: Vec<String>,
    pub sessions: Vec<SessionSummary>,
}

/// One line of `SessionList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SessionSummary {
    pub tunnel_id: u16,
    pub tunnel: String,
    pub id: u16,
    pub peer_id: u16,
    pub name: String,
    pub call_type: String,
    pub state: String,
    pub pppd_pid: Option<u32>,
    pub ifname: Option<String>,
}

/// What the peer said about a call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct PeerCallInfo {
    pub tx_connect_speed: Option<u32>,
    pub rx_connect_speed: Option<u32>,
    pub framing_type: Option<u32>,
    pub bearer_type: Option<u32>,
    pub calling_number: Option<String>,
    pub called_number: Option<String>,
    pub physical_channel_id: Option<u32>,
    pub private_group_id: Option<String>,
}

/// Everything about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SessionInfo {
    pub tunnel_id: u16,
    pub tunnel: String,
    pub id: u16,
    pub peer_id: u16,
    pub name: String,
    pub call_type: String,
    pub state: String,
    pub serial: u32,
    pub sequencing: bool,
    pub pppd_pid: Option<u32>,
    pub ifname: Option<String>,
    pub peer_info: PeerCallInfo,
    pub kernel: Option<KernelStats>,
    pub kernel_error: Option<String>,
    pub trace_flags: Vec<String>,
}

/// One line of `ProfileList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ProfileSummary {
    pub kind: String,
    pub name: String,
    pub origin: String,
    pub trace_flags: Vec<String>,
}

/// One profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Profile {
    pub kind: String,
    pub name: String,
    pub origin: String,
    pub settings: Settings,
    pub effective: Settings,
    pub trace_flags: Vec<String>,
}

/// An event of `Monitor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Event {
    pub timestamp_usec: u64,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub description: String,
}

macro_rules! params {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "crate::types::is_default")]
                pub $f: $t,
            )*
        }
    };
}

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

params!(
    /// Parameters of methods that take none.
    NoParams {}
);
params!(
    /// `Metrics` parameters.
    MetricsParams {
        /// Add the per-tunnel series (labels `tunnel` and `id`). Default false.
        per_tunnel: bool,
    }
);
params!(
    /// `SystemModify` parameters.
    SystemModifyParams {
        /// `[system]` keys to change.
        settings: Option<Settings>,
        /// New system-wide trace flags.
        trace_flags: Option<Vec<String>>,
    }
);
params!(
    /// `TunnelShow` parameters.
    TunnelRef {
        /// Tunnel id or name.
        tunnel: String,
    }
);
params!(
    /// `TunnelCreate` parameters.
    TunnelCreateParams {
        /// The peer's IP address.
        peer: String,
        /// The tunnel's name (default `api-N`).
        name: Option<String>,
        /// Keys of a `[tunnel.NAME]` table.
        settings: Option<Settings>,
        /// Session name → keys of a `[tunnel.NAME.session.S]` table.
        sessions: Option<BTreeMap<String, Settings>>,
    }
);
params!(
    /// `TunnelModify` parameters.
    TunnelModifyParams {
        /// Tunnel id or name.
        tunnel: String,
        /// New trace flags.
        trace_flags: Option<Vec<String>>,
        /// Re-establish when it goes down.
        persist: Option<bool>,
        /// New HELLO interval, a duration such as "30s" ("0s": no HELLOs).
        hello_timeout: Option<String>,
    }
);
params!(
    /// `TunnelDelete` parameters.
    TunnelDeleteParams {
        /// Tunnel id or name.
        tunnel: String,
        /// StopCCN Result Code (default 1).
        result_code: Option<u16>,
        /// Error message sent with it.
        message: Option<String>,
    }
);
params!(
    /// `SessionList` parameters.
    SessionListParams {
        /// Only this tunnel's sessions.
        tunnel: Option<String>,
    }
);
params!(
    /// `SessionShow` parameters.
    SessionRef {
        /// Tunnel id or name.
        tunnel: String,
        /// Session id or name.
        session: String,
    }
);
params!(
    /// `SessionCreate` parameters.
    SessionCreateParams {
        /// Tunnel id or name.
        tunnel: String,
        /// The session's name (default `api-N`).
        name: Option<String>,
        /// Keys of a `[tunnel.T.session.NAME]` table.
        settings: Option<Settings>,
    }
);
params!(
    /// `SessionModify` parameters.
    SessionModifyParams {
        /// Tunnel id or name.
        tunnel: String,
        /// Session id or name.
        session: String,
        /// New trace flags.
        trace_flags: Option<Vec<String>>,
    }
);
params!(
    /// `SessionDelete` parameters.
    SessionDeleteParams {
        /// Tunnel id or name.
        tunnel: String,
        /// Session id or name.
        session: String,
        /// CDN Result Code (default 3).
        result_code: Option<u16>,
        /// Error message sent with it.
        message: Option<String>,
    }
);
params!(
    /// `ProfileList` parameters.
    ProfileListParams {
        /// Only this kind.
        kind: Option<String>,
    }
);
params!(
    /// `ProfileShow` / `ProfileDelete` parameters.
    ProfileRef {
        /// tunnel, session, ppp or peer.
        kind: String,
        /// The profile name.
        name: String,
    }
);
params!(
    /// `ProfileCreate` parameters.
    ProfileCreateParams {
        /// tunnel, session, ppp or peer.
        kind: String,
        /// The profile name.
        name: String,
        /// Keys of the profile table.
        settings: Option<Settings>,
        /// Trace flags inherited by tunnels and sessions using it.
        trace_flags: Option<Vec<String>>,
    }
);
params!(
    /// `ProfileModify` parameters.
    ProfileModifyParams {
        /// tunnel, session, ppp or peer.
        kind: String,
        /// The profile name.
        name: String,
        /// Keys to set.
        settings: Option<Settings>,
        /// Keys set at run time to remove.
        unset: Option<Vec<String>>,
        /// New trace flags.
        trace_flags: Option<Vec<String>>,
    }
);

/// Reply of `SystemShow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemShowReply {
    /// The daemon.
    pub system: SystemInfo,
}

/// Reply of `SystemCounters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemCountersReply {
    /// The counters.
    pub counters: SystemCounters,
}

/// Reply of `Metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsReply {
    /// The exposition: Prometheus text format 0.0.4 (`# HELP`, `# TYPE`
    /// and sample lines, each ended by `\n`).
    pub text: String,
}

/// Reply of `SystemReload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemReloadReply {
    /// Files read.
    pub config_sources: Vec<String>,
}

/// Reply of `TunnelList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelListReply {
    /// All tunnels.
    pub tunnels: Vec<TunnelSummary>,
}

/// Reply of `TunnelShow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelShowReply {
    /// The tunnel.
    pub tunnel: TunnelInfo,
}

/// Reply of `TunnelCreate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelCreateReply {
    /// The new tunnel's id.
    pub tunnel_id: u16,
    /// Its name.
    pub name: String,
    /// The calls placed in it, by name.
    pub session_ids: BTreeMap<String, u16>,
}

/// Reply of `SessionList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionListReply {
    /// The sessions.
    pub sessions: Vec<SessionSummary>,
}

/// Reply of `SessionShow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionShowReply {
    /// The session.
    pub session: SessionInfo,
}

/// Reply of `SessionCreate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreateReply {
    /// The tunnel's id.
    pub tunnel_id: u16,
    /// The new session's id.
    pub session_id: u16,
    /// Its name.
    pub name: String,
}

/// Reply of `ProfileList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileListReply {
    /// The profiles.
    pub profiles: Vec<ProfileSummary>,
}

/// Reply of `ProfileShow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileShowReply {
    /// The profile.
    pub profile: Profile,
}

/// Reply of `Monitor` (one per event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorReply {
    /// The event.
    pub event: Event,
}

/// Reply of methods that return nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}
