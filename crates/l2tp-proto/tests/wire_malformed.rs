//! Malformed input: every case must be a specific `DecodeError`, never a
//! panic.

use std::path::PathBuf;

use l2tp_proto::wire::hidden;
use l2tp_proto::wire::{
    AttributeType, Avp, AvpValue, ControlHeader, ControlMessage, DecodeError, EncodeError, Header,
    MessageType, PacketKind, SessionId, TunnelId, decode_header,
};

fn load(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "vectors",
        "xl2tpd",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(path).expect("vector");
    let s = text.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Control header (T, L, S, Ver 2) with the given Length, tunnel 1,
/// session 0, Ns 0, Nr 0, followed by `body`. Length is computed if `None`.
fn control(length: Option<u16>, body: &[u8]) -> Vec<u8> {
    let len = length.unwrap_or((12 + body.len()) as u16);
    let mut v = vec![0xc8, 0x02];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(body);
    v
}

/// An AVP with the given flags/length word, vendor, attribute and value.
fn avp(flags_len: u16, vendor: u16, attr: u16, value: &[u8]) -> Vec<u8> {
    let mut v = flags_len.to_be_bytes().to_vec();
    v.extend_from_slice(&vendor.to_be_bytes());
    v.extend_from_slice(&attr.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn hello_avp() -> Vec<u8> {
    avp(0x8008, 0, 0, &[0, 6])
}

const SECRET: &[u8] = b"s3cret";

#[test]
fn zero_length_datagram() {
    assert_eq!(
        decode_header(&[]),
        Err(DecodeError::Truncated { needed: 2, got: 0 })
    );
    assert_eq!(
        ControlMessage::decode(&[], None),
        Err(DecodeError::Truncated { needed: 2, got: 0 })
    );
}

#[test]
fn every_prefix_of_a_valid_message_is_rejected() {
    let full = load("sccrq.hex");
    assert_eq!(full.len(), 105);
    for cut in 0..full.len() {
        let got = ControlMessage::decode(&full[..cut], None);
        let want = match cut {
            0 | 1 => DecodeError::Truncated {
                needed: 2,
                got: cut,
            },
            2..=11 => DecodeError::Truncated {
                needed: 12,
                got: cut,
            },
            _ => DecodeError::LengthMismatch {
                header: 105,
                actual: cut,
            },
        };
        assert_eq!(got, Err(want), "prefix of {cut} octets");
    }
    assert!(ControlMessage::decode(&full, None).is_ok());
}

/// Prefixes with the Length field patched to match: the AVP walker itself
/// must notice the truncation (or accept a cut on an AVP boundary).
#[test]
fn every_prefix_with_consistent_length_field() {
    let full = load("sccrq.hex");
    // AVP boundaries from tshark: lengths 8,8,10,10,8,14,19,8,8.
    let mut boundaries = vec![12usize];
    for l in [8, 8, 10, 10, 8, 14, 19, 8, 8] {
        boundaries.push(boundaries.last().copied().unwrap_or(0) + l);
    }
    for cut in 12..=full.len() {
        let mut b = full[..cut].to_vec();
        b[2..4].copy_from_slice(&(cut as u16).to_be_bytes());
        let got = ControlMessage::decode(&b, None);
        if let Some(n) = boundaries.iter().position(|&x| x == cut) {
            assert_eq!(got.map(|m| m.avps.len()), Ok(n), "cut {cut}");
            continue;
        }
        let start = boundaries
            .iter()
            .copied()
            .filter(|&x| x < cut)
            .max()
            .unwrap_or(12);
        let remaining = cut - start;
        let want = if remaining < 6 {
            DecodeError::AvpHeaderTruncated {
                offset: start,
                remaining,
            }
        } else {
            let length = u16::from_be_bytes([full[start], full[start + 1]]) & 0x3ff;
            DecodeError::AvpOverrun {
                offset: start,
                length,
                remaining,
            }
        };
        assert_eq!(got, Err(want), "cut {cut}");
    }
}

#[test]
fn wrong_version() {
    for (flags, v) in [(0xc801u16, 1u8), (0xc803, 3), (0xc800, 0), (0x000f, 15)] {
        let mut b = control(None, &hello_avp());
        b[0..2].copy_from_slice(&flags.to_be_bytes());
        assert_eq!(
            ControlMessage::decode(&b, None),
            Err(DecodeError::WrongVersion(v))
        );
        assert_eq!(decode_header(&b), Err(DecodeError::WrongVersion(v)));
    }
    // One octet is not enough to see the version.
    assert_eq!(
        decode_header(&[0xc8]),
        Err(DecodeError::Truncated { needed: 2, got: 1 })
    );
}

#[test]
fn length_field_larger_than_datagram() {
    let b = control(Some(21), &hello_avp());
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::LengthMismatch {
            header: 21,
            actual: 20
        })
    );
    let b = control(Some(0xffff), &[]);
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::LengthMismatch {
            header: 0xffff,
            actual: 12
        })
    );
}

