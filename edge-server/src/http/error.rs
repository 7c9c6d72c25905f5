//! The one place where errors become HTTP responses.
//!
//! Every error has a stable machine-readable code; internal detail (store
//! paths, backend messages) goes to the log, never to the client.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use lowband_catalog::StoreError;

use super::body::{self, Body};

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The route exists but takes only `allow` (an `Allow` header value).
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("precondition failed (If-Match or If-Unmodified-Since)")]
    PreconditionFailed,
    #[error("range not satisfiable (object is {len} bytes)")]
    RangeNotSatisfiable { len: u64 },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A cache node could not get what it does not hold from its upstream.
    #[error("upstream: {source}")]
    Upstream {
        timeout: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A cache node could not forget what it holds of a module.
    #[error("cannot purge {key}: {source}")]
    Purge {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("admin: {0}")]
    Unauthorized(&'static str),
    #[error("object {key} in the store is {found} bytes, the manifest says {expected}")]
    SizeMismatch {
        key: String,
        expected: u64,
        found: u64,
    },
}

impl EdgeError {
    /// What the upstream failed with, and whether it failed by not answering in time.
    pub fn upstream(
        timeout: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Upstream {
            timeout,
            source: source.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            Self::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            Self::Store(e) if e.is_not_found() => (StatusCode::NOT_FOUND, "not_found"),
            Self::Store(StoreError::Manifest(_)) => {
                (StatusCode::BAD_GATEWAY, "manifest_unreadable")
            }
            Self::Store(_) => (StatusCode::BAD_GATEWAY, "store_unavailable"),
            Self::SizeMismatch { .. } => (StatusCode::BAD_GATEWAY, "object_corrupt"),
            Self::Upstream { timeout: true, .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
            }
            Self::Upstream { .. } | Self::Purge { .. } => {
                (StatusCode::BAD_GATEWAY, "upstream_unavailable")
            }
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        }
    }

    /// What the client may read: no internal detail.
    fn public_message(&self) -> String {
        match self {
            Self::NotFound => "No such module, asset or object.".into(),
            Self::BadRequest(why) => format!("Bad request: {why}."),
            Self::MethodNotAllowed { allow } => format!("Only {allow} is answered here."),
            Self::PreconditionFailed => {
                "The resource is not in the state If-Match or If-Unmodified-Since asked for.".into()
            }
            Self::RangeNotSatisfiable { len } => {
                format!("The requested range is outside the object ({len} bytes).")
            }
            Self::Store(e) if e.is_not_found() => "No such module, asset or object.".into(),
            Self::Store(_) | Self::SizeMismatch { .. } => {
                "The content store is unavailable or damaged; try again shortly.".into()
            }
            Self::Upstream { timeout: true, .. } => {
                "This cache node does not hold this yet, and the server it gets it from did not answer in time; try again shortly.".into()
            }
            Self::Upstream { .. } | Self::Purge { .. } => {
                "This cache node does not hold this yet, and the server it gets it from cannot be reached; try again shortly.".into()
            }
            Self::Unauthorized(why) => format!("Unauthorized: {why}."),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        }
        let json = serde_json::json!({ "error": code, "message": self.public_message() });
        let mut response = Response::new(body::full(Bytes::from(json.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RangeNotSatisfiable { len } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        response
    }
}
