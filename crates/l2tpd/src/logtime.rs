//! The timestamps of stderr log lines, formatted once per second.
//!
//! tracing-subscriber's default timer (`SystemTime`) formats the whole
//! RFC 3339 date and time for every line: at tens of thousands of
//! `session up` lines a second that was about 3 % of the daemon's CPU time
//! (perf, `cargo xtask bench --only sessions-65535`). [`CachedUtc`] prints
//! the same text, `2026-11-30T13:46:23.753259Z` (UTC, microseconds), but
//! formats the date and time of day (with humantime) only when the second
//! changes (per thread) and otherwise appends the microseconds to the kept
//! prefix.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The log layer's timer: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CachedUtc;

thread_local! {
    /// This thread's last second (s since the Unix epoch; none yet:
    /// `u64::MAX`) and its prefix `YYYY-MM-DDTHH:MM:SS.`.
    static LAST: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for CachedUtc {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        // Before 1970 (a clock set wrong): printed as the epoch.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, micros) = (now.as_secs(), now.subsec_micros());
        LAST.with_borrow_mut(|(last, prefix)| {
            if *last != secs {
                *last = secs;
                *prefix = date_and_time(secs);
            }
            write!(w, "{prefix}{micros:06}Z")
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` for `secs` seconds since the Unix epoch (UTC):
/// humantime's RFC 3339 text without its `Z`.
fn date_and_time(secs: u64) -> String {
    let mut s =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string();
    s.pop();
    s.push('.');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(secs: u64) -> String {
        date_and_time(secs)
    }

    /// (year, month, day) of the prefix for day `days` after 1970-01-01.
    fn civil_from_days(days: u64) -> (u64, u64, u64) {
        let p = prefix(days * 86_400);
        let field = |r: std::ops::Range<usize>| p[r].parse::<u64>().unwrap();
        (field(0..4), field(5..7), field(8..10))
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
