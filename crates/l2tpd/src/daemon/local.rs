//! Tunnels and calls we set up ourselves: `[tunnel.NAME]` tables and their
//! `[tunnel.T.session.NAME]` calls.

use std::time::Instant;

use l2tp_proto::event::{Command, CommandOutcome};
use l2tp_proto::session::CallType;
use l2tp_proto::wire::TunnelId;

use super::{Daemon, SessionCtx, TunnelCtx};
use crate::params;

impl Daemon {
    pub(super) fn start_local_tunnels(&mut self) {
        let config = self.config.clone();
        for lt in config.local_tunnels() {
            self.open_local_tunnel(lt);
        }
    }

    /// Open a `[tunnel.NAME]` tunnel and place its configured calls.
    pub(super) fn open_local_tunnel(&mut self, lt: &l2tp_config::LocalTunnel) -> Option<TunnelId> {
        let now = Instant::now();
        let peer = lt.peer;
        let tc = params::tunnel_config(&lt.params, &self.config);
        let id = match self.ep.handle_command(
            now,
            &mut self.rng,
            Command::OpenTunnel {
                peer,
                config: Box::new(tc),
            },
        ) {
            Ok(CommandOutcome::Tunnel(id)) => id,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(tunnel = %lt.name, "cannot open tunnel: {e}");
                return None;
            }
        };
        tracing::info!(tunnel = %lt.name, tunnel_id = id.0, %peer, persist = lt.persist, "opening tunnel");
        self.tunnels.insert(
            id,
            TunnelCtx {
                name: lt.name.clone(),
                local: true,
                persist: lt.persist,
                incoming: Some((lt.session_defaults.clone(), lt.ppp_defaults.clone())),
            },
        );
        for ls in &lt.sessions {
            self.place_local_call(id, lt, ls);
        }
        Some(id)
    }

    /// Place the call of a `[tunnel.T.session.NAME]` table in tunnel `id`.
    pub(super) fn place_local_call(
        &mut self,
        id: TunnelId,
        lt: &l2tp_config::LocalTunnel,
        ls: &l2tp_config::LocalSession,
    ) {
        let call_type = match ls.session_type {
            l2tp_config::SessionType::LacIncoming => CallType::LacIncoming,
            l2tp_config::SessionType::LnsOutgoing => CallType::LnsOutgoing,
            other => {
                tracing::error!(tunnel = %lt.name, session = %ls.name, "session_type {other} is placed by the peer, not by us; skipped");
                return;
            }
        };
        let cmd = Command::PlaceCall {
            tunnel: id,
            call_type,
            params: Box::new(params::call_params(&ls.params)),
        };
        match self.ep.handle_command(Instant::now(), &mut self.rng, cmd) {
            Ok(CommandOutcome::Session(sid)) => {
                tracing::info!(tunnel = %lt.name, session = %ls.name, tunnel_id = id.0, session_id = sid.0, "placing call");
                self.sessions.insert(
                    (id.0, sid.0),
                    SessionCtx {
                        name: ls.name.clone(),
                        local_call: Some(ls.name.clone()),
                        ppp: Some(ls.ppp.clone()),
                        pppd_pid: None,
                        ifname: None,
                        pool_addr: None,
                        kernel: false,
                    },
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(tunnel = %lt.name, session = %ls.name, "cannot place call: {e}")
            }
        }
    }
}
