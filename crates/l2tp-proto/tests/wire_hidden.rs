//! Hidden AVPs (RFC 2661 §4.3).
//!
//! The expected cipher texts were computed outside this crate, step by step
//! from the RFC's description, with Python's `hashlib.md5`:
//!
//! ```text
//! secret S = "secret" = 73 65 63 72 65 74
//! random vector RV = 00 01 02 … 0f (16 octets)
//!
//! Vector 1: Assigned Tunnel ID (attribute 9), value 12 34
//!   subformat p = 00 02 | 12 34                    (length prefix, value)
//!   b1 = MD5(00 09 ‖ S ‖ RV) = be681dc7dfe444d9cd76415abc1af578
//!   c  = p ⊕ b1[0..4] = (00^be)(02^68)(12^1d)(34^c7) = be 6a 0f f3
//!
//! Vector 2: Proxy Authen Name (attribute 30 = 00 1e),
//!   value "proxy-user@example.net" (22 octets)
//!   p  = 00 16 ‖ 70726f78792d75736572406578616d706c652e6e6574   (24 octets)
//!   b1 = MD5(00 1e ‖ S ‖ RV)          = b027a71a05b1efe01956c7f17546adf9
//!   c1 = p[0..16] ⊕ b1                = b031d7686ac996cd6c25a2833523d598
//!   b2 = MD5(S ‖ c1)                  = e4e5fc82a33ab1aa54a67b9998341e37
//!   c2 = p[16..24] ⊕ b2[0..8]         = 899590e78d54d4de
//!
//! Vector 3: (Tx) Connect Speed (attribute 24 = 00 18), value 100000000 =
//!   05 f5 e1 00, padding 12 × aa
//!   p  = 00 04 ‖ 05f5e100 ‖ aa×12                           (18 octets)
//!   b1 = MD5(00 18 ‖ S ‖ RV)          = 1720c8c22821d3a0e91c2d54a3056522
//!   c1 = p[0..16] ⊕ b1                = 1724cd37c921790a43b687fe09afcf88
//!   b2 = MD5(S ‖ c1)                  = 719789a39d33c594a94e62a9c4783928
//!   c2 = p[16..18] ⊕ b2[0..2] = (aa^71)(aa^97) = db 3d
//! ```

use l2tp_proto::wire::hidden::{self, UnhideError};
use l2tp_proto::wire::{
    AttributeType, Avp, AvpValue, ControlHeader, ControlMessage, DecodeError, EncodeError, Message,
    MessageType, ResultCode, SessionId, StopCcn, StopCcnResult, TunnelId,
};

const SECRET: &[u8] = b"secret";

fn rv() -> Vec<u8> {
    (0u8..16).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Deterministic RNG: 0x10, 0x11, 0x12, … per octet.
struct CountingRng(u8);

impl rand_core::RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
}

#[test]
fn hide_vector_1_single_short_block() {
    let c = hidden::hide(
        AttributeType::ASSIGNED_TUNNEL_ID,
        SECRET,
        &rv(),
        &[0x12, 0x34],
        &[],
    )
    .expect("hide");
    assert_eq!(c, unhex("be6a0ff3"));
    assert_eq!(
        hidden::unhide(AttributeType::ASSIGNED_TUNNEL_ID, SECRET, &rv(), &c),
        Ok(vec![0x12, 0x34])
    );
}

#[test]
fn hide_vector_2_two_blocks_chained() {
    let value = b"proxy-user@example.net";
    let c =
        hidden::hide(AttributeType::PROXY_AUTHEN_NAME, SECRET, &rv(), value, &[]).expect("hide");
    assert_eq!(c, unhex("b031d7686ac996cd6c25a2833523d598899590e78d54d4de"));
    assert_eq!(
        hidden::unhide(AttributeType::PROXY_AUTHEN_NAME, SECRET, &rv(), &c),
        Ok(value.to_vec())
    );
}

