//! One rendition being written: filter graphs, encoders and a muxer.
//!
//! Every output receives the same decoded frames. Each has its own filter
//! graph (scale, frame rate, pixel format; resample and downmix for sound),
//! its own encoder and its own MP4 muxer writing to a local file, so the
//! outputs share nothing mutable and can run on different rayon threads.

use std::path::{Path, PathBuf};

use ffmpeg::{
    codec, encoder, filter, format, frame, picture, ChannelLayout, Dictionary, Packet, Rational,
};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::{AudioCodec, VideoCodec};

use super::plan::{AudioPlan, Container, OutputPlan, VideoPlan};
use super::quality::{QualityProbe, Spans};
use super::source::Hdr;
use super::{Decoded, VideoError};
use lowband_catalog::profile::RungMode;

/// How decoded frames look, for the filter graph sources.
#[derive(Debug, Clone)]
pub(super) struct InputFormat {
    pub video: Option<VideoInput>,
    pub audio: Option<AudioInput>,
}

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

#[derive(Debug, Clone)]
pub(super) struct AudioInput {
    pub rate: u32,
    pub sample: ffmpeg::format::Sample,
    pub layout_bits: u64,
    pub channels: u16,
    pub time_base: Rational,
}

/// What a finished output measured.
#[derive(Debug, Clone)]
pub struct Finished {
    pub plan: OutputPlan,
    pub path: PathBuf,
    pub duration: f64,
    pub codecs: String,
    /// Mean SSIM of the picture against the source at the rung's size.
    pub ssim: Option<f64>,
}

pub(super) struct Output {
    plan: OutputPlan,
    source: PathBuf,
    path: PathBuf,
    octx: format::context::Output,
    video: Option<Lane<encoder::Video>>,
    audio: Option<Lane<encoder::Audio>>,
    /// Which audio track (see `Decoded::Audio`) this output carries.
    audio_slot: usize,
    streams: StreamNames,
    codecs: Vec<String>,
}

/// The source's stream indices, for errors that name a stream.
#[derive(Debug, Clone, Default)]
pub(super) struct StreamNames {
    pub video: Option<usize>,
    /// Per audio slot.
    pub audio: Vec<usize>,
}

/// A filter graph feeding an encoder feeding one muxer stream.
struct Lane<E> {
    graph: filter::Graph,
    encoder: E,
    /// The FFmpeg encoder's name, for errors.
    encoder_name: &'static str,
    /// The muxer's name, for errors.
    muxer: &'static str,
    encoder_tb: Rational,
    stream: usize,
    stream_tb: Rational,
    /// Next instant (s) at which a keyframe is forced; video only.
    next_keyframe: f64,
    keyframe_interval: f64,
    last_time: f64,
    /// Measures SSIM as the lane encodes; video only.
    probe: Option<QualityProbe>,
    /// Samples (in the encoder's time base) added to every packet's
    /// timestamp: the encoder's priming, cut from the input instead of
    /// left to an edit list (see `audio_lane`). 0 for video.
    shift: i64,
    /// Samples handed to the encoder so far; audio only.
    samples: i64,
    /// The last picture fed in and the gap before it, in the input's time
    /// base: the graph is closed where that picture stops showing, so the
    /// frame-rate filter shows it for its whole time. Video only.
    last_input: Option<(i64, i64)>,
}

