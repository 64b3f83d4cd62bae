//! Attribute-Value Pairs (RFC 2661 §4.1, §4.4).
//!
//! ```text
//!  |M|H| rsvd  |      Length       |           Vendor ID           |
//!  |         Attribute Type        |        Attribute Value...
//! ```

use nom::Parser;
use nom::bytes::complete::take;
use nom::combinator::{all_consuming, rest};
use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

use super::types::{
    AttributeType, BearerCaps, CallErrors, FramingCaps, MessageType, ResultCode, SessionId,
    TunnelId,
};

pub(crate) const AVP_FLAG_M: u16 = 0x8000;
pub(crate) const AVP_FLAG_H: u16 = 0x4000;
pub(crate) const AVP_RESERVED_MASK: u16 = 0x3c00;
pub(crate) const AVP_LENGTH_MASK: u16 = 0x03ff;

/// Length of the AVP header (flags/length, Vendor ID, Attribute Type).
pub const AVP_HEADER_LEN: usize = 6;
/// Largest AVP, header included (10-bit Length field, RFC 2661 §4.1).
pub const AVP_MAX_LEN: usize = 1023;

/// One AVP of a control message (RFC 2661 §4.1): M and H flags and the
/// typed value (which also determines Vendor ID and Attribute Type).
///
/// For a decoded hidden AVP `hidden` is true and `value` is the *unhidden*
/// value; encoding such an AVP with a secret hides it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Avp {
    /// M bit: if the receiver does not recognise the AVP it must tear down
    /// the session or tunnel (RFC 2661 §4.1). For the Message Type AVP: tear
    /// down if the message type is unknown (§4.4.1).
    pub mandatory: bool,
    /// H bit: the value is hidden on the wire (RFC 2661 §4.3).
    pub hidden: bool,
    /// The value.
    pub value: AvpValue,
}

impl Avp {
    /// An AVP with the M bit RFC 2661 §4.4 prescribes for its attribute and
    /// the H bit clear.
    pub fn new(value: AvpValue) -> Self {
        let mandatory = match &value {
            AvpValue::Unknown {
                vendor_id: 0,
                attribute,
                ..
            } => attribute.rfc_mandatory(),
            AvpValue::Unknown { .. } | AvpValue::ReservedBits { .. } => false,
            v => v.attribute().rfc_mandatory(),
        };
        Self {
            mandatory,
            hidden: false,
            value,
        }
    }

    /// The same AVP with the H bit set (hide on encode).
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// Attribute type of this AVP.
    pub fn attribute(&self) -> AttributeType {
        self.value.attribute()
    }

    /// Vendor ID of this AVP (0 for IETF attributes).
    pub fn vendor_id(&self) -> u16 {
        self.value.vendor_id()
    }

    /// Whether this implementation does not recognise the AVP (unknown
    /// attribute, vendor-specific, or reserved header bits set).
    pub fn is_unrecognised(&self) -> bool {
        matches!(
            self.value,
            AvpValue::Unknown { .. } | AvpValue::ReservedBits { .. }
        )
    }
}

