//! The picture lane of a video rung: its filter graph (`filters`), its
//! encoder (`encoder`), its stream in the MP4, and the probe that measures
//! its SSIM while it encodes (`quality`).

use std::path::Path;

use ffmpeg::{encoder, format};
use ffmpeg_next as ffmpeg;

use super::lane::Lane;
use crate::video::encoder::{encoder_name, encoder_time_base, video_encoder};
use crate::video::error::VideoError;
use crate::video::filters::{video_graph, VideoInput};
use crate::video::plan::VideoPlan;
use crate::video::quality::{QualityProbe, Spans};

/// Seconds between the pictures whose SSIM is measured in a full encode:
/// incommensurate with the keyframe interval, so keyframes (the best
/// pictures) are not over-represented.
const QUALITY_SAMPLE_INTERVAL: f64 = 0.7;
/// Seconds of encode per measured keyframe interval.
const QUALITY_SPAN_EVERY: f64 = 20.0;

pub(super) fn video_lane(
    source: &Path,
    plan: &VideoPlan,
    input: &VideoInput,
    global_header: bool,
    octx: &mut format::context::Output,
) -> Result<Lane<encoder::Video>, VideoError> {
    let fail = |op: &str| VideoError::ffmpeg(source, format!("{op} for rung {}", plan.name));
    let graph = video_graph(source, plan, input, true)?;
    let (encoder, codec) = video_encoder(source, plan, plan.crf, global_header, input.bt709)?;
    let time_base = encoder_time_base(plan);
    let mut stream = octx
        .add_stream(codec)
        .map_err(fail("adding the video stream"))?;
    stream.set_parameters(&encoder);
    stream.set_time_base(time_base);
    let index = stream.index();
    let spans = Spans::new(
        plan.keyframe_interval,
        QUALITY_SPAN_EVERY,
        f64::from(time_base),
    );
    let probe = QualityProbe::new(
        (&encoder).into(),
        plan.width,
        plan.height,
        QUALITY_SAMPLE_INTERVAL,
        Some(spans),
    )
    .map_err(fail("opening the decoder that measures SSIM"))?;
    let mut lane = Lane::new(
        graph,
        encoder,
        encoder_name(plan.codec),
        "MP4",
        (index, time_base),
    );
    lane.next_keyframe = 0.0;
    lane.keyframe_interval = plan.keyframe_interval;
    lane.probe = Some(probe);
    Ok(lane)
}