impl Output {
    pub fn new(
        source: &Path,
        plan: OutputPlan,
        input: &InputFormat,
        path: PathBuf,
        keyframe_interval: f64,
        streams: StreamNames,
    ) -> Result<Self, VideoError> {
        let fail = |op: String| move |e: ffmpeg::Error| VideoError::ffmpeg(source, op, e);
        let name = plan.name().to_owned();
        let container = plan.container();
        let muxer = match container {
            Container::Mp4 => "mp4",
            Container::Webm => "webm",
        };
        let mut octx = format::output_as(&path, muxer)
            .map_err(fail(format!("creating the {muxer} muxer for {name}")))?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut codecs = Vec::new();

        let video = match (&plan, &input.video) {
            (OutputPlan::Video(v), Some(vin)) => {
                let lane = video_lane(source, v, vin, global_header, &mut octx)?;
                codecs.push(video_codecs_string(v.codec, &lane.encoder));
                Some(lane)
            }
            _ => None,
        };
        let (audio_plan, audio_slot) = match &plan {
            OutputPlan::Video(v) => (v.audio.as_ref(), 0),
            OutputPlan::Audio { audio, slot, .. } => (Some(audio), *slot),
        };
        let audio = match (audio_plan, &input.audio) {
            (Some(a), Some(ain)) => {
                codecs.push(match a.codec {
                    AudioCodec::Aac => "mp4a.40.2".to_owned(),
                    AudioCodec::Opus => "opus".to_owned(),
                });
                Some(audio_lane(
                    source,
                    &name,
                    a,
                    ain,
                    container,
                    global_header,
                    &mut octx,
                )?)
            }
            _ => None,
        };

        let mut options = Dictionary::new();
        // Fragmented, moov first, with a global sidx: plays progressively in a
        // <video> element, seeks by range, and HLS addresses the same bytes.
        // No mfra trailer (skip_trailer): the sidx already indexes every
        // fragment, and a player's demuxer that finds moof boxes looks for an
        // mfra at the end of the file first: Chromium asked for the file's
        // last 28 KB before the first frame, which on EDGE (240 kbit/s, 800 ms
        // round trip) put the 144p rung's first frame at 8.9 s instead of 5.0 s.
        if container == Container::Webm {
            // Cues first, so a player can seek before it has the whole file.
            options.set("cues_to_front", "1");
        } else if video.is_some() {
            // Fragments start at the forced keyframes, so segments line up
            // across rungs. delay_moov: the moov is written with the first
            // fragment, once the encoder's reordering delay is known, with
            // an edit list that presents the first picture at 0 (without
            // it the picture would start that delay, 80 ms to 2 s, behind
            // the sound).
            options.set(
                "movflags",
                "frag_keyframe+empty_moov+delay_moov+default_base_moof+global_sidx+skip_trailer",
            );
        } else {
            options.set(
                "movflags",
                "empty_moov+default_base_moof+global_sidx+skip_trailer",
            );
            options.set(
                "frag_duration",
                &((keyframe_interval * 1_000_000.0) as u64).to_string(),
            );
        }
        octx.write_header_with(options)
            .map_err(fail(format!("writing the MP4 header for {name}")))?;
        let mut out = Self {
            plan,
            source: source.to_owned(),
            path,
            octx,
            video,
            audio,
            audio_slot,
            streams,
            codecs,
        };
        out.read_stream_time_bases();
        Ok(out)
    }

    fn read_stream_time_bases(&mut self) {
        // The muxer picks its stream time bases in write_header.
        if let Some(lane) = self.video.as_mut() {
            lane.stream_tb = self
                .octx
                .stream(lane.stream)
                .map(|s| s.time_base())
                .unwrap_or(lane.encoder_tb);
        }
        if let Some(lane) = self.audio.as_mut() {
            lane.stream_tb = self
                .octx
                .stream(lane.stream)
                .map(|s| s.time_base())
                .unwrap_or(lane.encoder_tb);
        }
    }

    pub fn name(&self) -> &str {
        self.plan.name()
    }

    /// Feeds one chunk of decoded frames through this output. An error
    /// names the rendition, the source stream and the media time.
    pub fn push(&mut self, chunk: &[Decoded]) -> Result<(), VideoError> {
        for decoded in chunk {
            match decoded {
                Decoded::Video(f) => {
                    if let Some(lane) = self.video.as_mut() {
                        lane.note_picture(f);
                        let fed = lane.feed(f).and_then(|()| lane.drain_video(&mut self.octx));
                        let at = lane.last_time;
                        fed.map_err(|e| self.context(e, "video", self.streams.video, at))?;
                    }
                }
                Decoded::Audio(slot, f) if *slot == self.audio_slot => {
                    if let Some(lane) = self.audio.as_mut() {
                        let fed = lane.feed(f).and_then(|()| lane.drain_audio(&mut self.octx));
                        let at = lane.last_time;
                        let stream = self.streams.audio.get(self.audio_slot).copied();
                        fed.map_err(|e| self.context(e, "audio", stream, at))?;
                    }
                }
                Decoded::Audio(..) => {}
            }
        }
        Ok(())
    }

