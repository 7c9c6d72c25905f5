//! Where a cache node gets what it does not hold: an object store
//! (`s3://`, `file://`) or another lowband edge over HTTP(S).
//!
//! From an edge, objects come from `/o/<key>` (with `Range` to resume or to
//! pass a range through), the module index from `/api/v1/modules` and a
//! manifest from `/api/v1/modules/<module>`, revalidated with
//! `If-None-Match`. A cache node is itself an edge, so nodes chain.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use http::StatusCode;
use lowband_catalog::keys::MODULE_INDEX_KEY;
use lowband_catalog::{ModuleId, ObjectKey, Store};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore};

/// Largest manifest or index accepted from an upstream: far above any real
/// one (a module of a thousand assets is a few MB), far below harm.
pub const MAX_DOC_BYTES: u64 = 64 << 20;

/// Why the upstream could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("{url}: no answer within {secs:.1} s")]
    Timeout { url: String, secs: f64 },
    #[error("{url}: answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
}

impl UpstreamError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// A label for the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Status { .. } => "status",
            Self::Failed { .. } => "failed",
        }
    }

    fn failed(url: &str, reason: impl std::fmt::Display) -> Self {
        Self::Failed {
            url: url.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The small, changing documents a node revalidates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Doc {
    Index,
    Manifest(ModuleId),
}

impl Doc {
    /// Its key in a store (and path under the cache directory).
    pub fn key(&self) -> String {
        match self {
            Self::Index => MODULE_INDEX_KEY.to_owned(),
            Self::Manifest(id) => id.manifest_key(),
        }
    }

    fn edge_path(&self) -> String {
        match self {
            Self::Index => "/api/v1/modules".to_owned(),
            Self::Manifest(id) => format!("/api/v1/modules/{id}"),
        }
    }
}

/// What a (conditional) read of a [`Doc`] found.
#[derive(Debug)]
pub enum Fetched {
    NotModified,
    NotFound,
    Body { bytes: Bytes, etag: Option<String> },
}

/// (Part of) an object's bytes as the upstream sends them.
pub struct ObjectBody {
    /// The whole object's size.
    pub len: u64,
    pub chunks: BoxStream<'static, Result<Bytes, UpstreamError>>,
}

pub enum Upstream {
    Store(Store),
    Edge {
        client: reqwest::Client,
        base: String,
    },
}

impl Upstream {
    /// `s3://bucket[/prefix]`, `file://dir`, or `http(s)://host[:port][/prefix]` of an edge.
    /// `timeout` bounds connecting and each wait for an answer.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, UpstreamError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            let parsed = url::Url::parse(url).map_err(|e| UpstreamError::failed(url, e))?;
            if parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(UpstreamError::failed(
                    url,
                    "an edge URL has no query or fragment",
                ));
            }
            let client = reqwest::Client::builder()
                .connect_timeout(timeout)
                .read_timeout(timeout)
                .user_agent(concat!(
                    "lowband-edge/",
                    env!("CARGO_PKG_VERSION"),
                    " cache"
                ))
                .build()
                .map_err(|e| UpstreamError::failed(url, e))?;
            return Ok(Self::Edge {
                client,
                base: url.trim_end_matches('/').to_owned(),
            });
        }
        if url == "memory://" {
            return Err(UpstreamError::failed(
                url,
                "a memory store cannot be shared",
            ));
        }
        Store::open(url)
            .map(Self::Store)
            .map_err(|e| UpstreamError::failed(url, e))
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Store(store) => store.url(),
            Self::Edge { base, .. } => base,
        }
    }

    /// Reads `doc`; with `etag`, only if it changed.
    pub async fn doc(
        &self,
        doc: &Doc,
        etag: Option<&str>,
        timeout: Duration,
    ) -> Result<Fetched, UpstreamError> {
        let read = async {
            match self {
                Self::Store(store) => store_doc(store, doc, etag).await,
                Self::Edge { client, base } => edge_doc(client, base, doc, etag, timeout).await,
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(UpstreamError::Timeout {
                    url: format!("{}{}", self.url(), doc.edge_path()),
                    secs: timeout.as_secs_f64(),
                })
            })
    }

    /// Starts reading `key` from byte `from` to `to` (inclusive; `None`: the
    /// end). `Ok(None)` when the upstream has no such object. `timeout`
    /// bounds the wait for the answer's head, not the transfer.
    pub async fn object(
        &self,
        key: &ObjectKey,
        from: u64,
        to: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<ObjectBody>, UpstreamError> {
        let url = match self {
            Self::Store(store) => format!("{}/{key}", store.url()),
            Self::Edge { base, .. } => format!("{base}/o/{key}"),
        };
        let open = async {
            let url = url.clone();
            match self {
                Self::Store(store) => store_object(store, key, url, from, to).await,
                Self::Edge { client, .. } => edge_object(client, url, from, to, timeout).await,
            }
        };
        let timed_out = UpstreamError::Timeout {
            url: url.clone(),
            secs: timeout.as_secs_f64(),
        };
        tokio::time::timeout(timeout, open)
            .await
            .unwrap_or(Err(timed_out))
    }
}

