//! Video and audio sources: one decode, every rung of the ladder.
//!
//! A source is opened under whitelists (`source`), the profile's ladder is
//! fitted to it (`plan`), each rung's rate is tuned to its SSIM target on
//! samples (`tune`, on the rayon pool), and then the source is decoded
//! exactly once: chunks of decoded frames are shared (by reference) with
//! every output (`output`), each on its own thread behind a queue of two
//! chunks, so cheap and costly rungs progress independently and both cores
//! stay busy. Memory stays bounded by the queues, whatever the length of the
//! source, and decoding overlaps encoding.

mod captions;
mod cascade;
pub mod codecs;
pub mod fmp4;
mod output;
pub mod plan;
mod poster;
mod quality;
pub mod source;
pub mod ssim;
mod timeline;
mod tune;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::sync::Once;

use ffmpeg::{codec, decoder, frame, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::{RungMode, VideoSettings};

use crate::rendition::{Payload, Rendition};
pub use captions::ExtractedCaptions;
use cascade::Cascade;
use output::{AudioInput, Finished, InputFormat, Output, StreamNames, VideoInput};
use plan::OutputPlan;
use timeline::{AudioNormalizer, SharedAudio, Timeline};

/// Video frames per chunk handed to the encoders (audio frames ride along).
const CHUNK_VIDEO_FRAMES: usize = 12;
/// Audio frames per chunk when a source has no picture.
const CHUNK_AUDIO_FRAMES: usize = 96;
/// Chunks waiting for each output: bounds the memory held for slow rungs.
const QUEUED_CHUNKS: usize = 8;
/// Corrupt packets tolerated before a source is called broken.
const MAX_DECODE_ERRORS: usize = 50;
/// The poster is taken this far in (or at a tenth of a shorter source):
/// past fades from black, usually on the title slide.
const POSTER_AT: f64 = 5.0;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{file}: {reason}")]
    Refused { file: PathBuf, reason: String },
    #[error("{file}: {op}: {source}")]
    Ffmpeg {
        file: PathBuf,
        op: String,
        source: ffmpeg::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl VideoError {
    fn ffmpeg(file: &Path, op: String, source: ffmpeg::Error) -> Self {
        Self::Ffmpeg {
            file: file.to_owned(),
            op,
            source,
        }
    }

    /// Attaches the source file to errors raised deep inside an output.
    fn in_file(self, file: &Path) -> Self {
        match self {
            Self::Internal(reason) => Self::Refused {
                file: file.to_owned(),
                reason,
            },
            other => other,
        }
    }
}

/// A decoded frame on its way to every output.
pub(crate) enum Decoded {
    Video(frame::Video),
    /// Sound in the shared format (see `timeline`), of the n-th audio
    /// track: 0 is the one the rungs carry.
    Audio(usize, frame::Audio),
}

pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registration cannot fail on the FFmpeg versions we build against;
        // errors surface through our own messages, so FFmpeg's log stays quiet.
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// What rendering one source produced.
#[derive(Debug)]
pub struct Rendered {
    pub renditions: Vec<Rendition>,
    pub duration: Option<f64>,
    /// WebVTT files made from the container's text subtitles.
    pub captions: Vec<ExtractedCaptions>,
}

/// Decodes `path` once and writes every rendition the profile asks for into
/// `workdir`. Posters go to `lowest_tier`; `progress` receives the fraction
/// of the source decoded so far.
pub fn render(
    path: &Path,
    settings: &VideoSettings,
    workdir: &Path,
    lowest_tier: &str,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<Rendered, VideoError> {
    let (mut ictx, mut info) = source::open(path, settings)?;

    let mut video_decoder = match &info.video {
        Some(v) => Some((v.index, open_video_decoder(path, &ictx, v.index)?)),
        None => None,
    };
    let video_input = match (&info.video, &video_decoder) {
        (Some(v), Some((_, d))) => Some(video_input(path, settings, v, d)?),
        _ => None,
    };
    // Every track is brought to the format of the one the rungs carry. A
    // further track or a subtitle track that cannot be decoded is left
    // out (and said so): it must not cost the lecture.
    let main = match &info.audio {
        Some(a) => Some(AudioSlot::open(path, &ictx, 0, a, None)?),
        None => None,
    };
    let shared = main.as_ref().map(|m| m.normalizer.shared());
    let mut audio: Vec<AudioSlot> = main.into_iter().collect();
    let mut kept = Vec::new();
    for a in std::mem::take(&mut info.extra_audio) {
        match AudioSlot::open(path, &ictx, kept.len() + 1, &a, shared) {
            Ok(track) => {
                audio.push(track);
                kept.push(a);
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), stream = a.index, error = %e, "further sound track left out: it cannot be decoded");
            }
        }
    }
    info.extra_audio = kept;
    let mut subtitles = Vec::new();
    for s in &info.subtitles {
        match captions::SubtitleTrack::open(path, &ictx, s) {
            Ok(track) => subtitles.push(track),
            Err(e) => {
                tracing::warn!(file = %path.display(), stream = s.index, error = %e, "subtitle track left out: it cannot be decoded");
            }
        }
    }
    let mut plans = plan::plan(&info, settings);
    let input = InputFormat {
        video: video_input,
        audio: shared.map(|shared| AudioInput {
            rate: shared.rate,
            sample: SharedAudio::sample(),
            layout_bits: ffmpeg::ChannelLayout::MONO.bits(),
            channels: 1,
            time_base: shared.time_base(),
        }),
    };

    if let Some(video_input) = &input.video {
        tune::tune(path, settings, &info, video_input, &mut plans)?;
    }
    let mut cascade = match &input.video {
        Some(v) => Cascade::new(path, v, &plans)?,
        None => None,
    };
    // What the rungs' graphs receive: the cascade's pictures, or the source's.
    let rung_input = InputFormat {
        video: cascade
            .as_ref()
            .map(|c| c.output().clone())
            .or(input.video.clone()),
        audio: input.audio.clone(),
    };
    let streams = StreamNames {
        video: info.video.as_ref().map(|v| v.index),
        audio: info
            .audio
            .iter()
            .chain(&info.extra_audio)
            .map(|a| a.index)
            .collect(),
    };
    let outputs = plans
        .into_iter()
        .map(|plan| {
            let ext = match plan.container() {
                plan::Container::Mp4 => "mp4",
                plan::Container::Webm => "webm",
            };
            let file = workdir.join(format!("{}.{ext}", plan.name()));
            Output::new(
                path,
                plan,
                &rung_input,
                file,
                settings.keyframe_interval,
                streams.clone(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (decoded, finished) = std::thread::scope(|scope| {
        // One thread per output, each behind its own short queue: rungs of
        // very different cost progress independently, so both cores stay
        // busy instead of waiting for the slowest rung at every chunk.
        let (senders, encoders): (Vec<_>, Vec<_>) = outputs
            .into_iter()
            .map(|mut output| {
                let (tx, rx) = sync_channel::<Arc<Vec<Decoded>>>(QUEUED_CHUNKS);
                let name = format!("lowband-{}", output.name());
                let thread = std::thread::Builder::new().name(name);
                let encoder =
                    thread.spawn_scoped(scope, move || -> Result<Finished, VideoError> {
                        for chunk in rx {
                            output.push(&chunk)?;
                        }
                        output.finish()
                    });
                let encoder = encoder.map_err(|e| {
                    VideoError::Internal(format!("cannot start an encoder thread: {e}"))
                });
                (tx, encoder)
            })
            .unzip();
        let limits = DecodeLimits {
            max_duration: settings.max_duration,
            expected: info.duration,
        };
        let mut timeline = Timeline::new(info.origin, info.discontinuous);
        let decoded = decode_all(
            path,
            &mut ictx,
            &mut timeline,
            Streams {
                video: video_decoder.as_mut(),
                video_rate: info.video.as_ref().and_then(|v| v.frame_rate),
                audio: &mut audio,
                subtitles: &mut subtitles,
            },
            &limits,
            progress,
            |mut chunk| {
                if let Some(cascade) = cascade.as_mut() {
                    for decoded in &mut chunk {
                        if let Decoded::Video(picture) = decoded {
                            *picture = cascade.scale(picture)?;
                        }
                    }
                }
                let chunk = Arc::new(chunk);
                Ok(senders.iter().all(|tx| tx.send(Arc::clone(&chunk)).is_ok()))
            },
        );
        if timeline.jumps > 0 {
            tracing::info!(file = %path.display(), jumps = timeline.jumps, "folded clock jumps into one timeline");
        }
        drop(senders);
        let finished: Result<Vec<Finished>, VideoError> = encoders
            .into_iter()
            .map(|e| {
                e.and_then(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(VideoError::Internal("an encoder thread panicked".into()))
                    })
                })
            })
            .collect();
        (decoded, finished)
    });
    let decoded = decoded?;
    let finished = finished.map_err(|e| e.in_file(path))?;
    progress(1.0);

    let duration = (decoded.end > 0.0).then_some(decoded.end).or(info.duration);
    let mut renditions: Vec<Rendition> = finished
        .into_iter()
        .map(|f| rendition(path, f, duration))
        .collect::<Result<_, _>>()?;
    if let (Some(frame), Some(v)) = (decoded.poster, &info.video) {
        let (w, h) = (v.display_size().0.round() as u32, v.display_size().1);
        // display_size is after rotation; the frame is not rotated yet.
        let display = if v.rotation % 180 == 90 {
            (h, w)
        } else {
            (w, h)
        };
        let stills = poster::renditions(
            &frame,
            (display.0.max(2), display.1.max(2)),
            v.rotation,
            lowest_tier,
        )
        .map_err(|reason| VideoError::Refused {
            file: path.to_owned(),
            reason,
        })?;
        renditions.extend(stills);
    }
    let captions = subtitles
        .into_iter()
        .map(|track| track.finish(workdir))
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.in_file(path))?;
    Ok(Rendered {
        renditions,
        duration,
        captions,
    })
}

/// How the source's pictures look: from the decoder, or, when the
/// container's headers did not say (a 0.5 fps screen recording has no
/// picture within FFmpeg's probe window), from the first decoded picture.
fn video_input(
    path: &Path,
    settings: &VideoSettings,
    info: &source::VideoStreamInfo,
    decoder: &decoder::Video,
) -> Result<VideoInput, VideoError> {
    let (mut width, mut height, mut pixel) = (decoder.width(), decoder.height(), decoder.format());
    if pixel == ffmpeg::format::Pixel::None || width == 0 || height == 0 {
        let first = first_picture(path, settings, info.index)?;
        (width, height, pixel) = (first.width(), first.height(), first.format());
    }
    Ok(VideoInput {
        width,
        height,
        pixel,
        time_base: info.time_base,
        sample_aspect: info.sample_aspect,
        rotation: info.rotation,
        hdr: info.hdr,
        bt709: info.bt709,
    })
}

/// Decodes stream `index` of a fresh opening of `path` up to its first picture.
fn first_picture(
    path: &Path,
    settings: &VideoSettings,
    index: usize,
) -> Result<frame::Video, VideoError> {
    let (mut ictx, _) = source::open(path, settings)?;
    let mut decoder = open_video_decoder(path, &ictx, index)?;
    let mut frame = frame::Video::empty();
    for (stream, packet) in ictx.packets() {
        if stream.index() == index
            && decoder.send_packet(&packet).is_ok()
            && decoder.receive_frame(&mut frame).is_ok()
        {
            return Ok(frame);
        }
    }
    if decoder.send_eof().is_ok() && decoder.receive_frame(&mut frame).is_ok() {
        return Ok(frame);
    }
    Err(VideoError::Refused {
        file: path.to_owned(),
        reason: format!(
            "video stream {index}: no picture could be decoded; the file is damaged or empty"
        ),
    })
}

/// One sound track being decoded, and its way into the shared format.
struct AudioSlot {
    index: usize,
    decoder: decoder::Audio,
    normalizer: AudioNormalizer,
}

impl AudioSlot {
    fn open(
        path: &Path,
        ictx: &ffmpeg::format::context::Input,
        slot: usize,
        info: &source::AudioStreamInfo,
        shared: Option<SharedAudio>,
    ) -> Result<Self, VideoError> {
        let decoder = open_audio_decoder(path, ictx, info.index)?;
        // A decoder that does not know its rate yet learns it from the first packet.
        let rate = if decoder.rate() > 0 {
            decoder.rate()
        } else {
            timeline::MAX_AUDIO_RATE
        };
        let shared = shared.unwrap_or_else(|| SharedAudio::for_source(rate));
        Ok(Self {
            index: info.index,
            decoder,
            normalizer: AudioNormalizer::new(slot, shared, info.time_base),
        })
    }
}

fn rendition(source: &Path, f: Finished, duration: Option<f64>) -> Result<Rendition, VideoError> {
    let fragments = match f.plan.container() {
        plan::Container::Mp4 => Some(
            std::fs::File::open(&f.path)
                .and_then(|file| Ok((file.metadata()?.len(), file)))
                .map_err(fmp4::Fmp4Error::from)
                .and_then(|(len, file)| fmp4::index(std::io::BufReader::new(file), len))
                .map_err(|e| VideoError::Refused {
                    file: source.to_owned(),
                    reason: format!("rendition {}: {e}", f.plan.name()),
                })?,
        ),
        plan::Container::Webm => None,
    };
    let duration = duration.or((f.duration > 0.0).then_some(f.duration));
    let (kind, ext, mime, width, height, fps, mode) = match &f.plan {
        OutputPlan::Video(v) => {
            let mode = (v.mode == RungMode::Slides).then(|| "slides".to_owned());
            // A slides rung has a variable frame rate: its rate is a ceiling, not a cadence.
            (
                VariantKind::Video,
                "mp4",
                "video/mp4",
                Some(v.width),
                Some(v.height),
                Some(f64::from(v.fps)),
                mode,
            )
        }
        OutputPlan::Audio { .. } if f.plan.container() == plan::Container::Webm => (
            VariantKind::Audio,
            "webm",
            "audio/webm",
            None,
            None,
            None,
            None,
        ),
        OutputPlan::Audio { .. } => (
            VariantKind::Audio,
            "m4a",
            "audio/mp4",
            None,
            None,
            None,
            None,
        ),
    };
    Ok(Rendition {
        name: f.plan.name().to_owned(),
        kind,
        tier: f.plan.tier().to_owned(),
        ext,
        mime: mime.to_owned(),
        payload: Payload::File(f.path),
        codecs: Some(f.codecs),
        width,
        height,
        fps,
        duration,
        encoding: None,
        fragments,
        mode,
        ssim: f.ssim,
        first_load_bytes: None,
        alternate: match &f.plan {
            OutputPlan::Audio { slot, language, .. } if *slot > 0 => Some(language.clone()),
            _ => None,
        },
    })
}

pub(super) fn open_video_decoder(
    path: &Path,
    ictx: &ffmpeg::format::context::Input,
    index: usize,
) -> Result<decoder::Video, VideoError> {
    open_decoder(path, ictx, index, "video")?
        .video()
        .map_err(|e| {
            VideoError::ffmpeg(
                path,
                format!("opening the decoder of video stream {index}"),
                e,
            )
        })
}

fn open_audio_decoder(
    path: &Path,
    ictx: &ffmpeg::format::context::Input,
    index: usize,
) -> Result<decoder::Audio, VideoError> {
    open_decoder(path, ictx, index, "audio")?
        .audio()
        .map_err(|e| {
            VideoError::ffmpeg(
                path,
                format!("opening the decoder of audio stream {index}"),
                e,
            )
        })
}

/// A frame-threaded decoder for stream `index`, told the stream's time base.
fn open_decoder(
    path: &Path,
    ictx: &ffmpeg::format::context::Input,
    index: usize,
    kind: &str,
) -> Result<decoder::Decoder, VideoError> {
    let stream = ictx
        .stream(index)
        .ok_or_else(|| VideoError::Internal(format!("stream {index} vanished")))?;
    let mut ctx = codec::context::Context::from_parameters(stream.parameters()).map_err(|e| {
        VideoError::ffmpeg(
            path,
            format!("reading the parameters of {kind} stream {index}"),
            e,
        )
    })?;
    ctx.set_threading(codec::threading::Config::kind(
        codec::threading::Type::Frame,
    ));
    let mut decoder = ctx.decoder();
    decoder.set_packet_time_base(stream.time_base());
    Ok(decoder)
}

struct DecodeLimits {
    max_duration: f64,
    expected: Option<f64>,
}

/// The decoders `decode_all` feeds.
struct Streams<'a> {
    video: Option<&'a mut (usize, decoder::Video)>,
    /// The container's frame rate, for pictures that carry no timestamp.
    video_rate: Option<f64>,
    audio: &'a mut [AudioSlot],
    subtitles: &'a mut [captions::SubtitleTrack],
}

