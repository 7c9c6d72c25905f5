//! Prometheus metrics: every name the edge exports is defined here.
//!
//! Label values come from closed sets (route, status class, reason, store
//! operation are enums; tiers are the first [`MAX_TIER_LABELS`] well-formed
//! names seen, the rest count as `other`), so no request can grow the
//! exposition. Counters are atomics reached through a small map: the hot
//! path takes a lock only to find its cell. Rendered as text format 0.0.4
//! by hand: a per-edge registry keeps tests (many edges in one process)
//! apart, which the global recorder of the `metrics` crate would not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::body::{Body, Metered};

pub const REQUESTS: &str = "lowband_edge_requests_total";
pub const RESPONSE_BYTES: &str = "lowband_edge_response_bytes_total";
pub const BYTES_SAVED: &str = "lowband_edge_bytes_saved_total";
pub const SELECTIONS: &str = "lowband_edge_selections_total";
pub const STORE_SECONDS: &str = "lowband_edge_store_seconds";
pub const CONNECTIONS_OPEN: &str = "lowband_edge_connections_open";
pub const CONNECTIONS_CLOSED: &str = "lowband_edge_connections_closed_total";
pub const CONNECTION_SAMPLES: &str = "lowband_edge_connection_samples_total";

/// Distinct tier names kept as label values.
pub const MAX_TIER_LABELS: usize = 8;
/// Upper bounds of the store latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What kind of route answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteLabel {
    Asset,
    Playlist,
    Object,
    Api,
    Catalog,
    Health,
    Ready,
    Metrics,
    Admin,
    Other,
}

impl RouteLabel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Playlist => "playlist",
            Self::Object => "object",
            Self::Api => "api",
            Self::Catalog => "catalog",
            Self::Health => "health",
            Self::Ready => "ready",
            Self::Metrics => "metrics",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }
}

/// A store call whose latency is measured (for reads, until the first byte can flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreOp {
    Head,
    Get,
    Manifest,
    Index,
}

impl StoreOp {
    const ALL: [Self; 4] = [Self::Head, Self::Get, Self::Manifest, Self::Index];

    fn as_str(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Get => "get",
            Self::Manifest => "manifest",
            Self::Index => "index",
        }
    }
}

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseReason {
    /// The client finished, or the connection failed.
    Ended,
    /// No request in time: slow headers or an idle keep-alive.
    Timeout,
    /// It served its share of requests.
    MaxRequests,
    /// The TLS handshake failed or took too long.
    Tls,
    Shutdown,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ended => "ended",
            Self::Timeout => "timeout",
            Self::MaxRequests => "max_requests",
            Self::Tls => "tls",
            Self::Shutdown => "shutdown",
        }
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A tier's label value, interned: counting a request allocates nothing.
type Label = Arc<str>;

