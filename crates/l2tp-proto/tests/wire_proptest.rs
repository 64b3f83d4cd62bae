//! Property tests: the decoders never panic, and encode ∘ decode is the
//! identity for generated control messages and typed messages.

use proptest::prelude::*;
use proptest::strategy::Union;

use l2tp_proto::wire::{
    AttributeType, Avp, AvpValue, BearerCaps, CallErrors, Cdn, ControlHeader, ControlMessage,
    FramingCaps, Iccn, Icrp, Icrq, Message, MessageType, Occn, Ocrp, Ocrq, Q931Cause, ResultCode,
    Scccn, Sccrp, Sccrq, SessionId, Sli, StopCcn, TunnelId, Wen, decode_header,
};

struct SeededRng(u64);

impl rand_core::RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn result_code() -> impl Strategy<Value = ResultCode> {
    (
        any::<u16>(),
        prop::option::of((
            any::<u16>(),
            prop::option::of(prop::collection::vec(any::<u8>(), 1..32)),
        )),
    )
        .prop_map(|(result, e)| match e {
            None => ResultCode {
                result,
                error: None,
                message: None,
            },
            Some((error, message)) => ResultCode {
                result,
                error: Some(error),
                message,
            },
        })
}

fn call_errors() -> impl Strategy<Value = CallErrors> {
    any::<[u32; 6]>().prop_map(|c| CallErrors {
        crc_errors: c[0],
        framing_errors: c[1],
        hardware_overruns: c[2],
        buffer_overruns: c[3],
        timeout_errors: c[4],
        alignment_errors: c[5],
    })
}

/// Any AVP value whose encoding decodes back to itself.
fn avp_value() -> impl Strategy<Value = AvpValue> {
    use AvpValue as V;
    let u16s = any::<u16>;
    let u32s = any::<u32>;
    Union::new(vec![
        u16s().prop_map(|t| V::MessageType(MessageType(t))).boxed(),
        result_code().prop_map(V::ResultCode).boxed(),
        (any::<u8>(), any::<u8>())
            .prop_map(|(version, revision)| V::ProtocolVersion { version, revision })
            .boxed(),
        u32s()
            .prop_map(|x| V::FramingCapabilities(FramingCaps(x)))
            .boxed(),
        u32s()
            .prop_map(|x| V::BearerCapabilities(BearerCaps(x)))
            .boxed(),
        any::<u64>().prop_map(V::TieBreaker).boxed(),
        u16s().prop_map(V::FirmwareRevision).boxed(),
        bytes(64).prop_map(V::HostName).boxed(),
        bytes(64).prop_map(V::VendorName).boxed(),
        u16s()
            .prop_map(|x| V::AssignedTunnelId(TunnelId(x)))
            .boxed(),
        u16s().prop_map(V::ReceiveWindowSize).boxed(),
        bytes(64).prop_map(V::Challenge).boxed(),
        (u16s(), any::<u8>(), bytes(32))
            .prop_map(|(cause, msg, advisory)| V::Q931CauseCode {
                cause,
                msg,
                advisory,
            })
            .boxed(),
        any::<[u8; 16]>().prop_map(V::ChallengeResponse).boxed(),
        u16s()
            .prop_map(|x| V::AssignedSessionId(SessionId(x)))
            .boxed(),
        u32s().prop_map(V::CallSerialNumber).boxed(),
        u32s().prop_map(V::MinimumBps).boxed(),
        u32s().prop_map(V::MaximumBps).boxed(),
        u32s().prop_map(|x| V::BearerType(BearerCaps(x))).boxed(),
        u32s().prop_map(|x| V::FramingType(FramingCaps(x))).boxed(),
        bytes(32).prop_map(V::CalledNumber).boxed(),
        bytes(32).prop_map(V::CallingNumber).boxed(),
        bytes(32).prop_map(V::SubAddress).boxed(),
        u32s().prop_map(V::TxConnectSpeed).boxed(),
        u32s().prop_map(V::PhysicalChannelId).boxed(),
        bytes(64).prop_map(V::InitialReceivedLcpConfreq).boxed(),
        bytes(64).prop_map(V::LastSentLcpConfreq).boxed(),
        bytes(64).prop_map(V::LastReceivedLcpConfreq).boxed(),
        u16s().prop_map(V::ProxyAuthenType).boxed(),
        bytes(32).prop_map(V::ProxyAuthenName).boxed(),
        bytes(32).prop_map(V::ProxyAuthenChallenge).boxed(),
        u16s().prop_map(V::ProxyAuthenId).boxed(),
        bytes(32).prop_map(V::ProxyAuthenResponse).boxed(),
        call_errors().prop_map(V::CallErrors).boxed(),
        (u32s(), u32s())
            .prop_map(|(send, receive)| V::Accm { send, receive })
            .boxed(),
        bytes(32).prop_map(V::RandomVector).boxed(),
        bytes(32).prop_map(V::PrivateGroupId).boxed(),
        u32s().prop_map(V::RxConnectSpeed).boxed(),
        Just(V::SequencingRequired).boxed(),
        // IETF attributes RFC 2661 does not define, and vendor AVPs.
        (prop_oneof![Just(20u16), 40u16..], bytes(32))
            .prop_map(|(a, value)| V::Unknown {
                vendor_id: 0,
                attribute: AttributeType(a),
                value,
            })
            .boxed(),
        (1u16.., u16s(), bytes(32))
            .prop_map(|(vendor_id, a, value)| V::Unknown {
                vendor_id,
                attribute: AttributeType(a),
                value,
            })
            .boxed(),
        (1u8..16, u16s(), u16s(), bytes(32))
            .prop_map(|(bits, vendor_id, a, value)| V::ReservedBits {
                bits,
                vendor_id,
                attribute: AttributeType(a),
                value,
            })
            .boxed(),
    ])
}

