//! Hiding of AVP attribute values (RFC 2661 §4.3).
//!
//! The plaintext is the *Hidden AVP Subformat*: the 2-octet length of the
//! original value (network order), the original value, then optional
//! padding. It is XORed with a key stream of 16-octet MD5 blocks:
//!
//! ```text
//! b(1) = MD5(attribute type (2 octets, network order) ‖ secret ‖ random vector)
//! c(1) = p(1) ⊕ b(1)
//! b(i) = MD5(secret ‖ c(i-1))          for i > 1
//! c(i) = p(i) ⊕ b(i)
//! ```
//!
//! where `p(i)`/`c(i)` are the 16-octet segments of the subformat and of the
//! hidden value; the last segment may be shorter and is XORed with the first
//! octets of its block. The random vector is the value of the Random Vector
//! AVP most recently preceding the hidden AVP in the message.

use md5::{Digest, Md5};

use super::types::AttributeType;

/// Errors of [`unhide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnhideError {
    /// The hidden value is shorter than the 2-octet length prefix.
    #[error("hidden value of {len} octets has no room for the length prefix")]
    TooShort {
        /// Length of the hidden value.
        len: usize,
    },
    /// The decrypted "Length of Original Value" is larger than the octets
    /// after the prefix (wrong secret, wrong random vector, or corrupt AVP).
    #[error("original length {original_length} exceeds the {available} octets available")]
    LengthInvalid {
        /// Decrypted length prefix.
        original_length: u16,
        /// Octets after the prefix.
        available: usize,
    },
}

/// Errors of [`hide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HideError {
    /// The value does not fit the 2-octet original-length prefix.
    #[error("value of {len} octets is too long to hide")]
    ValueTooLong {
        /// Length of the value.
        len: usize,
    },
}

/// XORs `data` in place with the RFC 2661 §4.3 key stream. `decrypt` selects
/// which side of the XOR feeds the chain: the chain always hashes the
/// *hidden* (cipher) segment, which is the output when hiding and the input
/// when unhiding.
fn apply(
    attribute: AttributeType,
    secret: &[u8],
    random_vector: &[u8],
    data: &mut [u8],
    decrypt: bool,
) {
    let mut block: [u8; 16] = {
        let mut h = Md5::new();
        h.update(attribute.0.to_be_bytes());
        h.update(secret);
        h.update(random_vector);
        h.finalize().into()
    };
    let mut chunks = data.chunks_mut(16).peekable();
    while let Some(chunk) = chunks.next() {
        let mut cipher = [0u8; 16];
        for (i, octet) in chunk.iter_mut().enumerate() {
            if decrypt {
                cipher[i] = *octet;
            }
            *octet ^= block[i];
            if !decrypt {
                cipher[i] = *octet;
            }
        }
        if chunks.peek().is_some() {
            // Only full segments are followed by another one, so `cipher`
            // holds exactly the 16 octets of c(i-1).
            let mut h = Md5::new();
            h.update(secret);
            h.update(cipher);
            block = h.finalize().into();
        }
    }
}

/// Hides `value` of an AVP of type `attribute` (RFC 2661 §4.3): builds the
/// Hidden AVP Subformat `len(value) (2 octets) ‖ value ‖ padding` and
/// encrypts it with `secret` and `random_vector` (the value of the Random
/// Vector AVP that will precede the AVP). Returns the octets to put in the
/// AVP's value field, `2 + value.len() + padding.len()` long.
pub fn hide(
    attribute: AttributeType,
    secret: &[u8],
    random_vector: &[u8],
    value: &[u8],
    padding: &[u8],
) -> Result<Vec<u8>, HideError> {
    let len =
        u16::try_from(value.len()).map_err(|_| HideError::ValueTooLong { len: value.len() })?;
    let mut out = Vec::with_capacity(2 + value.len() + padding.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(padding);
    apply(attribute, secret, random_vector, &mut out, false);
    Ok(out)
}

/// Reverses [`hide`]: decrypts the value field of a hidden AVP of type
/// `attribute` with `secret` and `random_vector`, checks the original-length
/// prefix against the octets present and returns the original value
/// (padding dropped). Never panics; a wrong secret usually yields
/// [`UnhideError::LengthInvalid`] but may also yield garbage of a plausible
/// length — hiding is not authenticated.
pub fn unhide(
    attribute: AttributeType,
    secret: &[u8],
    random_vector: &[u8],
    hidden: &[u8],
) -> Result<Vec<u8>, UnhideError> {
    if hidden.len() < 2 {
        return Err(UnhideError::TooShort { len: hidden.len() });
    }
    let mut plain = hidden.to_vec();
    apply(attribute, secret, random_vector, &mut plain, true);
    let original_length = u16::from_be_bytes([plain[0], plain[1]]);
    let available = plain.len() - 2;
    if usize::from(original_length) > available {
        return Err(UnhideError::LengthInvalid {
            original_length,
            available,
        });
    }
    plain.truncate(2 + usize::from(original_length));
    plain.drain(..2);
    Ok(plain)
}
