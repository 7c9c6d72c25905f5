//! A cache node's metrics (`lowband_cache_*`), registered in its edge's
//! registry beside the edge's own (`crate::metrics`).
//!
//! Counters are `prometheus-client` cells the cache increments as it works;
//! the hit ratio and the directory's usage are read when `/metrics` is
//! scraped.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::disk::CacheDir;
use super::fill::FillError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Lookup {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Source {
    source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Why {
    why: &'static str,
}

/// The cache's counters, for `/metrics`.
pub struct CacheStats {
    lookups: Family<Lookup, Counter>,
    /// Series of `lookups`, made at start (so all five are always shown)
    /// and held, so that counting one hashes nothing.
    pub(super) hits: Counter,
    pub(super) misses: Counter,
    pub(super) coalesced: Counter,
    pub(super) passes: Counter,
    /// Answered 404 from the keys the upstream lately said it lacks.
    pub(super) absent: Counter,
    bytes: Family<Source, Counter>,
    cache_bytes: Counter,
    upstream_bytes: Counter,
    upstream_requests: Counter,
    errors: Family<Kind, Counter>,
    stale: Family<Why, Counter>,
    evictions: Counter,
    evicted_bytes: Counter,
}

impl Default for CacheStats {
    fn default() -> Self {
        let lookups = Family::<Lookup, Counter>::default();
        let lookup = |result| lookups.get_or_create_owned(&Lookup { result });
        let bytes = Family::<Source, Counter>::default();
        let from = |source| bytes.get_or_create_owned(&Source { source });
        Self {
            hits: lookup("hit"),
            misses: lookup("miss"),
            coalesced: lookup("coalesced"),
            passes: lookup("pass"),
            absent: lookup("absent"),
            cache_bytes: from("cache"),
            upstream_bytes: from("upstream"),
            lookups,
            bytes,
            upstream_requests: Counter::default(),
            errors: Family::default(),
            stale: Family::default(),
            evictions: Counter::default(),
            evicted_bytes: Counter::default(),
        }
    }
}

impl CacheStats {
    /// A request for `bytes` of an object is served from the cache directory.
    pub fn hit(&self, bytes: u64) {
        self.hits.inc();
        self.cache_bytes.inc_by(bytes);
    }

    pub fn upstream_request(&self) {
        self.upstream_requests.inc();
    }

    pub fn upstream_bytes_total(&self) -> u64 {
        self.upstream_bytes.get()
    }

    pub fn upstream_bytes(&self, n: u64) {
        self.upstream_bytes.inc_by(n);
    }

    pub fn upstream_error(&self, e: &FillError) {
        let kind = match e {
            FillError::Upstream(e) => e.kind(),
            FillError::Corrupt { .. } => "corrupt",
            FillError::LengthChanged { .. } => "length_changed",
            FillError::Disk(_) => "disk",
        };
        self.upstream_error_kind(kind);
    }

    pub fn upstream_error_kind(&self, kind: &'static str) {
        self.errors.get_or_create(&Kind { kind }).inc();
    }

    /// A manifest or index served past its TTL, and why.
    pub fn stale(&self, why: &'static str) {
        self.stale.get_or_create(&Why { why }).inc();
    }

    pub fn evicted(&self, bytes: u64) {
        self.evictions.inc();
        self.evicted_bytes.inc_by(bytes);
    }

    /// Registers the cache's metrics; `dir`'s usage is read at each scrape.
    pub fn register(&self, registry: &mut Registry, dir: Arc<CacheDir>) {
        registry.register(
            "lowband_cache_requests",
            "Object lookups by outcome: hit (on disk), miss (started a fill), coalesced (joined one), pass (read through, not kept), absent (404: the upstream said it lacks the key within the last 10 s)",
            self.lookups.clone(),
        );
        registry.register_collector(Box::new(Usage {
            dir,
            lookups: [&self.hits, &self.misses, &self.coalesced, &self.passes].map(Counter::clone),
        }));
        registry.register(
            "lowband_cache_bytes",
            "Bytes of objects sent from the cache directory, and read from the upstream",
            self.bytes.clone(),
        );
        registry.register(
            "lowband_cache_upstream_requests",
            "Requests made to the upstream (objects, manifests, the index)",
            self.upstream_requests.clone(),
        );
        registry.register(
            "lowband_cache_upstream_errors",
            "Upstream failures by kind (timeout, status, failed, corrupt, length_changed, disk)",
            self.errors.clone(),
        );
        registry.register(
            "lowband_cache_stale",
            "Manifests and indexes served past their TTL: while revalidating, or because the upstream failed",
            self.stale.clone(),
        );
        registry.register(
            "lowband_cache_evictions",
            "Objects evicted to stay within the byte budget",
            self.evictions.clone(),
        );
        registry.register(
            "lowband_cache_evicted_bytes",
            "Bytes evicted to stay within the byte budget",
            self.evicted_bytes.clone(),
        );
    }
}

/// The gauges computed at each scrape: the hit ratio and what the directory holds.
struct Usage {
    dir: Arc<CacheDir>,
    /// Hits first, then the other lookups that count in the ratio.
    lookups: [Counter; 4],
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage")
            .field("dir", &self.dir.root())
            .finish_non_exhaustive()
    }
}

impl Collector for Usage {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let [hits, rest @ ..] = self.lookups.each_ref().map(Counter::get);
        let lookups = hits + rest.iter().sum::<u64>();
        let ratio = if lookups == 0 {
            0.0
        } else {
            hits as f64 / lookups as f64
        };
        gauge(
            &mut encoder,
            "lowband_cache_hit_ratio",
            "Share of object lookups answered from disk since start.",
            &ConstGauge::new(ratio),
        )?;
        let (objects, bytes) = self.dir.usage();
        gauge(
            &mut encoder,
            "lowband_cache_objects",
            "Objects in the cache directory.",
            &ConstGauge::new(objects),
        )?;
        gauge(
            &mut encoder,
            "lowband_cache_size_bytes",
            "Bytes of objects in the cache directory.",
            &ConstGauge::new(bytes),
        )?;
        gauge(
            &mut encoder,
            "lowband_cache_budget_bytes",
            "The byte budget (--cache-size).",
            &ConstGauge::new(self.dir.budget()),
        )
    }
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &ConstGauge<N>,
) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let metric = encoder.encode_descriptor(name, help, None, value.metric_type())?;
    value.encode(metric)
}
