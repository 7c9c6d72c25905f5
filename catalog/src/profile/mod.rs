//! Ladder profiles: which tiers exist and what every asset becomes for each.
//!
//! A profile is a TOML file (`profiles/<name>.toml`). Loading is strict:
//! unknown keys, dangling tier references and impossible values are errors
//! naming the file, the key and the reason, because a silently ignored typo
//! in a ladder costs teachers real money on every lesson they open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod tier;
mod validate;

pub use tier::{ect_for_http_rtt, ect_for_transport_rtt, Tier};

/// The built-in default profile, so the binaries work from any directory.
pub const DEFAULT_PROFILE_TOML: &str = include_str!("../../../profiles/default.toml");
pub const DEFAULT_PROFILE_NAME: &str = "default";

/// A profile that could not be loaded, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ProfileError {
    pub file: String,
    /// Dotted path of the offending key (`video.rungs[1].max_kbps`), or `-` for the whole file.
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// H.264 Main through libx264: plays everywhere.
    H264,
    /// AV1 through SVT-AV1: about a third fewer bytes at the same SSIM, for
    /// players that decode it (Android 10+ with dav1d, recent browsers);
    /// roughly ten times the encoding CPU of x264 at the default preset.
    Av1,
}

impl VideoCodec {
    /// The highest rate factor the encoder accepts.
    pub fn max_crf(self) -> u8 {
        match self {
            Self::H264 => 51,
            Self::Av1 => 63,
        }
    }

    /// The preset used when a rung names none.
    pub fn default_preset(self) -> &'static str {
        match self {
            Self::H264 => "medium",
            Self::Av1 => "8",
        }
    }

    /// The CRF search ceiling used when a rung names none.
    pub fn default_crf_max(self) -> u8 {
        match self {
            Self::H264 => 36,
            Self::Av1 => 52,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    Aac,
    Opus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// AV1 still picture (libaom through FFmpeg) in an AVIF container; alpha kept.
    Avif,
    Webp,
    Jpeg,
}

impl ImageFormat {
    pub fn ext(self) -> &'static str {
        match self {
            Self::Avif => "avif",
            Self::Webp => "webp",
            Self::Jpeg => "jpg",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Avif => "image/avif",
            Self::Webp => "image/webp",
            Self::Jpeg => "image/jpeg",
        }
    }

    /// The name used in variant names (`w480-avif`) and profiles.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avif => "avif",
            Self::Webp => "webp",
            Self::Jpeg => "jpeg",
        }
    }
}

/// One video rendition of the ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoRung {
    /// Stable name, used in the manifest and the `Lowband-Variant` header.
    pub name: String,
    pub tier: String,
    /// Output height in pixels; the width follows the source's aspect ratio.
    pub height: u32,
    /// Highest frame rate; lower-rate sources keep their own.
    pub fps: f64,
    #[serde(default = "default_video_codec")]
    pub codec: VideoCodec,
    /// Hard cap on video and audio together, in kbit/s.
    pub max_kbps: u32,
    pub audio_kbps: u32,
    pub audio_sample_rate: u32,
    /// Constant rate factor (x264: 0-51, SVT-AV1: 1-63): quality aimed
    /// for, below the cap.
    pub crf: u8,
    /// Encoder speed: an x264 preset name (default `medium`) or an SVT-AV1
    /// preset number 0-13 (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `motion` (every frame up to `fps`) or `slides` (a picture only when it
    /// changes, at most `fps` per second: lectures over slides).
    #[serde(default)]
    pub mode: RungMode,
    /// Seconds between keyframes, if not `video.keyframe_interval`. A rung
    /// with its own interval is not aligned with the others: give it to a
    /// rung played on its own (a `slides` rung, which HLS never switches to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_interval: Option<f64>,
    /// SSIM the rung must reach: the pipeline then encodes samples of each
    /// source to find the highest CRF in `crf..=crf_max` that reaches it
    /// (content-adaptive rate). Without it, `crf` is used as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim_target: Option<f64>,
    /// Highest CRF the search may choose (default 36 for H.264, 52 for AV1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crf_max: Option<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RungMode {
    #[default]
    Motion,
    Slides,
}

fn default_video_codec() -> VideoCodec {
    VideoCodec::H264
}

impl VideoRung {
    /// The encoder preset, the codec's default if the rung names none.
    pub fn preset(&self) -> &str {
        self.preset
            .as_deref()
            .unwrap_or(self.codec.default_preset())
    }

    /// The CRF search ceiling, the codec's default if the rung names none.
    pub fn crf_max(&self) -> u8 {
        self.crf_max.unwrap_or(self.codec.default_crf_max())
    }

    /// The part of the cap left for the picture: what audio leaves, less a
    /// tenth for MP4 framing and encoder overshoot, so the file as a whole
    /// stays under `max_kbps`.
    pub fn video_kbps(&self) -> u32 {
        (self.max_kbps - self.audio_kbps) * 9 / 10
    }
}

