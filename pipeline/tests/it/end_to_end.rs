//! The sample module from directory to a 2G phone: ingest `samples/` into a
//! file:// store, serve it with the edge on loopback, fetch the lecture as a
//! 2G and a 4G client, and check with ffprobe/ffmpeg that both decode and
//! that the 2G one is several times smaller.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use lowband_catalog::manifest::VariantKind;
use lowband_catalog::Store;
use lowband_edge::{Edge, EdgeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support;

/// A minimal HTTP/1.1 GET over loopback; returns (head, body).
async fn fetch(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    (head, raw[split..].to_vec())
}

/// An edge serving `store` on a loopback port, until stopped.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

async fn serve(store: Store) -> (std::net::SocketAddr, Running) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let edge = Arc::new(Edge::new(store, EdgeConfig::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lowband_edge::serve(
        edge,
        listener,
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, Running { stop, server })
}

/// The ffmpeg CLI plays every stream of the master playlist at `master`
/// (for its first `seconds`, if given) without an error.
fn plays_master(addr: std::net::SocketAddr, master: &str, seconds: Option<u32>) {
    let mut play = Command::new("ffmpeg");
    play.args(["-v", "error", "-xerror", "-i"])
        .arg(format!("http://{addr}{master}"))
        .args(["-map", "0"]);
    if let Some(s) = seconds {
        play.args(["-t", &s.to_string()]);
    }
    let out = play.args(["-f", "null", "-"]).output().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg cannot play the master playlist: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes every frame with the ffmpeg CLI; returns ffprobe's stream summary.
fn decodes(file: &Path) -> String {
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output();
    let decode = decode.expect("ffmpeg CLI (scripts/install-deps.sh --test installs it)");
    assert!(
        decode.status.success(),
        "{} does not decode: {}",
        file.display(),
        String::from_utf8_lossy(&decode.stderr)
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "compact",
        ])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&probe.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_module_reaches_a_2g_client_several_times_smaller() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&format!("file://{}", store_dir.display())).unwrap();
    let report = support::ingest(&support::samples().join("teaching-questions"), &store)
        .await
        .unwrap();
    assert!(report.published);

    let manifest = support::published(&store, "teaching-questions").await;
    let lecture = manifest
        .asset("lessons/lecture.mp4")
        .expect("the lecture is in the manifest");
    let heights: Vec<_> = lecture
        .variants_of(VariantKind::Video)
        .filter(|v| v.mode.is_none())
        .filter_map(|v| v.height)
        .collect();
    assert_eq!(heights, [144, 240, 360, 480]);
    let slides = lecture
        .variants
        .iter()
        .find(|v| v.mode.as_deref() == Some("slides"))
        .expect("a slides rung");
    let slides_kbps = slides.bitrate.unwrap() as f64 / 1000.0;
    assert!(
        slides_kbps <= 32.0,
        "slides rung averages {slides_kbps:.1} kbit/s, over its 32 kbit/s cap"
    );
    assert!(lecture
        .variants
        .iter()
        .any(|v| v.mime == "audio/webm" && v.codecs.as_deref() == Some("opus")));
    let captions: Vec<_> = lecture
        .captions
        .iter()
        .map(|c| (c.path.as_str(), c.language.as_deref()))
        .collect();
    assert_eq!(
        captions,
        [
            ("lessons/lecture.km.vtt", Some("km")),
            ("lessons/lecture.vtt", None)
        ]
    );
    let poster = lecture
        .variants
        .iter()
        .find(|v| v.name == "poster-webp")
        .expect("a poster");
    assert_eq!((poster.width, poster.height), (Some(640), Some(360)));
    let rung_144 = lecture.variants.iter().find(|v| v.name == "144p").unwrap();
    for v in lecture
        .variants
        .iter()
        .filter(|v| v.kind == VariantKind::Video)
    {
        let ssim = v.ssim.unwrap_or_else(|| panic!("{} has no SSIM", v.name));
        assert!((0.9..=1.0).contains(&ssim), "{}: SSIM {ssim}", v.name);
    }
    eprintln!(
        "2G rung: {} kbit/s, SSIM {:.4}",
        rung_144.bitrate.unwrap() / 1000,
        rung_144.ssim.unwrap()
    );
    let kbps = rung_144.bitrate.unwrap() as f64 / 1000.0;
    assert!(
        kbps <= 64.0,
        "the 2G rung averages {kbps:.1} kbit/s, over its 64 kbit/s cap"
    );
    for v in lecture
        .variants
        .iter()
        .filter(|v| v.kind == VariantKind::Video)
    {
        assert!(
            v.playlist.is_some() && v.peak_bitrate.is_some(),
            "{} has no HLS playlist",
            v.name
        );
    }

    let (addr, running) = serve(store).await;

    let url = "/m/teaching-questions/lessons/lecture.mp4";
    let (head_2g, body_2g) = fetch(addr, url, &[("ECT", "2g")]).await;
    let (head_4g, body_4g) = fetch(addr, url, &[("ECT", "4g")]).await;
    assert!(head_2g.starts_with("http/1.1 200"), "{head_2g}");
    assert!(
        head_2g.contains("lowband-variant: 144p; tier=2g; reason=ect"),
        "{head_2g}"
    );
    assert!(
        head_4g.contains("lowband-variant: 480p; tier=4g; reason=ect"),
        "{head_4g}"
    );
    assert!(
        body_2g.len() * 3 <= body_4g.len(),
        "2G lecture {} bytes is not several times smaller than 4G {} bytes",
        body_2g.len(),
        body_4g.len()
    );
    // moov before mdat: playback can start before the whole file arrives.
    let moov = body_2g.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = body_2g.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "moov at {moov}, mdat at {mdat}");

    let f2 = tmp.path().join("lecture-2g.mp4");
    let f4 = tmp.path().join("lecture-4g.mp4");
    std::fs::write(&f2, &body_2g).unwrap();
    std::fs::write(&f4, &body_4g).unwrap();
    let p2 = decodes(&f2);
    let p4 = decodes(&f4);
    assert!(
        p2.contains("codec_name=h264|width=256|height=144") && p2.contains("codec_name=aac"),
        "{p2}"
    );
    assert!(p4.contains("codec_name=h264|width=852|height=480"), "{p4}");

    // The course page arrives brotli-compressed, its photo as WebP for a browser that takes it.
    let (page_head, _) = fetch(
        addr,
        "/m/teaching-questions/index.html",
        &[("Accept-Encoding", "br, gzip")],
    )
    .await;
    assert!(page_head.contains("content-encoding: br"), "{page_head}");
    let (img_head, img) = fetch(
        addr,
        "/m/teaching-questions/img/classroom.jpg",
        &[("Accept", "image/webp,*/*"), ("ECT", "2g")],
    )
    .await;
    assert!(img_head.contains("content-type: image/webp"), "{img_head}");
    let img_file = tmp.path().join("classroom.webp");
    std::fs::write(&img_file, &img).unwrap();
    assert!(decodes(&img_file).contains("codec_name=webp"));

    // HLS: the master playlist for a 2G client lists what 2G carries, and ffmpeg plays it.
    let master = "/m/teaching-questions/lessons/lecture.mp4/master.m3u8";
    let (m_head, m_body) = fetch(addr, master, &[("ECT", "2g")]).await;
    let m_text = String::from_utf8(m_body).unwrap();
    assert!(
        m_head.contains("content-type: application/vnd.apple.mpegurl"),
        "{m_head}"
    );
    assert!(
        m_text.contains("RESOLUTION=256x144") && !m_text.contains("RESOLUTION=852x480"),
        "{m_text}"
    );
    assert!(
        m_text.contains("AVERAGE-BANDWIDTH=") && m_text.contains("CODECS=\"avc1.4d"),
        "{m_text}"
    );
    assert!(
        m_text.contains("TYPE=SUBTITLES") && m_text.contains("LANGUAGE=\"km\""),
        "{m_text}"
    );
    let (_, subs) = fetch(
        addr,
        "/m/teaching-questions/lessons/lecture.mp4/captions/0.m3u8",
        &[],
    )
    .await;
    let subs = String::from_utf8(subs).unwrap();
    let vtt_uri = subs
        .lines()
        .find(|l| l.starts_with("/o/"))
        .expect("a WebVTT segment");
    let (_, vtt) = fetch(addr, vtt_uri, &[]).await;
    assert!(String::from_utf8(vtt).unwrap().starts_with("WEBVTT"));
    plays_master(addr, master, Some(12));

    running.stop().await;
}

