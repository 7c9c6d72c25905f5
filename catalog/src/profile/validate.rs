//! The checks a profile passes before anything is rendered with it: every
//! value a ladder can hold within what the encoders and players accept, and
//! every tier a rendition names defined. A failed check names the dotted
//! key and says what would be valid.

use std::collections::HashSet;

use super::{
    AudioCodec, AudioRendition, ImageSettings, PageSettings, Profile, RungMode, VideoCodec,
    VideoRung, VideoSettings,
};

/// A value the profile may not hold: its dotted key and why.
#[derive(Debug)]
pub(super) struct Invalid {
    pub key: String,
    pub reason: String,
}

type Check = Result<(), Invalid>;

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Check {
    Err(Invalid {
        key: key.into(),
        reason: reason.into(),
    })
}

const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

/// The tier names a profile defines, for the renditions that name them.
struct Tiers<'a> {
    names: HashSet<&'a str>,
    profile: &'a Profile,
}

impl Tiers<'_> {
    fn check(&self, key: String, name: &str) -> Check {
        if self.names.contains(name) {
            return Ok(());
        }
        let list: Vec<&str> = self.profile.tiers.iter().map(|t| t.name.as_str()).collect();
        invalid(
            key,
            format!("unknown tier {name:?} (profile has {})", list.join(", ")),
        )
    }
}

pub(super) fn profile(p: &Profile) -> Check {
    let tiers = tiers(p)?;
    video(&p.video, &tiers)?;
    image(&p.image, &tiers)?;
    page(&p.page, &tiers)
}

/// Tiers go from slowest to fastest; only the last is unbounded.
fn tiers(p: &Profile) -> Result<Tiers<'_>, Invalid> {
    if p.tiers.is_empty() {
        invalid("tiers", "at least one tier is required")?;
    }
    let mut names = HashSet::new();
    let mut previous_kbps = 0;
    for (i, tier) in p.tiers.iter().enumerate() {
        let key = format!("tiers[{i}]");
        if !valid_name(&tier.name) {
            invalid(
                format!("{key}.name"),
                format!("{:?} is not a valid tier name", tier.name),
            )?;
        }
        if !names.insert(tier.name.as_str()) {
            invalid(
                format!("{key}.name"),
                format!("tier {:?} is defined twice", tier.name),
            )?;
        }
        match tier.max_kbps {
            Some(kbps) if kbps <= previous_kbps => invalid(
                format!("{key}.max_kbps"),
                format!("{kbps} must be greater than the previous tier's {previous_kbps}: tiers go from slowest to fastest"),
            )?,
            Some(kbps) => previous_kbps = kbps,
            None if i + 1 != p.tiers.len() => invalid(
                format!("{key}.max_kbps"),
                "only the last (fastest) tier may be unbounded",
            )?,
            None => {}
        }
    }
    Ok(Tiers { names, profile: p })
}

fn video(v: &VideoSettings, tiers: &Tiers) -> Check {
    if !(0.5..=20.0).contains(&v.keyframe_interval) {
        invalid(
            "video.keyframe_interval",
            format!("{} s is outside 0.5-20 s", v.keyframe_interval),
        )?;
    }
    if !(v.max_duration > 0.0 && v.max_duration.is_finite()) {
        invalid("video.max_duration", "must be a positive number of seconds")?;
    }
    for (key, value) in [
        ("video.max_width", v.max_width),
        ("video.max_height", v.max_height),
    ] {
        if !(16..=16384).contains(&value) {
            invalid(key, format!("{value} is outside 16-16384"))?;
        }
    }
    if !(1..=256).contains(&v.max_streams) {
        invalid(
            "video.max_streams",
            format!("{} is outside 1-256", v.max_streams),
        )?;
    }
    if v.rungs.is_empty() {
        invalid("video.rungs", "at least one video rung is required")?;
    }
    // Video rungs and sound renditions share one namespace: both name variants.
    let mut names = HashSet::new();
    for (i, r) in v.rungs.iter().enumerate() {
        let key = |field: &str| format!("video.rungs[{i}].{field}");
        unique_name(&mut names, key("name"), &r.name)?;
        tiers.check(key("tier"), &r.tier)?;
        video_rung(r, &key)?;
    }
    for (i, a) in v.audio.iter().enumerate() {
        let key = |field: &str| format!("video.audio[{i}].{field}");
        unique_name(&mut names, key("name"), &a.name)?;
        tiers.check(key("tier"), &a.tier)?;
        audio(a, &key)?;
    }
    Ok(())
}

fn unique_name<'a>(names: &mut HashSet<&'a str>, key: String, name: &'a str) -> Check {
    if valid_name(name) && names.insert(name) {
        return Ok(());
    }
    invalid(key, format!("{name:?} must be a unique name of [a-z0-9-]"))
}

