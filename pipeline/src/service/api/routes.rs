//! The route table (see the module above for the list) and a handler for
//! each route but the module submissions, which `submit` answers.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;
use lowband_catalog::ModuleId;
use serde_json::json;

use super::error::{json_response, ApiError, BodyError};
use super::{upload, Api};
use crate::service::jobs;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

impl Api {
    pub(super) async fn route<B>(&self, req: Request<B>) -> Answer
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BodyError>,
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
        let method = req.method().clone();
        match (rest.split('/').collect::<Vec<_>>().as_slice(), &method) {
            (["modules", module], &Method::POST) => {
                let module = ModuleId::parse(module)?;
                match query_param(req.uri().query(), "upload") {
                    Some(id) => self.submit(&module, &id, &author).await,
                    None => self.upload_and_submit(&module, req, &author).await,
                }
            }
            (["modules", module], &Method::GET) => self.manifest(&ModuleId::parse(module)?).await,
            (["jobs", job], &Method::GET) => self.job(job).await,
            (["uploads"], &Method::POST) => self.create_upload(req.headers()).await,
            (["uploads", id], &Method::HEAD) => self.upload_offset(id).await,
            (["uploads", id], &Method::PATCH) => self.append(id, req).await,
            (["modules" | "jobs" | "uploads", _] | ["uploads"], _) => {
                Err(ApiError::MethodNotAllowed {
                    method: method.to_string(),
                    path: path.clone(),
                })
            }
            _ => Err(ApiError::NotFound(format!("no such route: {path}"))),
        }
    }

    /// `GET /api/v1/modules/<module>`: the published manifest, as stored.
    async fn manifest(&self, module: &ModuleId) -> Answer {
        let Some(bytes) = self.store.get_bytes(&module.manifest_key()).await? else {
            return Err(ApiError::NotFound(format!(
                "module {module} is not published"
            )));
        };
        let mut r = Response::new(Full::new(bytes));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(r)
    }

    /// `GET /api/v1/jobs/<job>`: the job's state, asset by asset.
    async fn job(&self, job: &str) -> Answer {
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

    /// `POST /api/v1/uploads`: a new resumable upload of `Upload-Length` bytes.
    async fn create_upload(&self, headers: &HeaderMap) -> Answer {
        let length = upload::header_u64(headers, "upload-length")?.ok_or_else(|| {
            ApiError::BadRequest("Upload-Length: required (the archive's size in bytes)".into())
        })?;
        self.check_size(length)?;
        let id = upload::new_id();
        upload::create(&self.store, &id, Some(length)).await?;
        let mut r = json_response(StatusCode::CREATED, &json!({ "upload": id, "offset": 0 }));
        let location = format!("/api/v1/uploads/{id}");
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Ok(r)
    }

    /// `HEAD /api/v1/uploads/<id>`: where to resume.
    async fn upload_offset(&self, id: &str) -> Answer {
        let meta = self.session(id).await?;
        let offset = upload::offset(&self.store, id).await?;
        let mut r = Response::new(Full::new(Bytes::new()));
        let headers = r.headers_mut();
        headers.insert("upload-offset", HeaderValue::from(offset));
        if let Some(length) = meta.length {
            headers.insert("upload-length", HeaderValue::from(length));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }

    /// `PATCH /api/v1/uploads/<id>`: the next bytes, from `Upload-Offset`.
    async fn append<B>(&self, id: &str, req: Request<B>) -> Answer
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BodyError>,
    {
        let meta = self.session(id).await?;
        let claimed = upload::header_u64(req.headers(), "upload-offset")?.ok_or_else(|| {
            ApiError::BadRequest("Upload-Offset: required (where this body starts)".into())
        })?;
        let _writing = self.writing(id)?;
        let actual = upload::offset(&self.store, id).await?;
        if claimed != actual {
            return Err(ApiError::OffsetMismatch {
                upload: id.to_owned(),
                claimed,
                actual,
            });
        }
        let limit = meta.length.unwrap_or(self.options.max_upload_bytes);
        let offset = upload::append(&self.store, id, actual, limit, req.into_body()).await?;
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        r.headers_mut()
            .insert("upload-offset", HeaderValue::from(offset));
        Ok(r)
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}
