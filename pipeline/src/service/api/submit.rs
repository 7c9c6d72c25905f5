//! From a finished upload to a queued job: the archive is checked whole and
//! unpacked into a temporary directory, discovered like a module directory,
//! its files stored content-addressed under `incoming/sources/`, the plan
//! written, and only then one message per asset queued. A refused archive
//! stops before anything is stored; nothing under `modules/` or `objects/`
//! is touched here at all.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;
use lowband_catalog::{ContentHash, ModuleId};
use serde_json::json;

use super::error::{json_response, ApiError, BodyError};
use super::{upload, Api};
use crate::discover::{self, ModuleSource};
use crate::service::archive::{self, ArchiveError};
use crate::service::jobs::{self, JobPlan, PlannedAsset};
use crate::service::queue::JobMessage;

impl Api {
    /// `POST /api/v1/modules/<module>` with the archive as the body: stored
    /// as an upload session first (so a broken connection can resume), then
    /// submitted.
    pub(super) async fn upload_and_submit<B>(
        &self,
        module: &ModuleId,
        req: Request<B>,
        author: &str,
    ) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BodyError>,
    {
        let length = upload::header_u64(req.headers(), "content-length")?;
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

    /// `POST /api/v1/modules/<module>?upload=<id>`: a finished upload becomes a job.
    pub(super) async fn submit(
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
        match self.queue_job(module, id).await {
            Ok(job) => {
                tracing::info!(%job, %module, author, "module submitted");
                let _ = upload::remove(&self.store, id).await;
                let status = format!("/api/v1/jobs/{job}");
                let mut r = json_response(
                    StatusCode::ACCEPTED,
                    &json!({ "job": job, "upload": id, "status": status }),
                );
                if let Ok(v) = HeaderValue::from_str(&status) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Ok(r)
            }
            Err(e @ (ApiError::Archive { .. } | ApiError::Module { .. })) => {
                // Refused for good: the bytes are of no further use.
                let _ = upload::remove(&self.store, id).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Turns upload `id` into a job for `module`; returns the job id.
    async fn queue_job(&self, module: &ModuleId, id: &str) -> Result<String, ApiError> {
        let work = tempfile::Builder::new()
            .prefix("lowband-upload-")
            .tempdir()
            .map_err(ApiError::io("work directory"))?;
        let archive_file = work.path().join("archive");
        upload::spool(&self.store, id, &archive_file).await?;

        let root = work.path().join("module");
        let limits = self.options.archive;
        let module_id = module.to_string();
        let upload = id.to_owned();
        let (source, archive_hash) = tokio::task::spawn_blocking(move || {
            unpack_and_discover(&archive_file, &root, &module_id, limits, &upload)
        })
        .await
        .map_err(|source| ApiError::Task {
            what: "unpacking",
            source,
        })??;

        let plan = JobPlan {
            job: jobs::job_id(&source.info, &archive_hash, &self.options.profile),
            module: source.info.clone(),
            profile: self.options.profile.clone(),
            assets: self.store_sources(&source).await?,
            skipped: source.skipped.clone(),
        };
        let job = plan.job.clone();
        jobs::put_json(&self.store, &jobs::plan_key(&job), &plan).await?;
        let mut queued = 0;
        for asset in plan.queued_assets() {
            let message = JobMessage::Asset {
                job: job.clone(),
                asset,
            };
            self.queue.enqueue(&message).await?;
            queued += 1;
        }
        if queued == 0 {
            let message = JobMessage::Finalize { job: job.clone() };
            self.queue.enqueue(&message).await?;
        }
        tracing::info!(%job, module = %module, assets = plan.assets.len(), "job queued");
        Ok(job)
    }

    /// Stores each discovered file under its content's hash, for the workers.
    async fn store_sources(&self, source: &ModuleSource) -> Result<Vec<PlannedAsset>, ApiError> {
        let mut assets = Vec::with_capacity(source.assets.len());
        for a in &source.assets {
            let file = a.file.clone();
            let (hash, _) = tokio::task::spawn_blocking(move || ContentHash::of_file(&file))
                .await
                .map_err(|source| ApiError::Task {
                    what: "hashing",
                    source,
                })?
                .map_err(ApiError::io(format!("hashing {}", a.path)))?;
            self.store
                .put_file_at(&jobs::source_key(&hash), &a.file)
                .await?;
            assets.push(PlannedAsset {
                path: a.path.clone(),
                kind: a.kind,
                bytes: a.bytes,
                source: hash,
            });
        }
        Ok(assets)
    }
}

/// Checks and unpacks the archive, then finds the module in it. Errors name
/// the upload and the entry, never the server's temporary paths.
fn unpack_and_discover(
    archive_file: &Path,
    root: &Path,
    module: &str,
    limits: archive::Limits,
    upload: &str,
) -> Result<(ModuleSource, ContentHash), ApiError> {
    std::fs::create_dir(root).map_err(ApiError::io(root.display().to_string()))?;
    archive::unpack(archive_file, root, limits).map_err(|e| match e {
        ArchiveError::Io(source) => ApiError::Io {
            what: format!("unpacking upload {upload}"),
            source,
        },
        source => ApiError::Archive {
            upload: upload.to_owned(),
            source,
        },
    })?;
    let (hash, _) = ContentHash::of_file(archive_file)
        .map_err(ApiError::io(format!("hashing {}", archive_file.display())))?;
    let dir = module_root(root);
    let source = discover::discover(&dir, Some(module)).map_err(|source| ApiError::Module {
        upload: upload.to_owned(),
        root: dir.clone(),
        source: Box::new(source),
    })?;
    Ok((source, hash))
}

/// An archive made of one folder holds the module in that folder.
fn module_root(root: &Path) -> PathBuf {
    let entries: Vec<_> = std::fs::read_dir(root)
        .map(|r| r.filter_map(Result::ok).collect())
        .unwrap_or_default();
    match entries.as_slice() {
        [only] if only.file_type().is_ok_and(|t| t.is_dir()) => only.path(),
        _ => root.to_owned(),
    }
}
