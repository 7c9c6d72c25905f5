//! Sending a stored object: validators, preconditions, byte ranges and a
//! body streamed from the store with bounded memory.
//!
//! The object is never read whole: a full or single-range response is one
//! ranged `get` streamed as it arrives; a multi-range response streams each
//! range in turn between its framing (see `multipart`), opening the first
//! before answering so that a store outage still becomes a clean 502.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use lowband_catalog::{media_type, ObjectKey, Store, StoreError};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use super::files::{LocalObject, OpenFiles};
use super::prepared::ObjectHeaders;
use crate::cache::fill::Fill;
use crate::cache::{Cache, Miss};
use crate::http::body::{self, Body, CHUNK};
use crate::http::conditional;
use crate::http::error::EdgeError;
use crate::http::multipart::{self, Multipart};
use crate::http::range::{self, ByteRange, Ranged};
use crate::http::response::{preconditions, set_last_modified, with_headers};
use crate::metrics::{Metrics, StoreOp};

const ACCEPT_RANGES_BYTES: HeaderValue = HeaderValue::from_static("bytes");
/// On a cache node: whether the object came from disk (`hit`), from a fetch
/// in progress (`miss`) or straight from the upstream (`pass`).
pub const LOWBAND_CACHE: http::HeaderName = http::HeaderName::from_static("lowband-cache");

/// Where the bytes of an object are read from.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub store: &'a Store,
    /// Objects of a `file://` store (or a cache directory) read straight from disk.
    pub files: Option<&'a OpenFiles>,
    /// On a cache node: what fetches objects `files` does not hold.
    pub cache: Option<&'a Arc<Cache>>,
}

/// An object found, and how to read it.
enum Found {
    Local(LocalObject),
    /// Being fetched by the cache: read as it arrives.
    Filling(Arc<Fill>, u64),
    /// Read through from the cache's upstream.
    Pass(u64),
    /// Read from the store through object_store.
    Store,
}

/// What to send and how it may be cached.
pub struct ObjectSpec<'a> {
    pub key: &'a ObjectKey,
    /// Size from the manifest; `None` asks the store (and takes its modification time).
    pub known_len: Option<u64>,
    /// When the representation last changed, if known without asking the store.
    pub last_modified: Option<SystemTime>,
    /// `Last-Modified` already formatted for `last_modified`.
    pub last_modified_value: Option<&'a HeaderValue>,
    /// The headers the object is always sent with (made with its manifest).
    pub fixed: &'a ObjectHeaders,
    pub cache_control: HeaderValue,
    /// A HEAD request: answer with headers only, read nothing.
    pub head_only: bool,
}

