//! What the protocol core's events do to the registry: tunnels up, down and
//! freed, sessions up and down, crossed SCCRQs (`TunnelReplaced`), and the
//! WEN / SLI reports, which are only logged. Each event touches one entry,
//! O(1) (a crossed SCCRQ moves one tunnel's calls).

use l2tp_proto::event::{CloseReason, Event};
use l2tp_proto::wire::{SessionId, TunnelId};

use super::Daemon;
use super::registry::TunnelEntry;

impl Daemon {
    /// Act on one event of the core (after the API has published it).
    pub(super) fn event(&mut self, e: Event) {
        self.api_event(&e);
        match e {
            Event::TunnelUp {
                tunnel,
                peer_tunnel,
                peer,
                peer_host_name,
            } => {
                // A persistent tunnel that came up starts its back-off afresh.
                if let Some(c) = self.reg.tunnel(tunnel)
                    && c.local
                {
                    let name = c.name.clone();
                    self.reset_backoff(&name);
                }
                self.ensure_tunnel_entry(tunnel);
                if let Some(st) = self.state.as_mut() {
                    st.tunnel_up(tunnel.0, peer_tunnel.0, peer);
                }
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, peer_tunnel_id = peer_tunnel.0, %peer, %peer_host_name, "tunnel up");
            }
            Event::TunnelDown { tunnel, reason } => {
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, "tunnel down: {reason}");
                let shutting_down = self.shutting_down();
                let Some(c) = self.reg.tunnel_mut(tunnel) else {
                    return;
                };
                c.down = true;
                if c.persist && !shutting_down && reason != CloseReason::TieBreakerLost {
                    let name = c.name.clone();
                    self.schedule_redial(&name);
                }
            }
            Event::TunnelFreed { tunnel } => {
                // The socket closes when no tunnel uses it any more.
                self.sockets.release(tunnel);
                if let Some(st) = self.state.as_mut() {
                    st.tunnel_gone(tunnel.0);
                }
                self.free_tunnel(tunnel);
                tracing::debug!(tunnel_id = tunnel.0, "tunnel freed");
            }
            Event::SessionUp {
                tunnel,
                session,
                peer_session,
                call_type,
            } => {
                if let Some(c) = self.reg.session_mut(tunnel, session) {
                    c.up_since = Some(std::time::Instant::now());
                }
                let ctx = self.reg.session(tunnel, session);
                tracing::info!(
                    tunnel = %self.tunnel_name(tunnel),
                    session = ctx.map_or("", |c| &*c.name),
                    tunnel_id = tunnel.0, session_id = session.0, peer_session_id = peer_session.0,
                    call_type = %call_type,
                    pppd_pid = ctx.and_then(|c| c.pppd_pid).unwrap_or(0),
                    "session up"
                );
            }
            Event::SessionDown {
                tunnel,
                session,
                reason,
            } => {
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, session_id = session.0, "session down: {reason}");
                self.session_down(tunnel, session);
                self.pppd_start_settled(tunnel, session);
            }
            Event::TunnelReplaced { old, new, sessions } => {
                tracing::info!(
                    old_tunnel_id = old.0,
                    tunnel_id = new.0,
                    calls = sessions.len(),
                    "crossed SCCRQs: the peer's tunnel replaces ours"
                );
                self.drain_freed_tunnel(new);
                if self.reg.tunnel(new).is_some() {
                    tracing::warn!(
                        tunnel_id = new.0,
                        "the peer's tunnel has an entry already; not moving the calls"
                    );
                } else {
                    self.reg.rekey_tunnel(old, new);
                }
            }
            Event::WanErrorNotify {
                tunnel,
                session,
                errors,
            } => {
                tracing::info!(
                    tunnel_id = tunnel.0,
                    session_id = session.0,
                    ?errors,
                    "WAN-Error-Notify"
                );
            }
            Event::SetLinkInfo {
                tunnel,
                session,
                send_accm,
                recv_accm,
            } => {
                tracing::info!(
                    tunnel_id = tunnel.0,
                    session_id = session.0,
                    send_accm = format_args!("{send_accm:#010x}"),
                    recv_accm = format_args!("{recv_accm:#010x}"),
                    "Set-Link-Info"
                );
            }
        }
    }

    /// Give a peer's tunnel its registry entry (named `incoming-<peer>`,
    /// with the call parameters its peer profile resolves to) if it has
    /// none. False when the core has no such tunnel.
    pub(super) fn ensure_tunnel_entry(&mut self, id: TunnelId) -> bool {
        if self.reg.tunnel(id).is_some_and(|t| !t.is_freed()) {
            return true;
        }
        self.drain_freed_tunnel(id);
        let Some(t) = self.ep.tunnel(id) else {
            return false;
        };
        let m = self.config.match_peer(t.peer.ip(), Some(&t.peer_host_name));
        let calls = self.config.incoming_calls(&m);
        let name = format!("incoming-{}", t.peer);
        self.reg
            .insert_tunnel(id, TunnelEntry::new(&name, false, false, None, Some(calls)));
        true
    }

    /// The core reported session `s` down: a configured call of a persistent
    /// tunnel still open is placed again, whatever ended it (a call cleared
    /// on purpose is no longer `configured`); the entry goes once its data
    /// plane is gone.
    fn session_down(&mut self, t: TunnelId, s: SessionId) {
        let Some(c) = self.reg.session_mut(t, s) else {
            return;
        };
        c.down = true;
        let stable = c
            .up_since
            .is_some_and(|at| at.elapsed() >= super::persist::RECALL_STABLE);
        let recall = c.configured.then(|| c.name.clone());
        let orphan = c.kernel && !c.released;
        self.reg.unindex_session(t, s);
        if let Some(name) = recall
            && !self.shutting_down()
            && self.reg.tunnel(t).is_some_and(|c| c.persist)
            && self.ep.tunnel(t).is_some_and(|x| x.is_open())
        {
            self.schedule_recall(t, name, stable);
        }
        if orphan {
            // Down with a kernel session the core never asked to delete.
            self.delete_session(t, s);
        }
        self.reg.remove_session_if_done(t, s);
        self.reg.remove_tunnel_if_done(t);
    }

    /// The core freed tunnel `t`: its name is free again; the entry stays
    /// until its stopping sessions and kernel tunnel are gone.
    fn free_tunnel(&mut self, t: TunnelId) {
        let Some(entry) = self.reg.tunnel(t) else {
            return;
        };
        // Calls the core never reported down (none in practice): stop their data plane.
        let live: Vec<SessionId> = entry
            .sessions()
            .filter(|(_, s)| !s.down)
            .map(|(id, _)| id)
            .collect();
        self.reg.mark_freed(t);
        for s in live {
            tracing::debug!(
                tunnel_id = t.0,
                session_id = s.0,
                "session left in a freed tunnel"
            );
            if let Some(c) = self.reg.session_mut(t, s) {
                c.down = true;
            }
            self.reg.unindex_session(t, s);
            self.delete_session(t, s);
            self.reg.remove_session_if_done(t, s);
        }
        self.reg.remove_tunnel_if_done(t);
    }
}
