//! [`NullDataPlane`]: records calls, creates nothing in the kernel.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use crate::error::Error;
use crate::kernel::KernelDataPlane;
use crate::uapi::cmd;
use crate::{
    DataPlane, PppSession, SessionId, SessionInfo, SessionSpec, Stats, TunnelId, TunnelInfo,
    TunnelSpec, check_id,
};

/// One call made on a [`NullDataPlane`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// [`DataPlane::create_tunnel`]
    CreateTunnel(TunnelSpec),
    /// [`DataPlane::delete_tunnel`]
    DeleteTunnel(TunnelId),
    /// [`DataPlane::create_session`]
    CreateSession(SessionSpec),
    /// [`DataPlane::delete_session`]
    DeleteSession(TunnelId, SessionId),
    /// [`DataPlane::session_stats`]
    SessionStats(TunnelId, SessionId),
    /// [`DataPlane::tunnel_stats`]
    TunnelStats(TunnelId),
    /// [`DataPlane::list_tunnels`]
    ListTunnels,
    /// [`DataPlane::list_sessions`]
    ListSessions,
}

#[derive(Debug)]
struct NullSession {
    spec: SessionSpec,
    /// The other end of the socketpair handed out as the "PPPoL2TP socket"
    /// (none in signalling-only mode).
    peer_end: Option<OwnedFd>,
}

/// A data plane for hosts without kernel L2TP (tests, `--no-kernel` runs).
///
/// It records every call ([`NullDataPlane::calls`]) and keeps the tunnels and sessions
/// it was asked to create, with the kernel's rules: duplicate ids fail with `EEXIST`,
/// a session in an unknown tunnel with `ENODEV`, a non-PPP pseudowire in an L2TPv2
/// tunnel with `EPROTONOSUPPORT`, ids are checked like [`KernelDataPlane`] does;
/// deleting something unknown succeeds; deleting a tunnel deletes its sessions.
///
/// [`DataPlane::create_session`] returns a [`PppSession`] whose `fd` is one end of an
/// `AF_UNIX`/`SOCK_DGRAM` socketpair (close-on-exec, blocking); the other end stays
/// here and can be read with [`NullDataPlane::session_peer_end`] to see what the "pppd"
/// side wrote. It is not a PPPoL2TP socket: pppd's `pppol2tp` plugin rejects it.
/// Stats are always zero.
#[derive(Debug, Default)]
pub struct NullDataPlane {
    calls: Vec<Call>,
    tunnels: BTreeMap<TunnelId, TunnelSpec>,
    sessions: BTreeMap<(TunnelId, SessionId), NullSession>,
    fail_next: Option<i32>,
    /// Record no calls and hand out no socketpairs (see [`NullDataPlane::signalling_only`]).
    lean: bool,
}

impl NullDataPlane {
    /// An empty data plane.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty data plane for a daemon that runs the control protocol only
    /// (`data_plane = "null"`): it keeps the tunnels and sessions with the
    /// kernel's rules but records no calls and creates no socketpair, so a
    /// session costs no file descriptor and its memory does not grow with
    /// history. [`DataPlane::create_session`] returns `Ok(None)`.
    pub fn signalling_only() -> Self {
        Self {
            lean: true,
            ..Self::default()
        }
    }

    fn record(&mut self, call: Call) {
        if !self.lean {
            self.calls.push(call);
        }
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Returns and forgets the recorded calls.
    pub fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }

    /// Ids of the tunnels that currently exist, ascending.
    pub fn tunnel_ids(&self) -> Vec<TunnelId> {
        self.tunnels.keys().copied().collect()
    }

    /// (tunnel, session) ids of the sessions that currently exist, ascending.
    pub fn session_ids(&self) -> Vec<(TunnelId, SessionId)> {
        self.sessions.keys().copied().collect()
    }

    /// The spec a live tunnel was created with.
    pub fn tunnel(&self, id: TunnelId) -> Option<&TunnelSpec> {
        self.tunnels.get(&id)
    }

    /// The spec a live session was created with.
    pub fn session(&self, tunnel: TunnelId, session: SessionId) -> Option<&SessionSpec> {
        self.sessions.get(&(tunnel, session)).map(|s| &s.spec)
    }

    /// The data plane's end of a live session's socketpair.
    pub fn session_peer_end(&self, tunnel: TunnelId, session: SessionId) -> Option<BorrowedFd<'_>> {
        self.sessions
            .get(&(tunnel, session))
            .and_then(|s| s.peer_end.as_ref().map(|f| f.as_fd()))
    }

    /// Makes the next create/delete call fail with [`Error::Kernel`] carrying `errno`
    /// (the call is still recorded, nothing changes).
    pub fn fail_next(&mut self, errno: i32) {
        self.fail_next = Some(errno);
    }

    /// The injected failure, if one is pending; `op` names the operation
    /// (formatted only for an error).
    fn injected(&mut self, op: impl FnOnce() -> String) -> Result<(), Error> {
        match self.fail_next.take() {
            Some(errno) => Err(Error::kernel(op(), errno)),
            None => Ok(()),
        }
    }
}

