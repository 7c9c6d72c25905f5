//! What the ingest steps share: the [`Context`] of one module's run (its
//! profile, the store, the manifest as it was, the progress hooks), what a
//! step uploaded, and the one way they run blocking work.

use std::path::Path;
use std::sync::Arc;

use lowband_catalog::manifest::{AssetKind, Manifest};
use lowband_catalog::{ModuleId, Profile, Store, StoreError};

use super::error::IngestError;

/// Hooks for showing progress; the library itself never prints.
pub trait Progress: Send + Sync {
    fn start(&self, _module: &ModuleId, _assets: usize) {}
    fn asset_started(&self, _path: &str, _kind: AssetKind) {}
    /// Fraction (0-1) of the current asset done.
    fn asset_progress(&self, _path: &str, _fraction: f64) {}
    fn asset_finished(&self, _path: &str, _reused: bool) {}
}

/// Progress that goes nowhere (tests, `--json`).
pub struct Silent;
impl Progress for Silent {}

/// What every step of one module's ingest works with.
pub struct Context<'a> {
    pub profile: &'a Profile,
    pub store: &'a Store,
    /// The module's manifest as it was when the steps began, if any.
    pub previous: Option<Manifest>,
    pub progress: Arc<dyn Progress>,
}

impl<'a> Context<'a> {
    /// Reads the module's current manifest. A damaged one must not block
    /// publishing a good one: it reads as absent, and every asset is rebuilt.
    pub async fn open(
        profile: &'a Profile,
        store: &'a Store,
        module: &ModuleId,
        progress: Arc<dyn Progress>,
    ) -> Result<Self, StoreError> {
        let previous = match store.manifest(module).await {
            Ok(m) => m,
            Err(StoreError::Manifest(e)) => {
                tracing::warn!(module = %module, error = %e, "previous manifest unreadable; rebuilding every asset");
                None
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            profile,
            store,
            previous,
            progress,
        })
    }
}

/// Objects put in the store, and their bytes (objects already there aside).
#[derive(Debug, Clone, Copy, Default)]
pub struct Uploads {
    pub objects: usize,
    pub bytes: u64,
}

impl Uploads {
    /// Counts one put; `uploaded` is false when the object was already there.
    pub(super) fn count(&mut self, uploaded: bool, bytes: u64) {
        if uploaded {
            self.objects += 1;
            self.bytes += bytes;
        }
    }

    pub(super) fn add(&mut self, other: Uploads) {
        self.objects += other.objects;
        self.bytes += other.bytes;
    }
}

/// Runs CPU or filesystem work off the async runtime. Work that fans out
/// further (rendering) does so on the rayon pool from inside.
pub(super) async fn blocking<T: Send + 'static>(
    file: &Path,
    work: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|source| {
            Err(IngestError::Worker {
                file: file.to_owned(),
                source,
            })
        })
}
