//! The management API: the Varlink interface `io.l2tpd` (see
//! `crates/l2tp-api/io.l2tpd.varlink`) on a Unix socket.
//!
//! The server runs on a thread of its own (a slow client must not stall the
//! protocol), a current-thread runtime where every connection is a task of
//! its own ([`conn`] has the framing, the limits and the timeouts). It checks
//! each caller's credentials (SO_PEERCRED, SO_PEERGROUPS), answers the
//! `org.varlink.service` introspection calls and `Monitor` itself, and hands
//! every other call to the daemon loop as an [`ApiRequest`] with a oneshot
//! reply channel: the protocol state lives only in the loop (see
//! `daemon/api/`). `Monitor` streams the events the loop publishes on a
//! broadcast channel.
//!
//! Limits: at most `system.api_max_connections` connections at once (a
//! further one is answered `io.l2tpd.TooManyConnections` and closed), calls
//! of at most [`conn::MAX_REQUEST`] bytes, replies of at most
//! [`conn::MAX_REPLY`] bytes, a call whole within [`conn::REQUEST_TIMEOUT`]
//! of its first byte, each reply written within [`conn::REPLY_TIMEOUT`], a
//! connection idle (no call, no `Monitor`) for at most [`IDLE_TIMEOUT`].
//!
//! The accept loop never gives up: accept errors are logged (out of file
//! descriptors through [`crate::fdlimit`]) and followed by a pause before the
//! next accept. Parameters are logged (at trace level) only with their
//! secrets redacted ([`conn::redacted`]).

pub(crate) mod conn;
pub(crate) mod overlay;
pub(crate) mod trace;

use std::cell::{Cell, RefCell};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use l2tp_api::types::{Event, MonitorReply};
use l2tp_api::{Access, ApiError};
use l2tp_config::SystemConfig;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::fdlimit::RateLimiter;
use conn::{CallMsg, Frame, Framer};

/// How many events a slow `Monitor` client may fall behind before it loses some.
const MONITOR_BACKLOG: usize = 1024;
/// How many calls may wait for the daemon loop.
const REQUEST_BACKLOG: usize = 64;
/// The pause after a failed accept (100 ms): long enough not to spin while out of
/// file descriptors (the pending connection keeps the socket readable), short
/// enough that callers barely notice once descriptors are free again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a connection may stay without a call (between calls; not while
/// a `Monitor` call runs) before it is closed: 60 s.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A call for the daemon loop. Its `Debug` shows the parameters with their
/// secrets redacted.
pub(crate) struct ApiRequest {
    /// Method name without the interface prefix (`TunnelShow`).
    pub method: String,
    /// The call's parameters (an object; `{}` when absent).
    pub params: Value,
    /// The caller, for the log (`uid 0 pid 123`).
    pub caller: String,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<Value, ApiError>>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("params", &conn::redacted(&self.params))
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// What the daemon loop keeps of the API: calls to answer and where to publish events.
#[derive(Debug)]
pub(crate) struct ApiChannels {
    /// Calls from the server thread.
    pub requests: mpsc::Receiver<ApiRequest>,
    /// Events for `Monitor` callers.
    pub events: broadcast::Sender<Event>,
    /// The socket, removed when this is dropped.
    pub socket: Option<SocketFile>,
    /// `system.api_max_connections`, read by the server at each accept:
    /// store a new value to change the limit (connections already open stay).
    pub max_connections: Arc<AtomicUsize>,
}

/// The socket file; removed on drop (daemon exit).
#[derive(Debug)]
pub(crate) struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Who may call what.
#[derive(Debug, Clone, Copy)]
struct Policy {
    /// The daemon's own effective uid (root in production): full access.
    own_uid: u32,
    full_gid: Option<u32>,
    readonly_gid: Option<u32>,
}

impl Policy {
    fn access(&self, uid: u32, gids: impl IntoIterator<Item = u32>) -> Option<Access> {
        if uid == 0 || uid == self.own_uid {
            return Some(Access::ReadWrite);
        }
        let gids: Vec<u32> = gids.into_iter().collect();
        if self.full_gid.is_some_and(|g| gids.contains(&g)) {
            Some(Access::ReadWrite)
        } else if self.readonly_gid.is_some_and(|g| gids.contains(&g)) {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }
}

/// A group by name or number.
fn group_id(key: &str, group: &str) -> anyhow::Result<u32> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => anyhow::bail!("system.{key}: no group named `{group}`"),
        Err(e) => anyhow::bail!("system.{key}: looking up group `{group}`: {e}"),
    }
}

