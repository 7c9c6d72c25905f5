//! The lesson page in a real browser on a real slow link.
//!
//! The sample module is ingested (into a store under the target directory,
//! so a re-run reuses it), the edge serves it on this side of a veth pair
//! shaped with `tc ... tbf`, and headless Chromium (Debian's, driven by
//! playwright-core through `tests/browser/lesson.mjs`) runs inside the
//! namespace at the other end: once on a 2G-like link (100 kbit/s), once on
//! a 3G-like one (600 kbit/s). Chromium sends no client hints over plain
//! HTTP, and the edge's default tier is 3g, so the 2G client gets the small
//! rung only if the edge measured its link (`TCP_INFO`).
//!
//! Checked: the page loads (UTF-8, `lang`, captions, each choice's cost,
//! under 14 KB), the video plays (its `currentTime` advances), the 2G client
//! fetched a 2G rung once its link had been measured (from the requests it
//! made; a first visit may play before that), the video bytes it used
//! stay under the size the page advertised for that rung, and the picker
//! works without JavaScript and is remembered.
//!
//! Needs root (or CAP_NET_ADMIN), `ip`, `tc`, `node`, Debian's `chromium`
//! and playwright-core (`scripts/install-deps.sh --test`); without them it
//! fails, unless `LOWBAND_SKIP_NETNS=1` or `LOWBAND_SKIP_BROWSER=1` says to skip.

#![cfg(target_os = "linux")]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lowband_catalog::manifest::Manifest;
use lowband_catalog::{ModuleId, Profile, Store};
use lowband_edge::{Edge, EdgeConfig, ServerConfig};
use serde_json::Value;

use crate::support::{self, Serving, ShapedLink};

const MODULE: &str = "teaching-questions";
const LESSON: &str = "lessons/lecture.mp4";
/// The lesson page's budget before media: one round trip's worth on a slow link.
const PAGE_BUDGET: u64 = 14 * 1024;
/// How long one browser run may take, at most (it normally takes seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn skip() -> bool {
    for var in ["LOWBAND_SKIP_NETNS", "LOWBAND_SKIP_BROWSER"] {
        if std::env::var(var).as_deref() == Ok("1") {
            eprintln!("skipped: {var}=1");
            return true;
        }
    }
    false
}

/// Where `scripts/install-deps.sh --test` put playwright-core.
fn node_modules() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWBAND_NODE_MODULES") {
        return PathBuf::from(dir);
    }
    support::tools_dir().join("browser-node/node_modules")
}

/// Ingests the sample module into a store kept under the target directory;
/// an unchanged module is reused, not re-encoded.
async fn sample_store() -> (Store, Manifest) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-store");
    let store = Store::open(&format!("file://{}", dir.display())).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let options = lowband_pipeline::IngestOptions {
        dir: samples.join(MODULE),
        profile: Profile::builtin_default(),
        module_id: None,
    };
    lowband_pipeline::ingest(&options, &store, Arc::new(lowband_pipeline::Silent))
        .await
        .unwrap_or_else(|e| panic!("ingesting the sample module: {e}"));
    let manifest = store
        .manifest(&ModuleId::parse(MODULE).unwrap())
        .await
        .unwrap()
        .expect("the sample module is published");
    (store, manifest)
}

/// Runs `lesson.mjs` inside the link's namespace; returns its report.
fn browse(link: &ShapedLink, url: &str, extra: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/lesson.mjs");
    let modules = node_modules();
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is not installed in {} (scripts/install-deps.sh --test installs it, \
         with chromium and node); LOWBAND_SKIP_BROWSER=1 skips this test",
        modules.display()
    );
    let timeout = RUN_TIMEOUT.as_secs().to_string();
    let out = Command::new("timeout")
        .args([&timeout, "ip", "netns", "exec", &link.ns, "node"])
        .arg(&script)
        .arg(url)
        .args(extra)
        .env("LOWBAND_NODE_MODULES", &modules)
        .output()
        .expect("timeout, ip and node run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "lesson.mjs printed no report ({e}; exit {:?}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        report.get("error").is_none(),
        "the browser run failed: {}",
        report["error"]
    );
    report
}

