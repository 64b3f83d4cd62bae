//! Metrics: the `[system] metrics_listen` HTTP endpoint and `l2tpctl
//! metrics`, on real `l2tpd` processes (null data plane, UDP and TCP on
//! loopback). The exposition is parsed and checked against `l2tpctl --json
//! system counters` and `tunnel show`; per-tunnel series appear only when
//! asked for; slow or oversized HTTP requests do not hold up a scrape.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{Process, ctl, wait};

const T: Duration = Duration::from_secs(10);

/// One sample: its family's TYPE, its labels and value.
#[derive(Debug, Clone)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition (Prometheus text format 0.0.4): samples by metric
/// name, TYPE and HELP by name.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, Vec<Sample>>,
    types: BTreeMap<String, String>,
    help: BTreeMap<String, String>,
}

impl Exposition {
    /// Parse, panicking with the line on anything malformed: a sample whose
    /// name has no `# TYPE` (and `# HELP`) before it, a duplicate TYPE, a
    /// bad label list or value.
    fn parse(text: &str) -> Self {
        let mut e = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect(line);
                e.help.insert(name.into(), help.into());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').expect(line);
                assert!(
                    ["counter", "gauge"].contains(&ty),
                    "unexpected type: {line}"
                );
                assert!(
                    e.types.insert(name.into(), ty.into()).is_none(),
                    "second TYPE: {line}"
                );
            } else if line.starts_with('#') || line.is_empty() {
                panic!("unexpected line {line:?}");
            } else {
                let (series, value) = line.rsplit_once(' ').expect(line);
                let (name, labels) = match series.split_once('{') {
                    Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect(line))),
                    None => (series, BTreeMap::new()),
                };
                assert!(
                    e.types.contains_key(name) && e.help.contains_key(name),
                    "sample without TYPE/HELP: {line}"
                );
                let value: f64 = value.parse().expect(line);
                e.samples
                    .entry(name.into())
                    .or_default()
                    .push(Sample { labels, value });
            }
        }
        e
    }

    /// The value of the series `name` with exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(name)?.iter().find_map(|s| {
            (s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .then_some(s.value)
        })
    }

    /// The value of an unlabelled series, which must be there.
    #[track_caller]
    fn one(&self, name: &str) -> u64 {
        self.get(name, &[])
            .unwrap_or_else(|| panic!("no {name}: {:?}", self.samples.keys())) as u64
    }

    /// Sum over the series of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.samples.get(name).map_or(0, |v| {
            v.iter()
                .filter(|s| {
                    labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|s| s.value as u64)
                .sum()
        })
    }

    /// Whether any series has a label `key`.
    fn has_label(&self, key: &str) -> bool {
        self.samples
            .values()
            .flatten()
            .any(|s| s.labels.contains_key(key))
    }
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label list {s}");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("bad escape in {s}"),
                },
                c => value.push(c),
            }
        }
        out.insert(key, value);
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("unexpected {c:?} in {s}"),
        }
    }
    out
}

/// One HTTP request: the status code and body.
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, T).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    s.write_all(request).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read the reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: l2tpd\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    Exposition::parse(&body)
}

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
            dir: dir.to_owned(),
        };
        assert!(
            d.proc.wait_for("l2tpd started", 1, T),
            "{name} did not start:\n{}",
            d.proc.log()
        );
        d
    }

    #[track_caller]
    fn ctl(&self, args: &[&str]) -> String {
        let (status, out, err) = ctl(&self.dir, &self.socket, args, T);
        assert!(
            status.is_some_and(|s| s.success()),
            "l2tpctl {args:?}: {out}\n{err}\n{}",
            self.proc.log()
        );
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ctl(&a)).unwrap()
    }

    fn ctl_metrics(&self, args: &[&str]) -> Exposition {
        let mut a = vec!["metrics"];
        a.extend_from_slice(args);
        Exposition::parse(&self.ctl(&a))
    }
}

fn config(name: &str, addr: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[system]
listen_addr = "{addr}"
udp_port = {port}
data_plane = "null"
api_socket = "@SOCKET@"
{extra}
[tunnel_profile.default]
host_name = "{name}"
peer_udp_port = {port}
"#
    )
}

