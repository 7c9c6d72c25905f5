//! The still and animated encoders: AVIF (see `avif`), lossy WebP and
//! progressive JPEG from 8-bit sRGB pixels, and animated WebP from a GIF's
//! frames. A video's poster is encoded here too.

use bytes::Bytes;
use image::{DynamicImage, RgbaImage};
use lowband_catalog::profile::ImageFormat;

use super::decode::Animation;
use super::error::Failure;
use super::resize::resize;
use super::{avif, colour};

/// Encodes RGB or RGBA pixels as AVIF, lossy WebP or progressive JPEG.
pub(crate) fn encode(
    image: &DynamicImage,
    format: ImageFormat,
    quality: u8,
) -> Result<Bytes, Failure> {
    let (w, h) = (image.width(), image.height());
    match format {
        ImageFormat::Avif => avif::encode(image, quality),
        ImageFormat::Webp => {
            let encoder = match image {
                DynamicImage::ImageRgba8(buf) => webp::Encoder::from_rgba(buf.as_raw(), w, h),
                DynamicImage::ImageRgb8(buf) => webp::Encoder::from_rgb(buf.as_raw(), w, h),
                _ => return Err(Failure::PixelLayout { format: "WebP" }),
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

fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Bytes, Failure> {
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
    .map_err(|_| Failure::JpegPanicked)?
    .map(Bytes::from)
    .map_err(Failure::Jpeg)
}

/// Every frame resized and encoded as one animated lossy WebP; returns the
/// bytes and the duration in seconds.
pub(crate) fn animated_webp(
    animation: &Animation,
    width: u32,
    height: u32,
    quality: u8,
) -> Result<(Bytes, f64), Failure> {
    let frames = animation
        .frames
        .iter()
        .map(
            |(frame, _)| match resize(&DynamicImage::ImageRgba8(frame.clone()), width, height)? {
                DynamicImage::ImageRgba8(buf) => Ok(buf),
                other => Ok(other.into_rgba8()),
            },
        )
        .collect::<Result<Vec<RgbaImage>, Failure>>()?;
    let mut config = webp::WebPConfig::new().map_err(|()| Failure::WebpConfig)?;
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
        .map_err(|e| Failure::AnimatedWebp(format!("{e:?}")))?;
    Ok((Bytes::copy_from_slice(&bytes), f64::from(at_ms) / 1000.0))
}
