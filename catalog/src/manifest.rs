//! The manifest: what a published module contains and where every byte is.
//!
//! `modules/<id>/manifest.json` lists each asset of a module and every variant
//! made of it, with measured sizes so the edge (and the teacher) knows what a
//! choice costs before anything is fetched. The JSON carries a `schema`
//! number; readers refuse schemas they do not know rather than guess.
//! `modules/index.json` lists the published modules.

use serde::{Deserialize, Serialize};

use crate::keys::{ContentHash, ModuleId, ObjectKey};
use crate::profile::Tier;

/// Version of the manifest and index JSON written by this build.
pub const MANIFEST_SCHEMA: u32 = 1;

/// Name of a page variant that holds the author's bytes unchanged: served
/// only to a request that asks for no transformation, never chosen by tier.
pub const ORIGINAL_VARIANT: &str = "original";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what} is not valid JSON for schema {MANIFEST_SCHEMA}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{what} has schema {found}, this build reads schema {MANIFEST_SCHEMA}")]
    Schema { what: String, found: u32 },
    #[error("{what}: asset {asset:?}: {reason}")]
    Invalid {
        what: String,
        asset: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub id: ModuleId,
    pub title: String,
    /// BCP 47 language tag of the module's main language (`km`, `en`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    Video,
    Audio,
    Image,
    Page,
    /// Anything else a page may link to (stylesheets, scripts, captions,
    /// documents): served as authored, text precompressed.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariantKind {
    /// Picture and sound.
    Video,
    /// Sound only.
    Audio,
    Image,
    /// A page body, possibly content-encoded (`encoding`).
    Page,
    /// Any other file, possibly content-encoded.
    File,
}

/// What the source file of an asset was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub bytes: u64,
    pub hash: ContentHash,
    pub mime: String,
}

/// One rendition of an asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Stable within the asset: `144p`, `audio-aac`, `w480-webp`, `br`.
    pub name: String,
    pub kind: VariantKind,
    /// The slowest tier that can carry this variant.
    pub tier: String,
    pub key: ObjectKey,
    pub bytes: u64,
    pub mime: String,
    /// RFC 6381 codecs string, e.g. `avc1.4d401e, mp4a.40.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Average bitrate over the whole file, bits/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// HTTP content-coding of the object (`br`, `gzip`); absent for identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// HLS media playlist addressing this variant's fragments by byte range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist: Option<ObjectKey>,
    /// Highest bitrate of any segment, bits/s (HLS `BANDWIDTH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_bitrate: Option<u64>,
    /// `slides`: a picture only when it changes, keyframes far apart; such
    /// a rung is played on its own, not switched to mid-stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Mean SSIM (luma) of the picture against the source scaled to this
    /// size, sampled every 0.7 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim: Option<f64>,
    /// For a page: what a client fetches before any tap, in bytes — this
    /// variant plus the stylesheets, scripts, default captions and
    /// first-screen images the page loads (at the largest width it offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_load_bytes: Option<u64>,
    /// For the audio-only rendition of a further sound track (a second
    /// language): its language tag as the source file has it (`eng`),
    /// absent for a track without one. Such a variant is offered as
    /// alternative audio (HLS `EXT-X-MEDIA`), never chosen as the asset's
    /// own sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Set with `language`, or alone for a further track without a tag:
    /// the variant is an alternative sound track.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alternate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Logical path inside the module, `/`-separated, e.g. `lessons/intro.mp4`.
    pub path: String,
    pub kind: AssetKind,
    pub source: SourceInfo,
    /// Digest of everything the variants were derived from (source, settings,
    /// encoder versions): equal derivations mean the variants can be reused.
    pub derivation: ContentHash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    pub variants: Vec<Variant>,
    /// WebVTT captions found next to a video or audio source
    /// (`intro.vtt`, `intro.km.vtt`), each an asset of this manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<Caption>,
    /// For images: a `data:image/webp;base64,...` URI of at most 1 KB, a
    /// blurred miniature of the picture that a page can inline and show
    /// (stretched to the picture's aspect) until the real image arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// Logical path of the `.vtt` asset.
    pub path: String,
    /// BCP 47 tag from the file name (`intro.km.vtt`), or the language
    /// tag of the container's subtitle track; absent when neither says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// For captions taken from a subtitle track inside the video file: the
    /// WebVTT object itself (there is no `.vtt` asset; `path` is then the
    /// video's own path followed by `#<stream>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ObjectKey>,
}

