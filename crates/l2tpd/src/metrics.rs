//! Metrics in the Prometheus text format (version 0.0.4, or OpenMetrics 1.0
//! when a scraper asks for it), encoded by `prometheus-client`.
//!
//! One renderer serves both paths: the daemon loop takes a [`Snapshot`]
//! (O(tunnels): the per-type message totals add up the live tunnels' counts;
//! the per-tunnel series are only built when asked for) and [`render`]s it;
//! the API call `Metrics` returns the text, and the HTTP endpoint
//! (`[system] metrics_listen`, [`listen`]) sends its requests to the loop
//! through a bounded queue and serves the answer from a thread of its own.
//!
//! HTTP bounds: [`MAX_CONNECTIONS`] connections at once (further ones are
//! closed at once), request heads of at most [`MAX_REQUEST`] bytes (else
//! 431), a request whole within [`REQUEST_TIMEOUT`] of the connection, at
//! most [`QUEUE`] scrapes waiting for the loop (else 503), the loop's answer
//! within [`RENDER_TIMEOUT`] (else 503), the reply written within
//! [`WRITE_TIMEOUT`]. One request per connection (`Connection: close`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use l2tp_proto::endpoint::{EndpointCounters, MessageCounters};
use l2tp_proto::wire::MessageType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most HTTP connections served at once; further ones are closed unanswered.
pub(crate) const MAX_CONNECTIONS: usize = 8;
/// Largest request head (request line and headers) read, in bytes.
pub(crate) const MAX_REQUEST: usize = 4096;
/// Time a client has to send its whole request head, from its connection.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the daemon loop has to answer a scrape.
pub(crate) const RENDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to read the reply.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapes waiting for the daemon loop at most.
pub(crate) const QUEUE: usize = 4;

