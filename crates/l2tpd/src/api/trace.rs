//! Trace flags: detailed (debug and trace level) logging switched on for one
//! tunnel, one session or the whole daemon, per OpenL2TP category, without
//! raising the log level of everything else.
//!
//! The flags live in a process-wide registry that the log filter
//! ([`Filter`]) consults for events the configured level would drop. An
//! event belongs to a tunnel or session through its `tunnel` / `tunnel_id`
//! and `session` / `session_id` fields, or else through the tunnel whose
//! datagram the daemon is handling ([`enter_datagram`]). Its category comes
//! from the module that logs it:
//!
//! | category | events of |
//! |---|---|
//! | protocol, fsm | `l2tp_proto` (messages sent and received, state machines) |
//! | fsm | `l2tp_proto::session` |
//! | avp, avp_data, avp_hide | `l2tp_proto::wire` (AVP decoding) |
//! | xprt | `l2tp_proto::reliable` (Ns/Nr, retransmission, ZLB) |
//! | ppp | `l2tpd::ppp`, `l2tpd::ppp_events` (pppd) |
//! | data | `l2tp_kernel` (kernel data plane) |
//! | api | `l2tpd::api`, `l2tpd::daemon::api` |
//! | system, func | the rest of `l2tpd` |

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{self, Context};
use tracing_subscriber::registry::LookupSpan;

/// A set of OpenL2TP trace categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct TraceFlags(u16);

const PROTOCOL: u16 = 1 << 0;
const FSM: u16 = 1 << 1;
const API: u16 = 1 << 2;
const AVP: u16 = 1 << 3;
const AVP_HIDE: u16 = 1 << 4;
const AVP_DATA: u16 = 1 << 5;
const FUNC: u16 = 1 << 6;
const XPRT: u16 = 1 << 7;
const DATA: u16 = 1 << 8;
const SYSTEM: u16 = 1 << 9;
const PPP: u16 = 1 << 10;

impl TraceFlags {
    /// Parse a list of category names (`all` for every one).
    pub(crate) fn parse(names: &[String]) -> Result<Self, String> {
        let mut bits = 0;
        for n in names {
            if n == "all" {
                bits |= (1 << l2tp_api::TRACE_FLAGS.len()) - 1;
                continue;
            }
            match l2tp_api::TRACE_FLAGS.iter().position(|f| f == n) {
                Some(i) => bits |= 1 << i,
                None => {
                    return Err(format!(
                        "unknown trace flag `{n}`: {} or all",
                        l2tp_api::TRACE_FLAGS.join(", ")
                    ));
                }
            }
        }
        Ok(Self(bits))
    }

    /// The category names.
    pub(crate) fn names(self) -> Vec<String> {
        l2tp_api::TRACE_FLAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| (*n).to_owned())
            .collect()
    }

    /// No category set.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets.
    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn intersects(self, other: u16) -> bool {
        self.0 & other != 0
    }
}

#[derive(Default)]
struct Registry {
    system: TraceFlags,
    tunnels: HashMap<u16, TraceFlags>,
    sessions: HashMap<(u16, u16), TraceFlags>,
}

impl Registry {
    fn any(&self) -> bool {
        !self.system.is_empty() || !self.tunnels.is_empty() || !self.sessions.is_empty()
    }
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);
/// Fast path: false while no flag is set anywhere.
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn update(f: impl FnOnce(&mut Registry)) {
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    f(&mut r);
    ACTIVE.store(r.any(), Ordering::Relaxed);
}

fn read<T>(f: impl FnOnce(&Registry) -> T) -> T {
    f(&REGISTRY.read().unwrap_or_else(|e| e.into_inner()))
}

/// Set the system-wide flags.
pub(crate) fn set_system(flags: TraceFlags) {
    update(|r| r.system = flags);
}

/// The system-wide flags.
pub(crate) fn system() -> TraceFlags {
    read(|r| r.system)
}

/// Set a tunnel's flags (empty: clear).
pub(crate) fn set_tunnel(tunnel: u16, flags: TraceFlags) {
    update(|r| {
        if flags.is_empty() {
            r.tunnels.remove(&tunnel);
        } else {
            r.tunnels.insert(tunnel, flags);
        }
    });
}

/// A tunnel's own flags.
pub(crate) fn tunnel(tunnel: u16) -> TraceFlags {
    read(|r| r.tunnels.get(&tunnel).copied().unwrap_or_default())
}

/// Set a session's flags (empty: clear).
pub(crate) fn set_session(tunnel: u16, session: u16, flags: TraceFlags) {
    update(|r| {
        if flags.is_empty() {
            r.sessions.remove(&(tunnel, session));
        } else {
            r.sessions.insert((tunnel, session), flags);
        }
    });
}

/// A session's own flags.
pub(crate) fn session(tunnel: u16, session: u16) -> TraceFlags {
    read(|r| {
        r.sessions
            .get(&(tunnel, session))
            .copied()
            .unwrap_or_default()
    })
}

/// Forget a tunnel and its sessions (the tunnel is gone; its id may be reused).
pub(crate) fn forget_tunnel(tunnel: u16) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    update(|r| {
        r.tunnels.remove(&tunnel);
        r.sessions.retain(|(t, _), _| *t != tunnel);
    });
}

/// Forget a session.
pub(crate) fn forget_session(tunnel: u16, session: u16) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    update(|r| {
        r.sessions.remove(&(tunnel, session));
    });
}

