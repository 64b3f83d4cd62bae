//! Links over rtnetlink (async, tokio): which `pppN` came up, with which addresses.
//!
//! * [`LinkWatcher`] waits for links by name using rtnetlink *notifications*
//!   (`RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`): one multicast socket
//!   and one query socket shared by every waiter, one `RTM_GETLINK` (+ `RTM_GETADDR`)
//!   per waiter, no polling. This is what a daemon waiting for many links uses.
//! * [`link_addresses`], [`list_ppp_links`] and [`wait_for_link`] are one-off helpers:
//!   each opens its own rtnetlink connection(s) for the call.
//!
//! Everything here must run inside a tokio runtime.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::error::Error;
use crate::uapi;

/// An interface address: (local address, prefix length in bits, point-to-point peer).
///
/// For a PPP link with IPv4 the kernel reports the local address in `IFA_LOCAL` and the
/// peer in `IFA_ADDRESS`; here that becomes `(local, 32, Some(peer))`. Addresses
/// without a distinct peer have `None`.
pub type LinkAddr = (IpAddr, u8, Option<IpAddr>);

/// A network interface as reported by `RTM_GETLINK` plus its addresses
/// (`RTM_GETADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index (`ifi_index`).
    pub index: u32,
    /// Interface name (`IFLA_IFNAME`), e.g. `ppp0`.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Lower layer up (`IFF_LOWER_UP`); for PPP set once the unit is connected.
    pub lower_up: bool,
    /// Link type (`ifi_type`, `ARPHRD_*`): 512 = `ARPHRD_PPP`.
    pub link_type: u16,
    /// MTU in bytes (`IFLA_MTU`), 0 if not reported.
    pub mtu: u32,
    /// Addresses, IPv4 first in kernel order.
    pub addrs: Vec<LinkAddr>,
}

fn rt_error(op: &str, e: rtnetlink::Error) -> Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => Error::io(op, m.to_io()),
        other => Error::protocol(op, other.to_string()),
    }
}

fn connect() -> Result<Handle, Error> {
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| Error::io("socket(AF_NETLINK, NETLINK_ROUTE)", e))?;
    tokio::spawn(conn);
    Ok(handle)
}

fn addr_of(msg: &AddressMessage) -> Option<LinkAddr> {
    let mut address = None;
    let mut local = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            _ => {}
        }
    }
    let prefix = msg.header.prefix_len;
    match (local, address) {
        (Some(l), Some(a)) if l != a => Some((l, prefix, Some(a))),
        (Some(l), _) => Some((l, prefix, None)),
        (None, Some(a)) => Some((a, prefix, None)),
        (None, None) => None,
    }
}

async fn addresses_of(handle: &Handle, index: u32, op: &str) -> Result<Vec<LinkAddr>, Error> {
    let mut req = handle.address().get().set_link_index_filter(index);
    // With NETLINK_GET_STRICT_CHK (the watcher's query socket) the kernel filters the
    // dump by ifa_index itself; elsewhere it is ignored and the filter above applies.
    req.message_mut().header.index = index;
    let mut out: Vec<LinkAddr> = req
        .execute()
        .try_filter_map(|m| futures::future::ready(Ok(addr_of(&m))))
        .try_collect()
        .await
        .map_err(|e| rt_error(op, e))?;
    out.sort_by_key(|(ip, _, _)| ip.is_ipv6());
    Ok(out)
}

fn info_of(msg: &LinkMessage) -> LinkInfo {
    let mut name = String::new();
    let mut mtu = 0;
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Mtu(m) => mtu = *m,
            _ => {}
        }
    }
    LinkInfo {
        index: msg.header.index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up),
        lower_up: msg.header.flags.contains(LinkFlags::LowerUp),
        link_type: u16::from(msg.header.link_layer_type),
        mtu,
        addrs: Vec::new(),
    }
}

/// `RTM_GETLINK` by name, without addresses; `Ok(None)` if there is no such link.
async fn get_link_only(handle: &Handle, ifname: &str) -> Result<Option<LinkInfo>, Error> {
    let op = format!("RTM_GETLINK {ifname}");
    let mut s = handle.link().get().match_name(ifname).execute();
    match s.try_next().await {
        Ok(Some(msg)) => Ok(Some(info_of(&msg))),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m))
            if matches!(m.to_io().raw_os_error(), Some(libc::ENODEV)) =>
        {
            Ok(None)
        }
        Err(e) => Err(rt_error(&op, e)),
    }
}

/// `RTM_GETLINK` by name plus its addresses; `Ok(None)` if there is no such link.
async fn get_link(handle: &Handle, ifname: &str) -> Result<Option<LinkInfo>, Error> {
    let Some(mut info) = get_link_only(handle, ifname).await? else {
        return Ok(None);
    };
    info.addrs = addresses_of(handle, info.index, &format!("RTM_GETADDR {ifname}")).await?;
    Ok(Some(info))
}

