//! Parameter sets: for each kind (system, tunnel, session, PPP, peer) a
//! resolved `…Params` struct with every value filled in, and a `…Settings`
//! struct with every key optional, as one table of the file sets them.
//!
//! Both are generated from one field list by [`params!`] so the key names,
//! the built-in defaults and the inheritance code cannot drift apart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{
    AuthMode, BearerCaps, BearerType, ConfigDuration, DataPlaneKind, FramingCaps, FramingType,
    IpPool, IpPrefix, LacLns, Secret,
};

/// A violated constraint on resolved parameters: the keys involved (the
/// error is reported at the highest-priority layer that set one of them,
/// in this order) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub keys: &'static [&'static str],
    pub message: String,
}

fn problem(keys: &'static [&'static str], message: impl Into<String>) -> Problem {
    Problem {
        keys,
        message: message.into(),
    }
}

/// What the parser and the resolver need from a settings table.
pub(crate) trait SettingsTable: Default + Clone + for<'de> Deserialize<'de> {
    /// The resolved parameters these settings apply to.
    type Params: Default;
    /// Writes every key set here into `params`.
    fn apply(&self, params: &mut Self::Params);
    /// Keys set in `higher` replace ours.
    fn overlay_from(&mut self, higher: &Self);
}

macro_rules! field_ty {
    (opt $t:ty) => { Option<$t> };
    (val $t:ty) => { $t };
}

macro_rules! raw_ty {
    ($t:ty) => {
        $t
    };
    ($t:ty, $raw:ty) => {
        $raw
    };
}

macro_rules! put_field {
    (opt $dst:expr, $v:expr) => {
        $dst = Some($v)
    };
    (val $dst:expr, $v:expr) => {
        $dst = $v
    };
}

macro_rules! get_field {
    (opt $src:expr) => {
        $src.clone().map(Into::into)
    };
    (val $src:expr) => {
        Some($src.clone().into())
    };
}

/// Generates a resolved parameter struct and its all-optional settings
/// counterpart from one list of
/// `/// doc  key: opt|val Type [as RawType] = default;`
/// lines. `opt` keys stay `Option` after resolution (no default exists);
/// `RawType` is the type the file is parsed into when it differs from the
/// resolved type (durations).
macro_rules! params {
    (
        $(#[$pmeta:meta])*
        pub struct $params:ident;
        $(#[$smeta:meta])*
        pub struct $settings:ident;
        {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $kind:ident $ty:ty $(as $raw:ty)? = $default:expr;
            )*
        }
    ) => {
        $(#[$pmeta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $params {
            $(
                $(#[doc = $doc])*
                pub $field: field_ty!($kind $ty),
            )*
        }

        impl Default for $params {
            /// The built-in defaults.
            fn default() -> Self {
                $params { $( $field: $default, )* }
            }
        }

        $(#[$smeta])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $settings {
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<raw_ty!($ty $(, $raw)?)>,
            )*
        }

        impl $settings {
            /// Every key this table accepts, in schema order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Writes every key this table sets into `params`.
            pub fn apply_to(&self, params: &mut $params) {
                $(
                    if let Some(v) = &self.$field {
                        put_field!($kind params.$field, v.clone().into());
                    }
                )*
            }

            /// Overlays `higher` onto `self`: keys `higher` sets win.
            pub fn overlay(&mut self, higher: &$settings) {
                $(
                    if higher.$field.is_some() {
                        self.$field = higher.$field.clone();
                    }
                )*
            }

            /// Names of the keys this table sets.
            pub fn keys_set(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if self.$field.is_some() { keys.push(stringify!($field)); } )*
                keys
            }
        }

        impl crate::params::SettingsTable for $settings {
            type Params = $params;
            fn apply(&self, params: &mut $params) {
                self.apply_to(params);
            }
            fn overlay_from(&mut self, higher: &Self) {
                self.overlay(higher);
            }
        }

        impl $params {
            /// These parameters as a settings table with every key set
            /// (keys whose value is absent are left out).
            pub fn to_settings(&self) -> $settings {
                $settings { $( $field: get_field!($kind self.$field), )* }
            }

            /// Names of the keys whose value differs between `self` and
            /// `other`, in schema order (empty when they are equal).
            pub fn changed_keys(&self, other: &$params) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if self.$field != other.$field { keys.push(stringify!($field)); } )*
                keys
            }
        }
    };
}