#[test]
fn length_field_smaller_than_header() {
    for l in [0u16, 1, 11] {
        let b = control(Some(l), &[]);
        assert_eq!(
            ControlMessage::decode(&b, None),
            Err(DecodeError::LengthTooSmall {
                length: l,
                header_len: 12
            })
        );
    }
}

#[test]
fn octets_past_length_are_ignored() {
    let mut b = control(None, &hello_avp());
    b.extend_from_slice(&[0xde, 0xad, 0xbe]);
    let m = ControlMessage::decode(&b, None).expect("decode");
    assert_eq!(m.message_type(), Some(MessageType::HELLO));
    assert_eq!(m.avps.len(), 1);
    // A Length that stops inside the header-sized ZLB: a ZLB.
    let mut z = control(Some(12), &[]);
    z.extend_from_slice(&hello_avp());
    assert!(ControlMessage::decode(&z, None).expect("decode").is_zlb());
}

#[test]
fn data_messages_are_not_control() {
    // T=0, L=1, Ver 2, Length 8, tunnel 1, session 2, then 2 octets of PPP.
    let b = [0x40, 0x02, 0, 8, 0, 1, 0, 2];
    let (h, n) = decode_header(&b).expect("header");
    assert_eq!(n, 8);
    assert_eq!(h.kind, PacketKind::Data);
    assert_eq!(
        (h.tunnel_id, h.session_id, h.length, h.ns),
        (TunnelId(1), SessionId(2), Some(8), None)
    );
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::NotControl)
    );
}

#[test]
fn data_header_with_sequence_offset_and_priority() {
    // T=0 L=0 S=1 O=1 P=1 Ver 2; tunnel 3, session 4, Ns 5, Nr 6, offset 3
    // + 3 pad octets, then payload ff.
    let b = [
        0x0b, 0x02, 0, 3, 0, 4, 0, 5, 0, 6, 0, 3, 0xaa, 0xbb, 0xcc, 0xff,
    ];
    let (h, n) = decode_header(&b).expect("header");
    let want = Header {
        kind: PacketKind::Data,
        version: 2,
        length: None,
        tunnel_id: TunnelId(3),
        session_id: SessionId(4),
        ns: Some(5),
        nr: Some(6),
        offset_size: Some(3),
        priority: true,
    };
    assert_eq!((h, n), (want, 15));
    assert_eq!(&want.to_bytes()[..12], &b[..12]);
    // Offset padding cut short.
    assert_eq!(
        decode_header(&b[..13]),
        Err(DecodeError::Truncated {
            needed: 15,
            got: 13
        })
    );
    // Offset Size field itself cut short.
    assert_eq!(
        decode_header(&b[..11]),
        Err(DecodeError::Truncated {
            needed: 12,
            got: 11
        })
    );
}

#[test]
fn control_without_length_or_sequence() {
    // T S Ver (no L): tunnel 1 session 0 Ns 0 Nr 0.
    let no_len = [0x88, 0x02, 0, 1, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        ControlMessage::decode(&no_len, None),
        Err(DecodeError::MissingLengthOrSequence)
    );
    // T L Ver (no S).
    let no_seq = [0xc0, 0x02, 0, 8, 0, 1, 0, 0];
    assert_eq!(
        ControlMessage::decode(&no_seq, None),
        Err(DecodeError::MissingLengthOrSequence)
    );
}

#[test]
fn control_with_offset() {
    let b = [0xca, 0x02, 0, 14, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::ControlOffsetPresent)
    );
}

#[test]
fn avp_length_below_six() {
    for l in 0..6u16 {
        let b = control(None, &avp(0x8000 | l, 0, 0, &[0, 6]));
        assert_eq!(
            ControlMessage::decode(&b, None),
            Err(DecodeError::AvpTooShort {
                offset: 12,
                length: l
            })
        );
    }
    // Second AVP.
    let mut body = hello_avp();
    body.extend_from_slice(&avp(0x0003, 0, 9, &[]));
    assert_eq!(
        ControlMessage::decode(&control(None, &body), None),
        Err(DecodeError::AvpTooShort {
            offset: 20,
            length: 3
        })
    );
}

#[test]
fn avp_length_past_end() {
    let b = control(None, &avp(0x8009, 0, 0, &[0, 6]));
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::AvpOverrun {
            offset: 12,
            length: 9,
            remaining: 8
        })
    );
}

