//! The provincial cache node: an edge whose store is a disk cache in front
//! of an upstream (an `s3://` store or another edge).
//!
//! `disk` keeps verified objects in a `file://` store layout within a byte
//! budget (LRU), so a hit is served exactly as the plain edge serves its
//! own store; `fill` fetches a missing object once for every request that
//! wants it; `docs` revalidates manifests and the module index and serves
//! them stale when the upstream fails; `upstream` speaks to the store or
//! edge above; `sync` prefetches chosen tiers ahead of need; `stats` counts
//! what the cache does, for the edge's `/metrics`.

pub mod disk;
pub mod docs;
pub mod fill;
pub mod stats;
pub mod sync;
pub mod upstream;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use lowband_catalog::ObjectKey;
use prometheus_client::registry::Registry;

use crate::http::range::ByteRange;
use disk::CacheDir;
use docs::Docs;
use fill::{Busy, Fill, FillError, Job, Progress};
pub use stats::CacheStats;
use upstream::{Upstream, UpstreamError};

/// A range starting this far past what a fill has written is fetched on
/// its own rather than waited for.
const AHEAD: u64 = 1024 * 1024;

/// How long an object the upstream said it does not have is answered 404
/// without asking again. Short: a module's objects are stored before its
/// manifest names them, so only a mistyped or guessed key asks for one the
/// upstream lacks, and such a key should not cost an upstream request each
/// time; a purge forgets them at once.
const ABSENT_TTL: Duration = Duration::from_secs(10);
/// Absent keys remembered at most (past that, moka keeps those asked for most).
const ABSENT_MAX: u64 = 4096;

/// What an operator sets for a cache node.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `s3://…`, `file://…` or `http(s)://` of an edge.
    pub upstream: String,
    pub dir: PathBuf,
    /// Bytes of objects kept at most.
    pub size: u64,
    /// Longest wait for the upstream's answer (and between its chunks).
    pub timeout: Duration,
    /// Age after which a manifest or the index is revalidated.
    pub ttl: Duration,
}

/// The cache of one node.
pub struct Cache {
    upstream: Arc<Upstream>,
    dir: Arc<CacheDir>,
    docs: Arc<Docs>,
    fills: Mutex<crate::bounded::KeyMap<Arc<Fill>>>,
    /// Keys the upstream lately said it does not have.
    absent: moka::sync::Cache<ObjectKey, ()>,
    stats: Arc<CacheStats>,
    timeout: Duration,
    /// Bounds what fills read from the upstream (`sync`), if set.
    rate: Option<Arc<RateLimit>>,
}

/// What the cache can do for an object it does not hold.
pub enum Miss {
    /// It is in the cache directory now.
    Stored,
    /// Being fetched: read it from the fill as it arrives.
    Filling(Arc<Fill>, u64),
    /// Not kept (larger than the budget, or another process is fetching it):
    /// each request reads the upstream itself.
    Pass(u64),
}

/// Why a cache cannot open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("cache directory {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why an object cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum MissError {
    #[error("not found upstream")]
    NotFound,
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error("cache fill of {key}: {source}")]
    Fill { key: String, source: Arc<FillError> },
}

impl MissError {
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::NotFound => false,
            Self::Upstream(e) => e.is_timeout(),
            Self::Fill { source, .. } => source.is_timeout(),
        }
    }
}

