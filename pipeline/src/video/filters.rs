//! A rung's picture filters: decoded pictures in, upright pictures at the
//! rung's size, frame rate and pixel format out.
//!
//! The same graph serves the encode (`output`) and the tuning samples
//! (`tune`), so the SSIM measured while tuning is that of what is encoded;
//! the shared first scaling step (`cascade`) builds on the same pieces.

use std::path::Path;

use ffmpeg::{filter, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::RungMode;

use super::error::VideoError;
use super::plan::VideoPlan;
use super::source::Hdr;
use crate::media::build_graph;

/// How decoded pictures look, for a graph's `buffer` source.
#[derive(Debug, Clone)]
pub(super) struct VideoInput {
    pub width: u32,
    pub height: u32,
    pub pixel: ffmpeg::format::Pixel,
    pub time_base: Rational,
    pub sample_aspect: Rational,
    /// Clockwise quarter turns to apply, in degrees.
    pub rotation: u32,
    /// Set while the pictures are still HDR (the cascade tone-maps them).
    pub hdr: Option<Hdr>,
    /// The pictures are known to be BT.709 (tagged so, or tone-mapped to
    /// it): the rungs say so too. Untagged pictures stay untagged.
    pub bt709: bool,
}

/// A rung's filter graph: decoded source pictures in, upright pictures at
/// the rung's size, rate and pixel format out. With `from_zero`, the
/// pictures start at 0 even where the source's picture starts later (its
/// first picture is repeated back to 0), so every rung's picture and
/// sound start together.
pub(super) fn video_graph(
    source: &Path,
    plan: &VideoPlan,
    input: &VideoInput,
    from_zero: bool,
) -> Result<filter::Graph, VideoError> {
    let args = video_source_args(input);
    let rotate = rotate_filters(input.rotation);
    let start = if from_zero { ":start_time=0" } else { "" };
    let (w, h, num, den) = (
        plan.width,
        plan.height,
        plan.fps.numerator(),
        plan.fps.denominator(),
    );
    let spec = match plan.mode {
        // Frames are dropped to the rung's rate before scaling: no work on frames never shown.
        RungMode::Motion => format!(
            "fps=fps={num}/{den}{start},{rotate}scale=w={w}:h={h}:flags=lanczos,setsar=1,format=yuv420p"
        ),
        // Sample at most `fps` pictures a second, then keep only those that
        // differ visibly from the last one kept: a new slide, a drawing.
        RungMode::Slides => format!(
            "fps=fps={num}/{den}{start},{rotate}scale=w={w}:h={h}:flags=lanczos,setsar=1,\
             mpdecimate=hi=768:lo=320:frac=0.33,format=yuv420p"
        ),
    };
    build_graph("buffer", "buffersink", &args, &spec, |_| {}).map_err(VideoError::ffmpeg(
        source,
        format!("building the video filter graph for rung {}", plan.name),
    ))
}

/// The `buffer` source arguments for decoded pictures of this format.
pub(super) fn video_source_args(input: &VideoInput) -> String {
    let sar = if input.sample_aspect.numerator() > 0 {
        input.sample_aspect
    } else {
        Rational(1, 1)
    };
    format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
        input.width,
        input.height,
        ffmpeg::ffi::AVPixelFormat::from(input.pixel) as i32,
        input.time_base.numerator(),
        input.time_base.denominator(),
        sar.numerator(),
        sar.denominator(),
    )
}

/// Filters that turn a picture upright, given its clockwise quarter turns.
pub(super) fn rotate_filters(rotation: u32) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}