/// An audio-only rendition of a video or audio source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioRendition {
    pub name: String,
    pub tier: String,
    pub codec: AudioCodec,
    pub kbps: u32,
    pub sample_rate: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    /// Seconds between keyframes, identical in every rung.
    pub keyframe_interval: f64,
    pub max_duration: f64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_streams: u32,
    pub rungs: Vec<VideoRung>,
    pub audio: Vec<AudioRendition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRung {
    pub tier: String,
    /// Output width in pixels; never larger than the source.
    pub width: u32,
    /// Encoder quality, 1-100.
    pub quality: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    pub formats: Vec<ImageFormat>,
    /// Decoding is refused above this many pixels (decompression bombs); an
    /// animation's frames count together.
    pub max_pixels: u64,
    pub max_bytes: u64,
    /// An animated GIF with more frames is refused before any frame is decoded.
    #[serde(default = "default_max_frames")]
    pub max_frames: u64,
    pub rungs: Vec<ImageRung>,
}

fn default_max_frames() -> u64 {
    500
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSettings {
    pub brotli_quality: u32,
    /// zstd level for the `zstd` copy (1-22; 19 is the highest before
    /// zstd's "ultra" levels, which need large decoder windows).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    pub gzip_level: u32,
    pub max_bytes: u64,
    /// First-load weight allowed per tier, in KB.
    pub budget_kb: BTreeMap<String, u32>,
    /// Tiers that get the lite page: every image replaced by its placeholder
    /// and loaded only on tap. None when absent.
    #[serde(default)]
    pub lite_tiers: Vec<String>,
}

fn default_zstd_level() -> i32 {
    19
}

/// A whole ladder: tiers, video, image and page settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub tiers: Vec<Tier>,
    pub video: VideoSettings,
    pub image: ImageSettings,
    pub page: PageSettings,
}

