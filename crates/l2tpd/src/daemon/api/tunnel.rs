//! `Tunnel*` calls: list is in `mod.rs`; show, create, modify, delete.

use std::net::IpAddr;
use std::time::Instant;

use l2tp_api::ApiError;
use l2tp_api::types::{self as t};
use l2tp_proto::event::Command;
use l2tp_proto::session::KernelState;
use l2tp_proto::tunnel::Tunnel;
use l2tp_proto::wire::TunnelId;
use serde_json::Value;

use super::super::Daemon;
use super::{
    by_type, can_place, command_error, empty, flags, lossy, next_api_name, quote_key, reply,
    settings_table,
};
use crate::api::overlay::{self};
use crate::api::trace::{self};

impl Daemon {
    /// A tunnel's line in `TunnelList`.
    pub(super) fn tunnel_summary(&self, t: &Tunnel) -> t::TunnelSummary {
        t::TunnelSummary {
            id: t.id.0,
            name: self.tunnel_name(t.id),
            origin: self.origin(t.id).to_owned(),
            peer_id: t.peer_id.0,
            peer: t.peer.to_string(),
            state: t.state_name().to_owned(),
            sessions: t.session_count() as u64,
            uptime_secs: t.created.elapsed().as_secs(),
            peer_host_name: lossy(&t.peer_host_name),
        }
    }

    /// `TunnelShow`.
    pub(super) fn tunnel_info(&mut self, id: TunnelId) -> t::TunnelInfo {
        // The kernel's counters are added by the data-plane worker (`handle_api`).
        if self.ep.tunnel(id).and_then(|t| t.kernel) == Some(KernelState::Created) {
            self.api_stats = Some(super::StatsQuery::Tunnel(id));
        }
        let Some(t) = self.ep.tunnel(id) else {
            unreachable!("find_tunnel found it")
        };
        let ch = t.channel.counters();
        let cfg = t.channel.config();
        let mut sessions: Vec<t::SessionSummary> = t
            .sessions
            .values()
            .map(|s| self.session_summary(t, s))
            .collect();
        sessions.sort_by_key(|s| s.id);
        t::TunnelInfo {
            id: t.id.0,
            name: self.tunnel_name(id),
            origin: self.origin(id).to_owned(),
            peer_id: t.peer_id.0,
            peer: t.peer.to_string(),
            state: t.state_name().to_owned(),
            initiator: t.initiator,
            persist: self.reg.tunnel(id).is_some_and(|c| c.persist),
            uptime_secs: t.created.elapsed().as_secs(),
            peer_host_name: lossy(&t.peer_host_name),
            peer_vendor_name: t.peer_vendor_name.as_deref().map(lossy),
            peer_framing_caps: t.peer_framing_caps,
            peer_bearer_caps: t.peer_bearer_caps,
            close_reason: t.close_reason.as_ref().map(|r| r.to_string()),
            host_name: lossy(&t.config.host_name),
            hello_interval_ms: t.config.hello_interval.map(|d| d.as_millis() as u64),
            auth_mode: match t.config.auth_mode {
                l2tp_proto::event::AuthMode::None => "none",
                l2tp_proto::event::AuthMode::Simple => "simple",
                l2tp_proto::event::AuthMode::Challenge => "challenge",
            }
            .to_owned(),
            hide_avps: t.config.hide_avps,
            max_sessions: t.config.max_sessions,
            window: t::TunnelWindow {
                ns: t.channel.ns(),
                nr: t.channel.nr(),
                cwnd: t.channel.cwnd(),
                ssthresh: t.channel.ssthresh(),
                peer_rws: t.channel.peer_rws(),
                rx_window: cfg.rx_window,
                tx_window_max: cfg.tx_window_max,
                in_flight: t.channel.in_flight() as u64,
                unacked: t.channel.unacked() as u64,
                retry_timeout_ms: cfg.retry_timeout.as_millis() as u64,
                max_retries: cfg.max_retries,
            },
            counters: t::TunnelCounters {
                tx_messages: ch.tx_messages,
                rx_messages: ch.rx_messages,
                retransmits: ch.retransmits,
                tx_zlbs: ch.tx_zlbs,
                rx_zlbs: ch.rx_zlbs,
                duplicates: ch.duplicates,
                out_of_order: ch.out_of_order,
                out_of_window: ch.out_of_window,
                tx_hellos: t.counters.tx_hellos,
                rx_hellos: t.counters.rx_hellos,
                ignored_avps: t.counters.ignored_avps,
                vendor_avps: t.counters.vendor_avps,
                illegal_messages: t.counters.illegal_messages,
                bad_messages: t.counters.bad_messages,
                no_matching_session_discards: t.counters.no_matching_session_discards,
                auth_fails: t.counters.auth_fails,
                rx_by_type: by_type(&t.counters.rx_by_type),
                tx_by_type: by_type(&t.counters.tx_by_type),
                rx_bad_by_type: by_type(&t.counters.rx_bad_by_type),
            },
            kernel: None,
            kernel_error: None,
            trace_flags: trace::tunnel(id.0).names(),
            sessions,
        }
    }

