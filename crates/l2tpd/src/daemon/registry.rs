//! The driver's one registry: every tunnel it knows, keyed by our Assigned
//! Tunnel ID (RFC 2661 §5.1), each owning its driver-side state and its
//! sessions, keyed by our Assigned Session ID; each session owns what the
//! driver keeps of its data plane (pppd, PPP interface, pool address, kernel
//! session, stop deadline).
//!
//! Names are an index into the registry, never an owner: tunnel names map to
//! the ids that carry them (a persistent tunnel re-dialled while its old
//! instance lingers, or several tunnels from one peer address, share a name),
//! and each tunnel maps the names of its live sessions to their ids.
//!
//! Lifetimes:
//! - a tunnel we set up gets its entry when it is opened; a peer's tunnel
//!   when it comes up (or when something needs it earlier, e.g. a call
//!   placed through the API). The entry goes when the core has freed the
//!   tunnel and nothing of its data plane is left: no session whose pppd is
//!   stopping, no kernel tunnel waiting to be deleted;
//! - a session entry goes when the core has reported it down and its data
//!   plane is gone (no kernel session, no pppd).
//!
//! Every operation here is O(1) or O(log n) in the number of tunnels and
//! sessions, except the iterators, which shutdown, reload and the API's
//! lists use.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use l2tp_config::{PppParams, SessionParams};
use l2tp_proto::wire::{SessionId, TunnelId};
use rustc_hash::FxHashMap;

use crate::pool::Range;

/// Session and PPP parameters of the calls a peer places in a tunnel,
/// shared by every tunnel that resolves to them (all incoming tunnels of a
/// peer profile, within one configuration) and by all their sessions.
#[derive(Debug)]
pub(super) struct CallDefaults {
    /// Session parameters (sequencing, reorder timeout).
    pub session: Arc<SessionParams>,
    /// PPP parameters (pppd options, addresses, pool).
    pub ppp: Arc<PppParams>,
}

/// What the driver keeps of one tunnel.
#[derive(Debug)]
pub(super) struct TunnelEntry {
    /// Configuration name (`[tunnel.NAME]`) or `incoming-<peer>`; shared with the name index.
    pub name: Arc<str>,
    /// We set it up (from a `[tunnel.NAME]` table of the files or the API), not the peer.
    pub local: bool,
    /// Re-establish it when it goes down (`persist = true`).
    pub persist: bool,
    /// Local address of its socket (`our_addr`); `None`: the listening address.
    pub local_addr: Option<IpAddr>,
    /// Parameters of calls the peer places in it.
    pub incoming: Option<Arc<CallDefaults>>,
    /// The core reported it down (it may still be closing or lingering).
    pub down: bool,
    /// The core freed it: only its data plane keeps the entry.
    freed: bool,
    /// The core asked for its kernel tunnel to be deleted; that waits until
    /// none of its sessions is stopping (pppd needs the tunnel to say goodbye).
    pub kernel_delete_pending: bool,
    /// How many of its sessions are stopping.
    stopping: usize,
    /// By our Assigned Session ID (drawn by us, so a non-keyed hasher is safe).
    sessions: FxHashMap<SessionId, SessionEntry>,
    /// Names of its live sessions (neither deleted nor down).
    session_names: HashMap<Arc<str>, SessionId>,
}

impl TunnelEntry {
    /// A new entry with no sessions.
    pub(super) fn new(
        name: &str,
        local: bool,
        persist: bool,
        local_addr: Option<IpAddr>,
        incoming: Option<Arc<CallDefaults>>,
    ) -> Self {
        Self {
            name: name.into(),
            local,
            persist,
            local_addr,
            incoming,
            down: false,
            freed: false,
            kernel_delete_pending: false,
            stopping: 0,
            sessions: FxHashMap::default(),
            session_names: HashMap::new(),
        }
    }

    /// The core has freed the tunnel.
    pub(super) fn is_freed(&self) -> bool {
        self.freed
    }

    /// How many of its sessions have a pppd that is stopping.
    pub(super) fn stopping(&self) -> usize {
        self.stopping
    }

    /// Its sessions, in no particular order.
    pub(super) fn sessions(&self) -> impl Iterator<Item = (SessionId, &SessionEntry)> {
        self.sessions.iter().map(|(id, s)| (*id, s))
    }

    /// Its live calls placed for `[tunnel.T.session.NAME]` tables, by name.
    pub(super) fn configured_calls(&self) -> impl Iterator<Item = (&Arc<str>, SessionId)> {
        self.session_names
            .iter()
            .filter(|(_, id)| self.sessions.get(id).is_some_and(|s| s.configured))
            .map(|(n, id)| (n, *id))
    }

