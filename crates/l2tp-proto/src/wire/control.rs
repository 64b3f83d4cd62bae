//! Control messages as on the wire: header plus the AVP list in wire order.

use super::avp::{
    AVP_FLAG_H, AVP_FLAG_M, AVP_HEADER_LEN, AVP_LENGTH_MASK, AVP_MAX_LEN, AVP_RESERVED_MASK, Avp,
    AvpValue,
};
use super::error::{DecodeError, EncodeError};
use super::header::{CONTROL_HEADER_LEN, ControlHeader, PacketKind, decode_header};
use super::hidden::{self, UnhideError};
use super::types::{AttributeType, MessageType};

/// Length of the Random Vector the encoder generates when it has to insert
/// one (RFC 2661 §4.3 allows any length).
pub const RANDOM_VECTOR_LEN: usize = 16;

/// A control message as on the wire (RFC 2661 §3.1, §4): header and AVPs in
/// wire order; `avps.is_empty()` ⇔ ZLB acknowledgement (RFC 2661 §5.8).
///
/// Keeping the AVP list in wire order, with M/H flags and Random Vector
/// AVPs, makes decode → encode reproduce the peer's bytes (when no padding
/// was used in hidden AVPs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlMessage {
    /// The header; the Length field is implied.
    pub header: ControlHeader,
    /// The AVPs in wire order; hidden AVPs hold their unhidden value.
    pub avps: Vec<Avp>,
}

impl ControlMessage {
    /// A ZLB (zero-length body) acknowledgement with the given header.
    pub fn zlb(header: ControlHeader) -> Self {
        Self {
            header,
            avps: Vec::new(),
        }
    }

