//! Small value types of the RFC 2661 wire format: identifiers, message and
//! attribute type numbers, capability bit sets and result codes.

use std::fmt;

/// Tunnel ID (RFC 2661 §3.1), the 16-bit identifier of a control connection,
/// local significance only. `0` is used in an SCCRQ header before the peer has
/// assigned its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TunnelId(pub u16);

/// Session ID (RFC 2661 §3.1), the 16-bit identifier of a session within a
/// tunnel, local significance only. `0` is used in the header of messages that
/// concern the whole tunnel (and of ICRQ/OCRQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub u16);

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Control message type, the value of the Message Type AVP (RFC 2661 §3.2,
/// §4.4.1). Open newtype: any 16-bit value can be represented; the RFC 2661
/// types are associated constants. `Display` prints the RFC name (`"SCCRQ"`)
/// or `"type N"` for an unknown type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u16);

impl MessageType {
    /// Start-Control-Connection-Request (RFC 2661 §6.1).
    pub const SCCRQ: Self = Self(1);
    /// Start-Control-Connection-Reply (RFC 2661 §6.2).
    pub const SCCRP: Self = Self(2);
    /// Start-Control-Connection-Connected (RFC 2661 §6.3).
    pub const SCCCN: Self = Self(3);
    /// Stop-Control-Connection-Notification (RFC 2661 §6.4).
    pub const STOPCCN: Self = Self(4);
    /// Hello keepalive (RFC 2661 §6.5).
    pub const HELLO: Self = Self(6);
    /// Outgoing-Call-Request (RFC 2661 §6.9).
    pub const OCRQ: Self = Self(7);
    /// Outgoing-Call-Reply (RFC 2661 §6.10).
    pub const OCRP: Self = Self(8);
    /// Outgoing-Call-Connected (RFC 2661 §6.11).
    pub const OCCN: Self = Self(9);
    /// Incoming-Call-Request (RFC 2661 §6.6).
    pub const ICRQ: Self = Self(10);
    /// Incoming-Call-Reply (RFC 2661 §6.7).
    pub const ICRP: Self = Self(11);
    /// Incoming-Call-Connected (RFC 2661 §6.8).
    pub const ICCN: Self = Self(12);
    /// Call-Disconnect-Notify (RFC 2661 §6.12).
    pub const CDN: Self = Self(14);
    /// WAN-Error-Notify (RFC 2661 §6.13).
    pub const WEN: Self = Self(15);
    /// Set-Link-Info (RFC 2661 §6.14).
    pub const SLI: Self = Self(16);

    /// The RFC 2661 §3.2 name of this message type, `None` if unknown
    /// (including the reserved values 0, 5 and 13).
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "SCCRQ",
            2 => "SCCRP",
            3 => "SCCCN",
            4 => "StopCCN",
            6 => "HELLO",
            7 => "OCRQ",
            8 => "OCRP",
            9 => "OCCN",
            10 => "ICRQ",
            11 => "ICRP",
            12 => "ICCN",
            14 => "CDN",
            15 => "WEN",
            16 => "SLI",
            _ => return None,
        })
    }

    /// Whether RFC 2661 defines this message type.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// Whether the message concerns a session (call management and call
    /// status messages, RFC 2661 §3.2) rather than the control connection.
    pub fn is_session_message(self) -> bool {
        matches!(self.0, 7..=12 | 14..=16)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "type {}", self.0),
        }
    }
}

/// AVP attribute type (RFC 2661 §4.1, §4.4). Open newtype; the IETF
/// (vendor id 0) attributes 0..=39 of RFC 2661 are associated constants
/// (attribute 20 is reserved and has none). `Display` prints the RFC name or
/// `"attribute N"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(pub u16);

