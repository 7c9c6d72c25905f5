//! Images: decoded under limits, turned upright and into sRGB, resized to
//! the profile's widths and encoded as AVIF, lossy WebP and progressive JPEG,
//! with a tiny inlinable placeholder.
//!
//! `decode` checks bytes, pixels and frames before any pixel buffer exists
//! and converts colour (`colour`); `resize` scales once per width, shared
//! by its formats; `encode` holds the encoders, with `avif` wrapping
//! libaom's AV1 (through `crate::media`, FFmpeg being linked for video
//! anyway) in AVIF. No metadata reaches the outputs: they are untagged,
//! hence sRGB. An animated GIF becomes an animated WebP per width (`mode:
//! "animated"`), its first frame the JPEG (a still poster for browsers
//! without WebP). Every failure is an [`ImageError`] naming the file, its
//! cause a [`Failure`] (`error`).

mod avif;
mod colour;
mod decode;
mod encode;
mod error;
mod resize;

use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use image::DynamicImage;
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::{ImageFormat, ImageSettings};
use rayon::prelude::*;

use crate::rendition::Rendition;
use decode::Source;
use encode::animated_webp;
pub(crate) use encode::encode;
pub use error::{Failure, ImageError};
use resize::resize;

/// What one image became.
#[derive(Debug)]
pub struct Rendered {
    pub renditions: Vec<Rendition>,
    /// A `data:image/webp;base64,...` URI of at most [`PLACEHOLDER_MAX`] bytes.
    pub placeholder: String,
}

/// Largest placeholder data URI, in bytes.
pub const PLACEHOLDER_MAX: usize = 1024;

/// Renders every width × format of the ladder for one image.
pub fn render(file: &Path, bytes: &[u8], settings: &ImageSettings) -> Result<Rendered, ImageError> {
    let fail = |source: Failure| ImageError {
        file: file.to_owned(),
        source,
    };
    let source = decode::decode(bytes, settings).map_err(fail)?;
    let (src_w, src_h) = match &source {
        Source::Still(image) => (image.width(), image.height()),
        Source::Animated(a) => a.frames[0].0.dimensions(),
    };

    // One entry per distinct output width, owned by the slowest tier asking for it.
    let mut widths: Vec<(u32, &str, u8)> = Vec::new();
    for rung in &settings.rungs {
        let width = rung.width.min(src_w);
        if !widths.iter().any(|(w, _, _)| *w == width) {
            widths.push((width, &rung.tier, rung.quality));
        }
    }
    let height_for = |width: u32| {
        ((u64::from(src_h) * u64::from(width) + u64::from(src_w) / 2) / u64::from(src_w)).max(1)
            as u32
    };

    let (still, animation) = match source {
        Source::Still(image) => (image, None),
        Source::Animated(a) => (DynamicImage::ImageRgba8(a.frames[0].0.clone()), Some(a)),
    };
    // An animation is WebP (animated) and JPEG (its first frame): AVIF
    // sequences are not worth their encode time for classroom GIFs.
    let formats: Vec<ImageFormat> = match animation {
        None => settings.formats.clone(),
        Some(_) => [ImageFormat::Webp, ImageFormat::Jpeg]
            .into_iter()
            .filter(|f| settings.formats.contains(f))
            .collect(),
    };
    // One resize per width, shared by its formats; widths and formats both run on rayon.
    let renditions = widths
        .par_iter()
        .map(|&(width, tier, quality)| {
            let height = height_for(width);
            let resized = resize(&still, width, height).map_err(fail)?;
            formats
                .par_iter()
                .map(|&format| {
                    let mut r = match (&animation, format) {
                        (Some(a), ImageFormat::Webp) => {
                            let (bytes, duration) =
                                animated_webp(a, width, height, quality).map_err(fail)?;
                            let mut r = image_rendition(width, tier, format, bytes);
                            r.mode = Some("animated".into());
                            r.duration = Some(duration);
                            r
                        }
                        _ => {
                            let bytes = encode(&resized, format, quality).map_err(fail)?;
                            image_rendition(width, tier, format, bytes)
                        }
                    };
                    r.width = Some(width);
                    r.height = Some(height);
                    Ok(r)
                })
                .collect::<Result<Vec<_>, ImageError>>()
        })
        .collect::<Result<Vec<_>, ImageError>>()?
        .into_iter()
        .flatten()
        .collect();
    let placeholder = placeholder(&still).map_err(fail)?;
    Ok(Rendered {
        renditions,
        placeholder,
    })
}

fn image_rendition(width: u32, tier: &str, format: ImageFormat, bytes: Bytes) -> Rendition {
    Rendition::bytes(
        &format!("w{width}-{}", format.name()),
        VariantKind::Image,
        tier,
        format.ext(),
        format.mime(),
        bytes,
    )
}

/// A miniature (32 px on its longer side or less) as a WebP data URI: blurry
/// by construction once the page stretches it, and a few hundred bytes.
fn placeholder(image: &DynamicImage) -> Result<String, Failure> {
    let (w, h) = (image.width(), image.height());
    for side in [32u32, 24, 16, 8] {
        let scale = f64::from(side) / f64::from(w.max(h));
        let (pw, ph) = if scale >= 1.0 {
            (w, h)
        } else {
            (
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            )
        };
        let tiny = resize(image, pw, ph)?;
        let bytes = encode(&tiny, ImageFormat::Webp, 30)?;
        let uri = format!(
            "data:image/webp;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
        if uri.len() <= PLACEHOLDER_MAX {
            return Ok(uri);
        }
    }
    Err(Failure::Placeholder)
}