/// Typed value of an AVP, one variant per RFC 2661 §4.4 attribute.
/// Integers are host-order; strings are raw octets (RFC 2661 does not
/// guarantee UTF-8). Fixed-size values must have exactly their RFC size on
/// the wire; reserved fields (Call Errors, ACCM) are ignored on decode and
/// sent as 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AvpValue {
    /// 0, §4.4.1: message type, 2 octets.
    MessageType(MessageType),
    /// 1, §4.4.2: result code (2), optional error code (2) and message.
    ResultCode(ResultCode),
    /// 2, §4.4.3: version (1 octet) and revision (1 octet); L2TPv2 is 1.0.
    ProtocolVersion {
        /// Protocol version (1).
        version: u8,
        /// Protocol revision (0).
        revision: u8,
    },
    /// 3, §4.4.3: framing capabilities, 32-bit mask.
    FramingCapabilities(FramingCaps),
    /// 4, §4.4.3: bearer capabilities, 32-bit mask.
    BearerCapabilities(BearerCaps),
    /// 5, §4.4.3: tie breaker, 8 octets (read as big-endian u64).
    TieBreaker(u64),
    /// 6, §4.4.3: firmware revision, 2 octets.
    FirmwareRevision(u16),
    /// 7, §4.4.3: host name, octets.
    HostName(Vec<u8>),
    /// 8, §4.4.3: vendor name, octets.
    VendorName(Vec<u8>),
    /// 9, §4.4.3: the sender's tunnel id, 2 octets.
    AssignedTunnelId(TunnelId),
    /// 10, §4.4.3: receive window size (control messages), 2 octets.
    ReceiveWindowSize(u16),
    /// 11, §4.4.3: challenge, octets (one or more).
    Challenge(Vec<u8>),
    /// 12, §4.4.4: Q.931 cause code (2), message type (1) and advisory
    /// message (octets, empty if absent).
    Q931CauseCode {
        /// Q.931 cause code.
        cause: u16,
        /// Q.931 message type.
        msg: u8,
        /// Advisory message.
        advisory: Vec<u8>,
    },
    /// 13, §4.4.3: challenge response, 16 octets (MD5 digest, §5.1.1).
    ChallengeResponse([u8; 16]),
    /// 14, §4.4.4: the sender's session id, 2 octets.
    AssignedSessionId(SessionId),
    /// 15, §4.4.4: call serial number, 4 octets.
    CallSerialNumber(u32),
    /// 16, §4.4.4: minimum speed, bits per second, 4 octets.
    MinimumBps(u32),
    /// 17, §4.4.4: maximum speed, bits per second, 4 octets.
    MaximumBps(u32),
    /// 18, §4.4.4: bearer type, 32-bit mask (same bits as capabilities).
    BearerType(BearerCaps),
    /// 19, §4.4.4: framing type, 32-bit mask (same bits as capabilities).
    FramingType(FramingCaps),
    /// 21, §4.4.4: called number, octets.
    CalledNumber(Vec<u8>),
    /// 22, §4.4.4: calling number, octets.
    CallingNumber(Vec<u8>),
    /// 23, §4.4.4: sub-address, octets.
    SubAddress(Vec<u8>),
    /// 24, §4.4.4: (Tx) connect speed, bits per second, 4 octets.
    TxConnectSpeed(u32),
    /// 25, §4.4.4: physical channel id, 4 octets (vendor-specific).
    PhysicalChannelId(u32),
    /// 26, §4.4.5: initial received LCP CONFREQ (the LCP options), octets.
    InitialReceivedLcpConfreq(Vec<u8>),
    /// 27, §4.4.5: last sent LCP CONFREQ, octets.
    LastSentLcpConfreq(Vec<u8>),
    /// 28, §4.4.5: last received LCP CONFREQ, octets.
    LastReceivedLcpConfreq(Vec<u8>),
    /// 29, §4.4.5: proxy authentication type, 2 octets
    /// ([`proxy_authen_type`](super::types::proxy_authen_type)).
    ProxyAuthenType(u16),
    /// 30, §4.4.5: proxy authentication name, octets.
    ProxyAuthenName(Vec<u8>),
    /// 31, §4.4.5: proxy authentication challenge, octets.
    ProxyAuthenChallenge(Vec<u8>),
    /// 32, §4.4.5: proxy authentication id, 2 octets (the low octet is the
    /// PPP authentication identifier).
    ProxyAuthenId(u16),
    /// 33, §4.4.5: proxy authentication response, octets.
    ProxyAuthenResponse(Vec<u8>),
    /// 34, §4.4.6: call error counters (2 reserved + 6 × 4 octets).
    CallErrors(CallErrors),
    /// 35, §4.4.6: ACCM (2 reserved + send 4 + receive 4 octets).
    Accm {
        /// Send ACCM.
        send: u32,
        /// Receive ACCM.
        receive: u32,
    },
    /// 36, §4.4.1: random vector for hiding (§4.3), octets.
    RandomVector(Vec<u8>),
    /// 37, §4.4.4: private group id, octets.
    PrivateGroupId(Vec<u8>),
    /// 38, §4.4.4: Rx connect speed, bits per second, 4 octets.
    RxConnectSpeed(u32),
    /// 39, §4.4.4: sequencing required, no value.
    SequencingRequired,
    /// Unrecognised (or vendor-specific, vendor_id != 0) AVP, kept verbatim so
    /// it round-trips.
    Unknown {
        /// Vendor ID (0 = IETF).
        vendor_id: u16,
        /// Attribute type.
        attribute: AttributeType,
        /// Raw value (unhidden if it was hidden).
        value: Vec<u8>,
    },
    /// An AVP received with reserved header bits set, which RFC 2661 §4.1
    /// says MUST be treated as unrecognised; kept verbatim, reserved bits
    /// included, so it round-trips.
    ReservedBits {
        /// The 4 reserved bits (0..=15, non-zero).
        bits: u8,
        /// Vendor ID.
        vendor_id: u16,
        /// Attribute type.
        attribute: AttributeType,
        /// Raw value (unhidden if it was hidden).
        value: Vec<u8>,
    },
}