/// What decoding the whole source found.
struct DecodeOutcome {
    /// Seconds from 0 to the end of the longer of picture and sound.
    end: f64,
    poster: Option<frame::Video>,
}

/// Demuxes and decodes the whole source onto one timeline (see
/// `timeline`), handing chunks of frames to `send` (which returns false
/// once the encoders have given up). Picture and sound both span the same
/// time from 0: a picture that ends first holds its last frame, sound that
/// ends first is padded with silence.
fn decode_all(
    path: &Path,
    ictx: &mut ffmpeg::format::context::Input,
    timeline: &mut Timeline,
    mut streams: Streams<'_>,
    limits: &DecodeLimits,
    progress: &(dyn Fn(f64) + Sync),
    mut send: impl FnMut(Vec<Decoded>) -> Result<bool, VideoError>,
) -> Result<DecodeOutcome, VideoError> {
    let time_base = |index: usize| ictx.stream(index).map(|s| s.time_base());
    let video_tb = streams
        .video
        .as_ref()
        .and_then(|(i, _)| time_base(*i))
        .unwrap_or(Rational(1, 1));
    let mut state = DecodeState {
        chunk: Vec::new(),
        video_frames: 0,
        audio_frames: 0,
        errors: 0,
        last_time: 0.0,
        poster_at: limits
            .expected
            .map_or(POSTER_AT, |d| (d * 0.1).min(POSTER_AT)),
        poster: None,
        video: VideoClock::new(video_tb, streams.video_rate),
    };
    let chunk_target = if streams.video.is_some() {
        CHUNK_VIDEO_FRAMES
    } else {
        CHUNK_AUDIO_FRAMES
    };

    for (stream, mut packet) in ictx.packets() {
        let index = stream.index();
        let tb = stream.time_base();
        let sent = if let Some((_, dec)) = streams.video.as_mut().filter(|(vi, _)| *vi == index) {
            timeline.packet(index, &mut packet, tb);
            dec.send_packet(&packet)
                .map(|()| state.receive_video(dec))
                .map_err(DecodeFailure::from)
        } else if let Some(slot) = streams.audio.iter_mut().find(|a| a.index == index) {
            timeline.packet(index, &mut packet, tb);
            match slot.decoder.send_packet(&packet) {
                Ok(()) => state.receive_audio(slot),
                Err(e) => Err(e.into()),
            }
        } else if let Some(track) = streams.subtitles.iter_mut().find(|t| t.index == index) {
            timeline.packet(index, &mut packet, tb);
            track.push(&packet);
            continue;
        } else {
            continue;
        };
        match sent {
            Ok(()) => {}
            Err(DecodeFailure::Packet) => {
                state.errors += 1;
                if state.errors > MAX_DECODE_ERRORS {
                    return Err(VideoError::Refused {
                        file: path.to_owned(),
                        reason: format!(
                            "stream {index} at {:.2} s: more than {MAX_DECODE_ERRORS} corrupt packets; \
                             the file is damaged: export it again from its editor or recorder",
                            state.last_time
                        ),
                    });
                }
            }
            Err(DecodeFailure::Fatal(e)) => return Err(e.in_file(path)),
        }
        if state.last_time > limits.max_duration {
            return Err(VideoError::Refused {
                file: path.to_owned(),
                reason: format!(
                    "plays for more than the {:.0} s allowed; split it into shorter \
                     lessons, or raise video.max_duration in the profile",
                    limits.max_duration
                ),
            });
        }
        let pending = if streams.video.is_some() {
            state.pending_video()
        } else {
            state.chunk.len()
        };
        if pending >= chunk_target {
            if let Some(total) = limits.expected {
                progress((state.last_time / total).clamp(0.0, 0.99));
            }
            if !send(std::mem::take(&mut state.chunk))? {
                return Ok(DecodeOutcome {
                    end: state.last_time,
                    poster: None,
                });
            }
        }
    }
    if let Some((_, dec)) = streams.video.as_mut() {
        if dec.send_eof().is_ok() {
            state.receive_video(dec);
        }
    }
    for slot in streams.audio.iter_mut() {
        if slot.decoder.send_eof().is_ok() {
            if let Err(DecodeFailure::Fatal(e)) = state.receive_audio(slot) {
                return Err(e.in_file(path));
            }
        }
    }
    if state.video_frames == 0 && state.audio_frames == 0 {
        return Err(VideoError::Refused {
            file: path.to_owned(),
            reason: "no frame could be decoded; the file is damaged or empty".into(),
        });
    }
    if streams.video.is_some() && state.video_frames == 0 {
        return Err(VideoError::Refused {
            file: path.to_owned(),
            reason: "no video frame could be decoded; the file is damaged".into(),
        });
    }
    let video_end = state.video.end();
    let audio_end = streams.audio.first().map_or(0.0, |a| a.normalizer.end());
    let end = video_end.max(audio_end);
    // The picture holds its last frame until the sound ends.
    if let Some(last) = state.video.last.take() {
        if video_end + 1e-3 < end {
            state.video.hold(last, end, &mut state.chunk);
        }
    }
    for slot in streams.audio.iter_mut() {
        slot.normalizer
            .finish(end, &mut state.chunk)
            .map_err(|e| e.in_file(path))?;
    }
    send(state.chunk)?;
    Ok(DecodeOutcome {
        end,
        poster: state.poster.map(|(_, frame)| frame),
    })
}

