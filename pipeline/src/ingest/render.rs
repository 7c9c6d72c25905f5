//! One asset's renditions, made off the async runtime by the renderer for
//! its kind: `video` for video and sound, `image`, `page` for pages and
//! text files; other files are stored as authored.

use std::sync::Arc;

use bytes::Bytes;
use lowband_catalog::manifest::{AssetKind, VariantKind};
use lowband_catalog::{media_type, Profile};

use super::context::{blocking, Context, Progress};
use super::error::IngestError;
use crate::discover::SourceAsset;
use crate::page::{self, ModuleView};
use crate::rendition::Rendition;
use crate::{image, video};

/// What one asset's renderer made.
pub(super) struct Rendered {
    pub renditions: Vec<Rendition>,
    pub duration: Option<f64>,
    /// WebVTT files made from the container's subtitle tracks.
    pub captions: Vec<video::ExtractedCaptions>,
    /// An image's inlinable placeholder (a data URI).
    pub placeholder: Option<String>,
    /// The work directory of encoded files, kept until they are uploaded.
    pub workdir: Option<tempfile::TempDir>,
}

impl Rendered {
    fn of(renditions: Vec<Rendition>) -> Self {
        Self {
            renditions,
            duration: None,
            captions: Vec::new(),
            placeholder: None,
            workdir: None,
        }
    }
}

/// Renders `src` on a blocking thread; `bytes` is the source when it was
/// read into memory, `view` what a page can point at.
pub(super) async fn render(
    ctx: &Context<'_>,
    src: &SourceAsset,
    bytes: Option<Bytes>,
    view: Option<Arc<ModuleView>>,
) -> Result<Rendered, IngestError> {
    let src = src.clone();
    let profile = ctx.profile.clone();
    let progress = Arc::clone(&ctx.progress);
    let file = src.file.clone();
    blocking(&file, move || {
        let bytes = bytes.unwrap_or_default();
        match src.kind {
            AssetKind::Video | AssetKind::Audio => media(&src, &profile, progress.as_ref()),
            AssetKind::Image => {
                let out = image::render(&src.file, &bytes, &profile.image)?;
                Ok(Rendered {
                    placeholder: Some(out.placeholder),
                    ..Rendered::of(out.renditions)
                })
            }
            AssetKind::Page => page(&src, &profile, &bytes, &view.unwrap_or_default()),
            AssetKind::File => Ok(Rendered::of(plain_file(&src, &profile, bytes))),
        }
    })
    .await
}

/// Video or sound: every rung, into a fresh work directory.
fn media(
    src: &SourceAsset,
    profile: &Profile,
    progress: &dyn Progress,
) -> Result<Rendered, IngestError> {
    let workdir = tempfile::Builder::new()
        .prefix("lowband-render-")
        .tempdir()
        .map_err(|source| IngestError::Workdir {
            file: src.file.clone(),
            source,
        })?;
    let report = |f: f64| progress.asset_progress(&src.path, f);
    let out = video::render(
        &src.file,
        &profile.video,
        workdir.path(),
        lowest_tier(profile),
        &report,
    )?;
    Ok(Rendered {
        duration: out.duration,
        captions: out.captions,
        workdir: Some(workdir),
        ..Rendered::of(out.renditions)
    })
}

fn page(
    src: &SourceAsset,
    profile: &Profile,
    bytes: &Bytes,
    view: &ModuleView,
) -> Result<Rendered, IngestError> {
    if let Err(source) = std::str::from_utf8(bytes) {
        return Err(IngestError::NotUtf8 {
            file: src.file.clone(),
            source,
        });
    }
    let renditions =
        page::render_page(bytes, &src.path, src.mime, view, &profile.page).map_err(|source| {
            IngestError::Page {
                file: src.file.clone(),
                source,
            }
        })?;
    Ok(Rendered::of(renditions))
}

/// A text file is minified where it can be and precompressed; any other
/// file is stored as authored.
fn plain_file(src: &SourceAsset, profile: &Profile, bytes: Bytes) -> Vec<Rendition> {
    let tier = lowest_tier(profile);
    if media_type::compresses(src.mime) {
        page::render_file(bytes, src.mime, src.ext, tier, &profile.page)
    } else {
        vec![Rendition::bytes(
            "identity",
            VariantKind::File,
            tier,
            src.ext,
            src.mime,
            bytes,
        )]
    }
}

fn lowest_tier(profile: &Profile) -> &str {
    &profile.tiers[0].name
}
