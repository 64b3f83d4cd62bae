//! Encode → decode identity for every AVP value and every message type,
//! hand-checked AVP encodings, and the RFC 2661 §6 rules of
//! `Message::from_control`.

use l2tp_proto::wire::{
    AttributeType as A, Avp, AvpValue, BearerCaps, CallErrors, Cdn, CdnResult, ControlHeader,
    ControlMessage, ErrorCode, FramingCaps, Iccn, Icrp, Icrq, Message, MessageError, MessageType,
    Occn, Ocrp, Ocrq, Q931Cause, ResultCode, Scccn, Sccrp, Sccrq, SessionId, Sli, StopCcn,
    StopCcnResult, TunnelId, Wen, mandatory_avps, optional_avps,
};

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
            self.0 = self.0.wrapping_add(3);
        }
    }
}

fn header() -> ControlHeader {
    ControlHeader {
        tunnel_id: TunnelId(0xbeef),
        session_id: SessionId(0x1234),
        ns: 7,
        nr: 9,
    }
}

/// Exhaustive on purpose (no wildcard): a new variant must be added here
/// and to `samples`.
fn variant_index(v: &AvpValue) -> usize {
    use AvpValue as V;
    match v {
        V::MessageType(_) => 0,
        V::ResultCode(_) => 1,
        V::ProtocolVersion { .. } => 2,
        V::FramingCapabilities(_) => 3,
        V::BearerCapabilities(_) => 4,
        V::TieBreaker(_) => 5,
        V::FirmwareRevision(_) => 6,
        V::HostName(_) => 7,
        V::VendorName(_) => 8,
        V::AssignedTunnelId(_) => 9,
        V::ReceiveWindowSize(_) => 10,
        V::Challenge(_) => 11,
        V::Q931CauseCode { .. } => 12,
        V::ChallengeResponse(_) => 13,
        V::AssignedSessionId(_) => 14,
        V::CallSerialNumber(_) => 15,
        V::MinimumBps(_) => 16,
        V::MaximumBps(_) => 17,
        V::BearerType(_) => 18,
        V::FramingType(_) => 19,
        V::CalledNumber(_) => 20,
        V::CallingNumber(_) => 21,
        V::SubAddress(_) => 22,
        V::TxConnectSpeed(_) => 23,
        V::PhysicalChannelId(_) => 24,
        V::InitialReceivedLcpConfreq(_) => 25,
        V::LastSentLcpConfreq(_) => 26,
        V::LastReceivedLcpConfreq(_) => 27,
        V::ProxyAuthenType(_) => 28,
        V::ProxyAuthenName(_) => 29,
        V::ProxyAuthenChallenge(_) => 30,
        V::ProxyAuthenId(_) => 31,
        V::ProxyAuthenResponse(_) => 32,
        V::CallErrors(_) => 33,
        V::Accm { .. } => 34,
        V::RandomVector(_) => 35,
        V::PrivateGroupId(_) => 36,
        V::RxConnectSpeed(_) => 37,
        V::SequencingRequired => 38,
        V::Unknown { .. } => 39,
        V::ReservedBits { .. } => 40,
    }
}
const VARIANTS: usize = 41;