    /// `rendition 144p: audio stream 1 at 8.02 s: …` for an error raised
    /// inside a lane.
    fn context(&self, e: VideoError, kind: &str, stream: Option<usize>, at: f64) -> VideoError {
        let stream = stream.map_or_else(|| kind.to_owned(), |i| format!("{kind} stream {i}"));
        match e {
            VideoError::Internal(reason) => VideoError::Internal(format!(
                "rendition {}: {stream} at {at:.2} s: {reason}",
                self.plan.name()
            )),
            other => other,
        }
    }

    /// Flushes graphs and encoders and closes the file.
    pub fn finish(mut self) -> Result<Finished, VideoError> {
        let name = self.plan.name().to_owned();
        let fail = |op: &str| {
            let source = self.source.clone();
            let op = format!("{op} for {name}");
            move |e: ffmpeg::Error| VideoError::ffmpeg(&source, op, e)
        };
        let mut duration: f64 = 0.0;
        let mut ssim = None;
        if let Some(lane) = self.video.as_mut() {
            lane.flush_graph()
                .map_err(fail("flushing the video filters"))?;
            lane.drain_video(&mut self.octx)?;
            lane.encoder
                .base()
                .send_eof()
                .map_err(fail("flushing the video encoder"))?;
            lane.write_packets(&mut self.octx)?;
            ssim = lane.probe.as_mut().and_then(QualityProbe::finish);
            duration = duration.max(lane.last_time);
        }
        if let Some(lane) = self.audio.as_mut() {
            lane.flush_graph()
                .map_err(fail("flushing the audio filters"))?;
            lane.drain_audio(&mut self.octx)?;
            lane.encoder
                .base()
                .send_eof()
                .map_err(fail("flushing the audio encoder"))?;
            lane.write_packets(&mut self.octx)?;
            duration = duration.max(lane.last_time);
        }
        self.octx
            .write_trailer()
            .map_err(fail("finishing the file"))?;

        Ok(Finished {
            plan: self.plan,
            path: self.path,
            duration,
            codecs: self.codecs.join(", "),
            ssim,
        })
    }
}

fn video_lane(
    source: &Path,
    plan: &VideoPlan,
    input: &VideoInput,
    global_header: bool,
    octx: &mut format::context::Output,
) -> Result<Lane<encoder::Video>, VideoError> {
    let fail = |op: &str| {
        let op = format!("{op} for rung {}", plan.name);
        move |e: ffmpeg::Error| VideoError::ffmpeg(source, op, e)
    };
    let graph = video_graph(source, plan, input, true)?;
    let encoder = video_encoder(source, plan, plan.crf, global_header, input.bt709)?;
    let time_base = encoder_time_base(plan);
    let codec = encoder
        .codec()
        .ok_or_else(|| VideoError::Internal("the video encoder lost its codec".into()))?;
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
    Ok(Lane {
        graph,
        encoder,
        encoder_name: encoder_name(plan.codec),
        muxer: "MP4",
        encoder_tb: time_base,
        stream: index,
        stream_tb: time_base,
        next_keyframe: 0.0,
        keyframe_interval: plan.keyframe_interval,
        last_time: 0.0,
        probe: Some(probe),
        shift: 0,
        samples: 0,
        last_input: None,
    })
}

/// Seconds between the pictures whose SSIM is measured in a full encode:
/// incommensurate with the keyframe interval, so keyframes (the best
/// pictures) are not over-represented.
const QUALITY_SAMPLE_INTERVAL: f64 = 0.7;
/// Seconds of encode per measured keyframe interval.
const QUALITY_SPAN_EVERY: f64 = 20.0;