/// The addresses of interface `ifname` (`RTM_GETADDR` filtered by its index).
/// A missing interface is [`Error::Kernel`] with `ENODEV`.
pub async fn link_addresses(ifname: &str) -> Result<Vec<LinkAddr>, Error> {
    let handle = connect()?;
    match get_link(&handle, ifname).await? {
        Some(info) => Ok(info.addrs),
        None => Err(Error::kernel(format!("RTM_GETLINK {ifname}"), libc::ENODEV)),
    }
}

/// One-off [`LinkWatcher::wait_up`]: opens a [`LinkWatcher`] for this one wait and
/// closes it afterwards. To wait for many links, share one [`LinkWatcher`] instead.
///
/// Returns once `ifname` exists, is administratively up (`IFF_UP`) and has an IPv4
/// address, or [`IPV4_GRACE`] after it went up without one. Expiry of `timeout` before
/// the link is up is [`Error::Timeout`].
pub async fn wait_for_link(ifname: &str, timeout: Duration) -> Result<LinkInfo, Error> {
    LinkWatcher::new()?.wait_up(ifname, timeout).await
}

/// How long [`LinkWatcher::wait_up`] waits, once the link is up, for an IPv4 address
/// to appear before returning with the addresses it has (5 s). pppd normally adds the
/// addresses before it sets `pppN` up, but with IPv6CP finishing first the link can be
/// up before IPCP has assigned its address.
pub const IPV4_GRACE: Duration = Duration::from_secs(5);

/// Receive buffer asked for the notification socket (bytes; the kernel caps it at
/// `net.core.rmem_max` unless we may use `SO_RCVBUFFORCE`). A few hundred PPP links
/// coming up at once produce a few thousand notifications of up to ~2 KiB.
const NOTIFY_RCVBUF: libc::c_int = 4 << 20;

/// `IFNAMSIZ` including the terminating NUL.
const IFNAMSIZ: usize = 16;

/// What the dispatcher tells a waiter. Address updates carry the interface index so
/// that a waiter ignores those of a link it no longer considers current.
#[derive(Debug)]
enum Update {
    /// `RTM_NEWLINK` (without addresses).
    Link(LinkInfo),
    /// `RTM_DELLINK` of the link with this index.
    Gone(u32),
    /// `RTM_NEWADDR` on the link with this index.
    NewAddr(u32, LinkAddr),
    /// `RTM_DELADDR` on the link with this index.
    DelAddr(u32, LinkAddr),
    /// Notifications were lost (`ENOBUFS`): query the link again.
    Resync,
}

type WaiterTx = mpsc::UnboundedSender<Update>;

/// The waiters of one interface name.
#[derive(Default)]
struct Watched {
    /// The link's index once known (from a notification or a waiter's query).
    index: Option<u32>,
    waiters: Vec<(u64, WaiterTx)>,
}

/// Who waits for what. Lookups per notification are O(1): by name for link messages,
/// by index for address messages (which carry no name for IPv6).
#[derive(Default)]
struct Registry {
    /// False once the notification socket or the query socket is gone.
    alive: bool,
    next_id: u64,
    by_name: HashMap<String, Watched>,
    by_index: HashMap<u32, String>,
}

impl Registry {
    fn set_index(&mut self, name: &str, index: u32) {
        let Some(w) = self.by_name.get_mut(name) else {
            return;
        };
        if let Some(old) = w.index.replace(index)
            && old != index
            && self.by_index.get(&old).is_some_and(|n| n == name)
        {
            self.by_index.remove(&old);
        }
        self.by_index.insert(index, name.to_owned());
    }

    fn send(&self, name: &str, make: impl Fn() -> Update) {
        if let Some(w) = self.by_name.get(name) {
            for (_, tx) in &w.waiters {
                let _ = tx.send(make());
            }
        }
    }

    fn addr(&self, m: &AddressMessage, make: fn(u32, LinkAddr) -> Update) {
        let index = m.header.index;
        if let Some(name) = self.by_index.get(&index)
            && let Some(a) = addr_of(m)
        {
            self.send(name, || make(index, a));
        }
    }

    /// Every waiter queries again (after lost notifications). Rare: scans all names.
    fn resync(&self) {
        for w in self.by_name.values() {
            for (_, tx) in &w.waiters {
                let _ = tx.send(Update::Resync);
            }
        }
    }