/// A lecture made outside lowband, in Matroska with a Khmer and an English
/// sound track and English subtitles: the Khmer sound goes into the rungs,
/// the English one becomes alternative audio and the subtitles WebVTT
/// captions, both in the HLS master playlist with their languages, and the
/// ffmpeg CLI plays the whole master.
#[tokio::test(flavor = "multi_thread")]
async fn a_lecture_in_two_languages_with_subtitles_reaches_hls_players() {
    let tmp = tempfile::tempdir().unwrap();
    let module = tmp.path().join("two-languages");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(
        module.join("module.toml"),
        "id = \"two-languages\"\ntitle = \"ពីរភាសា\"\nlanguage = \"km\"\n",
    )
    .unwrap();
    let srt = tmp.path().join("en.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,500 --> 00:00:02,000\nAsk an open question.\n\n2\n00:00:02,500 --> 00:00:04,000\nThen <i>wait</i>.\n",
    )
    .unwrap();
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=5"])
        .args(["-f", "lavfi", "-i", "sine=f=1000:sample_rate=48000:d=5"])
        .args(["-f", "lavfi", "-i", "sine=f=500:sample_rate=44100:d=5"])
        .arg("-i")
        .arg(&srt)
        .args(["-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-c:s", "srt",
        ])
        .args([
            "-metadata:s:a:0",
            "language=khm",
            "-metadata:s:a:1",
            "language=eng",
        ])
        .args([
            "-metadata:s:s:0",
            "language=eng",
            "-disposition:a:0",
            "default",
        ])
        .args(["-disposition:a:1", "0"])
        .arg(module.join("lecture.mkv"))
        .output()
        .expect("ffmpeg CLI (scripts/install-deps.sh --test installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let store = Store::open(&format!("file://{}", tmp.path().join("store").display())).unwrap();
    support::ingest(&module, &store).await.unwrap();
    let manifest = support::published(&store, "two-languages").await;
    let asset = manifest.asset("lecture.mkv").expect("the lecture");
    let english = asset
        .variants
        .iter()
        .find(|v| v.alternate)
        .expect("the English sound track as its own rendition");
    assert_eq!(
        (english.name.as_str(), english.language.as_deref()),
        ("audio-en", Some("en"))
    );
    assert_eq!(asset.captions.len(), 1, "{:?}", asset.captions);
    assert_eq!(asset.captions[0].language.as_deref(), Some("en"));

    let (addr, running) = serve(store).await;

    let master = "/m/two-languages/lecture.mkv/master.m3u8";
    let (_, body) = fetch(addr, master, &[("ECT", "3g")]).await;
    let text = String::from_utf8(body).unwrap();
    let audio: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(audio.len(), 2, "{text}");
    assert!(
        audio[0].contains("LANGUAGE=\"km\"") && !audio[0].contains("URI="),
        "{text}"
    );
    assert!(
        audio[1].contains("LANGUAGE=\"en\"") && audio[1].contains("URI=\"/o/"),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains("RESOLUTION="))
            .all(|l| l.contains("AUDIO=\"aud\"")),
        "{text}"
    );
    assert!(
        text.contains("TYPE=SUBTITLES") && text.contains("LANGUAGE=\"en\",URI="),
        "{text}"
    );

    // The English track's own playlist decodes, and so do the captions.
    let alternate = audio[1]
        .split("URI=\"")
        .nth(1)
        .and_then(|u| u.split('"').next())
        .unwrap();
    let (_, playlist) = fetch(addr, alternate, &[]).await;
    let playlist = String::from_utf8(playlist).unwrap();
    let object = playlist.lines().find(|l| l.starts_with("/o/")).unwrap();
    let (_, sound) = fetch(addr, object, &[]).await;
    let sound_file = tmp.path().join("en.m4a");
    std::fs::write(&sound_file, &sound).unwrap();
    assert!(decodes(&sound_file).contains("codec_name=aac"));
    let (_, subs) = fetch(addr, "/m/two-languages/lecture.mkv/captions/0.m3u8", &[]).await;
    let subs = String::from_utf8(subs).unwrap();
    let vtt_uri = subs.lines().find(|l| l.starts_with("/o/")).unwrap();
    let (_, vtt) = fetch(addr, vtt_uri, &[]).await;
    let vtt = String::from_utf8(vtt).unwrap();
    // Matroska's muxer moved every stream by the AAC priming (23 ms): the
    // cue keeps its place against the picture and sound of the file.
    let first_cue = vtt
        .lines()
        .find(|l| l.contains(" --> "))
        .and_then(|l| l.split(" --> ").next())
        .and_then(|t| t.strip_prefix("00:00:"))
        .and_then(|t| t.parse::<f64>().ok());
    assert!(
        vtt.starts_with("WEBVTT")
            && first_cue.is_some_and(|t| (t - 0.5).abs() < 0.03)
            && vtt.contains("\nAsk an open question.\n")
            && vtt.contains("\nThen wait.\n"),
        "{vtt}"
    );

    plays_master(addr, master, None);

    running.stop().await;
}
