//! From a finished upload to a queued job: the archive is checked whole and
//! unpacked into a temporary directory, discovered like a module directory,
//! its files stored content-addressed under `incoming/sources/`, the plan
//! written, and only then one message per asset queued. A refused archive
//! stops before anything is stored; nothing under `modules/` or `objects/`
//! is touched here at all.

use std::path::{Path, PathBuf};

use lowband_catalog::{ContentHash, ModuleId};

use super::{upload, Api, ApiError};
use crate::service::archive;
use crate::discover::{self, ModuleSource};
use crate::service::jobs::{self, JobPlan, PlannedAsset};
use crate::service::queue::JobMessage;

/// Turns upload `id` into a job for `module`; returns the job id.
pub async fn submit(api: &Api, module: &ModuleId, id: &str) -> Result<String, ApiError> {
    let work = tempfile::Builder::new()
        .prefix("lowband-upload-")
        .tempdir()
        .map_err(|e| ApiError::Internal(format!("work directory: {e}")))?;
    let archive_file = work.path().join("archive");
    upload::spool(&api.store, id, &archive_file).await?;

    let root = work.path().join("module");
    let limits = api.options.archive;
    let module_id = module.to_string();
    let what = format!("upload {id}");
    let (source, archive_hash) = tokio::task::spawn_blocking({
        let archive_file = archive_file.clone();
        let root = root.clone();
        let what = what.clone();
        move || unpack_and_discover(&archive_file, &root, &module_id, limits, &what)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("unpacking: {e}")))??;

    let mut assets = Vec::with_capacity(source.assets.len());
    for a in &source.assets {
        let file = a.file.clone();
        let hash = tokio::task::spawn_blocking(move || hash_file(&file))
            .await
            .map_err(|e| ApiError::Internal(format!("hashing: {e}")))?
            .map_err(|e| ApiError::Internal(format!("hashing {}: {e}", a.path)))?;
        api.store
            .put_file_at(&jobs::source_key(&hash), &a.file)
            .await?;
        assets.push(PlannedAsset {
            path: a.path.clone(),
            kind: a.kind,
            bytes: a.bytes,
            source: hash,
        });
    }
    let job = jobs::job_id(&source.info, &archive_hash, &api.options.profile);
    let plan = JobPlan {
        job: job.clone(),
        module: source.info.clone(),
        profile: api.options.profile.clone(),
        assets,
        skipped: source.skipped.clone(),
    };
    jobs::put_json(&api.store, &jobs::plan_key(&job), &plan).await?;
    let mut queued = 0;
    for asset in plan.queued_assets() {
        api.queue
            .enqueue(&JobMessage::Asset {
                job: job.clone(),
                asset,
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        queued += 1;
    }
    if queued == 0 {
        api.queue
            .enqueue(&JobMessage::Finalize { job: job.clone() })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    tracing::info!(%job, module = %module, assets = plan.assets.len(), "job queued");
    Ok(job)
}

/// Checks and unpacks the archive, then finds the module in it. Errors name
/// the upload and the entry, never the server's temporary paths.
fn unpack_and_discover(
    archive_file: &Path,
    root: &Path,
    module: &str,
    limits: archive::Limits,
    what: &str,
) -> Result<(ModuleSource, ContentHash), ApiError> {
    std::fs::create_dir(root)
        .map_err(|e| ApiError::Internal(format!("{}: {e}", root.display())))?;
    archive::unpack(archive_file, root, limits).map_err(|e| match e {
        archive::ArchiveError::Io(e) => ApiError::Internal(format!("unpacking {what}: {e}")),
        e => ApiError::Archive(format!("{what}: {e}")),
    })?;
    let hash = hash_file(archive_file)
        .map_err(|e| ApiError::Internal(format!("hashing {}: {e}", archive_file.display())))?;
    let dir = module_root(root);
    let source = discover::discover(&dir, Some(module)).map_err(|e| {
        let text = e.to_string();
        let shown = text
            .replace(&format!("{}/", dir.display()), "")
            .replace(&dir.display().to_string(), "the archive");
        ApiError::Module(format!("{what}: {shown}"))
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

fn hash_file(path: &Path) -> std::io::Result<ContentHash> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ContentHash::hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}
