//! RFC 2661 wire format: the L2TP header (§3.1), AVPs (§4.1, §4.4) including
//! hidden AVPs (§4.3), and the per-message structs of §6.
//!
//! Layers:
//! - [`decode_header`] classifies any datagram (control or data).
//! - [`ControlMessage`] is a control message as on the wire: header plus the
//!   AVP list in wire order, M/H flags and Random Vector AVPs included, so
//!   decode → encode reproduces the peer's octets.
//! - [`Message`] is the typed body of a control message; converting from a
//!   [`ControlMessage`] checks the §6 rules (mandatory AVPs present, no
//!   duplicates, no unknown mandatory AVPs).
//!
//! Hiding: [`ControlMessage::decode`] unhides with the tunnel secret;
//! [`ControlMessage::encode`] hides every AVP whose `hidden` flag is set and
//! inserts a Random Vector when needed. The helpers are in [`hidden`].
//!
//! Nothing here panics on any input; all peer data is bounds-checked.

#![warn(missing_docs)]

mod avp;
mod control;
mod error;
mod header;
pub mod hidden;
mod message;
mod types;

pub use avp::{AVP_HEADER_LEN, AVP_MAX_LEN, Avp, AvpValue};
pub use control::{ControlMessage, RANDOM_VECTOR_LEN};
pub use error::{DecodeError, EncodeError, MessageError};
pub use header::{
    CONTROL_HEADER_LEN, ControlHeader, Header, L2TP_VERSION, PacketKind, decode_header,
};
pub use message::{
    Cdn, Iccn, Icrp, Icrq, Message, Occn, Ocrp, Ocrq, Scccn, Sccrp, Sccrq, Sli, StopCcn, Wen,
    mandatory_avps, optional_avps,
};
pub use types::{
    AttributeType, BearerCaps, CallErrors, CdnResult, ErrorCode, FramingCaps, MessageType,
    Q931Cause, ResultCode, SessionId, StopCcnResult, TunnelId, proxy_authen_type,
};
