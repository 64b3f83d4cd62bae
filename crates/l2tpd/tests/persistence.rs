//! Persistent calls over two real `l2tpd` processes (null data plane, UDP on
//! loopback): an established call of a persistent tunnel that the peer
//! clears with a CDN is placed again in the same tunnel, with back-off; a call
//! the operator deletes is not; a restarted LNS tells the LAC at once that
//! the old tunnel is gone (state file). State is read through `l2tpctl --json`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Process, ctl, wait};
use serde_json::Value;

struct Daemon {
    proc: Process,
    socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str, config: &str) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let config = config.replace("@SOCKET@", &socket.display().to_string());
        let d = Self {
            proc: Process::spawn(dir, name, &config, "info"),
            socket,
            dir: dir.join(name),
        };
        std::fs::create_dir_all(&d.dir).unwrap();
        assert!(
            d.proc.wait_for("l2tpd started", 1, Duration::from_secs(10)),
            "{name} did not start:\n{}",
            d.proc.log()
        );
        d
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (status, out, err) = ctl(&self.dir, &self.socket, &all, Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "l2tpctl {args:?}: {out}\n{err}"
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// (tunnel id, session id, name, state) of every session.
    fn sessions(&self) -> Vec<(u64, u64, String, String)> {
        let v = self.json(&["session", "list"]);
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["tunnel_id"].as_u64().unwrap(),
                    s["id"].as_u64().unwrap(),
                    s["name"].as_str().unwrap().to_string(),
                    s["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The one established session, if exactly one is.
    fn established(&self) -> Option<(u64, u64, String)> {
        let up: Vec<_> = self
            .sessions()
            .into_iter()
            .filter(|s| s.3 == "established")
            .collect();
        (up.len() == 1).then(|| (up[0].0, up[0].1, up[0].2.clone()))
    }
}

#[test]
fn a_persistent_call_cleared_by_the_peer_is_placed_again_and_one_deleted_by_the_operator_is_not() {
    let dir = common::tempdir("l2tpd-persist", "recall");
    let port = 17131;
    let lns = Daemon::start(
        &dir,
        "lns",
        &format!(
            "[system]\nlisten_addr = \"127.0.0.1\"\nudp_port = {port}\ndata_plane = \"null\"\n\
             api_socket = \"@SOCKET@\"\n[tunnel_profile.default]\nhost_name = \"lns\"\n"
        ),
    );
    let lac = Daemon::start(
        &dir,
        "lac",
        &format!(
            "[system]\nlisten_addr = \"127.0.0.2\"\nudp_port = {port}\ndata_plane = \"null\"\n\
             deny_remote_tunnel_creates = true\napi_socket = \"@SOCKET@\"\n\
             [tunnel_profile.default]\nhost_name = \"lac\"\n\
             [tunnel.lac1]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\npersist = true\n\
             [tunnel.lac1.session.s1]\n"
        ),
    );
    let mut first = None;
    assert!(
        wait(Duration::from_secs(15), || {
            first = lac.established();
            first.is_some()
        }),
        "{}",
        lac.proc.log()
    );
    let (lac_tid, first_sid, name) = first.unwrap();
    assert_eq!(name, "s1");

    // Twice: the peer clears the call (CDN); the LAC places it again in the
    // same tunnel (the second time after a longer back-off).
    let mut previous = first_sid;
    for round in 1..=2 {
        let mut peer_call = None;
        assert!(wait(Duration::from_secs(10), || {
            peer_call = lns.established();
            peer_call.is_some()
        }));
        let (lns_tid, lns_sid, _) = peer_call.unwrap();
        lns.json(&[
            "session",
            "delete",
            &lns_tid.to_string(),
            &lns_sid.to_string(),
        ]);
        let mut again = None;
        assert!(
            wait(Duration::from_secs(20), || {
                again = lac.established().filter(|s| s.1 != previous);
                again.is_some()
            }),
            "round {round}: the call was not placed again:\n{}",
            lac.proc.log()
        );
        let (tid, sid, name) = again.unwrap();
        assert_eq!(
            (tid, name.as_str()),
            (lac_tid, "s1"),
            "same tunnel, same call"
        );
        previous = sid;
    }
    let log = lac.proc.log();
    assert!(
        log.contains("placing it again in 2s") && log.contains("placing it again in 4s"),
        "the back-off doubles:\n{log}"
    );

    // Deleted by the operator: not placed again (watched for longer than
    // the back-off, 8 s by now).
    lac.json(&["session", "delete", "lac1", "s1"]);
    assert!(wait(Duration::from_secs(10), || lac.sessions().is_empty()));
    let replaced = wait(Duration::from_secs(10), || !lac.sessions().is_empty());
    assert!(
        !replaced,
        "a deleted call came back: {:?}\n{}",
        lac.sessions(),
        lac.proc.log()
    );
}

/// (tunnel id, state) of every tunnel.
fn tunnels(d: &Daemon) -> Vec<(u64, String)> {
    let v = d.json(&["tunnel", "list"]);
    v["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_restarted_lns_answers_the_old_tunnel_with_stopccn_from_its_state_file() {
    let dir = common::tempdir("l2tpd-persist", "restart");
    let port = 17132;
    let state = dir.join("lns.state");
    let lns_config = format!(
        "[system]\nlisten_addr = \"127.0.0.1\"\nudp_port = {port}\ndata_plane = \"null\"\n\
         state_file = \"{}\"\napi_socket = \"@SOCKET@\"\n\
         [tunnel_profile.default]\nhost_name = \"lns\"\n",
        state.display()
    );
    let mut lns = Daemon::start(&dir, "lns", &lns_config);
    // The LAC would need more than a minute to notice a dead peer by its own
    // retransmissions (5 s, doubling, 10 times): only an answer is fast.
    let lac = Daemon::start(
        &dir,
        "lac",
        &format!(
            "[system]\nlisten_addr = \"127.0.0.2\"\nudp_port = {port}\ndata_plane = \"null\"\n\
             deny_remote_tunnel_creates = true\napi_socket = \"@SOCKET@\"\n\
             [tunnel_profile.default]\nhost_name = \"lac\"\nhello_timeout = \"1s\"\n\
             retry_timeout = \"5s\"\nretry_max_timeout = \"20s\"\nmax_retries = 10\n\
             [tunnel.lac1]\npeer_addr = \"127.0.0.1\"\npeer_udp_port = {port}\npersist = true\n\
             [tunnel.lac1.session.s1]\n"
        ),
    );
    assert!(wait(Duration::from_secs(15), || lac
        .established()
        .is_some()));
    let old: Vec<u64> = tunnels(&lac).into_iter().map(|t| t.0).collect();
    assert_eq!(old.len(), 1);
    // The state file names the tunnel (flushed with the loop's outputs).
    assert!(wait(Duration::from_secs(5), || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\ntunnel "))
    }));

    lns.proc.signal(nix::sys::signal::Signal::SIGKILL);
    lns.proc.wait_exit(Duration::from_secs(5)).unwrap();
    drop(lns);
    let lns = Daemon::start(&dir, "lns2", &lns_config);
    let mut back = Vec::new();
    assert!(
        wait(Duration::from_secs(15), || {
            back = tunnels(&lac);
            back.iter()
                .any(|t| t.1 == "established" && !old.contains(&t.0))
        }),
        "the LAC is not back on a new tunnel: {back:?}\n--- LAC ---\n{}\n--- LNS ---\n{}",
        lac.proc.log(),
        lns.proc.log()
    );
    // The old one was closed by the LNS's StopCCN, not by a timeout.
    let counters = lns.json(&["system", "counters"]);
    assert!(
        counters["counters"]["unknown_tunnel_stopccns"].as_u64() >= Some(1),
        "{counters}"
    );
    assert!(
        back.iter()
            .all(|t| t.1 == "established" || t.1 == "lingering"),
        "{back:?}"
    );
    assert!(wait(Duration::from_secs(10), || lac
        .established()
        .is_some()));
}