/// Route, tier label and status class.
type TrafficKey = (RouteLabel, Label, &'static str);

/// Requests and bytes of one (route, tier, status class).
#[derive(Default)]
struct Traffic {
    requests: AtomicU64,
    bytes: Arc<AtomicU64>,
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The edge's metrics registry.
pub struct Metrics {
    tiers: Mutex<Vec<Label>>,
    /// The labels of no tier and of a tier past the first few.
    none: Label,
    other: Label,
    traffic: Mutex<BTreeMap<TrafficKey, Arc<Traffic>>>,
    saved: Mutex<BTreeMap<Label, Arc<AtomicU64>>>,
    selections: Mutex<BTreeMap<(Label, &'static str), Arc<AtomicU64>>>,
    /// Per [`StoreOp`], in [`StoreOp::ALL`]'s order: atomics, no lock.
    store: [Histogram; StoreOp::ALL.len()],
    connections_open: AtomicI64,
    closed: Mutex<BTreeMap<CloseReason, Arc<AtomicU64>>>,
    samples: Mutex<BTreeMap<&'static str, Arc<AtomicU64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            tiers: Mutex::default(),
            none: "none".into(),
            other: "other".into(),
            traffic: Mutex::default(),
            saved: Mutex::default(),
            selections: Mutex::default(),
            store: Default::default(),
            connections_open: AtomicI64::default(),
            closed: Mutex::default(),
            samples: Mutex::default(),
        }
    }
}

impl Metrics {
    /// The label value for a tier name: itself if it is one of the first
    /// few well-formed names seen, else `other`; `none` for no tier.
    pub fn tier_label(&self, tier: Option<&str>) -> Label {
        let Some(tier) = tier else {
            return Arc::clone(&self.none);
        };
        let well_formed = !tier.is_empty()
            && tier.len() <= 16
            && tier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !well_formed {
            return Arc::clone(&self.other);
        }
        let Ok(mut known) = self.tiers.lock() else {
            return Arc::clone(&self.other);
        };
        if let Some(label) = known.iter().find(|t| ***t == *tier) {
            return Arc::clone(label);
        }
        if known.len() < MAX_TIER_LABELS {
            let label: Label = tier.into();
            known.push(Arc::clone(&label));
            return label;
        }
        Arc::clone(&self.other)
    }

    /// Counts a response; returns its body wrapped to count the bytes sent.
    pub fn response(
        &self,
        route: RouteLabel,
        tier: Option<&str>,
        status: StatusCode,
        body: Body,
    ) -> Body {
        let key = (route, self.tier_label(tier), status_class(status));
        let traffic = match self.traffic.lock() {
            Ok(mut map) => Arc::clone(map.entry(key).or_default()),
            Err(_) => return body,
        };
        traffic.requests.fetch_add(1, Ordering::Relaxed);
        http_body_util::BodyExt::boxed_unsync(Metered::new(body, Arc::clone(&traffic.bytes)))
    }

    /// Bytes a client did not have to fetch: the source's size less what was sent.
    pub fn saved(&self, tier: Option<&str>, bytes: u64) {
        let tier = self.tier_label(tier);
        add(&self.saved, tier, bytes);
    }

    /// One variant chosen, with the reason its tier was.
    pub fn selection(&self, tier: Option<&str>, reason: &'static str) {
        let tier = self.tier_label(tier);
        add(&self.selections, (tier, reason), 1);
    }

    /// Runs a store call, recording how long it took.
    pub async fn time_store<T>(&self, op: StoreOp, call: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        self.store[op as usize].observe(start.elapsed());
        out
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, why: CloseReason) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
        add(&self.closed, why, 1);
    }

    /// One `TCP_INFO` sample taken, by what the estimate made of it
    /// ([`crate::estimate::Recorded::as_str`]).
    pub fn connection_sample(&self, outcome: &'static str) {
        add(&self.samples, outcome, 1);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            REQUESTS,
            "counter",
            "Responses sent, by route, client tier and status class.",
        );
        if let Ok(map) = self.traffic.lock() {
            let labelled: Vec<_> = map
                .iter()
                .map(|((route, tier, class), t)| {
                    let labels = format!(
                        "route=\"{}\",tier=\"{tier}\",status=\"{class}\"",
                        route.as_str()
                    );
                    (labels, t)
                })
                .collect();
            for (labels, t) in &labelled {
                sample(
                    &mut out,
                    REQUESTS,
                    labels,
                    t.requests.load(Ordering::Relaxed),
                );
            }
            header(
                &mut out,
                RESPONSE_BYTES,
                "counter",
                "Body bytes sent, by route, client tier and status class.",
            );
            for (labels, t) in &labelled {
                sample(
                    &mut out,
                    RESPONSE_BYTES,
                    labels,
                    t.bytes.load(Ordering::Relaxed),
                );
            }
        }
        counters(
            &mut out,
            BYTES_SAVED,
            "Source bytes minus bytes sent, over whole variants served (200), by client tier.",
            &self.saved,
            |tier| format!("tier=\"{tier}\""),
        );
        counters(
            &mut out,
            SELECTIONS,
            "Variants chosen, by client tier and the signal that decided the tier.",
            &self.selections,
            |(tier, reason)| format!("tier=\"{tier}\",reason=\"{reason}\""),
        );
        header(
            &mut out,
            STORE_SECONDS,
            "histogram",
            "Object store call latency (reads: until the first byte can flow), by operation.",
        );
        {
            let used = StoreOp::ALL
                .iter()
                .zip(&self.store)
                .filter(|(_, h)| h.count.load(Ordering::Relaxed) > 0);
            for (op, h) in used {
                let op = op.as_str();
                for (bound, n) in BUCKETS.iter().zip(&h.buckets) {
                    let labels = format!("op=\"{op}\",le=\"{bound}\"");
                    sample(
                        &mut out,
                        &format!("{STORE_SECONDS}_bucket"),
                        &labels,
                        n.load(Ordering::Relaxed),
                    );
                }
                let count = h.count.load(Ordering::Relaxed);
                sample(
                    &mut out,
                    &format!("{STORE_SECONDS}_bucket"),
                    &format!("op=\"{op}\",le=\"+Inf\""),
                    count,
                );
                let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(out, "{STORE_SECONDS}_sum{{op=\"{op}\"}} {sum}");
                sample(
                    &mut out,
                    &format!("{STORE_SECONDS}_count"),
                    &format!("op=\"{op}\""),
                    count,
                );
            }
        }
        header(
            &mut out,
            CONNECTIONS_OPEN,
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(
            out,
            "{CONNECTIONS_OPEN} {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        counters(
            &mut out,
            CONNECTIONS_CLOSED,
            "Client connections closed, by reason.",
            &self.closed,
            |why| format!("reason=\"{}\"", why.as_str()),
        );
        counters(
            &mut out,
            CONNECTION_SAMPLES,
            "TCP_INFO samples of client connections, by what the link estimate made of them.",
            &self.samples,
            |outcome| format!("outcome=\"{outcome}\""),
        );
        out
    }
}

