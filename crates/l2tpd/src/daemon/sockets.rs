//! The daemon's UDP sockets: the listening socket, one connected socket per
//! tunnel that needs one, and the bounded receive queues between their
//! reader tasks and the protocol loop.
//!
//! - A half-open tunnel (a peer's SCCRQ answered, no SCCCN yet) has no socket:
//!   its messages go out of the listening socket, so a flood of SCCRQs costs
//!   no file descriptor, task or buffer. A responder tunnel gets its connected
//!   socket when it is established (the kernel tunnel needs one,
//!   `L2TP_ATTR_FD`); a tunnel we dial gets one before its SCCRQ.
//! - With the null data plane there is no kernel tunnel, and a tunnel on the
//!   listening port needs no socket of its own: it lives on the listening
//!   socket from its first message to its last ([`Sockets::host`] once
//!   established), told apart from the others by its tunnel id.
//! - Connected sockets share the listening address and port (`SO_REUSEADDR`);
//!   a further live tunnel to a peer that already has one on that 5-tuple
//!   binds an ephemeral port instead (RFC 2661 §8.1 lets either side use any
//!   port), without `SO_REUSEADDR`, so two tunnels never share a 5-tuple.
//!   The 5-tuples are indexed: opening a socket never looks at the others.
//!   A tunnel whose `our_udp_port` is not the listening port gets its socket
//!   on that port (0: an ephemeral one) before its first message, SCCRP
//!   included: many tunnels on one port cost the kernel a scan of them all
//!   per bind and per datagram for the listening socket.
//! - Datagrams from established tunnels' sockets and from the listening
//!   socket travel in two bounded queues; the protocol loop drains the
//!   tunnels' first, so a backlog of SCCRQs never delays an established
//!   tunnel's control messages. The control messages of established
//!   tunnels that live on the listening socket join the tunnels' queue.
//!   A full queue drops (and counts) the datagram; the peer retransmits.
//! - Reader tasks share one receive buffer per thread instead of holding 64 KiB each.
//! - Outgoing datagrams are queued in order and sent with one `sendmmsg(2)`
//!   per run of datagrams from the same socket ([`Sockets::flush`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use l2tp_proto::wire::TunnelId;
use l2tp_proto::wire::{PacketKind, decode_header};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Datagrams queued from the listening socket (new tunnels, half-open
/// tunnels, strays) before further ones are dropped.
pub(super) const LISTEN_QUEUE: usize = 4096;
/// Datagrams queued from all tunnel sockets together before further ones are dropped.
pub(super) const TUNNEL_QUEUE: usize = 65_536;
/// Largest datagram read (L2TP control messages are far smaller).
const MAX_DATAGRAM: usize = 65_535;

thread_local! {
    static RECV_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

/// A received datagram and its source.
pub(super) struct Datagram {
    /// Source address and port.
    pub from: SocketAddr,
    /// The UDP payload.
    pub data: Vec<u8>,
}

/// Datagrams dropped because a receive queue was full.
#[derive(Debug, Default)]
pub(super) struct QueueDrops {
    /// From the listening socket.
    pub listen: AtomicU64,
    /// From tunnel sockets.
    pub tunnel: AtomicU64,
}

/// A tunnel's connected UDP socket and its reader task. Several tunnel ids
/// may share one (a closing tunnel moved onto its successor's socket).
struct TunnelSocket {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
    /// The peer address and port it is connected to; `None` while a tunnel
    /// we dial on an ephemeral port waits for its SCCRP (see [`Sockets::open`]).
    peer: std::cell::Cell<Option<SocketAddr>>,
    /// (local, peer) when bound to the shared local port; `None` for an ephemeral port.
    tuple: Option<(SocketAddr, SocketAddr)>,
}

impl Drop for TunnelSocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A limiter for per-datagram log lines ([`l2tp_proto::endpoint::JUNK_LOG_LINES_PER_SEC`]).
fn junk_log_limiter() -> l2tp_proto::ratelimit::RateLimiter {
    let n = l2tp_proto::endpoint::JUNK_LOG_LINES_PER_SEC;
    l2tp_proto::ratelimit::RateLimiter::new(n, n)
}

thread_local! {
    /// Send-error log lines (the daemon runs on one thread).
    static SEND_LOGS: std::cell::RefCell<l2tp_proto::ratelimit::RateLimiter> =
        std::cell::RefCell::new(junk_log_limiter());
}

/// The tunnel ids (16 bits, RFC 2661 §3.1) of the established tunnels that
/// live on the listening socket (see [`Sockets::host`]): a bit each, 8 KiB
/// in all, shared with the listening socket's reader, which queues their
/// control messages with the tunnel sockets' datagrams.
struct Hosted(Box<[AtomicU64; 1024]>);

impl Hosted {
    fn new() -> Self {
        Self(Box::new(std::array::from_fn(|_| AtomicU64::new(0))))
    }

    fn word_bit(tunnel: u16) -> (usize, u64) {
        (usize::from(tunnel / 64), 1 << (tunnel % 64))
    }

    fn set(&self, tunnel: TunnelId, on: bool) {
        let (w, bit) = Self::word_bit(tunnel.0);
        match on {
            true => self.0[w].fetch_or(bit, Ordering::Relaxed),
            false => self.0[w].fetch_and(!bit, Ordering::Relaxed),
        };
    }

    fn contains(&self, tunnel: TunnelId) -> bool {
        let (w, bit) = Self::word_bit(tunnel.0);
        self.0[w].load(Ordering::Relaxed) & bit != 0
    }

    fn clear(&self) {
        for w in self.0.iter() {
            w.store(0, Ordering::Relaxed);
        }
    }
}

/// Where a reader queues what it reads.
enum Route {
    /// A tunnel socket: everything to the tunnels' queue.
    Tunnel(mpsc::Sender<Datagram>),
    /// The listening socket: control messages of the established tunnels
    /// it hosts to the tunnels' queue, the rest (SCCRQs, half-open
    /// tunnels, strays) to its own.
    Listen {
        listen: mpsc::Sender<Datagram>,
        tunnel: mpsc::Sender<Datagram>,
        hosted: Arc<Hosted>,
    },
}

impl Route {
    /// The queue for `data`, and whether it is the listening socket's.
    fn pick(&self, data: &[u8]) -> (&mpsc::Sender<Datagram>, bool) {
        match self {
            Self::Tunnel(tx) => (tx, false),
            Self::Listen {
                listen,
                tunnel,
                hosted,
            } => {
                let established = decode_header(data).is_ok_and(|(h, _)| {
                    h.kind == PacketKind::Control && hosted.contains(h.tunnel_id)
                });
                match established {
                    true => (tunnel, false),
                    false => (listen, true),
                }
            }
        }
    }
}

/// Read `socket` until it fails for good, queueing datagrams as `route`
/// says (dropping and counting in `drops` when the queue is full).
async fn reader(socket: Arc<UdpSocket>, route: Route, drops: Arc<QueueDrops>) {
    // A peer can provoke one receive error per datagram (ICMP): the log
    // lines are rate-limited, with the count of those held back.
    let mut recv_logs = junk_log_limiter();
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        loop {
            let got = RECV_BUF.with_borrow_mut(|buf| {
                socket.try_recv_from(buf).map(|(n, from)| Datagram {
                    from,
                    data: buf[..n].to_vec(),
                })
            });
            match got {
                Ok(d) => {
                    let (tx, listen) = route.pick(&d.data);
                    match tx.try_send(d) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            let counter = if listen { &drops.listen } else { &drops.tunnel };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP errors (e.g. port unreachable) surface on connected UDP
                // sockets as ECONNREFUSED; the retransmission logic deals with loss.
                Err(e) => {
                    if let Some(suppressed) = recv_logs.allow(std::time::Instant::now()) {
                        tracing::debug!(suppressed, "recv: {e}");
                    }
                    break;
                }
            }
        }
    }
}

/// All UDP sockets of the daemon and their receive queues.
pub(super) struct Sockets {
    listener: Arc<UdpSocket>,
    /// The listening socket's port.
    listen_port: u16,
    by_tunnel: HashMap<TunnelId, Arc<TunnelSocket>>,
    /// Tunnels on each shared-port socket, by (local, peer).
    by_tuple: HashMap<(SocketAddr, SocketAddr), Vec<TunnelId>>,
    tunnel_tx: mpsc::Sender<Datagram>,
    tunnel_rx: mpsc::Receiver<Datagram>,
    listen_rx: mpsc::Receiver<Datagram>,
    drops: Arc<QueueDrops>,
    /// Established tunnels that live on the listening socket.
    hosted: Arc<Hosted>,
    _listen_reader: JoinHandle<()>,
    /// Datagrams to send, in order (see [`Sockets::queue`]).
    outbox: Vec<Outgoing>,
}

/// A datagram waiting in [`Sockets`]' outbox.
struct Outgoing {
    /// The socket it leaves from.
    socket: Arc<UdpSocket>,
    /// Its destination; `None` for a connected socket.
    to: Option<SocketAddr>,
    /// The UDP payload.
    data: Vec<u8>,
    /// The tunnel that sends it and its peer, for the log line of a failure.
    tunnel: TunnelId,
    peer: SocketAddr,
}

/// Most datagrams handed to one `sendmmsg(2)` (the kernel's `UIO_MAXIOV`
/// is 1024; a turn of the daemon loop rarely queues more than this).
const SEND_BATCH: usize = 64;

/// Send `batch` from `socket` with one `sendmmsg(2)`: how many went out
/// (at least one), or the error of the first.
fn send_batch(socket: &UdpSocket, batch: &[Outgoing]) -> std::io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let iovs: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|o| [IoSlice::new(&o.data)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = batch
        .iter()
        .map(|o| o.to.map(SockaddrStorage::from))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(batch.len(), None);
    let cmsgs: [ControlMessage<'_>; 0] = [];
    let sent = sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &iovs,
        &addrs,
        cmsgs,
        MsgFlags::empty(),
    )?;
    Ok(sent.count())
}

impl Sockets {
    /// Start reading the listening socket.
    pub(super) fn new(listener: UdpSocket) -> std::io::Result<Self> {
        let listen_port = listener.local_addr()?.port();
        let listener = Arc::new(listener);
        let drops = Arc::new(QueueDrops::default());
        let (listen_tx, listen_rx) = mpsc::channel(LISTEN_QUEUE);
        let (tunnel_tx, tunnel_rx) = mpsc::channel(TUNNEL_QUEUE);
        let hosted = Arc::new(Hosted::new());
        let route = Route::Listen {
            listen: listen_tx,
            tunnel: tunnel_tx.clone(),
            hosted: hosted.clone(),
        };
        let listen_reader = tokio::spawn(reader(listener.clone(), route, drops.clone()));
        Ok(Self {
            listener,
            listen_port,
            by_tunnel: HashMap::new(),
            by_tuple: HashMap::new(),
            tunnel_tx,
            tunnel_rx,
            listen_rx,
            drops,
            hosted,
            _listen_reader: listen_reader,
            outbox: Vec::new(),
        })
    }

    /// Datagrams dropped so far because a queue was full.
    pub(super) fn drops(&self) -> (u64, u64) {
        (
            self.drops.listen.load(Ordering::Relaxed),
            self.drops.tunnel.load(Ordering::Relaxed),
        )
    }

    /// Number of tunnel sockets open.
    pub(super) fn count(&self) -> usize {
        self.by_tunnel.len()
    }

    /// The next datagram: tunnel sockets first, then the listening socket.
    pub(super) async fn recv(&mut self) -> Option<Datagram> {
        tokio::select! {
            biased;
            Some(d) = self.tunnel_rx.recv() => Some(d),
            Some(d) = self.listen_rx.recv() => Some(d),
            else => None,
        }
    }

    /// A datagram already queued, without waiting: tunnel sockets first,
    /// then the listening socket (as [`Self::recv`]).
    pub(super) fn try_recv(&mut self) -> Option<Datagram> {
        self.tunnel_rx
            .try_recv()
            .ok()
            .or_else(|| self.listen_rx.try_recv().ok())
    }

    /// The socket of `tunnel`, if it has one.
    pub(super) fn get(&self, tunnel: TunnelId) -> Option<Arc<UdpSocket>> {
        self.by_tunnel.get(&tunnel).map(|s| s.socket.clone())
    }

    /// `tunnel`'s socket, if it has one: the peer address it is connected
    /// to (`None`: not connected yet).
    pub(super) fn peer_of(&self, tunnel: TunnelId) -> Option<Option<SocketAddr>> {
        self.by_tunnel.get(&tunnel).map(|s| s.peer.get())
    }

    /// Connect `tunnel`'s socket, opened unconnected, to `peer` (the port its
    /// SCCRP came from). Nothing to do for one that is connected.
    pub(super) fn connect(&mut self, tunnel: TunnelId, peer: SocketAddr) -> std::io::Result<()> {
        let Some(s) = self.by_tunnel.get(&tunnel) else {
            return Ok(());
        };
        if s.peer.get().is_none() {
            l2tp_kernel::connect_socket(&*s.socket, peer).map_err(std::io::Error::other)?;
            s.peer.set(Some(peer));
        }
        Ok(())
    }

    /// The tunnels that have a socket.
    pub(super) fn tunnels(&self) -> impl Iterator<Item = TunnelId> + '_ {
        self.by_tunnel.keys().copied()
    }

    /// Queue `data` from `tunnel` to `peer`, from `socket` (`None`: the
    /// listening socket, for half-open tunnels and refusals); `connected`:
    /// the socket is connected to `peer`. It goes out with the next
    /// [`Self::flush`], after the datagrams queued before it.
    pub(super) fn queue(
        &mut self,
        socket: Option<Arc<UdpSocket>>,
        connected: bool,
        tunnel: TunnelId,
        peer: SocketAddr,
        data: Vec<u8>,
    ) {
        let socket = socket.unwrap_or_else(|| self.listener.clone());
        let to = (!connected).then_some(peer);
        self.outbox.push(Outgoing {
            socket,
            to,
            data,
            tunnel,
            peer,
        });
    }

    /// Send the queued datagrams in order: the consecutive ones of one
    /// socket with one `sendmmsg(2)` (up to [`SEND_BATCH`]), waiting while
    /// a socket's send buffer is full. A datagram the kernel refuses is
    /// dropped (logged at most `JUNK_LOG_LINES_PER_SEC` a second): loss is
    /// recovered by retransmission.
    pub(super) async fn flush(&mut self) {
        let outbox = std::mem::take(&mut self.outbox);
        let mut rest = &outbox[..];
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take(SEND_BATCH)
                .take_while(|o| Arc::ptr_eq(&o.socket, &first.socket))
                .count();
            let batch = &rest[..run];
            let sent = first
                .socket
                .async_io(tokio::io::Interest::WRITABLE, || {
                    send_batch(&first.socket, batch)
                })
                .await;
            match sent {
                Ok(n) => rest = &rest[n.clamp(1, run)..],
                Err(e) => {
                    // The first of the batch failed: drop it, go on with the next.
                    let allowed = SEND_LOGS.with_borrow_mut(|r| r.allow(std::time::Instant::now()));
                    if let Some(suppressed) = allowed {
                        tracing::debug!(tunnel_id = first.tunnel.0, peer = %first.peer, suppressed, "send: {e}");
                    }
                    rest = &rest[1..];
                }
            }
        }
        // Keep the allocation for the next turn.
        let mut outbox = outbox;
        outbox.clear();
        if self.outbox.is_empty() {
            self.outbox = outbox;
        }
    }

    /// Does a live tunnel (`is_live`) use the 5-tuple (`local`, `peer`)?
    pub(super) fn tuple_taken(
        &self,
        local: SocketAddr,
        peer: SocketAddr,
        is_live: impl Fn(TunnelId) -> bool,
    ) -> bool {
        self.by_tuple
            .get(&(local, peer))
            .is_some_and(|users| users.iter().any(|id| is_live(*id)))
    }

    /// Open `tunnel`'s socket from `local` to `peer` (or return the one it
    /// has). When a live tunnel (`is_live`) already uses that 5-tuple, the
    /// new socket gets an ephemeral port; otherwise tunnels still closing or
    /// lingering on the 5-tuple move onto the new socket for their last
    /// acknowledgements and the old socket closes.
    ///
    /// A socket on the shared port is connected at once: should the peer
    /// answer a tunnel we `dial` from another port (RFC 2661 §8.1), its SCCRP
    /// reaches the listening socket, and the tunnel's socket is opened again
    /// for the new port. One on an ephemeral port for a tunnel we dial is
    /// left unconnected, so that it hears the SCCRP from any port, and is
    /// connected with [`Self::connect`] before the kernel tunnel is made.
    pub(super) fn open(
        &mut self,
        tunnel: TunnelId,
        local: SocketAddr,
        peer: SocketAddr,
        dial: bool,
        is_live: impl Fn(TunnelId) -> bool,
    ) -> std::io::Result<Arc<UdpSocket>> {
        if let Some(s) = self.by_tunnel.get(&tunnel) {
            return Ok(s.socket.clone());
        }
        let key = (local, peer);
        // Port 0 (`our_udp_port = 0`): a port of its own, never shared.
        let shared = local.port() != 0;
        let users = match shared {
            true => self.by_tuple.get(&key).cloned().unwrap_or_default(),
            false => Vec::new(),
        };
        let live_clash = users.iter().any(|id| is_live(*id));
        let mut bind = local;
        if live_clash {
            bind.set_port(0);
        }
        // Only the listening socket hears an SCCRP from another port of
        // the peer for a socket connected on the listening port; on any
        // other port the socket of a tunnel we dial must hear it itself.
        let unconnected = dial && bind.port() != self.listen_port;
        let on_tuple = shared && !live_clash;
        let std_sock = if unconnected {
            l2tp_kernel::unconnected_tunnel_socket(bind)
        } else {
            l2tp_kernel::tunnel_socket(bind, peer)
        }
        .map_err(std::io::Error::other)?;
        let socket = Arc::new(UdpSocket::from_std(std_sock)?);
        let reader = tokio::spawn(reader(
            socket.clone(),
            Route::Tunnel(self.tunnel_tx.clone()),
            self.drops.clone(),
        ));
        // Used on the daemon loop's thread only; newer clippy flags the Arc.
        #[allow(clippy::arc_with_non_send_sync)]
        let entry = Arc::new(TunnelSocket {
            socket: socket.clone(),
            reader,
            peer: std::cell::Cell::new((!unconnected).then_some(peer)),
            tuple: on_tuple.then_some(key),
        });
        if on_tuple {
            for id in &users {
                self.by_tunnel.insert(*id, entry.clone());
            }
            self.by_tuple.entry(key).or_default().push(tunnel);
        }
        self.by_tunnel.insert(tunnel, entry);
        Ok(socket)
    }

    /// Keep the established `tunnel`, which has no socket of its own, on
    /// the listening socket: its control messages are queued with the
    /// tunnel sockets' datagrams from now on (see [`Route`]). Returns a
    /// descriptor of the listening socket, the tunnel's socket for the data
    /// plane's records. Errors: the descriptor could not be duplicated.
    pub(super) fn host(&mut self, tunnel: TunnelId) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        let fd = self.listener.as_fd().try_clone_to_owned()?;
        self.hosted.set(tunnel, true);
        Ok(fd)
    }

    /// `tunnel` is gone: its socket closes when no other tunnel uses it.
    pub(super) fn release(&mut self, tunnel: TunnelId) {
        self.hosted.set(tunnel, false);
        let Some(entry) = self.by_tunnel.remove(&tunnel) else {
            return;
        };
        if let Some(key) = entry.tuple
            && let Some(users) = self.by_tuple.get_mut(&key)
        {
            users.retain(|id| *id != tunnel);
            if users.is_empty() {
                self.by_tuple.remove(&key);
            }
        }
    }

    /// Close every tunnel socket.
    pub(super) fn clear(&mut self) {
        self.hosted.clear();
        self.by_tunnel.clear();
        self.by_tuple.clear();
    }
}

