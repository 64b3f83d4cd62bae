//! `System*` calls: show, counters, modify, reload.

use l2tp_api::ApiError;
use l2tp_api::types::{self as t};
use serde_json::Value;

use super::super::Daemon;
use super::{RESTART_KEYS, empty, flags, reply, settings_table, to_object};
use crate::api::trace::{self};

impl Daemon {
    /// `SystemShow`.
    pub(super) fn system_info(&self) -> t::SystemInfo {
        t::SystemInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            interface_version: l2tp_api::INTERFACE_VERSION,
            pid: std::process::id(),
            uptime_secs: self.api.started.elapsed().as_secs(),
            listen: self.local.to_string(),
            data_plane: self.config.system.data_plane.to_string(),
            tunnels: self.ep.tunnel_count() as u64,
            sessions: self.ep.session_count() as u64,
            config_sources: self
                .config
                .sources()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            runtime_changes: self.api.overlay.has_changes(),
            trace_flags: trace::system().names(),
            settings: to_object(&self.config.system.to_settings()),
        }
    }

    /// `SystemCounters`, relative to the last reset.
    pub(super) fn system_counters(&self) -> t::SystemCounters {
        let c = self.ep.counters();
        let (listen_drops, tunnel_drops) = self.sockets.drops();
        let b = &self.api.counters_base;
        t::SystemCounters {
            seconds_since_reset: self.api.reset_at.elapsed().as_secs(),
            total_rcvd_control_frames: c
                .total_rcvd_control_frames
                .saturating_sub(b.total_rcvd_control_frames),
            bad_rcvd_frames: c.bad_rcvd_frames.saturating_sub(b.bad_rcvd_frames),
            wrong_version_frames: c
                .wrong_version_frames
                .saturating_sub(b.wrong_version_frames),
            unexpected_data_frames: c
                .unexpected_data_frames
                .saturating_sub(b.unexpected_data_frames),
            no_matching_tunnel_id_discards: c
                .no_matching_tunnel_id_discards
                .saturating_sub(b.no_matching_tunnel_id_discards),
            mismatched_peer_discards: c
                .mismatched_peer_discards
                .saturating_sub(b.mismatched_peer_discards),
            tunnels_refused: c.tunnels_refused.saturating_sub(b.tunnels_refused),
            tunnels_lost: c.tunnels_lost.saturating_sub(b.tunnels_lost),
            auth_fails: c.auth_fails.saturating_sub(b.auth_fails),
            illegal_messages: c.illegal_messages.saturating_sub(b.illegal_messages),
            retransmits: c.retransmits.saturating_sub(b.retransmits),
            tie_breakers_won: c.tie_breakers_won.saturating_sub(b.tie_breakers_won),
            tie_breakers_lost: c.tie_breakers_lost.saturating_sub(b.tie_breakers_lost),
            half_open_drops: c.half_open_drops.saturating_sub(b.half_open_drops),
            sccrq_bad_ns_drops: c.sccrq_bad_ns_drops.saturating_sub(b.sccrq_bad_ns_drops),
            tunnel_limit_refusals: c
                .tunnel_limit_refusals
                .saturating_sub(b.tunnel_limit_refusals),
            peer_port_changes: c.peer_port_changes.saturating_sub(b.peer_port_changes),
            unknown_tunnel_stopccns: c
                .unknown_tunnel_stopccns
                .saturating_sub(b.unknown_tunnel_stopccns),
            unknown_tunnel_zlbs: c.unknown_tunnel_zlbs.saturating_sub(b.unknown_tunnel_zlbs),
            unknown_tunnel_answers_suppressed: c
                .unknown_tunnel_answers_suppressed
                .saturating_sub(b.unknown_tunnel_answers_suppressed),
            listen_queue_drops: listen_drops.saturating_sub(self.api.queue_drops_base.0),
            tunnel_queue_drops: tunnel_drops.saturating_sub(self.api.queue_drops_base.1),
            tunnels: self.ep.tunnel_count() as u64,
            half_open_tunnels: self.ep.half_open_count() as u64,
            sessions: self.ep.session_count() as u64,
            tunnel_sockets: self.sockets.count() as u64,
        }
    }

    /// `SystemModify`.
    pub(super) fn system_modify(&mut self, p: t::SystemModifyParams) -> Result<Value, ApiError> {
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        if let Some(s) = &p.settings {
            if let Some(k) = s.keys().find(|k| RESTART_KEYS.contains(&k.as_str())) {
                return Err(ApiError::invalid(
                    format!("settings.{k}"),
                    format!("{k} changes only when l2tpd restarts"),
                ));
            }
            let table = settings_table(Some(s), "settings", &[])?;
            self.change_overlay("system", "settings", |o| {
                o.table_mut(&["system"]).extend(table);
                Ok(())
            })?;
        }
        if let Some(f) = new_flags {
            trace::set_system(f);
        }
        empty()
    }

    /// `SystemReload`: as SIGHUP, with an invalid configuration an error reply.
    pub(super) fn system_reload(&mut self) -> Result<Value, ApiError> {
        // Validate first, so that a bad configuration is an error reply;
        // `reload` then does the work exactly as SIGHUP does.
        let mut probe = self.api.overlay.clone();
        if let Err(e) = probe.reload(&self.config_paths) {
            return Err(ApiError::ConfigInvalid {
                errors: e.lines(),
                description: "the configuration is invalid; the running one is kept".into(),
            });
        }
        self.reload();
        reply(t::SystemReloadReply {
            config_sources: self
                .config
                .sources()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }
}
