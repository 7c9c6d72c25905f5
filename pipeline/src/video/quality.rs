//! Measuring each rung's SSIM while it is encoded.
//!
//! Once a second a filtered picture (the source at the rung's size, before
//! encoding) is kept aside; every encoded packet is decoded right away, and
//! when the decoded picture with a kept timestamp comes out, the two are
//! compared. No second pass over the source, and memory stays bounded by
//! the encoder's delay.

use std::collections::VecDeque;

use ffmpeg::{codec, decoder, frame, Packet};
use ffmpeg_next as ffmpeg;

use super::ssim::{ssim, Plane};

/// References waiting for their decoded picture, at most (the encoder's delay is far less).
const MAX_PENDING: usize = 256;

pub(super) struct QualityProbe {
    decoder: decoder::Video,
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
    ) -> Result<Self, ffmpeg::Error> {
        let mut ctx = codec::context::Context::from_parameters(parameters)?;
        ctx.set_threading(codec::threading::Config::count(1));
        let decoder = ctx.decoder().video()?;
        Ok(Self {
            decoder,
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
        // Every packet is decoded, compared or not: later pictures predict from it.
        if self.decoder.send_packet(packet).is_ok() {
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