/// Why a packet could not be decoded.
enum DecodeFailure {
    /// The packet is corrupt: counted, and skipped.
    Packet,
    /// Something only a bug or a broken FFmpeg explains.
    Fatal(VideoError),
}

impl From<ffmpeg::Error> for DecodeFailure {
    fn from(_: ffmpeg::Error) -> Self {
        Self::Packet
    }
}

/// Pictures' timestamps, repaired: a picture without one comes a frame
/// after the last, and one that does not move forward is moved a tick past
/// the last, so the rungs' frame-rate filters always see time advance.
struct VideoClock {
    tb: Rational,
    /// Ticks of one frame at the container's rate.
    step: i64,
    last_pts: Option<i64>,
    /// The last picture, held to the end when the sound is longer.
    last: Option<frame::Video>,
}

impl VideoClock {
    fn new(tb: Rational, rate: Option<f64>) -> Self {
        let seconds = 1.0 / rate.filter(|r| *r > 0.0).unwrap_or(25.0);
        let step = (seconds / f64::from(tb).max(f64::MIN_POSITIVE))
            .round()
            .max(1.0) as i64;
        Self {
            tb,
            step,
            last_pts: None,
            last: None,
        }
    }

    fn stamp(&mut self, frame: &mut frame::Video) -> f64 {
        let pts = match (frame.timestamp(), self.last_pts) {
            (Some(ts), Some(last)) if ts <= last => last + 1,
            (Some(ts), _) => ts,
            (None, Some(last)) => last + self.step,
            (None, None) => 0,
        };
        frame.set_pts(Some(pts));
        self.last_pts = Some(pts);
        pts as f64 * f64::from(self.tb)
    }

