//! A job's state, kept in the object store under `incoming/` so that the API
//! and every worker see the same thing without talking to each other.
//!
//! ```text
//! incoming/sources/<sha256>               an uploaded source file, content-addressed
//! incoming/jobs/<job>/plan.json           the module, its profile and its assets
//! incoming/jobs/<job>/assets/<i>.json     asset i's manifest entry, once rendered
//! incoming/jobs/<job>/progress/<i>.json   asset i's latest progress or failure
//! incoming/jobs/<job>/published.json      written after the manifest is
//! ```
//!
//! Every write is a whole-object put of something that is the same whoever
//! writes it, so a job redelivered to a second worker can only repeat work,
//! never corrupt it. The job id is a digest of the module, the archive and
//! the profile: uploading the same archive again names the same job.

use bytes::Bytes;
use futures::TryStreamExt;
use lowband_catalog::manifest::{AssetKind, ModuleInfo};
use lowband_catalog::{ContentHash, Profile, Store, StoreError};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::discover::Skipped;

pub const INCOMING: &str = "incoming";

/// The store key of an uploaded source with this hash.
pub fn source_key(hash: &ContentHash) -> String {
    format!("{INCOMING}/sources/{hash}")
}

/// A job id: 32 lowercase hex digits.
pub fn job_id(module: &ModuleInfo, archive: &ContentHash, profile: &Profile) -> String {
    let profile = serde_json::to_string(profile).unwrap_or_default();
    let text = format!("{}\n{archive}\n{profile}", module.id);
    ContentHash::of(text.as_bytes()).to_hex()[..32].to_owned()
}

/// Whether `s` can be a job id (checked before it goes into a key).
pub fn valid_job_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn job_key(job: &str, rest: &str) -> String {
    format!("{INCOMING}/jobs/{job}/{rest}")
}

pub fn plan_key(job: &str) -> String {
    job_key(job, "plan.json")
}

pub fn asset_key(job: &str, i: usize) -> String {
    job_key(job, &format!("assets/{i}.json"))
}

pub fn progress_key(job: &str, i: usize) -> String {
    job_key(job, &format!("progress/{i}.json"))
}

pub fn published_key(job: &str) -> String {
    job_key(job, "published.json")
}

/// The error (a JSON string) of a finish that failed for good.
pub fn failed_key(job: &str) -> String {
    job_key(job, "failed.json")
}

/// The prefix under which rendered assets' entries are kept.
pub fn assets_prefix(job: &str) -> String {
    job_key(job, "assets/")
}

/// What a job is to do: everything a worker needs besides the sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPlan {
    pub job: String,
    pub module: ModuleInfo,
    pub profile: Profile,
    pub assets: Vec<PlannedAsset>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

impl JobPlan {
    /// Assets handed to workers one by one: all but the pages, which are
    /// rendered with the manifest once the rest is done.
    pub fn queued_assets(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.assets.len()).filter(|&i| self.assets[i].kind != AssetKind::Page)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedAsset {
    pub path: String,
    pub kind: AssetKind,
    pub bytes: u64,
    pub source: ContentHash,
}

/// An asset's latest progress, as its worker last wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssetProgress {
    pub state: ProgressState,
    /// Fraction (0-1) of the source decoded, for videos and audio.
    pub fraction: f64,
    /// `host:pid` of the worker.
    pub worker: String,
    pub pid: u32,
    /// Delivery attempt, from 1.
    pub attempt: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressState {
    Running,
    /// Failed on this attempt; will be tried again after a backoff.
    Retrying,
    /// Failed on the last attempt allowed; the job is on the dead-letter subject.
    Failed,
}

/// Written once the module's manifest is in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub manifest: String,
    /// False when the manifest was unchanged and not written again.
    pub written: bool,
}

