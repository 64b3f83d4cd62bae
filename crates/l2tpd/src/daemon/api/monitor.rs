//! Protocol events published to `Monitor` callers.

use l2tp_api::types::{self as t};
use l2tp_proto::event::Event;
use l2tp_proto::wire::{SessionId, TunnelId};
use tokio::sync::broadcast;

use super::super::Daemon;
use super::now_usec;
use crate::api::trace::{self};

impl Daemon {
    /// Publish a protocol event to `Monitor` callers and keep the API's
    /// state in step. Called before the daemon acts on the event.
    pub(in crate::daemon) fn api_event(&mut self, e: &Event) {
        // With no `Monitor` caller subscribed, a session's event (one per
        // call up and down, the frequent ones) only keeps the API's state
        // in step: its names and description would be built for nothing.
        if self.api.channels.events.receiver_count() == 0 {
            match e {
                Event::SessionUp {
                    tunnel, session, ..
                } => {
                    self.inherit_session_trace(*tunnel, *session, None);
                    return;
                }
                Event::SessionDown {
                    tunnel, session, ..
                } => {
                    trace::forget_session(tunnel.0, session.0);
                    return;
                }
                _ => {}
            }
        }
        // The registry keeps a tunnel's and a session's entry until the
        // daemon has acted on its last event (`TunnelFreed`, `SessionDown`).
        let tname = |d: &Self, id: TunnelId, peer: Option<std::net::SocketAddr>| {
            match (d.reg.tunnel(id), peer) {
                (Some(c), _) => c.name.to_string(),
                // Named by the daemon when it handles TunnelUp.
                (None, Some(p)) => format!("incoming-{p}"),
                (None, None) => d.tunnel_name(id),
            }
        };
        let mut ev = t::Event {
            timestamp_usec: now_usec(),
            kind: String::new(),
            tunnel_id: None,
            tunnel: None,
            session_id: None,
            session: None,
            peer: None,
            call_type: None,
            reason: None,
            description: String::new(),
        };
        let session_ev = |d: &Self, ev: &mut t::Event, tunnel: TunnelId, session: SessionId| {
            ev.tunnel_id = Some(tunnel.0);
            ev.tunnel = Some(tname(d, tunnel, None));
            ev.session_id = Some(session.0);
            ev.session = Some(d.session_name(tunnel, session));
        };
        match e {
            Event::TunnelUp {
                tunnel,
                peer_tunnel,
                peer,
                peer_host_name,
            } => {
                let name = tname(self, *tunnel, Some(*peer));
                ev.kind = "tunnel_up".into();
                ev.description = format!(
                    "tunnel {name} (id {}) up with {peer} (peer tunnel id {}, host name {peer_host_name:?})",
                    tunnel.0, peer_tunnel.0
                );
                ev.tunnel_id = Some(tunnel.0);
                ev.tunnel = Some(name.clone());
                ev.peer = Some(peer.to_string());
                self.inherit_tunnel_trace(*tunnel);
            }
            Event::TunnelDown { tunnel, reason } => {
                let name = tname(self, *tunnel, None);
                ev.kind = "tunnel_down".into();
                ev.description = format!("tunnel {name} (id {}) down: {reason}", tunnel.0);
                ev.tunnel_id = Some(tunnel.0);
                ev.tunnel = Some(name.clone());
                ev.peer = self.ep.tunnel(*tunnel).map(|t| t.peer.to_string());
                ev.reason = Some(reason.to_string());
                // A runtime tunnel that will not come back is forgotten.
                if self
                    .reg
                    .tunnel(*tunnel)
                    .is_some_and(|c| c.local && !c.persist)
                    && self.api.api_tunnels.contains(&name)
                {
                    self.forget_api_tunnel(&name);
                }
            }
            Event::TunnelFreed { tunnel } => {
                ev.kind = "tunnel_freed".into();
                ev.tunnel_id = Some(tunnel.0);
                ev.tunnel = Some(tname(self, *tunnel, None));
                ev.description = format!(
                    "tunnel {} (id {}) freed",
                    ev.tunnel.as_deref().unwrap_or(""),
                    tunnel.0
                );
                trace::forget_tunnel(tunnel.0);
            }
            Event::TunnelReplaced { old, new, sessions } => {
                ev.kind = "tunnel_replaced".into();
                ev.tunnel_id = Some(new.0);
                ev.tunnel = Some(tname(self, *old, None));
                ev.description = format!(
                    "tunnel id {} replaced by the peer's tunnel id {} (tie breaker), {} calls moved",
                    old.0,
                    new.0,
                    sessions.len()
                );
                let f = trace::tunnel(old.0);
                trace::forget_tunnel(old.0);
                if !f.is_empty() {
                    trace::set_tunnel(new.0, f);
                }
            }
            Event::SessionUp {
                tunnel,
                session,
                peer_session,
                call_type,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "session_up".into();
                ev.call_type = Some(call_type.to_string());
                ev.description = format!(
                    "session {} (id {}, peer id {}) up in tunnel {}, {call_type}",
                    ev.session.as_deref().unwrap_or(""),
                    session.0,
                    peer_session.0,
                    ev.tunnel.as_deref().unwrap_or("")
                );
                self.inherit_session_trace(*tunnel, *session, None);
            }
            Event::SessionDown {
                tunnel,
                session,
                reason,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "session_down".into();
                ev.reason = Some(reason.to_string());
                ev.description = format!(
                    "session {} (id {}) down in tunnel {}: {reason}",
                    ev.session.as_deref().unwrap_or(""),
                    session.0,
                    ev.tunnel.as_deref().unwrap_or("")
                );
                trace::forget_session(tunnel.0, session.0);
            }
            Event::WanErrorNotify {
                tunnel,
                session,
                errors,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "wan_error_notify".into();
                ev.description = format!(
                    "WAN-Error-Notify for session {}: crc {} framing {} hardware overruns {} \
                     buffer overruns {} timeouts {} alignment {}",
                    session.0, errors[0], errors[1], errors[2], errors[3], errors[4], errors[5]
                );
            }
            Event::SetLinkInfo {
                tunnel,
                session,
                send_accm,
                recv_accm,
            } => {
                session_ev(self, &mut ev, *tunnel, *session);
                ev.kind = "set_link_info".into();
                ev.description = format!(
                    "Set-Link-Info for session {}: send ACCM {send_accm:#010x}, receive ACCM {recv_accm:#010x}",
                    session.0
                );
            }
        }
        // No monitor listening is fine.
        let _: Result<usize, broadcast::error::SendError<t::Event>> =
            self.api.channels.events.send(ev);
    }
}
