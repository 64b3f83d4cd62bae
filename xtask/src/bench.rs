//! `cargo xtask bench`: a benchmark of l2tpd's signalling path on loopback.
//!
//! Two release-built `l2tpd`s run on the host with `data_plane = "null"` (no
//! kernel L2TP or PPP needed): an LNS on 127.0.0.2:1701 and an LAC on
//! 127.0.0.3 (another loopback /24 with `--net`), each with its own API
//! socket and temporary directory, logging
//! at `--log info` as in production. Every repetition starts a fresh pair.
//! The LAC starts with no tunnel; the bench then writes the generated
//! `[tunnel.tK]` / `[tunnel.t0.session.sK]` tables into its configuration
//! and sends SIGHUP. Set-up and teardown times and counts come from the
//! daemons' own log lines (`tunnel up`, `session up`, `tunnel down: …`,
//! `session down: …`, each with a microsecond timestamp), tailed
//! incrementally every [`POLL`]; no API subscriber runs, because a Monitor
//! subscriber costs the daemon more than the set-ups themselves. With
//! `--monitor`, an `io.l2tpd.Monitor` subscriber on each daemon supplies the
//! same events (the log still counts once a monitor lagged): that measures
//! the cost of monitoring too. The result is checked with `SystemShow`
//! counts on both sides, the only call polled (the list calls cost the
//! daemon too much at these sizes). Workloads:
//!
//! - `sessions-N`: N calls in one tunnel; set-up rate, configuration check and
//!   reload time, then teardown (SIGTERM to the LAC: until the LNS has every
//!   session and tunnel down, until it holds no tunnel at all after the RFC
//!   2661 linger, which is waited for in the largest size only, and the LAC's
//!   own exit);
//! - `tunnels-N`: N tunnels without calls, the same measurements;
//! - `idle-N`: CPU time (utime+stime) of each daemon over an idle window with
//!   N tunnels up;
//! - `flood-N`: N valid SCCRQs at 1,000/s from one address against an LNS that
//!   carries an established tunnel and call (LAC `hello_timeout = "2s"`):
//!   whether they survive, the LNS's RSS peak and RSS after a settling time;
//! - `xl2tpd-tunnels-N` (`--xl2tpd`): the tunnel set-ups against xl2tpd as
//!   LNS; `xl2tpd-sessions-N` is always skipped, with the reason (xl2tpd
//!   starts a pppd per call, which has no peer here).
//!
//! RSS per session and per tunnel is the least-squares slope of VmRSS over N
//! across the sessions and tunnels workloads. Every wait is bounded; a
//! workload that times out is reported as such and the larger sizes of its
//! kind are skipped. Results: a table on stdout, JSON in
//! `target/bench/<timestamp>.json`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::util;

/// The loopback /24 of the bench's addresses unless `--net` says otherwise.
const DEFAULT_NET: &str = "127.0.0";
const L2TP_PORT: u16 = 1701;
/// SCCRQs per second in the flood.
const FLOOD_RATE: u64 = 1_000;
/// How often the waits read the logs (or monitors) and poll `SystemShow`:
/// rarely enough not to perturb what is measured (the timings themselves
/// come from the daemons' timestamps, not from this polling).
const POLL: Duration = Duration::from_millis(100);
/// A set-up whose counts do not move for this long has stalled.
const STALL: Duration = Duration::from_secs(60);
/// Time limit of one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a daemon may take to answer its first API call.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest `l2tpd check` of a generated configuration we wait for.
const CHECK_LIMIT: Duration = Duration::from_secs(60);
/// Pause between a set-up and an idle window.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
/// Benchmark l2tpd's signalling path on loopback (null data plane): session
/// and tunnel set-up and teardown, RSS, idle CPU, an SCCRQ flood.
pub(crate) struct Args {
    /// Smaller N, a 5 s idle window: a smoke run of every workload.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions of each workload (min and median are reported).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
    /// Run only this workload (a name from --list, e.g. sessions-1000) or
    /// kind (sessions, tunnels, idle, flood, xl2tpd-sessions,
    /// xl2tpd-tunnels); repeatable.
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Idle window of the idle-CPU workload and settling time after the
    /// SCCRQ flood, in seconds [default: 60; --quick: 5].
    #[arg(long, value_name = "SECONDS")]
    pub idle_secs: Option<u64>,
    /// Time limit of each set-up, in seconds [default: 60 plus 5 ms per
    /// session or 20 ms per tunnel].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Also run the tunnel set-ups against xl2tpd as LNS (installed with
    /// apt-get if missing); its call set-ups are skipped, with the reason.
    #[arg(long)]
    pub xl2tpd: bool,
    /// An extra `[system]` key for the LNS, KEY=VALUE with a TOML value
    /// (e.g. max_half_open_tunnels_per_peer=10000); repeatable. Default:
    /// none, the daemon's defaults.
    #[arg(long, value_name = "KEY=VALUE")]
    pub lns_system: Vec<String>,
    /// The same for the LAC (e.g. max_dialing_tunnels=1024).
    #[arg(long, value_name = "KEY=VALUE")]
    pub lac_system: Vec<String>,
    /// A `[tunnel_profile.default]` key of both daemons, KEY=VALUE with a
    /// TOML value (e.g. our_udp_port=0, rx_window_size=64); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub tunnel_profile: Vec<String>,
    /// The loopback /24 whose .2 (LNS), .3 (LAC) and .4 (SCCRQ flood) the
    /// bench uses, e.g. 127.0.1 while something else holds 127.0.0.2:1701.
    #[arg(long, value_name = "A.B.C", default_value = DEFAULT_NET)]
    pub net: String,
    /// Measure with an API Monitor subscriber on each daemon, i.e. the cost
    /// of monitoring too (default: the daemons' log lines, no subscriber).
    #[arg(long)]
    pub monitor: bool,
    /// Use the l2tpd already in target/release instead of building it
    /// (e.g. while the tree does not build); its age is reported.
    #[arg(long)]
    pub no_build: bool,
    /// List the workloads and exit.
    #[arg(long)]
    pub list: bool,
}

// ---- workloads ---------------------------------------------------------------

/// What a workload measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Sessions,
    Tunnels,
    Idle,
    Flood,
    XlSessions,
    XlTunnels,
}

impl Kind {
    const ALL: [Self; 6] = [
        Self::Sessions,
        Self::Tunnels,
        Self::Idle,
        Self::Flood,
        Self::XlSessions,
        Self::XlTunnels,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Tunnels => "tunnels",
            Self::Idle => "idle",
            Self::Flood => "flood",
            Self::XlSessions => "xl2tpd-sessions",
            Self::XlTunnels => "xl2tpd-tunnels",
        }
    }

    fn is_xl2tpd(self) -> bool {
        matches!(self, Self::XlSessions | Self::XlTunnels)
    }

    /// The l2tpd workload an xl2tpd one is compared with.
    fn l2tpd_twin(self) -> Option<Self> {
        match self {
            Self::XlSessions => Some(Self::Sessions),
            Self::XlTunnels => Some(Self::Tunnels),
            _ => None,
        }
    }
}

/// One workload: a kind at one size.
#[derive(Clone, Copy, Debug)]
struct Workload {
    kind: Kind,
    n: usize,
    /// The largest size of its kind (the only one that waits out the linger).
    largest: bool,
}

impl Workload {
    fn name(&self) -> String {
        format!("{}-{}", self.kind.name(), self.n)
    }

    /// The set-up this workload makes (tunnels and calls from the LAC).
    fn shape(&self) -> Shape {
        match self.kind {
            Kind::Sessions | Kind::XlSessions => Shape::Sessions(self.n),
            Kind::Flood => Shape::Sessions(1),
            Kind::Tunnels | Kind::Idle | Kind::XlTunnels => Shape::Tunnels(self.n),
        }
    }
}

/// Sizes of each kind, full or `--quick`.
fn sizes(kind: Kind, quick: bool) -> &'static [usize] {
    match (kind, quick) {
        (Kind::Sessions | Kind::XlSessions, false) => &[1_000, 10_000, 65_535],
        (Kind::Sessions | Kind::XlSessions, true) => &[100, 1_000],
        (Kind::Tunnels | Kind::XlTunnels, false) => &[100, 1_000, 10_000],
        (Kind::Tunnels | Kind::XlTunnels, true) => &[10, 100],
        (Kind::Idle, false) => &[10_000],
        (Kind::Idle, true) => &[100],
        (Kind::Flood, false) => &[20_000],
        (Kind::Flood, true) => &[2_000],
    }
}

/// Every workload, in running order (xl2tpd last).
fn all_workloads(quick: bool) -> Vec<Workload> {
    Kind::ALL
        .iter()
        .flat_map(|&kind| {
            let s = sizes(kind, quick);
            s.iter().map(move |&n| Workload {
                kind,
                n,
                largest: Some(&n) == s.last(),
            })
        })
        .collect()
}

/// The workloads to run: `--only` names or kinds, else all (xl2tpd ones only
/// with `--xl2tpd`).
fn select(all: &[Workload], only: &[String], xl2tpd: bool) -> Result<Vec<Workload>> {
    if only.is_empty() {
        return Ok(all
            .iter()
            .filter(|w| xl2tpd || !w.kind.is_xl2tpd())
            .copied()
            .collect());
    }
    for o in only {
        if !all.iter().any(|w| w.name() == *o || w.kind.name() == o) {
            let names: Vec<String> = all.iter().map(Workload::name).collect();
            bail!(
                "unknown workload `{o}` (one of: {}; or a kind: {})",
                names.join(", "),
                Kind::ALL.map(Kind::name).join(", ")
            );
        }
    }
    Ok(all
        .iter()
        .filter(|w| only.iter().any(|o| w.name() == *o || w.kind.name() == o))
        .copied()
        .collect())
}

/// Tunnels and calls the LAC sets up.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// N calls in one tunnel.
    Sessions(usize),
    /// N tunnels without calls.
    Tunnels(usize),
}

