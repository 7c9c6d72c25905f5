//! What the integration tests of lowband's crates share (feature
//! `test-support`, enabled only by their dev-dependencies).
//!
//! Two things: builders for the manifest types, so that a test states only
//! the fields it is about (`Manifest::builder("m1").asset(...)`) instead of
//! spelling out every field of every struct; and the local services the
//! tests start (s3s-fs, nats-server) on free loopback ports, skipped when
//! missing unless a `LOWBAND_REQUIRE_*` variable says the test must run.
//!
//! Everything here panics on failure: a test that cannot set up has failed.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::keys::{ContentHash, ModuleId, ObjectKey};
use crate::manifest::{
    Asset, AssetKind, Caption, Manifest, ModuleInfo, SourceInfo, Variant, VariantKind,
    MANIFEST_SCHEMA,
};
use crate::Profile;

/// When a built manifest was published unless a test says otherwise
/// (Unix seconds: Tue, 14 Nov 2023 22:13:20 GMT).
pub const PUBLISHED_AT: u64 = 1_700_000_000;

/// A manifest being built; [`ManifestBuilder::build`] gives it.
#[derive(Debug, Clone)]
pub struct ManifestBuilder(Manifest);

impl Manifest {
    /// A manifest of module `id` (panics if `id` is not a valid module id),
    /// titled `id`, with no language, made with the built-in default
    /// profile and its tiers, published at [`PUBLISHED_AT`], no assets yet.
    pub fn builder(id: &str) -> ManifestBuilder {
        let id = ModuleId::parse(id).unwrap_or_else(|e| panic!("module id {id:?}: {e}"));
        ManifestBuilder(Manifest {
            schema: MANIFEST_SCHEMA,
            module: ModuleInfo {
                title: id.as_str().into(),
                id,
                language: None,
            },
            profile: "default".into(),
            tiers: Profile::builtin_default().tiers,
            published_at: PUBLISHED_AT,
            assets: Vec::new(),
        })
    }
}

impl ManifestBuilder {
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.0.module.title = title.into();
        self
    }

    /// The module's language tag, written as given (tests feed hostile ones).
    pub fn language(mut self, language: &str) -> Self {
        self.0.module.language = Some(language.into());
        self
    }

    pub fn published_at(mut self, unix_seconds: u64) -> Self {
        self.0.published_at = unix_seconds;
        self
    }

    /// Adds an asset after those added before.
    pub fn asset(mut self, asset: impl Into<Asset>) -> Self {
        self.0.assets.push(asset.into());
        self
    }

    pub fn build(self) -> Manifest {
        self.0
    }
}

impl From<ManifestBuilder> for Manifest {
    fn from(builder: ManifestBuilder) -> Self {
        builder.build()
    }
}

/// An asset being built; [`AssetBuilder::build`] gives it.
#[derive(Debug, Clone)]
pub struct AssetBuilder(Asset);

impl Asset {
    /// An asset at `path` whose source is 0 bytes of
    /// `application/octet-stream` hashed as the bytes of `path`, derived
    /// from `ContentHash::of(b"d")`, with no duration, variants, captions or
    /// placeholder yet.
    pub fn builder(path: &str, kind: AssetKind) -> AssetBuilder {
        AssetBuilder(Asset {
            path: path.into(),
            kind,
            source: SourceInfo {
                bytes: 0,
                hash: ContentHash::of(path.as_bytes()),
                mime: "application/octet-stream".into(),
            },
            derivation: ContentHash::of(b"d"),
            duration: None,
            variants: Vec::new(),
            captions: Vec::new(),
            placeholder: None,
        })
    }
}

impl AssetBuilder {
    /// The source file's size and media type (its hash is set apart).
    pub fn source(mut self, bytes: u64, mime: &str) -> Self {
        self.0.source.bytes = bytes;
        self.0.source.mime = mime.into();
        self
    }

    pub fn source_hash(mut self, hash: ContentHash) -> Self {
        self.0.source.hash = hash;
        self
    }

    pub fn derivation(mut self, derivation: ContentHash) -> Self {
        self.0.derivation = derivation;
        self
    }

    pub fn duration(mut self, seconds: f64) -> Self {
        self.0.duration = Some(seconds);
        self
    }

    /// Adds a variant after those added before.
    pub fn variant(mut self, variant: impl Into<Variant>) -> Self {
        self.0.variants.push(variant.into());
        self
    }

    pub fn variants(mut self, variants: impl IntoIterator<Item = Variant>) -> Self {
        self.0.variants.extend(variants);
        self
    }

