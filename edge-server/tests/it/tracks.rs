//! What a video carries inside it besides its main picture and sound,
//! through `Edge::handle` on a memory store: further sound tracks (the
//! manifest's `alternate` variants) are offered as HLS alternative audio
//! and never chosen for a client, and captions taken from a subtitle track
//! (a caption with a `key`) reach every player as the `.vtt` beside a
//! video does.

use bytes::Bytes;
use http::StatusCode;
use lowband_catalog::manifest::{Asset, AssetKind, Caption, Manifest, Variant, VariantKind};
use lowband_catalog::{ContentHash, ObjectKey, Store};
use lowband_edge::{Edge, EdgeConfig};

use crate::support::{get, put};

const VIDEO: &str = "/m/m1/lessons/intro.mkv";
const EMBEDDED_VTT: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:02.000\nHello from inside the video\n";

struct Fixture {
    edge: Edge,
    manifest: Manifest,
    /// The WebVTT object of the caption extracted from the video.
    embedded: ObjectKey,
    /// The identity copy of `intro.km.vtt`.
    beside: ObjectKey,
}

impl Fixture {
    fn variant(&self, name: &str) -> &Variant {
        let asset = &self.manifest.assets[0];
        asset.variants.iter().find(|v| v.name == name).unwrap()
    }
}

async fn fixture() -> Fixture {
    let store = Store::open("memory://").unwrap();
    let mut variants = Vec::new();
    // The further tracks are smaller than the main audio and one is of a
    // faster tier: ranking by size or tier alone would pick them.
    for (name, kind, tier, len, language, alternate) in [
        ("144p", VariantKind::Video, "2g", 60_000, None, false),
        ("360p", VariantKind::Video, "3g", 150_000, None, false),
        (
            "audio-aac",
            VariantKind::Audio,
            "slow-2g",
            40_000,
            None,
            false,
        ),
        (
            "audio-eng",
            VariantKind::Audio,
            "slow-2g",
            30_000,
            Some("eng"),
            true,
        ),
        ("audio-3", VariantKind::Audio, "2g", 20_000, None, true),
    ] {
        let body: Vec<u8> = (0..len)
            .map(|i| (i % 251) as u8 ^ name.len() as u8)
            .collect();
        let ext = if kind == VariantKind::Audio {
            "m4a"
        } else {
            "mp4"
        };
        let key = put(&store, body, ext).await;
        let playlist = put(&store, format!("#EXTM3U\n# {name}\n"), "m3u8").await;
        let picture = kind == VariantKind::Video;
        let (mime, codecs) = if picture {
            ("video/mp4", "avc1.4d400b, mp4a.40.2")
        } else {
            ("audio/mp4", "mp4a.40.2")
        };
        variants.push(
            Variant::builder(name, kind, tier, key, len as u64, mime)
                .height(name.strip_suffix('p').and_then(|h| h.parse::<u32>().ok()))
                .codecs(codecs)
                .peak_bitrate(len as u64 * 8)
                .playlist(playlist)
                .language(language)
                .alternate(alternate)
                .build(),
        );
    }
    let embedded = put(&store, EMBEDDED_VTT, "vtt").await;
    let beside = put(&store, Bytes::from_static(b"WEBVTT\n\nkm"), "vtt").await;
    let video = Asset::builder("lessons/intro.mkv", AssetKind::Video)
        .source(17_000, "video/x-matroska")
        .source_hash(ContentHash::of(b"intro.mkv"))
        .duration(72.0)
        .variants(variants)
        .caption(Caption {
            path: "lessons/intro.km.vtt".into(),
            language: Some("km".into()),
            key: None,
        })
        .caption(Caption {
            path: "lessons/intro.mkv#2".into(),
            language: Some("eng".into()),
            key: Some(embedded.clone()),
        });
    let captions_beside = Asset::builder("lessons/intro.km.vtt", AssetKind::File)
        .source(17_000, "text/vtt")
        .source_hash(ContentHash::of(b"intro.km.vtt"))
        .derivation(ContentHash::of(b"v"))
        .variant(Variant::new(
            "identity",
            VariantKind::File,
            "slow-2g",
            beside.clone(),
            10,
            "text/vtt",
        ));
    let manifest = Manifest::builder("m1")
        .title("Tracks")
        .language("km")
        .asset(video)
        .asset(captions_beside)
        .build();
    store.publish(&manifest).await.unwrap();
    Fixture {
        edge: Edge::new(store, EdgeConfig::default()),
        manifest,
        embedded,
        beside,
    }
}

