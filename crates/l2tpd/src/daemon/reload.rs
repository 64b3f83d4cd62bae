//! SIGHUP (and the API's `SystemReload`): read the configuration again and
//! bring configured tunnels and calls in line with it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use l2tp_proto::event::Command;
use l2tp_proto::wire::{SessionId, TunnelId};

use super::local::configured_call;
use super::{Daemon, limits};

/// `[system]` keys read at start only: a reload that changes one warns that
/// it takes effect when l2tpd restarts.
pub(super) const RESTART_KEYS: &[&str] = &[
    "listen_addr",
    "udp_port",
    "data_plane",
    "ppp_accm_events",
    "pppd_nice",
    "api_socket",
    "api_group",
    "api_readonly_group",
    "metrics_listen",
];

impl Daemon {
    /// SIGHUP or the API's `SystemReload`: [`reload_config`](Self::reload_config)
    /// between `RELOADING=1` and `READY=1` to the service manager (`READY=1`
    /// also when the new configuration is rejected: the old one keeps running).
    pub(super) fn reload(&mut self) {
        self.notify.reloading();
        self.reload_config();
        self.notify.ready(Instant::now(), self.counts());
    }

    /// Read the configuration again. An invalid one is rejected and the
    /// running one kept. Profile changes apply to tunnels and calls created from
    /// now on; `[tunnel.NAME]` tables added or removed bring tunnels up or down,
    /// and calls added to or removed from a running tunnel are placed or cleared.
    /// Established sessions of unchanged tunnels are left alone.
    ///
    /// Work done: O(configured tunnels), plus the calls of the tunnels in both
    /// configurations; the registry's name index finds the running tunnels.
    fn reload_config(&mut self) {
        let new = match self.api.reload(&self.config_paths) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(
                    "configuration reload failed; keeping the running configuration:\n{e}"
                );
                return;
            }
        };
        for w in new.warnings() {
            tracing::warn!("{w}");
        }
        let restart_keys: Vec<&str> = self
            .config
            .changes(&new)
            .system_keys
            .into_iter()
            .filter(|k| RESTART_KEYS.contains(k))
            .collect();
        if !restart_keys.is_empty() {
            tracing::warn!(
                "system keys {} change only when l2tpd restarts",
                restart_keys.join(", ")
            );
        }
        let old = self.config.clone();
        self.set_config(new.clone());
        self.ep.set_limits(limits(&new));
        // pppd_max_starting may have been raised.
        self.decide_held_calls();
        let now = Instant::now();
        let (mut added, mut removed) = (0, 0);
        for lt in old.local_tunnels() {
            if self.config.local_tunnel(&lt.name).is_some() {
                continue;
            }
            removed += 1;
            let name = lt.name.as_str();
            self.cancel_redial(name);
            let ids: Vec<TunnelId> = self
                .reg
                .tunnels_named(name)
                .filter(|id| self.reg.tunnel(*id).is_some_and(|t| t.local))
                .collect();
            for id in ids {
                if let Some(t) = self.reg.tunnel_mut(id) {
                    t.persist = false;
                }
                tracing::info!(tunnel = %name, tunnel_id = id.0, "tunnel removed from the configuration: closing it");
                let cmd = Command::CloseTunnel {
                    tunnel: id,
                    result: 1,
                    message: Some("removed from the configuration".into()),
                };
                let _ = self.ep.handle_command(now, &mut self.rng, cmd);
            }
        }
        let config = self.config.clone();
        for lt in config.local_tunnels() {
            if old.local_tunnel(&lt.name).is_none() {
                added += 1;
                self.open_tunnel(lt);
                continue;
            }
            // A tunnel in both: calls added or removed.
            let Some(id) = self.running_local_tunnel(&lt.name) else {
                continue;
            };
            let Some(entry) = self.reg.tunnel_mut(id) else {
                continue;
            };
            entry.persist = lt.persist;
            let running: Vec<(Arc<str>, SessionId)> = entry
                .configured_calls()
                .map(|(n, s)| (n.clone(), s))
                .collect();
            let running_names: HashSet<&str> = running.iter().map(|(n, _)| &**n).collect();
            let missing: Vec<_> = lt
                .sessions
                .iter()
                .filter(|ls| !running_names.contains(ls.name.as_str()))
                .collect();
            if !missing.is_empty() {
                tracing::info!(tunnel = %lt.name, tunnel_id = id.0, calls = missing.len(), "placing configured calls");
            }
            for ls in missing {
                self.place_configured_call(id, ls);
            }
            for (name, sid) in running {
                if configured_call(lt, &name).is_some() {
                    continue;
                }
                if let Some(c) = self.reg.session_mut(id, sid) {
                    c.configured = false;
                }
                let cmd = Command::CloseSession {
                    tunnel: id,
                    session: sid,
                    result: 3,
                    error: None,
                    message: Some("removed from the configuration".into()),
                };
                let _ = self.ep.handle_command(now, &mut self.rng, cmd);
            }
        }
        let sources: Vec<String> = self
            .config
            .sources()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        tracing::info!(added, removed, sources = %sources.join(" "), "configuration reloaded");
    }

    /// The running tunnel of `[tunnel.NAME]`: one not down if there is one
    /// (a persistent tunnel's old instance may still be closing).
    fn running_local_tunnel(&self, name: &str) -> Option<TunnelId> {
        let mut ids = self
            .reg
            .tunnels_named(name)
            .filter(|id| self.reg.tunnel(*id).is_some_and(|t| t.local));
        let first = ids.next()?;
        let live = |id: &TunnelId| self.reg.tunnel(*id).is_some_and(|t| !t.down);
        if live(&first) {
            return Some(first);
        }
        Some(ids.find(live).unwrap_or(first))
    }
}
