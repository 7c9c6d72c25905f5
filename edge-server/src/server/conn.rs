//! One connection, driven within its limits by one task.
//!
//! Requests only count themselves in and out ([`Activity`]); the driver
//! keeps one timer for the header, idle and closing deadlines, closes the
//! connection when its request budget is spent or the server stops, and
//! each response body takes a reading of the connection's `TCP_INFO` once
//! it has been handed to the socket.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use hyper::service::service_fn;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::choose::probe::Probe;
use crate::http::body::{Meter, Metered};
use crate::metrics::CloseReason;
use crate::Edge;

/// Time a connection that is being closed for idleness gets to say goodbye.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Shortest wait before the driver looks again at a busy connection.
const MIN_RECHECK: Duration = Duration::from_millis(10);

/// The limits a connection is driven within (from the server's configuration).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Time to the first request's headers, and between a response and the
    /// next request's headers on HTTP/1.1.
    pub header_timeout: Duration,
    /// Time with no request in flight before the connection is closed.
    pub idle_timeout: Duration,
    /// Requests served before the connection is closed.
    pub max_requests: u64,
}

/// What the server tells its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Running,
    /// Finish in-flight requests, accept no more.
    Graceful,
    /// Drop the connection now.
    Abort,
}

impl Stop {
    /// Why to start closing, if at all (`Err`: close now).
    fn close_for(self) -> Result<Option<CloseReason>, CloseReason> {
        match self {
            Stop::Running => Ok(None),
            Stop::Abort => Err(CloseReason::Shutdown),
            Stop::Graceful => Ok(Some(CloseReason::Shutdown)),
        }
    }
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
        limits: &Limits,
    ) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let started = self.started.load(Ordering::SeqCst);
        Some(match closing {
            Some((_, since)) => since.max(self.idle_since()) + CLOSE_GRACE,
            None if started == 0 => self.accepted_at + limits.header_timeout,
            // HTTP/2 streams have their own framing: only idleness counts.
            None if self.h2.load(Ordering::Relaxed) => self.idle_since() + limits.idle_timeout,
            // HTTP/1.1: the next request's head is due within the header
            // deadline of the last response (slowloris on a kept-alive
            // connection), and the connection may idle no longer than its limit.
            None => self.idle_since() + limits.idle_timeout.min(limits.header_timeout),
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
pub(super) struct Conn {
    pub edge: Arc<Edge>,
    pub peer: IpAddr,
    pub probe: Option<Arc<Probe>>,
}

/// Reads the connection's `TCP_INFO` into the edge's estimate, if there
/// is anything new in it.
pub(super) fn sample(edge: &Edge, probe: Option<&Probe>) {
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
pub(super) async fn drive<I>(
    io: I,
    conn: Conn,
    builder: &auto::Builder<TokioExecutor>,
    limits: Limits,
    accepted_at: Instant,
    mut stopping: watch::Receiver<Stop>,
) -> CloseReason
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(accepted_at));
    let connection = builder.serve_connection(io, service(conn, &activity, limits.max_requests));
    tokio::pin!(connection);
    // Why the connection is being closed, and since when.
    let mut closing: Option<(CloseReason, Instant)> = None;
    // The driver's one timer, checked only when it fires: requests never
    // touch it. It is never set past the earliest moment a limit could be
    // due: a deadline only moves later as requests come and go, and none is
    // shorter than `soonest` after a request ends.
    let soonest = limits.idle_timeout.min(limits.header_timeout);
    let timer = tokio::time::sleep_until(accepted_at + soonest);
    tokio::pin!(timer);
    let next_look = |closing, now| next_look(&activity, &limits, closing, now);
    let budget_reached = activity.budget_reached.notified();
    tokio::pin!(budget_reached);
    let mut budget_seen = false;
    // Why to start closing now, if a limit or the server says so.
    let mut close_for = match stopping.borrow_and_update().close_for() {
        Ok(why) => why,
        Err(now) => return now,
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
            ended = connection.as_mut() => return ended_why(ended, closing, &activity, limits),
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
                match stopping.borrow_and_update().close_for() {
                    Ok(why) => why,
                    Err(now) => return now,
                }
            }
        };
    }
}

/// Each request of the connection: counted in `activity`, handled by the
/// edge with the peer's address, its body metered until it is sent.
fn service(
    conn: Conn,
    activity: &Arc<Activity>,
    budget: u64,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = Response<Metered<Tracker>>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<Metered<Tracker>>, Infallible>> + Send,
> + Clone {
    let activity = Arc::clone(activity);
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
            Ok::<_, Infallible>(Response::from_parts(parts, Metered::new(body, tracker)))
        }
    })
}

/// When the driver should look at the connection next: when a limit is
/// next due, or while a request is in flight (when none can be) a little later.
fn next_look(
    activity: &Activity,
    limits: &Limits,
    closing: Option<(CloseReason, Instant)>,
    now: Instant,
) -> Instant {
    let soonest = limits.idle_timeout.min(limits.header_timeout);
    activity.deadline(closing, limits).unwrap_or_else(|| {
        let grace = if closing.is_some() {
            CLOSE_GRACE
        } else {
            soonest
        };
        // Never sooner than MIN_RECHECK: a zero timeout (possible for a
        // library caller; the configuration refuses it) must not spin.
        now + grace.min(soonest).max(MIN_RECHECK)
    })
}

/// Why a connection that hyper finished with ended.
fn ended_why(
    ended: Result<(), Box<dyn std::error::Error + Send + Sync>>,
    closing: Option<(CloseReason, Instant)>,
    activity: &Activity,
    limits: Limits,
) -> CloseReason {
    let mut why = closing.map_or(CloseReason::Ended, |(why, _)| why);
    if let Err(e) = ended {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout)
        {
            why = CloseReason::Timeout;
        }
        tracing::debug!(error = %e, "connection ended with an error");
    }
    // Pipelined requests may all have run inside this one poll.
    let started = activity.started.load(Ordering::SeqCst);
    if why == CloseReason::Ended && started >= limits.max_requests {
        why = CloseReason::MaxRequests;
    }
    why
}