    fn handle(&mut self, msg: RouteNetlinkMessage) {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                let info = info_of(&m);
                if self.by_name.contains_key(&info.name) {
                    self.set_index(&info.name, info.index);
                    self.send(&info.name, || Update::Link(info.clone()));
                } else if let Some(old) = self.by_index.remove(&info.index) {
                    // Renamed away from a watched name.
                    if let Some(w) = self.by_name.get_mut(&old) {
                        w.index = None;
                    }
                    self.send(&old, || Update::Gone(info.index));
                }
            }
            RouteNetlinkMessage::DelLink(m) => {
                let index = m.header.index;
                if let Some(name) = self.by_index.remove(&index) {
                    if let Some(w) = self.by_name.get_mut(&name) {
                        w.index = None;
                    }
                    self.send(&name, || Update::Gone(index));
                }
            }
            RouteNetlinkMessage::NewAddress(m) => self.addr(&m, Update::NewAddr),
            RouteNetlinkMessage::DelAddress(m) => self.addr(&m, Update::DelAddr),
            _ => {}
        }
    }
}

#[derive(Default)]
struct Counters {
    queries: AtomicU64,
    notifications: AtomicU64,
    overruns: AtomicU64,
}

/// State shared by the watcher, its tasks and its waiters.
#[derive(Default)]
struct Shared {
    registry: Mutex<Registry>,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks the watcher dead when a task of it ends (socket error, runtime shut down):
/// dropping every waiter's sender wakes the waiters with an error.
struct MarkDeadOnDrop(Arc<Shared>);

impl Drop for MarkDeadOnDrop {
    fn drop(&mut self) {
        let mut reg = self.0.lock();
        reg.alive = false;
        reg.by_name.clear();
        reg.by_index.clear();
    }
}

/// Removes a waiter from the registry when its wait ends (returned, timed out or
/// cancelled).
struct Unregister {
    shared: Arc<Shared>,
    name: String,
    id: u64,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        let mut reg = self.shared.lock();
        let Some(w) = reg.by_name.get_mut(&self.name) else {
            return;
        };
        w.waiters.retain(|(id, _)| *id != self.id);
        if w.waiters.is_empty() {
            let index = w.index;
            reg.by_name.remove(&self.name);
            if let Some(i) = index
                && reg.by_index.get(&i).is_some_and(|n| *n == self.name)
            {
                reg.by_index.remove(&i);
            }
        }
    }
}

/// Counters of a [`LinkWatcher`], for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkWatcherStats {
    /// Waits in progress ([`LinkWatcher::wait_up`] calls not yet returned).
    pub waiters: usize,
    /// Distinct interface names waited for.
    pub names: usize,
    /// `RTM_GETLINK` queries sent: one per wait, plus one per wait after each overrun.
    pub queries: u64,
    /// Notifications received (all links, also those nobody waits for).
    pub notifications: u64,
    /// Overruns of the notification socket (`ENOBUFS`: notifications were lost and
    /// every waiter queried again).
    pub overruns: u64,
}

struct Inner {
    shared: Arc<Shared>,
    /// The query connection (`NETLINK_GET_STRICT_CHK`, no multicast groups).
    query: Handle,
    /// Serialises the address dumps on `query`: the kernel runs one dump per socket
    /// at a time and fails a second one with `EBUSY`.
    dump_lock: tokio::sync::Mutex<()>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Waits for network interfaces by name using rtnetlink notifications instead of
/// polling.
///
/// One watcher owns two `NETLINK_ROUTE` sockets: one bound to the multicast groups
/// `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR`, read by a single
/// task that hands each notification to the waiters of that interface (a hash lookup
/// by name or index, independent of the number of waiters), and one for queries.
/// Each [`wait_up`](Self::wait_up) registers first and then queries the link once
/// (`RTM_GETLINK` + `RTM_GETADDR`), so a link that came up before the call is found
/// as well as one that comes up later; after that it only consumes notifications.
/// Queries and notifications are kept on separate sockets so that a notification can
/// never be mistaken for a reply.
///
/// Cheap to clone (all clones share the sockets). The sockets and tasks live on the
/// tokio runtime that was current in [`LinkWatcher::new`] and are closed when the last
/// clone is dropped or that runtime shuts down ([`is_alive`](Self::is_alive) then
/// turns false).
#[derive(Clone)]
pub struct LinkWatcher {
    inner: Arc<Inner>,
}

impl fmt::Debug for LinkWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkWatcher")
            .field("alive", &self.is_alive())
            .field("stats", &self.stats())
            .finish()
    }
}

async fn keep_alive<F: std::future::Future<Output = ()>>(shared: Arc<Shared>, task: F) {
    let _dead = MarkDeadOnDrop(shared);
    task.await;
}

