//! Where a video's captions are: one pure lookup that the lesson page's
//! `<track>`s, the HLS subtitle renditions and the cache's prefetch share.
//!
//! A caption the pipeline took from a subtitle track inside the video names
//! its WebVTT object itself (`key`; its `path` is `<video>#<stream>`, no
//! asset). One from a `.vtt` file beside the video names that asset, whose
//! identity copy is the WebVTT a player reads (a `<track>` cannot ask for a
//! content-coding).

use lowband_catalog::manifest::{Caption, Manifest};
use lowband_catalog::ObjectKey;

/// The WebVTT object of `caption`, served at `/o/<key>`; `None` when its
/// `.vtt` asset is missing from `manifest` or has no identity copy.
pub fn vtt_object<'a>(manifest: &'a Manifest, caption: &'a Caption) -> Option<&'a ObjectKey> {
    if let Some(key) = &caption.key {
        return Some(key);
    }
    manifest
        .asset(&caption.path)?
        .variants
        .iter()
        .find(|v| v.encoding.is_none())
        .map(|v| &v.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowband_catalog::manifest::{
        Asset, AssetKind, ModuleInfo, SourceInfo, Variant, VariantKind, MANIFEST_SCHEMA,
    };
    use lowband_catalog::{ContentHash, ModuleId, Profile};

    fn manifest() -> Manifest {
        let vtt = |body: &[u8], coding: Option<&str>| Variant {
            encoding: coding.map(Into::into),
            ..Variant::new(
                coding.unwrap_or("identity"),
                VariantKind::File,
                "slow-2g",
                ObjectKey::for_bytes(body, "vtt"),
                body.len() as u64,
                "text/vtt",
            )
        };
        Manifest {
            schema: MANIFEST_SCHEMA,
            module: ModuleInfo {
                id: ModuleId::parse("m").unwrap(),
                title: "m".into(),
                language: None,
            },
            profile: "default".into(),
            tiers: Profile::builtin_default().tiers,
            published_at: 0,
            assets: vec![Asset {
                path: "intro.km.vtt".into(),
                kind: AssetKind::File,
                source: SourceInfo {
                    bytes: 6,
                    hash: ContentHash::of(b"WEBVTT"),
                    mime: "text/vtt".into(),
                },
                derivation: ContentHash::of(b""),
                duration: None,
                captions: Vec::new(),
                placeholder: None,
                variants: vec![vtt(b"br", Some("br")), vtt(b"WEBVTT", None)],
            }],
        }
    }

    #[test]
    fn a_key_names_the_object_else_the_vtt_asset_does() {
        let m = manifest();
        let beside = Caption {
            path: "intro.km.vtt".into(),
            language: Some("km".into()),
            key: None,
        };
        assert_eq!(
            vtt_object(&m, &beside),
            Some(&ObjectKey::for_bytes(b"WEBVTT", "vtt"))
        );
        let inside = Caption {
            path: "intro.mkv#2".into(),
            language: Some("eng".into()),
            key: Some(ObjectKey::for_bytes(b"WEBVTT\n\nfrom the mkv", "vtt")),
        };
        assert_eq!(vtt_object(&m, &inside), inside.key.as_ref());
        let missing = Caption {
            path: "gone.vtt".into(),
            language: None,
            key: None,
        };
        assert_eq!(vtt_object(&m, &missing), None);
    }
}