/// Every variant with its expected wire value field, written out by hand
/// from the layouts of RFC 2661 §4.4.
fn samples() -> Vec<(AvpValue, u16, Vec<u8>)> {
    use AvpValue as V;
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        (V::MessageType(MessageType::ICCN), 0, vec![0, 12]),
        (
            V::ResultCode(ResultCode {
                result: 2,
                error: None,
                message: None,
            }),
            1,
            vec![0, 2],
        ),
        (
            V::ResultCode(ResultCode {
                result: 2,
                error: Some(6),
                message: None,
            }),
            1,
            vec![0, 2, 0, 6],
        ),
        (
            V::ResultCode(ResultCode {
                result: 0x0102,
                error: Some(0x0304),
                message: Some(b("no")),
            }),
            1,
            vec![1, 2, 3, 4, b'n', b'o'],
        ),
        (
            V::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            2,
            vec![1, 0],
        ),
        (
            V::FramingCapabilities(FramingCaps::BOTH),
            3,
            vec![0, 0, 0, 3],
        ),
        (
            V::BearerCapabilities(BearerCaps::ANALOG),
            4,
            vec![0, 0, 0, 2],
        ),
        (
            V::TieBreaker(0x0102_0304_0506_0708),
            5,
            vec![1, 2, 3, 4, 5, 6, 7, 8],
        ),
        (V::FirmwareRevision(0x0690), 6, vec![6, 0x90]),
        (V::HostName(b("lns")), 7, b("lns")),
        (V::VendorName(vec![0xff, 0x00]), 8, vec![0xff, 0x00]),
        (V::AssignedTunnelId(TunnelId(0xfffe)), 9, vec![0xff, 0xfe]),
        (V::ReceiveWindowSize(8), 10, vec![0, 8]),
        (V::Challenge(vec![9; 16]), 11, vec![9; 16]),
        (
            V::Q931CauseCode {
                cause: 0x0010,
                msg: 0x45,
                advisory: vec![],
            },
            12,
            vec![0, 0x10, 0x45],
        ),
        (
            V::Q931CauseCode {
                cause: 0x0010,
                msg: 0x45,
                advisory: b("adv"),
            },
            12,
            vec![0, 0x10, 0x45, b'a', b'd', b'v'],
        ),
        (V::ChallengeResponse([7; 16]), 13, vec![7; 16]),
        (V::AssignedSessionId(SessionId(1)), 14, vec![0, 1]),
        (
            V::CallSerialNumber(0xdead_beef),
            15,
            vec![0xde, 0xad, 0xbe, 0xef],
        ),
        (V::MinimumBps(9600), 16, vec![0, 0, 0x25, 0x80]),
        (V::MaximumBps(64000), 17, vec![0, 0, 0xfa, 0x00]),
        (V::BearerType(BearerCaps::DIGITAL), 18, vec![0, 0, 0, 1]),
        (V::FramingType(FramingCaps::ASYNC), 19, vec![0, 0, 0, 2]),
        (V::CalledNumber(b("5551234")), 21, b("5551234")),
        (V::CallingNumber(b("")), 22, vec![]),
        (V::SubAddress(b("x")), 23, b("x")),
        (
            V::TxConnectSpeed(100_000_000),
            24,
            vec![0x05, 0xf5, 0xe1, 0x00],
        ),
        (V::PhysicalChannelId(3), 25, vec![0, 0, 0, 3]),
        (
            V::InitialReceivedLcpConfreq(vec![1, 4, 5, 0xdc]),
            26,
            vec![1, 4, 5, 0xdc],
        ),
        (
            V::LastSentLcpConfreq(vec![5, 6, 0, 0, 0, 1]),
            27,
            vec![5, 6, 0, 0, 0, 1],
        ),
        (
            V::LastReceivedLcpConfreq(vec![3, 4, 0xc0, 0x23]),
            28,
            vec![3, 4, 0xc0, 0x23],
        ),
        (V::ProxyAuthenType(2), 29, vec![0, 2]),
        (V::ProxyAuthenName(b("user")), 30, b("user")),
        (V::ProxyAuthenChallenge(vec![1, 2, 3]), 31, vec![1, 2, 3]),
        (V::ProxyAuthenId(0x0042), 32, vec![0, 0x42]),
        (V::ProxyAuthenResponse(vec![4; 16]), 33, vec![4; 16]),
        (
            V::CallErrors(CallErrors {
                crc_errors: 1,
                framing_errors: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeout_errors: 5,
                alignment_errors: 0x0102_0304,
            }),
            34,
            vec![
                0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 1, 2, 3, 4,
            ],
        ),
        (
            V::Accm {
                send: 0xffff_ffff,
                receive: 0x000a_0000,
            },
            35,
            vec![0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x0a, 0, 0],
        ),
        (V::RandomVector(vec![0x5a; 20]), 36, vec![0x5a; 20]),
        (V::PrivateGroupId(b("grp")), 37, b("grp")),
        (V::RxConnectSpeed(56_000), 38, vec![0, 0, 0xda, 0xc0]),
        (V::SequencingRequired, 39, vec![]),
        (
            V::Unknown {
                vendor_id: 0,
                attribute: A(20),
                value: vec![1],
            },
            20,
            vec![1],
        ),
        (
            V::Unknown {
                vendor_id: 9,
                attribute: A(7),
                value: b("cisco"),
            },
            7,
            b("cisco"),
        ),
        (
            V::ReservedBits {
                bits: 0b1010,
                vendor_id: 0,
                attribute: A(9),
                value: vec![0, 1],
            },
            9,
            vec![0, 1],
        ),
    ]
}

