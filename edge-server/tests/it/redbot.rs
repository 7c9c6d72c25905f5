//! REDbot, the HTTP linter (PyPI `redbot`), run on the real edge over
//! loopback: a negotiated page, a negotiated image and an immutable `/o/`
//! object must draw no note that REDbot rates "bad". Besides checking the
//! headers it makes conditional (`If-None-Match`, `If-Modified-Since`), range
//! and `Accept-Encoding: gzip` requests of its own and compares the answers.
//!
//! `scripts/install-deps.sh --test` installs REDbot in a venv; the binary is
//! `$LOWBAND_REDBOT`, else `${LOWBAND_TOOLS:-~/.cache/lowband}/redbot-venv/bin/redbot`.
//! Without it the test fails: it must not pass without having run.
//! `LOWBAND_REDBOT_VERBOSE=1` prints every note, not only the warnings.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};
use lowband_catalog::{ContentHash, ObjectKey, Store};
use lowband_edge::{Edge, EdgeConfig, ServerConfig};
use serde_json::Value;

use crate::support::{self, put, Serving};

/// One REDbot run may take this long (it makes up to five requests).
const REDBOT_TIMEOUT: Duration = Duration::from_secs(120);

const PAGE: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Asking good questions</title>
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>
<body>
<h1>Asking good questions</h1>
<p>Open questions ask pupils to explain; closed questions check a fact.
Wait three seconds after asking, then call on someone who did not raise a hand.</p>
<img src=\"img/photo.jpg\" alt=\"A chalkboard with three questions\" width=\"320\" height=\"214\">
<ol>
<li>What do you notice?</li><li>Why do you think so?</li><li>What would change if ...?</li>
<li>What do you notice?</li><li>Why do you think so?</li><li>What would change if ...?</li>
</ol>
</body>
</html>
";

/// The REDbot binary, as `scripts/install-deps.sh --test` installs it.
fn redbot_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LOWBAND_REDBOT") {
        return PathBuf::from(path);
    }
    support::tools_dir().join("redbot-venv/bin/redbot")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A module `m1` with a page (identity and gzip, as the pipeline stores
/// pages) and an image (WebP and JPEG); returns the store and the JPEG's key.
async fn store_with_module() -> (Store, ObjectKey) {
    let store = Store::open("memory://").unwrap();
    let html = Bytes::from_static(PAGE.as_bytes());
    let jpeg = Bytes::from_static(include_bytes!("../data/photo-w320.jpg"));
    let webp = Bytes::from_static(include_bytes!("../data/photo-w320.webp"));

    let html_key = put(&store, html.clone(), "html").await;
    let gz = gzip(&html);
    let gz_len = gz.len() as u64;
    let gz_key = put(&store, gz, "gz").await;
    let jpeg_key = put(&store, jpeg.clone(), "jpg").await;
    let webp_key = put(&store, webp.clone(), "webp").await;

    let page = Asset::builder("index.html", AssetKind::Page)
        .source(html.len() as u64, "text/html")
        .source_hash(ContentHash::of(&html))
        .derivation(ContentHash::of(b"page"))
        .variant(Variant::new(
            "identity",
            VariantKind::Page,
            "slow-2g",
            html_key,
            html.len() as u64,
            "text/html; charset=utf-8",
        ))
        .variant(
            Variant::builder(
                "gzip",
                VariantKind::Page,
                "slow-2g",
                gz_key,
                gz_len,
                "text/html; charset=utf-8",
            )
            .encoding("gzip"),
        );
    let image = Asset::builder("img/photo.jpg", AssetKind::Image)
        .source(225_910, "image/jpeg")
        .source_hash(ContentHash::of(b"chalkboard.jpg"))
        .derivation(ContentHash::of(b"image"))
        .variant(
            Variant::builder(
                "w320-webp",
                VariantKind::Image,
                "slow-2g",
                webp_key,
                webp.len() as u64,
                "image/webp",
            )
            .width(320)
            .height(214),
        )
        .variant(
            Variant::builder(
                "w320-jpeg",
                VariantKind::Image,
                "slow-2g",
                jpeg_key.clone(),
                jpeg.len() as u64,
                "image/jpeg",
            )
            .width(320)
            .height(214),
        );
    // A day ago: Last-Modified is the publish time and must not be in the future.
    let a_day_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 86_400;
    let manifest = Manifest::builder("m1")
        .title("Asking good questions")
        .language("en")
        .published_at(a_day_ago)
        .asset(page)
        .asset(image)
        .build();
    store.publish(&manifest).await.unwrap();
    (store, jpeg_key)
}

/// A note REDbot made about one URL.
#[derive(Debug)]
struct Note {
    url: String,
    level: String,
    id: String,
    subject: String,
    summary: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] {} ({}): {}",
            self.url, self.level, self.id, self.subject, self.summary
        )
    }
}

