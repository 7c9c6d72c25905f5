//! Measuring each rung's SSIM while it is encoded.
//!
//! Every 0.7 s a filtered picture (the source at the rung's size, before
//! encoding) is kept aside; the encoded packets are decoded right away, and
//! when the decoded picture with a kept timestamp comes out, the two are
//! compared. No second pass over the source, and memory stays bounded by
//! the encoder's delay. In a long encode only one keyframe interval in
//! every ~20 s is decoded and measured ([`Spans`]): keyframes are forced at
//! those instants, so each measured span decodes on its own.

use std::collections::VecDeque;

use ffmpeg::{codec, decoder, frame, Packet};
use ffmpeg_next as ffmpeg;

use super::ssim::{ssim, Plane};

/// References waiting for their decoded picture, at most (the encoder's delay is far less).
const MAX_PENDING: usize = 256;

/// Which stretches of an encode are measured: the keyframe interval that
/// starts every `period` seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spans {
    keyframe_interval: f64,
    period: f64,
    /// Seconds per packet timestamp unit.
    time_base: f64,
}

impl Spans {
    /// One keyframe interval in about every `every` seconds.
    pub fn new(keyframe_interval: f64, every: f64, time_base: f64) -> Self {
        let n = (every / keyframe_interval).round().max(1.0);
        Self {
            keyframe_interval,
            period: keyframe_interval * n,
            time_base,
        }
    }

    fn covers(&self, time: f64) -> bool {
        (time + 1e-6).rem_euclid(self.period) < self.keyframe_interval
    }
}

pub(super) struct QualityProbe {
    decoder: decoder::Video,
    /// `None`: every picture and packet is measured (short sample encodes).
    spans: Option<Spans>,
    pending: VecDeque<(i64, Vec<u8>)>,
    width: usize,
    height: usize,
    next_sample: f64,
    /// Seconds between compared pictures (0: every picture).
    interval: f64,
    scores: Vec<f64>,
}

impl QualityProbe {
    /// A probe decoding what the encoder with these parameters produces.
    pub fn new(
        parameters: codec::Parameters,
        width: u32,
        height: u32,
        interval: f64,
        spans: Option<Spans>,
    ) -> Result<Self, ffmpeg::Error> {
        let id = parameters.id();
        let mut ctx = codec::context::Context::from_parameters(parameters)?;
        ctx.set_threading(codec::threading::Config::count(1));
        // FFmpeg's own AV1 decoder needs hardware; dav1d is the software one.
        let decoder = match ffmpeg::decoder::find_by_name("libdav1d") {
            Some(dav1d) if id == codec::Id::AV1 => ctx.decoder().open_as(dav1d)?.video()?,
            _ => ctx.decoder().video()?,
        };
        Ok(Self {
            decoder,
            spans,
            pending: VecDeque::new(),
            width: width as usize,
            height: height as usize,
            next_sample: interval / 2.0,
            interval,
            scores: Vec::new(),
        })
    }

    /// Called with each picture about to be encoded, at `time` seconds.
    pub fn reference(&mut self, picture: &frame::Video, time: f64) {
        let Some(pts) = picture.pts() else { return };
        if self.spans.is_some_and(|s| !s.covers(time)) {
            return;
        }
        if (self.interval > 0.0 && time + 1e-6 < self.next_sample)
            || self.pending.len() >= MAX_PENDING
        {
            return;
        }
        while self.interval > 0.0 && self.next_sample <= time + 1e-6 {
            self.next_sample += self.interval;
        }
        let (stride, data) = (picture.stride(0), picture.data(0));
        let mut luma = Vec::with_capacity(self.width * self.height);
        for y in 0..self.height {
            match data.get(y * stride..y * stride + self.width) {
                Some(row) => luma.extend_from_slice(row),
                None => return,
            }
        }
        self.pending.push_back((pts, luma));
    }

    /// Called with each encoded packet, before it is muxed.
    pub fn packet(&mut self, packet: &Packet) {
        // Within a measured span every packet is decoded, compared or not:
        // later pictures predict from it.
        let outside = self.spans.is_some_and(|s| {
            packet
                .pts()
                .is_some_and(|p| !s.covers(p as f64 * s.time_base))
        });
        if !outside && self.decoder.send_packet(packet).is_ok() {
            self.drain();
        }
    }

    pub fn finish(&mut self) -> Option<f64> {
        if self.decoder.send_eof().is_ok() {
            self.drain();
        }
        (!self.scores.is_empty())
            .then(|| self.scores.iter().sum::<f64>() / self.scores.len() as f64)
    }

    fn drain(&mut self) {
        let mut decoded = frame::Video::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let Some(pts) = decoded.pts() else { continue };
            while self.pending.front().is_some_and(|(p, _)| *p < pts) {
                self.pending.pop_front();
            }
            if let Some((_, reference)) = self.pending.front().filter(|(p, _)| *p == pts) {
                let a = Plane {
                    data: reference,
                    width: self.width,
                    height: self.height,
                    stride: self.width,
                };
                let b = Plane {
                    data: decoded.data(0),
                    width: self.width,
                    height: self.height,
                    stride: decoded.stride(0),
                };
                if let Some(score) = ssim(a, b) {
                    self.scores.push(score);
                }
                self.pending.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Spans;

    #[test]
    fn spans_cover_one_keyframe_interval_per_period() {
        let s = Spans::new(4.0, 20.0, 0.1);
        let covered: Vec<bool> = [0.0, 3.9, 4.0, 19.9, 20.0, 23.99, 24.0, 40.5]
            .iter()
            .map(|&t| s.covers(t))
            .collect();
        assert_eq!(covered, [true, true, false, false, true, true, false, true]);
        // A keyframe interval longer than the period is measured whole, every time.
        let slides = Spans::new(60.0, 20.0, 1.0);
        assert!(slides.covers(0.0) && slides.covers(59.0) && slides.covers(61.0));
    }
}