impl Shape {
    fn tunnels(self) -> usize {
        match self {
            Self::Sessions(_) => 1,
            Self::Tunnels(n) => n,
        }
    }

    fn sessions(self) -> usize {
        match self {
            Self::Sessions(n) => n,
            Self::Tunnels(_) => 0,
        }
    }

    /// The number whose set-up is timed.
    fn n(self) -> usize {
        match self {
            Self::Sessions(n) | Self::Tunnels(n) => n,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Sessions(_) => "sessions/s",
            Self::Tunnels(_) => "tunnels/s",
        }
    }

    /// Monitor event kinds of one set-up and one loss.
    fn up_kind(self) -> &'static str {
        match self {
            Self::Sessions(_) => "session_up",
            Self::Tunnels(_) => "tunnel_up",
        }
    }

    fn down_kind(self) -> &'static str {
        match self {
            Self::Sessions(_) => "session_down",
            Self::Tunnels(_) => "tunnel_down",
        }
    }
}

/// The bench's addresses: the LNS (UDP port [`L2TP_PORT`]), the LAC and
/// the source of the SCCRQ flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Addrs {
    lns: Ipv4Addr,
    lac: Ipv4Addr,
    flood: Ipv4Addr,
}

impl Addrs {
    /// .2, .3 and .4 of the loopback /24 `net` (`A.B.C`).
    fn on(net: &str) -> Result<Self> {
        let host = |h: u8| -> Result<Ipv4Addr> {
            let a: Ipv4Addr = format!("{net}.{h}")
                .parse()
                .with_context(|| format!("--net {net}: expected A.B.C, e.g. {DEFAULT_NET}"))?;
            if !a.is_loopback() {
                bail!("--net {net}: not in 127.0.0.0/8");
            }
            Ok(a)
        };
        Ok(Self {
            lns: host(2)?,
            lac: host(3)?,
            flood: host(4)?,
        })
    }
}

// ---- results -----------------------------------------------------------------

/// A bench error that is a time limit reached: reported, and the larger
/// sizes of the kind are skipped.
#[derive(Debug)]
struct TimedOut(String);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out: {}", self.0)
    }
}

impl std::error::Error for TimedOut {}

fn timed_out(what: String) -> anyhow::Error {
    anyhow::Error::new(TimedOut(what))
}

fn is_timeout(e: &anyhow::Error) -> bool {
    e.downcast_ref::<TimedOut>().is_some()
}

/// VmRSS (KiB) of the LNS and the LAC before and after a set-up.
#[derive(Clone, Copy, Debug)]
struct RssPoint {
    n: usize,
    lns: (u64, u64),
    lac: (u64, u64),
}

/// What one repetition measured (kept even when it fails half-way).
#[derive(Default)]
struct Rep {
    metrics: Vec<(String, &'static str, f64)>,
    raw: Map<String, Value>,
    notes: Vec<String>,
    rss: Option<RssPoint>,
}

impl Rep {
    fn put(&mut self, metric: &str, unit: &'static str, value: f64) {
        self.metrics.push((metric.to_owned(), unit, value));
    }

    fn raw(&mut self, key: &str, value: impl Into<Value>) {
        self.raw.insert(key.to_owned(), value.into());
    }

    fn note(&mut self, note: String) {
        eprintln!("    note: {note}");
        self.notes.push(note);
    }
}

/// One metric of a workload over its repetitions.
struct Metric {
    name: String,
    unit: &'static str,
    values: Vec<f64>,
}

/// A workload's repetitions, metrics and failures.
struct WorkloadResult {
    workload: Workload,
    reps: Vec<Value>,
    metrics: Vec<Metric>,
    rss: Vec<RssPoint>,
    failures: Vec<String>,
    notes: Vec<String>,
    skipped: Option<String>,
    /// 1-minute load average at the start of the first and the end of the
    /// last repetition.
    load: Option<(f64, f64)>,
}

impl WorkloadResult {
    fn new(workload: Workload) -> Self {
        Self {
            workload,
            reps: Vec::new(),
            metrics: Vec::new(),
            rss: Vec::new(),
            failures: Vec::new(),
            notes: Vec::new(),
            skipped: None,
            load: None,
        }
    }

    fn add(&mut self, rep: Rep) {
        for (name, unit, value) in rep.metrics {
            match self.metrics.iter_mut().find(|m| m.name == name) {
                Some(m) => m.values.push(value),
                None => self.metrics.push(Metric {
                    name,
                    unit,
                    values: vec![value],
                }),
            }
        }
        self.rss.extend(rep.rss);
        self.notes.extend(rep.notes);
        self.reps.push(Value::Object(rep.raw));
    }

    fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    fn to_json(&self) -> Value {
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                json!({
                    "metric": m.name, "unit": m.unit, "values": m.values,
                    "min": min(&m.values), "median": median(&m.values),
                })
            })
            .collect();
        json!({
            "name": self.workload.name(),
            "kind": self.workload.kind.name(),
            "n": self.workload.n,
            "load1_start": self.load.map(|l| l.0),
            "load1_end": self.load.map(|l| l.1),
            "metrics": metrics,
            "reps": self.reps,
            "failures": self.failures,
            "notes": self.notes,
            "skipped": self.skipped,
        })
    }
}

fn min(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::min)
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => None,
        n if n % 2 == 1 => Some(s[n / 2]),
        n => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// Least-squares slope of `points` (x, y); `None` without two distinct x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

// ---- /proc and small helpers -------------------------------------------------

/// The 1-minute load average.
fn loadavg1() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM), in KiB.
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after "(comm) ": state is field 3, utime 14, stime 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        f.get(i - 3)
            .and_then(|v| v.parse().ok())
            .context("malformed /proc/PID/stat")
    };
    Ok(field(14)? + field(15)?)
}

/// The host's UDP `RcvbufErrors` (`/proc/net/snmp`): datagrams dropped
/// because a socket's receive buffer was full.
fn udp_rcvbuf_errors() -> Option<u64> {
    let text = fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let (_, v) = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")?;
    v.parse().ok()
}

fn clock_ticks_per_sec() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn usec_to_s(usec: u64) -> f64 {
    usec as f64 / 1e6
}

/// Call `step` every `every` until it yields a value; `None` once `limit` has passed.
fn poll<T>(
    limit: Duration,
    every: Duration,
    mut step: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = step()? {
            return Ok(Some(v));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(every);
    }
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Write `text` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The last `lines` lines of a file, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---- processes ---------------------------------------------------------------

/// A process we started, with stderr in a log file; killed when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Result<Self> {
        let file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}: `{}`", util::display(cmd)))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kib(&self) -> Result<u64> {
        status_kib(self.pid(), "VmRSS")
    }

    fn signal(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig)
            .with_context(|| format!("cannot signal {}", self.name))
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// An error unless the process still runs.
    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.exited()? {
            bail!(
                "{} exited ({status}); its log ends:\n{}",
                self.name,
                tail(&self.log, 20)
            );
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Incremental reading of a growing log file, line by line: each read
/// starts at the offset where the last one ended.
struct LogTail {
    file: fs::File,
    /// Bytes of the file consumed so far.
    offset: u64,
    /// The incomplete last line read so far.
    partial: Vec<u8>,
}

impl LogTail {
    /// Look at what is written to `path` from now on.
    fn from_end(path: &Path) -> Result<Self> {
        let mut tail = Self::from_start(path)?;
        tail.offset = tail.file.seek(SeekFrom::End(0))?;
        Ok(tail)
    }

    /// Look at all of `path`, then at what is added.
    fn from_start(path: &Path) -> Result<Self> {
        let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            file,
            offset: 0,
            partial: Vec::new(),
        })
    }

    /// The complete lines written since the last call (or since the start).
    fn new_lines(&mut self) -> Result<Vec<String>> {
        let mut buf = std::mem::take(&mut self.partial);
        self.file.seek(SeekFrom::Start(self.offset))?;
        self.offset += self.file.read_to_end(&mut buf)? as u64;
        let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = buf.split_off(complete);
        Ok(String::from_utf8_lossy(&buf)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

/// Microseconds since the epoch of a log line's leading timestamp
/// (tracing's RFC 3339 UTC, `2026-01-31T12:00:00.123456Z`).
fn log_time_usec(line: &str) -> Option<u64> {
    let ts = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let num = |s: &str| s.parse::<i64>().ok();
    let d: Vec<i64> = date.split('-').map(num).collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = hms.split(':').map(num).collect::<Option<_>>()?;
    let ([y, m, day], [h, mi, s]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    let micros: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if *m <= 2 { y - 1 } else { *y };
    let (era, mp) = (y.div_euclid(400), (m + 9) % 12);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * mp + 2) / 5 + day - 1;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs * 1_000_000 + num(&micros)?).ok()
}

// ---- the management API ------------------------------------------------------

/// Read one NUL-terminated Varlink message; `None` at end of stream.
fn read_message(r: &mut impl BufRead) -> Result<Option<Value>> {
    let mut buf = Vec::new();
    if r.read_until(0, &mut buf)? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&0) {
        buf.pop();
    }
    Ok(Some(
        serde_json::from_slice(&buf).context("a Varlink reply that is not JSON")?,
    ))
}

/// Send a call of `io.l2tpd.METHOD`.
fn send_call(stream: &mut UnixStream, method: &str, params: Value, more: bool) -> Result<()> {
    let mut call = json!({"method": format!("io.l2tpd.{method}"), "parameters": params});
    if more {
        call["more"] = Value::Bool(true);
    }
    let mut bytes = serde_json::to_vec(&call)?;
    bytes.push(0);
    stream.write_all(&bytes)?;
    Ok(())
}

/// One call over a fresh connection: the reply's parameters, or the error.
fn varlink_call(socket: &Path, method: &str, params: Value) -> Result<Value> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(CALL_TIMEOUT))?;
    stream.set_write_timeout(Some(CALL_TIMEOUT))?;
    send_call(&mut stream, method, params, false)?;
    let reply = read_message(&mut BufReader::new(stream))
        .with_context(|| format!("{method}: no reply"))?
        .with_context(|| format!("{method}: connection closed"))?;
    if let Some(err) = reply.get("error") {
        bail!("{method}: {err} {}", reply["parameters"]);
    }
    Ok(reply.get("parameters").cloned().unwrap_or(Value::Null))
}

