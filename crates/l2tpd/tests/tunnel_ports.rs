//! Which UDP port a tunnel uses (`tunnel_profile.our_udp_port`, RFC 2661
//! §8.1), between a real `l2tpd` LAC and LNS (null data plane, loopback, no
//! root): by default every tunnel's socket is on the listening port; with
//! `our_udp_port = 0` each tunnel has an ephemeral port of its own, the LNS
//! answering the SCCRQ from it and the LAC dialling from it. The ports are
//! read from each side's `l2tpctl --json tunnel list` (the peer's address
//! and port).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{Process, ctl, l2tpctl_bin, wait};

const TIMEOUT: Duration = Duration::from_secs(20);
const TUNNELS: usize = 3;

/// An LNS on 127.0.0.1:`port` or an LAC on 127.0.0.2:`port` with
/// [`TUNNELS`] tunnels of one call each to the LNS; `our_udp_port` in the
/// default tunnel profile when given.
fn daemon(dir: &Path, lac: bool, port: u16, our_udp_port: Option<u16>) -> (Process, PathBuf) {
    let name = if lac { "lac" } else { "lns" };
    let socket = dir.join(format!("{name}.sock"));
    let addr = if lac { "127.0.0.2" } else { "127.0.0.1" };
    let mut config = format!(
        "[system]\nlisten_addr = \"{addr}\"\nudp_port = {port}\ndata_plane = \"null\"\n\
         api_socket = \"{}\"\n[tunnel_profile.default]\nhost_name = \"{name}\"\n",
        socket.display()
    );
    if let Some(p) = our_udp_port {
        config.push_str(&format!("our_udp_port = {p}\n"));
    }
    if lac {
        for i in 0..TUNNELS {
            config.push_str(&format!(
                "[tunnel.t{i}]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\n\
                 [tunnel.t{i}.session.s1]\n"
            ));
        }
    }
    let p = Process::spawn(dir, name, &config, "info");
    assert!(p.wait_for("l2tpd started", 1, TIMEOUT), "{}", p.log());
    (p, socket)
}

/// The peer address and port of each established tunnel with a session.
fn peers(dir: &Path, socket: &Path) -> Vec<SocketAddr> {
    let (status, out, err) = ctl(dir, socket, &["--json", "tunnel", "list"], TIMEOUT);
    assert!(status.is_some_and(|s| s.success()), "l2tpctl: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let list = v.get("tunnels").cloned().unwrap_or(v);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "established")
        .filter(|t| t["sessions"].as_u64().is_some_and(|n| n > 0))
        .map(|t| t["peer"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Both sides' peers once all tunnels and calls are up: (LAC's, LNS's).
fn run(name: &str, port: u16, our_udp_port: Option<u16>) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    l2tpctl_bin();
    let dir = common::tempdir("l2tpd-ports", name);
    let (lns, lns_sock) = daemon(&dir, false, port, our_udp_port);
    let (lac, lac_sock) = daemon(&dir, true, port, our_udp_port);
    let up = wait(TIMEOUT, || {
        peers(&dir, &lac_sock).len() == TUNNELS && peers(&dir, &lns_sock).len() == TUNNELS
    });
    assert!(up, "LAC:\n{}\nLNS:\n{}", lac.log(), lns.log());
    (peers(&dir, &lac_sock), peers(&dir, &lns_sock))
}

#[test]
fn by_default_every_tunnel_uses_the_listening_port() {
    let port = 17511;
    let (lac_peers, _) = run("default", port, None);
    // The LAC's first tunnel is on its listening port; the others get
    // ephemeral ones (a 5-tuple is never shared), and the LNS answers
    // each from its listening port.
    let lns: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(lac_peers, vec![lns; TUNNELS]);
}

#[test]
fn with_our_udp_port_0_each_tunnel_has_a_port_of_its_own_on_both_sides() {
    let port = 17512;
    let (lac_peers, lns_peers) = run("ephemeral", port, Some(0));
    for (side, peers, addr) in [
        ("LNS", &lac_peers, "127.0.0.1"),
        ("LAC", &lns_peers, "127.0.0.2"),
    ] {
        let ports: BTreeSet<u16> = peers.iter().map(SocketAddr::port).collect();
        assert_eq!(ports.len(), TUNNELS, "the {side}'s ports: {peers:?}");
        assert!(
            !ports.contains(&port),
            "the {side} used its listening port: {peers:?}"
        );
        assert!(
            peers.iter().all(|p| p.ip().to_string() == addr),
            "{peers:?}"
        );
    }
}
