//! One presentation timeline for every stream of a source, and sound that
//! follows it sample for sample.
//!
//! Files made outside lowband rarely start at zero or keep their clocks
//! straight: MPEG-TS starts wherever the recorder's clock was and jumps
//! back when it restarts, clips joined with `-c copy` overlap by their
//! encoders' priming, a phone's audio starts a few frames after its
//! picture. Two pieces put that right before any rung sees a frame:
//!
//! - [`Timeline`] rewrites packet timestamps so that the earliest selected
//!   stream starts at 0, and, in containers whose clocks may jump
//!   (MPEG-TS, FLV), folds a jump back into one continuous clock for all
//!   streams at once, so picture and sound stay together across it;
//! - [`VideoClock`] repairs pictures' timestamps on that clock (a picture
//!   without one, or one that does not move forward), and holds the last
//!   picture until the sound ends;
//! - [`AudioNormalizer`] turns decoded sound into one fixed format (mono,
//!   float, one rate) with contiguous timestamps counted in samples:
//!   silence from 0 to where the sound starts, silence in gaps, overlaps
//!   cut, a sample rate or channel layout that changes mid-stream
//!   resampled into the same format. Every encoder then receives strictly
//!   increasing, gap-free timestamps, whatever the source did.

#![allow(
    unsafe_code,
    reason = "setting a held frame's pkt_duration, a field ffmpeg-next does not expose"
)]

use std::collections::HashMap;

use ffmpeg::{filter, frame, ChannelLayout, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::media::{build_graph, feed_graph, pull, MediaError};

/// A backward jump of a stream's clock, in seconds, taken for a reset.
const BACKWARD_JUMP: f64 = 0.5;
/// A forward jump taken for a reset rather than a gap in the recording.
const FORWARD_JUMP: f64 = 10.0;
/// Highest rate the shared sound is kept at: no rung uses more.
pub(super) const MAX_AUDIO_RATE: u32 = 48_000;
/// Gaps and overlaps longer than this are filled with silence or cut at
/// once; shorter drift is absorbed by stretching (a sample a second).
const HARD_COMPENSATION: f64 = 0.01;
/// Samples per frame of generated silence.
const SILENCE_FRAME: usize = 1024;

/// A decoded frame on the shared timeline, on its way to every output.
pub(super) enum Decoded {
    Video(frame::Video),
    /// Sound in the shared format (see [`SharedAudio`]), of the n-th audio
    /// track: 0 is the one the rungs carry.
    Audio(usize, frame::Audio),
}

/// Rewrites packet timestamps onto one clock that starts at 0.
pub(super) struct Timeline {
    /// Seconds added to every timestamp: minus the origin, plus the
    /// corrections made at clock jumps.
    offset: f64,
    /// The container's clocks may jump (FFmpeg's `AVFMT_TS_DISCONT`).
    discontinuous: bool,
    /// Per stream: where its next packet should start, in seconds on the
    /// corrected clock.
    expected: HashMap<usize, f64>,
    /// Clock jumps folded so far, for the ingest's log.
    pub jumps: usize,
}

impl Timeline {
    pub fn new(origin: f64, discontinuous: bool) -> Self {
        Self {
            offset: -origin,
            discontinuous,
            expected: HashMap::new(),
            jumps: 0,
        }
    }

    /// Moves `packet` (of `stream`, time base `tb`) onto the shared clock.
    pub fn packet(&mut self, stream: usize, packet: &mut Packet, tb: Rational) {
        let tb = f64::from(tb);
        if tb <= 0.0 {
            return;
        }
        if let Some(ts) = packet.dts().or(packet.pts()) {
            let at = ts as f64 * tb + self.offset;
            if let (true, Some(&expected)) = (self.discontinuous, self.expected.get(&stream)) {
                let jump = at - expected;
                if !(-BACKWARD_JUMP..=FORWARD_JUMP).contains(&jump) {
                    // The recorder's clock restarted: continue where this
                    // stream left off, and move every stream with it.
                    self.offset -= jump;
                    self.jumps += 1;
                }
            }
            let duration = packet.duration().max(0) as f64 * tb;
            let start = ts as f64 * tb + self.offset;
            self.expected.insert(stream, start + duration);
        }
        let shift = (self.offset / tb).round() as i64;
        if let Some(pts) = packet.pts() {
            packet.set_pts(Some(pts + shift));
        }
        if let Some(dts) = packet.dts() {
            packet.set_dts(Some(dts + shift));
        }
    }
}

/// Pictures' timestamps, repaired: a picture without one comes a frame
/// after the last, and one that does not move forward is moved a tick past
/// the last, so the rungs' frame-rate filters always see time advance.
pub(super) struct VideoClock {
    tb: Rational,
    /// Ticks of one frame at the container's rate.
    step: i64,
    last_pts: Option<i64>,
    /// The last picture, held to the end when the sound is longer.
    pub last: Option<frame::Video>,
}

impl VideoClock {
    pub fn new(tb: Rational, rate: Option<f64>) -> Self {
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

    /// Gives `frame` its repaired timestamp; returns it in seconds.
    pub fn stamp(&mut self, frame: &mut frame::Video) -> f64 {
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
    pub fn end(&self) -> f64 {
        self.last_pts
            .map_or(0.0, |p| (p + self.step) as f64 * f64::from(self.tb))
    }

    /// Shows `last` again a frame before `until`: the rungs' frame-rate
    /// filters repeat it up to there.
    pub fn hold(&mut self, last: frame::Video, until: f64, chunk: &mut Vec<Decoded>) {
        let mut held = last;
        let at = ((until / f64::from(self.tb)).round() as i64 - self.step)
            .max(self.last_pts.unwrap_or(0) + 1);
        held.set_pts(Some(at));
        // SAFETY: a plain integer field of a frame this function owns.
        unsafe { (*held.as_mut_ptr()).pkt_duration = self.step };
        self.last_pts = Some(at);
        chunk.push(Decoded::Video(held));
    }
}

/// The fixed format every rung's sound is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SharedAudio {
    pub rate: u32,
}

impl SharedAudio {
    /// The shared format for a source whose first sound runs at `source_rate`.
    pub fn for_source(source_rate: u32) -> Self {
        Self {
            rate: source_rate.clamp(8_000, MAX_AUDIO_RATE),
        }
    }

    pub fn sample() -> ffmpeg::format::Sample {
        ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar)
    }

    pub fn time_base(self) -> Rational {
        Rational(1, self.rate as i32)
    }
}

/// What the decoded frames entering the current graph look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputKey {
    rate: u32,
    format: ffmpeg::format::Sample,
    layout: u64,
    channels: u16,
}

