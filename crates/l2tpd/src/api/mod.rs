//! The management API: the Varlink interface `io.l2tpd` (see
//! `crates/l2tp-api/io.l2tpd.varlink`) on a Unix socket.
//!
//! The server runs on a thread of its own (zlink's server future is not
//! `Send`, and a slow client must not stall the protocol). It checks each
//! caller's credentials (SO_PEERCRED), answers the `org.varlink.service`
//! introspection calls and `Monitor` itself, and hands every other call to
//! the daemon loop as an [`ApiRequest`] with a oneshot reply channel: the
//! protocol state lives only in the loop (see `daemon/api/`). `Monitor`
//! streams the events the loop publishes on a broadcast channel.
//!
//! Connections are accepted by [`ApiListener`], which never gives up: zlink's
//! server stops (dropping every connection) when its listener returns an
//! error, so accept errors are handled here, out of file descriptors
//! included (reported through [`crate::fdlimit`], then a pause before the
//! next accept).

pub mod overlay;
pub mod trace;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use futures::Stream;
use l2tp_api::types::{Event, MonitorReply};
use l2tp_api::{Access, ApiError};
use l2tp_config::SystemConfig;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use zlink::service::{HandleResult, Infallible, MethodReply, Service};
use zlink::tokio::unix::Stream as UnixSocket;
use zlink::{Call, Connection, Reply};

/// How many events a slow `Monitor` client may fall behind before it loses some.
const MONITOR_BACKLOG: usize = 1024;
/// How many calls may wait for the daemon loop.
const REQUEST_BACKLOG: usize = 64;
/// The pause after a failed accept: long enough not to spin while out of
/// file descriptors (the pending connection keeps the socket readable), short
/// enough that callers barely notice once descriptors are free again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A call for the daemon loop.
#[derive(Debug)]
pub struct ApiRequest {
    /// Method name without the interface prefix (`TunnelShow`).
    pub method: String,
    /// The call's parameters (an object; `{}` when absent).
    pub params: Value,
    /// The caller, for the log (`uid 0 pid 123`).
    pub caller: String,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<Value, ApiError>>,
}

/// What the daemon loop keeps of the API: calls to answer and where to publish events.
#[derive(Debug)]
pub struct ApiChannels {
    /// Calls from the server thread.
    pub requests: mpsc::Receiver<ApiRequest>,
    /// Events for `Monitor` callers.
    pub events: broadcast::Sender<Event>,
    /// The socket, removed when this is dropped.
    pub socket: Option<SocketFile>,
}

/// The socket file; removed on drop (daemon exit).
#[derive(Debug)]
pub struct SocketFile(PathBuf);

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
pub fn start(system: &SystemConfig) -> anyhow::Result<ApiChannels> {
    let (tx, requests) = mpsc::channel(REQUEST_BACKLOG);
    let (events, _) = broadcast::channel(MONITOR_BACKLOG);
    let mut channels = ApiChannels {
        requests,
        events: events.clone(),
        socket: None,
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
    let service = L2tpService {
        requests: tx,
        events,
        policy,
    };
    std::thread::Builder::new()
        .name("l2tpd-api".into())
        .spawn(move || serve(listener, service))
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

fn serve(listener: std::os::unix::net::UnixListener, service: L2tpService) {
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
    rt.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => ApiListener::new(zlink::tokio::unix::Listener::from(l)),
            Err(e) => {
                tracing::error!("management API: {e}");
                return;
            }
        };
        // ApiListener never fails nor closes, so this runs as long as the daemon.
        if let Err(e) = zlink::Server::new(listener, service).run().await {
            tracing::error!("management API stopped: {e}");
        }
    });
}

/// zlink's Unix listener made to keep accepting whatever happens.
///
/// zlink's [`Server::run`](zlink::Server::run) returns at the first error of
/// its listener and drops every connection with it. This one never returns an
/// error: a failed accept is logged (out of file descriptors through
/// [`fdlimit::report_exhaustion`](crate::fdlimit::report_exhaustion), anything
/// else as a warning at most once a second), the next accept waits
/// [`ACCEPT_BACKOFF`] (the connection left pending keeps the socket readable:
/// without the pause the loop would spin), and once an accept succeeds again
/// an info line says how many failed.
#[derive(Debug)]
struct ApiListener {
    inner: zlink::tokio::unix::Listener,
    /// No accept before this (the backoff after a failure). Kept here rather
    /// than in the accept future, which the server drops whenever another of
    /// its futures completes first.
    retry_at: Option<tokio::time::Instant>,
    /// Accepts failed in a row.
    failed: u64,
    /// Accept errors other than running out of descriptors.
    other_errors: crate::fdlimit::RateLimiter,
}