/// What one run fetched of the video: the rung (by its `data-src`), the
/// bytes of every request for it, and the redirect that chose it.
struct Played<'a> {
    offer: &'a Value,
    bytes: u64,
    chosen_by: String,
}

fn played(report: &Value) -> Played<'_> {
    let offers = report["page"]["offers"].as_array().expect("offers listed");
    let requests = report["requests"].as_array().expect("requests recorded");
    let media: Vec<(&Value, &Value)> = requests
        .iter()
        .filter_map(|r| {
            let url = r["url"].as_str()?;
            let offer = offers
                .iter()
                .find(|o| o["src"].as_str().is_some_and(|src| url.ends_with(src)))?;
            Some((r, offer))
        })
        .collect();
    assert!(!media.is_empty(), "no request for any rung: {requests:#?}");
    let offer = media[0].1;
    assert!(
        media.iter().all(|(_, o)| o["src"] == offer["src"]),
        "the player fetched more than one rung: {media:#?}"
    );
    let chosen_by = requests
        .iter()
        .find(|r| r["url"].as_str().is_some_and(|u| u.ends_with("/play")) && r["status"] == 302)
        .and_then(|r| r["headers"]["lowband-variant"].as_str())
        .unwrap_or_default()
        .to_owned();
    Played {
        offer,
        bytes: media
            .iter()
            .map(|(r, _)| r["bytes"].as_u64().unwrap_or(0))
            .sum(),
        chosen_by,
    }
}