fn encoder_time_base(plan: &VideoPlan) -> Rational {
    Rational(plan.fps.denominator(), plan.fps.numerator())
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
    build_graph("buffer", "buffersink", &args, &spec, |_| {}).map_err(|e| {
        VideoError::ffmpeg(
            source,
            format!("building the video filter graph for rung {}", plan.name),
            e,
        )
    })
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

/// The FFmpeg encoder behind a rung's codec.
pub(super) fn encoder_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "libx264",
        VideoCodec::Av1 => "libsvtav1",
    }
}

/// An opened encoder for a rung (libx264 or SVT-AV1), at constant rate
/// factor `crf` under the rung's cap, with keyframes where the rung's
/// keyframe interval puts them.
pub(super) fn video_encoder(
    source: &Path,
    plan: &VideoPlan,
    crf: u8,
    global_header: bool,
    bt709: bool,
) -> Result<encoder::Video, VideoError> {
    let name = encoder_name(plan.codec);
    let fail = |op: &str| {
        let op = format!("{op} {name} for rung {}", plan.name);
        move |e: ffmpeg::Error| VideoError::ffmpeg(source, op, e)
    };
    let codec = encoder::find_by_name(name).ok_or_else(|| VideoError::Refused {
        file: source.to_owned(),
        reason: format!(
            "rung {}: this FFmpeg has no {name} encoder; install an FFmpeg built with it \
             (Debian 12's libavcodec59 has libx264 and libsvtav1) or change the rung's codec",
            plan.name
        ),
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
        // SAFETY: plain enum fields of the encoder's context, before it is opened.
        unsafe {
            let ctx = &mut *enc.as_mut_ptr();
            ctx.color_primaries = ffmpeg::ffi::AVColorPrimaries::AVCOL_PRI_BT709;
            ctx.color_trc = ffmpeg::ffi::AVColorTransferCharacteristic::AVCOL_TRC_BT709;
        }
    }
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let options = match plan.codec {
        VideoCodec::H264 => x264_options(plan, crf),
        VideoCodec::Av1 => svt_av1_options(plan, crf),
    };
    enc.open_with(options).map_err(fail("opening"))
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
    // Keyframes only at the shared instants: every rung's fragments (and HLS
    // segments) then start at the same times, so players can switch rungs.
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

fn audio_lane(
    source: &Path,
    name: &str,
    plan: &AudioPlan,
    input: &AudioInput,
    container: Container,
    global_header: bool,
    octx: &mut format::context::Output,
) -> Result<Lane<encoder::Audio>, VideoError> {
    let fail = |op: &str| {
        let op = format!("{op} for {name}");
        move |e: ffmpeg::Error| VideoError::ffmpeg(source, op, e)
    };
    let (codec_name, sample) = match plan.codec {
        AudioCodec::Aac => (
            "aac",
            ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
        ),
        AudioCodec::Opus => (
            "libopus",
            ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed),
        ),
    };
    let codec = encoder::find_by_name(codec_name).ok_or_else(|| VideoError::Refused {
        file: source.to_owned(),
        reason: format!("this FFmpeg has no {codec_name} encoder"),
    })?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(fail(&format!("creating the {codec_name} encoder")))?;
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
        .map_err(fail(&format!("opening {codec_name}")))?;
    let frame_size = encoder.frame_size();
    // AAC's priming is cut from the input, and every packet moved that much
    // later, so the priming plays in place of the cut samples and sample n
    // decodes at n / rate: in sync with the picture in every player, with
    // no audio edit list to honour (audio-only M4A has none, and players
    // over MSE have been seen to drop them). WebM says the same with
    // CodecDelay, which its players honour.
    // SAFETY: a plain integer field of the opened encoder.
    let priming = i64::from(unsafe { (*encoder.as_ptr()).initial_padding }.max(0));
    let priming = if container == Container::Mp4 {
        priming
    } else {
        0
    };
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
        sample.name(),
        rate = plan.sample_rate,
    );
    let graph = build_graph("abuffer", "abuffersink", &args, &spec, |graph| {
        if frame_size > 0 {
            if let Some(mut out) = graph.get("out") {
                out.sink().set_frame_size(frame_size);
            }
        }
    })
    .map_err(fail("building the audio filter graph"))?;

    let mut stream = octx
        .add_stream(codec)
        .map_err(fail("adding the audio stream"))?;
    stream.set_parameters(&encoder);
    stream.set_time_base(time_base);
    let index = stream.index();
    Ok(Lane {
        graph,
        encoder,
        encoder_name: codec_name,
        muxer: match container {
            Container::Mp4 => "MP4",
            Container::Webm => "WebM",
        },
        encoder_tb: time_base,
        stream: index,
        stream_tb: time_base,
        next_keyframe: f64::INFINITY,
        keyframe_interval: 0.0,
        last_time: 0.0,
        probe: None,
        shift: priming,
        samples: 0,
        last_input: None,
    })
}