/// Streams (part of) an immutable object; `headers` are added to the response.
pub async fn send(
    source: Source<'_>,
    metrics: &Metrics,
    req_headers: &HeaderMap,
    spec: ObjectSpec<'_>,
    mut headers: HeaderMap,
) -> Result<Response<Body>, EdgeError> {
    let fixed = spec.fixed;
    headers.insert(header::CACHE_CONTROL, spec.cache_control.clone());
    headers.insert(header::ACCEPT_RANGES, ACCEPT_RANGES_BYTES);
    headers.insert(header::ETAG, fixed.etag.clone());
    headers.insert(header::CONTENT_LOCATION, fixed.location.clone());
    if let Some(coding) = &fixed.encoding {
        headers.insert(header::CONTENT_ENCODING, coding.clone());
    }
    let found = find(source, metrics, spec.key).await?;
    if source.cache.is_some() {
        headers.insert(LOWBAND_CACHE, HeaderValue::from_static(found.outcome()));
    }
    let (len, changed) = match known_length(&spec, &found)? {
        Some(known) => known,
        None => stat(source.store, metrics, spec.key).await?,
    };
    let last_modified = set_changed(&spec, &found, changed, &mut headers);
    if let Some(not_modified) =
        preconditions(req_headers, &mut headers, fixed.etag_str(), last_modified)?
    {
        return Ok(not_modified);
    }
    let range = match range::evaluate(req_headers, len, fixed.etag_str()) {
        Ranged::Unsatisfiable => return Err(EdgeError::RangeNotSatisfiable { len }),
        // Read through, parts would each be an upstream request: send it whole (RFC 9110 §14.2 allows).
        Ranged::Multipart(_) if matches!(found, Found::Pass(_)) => None,
        Ranged::Multipart(ranges) => {
            if let Found::Filling(fill, _) = &found {
                // Parts are read from the cache directory once the object is there.
                fill.done()
                    .await
                    .map_err(|e| EdgeError::upstream(e.is_timeout(), e))?;
            }
            // Each part names the type the whole would have had.
            let mime = spec
                .fixed
                .content_type
                .as_ref()
                .and_then(|v| v.to_str().ok());
            let mime = mime.unwrap_or(media_type::UNKNOWN.mime);
            let framing = Multipart::new(multipart::boundary(), &ranges, mime, len);
            let parts = Parts {
                store: source.store,
                metrics,
                path: StorePath::from(spec.key.to_string()),
                key: spec.key,
                len,
            };
            return send_multipart(parts, framing, headers, spec.head_only).await;
        }
        Ranged::Partial(r) => Some(r),
        Ranged::Full => None,
    };
    if let Some(mime) = &fixed.content_type {
        headers.insert(header::CONTENT_TYPE, mime.clone());
    }
    let Some((status, range)) = single_part(range, len, &mut headers) else {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
        return Ok(with_headers(StatusCode::OK, headers, body::empty()));
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
    if spec.head_only {
        return Ok(with_headers(status, headers, body::empty()));
    }
    let body = found.body(source, metrics, spec.key, range, len).await?;
    Ok(with_headers(status, headers, body))
}

/// The status and the range of a one-part answer (`range`, or the whole
/// object), with its `Content-Range` set; `None` for an empty object.
fn single_part(
    range: Option<ByteRange>,
    len: u64,
    headers: &mut HeaderMap,
) -> Option<(StatusCode, ByteRange)> {
    match range {
        Some(r) => {
            if let Ok(v) = HeaderValue::try_from(r.content_range(len)) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            Some((StatusCode::PARTIAL_CONTENT, r))
        }
        None if len == 0 => None,
        None => Some((
            StatusCode::OK,
            ByteRange {
                start: 0,
                end: len - 1,
            },
        )),
    }
}

/// The object's length, checked against the manifest's, and when it last
/// changed, when that is known without asking the store (`None`: ask it).
fn known_length(
    spec: &ObjectSpec<'_>,
    found: &Found,
) -> Result<Option<(u64, Option<SystemTime>)>, EdgeError> {
    let (found_len, found_modified) = match found {
        Found::Local(object) => (Some(object.len), object.last_modified.as_ref().map(|l| l.0)),
        Found::Filling(_, len) | Found::Pass(len) => (Some(*len), None),
        Found::Store => (None, None),
    };
    Ok(match (found_len, spec.known_len) {
        (Some(found), Some(expected)) if found != expected => {
            return Err(EdgeError::SizeMismatch {
                key: spec.key.to_string(),
                expected,
                found,
            })
        }
        (Some(found), _) => Some((found, spec.last_modified.or(found_modified))),
        (None, Some(len)) => Some((len, spec.last_modified)),
        (None, None) => None,
    })
}

/// The object's length and modification time, from the store.
async fn stat(
    store: &Store,
    metrics: &Metrics,
    key: &ObjectKey,
) -> Result<(u64, Option<SystemTime>), EdgeError> {
    let path = StorePath::from(key.to_string());
    let meta = metrics
        .time_store(StoreOp::Head, store.inner().head(&path))
        .await
        .map_err(|e| store_error(store, &path, e))?;
    Ok((meta.size, Some(meta.last_modified.into())))
}

/// Sets `Last-Modified` for a representation changed at `changed`, with
/// the value formatted beforehand where there is one; returns the time set.
fn set_changed(
    spec: &ObjectSpec<'_>,
    found: &Found,
    changed: Option<SystemTime>,
    headers: &mut HeaderMap,
) -> Option<SystemTime> {
    let t = conditional::last_modified(changed?, SystemTime::now());
    let file_value = match found {
        Found::Local(object) => object.last_modified.as_ref(),
        _ => None,
    };
    let value = spec
        .last_modified_value
        .filter(|_| Some(t) == spec.last_modified)
        .or_else(|| file_value.filter(|(at, _)| *at == t).map(|(_, v)| v));
    set_last_modified(headers, t, value);
    Some(t)
}

impl Found {
    /// `Lowband-Cache` on a cache node.
    fn outcome(&self) -> &'static str {
        match self {
            Found::Local(_) | Found::Store => "hit",
            Found::Filling(..) => "miss",
            Found::Pass(_) => "pass",
        }
    }

    /// The body of `range` of the object (of `len` bytes), read from where it was found.
    async fn body(
        self,
        source: Source<'_>,
        metrics: &Metrics,
        key: &ObjectKey,
        range: ByteRange,
        len: u64,
    ) -> Result<Body, EdgeError> {
        let cache = source.cache;
        match self {
            Found::Local(object) => {
                let dir = source
                    .files
                    .map_or(std::path::Path::new(""), OpenFiles::dir);
                let object_len = object.len;
                let body = local_body(object, range, metrics)
                    .await
                    .map_err(|e| local_error(dir, key, e))?;
                if let Some(cache) = cache {
                    cache.hit(key, object_len, range.len());
                }
                Ok(body)
            }
            Found::Filling(fill, _) => {
                let cache = cache.ok_or(EdgeError::NotFound)?;
                let chunks = cache.fill_body(key, &fill, range).await?;
                Ok(body::stream(chunks))
            }
            Found::Pass(_) => {
                let cache = cache.ok_or(EdgeError::NotFound)?;
                Ok(body::stream(cache.pass(key, range).await?))
            }
            Found::Store => {
                let store = source.store;
                let path = StorePath::from(key.to_string());
                let chunks = metrics
                    .time_store(StoreOp::Get, open_range(store.inner(), &path, range, len))
                    .await
                    .map_err(|e| e.into_edge(store, &path, key))?;
                Ok(body::stream(chunks))
            }
        }
    }
}

