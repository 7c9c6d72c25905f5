//! One rendition being written: filter graphs, encoders and a muxer.
//!
//! Every output receives the same decoded frames. Each has its own lanes
//! (`lane`: a filter graph feeding an encoder feeding one muxer stream; a
//! picture lane, `video_lane`, and a sound lane, `audio_lane`) and its own
//! muxer writing to a local file, so the outputs share nothing mutable and
//! each can run on its own thread. What a finished output measured, and how
//! the manifest describes it, is `finished`.

mod audio_lane;
mod finished;
mod lane;
mod video_lane;

use std::path::{Path, PathBuf};

use ffmpeg::{encoder, format, Dictionary, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::AudioCodec;

use super::encoder::codecs_string;
use super::error::{StreamTime, VideoError};
use super::filters::VideoInput;
use super::plan::{Container, OutputPlan};
use super::timeline::{Decoded, SharedAudio};
use crate::media::MediaError;
use audio_lane::audio_lane;
pub(super) use finished::Finished;
use lane::Lane;
use video_lane::video_lane;

/// How decoded frames look, for the filter graph sources.
#[derive(Debug, Clone)]
pub(super) struct InputFormat {
    pub video: Option<VideoInput>,
    pub audio: Option<AudioInput>,
}

/// How decoded sound looks, for an `abuffer` source.
#[derive(Debug, Clone)]
pub(super) struct AudioInput {
    pub rate: u32,
    pub sample: ffmpeg::format::Sample,
    pub layout_bits: u64,
    pub channels: u16,
    pub time_base: Rational,
}

impl AudioInput {
    /// Sound in the shared format every track is brought to (see `timeline`).
    pub fn of(shared: SharedAudio) -> Self {
        Self {
            rate: shared.rate,
            sample: SharedAudio::sample(),
            layout_bits: ffmpeg::ChannelLayout::MONO.bits(),
            channels: 1,
            time_base: shared.time_base(),
        }
    }
}

/// The source's stream indices, for errors that name a stream.
#[derive(Debug, Clone, Default)]
pub(super) struct StreamNames {
    pub video: Option<usize>,
    /// Per audio slot.
    pub audio: Vec<usize>,
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

impl Output {
    /// Opens the muxer for `plan` at `path`, sets its lanes up and writes
    /// the file's header.
    pub fn new(
        source: &Path,
        plan: OutputPlan,
        input: &InputFormat,
        path: PathBuf,
        keyframe_interval: f64,
        streams: StreamNames,
    ) -> Result<Self, VideoError> {
        let name = plan.name().to_owned();
        let container = plan.container();
        let muxer = match container {
            Container::Mp4 => "mp4",
            Container::Webm => "webm",
        };
        let mut octx = format::output_as(&path, muxer).map_err(VideoError::ffmpeg(
            source,
            format!("creating the {muxer} muxer for {name}"),
        ))?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut codecs = Vec::new();
        let video = match (&plan, &input.video) {
            (OutputPlan::Video(v), Some(vin)) => {
                let lane = video_lane(source, v, vin, global_header, &mut octx)?;
                codecs.push(codecs_string(v.codec, &lane.encoder));
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
                let lane = audio_lane(source, &name, a, ain, container, global_header, &mut octx)?;
                Some(lane)
            }
            _ => None,
        };
        let options = muxer_options(container, video.is_some(), keyframe_interval);
        octx.write_header_with(options).map_err(VideoError::ffmpeg(
            source,
            format!("writing the MP4 header for {name}"),
        ))?;
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
                        lane.push(f, &mut self.octx)
                            .map_err(|e| self.failed(self.video_at(), e))?;
                    }
                }
                Decoded::Audio(slot, f) if *slot == self.audio_slot => {
                    if let Some(lane) = self.audio.as_mut() {
                        lane.push(f, &mut self.octx)
                            .map_err(|e| self.failed(self.audio_at(), e))?;
                    }
                }
                Decoded::Audio(..) => {}
            }
        }
        Ok(())
    }

    /// Flushes graphs and encoders and closes the file.
    pub fn finish(mut self) -> Result<Finished, VideoError> {
        let mut duration: f64 = 0.0;
        let mut ssim = None;
        if let Some(lane) = self.video.as_mut() {
            lane.finish(&mut self.octx)
                .map_err(|e| self.failed(self.video_at(), e))?;
        }
        if let Some(lane) = self.video.as_mut() {
            ssim = lane
                .probe
                .as_mut()
                .and_then(super::quality::QualityProbe::finish);
            duration = duration.max(lane.last_time);
        }
        if let Some(lane) = self.audio.as_mut() {
            lane.finish(&mut self.octx)
                .map_err(|e| self.failed(self.audio_at(), e))?;
        }
        if let Some(lane) = self.audio.as_ref() {
            duration = duration.max(lane.last_time);
        }
        self.octx.write_trailer().map_err(VideoError::ffmpeg(
            &self.source,
            format!("finishing the file for {}", self.plan.name()),
        ))?;
        Ok(Finished {
            plan: self.plan,
            path: self.path,
            duration,
            codecs: self.codecs.join(", "),
            ssim,
        })
    }

    /// `rendition 144p: audio stream 1 at 8.02 s: …` for an error raised
    /// inside a lane.
    fn failed(&self, at: StreamTime, source: MediaError) -> VideoError {
        VideoError::Output {
            file: self.source.clone(),
            rendition: self.plan.name().to_owned(),
            at,
            source,
        }
    }

    fn video_at(&self) -> StreamTime {
        StreamTime {
            kind: "video",
            stream: self.streams.video,
            at: self.video.as_ref().map_or(0.0, |l| l.last_time),
        }
    }

    fn audio_at(&self) -> StreamTime {
        StreamTime {
            kind: "audio",
            stream: self.streams.audio.get(self.audio_slot).copied(),
            at: self.audio.as_ref().map_or(0.0, |l| l.last_time),
        }
    }
}

/// The muxer's options: how the file is laid out for progressive play,
/// seeking by range and HLS.
fn muxer_options(
    container: Container,
    has_video: bool,
    keyframe_interval: f64,
) -> Dictionary<'static> {
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
    } else if has_video {
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
    options
}