/// Decoded sound of one stream in, the shared format with sample-counted
/// timestamps out (see the module documentation).
pub(super) struct AudioNormalizer {
    /// Which audio slot the frames are for.
    slot: usize,
    shared: SharedAudio,
    /// Time base of the decoded frames' timestamps (the stream's).
    in_tb: Rational,
    graph: Option<(InputKey, filter::Graph)>,
    /// Samples handed on so far: the next frame's timestamp.
    next_pts: i64,
}

impl AudioNormalizer {
    pub fn new(slot: usize, shared: SharedAudio, in_tb: Rational) -> Self {
        Self {
            slot,
            shared,
            in_tb,
            graph: None,
            next_pts: 0,
        }
    }

    /// The format this track is brought to.
    pub fn shared(&self) -> SharedAudio {
        self.shared
    }

    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Seconds of sound handed on so far.
    pub fn end(&self) -> f64 {
        self.next_pts as f64 / f64::from(self.shared.rate)
    }

    /// Takes one decoded frame; shared-format frames go to `out`.
    pub fn push(&mut self, frame: &frame::Audio, out: &mut Vec<Decoded>) -> Result<(), MediaError> {
        if frame.samples() == 0 || frame.rate() == 0 {
            return Ok(());
        }
        let channels = frame.channels().max(1);
        let key = InputKey {
            rate: frame.rate(),
            format: frame.format(),
            layout: frame.channel_layout().bits(),
            channels,
        };
        if self.graph.as_ref().is_none_or(|(k, _)| *k != key) {
            // A new stream, or its rate or layout changed mid-stream: what
            // the old graph holds goes out first, then a graph for the new
            // format continues the same count of samples.
            self.flush(out)?;
            if self.next_pts > 0 {
                tracing::debug!(
                    slot = self.slot,
                    rate = key.rate,
                    channels = key.channels,
                    at = self.end(),
                    "sound format changed mid-stream"
                );
            }
            self.graph = Some((key, self.build(key)?));
        }
        let Some((_, graph)) = self.graph.as_mut() else {
            return Ok(());
        };
        feed_graph(graph, frame)?;
        self.drain(out)
    }

