//! `Session*` calls: create and delete, summaries and details.

use std::time::Instant;

use l2tp_api::ApiError;
use l2tp_api::types::{self as t};
use l2tp_proto::event::Command;
use l2tp_proto::session::Session;
use l2tp_proto::tunnel::Tunnel;
use l2tp_proto::wire::{SessionId, TunnelId};
use serde_json::Value;

use super::super::Daemon;
use super::super::local::{CallOrigin, PlaceError, configured_call};
use super::{
    RESOLVE_TUNNEL, command_error, empty, lossy, next_api_name, quote_key, reply, settings_table,
};
use crate::api::overlay::{self};
use crate::api::trace::{self};

impl Daemon {
    /// A session's line in `SessionList` and `TunnelShow`.
    pub(super) fn session_summary(&self, t: &Tunnel, s: &Session) -> t::SessionSummary {
        let ctx = self.reg.session(t.id, s.id);
        t::SessionSummary {
            tunnel_id: t.id.0,
            tunnel: self.tunnel_name(t.id),
            id: s.id.0,
            peer_id: s.peer_id.0,
            name: self.session_name(t.id, s.id),
            call_type: s.call_type.to_string(),
            state: s.state_name().to_owned(),
            pppd_pid: ctx.and_then(|c| c.pppd_pid),
            ifname: ctx.and_then(|c| c.ifname.as_deref().map(str::to_owned)),
        }
    }

    /// `SessionShow`.
    pub(super) fn session_info(&mut self, tid: TunnelId, sid: SessionId) -> t::SessionInfo {
        let in_kernel = self.reg.session(tid, sid).is_some_and(|c| c.kernel);
        // The kernel's counters are added by the data-plane worker (`handle_api`).
        if in_kernel {
            self.api_stats = Some(super::StatsQuery::Session(tid, sid));
        }
        let Some((tun, s)) = self
            .ep
            .tunnel(tid)
            .and_then(|t| t.sessions.get(&sid).map(|s| (t, s)))
        else {
            unreachable!("find_session found it")
        };
        let sum = self.session_summary(tun, s);
        let pi = s.peer_info();
        t::SessionInfo {
            tunnel_id: sum.tunnel_id,
            tunnel: sum.tunnel,
            id: sum.id,
            peer_id: sum.peer_id,
            name: sum.name,
            call_type: sum.call_type,
            state: sum.state,
            serial: s.serial,
            sequencing: s.sequencing,
            pppd_pid: sum.pppd_pid,
            ifname: sum.ifname,
            peer_info: t::PeerCallInfo {
                tx_connect_speed: pi.tx_connect_speed,
                rx_connect_speed: pi.rx_connect_speed,
                framing_type: pi.framing_type,
                bearer_type: pi.bearer_type,
                calling_number: pi.calling_number.as_deref().map(lossy),
                called_number: pi.called_number.as_deref().map(lossy),
                physical_channel_id: pi.physical_channel_id,
                private_group_id: pi.private_group_id.as_deref().map(lossy),
            },
            kernel: None,
            kernel_error: None,
            trace_flags: trace::session(tid.0, sid.0).names(),
        }
    }

