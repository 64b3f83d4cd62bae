//! What this l2tpd owns, written down for its next start (`[system]
//! state_file`), and the reconciliation that start does with it.
//!
//! l2tpd normally leaves nothing behind: it clears every call and tunnel at
//! SIGTERM, pppd gets a parent-death signal (see `crate::ppp::spawn`), and a
//! kernel tunnel made on one of our sockets dies with it. The state file is
//! for the rest, after `kill -9`, a crash or a power cut of a container:
//!
//! - each pppd we started (pid, tunnel id, session id), so that the next
//!   start stops one that is still running (it is recognised by its command
//!   line, which names the tunnel and session ids: a pid used again by another
//!   process is left alone);
//! - each tunnel that got established (our tunnel id, the peer's, the peer's
//!   address), so that the next start deletes the kernel tunnel (and its
//!   sessions first) if it still exists with the same pair of ids, and
//!   answers the peer's next control message for that tunnel with a StopCCN
//!   (Result Code 2, Error Code 1, "no control connection exists yet", for
//!   [`STALE_TUNNEL_TTL`]; `Endpoint::add_stale_tunnel`) instead of silence:
//!   the peer then learns at its next HELLO that we restarted.
//!
//! Kernel objects that are not in the file (a static tunnel made with `ip
//! l2tp`, another daemon's) are never touched.
//!
//! The file is a journal of one-line records (`tunnel`, `-tunnel`, `pppd`,
//! `-pppd`), appended in one `write` per pass of the protocol loop, so a
//! record costs O(1) whatever the number of tunnels and sessions; when the
//! dead lines outnumber the live records by [`COMPACT_SLACK`], the live
//! records are rewritten to a new file that replaces the old one atomically
//! (`rename`), an amortised O(1) per record. A torn last line (a crash in
//! mid-write) is ignored on reading. An exclusive `flock` on `FILE.lock`,
//! held while the daemon runs, keeps a second l2tpd from taking over (and
//! tearing down) what a running one owns.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

use super::Daemon;

/// First line of the file: format and version.
const HEADER: &str = "l2tpd-state 1";
/// The file is rewritten with its live records once it has this many more
/// lines than live records.
const COMPACT_SLACK: usize = 4096;
/// How long reconciliation waits for the pppds it sent SIGTERM before SIGKILL.
const PPPD_STOP_WAIT: Duration = Duration::from_secs(3);
/// How long the previous run's tunnels are answered with a StopCCN (and
/// their ids kept from new tunnels): long enough for a peer's HELLO (60 s
/// by default, RFC 2661 §6.5) and its retransmissions.
const STALE_TUNNEL_TTL: Duration = Duration::from_secs(600);

/// What a run of l2tpd owned, as read back from its state file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Owned {
    /// Established tunnels: our tunnel id → (the peer's tunnel id, the
    /// peer's address and UDP port). Ids are u16 (RFC 2661 §3.1).
    pub tunnels: HashMap<u16, (u16, SocketAddr)>,
    /// Running pppds: pid → (our tunnel id, our session id).
    pub pppds: HashMap<u32, (u16, u16)>,
}

impl Owned {
    /// Apply one record; false if the line is not a record.
    fn apply(&mut self, line: &str) -> bool {
        let f: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u16>().ok());
        match (f.first().copied(), f.len()) {
            (Some("tunnel"), 4) => match (num(1), num(2), f[3].parse::<SocketAddr>()) {
                (Some(t), Some(p), Ok(a)) => {
                    self.tunnels.insert(t, (p, a));
                    true
                }
                _ => false,
            },
            (Some("-tunnel"), 2) => num(1).map(|t| self.tunnels.remove(&t)).is_some(),
            (Some("pppd"), 4) => match (f[1].parse::<u32>(), num(2), num(3)) {
                (Ok(pid), Some(t), Some(s)) => {
                    self.pppds.insert(pid, (t, s));
                    true
                }
                _ => false,
            },
            (Some("-pppd"), 2) => f[1]
                .parse::<u32>()
                .map(|pid| self.pppds.remove(&pid))
                .is_ok(),
            _ => false,
        }
    }

    /// Read a state file's text: the records applied in order. Returns the
    /// result and the number of lines that were not records (a torn last
    /// line after a crash, or damage).
    fn parse(text: &str) -> (Self, usize) {
        let mut owned = Self::default();
        let mut bad = 0;
        for line in text.lines().filter(|l| *l != HEADER && !l.is_empty()) {
            if !owned.apply(line) {
                bad += 1;
            }
        }
        (owned, bad)
    }

    /// Every live record, one per line.
    fn records(&self) -> String {
        let mut out = String::new();
        for (t, (p, a)) in &self.tunnels {
            out.push_str(&tunnel_record(*t, *p, *a));
        }
        for (pid, (t, s)) in &self.pppds {
            out.push_str(&pppd_record(*pid, *t, *s));
        }
        out
    }

    fn len(&self) -> usize {
        self.tunnels.len() + self.pppds.len()
    }
}

