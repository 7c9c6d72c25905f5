//! A worker's two kinds of job, over the ingest steps: an asset is fetched
//! from `incoming/sources/` and rendered by [`render_asset`], its manifest
//! entry kept under the job; the module's finish fetches the pages and hands
//! them, with the entries, to [`publish_module`]. Either finds a previous
//! attempt's result and does not do its work twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use lowband_catalog::manifest::{Asset, AssetKind};
use lowband_catalog::{Store, StoreError};
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;
use tokio::io::AsyncWriteExt;

use crate::discover::{SourceAsset, SNIFF_BYTES};
use crate::ingest::{publish_module, render_asset, Context, IngestError, Progress, Silent, Slot};
use crate::service::jobs::{self, JobPlan, Published};
use crate::service::queue::{JobMessage, Queue, QueueError};

/// Why one attempt at a job failed, in words for the author and the operator.
#[derive(Debug, thiserror::Error)]
pub(super) enum JobFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("unreadable job message on {subject}: {source}")]
    Unreadable {
        subject: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("gave up after {attempts} attempts: the workers handling it stopped before finishing (crashed, killed or out of memory)")]
    Vanished { attempts: i64 },
    #[error("job {job}: no plan in the store")]
    NoPlan { job: String },
    #[error("{path}: not rendered yet")]
    NotRendered { path: String },
    #[error("cannot create a work directory: {0}")]
    Workdir(#[source] std::io::Error),
    #[error("{path}: fetching the source {key}: {source}")]
    Fetch {
        path: String,
        key: String,
        #[source]
        source: FetchError,
    },
    /// An ingest step failed on fetched copies of the sources: told with
    /// the assets' module paths, never the worker's temporary files.
    #[error("{}", told(.source, .fetched, .asset.as_deref()))]
    Ingest {
        #[source]
        source: Box<IngestError>,
        /// The fetched copies' local files and the module paths they stand for.
        fetched: Vec<(PathBuf, String)>,
        /// The asset the job was about, which the message names in any case.
        asset: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

impl JobFailure {
    fn ingest(source: IngestError, fetched: Vec<(PathBuf, String)>, asset: Option<&str>) -> Self {
        Self::Ingest {
            source: Box::new(source),
            fetched,
            asset: asset.map(str::to_owned),
        }
    }
}

/// An ingest error's text with each fetched copy's file replaced by its
/// module path; prefixed with `asset` when it named none of them.
fn told(error: &IngestError, fetched: &[(PathBuf, String)], asset: Option<&str>) -> String {
    let mut text = error.to_string();
    let mut named = false;
    for (file, path) in fetched {
        let file = file.display().to_string();
        if text.contains(&file) {
            text = text.replace(&file, path);
            named = true;
        }
    }
    match asset {
        Some(path) if !named => format!("{path}: {text}"),
        _ => text,
    }
}

async fn plan(store: &Store, job: &str) -> Result<JobPlan, JobFailure> {
    jobs::get_json::<JobPlan>(store, &jobs::plan_key(job))
        .await?
        .ok_or_else(|| JobFailure::NoPlan { job: job.into() })
}

/// The module path of the asset a job is about, for its dead letter.
pub(super) async fn asset_path(store: &Store, job: &JobMessage) -> Option<String> {
    let JobMessage::Asset { job, asset } = job else {
        return None;
    };
    let plan = plan(store, job).await.ok()?;
    plan.assets.get(*asset).map(|a| a.path.clone())
}

/// Renders one asset unless a previous attempt already stored its result,
/// then queues the module's finish if it was the last one.
pub(super) async fn asset(
    store: &Store,
    queue: &Queue,
    job: &str,
    i: usize,
    progress: Arc<dyn Progress>,
) -> Result<(), JobFailure> {
    let plan = plan(store, job).await?;
    let key = jobs::asset_key(job, i);
    if !jobs::exists(store, &key).await? {
        let workdir = workdir()?;
        let src = fetch_source(store, &plan, i, workdir.path()).await?;
        let ctx = Context::open(&plan.profile, store, &plan.module.id, progress).await?;
        let out = render_asset(&ctx, &src, None).await.map_err(|e| {
            let fetched = vec![(src.file.clone(), src.path.clone())];
            JobFailure::ingest(e, fetched, Some(&src.path))
        })?;
        jobs::put_json(store, &key, &out.asset).await?;
    }
    let done = jobs::list(store, &jobs::assets_prefix(job)).await?;
    if plan
        .queued_assets()
        .all(|a| done.contains(&format!("{a}.json")))
    {
        // Every worker that sees the module complete queues its finish;
        // the message id makes that one message.
        queue
            .enqueue(&JobMessage::Finalize { job: job.into() })
            .await?;
    }
    Ok(())
}

/// Renders the pages and publishes the manifest, unless already done.
pub(super) async fn finalize(store: &Store, queue: &Queue, job: &str) -> Result<(), JobFailure> {
    if jobs::exists(store, &jobs::published_key(job)).await? {
        return Ok(());
    }
    let plan = plan(store, job).await?;
    let workdir = workdir()?;
    let slots = slots(store, job, &plan, workdir.path()).await?;
    let fetched = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Page(src) => Some((src.file.clone(), src.path.clone())),
            Slot::Done(_) => None,
        })
        .collect();
    let ctx = Context::open(&plan.profile, store, &plan.module.id, Arc::new(Silent)).await?;
    let finished = publish_module(&ctx, &plan.module, slots)
        .await
        .map_err(|e| JobFailure::ingest(e, fetched, None))?;
    let published = Published {
        manifest: plan.module.id.manifest_key(),
        written: finished.published,
    };
    jobs::put_json(store, &jobs::published_key(job), &published).await?;
    if finished.published {
        tracing::info!(job, module = %plan.module.id, "manifest published");
        queue.announce_published(job, plan.module.id.as_str()).await;
    }
    Ok(())
}

