//! The management API under abuse, against real `l2tpd` processes (null data
//! plane, UDP on loopback, each test its own port and API socket): an
//! over-long call, a client that never reads its replies, more connections
//! than allowed, a call that stalls half-sent, and secrets that must never
//! reach a `--log trace` log. The calls are written by hand on a Unix
//! socket (Varlink: JSON ended by a NUL byte) so that the tests can misbehave.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{Process, wait};

/// The longest call the daemon reads (`conn::MAX_REQUEST`).
const MAX_REQUEST: usize = 64 * 1024;
/// Bound on every wait for a reply.
const REPLY_WAIT: Duration = Duration::from_secs(10);

struct Daemon {
    proc: Process,
    socket: PathBuf,
}

impl Daemon {
    /// Start l2tpd on `port` with `extra` added to `[system]`, log filter `level`.
    fn start(dir: &Path, port: u16, extra: &str, rest: &str, level: &str) -> Self {
        let socket = dir.join("api.sock");
        let config = format!(
            "[system]\nlisten_addr = \"127.0.0.1\"\nudp_port = {port}\ndata_plane = \"null\"\n\
             api_socket = \"{}\"\n{extra}\n{rest}",
            socket.display()
        );
        let proc = Process::spawn(dir, "l2tpd", &config, level);
        assert!(
            proc.wait_for("management API listening", 1, Duration::from_secs(10)),
            "l2tpd did not start:\n{}",
            proc.log()
        );
        Self { proc, socket }
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect to the API socket");
        s.set_read_timeout(Some(REPLY_WAIT)).unwrap();
        s.set_write_timeout(Some(REPLY_WAIT)).unwrap();
        s
    }
}

/// Write one call.
fn send(s: &mut UnixStream, method: &str, params: Value) {
    let mut msg = serde_json::to_vec(&json!({"method": method, "parameters": params})).unwrap();
    msg.push(0);
    s.write_all(&msg).expect("write a call");
}

/// Read one message (up to its NUL byte); `None` at end of file.
fn receive(s: &mut UnixStream) -> Option<Value> {
    let mut msg = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match s.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) if byte[0] == 0 => break,
            Ok(_) => msg.push(byte[0]),
            Err(e) => panic!("reading a reply: {e}"),
        }
    }
    Some(serde_json::from_slice(&msg).expect("a reply is JSON"))
}

/// A call and its reply.
fn call(s: &mut UnixStream, method: &str, params: Value) -> Value {
    send(s, method, params);
    receive(s).expect("a reply")
}

/// `SystemShow` answered normally.
#[track_caller]
fn assert_served(s: &mut UnixStream) {
    let r = call(s, "io.l2tpd.SystemShow", json!({}));
    assert_eq!(r["parameters"]["system"]["data_plane"], "null", "{r}");
}

/// Whether the server closed `s` (end of file within the read timeout).
fn closed_by_server(s: &mut UnixStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn an_oversized_call_is_refused_while_another_client_is_served() {
    let dir = common::tempdir("l2tpd-abuse", "oversized");
    let mut d = Daemon::start(&dir, 17401, "", "", "info");

    // A 2 MB tunnel name, written from a thread (the write blocks until the
    // daemon has read it all).
    let mut big = d.connect();
    let mut writer = big.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        send(
            &mut writer,
            "io.l2tpd.TunnelCreate",
            json!({"peer": "127.0.0.1", "name": "n".repeat(2 << 20)}),
        );
    });
    // Meanwhile another client is answered.
    let mut other = d.connect();
    assert_served(&mut other);
    sender.join().unwrap();
    let r = receive(&mut big).expect("an error reply");
    assert_eq!(r["error"], "io.l2tpd.RequestTooLarge", "{r}");
    assert_eq!(r["parameters"]["limit"], MAX_REQUEST, "{r}");
    // The connection is still usable.
    assert_served(&mut big);

    // Within the call limit, a name longer than names may be is refused by name.
    let r = call(
        &mut big,
        "io.l2tpd.TunnelCreate",
        json!({"peer": "127.0.0.1", "name": "n".repeat(1000)}),
    );
    assert_eq!(r["error"], "io.l2tpd.InvalidParameter", "{r}");
    assert_eq!(r["parameters"]["parameter"], "name", "{r}");
    // So is any over-long string.
    let r = call(
        &mut big,
        "io.l2tpd.ProfileCreate",
        json!({"kind": "ppp", "name": "p", "settings": {"user_name": "u".repeat(5000)}}),
    );
    assert_eq!(r["error"], "io.l2tpd.InvalidParameter", "{r}");
    assert_eq!(r["parameters"]["parameter"], "settings.user_name", "{r}");
    assert_served(&mut other);
    assert!(d.proc.child.try_wait().unwrap().is_none(), "l2tpd exited");
}

