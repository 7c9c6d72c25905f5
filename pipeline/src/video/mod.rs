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

mod cascade;
pub mod codecs;
pub mod fmp4;
mod output;
pub mod plan;
mod poster;
mod quality;
pub mod source;
pub mod ssim;
mod tune;

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::sync::Once;

use ffmpeg::{codec, decoder, frame};
use ffmpeg_next as ffmpeg;
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::{RungMode, VideoSettings};

use crate::rendition::{Payload, Rendition};
use cascade::Cascade;
use output::{AudioInput, Finished, InputFormat, Output, VideoInput};
use plan::OutputPlan;

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
    Audio(frame::Audio),
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
    let (mut ictx, info) = source::open(path, settings)?;
    let mut plans = plan::plan(&info, settings);

    let mut video_decoder = match &info.video {
        Some(v) => Some((v.index, open_video_decoder(path, &ictx, v.index)?)),
        None => None,
    };
    let mut audio_decoder = match &info.audio {
        Some(a) => Some((a.index, open_audio_decoder(path, &ictx, a.index)?)),
        None => None,
    };
    let input = InputFormat {
        video: match (&info.video, &video_decoder) {
            (Some(v), Some((_, d))) => {
                if d.format() == ffmpeg::format::Pixel::None {
                    return Err(VideoError::Refused {
                        file: path.to_owned(),
                        reason: "the video's pixel format is unknown".into(),
                    });
                }
                Some(VideoInput {
                    width: d.width(),
                    height: d.height(),
                    pixel: d.format(),
                    time_base: v.time_base,
                    sample_aspect: v.sample_aspect,
                    rotation: v.rotation,
                })
            }
            _ => None,
        },
        audio: match (&info.audio, &audio_decoder) {
            (Some(a), Some((_, d))) => {
                if d.rate() == 0 || d.channels() == 0 {
                    return Err(VideoError::Refused {
                        file: path.to_owned(),
                        reason: "the audio has no sample rate or channels".into(),
                    });
                }
                Some(AudioInput {
                    rate: d.rate(),
                    sample: d.format(),
                    layout_bits: d.channel_layout().bits(),
                    channels: d.channels(),
                    time_base: a.time_base,
                })
            }
            _ => None,
        },
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
    let outputs = plans
        .into_iter()
        .map(|plan| {
            let ext = match plan.container() {
                plan::Container::Mp4 => "mp4",
                plan::Container::Webm => "webm",
            };
            let file = workdir.join(format!("{}.{ext}", plan.name()));
            Output::new(path, plan, &rung_input, file, settings.keyframe_interval)
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
                            output.push(&chunk).map_err(|e| match e {
                                VideoError::Internal(reason) => VideoError::Internal(format!(
                                    "rendition {}: {reason}",
                                    output.name()
                                )),
                                other => other,
                            })?;
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
        let decoded = decode_all(
            path,
            &mut ictx,
            video_decoder.as_mut(),
            audio_decoder.as_mut(),
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
    let (decoded_seconds, poster_frame) = decoded?;
    let finished = finished.map_err(|e| e.in_file(path))?;
    progress(1.0);

    let duration = info
        .duration
        .or((decoded_seconds > 0.0).then_some(decoded_seconds));
    let mut renditions: Vec<Rendition> = finished
        .into_iter()
        .map(|f| rendition(path, f, duration))
        .collect::<Result<_, _>>()?;
    if let (Some(frame), Some(v)) = (poster_frame, &info.video) {
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
    Ok(Rendered {
        renditions,
        duration,
    })
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

/// Demuxes and decodes the whole source, handing chunks of frames to `send`
/// (which returns false once the encoders have given up). Returns the
/// timestamp of the last frame, in seconds.
fn decode_all(
    path: &Path,
    ictx: &mut ffmpeg::format::context::Input,
    mut video: Option<&mut (usize, decoder::Video)>,
    mut audio: Option<&mut (usize, decoder::Audio)>,
    limits: &DecodeLimits,
    progress: &(dyn Fn(f64) + Sync),
    mut send: impl FnMut(Vec<Decoded>) -> Result<bool, VideoError>,
) -> Result<(f64, Option<frame::Video>), VideoError> {
    let time_base = |index: usize| {
        ictx.stream(index)
            .map(|s| f64::from(s.time_base()))
            .unwrap_or(0.0)
    };
    let video_tb = video.as_ref().map_or(0.0, |(i, _)| time_base(*i));
    let audio_tb = audio.as_ref().map_or(0.0, |(i, _)| time_base(*i));
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
    };
    let chunk_target = if video.is_some() {
        CHUNK_VIDEO_FRAMES
    } else {
        CHUNK_AUDIO_FRAMES
    };

    for (stream, packet) in ictx.packets() {
        let index = stream.index();
        let sent = match (&mut video, &mut audio) {
            (Some((vi, dec)), _) if *vi == index => dec.send_packet(&packet).map(|_| {
                state.receive_video(dec, video_tb);
            }),
            (_, Some((ai, dec))) if *ai == index => dec.send_packet(&packet).map(|_| {
                state.receive_audio(dec, audio_tb);
            }),
            _ => continue,
        };
        if sent.is_err() {
            state.errors += 1;
            if state.errors > MAX_DECODE_ERRORS {
                return Err(VideoError::Refused {
                    file: path.to_owned(),
                    reason: format!(
                        "more than {MAX_DECODE_ERRORS} corrupt packets; the file is damaged"
                    ),
                });
            }
        }
        if state.last_time > limits.max_duration {
            return Err(VideoError::Refused {
                file: path.to_owned(),
                reason: format!(
                    "plays for more than the {:.0} s allowed",
                    limits.max_duration
                ),
            });
        }
        let pending = if video.is_some() {
            state.pending_video()
        } else {
            state.chunk.len()
        };
        if pending >= chunk_target {
            if let Some(total) = limits.expected {
                progress((state.last_time / total).clamp(0.0, 0.99));
            }
            if !send(std::mem::take(&mut state.chunk))? {
                return Ok((state.last_time, None));
            }
        }
    }
    if let Some((_, dec)) = video.as_mut() {
        if dec.send_eof().is_ok() {
            state.receive_video(dec, video_tb);
        }
    }
    if let Some((_, dec)) = audio.as_mut() {
        if dec.send_eof().is_ok() {
            state.receive_audio(dec, audio_tb);
        }
    }
    let last_time = state.last_time;
    if state.video_frames == 0 && state.audio_frames == 0 {
        return Err(VideoError::Refused {
            file: path.to_owned(),
            reason: "no frame could be decoded; the file is damaged or empty".into(),
        });
    }
    if video.is_some() && state.video_frames == 0 {
        return Err(VideoError::Refused {
            file: path.to_owned(),
            reason: "no video frame could be decoded".into(),
        });
    }
    send(state.chunk)?;
    Ok((last_time, state.poster.map(|(_, frame)| frame)))
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
}

impl DecodeState {
    fn pending_video(&self) -> usize {
        self.chunk
            .iter()
            .filter(|d| matches!(d, Decoded::Video(_)))
            .count()
    }

    fn receive_video(&mut self, dec: &mut decoder::Video, tb: f64) {
        let mut frame = frame::Video::empty();
        while dec.receive_frame(&mut frame).is_ok() {
            let ts = frame.timestamp();
            frame.set_pts(ts);
            if let Some(ts) = ts {
                self.last_time = self.last_time.max(ts as f64 * tb);
            }
            // The first frame, replaced once by the first at or past poster_at.
            let past = self.last_time >= self.poster_at;
            if self.poster.as_ref().is_none_or(|(done, _)| !done && past) {
                self.poster = Some((past, frame.clone()));
            }
            self.video_frames += 1;
            self.chunk.push(Decoded::Video(std::mem::replace(
                &mut frame,
                frame::Video::empty(),
            )));
        }
    }

    fn receive_audio(&mut self, dec: &mut decoder::Audio, tb: f64) {
        let mut frame = frame::Audio::empty();
        while dec.receive_frame(&mut frame).is_ok() {
            let ts = frame.timestamp();
            frame.set_pts(ts);
            if let Some(ts) = ts {
                self.last_time = self.last_time.max(ts as f64 * tb);
            }
            self.audio_frames += 1;
            self.chunk.push(Decoded::Audio(std::mem::replace(
                &mut frame,
                frame::Audio::empty(),
            )));
        }
    }
}