#[test]
fn samples_cover_every_variant() {
    let mut seen = [false; VARIANTS];
    for (v, _, _) in samples() {
        seen[variant_index(&v)] = true;
    }
    assert!(seen.iter().all(|&s| s), "missing variants: {seen:?}");
}

#[test]
fn every_avp_value_encodes_as_the_rfc_says_and_decodes_back() {
    for (value, attr, wire_value) in samples() {
        for (mandatory, hidden) in [(true, false), (false, false)] {
            let avp = Avp {
                mandatory,
                hidden,
                value: value.clone(),
            };
            let msg = ControlMessage {
                header: header(),
                avps: vec![Avp::new(AvpValue::MessageType(MessageType::HELLO)), avp],
            };
            let bytes = msg.encode(None).expect("encode");
            // The second AVP by hand: flags/length, vendor, attribute, value.
            let reserved = match &value {
                AvpValue::ReservedBits { bits, .. } => u16::from(*bits) << 10,
                _ => 0,
            };
            let flags_len =
                (if mandatory { 0x8000 } else { 0 }) | reserved | (6 + wire_value.len() as u16);
            let mut want = flags_len.to_be_bytes().to_vec();
            want.extend_from_slice(&value.vendor_id().to_be_bytes());
            want.extend_from_slice(&attr.to_be_bytes());
            want.extend_from_slice(&wire_value);
            assert_eq!(&bytes[20..], &want[..], "{value:?}");
            assert_eq!(
                usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
                bytes.len()
            );
            assert_eq!(
                ControlMessage::decode(&bytes, None).expect("decode"),
                msg,
                "{value:?}"
            );
        }
    }
}

#[test]
fn every_hideable_avp_value_round_trips_hidden() {
    let secret = b"tunnel secret";
    for (value, _, _) in samples() {
        if matches!(value, AvpValue::MessageType(_) | AvpValue::RandomVector(_)) {
            continue;
        }
        let msg = ControlMessage {
            header: header(),
            avps: vec![
                Avp::new(AvpValue::MessageType(MessageType::HELLO)),
                Avp::new(value.clone()).hidden(),
            ],
        };
        let bytes = msg
            .encode(Some((secret, &mut CountingRng(1))))
            .expect("encode");
        let back = ControlMessage::decode(&bytes, Some(secret)).expect("decode");
        assert_eq!(back.avps.len(), 3, "{value:?}");
        assert!(matches!(back.avps[1].value, AvpValue::RandomVector(_)));
        assert_eq!(back.avps[2], msg.avps[1], "{value:?}");
    }
}

#[test]
fn result_code_with_message_but_no_error_code_is_not_encodable() {
    let msg = ControlMessage {
        header: header(),
        avps: vec![Avp::new(AvpValue::ResultCode(ResultCode {
            result: 1,
            error: None,
            message: Some(b"x".to_vec()),
        }))],
    };
    assert!(matches!(
        msg.encode(None),
        Err(l2tp_proto::wire::EncodeError::InvalidValue {
            attribute: A::RESULT_CODE,
            ..
        })
    ));
}