impl Variant {
    /// A variant with only its identity and size; media details unset.
    pub fn new(
        name: &str,
        kind: VariantKind,
        tier: &str,
        key: ObjectKey,
        bytes: u64,
        mime: &str,
    ) -> Self {
        Self {
            name: name.into(),
            kind,
            tier: tier.into(),
            key,
            bytes,
            mime: mime.into(),
            codecs: None,
            width: None,
            height: None,
            fps: None,
            bitrate: None,
            duration: None,
            encoding: None,
            playlist: None,
            peak_bitrate: None,
            mode: None,
            ssim: None,
            first_load_bytes: None,
            language: None,
            alternate: false,
        }
    }
}

impl Asset {
    pub fn variants_of(&self, kind: VariantKind) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(move |v| v.kind == kind)
    }

    /// Bytes of this asset's variants, summed per tier name.
    pub fn bytes_by_tier(&self) -> std::collections::BTreeMap<&str, u64> {
        let mut out = std::collections::BTreeMap::new();
        for v in &self.variants {
            *out.entry(v.tier.as_str()).or_default() += v.bytes;
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub module: ModuleInfo,
    /// Name of the profile the module was built with.
    pub profile: String,
    /// The profile's tiers, slowest first, so readers can rank variants
    /// without the profile file.
    pub tiers: Vec<Tier>,
    /// Unix time (seconds) of publication.
    pub published_at: u64,
    pub assets: Vec<Asset>,
}

impl Manifest {
    pub fn asset(&self, path: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.path == path)
    }

    pub fn tier_rank(&self, tier: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == tier)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data structs with string keys cannot fail.
        serde_json::to_vec_pretty(self)
            .unwrap_or_else(|e| unreachable!("manifest serialization: {e}"))
    }

    /// Parses and checks a manifest; `what` names it in errors.
    pub fn from_json(what: &str, bytes: &[u8]) -> Result<Self, ManifestError> {
        check_schema(what, bytes)?;
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                what: what.into(),
                source,
            })?;
        for asset in &manifest.assets {
            let invalid = |reason: String| ManifestError::Invalid {
                what: what.into(),
                asset: asset.path.clone(),
                reason,
            };
            if asset.variants.is_empty() {
                return Err(invalid("has no variants".into()));
            }
            if let Some(v) = asset
                .variants
                .iter()
                .find(|v| manifest.tier_rank(&v.tier).is_none())
            {
                return Err(invalid(format!(
                    "variant {:?} names unknown tier {:?}",
                    v.name, v.tier
                )));
            }
        }
        Ok(manifest)
    }

    /// The entry this module gets in the module index.
    pub fn summary(&self) -> ModuleSummary {
        let mut bytes_by_tier = std::collections::BTreeMap::new();
        for asset in &self.assets {
            for (tier, bytes) in asset.bytes_by_tier() {
                *bytes_by_tier.entry(tier.to_owned()).or_default() += bytes;
            }
        }
        ModuleSummary {
            id: self.module.id.clone(),
            title: self.module.title.clone(),
            language: self.module.language.clone(),
            published_at: self.published_at,
            assets: self.assets.len(),
            bytes_by_tier,
        }
    }
}

