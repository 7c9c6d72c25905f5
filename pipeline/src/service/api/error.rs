//! Why a request failed, and the one place where that becomes a response:
//! JSON `{"error": <stable code>, "message": <what and why>}`. Internal
//! causes (the store, the queue, the server's files) are logged with their
//! whole story and never reach the client.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use lowband_catalog::{KeyError, StoreError};
use serde_json::json;

use crate::discover::DiscoverError;
use crate::service::archive::ArchiveError;
use crate::service::queue::QueueError;

/// A request body's failure, whatever the body type.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request failed; each becomes one status and one stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    ModuleId(#[from] KeyError),
    #[error("{0}")]
    TooLarge(String),
    #[error("upload {upload}: the upload is at byte {actual}, not {claimed}")]
    OffsetMismatch {
        upload: String,
        claimed: u64,
        actual: u64,
    },
    #[error("upload {upload}: {received} of {length} bytes received; send the rest first")]
    Incomplete {
        upload: String,
        received: u64,
        length: u64,
    },
    #[error("upload {0}: another request is writing to it")]
    Busy(String),
    #[error("upload {upload}: interrupted at byte {offset} ({source}); HEAD and PATCH /api/v1/uploads/{upload} to resume")]
    Interrupted {
        upload: String,
        offset: u64,
        #[source]
        source: BodyError,
    },
    #[error("upload {upload}: {source}")]
    Archive {
        upload: String,
        #[source]
        source: ArchiveError,
    },
    /// The archive unpacked, but holds no module that can be published.
    #[error("upload {upload}: {}", in_archive(.source, .root))]
    Module {
        upload: String,
        /// Where the module was unpacked, which the message does not show.
        root: PathBuf,
        #[source]
        source: Box<DiscoverError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: {source}")]
    Read {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{what}: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("upload lock poisoned")]
    Poisoned,
}

/// A discovery error told as the author knows the module: paths inside the
/// archive, never the server's temporary directory.
fn in_archive(error: &DiscoverError, root: &Path) -> String {
    error
        .to_string()
        .replace(&format!("{}/", root.display()), "")
        .replace(&root.display().to_string(), "the archive")
}

impl ApiError {
    /// Wraps an I/O error with what was being done.
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// The one place errors become responses.
    pub fn response(&self) -> Response<Full<Bytes>> {
        let (status, code) = match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::BadRequest(_) | Self::ModuleId(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::OffsetMismatch { .. } => (StatusCode::CONFLICT, "offset_mismatch"),
            Self::Incomplete { .. } => (StatusCode::CONFLICT, "upload_incomplete"),
            Self::Busy(_) => (StatusCode::CONFLICT, "upload_busy"),
            Self::Interrupted { .. } => (StatusCode::BAD_REQUEST, "upload_interrupted"),
            Self::Archive { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "bad_archive"),
            Self::Module { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "bad_module"),
            Self::Store(_)
            | Self::Queue(_)
            | Self::Io { .. }
            | Self::Read { .. }
            | Self::Task { .. }
            | Self::Poisoned => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
            "internal error; the server log has the details".to_owned()
        } else {
            self.to_string()
        };
        let mut response = json_response(status, &json!({ "error": code, "message": message }));
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::OffsetMismatch { actual: o, .. } | Self::Interrupted { offset: o, .. } => {
                headers.insert("upload-offset", HeaderValue::from(*o));
            }
            _ => {}
        }
        response
    }
}

pub(super) fn json_response(
    status: StatusCode,
    value: &serde_json::Value,
) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