pub(super) fn build_graph(
    src: &str,
    sink: &str,
    args: &str,
    spec: &str,
    after: impl FnOnce(&mut filter::Graph),
) -> Result<filter::Graph, ffmpeg::Error> {
    let mut graph = filter::Graph::new();
    let find = |name: &str| filter::find(name).ok_or(ffmpeg::Error::FilterNotFound);
    graph.add(&find(src)?, "in", args)?;
    graph.add(&find(sink)?, "out", "")?;
    graph.output("in", 0)?.input("out", 0)?.parse(spec)?;
    graph.validate()?;
    after(&mut graph);
    Ok(graph)
}

/// Hands a frame to a graph without taking it: the same decoded frame goes
/// to every output, so each graph gets a new reference, not the frame.
pub(super) fn feed_graph(
    graph: &mut filter::Graph,
    frame: &frame::Frame,
) -> Result<(), VideoError> {
    let mut src = graph
        .get("in")
        .ok_or_else(|| VideoError::Internal("filter graph lost its source".into()))?;
    // SAFETY: both pointers are live for the call; av_buffersrc_write_frame
    // only reads `frame` and adds its own reference to the buffers.
    let ret = unsafe { ffmpeg::ffi::av_buffersrc_write_frame(src.as_mut_ptr(), frame.as_ptr()) };
    if ret < 0 {
        return Err(VideoError::Internal(format!(
            "filter graph refused a frame: {}",
            ffmpeg::Error::from(ret)
        )));
    }
    Ok(())
}

/// Takes the next frame the graph's sink has ready into `frame`; false when
/// the graph needs more input (or has flushed everything).
pub(super) fn pull(
    graph: &mut filter::Graph,
    frame: &mut frame::Frame,
    what: &str,
) -> Result<bool, VideoError> {
    let got = match graph.get("out") {
        Some(mut sink) => sink.sink().frame(frame),
        None => return Err(VideoError::Internal("filter graph lost its sink".into())),
    };
    match got {
        Ok(()) => Ok(true),
        Err(e) if is_again(&e) => Ok(false),
        Err(e) => Err(VideoError::Internal(format!("{what} filter: {e}"))),
    }
}

/// Errors that only mean "no output available yet".
pub(super) fn is_again(e: &ffmpeg::Error) -> bool {
    matches!(e, ffmpeg::Error::Eof)
        || matches!(e, ffmpeg::Error::Other { errno } if *errno == ffmpeg::util::error::EAGAIN)
}

/// The part of an opened audio or video encoder a lane drives.
trait LaneEncoder {
    fn base(&mut self) -> &mut encoder::Encoder;
}

impl LaneEncoder for encoder::Video {
    fn base(&mut self) -> &mut encoder::Encoder {
        self
    }
}

impl LaneEncoder for encoder::Audio {
    fn base(&mut self) -> &mut encoder::Encoder {
        self
    }
}

impl<E: LaneEncoder> Lane<E> {
    fn feed(&mut self, frame: &frame::Frame) -> Result<(), VideoError> {
        feed_graph(&mut self.graph, frame)
    }

    /// Notes where a picture fed in stops showing: after its own duration
    /// when the decoder knows it, else as long after it as it came after
    /// the one before (one tick for the first).
    fn note_picture(&mut self, frame: &frame::Video) {
        let Some(pts) = frame.pts() else { return };
        // SAFETY: a plain integer field of a live frame.
        let duration = unsafe { (*frame.as_ptr()).pkt_duration };
        let step = match self.last_input {
            _ if duration > 0 => duration,
            Some((previous, _)) if pts > previous => pts - previous,
            Some((_, step)) => step,
            None => 1,
        };
        self.last_input = Some((pts, step));
    }

