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

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::body::{Meter, Metered};
use crate::estimate::Probe;
use crate::metrics::CloseReason;
use crate::Edge;

/// Smallest header bound hyper accepts (its minimum read buffer).
pub const MIN_HEADER_BYTES: usize = 8192;
/// Time a connection that is being closed for idleness gets to say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Shortest wait before the driver looks again at a busy connection.
const MIN_RECHECK: Duration = Duration::from_millis(10);

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

/// What the server tells its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// Finish in-flight requests, accept no more.
    Graceful,
    /// Drop the connection now.
    Abort,
}

/// Serves `edge` on `listener` until `shutdown` resolves.
pub async fn serve(
    edge: Arc<Edge>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
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
    let builder = Arc::new(builder);
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let max_connections = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop, stopping) = watch::channel(Stop::Running);
    let config = Arc::new(config);
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
        let _ = stream.set_nodelay(true);
        let probe = Probe::new(&stream, peer.ip()).map(Arc::new);
        let edge = Arc::clone(&edge);
        let builder = Arc::clone(&builder);
        let config = Arc::clone(&config);
        let tls = tls.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let metrics = Arc::clone(edge.metrics());
            metrics.connection_opened();
            let conn = Conn {
                edge: Arc::clone(&edge),
                peer: peer.ip(),
                probe: probe.clone(),
            };
            let why = match tls {
                None => {
                    let io = TokioIo::new(stream);
                    drive(io, conn, &builder, &config, accepted_at, stopping).await
                }
                Some(acceptor) => {
                    let deadline = accepted_at + config.header_timeout;
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let io = TokioIo::new(stream);
                            drive(io, conn, &builder, &config, accepted_at, stopping).await
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
            sample(&edge, probe.as_deref());
            drop(probe);
            tracing::debug!(%peer, reason = ?why, "connection closed");
            metrics.connection_closed(why);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(Stop::Graceful);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(config.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; dropping remaining connections");
        let _ = stop.send(Stop::Abort);
        let _ = tokio::time::timeout(CLOSE_GRACE, permits.acquire_many(all)).await;
    }
    Ok(())
}

/// One connection's activity, shared by its requests and its driver.
///
/// Requests only count themselves in and out here: nothing wakes the
/// driver per request. The driver's one timer looks at these when it
/// fires, and sets itself again for the next moment a limit could be due.
struct Activity {
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// When the connection was accepted: `idle_since` counts from here.
    accepted_at: Instant,
    /// Microseconds from `accepted_at` to when the last request in flight
    /// finished (0: none has).
    idle_since: AtomicU64,
    /// The connection speaks HTTP/2 (seen on its first request).
    h2: AtomicBool,
    /// Told once, when the request budget is reached.
    budget_reached: Notify,
}

impl Activity {
    fn new(accepted_at: Instant) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            accepted_at,
            idle_since: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            budget_reached: Notify::new(),
        }
    }

    /// Counts a request in; returns its guard and how many requests this
    /// connection has started, this one included.
    fn begin(self: &Arc<Self>, budget: u64, h2: bool) -> (InFlight, u64) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let started = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        if started == 1 && h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        if started == budget {
            self.budget_reached.notify_one();
        }
        (InFlight(Arc::clone(self)), started)
    }

    fn idle_since(&self) -> Instant {
        self.accepted_at + Duration::from_micros(self.idle_since.load(Ordering::SeqCst))
    }

    /// When a limit is next due, given how the connection is being closed
    /// (if it is); `None` while a request is in flight, when none can be.
    fn deadline(
        &self,
        closing: Option<(CloseReason, Instant)>,
        config: &ServerConfig,
    ) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let started = self.started.load(Ordering::SeqCst);
        Some(match closing {
            Some((_, since)) => since.max(self.idle_since()) + CLOSE_GRACE,
            None if started == 0 => self.accepted_at + config.header_timeout,
            // HTTP/2 streams have their own framing: only idleness counts.
            None if self.h2.load(Ordering::Relaxed) => self.idle_since() + config.idle_timeout,
            // HTTP/1.1: the next request's head is due within the header
            // deadline of the last response (slowloris on a kept-alive
            // connection), and the connection may idle no longer than its limit.
            None => self.idle_since() + config.idle_timeout.min(config.header_timeout),
        })
    }
}

/// A request in flight, until its response body is sent or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // Before the count drops: a driver that sees no request in flight
        // sees when the last one ended.
        let since = activity.accepted_at.elapsed().as_micros();
        activity
            .idle_since
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::SeqCst);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a connection's requests need to know about it.
struct Conn {
    edge: Arc<Edge>,
    peer: IpAddr,
    probe: Option<Arc<Probe>>,
}

/// Reads the connection's `TCP_INFO` into the edge's estimate, if there
/// is anything new in it.
fn sample(edge: &Edge, probe: Option<&Probe>) {
    if let Some(probe) = probe {
        if let Some(s) = probe.sample() {
            edge.record_connection(probe.peer(), &s);
        }
    }
}