impl AvpValue {
    /// The attribute type this value is sent as.
    pub fn attribute(&self) -> AttributeType {
        AttributeType(match self {
            Self::MessageType(_) => 0,
            Self::ResultCode(_) => 1,
            Self::ProtocolVersion { .. } => 2,
            Self::FramingCapabilities(_) => 3,
            Self::BearerCapabilities(_) => 4,
            Self::TieBreaker(_) => 5,
            Self::FirmwareRevision(_) => 6,
            Self::HostName(_) => 7,
            Self::VendorName(_) => 8,
            Self::AssignedTunnelId(_) => 9,
            Self::ReceiveWindowSize(_) => 10,
            Self::Challenge(_) => 11,
            Self::Q931CauseCode { .. } => 12,
            Self::ChallengeResponse(_) => 13,
            Self::AssignedSessionId(_) => 14,
            Self::CallSerialNumber(_) => 15,
            Self::MinimumBps(_) => 16,
            Self::MaximumBps(_) => 17,
            Self::BearerType(_) => 18,
            Self::FramingType(_) => 19,
            Self::CalledNumber(_) => 21,
            Self::CallingNumber(_) => 22,
            Self::SubAddress(_) => 23,
            Self::TxConnectSpeed(_) => 24,
            Self::PhysicalChannelId(_) => 25,
            Self::InitialReceivedLcpConfreq(_) => 26,
            Self::LastSentLcpConfreq(_) => 27,
            Self::LastReceivedLcpConfreq(_) => 28,
            Self::ProxyAuthenType(_) => 29,
            Self::ProxyAuthenName(_) => 30,
            Self::ProxyAuthenChallenge(_) => 31,
            Self::ProxyAuthenId(_) => 32,
            Self::ProxyAuthenResponse(_) => 33,
            Self::CallErrors(_) => 34,
            Self::Accm { .. } => 35,
            Self::RandomVector(_) => 36,
            Self::PrivateGroupId(_) => 37,
            Self::RxConnectSpeed(_) => 38,
            Self::SequencingRequired => 39,
            Self::Unknown { attribute, .. } | Self::ReservedBits { attribute, .. } => attribute.0,
        })
    }

    /// The Vendor ID this value is sent with (0 except for `Unknown` and
    /// `ReservedBits`).
    pub fn vendor_id(&self) -> u16 {
        match self {
            Self::Unknown { vendor_id, .. } | Self::ReservedBits { vendor_id, .. } => *vendor_id,
            _ => 0,
        }
    }

    /// Reserved header bits to send (non-zero only for `ReservedBits`).
    pub(crate) fn reserved_bits(&self) -> u8 {
        match self {
            Self::ReservedBits { bits, .. } => *bits & 0x0f,
            _ => 0,
        }
    }