fn tunnel_record(t: u16, peer_t: u16, peer: SocketAddr) -> String {
    format!("tunnel {t} {peer_t} {peer}\n")
}

fn pppd_record(pid: u32, t: u16, s: u16) -> String {
    format!("pppd {pid} {t} {s}\n")
}

/// The open state file: records waiting to be written, and the live set.
#[derive(Debug)]
pub(super) struct StateFile {
    path: PathBuf,
    file: File,
    /// Held while the daemon runs; released by the kernel however it ends.
    _lock: Flock<File>,
    /// Records not yet written.
    pending: String,
    /// What the file says now (pending records included).
    owned: Owned,
    /// Lines in the file (header included).
    lines: usize,
    /// A write failed (logged once until one succeeds again).
    failing: bool,
}

impl StateFile {
    /// Lock and read `path` (what the previous run owned), then start it
    /// afresh. Errors: the lock is held (another l2tpd runs with this state
    /// file), or the file or its directory cannot be created or read; each
    /// names the path.
    pub(super) fn open(path: &Path) -> anyhow::Result<(Self, Owned)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the directory of {}", path.display()))?;
        }
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            anyhow::anyhow!(
                "{} is locked ({e}): another l2tpd is running with state file {}",
                lock_path.display(),
                path.display()
            )
        })?;
        let previous = match std::fs::read_to_string(path) {
            Ok(text) => {
                let (owned, bad) = Owned::parse(&text);
                if bad > 0 {
                    tracing::warn!(file = %path.display(), lines = bad, "state file: lines that are not records ignored");
                }
                owned
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Owned::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file = write_fresh(path, "")?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
                _lock: lock,
                pending: String::new(),
                owned: Owned::default(),
                lines: 1,
                failing: false,
            },
            previous,
        ))
    }

    /// Tunnel `t` is established with the peer's tunnel `peer_t` at `peer`.
    pub(super) fn tunnel_up(&mut self, t: u16, peer_t: u16, peer: SocketAddr) {
        self.owned.tunnels.insert(t, (peer_t, peer));
        self.pending.push_str(&tunnel_record(t, peer_t, peer));
    }

    /// Tunnel `t` is gone.
    pub(super) fn tunnel_gone(&mut self, t: u16) {
        if self.owned.tunnels.remove(&t).is_some() {
            self.pending.push_str(&format!("-tunnel {t}\n"));
        }
    }

    /// pppd `pid` runs session `s` of tunnel `t`.
    pub(super) fn pppd_started(&mut self, pid: u32, t: u16, s: u16) {
        self.owned.pppds.insert(pid, (t, s));
        self.pending.push_str(&pppd_record(pid, t, s));
    }

    /// pppd `pid` has exited.
    pub(super) fn pppd_gone(&mut self, pid: u32) {
        if self.owned.pppds.remove(&pid).is_some() {
            self.pending.push_str(&format!("-pppd {pid}\n"));
        }
    }

    /// Write the pending records (one `write`), or rewrite the file with
    /// the live records when it has grown [`COMPACT_SLACK`] lines past them.
    /// A failure is logged (once until writing works again) and the daemon
    /// goes on: the file only matters after a crash.
    pub(super) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let added = self.pending.bytes().filter(|b| *b == b'\n').count();
        let result = if self.lines.saturating_add(added) > self.owned.len() + COMPACT_SLACK {
            write_fresh(&self.path, &self.owned.records()).map(|f| {
                self.file = f;
                1 + self.owned.len()
            })
        } else {
            self.file
                .write_all(self.pending.as_bytes())
                .map(|()| self.lines + added)
                .map_err(|e| {
                    anyhow::Error::new(e).context(format!("writing {}", self.path.display()))
                })
        };
        match result {
            Ok(lines) => {
                self.lines = lines;
                self.failing = false;
                self.pending.clear();
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!("state file: {e:#}");
                }
                // Keep at most one rewrite's worth: the next flush compacts.
                if self.pending.len() > 1 << 20 {
                    self.pending.clear();
                    self.lines = usize::MAX;
                }
            }
        }
    }

    /// Clean exit: nothing is owned any more.
    pub(super) fn clear(&mut self) {
        self.owned = Owned::default();
        self.pending.clear();
        if let Err(e) = write_fresh(&self.path, "") {
            tracing::warn!("state file: {e:#}");
        }
    }
}