    /// Decodes a control message (RFC 2661 §3.1, §4.1).
    ///
    /// Requires T=1, L=1, S=1, O=0, Ver=2; parses the AVPs in `buf[header ..
    /// Length]` (octets past the Length field are ignored). `secret` (the
    /// tunnel secret) is needed only to unhide hidden AVPs (H bit), each
    /// with the most recent Random Vector AVP before it; a hidden AVP with
    /// no secret is [`DecodeError::HiddenWithoutSecret`]. Unknown
    /// attributes and vendor AVPs become [`AvpValue::Unknown`], AVPs with
    /// reserved bits set [`AvpValue::ReservedBits`]; no §6 rules are
    /// checked here (see [`Message::from_control`](super::Message::from_control)).
    pub fn decode(buf: &[u8], secret: Option<&[u8]>) -> Result<Self, DecodeError> {
        let (h, header_len) = decode_header(buf)?;
        if h.kind != PacketKind::Control {
            return Err(DecodeError::NotControl);
        }
        let (Some(length), Some(ns), Some(nr)) = (h.length, h.ns, h.nr) else {
            return Err(DecodeError::MissingLengthOrSequence);
        };
        if h.offset_size.is_some() {
            return Err(DecodeError::ControlOffsetPresent);
        }
        let header = ControlHeader {
            tunnel_id: h.tunnel_id,
            session_id: h.session_id,
            ns,
            nr,
        };
        // decode_header checked header_len <= length <= buf.len().
        let end = usize::from(length);
        let mut avps = Vec::new();
        let mut random_vector: Option<Vec<u8>> = None;
        let mut offset = header_len;
        while offset < end {
            let remaining = end - offset;
            let rest = buf.get(offset..end).unwrap_or(&[]);
            let [f0, f1, v0, v1, a0, a1, ..] = *rest else {
                return Err(DecodeError::AvpHeaderTruncated { offset, remaining });
            };
            let flags_len = u16::from_be_bytes([f0, f1]);
            let vendor_id = u16::from_be_bytes([v0, v1]);
            let attribute = AttributeType(u16::from_be_bytes([a0, a1]));
            let length = flags_len & AVP_LENGTH_MASK;
            let avp_len = usize::from(length);
            if avp_len < AVP_HEADER_LEN {
                return Err(DecodeError::AvpTooShort { offset, length });
            }
            if avp_len > remaining {
                return Err(DecodeError::AvpOverrun {
                    offset,
                    length,
                    remaining,
                });
            }
            let raw = rest.get(AVP_HEADER_LEN..avp_len).unwrap_or(&[]);
            let mandatory = flags_len & AVP_FLAG_M != 0;
            let is_hidden = flags_len & AVP_FLAG_H != 0;
            let reserved = ((flags_len & AVP_RESERVED_MASK) >> 10) as u8;

            let plain: Vec<u8>;
            if is_hidden
                && vendor_id == 0
                && (attribute == AttributeType::MESSAGE_TYPE
                    || attribute == AttributeType::RANDOM_VECTOR)
            {
                return Err(DecodeError::HiddenForbidden { attribute, offset });
            }
            let value_bytes: &[u8] = if is_hidden {
                let Some(secret) = secret else {
                    return Err(DecodeError::HiddenWithoutSecret { attribute, offset });
                };
                let Some(rv) = random_vector.as_deref() else {
                    return Err(DecodeError::HiddenWithoutRandomVector { attribute, offset });
                };
                plain = hidden::unhide(attribute, secret, rv, raw).map_err(|e| match e {
                    UnhideError::TooShort { len } => DecodeError::HiddenLengthInvalid {
                        attribute,
                        offset,
                        original_length: 0,
                        available: len,
                    },
                    UnhideError::LengthInvalid {
                        original_length,
                        available,
                    } => DecodeError::HiddenLengthInvalid {
                        attribute,
                        offset,
                        original_length,
                        available,
                    },
                })?;
                &plain
            } else {
                raw
            };

            let value = if reserved != 0 {
                AvpValue::ReservedBits {
                    bits: reserved,
                    vendor_id,
                    attribute,
                    value: value_bytes.to_vec(),
                }
            } else if vendor_id != 0 {
                AvpValue::Unknown {
                    vendor_id,
                    attribute,
                    value: value_bytes.to_vec(),
                }
            } else {
                AvpValue::decode_ietf(attribute, value_bytes).map_err(|reason| {
                    DecodeError::BadAvpValue {
                        attribute,
                        offset,
                        reason,
                    }
                })?
            };
            if let AvpValue::RandomVector(rv) = &value {
                random_vector = Some(rv.clone());
            }
            if matches!(
                value,
                AvpValue::Unknown { .. } | AvpValue::ReservedBits { .. }
            ) {
                tracing::trace!(
                    vendor_id,
                    attribute = attribute.0,
                    mandatory,
                    "unrecognised AVP"
                );
            }
            avps.push(Avp {
                mandatory,
                hidden: is_hidden,
                value,
            });
            offset += avp_len;
        }
        Ok(Self { header, avps })
    }