/// `doc` from a store, unless its ETag is still `etag`.
async fn store_doc(store: &Store, doc: &Doc, etag: Option<&str>) -> Result<Fetched, UpstreamError> {
    let key = doc.key();
    let options = GetOptions {
        if_none_match: etag.map(str::to_owned),
        ..Default::default()
    };
    let url = format!("{}/{key}", store.url());
    match store.inner().get_opts(&StorePath::from(key), options).await {
        Ok(result) if result.meta.size > MAX_DOC_BYTES => Err(too_large(&url)),
        Ok(result) => {
            let etag = result.meta.e_tag.clone();
            let bytes = result
                .bytes()
                .await
                .map_err(|e| UpstreamError::failed(&url, e))?;
            Ok(Fetched::Body { bytes, etag })
        }
        Err(object_store::Error::NotModified { .. }) => Ok(Fetched::NotModified),
        Err(object_store::Error::NotFound { .. }) => Ok(Fetched::NotFound),
        Err(e) => Err(UpstreamError::failed(&url, e)),
    }
}

/// `doc` from an edge's API, asked `If-None-Match: etag`; at most [`MAX_DOC_BYTES`].
async fn edge_doc(
    client: &reqwest::Client,
    base: &str,
    doc: &Doc,
    etag: Option<&str>,
    timeout: Duration,
) -> Result<Fetched, UpstreamError> {
    let url = format!("{base}{}", doc.edge_path());
    let mut request = client.get(&url);
    if let Some(etag) = etag {
        request = request.header(http::header::IF_NONE_MATCH, etag);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| request_error(&url, &e, timeout))?;
    match response.status() {
        StatusCode::NOT_MODIFIED => return Ok(Fetched::NotModified),
        StatusCode::NOT_FOUND => return Ok(Fetched::NotFound),
        StatusCode::OK => {}
        status => {
            return Err(UpstreamError::Status {
                url,
                status: status.as_u16(),
            })
        }
    }
    let etag = response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(&url, &e, timeout))?
    {
        if (body.len() + chunk.len()) as u64 > MAX_DOC_BYTES {
            return Err(too_large(&url));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body {
        bytes: body.freeze(),
        etag,
    })
}

