//! One asset's step, which `ingest` runs for each asset and a queue worker
//! for one job: the asset rendered (or its previous variants reused) and
//! uploaded, described as a manifest entry; and what such steps add up to.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use lowband_catalog::manifest::{Asset, AssetKind, SourceInfo};
use lowband_catalog::{ContentHash, Profile, StoreError};

use super::context::{blocking, Context, Uploads};
use super::error::IngestError;
use super::render::{self, Rendered};
use super::upload;
use crate::discover::SourceAsset;
use crate::page::ModuleView;

/// Bumped whenever a change to the pipeline changes the bytes it produces,
/// so stored variants made by an older build are not reused.
const RENDERER_VERSION: &str = concat!("lowband-pipeline/", env!("CARGO_PKG_VERSION"), "/r5");

/// One asset rendered (or reused) and stored.
#[derive(Debug)]
pub struct AssetOutcome {
    pub asset: Asset,
    /// True when the previous manifest's variants were still valid and present.
    pub reused: bool,
    pub uploads: Uploads,
    /// Wall-clock seconds the step took.
    pub seconds: f64,
}

/// What a run of steps did, added up over its assets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub reused: usize,
    pub uploads: Uploads,
    /// Seconds of video and sound rendered (reused assets aside).
    pub media_seconds: f64,
    /// Wall-clock seconds those renders took.
    pub media_render_seconds: f64,
}

