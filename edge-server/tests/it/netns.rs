//! The connection estimate on a real rate-limited link.
//!
//! A network namespace joined to this one by a veth pair whose edge-side
//! end is shaped with `tc qdisc ... tbf` (netem is not available on every
//! kernel; tbf is): a client in the namespace that sends no hints must be
//! measured as slow, the same client over loopback as fast. Needs root (or
//! CAP_NET_ADMIN) and `ip`, `tc` and `curl`; without them the test fails,
//! unless `LOWBAND_SKIP_NETNS=1` says to skip it.

#![cfg(target_os = "linux")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};
use lowband_catalog::{ContentHash, ObjectKey, Store};
use lowband_edge::{Edge, EdgeConfig, ServerConfig};

use crate::support::{put, run, Serving, ShapedLink};

/// The shaped link: 100 kbit/s is a 2G link by the default profile's tiers.
const RATE: &str = "100kbit";
/// Bytes fetched per request over it (about 4 s at 100 kbit/s).
const OBJECT_BYTES: usize = 48 * 1024;

/// A module with one video (a rung per tier) and one large object.
async fn store() -> (Store, ObjectKey) {
    let store = Store::open("memory://").unwrap();
    let big = Bytes::from((0..OBJECT_BYTES).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    let big_key = put(&store, big, "bin").await;
    let mut variants = Vec::new();
    for (name, tier) in [
        ("audio", "slow-2g"),
        ("144p", "2g"),
        ("360p", "3g"),
        ("480p", "4g"),
    ] {
        let key = put(&store, format!("{name} bytes"), "mp4").await;
        let kind = if name == "audio" {
            VariantKind::Audio
        } else {
            VariantKind::Video
        };
        variants.push(Variant::new(name, kind, tier, key, 10, "video/mp4"));
    }
    let video = Asset::builder("v.mp4", AssetKind::Video)
        .source(1, "video/mp4")
        .source_hash(ContentHash::of(b"v"))
        .variants(variants);
    let manifest = Manifest::builder("m").asset(video).build();
    store.publish(&manifest).await.unwrap();
    (store, big_key)
}

/// The `Lowband-Variant` header of a hint-less request for the video.
fn variant_header(curl_output: &str) -> String {
    curl_output
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("lowband-variant")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Lowband-Variant in {curl_output:?}"))
}

/// `curl` outside any namespace (loopback).
fn curl_here(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["curl"];
    all.extend_from_slice(args);
    run(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_link_is_measured_slow_and_loopback_fast() {
    if std::env::var("LOWBAND_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("skipped: LOWBAND_SKIP_NETNS=1");
        return;
    }
    let link = ShapedLink::create(RATE).unwrap_or_else(|e| {
        panic!(
            "cannot build the shaped test link ({e}); this test needs root or CAP_NET_ADMIN \
             and ip, tc and curl. Set LOWBAND_SKIP_NETNS=1 to skip it."
        )
    });

    let (store, big) = store().await;
    let edge = Edge::new(store, EdgeConfig::default());
    let serving = Serving::start(edge, Ipv4Addr::UNSPECIFIED, ServerConfig::default()).await;
    let (edge, port) = (Arc::clone(&serving.edge), serving.addr.port());

    // Over the shaped link: a few fetches of the object, two on one
    // connection and one on its own, then a video request without hints.
    let link = Arc::new(link);
    let shaped = SocketAddr::new(IpAddr::from(link.host_ip), port);
    let head = tokio::task::spawn_blocking({
        let link = Arc::clone(&link);
        let object = format!("http://{shaped}/o/{big}");
        let video = format!("http://{shaped}/m/m/v.mp4");
        move || -> Result<String, String> {
            let get = ["-sS", "--max-time", "60", "-o", "/dev/null"];
            link.curl(&[&get[..], &["-o", "/dev/null", &object, &object]].concat())?;
            link.curl(&[&get[..], &[object.as_str()]].concat())?;
            link.curl(&[
                "-sS",
                "--max-time",
                "10",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &video,
            ])
        }
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("over the shaped link: {e}"));
    let measured = edge.connection_estimate(link.peer_ip());
    eprintln!("shaped link ({RATE}): estimate {measured:?}");
    let label = variant_header(&head);
    assert!(
        label.contains("reason=connection")
            && (label.contains("tier=2g") || label.contains("tier=slow-2g")),
        "a hint-less client on a {RATE} link gets {label:?} (estimate {measured:?})"
    );
    // A hint still outranks the measurement.
    let hinted = tokio::task::spawn_blocking({
        let video = format!("http://127.0.0.1:{port}/m/m/v.mp4");
        move || curl_here(&["-sS", "-D", "-", "-o", "/dev/null", "-H", "ECT: 4g", &video])
    })
    .await
    .unwrap()
    .unwrap();
    assert!(variant_header(&hinted).contains("reason=ect"));

    // Over loopback, unshaped: the same requests make a fast link.
    let fast = tokio::task::spawn_blocking(move || {
        let object = format!("http://127.0.0.1:{port}/o/{big}");
        let video = format!("http://127.0.0.1:{port}/m/m/v.mp4");
        for _ in 0..3 {
            curl_here(&["-sS", "-o", "/dev/null", &object])?;
        }
        curl_here(&["-sS", "-D", "-", "-o", "/dev/null", &video])
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("over loopback: {e}"));
    let measured = edge.connection_estimate(IpAddr::from([127, 0, 0, 1]));
    eprintln!("loopback: estimate {measured:?}");
    let label = variant_header(&fast);
    assert!(
        label.contains("reason=connection") && label.contains("tier=4g"),
        "a hint-less client over loopback gets {label:?} (estimate {measured:?})"
    );

    serving.stop().await;
}