impl Profile {
    /// Parses and validates a profile; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ProfileError> {
        let profile: Profile = crate::strict_toml::from_str(text).map_err(|e| ProfileError {
            file: file.to_owned(),
            key: e.key,
            reason: e.reason,
        })?;
        validate::profile(&profile).map_err(|validate::Invalid { key, reason }| ProfileError {
            file: file.to_owned(),
            key,
            reason,
        })?;
        Ok(profile)
    }

    pub fn from_file(path: &Path) -> Result<Self, ProfileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            file: file.clone(),
            key: "-".into(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&file, &text)
    }

    /// The built-in default ladder.
    pub fn builtin_default() -> Self {
        Self::from_toml("profiles/default.toml (built in)", DEFAULT_PROFILE_TOML)
            .unwrap_or_else(|e| unreachable!("the built-in profile is validated by tests: {e}"))
    }

    /// Resolves `--profile`: a path to a TOML file, or a name looked up in
    /// `dirs` (`<dir>/<name>.toml`), falling back to the built-in default.
    pub fn resolve(name_or_file: &str, dirs: &[PathBuf]) -> Result<Self, ProfileError> {
        let as_path = Path::new(name_or_file);
        let toml = as_path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if toml || as_path.components().count() > 1 {
            return Self::from_file(as_path);
        }
        for dir in dirs {
            let candidate = dir.join(format!("{name_or_file}.toml"));
            if candidate.is_file() {
                return Self::from_file(&candidate);
            }
        }
        if name_or_file == DEFAULT_PROFILE_NAME {
            return Ok(Self::builtin_default());
        }
        Err(ProfileError {
            file: format!("{name_or_file}.toml"),
            key: "-".into(),
            reason: format!(
                "no profile named {name_or_file:?} in {}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Position of a tier, slowest first.
    pub fn tier_rank(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&str) -> String) -> Result<Profile, ProfileError> {
        Profile::from_toml("test.toml", &edit(DEFAULT_PROFILE_TOML))
    }

    #[test]
    fn builtin_default_is_valid_and_ordered() {
        let p = Profile::builtin_default();
        let names: Vec<_> = p.tiers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["slow-2g", "2g", "3g", "4g"]);
        let slides = &p.video.rungs[0];
        assert_eq!(
            (slides.mode, slides.tier.as_str(), slides.max_kbps),
            (RungMode::Slides, "slow-2g", 32)
        );
        let lowest = &p.video.rungs[1];
        assert_eq!((lowest.height, lowest.tier.as_str()), (144, "2g"));
        assert!(lowest.max_kbps <= 64 && lowest.fps <= 10.0);
        assert!(p.video.rungs.iter().any(|r| r.height == 480));
        assert!(!p.video.audio.is_empty());
        assert_eq!(p.tier_rank("3g"), Some(2));
    }

    #[test]
    fn av1_rungs_take_svt_presets_and_crf_up_to_63() {
        let av1 = |extra: &str| {
            let rung = format!("codec = \"av1\"\n{extra}ssim_target = 0.97");
            with(|t| t.replacen("crf = 30\nssim_target = 0.97\ncrf_max = 34", &rung, 1))
        };
        let p = av1("crf = 45\ncrf_max = 55\n").unwrap();
        let rung = &p.video.rungs[1];
        assert_eq!(
            (rung.codec, rung.preset(), rung.crf, rung.crf_max()),
            (VideoCodec::Av1, "8", 45, 55)
        );
        assert_eq!(av1("crf = 45\n").unwrap().video.rungs[1].crf_max(), 52);
        let e = av1("crf = 45\npreset = \"medium\"\n").unwrap_err();
        assert_eq!(e.key, "video.rungs[1].preset");
        assert!(e.reason.contains("SVT-AV1 preset"), "{e}");
        let e = av1("crf = 64\n").unwrap_err();
        assert_eq!(e.key, "video.rungs[1].crf");
        // The same CRF is out of range for x264.
        let e =
            with(|t| t.replacen("crf = 30\nssim_target", "crf = 60\nssim_target", 1)).unwrap_err();
        assert_eq!(e.key, "video.rungs[1].crf");
        assert!(e.reason.contains("0-51"), "{e}");
    }

    #[test]
    fn every_shipped_profile_is_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let profile = Profile::from_toml(&path.display().to_string(), &text)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    Some(profile.name.as_str()),
                    path.file_stem().and_then(|s| s.to_str()),
                    "a profile's name is its file name"
                );
                names.push(profile.name);
            }
        }
        names.sort();
        assert!(names.contains(&"default".to_owned()) && names.contains(&"av1".to_owned()));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = with(|t| t.replacen("crf = 30", "crf = 30\ncolour = 3", 1)).unwrap_err();
        assert_eq!(e.file, "test.toml");
        assert_eq!(e.key, "video.rungs[0].colour");
        assert!(e.reason.contains("unknown field"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = with(|t| t.replacen("height = 144", "height = \"tall\"", 1)).unwrap_err();
        assert_eq!(e.key, "video.rungs[1].height");
    }

    #[test]
    fn dangling_tier_is_named() {
        let e = with(|t| t.replacen("tier = \"2g\"", "tier = \"5g\"", 1)).unwrap_err();
        assert_eq!(e.key, "video.rungs[1].tier");
        assert!(e.reason.contains("unknown tier \"5g\""), "{e}");
    }

    #[test]
    fn impossible_values_are_named() {
        let cases: [(&str, &str, &str); 9] = [
            ("max_kbps = 64", "max_kbps = 20", "video.rungs[1].max_kbps"),
            ("height = 144", "height = 145", "video.rungs[1].height"),
            ("fps = 1.0", "fps = 2.0", "video.rungs[0].fps"),
            (
                "ssim_target = 0.97",
                "ssim_target = 1.5",
                "video.rungs[1].ssim_target",
            ),
            ("crf_max = 34", "crf_max = 10", "video.rungs[1].crf_max"),
            ("max_kbps = 150", "max_kbps = 40", "tiers[1].max_kbps"),
            ("quality = 45", "quality = 0", "image.rungs[0].quality"),
            (
                "brotli_quality = 11",
                "brotli_quality = 12",
                "page.brotli_quality",
            ),
            (
                "keyframe_interval = 4.0",
                "keyframe_interval = 0.0",
                "video.keyframe_interval",
            ),
        ];
        for (from, to, key) in cases {
            let e = with(|t| t.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.key, key, "{from} -> {to}: {e}");
        }
    }

    #[test]
    fn syntax_error_is_one_line() {
        let e = Profile::from_toml("broken.toml", "name = \"x\n").unwrap_err();
        assert_eq!(e.file, "broken.toml");
        assert!(!e.to_string().contains('\n'), "{e}");
        assert!(e.reason.contains("line 1"), "{e}");
    }

    #[test]
    fn resolve_by_name_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let custom = DEFAULT_PROFILE_TOML.replacen("name = \"default\"", "name = \"tiny\"", 1);
        std::fs::write(dir.path().join("tiny.toml"), custom).unwrap();
        let dirs = [dir.path().to_path_buf()];
        assert_eq!(Profile::resolve("tiny", &dirs).unwrap().name, "tiny");
        assert_eq!(
            Profile::resolve(dir.path().join("tiny.toml").to_str().unwrap(), &[])
                .unwrap()
                .name,
            "tiny"
        );
        assert_eq!(Profile::resolve("default", &dirs).unwrap().name, "default");
        let e = Profile::resolve("nope", &dirs).unwrap_err();
        assert!(e.reason.contains("no profile named"), "{e}");
        let e = Profile::resolve("/no/such/file.toml", &[]).unwrap_err();
        assert_eq!(e.file, "/no/such/file.toml");
    }
}
