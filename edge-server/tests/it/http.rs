//! The edge's HTTP behaviour, driven through `Edge::handle` without sockets
//! (and once over a real loopback socket), on a memory store holding a
//! hand-made module.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};
use lowband_catalog::{ContentHash, Store};
use lowband_edge::choose::estimate::TcpSample;
use lowband_edge::{ClientAddr, Edge, EdgeConfig, ServerConfig};

use crate::support::{get, request, Got, Serving};

/// name, kind, tier, bytes, mime, content-coding
type VariantSpec = (
    &'static str,
    VariantKind,
    &'static str,
    usize,
    &'static str,
    Option<&'static str>,
);
/// request headers, query, expected Lowband-Variant
type SignalCase = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

/// When the fixture's manifest was published (Unix seconds).
const PUBLISHED_AT: u64 = 1_700_000_000;

struct Fixture {
    edge: Edge,
    /// Bytes of each variant, by name.
    bodies: std::collections::HashMap<String, Bytes>,
}

fn bytes_for(name: &str, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(name.len() as u8))
            .collect::<Vec<_>>(),
    )
}

async fn fixture() -> Fixture {
    let store = Store::open("memory://").unwrap();
    let mut bodies = std::collections::HashMap::new();
    let mut manifest = Manifest::builder("m1")
        .title("Module <one>")
        .language("km")
        .published_at(PUBLISHED_AT);
    let specs: [(&str, AssetKind, &[VariantSpec]); 3] = [
        (
            "lessons/lecture.mp4",
            AssetKind::Video,
            &[
                ("144p", VariantKind::Video, "2g", 4_000, "video/mp4", None),
                ("360p", VariantKind::Video, "3g", 12_000, "video/mp4", None),
                ("480p", VariantKind::Video, "4g", 30_000, "video/mp4", None),
                (
                    "audio-aac",
                    VariantKind::Audio,
                    "slow-2g",
                    2_000,
                    "audio/mp4",
                    None,
                ),
            ],
        ),
        (
            "img/photo.jpg",
            AssetKind::Image,
            &[
                (
                    "w320-webp",
                    VariantKind::Image,
                    "slow-2g",
                    900,
                    "image/webp",
                    None,
                ),
                (
                    "w320-jpeg",
                    VariantKind::Image,
                    "slow-2g",
                    1_300,
                    "image/jpeg",
                    None,
                ),
                (
                    "w1280-webp",
                    VariantKind::Image,
                    "4g",
                    9_000,
                    "image/webp",
                    None,
                ),
                (
                    "w1280-jpeg",
                    VariantKind::Image,
                    "4g",
                    13_000,
                    "image/jpeg",
                    None,
                ),
            ],
        ),
        (
            "index.html",
            AssetKind::Page,
            &[
                (
                    "identity",
                    VariantKind::Page,
                    "slow-2g",
                    5_000,
                    "text/html; charset=utf-8",
                    None,
                ),
                (
                    "br",
                    VariantKind::Page,
                    "slow-2g",
                    1_100,
                    "text/html; charset=utf-8",
                    Some("br"),
                ),
                (
                    "gzip",
                    VariantKind::Page,
                    "slow-2g",
                    1_500,
                    "text/html; charset=utf-8",
                    Some("gzip"),
                ),
            ],
        ),
    ];
    for (path, kind, variants) in specs {
        let mut vs = Vec::new();
        // The page's identity copy is its author's bytes, as the pipeline keeps it.
        let mut source_hash = ContentHash::of(path.as_bytes());
        for &(name, vkind, tier, len, mime, encoding) in variants {
            let body = bytes_for(name, len);
            let (key, _) = store.put_object(body.clone(), "bin").await.unwrap();
            if kind == AssetKind::Page && encoding.is_none() {
                source_hash = ContentHash::of(&body);
            }
            bodies.insert(format!("{path}#{name}"), body);
            let playlist = match vkind {
                VariantKind::Video | VariantKind::Audio => {
                    let text = format!("#EXTM3U\n# {name}\n");
                    Some(store.put_object(Bytes::from(text), "m3u8").await.unwrap().0)
                }
                _ => None,
            };
            // Image variants are named for their width, as the pipeline names them.
            let width = (vkind == VariantKind::Image)
                .then(|| {
                    name.strip_prefix('w')?
                        .split('-')
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .flatten();
            vs.push(
                Variant::builder(name, vkind, tier, key, len as u64, mime)
                    .encoding(encoding)
                    .playlist(playlist)
                    .width(width)
                    .build(),
            );
        }
        manifest = manifest.asset(
            Asset::builder(path, kind)
                .source(99_999, "x")
                .source_hash(source_hash)
                .variants(vs),
        );
    }
    let manifest = manifest.build();
    store.publish(&manifest).await.unwrap();
    Fixture {
        edge: Edge::new(store, EdgeConfig::default()),
        bodies,
    }
}

const LECTURE: &str = "/m/m1/lessons/lecture.mp4";

#[tokio::test]
async fn every_signal_selects_a_tier() {
    let f = fixture().await;
    let cases: &[SignalCase] = &[
        (&[], "", "360p; tier=3g; reason=default"),
        (&[("ect", "2g")], "", "144p; tier=2g; reason=ect"),
        (&[("ect", "4g")], "", "480p; tier=4g; reason=ect"),
        (
            &[("ect", "slow-2g")],
            "",
            "audio-aac; tier=slow-2g; reason=ect",
        ),
        (&[("downlink", "0.1")], "", "144p; tier=2g; reason=downlink"),
        (&[("downlink", "20")], "", "480p; tier=4g; reason=downlink"),
        (&[("rtt", "1600")], "", "144p; tier=2g; reason=rtt"),
        (
            &[("save-data", "on")],
            "",
            "144p; tier=2g; reason=save-data",
        ),
        (
            &[("save-data", "on"), ("ect", "4g")],
            "",
            "144p; tier=2g; reason=save-data",
        ),
        (&[("ect", "2g")], "?tier=4g", "480p; tier=4g; reason=chosen"),
        (
            &[("cookie", "lowband_tier=slow-2g")],
            "",
            "audio-aac; tier=slow-2g; reason=chosen",
        ),
    ];
    for (headers, query, want) in cases {
        let got = get(&f.edge, &format!("{LECTURE}{query}"), headers).await;
        assert_eq!(got.status, StatusCode::OK, "{headers:?}");
        assert_eq!(got.header("lowband-variant"), *want, "{headers:?} {query}");
        let body_key = format!("lessons/lecture.mp4#{}", got.variant());
        assert_eq!(got.body, f.bodies[&body_key], "body of {want}");
    }
    let two_g = get(&f.edge, LECTURE, &[("ect", "2g")]).await;
    let four_g = get(&f.edge, LECTURE, &[("ect", "4g")]).await;
    assert!(two_g.body.len() * 5 < four_g.body.len());
}

#[tokio::test]
async fn the_connection_estimate_serves_clients_without_hints() {
    let f = fixture().await;
    let from = |ip: [u8; 4], headers: &[(&str, &str)]| {
        let mut req = Request::get(LECTURE);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(()).unwrap();
        req.extensions_mut().insert(ClientAddr(ip.into()));
        f.edge.handle(req)
    };
    let label = |r: http::Response<_>| r.headers()["lowband-variant"].to_str().unwrap().to_owned();
    // Nothing measured yet: the default tier.
    assert_eq!(
        label(from([10, 0, 0, 1], &[]).await),
        "360p; tier=3g; reason=default"
    );
    // 12.5 kB/s: a 100 kbit/s link.
    let slow = TcpSample {
        rate: 12_500,
        app_limited: false,
        min_rtt_us: 400_000,
    };
    f.edge.record_connection([10, 0, 0, 1].into(), &slow);
    let measured = from([10, 0, 0, 1], &[]).await;
    // No header explains the choice to a shared cache: only the client may keep it.
    assert_eq!(
        measured.headers()["cache-control"],
        "private, max-age=60, must-revalidate"
    );
    assert_eq!(label(measured), "144p; tier=2g; reason=connection");
    // Another client is not this one; hints and choices still outrank it.
    assert_eq!(
        label(from([10, 0, 0, 2], &[]).await),
        "360p; tier=3g; reason=default"
    );
    assert_eq!(
        label(from([10, 0, 0, 1], &[("ect", "4g")]).await),
        "480p; tier=4g; reason=ect"
    );
    assert_eq!(
        label(from([10, 0, 0, 1], &[("cookie", "lowband_tier=4g")]).await),
        "480p; tier=4g; reason=chosen"
    );
    let metrics = f.edge.metrics().render();
    for series in [
        "lowband_edge_selections_total{tier=\"2g\",reason=\"connection\"} 1",
        "lowband_edge_connection_samples_total{outcome=\"rate\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}

#[tokio::test]
async fn image_hints_size_the_image_and_pages_ask_for_them() {
    let f = fixture().await;
    let photo = "/m/m1/img/photo.jpg";
    let webp = ("accept", "image/webp,*/*");
    // A 4g client whose image shows 300 physical px wide gets the 320 px one.
    let small = get(
        &f.edge,
        photo,
        &[webp, ("ect", "4g"), ("sec-ch-width", "300")],
    )
    .await;
    assert_eq!(small.variant(), "w320-webp");
    let legacy = get(
        &f.edge,
        photo,
        &[
            webp,
            ("ect", "4g"),
            ("viewport-width", "200"),
            ("dpr", "1.5"),
        ],
    )
    .await;
    assert_eq!(legacy.variant(), "w320-webp");
    // Wider than that, or hostile: the tier decides.
    let wide = get(
        &f.edge,
        photo,
        &[webp, ("ect", "4g"), ("sec-ch-width", "900")],
    )
    .await;
    assert_eq!(wide.variant(), "w1280-webp");
    let junk = get(
        &f.edge,
        photo,
        &[
            webp,
            ("ect", "4g"),
            ("sec-ch-dpr", "NaN"),
            ("sec-ch-width", "-5"),
        ],
    )
    .await;
    assert_eq!(junk.variant(), "w1280-webp");
    let vary = small.header("vary");
    for hint in [
        "Sec-CH-Width",
        "Sec-CH-DPR",
        "Sec-CH-Viewport-Width",
        "Width",
        "DPR",
    ] {
        assert!(vary.contains(hint), "{hint} in {vary}");
    }
    // Pages ask for the hints (their subresources get them) but vary only
    // on Accept-Encoding, and never ask for a retry.
    for page in ["/m/m1/index.html", "/"] {
        let got = get(&f.edge, page, &[("sec-fetch-mode", "navigate")]).await;
        assert!(
            got.header("accept-ch").contains("Sec-CH-Width")
                && got.header("accept-ch").contains("ECT"),
            "{page}"
        );
        assert_eq!(got.header("critical-ch"), "", "{page}");
    }
    // A navigation straight to a video without ECT asks for it once.
    let nav = get(&f.edge, LECTURE, &[("sec-fetch-mode", "navigate")]).await;
    assert_eq!(nav.header("critical-ch"), "ECT");
    let with_ect = get(
        &f.edge,
        LECTURE,
        &[("sec-fetch-mode", "navigate"), ("ect", "2g")],
    )
    .await;
    assert_eq!(with_ect.header("critical-ch"), "");
    assert_eq!(get(&f.edge, LECTURE, &[]).await.header("critical-ch"), "");
}

#[tokio::test]
async fn negotiated_responses_carry_their_headers() {
    let f = fixture().await;
    let got = get(&f.edge, LECTURE, &[("ect", "2g")]).await;
    assert!(got.header("vary").contains("ECT") && got.header("vary").contains("Save-Data"));
    assert!(
        got.header("accept-ch").contains("ECT") && got.header("accept-ch").contains("Downlink")
    );
    let key = ContentHash::of(&got.body).to_hex();
    assert_eq!(got.header("etag"), format!("\"{key}\""));
    assert!(got.header("content-location").starts_with("/o/objects/"));
    assert!(got.header("content-location").contains(&key));
    assert_eq!(got.header("content-type"), "video/mp4");
    assert_eq!(got.header("content-length"), got.body.len().to_string());
    assert_eq!(got.header("accept-ranges"), "bytes");
    assert_eq!(
        got.header("cache-control"),
        "public, max-age=60, must-revalidate"
    );
    assert_eq!(got.header("last-modified"), "Tue, 14 Nov 2023 22:13:20 GMT");

    // The immutable object behind Content-Location serves the same bytes.
    let object = get(&f.edge, got.header("content-location"), &[]).await;
    assert_eq!(object.status, StatusCode::OK);
    assert_eq!(object.body, got.body);
    assert_eq!(
        object.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn images_and_pages_negotiate_format_and_coding() {
    let f = fixture().await;
    let webp = get(
        &f.edge,
        "/m/m1/img/photo.jpg",
        &[("accept", "image/avif,image/webp,*/*"), ("ect", "slow-2g")],
    )
    .await;
    assert_eq!(webp.variant(), "w320-webp");
    assert_eq!(webp.header("content-type"), "image/webp");
    let jpeg = get(
        &f.edge,
        "/m/m1/img/photo.jpg",
        &[("accept", "image/*"), ("ect", "4g")],
    )
    .await;
    assert_eq!(jpeg.variant(), "w1280-jpeg");

    let br = get(
        &f.edge,
        "/m/m1/index.html",
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!((br.variant(), br.header("content-encoding")), ("br", "br"));
    let gz = get(&f.edge, "/m/m1/index.html", &[("accept-encoding", "gzip")]).await;
    assert_eq!(
        (gz.variant(), gz.header("content-encoding")),
        ("gzip", "gzip")
    );
    let plain = get(&f.edge, "/m/m1/index.html", &[]).await;
    assert_eq!(
        (plain.variant(), plain.header("content-encoding")),
        ("identity", "")
    );
    assert_eq!(plain.body, f.bodies["index.html#identity"]);
    // The module root serves its index page.
    assert_eq!(
        get(&f.edge, "/m/m1/", &[]).await.body,
        f.bodies["index.html#identity"]
    );
}

#[tokio::test]
async fn ranges_and_conditionals() {
    let f = fixture().await;
    let full = get(&f.edge, LECTURE, &[("ect", "2g")]).await;
    let etag = full.header("etag").to_owned();

    let part = get(
        &f.edge,
        LECTURE,
        &[("ect", "2g"), ("range", "bytes=100-199")],
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.header("content-range"),
        format!("bytes 100-199/{}", full.body.len())
    );
    assert_eq!(part.body, full.body.slice(100..200));

    let suffix = get(&f.edge, LECTURE, &[("ect", "2g"), ("range", "bytes=-10")]).await;
    assert_eq!(suffix.body, full.body.slice(full.body.len() - 10..));

    let open = get(&f.edge, LECTURE, &[("ect", "2g"), ("range", "bytes=3990-")]).await;
    assert_eq!(open.body, full.body.slice(3990..));

    let beyond = get(
        &f.edge,
        LECTURE,
        &[("ect", "2g"), ("range", "bytes=999999-")],
    )
    .await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.header("content-range"),
        format!("bytes */{}", full.body.len())
    );

    let stale = get(
        &f.edge,
        LECTURE,
        &[
            ("ect", "2g"),
            ("range", "bytes=0-9"),
            ("if-range", "\"old\""),
        ],
    )
    .await;
    assert_eq!(
        (stale.status, stale.body.len()),
        (StatusCode::OK, full.body.len())
    );
    let fresh = get(
        &f.edge,
        LECTURE,
        &[("ect", "2g"), ("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(
        (fresh.status, fresh.body.len()),
        (StatusCode::PARTIAL_CONTENT, 10)
    );

    let cached = get(&f.edge, LECTURE, &[("ect", "2g"), ("if-none-match", &etag)]).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), etag);
    assert!(cached.header("vary").contains("ECT"));
    // A different variant does not match the 2G client's validator.
    let other = get(&f.edge, LECTURE, &[("ect", "4g"), ("if-none-match", &etag)]).await;
    assert_eq!(other.status, StatusCode::OK);

    let head = request(&f.edge, Method::HEAD, LECTURE, &[("ect", "2g")]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), full.body.len().to_string());
}

#[tokio::test]
async fn errors_are_clear_and_contained() {
    let f = fixture().await;
    for (uri, status, code) in [
        ("/m/m1/missing.mp4", StatusCode::NOT_FOUND, "not_found"),
        ("/m/nope/index.html", StatusCode::NOT_FOUND, "not_found"),
        (
            "/m/m1/%2e%2e/m2/index.html",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/m/m1/lessons%2flecture.mp4",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        ("/m/m1/a%00b", StatusCode::BAD_REQUEST, "bad_request"),
        (
            "/o/objects/00/short.mp4",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        ("/nothing-here", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let got = get(&f.edge, uri, &[]).await;
        assert_eq!(got.status, status, "{uri}");
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(json["error"], code, "{uri}");
        assert_eq!(got.header("content-type"), "application/json");
    }
    let post = request(&f.edge, Method::POST, LECTURE, &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET, HEAD");
    // The purge route takes POST only, and says so (it said GET, HEAD).
    for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
        let wrong = request(&f.edge, method.clone(), "/admin/v1/purge/m1", &[]).await;
        assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(wrong.header("allow"), "POST", "{method}");
    }
}

/// Objects are typed by their key's extension, AVIF included: every AVIF a
/// page names is fetched as `/o/<key>.avif`, and went out as
/// `application/octet-stream`.
#[tokio::test]
async fn objects_carry_their_media_type() {
    let store = Store::open("memory://").unwrap();
    let mut keys = Vec::new();
    for ext in [
        "avif", "webp", "jpg", "gif", "mp4", "m4a", "webm", "vtt", "m3u8", "mp3",
    ] {
        let (key, _) = store
            .put_object(Bytes::from(format!("bytes of a {ext}")), ext)
            .await
            .unwrap();
        keys.push((ext, key));
    }
    let edge = Edge::new(store, EdgeConfig::default());
    for (ext, key) in keys {
        let got = get(&edge, &format!("/o/{key}"), &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{ext}");
        let expected = match ext {
            "avif" => "image/avif",
            "webp" => "image/webp",
            "jpg" => "image/jpeg",
            "gif" => "image/gif",
            "mp4" => "video/mp4",
            "m4a" => "audio/mp4",
            "webm" => "video/webm",
            "vtt" => "text/vtt; charset=utf-8",
            "m3u8" => "application/vnd.apple.mpegurl",
            _ => "audio/mpeg",
        };
        assert_eq!(got.header("content-type"), expected, "{ext}");
    }
}

#[tokio::test]
async fn api_and_health() {
    let f = fixture().await;
    let index = get(&f.edge, "/api/v1/modules", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&index.body).unwrap();
    assert_eq!(json["modules"][0]["id"], "m1");
    assert!(json["modules"][0]["bytes_by_tier"]["2g"].as_u64().unwrap() > 0);
    let manifest = get(&f.edge, "/api/v1/modules/m1", &[]).await;
    let m = Manifest::from_json("api", &manifest.body).unwrap();
    assert_eq!(m.assets.len(), 3);
    let again = get(
        &f.edge,
        "/api/v1/modules/m1",
        &[("if-none-match", manifest.header("etag"))],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(get(&f.edge, "/healthz", &[]).await.body, "ok\n");
    let catalog = get(&f.edge, "/", &[]).await;
    let html = String::from_utf8(catalog.body.to_vec()).unwrap();
    assert!(
        html.contains("Module &lt;one&gt;") && html.contains("/m/m1/"),
        "{html}"
    );
}

#[tokio::test]
async fn serves_over_a_real_socket_with_keep_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = fixture().await;
    let expected = f.bodies["lessons/lecture.mp4#144p"].clone();
    let serving = Serving::start(f.edge, Ipv4Addr::LOCALHOST, ServerConfig::default()).await;
    let addr = serving.addr;

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {LECTURE} HTTP/1.1\r\nHost: x\r\nECT: 2g\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 200 OK"),
        "{}",
        &text[..80.min(text.len())]
    );
    assert!(text.contains("lowband-variant: 144p"));
    let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&raw[body_start..body_start + expected.len()], &expected[..]);
    assert!(
        text.ends_with("ok\n"),
        "second request on the same connection answered"
    );

    serving.stop().await;
}

/// Splits a `multipart/byteranges` body into (Content-Range, bytes) parts.
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("a multipart content type");
    let delimiter = format!("\r\n--{boundary}");
    let text = body.to_vec();
    let mut parts = Vec::new();
    let mut at = 0;
    let find = |from: usize, needle: &[u8]| {
        text[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    assert!(text.ends_with(format!("{delimiter}--\r\n").as_bytes()));
    while let Some(start) = find(at, delimiter.as_bytes()) {
        let after = start + delimiter.len();
        if text[after..].starts_with(b"--") {
            break;
        }
        let head_end = find(after, b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&text[after..head_end]).to_string();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .unwrap()
            .to_owned();
        let (_, span) = range.split_once(' ').unwrap();
        let (span, _) = span.split_once('/').unwrap();
        let (s, e) = span.split_once('-').unwrap();
        let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
        parts.push((range, text[head_end..head_end + (e - s + 1)].to_vec()));
        at = head_end + (e - s + 1);
    }
    parts
}

#[tokio::test]
async fn multiple_ranges_get_a_multipart_answer() {
    let f = fixture().await;
    let full = f.bodies["lessons/lecture.mp4#144p"].clone();
    let len = full.len();
    let two = get(
        &f.edge,
        LECTURE,
        &[("ect", "2g"), ("range", "bytes=3000-3099, 0-9,5-19")],
    )
    .await;
    assert_eq!(two.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(two.header("content-length"), two.body.len().to_string());
    assert!(two.header("content-range").is_empty());
    let parts = multipart_parts(two.header("content-type"), &two.body);
    assert_eq!(
        parts,
        vec![
            (format!("bytes 0-19/{len}"), full[0..20].to_vec()),
            (format!("bytes 3000-3099/{len}"), full[3000..3100].to_vec()),
        ],
        "sorted, overlapping ranges merged"
    );
    assert!(String::from_utf8_lossy(&two.body).contains("Content-Type: video/mp4\r\n"));

    // Ranges that coalesce into one are a plain single-range answer.
    let one = get(
        &f.edge,
        LECTURE,
        &[("ect", "2g"), ("range", "bytes=0-9,10-19")],
    )
    .await;
    assert_eq!(one.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(one.header("content-range"), format!("bytes 0-19/{len}"));
    assert_eq!(one.body, full.slice(0..20));

    // Past the bound the header is ignored: the whole object, 200.
    let many: Vec<String> = (0..17)
        .map(|i| format!("{}-{}", i * 100, i * 100))
        .collect();
    let range = format!("bytes={}", many.join(","));
    let all = get(&f.edge, LECTURE, &[("ect", "2g"), ("range", &range)]).await;
    assert_eq!((all.status, all.body.len()), (StatusCode::OK, len));

    // HEAD announces the exact multipart length without reading the object.
    let head = request(
        &f.edge,
        Method::HEAD,
        LECTURE,
        &[("ect", "2g"), ("range", "bytes=3000-3099, 0-9,5-19")],
    )
    .await;
    assert_eq!(head.status, StatusCode::PARTIAL_CONTENT);
    assert!(head.body.is_empty());
    let announced: usize = head.header("content-length").parse().unwrap();
    // Boundaries differ per response but have the same length.
    assert_eq!(announced, two.body.len());

    // On an /o/ object too, and unsatisfiable members are dropped.
    let object = get(
        &f.edge,
        two.header("content-location"),
        &[("range", "bytes=0-1,999999-,-2")],
    )
    .await;
    let parts = multipart_parts(object.header("content-type"), &object.body);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].1, full[len - 2..].to_vec());
}

#[tokio::test]
async fn last_modified_and_if_modified_since() {
    let f = fixture().await;
    let published = "Tue, 14 Nov 2023 22:13:20 GMT";
    let later = "Wed, 15 Nov 2023 00:00:00 GMT";
    let earlier = "Mon, 13 Nov 2023 00:00:00 GMT";
    for uri in [
        LECTURE,
        "/api/v1/modules/m1",
        "/api/v1/modules",
        "/",
        "/m/m1/lessons/lecture.mp4/master.m3u8",
    ] {
        let got = get(&f.edge, uri, &[]).await;
        assert_eq!(got.header("last-modified"), published, "{uri}");
        let same = get(&f.edge, uri, &[("if-modified-since", published)]).await;
        assert_eq!(same.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(same.body.is_empty());
        let after = get(&f.edge, uri, &[("if-modified-since", later)]).await;
        assert_eq!(after.status, StatusCode::NOT_MODIFIED, "{uri}");
        let before = get(&f.edge, uri, &[("if-modified-since", earlier)]).await;
        assert_eq!(before.status, StatusCode::OK, "{uri}");
        // If-None-Match decides when both are sent (RFC 9110 §13.2.2).
        let stale_tag = get(
            &f.edge,
            uri,
            &[("if-none-match", "\"stale\""), ("if-modified-since", later)],
        )
        .await;
        assert_eq!(stale_tag.status, StatusCode::OK, "{uri}");
        let good_tag = get(
            &f.edge,
            uri,
            &[
                ("if-none-match", got.header("etag")),
                ("if-modified-since", earlier),
            ],
        )
        .await;
        assert_eq!(good_tag.status, StatusCode::NOT_MODIFIED, "{uri}");
    }
    // /o/ objects take the store's modification time: a memory store's is
    // the time of the put, which is now-ish and not in the future.
    let lecture = get(&f.edge, LECTURE, &[("ect", "2g")]).await;
    let object = get(&f.edge, lecture.header("content-location"), &[]).await;
    let stored = httpdate::parse_http_date(object.header("last-modified")).unwrap();
    let age = std::time::SystemTime::now()
        .duration_since(stored)
        .expect("Last-Modified is not in the future");
    assert!(age.as_secs() < 600, "{age:?}");
    let revalidated = get(
        &f.edge,
        lecture.header("content-location"),
        &[("if-modified-since", object.header("last-modified"))],
    )
    .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        revalidated.header("cache-control"),
        "public, max-age=31536000, immutable"
    );

    let failed = get(&f.edge, LECTURE, &[("if-match", "\"other\"")]).await;
    assert_eq!(failed.status, StatusCode::PRECONDITION_FAILED);
    let json: serde_json::Value = serde_json::from_slice(&failed.body).unwrap();
    assert_eq!(json["error"], "precondition_failed");
    let unmodified = get(&f.edge, LECTURE, &[("if-unmodified-since", earlier)]).await;
    assert_eq!(unmodified.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn cache_control_is_long_for_objects_short_for_the_rest() {
    let f = fixture().await;
    let revalidate = "public, max-age=60, must-revalidate";
    for uri in [
        LECTURE,
        "/m/m1/index.html",
        "/m/m1/lessons/lecture.mp4/master.m3u8",
        "/api/v1/modules",
        "/api/v1/modules/m1",
        "/",
    ] {
        assert_eq!(
            get(&f.edge, uri, &[]).await.header("cache-control"),
            revalidate,
            "{uri}"
        );
    }
    for uri in ["/healthz", "/nothing-here", "/m/m1/missing.mp4"] {
        assert_eq!(
            get(&f.edge, uri, &[]).await.header("cache-control"),
            "no-store",
            "{uri}"
        );
    }
}

#[tokio::test]
async fn no_transform_gets_the_original_where_one_exists() {
    let f = fixture().await;
    let br = [("accept-encoding", "br, gzip")];
    let usual = get(&f.edge, "/m/m1/index.html", &br).await;
    assert_eq!(usual.header("content-encoding"), "br");
    // A page's bytes depend on the content-coding (and no-transform) only:
    // the link hints would split a shared cache's entries for nothing.
    assert_eq!(usual.header("vary"), "Accept-Encoding, Cache-Control");

    let original = get(
        &f.edge,
        "/m/m1/index.html",
        &[
            ("accept-encoding", "br, gzip"),
            ("cache-control", "no-cache, no-transform"),
        ],
    )
    .await;
    assert_eq!(original.status, StatusCode::OK);
    assert_eq!(original.header("content-encoding"), "");
    assert_eq!(original.body, f.bodies["index.html#identity"]);
    assert!(original
        .header("lowband-variant")
        .starts_with("identity; tier="));
    assert!(original
        .header("lowband-variant")
        .ends_with("; no-transform=original"));

    // A video has no stored original: the usual rung, and the header says so.
    let video = get(
        &f.edge,
        LECTURE,
        &[("ect", "2g"), ("cache-control", "no-transform")],
    )
    .await;
    assert_eq!(
        video.header("lowband-variant"),
        "144p; tier=2g; reason=ect; no-transform=unavailable"
    );
    assert!(!video.header("vary").contains("Cache-Control"));
}

#[tokio::test]
async fn readiness_reports_the_store_and_the_index() {
    let f = fixture().await;
    let ready = get(&f.edge, "/readyz", &[]).await;
    assert_eq!(ready.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&ready.body).unwrap();
    assert_eq!(json, serde_json::json!({ "ready": true, "modules": 1 }));
    assert_eq!(ready.header("cache-control"), "no-store");

    let reason = |got: &Got| -> String {
        assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE);
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(json["ready"], false);
        json["reason"].as_str().unwrap().to_owned()
    };
    let empty = Edge::new(Store::open("memory://").unwrap(), EdgeConfig::default());
    assert_eq!(reason(&get(&empty, "/readyz", &[]).await), "index_missing");
    // Liveness does not depend on the store.
    assert_eq!(get(&empty, "/healthz", &[]).await.status, StatusCode::OK);

    let store = Store::open("memory://").unwrap();
    let index = object_store::path::Path::from("modules/index.json");
    object_store::ObjectStoreExt::put(store.inner().as_ref(), &index, "{not json".into())
        .await
        .unwrap();
    let corrupt = Edge::new(store, EdgeConfig::default());
    assert_eq!(
        reason(&get(&corrupt, "/readyz", &[]).await),
        "index_unreadable"
    );

    // An S3 endpoint nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_bucket_name("lowband")
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
    let down = Edge::new(
        Store::from_object_store(Arc::new(s3), "s3://lowband"),
        EdgeConfig::default(),
    );
    let got = get(&down, "/readyz", &[]).await;
    assert_eq!(reason(&got), "store_unavailable");
    assert!(!String::from_utf8_lossy(&got.body).contains("127.0.0.1"));
}

#[tokio::test]
async fn metrics_count_requests_bytes_savings_and_store_latency() {
    let f = fixture().await;
    let two_g = get(&f.edge, LECTURE, &[("ect", "2g")]).await;
    let _ = get(&f.edge, LECTURE, &[("ect", "2g"), ("range", "bytes=0-9")]).await;
    let _ = request(&f.edge, Method::HEAD, LECTURE, &[("save-data", "on")]).await;
    let absent = lowband_catalog::ObjectKey::for_bytes(b"absent", "mp4");
    let _ = get(&f.edge, &format!("/o/{absent}"), &[]).await;
    let _ = get(
        &f.edge,
        "/m/m1/lessons/lecture.mp4/master.m3u8",
        &[("ect", "4g")],
    )
    .await;
    let got = get(&f.edge, "/metrics", &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(got.body.to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let asset_2g = "{route=\"asset\",tier=\"2g\",status=\"2xx\"}";
    // GET 200, GET 206 and the Save-Data HEAD (capped at 2g).
    assert_eq!(
        value(&format!("lowband_edge_requests_total{asset_2g}")),
        3.0
    );
    assert_eq!(
        value(&format!("lowband_edge_response_bytes_total{asset_2g}")),
        (two_g.body.len() + 10) as f64
    );
    // Only the whole GET counts: the source was 99,999 bytes, 4,000 were sent.
    assert_eq!(
        value("lowband_edge_bytes_saved_total{tier=\"2g\"}"),
        (99_999 - 4_000) as f64
    );
    assert_eq!(
        value("lowband_edge_selections_total{tier=\"2g\",reason=\"ect\"}"),
        2.0
    );
    assert_eq!(
        value("lowband_edge_selections_total{tier=\"2g\",reason=\"save-data\"}"),
        1.0
    );
    assert_eq!(
        value("lowband_edge_requests_total{route=\"object\",tier=\"none\",status=\"4xx\"}"),
        1.0
    );
    assert_eq!(
        value("lowband_edge_requests_total{route=\"playlist\",tier=\"4g\",status=\"2xx\"}"),
        1.0
    );
    assert_eq!(
        value("lowband_edge_store_seconds_count{op=\"manifest\"}"),
        1.0
    );
    assert!(value("lowband_edge_store_seconds_count{op=\"get\"}") >= 2.0);
    assert_eq!(value("lowband_edge_store_seconds_count{op=\"head\"}"), 1.0);
    assert!(text.contains("# TYPE lowband_edge_store_seconds histogram\n"));
}
