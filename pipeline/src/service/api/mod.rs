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
//! `routes` answers each of these; `upload` keeps resumable uploads in the
//! store; `submit` turns a finished upload into a queued job; the tokens
//! file is the catalog's format ([`Tokens`]), shared with the edge's admin
//! routes. Errors are made into responses in one place
//! ([`ApiError::response`]); internal details stay in the log.

mod error;
mod routes;
mod submit;
pub mod upload;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Body;
use lowband_catalog::{Profile, Store};

pub use error::{ApiError, BodyError};
pub use lowband_catalog::tokens::{Tokens, TokensError, TokensProblem};

use crate::service::archive;
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
        B::Error: Into<BodyError>,
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
        let mut set = self.writing.lock().map_err(|_| ApiError::Poisoned)?;
        if !set.insert(id.to_owned()) {
            return Err(ApiError::Busy(id.to_owned()));
        }
        Ok(Writing {
            api: self,
            id: id.to_owned(),
        })
    }
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