fn avp(allow_hidden: bool) -> impl Strategy<Value = Avp> {
    (any::<bool>(), any::<bool>(), avp_value()).prop_map(move |(mandatory, hidden, value)| {
        let hideable = !matches!(value, AvpValue::MessageType(_) | AvpValue::RandomVector(_));
        Avp {
            mandatory,
            hidden: allow_hidden && hidden && hideable,
            value,
        }
    })
}

fn header() -> impl Strategy<Value = ControlHeader> {
    (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(t, s, ns, nr)| {
        ControlHeader {
            tunnel_id: TunnelId(t),
            session_id: SessionId(s),
            ns,
            nr,
        }
    })
}

fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(bytes(max))
}

fn other() -> impl Strategy<Value = Vec<Avp>> {
    prop::collection::vec(
        (bytes(16), 1u16.., any::<u16>()).prop_map(|(value, vendor_id, a)| Avp {
            mandatory: false,
            hidden: false,
            value: AvpValue::Unknown {
                vendor_id,
                attribute: AttributeType(a),
                value,
            },
        }),
        0..3,
    )
}

fn message() -> impl Strategy<Value = Message> {
    let tid = any::<u16>().prop_map(TunnelId);
    let sid = any::<u16>().prop_map(SessionId);
    let fc = any::<u32>().prop_map(FramingCaps);
    let bc = any::<u32>().prop_map(BearerCaps);
    Union::new(vec![
        (
            (any::<(u8, u8)>(), bytes(32), fc.clone(), tid.clone()),
            (
                prop::option::of(bc.clone()),
                any::<Option<u16>>(),
                opt_bytes(32),
                any::<Option<u64>>(),
                any::<Option<u16>>(),
                opt_bytes(16),
            ),
            other(),
        )
            .prop_map(|((pv, hn, f, t), (b, rws, ch, tb, fw, vn), other)| {
                Message::Sccrq(Sccrq {
                    protocol_version: pv,
                    host_name: hn,
                    framing_capabilities: f,
                    assigned_tunnel_id: t,
                    bearer_capabilities: b,
                    receive_window_size: rws,
                    challenge: ch,
                    tie_breaker: tb,
                    firmware_revision: fw,
                    vendor_name: vn,
                    other,
                })
            })
            .boxed(),
        (
            (any::<(u8, u8)>(), fc.clone(), bytes(32), tid.clone()),
            (
                prop::option::of(bc.clone()),
                any::<Option<u16>>(),
                opt_bytes(16),
                any::<Option<u16>>(),
                opt_bytes(32),
                any::<Option<[u8; 16]>>(),
            ),
            other(),
        )
            .prop_map(|((pv, f, hn, t), (b, fw, vn, rws, ch, cr), other)| {
                Message::Sccrp(Sccrp {
                    protocol_version: pv,
                    framing_capabilities: f,
                    host_name: hn,
                    assigned_tunnel_id: t,
                    bearer_capabilities: b,
                    firmware_revision: fw,
                    vendor_name: vn,
                    receive_window_size: rws,
                    challenge: ch,
                    challenge_response: cr,
                    other,
                })
            })
            .boxed(),
        (any::<Option<[u8; 16]>>(), other())
            .prop_map(|(challenge_response, other)| {
                Message::Scccn(Scccn {
                    challenge_response,
                    other,
                })
            })
            .boxed(),
        (tid.clone(), result_code(), other())
            .prop_map(|(assigned_tunnel_id, result_code, other)| {
                Message::StopCcn(StopCcn {
                    assigned_tunnel_id,
                    result_code,
                    other,
                })
            })
            .boxed(),
        Just(Message::Hello).boxed(),
        (
            (
                sid.clone(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                bc.clone(),
                fc.clone(),
                bytes(16),
                opt_bytes(8),
            ),
            other(),
        )
            .prop_map(|((s, csn, min, max, b, f, called, sub), other)| {
                Message::Ocrq(Ocrq {
                    assigned_session_id: s,
                    call_serial_number: csn,
                    minimum_bps: min,
                    maximum_bps: max,
                    bearer_type: b,
                    framing_type: f,
                    called_number: called,
                    sub_address: sub,
                    other,
                })
            })
            .boxed(),
        (sid.clone(), any::<Option<u32>>(), other())
            .prop_map(|(assigned_session_id, physical_channel_id, other)| {
                Message::Ocrp(Ocrp {
                    assigned_session_id,
                    physical_channel_id,
                    other,
                })
            })
            .boxed(),
        (
            any::<u32>(),
            fc.clone(),
            any::<Option<u32>>(),
            any::<bool>(),
            other(),
        )
            .prop_map(|(tx, f, rx, seq, other)| {
                Message::Occn(Occn {
                    tx_connect_speed: tx,
                    framing_type: f,
                    rx_connect_speed: rx,
                    sequencing_required: seq,
                    other,
                })
            })
            .boxed(),
        (
            (
                sid.clone(),
                any::<u32>(),
                prop::option::of(bc),
                any::<Option<u32>>(),
                opt_bytes(16),
                opt_bytes(16),
                opt_bytes(8),
            ),
            other(),
        )
            .prop_map(|((s, csn, b, pc, calling, called, sub), other)| {
                Message::Icrq(Icrq {
                    assigned_session_id: s,
                    call_serial_number: csn,
                    bearer_type: b,
                    physical_channel_id: pc,
                    calling_number: calling,
                    called_number: called,
                    sub_address: sub,
                    other,
                })
            })
            .boxed(),
        (sid.clone(), other())
            .prop_map(|(assigned_session_id, other)| {
                Message::Icrp(Icrp {
                    assigned_session_id,
                    other,
                })
            })
            .boxed(),
        (
            (
                any::<u32>(),
                fc,
                opt_bytes(32),
                opt_bytes(32),
                opt_bytes(32),
                any::<Option<u16>>(),
            ),
            (
                opt_bytes(16),
                opt_bytes(16),
                any::<Option<u16>>(),
                opt_bytes(16),
                opt_bytes(8),
                any::<Option<u32>>(),
                any::<bool>(),
            ),
            other(),
        )
            .prop_map(
                |((tx, f, irl, lsl, lrl, pat), (pan, pac, pai, par, pg, rx, seq), other)| {
                    Message::Iccn(Iccn {
                        tx_connect_speed: tx,
                        framing_type: f,
                        initial_received_lcp_confreq: irl,
                        last_sent_lcp_confreq: lsl,
                        last_received_lcp_confreq: lrl,
                        proxy_authen_type: pat,
                        proxy_authen_name: pan,
                        proxy_authen_challenge: pac,
                        proxy_authen_id: pai,
                        proxy_authen_response: par,
                        private_group_id: pg,
                        rx_connect_speed: rx,
                        sequencing_required: seq,
                        other,
                    })
                },
            )
            .boxed(),
        (
            result_code(),
            sid,
            prop::option::of((any::<u16>(), any::<u8>(), bytes(16))),
            other(),
        )
            .prop_map(|(result_code, assigned_session_id, q, other)| {
                Message::Cdn(Cdn {
                    result_code,
                    assigned_session_id,
                    q931_cause_code: q.map(|(cause, msg, advisory)| Q931Cause {
                        cause,
                        msg,
                        advisory,
                    }),
                    other,
                })
            })
            .boxed(),
        (call_errors(), other())
            .prop_map(|(call_errors, other)| Message::Wen(Wen { call_errors, other }))
            .boxed(),
        (any::<(u32, u32)>(), other())
            .prop_map(|(accm, other)| Message::Sli(Sli { accm, other }))
            .boxed(),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(buf in bytes(300), secret in prop::option::of(bytes(8))) {
        let _ = decode_header(&buf);
        let _ = ControlMessage::decode(&buf, secret.as_deref());
    }

    /// Arbitrary AVP soup behind a valid control header, so the AVP walker
    /// and the value decoders see many shapes.
    #[test]
    fn decode_never_panics_on_avp_soup(body in bytes(300), fix_length in any::<bool>(), secret in prop::option::of(bytes(8))) {
        let mut buf = vec![0xc8, 0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        buf.extend_from_slice(&body);
        if fix_length {
            let l = buf.len() as u16;
            buf[2..4].copy_from_slice(&l.to_be_bytes());
        }
        if let Ok(msg) = ControlMessage::decode(&buf, secret.as_deref()) {
            let _ = Message::from_control(&msg);
            let _ = msg.unknown_mandatory();
        }
    }

    #[test]
    fn encode_then_decode_is_identity(h in header(), avps in prop::collection::vec(avp(false), 0..12)) {
        let msg = ControlMessage { header: h, avps };
        let bytes = msg.encode(None).expect("encode");
        prop_assert_eq!(ControlMessage::decode(&bytes, None).expect("decode"), msg);
    }

    /// With hiding: decode yields the message plus the Random Vector the
    /// encoder may have inserted, and re-encoding that is byte-exact.
    #[test]
    fn encode_then_decode_with_hiding(
        h in header(),
        avps in prop::collection::vec(avp(true), 0..12),
        secret in bytes(24),
        seed in 1u64..,
    ) {
        let msg = ControlMessage { header: h, avps };
        let bytes = msg.encode(Some((&secret, &mut SeededRng(seed)))).expect("encode");
        let back = ControlMessage::decode(&bytes, Some(&secret)).expect("decode");
        let needs_rv = msg.avps.iter().position(|a| a.hidden).is_some_and(|first| {
            !msg.avps[..first].iter().any(|a| matches!(a.value, AvpValue::RandomVector(_)))
        });
        let mut expected = msg.avps.clone();
        if needs_rv {
            let first = msg.avps.iter().position(|a| a.hidden).unwrap_or(0);
            let inserted = back.avps[first].clone();
            prop_assert!(matches!(inserted.value, AvpValue::RandomVector(ref rv) if rv.len() == 16));
            expected.insert(first, inserted);
        }
        prop_assert_eq!(&back.avps, &expected);
        prop_assert_eq!(back.header, msg.header);
        prop_assert_eq!(back.encode(Some((&secret, &mut SeededRng(seed ^ 1)))).expect("re-encode"), bytes);
    }

    #[test]
    fn typed_messages_round_trip(h in header(), m in message(), hide in any::<bool>(), secret in bytes(16)) {
        let avps = m.to_avps_hiding(|_| hide);
        let cm = ControlMessage { header: h, avps };
        let bytes = cm.encode(Some((&secret, &mut SeededRng(7)))).expect("encode");
        let back = ControlMessage::decode(&bytes, Some(&secret)).expect("decode");
        prop_assert_eq!(back.message_type(), Some(m.message_type()));
        prop_assert_eq!(Message::from_control(&back).expect("typed"), m);
    }
}