#[test]
fn overlong_vendor_avp() {
    // Vendor 311, attribute 1, AVP Length 1023 (the maximum), 10 octets sent.
    let mut body = hello_avp();
    body.extend_from_slice(&avp(0x03ff, 311, 1, &[1, 2, 3, 4]));
    assert_eq!(
        ControlMessage::decode(&control(None, &body), None),
        Err(DecodeError::AvpOverrun {
            offset: 20,
            length: 1023,
            remaining: 10
        })
    );
    // Same with a Length field reaching past a datagram-level Length.
    let mut body = hello_avp();
    body.extend_from_slice(&avp(0x8010, 311, 1, &[0; 10]));
    let mut b = control(Some(24), &body);
    let len = b.len();
    assert_eq!(len, 36);
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::AvpHeaderTruncated {
            offset: 20,
            remaining: 4
        })
    );
    b[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(
        ControlMessage::decode(&b, None),
        Err(DecodeError::AvpOverrun {
            offset: 20,
            length: 16,
            remaining: 10
        })
    );
}

#[test]
fn encoder_refuses_overlong_avp_and_message() {
    let big = Avp::new(AvpValue::Unknown {
        vendor_id: 311,
        attribute: AttributeType(1),
        value: vec![0; 1018],
    });
    let msg = ControlMessage {
        header: ControlHeader::default(),
        avps: vec![Avp::new(AvpValue::MessageType(MessageType::HELLO)), big],
    };
    assert_eq!(
        msg.encode(None).map(|b| b.len()),
        Err(EncodeError::AvpTooLong {
            attribute: AttributeType(1),
            length: 1024
        })
    );
    let ok = Avp::new(AvpValue::Unknown {
        vendor_id: 311,
        attribute: AttributeType(1),
        value: vec![0; 1017],
    });
    let mut avps = vec![Avp::new(AvpValue::MessageType(MessageType::HELLO))];
    avps.extend(std::iter::repeat_n(ok, 64));
    let mut msg = ControlMessage {
        header: ControlHeader::default(),
        avps,
    };
    // 12 + 8 + 64 × 1023 = 65492 octets still fit …
    assert_eq!(msg.encode(None).map(|b| b.len()), Ok(65492));
    // … one more AVP does not.
    msg.avps.push(msg.avps[1].clone());
    assert_eq!(
        msg.encode(None).map(|b| b.len()),
        Err(EncodeError::MessageTooLong {
            length: 65492 + 1023
        })
    );
}

#[test]
fn bad_fixed_length_values() {
    let cases: &[(u16, &[u8], &str)] = &[
        (0, &[0, 1, 2], "expected 2 octets"),
        (1, &[0], "Result Code shorter than 2 octets"),
        (1, &[0, 1, 0], "Result Code of 3 octets"),
        (2, &[1], "expected 2 octets"),
        (5, &[0; 7], "expected 8 octets"),
        (9, &[0, 0, 1], "expected 2 octets"),
        (12, &[0, 1], "Q.931 Cause Code shorter than 3 octets"),
        (13, &[0; 15], "expected 16 octets"),
        (15, &[0; 5], "expected 4 octets"),
        (34, &[0; 25], "expected 26 octets"),
        (35, &[0; 11], "expected 10 octets"),
        (39, &[0], "expected no value"),
    ];
    for &(attr, value, reason) in cases {
        let mut body = hello_avp();
        body.extend_from_slice(&avp(0x8000 | (6 + value.len() as u16), 0, attr, value));
        assert_eq!(
            ControlMessage::decode(&control(None, &body), None),
            Err(DecodeError::BadAvpValue {
                attribute: AttributeType(attr),
                offset: 20,
                reason
            }),
            "attribute {attr}"
        );
    }
}

fn rv_avp(rv: &[u8]) -> Vec<u8> {
    avp(0x8000 | (6 + rv.len() as u16), 0, 36, rv)
}

#[test]
fn hidden_avp_without_secret() {
    let mut body = hello_avp();
    body.extend_from_slice(&rv_avp(&[7; 16]));
    body.extend_from_slice(&avp(0xc00a, 0, 9, &[1, 2, 3, 4]));
    assert_eq!(
        ControlMessage::decode(&control(None, &body), None),
        Err(DecodeError::HiddenWithoutSecret {
            attribute: AttributeType::ASSIGNED_TUNNEL_ID,
            offset: 42
        })
    );
}

#[test]
fn hidden_avp_without_random_vector() {
    let mut body = hello_avp();
    body.extend_from_slice(&avp(0xc00a, 0, 9, &[1, 2, 3, 4]));
    body.extend_from_slice(&rv_avp(&[7; 16]));
    assert_eq!(
        ControlMessage::decode(&control(None, &body), Some(SECRET)),
        Err(DecodeError::HiddenWithoutRandomVector {
            attribute: AttributeType::ASSIGNED_TUNNEL_ID,
            offset: 20
        })
    );
}

