//! `Cache-Control: no-transform` on a request: give the author's bytes.
//!
//! Every variant in a manifest is a rendition the pipeline made (a rung, an
//! image width × format) except one: the identity variant of a page or file
//! whose bytes are the source's own (its content hash equals the source
//! hash). A request carrying `no-transform` asks for bytes identical to the
//! original, so when that variant exists it is served, without a
//! content-coding (RFC 9110 counts a change of `Content-Encoding` as a
//! transformation). When no stored variant is the original (videos, images)
//! there is nothing untransformed to give, and the usual choice is served.
//! Pure: no I/O.

use http::header::{HeaderMap, CACHE_CONTROL};
use lowband_catalog::manifest::{Asset, Variant};

/// What `no-transform` did to a choice; shown in `Lowband-Variant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTransform {
    /// The original was served in place of the selected variant (or was the selected one).
    Original,
    /// No variant of this asset is the original: the usual choice was served.
    Unavailable,
}

impl NoTransform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Whether the request's `Cache-Control` holds `no-transform`.
pub fn requested(headers: &HeaderMap) -> bool {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

/// The variant whose bytes are the asset's source, served as is.
pub fn original(asset: &Asset) -> Option<&Variant> {
    asset
        .variants
        .iter()
        .find(|v| v.encoding.is_none() && v.key.hash() == asset.source.hash)
}

/// Whether `no-transform` can change what this asset's URL serves, so its
/// responses must list `Cache-Control` in `Vary`.
pub fn matters(asset: &Asset) -> bool {
    original(asset).is_some() && asset.variants.len() > 1
}

/// Applies a request's `no-transform` to the `selected` variant.
pub fn apply<'a>(
    asset: &'a Asset,
    selected: &'a Variant,
    no_transform: bool,
) -> (&'a Variant, Option<NoTransform>) {
    if !no_transform {
        return (selected, None);
    }
    match original(asset) {
        Some(v) => (v, Some(NoTransform::Original)),
        None => (selected, Some(NoTransform::Unavailable)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use lowband_catalog::manifest::{AssetKind, SourceInfo, VariantKind};
    use lowband_catalog::{ContentHash, ObjectKey};

    fn page(identity_is_source: bool) -> Asset {
        let source = b"<p>hello</p>";
        let identity_bytes: &[u8] = if identity_is_source { source } else { b"<p>hi" };
        let v = |name: &str, bytes: &[u8], coding: Option<&str>| Variant {
            encoding: coding.map(Into::into),
            ..Variant::new(
                name,
                VariantKind::Page,
                "slow-2g",
                ObjectKey::for_bytes(bytes, "html"),
                bytes.len() as u64,
                "text/html",
            )
        };
        Asset {
            path: "index.html".into(),
            kind: AssetKind::Page,
            source: SourceInfo {
                bytes: source.len() as u64,
                hash: ContentHash::of(source),
                mime: "text/html".into(),
            },
            derivation: ContentHash::of(b""),
            duration: None,
            captions: Vec::new(),
            placeholder: None,
            variants: vec![
                v("identity", identity_bytes, None),
                v("br", b"compressed", Some("br")),
            ],
        }
    }

    #[test]
    fn directive_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert!(!requested(&h));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, No-Transform"),
        );
        assert!(requested(&h));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-transformation"));
        assert!(!requested(&h));
    }

    #[test]
    fn original_replaces_a_coded_copy_only_when_asked() {
        let a = page(true);
        let br = &a.variants[1];
        assert_eq!(apply(&a, br, false).0.name, "br");
        let (v, why) = apply(&a, br, true);
        assert_eq!(
            (v.name.as_str(), why),
            ("identity", Some(NoTransform::Original))
        );
        assert!(matters(&a));
    }

    #[test]
    fn without_an_original_the_choice_stands() {
        let a = page(false);
        let br = &a.variants[1];
        assert_eq!(original(&a), None);
        let (v, why) = apply(&a, br, true);
        assert_eq!(
            (v.name.as_str(), why),
            ("br", Some(NoTransform::Unavailable))
        );
        assert!(!matters(&a));
    }
}