use l2tp_proto::event::Transmit;

use super::Daemon;

impl Daemon {
    /// The local address of `tunnel`'s socket: its `our_addr` or the
    /// listening address, on its `our_udp_port` or the listening port (0:
    /// an ephemeral port of its own).
    fn tunnel_local_addr(&self, tunnel: TunnelId) -> SocketAddr {
        let ip = self.reg.tunnel(tunnel).and_then(|c| c.local_addr);
        let port = self.ep.tunnel(tunnel).and_then(|t| t.config.local_port);
        SocketAddr::new(
            ip.unwrap_or(self.local.ip()),
            port.unwrap_or(self.local.port()),
        )
    }

    /// The socket of `tunnel` to `peer`, opened from the tunnel's local
    /// address (see [`Self::tunnel_local_addr`]) when it has none yet, or
    /// when a tunnel we dialled has moved to another port of its peer (the
    /// SCCRP came from there, RFC 2661 §8.1): the old socket is released and
    /// a new one connected to the new port.
    pub(super) fn tunnel_socket(
        &mut self,
        tunnel: TunnelId,
        peer: SocketAddr,
    ) -> std::io::Result<Arc<UdpSocket>> {
        match self.sockets.peer_of(tunnel) {
            Some(Some(old)) if old != peer => {
                tracing::debug!(tunnel_id = tunnel.0, %old, new = %peer, "the peer answered from another port: moving the tunnel's socket");
                self.sockets.release(tunnel);
            }
            // Connected to `peer`, or not connected yet (sends with send_to).
            Some(_) => {
                if let Some(s) = self.sockets.get(tunnel) {
                    return Ok(s);
                }
            }
            None => {}
        }
        let local = self.tunnel_local_addr(tunnel);
        let ep = &self.ep;
        let dial = ep.tunnel(tunnel).is_some_and(|t| t.initiator);
        let opened = self.sockets.open(tunnel, local, peer, dial, |id| {
            ep.tunnel(id).is_some_and(|t| t.is_open())
        });
        if let Err(e) = &opened
            && crate::fdlimit::is_exhaustion(e)
        {
            crate::fdlimit::report_exhaustion("opening a tunnel socket", e);
        }
        opened
    }

