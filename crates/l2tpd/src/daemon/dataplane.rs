//! The core's actions: kernel tunnels and sessions created and deleted,
//! pppd started and stopped, IP pool addresses taken and returned.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Instant;

use l2tp_kernel::{SessionSpec, TunnelSpec};
use l2tp_proto::event::{Action, ActionResult};
use l2tp_proto::session::CallType;
use l2tp_proto::wire::{SessionId, TunnelId};

use super::{Daemon, PPPD_GRACE, SessionCtx, Stopping};
use crate::pool::Range;
use crate::ppp::{self, PppLaunch};

impl Daemon {
    pub(super) fn action(&mut self, a: Action) {
        let now = Instant::now();
        match a {
            Action::CreateTunnel {
                tunnel,
                peer_tunnel,
                peer,
            } => {
                let result = self.create_tunnel(tunnel, peer_tunnel, peer);
                if let Err(e) = &result {
                    tracing::error!(tunnel_id = tunnel.0, "kernel tunnel: {e}");
                }
                self.ep.handle_action_result(
                    now,
                    &mut self.rng,
                    ActionResult::Tunnel { tunnel, result },
                );
            }
            Action::DeleteTunnel { tunnel } => {
                self.tunnels_to_delete.insert(tunnel);
                self.maybe_delete_tunnel(tunnel);
            }
            Action::CreateSession {
                tunnel,
                session,
                peer_tunnel,
                peer_session,
                call_type,
                sequencing,
                peer,
            } => {
                let result = self.create_session(
                    tunnel,
                    session,
                    peer_tunnel,
                    peer_session,
                    call_type,
                    sequencing,
                    peer,
                );
                if let Err(e) = &result {
                    tracing::error!(
                        tunnel_id = tunnel.0,
                        session_id = session.0,
                        "session data plane: {e}"
                    );
                }
                self.ep.handle_action_result(
                    now,
                    &mut self.rng,
                    ActionResult::Session {
                        tunnel,
                        session,
                        result,
                    },
                );
            }
            Action::DeleteSession { tunnel, session } => self.delete_session(tunnel, session),
        }
    }

