//! Events from pppd through its `openl2tp.so` plugin: the ACCM values the LNS's
//! pppd negotiated (which the LNS tells the LAC with Set-Link-Info, RFC 2661
//! §6.16) and PPP up/down.
//!
//! The plugin (ppp's pppd/plugins/pppol2tp/openl2tp.c) sends AF_UNIX datagrams
//! to the fixed path [`EVENT_SOCKET`]. A message is, in host byte order:
//! `u32 signature (0x6b6c7831), u16 type, u16 length of the TLVs`, then TLVs
//! `u16 type, u16 length, value` each padded to 4 octets. Message types:
//! 1 PPP up/down, 2 ACCM. TLV types: 0 tunnel id (u16), 1 session id (u16),
//! 2 ACCM (u32 send, u32 receive), 3 unit (i32), 4 interface name, 5 user
//! name, 6 state (i32 up).

use std::path::Path;

use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

use crate::ppp::PppEvent;

/// Where `openl2tp.so` sends its events; fixed by the plugin, so only one
/// controller per host can receive them.
pub(crate) const EVENT_SOCKET: &str = "/tmp/openl2tp-event.sock";

const SIGNATURE: u32 = 0x6b6c_7831;
const MSG_UPDOWN: u16 = 1;
const MSG_ACCM: u16 = 2;
const TLV_TUNNEL_ID: u16 = 0;
const TLV_SESSION_ID: u16 = 1;
const TLV_ACCM: u16 = 2;
const TLV_IFNAME: u16 = 4;
const TLV_STATE: u16 = 6;

/// One decoded plugin message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PluginEvent {
    /// The LCP snoop of an LNS-mode session saw both ACCMs.
    Accm {
        tunnel_id: u16,
        session_id: u16,
        send_accm: u32,
        recv_accm: u32,
    },
    /// The PPP link went up or down.
    UpDown {
        tunnel_id: u16,
        session_id: u16,
        up: bool,
        ifname: Option<String>,
    },
}

/// Decode a plugin datagram; `None` when it is not a well-formed message of a
/// known type with the TLVs that type needs.
pub(crate) fn parse(buf: &[u8]) -> Option<PluginEvent> {
    let u16_at = |b: &[u8], o: usize| b.get(o..o + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let u32_at = |b: &[u8], o: usize| {
        b.get(o..o + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
    };
    if u32_at(buf, 0)? != SIGNATURE {
        return None;
    }
    let msg_type = u16_at(buf, 4)?;
    let len = usize::from(u16_at(buf, 6)?);
    let data = buf.get(8..8 + len)?;
    let (mut tid, mut sid, mut accm, mut ifname, mut up) = (None, None, None, None, None);
    let mut off = 0;
    while off + 4 <= data.len() {
        let t = u16_at(data, off)?;
        let l = usize::from(u16_at(data, off + 2)?);
        let v = data.get(off + 4..off + 4 + l)?;
        match t {
            TLV_TUNNEL_ID if l == 2 => tid = u16_at(v, 0),
            TLV_SESSION_ID if l == 2 => sid = u16_at(v, 0),
            TLV_ACCM if l == 8 => accm = Some((u32_at(v, 0)?, u32_at(v, 4)?)),
            TLV_IFNAME => {
                ifname = Some(
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string(),
                )
            }
            TLV_STATE if l >= 4 => up = Some(u32_at(v, 0)? != 0),
            _ => {}
        }
        off += 4 + ((l + 3) & !3);
    }
    match msg_type {
        MSG_ACCM => {
            let (send_accm, recv_accm) = accm?;
            Some(PluginEvent::Accm {
                tunnel_id: tid?,
                session_id: sid?,
                send_accm,
                recv_accm,
            })
        }
        MSG_UPDOWN => Some(PluginEvent::UpDown {
            tunnel_id: tid?,
            session_id: sid?,
            up: up?,
            ifname,
        }),
        _ => None,
    }
}

/// Bind [`EVENT_SOCKET`] (replacing a stale socket file nobody listens on) and
/// forward decoded events. Fails when another live controller owns the path.
pub(crate) fn listen(events: mpsc::UnboundedSender<PppEvent>) -> anyhow::Result<()> {
    let path = Path::new(EVENT_SOCKET);
    if path.exists() {
        let probe = std::os::unix::net::UnixDatagram::unbound()?;
        if probe.connect(path).is_ok() {
            anyhow::bail!(
                "{EVENT_SOCKET} is owned by another running controller (OpenL2TP or l2tpd)"
            );
        }
        std::fs::remove_file(path)?;
    }
    let sock =
        UnixDatagram::bind(path).map_err(|e| anyhow::anyhow!("binding {EVENT_SOCKET}: {e}"))?;
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            match sock.recv(&mut buf).await {
                Ok(n) => match parse(&buf[..n]) {
                    Some(ev) => {
                        if events.send(PppEvent::Plugin(ev)).is_err() {
                            return;
                        }
                    }
                    None => tracing::debug!("ignoring malformed pppd plugin event ({n} bytes)"),
                },
                Err(e) => {
                    tracing::warn!("{EVENT_SOCKET}: {e}");
                    return;
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(t: u16, v: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(t.to_ne_bytes());
        b.extend((v.len() as u16).to_ne_bytes());
        b.extend(v);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn msg(t: u16, tlvs: &[Vec<u8>]) -> Vec<u8> {
        let data: Vec<u8> = tlvs.concat();
        let mut b = Vec::new();
        b.extend(SIGNATURE.to_ne_bytes());
        b.extend(t.to_ne_bytes());
        b.extend((data.len() as u16).to_ne_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn accm_message_decodes() {
        let mut accm = 0xffff_ffffu32.to_ne_bytes().to_vec();
        accm.extend(0x000a_0000u32.to_ne_bytes());
        let m = msg(
            MSG_ACCM,
            &[
                tlv(TLV_TUNNEL_ID, &7u16.to_ne_bytes()),
                tlv(TLV_SESSION_ID, &9u16.to_ne_bytes()),
                tlv(TLV_ACCM, &accm),
            ],
        );
        assert_eq!(
            parse(&m),
            Some(PluginEvent::Accm {
                tunnel_id: 7,
                session_id: 9,
                send_accm: 0xffff_ffff,
                recv_accm: 0x000a_0000
            })
        );
    }

    #[test]
    fn updown_message_decodes_with_padded_ifname() {
        let m = msg(
            MSG_UPDOWN,
            &[
                tlv(TLV_TUNNEL_ID, &1u16.to_ne_bytes()),
                tlv(TLV_SESSION_ID, &2u16.to_ne_bytes()),
                tlv(3, &0i32.to_ne_bytes()),
                tlv(TLV_IFNAME, b"ppp0\0"),
                tlv(TLV_STATE, &1i32.to_ne_bytes()),
            ],
        );
        assert_eq!(
            parse(&m),
            Some(PluginEvent::UpDown {
                tunnel_id: 1,
                session_id: 2,
                up: true,
                ifname: Some("ppp0".into())
            })
        );
    }

    #[test]
    fn malformed_messages_are_rejected_without_panic() {
        let good = msg(MSG_ACCM, &[tlv(TLV_TUNNEL_ID, &7u16.to_ne_bytes())]);
        assert_eq!(parse(&good), None, "ACCM without its TLVs");
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0; 8]), None, "bad signature");
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        let mut lying = good.clone();
        lying[6] = 0xff; // TLV length beyond the datagram
        assert_eq!(parse(&lying), None);
    }
}