#[test]
fn zlb_encoding() {
    let z = ControlMessage::zlb(header());
    let bytes = z.encode(None).expect("encode");
    assert_eq!(
        bytes,
        vec![0xc8, 0x02, 0, 12, 0xbe, 0xef, 0x12, 0x34, 0, 7, 0, 9]
    );
    let back = ControlMessage::decode(&bytes, None).expect("decode");
    assert!(back.is_zlb());
    assert_eq!(back.message_type(), None);
    assert_eq!(Message::from_control(&back), Err(MessageError::Zlb));
}

fn cause() -> ResultCode {
    ResultCode::cdn(CdnResult::ADMINISTRATIVE)
        .with_error(ErrorCode::NO_GENERAL_ERROR, Some(b"bye".to_vec()))
}

fn unknown_optional() -> Avp {
    Avp {
        mandatory: false,
        hidden: false,
        value: AvpValue::Unknown {
            vendor_id: 311,
            attribute: A(5),
            value: vec![1, 2],
        },
    }
}

/// One message of every type with every optional field set.
fn full_messages() -> Vec<Message> {
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        Message::Sccrq(Sccrq {
            protocol_version: (1, 0),
            host_name: b("lac.example"),
            framing_capabilities: FramingCaps::BOTH,
            assigned_tunnel_id: TunnelId(42),
            bearer_capabilities: Some(BearerCaps::BOTH),
            receive_window_size: Some(16),
            challenge: Some(vec![1; 16]),
            tie_breaker: Some(0x1122_3344_5566_7788),
            firmware_revision: Some(0x0100),
            vendor_name: Some(b("l2tpd")),
            other: vec![unknown_optional()],
        }),
        Message::Sccrp(Sccrp {
            protocol_version: (1, 0),
            framing_capabilities: FramingCaps::SYNC,
            host_name: b("lns.example"),
            assigned_tunnel_id: TunnelId(43),
            bearer_capabilities: Some(BearerCaps::DIGITAL),
            firmware_revision: Some(2),
            vendor_name: Some(b("v")),
            receive_window_size: Some(4),
            challenge: Some(vec![2; 8]),
            challenge_response: Some([3; 16]),
            other: vec![unknown_optional()],
        }),
        Message::Scccn(Scccn {
            challenge_response: Some([4; 16]),
            other: vec![],
        }),
        Message::StopCcn(StopCcn {
            assigned_tunnel_id: TunnelId(44),
            result_code: ResultCode::stop_ccn(StopCcnResult::GENERAL_ERROR)
                .with_error(ErrorCode::TRY_ANOTHER, Some(b("192.0.2.1"))),
            other: vec![],
        }),
        Message::Hello,
        Message::Ocrq(Ocrq {
            assigned_session_id: SessionId(5),
            call_serial_number: 6,
            minimum_bps: 9600,
            maximum_bps: 64000,
            bearer_type: BearerCaps::ANALOG,
            framing_type: FramingCaps::ASYNC,
            called_number: b("5551234"),
            sub_address: Some(b("12")),
            other: vec![],
        }),
        Message::Ocrp(Ocrp {
            assigned_session_id: SessionId(7),
            physical_channel_id: Some(8),
            other: vec![],
        }),
        Message::Occn(Occn {
            tx_connect_speed: 28800,
            framing_type: FramingCaps::ASYNC,
            rx_connect_speed: Some(33600),
            sequencing_required: true,
            other: vec![],
        }),
        Message::Icrq(Icrq {
            assigned_session_id: SessionId(9),
            call_serial_number: 10,
            bearer_type: Some(BearerCaps::DIGITAL),
            physical_channel_id: Some(11),
            calling_number: Some(b("100")),
            called_number: Some(b("200")),
            sub_address: Some(b("3")),
            other: vec![unknown_optional()],
        }),
        Message::Icrp(Icrp {
            assigned_session_id: SessionId(12),
            other: vec![],
        }),
        Message::Iccn(Iccn {
            tx_connect_speed: 1_000_000,
            framing_type: FramingCaps::SYNC,
            initial_received_lcp_confreq: Some(vec![1, 4, 5, 0xdc]),
            last_sent_lcp_confreq: Some(vec![1, 4, 5, 0xd4]),
            last_received_lcp_confreq: Some(vec![1, 4, 5, 0xdc, 3, 4, 0xc0, 0x23]),
            proxy_authen_type: Some(l2tp_proto::wire::proxy_authen_type::PPP_CHAP),
            proxy_authen_name: Some(b("user")),
            proxy_authen_challenge: Some(vec![5; 16]),
            proxy_authen_id: Some(1),
            proxy_authen_response: Some(vec![6; 16]),
            private_group_id: Some(b("g")),
            rx_connect_speed: Some(2_000_000),
            sequencing_required: true,
            other: vec![],
        }),
        Message::Cdn(Cdn {
            result_code: cause(),
            assigned_session_id: SessionId(13),
            q931_cause_code: Some(Q931Cause {
                cause: 16,
                msg: 0x45,
                advisory: b("normal"),
            }),
            other: vec![],
        }),
        Message::Wen(Wen {
            call_errors: CallErrors {
                crc_errors: 1,
                framing_errors: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeout_errors: 5,
                alignment_errors: 6,
            },
            other: vec![],
        }),
        Message::Sli(Sli {
            accm: (0xffff_ffff, 0),
            other: vec![],
        }),
    ]
}

