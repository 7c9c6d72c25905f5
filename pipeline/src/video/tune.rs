//! Content-adaptive rates: for each rung with an SSIM target, the highest
//! CRF (the fewest bits) whose picture still reaches it.
//!
//! A few short windows of the source are decoded and filtered to each
//! rung's size; each rung then encodes them at candidate CRFs (a binary
//! search, on the rayon pool) and measures SSIM against the filtered
//! pictures. A slide lecture needs far fewer bits than a classroom filmed
//! by hand for the same SSIM; this is where that difference is taken.

use std::collections::BTreeMap;
use std::path::Path;

use ffmpeg::{frame, picture, Packet};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::VideoSettings;
use rayon::prelude::*;

use super::output::{feed_graph, is_again, pull, video_encoder, video_graph, VideoInput};
use super::plan::{OutputPlan, VideoPlan};
use super::quality::QualityProbe;
use super::source::SourceInfo;
use super::{open_video_decoder, source, VideoError};

/// Where the sample windows start, as fractions of the duration.
const WINDOW_AT: [f64; 3] = [0.2, 0.5, 0.8];
const WINDOW_SECONDS: f64 = 1.5;

/// What the search settled on for one rung.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuned {
    pub crf: u8,
    /// SSIM of the samples at that CRF.
    pub ssim: f64,
}

/// Sets the CRF of every video plan that has an SSIM target.
pub(super) fn tune(
    path: &Path,
    settings: &VideoSettings,
    info: &SourceInfo,
    input: &VideoInput,
    plans: &mut [OutputPlan],
) -> Result<(), VideoError> {
    let targets: Vec<usize> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, OutputPlan::Video(v) if v.ssim_target.is_some()))
        .map(|(i, _)| i)
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let video_plans: Vec<VideoPlan> = targets
        .iter()
        .filter_map(|&i| match &plans[i] {
            OutputPlan::Video(v) => Some(v.clone()),
            OutputPlan::Audio { .. } => None,
        })
        .collect();
    let samples = sample(path, settings, info, input, &video_plans)?;
    let tuned: Vec<Tuned> = video_plans
        .par_iter()
        .zip(samples.par_iter())
        .map(|(plan, windows)| search(path, plan, windows))
        .collect::<Result<_, _>>()?;
    for (&i, t) in targets.iter().zip(tuned) {
        if let OutputPlan::Video(v) = &mut plans[i] {
            tracing::debug!(rung = %v.name, crf = t.crf, ssim = t.ssim, "tuned");
            v.crf = t.crf;
        }
    }
    Ok(())
}

/// Pictures of each window at each plan's size: `[plan][window][picture]`.
fn sample(
    path: &Path,
    settings: &VideoSettings,
    info: &SourceInfo,
    input: &VideoInput,
    plans: &[VideoPlan],
) -> Result<Vec<Vec<Vec<frame::Video>>>, VideoError> {
    let Some(video) = &info.video else {
        return Ok(vec![Vec::new(); plans.len()]);
    };
    let (mut ictx, _) = source::open(path, settings)?;
    let mut decoder = open_video_decoder(path, &ictx, video.index)?;
    let tb = f64::from(video.time_base);
    let duration = info.duration.unwrap_or(0.0);
    let starts: Vec<f64> = if duration > WINDOW_SECONDS * 4.0 {
        WINDOW_AT.iter().map(|f| duration * f).collect()
    } else {
        vec![0.0]
    };
    let mut out = vec![Vec::new(); plans.len()];
    for start in starts {
        if start > 0.0 {
            let ts = (start * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
            ictx.seek(ts, ..ts)
                .map_err(|e| VideoError::ffmpeg(path, format!("seeking to {start:.1} s"), e))?;
            decoder.flush();
        }
        let mut graphs = plans
            .iter()
            .map(|p| video_graph(path, p, input))
            .collect::<Result<Vec<_>, _>>()?;
        let mut pictures = vec![Vec::new(); plans.len()];
        let end = start + WINDOW_SECONDS;
        let mut frame = frame::Video::empty();
        'packets: for (stream, packet) in ictx.packets() {
            if stream.index() != video.index || decoder.send_packet(&packet).is_err() {
                continue;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                let t = frame.timestamp().map_or(start, |ts| ts as f64 * tb);
                if t < start {
                    continue;
                }
                if t >= end {
                    break 'packets;
                }
                let ts = frame.timestamp();
                frame.set_pts(ts);
                for (graph, kept) in graphs.iter_mut().zip(pictures.iter_mut()) {
                    feed_graph(graph, &frame)?;
                    drain(graph, kept)?;
                }
            }
        }
        for (graph, kept) in graphs.iter_mut().zip(pictures.iter_mut()) {
            if let Some(mut src) = graph.get("in") {
                let _ = src.source().flush();
            }
            drain(graph, kept)?;
        }
        for (all, window) in out.iter_mut().zip(pictures) {
            all.push(window);
        }
    }
    Ok(out)
}

