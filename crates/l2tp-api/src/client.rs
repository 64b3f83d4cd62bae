//! A client of the interface (tokio).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zlink::Call;

use crate::error::ApiError;
use crate::types::{Event, MonitorReply, NoParams};

/// Why a call did not return a reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket could not be connected to (no daemon, wrong path, no permission).
    #[error("cannot connect to {}: {source}", path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The daemon answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The connection broke or the reply could not be understood.
    #[error("talking to l2tpd: {0}")]
    Protocol(String),
}

impl ClientError {
    /// True when the daemon could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// True when connecting failed for lack of permission on the socket.
    pub fn is_connect_permission_denied(&self) -> bool {
        matches!(self, Self::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied)
    }
}

fn protocol(e: zlink::Error) -> ClientError {
    match e {
        // The standard org.varlink.service errors, which zlink hands over on their own.
        zlink::Error::VarlinkService(e) => {
            let v = serde_json::to_value(&e).unwrap_or_default();
            match serde_json::from_value::<ApiError>(v) {
                Ok(api) => ClientError::Api(api),
                Err(_) => ClientError::Protocol(e.to_string()),
            }
        }
        other => ClientError::Protocol(other.to_string()),
    }
}

#[derive(Debug, Serialize)]
struct Method<'a, P> {
    method: String,
    parameters: &'a P,
}

/// A connection to l2tpd's API socket.
#[derive(Debug)]
pub struct Client {
    conn: zlink::tokio::unix::Connection,
}

impl Client {
    /// Connect to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_owned(),
                source,
            })?;
        let stream = zlink::tokio::unix::Stream::try_from(stream).map_err(protocol)?;
        Ok(Self {
            conn: zlink::Connection::new(stream),
        })
    }

    /// Call `method` (without the `io.l2tpd.` prefix, or a fully qualified
    /// name such as `org.varlink.service.GetInfo`) with `params`.
    pub async fn call<P, R>(&mut self, method: &str, params: &P) -> Result<R, ClientError>
    where
        P: Serialize + std::fmt::Debug,
        R: DeserializeOwned + std::fmt::Debug,
    {
        self.send(method, params, false).await?;
        self.receive().await
    }

    async fn send<P>(&mut self, method: &str, params: &P, more: bool) -> Result<(), ClientError>
    where
        P: Serialize + std::fmt::Debug,
    {
        let method = if method.contains('.') {
            method.to_owned()
        } else {
            format!("{}.{method}", crate::INTERFACE)
        };
        let call = Call::new(Method {
            method,
            parameters: params,
        })
        .set_more(more);
        self.conn.send_call(&call, vec![]).await.map_err(protocol)
    }

    async fn receive<R>(&mut self) -> Result<R, ClientError>
    where
        R: DeserializeOwned + std::fmt::Debug,
    {
        let (reply, _fds) = self
            .conn
            .receive_reply::<R, ApiError>()
            .await
            .map_err(protocol)?;
        let reply = reply?;
        match reply.into_parameters() {
            Some(p) => Ok(p),
            // A reply without parameters is an empty object.
            None => serde_json::from_value(serde_json::json!({}))
                .map_err(|e| ClientError::Protocol(format!("reply without parameters: {e}"))),
        }
    }

    /// Start `Monitor`: returns once the daemon confirmed the subscription
    /// (its first event, of kind `subscribed`), which is returned too; read
    /// the following events with `Monitor::next`.
    pub async fn monitor(mut self) -> Result<(Monitor, Event), ClientError> {
        self.send("Monitor", &NoParams {}, true).await?;
        let first: MonitorReply = self.receive().await?;
        Ok((Monitor { client: self }, first.event))
    }
}

/// A running `Monitor` call.
#[derive(Debug)]
pub struct Monitor {
    client: Client,
}

impl Monitor {
    /// The next event; an error when the daemon went away.
    pub async fn next(&mut self) -> Result<Event, ClientError> {
        let r: MonitorReply = self.client.receive().await?;
        Ok(r.event)
    }
}
