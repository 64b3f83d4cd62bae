//! The driver's own deadlines, in one ordered index: pppds to kill when
//! their grace period ends, persistent tunnels to re-dial, persistent calls
//! to re-place. The loop sleeps until the earliest of this index and the
//! protocol core's `poll_timeout()`; a wakeup pops what is due, O(log n)
//! each, and never looks at the rest.
//!
//! Entries are removed when what they stand for goes away early (a pppd
//! that exits in time, a re-dial cancelled), and checked again when they
//! fire, so a stale entry does nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use l2tp_proto::wire::{SessionId, TunnelId};

/// What is due at a deadline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The stopping pppd of this session gets SIGKILL and its kernel session is deleted.
    KillPppd {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// Our session id.
        session: SessionId,
    },
    /// Re-dial the persistent tunnel `[tunnel.NAME]`.
    Redial {
        /// The tunnel's configuration name.
        name: Arc<str>,
    },
    /// Place the persistent call `[tunnel.T.session.NAME]` again in its tunnel.
    Recall {
        /// Our tunnel id.
        tunnel: TunnelId,
        /// The call's configuration name.
        call: Arc<str>,
    },
}

/// The driver's deadlines, ordered by time.
#[derive(Debug, Default)]
pub(super) struct Timers {
    set: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    /// Arm `timer` for `at`.
    pub(super) fn add(&mut self, at: Instant, timer: Timer) {
        self.set.insert((at, timer));
    }

    /// Disarm `timer` armed for `at`.
    pub(super) fn cancel(&mut self, at: Instant, timer: Timer) {
        self.set.remove(&(at, timer));
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.set.first().map(|(at, _)| *at)
    }

    /// The earliest timer due at `now`, taken out.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next()? > now {
            return None;
        }
        self.set.pop_first().map(|(_, t)| t)
    }

    /// Disarm every re-dial and re-placed call (shutdown).
    pub(super) fn cancel_persistence(&mut self) {
        self.set
            .retain(|(_, t)| matches!(t, Timer::KillPppd { .. }));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_timers_come_out_in_order_and_cancelled_ones_never() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let kill = Timer::KillPppd {
            tunnel: TunnelId(1),
            session: SessionId(2),
        };
        let redial = Timer::Redial { name: "a".into() };
        timers.add(t0 + Duration::from_secs(2), redial.clone());
        timers.add(t0 + Duration::from_secs(1), kill.clone());
        timers.add(
            t0 + Duration::from_secs(3),
            Timer::Recall {
                tunnel: TunnelId(1),
                call: "c".into(),
            },
        );
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        timers.cancel(t0 + Duration::from_secs(1), kill);
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(2)), Some(redial));
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(2)), None);
        timers.cancel_persistence();
        assert_eq!(timers.next(), None);
    }
}
