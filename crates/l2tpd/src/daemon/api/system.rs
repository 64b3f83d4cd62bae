//! `System*` calls: show, counters, modify, reload.

use l2tp_api::ApiError;
use l2tp_api::types::{self as t};
use l2tp_proto::session::KernelState;
use l2tp_proto::tunnel::TunnelState;
use l2tp_proto::wire::TunnelId;
use serde_json::Value;

use super::super::Daemon;
use super::{empty, fixed_key, flags, reply, settings_table, to_object};
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
            calls_refused: c.calls_refused.saturating_sub(b.calls_refused),
            undecided_calls: c.undecided_calls.saturating_sub(b.undecided_calls),
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

    /// What a scrape shows (`Metrics`, the metrics endpoint): the counters
    /// since start (a `SystemResetCounters` does not reset them, as
    /// Prometheus counters only grow), and with `per_tunnel` one set of
    /// series per tunnel, kernel counters included: those are read by the
    /// data-plane worker (one request per tunnel), which then runs `finish`
    /// with the snapshot. O(tunnels).
    pub(in crate::daemon) fn with_metrics(
        &mut self,
        per_tunnel: bool,
        finish: impl FnOnce(crate::metrics::Snapshot) + Send + 'static,
    ) {
        let (listen_queue_drops, tunnel_queue_drops) = self.sockets.drops();
        let started = self
            .api
            .started_wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let per_tunnel: Option<Vec<crate::metrics::TunnelSnapshot>> = per_tunnel.then(|| {
            let mut ids: Vec<_> = self.ep.tunnels().map(|t| t.id).collect();
            ids.sort_unstable_by_key(|id| id.0);
            ids.into_iter()
                .filter_map(|id| self.tunnel_metrics(id))
                .collect()
        });
        // Tunnels with a kernel tunnel, by their place in `per_tunnel`.
        let in_kernel: Vec<(usize, TunnelId)> = per_tunnel
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, ts)| (i, TunnelId(ts.id)))
            .filter(|(_, id)| {
                self.ep.tunnel(*id).and_then(|t| t.kernel) == Some(KernelState::Created)
            })
            .collect();
        let mut snapshot = crate::metrics::Snapshot {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            start_time_secs: started,
            tunnels: self.ep.tunnel_count() as u64,
            half_open_tunnels: self.ep.half_open_count() as u64,
            sessions: self.ep.session_count() as u64,
            tunnel_sockets: self.sockets.count() as u64,
            stale_tunnels: self.ep.stale_tunnel_count() as u64,
            counters: self.ep.counters(),
            messages: self.ep.message_counters(),
            listen_queue_drops,
            tunnel_queue_drops,
            per_tunnel,
        };
        if in_kernel.is_empty() {
            return finish(snapshot);
        }
        self.dpw.submit(move |dp| {
            if let Some(ts) = snapshot.per_tunnel.as_mut() {
                for (i, id) in in_kernel {
                    ts[i].kernel = dp
                        .tunnel_stats(l2tp_kernel::TunnelId(u32::from(id.0)))
                        .ok()
                        .map(|s| crate::metrics::KernelCounters {
                            tx_packets: s.tx_packets,
                            tx_bytes: s.tx_bytes,
                            tx_errors: s.tx_errors,
                            rx_packets: s.rx_packets,
                            rx_bytes: s.rx_bytes,
                            rx_errors: s.rx_errors,
                        });
                }
            }
            finish(snapshot);
        });
    }

    /// One tunnel's series for [`Self::with_metrics`], without its kernel
    /// counters.
    fn tunnel_metrics(&self, id: TunnelId) -> Option<crate::metrics::TunnelSnapshot> {
        let t = self.ep.tunnel(id)?;
        let c = &t.counters;
        Some(crate::metrics::TunnelSnapshot {
            name: crate::api::conn::printable(&self.tunnel_name(id)).into_owned(),
            id: id.0,
            established: t.state == TunnelState::Established,
            sessions: t.sessions.len() as u64,
            rx_messages: c.rx_by_type.iter().sum(),
            rx_bad_messages: c.rx_bad_by_type.iter().sum(),
            tx_messages: c.tx_by_type.iter().sum(),
            retransmits: t.channel.counters().retransmits,
            tx_hellos: c.tx_hellos,
            kernel: None,
        })
    }

    /// A scrape of the metrics endpoint.
    pub(in crate::daemon) fn answer_scrape(&mut self, req: crate::metrics::Request) {
        let crate::metrics::Request { format, reply } = req;
        self.with_metrics(self.config.system.metrics_per_tunnel, move |snapshot| {
            let _ = reply.send(crate::metrics::render(snapshot, format));
        });
    }

    /// `SystemModify`.
    pub(super) fn system_modify(&mut self, p: t::SystemModifyParams) -> Result<Value, ApiError> {
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        if let Some(s) = &p.settings {
            if let Some(k) = s.keys().find(|k| fixed_key(k)) {
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
