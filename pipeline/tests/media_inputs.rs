//! Real-world and hostile media through the video renderer: phone rotation,
//! odd sizes, 10-bit, variable frame rate, no audio, audio-only sources,
//! 5.1, very short clips, WebM/MKV/MOV; and files crafted to make FFmpeg
//! read something else. Outputs are checked with ffprobe.

use std::path::{Path, PathBuf};
use std::process::Command;

use lowband_catalog::manifest::VariantKind;
use lowband_catalog::Profile;
use lowband_pipeline::rendition::{Payload, Rendition};
use lowband_pipeline::video::{self, VideoError};

fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/media")
        .join(name)
}

fn render(name: &str) -> Result<(Vec<Rendition>, tempfile::TempDir), VideoError> {
    render_with(name, &Profile::builtin_default().video)
}

/// Renders `name` with these video settings into a fresh work directory.
fn render_with(
    name: &str,
    settings: &lowband_catalog::profile::VideoSettings,
) -> Result<(Vec<Rendition>, tempfile::TempDir), VideoError> {
    let work = tempfile::tempdir().unwrap();
    let out = video::render(&media(name), settings, work.path(), "slow-2g", &|_| {})?;
    Ok((out.renditions, work))
}

/// `ffprobe` of the first stream of `kind` (`v` or `a`): sorted key=value pairs.
fn probe(r: &Rendition, kind: &str, entries: &str) -> String {
    let Payload::File(path) = &r.payload else {
        panic!("{} is not a file", r.name)
    };
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            kind,
            "-show_entries",
            &format!("stream={entries}"),
            "-of",
            "default=nw=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/install-deps.sh --test installs it)");
    assert!(
        out.status.success(),
        "{}: {}",
        r.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pairs: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    pairs.sort();
    pairs.join(" ")
}

/// The audio and video renditions (posters aside).
fn names(renditions: &[Rendition]) -> Vec<&str> {
    renditions
        .iter()
        .filter(|r| r.kind != VariantKind::Image)
        .map(|r| r.name.as_str())
        .collect()
}

fn rung<'a>(renditions: &'a [Rendition], name: &str) -> &'a Rendition {
    renditions
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", names(renditions)))
}

#[test]
fn portrait_phone_video_is_turned_upright() {
    let (out, _w) = render("rotated.mp4").unwrap();
    // 320x180 frames shown 90° turned: a 180x320 picture gets the rungs up to 240p, portrait.
    assert_eq!(names(&out), ["144p", "240p", "audio-opus", "audio-aac"]);
    assert_eq!(
        probe(rung(&out, "144p"), "v", "width,height"),
        "height=144 width=80"
    );
    assert_eq!(
        probe(rung(&out, "240p"), "v", "width,height"),
        "height=240 width=134"
    );
    // The poster and placeholder are upright too, and the placeholder is inlinable.
    let poster = rung(&out, "poster-jpeg");
    assert_eq!((poster.width, poster.height), (Some(180), Some(320)));
    let placeholder = rung(&out, "placeholder");
    assert_eq!(
        (placeholder.width, placeholder.mime.as_str()),
        (Some(32), "image/webp")
    );
    let Payload::Bytes(tiny) = &placeholder.payload else {
        panic!("placeholder in memory")
    };
    assert!(tiny.len() <= 1024, "placeholder is {} bytes", tiny.len());
}

#[test]
fn odd_sizes_and_ten_bit_become_even_eight_bit_main() {
    let (out, _w) = render("odd.mp4").unwrap();
    assert_eq!(
        probe(rung(&out, "144p"), "v", "width,height,pix_fmt,profile"),
        "height=144 pix_fmt=yuv420p profile=Main width=260"
    );
    let (out, _w) = render("tenbit.mp4").unwrap();
    assert_eq!(
        probe(rung(&out, "144p"), "v", "pix_fmt,profile"),
        "pix_fmt=yuv420p profile=Main"
    );
}

#[test]
fn variable_frame_rate_becomes_the_rung_rate() {
    let (out, _w) = render("vfr.mkv").unwrap();
    assert_eq!(
        probe(rung(&out, "144p"), "v", "r_frame_rate"),
        "r_frame_rate=10/1"
    );
    let d = rung(&out, "144p").duration.unwrap();
    assert!((d - 3.0).abs() < 0.2, "duration {d}");
}

#[test]
fn silent_video_gets_no_sound() {
    let (out, _w) = render("silent.mp4").unwrap();
    assert_eq!(names(&out), ["144p"]);
    assert_eq!(probe(&out[0], "a", "codec_name"), "");
    assert_eq!(
        out[0]
            .codecs
            .as_deref()
            .map(|c| c.starts_with("avc1.") && !c.contains("mp4a")),
        Some(true)
    );
}