    /// Encodes the attribute value field (no AVP header, not hidden).
    pub(crate) fn encode_value(&self) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        match self {
            Self::MessageType(t) => out.extend_from_slice(&t.0.to_be_bytes()),
            Self::ResultCode(rc) => {
                out.extend_from_slice(&rc.result.to_be_bytes());
                let msg = rc.message.as_deref().unwrap_or(&[]);
                match rc.error {
                    Some(e) => {
                        out.extend_from_slice(&e.to_be_bytes());
                        out.extend_from_slice(msg);
                    }
                    None if !msg.is_empty() => return Err("error message without error code"),
                    None => {}
                }
            }
            Self::ProtocolVersion { version, revision } => {
                out.extend_from_slice(&[*version, *revision])
            }
            Self::FramingCapabilities(c) | Self::FramingType(c) => {
                out.extend_from_slice(&c.0.to_be_bytes())
            }
            Self::BearerCapabilities(c) | Self::BearerType(c) => {
                out.extend_from_slice(&c.0.to_be_bytes())
            }
            Self::TieBreaker(t) => out.extend_from_slice(&t.to_be_bytes()),
            Self::FirmwareRevision(v)
            | Self::ReceiveWindowSize(v)
            | Self::ProxyAuthenType(v)
            | Self::ProxyAuthenId(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::AssignedTunnelId(t) => out.extend_from_slice(&t.0.to_be_bytes()),
            Self::AssignedSessionId(s) => out.extend_from_slice(&s.0.to_be_bytes()),
            Self::HostName(b)
            | Self::VendorName(b)
            | Self::Challenge(b)
            | Self::CalledNumber(b)
            | Self::CallingNumber(b)
            | Self::SubAddress(b)
            | Self::InitialReceivedLcpConfreq(b)
            | Self::LastSentLcpConfreq(b)
            | Self::LastReceivedLcpConfreq(b)
            | Self::ProxyAuthenName(b)
            | Self::ProxyAuthenChallenge(b)
            | Self::ProxyAuthenResponse(b)
            | Self::RandomVector(b)
            | Self::PrivateGroupId(b)
            | Self::Unknown { value: b, .. }
            | Self::ReservedBits { value: b, .. } => out.extend_from_slice(b),
            Self::Q931CauseCode {
                cause,
                msg,
                advisory,
            } => {
                out.extend_from_slice(&cause.to_be_bytes());
                out.push(*msg);
                out.extend_from_slice(advisory);
            }
            Self::ChallengeResponse(r) => out.extend_from_slice(r),
            Self::CallSerialNumber(v)
            | Self::MinimumBps(v)
            | Self::MaximumBps(v)
            | Self::TxConnectSpeed(v)
            | Self::PhysicalChannelId(v)
            | Self::RxConnectSpeed(v) => out.extend_from_slice(&v.to_be_bytes()),
            Self::CallErrors(e) => {
                out.extend_from_slice(&[0, 0]);
                for v in [
                    e.crc_errors,
                    e.framing_errors,
                    e.hardware_overruns,
                    e.buffer_overruns,
                    e.timeout_errors,
                    e.alignment_errors,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            Self::Accm { send, receive } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&send.to_be_bytes());
                out.extend_from_slice(&receive.to_be_bytes());
            }
            Self::SequencingRequired => {}
        }
        Ok(out)
    }

