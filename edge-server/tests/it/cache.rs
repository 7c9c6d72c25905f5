//! Provincial cache nodes on loopback: an S3-compatible server (s3s-fs) →
//! an origin edge → a throttling proxy (the uplink) → two cache nodes, all
//! real processes. The origin is killed mid-transfer, made to answer 5xx
//! and made slow; cached content must keep being served and uncached
//! content fail fast with a clear 502 or 504. Also: coalescing of
//! concurrent misses, ranges of an object still arriving, an interrupted
//! `sync`, the admin purge, and an upstream that sends corrupt bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};
use lowband_catalog::testing::{
    free_port, start_s3s, wait_listening, Process, S3_ACCESS_KEY, S3_SECRET_KEY,
};
use lowband_catalog::{ContentHash, ObjectKey, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support;

const EDGE: &str = env!("CARGO_BIN_EXE_lowband-edge");
const TOKEN: &str = "provincial-admin-token-0123456789";

/// Deterministic bytes that do not compress.
fn noise(seed: u64, len: usize) -> Bytes {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// The module the tests publish: a page, a video with two rungs and an audio rendition.
struct Module {
    manifest: Manifest,
    bodies: std::collections::HashMap<ObjectKey, Bytes>,
}

impl Module {
    fn key(&self, path: &str, variant: &str) -> ObjectKey {
        let asset = self.manifest.asset(path).unwrap();
        asset
            .variants
            .iter()
            .find(|v| v.name == variant)
            .unwrap()
            .key
            .clone()
    }

    fn body(&self, key: &ObjectKey) -> &Bytes {
        &self.bodies[key]
    }
}

/// name, kind, tier, bytes, mime, content-coding
type VariantSpec<'a> = (
    &'a str,
    VariantKind,
    &'a str,
    Bytes,
    &'a str,
    Option<&'a str>,
);

async fn publish(store: &Store, title: &str) -> Module {
    let mut bodies = std::collections::HashMap::new();
    let mut variants_of = |specs: &[VariantSpec]| {
        specs
            .iter()
            .map(|(name, kind, tier, body, mime, coding)| {
                let key = ObjectKey::for_bytes(body, "bin");
                bodies.insert(key.clone(), body.clone());
                Variant::builder(name, *kind, tier, key, body.len() as u64, mime)
                    .encoding(*coding)
                    .build()
            })
            .collect::<Vec<_>>()
    };
    let page = Bytes::from(format!(
        "<!doctype html><title>{title}</title><p>lesson one</p>"
    ));
    let page_variants = variants_of(&[(
        "identity",
        VariantKind::Page,
        "slow-2g",
        page.clone(),
        "text/html; charset=utf-8",
        None,
    )]);
    let video_variants = variants_of(&[
        (
            "144p",
            VariantKind::Video,
            "2g",
            noise(1, 1_500_000),
            "video/mp4",
            None,
        ),
        (
            "360p",
            VariantKind::Video,
            "3g",
            noise(2, 4_000_000),
            "video/mp4",
            None,
        ),
        (
            "480p",
            VariantKind::Video,
            "4g",
            noise(3, 6_000_000),
            "video/mp4",
            None,
        ),
        (
            "audio-aac",
            VariantKind::Audio,
            "slow-2g",
            noise(4, 200_000),
            "audio/mp4",
            None,
        ),
    ]);
    let asset = |path: &str, kind, variants: Vec<Variant>| {
        Asset::builder(path, kind)
            .source(9_000_000, "x")
            .variants(variants)
    };
    let manifest = Manifest::builder("m1")
        .title(title)
        .language("km")
        .asset(asset("index.html", AssetKind::Page, page_variants))
        .asset(asset(
            "lessons/lecture.mp4",
            AssetKind::Video,
            video_variants,
        ))
        .build();
    for (key, body) in &bodies {
        let (stored, _) = store.put_object(body.clone(), "bin").await.unwrap();
        assert_eq!(&stored, key);
    }
    store.publish(&manifest).await.unwrap();
    Module { manifest, bodies }
}

/// The uplink between the provinces and the origin: passes bytes through,
/// at a bounded rate if set, or swallows requests and never answers (slow).
struct Uplink {
    port: u16,
    /// Bytes per second towards the provinces; 0 = unlimited.
    rate: Arc<AtomicU64>,
    silent: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Uplink {
    async fn start(origin: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let rate = Arc::new(AtomicU64::new(0));
        let silent = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&rate), Arc::clone(&silent));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (rate, silent) = (Arc::clone(&r), Arc::clone(&s));
                tokio::spawn(relay(client, origin, rate, silent));
            }
        });
        Self {
            port,
            rate,
            silent,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, origin: u16, rate: Arc<AtomicU64>, silent: Arc<AtomicBool>) {
    if silent.load(Ordering::SeqCst) {
        // Read whatever comes, answer nothing, until the client gives up.
        let mut sink = [0u8; 4096];
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", origin)).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
        let _ = up_write.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match up_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let rate = rate.load(Ordering::SeqCst);
        if rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
    up.abort();
}

/// s3s-fs holding the published module, an origin edge on it, and the uplink in front.
struct Origin {
    s3: Option<Process>,
    s3_root: tempfile::TempDir,
    s3_port: u16,
    edge: Option<Process>,
    port: u16,
    uplink: Uplink,
    module: Arc<Module>,
    store: Store,
}

impl Origin {
    async fn start() -> Option<Self> {
        let s3_root = tempfile::tempdir().unwrap();
        // s3s-fs serves <root>/<bucket>/<key> as written by a file:// store.
        let store = Store::open(&format!("file://{}/lowband", s3_root.path().display())).unwrap();
        let module = publish(&store, "Lesson one").await;
        let s3_port = free_port();
        let s3 = start_s3s(s3_root.path(), s3_port, "the cache topology")?;
        let port = free_port();
        let mut origin = Self {
            s3: Some(s3),
            s3_root,
            s3_port,
            edge: None,
            port,
            uplink: Uplink::start(port).await,
            module: Arc::new(module),
            store,
        };
        origin.start_edge();
        Some(origin)
    }

    fn start_edge(&mut self) {
        let child = Command::new(EDGE)
            .args(["serve", "--store", "s3://lowband", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--manifest-ttl", "1"])
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.s3_port),
            )
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("LOWBAND_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the origin edge");
        self.edge = Some(Process { child });
        wait_listening(self.port, "the origin edge");
    }

    fn kill_edge(&mut self) {
        if let Some(mut p) = self.edge.take() {
            p.kill();
        }
    }

    fn kill_s3(&mut self) {
        if let Some(mut p) = self.s3.take() {
            p.kill();
        }
    }

    fn restart_s3(&mut self) {
        self.s3 = start_s3s(self.s3_root.path(), self.s3_port, "the cache topology");
    }

    /// Object requests the origin has answered so far (any status).
    async fn object_requests(&self) -> u64 {
        let text = get_text(&format!("http://127.0.0.1:{}/metrics", self.port)).await;
        metric_sum(&text, "lowband_edge_requests_total{route=\"object\"")
    }
}

/// A cache node process.
struct Node {
    process: Option<Process>,
    port: u16,
    dir: PathBuf,
    upstream: String,
    ttl: u64,
    token_file: PathBuf,
}

impl Node {
    fn start(upstream: &str, dir: &Path, ttl: u64) -> Self {
        let token_file = dir.with_extension("tokens");
        std::fs::write(&token_file, format!("# operators\n{TOKEN}\n")).unwrap();
        let mut node = Self {
            process: None,
            port: free_port(),
            dir: dir.to_owned(),
            upstream: upstream.to_owned(),
            ttl,
            token_file,
        };
        node.restart();
        node
    }

    fn restart(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
        let child = Command::new(EDGE)
            .args(["serve", "--upstream", &self.upstream, "--cache-dir"])
            .arg(&self.dir)
            .args(["--cache-size", "64MiB", "--upstream-timeout", "1"])
            .args(["--manifest-ttl", &self.ttl.to_string(), "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--admin-token-file")
            .arg(&self.token_file)
            .env("LOWBAND_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a cache node");
        self.process = Some(Process { child });
        wait_listening(self.port, "a cache node");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn metrics(&self) -> String {
        get_text(&self.url("/metrics")).await
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sum of the samples of every series starting with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

struct Got {
    status: u16,
    cache: String,
    body: Result<Bytes, String>,
    took: Duration,
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    let start = Instant::now();
    let mut request = client().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("lowband-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.bytes().await.map_err(|e| e.to_string());
    Got {
        status,
        cache,
        body,
        took: start.elapsed(),
    }
}

/// Asserts a whole, correct 200.
fn assert_served(got: &Got, want: &Bytes, what: &str) {
    assert_eq!(got.status, 200, "{what}");
    let body = got
        .body
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: body failed: {e}"));
    assert!(
        body == want,
        "{what}: {} bytes, not the object's {}",
        body.len(),
        want.len()
    );
}

/// Asserts a fast 502/504 with the clear JSON body.
fn assert_fails_fast(got: &Got, statuses: &[u16], what: &str) {
    assert!(
        statuses.contains(&got.status),
        "{what}: status {}",
        got.status
    );
    let body = got.body.as_ref().unwrap();
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("\"error\":\"upstream_") && text.contains("cache node"),
        "{what}: {text}"
    );
    assert!(
        got.took < Duration::from_secs(4),
        "{what}: took {:?}",
        got.took
    );
}

fn held(dir: &Path, key: &ObjectKey) -> bool {
    dir.join(key.to_string()).is_file()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_content_outlives_the_origin_and_uncached_content_fails_fast() {
    let Some(mut origin) = Origin::start().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&origin.uplink.url(), &tmp.path().join("a"), 1);
    // A second province, on the same uplink, holding only the page and the audio.
    let other = Node::start(&origin.uplink.url(), &tmp.path().join("b"), 1);
    let module = Arc::clone(&origin.module);
    let m = &*module;
    let page_key = m.key("index.html", "identity");
    let low = m.key("lessons/lecture.mp4", "144p");
    let mid = m.key("lessons/lecture.mp4", "360p");
    let high = m.key("lessons/lecture.mp4", "480p");
    let page = node.url("/m/m1/index.html");
    let low_url = node.url("/m/m1/lessons/lecture.mp4?tier=2g");
    let mid_url = node.url("/m/m1/lessons/lecture.mp4?tier=3g");
    let high_url = node.url("/m/m1/lessons/lecture.mp4?tier=4g");

    // Warm: first a miss, then a hit, same bytes.
    let first = get(&low_url, &[]).await;
    assert_served(&first, m.body(&low), "first 2g request");
    assert_eq!(first.cache, "miss");
    let again = get(&low_url, &[]).await;
    assert_served(&again, m.body(&low), "second 2g request");
    assert_eq!(again.cache, "hit");
    assert_served(&get(&page, &[]).await, m.body(&page_key), "page");
    let audio = m.key("lessons/lecture.mp4", "audio-aac");
    let other_audio = other.url(&format!("/o/{audio}"));
    assert_served(
        &get(&other.url("/m/m1/index.html"), &[]).await,
        m.body(&page_key),
        "page in the other province",
    );
    assert_served(
        &get(&other_audio, &[]).await,
        m.body(&audio),
        "audio in the other province",
    );
    let catalog = get(&node.url("/"), &[]).await;
    assert_eq!(catalog.status, 200);
    assert!(String::from_utf8_lossy(catalog.body.as_ref().unwrap()).contains("Lesson one"));

    // The store behind the origin goes down: the origin answers 502.
    origin.kill_s3();
    tokio::time::sleep(Duration::from_millis(1500)).await; // past every TTL
    assert_served(
        &get(&low_url, &[]).await,
        m.body(&low),
        "2g with the store down",
    );
    assert_served(
        &get(&page, &[]).await,
        m.body(&page_key),
        "page with the store down",
    );
    assert_eq!(
        get(&node.url("/"), &[]).await.status,
        200,
        "catalog with the store down"
    );
    // The origin retries its store before giving up: the node answers 502 or, first, 504.
    assert_fails_fast(
        &get(&mid_url, &[]).await,
        &[502, 504],
        "uncached 3g with the store down",
    );
    assert!(!held(&node.dir, &mid));
    assert_served(
        &get(&other_audio, &[]).await,
        m.body(&audio),
        "other province, store down",
    );
    assert_fails_fast(
        &get(&other.url("/m/m1/lessons/lecture.mp4?tier=2g"), &[]).await,
        &[502, 504],
        "other province, its uncached 2g with the store down",
    );

    // The uplink goes silent (a slow origin): answers within the timeout or 504.
    origin.uplink.silent.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let got = get(&low_url, &[]).await;
        assert_served(&got, m.body(&low), "2g with a silent origin");
        assert!(
            got.took < Duration::from_secs(1),
            "cached answer took {:?}",
            got.took
        );
    }
    assert_served(
        &get(&page, &[]).await,
        m.body(&page_key),
        "page with a silent origin",
    );
    assert_fails_fast(
        &get(&mid_url, &[]).await,
        &[504],
        "uncached 3g with a silent origin",
    );

    // Back to normal, but slow enough to kill the origin mid-transfer.
    origin.uplink.silent.store(false, Ordering::SeqCst);
    origin.restart_s3();
    origin.uplink.rate.store(1_000_000, Ordering::SeqCst);
    let in_flight = tokio::spawn({
        let url = high_url.clone();
        async move { get(&url, &[]).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let partial = tmp
        .path()
        .join("a/partial")
        .join(format!("{}.{}", high.hash(), high.ext()));
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 1_000_000 {
        assert!(Instant::now() < deadline, "the 4g fill never got 1 MB");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    origin.kill_edge();
    let cut = in_flight.await.unwrap();
    // The client saw the cut: never a whole 200 of wrong or partial bytes.
    assert!(
        cut.status != 200 || cut.body.as_ref().map_or(true, |b| b.len() < 6_000_000),
        "a cut transfer looked complete"
    );
    assert!(
        !held(&node.dir, &high),
        "a partial object was kept as whole"
    );
    assert_served(
        &get(&low_url, &[]).await,
        m.body(&low),
        "2g after the origin died",
    );
    assert_served(
        &get(&other_audio, &[]).await,
        m.body(&audio),
        "other province, origin dead",
    );
    assert_served(
        &get(&other.url("/m/m1/index.html"), &[]).await,
        m.body(&page_key),
        "other province's page, origin dead",
    );
    assert_fails_fast(
        &get(&high_url, &[]).await,
        &[502, 504],
        "uncached 4g with no origin",
    );

    // A restarted node, with no origin, still serves what it held.
    let mut node = node;
    node.restart();
    assert_served(
        &get(&low_url, &[]).await,
        m.body(&low),
        "2g after the node's restart",
    );
    assert_served(
        &get(&page, &[]).await,
        m.body(&page_key),
        "page after the node's restart",
    );

    // The origin returns: the cut object resumes from its partial file and is verified.
    origin.uplink.rate.store(0, Ordering::SeqCst);
    origin.start_edge();
    let resumed = get(&high_url, &[]).await;
    assert_served(&resumed, m.body(&high), "4g once the origin is back");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(held(&node.dir, &high));
    let metrics = node.metrics().await;
    assert!(
        metric_sum(&metrics, "lowband_cache_requests_total{result=\"hit\"}") >= 1,
        "{metrics}"
    );
    drop(origin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_upstream_request_and_ranges_do_not_wait() {
    let Some(origin) = Origin::start().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&origin.uplink.url(), &tmp.path().join("b"), 5);
    let m = &origin.module;
    // The index and manifest first, so that only object requests remain.
    assert_eq!(get(&node.url("/m/m1/index.html"), &[]).await.status, 200);
    let mid = m.key("lessons/lecture.mp4", "360p");
    let before = origin.object_requests().await;
    let misses = |text: &str| metric_sum(text, "lowband_cache_requests_total{result=\"miss\"}");
    let misses_before = misses(&node.metrics().await);
    origin.uplink.rate.store(4_000_000, Ordering::SeqCst);
    let url = node.url(&format!("/o/{mid}"));
    let all: Vec<_> = (0..100)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    for got in futures::future::join_all(all).await {
        assert_served(&got.unwrap(), m.body(&mid), "one of 100 concurrent misses");
    }
    let after = origin.object_requests().await;
    assert_eq!(
        after - before,
        1,
        "100 concurrent misses made {} upstream requests",
        after - before
    );
    let metrics = node.metrics().await;
    assert_eq!(misses(&metrics) - misses_before, 1, "{metrics}");

    // A range at the start of an object still arriving is answered before the object is whole.
    origin.uplink.rate.store(300_000, Ordering::SeqCst);
    let high = m.key("lessons/lecture.mp4", "480p");
    let url = node.url(&format!("/o/{high}"));
    let got = client()
        .get(&url)
        .header("range", "bytes=0-65535")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 206);
    assert_eq!(got.headers()["lowband-cache"], "miss");
    let body = got.bytes().await.unwrap();
    assert_eq!(body, m.body(&high).slice(0..65536));
    assert!(
        !held(&node.dir, &high),
        "the range waited for the whole 6 MB object at 300 kB/s"
    );
    // A range far past what has arrived is read through on its own.
    let tail = client()
        .get(&url)
        .header("range", "bytes=5999000-")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().await.unwrap(),
        m.body(&high).slice(5_999_000..)
    );
    assert!(!held(&node.dir, &high));

    // A key the upstream does not have: 404 each time, but asked of the
    // upstream once, not once per request (a guessed key must not cost an
    // upstream round trip each time).
    let absent = ObjectKey::for_bytes(b"never published", "bin");
    let url = node.url(&format!("/o/{absent}"));
    let before = origin.object_requests().await;
    for _ in 0..5 {
        assert_eq!(get(&url, &[]).await.status, 404);
    }
    assert_eq!(origin.object_requests().await - before, 1);
    let metrics = node.metrics().await;
    assert_eq!(
        metric_sum(&metrics, "lowband_cache_requests_total{result=\"absent\"}"),
        4,
        "{metrics}"
    );
    drop(origin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_sync_resumes_to_a_verified_cache() {
    let Some(mut origin) = Origin::start().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sync");
    let upstream = origin.uplink.url();
    let sync = |extra: &[&str]| {
        let mut command = Command::new(EDGE);
        command
            .args(["sync", "--upstream", &upstream, "--cache-dir"])
            .arg(&dir)
            .args(["--tiers", "slow-2g,2g,3g", "--upstream-timeout", "2"])
            .args(extra)
            .env("LOWBAND_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // Killed at uneven points, three times, while the uplink is slow.
    origin.uplink.rate.store(2_000_000, Ordering::SeqCst);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(300 + seed % 1200);
        let mut child = sync(&["--jobs", "2"]).spawn().unwrap();
        tokio::time::sleep(after).await;
        let _ = child.kill();
        let status = child.wait().unwrap();
        eprintln!("sync round {round} killed after {after:?}: {status}");
    }
    // Rate-limited to 1 MB/s and run to the end.
    origin.uplink.rate.store(0, Ordering::SeqCst);
    let out = sync(&["--rate", "3MB/s"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {stdout}\n{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");

    let tiers = ["slow-2g", "2g", "3g"].map(String::from);
    let module = Arc::clone(&origin.module);
    let wanted = lowband_edge::cache::sync::objects_for(&module.manifest, Some(&tiers)).unwrap();
    let names: Vec<_> = wanted.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(wanted.len(), 4, "page, 144p, 360p, audio: {names:?}");
    for (key, _) in &wanted {
        let path = dir.join(key.to_string());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(ContentHash::of(&bytes), key.hash(), "{}", path.display());
    }
    let high = module.key("lessons/lecture.mp4", "480p");
    assert!(!held(&dir, &high), "4g was not asked for");

    // Run again: nothing to fetch, everything re-verified.
    let out = sync(&[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("0 fetched") && stdout.contains("4 already held and verified"),
        "{stdout}"
    );

    // A corrupted object is found and fetched again.
    let low = module.key("lessons/lecture.mp4", "144p");
    std::fs::write(dir.join(low.to_string()), b"bit rot").unwrap();
    let out = sync(&[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 fetched"),
        "{stdout}"
    );

    // With the origin gone, a sync says so and exits non-zero.
    origin.kill_edge();
    let out = sync(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read the module index from"),
        "{stderr}"
    );

    // Unknown tiers and modules are named.
    origin.start_edge();
    let out = sync(&["--tiers", "5g"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no tier 5g"));
    let out = sync(&["--modules", "nope"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("module nope is not in the upstream's index")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_takes_a_token_and_brings_the_new_manifest() {
    let Some(origin) = Origin::start().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&origin.uplink.url(), &tmp.path().join("p"), 600);
    let api = node.url("/api/v1/modules/m1");
    let title = |text: String| text.contains("Lesson one");
    assert!(title(get_text(&api).await));
    // Republished upstream; the node holds its copy for the TTL (10 minutes).
    publish(&origin.store, "Lesson two").await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // the origin's own TTL
    assert!(title(get_text(&api).await));

    let purge = node.url("/admin/v1/purge/m1");
    let c = client();
    assert_eq!(c.post(&purge).send().await.unwrap().status(), 401);
    let wrong = c
        .post(&purge)
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        c.get(&purge)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let ok = c.post(&purge).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("\"purged\":\"m1\""));
    assert!(get_text(&api).await.contains("Lesson two"));
    assert!(
        String::from_utf8_lossy(get(&node.url("/"), &[]).await.body.as_ref().unwrap())
            .contains("Lesson two")
    );
}

/// An upstream that sends bytes not matching the key never gets them kept,
/// nor a response completed with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_upstream_bytes_are_never_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&format!("file://{}", store_dir.display())).unwrap();
    let module = publish(&store, "Lesson one").await;
    let low = module.key("lessons/lecture.mp4", "144p");
    let page = module.key("index.html", "identity");
    let mut rotten = module.body(&low).to_vec();
    rotten[700_000] ^= 1;
    std::fs::write(store_dir.join(low.to_string()), &rotten).unwrap();

    let node = Node::start(
        &format!("file://{}", store_dir.display()),
        &tmp.path().join("c"),
        5,
    );
    for attempt in 0..2 {
        let got = get(&node.url(&format!("/o/{low}")), &[]).await;
        assert!(
            got.status != 200 || got.body.is_err(),
            "attempt {attempt}: corrupt bytes were served whole ({})",
            got.status
        );
        assert!(!held(&node.dir, &low));
    }
    let metrics = node.metrics().await;
    assert!(
        metric_sum(
            &metrics,
            "lowband_cache_upstream_errors_total{kind=\"corrupt\"}"
        ) >= 1,
        "{metrics}"
    );
    // Good objects from the same upstream are served and kept.
    let got = get(&node.url(&format!("/o/{page}")), &[]).await;
    assert_served(&got, module.body(&page), "a good object");
    assert!(held(&node.dir, &page));
    // Stray files in the cache directory are cleared at start.
    std::fs::write(node.dir.join("objects/junk"), b"x").unwrap();
    let mut node = node;
    node.restart();
    assert!(!node.dir.join("objects/junk").exists());
    assert_served(
        &get(&node.url(&format!("/o/{page}")), &[]).await,
        module.body(&page),
        "after restart",
    );
}

/// What a crash leaves in `partial/` is resumed: a cut object continues
/// from its length, a whole one that never got renamed is verified and kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_files_left_by_a_crash_are_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&format!("file://{}", store_dir.display())).unwrap();
    let module = publish(&store, "Lesson one").await;
    let cache_dir = tmp.path().join("cache");
    let config = lowband_edge::cache::CacheConfig {
        upstream: format!("file://{}", store_dir.display()),
        dir: cache_dir.clone(),
        size: 64 << 20,
        timeout: Duration::from_secs(2),
        ttl: Duration::from_secs(5),
    };
    let cut = module.key("lessons/lecture.mp4", "144p");
    let whole = module.key("lessons/lecture.mp4", "audio-aac");
    std::fs::create_dir_all(cache_dir.join("partial")).unwrap();
    let partial = |k: &ObjectKey| {
        cache_dir
            .join("partial")
            .join(format!("{}.{}", k.hash(), k.ext()))
    };
    std::fs::write(partial(&cut), &module.body(&cut)[..600_000]).unwrap();
    std::fs::write(partial(&whole), module.body(&whole)).unwrap();

    let cache = lowband_edge::cache::Cache::open(&config, None).unwrap();
    let edge = lowband_edge::Edge::with_cache(Arc::clone(&cache), Default::default()).unwrap();
    for key in [&cut, &whole] {
        let got = support::get(&edge, &format!("/o/{key}"), &[]).await;
        assert_eq!(got.status, 200);
        assert!(got.body == module.body(key), "{key}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(held(&cache_dir, &cut) && held(&cache_dir, &whole));
    // Only the cut object's missing part came from the upstream (and the
    // last byte held of each, asked again so that the range is never empty).
    let out = edge.metrics().render();
    let fetched = metric_sum(&out, "lowband_cache_bytes_total{source=\"upstream\"}");
    assert_eq!(fetched, 1_500_000 - 600_000 + 2, "{out}");
}

/// An upstream that starts sending garbage (or another module's manifest)
/// is refused; the node goes on serving the copy it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_manifests_from_upstream_are_refused_and_the_held_copy_served() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&format!("file://{}", store_dir.display())).unwrap();
    publish(&store, "Lesson one").await;
    let config = lowband_edge::cache::CacheConfig {
        upstream: format!("file://{}", store_dir.display()),
        dir: tmp.path().join("cache"),
        size: 64 << 20,
        timeout: Duration::from_secs(2),
        ttl: Duration::ZERO,
    };
    let cache = lowband_edge::cache::Cache::open(&config, None).unwrap();
    let edge = lowband_edge::Edge::with_cache(Arc::clone(&cache), Default::default()).unwrap();
    let api = || support::get(&edge, "/api/v1/modules/m1", &[]);
    assert!(api().await.text().contains("Lesson one"));
    let manifest = store_dir.join("modules/m1/manifest.json");
    let other = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("\"id\": \"m1\"", "\"id\": \"m2\"");
    for hostile in [
        "{\"schema\": 1, \"module\":".to_owned(),
        "\u{0}\u{1}binary".to_owned(),
        "{\"schema\": 99}".to_owned(),
        other,
    ] {
        std::fs::write(&manifest, &hostile).unwrap();
        // Past the edge's own recheck interval (250 ms), so the cache is asked.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..3 {
            let got = api().await;
            assert_eq!(got.status, 200);
            let body = got.text();
            assert!(body.contains("Lesson one"), "{hostile:?}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(2100)).await; // past the retry pause
    }
    let out = edge.metrics().render();
    assert!(
        metric_sum(&out, "lowband_cache_upstream_errors_total{kind=\"failed\"}") >= 4,
        "{out}"
    );
    assert!(
        metric_sum(&out, "lowband_cache_stale_total{why=\"upstream_error\"}") >= 1,
        "{out}"
    );
    // Once the upstream is sane again, its manifest is taken.
    publish(&store, "Lesson two").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    api().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(api().await.text().contains("Lesson two"));
}