thread_local! {
    static CURRENT_TUNNEL: Cell<Option<u16>> = const { Cell::new(None) };
}

/// While alive, events without tunnel fields belong to this tunnel.
#[derive(Debug)]
pub(crate) struct ContextGuard(Option<u16>);

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CURRENT_TUNNEL.with(|c| c.set(self.0));
    }
}

/// Attribute the events logged while handling `datagram` to the tunnel its
/// L2TP header names (RFC 2661 §3.1: the Tunnel ID follows the optional
/// Length field).
pub(crate) fn enter_datagram(datagram: &[u8]) -> ContextGuard {
    let tunnel = if ACTIVE.load(Ordering::Relaxed) {
        let off = if datagram.first().is_some_and(|b| b & 0x40 != 0) {
            4
        } else {
            2
        };
        datagram
            .get(off..off + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .filter(|t| *t != 0)
    } else {
        None
    };
    ContextGuard(CURRENT_TUNNEL.with(|c| c.replace(tunnel)))
}

/// The categories of the events of a module.
fn categories(meta: &Metadata<'_>) -> u16 {
    let t = meta.target();
    if t.starts_with("l2tp_proto::wire") {
        AVP | AVP_DATA | AVP_HIDE
    } else if t.starts_with("l2tp_proto::reliable") {
        XPRT
    } else if t.starts_with("l2tp_proto::session") {
        FSM
    } else if t.starts_with("l2tp_proto") {
        PROTOCOL | FSM
    } else if t.starts_with("l2tpd::ppp") {
        PPP
    } else if t.starts_with("l2tp_kernel") {
        DATA
    } else if t.starts_with("l2tpd::api") || t.starts_with("l2tpd::daemon::api") {
        API
    } else if t.starts_with("l2tpd") {
        SYSTEM | FUNC
    } else {
        0
    }
}

#[derive(Default)]
struct Ids {
    tunnel: Option<u16>,
    session: Option<u16>,
    buf: String,
}

impl Ids {
    fn set(&mut self, field: &Field, v: Option<u16>) {
        match field.name() {
            "tunnel" | "tunnel_id" => self.tunnel = self.tunnel.or(v),
            "session" | "session_id" => self.session = self.session.or(v),
            _ => {}
        }
    }
}

impl Visit for Ids {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, u16::try_from(value).ok());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, u16::try_from(value).ok());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(
            field.name(),
            "tunnel" | "tunnel_id" | "session" | "session_id"
        ) {
            self.buf.clear();
            let _ = write!(self.buf, "{value:?}");
            let v = self.buf.parse().ok();
            self.set(field, v);
        }
    }
}

/// Whether a trace flag asks for this event.
fn traced(event: &Event<'_>) -> bool {
    let cats = categories(event.metadata());
    if cats == 0 {
        return false;
    }
    let mut ids = Ids::default();
    event.record(&mut ids);
    let tunnel = ids.tunnel.or_else(|| CURRENT_TUNNEL.with(|c| c.get()));
    read(|r| {
        let mut flags = r.system;
        if let Some(t) = tunnel {
            flags = flags.union(r.tunnels.get(&t).copied().unwrap_or_default());
            if let Some(s) = ids.session {
                flags = flags.union(r.sessions.get(&(t, s)).copied().unwrap_or_default());
            }
        }
        flags.intersects(cats)
    })
}

/// The log filter: the configured level (an [`EnvFilter`]), plus the debug
/// and trace events that trace flags ask for.
pub(crate) struct Filter {
    env: EnvFilter,
}

impl Filter {
    /// Wrap the configured filter.
    pub(crate) fn new(env: EnvFilter) -> Self {
        Self { env }
    }
}

impl<S> layer::Filter<S> for Filter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        layer::Filter::enabled(&self.env, meta, cx)
            || (meta.is_event() && ACTIVE.load(Ordering::Relaxed) && categories(meta) != 0)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        let i = layer::Filter::<S>::callsite_enabled(&self.env, meta);
        if i.is_always() || !meta.is_event() || categories(meta) == 0 {
            i
        } else {
            Interest::sometimes()
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        layer::Filter::enabled(&self.env, event.metadata(), cx) || traced(event)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        None
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        layer::Filter::on_new_span(&self.env, attrs, id, ctx);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        layer::Filter::on_record(&self.env, id, values, ctx);
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        layer::Filter::on_enter(&self.env, id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        layer::Filter::on_exit(&self.env, id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        layer::Filter::on_close(&self.env, id, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_print() {
        let f = TraceFlags::parse(&["protocol".into(), "ppp".into()]).unwrap();
        assert_eq!(f.names(), vec!["protocol", "ppp"]);
        assert_eq!(
            TraceFlags::parse(&["all".into()]).unwrap().names().len(),
            l2tp_api::TRACE_FLAGS.len()
        );
        assert!(TraceFlags::parse(&["bogus".into()]).is_err());
        assert!(TraceFlags::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn datagram_context_reads_the_tunnel_id() {
        set_tunnel(0x1234, TraceFlags(PROTOCOL));
        // T=1 L=1 S=1, version 2, length 12, tunnel 0x1234.
        let g = enter_datagram(&[0xc8, 0x02, 0, 12, 0x12, 0x34, 0, 0]);
        assert_eq!(CURRENT_TUNNEL.with(|c| c.get()), Some(0x1234));
        drop(g);
        assert_eq!(CURRENT_TUNNEL.with(|c| c.get()), None);
        forget_tunnel(0x1234);
        assert!(tunnel(0x1234).is_empty());
    }
}