    /// Decodes the (plaintext) value of an AVP with Vendor ID 0, clear
    /// reserved bits and attribute type `attribute`. Unknown attribute types
    /// become [`AvpValue::Unknown`]. `Err` carries the reason for
    /// [`DecodeError::BadAvpValue`](super::DecodeError::BadAvpValue).
    pub(crate) fn decode_ietf(attribute: AttributeType, v: &[u8]) -> Result<Self, &'static str> {
        type E<'a> = nom::error::Error<&'a [u8]>;
        fn u16_exact(v: &[u8]) -> Result<u16, &'static str> {
            all_consuming(be_u16::<_, E>)
                .parse(v)
                .map(|(_, x)| x)
                .map_err(|_| "expected 2 octets")
        }
        fn u32_exact(v: &[u8]) -> Result<u32, &'static str> {
            all_consuming(be_u32::<_, E>)
                .parse(v)
                .map(|(_, x)| x)
                .map_err(|_| "expected 4 octets")
        }
        let bytes = || v.to_vec();
        Ok(match attribute.0 {
            0 => Self::MessageType(MessageType(u16_exact(v)?)),
            1 => {
                let (msg, result) =
                    be_u16::<_, E>(v).map_err(|_| "Result Code shorter than 2 octets")?;
                let rc = match msg.len() {
                    0 => ResultCode {
                        result,
                        error: None,
                        message: None,
                    },
                    1 => return Err("Result Code of 3 octets"),
                    _ => {
                        let (msg, error) =
                            be_u16::<_, E>(msg).map_err(|_| "Result Code truncated")?;
                        ResultCode {
                            result,
                            error: Some(error),
                            message: (!msg.is_empty()).then(|| msg.to_vec()),
                        }
                    }
                };
                Self::ResultCode(rc)
            }
            2 => {
                let (_, (version, revision)) = all_consuming((be_u8::<_, E>, be_u8))
                    .parse(v)
                    .map_err(|_| "expected 2 octets")?;
                Self::ProtocolVersion { version, revision }
            }
            3 => Self::FramingCapabilities(FramingCaps(u32_exact(v)?)),
            4 => Self::BearerCapabilities(BearerCaps(u32_exact(v)?)),
            5 => Self::TieBreaker(
                all_consuming(be_u64::<_, E>)
                    .parse(v)
                    .map(|(_, x)| x)
                    .map_err(|_| "expected 8 octets")?,
            ),
            6 => Self::FirmwareRevision(u16_exact(v)?),
            7 => Self::HostName(bytes()),
            8 => Self::VendorName(bytes()),
            9 => Self::AssignedTunnelId(TunnelId(u16_exact(v)?)),
            10 => Self::ReceiveWindowSize(u16_exact(v)?),
            11 => Self::Challenge(bytes()),
            12 => {
                let (_, (cause, msg, advisory)) = (be_u16::<_, E>, be_u8, rest)
                    .parse(v)
                    .map_err(|_| "Q.931 Cause Code shorter than 3 octets")?;
                Self::Q931CauseCode {
                    cause,
                    msg,
                    advisory: advisory.to_vec(),
                }
            }
            13 => {
                Self::ChallengeResponse(<[u8; 16]>::try_from(v).map_err(|_| "expected 16 octets")?)
            }
            14 => Self::AssignedSessionId(SessionId(u16_exact(v)?)),
            15 => Self::CallSerialNumber(u32_exact(v)?),
            16 => Self::MinimumBps(u32_exact(v)?),
            17 => Self::MaximumBps(u32_exact(v)?),
            18 => Self::BearerType(BearerCaps(u32_exact(v)?)),
            19 => Self::FramingType(FramingCaps(u32_exact(v)?)),
            21 => Self::CalledNumber(bytes()),
            22 => Self::CallingNumber(bytes()),
            23 => Self::SubAddress(bytes()),
            24 => Self::TxConnectSpeed(u32_exact(v)?),
            25 => Self::PhysicalChannelId(u32_exact(v)?),
            26 => Self::InitialReceivedLcpConfreq(bytes()),
            27 => Self::LastSentLcpConfreq(bytes()),
            28 => Self::LastReceivedLcpConfreq(bytes()),
            29 => Self::ProxyAuthenType(u16_exact(v)?),
            30 => Self::ProxyAuthenName(bytes()),
            31 => Self::ProxyAuthenChallenge(bytes()),
            32 => Self::ProxyAuthenId(u16_exact(v)?),
            33 => Self::ProxyAuthenResponse(bytes()),
            34 => {
                let (_, (_, c)) = all_consuming((
                    take::<_, _, E>(2usize),
                    (be_u32, be_u32, be_u32, be_u32, be_u32, be_u32),
                ))
                .parse(v)
                .map_err(|_| "expected 26 octets")?;
                Self::CallErrors(CallErrors {
                    crc_errors: c.0,
                    framing_errors: c.1,
                    hardware_overruns: c.2,
                    buffer_overruns: c.3,
                    timeout_errors: c.4,
                    alignment_errors: c.5,
                })
            }
            35 => {
                let (_, (_, send, receive)) =
                    all_consuming((take::<_, _, E>(2usize), be_u32, be_u32))
                        .parse(v)
                        .map_err(|_| "expected 10 octets")?;
                Self::Accm { send, receive }
            }
            36 => Self::RandomVector(bytes()),
            37 => Self::PrivateGroupId(bytes()),
            38 => Self::RxConnectSpeed(u32_exact(v)?),
            39 => {
                if !v.is_empty() {
                    return Err("expected no value");
                }
                Self::SequencingRequired
            }
            _ => Self::Unknown {
                vendor_id: 0,
                attribute,
                value: bytes(),
            },
        })
    }
}
