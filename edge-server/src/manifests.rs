//! The manifests and the module index, as this edge last read them.
//!
//! A manifest is read once per `manifest_ttl` and then answers thousands of
//! requests, prepared once ([`Prepared`]) for all of them; a module that
//! does not exist is remembered too. On a cache node the cache's documents
//! revalidate themselves: a prepared manifest is used for [`CACHE_RECHECK`]
//! before the cache is asked again, and keeps its prepared headers while the
//! cache still holds the same manifest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lowband_catalog::{ModuleId, ModuleIndex, Store};

use crate::bounded::Bounded;
use crate::cache::Cache;
use crate::http::error::EdgeError;
use crate::metrics::{Metrics, StoreOp};
use crate::objects::prepared::Prepared;

/// Manifests held at most this many at once (absent modules included).
const MANIFEST_CACHE_ENTRIES: usize = 4096;
/// On a cache node, a prepared manifest is used this long before the cache
/// is asked whether it still holds it (which revalidates it past its TTL).
const CACHE_RECHECK: Duration = Duration::from_millis(250);

/// When a manifest was read, and what was read (`None`: the module does not exist).
type Held = (Instant, Option<Arc<Prepared>>);

/// The edge's manifests and index, from its store or its cache.
pub struct Manifests {
    store: Store,
    /// On a cache node: where manifests and the index come from.
    cache: Option<Arc<Cache>>,
    metrics: Arc<Metrics>,
    /// How long a manifest read from the store is used before it is read again.
    ttl: Duration,
    held: Bounded<ModuleId, Held>,
}

impl Manifests {
    pub fn new(
        store: Store,
        cache: Option<Arc<Cache>>,
        metrics: Arc<Metrics>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            metrics,
            ttl,
            held: Bounded::lasting(MANIFEST_CACHE_ENTRIES),
        }
    }

    /// The module's manifest, prepared; `None` when there is no such module.
    pub async fn prepared(&self, id: &ModuleId) -> Result<Option<Arc<Prepared>>, EdgeError> {
        let held = self.held.get(id);
        if let Some(cache) = &self.cache {
            if let Some((at, prepared)) = &held {
                if at.elapsed() < CACHE_RECHECK {
                    return Ok(prepared.clone());
                }
            }
            // The cache revalidates; a manifest it still holds keeps its prepared headers.
            let current = self
                .metrics
                .time_store(StoreOp::Manifest, cache.docs().manifest(id))
                .await
                .map_err(|e| EdgeError::upstream(e.is_timeout(), e))?;
            let prepared = match (current, held) {
                (Some(m), Some((_, Some(p)))) if Arc::ptr_eq(&m, &p.manifest) => Some(p),
                (Some(m), _) => Some(Arc::new(Prepared::new(m))),
                (None, _) => None,
            };
            self.remember(id, prepared.clone());
            return Ok(prepared);
        }
        if let Some((at, held)) = held {
            if at.elapsed() < self.ttl {
                return Ok(held);
            }
        }
        let fresh = self
            .metrics
            .time_store(StoreOp::Manifest, self.store.manifest(id))
            .await?
            .map(|m| Arc::new(Prepared::new(Arc::new(m))));
        self.remember(id, fresh.clone());
        Ok(fresh)
    }

    fn remember(&self, id: &ModuleId, prepared: Option<Arc<Prepared>>) {
        self.held.insert(id.clone(), (Instant::now(), prepared));
    }

    /// Forgets the module's manifest: the next request reads it again.
    pub fn forget(&self, id: &ModuleId) {
        self.held.remove(id);
    }

    /// The module index: from the store, or as the cache holds it.
    pub async fn index(&self) -> Result<Arc<ModuleIndex>, EdgeError> {
        match &self.cache {
            Some(cache) => self
                .metrics
                .time_store(StoreOp::Index, cache.docs().index())
                .await
                .map_err(|e| EdgeError::upstream(e.is_timeout(), e)),
            None => Ok(Arc::new(
                self.metrics
                    .time_store(StoreOp::Index, self.store.index())
                    .await?,
            )),
        }
    }
}