/// Finds `key`: on disk, through the cache, or (without `files`) in the store.
async fn find(source: Source<'_>, metrics: &Metrics, key: &ObjectKey) -> Result<Found, EdgeError> {
    let Some(files) = source.files else {
        return Ok(Found::Store);
    };
    // A held descriptor is no store operation: only opens are timed.
    if let Some(object) = files.cached(key) {
        return Ok(Found::Local(object));
    }
    let get = || metrics.time_store(StoreOp::Head, async { files.get(key) });
    if let Some(object) = get().await.map_err(|e| local_error(files.dir(), key, e))? {
        return Ok(Found::Local(object));
    }
    let Some(cache) = source.cache else {
        return Err(EdgeError::NotFound);
    };
    match cache.miss(key).await? {
        // Fetched meanwhile (or by another process): it is on disk now.
        Miss::Stored => get()
            .await
            .map_err(|e| local_error(files.dir(), key, e))?
            .map(Found::Local)
            .ok_or(EdgeError::NotFound),
        Miss::Filling(fill, len) => Ok(Found::Filling(fill, len)),
        Miss::Pass(len) => Ok(Found::Pass(len)),
    }
}

/// A body for `range` of a local object: read whole when it fits in one
/// chunk (hyper then writes headers and body together), else its first
/// chunk now, so that a read error is still a clean 502, and the rest as
/// the client takes it.
async fn local_body(
    object: LocalObject,
    range: ByteRange,
    metrics: &Metrics,
) -> std::io::Result<Body> {
    // Bytes already in memory are no store operation: only reads are timed.
    let local = &object;
    let read = |range| async move {
        match local.in_memory(range) {
            Some(held) => held,
            None => {
                metrics
                    .time_store(StoreOp::Get, local.read_disk(range))
                    .await
            }
        }
    };
    if range.len() <= CHUNK {
        return Ok(body::full(read(range).await?));
    }
    let first = ByteRange {
        start: range.start,
        end: range.start + CHUNK - 1,
    };
    let head = read(first).await?;
    let rest = object.stream(ByteRange {
        start: first.end + 1,
        end: range.end,
    });
    Ok(body::stream(
        stream::once(async move { Ok(head) }).chain(rest),
    ))
}

