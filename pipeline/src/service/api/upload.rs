//! Resumable uploads: an upload session is a list of parts in the store.
//!
//! ```text
//! incoming/uploads/<upload>/meta.json                 {"length": <bytes or null>}
//! incoming/uploads/<upload>/part-<offset, 20 digits>  bytes [offset, offset + size)
//! ```
//!
//! A request body is cut into parts of at most [`PART_BYTES`] as it arrives,
//! so memory stays bounded; when the connection drops, what arrived is kept
//! as a last part, and the session's offset (the end of the contiguous
//! parts) tells the client where to resume. Nothing here is published: a
//! session only becomes a job when its archive has been checked whole. The
//! byte counts the requests carry (`Upload-Length`, `Upload-Offset`,
//! `Content-Length`) are read here too.

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Body;
use lowband_catalog::{Store, StoreError};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::error::{ApiError, BodyError};
use crate::service::jobs;

/// Bytes per stored part.
pub const PART_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Total bytes the client announced (`Upload-Length`), if it did.
    pub length: Option<u64>,
}

/// Whether `s` can be an upload id (checked before it goes into a key).
pub fn valid_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn prefix(id: &str) -> String {
    format!("{}/uploads/{id}/", jobs::INCOMING)
}

fn meta_key(id: &str) -> String {
    format!("{}meta.json", prefix(id))
}

fn part_key(id: &str, offset: u64) -> String {
    format!("{}part-{offset:020}", prefix(id))
}

pub async fn create(store: &Store, id: &str, length: Option<u64>) -> Result<(), StoreError> {
    jobs::put_json(store, &meta_key(id), &Meta { length }).await
}

pub async fn meta(store: &Store, id: &str) -> Result<Option<Meta>, StoreError> {
    jobs::get_json(store, &meta_key(id)).await
}

/// The session's parts as (offset, size), in order, up to the first gap.
async fn parts(store: &Store, id: &str) -> Result<Vec<(u64, u64)>, StoreError> {
    let pre = prefix(id);
    let metas: Vec<_> = store
        .inner()
        .list(Some(&Path::from(pre.trim_end_matches('/'))))
        .try_collect()
        .await
        .map_err(|e| StoreError::Io {
            store: store.url().to_owned(),
            key: pre.clone(),
            source: e,
        })?;
    let mut parts: Vec<(u64, u64)> = metas
        .iter()
        .filter_map(|m| {
            let name = m.location.filename()?;
            Some((name.strip_prefix("part-")?.parse().ok()?, m.size))
        })
        .collect();
    parts.sort_unstable();
    let mut end = 0;
    let mut contiguous = Vec::with_capacity(parts.len());
    for (offset, size) in parts {
        // A part that starts inside one already counted was a retry's overlap.
        if offset == end {
            contiguous.push((offset, size));
            end += size;
        } else if offset > end {
            break;
        }
    }
    Ok(contiguous)
}

/// A header that must be a decimal byte count, if present.
pub(super) fn header_u64(headers: &http::HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "{name}: {:?} is not a byte count",
            String::from_utf8_lossy(v.as_bytes())
        )));
    }
    text.parse()
        .map(Some)
        .map_err(|_| ApiError::BadRequest(format!("{name}: {text} is too large")))
}

/// Bytes received so far, in one piece from 0.
pub async fn offset(store: &Store, id: &str) -> Result<u64, StoreError> {
    Ok(parts(store, id).await?.iter().map(|(_, s)| s).sum())
}

/// Appends a request body at `offset`, part by part. Returns the new offset;
/// a body that breaks off keeps what arrived and reports where it stopped.
pub async fn append<B>(
    store: &Store,
    id: &str,
    mut offset: u64,
    limit: u64,
    mut body: B,
) -> Result<u64, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    let mut buffer = BytesMut::new();
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                let kept = flush(store, id, &mut offset, &mut buffer).await;
                kept?;
                return Err(ApiError::Interrupted {
                    upload: id.to_owned(),
                    offset,
                    source: e.into(),
                });
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if offset + (buffer.len() + data.len()) as u64 > limit {
            return Err(ApiError::TooLarge(format!(
                "upload {id}: more than the {limit} bytes allowed"
            )));
        }
        buffer.extend_from_slice(&data);
        if buffer.len() >= PART_BYTES {
            flush(store, id, &mut offset, &mut buffer).await?;
        }
    }
    flush(store, id, &mut offset, &mut buffer).await?;
    Ok(offset)
}

async fn flush(
    store: &Store,
    id: &str,
    offset: &mut u64,
    buffer: &mut BytesMut,
) -> Result<(), ApiError> {
    if buffer.is_empty() {
        return Ok(());
    }
    let bytes = buffer.split().freeze();
    let len = bytes.len() as u64;
    jobs::put_bytes(store, &part_key(id, *offset), bytes).await?;
    *offset += len;
    Ok(())
}

/// Copies the session's bytes into a local file, in order.
pub async fn spool(store: &Store, id: &str, file: &std::path::Path) -> Result<u64, ApiError> {
    let local = || file.display().to_string();
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(ApiError::io(local()))?;
    let mut total = 0;
    for (offset, _) in parts(store, id).await? {
        let key = part_key(id, offset);
        let read = |source| ApiError::Read {
            key: key.clone(),
            source,
        };
        let got = store
            .inner()
            .get(&Path::from(key.as_str()))
            .await
            .map_err(read)?;
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.try_next().await.map_err(read)? {
            total += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(ApiError::io(local()))?;
        }
    }
    out.flush().await.map_err(ApiError::io(local()))?;
    Ok(total)
}

/// Deletes the session (after it became a job or was refused).
pub async fn remove(store: &Store, id: &str) -> Result<(), StoreError> {
    let pre = prefix(id);
    for name in jobs::list(store, &pre).await? {
        jobs::delete(store, &format!("{pre}{name}")).await?;
    }
    Ok(())
}
