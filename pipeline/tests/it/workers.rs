//! The authoring API and the queue workers against a real nats-server (with
//! JetStream, on a free loopback port, its own store directory, killed at the
//! end) and a real `file://` store shared by separate worker processes.
//!
//! nats-server comes from Debian (`scripts/install-deps.sh --test`); without
//! it these tests are skipped, unless LOWBAND_REQUIRE_NATS is set (the test
//! command sets it), when its absence fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use lowband_catalog::testing::{free_port, start_service, Process};
use lowband_catalog::{ContentHash, ModuleId, Profile, Store};
use lowband_pipeline::api::{Api, ApiOptions, Tokens};
use lowband_pipeline::archive::Limits;
use lowband_pipeline::jobs::{JobState, JobStatus};
use lowband_pipeline::queue::{self, DeadLetter, Queue};
use tokio::io::AsyncWriteExt;

use crate::support;

const TOKEN: &str = "test-token-0123456789abcdef";

/// A nats-server with JetStream on a free loopback port, killed on drop.
struct NatsServer {
    _process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path());
        let process = start_service(&mut command, port, "LOWBAND_REQUIRE_NATS", "this test")?;
        Some(Self {
            _process: process,
            port,
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Connects, retrying while JetStream is still starting.
    async fn queue(&self) -> Queue {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match Queue::connect(&self.url()).await {
                Ok(q) => return q,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("waiting for JetStream: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("JetStream never came up: {e}"),
            }
        }
    }
}

/// A `lowband-pipeline worker` process, killed on drop.
struct WorkerProcess {
    process: Process,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(store: &str, nats: &str, log: PathBuf, extra: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_lowband-pipeline"))
            .args([
                "worker",
                "--store",
                store,
                "--nats",
                nats,
                "--ack-wait",
                "4",
            ])
            .args(extra)
            .env("LOWBAND_LOG", "lowband_pipeline=info")
            // Scratch space beside the log, in the test's own directory: a
            // worker killed with -9 cannot remove its job directory itself.
            .env("TMPDIR", log.parent().expect("the log is in a directory"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the worker binary");
        Self {
            process: Process { child },
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.process.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn api(store: &Store, queue: Queue, limits: Limits) -> Api {
    Api::new(
        store.clone(),
        queue,
        Tokens::parse(&format!("{TOKEN} tester\n")).unwrap(),
        ApiOptions {
            max_upload_bytes: 64 << 20,
            archive: limits,
            profile: Profile::builtin_default(),
        },
    )
}

fn request(method: Method, uri: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(body.into()))
        .unwrap()
}

async fn call(
    api: &Api,
    req: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let r = api.handle(req).await;
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

async fn job_status(api: &Api, job: &str) -> JobStatus {
    let (status, _, json) = call(
        api,
        request(Method::GET, &format!("/api/v1/jobs/{job}"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    serde_json::from_value(json).unwrap()
}

/// A tar of `dir`'s files under `top/`.
fn tar_dir(dir: &Path, top: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(top, dir).unwrap();
    b.into_inner().unwrap()
}

/// A test-pattern video with a tone, made by the ffmpeg CLI.
fn make_video(path: &Path, seconds: u32, pattern: &str) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("{pattern}=size=640x360:rate=25"))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:sample_rate=44100",
            "-t",
        ])
        .arg(seconds.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg CLI (scripts/install-deps.sh --test)");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
}

async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the work queue holds nothing and nothing is out with a worker.
async fn wait_queue_idle(queue: &Queue) {
    wait_for(
        "the job queue to drain",
        Duration::from_secs(300),
        async || {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = queue
                .jetstream()
                .get_consumer_from_stream(queue::CONSUMER, queue::JOBS_STREAM)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_mid_transcode_still_completes_the_module_once() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}", tmp.path().join("store").display());
    let store = Store::open(&store_url).unwrap();
    let queue = nats.queue().await;
    let api = api(&store, queue.clone(), Limits::default());

    let module = tmp.path().join("two-videos");
    std::fs::create_dir_all(module.join("lessons")).unwrap();
    std::fs::create_dir_all(module.join("img")).unwrap();
    make_video(&module.join("lessons/one.mp4"), 24, "testsrc2");
    make_video(&module.join("lessons/two.mp4"), 20, "testsrc");
    std::fs::copy(support::fixture("tiny.jpg"), module.join("img/cover.jpg")).unwrap();
    std::fs::write(
        module.join("index.html"),
        "<!doctype html><title>Two</title><h1>Two lessons</h1><video src=\"lessons/one.mp4\"></video><img src=\"img/cover.jpg\">",
    )
    .unwrap();
    let archive = tar_dir(&module, "two-videos");

    let workers = [
        WorkerProcess::start(&store_url, &nats.url(), tmp.path().join("w1.log"), &[]),
        WorkerProcess::start(&store_url, &nats.url(), tmp.path().join("w2.log"), &[]),
    ];
    let mut published = queue
        .client()
        .subscribe(queue::PUBLISHED_SUBJECT)
        .await
        .unwrap();

    let (status, _, json) = call(
        &api,
        request(Method::POST, "/api/v1/modules/two-videos", archive),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    let job = json["job"].as_str().unwrap().to_owned();

    // Kill whichever worker is seen mid-way through a video, by its own report.
    let (victim_path, victim_pid) = wait_for("a worker reporting progress on a video", Duration::from_secs(600), async || {
        let s = job_status(&api, &job).await;
        assert_ne!(s.state, JobState::Done, "the module finished before a transcode could be interrupted: make the test videos longer");
        s.assets
            .iter()
            .find(|a| a.state == JobState::Running && a.fraction > 0.0 && a.fraction < 0.9 && a.path.to_ascii_lowercase().ends_with(".mp4"))
            .map(|a| (a.path.clone(), a.pid.unwrap()))
    })
    .await;
    let mut workers = workers.map(Some);
    let killed = workers
        .iter_mut()
        .position(|w| w.as_ref().is_some_and(|w| w.pid() == victim_pid))
        .expect("progress names one of our workers");
    let mut victim = workers[killed].take().unwrap();
    victim.process.child.kill().unwrap(); // SIGKILL
    victim.process.child.wait().unwrap();
    let survivor = workers.iter().flatten().next().unwrap();

    let done = wait_for(
        "the module to be published",
        Duration::from_secs(1500),
        async || {
            let s = job_status(&api, &job).await;
            assert_ne!(
                s.state,
                JobState::Failed,
                "{s:?}\nsurvivor log:\n{}",
                survivor.log()
            );
            (s.state == JobState::Done).then_some(s)
        },
    )
    .await;
    assert_eq!(
        done.manifest.as_deref(),
        Some("modules/two-videos/manifest.json")
    );

    // The asset the killed worker held was finished by the other one.
    let progress: lowband_pipeline::jobs::AssetProgress = lowband_pipeline::jobs::get_json(
        &store,
        &lowband_pipeline::jobs::progress_key(
            &job,
            done.assets
                .iter()
                .position(|a| a.path == victim_path)
                .unwrap(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(progress.pid, survivor.pid(), "{progress:?}");
    assert!(progress.attempt >= 2, "{progress:?}");

    // Every asset is in the manifest and every object it names exists.
    let manifest = support::published(&store, "two-videos").await;
    let mut paths: Vec<_> = manifest.assets.iter().map(|a| a.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "img/cover.jpg",
            "index.html",
            "lessons/one.mp4",
            "lessons/two.mp4"
        ]
    );
    for a in &manifest.assets {
        assert!(!a.variants.is_empty(), "{}", a.path);
        for v in &a.variants {
            assert!(
                store.contains(&v.key).await.unwrap(),
                "{}: {} missing",
                a.path,
                v.key
            );
        }
    }
    let manifest_response =
        call(&api, request(Method::GET, "/api/v1/modules/two-videos", "")).await;
    assert_eq!(manifest_response.0, StatusCode::OK);
    assert_eq!(
        manifest_response.2["assets"].as_array().map(Vec::len),
        Some(4)
    );

    // Published once: one announcement, and none more once the queue is idle.
    let first = tokio::time::timeout(Duration::from_secs(120), published.next())
        .await
        .expect("a publication announcement")
        .unwrap();
    assert!(String::from_utf8_lossy(&first.payload).contains(&job));
    wait_queue_idle(&queue).await;
    let more = tokio::time::timeout(Duration::from_secs(3), published.next()).await;
    assert!(more.is_err(), "the manifest was published twice");

    // No object stored twice: every object is named by the hash of its bytes.
    let objects = walk(&tmp.path().join("store/objects"));
    assert!(!objects.is_empty());
    for file in &objects {
        let name = file.file_name().unwrap().to_str().unwrap();
        let (hash, _ext) = name.split_once('.').unwrap_or((name, ""));
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(
            ContentHash::of(&bytes).to_hex(),
            hash,
            "{} is not its content's key",
            file.display()
        );
    }
    drop(victim);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A module whose one video is 4 KB of garbage: every attempt at it fails.
fn broken_module(root: &Path) -> PathBuf {
    let module = root.join("broken");
    std::fs::create_dir_all(module.join("lessons")).unwrap();
    std::fs::write(module.join("lessons/bad.mp4"), vec![0x42u8; 4096]).unwrap();
    std::fs::write(module.join("index.html"), "<p>hi</p>").unwrap();
    module
}

/// Uploads `module` as module `id`; the job's id.
async fn submit(api: &Api, module: &Path, id: &str) -> String {
    let (status, _, json) = call(
        api,
        request(
            Method::POST,
            &format!("/api/v1/modules/{id}"),
            tar_dir(module, id),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    json["job"].as_str().unwrap().to_owned()
}

/// Every message on the dead-letter subjects.
async fn dead_letters(queue: &Queue) -> async_nats::Subscriber {
    queue
        .client()
        .subscribe(format!("{}.>", queue::DEAD_PREFIX))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_always_fails_ends_on_the_dead_letter_subject() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}", tmp.path().join("store").display());
    let store = Store::open(&store_url).unwrap();
    let queue = nats.queue().await;
    let api = api(&store, queue.clone(), Limits::default());
    let mut dead = dead_letters(&queue).await;

    let module = broken_module(tmp.path());
    let worker = WorkerProcess::start(
        &store_url,
        &nats.url(),
        tmp.path().join("w.log"),
        &["--max-attempts", "3", "--retry-backoff", "1"],
    );
    let job = submit(&api, &module, "broken").await;

    let letter = tokio::time::timeout(Duration::from_secs(600), dead.next())
        .await
        .unwrap_or_else(|_| panic!("no dead letter; worker log:\n{}", worker.log()))
        .unwrap();
    assert_eq!(letter.subject.as_str(), format!("lowband.dead.{job}"));
    let error_header = letter
        .headers
        .as_ref()
        .and_then(|h| h.get("Lowband-Error"))
        .map(std::string::ToString::to_string);
    let letter: DeadLetter = serde_json::from_slice(&letter.payload).unwrap();
    assert_eq!(letter.path.as_deref(), Some("lessons/bad.mp4"));
    assert_eq!(letter.attempts, 3);
    assert!(letter.error.contains("lessons/bad.mp4"), "{}", letter.error);
    assert!(
        !letter.error.contains("/tmp/"),
        "a worker's temporary path leaked: {}",
        letter.error
    );
    assert!(error_header.is_some_and(|h| h.contains("bad.mp4")));

    // The author sees the failure and its reason; nothing was published.
    let s = wait_for(
        "the job to show as failed",
        Duration::from_secs(60),
        async || {
            let s = job_status(&api, &job).await;
            (s.state == JobState::Failed).then_some(s)
        },
    )
    .await;
    let bad = s
        .assets
        .iter()
        .find(|a| a.path == "lessons/bad.mp4")
        .unwrap();
    assert_eq!(bad.state, JobState::Failed);
    assert!(
        bad.error.as_deref().is_some_and(|e| e.contains("bad.mp4")),
        "{bad:?}"
    );
    assert!(store
        .manifest(&ModuleId::parse("broken").unwrap())
        .await
        .unwrap()
        .is_none());
    wait_queue_idle(&queue).await;
}

/// A failure that cannot be recorded where the upload API reads a job's
/// state is never acknowledged away: the job keeps coming back (and is not
/// dead-lettered) until the store takes the record, and then it shows as
/// failed. Before, the worker ignored the store's error and acked, and the
/// job showed "running" forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_the_store_will_not_take_is_kept_until_it_does() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store_url = format!("file://{}", store_dir.display());
    let store = Store::open(&store_url).unwrap();
    let queue = nats.queue().await;
    let api = api(&store, queue.clone(), Limits::default());
    let mut dead = dead_letters(&queue).await;
    let module = broken_module(tmp.path());

    // The job is submitted before any worker runs, and its progress
    // records are made unwritable: a directory where each file must go
    // (a rename onto a directory fails, even for root).
    let job = submit(&api, &module, "broken").await;
    let blocked: Vec<PathBuf> = (0..2)
        .map(|i| store_dir.join(lowband_pipeline::jobs::progress_key(&job, i)))
        .collect();
    for path in &blocked {
        let _ = std::fs::remove_file(path);
        std::fs::create_dir_all(path.join("blocked")).unwrap();
    }
    let worker = WorkerProcess::start(
        &store_url,
        &nats.url(),
        tmp.path().join("w.log"),
        &["--max-attempts", "2", "--retry-backoff", "1"],
    );
    wait_for(
        "the worker to hand back a failure it could not record, twice",
        Duration::from_secs(120),
        async || (worker.log().matches("could not record the failure").count() >= 2).then_some(()),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), dead.next())
            .await
            .is_err(),
        "dead-lettered although its failure was never recorded"
    );

    // The store takes records again: the next delivery records and ends it.
    for path in &blocked {
        std::fs::remove_dir_all(path).unwrap();
    }
    let letter = tokio::time::timeout(Duration::from_secs(120), dead.next())
        .await
        .unwrap_or_else(|_| panic!("no dead letter; worker log:\n{}", worker.log()))
        .unwrap();
    assert_eq!(letter.subject.as_str(), format!("lowband.dead.{job}"));
    let s = job_status(&api, &job).await;
    let bad = s
        .assets
        .iter()
        .find(|a| a.path == "lessons/bad.mp4")
        .unwrap();
    assert_eq!(bad.state, JobState::Failed, "{s:?}");
    assert!(
        bad.error.as_deref().is_some_and(|e| e.contains("bad.mp4")),
        "{bad:?}"
    );
    wait_queue_idle(&queue).await;
}

/// Nothing of a refused upload may be left anywhere a reader or a worker looks.
async fn assert_nothing_published(store: &Store, queue: &Queue) {
    for prefix in [
        "modules",
        "objects",
        "incoming/jobs",
        "incoming/sources",
        "incoming/uploads",
    ] {
        let found = lowband_pipeline::jobs::list(store, prefix).await.unwrap();
        assert!(found.is_empty(), "{prefix}: {found:?}");
    }
    let mut stream = queue
        .jetstream()
        .get_stream(queue::JOBS_STREAM)
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_archives_and_requests_are_refused_and_nothing_is_published() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let store = Store::open("memory://").unwrap();
    let queue = nats.queue().await;
    let api = api(
        &store,
        queue.clone(),
        Limits {
            max_entries: 20,
            max_expanded_bytes: 4 << 20,
        },
    );

    fn raw_tar(kind: tar::EntryType, name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    }
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }
    let many: Vec<(String, Vec<u8>)> = (0..25)
        .map(|i| (format!("p{i}.html"), b"<p>x".to_vec()))
        .collect();
    let many: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let zeros = vec![0u8; 32 << 20];
    let good_then_cut = {
        let mut t = tar::Builder::new(Vec::new());
        let data = vec![b'a'; 4000];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "index.html", data.as_slice())
            .unwrap();
        let bytes = t.into_inner().unwrap();
        bytes[..1500].to_vec()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "absolute path",
            raw_tar(tar::EntryType::Regular, "/etc/cron.d/evil", b"x"),
            "\"/etc/cron.d/evil\": absolute path",
        ),
        (
            "dot-dot",
            raw_tar(tar::EntryType::Regular, "m/../../evil.html", b"x"),
            "\"m/../../evil.html\": `..`",
        ),
        (
            "symlink",
            raw_tar(tar::EntryType::Symlink, "passwd.txt", b""),
            "\"passwd.txt\": symbolic links are not allowed",
        ),
        (
            "hardlink",
            raw_tar(tar::EntryType::Link, "passwd.txt", b""),
            "\"passwd.txt\": hard links are not allowed",
        ),
        (
            "zip dot-dot",
            zip_of(&[("../evil.html", b"x")]),
            "\"../evil.html\": `..`",
        ),
        ("too many entries", zip_of(&many), "more than 20 entries"),
        (
            "zip bomb",
            zip_of(&[("zeros.bin", &zeros)]),
            "\"zeros.bin\": the archive expands to more than 4194304 bytes",
        ),
        ("truncated tar", good_then_cut, "truncated"),
        (
            "truncated zip",
            {
                let z = zip_of(&[("a.html", &[b'a'; 3000])]);
                z[..z.len() - 30].to_vec()
            },
            "damaged or truncated",
        ),
        (
            "not an archive",
            b"<html>just a page</html>".to_vec(),
            "not a zip, tar or tar.gz",
        ),
    ];
    for (what, body, want) in cases {
        let (status, _, json) =
            call(&api, request(Method::POST, "/api/v1/modules/hostile", body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {json}");
        assert_eq!(json["error"], "bad_archive", "{what}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.starts_with("upload "),
            "{what}: names the upload: {message}"
        );
        assert!(
            message.contains(want),
            "{what}: want {want:?} in {message:?}"
        );
        assert_nothing_published(&store, &queue).await;
    }

    // A module that unpacks but holds nothing to publish.
    let (status, _, json) = call(
        &api,
        request(
            Method::POST,
            "/api/v1/modules/hostile",
            zip_of(&[(".hidden", b"x")]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(json["error"], "bad_module");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("no files to publish"),
        "{json}"
    );
    assert!(
        !json["message"].as_str().unwrap().contains("/tmp"),
        "{json}"
    );
    assert_nothing_published(&store, &queue).await;

    // Requests: tokens, names, headers.
    let mut no_token = request(
        Method::GET,
        "/api/v1/jobs/0123456789abcdef0123456789abcdef",
        "",
    );
    no_token.headers_mut().remove("authorization");
    let (status, headers, _) = call(&api, no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let mut wrong = request(Method::GET, "/api/v1/jobs/x", "");
    wrong.headers_mut().insert(
        "authorization",
        "Bearer wrong-token-0123456789".parse().unwrap(),
    );
    assert_eq!(call(&api, wrong).await.0, StatusCode::UNAUTHORIZED);
    for (method, uri, headers, want_status, want_code) in [
        (
            Method::POST,
            "/api/v1/modules/Bad%20Id",
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/modules/..",
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/api/v1/jobs/../../etc/passwd",
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/v1/jobs/zzzz",
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/api/v1/uploads",
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/uploads",
            vec![("upload-length", "12abc")],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/uploads",
            vec![("upload-length", "-1")],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/uploads",
            vec![("upload-length", "99999999999999999999999")],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::POST,
            "/api/v1/uploads",
            vec![("upload-length", "1099511627776")],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            Method::PATCH,
            "/api/v1/uploads/0123456789abcdef0123456789abcdef",
            vec![("upload-offset", "0")],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PATCH,
            "/api/v1/uploads/..%2F..%2Fmodules",
            vec![("upload-offset", "0")],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::POST,
            "/api/v1/modules/m?upload=../../modules",
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/api/v1/modules/m",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/api/v2/anything",
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/v1/modules/never-published",
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let mut req = request(method.clone(), uri, "");
        for (k, v) in headers {
            req.headers_mut().insert(k, v.parse().unwrap());
        }
        let (status, _, json) = call(&api, req).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (want_status, Some(want_code)),
            "{method} {uri}: {json}"
        );
    }
    // A body over the size limit is cut off and not kept.
    let (status, _, json) = call(
        &api,
        request(Method::POST, "/api/v1/modules/big", vec![0u8; 65 << 20]),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_nothing_published(&store, &queue).await;
    let healthz = api
        .handle(
            Request::get("/healthz")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(healthz.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_the_connection_drops() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let store = Store::open("memory://").unwrap();
    let queue = nats.queue().await;
    let api = Arc::new(api(&store, queue.clone(), Limits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lowband_pipeline::api::serve(listener, Arc::clone(&api)));

    let tmp = tempfile::tempdir().unwrap();
    let module = support::small_module(tmp.path());
    let archive = tar_dir(&module, "fixture-module");
    let total = archive.len();

    let create = Request::post("/api/v1/uploads")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("upload-length", total.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, json) = call(&api, create).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let upload = json["upload"].as_str().unwrap().to_owned();
    assert_eq!(
        headers["location"],
        format!("/api/v1/uploads/{upload}").as_str()
    );

    // Over a real socket: announce the whole rest, send part of it, hang up.
    let half = total / 2;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH /api/v1/uploads/{upload} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nUpload-Offset: 0\r\nContent-Length: {total}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&archive[..half]).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(conn);

    let offset = wait_for(
        "the server to keep what arrived",
        Duration::from_secs(60),
        async || {
            let head = Request::head(format!("/api/v1/uploads/{upload}"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let (status, headers, _) = call(&api, head).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["upload-length"], total.to_string().as_str());
            let offset: usize = headers["upload-offset"].to_str().unwrap().parse().unwrap();
            (offset == half).then_some(offset)
        },
    )
    .await;

    // Submitting early is refused; a wrong offset is refused with the right one.
    let (status, _, json) = call(
        &api,
        request(
            Method::POST,
            &format!("/api/v1/modules/fixture?upload={upload}"),
            "",
        ),
    )
    .await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::CONFLICT, Some("upload_incomplete")),
        "{json}"
    );
    let mut wrong = request(
        Method::PATCH,
        &format!("/api/v1/uploads/{upload}"),
        archive[1..].to_vec(),
    );
    wrong
        .headers_mut()
        .insert("upload-offset", "1".parse().unwrap());
    let (status, headers, json) = call(&api, wrong).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::CONFLICT, Some("offset_mismatch")),
        "{json}"
    );
    assert_eq!(headers["upload-offset"], offset.to_string().as_str());

    let mut rest = request(
        Method::PATCH,
        &format!("/api/v1/uploads/{upload}"),
        archive[offset..].to_vec(),
    );
    rest.headers_mut()
        .insert("upload-offset", offset.to_string().parse().unwrap());
    let (status, headers, json) = call(&api, rest).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{json}");
    assert_eq!(headers["upload-offset"], total.to_string().as_str());

    let (status, _, json) = call(
        &api,
        request(
            Method::POST,
            &format!("/api/v1/modules/fixture?upload={upload}"),
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    let job = json["job"].as_str().unwrap().to_owned();
    let s = job_status(&api, &job).await;
    assert_eq!(s.state, JobState::Queued);
    assert_eq!(s.module, "fixture");
    let mut paths: Vec<_> = s.assets.iter().map(|a| a.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["img/tiny.jpg", "index.html", "lessons/tiny.mp4"]);
    // The same archive again is the same job, queued once.
    let (status, _, again) = call(
        &api,
        request(Method::POST, "/api/v1/modules/fixture", archive.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["job"], job.as_str());
    let mut stream = queue
        .jetstream()
        .get_stream(queue::JOBS_STREAM)
        .await
        .unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        2,
        "one message per non-page asset"
    );
    // The session is gone once it became a job.
    let head = Request::head(format!("/api/v1/uploads/{upload}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(call(&api, head).await.0, StatusCode::NOT_FOUND);
}
