//! How the edge's responses are made: the caching policy of each kind of
//! answer, the headers it names, and small generated bodies (JSON, a
//! playlist, a page) with a content-hash `ETag` that answer conditional
//! requests.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::body::{self, Body};
use super::conditional::{self, Outcome};
use super::error::EdgeError;

/// `Cache-Control` of immutable, content-addressed objects.
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// `Cache-Control` of everything a manifest can change (negotiated assets,
/// playlists, manifests, the index, pages): short, then revalidate.
pub const REVALIDATE: HeaderValue = HeaderValue::from_static("public, max-age=60, must-revalidate");
/// `Cache-Control` of a choice made from the connection estimate: no request
/// header says what it depended on, so no `Vary` can keep a shared cache
/// from handing one client's measured tier to another.
pub const REVALIDATE_PRIVATE: HeaderValue =
    HeaderValue::from_static("private, max-age=60, must-revalidate");
/// `Cache-Control` of probes, redirects decided per client and errors: never stored.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
/// `Cache-Control` of a lesson page: it shows what this client's cookies and
/// link chose, so only the client keeps it, and asks again each time (a
/// 304 when nothing changed) so a new choice shows at once.
pub const PRIVATE_PAGE: HeaderValue = HeaderValue::from_static("private, no-cache");
/// Names the variant served and why it was chosen.
pub const LOWBAND_VARIANT: HeaderName = HeaderName::from_static("lowband-variant");
pub const ACCEPT_CH: HeaderName = HeaderName::from_static("accept-ch");
pub const CRITICAL_CH: HeaderName = HeaderName::from_static("critical-ch");
/// Room for the headers a response is built with, so that making one
/// never regrows its map.
pub const RESPONSE_HEADERS: usize = 16;

#[inline]
pub fn with_headers(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A body that is never stored (probes, metrics, admin answers).
pub fn text(status: StatusCode, mime: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    response
}

/// JSON: see [`small_response`].
pub fn json_response(
    req_headers: &HeaderMap,
    json: Vec<u8>,
    changed: Option<SystemTime>,
) -> Result<Response<Body>, EdgeError> {
    small_response(
        req_headers,
        json,
        "application/json",
        changed,
        HeaderMap::new(),
    )
}

/// A small generated body (JSON, a playlist, a page) with a content-hash
/// ETag and the `Last-Modified` of what it was made from, answering
/// conditional requests.
pub fn small_response(
    req_headers: &HeaderMap,
    bytes: Vec<u8>,
    mime: &'static str,
    changed: Option<SystemTime>,
    mut headers: HeaderMap,
) -> Result<Response<Body>, EdgeError> {
    let etag = format!("\"{}\"", lowband_catalog::ContentHash::of(&bytes));
    // A caller may have set a stricter one (a choice only this client's link explains).
    headers.entry(header::CACHE_CONTROL).or_insert(REVALIDATE);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let last_modified = changed.map(|t| conditional::last_modified(t, SystemTime::now()));
    if let Some(t) = last_modified {
        set_last_modified(&mut headers, t, None);
    }
    if let Some(not_modified) = preconditions(req_headers, &mut headers, &etag, last_modified)? {
        return Ok(not_modified);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(with_headers(StatusCode::OK, headers, body::full(bytes)))
}

/// Sets `Last-Modified` to `t`, or to `formatted` when it was made beforehand.
#[inline]
pub fn set_last_modified(headers: &mut HeaderMap, t: SystemTime, formatted: Option<&HeaderValue>) {
    let value = match formatted {
        Some(v) => Some(v.clone()),
        None => HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok(),
    };
    if let Some(v) = value {
        headers.insert(header::LAST_MODIFIED, v);
    }
}

/// Evaluates the request's preconditions against the validators (RFC 9110
/// §13.2.2): `Some(304)` to send as is (with `headers`, which hold the
/// validators), an error for 412, `None` to go on and send the representation.
#[inline]
pub fn preconditions(
    req_headers: &HeaderMap,
    headers: &mut HeaderMap,
    etag: &str,
    last_modified: Option<SystemTime>,
) -> Result<Option<Response<Body>>, EdgeError> {
    match conditional::evaluate(req_headers, etag, last_modified) {
        Outcome::Proceed => Ok(None),
        Outcome::NotModified => Ok(Some(with_headers(
            StatusCode::NOT_MODIFIED,
            std::mem::take(headers),
            body::empty(),
        ))),
        Outcome::PreconditionFailed => Err(EdgeError::PreconditionFailed),
    }
}