    pub fn caption(mut self, caption: Caption) -> Self {
        self.0.captions.push(caption);
        self
    }

    pub fn build(self) -> Asset {
        self.0
    }
}

impl From<AssetBuilder> for Asset {
    fn from(builder: AssetBuilder) -> Self {
        builder.build()
    }
}

/// A variant being built; [`VariantBuilder::build`] gives it. Setters that
/// take an `Option` also take the bare value, so a test can pass on what a
/// table of cases holds.
#[derive(Debug, Clone)]
pub struct VariantBuilder(Variant);

impl Variant {
    /// What [`Variant::new`] makes, with media details to be set.
    pub fn builder(
        name: &str,
        kind: VariantKind,
        tier: &str,
        key: ObjectKey,
        bytes: u64,
        mime: &str,
    ) -> VariantBuilder {
        VariantBuilder(Variant::new(name, kind, tier, key, bytes, mime))
    }
}

impl VariantBuilder {
    pub fn codecs(mut self, codecs: &str) -> Self {
        self.0.codecs = Some(codecs.into());
        self
    }

    pub fn width(mut self, width: impl Into<Option<u32>>) -> Self {
        self.0.width = width.into();
        self
    }

    pub fn height(mut self, height: impl Into<Option<u32>>) -> Self {
        self.0.height = height.into();
        self
    }

    /// The HTTP content-coding of the object (`br`, `gzip`); `None` for identity.
    pub fn encoding<'a>(mut self, encoding: impl Into<Option<&'a str>>) -> Self {
        self.0.encoding = encoding.into().map(Into::into);
        self
    }

    pub fn playlist(mut self, playlist: impl Into<Option<ObjectKey>>) -> Self {
        self.0.playlist = playlist.into();
        self
    }

    pub fn peak_bitrate(mut self, bits_per_second: u64) -> Self {
        self.0.peak_bitrate = Some(bits_per_second);
        self
    }

    pub fn language<'a>(mut self, language: impl Into<Option<&'a str>>) -> Self {
        self.0.language = language.into().map(Into::into);
        self
    }

    /// Whether the variant is an alternative sound track.
    pub fn alternate(mut self, alternate: bool) -> Self {
        self.0.alternate = alternate;
        self
    }

    pub fn build(self) -> Variant {
        self.0
    }
}

impl From<VariantBuilder> for Variant {
    fn from(builder: VariantBuilder) -> Self {
        builder.build()
    }
}

/// How long a started service may take to accept connections.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Access key the test S3 server ([`start_s3s`]) accepts.
pub const S3_ACCESS_KEY: &str = "lowband";
/// Secret key the test S3 server ([`start_s3s`]) accepts.
pub const S3_SECRET_KEY: &str = "lowband-secret";

/// A TCP port nothing listens on now, on loopback, for a child process to
/// listen on.
#[track_caller]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// Waits until something accepts connections on loopback `port`; panics,
/// naming `what`, after 30 s.
#[track_caller]
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process, killed (SIGKILL) and reaped when dropped, so that a
/// failed assertion leaves none behind.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
}

impl Process {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a service a test needs, its output discarded, and waits until it
/// listens on loopback `port`. A program that cannot be started makes the
/// test fail when the environment variable `require` is set (the test
/// command sets it), and otherwise gives `None` after a line saying that
/// `skipping` (what the test is) is skipped.
#[track_caller]
pub fn start_service(
    command: &mut Command,
    port: u16,
    require: &str,
    skipping: &str,
) -> Option<Process> {
    let program = command.get_program().to_string_lossy().into_owned();
    let spawned = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var_os(require).is_some() => panic!(
            "{program} is required ({require} is set) but could not start: {e}; \
             run scripts/install-deps.sh --test"
        ),
        Err(e) => {
            eprintln!(
                "skipping {skipping}: {program} not available ({e}); scripts/test.sh installs it"
            );
            return None;
        }
    };
    let process = Process { child };
    wait_listening(port, &program);
    Some(process)
}

/// s3s-fs, an S3-compatible server, serving the directory `root` (each
/// subdirectory a bucket) on loopback `port` with [`S3_ACCESS_KEY`] and
/// [`S3_SECRET_KEY`]; required when `LOWBAND_REQUIRE_S3` is set (see
/// [`start_service`]).
#[track_caller]
pub fn start_s3s(root: &Path, port: u16, skipping: &str) -> Option<Process> {
    let mut command = Command::new("s3s-fs");
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
        .arg(root);
    start_service(&mut command, port, "LOWBAND_REQUIRE_S3", skipping)
}