/// What `GET /api/v1/jobs/<id>` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    pub job: String,
    pub module: String,
    pub state: JobState,
    pub assets: Vec<AssetStatus>,
    /// The manifest's key once published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Why the module could not be finished, when it failed after its assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssetStatus {
    pub path: String,
    pub kind: AssetKind,
    pub state: JobState,
    pub fraction: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads a job's state from the store; `None` if there is no such job.
pub async fn status(store: &Store, job: &str) -> Result<Option<JobStatus>, StoreError> {
    let Some(plan) = get_json::<JobPlan>(store, &plan_key(job)).await? else {
        return Ok(None);
    };
    let published = get_json::<Published>(store, &published_key(job)).await?;
    let failed = get_json::<String>(store, &failed_key(job)).await?;
    let done = list(store, &assets_prefix(job)).await?;
    let mut assets = Vec::with_capacity(plan.assets.len());
    for (i, a) in plan.assets.iter().enumerate() {
        let is_done = published.is_some() || done.contains(&format!("{i}.json"));
        let progress = if is_done {
            None
        } else {
            get_json::<AssetProgress>(store, &progress_key(job, i)).await?
        };
        let state = match (&progress, is_done) {
            (_, true) => JobState::Done,
            (Some(p), _) if p.state == ProgressState::Failed => JobState::Failed,
            (Some(_), _) => JobState::Running,
            (None, _) => JobState::Queued,
        };
        assets.push(AssetStatus {
            path: a.path.clone(),
            kind: a.kind,
            state,
            fraction: if is_done {
                1.0
            } else {
                progress.as_ref().map_or(0.0, |p| p.fraction)
            },
            worker: progress.as_ref().map(|p| p.worker.clone()),
            pid: progress.as_ref().map(|p| p.pid),
            error: progress.and_then(|p| p.error),
        });
    }
    let state = if published.is_some() {
        JobState::Done
    } else if failed.is_some() || assets.iter().any(|a| a.state == JobState::Failed) {
        JobState::Failed
    } else if assets.iter().any(|a| a.state != JobState::Queued) {
        JobState::Running
    } else {
        JobState::Queued
    };
    Ok(Some(JobStatus {
        job: plan.job,
        module: plan.module.id.to_string(),
        state,
        assets,
        manifest: published.map(|p| p.manifest),
        error: failed,
    }))
}

fn io_error(store: &Store, key: &str, source: object_store::Error) -> StoreError {
    StoreError::Io {
        store: store.url().to_owned(),
        key: key.to_owned(),
        source,
    }
}

pub async fn put_json<T: Serialize>(store: &Store, key: &str, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    put_bytes(store, key, Bytes::from(bytes)).await
}

pub async fn put_bytes(store: &Store, key: &str, bytes: Bytes) -> Result<(), StoreError> {
    store
        .inner()
        .put(&Path::from(key), PutPayload::from(bytes))
        .await
        .map_err(|e| io_error(store, key, e))?;
    Ok(())
}

/// A JSON object, `None` if absent; a damaged one is an error naming its key.
pub async fn get_json<T: DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let Some(bytes) = store.get_bytes(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        io_error(
            store,
            key,
            object_store::Error::Generic {
                store: "json",
                source: Box::new(e),
            },
        )
    })
}

pub async fn exists(store: &Store, key: &str) -> Result<bool, StoreError> {
    match store.inner().head(&Path::from(key)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(io_error(store, key, e)),
    }
}

/// The names (last path segment) of the objects directly under `prefix`.
pub async fn list(store: &Store, prefix: &str) -> Result<Vec<String>, StoreError> {
    let path = Path::from(prefix.trim_end_matches('/'));
    let metas: Vec<_> = store
        .inner()
        .list(Some(&path))
        .try_collect()
        .await
        .map_err(|e| io_error(store, prefix, e))?;
    Ok(metas
        .into_iter()
        .filter_map(|m| m.location.filename().map(str::to_owned))
        .collect())
}

pub async fn delete(store: &Store, key: &str) -> Result<(), StoreError> {
    match store.inner().delete(&Path::from(key)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(io_error(store, key, e)),
    }
}
