//! The service manager's notification protocol (sd_notify(3), sent with the
//! `sd-notify` crate): `READY=1` once the L2TP listening socket and the
//! management API are bound, `STATUS=` with the tunnel and session counts,
//! `WATCHDOG=1` from the wakeup loop itself, `RELOADING=1` / `READY=1`
//! around a reload, `STOPPING=1` at shutdown.
//!
//! Without `NOTIFY_SOCKET` in the environment nothing is sent and no
//! deadline is added to the loop. The environment is left as it is: pppd and
//! its scripts inherit `NOTIFY_SOCKET`, but the unit's `NotifyAccess=main`
//! makes systemd ignore anything they might send, and `WATCHDOG_PID` (when
//! systemd sets it) names l2tpd, so the watchdog is not theirs.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The least time between two `STATUS=` updates (a changed count waits
/// until then; an unchanged one is not sent again).
pub(crate) const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// The shortest `WATCHDOG=1` period, whatever `WATCHDOG_USEC` says: a
/// nonsensical 1 µs must not make the loop spin.
const MIN_WATCHDOG_PERIOD: Duration = Duration::from_millis(1);

/// The watchdog timeout the service manager asks for, with the semantics of
/// `sd_watchdog_enabled(3)`: `usec` is `WATCHDOG_USEC` (a decimal count of
/// µs; absent, unparsable, 0 or `u64::MAX` (infinity) mean no watchdog) and
/// `pid` is `WATCHDOG_PID` (absent: the watchdog is ours; otherwise it must
/// parse as a positive pid equal to `own_pid`).
pub(crate) fn watchdog_timeout(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.parse().ok()?;
    if usec == 0 || usec == u64::MAX {
        return None;
    }
    if let Some(pid) = pid {
        let pid: u32 = pid.parse().ok()?;
        if pid == 0 || pid != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// `STATUS=` text: "12 tunnels, 340 sessions" (singular for one).
pub(crate) fn status_text(tunnels: usize, sessions: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}",
        plural(tunnels, "tunnel"),
        plural(sessions, "session")
    )
}

/// What has been told to the service manager, and when to tell it more.
#[derive(Debug)]
pub(crate) struct Notifier {
    /// `NOTIFY_SOCKET` is set: anything is sent at all.
    enabled: bool,
    /// Half of the watchdog timeout: the `WATCHDOG=1` period (None: no watchdog).
    watchdog_period: Option<Duration>,
    /// When the next `WATCHDOG=1` is due.
    next_watchdog: Option<Instant>,
    /// The (tunnels, sessions) last sent in `STATUS=`, and when.
    status_sent: Option<((usize, usize), Instant)>,
    /// The counts changed since the last `STATUS=`: when the update may go.
    status_due: Option<Instant>,
    /// A send has failed already (later failures are logged at debug level).
    failed_once: bool,
}

impl Notifier {
    /// From the environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`.
    pub(crate) fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let timeout = watchdog_timeout(
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        );
        Self::new(enabled, timeout, Instant::now())
    }

    /// `enabled`: whether to send at all; `watchdog`: the watchdog timeout
    /// (pings go at half of it, the first one half a period after `now`).
    pub(crate) fn new(enabled: bool, watchdog: Option<Duration>, now: Instant) -> Self {
        let watchdog_period = watchdog
            .filter(|_| enabled)
            .map(|t| (t / 2).max(MIN_WATCHDOG_PERIOD));
        if let Some(p) = watchdog_period {
            tracing::info!(period_ms = p.as_millis() as u64, "systemd watchdog enabled");
        }
        Self {
            enabled,
            watchdog_period,
            next_watchdog: watchdog_period.map(|p| now + p),
            status_sent: None,
            status_due: None,
            failed_once: false,
        }
    }

    /// `READY=1` with the current `STATUS=`: at start-up once the sockets
    /// are bound and the signal handlers installed, and after a reload.
    pub(crate) fn ready(&mut self, now: Instant, counts: (usize, usize)) {
        let status = status_text(counts.0, counts.1);
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        self.status_sent = Some((counts, now));
        self.status_due = None;
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC, µs), as
    /// systemd requires since v253: a reload has begun.
    pub(crate) fn reloading(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(t) => self.send(&[NotifyState::Reloading, t]),
            Err(e) => {
                tracing::debug!("CLOCK_MONOTONIC: {e}");
                self.send(&[NotifyState::Reloading]);
            }
        }
    }

    /// `STOPPING=1`: shutdown has begun (every call and tunnel is being closed).
    pub(crate) fn stopping(&mut self, counts: (usize, usize)) {
        let status = format!("stopping: {}", status_text(counts.0, counts.1));
        self.send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
    }

    /// Called by the wakeup loop on every turn, O(1): `WATCHDOG=1` when due,
    /// and `STATUS=` when `counts` (tunnels, sessions) differ from the last
    /// sent and [`STATUS_INTERVAL`] has passed since.
    pub(crate) fn tick(&mut self, now: Instant, counts: (usize, usize)) {
        if !self.enabled {
            return;
        }
        if let (Some(due), Some(period)) = (self.next_watchdog, self.watchdog_period)
            && now >= due
        {
            self.send(&[NotifyState::Watchdog]);
            self.next_watchdog = Some(now + period);
        }
        match self.status_sent {
            Some((sent, _)) if sent == counts => self.status_due = None,
            Some((_, at)) if now < at + STATUS_INTERVAL => {
                self.status_due = Some(at + STATUS_INTERVAL);
            }
            _ => {
                let status = status_text(counts.0, counts.1);
                self.send(&[NotifyState::Status(&status)]);
                self.status_sent = Some((counts, now));
                self.status_due = None;
            }
        }
    }

    /// When [`tick`](Self::tick) next has something to send (the loop
    /// sleeps no longer than this); None when nothing is pending.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.next_watchdog, self.status_due]
            .into_iter()
            .flatten()
            .min()
    }

    fn send(&mut self, state: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        let sent = match std::env::var_os("NOTIFY_SOCKET") {
            // `sd-notify` takes the variable as a path; sd_notify(3) reads a
            // leading '@' as a socket in the abstract namespace.
            Some(s) if s.as_encoded_bytes().starts_with(b"@") => {
                send_abstract(&s.as_encoded_bytes()[1..], state)
            }
            _ => sd_notify::notify(state),
        };
        if let Err(e) = sent {
            if self.failed_once {
                tracing::debug!("sd_notify: {e}");
            } else {
                self.failed_once = true;
                tracing::warn!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
            }
        }
    }
}