/// Runs REDbot on `url` and returns its notes (sub-notes flattened), from
/// its HAR output, where each entry lists `_red_messages` with their level.
fn redbot(bin: &PathBuf, url: &str) -> Vec<Note> {
    let mut child = Command::new(bin)
        .args(["-o", "har", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    // Read both pipes on threads so a chatty REDbot cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + REDBOT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("REDbot on {url} still running after {REDBOT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap().unwrap();
    let err = err.join().unwrap().unwrap();
    assert!(status.success(), "REDbot on {url}: {status}\n{err}\n{out}");
    let har: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("REDbot on {url}: output is not HAR JSON ({e}):\n{out}\n{err}"));
    if let Some(error) = har["log"]["_red_error"].as_str() {
        panic!("REDbot on {url} could not check it: {error}");
    }
    let entries = har["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !entries.is_empty(),
        "REDbot on {url} got no complete response:\n{out}\n{err}"
    );
    let mut notes = Vec::new();
    for entry in &entries {
        let entry_url = entry["request"]["url"].as_str().unwrap_or(url).to_string();
        let mut stack: Vec<&Value> = entry["_red_messages"]
            .as_array()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        while let Some(note) = stack.pop() {
            let text = |k: &str| note[k].as_str().unwrap_or_default().to_string();
            notes.push(Note {
                url: entry_url.clone(),
                level: text("level"),
                id: text("note_id"),
                subject: text("subject"),
                summary: text("summary"),
            });
            if let Some(sub) = note["subnotes"].as_array() {
                stack.extend(sub);
            }
        }
    }
    notes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redbot_finds_no_errors_on_a_page_an_image_and_an_object() {
    let bin = redbot_bin();
    assert!(
        bin.is_file(),
        "REDbot is not installed at {} (set LOWBAND_REDBOT to use another): \
         run `scripts/install-deps.sh --test`",
        bin.display()
    );

    let (store, jpeg_key) = store_with_module().await;
    let edge = Edge::new(store, EdgeConfig::default());
    let serving = Serving::start(edge, Ipv4Addr::LOCALHOST, ServerConfig::default()).await;
    let addr = serving.addr;

    let urls = [
        format!("http://{addr}/m/m1/index.html"),
        format!("http://{addr}/m/m1/img/photo.jpg"),
        format!("http://{addr}/o/{jpeg_key}"),
    ];
    // The three runs at once: each is mostly a Python start-up.
    let runs: Vec<_> = urls
        .iter()
        .map(|url| {
            let (bin, url) = (bin.clone(), url.clone());
            tokio::task::spawn_blocking(move || redbot(&bin, &url))
        })
        .collect();
    let mut notes = Vec::new();
    for run in runs {
        notes.extend(run.await.unwrap());
    }
    serving.stop().await;

    // HAR gives each level by its name in httplint's `levels`: GOOD, WARN, BAD, INFO.
    let unknown: Vec<String> = notes
        .iter()
        .filter(|n| !matches!(n.level.as_str(), "GOOD" | "WARN" | "BAD" | "INFO"))
        .map(ToString::to_string)
        .collect();
    assert!(
        unknown.is_empty(),
        "REDbot notes with a level this test does not know:\n{}",
        unknown.join("\n")
    );
    let verbose = std::env::var_os("LOWBAND_REDBOT_VERBOSE").is_some();
    for note in &notes {
        if note.level == "WARN" || verbose {
            eprintln!("REDbot: {note}");
        }
    }
    let bad: Vec<String> = notes
        .iter()
        .filter(|n| n.level == "BAD")
        .map(ToString::to_string)
        .collect();
    assert!(
        bad.is_empty(),
        "REDbot rates {} note(s) as errors:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // A check whose subrequest failed is only an INFO note: make sure REDbot's
    // own conditional and range requests ran and came back right on every URL.
    // And that the page's gzip copy decodes to its identity bytes.
    for (i, url) in urls.iter().enumerate() {
        let page_only: &[&str] = if i == 0 { &["CONNEG_GZIP_GOOD"] } else { &[] };
        for &wanted in ["INM_304", "IMS_304", "RANGE_CORRECT"]
            .iter()
            .chain(page_only)
        {
            assert!(
                notes.iter().any(|n| &n.url == url && n.id == wanted),
                "REDbot did not confirm {wanted} on {url}; its notes:\n{}",
                notes
                    .iter()
                    .filter(|n| &n.url == url)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
