//! The L2TP header (RFC 2661 §3.1), common to control and data messages.
//!
//! ```text
//!  |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//!  |           Tunnel ID           |           Session ID          |
//!  |             Ns (opt)          |             Nr (opt)          |
//!  |      Offset Size (opt)        |    Offset pad... (opt)
//! ```

use nom::Parser;
use nom::combinator::cond;
use nom::number::complete::be_u16;

use super::error::DecodeError;
use super::types::{SessionId, TunnelId};

pub(crate) const FLAG_T: u16 = 0x8000;
pub(crate) const FLAG_L: u16 = 0x4000;
pub(crate) const FLAG_S: u16 = 0x0800;
pub(crate) const FLAG_O: u16 = 0x0200;
pub(crate) const FLAG_P: u16 = 0x0100;
pub(crate) const VERSION_MASK: u16 = 0x000f;

/// The L2TP version this crate speaks (RFC 2661 §3.1 `Ver` = 2).
pub const L2TP_VERSION: u8 = 2;

/// Length of a control message header: flags, Length, Tunnel ID, Session
/// ID, Ns, Nr (RFC 2661 §3.1). A ZLB is exactly this long.
pub const CONTROL_HEADER_LEN: usize = 12;

/// Kind of an L2TP message, from the T bit (RFC 2661 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// T = 1: control message.
    Control,
    /// T = 0: data message (a PPP frame).
    Data,
}

/// A decoded L2TP header (RFC 2661 §3.1) of a control or data message. The
/// optional fields are `Some` exactly when their flag bit (L, S, O) is set.
/// Reserved `x` bits are ignored as the RFC requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// T bit.
    pub kind: PacketKind,
    /// Ver field (always 2 after a successful [`decode_header`]).
    pub version: u8,
    /// Length field (L bit): total message length in octets, header
    /// included.
    pub length: Option<u16>,
    /// Tunnel ID: the *receiver's* id of the control connection.
    pub tunnel_id: TunnelId,
    /// Session ID: the *receiver's* id of the session, 0 for the tunnel.
    pub session_id: SessionId,
    /// Ns (S bit): send sequence number.
    pub ns: Option<u16>,
    /// Nr (S bit): next expected receive sequence number.
    pub nr: Option<u16>,
    /// Offset Size (O bit): octets of offset padding after the header that
    /// precede the payload.
    pub offset_size: Option<u16>,
    /// P bit: data message to be given priority (RFC 2661 §3.1; always
    /// false on control messages).
    pub priority: bool,
}

impl Header {
    /// Encodes this header. Flags T, L, S, O, P follow `kind`, `length`,
    /// `ns`/`nr` (both must be `Some` for S to be set; a lone one is
    /// written as S=1 with the other 0), `offset_size`, `priority`; Ver is
    /// `version & 0xf`. The offset padding (zeros) is appended after the
    /// Offset Size field. The Length field is written as given, not
    /// computed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut flags = u16::from(self.version) & VERSION_MASK;
        if self.kind == PacketKind::Control {
            flags |= FLAG_T;
        }
        if self.length.is_some() {
            flags |= FLAG_L;
        }
        let seq = self.ns.is_some() || self.nr.is_some();
        if seq {
            flags |= FLAG_S;
        }
        if self.offset_size.is_some() {
            flags |= FLAG_O;
        }
        if self.priority {
            flags |= FLAG_P;
        }
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&flags.to_be_bytes());
        if let Some(l) = self.length {
            out.extend_from_slice(&l.to_be_bytes());
        }
        out.extend_from_slice(&self.tunnel_id.0.to_be_bytes());
        out.extend_from_slice(&self.session_id.0.to_be_bytes());
        if seq {
            out.extend_from_slice(&self.ns.unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&self.nr.unwrap_or(0).to_be_bytes());
        }
        if let Some(o) = self.offset_size {
            out.extend_from_slice(&o.to_be_bytes());
            out.resize(out.len() + usize::from(o), 0);
        }
        out
    }
}

