//! Two real `l2tpd` processes over UDP on loopback with the null data plane:
//! the whole control plane (sockets, timers, signals) without kernel L2TP.
//! Needs no root. Each test uses its own UDP port; none has an API socket
//! (the default one in /run would be left behind by a killed daemon).

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Process as Daemon;

fn tempdir(name: &str) -> PathBuf {
    common::tempdir("l2tpd-test", name)
}

fn lns_config(port: u16) -> String {
    format!(
        r#"
[system]
listen_addr = "127.0.0.1"
udp_port = {port}
data_plane = "null"
api_socket = ""
[tunnel_profile.default]
host_name = "lns"
"#
    )
}

fn lac_config(port: u16, extra: &str) -> String {
    format!(
        r#"
[system]
listen_addr = "127.0.0.2"
udp_port = {port}
data_plane = "null"
api_socket = ""
deny_remote_tunnel_creates = true
[tunnel_profile.default]
host_name = "lac"
{extra}
[tunnel.lac1]
peer_addr = "127.0.0.1"
peer_udp_port = {port}
[tunnel.lac1.session.s1]
[tunnel.lac1.session.s2]
"#
    )
}

#[test]
fn lac_and_lns_bring_up_two_sessions_and_tear_down_on_sigterm() {
    let dir = tempdir("up");
    let port = 17011;
    let lns = Daemon::start(&dir, "lns", &lns_config(port));
    assert!(
        lns.wait_for("l2tpd started", 1, Duration::from_secs(5)),
        "LNS did not start:\n{}",
        lns.log()
    );
    let mut lac = Daemon::start(&dir, "lac", &lac_config(port, ""));
    assert!(
        lac.wait_for("session up", 2, Duration::from_secs(10)),
        "LAC sessions not up:\n{}\n--- LNS ---\n{}",
        lac.log(),
        lns.log()
    );
    assert!(
        lns.wait_for("session up", 2, Duration::from_secs(5)),
        "LNS sessions not up:\n{}",
        lns.log()
    );
    assert!(lac.log().contains("call_type=lac-incoming"));
    assert!(lns.log().contains("call_type=lns-incoming"));

    // SIGUSR1: counters in the log, with the per-type message counts.
    lac.signal(nix::sys::signal::Signal::SIGUSR1);
    assert!(
        lac.wait_for("counters: tunnel", 1, Duration::from_secs(5)),
        "{}",
        lac.log()
    );
    let line = lac
        .log()
        .lines()
        .find(|l| l.contains("counters: tunnel"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("state=established") && line.contains("sessions=2"),
        "{line}"
    );
    assert!(
        line.contains("SCCRP=1") && line.contains("ICRP=2"),
        "{line}"
    );
    assert!(
        line.contains("SCCRQ=1") && line.contains("ICCN=2"),
        "{line}"
    );
    assert!(lac.log().contains("counters: system"));

    lac.signal(nix::sys::signal::Signal::SIGTERM);
    let st = lac
        .wait_exit(Duration::from_secs(5))
        .expect("LAC did not exit within 5 s of SIGTERM");
    assert!(st.success(), "LAC exit status {st:?}:\n{}", lac.log());
    // The LNS received both CDNs and the StopCCN (result 6, shutting down).
    assert!(
        lns.wait_for("recv CDN", 2, Duration::from_secs(5)),
        "{}",
        lns.log()
    );
    assert!(
        lns.wait_for("recv StopCCN", 1, Duration::from_secs(5)),
        "{}",
        lns.log()
    );
    assert!(
        lns.log().contains("tunnel down: closed by peer, result 6"),
        "{}",
        lns.log()
    );
    // The LAC freed the tunnel after the StopCCN was acknowledged, not by timeout.
    assert!(lac.log().contains("tunnel freed"), "{}", lac.log());
}

#[test]
fn lac_clears_tunnel_when_lns_vanishes() {
    let dir = tempdir("loss");
    let port = 17012;
    let mut lns = Daemon::start(&dir, "lns", &lns_config(port));
    assert!(lns.wait_for("l2tpd started", 1, Duration::from_secs(5)));
    let timers = "hello_timeout = \"1s\"\nretry_timeout = \"100ms\"\nretry_max_timeout = \"200ms\"\nmax_retries = 3";
    let lac = Daemon::start(&dir, "lac", &lac_config(port, timers));
    assert!(
        lac.wait_for("session up", 2, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    // Let the LNS acknowledge the ICCNs, so that what goes unanswered is the HELLO.
    assert!(
        lns.wait_for("session up", 2, Duration::from_secs(5)),
        "{}",
        lns.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    lns.signal(nix::sys::signal::Signal::SIGKILL);
    lns.wait_exit(Duration::from_secs(5)).expect("LNS killed");
    // HELLO after 1 s of silence, 3 retransmissions (100, 200, 200 ms) then give up.
    assert!(
        lac.wait_for("tunnel down: peer unreachable", 1, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    assert!(lac.log().contains("send HELLO"), "{}", lac.log());
    assert_eq!(
        lac.log().matches("session cleaned up").count(),
        2,
        "{}",
        lac.log()
    );
}

#[test]
fn config_error_names_file_line_and_key() {
    let dir = tempdir("badcfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[system]\nudp_port = 1701\nlisten_adr = \"127.0.0.1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3"), "{err}");
    assert!(err.contains("listen_adr"), "{err}");
}

#[test]
fn missing_kernel_l2tp_support_is_a_clear_error() {
    let dir = tempdir("nokernel");
    let cfg = dir.join("k.toml");
    std::fs::write(
        &cfg,
        "[system]\nlisten_addr = \"127.0.0.1\"\nudp_port = 17013\ndata_plane = \"netlink\"\napi_socket = \"\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("--config")
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some(status) = status else {
        // This kernel has L2TP and we may program it: the daemon is running, which is
        // the other correct outcome. Stop it.
        let _ = child.kill();
        return;
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    if err.contains("Operation not permitted") {
        return; // L2TP present but not root: also a clear error, not this test's case.
    }
    assert!(err.contains("kernel has no L2TP support"), "{err}");
    assert!(err.contains("modprobe -a l2tp_netlink l2tp_ppp"), "{err}");
    assert_eq!(
        err.matches("kernel has no L2TP support").count(),
        1,
        "printed once: {err}"
    );
}

fn lns_with(port: u16, extra: &str) -> String {
    format!("{}{extra}", lns_config(port)).replace(
        "host_name = \"lns\"\n",
        "host_name = \"lns\"\nauth_mode = \"simple\"\n",
    )
}

#[test]
fn simple_auth_refuses_unknown_peers_with_stopccn_4() {
    let dir = tempdir("simple-refuse");
    let port = 17014;
    let lns = Daemon::start(&dir, "lns", &lns_with(port, ""));
    assert!(
        lns.wait_for("l2tpd started", 1, Duration::from_secs(5)),
        "{}",
        lns.log()
    );
    let lac = Daemon::start(&dir, "lac", &lac_config(port, ""));
    assert!(
        lac.wait_for(
            "tunnel down: closed by peer, result 4",
            1,
            Duration::from_secs(10)
        ),
        "{}\n--- LNS ---\n{}",
        lac.log(),
        lns.log()
    );
    assert!(
        lns.log().contains("matches no configured peer profile"),
        "{}",
        lns.log()
    );
    assert!(!lac.log().contains("session up"));
}

#[test]
fn simple_auth_accepts_a_peer_matched_by_host_name() {
    let dir = tempdir("simple-accept");
    let port = 17015;
    let peer = "\n[peer_profile.lac]\nhost_name = \"lac\"\n";
    let lns = Daemon::start(&dir, "lns", &lns_with(port, peer));
    assert!(
        lns.wait_for("l2tpd started", 1, Duration::from_secs(5)),
        "{}",
        lns.log()
    );
    let lac = Daemon::start(&dir, "lac", &lac_config(port, ""));
    assert!(
        lac.wait_for("session up", 2, Duration::from_secs(10)),
        "{}\n--- LNS ---\n{}",
        lac.log(),
        lns.log()
    );
}

#[test]
fn sighup_reload_adds_and_removes_tunnels_and_calls_without_dropping_sessions() {
    let dir = tempdir("reload");
    let port = 17016;
    let lns = Daemon::start(&dir, "lns", &lns_config(port));
    assert!(lns.wait_for("l2tpd started", 1, Duration::from_secs(5)));
    let one = format!(
        "[system]\nlisten_addr = \"127.0.0.2\"\nudp_port = {port}\ndata_plane = \"null\"\napi_socket = \"\"\ndeny_remote_tunnel_creates = true\n\
         [tunnel.lac1]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\n[tunnel.lac1.session.s1]\n"
    );
    let mut lac = Daemon::start(&dir, "lac", &one);
    assert!(
        lac.wait_for("session up", 1, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    let first_session = lac
        .log()
        .lines()
        .find(|l| l.contains("session up"))
        .unwrap()
        .to_string();
    let sid = first_session
        .split("session_id=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();

    // Add a call to lac1 and a second tunnel to the same LNS (its own source port).
    let two = format!(
        "{one}[tunnel.lac1.session.s2]\n[tunnel.lac2]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\n[tunnel.lac2.session.s1]\n"
    );
    std::fs::write(dir.join("lac.toml"), &two).unwrap();
    lac.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        lac.wait_for("configuration reloaded", 1, Duration::from_secs(5)),
        "{}",
        lac.log()
    );
    assert!(
        lac.wait_for("session up", 3, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    assert!(
        lac.wait_for("tunnel up", 2, Duration::from_secs(5)),
        "{}",
        lac.log()
    );
    assert!(lac.log().contains("added=1 removed=0"), "{}", lac.log());
    // The first session was not touched.
    assert!(
        !lac.log()
            .contains(&format!("session_id={sid} \"session down"))
            && !lac.log().contains("session down"),
        "{}",
        lac.log()
    );

    // An invalid configuration is rejected; the running one is kept.
    std::fs::write(
        dir.join("lac.toml"),
        format!("{two}[tunnel.lac3]\npeer_adr = \"127.0.0.1\"\n"),
    )
    .unwrap();
    lac.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        lac.wait_for("configuration reload failed", 1, Duration::from_secs(5)),
        "{}",
        lac.log()
    );
    assert!(
        lac.log().contains("peer_adr"),
        "the error names the bad key:\n{}",
        lac.log()
    );
    assert!(
        lac.child.try_wait().unwrap().is_none(),
        "daemon still running"
    );

    // Removing lac2 closes it with StopCCN; lac1 and its sessions stay.
    std::fs::write(
        dir.join("lac.toml"),
        format!("{one}[tunnel.lac1.session.s2]\n"),
    )
    .unwrap();
    lac.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        lac.wait_for("added=0 removed=1", 1, Duration::from_secs(5)),
        "{}",
        lac.log()
    );
    assert!(
        lns.wait_for(
            "tunnel down: closed by peer, result 1",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        lns.log()
    );
    assert_eq!(
        lac.log().matches("session down").count(),
        1,
        "only lac2's call went down:\n{}",
        lac.log()
    );
}

#[test]
fn persistent_tunnel_comes_back_with_its_calls_after_the_peer_returns() {
    let dir = tempdir("persist");
    let port = 17017;
    let mut lns = Daemon::start(&dir, "lns", &lns_config(port));
    assert!(lns.wait_for("l2tpd started", 1, Duration::from_secs(5)));
    let timers = "hello_timeout = \"1s\"\nretry_timeout = \"100ms\"\nretry_max_timeout = \"200ms\"\nmax_retries = 2";
    let cfg = lac_config(port, timers).replace("peer_udp_port", "persist = true\npeer_udp_port");
    let lac = Daemon::start(&dir, "lac", &cfg);
    assert!(
        lac.wait_for("session up", 2, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    assert!(lns.wait_for("session up", 2, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(300));
    lns.signal(nix::sys::signal::Signal::SIGKILL);
    lns.wait_exit(Duration::from_secs(5)).unwrap();
    assert!(
        lac.wait_for("re-establishing in", 1, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    // The LNS comes back; the LAC re-dials and places both calls again.
    let lns2 = Daemon::start(&dir, "lns2", &lns_config(port));
    assert!(
        lac.wait_for("session up", 4, Duration::from_secs(20)),
        "{}\n--- LNS ---\n{}",
        lac.log(),
        lns2.log()
    );
    assert!(
        lac.log().contains("re-establishing persistent tunnel"),
        "{}",
        lac.log()
    );
    assert_eq!(lac.log().matches("tunnel up").count(), 2);
}

#[test]
fn check_prints_the_effective_configuration_and_fails_on_errors() {
    let dir = tempdir("check");
    let cfg = dir.join("l2tpd.toml");
    std::fs::write(
        &cfg,
        "[tunnel_profile.default]\nsecret = \"hunter2\"\n[tunnel.t]\npeer_addr = \"192.0.2.2\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("l2tpd.toml.d")).unwrap();
    std::fs::write(
        dir.join("l2tpd.toml.d/50-hello.toml"),
        "[tunnel_profile.default]\nhello_timeout = \"5s\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hello_timeout = \"5s\""),
        "drop-in merged:\n{stdout}"
    );
    assert!(
        stdout.contains("50-hello.toml"),
        "sources listed:\n{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "secret redacted:\n{stdout}");
    std::fs::write(
        dir.join("l2tpd.toml.d/60-bad.toml"),
        "[tunnel_profile.default]\nhello_timeout = \"soon\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("60-bad.toml:2") && err.contains("hello_timeout"),
        "{err}"
    );
}

#[test]
fn a_new_tunnel_comes_up_while_the_peer_still_lingers_on_the_old_one() {
    let dir = tempdir("relinger");
    let port = 17018;
    let lns = Daemon::start(&dir, "lns", &lns_config(port));
    assert!(lns.wait_for("l2tpd started", 1, Duration::from_secs(5)));
    let base = format!(
        "[system]\nlisten_addr = \"127.0.0.2\"\nudp_port = {port}\ndata_plane = \"null\"\napi_socket = \"\"\ndeny_remote_tunnel_creates = true\n"
    );
    let tunnel = format!(
        "[tunnel.lac1]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\n[tunnel.lac1.session.s1]\n"
    );
    let lac = Daemon::start(&dir, "lac", &format!("{base}{tunnel}"));
    assert!(
        lac.wait_for("session up", 1, Duration::from_secs(10)),
        "{}",
        lac.log()
    );
    // Remove the tunnel: StopCCN; the LNS keeps the old tunnel lingering (RFC 2661 §5.7).
    std::fs::write(dir.join("lac.toml"), &base).unwrap();
    lac.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        lns.wait_for("tunnel down: closed by peer", 1, Duration::from_secs(5)),
        "{}",
        lns.log()
    );
    assert!(
        lac.wait_for("tunnel freed", 1, Duration::from_secs(5)),
        "{}",
        lac.log()
    );
    // Add it back at once: same 5-tuple while the LNS still lingers on the old tunnel.
    std::fs::write(dir.join("lac.toml"), format!("{base}{tunnel}")).unwrap();
    lac.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        lac.wait_for("session up", 2, Duration::from_secs(5)),
        "{}\n--- LNS ---\n{}",
        lac.log(),
        lns.log()
    );
    assert!(
        !lac.log().contains("expected 127.0.0.1"),
        "a reply came from an unexpected port:\n{}",
        lac.log()
    );
}
