//! Error type of the crate.

use std::io;
use std::time::Duration;

/// Hint printed with every [`Error::NotSupported`].
pub const MODPROBE_HINT: &str = "load the kernel modules with `modprobe -a l2tp_netlink l2tp_ppp` \
     (kernel options CONFIG_L2TP, CONFIG_PPPOL2TP)";

/// Everything that can go wrong while talking to the kernel.
///
/// Every kernel failure names the operation (e.g. `L2TP_CMD_SESSION_CREATE tunnel 5
/// session 7`) and the errno, so the message alone is enough for an operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The running kernel has no L2TP support: the generic netlink family `l2tp` does
    /// not exist, or `socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP)` fails with
    /// `EAFNOSUPPORT`/`EPROTONOSUPPORT`. The daemon prints this instead of crashing.
    #[error("kernel has no L2TP support: {detail}; {MODPROBE_HINT}")]
    NotSupported {
        /// What exactly was missing, with the errno.
        detail: String,
    },
    /// A kernel request (netlink command, socket call, setsockopt, ioctl) failed.
    /// `cause` carries the errno (`cause.raw_os_error()`).
    #[error("{op}: {cause}")]
    Kernel {
        /// The operation, e.g. `L2TP_CMD_TUNNEL_CREATE tunnel 5`.
        op: String,
        /// The OS error returned by the kernel.
        cause: io::Error,
    },
    /// The kernel answered something this crate could not make sense of.
    #[error("{op}: malformed or unexpected reply from the kernel: {detail}")]
    Protocol {
        /// The operation.
        op: String,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The kernel did not answer (netlink) or a condition was not reached in time
    /// (e.g. [`crate::wait_for_link`]).
    #[error("{op}: timed out after {after:?}")]
    Timeout {
        /// The operation.
        op: String,
        /// How long was waited.
        after: Duration,
    },
    /// The caller passed something that cannot work (e.g. an L2TPv2 id above 65535,
    /// a tunnel id 0, or a non-PPP pseudowire in legacy mode).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// The errno of a [`Error::Kernel`] failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { cause, .. } => cause.raw_os_error(),
            _ => None,
        }
    }

    /// True for [`Error::NotSupported`].
    pub fn is_not_supported(&self) -> bool {
        matches!(self, Self::NotSupported { .. })
    }

    /// Kernel failure from a positive errno.
    pub(crate) fn kernel(op: impl Into<String>, errno: i32) -> Self {
        Self::Kernel {
            op: op.into(),
            cause: io::Error::from_raw_os_error(errno),
        }
    }

    /// Kernel failure from an `io::Error` (usually `io::Error::last_os_error()`).
    pub(crate) fn io(op: impl Into<String>, cause: io::Error) -> Self {
        Self::Kernel {
            op: op.into(),
            cause,
        }
    }

    pub(crate) fn protocol(op: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Protocol {
            op: op.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_message_names_op_and_errno() {
        let e = Error::kernel("L2TP_CMD_SESSION_CREATE tunnel 5 session 7", libc::EEXIST);
        assert_eq!(
            e.to_string(),
            "L2TP_CMD_SESSION_CREATE tunnel 5 session 7: File exists (os error 17)"
        );
        assert_eq!(e.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn not_supported_message_tells_modprobe() {
        let e = Error::NotSupported {
            detail: "generic netlink family \"l2tp\" not found".into(),
        };
        assert!(e.to_string().contains("modprobe -a l2tp_netlink l2tp_ppp"));
        assert!(e.is_not_supported());
    }
}
