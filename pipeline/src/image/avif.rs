//! AVIF: one AV1 intra frame from libaom (through FFmpeg, already linked for
//! video), wrapped in the AVIF container by `avif-serialize`.
//!
//! FFmpeg 5.1's own avif muxer writes only to seekable files and cannot carry
//! alpha; avif-serialize (what ravif uses) builds the container in memory and
//! stores alpha as the auxiliary monochrome AV1 image the format defines.
//!
//! Settings, measured on the two sample photos at the default ladder (eight
//! pictures, 320–1280 px, one thread each; ffmpeg CLI, same CRFs): libaom
//! all-intra at cpu-used 6 took 4.2 s CPU for 162 KB at SSIM 0.957. Faster
//! presets cost more bytes than they save time: at equal SSIM (0.953) cpu-used
//! 6 made 131 KB, 7 made 165 KB (+27%) in 3.0 s and 8 made 183 KB (+40%) in
//! 2.2 s; `cpu-used=9` through `aom-params` lost further. At cpu-used 6
//! all-intra, `enable-restoration=0` and `deltaq-mode=0` changed neither bytes
//! nor time (already off). SVT-AV1 1.4 was not faster for pictures this small
//! (preset 8: 8.5 s wall for the eight, preset 10: 6.9 s, against 7.2 s for
//! libaom in the same noisy run; SSIM not matched) and wants 64 px and up.
//! Rayon runs the widths × formats in parallel, so libaom gets one thread
//! (`row-mt` and tiles would only split the same work finer).

use bytes::Bytes;
use ffmpeg::{codec, color, encoder, format::Pixel, frame, Dictionary, Packet};
use ffmpeg_next as ffmpeg;
use image::DynamicImage;

use super::error::Failure;
use crate::media::{self, MediaError};

/// libaom speed in all-intra mode: 6 takes ~2× the CPU of 8 for ~30% fewer bytes at equal SSIM.
const CPU_USED: &str = "6";

/// Maps the profile's 1–100 quality to libaom's CRF (0–63): q75 → 25,
/// q45 → 40. Chosen so AVIF sits at or below WebP's bytes at similar SSIM.
pub(crate) fn crf_for_quality(quality: u8) -> u8 {
    (63 - u16::from(quality.min(100)).div_ceil(2)).clamp(0, 63) as u8
}

/// Encodes RGB or RGBA pixels (sRGB) as an 8-bit 4:2:0 AVIF; alpha, when
/// present, becomes an auxiliary alpha image encoded at a higher quality.
pub(crate) fn encode(image: &DynamicImage, quality: u8) -> Result<Bytes, Failure> {
    media::init();
    let (w, h) = (image.width(), image.height());
    let crf = crf_for_quality(quality);
    let (color, alpha) = match image {
        DynamicImage::ImageRgb8(buf) => (yuv420_frame(buf.as_raw(), 3, w, h), None),
        DynamicImage::ImageRgba8(buf) => {
            let alpha = alpha_frame(buf.as_raw(), w, h);
            let alpha = av1_intra(&alpha, Pixel::GRAY8, crf / 2)?;
            (yuv420_frame(buf.as_raw(), 4, w, h), Some(alpha))
        }
        _ => return Err(Failure::PixelLayout { format: "AVIF" }),
    };
    let color = av1_intra(&color, Pixel::YUV420P, crf)?;
    let avif = avif_serialize::Aviffy::new()
        .set_seq_profile(0)
        .set_chroma_subsampling((true, true))
        .set_full_color_range(true)
        .to_vec(&color, alpha.as_deref(), w, h, 8);
    Ok(Bytes::from(avif))
}