    /// Everything still held goes out, then silence up to `until` seconds.
    pub fn finish(&mut self, until: f64, out: &mut Vec<Decoded>) -> Result<(), MediaError> {
        self.flush(out)?;
        let target = (until * f64::from(self.shared.rate)).round() as i64;
        while self.next_pts < target {
            let samples = SILENCE_FRAME.min((target - self.next_pts) as usize);
            let mut silence =
                frame::Audio::new(SharedAudio::sample(), samples, ChannelLayout::MONO);
            silence.set_rate(self.shared.rate);
            silence.data_mut(0).fill(0);
            self.emit(silence, out);
        }
        Ok(())
    }

    fn build(&self, key: InputKey) -> Result<filter::Graph, MediaError> {
        let layout = if key.layout != 0 {
            format!(":channel_layout=0x{:x}", key.layout)
        } else {
            String::new()
        };
        let args = format!(
            "time_base={}/{}:sample_rate={}:sample_fmt={}:channels={}{layout}",
            self.in_tb.numerator(),
            self.in_tb.denominator(),
            key.rate,
            key.format.name(),
            key.channels,
        );
        // Where this graph's first sample belongs. libswresample multiplies
        // first_pts by the output rate to reach its own unit (1 / (input
        // rate × output rate)), so it counts samples at the INPUT rate,
        // whatever FFmpeg's documentation says: given in output samples, a
        // 22.05 kHz track after a 48 kHz one was expected 2.2 times too late
        // and every sample of it dropped.
        let first = (self.next_pts as f64 * f64::from(key.rate) / f64::from(self.shared.rate))
            .round() as i64;
        let spec = format!(
            "aresample=async=1:min_hard_comp={HARD_COMPENSATION}:first_pts={first},\
             aformat=sample_fmts={}:sample_rates={}:channel_layouts=mono",
            SharedAudio::sample().name(),
            self.shared.rate,
        );
        build_graph("abuffer", "abuffersink", &args, &spec, |_| {}).map_err(MediaError::op(
            format!(
                "building the sound's resampler ({} Hz, {} channels)",
                key.rate, key.channels
            ),
        ))
    }

    fn flush(&mut self, out: &mut Vec<Decoded>) -> Result<(), MediaError> {
        if let Some((_, graph)) = self.graph.as_mut() {
            if let Some(mut src) = graph.get("in") {
                src.source()
                    .flush()
                    .map_err(MediaError::op("flushing the resampler"))?;
            }
            self.drain(out)?;
        }
        self.graph = None;
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<Decoded>) -> Result<(), MediaError> {
        let Some((_, graph)) = self.graph.as_mut() else {
            return Ok(());
        };
        loop {
            let mut shared = frame::Audio::empty();
            if !pull(graph, &mut shared, "resampler")? {
                return Ok(());
            }
            if shared.samples() > 0 {
                emit(self.slot, &mut self.next_pts, shared, out);
            }
        }
    }

    fn emit(&mut self, shared: frame::Audio, out: &mut Vec<Decoded>) {
        emit(self.slot, &mut self.next_pts, shared, out);
    }
}