/// The same with every optional field absent.
fn minimal_messages() -> Vec<Message> {
    full_messages()
        .into_iter()
        .map(|m| match m {
            Message::Sccrq(mut s) => {
                s.bearer_capabilities = None;
                s.receive_window_size = None;
                s.challenge = None;
                s.tie_breaker = None;
                s.firmware_revision = None;
                s.vendor_name = None;
                s.other.clear();
                Message::Sccrq(s)
            }
            Message::Sccrp(mut s) => {
                s.bearer_capabilities = None;
                s.firmware_revision = None;
                s.vendor_name = None;
                s.receive_window_size = None;
                s.challenge = None;
                s.challenge_response = None;
                s.other.clear();
                Message::Sccrp(s)
            }
            Message::Scccn(_) => Message::Scccn(Scccn::default()),
            Message::Ocrq(mut s) => {
                s.sub_address = None;
                Message::Ocrq(s)
            }
            Message::Ocrp(mut s) => {
                s.physical_channel_id = None;
                Message::Ocrp(s)
            }
            Message::Occn(mut s) => {
                s.rx_connect_speed = None;
                s.sequencing_required = false;
                Message::Occn(s)
            }
            Message::Icrq(s) => Message::Icrq(Icrq {
                bearer_type: None,
                physical_channel_id: None,
                calling_number: None,
                called_number: None,
                sub_address: None,
                other: vec![],
                ..s
            }),
            Message::Iccn(s) => Message::Iccn(Iccn {
                tx_connect_speed: s.tx_connect_speed,
                framing_type: s.framing_type,
                initial_received_lcp_confreq: None,
                last_sent_lcp_confreq: None,
                last_received_lcp_confreq: None,
                proxy_authen_type: None,
                proxy_authen_name: None,
                proxy_authen_challenge: None,
                proxy_authen_id: None,
                proxy_authen_response: None,
                private_group_id: None,
                rx_connect_speed: None,
                sequencing_required: false,
                other: vec![],
            }),
            Message::Cdn(mut s) => {
                s.q931_cause_code = None;
                s.result_code = ResultCode::cdn(CdnResult::LOST_CARRIER);
                Message::Cdn(s)
            }
            m => m,
        })
        .collect()
}