#[test]
fn a_client_that_never_reads_delays_no_other_and_is_dropped() {
    let dir = common::tempdir("l2tpd-abuse", "no-reader");
    let d = Daemon::start(&dir, 17402, "", "", "info");

    // Pipelined calls with large replies (the interface description), never
    // read, until the daemon stops reading them because its replies cannot
    // be written: our writes then block for good.
    // A write that makes no progress for 500 ms returns (SO_SNDTIMEO): the
    // daemon has stopped reading.
    let mut lazy = d.connect();
    lazy.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut msg = serde_json::to_vec(&json!({
        "method": "org.varlink.service.GetInterfaceDescription",
        "parameters": {"interface": "io.l2tpd"}
    }))
    .unwrap();
    msg.push(0);
    let mut pending: &[u8] = &msg;
    let mut blocked = false;
    let mut calls = 0u32;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        match lazy.write(pending) {
            Ok(n) => {
                pending = &pending[n..];
                if pending.is_empty() {
                    calls += 1;
                    pending = &msg;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                blocked = true;
                break;
            }
            Err(e) => panic!("writing calls: {e}"),
        }
    }
    assert!(blocked, "the daemon kept reading ({calls} calls sent)");

    // Other clients are answered, call after call, on new connections too.
    let mut other = d.connect();
    for _ in 0..20 {
        assert_served(&mut other);
    }
    assert_served(&mut d.connect());

    // The client that never reads is dropped after the reply timeout: our
    // writes (blocked so far) then fail, the daemon's end being closed.
    // (Reading would unblock the daemon's writes instead.)
    let mut gone = false;
    wait(Duration::from_secs(40), || {
        match lazy.write(&msg) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => gone = true,
            Ok(_) => {}
        }
        gone
    });
    assert!(
        gone,
        "the connection that does not read was not closed:\n{}",
        d.proc.log()
    );
    assert!(
        d.proc
            .log()
            .contains("the client did not read its reply within"),
        "{}",
        d.proc.log()
    );
    assert_served(&mut other);
}

#[test]
fn connections_past_the_limit_are_refused_and_the_others_keep_working() {
    let dir = common::tempdir("l2tpd-abuse", "limit");
    let d = Daemon::start(&dir, 17403, "api_max_connections = 4", "", "info");

    let mut held: Vec<UnixStream> = (0..4).map(|_| d.connect()).collect();
    for s in &mut held {
        assert_served(s);
    }
    // The fifth gets the error in reply to its first call, then the end.
    let mut extra = d.connect();
    let r = call(&mut extra, "io.l2tpd.SystemShow", json!({}));
    assert_eq!(r["error"], "io.l2tpd.TooManyConnections", "{r}");
    assert_eq!(r["parameters"]["limit"], 4, "{r}");
    assert!(receive(&mut extra).is_none(), "more after the refusal");
    // The others still work.
    for s in &mut held {
        assert_served(s);
    }
    // Once one closes, a new connection is served (the daemon sees the
    // close asynchronously: retry a few times).
    drop(held.pop());
    let mut served = false;
    wait(Duration::from_secs(5), || {
        let mut s = d.connect();
        let r = call(&mut s, "io.l2tpd.SystemShow", json!({}));
        served = r.get("error").is_none();
        if served {
            held.push(s);
        }
        served
    });
    assert!(served, "no connection served after one closed");
    for s in &mut held {
        assert_served(s);
    }
    assert!(
        d.proc.log().contains("refusing a connection from uid"),
        "{}",
        d.proc.log()
    );

    // The limit changes at run time: one more is served, the next refused.
    assert_eq!(held.len(), 4);
    let r = call(
        &mut held[0],
        "io.l2tpd.SystemModify",
        json!({"settings": {"api_max_connections": 5}}),
    );
    assert!(r.get("error").is_none(), "{r}");
    let mut fifth = d.connect();
    assert_served(&mut fifth);
    let mut sixth = d.connect();
    let r = call(&mut sixth, "io.l2tpd.SystemShow", json!({}));
    assert_eq!(r["error"], "io.l2tpd.TooManyConnections", "{r}");
    assert_eq!(r["parameters"]["limit"], 5, "{r}");
}

