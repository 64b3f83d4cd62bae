//! pppd supervision as the loop sees it: exits, interfaces, links, plugin
//! reports, and pppds killed when their grace period ends.

use std::time::Instant;

use l2tp_proto::event::Command;
use l2tp_proto::wire::{CdnResult, SessionId, TunnelId};

use super::Daemon;
use crate::ppp::{self, PppEvent};

impl Daemon {
    /// Kill pppds that did not exit within their grace period and delete their sessions.
    pub(super) fn expire_stopping(&mut self, now: Instant) {
        let expired: Vec<(u16, u16)> = self
            .stopping
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(st) = self.stopping.remove(&key) {
                tracing::warn!(
                    tunnel_id = key.0,
                    session_id = key.1,
                    pid = st.pid,
                    "pppd did not exit after SIGTERM; sending SIGKILL"
                );
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(st.pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                self.finish_session(key, st.ctx);
            }
        }
    }

    pub(super) fn on_ppp_event(&mut self, ev: PppEvent) {
        match ev {
            PppEvent::Interface { key, ifname } => {
                tracing::debug!(tunnel_id = key.0, session_id = key.1, %ifname, "pppd created its interface");
                if let Some(c) = self.sessions.get_mut(&key) {
                    c.ifname = Some(ifname.clone());
                    if !self.null_dp {
                        ppp::watch_link(key, ifname, self.ppp_tx.clone());
                    }
                }
            }
            PppEvent::LinkUp { key, ifname, addrs } => {
                if self.sessions.contains_key(&key) {
                    tracing::info!(tunnel_id = key.0, session_id = key.1, %ifname, addrs = %addrs.join(", "), "ppp link up");
                }
            }
            PppEvent::Plugin(crate::ppp_events::PluginEvent::Accm {
                tunnel_id,
                session_id,
                send_accm,
                recv_accm,
            }) => {
                if !self.sessions.contains_key(&(tunnel_id, session_id)) {
                    return;
                }
                tracing::info!(
                    tunnel_id,
                    session_id,
                    send_accm = format_args!("{send_accm:#010x}"),
                    recv_accm = format_args!("{recv_accm:#010x}"),
                    "pppd negotiated ACCM: sending SLI"
                );
                let cmd = Command::SendSli {
                    tunnel: TunnelId(tunnel_id),
                    session: SessionId(session_id),
                    send_accm,
                    recv_accm,
                };
                if let Err(e) = self.ep.handle_command(Instant::now(), &mut self.rng, cmd) {
                    tracing::debug!(tunnel_id, session_id, "SLI not sent: {e}");
                }
            }
            PppEvent::Plugin(crate::ppp_events::PluginEvent::UpDown {
                tunnel_id,
                session_id,
                up,
                ifname,
            }) => {
                tracing::debug!(
                    tunnel_id,
                    session_id,
                    up,
                    ifname = ifname.as_deref().unwrap_or(""),
                    "pppd reports PPP {}",
                    if up { "up" } else { "down" }
                );
            }
            PppEvent::Exited {
                key,
                pid,
                code,
                signal,
            } => {
                if self.stopping.get(&key).is_some_and(|s| s.pid == pid) {
                    if let Some(st) = self.stopping.remove(&key) {
                        tracing::debug!(
                            tunnel_id = key.0,
                            session_id = key.1,
                            pid,
                            "pppd exited after SIGTERM"
                        );
                        self.finish_session(key, st.ctx);
                    }
                    return;
                }
                let Some(c) = self.sessions.get_mut(&key) else {
                    return;
                };
                if c.pppd_pid != Some(pid) {
                    return;
                }
                c.pppd_pid = None;
                let text = match (code, signal) {
                    (Some(c), _) => format!("pppd exited with code {c} ({})", ppp::exit_text(c)),
                    (None, Some(s)) => format!("pppd killed by signal {s}"),
                    _ => "pppd exited".to_string(),
                };
                tracing::info!(tunnel_id = key.0, session_id = key.1, pid, "{text}");
                let cmd = Command::CloseSession {
                    tunnel: TunnelId(key.0),
                    session: SessionId(key.1),
                    result: CdnResult::GENERAL_ERROR.0,
                    message: Some(text),
                };
                let _ = self.ep.handle_command(Instant::now(), &mut self.rng, cmd);
            }
        }
    }
}
