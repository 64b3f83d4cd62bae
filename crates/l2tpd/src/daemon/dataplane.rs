//! The core's actions on the data plane: kernel tunnels and sessions
//! created and deleted, IP pool addresses taken and returned, and the order
//! teardown must keep: a session's pppd is stopped before its kernel session
//! is deleted (`pppd`), and a kernel tunnel is deleted only once none of its
//! sessions is stopping. Each action touches one registry entry. The kernel
//! calls and pppd starts themselves run on the data-plane worker
//! (`worker`), whose results come back through [`Daemon::on_dataplane_done`].

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Instant;

use l2tp_config::PppParams;
use l2tp_kernel::{SessionSpec, TunnelSpec};
use l2tp_proto::event::{Action, ActionResult};
use l2tp_proto::session::CallType;
use l2tp_proto::wire::{SessionId, TunnelId};

use super::Daemon;
use super::registry::{CallDefaults, SessionEntry};
use super::worker::Done;
use crate::pool::Range;
use crate::ppp::{self, PppEvent, PppLaunch};

/// On the data-plane worker: create the kernel session of `spec` and start
/// its pppd (`launch`; none with the null data plane) on the PPPoL2TP
/// socket. Ok: pppd's pid, if started. Errors: the kernel's (operation and
/// errno) or pppd's start; the kernel session is deleted again then.
fn create_session_and_pppd(
    dp: &mut dyn l2tp_kernel::DataPlane,
    spec: &SessionSpec,
    launch: Option<PppLaunch>,
    events: tokio::sync::mpsc::UnboundedSender<PppEvent>,
) -> Result<Option<u32>, String> {
    let ppp_session = dp.create_session(spec).map_err(|e| e.to_string())?;
    let Some(launch) = launch else {
        return Ok(None);
    };
    let started = match ppp_session {
        Some(s) => ppp::spawn(&launch, s.fd, events).map_err(|e| format!("{e:#}")),
        None => Err("the data plane returned no PPPoL2TP socket for a PPP session".into()),
    };
    if started.is_err() {
        let _ = dp.delete_session(spec.tunnel_id, spec.session_id);
    }
    started.map(Some)
}

impl Daemon {
    /// Carry out one action of the core. A creation is submitted to the
    /// data-plane worker and its result reported back when it comes
    /// ([`Self::on_dataplane_done`]); one that fails before that (no
    /// socket, no pool address) is reported at once.
    pub(super) fn action(&mut self, a: Action) {
        let now = Instant::now();
        match a {
            Action::CreateTunnel {
                tunnel,
                peer_tunnel,
                peer,
            } => {
                if let Err(e) = self.create_tunnel(tunnel, peer_tunnel, peer) {
                    tracing::error!(tunnel_id = tunnel.0, "kernel tunnel: {e}");
                    self.ep.handle_action_result(
                        now,
                        &mut self.rng,
                        ActionResult::Tunnel {
                            tunnel,
                            result: Err(e),
                        },
                    );
                }
            }
            Action::DeleteTunnel { tunnel } => self.delete_kernel_tunnel(tunnel),
            Action::CreateSession {
                tunnel,
                session,
                peer_tunnel,
                peer_session,
                call_type,
                sequencing,
                peer,
            } => {
                let spec = SessionSpec {
                    tunnel_id: l2tp_kernel::TunnelId(u32::from(tunnel.0)),
                    session_id: l2tp_kernel::SessionId(u32::from(session.0)),
                    peer_tunnel_id: l2tp_kernel::TunnelId(u32::from(peer_tunnel.0)),
                    peer_session_id: l2tp_kernel::SessionId(u32::from(peer_session.0)),
                    pseudowire: l2tp_kernel::Pseudowire::Ppp,
                    lns_mode: call_type.is_lns(),
                    send_seq: sequencing,
                    recv_seq: sequencing,
                    reorder_timeout_ms: 0,
                    peer_addr: peer,
                };
                if let Err(e) = self.create_session(tunnel, session, call_type, spec) {
                    self.session_failed(tunnel, session, e);
                }
            }
            Action::DeleteSession { tunnel, session } => self.delete_session(tunnel, session),
        }
    }

    /// Session `s` could not get its data plane: tell the core (a CDN).
    fn session_failed(&mut self, tunnel: TunnelId, session: SessionId, e: String) {
        tracing::error!(
            tunnel_id = tunnel.0,
            session_id = session.0,
            "session data plane: {e}"
        );
        self.ep.handle_action_result(
            Instant::now(),
            &mut self.rng,
            ActionResult::Session {
                tunnel,
                session,
                result: Err(e),
            },
        );
    }

