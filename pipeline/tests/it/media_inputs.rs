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

use crate::support;

fn media(name: &str) -> PathBuf {
    support::fixture("media").join(name)
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
    // 320x180 frames shown 90° turned: a 180x320 picture. Rungs are named
    // by the short side, as players name them: its 144p is 144 px wide, and
    // 240p would be upscaled.
    assert_eq!(names(&out), ["144p", "audio-opus", "audio-aac"]);
    assert_eq!(
        probe(rung(&out, "144p"), "v", "width,height"),
        "height=256 width=144"
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

#[path = "../corpus/oracle.rs"]
mod oracle;

/// One line of the corpus's `cases.tsv` (see `corpus/README.md`).
#[derive(Debug, Clone)]
struct Case {
    file: String,
    publish: bool,
    kind: String,
    display: Option<(f64, f64)>,
    langs: Vec<String>,
    subs: usize,
    hdr: bool,
}

fn cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |row: &[&str], name: &str| -> String {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        row.get(i).copied().unwrap_or("").to_owned()
    };
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: Vec<&str> = l.split('\t').collect();
            let display = col(&row, "display");
            let display = display
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
            let langs = col(&row, "langs");
            Case {
                file: col(&row, "file"),
                publish: col(&row, "expect") == "publish",
                kind: col(&row, "kind"),
                display,
                langs: if langs == "-" {
                    Vec::new()
                } else {
                    langs.split(',').map(str::to_owned).collect()
                },
                subs: col(&row, "subs").parse().unwrap_or(0),
                hdr: col(&row, "hdr") != "-",
            }
        })
        .collect()
}

/// What the ffmpeg CLI finds in a source: how long its transcode lasts,
/// and how many flash-and-beep marks it shows.
struct SourceFacts {
    duration: f64,
    marks: usize,
    /// Mean luma of a zscale + tonemap transcode, for HDR sources.
    tonemapped_luma: Option<f64>,
}

fn source_facts(file: &Path, case: &Case) -> SourceFacts {
    let has_video = case.kind == "video";
    let has_audio = !oracle::probe(
        file,
        &["-select_streams", "a", "-show_entries", "stream=index"],
    )
    .is_empty();
    let marks = if has_video && has_audio {
        oracle::near_pairs(&oracle::flashes(file), &oracle::beeps(file, 0))
    } else {
        0
    };
    let tonemapped_luma = case.hdr.then(|| {
        let lumas = oracle::lumas(
            file,
            "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
        );
        mean_dark(&lumas)
    });
    SourceFacts {
        duration: oracle::cli_duration(file).unwrap_or(0.0),
        marks,
        tonemapped_luma,
    }
}

/// Mean luma of the pictures between flashes.
fn mean_dark(lumas: &[(f64, f64)]) -> f64 {
    let dark: Vec<f64> = lumas
        .iter()
        .map(|(_, y)| *y)
        .filter(|y| *y < 150.0)
        .collect();
    dark.iter().sum::<f64>() / dark.len().max(1) as f64
}

/// Seconds of buffer a rung's cap allows (x264's bufsize is twice maxrate).
const RUNG_BUFFER_SECONDS: f64 = 2.0;

