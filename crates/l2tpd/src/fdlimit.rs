//! File descriptors: the `RLIMIT_NOFILE` soft limit, raised to the hard limit
//! at start, and a rate-limited report for operations that fail because the
//! process (`EMFILE`) or the whole system (`ENFILE`) is out of file
//! descriptors.
//!
//! What l2tpd holds (see l2tpd.toml(5), FILE DESCRIPTORS): a few fixed
//! descriptors (stdio, the listening UDP socket, the API socket, netlink
//! sockets, the runtimes' epoll and event fds); one UDP socket per
//! established tunnel (two in legacy mode, with the PPPoL2TP tunnel
//! management socket); per session with a kernel data plane its copy of the
//! PPPoL2TP socket, pppd's stdout and stderr pipes and a pidfd to reap pppd
//! (with the null data plane, one: its stand-in socket pair end); one per API
//! connection (two once it has made a call, on kernels with
//! `SO_PEERPIDFD`). The soft limit defaults to 1024 almost everywhere; the
//! hard limit is what the administrator (systemd `LimitNOFILE=`) grants, so
//! l2tpd takes all of it.
//!
//! Running out must not take the daemon down or make it spin: each place
//! that can fail with `EMFILE`/`ENFILE` calls [`report_exhaustion`] (which
//! logs at most once a second for the whole process, counting what it
//! suppressed) and then carries on, backing off where it would otherwise
//! retry at once (the API's accept loop waits 100 ms).

use std::io;
use std::sync::Mutex;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::time::{Duration, Instant};

/// The `RLIMIT_NOFILE` limits of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NofileLimit {
    /// The soft limit: the most descriptors open at once (`EMFILE` beyond it).
    pub soft: u64,
    /// The hard limit: the most the soft limit may be raised to without privilege.
    pub hard: u64,
}

/// `rlim_t` is 64 bits wide on 64-bit Linux but 32 on some 32-bit targets.
#[allow(clippy::useless_conversion)]
fn rlim_u64(v: libc::rlim_t) -> u64 {
    u64::from(v)
}

/// A limit for the log: a number, or `unlimited`.
fn limit_str(v: u64) -> String {
    if v == rlim_u64(libc::RLIM_INFINITY) {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// This process's `RLIMIT_NOFILE`.
pub(crate) fn nofile_limit() -> io::Result<NofileLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    Ok(NofileLimit {
        soft: rlim_u64(soft),
        hard: rlim_u64(hard),
    })
}

/// Raise the `RLIMIT_NOFILE` soft limit to the hard limit and log both in
/// one info line (old soft, new soft, hard). A failure is logged as a
/// warning and the daemon runs on with the limit it has. Returns the limits
/// in force afterwards, if they could be read.
pub(crate) fn raise_nofile_limit() -> Option<NofileLimit> {
    let old = match nofile_limit() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the open file limit (RLIMIT_NOFILE): {e}");
            return None;
        }
    };
    if old.soft < old.hard {
        // Raising the soft limit up to the hard limit needs no privilege.
        let hard = old.hard as libc::rlim_t;
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(
                "open file limit (RLIMIT_NOFILE): cannot raise the soft limit {} to the hard limit {}: {e}",
                limit_str(old.soft),
                limit_str(old.hard)
            );
            return Some(old);
        }
    }
    let new = nofile_limit().unwrap_or(NofileLimit {
        soft: old.hard,
        hard: old.hard,
    });
    tracing::info!(
        "open file limit (RLIMIT_NOFILE): soft {} -> {}, hard {}",
        limit_str(old.soft),
        limit_str(new.soft),
        limit_str(new.hard)
    );
    Some(new)
}

/// Whether `err` says the process (`EMFILE`) or the system (`ENFILE`) is out
/// of file descriptors.
pub(crate) fn is_exhaustion(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Lets one event through per interval and counts the others.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimiter {
    /// At most one event per `interval`.
    pub(crate) const fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// An event at `now`: `Some(n)` if it is to be logged, `n` being how many
    /// were suppressed since the last one logged; `None` (and counted) if not.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Process-wide: every report shares one budget of one line per second.
static REPORTS: Mutex<RateLimiter> = Mutex::new(RateLimiter::new(Duration::from_secs(1)));

/// Report that `operation` (what was being done, e.g. `"accepting a
/// management API connection"`) failed with `err`, an `EMFILE` or `ENFILE`
/// (see [`is_exhaustion`]).
///
/// Logs an error at most once per second for the whole process, from any
/// thread, naming the operation, the errno, the current `RLIMIT_NOFILE` soft
/// and hard limits and how many reports were suppressed since the last line;
/// the others are only counted. It does not back off or retry: the caller
/// does what fits (drop the datagram, refuse the tunnel, wait before the
/// next accept).
pub(crate) fn report_exhaustion(operation: &str, err: &io::Error) {
    let admitted = REPORTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .admit(Instant::now());
    let Some(suppressed) = admitted else {
        return;
    };
    let errno = err.raw_os_error().map_or_else(
        || "no errno".into(),
        |n| format!("{:?}", nix::errno::Errno::from_raw(n)),
    );
    let limit = match nofile_limit() {
        Ok(l) => format!(
            "RLIMIT_NOFILE soft limit {} (hard {})",
            limit_str(l.soft),
            limit_str(l.hard)
        ),
        Err(e) => format!("RLIMIT_NOFILE unknown ({e})"),
    };
    let suppressed = match suppressed {
        0 => String::new(),
        n => format!("; {n} more such reports suppressed since the last one"),
    };
    tracing::error!("out of file descriptors: {operation}: {errno}: {err}; {limit}{suppressed}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_lets_one_through_per_interval_and_counts_the_rest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = RateLimiter::new(Duration::from_secs(1));
        assert_eq!(r.admit(t0), Some(0));
        assert_eq!(r.admit(t0 + ms(1)), None);
        assert_eq!(r.admit(t0 + ms(500)), None);
        assert_eq!(r.admit(t0 + ms(999)), None);
        assert_eq!(r.admit(t0 + ms(1000)), Some(3));
        assert_eq!(r.admit(t0 + ms(1500)), None);
        assert_eq!(r.admit(t0 + ms(5000)), Some(1));
        assert_eq!(r.admit(t0 + ms(6000)), Some(0));
    }

    #[test]
    fn exhaustion_is_emfile_or_enfile_only() {
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_exhaustion(&io::Error::from_raw_os_error(libc::ENOMEM)));
        assert!(!is_exhaustion(&io::Error::other("EMFILE")));
    }

    #[test]
    fn the_limit_is_readable_and_soft_is_at_most_hard() {
        let l = nofile_limit().unwrap();
        assert!(l.soft <= l.hard);
    }
}