async fn dispatch<S>(shared: Arc<Shared>, mut messages: S)
where
    S: futures::Stream<
            Item = (
                NetlinkMessage<RouteNetlinkMessage>,
                rtnetlink::sys::SocketAddr,
            ),
        > + Unpin,
{
    let _dead = MarkDeadOnDrop(shared.clone());
    while let Some((msg, _)) = messages.next().await {
        shared
            .counters
            .notifications
            .fetch_add(1, Ordering::Relaxed);
        match msg.payload {
            NetlinkPayload::InnerMessage(m) => {
                let mut reg = shared.lock();
                if !reg.by_name.is_empty() {
                    reg.handle(m);
                }
            }
            NetlinkPayload::Overrun(_) => {
                shared.counters.overruns.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("rtnetlink notifications lost (socket buffer full): querying again");
                shared.lock().resync();
            }
            _ => {}
        }
    }
    tracing::warn!("rtnetlink notification socket closed");
}

/// Enlarges the receive buffer of the notification socket (best effort).
fn enlarge_rcvbuf(fd: libc::c_int) {
    let size = NOTIFY_RCVBUF;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `fd` is an open socket; the option value is a c_int of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

/// Whether two addresses of one link are the same kernel address: IPv6 by the local
/// address, IPv4 by local address, prefix length and peer.
fn same_addr(x: &LinkAddr, y: &LinkAddr) -> bool {
    match (x.0, y.0) {
        (IpAddr::V6(a), IpAddr::V6(b)) => a == b,
        _ => x == y,
    }
}

/// A waiter's view of its link, built from one query and the notifications after it.
#[derive(Default)]
struct View {
    link: Option<LinkInfo>,
    addrs: Vec<LinkAddr>,
}

impl View {
    /// Replace everything by a query's result.
    fn reset(&mut self, snapshot: Option<LinkInfo>) {
        match snapshot {
            Some(mut info) => {
                self.addrs = std::mem::take(&mut info.addrs);
                self.link = Some(info);
            }
            None => {
                self.link = None;
                self.addrs.clear();
            }
        }
    }

    fn is_current(&self, index: u32) -> bool {
        self.link.as_ref().is_some_and(|l| l.index == index)
    }

    /// Applies a notification. Notifications queued before the query's answer are
    /// replayed on top of it; as they come in kernel order the view ends up current.
    fn apply(&mut self, u: Update) {
        match u {
            Update::Link(info) => {
                if self.link.as_ref().is_some_and(|l| l.index != info.index) {
                    self.addrs.clear();
                }
                self.link = Some(info);
            }
            Update::Gone(index) => {
                if self.is_current(index) {
                    self.link = None;
                    self.addrs.clear();
                }
            }
            Update::NewAddr(index, a) => {
                if self.is_current(index) {
                    // An IPv6 address is identified by its local address alone: an
                    // RTM_NEWADDR for it (e.g. pppd setting the peer) replaces it. An
                    // IPv4 one changes only by RTM_DELADDR + RTM_NEWADDR.
                    self.addrs.retain(|x| !same_addr(x, &a));
                    self.addrs.push(a);
                }
            }
            Update::DelAddr(index, a) => {
                if self.is_current(index) {
                    self.addrs.retain(|x| !same_addr(x, &a));
                }
            }
            Update::Resync => {}
        }
    }

    fn is_up(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.up)
    }

    fn has_ipv4(&self) -> bool {
        self.addrs.iter().any(|(ip, _, _)| ip.is_ipv4())
    }

    fn result(&self) -> Option<LinkInfo> {
        let mut info = self.link.clone()?;
        info.addrs = self.addrs.clone();
        info.addrs.sort_by_key(|(ip, _, _)| ip.is_ipv6());
        Some(info)
    }
}