impl ApiListener {
    fn new(inner: zlink::tokio::unix::Listener) -> ApiListener {
        ApiListener {
            inner,
            retry_at: None,
            failed: 0,
            other_errors: crate::fdlimit::RateLimiter::new(Duration::from_secs(1)),
        }
    }

    /// Log a failed accept and schedule the next one after [`ACCEPT_BACKOFF`].
    fn failed(&mut self, e: zlink::Error) {
        const OPERATION: &str = "accepting a management API connection";
        self.failed += 1;
        let now = tokio::time::Instant::now();
        self.retry_at = Some(now + ACCEPT_BACKOFF);
        match &e {
            zlink::Error::Io(io) if crate::fdlimit::is_exhaustion(io) => {
                crate::fdlimit::report_exhaustion(OPERATION, io);
            }
            _ => {
                if let Some(suppressed) = self.other_errors.admit(now.into_std()) {
                    tracing::warn!(
                        "management API: {OPERATION}: {e} (retrying in {} ms; \
                         {suppressed} more such errors suppressed since the last one)",
                        ACCEPT_BACKOFF.as_millis()
                    );
                }
            }
        }
    }
}

impl zlink::Listener for ApiListener {
    type Socket = UnixSocket;

    async fn accept(&mut self) -> zlink::Result<Option<Connection<UnixSocket>>> {
        loop {
            if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at).await;
                self.retry_at = None;
            }
            match self.inner.accept().await {
                // zlink's Unix listener never reports closure.
                Ok(None) => std::future::pending::<()>().await,
                Ok(Some(conn)) => {
                    if self.failed > 0 {
                        tracing::info!(
                            "management API accepting connections again after {} failed accepts",
                            self.failed
                        );
                        self.failed = 0;
                    }
                    return Ok(Some(conn));
                }
                Err(e) => self.failed(e),
            }
        }
    }
}

/// A method call of any interface: dispatched by name.
#[derive(Debug, Deserialize)]
pub struct RawCall {
    method: String,
    #[serde(default)]
    parameters: Option<Value>,
}

type ReplyItem = zlink::service::ReplyStreamItem<Value, Infallible>;
type MonitorStream = Pin<Box<dyn Stream<Item = ReplyItem>>>;
type Handled = MethodReply<Value, MonitorStream, ApiError>;