impl Cache {
    /// Opens the cache directory (rebuilding its index) and the upstream.
    pub fn open(config: &CacheConfig, rate: Option<u64>) -> Result<Arc<Self>, OpenError> {
        let upstream = Arc::new(Upstream::open(&config.upstream, config.timeout)?);
        let (dir, scan) =
            CacheDir::open(&config.dir, config.size).map_err(|source| OpenError::Dir {
                path: config.dir.clone(),
                source,
            })?;
        tracing::info!(
            dir = %dir.root().display(),
            objects = scan.objects,
            bytes = scan.bytes,
            removed = scan.removed,
            partial = scan.partial,
            partial_bytes = scan.partial_bytes,
            budget = config.size,
            upstream = upstream.url(),
            "cache opened"
        );
        let dir = Arc::new(dir);
        let stats = Arc::new(CacheStats::default());
        let docs = Docs::new(
            Arc::clone(&upstream),
            Arc::clone(&dir),
            Arc::clone(&stats),
            config.ttl,
            config.timeout,
        );
        let cache = Arc::new(Self {
            upstream,
            dir,
            docs,
            fills: Mutex::default(),
            absent: moka::sync::Cache::builder()
                .max_capacity(ABSENT_MAX)
                .time_to_live(ABSENT_TTL)
                .build(),
            stats,
            timeout: config.timeout,
            rate: rate.map(|r| Arc::new(RateLimit::new(r))),
        });
        // Over budget after a restart with a smaller --cache-size: evict now.
        for (_, bytes) in cache.dir.shrink() {
            cache.stats.evicted(bytes);
        }
        Ok(cache)
    }

    pub fn dir(&self) -> &Arc<CacheDir> {
        &self.dir
    }

    pub fn docs(&self) -> &Arc<Docs> {
        &self.docs
    }

    pub fn stats(&self) -> &Arc<CacheStats> {
        &self.stats
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Registers the cache's metrics in its edge's registry.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.stats.register(registry, Arc::clone(&self.dir));
    }

    /// A request for `bytes` of the `len`-byte `key` is served from the cache directory.
    pub fn hit(&self, key: &ObjectKey, len: u64, bytes: u64) {
        self.stats.hit(bytes);
        for (_, evicted) in self.dir.touch(key, len) {
            self.stats.evicted(evicted);
        }
    }

    /// Starts (or joins) the fetch of `key` and waits until its size is known.
    pub async fn miss(self: &Arc<Self>, key: &ObjectKey) -> Result<Miss, MissError> {
        if self.absent.get(key).is_some() {
            self.stats.absent.inc();
            return Err(MissError::NotFound);
        }
        let result = self.fetch(key).await;
        if matches!(result, Err(MissError::NotFound)) {
            self.absent.insert(key.clone(), ());
        }
        result
    }

    /// Forgets which objects the upstream lacked (a module was purged: it
    /// may name objects published since).
    pub fn forget_absent(&self) {
        self.absent.invalidate_all();
    }

    /// A fill for `key` (started or joined), or a read-through.
    async fn fetch(self: &Arc<Self>, key: &ObjectKey) -> Result<Miss, MissError> {
        let started = {
            let mut fills = self
                .fills
                .lock()
                .map_err(|_| MissError::Upstream(self.failed("cache state poisoned")))?;
            match fills.get(key) {
                Some(fill) => {
                    self.stats.coalesced.inc();
                    Some(Arc::clone(fill))
                }
                None => {
                    if self.dir.object_path(key).is_file() {
                        return Ok(Miss::Stored);
                    }
                    let job = Job {
                        key: key.clone(),
                        upstream: Arc::clone(&self.upstream),
                        dir: Arc::clone(&self.dir),
                        stats: Arc::clone(&self.stats),
                        rate: self.rate.clone(),
                        timeout: self.timeout,
                    };
                    let cache = Arc::downgrade(self);
                    let done_key = key.clone();
                    let on_end = move || {
                        if let Some(cache) = cache.upgrade() {
                            if let Ok(mut fills) = cache.fills.lock() {
                                fills.remove(&done_key);
                            }
                        }
                    };
                    match Fill::start(job, on_end) {
                        Ok(fill) => {
                            self.stats.misses.inc();
                            fills.insert(key.clone(), Arc::clone(&fill));
                            Some(fill)
                        }
                        Err(Busy::Locked) => None,
                        Err(Busy::Disk(e)) => {
                            tracing::error!(error = %e, "cannot fill the cache: passing through");
                            None
                        }
                    }
                }
            }
        };
        // Another process is filling it, or the disk refused: read through.
        let Some(fill) = started else {
            return self.pass_len(key).await;
        };
        match fill.ready().await {
            Progress::Writing { len, .. } => Ok(Miss::Filling(fill, len)),
            Progress::Done { .. } => Ok(Miss::Stored),
            Progress::Pass { len } => {
                self.stats.passes.inc();
                Ok(Miss::Pass(len))
            }
            Progress::NotFound => Err(MissError::NotFound),
            Progress::Failed(source) => Err(MissError::Fill {
                key: key.to_string(),
                source,
            }),
            Progress::Connecting => Err(MissError::Upstream(self.failed("fill ended early"))),
        }
    }