impl LinkWatcher {
    /// Opens the notification and query sockets and starts the dispatching task on the
    /// current tokio runtime.
    ///
    /// Errors: [`Error::InvalidArgument`] outside a tokio runtime; [`Error::Kernel`] if
    /// a `NETLINK_ROUTE` socket cannot be created or bound to the multicast groups
    /// (unprivileged processes may subscribe to these groups).
    pub fn new() -> Result<Self, Error> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgument("LinkWatcher::new outside a tokio runtime".into())
        })?;
        let (mut notify_conn, _, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(|e| {
            Error::io(
                "bind(NETLINK_ROUTE, RTNLGRP_LINK|RTNLGRP_IPV4_IFADDR|RTNLGRP_IPV6_IFADDR)",
                e,
            )
        })?;
        enlarge_rcvbuf(notify_conn.socket_mut().socket_mut().as_raw_fd());
        let (query_conn, query, _) = rtnetlink::new_connection_with_strict_check()
            .map_err(|e| Error::io("socket(AF_NETLINK, NETLINK_ROUTE)", e))?;
        let shared = Arc::new(Shared::default());
        shared.lock().alive = true;
        let tasks = vec![
            rt.spawn(keep_alive(shared.clone(), notify_conn))
                .abort_handle(),
            rt.spawn(keep_alive(shared.clone(), query_conn))
                .abort_handle(),
            rt.spawn(dispatch(shared.clone(), messages)).abort_handle(),
        ];
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                query,
                dump_lock: tokio::sync::Mutex::new(()),
                tasks,
            }),
        })
    }

    /// False once a socket of the watcher failed or its runtime shut down; every wait
    /// then fails at once. Create a new watcher in that case.
    pub fn is_alive(&self) -> bool {
        self.inner.shared.lock().alive
    }

    /// Current counters.
    pub fn stats(&self) -> LinkWatcherStats {
        let (waiters, names) = {
            let reg = self.inner.shared.lock();
            (
                reg.by_name.values().map(|w| w.waiters.len()).sum(),
                reg.by_name.len(),
            )
        };
        let c = &self.inner.shared.counters;
        LinkWatcherStats {
            waiters,
            names,
            queries: c.queries.load(Ordering::Relaxed),
            notifications: c.notifications.load(Ordering::Relaxed),
            overruns: c.overruns.load(Ordering::Relaxed),
        }
    }

    /// Waits until interface `ifname` exists and is administratively up (`IFF_UP`) and
    /// returns it with its addresses (IPv4 first).
    ///
    /// Once the link is up the wait continues until it has an IPv4 address, for at most
    /// [`IPV4_GRACE`]; it then returns with the addresses it has (maybe none, maybe
    /// only IPv6). `timeout` bounds the wait for the link to be up (the grace may add
    /// up to [`IPV4_GRACE`] to it). The link may exist already, or be created later.
    ///
    /// Costs one `RTM_GETLINK` (+ `RTM_GETADDR` if the link exists) at the start;
    /// afterwards it only consumes notifications (plus one query after each overrun of
    /// the notification socket). Cancel-safe: dropping the future unregisters the wait.
    ///
    /// Errors:
    /// * [`Error::Timeout`] if the link is not up within `timeout`;
    /// * [`Error::InvalidArgument`] if `ifname` is empty or longer than 15 bytes;
    /// * [`Error::Kernel`] / [`Error::Protocol`] if the query fails, or if the watcher
    ///   is dead or dies meanwhile (see [`is_alive`](Self::is_alive)).
    pub async fn wait_up(&self, ifname: &str, timeout: Duration) -> Result<LinkInfo, Error> {
        if ifname.is_empty() || ifname.len() >= IFNAMSIZ || ifname.contains(['/', '\0']) {
            return Err(Error::InvalidArgument(format!(
                "interface name {ifname:?} (1 to 15 bytes, no '/')"
            )));
        }
        let deadline = Instant::now() + timeout;
        let timed_out = || Error::Timeout {
            op: format!("waiting for link {ifname} to be up"),
            after: timeout,
        };
        // Register before querying: whatever happens after the query's snapshot arrives
        // as a notification.
        let (mut rx, _unregister) = self.register(ifname)?;
        let mut view = View::default();
        match tokio::time::timeout_at(deadline, self.query(ifname)).await {
            Ok(snapshot) => view.reset(snapshot?),
            Err(_) => return Err(timed_out()),
        }
        let mut up_since: Option<Instant> = None;
        loop {
            // Apply everything already queued before judging the state, so that a
            // batch of replayed notifications counts only by its end result.
            loop {
                match rx.try_recv() {
                    Ok(Update::Resync) => view.reset(self.query_bounded(ifname).await?),
                    Ok(u) => view.apply(u),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        return Err(Self::dead(ifname));
                    }
                }
            }
            let wake = if view.is_up() {
                let since = *up_since.get_or_insert_with(Instant::now);
                if view.has_ipv4() || since.elapsed() >= IPV4_GRACE {
                    // is_up() implies a link.
                    return view.result().ok_or_else(timed_out);
                }
                since + IPV4_GRACE
            } else {
                up_since = None;
                deadline
            };
            tokio::select! {
                u = rx.recv() => match u {
                    Some(Update::Resync) => view.reset(self.query_bounded(ifname).await?),
                    Some(u) => view.apply(u),
                    None => return Err(Self::dead(ifname)),
                },
                _ = tokio::time::sleep_until(wake) => {
                    if !view.is_up() {
                        return Err(timed_out());
                    }
                }
            }
        }
    }

    fn dead(ifname: &str) -> Error {
        Error::protocol(
            format!("waiting for link {ifname}"),
            "the rtnetlink notification socket closed",
        )
    }

    fn register(
        &self,
        ifname: &str,
    ) -> Result<(mpsc::UnboundedReceiver<Update>, Unregister), Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut reg = self.inner.shared.lock();
        if !reg.alive {
            return Err(Self::dead(ifname));
        }
        let id = reg.next_id;
        reg.next_id += 1;
        reg.by_name
            .entry(ifname.to_owned())
            .or_default()
            .waiters
            .push((id, tx));
        let guard = Unregister {
            shared: self.inner.shared.clone(),
            name: ifname.to_owned(),
            id,
        };
        Ok((rx, guard))
    }

    /// One `RTM_GETLINK` (+ `RTM_GETADDR`) for a registered name. The index is recorded
    /// before the addresses are read, so that every address change after that read
    /// reaches the waiter as a notification. Address dumps of concurrent waits run one
    /// after the other (each is one message long: the kernel filters by index).
    async fn query(&self, ifname: &str) -> Result<Option<LinkInfo>, Error> {
        self.inner
            .shared
            .counters
            .queries
            .fetch_add(1, Ordering::Relaxed);
        let handle = &self.inner.query;
        let Some(mut info) = get_link_only(handle, ifname).await? else {
            return Ok(None);
        };
        self.inner.shared.lock().set_index(ifname, info.index);
        let op = format!("RTM_GETADDR {ifname}");
        let _dump = self.inner.dump_lock.lock().await;
        // A dump abandoned by a cancelled wait may still be finishing in the kernel.
        let mut busy = 0;
        info.addrs = loop {
            match addresses_of(handle, info.index, &op).await {
                Err(e) if e.errno() == Some(libc::EBUSY) && busy < 50 => busy += 1,
                r => break r?,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        Ok(Some(info))
    }

    /// [`Self::query`] bounded by 5 s (after an overrun).
    async fn query_bounded(&self, ifname: &str) -> Result<Option<LinkInfo>, Error> {
        let limit = Duration::from_secs(5);
        tokio::time::timeout(limit, self.query(ifname))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    op: format!("RTM_GETLINK {ifname}"),
                    after: limit,
                })
            })
    }
}

