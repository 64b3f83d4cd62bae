//! The typed errors of the interface.

use serde::{Deserialize, Serialize};

/// An error reply: `{"error": "io.l2tpd.NAME", "parameters": {...}}`. Every
/// `io.l2tpd` error carries a `description` for a person. The
/// `org.varlink.service` variants are the standard errors the server also
/// sends (a client built on zlink receives those as
/// `zlink::Error::VarlinkService`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", content = "parameters")]
#[non_exhaustive]
pub enum ApiError {
    /// No tunnel with this id or name.
    #[serde(rename = "io.l2tpd.NoSuchTunnel")]
    #[error("{description}")]
    NoSuchTunnel {
        /// The tunnel as given.
        tunnel: String,
        /// For a person.
        description: String,
    },
    /// No session with this id or name in the tunnel.
    #[serde(rename = "io.l2tpd.NoSuchSession")]
    #[error("{description}")]
    NoSuchSession {
        /// The tunnel as given.
        tunnel: String,
        /// The session as given.
        session: String,
        /// For a person.
        description: String,
    },
    /// No profile of this kind and name.
    #[serde(rename = "io.l2tpd.NoSuchProfile")]
    #[error("{description}")]
    NoSuchProfile {
        /// tunnel, session, ppp or peer.
        kind: String,
        /// The profile name.
        name: String,
        /// For a person.
        description: String,
    },
    /// A profile of this kind and name exists already.
    #[serde(rename = "io.l2tpd.ProfileExists")]
    #[error("{description}")]
    ProfileExists {
        /// tunnel, session, ppp or peer.
        kind: String,
        /// The profile name.
        name: String,
        /// For a person.
        description: String,
    },
    /// A tunnel or session of this name exists already.
    #[serde(rename = "io.l2tpd.NameInUse")]
    #[error("{description}")]
    NameInUse {
        /// The name.
        name: String,
        /// For a person.
        description: String,
    },
    /// A parameter, or a settings key as a dotted path, is invalid.
    #[serde(rename = "io.l2tpd.InvalidParameter")]
    #[error("invalid parameter `{parameter}`: {description}")]
    InvalidParameter {
        /// The parameter's name.
        parameter: String,
        /// What is wrong with it.
        description: String,
    },
    /// The caller may not call this method.
    #[serde(rename = "io.l2tpd.PermissionDenied")]
    #[error("{description}")]
    PermissionDenied {
        /// The method called.
        method: String,
        /// For a person.
        description: String,
    },
    /// The configuration (files plus runtime changes) would not be valid.
    #[serde(rename = "io.l2tpd.ConfigInvalid")]
    #[error("{description}:\n{}", errors.join("\n"))]
    ConfigInvalid {
        /// Every problem, each naming file, line and key.
        errors: Vec<String>,
        /// For a person.
        description: String,
    },
    /// The protocol engine refused the operation.
    #[serde(rename = "io.l2tpd.OperationFailed")]
    #[error("{description}")]
    OperationFailed {
        /// For a person.
        description: String,
    },
    /// The call was longer than `limit` bytes; it was read to its end (its
    /// NUL byte) and dropped unparsed. The connection stays usable.
    #[serde(rename = "io.l2tpd.RequestTooLarge")]
    #[error("{description}")]
    RequestTooLarge {
        /// The largest call the server reads, in bytes (JSON text plus NUL).
        limit: u64,
        /// For a person.
        description: String,
    },
    /// The reply would have been longer than `limit` bytes; nothing of it was sent.
    #[serde(rename = "io.l2tpd.ReplyTooLarge")]
    #[error("{description}")]
    ReplyTooLarge {
        /// The largest reply the server sends, in bytes (JSON text plus NUL).
        limit: u64,
        /// For a person.
        description: String,
    },
    /// The server has `limit` connections already; it closes this one.
    #[serde(rename = "io.l2tpd.TooManyConnections")]
    #[error("{description}")]
    TooManyConnections {
        /// The most connections served at once (`system.api_max_connections`).
        limit: u64,
        /// For a person.
        description: String,
    },
    /// `org.varlink.service.MethodNotFound`.
    #[serde(rename = "org.varlink.service.MethodNotFound")]
    #[error("no such method {method}")]
    MethodNotFound {
        /// The method called.
        method: String,
    },
    /// `org.varlink.service.InterfaceNotFound`.
    #[serde(rename = "org.varlink.service.InterfaceNotFound")]
    #[error("no such interface {interface}")]
    InterfaceNotFound {
        /// The interface asked for.
        interface: String,
    },
    /// `org.varlink.service.InvalidParameter`: the call's parameters do not
    /// have the declared shape.
    #[serde(rename = "org.varlink.service.InvalidParameter")]
    #[error("invalid parameter `{parameter}`")]
    VarlinkInvalidParameter {
        /// The parameter's name.
        parameter: String,
    },
    /// `org.varlink.service.ExpectedMore`: the method streams replies and
    /// must be called with `more`.
    #[serde(rename = "org.varlink.service.ExpectedMore")]
    #[error("the method must be called with `more`")]
    ExpectedMore,
}

