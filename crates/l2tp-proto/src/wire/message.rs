//! Typed control messages enforcing RFC 2661 §6 by construction: the AVPs a
//! message MUST carry are plain fields, the ones it MAY carry are `Option`s.

use super::avp::{Avp, AvpValue};
use super::control::ControlMessage;
use super::error::MessageError;
use super::header::ControlHeader;
use super::types::{
    AttributeType, BearerCaps, CallErrors, FramingCaps, MessageType, Q931Cause, ResultCode,
    SessionId, TunnelId,
};

/// Start-Control-Connection-Request (RFC 2661 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sccrq {
    /// Protocol Version (version, revision); L2TPv2 is (1, 0).
    pub protocol_version: (u8, u8),
    /// Host Name of the sender.
    pub host_name: Vec<u8>,
    /// Framing Capabilities.
    pub framing_capabilities: FramingCaps,
    /// Assigned Tunnel ID: the sender's id for the tunnel.
    pub assigned_tunnel_id: TunnelId,
    /// Bearer Capabilities.
    pub bearer_capabilities: Option<BearerCaps>,
    /// Receive Window Size (control messages; 4 if absent, §5.8).
    pub receive_window_size: Option<u16>,
    /// Challenge for tunnel authentication (§5.1.1).
    pub challenge: Option<Vec<u8>>,
    /// Tie Breaker (§4.4.3), resolves simultaneous SCCRQs.
    pub tie_breaker: Option<u64>,
    /// Firmware Revision.
    pub firmware_revision: Option<u16>,
    /// Vendor Name.
    pub vendor_name: Option<Vec<u8>>,
    /// Other tolerated AVPs (unrecognised or out-of-place without M bit).
    pub other: Vec<Avp>,
}

