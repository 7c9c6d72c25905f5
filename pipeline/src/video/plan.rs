//! Which renditions a source gets: the profile's ladder fitted to the source.
//!
//! Pure arithmetic, no FFmpeg calls: rungs taller than the source are dropped
//! (never upscale), widths follow the displayed aspect ratio, frame rates
//! never exceed the source's, and sound is planned only if there is sound.

use ffmpeg_next::Rational;
use lowband_catalog::profile::{AudioCodec, AudioRendition, RungMode, VideoCodec, VideoSettings};

use super::source::SourceInfo;

#[derive(Debug, Clone, PartialEq)]
pub struct AudioPlan {
    pub codec: AudioCodec,
    pub kbps: u32,
    pub sample_rate: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoPlan {
    pub name: String,
    pub tier: String,
    pub width: u32,
    pub height: u32,
    pub fps: Rational,
    pub video_kbps: u32,
    pub codec: VideoCodec,
    pub crf: u8,
    pub preset: String,
    pub mode: RungMode,
    /// When set, `crf` is searched up to `crf_max` for this SSIM (see `tune`).
    pub ssim_target: Option<f64>,
    pub crf_max: u8,
    /// Seconds between the keyframes forced in this rung.
    pub keyframe_interval: f64,
    pub audio: Option<AudioPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Webm,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputPlan {
    Video(VideoPlan),
    Audio {
        name: String,
        tier: String,
        audio: AudioPlan,
    },
}

impl OutputPlan {
    pub fn name(&self) -> &str {
        match self {
            Self::Video(v) => &v.name,
            Self::Audio { name, .. } => name,
        }
    }

    /// The container written: Opus goes in WebM, everything else in MP4.
    pub fn container(&self) -> Container {
        match self {
            Self::Audio { audio, .. } if audio.codec == AudioCodec::Opus => Container::Webm,
            _ => Container::Mp4,
        }
    }

    pub fn tier(&self) -> &str {
        match self {
            Self::Video(v) => &v.tier,
            Self::Audio { tier, .. } => tier,
        }
    }
}

/// The outputs for a source, lowest rung first, audio-only renditions last.
pub fn plan(source: &SourceInfo, settings: &VideoSettings) -> Vec<OutputPlan> {
    let mut plans = Vec::new();
    if let Some(video) = &source.video {
        let (display_width, display_height) = video.display_size();
        let aspect = display_width / f64::from(display_height);
        let mut rungs: Vec<_> = settings
            .rungs
            .iter()
            .filter(|r| r.height <= display_height)
            .collect();
        if rungs.is_empty() {
            // A source smaller than every rung still gets the lowest one, at its own size.
            rungs.extend(settings.rungs.iter().min_by_key(|r| r.height));
        }
        for rung in rungs {
            let height = even(rung.height.min(display_height));
            let width = even((f64::from(height) * aspect).round() as u32);
            let fps = match video.frame_rate {
                Some(src) if src < rung.fps => src,
                _ => rung.fps,
            };
            plans.push(OutputPlan::Video(VideoPlan {
                name: rung.name.clone(),
                tier: rung.tier.clone(),
                width,
                height,
                fps: rational_fps(fps),
                video_kbps: rung.video_kbps(),
                codec: rung.codec,
                crf: rung.crf,
                preset: rung.preset().to_owned(),
                mode: rung.mode,
                ssim_target: rung.ssim_target,
                crf_max: rung.crf_max(),
                keyframe_interval: rung.keyframe_interval.unwrap_or(settings.keyframe_interval),
                audio: source.audio.as_ref().map(|_| AudioPlan {
                    codec: AudioCodec::Aac,
                    kbps: rung.audio_kbps,
                    sample_rate: rung.audio_sample_rate,
                }),
            }));
        }
    }
    if source.audio.is_some() {
        plans.extend(settings.audio.iter().map(audio_only));
    }
    plans
}

fn audio_only(a: &AudioRendition) -> OutputPlan {
    OutputPlan::Audio {
        name: a.name.clone(),
        tier: a.tier.clone(),
        audio: AudioPlan {
            codec: a.codec,
            kbps: a.kbps,
            sample_rate: a.sample_rate,
        },
    }
}

fn even(n: u32) -> u32 {
    (n.max(2) / 2) * 2
}

/// Common broadcast rates stay exact (30000/1001), others round to 1/1000.
fn rational_fps(fps: f64) -> Rational {
    for (num, den) in [(24000, 1001), (30000, 1001), (60000, 1001)] {
        if (fps - f64::from(num) / f64::from(den)).abs() < 0.001 {
            return Rational(num, den);
        }
    }
    if (fps - fps.round()).abs() < 0.001 {
        return Rational(fps.round() as i32, 1);
    }
    Rational((fps * 1000.0).round() as i32, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::source::{AudioStreamInfo, VideoStreamInfo};
    use lowband_catalog::Profile;

    fn source(width: u32, height: u32, fps: Option<f64>, audio: bool) -> SourceInfo {
        SourceInfo {
            duration: Some(60.0),
            video: Some(VideoStreamInfo {
                index: 0,
                width,
                height,
                sample_aspect: Rational(1, 1),
                frame_rate: fps,
                time_base: Rational(1, 12800),
                rotation: 0,
            }),
            audio: audio.then_some(AudioStreamInfo {
                index: 1,
                time_base: Rational(1, 48000),
            }),
        }
    }

    #[test]
    fn never_upscales_and_keeps_aspect() {
        let settings = Profile::builtin_default().video;
        let plans = plan(&source(640, 360, Some(25.0), true), &settings);
        let videos: Vec<_> = plans
            .iter()
            .filter_map(|p| match p {
                OutputPlan::Video(v) => Some((v.width, v.height)),
                _ => None,
            })
            .collect();
        assert_eq!(
            videos,
            [(640, 360), (256, 144), (426, 240), (640, 360)],
            "slides, then the motion rungs"
        );
        assert!(matches!(plans.last(), Some(OutputPlan::Audio { .. })));
    }

    #[test]
    fn frame_rate_capped_by_source() {
        let settings = Profile::builtin_default().video;
        let plans = plan(&source(1280, 720, Some(12.0), false), &settings);
        let OutputPlan::Video(slides) = &plans[0] else {
            panic!("first plan is video")
        };
        assert_eq!(
            (slides.mode, slides.fps, slides.keyframe_interval),
            (RungMode::Slides, Rational(1, 1), 60.0)
        );
        let OutputPlan::Video(low) = &plans[1] else {
            panic!("first plan is video")
        };
        assert_eq!(low.fps, Rational(10, 1));
        let OutputPlan::Video(high) = &plans[4] else {
            panic!("fourth plan is video")
        };
        assert_eq!(high.fps, Rational(12, 1));
        assert!(high.audio.is_none(), "no sound planned for a silent source");
        assert_eq!(plans.len(), 5, "no audio-only rendition without sound");
    }

    #[test]
    fn tiny_source_gets_one_rung_at_its_size() {
        let settings = Profile::builtin_default().video;
        let plans = plan(&source(99, 71, None, true), &settings);
        let OutputPlan::Video(v) = &plans[0] else {
            panic!("first plan is video")
        };
        assert_eq!((v.width, v.height), (98, 70));
        assert_eq!(
            plans.len(),
            3,
            "one picture rung and the two audio-only renditions"
        );
    }

    #[test]
    fn ntsc_rates_stay_exact() {
        assert_eq!(rational_fps(29.97002997), Rational(30000, 1001));
        assert_eq!(rational_fps(12.5), Rational(12500, 1000));
    }
}
