//! l2tpd's management API: the `io.l2tpd` Varlink interface.
//!
//! The interface description ([`DESCRIPTION`], the file `io.l2tpd.varlink`
//! of this crate) is the contract; this crate holds its types in Rust
//! ([`types`]), its typed errors ([`ApiError`]), the table of methods with
//! their access class ([`METHODS`]) and an async client ([`Client`]) used by
//! `l2tpctl`. The daemon side lives in `l2tpd`.
//!
//! Varlink is JSON over a Unix stream socket, each message ended by a NUL
//! byte: a call is `{"method": "io.l2tpd.TunnelShow", "parameters":
//! {"tunnel": "lac1"}}`, a reply `{"parameters": {...}}` or `{"error":
//! "io.l2tpd.NoSuchTunnel", "parameters": {...}}`. Any Varlink client
//! (`varlinkctl call /run/l2tpd/io.l2tpd.sock io.l2tpd.TunnelList {}`) works.
//!
//! The daemon bounds what a client can make it hold (see MANAGEMENT API
//! LIMITS in `l2tpd.toml(5)`): calls of at most 64 KiB (JSON plus NUL;
//! longer: [`ApiError::RequestTooLarge`]), replies of at most 32 MiB
//! ([`ApiError::ReplyTooLarge`]), string parameters of at most 4096 bytes and
//! names of at most 255, `system.api_max_connections` connections
//! ([`ApiError::TooManyConnections`]), 10 s for a call to arrive whole and
//! for each reply to be read, 60 s without a call.

#![warn(missing_docs)]

mod client;
mod error;
pub mod types;

pub use client::{Client, ClientError};
pub use error::ApiError;

/// The interface name.
pub const INTERFACE: &str = "io.l2tpd";

/// Version of the interface (reported in [`types::SystemInfo::interface_version`]).
pub const INTERFACE_VERSION: u32 = 1;

/// The Varlink interface description (IDL), as served by
/// `org.varlink.service.GetInterfaceDescription`.
pub const DESCRIPTION: &str = include_str!("../io.l2tpd.varlink");

/// Default path of the API socket (`system.api_socket`).
pub const DEFAULT_SOCKET: &str = "/run/l2tpd/io.l2tpd.sock";

/// Whether a method changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads: allowed to `system.api_readonly_group`.
    ReadOnly,
    /// Changes state: root and `system.api_group` only.
    ReadWrite,
}

/// Every method of the interface (without the `io.l2tpd.` prefix) and its access class.
pub const METHODS: &[(&str, Access)] = &[
    ("SystemShow", Access::ReadOnly),
    ("SystemCounters", Access::ReadOnly),
    ("Metrics", Access::ReadOnly),
    ("SystemResetCounters", Access::ReadWrite),
    ("SystemModify", Access::ReadWrite),
    ("SystemReload", Access::ReadWrite),
    ("TunnelList", Access::ReadOnly),
    ("TunnelShow", Access::ReadOnly),
    ("TunnelCreate", Access::ReadWrite),
    ("TunnelModify", Access::ReadWrite),
    ("TunnelDelete", Access::ReadWrite),
    ("SessionList", Access::ReadOnly),
    ("SessionShow", Access::ReadOnly),
    ("SessionCreate", Access::ReadWrite),
    ("SessionModify", Access::ReadWrite),
    ("SessionDelete", Access::ReadWrite),
    ("ProfileList", Access::ReadOnly),
    ("ProfileShow", Access::ReadOnly),
    ("ProfileCreate", Access::ReadWrite),
    ("ProfileModify", Access::ReadWrite),
    ("ProfileDelete", Access::ReadWrite),
    ("Monitor", Access::ReadOnly),
];

/// The access class of a method (name without the interface prefix).
pub fn access(method: &str) -> Option<Access> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, a)| *a)
}

/// OpenL2TP's trace categories, accepted in every `trace_flags` list (plus `all`).
pub const TRACE_FLAGS: &[&str] = &[
    "protocol", "fsm", "api", "avp", "avp_hide", "avp_data", "func", "xprt", "data", "system",
    "ppp",
];

/// The four profile kinds (`tunnel`, `session`, `ppp`, `peer`).
pub const PROFILE_KINDS: &[&str] = &["tunnel", "session", "ppp", "peer"];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method in the table is declared in the IDL and vice versa.
    #[test]
    fn method_table_matches_the_interface_description() {
        let declared: Vec<&str> = DESCRIPTION
            .lines()
            .filter_map(|l| l.strip_prefix("method "))
            .map(|l| l.split('(').next().unwrap_or("").trim())
            .collect();
        let table: Vec<&str> = METHODS.iter().map(|(m, _)| *m).collect();
        assert_eq!(declared, table);
    }

    #[test]
    fn every_error_of_the_idl_is_an_api_error() {
        let declared: Vec<String> = DESCRIPTION
            .lines()
            .filter_map(|l| l.strip_prefix("error "))
            .map(|l| format!("{INTERFACE}.{}", l.split([' ', '(']).next().unwrap_or("")))
            .collect();
        let known: Vec<String> = ApiError::examples()
            .iter()
            .map(|e| e.name().to_owned())
            .filter(|n| n.starts_with(INTERFACE))
            .collect();
        assert_eq!(declared, known);
    }

    #[test]
    fn the_interface_line_names_the_interface() {
        assert!(
            DESCRIPTION
                .lines()
                .any(|l| l == format!("interface {INTERFACE}"))
        );
    }
}
