//! The authoring API of `lowband-pipeline serve`: authors upload a module
//! (a zip or tar of its directory), get a job id, follow each asset's
//! progress and read the published manifest. Every call but `/healthz`
//! needs `Authorization: Bearer <token>` with a token from the tokens file.
//!
//! ```text
//! POST  /api/v1/modules/<module>              body: the archive → 202 {"job", "upload"}
//! POST  /api/v1/modules/<module>?upload=<id>  no body: a finished resumable upload → 202 {"job"}
//! GET   /api/v1/modules/<module>              the published manifest
//! GET   /api/v1/jobs/<job>                    {"state", "assets": [{"path", "state", "fraction", ...}], "manifest"}
//! POST  /api/v1/uploads                       Upload-Length: <bytes> → 201 {"upload"}, Location
//! HEAD  /api/v1/uploads/<id>                  → Upload-Offset, Upload-Length
//! PATCH /api/v1/uploads/<id>                  Upload-Offset: <bytes>, body: the next bytes → 204 Upload-Offset
//! GET   /healthz
//! ```
//!
//! Errors are JSON `{"error": <stable code>, "message": <what and why>}`,
//! made in one place ([`ApiError::response`]); internal details stay in the log.

mod auth;
mod submit;
pub mod upload;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;
use lowband_catalog::{ModuleId, Profile, Store, StoreError};
use serde_json::json;

pub use auth::{Tokens, TokensError};

use crate::service::archive;
use crate::service::jobs;
use crate::service::queue::Queue;