params! {
    /// Global daemon settings (`[system]`), resolved.
    pub struct SystemConfig;
    /// The `[system]` table as written.
    pub struct SystemSettings;
    {
        /// Address the L2TP UDP socket binds to. Default `0.0.0.0`; `"::"` is
        /// dual-stack (IPv4 peers appear as IPv4-mapped addresses).
        listen_addr: val IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        /// UDP port to listen on. Default 1701 (0: an ephemeral port, for tests).
        udp_port: val u16 = 1701;
        /// Kernel data plane: `netlink` (default), `legacy` or `null`.
        data_plane: val DataPlaneKind = DataPlaneKind::Netlink;
        /// pppd binary. Default `/usr/sbin/pppd`.
        pppd_path: val PathBuf = PathBuf::from("/usr/sbin/pppd");
        /// Nice value (-20..=19) of the data-plane worker thread, which
        /// makes the kernel calls and starts pppd, and so of every pppd:
        /// above the protocol loop's (0), a burst of pppd starts cannot
        /// delay the control messages of every tunnel. Read at start only.
        /// Default 5.
        pppd_nice: val i8 = 5;
        /// Calls of the peers (ICRQ / OCRQ) whose pppd may be negotiating
        /// at once: accepted, and the PPP link not yet up. Further calls
        /// wait for their ICRP / OCRP (held by the driver, in arrival
        /// order, within `session_establish_timeout`) until a link comes up
        /// or a call ends. 0 (the default): no limit.
        pppd_max_starting: val u32 = 0;
        /// Refuse tunnels set up by peers (no LNS role). Default false.
        deny_remote_tunnel_creates: val bool = false;
        /// Receive pppd's ACCM and up/down reports through its `openl2tp.so`
        /// plugin (socket `/tmp/openl2tp-event.sock`, one controller per host)
        /// and send Set-Link-Info to the LAC when an LNS session's ACCM is
        /// negotiated (RFC 2661 §6.16). Default false.
        ppp_accm_events: val bool = false;
        /// Most tunnels at once; 0 = no limit (default).
        max_tunnels: val u32 = 0;
        /// Most sessions at once over all tunnels; 0 = no limit (default).
        max_sessions: val u32 = 0;
        /// Most half-open tunnels at once (a peer's SCCRQ answered, its SCCCN
        /// not yet received, refusals included); further SCCRQs are dropped
        /// unanswered and counted. Default 4096.
        max_half_open_tunnels: val u32 = 4096;
        /// Most half-open tunnels from one peer address. Default 1024.
        max_half_open_tunnels_per_peer: val u32 = 1024;
        /// Most tunnels we initiate that wait for their SCCRP at once;
        /// further ones queue and are dialled in turn (0: no limit).
        /// Default 1024, a peer's default `max_half_open_tunnels_per_peer`.
        max_dialing_tunnels: val u32 = 1024;
        /// Time a tunnel may take to become established (std Duration;
        /// config accepts "120s" / seconds). Default 120 s.
        tunnel_establish_timeout: val Duration as ConfigDuration = Duration::from_secs(120);
        /// Time a session may take to become established (std Duration;
        /// config accepts "120s" / seconds), from its ICRQ / OCRQ. Default
        /// 120 s.
        session_establish_timeout: val Duration as ConfigDuration = Duration::from_secs(120);
        /// File holding tunnel secrets and PPP passwords, merged over the
        /// configuration; it must not be accessible by group or others
        /// (mode 0600 or stricter) and must be owned by root or the
        /// daemon's effective uid. A relative path is relative to the
        /// directory of the file that sets it; after
        /// [`crate::Config::load`] this is the path actually read. Default:
        /// none.
        secrets_file: opt PathBuf = None;
        /// File where the daemon records what it owns (established tunnels,
        /// pppd processes) so that its next start can clean up after a
        /// crash or `kill -9`, and tell the peers of the old tunnels;
        /// locked while the daemon runs, so a second daemon with the same
        /// file refuses to start. Default (unset):
        /// `/run/l2tpd/l2tpd.state` with a kernel data plane, none with
        /// `data_plane = "null"`; an empty path disables it.
        state_file: opt PathBuf = None;
        /// Unix socket of the management API (Varlink interface
        /// `io.l2tpd`, used by `l2tpctl`), created owned by root with mode
        /// 0660. An empty path disables the API. Default
        /// `/run/l2tpd/io.l2tpd.sock`.
        api_socket: val PathBuf = PathBuf::from("/run/l2tpd/io.l2tpd.sock");
        /// Group (name or number) whose members may make every API call;
        /// the socket's group unless `api_readonly_group` is set. Default:
        /// none (root only).
        api_group: opt String = None;
        /// Group (name or number) whose members may make the read-only API
        /// calls (show, list, counters, metrics, monitor); when set it is the
        /// socket's group, so it should include the members of `api_group`.
        /// Default: none.
        api_readonly_group: opt String = None;
        /// Most management API connections served at once (1..=4096); a
        /// further one gets the error `io.l2tpd.TooManyConnections` and is
        /// closed. A change (reload, `SystemModify`) applies to the
        /// connections accepted from then on. Default 64.
        api_max_connections: val u32 = 64;
        /// Address and TCP port of the metrics HTTP endpoint (`GET
        /// /metrics`, Prometheus text format 0.0.4), e.g.
        /// `"127.0.0.1:9701"`. Read at start only. Default: none (off).
        metrics_listen: opt SocketAddr = None;
        /// Add per-tunnel series (label `tunnel`, the tunnel's name, and
        /// `id`, our Assigned Tunnel ID) to the metrics endpoint's output.
        /// Default false: only daemon-wide series, whose number does not
        /// grow with the tunnels.
        metrics_per_tunnel: val bool = false;
    }
}

