//! A token bucket on the caller's clock, for answers and log lines a peer
//! can provoke one datagram at a time (junk, unknown tunnels): at most
//! `burst` at once and `per_sec` per second on average, with a count of what
//! was held back.

use std::time::Instant;

/// Token bucket: [`allow`](Self::allow) says whether one more event may
/// happen at `now`. Deterministic (no clock of its own), O(1), 40 octets.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Tokens added per second.
    per_sec: u64,
    /// Bucket size, in thousandths of a token.
    cap_milli: u64,
    /// Tokens in the bucket, in thousandths.
    milli: u64,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimiter {
    /// At most `burst` events at once, refilled at `per_sec` events per
    /// second. The bucket starts full. `burst` 0 allows nothing.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let cap_milli = u64::from(burst) * 1000;
        Self {
            per_sec: u64::from(per_sec),
            cap_milli,
            milli: cap_milli,
            last: None,
            suppressed: 0,
        }
    }

    /// One event at `now`: `Some(n)` when it may happen, `n` being how many
    /// were refused since the last one allowed (to report, e.g. "n similar
    /// lines suppressed"); `None` when it is refused (and counted). A `now`
    /// earlier than a previous one adds no tokens.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if let Some(last) = self.last {
            let ms = now.saturating_duration_since(last).as_millis();
            let add = u64::try_from(ms)
                .unwrap_or(u64::MAX)
                .saturating_mul(self.per_sec);
            self.milli = self.milli.saturating_add(add).min(self.cap_milli);
            // Keep the sub-millisecond remainder: advance `last` only by whole ms.
            self.last = Some(
                last + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)),
            );
        } else {
            self.last = Some(now);
        }
        if self.milli >= 1000 {
            self.milli -= 1000;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Events refused since the last one allowed.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate_with_suppressed_count() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(2, 3);
        assert_eq!(r.allow(t0), Some(0));
        assert_eq!(r.allow(t0), Some(0));
        assert_eq!(r.allow(t0), Some(0));
        for _ in 0..10 {
            assert_eq!(r.allow(t0), None);
        }
        assert_eq!(r.suppressed(), 10);
        // Half a second later one token is back: allowed, and told about the 10.
        assert_eq!(r.allow(t0 + Duration::from_millis(500)), Some(10));
        assert_eq!(r.allow(t0 + Duration::from_millis(500)), None);
        // A long pause refills only up to the burst.
        let t1 = t0 + Duration::from_secs(3600);
        assert_eq!(r.allow(t1), Some(1));
        assert_eq!(r.allow(t1), Some(0));
        assert_eq!(r.allow(t1), Some(0));
        assert_eq!(r.allow(t1), None);
    }

    #[test]
    fn steady_flood_is_held_to_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 10);
        let mut allowed = 0;
        // 10,000 events a second for 10 s: 10 at once plus 10 per second.
        for i in 0..100_000u64 {
            if r.allow(t0 + Duration::from_micros(i * 100)).is_some() {
                allowed += 1;
            }
        }
        assert!((100..=111).contains(&allowed), "{allowed}");
    }

    #[test]
    fn clock_going_back_adds_nothing_and_zero_burst_allows_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut r = RateLimiter::new(1, 1);
        assert!(r.allow(t0).is_some());
        assert!(r.allow(t0 - Duration::from_secs(5)).is_none());
        let mut z = RateLimiter::new(100, 0);
        assert!(z.allow(t0).is_none());
        assert!(z.allow(t0 + Duration::from_secs(5)).is_none());
    }
}