/// `FILE.lock` beside `path`.
fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Replace `path` atomically with the header and `records`; the new file,
/// open for appending.
fn write_fresh(path: &Path, records: &str) -> anyhow::Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<File> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(format!("{HEADER}\n{records}").as_bytes())?;
        std::fs::rename(&tmp, path)?;
        OpenOptions::new().append(true).open(path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Is `pid` the pppd that ran session `s` of tunnel `t`? Its command line
/// names both ids (`pppol2tp_tunnel_id T pppol2tp_session_id S`).
fn is_our_pppd(pid: u32, t: u16, s: u16) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let has = |key: &str, v: u16| {
        args.windows(2)
            .any(|w| w[0] == key.as_bytes() && w[1] == v.to_string().as_bytes())
    };
    has("pppol2tp_tunnel_id", t) && has("pppol2tp_session_id", s)
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

impl Daemon {
    /// Start-up: clear what the previous run owned and can no longer run.
    /// pppds first (SIGTERM, then SIGKILL after [`PPPD_STOP_WAIT`]), then the
    /// kernel sessions and tunnels whose ids match a recorded tunnel;
    /// anything else in the kernel is left alone. Failures are logged with
    /// the operation and the start goes on.
    pub(super) async fn reconcile(&mut self, prev: &Owned) {
        if prev.tunnels.is_empty() && prev.pppds.is_empty() {
            return;
        }
        tracing::info!(
            tunnels = prev.tunnels.len(),
            pppds = prev.pppds.len(),
            "state file: the previous run did not exit cleanly; reconciling"
        );
        // Each old tunnel's peer gets a StopCCN at its next message for it.
        let until = std::time::Instant::now() + STALE_TUNNEL_TTL;
        for (t, (peer_t, peer)) in &prev.tunnels {
            self.ep.add_stale_tunnel(
                l2tp_proto::wire::TunnelId(*t),
                *peer,
                l2tp_proto::wire::TunnelId(*peer_t),
                until,
            );
        }
        let mut stopping: Vec<u32> = prev
            .pppds
            .iter()
            .filter(|(pid, (t, s))| is_our_pppd(**pid, *t, *s))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in &stopping {
            signal(*pid, nix::sys::signal::Signal::SIGTERM);
        }
        let stopped = stopping.len();
        let deadline = tokio::time::Instant::now() + PPPD_STOP_WAIT;
        while !stopping.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopping.retain(|pid| Path::new(&format!("/proc/{pid}")).exists());
        }
        for pid in &stopping {
            tracing::warn!(
                pid,
                "pppd left by the previous run did not exit after SIGTERM; sending SIGKILL"
            );
            signal(*pid, nix::sys::signal::Signal::SIGKILL);
        }
        if stopped > 0 {
            tracing::info!(
                count = stopped,
                "stopped the pppds left by the previous run"
            );
        }
        if self.null_dp {
            return;
        }
        // Recorded tunnel id → the peer's tunnel id it had.
        let recorded: std::collections::HashMap<u16, u16> = prev
            .tunnels
            .iter()
            .map(|(t, (peer_t, _))| (*t, *peer_t))
            .collect();
        let _ = self
            .dpw
            .call(move |dp| delete_previous_kernel_objects(dp, &recorded))
            .await;
    }
}