/// The counters of `l2tpctl --json system counters` and the series that
/// show them.
const COUNTERS: &[(&str, &str)] = &[
    (
        "total_rcvd_control_frames",
        "l2tpd_control_frames_received_total",
    ),
    ("bad_rcvd_frames", "l2tpd_bad_frames_received_total"),
    ("wrong_version_frames", "l2tpd_wrong_version_frames_total"),
    (
        "unexpected_data_frames",
        "l2tpd_unexpected_data_frames_total",
    ),
    (
        "no_matching_tunnel_id_discards",
        "l2tpd_no_matching_tunnel_id_discards_total",
    ),
    (
        "mismatched_peer_discards",
        "l2tpd_mismatched_peer_discards_total",
    ),
    ("tunnels_refused", "l2tpd_tunnels_refused_total"),
    ("tunnels_lost", "l2tpd_tunnels_lost_total"),
    ("auth_fails", "l2tpd_auth_failures_total"),
    ("illegal_messages", "l2tpd_illegal_messages_total"),
    ("retransmits", "l2tpd_retransmits_total"),
    ("tie_breakers_won", "l2tpd_tie_breakers_won_total"),
    ("tie_breakers_lost", "l2tpd_tie_breakers_lost_total"),
    ("half_open_drops", "l2tpd_half_open_drops_total"),
    ("sccrq_bad_ns_drops", "l2tpd_sccrq_bad_ns_drops_total"),
    ("tunnel_limit_refusals", "l2tpd_tunnel_limit_refusals_total"),
    ("calls_refused", "l2tpd_calls_refused_total"),
    ("undecided_calls", "l2tpd_undecided_calls_total"),
    ("peer_port_changes", "l2tpd_peer_port_changes_total"),
    (
        "unknown_tunnel_stopccns",
        "l2tpd_unknown_tunnel_stopccns_total",
    ),
    ("unknown_tunnel_zlbs", "l2tpd_unknown_tunnel_zlbs_total"),
    (
        "unknown_tunnel_answers_suppressed",
        "l2tpd_unknown_tunnel_answers_suppressed_total",
    ),
    ("listen_queue_drops", "l2tpd_listen_queue_drops_total"),
    ("tunnel_queue_drops", "l2tpd_tunnel_queue_drops_total"),
    ("tunnels", "l2tpd_tunnels"),
    ("half_open_tunnels", "l2tpd_half_open_tunnels"),
    ("sessions", "l2tpd_sessions"),
    ("tunnel_sockets", "l2tpd_tunnel_sockets"),
];

/// Whether every counter of `system counters` equals its series.
fn mismatches(counters: &Value, e: &Exposition) -> Vec<String> {
    COUNTERS
        .iter()
        .filter_map(|(field, series)| {
            let want = counters["counters"][field].as_u64().expect(field);
            let got = e.get(series, &[]).map(|v| v as u64);
            (got != Some(want)).then(|| format!("{series}: {got:?}, {field}: {want}"))
        })
        .collect()
}

/// Scrape (with `get`) and read the counters until they agree (bounded:
/// acknowledgements may still be in flight); the last scrape.
#[track_caller]
fn agreeing(d: &Daemon, get: impl Fn() -> Exposition) -> Exposition {
    let mut last = (Vec::new(), Exposition::default());
    let ok = wait(T, || {
        let e = get();
        let c = d.json(&["system", "counters"]);
        last = (mismatches(&c, &e), e);
        last.0.is_empty()
    });
    assert!(ok, "metrics and counters disagree: {:?}", last.0);
    last.1
}