#[test]
fn message_types_and_names() {
    let want = [
        (1, "SCCRQ"),
        (2, "SCCRP"),
        (3, "SCCCN"),
        (4, "StopCCN"),
        (6, "HELLO"),
        (7, "OCRQ"),
        (8, "OCRP"),
        (9, "OCCN"),
        (10, "ICRQ"),
        (11, "ICRP"),
        (12, "ICCN"),
        (14, "CDN"),
        (15, "WEN"),
        (16, "SLI"),
    ];
    let full = full_messages();
    assert_eq!(full.len(), want.len());
    for (m, (n, name)) in full.iter().zip(want) {
        assert_eq!(m.message_type(), MessageType(n));
        assert_eq!(m.message_type().to_string(), name);
    }
    assert_eq!(MessageType(5).to_string(), "type 5");
    assert_eq!(MessageType::STOPCCN, MessageType(4));
    assert_eq!(A::SEQUENCING_REQUIRED.to_string(), "Sequencing Required");
    assert_eq!(A(20).to_string(), "attribute 20");
    assert_eq!(A::RANDOM_VECTOR, A(36));
    assert_eq!(A::PRIVATE_GROUP_ID, A(37));
    assert_eq!(A::RX_CONNECT_SPEED, A(38));
}

#[test]
fn every_message_round_trips_through_the_wire() {
    for m in full_messages().into_iter().chain(minimal_messages()) {
        let cm = m.to_control(header());
        assert_eq!(cm.message_type(), Some(m.message_type()));
        assert_eq!(cm.avps[0].value, AvpValue::MessageType(m.message_type()));
        let bytes = cm.encode(None).expect("encode");
        let back = ControlMessage::decode(&bytes, None).expect("decode");
        assert_eq!(back, cm);
        assert_eq!(
            Message::from_control(&back).expect("typed"),
            m,
            "{}",
            m.message_type()
        );
    }
}

#[test]
fn every_message_round_trips_with_hiding() {
    let secret = b"shh";
    for m in full_messages() {
        let avps = m.to_avps_hiding(|_| true);
        let n_hidden = avps.iter().filter(|a| a.hidden).count();
        let cm = ControlMessage {
            header: header(),
            avps,
        };
        let bytes = cm
            .encode(Some((secret, &mut CountingRng(0))))
            .expect("encode");
        let back = ControlMessage::decode(&bytes, Some(secret)).expect("decode");
        let rvs = back
            .avps
            .iter()
            .filter(|a| a.attribute() == A::RANDOM_VECTOR)
            .count();
        assert_eq!(rvs, usize::from(n_hidden > 0), "{}", m.message_type());
        assert_eq!(
            Message::from_control(&back).expect("typed"),
            m,
            "{}",
            m.message_type()
        );
    }
}

#[test]
fn to_avps_sets_rfc_m_bits() {
    for m in full_messages() {
        for a in m.to_avps() {
            if a.is_unrecognised() {
                continue;
            }
            let want = match a.attribute().0 {
                // RFC 2661 §4.4: sent with M=0.
                5 | 6 | 8 | 25..=33 | 37 | 38 => false,
                _ => true,
            };
            assert_eq!(
                a.mandatory,
                want,
                "{} in {}",
                a.attribute(),
                m.message_type()
            );
            assert!(!a.hidden);
        }
    }
}

/// RFC 2661 §6, written out independently of the implementation.
fn rfc_mandatory(t: MessageType) -> Vec<A> {
    match t.0 {
        1 => vec![
            A::PROTOCOL_VERSION,
            A::HOST_NAME,
            A::FRAMING_CAPABILITIES,
            A::ASSIGNED_TUNNEL_ID,
        ],
        2 => vec![
            A::PROTOCOL_VERSION,
            A::FRAMING_CAPABILITIES,
            A::HOST_NAME,
            A::ASSIGNED_TUNNEL_ID,
        ],
        3 | 6 => vec![],
        4 => vec![A::ASSIGNED_TUNNEL_ID, A::RESULT_CODE],
        7 => vec![
            A::ASSIGNED_SESSION_ID,
            A::CALL_SERIAL_NUMBER,
            A::MINIMUM_BPS,
            A::MAXIMUM_BPS,
            A::BEARER_TYPE,
            A::FRAMING_TYPE,
            A::CALLED_NUMBER,
        ],
        8 | 11 => vec![A::ASSIGNED_SESSION_ID],
        9 | 12 => vec![A::TX_CONNECT_SPEED, A::FRAMING_TYPE],
        10 => vec![A::ASSIGNED_SESSION_ID, A::CALL_SERIAL_NUMBER],
        14 => vec![A::RESULT_CODE, A::ASSIGNED_SESSION_ID],
        15 => vec![A::CALL_ERRORS],
        16 => vec![A::ACCM],
        _ => unreachable!(),
    }
}