/// Reads only `schema`, so a newer manifest is refused with a clear reason
/// instead of a confusing field error.
fn check_schema(what: &str, bytes: &[u8]) -> Result<(), ManifestError> {
    #[derive(Deserialize)]
    struct Probe {
        schema: u32,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
        what: what.into(),
        source,
    })?;
    if probe.schema != MANIFEST_SCHEMA {
        return Err(ManifestError::Schema {
            what: what.into(),
            found: probe.schema,
        });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleSummary {
    pub id: ModuleId,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub published_at: u64,
    pub assets: usize,
    /// Bytes of all variants made for each tier.
    pub bytes_by_tier: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleIndex {
    pub schema: u32,
    pub modules: Vec<ModuleSummary>,
}

impl Default for ModuleIndex {
    fn default() -> Self {
        Self {
            schema: MANIFEST_SCHEMA,
            modules: Vec::new(),
        }
    }
}

impl ModuleIndex {
    pub fn from_json(what: &str, bytes: &[u8]) -> Result<Self, ManifestError> {
        check_schema(what, bytes)?;
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
            what: what.into(),
            source,
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_else(|e| unreachable!("index serialization: {e}"))
    }

    /// Adds or replaces a module's entry, keeping the list sorted by id.
    pub fn upsert(&mut self, summary: ModuleSummary) {
        self.modules.retain(|m| m.id != summary.id);
        let at = self.modules.partition_point(|m| m.id < summary.id);
        self.modules.insert(at, summary);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        let tiers = crate::Profile::builtin_default().tiers;
        let variant = |name: &str, tier: &str, bytes: u64| Variant {
            codecs: Some("avc1.4d401e, mp4a.40.2".into()),
            width: Some(256),
            height: Some(144),
            fps: Some(10.0),
            bitrate: Some(60_000),
            duration: Some(61.5),
            ..Variant::new(
                name,
                VariantKind::Video,
                tier,
                ObjectKey::for_bytes(name.as_bytes(), "mp4"),
                bytes,
                "video/mp4",
            )
        };
        Manifest {
            schema: MANIFEST_SCHEMA,
            module: ModuleInfo {
                id: ModuleId::parse("teaching-questions").unwrap(),
                title: "សំណួរល្អ · Good questions".into(),
                language: Some("km".into()),
            },
            profile: "default".into(),
            tiers,
            published_at: 1_700_000_000,
            assets: vec![Asset {
                path: "lessons/lecture.mp4".into(),
                kind: AssetKind::Video,
                source: SourceInfo {
                    bytes: 1_500_000,
                    hash: ContentHash::of(b"src"),
                    mime: "video/mp4".into(),
                },
                derivation: ContentHash::of(b"derivation"),
                duration: Some(61.5),
                captions: Vec::new(),
                placeholder: None,
                variants: vec![
                    variant("144p", "2g", 400_000),
                    variant("480p", "4g", 2_000_000),
                ],
            }],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let json = m.to_json();
        assert_eq!(Manifest::from_json("m.json", &json).unwrap(), m);
        assert!(String::from_utf8(json).unwrap().contains("\"schema\": 1"));
    }

    #[test]
    fn newer_schema_refused_by_name() {
        let json = String::from_utf8(sample().to_json())
            .unwrap()
            .replace("\"schema\": 1", "\"schema\": 9");
        let e = Manifest::from_json("modules/x/manifest.json", json.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "modules/x/manifest.json has schema 9, this build reads schema 1"
        );
    }

    #[test]
    fn garbage_and_dangling_tiers_refused() {
        assert!(matches!(
            Manifest::from_json("m", b"{not json"),
            Err(ManifestError::Json { .. })
        ));
        let json = String::from_utf8(sample().to_json())
            .unwrap()
            .replace("\"tier\": \"2g\"", "\"tier\": \"9g\"");
        let e = Manifest::from_json("m", json.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown tier \"9g\""), "{e}");
        let json = String::from_utf8(sample().to_json())
            .unwrap()
            .replace("objects/", "elsewhere/");
        assert!(matches!(
            Manifest::from_json("m", json.as_bytes()),
            Err(ManifestError::Json { .. })
        ));
    }

    #[test]
    fn index_upsert_replaces_and_sorts() {
        let mut index = ModuleIndex::default();
        let mut s = sample().summary();
        assert_eq!(s.bytes_by_tier["2g"], 400_000);
        index.upsert(s.clone());
        s.title = "new".into();
        index.upsert(s.clone());
        let mut other = s.clone();
        other.id = ModuleId::parse("aaa").unwrap();
        index.upsert(other);
        assert_eq!(index.modules.len(), 2);
        assert_eq!(index.modules[0].id.as_str(), "aaa");
        assert_eq!(index.modules[1].title, "new");
        let back = ModuleIndex::from_json("i", &index.to_json()).unwrap();
        assert_eq!(back, index);
    }
}