#[test]
fn audio_only_sources_become_audio_renditions() {
    for name in ["speech.mp3", "speech.wav", "speech.m4a", "cover.mp3"] {
        let (out, _w) = render(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(names(&out), ["audio-opus", "audio-aac"], "{name}");
        assert!(out.iter().all(|r| r.kind == VariantKind::Audio), "{name}");
        assert_eq!(
            probe(rung(&out, "audio-aac"), "a", "codec_name,channels"),
            "channels=1 codec_name=aac",
            "{name}"
        );
        assert_eq!(
            probe(rung(&out, "audio-opus"), "a", "codec_name"),
            "codec_name=opus",
            "{name}"
        );
        assert_eq!(
            probe(rung(&out, "audio-aac"), "v", "codec_name"),
            "",
            "{name}: no picture (not even the cover)"
        );
    }
}

#[test]
fn surround_sound_is_downmixed_to_mono() {
    let (out, _w) = render("surround.mp4").unwrap();
    assert_eq!(probe(rung(&out, "144p"), "a", "channels"), "channels=1");
}

#[test]
fn clips_under_a_second_and_other_containers_work() {
    let (out, _w) = render("short.mp4").unwrap();
    let d = rung(&out, "144p").duration.unwrap();
    assert!(d > 0.2 && d < 0.7, "duration {d}");
    for name in ["clip.webm", "clip.mov"] {
        let (out, _w) = render(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            probe(rung(&out, "144p"), "v", "codec_name"),
            "codec_name=h264",
            "{name}"
        );
    }
}

#[test]
fn hostile_files_are_refused_by_name() {
    for (name, reason) in [
        ("playlist.mp4", "not a readable audio or video file"),
        ("concat.mp4", "not a readable audio or video file"),
        ("sequence.mp4", "not a readable audio or video file"),
        ("truncated.mp4", "not a readable audio or video file"),
        ("zero-dims.mkv", "no picture size"),
    ] {
        let err = render(name).expect_err(name);
        let text = err.to_string();
        assert!(matches!(err, VideoError::Refused { .. }), "{name}: {text}");
        assert!(
            text.contains(&media(name).display().to_string()) && text.contains(reason),
            "{name}: {text}"
        );
    }
}

#[test]
fn ssim_target_trades_bytes_for_quality() {
    let size_and_ssim = |target: f64| {
        let mut settings = Profile::builtin_default().video;
        for rung in &mut settings.rungs {
            rung.ssim_target = Some(target);
        }
        let (renditions, _work) = render_with("clip.mov", &settings).unwrap();
        let rung = rung(&renditions, "144p");
        let Payload::File(path) = &rung.payload else {
            panic!("a file")
        };
        (std::fs::metadata(path).unwrap().len(), rung.ssim.unwrap())
    };
    // A target any CRF reaches lets the search go to crf_max; one none reaches keeps crf.
    let (loose_bytes, loose_ssim) = size_and_ssim(0.5);
    let (strict_bytes, strict_ssim) = size_and_ssim(0.9999);
    assert!(
        loose_bytes < strict_bytes,
        "loose {loose_bytes} bytes, strict {strict_bytes} bytes"
    );
    assert!(
        loose_ssim < strict_ssim,
        "loose SSIM {loose_ssim}, strict {strict_ssim}"
    );
}

/// A change to the profile's video bounds.
type Limit = Box<dyn Fn(&mut lowband_catalog::profile::VideoSettings)>;

#[test]
fn sources_beyond_the_profile_bounds_are_refused_before_decoding() {
    let work = tempfile::tempdir().unwrap();
    let base = Profile::builtin_default().video;
    let cases: [(&str, Limit, &str); 3] = [
        (
            "clip.mov",
            Box::new(|s| s.max_duration = 1.0),
            "more than the 1 s allowed",
        ),
        (
            "clip.mov",
            Box::new(|s| s.max_width = 160),
            "larger than the 160x4096 allowed",
        ),
        (
            "clip.mov",
            Box::new(|s| s.max_streams = 1),
            "2 streams, more than the 1 allowed",
        ),
    ];
    for (name, limit, reason) in cases {
        let mut settings = base.clone();
        limit(&mut settings);
        let err = video::render(&media(name), &settings, work.path(), "slow-2g", &|_| {})
            .expect_err(reason);
        assert!(err.to_string().contains(reason), "{err}");
    }
}

#[test]
fn av1_rungs_when_the_profile_asks() {
    let mut settings = Profile::builtin_default().video;
    // Keyframes twice a second, so a two-second clip has fragments to compare.
    settings.keyframe_interval = 0.5;
    let h264 = settings
        .rungs
        .iter()
        .find(|r| r.name == "144p")
        .unwrap()
        .clone();
    let av1 = lowband_catalog::profile::VideoRung {
        name: "144p-av1".into(),
        codec: lowband_catalog::profile::VideoCodec::Av1,
        preset: Some("12".into()),
        crf: 40,
        crf_max: Some(63),
        ssim_target: Some(0.95),
        ..h264.clone()
    };
    settings.rungs = vec![h264, av1.clone()];
    let (renditions, _work) = render_with("clip.mov", &settings).unwrap();
    let (x264, svt) = (rung(&renditions, "144p"), rung(&renditions, "144p-av1"));
    assert_eq!(
        probe(svt, "v", "codec_name,width,height,pix_fmt"),
        "codec_name=av1 height=144 pix_fmt=yuv420p width=256"
    );
    let codecs = svt.codecs.as_deref().unwrap();
    assert!(
        codecs.starts_with("av01.0.") && codecs.ends_with("M.08, mp4a.40.2"),
        "{codecs}"
    );
    assert!(svt.ssim.is_some_and(|s| s > 0.9), "{:?}", svt.ssim);
    let Payload::File(path) = &svt.payload else {
        panic!("a file")
    };
    let kbps = std::fs::metadata(path).unwrap().len() as f64 * 8.0 / 2.0 / 1000.0;
    assert!(kbps <= f64::from(av1.max_kbps), "{kbps} kbit/s");
    // Fragments (keyframes) at the same instants as the H.264 rung, so a
    // player can switch between them.
    let starts = |r: &Rendition| {
        let mut t = 0.0;
        r.fragments
            .as_ref()
            .unwrap()
            .segments
            .iter()
            .map(|s| {
                let start = t;
                t += s.duration;
                (start * 10.0).round() / 10.0
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(starts(svt), starts(x264));
    assert!(starts(svt).len() >= 4, "{:?}", starts(svt));
}
