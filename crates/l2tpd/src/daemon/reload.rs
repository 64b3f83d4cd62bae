//! SIGHUP (and the API's `SystemReload`): read the configuration again and
//! bring configured tunnels and calls in line with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use l2tp_proto::event::Command;
use l2tp_proto::wire::{SessionId, TunnelId};

use super::persist::*;
use super::{Daemon, incoming_policy, limits};

impl Daemon {
    /// SIGHUP: read the configuration again. An invalid one is rejected and the
    /// running one kept. Profile changes apply to tunnels and calls created from
    /// now on; `[tunnel.NAME]` tables added or removed bring tunnels up or down,
    /// and calls added to or removed from a running tunnel are placed or cleared.
    /// Established sessions of unchanged tunnels are left alone.
    pub(super) fn reload(&mut self) {
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
            .filter(|k| {
                matches!(
                    *k,
                    "listen_addr"
                        | "udp_port"
                        | "data_plane"
                        | "ppp_accm_events"
                        | "api_socket"
                        | "api_group"
                        | "api_readonly_group"
                )
            })
            .collect();
        if !restart_keys.is_empty() {
            tracing::warn!(
                "system keys {} change only when l2tpd restarts",
                restart_keys.join(", ")
            );
        }
        let old_names: HashSet<String> = self
            .config
            .local_tunnels()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let new_names: HashSet<String> =
            new.local_tunnels().iter().map(|t| t.name.clone()).collect();
        self.config = new.clone();
        self.ep.set_policy(incoming_policy(new.clone()));
        self.ep.set_limits(limits(&new));
        let now = Instant::now();
        let (mut added, mut removed) = (0, 0);
        for name in old_names.difference(&new_names) {
            removed += 1;
            self.redials
                .retain(|r| !matches!(r, Redial::Tunnel { name: n, .. } if n == name));
            let ids: Vec<TunnelId> = self
                .tunnels
                .iter()
                .filter(|(_, c)| c.local && &c.name == name)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(c) = self.tunnels.get_mut(&id) {
                    c.persist = false;
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
        for lt in new.local_tunnels() {
            if !old_names.contains(&lt.name) {
                added += 1;
                self.open_local_tunnel(lt);
                continue;
            }
            // A tunnel in both: calls added or removed.
            let Some((&id, ctx)) = self
                .tunnels
                .iter_mut()
                .find(|(_, c)| c.local && c.name == lt.name)
            else {
                continue;
            };
            ctx.persist = lt.persist;
            let running: HashMap<String, u16> = self
                .sessions
                .iter()
                .filter(|((t, _), _)| *t == id.0)
                .filter_map(|((_, s), c)| c.local_call.clone().map(|n| (n, *s)))
                .collect();
            for ls in &lt.sessions {
                if !running.contains_key(&ls.name) {
                    self.place_local_call(id, lt, ls);
                }
            }
            for (name, sid) in running {
                if !lt.sessions.iter().any(|s| s.name == name) {
                    if let Some(c) = self.sessions.get_mut(&(id.0, sid)) {
                        c.local_call = None;
                    }
                    let cmd = Command::CloseSession {
                        tunnel: id,
                        session: SessionId(sid),
                        result: 3,
                        message: Some("removed from the configuration".into()),
                    };
                    let _ = self.ep.handle_command(now, &mut self.rng, cmd);
                }
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
}
