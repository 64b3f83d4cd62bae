//! What the driver does on the protocol core's events (tunnel and session
//! up/down, crossed SCCRQs, WEN, SLI).

use std::time::Instant;

use l2tp_proto::event::Event;

use super::persist::*;
use super::{Daemon, TunnelCtx};

impl Daemon {
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
                if let Some(c) = self.tunnels.get(&tunnel)
                    && c.local
                {
                    self.backoff.remove(&c.name);
                }
                if !self.tunnels.contains_key(&tunnel) {
                    let m = self
                        .config
                        .match_peer(peer.ip(), Some(peer_host_name.as_bytes()));
                    let (_, session, ppp) = self.config.resolve_incoming(&m);
                    self.tunnels.insert(
                        tunnel,
                        TunnelCtx {
                            name: format!("incoming-{peer}"),
                            local: false,
                            persist: false,
                            incoming: Some((session, ppp)),
                        },
                    );
                }
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, peer_tunnel_id = peer_tunnel.0, %peer, peer_host_name, "tunnel up");
            }
            Event::TunnelDown { tunnel, reason } => {
                tracing::info!(tunnel = %self.tunnel_name(tunnel), tunnel_id = tunnel.0, "tunnel down: {reason}");
                if let Some(c) = self.tunnels.get(&tunnel)
                    && c.persist
                    && !self.shutting_down
                    && reason != l2tp_proto::event::CloseReason::TieBreakerLost
                {
                    let delay = self.backoff.get(&c.name).copied().unwrap_or(REDIAL_FIRST);
                    self.backoff
                        .insert(c.name.clone(), (delay * 2).min(REDIAL_MAX));
                    tracing::info!(tunnel = %c.name, "persistent tunnel: re-establishing in {delay:?}");
                    self.redials.push(Redial::Tunnel {
                        name: c.name.clone(),
                        at: Instant::now() + delay,
                    });
                }
            }
            Event::TunnelFreed { tunnel } => {
                // The socket closes when no tunnel uses it any more.
                self.sockets.release(tunnel);
                self.tunnels.remove(&tunnel);
                tracing::debug!(tunnel_id = tunnel.0, "tunnel freed");
            }
            Event::SessionUp {
                tunnel,
                session,
                peer_session,
                call_type,
            } => {
                let ctx = self.sessions.get(&(tunnel.0, session.0));
                tracing::info!(
                    tunnel = %self.tunnel_name(tunnel),
                    session = ctx.map_or("", |c| c.name.as_str()),
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
                // A configured call of a persistent tunnel that is still up is placed again.
                let recall = self
                    .sessions
                    .get(&(tunnel.0, session.0))
                    .and_then(|c| c.local_call.clone());
                if let Some(name) = recall
                    && !self.shutting_down
                    && self.tunnels.get(&tunnel).is_some_and(|c| c.persist)
                    && self.ep.tunnel(tunnel).is_some_and(|t| t.is_open())
                {
                    tracing::info!(tunnel = %self.tunnel_name(tunnel), session = %name, "persistent call: placing it again in {RECALL_DELAY:?}");
                    self.redials.push(Redial::Call {
                        tunnel,
                        session: name,
                        at: Instant::now() + RECALL_DELAY,
                    });
                }
                // Sessions that never reached the data plane leave no DeleteSession action.
                if self
                    .sessions
                    .get(&(tunnel.0, session.0))
                    .is_some_and(|c| !c.kernel)
                {
                    self.sessions.remove(&(tunnel.0, session.0));
                }
            }
            Event::TunnelReplaced { old, new, sessions } => {
                tracing::info!(
                    old_tunnel_id = old.0,
                    tunnel_id = new.0,
                    calls = sessions.len(),
                    "crossed SCCRQs: the peer's tunnel replaces ours"
                );
                if let Some(ctx) = self.tunnels.remove(&old) {
                    self.tunnels.insert(new, ctx);
                }
                for s in sessions {
                    if let Some(c) = self.sessions.remove(&(old.0, s.0)) {
                        self.sessions.insert((new.0, s.0), c);
                    }
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
}
