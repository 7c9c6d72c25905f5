//! Video and audio sources: one decode, every rung of the ladder.
//!
//! A source is opened under whitelists (`source`), the profile's ladder is
//! fitted to it (`plan`), each rung's rate is tuned to its SSIM target on
//! samples (`tune`, on the rayon pool), and then the source is decoded
//! exactly once (`decode`, onto the one timeline of `timeline`): chunks of
//! decoded frames, scaled once to the largest rung (`cascade`), are shared
//! (by reference) with every output (`output`), each on its own thread
//! behind a short queue (`QUEUED_CHUNKS`), so cheap and costly rungs
//! progress independently and both cores stay busy. Memory stays bounded by
//! the queues, whatever the length of the source, and decoding overlaps
//! encoding. A rung's pictures are filtered by `filters` and encoded by
//! `encoder`; `quality` measures their SSIM as they are encoded, `captions`
//! turns text subtitles into WebVTT and `poster` a frame into stills.
//!
//! Every failure is a [`VideoError`] (`error`) naming the file and, inside
//! an output, the rendition, stream and time. FFmpeg's set-up, its errors
//! and the graph and encoder helpers come from `crate::media`; the poster's
//! stills are encoded by `crate::image`.

mod captions;
mod cascade;
pub mod codecs;
mod decode;
mod encoder;
mod error;
mod filters;
mod output;
pub mod plan;
mod poster;
mod quality;
pub mod source;
pub mod ssim;
mod timeline;
mod tune;

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use ffmpeg::format::context::Input;
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::VideoSettings;

use crate::rendition::Rendition;
pub use captions::ExtractedCaptions;
use captions::SubtitleTrack;
use cascade::Cascade;
use decode::{
    decode_all, open_video_decoder, video_input, AudioSlot, DecodeLimits, Streams, VideoDecoder,
};
pub use error::{PosterError, StreamTime, VideoError};
use filters::VideoInput;
use output::{AudioInput, Finished, InputFormat, Output, StreamNames};
use plan::OutputPlan;
use source::{SourceInfo, VideoStreamInfo};
use timeline::{Decoded, Timeline};

/// Chunks waiting for each output: bounds the memory held for slow rungs.
const QUEUED_CHUNKS: usize = 8;

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
    let (mut video_decoder, video) = open_video(path, settings, &ictx, &info)?.unzip();
    let mut audio = open_audio(path, &ictx, &mut info)?;
    let mut subtitles = open_subtitles(path, &ictx, &info);
    let input = InputFormat {
        video,
        audio: audio.first().map(|a| AudioInput::of(a.normalizer.shared())),
    };
    let mut plans = plan::plan(&info, settings);
    if let Some(video_input) = &input.video {
        tune::tune(path, settings, &info, video_input, &mut plans)?;
    }
    let mut cascade = match &input.video {
        Some(v) => Cascade::new(path, v, &plans)?,
        None => None,
    };
    let outputs = outputs(
        path,
        settings,
        workdir,
        &info,
        &input,
        cascade.as_ref(),
        plans,
    )?;
    let limits = DecodeLimits::of(settings, &info);
    let mut timeline = Timeline::new(info.origin, info.discontinuous);
    let streams = Streams {
        video: video_decoder.as_mut(),
        video_rate: info.video.as_ref().and_then(|v| v.frame_rate),
        audio: &mut audio,
        subtitles: &mut subtitles,
    };
    let (decoded, finished) = run_outputs(path, outputs, |broadcast| {
        decode_all(
            path,
            &mut ictx,
            &mut timeline,
            streams,
            &limits,
            progress,
            |mut chunk| {
                if let Some(cascade) = cascade.as_mut() {
                    scale(cascade, &mut chunk).map_err(|e| VideoError::media(path, e))?;
                }
                Ok(broadcast(chunk))
            },
        )
    });
    if timeline.jumps > 0 {
        tracing::info!(file = %path.display(), jumps = timeline.jumps, "folded clock jumps into one timeline");
    }
    let (decoded, finished) = (decoded?, finished?);
    progress(1.0);
    let duration = (decoded.end > 0.0).then_some(decoded.end).or(info.duration);
    let mut renditions = finished
        .into_iter()
        .map(|f| f.into_rendition(path, duration))
        .collect::<Result<Vec<_>, _>>()?;
    if let (Some(frame), Some(v)) = (decoded.poster, &info.video) {
        renditions.extend(stills(path, &frame, v, lowest_tier)?);
    }
    Ok(Rendered {
        renditions,
        duration,
        captions: write_captions(path, workdir, subtitles)?,
    })
}

/// Writes the WebVTT of every subtitle track that held text.
fn write_captions(
    path: &Path,
    workdir: &Path,
    subtitles: Vec<SubtitleTrack>,
) -> Result<Vec<ExtractedCaptions>, VideoError> {
    subtitles
        .into_iter()
        .map(|track| track.finish(path, workdir))
        .filter_map(Result::transpose)
        .collect()
}