#[test]
fn hide_vector_3_with_padding() {
    let c = hidden::hide(
        AttributeType::TX_CONNECT_SPEED,
        SECRET,
        &rv(),
        &[0x05, 0xf5, 0xe1, 0x00],
        &[0xaa; 12],
    )
    .expect("hide");
    assert_eq!(c, unhex("1724cd37c921790a43b687fe09afcf88db3d"));
    // Padding is dropped on unhide.
    assert_eq!(
        hidden::unhide(AttributeType::TX_CONNECT_SPEED, SECRET, &rv(), &c),
        Ok(vec![0x05, 0xf5, 0xe1, 0x00])
    );
}

#[test]
fn unhide_depends_on_attribute_secret_and_vector() {
    let value = b"proxy-user@example.net";
    let c =
        hidden::hide(AttributeType::PROXY_AUTHEN_NAME, SECRET, &rv(), value, &[]).expect("hide");
    let ok = |r: Result<Vec<u8>, UnhideError>| r.is_ok_and(|v| v == value);
    assert!(!ok(hidden::unhide(
        AttributeType::PROXY_AUTHEN_CHALLENGE,
        SECRET,
        &rv(),
        &c
    )));
    assert!(!ok(hidden::unhide(
        AttributeType::PROXY_AUTHEN_NAME,
        b"secreT",
        &rv(),
        &c
    )));
    assert!(!ok(hidden::unhide(
        AttributeType::PROXY_AUTHEN_NAME,
        SECRET,
        &rv()[1..],
        &c
    )));
}

#[test]
fn unhide_rejects_short_and_overlong_prefix() {
    assert_eq!(
        hidden::unhide(AttributeType::ASSIGNED_TUNNEL_ID, SECRET, &rv(), &[0xbe]),
        Err(UnhideError::TooShort { len: 1 })
    );
    // Vector 1 with the prefix changed from 00 02 to 00 03 (xor 01 into the
    // second octet): claims 3 octets but only 2 follow.
    assert_eq!(
        hidden::unhide(
            AttributeType::ASSIGNED_TUNNEL_ID,
            SECRET,
            &rv(),
            &unhex("be6b0ff3")
        ),
        Err(UnhideError::LengthInvalid {
            original_length: 3,
            available: 2
        })
    );
    // Prefix ffff (xor ff ff into be 68…): must not wrap.
    assert_eq!(
        hidden::unhide(
            AttributeType::ASSIGNED_TUNNEL_ID,
            SECRET,
            &rv(),
            &unhex("41970ff3")
        ),
        Err(UnhideError::LengthInvalid {
            original_length: 0xffff,
            available: 2
        })
    );
}

fn stopccn_with_hidden_tunnel_id(random_vector: Option<Vec<u8>>) -> ControlMessage {
    let mut avps = vec![Avp::new(AvpValue::MessageType(MessageType::STOPCCN))];
    if let Some(rv) = random_vector {
        avps.push(Avp::new(AvpValue::RandomVector(rv)));
    }
    avps.push(Avp::new(AvpValue::AssignedTunnelId(TunnelId(0x1234))).hidden());
    avps.push(Avp::new(AvpValue::ResultCode(ResultCode::stop_ccn(
        StopCcnResult::GENERAL_REQUEST_TO_CLEAR,
    ))));
    ControlMessage {
        header: ControlHeader {
            tunnel_id: TunnelId(7),
            session_id: SessionId(0),
            ns: 3,
            nr: 4,
        },
        avps,
    }
}