/// Stamps a shared-format frame with the running sample count.
fn emit(slot: usize, next_pts: &mut i64, mut shared: frame::Audio, out: &mut Vec<Decoded>) {
    shared.set_pts(Some(*next_pts));
    *next_pts += shared.samples() as i64;
    out.push(Decoded::Audio(slot, shared));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pts: i64, duration: i64) -> Packet {
        let mut p = Packet::empty();
        p.set_pts(Some(pts));
        p.set_dts(Some(pts));
        p.set_duration(duration);
        p
    }

    #[test]
    fn origin_moves_to_zero() {
        let mut t = Timeline::new(1.4, false);
        let mut p = packet(126_000, 3_600);
        t.packet(0, &mut p, Rational(1, 90_000));
        assert_eq!(p.pts(), Some(0));
    }

    #[test]
    fn a_reset_continues_the_clock_for_every_stream() {
        let tb = Rational(1, 90_000);
        let mut t = Timeline::new(30.0, true);
        let mut last = 0;
        // Video at 25 fps from 30 s, then the recorder restarts at 0.
        for i in 0..50 {
            let mut p = packet(30 * 90_000 + i * 3_600, 3_600);
            t.packet(0, &mut p, tb);
            last = p.pts().unwrap();
        }
        assert_eq!(last, 49 * 3_600);
        let mut after = packet(0, 3_600);
        t.packet(0, &mut after, tb);
        assert_eq!(after.pts(), Some(50 * 3_600), "continues where it left off");
        let mut audio = packet(1_920, 1_920);
        t.packet(1, &mut audio, tb);
        assert_eq!(audio.pts(), Some(50 * 3_600 + 1_920), "sound moves with it");
        assert_eq!(t.jumps, 1);
    }

    #[test]
    fn gaps_are_kept_where_clocks_do_not_jump() {
        let tb = Rational(1, 1000);
        let mut t = Timeline::new(0.0, false);
        let mut p = packet(0, 40);
        t.packet(0, &mut p, tb);
        let mut later = packet(60_000, 40);
        t.packet(0, &mut later, tb);
        assert_eq!(later.pts(), Some(60_000));
        assert_eq!(t.jumps, 0);
    }

    /// A frame of a 1 kHz tone at half scale.
    fn tone(rate: u32, samples: usize, layout: ChannelLayout, pts: i64) -> frame::Audio {
        let mut f = frame::Audio::new(SharedAudio::sample(), samples, layout);
        f.set_rate(rate);
        for plane in 0..f.planes() {
            let data: &mut [f32] = f.plane_mut(plane);
            for (i, s) in data.iter_mut().enumerate() {
                *s = 0.5 * (i as f32 * 1000.0 * std::f32::consts::TAU / rate as f32).sin();
            }
        }
        f.set_pts(Some(pts));
        f
    }

    /// The loudest sample from sample `from` to `to`.
    fn peak(out: &[Decoded], from: i64, to: i64) -> f32 {
        let mut loudest = 0f32;
        for d in out {
            let Decoded::Audio(_, f) = d else { continue };
            let start = f.pts().unwrap_or(0);
            for (i, s) in f.plane::<f32>(0).iter().enumerate().take(f.samples()) {
                if (from..to).contains(&(start + i as i64)) {
                    loudest = loudest.max(s.abs());
                }
            }
        }
        loudest
    }

    fn counted(out: &[Decoded]) -> Vec<(i64, usize)> {
        out.iter()
            .filter_map(|d| match d {
                Decoded::Audio(_, f) => Some((f.pts().unwrap_or(-1), f.samples())),
                Decoded::Video(_) => None,
            })
            .collect()
    }

    /// Timestamps out are contiguous whatever comes in: a late start, an
    /// overlap, a gap, and a change of rate and layout mid-stream.
    #[test]
    fn sound_comes_out_contiguous() {
        crate::media::init();
        let shared = SharedAudio::for_source(48_000);
        let mut n = AudioNormalizer::new(0, shared, Rational(1, 48_000));
        let mut out = Vec::new();
        // Starts 0.5 s late, 1 s of sound in 1024-sample frames.
        let mut pts = 24_000;
        for _ in 0..47 {
            n.push(&tone(48_000, 1024, ChannelLayout::STEREO, pts), &mut out)
                .unwrap();
            pts += 1024;
        }
        // A join that overlaps by 2048 samples, then a 0.25 s gap.
        pts -= 2048;
        for _ in 0..10 {
            n.push(&tone(48_000, 1024, ChannelLayout::STEREO, pts), &mut out)
                .unwrap();
            pts += 1024;
        }
        pts += 12_000;
        // And the rest at 22050 Hz mono (in 48 kHz ticks of the stream).
        for _ in 0..20 {
            let mut f = tone(22_050, 441, ChannelLayout::MONO, pts);
            f.set_pts(Some(pts));
            n.push(&f, &mut out).unwrap();
            pts += 960;
        }
        n.finish(3.0, &mut out).unwrap();
        let frames = counted(&out);
        let mut expected = 0;
        for (pts, samples) in &frames {
            assert_eq!(*pts, expected, "contiguous: {frames:?}");
            expected += *samples as i64;
        }
        assert_eq!(expected, 3 * 48_000, "padded to the end asked for");
        assert!(
            peak(&out, 0, 23_000) < 1e-6,
            "silence before the sound starts"
        );
        assert!(peak(&out, 25_000, 60_000) > 0.4, "the stereo tone");
        let changed = 24_000 + 57 * 1024 - 2048 + 12_000;
        assert!(
            peak(&out, changed + 2_000, changed + 17_000) > 0.4,
            "the tone after the rate and layout changed"
        );
        // 0.5 s of leading silence, then sound: the total before the gap
        // is 0.5 + 47/46.875 - overlap; just check the end of sound moved.
        let end_of_sound = 24_000 + 47 * 1024 - 2048 + 10 * 1024 + 12_000 + 20 * 960;
        assert!(
            (n.end() - 3.0).abs() < 1e-9 && end_of_sound < 3 * 48_000,
            "{end_of_sound}"
        );
    }
}