impl AttributeType {
    /// Message Type, RFC 2661 §4.4.1.
    pub const MESSAGE_TYPE: Self = Self(0);
    /// Result Code, RFC 2661 §4.4.2.
    pub const RESULT_CODE: Self = Self(1);
    /// Protocol Version, RFC 2661 §4.4.3.
    pub const PROTOCOL_VERSION: Self = Self(2);
    /// Framing Capabilities, RFC 2661 §4.4.3.
    pub const FRAMING_CAPABILITIES: Self = Self(3);
    /// Bearer Capabilities, RFC 2661 §4.4.3.
    pub const BEARER_CAPABILITIES: Self = Self(4);
    /// Tie Breaker, RFC 2661 §4.4.3.
    pub const TIE_BREAKER: Self = Self(5);
    /// Firmware Revision, RFC 2661 §4.4.3.
    pub const FIRMWARE_REVISION: Self = Self(6);
    /// Host Name, RFC 2661 §4.4.3.
    pub const HOST_NAME: Self = Self(7);
    /// Vendor Name, RFC 2661 §4.4.3.
    pub const VENDOR_NAME: Self = Self(8);
    /// Assigned Tunnel ID, RFC 2661 §4.4.3.
    pub const ASSIGNED_TUNNEL_ID: Self = Self(9);
    /// Receive Window Size, RFC 2661 §4.4.3.
    pub const RECEIVE_WINDOW_SIZE: Self = Self(10);
    /// Challenge, RFC 2661 §4.4.3.
    pub const CHALLENGE: Self = Self(11);
    /// Q.931 Cause Code, RFC 2661 §4.4.4.
    pub const Q931_CAUSE_CODE: Self = Self(12);
    /// Challenge Response, RFC 2661 §4.4.3.
    pub const CHALLENGE_RESPONSE: Self = Self(13);
    /// Assigned Session ID, RFC 2661 §4.4.4.
    pub const ASSIGNED_SESSION_ID: Self = Self(14);
    /// Call Serial Number, RFC 2661 §4.4.4.
    pub const CALL_SERIAL_NUMBER: Self = Self(15);
    /// Minimum BPS, RFC 2661 §4.4.4.
    pub const MINIMUM_BPS: Self = Self(16);
    /// Maximum BPS, RFC 2661 §4.4.4.
    pub const MAXIMUM_BPS: Self = Self(17);
    /// Bearer Type, RFC 2661 §4.4.4.
    pub const BEARER_TYPE: Self = Self(18);
    /// Framing Type, RFC 2661 §4.4.4.
    pub const FRAMING_TYPE: Self = Self(19);
    /// Called Number, RFC 2661 §4.4.4.
    pub const CALLED_NUMBER: Self = Self(21);
    /// Calling Number, RFC 2661 §4.4.4.
    pub const CALLING_NUMBER: Self = Self(22);
    /// Sub-Address, RFC 2661 §4.4.4.
    pub const SUB_ADDRESS: Self = Self(23);
    /// (Tx) Connect Speed, RFC 2661 §4.4.4.
    pub const TX_CONNECT_SPEED: Self = Self(24);
    /// Physical Channel ID, RFC 2661 §4.4.4.
    pub const PHYSICAL_CHANNEL_ID: Self = Self(25);
    /// Initial Received LCP CONFREQ, RFC 2661 §4.4.5.
    pub const INITIAL_RECEIVED_LCP_CONFREQ: Self = Self(26);
    /// Last Sent LCP CONFREQ, RFC 2661 §4.4.5.
    pub const LAST_SENT_LCP_CONFREQ: Self = Self(27);
    /// Last Received LCP CONFREQ, RFC 2661 §4.4.5.
    pub const LAST_RECEIVED_LCP_CONFREQ: Self = Self(28);
    /// Proxy Authen Type, RFC 2661 §4.4.5.
    pub const PROXY_AUTHEN_TYPE: Self = Self(29);
    /// Proxy Authen Name, RFC 2661 §4.4.5.
    pub const PROXY_AUTHEN_NAME: Self = Self(30);
    /// Proxy Authen Challenge, RFC 2661 §4.4.5.
    pub const PROXY_AUTHEN_CHALLENGE: Self = Self(31);
    /// Proxy Authen ID, RFC 2661 §4.4.5.
    pub const PROXY_AUTHEN_ID: Self = Self(32);
    /// Proxy Authen Response, RFC 2661 §4.4.5.
    pub const PROXY_AUTHEN_RESPONSE: Self = Self(33);
    /// Call Errors, RFC 2661 §4.4.6.
    pub const CALL_ERRORS: Self = Self(34);
    /// ACCM, RFC 2661 §4.4.6.
    pub const ACCM: Self = Self(35);
    /// Random Vector, RFC 2661 §4.4.1 (used for hiding, §4.3).
    pub const RANDOM_VECTOR: Self = Self(36);
    /// Private Group ID, RFC 2661 §4.4.4.
    pub const PRIVATE_GROUP_ID: Self = Self(37);
    /// Rx Connect Speed, RFC 2661 §4.4.4.
    pub const RX_CONNECT_SPEED: Self = Self(38);
    /// Sequencing Required, RFC 2661 §4.4.4.
    pub const SEQUENCING_REQUIRED: Self = Self(39);

