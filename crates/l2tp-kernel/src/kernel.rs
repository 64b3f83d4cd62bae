//! [`KernelDataPlane`]: the real data plane, over generic netlink or PPPoL2TP sockets.

use std::collections::HashMap;
use std::os::fd::{OwnedFd, RawFd};

use crate::error::Error;
use crate::genl::{Attrs, GenlL2tp};
use crate::pppox::{self, PppoL2tpAddr};
use crate::uapi::{self, attr, cmd};
use crate::{
    DataPlane, DataPlaneMode, Encap, PppSession, SessionId, SessionInfo, SessionSpec, Stats,
    TunnelId, TunnelInfo, TunnelSpec, check_id, udp,
};

/// What this data plane remembers about a tunnel it created.
#[derive(Debug)]
struct TunnelState {
    version: u8,
    /// The caller's UDP socket (not owned).
    udp_fd: RawFd,
    /// Legacy mode: the PPPoL2TP tunnel management socket (session ids 0/0).
    mgmt: Option<OwnedFd>,
}

/// The kernel data plane.
///
/// * [`DataPlaneMode::Netlink`]: `L2TP_CMD_TUNNEL_CREATE` with `L2TP_ATTR_FD` (managed
///   tunnel over the caller's UDP socket), `L2TP_CMD_SESSION_CREATE` with
///   `L2TP_PWTYPE_PPP`, then a PPPoL2TP socket connected to the session with fd -1.
///   Deletion with `L2TP_CMD_SESSION_DELETE` / `L2TP_CMD_TUNNEL_DELETE`; stats and
///   listings with `L2TP_CMD_*_GET`.
/// * [`DataPlaneMode::Legacy`]: a PPPoL2TP "tunnel management socket" connected with
///   session ids 0/0 and the UDP socket's fd creates the tunnel; one PPPoL2TP socket per
///   session connected with the real ids creates the session, then `setsockopt
///   (SOL_PPPOL2TP, LNSMODE/SENDSEQ/RECVSEQ/REORDERTO)`. Sessions end when the last
///   descriptor of their socket closes; stats come from `PPPIOCGL2TPSTATS`. Closing
///   the management socket does not delete the kernel tunnel (it lives until its UDP
///   socket closes), so `delete_tunnel` also sends `L2TP_CMD_TUNNEL_DELETE` when the
///   netlink family is available. Listing uses netlink if available.
///
/// In both modes the data plane keeps its own duplicate of every session socket, so a
/// session lives until [`DataPlane::delete_session`] / [`DataPlane::delete_tunnel`]
/// even if pppd exits first. In legacy mode, after `delete_session` the kernel session
/// still lives as long as another copy of the socket is open — pppd's inherited copy
/// keeps it until pppd exits, and so does the caller's [`PppSession::fd`] if it was
/// not dropped.
#[derive(Debug)]
pub struct KernelDataPlane {
    mode: DataPlaneMode,
    genl: Option<GenlL2tp>,
    tunnels: HashMap<TunnelId, TunnelState>,
    sessions: HashMap<(TunnelId, SessionId), OwnedFd>,
}

fn no_netlink(what: &str) -> Error {
    Error::NotSupported {
        detail: format!("{what} needs the generic netlink family \"l2tp\", which is not available"),
    }
}

