//! Scale once, then cascade: decoded pictures are turned upright and scaled
//! to the largest rung a single time, and every rung is filtered from that
//! picture instead of from the source.
//!
//! A lanczos scaler's cost grows with the width of its filter, which grows
//! with the scaling ratio: taking 144p from 720p reads five times as many
//! source pixels per output pixel as taking it from 480p. Sharing the first
//! step also converts 10-bit or 4:2:2 sources to 8-bit 4:2:0 once, not once
//! per rung. The tuning samples go through the same cascade as the encode,
//! so the SSIM measured there is the SSIM of what is encoded.

use std::path::Path;

use ffmpeg::{filter, frame, Rational};
use ffmpeg_next as ffmpeg;

use super::error::VideoError;
use super::filters::{rotate_filters, video_source_args, VideoInput};
use super::plan::{OutputPlan, VideoPlan};
use super::source::Hdr;
use crate::media::{build_graph, feed_graph, pull, MediaError};

/// The shared first step: upright pictures at the largest rung's size.
pub(super) struct Cascade {
    graph: filter::Graph,
    /// What the rungs' own graphs receive.
    output: VideoInput,
}

impl Cascade {
    /// The cascade for these plans, or None when the source pictures are
    /// already what the largest rung needs (upright, 8-bit 4:2:0, its size)
    /// or there is no video rung at all.
    pub fn new(
        source: &Path,
        input: &VideoInput,
        plans: &[OutputPlan],
    ) -> Result<Option<Self>, VideoError> {
        let Some((width, height)) = largest(plans.iter().filter_map(|p| match p {
            OutputPlan::Video(v) => Some(v),
            OutputPlan::Audio { .. } => None,
        })) else {
            return Ok(None);
        };
        let square = input.sample_aspect.numerator() == 0
            || input.sample_aspect.numerator() == input.sample_aspect.denominator();
        if input.rotation == 0
            && input.hdr.is_none()
            && (input.width, input.height) == (width, height)
            && input.pixel == ffmpeg::format::Pixel::YUV420P
            && square
        {
            return Ok(None);
        }
        let graph = graph(input, width, height).map_err(VideoError::ffmpeg(
            source,
            "building the shared scaling filter",
        ))?;
        let output = VideoInput {
            width,
            height,
            pixel: ffmpeg::format::Pixel::YUV420P,
            time_base: input.time_base,
            sample_aspect: Rational(1, 1),
            rotation: 0,
            hdr: None,
            bt709: input.bt709 || input.hdr.is_some(),
        };
        Ok(Some(Self { graph, output }))
    }

    /// The format of the pictures this cascade hands on.
    pub fn output(&self) -> &VideoInput {
        &self.output
    }

    /// Scales one decoded picture; the result keeps its timestamp.
    pub fn scale(&mut self, picture: &frame::Video) -> Result<frame::Video, MediaError> {
        feed_graph(&mut self.graph, picture)?;
        let mut scaled = frame::Video::empty();
        if pull(&mut self.graph, &mut scaled, "shared scaling")? {
            Ok(scaled)
        } else {
            // scale is one picture in, one out: nothing is ever held back.
            Err(MediaError::HeldBack {
                filter: "shared scaling",
            })
        }
    }
}

/// The size of the tallest video rung (all rungs share the display aspect).
fn largest<'a>(plans: impl Iterator<Item = &'a VideoPlan>) -> Option<(u32, u32)> {
    plans
        .max_by_key(|v| (v.height, v.width))
        .map(|v| (v.width, v.height))
}

fn graph(input: &VideoInput, width: u32, height: u32) -> Result<filter::Graph, ffmpeg::Error> {
    let rotate = rotate_filters(input.rotation);
    let spec = match input.hdr {
        None => format!("{rotate}scale=w={width}:h={height}:flags=lanczos,setsar=1,format=yuv420p"),
        // HLG or PQ to SDR BT.709: to linear light (100 nits nominal peak),
        // BT.2020 to BT.709 primaries, Hable's curve without desaturation,
        // then BT.709's transfer and matrix in limited range. Scaled
        // first, so the costly float steps run on the rung's pixels. The
        // transfer of the source is named, since a decoder may leave it
        // off the frames.
        Some(hdr) => {
            let transfer = match hdr {
                Hdr::Hlg => "arib-std-b67",
                Hdr::Pq => "smpte2084",
            };
            format!(
                "{rotate}zscale=w={width}:h={height}:filter=lanczos:tin={transfer}:pin=bt2020:min=bt2020nc:\
                 t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,\
                 zscale=t=bt709:m=bt709:r=tv,setsar=1,format=yuv420p"
            )
        }
    };
    build_graph(
        "buffer",
        "buffersink",
        &video_source_args(input),
        &spec,
        |_| {},
    )
}
