//! A hostile peer's strings never reach the log or the operator's terminal
//! raw: a scripted peer over loopback opens a tunnel to a real `l2tpd` LNS
//! (null data plane, no root) with a Host Name holding a newline, an ANSI
//! colour sequence (ESC[31m), an OSC title sequence and a NUL, then closes
//! it with a StopCCN whose message holds more of the same. The daemon's log
//! and `l2tpctl tunnel list` / `tunnel show` output carry none of those
//! bytes, only their escapes.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use l2tp_proto::wire::{
    ControlHeader, ControlMessage, FramingCaps, Message, MessageType, ResultCode, Scccn, Sccrq,
    SessionId, StopCcn, TunnelId,
};
use serde_json::Value;

mod common;

use common::{Process, ctl, l2tpctl_bin, wait};

const TIMEOUT: Duration = Duration::from_secs(20);
const PORT: u16 = 17411;
const PEER_TUNNEL: TunnelId = TunnelId(4321);

/// Newline (log-line forging), CSI colour, OSC window title, BEL, NUL.
const HOSTILE_HOST: &[u8] = b"evil\nFORGED ERROR line\x1b[31mred\x1b]0;pwned\x07\0end";
const HOSTILE_MESSAGE: &[u8] = b"bye\r\nFORGED2\x1b[2J\x1b]8;;http://x\x1b\\";

fn lns(dir: &Path) -> (Process, PathBuf) {
    let socket = dir.join("lns.sock");
    let config = format!(
        r#"
[system]
listen_addr = "127.0.0.1"
udp_port = {PORT}
data_plane = "null"
api_socket = "{}"
[tunnel_profile.default]
host_name = "lns"
"#,
        socket.display()
    );
    let p = Process::spawn(dir, "lns", &config, "debug");
    assert!(p.wait_for("l2tpd started", 1, TIMEOUT), "{}", p.log());
    (p, socket)
}

fn encode(tunnel: TunnelId, ns: u16, nr: u16, m: Message) -> Vec<u8> {
    ControlMessage {
        header: ControlHeader {
            tunnel_id: tunnel,
            session_id: SessionId(0),
            ns,
            nr,
        },
        avps: m.to_avps(),
    }
    .encode(None)
    .unwrap()
}

/// Receive until a non-ZLB control message arrives (bounded by the socket's
/// read timeout and a count).
fn recv_message(sock: &UdpSocket) -> ControlMessage {
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let n = sock.recv(&mut buf).expect("reply from the LNS");
        let m = ControlMessage::decode(&buf[..n], None).expect("decodes");
        if !m.is_zlb() {
            return m;
        }
    }
    panic!("no control message from the LNS");
}

/// No byte a terminal or a log reader would act on: C0 controls other than
/// the newlines that end lines, DEL, C1 controls.
fn assert_inert(what: &str, text: &str) {
    for (i, c) in text.chars().enumerate() {
        assert!(
            c == '\n' || !c.is_control(),
            "{what}: raw {c:?} at char {i}:\n{}",
            text.escape_debug()
        );
    }
    for line in text.lines() {
        assert!(
            !line.starts_with("FORGED"),
            "{what}: a forged line: {line:?}"
        );
    }
}

fn ctl_ok(dir: &Path, socket: &Path, args: &[&str]) -> String {
    let (status, out, err) = ctl(dir, socket, args, Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "l2tpctl {args:?}: {err}"
    );
    out
}

fn tunnels(dir: &Path, socket: &Path) -> Vec<Value> {
    let out = ctl_ok(dir, socket, &["--json", "tunnel", "list"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let list = v.get("tunnels").cloned().unwrap_or(v);
    list.as_array().cloned().unwrap_or_default()
}

#[test]
fn hostile_host_name_and_message_are_escaped_in_log_and_l2tpctl() {
    l2tpctl_bin();
    let dir = common::tempdir("l2tpd-hostile", "strings");
    let (lns, socket) = lns(&dir);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    peer.connect(("127.0.0.1", PORT)).unwrap();

    let sccrq = Message::Sccrq(Sccrq {
        protocol_version: (1, 0),
        host_name: HOSTILE_HOST.to_vec(),
        framing_capabilities: FramingCaps(3),
        assigned_tunnel_id: PEER_TUNNEL,
        bearer_capabilities: None,
        receive_window_size: Some(4),
        challenge: None,
        tie_breaker: None,
        firmware_revision: None,
        vendor_name: Some(b"vendor\x1b[1m\n".to_vec()),
        other: Vec::new(),
    });
    peer.send(&encode(TunnelId(0), 0, 0, sccrq)).unwrap();
    let sccrp = recv_message(&peer);
    assert_eq!(sccrp.message_type(), Some(MessageType::SCCRP));
    let Ok(Message::Sccrp(p)) = Message::from_control(&sccrp) else {
        panic!("SCCRP: {sccrp:?}")
    };
    let ours = p.assigned_tunnel_id;
    peer.send(&encode(ours, 1, 1, Message::Scccn(Scccn::default())))
        .unwrap();
    assert!(
        wait(TIMEOUT, || tunnels(&dir, &socket)
            .iter()
            .any(|t| t["state"] == "established")),
        "{}",
        lns.log()
    );
    // The JSON carries the host name (JSON escapes it); the tables must not
    // print it raw.
    let list = ctl_ok(&dir, &socket, &["tunnel", "list"]);
    assert_inert("l2tpctl tunnel list", &list);
    assert!(list.contains("evil\\nFORGED"), "{list}");
    let show = ctl_ok(&dir, &socket, &["tunnel", "show", &ours.0.to_string()]);
    assert_inert("l2tpctl tunnel show", &show);
    assert!(show.contains("\\x1b[31mred"), "{show}");

    // The peer closes the tunnel with a hostile message.
    let stop = Message::StopCcn(StopCcn {
        assigned_tunnel_id: PEER_TUNNEL,
        result_code: ResultCode {
            result: 2,
            error: Some(0),
            message: Some(HOSTILE_MESSAGE.to_vec()),
        },
        other: Vec::new(),
    });
    peer.send(&encode(ours, 2, 1, stop)).unwrap();
    assert!(
        wait(TIMEOUT, || tunnels(&dir, &socket)
            .iter()
            .all(|t| t["state"] != "established")),
        "{}",
        lns.log()
    );
    // The tunnel-down line is written before the state changes; the log is
    // read once the daemon reports the tunnel down.
    let log = lns.log();
    assert_inert("l2tpd log", &log);
    // The strings did reach the log, escaped.
    assert!(
        log.contains("evil\\nFORGED ERROR line\\x1b[31mred\\x1b]0;pwned\\x07\\0end"),
        "{log}"
    );
    assert!(log.contains("bye\\r\\nFORGED2\\x1b[2J"), "{log}");
}