impl KernelDataPlane {
    /// Opens the data plane.
    ///
    /// Netlink mode resolves the generic netlink family `l2tp` (missing →
    /// [`Error::NotSupported`]); both modes then probe
    /// `socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP)` (`EAFNOSUPPORT`/`EPROTONOSUPPORT`
    /// → [`Error::NotSupported`]). Both requests make a kernel with loadable modules
    /// load `l2tp_netlink` / `l2tp_ppp` on demand.
    pub fn new(mode: DataPlaneMode) -> Result<Self, Error> {
        let genl = match mode {
            DataPlaneMode::Netlink => Some(GenlL2tp::open()?),
            DataPlaneMode::Legacy => None,
        };
        drop(pppox::open_socket()?);
        let genl = match genl {
            Some(g) => Some(g),
            None => match GenlL2tp::open() {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::info!("legacy L2TP data plane without netlink listing: {e}");
                    None
                }
            },
        };
        tracing::debug!(%mode, netlink = genl.is_some(), "kernel L2TP data plane ready");
        Ok(Self {
            mode,
            genl,
            tunnels: HashMap::new(),
            sessions: HashMap::new(),
        })
    }

    /// The mode this data plane was opened with.
    pub fn mode(&self) -> DataPlaneMode {
        self.mode
    }

    /// Whether the generic netlink family is available (always in netlink mode).
    pub fn has_netlink(&self) -> bool {
        self.genl.is_some()
    }

    /// One tunnel by id (`L2TP_CMD_TUNNEL_GET`); needs netlink.
    pub fn get_tunnel(&mut self, id: TunnelId) -> Result<TunnelInfo, Error> {
        self.genl
            .as_mut()
            .ok_or_else(|| no_netlink("L2TP_CMD_TUNNEL_GET"))?
            .tunnel_get(id)
    }

    /// One session by ids (`L2TP_CMD_SESSION_GET`); needs netlink.
    pub fn get_session(&mut self, t: TunnelId, s: SessionId) -> Result<SessionInfo, Error> {
        self.genl
            .as_mut()
            .ok_or_else(|| no_netlink("L2TP_CMD_SESSION_GET"))?
            .session_get(t, s)
    }

    fn genl(&mut self, what: &str) -> Result<&mut GenlL2tp, Error> {
        self.genl.as_mut().ok_or_else(|| no_netlink(what))
    }

    fn tunnel_version(&mut self, id: TunnelId) -> Result<u8, Error> {
        if let Some(t) = self.tunnels.get(&id) {
            return Ok(t.version);
        }
        match self.genl.as_mut() {
            Some(g) => {
                let v = g.tunnel_get(id)?.version;
                Ok(if v == 0 { 2 } else { v })
            }
            None => Ok(2),
        }
    }

    pub(crate) fn check_tunnel_spec(spec: &TunnelSpec) -> Result<(), Error> {
        if spec.version != 2 && spec.version != 3 {
            return Err(Error::InvalidArgument(format!(
                "tunnel {}: L2TP version {} (expected 2 or 3)",
                spec.tunnel_id, spec.version
            )));
        }
        if spec.version == 2 && spec.encap != Encap::Udp {
            return Err(Error::InvalidArgument(format!(
                "tunnel {}: L2TPv2 runs over UDP only",
                spec.tunnel_id
            )));
        }
        check_id("tunnel id", spec.tunnel_id.0, spec.version)?;
        check_id("peer tunnel id", spec.peer_tunnel_id.0, spec.version)?;
        if spec.socket < 0 {
            return Err(Error::InvalidArgument(format!(
                "tunnel {}: no tunnel socket (fd {})",
                spec.tunnel_id, spec.socket
            )));
        }
        Ok(())
    }

    fn create_tunnel_netlink(&mut self, spec: &TunnelSpec) -> Result<(), Error> {
        let op = format!(
            "{} tunnel {}",
            cmd::name(cmd::TUNNEL_CREATE),
            spec.tunnel_id
        );
        let attrs = Attrs::new()
            .u32(attr::CONN_ID, spec.tunnel_id.0)
            .u32(attr::PEER_CONN_ID, spec.peer_tunnel_id.0)
            .u8(attr::PROTO_VERSION, spec.version)
            .u16(attr::ENCAP_TYPE, spec.encap.to_uapi())
            .u32(attr::FD, spec.socket as u32);
        self.genl(&op)?
            .request(&op, cmd::TUNNEL_CREATE, false, attrs)?;
        Ok(())
    }

    fn create_tunnel_legacy(&mut self, spec: &TunnelSpec) -> Result<OwnedFd, Error> {
        let op = format!(
            "connect(PPPoL2TP tunnel management socket) tunnel {}",
            spec.tunnel_id
        );
        if spec.encap != Encap::Udp {
            return Err(Error::InvalidArgument(format!(
                "tunnel {}: legacy mode supports UDP encapsulation only",
                spec.tunnel_id
            )));
        }
        let peer = udp::peer_addr(spec.socket)?;
        let sock = pppox::open_socket()?;
        pppox::connect(
            &sock,
            &PppoL2tpAddr {
                version: spec.version,
                fd: spec.socket,
                peer,
                s_tunnel: spec.tunnel_id.0,
                s_session: 0,
                d_tunnel: spec.peer_tunnel_id.0,
                d_session: 0,
            },
            &op,
        )?;
        Ok(sock)
    }

    fn create_session_netlink(&mut self, spec: &SessionSpec, version: u8) -> Result<(), Error> {
        let op = format!(
            "{} tunnel {} session {}",
            cmd::name(cmd::SESSION_CREATE),
            spec.tunnel_id,
            spec.session_id
        );
        let mut attrs = Attrs::new()
            .u32(attr::CONN_ID, spec.tunnel_id.0)
            .u32(attr::SESSION_ID, spec.session_id.0)
            .u32(attr::PEER_CONN_ID, spec.peer_tunnel_id.0)
            .u32(attr::PEER_SESSION_ID, spec.peer_session_id.0)
            .u16(attr::PW_TYPE, spec.pseudowire.to_uapi())
            .u8(attr::RECV_SEQ, u8::from(spec.recv_seq))
            .u8(attr::SEND_SEQ, u8::from(spec.send_seq))
            .u8(attr::LNS_MODE, u8::from(spec.lns_mode));
        if spec.reorder_timeout_ms > 0 {
            attrs = attrs.u64(attr::RECV_TIMEOUT, spec.reorder_timeout_ms);
        }
        match self
            .genl(&op)?
            .request(&op, cmd::SESSION_CREATE, false, attrs)
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.errno() == Some(libc::EPROTONOSUPPORT)
                    && spec.pseudowire.is_ppp()
                    && version == 2 =>
            {
                Err(Error::NotSupported {
                    detail: format!("{e} (PPP pseudowire not available: l2tp_ppp missing)"),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn session_delete_netlink(
        &mut self,
        tunnel: TunnelId,
        session: SessionId,
    ) -> Result<(), Error> {
        let op = format!(
            "{} tunnel {} session {}",
            cmd::name(cmd::SESSION_DELETE),
            tunnel,
            session
        );
        let attrs = Attrs::new()
            .u32(attr::CONN_ID, tunnel.0)
            .u32(attr::SESSION_ID, session.0);
        match self
            .genl(&op)?
            .request(&op, cmd::SESSION_DELETE, false, attrs)
        {
            Ok(_) => Ok(()),
            Err(e) if is_gone(&e) => {
                tracing::debug!("{e}: session already gone");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn connect_session_socket(
        &mut self,
        spec: &SessionSpec,
        version: u8,
        fd: RawFd,
    ) -> Result<OwnedFd, Error> {
        let op = format!(
            "connect(PPPoL2TP session socket) tunnel {} session {}",
            spec.tunnel_id, spec.session_id
        );
        let sock = pppox::open_socket()?;
        pppox::connect(
            &sock,
            &PppoL2tpAddr {
                version,
                fd,
                peer: spec.peer_addr,
                s_tunnel: spec.tunnel_id.0,
                s_session: spec.session_id.0,
                d_tunnel: spec.peer_tunnel_id.0,
                d_session: spec.peer_session_id.0,
            },
            &op,
        )?;
        Ok(sock)
    }

    fn set_session_options(sock: &OwnedFd, spec: &SessionSpec) -> Result<(), Error> {
        let reorder = i32::try_from(spec.reorder_timeout_ms).map_err(|_| {
            Error::InvalidArgument(format!(
                "reorder timeout {} ms too large",
                spec.reorder_timeout_ms
            ))
        })?;
        for (opt, name, value) in [
            (
                uapi::PPPOL2TP_SO_LNSMODE,
                "PPPOL2TP_SO_LNSMODE",
                i32::from(spec.lns_mode),
            ),
            (
                uapi::PPPOL2TP_SO_SENDSEQ,
                "PPPOL2TP_SO_SENDSEQ",
                i32::from(spec.send_seq),
            ),
            (
                uapi::PPPOL2TP_SO_RECVSEQ,
                "PPPOL2TP_SO_RECVSEQ",
                i32::from(spec.recv_seq),
            ),
            (
                uapi::PPPOL2TP_SO_REORDERTO,
                "PPPOL2TP_SO_REORDERTO",
                reorder,
            ),
        ] {
            let op = format!(
                "setsockopt(SOL_PPPOL2TP, {name}, {value}) tunnel {} session {}",
                spec.tunnel_id, spec.session_id
            );
            pppox::set_option(sock, opt, value, &op)?;
        }
        Ok(())
    }
}

/// `ENODEV`/`ENOENT`: the kernel object does not exist (any more).
fn is_gone(e: &Error) -> bool {
    matches!(e.errno(), Some(libc::ENODEV) | Some(libc::ENOENT))
}

fn dup_fd(fd: &OwnedFd, op: &str) -> Result<OwnedFd, Error> {
    fd.try_clone().map_err(|e| Error::io(op, e))
}

impl DataPlane for KernelDataPlane {
    fn create_tunnel(&mut self, spec: &TunnelSpec) -> Result<(), Error> {
        Self::check_tunnel_spec(spec)?;
        if self.tunnels.contains_key(&spec.tunnel_id) {
            return Err(Error::kernel(
                format!("create tunnel {}", spec.tunnel_id),
                libc::EEXIST,
            ));
        }
        if spec.encap == Encap::Udp {
            udp::set_udp_checksum(spec.socket, spec.udp_checksum)?;
        }
        let mgmt = match self.mode {
            DataPlaneMode::Netlink => {
                self.create_tunnel_netlink(spec)?;
                None
            }
            DataPlaneMode::Legacy => Some(self.create_tunnel_legacy(spec)?),
        };
        tracing::debug!(tunnel = %spec.tunnel_id, peer = %spec.peer_tunnel_id, mode = %self.mode, "kernel tunnel created");
        self.tunnels.insert(
            spec.tunnel_id,
            TunnelState {
                version: spec.version,
                udp_fd: spec.socket,
                mgmt,
            },
        );
        Ok(())
    }

    fn delete_tunnel(&mut self, id: TunnelId) -> Result<(), Error> {
        if self.mode == DataPlaneMode::Legacy {
            // Our session socket copies (closing them deletes the sessions unless pppd
            // still holds one), then the management socket. Closing the management
            // socket does NOT delete the kernel tunnel (seen on 6.1): it lives until
            // its UDP socket is closed, so delete it through netlink when we can.
            self.sessions.retain(|(t, _), _| *t != id);
            if let Some(state) = self.tunnels.remove(&id) {
                drop(state.mgmt);
            }
            if self.genl.is_none() {
                tracing::debug!(tunnel = %id, "legacy tunnel released; it goes away with its UDP socket");
                return Ok(());
            }
        }
        let op = format!("{} tunnel {}", cmd::name(cmd::TUNNEL_DELETE), id);
        let attrs = Attrs::new().u32(attr::CONN_ID, id.0);
        match self
            .genl(&op)?
            .request(&op, cmd::TUNNEL_DELETE, false, attrs)
        {
            Ok(_) => {}
            Err(e) if is_gone(&e) => tracing::debug!("{e}: tunnel already gone"),
            Err(e) => return Err(e),
        }
        self.sessions.retain(|(t, _), _| *t != id);
        self.tunnels.remove(&id);
        tracing::debug!(tunnel = %id, "kernel tunnel deleted");
        Ok(())
    }

    fn create_session(&mut self, spec: &SessionSpec) -> Result<Option<PppSession>, Error> {
        let version = match self.tunnel_version(spec.tunnel_id) {
            Ok(v) => v,
            // Report it as the kernel would answer SESSION_CREATE for a missing tunnel.
            Err(e) if e.errno() == Some(libc::ENODEV) => {
                return Err(Error::kernel(
                    format!(
                        "{} tunnel {} session {}",
                        cmd::name(cmd::SESSION_CREATE),
                        spec.tunnel_id,
                        spec.session_id
                    ),
                    libc::ENODEV,
                ));
            }
            Err(e) => return Err(e),
        };
        check_id("tunnel id", spec.tunnel_id.0, version)?;
        check_id("session id", spec.session_id.0, version)?;
        check_id("peer session id", spec.peer_session_id.0, version)?;
        let key = (spec.tunnel_id, spec.session_id);
        if self.sessions.contains_key(&key) {
            return Err(Error::kernel(
                format!(
                    "create session {} in tunnel {}",
                    spec.session_id, spec.tunnel_id
                ),
                libc::EEXIST,
            ));
        }
        let sock = match self.mode {
            DataPlaneMode::Netlink => {
                self.create_session_netlink(spec, version)?;
                if !spec.pseudowire.is_ppp() {
                    return Ok(None);
                }
                // The session exists; attach a PPPoL2TP socket to it (fd -1: the
                // kernel already has the tunnel).
                match self.connect_session_socket(spec, version, -1) {
                    Ok(s) => s,
                    Err(e) => {
                        if let Err(e2) =
                            self.session_delete_netlink(spec.tunnel_id, spec.session_id)
                        {
                            tracing::warn!("rollback after failed session socket connect: {e2}");
                        }
                        return Err(e);
                    }
                }
            }
            DataPlaneMode::Legacy => {
                if !spec.pseudowire.is_ppp() {
                    return Err(Error::InvalidArgument(format!(
                        "session {} in tunnel {}: legacy mode supports PPP pseudowires only",
                        spec.session_id, spec.tunnel_id
                    )));
                }
                let fd = self.tunnels.get(&spec.tunnel_id).map_or(-1, |t| t.udp_fd);
                let sock = self.connect_session_socket(spec, version, fd)?;
                // On failure `sock` is dropped, which deletes the session again.
                Self::set_session_options(&sock, spec)?;
                sock
            }
        };
        let op = format!(
            "dup(PPPoL2TP session socket) tunnel {} session {}",
            spec.tunnel_id, spec.session_id
        );
        let keep = dup_fd(&sock, &op)?;
        self.sessions.insert(key, keep);
        tracing::debug!(tunnel = %spec.tunnel_id, session = %spec.session_id, peer_session = %spec.peer_session_id, mode = %self.mode, "kernel session created");
        Ok(Some(PppSession {
            fd: sock,
            tunnel_id: spec.tunnel_id,
            session_id: spec.session_id,
        }))
    }

    fn delete_session(&mut self, tunnel: TunnelId, session: SessionId) -> Result<(), Error> {
        if self.mode == DataPlaneMode::Netlink {
            self.session_delete_netlink(tunnel, session)?;
        }
        // Legacy: closing our copy deletes the session once no other copy is open.
        self.sessions.remove(&(tunnel, session));
        tracing::debug!(tunnel = %tunnel, session = %session, "kernel session deleted");
        Ok(())
    }

    fn session_stats(&mut self, tunnel: TunnelId, session: SessionId) -> Result<Stats, Error> {
        if self.mode == DataPlaneMode::Legacy
            && let Some(fd) = self.sessions.get(&(tunnel, session))
        {
            let op = format!("ioctl(PPPIOCGL2TPSTATS) tunnel {tunnel} session {session}");
            return Ok(pppox::ioctl_stats(fd, &op)?.2);
        }
        if self.genl.is_none() && self.mode == DataPlaneMode::Legacy {
            return Err(Error::kernel(
                format!("session stats tunnel {tunnel} session {session}: no session socket"),
                libc::ENOENT,
            ));
        }
        Ok(self.get_session(tunnel, session)?.stats)
    }

    fn tunnel_stats(&mut self, tunnel: TunnelId) -> Result<Stats, Error> {
        if self.mode == DataPlaneMode::Legacy
            && let Some(TunnelState { mgmt: Some(fd), .. }) = self.tunnels.get(&tunnel)
        {
            let op = format!("ioctl(PPPIOCGL2TPSTATS) tunnel {tunnel}");
            return Ok(pppox::ioctl_stats(fd, &op)?.2);
        }
        Ok(self.get_tunnel(tunnel)?.stats)
    }

    fn list_tunnels(&mut self) -> Result<Vec<TunnelInfo>, Error> {
        self.genl("L2TP_CMD_TUNNEL_GET (dump)")?.tunnel_dump()
    }

    fn list_sessions(&mut self) -> Result<Vec<SessionInfo>, Error> {
        self.genl("L2TP_CMD_SESSION_GET (dump)")?.session_dump()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this build host the kernel has no L2TP: `new` must say so with
    /// `Error::NotSupported`. Tolerant in one direction only: if the kernel *does* have
    /// the `l2tp` family (a developer machine with the modules), the test is skipped.
    #[test]
    fn new_reports_not_supported_without_kernel_l2tp() {
        match KernelDataPlane::new(DataPlaneMode::Netlink) {
            Ok(_) => eprintln!("skipping: this kernel has the l2tp generic netlink family"),
            Err(e) => {
                assert!(e.is_not_supported(), "expected NotSupported, got: {e}");
                let msg = e.to_string();
                assert!(msg.contains("modprobe -a l2tp_netlink l2tp_ppp"), "{msg}");
                assert!(msg.contains("\"l2tp\""), "{msg}");
            }
        }
        match KernelDataPlane::new(DataPlaneMode::Legacy) {
            Ok(_) => eprintln!("skipping: this kernel has PPPoL2TP sockets"),
            Err(e) => {
                assert!(e.is_not_supported(), "expected NotSupported, got: {e}");
                assert!(e.to_string().contains("AF_PPPOX"), "{e}");
            }
        }
    }

    #[test]
    fn tunnel_spec_validation() {
        let mut spec = TunnelSpec {
            tunnel_id: TunnelId(1),
            peer_tunnel_id: TunnelId(2),
            version: 2,
            encap: Encap::Udp,
            socket: 3,
            udp_checksum: true,
        };
        assert!(KernelDataPlane::check_tunnel_spec(&spec).is_ok());
        spec.encap = Encap::Ip;
        assert!(KernelDataPlane::check_tunnel_spec(&spec).is_err());
        spec.encap = Encap::Udp;
        spec.tunnel_id = TunnelId(0x10000);
        assert!(KernelDataPlane::check_tunnel_spec(&spec).is_err());
        spec.tunnel_id = TunnelId(1);
        spec.version = 1;
        assert!(KernelDataPlane::check_tunnel_spec(&spec).is_err());
        spec.version = 2;
        spec.socket = -1;
        assert!(KernelDataPlane::check_tunnel_spec(&spec).is_err());
    }
}
