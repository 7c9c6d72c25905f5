//! The edge: what answering a request needs, shared by every connection.
//!
//! [`Edge`] holds the store (and on a cache node its cache), the manifests
//! as last read, the headers made per object key, the metrics, and what
//! each client's connections measured. It answers requests through the
//! route table ([`crate::routes`]): [`Edge::handle`] takes a plain
//! `http::Request` and returns a response, so tests drive it without
//! sockets; [`crate::server`] wires it to hyper.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Request;
use lowband_catalog::manifest::Manifest;
use lowband_catalog::tokens::Tokens;
use lowband_catalog::Store;

use crate::cache::Cache;
use crate::choose::estimate::{Estimate, Estimator, TcpSample};
use crate::choose::signals::{client_tier, Reason, Signals};
use crate::http::error::EdgeError;
use crate::manifests::Manifests;
use crate::metrics::Metrics;
use crate::objects::files::OpenFiles;
use crate::objects::prepared::KeyedHeaders;
use crate::objects::send::Source;

/// Settings an operator gives the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Tier for clients that send no signal at all.
    pub default_tier: String,
    /// How long a manifest is used before the store is asked again.
    pub manifest_ttl: Duration,
    /// Bearer tokens that may call the admin routes (none: no admin routes).
    pub admin_tokens: Tokens,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            default_tier: "3g".into(),
            manifest_ttl: Duration::from_secs(5),
            admin_tokens: Tokens::default(),
        }
    }
}

/// The address a request came from, as a request extension, for callers of
/// [`Edge::handle`] (the server passes it to [`Edge::handle_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The edge: a store, its manifests and the configuration.
pub struct Edge {
    pub(crate) store: Store,
    /// Open objects of a `file://` store, read without object_store.
    files: Option<OpenFiles>,
    /// On a cache node: its cache (then `store` and `files` are the cache directory).
    cache: Option<Arc<Cache>>,
    pub(crate) config: EdgeConfig,
    pub(crate) manifests: Manifests,
    /// The fixed headers of objects asked for by key (immutable, like them).
    pub(crate) object_headers: KeyedHeaders,
    metrics: Arc<Metrics>,
    /// What each client's connections measured, for clients without hints.
    estimator: Mutex<Estimator>,
}

impl Edge {
    pub fn new(store: Store, config: EdgeConfig) -> Self {
        Self::build(store, None, Metrics::default(), config)
    }

    /// A cache node: objects from `cache`'s directory, fetched from its
    /// upstream when missing; manifests and the index revalidated there.
    pub fn with_cache(cache: Arc<Cache>, config: EdgeConfig) -> Result<Self, EdgeError> {
        let dir = cache.dir().root().display().to_string();
        let store = Store::open(&format!("file://{dir}"))?;
        // One registry: the cache's series are scraped beside the edge's.
        let metrics = Metrics::with_cache(&cache);
        Ok(Self::build(store, Some(cache), metrics, config))
    }

    fn build(
        store: Store,
        cache: Option<Arc<Cache>>,
        metrics: Metrics,
        config: EdgeConfig,
    ) -> Self {
        let metrics = Arc::new(metrics);
        Self {
            files: store.local_dir().map(OpenFiles::new),
            manifests: Manifests::new(
                store.clone(),
                cache.clone(),
                Arc::clone(&metrics),
                config.manifest_ttl,
            ),
            cache,
            store,
            config,
            object_headers: KeyedHeaders::default(),
            metrics,
            estimator: Mutex::new(Estimator::default()),
        }
    }

    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    /// Where objects are read from.
    pub(crate) fn source(&self) -> Source<'_> {
        Source {
            store: &self.store,
            files: self.files.as_ref(),
            cache: self.cache.as_ref(),
        }
    }

    /// Folds a reading of one of `client`'s connections into its estimate.
    pub fn record_connection(&self, client: IpAddr, sample: &TcpSample) {
        let Ok(mut estimator) = self.estimator.lock() else {
            return;
        };
        let recorded = estimator.record(client, sample, Instant::now());
        drop(estimator);
        self.metrics.connection_sample(recorded.as_str());
        tracing::trace!(
            %client,
            kbps = sample.rate * 8 / 1000,
            app_limited = sample.app_limited,
            min_rtt_us = sample.min_rtt_us,
            ?recorded,
            "connection sample"
        );
    }

    /// What `client`'s connections measured, if recent enough.
    pub fn connection_estimate(&self, client: IpAddr) -> Option<Estimate> {
        self.estimator.lock().ok()?.estimate(client, Instant::now())
    }

    /// The edge's metrics, shared with the server for connection counts.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// What the request says of its client (and what its connections
    /// measured), and the rank of the tier chosen for it in `manifest`, with why.
    pub(crate) fn client<B>(
        &self,
        req: &Request<B>,
        client: Option<IpAddr>,
        manifest: &Manifest,
    ) -> (Signals, usize, Reason) {
        let mut signals = Signals::from_request(req.headers(), req.uri().query());
        signals.connection = client.and_then(|c| self.connection_estimate(c));
        let default_rank = manifest
            .tier_rank(&self.config.default_tier)
            .unwrap_or(manifest.tiers.len() / 2);
        let (rank, reason) = client_tier(&signals, &manifest.tiers, default_rank);
        (signals, rank, reason)
    }
}