    /// `TunnelCreate`: a `[tunnel.NAME]` table in the overlay, opened through `open_tunnel`.
    pub(super) fn tunnel_create(&mut self, p: t::TunnelCreateParams) -> Result<Value, ApiError> {
        if self.shutting_down() {
            return Err(ApiError::failed("l2tpd is shutting down"));
        }
        let peer: IpAddr = p
            .peer
            .parse()
            .map_err(|_| ApiError::invalid("peer", format!("`{}` is not an IP address", p.peer)))?;
        let name = match p.name {
            Some(n) if n.is_empty() || n.starts_with('#') => {
                return Err(ApiError::invalid(
                    "name",
                    "must not be empty or start with #",
                ));
            }
            Some(n) => n,
            None => {
                let (config, reg) = (self.config.clone(), &self.reg);
                let taken = |n: &str| reg.name_in_use(n) || config.local_tunnel(n).is_some();
                let mut next = self.api.next_name;
                let n = next_api_name(&mut next, taken);
                self.api.next_name = next;
                n
            }
        };
        if self.config.local_tunnel(&name).is_some() || self.reg.name_in_use(&name) {
            return Err(ApiError::NameInUse {
                description: format!("a tunnel named `{name}` exists already"),
                name,
            });
        }
        let mut table = settings_table(p.settings.as_ref(), "settings", &["peer_addr", "session"])?;
        table.insert("peer_addr".into(), toml::Value::String(peer.to_string()));
        if let Some(sessions) = &p.sessions {
            let mut st = toml::Table::new();
            for (sname, s) in sessions {
                if sname.is_empty() {
                    return Err(ApiError::invalid("sessions", "a session name is empty"));
                }
                st.insert(
                    sname.clone(),
                    toml::Value::Table(overlay::json_object_to_toml(
                        s,
                        &format!("sessions.{sname}"),
                    )?),
                );
            }
            table.insert("session".into(), toml::Value::Table(st));
        }
        let prefix = format!("tunnel.{}", quote_key(&name));
        self.change_overlay(&prefix, "settings", |o| {
            *o.table_mut(&["tunnel", &name]) = table;
            Ok(())
        })
        .map_err(|e| match e {
            // Session keys are named as given: sessions.S.KEY.
            ApiError::InvalidParameter {
                parameter,
                description,
            } => ApiError::InvalidParameter {
                parameter: parameter
                    .strip_prefix("settings.session.")
                    .map_or(parameter.clone(), |r| format!("sessions.{r}")),
                description,
            },
            other => other,
        })?;
        let config = self.config.clone();
        let Some(lt) = config.local_tunnel(&name) else {
            return Err(ApiError::failed("the new tunnel did not resolve"));
        };
        if let Some(ls) = lt.sessions.iter().find(|s| !can_place(s.session_type)) {
            let e = ApiError::invalid(
                format!("sessions.{}.session_type", ls.name),
                format!(
                    "{} calls are placed by the peer: use lac_incoming or lns_outgoing",
                    ls.session_type
                ),
            );
            self.forget_api_tunnel(&name);
            return Err(e);
        }
        self.api.api_tunnels.insert(name.clone());
        let Some(id) = self.open_tunnel(lt) else {
            self.forget_api_tunnel(&name);
            return Err(ApiError::failed(
                "the tunnel could not be opened (see the daemon's log)",
            ));
        };
        self.inherit_tunnel_trace(id);
        let session_ids = self.reg.tunnel(id).map_or_else(Default::default, |e| {
            e.configured_calls()
                .map(|(n, s)| (n.to_string(), s.0))
                .collect()
        });
        reply(t::TunnelCreateReply {
            tunnel_id: id.0,
            name,
            session_ids,
        })
    }