/// Counts and first/last daemon timestamps of one kind of monitor event.
#[derive(Clone, Copy, Default, Debug)]
struct KindTally {
    count: u64,
    first_usec: u64,
    last_usec: u64,
}

/// What a monitor has seen so far.
#[derive(Clone, Default, Debug)]
struct Tally {
    kinds: HashMap<String, KindTally>,
    /// `lagged` events: the daemon dropped events for us.
    lagged: u64,
}

impl KindTally {
    fn to_json(self) -> Value {
        json!({ "count": self.count, "first_usec": self.first_usec, "last_usec": self.last_usec })
    }
}

impl Tally {
    fn get(&self, kind: &str) -> KindTally {
        self.kinds.get(kind).copied().unwrap_or_default()
    }

    fn count(&self, kind: &str) -> u64 {
        self.get(kind).count
    }

    /// Count a monitor event.
    fn record(&mut self, event: &Value) {
        let kind = event["kind"].as_str().unwrap_or("");
        if kind == "lagged" {
            self.lagged += 1;
        }
        self.record_kind(kind, event["timestamp_usec"].as_u64().unwrap_or(0));
    }

    fn record_kind(&mut self, kind: &str, usec: u64) {
        let k = self.kinds.entry(kind.to_owned()).or_default();
        if k.count == 0 {
            k.first_usec = usec;
        }
        k.count += 1;
        k.last_usec = k.last_usec.max(usec);
    }
}

/// Log messages of l2tpd (at info) and the event kind each stands for.
const LOG_EVENTS: &[(&str, &str)] = &[
    (" INFO tunnel up ", "tunnel_up"),
    (" INFO tunnel down: ", "tunnel_down"),
    (" INFO session up ", "session_up"),
    (" INFO session down: ", "session_down"),
    (" INFO SIGHUP: reloading", "reload_begin"),
    (" INFO configuration reloaded", "reloaded"),
    (" INFO l2tpd stopped", "stopped"),
];

/// The event kind and timestamp of an l2tpd log line, if it is one of
/// [`LOG_EVENTS`].
fn log_event(line: &str) -> Option<(&'static str, u64)> {
    let (_, kind) = LOG_EVENTS.iter().find(|(m, _)| line.contains(m))?;
    Some((kind, log_time_usec(line)?))
}

/// The events of one l2tpd from its log and, with `--monitor`, from an API
/// monitor. The daemon drops monitor events for a subscriber that falls
/// behind (it then sends `lagged`); its log is complete and carries the same
/// timestamps, so the log's tally is used instead once the monitor lagged.
struct Watch {
    monitor: Option<Monitor>,
    log: LogTail,
    from_log: Tally,
}

impl Watch {
    /// Tail the daemon's log from now on; subscribe a monitor if `monitor`.
    fn start(d: &L2tpd, monitor: bool) -> Result<Self> {
        Ok(Self {
            log: LogTail::from_end(&d.proc.log)?,
            monitor: monitor.then(|| Monitor::start(&d.socket)).transpose()?,
            from_log: Tally::default(),
        })
    }

    /// Where [`Watch::events`] takes its events from.
    fn source(&self) -> &'static str {
        match &self.monitor {
            None => "log",
            Some(m) if m.tally().lagged == 0 => "monitor",
            Some(_) => "log (monitor lagged)",
        }
    }

    /// Everything the log says so far (also the kinds no monitor event has).
    fn log_tally(&mut self) -> Result<&Tally> {
        for line in self.log.new_lines()? {
            if let Some((kind, usec)) = log_event(&line) {
                self.from_log.record_kind(kind, usec);
            }
        }
        Ok(&self.from_log)
    }

    /// The log's tally; with a monitor, the monitor's until it lagged.
    fn events(&mut self) -> Result<Tally> {
        let m = self.monitor.as_ref().map(Monitor::tally);
        let log = self.log_tally()?;
        Ok(match m {
            Some(m) if m.lagged == 0 => m,
            Some(m) => Tally {
                lagged: m.lagged,
                ..log.clone()
            },
            None => log.clone(),
        })
    }
}

/// An `io.l2tpd.Monitor` subscription, tallied by a thread of its own.
struct Monitor {
    tally: Arc<Mutex<Tally>>,
    stream: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Subscribe; returns once the daemon confirmed (`subscribed`).
    fn start(socket: &Path) -> Result<Self> {
        let mut stream = UnixStream::connect(socket)
            .with_context(|| format!("connecting to {}", socket.display()))?;
        stream.set_read_timeout(Some(START_TIMEOUT))?;
        send_call(&mut stream, "Monitor", json!({}), true)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let first = read_message(&mut reader)?.context("Monitor: connection closed")?;
        if first["parameters"]["event"]["kind"] != "subscribed" {
            bail!("Monitor: unexpected first reply {first}");
        }
        stream.set_read_timeout(None)?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let t = tally.clone();
        let thread = thread::spawn(move || {
            while let Ok(Some(msg)) = read_message(&mut reader) {
                t.lock()
                    .expect("tally lock")
                    .record(&msg["parameters"]["event"]);
            }
        });
        Ok(Self {
            tally,
            stream,
            thread: Some(thread),
        })
    }

    fn tally(&self) -> Tally {
        self.tally.lock().expect("tally lock").clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- l2tpd -------------------------------------------------------------------

/// Paths and settings shared by every workload.
struct Env {
    l2tpd: PathBuf,
    /// Where each repetition gets its directory.
    work: PathBuf,
    idle: Duration,
    timeout: Option<Duration>,
    clk_tck: f64,
    /// Extra `[system]` lines of the LNS (`--lns-system`).
    lns_system: String,
    /// Extra `[system]` lines of the LAC (`--lac-system`).
    lac_system: String,
    /// Extra `[tunnel_profile.default]` lines of both daemons (`--tunnel-profile`).
    tunnel_profile: String,
    /// xl2tpd, when its workloads run.
    xl2tpd: Option<PathBuf>,
    /// An API monitor on each l2tpd (`--monitor`).
    monitor: bool,
    addrs: Addrs,
}

impl Env {
    /// Time limit of a set-up of `shape`.
    fn setup_limit(&self, shape: Shape) -> Duration {
        self.timeout.unwrap_or_else(|| {
            let per = match shape {
                Shape::Sessions(_) => 5,
                Shape::Tunnels(_) => 20,
            };
            Duration::from_secs(60) + Duration::from_millis(per * shape.n() as u64)
        })
    }
}

/// A running l2tpd with its configuration file and API socket.
struct L2tpd {
    proc: Proc,
    config: PathBuf,
    socket: PathBuf,
}

impl L2tpd {
    /// Start `l2tpd --config DIR/NAME.toml` on `config(socket path)` and
    /// wait until its API answers.
    fn start(env: &Env, dir: &Path, name: &str, config: impl Fn(&Path) -> String) -> Result<Self> {
        let socket = dir.join(format!("{name}.sock"));
        let path = dir.join(format!("{name}.toml"));
        write_atomic(&path, &config(&socket))?;
        let mut cmd = Command::new(&env.l2tpd);
        cmd.arg("--config").arg(&path).args(["--log", "info"]);
        let proc = Proc::spawn(name, &mut cmd, dir.join(format!("{name}.log")))?;
        let mut d = Self {
            proc,
            config: path,
            socket,
        };
        let ready = poll(START_TIMEOUT, POLL, || {
            d.proc.check_alive()?;
            Ok(d.call("SystemShow", json!({})).ok())
        })?;
        if ready.is_none() {
            bail!(
                "{name}: API not answering after {START_TIMEOUT:?}; log:\n{}",
                tail(&d.proc.log, 20)
            );
        }
        Ok(d)
    }

    fn call(&self, method: &str, params: Value) -> Result<Value> {
        varlink_call(&self.socket, method, params)
    }

    /// Tunnels and sessions of any state (closing and lingering included).
    fn counts(&self) -> Result<(u64, u64)> {
        let v = self.call("SystemShow", json!({}))?;
        let count = |k: &str| v["system"][k].as_u64().context("SystemShow: no counts");
        Ok((count("tunnels")?, count("sessions")?))
    }
}

/// The LNS's configuration, with `--lns-system` and `--tunnel-profile`.
fn lns_config(env: &Env, socket: &Path) -> String {
    format!(
        "[system]\nlisten_addr = \"{}\"\nudp_port = {L2TP_PORT}\ndata_plane = \"null\"\n\
         api_socket = {}\n{}\n[tunnel_profile.default]\nhost_name = \"bench-lns\"\n{}",
        env.addrs.lns,
        toml_str(&socket.display().to_string()),
        env.lns_system,
        env.tunnel_profile,
    )
}

/// The LAC's configuration, with `--lac-system` and `--tunnel-profile`.
fn lac_config(env: &Env, socket: &Path) -> String {
    format!(
        "[system]\nlisten_addr = \"{}\"\nudp_port = {L2TP_PORT}\ndata_plane = \"null\"\n\
         deny_remote_tunnel_creates = true\napi_socket = {}\n{}\n\
         [tunnel_profile.default]\nhost_name = \"bench-lac\"\n{}",
        env.addrs.lac,
        toml_str(&socket.display().to_string()),
        env.lac_system,
        env.tunnel_profile,
    )
}

/// `KEY=VALUE` options (`--lns-system`, `--lac-system`, `--tunnel-profile`)
/// as TOML lines (`KEY = VALUE`).
fn system_lines(pairs: &[String]) -> Result<String> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(format!("{} = {}\n", k.trim(), v.trim())),
            _ => bail!("{p}: expected KEY=VALUE"),
        })
        .collect()
}