    /// Seconds at which the last picture stops showing.
    fn end(&self) -> f64 {
        self.last_pts
            .map_or(0.0, |p| (p + self.step) as f64 * f64::from(self.tb))
    }

    /// Shows `last` again a frame before `until`: the rungs' frame-rate
    /// filters repeat it up to there.
    fn hold(&mut self, last: frame::Video, until: f64, chunk: &mut Vec<Decoded>) {
        let mut held = last.clone();
        let at = ((until / f64::from(self.tb)).round() as i64 - self.step)
            .max(self.last_pts.unwrap_or(0) + 1);
        held.set_pts(Some(at));
        // SAFETY: a plain integer field of a frame this function owns.
        unsafe { (*held.as_mut_ptr()).pkt_duration = self.step };
        self.last_pts = Some(at);
        chunk.push(Decoded::Video(held));
    }
}

struct DecodeState {
    chunk: Vec<Decoded>,
    video_frames: usize,
    audio_frames: usize,
    errors: usize,
    last_time: f64,
    /// Seconds into the source the poster is taken from.
    poster_at: f64,
    /// The poster frame so far, and whether it is at or past `poster_at`.
    poster: Option<(bool, frame::Video)>,
    video: VideoClock,
}

impl DecodeState {
    fn pending_video(&self) -> usize {
        self.chunk
            .iter()
            .filter(|d| matches!(d, Decoded::Video(_)))
            .count()
    }

