//! pppd as the driver sees it (the process itself is `crate::ppp`): started
//! on a session's PPPoL2TP socket (by the data-plane worker), stopped with SIGTERM when the call ends
//! and killed if it has not exited within [`PPPD_GRACE`] (a deadline in the
//! timer index), and its reports: interface, link up, ACCM (sent as SLI),
//! exit (a CDN when the call was still up). Its kernel session is deleted
//! only once it has exited.

use std::time::Instant;

use l2tp_proto::event::Command;
use l2tp_proto::session::CallType;
use l2tp_proto::wire::{CdnResult, ErrorCode, SessionId, TunnelId};

use super::timers::Timer;
use super::{Daemon, PPPD_GRACE};
use crate::ppp::{self, PppEvent, PppLaunch};

/// The CDN Result and Error Codes (RFC 2661 §4.4.2) for a call whose pppd
/// exited on its own with `code` (pppd(8) "EXIT STATUS"; `None`: killed by a
/// signal). The message of the Result Code AVP carries pppd's own reason.
///
/// - the link went away (15: the peer stopped answering LCP echoes; 16: hang
///   up; 5: pppd was sent a signal by someone else): Result Code 1, "loss of
///   carrier";
/// - a limit configured for the call (12: idle; 13: connect time): 3,
///   "administrative reasons";
/// - anything else (negotiation or authentication failed, pppd could not
///   start, pppd crashed): 2, "see Error Code", with Error Code 6, "a
///   generic vendor-specific error" (never the contradictory 2 with Error
///   Code 0, "no general error").
pub(super) fn cdn_for_pppd_exit(code: Option<i32>) -> (CdnResult, Option<ErrorCode>) {
    match code {
        Some(5 | 15 | 16) => (CdnResult::LOST_CARRIER, None),
        Some(12 | 13) => (CdnResult::ADMINISTRATIVE, None),
        _ => (CdnResult::GENERAL_ERROR, Some(ErrorCode::VENDOR_SPECIFIC)),
    }
}