/// The video stream's decoder (with its index) and how its pictures look.
fn open_video(
    path: &Path,
    settings: &VideoSettings,
    ictx: &Input,
    info: &SourceInfo,
) -> Result<Option<(VideoDecoder, VideoInput)>, VideoError> {
    let Some(v) = &info.video else {
        return Ok(None);
    };
    let decoder = open_video_decoder(path, ictx, v.index)?;
    let input = video_input(path, settings, v, &decoder)?;
    Ok(Some(((v.index, decoder), input)))
}

/// The poster and placeholder from the frame `decode` picked.
fn stills(
    path: &Path,
    frame: &ffmpeg::frame::Video,
    stream: &VideoStreamInfo,
    tier: &str,
) -> Result<Vec<Rendition>, VideoError> {
    poster::renditions(frame, stream, tier).map_err(|source| VideoError::Poster {
        file: path.to_owned(),
        source,
    })
}

/// The sound tracks' decoders, the rungs' track first. Every track is
/// brought to the format of the one the rungs carry. A further track that
/// cannot be decoded is left out (of `info` too, and said so): it must not
/// cost the lecture.
fn open_audio(
    path: &Path,
    ictx: &Input,
    info: &mut SourceInfo,
) -> Result<Vec<AudioSlot>, VideoError> {
    let main = match &info.audio {
        Some(a) => Some(AudioSlot::open(path, ictx, 0, a, None)?),
        None => None,
    };
    let shared = main.as_ref().map(|m| m.normalizer.shared());
    let mut audio: Vec<AudioSlot> = main.into_iter().collect();
    let mut kept = Vec::new();
    for a in std::mem::take(&mut info.extra_audio) {
        match AudioSlot::open(path, ictx, kept.len() + 1, &a, shared) {
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
    Ok(audio)
}

/// The subtitle tracks' decoders; one that cannot be decoded is left out,
/// and said so.
fn open_subtitles(path: &Path, ictx: &Input, info: &SourceInfo) -> Vec<SubtitleTrack> {
    let mut subtitles = Vec::new();
    for s in &info.subtitles {
        match SubtitleTrack::open(path, ictx, s) {
            Ok(track) => subtitles.push(track),
            Err(e) => {
                tracing::warn!(file = %path.display(), stream = s.index, error = %e, "subtitle track left out: it cannot be decoded");
            }
        }
    }
    subtitles
}

/// One output per plan, writing `<workdir>/<name>.<mp4|webm>`; the rungs'
/// graphs receive the cascade's pictures when there is a cascade.
fn outputs(
    path: &Path,
    settings: &VideoSettings,
    workdir: &Path,
    info: &SourceInfo,
    input: &InputFormat,
    cascade: Option<&Cascade>,
    plans: Vec<OutputPlan>,
) -> Result<Vec<Output>, VideoError> {
    let rung_input = InputFormat {
        video: cascade.map(|c| c.output().clone()).or(input.video.clone()),
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
    plans
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
        .collect()
}

/// Scales the chunk's pictures through the shared first step.
fn scale(cascade: &mut Cascade, chunk: &mut [Decoded]) -> Result<(), crate::media::MediaError> {
    for decoded in chunk {
        if let Decoded::Video(picture) = decoded {
            *picture = cascade.scale(picture)?;
        }
    }
    Ok(())
}

/// Runs every output on its own thread, each behind its own short queue,
/// while `decode` runs here and hands chunks to them all through the
/// function it is given (false once an output has given up). Returns what
/// `decode` returned and what the outputs finished.
///
/// Rungs of very different cost progress independently, so both cores
/// stay busy instead of waiting for the slowest rung at every chunk.
fn run_outputs<R>(
    path: &Path,
    outputs: Vec<Output>,
    decode: impl FnOnce(&dyn Fn(Vec<Decoded>) -> bool) -> R,
) -> (R, Result<Vec<Finished>, VideoError>) {
    std::thread::scope(|scope| {
        let (senders, encoders): (Vec<_>, Vec<_>) = outputs
            .into_iter()
            .map(|mut output| {
                let (tx, rx) = sync_channel::<Arc<Vec<Decoded>>>(QUEUED_CHUNKS);
                let rendition = output.name().to_owned();
                let thread = std::thread::Builder::new().name(format!("lowband-{rendition}"));
                let encoder =
                    thread.spawn_scoped(scope, move || -> Result<Finished, VideoError> {
                        for chunk in rx {
                            output.push(&chunk)?;
                        }
                        output.finish()
                    });
                (tx, (rendition, encoder))
            })
            .unzip();
        let broadcast = |chunk: Vec<Decoded>| {
            let chunk = Arc::new(chunk);
            senders.iter().all(|tx| tx.send(Arc::clone(&chunk)).is_ok())
        };
        let decoded = decode(&broadcast);
        drop(senders);
        let finished = encoders
            .into_iter()
            .map(|(rendition, encoder)| match encoder {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(VideoError::Panicked {
                        file: path.to_owned(),
                        rendition,
                    })
                }),
                Err(source) => Err(VideoError::Thread {
                    file: path.to_owned(),
                    rendition,
                    source,
                }),
            })
            .collect();
        (decoded, finished)
    })
}