    /// The size of an object read through, from the upstream's answer.
    async fn pass_len(&self, key: &ObjectKey) -> Result<Miss, MissError> {
        self.stats.passes.inc();
        self.stats.upstream_request();
        match self.upstream.object(key, 0, Some(0), self.timeout).await {
            Ok(Some(body)) => Ok(Miss::Pass(body.len)),
            Ok(None) => Err(MissError::NotFound),
            Err(e) => {
                self.stats.upstream_error_kind(e.kind());
                Err(MissError::Upstream(e))
            }
        }
    }

    /// `range` of `key` straight from the upstream (not kept).
    pub async fn pass(
        &self,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>, MissError> {
        self.stats.upstream_request();
        let body = self
            .upstream
            .object(key, range.start, Some(range.end), self.timeout)
            .await
            .map_err(|e| {
                self.stats.upstream_error_kind(e.kind());
                MissError::Upstream(e)
            })?
            .ok_or(MissError::NotFound)?;
        let stats = Arc::clone(&self.stats);
        Ok(body
            .chunks
            .map_ok(move |chunk| {
                stats.upstream_bytes(chunk.len() as u64);
                chunk
            })
            .map_err(std::io::Error::other)
            .boxed())
    }

    /// The body for `range` of an object being fetched: from the fill when
    /// its bytes are there or near, else read through on its own.
    pub async fn fill_body(
        &self,
        key: &ObjectKey,
        fill: &Arc<Fill>,
        range: ByteRange,
    ) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>, MissError> {
        if range.start > fill.written() + AHEAD {
            return self.pass(key, range).await;
        }
        Ok(fill.stream(range))
    }

    fn failed(&self, reason: &str) -> UpstreamError {
        UpstreamError::Failed {
            url: self.upstream.url().to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// A token bucket over bytes: at most `rate` per second, in bursts of a quarter second.
pub struct RateLimit {
    rate: u64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(rate: u64) -> Self {
        Self {
            rate: rate.max(1),
            state: tokio::sync::Mutex::new((0.0, Instant::now())),
        }
    }

    /// Waits until `n` more bytes fit within the rate.
    pub async fn take(&self, n: u64) {
        let mut state = self.state.lock().await;
        let burst = self.rate as f64 / 4.0;
        let now = Instant::now();
        let (tokens, at) = *state;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate as f64).min(burst);
        let after = tokens - n as f64;
        *state = (after, now);
        if after < 0.0 {
            // Holding the lock while waiting queues the other takers behind.
            tokio::time::sleep(Duration::from_secs_f64(-after / self.rate as f64)).await;
        }
    }
}

impl From<MissError> for crate::http::error::EdgeError {
    fn from(e: MissError) -> Self {
        match e {
            MissError::NotFound => Self::NotFound,
            e => Self::upstream(e.is_timeout(), e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rate_limit_spreads_bytes_over_time() {
        let limit = RateLimit::new(100_000);
        let start = Instant::now();
        for _ in 0..10 {
            limit.take(10_000).await;
        }
        // 100 kB at 100 kB/s, less the first quarter-second burst.
        assert!(
            start.elapsed() >= Duration::from_millis(700),
            "{:?}",
            start.elapsed()
        );
    }
}
