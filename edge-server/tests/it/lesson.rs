//! The teacher's pages through `Edge::handle`, without sockets: the catalog,
//! the lesson page, the picker's cookies, the Auto redirect and the
//! resumable download, on a memory store whose module has hostile names.

use http::StatusCode;
use lowband_catalog::manifest::{Asset, AssetKind, Caption, Manifest, Variant, VariantKind};
use lowband_catalog::{ContentHash, Store};
use lowband_edge::{Edge, EdgeConfig};

use crate::support::{get, put};

/// A video file name an author could give: quotes, markup, Khmer, a space.
const VIDEO: &str = "lessons/\"><img src=x onerror=alert(1)> ក 'x'.mp4";
const VIDEO_URL: &str =
    "/m/m1/lessons/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%20%E1%9E%80%20%27x%27.mp4";

async fn edge() -> Edge {
    let store = Store::open("memory://").unwrap();
    let bytes = |name: &str, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_add(name.len() as u8))
            .collect()
    };
    let mut variants = Vec::new();
    for (name, kind, tier, len, mime, ext) in [
        (
            "audio-opus",
            VariantKind::Audio,
            "slow-2g",
            1_700,
            "audio/webm",
            "webm",
        ),
        ("144p", VariantKind::Video, "2g", 2_900, "video/mp4", "mp4"),
        ("360p", VariantKind::Video, "3g", 7_400, "video/mp4", "mp4"),
        ("480p", VariantKind::Video, "4g", 10_200, "video/mp4", "mp4"),
        (
            "poster-jpeg",
            VariantKind::Image,
            "slow-2g",
            900,
            "image/jpeg",
            "jpg",
        ),
        (
            "poster-webp",
            VariantKind::Image,
            "slow-2g",
            700,
            "image/webp",
            "webp",
        ),
    ] {
        let key = put(&store, bytes(name, len), ext).await;
        variants.push(
            Variant::builder(name, kind, tier, key, len as u64, mime)
                .height(name.strip_suffix('p').and_then(|h| h.parse::<u32>().ok()))
                .build(),
        );
    }
    let vtt_key = put(&store, bytes("vtt", 40), "vtt").await;
    let vtt_path = VIDEO.replace(".mp4", ".km.vtt");
    let video = Asset::builder(VIDEO, AssetKind::Video)
        .source(17_000, "video/mp4")
        .duration(72.0)
        .variants(variants)
        .caption(Caption {
            path: vtt_path.clone(),
            language: Some("km".into()),
            key: None,
        });
    let captions = Asset::builder(&vtt_path, AssetKind::File)
        .source(17_000, "video/mp4")
        .derivation(ContentHash::of(b"v"))
        .variant(Variant::new(
            "identity",
            VariantKind::File,
            "slow-2g",
            vtt_key,
            40,
            "text/vtt",
        ));
    let manifest = Manifest::builder("m1")
        .title("ការសួរ <b>& \"questions\"")
        .language("km\"><x")
        .asset(video)
        .asset(captions)
        .build();
    store.publish(&manifest).await.unwrap();
    Edge::new(store, EdgeConfig::default())
}

/// Nothing a manifest holds can open an element or leave an attribute.
fn assert_escaped(html: &str) {
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(!html.contains("<x"), "{html}");
    assert!(
        !html.contains("\"><img") && !html.contains("km\"><x"),
        "{html}"
    );
}

#[tokio::test]
async fn lesson_page_states_each_cost_escapes_names_and_stays_small() {
    let edge = edge().await;
    let got = get(
        &edge,
        &format!("{VIDEO_URL}/watch"),
        &[("Accept", "image/webp,*/*")],
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(got.header("cache-control"), "private, no-cache");
    assert!(got.header("vary").contains("Cookie"));
    let html = &got.text();
    assert!(html.len() <= 14 * 1024, "{} bytes", html.len());
    assert_escaped(html);
    assert!(
        html.starts_with("<!doctype html><html lang=\"km&quot;&gt;&lt;x\">"),
        "{html}"
    );
    assert!(
        html.contains("ការសួរ &lt;b&gt;&amp; &quot;questions&quot;"),
        "{html}"
    );
    assert!(html.contains("Noto Sans Khmer"), "{html}");
    // Each a few kilobytes here, shown as 0.01 MB: never "0 MB" for a real file.
    for label in ["Audio only", "Data saver", "Standard", "Better"] {
        assert!(
            html.contains(&format!("{label} 0.01 MB")),
            "{label}: {html}"
        );
    }
    // Auto plays through the redirect; the poster is WebP for this client.
    assert!(
        html.contains(&format!("src=\"{VIDEO_URL}/play\"")),
        "{html}"
    );
    assert!(html.contains(".webp\""), "{html}");
    assert!(
        html.contains("srclang=\"km\" label=\"ខ្មែរ\" default"),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"{VIDEO_URL}/download?v=144p\" download")),
        "{html}"
    );
    for q in ["auto", "audio", "2g", "3g", "4g"] {
        assert!(html.contains(&format!("value=\"{q}\"")), "{q}: {html}");
    }
    assert!(html.contains("value=\"auto\" checked"), "{html}");

    let catalog = get(&edge, "/", &[]).await;
    assert_eq!(catalog.status, StatusCode::OK);
    let catalog = catalog.text();
    assert_escaped(&catalog);
    assert!(
        catalog.contains(&format!("href=\"{VIDEO_URL}/watch\"")),
        "{catalog}"
    );
    assert!(catalog.contains("1 lesson"), "{catalog}");
    assert!(catalog.contains("Data saver 0.01 MB"), "{catalog}");
}