/// Bytes `from`..=`to` of `key` in a store (`url` names it in errors).
async fn store_object(
    store: &Store,
    key: &ObjectKey,
    url: String,
    from: u64,
    to: Option<u64>,
) -> Result<Option<ObjectBody>, UpstreamError> {
    let range = match to {
        Some(to) => GetRange::Bounded(from..to + 1),
        None => GetRange::Offset(from),
    };
    let options = GetOptions {
        range: (from > 0 || to.is_some()).then_some(range),
        ..Default::default()
    };
    let path = StorePath::from(key.to_string());
    match store.inner().get_opts(&path, options).await {
        Ok(result) => {
            let len = result.meta.size;
            let chunks = result
                .into_stream()
                .map_err(move |e| UpstreamError::failed(&url, e))
                .boxed();
            Ok(Some(ObjectBody { len, chunks }))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(UpstreamError::failed(&url, e)),
    }
}

/// Bytes `from`..=`to` of the object at an edge's `url` (`/o/<key>`), with `Range`.
async fn edge_object(
    client: &reqwest::Client,
    url: String,
    from: u64,
    to: Option<u64>,
    timeout: Duration,
) -> Result<Option<ObjectBody>, UpstreamError> {
    let mut request = client.get(&url);
    if from > 0 || to.is_some() {
        let end = to.map(|t| t.to_string()).unwrap_or_default();
        request = request.header(http::header::RANGE, format!("bytes={from}-{end}"));
    }
    let response = request
        .send()
        .await
        .map_err(|e| request_error(&url, &e, timeout))?;
    let len = match response.status() {
        StatusCode::NOT_FOUND => return Ok(None),
        StatusCode::OK if from == 0 => response.content_length(),
        StatusCode::PARTIAL_CONTENT => response
            .headers()
            .get(http::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| content_range(v, from)),
        status => {
            return Err(UpstreamError::Status {
                url,
                status: status.as_u16(),
            })
        }
    };
    let Some(len) = len else {
        return Err(UpstreamError::failed(
            &url,
            "the answer does not say the object's size (Content-Length or Content-Range)",
        ));
    };
    let chunks = stream::unfold(Some(response), move |response| {
        let url = url.clone();
        async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                Ok(None) => None,
                Err(e) => Some((Err(request_error(&url, &e, timeout)), None)),
            }
        }
    })
    .boxed();
    Ok(Some(ObjectBody { len, chunks }))
}

fn too_large(url: &str) -> UpstreamError {
    UpstreamError::failed(
        url,
        format!("a manifest or index over {MAX_DOC_BYTES} bytes is refused"),
    )
}

/// The whole length from `Content-Range: bytes <from>-<to>/<len>`, if the range starts at `from`.
fn content_range(value: &str, from: u64) -> Option<u64> {
    let (range, len) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    (start.trim().parse::<u64>().ok()? == from)
        .then(|| len.trim().parse().ok())
        .flatten()
}

fn request_error(url: &str, e: &reqwest::Error, timeout: Duration) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout {
            url: url.to_owned(),
            secs: timeout.as_secs_f64(),
        }
    } else {
        // The source chain says why (refused, reset, TLS); reqwest's own text does not.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        UpstreamError::failed(url, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_read_only_when_it_starts_where_asked() {
        assert_eq!(content_range("bytes 100-199/1000", 100), Some(1000));
        assert_eq!(content_range("bytes 0-0/1", 0), Some(1));
        assert_eq!(content_range("bytes 101-199/1000", 100), None);
        assert_eq!(content_range("bytes 100-199/*", 100), None);
        assert_eq!(content_range("items 100-199/1000", 100), None);
        assert_eq!(content_range("bytes 100-199", 100), None);
    }

    #[test]
    fn urls_are_checked() {
        let t = Duration::from_secs(1);
        assert!(Upstream::open("http://origin:8080/", t).is_ok());
        assert_eq!(
            Upstream::open("http://origin:8080/", t).unwrap().url(),
            "http://origin:8080"
        );
        for bad in ["http://origin/?x=1", "memory://", "ftp://x/y", "s3://"] {
            let e = Upstream::open(bad, t).err().expect(bad).to_string();
            assert!(e.contains(bad.trim_end_matches('/')), "{bad}: {e}");
        }
    }
}