/// Full-range BT.601 4:2:0, the matrix AVIF readers assume when none is stated.
fn yuv420_frame(rgb: &[u8], channels: usize, w: u32, h: u32) -> frame::Video {
    let mut f = frame::Video::new(Pixel::YUV420P, w, h);
    let (wu, hu) = (w as usize, h as usize);
    let luma =
        |p: &[u8]| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
    let stride = f.stride(0);
    let plane = f.data_mut(0);
    for y in 0..hu {
        let row = &rgb[y * wu * channels..(y + 1) * wu * channels];
        for (x, p) in row.chunks_exact(channels).enumerate() {
            plane[y * stride + x] = luma(p).round().clamp(0.0, 255.0) as u8;
        }
    }
    let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
    let (su, sv) = (f.stride(1), f.stride(2));
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    for cy in 0..ch {
        for cx in 0..cw {
            // Average the 2×2 block (fewer pixels at odd edges), then convert.
            let (mut r, mut g, mut b, mut n) = (0f32, 0f32, 0f32, 0f32);
            for y in (cy * 2)..(cy * 2 + 2).min(hu) {
                for x in (cx * 2)..(cx * 2 + 2).min(wu) {
                    let p = &rgb[(y * wu + x) * channels..];
                    r += f32::from(p[0]);
                    g += f32::from(p[1]);
                    b += f32::from(p[2]);
                    n += 1.0;
                }
            }
            let (r, g, b) = (r / n, g / n, b / n);
            let yy = 0.299 * r + 0.587 * g + 0.114 * b;
            u[cy * cw + cx] = ((b - yy) / 1.772 + 128.0).round().clamp(0.0, 255.0) as u8;
            v[cy * cw + cx] = ((r - yy) / 1.402 + 128.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    for (plane, stride, values) in [(1, su, &u), (2, sv, &v)] {
        let data = f.data_mut(plane);
        for y in 0..ch {
            data[y * stride..y * stride + cw].copy_from_slice(&values[y * cw..(y + 1) * cw]);
        }
    }
    f
}

fn alpha_frame(rgba: &[u8], w: u32, h: u32) -> frame::Video {
    let mut f = frame::Video::new(Pixel::GRAY8, w, h);
    let stride = f.stride(0);
    let plane = f.data_mut(0);
    for (y, row) in rgba.chunks_exact(w as usize * 4).enumerate() {
        for (x, p) in row.chunks_exact(4).enumerate() {
            plane[y * stride + x] = p[3];
        }
    }
    f
}

/// One AV1 key frame, as the OBUs an AVIF item holds (no temporal delimiters).
fn av1_intra(picture: &frame::Video, pixel: Pixel, crf: u8) -> Result<Vec<u8>, Failure> {
    let fail = |op: &'static str| move |e: ffmpeg::Error| Failure::Avif(MediaError::op(op)(e));
    let codec = encoder::find_by_name("libaom-av1").ok_or(Failure::NoAvifEncoder)?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(fail("creating"))?;
    enc.set_width(picture.width());
    enc.set_height(picture.height());
    enc.set_format(pixel);
    enc.set_time_base((1, 1));
    enc.set_color_range(color::Range::JPEG);
    if pixel != Pixel::GRAY8 {
        enc.set_colorspace(color::Space::BT470BG);
        enc.set_color_primaries(color::Primaries::BT709);
        enc.set_color_transfer_characteristic(color::TransferCharacteristic::IEC61966_2_1);
    }
    let mut options = Dictionary::new();
    options.set("usage", "allintra");
    options.set("still-picture", "1");
    options.set("cpu-used", CPU_USED);
    options.set("crf", &crf.to_string());
    options.set("b", "0");
    // Widths × formats already run in parallel on the rayon pool.
    options.set("threads", "1");
    let mut enc = enc.open_with(options).map_err(fail("opening"))?;
    let mut picture = picture.clone();
    picture.set_pts(Some(0));
    enc.send_frame(&picture).map_err(fail("encoding"))?;
    enc.send_eof().map_err(fail("flushing"))?;
    let mut out = Vec::new();
    let mut packet = Packet::empty();
    while media::receive_packet(&mut enc, &mut packet).map_err(fail("encoding"))? {
        if let Some(data) = packet.data() {
            strip_temporal_delimiters(data, &mut out)?;
        }
    }
    if out.is_empty() {
        return Err(Failure::AvifEmpty);
    }
    Ok(out)
}

/// Copies the OBUs of a packet except temporal delimiters, which an AVIF
/// item must not contain. Every OBU from libaom carries its size field.
fn strip_temporal_delimiters(data: &[u8], out: &mut Vec<u8>) -> Result<(), Failure> {
    const OBU_TEMPORAL_DELIMITER: u8 = 2;
    let mut at = 0;
    while at < data.len() {
        let header = data[at];
        let obu_type = (header >> 3) & 0x0F;
        let has_extension = header & 0x04 != 0;
        if header & 0x02 == 0 {
            return Err(Failure::AvifObu);
        }
        let mut pos = at + 1 + usize::from(has_extension);
        let mut size = 0usize;
        for i in 0..8 {
            let byte = *data.get(pos).ok_or(Failure::AvifObu)?;
            pos += 1;
            size |= usize::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                break;
            }
        }
        let end = pos
            .checked_add(size)
            .filter(|&e| e <= data.len())
            .ok_or(Failure::AvifObu)?;
        if obu_type != OBU_TEMPORAL_DELIMITER {
            out.extend_from_slice(&data[at..end]);
        }
        at = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_into_crf_range() {
        assert_eq!(crf_for_quality(75), 25);
        assert_eq!(crf_for_quality(45), 40);
        assert_eq!(crf_for_quality(100), 13);
        assert_eq!(crf_for_quality(1), 62);
    }

    #[test]
    fn temporal_delimiters_are_dropped() {
        // TD (type 2, size 0), then a padding OBU (type 15) of 2 bytes.
        let data = [0x12, 0x00, 0x7A, 0x02, 0xAA, 0xBB];
        let mut out = Vec::new();
        strip_temporal_delimiters(&data, &mut out).unwrap();
        assert_eq!(out, [0x7A, 0x02, 0xAA, 0xBB]);
        assert!(strip_temporal_delimiters(&[0x7A, 0x05, 0x00], &mut out).is_err());
    }
}