/// The checks every run makes of the page and the playback.
fn check_page_and_playback(name: &str, report: &Value) {
    let page = &report["page"];
    assert_eq!(report["status"], 200, "{name}: {report}");
    assert_eq!(page["charset"], "UTF-8", "{name}");
    assert_eq!(page["lang"], "km", "{name}: the module's language");
    let costs = page["costs"].as_str().unwrap_or_default();
    for label in ["Audio only", "Data saver", "Standard", "Better"] {
        assert!(
            costs.contains(label),
            "{name}: costs line {costs:?} lacks {label}"
        );
    }
    assert!(costs.contains("MB"), "{name}: {costs:?}");
    let tracks = page["tracks"].as_array().unwrap();
    assert!(
        tracks
            .iter()
            .any(|t| t["srclang"] == "km" && t["default"] == true),
        "{name}: Khmer captions by default: {tracks:?}"
    );
    let khmer = &page["khmerWidth"];
    assert!(
        khmer["khmer"].as_f64() != khmer["tofu"].as_f64(),
        "{name}: Khmer text drawn as missing glyphs: {khmer}"
    );
    // The page itself, as it came over the wire (headers included).
    let requests = report["requests"].as_array().unwrap();
    let page_bytes = requests
        .iter()
        .find(|r| r["url"].as_str().is_some_and(|u| u.ends_with("/watch")))
        .and_then(|r| r["bytes"].as_u64())
        .expect("the page request");
    assert!(
        page_bytes <= PAGE_BUDGET,
        "{name}: the lesson page took {page_bytes} bytes, over {PAGE_BUDGET}"
    );
    let video = &report["video"];
    assert!(
        video["error"].is_null() && video["currentTime"].as_f64().unwrap_or(0.0) >= 3.0,
        "{name}: the video did not play: {video}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_page_plays_the_small_rung_on_2g_and_remembers_a_choice_without_js() {
    if skip() {
        return;
    }
    let (store, manifest) = sample_store().await;
    let lesson = manifest.asset(LESSON).expect("the lecture");
    let tier_of = |variant: &str| {
        lesson
            .variants
            .iter()
            .find(|v| v.name == variant)
            .and_then(|v| manifest.tier_rank(&v.tier))
            .unwrap_or_else(|| panic!("no variant {variant:?}"))
    };

    // The default tier is 3g: a 2G choice can only come from the measured link.
    let edge = Edge::new(store, EdgeConfig::default());
    let serving = Serving::start(edge, Ipv4Addr::UNSPECIFIED, ServerConfig::default()).await;
    let (edge, port) = (Arc::clone(&serving.edge), serving.addr.port());

    // Each visit is a fresh browser (empty cache) on the same link, so the
    // same client address: what earlier visits measured carries over.
    let run = |rate: &'static str, visits: &'static [&'static [&'static str]]| {
        tokio::task::spawn_blocking(move || {
            let link = ShapedLink::create(rate).unwrap_or_else(|e| {
                panic!(
                    "cannot build the shaped test link ({e}); this test needs root or \
                     CAP_NET_ADMIN and ip and tc. LOWBAND_SKIP_NETNS=1 skips it."
                )
            });
            let host = std::net::IpAddr::from(link.host_ip);
            let url = format!("http://{host}:{port}/m/{MODULE}/{LESSON}/watch");
            let reports: Vec<Value> = visits
                .iter()
                .map(|extra| browse(&link, &url, extra))
                .collect();
            (reports, link.peer_ip())
        })
    };

    // 2G: ~100 kbit/s, two visits. On the first, the tap on play may come
    // before any one connection has carried enough for a measurement (the
    // page, poster and captions are 20 KB over up to three connections):
    // Auto then plays the default tier's rung (--default-tier; 3g here).
    // By the second visit the first one's connections have been measured.
    let (slow, slow_ip) = run("100kbit", &[&[], &[]]).await.unwrap();
    for (visit, report) in slow.iter().enumerate() {
        let name = format!("2g visit {}", visit + 1);
        check_page_and_playback(&name, report);
        let p = played(report);
        let variant = p.offer["variant"].as_str().unwrap();
        eprintln!(
            "{name}: page {} ms, play {} ms, rung {variant}, video bytes {} of {} advertised, chosen {:?}, estimate {:?}",
            report["loadMs"], report["playMs"], p.bytes, p.offer["bytes"], p.chosen_by,
            edge.connection_estimate(slow_ip)
        );
        let advertised = p.offer["bytes"].as_u64().unwrap();
        assert!(
            p.bytes <= advertised,
            "{name}: {} bytes of video, more than the {advertised} the page advertised",
            p.bytes
        );
        if visit == 0 {
            continue;
        }
        assert!(
            tier_of(variant) <= manifest.tier_rank("2g").unwrap(),
            "{name}: the 2G client fetched {variant}, a rung for a faster link ({:?})",
            p.chosen_by
        );
        assert!(
            p.chosen_by.contains("reason=connection"),
            "{name}: the 2G choice should come from the measured link: {:?}",
            p.chosen_by
        );
    }

    // 3G: ~600 kbit/s; then the picker without JavaScript.
    let (fast, fast_ip) = run("600kbit", &[&["--no-js-pick", "2g"]]).await.unwrap();
    let fast = &fast[0];
    check_page_and_playback("3g", fast);
    let p = played(fast);
    let variant = p.offer["variant"].as_str().unwrap();
    eprintln!(
        "3g: page {} ms, play {} ms, rung {variant}, video bytes {} of {} advertised, chosen {:?}, estimate {:?}",
        fast["loadMs"], fast["playMs"], p.bytes, p.offer["bytes"], p.chosen_by,
        edge.connection_estimate(fast_ip)
    );
    // Faster than 2G: a picture rung above Data saver (600 kbit/s reads as
    // 3g or, when short transfers overstate it, 4g; both rungs play at that rate).
    assert!(
        tier_of(variant) >= manifest.tier_rank("3g").unwrap(),
        "the 3G client fetched {variant} ({:?})",
        p.chosen_by
    );
    assert!(p.bytes <= p.offer["bytes"].as_u64().unwrap());
    let saver = fast["page"]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["variant"] == "144p")
        .expect("a Data saver offer");
    for key in ["noJsPick", "noJsReload"] {
        let after = &fast[key];
        assert_eq!(after["checked"], "2g", "{key}: {after}");
        assert_eq!(
            after["src"], saver["src"],
            "{key}: the player plays the picked rung"
        );
        assert!(
            after["url"].as_str().unwrap().ends_with("/watch"),
            "{key}: back on the page's own URL: {after}"
        );
    }
    let cookies = fast["noJsCookies"].to_string();
    assert!(cookies.contains("lowband_tier=2g"), "{cookies}");

    serving.stop().await;
}
