//! Resource limits of a real `l2tpd` LNS (null data plane, loopback, no
//! root): `max_tunnels` refuses a further tunnel with StopCCN 2/4,
//! `[system] max_sessions` and a tunnel profile's `max_sessions` refuse a
//! further call with CDN 4 (the driver's admission decision), and a
//! bounded flood of SCCRQs from one address fills only the per-peer
//! half-open bound, holds no socket per half-open tunnel, and leaves an
//! established tunnel and its session untouched. State is read through
//! `l2tpctl --json`.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{Process, ctl_json, l2tpctl_bin, wait};

const TIMEOUT: Duration = Duration::from_secs(20);

fn lns(dir: &Path, port: u16, system: &str, profile: &str) -> (Process, PathBuf) {
    let socket = dir.join("lns.sock");
    let config = format!(
        r#"
[system]
listen_addr = "127.0.0.1"
udp_port = {port}
data_plane = "null"
api_socket = "{}"
{system}
[tunnel_profile.default]
host_name = "lns"
hello_timeout = "1s"
{profile}
"#,
        socket.display()
    );
    let p = Process::spawn(dir, "lns", &config, "info");
    assert!(p.wait_for("l2tpd started", 1, TIMEOUT), "{}", p.log());
    (p, socket)
}

/// An LAC with `tunnels` tunnels to the LNS on `port`, each placing
/// `calls` calls.
fn lac(dir: &Path, port: u16, tunnels: usize, calls: usize) -> (Process, PathBuf) {
    let socket = dir.join("lac.sock");
    let mut config = format!(
        r#"
[system]
listen_addr = "127.0.0.2"
udp_port = {port}
data_plane = "null"
deny_remote_tunnel_creates = true
api_socket = "{}"
[tunnel_profile.default]
host_name = "lac"
hello_timeout = "1s"
"#,
        socket.display()
    );
    for i in 0..tunnels {
        config.push_str(&format!(
            "[tunnel.t{i}]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\n"
        ));
        for c in 1..=calls {
            config.push_str(&format!("[tunnel.t{i}.session.s{c}]\n"));
        }
    }
    let p = Process::spawn(dir, "lac", &config, "info");
    assert!(p.wait_for("l2tpd started", 1, TIMEOUT), "{}", p.log());
    (p, socket)
}

fn counters(dir: &Path, socket: &Path) -> Value {
    let v = ctl_json(dir, socket, &["system", "counters"]);
    v.get("counters").cloned().unwrap_or(v)
}

/// (tunnel id, peer tunnel id, session ids) of the established tunnels.
fn established(dir: &Path, socket: &Path) -> Vec<(u64, u64)> {
    let v = ctl_json(dir, socket, &["tunnel", "list"]);
    let list = v.get("tunnels").cloned().unwrap_or(v);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "established")
        .map(|t| (t["id"].as_u64().unwrap(), t["peer_id"].as_u64().unwrap()))
        .collect()
}