/// The `[tunnel.tK]` tables (with `tunnel_keys` in each) and the
/// `[tunnel.t0.session.sK]` tables of `shape`.
fn tunnels_config(addrs: &Addrs, shape: Shape, tunnel_keys: &str) -> String {
    let mut s = String::with_capacity(40 * (shape.tunnels() + shape.sessions()));
    for t in 0..shape.tunnels() {
        s.push_str(&format!(
            "\n[tunnel.t{t}]\npeer_addr = \"{}\"\n{tunnel_keys}",
            addrs.lns
        ));
    }
    for k in 0..shape.sessions() {
        s.push_str(&format!("[tunnel.t0.session.s{k}]\n"));
    }
    s
}

/// An LNS and an LAC (or xl2tpd as LNS), with a [`Watch`] on each l2tpd.
struct Pair {
    lac: L2tpd,
    lac_watch: Watch,
    lns: Lns,
}

/// The LNS of a pair.
enum Lns {
    L2tpd { d: L2tpd, watch: Box<Watch> },
    Xl2tpd(Proc),
}

impl Lns {
    fn proc(&mut self) -> &mut Proc {
        match self {
            Self::L2tpd { d, .. } => &mut d.proc,
            Self::Xl2tpd(p) => p,
        }
    }

    /// The l2tpd LNS; an error for xl2tpd.
    fn l2tpd(&self) -> Result<&L2tpd> {
        match self {
            Self::L2tpd { d, .. } => Ok(d),
            Self::Xl2tpd(_) => bail!("the LNS is xl2tpd, which has no API"),
        }
    }
}

impl Pair {
    /// Start an l2tpd LNS and an l2tpd LAC without tunnels in `dir`.
    fn start(env: &Env, dir: &Path) -> Result<Self> {
        let d = L2tpd::start(env, dir, "lns", |sock| lns_config(env, sock))?;
        let watch = Box::new(Watch::start(&d, env.monitor)?);
        Self::with_lns(env, dir, Lns::L2tpd { d, watch })
    }

    fn with_lns(env: &Env, dir: &Path, lns: Lns) -> Result<Self> {
        let lac = L2tpd::start(env, dir, "lac", |sock| lac_config(env, sock))?;
        let lac_watch = Watch::start(&lac, env.monitor)?;
        Ok(Self {
            lac,
            lac_watch,
            lns,
        })
    }

    fn check_alive(&mut self) -> Result<()> {
        self.lac.proc.check_alive()?;
        self.lns.proc().check_alive()
    }

    /// VmRSS of the LNS and the LAC, KiB.
    fn rss(&mut self) -> Result<(u64, u64)> {
        Ok((self.lns.proc().rss_kib()?, self.lac.proc.rss_kib()?))
    }

    /// utime+stime of the LNS and the LAC, clock ticks.
    fn cpu_ticks(&mut self) -> Result<(u64, u64)> {
        Ok((
            cpu_ticks(self.lns.proc().pid())?,
            cpu_ticks(self.lac.proc.pid())?,
        ))
    }

    /// Where the events of the LNS and of the LAC come from (`log`,
    /// `monitor`, `log (monitor lagged)`; xl2tpd: `xl2tpd`).
    fn sources(&self) -> Value {
        let lns = match &self.lns {
            Lns::L2tpd { watch, .. } => watch.source(),
            Lns::Xl2tpd(_) => "xl2tpd",
        };
        json!({ "lns": lns, "lac": self.lac_watch.source() })
    }

    /// The events of the LNS and of the LAC so far (xl2tpd: the LAC's
    /// stand for both).
    fn events(&mut self) -> Result<(Tally, Tally)> {
        let lac = self.lac_watch.events()?;
        let lns = match &mut self.lns {
            Lns::L2tpd { watch, .. } => watch.events()?,
            Lns::Xl2tpd(_) => lac.clone(),
        };
        Ok((lns, lac))
    }
}

// ---- set-up and teardown -----------------------------------------------------

/// Time `l2tpd check` (load, validate, print the effective configuration)
/// on the LAC's configuration file; `None` when it takes longer than
/// [`CHECK_LIMIT`] (it is killed: the daemon's own reload is timed anyway).
fn time_check(env: &Env, dir: &Path, config: &Path) -> Result<Option<f64>> {
    let errors = dir.join("check.err");
    let mut cmd = Command::new(&env.l2tpd);
    cmd.args(["check", "--config"]).arg(config);
    let mut check = Proc::spawn("l2tpd check", &mut cmd, errors.clone())?;
    let t = Instant::now();
    let every = Duration::from_millis(1);
    let Some(status) = poll(CHECK_LIMIT, every, || check.exited())? else {
        return Ok(None);
    };
    if !status.success() {
        bail!(
            "l2tpd check refused the generated configuration:\n{}",
            tail(&errors, 20)
        );
    }
    Ok(Some(t.elapsed().as_secs_f64()))
}

/// Give the LAC the tunnels and calls of `shape` (configuration file and
/// SIGHUP) and wait until all are established on both sides; record the
/// set-up metrics in `rep`.
fn establish(
    env: &Env,
    pair: &mut Pair,
    shape: Shape,
    tunnel_keys: &str,
    rep: &mut Rep,
) -> Result<()> {
    let limit = env.setup_limit(shape);
    let (lns0, lac0) = pair.rss()?;
    let cpu0 = pair.cpu_ticks()?;
    let drops0 = udp_rcvbuf_errors();
    let sighup_usec = reload_lac(env, pair, shape, tunnel_keys, limit, rep)?;
    let (lns_up, lac_up) = wait_up(pair, shape, limit)?;
    let first = lns_up.first_usec.min(lac_up.first_usec);
    let last = lns_up.last_usec.max(lac_up.last_usec);
    let (lns1, lac1) = pair.rss()?;
    let cpu1 = pair.cpu_ticks()?;
    let drops = drops0
        .zip(udp_rcvbuf_errors())
        .map(|(a, b)| b.saturating_sub(a));
    rep.rss = Some(RssPoint {
        n: shape.n(),
        lns: (lns0, lns1),
        lac: (lac0, lac1),
    });
    verify(pair, shape)?;
    let n = shape.n() as f64;
    let span = usec_to_s(last.saturating_sub(first));
    let total = usec_to_s(last.saturating_sub(sighup_usec));
    rep.put("setup rate", shape.unit(), n / span.max(1e-6));
    // Each side's own first→last: the LAC's calls come up (ICCN sent)
    // before the LNS's (ICCN received), so either side alone looks faster.
    let side_rate =
        |t: KindTally| n / usec_to_s(t.last_usec.saturating_sub(t.first_usec)).max(1e-6);
    if pair.lns.l2tpd().is_ok() {
        rep.put("setup rate, LNS log alone", shape.unit(), side_rate(lns_up));
    }
    rep.put("setup rate, LAC log alone", shape.unit(), side_rate(lac_up));
    rep.put("setup first→last", "s", span);
    rep.put("setup SIGHUP→all up", "s", total);
    rep.put("setup CPU LNS", "s", (cpu1.0 - cpu0.0) as f64 / env.clk_tck);
    rep.put("setup CPU LAC", "s", (cpu1.1 - cpu0.1) as f64 / env.clk_tck);
    rep.put("RSS LNS after setup", "KiB", lns1 as f64);
    rep.put("RSS LAC after setup", "KiB", lac1 as f64);
    if let Some(d) = drops {
        rep.put("UDP rcvbuf drops (host)", "datagrams", d as f64);
    }
    record_retransmits(pair, rep)?;
    rep.raw("timing_source", pair.sources());
    rep.raw("sighup_usec", sighup_usec);
    rep.raw(
        "setup_up_events",
        json!({ "lns": lns_up.to_json(), "lac": lac_up.to_json() }),
    );
    eprintln!(
        "    {} {}s up in {span:.3} s ({:.0}/s), {total:.3} s after SIGHUP; \
         RSS LNS {lns0}→{lns1} KiB, LAC {lac0}→{lac1} KiB",
        shape.n(),
        shape.up_kind().trim_end_matches("_up"),
        n / span.max(1e-6),
    );
    Ok(())
}

/// The control-message retransmissions of each l2tpd so far (a fresh pair:
/// those of the set-up).
fn record_retransmits(pair: &Pair, rep: &mut Rep) -> Result<()> {
    let retransmits = |d: &L2tpd| -> Result<f64> {
        let v = d.call("SystemCounters", json!({}))?;
        let n = v["counters"]["retransmits"].as_u64();
        Ok(n.context("SystemCounters: no retransmits")? as f64)
    };
    if let Ok(d) = pair.lns.l2tpd() {
        rep.put("retransmits LNS", "messages", retransmits(d)?);
    }
    rep.put("retransmits LAC", "messages", retransmits(&pair.lac)?);
    Ok(())
}

/// Write `shape` into the LAC's configuration, time `l2tpd check` on it,
/// send SIGHUP and wait for the reload; the SIGHUP time (µs since the epoch).
fn reload_lac(
    env: &Env,
    pair: &mut Pair,
    shape: Shape,
    tunnel_keys: &str,
    limit: Duration,
    rep: &mut Rep,
) -> Result<u64> {
    let text = lac_config(env, &pair.lac.socket) + &tunnels_config(&env.addrs, shape, tunnel_keys);
    rep.raw("config_bytes", text.len());
    write_atomic(&pair.lac.config, &text)?;
    let dir = pair.lac.config.parent().unwrap_or(Path::new("."));
    match time_check(env, dir, &pair.lac.config)? {
        Some(s) => rep.put("config check", "s", s),
        None => rep.note(format!("l2tpd check took over {CHECK_LIMIT:?}: killed")),
    }
    let sighup_usec = now_usec();
    pair.lac.proc.signal(nix::sys::signal::Signal::SIGHUP)?;
    let reloaded = poll(limit, POLL, || {
        pair.lac.proc.check_alive()?;
        let log = pair.lac_watch.log_tally()?;
        let (begun, done) = (log.get("reload_begin"), log.get("reloaded"));
        Ok((done.count > 0).then_some((begun, done)))
    })?;
    match reloaded {
        None => Err(timed_out(format!(
            "the LAC did not reload within {limit:?}"
        ))),
        // From the daemon's own log lines: SIGHUP handled to reload done.
        Some((begun, done)) => {
            if begun.count > 0 {
                let s = usec_to_s(done.last_usec.saturating_sub(begun.last_usec));
                rep.put("config reload", "s", s);
            }
            Ok(sighup_usec)
        }
    }
}

