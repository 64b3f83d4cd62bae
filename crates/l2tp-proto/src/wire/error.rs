//! Errors of the wire codec.

use super::types::{AttributeType, MessageType};

/// Why a datagram could not be decoded (RFC 2661 §3.1 header, §4.1 AVP
/// framing, §4.3 hidden AVPs, §4.4 AVP values). Offsets are in octets from
/// the start of the datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram ends inside the L2TP header: `needed` octets are
    /// required for the header its flags announce, `got` are present. A
    /// zero-length datagram is `Truncated { needed: 2, got: 0 }`.
    #[error("truncated L2TP header: need {needed} octets, got {got}")]
    Truncated {
        /// Octets the header needs.
        needed: usize,
        /// Octets present.
        got: usize,
    },
    /// The Ver field is not 2 (RFC 2661 §3.1: such packets MUST be
    /// discarded; 1 would be L2F, 3 L2TPv3).
    #[error("unsupported L2TP version {0}")]
    WrongVersion(u8),
    /// The T bit is clear: this is a data message, not a control message.
    #[error("not a control message (T bit clear)")]
    NotControl,
    /// A control message without the L or the S bit (RFC 2661 §3.1 requires
    /// both on control messages).
    #[error("control message without Length or Sequence fields")]
    MissingLengthOrSequence,
    /// A control message with the O bit set (RFC 2661 §3.1: MUST be 0 on
    /// control messages).
    #[error("control message with an Offset field")]
    ControlOffsetPresent,
    /// The Length field announces more octets than the datagram holds.
    /// (Octets past Length are ignored: they are not part of the message.)
    #[error("Length field says {header} octets but the datagram has {actual}")]
    LengthMismatch {
        /// Value of the Length field.
        header: u16,
        /// Datagram length.
        actual: usize,
    },
    /// The Length field is smaller than the header it is part of.
    #[error("Length field {length} is smaller than the {header_len}-octet header")]
    LengthTooSmall {
        /// Value of the Length field.
        length: u16,
        /// Length of the header.
        header_len: usize,
    },
    /// Fewer than the 6 octets of an AVP header remain after the last AVP.
    #[error("truncated AVP header at offset {offset}: {remaining} octets left")]
    AvpHeaderTruncated {
        /// Offset of the partial AVP.
        offset: usize,
        /// Octets left in the message.
        remaining: usize,
    },
    /// An AVP Length field below 6, the size of the AVP header.
    #[error("AVP at offset {offset} has length {length} < 6")]
    AvpTooShort {
        /// Offset of the AVP.
        offset: usize,
        /// Its Length field.
        length: u16,
    },
    /// An AVP Length field that reaches past the end of the message.
    #[error("AVP at offset {offset} has length {length} but only {remaining} octets remain")]
    AvpOverrun {
        /// Offset of the AVP.
        offset: usize,
        /// Its Length field.
        length: u16,
        /// Octets left in the message from `offset`.
        remaining: usize,
    },
    /// A known AVP whose value does not have the shape RFC 2661 §4.4
    /// prescribes (e.g. a 3-octet Assigned Tunnel ID).
    #[error("bad value of {attribute} AVP at offset {offset}: {reason}")]
    BadAvpValue {
        /// Attribute type.
        attribute: AttributeType,
        /// Offset of the AVP.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A hidden AVP (H bit) but no tunnel secret was supplied.
    #[error("hidden {attribute} AVP at offset {offset} but no shared secret")]
    HiddenWithoutSecret {
        /// Attribute type.
        attribute: AttributeType,
        /// Offset of the AVP.
        offset: usize,
    },
    /// A Message Type or Random Vector AVP with the H bit set: RFC 2661
    /// §4.4.1 and §4.4.3 say these MUST NOT be hidden (a hidden Random
    /// Vector would have to be unhidden with itself). The message is
    /// malformed.
    #[error("{attribute} AVP at offset {offset} is hidden, which RFC 2661 forbids")]
    HiddenForbidden {
        /// Attribute type.
        attribute: AttributeType,
        /// Offset of the AVP.
        offset: usize,
    },
    /// A hidden AVP with no Random Vector AVP before it (RFC 2661 §4.3).
    #[error("hidden {attribute} AVP at offset {offset} without a preceding Random Vector")]
    HiddenWithoutRandomVector {
        /// Attribute type.
        attribute: AttributeType,
        /// Offset of the AVP.
        offset: usize,
    },
    /// The hidden value is shorter than its 2-octet length prefix, or the
    /// decrypted "Length of Original Value" exceeds the octets that follow
    /// it (wrong secret or corrupt AVP).
    #[error(
        "hidden {attribute} AVP at offset {offset}: original length {original_length} \
         exceeds the {available} octets available"
    )]
    HiddenLengthInvalid {
        /// Attribute type.
        attribute: AttributeType,
        /// Offset of the AVP.
        offset: usize,
        /// Decrypted original length (0 if the prefix itself is missing).
        original_length: u16,
        /// Octets available after the prefix.
        available: usize,
    },
}