    /// The RFC 2661 §4.4 name of this IETF attribute, `None` if RFC 2661 does
    /// not define it (20 and ≥ 40).
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Message Type",
            1 => "Result Code",
            2 => "Protocol Version",
            3 => "Framing Capabilities",
            4 => "Bearer Capabilities",
            5 => "Tie Breaker",
            6 => "Firmware Revision",
            7 => "Host Name",
            8 => "Vendor Name",
            9 => "Assigned Tunnel ID",
            10 => "Receive Window Size",
            11 => "Challenge",
            12 => "Q.931 Cause Code",
            13 => "Challenge Response",
            14 => "Assigned Session ID",
            15 => "Call Serial Number",
            16 => "Minimum BPS",
            17 => "Maximum BPS",
            18 => "Bearer Type",
            19 => "Framing Type",
            21 => "Called Number",
            22 => "Calling Number",
            23 => "Sub-Address",
            24 => "(Tx) Connect Speed",
            25 => "Physical Channel ID",
            26 => "Initial Received LCP CONFREQ",
            27 => "Last Sent LCP CONFREQ",
            28 => "Last Received LCP CONFREQ",
            29 => "Proxy Authen Type",
            30 => "Proxy Authen Name",
            31 => "Proxy Authen Challenge",
            32 => "Proxy Authen ID",
            33 => "Proxy Authen Response",
            34 => "Call Errors",
            35 => "ACCM",
            36 => "Random Vector",
            37 => "Private Group ID",
            38 => "Rx Connect Speed",
            39 => "Sequencing Required",
            _ => return None,
        })
    }

    /// Whether RFC 2661 defines this IETF (vendor id 0) attribute.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// The M bit RFC 2661 §4.4 prescribes when sending this attribute
    /// (`true` for attributes the RFC sends with M=1). Unknown attributes
    /// report `false`.
    pub fn rfc_mandatory(self) -> bool {
        matches!(
            self.0,
            0..=4 | 7 | 9..=19 | 21..=24 | 34..=36 | 39
        )
    }

    /// Whether RFC 2661 §4.4 allows this attribute to be sent hidden
    /// (H bit, §4.3). Message Type, Result Code, Protocol Version, Tie
    /// Breaker, Host Name, Receive Window Size, Q.931 Cause Code, Random
    /// Vector and Sequencing Required are always sent in the clear, as are
    /// unknown attributes.
    pub fn may_be_hidden(self) -> bool {
        self.is_known() && !matches!(self.0, 0..=2 | 5 | 7 | 10 | 12 | 36 | 39)
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "attribute {}", self.0),
        }
    }
}

/// Framing capabilities / framing type bit set (RFC 2661 §4.4.3 Framing
/// Capabilities, §4.4.4 Framing Type): a 32-bit mask, `SYNC` = bit value 1,
/// `ASYNC` = bit value 2; other bits are reserved and kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FramingCaps(pub u32);

