//! l2tpd configuration: the TOML schema, OpenL2TP-style profile
//! inheritance, and validation whose errors name file, line, column and key.
//!
//! ```toml
//! [system]
//! listen_addr = "192.0.2.1"
//!
//! [tunnel_profile.default]          # modifies the built-in default
//! hello_timeout = "30s"
//!
//! [ppp_profile.lns]
//! local_ipaddr = "198.51.100.1"
//! ip_pool = "198.51.100.10-198.51.100.20"
//!
//! [peer_profile.lacs]
//! peer_addr = "192.0.2.0/24"
//! ppp_profile_name = "lns"
//!
//! [tunnel.lac1]                     # a tunnel we set up
//! peer_addr = "192.0.2.2"
//! secret = "s3cret"
//! [tunnel.lac1.session.s1]
//! session_type = "lac_incoming"
//! [tunnel.lac1.session.s1.ppp]
//! mtu = 1400
//! ```
//!
//! Tables: `[system]` ([`SystemConfig`]), `[tunnel_profile.NAME]`
//! ([`TunnelParams`]), `[session_profile.NAME]` ([`SessionParams`]),
//! `[ppp_profile.NAME]` ([`PppParams`]), `[peer_profile.NAME]`
//! ([`PeerParams`]), `[tunnel.NAME]` (tunnel-profile keys plus `peer_addr`,
//! `our_addr`, `tunnel_profile_name`, `peer_profile_name`, `persist`),
//! `[tunnel.T.session.NAME]` (session-profile keys plus `session_type`,
//! `session_profile_name`) and `[tunnel.T.session.NAME.ppp]` (PPP-profile
//! keys). The built-in `default` profile of each kind always exists; see
//! [`Config`] for the inheritance order.
//!
//! Durations are [`std::time::Duration`]; the file accepts `"500ms"`,
//! `"2s"`, `"1m"` or a bare integer meaning seconds. Unknown keys are
//! errors. [`Config::from_str`] returns every error found at once.
//!
//! Files: [`Config::load`] with [`ConfigPaths::system`] reads
//! `l2tpd.toml` and the `l2tpd.toml.d/*.toml` drop-ins from `/etc/l2tpd`,
//! `/run/l2tpd` and `/usr/lib/l2tpd` (same name: `/etc` wins; empty file
//! or link to `/dev/null`: masked; drop-ins merged in lexical order), with
//! [`ConfigPaths::explicit`] one file and its `FILE.d/`. Secrets may live
//! in `system.secrets_file`, which must be mode 0600 or stricter (see
//! [`Config::load`]). [`Config::to_toml_effective`] prints the effective
//! configuration; [`Config::changes`] compares two for a reload. The man
//! page is `doc/l2tpd.toml.5.md` in the repository.

#![warn(missing_docs)]

mod config;
#[cfg(test)]
mod doc_tests;
mod error;
mod load;
mod params;
mod parse;
mod secrets;
mod values;

pub use config::{
    Config, ConfigChanges, DEFAULT_PROFILE, LocalSession, LocalTunnel, MatchedBy, PeerMatch,
    PeerProfile,
};
pub use error::{ConfigError, ConfigErrors, ErrorKind, Position};
pub use load::{ConfigPaths, DROPIN_DIR_NAME, MAIN_FILE_NAME, SEARCH_DIRS};
pub use params::{
    PeerParams, PeerSettings, PppParams, PppSettings, SessionParams, SessionSettings, SystemConfig,
    SystemSettings, TunnelParams, TunnelSettings,
};
pub use values::{
    AuthMode, BearerCaps, BearerType, ConfigDuration, DataPlaneKind, FramingCaps, FramingType,
    IpPool, IpPrefix, LacLns, Secret, SessionType, format_duration, parse_duration,
};

/// Default path of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/l2tpd/l2tpd.toml";