#[tokio::test]
async fn further_sound_tracks_are_never_the_chosen_variant() {
    let f = fixture().await;
    let main = f.variant("audio-aac");
    for signal in [("ECT", "slow-2g"), ("Save-Data", "on"), ("RTT", "3000")] {
        let got = get(&f.edge, VIDEO, &[signal]).await;
        let label = got.header("lowband-variant");
        let expected = if signal.0 == "Save-Data" {
            "144p;"
        } else {
            "audio-aac;"
        };
        assert!(label.starts_with(expected), "{signal:?}: {label}");
    }
    for (tier, expected) in [("slow-2g", "audio-aac"), ("2g", "144p"), ("4g", "360p")] {
        let got = get(&f.edge, &format!("{VIDEO}?tier={tier}"), &[]).await;
        let label = got.header("lowband-variant");
        assert!(
            label.starts_with(&format!("{expected};")),
            "{tier}: {label}"
        );
    }
    let slowest = get(&f.edge, &format!("{VIDEO}?tier=slow-2g"), &[]).await;
    assert_eq!(slowest.status, StatusCode::OK);
    assert!(slowest.header("lowband-variant").starts_with("audio-aac;"));
    assert_eq!(slowest.header("content-length"), main.bytes.to_string());

    let play = get(&f.edge, &format!("{VIDEO}/play"), &[("ECT", "slow-2g")]).await;
    assert_eq!(play.status, StatusCode::FOUND);
    assert_eq!(play.header("location"), format!("/o/{}", main.key));

    // The teacher's choices and their costs: the main sound only.
    let got = get(&f.edge, &format!("{VIDEO}/watch"), &[]).await;
    let page = got.text();
    assert_eq!(got.status, StatusCode::OK, "{page}");
    assert!(page.contains("data-variant=\"audio-aac\""), "{page}");
    for alternate in ["audio-eng", "audio-3"] {
        assert!(!page.contains(alternate), "{alternate}: {page}");
        let key = f.variant(alternate).key.to_string();
        assert!(!page.contains(&key), "{alternate}: {page}");
    }
    let audio_cookie = [("Cookie", "lowband_quality=audio; lowband_tier=slow-2g")];
    let audio = get(&f.edge, &format!("{VIDEO}/watch"), &audio_cookie)
        .await
        .text();
    assert!(
        audio.contains(&format!("src=\"/o/{}\"", main.key)),
        "{audio}"
    );
    let catalog = get(&f.edge, "/", &[]).await.text();
    assert!(catalog.contains("Audio only 0.04 MB"), "{catalog}");
}

#[tokio::test]
async fn the_master_playlist_offers_them_as_alternative_audio() {
    let f = fixture().await;
    let got = get(&f.edge, &format!("{VIDEO}/master.m3u8?tier=3g"), &[]).await;
    let m = &got.text();
    assert_eq!(got.status, StatusCode::OK, "{m}");
    let eng = f.variant("audio-eng").playlist.clone().unwrap();
    let untagged = f.variant("audio-3").playlist.clone().unwrap();
    let audio: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(
        audio,
        [
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"km\",LANGUAGE=\"km\",DEFAULT=YES,AUTOSELECT=YES".to_owned(),
            format!("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"eng\",LANGUAGE=\"eng\",DEFAULT=NO,AUTOSELECT=YES,URI=\"/o/{eng}\""),
            format!("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"audio-3\",DEFAULT=NO,AUTOSELECT=YES,URI=\"/o/{untagged}\""),
        ],
        "{m}"
    );
    let lines: Vec<&str> = m.lines().collect();
    let mut streams = 0;
    for pair in lines.windows(2) {
        let [inf, uri] = pair else { continue };
        if !inf.starts_with("#EXT-X-STREAM-INF") {
            continue;
        }
        streams += 1;
        assert_eq!(inf.contains(",AUDIO=\"aud\""), inf.contains("avc1"), "{m}");
        assert!(!uri.contains(&eng.to_string()) && !uri.contains(&untagged.to_string()));
    }
    // 144p, 360p and the main audio-only rendition.
    assert_eq!(streams, 3, "{m}");
    // The player fetches the alternate's playlist at /o/, like any rung's.
    let playlist = get(&f.edge, &format!("/o/{eng}"), &[]).await;
    assert_eq!(playlist.status, StatusCode::OK);
    assert_eq!(
        playlist.header("content-type"),
        "application/vnd.apple.mpegurl"
    );
    let text = playlist.text();
    assert!(text.contains("# audio-eng"), "{text}");

    // The manifest API says what each variant is.
    let api = get(&f.edge, "/api/v1/modules/m1", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    let variants = json["assets"][0]["variants"].as_array().unwrap();
    let eng_json = variants.iter().find(|v| v["name"] == "audio-eng").unwrap();
    assert_eq!(eng_json["alternate"], true);
    assert_eq!(eng_json["language"], "eng");
}

#[tokio::test]
async fn captions_from_inside_the_video_reach_every_player() {
    let f = fixture().await;
    let master = get(&f.edge, &format!("{VIDEO}/master.m3u8?tier=2g"), &[])
        .await
        .text();
    let subtitles: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .collect();
    assert_eq!(
        subtitles,
        [
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"km\",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE=\"km\",URI=\"/m/m1/lessons/intro.mkv/captions/0.m3u8\"",
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"eng\",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE=\"eng\",URI=\"/m/m1/lessons/intro.mkv/captions/1.m3u8\"",
        ],
        "{master}"
    );
    // Each subtitle playlist points at its WebVTT object.
    for (n, key) in [(0, &f.beside), (1, &f.embedded)] {
        let playlist = get(&f.edge, &format!("{VIDEO}/captions/{n}.m3u8"), &[]).await;
        assert_eq!(playlist.status, StatusCode::OK, "{n}");
        let text = playlist.text();
        assert!(text.contains(&format!("\n/o/{key}\n")), "{n}: {text}");
    }
    assert_eq!(
        get(&f.edge, &format!("{VIDEO}/captions/2.m3u8"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let vtt = get(&f.edge, &format!("/o/{}", f.embedded), &[]).await;
    assert_eq!(vtt.status, StatusCode::OK);
    assert_eq!(vtt.header("content-type"), "text/vtt; charset=utf-8");
    assert_eq!(&vtt.body[..], EMBEDDED_VTT);

    // The lesson page's <video> gets a <track> for each, the module's language by default.
    let page = get(&f.edge, &format!("{VIDEO}/watch"), &[]).await.text();
    assert!(
        page.contains(&format!(
            "<track kind=\"subtitles\" src=\"/o/{}\" srclang=\"km\" label=\"ខ្មែរ\" default>",
            f.beside
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<track kind=\"subtitles\" src=\"/o/{}\" srclang=\"eng\" label=\"eng\">",
            f.embedded
        )),
        "{page}"
    );
    let api = get(&f.edge, "/api/v1/modules/m1", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(
        json["assets"][0]["captions"][1]["key"],
        f.embedded.to_string()
    );
}