/// Start the API server as `system` says. When it is disabled, or its socket
/// cannot be set up (logged as an error: the daemon runs on without its API),
/// the channels are returned all the same and never carry a call. Unknown
/// groups are errors.
pub(crate) fn start(system: &SystemConfig) -> anyhow::Result<ApiChannels> {
    let (tx, requests) = mpsc::channel(REQUEST_BACKLOG);
    let (events, _) = broadcast::channel(MONITOR_BACKLOG);
    let max_connections = Arc::new(AtomicUsize::new(system.api_max_connections as usize));
    let mut channels = ApiChannels {
        requests,
        events: events.clone(),
        socket: None,
        max_connections: max_connections.clone(),
    };
    if system.api_socket.as_os_str().is_empty() {
        tracing::info!("management API disabled (system.api_socket is empty)");
        return Ok(channels);
    }
    let policy = Policy {
        own_uid: nix::unistd::geteuid().as_raw(),
        full_gid: system
            .api_group
            .as_deref()
            .map(|g| group_id("api_group", g))
            .transpose()?,
        readonly_gid: system
            .api_readonly_group
            .as_deref()
            .map(|g| group_id("api_readonly_group", g))
            .transpose()?,
    };
    let path = system.api_socket.clone();
    let listener = match bind(&path, policy) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("management API disabled: {e:#}");
            return Ok(channels);
        }
    };
    channels.socket = Some(SocketFile(path.clone()));
    let shared = Shared {
        requests: tx,
        events,
        policy,
        max_connections,
        active: Cell::new(0),
        refusing: Cell::new(0),
        notices: RefCell::new(Notices::new()),
    };
    std::thread::Builder::new()
        .name("l2tpd-api".into())
        .spawn(move || serve(listener, shared))
        .context("starting the API thread")?;
    tracing::info!(socket = %path.display(), "management API listening");
    Ok(channels)
}

/// Bind the socket: mode 0660, owned by root and the API group.
fn bind(path: &Path, policy: Policy) -> anyhow::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        anyhow::ensure!(
            meta.file_type().is_socket(),
            "{} exists and is not a socket",
            path.display()
        );
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{} is in use: is another l2tpd running? (set system.api_socket to another path)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    listener.set_nonblocking(true)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", path.display()))?;
    let gid = policy.readonly_gid.or(policy.full_gid);
    if policy.own_uid == 0 {
        std::os::unix::fs::chown(path, Some(0), Some(gid.unwrap_or(0)))
            .with_context(|| format!("chown {}", path.display()))?;
    } else if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g))
            .with_context(|| format!("chgrp {g} {}", path.display()))?;
    }
    Ok(listener)
}

fn serve(listener: std::os::unix::net::UnixListener, shared: Shared) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("management API: cannot start its runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("management API: {e}");
                return;
            }
        };
        accept_loop(listener, Rc::new(shared)).await;
    });
}