/// Send SIGKILL to `pid`.
pub(super) fn sigkill(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

impl Daemon {
    /// How to start pppd for session `s` of tunnel `t` (started by the
    /// data-plane worker on the session's PPPoL2TP socket).
    pub(super) fn ppp_launch(
        &self,
        t: TunnelId,
        s: SessionId,
        call_type: CallType,
        options: Vec<String>,
        ipparam: String,
    ) -> PppLaunch {
        PppLaunch {
            pppd: self.config.system.pppd_path.clone(),
            tunnel_id: t.0,
            session_id: s.0,
            lns_mode: call_type.is_lns(),
            options,
            ipparam,
            event_plugin: self.config.system.ppp_accm_events,
        }
    }

    /// SIGTERM to session `s`'s pppd; SIGKILL follows at the deadline.
    pub(super) fn stop_pppd(&mut self, t: TunnelId, s: SessionId, pid: u32) {
        ppp::terminate(pid);
        let deadline = Instant::now() + PPPD_GRACE;
        self.reg.begin_stopping(t, s, deadline);
        self.timers.add(
            deadline,
            Timer::KillPppd {
                tunnel: t,
                session: s,
            },
        );
    }

    /// The pppd of session `s` is gone before its deadline.
    pub(super) fn cancel_pppd_kill(&mut self, t: TunnelId, s: SessionId, deadline: Instant) {
        self.timers.cancel(
            deadline,
            Timer::KillPppd {
                tunnel: t,
                session: s,
            },
        );
    }

    /// A stopping pppd's grace period is over: kill it and delete its session.
    pub(super) fn kill_pppd(&mut self, t: TunnelId, s: SessionId) {
        let Some(c) = self.reg.session(t, s) else {
            return;
        };
        let (Some(_), Some(pid)) = (c.stop_deadline(), c.pppd_pid) else {
            return;
        };
        tracing::warn!(
            tunnel_id = t.0,
            session_id = s.0,
            pid,
            "pppd did not exit after SIGTERM; sending SIGKILL"
        );
        sigkill(pid);
        self.finish_session(t, s);
    }

    /// A report from a pppd (or its plugin).
    pub(super) fn on_ppp_event(&mut self, ev: PppEvent) {
        let live = |d: &Self, (t, s): (u16, u16)| {
            d.reg
                .session(TunnelId(t), SessionId(s))
                .is_some_and(|c| !c.released)
        };
        match ev {
            PppEvent::Interface { key, ifname } => {
                tracing::debug!(tunnel_id = key.0, session_id = key.1, %ifname, "pppd created its interface");
                if !live(self, key) {
                    return;
                }
                if let Some(c) = self.reg.session_mut(TunnelId(key.0), SessionId(key.1)) {
                    c.ifname = Some(ifname.as_str().into());
                }
                if !self.null_dp {
                    ppp::watch_link(key, ifname, self.ppp_tx.clone());
                }
            }
            PppEvent::LinkUp { key, ifname, addrs } => {
                self.pppd_start_settled(TunnelId(key.0), SessionId(key.1));
                if live(self, key) {
                    tracing::info!(tunnel_id = key.0, session_id = key.1, %ifname, addrs = %addrs.join(", "), "ppp link up");
                }
            }
            PppEvent::LinkNotUp { key, ifname, error } => {
                // No longer counted as negotiating: the call keeps its pppd.
                self.pppd_start_settled(TunnelId(key.0), SessionId(key.1));
                if live(self, key) {
                    tracing::warn!(tunnel_id = key.0, session_id = key.1, %ifname, "{error}");
                }
            }
            PppEvent::Plugin(crate::ppp_events::PluginEvent::Accm {
                tunnel_id,
                session_id,
                send_accm,
                recv_accm,
            }) => {
                if !live(self, (tunnel_id, session_id)) {
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
                let (t, s) = (TunnelId(key.0), SessionId(key.1));
                if let Some(st) = self.state.as_mut() {
                    st.pppd_gone(pid);
                }
                self.pppd_start_settled(t, s);
                let Some(c) = self.reg.session_mut(t, s) else {
                    return;
                };
                if c.pppd_pid != Some(pid) {
                    return;
                }
                if c.stop_deadline().is_some() {
                    tracing::debug!(
                        tunnel_id = key.0,
                        session_id = key.1,
                        pid,
                        "pppd exited after SIGTERM"
                    );
                    self.finish_session(t, s);
                    return;
                }
                c.pppd_pid = None;
                let text = match (code, signal) {
                    (Some(c), _) => format!("pppd exited with code {c} ({})", ppp::exit_text(c)),
                    (None, Some(s)) => format!("pppd killed by signal {s}"),
                    _ => "pppd exited".to_string(),
                };
                tracing::info!(tunnel_id = key.0, session_id = key.1, pid, "{text}");
                let (result, error) = cdn_for_pppd_exit(code);
                let cmd = Command::CloseSession {
                    tunnel: t,
                    session: s,
                    result: result.0,
                    error: error.map(|e| e.0),
                    message: Some(text),
                };
                let _ = self.ep.handle_command(Instant::now(), &mut self.rng, cmd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pppd_exit_maps_to_a_consistent_cdn_result() {
        assert_eq!(cdn_for_pppd_exit(Some(15)), (CdnResult::LOST_CARRIER, None));
        assert_eq!(cdn_for_pppd_exit(Some(16)), (CdnResult::LOST_CARRIER, None));
        assert_eq!(
            cdn_for_pppd_exit(Some(12)),
            (CdnResult::ADMINISTRATIVE, None)
        );
        for code in [Some(11), Some(19), Some(10), Some(1), None] {
            assert_eq!(
                cdn_for_pppd_exit(code),
                (CdnResult::GENERAL_ERROR, Some(ErrorCode::VENDOR_SPECIFIC)),
                "exit {code:?}"
            );
        }
    }
}