#[test]
fn http_and_l2tpctl_metrics_match_the_counters_and_per_tunnel_series_are_opt_in() {
    let dir = common::tempdir("l2tpd-metrics", "counters");
    let (lns_http, lac_http): (SocketAddr, SocketAddr) = (
        "127.0.0.1:17691".parse().unwrap(),
        "127.0.0.2:17692".parse().unwrap(),
    );
    let lns = Daemon::start(
        &dir,
        "lns",
        &config(
            "lns",
            "127.0.0.1",
            17611,
            &format!("metrics_listen = \"{lns_http}\""),
        ),
    );
    let lac = Daemon::start(
        &dir,
        "lac",
        &config(
            "lac",
            "127.0.0.2",
            17611,
            &format!(
                "metrics_listen = \"{lac_http}\"\nmetrics_per_tunnel = true\ndeny_remote_tunnel_creates = true"
            ),
        ),
    );

    // Nothing yet: every series is there, at zero.
    let e = agreeing(&lns, || scrape(lns_http));
    assert_eq!(e.one("l2tpd_tunnels"), 0);
    assert_eq!(e.types["l2tpd_retransmits_total"], "counter");
    assert_eq!(e.types["l2tpd_sessions"], "gauge");
    assert_eq!(
        e.get(
            "l2tpd_control_messages_received_total",
            &[("type", "SCCRQ"), ("result", "good")]
        ),
        Some(0.0)
    );

    let v = lac.json(&[
        "tunnel",
        "create",
        "--peer",
        "127.0.0.1",
        "--name",
        "t1",
        "--session",
        "s1",
        "--wait",
    ]);
    let tid = v["tunnel_id"].as_u64().unwrap().to_string();
    assert!(
        wait(
            T,
            || lns.json(&["system", "counters"])["counters"]["sessions"] == 1
        ),
        "the LNS has no session"
    );

    // The LNS: HTTP and l2tpctl agree with the counters; no per-tunnel series.
    let e = agreeing(&lns, || scrape(lns_http));
    assert_eq!((e.one("l2tpd_tunnels"), e.one("l2tpd_sessions")), (1, 1));
    let good = |e: &Exposition, t: &str| {
        e.get(
            "l2tpd_control_messages_received_total",
            &[("type", t), ("result", "good")],
        )
    };
    assert_eq!(good(&e, "SCCRQ"), Some(1.0));
    assert_eq!(good(&e, "ICRQ"), Some(1.0));
    assert_eq!(
        e.get("l2tpd_control_messages_sent_total", &[("type", "SCCRP")]),
        Some(1.0)
    );
    assert!(!e.has_label("tunnel") && !e.has_label("id"));
    // The per-type totals are the tunnel's own (`tunnel show`).
    let lns_tunnels = lns.json(&["tunnel", "list"]);
    let lns_tid = lns_tunnels["tunnels"][0]["id"]
        .as_u64()
        .unwrap()
        .to_string();
    let shown = lns.json(&["tunnel", "show", &lns_tid]);
    let by_type = |k: &str| -> u64 {
        shown["tunnel"]["counters"][k]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    let ctl_e = agreeing(&lns, || lns.ctl_metrics(&[]));
    for e in [&e, &ctl_e] {
        assert_eq!(
            e.sum("l2tpd_control_messages_received_total", &[]),
            by_type("rx_by_type"),
            "{shown}"
        );
        assert_eq!(
            e.sum("l2tpd_control_messages_sent_total", &[]),
            by_type("tx_by_type")
        );
    }
    assert!(!ctl_e.has_label("tunnel"));
    // One renderer: byte for byte the same text (once nothing moves).
    assert!(
        wait(T, || {
            let (_, body) = http(lns_http, b"GET /metrics HTTP/1.1\r\n\r\n");
            lns.ctl(&["metrics"]) == body
        }),
        "l2tpctl metrics and the HTTP endpoint differ"
    );
    assert_eq!(
        ctl_e.samples.keys().collect::<Vec<_>>(),
        e.samples.keys().collect::<Vec<_>>()
    );
    // Asked for: one set per tunnel.
    let per = lns.ctl_metrics(&["--per-tunnel"]);
    let name = shown["tunnel"]["name"].as_str().unwrap();
    let labels = [("tunnel", name), ("id", lns_tid.as_str())];
    assert_eq!(per.get("l2tpd_tunnel_sessions", &labels), Some(1.0));
    assert_eq!(per.get("l2tpd_tunnel_established", &labels), Some(1.0));

    // The LAC, with metrics_per_tunnel = true: its tunnel's series.
    let e = agreeing(&lac, || scrape(lac_http));
    let t1 = [("tunnel", "t1"), ("id", tid.as_str())];
    assert_eq!(e.get("l2tpd_tunnel_sessions", &t1), Some(1.0));
    assert_eq!(e.get("l2tpd_tunnel_established", &t1), Some(1.0));
    let sent = e
        .get("l2tpd_tunnel_control_messages_sent_total", &t1)
        .unwrap() as u64;
    assert_eq!(sent, e.sum("l2tpd_control_messages_sent_total", &[]));
    // ... but not through l2tpctl without --per-tunnel.
    assert!(!lac.ctl_metrics(&[]).has_label("tunnel"));

    // A deleted tunnel's messages still count: counters never go down.
    // (The LAC frees its tunnel once its StopCCN is acknowledged; the LNS
    // lingers a retransmission cycle, RFC 2661 §5.7.)
    let before = e.sum("l2tpd_control_messages_sent_total", &[]);
    lac.ctl(&["tunnel", "delete", "t1"]);
    assert!(
        wait(T, || scrape(lac_http).one("l2tpd_tunnels") == 0),
        "the LAC kept its tunnel"
    );
    let e = agreeing(&lac, || scrape(lac_http));
    let sent = |t: &str| e.get("l2tpd_control_messages_sent_total", &[("type", t)]);
    assert_eq!(sent("SCCRQ"), Some(1.0));
    assert_eq!(sent("ICRQ"), Some(1.0));
    assert_eq!(sent("StopCCN"), Some(1.0));
    assert!(e.sum("l2tpd_control_messages_sent_total", &[]) > before);
    assert!(!e.has_label("tunnel"), "a freed tunnel's series stayed");
}

#[test]
fn slow_or_oversized_requests_do_not_block_the_next_scrape() {
    let dir = common::tempdir("l2tpd-metrics", "slow");
    let http_addr: SocketAddr = "127.0.0.1:17693".parse().unwrap();
    let d = Daemon::start(
        &dir,
        "lns",
        &config(
            "lns",
            "127.0.0.1",
            17612,
            &format!("metrics_listen = \"{http_addr}\""),
        ),
    );
    // Clients that send half a request and wait (one fewer than the
    // connection limit, so that the scrape below has a slot).
    let mut slow: Vec<TcpStream> = (0..7)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&http_addr, T).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x").unwrap();
            s
        })
        .collect();
    // An oversized head: refused with 431, and it holds no slot afterwards.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Junk: ".to_vec();
    big.resize(64 * 1024, b'a');
    let (status, _) = {
        let mut s = TcpStream::connect_timeout(&http_addr, T).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        // The server stops reading at its cap: a write error is fine.
        let _ = s.write_all(&big);
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        let status: u16 = reply
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, reply)
    };
    assert!(
        status == 431 || status == 0,
        "oversized request got {status}"
    );
    // The scrape is answered while the slow clients still wait.
    let e = scrape(http_addr);
    assert_eq!(e.one("l2tpd_tunnels"), 0);
    for s in &mut slow {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let r = s.read(&mut b);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a slow client was answered or closed before the scrape: {r:?}"
        );
    }
    // Other requests get their status, and the daemon answers its API too.
    assert_eq!(http(http_addr, b"GET / HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(http(http_addr, b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(http(http_addr, b"\xff\r\n\r\n").0, 400);
    // OpenMetrics when asked for.
    let (status, body) = http(
        http_addr,
        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(body.ends_with("# EOF\n"), "{body}");
    d.ctl(&["system", "show"]);
    // The slow clients are closed at the request timeout (408).
    for mut s in slow {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    }
}

#[test]
fn a_bad_metrics_listen_is_a_clear_error() {
    let dir = common::tempdir("l2tpd-metrics", "bad");
    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut p = Process::spawn(
        &dir,
        "lns",
        &config(
            "lns",
            "127.0.0.1",
            17613,
            &format!("metrics_listen = \"{addr}\""),
        )
        .replace("@SOCKET@", &dir.join("s.sock").display().to_string()),
        "info",
    );
    let status = p.wait_exit(T).expect("l2tpd did not exit");
    assert!(!status.success());
    let log = p.log();
    assert!(
        log.contains("metrics_listen") && log.contains(&addr.to_string()),
        "{log}"
    );
    // Not an address.
    let mut p = Process::spawn(
        &dir,
        "lns2",
        &config("lns", "127.0.0.1", 17613, "metrics_listen = \"localhost\"")
            .replace("@SOCKET@", &dir.join("s2.sock").display().to_string()),
        "info",
    );
    assert!(!p.wait_exit(T).expect("l2tpd did not exit").success());
    assert!(p.log().contains("metrics_listen"), "{}", p.log());
}