/// Accept connections for as long as the daemon runs, whatever happens.
///
/// A failed accept is logged (out of file descriptors through
/// [`fdlimit::report_exhaustion`](crate::fdlimit::report_exhaustion), any
/// other error as a warning at most once a second) and the next accept waits
/// [`ACCEPT_BACKOFF`] (a connection left pending keeps the socket readable:
/// without the pause the loop would spin); once an accept succeeds again an
/// info line says how many failed. Each connection accepted is served by a
/// task of its own; past `system.api_max_connections` it is refused (see
/// [`refuse`]).
async fn accept_loop(listener: tokio::net::UnixListener, shared: Rc<Shared>) {
    const OPERATION: &str = "accepting a management API connection";
    let mut failed: u64 = 0;
    let mut other_errors = RateLimiter::new(Duration::from_secs(1));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                failed += 1;
                if crate::fdlimit::is_exhaustion(&e) {
                    crate::fdlimit::report_exhaustion(OPERATION, &e);
                } else if let Some(suppressed) = other_errors.admit(std::time::Instant::now()) {
                    tracing::warn!(
                        "management API: {OPERATION}: {e} (retrying in {} ms; \
                         {suppressed} more such errors suppressed since the last one)",
                        ACCEPT_BACKOFF.as_millis()
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if failed > 0 {
            tracing::info!(
                "management API accepting connections again after {failed} failed accepts"
            );
            failed = 0;
        }
        let peer = Peer::of(&stream);
        if shared.active.get() >= shared.max_connections.load(Ordering::Relaxed) {
            refuse(stream, peer, &shared);
            continue;
        }
        shared.active.set(shared.active.get() + 1);
        let slot = Slot(shared.clone());
        let conn = Conn::new(stream, peer, shared.clone());
        tokio::task::spawn_local(async move {
            conn.run().await;
            drop(slot);
        });
    }
}

/// The most refused connections kept open at once while their first call is
/// read (so that the client's write does not fail before it reads the error).
const MAX_REFUSING: usize = 16;
/// How long a refused connection is kept for that.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Refuse a connection past the limit: log (at most once a second, counting
/// the others), send `io.l2tpd.TooManyConnections`, shut our side down, read
/// the client's first call for at most [`REFUSE_LINGER`] (bounded: at most
/// [`MAX_REFUSING`] such connections, the others are closed at once) and close.
fn refuse(stream: tokio::net::UnixStream, peer: Peer, shared: &Rc<Shared>) {
    let limit = shared.max_connections.load(Ordering::Relaxed);
    if let Some(suppressed) = shared
        .notices
        .borrow_mut()
        .refused
        .admit(std::time::Instant::now())
    {
        tracing::warn!(
            "management API: refusing a connection from {peer}: {limit} connections are \
             open (system.api_max_connections; {suppressed} more refusals since the last \
             such line)"
        );
    }
    let error = conn::encode_error(&ApiError::TooManyConnections {
        limit: limit as u64,
        description: format!(
            "l2tpd serves at most {limit} API connections at once \
             (system.api_max_connections); try again later"
        ),
    });
    // The socket's send buffer is empty: this small write does not block.
    let _ = stream.try_write(&error);
    if shared.refusing.get() >= MAX_REFUSING {
        return;
    }
    shared.refusing.set(shared.refusing.get() + 1);
    let shared = shared.clone();
    tokio::task::spawn_local(async move {
        let mut stream = stream;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        let mut buf = vec![0u8; 4096];
        let mut left = conn::MAX_REQUEST;
        let _ = tokio::time::timeout(REFUSE_LINGER, async {
            while left > 0 {
                match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
        shared.refusing.set(shared.refusing.get() - 1);
    });
}

/// A connection being served: counted in [`Shared::active`] until dropped.
struct Slot(Rc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
    }
}

/// The caller at the other end of a connection (SO_PEERCRED, read when it
/// is accepted), for logs and the access policy.
#[derive(Debug, Clone, Copy)]
struct Peer {
    /// `None` when SO_PEERCRED failed.
    ids: Option<(u32, i32)>,
}

impl Peer {
    fn of(stream: &tokio::net::UnixStream) -> Self {
        let ids = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| (c.uid(), c.pid()));
        Self { ids }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ids {
            Some((uid, pid)) => write!(f, "uid {uid} pid {pid}"),
            None => f.write_str("a caller of unknown credentials"),
        }
    }
}

/// Why a connection was closed by the server.
#[derive(Debug)]
enum Closed {
    /// The client closed it (between calls): not worth a line.
    Eof,
    /// The client closed it in the middle of a call.
    EofMidCall(usize),
    /// A call did not arrive whole within [`conn::REQUEST_TIMEOUT`].
    RequestStalled(usize),
    /// No call for [`IDLE_TIMEOUT`].
    Idle,
    /// A reply could not be written within [`conn::REPLY_TIMEOUT`].
    ReplyStalled,
    /// An over-long call went on past [`conn::MAX_DISCARD`] bytes.
    Endless,
    /// A message that is not a Varlink call.
    NotACall(String),
    /// Data sent while a `Monitor` call runs.
    DataDuringMonitor,
    /// The daemon is exiting (the last `Monitor` reply was sent).
    Exiting,
    /// A read or write failed.
    Io(std::io::Error),
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eof => f.write_str("closed by the client"),
            Self::EofMidCall(n) => write!(f, "closed by the client after {n} bytes of a call"),
            Self::RequestStalled(n) => write!(
                f,
                "a call did not arrive whole within {} s ({n} bytes of it held)",
                conn::REQUEST_TIMEOUT.as_secs()
            ),
            Self::Idle => write!(f, "no call for {} s", IDLE_TIMEOUT.as_secs()),
            Self::ReplyStalled => write!(
                f,
                "the client did not read its reply within {} s",
                conn::REPLY_TIMEOUT.as_secs()
            ),
            Self::Endless => write!(
                f,
                "a call went on past {} bytes without its end",
                conn::MAX_DISCARD
            ),
            Self::NotACall(why) => write!(f, "a message is {why}"),
            Self::DataDuringMonitor => f.write_str("data sent while its Monitor call runs"),
            Self::Exiting => f.write_str("l2tpd is exiting"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

/// What a call comes to.
enum Outcome {
    Reply(Value),
    Error(ApiError),
    Monitor(broadcast::Receiver<Event>),
}

/// One connection: its socket, the bytes read, what is known of its caller.
struct Conn {
    stream: tokio::net::UnixStream,
    peer: Peer,
    shared: Rc<Shared>,
    framer: Framer,
    chunk: Vec<u8>,
    /// The caller's access, once looked up (at its first call that needs it).
    access: Option<Option<Access>>,
}

impl Conn {
    fn new(stream: tokio::net::UnixStream, peer: Peer, shared: Rc<Shared>) -> Self {
        Self {
            stream,
            peer,
            shared,
            framer: Framer::new(conn::MAX_REQUEST),
            chunk: vec![0; conn::READ_CHUNK],
            access: None,
        }
    }

    /// Serve the connection until it is closed; say why if that is worth it.
    async fn run(mut self) {
        let why = match self.serve().await {
            Ok(()) => return,
            Err(why) => why,
        };
        match why {
            Closed::Eof | Closed::Exiting => {}
            Closed::Io(_) | Closed::EofMidCall(_) | Closed::Idle => {
                tracing::debug!("management API: connection of {} closed: {why}", self.peer)
            }
            _ => {
                let admitted = self
                    .shared
                    .notices
                    .borrow_mut()
                    .closed
                    .admit(std::time::Instant::now());
                if let Some(suppressed) = admitted {
                    tracing::warn!(
                        "management API: closing the connection of {}: {why} ({suppressed} \
                         more connections closed for misbehaving since the last such line)",
                        self.peer
                    );
                }
            }
        }
    }

    async fn serve(&mut self) -> Result<(), Closed> {
        let mut started: Option<tokio::time::Instant> = None;
        loop {
            while let Some(frame) = self.framer.next() {
                match frame {
                    Frame::TooLarge(n) => {
                        let admitted = self
                            .shared
                            .notices
                            .borrow_mut()
                            .too_large
                            .admit(std::time::Instant::now());
                        if let Some(suppressed) = admitted {
                            tracing::warn!(
                                "management API: refusing a call of {n} bytes from {} \
                                 (at most {} bytes; {suppressed} more since the last such line)",
                                self.peer,
                                conn::MAX_REQUEST
                            );
                        }
                        self.send(&conn::encode_error(&conn::request_too_large(n)))
                            .await?;
                    }
                    Frame::Message(bytes) => {
                        let call: CallMsg = serde_json::from_slice(&bytes)
                            .map_err(|e| Closed::NotACall(conn::describe_json_error(&e)))?;
                        drop(bytes);
                        self.call(call).await?;
                    }
                }
                started = None;
            }
            if self.framer.is_partial() {
                started.get_or_insert_with(tokio::time::Instant::now);
            } else {
                started = None;
            }
            let deadline = match started {
                Some(t) => t + conn::REQUEST_TIMEOUT,
                None => tokio::time::Instant::now() + IDLE_TIMEOUT,
            };
            let room = self.framer.room();
            let read = tokio::io::AsyncReadExt::read(&mut self.stream, &mut self.chunk[..room]);
            let n = match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(Closed::Io(e)),
                Err(_) if started.is_some() => {
                    return Err(Closed::RequestStalled(self.framer.held()));
                }
                Err(_) => return Err(Closed::Idle),
            };
            if n == 0 {
                return Err(if self.framer.is_partial() {
                    Closed::EofMidCall(self.framer.held())
                } else {
                    Closed::Eof
                });
            }
            self.framer
                .push(&self.chunk[..n])
                .map_err(|conn::Endless| Closed::Endless)?;
        }
    }

    /// Write `bytes` within [`conn::REPLY_TIMEOUT`].
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        let write = tokio::io::AsyncWriteExt::write_all(&mut self.stream, bytes);
        match tokio::time::timeout(conn::REPLY_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Closed::Io(e)),
            Err(_) => Err(Closed::ReplyStalled),
        }
    }

    /// Handle one call and send its replies (none for a oneway call).
    async fn call(&mut self, call: CallMsg) -> Result<(), Closed> {
        let outcome = self.dispatch(&call).await;
        if call.oneway {
            return Ok(());
        }
        match outcome {
            Outcome::Reply(v) => {
                self.send(&conn::encode_reply(&v, false, conn::MAX_REPLY))
                    .await
            }
            Outcome::Error(e) => self.send(&conn::encode_error(&e)).await,
            Outcome::Monitor(rx) => self.monitor(rx).await,
        }
    }

    /// The replies of a `Monitor` call: `subscribed`, then every event the
    /// daemon publishes; `exiting` (the last reply) when the daemon goes
    /// away. The connection is closed when the client closes it or sends
    /// anything meanwhile.
    async fn monitor(&mut self, mut rx: broadcast::Receiver<Event>) -> Result<(), Closed> {
        let first = local_event("subscribed", "monitoring tunnel and session events".into());
        self.send(&event_bytes(first, true)).await?;
        loop {
            let read = tokio::io::AsyncReadExt::read(&mut self.stream, &mut self.chunk[..]);
            let event = tokio::select! {
                r = read => return match r {
                    Ok(0) => Err(Closed::Eof),
                    Ok(_) => Err(Closed::DataDuringMonitor),
                    Err(e) => Err(Closed::Io(e)),
                },
                ev = rx.recv() => ev,
            };
            let (event, continues) = match event {
                Ok(ev) => (ev, true),
                Err(broadcast::error::RecvError::Lagged(n)) => (
                    local_event(
                        "lagged",
                        format!("{n} events were lost: the monitor fell behind"),
                    ),
                    true,
                ),
                Err(broadcast::error::RecvError::Closed) => {
                    (local_event("exiting", "l2tpd is exiting".into()), false)
                }
            };
            self.send(&event_bytes(event, continues)).await?;
            if !continues {
                return Err(Closed::Exiting);
            }
        }
    }

    /// The caller's access: root and the daemon's own uid without further
    /// ado, anyone else by group (SO_PEERGROUPS, looked up once).
    async fn access(&mut self) -> Result<Option<Access>, ApiError> {
        if let Some(a) = self.access {
            return Ok(a);
        }
        let policy = self.shared.policy;
        let a = match self.peer.ids {
            None => None,
            Some((uid, _)) if uid == 0 || uid == policy.own_uid => Some(Access::ReadWrite),
            Some((uid, _)) => match peer_groups(&self.stream).await {
                Ok(gids) => policy.access(uid, gids),
                Err(e) if crate::fdlimit::is_exhaustion(&e) => {
                    crate::fdlimit::report_exhaustion("reading an API caller's credentials", &e);
                    return Err(ApiError::failed(format!(
                        "l2tpd is out of file descriptors ({e}); try again later"
                    )));
                }
                Err(e) => {
                    tracing::warn!("API caller's groups unknown: {e}");
                    None
                }
            },
        };
        self.access = Some(a);
        Ok(a)
    }

    async fn dispatch(&mut self, call: &CallMsg) -> Outcome {
        let params = call
            .parameters
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        tracing::trace!(
            method = ?call.method,
            params = %conn::redacted(&params),
            "API call received from {}",
            self.peer
        );
        if call.upgrade {
            return Outcome::Error(ApiError::VarlinkInvalidParameter {
                parameter: "upgrade".into(),
            });
        }
        if !params.is_object() {
            return Outcome::Error(ApiError::VarlinkInvalidParameter {
                parameter: "parameters".into(),
            });
        }
        if let Err(e) = conn::check_params(&params) {
            return Outcome::Error(e);
        }
        match call.method.as_str() {
            "org.varlink.service.GetInfo" => {
                return Outcome::Reply(serde_json::json!({
                    "vendor": "l2tpd",
                    "product": "l2tpd",
                    "version": env!("CARGO_PKG_VERSION"),
                    "url": "https://example.invalid/l2tpd",
                    "interfaces": ["org.varlink.service", l2tp_api::INTERFACE],
                }));
            }
            "org.varlink.service.GetInterfaceDescription" => {
                let iface = params
                    .get("interface")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let description = match iface {
                    l2tp_api::INTERFACE => l2tp_api::DESCRIPTION,
                    "org.varlink.service" => VARLINK_SERVICE_DESCRIPTION,
                    _ => {
                        return Outcome::Error(ApiError::InterfaceNotFound {
                            interface: iface.to_owned(),
                        });
                    }
                };
                return Outcome::Reply(serde_json::json!({ "description": description }));
            }
            _ => {}
        }
        let Some((iface, method)) = call.method.rsplit_once('.') else {
            return Outcome::Error(ApiError::MethodNotFound {
                method: call.method.clone(),
            });
        };
        if iface != l2tp_api::INTERFACE {
            return Outcome::Error(if iface == "org.varlink.service" {
                ApiError::MethodNotFound {
                    method: call.method.clone(),
                }
            } else {
                ApiError::InterfaceNotFound {
                    interface: iface.to_owned(),
                }
            });
        }
        let Some(needed) = l2tp_api::access(method) else {
            return Outcome::Error(ApiError::MethodNotFound {
                method: call.method.clone(),
            });
        };
        let access = match self.access().await {
            Ok(a) => a,
            Err(e) => return Outcome::Error(e),
        };
        let allowed = matches!(
            (needed, access),
            (_, Some(Access::ReadWrite)) | (Access::ReadOnly, Some(Access::ReadOnly))
        );
        let (uid, pid) = self.peer.ids.unwrap_or((u32::MAX, 0));
        if !allowed {
            tracing::warn!(uid, pid, method, "API call refused: permission denied");
            let description = if access.is_some() {
                format!("{method} changes the daemon: only root and system.api_group may call it")
            } else {
                format!("uid {uid} may not use the l2tpd API")
            };
            return Outcome::Error(ApiError::PermissionDenied {
                method: method.to_owned(),
                description,
            });
        }
        if method == "Monitor" {
            if !call.more {
                return Outcome::Error(ApiError::ExpectedMore);
            }
            tracing::debug!(uid, pid, "API monitor subscribed");
            return Outcome::Monitor(self.shared.events.subscribe());
        }
        let (reply, rx) = oneshot::channel();
        let req = ApiRequest {
            method: method.to_owned(),
            params,
            caller: self.peer.to_string(),
            reply,
        };
        if self.shared.requests.send(req).await.is_err() {
            return Outcome::Error(ApiError::failed("l2tpd is shutting down"));
        }
        match rx.await {
            Ok(Ok(v)) => Outcome::Reply(v),
            Ok(Err(e)) => Outcome::Error(e),
            Err(_) => Outcome::Error(ApiError::failed("l2tpd is shutting down")),
        }
    }
}

/// A socket whose peer's groups zlink reads (SO_PEERGROUPS).
struct PeerSocket<'a>(std::os::fd::BorrowedFd<'a>);