/// On the data-plane worker: delete the kernel sessions and tunnels whose
/// ids match a tunnel of the previous run (`recorded`: our tunnel id → the
/// peer's); anything else in the kernel is left alone. Failures are logged.
fn delete_previous_kernel_objects(
    dp: &mut dyn l2tp_kernel::DataPlane,
    recorded: &std::collections::HashMap<u16, u16>,
) {
    let kernel_tunnels = match dp.list_tunnels() {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("reconciling: listing kernel tunnels: {e}");
            return;
        }
    };
    let ours: std::collections::HashSet<l2tp_kernel::TunnelId> = kernel_tunnels
        .iter()
        .filter(|k| {
            u16::try_from(k.tunnel_id.0)
                .ok()
                .and_then(|t| recorded.get(&t))
                .is_some_and(|peer_t| u32::from(*peer_t) == k.peer_tunnel_id.0)
        })
        .map(|k| k.tunnel_id)
        .collect();
    if ours.is_empty() {
        return;
    }
    let sessions = dp.list_sessions().unwrap_or_else(|e| {
        tracing::warn!("reconciling: listing kernel sessions: {e}");
        Vec::new()
    });
    for s in sessions.iter().filter(|s| ours.contains(&s.tunnel_id)) {
        match dp.delete_session(s.tunnel_id, s.session_id) {
            Ok(()) => tracing::info!(
                tunnel_id = s.tunnel_id.0,
                session_id = s.session_id.0,
                "deleted a kernel session left by the previous run"
            ),
            Err(e) => tracing::warn!(
                tunnel_id = s.tunnel_id.0,
                session_id = s.session_id.0,
                "reconciling: kernel session delete: {e}"
            ),
        }
    }
    for t in ours {
        match dp.delete_tunnel(t) {
            Ok(()) => tracing::info!(
                tunnel_id = t.0,
                "deleted a kernel tunnel left by the previous run"
            ),
            Err(e) => {
                tracing::warn!(tunnel_id = t.0, "reconciling: kernel tunnel delete: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn records_replay_to_the_live_set() {
        let text = "l2tpd-state 1\n\
                    tunnel 10 20 192.0.2.2:1701\n\
                    tunnel 11 21 [2001:db8::2]:1701\n\
                    pppd 100 10 5\n\
                    pppd 101 10 6\n\
                    -pppd 100\n\
                    -tunnel 11\n\
                    pppd 102 10";
        let (owned, bad) = Owned::parse(text);
        assert_eq!(bad, 1, "the torn last line is not a record");
        assert_eq!(
            owned.tunnels,
            HashMap::from([(10, (20, addr("192.0.2.2:1701")))])
        );
        assert_eq!(owned.pppds, HashMap::from([(101, (10, 6))]));
        let (again, bad) = Owned::parse(&owned.records());
        assert_eq!((again, bad), (owned, 0));
    }

    #[test]
    fn garbage_is_not_a_record() {
        for line in [
            "tunnel 70000 1 192.0.2.2:1701",
            "tunnel 1 2 not-an-address",
            "pppd -1 1 2",
            "-pppd x",
            "rm -rf /",
            "tunnel 1 2 192.0.2.2:1701 extra",
        ] {
            assert!(!Owned::default().apply(line), "{line}");
        }
    }

    #[test]
    fn the_file_survives_a_restart_and_the_lock_excludes_a_second_daemon() {
        let dir = std::env::temp_dir().join(format!("l2tpd-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("l2tpd.state");
        let (mut st, prev) = StateFile::open(&path).unwrap();
        assert_eq!(prev, Owned::default());
        st.tunnel_up(5, 6, addr("192.0.2.2:1701"));
        st.pppd_started(4242, 5, 9);
        st.pppd_started(4243, 5, 10);
        st.pppd_gone(4242);
        st.flush();
        assert!(
            StateFile::open(&path).is_err(),
            "a second daemon is refused while the first holds the lock"
        );
        drop(st); // as the kernel does when the daemon dies
        let (mut st, prev) = StateFile::open(&path).unwrap();
        assert_eq!(
            prev.tunnels,
            HashMap::from([(5, (6, addr("192.0.2.2:1701")))])
        );
        assert_eq!(prev.pppds, HashMap::from([(4243, (5, 10))]));
        // Started afresh: a clean exit leaves nothing owned.
        st.clear();
        drop(st);
        let (_st, prev) = StateFile::open(&path).unwrap();
        assert_eq!(prev, Owned::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn compaction_keeps_only_live_records() {
        let dir = std::env::temp_dir().join(format!("l2tpd-state-compact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("l2tpd.state");
        let (mut st, _) = StateFile::open(&path).unwrap();
        st.tunnel_up(1, 2, addr("192.0.2.2:1701"));
        for pid in 0..(COMPACT_SLACK as u32 * 3) {
            st.pppd_started(pid + 10, 1, 1);
            st.pppd_gone(pid + 10);
            st.flush();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= COMPACT_SLACK + 3,
            "{lines} lines: the file was compacted"
        );
        drop(st);
        let (_st, prev) = StateFile::open(&path).unwrap();
        assert_eq!(
            prev.tunnels,
            HashMap::from([(1, (2, addr("192.0.2.2:1701")))])
        );
        assert!(prev.pppds.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_process_that_is_not_that_pppd_is_not_ours() {
        // This test process's command line names no pppol2tp ids.
        assert!(!is_our_pppd(std::process::id(), 1, 1));
        assert!(!is_our_pppd(u32::MAX, 1, 1));
    }
}