/// A whole message, assembled by hand: header, Message Type, Random Vector,
/// the hidden Assigned Tunnel ID of vector 1, Result Code.
#[test]
fn encode_hidden_message_byte_exact() {
    let msg = stopccn_with_hidden_tunnel_id(Some(rv()));
    let mut rng = CountingRng(0x10);
    let got = msg.encode(Some((SECRET, &mut rng))).expect("encode");
    let want = [
        "c802003c00070000", // T L S Ver 2, Length 60, Tunnel ID 7, Session ID 0
        "00030004",         // Ns 3, Nr 4
        "8008000000000004", // Message Type StopCCN, M
        "801600000024",     // Random Vector: M, length 22, attribute 36
        "000102030405060708090a0b0c0d0e0f",
        "c00a00000009",     // Assigned Tunnel ID: M+H, length 10, attribute 9
        "be6a0ff3",         // … hidden value, vector 1
        "8008000000010001", // Result Code 1, M
    ]
    .concat();
    assert_eq!(got, unhex(&want));
    assert_eq!(
        rng.0, 0x10,
        "RNG must not be used when a Random Vector is present"
    );
    let back = ControlMessage::decode(&got, Some(SECRET)).expect("decode");
    assert_eq!(back, msg);
    assert_eq!(
        ControlMessage::decode(&got, None),
        Err(DecodeError::HiddenWithoutSecret {
            attribute: AttributeType::ASSIGNED_TUNNEL_ID,
            offset: 42
        })
    );
}

#[test]
fn encode_inserts_random_vector_before_first_hidden_avp() {
    let msg = stopccn_with_hidden_tunnel_id(None);
    let mut rng = CountingRng(0x10);
    let bytes = msg.encode(Some((SECRET, &mut rng))).expect("encode");
    let decoded = ControlMessage::decode(&bytes, Some(SECRET)).expect("decode");
    let inserted: Vec<u8> = (0x10u8..0x20).collect();
    let mut want = msg.avps.clone();
    want.insert(1, Avp::new(AvpValue::RandomVector(inserted.clone())));
    assert_eq!(decoded.avps, want);
    // Hidden with the inserted vector.
    let c = hidden::hide(
        AttributeType::ASSIGNED_TUNNEL_ID,
        SECRET,
        &inserted,
        &[0x12, 0x34],
        &[],
    )
    .expect("hide");
    assert_eq!(&bytes[12 + 8 + 22 + 6..12 + 8 + 22 + 10], &c[..]);
    // Re-encoding the decoded message (which now carries the vector) is
    // deterministic and byte-exact.
    assert_eq!(
        decoded
            .encode(Some((SECRET, &mut CountingRng(0x99))))
            .expect("encode"),
        bytes
    );
}

#[test]
fn each_hidden_avp_uses_the_closest_preceding_random_vector() {
    let rv1 = vec![1u8; 8];
    let rv2 = vec![2u8; 20];
    let name = b"user".to_vec();
    let avps = vec![
        Avp::new(AvpValue::MessageType(MessageType::ICCN)),
        Avp::new(AvpValue::RandomVector(rv1.clone())),
        Avp::new(AvpValue::TxConnectSpeed(56000)).hidden(),
        Avp::new(AvpValue::RandomVector(rv2.clone())),
        Avp::new(AvpValue::ProxyAuthenName(name.clone())).hidden(),
        Avp::new(AvpValue::FramingType(l2tp_proto::wire::FramingCaps::SYNC)),
    ];
    let msg = ControlMessage {
        header: ControlHeader::default(),
        avps,
    };
    let bytes = msg
        .encode(Some((SECRET, &mut CountingRng(0))))
        .expect("encode");
    let off_speed = 12 + 8 + (6 + 8);
    let c1 = hidden::hide(
        AttributeType::TX_CONNECT_SPEED,
        SECRET,
        &rv1,
        &56000u32.to_be_bytes(),
        &[],
    )
    .expect("hide");
    assert_eq!(&bytes[off_speed + 6..off_speed + 6 + c1.len()], &c1[..]);
    let off_name = off_speed + 6 + c1.len() + (6 + 20);
    let c2 =
        hidden::hide(AttributeType::PROXY_AUTHEN_NAME, SECRET, &rv2, &name, &[]).expect("hide");
    assert_eq!(&bytes[off_name + 6..off_name + 6 + c2.len()], &c2[..]);
    assert_eq!(
        ControlMessage::decode(&bytes, Some(SECRET)).expect("decode"),
        msg
    );
}

