//! Colour: every output is 8-bit sRGB with no profile attached.
//!
//! Browsers assume sRGB for untagged images, so a source tagged with another
//! ICC profile (Display P3 from phones, Adobe RGB from cameras, a printer's
//! CMYK) is converted here, with moxcms (pure Rust, the colour engine the
//! `image` crate itself uses), and the profile dropped. A CMYK JPEG is read as
//! its raw ink planes (zune-jpeg, the decoder under `image`): through its own
//! profile when it has one, else with the naive formula; Adobe's inverted
//! storage (an APP14 "Adobe" segment) is undone first.

use image::{DynamicImage, RgbImage, RgbaImage};
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace as ZuneColorSpace;
use zune_core::options::DecoderOptions;

use super::error::Failure;

/// Turns a decoded picture into 8-bit sRGB (RGB, or RGBA when it has alpha),
/// applying its ICC profile when that is not sRGB already.
pub(crate) fn to_srgb8(image: DynamicImage, icc: Option<&[u8]>) -> Result<DynamicImage, Failure> {
    let has_alpha = image.color().has_alpha();
    // 16-bit and float sources round to 8 bits here; grey becomes RGB.
    let mut image = if has_alpha {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    let Some(profile) = icc.and_then(rgb_profile_needing_conversion) else {
        return Ok(image);
    };
    let srgb = ColorProfile::new_srgb();
    let options = TransformOptions::default();
    match &mut image {
        DynamicImage::ImageRgba8(buf) => {
            let t = profile
                .create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgba, options)
                .map_err(Failure::Icc)?;
            let src = buf.as_raw().clone();
            t.transform(&src, buf.as_mut()).map_err(Failure::Icc)?;
        }
        DynamicImage::ImageRgb8(buf) => {
            let t = profile
                .create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, options)
                .map_err(Failure::Icc)?;
            let src = buf.as_raw().clone();
            t.transform(&src, buf.as_mut()).map_err(Failure::Icc)?;
        }
        _ => {}
    }
    Ok(image)
}

/// The profile, if it is a readable RGB profile that differs from sRGB.
/// An unreadable or grey profile is ignored (the pixels are used as sRGB),
/// as browsers do.
fn rgb_profile_needing_conversion(icc: &[u8]) -> Option<ColorProfile> {
    let profile = ColorProfile::new_from_slice(icc).ok()?;
    if profile.color_space != DataColorSpace::Rgb {
        return None;
    }
    if profile.is_matrix_shaper() && same_primaries(&profile, &ColorProfile::new_srgb()) {
        // Most camera and phone JPEGs carry an sRGB profile: nothing to do.
        return None;
    }
    Some(profile)
}

fn same_primaries(a: &ColorProfile, b: &ColorProfile) -> bool {
    let close = |p: moxcms::Xyzd, q: moxcms::Xyzd| {
        (p.x - q.x).abs() < 2e-3 && (p.y - q.y).abs() < 2e-3 && (p.z - q.z).abs() < 2e-3
    };
    close(a.red_colorant, b.red_colorant)
        && close(a.green_colorant, b.green_colorant)
        && close(a.blue_colorant, b.blue_colorant)
}

/// Whether this JPEG stores CMYK (not YCCK, which the ordinary path reads).
pub(crate) fn jpeg_is_cmyk(bytes: &[u8]) -> bool {
    let mut decoder = zune_jpeg::JpegDecoder::new(ZCursor::new(bytes));
    decoder.decode_headers().is_ok() && decoder.input_colorspace() == Some(ZuneColorSpace::CMYK)
}

/// Decodes a CMYK JPEG to sRGB through its profile, or naively without one.
pub(crate) fn decode_cmyk_jpeg(
    bytes: &[u8],
    (width, height): (u32, u32),
    icc: Option<&[u8]>,
) -> Result<DynamicImage, Failure> {
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(width as usize)
        .set_max_height(height as usize)
        .jpeg_set_out_colorspace(ZuneColorSpace::CMYK);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let mut cmyk = decoder.decode().map_err(Failure::DecodeCmyk)?;
    let samples = cmyk.len();
    let wrong_size = || Failure::CmykSize {
        got: samples,
        width,
        height,
    };
    if samples != width as usize * height as usize * 4 {
        return Err(wrong_size());
    }
    if adobe_app14(bytes) {
        // Photoshop writes 255 for no ink; ICC CMYK and the formula below use 0.
        cmyk.iter_mut().for_each(|v| *v = 255 - *v);
    }
    let profile = icc
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk);
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    match profile {
        Some(profile) => {
            let t = profile
                .create_transform_8bit(
                    Layout::Rgba,
                    &ColorProfile::new_srgb(),
                    Layout::Rgb,
                    TransformOptions::default(),
                )
                .map_err(Failure::CmykIcc)?;
            t.transform(&cmyk, &mut rgb).map_err(Failure::CmykIcc)?;
        }
        None => {
            for (px, ink) in rgb.chunks_exact_mut(3).zip(cmyk.chunks_exact(4)) {
                let k = 255 - u16::from(ink[3]);
                for (out, &c) in px.iter_mut().zip(&ink[..3]) {
                    *out = (((255 - u16::from(c)) * k + 127) / 255) as u8;
                }
            }
        }
    }
    RgbImage::from_raw(width, height, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(wrong_size)
}

/// Whether the JPEG has an Adobe APP14 segment (before its first scan).
fn adobe_app14(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if marker == 0xEE && bytes.get(at + 4..at + 9) == Some(&b"Adobe"[..]) {
            return true;
        }
        at += 2 + len;
    }
    false
}

/// Lays RGBA over white, as a page background would show it (JPEG has no alpha).
pub(crate) fn flatten_on_white(buf: &RgbaImage) -> RgbImage {
    let mut out = Vec::with_capacity(buf.width() as usize * buf.height() as usize * 3);
    for px in buf.as_raw().chunks_exact(4) {
        let a = u16::from(px[3]);
        for &c in &px[..3] {
            out.push(((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    RgbImage::from_raw(buf.width(), buf.height(), out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_p3_mid_green_becomes_a_greener_srgb_green() {
        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, image::Rgb([0, 128, 0])));
        let out = to_srgb8(image, Some(&p3)).unwrap().into_rgb8();
        let [r, g, b] = out.get_pixel(0, 0).0;
        // P3's mid green lies outside sRGB's reach in green-ness: less red, more green.
        assert!(g > 128 && r < 30 && b < 60, "got {r},{g},{b}");
    }

    #[test]
    fn an_srgb_profile_leaves_pixels_alone() {
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, image::Rgb([10, 200, 30])));
        let out = to_srgb8(image, Some(&srgb)).unwrap().into_rgb8();
        assert_eq!(out.get_pixel(0, 0).0, [10, 200, 30]);
    }

    #[test]
    fn flattening_blends_toward_white() {
        let buf = RgbaImage::from_raw(2, 1, vec![0, 0, 0, 0, 0, 0, 0, 255]).unwrap();
        assert_eq!(flatten_on_white(&buf).as_raw(), &[255, 255, 255, 0, 0, 0]);
    }
}
