//! Ingest: a module directory in, a published manifest out.
//!
//! plan (discover) → per asset ([`process_asset`]): hash the source, reuse the
//! previous variants if nothing they derive from changed, otherwise render on
//! the rayon pool and upload content-addressed → assemble ([`finish_module`]):
//! the pages, then the manifest last, in one put. `lowband-pipeline ingest`
//! runs the three steps in one process; the queue workers (`worker`) run the
//! same functions, one asset per job.
//!
//! Pages go last: their rewrite points images and media at what was made of
//! them, so everything else in the module is rendered (or reused) first.
//!
//! Any failure stops the run before the manifest is written, so readers keep
//! seeing the previous manifest; objects already uploaded are immutable and
//! harmless, and a re-run finds them present and skips them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use lowband_catalog::manifest::{
    Asset, AssetKind, Caption, Manifest, ModuleInfo, SourceInfo, Variant, VariantKind,
    MANIFEST_SCHEMA,
};
use lowband_catalog::{ContentHash, ModuleId, ObjectKey, Profile, Store, StoreError};
use serde::Serialize;

use crate::discover::{self, DiscoverError, Skipped, SourceAsset};
use crate::page::ModuleView;
use crate::rendition::{Payload, Rendition};
use crate::{image, page, video};

/// Bumped whenever a change to the pipeline changes the bytes it produces,
/// so stored variants made by an older build are not reused.
const RENDERER_VERSION: &str = concat!("lowband-pipeline/", env!("CARGO_PKG_VERSION"), "/r5");

/// Uploads in flight at once for one asset.
const UPLOAD_CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("{file}: {reason}")]
    Source { file: PathBuf, reason: String },
    #[error(transparent)]
    Video(#[from] video::VideoError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{file}: the worker rendering it stopped: {reason}")]
    Worker { file: PathBuf, reason: String },
}

/// What to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub dir: PathBuf,
    pub profile: Profile,
    /// Overrides the id from `module.toml` or the directory name.
    pub module_id: Option<String>,
}

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

/// Runs a whole ingest. Blocking work goes to the rayon pool through
/// `spawn_blocking`; the caller's runtime only waits on it and on the store.
///
/// The steps are the ones the workers of `lowband-pipeline worker` share:
/// [`process_asset`] for each asset but the pages, then [`finish_module`].
pub async fn ingest(
    options: &IngestOptions,
    store: &Store,
    progress: Arc<dyn Progress>,
) -> Result<IngestReport, IngestError> {
    let (dir, module_id) = (options.dir.clone(), options.module_id.clone());
    let source = blocking(&options.dir, move || {
        discover::discover(&dir, module_id.as_deref()).map_err(IngestError::from)
    })
    .await?;
    let module = source.info.id.clone();
    progress.start(&module, source.assets.len());
    let previous = previous_manifest(store, &module).await?;

    let mut uploads = UploadTally::default();
    let mut done: Vec<Option<Asset>> = vec![None; source.assets.len()];
    let mut reused = 0;
    let (mut media_seconds, mut media_render_seconds) = (0.0, 0.0);
    for (i, src) in source.assets.iter().enumerate() {
        if src.kind == AssetKind::Page {
            continue;
        }
        progress.asset_started(&src.path, src.kind);
        let started = std::time::Instant::now();
        let out = process_asset(
            src,
            &options.profile,
            store,
            previous.as_ref(),
            None,
            &progress,
        )
        .await?;
        progress.asset_finished(&src.path, out.reused);
        if matches!(src.kind, AssetKind::Video | AssetKind::Audio) && !out.reused {
            media_seconds += out.asset.duration.unwrap_or(0.0);
            media_render_seconds += started.elapsed().as_secs_f64();
        }
        reused += usize::from(out.reused);
        uploads.add(&out);
        done[i] = Some(out.asset);
    }
    let finished = finish_module(
        &source.info,
        &source.assets,
        done,
        &options.profile,
        store,
        previous.as_ref(),
        &progress,
    )
    .await?;
    reused += finished.pages_reused;
    let manifest = finished.manifest;

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
    Ok(IngestReport {
        manifest_key: module.manifest_key(),
        module,
        title: manifest.module.title.clone(),
        published: finished.published,
        assets: manifest.assets.len(),
        assets_reused: reused,
        variants: manifest.assets.iter().map(|a| a.variants.len()).sum(),
        bytes_in: source.assets.iter().map(|a| a.bytes).sum(),
        bytes_out_by_tier,
        objects_uploaded: uploads.objects + finished.objects_uploaded,
        bytes_uploaded: uploads.bytes + finished.bytes_uploaded,
        skipped: source.skipped,
        media_seconds,
        media_render_seconds,
    })
}