#[test]
fn hidden_vendor_avp_round_trips() {
    let avps = vec![
        Avp::new(AvpValue::MessageType(MessageType::HELLO)),
        Avp::new(AvpValue::Unknown {
            vendor_id: 9,
            attribute: AttributeType(1000),
            value: b"vendor".to_vec(),
        })
        .hidden(),
    ];
    let msg = ControlMessage {
        header: ControlHeader::default(),
        avps,
    };
    let bytes = msg
        .encode(Some((SECRET, &mut CountingRng(5))))
        .expect("encode");
    assert_eq!(
        ControlMessage::decode(&bytes, Some(SECRET))
            .expect("decode")
            .avps[2],
        msg.avps[1]
    );
}

#[test]
fn encode_refuses_hidden_without_secret_and_unhideable_avps() {
    let msg = stopccn_with_hidden_tunnel_id(Some(rv()));
    assert_eq!(
        msg.encode(None),
        Err(EncodeError::HiddenWithoutSecret {
            attribute: AttributeType::ASSIGNED_TUNNEL_ID
        })
    );
    let mut m2 = msg.clone();
    m2.avps[0].hidden = true;
    assert_eq!(
        m2.encode(Some((SECRET, &mut CountingRng(0)))),
        Err(EncodeError::MustNotBeHidden {
            attribute: AttributeType::MESSAGE_TYPE
        })
    );
    let mut m3 = msg;
    m3.avps[1].hidden = true;
    assert_eq!(
        m3.encode(Some((SECRET, &mut CountingRng(0)))),
        Err(EncodeError::MustNotBeHidden {
            attribute: AttributeType::RANDOM_VECTOR
        })
    );
}

#[test]
fn decode_with_wrong_secret_never_yields_original() {
    let bytes = stopccn_with_hidden_tunnel_id(Some(rv()))
        .encode(Some((SECRET, &mut CountingRng(0))))
        .expect("encode");
    match ControlMessage::decode(&bytes, Some(b"not the secret")) {
        Ok(m) => assert_ne!(
            m.avps[2].value,
            AvpValue::AssignedTunnelId(TunnelId(0x1234))
        ),
        Err(e) => assert!(
            matches!(
                e,
                DecodeError::HiddenLengthInvalid { .. } | DecodeError::BadAvpValue { .. }
            ),
            "{e}"
        ),
    }
}

#[test]
fn to_avps_hiding_respects_rfc_and_never_hides_sccrq() {
    let stop = Message::StopCcn(StopCcn {
        assigned_tunnel_id: TunnelId(5),
        result_code: ResultCode::stop_ccn(StopCcnResult::SHUTTING_DOWN),
        other: vec![],
    });
    let avps = stop.to_avps_hiding(|_| true);
    let hidden: Vec<AttributeType> = avps
        .iter()
        .filter(|a| a.hidden)
        .map(Avp::attribute)
        .collect();
    // Result Code and Message Type must stay in the clear.
    assert_eq!(hidden, vec![AttributeType::ASSIGNED_TUNNEL_ID]);
    let bytes = ControlMessage {
        header: ControlHeader::default(),
        avps,
    }
    .encode(Some((SECRET, &mut CountingRng(0))))
    .expect("encode");
    let back = ControlMessage::decode(&bytes, Some(SECRET)).expect("decode");
    assert_eq!(Message::from_control(&back).expect("typed"), stop);

    let sccrq = Message::Sccrq(l2tp_proto::wire::Sccrq {
        protocol_version: (1, 0),
        host_name: b"h".to_vec(),
        framing_capabilities: l2tp_proto::wire::FramingCaps::SYNC,
        assigned_tunnel_id: TunnelId(1),
        bearer_capabilities: None,
        receive_window_size: None,
        challenge: Some(vec![1, 2, 3]),
        tie_breaker: None,
        firmware_revision: None,
        vendor_name: Some(b"v".to_vec()),
        other: vec![],
    });
    assert!(sccrq.to_avps_hiding(|_| true).iter().all(|a| !a.hidden));
}