    /// Done with: freed, no session left, no kernel tunnel to delete.
    fn is_done(&self) -> bool {
        self.freed && self.sessions.is_empty() && !self.kernel_delete_pending
    }
}

/// What the driver keeps of one session.
#[derive(Debug)]
pub(super) struct SessionEntry {
    /// The call's name (`[tunnel.T.session.NAME]`, the API's, or
    /// `<tunnel>/<id>` for a call the peer placed); shared with the name index.
    pub name: Arc<str>,
    /// Placed for a `[tunnel.T.session.NAME]` table of its tunnel, named
    /// like it: reload and persistence follow that table.
    pub configured: bool,
    /// PPP parameters of a call we placed; a peer's call takes its tunnel's `incoming`.
    pub ppp: Option<Arc<PppParams>>,
    /// Its pppd, while running.
    pub pppd_pid: Option<u32>,
    /// The PPP interface pppd created.
    pub ifname: Option<Box<str>>,
    /// The peer's address, from an IP pool (boxed: an entry is small
    /// without one, as with the null data plane or static addresses).
    pub pool_addr: Option<Box<(Range, IpAddr)>>,
    /// The kernel session exists (or its creation was submitted).
    pub kernel: bool,
    /// Its kernel session and pppd are being made by the data-plane worker:
    /// the ticket of that creation. A call that ends meanwhile is finished
    /// when the result comes back.
    pub creating: Option<super::worker::Ticket>,
    /// The core asked for its data plane to be deleted (or it never had one
    /// and the call is over): it is no longer a live call.
    pub released: bool,
    /// The core reported the call down.
    pub down: bool,
    /// When the core reported the call up (persistent calls: back-off).
    pub up_since: Option<Instant>,
    /// pppd was sent SIGTERM: when it gets SIGKILL. The kernel session goes
    /// when pppd has exited (deleting it first would leave pppd running on a
    /// dead channel).
    stop_deadline: Option<Instant>,
}

impl SessionEntry {
    /// A live call with no data plane yet.
    pub(super) fn new(name: &str, configured: bool, ppp: Option<Arc<PppParams>>) -> Self {
        Self {
            name: name.into(),
            configured,
            ppp,
            pppd_pid: None,
            ifname: None,
            pool_addr: None,
            kernel: false,
            creating: None,
            released: false,
            down: false,
            up_since: None,
            stop_deadline: None,
        }
    }

    /// The SIGKILL deadline of its stopping pppd.
    pub(super) fn stop_deadline(&self) -> Option<Instant> {
        self.stop_deadline
    }

    /// A call the core still has (neither released nor down).
    pub(super) fn is_live(&self) -> bool {
        !self.released && !self.down
    }

    /// Down, and nothing of its data plane left.
    fn is_done(&self) -> bool {
        self.down && !self.kernel && self.stop_deadline.is_none()
    }
}

/// Every tunnel and session the driver knows, and the indexes over them.
#[derive(Debug, Default)]
pub(super) struct Registry {
    /// By our Assigned Tunnel ID (drawn by us: a non-keyed hasher is safe).
    tunnels: FxHashMap<TunnelId, TunnelEntry>,
    /// Tunnel names → the tunnels (not yet freed) that carry them.
    names: HashMap<Arc<str>, BTreeSet<TunnelId>>,
    /// Sessions whose pppd is stopping, over all tunnels.
    stopping: usize,
}

impl Registry {
    /// A tunnel's entry.
    pub(super) fn tunnel(&self, id: TunnelId) -> Option<&TunnelEntry> {
        self.tunnels.get(&id)
    }

    /// A tunnel's entry, to change its plain fields.
    pub(super) fn tunnel_mut(&mut self, id: TunnelId) -> Option<&mut TunnelEntry> {
        self.tunnels.get_mut(&id)
    }

    /// All tunnels, in no particular order.
    pub(super) fn tunnels(&self) -> impl Iterator<Item = (TunnelId, &TunnelEntry)> {
        self.tunnels.iter().map(|(id, t)| (*id, t))
    }

    /// Add a tunnel. Its id should be free (see `drain_freed_tunnel`); an
    /// entry still under it is dropped.
    pub(super) fn insert_tunnel(&mut self, id: TunnelId, entry: TunnelEntry) {
        if let Some(old) = self.remove_tunnel(id) {
            tracing::warn!(tunnel_id = id.0, tunnel = %old.name, "tunnel id reused: its old entry is dropped");
        }
        if !entry.freed {
            self.names.entry(entry.name.clone()).or_default().insert(id);
        }
        self.stopping += entry.stopping;
        self.tunnels.insert(id, entry);
    }