fn local_error(dir: &std::path::Path, key: &ObjectKey, source: std::io::Error) -> EdgeError {
    EdgeError::Store(StoreError::LocalFile {
        path: dir.join(key.to_string()),
        source,
    })
}

/// The object a multipart answer reads from.
struct Parts<'a> {
    store: &'a Store,
    metrics: &'a Metrics,
    path: StorePath,
    key: &'a ObjectKey,
    len: u64,
}

async fn send_multipart(
    object: Parts<'_>,
    framing: Multipart,
    mut headers: HeaderMap,
    head_only: bool,
) -> Result<Response<Body>, EdgeError> {
    let Parts {
        store,
        metrics,
        path,
        key,
        len,
    } = object;
    if let Ok(v) = HeaderValue::from_str(&framing.content_type()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(framing.content_length()),
    );
    if head_only {
        return Ok(with_headers(
            StatusCode::PARTIAL_CONTENT,
            headers,
            body::empty(),
        ));
    }
    let Multipart { parts, tail, .. } = framing;
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Err(EdgeError::RangeNotSatisfiable { len });
    };
    let first_chunks = metrics
        .time_store(
            StoreOp::Get,
            open_range(store.inner(), &path, first.range, len),
        )
        .await
        .map_err(|e| e.into_edge(store, &path, key))?;
    let inner = Arc::clone(store.inner());
    let rest = stream::iter(parts).flat_map(move |part| {
        let inner = Arc::clone(&inner);
        let path = path.clone();
        let chunks = stream::once(async move {
            open_range(&inner, &path, part.range, len)
                .await
                .map_err(std::io::Error::other)
        })
        .try_flatten();
        stream::once(async move { Ok(part.head) }).chain(chunks)
    });
    let body = stream::once(async move { Ok::<_, std::io::Error>(first.head) })
        .chain(first_chunks)
        .chain(rest)
        .chain(stream::once(async move { Ok(tail) }));
    Ok(with_headers(
        StatusCode::PARTIAL_CONTENT,
        headers,
        body::stream(body),
    ))
}

/// Why a range could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(transparent)]
    Store(object_store::Error),
    #[error("the store holds {found} bytes, {expected} were expected")]
    Size { expected: u64, found: u64 },
}

impl OpenError {
    fn into_edge(self, store: &Store, path: &StorePath, key: &ObjectKey) -> EdgeError {
        match self {
            Self::Store(e) => store_error(store, path, e),
            Self::Size { expected, found } => EdgeError::SizeMismatch {
                key: key.to_string(),
                expected,
                found,
            },
        }
    }
}

/// Starts streaming `range` of the object at `path`, checking the object is `len` bytes.
async fn open_range(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    range: ByteRange,
    len: u64,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, OpenError> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(range.start..range.end + 1)),
        ..Default::default()
    };
    let result = store
        .get_opts(path, options)
        .await
        .map_err(OpenError::Store)?;
    if result.meta.size != len {
        return Err(OpenError::Size {
            expected: len,
            found: result.meta.size,
        });
    }
    Ok(result.into_stream().map_err(std::io::Error::other).boxed())
}

pub fn store_error(store: &Store, path: &StorePath, source: object_store::Error) -> EdgeError {
    EdgeError::Store(StoreError::Io {
        store: store.url().to_owned(),
        key: path.to_string(),
        source,
    })
}
