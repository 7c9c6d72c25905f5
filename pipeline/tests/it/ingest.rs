//! Ingest end to end on a small module: what lands in the store, that a
//! re-run uploads nothing, and that bad input publishes nothing.

use lowband_catalog::manifest::{AssetKind, VariantKind};
use lowband_catalog::{ContentHash, Store};

use crate::support;

#[tokio::test(flavor = "multi_thread")]
async fn ingest_publishes_everything_and_a_rerun_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = support::small_module(tmp.path());
    let store = Store::open("memory://").unwrap();

    let first = support::ingest(&dir, &store).await.unwrap();
    assert!(first.published);
    assert_eq!((first.assets, first.assets_reused), (3, 0));
    assert!(first.objects_uploaded > 0);

    let manifest = support::published(&store, "fixture").await;
    assert_eq!(manifest.module.title, "ការសួរសំណួរ");
    let video = manifest.asset("lessons/tiny.mp4").unwrap();
    let rungs: Vec<_> = video
        .variants_of(VariantKind::Video)
        .map(|v| (v.name.as_str(), v.height))
        .collect();
    assert_eq!(
        rungs,
        [("144p", Some(144))],
        "a 180p source gets only the rungs at or below its size"
    );
    assert!(video
        .variants_of(VariantKind::Audio)
        .any(|v| v.mime == "audio/mp4"));
    let rung = video.variants_of(VariantKind::Video).next().unwrap();
    assert!(
        rung.codecs.as_deref().unwrap().starts_with("avc1.4d"),
        "H.264 Main: {:?}",
        rung.codecs
    );
    assert!(rung.codecs.as_deref().unwrap().ends_with("mp4a.40.2"));
    assert!(
        (rung.duration.unwrap() - 2.0).abs() < 0.2,
        "{:?}",
        rung.duration
    );

    let image = manifest.asset("img/tiny.jpg").unwrap();
    assert_eq!(image.kind, AssetKind::Image);
    let formats: Vec<_> = image
        .variants
        .iter()
        .map(|v| (v.width, v.mime.as_str()))
        .collect();
    assert_eq!(
        formats,
        [
            (Some(200), "image/avif"),
            (Some(200), "image/webp"),
            (Some(200), "image/jpeg")
        ],
        "never upscaled, one width"
    );
    let placeholder = image.placeholder.as_deref().unwrap_or_default();
    assert!(
        placeholder.starts_with("data:image/webp;base64,") && placeholder.len() <= 1024,
        "{placeholder}"
    );

    // The page: a lite form for the 2G tiers, one full form for the rest (the
    // photo has a single width), each precompressed, plus the author's bytes.
    let page = manifest.asset("index.html").unwrap();
    let names: Vec<_> = page.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "slow-2g-identity",
            "slow-2g-br",
            "slow-2g-zstd",
            "slow-2g-gzip",
            "3g-identity",
            "3g-br",
            "3g-zstd",
            "3g-gzip",
            "original"
        ]
    );
    for v in &page.variants {
        match v.name.as_str() {
            "original" => assert_eq!(v.key.hash(), page.source.hash),
            _ => assert!(v.first_load_bytes.unwrap() >= v.bytes, "{}", v.name),
        }
    }

    // Every object named exists, has the recorded size and hashes to its key.
    for asset in &manifest.assets {
        for v in &asset.variants {
            let bytes = support::object(&store, &v.key.to_string()).await;
            assert_eq!(bytes.len() as u64, v.bytes, "{} {}", asset.path, v.name);
            assert_eq!(
                ContentHash::of(&bytes),
                v.key.hash(),
                "{} {}",
                asset.path,
                v.name
            );
        }
    }

    let again = support::ingest(&dir, &store).await.unwrap();
    assert!(
        !again.published,
        "an unchanged module leaves its manifest alone"
    );
    assert_eq!((again.objects_uploaded, again.bytes_uploaded), (0, 0));
    assert_eq!(again.assets_reused, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_named_and_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = support::small_module(tmp.path());
    let store = Store::open("memory://").unwrap();
    support::ingest(&dir, &store).await.unwrap();
    let manifest_key = "modules/fixture/manifest.json";
    let before = support::object(&store, manifest_key).await;

    let jpeg = std::fs::read(support::fixture("tiny.jpg")).unwrap();
    let noise: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("lessons/empty.mp4", Vec::new(), "the file is empty"),
        (
            "lessons/noise.mp4",
            noise.clone(),
            "not a readable audio or video file",
        ),
        ("img/noise.png", noise, "not a readable image"),
        ("img/cut.jpg", jpeg[..jpeg.len() / 3].to_vec(), "image"),
        ("page.html", vec![0xff, 0xfe, 0x00, 0x41], "not valid UTF-8"),
        (
            "lessons/escape.html",
            b"<p>See <a href=\"../../other/index.html\">the other module</a></p>".to_vec(),
            "link \"../../other/index.html\" leaves the module",
        ),
    ];
    for (name, bytes, reason) in cases {
        let file = dir.join(name);
        std::fs::write(&file, &bytes).unwrap();
        let result = support::ingest(&dir, &store).await;
        std::fs::remove_file(&file).unwrap();
        let err = match result {
            Ok(report) => panic!("{name}: ingest succeeded: {report:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&file.display().to_string()),
            "{name}: error does not name the file: {err}"
        );
        assert!(err.contains(reason), "{name}: {err}");
        assert!(!err.contains('\n'), "{name}: one line: {err}");
        let after = support::object(&store, manifest_key).await;
        assert_eq!(
            after, before,
            "{name}: the previous manifest stays as it was"
        );
    }

    let missing = tmp.path().join("no-such-module");
    let err = support::ingest(&missing, &store)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-module") && err.contains("No such file"),
        "{err}"
    );
}
