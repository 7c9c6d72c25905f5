//! Manifests and the module index on a cache node: kept in memory and on
//! disk, revalidated with the upstream's ETag once older than the TTL.
//!
//! A document past its TTL is served as it is while one background request
//! revalidates it (stale-while-revalidate); when that request fails or
//! times out, the node goes on serving what it has (stale-if-error) and
//! tries again a little later. Only a document the node never had waits
//! for the upstream, and fails fast when the upstream cannot answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use lowband_catalog::manifest::{Manifest, ManifestError, ModuleIndex};
use lowband_catalog::ModuleId;

use super::disk::CacheDir;
use super::upstream::{Doc, Fetched, Upstream, UpstreamError};
use super::CacheStats;

/// After a failed revalidation, the next is tried no sooner than this.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A document as the node holds it.
#[derive(Clone)]
pub enum Held {
    Manifest(Arc<Manifest>),
    Index(Arc<ModuleIndex>),
    /// The upstream says there is no such document.
    Absent,
}

/// Why a document from the upstream cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error(transparent)]
    Parse(#[from] ManifestError),
    #[error("{key}: names module {found}")]
    OtherModule { key: String, found: ModuleId },
}

impl Held {
    fn parse(doc: &Doc, bytes: &[u8]) -> Result<Self, Unreadable> {
        let key = doc.key();
        match doc {
            Doc::Index => Ok(Self::Index(Arc::new(ModuleIndex::from_json(&key, bytes)?))),
            Doc::Manifest(id) => {
                let manifest = Manifest::from_json(&key, bytes)?;
                if &manifest.module.id != id {
                    return Err(Unreadable::OtherModule {
                        key,
                        found: manifest.module.id,
                    });
                }
                Ok(Self::Manifest(Arc::new(manifest)))
            }
        }
    }
}

/// What the upstream said of a document.
enum Answer {
    Unchanged,
    New(Held, Option<String>),
}

struct Slot {
    held: Held,
    etag: Option<String>,
    /// Last confirmed by the upstream (`None`: read from disk, never confirmed).
    checked: Option<Instant>,
    refreshing: bool,
    /// The last revalidation failed: no new one before this.
    retry_at: Option<Instant>,
}

type Pending = Shared<BoxFuture<'static, Result<Held, Arc<UpstreamError>>>>;

pub struct Docs {
    upstream: Arc<Upstream>,
    dir: Arc<CacheDir>,
    stats: Arc<CacheStats>,
    ttl: Duration,
    timeout: Duration,
    slots: Mutex<HashMap<Doc, Slot>>,
    /// First fetches in flight, shared by whoever asks meanwhile.
    pending: Mutex<HashMap<Doc, Pending>>,
}