/// Decodes the L2TP header at the start of `buf` (any message, control or
/// data; RFC 2661 §3.1) and returns it with the header length in octets —
/// the offset of the first AVP of a control message or of the PPP frame of
/// a data message (the offset padding announced by Offset Size is included).
///
/// Checks: the datagram holds the whole header (`Truncated`), Ver is 2
/// (`WrongVersion`), and if the L bit is set the Length field is neither
/// larger than the datagram (`LengthMismatch`) nor smaller than the header
/// (`LengthTooSmall`). Octets past Length are not part of the message and
/// are ignored by the decoders of this module.
pub fn decode_header(buf: &[u8]) -> Result<(Header, usize), DecodeError> {
    let truncated = |needed: usize| DecodeError::Truncated {
        needed,
        got: buf.len(),
    };
    let (_, flags) = be_u16::<_, nom::error::Error<&[u8]>>(buf).map_err(|_| truncated(2))?;
    // Lossless: masked to 4 bits.
    let version = (flags & VERSION_MASK) as u8;
    if version != L2TP_VERSION {
        return Err(DecodeError::WrongVersion(version));
    }
    let has_len = flags & FLAG_L != 0;
    let has_seq = flags & FLAG_S != 0;
    let has_off = flags & FLAG_O != 0;
    let fixed = 2
        + if has_len { 2 } else { 0 }
        + 4
        + if has_seq { 4 } else { 0 }
        + if has_off { 2 } else { 0 };
    if buf.len() < fixed {
        return Err(truncated(fixed));
    }
    type E<'a> = nom::error::Error<&'a [u8]>;
    let mut fields = (
        cond(has_len, be_u16::<_, E>),
        be_u16,
        be_u16,
        cond(has_seq, (be_u16, be_u16)),
        cond(has_off, be_u16),
    );
    let (_, (length, tunnel_id, session_id, seq, offset_size)) = fields
        .parse(buf.get(2..).unwrap_or(&[]))
        .map_err(|_| truncated(fixed))?;
    let (tunnel_id, session_id) = (TunnelId(tunnel_id), SessionId(session_id));
    let (ns, nr) = (seq.map(|s| s.0), seq.map(|s| s.1));
    let header_len = fixed + usize::from(offset_size.unwrap_or(0));
    if buf.len() < header_len {
        return Err(truncated(header_len));
    }
    if let Some(l) = length {
        if usize::from(l) > buf.len() {
            return Err(DecodeError::LengthMismatch {
                header: l,
                actual: buf.len(),
            });
        }
        if usize::from(l) < header_len {
            return Err(DecodeError::LengthTooSmall {
                length: l,
                header_len,
            });
        }
    }
    let header = Header {
        kind: if flags & FLAG_T != 0 {
            PacketKind::Control
        } else {
            PacketKind::Data
        },
        version,
        length,
        tunnel_id,
        session_id,
        ns,
        nr,
        offset_size,
        priority: flags & FLAG_P != 0,
    };
    Ok((header, header_len))
}

/// The header of a control message (RFC 2661 §3.1 with T=1, L=1, S=1, O=0,
/// P=0, Ver=2); the Length field is computed when encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ControlHeader {
    /// The receiver's tunnel id (0 in an SCCRQ).
    pub tunnel_id: TunnelId,
    /// The receiver's session id: 0 for control-connection messages, the
    /// peer's id for session messages (0 in ICRQ/OCRQ).
    pub session_id: SessionId,
    /// Ns, send sequence number of this message (RFC 2661 §5.8).
    pub ns: u16,
    /// Nr, next sequence number expected from the peer (RFC 2661 §5.8).
    pub nr: u16,
}

impl ControlHeader {
    /// Writes the 12-octet control header with the given Length field.
    pub(crate) fn write(&self, length: u16, out: &mut Vec<u8>) {
        let flags: u16 = FLAG_T | FLAG_L | FLAG_S | u16::from(L2TP_VERSION);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.tunnel_id.0.to_be_bytes());
        out.extend_from_slice(&self.session_id.0.to_be_bytes());
        out.extend_from_slice(&self.ns.to_be_bytes());
        out.extend_from_slice(&self.nr.to_be_bytes());
    }
}