    /// `SessionCreate`: a call placed through `place_call`.
    pub(super) fn session_create(&mut self, p: t::SessionCreateParams) -> Result<Value, ApiError> {
        let tid = self.find_tunnel(&p.tunnel)?;
        let tname = self.tunnel_name(tid);
        let name = match p.name {
            Some(n) if n.is_empty() || n.contains('/') => {
                return Err(ApiError::invalid("name", "must not be empty or contain /"));
            }
            Some(n) => n,
            None => {
                let reg = &self.reg;
                next_api_name(&mut self.api.next_name, |n| {
                    reg.session_named(tid, n).is_some()
                })
            }
        };
        if self.reg.session_named(tid, &name).is_some() {
            return Err(ApiError::NameInUse {
                description: format!("tunnel `{tname}` has a session named `{name}` already"),
                name,
            });
        }
        let table = settings_table(p.settings.as_ref(), "settings", &[])?;
        let local = self
            .reg
            .tunnel(tid)
            .is_some_and(|c| c.local && self.config.local_tunnel(&c.name).is_some());
        let ls = if local {
            // A [tunnel.T.session.NAME] table over the tunnel's own table.
            let prefix = format!("tunnel.{}.session.{}", quote_key(&tname), quote_key(&name));
            self.change_overlay(&prefix, "settings", |o| {
                *o.table_mut(&["tunnel", &tname, "session", &name]) = table;
                Ok(())
            })?;
            self.config
                .local_tunnel(&tname)
                .and_then(|lt| configured_call(lt, &name))
                .cloned()
        } else {
            // A tunnel the peer set up: resolve as a scratch tunnel to the peer
            // under its peer profile, then forget the scratch.
            let Some(tun) = self.ep.tunnel(tid) else {
                return Err(ApiError::failed("the tunnel went away"));
            };
            let m = self
                .config
                .match_peer(tun.peer.ip(), Some(&tun.peer_host_name));
            let mut scratch = self.api.overlay.clone();
            let tt = scratch.table_mut(&["tunnel", RESOLVE_TUNNEL]);
            tt.insert("peer_addr".into(), tun.peer.ip().to_string().into());
            tt.insert("peer_profile_name".into(), m.profile.name.clone().into());
            *scratch.table_mut(&["tunnel", RESOLVE_TUNNEL, "session", &name]) = table;
            let prefix = format!(
                "tunnel.{}.session.{}",
                quote_key(RESOLVE_TUNNEL),
                quote_key(&name)
            );
            let config = scratch
                .build()
                .map_err(|e| overlay::api_error(&e, &prefix, "settings"))?;
            config
                .local_tunnel(RESOLVE_TUNNEL)
                .and_then(|lt| configured_call(lt, &name))
                .cloned()
        };
        let Some(ls) = ls else {
            return Err(ApiError::failed("the new session did not resolve"));
        };
        let undo = |d: &mut Self| {
            if local {
                d.api.overlay.remove_session(&tname, &name);
                if let Ok(c) = d.api.overlay.build() {
                    d.apply_config(c);
                }
            }
        };
        let sid = match self.place_call(tid, &ls, local, CallOrigin::Api) {
            Ok(sid) => sid,
            Err(PlaceError::PlacedByPeer(other)) => {
                undo(self);
                return Err(ApiError::invalid(
                    "settings.session_type",
                    format!(
                        "{other} calls are placed by the peer: use lac_incoming or lns_outgoing"
                    ),
                ));
            }
            Err(PlaceError::NotPlaced) => {
                undo(self);
                return Err(ApiError::failed("the call was not placed"));
            }
            Err(PlaceError::Refused(e)) => {
                undo(self);
                return Err(command_error(e));
            }
        };
        self.inherit_session_trace(tid, sid, Some(&ls));
        reply(t::SessionCreateReply {
            tunnel_id: tid.0,
            session_id: sid.0,
            name,
        })
    }

    /// `SessionDelete`.
    pub(super) fn session_delete(&mut self, p: t::SessionDeleteParams) -> Result<Value, ApiError> {
        let (tid, sid) = self.find_session(&p.tunnel, &p.session)?;
        let result = p.result_code.unwrap_or(3);
        if !(1..=11).contains(&result) {
            return Err(ApiError::invalid(
                "result_code",
                format!("{result} is not a CDN Result Code (1..11, RFC 2661 §4.4.2)"),
            ));
        }
        let tname = self.tunnel_name(tid);
        if let Some(c) = self.reg.session_mut(tid, sid)
            && std::mem::take(&mut c.configured)
            && let call = c.name.to_string()
            && self
                .api
                .overlay
                .table(&["tunnel", &tname, "session", &call])
                .is_some()
        {
            self.api.overlay.remove_session(&tname, &call);
            match self.api.overlay.build() {
                Ok(c) => self.apply_config(c),
                Err(e) => {
                    tracing::warn!(tunnel = %tname, session = %call, "removing the runtime session: {e}")
                }
            }
        }
        let cmd = Command::CloseSession {
            tunnel: tid,
            session: sid,
            result,
            error: None,
            message: p.message.or_else(|| Some("cleared by the operator".into())),
        };
        self.ep
            .handle_command(Instant::now(), &mut self.rng, cmd)
            .map_err(command_error)?;
        empty()
    }
}