    /// Drop an API tunnel's table from the overlay.
    pub(super) fn forget_api_tunnel(&mut self, name: &str) {
        self.api.api_tunnels.remove(name);
        if self.api.overlay.remove("tunnel", name) {
            match self.api.overlay.build() {
                Ok(c) => self.apply_config(c),
                Err(e) => tracing::warn!(tunnel = %name, "removing the runtime tunnel: {e}"),
            }
        }
    }

    /// `TunnelModify`.
    pub(super) fn tunnel_modify(&mut self, p: t::TunnelModifyParams) -> Result<Value, ApiError> {
        let id = self.find_tunnel(&p.tunnel)?;
        let new_flags = p
            .trace_flags
            .as_deref()
            .map(|f| flags(f, "trace_flags"))
            .transpose()?;
        if let Some(persist) = p.persist {
            let Some(ctx) = self.reg.tunnel(id).filter(|c| c.local) else {
                return Err(ApiError::invalid(
                    "persist",
                    "only tunnels we set up (from the configuration or the API) can persist",
                ));
            };
            let name = ctx.name.to_string();
            if self.config.local_tunnel(&name).is_some() {
                let prefix = format!("tunnel.{}", quote_key(&name));
                self.change_overlay(&prefix, "persist", |o| {
                    o.table_mut(&["tunnel", &name])
                        .insert("persist".into(), toml::Value::Boolean(persist));
                    Ok(())
                })?;
            }
            if let Some(c) = self.reg.tunnel_mut(id) {
                c.persist = persist;
            }
        }
        if let Some(text) = &p.hello_timeout {
            let d = l2tp_config::parse_duration(text)
                .map_err(|e| ApiError::invalid("hello_timeout", e))?;
            let interval = (!d.is_zero()).then_some(d);
            let cmd = l2tp_proto::event::Command::SetHelloInterval {
                tunnel: id,
                interval,
            };
            self.ep
                .handle_command(Instant::now(), &mut self.rng, cmd)
                .map_err(|e| ApiError::invalid("tunnel", e.to_string()))?;
        }
        if let Some(f) = new_flags {
            trace::set_tunnel(id.0, f);
        }
        empty()
    }

    /// `TunnelDelete`.
    pub(super) fn tunnel_delete(&mut self, p: t::TunnelDeleteParams) -> Result<Value, ApiError> {
        let id = self.find_tunnel(&p.tunnel)?;
        let result = p.result_code.unwrap_or(1);
        if !(1..=7).contains(&result) {
            return Err(ApiError::invalid(
                "result_code",
                format!("{result} is not a StopCCN Result Code (1..7, RFC 2661 §4.4.2)"),
            ));
        }
        if let Some(ctx) = self.reg.tunnel_mut(id) {
            ctx.persist = false;
            let name = ctx.name.to_string();
            self.cancel_redial(&name);
            if self.api.api_tunnels.contains(&name) {
                self.forget_api_tunnel(&name);
            }
        }
        let cmd = Command::CloseTunnel {
            tunnel: id,
            result,
            message: p.message.or_else(|| Some("cleared by the operator".into())),
        };
        self.ep
            .handle_command(Instant::now(), &mut self.rng, cmd)
            .map_err(command_error)?;
        empty()
    }
}