fn video_rung(r: &VideoRung, key: &dyn Fn(&str) -> String) -> Check {
    if !(16..=4320).contains(&r.height) || !r.height.is_multiple_of(2) {
        invalid(
            key("height"),
            format!("{} must be even and within 16-4320", r.height),
        )?;
    }
    if !(r.fps >= 1.0 && r.fps <= 120.0) {
        invalid(key("fps"), format!("{} is outside 1-120", r.fps))?;
    }
    if r.audio_kbps < 8 || r.audio_kbps > 320 {
        invalid(
            key("audio_kbps"),
            format!("{} is outside 8-320", r.audio_kbps),
        )?;
    }
    if r.max_kbps < r.audio_kbps + 16 {
        invalid(
            key("max_kbps"),
            format!(
                "{} leaves less than 16 kbit/s for video after {} for audio",
                r.max_kbps, r.audio_kbps
            ),
        )?;
    }
    sample_rate(key("audio_sample_rate"), r.audio_sample_rate)?;
    if r.mode == RungMode::Slides && r.fps > 1.0 {
        invalid(
            key("fps"),
            format!(
                "{} is above 1: a slides rung shows at most one picture a second",
                r.fps
            ),
        )?;
    }
    if let Some(k) = r.keyframe_interval.filter(|k| !(0.5..=300.0).contains(k)) {
        invalid(
            key("keyframe_interval"),
            format!("{k} s is outside 0.5-300 s"),
        )?;
    }
    if let Some(t) = r.ssim_target.filter(|t| !(0.5..1.0).contains(t)) {
        invalid(
            key("ssim_target"),
            format!("{t} is outside 0.5-1 (exclusive)"),
        )?;
    }
    encoder(r, key)
}

/// Rate factors and presets as the rung's encoder names them.
fn encoder(r: &VideoRung, key: &dyn Fn(&str) -> String) -> Check {
    let max_crf = r.codec.max_crf();
    let min_crf = u8::from(r.codec == VideoCodec::Av1);
    if r.crf > max_crf || r.crf < min_crf {
        invalid(
            key("crf"),
            format!("{} is outside {min_crf}-{max_crf}", r.crf),
        )?;
    }
    if r.crf_max() > max_crf || r.crf_max() < r.crf {
        invalid(
            key("crf_max"),
            format!("{} must be within crf ({})..={max_crf}", r.crf_max(), r.crf),
        )?;
    }
    let preset = r.preset();
    match r.codec {
        VideoCodec::H264 if !X264_PRESETS.contains(&preset) => invalid(
            key("preset"),
            format!(
                "{preset:?} is not an x264 preset ({})",
                X264_PRESETS.join(", ")
            ),
        ),
        VideoCodec::Av1 if !preset.parse::<u8>().is_ok_and(|p| p <= 13) => invalid(
            key("preset"),
            format!("{preset:?} is not an SVT-AV1 preset (a number 0-13)"),
        ),
        _ => Ok(()),
    }
}

fn audio(a: &AudioRendition, key: &dyn Fn(&str) -> String) -> Check {
    if !(6..=320).contains(&a.kbps) {
        invalid(key("kbps"), format!("{} is outside 6-320", a.kbps))?;
    }
    sample_rate(key("sample_rate"), a.sample_rate)?;
    if a.codec == AudioCodec::Opus && !OPUS_RATES.contains(&a.sample_rate) {
        invalid(
            key("sample_rate"),
            format!(
                "{} is not an Opus rate (8000, 12000, 16000, 24000, 48000)",
                a.sample_rate
            ),
        )?;
    }
    Ok(())
}

fn image(im: &ImageSettings, tiers: &Tiers) -> Check {
    if im.formats.is_empty() {
        invalid("image.formats", "at least one format is required")?;
    }
    if im.max_pixels == 0 || im.max_bytes == 0 || im.max_frames == 0 {
        invalid("image.max_pixels", "limits must be positive")?;
    }
    if im.rungs.is_empty() {
        invalid("image.rungs", "at least one image rung is required")?;
    }
    for (i, r) in im.rungs.iter().enumerate() {
        let key = |field: &str| format!("image.rungs[{i}].{field}");
        tiers.check(key("tier"), &r.tier)?;
        if !(16..=8192).contains(&r.width) {
            invalid(key("width"), format!("{} is outside 16-8192", r.width))?;
        }
        if !(1..=100).contains(&r.quality) {
            invalid(key("quality"), format!("{} is outside 1-100", r.quality))?;
        }
    }
    Ok(())
}

fn page(p: &PageSettings, tiers: &Tiers) -> Check {
    if p.brotli_quality > 11 {
        invalid(
            "page.brotli_quality",
            format!("{} is outside 0-11", p.brotli_quality),
        )?;
    }
    if !(1..=19).contains(&p.zstd_level) {
        invalid(
            "page.zstd_level",
            format!(
                "{} is outside 1-19 (higher levels need decoder windows phones may refuse)",
                p.zstd_level
            ),
        )?;
    }
    if !(1..=9).contains(&p.gzip_level) {
        invalid(
            "page.gzip_level",
            format!("{} is outside 1-9", p.gzip_level),
        )?;
    }
    for name in p.budget_kb.keys() {
        tiers.check(format!("page.budget_kb.{name}"), name)?;
    }
    for (i, name) in p.lite_tiers.iter().enumerate() {
        tiers.check(format!("page.lite_tiers[{i}]"), name)?;
    }
    Ok(())
}

fn sample_rate(key: String, rate: u32) -> Check {
    const RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
    if RATES.contains(&rate) {
        return Ok(());
    }
    invalid(key, format!("{rate} Hz is not one of {RATES:?}"))
}

/// Tier and rendition names appear in URLs, cookies and file names.
fn valid_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
