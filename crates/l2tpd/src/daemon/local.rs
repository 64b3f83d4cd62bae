//! Tunnels and calls we set up ourselves. [`Daemon::open_tunnel`] is the one
//! path that opens a tunnel and [`Daemon::place_call`] the one that places a
//! call, whether they come from the configuration at start, a reload, a
//! persistent tunnel's re-dial or call's re-placing, or the API.

use std::sync::Arc;
use std::time::Instant;

use l2tp_config::{LocalSession, LocalTunnel, SessionParams, SessionType};
use l2tp_proto::event::{Command, CommandError, CommandOutcome};
use l2tp_proto::session::{CallParams, CallType};
use l2tp_proto::wire::{SessionId, TunnelId};

use super::Daemon;
use super::registry::{CallDefaults, SessionEntry, TunnelEntry};
use crate::params;

/// Who asked for a call (it shows in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallOrigin {
    /// The configuration: at start, on reload, or a persistent call placed again.
    Config,
    /// The management API (`SessionCreate`).
    Api,
}

/// Why a call was not placed.
#[derive(Debug)]
pub(super) enum PlaceError {
    /// Calls of this type are placed by the peer, not by us.
    PlacedByPeer(SessionType),
    /// The protocol core refused the command.
    Refused(CommandError),
    /// The core placed no call.
    NotPlaced,
}

/// The `[tunnel.T.session.NAME]` table `name` of `lt`, O(log n): l2tp-config
/// keeps a tunnel's calls sorted by name.
pub(super) fn configured_call<'a>(lt: &'a LocalTunnel, name: &str) -> Option<&'a LocalSession> {
    let i = lt
        .sessions
        .binary_search_by(|s| s.name.as_str().cmp(name))
        .ok()?;
    lt.sessions.get(i)
}

impl Daemon {
    /// Open every `[tunnel.NAME]` of the configuration (at start).
    pub(super) fn start_local_tunnels(&mut self) {
        let config = self.config.clone();
        for lt in config.local_tunnels() {
            self.open_tunnel(lt);
        }
    }

    /// Open the tunnel of a `[tunnel.NAME]` table and place its calls.
    pub(super) fn open_tunnel(&mut self, lt: &LocalTunnel) -> Option<TunnelId> {
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
        self.drain_freed_tunnel(id);
        let incoming = Arc::new(CallDefaults {
            session: lt.session_defaults.clone(),
            ppp: lt.ppp_defaults.clone(),
        });
        self.reg.insert_tunnel(
            id,
            TunnelEntry::new(&lt.name, true, lt.persist, lt.local, Some(incoming)),
        );
        if !lt.sessions.is_empty() {
            // One line for them all; each call's own is at debug level.
            tracing::info!(tunnel = %lt.name, tunnel_id = id.0, calls = lt.sessions.len(), "placing configured calls");
        }
        for ls in &lt.sessions {
            self.place_configured_call(id, ls);
        }
        Some(id)
    }

    /// Place the call of a `[tunnel.T.session.NAME]` table of tunnel `id`,
    /// logging why when it cannot be placed.
    pub(super) fn place_configured_call(&mut self, id: TunnelId, ls: &LocalSession) {
        match self.place_call(id, ls, true, CallOrigin::Config) {
            Ok(_) => {}
            Err(PlaceError::PlacedByPeer(other)) => {
                tracing::error!(tunnel = %self.tunnel_name(id), session = %ls.name, "session_type {other} is placed by the peer, not by us; skipped");
            }
            Err(PlaceError::Refused(e)) => {
                tracing::error!(tunnel = %self.tunnel_name(id), session = %ls.name, "cannot place call: {e}")
            }
            Err(PlaceError::NotPlaced) => {}
        }
    }

    /// The core's call parameters for `p`: those of the last call placed
    /// when it had the same `SessionParams` (one allocation per tunnel of
    /// alike calls, not one per call).
    fn call_params(&mut self, p: &Arc<SessionParams>) -> Arc<CallParams> {
        if let Some((sp, cp)) = &self.last_call_params
            && Arc::ptr_eq(sp, p)
        {
            return cp.clone();
        }
        let cp = Arc::new(params::call_params(p));
        self.last_call_params = Some((p.clone(), cp.clone()));
        cp
    }

    /// Place the call `ls` describes in tunnel `tunnel` and give it a
    /// registry entry named `ls.name`. `configured`: it stands for a
    /// `[tunnel.T.session.NAME]` table of that tunnel, which reload and
    /// persistence follow.
    pub(super) fn place_call(
        &mut self,
        tunnel: TunnelId,
        ls: &LocalSession,
        configured: bool,
        origin: CallOrigin,
    ) -> Result<SessionId, PlaceError> {
        let call_type = match ls.session_type {
            SessionType::LacIncoming => CallType::LacIncoming,
            SessionType::LnsOutgoing => CallType::LnsOutgoing,
            other => return Err(PlaceError::PlacedByPeer(other)),
        };
        let cmd = Command::PlaceCall {
            tunnel,
            call_type,
            params: self.call_params(&ls.params),
        };
        let sid = match self.ep.handle_command(Instant::now(), &mut self.rng, cmd) {
            Ok(CommandOutcome::Session(sid)) => sid,
            Ok(_) => return Err(PlaceError::NotPlaced),
            Err(e) => return Err(PlaceError::Refused(e)),
        };
        let tname = self.tunnel_name(tunnel);
        match origin {
            CallOrigin::Config => {
                tracing::debug!(tunnel = %tname, session = %ls.name, tunnel_id = tunnel.0, session_id = sid.0, "placing call")
            }
            CallOrigin::Api => {
                tracing::info!(tunnel = %tname, session = %ls.name, tunnel_id = tunnel.0, session_id = sid.0, "placing call (API)")
            }
        }
        // A peer's tunnel not up yet has no entry; the core has just handed
        // out this session id, so an entry under it is a leftover.
        self.ensure_tunnel_entry(tunnel);
        self.drain_session(tunnel, sid);
        let entry = SessionEntry::new(&ls.name, configured, Some(ls.ppp.clone()));
        self.reg.insert_session(tunnel, sid, entry);
        Ok(sid)
    }
}