impl std::os::fd::AsFd for PeerSocket<'_> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0
    }
}

impl zlink::connection::socket::UnixSocket for PeerSocket<'_> {}

/// The peer's primary and supplementary groups (SO_PEERCRED, SO_PEERGROUPS).
/// zlink's lookup also opens a pidfd (SO_PEERPIDFD), closed at once here.
async fn peer_groups(stream: &tokio::net::UnixStream) -> std::io::Result<Vec<u32>> {
    use std::os::fd::AsFd;
    use zlink::connection::socket::FetchPeerCredentials;
    let socket = PeerSocket(stream.as_fd());
    let creds = socket.fetch_peer_credentials().await?;
    Ok(std::iter::once(creds.unix_primary_group_id().as_raw())
        .chain(
            creds
                .unix_supplementary_group_ids()
                .iter()
                .map(|g| g.as_raw()),
        )
        .collect())
}

/// What every connection shares.
struct Shared {
    requests: mpsc::Sender<ApiRequest>,
    events: broadcast::Sender<Event>,
    policy: Policy,
    /// `system.api_max_connections` (changed by reloads).
    max_connections: Arc<AtomicUsize>,
    /// Connections served now.
    active: Cell<usize>,
    /// Refused connections kept open now (see [`refuse`]).
    refusing: Cell<usize>,
    notices: RefCell<Notices>,
}

