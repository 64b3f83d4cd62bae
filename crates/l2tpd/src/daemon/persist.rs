//! Persistent tunnels and calls (`persist = true`): a tunnel that goes down
//! is dialled again after a back-off that doubles from [`REDIAL_FIRST`] up
//! to [`REDIAL_MAX`] and starts afresh once it comes up; a configured call
//! of a persistent tunnel that ends for any reason while its tunnel stays
//! up (pppd died, the peer sent a CDN, the kernel refused its session, it
//! never got established) is placed again after a back-off that doubles from
//! [`RECALL_FIRST`] up to [`REDIAL_MAX`] and starts afresh once a call has
//! stayed up for [`RECALL_STABLE`]. A call cleared on purpose (`l2tpctl
//! session delete`, removed from the configuration) is not configured any
//! more and is not placed again. Both wait in the driver's timer index.
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
/// First delay before re-placing a persistent call that ended while its
/// tunnel stayed up; doubles up to [`REDIAL_MAX`].
const RECALL_FIRST: Duration = Duration::from_secs(2);
/// A call that was up this long before it ended is placed again after
/// [`RECALL_FIRST`], whatever happened before.
pub(super) const RECALL_STABLE: Duration = Duration::from_secs(60);

/// Re-dial state of persistent tunnels, by configuration name.
#[derive(Debug, Default)]
pub(super) struct Persist {
    /// The next re-dial delay.
    backoff: HashMap<Arc<str>, Duration>,
    /// When a re-dial is due (its entry in the timer index).
    due: HashMap<Arc<str>, Instant>,
    /// The next re-place delay of persistent calls, by (tunnel name, call
    /// name); only calls that ended before [`RECALL_STABLE`] have one.
    recall_backoff: HashMap<(Arc<str>, Arc<str>), Duration>,
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
        self.persist.recall_backoff.clear();
        self.timers.cancel_persistence();
    }

    /// Tunnel `name` came up: its next back-off starts afresh.
    pub(super) fn reset_backoff(&mut self, name: &str) {
        self.persist.backoff.remove(name);
    }

    /// The persistent call `call` of tunnel `tunnel` ended while the tunnel
    /// stays up: place it again after its back-off (which starts afresh when
    /// the call had been `stable`, up for [`RECALL_STABLE`] or more).
    pub(super) fn schedule_recall(&mut self, tunnel: TunnelId, call: Arc<str>, stable: bool) {
        let Some(tname) = self.reg.tunnel(tunnel).map(|e| e.name.clone()) else {
            return;
        };
        let key = (tname, call.clone());
        if stable {
            self.persist.recall_backoff.remove(&key);
        }
        let delay = self
            .persist
            .recall_backoff
            .get(&key)
            .copied()
            .unwrap_or(RECALL_FIRST);
        self.persist
            .recall_backoff
            .insert(key, (delay * 2).min(REDIAL_MAX));
        tracing::info!(tunnel = %self.tunnel_name(tunnel), session = %call, "persistent call: placing it again in {delay:?}");
        self.timers
            .add(Instant::now() + delay, Timer::Recall { tunnel, call });
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
        let ls_tunnel = entry.name.clone();
        if let Some(ls) = config
            .local_tunnel(&ls_tunnel)
            .and_then(|lt| configured_call(lt, &call))
        {
            tracing::info!(tunnel = %ls_tunnel, session = %ls.name, tunnel_id = tunnel.0, "placing the persistent call again");
            self.place_configured_call(tunnel, ls);
        }
    }
}