impl FramingCaps {
    /// Synchronous framing (S bit).
    pub const SYNC: Self = Self(1);
    /// Asynchronous framing (A bit).
    pub const ASYNC: Self = Self(2);
    /// Both synchronous and asynchronous framing.
    pub const BOTH: Self = Self(3);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for FramingCaps {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Bearer capabilities / bearer type bit set (RFC 2661 §4.4.3 Bearer
/// Capabilities, §4.4.4 Bearer Type): a 32-bit mask, `DIGITAL` = bit value 1,
/// `ANALOG` = bit value 2; other bits are reserved and kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BearerCaps(pub u32);

impl BearerCaps {
    /// Digital access (D bit).
    pub const DIGITAL: Self = Self(1);
    /// Analog access (A bit).
    pub const ANALOG: Self = Self(2);
    /// Both digital and analog access.
    pub const BOTH: Self = Self(3);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for BearerCaps {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Result code of a StopCCN (RFC 2661 §4.4.2, "Defined Result Code values
/// for the StopCCN message"), the `result` field of a [`ResultCode`] carried
/// in a StopCCN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StopCcnResult(pub u16);

impl StopCcnResult {
    /// 1: General request to clear control connection.
    pub const GENERAL_REQUEST_TO_CLEAR: Self = Self(1);
    /// 2: General error, Error Code indicates the problem.
    pub const GENERAL_ERROR: Self = Self(2);
    /// 3: Control channel already exists.
    pub const CHANNEL_EXISTS: Self = Self(3);
    /// 4: Requester is not authorized to establish a control channel.
    pub const NOT_AUTHORIZED: Self = Self(4);
    /// 5: The protocol version of the requester is not supported; Error Code
    /// indicates the highest version supported.
    pub const UNSUPPORTED_VERSION: Self = Self(5);
    /// 6: Requester is being shut down.
    pub const SHUTTING_DOWN: Self = Self(6);
    /// 7: Finite State Machine error.
    pub const FSM_ERROR: Self = Self(7);
}

/// Result code of a CDN (RFC 2661 §4.4.2, "Defined Result Code values for
/// the CDN message"), the `result` field of a [`ResultCode`] carried in a
/// CDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CdnResult(pub u16);

impl CdnResult {
    /// 1: Call disconnected due to loss of carrier.
    pub const LOST_CARRIER: Self = Self(1);
    /// 2: Call disconnected for the reason indicated in Error Code.
    pub const GENERAL_ERROR: Self = Self(2);
    /// 3: Call disconnected for administrative reasons.
    pub const ADMINISTRATIVE: Self = Self(3);
    /// 4: Call failed due to lack of appropriate facilities being available
    /// (temporary condition).
    pub const NO_FACILITIES_TEMPORARY: Self = Self(4);
    /// 5: Call failed due to lack of appropriate facilities being available
    /// (permanent condition).
    pub const NO_FACILITIES_PERMANENT: Self = Self(5);
    /// 6: Invalid destination.
    pub const INVALID_DESTINATION: Self = Self(6);
    /// 7: Call failed due to no carrier detected.
    pub const NO_CARRIER: Self = Self(7);
    /// 8: Call failed due to detection of a busy signal.
    pub const BUSY: Self = Self(8);
    /// 9: Call failed due to lack of a dial tone.
    pub const NO_DIAL_TONE: Self = Self(9);
    /// 10: Call was not established within time allotted by LAC.
    pub const TIMEOUT: Self = Self(10);
    /// 11: Call was connected but no appropriate framing was detected.
    pub const NO_FRAMING: Self = Self(11);
}

/// General error code (RFC 2661 §4.4.2, "General Error Codes"), the optional
/// `error` field of a [`ResultCode`], shared by StopCCN and CDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// 0: No general error.
    pub const NO_GENERAL_ERROR: Self = Self(0);
    /// 1: No control connection exists yet for this LAC-LNS pair.
    pub const NO_CONTROL_CONNECTION: Self = Self(1);
    /// 2: Length is wrong.
    pub const LENGTH_WRONG: Self = Self(2);
    /// 3: One of the field values was out of range or a reserved field was
    /// non-zero.
    pub const VALUE_OUT_OF_RANGE: Self = Self(3);
    /// 4: Insufficient resources to handle this operation now.
    pub const INSUFFICIENT_RESOURCES: Self = Self(4);
    /// 5: The Session ID is invalid in this context.
    pub const INVALID_SESSION_ID: Self = Self(5);
    /// 6: A generic vendor-specific error occurred in the LAC.
    pub const VENDOR_SPECIFIC: Self = Self(6);
    /// 7: Try another; the error message may carry the address of another
    /// LNS.
    pub const TRY_ANOTHER: Self = Self(7);
    /// 8: Session or tunnel was shut down due to receipt of an unknown AVP
    /// with the M bit set.
    pub const UNKNOWN_MANDATORY_AVP: Self = Self(8);
}

/// Proxy Authen Type values (RFC 2661 §4.4.5), the `u16` carried by
/// [`AvpValue::ProxyAuthenType`](crate::wire::AvpValue::ProxyAuthenType).
pub mod proxy_authen_type {
    /// 1: Textual username/password exchange.
    pub const TEXTUAL: u16 = 1;
    /// 2: PPP CHAP.
    pub const PPP_CHAP: u16 = 2;
    /// 3: PPP PAP.
    pub const PPP_PAP: u16 = 3;
    /// 4: No authentication.
    pub const NO_AUTHENTICATION: u16 = 4;
    /// 5: Microsoft CHAP version 1 (MSCHAPv1).
    pub const MSCHAP_V1: u16 = 5;
}

/// Result Code AVP value (RFC 2661 §4.4.2): a 2-octet result code, an
/// optional 2-octet error code and an optional error message (octets, not
/// necessarily UTF-8) that may only be present together with an error code.
///
/// `result` is a [`StopCcnResult`] in a StopCCN and a [`CdnResult`] in a
/// CDN; `error` is an [`ErrorCode`]. A `message` of `Some(vec![])` encodes
/// exactly like `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResultCode {
    /// Result code (interpretation depends on the message).
    pub result: u16,
    /// General error code, if present.
    pub error: Option<u16>,
    /// Error message, if present (requires `error`).
    pub message: Option<Vec<u8>>,
}

impl ResultCode {
    /// A StopCCN result code without error code.
    pub fn stop_ccn(result: StopCcnResult) -> Self {
        Self {
            result: result.0,
            error: None,
            message: None,
        }
    }

    /// A CDN result code without error code.
    pub fn cdn(result: CdnResult) -> Self {
        Self {
            result: result.0,
            error: None,
            message: None,
        }
    }

    /// Adds a general error code and an optional error message.
    pub fn with_error(mut self, error: ErrorCode, message: Option<Vec<u8>>) -> Self {
        self.error = Some(error.0);
        self.message = message;
        self
    }

    /// `result` interpreted as a StopCCN result code.
    pub fn stop_ccn_result(&self) -> StopCcnResult {
        StopCcnResult(self.result)
    }

    /// `result` interpreted as a CDN result code.
    pub fn cdn_result(&self) -> CdnResult {
        CdnResult(self.result)
    }

    /// The general error code, if present.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.map(ErrorCode)
    }
}

/// Q.931 Cause Code AVP value (RFC 2661 §4.4.4) as a standalone struct (the
/// CDN field type): the 2-octet Q.931 cause code, the 1-octet Q.931 message
/// type in which the cause was received, and an optional advisory message
/// (octets; empty when absent).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Q931Cause {
    /// Q.931 cause code.
    pub cause: u16,
    /// Q.931 message type the cause came in.
    pub msg: u8,
    /// Advisory message, empty if absent.
    pub advisory: Vec<u8>,
}

/// Call Errors AVP value (RFC 2661 §4.4.6): counters of errors on the
/// physical interface since the call was established, each a 32-bit count.
/// On the wire they follow a 2-octet reserved field (sent as 0, ignored on
/// receipt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CallErrors {
    /// Number of PPP frames received with CRC errors.
    pub crc_errors: u32,
    /// Number of improperly framed PPP packets received.
    pub framing_errors: u32,
    /// Number of receive buffer overruns.
    pub hardware_overruns: u32,
    /// Number of buffer overruns detected.
    pub buffer_overruns: u32,
    /// Number of timeouts.
    pub timeout_errors: u32,
    /// Number of alignment errors.
    pub alignment_errors: u32,
}