#[test]
fn mandatory_avp_tables_match_rfc() {
    for m in full_messages() {
        let t = m.message_type();
        assert_eq!(mandatory_avps(t), &rfc_mandatory(t)[..], "{t}");
        // The full samples carry every optional AVP exactly once.
        let mut present: Vec<A> = m
            .to_avps()
            .iter()
            .skip(1)
            .filter(|a| !a.is_unrecognised())
            .map(Avp::attribute)
            .collect();
        present.sort();
        let mut listed: Vec<A> = mandatory_avps(t)
            .iter()
            .chain(optional_avps(t))
            .copied()
            .collect();
        listed.sort();
        assert_eq!(present, listed, "{t}");
    }
}

#[test]
fn missing_mandatory_avp_is_named() {
    for m in full_messages() {
        let t = m.message_type();
        for attr in rfc_mandatory(t) {
            let avps: Vec<Avp> = m
                .to_avps()
                .into_iter()
                .filter(|a| a.attribute() != attr || a.is_unrecognised())
                .collect();
            let cm = ControlMessage {
                header: header(),
                avps,
            };
            assert_eq!(
                Message::from_control(&cm),
                Err(MessageError::MissingAvp {
                    message: t,
                    attribute: attr
                }),
                "{t} without {attr}"
            );
        }
    }
}

fn control(avps: Vec<Avp>) -> ControlMessage {
    ControlMessage {
        header: header(),
        avps,
    }
}

fn icrp_avps() -> Vec<Avp> {
    Message::Icrp(Icrp {
        assigned_session_id: SessionId(1),
        other: vec![],
    })
    .to_avps()
}

#[test]
fn from_control_structural_errors() {
    // First AVP is not Message Type.
    let mut avps = icrp_avps();
    avps.swap(0, 1);
    assert_eq!(
        Message::from_control(&control(avps)),
        Err(MessageError::FirstAvpNotMessageType)
    );
    // Unknown message types, with their M bit.
    for (t, m) in [(5u16, true), (13, false), (99, true)] {
        let avps = vec![Avp {
            mandatory: m,
            hidden: false,
            value: AvpValue::MessageType(MessageType(t)),
        }];
        assert_eq!(
            Message::from_control(&control(avps)),
            Err(MessageError::UnknownMessageType {
                message_type: MessageType(t),
                mandatory: m
            })
        );
    }
    // Duplicate AVP.
    let mut avps = icrp_avps();
    avps.push(avps[1].clone());
    assert_eq!(
        Message::from_control(&control(avps)),
        Err(MessageError::DuplicateAvp {
            message: MessageType::ICRP,
            attribute: A::ASSIGNED_SESSION_ID
        })
    );
    // Second Message Type.
    let mut avps = icrp_avps();
    avps.push(avps[0].clone());
    assert_eq!(
        Message::from_control(&control(avps)),
        Err(MessageError::DuplicateAvp {
            message: MessageType::ICRP,
            attribute: A::MESSAGE_TYPE
        })
    );
}

