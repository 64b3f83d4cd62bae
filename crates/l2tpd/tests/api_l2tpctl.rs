//! The management API served by real `l2tpd` processes (null data plane,
//! UDP on loopback), every call made through `l2tpctl`, including the error
//! paths and the permission checks. Each test uses its own UDP port and a
//! socket in its own temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{Process, l2tpctl_bin, wait};

struct Daemon {
    proc: Process,
    socket: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str, config: &str) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let config = format!("{config}\n",).replace("@SOCKET@", &socket.display().to_string());
        let d = Self {
            proc: Process::spawn(dir, name, &config, "info"),
            socket,
        };
        assert!(
            d.wait_for("l2tpd started", 1, Duration::from_secs(10)),
            "{name} did not start:\n{}",
            d.log()
        );
        d
    }

    fn log(&self) -> String {
        self.proc.log()
    }

    fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        self.proc.wait_for(needle, count, timeout)
    }

    /// Run l2tpctl against this daemon.
    fn ctl(&self, args: &[&str]) -> Ctl {
        run_ctl(&self.socket, args, None)
    }
}

struct Ctl {
    out: Output,
}

impl Ctl {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout(), self.stderr()))
    }
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "l2tpctl failed:\n{}\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Refused by the daemon (exit 4) with this error name in --json output.
    #[track_caller]
    fn refused(self, error: &str) -> Self {
        assert_eq!(self.code(), 4, "{}\n{}", self.stdout(), self.stderr());
        let v = self.json();
        assert_eq!(v["error"], error, "{v}");
        self
    }
}

fn run_ctl(socket: &Path, args: &[&str], as_user: Option<u32>) -> Ctl {
    let mut cmd = match as_user {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(l2tpctl_bin());
            c
        }
        None => Command::new(l2tpctl_bin()),
    };
    let out = cmd
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run l2tpctl");
    Ctl { out }
}

fn tempdir(name: &str) -> PathBuf {
    common::tempdir("l2tpd-api", name)
}

fn lns(dir: &Path, port: u16) -> Daemon {
    Daemon::start(
        dir,
        "lns",
        &format!(
            r#"
[system]
listen_addr = "127.0.0.1"
udp_port = {port}
data_plane = "null"
api_socket = "@SOCKET@"
[tunnel_profile.default]
host_name = "lns"
"#
        ),
    )
}

/// An LAC with no tunnel in its configuration.
fn lac(dir: &Path, port: u16, extra: &str) -> Daemon {
    Daemon::start(
        dir,
        "lac",
        &format!(
            r#"
[system]
listen_addr = "127.0.0.2"
udp_port = {port}
data_plane = "null"
deny_remote_tunnel_creates = true
api_socket = "@SOCKET@"
{extra}
[tunnel_profile.default]
host_name = "lac"
peer_udp_port = {port}
"#
        ),
    )
}

/// A `l2tpctl monitor --json` in the background, writing to a file.
struct Monitor {
    child: Child,
    out: PathBuf,
}