    fn receive_video(&mut self, dec: &mut decoder::Video) {
        let mut frame = frame::Video::empty();
        while dec.receive_frame(&mut frame).is_ok() {
            let at = self.video.stamp(&mut frame);
            self.last_time = self.last_time.max(at);
            // The first frame, replaced once by the first at or past poster_at.
            let past = at >= self.poster_at;
            if self.poster.as_ref().is_none_or(|(done, _)| !done && past) {
                self.poster = Some((past, frame.clone()));
            }
            self.video_frames += 1;
            self.video.last = Some(frame.clone());
            self.chunk.push(Decoded::Video(std::mem::replace(
                &mut frame,
                frame::Video::empty(),
            )));
        }
    }

    fn receive_audio(&mut self, slot: &mut AudioSlot) -> Result<(), DecodeFailure> {
        let mut frame = frame::Audio::empty();
        while slot.decoder.receive_frame(&mut frame).is_ok() {
            let ts = frame.timestamp();
            frame.set_pts(ts);
            self.audio_frames += 1;
            slot.normalizer
                .push(&frame, &mut self.chunk)
                .map_err(DecodeFailure::Fatal)?;
            if slot.normalizer.slot() == 0 {
                self.last_time = self.last_time.max(slot.normalizer.end());
            }
        }
        Ok(())
    }
}
