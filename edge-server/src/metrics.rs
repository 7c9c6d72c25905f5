//! Prometheus metrics: every name the edge exports is defined here (a cache
//! node's own in `cache::stats`, registered beside them).
//!
//! Each edge has its own `prometheus-client` registry, so many edges in one
//! process (the tests) stay apart, and `/metrics` renders it as text format
//! 0.0.4. Label values come from closed sets (route, status class, reason,
//! store operation are enums; tiers are the first [`MAX_TIER_LABELS`]
//! well-formed names seen, the rest count as `other`), so no request can
//! grow the exposition.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use http::StatusCode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::body::{Body, Meter, Metered};
use crate::cache::Cache;

/// Registered without the `_total` that the text format adds to a counter's name.
const REQUESTS: &str = "lowband_edge_requests";
const RESPONSE_BYTES: &str = "lowband_edge_response_bytes";
const BYTES_SAVED: &str = "lowband_edge_bytes_saved";
const SELECTIONS: &str = "lowband_edge_selections";
const STORE_SECONDS: &str = "lowband_edge_store_seconds";
const CONNECTIONS_OPEN: &str = "lowband_edge_connections_open";
const CONNECTIONS_CLOSED: &str = "lowband_edge_connections_closed";
const CONNECTION_SAMPLES: &str = "lowband_edge_connection_samples";

/// Distinct tier names kept as label values.
pub const MAX_TIER_LABELS: usize = 8;
/// Upper bounds of the store latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What kind of route answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// The label enums are written as their lower-case names.
macro_rules! label_value {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    )*};
}
label_value!(RouteLabel, StoreOp, CloseReason);

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

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Traffic {
    route: RouteLabel,
    tier: Label,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Tier {
    tier: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Selection {
    tier: Label,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Op {
    op: StoreOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Closed {
    reason: CloseReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Sample {
    outcome: &'static str,
}

type Histograms = Family<Op, Histogram, fn() -> Histogram>;

/// A response body's bytes, counted as they are sent.
impl Meter for Counter {
    fn sent(&mut self, bytes: u64) {
        self.inc_by(bytes);
    }
}

/// The edge's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    tiers: Mutex<Vec<Label>>,
    /// The labels of no tier and of a tier past the first few.
    none: Label,
    other: Label,
    requests: Family<Traffic, Counter>,
    response_bytes: Family<Traffic, Counter>,
    saved: Family<Tier, Counter>,
    selections: Family<Selection, Counter>,
    store: Histograms,
    /// Each operation's series, in [`StoreOp::ALL`]'s order, once it was
    /// first timed: a store call then finds its histogram without hashing.
    store_ops: [OnceLock<Histogram>; StoreOp::ALL.len()],
    connections_open: Gauge,
    closed: Family<Closed, Counter>,
    samples: Family<Sample, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Registry::default(),
            tiers: Mutex::default(),
            none: "none".into(),
            other: "other".into(),
            requests: Family::default(),
            response_bytes: Family::default(),
            saved: Family::default(),
            selections: Family::default(),
            store: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            store_ops: Default::default(),
            connections_open: Gauge::default(),
            closed: Family::default(),
            samples: Family::default(),
        };
        metrics.registered()
    }
}

impl Metrics {
    /// A cache node's metrics: the edge's, and its cache's beside them.
    pub fn with_cache(cache: &Cache) -> Self {
        let mut metrics = Self::default();
        cache.register_metrics(&mut metrics.registry);
        metrics
    }

    /// Registers every family (the registry shares their cells).
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            REQUESTS,
            "Responses sent, by route, client tier and status class",
            self.requests.clone(),
        );
        r.register(
            RESPONSE_BYTES,
            "Body bytes sent, by route, client tier and status class",
            self.response_bytes.clone(),
        );
        r.register(
            BYTES_SAVED,
            "Source bytes minus bytes sent, over whole variants served (200), by client tier",
            self.saved.clone(),
        );
        r.register(
            SELECTIONS,
            "Variants chosen, by client tier and the signal that decided the tier",
            self.selections.clone(),
        );
        r.register(
            STORE_SECONDS,
            "Object store call latency (reads: until the first byte can flow), by operation",
            self.store.clone(),
        );
        r.register(
            CONNECTIONS_OPEN,
            "Client connections open now",
            self.connections_open.clone(),
        );
        r.register(
            CONNECTIONS_CLOSED,
            "Client connections closed, by reason",
            self.closed.clone(),
        );
        r.register(
            CONNECTION_SAMPLES,
            "TCP_INFO samples of client connections, by what the link estimate made of them",
            self.samples.clone(),
        );
        self
    }

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
        let labels = Traffic {
            route,
            tier: self.tier_label(tier),
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).inc();
        let bytes = self.response_bytes.get_or_create_owned(&labels);
        http_body_util::BodyExt::boxed_unsync(Metered::new(body, bytes))
    }

    /// Bytes a client did not have to fetch: the source's size less what was sent.
    pub fn saved(&self, tier: Option<&str>, bytes: u64) {
        let tier = self.tier_label(tier);
        self.saved.get_or_create(&Tier { tier }).inc_by(bytes);
    }

    /// One variant chosen, with the reason its tier was.
    pub fn selection(&self, tier: Option<&str>, reason: &'static str) {
        let tier = self.tier_label(tier);
        self.selections
            .get_or_create(&Selection { tier, reason })
            .inc();
    }

    /// Runs a store call, recording how long it took.
    pub async fn time_store<T>(&self, op: StoreOp, call: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        let histogram =
            self.store_ops[op as usize].get_or_init(|| self.store.get_or_create_owned(&Op { op }));
        histogram.observe(start.elapsed().as_secs_f64());
        out
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub fn connection_closed(&self, why: CloseReason) {
        self.connections_open.dec();
        self.closed.get_or_create(&Closed { reason: why }).inc();
    }

    /// One `TCP_INFO` sample taken, by what the estimate made of it
    /// ([`crate::estimate::Recorded::as_str`]).
    pub fn connection_sample(&self, outcome: &'static str) {
        self.samples.get_or_create(&Sample { outcome }).inc();
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            // Writing to a String fails only if a metric's encoder does.
            tracing::error!(error = %e, "cannot render the metrics");
        }
        out
    }
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
            "# TYPE lowband_edge_requests_total counter",
            "# HELP lowband_edge_requests_total Responses sent, by route, client tier and status class.",
            "# TYPE lowband_edge_connections_open gauge",
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
