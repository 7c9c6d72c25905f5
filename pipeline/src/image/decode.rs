//! Reading an untrusted image: limits first, pixels last.
//!
//! Bytes, then the header's width × height, then (for GIF) the number of
//! frames, counted by walking the block structure without decompressing
//! anything, are checked against the profile before any pixel buffer exists:
//! a decompression bomb costs microseconds and no memory. Only then is the
//! picture decoded, under `image::Limits` sized for what the header promised.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageReader, RgbaImage};
use lowband_catalog::profile::ImageSettings;

use super::colour;
use super::error::Failure;

/// A decoded source: upright 8-bit sRGB.
pub(crate) enum Source {
    /// RGB, or RGBA when the source has alpha.
    Still(DynamicImage),
    Animated(Animation),
}

pub(crate) struct Animation {
    /// Whole composited frames (GIF disposal applied), each with its delay.
    pub frames: Vec<(RgbaImage, u32)>,
}

pub(crate) fn decode(bytes: &[u8], settings: &ImageSettings) -> Result<Source, Failure> {
    if bytes.is_empty() {
        return Err(Failure::Empty);
    }
    if bytes.len() as u64 > settings.max_bytes {
        return Err(Failure::TooManyBytes {
            bytes: bytes.len() as u64,
            max: settings.max_bytes,
        });
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(Failure::Header)
    };
    let header = reader()?;
    let format = header.format().ok_or(Failure::UnknownFormat)?;
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(Failure::TruncatedJpeg);
    }
    let (w, h) = header.into_dimensions().map_err(Failure::Unreadable)?;
    let mut limits = limits(w, h, settings)?;
    if format == image::ImageFormat::Gif {
        let frames = gif_frames(bytes, (w, h), settings)?;
        if frames > 1 {
            let pixels = frames.saturating_mul(u64::from(w) * u64::from(h));
            limits.max_alloc = Some(pixels.saturating_mul(4).saturating_add(64 << 20));
            return decode_animation(bytes, limits).map(Source::Animated);
        }
    }
    let mut reader = reader()?;
    reader.limits(limits);
    decode_still(reader, bytes, format, (w, h)).map(Source::Still)
}

/// Checks the header's size against the profile; the decoder's limits for
/// a picture of that size.
fn limits(w: u32, h: u32, settings: &ImageSettings) -> Result<image::Limits, Failure> {
    if w == 0 || h == 0 {
        return Err(Failure::NoSize {
            width: w,
            height: h,
        });
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > settings.max_pixels {
        return Err(Failure::TooManyPixels {
            width: w,
            height: h,
            pixels,
            max: settings.max_pixels,
        });
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // Room for the decoded picture at 16 bits per channel with alpha, and the decoder's own buffers.
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(64 << 20));
    Ok(limits)
}

/// A GIF's frame count, checked against the profile's frames and pixels.
fn gif_frames(bytes: &[u8], (w, h): (u32, u32), settings: &ImageSettings) -> Result<u64, Failure> {
    let frames = gif_frame_count(bytes)?;
    if frames > settings.max_frames {
        return Err(Failure::TooManyFrames {
            frames,
            max: settings.max_frames,
        });
    }
    let total = frames.saturating_mul(u64::from(w) * u64::from(h));
    if total > settings.max_pixels {
        return Err(Failure::AnimationTooLarge {
            frames,
            width: w,
            height: h,
            pixels: total,
            max: settings.max_pixels,
        });
    }
    Ok(frames)
}

/// Decodes a still picture, upright, in sRGB.
fn decode_still(
    reader: ImageReader<Cursor<&[u8]>>,
    bytes: &[u8],
    format: image::ImageFormat,
    size: (u32, u32),
) -> Result<DynamicImage, Failure> {
    let mut decoder = reader.into_decoder().map_err(Failure::Unreadable)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = if format == image::ImageFormat::Jpeg && colour::jpeg_is_cmyk(bytes) {
        drop(decoder);
        colour::decode_cmyk_jpeg(bytes, size, icc.as_deref())?
    } else {
        let image = DynamicImage::from_decoder(decoder).map_err(Failure::Decode)?;
        colour::to_srgb8(image, icc.as_deref())?
    };
    image.apply_orientation(orientation);
    Ok(image)
}

fn decode_animation(bytes: &[u8], limits: image::Limits) -> Result<Animation, Failure> {
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(Failure::UnreadableGif)?;
    decoder.set_limits(limits).map_err(Failure::UnreadableGif)?;
    let frames = decoder
        .into_frames()
        .map(|f| {
            f.map(|f| {
                let (num, den) = f.delay().numer_denom_ms();
                (f.into_buffer(), num / den.max(1))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::DecodeGif)?;
    if frames.is_empty() {
        return Err(Failure::NoGifFrameDecoded);
    }
    Ok(Animation { frames })
}

/// Counts a GIF's frames from its block structure, decompressing nothing.
/// A file cut off inside a block is an error; one that merely lacks the
/// trailer is read as far as it goes, as browsers do.
fn gif_frame_count(bytes: &[u8]) -> Result<u64, Failure> {
    let byte = |at: usize| bytes.get(at).copied().ok_or(Failure::TruncatedGif);
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 0x07) + 1)
        } else {
            0
        }
    };
    let skip_sub_blocks = |mut at: usize| -> Result<usize, Failure> {
        loop {
            let len = usize::from(byte(at)?);
            at += 1;
            if len == 0 {
                return Ok(at);
            }
            at += len;
        }
    };
    if !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return Err(Failure::NotGif);
    }
    let mut at = 13 + table(byte(10)?);
    let mut frames = 0u64;
    loop {
        match bytes.get(at) {
            None | Some(0x3B) => break,
            Some(0x21) => at = skip_sub_blocks(at + 2)?,
            Some(0x2C) => {
                frames += 1;
                at += 10 + table(byte(at + 9)?);
                byte(at)?; // LZW minimum code size
                at = skip_sub_blocks(at + 1)?;
            }
            Some(&block) => return Err(Failure::CorruptGif { block }),
        }
    }
    if frames == 0 {
        return Err(Failure::NoGifFrames);
    }
    Ok(frames)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF89a skeleton: `frames` 1×1 frames with a 2-colour global table.
    pub(crate) fn tiny_gif(frames: usize) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]);
        g.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
        for _ in 0..frames {
            g.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
            g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
            g.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
        }
        g.push(0x3B);
        g
    }

    #[test]
    fn counts_gif_frames_without_decoding() {
        assert_eq!(gif_frame_count(&tiny_gif(1)).unwrap(), 1);
        assert_eq!(gif_frame_count(&tiny_gif(7)).unwrap(), 7);
        let cut = tiny_gif(3);
        assert!(matches!(
            gif_frame_count(&cut[..cut.len() - 4]),
            Err(Failure::TruncatedGif)
        ));
        assert!(gif_frame_count(b"GIF89a").is_err());
    }

    #[test]
    fn a_tiny_gif_decodes() {
        let settings = lowband_catalog::Profile::builtin_default().image;
        match decode(&tiny_gif(3), &settings).unwrap() {
            Source::Animated(a) => assert_eq!(a.frames.len(), 3),
            Source::Still(_) => panic!("three frames are an animation"),
        }
    }
}
