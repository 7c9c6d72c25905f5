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

use super::cascade::Cascade;
use super::decode::open_video_decoder;
use super::encoder::{encoder_name, video_encoder};
use super::error::VideoError;
use super::filters::{video_graph, VideoInput};
use super::plan::{OutputPlan, VideoPlan};
use super::quality::QualityProbe;
use super::source::{self, SourceInfo};
use crate::media::{self, feed_graph, pull, MediaError};

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
    let cascade = Cascade::new(path, input, plans)?;
    let samples = sample(path, settings, info, input, cascade, &video_plans)?;
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

/// Pictures of each window at each plan's size: `[plan][window][picture]`,
/// filtered as the encode will filter them (through the same cascade).
///
/// A window starts at the keyframe a seek lands on, not at the exact
/// fraction of the duration: decoding from that keyframe up to the fraction
/// (up to a whole GOP, ten seconds in many files) would be work thrown away.
fn sample(
    path: &Path,
    settings: &VideoSettings,
    info: &SourceInfo,
    input: &VideoInput,
    mut cascade: Option<Cascade>,
    plans: &[VideoPlan],
) -> Result<Vec<Vec<Vec<frame::Video>>>, VideoError> {
    let graph_input = cascade.as_ref().map_or(input, Cascade::output).clone();
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
    let mut taken: Vec<f64> = Vec::new();
    for start in starts {
        if start > 0.0 {
            let ts = (start * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
            ictx.seek(ts, ..ts)
                .map_err(VideoError::ffmpeg(path, format!("seeking to {start:.1} s")))?;
            decoder.flush();
        }
        let mut graphs = plans
            .iter()
            .map(|p| video_graph(path, p, &graph_input, false))
            .collect::<Result<Vec<_>, _>>()?;
        let mut pictures = vec![Vec::new(); plans.len()];
        let mut window: Option<(f64, f64)> = None;
        let mut frame = frame::Video::empty();
        'packets: for (stream, packet) in ictx.packets() {
            if stream.index() != video.index || decoder.send_packet(&packet).is_err() {
                continue;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                let t = frame.timestamp().map_or(start, |ts| ts as f64 * tb);
                let (first, end) = *window.get_or_insert((t, t + WINDOW_SECONDS));
                if t >= end || taken.iter().any(|&s| (s - first).abs() < WINDOW_SECONDS) {
                    // Past the window, or a seek that landed on a window already taken.
                    break 'packets;
                }
                let ts = frame.timestamp();
                frame.set_pts(ts);
                let scaled;
                let picture = match cascade.as_mut() {
                    Some(c) => {
                        scaled = c.scale(&frame).map_err(|e| VideoError::media(path, e))?;
                        &scaled
                    }
                    None => &frame,
                };
                for (graph, kept) in graphs.iter_mut().zip(pictures.iter_mut()) {
                    feed_graph(graph, picture)
                        .and_then(|()| drain(graph, kept))
                        .map_err(|e| VideoError::media(path, e))?;
                }
            }
        }
        taken.extend(window.map(|(first, _)| first));
        for (graph, kept) in graphs.iter_mut().zip(pictures.iter_mut()) {
            if let Some(mut src) = graph.get("in") {
                let _ = src.source().flush();
            }
            drain(graph, kept).map_err(|e| VideoError::media(path, e))?;
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
) -> Result<(), MediaError> {
    let mut picture = frame::Video::empty();
    while pull(graph, &mut picture, "video")? {
        // Source keyframes must not force keyframes in the samples.
        picture.set_kind(picture::Type::None);
        kept.push(std::mem::replace(&mut picture, frame::Video::empty()));
    }
    Ok(())
}

fn search(
    path: &Path,
    plan: &VideoPlan,
    windows: &[Vec<frame::Video>],
) -> Result<Tuned, VideoError> {
    let target = plan.ssim_target.unwrap_or(0.0);
    highest_passing(plan.crf, plan.crf_max, target, |crf| {
        ssim_at(path, plan, crf, windows)
    })
}

/// The highest CRF in `[lo, hi]` whose SSIM (from `measure`, assumed to fall
/// as CRF rises) reaches `target`; `lo` if none does. Each CRF is measured
/// at most once.
///
/// `hi` is tried first: on the content lowband is for (slides, a speaker, a
/// whiteboard) it usually passes, and one probe settles the rung. Otherwise
/// a binary search runs below it.
fn highest_passing<E>(
    lo: u8,
    hi: u8,
    target: f64,
    mut measure: impl FnMut(u8) -> Result<f64, E>,
) -> Result<Tuned, E> {
    let mut measured = BTreeMap::new();
    let mut ssim = |crf: u8| -> Result<f64, E> {
        if let Some(&s) = measured.get(&crf) {
            return Ok(s);
        }
        let s = measure(crf)?;
        measured.insert(crf, s);
        Ok(s)
    };
    let (mut lo, mut hi) = (lo, hi.max(lo));
    if lo < hi {
        if ssim(hi)? >= target {
            lo = hi;
        } else {
            hi -= 1;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ssim(mid)? >= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Tuned {
        crf: lo,
        ssim: ssim(lo)?,
    })
}

/// Mean SSIM of the sample windows encoded at `crf`.
fn ssim_at(
    path: &Path,
    plan: &VideoPlan,
    crf: u8,
    windows: &[Vec<frame::Video>],
) -> Result<f64, VideoError> {
    // Windows are independent encodes: on the pool too, so the tuning keeps
    // both cores busy even when one rung's search is much longer than the rest.
    let measured = windows
        .par_iter()
        .filter(|w| !w.is_empty())
        .map(|pictures| {
            window_ssim(path, plan, crf, pictures).map(|s| s.map(|s| (s, pictures.len())))
        })
        .collect::<Result<Vec<_>, VideoError>>()?;
    let (total, weight) = measured
        .into_iter()
        .flatten()
        .fold((0.0, 0.0), |(t, w), (s, n)| {
            (t + s * n as f64, w + n as f64)
        });
    Ok(if weight > 0.0 { total / weight } else { 1.0 })
}

/// SSIM of one window encoded at `crf`; None if nothing could be compared.
fn window_ssim(
    path: &Path,
    plan: &VideoPlan,
    crf: u8,
    pictures: &[frame::Video],
) -> Result<Option<f64>, VideoError> {
    let (mut encoder, _) = video_encoder(path, plan, crf, true, false)?;
    let mut probe = QualityProbe::new((&encoder).into(), plan.width, plan.height, 0.0, None)
        .map_err(VideoError::ffmpeg(
            path,
            format!("opening the SSIM decoder for rung {}", plan.name),
        ))?;
    let fail = |e| {
        let op = format!("tuning rung {}: {}", plan.name, encoder_name(plan.codec));
        VideoError::media(path, MediaError::ffmpeg(op, e))
    };
    let mut packet = Packet::empty();
    let mut pump = |encoder: &mut ffmpeg::encoder::Video,
                    probe: &mut QualityProbe|
     -> Result<(), ffmpeg::Error> {
        while media::receive_packet(encoder, &mut packet)? {
            probe.packet(&packet);
        }
        Ok(())
    };
    for picture in pictures {
        probe.reference(picture, 0.0);
        encoder.send_frame(picture).map_err(fail)?;
        pump(&mut encoder, &mut probe).map_err(fail)?;
    }
    encoder.send_eof().map_err(fail)?;
    pump(&mut encoder, &mut probe).map_err(fail)?;
    Ok(probe.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A falling SSIM curve: 0.999 at CRF 20, 0.004 less per step.
    fn curve(crf: u8) -> f64 {
        0.999 - 0.004 * f64::from(crf - 20)
    }

    fn run(lo: u8, hi: u8, target: f64) -> (Tuned, Vec<u8>) {
        let mut probes = Vec::new();
        let tuned = highest_passing(lo, hi, target, |crf| {
            probes.push(crf);
            Ok::<_, ()>(curve(crf))
        })
        .unwrap();
        (tuned, probes)
    }

    #[test]
    fn easy_content_is_settled_by_one_probe_at_the_top() {
        let (tuned, probes) = run(25, 32, 0.9);
        assert_eq!(tuned.crf, 32);
        assert_eq!(probes, [32]);
        assert_eq!(tuned.ssim, curve(32));
    }

    #[test]
    fn finds_the_highest_passing_crf_below_the_top() {
        for target in [0.99, 0.985, 0.98, 0.975, 0.971] {
            let (tuned, probes) = run(20, 34, target);
            let best = (20..=34).rev().find(|&c| curve(c) >= target).unwrap();
            assert_eq!(tuned.crf, best, "target {target}");
            let mut unique = probes.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), probes.len(), "a CRF was measured twice");
            assert!(
                probes.len() <= 5,
                "{} probes for target {target}",
                probes.len()
            );
        }
    }

    #[test]
    fn falls_back_to_the_lowest_crf_when_nothing_passes() {
        let (tuned, _) = run(25, 32, 0.9999);
        assert_eq!(tuned.crf, 25);
        assert_eq!(tuned.ssim, curve(25));
    }

    #[test]
    fn a_single_crf_range_measures_once() {
        let (tuned, probes) = run(30, 30, 0.5);
        assert_eq!((tuned.crf, probes.len()), (30, 1));
        // crf_max below crf is treated as crf alone.
        let (tuned, probes) = run(30, 28, 0.5);
        assert_eq!((tuned.crf, probes.len()), (30, 1));
    }

    #[test]
    fn measurement_errors_stop_the_search() {
        let result = highest_passing(20, 30, 0.9, |_| Err::<f64, _>("probe failed"));
        assert_eq!(result, Err("probe failed"));
    }
}