params! {
    /// Effective parameters of one tunnel (OpenL2TP tunnel-profile
    /// parameters), after inheritance.
    pub struct TunnelParams;
    /// A `[tunnel_profile.NAME]` table, or the tunnel-profile keys of a
    /// `[tunnel.NAME]` table, as written.
    pub struct TunnelSettings;
    {
        /// Host Name AVP we send. `None`: the daemon uses the machine's host name.
        host_name: opt String = None;
        /// Tunnel secret for challenge authentication and hidden AVPs.
        secret: opt Secret = None;
        /// Tunnel authentication: `none` (default), `simple`, `challenge`
        /// (needs `secret`).
        auth_mode: val AuthMode = AuthMode::None;
        /// Hide AVPs that may be hidden (needs `secret`). Default false.
        hide_avps: val bool = false;
        /// Idle time after which we send HELLO (std Duration; config accepts
        /// "60s" / seconds). Zero disables. Default 60 s.
        hello_timeout: val Duration as ConfigDuration = Duration::from_secs(60);
        /// Initial control-message retransmission timeout, doubled on each
        /// retry (std Duration; config accepts "500ms" / seconds). Default 1 s.
        retry_timeout: val Duration as ConfigDuration = Duration::from_secs(1);
        /// Cap of the doubled retransmission timeout, at least
        /// `retry_timeout` (std Duration; config accepts "8s" / seconds).
        /// Default 8 s.
        retry_max_timeout: val Duration as ConfigDuration = Duration::from_secs(8);
        /// Retransmissions of a control message before the tunnel is torn
        /// down. At least 1; default 5.
        max_retries: val u32 = 5;
        /// Receive Window Size we advertise (messages). 4..=65535; default 64
        /// (RFC 2661 §5.8: never less than 4).
        rx_window_size: val u16 = 64;
        /// Upper bound on the send window we use even if the peer advertises
        /// more (messages). 1..=65535; default 64.
        tx_window_size: val u16 = 64;
        /// Framing Capabilities we advertise. Default both.
        framing_caps: val FramingCaps = FramingCaps::default();
        /// Bearer Capabilities we advertise. Default both.
        bearer_caps: val BearerCaps = BearerCaps::default();
        /// Send a Tie Breaker AVP in SCCRQ. Default false.
        use_tiebreaker: val bool = false;
        /// UDP checksums on data packets. Default true.
        use_udp_checksums: val bool = true;
        /// Tear the tunnel down after it has had no sessions for this long
        /// (std Duration; config accepts "5m" / seconds). Zero disables
        /// (default).
        idle_timeout: val Duration as ConfigDuration = Duration::ZERO;
        /// Most sessions in this tunnel; 0 = no limit (default).
        max_sessions: val u32 = 0;
        /// MTU of the tunnel's data path in bytes (at least 68). Default 1460.
        mtu: val u16 = 1460;
        /// Peer's UDP port for tunnels we create. Default 1701. Ignored for
        /// incoming tunnels (the reply goes to the source port).
        peer_udp_port: val u16 = 1701;
        /// Our UDP port for this tunnel (RFC 2661 §8.1: either side may use
        /// any port). `None` (default): the listening port, `[system]
        /// udp_port`, shared by the tunnels' sockets; `0`: an ephemeral port
        /// of the tunnel's own, chosen by the kernel (a tunnel set up by a
        /// peer answers its SCCRQ from it); another value: that port.
        our_udp_port: opt u16 = None;
        /// Session profile for sessions in this tunnel. `None`: the peer
        /// profile's session profile.
        session_profile_name: opt String = None;
        /// PPP profile for sessions in this tunnel unless the session (or
        /// its session profile) names one. `None`: the peer profile's.
        ppp_profile_name: opt String = None;
    }
}

params! {
    /// Effective parameters of one session (OpenL2TP session-profile
    /// parameters), after inheritance.
    pub struct SessionParams;
    /// A `[session_profile.NAME]` table, or the session-profile keys of a
    /// `[tunnel.T.session.NAME]` table, as written.
    pub struct SessionSettings;
    {
        /// PPP profile for this session. `None`: the tunnel's, else the peer
        /// profile's.
        ppp_profile_name: opt String = None;
        /// Require the peer to use sequence numbers on data. Default false.
        sequencing_required: val bool = false;
        /// Send sequence numbers on data packets. Default false.
        use_sequence_numbers: val bool = false;
        /// How long out-of-order data packets are held for reordering (std
        /// Duration; config accepts "100ms" / seconds). Zero: no reordering
        /// (default).
        reorder_timeout: val Duration as ConfigDuration = Duration::ZERO;
        /// Framing Type: `sync`, `async` or `any` (default).
        framing_type: val FramingType = FramingType::Any;
        /// Bearer Type: `digital`, `analog` or `any` (default).
        bearer_type: val BearerType = BearerType::Any;
        /// Minimum BPS (bits/s) for outgoing calls. Default 0.
        minimum_bps: val u32 = 0;
        /// Maximum BPS (bits/s) for outgoing calls; 0 = no limit (default).
        maximum_bps: val u32 = 0;
        /// (Tx) Connect Speed we report, bits/s. Default 1 000 000.
        tx_connect_speed: val u32 = 1_000_000;
        /// Rx Connect Speed we report, bits/s; 0 = not sent (default).
        rx_connect_speed: val u32 = 0;
        /// Calling Number AVP.
        calling_number: opt String = None;
        /// Called Number AVP.
        called_number: opt String = None;
        /// Sub-Address AVP.
        sub_address: opt String = None;
    }
}

