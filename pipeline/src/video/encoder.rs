//! A rung's video encoder: libx264 or SVT-AV1, at a constant rate factor
//! under the rung's cap, with keyframes only at the shared instants.
//!
//! Keyframes at the same instants in every rung make every rung's fragments
//! (and HLS segments) start at the same times, so players can switch rungs.
//! The same encoder settings serve the encode (`output`) and the tuning
//! samples (`tune`), so the CRF found while tuning is the CRF that reaches
//! its SSIM in the encode.

use std::path::Path;

use ffmpeg::{codec, encoder, Codec, Dictionary, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::{RungMode, VideoCodec};

use super::codecs::{av01_from_extradata, avc1_from_extradata};
use super::error::VideoError;
use super::plan::VideoPlan;
use crate::media;

/// The FFmpeg encoder behind a rung's codec.
pub(super) fn encoder_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "libx264",
        VideoCodec::Av1 => "libsvtav1",
    }
}

/// The encoder's time base: one tick per frame at the rung's rate.
pub(super) fn encoder_time_base(plan: &VideoPlan) -> Rational {
    Rational(plan.fps.denominator(), plan.fps.numerator())
}

/// An opened encoder for a rung (libx264 or SVT-AV1), at constant rate
/// factor `crf` under the rung's cap, with keyframes where the rung's
/// keyframe interval puts them; and its codec, for the muxer's stream.
pub(super) fn video_encoder(
    source: &Path,
    plan: &VideoPlan,
    crf: u8,
    global_header: bool,
    bt709: bool,
) -> Result<(encoder::Video, Codec), VideoError> {
    let name = encoder_name(plan.codec);
    let fail = |op: &str| VideoError::ffmpeg(source, format!("{op} {name} for rung {}", plan.name));
    let codec = encoder::find_by_name(name).ok_or_else(|| {
        VideoError::refused(
            source,
            format!(
                "rung {}: this FFmpeg has no {name} encoder; install an FFmpeg built with it \
                 (Debian 12's libavcodec59 has libx264 and libsvtav1) or change the rung's codec",
                plan.name
            ),
        )
    })?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(fail("creating"))?;
    enc.set_width(plan.width);
    enc.set_height(plan.height);
    enc.set_format(ffmpeg::format::Pixel::YUV420P);
    enc.set_time_base(encoder_time_base(plan));
    enc.set_frame_rate(Some(plan.fps));
    enc.set_aspect_ratio(Rational(1, 1));
    if bt709 {
        // SDR BT.709, limited range: what HDR sources are tone-mapped to.
        enc.set_colorspace(ffmpeg::color::Space::BT709);
        enc.set_color_range(ffmpeg::color::Range::MPEG);
        enc.set_color_primaries(ffmpeg::color::Primaries::BT709);
        enc.set_color_transfer_characteristic(ffmpeg::color::TransferCharacteristic::BT709);
    }
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let options = match plan.codec {
        VideoCodec::H264 => x264_options(plan, crf),
        VideoCodec::Av1 => svt_av1_options(plan, crf),
    };
    let encoder = enc.open_with(options).map_err(fail("opening"))?;
    Ok((encoder, codec))
}

fn x264_options(plan: &VideoPlan, crf: u8) -> Dictionary<'static> {
    let maxrate = plan.video_kbps * 1000;
    let mut options = Dictionary::new();
    options.set("preset", &plan.preset);
    options.set("profile", "main");
    options.set("crf", &crf.to_string());
    options.set("maxrate", &maxrate.to_string());
    // A two-second buffer keeps the cap meaningful on a link that carries no more.
    options.set("bufsize", &(maxrate * 2).to_string());
    options.set("forced-idr", "1");
    // Keyframes only at the shared instants (forced by the output), none
    // at scene changes.
    if plan.mode == RungMode::Slides {
        // At one picture a second, B-frames would delay the first picture
        // by seconds in any player that ignores edit lists, and buy little
        // on pictures that rarely change.
        options.set("x264-params", "scenecut=0:bframes=0");
    } else {
        options.set("x264-params", "scenecut=0");
    }
    options.set(
        "g",
        &((f64::from(plan.fps) * plan.keyframe_interval * 2.0).ceil() as u32).to_string(),
    );
    options.set("threads", "1");
    options
}

/// SVT-AV1 in capped-CRF mode: `mbr` is its hard ceiling, as maxrate is
/// for x264. Its keyframes come every `keyframe_interval` of frames at the
/// rung's constant rate (the same instants as the forced x264 keyframes),
/// closed GOPs so every fragment decodes on its own, and no scene-change
/// keyframes in between.
fn svt_av1_options(plan: &VideoPlan, crf: u8) -> Dictionary<'static> {
    let mut options = Dictionary::new();
    options.set("preset", &plan.preset);
    options.set("crf", &crf.to_string());
    options.set(
        "g",
        &((f64::from(plan.fps) * plan.keyframe_interval)
            .round()
            .max(1.0) as u32)
            .to_string(),
    );
    // lp=1: one rung's encoder stays near one core; rungs run side by side.
    options.set(
        "svtav1-params",
        &format!("mbr={}:scd=0:irefresh-type=2:lp=1", plan.video_kbps),
    );
    options
}

/// The RFC 6381 string of what this encoder produces (`avc1.PPCCLL`,
/// `av01.P.LLT.DD`), read from its extradata; a conservative default if
/// that cannot be read.
pub(super) fn codecs_string(codec: VideoCodec, encoder: &encoder::Video) -> String {
    let extradata = media::extradata(encoder);
    let (parsed, fallback) = match codec {
        VideoCodec::H264 => (avc1_from_extradata(extradata), "avc1.4d401e"),
        VideoCodec::Av1 => (av01_from_extradata(extradata), "av01.0.08M.08"),
    };
    parsed.unwrap_or_else(|| {
        tracing::warn!(
            ?codec,
            fallback,
            "cannot read the codec string from the encoder's extradata; using a conservative one"
        );
        fallback.to_owned()
    })
}
