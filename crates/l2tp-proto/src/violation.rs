//! Typed protocol violations by the peer and the RFC 2661 §4.4.2 Result and
//! Error Codes each one is answered with.

use crate::wire::{CdnResult, ErrorCode, MessageType, StopCcnResult};

/// Something the peer did that RFC 2661 does not allow. A violation in a
/// tunnel message is answered with StopCCN, one in a call message with CDN,
/// each with the codes of [`Violation::stopccn`] / [`Violation::cdn`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// An AVP we do not know with the M bit set (RFC 2661 §4.1).
    #[error("unknown mandatory AVP (vendor {vendor_id}, attribute {attribute}) in {message}")]
    UnknownMandatoryAvp {
        /// The message carrying it.
        message: MessageType,
        /// Its Vendor ID (0 for IETF).
        vendor_id: u16,
        /// Its Attribute Type.
        attribute: u16,
    },
    /// A message type we do not know, with the M bit set (RFC 2661 §3.2).
    #[error("unknown message type {0} with the M bit set")]
    UnknownMandatoryMessage(MessageType),
    /// A message that breaks the AVP rules of RFC 2661 §6 (a mandatory AVP
    /// missing, duplicated or out of place).
    #[error("malformed {message}: {reason}")]
    Malformed {
        /// The message.
        message: MessageType,
        /// What is wrong with it.
        reason: String,
    },
    /// A message that is not allowed in the current state (RFC 2661 §7).
    #[error("{message} unexpected in state {state}")]
    UnexpectedMessage {
        /// The message.
        message: MessageType,
        /// The tunnel or call state it arrived in.
        state: &'static str,
    },
    /// A Protocol Version other than 1.0 (RFC 2661 §4.4.3).
    #[error("protocol version {0}.{1} not supported")]
    UnsupportedVersion(u8, u8),
    /// An AVP whose value has a length RFC 2661 §4.4 does not allow (e.g.
    /// a Challenge of 0 octets: §4.4.3 makes it "one or more octets").
    #[error("{avp} AVP of {len} octets in {message}")]
    AvpLength {
        /// The message carrying it.
        message: MessageType,
        /// The AVP's name.
        avp: &'static str,
        /// Its length, in octets.
        len: usize,
    },
    /// An Assigned Session ID of 0 in ICRQ / OCRQ: RFC 2661 §4.4.3 makes it
    /// a non-zero value (0 in a header means "no session").
    #[error("Assigned Session ID 0 in {0}")]
    ZeroSessionId(MessageType),
    /// Tunnel authentication failed (RFC 2661 §5.1.1): no or a wrong Challenge
    /// Response, or a Challenge we cannot answer without a secret.
    #[error("tunnel authentication failed: {0}")]
    NotAuthorized(&'static str),
}

impl Violation {
    /// The StopCCN Result Code and Error Code that answer this violation in a
    /// tunnel message (RFC 2661 §4.4.2).
    pub fn stopccn(&self) -> (StopCcnResult, Option<ErrorCode>) {
        match self {
            Self::UnknownMandatoryAvp { .. } => (
                StopCcnResult::GENERAL_ERROR,
                Some(ErrorCode::UNKNOWN_MANDATORY_AVP),
            ),
            Self::UnknownMandatoryMessage(_) | Self::Malformed { .. } => (
                StopCcnResult::GENERAL_ERROR,
                Some(ErrorCode::NO_GENERAL_ERROR),
            ),
            Self::UnexpectedMessage { .. } => (StopCcnResult::FSM_ERROR, None),
            // §4.4.2 Error Code 2: "Length is wrong".
            Self::AvpLength { .. } => (StopCcnResult::GENERAL_ERROR, Some(ErrorCode::LENGTH_WRONG)),
            // §4.4.2 Error Code 5: "The Session ID is invalid in this context".
            Self::ZeroSessionId(_) => (
                StopCcnResult::GENERAL_ERROR,
                Some(ErrorCode::INVALID_SESSION_ID),
            ),
            Self::UnsupportedVersion(..) => (StopCcnResult::UNSUPPORTED_VERSION, None),
            Self::NotAuthorized(_) => (StopCcnResult::NOT_AUTHORIZED, None),
        }
    }

    /// The CDN Result Code and Error Code that answer this violation in a call
    /// message (RFC 2661 §4.4.2).
    pub fn cdn(&self) -> (CdnResult, Option<ErrorCode>) {
        match self {
            Self::UnknownMandatoryAvp { .. } => (
                CdnResult::GENERAL_ERROR,
                Some(ErrorCode::UNKNOWN_MANDATORY_AVP),
            ),
            Self::AvpLength { .. } => (CdnResult::GENERAL_ERROR, Some(ErrorCode::LENGTH_WRONG)),
            Self::ZeroSessionId(_) => (
                CdnResult::GENERAL_ERROR,
                Some(ErrorCode::INVALID_SESSION_ID),
            ),
            _ => (CdnResult::GENERAL_ERROR, Some(ErrorCode::NO_GENERAL_ERROR)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc2661_4_4_2() {
        let avp = Violation::UnknownMandatoryAvp {
            message: MessageType::ICRQ,
            vendor_id: 0,
            attribute: 99,
        };
        assert_eq!(avp.stopccn(), (StopCcnResult(2), Some(ErrorCode(8))));
        assert_eq!(avp.cdn(), (CdnResult(2), Some(ErrorCode(8))));
        let fsm = Violation::UnexpectedMessage {
            message: MessageType::ICRQ,
            state: "wait-ctl-conn",
        };
        assert_eq!(fsm.stopccn().0, StopCcnResult(7));
        assert_eq!(
            Violation::UnsupportedVersion(2, 0).stopccn().0,
            StopCcnResult(5)
        );
        assert_eq!(
            Violation::NotAuthorized("wrong Challenge Response")
                .stopccn()
                .0,
            StopCcnResult(4)
        );
        assert_eq!(fsm.to_string(), "ICRQ unexpected in state wait-ctl-conn");
    }
}