#[test]
fn from_control_unknown_and_unexpected_avps() {
    // Unknown mandatory AVP: error, and ControlMessage::unknown_mandatory
    // finds it too.
    let mut avps = icrp_avps();
    let vendor = Avp {
        mandatory: true,
        hidden: false,
        value: AvpValue::Unknown {
            vendor_id: 9,
            attribute: A(3),
            value: vec![],
        },
    };
    avps.push(vendor.clone());
    let cm = control(avps);
    assert_eq!(cm.unknown_mandatory(), Some(&vendor));
    assert_eq!(
        Message::from_control(&cm),
        Err(MessageError::UnknownMandatoryAvp {
            message: MessageType::ICRP,
            vendor_id: 9,
            attribute: A(3)
        })
    );
    // Reserved bits set + M: also unrecognised.
    let mut avps = icrp_avps();
    avps.push(Avp {
        mandatory: true,
        hidden: false,
        value: AvpValue::ReservedBits {
            bits: 1,
            vendor_id: 0,
            attribute: A(9),
            value: vec![0, 1],
        },
    });
    assert!(matches!(
        Message::from_control(&control(avps)),
        Err(MessageError::UnknownMandatoryAvp { .. })
    ));
    // Known AVP not allowed in ICRP, with M bit: error.
    let mut avps = icrp_avps();
    avps.push(Avp::new(AvpValue::AssignedTunnelId(TunnelId(3))));
    assert_eq!(
        Message::from_control(&control(avps)),
        Err(MessageError::UnexpectedAvp {
            message: MessageType::ICRP,
            attribute: A::ASSIGNED_TUNNEL_ID
        })
    );
    // Without M bit (unknown or out of place): kept in `other`, in order.
    let stray = Avp::new(AvpValue::VendorName(b"x".to_vec()));
    assert!(!stray.mandatory);
    let unknown = unknown_optional();
    let mut avps = icrp_avps();
    avps.push(stray.clone());
    avps.push(Avp::new(AvpValue::RandomVector(vec![1, 2, 3])));
    avps.push(unknown.clone());
    let typed = Message::from_control(&control(avps)).expect("typed");
    assert_eq!(
        typed,
        Message::Icrp(Icrp {
            assigned_session_id: SessionId(1),
            other: vec![stray, unknown]
        })
    );
}

#[test]
fn m_and_h_flags_of_typed_avps_do_not_matter_to_from_control() {
    // A peer sending Host Name with M=0 and Firmware Revision with M=1 is
    // still understood.
    let m = full_messages().remove(0);
    let avps: Vec<Avp> = m
        .to_avps()
        .into_iter()
        .map(|mut a| {
            if !a.is_unrecognised() && a.attribute() != A::MESSAGE_TYPE {
                a.mandatory = !a.mandatory;
            }
            a
        })
        .collect();
    assert_eq!(Message::from_control(&control(avps)).expect("typed"), m);
}

#[test]
fn result_code_helpers() {
    let rc = ResultCode::stop_ccn(StopCcnResult::UNSUPPORTED_VERSION)
        .with_error(ErrorCode(0x0100), None);
    assert_eq!(
        rc,
        ResultCode {
            result: 5,
            error: Some(0x0100),
            message: None
        }
    );
    assert_eq!(rc.stop_ccn_result(), StopCcnResult(5));
    assert_eq!(rc.error_code(), Some(ErrorCode(0x0100)));
    assert_eq!(
        ResultCode::cdn(CdnResult::NO_FRAMING).cdn_result(),
        CdnResult(11)
    );
    assert_eq!(
        [
            StopCcnResult::GENERAL_REQUEST_TO_CLEAR.0,
            StopCcnResult::FSM_ERROR.0,
            CdnResult::LOST_CARRIER.0,
            CdnResult::TIMEOUT.0
        ],
        [1, 7, 1, 10]
    );
    assert_eq!(
        [
            ErrorCode::NO_GENERAL_ERROR.0,
            ErrorCode::UNKNOWN_MANDATORY_AVP.0,
            ErrorCode::INVALID_SESSION_ID.0
        ],
        [0, 8, 5]
    );
}
