//! The one decode of a source: demux every packet, decode the picture and
//! every sound track onto the shared timeline (`timeline`), collect the
//! subtitles (`captions`), and hand chunks of frames on to the outputs.
//!
//! Damage is counted, not fatal at once: a corrupt packet is skipped, and
//! only past [`MAX_DECODE_ERRORS`] is the file refused, with the stream and
//! the time where it gave up. Picture and sound both span the same time
//! from 0: a picture that ends first holds its last frame, sound that ends
//! first is padded with silence. The poster frame is picked on the way.

use std::path::Path;

use ffmpeg::format::context::Input;
use ffmpeg::{codec, decoder, frame, Packet, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::VideoSettings;

use super::captions::SubtitleTrack;
use super::error::VideoError;
use super::filters::VideoInput;
use super::source::{self, AudioStreamInfo, SourceInfo, VideoStreamInfo};
use super::timeline::{self, AudioNormalizer, Decoded, SharedAudio, Timeline, VideoClock};
use crate::media::MediaError;

/// Video frames per chunk handed to the encoders (audio frames ride along).
const CHUNK_VIDEO_FRAMES: usize = 12;
/// Audio frames per chunk when a source has no picture.
const CHUNK_AUDIO_FRAMES: usize = 96;
/// Corrupt packets tolerated before a source is called broken.
const MAX_DECODE_ERRORS: usize = 50;
/// The poster is taken this far in (or at a tenth of a shorter source):
/// past fades from black, usually on the title slide.
const POSTER_AT: f64 = 5.0;

/// One sound track being decoded, and its way into the shared format.
pub(super) struct AudioSlot {
    index: usize,
    decoder: decoder::Audio,
    pub normalizer: AudioNormalizer,
}

impl AudioSlot {
    /// The decoder of the `slot`-th sound track, brought to `shared` (or,
    /// for the first track, to a format chosen from its own rate).
    pub fn open(
        path: &Path,
        ictx: &Input,
        slot: usize,
        info: &AudioStreamInfo,
        shared: Option<SharedAudio>,
    ) -> Result<Self, VideoError> {
        let decoder = open_decoder(path, ictx, info.index, "audio")?
            .audio()
            .map_err(VideoError::ffmpeg(
                path,
                format!("opening the decoder of audio stream {}", info.index),
            ))?;
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

pub(super) fn open_video_decoder(
    path: &Path,
    ictx: &Input,
    index: usize,
) -> Result<decoder::Video, VideoError> {
    open_decoder(path, ictx, index, "video")?
        .video()
        .map_err(VideoError::ffmpeg(
            path,
            format!("opening the decoder of video stream {index}"),
        ))
}

/// A frame-threaded decoder for stream `index`, told the stream's time base.
fn open_decoder(
    path: &Path,
    ictx: &Input,
    index: usize,
    kind: &str,
) -> Result<decoder::Decoder, VideoError> {
    let stream = ictx.stream(index).ok_or_else(|| VideoError::NoStream {
        file: path.to_owned(),
        stream: index,
    })?;
    let mut ctx = codec::context::Context::from_parameters(stream.parameters()).map_err(
        VideoError::ffmpeg(
            path,
            format!("reading the parameters of {kind} stream {index}"),
        ),
    )?;
    ctx.set_threading(codec::threading::Config::kind(
        codec::threading::Type::Frame,
    ));
    let mut decoder = ctx.decoder();
    decoder.set_packet_time_base(stream.time_base());
    Ok(decoder)
}

/// How the source's pictures look: from the decoder, or, when the
/// container's headers did not say (a 0.5 fps screen recording has no
/// picture within FFmpeg's probe window), from the first decoded picture.
pub(super) fn video_input(
    path: &Path,
    settings: &VideoSettings,
    info: &VideoStreamInfo,
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
    Err(VideoError::refused(
        path,
        format!("video stream {index}: no picture could be decoded; the file is damaged or empty"),
    ))
}

/// How long the source may play, and how long it says it plays.
pub(super) struct DecodeLimits {
    max_duration: f64,
    expected: Option<f64>,
}

impl DecodeLimits {
    pub fn of(settings: &VideoSettings, info: &SourceInfo) -> Self {
        Self {
            max_duration: settings.max_duration,
            expected: info.duration,
        }
    }
}

/// A video stream's decoder, and the stream's index.
pub(super) type VideoDecoder = (usize, decoder::Video);

/// The decoders `decode_all` feeds.
pub(super) struct Streams<'a> {
    pub video: Option<&'a mut VideoDecoder>,
    /// The container's frame rate, for pictures that carry no timestamp.
    pub video_rate: Option<f64>,
    pub audio: &'a mut [AudioSlot],
    pub subtitles: &'a mut [SubtitleTrack],
}

/// What decoding the whole source found.
pub(super) struct DecodeOutcome {
    /// Seconds from 0 to the end of the longer of picture and sound.
    pub end: f64,
    pub poster: Option<frame::Video>,
}

/// Demuxes and decodes the whole source onto one timeline (see
/// `timeline`), handing chunks of frames to `send` (which returns false
/// once the encoders have given up).
pub(super) fn decode_all(
    path: &Path,
    ictx: &mut Input,
    timeline: &mut Timeline,
    mut streams: Streams<'_>,
    limits: &DecodeLimits,
    progress: &(dyn Fn(f64) + Sync),
    mut send: impl FnMut(Vec<Decoded>) -> Result<bool, VideoError>,
) -> Result<DecodeOutcome, VideoError> {
    let video_tb = streams
        .video
        .as_ref()
        .and_then(|(i, _)| ictx.stream(*i).map(|s| s.time_base()))
        .unwrap_or(Rational(1, 1));
    let mut state = DecodeState::new(video_tb, streams.video_rate, limits.expected);
    let chunk_target = if streams.video.is_some() {
        CHUNK_VIDEO_FRAMES
    } else {
        CHUNK_AUDIO_FRAMES
    };
    for (stream, mut packet) in ictx.packets() {
        let index = stream.index();
        timeline_packet(timeline, &streams, index, &mut packet, stream.time_base());
        let Some(sent) = state.decode(&mut streams, index, &packet) else {
            continue;
        };
        state.check(path, index, sent, limits)?;
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
    state.finish(path, &mut streams, send)
}

/// Moves a packet of a stream being decoded onto the shared clock.
fn timeline_packet(
    timeline: &mut Timeline,
    streams: &Streams<'_>,
    index: usize,
    packet: &mut Packet,
    tb: Rational,
) {
    let decoded = streams.video.as_ref().is_some_and(|(vi, _)| *vi == index)
        || streams.audio.iter().any(|a| a.index == index)
        || streams.subtitles.iter().any(|t| t.index == index);
    if decoded {
        timeline.packet(index, packet, tb);
    }
}

/// Why a packet could not be decoded.
enum DecodeFailure {
    /// The packet is corrupt: counted, and skipped.
    Packet,
    /// Something only a bug or a broken FFmpeg explains.
    Fatal(MediaError),
}

impl From<ffmpeg::Error> for DecodeFailure {
    fn from(_: ffmpeg::Error) -> Self {
        Self::Packet
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
    fn new(video_tb: Rational, video_rate: Option<f64>, expected: Option<f64>) -> Self {
        Self {
            chunk: Vec::new(),
            video_frames: 0,
            audio_frames: 0,
            errors: 0,
            last_time: 0.0,
            poster_at: expected.map_or(POSTER_AT, |d| (d * 0.1).min(POSTER_AT)),
            poster: None,
            video: VideoClock::new(video_tb, video_rate),
        }
    }

    /// Decodes a packet of stream `index`; None when the stream is not
    /// decoded as picture or sound (subtitles are collected here too).
    fn decode(
        &mut self,
        streams: &mut Streams<'_>,
        index: usize,
        packet: &Packet,
    ) -> Option<Result<(), DecodeFailure>> {
        if let Some((_, dec)) = streams.video.as_mut().filter(|(vi, _)| *vi == index) {
            let sent = dec.send_packet(packet).map(|()| self.receive_video(dec));
            Some(sent.map_err(DecodeFailure::from))
        } else if let Some(slot) = streams.audio.iter_mut().find(|a| a.index == index) {
            Some(match slot.decoder.send_packet(packet) {
                Ok(()) => self.receive_audio(slot),
                Err(e) => Err(e.into()),
            })
        } else {
            if let Some(track) = streams.subtitles.iter_mut().find(|t| t.index == index) {
                track.push(packet);
            }
            None
        }
    }

    /// Counts a corrupt packet, and refuses the file past the tolerance or
    /// the profile's duration.
    fn check(
        &mut self,
        path: &Path,
        index: usize,
        sent: Result<(), DecodeFailure>,
        limits: &DecodeLimits,
    ) -> Result<(), VideoError> {
        match sent {
            Ok(()) => {}
            Err(DecodeFailure::Packet) => {
                self.errors += 1;
                if self.errors > MAX_DECODE_ERRORS {
                    return Err(VideoError::refused(
                        path,
                        format!(
                            "stream {index} at {:.2} s: more than {MAX_DECODE_ERRORS} corrupt packets; \
                             the file is damaged: export it again from its editor or recorder",
                            self.last_time
                        ),
                    ));
                }
            }
            Err(DecodeFailure::Fatal(e)) => return Err(VideoError::media(path, e)),
        }
        if self.last_time > limits.max_duration {
            return Err(VideoError::refused(
                path,
                format!(
                    "plays for more than the {:.0} s allowed; split it into shorter \
                     lessons, or raise video.max_duration in the profile",
                    limits.max_duration
                ),
            ));
        }
        Ok(())
    }

    /// Drains the decoders, brings picture and sound to the same end, and
    /// sends the last chunk.
    fn finish(
        mut self,
        path: &Path,
        streams: &mut Streams<'_>,
        mut send: impl FnMut(Vec<Decoded>) -> Result<bool, VideoError>,
    ) -> Result<DecodeOutcome, VideoError> {
        if let Some((_, dec)) = streams.video.as_mut() {
            if dec.send_eof().is_ok() {
                self.receive_video(dec);
            }
        }
        for slot in streams.audio.iter_mut() {
            if slot.decoder.send_eof().is_ok() {
                if let Err(DecodeFailure::Fatal(e)) = self.receive_audio(slot) {
                    return Err(VideoError::media(path, e));
                }
            }
        }
        if self.video_frames == 0 && self.audio_frames == 0 {
            return Err(VideoError::refused(
                path,
                "no frame could be decoded; the file is damaged or empty".into(),
            ));
        }
        if streams.video.is_some() && self.video_frames == 0 {
            return Err(VideoError::refused(
                path,
                "no video frame could be decoded; the file is damaged".into(),
            ));
        }
        let video_end = self.video.end();
        let audio_end = streams.audio.first().map_or(0.0, |a| a.normalizer.end());
        let end = video_end.max(audio_end);
        // The picture holds its last frame until the sound ends.
        if let Some(last) = self.video.last.take() {
            if video_end + 1e-3 < end {
                self.video.hold(last, end, &mut self.chunk);
            }
        }
        for slot in streams.audio.iter_mut() {
            slot.normalizer
                .finish(end, &mut self.chunk)
                .map_err(|e| VideoError::media(path, e))?;
        }
        send(self.chunk)?;
        Ok(DecodeOutcome {
            end,
            poster: self.poster.map(|(_, frame)| frame),
        })
    }

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