    /// Encodes with T=1, L=1, S=1, O=0, P=0, Ver=2 and the Length field
    /// computed (RFC 2661 §3.1).
    ///
    /// `hide`: `Some((secret, rng))` hides every AVP whose `hidden` flag is
    /// true (RFC 2661 §4.3) with the most recent Random Vector AVP before it
    /// in `avps`; if there is none, a fresh Random Vector AVP
    /// ([`RANDOM_VECTOR_LEN`] octets from `rng`, M=1, H=0) is inserted
    /// immediately before the first hidden AVP. No padding is added to
    /// hidden values. `None`: any AVP with `hidden` set is an
    /// [`EncodeError::HiddenWithoutSecret`] (the encoder never silently
    /// sends a value meant to be hidden in the clear); Random Vector AVPs
    /// present in `avps` are sent as they are either way.
    ///
    /// Errors also for hidden Message Type / Random Vector AVPs, values that
    /// have no encoding, AVPs over 1023 octets and messages over 65535.
    pub fn encode(
        &self,
        mut hide: Option<(&[u8], &mut dyn rand_core::RngCore)>,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(CONTROL_HEADER_LEN + 16 * self.avps.len());
        self.header.write(0, &mut out);
        let mut random_vector: Option<Vec<u8>> = None;
        for avp in &self.avps {
            let attribute = avp.attribute();
            let plain = avp
                .value
                .encode_value()
                .map_err(|reason| EncodeError::InvalidValue { attribute, reason })?;
            let value = if avp.hidden {
                if matches!(
                    avp.value,
                    AvpValue::MessageType(_) | AvpValue::RandomVector(_)
                ) {
                    return Err(EncodeError::MustNotBeHidden { attribute });
                }
                let Some((secret, rng)) = hide.as_mut() else {
                    return Err(EncodeError::HiddenWithoutSecret { attribute });
                };
                let rv = match &random_vector {
                    Some(rv) => rv.clone(),
                    None => {
                        let mut rv = vec![0u8; RANDOM_VECTOR_LEN];
                        rng.fill_bytes(&mut rv);
                        let inserted = Avp::new(AvpValue::RandomVector(rv.clone()));
                        write_avp(&mut out, &inserted, &rv)?;
                        random_vector = Some(rv.clone());
                        rv
                    }
                };
                hidden::hide(attribute, secret, &rv, &plain, &[]).map_err(|_| {
                    EncodeError::AvpTooLong {
                        attribute,
                        length: AVP_HEADER_LEN + 2 + plain.len(),
                    }
                })?
            } else {
                plain
            };
            if let AvpValue::RandomVector(rv) = &avp.value {
                random_vector = Some(rv.clone());
            }
            write_avp(&mut out, avp, &value)?;
        }
        let length = u16::try_from(out.len())
            .map_err(|_| EncodeError::MessageTooLong { length: out.len() })?;
        let [l0, l1] = length.to_be_bytes();
        if let Some(slot) = out.get_mut(2..4) {
            slot.copy_from_slice(&[l0, l1]);
        }
        Ok(out)
    }

    /// The message type: the value of the first AVP if it is a Message Type
    /// AVP; `None` for a ZLB (or a malformed message whose first AVP is
    /// something else).
    pub fn message_type(&self) -> Option<MessageType> {
        match self.avps.first() {
            Some(Avp {
                value: AvpValue::MessageType(t),
                ..
            }) => Some(*t),
            _ => None,
        }
    }

    /// Whether this is a ZLB acknowledgement (no AVPs).
    pub fn is_zlb(&self) -> bool {
        self.avps.is_empty()
    }

    /// First AVP that this implementation does not recognise (unknown
    /// attribute, vendor-specific, or reserved bits set) and that has the M
    /// bit set: RFC 2661 §4.1 requires tearing down the session (session
    /// message) or tunnel (control-connection message), with error code
    /// [`ErrorCode::UNKNOWN_MANDATORY_AVP`](super::ErrorCode::UNKNOWN_MANDATORY_AVP).
    pub fn unknown_mandatory(&self) -> Option<&Avp> {
        self.avps
            .iter()
            .find(|a| a.mandatory && a.is_unrecognised())
    }

    /// First AVP with the given IETF attribute type.
    pub fn find(&self, attribute: AttributeType) -> Option<&Avp> {
        self.avps
            .iter()
            .find(|a| a.vendor_id() == 0 && a.attribute() == attribute && !a.is_unrecognised())
    }
}

fn write_avp(out: &mut Vec<u8>, avp: &Avp, value: &[u8]) -> Result<(), EncodeError> {
    let attribute = avp.attribute();
    let len = AVP_HEADER_LEN + value.len();
    if len > AVP_MAX_LEN {
        return Err(EncodeError::AvpTooLong {
            attribute,
            length: len,
        });
    }
    // Lossless: len <= 1023.
    let mut flags_len = len as u16;
    if avp.mandatory {
        flags_len |= AVP_FLAG_M;
    }
    if avp.hidden {
        flags_len |= AVP_FLAG_H;
    }
    flags_len |= u16::from(avp.value.reserved_bits()) << 10;
    out.extend_from_slice(&flags_len.to_be_bytes());
    out.extend_from_slice(&avp.vendor_id().to_be_bytes());
    out.extend_from_slice(&attribute.0.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}
