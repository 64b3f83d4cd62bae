//! The service manager's side of `Type=notify`: a real `l2tpd` with
//! `NOTIFY_SOCKET` pointing at a Unix datagram socket of the test, and the
//! journald fallback. Loopback, null data plane, no root needed. Every
//! receive is bounded by a deadline; nothing sleeps.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Process;
use nix::sys::signal::Signal;

/// CLOCK_MONOTONIC in µs, the clock of `MONOTONIC_USEC=`.
fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000
}

/// The service manager's end: every datagram received, in order.
struct Manager {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Self {
        let _ = std::fs::remove_file(path);
        Self {
            sock: UnixDatagram::bind(path).unwrap(),
            seen: Vec::new(),
        }
    }

    /// Bound to `name` in the abstract namespace (NOTIFY_SOCKET=@name).
    fn bind_abstract(name: &str) -> Self {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        Self {
            sock: UnixDatagram::bind_addr(&addr).unwrap(),
            seen: Vec::new(),
        }
    }

    /// Receive until a datagram has a line for which `pred` holds, at most
    /// `timeout`; that datagram, or None (everything received is in `seen`).
    fn until(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(e) => panic!("recv: {e}"),
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(msg.clone());
            if msg.lines().any(&pred) {
                return Some(msg);
            }
        }
    }

    fn dump(&self) -> String {
        self.seen.join("----\n")
    }
}

fn lns_config(port: u16, dir: &Path) -> String {
    format!(
        r#"
[system]
listen_addr = "127.0.0.1"
udp_port = {port}
data_plane = "null"
api_socket = "{}"
[tunnel_profile.default]
host_name = "lns"
"#,
        dir.join("lns.sock").display()
    )
}

fn lac_config(port: u16, dir: &Path) -> String {
    format!(
        r#"
[system]
listen_addr = "127.0.0.2"
udp_port = {port}
data_plane = "null"
deny_remote_tunnel_creates = true
api_socket = "{}"
[tunnel_profile.default]
host_name = "lac"
[tunnel.lac1]
peer_addr = "127.0.0.1"
peer_udp_port = {port}
[tunnel.lac1.session.s1]
[tunnel.lac1.session.s2]
"#,
        dir.join("lac.sock").display()
    )
}