/// Send `state` (one `KEY=VALUE` a line) to the abstract Unix datagram
/// socket `name` (without its leading NUL). Errors: the socket's.
fn send_abstract(name: &[u8], state: &[NotifyState]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let msg: String = state.iter().map(|s| format!("{s}\n")).collect();
    let addr = SocketAddr::from_abstract_name(name)?;
    UnixDatagram::unbound()?.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_follows_sd_watchdog_enabled() {
        let s = Some;
        assert_eq!(
            watchdog_timeout(s("200000"), None, 7),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            watchdog_timeout(s("30000000"), s("7"), 7),
            Some(Duration::from_secs(30))
        );
        // Another process's watchdog, or a pid that does not parse.
        assert_eq!(watchdog_timeout(s("200000"), s("8"), 7), None);
        assert_eq!(watchdog_timeout(s("200000"), s("x7"), 7), None);
        assert_eq!(watchdog_timeout(s("200000"), s("0"), 0), None);
        // No watchdog, zero, infinity, garbage.
        assert_eq!(watchdog_timeout(None, s("7"), 7), None);
        assert_eq!(watchdog_timeout(s("0"), None, 7), None);
        let infinity = u64::MAX.to_string();
        assert_eq!(watchdog_timeout(Some(&infinity), None, 7), None);
        assert_eq!(watchdog_timeout(s("-5"), None, 7), None);
        assert_eq!(watchdog_timeout(s("12ms"), None, 7), None);
        assert_eq!(watchdog_timeout(s(""), None, 7), None);
    }

    #[test]
    fn status_text_counts() {
        assert_eq!(status_text(12, 340), "12 tunnels, 340 sessions");
        assert_eq!(status_text(1, 1), "1 tunnel, 1 session");
        assert_eq!(status_text(0, 0), "0 tunnels, 0 sessions");
    }

    #[test]
    fn deadlines_watchdog_and_rate_limited_status() {
        let t0 = Instant::now();
        let mut n = Notifier::new(true, Some(Duration::from_secs(30)), t0);
        // Pings at half the timeout.
        assert_eq!(n.next_deadline(), Some(t0 + Duration::from_secs(15)));
        n.ready(t0, (0, 0));
        // Unchanged counts: nothing pending.
        n.tick(t0 + Duration::from_millis(10), (0, 0));
        assert_eq!(n.next_deadline(), Some(t0 + Duration::from_secs(15)));
        // Changed within the interval: the update waits for it.
        n.tick(t0 + Duration::from_millis(500), (1, 2));
        assert_eq!(n.next_deadline(), Some(t0 + STATUS_INTERVAL));
        // Past it: sent, nothing pending but the next ping.
        n.tick(t0 + STATUS_INTERVAL, (1, 2));
        assert_eq!(n.status_sent, Some(((1, 2), t0 + STATUS_INTERVAL)));
        assert_eq!(n.next_deadline(), Some(t0 + Duration::from_secs(15)));
        // A ping moves the watchdog deadline on by a period.
        let t1 = t0 + Duration::from_secs(16);
        n.tick(t1, (1, 2));
        assert_eq!(n.next_deadline(), Some(t1 + Duration::from_secs(15)));
        // Changed after the interval: sent at once.
        n.tick(t1, (1, 3));
        assert_eq!(n.status_sent, Some(((1, 3), t1)));
        // Changed, then back to the counts last sent before the update
        // went out: nothing pending.
        n.tick(t1 + Duration::from_millis(100), (1, 4));
        assert_eq!(n.next_deadline(), Some(t1 + STATUS_INTERVAL));
        n.tick(t1 + Duration::from_millis(200), (1, 3));
        assert_eq!(n.next_deadline(), Some(t1 + Duration::from_secs(15)));
    }

    #[test]
    fn disabled_has_no_deadline() {
        let t0 = Instant::now();
        let mut n = Notifier::new(false, Some(Duration::from_secs(30)), t0);
        n.tick(t0 + Duration::from_secs(60), (3, 4));
        assert_eq!(n.next_deadline(), None);
        let n = Notifier::new(true, None, t0);
        assert_eq!(n.next_deadline(), None);
    }

    #[test]
    fn tiny_watchdog_does_not_spin() {
        let t0 = Instant::now();
        let n = Notifier::new(true, Some(Duration::from_micros(1)), t0);
        assert_eq!(n.next_deadline(), Some(t0 + MIN_WATCHDOG_PERIOD));
    }
}
