//! Images: decoded under limits, turned upright and into sRGB, resized to
//! the profile's widths and encoded as AVIF, lossy WebP and progressive JPEG,
//! with a tiny inlinable placeholder.
//!
//! `decode` checks bytes, pixels and frames before any pixel buffer exists
//! and converts colour (`colour`); `avif` wraps libaom's AV1 in AVIF. No
//! metadata reaches the outputs: they are untagged, hence sRGB. An animated
//! GIF becomes an animated WebP per width (`mode: "animated"`), its first
//! frame the JPEG (a still poster for browsers without WebP).

mod avif;
mod colour;
mod decode;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;
use fast_image_resize::{
    images::Image as FirImage, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};
use image::{DynamicImage, RgbaImage};
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::{ImageFormat, ImageSettings};
use rayon::prelude::*;

use crate::rendition::Rendition;
use decode::{Animation, Source};

#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ImageError {
    pub file: PathBuf,
    pub reason: String,
}

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
    let fail = |reason: String| ImageError {
        file: file.to_owned(),
        reason,
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
fn placeholder(image: &DynamicImage) -> Result<String, String> {
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
    Err("cannot make a placeholder under 1 KB".into())
}

/// Every frame resized and encoded as one animated lossy WebP; returns the
/// bytes and the duration in seconds.
fn animated_webp(
    animation: &Animation,
    width: u32,
    height: u32,
    quality: u8,
) -> Result<(Bytes, f64), String> {
    let frames = animation
        .frames
        .iter()
        .map(
            |(frame, _)| match resize(&DynamicImage::ImageRgba8(frame.clone()), width, height)? {
                DynamicImage::ImageRgba8(buf) => Ok(buf),
                other => Ok(other.into_rgba8()),
            },
        )
        .collect::<Result<Vec<RgbaImage>, String>>()?;
    let mut config =
        webp::WebPConfig::new().map_err(|()| "the WebP encoder cannot be configured".to_owned())?;
    config.quality = f32::from(quality);
    config.method = 4;
    let mut encoder = webp::AnimEncoder::new(width, height, &config);
    encoder.set_loop_count(0);
    let mut at_ms = 0i32;
    for (buf, (_, delay)) in frames.iter().zip(&animation.frames) {
        encoder.add_frame(webp::AnimFrame::from_rgba(
            buf.as_raw(),
            width,
            height,
            at_ms,
        ));
        // Browsers show 0–10 ms GIF delays as 100 ms; keep what they show.
        let delay = if *delay <= 10 { 100 } else { *delay };
        at_ms = at_ms.saturating_add(i32::try_from(delay).unwrap_or(i32::MAX));
    }
    let bytes = encoder
        .try_encode()
        .map_err(|e| format!("the animated WebP encoder failed: {e:?}"))?;
    Ok((Bytes::copy_from_slice(&bytes), f64::from(at_ms) / 1000.0))
}

fn resize(src: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, String> {
    if (src.width(), src.height()) == (width, height) {
        return Ok(src.clone());
    }
    let pixel = if src.color().has_alpha() {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let mut dst = FirImage::new(width, height, pixel);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(src, &mut dst, &options)
        .map_err(|e| format!("resizing to {width}x{height}: {e}"))?;
    let buffer = dst.into_vec();
    let out = if pixel == PixelType::U8x4 {
        image::RgbaImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgb8)
    };
    out.ok_or_else(|| format!("resizing to {width}x{height}: buffer size mismatch"))
}

/// Encodes RGB or RGBA pixels as AVIF, lossy WebP or progressive JPEG.
pub(crate) fn encode(
    image: &DynamicImage,
    format: ImageFormat,
    quality: u8,
) -> Result<Bytes, String> {
    let (w, h) = (image.width(), image.height());
    match format {
        ImageFormat::Avif => avif::encode(image, quality),
        ImageFormat::Webp => {
            let encoder = match image {
                DynamicImage::ImageRgba8(buf) => webp::Encoder::from_rgba(buf.as_raw(), w, h),
                DynamicImage::ImageRgb8(buf) => webp::Encoder::from_rgb(buf.as_raw(), w, h),
                _ => return Err("internal: unexpected pixel layout for WebP".into()),
            };
            Ok(Bytes::copy_from_slice(&encoder.encode(f32::from(quality))))
        }
        ImageFormat::Jpeg => {
            // JPEG has no alpha: flatten onto white, as a page background would show it.
            let rgb = match image {
                DynamicImage::ImageRgba8(buf) => colour::flatten_on_white(buf),
                other => other.to_rgb8(),
            };
            encode_jpeg(rgb.as_raw(), w, h, quality)
        }
    }
}

fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Bytes, String> {
    // mozjpeg reports libjpeg errors by unwinding; keep that inside this function.
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        comp.set_size(width as usize, height as usize);
        comp.set_quality(f32::from(quality));
        comp.set_progressive_mode();
        comp.set_optimize_scans(true);
        let mut started = comp.start_compress(Vec::new())?;
        started.write_scanlines(rgb)?;
        started.finish()
    })
    .map_err(|_| "the JPEG encoder failed".to_owned())?
    .map(Bytes::from)
    .map_err(|e| format!("the JPEG encoder failed: {e}"))
}
