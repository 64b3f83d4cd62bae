//! l2tpd out of file descriptors: a real `l2tpd` (null data plane, loopback,
//! no root) started with a low `RLIMIT_NOFILE`, whose descriptors are used up
//! by API connections held open. It must raise its soft limit to the hard
//! one at start and say so, report the exhaustion (rate-limited, naming the
//! limit) without spinning, keep its management API alive, and answer
//! `l2tpctl` again once the connections are released.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{Process, ctl, l2tpctl_bin};

/// The daemon's soft and hard `RLIMIT_NOFILE` at exec.
const SOFT: u64 = 32;
const HARD: u64 = 64;

/// `common::Process::spawn` with `RLIMIT_NOFILE` lowered to `soft`/`hard`
/// before exec (lowering needs no privilege), by util-linux `prlimit`.
fn spawn_limited(dir: &Path, name: &str, config: &str, soft: u64, hard: u64) -> Process {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let log = dir.join(format!("{name}.log"));
    // util-linux prlimit sets the limits and execs l2tpd (same pid).
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={soft}:{hard}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_l2tpd"))
        .arg("--config")
        .arg(&cfg)
        .arg("--log")
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let child = cmd.spawn().expect("start l2tpd");
    Process { child, log }
}

/// The `N` of "N more such reports suppressed" in a report line (0 if absent).
fn suppressed(line: &str) -> u64 {
    line.split("; ")
        .find_map(|part| part.strip_suffix(" more such reports suppressed since the last one"))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn out_of_descriptors_the_api_reports_backs_off_and_recovers() {
    let dir = common::tempdir("l2tpd-fd", "exhaustion");
    let socket = dir.join("lns.sock");
    let port = 17211;
    let config = format!(
        r#"
[system]
listen_addr = "127.0.0.1"
udp_port = {port}
data_plane = "null"
api_socket = "{}"
"#,
        socket.display()
    );
    // Build l2tpctl before the daemon starts: the build takes a while.
    l2tpctl_bin();
    let mut d = spawn_limited(&dir, "lns", &config, SOFT, HARD);
    let timeout = Duration::from_secs(10);
    assert!(
        d.wait_for("management API listening", 1, timeout),
        "l2tpd did not start:\n{}",
        d.log()
    );

    // The soft limit was raised to the hard one, and logged on one line.
    assert!(
        d.log().contains(&format!(
            "open file limit (RLIMIT_NOFILE): soft {SOFT} -> {HARD}, hard {HARD}"
        )),
        "{}",
        d.log()
    );
    let (status, out, err) = ctl(&dir, &socket, &["--json", "system", "show"], timeout);
    assert!(status.is_some_and(|s| s.success()), "{out}\n{err}");

    // Use up every descriptor: more connections than the limit, held open.
    // Those the daemon cannot accept wait in the listen backlog.
    let conns: Vec<UnixStream> = (0..HARD + 16)
        .map(|_| UnixStream::connect(&socket).expect("connect to the API socket"))
        .collect();
    let report = "out of file descriptors: accepting a management API connection: EMFILE";
    assert!(
        d.wait_for(report, 1, timeout),
        "no exhaustion report:\n{}",
        d.log()
    );
    // It names the limit.
    assert!(
        d.log()
            .contains(&format!("RLIMIT_NOFILE soft limit {HARD} (hard {HARD})")),
        "{}",
        d.log()
    );
    // At most one line a second, counting the others; and no spinning: the
    // accepts retried every 100 ms make about 9 suppressed reports a second,
    // not thousands.
    assert!(
        d.wait_for(report, 2, timeout),
        "no second report:\n{}",
        d.log()
    );
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(report)).collect();
    assert_eq!(suppressed(lines[0]), 0, "{}", lines[0]);
    let n = suppressed(lines[1]);
    assert!((1..=12).contains(&n), "{n} suppressed: {}", lines[1]);
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "l2tpd exited:\n{log}"
    );

    // Release them: the daemon accepts again and answers a fresh call.
    drop(conns);
    assert!(
        d.wait_for(
            "management API accepting connections again after",
            1,
            timeout
        ),
        "{}",
        d.log()
    );
    let (status, out, err) = ctl(&dir, &socket, &["--json", "system", "show"], timeout);
    assert!(
        status.is_some_and(|s| s.success()),
        "l2tpctl after the exhaustion: {status:?}\n{out}\n{err}\n{}",
        d.log()
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["system"]["data_plane"], "null", "{v}");
    assert!(d.child.try_wait().unwrap().is_none(), "l2tpd exited");

    d.signal(nix::sys::signal::Signal::SIGTERM);
    let status = d.wait_exit(timeout).expect("l2tpd did not exit on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", d.log());
}
