//! The sound lane of an output: the shared sound (see `timeline`)
//! resampled to the rendition's rate, encoded as AAC (MP4) or Opus (WebM).
//!
//! AAC's priming is cut from the input, and every packet moved that much
//! later, so the priming plays in place of the cut samples and sample n
//! decodes at n / rate: in sync with the picture in every player, with no
//! audio edit list to honour (audio-only M4A has none, and players over MSE
//! have been seen to drop them). WebM says the same with CodecDelay, which
//! its players honour.

#![allow(
    unsafe_code,
    reason = "the encoder's initial_padding (AAC priming), a field ffmpeg-next does not expose"
)]

use std::path::Path;

use ffmpeg::{codec, encoder, filter, format, ChannelLayout, Codec, Dictionary, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::AudioCodec;

use super::lane::Lane;
use super::AudioInput;
use crate::media::build_graph;
use crate::video::error::VideoError;
use crate::video::plan::{AudioPlan, Container};

/// The sound lane of the output `name`, muxed in `container`.
pub(super) fn audio_lane(
    source: &Path,
    name: &str,
    plan: &AudioPlan,
    input: &AudioInput,
    container: Container,
    global_header: bool,
    octx: &mut format::context::Output,
) -> Result<Lane<encoder::Audio>, VideoError> {
    let fail = |op: &str| VideoError::ffmpeg(source, format!("{op} for {name}"));
    let opened = audio_encoder(source, name, plan, global_header)?;
    let priming = match container {
        // SAFETY: a plain integer field of the opened encoder.
        Container::Mp4 => i64::from(unsafe { (*opened.encoder.as_ptr()).initial_padding }.max(0)),
        Container::Webm => 0,
    };
    let graph = audio_graph(input, plan, &opened, priming)
        .map_err(fail("building the audio filter graph"))?;
    let mut stream = octx
        .add_stream(opened.codec)
        .map_err(fail("adding the audio stream"))?;
    stream.set_parameters(&opened.encoder);
    stream.set_time_base(opened.time_base);
    let index = stream.index();
    let muxer = match container {
        Container::Mp4 => "MP4",
        Container::Webm => "WebM",
    };
    let mut lane = Lane::new(
        graph,
        opened.encoder,
        opened.name,
        muxer,
        (index, opened.time_base),
    );
    lane.shift = priming;
    Ok(lane)
}

/// An opened sound encoder and what its lane needs to know of it.
struct OpenedAudio {
    encoder: encoder::Audio,
    codec: Codec,
    /// The FFmpeg encoder's name (`aac`, `libopus`).
    name: &'static str,
    /// The sample format it takes.
    sample: format::Sample,
    time_base: Rational,
}

/// Mono AAC (planar float) or Opus (packed float, tuned for speech) at the
/// plan's rate and bitrate.
fn audio_encoder(
    source: &Path,
    name: &str,
    plan: &AudioPlan,
    global_header: bool,
) -> Result<OpenedAudio, VideoError> {
    let fail = |op: String| VideoError::ffmpeg(source, format!("{op} for {name}"));
    let (codec_name, sample) = match plan.codec {
        AudioCodec::Aac => ("aac", format::Sample::F32(format::sample::Type::Planar)),
        AudioCodec::Opus => ("libopus", format::Sample::F32(format::sample::Type::Packed)),
    };
    let codec = encoder::find_by_name(codec_name).ok_or_else(|| {
        VideoError::refused(source, format!("this FFmpeg has no {codec_name} encoder"))
    })?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(fail(format!("creating the {codec_name} encoder")))?;
    let time_base = Rational(1, plan.sample_rate as i32);
    enc.set_rate(plan.sample_rate as i32);
    enc.set_channel_layout(ChannelLayout::MONO);
    enc.set_format(sample);
    enc.set_bit_rate(plan.kbps as usize * 1000);
    enc.set_time_base(time_base);
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    if plan.codec == AudioCodec::Opus {
        options.set("application", "voip");
    }
    let encoder = enc
        .open_with(options)
        .map_err(fail(format!("opening {codec_name}")))?;
    Ok(OpenedAudio {
        encoder,
        codec,
        name: codec_name,
        sample,
        time_base,
    })
}

/// Shared sound in; the encoder's rate, format and frame size out, with
/// the first `priming` samples cut (see the module documentation).
fn audio_graph(
    input: &AudioInput,
    plan: &AudioPlan,
    opened: &OpenedAudio,
    priming: i64,
) -> Result<filter::Graph, ffmpeg::Error> {
    let trim = if priming > 0 {
        format!(",atrim=start_sample={priming}")
    } else {
        String::new()
    };
    let layout = if input.layout_bits != 0 {
        format!(":channel_layout=0x{:x}", input.layout_bits)
    } else {
        String::new()
    };
    let args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channels={}{layout}",
        input.time_base.numerator(),
        input.time_base.denominator(),
        input.rate,
        input.sample.name(),
        input.channels,
    );
    let spec = format!(
        "aresample={rate}{trim},aformat=sample_fmts={}:sample_rates={rate}:channel_layouts=mono",
        opened.sample.name(),
        rate = plan.sample_rate,
    );
    let frame_size = opened.encoder.frame_size();
    build_graph("abuffer", "abuffersink", &args, &spec, |graph| {
        if frame_size > 0 {
            if let Some(mut out) = graph.get("out") {
                out.sink().set_frame_size(frame_size);
            }
        }
    })
}