#[tokio::test]
async fn the_picker_sets_cookies_and_the_page_follows_them() {
    let edge = edge().await;
    let got = get(&edge, &format!("{VIDEO_URL}/watch?q=2g"), &[]).await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.header("location"), format!("{VIDEO_URL}/watch"));
    let cookies: Vec<_> = got
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("lowband_tier=2g; Path=/;")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("lowband_quality=; ") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );

    let page = get(
        &edge,
        &format!("{VIDEO_URL}/watch"),
        &[("Cookie", "lowband_tier=2g")],
    )
    .await
    .text();
    assert!(page.contains("value=\"2g\" checked"), "{page}");
    assert!(
        page.contains("Data saver (144p): 0.01 MB for the whole lesson"),
        "{page}"
    );
    // The fixed choice plays its rung's immutable object, not the redirect.
    assert!(!page.contains("/play\""), "{page}");

    let audio = get(
        &edge,
        &format!("{VIDEO_URL}/watch"),
        &[("Cookie", "lowband_quality=audio; lowband_tier=slow-2g")],
    )
    .await
    .text();
    assert!(audio.contains("value=\"audio\" checked"), "{audio}");
    assert!(audio.contains(".webm\""), "{audio}");

    let bad = get(&edge, &format!("{VIDEO_URL}/watch?q=%3Cscript%3E"), &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = bad.text();
    assert!(bad.contains("\"error\":\"bad_request\""), "{bad}");
    assert!(!bad.contains("<script>"), "{bad}");
}

#[tokio::test]
async fn auto_redirects_to_the_rung_chosen_now() {
    let edge = edge().await;
    let slow = get(&edge, &format!("{VIDEO_URL}/play"), &[("ECT", "2g")]).await;
    assert_eq!(slow.status, StatusCode::FOUND);
    assert!(
        slow.header("location").starts_with("/o/objects/"),
        "{:?}",
        slow.headers
    );
    assert_eq!(slow.header("lowband-variant"), "144p; tier=2g; reason=ect");
    assert_eq!(slow.header("cache-control"), "no-store");
    let fast = get(&edge, &format!("{VIDEO_URL}/play"), &[("ECT", "4g")]).await;
    assert_eq!(fast.header("lowband-variant"), "480p; tier=4g; reason=ect");
    assert_ne!(fast.header("location"), slow.header("location"));
}

#[tokio::test]
async fn downloads_are_attachments_that_resume() {
    let edge = edge().await;
    let url = format!("{VIDEO_URL}/download?v=144p");
    let whole = get(&edge, &url, &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-length"), "2900");
    let disposition = whole.header("content-disposition");
    assert!(
        disposition
            == "attachment; filename=\"___img_src_x_onerror_alert_1______x_-144p.mp4\"; filename*=UTF-8''%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%20%E1%9E%80%20%27x%27-144p.mp4",
        "{disposition}"
    );
    let etag = whole.header("etag").to_owned();
    // A cut download asks for the rest, if the file is still the same.
    let rest = get(
        &edge,
        &url,
        &[("Range", "bytes=1000-"), ("If-Range", &etag)],
    )
    .await;
    assert_eq!(rest.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.header("content-range"), "bytes 1000-2899/2900");
    assert!(!rest.header("content-disposition").is_empty());

    for bad in ["", "?v=poster-jpeg", "?v=nope"] {
        let got = get(&edge, &format!("{VIDEO_URL}/download{bad}"), &[]).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{bad}: {}", got.text());
    }
    // Lesson routes exist only under videos.
    let vtt = VIDEO_URL.replace(".mp4", ".km.vtt");
    assert_eq!(
        get(&edge, &format!("{vtt}/watch"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&edge, "/m/m1/nothing.mp4/watch", &[]).await.status,
        StatusCode::NOT_FOUND
    );
}