params! {
    /// Effective PPP parameters of one session (OpenL2TP ppp-profile
    /// parameters), after inheritance; turned into pppd options by
    /// [`PppParams::pppd_args`].
    pub struct PppParams;
    /// A `[ppp_profile.NAME]` table, or a `[tunnel.T.session.S.ppp]` table,
    /// as written.
    pub struct PppSettings;
    {
        /// Interface MTU in bytes (pppd `mtu`; at least 128). Default 1500.
        mtu: val u16 = 1500;
        /// Interface MRU in bytes (pppd `mru`; at least 128). Default 1500.
        mru: val u16 = 1500;
        /// Our IPv4 address on the PPP link.
        local_ipaddr: opt Ipv4Addr = None;
        /// The single IPv4 address an LNS gives the peer. Takes precedence
        /// over `ip_pool`.
        remote_ipaddr: opt Ipv4Addr = None;
        /// IPv4 range an LNS assigns peer addresses from (`"a.b.c.d-e.f.g.h"`).
        ip_pool: opt IpPool = None;
        /// Primary DNS server offered to the peer (pppd `ms-dns`).
        dns_ipaddr_pri: opt Ipv4Addr = None;
        /// Secondary DNS server offered to the peer (pppd `ms-dns`).
        dns_ipaddr_sec: opt Ipv4Addr = None;
        /// Primary WINS server offered to the peer (pppd `ms-wins`).
        wins_ipaddr_pri: opt Ipv4Addr = None;
        /// Secondary WINS server offered to the peer (pppd `ms-wins`).
        wins_ipaddr_sec: opt Ipv4Addr = None;
        /// PAP may be used (in either direction). Default true; false adds
        /// `refuse-pap`.
        auth_pap: val bool = true;
        /// CHAP (MD5) may be used. Default true; false adds `refuse-chap`.
        auth_chap: val bool = true;
        /// MS-CHAPv1 may be used. Default true; false adds `refuse-mschap`.
        auth_mschapv1: val bool = true;
        /// MS-CHAPv2 may be used. Default true; false adds `refuse-mschap-v2`.
        auth_mschapv2: val bool = true;
        /// EAP may be used. Default true; false adds `refuse-eap`.
        auth_eap: val bool = true;
        /// The link may come up without the peer authenticating (pppd
        /// `noauth`). Default true. No effect when `auth_peer` is set.
        auth_none: val bool = true;
        /// Require the peer to authenticate to us with one of the allowed
        /// methods (pppd `auth` + `require-…`). Default false.
        auth_peer: val bool = false;
        /// LCP echo request interval (std Duration, whole seconds; config
        /// accepts "30s" / seconds). Zero disables (default).
        lcp_echo_interval: val Duration as ConfigDuration = Duration::ZERO;
        /// Unanswered LCP echoes before the link is declared dead; 0 = never
        /// (default).
        lcp_echo_fail_count: val u32 = 0;
        /// Disconnect after the link has been idle this long (pppd `idle`;
        /// std Duration, whole seconds; config accepts "10m" / seconds).
        /// Zero disables (default).
        idle_timeout: val Duration as ConfigDuration = Duration::ZERO;
        /// Disconnect after the link has been up this long (pppd
        /// `maxconnect`; std Duration, whole seconds). Zero disables (default).
        max_connect_time: val Duration as ConfigDuration = Duration::ZERO;
        /// Add a default route through the link (pppd `defaultroute`).
        /// Default false (nothing emitted).
        default_route: val bool = false;
        /// Proxy-ARP for the peer's address (pppd `proxyarp`). Default false.
        proxy_arp: val bool = false;
        /// Allow PPP multilink (pppd `multilink`). Default false.
        multilink: val bool = false;
        /// Our name for authentication (pppd `name`).
        local_name: opt String = None;
        /// The peer's name for authentication (pppd `remotename`).
        remote_name: opt String = None;
        /// User name we authenticate with (pppd `user`).
        user_name: opt String = None;
        /// Password we authenticate with (pppd `password`; visible in the
        /// process list: prefer the secrets files where that matters).
        user_password: opt Secret = None;
        /// Extra pppd options appended verbatim.
        pppd_options: val Vec<String> = Vec::new();
        /// A pppd options file read last (pppd `file <path>`); absolute path.
        options_file: opt PathBuf = None;
        /// Check the peer's credentials (PAP, CHAP, MS-CHAP, MS-CHAPv2)
        /// against a RADIUS server instead of pppd's secrets files, take
        /// its address from the Access-Accept's `Framed-IP-Address`, and
        /// send accounting Start and Stop records (pppd `plugin
        /// radius.so`, pppd-radius(8)). Needs `auth_peer = true` and
        /// `auth_eap = false` (radius.so does not check EAP). Default false.
        radius: val bool = false;
        /// The radiusclient configuration file radius.so reads (pppd
        /// `radius-config-file`): servers, dictionary, timeouts; absolute
        /// path of an existing file. Needs `radius`. Default: none
        /// (radius.so reads `/etc/radiusclient/radiusclient.conf`).
        radius_config_file: opt PathBuf = None;
        /// Attribute-value pairs, each `"Attribute-Name=value"` (names from
        /// the radiusclient dictionary), added to every RADIUS request
        /// (pppd `avpair`, once per entry). Needs `radius`. Default empty.
        radius_avpairs: val Vec<String> = Vec::new();
        /// Also load `radattr.so` (pppd-radattr(8)): the Access-Accept's
        /// attributes are written to `/var/run/radattr.pppN` for ip-up and
        /// ip-down scripts. Needs `radius`. Default false.
        radattr: val bool = false;
    }
}

