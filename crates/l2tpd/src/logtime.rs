//! The timestamps of stderr log lines, formatted once per second.
//!
//! tracing-subscriber's default timer (`SystemTime`) formats the whole
//! RFC 3339 date and time for every line: at tens of thousands of
//! `session up` lines a second that was about 3 % of the daemon's CPU time
//! (perf, `cargo xtask bench --only sessions-65535`). [`CachedUtc`] prints
//! the same text, `2026-11-30T13:46:23.753259Z` (UTC, microseconds), but
//! formats the date and time of day only when the second changes (per
//! thread) and otherwise appends the microseconds to the kept prefix.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The log layer's timer: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CachedUtc;

thread_local! {
    /// This thread's last second (s since the Unix epoch) and its prefix
    /// `YYYY-MM-DDTHH:MM:SS.`.
    static LAST: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

impl FormatTime for CachedUtc {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        // Before 1970 (a clock set wrong): printed as the epoch.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, micros) = (now.as_secs(), now.subsec_micros());
        LAST.with_borrow_mut(|(last, prefix)| {
            if *last != secs || prefix.is_empty() {
                *last = secs;
                prefix.clear();
                write_prefix(prefix, secs);
            }
            write!(w, "{prefix}{micros:06}Z")
        })
    }
}

/// Append `YYYY-MM-DDTHH:MM:SS.` for `secs` seconds since the Unix epoch (UTC).
fn write_prefix(out: &mut String, secs: u64) {
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
}

/// (year, month 1–12, day 1–31) of the proleptic Gregorian calendar for
/// `days` days after 1970-01-01: H. Hinnant's `civil_from_days`
/// ("chrono-Compatible Low-Level Date Algorithms"), for days ≥ 0.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of the 400-year era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from 1 March
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(secs: u64) -> String {
        let mut s = String::new();
        write_prefix(&mut s, secs);
        s
    }

    #[test]
    fn dates_across_months_leap_days_and_centuries() {
        assert_eq!(prefix(0), "1970-01-01T00:00:00.");
        assert_eq!(prefix(951_782_400), "2000-02-29T00:00:00.");
        assert_eq!(prefix(951_868_799), "2000-02-29T23:59:59.");
        assert_eq!(prefix(951_868_800), "2000-03-01T00:00:00.");
        assert_eq!(prefix(1_709_164_800), "2024-02-29T00:00:00.");
        assert_eq!(prefix(1_735_689_599), "2024-12-31T23:59:59.");
        assert_eq!(prefix(1_796_045_183), "2026-11-30T13:26:23.");
        assert_eq!(prefix(4_107_542_400), "2100-03-01T00:00:00.");
        assert_eq!(prefix(4_107_456_000), "2100-02-28T00:00:00.");
    }

    /// Every day of 1970–2400 follows the one before it.
    #[test]
    fn consecutive_days_follow_the_calendar() {
        let leap = |y: u64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut prev = civil_from_days(0);
        for days in 1..157_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            let month_len = match pm {
                2 if leap(py) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let want = if pd < month_len {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), want, "day {days}");
            prev = (y, m, d);
        }
    }

    /// The same text as tracing-subscriber's own timer, to the second.
    #[test]
    fn same_text_as_tracing_subscribers_timer() {
        use tracing_subscriber::fmt::time::SystemTime as Default;
        for _ in 0..3 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            CachedUtc.format_time(&mut Writer::new(&mut ours)).unwrap();
            Default.format_time(&mut Writer::new(&mut theirs)).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
            if ours[..19] == theirs[..19] {
                assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
                return;
            }
            // The second changed between the two calls: again.
        }
        panic!("three seconds changed under three pairs of calls");
    }
}
