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
        /// Which of the source's sound tracks: 0 is the one the rungs
        /// carry, the others are further languages (see `Decoded::Audio`).
        slot: usize,
        /// The language of a further track, as the manifest names it.
        language: Option<String>,
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
///
/// A rung's `height` is the picture's short side, as players and people
/// name sizes: a portrait phone video's "144p" is 144 pixels wide.
pub fn plan(source: &SourceInfo, settings: &VideoSettings) -> Vec<OutputPlan> {
    let mut plans = Vec::new();
    if let Some(video) = &source.video {
        let (display_width, display_height) = video.display_size();
        let aspect = display_width / f64::from(display_height);
        let portrait = aspect < 1.0;
        let short_side = if portrait {
            display_width.round() as u32
        } else {
            display_height
        };
        let mut rungs: Vec<_> = settings
            .rungs
            .iter()
            .filter(|r| r.height <= short_side)
            .collect();
        if rungs.is_empty() {
            // A source smaller than every rung still gets the lowest one, at its own size.
            rungs.extend(settings.rungs.iter().min_by_key(|r| r.height));
        }
        for rung in rungs {
            let short = even(rung.height.min(short_side));
            let long = even((f64::from(short) * aspect.max(1.0 / aspect)).round() as u32);
            let (width, height) = if portrait {
                (short, long)
            } else {
                (long, short)
            };
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
    plans.extend(further_languages(source, settings));
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
        slot: 0,
        language: None,
    }
}

/// One AAC rendition for each further sound track (`audio-eng`, or
/// `audio-2` for a track without a language tag), made like the profile's
/// AAC audio rendition: AAC, since HLS offers alternative audio as
/// fragmented MP4 that every player decodes. Two tracks with one language
/// are told apart by their track number.
fn further_languages<'a>(
    source: &'a SourceInfo,
    settings: &'a VideoSettings,
) -> impl Iterator<Item = OutputPlan> + 'a {
    let like = settings
        .audio
        .iter()
        .find(|a| a.codec == AudioCodec::Aac)
        .map(|a| (a.tier.clone(), a.kbps, a.sample_rate));
    let like = like.or_else(|| {
        settings
            .rungs
            .iter()
            .min_by_key(|r| r.height)
            .map(|r| (r.tier.clone(), r.audio_kbps, r.audio_sample_rate))
    });
    let mut names = std::collections::BTreeSet::new();
    source
        .extra_audio
        .iter()
        .enumerate()
        .filter_map(move |(i, track)| {
            let (tier, kbps, sample_rate) = like.clone()?;
            let slot = i + 1;
            let mut name = match &track.language {
                Some(lang) => format!("audio-{lang}"),
                None => format!("audio-{}", slot + 1),
            };
            if !names.insert(name.clone()) {
                name = format!("{name}-{}", slot + 1);
                names.insert(name.clone());
            }
            Some(OutputPlan::Audio {
                name,
                tier,
                audio: AudioPlan {
                    codec: AudioCodec::Aac,
                    kbps,
                    sample_rate,
                },
                slot,
                language: track.language.clone(),
            })
        })
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
                hdr: None,
                bt709: false,
            }),
            audio: audio.then_some(AudioStreamInfo {
                index: 1,
                time_base: Rational(1, 48000),
                language: None,
            }),
            extra_audio: Vec::new(),
            subtitles: Vec::new(),
            origin: 0.0,
            discontinuous: false,
        }
    }

    #[test]
    fn portrait_rungs_are_named_by_their_short_side() {
        let settings = Profile::builtin_default().video;
        let mut phone = source(1920, 1080, Some(30.0), true);
        if let Some(v) = phone.video.as_mut() {
            v.rotation = 90;
        }
        let plans = plan(&phone, &settings);
        let sizes: Vec<_> = plans
            .iter()
            .filter_map(|p| match p {
                OutputPlan::Video(v) => Some((v.name.as_str(), v.width, v.height)),
                OutputPlan::Audio { .. } => None,
            })
            .collect();
        assert_eq!(
            sizes,
            [
                ("slides", 360, 640),
                ("144p", 144, 256),
                ("240p", 240, 426),
                ("360p", 360, 640),
                ("480p", 480, 852)
            ]
        );
    }

    #[test]
    fn each_further_language_gets_an_aac_rendition() {
        let settings = Profile::builtin_default().video;
        let mut s = source(640, 360, Some(25.0), true);
        s.extra_audio = ["eng", "fra", "eng"]
            .iter()
            .enumerate()
            .map(|(i, l)| AudioStreamInfo {
                index: i + 2,
                time_base: Rational(1, 48000),
                language: Some((*l).to_owned()),
            })
            .chain(std::iter::once(AudioStreamInfo {
                index: 5,
                time_base: Rational(1, 48000),
                language: None,
            }))
            .collect();
        let extra: Vec<_> = plan(&s, &settings)
            .into_iter()
            .filter_map(|p| match p {
                OutputPlan::Audio {
                    name,
                    slot,
                    audio,
                    language,
                    ..
                } if slot > 0 => Some((name, slot, audio.codec, language)),
                _ => None,
            })
            .collect();
        let eng = Some("eng".to_owned());
        assert_eq!(
            extra,
            [
                ("audio-eng".to_owned(), 1, AudioCodec::Aac, eng.clone()),
                (
                    "audio-fra".to_owned(),
                    2,
                    AudioCodec::Aac,
                    Some("fra".into())
                ),
                ("audio-eng-4".to_owned(), 3, AudioCodec::Aac, eng),
                ("audio-5".to_owned(), 4, AudioCodec::Aac, None),
            ]
        );
    }

    #[test]
    fn never_upscales_and_keeps_aspect() {
        let settings = Profile::builtin_default().video;
        let plans = plan(&source(640, 360, Some(25.0), true), &settings);
        let videos: Vec<_> = plans
            .iter()
            .filter_map(|p| match p {
                OutputPlan::Video(v) => Some((v.width, v.height)),
                OutputPlan::Audio { .. } => None,
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