    /// Submit the creation of the kernel tunnel on the tunnel's socket
    /// (opened now if it has none; with the null data plane, a tunnel on
    /// the listening port keeps to the listening socket,
    /// [`super::sockets::Sockets::host`]).
    /// Errors: the socket could not be opened, connected or handed over.
    fn create_tunnel(
        &mut self,
        tunnel: TunnelId,
        peer_tunnel: TunnelId,
        peer: SocketAddr,
    ) -> Result<(), String> {
        // The id may have belonged to a tunnel whose kernel objects are still going.
        self.drain_freed_tunnel(tunnel);
        // The worker gets a descriptor of its own (closed once the kernel
        // tunnel, which holds the socket itself, exists).
        let fd = if self.null_dp && self.sockets.get(tunnel).is_none() {
            // No kernel tunnel to hand a socket to: a tunnel on the
            // listening port stays on the listening socket, which spares
            // each tunnel a socket, a descriptor and the kernel's scan of
            // every socket on the shared port per bind and per datagram.
            self.sockets.host(tunnel)
        } else {
            self.tunnel_socket(tunnel, peer).and_then(|socket| {
                // A dialled tunnel's socket on an ephemeral port waited
                // unconnected for the SCCRP; the kernel sends to the
                // address it is connected to.
                self.sockets.connect(tunnel, peer)?;
                socket.as_fd().try_clone_to_owned()
            })
        }
        .map_err(|e| format!("tunnel socket: {e}"))?;
        let ticket = self.dpw.ticket();
        self.tunnel_creates.insert(tunnel, ticket);
        let done = self.dp_tx.clone();
        self.dpw.submit(move |dp| {
            let spec = TunnelSpec {
                tunnel_id: l2tp_kernel::TunnelId(u32::from(tunnel.0)),
                peer_tunnel_id: l2tp_kernel::TunnelId(u32::from(peer_tunnel.0)),
                version: 2,
                encap: l2tp_kernel::Encap::Udp,
                socket: fd.as_raw_fd(),
                udp_checksum: true,
            };
            let result = dp.create_tunnel(&spec).map_err(|e| e.to_string());
            drop(fd);
            let _ = done.send(Done::Tunnel {
                tunnel,
                ticket,
                result,
            });
        });
        Ok(())
    }

