//! What the integration tests of lowband's crates share (feature
//! `test-support`, enabled only by their dev-dependencies): builders for
//! the manifest types, so that a test states only the fields it is about
//! (`Manifest::builder("m1").asset(...)`) instead of spelling out every
//! field of every struct.
//!
//! Everything here panics on failure: a test that cannot set up has failed.

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
