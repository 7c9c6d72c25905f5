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
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cache::Cache;
use crate::http::body::{Body, Meter, Metered};

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

/// The status class's slot (below [`STATUS_CLASSES`]) and label value.
fn status_class(status: StatusCode) -> (usize, &'static str) {
    match status.as_u16() {
        100..=199 => (0, "1xx"),
        200..=299 => (1, "2xx"),
        300..=399 => (2, "3xx"),
        400..=499 => (3, "4xx"),
        _ => (4, "5xx"),
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

/// A response body's bytes, counted as they are sent.
impl Meter for Counter {
    fn sent(&mut self, bytes: u64) {
        self.inc_by(bytes);
    }
}

/// A family whose series the hot path finds by a small index (a route, a
/// tier's place, a status class...) rather than by its labels: a family's
/// map hashes its label set with SipHash on every lookup, and the two
/// lookups of a response cost ~1000 instructions, ~5% of a request
/// (callgrind, `benches/cache-vs-edge.sh` with INSTRUCTIONS=1). A series is
/// made in the family the first time its index is used (so the exposition
/// shows only series that counted); an index past the table takes the
/// family's own lookup.
struct Indexed<L, M, C = fn() -> M> {
    family: Family<L, M, C>,
    cells: Box<[OnceLock<M>]>,
}

impl<L, M, C> Indexed<L, M, C>
where
    L: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    fn new(family: Family<L, M, C>, len: usize) -> Self {
        Self {
            family,
            cells: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The series at `index`, whose labels are `labels()`.
    fn get(&self, index: usize, labels: impl FnOnce() -> L) -> M {
        match self.cells.get(index) {
            Some(cell) => cell
                .get_or_init(|| self.family.get_or_create_owned(&labels()))
                .clone(),
            None => self.family.get_or_create_owned(&labels()),
        }
    }
}

/// Tier label values: none, other, then the first [`MAX_TIER_LABELS`] seen.
const TIER_SLOTS: usize = MAX_TIER_LABELS + 2;
/// Selection reasons given a slot each (the rest are looked up by label).
const REASON_SLOTS: usize = 16;
const ROUTES: usize = RouteLabel::Other as usize + 1;
const STATUS_CLASSES: usize = 5;

/// The edge's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    tiers: Mutex<Vec<Label>>,
    /// The labels of no tier and of a tier past the first few.
    none: Label,
    other: Label,
    reasons: Mutex<Vec<&'static str>>,
    requests: Indexed<Traffic, Counter>,
    response_bytes: Indexed<Traffic, Counter>,
    saved: Indexed<Tier, Counter>,
    selections: Indexed<Selection, Counter>,
    /// By [`StoreOp`], in [`StoreOp::ALL`]'s order.
    store: Indexed<Op, Histogram>,
    connections_open: Gauge,
    closed: Family<Closed, Counter>,
    samples: Family<Sample, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let traffic = ROUTES * TIER_SLOTS * STATUS_CLASSES;
        let store: Family<Op, Histogram> = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        let metrics = Self {
            registry: Registry::default(),
            tiers: Mutex::default(),
            none: "none".into(),
            other: "other".into(),
            reasons: Mutex::default(),
            requests: Indexed::new(Family::default(), traffic),
            response_bytes: Indexed::new(Family::default(), traffic),
            saved: Indexed::new(Family::default(), TIER_SLOTS),
            selections: Indexed::new(Family::default(), TIER_SLOTS * REASON_SLOTS),
            store: Indexed::new(store, StoreOp::ALL.len()),
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
            self.requests.family.clone(),
        );
        r.register(
            RESPONSE_BYTES,
            "Body bytes sent, by route, client tier and status class",
            self.response_bytes.family.clone(),
        );
        r.register(
            BYTES_SAVED,
            "Source bytes minus bytes sent, over whole variants served (200), by client tier",
            self.saved.family.clone(),
        );
        r.register(
            SELECTIONS,
            "Variants chosen, by client tier and the signal that decided the tier",
            self.selections.family.clone(),
        );
        r.register(
            STORE_SECONDS,
            "Object store call latency (reads: until the first byte can flow), by operation",
            self.store.family.clone(),
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
        self.tier(tier).1
    }

    /// A tier's slot (below [`TIER_SLOTS`]) and label value.
    fn tier(&self, tier: Option<&str>) -> (usize, Label) {
        let Some(tier) = tier else {
            return (0, Arc::clone(&self.none));
        };
        let other = (1, Arc::clone(&self.other));
        let well_formed = !tier.is_empty()
            && tier.len() <= 16
            && tier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !well_formed {
            return other;
        }
        let Ok(mut known) = self.tiers.lock() else {
            return other;
        };
        if let Some(i) = known.iter().position(|t| **t == *tier) {
            return (i + 2, Arc::clone(&known[i]));
        }
        if known.len() < MAX_TIER_LABELS {
            let label: Label = tier.into();
            known.push(Arc::clone(&label));
            return (known.len() + 1, label);
        }
        other
    }

    /// A selection reason's slot: its place among those seen (past
    /// [`REASON_SLOTS`], the label is looked up instead).
    fn reason_slot(&self, reason: &'static str) -> usize {
        let Ok(mut known) = self.reasons.lock() else {
            return REASON_SLOTS;
        };
        if let Some(i) = known.iter().position(|r| *r == reason) {
            return i;
        }
        if known.len() < REASON_SLOTS {
            known.push(reason);
            return known.len() - 1;
        }
        REASON_SLOTS
    }

    /// Counts a response; returns its body wrapped to count the bytes sent.
    pub fn response(
        &self,
        route: RouteLabel,
        tier: Option<&str>,
        status: StatusCode,
        body: Body,
    ) -> Body {
        let (slot, tier) = self.tier(tier);
        let (class, status) = status_class(status);
        let index = (route as usize * TIER_SLOTS + slot) * STATUS_CLASSES + class;
        let labels = || Traffic {
            route,
            tier: Arc::clone(&tier),
            status,
        };
        self.requests.get(index, labels).inc();
        let bytes = self.response_bytes.get(index, labels);
        http_body_util::BodyExt::boxed_unsync(Metered::new(body, bytes))
    }

    /// Bytes a client did not have to fetch: the source's size less what was sent.
    pub fn saved(&self, tier: Option<&str>, bytes: u64) {
        let (slot, tier) = self.tier(tier);
        self.saved.get(slot, || Tier { tier }).inc_by(bytes);
    }

    /// One variant chosen, with the reason its tier was.
    pub fn selection(&self, tier: Option<&str>, reason: &'static str) {
        let (slot, tier) = self.tier(tier);
        let index = match self.reason_slot(reason) {
            REASON_SLOTS => usize::MAX,
            r => slot * REASON_SLOTS + r,
        };
        self.selections
            .get(index, || Selection { tier, reason })
            .inc();
    }

    /// Runs a store call, recording how long it took.
    pub async fn time_store<T>(&self, op: StoreOp, call: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        self.store
            .get(op as usize, || Op { op })
            .observe(start.elapsed().as_secs_f64());
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
    /// ([`crate::choose::estimate::Recorded::as_str`]).
    pub fn connection_sample(&self, outcome: &'static str) {
        self.samples.get_or_create(&Sample { outcome }).inc();
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
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
            crate::http::body::full("hello"),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        let _ = m.response(
            RouteLabel::Object,
            None,
            StatusCode::NOT_FOUND,
            crate::http::body::empty(),
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
