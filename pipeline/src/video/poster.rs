//! A poster and a tiny placeholder per video, from one decoded frame.
//!
//! The poster is what a teacher sees before choosing to spend data; the
//! placeholder (a few hundred bytes) can be inlined in a page and shown
//! blurred while nothing else has arrived. The frame is converted to RGB
//! here; the stills are encoded by `image`'s encoders, as any picture is.

use ffmpeg::software::scaling;
use ffmpeg::{format::Pixel, frame};
use ffmpeg_next as ffmpeg;
use image::{imageops, DynamicImage, RgbImage};
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::ImageFormat;

use super::error::PosterError;
use super::source::VideoStreamInfo;
use crate::image::encode;
use crate::rendition::Rendition;

/// Poster width (never above the source's).
const POSTER_WIDTH: u32 = 640;
const POSTER_QUALITY: u8 = 60;
const PLACEHOLDER_WIDTH: u32 = 32;
const PLACEHOLDER_QUALITY: u8 = 30;

/// Turns a decoded frame of the video stream `stream` into the poster
/// renditions, upright and with the stream's pixel aspect applied.
pub(super) fn renditions(
    frame: &frame::Video,
    stream: &VideoStreamInfo,
    tier: &str,
) -> Result<Vec<Rendition>, PosterError> {
    let (w, h) = (
        stream.display_size().0.round() as u32,
        stream.display_size().1,
    );
    // display_size is after rotation; the frame is not rotated yet.
    let display = if stream.rotation % 180 == 90 {
        (h, w)
    } else {
        (w, h)
    };
    let rgb = to_rgb(frame, (display.0.max(2), display.1.max(2)))?;
    let upright = DynamicImage::ImageRgb8(match stream.rotation {
        90 => imageops::rotate90(&rgb),
        180 => imageops::rotate180(&rgb),
        270 => imageops::rotate270(&rgb),
        _ => rgb,
    });
    let mut out = Vec::with_capacity(3);
    let poster = fit_width(&upright, POSTER_WIDTH);
    for format in [ImageFormat::Jpeg, ImageFormat::Webp] {
        let bytes = encode(&poster, format, POSTER_QUALITY).map_err(PosterError::Encode)?;
        let name = format!("poster-{}", format.name());
        out.push(image_rendition(&name, tier, format, bytes, &poster));
    }
    let tiny = fit_width(&upright, PLACEHOLDER_WIDTH);
    let bytes =
        encode(&tiny, ImageFormat::Webp, PLACEHOLDER_QUALITY).map_err(PosterError::Encode)?;
    out.push(image_rendition(
        "placeholder",
        tier,
        ImageFormat::Webp,
        bytes,
        &tiny,
    ));
    Ok(out)
}

fn image_rendition(
    name: &str,
    tier: &str,
    format: ImageFormat,
    bytes: bytes::Bytes,
    image: &DynamicImage,
) -> Rendition {
    let mut r = Rendition::bytes(
        name,
        VariantKind::Image,
        tier,
        format.ext(),
        format.mime(),
        bytes,
    );
    r.width = Some(image.width());
    r.height = Some(image.height());
    r
}

fn fit_width(image: &DynamicImage, width: u32) -> DynamicImage {
    if image.width() <= width {
        return image.clone();
    }
    let height =
        ((u64::from(image.height()) * u64::from(width)) / u64::from(image.width())).max(1) as u32;
    image.resize_exact(width, height, imageops::FilterType::Lanczos3)
}

/// Converts (and applies the pixel aspect ratio of) a decoded frame to RGB.
fn to_rgb(frame: &frame::Video, (width, height): (u32, u32)) -> Result<RgbImage, PosterError> {
    let mut scaler = scaling::Context::get(
        frame.format(),
        frame.width(),
        frame.height(),
        Pixel::RGB24,
        width,
        height,
        scaling::Flags::LANCZOS,
    )
    .map_err(PosterError::Convert)?;
    let mut rgb = frame::Video::empty();
    scaler.run(frame, &mut rgb).map_err(PosterError::Convert)?;
    let stride = rgb.stride(0);
    let row = width as usize * 3;
    let data = rgb.data(0);
    let mut pixels = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        let start = y * stride;
        pixels.extend_from_slice(
            data.get(start..start + row)
                .ok_or(PosterError::ShortBuffer)?,
        );
    }
    RgbImage::from_raw(width, height, pixels).ok_or(PosterError::ShortBuffer)
}