impl Monitor {
    fn start(d: &Daemon, dir: &Path) -> Self {
        let out = dir.join("monitor.jsonl");
        let child = Command::new(l2tpctl_bin())
            .arg("--socket")
            .arg(&d.socket)
            .args(["--json", "monitor"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let m = Self { child, out };
        assert!(
            wait(Duration::from_secs(5), || m.text().contains("subscribed")),
            "monitor did not subscribe"
        );
        m
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn wait_kind(&self, kind: &str, count: usize) -> bool {
        wait(Duration::from_secs(10), || {
            self.events().iter().filter(|e| e["kind"] == kind).count() >= count
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tunnels_and_sessions_created_shown_and_deleted_at_run_time() {
    let dir = tempdir("tunnels");
    let port = 17111;
    let lns = lns(&dir, port);
    let lac = lac(&dir, port, "");

    let v = lac.ctl(&["--json", "system", "show"]).ok().json();
    assert_eq!(v["system"]["tunnels"], 0);
    assert_eq!(v["system"]["interface_version"], 1);
    assert_eq!(v["system"]["data_plane"], "null");
    assert!(
        lac.ctl(&["system", "show"])
            .ok()
            .stdout()
            .contains("io.l2tpd version 1")
    );

    let mon = Monitor::start(&lac, &dir);

    // A tunnel with one call, nothing of it in the configuration.
    let v = lac
        .ctl(&[
            "--json",
            "tunnel",
            "create",
            "--peer",
            "127.0.0.1",
            "--name",
            "t1",
            "--session",
            "s1",
            "--set",
            "hello_timeout=30s",
            "--wait",
        ])
        .ok()
        .json();
    assert_eq!(v["name"], "t1");
    let tid = v["tunnel_id"].as_u64().unwrap();
    assert!(v["session_ids"]["s1"].as_u64().is_some(), "{v}");
    assert!(mon.wait_kind("tunnel_up", 1), "{}", mon.text());
    assert!(mon.wait_kind("session_up", 1), "{}", mon.text());

    let v = lac.ctl(&["--json", "tunnel", "list"]).ok().json();
    let t = &v["tunnels"][0];
    assert_eq!(t["name"], "t1");
    assert_eq!(t["origin"], "api");
    assert_eq!(t["state"], "established");
    assert_eq!(t["peer"], format!("127.0.0.1:{port}"));
    assert_eq!(t["peer_host_name"], "lns");
    let human = lac.ctl(&["tunnel", "list"]).ok().stdout();
    assert!(
        human.contains("t1") && human.contains("established"),
        "{human}"
    );

    for r in [tid.to_string(), "t1".to_string()] {
        let v = lac.ctl(&["--json", "tunnel", "show", &r]).ok().json();
        let t = &v["tunnel"];
        assert_eq!(t["id"], tid);
        assert_eq!(t["hello_interval_ms"], 30_000);
        assert!(t["window"]["ns"].as_u64().unwrap() >= 2, "{t}");
        assert!(t["window"]["cwnd"].as_u64().is_some());
        assert_eq!(t["counters"]["tx_by_type"]["SCCRQ"], 1);
        assert_eq!(t["sessions"][0]["name"], "s1");
        assert!(t["kernel"].is_object(), "{t}");
    }
    let human = lac.ctl(&["tunnel", "show", "t1"]).ok().stdout();
    assert!(
        human.contains("ns / nr") && human.contains("cwnd"),
        "{human}"
    );

    // A second call at run time; the session list and show.
    let v = lac
        .ctl(&[
            "--json", "session", "create", "t1", "--name", "s2", "--ppp", "mtu=1400", "--wait",
        ])
        .ok()
        .json();
    assert_eq!(v["name"], "s2");
    let v = lac.ctl(&["--json", "session", "list"]).ok().json();
    let names: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"s1") && names.contains(&"s2"), "{names:?}");
    let v = lac.ctl(&["--json", "session", "list", "t1"]).ok().json();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2);
    let v = lac
        .ctl(&["--json", "session", "show", "t1", "s2"])
        .ok()
        .json();
    let s = &v["session"];
    assert_eq!(s["call_type"], "lac-incoming");
    assert_eq!(s["state"], "established");
    // The kernel's counters (the null data plane's: zero).
    assert_eq!(s["kernel"]["rx_packets"], 0, "{s}");
    let human = lac.ctl(&["session", "show", "t1", "s2"]).ok().stdout();
    assert!(
        human.contains("kernel data counters") && human.contains("rx packets"),
        "{human}"
    );

    // The LNS places an outgoing call in the tunnel the LAC set up.
    let v = lns.ctl(&["--json", "tunnel", "list"]).ok().json();
    let lns_tid = v["tunnels"][0]["id"].as_u64().unwrap().to_string();
    assert_eq!(v["tunnels"][0]["origin"], "peer");
    let v = lns
        .ctl(&[
            "--json",
            "session",
            "create",
            &lns_tid,
            "--type",
            "lns-outgoing",
            "--wait",
        ])
        .ok()
        .json();
    let out_sid = v["session_id"].as_u64().unwrap();
    let v = lns
        .ctl(&["--json", "session", "show", &lns_tid, &out_sid.to_string()])
        .ok()
        .json();
    assert_eq!(v["session"]["call_type"], "lns-outgoing");
    assert!(mon.wait_kind("session_up", 3), "{}", mon.text());

    // Counters, and their reset.
    let v = lac.ctl(&["--json", "system", "counters"]).ok().json();
    assert!(v["counters"]["total_rcvd_control_frames"].as_u64().unwrap() > 0);
    assert_eq!(v["counters"]["tunnels"], 1);
    lac.ctl(&["system", "reset-counters"]).ok();
    let v = lac.ctl(&["--json", "system", "counters"]).ok().json();
    assert!(
        v["counters"]["total_rcvd_control_frames"].as_u64().unwrap() < 3,
        "{v}"
    );

    // Clear a call with CDN, then the tunnel with StopCCN.
    lac.ctl(&["session", "delete", "t1", "s2", "--message", "bye"])
        .ok();
    assert!(mon.wait_kind("session_down", 1), "{}", mon.text());
    assert!(
        lns.wait_for("recv CDN", 1, Duration::from_secs(5)) || lns.log().contains("session down"),
        "{}",
        lns.log()
    );
    lac.ctl(&["tunnel", "delete", "t1", "--result-code", "6"])
        .ok();
    assert!(mon.wait_kind("tunnel_down", 1), "{}", mon.text());
    let down = mon
        .events()
        .into_iter()
        .find(|e| e["kind"] == "tunnel_down")
        .unwrap();
    assert_eq!(down["tunnel"], "t1");
    assert!(
        down["reason"].as_str().unwrap().contains("result 6"),
        "{down}"
    );
    let sdown = mon
        .events()
        .into_iter()
        .find(|e| e["kind"] == "session_down")
        .unwrap();
    assert_eq!(sdown["session"], "s2", "{sdown}");
    assert!(
        lns.wait_for(
            "tunnel down: closed by peer, result 6",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        lns.log()
    );
    assert!(wait(Duration::from_secs(5), || {
        lac.ctl(&["--json", "tunnel", "list"]).json()["tunnels"]
            .as_array()
            .unwrap()
            .is_empty()
    }));
    // The name is free again: the runtime tunnel was forgotten. (Not
    // waited for: the LNS still lingers on the old tunnel's 5-tuple.)
    let v = lac
        .ctl(&[
            "--json",
            "tunnel",
            "create",
            "--peer",
            "127.0.0.1",
            "--name",
            "t1",
        ])
        .ok()
        .json();
    assert_eq!(v["name"], "t1");
    lac.ctl(&["tunnel", "delete", "t1"]).ok();
}

#[test]
fn profiles_settings_reload_and_trace_flags() {
    let dir = tempdir("profiles");
    let port = 17112;
    let _lns = lns(&dir, port);
    let lac = lac(
        &dir,
        port,
        "[ppp_profile.fromfile]\nmtu = 1400\n[session_profile.seq]\nuse_sequence_numbers = true\n",
    );

    // Every kind is listed, with where it comes from.
    let v = lac.ctl(&["--json", "profile", "list"]).ok().json();
    let all = v["profiles"].as_array().unwrap();
    for kind in ["tunnel", "session", "ppp", "peer"] {
        assert!(
            all.iter()
                .any(|p| p["kind"] == kind && p["name"] == "default"),
            "{v}"
        );
    }
    assert!(
        all.iter()
            .any(|p| p["name"] == "fromfile" && p["origin"] == "config")
    );

    // Create: the new profile inherits from default like a file's would.
    lac.ctl(&[
        "profile",
        "tunnel",
        "create",
        "fast",
        "--set",
        "hello_timeout=5s",
        "--set",
        "max_retries=3",
        "--trace",
        "protocol",
    ])
    .ok();
    let v = lac
        .ctl(&["--json", "profile", "tunnel", "show", "fast"])
        .ok()
        .json();
    let p = &v["profile"];
    assert_eq!(p["origin"], "api");
    assert_eq!(p["settings"]["hello_timeout"], "5s");
    assert_eq!(p["effective"]["max_retries"], 3);
    assert_eq!(
        p["effective"]["peer_udp_port"], port,
        "default's value inherited: {p}"
    );
    assert_eq!(p["trace_flags"][0], "protocol");
    let v = lac
        .ctl(&["--json", "profile", "tunnel", "list"])
        .ok()
        .json();
    assert!(
        v["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fast")
    );

    // Modify a profile from the files, and unset what was set at run time.
    lac.ctl(&["profile", "ppp", "modify", "fromfile", "--set", "mru=1300"])
        .ok();
    let v = lac
        .ctl(&["--json", "profile", "ppp", "show", "fromfile"])
        .ok()
        .json();
    assert_eq!(v["profile"]["origin"], "config+api");
    assert_eq!(v["profile"]["effective"]["mru"], 1300);
    assert_eq!(v["profile"]["effective"]["mtu"], 1400);
    lac.ctl(&["profile", "ppp", "modify", "fromfile", "--unset", "mru"])
        .ok();
    let v = lac
        .ctl(&["--json", "profile", "ppp", "show", "fromfile"])
        .ok()
        .json();
    assert_eq!(v["profile"]["effective"]["mru"], 1500);

    // A tunnel using the runtime profile gets its values and its trace flags:
    // the protocol messages of that tunnel are logged at debug level while
    // the daemon logs at info.
    let v = lac
        .ctl(&[
            "--json",
            "tunnel",
            "create",
            "--peer",
            "127.0.0.1",
            "--name",
            "fast1",
            "--set",
            "tunnel_profile_name=fast",
            "--wait",
        ])
        .ok()
        .json();
    let tid = v["tunnel_id"].as_u64().unwrap();
    let v = lac.ctl(&["--json", "tunnel", "show", "fast1"]).ok().json();
    assert_eq!(v["tunnel"]["hello_interval_ms"], 5000);
    assert_eq!(v["tunnel"]["trace_flags"][0], "protocol", "{v}");
    lac.ctl(&["session", "create", "fast1", "--name", "traced", "--wait"])
        .ok();
    assert!(
        lac.wait_for("send ICRQ", 1, Duration::from_secs(5)),
        "no protocol trace:\n{}",
        lac.log()
    );
    assert!(
        lac.log()
            .lines()
            .filter(|l| l.contains("DEBUG"))
            .all(|l| l.contains(&format!("tunnel={tid}"))),
        "only the traced tunnel is logged at debug:\n{}",
        lac.log()
    );
    // Trace flags per tunnel and per session, switched off again.
    lac.ctl(&["tunnel", "modify", "fast1", "--trace", "none"])
        .ok();
    let v = lac.ctl(&["--json", "tunnel", "show", "fast1"]).ok().json();
    assert_eq!(v["tunnel"]["trace_flags"], serde_json::json!([]));
    lac.ctl(&["session", "modify", "fast1", "traced", "--trace", "ppp,fsm"])
        .ok();
    let v = lac
        .ctl(&["--json", "session", "show", "fast1", "traced"])
        .ok()
        .json();
    assert_eq!(
        v["session"]["trace_flags"],
        serde_json::json!(["fsm", "ppp"])
    );
    lac.ctl(&["tunnel", "modify", "fast1", "--persist", "true"])
        .ok();
    let v = lac.ctl(&["--json", "tunnel", "show", "fast1"]).ok().json();
    assert_eq!(v["tunnel"]["persist"], true);
    // The HELLO interval changes at run time.
    lac.ctl(&["tunnel", "modify", "fast1", "--hello-timeout", "7s"])
        .ok();
    let v = lac.ctl(&["--json", "tunnel", "show", "fast1"]).ok().json();
    assert_eq!(v["tunnel"]["hello_interval_ms"], 7000);
    lac.ctl(&["tunnel", "modify", "fast1", "--hello-timeout", "0s"])
        .ok();
    let v = lac.ctl(&["--json", "tunnel", "show", "fast1"]).ok().json();
    assert!(v["tunnel"]["hello_interval_ms"].is_null(), "{v}");
    lac.ctl(&[
        "--json",
        "tunnel",
        "modify",
        "fast1",
        "--hello-timeout",
        "soon",
    ])
    .refused("io.l2tpd.InvalidParameter");

    // A profile in use cannot be deleted; an unused one can.
    lac.ctl(&["--json", "profile", "tunnel", "delete", "fast"])
        .refused("io.l2tpd.ConfigInvalid");
    lac.ctl(&["profile", "session", "delete", "seq"]).ok();
    lac.ctl(&["--json", "profile", "session", "show", "seq"])
        .refused("io.l2tpd.NoSuchProfile");

    // [system] at run time; system-wide trace flags.
    lac.ctl(&[
        "system",
        "modify",
        "--set",
        "max_sessions=7",
        "--trace",
        "system",
    ])
    .ok();
    let v = lac.ctl(&["--json", "system", "show"]).ok().json();
    assert_eq!(v["system"]["settings"]["max_sessions"], 7);
    assert_eq!(v["system"]["trace_flags"], serde_json::json!(["system"]));
    assert_eq!(v["system"]["runtime_changes"], true);

    // Reload (SystemReload, and SIGHUP): runtime changes stay on top.
    let v = lac.ctl(&["--json", "system", "reload"]).ok().json();
    assert!(
        v["config_sources"][0]
            .as_str()
            .unwrap()
            .ends_with("lac.toml")
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lac.proc.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    assert!(lac.wait_for("configuration reloaded", 2, Duration::from_secs(5)));
    let v = lac
        .ctl(&["--json", "profile", "tunnel", "show", "fast"])
        .ok()
        .json();
    assert_eq!(v["profile"]["effective"]["hello_timeout"], "5s");
    let v = lac.ctl(&["--json", "tunnel", "list"]).ok().json();
    assert_eq!(
        v["tunnels"][0]["name"], "fast1",
        "the runtime tunnel survives reloads"
    );
    // An invalid file is refused and the running configuration kept.
    std::fs::write(dir.join("lac.toml"), "[system]\nbogus = 1\n").unwrap();
    let c = lac
        .ctl(&["--json", "system", "reload"])
        .refused("io.l2tpd.ConfigInvalid");
    assert!(c.stderr().contains("bogus"), "{}", c.stderr());

    // Introspection and raw calls.
    let idl = lac.ctl(&["introspect"]).ok().stdout();
    assert!(idl.contains("interface io.l2tpd") && idl.contains("method TunnelCreate"));
    assert_eq!(idl.trim_end(), l2tp_api_description().trim_end());
    let v = lac
        .ctl(&["call", "org.varlink.service.GetInfo"])
        .ok()
        .json();
    assert!(
        v["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "io.l2tpd")
    );
    let v = lac.ctl(&["call", "TunnelList", "{}"]).ok().json();
    assert_eq!(v["tunnels"][0]["name"], "fast1");
}

/// The interface description in the repository.
fn l2tp_api_description() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../l2tp-api/io.l2tpd.varlink"),
    )
    .unwrap()
}

#[test]
fn errors_are_typed_and_name_the_problem() {
    let dir = tempdir("errors");
    let port = 17113;
    let _lns = lns(&dir, port);
    let lac = lac(&dir, port, "");
    lac.ctl(&[
        "tunnel",
        "create",
        "--peer",
        "127.0.0.1",
        "--name",
        "t1",
        "--session",
        "s1",
        "--wait",
    ])
    .ok();

    // Unknown objects.
    let c = lac
        .ctl(&["--json", "tunnel", "show", "nosuch"])
        .refused("io.l2tpd.NoSuchTunnel");
    assert!(c.stderr().contains("nosuch"));
    lac.ctl(&["--json", "tunnel", "delete", "4242"])
        .refused("io.l2tpd.NoSuchTunnel");
    lac.ctl(&["--json", "session", "show", "t1", "nosuch"])
        .refused("io.l2tpd.NoSuchSession");
    lac.ctl(&["--json", "session", "create", "nosuch"])
        .refused("io.l2tpd.NoSuchTunnel");
    lac.ctl(&["--json", "profile", "ppp", "show", "nosuch"])
        .refused("io.l2tpd.NoSuchProfile");
    lac.ctl(&[
        "--json", "profile", "ppp", "modify", "nosuch", "--set", "mtu=1400",
    ])
    .refused("io.l2tpd.NoSuchProfile");

    // Invalid parameters, each named.
    for (args, param) in [
        (vec!["tunnel", "create", "--peer", "not-an-address"], "peer"),
        (
            vec![
                "tunnel",
                "create",
                "--peer",
                "127.0.0.1",
                "--set",
                "hello_timeout=soon",
            ],
            "settings.hello_timeout",
        ),
        (
            vec![
                "tunnel",
                "create",
                "--peer",
                "127.0.0.1",
                "--set",
                "no_such_key=1",
            ],
            "settings.no_such_key",
        ),
        (
            vec!["tunnel", "delete", "t1", "--result-code", "99"],
            "result_code",
        ),
        (
            vec!["session", "delete", "t1", "s1", "--result-code", "0"],
            "result_code",
        ),
        (
            vec!["tunnel", "modify", "t1", "--trace", "bogus"],
            "trace_flags",
        ),
        (
            vec![
                "session",
                "create",
                "t1",
                "--set",
                "session_type=lns_incoming",
            ],
            "settings.session_type",
        ),
        (
            vec!["session", "create", "t1", "--ppp", "mtu=12"],
            "settings.ppp.mtu",
        ),
        (
            vec!["profile", "ppp", "create", "p", "--set", "mtu=\"big\""],
            "settings.mtu",
        ),
        (vec!["profile", "tunnel", "delete", "default"], "name"),
        (
            vec!["system", "modify", "--set", "udp_port=1"],
            "settings.udp_port",
        ),
    ] {
        let mut a = vec!["--json"];
        a.extend(args.iter().copied());
        let c = lac.ctl(&a).refused("io.l2tpd.InvalidParameter");
        assert_eq!(
            c.json()["parameters"]["parameter"],
            param,
            "{args:?}: {}",
            c.stdout()
        );
        assert!(c.stderr().contains(param), "{}", c.stderr());
    }
    let c = lac
        .ctl(&["--json", "call", "ProfileList", r#"{"kind": "bogus"}"#])
        .refused("io.l2tpd.InvalidParameter");
    assert_eq!(c.json()["parameters"]["parameter"], "kind");
    let c = lac
        .ctl(&["--json", "call", "TunnelShow", r#"{"tunnel": 1, "x": 2}"#])
        .refused("io.l2tpd.InvalidParameter");
    assert!(c.stderr().contains("invalid"), "{}", c.stderr());

    // Names and profiles that exist already.
    lac.ctl(&[
        "--json",
        "tunnel",
        "create",
        "--peer",
        "127.0.0.1",
        "--name",
        "t1",
    ])
    .refused("io.l2tpd.NameInUse");
    lac.ctl(&["--json", "session", "create", "t1", "--name", "s1"])
        .refused("io.l2tpd.NameInUse");
    lac.ctl(&["--json", "profile", "tunnel", "create", "default"])
        .refused("io.l2tpd.ProfileExists");

    // Unknown methods and interfaces, and Monitor without `more`.
    lac.ctl(&["--json", "call", "NoSuchMethod"])
        .refused("org.varlink.service.MethodNotFound");
    lac.ctl(&["--json", "call", "com.example.Nothing"])
        .refused("org.varlink.service.InterfaceNotFound");
    lac.ctl(&["--json", "call", "Monitor"])
        .refused("org.varlink.service.ExpectedMore");

    // Usage errors never reach the daemon; a missing daemon is exit 3.
    assert_eq!(lac.ctl(&["tunnel", "create"]).code(), 2);
    let c = run_ctl(&dir.join("nothing.sock"), &["tunnel", "list"], None);
    assert_eq!(c.code(), 3, "{}", c.stderr());

    // Nothing was created by the refused calls.
    let v = lac.ctl(&["--json", "tunnel", "list"]).ok().json();
    assert_eq!(v["tunnels"].as_array().unwrap().len(), 1, "{v}");
    let v = lac.ctl(&["--json", "profile", "ppp", "list"]).ok().json();
    assert_eq!(v["profiles"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn unprivileged_callers_are_refused_or_read_only() {
    if !nix::unistd::geteuid().is_root()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv (util-linux) to run l2tpctl as another uid");
        return;
    }
    let dir = tempdir("perm");
    let port = 17114;
    let _lns = lns(&dir, port);
    // nobody (65534) is in the read-only group (its primary group, 65534).
    let lac = lac(&dir, port, "api_readonly_group = \"65534\"");
    let meta = std::fs::metadata(&lac.socket).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (0, 65534));

    let c = run_ctl(&lac.socket, &["--json", "tunnel", "list"], Some(65534)).ok();
    assert!(c.json()["tunnels"].is_array());
    run_ctl(&lac.socket, &["system", "show"], Some(65534)).ok();
    let c = run_ctl(
        &lac.socket,
        &["--json", "tunnel", "create", "--peer", "127.0.0.1"],
        Some(65534),
    )
    .refused("io.l2tpd.PermissionDenied");
    assert!(c.stderr().contains("TunnelCreate"), "{}", c.stderr());
    run_ctl(&lac.socket, &["--json", "system", "reload"], Some(65534))
        .refused("io.l2tpd.PermissionDenied");
    run_ctl(
        &lac.socket,
        &["--json", "profile", "ppp", "create", "x"],
        Some(65534),
    )
    .refused("io.l2tpd.PermissionDenied");
    assert!(lac.log().contains("permission denied"), "{}", lac.log());

    // Another uid outside the group cannot even open the socket.
    let c = run_ctl(&lac.socket, &["tunnel", "list"], Some(4242));
    assert_eq!(c.code(), 4, "{}", c.stderr());
    assert!(c.stderr().contains("permission denied"), "{}", c.stderr());
    // Root may do everything.
    lac.ctl(&["profile", "ppp", "create", "x"]).ok();
}