/// Wait until `shape` is up on both sides: the up events of the LNS and of
/// the LAC (count, first and last timestamps).
fn wait_up(pair: &mut Pair, shape: Shape, limit: Duration) -> Result<(KindTally, KindTally)> {
    let n = shape.n() as u64;
    let (up, down) = (shape.up_kind(), shape.down_kind());
    let start = Instant::now();
    let mut progress = (start, (0, 0));
    loop {
        pair.check_alive()?;
        let (lns, lac) = pair.events()?;
        let seen = (lns.count(up), lac.count(up));
        if seen.0 >= n && seen.1 >= n {
            return Ok((lns.get(up), lac.get(up)));
        }
        let state = format!(
            "{}/{n} up on the LNS, {}/{n} on the LAC, {} and {} lost",
            seen.0,
            seen.1,
            lns.count(down),
            lac.count(down)
        );
        if seen != progress.1 {
            progress = (Instant::now(), seen);
        } else if progress.0.elapsed() > STALL.min(limit) {
            return Err(timed_out(format!("stalled for {STALL:?}: {state}")));
        }
        if start.elapsed() > limit {
            return Err(timed_out(format!(
                "set-up not done after {limit:?}: {state}"
            )));
        }
        thread::sleep(POLL);
    }
}

/// Check that nothing of `shape` went down and that each side holds exactly
/// its tunnels and calls (SystemShow; the lists would cost the daemon too
/// much at these sizes).
fn verify(pair: &mut Pair, shape: Shape) -> Result<()> {
    let want = (shape.tunnels() as u64, shape.sessions() as u64);
    let (lns, lac) = pair.events()?;
    let lost = lns.count(shape.down_kind()) + lac.count(shape.down_kind());
    let lac_counts = pair.lac.counts()?;
    let lns_counts = match &pair.lns {
        Lns::L2tpd { d, .. } => d.counts()?,
        Lns::Xl2tpd(_) => want,
    };
    if lost > 0 || lac_counts != want || lns_counts != want {
        bail!(
            "after set-up: {lost} lost; (tunnels, sessions) on the LNS {lns_counts:?}, \
             on the LAC {lac_counts:?}, expected {want:?}"
        );
    }
    Ok(())
}

/// Teardown progress: seconds after SIGTERM.
#[derive(Default)]
struct Teardown {
    lac_exit: Option<(f64, ExitStatus)>,
    /// Every tunnel down (its last `tunnel down` line), on the LNS and on
    /// the LAC.
    tunnels_down: Sides,
    /// Every session down (its last `session down` line), likewise.
    sessions_down: Sides,
    empty: Option<f64>,
}

/// A time on the LNS and one on the LAC.
#[derive(Default)]
struct Sides {
    lns: Option<f64>,
    lac: Option<f64>,
}

impl Sides {
    /// Set each side's time once its `tally` reaches `want` (`want` > 0).
    fn update(&mut self, want: u64, lns: KindTally, lac: KindTally, since: impl Fn(u64) -> f64) {
        for (at, t) in [(&mut self.lns, lns), (&mut self.lac, lac)] {
            if at.is_none() && want > 0 && t.count >= want {
                *at = Some(since(t.last_usec));
            }
        }
    }
}

/// SIGTERM to the LAC; time until each side has every session and tunnel
/// down (from the logs), (with `wait_empty`) until the LNS holds no tunnel
/// at all (`SystemShow`), and until the LAC exits.
fn teardown(pair: &mut Pair, shape: Shape, wait_empty: bool, rep: &mut Rep) -> Result<()> {
    let limit = Duration::from_secs(if wait_empty { 120 } else { 60 })
        + Duration::from_millis(2 * shape.n() as u64);
    let t0 = now_usec();
    let since = move |usec: u64| usec_to_s(usec.saturating_sub(t0));
    pair.lac.proc.signal(nix::sys::signal::Signal::SIGTERM)?;
    let mut td = Teardown::default();
    let (tunnels, sessions) = (shape.tunnels() as u64, shape.sessions() as u64);
    let done = poll(limit, POLL, || {
        if td.lac_exit.is_none()
            && let Some(status) = pair.lac.proc.exited()?
        {
            // The daemon's last log line is more precise than our polling.
            let stopped = pair.lac_watch.log_tally()?.get("stopped");
            let at = if stopped.count > 0 {
                stopped.last_usec
            } else {
                now_usec()
            };
            td.lac_exit = Some((since(at), status));
        }
        let (lns, lac) = pair.events()?;
        let down = |k: &str| (lns.get(k), lac.get(k));
        let (t, s) = (down("tunnel_down"), down("session_down"));
        td.tunnels_down.update(tunnels, t.0, t.1, since);
        td.sessions_down.update(sessions, s.0, s.1, since);
        if wait_empty
            && td.tunnels_down.lns.is_some()
            && td.empty.is_none()
            && pair.lns.l2tpd()?.counts()?.0 == 0
        {
            td.empty = Some(since(now_usec()));
        }
        let finished = td.lac_exit.is_some()
            && td.tunnels_down.lns.is_some()
            && (td.empty.is_some() || !wait_empty);
        Ok(finished.then_some(()))
    })?;
    let (lns, lac) = pair.events()?;
    let kinds = |t: &Tally| {
        json!({
            "tunnel_down": t.get("tunnel_down").to_json(),
            "session_down": t.get("session_down").to_json(),
        })
    };
    rep.raw("sigterm_usec", t0);
    rep.raw(
        "teardown_down_events",
        json!({ "lns": kinds(&lns), "lac": kinds(&lac) }),
    );
    record_teardown(&td, limit, rep);
    if td.lac_exit.is_some() {
        for (what, want) in [("tunnel_down", tunnels), ("session_down", sessions)] {
            let n = lac.count(what);
            if n < want {
                rep.note(format!("the LAC logged {n}/{want} {what} before it exited"));
            }
        }
    }
    if done.is_none() {
        return Err(timed_out(format!(
            "teardown not done after {limit:?}: LNS saw {}/{tunnels} tunnels and \
             {}/{sessions} sessions down",
            lns.count("tunnel_down"),
            lns.count("session_down"),
        )));
    }
    Ok(())
}

/// Put the teardown times in `rep`.
fn record_teardown(td: &Teardown, limit: Duration, rep: &mut Rep) {
    let times = [
        ("teardown: LNS sessions down", td.sessions_down.lns),
        ("teardown: LNS tunnels down", td.tunnels_down.lns),
        ("teardown: LNS no tunnel left", td.empty),
        ("teardown: LAC sessions down", td.sessions_down.lac),
        ("teardown: LAC tunnels down", td.tunnels_down.lac),
    ];
    for (metric, v) in times {
        if let Some(s) = v {
            rep.put(metric, "s", s);
        }
    }
    match td.lac_exit {
        Some((s, status)) => {
            rep.put("teardown: LAC exit", "s", s);
            rep.raw("lac_exit_status", status.to_string());
            if !status.success() {
                rep.note(format!("the LAC exited with {status} after SIGTERM"));
            }
        }
        None => rep.note(format!("the LAC did not exit within {limit:?} of SIGTERM")),
    }
    eprintln!(
        "    teardown: down after {} s on the LNS, {} s on the LAC; no tunnel left after {} s, \
         LAC exit after {} s",
        fmt_opt(td.tunnels_down.lns),
        fmt_opt(td.tunnels_down.lac),
        fmt_opt(td.empty),
        fmt_opt(td.lac_exit.map(|e| e.0))
    );
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

// ---- the workloads -----------------------------------------------------------

/// Run one repetition of `w` in `dir`.
fn run_rep(env: &Env, w: &Workload, dir: &Path, rep: &mut Rep) -> Result<()> {
    match w.kind {
        Kind::Sessions | Kind::Tunnels => {
            let mut pair = Pair::start(env, dir)?;
            establish(env, &mut pair, w.shape(), "", rep)?;
            teardown(&mut pair, w.shape(), w.largest, rep)
        }
        Kind::Idle => idle_rep(env, dir, w.shape(), rep),
        Kind::Flood => flood_rep(env, dir, w.n, rep),
        Kind::XlSessions | Kind::XlTunnels => xl2tpd_rep(env, dir, w.shape(), rep),
    }
}

/// Start a pair and set `shape` up for a workload that measures something
/// else: the set-up's own metrics stay out of `rep` (its notes do not).
fn set_up_pair(
    env: &Env,
    dir: &Path,
    shape: Shape,
    tunnel_keys: &str,
    rep: &mut Rep,
) -> Result<Pair> {
    let mut pair = Pair::start(env, dir)?;
    let mut setup = Rep::default();
    let result = establish(env, &mut pair, shape, tunnel_keys, &mut setup);
    rep.notes.append(&mut setup.notes);
    result.map(|()| pair)
}

/// CPU of both daemons over the idle window with `shape` up.
fn idle_rep(env: &Env, dir: &Path, shape: Shape, rep: &mut Rep) -> Result<()> {
    let mut pair = set_up_pair(env, dir, shape, "", rep)?;
    thread::sleep(SETTLE);
    let (lns_rss, lac_rss) = pair.rss()?;
    rep.put("RSS LNS", "KiB", lns_rss as f64);
    rep.put("RSS LAC", "KiB", lac_rss as f64);
    let before = pair.cpu_ticks()?;
    let t = Instant::now();
    watch_rss(&mut pair, env.idle)?;
    let secs = t.elapsed().as_secs_f64();
    let after = pair.cpu_ticks()?;
    let pct = |a: u64, b: u64| (b - a) as f64 / env.clk_tck / secs * 100.0;
    let (lns_cpu, lac_cpu) = (pct(before.0, after.0), pct(before.1, after.1));
    rep.put("idle CPU LNS", "%", lns_cpu);
    rep.put("idle CPU LAC", "%", lac_cpu);
    rep.raw("idle_window_s", secs);
    let (lns, lac) = pair.events()?;
    let (lns_down, lac_down) = (lns.count("tunnel_down"), lac.count("tunnel_down"));
    if lns_down + lac_down > 0 {
        rep.note(format!(
            "tunnels went down while idle: {lns_down} on the LNS, {lac_down} on the LAC"
        ));
    }
    eprintln!("    idle {secs:.0} s: CPU LNS {lns_cpu:.2} %, LAC {lac_cpu:.2} %");
    Ok(())
}

/// The ids and states of the LAC's tunnel `t0` and its call, and of the
/// LNS's side of them (nulls for what is gone).
fn call_ids(pair: &Pair) -> Value {
    let side = |d: &L2tpd, tunnel: &str| -> Value {
        let Ok(v) = d.call("TunnelShow", json!({ "tunnel": tunnel })) else {
            return Value::Null;
        };
        let t = &v["tunnel"];
        let s = &t["sessions"][0];
        json!({
            "tunnel": t["id"], "peer_tunnel": t["peer_id"], "tunnel_state": t["state"],
            "session": s["id"], "peer_session": s["peer_id"], "session_state": s["state"],
        })
    };
    let lac = side(&pair.lac, "t0");
    let lns = match (&pair.lns, lac["peer_tunnel"].as_u64()) {
        (Lns::L2tpd { d, .. }, Some(id)) => side(d, &id.to_string()),
        _ => Value::Null,
    };
    json!({ "lac": lac, "lns": lns })
}

/// Whether `ids` shows both sides of the tunnel and call established.
fn all_established(ids: &Value) -> bool {
    ["lac", "lns"].iter().all(|s| {
        ids[s]["tunnel_state"] == "established" && ids[s]["session_state"] == "established"
    })
}

/// A small xorshift generator for the flood's tunnel ids.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        Self((now_usec() ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A non-zero 16-bit id.
    fn tunnel_id(&mut self) -> u16 {
        loop {
            let id = (self.next() >> 24) as u16;
            if id != 0 {
                return id;
            }
        }
    }
}