    /// Take a tunnel out, sessions and all.
    pub(super) fn remove_tunnel(&mut self, id: TunnelId) -> Option<TunnelEntry> {
        let entry = self.tunnels.remove(&id)?;
        self.unindex_tunnel(id, &entry.name);
        self.stopping -= entry.stopping;
        Some(entry)
    }

    /// Drop `id` from the ids named `name`.
    fn unindex_tunnel(&mut self, id: TunnelId, name: &str) {
        if let Some(ids) = self.names.get_mut(name) {
            ids.remove(&id);
            if ids.is_empty() {
                self.names.remove(name);
            }
        }
    }

    /// The core freed tunnel `id`: its name is no longer in use; the entry
    /// stays while its data plane is torn down.
    pub(super) fn mark_freed(&mut self, id: TunnelId) {
        let Some(t) = self.tunnels.get_mut(&id) else {
            return;
        };
        t.freed = true;
        let name = t.name.clone();
        self.unindex_tunnel(id, &name);
    }

    /// Remove tunnel `id` if nothing is left of it.
    pub(super) fn remove_tunnel_if_done(&mut self, id: TunnelId) {
        if self.tunnels.get(&id).is_some_and(TunnelEntry::is_done) {
            self.remove_tunnel(id);
        }
    }

    /// The tunnels (not freed) named `name`, lowest id first.
    pub(super) fn tunnels_named(&self, name: &str) -> impl Iterator<Item = TunnelId> + '_ {
        self.names.get(name).into_iter().flatten().copied()
    }

    /// Whether a tunnel (not freed) is named `name`.
    pub(super) fn name_in_use(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Sessions whose pppd is stopping, over all tunnels.
    pub(super) fn stopping(&self) -> usize {
        self.stopping
    }

    /// A session's entry.
    pub(super) fn session(&self, t: TunnelId, s: SessionId) -> Option<&SessionEntry> {
        self.tunnels.get(&t)?.sessions.get(&s)
    }

    /// A session's entry, to change its plain fields.
    pub(super) fn session_mut(&mut self, t: TunnelId, s: SessionId) -> Option<&mut SessionEntry> {
        self.tunnels.get_mut(&t)?.sessions.get_mut(&s)
    }

    /// The live session of tunnel `t` named `name`.
    pub(super) fn session_named(&self, t: TunnelId, name: &str) -> Option<SessionId> {
        self.tunnels.get(&t)?.session_names.get(name).copied()
    }

    /// Add a live session to tunnel `t`. Its id should be free (see
    /// `drain_session`); an entry still under it is dropped. Returns false
    /// when there is no such tunnel.
    pub(super) fn insert_session(
        &mut self,
        t: TunnelId,
        s: SessionId,
        entry: SessionEntry,
    ) -> bool {
        if !self.tunnels.contains_key(&t) {
            return false;
        }
        if let Some(old) = self.remove_session(t, s) {
            tracing::warn!(tunnel_id = t.0, session_id = s.0, session = %old.name, "session id reused: its old entry is dropped");
        }
        let Some(tun) = self.tunnels.get_mut(&t) else {
            return false;
        };
        tun.session_names.insert(entry.name.clone(), s);
        tun.sessions.insert(s, entry);
        true
    }

    /// The session is no longer live (released or down): drop its name from the index.
    pub(super) fn unindex_session(&mut self, t: TunnelId, s: SessionId) {
        let Some(tun) = self.tunnels.get_mut(&t) else {
            return;
        };
        if let Some(name) = tun.sessions.get(&s).map(|e| e.name.clone())
            && tun.session_names.get(&name) == Some(&s)
        {
            tun.session_names.remove(&name);
        }
    }

    /// Take a session out.
    pub(super) fn remove_session(&mut self, t: TunnelId, s: SessionId) -> Option<SessionEntry> {
        self.unindex_session(t, s);
        let tun = self.tunnels.get_mut(&t)?;
        let entry = tun.sessions.remove(&s)?;
        if entry.stop_deadline.is_some() {
            tun.stopping -= 1;
            self.stopping -= 1;
        }
        Some(entry)
    }

    /// Remove session `s` of `t` if nothing is left of it.
    pub(super) fn remove_session_if_done(&mut self, t: TunnelId, s: SessionId) {
        if self.session(t, s).is_some_and(SessionEntry::is_done) {
            self.remove_session(t, s);
        }
    }

    /// pppd of session `s` was sent SIGTERM; it gets SIGKILL at `deadline`.
    pub(super) fn begin_stopping(&mut self, t: TunnelId, s: SessionId, deadline: Instant) {
        let Some(tun) = self.tunnels.get_mut(&t) else {
            return;
        };
        let Some(e) = tun.sessions.get_mut(&s) else {
            return;
        };
        if e.stop_deadline.replace(deadline).is_none() {
            tun.stopping += 1;
            self.stopping += 1;
        }
    }

    /// pppd of session `s` is gone: returns the deadline it had.
    pub(super) fn end_stopping(&mut self, t: TunnelId, s: SessionId) -> Option<Instant> {
        let tun = self.tunnels.get_mut(&t)?;
        let deadline = tun.sessions.get_mut(&s)?.stop_deadline.take()?;
        tun.stopping -= 1;
        self.stopping -= 1;
        Some(deadline)
    }

    /// Move tunnel `old` to id `new` with all its sessions (crossed SCCRQs:
    /// the peer's tunnel carries our calls now, under their session ids).
    pub(super) fn rekey_tunnel(&mut self, old: TunnelId, new: TunnelId) -> bool {
        let Some(mut entry) = self.remove_tunnel(old) else {
            return false;
        };
        entry.down = false;
        self.insert_tunnel(new, entry);
        true
    }

    /// Every session, as (tunnel, session) ids.
    pub(super) fn session_ids(&self) -> Vec<(TunnelId, SessionId)> {
        self.tunnels
            .iter()
            .flat_map(|(t, tun)| tun.sessions.keys().map(move |s| (*t, *s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg_with_session() -> Registry {
        let mut r = Registry::default();
        r.insert_tunnel(TunnelId(7), TunnelEntry::new("t", true, false, None, None));
        assert!(r.insert_session(
            TunnelId(7),
            SessionId(3),
            SessionEntry::new("s", true, None)
        ));
        r
    }

    #[test]
    fn names_index_tunnels_and_live_sessions() {
        let mut r = reg_with_session();
        r.insert_tunnel(TunnelId(9), TunnelEntry::new("t", true, false, None, None));
        assert_eq!(
            r.tunnels_named("t").collect::<Vec<_>>(),
            [TunnelId(7), TunnelId(9)]
        );
        assert_eq!(r.session_named(TunnelId(7), "s"), Some(SessionId(3)));
        assert_eq!(r.tunnel(TunnelId(7)).unwrap().configured_calls().count(), 1);
        r.unindex_session(TunnelId(7), SessionId(3));
        assert_eq!(r.session_named(TunnelId(7), "s"), None);
        assert!(r.session(TunnelId(7), SessionId(3)).is_some());
        r.mark_freed(TunnelId(9));
        assert_eq!(r.tunnels_named("t").collect::<Vec<_>>(), [TunnelId(7)]);
        r.remove_tunnel(TunnelId(7));
        assert!(!r.name_in_use("t"));
    }

    #[test]
    fn a_tunnel_stays_while_a_session_is_stopping() {
        let mut r = reg_with_session();
        let (t, s) = (TunnelId(7), SessionId(3));
        let at = Instant::now();
        r.session_mut(t, s).unwrap().kernel = true;
        r.begin_stopping(t, s, at);
        r.begin_stopping(t, s, at);
        assert_eq!((r.stopping(), r.tunnel(t).unwrap().stopping()), (1, 1));
        r.session_mut(t, s).unwrap().down = true;
        r.mark_freed(t);
        r.remove_session_if_done(t, s);
        r.remove_tunnel_if_done(t);
        assert!(r.session(t, s).is_some());
        assert_eq!(r.end_stopping(t, s), Some(at));
        assert_eq!(r.end_stopping(t, s), None);
        r.session_mut(t, s).unwrap().kernel = false;
        r.remove_session_if_done(t, s);
        r.remove_tunnel_if_done(t);
        assert!(r.tunnel(t).is_none());
        assert_eq!(r.stopping(), 0);
    }

    #[test]
    fn a_replaced_tunnel_keeps_its_sessions_under_the_new_id() {
        let mut r = reg_with_session();
        r.tunnel_mut(TunnelId(7)).unwrap().down = true;
        assert!(r.rekey_tunnel(TunnelId(7), TunnelId(8)));
        assert!(r.tunnel(TunnelId(7)).is_none());
        assert!(!r.tunnel(TunnelId(8)).unwrap().down);
        assert_eq!(r.session_named(TunnelId(8), "s"), Some(SessionId(3)));
        assert_eq!(r.tunnels_named("t").collect::<Vec<_>>(), [TunnelId(8)]);
    }
}