    /// Take the pool address and PPP parameters of session `session` and
    /// submit the creation of its kernel session and the start of its pppd.
    /// `spec` comes with the core's ids, addresses and sequencing. Errors:
    /// no PPP profile, the IP pool exhausted.
    fn create_session(
        &mut self,
        tunnel: TunnelId,
        session: SessionId,
        call_type: CallType,
        mut spec: SessionSpec,
    ) -> Result<(), String> {
        if self
            .reg
            .session(tunnel, session)
            .is_some_and(|c| !c.is_live())
        {
            self.drain_session(tunnel, session);
        }
        // A call we placed has its PPP parameters; a peer's takes its tunnel's.
        let call_ppp: Option<Arc<PppParams>> = self
            .reg
            .session(tunnel, session)
            .and_then(|c| c.ppp.clone());
        let defaults: Option<Arc<CallDefaults>> = match call_ppp {
            Some(_) => None,
            None => {
                self.ensure_tunnel_entry(tunnel);
                match self.reg.tunnel(tunnel).and_then(|c| c.incoming.clone()) {
                    Some(d) => Some(d),
                    None => return Err("no ppp profile for this session".into()),
                }
            }
        };
        let ppp: &PppParams = match (&call_ppp, &defaults) {
            (Some(p), _) => p,
            (None, Some(d)) => &d.ppp,
            (None, None) => return Err("no ppp profile for this session".into()),
        };
        let session_params = defaults.as_deref().map(|d| &d.session);
        // The LNS assigns the peer's address: from the profile's pool, else its fixed remote address.
        let mut pool_addr = None;
        // remote_ipaddr, when set, takes precedence over ip_pool (l2tp-config's rule).
        let remote = match (call_type.is_lns(), ppp.remote_ipaddr, &ppp.ip_pool) {
            (false, _, _) => None,
            (true, Some(a), _) => Some(a),
            (true, None, Some(pool)) => {
                let range = Range::from(pool);
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
        let seq = spec.send_seq || session_params.is_some_and(|s| s.use_sequence_numbers);
        spec.send_seq = seq;
        spec.recv_seq = seq;
        spec.reorder_timeout_ms =
            session_params.map_or(0, |s| s.reorder_timeout.as_millis() as u64);
        let name = self.tunnel_name(tunnel);
        // The null data plane runs the control protocol only: no pppd.
        let launch = (!self.null_dp).then(|| {
            let options = ppp.pppd_args(call_type.is_lns(), remote);
            self.ppp_launch(tunnel, session, call_type, options, name.clone())
        });
        if self.reg.session(tunnel, session).is_none() {
            let entry = SessionEntry::new(&format!("{name}/{}", session.0), false, None);
            self.reg.insert_session(tunnel, session, entry);
        }
        let ticket = self.dpw.ticket();
        if let Some(c) = self.reg.session_mut(tunnel, session) {
            // Held from now on: a delete submitted later runs after the creation.
            c.kernel = true;
            c.creating = Some(ticket);
            c.pool_addr = pool_addr.map(Box::new);
        }
        let done = self.dp_tx.clone();
        let events = self.ppp_tx.clone();
        self.dpw.submit(move |dp| {
            let result = create_session_and_pppd(dp, &spec, launch, events);
            let _ = done.send(Done::Session {
                tunnel,
                session,
                ticket,
                result,
            });
        });
        Ok(())
    }

    /// A creation submitted to the data-plane worker is done: record what
    /// came of it and tell the core. A result for a tunnel or session whose
    /// id has since gone to another is dropped (its pppd killed): what it
    /// created was deleted by the delete submitted after it.
    pub(super) fn on_dataplane_done(&mut self, done: Done) {
        match done {
            Done::Tunnel {
                tunnel,
                ticket,
                result,
            } => {
                if self.tunnel_creates.get(&tunnel) != Some(&ticket) {
                    return;
                }
                self.tunnel_creates.remove(&tunnel);
                if let Err(e) = &result {
                    tracing::error!(tunnel_id = tunnel.0, "kernel tunnel: {e}");
                }
                self.ep.handle_action_result(
                    Instant::now(),
                    &mut self.rng,
                    ActionResult::Tunnel { tunnel, result },
                );
            }
            Done::Session {
                tunnel,
                session,
                ticket,
                result,
            } => {
                let Some(c) = self
                    .reg
                    .session_mut(tunnel, session)
                    .filter(|c| c.creating == Some(ticket))
                else {
                    if let Ok(Some(pid)) = result {
                        super::pppd::sigkill(pid);
                    }
                    return;
                };
                c.creating = None;
                let released = c.released;
                match result {
                    Ok(pid) => {
                        c.pppd_pid = pid;
                        if let (Some(pid), Some(st)) = (pid, self.state.as_mut()) {
                            st.pppd_started(pid, tunnel.0, session.0);
                        }
                        match (released, pid) {
                            // The call ended while its data plane was being made.
                            (true, Some(pid)) => self.stop_pppd(tunnel, session, pid),
                            (true, None) => self.finish_session(tunnel, session),
                            (false, _) => self.ep.handle_action_result(
                                Instant::now(),
                                &mut self.rng,
                                ActionResult::Session {
                                    tunnel,
                                    session,
                                    result: Ok(()),
                                },
                            ),
                        }
                    }
                    Err(e) => {
                        c.kernel = false;
                        if let Some((r, a)) = c.pool_addr.take().map(|b| *b) {
                            self.pools.release(r, a);
                        }
                        if released {
                            self.finish_session(tunnel, session);
                        } else {
                            self.session_failed(tunnel, session, e);
                        }
                    }
                }
            }
        }
    }

    /// The core is done with session `s`: stop its pppd (its kernel session
    /// goes when pppd has exited), or clean it up now if it has none.
    pub(super) fn delete_session(&mut self, t: TunnelId, s: SessionId) {
        let Some(c) = self.reg.session_mut(t, s) else {
            return;
        };
        if c.released {
            return;
        }
        c.released = true;
        let pid = c.pppd_pid;
        let creating = c.creating.is_some();
        self.reg.unindex_session(t, s);
        if creating {
            // Finished when the creation's result comes back.
            return;
        }
        match pid {
            Some(pid) => self.stop_pppd(t, s, pid),
            None => self.finish_session(t, s),
        }
    }

    /// Delete the kernel session, return the pool address, and drop the
    /// entry if the core has reported the call down; then the kernel tunnel
    /// may go.
    pub(super) fn finish_session(&mut self, t: TunnelId, s: SessionId) {
        if let Some(deadline) = self.reg.end_stopping(t, s) {
            self.cancel_pppd_kill(t, s, deadline);
        }
        let Some(c) = self.reg.session_mut(t, s) else {
            return;
        };
        let kernel = std::mem::take(&mut c.kernel);
        let pool_addr = c.pool_addr.take().map(|b| *b);
        c.pppd_pid = None;
        let ifname = c.ifname.as_deref().unwrap_or_default().to_owned();
        // Shutting down, every kernel tunnel is deleted (and goes with its
        // socket at exit anyway), and the kernel deletes its sessions in
        // its own work queue: no netlink call per session, each of which
        // waits for an RCU grace period in the kernel (Linux 6.1: 100
        // calls under software emulation took a minute).
        if kernel && !self.shutting_down() {
            self.dpw.submit(move |dp| {
                if let Err(e) = dp.delete_session(
                    l2tp_kernel::TunnelId(u32::from(t.0)),
                    l2tp_kernel::SessionId(u32::from(s.0)),
                ) {
                    tracing::warn!(
                        tunnel_id = t.0,
                        session_id = s.0,
                        "kernel session delete: {e}"
                    );
                }
            });
        }
        if let Some((r, a)) = pool_addr {
            self.pools.release(r, a);
        }
        tracing::debug!(
            tunnel_id = t.0,
            session_id = s.0,
            ifname,
            "session cleaned up"
        );
        self.reg.remove_session_if_done(t, s);
        self.flush_kernel_tunnel(t);
    }

    /// The core gave up tunnel `t`: delete its kernel tunnel once none of
    /// its sessions is stopping.
    fn delete_kernel_tunnel(&mut self, t: TunnelId) {
        match self.reg.tunnel_mut(t) {
            Some(entry) => {
                entry.kernel_delete_pending = true;
                self.flush_kernel_tunnel(t);
            }
            None => self.kernel_tunnel_delete(t),
        }
    }

    /// Delete tunnel `t`'s kernel tunnel if that is pending and none of its
    /// sessions is stopping; drop the entry if nothing is left of it.
    fn flush_kernel_tunnel(&mut self, t: TunnelId) {
        let Some(entry) = self.reg.tunnel_mut(t) else {
            return;
        };
        if entry.kernel_delete_pending && entry.stopping() == 0 {
            entry.kernel_delete_pending = false;
            self.kernel_tunnel_delete(t);
        }
        self.reg.remove_tunnel_if_done(t);
    }

    /// Submit the deletion of kernel tunnel `t`.
    fn kernel_tunnel_delete(&mut self, t: TunnelId) {
        self.dpw.submit(
            move |dp| match dp.delete_tunnel(l2tp_kernel::TunnelId(u32::from(t.0))) {
                Ok(()) => tracing::debug!(tunnel_id = t.0, "kernel tunnel deleted"),
                Err(e) => tracing::warn!(tunnel_id = t.0, "kernel tunnel delete: {e}"),
            },
        );
    }

    /// Session id `s` of tunnel `t` is handed out again while an entry
    /// from before still holds it (its pppd stopping): finish that one now.
    pub(super) fn drain_session(&mut self, t: TunnelId, s: SessionId) {
        let Some(c) = self.reg.session(t, s) else {
            return;
        };
        tracing::debug!(
            tunnel_id = t.0,
            session_id = s.0,
            "session id in use again: finishing the old session now"
        );
        let pid = c.pppd_pid;
        if let Some(c) = self.reg.session_mut(t, s) {
            c.released = true;
            c.down = true;
        }
        self.reg.unindex_session(t, s);
        if let Some(pid) = pid {
            super::pppd::sigkill(pid);
        }
        self.finish_session(t, s);
        self.reg.remove_session(t, s);
    }

    /// Tunnel id `t` is handed out again while the freed tunnel that had it
    /// still waits for its pppds: finish that tunnel's data plane now.
    pub(super) fn drain_freed_tunnel(&mut self, t: TunnelId) {
        let Some(entry) = self.reg.tunnel(t) else {
            return;
        };
        if !entry.is_freed() {
            return;
        }
        tracing::debug!(
            tunnel_id = t.0,
            "tunnel id in use again: finishing the old tunnel now"
        );
        let sessions: Vec<SessionId> = entry.sessions().map(|(s, _)| s).collect();
        for s in sessions {
            self.drain_session(t, s);
        }
        self.flush_kernel_tunnel(t);
        self.reg.remove_tunnel(t);
    }
}