params! {
    /// Effective parameters of one peer profile (after inheriting from the
    /// `default` peer profile, except `peer_addr` and `host_name`).
    pub struct PeerParams;
    /// A `[peer_profile.NAME]` table as written.
    pub struct PeerSettings;
    {
        /// Source addresses this profile matches for incoming tunnels: a
        /// prefix (`"192.0.2.0/24"`, `"2001:db8::/32"`) or one address.
        peer_addr: opt IpPrefix = None;
        /// Host Name AVP (SCCRQ) this profile matches, ASCII
        /// case-insensitively; takes precedence over `peer_addr` matches.
        host_name: opt String = None;
        /// Roles we take with this peer: `lac`, `lns`, `lac_lns` (default).
        lac_lns: val LacLns = LacLns::LacLns;
        /// Tunnel profile for tunnels with this peer. Default `"default"`.
        tunnel_profile_name: val String = "default".to_owned();
        /// Session profile for sessions with this peer. Default `"default"`.
        session_profile_name: val String = "default".to_owned();
        /// PPP profile for sessions with this peer. Default `"default"`.
        ppp_profile_name: val String = "default".to_owned();
    }
}

fn nul_check(
    out: &mut Vec<Problem>,
    keys: &'static [&'static str],
    what: &str,
    value: Option<&str>,
) {
    if let Some(v) = value {
        if v.contains('\0') {
            out.push(problem(
                keys,
                format!("{what} must not contain a NUL character"),
            ));
        }
    }
}

impl SystemConfig {
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.listen_addr.is_multicast() {
            out.push(problem(
                &["listen_addr"],
                "listen_addr must not be a multicast address",
            ));
        }
        if self.pppd_path.as_os_str().is_empty() {
            out.push(problem(&["pppd_path"], "pppd_path must not be empty"));
        }
        if !(-20..=19).contains(&self.pppd_nice) {
            out.push(problem(&["pppd_nice"], "pppd_nice must be in -20..=19"));
        }
        if self.tunnel_establish_timeout.is_zero() {
            out.push(problem(&["tunnel_establish_timeout"], "must be above zero"));
        }
        if self.session_establish_timeout.is_zero() {
            out.push(problem(
                &["session_establish_timeout"],
                "must be above zero",
            ));
        }
        if let Some(f) = &self.secrets_file {
            if f.as_os_str().is_empty() {
                out.push(problem(&["secrets_file"], "secrets_file must not be empty"));
            }
            nul_check(&mut out, &["secrets_file"], "secrets_file", f.to_str());
        }
        if let Some(f) = &self.state_file {
            nul_check(&mut out, &["state_file"], "state_file", f.to_str());
        }
        nul_check(
            &mut out,
            &["api_socket"],
            "api_socket",
            self.api_socket.to_str(),
        );
        if self.api_group.as_deref() == Some("") {
            out.push(problem(&["api_group"], "api_group must not be empty"));
        }
        if self.api_readonly_group.as_deref() == Some("") {
            out.push(problem(
                &["api_readonly_group"],
                "api_readonly_group must not be empty",
            ));
        }
        nul_check(
            &mut out,
            &["api_group"],
            "api_group",
            self.api_group.as_deref(),
        );
        nul_check(
            &mut out,
            &["api_readonly_group"],
            "api_readonly_group",
            self.api_readonly_group.as_deref(),
        );
        if let Some(a) = self.metrics_listen
            && a.ip().is_multicast()
        {
            out.push(problem(
                &["metrics_listen"],
                "metrics_listen must not be a multicast address",
            ));
        }
        if !(1..=4096).contains(&self.api_max_connections) {
            out.push(problem(
                &["api_max_connections"],
                "api_max_connections must be between 1 and 4096",
            ));
        }
        out
    }
}

impl TunnelParams {
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.host_name.as_deref() == Some("") {
            out.push(problem(&["host_name"], "host_name must not be empty"));
        }
        if self.secret.as_ref().is_some_and(Secret::is_empty) {
            out.push(problem(&["secret"], "secret must not be empty"));
        }
        if self.auth_mode == AuthMode::Challenge && self.secret.is_none() {
            out.push(problem(
                &["auth_mode", "secret"],
                "auth_mode = \"challenge\" needs a tunnel secret",
            ));
        }
        if self.hide_avps && self.secret.is_none() {
            out.push(problem(
                &["hide_avps", "secret"],
                "hide_avps = true needs a tunnel secret",
            ));
        }
        if self.retry_timeout.is_zero() {
            out.push(problem(
                &["retry_timeout"],
                "retry_timeout must be above zero",
            ));
        }
        if self.retry_max_timeout < self.retry_timeout {
            out.push(problem(
                &["retry_max_timeout", "retry_timeout"],
                format!(
                    "retry_max_timeout ({}) is below retry_timeout ({})",
                    crate::values::format_duration(self.retry_max_timeout),
                    crate::values::format_duration(self.retry_timeout),
                ),
            ));
        }
        if self.max_retries == 0 {
            out.push(problem(&["max_retries"], "max_retries must be at least 1"));
        }
        if self.rx_window_size < 4 {
            out.push(problem(
                &["rx_window_size"],
                "rx_window_size must be at least 4 (RFC 2661 §5.8)",
            ));
        }
        if self.tx_window_size == 0 {
            out.push(problem(
                &["tx_window_size"],
                "tx_window_size must be at least 1",
            ));
        }
        if self.mtu < 68 {
            out.push(problem(&["mtu"], "mtu must be at least 68"));
        }
        if self.peer_udp_port == 0 {
            out.push(problem(&["peer_udp_port"], "peer_udp_port must not be 0"));
        }
        out
    }
}

