//! Persistent tunnels and calls: re-dial with doubling back-off, re-place
//! calls that ended while their tunnel stayed up.

use std::time::{Duration, Instant};

use super::Daemon;
use l2tp_proto::wire::TunnelId;

/// A persistent tunnel or call to re-establish at `at`.
pub(super) enum Redial {
    Tunnel {
        name: String,
        at: Instant,
    },
    Call {
        tunnel: TunnelId,
        session: String,
        at: Instant,
    },
}

impl Redial {
    pub(super) fn at(&self) -> Instant {
        match self {
            Redial::Tunnel { at, .. } | Redial::Call { at, .. } => *at,
        }
    }
}

/// First re-dial delay of a persistent tunnel; doubles up to [`REDIAL_MAX`].
pub(super) const REDIAL_FIRST: Duration = Duration::from_secs(1);
/// Longest re-dial delay.
pub(super) const REDIAL_MAX: Duration = Duration::from_secs(60);
/// Delay before re-placing a persistent call that ended while its tunnel stayed up.
pub(super) const RECALL_DELAY: Duration = Duration::from_secs(2);

impl Daemon {
    /// Re-establish persistent tunnels and calls that are due.
    pub(super) fn run_redials(&mut self, now: Instant) {
        let (due, later): (Vec<Redial>, Vec<Redial>) = std::mem::take(&mut self.redials)
            .into_iter()
            .partition(|r| r.at() <= now);
        self.redials = later;
        let config = self.config.clone();
        for r in due {
            match r {
                Redial::Tunnel { name, .. } => match config.local_tunnel(&name) {
                    Some(lt) => {
                        tracing::info!(tunnel = %name, "re-establishing persistent tunnel");
                        self.open_local_tunnel(lt);
                    }
                    None => {
                        tracing::info!(tunnel = %name, "persistent tunnel no longer configured; not re-established")
                    }
                },
                Redial::Call {
                    tunnel, session, ..
                } => {
                    let Some(ctx) = self.tunnels.get(&tunnel) else {
                        continue;
                    };
                    let open = self.ep.tunnel(tunnel).is_some_and(|t| t.is_open());
                    if let (true, Some(lt)) = (open, config.local_tunnel(&ctx.name))
                        && let Some(ls) = lt.sessions.iter().find(|s| s.name == session)
                    {
                        self.place_local_call(tunnel, lt, ls);
                    }
                }
            }
        }
    }
}