impl Tally {
    pub fn add(&mut self, out: &AssetOutcome) {
        self.reused += usize::from(out.reused);
        self.uploads.add(out.uploads);
        if matches!(out.asset.kind, AssetKind::Video | AssetKind::Audio) && !out.reused {
            self.media_seconds += out.asset.duration.unwrap_or(0.0);
            self.media_render_seconds += out.seconds;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.reused += other.reused;
        self.uploads.add(other.uploads);
        self.media_seconds += other.media_seconds;
        self.media_render_seconds += other.media_render_seconds;
    }
}

/// One asset's work: hash the source, reuse the previous variants if
/// nothing they derive from changed, otherwise render and upload every
/// rendition content-addressed. Pages need `view` (what the rest of the
/// module became).
pub async fn render_asset(
    ctx: &Context<'_>,
    src: &SourceAsset,
    view: Option<&Arc<ModuleView>>,
) -> Result<AssetOutcome, IngestError> {
    ctx.progress.asset_started(&src.path, src.kind);
    let started = Instant::now();
    let (hash, bytes) = read_source(src, ctx.profile).await?;
    let derivation = derivation(src.kind, &hash, ctx.profile, view.map(|v| v.digest()));
    let (asset, reused, uploads) = match reusable(ctx, src, &derivation).await? {
        Some(asset) => (asset, true, Uploads::default()),
        None => {
            let rendered = render::render(ctx, src, bytes, view.cloned()).await?;
            let source = SourceInfo {
                bytes: src.bytes,
                hash,
                mime: src.mime.to_owned(),
            };
            let (asset, uploads) = entry(ctx, src, source, derivation, rendered).await?;
            (asset, false, uploads)
        }
    };
    ctx.progress.asset_finished(&src.path, reused);
    Ok(AssetOutcome {
        asset,
        reused,
        uploads,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The previous manifest's entry for this asset, if it derives from the
/// same things and every object it names is still in the store.
async fn reusable(
    ctx: &Context<'_>,
    src: &SourceAsset,
    derivation: &ContentHash,
) -> Result<Option<Asset>, StoreError> {
    let Some(old) = ctx
        .previous
        .as_ref()
        .and_then(|m| m.asset(&src.path))
        .filter(|a| a.derivation == *derivation)
    else {
        return Ok(None);
    };
    for v in &old.variants {
        if !ctx.store.contains(&v.key).await? {
            return Ok(None);
        }
    }
    Ok(Some(old.clone()))
}

/// Uploads what was rendered and describes it as the asset's manifest entry.
async fn entry(
    ctx: &Context<'_>,
    src: &SourceAsset,
    source: SourceInfo,
    derivation: ContentHash,
    rendered: Rendered,
) -> Result<(Asset, Uploads), IngestError> {
    let Rendered {
        renditions,
        duration,
        captions,
        placeholder,
        workdir,
    } = rendered;
    let mut uploads = Uploads::default();
    let captions = upload::captions(ctx.store, src, &captions, &mut uploads).await?;
    let variants = upload::renditions(ctx.store, src, renditions, &mut uploads).await?;
    // The encoded files are in the store now.
    drop(workdir);
    if variants.is_empty() {
        return Err(IngestError::NoRenditions {
            file: src.file.clone(),
        });
    }
    let asset = Asset {
        path: src.path.clone(),
        kind: src.kind,
        source,
        derivation,
        duration,
        variants,
        captions,
        placeholder,
    };
    if asset.kind == AssetKind::Page {
        warn_over_budget(&asset, ctx.profile);
    }
    Ok((asset, uploads))
}

/// Hashes the source; returns its bytes too when the renderer needs them in memory.
async fn read_source(
    src: &SourceAsset,
    profile: &Profile,
) -> Result<(ContentHash, Option<Bytes>), IngestError> {
    let file = src.file.clone();
    let kind = src.kind;
    let limit = match kind {
        AssetKind::Image => profile.image.max_bytes,
        AssetKind::Page | AssetKind::File => profile.page.max_bytes,
        AssetKind::Video | AssetKind::Audio => u64::MAX,
    };
    blocking(&src.file, move || {
        let read = |source| IngestError::Read {
            file: file.clone(),
            source,
        };
        let bytes = std::fs::metadata(&file).map_err(read)?.len();
        if bytes == 0 {
            return Err(IngestError::Empty { file });
        }
        if bytes > limit {
            return Err(IngestError::TooLarge { file, bytes, limit });
        }
        if matches!(kind, AssetKind::Video | AssetKind::Audio) {
            Ok((ContentHash::of_file(&file).map_err(read)?.0, None))
        } else {
            let bytes = Bytes::from(std::fs::read(&file).map_err(read)?);
            Ok((ContentHash::of(&bytes), Some(bytes)))
        }
    })
    .await
}

/// A page whose first load (with brotli) is over its tier's budget still
/// publishes: the author hears about it, the teacher still gets the lesson.
fn warn_over_budget(page: &Asset, profile: &Profile) {
    for v in page
        .variants
        .iter()
        .filter(|v| v.encoding.as_deref() == Some("br"))
    {
        let (Some(weight), Some(kb)) = (v.first_load_bytes, profile.page.budget_kb.get(&v.tier))
        else {
            continue;
        };
        if weight > u64::from(*kb) * 1000 {
            tracing::warn!(page = %page.path, tier = %v.tier, weight, budget_kb = kb, "page over its first-load budget");
        }
    }
}

/// Digest of everything an asset's variants depend on; for a page, that
/// includes what it points at (`context`, the module view's digest).
fn derivation(
    kind: AssetKind,
    source: &ContentHash,
    profile: &Profile,
    context: Option<ContentHash>,
) -> ContentHash {
    let settings = match kind {
        AssetKind::Video | AssetKind::Audio => serde_json::to_string(&profile.video),
        AssetKind::Image => serde_json::to_string(&profile.image),
        AssetKind::Page | AssetKind::File => serde_json::to_string(&profile.page),
    }
    .unwrap_or_default();
    let tiers = serde_json::to_string(&profile.tiers).unwrap_or_default();
    let context = context.map(|c| c.to_string()).unwrap_or_default();
    let text = format!("{RENDERER_VERSION}\n{kind:?}\n{source}\n{tiers}\n{settings}\n{context}");
    ContentHash::of(text.as_bytes())
}
