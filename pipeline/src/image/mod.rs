//! Images: decoded under limits, oriented, resized to the profile's widths
//! and encoded as lossy WebP and progressive JPEG.
//!
//! The header is read first and the pixel count checked against the profile
//! before any pixel buffer is allocated, so a decompression bomb costs a few
//! microseconds and no memory. EXIF orientation is applied and no metadata
//! is carried into the outputs.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use fast_image_resize::{
    images::Image as FirImage, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};
use image::{DynamicImage, ImageDecoder, ImageReader};
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::{ImageFormat, ImageSettings};
use rayon::prelude::*;

use crate::rendition::Rendition;

#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ImageError {
    pub file: PathBuf,
    pub reason: String,
}

/// Renders every width × format of the ladder for one image.
pub fn render(
    file: &Path,
    bytes: &[u8],
    settings: &ImageSettings,
) -> Result<Vec<Rendition>, ImageError> {
    let fail = |reason: String| ImageError {
        file: file.to_owned(),
        reason,
    };
    let source = decode(bytes, settings).map_err(fail)?;
    let (src_w, src_h) = (source.width(), source.height());

    // One entry per distinct output width, owned by the slowest tier asking for it.
    let mut widths: Vec<(u32, &str, u8)> = Vec::new();
    for rung in &settings.rungs {
        let width = rung.width.min(src_w);
        if !widths.iter().any(|(w, _, _)| *w == width) {
            widths.push((width, &rung.tier, rung.quality));
        }
    }

    let has_alpha = source.color().has_alpha();
    let rgba = if has_alpha {
        DynamicImage::ImageRgba8(source.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(source.to_rgb8())
    };
    drop(source);

    let jobs: Vec<_> = widths
        .iter()
        .flat_map(|&(w, tier, quality)| {
            settings.formats.iter().map(move |&f| (w, tier, quality, f))
        })
        .collect();
    jobs.par_iter()
        .map(|&(width, tier, quality, format)| {
            let height = ((u64::from(src_h) * u64::from(width) + u64::from(src_w) / 2)
                / u64::from(src_w))
            .max(1) as u32;
            let resized = resize(&rgba, width, height).map_err(fail)?;
            let encoded = encode(&resized, format, quality).map_err(fail)?;
            let mut r = Rendition::bytes(
                &format!("w{width}-{}", format_name(format)),
                VariantKind::Image,
                tier,
                format.ext(),
                format.mime(),
                encoded,
            );
            r.width = Some(width);
            r.height = Some(height);
            Ok(r)
        })
        .collect()
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Webp => "webp",
        ImageFormat::Jpeg => "jpeg",
    }
}

/// Decodes with the pixel budget enforced from the header, then orients.
fn decode(bytes: &[u8], settings: &ImageSettings) -> Result<DynamicImage, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.len() as u64 > settings.max_bytes {
        return Err(format!(
            "{} bytes, more than the {} allowed",
            bytes.len(),
            settings.max_bytes
        ));
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot read the image header: {e}"))
    };
    let header = reader()?;
    if header.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err("truncated JPEG: the last scan has no end-of-image marker".into());
    }
    let (w, h) = header
        .into_dimensions()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > settings.max_pixels {
        return Err(format!(
            "{w}x{h} is {pixels} pixels, more than the {} allowed",
            settings.max_pixels
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // Room for the decoded picture at 16 bits per channel with alpha, and the decoder's own buffers.
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut reader = reader()?;
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode the image: {e}"))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Decoders fill a cut-off JPEG with grey and report success; a complete
/// file has an end-of-image marker after its last start-of-scan. Neither
/// marker can occur inside entropy-coded data (0xFF is stuffed there).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
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

/// Encodes RGB or RGBA pixels as lossy WebP or progressive JPEG.
pub(crate) fn encode(
    image: &DynamicImage,
    format: ImageFormat,
    quality: u8,
) -> Result<Bytes, String> {
    let (w, h) = (image.width(), image.height());
    match format {
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
                DynamicImage::ImageRgba8(buf) => flatten_on_white(buf),
                other => other.to_rgb8(),
            };
            encode_jpeg(rgb.as_raw(), w, h, quality)
        }
    }
}

fn flatten_on_white(buf: &image::RgbaImage) -> image::RgbImage {
    image::RgbImage::from_fn(buf.width(), buf.height(), |x, y| {
        let [r, g, b, a] = buf.get_pixel(x, y).0;
        let blend =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
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