/// An RFC 2661 SCCRQ (§6.1): header T=1 L=1 S=1 Ver=2, tunnel 0, session 0,
/// Ns=0, Nr=0; mandatory AVPs Message Type, Protocol Version 1.0, Host Name,
/// Framing Capabilities and Assigned Tunnel ID.
fn sccrq(assigned_tunnel_id: u16) -> Vec<u8> {
    fn avp(m: &mut Vec<u8>, attribute: u16, value: &[u8]) {
        let len = 6 + value.len() as u16;
        m.extend_from_slice(&(0x8000 | len).to_be_bytes()); // M=1, H=0
        m.extend_from_slice(&0u16.to_be_bytes()); // IETF
        m.extend_from_slice(&attribute.to_be_bytes());
        m.extend_from_slice(value);
    }
    let mut m = vec![0xc8, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    avp(&mut m, 0, &1u16.to_be_bytes()); // Message Type: SCCRQ
    avp(&mut m, 2, &[1, 0]); // Protocol Version 1, revision 0
    avp(&mut m, 7, b"bench-flood"); // Host Name
    avp(&mut m, 3, &3u32.to_be_bytes()); // Framing Capabilities: sync, async
    avp(&mut m, 9, &assigned_tunnel_id.to_be_bytes()); // Assigned Tunnel ID
    let len = (m.len() as u16).to_be_bytes();
    m[2..4].copy_from_slice(&len);
    m
}

/// Counts what comes back to the flood's socket until stopped.
struct ReplyCounter {
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReplyCounter {
    fn start(socket: &UdpSocket) -> Result<Self> {
        let sock = socket.try_clone()?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if sock.recv(&mut buf).is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Self {
            count,
            stop,
            thread: Some(thread),
        })
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for ReplyCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `n` SCCRQs at [`FLOOD_RATE`] against an LNS carrying one established call.
fn flood_rep(env: &Env, dir: &Path, n: usize, rep: &mut Rep) -> Result<()> {
    let keys = "hello_timeout = \"2s\"\n";
    let mut pair = set_up_pair(env, dir, Shape::Sessions(1), keys, rep)?;
    let before = call_ids(&pair);
    if !all_established(&before) {
        bail!("the tunnel and call are not established before the flood: {before}");
    }
    let pid = pair.lns.proc().pid();
    let (rss0, cpu0) = (status_kib(pid, "VmRSS")?, cpu_ticks(pid)?);
    let socket = UdpSocket::bind((env.addrs.flood, 0)).context("binding the flood socket")?;
    let replies = ReplyCounter::start(&socket)?;
    let start = Instant::now();
    let target = SocketAddr::from((env.addrs.lns, L2TP_PORT));
    let peak = send_flood(&mut pair, &socket, target, n, rep)?;
    let flood_s = start.elapsed().as_secs_f64();
    let cpu_pct = (cpu_ticks(pid)? - cpu0) as f64 / env.clk_tck / flood_s * 100.0;
    let tunnels_end = pair.lns.l2tpd()?.counts()?.0;
    let settle_peak = watch_rss(&mut pair, env.idle)?;
    let rss_after = status_kib(pid, "VmRSS")?;
    let lns = pair.lns.l2tpd()?;
    let tunnels_after = lns.counts()?.0;
    rep.raw(
        "lns_counters",
        lns.call("SystemCounters", json!({}))?["counters"].take(),
    );
    let after = call_ids(&pair);
    let (lns_events, lac_events) = pair.events()?;
    let lost = (
        lns_events.count("session_down"),
        lac_events.count("session_down"),
    );
    let survived = before == after && all_established(&after) && lost.1 == 0;
    rep.put("survived", "bool", if survived { 1.0 } else { 0.0 });
    rep.put("flood duration", "s", flood_s);
    rep.put("LNS CPU during flood", "%", cpu_pct);
    rep.put("LNS RSS before flood", "KiB", rss0 as f64);
    rep.put("LNS RSS peak during flood", "KiB", peak as f64);
    rep.put("LNS RSS peak after flood", "KiB", settle_peak as f64);
    rep.put("LNS RSS after settling", "KiB", rss_after as f64);
    rep.put("LNS tunnels at flood end", "tunnels", tunnels_end as f64);
    rep.put(
        "LNS tunnels after settling",
        "tunnels",
        tunnels_after as f64,
    );
    rep.put("replies to the flood", "datagrams", replies.count() as f64);
    rep.raw("ids_before", before.clone());
    rep.raw("ids_after", after.clone());
    rep.raw("lns_vmhwm_kib", status_kib(pid, "VmHWM")?);
    rep.raw("settle_s", env.idle.as_secs_f64());
    if !survived {
        rep.note(format!(
            "the established tunnel/call did not survive the flood: before {before}, \
             after {after}, session_down (LNS, LAC): {lost:?}"
        ));
    }
    eprintln!(
        "    flood: {n} SCCRQs in {flood_s:.1} s, survived: {survived}, LNS RSS {rss0}→peak \
         {peak}→{rss_after} KiB, tunnels {tunnels_end}→{tunnels_after}, {} replies",
        replies.count()
    );
    Ok(())
}

/// Send `n` SCCRQs with random Assigned Tunnel IDs to the LNS at `target`, paced at
/// [`FLOOD_RATE`]; the LNS's VmRSS peak (sampled every 100 ms), KiB.
fn send_flood(
    pair: &mut Pair,
    socket: &UdpSocket,
    target: SocketAddr,
    n: usize,
    rep: &mut Rep,
) -> Result<u64> {
    let pid = pair.lns.proc().pid();
    let mut rng = XorShift::seeded();
    let (mut peak, mut send_errors) = (status_kib(pid, "VmRSS")?, 0u64);
    let limit = Duration::from_micros(n as u64 * 2_000_000 / FLOOD_RATE) + Duration::from_secs(10);
    let start = Instant::now();
    let mut next_sample = start;
    for i in 0..n as u64 {
        let due = start + Duration::from_micros(i * 1_000_000 / FLOOD_RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if start.elapsed() > limit {
            return Err(timed_out(format!(
                "sending: only {i} of {n} SCCRQs sent in {limit:?}"
            )));
        }
        if socket.send_to(&sccrq(rng.tunnel_id()), target).is_err() {
            send_errors += 1;
        }
        if Instant::now() >= next_sample {
            pair.check_alive()?;
            peak = peak.max(status_kib(pid, "VmRSS")?);
            next_sample += Duration::from_millis(100);
        }
    }
    rep.raw("send_errors", send_errors);
    Ok(peak.max(status_kib(pid, "VmRSS")?))
}

/// Wait `window`, sampling the LNS's VmRSS every second; the peak, KiB.
fn watch_rss(pair: &mut Pair, window: Duration) -> Result<u64> {
    let pid = pair.lns.proc().pid();
    let mut peak = status_kib(pid, "VmRSS")?;
    let deadline = Instant::now() + window;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        pair.check_alive()?;
        peak = peak.max(status_kib(pid, "VmRSS")?);
        thread::sleep(Duration::from_secs(1).min(left));
    }
    Ok(peak)
}

// ---- xl2tpd ------------------------------------------------------------------

/// Why xl2tpd's call set-ups cannot be compared here: it starts a pppd per
/// call, which needs a PPP peer (l2tpd's LAC runs the null data plane, so
/// there is none) and kernel PPP.
fn xl2tpd_sessions_unsupported() -> String {
    let ppp = if Path::new("/dev/ppp").exists() {
        "its LCP finds no peer and gives up".to_owned()
    } else {
        "/dev/ppp is missing (no kernel PPP on this host), so pppd exits at once".to_owned()
    };
    format!(
        "xl2tpd starts a pppd for each call, and the LAC here runs no pppd: {ppp} and \
         xl2tpd clears the call (CDN), so N established calls never exist"
    )
}

/// Set up `shape` (tunnels only) from an l2tpd LAC against xl2tpd as LNS.
fn xl2tpd_rep(env: &Env, dir: &Path, shape: Shape, rep: &mut Rep) -> Result<()> {
    let Some(xl2tpd) = &env.xl2tpd else {
        bail!("xl2tpd is not available");
    };
    let conf = dir.join("xl2tpd.conf");
    let text = format!(
        "[global]\nlisten-addr = {}\nport = {L2TP_PORT}\n\n\
         [lns default]\nhostname = bench-xl2tpd\n",
        env.addrs.lns
    );
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    let mut cmd = Command::new(xl2tpd);
    cmd.arg("-D").arg("-c").arg(&conf);
    cmd.arg("-p").arg(dir.join("xl2tpd.pid"));
    cmd.arg("-C").arg(dir.join("xl2tpd.control"));
    let mut proc = Proc::spawn("xl2tpd", &mut cmd, dir.join("xl2tpd.log"))?;
    let mut log = LogTail::from_start(&proc.log)?;
    let listening = poll(START_TIMEOUT, POLL, || {
        proc.check_alive()?;
        let lines = log.new_lines()?;
        let up = lines.iter().any(|l| l.contains("Listening on IP address"));
        Ok(up.then_some(()))
    })?;
    if listening.is_none() {
        bail!(
            "xl2tpd not listening after {START_TIMEOUT:?}:\n{}",
            tail(&proc.log, 20)
        );
    }
    let mut pair = Pair::with_lns(env, dir, Lns::Xl2tpd(proc))?;
    establish(env, &mut pair, shape, "", rep)
}

/// Find xl2tpd, installing the Debian package if it is missing.
fn ensure_xl2tpd() -> Result<PathBuf> {
    if let Some(p) = util::which("xl2tpd").or_else(|| util::which("/usr/sbin/xl2tpd")) {
        return Ok(p);
    }
    util::banner("installing xl2tpd (the reference LNS) with apt-get");
    crate::prereq::Apt::default().install(&["xl2tpd"])?;
    util::which("/usr/sbin/xl2tpd").context("xl2tpd installed but /usr/sbin/xl2tpd not found")
}

// ---- running and reporting ---------------------------------------------------

/// Run every repetition of `w`; `skip` holds kinds whose smaller size timed out.
fn run_workload(
    env: &Env,
    w: Workload,
    reps: u32,
    skip: &mut HashMap<Kind, String>,
) -> WorkloadResult {
    let mut res = WorkloadResult::new(w);
    if w.kind == Kind::XlSessions {
        skip.insert(w.kind, xl2tpd_sessions_unsupported());
    }
    if let Some(why) = skip.get(&w.kind) {
        eprintln!("\n==> {}: skipped ({why})", w.name());
        res.skipped = Some(why.clone());
        return res;
    }
    util::banner(&format!("{} ({reps} repetitions)", w.name()));
    let load_start = loadavg1();
    for i in 1..=reps {
        let dir = env.work.join(format!("{}-r{i}", w.name()));
        let mut rep = Rep::default();
        let (load0, t0) = (loadavg1(), Instant::now());
        eprintln!("  rep {i}/{reps} (load {load0:.2})");
        let outcome = fs::create_dir_all(&dir)
            .context("creating the repetition directory")
            .and_then(|()| run_rep(env, &w, &dir, &mut rep));
        rep.raw("load1_start", load0);
        rep.raw("load1_end", loadavg1());
        rep.raw("elapsed_s", t0.elapsed().as_secs_f64());
        let timed_out = outcome.as_ref().err().is_some_and(is_timeout);
        match outcome {
            Ok(()) => {
                let _ = fs::remove_dir_all(&dir);
            }
            Err(e) => {
                let msg = format!("rep {i}: {e:#} (logs in {})", dir.display());
                eprintln!("    FAILED: {msg}");
                rep.raw("error", format!("{e:#}"));
                res.failures.push(msg);
            }
        }
        res.add(rep);
        if timed_out {
            let why = format!("{} timed out", w.name());
            skip.insert(w.kind, why.clone());
            if i < reps {
                res.notes
                    .push(format!("remaining repetitions skipped: {why}"));
            }
            break;
        }
    }
    res.load = Some((load_start, loadavg1()));
    res
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if !v.is_finite() => format!("{v}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The results table (stdout).
fn print_table(results: &[WorkloadResult], reps: u32, extra: &[(String, String, String)]) {
    println!();
    println!(
        "{:<22} {:<30} {:>11} {:>5} {:>12} {:>12}  load1 start→end",
        "workload", "metric", "unit", "reps", "min", "median"
    );
    for r in results {
        let load = r
            .load
            .map_or_else(String::new, |(a, b)| format!("{a:.2}→{b:.2}"));
        if let Some(why) = &r.skipped {
            println!("{:<22} skipped: {why}", r.workload.name());
            continue;
        }
        for (i, m) in r.metrics.iter().enumerate() {
            println!(
                "{:<22} {:<30} {:>11} {:>5} {:>12} {:>12}  {}",
                if i == 0 {
                    r.workload.name()
                } else {
                    String::new()
                },
                m.name,
                m.unit,
                format!("{}/{reps}", m.values.len()),
                fmt_value(min(&m.values)),
                fmt_value(median(&m.values)),
                if i == 0 { load.as_str() } else { "" },
            );
        }
        if r.metrics.is_empty() {
            println!("{:<22} (no measurement)  {load}", r.workload.name());
        }
        for f in r.failures.iter().chain(&r.notes) {
            println!("{:<22}   ! {f}", "");
        }
    }
    if !extra.is_empty() {
        println!();
        for (what, value, how) in extra {
            println!("{what:<44} {value:>14}  {how}");
        }
    }
}

/// RSS per session and per tunnel (slopes) and the xl2tpd ratios, as
/// (what, value, how) rows and JSON.
fn derived(results: &[WorkloadResult]) -> (Vec<(String, String, String)>, Value) {
    let mut rows = Vec::new();
    let mut out = Map::new();
    for (kind, per) in [(Kind::Sessions, "session"), (Kind::Tunnels, "tunnel")] {
        let points: Vec<RssPoint> = results
            .iter()
            .filter(|r| r.workload.kind == kind)
            .flat_map(|r| r.rss.iter().copied())
            .collect();
        if points.is_empty() {
            continue;
        }
        for (side, pick) in [
            ("LNS", (|p: &RssPoint| p.lns) as fn(&RssPoint) -> (u64, u64)),
            ("LAC", |p: &RssPoint| p.lac),
        ] {
            let xy: Vec<(f64, f64)> = points
                .iter()
                .flat_map(|p| {
                    let (a, b) = pick(p);
                    [(0.0, a as f64 * 1024.0), (p.n as f64, b as f64 * 1024.0)]
                })
                .collect();
            let s = slope(&xy);
            let sizes: HashSet<usize> = points.iter().map(|p| p.n).collect();
            rows.push((
                format!("RSS per {per}, {side}"),
                s.map_or("-".into(), |s| format!("{s:.0} B")),
                format!(
                    "slope over {} repetitions at {} sizes",
                    points.len(),
                    sizes.len()
                ),
            ));
            out.insert(
                format!("rss_bytes_per_{per}_{}", side.to_lowercase()),
                json!(s),
            );
        }
    }
    for r in results.iter().filter(|r| r.workload.kind.is_xl2tpd()) {
        let twin = r.workload.kind.l2tpd_twin().and_then(|k| {
            results
                .iter()
                .find(|t| t.workload.kind == k && t.workload.n == r.workload.n)
        });
        let rate = |x: &WorkloadResult| x.metric("setup rate").and_then(|m| median(&m.values));
        if let (Some(ours), Some(theirs)) = (twin.and_then(rate), rate(r)) {
            rows.push((
                format!("{} l2tpd / xl2tpd setup rate", r.workload.name()),
                format!("{:.2}", ours / theirs),
                format!("median {ours:.0} vs {theirs:.0} /s"),
            ));
            out.insert(format!("{}_ratio", r.workload.name()), json!(ours / theirs));
        }
    }
    (rows, Value::Object(out))
}

/// Fail unless the bench's UDP addresses are free (another bench or l2tpd
/// on them would take our datagrams).
fn check_ports_free(addrs: &Addrs) -> Result<()> {
    for addr in [addrs.lns, addrs.lac] {
        UdpSocket::bind((addr, L2TP_PORT)).with_context(|| {
            format!(
                "UDP {addr}:{L2TP_PORT} is in use (another bench or l2tpd running? \
                 --net picks other addresses)"
            )
        })?;
    }
    Ok(())
}

/// Facts about the machine and the tree for the JSON.
fn host_info() -> Value {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default().trim().to_owned();
    let git = |args: &[&str]| {
        util::probe(
            Command::new("git")
                .current_dir(util::project_root())
                .args(args),
        )
        .map(|s| s.trim().to_owned())
    };
    let nofile = read("/proc/self/limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            l.split_whitespace()
                .skip(3)
                .take(2)
                .collect::<Vec<_>>()
                .join("/")
        });
    json!({
        "cpus": thread::available_parallelism().map(|n| n.get()).ok(),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "git_commit": git(&["rev-parse", "HEAD"]),
        "git_dirty": git(&["status", "--porcelain"]).map(|s| !s.is_empty()),
        "nofile_soft_hard": nofile,
        "mem_total": read("/proc/meminfo").lines().next().map(str::to_owned),
    })
}

/// `cargo xtask bench`.
pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let all = all_workloads(args.quick);
    if args.list {
        for w in &all {
            println!("{}", w.name());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let selected = select(&all, &args.only, args.xl2tpd)?;
    let addrs = Addrs::on(&args.net)?;
    check_ports_free(&addrs)?;
    let l2tpd = util::target_dir().join("release/l2tpd");
    if args.no_build {
        eprintln!("xtask bench: --no-build: using {}", l2tpd.display());
    } else {
        util::banner("building l2tpd and l2tpctl (release)");
        util::run(util::cargo().args(["build", "--release", "-p", "l2tpd", "-p", "l2tpctl"]))?;
    }
    let built = fs::metadata(&l2tpd)
        .and_then(|m| m.modified())
        .with_context(|| format!("{} missing", l2tpd.display()))?;
    let age = built.elapsed().unwrap_or_default().as_secs();
    let xl2tpd = if selected.iter().any(|w| w.kind == Kind::XlTunnels) {
        Some(ensure_xl2tpd()?)
    } else {
        None
    };
    let work = std::env::temp_dir().join(format!("l2tpd-bench-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let env = Env {
        l2tpd,
        work: work.clone(),
        idle: Duration::from_secs(args.idle_secs.unwrap_or(if args.quick { 5 } else { 60 })),
        timeout: args.timeout.map(Duration::from_secs),
        clk_tck: clock_ticks_per_sec(),
        lns_system: system_lines(&args.lns_system)?,
        lac_system: system_lines(&args.lac_system)?,
        tunnel_profile: system_lines(&args.tunnel_profile)?,
        xl2tpd,
        monitor: args.monitor,
        addrs,
    };
    let started = util::timestamp();
    // The tree the binary was built from (others may commit while we run).
    let host = host_info();
    let mut skip = HashMap::new();
    let results: Vec<WorkloadResult> = selected
        .iter()
        .map(|&w| run_workload(&env, w, args.reps, &mut skip))
        .collect();
    let (extra, derived_json) = derived(&results);
    print_table(&results, args.reps, &extra);
    let timing = if args.monitor {
        "an io.l2tpd.Monitor subscriber on each daemon (the log once it lagged)"
    } else {
        "the daemons' log lines at --log info; no API subscriber"
    };
    println!("\ntimings from {timing}");

    let out_dir = util::target_dir().join("bench");
    fs::create_dir_all(&out_dir)?;
    let out = out_dir.join(format!("{started}.json"));
    let report = json!({
        "started": started,
        "host": host,
        "l2tpd_binary_age_s": age,
        "args": {
            "quick": args.quick, "reps": args.reps, "only": args.only,
            "idle_secs": env.idle.as_secs(), "timeout_secs": args.timeout, "xl2tpd": args.xl2tpd,
            "no_build": args.no_build, "lns_system": args.lns_system, "lac_system": args.lac_system, "tunnel_profile": args.tunnel_profile, "monitor": args.monitor,
        },
        "timing": timing,
        "poll_ms": POLL.as_millis() as u64,
        "addresses": {
            "lns": format!("{}:{L2TP_PORT}", env.addrs.lns),
            "lac": env.addrs.lac.to_string(),
            "flood": env.addrs.flood.to_string(),
        },
        "workloads": results.iter().map(WorkloadResult::to_json).collect::<Vec<_>>(),
        "derived": derived_json,
    });
    fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nJSON: {}", out.display());
    // Sizes skipped after a time-out are failures of the smaller size.
    let failed = results.iter().any(|r| !r.failures.is_empty());
    if !failed {
        let _ = fs::remove_dir(&work);
    } else {
        eprintln!(
            "xtask bench: some workloads failed; logs under {}",
            work.display()
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sccrq_is_a_valid_rfc2661_sccrq() {
        use l2tp_proto::wire::{ControlMessage, Message, SessionId, TunnelId};
        let bytes = sccrq(0xbeef);
        let msg = ControlMessage::decode(&bytes, None).unwrap();
        assert_eq!(msg.header.tunnel_id, TunnelId(0));
        assert_eq!(msg.header.session_id, SessionId(0));
        assert_eq!((msg.header.ns, msg.header.nr), (0, 0));
        let Message::Sccrq(m) = Message::from_control(&msg).unwrap() else {
            panic!("not an SCCRQ");
        };
        assert_eq!(m.assigned_tunnel_id, TunnelId(0xbeef));
        assert_eq!(m.protocol_version, (1, 0));
        assert_eq!(m.host_name, b"bench-flood");
    }

    #[test]
    fn statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(min(&[3.0, 1.0, 2.0]), Some(1.0));
        assert_eq!(median(&[]), None);
        let s = slope(&[(0.0, 100.0), (10.0, 200.0), (0.0, 100.0), (20.0, 300.0)]).unwrap();
        assert!((s - 10.0).abs() < 1e-9, "{s}");
        assert_eq!(slope(&[(5.0, 1.0), (5.0, 2.0)]), None);
    }

    #[test]
    fn workloads_and_selection() {
        let all = all_workloads(false);
        let names: Vec<String> = all.iter().map(Workload::name).collect();
        for n in [
            "sessions-65535",
            "tunnels-10000",
            "idle-10000",
            "flood-20000",
        ] {
            assert!(names.contains(&n.to_string()), "{names:?}");
        }
        assert!(
            all.iter()
                .any(|w| w.name() == "sessions-65535" && w.largest)
        );
        assert!(
            all.iter()
                .any(|w| w.name() == "sessions-1000" && !w.largest)
        );
        let default = select(&all, &[], false).unwrap();
        assert!(default.iter().all(|w| !w.kind.is_xl2tpd()));
        let only = select(&all, &["tunnels".into(), "sessions-1000".into()], false).unwrap();
        let names: Vec<String> = only.iter().map(Workload::name).collect();
        assert_eq!(
            names,
            [
                "sessions-1000",
                "tunnels-100",
                "tunnels-1000",
                "tunnels-10000"
            ]
        );
        assert!(
            select(&all, &["xl2tpd-tunnels".into()], false)
                .unwrap()
                .len()
                == 3
        );
        assert!(select(&all, &["nope".into()], false).is_err());
    }

    #[test]
    fn generated_configuration() {
        let addrs = Addrs::on(DEFAULT_NET).unwrap();
        let c = tunnels_config(&addrs, Shape::Sessions(2), "hello_timeout = \"2s\"\n");
        assert_eq!(
            c,
            "\n[tunnel.t0]\npeer_addr = \"127.0.0.2\"\nhello_timeout = \"2s\"\n\
             [tunnel.t0.session.s0]\n[tunnel.t0.session.s1]\n"
        );
        let c = tunnels_config(&addrs, Shape::Tunnels(3), "");
        assert_eq!(c.matches("peer_addr").count(), 3);
        assert!(!c.contains("session"));
        assert_eq!(toml_str("a\"b\\c"), r#""a\"b\\c""#);
        let lines = system_lines(&["max_tunnels = 5".into(), "a=\"b\"".into()]).unwrap();
        assert_eq!(lines, "max_tunnels = 5\na = \"b\"\n");
        assert!(system_lines(&["nokey".into()]).is_err());
        let other = Addrs::on("127.0.1").unwrap();
        assert_eq!(other.lns, Ipv4Addr::new(127, 0, 1, 2));
        assert_eq!(other.flood, Ipv4Addr::new(127, 0, 1, 4));
        assert!(Addrs::on("10.0.0").is_err());
        assert!(Addrs::on("127.0").is_err());
    }

    #[test]
    fn tally_and_log_tail() {
        let mut t = Tally::default();
        for ts in [5, 3, 9] {
            t.record(&json!({"kind": "session_up", "timestamp_usec": ts}));
        }
        t.record(&json!({"kind": "lagged", "timestamp_usec": 10}));
        let k = t.get("session_up");
        assert_eq!((k.count, k.first_usec, k.last_usec), (3, 5, 9));
        assert_eq!(t.lagged, 1);

        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        fs::write(&path, "configuration reloaded (old)\n").unwrap();
        let mut tail = LogTail::from_end(&path).unwrap();
        assert!(tail.new_lines().unwrap().is_empty());
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"A SIGHUP: reloading\nB configuration rel")
            .unwrap();
        assert_eq!(tail.new_lines().unwrap(), ["A SIGHUP: reloading"]);
        f.write_all(b"oaded added=1\nC\n").unwrap();
        assert_eq!(
            tail.new_lines().unwrap(),
            ["B configuration reloaded added=1", "C"]
        );
        let mut whole = LogTail::from_start(&path).unwrap();
        assert_eq!(whole.new_lines().unwrap().len(), 4);
        assert!(whole.new_lines().unwrap().is_empty());
        f.write_all(b"D\n").unwrap();
        assert_eq!(whole.new_lines().unwrap(), ["D"]);
        assert_eq!(tail.new_lines().unwrap(), ["D"]);
        fs::remove_dir_all(&dir).unwrap();

        let line = "2026-11-29T20:30:24.645886Z  INFO configuration reloaded";
        assert_eq!(log_time_usec(line), Some(1_795_984_224_645_886));
        assert_eq!(
            log_time_usec("2000-02-29T00:00:00Z x"),
            Some(951_782_400_000_000)
        );
        assert_eq!(log_time_usec("INFO no time"), None);
        let up = "2000-02-29T00:00:00.000001Z  INFO session up tunnel=t0 session=\"s0\"";
        assert_eq!(log_event(up), Some(("session_up", 951_782_400_000_001)));
        let down = "2000-02-29T00:00:01Z  INFO tunnel down: closed by peer tunnel=t0";
        assert_eq!(log_event(down), Some(("tunnel_down", 951_782_401_000_000)));
        assert_eq!(log_event("2000-02-29T00:00:01Z  INFO placing call"), None);
    }

    #[test]
    fn teardown_sides() {
        let k = |count, last_usec| KindTally {
            count,
            first_usec: 0,
            last_usec,
        };
        let mut sides = Sides::default();
        let since = |usec: u64| usec_to_s(usec - 1_000_000);
        sides.update(3, k(2, 1_500_000), k(3, 2_000_000), since);
        assert_eq!((sides.lns, sides.lac), (None, Some(1.0)));
        sides.update(3, k(3, 3_000_000), k(3, 9_000_000), since);
        assert_eq!((sides.lns, sides.lac), (Some(2.0), Some(1.0)));
        let mut none = Sides::default();
        none.update(0, k(0, 0), k(0, 0), since);
        assert_eq!((none.lns, none.lac), (None, None));
    }

    #[test]
    fn proc_parsing() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS").unwrap() > 0);
        cpu_ticks(me).unwrap();
        assert!(loadavg1() >= 0.0);
        assert!(udp_rcvbuf_errors().is_some());
    }
}