    fn flush_graph(&mut self) -> Result<(), ffmpeg::Error> {
        match (self.graph.get("in"), self.last_input) {
            (Some(mut src), Some((pts, step))) => src.source().close(pts + step),
            (Some(mut src), None) => src.source().flush(),
            (None, _) => Ok(()),
        }
    }

    fn drain_video(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        loop {
            let mut filtered = frame::Video::empty();
            if !pull(&mut self.graph, &mut filtered, "video")? {
                return Ok(());
            }
            let time = filtered
                .pts()
                .map_or(self.last_time, |p| p as f64 * f64::from(self.encoder_tb));
            if time + 1e-6 >= self.next_keyframe {
                filtered.set_kind(picture::Type::I);
                while self.next_keyframe <= time + 1e-6 {
                    self.next_keyframe += self.keyframe_interval;
                }
            } else {
                filtered.set_kind(picture::Type::None);
            }
            self.last_time = time
                + 1.0
                    / f64::from(Rational(
                        self.encoder_tb.denominator(),
                        self.encoder_tb.numerator(),
                    ));
            if let Some(probe) = self.probe.as_mut() {
                probe.reference(&filtered, time);
            }
            self.encoder
                .base()
                .send_frame(&filtered)
                .map_err(|e| VideoError::Internal(format!("{}: {e}", self.encoder_name)))?;
            self.write_packets(octx)?;
        }
    }

    fn drain_audio(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        loop {
            let mut filtered = frame::Audio::empty();
            if !pull(&mut self.graph, &mut filtered, "audio")? {
                return Ok(());
            }
            // The input is contiguous (see `timeline`): count samples.
            filtered.set_pts(Some(self.samples));
            self.samples += filtered.samples() as i64;
            self.last_time = self.samples as f64 * f64::from(self.encoder_tb);
            self.encoder
                .base()
                .send_frame(&filtered)
                .map_err(|e| VideoError::Internal(format!("{} encoder: {e}", self.encoder_name)))?;
            self.write_packets(octx)?;
        }
    }

    fn write_packets(&mut self, octx: &mut format::context::Output) -> Result<(), VideoError> {
        let mut packet = Packet::empty();
        loop {
            match self.encoder.base().receive_packet(&mut packet) {
                Ok(()) => {}
                Err(e) if is_again(&e) => return Ok(()),
                Err(e) => {
                    return Err(VideoError::Internal(format!(
                        "{} encoder: {e}",
                        self.encoder_name
                    )))
                }
            }
            if self.shift != 0 {
                packet.set_pts(packet.pts().map(|t| t + self.shift));
                packet.set_dts(packet.dts().map(|t| t + self.shift));
            }
            if let Some(probe) = self.probe.as_mut() {
                probe.packet(&packet);
            }
            packet.set_stream(self.stream);
            packet.rescale_ts(self.encoder_tb, self.stream_tb);
            packet
                .write_interleaved(octx)
                .map_err(|e| VideoError::Internal(format!("{} muxer: {e}", self.muxer)))?;
        }
    }
}

/// RFC 6381 `avc1.PPCCLL` from the encoder's SPS.
/// The RFC 6381 string of what this encoder produces, read from its
/// extradata; a conservative default if that cannot be read.
fn video_codecs_string(codec: VideoCodec, encoder: &encoder::Video) -> String {
    // SAFETY: extradata/extradata_size describe a buffer owned by the open encoder.
    let extradata = unsafe {
        let ctx = &*encoder.as_ptr();
        if ctx.extradata.is_null() || ctx.extradata_size <= 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(ctx.extradata, ctx.extradata_size as usize)
        }
    };
    let (parsed, fallback) = match codec {
        VideoCodec::H264 => (super::codecs::avc1_from_extradata(extradata), "avc1.4d401e"),
        VideoCodec::Av1 => (
            super::codecs::av01_from_extradata(extradata),
            "av01.0.08M.08",
        ),
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