/// What a response body carries along as it is sent: it keeps its request
/// counted as in flight, and takes a reading of the connection once it has
/// been handed to the socket (when enough has been sent since the last one
/// for it to count).
struct Tracker {
    _in_flight: InFlight,
    edge: Arc<Edge>,
    probe: Option<Arc<Probe>>,
    sent: u64,
}

impl Meter for Tracker {
    fn sent(&mut self, bytes: u64) {
        self.sent += bytes;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.probe.as_ref().is_some_and(|p| p.sent(self.sent)) {
            sample(&self.edge, self.probe.as_deref());
        }
    }
}

/// Serves one connection until it ends or a limit closes it.
async fn drive<I>(
    io: I,
    conn: Conn,
    builder: &auto::Builder<TokioExecutor>,
    config: &ServerConfig,
    accepted_at: Instant,
    mut stopping: watch::Receiver<Stop>,
) -> CloseReason
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(accepted_at));
    let service = {
        let activity = Arc::clone(&activity);
        let budget = config.max_requests_per_connection;
        service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let h2 = req.version() >= http::Version::HTTP_2;
            let (in_flight, started) = activity.begin(budget, h2);
            // HTTP/1.1 pipelining runs requests before the driver can react:
            // the last one in the budget says it closes, and hyper closes.
            let last = started >= budget && !h2;
            let edge = Arc::clone(&conn.edge);
            let peer = conn.peer;
            let probe = conn.probe.clone();
            // A new request means the client has taken the last response: the
            // moment to read what its bytes measured, before this choice is made.
            if probe.as_deref().is_some_and(Probe::due) {
                sample(&edge, probe.as_deref());
            }
            async move {
                // Boxed: hyper moves the service's future a few times before it
                // is polled, and the handler's is kilobytes.
                let handled = Box::pin(edge.handle_from(req, Some(peer)));
                let (mut parts, body) = handled.await.into_parts();
                if last {
                    parts.headers.insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                let tracker = Tracker {
                    _in_flight: in_flight,
                    edge,
                    probe,
                    sent: 0,
                };
                let body = Metered::new(body, tracker);
                Ok::<_, Infallible>(Response::from_parts(parts, body))
            }
        })
    };
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    // Why the connection is being closed, and since when.
    let mut closing: Option<(CloseReason, Instant)> = None;
    // The driver's one timer, checked only when it fires: requests never
    // touch it. It is never set past the earliest moment a limit could be
    // due: a deadline only moves later as requests come and go, and none is
    // shorter than `soonest` after a request ends.
    let soonest = config.idle_timeout.min(config.header_timeout);
    let timer = tokio::time::sleep_until(accepted_at + soonest);
    tokio::pin!(timer);
    let next_look = |closing: Option<(CloseReason, Instant)>, now: Instant| {
        activity.deadline(closing, config).unwrap_or_else(|| {
            // A request is in flight: no limit applies until it ends.
            let grace = if closing.is_some() {
                CLOSE_GRACE
            } else {
                soonest
            };
            // Never sooner than MIN_RECHECK: a zero timeout (possible for a
            // library caller; the configuration refuses it) must not spin.
            now + grace.min(soonest).max(MIN_RECHECK)
        })
    };
    let budget_reached = activity.budget_reached.notified();
    tokio::pin!(budget_reached);
    let mut budget_seen = false;
    // Why to start closing now, if a limit or the server says so.
    let mut close_for = match *stopping.borrow_and_update() {
        Stop::Running => None,
        Stop::Abort => return CloseReason::Shutdown,
        Stop::Graceful => Some(CloseReason::Shutdown),
    };
    loop {
        if let Some(why) = close_for.take().filter(|_| closing.is_none()) {
            connection.as_mut().graceful_shutdown();
            let now = Instant::now();
            closing = Some((why, now));
            timer.as_mut().reset(next_look(closing, now));
        }
        close_for = tokio::select! {
            biased;
            ended = connection.as_mut() => {
                let mut why = closing.map_or(CloseReason::Ended, |(why, _)| why);
                if let Err(e) = ended {
                    if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
                        why = CloseReason::Timeout;
                    }
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                // Pipelined requests may all have run inside this one poll.
                let started = activity.started.load(Ordering::SeqCst);
                if why == CloseReason::Ended && started >= config.max_requests_per_connection {
                    why = CloseReason::MaxRequests;
                }
                return why;
            }
            () = &mut timer => {
                let now = Instant::now();
                let at = next_look(closing, now);
                if at > now {
                    timer.as_mut().reset(at);
                    None
                } else if let Some((why, _)) = closing {
                    return why;
                } else {
                    Some(CloseReason::Timeout)
                }
            }
            () = &mut budget_reached, if !budget_seen => {
                // For HTTP/2 (HTTP/1.1's last response already said it closes).
                budget_seen = true;
                Some(CloseReason::MaxRequests)
            }
            changed = stopping.changed() => {
                if changed.is_err() {
                    // The server is gone: nothing will tell this connection to stop.
                    return CloseReason::Shutdown;
                }
                match *stopping.borrow_and_update() {
                    Stop::Running => None,
                    Stop::Abort => return CloseReason::Shutdown,
                    Stop::Graceful => Some(CloseReason::Shutdown),
                }
            }
        };
    }
}
