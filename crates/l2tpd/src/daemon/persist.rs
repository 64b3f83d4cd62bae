//! Persistent tunnels and calls (`persist = true`): a tunnel that goes down
//! is dialled again after a back-off that doubles from [`REDIAL_FIRST`] up
//! to [`REDIAL_MAX`] and starts afresh once it comes up; a configured call
//! of a persistent tunnel that ends while its tunnel stays up is placed
//! again after [`RECALL_DELAY`] (as before the registry, only a call that
//! ends before it is established: one whose data plane was deleted is not;
//! see `session_down` in `events`). Both wait in the driver's timer index.
//!
//! The back-off belongs to the tunnel's configuration name, not to a tunnel
//! id: each re-dial is a new tunnel with a new id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2tp_proto::wire::TunnelId;

use super::Daemon;
use super::local::configured_call;
use super::timers::Timer;

/// First re-dial delay of a persistent tunnel; doubles up to [`REDIAL_MAX`].
const REDIAL_FIRST: Duration = Duration::from_secs(1);
/// Longest re-dial delay.
const REDIAL_MAX: Duration = Duration::from_secs(60);
/// Delay before re-placing a persistent call that ended while its tunnel stayed up.
const RECALL_DELAY: Duration = Duration::from_secs(2);

/// Re-dial state of persistent tunnels, by configuration name.
#[derive(Debug, Default)]
pub(super) struct Persist {
    /// The next re-dial delay.
    backoff: HashMap<Arc<str>, Duration>,
    /// When a re-dial is due (its entry in the timer index).
    due: HashMap<Arc<str>, Instant>,
}

impl Daemon {
    /// Persistent tunnel `name` went down: dial it again after its back-off,
    /// which doubles. A re-dial already due stays as it is.
    pub(super) fn schedule_redial(&mut self, name: &Arc<str>) {
        if self.persist.due.contains_key(name) {
            return;
        }
        let delay = self
            .persist
            .backoff
            .get(name)
            .copied()
            .unwrap_or(REDIAL_FIRST);
        self.persist
            .backoff
            .insert(name.clone(), (delay * 2).min(REDIAL_MAX));
        tracing::info!(tunnel = %name, "persistent tunnel: re-establishing in {delay:?}");
        let at = Instant::now() + delay;
        self.persist.due.insert(name.clone(), at);
        self.timers.add(at, Timer::Redial { name: name.clone() });
    }

    /// Tunnel `name` is no longer to be re-dialled (removed, deleted).
    pub(super) fn cancel_redial(&mut self, name: &str) {
        if let Some((name, at)) = self.persist.due.remove_entry(name) {
            self.timers.cancel(at, Timer::Redial { name });
        }
    }

    /// Shutdown: nothing is re-dialled or placed again any more.
    pub(super) fn cancel_persistence(&mut self) {
        self.persist.due.clear();
        self.timers.cancel_persistence();
    }

    /// Tunnel `name` came up: its next back-off starts afresh.
    pub(super) fn reset_backoff(&mut self, name: &str) {
        self.persist.backoff.remove(name);
    }

    /// The persistent call `call` of tunnel `tunnel` ended while the tunnel
    /// stays up: place it again in a moment.
    pub(super) fn schedule_recall(&mut self, tunnel: TunnelId, call: Arc<str>) {
        tracing::info!(tunnel = %self.tunnel_name(tunnel), session = %call, "persistent call: placing it again in {RECALL_DELAY:?}");
        self.timers.add(
            Instant::now() + RECALL_DELAY,
            Timer::Recall { tunnel, call },
        );
    }

    /// A re-dial is due: open the tunnel again if it is still configured.
    pub(super) fn redial(&mut self, name: Arc<str>) {
        self.persist.due.remove(&name);
        let config = self.config.clone();
        match config.local_tunnel(&name) {
            Some(lt) => {
                tracing::info!(tunnel = %name, "re-establishing persistent tunnel");
                self.open_tunnel(lt);
            }
            None => {
                tracing::info!(tunnel = %name, "persistent tunnel no longer configured; not re-established")
            }
        }
    }

    /// A re-placed call is due: place it if its tunnel is still open, it is
    /// still configured, and it has not been placed again meanwhile.
    pub(super) fn recall(&mut self, tunnel: TunnelId, call: Arc<str>) {
        let Some(entry) = self.reg.tunnel(tunnel) else {
            return;
        };
        let open = self.ep.tunnel(tunnel).is_some_and(|t| t.is_open());
        if !open || entry.is_freed() || self.reg.session_named(tunnel, &call).is_some() {
            return;
        }
        let config = self.config.clone();
        if let Some(ls) = config
            .local_tunnel(&entry.name)
            .and_then(|lt| configured_call(lt, &call))
        {
            self.place_configured_call(tunnel, ls);
        }
    }
}