#[test]
fn hidden_length_prefix_exceeds_value() {
    let rv = [7u8; 16];
    // Hide 2 octets, then flip the prefix so it decrypts to 0xff02.
    let mut c =
        hidden::hide(AttributeType::ASSIGNED_TUNNEL_ID, SECRET, &rv, &[1, 2], &[]).expect("hide");
    c[0] ^= 0xff;
    let mut body = hello_avp();
    body.extend_from_slice(&rv_avp(&rv));
    body.extend_from_slice(&avp(0xc000 | (6 + c.len() as u16), 0, 9, &c));
    assert_eq!(
        ControlMessage::decode(&control(None, &body), Some(SECRET)),
        Err(DecodeError::HiddenLengthInvalid {
            attribute: AttributeType::ASSIGNED_TUNNEL_ID,
            offset: 42,
            original_length: 0xff02,
            available: 2,
        })
    );
    // Hidden values too short to hold the prefix.
    for short in [&[][..], &[0x55][..]] {
        let mut body = hello_avp();
        body.extend_from_slice(&rv_avp(&rv));
        body.extend_from_slice(&avp(0xc000 | (6 + short.len() as u16), 0, 9, short));
        assert_eq!(
            ControlMessage::decode(&control(None, &body), Some(SECRET)),
            Err(DecodeError::HiddenLengthInvalid {
                attribute: AttributeType::ASSIGNED_TUNNEL_ID,
                offset: 42,
                original_length: 0,
                available: short.len(),
            })
        );
    }
}

#[test]
fn hidden_value_of_wrong_shape_is_bad_value() {
    let rv = [7u8; 16];
    // A hidden Assigned Tunnel ID whose plaintext is 3 octets.
    let c = hidden::hide(
        AttributeType::ASSIGNED_TUNNEL_ID,
        SECRET,
        &rv,
        &[1, 2, 3],
        &[9; 5],
    )
    .expect("hide");
    let mut body = hello_avp();
    body.extend_from_slice(&rv_avp(&rv));
    body.extend_from_slice(&avp(0xc000 | (6 + c.len() as u16), 0, 9, &c));
    assert_eq!(
        ControlMessage::decode(&control(None, &body), Some(SECRET)),
        Err(DecodeError::BadAvpValue {
            attribute: AttributeType::ASSIGNED_TUNNEL_ID,
            offset: 42,
            reason: "expected 2 octets"
        })
    );
}

#[test]
fn reserved_bits_make_an_avp_unrecognised() {
    // M bit + reserved bit 0x0400 on an otherwise valid Assigned Tunnel ID.
    let mut body = hello_avp();
    body.extend_from_slice(&avp(0x8408, 0, 9, &[0, 5]));
    let b = control(None, &body);
    let m = ControlMessage::decode(&b, None).expect("decode");
    assert_eq!(
        m.avps[1].value,
        AvpValue::ReservedBits {
            bits: 1,
            vendor_id: 0,
            attribute: AttributeType::ASSIGNED_TUNNEL_ID,
            value: vec![0, 5]
        }
    );
    assert_eq!(m.unknown_mandatory(), Some(&m.avps[1]));
    assert_eq!(m.encode(None).expect("encode"), b);
}

#[test]
fn unknown_and_vendor_avps_round_trip() {
    let mut body = hello_avp();
    body.extend_from_slice(&avp(0x0009, 0, 20, &[1, 2, 3])); // reserved attribute 20, M=0
    body.extend_from_slice(&avp(0x800a, 9, 1, &[4, 5, 6, 7])); // Cisco vendor AVP, M=1
    body.extend_from_slice(&avp(0x0006, 0, 40, &[])); // attribute 40, empty
    let b = control(None, &body);
    let m = ControlMessage::decode(&b, None).expect("decode");
    assert_eq!(
        m.avps[1].value,
        AvpValue::Unknown {
            vendor_id: 0,
            attribute: AttributeType(20),
            value: vec![1, 2, 3]
        }
    );
    assert_eq!(
        m.avps[2].value,
        AvpValue::Unknown {
            vendor_id: 9,
            attribute: AttributeType(1),
            value: vec![4, 5, 6, 7]
        }
    );
    assert_eq!(m.unknown_mandatory(), Some(&m.avps[2]));
    assert_eq!(m.encode(None).expect("encode"), b);
}

/// Random garbage of every short length, deterministic: must not panic.
#[test]
fn garbage_never_panics() {
    let mut x: u32 = 0x1234_5678;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for len in 0..200usize {
        for _ in 0..50 {
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 4 && next() % 2 == 0 {
                // Make it look like a control message more often.
                b[0] = 0xc8 | (b[0] & 0x07);
                b[1] = 0x02;
                b[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            }
            let _ = decode_header(&b);
            let _ = ControlMessage::decode(&b, None);
            let _ = ControlMessage::decode(&b, Some(SECRET));
        }
    }
}