    pub(super) fn create_tunnel(
        &mut self,
        tunnel: TunnelId,
        peer_tunnel: TunnelId,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let socket = self
            .tunnel_socket(tunnel, peer)
            .map_err(|e| format!("tunnel socket: {e}"))?;
        let spec = TunnelSpec {
            tunnel_id: l2tp_kernel::TunnelId(u32::from(tunnel.0)),
            peer_tunnel_id: l2tp_kernel::TunnelId(u32::from(peer_tunnel.0)),
            version: 2,
            encap: l2tp_kernel::Encap::Udp,
            socket: socket.as_raw_fd(),
            udp_checksum: true,
        };
        self.dp.create_tunnel(&spec).map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_session(
        &mut self,
        tunnel: TunnelId,
        session: SessionId,
        peer_tunnel: TunnelId,
        peer_session: SessionId,
        call_type: CallType,
        sequencing: bool,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let key = (tunnel.0, session.0);
        let (session_params, ppp) = match self.sessions.get(&key).and_then(|c| c.ppp.clone()) {
            Some(ppp) => (None, ppp),
            None => match self.tunnels.get(&tunnel).and_then(|c| c.incoming.clone()) {
                Some((s, p)) => (Some(s), p),
                None => return Err("no ppp profile for this session".into()),
            },
        };
        // The LNS assigns the peer's address: from the profile's pool, else its fixed remote address.
        let mut pool_addr = None;
        // remote_ipaddr, when set, takes precedence over ip_pool (l2tp-config's rule).
        let remote = match (call_type.is_lns(), ppp.remote_ipaddr, &ppp.ip_pool) {
            (false, _, _) => None,
            (true, Some(a), _) => Some(a),
            (true, None, Some(pool)) => {
                let range = Range {
                    start: IpAddr::V4(pool.start()),
                    end: IpAddr::V4(pool.end()),
                };
                match self.pools.allocate(range) {
                    Some(IpAddr::V4(a)) => {
                        pool_addr = Some((range, IpAddr::V4(a)));
                        Some(a)
                    }
                    _ => {
                        tracing::warn!(
                            tunnel_id = tunnel.0,
                            session_id = session.0,
                            "IP pool {pool} exhausted: refusing the call"
                        );
                        return Err(format!("IP pool {pool} exhausted"));
                    }
                }
            }
            (true, None, None) => None,
        };
        let seq = sequencing
            || session_params
                .as_ref()
                .is_some_and(|s| s.use_sequence_numbers);
        let spec = SessionSpec {
            tunnel_id: l2tp_kernel::TunnelId(u32::from(tunnel.0)),
            session_id: l2tp_kernel::SessionId(u32::from(session.0)),
            peer_tunnel_id: l2tp_kernel::TunnelId(u32::from(peer_tunnel.0)),
            peer_session_id: l2tp_kernel::SessionId(u32::from(peer_session.0)),
            pseudowire: l2tp_kernel::Pseudowire::Ppp,
            lns_mode: call_type.is_lns(),
            send_seq: seq,
            recv_seq: seq,
            reorder_timeout_ms: session_params
                .as_ref()
                .map_or(0, |s| s.reorder_timeout.as_millis() as u64),
            peer_addr: peer,
        };
        let ppp_session = match self.dp.create_session(&spec) {
            // The null data plane runs the control protocol only: no pppd.
            Ok(_) if self.null_dp => None,
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                if let Some((r, a)) = pool_addr {
                    self.pools.release(r, a);
                }
                return Err("the data plane returned no PPPoL2TP socket for a PPP session".into());
            }
            Err(e) => {
                if let Some((r, a)) = pool_addr {
                    self.pools.release(r, a);
                }
                return Err(e.to_string());
            }
        };
        let name = self.tunnel_name(tunnel);
        let ctx = self.sessions.entry(key).or_insert_with(|| SessionCtx {
            name: format!("{}/{}", name, session.0),
            local_call: None,
            ppp: None,
            pppd_pid: None,
            ifname: None,
            pool_addr: None,
            kernel: false,
        });
        ctx.kernel = true;
        ctx.pool_addr = pool_addr;
        let Some(ppp_session) = ppp_session else {
            return Ok(());
        };
        let launch = PppLaunch {
            pppd: self.config.system.pppd_path.clone(),
            tunnel_id: tunnel.0,
            session_id: session.0,
            lns_mode: call_type.is_lns(),
            options: ppp.pppd_args(call_type.is_lns(), remote),
            ipparam: name,
            event_plugin: self.config.system.ppp_accm_events,
        };
        match ppp::spawn(&launch, ppp_session.fd, self.ppp_tx.clone()) {
            Ok(pid) => {
                if let Some(c) = self.sessions.get_mut(&key) {
                    c.pppd_pid = Some(pid);
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.dp.delete_session(spec.tunnel_id, spec.session_id);
                if let Some((r, a)) = pool_addr {
                    self.pools.release(r, a);
                }
                Err(format!("{e:#}"))
            }
        }
    }

    /// Stop a session's pppd (SIGTERM); its kernel session goes when pppd has exited.
    pub(super) fn delete_session(&mut self, tunnel: TunnelId, session: SessionId) {
        let key = (tunnel.0, session.0);
        let Some(ctx) = self.sessions.remove(&key) else {
            return;
        };
        match ctx.pppd_pid {
            Some(pid) => {
                ppp::terminate(pid);
                self.stopping.insert(
                    key,
                    Stopping {
                        pid,
                        ctx,
                        deadline: Instant::now() + PPPD_GRACE,
                    },
                );
            }
            None => self.finish_session(key, ctx),
        }
    }

    /// Delete the kernel session and return the pool address.
    pub(super) fn finish_session(&mut self, key: (u16, u16), ctx: SessionCtx) {
        if ctx.kernel
            && let Err(e) = self.dp.delete_session(
                l2tp_kernel::TunnelId(u32::from(key.0)),
                l2tp_kernel::SessionId(u32::from(key.1)),
            )
        {
            tracing::warn!(
                tunnel_id = key.0,
                session_id = key.1,
                "kernel session delete: {e}"
            );
        }
        if let Some((r, a)) = ctx.pool_addr {
            self.pools.release(r, a);
        }
        tracing::debug!(
            tunnel_id = key.0,
            session_id = key.1,
            ifname = ctx.ifname.as_deref().unwrap_or(""),
            "session cleaned up"
        );
        self.maybe_delete_tunnel(TunnelId(key.0));
    }

    /// Delete a kernel tunnel the protocol gave up on, once none of its sessions is stopping.
    pub(super) fn maybe_delete_tunnel(&mut self, tunnel: TunnelId) {
        if !self.tunnels_to_delete.contains(&tunnel)
            || self.stopping.keys().any(|k| k.0 == tunnel.0)
        {
            return;
        }
        self.tunnels_to_delete.remove(&tunnel);
        match self
            .dp
            .delete_tunnel(l2tp_kernel::TunnelId(u32::from(tunnel.0)))
        {
            Ok(()) => tracing::debug!(tunnel_id = tunnel.0, "kernel tunnel deleted"),
            Err(e) => tracing::warn!(tunnel_id = tunnel.0, "kernel tunnel delete: {e}"),
        }
    }
}