impl ApiError {
    /// The Varlink error name (`io.l2tpd.NoSuchTunnel`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::NoSuchTunnel { .. } => "io.l2tpd.NoSuchTunnel",
            Self::NoSuchSession { .. } => "io.l2tpd.NoSuchSession",
            Self::NoSuchProfile { .. } => "io.l2tpd.NoSuchProfile",
            Self::ProfileExists { .. } => "io.l2tpd.ProfileExists",
            Self::NameInUse { .. } => "io.l2tpd.NameInUse",
            Self::InvalidParameter { .. } => "io.l2tpd.InvalidParameter",
            Self::PermissionDenied { .. } => "io.l2tpd.PermissionDenied",
            Self::ConfigInvalid { .. } => "io.l2tpd.ConfigInvalid",
            Self::OperationFailed { .. } => "io.l2tpd.OperationFailed",
            Self::RequestTooLarge { .. } => "io.l2tpd.RequestTooLarge",
            Self::ReplyTooLarge { .. } => "io.l2tpd.ReplyTooLarge",
            Self::TooManyConnections { .. } => "io.l2tpd.TooManyConnections",
            Self::MethodNotFound { .. } => "org.varlink.service.MethodNotFound",
            Self::InterfaceNotFound { .. } => "org.varlink.service.InterfaceNotFound",
            Self::VarlinkInvalidParameter { .. } => "org.varlink.service.InvalidParameter",
            Self::ExpectedMore => "org.varlink.service.ExpectedMore",
        }
    }

    /// An `InvalidParameter` error.
    pub fn invalid(parameter: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidParameter {
            parameter: parameter.into(),
            description: description.into(),
        }
    }

    /// An `OperationFailed` error.
    pub fn failed(description: impl Into<String>) -> Self {
        Self::OperationFailed {
            description: description.into(),
        }
    }

    /// One value of each variant, in the order the interface declares them.
    pub fn examples() -> Vec<Self> {
        let s = String::new;
        vec![
            Self::NoSuchTunnel {
                tunnel: s(),
                description: s(),
            },
            Self::NoSuchSession {
                tunnel: s(),
                session: s(),
                description: s(),
            },
            Self::NoSuchProfile {
                kind: s(),
                name: s(),
                description: s(),
            },
            Self::ProfileExists {
                kind: s(),
                name: s(),
                description: s(),
            },
            Self::NameInUse {
                name: s(),
                description: s(),
            },
            Self::InvalidParameter {
                parameter: s(),
                description: s(),
            },
            Self::PermissionDenied {
                method: s(),
                description: s(),
            },
            Self::ConfigInvalid {
                errors: vec![],
                description: s(),
            },
            Self::OperationFailed { description: s() },
            Self::RequestTooLarge {
                limit: 0,
                description: s(),
            },
            Self::ReplyTooLarge {
                limit: 0,
                description: s(),
            },
            Self::TooManyConnections {
                limit: 0,
                description: s(),
            },
            Self::MethodNotFound { method: s() },
            Self::InterfaceNotFound { interface: s() },
            Self::VarlinkInvalidParameter { parameter: s() },
            Self::ExpectedMore,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_a_varlink_error_reply() {
        let e = ApiError::NoSuchTunnel {
            tunnel: "x".into(),
            description: "no tunnel x".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "io.l2tpd.NoSuchTunnel",
                "parameters": {"tunnel": "x", "description": "no tunnel x"}})
        );
        let back: ApiError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn names_match_the_serialized_names() {
        for e in ApiError::examples() {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["error"], e.name());
        }
    }
}