impl SessionParams {
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.maximum_bps != 0 && self.minimum_bps > self.maximum_bps {
            out.push(problem(
                &["minimum_bps", "maximum_bps"],
                format!(
                    "minimum_bps ({}) is above maximum_bps ({})",
                    self.minimum_bps, self.maximum_bps
                ),
            ));
        }
        out
    }
}

impl PppParams {
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.mtu < 128 {
            out.push(problem(
                &["mtu"],
                "mtu must be at least 128 (pppd's minimum)",
            ));
        }
        if self.mru < 128 {
            out.push(problem(
                &["mru"],
                "mru must be at least 128 (pppd's minimum)",
            ));
        }
        for (key, d) in [
            (&["lcp_echo_interval"], self.lcp_echo_interval),
            (&["idle_timeout"], self.idle_timeout),
            (&["max_connect_time"], self.max_connect_time),
        ] as [(&'static [&'static str], Duration); 3]
        {
            if d.subsec_nanos() != 0 {
                out.push(problem(
                    key,
                    "must be a whole number of seconds (pppd's unit)",
                ));
            }
        }
        if self.auth_peer
            && !(self.auth_pap
                || self.auth_chap
                || self.auth_mschapv1
                || self.auth_mschapv2
                || self.auth_eap)
        {
            out.push(problem(
                &["auth_peer"],
                "auth_peer = true but every method (auth_pap, auth_chap, auth_mschapv1, \
                 auth_mschapv2, auth_eap) is disabled",
            ));
        }
        if let (Some(local), Some(pool)) = (self.local_ipaddr, self.ip_pool) {
            if pool.contains(IpAddr::V4(local)) {
                out.push(problem(
                    &["ip_pool", "local_ipaddr"],
                    format!("ip_pool {pool} contains our own local_ipaddr {local}"),
                ));
            }
        }
        if self.local_ipaddr.is_some() && self.local_ipaddr == self.remote_ipaddr {
            out.push(problem(
                &["remote_ipaddr", "local_ipaddr"],
                "remote_ipaddr equals local_ipaddr",
            ));
        }
        if let Some(file) = &self.options_file {
            if !file.is_absolute() {
                out.push(problem(
                    &["options_file"],
                    "options_file must be an absolute path",
                ));
            }
            nul_check(&mut out, &["options_file"], "options_file", file.to_str());
        }
        nul_check(
            &mut out,
            &["local_name"],
            "local_name",
            self.local_name.as_deref(),
        );
        nul_check(
            &mut out,
            &["remote_name"],
            "remote_name",
            self.remote_name.as_deref(),
        );
        nul_check(
            &mut out,
            &["user_name"],
            "user_name",
            self.user_name.as_deref(),
        );
        nul_check(
            &mut out,
            &["user_password"],
            "user_password",
            self.user_password.as_ref().map(Secret::expose),
        );
        self.radius_problems(&mut out);
        for opt in &self.pppd_options {
            if opt.is_empty() {
                out.push(problem(
                    &["pppd_options"],
                    "pppd_options entries must not be empty",
                ));
            }
            nul_check(
                &mut out,
                &["pppd_options"],
                "pppd_options entries",
                Some(opt),
            );
        }
        out
    }

    /// Problems of the RADIUS keys (`radius`, `radius_config_file`,
    /// `radius_avpairs`, `radattr`). Checks that the configuration file
    /// exists, so the result depends on the file system.
    fn radius_problems(&self, out: &mut Vec<Problem>) {
        if !self.radius {
            for (set, keys, key) in [
                (
                    self.radius_config_file.is_some(),
                    &["radius_config_file", "radius"] as &'static [&'static str],
                    "radius_config_file",
                ),
                (
                    !self.radius_avpairs.is_empty(),
                    &["radius_avpairs", "radius"],
                    "radius_avpairs",
                ),
                (self.radattr, &["radattr", "radius"], "radattr = true"),
            ] {
                if set {
                    out.push(problem(keys, format!("{key} needs radius = true")));
                }
            }
        } else {
            if !self.auth_peer {
                out.push(problem(
                    &["radius", "auth_peer"],
                    "radius = true needs auth_peer = true (pppd asks RADIUS only about a \
                     peer it requires to authenticate)",
                ));
            } else if self.auth_eap {
                out.push(problem(
                    &["auth_eap", "radius"],
                    "radius = true needs auth_eap = false (radius.so checks PAP, CHAP, \
                     MS-CHAP and MS-CHAPv2, not EAP, which pppd would prefer)",
                ));
            }
            for (plugin, on) in [("radius.so", true), ("radattr.so", self.radattr)] {
                let twice = self
                    .pppd_options
                    .iter()
                    .any(|o| o == plugin || o.ends_with(&format!("/{plugin}")));
                if on && twice {
                    out.push(problem(
                        &["pppd_options"],
                        format!(
                            "pppd_options loads {plugin}, which the radius keys load \
                             already (pppd would load it twice)"
                        ),
                    ));
                }
            }
        }
        if let Some(file) = &self.radius_config_file {
            if file.to_string_lossy().contains('\0') {
                out.push(problem(
                    &["radius_config_file"],
                    "radius_config_file must not contain a NUL character",
                ));
            } else if !file.is_absolute() {
                out.push(problem(
                    &["radius_config_file"],
                    "radius_config_file must be an absolute path",
                ));
            } else {
                match std::fs::metadata(file) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => out.push(problem(
                        &["radius_config_file"],
                        format!(
                            "radius_config_file {} is not a regular file",
                            file.display()
                        ),
                    )),
                    Err(e) => out.push(problem(
                        &["radius_config_file"],
                        format!("radius_config_file {}: {e}", file.display()),
                    )),
                }
            }
        }
        for av in &self.radius_avpairs {
            let name = av.split_once('=').map(|(n, _)| n);
            let good_name = name.is_some_and(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            if !good_name || av.chars().any(char::is_control) {
                out.push(problem(
                    &["radius_avpairs"],
                    "radius_avpairs entries must be \"Attribute-Name=value\" (a name of \
                     letters, digits, '-' and '_'; no control characters)",
                ));
                break;
            }
        }
    }

    /// The pppd command-line arguments for this profile, excluding the
    /// plugin / file-descriptor / tunnel-and-session-id part the daemon adds.
    ///
    /// `lns` is the role of our side of the session ([`crate::SessionType::is_lns`]);
    /// `remote` is the address the LNS assigned to the peer (from `ip_pool`
    /// or `remote_ipaddr`); when `None`, `remote_ipaddr` is used if set.
    ///
    /// Emitted, in this order:
    /// - `mtu N`, `mru N` always;
    /// - `LOCAL:REMOTE` when `local_ipaddr` or a remote address is known
    ///   (either side may be empty, as pppd allows);
    /// - LAC side only: `ipcp-accept-local`, `ipcp-accept-remote` (the LNS
    ///   decides the addresses);
    /// - `ms-dns A` for `dns_ipaddr_pri`/`_sec`, `ms-wins A` for
    ///   `wins_ipaddr_pri`/`_sec` (pppd sends them when the peer asks);
    /// - authentication: with `auth_peer`: `auth` and `require-pap`,
    ///   `require-chap`, `require-mschap`, `require-mschap-v2`, `require-eap`
    ///   for each allowed method; otherwise `noauth` if `auth_none`; then
    ///   `refuse-…` for each method that is not allowed;
    /// - `lcp-echo-interval N` / `lcp-echo-failure N` when non-zero (seconds);
    /// - `idle N`, `maxconnect N` when non-zero (seconds);
    /// - `defaultroute`, `proxyarp`, `multilink` when true (nothing when
    ///   false, so an options file may still enable them);
    /// - `name`, `remotename`, `user`, `password` with their values when set;
    /// - with `radius`: `plugin radius.so`, then `radius-config-file PATH`
    ///   when set, `avpair A=V` per `radius_avpairs` entry, and `plugin
    ///   radattr.so` with `radattr` (after radius.so, whose symbols it
    ///   uses; pppd reads a plugin's options only once it is loaded);
    /// - `pppd_options`, which win: a generated option that `pppd_options`
    ///   also gives (`mtu 1400` over the generated `mtu 1500`, `noauth`
    ///   over a generated `noauth` or `auth`) is left out, and a flag
    ///   repeated in `pppd_options` is passed once (see [`dedup_pppd`]);
    /// - `file PATH` for `options_file`.
    pub fn pppd_args(&self, lns: bool, remote: Option<Ipv4Addr>) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        fn push(a: &mut Vec<String>, items: &[&str]) {
            a.extend(items.iter().map(|s| (*s).to_owned()));
        }
        push(&mut a, &["mtu", &self.mtu.to_string()]);
        push(&mut a, &["mru", &self.mru.to_string()]);

        let remote = remote.or(self.remote_ipaddr);
        if self.local_ipaddr.is_some() || remote.is_some() {
            let l = self.local_ipaddr.map(|x| x.to_string()).unwrap_or_default();
            let r = remote.map(|x| x.to_string()).unwrap_or_default();
            a.push(format!("{l}:{r}"));
        }
        if !lns {
            push(&mut a, &["ipcp-accept-local", "ipcp-accept-remote"]);
        }
        for dns in [self.dns_ipaddr_pri, self.dns_ipaddr_sec]
            .into_iter()
            .flatten()
        {
            push(&mut a, &["ms-dns", &dns.to_string()]);
        }
        for wins in [self.wins_ipaddr_pri, self.wins_ipaddr_sec]
            .into_iter()
            .flatten()
        {
            push(&mut a, &["ms-wins", &wins.to_string()]);
        }

        let methods = [
            (self.auth_pap, "pap"),
            (self.auth_chap, "chap"),
            (self.auth_mschapv1, "mschap"),
            (self.auth_mschapv2, "mschap-v2"),
            (self.auth_eap, "eap"),
        ];
        if self.auth_peer {
            a.push("auth".to_owned());
            for (_, m) in methods.iter().filter(|(on, _)| *on) {
                a.push(format!("require-{m}"));
            }
        } else if self.auth_none {
            a.push("noauth".to_owned());
        }
        for (_, m) in methods.iter().filter(|(on, _)| !*on) {
            a.push(format!("refuse-{m}"));
        }

        if !self.lcp_echo_interval.is_zero() {
            push(
                &mut a,
                &[
                    "lcp-echo-interval",
                    &self.lcp_echo_interval.as_secs().to_string(),
                ],
            );
        }
        if self.lcp_echo_fail_count != 0 {
            push(
                &mut a,
                &["lcp-echo-failure", &self.lcp_echo_fail_count.to_string()],
            );
        }
        if !self.idle_timeout.is_zero() {
            push(&mut a, &["idle", &self.idle_timeout.as_secs().to_string()]);
        }
        if !self.max_connect_time.is_zero() {
            push(
                &mut a,
                &["maxconnect", &self.max_connect_time.as_secs().to_string()],
            );
        }
        if self.default_route {
            a.push("defaultroute".to_owned());
        }
        if self.proxy_arp {
            a.push("proxyarp".to_owned());
        }
        if self.multilink {
            a.push("multilink".to_owned());
        }
        if let Some(v) = &self.local_name {
            push(&mut a, &["name", v]);
        }
        if let Some(v) = &self.remote_name {
            push(&mut a, &["remotename", v]);
        }
        if let Some(v) = &self.user_name {
            push(&mut a, &["user", v]);
        }
        if let Some(v) = &self.user_password {
            push(&mut a, &["password", v.expose()]);
        }
        if self.radius {
            push(&mut a, &["plugin", "radius.so"]);
            if let Some(f) = &self.radius_config_file {
                a.push("radius-config-file".to_owned());
                a.push(f.to_string_lossy().into_owned());
            }
            for av in &self.radius_avpairs {
                push(&mut a, &["avpair", av]);
            }
            if self.radattr {
                push(&mut a, &["plugin", "radattr.so"]);
            }
        }
        let mut a = dedup_pppd(&a, &self.pppd_options);
        if let Some(f) = &self.options_file {
            a.push("file".to_owned());
            a.push(f.to_string_lossy().into_owned());
        }
        a
    }
}

