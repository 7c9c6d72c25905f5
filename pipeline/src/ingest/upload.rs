//! Renditions and extracted captions into the store, content-addressed: an
//! object's key is its bytes' SHA-256, so a put of something already there
//! uploads nothing and a repeated step is harmless.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use lowband_catalog::manifest::{Caption, Variant};
use lowband_catalog::{ContentHash, ObjectKey, Store};

use super::context::{blocking, Uploads};
use super::error::IngestError;
use crate::discover::SourceAsset;
use crate::rendition::{Payload, Rendition};
use crate::video::ExtractedCaptions;

/// Uploads in flight at once for one asset.
const UPLOAD_CONCURRENCY: usize = 4;

/// Stores the WebVTT files taken from the source's subtitle streams.
pub(super) async fn captions(
    store: &Store,
    src: &SourceAsset,
    extracted: &[ExtractedCaptions],
    uploads: &mut Uploads,
) -> Result<Vec<Caption>, IngestError> {
    let mut captions = Vec::with_capacity(extracted.len());
    for track in extracted {
        // Captions are small: read whole.
        let text = tokio::fs::read(&track.path)
            .await
            .map_err(|source| IngestError::Captions {
                file: src.file.clone(),
                stream: track.stream,
                source,
            })?;
        let len = text.len() as u64;
        let (key, uploaded) = store.put_object(Bytes::from(text), "vtt").await?;
        uploads.count(uploaded, len);
        captions.push(Caption {
            path: format!("{}#{}", src.path, track.stream),
            language: track.language.clone(),
            key: Some(key),
        });
    }
    Ok(captions)
}

/// Stores every rendition, a few at a time, and describes each as a variant.
pub(super) async fn renditions(
    store: &Store,
    src: &SourceAsset,
    renditions: Vec<Rendition>,
    uploads: &mut Uploads,
) -> Result<Vec<Variant>, IngestError> {
    let done: Vec<(Variant, Uploads)> = futures::stream::iter(renditions)
        .map(|r| upload(store, src, r))
        .buffered(UPLOAD_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(done
        .into_iter()
        .map(|(variant, one)| {
            uploads.add(one);
            variant
        })
        .collect())
}

/// Stores one rendition (and its HLS media playlist, if it has fragments).
async fn upload(
    store: &Store,
    src: &SourceAsset,
    r: Rendition,
) -> Result<(Variant, Uploads), IngestError> {
    let mut uploads = Uploads::default();
    let (key, bytes, uploaded) = match &r.payload {
        Payload::Bytes(b) => {
            let len = b.len() as u64;
            let (key, uploaded) = store.put_object(b.clone(), r.ext).await?;
            (key, len, uploaded)
        }
        Payload::File(path) => {
            let hashed = path.clone();
            let (hash, len) = blocking(&src.file, move || {
                ContentHash::of_file(&hashed).map_err(|source| IngestError::Read {
                    file: hashed.clone(),
                    source,
                })
            })
            .await?;
            let key = ObjectKey::new(hash, r.ext);
            let uploaded = store.put_file(&key, path).await?;
            (key, len, uploaded)
        }
    };
    uploads.count(uploaded, bytes);
    // The HLS media playlist names the rendition's own object by byte ranges.
    let playlist = match &r.fragments {
        Some(fragments) => {
            let text = fragments.media_playlist(&format!("/o/{key}"));
            Some(put_playlist(store, text, &mut uploads).await?)
        }
        None => None,
    };
    Ok((variant(r, key, bytes, playlist), uploads))
}

async fn put_playlist(
    store: &Store,
    text: String,
    uploads: &mut Uploads,
) -> Result<ObjectKey, IngestError> {
    let len = text.len() as u64;
    let (playlist, uploaded) = store.put_object(Bytes::from(text), "m3u8").await?;
    uploads.count(uploaded, len);
    Ok(playlist)
}

/// The manifest's description of a stored rendition.
fn variant(r: Rendition, key: ObjectKey, bytes: u64, playlist: Option<ObjectKey>) -> Variant {
    let bitrate = r
        .duration
        .filter(|d| *d > 0.0)
        .map(|d| (bytes as f64 * 8.0 / d).round() as u64);
    Variant {
        name: r.name,
        kind: r.kind,
        tier: r.tier,
        key,
        bytes,
        mime: r.mime,
        codecs: r.codecs,
        width: r.width,
        height: r.height,
        fps: r.fps,
        bitrate,
        duration: r.duration,
        encoding: r.encoding,
        peak_bitrate: r
            .fragments
            .as_ref()
            .map(crate::fmp4::FragmentIndex::peak_bitrate),
        playlist,
        mode: r.mode,
        ssim: r.ssim.map(|s| (s * 10_000.0).round() / 10_000.0),
        first_load_bytes: r.first_load_bytes,
        alternate: r.alternate.is_some(),
        language: r.alternate.flatten(),
    }
}