struct L2tpService {
    requests: mpsc::Sender<ApiRequest>,
    events: broadcast::Sender<Event>,
    policy: Policy,
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

fn event_item(event: Event, continues: bool) -> ReplyItem {
    let v = serde_json::to_value(MonitorReply { event }).unwrap_or(Value::Null);
    (
        Ok(Reply::new(Some(v)).set_continues(Some(continues))),
        Vec::new(),
    )
}

/// The replies of a `Monitor` call: `subscribed`, then every event the
/// daemon publishes; `exiting` (the last reply) when the daemon goes away.
fn monitor_stream(rx: broadcast::Receiver<Event>) -> MonitorStream {
    let first = event_item(
        local_event("subscribed", "monitoring tunnel and session events".into()),
        true,
    );
    let rest = futures::stream::unfold(Some(rx), |state| async move {
        let mut rx = state?;
        Some(match rx.recv().await {
            Ok(ev) => (event_item(ev, true), Some(rx)),
            Err(broadcast::error::RecvError::Lagged(n)) => (
                event_item(
                    local_event(
                        "lagged",
                        format!("{n} events were lost: the monitor fell behind"),
                    ),
                    true,
                ),
                Some(rx),
            ),
            Err(broadcast::error::RecvError::Closed) => (
                event_item(local_event("exiting", "l2tpd is exiting".into()), false),
                None,
            ),
        })
    });
    Box::pin(futures::StreamExt::chain(
        futures::stream::iter([first]),
        rest,
    ))
}

impl L2tpService {
    async fn dispatch(
        &mut self,
        call: &Call<RawCall>,
        conn: &mut Connection<UnixSocket>,
    ) -> Handled {
        let raw = call.method();
        let params = raw
            .parameters
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        match raw.method.as_str() {
            "org.varlink.service.GetInfo" => {
                return MethodReply::Single(Some(serde_json::json!({
                    "vendor": "l2tpd",
                    "product": "l2tpd",
                    "version": env!("CARGO_PKG_VERSION"),
                    "url": "https://example.invalid/l2tpd",
                    "interfaces": ["org.varlink.service", l2tp_api::INTERFACE],
                })));
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
                        return MethodReply::Error(ApiError::InterfaceNotFound {
                            interface: iface.to_owned(),
                        });
                    }
                };
                return MethodReply::Single(Some(
                    serde_json::json!({ "description": description }),
                ));
            }
            _ => {}
        }
        let Some((iface, method)) = raw.method.rsplit_once('.') else {
            return MethodReply::Error(ApiError::MethodNotFound {
                method: raw.method.clone(),
            });
        };
        if iface != l2tp_api::INTERFACE {
            return MethodReply::Error(if iface == "org.varlink.service" {
                ApiError::MethodNotFound {
                    method: raw.method.clone(),
                }
            } else {
                ApiError::InterfaceNotFound {
                    interface: iface.to_owned(),
                }
            });
        }
        let Some(needed) = l2tp_api::access(method) else {
            return MethodReply::Error(ApiError::MethodNotFound {
                method: raw.method.clone(),
            });
        };
        let (uid, pid, access) = match conn.peer_credentials().await {
            Ok(c) => {
                let uid = c.unix_user_id().as_raw();
                let gids = std::iter::once(c.unix_primary_group_id().as_raw())
                    .chain(c.unix_supplementary_group_ids().iter().map(|g| g.as_raw()));
                (
                    uid,
                    c.process_id().as_raw_nonzero().get(),
                    self.policy.access(uid, gids),
                )
            }
            Err(e) if crate::fdlimit::is_exhaustion(&e) => {
                // SO_PEERPIDFD makes a descriptor: without it, no caller is known.
                crate::fdlimit::report_exhaustion("reading an API caller's credentials", &e);
                return MethodReply::Error(ApiError::failed(format!(
                    "l2tpd is out of file descriptors ({e}); try again later"
                )));
            }
            Err(e) => {
                tracing::warn!("API caller's credentials unknown: {e}");
                (u32::MAX, 0, None)
            }
        };
        let allowed = matches!(
            (needed, access),
            (_, Some(Access::ReadWrite)) | (Access::ReadOnly, Some(Access::ReadOnly))
        );
        if !allowed {
            tracing::warn!(uid, pid, method, "API call refused: permission denied");
            let description = if access.is_some() {
                format!("{method} changes the daemon: only root and system.api_group may call it")
            } else {
                format!("uid {uid} may not use the l2tpd API")
            };
            return MethodReply::Error(ApiError::PermissionDenied {
                method: method.to_owned(),
                description,
            });
        }
        if method == "Monitor" {
            if !call.more() {
                return MethodReply::Error(ApiError::ExpectedMore);
            }
            tracing::debug!(uid, pid, "API monitor subscribed");
            return MethodReply::Multi(monitor_stream(self.events.subscribe()));
        }
        let (reply, rx) = oneshot::channel();
        let req = ApiRequest {
            method: method.to_owned(),
            params,
            caller: format!("uid {uid} pid {pid}"),
            reply,
        };
        if self.requests.send(req).await.is_err() {
            return MethodReply::Error(ApiError::failed("l2tpd is shutting down"));
        }
        match rx.await {
            Ok(Ok(v)) => MethodReply::Single(Some(v)),
            Ok(Err(e)) => MethodReply::Error(e),
            Err(_) => MethodReply::Error(ApiError::failed("l2tpd is shutting down")),
        }
    }
}

impl Service<UnixSocket> for L2tpService {
    type MethodCall<'de> = RawCall;
    type ReplyParams<'ser>
        = Value
    where
        Self: 'ser;
    type ReplyStreamParams = Value;
    type ReplyStreamError = Infallible;
    type ReplyStream = MonitorStream;
    type ReplyError<'ser>
        = ApiError
    where
        Self: 'ser;
    type Upgrade = ();

    async fn handle<'ser>(
        &'ser mut self,
        call: &'ser Call<Self::MethodCall<'_>>,
        conn: &mut Connection<UnixSocket>,
        _fds: Vec<std::os::fd::OwnedFd>,
    ) -> HandleResult<Value, MonitorStream, ApiError> {
        (self.dispatch(call, conn).await, Vec::new())
    }
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