/// All links of type PPP (`ARPHRD_PPP` = 512), with their addresses, in index order.
pub async fn list_ppp_links() -> Result<Vec<LinkInfo>, Error> {
    let handle = connect()?;
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| rt_error("RTM_GETLINK (dump)", e))?;
    let mut out = Vec::new();
    for msg in &links {
        let mut info = info_of(msg);
        if info.link_type != uapi::ARPHRD_PPP {
            continue;
        }
        info.addrs =
            addresses_of(&handle, info.index, &format!("RTM_GETADDR {}", info.name)).await?;
        out.push(info);
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn loopback_addresses() {
        let addrs = link_addresses("lo").await.unwrap();
        assert!(
            addrs.contains(&(IpAddr::V4(Ipv4Addr::LOCALHOST), 8, None)),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn missing_link() {
        let e = link_addresses("nosuchlink0").await.unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
        let e = wait_for_link("nosuchlink0", Duration::from_millis(250))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
    }

    #[tokio::test]
    async fn lo_is_up_and_not_ppp() {
        let lo = wait_for_link("lo", Duration::from_secs(1)).await.unwrap();
        assert_eq!(lo.name, "lo");
        assert!(lo.up);
        assert_eq!(lo.link_type, 772); // ARPHRD_LOOPBACK
        // This host has no PPP; in a VM with pppd running there may be some.
        let ppp = list_ppp_links().await.unwrap();
        assert!(ppp.iter().all(|l| l.link_type == uapi::ARPHRD_PPP));
    }

    #[tokio::test]
    async fn watcher_finds_existing_link_with_one_query() {
        let w = LinkWatcher::new().unwrap();
        let lo = w.wait_up("lo", Duration::from_secs(5)).await.unwrap();
        assert!(lo.up);
        assert_eq!(lo.addrs[0], (IpAddr::V4(Ipv4Addr::LOCALHOST), 8, None));
        let s = w.stats();
        assert_eq!((s.queries, s.waiters, s.names), (1, 0, 0), "{s:?}");
        // A cancelled wait unregisters.
        let r = tokio::time::timeout(
            Duration::from_millis(50),
            w.wait_up("nosuchlink0", Duration::from_secs(10)),
        )
        .await;
        assert!(r.is_err());
        let s = w.stats();
        assert_eq!((s.queries, s.waiters, s.names), (2, 0, 0), "{s:?}");
        assert!(w.is_alive());
    }

    #[tokio::test]
    async fn watcher_rejects_bad_names() {
        let w = LinkWatcher::new().unwrap();
        for name in ["", "sixteen-bytes-xx", "a/b"] {
            let e = w.wait_up(name, Duration::from_secs(1)).await.unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{name:?}: {e}");
        }
        assert_eq!(w.stats().queries, 0);
    }

    #[test]
    fn watcher_outside_runtime_is_an_error() {
        let e = LinkWatcher::new().unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn view_replays_notifications_over_a_snapshot() {
        let a: LinkAddr = ("192.0.2.1".parse().unwrap(), 24, None);
        let b: LinkAddr = ("192.0.2.2".parse().unwrap(), 24, None);
        let link = |index, up| LinkInfo {
            index,
            name: "ppp0".into(),
            up,
            lower_up: up,
            link_type: uapi::ARPHRD_PPP,
            mtu: 1400,
            addrs: Vec::new(),
        };
        let mut v = View::default();
        v.reset(Some(LinkInfo {
            addrs: vec![a],
            ..link(7, true)
        }));
        // Queued notifications, some older than the snapshot: the end result counts.
        v.apply(Update::Link(link(7, false)));
        v.apply(Update::NewAddr(7, a));
        v.apply(Update::Link(link(7, true)));
        v.apply(Update::DelAddr(7, a));
        v.apply(Update::NewAddr(7, b));
        v.apply(Update::NewAddr(9, a)); // another link's index: ignored
        assert!(v.is_up() && v.has_ipv4());
        assert_eq!(v.result().unwrap().addrs, vec![b]);
        // IPv6: a new peer replaces the address, a deletion removes it whatever its peer.
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let peer: IpAddr = "fe80::2".parse().unwrap();
        v.apply(Update::NewAddr(7, (ll, 128, None)));
        v.apply(Update::NewAddr(7, (ll, 128, Some(peer))));
        assert_eq!(v.result().unwrap().addrs, vec![b, (ll, 128, Some(peer))]);
        v.apply(Update::DelAddr(7, (ll, 128, None)));
        assert_eq!(v.result().unwrap().addrs, vec![b]);
        // The link is deleted and a new one with the same name appears.
        v.apply(Update::Gone(7));
        assert!(!v.is_up() && v.result().is_none());
        v.apply(Update::Link(link(8, true)));
        assert!(v.is_up() && !v.has_ipv4());
    }

    /// Runs `body` on a new thread moved into a new, empty network namespace (with a
    /// current-thread runtime), so that links can be created without touching the
    /// host's. Returns false (after a note) if that is impossible (not root).
    fn in_new_netns<F, Fut>(test: &str, body: F) -> bool
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("{test}: skipped: needs root to create a network namespace");
            return false;
        }
        let test = test.to_owned();
        let r = std::thread::spawn(move || {
            let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
            // SAFETY: plain syscall; CLONE_NEWNET moves only the calling thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                let e = std::io::Error::last_os_error();
                eprintln!("{test}: skipped: unshare(CLONE_NEWNET): {e}");
                return false;
            }
            let after = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
            let host = std::fs::read_link("/proc/self/ns/net").unwrap();
            assert_ne!(before, after, "not in a new network namespace");
            assert_ne!(host, after, "not in a new network namespace");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(body());
            true
        })
        .join();
        match r {
            Ok(ran) => ran,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Creates link `name` (dummy, or a veth pair `name`/`{name}p` where the kernel
    /// has no dummy driver), down and without addresses; returns its index.
    async fn add_link(h: &Handle, name: &str) -> u32 {
        let dummy = h
            .link()
            .add(rtnetlink::LinkDummy::new(name).build())
            .execute()
            .await;
        if dummy.is_err() {
            h.link()
                .add(rtnetlink::LinkVeth::new(name, &format!("{name}p")).build())
                .execute()
                .await
                .expect("neither a dummy nor a veth link can be created");
        }
        get_link_only(h, name).await.unwrap().unwrap().index
    }

    async fn set_up(h: &Handle, index: u32) {
        h.link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .unwrap();
    }

    /// Waits (bounded) until the watcher's own counters satisfy `cond`.
    async fn until(w: &LinkWatcher, what: &str, cond: impl Fn(&LinkWatcherStats) -> bool) {
        let start = Instant::now();
        while !cond(&w.stats()) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{what}: {:?}",
                w.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The watcher learns of links created *after* its waits started from rtnetlink
    /// notifications alone: each wait makes exactly one query (before the link exists)
    /// and none afterwards, however long it waits, yet returns within milliseconds of
    /// the address being added. Only in a private network namespace, with RFC 5737
    /// addresses.
    #[test]
    fn watcher_is_driven_by_notifications() {
        in_new_netns("watcher_is_driven_by_notifications", || async {
            let (conn, h, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(conn);
            let names: Vec<String> = h
                .link()
                .get()
                .execute()
                .map_ok(|m| info_of(&m).name)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(names, ["lo"], "not a fresh namespace");

            let w = LinkWatcher::new().unwrap();
            let w1 = w.clone();
            let first =
                tokio::spawn(async move { w1.wait_up("l2tpw0", Duration::from_secs(20)).await });
            let w2 = w.clone();
            let never = tokio::spawn(async move {
                let start = Instant::now();
                let r = w2.wait_up("l2tpnever0", Duration::from_millis(800)).await;
                (r, start.elapsed())
            });
            until(&w, "two waits registered and queried", |s| {
                s.waiters == 2 && s.queries == 2
            })
            .await;
            // Far longer than any polling interval (the old code polled every 100 ms).
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(w.stats().queries, 2, "a wait queried again");

            let index = add_link(&h, "l2tpw0").await;
            set_up(&h, index).await;
            // Up without IPv4: the wait holds on (grace) for the address.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!first.is_finished(), "returned before the IPv4 address");
            let added = Instant::now();
            h.address()
                .add(index, "192.0.2.1".parse().unwrap(), 24)
                .execute()
                .await
                .unwrap();
            let info = tokio::time::timeout(Duration::from_secs(2), first)
                .await
                .expect("not woken within 2 s of the address")
                .unwrap()
                .unwrap();
            eprintln!("woken {:?} after the address was added", added.elapsed());
            assert_eq!(
                (info.name.as_str(), info.index, info.up),
                ("l2tpw0", index, true)
            );
            assert_eq!(info.addrs[0], ("192.0.2.1".parse().unwrap(), 24, None));
            let s = w.stats();
            assert_eq!(
                s.queries, 2,
                "learned by a query, not a notification: {s:?}"
            );
            assert!(s.notifications >= 3, "{s:?}");

            let (r, waited) = never.await.unwrap();
            let e = r.unwrap_err();
            assert!(matches!(e, Error::Timeout { .. }), "{e}");
            assert!(e.to_string().contains("l2tpnever0"), "{e}");
            assert!(waited >= Duration::from_millis(800), "{waited:?}");
            assert!(waited < Duration::from_secs(3), "{waited:?}");
            let s = w.stats();
            assert_eq!((s.waiters, s.names), (0, 0), "{s:?}");

            // A link that is up already is found by the wait's one query.
            let start = Instant::now();
            let again = w.wait_up("l2tpw0", Duration::from_secs(5)).await.unwrap();
            assert!(start.elapsed() < Duration::from_secs(1));
            assert_eq!(again.addrs[0], info.addrs[0]);
            assert_eq!(w.stats().queries, 3);

            // Many waits, then many links: one query each, all woken by notifications.
            let n = 20u8;
            let waits: Vec<_> = (0..n)
                .map(|i| {
                    let w = w.clone();
                    tokio::spawn(async move {
                        w.wait_up(&format!("l2tpm{i}"), Duration::from_secs(20))
                            .await
                    })
                })
                .collect();
            until(&w, "all waits registered and queried", |s| {
                s.waiters == usize::from(n) && s.queries == 3 + u64::from(n)
            })
            .await;
            let start = Instant::now();
            for i in 0..n {
                let index = add_link(&h, &format!("l2tpm{i}")).await;
                let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + i));
                h.address().add(index, ip, 32).execute().await.unwrap();
                set_up(&h, index).await;
            }
            for (i, wait) in (0..n).zip(waits) {
                let info = tokio::time::timeout(Duration::from_secs(2), wait)
                    .await
                    .expect("a wait was not woken")
                    .unwrap()
                    .unwrap();
                let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + i));
                assert_eq!(info.addrs[0], (ip, 32, None));
            }
            eprintln!(
                "{n} links created and all waits done in {:?}",
                start.elapsed()
            );
            let s = w.stats();
            assert_eq!(s.queries, 3 + u64::from(n), "{s:?}");
            assert_eq!((s.waiters, s.names, s.overruns), (0, 0, 0), "{s:?}");

            // Many waits at once for links that exist: their queries share one socket
            // (whose address dumps must not overlap: EBUSY).
            let waits: Vec<_> = (0..n)
                .map(|i| {
                    let w = w.clone();
                    tokio::spawn(async move {
                        w.wait_up(&format!("l2tpm{i}"), Duration::from_secs(5))
                            .await
                    })
                })
                .collect();
            for (i, wait) in (0..n).zip(waits) {
                let info = wait.await.unwrap().unwrap();
                let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + i));
                assert_eq!(info.addrs[0], (ip, 32, None));
            }
            assert_eq!(w.stats().queries, 3 + 2 * u64::from(n));
        });
    }

    #[test]
    fn ptp_address_mapping() {
        use netlink_packet_route::address::AddressMessage;
        let mut m = AddressMessage::default();
        m.header.prefix_len = 32;
        let local: IpAddr = "198.51.100.1".parse().unwrap();
        let peer: IpAddr = "198.51.100.10".parse().unwrap();
        m.attributes.push(AddressAttribute::Address(peer));
        m.attributes.push(AddressAttribute::Local(local));
        assert_eq!(addr_of(&m), Some((local, 32, Some(peer))));
        let mut m2 = AddressMessage::default();
        m2.header.prefix_len = 8;
        m2.attributes.push(AddressAttribute::Address(local));
        m2.attributes.push(AddressAttribute::Local(local));
        assert_eq!(addr_of(&m2), Some((local, 8, None)));
    }
}