/// The module's current manifest, if any. A damaged one must not block
/// publishing a good one: it reads as absent.
pub async fn previous_manifest(
    store: &Store,
    module: &ModuleId,
) -> Result<Option<Manifest>, IngestError> {
    match store.manifest(module).await {
        Ok(m) => Ok(m),
        Err(StoreError::Manifest(e)) => {
            tracing::warn!(module = %module, error = %e, "previous manifest unreadable; rebuilding every asset");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// What [`finish_module`] did.
#[derive(Debug)]
pub struct Finished {
    pub manifest: Manifest,
    /// False when the manifest equalled the previous one and was left as it was.
    pub published: bool,
    pub pages_reused: usize,
    pub objects_uploaded: usize,
    pub bytes_uploaded: u64,
}

/// Renders the pages (they point at everything else, so every other asset
/// must be in `done`) and publishes the manifest, last, in one put; an
/// unchanged module is not published again, which makes a repeated finish
/// (a redelivered job) harmless.
pub async fn finish_module(
    info: &ModuleInfo,
    sources: &[SourceAsset],
    mut done: Vec<Option<Asset>>,
    profile: &Profile,
    store: &Store,
    previous: Option<&Manifest>,
    progress: &Arc<dyn Progress>,
) -> Result<Finished, IngestError> {
    if let Some(missing) = sources
        .iter()
        .zip(&done)
        .find(|(s, d)| s.kind != AssetKind::Page && d.is_none())
    {
        return Err(IngestError::Source {
            file: missing.0.file.clone(),
            reason: "not rendered yet; the manifest must wait for it".into(),
        });
    }
    let mut uploads = UploadTally::default();
    let mut pages_reused = 0;
    let pages: Vec<usize> = (0..sources.len())
        .filter(|&i| sources[i].kind == AssetKind::Page && done[i].is_none())
        .collect();
    if !pages.is_empty() {
        let ready: Vec<&Asset> = done.iter().flatten().collect();
        let view = Arc::new(module_view(&info.id, profile, &ready, store).await?);
        for i in pages {
            let src = &sources[i];
            progress.asset_started(&src.path, src.kind);
            let out = process_asset(src, profile, store, previous, Some(&view), progress).await?;
            progress.asset_finished(&src.path, out.reused);
            pages_reused += usize::from(out.reused);
            uploads.add(&out);
            done[i] = Some(out.asset);
        }
    }
    let mut assets: Vec<Asset> = done.into_iter().flatten().collect();
    link_captions(&mut assets);
    let published_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        module: info.clone(),
        profile: profile.name.clone(),
        tiers: profile.tiers.clone(),
        published_at,
        assets,
    };
    let unchanged = previous.is_some_and(|p| {
        p.module == manifest.module
            && p.profile == manifest.profile
            && p.tiers == manifest.tiers
            && p.assets == manifest.assets
    });
    if !unchanged {
        store.publish(&manifest).await?;
    }
    Ok(Finished {
        manifest,
        published: !unchanged,
        pages_reused,
        objects_uploaded: uploads.objects,
        bytes_uploaded: uploads.bytes,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TierBytes {
    pub tier: String,
    pub bytes: u64,
}

#[derive(Default)]
struct UploadTally {
    objects: usize,
    bytes: u64,
}

impl UploadTally {
    fn add(&mut self, out: &AssetOutcome) {
        self.objects += out.objects_uploaded;
        self.bytes += out.bytes_uploaded;
    }
}

/// One asset rendered (or reused) and stored.
#[derive(Debug)]
pub struct AssetOutcome {
    pub asset: Asset,
    /// True when the previous manifest's variants were still valid and present.
    pub reused: bool,
    pub objects_uploaded: usize,
    pub bytes_uploaded: u64,
}

/// What pages can point at: the module's other assets, and the videos'
/// placeholders read back from the store to be inlined as posters.
pub async fn module_view(
    module: &ModuleId,
    profile: &Profile,
    done: &[&Asset],
    store: &Store,
) -> Result<ModuleView, IngestError> {
    use base64::Engine as _;
    let mut posters = BTreeMap::new();
    for asset in done.iter().filter(|a| a.kind == AssetKind::Video) {
        let Some(v) = asset.variants.iter().find(|v| v.name == "placeholder") else {
            continue;
        };
        if v.bytes > 1024 {
            continue;
        }
        if let Some(bytes) = store.get_bytes(&v.key.to_string()).await? {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            posters.insert(asset.path.clone(), format!("data:{};base64,{b64}", v.mime));
        }
    }
    Ok(ModuleView {
        id: module.to_string(),
        tiers: profile.tiers.iter().map(|t| t.name.clone()).collect(),
        assets: done
            .iter()
            .map(|a| (a.path.clone(), (*a).clone()))
            .collect(),
        posters,
    })
}

/// One asset's work, the unit a worker takes from the queue: hash the
/// source, reuse the previous variants if nothing they derive from changed,
/// otherwise render and upload every rendition content-addressed. Pages need
/// `view` (what the rest of the module became).
pub async fn process_asset(
    src: &SourceAsset,
    profile: &Profile,
    store: &Store,
    previous: Option<&Manifest>,
    view: Option<&Arc<ModuleView>>,
    progress: &Arc<dyn Progress>,
) -> Result<AssetOutcome, IngestError> {
    let mut uploads = UploadTally::default();
    let (hash, bytes) = read_source(src, profile).await?;
    let derivation = derivation(src.kind, &hash, profile, view.map(|v| v.digest()));
    if let Some(old) = previous
        .and_then(|m| m.asset(&src.path))
        .filter(|a| a.derivation == derivation)
    {
        let mut all_present = true;
        for v in &old.variants {
            all_present &= store.contains(&v.key).await?;
        }
        if all_present {
            return Ok(AssetOutcome {
                asset: old.clone(),
                reused: true,
                objects_uploaded: 0,
                bytes_uploaded: 0,
            });
        }
    }

    let rendered = render(src, profile, bytes, view.cloned(), progress).await?;
    let source = SourceInfo {
        bytes: src.bytes,
        hash,
        mime: src.mime.to_owned(),
    };
    let duration = rendered.duration;
    let placeholder = rendered.placeholder;
    let mut captions = Vec::new();
    for extracted in &rendered.captions {
        // Captions are small: read whole, stored content-addressed.
        let text = tokio::fs::read(&extracted.path)
            .await
            .map_err(|e| IngestError::Source {
                file: src.file.clone(),
                reason: format!(
                    "subtitle stream {}: reading its WebVTT: {e}",
                    extracted.stream
                ),
            })?;
        let len = text.len() as u64;
        let (key, uploaded) = store.put_object(Bytes::from(text), "vtt").await?;
        if uploaded {
            uploads.objects += 1;
            uploads.bytes += len;
        }
        captions.push(Caption {
            path: format!("{}#{}", src.path, extracted.stream),
            language: extracted.language.clone(),
            key: Some(key),
        });
    }
    let variants: Vec<Variant> = futures::stream::iter(rendered.renditions)
        .map(|r| upload(store, src, r))
        .buffered(UPLOAD_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .map(|(variant, tally)| {
            uploads.objects += tally.objects;
            uploads.bytes += tally.bytes;
            variant
        })
        .collect();
    if variants.is_empty() {
        return Err(IngestError::Source {
            file: src.file.clone(),
            reason: "produced no renditions".into(),
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
        warn_over_budget(&asset, profile);
    }
    Ok(AssetOutcome {
        asset,
        reused: false,
        objects_uploaded: uploads.objects,
        bytes_uploaded: uploads.bytes,
    })
}

/// Points each video and audio asset at the WebVTT files beside it:
/// `lessons/intro.vtt` and `lessons/intro.<lang>.vtt` caption `lessons/intro.mp4`.
fn link_captions(assets: &mut [Asset]) {
    let vtts: Vec<String> = assets
        .iter()
        .filter(|a| a.path.ends_with(".vtt"))
        .map(|a| a.path.clone())
        .collect();
    for asset in assets
        .iter_mut()
        .filter(|a| matches!(a.kind, AssetKind::Video | AssetKind::Audio))
    {
        let stem = asset
            .path
            .rsplit_once('.')
            .map_or(asset.path.as_str(), |(stem, _)| stem);
        // Captions taken from the file itself stay; the files beside it are found again.
        asset.captions.retain(|c| c.key.is_some());
        let beside: Vec<Caption> = vtts
            .iter()
            .filter_map(|vtt| {
                let middle = vtt.strip_prefix(stem)?.strip_suffix(".vtt")?;
                let language = match middle {
                    "" => None,
                    tag => {
                        let tag = tag.strip_prefix('.')?;
                        let ok = (2..=35).contains(&tag.len())
                            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                        Some(ok.then(|| tag.to_owned())?)
                    }
                };
                Some(Caption {
                    path: vtt.clone(),
                    language,
                    key: None,
                })
            })
            .collect();
        asset.captions.splice(0..0, beside);
    }
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
        let fail = |reason: String| IngestError::Source {
            file: file.clone(),
            reason,
        };
        let meta = std::fs::metadata(&file).map_err(|e| fail(e.to_string()))?;
        if meta.len() == 0 {
            return Err(fail("the file is empty".into()));
        }
        if meta.len() > limit {
            return Err(fail(format!(
                "{} bytes, more than the {limit} allowed for this kind of file",
                meta.len()
            )));
        }
        if matches!(kind, AssetKind::Video | AssetKind::Audio) {
            Ok((hash_file(&file)?.0, None))
        } else {
            let bytes = Bytes::from(std::fs::read(&file).map_err(|e| fail(e.to_string()))?);
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

struct Rendered {
    renditions: Vec<Rendition>,
    duration: Option<f64>,
    /// WebVTT files made from the container's subtitle tracks.
    captions: Vec<video::ExtractedCaptions>,
    /// An image's inlinable placeholder (a data URI).
    placeholder: Option<String>,
    /// Keeps the work directory of encoded files alive until they are uploaded.
    _workdir: Option<tempfile::TempDir>,
}

async fn render(
    src: &SourceAsset,
    profile: &Profile,
    bytes: Option<Bytes>,
    view: Option<Arc<ModuleView>>,
    progress: &Arc<dyn Progress>,
) -> Result<Rendered, IngestError> {
    let src = src.clone();
    let profile = profile.clone();
    let progress = Arc::clone(progress);
    let file = src.file.clone();
    blocking(&file, move || {
        let lowest_tier = profile.tiers[0].name.clone();
        match src.kind {
            AssetKind::Video | AssetKind::Audio => {
                let workdir = tempfile::Builder::new()
                    .prefix("lowband-render-")
                    .tempdir()
                    .map_err(|e| IngestError::Source {
                        file: src.file.clone(),
                        reason: format!("cannot create a work directory: {e}"),
                    })?;
                let report = |f: f64| progress.asset_progress(&src.path, f);
                let out = video::render(
                    &src.file,
                    &profile.video,
                    workdir.path(),
                    &lowest_tier,
                    &report,
                )?;
                Ok(Rendered {
                    renditions: out.renditions,
                    duration: out.duration,
                    captions: out.captions,
                    placeholder: None,
                    _workdir: Some(workdir),
                })
            }
            AssetKind::Image => {
                let bytes = bytes.unwrap_or_default();
                let out = image::render(&src.file, &bytes, &profile.image)?;
                Ok(Rendered {
                    renditions: out.renditions,
                    duration: None,
                    captions: Vec::new(),
                    placeholder: Some(out.placeholder),
                    _workdir: None,
                })
            }
            AssetKind::Page | AssetKind::File => {
                let bytes = bytes.unwrap_or_default();
                let kind = if src.kind == AssetKind::Page {
                    VariantKind::Page
                } else {
                    VariantKind::File
                };
                if src.kind == AssetKind::Page && std::str::from_utf8(&bytes).is_err() {
                    return Err(IngestError::Source {
                        file: src.file.clone(),
                        reason: "the page is not valid UTF-8".into(),
                    });
                }
                let renditions = if src.kind == AssetKind::Page {
                    let view = view.unwrap_or_default();
                    page::render_page(&bytes, &src.path, src.mime, &view, &profile.page).map_err(
                        |e| IngestError::Source {
                            file: src.file.clone(),
                            reason: e.to_string(),
                        },
                    )?
                } else if discover::is_text(src.mime) {
                    page::render_file(bytes, src.mime, src.ext, &lowest_tier, &profile.page)
                } else {
                    vec![Rendition::bytes(
                        "identity",
                        kind,
                        &lowest_tier,
                        src.ext,
                        src.mime,
                        bytes,
                    )]
                };
                Ok(Rendered {
                    renditions,
                    duration: None,
                    captions: Vec::new(),
                    placeholder: None,
                    _workdir: None,
                })
            }
        }
    })
    .await
}

/// Stores one rendition and describes it as a manifest variant.
async fn upload(
    store: &Store,
    src: &SourceAsset,
    r: Rendition,
) -> Result<(Variant, UploadTally), IngestError> {
    let mut tally = UploadTally::default();
    let (key, bytes, uploaded) = match r.payload {
        Payload::Bytes(b) => {
            let len = b.len() as u64;
            let (key, uploaded) = store.put_object(b, r.ext).await?;
            (key, len, uploaded)
        }
        Payload::File(path) => {
            let ext = r.ext;
            let hashed_path = path.clone();
            let (hash, len) = blocking(&src.file, move || hash_file(&hashed_path)).await?;
            let key = ObjectKey::new(hash, ext);
            let uploaded = store.put_file(&key, &path).await?;
            (key, len, uploaded)
        }
    };
    if uploaded {
        tally.objects += 1;
        tally.bytes += bytes;
    }
    // The HLS media playlist names the rendition's own object by byte ranges.
    let playlist = match &r.fragments {
        Some(fragments) => {
            let text = fragments.media_playlist(&format!("/o/{key}"));
            let len = text.len() as u64;
            let (playlist, uploaded) = store.put_object(bytes::Bytes::from(text), "m3u8").await?;
            if uploaded {
                tally.objects += 1;
                tally.bytes += len;
            }
            Some(playlist)
        }
        None => None,
    };
    let bitrate = r
        .duration
        .filter(|d| *d > 0.0)
        .map(|d| (bytes as f64 * 8.0 / d).round() as u64);
    let variant = Variant {
        name: r.name,
        kind: r.kind,
        tier: r.tier,
        key,
        bytes,
        mime: r.mime,
        codecs: r.codecs,
        width: r.width,
        height: r.height,
        fps: r.fps,
        bitrate,
        duration: r.duration,
        encoding: r.encoding,
        peak_bitrate: r.fragments.as_ref().map(|f| f.peak_bitrate()),
        playlist,
        mode: r.mode,
        ssim: r.ssim.map(|s| (s * 10_000.0).round() / 10_000.0),
        first_load_bytes: r.first_load_bytes,
        alternate: r.alternate.is_some(),
        language: r.alternate.flatten(),
    };
    Ok((variant, tally))
}

fn hash_file(path: &Path) -> Result<(ContentHash, u64), IngestError> {
    let fail = |e: std::io::Error| IngestError::Source {
        file: path.to_owned(),
        reason: e.to_string(),
    };
    let mut reader = std::fs::File::open(path).map_err(fail)?;
    let mut hasher = ContentHash::hasher();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(fail)?;
        if n == 0 {
            return Ok((hasher.finish(), total));
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
}

/// Runs CPU or filesystem work off the async runtime. Work that fans out
/// further (rendering) does so on the rayon pool from inside.
async fn blocking<T: Send + 'static>(
    file: &Path,
    work: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(IngestError::Worker {
            file: file.to_owned(),
            reason: if e.is_panic() {
                "it panicked".into()
            } else {
                e.to_string()
            },
        })
    })
}