impl Docs {
    pub fn new(
        upstream: Arc<Upstream>,
        dir: Arc<CacheDir>,
        stats: Arc<CacheStats>,
        ttl: Duration,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            upstream,
            dir,
            stats,
            ttl,
            timeout,
            slots: Mutex::default(),
            pending: Mutex::default(),
        })
    }

    pub async fn manifest(
        self: &Arc<Self>,
        id: &ModuleId,
    ) -> Result<Option<Arc<Manifest>>, Arc<UpstreamError>> {
        match self.get(Doc::Manifest(id.clone())).await? {
            Held::Manifest(m) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    pub async fn index(self: &Arc<Self>) -> Result<Arc<ModuleIndex>, Arc<UpstreamError>> {
        match self.get(Doc::Index).await? {
            Held::Index(i) => Ok(i),
            _ => Ok(Arc::new(ModuleIndex::default())),
        }
    }

    /// The document as the upstream holds it now (revalidating a held copy):
    /// for `sync`, which must not settle for a stale one.
    pub async fn current(&self, doc: Doc) -> Result<Held, UpstreamError> {
        self.load(&doc);
        let etag = self
            .slots
            .lock()
            .ok()
            .and_then(|slots| slots.get(&doc).and_then(|s| s.etag.clone()));
        self.fetch(&doc, etag).await
    }

    /// Forgets `doc` here and on disk: the next request asks the upstream.
    pub fn purge(&self, doc: &Doc) -> std::io::Result<bool> {
        let had = self
            .slots
            .lock()
            .ok()
            .and_then(|mut s| s.remove(doc))
            .is_some();
        let on_disk = self.dir.read_doc(&doc.key()).is_some();
        self.dir.remove_doc(&doc.key())?;
        Ok(had || on_disk)
    }

    /// The document, revalidated or fetched as its age requires.
    pub async fn get(self: &Arc<Self>, doc: Doc) -> Result<Held, Arc<UpstreamError>> {
        let now = Instant::now();
        let mut refresh = None;
        self.load(&doc);
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(slot) = slots.get_mut(&doc) {
                let fresh = slot
                    .checked
                    .is_some_and(|t| now.duration_since(t) < self.ttl);
                if fresh {
                    return Ok(slot.held.clone());
                }
                let failing = slot.retry_at.is_some();
                if !slot.refreshing && slot.retry_at.is_none_or(|t| now >= t) {
                    slot.refreshing = true;
                    refresh = Some(slot.etag.clone());
                }
                self.stats.stale(if failing {
                    "upstream_error"
                } else {
                    "revalidating"
                });
                let held = slot.held.clone();
                drop(slots);
                if let Some(etag) = refresh {
                    let docs = Arc::clone(self);
                    let doc = doc.clone();
                    tokio::spawn(async move { docs.revalidate(doc, etag).await });
                }
                return Ok(held);
            }
        }
        self.first_fetch(doc).await
    }

    /// Brings the disk copy of `doc` into memory when memory has none; the
    /// file is read outside the lock (once per document and process).
    fn load(&self, doc: &Doc) {
        if !self.slots.lock().is_ok_and(|s| !s.contains_key(doc)) {
            return;
        }
        if let Some(slot) = self.read_disk(doc) {
            if let Ok(mut slots) = self.slots.lock() {
                slots.entry(doc.clone()).or_insert(slot);
            }
        }
    }

    fn read_disk(&self, doc: &Doc) -> Option<Slot> {
        let (bytes, etag) = self.dir.read_doc(&doc.key())?;
        match Held::parse(doc, &bytes) {
            Ok(held) => Some(Slot {
                held,
                etag,
                checked: None,
                refreshing: false,
                retry_at: None,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cached document unreadable: dropped");
                let _ = self.dir.remove_doc(&doc.key());
                None
            }
        }
    }

    /// Fetches a document the node does not hold; concurrent callers share one request.
    async fn first_fetch(self: &Arc<Self>, doc: Doc) -> Result<Held, Arc<UpstreamError>> {
        let pending = {
            let Ok(mut pending) = self.pending.lock() else {
                return Err(Arc::new(UpstreamError::Failed {
                    url: self.upstream.url().to_owned(),
                    reason: "cache state poisoned".into(),
                }));
            };
            pending
                .entry(doc.clone())
                .or_insert_with(|| {
                    let docs = Arc::clone(self);
                    let doc = doc.clone();
                    async move {
                        let result = docs.fetch(&doc, None).await;
                        if let Ok(mut pending) = docs.pending.lock() {
                            pending.remove(&doc);
                        }
                        result.map_err(Arc::new)
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        pending.await
    }

    /// Asks the upstream (conditionally with `etag`) and records the answer:
    /// on disk first (off the runtime's threads), then in memory.
    async fn fetch(&self, doc: &Doc, etag: Option<String>) -> Result<Held, UpstreamError> {
        self.stats.upstream_request();
        let answer = match self.upstream.doc(doc, etag.as_deref(), self.timeout).await {
            Ok(Fetched::NotModified) => Ok(Answer::Unchanged),
            Ok(Fetched::NotFound) => {
                self.on_disk(doc, None).await;
                Ok(Answer::New(Held::Absent, None))
            }
            Ok(Fetched::Body { bytes, etag }) => match Held::parse(doc, &bytes) {
                Ok(held) => {
                    self.on_disk(doc, Some((bytes, etag.clone()))).await;
                    Ok(Answer::New(held, etag))
                }
                Err(reason) => Err(UpstreamError::Failed {
                    url: format!("{}/{}", self.upstream.url(), doc.key()),
                    reason: format!("sent an unreadable document: {reason}"),
                }),
            },
            Err(e) => Err(e),
        };
        let now = Instant::now();
        let mut slots = self.slots.lock().map_err(|_| UpstreamError::Failed {
            url: self.upstream.url().to_owned(),
            reason: "cache state poisoned".into(),
        })?;
        let result = match answer {
            Ok(Answer::Unchanged) => match slots.get_mut(doc) {
                Some(slot) => {
                    slot.checked = Some(now);
                    slot.retry_at = None;
                    Ok(slot.held.clone())
                }
                None => Err(UpstreamError::Failed {
                    url: self.upstream.url().to_owned(),
                    reason: "answered 304 to an unconditional request".into(),
                }),
            },
            Ok(Answer::New(held, etag)) => {
                slots.insert(doc.clone(), fresh_slot(held.clone(), etag, now));
                Ok(held)
            }
            Err(e) => Err(e),
        };
        if let Some(slot) = slots.get_mut(doc) {
            slot.refreshing = false;
            if result.is_err() {
                slot.retry_at = Some(now + RETRY_AFTER.min(self.ttl));
            }
        }
        drop(slots);
        if let Err(e) = &result {
            self.stats.upstream_error_kind(e.kind());
        }
        result
    }

    /// Stores (`Some`) or removes (`None`) the disk copy of `doc`. A failure
    /// only costs the copy a restart without the upstream would have used.
    async fn on_disk(&self, doc: &Doc, copy: Option<(Bytes, Option<String>)>) {
        let dir = Arc::clone(&self.dir);
        let key = doc.key();
        let written = tokio::task::spawn_blocking(move || match copy {
            Some((bytes, etag)) => dir.write_doc(&key, &bytes, etag.as_deref()),
            None => dir.remove_doc(&key),
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot keep a document on disk");
        }
    }

    async fn revalidate(&self, doc: Doc, etag: Option<String>) {
        if let Err(e) = self.fetch(&doc, etag).await {
            tracing::warn!(error = %e, doc = doc.key(), "revalidation failed: serving the copy held");
        }
    }
}

fn fresh_slot(held: Held, etag: Option<String>, now: Instant) -> Slot {
    Slot {
        held,
        etag,
        checked: Some(now),
        refreshing: false,
        retry_at: None,
    }
}