/// Checks one published rung against its source; the reasons it fails.
fn check_rung(
    case: &Case,
    facts: &SourceFacts,
    r: &Rendition,
    caps: &std::collections::HashMap<String, u32>,
) -> Vec<String> {
    let Payload::File(path) = &r.payload else {
        return Vec::new();
    };
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{}: {what}", r.name));
    if let Err(e) = oracle::decodes(path) {
        fail(format!("does not decode with ffmpeg -xerror: {e}"));
        return failures;
    }
    let format = oracle::probe(path, &["-show_entries", "format=duration,size"]);
    let duration = oracle::value(&format, "duration").unwrap_or(0.0);
    if (duration - facts.duration).abs() > 0.5 {
        fail(format!(
            "lasts {duration:.2} s, the source {:.2} s",
            facts.duration
        ));
    }
    // The cap as a link sees it: a link of `cap` kbit/s, with the rung's
    // two seconds of buffer (x264's VBV), never falls behind a player
    // fetching fragment after fragment. The initialisation segment is
    // fetched before playback starts and is left out.
    if let (Some(cap), Some(fragments)) = (caps.get(&r.name), &r.fragments) {
        let rate = f64::from(*cap) * 1000.0 / 8.0;
        let (mut bytes, mut until) = (0.0, 0.0);
        for s in &fragments.segments {
            bytes += s.len as f64;
            until += s.duration;
            if bytes > rate * (until + RUNG_BUFFER_SECONDS) * 1.02 {
                fail(format!(
                    "{bytes:.0} bytes by {until:.1} s: more than a {cap} kbit/s link carries with a {RUNG_BUFFER_SECONDS} s buffer"
                ));
                break;
            }
        }
    }
    if r.kind != VariantKind::Video {
        return failures;
    }
    let starts = oracle::probe(
        path,
        &[
            "-show_entries",
            "stream=codec_type,start_time,width,height,color_transfer",
        ],
    );
    let mut video_start = None;
    let mut audio_start = None;
    let mut current = "";
    for line in starts.lines() {
        if let Some(kind) = line.strip_prefix("codec_type=") {
            current = if kind == "video" { "v" } else { "a" };
        }
        if let Some(t) = line
            .strip_prefix("start_time=")
            .and_then(|t| t.parse::<f64>().ok())
        {
            if current == "v" {
                video_start = Some(t);
            } else {
                audio_start = Some(t);
            }
        }
    }
    match video_start {
        Some(t) if t.abs() < 0.001 => {}
        other => fail(format!("video starts at {other:?}, not 0")),
    }
    if let (Some(v), Some(a)) = (video_start, audio_start) {
        if (a - v).abs() > 0.04 {
            fail(format!("sound starts at {a:.3} s, the picture at {v:.3} s"));
        }
    }
    if let Some((w, h)) = case.display {
        let (rw, rh) = (
            oracle::value(&starts, "width").unwrap_or(0.0),
            oracle::value(&starts, "height").unwrap_or(1.0),
        );
        if ((rw / rh) / (w / h) - 1.0).abs() > 0.04 {
            fail(format!("{rw}x{rh} does not show the source's {w}x{h}"));
        }
    }
    // A slides rung samples one picture a second: a 0.2 s flash falls
    // between its samples, so its timing is judged by its start and length.
    let slides = r.mode.as_deref() == Some("slides");
    if facts.marks > 0 && !slides {
        let flashes = oracle::flashes(path);
        let beeps = oracle::beeps(path, 0);
        let near = oracle::pairs(&flashes, &beeps, 0.5);
        // A picture can only be shown at the rung's frame instants: a flash
        // between two is shown at the nearer one, up to half a frame away.
        let frame = r.fps.map_or(0.0, |fps| 0.5 / fps);
        let off: Vec<_> = near
            .iter()
            .filter(|(_, d)| d.abs() > 0.04 + frame)
            .collect();
        if !off.is_empty() {
            fail(format!(
                "picture and sound apart (flash at s, beep after it by s): {off:.3?}"
            ));
        }
        if near.len() < facts.marks {
            fail(format!("shows {} flash-and-beep marks, the source {} (flashes {flashes:.2?}, beeps {beeps:.2?})", near.len(), facts.marks));
        }
    }
    if case.hdr {
        if !starts.contains("color_transfer=bt709") {
            fail("not tagged BT.709".into());
        }
        let luma = mean_dark(&oracle::lumas(path, ""));
        if let Some(reference) = facts.tonemapped_luma {
            if (luma - reference).abs() > 10.0 {
                fail(format!(
                    "mean luma {luma:.1}, a zscale+tonemap transcode {reference:.1}"
                ));
            }
        }
    }
    failures
}

