//! Kernel smoke test for `l2tp-kernel`: run as root on a kernel with L2TP, e.g. in the
//! VM described in docs (vng + stock Debian kernel):
//!
//! ```text
//! modprobe -a l2tp_netlink l2tp_ppp ppp_generic
//! target/debug/examples/kernel_smoke [netlink|legacy|all]
//! ```
//!
//! For each mode and address family it creates two UDP sockets on loopback connected
//! to each other, kernel tunnels 100<->200 and sessions 1000<->2000 between them
//! (IPv6: 300<->400, 3000<->4000), compares the kernel's dump with what was asked and
//! with `ip l2tp show`, passes control and data packets, reads stats, deletes
//! everything and checks it is gone. Then it runs real pppd (`pppol2tp.so`) on both
//! ends of a third tunnel pair (500<->600, sessions 5000<->6000; needs `pppd` and
//! /dev/ppp; skip with SMOKE_NO_PPPD=1), waits for ppp50/ppp60 with rtnetlink and
//! observes what session deletion does to pppd. Exits non-zero on any mismatch.
//! pppd logs go to /tmp/kout/pppd-*.log.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use l2tp_kernel::{
    DataPlane, DataPlaneMode, Encap, KernelDataPlane, LinkAddr, PppSession, Pseudowire, SessionId,
    SessionSpec, TunnelId, TunnelSpec, link_addresses, list_ppp_links, tunnel_socket,
    wait_for_link,
};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;
use nix::unistd::Pid;

#[derive(Default)]
struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl AsRef<str>) {
        if ok {
            self.passed += 1;
            println!("  ok    {}", what.as_ref());
        } else {
            self.failed.push(what.as_ref().to_string());
            println!("  FAIL  {}", what.as_ref());
        }
    }

    fn must<T>(&mut self, r: Result<T, l2tp_kernel::Error>, what: &str) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(true, what);
                Some(v)
            }
            Err(e) => {
                self.check(false, format!("{what}: {e}"));
                None
            }
        }
    }
}

fn ip_l2tp(args: &[&str]) -> String {
    match Command::new("ip").arg("l2tp").args(args).output() {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        }
        Err(e) => format!("(ip l2tp {args:?} failed: {e})"),
    }
}

