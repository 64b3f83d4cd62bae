//! A daemon that was not scheduled for a while (SIGSTOP here; a starved
//! host in real life) wakes up with a retransmission due and the
//! acknowledgement that makes it needless already waiting in its socket: it
//! must handle the acknowledgement first and retransmit nothing (RFC 2661
//! §5.8: a retransmission is for a message the peer did not acknowledge).
//! A real `l2tpd` LAC and LNS (null data plane, loopback, no root); state
//! and counters are read through `l2tpctl --json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

mod common;

use common::{Process, ctl_json, l2tpctl_bin, wait};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A daemon `name` on 127.0.0.`host`:`port`; `tunnel`: a tunnel to the
/// LNS on 127.0.0.1:`port` (the LAC). The LAC says HELLO every second and
/// retransmits after 3 s (time enough to stop it first on a loaded host);
/// the LNS would not say HELLO for a minute.
fn daemon(dir: &Path, name: &str, host: u8, port: u16, tunnel: bool) -> (Process, PathBuf) {
    let socket = dir.join(format!("{name}.sock"));
    let (hello, retry) = if tunnel { ("1s", "3s") } else { ("60s", "1s") };
    let mut config = format!(
        "[system]\nlisten_addr = \"127.0.0.{host}\"\nudp_port = {port}\ndata_plane = \"null\"\n\
         api_socket = \"{}\"\n[tunnel_profile.default]\nhost_name = \"{name}\"\n\
         hello_timeout = \"{hello}\"\nretry_timeout = \"{retry}\"\n",
        socket.display()
    );
    if tunnel {
        config.push_str(&format!(
            "[tunnel.t]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\n"
        ));
    }
    let p = Process::spawn(dir, name, &config, "info");
    assert!(p.wait_for("l2tpd started", 1, TIMEOUT), "{}", p.log());
    (p, socket)
}

/// The first value named `key` anywhere in `v`, as a number.
fn find(v: &Value, key: &str) -> Option<u64> {
    match v {
        Value::Object(m) => m
            .get(key)
            .and_then(Value::as_u64)
            .or_else(|| m.values().find_map(|x| find(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

/// The one tunnel's counters on the daemon at `socket`, once it is
/// established.
fn tunnel(dir: &Path, socket: &Path) -> Option<Value> {
    let list = ctl_json(dir, socket, &["tunnel", "list"]);
    let id = find(&list, "id")?;
    Some(ctl_json(dir, socket, &["tunnel", "show", &id.to_string()]))
}

fn counter(dir: &Path, socket: &Path, key: &str) -> u64 {
    let t = tunnel(dir, socket).expect("a tunnel");
    find(&t, key).unwrap_or_else(|| panic!("no {key} in {t}"))
}

#[test]
fn a_daemon_woken_after_a_stall_takes_the_waiting_acknowledgement_before_retransmitting() {
    l2tpctl_bin();
    let dir = common::tempdir("l2tpd-stall", "ack");
    let port = 17412;
    let (lns, lns_sock) = daemon(&dir, "lns", 1, port, false);
    let (lac, lac_sock) = daemon(&dir, "lac", 2, port, true);
    let up = |socket: &Path| {
        tunnel(&dir, socket).is_some_and(|t| t.to_string().contains("\"established\""))
    };
    assert!(wait(TIMEOUT, || up(&lns_sock) && up(&lac_sock)));

    // The LNS stops; the LAC's next HELLO waits in the LNS's socket.
    lns.signal(Signal::SIGSTOP);
    let hellos = counter(&dir, &lac_sock, "tx_hellos");
    assert!(wait(TIMEOUT, || counter(&dir, &lac_sock, "tx_hellos") > hellos));
    let sent = Instant::now();
    // Nothing reaches the LAC while the LNS is stopped.
    let rx_zlbs = counter(&dir, &lac_sock, "rx_zlbs");
    let hellos = counter(&dir, &lac_sock, "tx_hellos");
    // The LAC stops before its retransmission timeout (3 s) runs out, and
    // the LNS, continued, takes the HELLO and acknowledges it with a ZLB
    // (sent before the LNS answers the next API call) that waits in the
    // LAC's socket.
    lac.signal(Signal::SIGSTOP);
    lns.signal(Signal::SIGCONT);
    assert!(wait(TIMEOUT, || counter(&dir, &lns_sock, "rx_hellos") >= hellos));
    // The LAC sleeps past its retransmission deadline (the condition under
    // test is the clock itself), then wakes with both waiting.
    let deadline = sent + Duration::from_millis(3500);
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    lac.signal(Signal::SIGCONT);
    assert!(wait(TIMEOUT, || counter(&dir, &lac_sock, "rx_zlbs") > rx_zlbs));
    let t = tunnel(&dir, &lac_sock).unwrap();
    assert_eq!(
        find(&t, "retransmits"),
        Some(0),
        "the LAC retransmitted a message acknowledged while it was stopped: {t}\n{}",
        lac.log()
    );
    assert_eq!(counter(&dir, &lns_sock, "retransmits"), 0);
}