/// What the API accepts.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest archive accepted, in bytes.
    pub max_upload_bytes: u64,
    pub archive: archive::Limits,
    /// The ladder every uploaded module is rendered with.
    pub profile: Profile,
}

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
    #[error("upload {upload}: interrupted at byte {offset} ({reason}); HEAD and PATCH /api/v1/uploads/{upload} to resume")]
    Interrupted {
        upload: String,
        offset: u64,
        reason: String,
    },
    #[error("{0}")]
    Archive(String),
    #[error("{0}")]
    Module(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl ApiError {
    /// The one place errors become responses.
    pub fn response(&self) -> Response<Full<Bytes>> {
        let (status, code) = match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::OffsetMismatch { .. } => (StatusCode::CONFLICT, "offset_mismatch"),
            Self::Incomplete { .. } => (StatusCode::CONFLICT, "upload_incomplete"),
            Self::Busy(_) => (StatusCode::CONFLICT, "upload_busy"),
            Self::Interrupted { .. } => (StatusCode::BAD_REQUEST, "upload_interrupted"),
            Self::Archive(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_archive"),
            Self::Module(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_module"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "internal error; the server log has the details".to_owned()
            }
            other => other.to_string(),
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

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
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

/// The API's state: the store, the queue, the tokens.
pub struct Api {
    store: Store,
    queue: Queue,
    tokens: Tokens,
    options: ApiOptions,
    /// Upload sessions a request is writing to right now.
    writing: Mutex<HashSet<String>>,
}

/// Marks an upload session busy for as long as it lives.
struct Writing<'a> {
    api: &'a Api,
    id: String,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.api.writing.lock() {
            set.remove(&self.id);
        }
    }
}

impl Api {
    pub fn new(store: Store, queue: Queue, tokens: Tokens, options: ApiOptions) -> Self {
        Self {
            store,
            queue,
            tokens,
            options,
            writing: Mutex::new(HashSet::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Answers one request; never fails (errors become responses).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        match self.route(req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(%method, %path, error = %e, "request refused");
                e.response()
            }
        }
    }

    async fn route<B>(&self, req: Request<B>) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let path = req.uri().path().to_owned();
        if path == "/healthz" {
            return Ok(json_response(StatusCode::OK, &json!({ "ok": true })));
        }
        let Some(rest) = path.strip_prefix("/api/v1/") else {
            return Err(ApiError::NotFound(format!("no such route: {path}")));
        };
        let author = self
            .tokens
            .check(
                req.headers()
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
            )
            .ok_or(ApiError::Unauthorized)?
            .to_owned();
        let segments: Vec<&str> = rest.split('/').collect();
        let not_allowed = || ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            path: path.clone(),
        };
        match (segments.as_slice(), req.method()) {
            (["modules", module], &Method::POST) => {
                let module = parse_module(module)?;
                let upload = query_param(req.uri().query(), "upload");
                match upload {
                    Some(id) => self.submit(&module, &id, &author).await,
                    None => self.upload_and_submit(&module, req, &author).await,
                }
            }
            (["modules", module], &Method::GET) => {
                let module = parse_module(module)?;
                match self.store.get_bytes(&module.manifest_key()).await? {
                    Some(bytes) => {
                        let mut r = Response::new(Full::new(bytes));
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        Ok(r)
                    }
                    None => Err(ApiError::NotFound(format!(
                        "module {module} is not published"
                    ))),
                }
            }
            (["jobs", job], &Method::GET) => {
                if !jobs::valid_job_id(job) {
                    return Err(ApiError::NotFound(format!("no job {job:?}")));
                }
                match jobs::status(&self.store, job).await? {
                    Some(status) => Ok(json_response(
                        StatusCode::OK,
                        &serde_json::to_value(status).unwrap_or_default(),
                    )),
                    None => Err(ApiError::NotFound(format!("no job {job}"))),
                }
            }
            (["uploads"], &Method::POST) => {
                let length = header_u64(req.headers(), "upload-length")?.ok_or_else(|| {
                    ApiError::BadRequest(
                        "Upload-Length: required (the archive's size in bytes)".into(),
                    )
                })?;
                self.check_size(length)?;
                let id = upload::new_id();
                upload::create(&self.store, &id, Some(length)).await?;
                let mut r =
                    json_response(StatusCode::CREATED, &json!({ "upload": id, "offset": 0 }));
                let location = format!("/api/v1/uploads/{id}");
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Ok(r)
            }
            (["uploads", id], m) if m == Method::HEAD || m == Method::PATCH => {
                let meta = self.session(id).await?;
                if m == Method::HEAD {
                    let offset = upload::offset(&self.store, id).await?;
                    let mut r = Response::new(Full::new(Bytes::new()));
                    r.headers_mut()
                        .insert("upload-offset", HeaderValue::from(offset));
                    if let Some(length) = meta.length {
                        r.headers_mut()
                            .insert("upload-length", HeaderValue::from(length));
                    }
                    r.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    return Ok(r);
                }
                let claimed = header_u64(req.headers(), "upload-offset")?.ok_or_else(|| {
                    ApiError::BadRequest("Upload-Offset: required (where this body starts)".into())
                })?;
                let id = (*id).to_owned();
                let _writing = self.writing(&id)?;
                let actual = upload::offset(&self.store, &id).await?;
                if claimed != actual {
                    return Err(ApiError::OffsetMismatch {
                        upload: id,
                        claimed,
                        actual,
                    });
                }
                let limit = meta.length.unwrap_or(self.options.max_upload_bytes);
                let offset =
                    upload::append(&self.store, &id, actual, limit, req.into_body()).await?;
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r.headers_mut()
                    .insert("upload-offset", HeaderValue::from(offset));
                Ok(r)
            }
            (["modules", _] | ["jobs", _] | ["uploads"] | ["uploads", _], _) => Err(not_allowed()),
            _ => Err(ApiError::NotFound(format!("no such route: {path}"))),
        }
    }

    fn check_size(&self, length: u64) -> Result<(), ApiError> {
        let max = self.options.max_upload_bytes;
        if length > max {
            return Err(ApiError::TooLarge(format!(
                "Upload-Length: {length} bytes, more than the {max} allowed"
            )));
        }
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<upload::Meta, ApiError> {
        if !upload::valid_id(id) {
            return Err(ApiError::NotFound(format!("no upload {id:?}")));
        }
        upload::meta(&self.store, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no upload {id}")))
    }

    fn writing(&self, id: &str) -> Result<Writing<'_>, ApiError> {
        let mut set = self
            .writing
            .lock()
            .map_err(|_| ApiError::Internal("upload lock poisoned".into()))?;
        if !set.insert(id.to_owned()) {
            return Err(ApiError::Busy(id.to_owned()));
        }
        Ok(Writing {
            api: self,
            id: id.to_owned(),
        })
    }

    /// The one-shot form: the body is the archive, stored as an upload
    /// session first (so a broken connection can resume), then submitted.
    async fn upload_and_submit<B>(
        &self,
        module: &ModuleId,
        req: Request<B>,
        author: &str,
    ) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let length = header_u64(req.headers(), "content-length")?;
        if let Some(length) = length {
            self.check_size(length)?;
        }
        let id = upload::new_id();
        upload::create(&self.store, &id, length).await?;
        let received = {
            let _writing = self.writing(&id)?;
            let limit = length.unwrap_or(self.options.max_upload_bytes);
            upload::append(&self.store, &id, 0, limit, req.into_body()).await
        };
        if let Err(e) = received {
            if matches!(e, ApiError::TooLarge(_)) {
                let _ = upload::remove(&self.store, &id).await;
            }
            return Err(e);
        }
        self.submit(module, &id, author).await
    }

    async fn submit(
        &self,
        module: &ModuleId,
        id: &str,
        author: &str,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        let meta = self.session(id).await?;
        let _writing = self.writing(id)?;
        let received = upload::offset(&self.store, id).await?;
        if let Some(length) = meta.length.filter(|l| received < *l) {
            return Err(ApiError::Incomplete {
                upload: id.to_owned(),
                received,
                length,
            });
        }
        if received == 0 {
            return Err(ApiError::BadRequest(format!(
                "upload {id}: no bytes; the body must be a zip or tar of the module"
            )));
        }
        match submit::submit(self, module, id).await {
            Ok(job) => {
                tracing::info!(%job, %module, author, "module submitted");
                let _ = upload::remove(&self.store, id).await;
                let mut r = json_response(
                    StatusCode::ACCEPTED,
                    &json!({ "job": job, "upload": id, "status": format!("/api/v1/jobs/{job}") }),
                );
                if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/jobs/{job}")) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Ok(r)
            }
            Err(e @ (ApiError::Archive(_) | ApiError::Module(_))) => {
                // Refused for good: the bytes are of no further use.
                let _ = upload::remove(&self.store, id).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

fn parse_module(s: &str) -> Result<ModuleId, ApiError> {
    ModuleId::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A header that must be a decimal byte count, if present.
fn header_u64(headers: &http::HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
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

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>) -> std::io::Result<()> {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its headers must not hold a connection for good.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30))
        .max_buf_size(64 << 10);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(16)
        .max_header_list_size(64 << 10);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let api = Arc::clone(&api);
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let api = Arc::clone(&api);
                async move { Ok::<_, std::convert::Infallible>(api.handle(req).await) }
            });
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