impl DataPlane for NullDataPlane {
    fn create_tunnel(&mut self, spec: &TunnelSpec) -> Result<(), Error> {
        self.record(Call::CreateTunnel(spec.clone()));
        let op = || {
            format!(
                "{} tunnel {}",
                cmd::name(cmd::TUNNEL_CREATE),
                spec.tunnel_id
            )
        };
        self.injected(op)?;
        KernelDataPlane::check_tunnel_spec(spec)?;
        if self.tunnels.contains_key(&spec.tunnel_id) {
            return Err(Error::kernel(op(), libc::EEXIST));
        }
        self.tunnels.insert(spec.tunnel_id, spec.clone());
        Ok(())
    }

    fn delete_tunnel(&mut self, id: TunnelId) -> Result<(), Error> {
        self.record(Call::DeleteTunnel(id));
        self.injected(|| format!("{} tunnel {}", cmd::name(cmd::TUNNEL_DELETE), id))?;
        self.tunnels.remove(&id);
        self.sessions.retain(|(t, _), _| *t != id);
        Ok(())
    }

    fn create_session(&mut self, spec: &SessionSpec) -> Result<Option<PppSession>, Error> {
        self.record(Call::CreateSession(spec.clone()));
        let op = || {
            format!(
                "{} tunnel {} session {}",
                cmd::name(cmd::SESSION_CREATE),
                spec.tunnel_id,
                spec.session_id
            )
        };
        self.injected(op)?;
        let Some(tunnel) = self.tunnels.get(&spec.tunnel_id) else {
            return Err(Error::kernel(op(), libc::ENODEV));
        };
        let version = tunnel.version;
        check_id("session id", spec.session_id.0, version)?;
        check_id("peer session id", spec.peer_session_id.0, version)?;
        if version == 2 && !spec.pseudowire.is_ppp() {
            return Err(Error::kernel(op(), libc::EPROTONOSUPPORT));
        }
        // One descent of the map for the check and the insertion.
        let std::collections::btree_map::Entry::Vacant(slot) =
            self.sessions.entry((spec.tunnel_id, spec.session_id))
        else {
            return Err(Error::kernel(op(), libc::EEXIST));
        };
        if self.lean {
            slot.insert(NullSession {
                spec: spec.clone(),
                peer_end: None,
            });
            return Ok(None);
        }
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::io(format!("socketpair() for {}", op()), e.into()))?;
        slot.insert(NullSession {
            spec: spec.clone(),
            peer_end: Some(ours),
        });
        if !spec.pseudowire.is_ppp() {
            return Ok(None);
        }
        Ok(Some(PppSession {
            fd: theirs,
            tunnel_id: spec.tunnel_id,
            session_id: spec.session_id,
        }))
    }

    fn delete_session(&mut self, tunnel: TunnelId, session: SessionId) -> Result<(), Error> {
        self.record(Call::DeleteSession(tunnel, session));
        self.injected(|| {
            format!(
                "{} tunnel {} session {}",
                cmd::name(cmd::SESSION_DELETE),
                tunnel,
                session
            )
        })?;
        self.sessions.remove(&(tunnel, session));
        Ok(())
    }

    fn session_stats(&mut self, tunnel: TunnelId, session: SessionId) -> Result<Stats, Error> {
        self.record(Call::SessionStats(tunnel, session));
        if self.sessions.contains_key(&(tunnel, session)) {
            Ok(Stats::default())
        } else {
            Err(Error::kernel(
                format!(
                    "{} tunnel {} session {}",
                    cmd::name(cmd::SESSION_GET),
                    tunnel,
                    session
                ),
                libc::ENODEV,
            ))
        }
    }

    fn tunnel_stats(&mut self, tunnel: TunnelId) -> Result<Stats, Error> {
        self.record(Call::TunnelStats(tunnel));
        if self.tunnels.contains_key(&tunnel) {
            Ok(Stats::default())
        } else {
            Err(Error::kernel(
                format!("{} tunnel {}", cmd::name(cmd::TUNNEL_GET), tunnel),
                libc::ENODEV,
            ))
        }
    }

    fn list_tunnels(&mut self) -> Result<Vec<TunnelInfo>, Error> {
        self.record(Call::ListTunnels);
        Ok(self
            .tunnels
            .values()
            .map(|t| {
                let local = crate::udp::local_addr(t.socket);
                let peer = crate::udp::peer_addr(t.socket).ok();
                TunnelInfo {
                    tunnel_id: t.tunnel_id,
                    peer_tunnel_id: t.peer_tunnel_id,
                    version: t.version,
                    encap: t.encap,
                    local,
                    peer,
                    udp_checksum: Some(t.udp_checksum),
                    using_ipsec: false,
                    stats: Stats::default(),
                }
            })
            .collect())
    }

    fn list_sessions(&mut self) -> Result<Vec<SessionInfo>, Error> {
        self.record(Call::ListSessions);
        Ok(self
            .sessions
            .values()
            .map(|s| SessionInfo {
                tunnel_id: s.spec.tunnel_id,
                session_id: s.spec.session_id,
                peer_tunnel_id: s.spec.peer_tunnel_id,
                peer_session_id: s.spec.peer_session_id,
                pseudowire: s.spec.pseudowire,
                ifname: None,
                cookie: None,
                peer_cookie: None,
                recv_seq: s.spec.recv_seq,
                send_seq: s.spec.send_seq,
                lns_mode: s.spec.lns_mode,
                reorder_timeout_ms: s.spec.reorder_timeout_ms,
                using_ipsec: false,
                stats: Stats::default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encap, Pseudowire};
    use std::os::fd::AsRawFd;

    fn tunnel_spec(id: u32, peer: u32, sock: &std::net::UdpSocket) -> TunnelSpec {
        TunnelSpec {
            tunnel_id: TunnelId(id),
            peer_tunnel_id: TunnelId(peer),
            version: 2,
            encap: Encap::Udp,
            socket: sock.as_raw_fd(),
            udp_checksum: true,
        }
    }

    fn session_spec(t: u32, s: u32, ps: u32) -> SessionSpec {
        SessionSpec {
            tunnel_id: TunnelId(t),
            session_id: SessionId(s),
            peer_tunnel_id: TunnelId(200),
            peer_session_id: SessionId(ps),
            pseudowire: Pseudowire::Ppp,
            lns_mode: true,
            send_seq: false,
            recv_seq: false,
            reorder_timeout_ms: 0,
            peer_addr: "127.0.0.1:10002".parse().unwrap(),
        }
    }

    #[test]
    fn records_calls_and_follows_kernel_rules() {
        let sock = crate::tunnel_socket(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:10002".parse().unwrap(),
        )
        .unwrap();
        let mut dp = NullDataPlane::new();
        let ts = tunnel_spec(100, 200, &sock);
        dp.create_tunnel(&ts).unwrap();
        let e = dp.create_tunnel(&ts).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(
            e.to_string(),
            "L2TP_CMD_TUNNEL_CREATE tunnel 100: File exists (os error 17)"
        );

        let e = dp
            .create_session(&session_spec(101, 1000, 2000))
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV));

        let ss = session_spec(100, 1000, 2000);
        let ppp = dp
            .create_session(&ss)
            .unwrap()
            .expect("PPP session gives a socket");
        assert_eq!(ppp.tunnel_id, TunnelId(100));
        assert_eq!(ppp.session_id, SessionId(1000));
        assert_eq!(
            dp.create_session(&ss).unwrap_err().errno(),
            Some(libc::EEXIST)
        );

        let mut eth = session_spec(100, 1001, 2001);
        eth.pseudowire = Pseudowire::Eth;
        assert_eq!(
            dp.create_session(&eth).unwrap_err().errno(),
            Some(libc::EPROTONOSUPPORT)
        );
        assert!(matches!(
            dp.create_session(&session_spec(100, 70000, 1)),
            Err(Error::InvalidArgument(_))
        ));

        // The handed-out fd is one end of a socketpair; the other end is readable here.
        nix::unistd::write(&ppp.fd, b"ppp frame").unwrap();
        let mut buf = [0u8; 32];
        let peer = dp.session_peer_end(TunnelId(100), SessionId(1000)).unwrap();
        let n = nix::unistd::read(peer, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"ppp frame");

        assert_eq!(
            dp.session_stats(TunnelId(100), SessionId(1000)).unwrap(),
            Stats::default()
        );
        let tunnels = dp.list_tunnels().unwrap();
        assert_eq!(tunnels.len(), 1);
        assert_eq!(tunnels[0].peer, Some("127.0.0.1:10002".parse().unwrap()));
        assert_eq!(tunnels[0].local, Some(sock.local_addr().unwrap()));
        let sessions = dp.list_sessions().unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].peer_session_id, SessionId(2000));
        assert!(sessions[0].lns_mode);

        dp.fail_next(libc::EBUSY);
        let e = dp
            .delete_session(TunnelId(100), SessionId(1000))
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EBUSY));
        assert_eq!(dp.session_ids(), vec![(TunnelId(100), SessionId(1000))]);

        dp.delete_tunnel(TunnelId(100)).unwrap();
        assert!(dp.session_ids().is_empty());
        assert!(dp.tunnel_ids().is_empty());
        // Idempotent deletes.
        dp.delete_tunnel(TunnelId(100)).unwrap();
        dp.delete_session(TunnelId(100), SessionId(1000)).unwrap();
        assert_eq!(
            dp.session_stats(TunnelId(100), SessionId(1000))
                .unwrap_err()
                .errno(),
            Some(libc::ENODEV)
        );

        let calls = dp.take_calls();
        assert_eq!(calls[0], Call::CreateTunnel(ts.clone()));
        assert_eq!(calls[3], Call::CreateSession(ss.clone()));
        assert!(calls.contains(&Call::DeleteTunnel(TunnelId(100))));
        assert!(dp.calls().is_empty());
    }
}