    /// Send a control message: from the tunnel's own socket, from a new one
    /// for a tunnel we dial, else (a half-open or refused tunnel of a peer)
    /// from the listening socket; but when a live tunnel already holds the
    /// peer's 5-tuple (a peer that restarted, or one that opens every
    /// tunnel from the same port, as xl2tpd does), the half-open tunnel
    /// gets its socket, on an ephemeral port, before its SCCRP: RFC 2661
    /// §8.1 lets the responder choose its port in the SCCRP, not later.
    /// The same for a tunnel whose `our_udp_port` is not the listening
    /// port. Such sockets are bounded by the half-open limits.
    ///
    /// With the null data plane no tunnel needs a socket of its own (there
    /// is no kernel tunnel to hand one to): a tunnel we dial on the
    /// listening port sends from the listening socket too, and tunnels
    /// share its 5-tuple, told apart by their tunnel ids as RFC 2661 §3.1
    /// allows.
    pub(super) fn transmit(&mut self, t: Transmit) {
        let dialed = !self.null_dp && self.ep.tunnel(t.tunnel).is_some_and(|x| x.initiator);
        // A peer's tunnel gets its socket before its SCCRP when its port is
        // not the listening port, or when a live tunnel holds its 5-tuple.
        let needs_own_port = || {
            let local = self.tunnel_local_addr(t.tunnel);
            let ep = &self.ep;
            local.port() != self.local.port()
                || self.sockets.tuple_taken(local, t.peer, |id| {
                    id != t.tunnel && ep.tunnel(id).is_some_and(|x| x.is_open())
                })
        };
        let own_socket = dialed
            || self.sockets.get(t.tunnel).is_some()
            || (self.ep.tunnel(t.tunnel).is_some() && needs_own_port());
        let socket = if own_socket {
            // A dialled tunnel's goes through `tunnel_socket`, which follows
            // the peer to the port its SCCRP came from.
            match self.tunnel_socket(t.tunnel, t.peer) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(tunnel_id = t.tunnel.0, peer = %t.peer, "cannot open tunnel socket: {e}");
                    return;
                }
            }
        } else {
            None
        };
        let connected = self.sockets.peer_of(t.tunnel).flatten().is_some();
        self.sockets
            .queue(socket, connected, t.tunnel, t.peer, t.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control message header (T, L, S set; RFC 2661 §3.1) to `tunnel`, or
    /// a data message header (T clear) when `control` is false.
    fn message(tunnel: u16, control: bool) -> Vec<u8> {
        let mut m = match control {
            true => vec![0xc8, 0x02, 0, 12],
            false => vec![0x00, 0x02],
        };
        m.extend_from_slice(&tunnel.to_be_bytes());
        m.extend_from_slice(&[0; 2]);
        if control {
            m.extend_from_slice(&[0; 4]);
        }
        m
    }

    #[test]
    fn the_listening_socket_queues_only_its_hosted_tunnels_control_messages_with_the_tunnels() {
        let (listen, _lrx) = mpsc::channel(1);
        let (tunnel, _trx) = mpsc::channel(1);
        let hosted = Arc::new(Hosted::new());
        let route = Route::Listen {
            listen,
            tunnel,
            hosted: hosted.clone(),
        };
        let to_listen = |data: &[u8]| route.pick(data).1;
        hosted.set(TunnelId(7), true);
        hosted.set(TunnelId(65_535), true);
        assert!(!to_listen(&message(7, true)));
        assert!(!to_listen(&message(65_535, true)));
        // SCCRQs (tunnel 0), unknown tunnels, data messages, junk.
        assert!(to_listen(&message(0, true)));
        assert!(to_listen(&message(8, true)));
        assert!(to_listen(&message(7, false)));
        assert!(to_listen(&[0xc8]));
        hosted.set(TunnelId(7), false);
        assert!(to_listen(&message(7, true)));
        assert!(!to_listen(&message(65_535, true)));
        hosted.clear();
        assert!(to_listen(&message(65_535, true)));
    }
}