/// l2tpd with `--config DIR/NAME.toml`, stderr in `DIR/NAME.log` and `env` set.
fn spawn_with_env(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> Process {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l2tpd"));
    cmd.arg("--config")
        .arg(&cfg)
        .arg("--log")
        .arg("debug")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Process {
        child: cmd.spawn().expect("start l2tpd"),
        log,
    }
}

#[test]
fn ready_status_watchdog_reload_and_stopping() {
    let dir = common::tempdir("l2tpd-test", "sd-notify");
    let port = 17411;
    let sock = dir.join("notify.sock");
    let mut mgr = Manager::bind(&sock);
    let mut lns = spawn_with_env(
        &dir,
        "lns",
        &lns_config(port, &dir),
        &[
            ("NOTIFY_SOCKET", sock.to_str().unwrap()),
            // 200 ms: a ping every 100 ms. No WATCHDOG_PID: the watchdog is ours.
            ("WATCHDOG_USEC", "200000"),
        ],
    );

    // READY=1 with the counts, once the sockets are bound.
    let ready = mgr
        .until(Duration::from_secs(10), |l| l == "READY=1")
        .unwrap_or_else(|| panic!("no READY=1:\n{}\n{}", mgr.dump(), lns.log()));
    assert!(
        ready.lines().any(|l| l == "STATUS=0 tunnels, 0 sessions"),
        "{ready}"
    );
    assert!(lns.log().contains("l2tpd started"), "{}", lns.log());

    // Pings, again and again.
    for i in 0..3 {
        assert!(
            mgr.until(Duration::from_secs(5), |l| l == "WATCHDOG=1")
                .is_some(),
            "watchdog ping {i} missing:\n{}",
            mgr.dump()
        );
    }

    // A peer brings up a tunnel with two calls: the status follows.
    let lac = Process::start(&dir, "lac", &lac_config(port, &dir));
    assert!(
        mgr.until(Duration::from_secs(15), |l| l
            == "STATUS=1 tunnel, 2 sessions")
            .is_some(),
        "no STATUS for the LAC's tunnel:\n{}\n--- LNS ---\n{}\n--- LAC ---\n{}",
        mgr.dump(),
        lns.log(),
        lac.log()
    );

    // SIGHUP: RELOADING=1 with the monotonic time of the reload, then READY=1.
    let before = monotonic_usec();
    lns.signal(Signal::SIGHUP);
    let reloading = mgr
        .until(Duration::from_secs(5), |l| l == "RELOADING=1")
        .unwrap_or_else(|| panic!("no RELOADING=1:\n{}", mgr.dump()));
    let after = monotonic_usec();
    let t: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {reloading}"))
        .parse()
        .unwrap();
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
    let ready = mgr
        .until(Duration::from_secs(5), |l| l == "READY=1")
        .unwrap_or_else(|| panic!("no READY=1 after the reload:\n{}", mgr.dump()));
    assert!(
        ready.lines().any(|l| l == "STATUS=1 tunnel, 2 sessions"),
        "{ready}"
    );
    // Still pinging after the reload.
    assert!(
        mgr.until(Duration::from_secs(5), |l| l == "WATCHDOG=1")
            .is_some(),
        "{}",
        mgr.dump()
    );

    // SIGTERM: STOPPING=1, then the process exits.
    lns.signal(Signal::SIGTERM);
    let stopping = mgr
        .until(Duration::from_secs(5), |l| l == "STOPPING=1")
        .unwrap_or_else(|| panic!("no STOPPING=1:\n{}", mgr.dump()));
    assert!(
        stopping
            .lines()
            .any(|l| l == "STATUS=stopping: 1 tunnel, 2 sessions"),
        "{stopping}"
    );
    let st = lns
        .wait_exit(Duration::from_secs(10))
        .expect("l2tpd did not exit after SIGTERM");
    assert!(st.success(), "{st:?}:\n{}", lns.log());
    // READY=1 came before anything but itself; nothing after STOPPING=1
    // claimed readiness again.
    let ready_at = mgr.seen.iter().position(|m| m.contains("READY=1")).unwrap();
    assert_eq!(ready_at, 0, "{}", mgr.dump());
    let stop_at = mgr
        .seen
        .iter()
        .position(|m| m.contains("STOPPING=1"))
        .unwrap();
    assert!(
        !mgr.seen[stop_at..].iter().any(|m| m.contains("READY=1")),
        "{}",
        mgr.dump()
    );
}

#[test]
fn watchdog_of_another_process_is_not_pinged() {
    // WATCHDOG_PID names another process: no pings, but READY=1 and the
    // rest still go. Proven without waiting for an absence: everything the
    // daemon sends before STOPPING=1 is checked.
    let dir = common::tempdir("l2tpd-test", "sd-notify-pid");
    let port = 17412;
    let sock = dir.join("notify.sock");
    let mut mgr = Manager::bind(&sock);
    let mut lns = spawn_with_env(
        &dir,
        "lns",
        &lns_config(port, &dir),
        &[
            ("NOTIFY_SOCKET", sock.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    assert!(
        mgr.until(Duration::from_secs(10), |l| l == "READY=1")
            .is_some(),
        "{}\n{}",
        mgr.dump(),
        lns.log()
    );
    // A reload: RELOADING=1 and READY=1, round trips through the loop.
    lns.signal(Signal::SIGHUP);
    assert!(
        mgr.until(Duration::from_secs(5), |l| l == "RELOADING=1")
            .is_some()
    );
    assert!(
        mgr.until(Duration::from_secs(5), |l| l == "READY=1")
            .is_some()
    );
    lns.signal(Signal::SIGTERM);
    assert!(
        mgr.until(Duration::from_secs(5), |l| l == "STOPPING=1")
            .is_some(),
        "{}",
        mgr.dump()
    );
    lns.wait_exit(Duration::from_secs(10))
        .expect("l2tpd did not exit after SIGTERM");
    assert!(
        !mgr.seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "pinged another process's watchdog:\n{}",
        mgr.dump()
    );
    assert!(!lns.log().contains("systemd watchdog enabled"));
}

#[test]
fn abstract_notify_socket() {
    // NOTIFY_SOCKET=@NAME: a socket in the abstract namespace (sd_notify(3)).
    let dir = common::tempdir("l2tpd-test", "sd-notify-abstract");
    let port = 17415;
    let name = format!("l2tpd-test-notify-{}", std::process::id());
    let mut mgr = Manager::bind_abstract(&name);
    let mut lns = spawn_with_env(
        &dir,
        "lns",
        &lns_config(port, &dir),
        &[("NOTIFY_SOCKET", &format!("@{name}"))],
    );
    assert!(
        mgr.until(Duration::from_secs(10), |l| l == "READY=1")
            .is_some(),
        "{}\n{}",
        mgr.dump(),
        lns.log()
    );
    lns.signal(Signal::SIGTERM);
    assert!(
        mgr.until(Duration::from_secs(5), |l| l == "STOPPING=1")
            .is_some(),
        "{}",
        mgr.dump()
    );
    lns.wait_exit(Duration::from_secs(10))
        .expect("l2tpd did not exit after SIGTERM");
}

#[test]
fn journal_stream_without_journald_falls_back_to_stderr() {
    // stderr is "the journal stream" (JOURNAL_STREAM names its device and
    // inode) but no journald listens: l2tpd says so and logs to stderr.
    let journald = Path::new("/run/systemd/journal/socket");
    if UnixDatagram::unbound()
        .and_then(|s| s.connect(journald))
        .is_ok()
    {
        eprintln!("skipped: journald runs on this host, the fallback cannot be shown");
        return;
    }
    let dir = common::tempdir("l2tpd-test", "journal-fallback");
    let port = 17413;
    let log = dir.join("lns.log");
    std::fs::write(&log, "").unwrap();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&log).unwrap();
    let stream = format!("{}:{}", m.dev(), m.ino());
    // spawn_with_env truncates the same file: same device and inode.
    let mut lns = spawn_with_env(
        &dir,
        "lns",
        &lns_config(port, &dir),
        &[("JOURNAL_STREAM", &stream)],
    );
    assert!(
        lns.wait_for("l2tpd started", 1, Duration::from_secs(10)),
        "{}",
        lns.log()
    );
    assert!(
        lns.log()
            .contains("stderr is the journal but journald's socket cannot be used"),
        "{}",
        lns.log()
    );
    lns.signal(Signal::SIGTERM);
    lns.wait_exit(Duration::from_secs(10))
        .expect("l2tpd did not exit after SIGTERM");
}

/// The fields of one journald native-protocol datagram
/// (systemd.io/JOURNAL_NATIVE_PROTOCOL): `KEY=value\n`, or `KEY\n`, a
/// 64-bit little-endian length, the value and `\n`.
fn journal_fields(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(nl) = d.iter().position(|b| *b == b'\n') {
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            d = &d[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &d[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.push((key, String::from_utf8_lossy(&rest[8..8 + len]).into_owned()));
            d = &rest[8 + len + 1..];
        }
    }
    out
}

#[test]
fn journal_stream_logs_natively_to_journald() {
    // journald stands in as a socket of the test, bind-mounted over
    // /run/systemd/journal in a mount namespace of l2tpd's own (root and
    // unshare(1) needed; skipped otherwise).
    let dir = common::tempdir("l2tpd-test", "journal-native");
    let mounts = "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal";
    let unshare_works = Path::new("/run/systemd").is_dir()
        && Command::new("unshare")
            .args(["-m", "sh", "-c", mounts])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !unshare_works {
        eprintln!("skipped: needs /run/systemd and `unshare -m` with mount rights (root)");
        return;
    }
    let jdir = dir.join("journal");
    std::fs::create_dir_all(&jdir).unwrap();
    let journald = UnixDatagram::bind(jdir.join("socket")).unwrap();
    let port = 17414;
    let cfg = dir.join("lns.toml");
    std::fs::write(&cfg, lns_config(port, &dir)).unwrap();
    let log = dir.join("lns.log");
    std::fs::write(&log, "").unwrap();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&log).unwrap();
    let script = format!("{mounts} && mount --bind \"$0\" /run/systemd/journal && exec \"$@\"");
    let child = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(&jdir)
        .arg(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("--config")
        .arg(&cfg)
        .args(["--log", "debug"])
        .env_remove("NOTIFY_SOCKET")
        .env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()))
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .expect("unshare l2tpd");
    let mut lns = Process {
        child,
        log: log.clone(),
    };
    let mut entries: Vec<Vec<(String, String)>> = Vec::new();
    let mut recv_until = |needle: &str| -> Option<Vec<(String, String)>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            journald.set_read_timeout(Some(left)).unwrap();
            let n = journald.recv(&mut buf).ok()?;
            if n == 0 {
                continue; // the probe of an empty datagram
            }
            let f = journal_fields(&buf[..n]);
            let hit = f.iter().any(|(k, v)| k == "MESSAGE" && v.contains(needle));
            entries.push(f.clone());
            if hit {
                return Some(f);
            }
        }
    };
    let get = |f: &[(String, String)], key: &str| {
        f.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let started = recv_until("l2tpd started").unwrap_or_else(|| panic!("{}", lns.log()));
    // The fields are in the message, as on stderr; INFO is PRIORITY=5.
    assert_eq!(
        get(&started, "MESSAGE"),
        format!("l2tpd started listen=127.0.0.1:{port} data_plane=null")
    );
    assert_eq!(get(&started, "PRIORITY"), "5");
    assert_eq!(get(&started, "SYSLOG_IDENTIFIER"), "l2tpd");
    assert_eq!(get(&started, "TARGET"), "l2tpd::daemon::run");

    // An invalid configuration on SIGHUP: an ERROR (PRIORITY=3) whose
    // message spans lines, in one entry.
    std::fs::write(&cfg, "[system]\nudp_port = \"x\"\n").unwrap();
    lns.signal(Signal::SIGHUP);
    let failed =
        recv_until("configuration reload failed").unwrap_or_else(|| panic!("{}", lns.log()));
    assert_eq!(get(&failed, "PRIORITY"), "3");
    let msg = get(&failed, "MESSAGE");
    assert!(msg.contains('\n') && msg.contains("udp_port"), "{msg}");

    lns.signal(Signal::SIGTERM);
    assert!(recv_until("l2tpd stopped").is_some());
    let st = lns
        .wait_exit(Duration::from_secs(10))
        .expect("l2tpd did not exit");
    assert!(st.success(), "{st:?}");
    // Nothing went to stderr.
    assert_eq!(lns.log(), "");
}

#[test]
fn unit_file_verifies_and_is_sandboxed() {
    // `systemd-analyze verify` on systemd/l2tpd.service, with ExecStart= and
    // the check pointing at the l2tpd just built (/usr/sbin/l2tpd is not
    // installed here) and without the man page check (l2tpd.toml(5) is not
    // installed either). Then the exposure score of `systemd-analyze
    // security`, which must stay in systemd's "OK" band (< 5.0).
    let Ok(version) = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(version.success());
    let dir = common::tempdir("l2tpd-test", "unit-file");
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../systemd/l2tpd.service"
    ))
    .unwrap();
    assert!(unit.contains("/usr/sbin/l2tpd"));
    let copy = dir.join("l2tpd.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/sbin/l2tpd", env!("CARGO_BIN_EXE_l2tpd")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Other units installed on the host (loaded as dependencies) may draw
    // warnings of their own; only ours matter.
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && (l.contains("l2tpd") || !l.contains(".service:")))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {:?}\n{text}",
        out.status
    );

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&copy)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(score) = text.lines().find_map(|l| {
        l.split_once("Overall exposure level for l2tpd.service: ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .and_then(|s| s.parse::<f64>().ok())
    }) else {
        eprintln!(
            "skipped the exposure score: this systemd-analyze cannot analyse a unit file offline:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    };
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score < 5.0, "exposure {score}:\n{text}");
}
