//! What the edge works out once per manifest instead of once per request.
//!
//! A manifest is read once per TTL and then answers thousands of requests,
//! so everything a response takes from it alone is made when it is read: an
//! index of the assets by path, and the headers each variant always carries
//! (`ETag`, `Content-Location`, `Content-Type`, `Content-Encoding`, the
//! asset's `Vary` and the module's `Last-Modified`). The request path then
//! clones these values (a reference count each) instead of formatting and
//! copying them, which was a tenth of the edge's CPU on a small page. The
//! same headers of objects asked for by key alone are made once per key
//! ([`KeyedHeaders`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;
use lowband_catalog::manifest::{Asset, Manifest, Variant};
use lowband_catalog::{media_type, ObjectKey};

use crate::bounded::Bounded;
use crate::choose::signals;
use crate::choose::transform;
use crate::http::conditional;

/// A manifest with what its responses need, ready to clone.
pub struct Prepared {
    pub manifest: Arc<Manifest>,
    /// Asset path → index into `manifest.assets`.
    by_path: HashMap<String, usize>,
    /// Per asset, in the manifest's order.
    assets: Vec<AssetHeaders>,
    /// When the module was published, to whole seconds (its `Last-Modified`).
    pub published: SystemTime,
    published_value: Option<HeaderValue>,
}

/// The headers of one asset's responses that depend on the asset alone.
struct AssetHeaders {
    vary: HeaderValue,
    /// `Vary` of a response where the request's `Cache-Control:
    /// no-transform` can pick the original (`None` where it cannot).
    vary_transform: Option<HeaderValue>,
    /// Per variant, in the asset's order.
    variants: Vec<ObjectHeaders>,
}

/// The headers a stored object is always sent with.
#[derive(Debug, Clone)]
pub struct ObjectHeaders {
    /// The strong validator: the object's content hash, quoted.
    pub etag: HeaderValue,
    /// `/o/<key>`, the object's immutable address.
    pub location: HeaderValue,
    pub content_type: Option<HeaderValue>,
    pub encoding: Option<HeaderValue>,
}

impl ObjectHeaders {
    pub fn new(key: &ObjectKey, mime: &str, encoding: Option<&str>) -> Self {
        Self {
            etag: shared(format!("\"{}\"", key.hash())),
            location: shared(format!("/o/{key}")),
            content_type: HeaderValue::from_str(mime).ok(),
            encoding: encoding.and_then(|e| HeaderValue::from_str(e).ok()),
        }
    }

    /// The entity tag as text, for evaluating preconditions and `If-Range`.
    pub fn etag_str(&self) -> &str {
        // Made from a quoted hex digest: always visible ASCII.
        self.etag.to_str().unwrap_or_default()
    }
}

/// Headers of objects asked for by key at most this many at once.
const KEYED_HEADERS: usize = 4096;

/// The headers of objects asked for by key (`/o/<key>`): made once each and
/// shared while held, since they are as immutable as the objects.
pub struct KeyedHeaders {
    held: Bounded<ObjectKey, Arc<ObjectHeaders>, foldhash::fast::RandomState>,
}

impl Default for KeyedHeaders {
    fn default() -> Self {
        Self {
            held: Bounded::lasting(KEYED_HEADERS),
        }
    }
}

impl KeyedHeaders {
    /// The headers `key` is sent with at `/o/`.
    pub fn get(&self, key: &ObjectKey) -> Arc<ObjectHeaders> {
        if let Some(made) = self.held.get(key) {
            return made;
        }
        let made = Arc::new(ObjectHeaders::new(
            key,
            media_type::of_stored_ext(key.ext()).mime,
            None,
        ));
        self.held.insert(key.clone(), Arc::clone(&made));
        made
    }
}