#[test]
fn a_call_that_stalls_half_sent_is_dropped() {
    let dir = common::tempdir("l2tpd-abuse", "stall");
    let d = Daemon::start(&dir, 17404, "", "", "info");
    let mut stalled = d.connect();
    stalled
        .write_all(br#"{"method":"io.l2tpd.SystemShow","parame"#)
        .unwrap();
    // Others are served meanwhile.
    let mut other = d.connect();
    assert_served(&mut other);
    assert!(
        closed_by_server(&mut stalled, Duration::from_secs(40)),
        "the stalled connection was not closed:\n{}",
        d.proc.log()
    );
    assert!(
        d.proc.wait_for(
            "a call did not arrive whole within",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        d.proc.log()
    );
    assert_served(&mut other);
}

const FILE_SECRET: &str = "file-secret-4d1f0c";
const SECRETS_FILE_SECRET: &str = "secrets-file-secret-9e2a77";
const API_CREATE_SECRET: &str = "api-create-secret-51b3c8";
const API_MODIFY_SECRET: &str = "api-modify-secret-07aa2e";
const API_TUNNEL_SECRET: &str = "api-tunnel-secret-c3d9f1";
const API_PASSWORD: &str = "api-ppp-password-8f8f13";

#[test]
fn secrets_never_reach_a_trace_log() {
    let dir = common::tempdir("l2tpd-abuse", "secrets");
    let secrets = dir.join("secrets.toml");
    std::fs::write(
        &secrets,
        format!("[tunnel_profile.fromfile]\nsecret = \"{SECRETS_FILE_SECRET}\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let rest = format!(
        "[tunnel_profile.inline]\nsecret = \"{FILE_SECRET}\"\nauth_mode = \"challenge\"\n\
         [tunnel_profile.fromfile]\nhide_avps = true\n"
    );
    let d = Daemon::start(
        &dir,
        17405,
        &format!("secrets_file = \"{}\"", secrets.display()),
        &rest,
        "trace",
    );
    let mut s = d.connect();
    let ok = |r: Value| assert!(r.get("error").is_none(), "{r}");
    ok(call(
        &mut s,
        "io.l2tpd.ProfileCreate",
        json!({"kind": "tunnel", "name": "viaapi", "settings": {"secret": API_CREATE_SECRET}}),
    ));
    ok(call(
        &mut s,
        "io.l2tpd.ProfileModify",
        json!({"kind": "tunnel", "name": "viaapi", "settings": {"secret": API_MODIFY_SECRET}}),
    ));
    ok(call(
        &mut s,
        "io.l2tpd.ProfileCreate",
        json!({"kind": "ppp", "name": "pppviaapi", "settings": {"user_name": "u", "user_password": API_PASSWORD}}),
    ));
    // A tunnel to a loopback port nobody answers, with a secret of its own
    // and hidden AVPs (its SCCRQs are sent and retransmitted meanwhile).
    ok(call(
        &mut s,
        "io.l2tpd.TunnelCreate",
        json!({"peer": "127.0.0.1", "name": "t1", "settings":
            {"peer_udp_port": 17406, "secret": API_TUNNEL_SECRET, "hide_avps": true}}),
    ));
    // Refused calls carrying secrets are not logged with them either.
    let r = call(
        &mut s,
        "io.l2tpd.ProfileCreate",
        json!({"kind": "tunnel", "name": "bad", "settings": {"secret": API_CREATE_SECRET, "hello_timeout": "soon"}}),
    );
    assert_eq!(r["error"], "io.l2tpd.InvalidParameter", "{r}");
    // Shows and the effective configuration say <redacted>.
    let r = call(
        &mut s,
        "io.l2tpd.ProfileShow",
        json!({"kind": "tunnel", "name": "viaapi"}),
    );
    assert_eq!(
        r["parameters"]["profile"]["effective"]["secret"], "<redacted>",
        "{r}"
    );
    // A reload reads the files (and the secrets file) again.
    ok(call(&mut s, "io.l2tpd.SystemReload", json!({})));
    let r = call(&mut s, "io.l2tpd.TunnelShow", json!({"tunnel": "t1"}));
    assert!(r.get("error").is_none(), "{r}");

    let log = d.proc.log();
    // Trace logging was on, and the calls' parameters were traced (redacted).
    assert!(
        log.contains("TRACE") && log.contains("API call received"),
        "no trace lines of the API calls:\n{log}"
    );
    assert!(log.contains("<redacted>"), "{log}");
    for secret in [
        FILE_SECRET,
        SECRETS_FILE_SECRET,
        API_CREATE_SECRET,
        API_MODIFY_SECRET,
        API_TUNNEL_SECRET,
        API_PASSWORD,
    ] {
        assert!(!log.contains(secret), "the log contains {secret}:\n{log}");
    }
}

#[test]
fn a_secrets_file_others_may_read_is_refused_naming_it() {
    let dir = common::tempdir("l2tpd-abuse", "secrets-mode");
    let secrets = dir.join("secrets.toml");
    std::fs::write(&secrets, "[tunnel_profile.p]\nsecret = \"s\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "[system]\nlisten_addr = \"127.0.0.1\"\nudp_port = 17407\ndata_plane = \"null\"\n\
         api_socket = \"{}\"\nsecrets_file = \"{}\"\n[tunnel_profile.p]\nauth_mode = \"challenge\"\n",
        dir.join("api.sock").display(),
        secrets.display()
    );
    let mut d = Process::spawn(&dir, "l2tpd", &config, "info");
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("l2tpd did not exit");
    assert!(!status.success(), "{status:?}\n{}", d.log());
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&secrets.display().to_string()) && l.contains("mode 0644")),
        "no error naming the file and its mode:\n{log}"
    );
}