fn drain(
    graph: &mut ffmpeg::filter::Graph,
    kept: &mut Vec<frame::Video>,
) -> Result<(), VideoError> {
    let mut picture = frame::Video::empty();
    while pull(graph, &mut picture, "video")? {
        // Source keyframes must not force keyframes in the samples.
        picture.set_kind(picture::Type::None);
        kept.push(std::mem::replace(&mut picture, frame::Video::empty()));
    }
    Ok(())
}

/// Binary search for the highest CRF in `[plan.crf, plan.crf_max]` whose
/// samples reach the target; the plan's own CRF if none does.
fn search(
    path: &Path,
    plan: &VideoPlan,
    windows: &[Vec<frame::Video>],
) -> Result<Tuned, VideoError> {
    let target = plan.ssim_target.unwrap_or(0.0);
    let mut measured = BTreeMap::new();
    let mut measure = |crf: u8| -> Result<f64, VideoError> {
        if let Some(&s) = measured.get(&crf) {
            return Ok(s);
        }
        let s = ssim_at(path, plan, crf, windows)?;
        measured.insert(crf, s);
        Ok(s)
    };
    let (mut lo, mut hi) = (plan.crf, plan.crf_max.max(plan.crf));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if measure(mid)? >= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Tuned {
        crf: lo,
        ssim: measure(lo)?,
    })
}

/// Mean SSIM of the sample windows encoded at `crf`.
fn ssim_at(
    path: &Path,
    plan: &VideoPlan,
    crf: u8,
    windows: &[Vec<frame::Video>],
) -> Result<f64, VideoError> {
    let (mut total, mut weight) = (0.0, 0.0);
    for pictures in windows.iter().filter(|w| !w.is_empty()) {
        let mut encoder = video_encoder(path, plan, crf, true)?;
        let mut probe = QualityProbe::new((&encoder).into(), plan.width, plan.height, 0.0, None)
            .map_err(|e| {
                VideoError::ffmpeg(
                    path,
                    format!("opening the SSIM decoder for rung {}", plan.name),
                    e,
                )
            })?;
        let mut packet = Packet::empty();
        let mut pump = |encoder: &mut ffmpeg::encoder::Video,
                        probe: &mut QualityProbe|
         -> Result<(), VideoError> {
            loop {
                match encoder.receive_packet(&mut packet) {
                    Ok(()) => probe.packet(&packet),
                    Err(e) if is_again(&e) => return Ok(()),
                    Err(e) => return Err(VideoError::Internal(format!("libx264: {e}"))),
                }
            }
        };
        for picture in pictures {
            probe.reference(picture, 0.0);
            encoder
                .send_frame(picture)
                .map_err(|e| VideoError::Internal(format!("libx264: {e}")))?;
            pump(&mut encoder, &mut probe)?;
        }
        encoder
            .send_eof()
            .map_err(|e| VideoError::Internal(format!("libx264: {e}")))?;
        pump(&mut encoder, &mut probe)?;
        if let Some(s) = probe.finish() {
            total += s * pictures.len() as f64;
            weight += pictures.len() as f64;
        }
    }
    Ok(if weight > 0.0 { total / weight } else { 1.0 })
}