/// A header value from text made here (hex, a key, a date): no copy.
/// Text that a header cannot carry becomes an empty value, never a panic.
fn shared(text: String) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Prepared {
    pub fn new(manifest: Arc<Manifest>) -> Self {
        let published = conditional::from_unix(manifest.published_at);
        let by_path = manifest
            .assets
            .iter()
            .enumerate()
            .map(|(i, a)| (a.path.clone(), i))
            .collect();
        let assets = manifest.assets.iter().map(asset_headers).collect();
        Self {
            published_value: HeaderValue::from_str(&httpdate::fmt_http_date(published)).ok(),
            published,
            by_path,
            assets,
            manifest,
        }
    }

    /// The asset at `path` and its index.
    pub fn asset(&self, path: &str) -> Option<(usize, &Asset)> {
        let &i = self.by_path.get(path)?;
        Some((i, &self.manifest.assets[i]))
    }

    /// `Vary` of the asset's responses: with `Cache-Control` where
    /// `transform` is set and no-transform can pick the original.
    pub fn vary(&self, index: usize, transform: bool) -> HeaderValue {
        match (&self.assets[index].vary_transform, transform) {
            (Some(v), true) => v.clone(),
            _ => self.assets[index].vary.clone(),
        }
    }

    /// The fixed headers of `variant`, one of the asset's variants.
    pub fn object_headers(&self, index: usize, variant: &Variant) -> Option<&ObjectHeaders> {
        let asset = &self.manifest.assets[index];
        let position = asset
            .variants
            .iter()
            .position(|v| std::ptr::eq(v, variant))?;
        self.assets[index].variants.get(position)
    }

    /// [`Self::published`] formatted as a `Last-Modified` value.
    pub fn published_value(&self) -> Option<&HeaderValue> {
        self.published_value.as_ref()
    }
}

fn asset_headers(asset: &Asset) -> AssetHeaders {
    AssetHeaders {
        vary: HeaderValue::from_static(signals::vary_for(asset)),
        vary_transform: transform::matters(asset)
            .then(|| HeaderValue::from_str(&format!("{}, Cache-Control", signals::vary_for(asset))))
            .and_then(Result::ok),
        variants: asset
            .variants
            .iter()
            .map(|v| ObjectHeaders::new(&v.key, &v.mime, v.encoding.as_deref()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowband_catalog::manifest::{
        AssetKind, ModuleInfo, SourceInfo, VariantKind, MANIFEST_SCHEMA,
    };
    use lowband_catalog::{ContentHash, ModuleId, Profile};

    fn variant(name: &str, body: &[u8], encoding: Option<&str>) -> Variant {
        let key = ObjectKey::for_bytes(body, "html");
        Variant {
            encoding: encoding.map(Into::into),
            ..Variant::new(
                name,
                VariantKind::Page,
                "2g",
                key,
                body.len() as u64,
                "text/html; charset=utf-8",
            )
        }
    }

    #[test]
    fn headers_match_what_each_variant_is_sent_with() {
        let page = Asset {
            path: "lesson/page.html".into(),
            kind: AssetKind::Page,
            source: SourceInfo {
                bytes: 5,
                hash: ContentHash::of(b"plain"),
                mime: "text/html".into(),
            },
            derivation: ContentHash::of(b"d"),
            captions: Vec::new(),
            placeholder: None,
            duration: None,
            variants: vec![
                variant("br", b"brotli", Some("br")),
                variant("identity", b"plain", None),
            ],
        };
        let manifest = Manifest {
            schema: MANIFEST_SCHEMA,
            module: ModuleInfo {
                id: ModuleId::parse("m1").unwrap(),
                title: "m1".into(),
                language: None,
            },
            profile: "default".into(),
            tiers: Profile::builtin_default().tiers,
            published_at: 1_700_000_000,
            assets: vec![page],
        };
        let prepared = Prepared::new(Arc::new(manifest));
        let (i, asset) = prepared.asset("lesson/page.html").unwrap();
        assert!(prepared.asset("lesson/other.html").is_none());

        let br = prepared.object_headers(i, &asset.variants[0]).unwrap();
        let key = &asset.variants[0].key;
        assert_eq!(br.etag_str(), format!("\"{}\"", key.hash()));
        assert_eq!(br.location, format!("/o/{key}").as_str());
        assert_eq!(
            br.content_type.as_ref().unwrap(),
            "text/html; charset=utf-8"
        );
        assert_eq!(br.encoding.as_ref().unwrap(), "br");
        let plain = prepared.object_headers(i, &asset.variants[1]).unwrap();
        assert!(plain.encoding.is_none());
        // An equal copy of a variant is not one of this manifest's.
        let copy = asset.variants[0].clone();
        assert!(prepared.object_headers(i, &copy).is_none());

        // The identity copy is the source: no-transform can pick it.
        assert_eq!(prepared.vary(i, false), signals::vary_for(asset));
        assert_eq!(
            prepared.vary(i, true),
            format!("{}, Cache-Control", signals::vary_for(asset)).as_str()
        );
        assert_eq!(prepared.published, conditional::from_unix(1_700_000_000));
        assert_eq!(
            prepared.published_value().unwrap(),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }
}
