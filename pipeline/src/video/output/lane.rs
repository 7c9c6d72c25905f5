//! A lane: one filter graph feeding one encoder feeding one stream of the
//! output's muxer. An output has a picture lane, a sound lane, or both;
//! both are driven the same way, frame in, packets out.

#![allow(
    unsafe_code,
    reason = "a frame's pkt_duration, a field ffmpeg-next does not expose"
)]

use ffmpeg::{encoder, filter, format, frame, picture, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::media::{self, feed_graph, pull, MediaError};
use crate::video::quality::QualityProbe;

/// A filter graph feeding an encoder feeding one muxer stream.
pub(super) struct Lane<E> {
    pub graph: filter::Graph,
    pub encoder: E,
    /// The FFmpeg encoder's name, for errors.
    pub encoder_name: &'static str,
    /// The muxer's name, for errors.
    pub muxer: &'static str,
    pub encoder_tb: Rational,
    pub stream: usize,
    /// The muxer's time base for the stream, known once the header is written.
    pub stream_tb: Rational,
    /// Next instant (s) at which a keyframe is forced; video only.
    pub next_keyframe: f64,
    pub keyframe_interval: f64,
    /// Seconds of output so far, for errors and the rendition's duration.
    pub last_time: f64,
    /// Measures SSIM as the lane encodes; video only.
    pub probe: Option<QualityProbe>,
    /// Samples (in the encoder's time base) added to every packet's
    /// timestamp: the encoder's priming, cut from the input instead of
    /// left to an edit list (see `audio_lane`). 0 for video.
    pub shift: i64,
    /// Samples handed to the encoder so far; audio only.
    pub samples: i64,
    /// The last picture fed in and the gap before it, in the input's time
    /// base: the graph is closed where that picture stops showing, so the
    /// frame-rate filter shows it for its whole time. Video only.
    pub last_input: Option<(i64, i64)>,
}

impl<E> Lane<E> {
    /// A lane with nothing fed yet, for the `stream`-th stream of the muxer.
    pub fn new(
        graph: filter::Graph,
        encoder: E,
        encoder_name: &'static str,
        muxer: &'static str,
        (stream, time_base): (usize, Rational),
    ) -> Self {
        Self {
            graph,
            encoder,
            encoder_name,
            muxer,
            encoder_tb: time_base,
            stream,
            stream_tb: time_base,
            next_keyframe: f64::INFINITY,
            keyframe_interval: 0.0,
            last_time: 0.0,
            probe: None,
            shift: 0,
            samples: 0,
            last_input: None,
        }
    }
}

/// What differs between a picture lane and a sound lane.
pub(super) trait LaneEncoder: Sized {
    /// `video` or `audio`, for errors.
    const KIND: &'static str;
    fn base(&mut self) -> &mut encoder::Encoder;
    /// Encodes everything the lane's graph has ready.
    fn drain(lane: &mut Lane<Self>, octx: &mut format::context::Output) -> Result<(), MediaError>;
}

impl LaneEncoder for encoder::Video {
    const KIND: &'static str = "video";

    fn base(&mut self) -> &mut encoder::Encoder {
        self
    }

    fn drain(lane: &mut Lane<Self>, octx: &mut format::context::Output) -> Result<(), MediaError> {
        lane.drain_video(octx)
    }
}

impl LaneEncoder for encoder::Audio {
    const KIND: &'static str = "audio";

    fn base(&mut self) -> &mut encoder::Encoder {
        self
    }

    fn drain(lane: &mut Lane<Self>, octx: &mut format::context::Output) -> Result<(), MediaError> {
        lane.drain_audio(octx)
    }
}

impl<E: LaneEncoder> Lane<E> {
    /// Feeds one frame through the graph and encodes what comes out.
    pub fn push(
        &mut self,
        frame: &frame::Frame,
        octx: &mut format::context::Output,
    ) -> Result<(), MediaError> {
        feed_graph(&mut self.graph, frame)?;
        E::drain(self, octx)
    }

    /// Notes where a picture fed in stops showing: after its own duration
    /// when the decoder knows it, else as long after it as it came after
    /// the one before (one tick for the first).
    pub fn note_picture(&mut self, frame: &frame::Video) {
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

    /// Flushes the graph and the encoder: what they still hold is written.
    pub fn finish(&mut self, octx: &mut format::context::Output) -> Result<(), MediaError> {
        let kind = E::KIND;
        self.flush_graph()
            .map_err(|e| MediaError::ffmpeg(format!("flushing the {kind} filters"), e))?;
        E::drain(self, octx)?;
        self.encoder
            .base()
            .send_eof()
            .map_err(|e| MediaError::ffmpeg(format!("flushing the {kind} encoder"), e))?;
        self.write_packets(octx)
    }

    fn flush_graph(&mut self) -> Result<(), ffmpeg::Error> {
        match (self.graph.get("in"), self.last_input) {
            (Some(mut src), Some((pts, step))) => src.source().close(pts + step),
            (Some(mut src), None) => src.source().flush(),
            (None, _) => Ok(()),
        }
    }

    /// Encodes every picture the graph has ready, forcing keyframes at the
    /// shared instants.
    fn drain_video(&mut self, octx: &mut format::context::Output) -> Result<(), MediaError> {
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
                .map_err(|e| MediaError::ffmpeg(self.encoder_name, e))?;
            self.write_packets(octx)?;
        }
    }

    /// Encodes all the sound the graph has ready, stamped by sample count.
    fn drain_audio(&mut self, octx: &mut format::context::Output) -> Result<(), MediaError> {
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
                .map_err(|e| MediaError::ffmpeg(format!("{} encoder", self.encoder_name), e))?;
            self.write_packets(octx)?;
        }
    }

    fn write_packets(&mut self, octx: &mut format::context::Output) -> Result<(), MediaError> {
        let mut packet = Packet::empty();
        while media::receive_packet(self.encoder.base(), &mut packet)
            .map_err(|e| MediaError::ffmpeg(format!("{} encoder", self.encoder_name), e))?
        {
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
                .map_err(|e| MediaError::ffmpeg(format!("{} muxer", self.muxer), e))?;
        }
        Ok(())
    }
}