fn add<K: Ord>(map: &Mutex<BTreeMap<K, Arc<AtomicU64>>>, key: K, n: u64) {
    if let Ok(mut map) = map.lock() {
        map.entry(key).or_default().fetch_add(n, Ordering::Relaxed);
    }
}

/// One counter family: its header, then a sample per key of `map`.
fn counters<K>(
    out: &mut String,
    name: &str,
    help: &str,
    map: &Mutex<BTreeMap<K, Arc<AtomicU64>>>,
    labels: impl Fn(&K) -> String,
) {
    header(out, name, "counter", help);
    if let Ok(map) = map.lock() {
        for (key, n) in map.iter() {
            sample(out, name, &labels(key), n.load(Ordering::Relaxed));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn counts_requests_bytes_and_renders_them() {
        let m = Metrics::default();
        let body = m.response(
            RouteLabel::Asset,
            Some("2g"),
            StatusCode::PARTIAL_CONTENT,
            crate::body::full("hello"),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        let _ = m.response(
            RouteLabel::Object,
            None,
            StatusCode::NOT_FOUND,
            crate::body::empty(),
        );
        m.saved(Some("2g"), 1000);
        m.selection(Some("2g"), "ect");
        m.time_store(StoreOp::Get, async {}).await;
        m.connection_opened();
        m.connection_opened();
        m.connection_closed(CloseReason::Timeout);
        let text = m.render();
        for line in [
            "lowband_edge_requests_total{route=\"asset\",tier=\"2g\",status=\"2xx\"} 1",
            "lowband_edge_requests_total{route=\"object\",tier=\"none\",status=\"4xx\"} 1",
            "lowband_edge_response_bytes_total{route=\"asset\",tier=\"2g\",status=\"2xx\"} 5",
            "lowband_edge_bytes_saved_total{tier=\"2g\"} 1000",
            "lowband_edge_selections_total{tier=\"2g\",reason=\"ect\"} 1",
            "lowband_edge_store_seconds_bucket{op=\"get\",le=\"+Inf\"} 1",
            "lowband_edge_store_seconds_count{op=\"get\"} 1",
            "lowband_edge_connections_open 1",
            "lowband_edge_connections_closed_total{reason=\"timeout\"} 1",
            "# TYPE lowband_edge_store_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn store_histograms_are_indexed_by_operation() {
        for (i, op) in StoreOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
    }

    #[test]
    fn tier_labels_stay_bounded() {
        let m = Metrics::default();
        for i in 0..100 {
            m.tier_label(Some(&format!("t{i}")));
        }
        assert_eq!(&*m.tier_label(Some("t3")), "t3");
        assert_eq!(&*m.tier_label(Some("t50")), "other");
        assert_eq!(&*m.tier_label(Some("a\"b")), "other");
        assert_eq!(&*m.tier_label(Some(&"x".repeat(40))), "other");
        assert_eq!(&*m.tier_label(None), "none");
    }
}