/// pppd options (pppd(8)) that l2tpd generates and that take one value.
const PPPD_VALUE_OPTIONS: &[&str] = &[
    "mtu",
    "mru",
    "lcp-echo-interval",
    "lcp-echo-failure",
    "idle",
    "maxconnect",
    "name",
    "remotename",
    "user",
    "password",
];

/// pppd flags (no value) that may be given once only to matter; `auth` and
/// `noauth` count as one.
fn pppd_flag(opt: &str) -> Option<&str> {
    const FLAGS: &[&str] = &[
        "debug",
        "noccp",
        "nodefaultroute",
        "defaultroute",
        "proxyarp",
        "noproxyarp",
        "multilink",
        "ipcp-accept-local",
        "ipcp-accept-remote",
        "lock",
        "nolock",
        "crtscts",
        "noipdefault",
        "usepeerdns",
        "nodetach",
    ];
    match opt {
        "auth" | "noauth" => Some("auth"),
        o if o.starts_with("require-") || o.starts_with("refuse-") => Some(o),
        o => FLAGS.contains(&o).then_some(o),
    }
}

/// `generated` then `extra` (the operator's `pppd_options`), without the
/// repeats that make pppd's command line confusing (`noauth noauth`, `mtu
/// 1500 … mtu 1400`): a generated option also in `extra` is dropped (the
/// operator's wins), and a known flag repeated in `extra` is kept once.
/// Options this does not know are passed as they are.
fn dedup_pppd(generated: &[String], extra: &[String]) -> Vec<String> {
    use std::collections::HashSet;
    let mut given: HashSet<&str> = HashSet::new();
    let mut it = extra.iter();
    while let Some(o) = it.next() {
        if PPPD_VALUE_OPTIONS.contains(&o.as_str()) {
            given.insert(o);
            it.next();
        } else if let Some(f) = pppd_flag(o) {
            given.insert(f);
        }
    }
    let mut out = Vec::with_capacity(generated.len() + extra.len());
    let mut it = generated.iter();
    while let Some(o) = it.next() {
        if PPPD_VALUE_OPTIONS.contains(&o.as_str()) {
            let value = it.next();
            if !given.contains(o.as_str()) {
                out.push(o.clone());
                out.extend(value.cloned());
            }
        } else if !pppd_flag(o).is_some_and(|f| given.contains(f)) {
            out.push(o.clone());
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut it = extra.iter();
    while let Some(o) = it.next() {
        if PPPD_VALUE_OPTIONS.contains(&o.as_str()) {
            out.push(o.clone());
            out.extend(it.next().cloned());
        } else if pppd_flag(o).is_none() || seen.insert(o) {
            out.push(o.clone());
        }
    }
    out
}

impl PeerParams {
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.host_name.as_deref() == Some("") {
            out.push(problem(&["host_name"], "host_name must not be empty"));
        }
        out
    }
}

#[cfg(test)]
mod pppd_dedup_tests {
    use super::dedup_pppd;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_operators_options_win_and_flags_are_given_once() {
        let generated = v("mtu 1500 mru 1500 198.51.100.1:198.51.100.10 noauth refuse-eap");
        let extra = v(
            "noauth nodefaultroute noccp mtu 1400 mru 1400 debug debug lcp-restart 5 lcp-max-configure 5",
        );
        assert_eq!(
            dedup_pppd(&generated, &extra),
            v(
                "198.51.100.1:198.51.100.10 refuse-eap noauth nodefaultroute noccp mtu 1400 mru 1400 debug lcp-restart 5 lcp-max-configure 5"
            ),
            "unknown options and their values pass as they are"
        );
        // `auth` from the profile and `noauth` from the operator: the operator's.
        assert_eq!(
            dedup_pppd(&v("auth require-chap"), &v("noauth")),
            v("require-chap noauth")
        );
        // Nothing given twice: unchanged.
        assert_eq!(
            dedup_pppd(&v("mtu 1500 noauth"), &v("lock")),
            v("mtu 1500 noauth lock")
        );
        // A value that looks like an option name is a value.
        assert_eq!(
            dedup_pppd(&v("name lns"), &v("user debug")),
            v("name lns user debug")
        );
    }
}