fn sessions(dir: &Path, socket: &Path) -> Vec<u64> {
    let v = ctl_json(dir, socket, &["session", "list"]);
    let list = v.get("sessions").cloned().unwrap_or(v);
    let mut ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn max_tunnels_refuses_the_third_tunnel_with_stopccn_2_4() {
    l2tpctl_bin();
    let dir = common::tempdir("l2tpd-admission", "max-tunnels");
    let port = 17311;
    let (lns, lns_sock) = lns(&dir, port, "max_tunnels = 2", "");
    let (lac, lac_sock) = lac(&dir, port, 3, 1);
    assert!(
        wait(
            TIMEOUT,
            || counters(&dir, &lns_sock)["tunnel_limit_refusals"] == 1
        ),
        "LNS:\n{}",
        lns.log()
    );
    assert!(wait(TIMEOUT, || established(&dir, &lns_sock).len() == 2));
    // The LAC hears why: general error, insufficient resources.
    assert!(
        lac.wait_for("result 2 error 4 \"tunnel limit reached\"", 1, TIMEOUT),
        "LAC:\n{}",
        lac.log()
    );
    assert_eq!(established(&dir, &lac_sock).len(), 2);
}

/// An LNS with `system` and `profile` settings that admit one call, and
/// an LAC placing two in one tunnel: the second ICRQ is refused by the
/// LNS's admission with CDN result 4 and `text`, and the first call stays.
fn second_call_refused(name: &str, port: u16, system: &str, profile: &str, text: &str) {
    l2tpctl_bin();
    let dir = common::tempdir("l2tpd-admission", name);
    let (lns, lns_sock) = lns(&dir, port, system, profile);
    let (lac, lac_sock) = lac(&dir, port, 1, 2);
    assert!(
        wait(TIMEOUT, || counters(&dir, &lns_sock)["calls_refused"]
            .as_u64()
            .is_some_and(|n| n >= 1)),
        "LNS:\n{}",
        lns.log()
    );
    // The LAC hears why: no appropriate facilities, temporary condition.
    assert!(
        lac.wait_for(&format!("result 4 error 0 \"{text}\""), 1, TIMEOUT),
        "LAC:\n{}",
        lac.log()
    );
    assert!(
        wait(TIMEOUT, || sessions(&dir, &lns_sock).len() == 1
            && sessions(&dir, &lac_sock).len() == 1),
        "LNS:\n{}\nLAC:\n{}",
        lns.log(),
        lac.log()
    );
    let c = counters(&dir, &lns_sock);
    assert_eq!(c["undecided_calls"], 0, "{c}");
    assert_eq!(c["sessions"], 1, "{c}");
}

#[test]
fn system_max_sessions_refuses_the_second_call_with_cdn_4() {
    second_call_refused(
        "max-sessions",
        17313,
        "max_sessions = 1",
        "",
        "system session limit reached",
    );
}

#[test]
fn a_tunnels_max_sessions_refuses_the_second_call_with_cdn_4() {
    second_call_refused(
        "tunnel-max-sessions",
        17314,
        "",
        "max_sessions = 1",
        "tunnel session limit reached",
    );
}

/// A valid SCCRQ (RFC 2661 §6.1) with Assigned Tunnel ID `id`, Ns = 0.
fn sccrq(id: u16) -> Vec<u8> {
    let mut avps = Vec::new();
    let mut avp = |attr: u16, value: &[u8]| {
        let len = 6 + value.len() as u16;
        avps.extend_from_slice(&(0x8000 | len).to_be_bytes());
        avps.extend_from_slice(&0u16.to_be_bytes());
        avps.extend_from_slice(&attr.to_be_bytes());
        avps.extend_from_slice(value);
    };
    avp(0, &1u16.to_be_bytes()); // Message Type: SCCRQ
    avp(2, &[1, 0]); // Protocol Version 1.0
    avp(7, b"flood"); // Host Name
    avp(3, &3u32.to_be_bytes()); // Framing Capabilities
    avp(9, &id.to_be_bytes()); // Assigned Tunnel ID
    let len = 12 + avps.len() as u16;
    let mut m = vec![0xc8, 0x02];
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&[0; 8]); // tunnel 0, session 0, Ns 0, Nr 0
    m.extend_from_slice(&avps);
    m
}

#[test]
fn an_sccrq_flood_fills_the_half_open_bound_and_spares_the_established_tunnel() {
    l2tpctl_bin();
    let dir = common::tempdir("l2tpd-admission", "flood");
    let port = 17312;
    let (lns, lns_sock) = lns(
        &dir,
        port,
        "max_half_open_tunnels = 400\nmax_half_open_tunnels_per_peer = 200",
        "",
    );
    let (lac, lac_sock) = lac(&dir, port, 1, 1);
    assert!(wait(TIMEOUT, || sessions(&dir, &lns_sock).len() == 1
        && sessions(&dir, &lac_sock).len() == 1));
    let before = (
        established(&dir, &lns_sock),
        sessions(&dir, &lns_sock),
        sessions(&dir, &lac_sock),
    );
    let sockets_before = counters(&dir, &lns_sock)["tunnel_sockets"].clone();
    assert_eq!(
        sockets_before, 0,
        "with the null data plane the established tunnel lives on the listening socket"
    );
    // 3,000 SCCRQs from one address over about 3 s (bounded in count and time).
    let flood = UdpSocket::bind("127.0.0.5:0").unwrap();
    let start = Instant::now();
    for i in 0..3000u16 {
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
        let _ = flood.send_to(&sccrq(1 + i), ("127.0.0.1", port));
        if i % 100 == 99 {
            // Pacing of the flood itself (1,000 datagrams/s), not a wait on state.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let c = counters(&dir, &lns_sock);
    assert_eq!(c["half_open_tunnels"], 200, "{c}");
    assert!(c["half_open_drops"].as_u64().unwrap() >= 2000, "{c}");
    assert_eq!(
        c["tunnel_sockets"], sockets_before,
        "no socket per half-open tunnel"
    );
    // The established tunnel kept exchanging HELLOs (1 s) through the flood
    // and afterwards: same ids, same session, on both sides.
    let frames = |c: &Value| c["total_rcvd_control_frames"].as_u64().unwrap();
    let seen = frames(&counters(&dir, &lns_sock));
    assert!(
        wait(TIMEOUT, || frames(&counters(&dir, &lns_sock)) >= seen + 4),
        "no HELLO traffic on the established tunnel after the flood"
    );
    let after = (
        established(&dir, &lns_sock),
        sessions(&dir, &lns_sock),
        sessions(&dir, &lac_sock),
    );
    assert_eq!(before, after, "LNS:\n{}\nLAC:\n{}", lns.log(), lac.log());
    assert_eq!(counters(&dir, &lns_sock)["tunnels_lost"], 0);
}