/// The exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), which
    /// node_exporter's textfile collector also reads.
    Prometheus,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`), for scrapers
    /// that ask for it in `Accept`.
    OpenMetrics,
}

impl Format {
    /// The HTTP `Content-Type` of this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A scrape from the HTTP endpoint, answered by the daemon loop with the
/// rendered text.
#[derive(Debug)]
pub(crate) struct Request {
    /// The format the scraper asked for.
    pub format: Format,
    /// Where the text goes.
    pub reply: oneshot::Sender<String>,
}

/// Kernel data-plane counters of a tunnel (`L2TP_ATTR_STATS`,
/// include/uapi/linux/l2tp.h).
#[derive(Debug, Clone, Default)]
pub(crate) struct KernelCounters {
    /// Data packets sent.
    pub tx_packets: u64,
    /// Data bytes sent.
    pub tx_bytes: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Data packets received.
    pub rx_packets: u64,
    /// Data bytes received.
    pub rx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
}

/// One tunnel's series (only with per-tunnel metrics).
#[derive(Debug, Clone, Default)]
pub(crate) struct TunnelSnapshot {
    /// The tunnel's name (the `[tunnel.NAME]`, or the name l2tpd gave a
    /// peer's tunnel); escaped by the encoder as a label value.
    pub name: String,
    /// Our Assigned Tunnel ID (u16, RFC 2661 §4.4.3).
    pub id: u16,
    /// The control connection is established.
    pub established: bool,
    /// Calls of the tunnel.
    pub sessions: u64,
    /// Control messages received (all types).
    pub rx_messages: u64,
    /// Received messages that were malformed or illegal in their state.
    pub rx_bad_messages: u64,
    /// Control messages sent (all types, first transmissions).
    pub tx_messages: u64,
    /// Control message retransmissions.
    pub retransmits: u64,
    /// HELLOs sent (RFC 2661 §6.5).
    pub tx_hellos: u64,
    /// The kernel tunnel's counters, when there is one and it answered.
    pub kernel: Option<KernelCounters>,
}

/// Everything one scrape shows, taken by the daemon loop.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// l2tpd's version (label of `l2tpd_build_info`).
    pub version: String,
    /// Start of the process, seconds since the Unix epoch.
    pub start_time_secs: f64,
    /// Tunnels in the core (any state).
    pub tunnels: u64,
    /// Half-open tunnels (a peer's SCCRQ answered, no SCCCN yet).
    pub half_open_tunnels: u64,
    /// Calls over all tunnels.
    pub sessions: u64,
    /// UDP sockets of tunnels (besides the listening one).
    pub tunnel_sockets: u64,
    /// Tunnel ids of a previous run still answered with StopCCN.
    pub stale_tunnels: u64,
    /// The core's counters since start (never reset).
    pub counters: EndpointCounters,
    /// Control messages by type since start.
    pub messages: MessageCounters,
    /// Datagrams dropped because the listening socket's queue was full.
    pub listen_queue_drops: u64,
    /// Datagrams dropped because the tunnel sockets' queue was full.
    pub tunnel_queue_drops: u64,
    /// Per-tunnel series; `None` unless asked for.
    pub per_tunnel: Option<Vec<TunnelSnapshot>>,
}

/// The message types of RFC 2661 §3.2 (codes 1..=16 without the reserved
/// 5 and 13): the fixed values of the `type` label.
fn message_types() -> impl Iterator<Item = (usize, &'static str)> {
    (1..17usize).filter_map(|i| MessageType(i as u16).name().map(|n| (i, n)))
}

/// Render a snapshot. Never fails (writing to a `String` cannot).
pub(crate) fn render(s: Snapshot, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(s));
    let mut out = String::new();
    let r = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    if let Err(e) = r {
        tracing::warn!("encoding the metrics failed: {e}");
    }
    out
}

/// Write one unlabelled series.
fn one(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    m: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let me = enc.encode_descriptor(name, help, unit, m.metric_type())?;
    m.encode(me)
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    one(enc, name, help, None, &ConstCounter::new(v))
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    one(
        enc,
        name,
        help,
        None,
        &ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)),
    )
}

/// A family of one series per tunnel.
fn per_tunnel<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    tunnels: &[TunnelSnapshot],
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: prometheus_client::metrics::MetricType,
    value: impl Fn(&TunnelSnapshot) -> Option<M>,
) -> Result<(), std::fmt::Error> {
    let mut fam = enc.encode_descriptor(name, help, unit, kind)?;
    for t in tunnels {
        if let Some(m) = value(t) {
            let id = t.id.to_string();
            let labels = [("tunnel", t.name.as_str()), ("id", id.as_str())];
            m.encode(fam.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::MetricType as T;
        let e = &mut enc;
        {
            let mut m =
                e.encode_descriptor("l2tpd_build", "l2tpd's version (value 1).", None, T::Info)?;
            m.encode_info(&[("version", self.version.as_str())])?;
        }
        one(
            e,
            "l2tpd_start_time",
            "Start time of the l2tpd process since the Unix epoch.",
            Some(&Unit::Seconds),
            &ConstGauge::new(self.start_time_secs),
        )?;
        gauge(e, "l2tpd_tunnels", "Tunnels in any state.", self.tunnels)?;
        gauge(
            e,
            "l2tpd_half_open_tunnels",
            "Tunnels set up by peers whose SCCCN has not arrived (refusals included).",
            self.half_open_tunnels,
        )?;
        gauge(
            e,
            "l2tpd_sessions",
            "Sessions (calls) over all tunnels.",
            self.sessions,
        )?;
        gauge(
            e,
            "l2tpd_tunnel_sockets",
            "UDP sockets of tunnels, besides the listening socket.",
            self.tunnel_sockets,
        )?;
        gauge(
            e,
            "l2tpd_stale_tunnels",
            "Tunnel ids of a previous run still answered with StopCCN.",
            self.stale_tunnels,
        )?;
        {
            let mut fam = e.encode_descriptor(
                "l2tpd_control_messages_received",
                "Control messages received by message type (RFC 2661 section 3.2); result bad: malformed or illegal in its state.",
                None,
                T::Counter,
            )?;
            for (i, name) in message_types() {
                let bad = self.messages.rx_bad_by_type[i];
                let good = self.messages.rx_by_type[i].saturating_sub(bad);
                for (result, v) in [("good", good), ("bad", bad)] {
                    let labels = [("type", name), ("result", result)];
                    ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut fam = e.encode_descriptor(
                "l2tpd_control_messages_sent",
                "Control messages sent by message type (first transmissions).",
                None,
                T::Counter,
            )?;
            for (i, name) in message_types() {
                let labels = [("type", name)];
                ConstCounter::new(self.messages.tx_by_type[i])
                    .encode(fam.encode_family(&labels)?)?;
            }
        }
        let c = &self.counters;
        let counters: [(&str, &str, u64); 22] = [
            (
                "l2tpd_control_frames_received",
                "Control messages received, ZLBs included.",
                c.total_rcvd_control_frames,
            ),
            (
                "l2tpd_bad_frames_received",
                "Datagrams that could not be decoded.",
                c.bad_rcvd_frames,
            ),
            (
                "l2tpd_wrong_version_frames",
                "Datagrams with an L2TP version other than 2.",
                c.wrong_version_frames,
            ),
            (
                "l2tpd_unexpected_data_frames",
                "Data messages that reached the control path.",
                c.unexpected_data_frames,
            ),
            (
                "l2tpd_no_matching_tunnel_id_discards",
                "Control messages for a tunnel id we do not have.",
                c.no_matching_tunnel_id_discards,
            ),
            (
                "l2tpd_mismatched_peer_discards",
                "Control messages from an address other than the tunnel's peer.",
                c.mismatched_peer_discards,
            ),
            (
                "l2tpd_tunnels_refused",
                "Tunnels set up by peers refused by policy.",
                c.tunnels_refused,
            ),
            (
                "l2tpd_tunnels_lost",
                "Tunnels torn down because the peer stopped answering.",
                c.tunnels_lost,
            ),
            (
                "l2tpd_auth_failures",
                "Tunnel authentication failures (RFC 2661 section 5.1.1).",
                c.auth_fails,
            ),
            (
                "l2tpd_illegal_messages",
                "Control messages malformed or illegal in their state.",
                c.illegal_messages,
            ),
            (
                "l2tpd_retransmits",
                "Control message retransmissions.",
                c.retransmits,
            ),
            (
                "l2tpd_tie_breakers_won",
                "Crossed SCCRQs resolved in our favour (RFC 2661 section 4.4.3).",
                c.tie_breakers_won,
            ),
            (
                "l2tpd_tie_breakers_lost",
                "Crossed SCCRQs where our tunnel was discarded.",
                c.tie_breakers_lost,
            ),
            (
                "l2tpd_half_open_drops",
                "SCCRQs dropped unanswered at the half-open bounds.",
                c.half_open_drops,
            ),
            (
                "l2tpd_sccrq_bad_ns_drops",
                "SCCRQs dropped because their Ns was not 0.",
                c.sccrq_bad_ns_drops,
            ),
            (
                "l2tpd_tunnel_limit_refusals",
                "SCCRQs refused with StopCCN 2/4 at max_tunnels.",
                c.tunnel_limit_refusals,
            ),
            (
                "l2tpd_calls_refused",
                "Peers' new calls (ICRQ / OCRQ) refused with a CDN by admission.",
                c.calls_refused,
            ),
            (
                "l2tpd_undecided_calls",
                "Peers' new calls left undecided, refused with CDN 4 at their set-up deadline.",
                c.undecided_calls,
            ),
            (
                "l2tpd_peer_port_changes",
                "SCCRPs accepted from another UDP port of the peer (RFC 2661 section 8.1).",
                c.peer_port_changes,
            ),
            (
                "l2tpd_unknown_tunnel_stopccns",
                "StopCCNs sent statelessly for tunnels we do not have.",
                c.unknown_tunnel_stopccns,
            ),
            (
                "l2tpd_unknown_tunnel_zlbs",
                "ZLBs sent statelessly for StopCCNs of tunnels we do not have.",
                c.unknown_tunnel_zlbs,
            ),
            (
                "l2tpd_unknown_tunnel_answers_suppressed",
                "Answers to unknown tunnels held back by the rate limit.",
                c.unknown_tunnel_answers_suppressed,
            ),
        ];
        for (name, help, v) in counters {
            counter(e, name, help, v)?;
        }
        counter(
            e,
            "l2tpd_listen_queue_drops",
            "Datagrams dropped because the listening socket's receive queue was full.",
            self.listen_queue_drops,
        )?;
        counter(
            e,
            "l2tpd_tunnel_queue_drops",
            "Datagrams dropped because the tunnel sockets' receive queue was full.",
            self.tunnel_queue_drops,
        )?;
        if let Some(ts) = &self.per_tunnel {
            per_tunnel(
                e,
                ts,
                "l2tpd_tunnel_established",
                "1 when the tunnel's control connection is established.",
                None,
                T::Gauge,
                |t| Some(ConstGauge::new(i64::from(t.established))),
            )?;
            per_tunnel(
                e,
                ts,
                "l2tpd_tunnel_sessions",
                "Sessions (calls) of the tunnel.",
                None,
                T::Gauge,
                |t| {
                    Some(ConstGauge::new(
                        i64::try_from(t.sessions).unwrap_or(i64::MAX),
                    ))
                },
            )?;
            type Field = fn(&TunnelSnapshot) -> u64;
            let fields: [(&str, &str, Field); 5] = [
                (
                    "l2tpd_tunnel_control_messages_received",
                    "Control messages received on the tunnel.",
                    |t| t.rx_messages,
                ),
                (
                    "l2tpd_tunnel_bad_control_messages_received",
                    "Control messages received on the tunnel that were malformed or illegal in their state.",
                    |t| t.rx_bad_messages,
                ),
                (
                    "l2tpd_tunnel_control_messages_sent",
                    "Control messages sent on the tunnel (first transmissions).",
                    |t| t.tx_messages,
                ),
                (
                    "l2tpd_tunnel_retransmits",
                    "Control message retransmissions on the tunnel.",
                    |t| t.retransmits,
                ),
                (
                    "l2tpd_tunnel_hellos_sent",
                    "HELLOs sent on the tunnel.",
                    |t| t.tx_hellos,
                ),
            ];
            for (name, help, f) in fields {
                per_tunnel(e, ts, name, help, None, T::Counter, |t| {
                    Some(ConstCounter::new(f(t)))
                })?;
            }
            type KField = fn(&KernelCounters) -> u64;
            let kernel: [(&str, &str, Option<Unit>, KField); 6] = [
                (
                    "l2tpd_tunnel_data_received",
                    "Data bytes the kernel received on the tunnel.",
                    Some(Unit::Bytes),
                    |k| k.rx_bytes,
                ),
                (
                    "l2tpd_tunnel_data_sent",
                    "Data bytes the kernel sent on the tunnel.",
                    Some(Unit::Bytes),
                    |k| k.tx_bytes,
                ),
                (
                    "l2tpd_tunnel_data_packets_received",
                    "Data packets the kernel received on the tunnel.",
                    None,
                    |k| k.rx_packets,
                ),
                (
                    "l2tpd_tunnel_data_packets_sent",
                    "Data packets the kernel sent on the tunnel.",
                    None,
                    |k| k.tx_packets,
                ),
                (
                    "l2tpd_tunnel_data_receive_errors",
                    "Data receive errors of the kernel tunnel.",
                    None,
                    |k| k.rx_errors,
                ),
                (
                    "l2tpd_tunnel_data_send_errors",
                    "Data send errors of the kernel tunnel.",
                    None,
                    |k| k.tx_errors,
                ),
            ];
            for (name, help, unit, f) in kernel {
                per_tunnel(e, ts, name, help, unit.as_ref(), T::Counter, |t| {
                    t.kernel.as_ref().map(|k| ConstCounter::new(f(k)))
                })?;
            }
        }
        Ok(())
    }
}

/// Bind the metrics endpoint (at start, so that a bad address stops l2tpd
/// with a clear error) and serve it from a thread of its own. Scrapes go to
/// the daemon loop through the returned bounded queue.
pub(crate) fn listen(addr: SocketAddr) -> anyhow::Result<mpsc::Receiver<Request>> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding the metrics endpoint (system.metrics_listen) {addr}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("l2tpd-metrics".into())
        .spawn(move || serve(listener, tx))
        .context("starting the metrics thread")?;
    tracing::info!(listen = %local, "metrics endpoint listening");
    Ok(rx)
}

fn serve(listener: std::net::TcpListener, tx: mpsc::Sender<Request>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("metrics endpoint: cannot start its runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("metrics endpoint: {e}");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and the like: wait instead of spinning.
                    tracing::warn!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Past the limit the connection is closed unanswered.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let tx = tx.clone();
            tokio::task::spawn_local(async move {
                handle(stream, &tx).await;
                drop(permit);
            });
        }
    });
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Metrics(Format),
    /// An HTTP status and its reason phrase.
    Error(u16, &'static str),
}

/// Parse a request head (request line and headers, without the body).
fn parse_head(head: &[u8]) -> Asked {
    let Ok(text) = std::str::from_utf8(head) else {
        return Asked::Error(400, "Bad Request");
    };
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Asked::Error(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") {
        return Asked::Error(400, "Bad Request");
    }
    if method != "GET" {
        return Asked::Error(405, "Method Not Allowed");
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return Asked::Error(404, "Not Found");
    }
    let openmetrics = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept") && v.contains("application/openmetrics-text")
        })
    });
    Asked::Metrics(if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    })
}

/// Read a request head of at most [`MAX_REQUEST`] bytes; `Err` carries the
/// status to answer (431 when too long), `Ok(None)` a client that went away.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Result<Option<Vec<u8>>, Asked> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if len == buf.len() {
            return Err(Asked::Error(431, "Request Header Fields Too Large"));
        }
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => len += n,
        }
    }
}

async fn handle(mut stream: tokio::net::TcpStream, tx: &mpsc::Sender<Request>) {
    let asked = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Asked::Error(408, "Request Timeout"),
        Ok(Ok(None)) => return,
        Ok(Ok(Some(head))) => parse_head(&head),
        Ok(Err(a)) => a,
    };
    let (status, reason, content_type, body) = match asked {
        Asked::Error(code, reason) => (
            code,
            reason,
            "text/plain; charset=utf-8",
            format!("{code} {reason}\n"),
        ),
        Asked::Metrics(format) => {
            let (reply, answer) = oneshot::channel();
            let busy = (
                503,
                "Service Unavailable",
                "text/plain; charset=utf-8",
                "503 l2tpd is busy\n".to_owned(),
            );
            if tx.try_send(Request { format, reply }).is_err() {
                busy
            } else {
                match tokio::time::timeout(RENDER_TIMEOUT, answer).await {
                    Ok(Ok(text)) => (200, "OK", format.content_type(), text),
                    _ => busy,
                }
            }
        }
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Asked::Metrics(Format::Prometheus)
        );
        assert_eq!(
            parse_head(
                b"GET /metrics?x=1 HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0"
            ),
            Asked::Metrics(Format::OpenMetrics)
        );
        assert_eq!(
            parse_head(b"POST /metrics HTTP/1.1"),
            Asked::Error(405, "Method Not Allowed")
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1"),
            Asked::Error(404, "Not Found")
        );
        assert_eq!(
            parse_head(b"GET /metrics"),
            Asked::Error(400, "Bad Request")
        );
        assert_eq!(parse_head(b"\xff\xfe"), Asked::Error(400, "Bad Request"));
    }

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn render_names_types_and_labels() {
        let mut s = Snapshot {
            version: "1.2.3".into(),
            tunnels: 3,
            ..Snapshot::default()
        };
        s.counters.retransmits = 7;
        s.messages.rx_by_type[1] = 5;
        s.messages.rx_bad_by_type[1] = 2;
        s.messages.tx_by_type[14] = 4;
        let text = render(s.clone(), Format::Prometheus);
        assert!(
            text.contains("# TYPE l2tpd_retransmits_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE l2tpd_tunnels gauge\n"));
        assert_eq!(sample(&text, "l2tpd_retransmits_total"), Some(7.0));
        assert_eq!(sample(&text, "l2tpd_tunnels"), Some(3.0));
        assert_eq!(
            sample(
                &text,
                r#"l2tpd_control_messages_received_total{type="SCCRQ",result="good"}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"l2tpd_control_messages_received_total{type="SCCRQ",result="bad"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"l2tpd_control_messages_sent_total{type="CDN"}"#),
            Some(4.0)
        );
        assert!(text.contains(r#"l2tpd_build_info{version="1.2.3"} 1"#));
        // The reserved types 5 and 13 and the ZLB (0) are no label values.
        assert_eq!(
            text.matches("l2tpd_control_messages_sent_total{").count(),
            14
        );
        assert!(!text.contains("tunnel=\""));
        let om = render(s, Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("l2tpd_retransmits_total 7\n"));
    }

    #[test]
    fn tunnel_names_are_escaped() {
        let s = Snapshot {
            per_tunnel: Some(vec![TunnelSnapshot {
                name: "a\"b\\c\nd".into(),
                id: 9,
                sessions: 2,
                ..TunnelSnapshot::default()
            }]),
            ..Snapshot::default()
        };
        let text = render(s, Format::Prometheus);
        assert_eq!(
            sample(
                &text,
                r#"l2tpd_tunnel_sessions{tunnel="a\"b\\c\nd",id="9"}"#
            ),
            Some(2.0),
            "{text}"
        );
        // No kernel counters: no kernel series.
        assert!(!text.contains("l2tpd_tunnel_data_received_bytes_total{"));
    }

    #[test]
    fn default_output_does_not_grow_with_the_tunnels() {
        let none = render(Snapshot::default(), Format::Prometheus);
        let many = Snapshot {
            tunnels: 10_000,
            sessions: 200_000,
            ..Snapshot::default()
        };
        let many = render(many, Format::Prometheus);
        assert_eq!(many.lines().count(), none.lines().count());
        assert!(many.len() < 16 * 1024, "{} bytes", many.len());
    }

    #[test]
    fn per_tunnel_output_is_linear_and_fits_an_api_reply() {
        let tunnels = |n: u16| Snapshot {
            per_tunnel: Some(
                (1..=n)
                    .map(|id| TunnelSnapshot {
                        name: format!("tunnel-{id}"),
                        id,
                        kernel: Some(KernelCounters::default()),
                        ..TunnelSnapshot::default()
                    })
                    .collect(),
            ),
            ..Snapshot::default()
        };
        let base = render(Snapshot::default(), Format::Prometheus)
            .lines()
            .count();
        let lines = |n| render(tunnels(n), Format::Prometheus).lines().count() - base;
        // 13 series per tunnel, plus the HELP and TYPE lines of the 13 families.
        assert_eq!(lines(1), 13 + 26);
        assert_eq!(lines(10_000), 13 * 10_000 + 26);
        // The API's replies are capped at 32 MiB.
        assert!(render(tunnels(10_000), Format::Prometheus).len() < 32 << 20);
    }
}