/// Why a control message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An AVP has `hidden == true` but `encode` was called without a secret.
    /// The encoder refuses rather than sending the value in the clear.
    #[error("{attribute} AVP is marked hidden but no secret was given")]
    HiddenWithoutSecret {
        /// Attribute type.
        attribute: AttributeType,
    },
    /// Message Type and Random Vector AVPs MUST NOT be hidden (RFC 2661
    /// §4.3, §4.4.1).
    #[error("{attribute} AVP must not be hidden")]
    MustNotBeHidden {
        /// Attribute type.
        attribute: AttributeType,
    },
    /// An AVP longer than the 10-bit AVP Length field allows (1023 octets
    /// including the 6-octet header).
    #[error("{attribute} AVP would be {length} octets, more than 1023")]
    AvpTooLong {
        /// Attribute type.
        attribute: AttributeType,
        /// Encoded AVP length.
        length: usize,
    },
    /// A message longer than the 16-bit Length field allows.
    #[error("control message would be {length} octets, more than 65535")]
    MessageTooLong {
        /// Encoded message length.
        length: usize,
    },
    /// A value that has no RFC 2661 encoding (e.g. a Result Code with an
    /// error message but no error code).
    #[error("invalid {attribute} value: {reason}")]
    InvalidValue {
        /// Attribute type.
        attribute: AttributeType,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Why a decoded [`ControlMessage`](super::ControlMessage) is not a valid
/// RFC 2661 §6 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message is a ZLB acknowledgement (no AVPs).
    #[error("ZLB message has no body")]
    Zlb,
    /// The first AVP is not a Message Type AVP (RFC 2661 §4.4.1).
    #[error("first AVP is not Message Type")]
    FirstAvpNotMessageType,
    /// The message type is not one RFC 2661 defines. `mandatory` is the M bit
    /// of the Message Type AVP: if set the tunnel should be cleared, else the
    /// message ignored (RFC 2661 §4.4.1).
    #[error("unknown message {message_type} (M bit {mandatory})")]
    UnknownMessageType {
        /// The message type.
        message_type: MessageType,
        /// M bit of the Message Type AVP.
        mandatory: bool,
    },
    /// A mandatory AVP of RFC 2661 §6 is missing.
    #[error("{message} without mandatory {attribute} AVP")]
    MissingAvp {
        /// Message type.
        message: MessageType,
        /// Missing attribute.
        attribute: AttributeType,
    },
    /// An AVP that may occur once occurs more than once.
    #[error("{message} with duplicate {attribute} AVP")]
    DuplicateAvp {
        /// Message type.
        message: MessageType,
        /// Duplicated attribute.
        attribute: AttributeType,
    },
    /// A known AVP that RFC 2661 §6 does not allow in this message, sent
    /// with the M bit set. (Without M bit it is tolerated and kept in
    /// `other`.)
    #[error("{message} with unexpected mandatory {attribute} AVP")]
    UnexpectedAvp {
        /// Message type.
        message: MessageType,
        /// Unexpected attribute.
        attribute: AttributeType,
    },
    /// An unrecognised AVP (unknown attribute, vendor AVP or reserved bits
    /// set) with the M bit set (RFC 2661 §4.1: the session or tunnel MUST be
    /// terminated).
    #[error("{message} with unknown mandatory AVP vendor {vendor_id} {attribute}")]
    UnknownMandatoryAvp {
        /// Message type.
        message: MessageType,
        /// Vendor id of the AVP.
        vendor_id: u16,
        /// Attribute type of the AVP.
        attribute: AttributeType,
    },
}