/// Rate limits of the API's warnings: at most one line a second of each kind.
struct Notices {
    refused: RateLimiter,
    too_large: RateLimiter,
    closed: RateLimiter,
}

impl Notices {
    fn new() -> Self {
        let second = Duration::from_secs(1);
        Self {
            refused: RateLimiter::new(second),
            too_large: RateLimiter::new(second),
            closed: RateLimiter::new(second),
        }
    }
}

/// The `org.varlink.service` interface description.
const VARLINK_SERVICE_DESCRIPTION: &str = "\
# The Varlink Service Interface is provided by every varlink service. It
# describes the service and the interfaces it implements.
interface org.varlink.service

# Get a list of all the interfaces a service provides and information
# about the implementation.
method GetInfo() -> (
  vendor: string,
  product: string,
  version: string,
  url: string,
  interfaces: []string
)

# Get the description of an interface that is implemented by this service.
method GetInterfaceDescription(interface: string) -> (description: string)

# The requested interface was not found.
error InterfaceNotFound (interface: string)

# The requested method was not found
error MethodNotFound (method: string)

# The interface defines the requested method, but the service does not
# implement it.
error MethodNotImplemented (method: string)

# One of the passed parameters is invalid.
error InvalidParameter (parameter: string)

# Client is denied access
error PermissionDenied ()

# Method is expected to be called with 'more' set to true, but wasn't
error ExpectedMore ()
";

fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A `Monitor` event made here rather than by the daemon loop.
fn local_event(kind: &str, description: String) -> Event {
    Event {
        timestamp_usec: now_usec(),
        kind: kind.into(),
        tunnel_id: None,
        tunnel: None,
        session_id: None,
        session: None,
        peer: None,
        call_type: None,
        reason: None,
        description,
    }
}

/// A `Monitor` reply as bytes to send.
fn event_bytes(event: Event, continues: bool) -> Vec<u8> {
    let v = serde_json::to_value(MonitorReply { event }).unwrap_or(Value::Null);
    conn::encode_reply(&v, continues, conn::MAX_REPLY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_grants_by_uid_and_group() {
        let p = Policy {
            own_uid: 0,
            full_gid: Some(100),
            readonly_gid: Some(200),
        };
        assert_eq!(p.access(0, []), Some(Access::ReadWrite));
        assert_eq!(p.access(1000, [5, 100]), Some(Access::ReadWrite));
        assert_eq!(p.access(1000, [200]), Some(Access::ReadOnly));
        assert_eq!(p.access(1000, [5]), None);
    }
}