/// Renders one case and checks everything the oracle can; the reasons it fails.
fn run_case(
    dir: &Path,
    case: &Case,
    settings: &lowband_catalog::profile::VideoSettings,
) -> Vec<String> {
    let file = dir.join(&case.file);
    let work = tempfile::tempdir().unwrap();
    let result = video::render(&file, settings, work.path(), "slow-2g", &|_| {});
    let out = match (result, case.publish) {
        (Err(e), false) => {
            let message = e.to_string();
            return if message.contains(&case.file) && !message.contains('\n') {
                Vec::new()
            } else {
                vec![format!(
                    "refused without a one-line error naming the file: {message:?}"
                )]
            };
        }
        (Ok(_), false) => return vec!["published, but should have been refused".into()],
        (Err(e), true) => return vec![format!("refused: {e}")],
        (Ok(out), true) => out,
    };
    let facts = source_facts(&file, case);
    let caps: std::collections::HashMap<String, u32> = settings
        .rungs
        .iter()
        .map(|r| (r.name.clone(), r.max_kbps))
        .collect();
    let mut failures = Vec::new();
    let media: Vec<&Rendition> = out
        .renditions
        .iter()
        .filter(|r| matches!(r.kind, VariantKind::Video | VariantKind::Audio))
        .collect();
    let want_video = case.kind == "video";
    let has_video_rung = media.iter().any(|r| r.kind == VariantKind::Video);
    if want_video != has_video_rung {
        failures.push(format!(
            "video rungs: {has_video_rung}, expected {want_video}"
        ));
    }
    for r in &media {
        failures.extend(check_rung(case, &facts, r, &caps));
    }
    // Every further language: its own audio-only rendition (which decodes,
    // checked above), tagged with a language when the track has one.
    let alternates: Vec<_> = media.iter().filter_map(|r| r.alternate.clone()).collect();
    if alternates.len() != case.langs.len().saturating_sub(1)
        || alternates.iter().any(Option::is_none)
    {
        failures.push(format!(
            "languages {:?}, further-language renditions {alternates:?}",
            case.langs
        ));
    }
    if out.captions.len() != case.subs {
        failures.push(format!(
            "{} captions from {} subtitle tracks",
            out.captions.len(),
            case.subs
        ));
    }
    for c in &out.captions {
        let text = std::fs::read_to_string(&c.path).unwrap_or_default();
        if !text.starts_with("WEBVTT\n") || !text.contains(" --> ") {
            failures.push(format!(
                "captions of stream {} are not WebVTT with cues: {text:?}",
                c.stream
            ));
        }
        if let Err(e) = oracle::decodes(&c.path) {
            failures.push(format!("captions of stream {}: {e}", c.stream));
        }
    }
    failures
}

/// The conformance corpus (`corpus/make.sh`, made by the ffmpeg CLI at test
/// time): whatever the CLI can transcode, lowband publishes, every rung
/// in sync, as long as its source, under its cap and upright; the rest is
/// refused with one line naming the file. Every case is run, and every
/// failing case is listed.
#[test]
fn conformance_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/make.sh");
    let made = Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("bash");
    assert!(
        made.status.success(),
        "make.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let all = cases(dir.path());
    assert!(all.len() >= 60, "{} cases", all.len());
    let settings = Profile::builtin_default().video;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(case) = all.get(i) else { break };
                let started = std::time::Instant::now();
                let failures = run_case(dir.path(), case, &settings);
                results
                    .lock()
                    .unwrap()
                    .push((case.file.clone(), failures, started.elapsed()));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut report = String::new();
    for (file, failures, took) in &results {
        let verdict = if failures.is_empty() {
            "ok".to_owned()
        } else {
            failures.join("; ")
        };
        report.push_str(&format!("{file}\t{:.1}s\t{verdict}\n", took.as_secs_f64()));
    }
    println!("{report}");
    if let Ok(out) = std::env::var("LOWBAND_CORPUS_REPORT") {
        std::fs::write(out, &report).unwrap();
    }
    let failed = results.iter().filter(|r| !r.1.is_empty()).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} cases failed:\n{report}",
        results.len()
    );
}