fn recv_udp(s: &UdpSocket, timeout: Duration) -> Option<Vec<u8>> {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while start.elapsed() < timeout {
        match s.recv(&mut buf) {
            Ok(n) => return Some(buf[..n].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => {
                println!("  recv error: {e}");
                return None;
            }
        }
    }
    None
}

fn read_ppp(s: &PppSession) -> Result<Vec<u8>, nix::Error> {
    setsockopt(&s.fd, sockopt::ReceiveTimeout, &TimeVal::new(2, 0))?;
    let mut buf = [0u8; 2048];
    let n = nix::unistd::read(s.fd.as_fd(), &mut buf)?;
    Ok(buf[..n].to_vec())
}

/// L2TPv2 header: flags/version, [length], tunnel, session, [Ns, Nr].
fn l2tp_control(tunnel: u16) -> Vec<u8> {
    // T=1 L=1 S=1 Ver=2; length 12; tunnel; session 0; Ns 0; Nr 0 (a ZLB).
    let mut v = vec![0xc8, 0x02, 0, 12];
    v.extend_from_slice(&tunnel.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    v
}

fn l2tp_data(tunnel: u16, session: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x00, 0x02];
    v.extend_from_slice(&tunnel.to_be_bytes());
    v.extend_from_slice(&session.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Ids {
    t_a: u32,
    t_b: u32,
    s_a: u32,
    s_b: u32,
    addr_a: SocketAddr,
    addr_b: SocketAddr,
    csum_a: bool,
    csum_b: bool,
}

fn scenario(c: &mut Checks, mode: DataPlaneMode, ids: &Ids) {
    let fam = if ids.addr_a.is_ipv4() { "IPv4" } else { "IPv6" };
    println!(
        "== {mode} mode, {fam}: tunnels {}<->{}, sessions {}<->{}",
        ids.t_a, ids.t_b, ids.s_a, ids.s_b
    );
    let Some(mut dp) = c.must(KernelDataPlane::new(mode), "KernelDataPlane::new") else {
        return;
    };
    let Some(sock_a) = c.must(tunnel_socket(ids.addr_a, ids.addr_b), "tunnel socket A") else {
        return;
    };
    let Some(sock_b) = c.must(tunnel_socket(ids.addr_b, ids.addr_a), "tunnel socket B") else {
        return;
    };
    let (ta, tb, sa, sb) = (
        TunnelId(ids.t_a),
        TunnelId(ids.t_b),
        SessionId(ids.s_a),
        SessionId(ids.s_b),
    );
    let spec_a = TunnelSpec {
        tunnel_id: ta,
        peer_tunnel_id: tb,
        version: 2,
        encap: Encap::Udp,
        socket: sock_a.as_raw_fd(),
        udp_checksum: ids.csum_a,
    };
    let spec_b = TunnelSpec {
        tunnel_id: tb,
        peer_tunnel_id: ta,
        version: 2,
        encap: Encap::Udp,
        socket: sock_b.as_raw_fd(),
        udp_checksum: ids.csum_b,
    };
    if c.must(dp.create_tunnel(&spec_a), &format!("create tunnel {ta}"))
        .is_none()
        || c.must(dp.create_tunnel(&spec_b), &format!("create tunnel {tb}"))
            .is_none()
    {
        return;
    }

    // A second data plane asking for the same tunnel id: the kernel's own answer.
    let mut dp2 = KernelDataPlane::new(mode).expect("second data plane");
    let sock_c = tunnel_socket(
        SocketAddr::new(ids.addr_a.ip(), 0),
        SocketAddr::new(ids.addr_b.ip(), ids.addr_b.port() + 100),
    )
    .expect("socket C");
    let dup = TunnelSpec {
        socket: sock_c.as_raw_fd(),
        ..spec_a.clone()
    };
    match dp2.create_tunnel(&dup) {
        Ok(()) => {
            println!(
                "  note  duplicate tunnel id {ta} accepted by the kernel (legacy attaches to it)"
            );
            c.check(
                mode == DataPlaneMode::Legacy,
                "duplicate tunnel id accepted only in legacy mode",
            );
            let _ = dp2.delete_tunnel(ta);
        }
        Err(e) => {
            println!("  note  duplicate tunnel: {e}");
            c.check(
                e.errno() == Some(libc::EEXIST),
                "duplicate tunnel id gives EEXIST",
            );
        }
    }
    // The socket of an existing tunnel cannot carry a second one.
    let busy = TunnelSpec {
        tunnel_id: TunnelId(ids.t_a + 7),
        ..spec_a.clone()
    };
    match dp2.create_tunnel(&busy) {
        Ok(()) => {
            println!("  note  second tunnel on the same UDP socket accepted");
            let _ = dp2.delete_tunnel(busy.tunnel_id);
        }
        Err(e) => println!("  note  second tunnel on the same UDP socket: {e}"),
    }

    let sspec_a = SessionSpec {
        tunnel_id: ta,
        session_id: sa,
        peer_tunnel_id: tb,
        peer_session_id: sb,
        pseudowire: Pseudowire::Ppp,
        lns_mode: false,
        send_seq: true,
        recv_seq: false,
        reorder_timeout_ms: 0,
        peer_addr: ids.addr_b,
    };
    let sspec_b = SessionSpec {
        tunnel_id: tb,
        session_id: sb,
        peer_tunnel_id: ta,
        peer_session_id: sa,
        pseudowire: Pseudowire::Ppp,
        lns_mode: true,
        send_seq: false,
        recv_seq: false,
        reorder_timeout_ms: 100,
        peer_addr: ids.addr_a,
    };
    let Some(Some(ppp_a)) = c.must(
        dp.create_session(&sspec_a),
        &format!("create session {sa} in {ta}"),
    ) else {
        return;
    };
    let Some(Some(ppp_b)) = c.must(
        dp.create_session(&sspec_b),
        &format!("create session {sb} in {tb}"),
    ) else {
        return;
    };
    match dp2.create_session(&sspec_a) {
        Ok(_) => c.check(false, "duplicate session must fail"),
        Err(e) => {
            println!("  note  duplicate session: {e}");
            c.check(
                e.errno() == Some(libc::EEXIST),
                "duplicate session gives EEXIST",
            );
        }
    }
    let mut orphan = sspec_a.clone();
    orphan.tunnel_id = TunnelId(999);
    match dp2.create_session(&orphan) {
        Ok(_) => c.check(false, "session in a missing tunnel must fail"),
        Err(e) => println!("  note  session in missing tunnel 999: {e}"),
    }
    drop(dp2);

    // Compare the kernel's view.
    if let Some(tunnels) = c.must(dp.list_tunnels(), "list tunnels (dump)") {
        for (spec, local, peer) in [
            (&spec_a, ids.addr_a, ids.addr_b),
            (&spec_b, ids.addr_b, ids.addr_a),
        ] {
            match tunnels.iter().find(|t| t.tunnel_id == spec.tunnel_id) {
                None => c.check(false, format!("tunnel {} listed", spec.tunnel_id)),
                Some(t) => {
                    println!("  info  {t:?}");
                    c.check(
                        t.peer_tunnel_id == spec.peer_tunnel_id,
                        format!("tunnel {} peer id", spec.tunnel_id),
                    );
                    c.check(
                        t.version == 2,
                        format!("tunnel {} version 2", spec.tunnel_id),
                    );
                    c.check(
                        t.encap == Encap::Udp,
                        format!("tunnel {} encap UDP", spec.tunnel_id),
                    );
                    c.check(
                        t.local == Some(local),
                        format!("tunnel {} local {local}", spec.tunnel_id),
                    );
                    c.check(
                        t.peer == Some(peer),
                        format!("tunnel {} peer {peer}", spec.tunnel_id),
                    );
                    c.check(
                        t.udp_checksum == Some(spec.udp_checksum),
                        format!(
                            "tunnel {} udp checksum {}",
                            spec.tunnel_id, spec.udp_checksum
                        ),
                    );
                }
            }
        }
    }
    if let Some(sessions) = c.must(dp.list_sessions(), "list sessions (dump)") {
        for spec in [&sspec_a, &sspec_b] {
            match sessions
                .iter()
                .find(|s| s.tunnel_id == spec.tunnel_id && s.session_id == spec.session_id)
            {
                None => c.check(
                    false,
                    format!("session {}/{} listed", spec.tunnel_id, spec.session_id),
                ),
                Some(s) => {
                    println!("  info  {s:?}");
                    let what = format!("session {}/{}", spec.tunnel_id, spec.session_id);
                    c.check(
                        s.peer_tunnel_id == spec.peer_tunnel_id,
                        format!("{what} peer tunnel"),
                    );
                    c.check(
                        s.peer_session_id == spec.peer_session_id,
                        format!("{what} peer session"),
                    );
                    c.check(s.pseudowire == Pseudowire::Ppp, format!("{what} pw PPP"));
                    c.check(
                        s.lns_mode == spec.lns_mode,
                        format!("{what} lns_mode {}", spec.lns_mode),
                    );
                    c.check(
                        s.send_seq == spec.send_seq,
                        format!("{what} send_seq {}", spec.send_seq),
                    );
                    c.check(
                        s.recv_seq == spec.recv_seq,
                        format!("{what} recv_seq {}", spec.recv_seq),
                    );
                    c.check(
                        s.reorder_timeout_ms == spec.reorder_timeout_ms,
                        format!("{what} reorder timeout {}", spec.reorder_timeout_ms),
                    );
                }
            }
        }
        let extra: Vec<_> = sessions
            .iter()
            .filter(|s| s.session_id.0 == 0)
            .map(|s| (s.tunnel_id, s.session_id))
            .collect();
        if !extra.is_empty() {
            println!("  note  sessions with id 0 (legacy tunnel management sockets): {extra:?}");
        }
    }

    // Many sessions: the dump spans several netlink messages/datagrams.
    const BULK: u32 = 200;
    let mut bulk_ok = true;
    let mut bulk_fds = Vec::new();
    for i in 0..BULK {
        let mut sp = sspec_a.clone();
        sp.session_id = SessionId(ids.s_a + 100 + i);
        sp.peer_session_id = SessionId(ids.s_b + 100 + i);
        match dp.create_session(&sp) {
            Ok(fd) => bulk_fds.push(fd),
            Err(e) => {
                c.check(false, format!("bulk session {}: {e}", sp.session_id));
                bulk_ok = false;
                break;
            }
        }
    }
    if bulk_ok {
        match dp.list_sessions() {
            Ok(v) => {
                let n = v
                    .iter()
                    .filter(|x| x.tunnel_id == ta && x.session_id.0 >= ids.s_a + 100)
                    .count();
                c.check(
                    n == BULK as usize,
                    format!(
                        "dump lists all {BULK} extra sessions (got {n}, total {})",
                        v.len()
                    ),
                );
            }
            Err(e) => c.check(false, format!("bulk dump: {e}")),
        }
    }
    drop(bulk_fds);
    for i in 0..BULK {
        if let Err(e) = dp.delete_session(ta, SessionId(ids.s_a + 100 + i)) {
            c.check(false, format!("delete bulk session: {e}"));
            break;
        }
    }

    let show_t = ip_l2tp(&["show", "tunnel"]);
    let show_s = ip_l2tp(&["show", "session"]);
    println!("  --- ip l2tp show tunnel\n{show_t}  --- ip l2tp show session\n{show_s}  ---");
    let ip_a = ids.addr_a.ip().to_string();
    for needle in [
        format!("Tunnel {ta}, encap UDP"),
        format!("From {ip_a} to {ip_a}"),
        format!("Peer tunnel {tb}"),
        format!(
            "UDP source / dest ports: {}/{}",
            ids.addr_a.port(),
            ids.addr_b.port()
        ),
        format!("Tunnel {tb}, encap UDP"),
        format!(
            "UDP source / dest ports: {}/{}",
            ids.addr_b.port(),
            ids.addr_a.port()
        ),
    ] {
        c.check(
            show_t.contains(&needle),
            format!("ip l2tp show tunnel has {needle:?}"),
        );
    }
    if ids.addr_a.is_ipv4() {
        c.check(
            show_t.contains("UDP checksum: enabled"),
            "ip l2tp show tunnel: checksum enabled (A)",
        );
        c.check(
            show_t.contains("UDP checksum: disabled"),
            "ip l2tp show tunnel: checksum disabled (B)",
        );
    }
    for needle in [
        format!("Session {sa} in tunnel {ta}"),
        format!("Peer session {sb}, tunnel {tb}"),
        format!("Session {sb} in tunnel {tb}"),
        format!("Peer session {sa}, tunnel {ta}"),
        "reorder timeout: 100".to_string(),
    ] {
        c.check(
            show_s.contains(&needle),
            format!("ip l2tp show session has {needle:?}"),
        );
    }

    // Control frames still reach the tunnel socket.
    sock_a
        .send(&l2tp_control(ids.t_b as u16))
        .expect("send control");
    let got = recv_udp(&sock_b, Duration::from_secs(2));
    c.check(
        got.as_deref() == Some(&l2tp_control(ids.t_b as u16)[..]),
        "control frame passed up to tunnel socket B",
    );
    // Data for a session the kernel does not know.
    let stray = l2tp_data(ids.t_b as u16, 4242, b"stray");
    sock_a.send(&stray).expect("send stray data");
    match recv_udp(&sock_b, Duration::from_millis(500)) {
        Some(p) if p == stray => {
            println!("  note  data frame for unknown session 4242 was passed up to the UDP socket")
        }
        Some(p) => println!("  note  unexpected datagram for unknown session: {p:02x?}"),
        None => println!("  note  data frame for unknown session 4242 was dropped by the kernel"),
    }

    // Data path: PPPoL2TP socket A -> kernel -> UDP -> kernel -> PPPoL2TP socket B.
    for (from, to, name) in [(&ppp_a, &ppp_b, "A->B"), (&ppp_b, &ppp_a, "B->A")] {
        let payload = format!("hello {name}");
        match nix::unistd::write(from.fd.as_fd(), payload.as_bytes()) {
            Ok(n) => c.check(n == payload.len(), format!("write PPP frame {name}")),
            Err(e) => c.check(false, format!("write PPP frame {name}: {e}")),
        }
        match read_ppp(to) {
            Ok(p) => c.check(
                p == payload.as_bytes(),
                format!(
                    "PPP frame {name} arrived intact ({:?})",
                    String::from_utf8_lossy(&p)
                ),
            ),
            Err(e) => c.check(false, format!("read PPP frame {name}: {e}")),
        }
    }
    if let (Some(st_a), Some(st_b)) = (
        c.must(dp.session_stats(ta, sa), "session stats A"),
        c.must(dp.session_stats(tb, sb), "session stats B"),
    ) {
        println!("  info  stats A {st_a:?}\n  info  stats B {st_b:?}");
        c.check(
            st_a.tx_packets == 1 && st_a.rx_packets == 1,
            "session A counted 1 tx + 1 rx",
        );
        c.check(
            st_b.tx_packets == 1 && st_b.rx_packets == 1,
            "session B counted 1 tx + 1 rx",
        );
        c.check(
            st_a.tx_bytes > 0 && st_b.rx_bytes > 0,
            "byte counters non-zero",
        );
    }
    if let Some(ts) = c.must(dp.tunnel_stats(ta), "tunnel stats A") {
        println!("  info  tunnel stats A {ts:?}");
        c.check(ts.tx_packets >= 1, "tunnel A counted tx");
    }
    // B (lns_mode) received sequenced packets from A (send_seq).
    if let Ok(s) = dp.get_session(tb, sb) {
        println!(
            "  note  LNS session B after receiving sequenced data: send_seq={}",
            s.send_seq
        );
    }

    // Teardown of sessions.
    let lists_session = |dp: &mut KernelDataPlane, t: TunnelId, s: SessionId| {
        dp.list_sessions()
            .map(|v| v.iter().any(|x| x.tunnel_id == t && x.session_id == s))
            .unwrap_or(true)
    };
    if mode == DataPlaneMode::Legacy {
        // Our copies must go too, or the kernel sessions stay.
        drop(ppp_a);
        drop(ppp_b);
        c.must(dp.delete_session(ta, sa), "delete session A");
        c.must(dp.delete_session(tb, sb), "delete session B");
    } else {
        c.must(dp.delete_session(ta, sa), "delete session A");
        c.must(dp.delete_session(tb, sb), "delete session B");
        match nix::unistd::write(ppp_a.fd.as_fd(), b"after delete") {
            Ok(_) => println!("  note  write on a deleted session's socket succeeded"),
            Err(e) => println!("  note  write on a deleted session's socket: {e}"),
        }
        drop(ppp_a);
        drop(ppp_b);
    }
    let gone = wait_until(Duration::from_secs(3), || {
        !lists_session(&mut dp, ta, sa) && !lists_session(&mut dp, tb, sb)
    });
    c.check(
        gone.is_some(),
        format!("sessions gone from dump (after {gone:?})"),
    );
    c.must(
        dp.delete_session(ta, sa),
        "deleting a deleted session is OK",
    );

    // Teardown of tunnels.
    let lists_tunnel = |dp: &mut KernelDataPlane, t: TunnelId| {
        dp.list_tunnels()
            .map(|v| v.iter().any(|x| x.tunnel_id == t))
            .unwrap_or(true)
    };
    c.must(dp.delete_tunnel(ta), "delete tunnel A");
    c.must(dp.delete_tunnel(tb), "delete tunnel B");
    if mode == DataPlaneMode::Legacy {
        // Closing the management sockets alone leaves the tunnels; delete_tunnel also
        // sends L2TP_CMD_TUNNEL_DELETE when netlink is available.
        let gone = wait_until(Duration::from_secs(3), || {
            !lists_tunnel(&mut dp, ta) && !lists_tunnel(&mut dp, tb)
        });
        c.check(
            gone.is_some(),
            format!("legacy delete_tunnel removed the tunnels (after {gone:?})"),
        );
        drop(sock_a);
        drop(sock_b);
    } else {
        // Immediately re-using the socket for a new tunnel (deletion is asynchronous).
        match dp.create_tunnel(&spec_a) {
            Ok(()) => println!("  note  re-creating tunnel {ta} right after delete: OK"),
            Err(e) => println!("  note  re-creating tunnel {ta} right after delete: {e}"),
        }
        let _ = dp.delete_tunnel(ta);
        let gone = wait_until(Duration::from_secs(3), || {
            !lists_tunnel(&mut dp, ta) && !lists_tunnel(&mut dp, tb)
        });
        c.check(
            gone.is_some(),
            format!("tunnels gone from dump (after {gone:?})"),
        );
        // The UDP sockets are plain sockets again.
        sock_b
            .send(&l2tp_control(ids.t_a as u16))
            .expect("send control");
        c.check(
            recv_udp(&sock_a, Duration::from_secs(2)).is_some(),
            "UDP socket A still usable after tunnel deletion",
        );
        match dp.create_tunnel(&spec_a) {
            Ok(()) => {
                println!(
                    "  note  re-creating tunnel {ta} on the same UDP socket after deletion: OK"
                );
                c.must(dp.delete_tunnel(ta), "delete it again");
                c.check(
                    wait_until(Duration::from_secs(3), || !lists_tunnel(&mut dp, ta)).is_some(),
                    "re-created tunnel gone",
                );
            }
            Err(e) => println!(
                "  note  re-creating tunnel {ta} on the same UDP socket after deletion: {e}"
            ),
        }
        // A fresh socket works.
        drop(sock_a);
        let sock_a2 = tunnel_socket(ids.addr_a, ids.addr_b).expect("socket A again");
        let spec_a2 = TunnelSpec {
            socket: sock_a2.as_raw_fd(),
            ..spec_a.clone()
        };
        c.must(
            dp.create_tunnel(&spec_a2),
            "re-create tunnel A on a fresh UDP socket",
        );
        c.must(dp.delete_tunnel(ta), "delete it again");
        c.check(
            wait_until(Duration::from_secs(3), || !lists_tunnel(&mut dp, ta)).is_some(),
            "re-created tunnel gone",
        );
        drop(sock_a2);
        drop(sock_b);
    }
    c.must(dp.delete_tunnel(ta), "deleting a deleted tunnel is OK");
}

fn spawn_pppd(
    ppp: &PppSession,
    unit: u32,
    local: &str,
    remote: &str,
    lns: bool,
    log: &str,
) -> std::io::Result<Child> {
    // dup() gives a descriptor without FD_CLOEXEC; this program is single-threaded,
    // so no other child can inherit it before it is closed below.
    let fd = nix::unistd::dup(&ppp.fd)?;
    let mut args: Vec<String> = [
        "plugin",
        "pppol2tp.so",
        "pppol2tp",
        &fd.as_raw_fd().to_string(),
        "pppol2tp_tunnel_id",
        &ppp.tunnel_id.to_string(),
        "pppol2tp_session_id",
        &ppp.session_id.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if lns {
        args.push("pppol2tp_lns_mode".into());
    }
    for a in [
        "unit",
        &unit.to_string(),
        "nodetach",
        "noauth",
        "nodefaultroute",
        "noccp",
        "novj",
        "nopcomp",
        "noaccomp",
        "lcp-echo-interval",
        "0",
        &format!("{local}:{remote}"),
        "logfile",
        log,
        "debug",
    ] {
        args.push(a.to_string());
    }
    let child = Command::new("pppd")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    drop(fd);
    child
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn stop_pppd(child: &mut Child, name: &str) {
    if let Ok(Some(st)) = child.try_wait() {
        println!("  note  pppd {name} had already exited: {st}");
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    match wait_exit(child, Duration::from_secs(10)) {
        Some(st) => println!("  note  pppd {name} exited after SIGTERM: {st}"),
        None => {
            println!("  note  pppd {name} ignored SIGTERM; killing");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Real pppd on both ends: LCP/IPCP across the kernel data plane, rtnetlink link
/// queries, and what happens to pppd on session deletion.
fn pppd_scenario(c: &mut Checks, mode: DataPlaneMode, rt: &tokio::runtime::Runtime) {
    println!("== {mode} mode, pppd on both ends: tunnels 500<->600, sessions 5000<->6000");
    let addr_a: SocketAddr = "127.0.0.1:10005".parse().unwrap();
    let addr_b: SocketAddr = "127.0.0.1:10006".parse().unwrap();
    let (ta, tb, sa, sb) = (
        TunnelId(500),
        TunnelId(600),
        SessionId(5000),
        SessionId(6000),
    );
    let Some(mut dp) = c.must(KernelDataPlane::new(mode), "KernelDataPlane::new") else {
        return;
    };
    let sock_a = tunnel_socket(addr_a, addr_b).expect("socket A");
    let sock_b = tunnel_socket(addr_b, addr_a).expect("socket B");
    for (t, p, s) in [(ta, tb, &sock_a), (tb, ta, &sock_b)] {
        let spec = TunnelSpec {
            tunnel_id: t,
            peer_tunnel_id: p,
            version: 2,
            encap: Encap::Udp,
            socket: s.as_raw_fd(),
            udp_checksum: true,
        };
        if c.must(dp.create_tunnel(&spec), &format!("create tunnel {t}"))
            .is_none()
        {
            return;
        }
    }
    let mk = |t, s, pt, ps, lns, peer| SessionSpec {
        tunnel_id: t,
        session_id: s,
        peer_tunnel_id: pt,
        peer_session_id: ps,
        pseudowire: Pseudowire::Ppp,
        lns_mode: lns,
        send_seq: false,
        recv_seq: false,
        reorder_timeout_ms: 0,
        peer_addr: peer,
    };
    let Some(Some(ppp_a)) = c.must(
        dp.create_session(&mk(ta, sa, tb, sb, false, addr_b)),
        "create session A",
    ) else {
        return;
    };
    let Some(Some(ppp_b)) = c.must(
        dp.create_session(&mk(tb, sb, ta, sa, true, addr_a)),
        "create session B",
    ) else {
        return;
    };
    let (ip_a, ip_b) = ("198.51.100.1", "198.51.100.2");
    let tag = mode.to_string();
    let mut pppd_a = match spawn_pppd(
        &ppp_a,
        50,
        ip_a,
        ip_b,
        false,
        &format!("/tmp/kout/pppd-{tag}-A.log"),
    ) {
        Ok(ch) => ch,
        Err(e) => {
            c.check(false, format!("spawn pppd A: {e}"));
            return;
        }
    };
    let mut pppd_b = match spawn_pppd(
        &ppp_b,
        60,
        ip_b,
        ip_a,
        true,
        &format!("/tmp/kout/pppd-{tag}-B.log"),
    ) {
        Ok(ch) => ch,
        Err(e) => {
            c.check(false, format!("spawn pppd B: {e}"));
            stop_pppd(&mut pppd_a, "A");
            return;
        }
    };
    // Our copies are not needed any more (the data plane keeps its own).
    drop(ppp_a);
    drop(ppp_b);

    let want_a: LinkAddr = (ip_a.parse().unwrap(), 32, Some(ip_b.parse().unwrap()));
    let want_b: LinkAddr = (ip_b.parse().unwrap(), 32, Some(ip_a.parse().unwrap()));
    for (ifname, want) in [("ppp50", want_a), ("ppp60", want_b)] {
        let start = Instant::now();
        match rt.block_on(wait_for_link(ifname, Duration::from_secs(60))) {
            Ok(l) => {
                println!("  info  {l:?} (after {:?})", start.elapsed());
                c.check(l.up && l.link_type == 512, format!("{ifname} up, type PPP"));
                // Addresses are set right before the link goes up; allow a moment.
                let ok = wait_until(Duration::from_secs(5), || {
                    rt.block_on(link_addresses(ifname))
                        .is_ok_and(|a| a.contains(&want))
                });
                c.check(ok.is_some(), format!("{ifname} has address {want:?}"));
            }
            Err(e) => c.check(false, format!("wait_for_link {ifname}: {e}")),
        }
    }
    match rt.block_on(list_ppp_links()) {
        Ok(links) => {
            let names: Vec<_> = links.iter().map(|l| l.name.as_str()).collect();
            println!("  info  ppp links: {names:?}");
            c.check(
                names.contains(&"ppp50") && names.contains(&"ppp60"),
                "list_ppp_links has ppp50 and ppp60",
            );
        }
        Err(e) => c.check(false, format!("list_ppp_links: {e}")),
    }
    if let Some(st) = c.must(dp.session_stats(ta, sa), "session stats A with pppd") {
        println!("  info  stats A {st:?}");
        c.check(
            st.tx_packets > 0 && st.rx_packets > 0,
            "PPP negotiation went through the kernel data plane",
        );
    }
    println!(
        "  --- ip l2tp show session\n{}  ---",
        ip_l2tp(&["show", "session"])
    );

    // What does pppd do when the session is deleted under it?
    c.must(
        dp.delete_session(ta, sa),
        "delete session A while pppd runs",
    );
    match wait_exit(&mut pppd_a, Duration::from_secs(5)) {
        Some(st) => println!("  note  pppd A exited by itself within 5 s of delete_session: {st}"),
        None => println!("  note  pppd A still running 5 s after delete_session"),
    }
    let gone = wait_until(Duration::from_secs(3), || {
        dp.list_sessions()
            .map(|v| !v.iter().any(|x| x.tunnel_id == ta && x.session_id == sa))
            .unwrap_or(false)
    });
    println!(
        "  note  session A gone from the kernel while pppd A {} (after {gone:?})",
        if matches!(pppd_a.try_wait(), Ok(Some(_))) {
            "has exited"
        } else {
            "still runs"
        }
    );
    stop_pppd(&mut pppd_a, "A");
    stop_pppd(&mut pppd_b, "B");
    let gone = wait_until(Duration::from_secs(5), || {
        dp.list_sessions()
            .map(|v| !v.iter().any(|x| x.tunnel_id == ta && x.session_id == sa))
            .unwrap_or(false)
    });
    c.check(
        gone.is_some(),
        format!("session A gone once pppd A exited (after {gone:?})"),
    );
    let links_gone = wait_until(Duration::from_secs(5), || {
        rt.block_on(list_ppp_links()).is_ok_and(|l| l.is_empty())
    });
    c.check(links_gone.is_some(), "ppp links gone after pppd exit");
    c.must(dp.delete_session(tb, sb), "delete session B");
    c.must(dp.delete_tunnel(ta), "delete tunnel A");
    c.must(dp.delete_tunnel(tb), "delete tunnel B");
    drop(sock_a);
    drop(sock_b);
    let gone = wait_until(Duration::from_secs(3), || {
        dp.list_tunnels()
            .map(|v| !v.iter().any(|x| x.tunnel_id == ta || x.tunnel_id == tb))
            .unwrap_or(false)
    });
    c.check(gone.is_some(), "pppd scenario tunnels gone");
}

fn main() -> ExitCode {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let modes: Vec<DataPlaneMode> = match which.as_str() {
        "all" => vec![DataPlaneMode::Netlink, DataPlaneMode::Legacy],
        m => vec![m.parse().expect("mode: netlink, legacy or all")],
    };
    let mut c = Checks::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let with_pppd = std::env::var_os("SMOKE_NO_PPPD").is_none();
    for mode in modes {
        scenario(
            &mut c,
            mode,
            &Ids {
                t_a: 100,
                t_b: 200,
                s_a: 1000,
                s_b: 2000,
                addr_a: "127.0.0.1:10001".parse().unwrap(),
                addr_b: "127.0.0.1:10002".parse().unwrap(),
                csum_a: true,
                csum_b: false,
            },
        );
        scenario(
            &mut c,
            mode,
            &Ids {
                t_a: 300,
                t_b: 400,
                s_a: 3000,
                s_b: 4000,
                addr_a: "[::1]:10003".parse().unwrap(),
                addr_b: "[::1]:10004".parse().unwrap(),
                csum_a: false,
                csum_b: false,
            },
        );
        if with_pppd {
            pppd_scenario(&mut c, mode, &rt);
        }
    }
    println!(
        "--- ip l2tp show tunnel (end)\n{}---",
        ip_l2tp(&["show", "tunnel"])
    );
    for f in &c.failed {
        println!("FAILED: {f}");
    }
    println!("{} passed, {} failed", c.passed, c.failed.len());
    if c.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
