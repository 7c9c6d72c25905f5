//! Ingest: a module directory in, a published manifest out, in steps that
//! `lowband-pipeline ingest` and the queue workers (`service::worker`) share.
//!
//! ```text
//! discover ─▶ render_asset, for each asset but the pages ─▶ publish_module
//!             hash the source; reuse the previous variants    render the pages, then
//!             if nothing they derive from changed, else       the manifest, last,
//!             render on the rayon pool and upload every        in one put
//!             rendition content-addressed
//! ```
//!
//! [`ingest`] runs the steps in one process; a worker runs [`render_asset`]
//! for one asset per job and [`publish_module`] for the module's last job.
//! Either first opens a [`Context`]: the profile, the store, the module's
//! current manifest (whose still-valid variants are reused) and the progress
//! hooks.
//!
//! Pages go last: their rewrite points images and media at what was made of
//! them, so everything else in the module is rendered (or reused) first.
//!
//! Any failure stops the run before the manifest is written, so readers keep
//! seeing the previous manifest; objects already uploaded are immutable and
//! harmless, and a re-run finds them present and skips them.

mod asset;
mod context;
mod error;
mod publish;
mod render;
mod upload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use lowband_catalog::manifest::{AssetKind, Manifest};
use lowband_catalog::{ModuleId, Profile, Store};
use serde::Serialize;

pub use asset::{render_asset, AssetOutcome, Tally};
pub use context::{Context, Progress, Silent, Uploads};
pub use error::IngestError;
pub use publish::{publish_module, Finished, Slot};

use crate::discover::{self, ModuleSource, Skipped};
use context::blocking;

/// What to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub dir: PathBuf,
    pub profile: Profile,
    /// Overrides the id from `module.toml` or the directory name.
    pub module_id: Option<String>,
}

/// What a run did, for the summary line and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub module: ModuleId,
    pub title: String,
    pub manifest_key: String,
    /// False when the module was unchanged and the manifest left as it was.
    pub published: bool,
    pub assets: usize,
    pub assets_reused: usize,
    pub variants: usize,
    pub bytes_in: u64,
    /// Bytes of all variants made for each tier, slowest tier first.
    pub bytes_out_by_tier: Vec<TierBytes>,
    pub objects_uploaded: usize,
    pub bytes_uploaded: u64,
    pub skipped: Vec<Skipped>,
    /// Seconds of video and sound rendered in this run (reused assets aside).
    pub media_seconds: f64,
    /// Wall-clock seconds those renders took.
    pub media_render_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierBytes {
    pub tier: String,
    pub bytes: u64,
}

/// Runs a whole ingest. Blocking work goes to the rayon pool through
/// `spawn_blocking`; the caller's runtime only waits on it and on the store.
pub async fn ingest(
    options: &IngestOptions,
    store: &Store,
    progress: Arc<dyn Progress>,
) -> Result<IngestReport, IngestError> {
    let (dir, module_id) = (options.dir.clone(), options.module_id.clone());
    let source = blocking(&options.dir, move || {
        Ok(discover::discover(&dir, module_id.as_deref())?)
    })
    .await?;
    progress.start(&source.info.id, source.assets.len());
    let ctx = Context::open(&options.profile, store, &source.info.id, progress).await?;

    let mut tally = Tally::default();
    let mut slots = Vec::with_capacity(source.assets.len());
    for src in &source.assets {
        slots.push(if src.kind == AssetKind::Page {
            Slot::Page(src.clone())
        } else {
            let out = render_asset(&ctx, src, None).await?;
            tally.add(&out);
            Slot::Done(out.asset)
        });
    }
    let finished = publish_module(&ctx, &source.info, slots).await?;
    tally.merge(&finished.pages);
    Ok(IngestReport::new(
        source,
        &finished.manifest,
        finished.published,
        &tally,
    ))
}

impl IngestReport {
    fn new(source: ModuleSource, manifest: &Manifest, published: bool, tally: &Tally) -> Self {
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for asset in &manifest.assets {
            for (tier, bytes) in asset.bytes_by_tier() {
                *totals.entry(tier).or_default() += bytes;
            }
        }
        let bytes_out_by_tier = manifest
            .tiers
            .iter()
            .map(|t| TierBytes {
                tier: t.name.clone(),
                bytes: totals.get(t.name.as_str()).copied().unwrap_or(0),
            })
            .collect();
        let module = source.info.id;
        Self {
            manifest_key: module.manifest_key(),
            module,
            title: manifest.module.title.clone(),
            published,
            assets: manifest.assets.len(),
            assets_reused: tally.reused,
            variants: manifest.assets.iter().map(|a| a.variants.len()).sum(),
            bytes_in: source.assets.iter().map(|a| a.bytes).sum(),
            bytes_out_by_tier,
            objects_uploaded: tally.uploads.objects,
            bytes_uploaded: tally.uploads.bytes,
            skipped: source.skipped,
            media_seconds: tally.media_seconds,
            media_render_seconds: tally.media_render_seconds,
        }
    }
}