/// Start-Control-Connection-Reply (RFC 2661 §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sccrp {
    /// Protocol Version (version, revision); L2TPv2 is (1, 0).
    pub protocol_version: (u8, u8),
    /// Framing Capabilities.
    pub framing_capabilities: FramingCaps,
    /// Host Name of the sender.
    pub host_name: Vec<u8>,
    /// Assigned Tunnel ID: the sender's id for the tunnel.
    pub assigned_tunnel_id: TunnelId,
    /// Bearer Capabilities.
    pub bearer_capabilities: Option<BearerCaps>,
    /// Firmware Revision.
    pub firmware_revision: Option<u16>,
    /// Vendor Name.
    pub vendor_name: Option<Vec<u8>>,
    /// Receive Window Size.
    pub receive_window_size: Option<u16>,
    /// Challenge for tunnel authentication.
    pub challenge: Option<Vec<u8>>,
    /// Challenge Response to the SCCRQ's challenge (§5.1.1).
    pub challenge_response: Option<[u8; 16]>,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Start-Control-Connection-Connected (RFC 2661 §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Scccn {
    /// Challenge Response to the SCCRP's challenge.
    pub challenge_response: Option<[u8; 16]>,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Stop-Control-Connection-Notification (RFC 2661 §6.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StopCcn {
    /// Assigned Tunnel ID: the sender's id for the tunnel.
    pub assigned_tunnel_id: TunnelId,
    /// Result Code ([`StopCcnResult`](super::StopCcnResult) space).
    pub result_code: ResultCode,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Incoming-Call-Request (RFC 2661 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Icrq {
    /// Assigned Session ID: the sender's id for the session.
    pub assigned_session_id: SessionId,
    /// Call Serial Number.
    pub call_serial_number: u32,
    /// Bearer Type.
    pub bearer_type: Option<BearerCaps>,
    /// Physical Channel ID.
    pub physical_channel_id: Option<u32>,
    /// Calling Number.
    pub calling_number: Option<Vec<u8>>,
    /// Called Number.
    pub called_number: Option<Vec<u8>>,
    /// Sub-Address.
    pub sub_address: Option<Vec<u8>>,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Incoming-Call-Reply (RFC 2661 §6.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Icrp {
    /// Assigned Session ID: the sender's id for the session.
    pub assigned_session_id: SessionId,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Incoming-Call-Connected (RFC 2661 §6.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iccn {
    /// (Tx) Connect Speed, bits per second.
    pub tx_connect_speed: u32,
    /// Framing Type.
    pub framing_type: FramingCaps,
    /// Initial Received LCP CONFREQ (proxy LCP).
    pub initial_received_lcp_confreq: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ (proxy LCP).
    pub last_sent_lcp_confreq: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ (proxy LCP).
    pub last_received_lcp_confreq: Option<Vec<u8>>,
    /// Proxy Authen Type ([`proxy_authen_type`](super::proxy_authen_type)).
    pub proxy_authen_type: Option<u16>,
    /// Proxy Authen Name.
    pub proxy_authen_name: Option<Vec<u8>>,
    /// Proxy Authen Challenge.
    pub proxy_authen_challenge: Option<Vec<u8>>,
    /// Proxy Authen ID.
    pub proxy_authen_id: Option<u16>,
    /// Proxy Authen Response.
    pub proxy_authen_response: Option<Vec<u8>>,
    /// Private Group ID.
    pub private_group_id: Option<Vec<u8>>,
    /// Rx Connect Speed, bits per second.
    pub rx_connect_speed: Option<u32>,
    /// Sequencing Required AVP present.
    pub sequencing_required: bool,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Outgoing-Call-Request (RFC 2661 §6.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ocrq {
    /// Assigned Session ID: the sender's id for the session.
    pub assigned_session_id: SessionId,
    /// Call Serial Number.
    pub call_serial_number: u32,
    /// Minimum BPS.
    pub minimum_bps: u32,
    /// Maximum BPS.
    pub maximum_bps: u32,
    /// Bearer Type.
    pub bearer_type: BearerCaps,
    /// Framing Type.
    pub framing_type: FramingCaps,
    /// Called Number.
    pub called_number: Vec<u8>,
    /// Sub-Address.
    pub sub_address: Option<Vec<u8>>,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Outgoing-Call-Reply (RFC 2661 §6.10).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ocrp {
    /// Assigned Session ID: the sender's id for the session.
    pub assigned_session_id: SessionId,
    /// Physical Channel ID.
    pub physical_channel_id: Option<u32>,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Outgoing-Call-Connected (RFC 2661 §6.11).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Occn {
    /// (Tx) Connect Speed, bits per second.
    pub tx_connect_speed: u32,
    /// Framing Type.
    pub framing_type: FramingCaps,
    /// Rx Connect Speed, bits per second.
    pub rx_connect_speed: Option<u32>,
    /// Sequencing Required AVP present.
    pub sequencing_required: bool,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Call-Disconnect-Notify (RFC 2661 §6.12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cdn {
    /// Result Code ([`CdnResult`](super::CdnResult) space).
    pub result_code: ResultCode,
    /// Assigned Session ID: the sender's id for the session.
    pub assigned_session_id: SessionId,
    /// Q.931 Cause Code.
    pub q931_cause_code: Option<Q931Cause>,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// WAN-Error-Notify (RFC 2661 §6.13).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wen {
    /// Call Errors counters.
    pub call_errors: CallErrors,
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// Set-Link-Info (RFC 2661 §6.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sli {
    /// ACCM as (send, receive).
    pub accm: (u32, u32),
    /// Other tolerated AVPs.
    pub other: Vec<Avp>,
}

/// The body of a control message, typed per RFC 2661 §6. The header (tunnel
/// and session ids, Ns/Nr) stays in [`ControlMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// §6.1.
    Sccrq(Sccrq),
    /// §6.2.
    Sccrp(Sccrp),
    /// §6.3.
    Scccn(Scccn),
    /// §6.4.
    StopCcn(StopCcn),
    /// §6.5. Extra non-mandatory AVPs in a HELLO are dropped.
    Hello,
    /// §6.9.
    Ocrq(Ocrq),
    /// §6.10.
    Ocrp(Ocrp),
    /// §6.11.
    Occn(Occn),
    /// §6.6.
    Icrq(Icrq),
    /// §6.7.
    Icrp(Icrp),
    /// §6.8.
    Iccn(Iccn),
    /// §6.12.
    Cdn(Cdn),
    /// §6.13.
    Wen(Wen),
    /// §6.14.
    Sli(Sli),
}

use AttributeType as A;

/// The AVPs RFC 2661 §6 allows in each message besides Message Type (and
/// Random Vector, allowed everywhere), in canonical order: first the
/// mandatory ones, then the optional ones.
fn allowed(t: MessageType) -> &'static [AttributeType] {
    match t {
        MessageType::SCCRQ => &[
            A::PROTOCOL_VERSION,
            A::HOST_NAME,
            A::FRAMING_CAPABILITIES,
            A::ASSIGNED_TUNNEL_ID,
            A::BEARER_CAPABILITIES,
            A::RECEIVE_WINDOW_SIZE,
            A::CHALLENGE,
            A::TIE_BREAKER,
            A::FIRMWARE_REVISION,
            A::VENDOR_NAME,
        ],
        MessageType::SCCRP => &[
            A::PROTOCOL_VERSION,
            A::FRAMING_CAPABILITIES,
            A::HOST_NAME,
            A::ASSIGNED_TUNNEL_ID,
            A::BEARER_CAPABILITIES,
            A::FIRMWARE_REVISION,
            A::VENDOR_NAME,
            A::RECEIVE_WINDOW_SIZE,
            A::CHALLENGE,
            A::CHALLENGE_RESPONSE,
        ],
        MessageType::SCCCN => &[A::CHALLENGE_RESPONSE],
        MessageType::STOPCCN => &[A::ASSIGNED_TUNNEL_ID, A::RESULT_CODE],
        MessageType::HELLO => &[],
        MessageType::ICRQ => &[
            A::ASSIGNED_SESSION_ID,
            A::CALL_SERIAL_NUMBER,
            A::BEARER_TYPE,
            A::PHYSICAL_CHANNEL_ID,
            A::CALLING_NUMBER,
            A::CALLED_NUMBER,
            A::SUB_ADDRESS,
        ],
        MessageType::ICRP => &[A::ASSIGNED_SESSION_ID],
        MessageType::ICCN => &[
            A::TX_CONNECT_SPEED,
            A::FRAMING_TYPE,
            A::INITIAL_RECEIVED_LCP_CONFREQ,
            A::LAST_SENT_LCP_CONFREQ,
            A::LAST_RECEIVED_LCP_CONFREQ,
            A::PROXY_AUTHEN_TYPE,
            A::PROXY_AUTHEN_NAME,
            A::PROXY_AUTHEN_CHALLENGE,
            A::PROXY_AUTHEN_ID,
            A::PROXY_AUTHEN_RESPONSE,
            A::PRIVATE_GROUP_ID,
            A::RX_CONNECT_SPEED,
            A::SEQUENCING_REQUIRED,
        ],
        MessageType::OCRQ => &[
            A::ASSIGNED_SESSION_ID,
            A::CALL_SERIAL_NUMBER,
            A::MINIMUM_BPS,
            A::MAXIMUM_BPS,
            A::BEARER_TYPE,
            A::FRAMING_TYPE,
            A::CALLED_NUMBER,
            A::SUB_ADDRESS,
        ],
        MessageType::OCRP => &[A::ASSIGNED_SESSION_ID, A::PHYSICAL_CHANNEL_ID],
        MessageType::OCCN => &[
            A::TX_CONNECT_SPEED,
            A::FRAMING_TYPE,
            A::RX_CONNECT_SPEED,
            A::SEQUENCING_REQUIRED,
        ],
        MessageType::CDN => &[A::RESULT_CODE, A::ASSIGNED_SESSION_ID, A::Q931_CAUSE_CODE],
        MessageType::WEN => &[A::CALL_ERRORS],
        MessageType::SLI => &[A::ACCM],
        _ => &[],
    }
}

/// The AVPs RFC 2661 §6 requires in `message` besides Message Type, in
/// canonical order. Empty for HELLO and unknown types.
pub fn mandatory_avps(message: MessageType) -> &'static [AttributeType] {
    let all = allowed(message);
    let n = match message {
        MessageType::SCCRQ | MessageType::SCCRP => 4,
        MessageType::SCCCN | MessageType::HELLO => 0,
        MessageType::STOPCCN => 2,
        MessageType::ICRQ => 2,
        MessageType::ICRP => 1,
        MessageType::ICCN => 2,
        MessageType::OCRQ => 7,
        MessageType::OCRP => 1,
        MessageType::OCCN => 2,
        MessageType::CDN => 2,
        MessageType::WEN | MessageType::SLI => 1,
        _ => 0,
    };
    all.get(..n).unwrap_or(&[])
}

/// The AVPs RFC 2661 §6 allows (but does not require) in `message`, besides
/// Random Vector, in canonical order.
pub fn optional_avps(message: MessageType) -> &'static [AttributeType] {
    let all = allowed(message);
    all.get(mandatory_avps(message).len()..).unwrap_or(&[])
}

/// Attribute types below this have a slot in [`Slots`] (the RFC 2661
/// attributes are 0 to 39); others are kept with the unknown AVPs.
const SLOTS: usize = 40;

/// The allowed AVPs of one message, indexed by attribute type: borrowed
/// from the decoded message, on the stack (no allocation per message), a
/// value cloned only when the typed message takes it.
struct Slots<'a> {
    message: MessageType,
    values: [Option<&'a AvpValue>; SLOTS],
}

impl Slots<'_> {
    fn take(&mut self, attribute: AttributeType) -> Option<AvpValue> {
        self.values
            .get_mut(usize::from(attribute.0))
            .and_then(Option::take)
            .cloned()
    }
    fn missing(&self, attribute: AttributeType) -> MessageError {
        MessageError::MissingAvp {
            message: self.message,
            attribute,
        }
    }
}

/// `take!(slots, ATTR, Variant(x) => expr)`: the optional AVP, typed.
macro_rules! take {
    ($s:ident, $attr:ident, $pat:pat => $out:expr) => {
        match $s.take(A::$attr) {
            Some($pat) => Some($out),
            _ => None,
        }
    };
}

/// `need!(slots, ATTR, Variant(x) => expr)`: the mandatory AVP, typed, or
/// return `MissingAvp`.
macro_rules! need {
    ($s:ident, $attr:ident, $pat:pat => $out:expr) => {
        match take!($s, $attr, $pat => $out) {
            Some(v) => v,
            None => return Err($s.missing(A::$attr)),
        }
    };
}

impl Message {
    /// Typed view of a decoded control message, checking RFC 2661 §6:
    ///
    /// - ZLB → [`MessageError::Zlb`]; first AVP not Message Type →
    ///   `FirstAvpNotMessageType`; unknown type → `UnknownMessageType`.
    /// - Every mandatory AVP present (`MissingAvp`), no AVP the message
    ///   takes twice (`DuplicateAvp`, also for a second Message Type).
    /// - Unrecognised AVPs with the M bit → `UnknownMandatoryAvp`; without
    ///   M bit they are kept in `other`.
    /// - Known AVPs §6 does not list for the message: with M bit →
    ///   `UnexpectedAvp`; without → kept in `other` (peers are sloppy).
    /// - Random Vector AVPs are wire-level detail (hiding) and are dropped;
    ///   M/H flags of the typed AVPs are not kept.
    pub fn from_control(msg: &ControlMessage) -> Result<Self, MessageError> {
        let (first, rest) = msg.avps.split_first().ok_or(MessageError::Zlb)?;
        let message = match first.value {
            AvpValue::MessageType(t) => t,
            _ => return Err(MessageError::FirstAvpNotMessageType),
        };
        if !message.is_known() {
            return Err(MessageError::UnknownMessageType {
                message_type: message,
                mandatory: first.mandatory,
            });
        }
        let allowed = allowed(message);
        let mut slots = Slots {
            message,
            values: [None; SLOTS],
        };
        let mut other = Vec::new();
        for avp in rest {
            let attribute = avp.attribute();
            match &avp.value {
                AvpValue::RandomVector(_) => {}
                AvpValue::MessageType(_) => {
                    return Err(MessageError::DuplicateAvp { message, attribute });
                }
                AvpValue::Unknown { vendor_id, .. } | AvpValue::ReservedBits { vendor_id, .. } => {
                    if avp.mandatory {
                        return Err(MessageError::UnknownMandatoryAvp {
                            message,
                            vendor_id: *vendor_id,
                            attribute,
                        });
                    }
                    other.push(avp.clone());
                }
                value if allowed.contains(&attribute) => {
                    let slot = slots.values.get_mut(usize::from(attribute.0));
                    match slot {
                        Some(Some(_)) => {
                            return Err(MessageError::DuplicateAvp { message, attribute });
                        }
                        Some(s) => *s = Some(value),
                        None => other.push(avp.clone()),
                    }
                }
                _ if avp.mandatory => {
                    return Err(MessageError::UnexpectedAvp { message, attribute });
                }
                _ => other.push(avp.clone()),
            }
        }
        let s = &mut slots;
        use AvpValue as V;
        Ok(match message {
            MessageType::SCCRQ => Self::Sccrq(Sccrq {
                protocol_version: need!(s, PROTOCOL_VERSION, V::ProtocolVersion { version, revision } => (version, revision)),
                host_name: need!(s, HOST_NAME, V::HostName(x) => x),
                framing_capabilities: need!(s, FRAMING_CAPABILITIES, V::FramingCapabilities(x) => x),
                assigned_tunnel_id: need!(s, ASSIGNED_TUNNEL_ID, V::AssignedTunnelId(x) => x),
                bearer_capabilities: take!(s, BEARER_CAPABILITIES, V::BearerCapabilities(x) => x),
                receive_window_size: take!(s, RECEIVE_WINDOW_SIZE, V::ReceiveWindowSize(x) => x),
                challenge: take!(s, CHALLENGE, V::Challenge(x) => x),
                tie_breaker: take!(s, TIE_BREAKER, V::TieBreaker(x) => x),
                firmware_revision: take!(s, FIRMWARE_REVISION, V::FirmwareRevision(x) => x),
                vendor_name: take!(s, VENDOR_NAME, V::VendorName(x) => x),
                other,
            }),
            MessageType::SCCRP => Self::Sccrp(Sccrp {
                protocol_version: need!(s, PROTOCOL_VERSION, V::ProtocolVersion { version, revision } => (version, revision)),
                framing_capabilities: need!(s, FRAMING_CAPABILITIES, V::FramingCapabilities(x) => x),
                host_name: need!(s, HOST_NAME, V::HostName(x) => x),
                assigned_tunnel_id: need!(s, ASSIGNED_TUNNEL_ID, V::AssignedTunnelId(x) => x),
                bearer_capabilities: take!(s, BEARER_CAPABILITIES, V::BearerCapabilities(x) => x),
                firmware_revision: take!(s, FIRMWARE_REVISION, V::FirmwareRevision(x) => x),
                vendor_name: take!(s, VENDOR_NAME, V::VendorName(x) => x),
                receive_window_size: take!(s, RECEIVE_WINDOW_SIZE, V::ReceiveWindowSize(x) => x),
                challenge: take!(s, CHALLENGE, V::Challenge(x) => x),
                challenge_response: take!(s, CHALLENGE_RESPONSE, V::ChallengeResponse(x) => x),
                other,
            }),
            MessageType::SCCCN => Self::Scccn(Scccn {
                challenge_response: take!(s, CHALLENGE_RESPONSE, V::ChallengeResponse(x) => x),
                other,
            }),
            MessageType::STOPCCN => Self::StopCcn(StopCcn {
                assigned_tunnel_id: need!(s, ASSIGNED_TUNNEL_ID, V::AssignedTunnelId(x) => x),
                result_code: need!(s, RESULT_CODE, V::ResultCode(x) => x),
                other,
            }),
            MessageType::HELLO => Self::Hello,
            MessageType::ICRQ => Self::Icrq(Icrq {
                assigned_session_id: need!(s, ASSIGNED_SESSION_ID, V::AssignedSessionId(x) => x),
                call_serial_number: need!(s, CALL_SERIAL_NUMBER, V::CallSerialNumber(x) => x),
                bearer_type: take!(s, BEARER_TYPE, V::BearerType(x) => x),
                physical_channel_id: take!(s, PHYSICAL_CHANNEL_ID, V::PhysicalChannelId(x) => x),
                calling_number: take!(s, CALLING_NUMBER, V::CallingNumber(x) => x),
                called_number: take!(s, CALLED_NUMBER, V::CalledNumber(x) => x),
                sub_address: take!(s, SUB_ADDRESS, V::SubAddress(x) => x),
                other,
            }),
            MessageType::ICRP => Self::Icrp(Icrp {
                assigned_session_id: need!(s, ASSIGNED_SESSION_ID, V::AssignedSessionId(x) => x),
                other,
            }),
            MessageType::ICCN => Self::Iccn(Iccn {
                tx_connect_speed: need!(s, TX_CONNECT_SPEED, V::TxConnectSpeed(x) => x),
                framing_type: need!(s, FRAMING_TYPE, V::FramingType(x) => x),
                initial_received_lcp_confreq: take!(s, INITIAL_RECEIVED_LCP_CONFREQ, V::InitialReceivedLcpConfreq(x) => x),
                last_sent_lcp_confreq: take!(s, LAST_SENT_LCP_CONFREQ, V::LastSentLcpConfreq(x) => x),
                last_received_lcp_confreq: take!(s, LAST_RECEIVED_LCP_CONFREQ, V::LastReceivedLcpConfreq(x) => x),
                proxy_authen_type: take!(s, PROXY_AUTHEN_TYPE, V::ProxyAuthenType(x) => x),
                proxy_authen_name: take!(s, PROXY_AUTHEN_NAME, V::ProxyAuthenName(x) => x),
                proxy_authen_challenge: take!(s, PROXY_AUTHEN_CHALLENGE, V::ProxyAuthenChallenge(x) => x),
                proxy_authen_id: take!(s, PROXY_AUTHEN_ID, V::ProxyAuthenId(x) => x),
                proxy_authen_response: take!(s, PROXY_AUTHEN_RESPONSE, V::ProxyAuthenResponse(x) => x),
                private_group_id: take!(s, PRIVATE_GROUP_ID, V::PrivateGroupId(x) => x),
                rx_connect_speed: take!(s, RX_CONNECT_SPEED, V::RxConnectSpeed(x) => x),
                sequencing_required: take!(s, SEQUENCING_REQUIRED, V::SequencingRequired => ())
                    .is_some(),
                other,
            }),
            MessageType::OCRQ => Self::Ocrq(Ocrq {
                assigned_session_id: need!(s, ASSIGNED_SESSION_ID, V::AssignedSessionId(x) => x),
                call_serial_number: need!(s, CALL_SERIAL_NUMBER, V::CallSerialNumber(x) => x),
                minimum_bps: need!(s, MINIMUM_BPS, V::MinimumBps(x) => x),
                maximum_bps: need!(s, MAXIMUM_BPS, V::MaximumBps(x) => x),
                bearer_type: need!(s, BEARER_TYPE, V::BearerType(x) => x),
                framing_type: need!(s, FRAMING_TYPE, V::FramingType(x) => x),
                called_number: need!(s, CALLED_NUMBER, V::CalledNumber(x) => x),
                sub_address: take!(s, SUB_ADDRESS, V::SubAddress(x) => x),
                other,
            }),
            MessageType::OCRP => Self::Ocrp(Ocrp {
                assigned_session_id: need!(s, ASSIGNED_SESSION_ID, V::AssignedSessionId(x) => x),
                physical_channel_id: take!(s, PHYSICAL_CHANNEL_ID, V::PhysicalChannelId(x) => x),
                other,
            }),
            MessageType::OCCN => Self::Occn(Occn {
                tx_connect_speed: need!(s, TX_CONNECT_SPEED, V::TxConnectSpeed(x) => x),
                framing_type: need!(s, FRAMING_TYPE, V::FramingType(x) => x),
                rx_connect_speed: take!(s, RX_CONNECT_SPEED, V::RxConnectSpeed(x) => x),
                sequencing_required: take!(s, SEQUENCING_REQUIRED, V::SequencingRequired => ())
                    .is_some(),
                other,
            }),
            MessageType::CDN => Self::Cdn(Cdn {
                result_code: need!(s, RESULT_CODE, V::ResultCode(x) => x),
                assigned_session_id: need!(s, ASSIGNED_SESSION_ID, V::AssignedSessionId(x) => x),
                q931_cause_code: take!(s, Q931_CAUSE_CODE, V::Q931CauseCode { cause, msg, advisory } => Q931Cause { cause, msg, advisory }),
                other,
            }),
            MessageType::WEN => Self::Wen(Wen {
                call_errors: need!(s, CALL_ERRORS, V::CallErrors(x) => x),
                other,
            }),
            MessageType::SLI => Self::Sli(Sli {
                accm: need!(s, ACCM, V::Accm { send, receive } => (send, receive)),
                other,
            }),
            _ => {
                return Err(MessageError::UnknownMessageType {
                    message_type: message,
                    mandatory: first.mandatory,
                });
            }
        })
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Sccrq(_) => MessageType::SCCRQ,
            Self::Sccrp(_) => MessageType::SCCRP,
            Self::Scccn(_) => MessageType::SCCCN,
            Self::StopCcn(_) => MessageType::STOPCCN,
            Self::Hello => MessageType::HELLO,
            Self::Ocrq(_) => MessageType::OCRQ,
            Self::Ocrp(_) => MessageType::OCRP,
            Self::Occn(_) => MessageType::OCCN,
            Self::Icrq(_) => MessageType::ICRQ,
            Self::Icrp(_) => MessageType::ICRP,
            Self::Iccn(_) => MessageType::ICCN,
            Self::Cdn(_) => MessageType::CDN,
            Self::Wen(_) => MessageType::WEN,
            Self::Sli(_) => MessageType::SLI,
        }
    }

    /// The tolerated extra AVPs (`other`) of this message; empty for HELLO.
    pub fn other(&self) -> &[Avp] {
        match self {
            Self::Sccrq(m) => &m.other,
            Self::Sccrp(m) => &m.other,
            Self::Scccn(m) => &m.other,
            Self::StopCcn(m) => &m.other,
            Self::Hello => &[],
            Self::Ocrq(m) => &m.other,
            Self::Ocrp(m) => &m.other,
            Self::Occn(m) => &m.other,
            Self::Icrq(m) => &m.other,
            Self::Icrp(m) => &m.other,
            Self::Iccn(m) => &m.other,
            Self::Cdn(m) => &m.other,
            Self::Wen(m) => &m.other,
            Self::Sli(m) => &m.other,
        }
    }

    /// The AVPs of this message in the RFC's canonical order: Message Type
    /// first, then the §6 mandatory AVPs, the optional ones present, then
    /// `other` as stored. M bits as RFC 2661 §4.4 prescribes (see
    /// [`AttributeType::rfc_mandatory`]); no AVP is hidden.
    pub fn to_avps(&self) -> Vec<Avp> {
        self.to_avps_hiding(|_| false)
    }

    /// Like [`to_avps`](Self::to_avps), but sets the H bit on every typed
    /// AVP whose attribute satisfies `hide` and that RFC 2661 allows to be
    /// hidden ([`AttributeType::may_be_hidden`]). Nothing is ever hidden in
    /// an SCCRQ (the peer is not authenticated yet), and `other` AVPs keep
    /// their flags. Encode the result with a secret: [`ControlMessage::encode`]
    /// then inserts the Random Vector.
    pub fn to_avps_hiding(&self, hide: impl Fn(AttributeType) -> bool) -> Vec<Avp> {
        use AvpValue as V;
        let mut v: Vec<AvpValue> = vec![V::MessageType(self.message_type())];
        fn opt<T>(v: &mut Vec<AvpValue>, x: &Option<T>, f: impl FnOnce(T) -> AvpValue)
        where
            T: Clone,
        {
            if let Some(x) = x {
                v.push(f(x.clone()));
            }
        }
        match self {
            Self::Sccrq(m) => {
                v.push(V::ProtocolVersion {
                    version: m.protocol_version.0,
                    revision: m.protocol_version.1,
                });
                v.push(V::HostName(m.host_name.clone()));
                v.push(V::FramingCapabilities(m.framing_capabilities));
                v.push(V::AssignedTunnelId(m.assigned_tunnel_id));
                opt(&mut v, &m.bearer_capabilities, V::BearerCapabilities);
                opt(&mut v, &m.receive_window_size, V::ReceiveWindowSize);
                opt(&mut v, &m.challenge, V::Challenge);
                opt(&mut v, &m.tie_breaker, V::TieBreaker);
                opt(&mut v, &m.firmware_revision, V::FirmwareRevision);
                opt(&mut v, &m.vendor_name, V::VendorName);
            }
            Self::Sccrp(m) => {
                v.push(V::ProtocolVersion {
                    version: m.protocol_version.0,
                    revision: m.protocol_version.1,
                });
                v.push(V::FramingCapabilities(m.framing_capabilities));
                v.push(V::HostName(m.host_name.clone()));
                v.push(V::AssignedTunnelId(m.assigned_tunnel_id));
                opt(&mut v, &m.bearer_capabilities, V::BearerCapabilities);
                opt(&mut v, &m.firmware_revision, V::FirmwareRevision);
                opt(&mut v, &m.vendor_name, V::VendorName);
                opt(&mut v, &m.receive_window_size, V::ReceiveWindowSize);
                opt(&mut v, &m.challenge, V::Challenge);
                opt(&mut v, &m.challenge_response, V::ChallengeResponse);
            }
            Self::Scccn(m) => opt(&mut v, &m.challenge_response, V::ChallengeResponse),
            Self::StopCcn(m) => {
                v.push(V::AssignedTunnelId(m.assigned_tunnel_id));
                v.push(V::ResultCode(m.result_code.clone()));
            }
            Self::Hello => {}
            Self::Icrq(m) => {
                v.push(V::AssignedSessionId(m.assigned_session_id));
                v.push(V::CallSerialNumber(m.call_serial_number));
                opt(&mut v, &m.bearer_type, V::BearerType);
                opt(&mut v, &m.physical_channel_id, V::PhysicalChannelId);
                opt(&mut v, &m.calling_number, V::CallingNumber);
                opt(&mut v, &m.called_number, V::CalledNumber);
                opt(&mut v, &m.sub_address, V::SubAddress);
            }
            Self::Icrp(m) => v.push(V::AssignedSessionId(m.assigned_session_id)),
            Self::Iccn(m) => {
                v.push(V::TxConnectSpeed(m.tx_connect_speed));
                v.push(V::FramingType(m.framing_type));
                opt(
                    &mut v,
                    &m.initial_received_lcp_confreq,
                    V::InitialReceivedLcpConfreq,
                );
                opt(&mut v, &m.last_sent_lcp_confreq, V::LastSentLcpConfreq);
                opt(
                    &mut v,
                    &m.last_received_lcp_confreq,
                    V::LastReceivedLcpConfreq,
                );
                opt(&mut v, &m.proxy_authen_type, V::ProxyAuthenType);
                opt(&mut v, &m.proxy_authen_name, V::ProxyAuthenName);
                opt(&mut v, &m.proxy_authen_challenge, V::ProxyAuthenChallenge);
                opt(&mut v, &m.proxy_authen_id, V::ProxyAuthenId);
                opt(&mut v, &m.proxy_authen_response, V::ProxyAuthenResponse);
                opt(&mut v, &m.private_group_id, V::PrivateGroupId);
                opt(&mut v, &m.rx_connect_speed, V::RxConnectSpeed);
                if m.sequencing_required {
                    v.push(V::SequencingRequired);
                }
            }
            Self::Ocrq(m) => {
                v.push(V::AssignedSessionId(m.assigned_session_id));
                v.push(V::CallSerialNumber(m.call_serial_number));
                v.push(V::MinimumBps(m.minimum_bps));
                v.push(V::MaximumBps(m.maximum_bps));
                v.push(V::BearerType(m.bearer_type));
                v.push(V::FramingType(m.framing_type));
                v.push(V::CalledNumber(m.called_number.clone()));
                opt(&mut v, &m.sub_address, V::SubAddress);
            }
            Self::Ocrp(m) => {
                v.push(V::AssignedSessionId(m.assigned_session_id));
                opt(&mut v, &m.physical_channel_id, V::PhysicalChannelId);
            }
            Self::Occn(m) => {
                v.push(V::TxConnectSpeed(m.tx_connect_speed));
                v.push(V::FramingType(m.framing_type));
                opt(&mut v, &m.rx_connect_speed, V::RxConnectSpeed);
                if m.sequencing_required {
                    v.push(V::SequencingRequired);
                }
            }
            Self::Cdn(m) => {
                v.push(V::ResultCode(m.result_code.clone()));
                v.push(V::AssignedSessionId(m.assigned_session_id));
                opt(&mut v, &m.q931_cause_code, |q| V::Q931CauseCode {
                    cause: q.cause,
                    msg: q.msg,
                    advisory: q.advisory,
                });
            }
            Self::Wen(m) => v.push(V::CallErrors(m.call_errors)),
            Self::Sli(m) => v.push(V::Accm {
                send: m.accm.0,
                receive: m.accm.1,
            }),
        }
        let may_hide = !matches!(self, Self::Sccrq(_));
        let mut avps: Vec<Avp> = v
            .into_iter()
            .map(|value| {
                let attribute = value.attribute();
                let mut avp = Avp::new(value);
                avp.hidden = may_hide && attribute.may_be_hidden() && hide(attribute);
                avp
            })
            .collect();
        avps.extend(self.other().iter().cloned());
        avps
    }

    /// A [`ControlMessage`] with `header` and [`to_avps`](Self::to_avps).
    pub fn to_control(&self, header: ControlHeader) -> ControlMessage {
        ControlMessage {
            header,
            avps: self.to_avps(),
        }
    }
}

impl From<Sccrq> for Message {
    fn from(m: Sccrq) -> Self {
        Self::Sccrq(m)
    }
}
impl From<Sccrp> for Message {
    fn from(m: Sccrp) -> Self {
        Self::Sccrp(m)
    }
}
impl From<Scccn> for Message {
    fn from(m: Scccn) -> Self {
        Self::Scccn(m)
    }
}
impl From<StopCcn> for Message {
    fn from(m: StopCcn) -> Self {
        Self::StopCcn(m)
    }
}
impl From<Ocrq> for Message {
    fn from(m: Ocrq) -> Self {
        Self::Ocrq(m)
    }
}
impl From<Ocrp> for Message {
    fn from(m: Ocrp) -> Self {
        Self::Ocrp(m)
    }
}
impl From<Occn> for Message {
    fn from(m: Occn) -> Self {
        Self::Occn(m)
    }
}
impl From<Icrq> for Message {
    fn from(m: Icrq) -> Self {
        Self::Icrq(m)
    }
}
impl From<Icrp> for Message {
    fn from(m: Icrp) -> Self {
        Self::Icrp(m)
    }
}
impl From<Iccn> for Message {
    fn from(m: Iccn) -> Self {
        Self::Iccn(m)
    }
}
impl From<Cdn> for Message {
    fn from(m: Cdn) -> Self {
        Self::Cdn(m)
    }
}
impl From<Wen> for Message {
    fn from(m: Wen) -> Self {
        Self::Wen(m)
    }
}
impl From<Sli> for Message {
    fn from(m: Sli) -> Self {
        Self::Sli(m)
    }
}
