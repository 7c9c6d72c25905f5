//! The network side: one TCP port speaking HTTP/1.1 and HTTP/2 (h2c, or
//! ALPN over TLS when a certificate is configured).
//!
//! Limits keep slow or abusive clients from holding the node: a connection
//! cap (more wait in the kernel's backlog), a bound on request header bytes
//! (431 past it), a deadline for the first request (which covers the TLS
//! handshake, the protocol sniff and the headers, so a client dribbling
//! bytes is cut off), an idle deadline between requests, and a request
//! budget per connection. Each connection is driven by one task that
//! watches its own activity; shutdown stops accepting, lets in-flight
//! responses finish for a grace period, then drops what is left.
//!
//! Each connection also reads its own `TCP_INFO` ([`Probe`]) when a
//! response body has been handed to the socket and when it ends, for the
//! edge's per-client estimate of the link; each request is handled with
//! the peer's address so the estimate can be looked up.

pub mod conn;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::choose::probe::Probe;
use crate::metrics::CloseReason;
use crate::Edge;
use conn::{Conn, Limits, Stop, CLOSE_GRACE};

/// Smallest header bound hyper accepts (its minimum read buffer).
pub const MIN_HEADER_BYTES: usize = 8192;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Open connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a new connection has to complete TLS and send its first request's headers.
    pub header_timeout: Duration,
    /// Time a connection may sit with no request in flight before it is closed.
    pub idle_timeout: Duration,
    /// Requests served on one connection before it is closed (HTTP/1.1
    /// `Connection: close`, HTTP/2 GOAWAY); clients reconnect.
    pub max_requests_per_connection: u64,
    /// Bound on one request's header bytes (HTTP/1.1 request line and
    /// headers; HTTP/2 header list), at least [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Time in-flight responses get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Serve TLS (HTTP/1.1 and HTTP/2 by ALPN) instead of cleartext.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_requests_per_connection: 1000,
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(15),
            tls: None,
        }
    }
}

impl ServerConfig {
    fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_requests: self.max_requests_per_connection,
        }
    }
}

/// What every connection of a server shares.
struct Shared {
    edge: Arc<Edge>,
    builder: auto::Builder<TokioExecutor>,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves `edge` on `listener` until `shutdown` resolves.
pub async fn serve(
    edge: Arc<Edge>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        edge,
        builder: builder(&config),
        limits: config.limits(),
        tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
    });
    let max_connections = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(Stop::Running);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let accepted_at = Instant::now();
        let shared = Arc::clone(&shared);
        let stopping = stopping.clone();
        tokio::spawn(async move {
            connection(&shared, stream, peer, accepted_at, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    drain(&stop, &permits, max_connections, config.shutdown_grace).await;
    Ok(())
}

/// One builder for every connection: HTTP/1.1 and HTTP/2 with the configured bounds.
fn builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's driver keeps the header deadline (`Activity::deadline`):
        // hyper's own would arm and drop a timer on every request.
        .header_read_timeout(None)
        .max_buf_size(config.max_header_bytes.max(MIN_HEADER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Serves one accepted connection (after its TLS handshake, if any) to its end.
async fn connection(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    accepted_at: Instant,
    stopping: watch::Receiver<Stop>,
) {
    let _ = stream.set_nodelay(true);
    let probe = Probe::new(&stream, peer.ip()).map(Arc::new);
    let metrics = Arc::clone(shared.edge.metrics());
    metrics.connection_opened();
    let conn = Conn {
        edge: Arc::clone(&shared.edge),
        peer: peer.ip(),
        probe: probe.clone(),
    };
    let (builder, limits) = (&shared.builder, shared.limits);
    let why = match &shared.tls {
        None => {
            let io = TokioIo::new(stream);
            conn::drive(io, conn, builder, limits, accepted_at, stopping).await
        }
        Some(acceptor) => {
            let deadline = accepted_at + limits.header_timeout;
            match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let io = TokioIo::new(stream);
                    conn::drive(io, conn, builder, limits, accepted_at, stopping).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    CloseReason::Tls
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    CloseReason::Tls
                }
            }
        }
    };
    // The client has taken what it wanted and the busy clock has
    // stopped: the fullest reading of a one-response connection.
    // (The probe's duplicate is the socket's last descriptor; it closes here.)
    conn::sample(&shared.edge, probe.as_deref());
    drop(probe);
    tracing::debug!(%peer, reason = ?why, "connection closed");
    metrics.connection_closed(why);
}

/// Tells every connection to finish, waits the grace period for them, then
/// drops what is left.
async fn drain(
    stop: &watch::Sender<Stop>,
    permits: &Semaphore,
    max_connections: usize,
    grace: Duration,
) {
    let _ = stop.send(Stop::Graceful);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; dropping remaining connections");
        let _ = stop.send(Stop::Abort);
        let _ = tokio::time::timeout(CLOSE_GRACE, permits.acquire_many(all)).await;
    }
}