/// The module's assets as the last step takes them: the rendered ones'
/// entries from the store, and the pages fetched into `dir`.
async fn slots(
    store: &Store,
    job: &str,
    plan: &JobPlan,
    dir: &Path,
) -> Result<Vec<Slot>, JobFailure> {
    let mut slots = Vec::with_capacity(plan.assets.len());
    for (i, planned) in plan.assets.iter().enumerate() {
        slots.push(if planned.kind == AssetKind::Page {
            Slot::Page(fetch_source(store, plan, i, dir).await?)
        } else {
            let key = jobs::asset_key(job, i);
            let entry = jobs::get_json::<Asset>(store, &key).await?;
            Slot::Done(entry.ok_or_else(|| JobFailure::NotRendered {
                path: planned.path.clone(),
            })?)
        });
    }
    Ok(slots)
}

/// Copies asset `i`'s uploaded source out of the store into `dir`.
async fn fetch_source(
    store: &Store,
    plan: &JobPlan,
    i: usize,
    dir: &Path,
) -> Result<SourceAsset, JobFailure> {
    let planned = &plan.assets[i];
    let name = planned.path.rsplit('/').next().unwrap_or("source");
    let file = dir.join(i.to_string()).join(name);
    let key = jobs::source_key(&planned.source);
    let head = copy_out(store, &key, &file)
        .await
        .map_err(|source| JobFailure::Fetch {
            path: planned.path.clone(),
            key,
            source,
        })?;
    Ok(SourceAsset::with_head(
        planned.path.clone(),
        file,
        planned.bytes,
        &head,
    ))
}

/// Streams an object into a new local file; returns its first bytes, for
/// telling what the file is.
async fn copy_out(store: &Store, key: &str, file: &Path) -> Result<Vec<u8>, FetchError> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let got = store.inner().get(&StorePath::from(key)).await?;
    let mut out = tokio::fs::File::create(file).await?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut chunks = got.into_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let room = SNIFF_BYTES - head.len();
        head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(head)
}

fn workdir() -> Result<tempfile::TempDir, JobFailure> {
    tempfile::Builder::new()
        .prefix("lowband-job-")
        .tempdir()
        .map_err(JobFailure::Workdir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_module_paths_not_the_workers_files() {
        let local = PathBuf::from("/var/tmp/lowband-job-x1/3/bad.mp4");
        let fetched = vec![(local.clone(), "lessons/bad.mp4".to_owned())];
        let empty = IngestError::Empty { file: local };
        assert_eq!(
            told(&empty, &fetched, Some("lessons/bad.mp4")),
            "lessons/bad.mp4: the file is empty"
        );
        // A failure that names no file still says which asset it was about.
        let elsewhere = IngestError::NoRenditions {
            file: PathBuf::from("/elsewhere"),
        };
        assert_eq!(
            told(&elsewhere, &fetched, Some("lessons/bad.mp4")),
            "lessons/bad.mp4: /elsewhere: produced no renditions"
        );
        assert_eq!(
            told(&elsewhere, &fetched, None),
            "/elsewhere: produced no renditions"
        );
    }
}
