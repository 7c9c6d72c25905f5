//! A queue worker: takes one job at a time from the shared consumer and runs
//! the same per-asset step as `lowband-pipeline ingest` ([`process_asset`]),
//! or, for the module's last message, [`finish_module`].
//!
//! A job is acknowledged only once its outputs are in the store. While it
//! works, the worker sends progress acks (so a long transcode keeps its job)
//! and writes its progress to the store (so the API can show it). A failed
//! attempt is handed back with a growing delay; after the last attempt
//! allowed the job goes to the dead-letter subject with its error. A worker
//! that dies says nothing: its job comes back to another worker after the ack
//! wait, and every step is repeatable (content-addressed objects, whole-object
//! state writes, deduplicated messages), so the module still completes and
//! its manifest is written once in effect.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::Acker;
use async_nats::jetstream::AckKind;
use futures::StreamExt;
use lowband_catalog::manifest::Asset;
use lowband_catalog::{Store, StoreError};
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::discover::{self, SourceAsset};
use crate::ingest::{finish_module, previous_manifest, process_asset, Progress};
use crate::service::jobs::{self, AssetProgress, JobPlan, ProgressState, Published};
use crate::service::queue::{DeadLetter, JobMessage, Queue, QueueError};

/// How a worker treats its jobs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Silence after which the server hands a job to another worker.
    pub ack_wait: Duration,
    /// Attempts before a job goes to the dead-letter subject.
    pub max_attempts: i64,
    /// Delay before the second attempt; doubled for each further one (≤ 10 min).
    pub retry_backoff: Duration,
    /// How this worker names itself in progress and dead letters.
    pub id: String,
}

impl WorkerOptions {
    /// `host:pid`, unique among the workers of a cluster.
    pub fn default_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}:{}", std::process::id())
    }

    fn backoff(&self, attempt: i64) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        self.retry_backoff
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(600))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Why one attempt at a job failed, in words for the author and the operator.
#[derive(Debug)]
struct JobFailure(String);

impl From<StoreError> for JobFailure {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<QueueError> for JobFailure {
    fn from(e: QueueError) -> Self {
        Self(e.to_string())
    }
}

/// Runs until `stop` turns true (or its sender goes away). A job in hand
/// when that happens is handed back at once (`Nak` without delay), so another
/// worker takes it without waiting out the ack wait.
pub async fn run(
    store: Store,
    queue: Queue,
    options: WorkerOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let consumer = queue.consumer(options.ack_wait).await?;
    let worker = Worker {
        store,
        queue,
        options,
        unrecorded: std::sync::Mutex::new(std::collections::HashMap::new()),
    };
    tracing::info!(worker = %worker.options.id, "waiting for jobs");
    while !*stop.borrow() {
        // One message at a time: a worker never holds a job it is not working on.
        let batch = tokio::select! {
            b = consumer.batch().max_messages(1).expires(Duration::from_secs(10)).messages() => b,
            _ = stop.changed() => break,
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "could not ask for a job; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        // A stop seen inside `handle` is not seen again by `changed`: check it.
        while !*stop.borrow() {
            let message = tokio::select! {
                m = batch.next() => m,
                _ = stop.changed() => break,
            };
            match message {
                None => break,
                Some(Ok(m)) => worker.handle(m, &mut stop).await,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "could not receive a job; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    tracing::info!(worker = %worker.options.id, "stopped");
    Ok(())
}

struct Worker {
    store: Store,
    queue: Queue,
    options: WorkerOptions,
    /// Why jobs failed for good when the store would not take the record:
    /// the job was handed back, and when it returns past its attempts this
    /// is the reason recorded, not "the workers handling it stopped".
    unrecorded: std::sync::Mutex<std::collections::HashMap<JobMessage, String>>,
}

/// Tries at recording a job's state before handing the job back instead.
const RECORD_ATTEMPTS: u32 = 3;

impl Worker {
    async fn handle(
        &self,
        message: async_nats::jetstream::Message,
        stop: &mut watch::Receiver<bool>,
    ) {
        let attempt = message.info().map_or(1, |i| i.delivered);
        let (message, acker) = message.split();
        let acker = Arc::new(acker);
        let job: JobMessage = match serde_json::from_slice(&message.payload) {
            Ok(j) => j,
            Err(e) => {
                let error = format!("unreadable job message on {}: {e}", message.subject);
                self.give_up(None, None, error, attempt, &acker).await;
                return;
            }
        };
        let path = self.asset_path(&job).await;
        if attempt > self.options.max_attempts {
            let remembered = self.unrecorded.lock().ok().and_then(|mut m| m.remove(&job));
            let error = remembered.unwrap_or_else(|| {
                format!(
                    "gave up after {} attempts: the workers handling it stopped before finishing (crashed, killed or out of memory)",
                    attempt - 1
                )
            });
            self.give_up(Some(job), path, error, attempt - 1, &acker)
                .await;
            return;
        }
        tracing::info!(worker = %self.options.id, ?job, attempt, "job started");

        let (fraction, watched) = watch::channel(0.0);
        let progress = match &job {
            JobMessage::Asset { job, asset } => Some((jobs::progress_key(job, *asset), attempt)),
            JobMessage::Finalize { .. } => None,
        };
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&acker),
            self.store.clone(),
            progress.map(|(key, attempt)| {
                (
                    key,
                    self.progress(ProgressState::Running, 0.0, attempt, None),
                )
            }),
            watched,
            self.options.ack_wait,
        ));
        let work = async {
            match &job {
                JobMessage::Asset { job, asset } => self.asset(job, *asset, fraction).await,
                JobMessage::Finalize { job } => self.finalize(job).await,
            }
        };
        let result = tokio::select! {
            r = work => Some(r),
            _ = stop.changed() => None,
        };
        heartbeat.abort();
        let _ = heartbeat.await;
        let Some(result) = result else {
            tracing::info!(worker = %self.options.id, ?job, "stopping; job handed back");
            let _ = acker.ack_with(AckKind::Nak(None)).await;
            return;
        };

        match result {
            Ok(()) => {
                tracing::info!(worker = %self.options.id, ?job, "job done");
                for _ in 0..3 {
                    match acker.double_ack().await {
                        Ok(()) => return,
                        Err(e) => tracing::warn!(?job, error = %e, "ack not confirmed; retrying"),
                    }
                }
                // Unacknowledged, the job comes back; its outputs are found and it ends at once.
            }
            Err(JobFailure(error)) if attempt < self.options.max_attempts => {
                let delay = self.options.backoff(attempt);
                tracing::warn!(worker = %self.options.id, ?job, attempt, ?delay, %error, "job failed; will retry");
                if let JobMessage::Asset { job, asset } = &job {
                    let p = self.progress(ProgressState::Retrying, 0.0, attempt, Some(error));
                    // Not fatal when it fails: the job comes back and is recorded then.
                    self.record(&jobs::progress_key(job, *asset), &p).await;
                }
                if let Err(e) = acker.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak not sent; the job comes back after the ack wait");
                }
            }
            Err(JobFailure(error)) => self.give_up(Some(job), path, error, attempt, &acker).await,
        }
    }

    /// Sends a job to the dead-letter subject, records why, and takes it off the queue.
    async fn give_up(
        &self,
        job: Option<JobMessage>,
        path: Option<String>,
        error: String,
        attempts: i64,
        acker: &Acker,
    ) {
        tracing::error!(worker = %self.options.id, ?job, attempts, %error, "job failed for good; dead-lettering");
        // The failure is recorded where the upload API reads the job's
        // state before the job leaves the queue: a job whose failure could
        // not be recorded is handed back rather than left showing
        // "running" forever.
        let recorded = match &job {
            Some(JobMessage::Asset { job, asset }) => {
                let p = self.progress(ProgressState::Failed, 0.0, attempts, Some(error.clone()));
                self.record(&jobs::progress_key(job, *asset), &p).await
            }
            Some(JobMessage::Finalize { job }) => self.record(&jobs::failed_key(job), &error).await,
            None => true,
        };
        if !recorded {
            tracing::error!(
                ?job,
                "could not record the failure in the store; handing the job back"
            );
            if let (Some(job), Ok(mut remembered)) = (&job, self.unrecorded.lock()) {
                remembered.insert(job.clone(), error);
            }
            if let Err(e) = acker
                .ack_with(AckKind::Nak(Some(self.options.retry_backoff)))
                .await
            {
                tracing::warn!(error = %e, "nak not sent; the job comes back after the ack wait");
            }
            return;
        }
        let letter = DeadLetter {
            message: job.clone(),
            path,
            error: error.clone(),
            attempts,
            worker: self.options.id.clone(),
        };
        let job_id = job.as_ref().map_or("unreadable", |j| j.job());
        if let Err(e) = self.queue.dead_letter(job_id, &letter).await {
            // Keep the job: better tried again than lost without a trace.
            tracing::error!(error = %e, "could not dead-letter the job; handing it back");
            let _ = acker
                .ack_with(AckKind::Nak(Some(self.options.retry_backoff)))
                .await;
            return;
        }
        if let Err(e) = acker.double_ack().await {
            // Recorded and dead-lettered already: a job that comes back
            // is past its attempts and ends in the same place.
            tracing::warn!(?job, error = %e, "ack of a dead-lettered job not confirmed");
        }
    }

    /// Writes a job's state to the store, trying three times; false when
    /// every try failed (each is logged).
    async fn record<T: serde::Serialize + Sync>(&self, key: &str, value: &T) -> bool {
        for attempt in 1..=RECORD_ATTEMPTS {
            match jobs::put_json(&self.store, key, value).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(key, attempt, error = %e, "could not record the job's state");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        false
    }

    fn progress(
        &self,
        state: ProgressState,
        fraction: f64,
        attempt: i64,
        error: Option<String>,
    ) -> AssetProgress {
        AssetProgress {
            state,
            fraction,
            worker: self.options.id.clone(),
            pid: std::process::id(),
            attempt,
            error,
        }
    }

    async fn plan(&self, job: &str) -> Result<JobPlan, JobFailure> {
        jobs::get_json::<JobPlan>(&self.store, &jobs::plan_key(job))
            .await?
            .ok_or_else(|| JobFailure(format!("job {job}: no plan in the store")))
    }

    async fn asset_path(&self, job: &JobMessage) -> Option<String> {
        let JobMessage::Asset { job, asset } = job else {
            return None;
        };
        let plan = self.plan(job).await.ok()?;
        plan.assets.get(*asset).map(|a| a.path.clone())
    }

    /// Renders one asset unless a previous attempt already stored its result,
    /// then queues the module's finish if it was the last one.
    async fn asset(
        &self,
        job: &str,
        i: usize,
        fraction: watch::Sender<f64>,
    ) -> Result<(), JobFailure> {
        let plan = self.plan(job).await?;
        let key = jobs::asset_key(job, i);
        if !jobs::exists(&self.store, &key).await? {
            let workdir = workdir()?;
            let src = self.fetch_source(&plan, i, workdir.path()).await?;
            let previous = previous_manifest(&self.store, &plan.module.id)
                .await
                .map_err(|e| JobFailure(e.to_string()))?;
            let progress: Arc<dyn Progress> = Arc::new(Fraction(fraction));
            let out = process_asset(
                &src,
                &plan.profile,
                &self.store,
                previous.as_ref(),
                None,
                &progress,
            )
            .await
            .map_err(|e| JobFailure(named(&e.to_string(), &src)))?;
            jobs::put_json(&self.store, &key, &out.asset).await?;
        }
        let done = jobs::list(&self.store, &jobs::assets_prefix(job)).await?;
        if plan
            .queued_assets()
            .all(|a| done.contains(&format!("{a}.json")))
        {
            // Every worker that sees the module complete queues its finish;
            // the message id makes that one message.
            self.queue
                .enqueue(&JobMessage::Finalize { job: job.into() })
                .await?;
        }
        Ok(())
    }

    /// Renders the pages and publishes the manifest, unless already done.
    async fn finalize(&self, job: &str) -> Result<(), JobFailure> {
        if jobs::exists(&self.store, &jobs::published_key(job)).await? {
            return Ok(());
        }
        let plan = self.plan(job).await?;
        let workdir = workdir()?;
        let mut done: Vec<Option<Asset>> = vec![None; plan.assets.len()];
        for i in plan.queued_assets() {
            done[i] = Some(
                jobs::get_json::<Asset>(&self.store, &jobs::asset_key(job, i))
                    .await?
                    .ok_or_else(|| {
                        JobFailure(format!("{}: not rendered yet", plan.assets[i].path))
                    })?,
            );
        }
        let mut sources = Vec::with_capacity(plan.assets.len());
        for (i, rendered) in done.iter().enumerate() {
            // Only the pages are read again; the rest is already rendered.
            sources.push(match rendered {
                None => self.fetch_source(&plan, i, workdir.path()).await?,
                Some(_) => source_asset(&plan, i, workdir.path().join("unused")),
            });
        }
        let previous = previous_manifest(&self.store, &plan.module.id)
            .await
            .map_err(|e| JobFailure(e.to_string()))?;
        let silent: Arc<dyn Progress> = Arc::new(crate::ingest::Silent);
        let finished = finish_module(
            &plan.module,
            &sources,
            done,
            &plan.profile,
            &self.store,
            previous.as_ref(),
            &silent,
        )
        .await
        .map_err(|e| {
            let text = e.to_string();
            let named = sources
                .iter()
                .find(|src| text.contains(&src.file.display().to_string()));
            JobFailure(match named {
                Some(src) => self::named(&text, src),
                None => text,
            })
        })?;
        let published = Published {
            manifest: plan.module.id.manifest_key(),
            written: finished.published,
        };
        jobs::put_json(&self.store, &jobs::published_key(job), &published).await?;
        if finished.published {
            tracing::info!(job, module = %plan.module.id, "manifest published");
            self.queue
                .announce_published(job, plan.module.id.as_str())
                .await;
        }
        Ok(())
    }

    /// Copies asset `i`'s uploaded source out of the store into `dir`.
    async fn fetch_source(
        &self,
        plan: &JobPlan,
        i: usize,
        dir: &Path,
    ) -> Result<SourceAsset, JobFailure> {
        let planned = &plan.assets[i];
        let name = planned.path.rsplit('/').next().unwrap_or("source");
        let slot = dir.join(i.to_string());
        let file = slot.join(name);
        let key = jobs::source_key(&planned.source);
        let fail =
            |e: String| JobFailure(format!("{}: fetching the source {key}: {e}", planned.path));
        tokio::fs::create_dir_all(&slot)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let got = self
            .store
            .inner()
            .get(&StorePath::from(key.as_str()))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut out = tokio::fs::File::create(&file)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            out.write_all(&chunk)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        out.flush().await.map_err(|e| fail(e.to_string()))?;
        Ok(source_asset(plan, i, file))
    }
}

fn source_asset(plan: &JobPlan, i: usize, file: PathBuf) -> SourceAsset {
    let planned = &plan.assets[i];
    let (kind, mime, ext) = discover::classify(&planned.path);
    SourceAsset {
        path: planned.path.clone(),
        file,
        kind,
        mime,
        ext,
        bytes: planned.bytes,
    }
}

/// An error about a fetched copy, told with the asset's logical path.
fn named(error: &str, src: &SourceAsset) -> String {
    let file = src.file.display().to_string();
    if error.contains(&file) {
        error.replace(&file, &src.path)
    } else {
        format!("{}: {error}", src.path)
    }
}

fn workdir() -> Result<tempfile::TempDir, JobFailure> {
    tempfile::Builder::new()
        .prefix("lowband-job-")
        .tempdir()
        .map_err(|e| JobFailure(format!("cannot create a work directory: {e}")))
}

/// Progress hooks that feed the heartbeat.
struct Fraction(watch::Sender<f64>);

impl Progress for Fraction {
    fn asset_progress(&self, _path: &str, fraction: f64) {
        self.0.send_replace(fraction);
    }
}

/// While a job runs: a progress ack every third of the ack wait, and the
/// asset's progress in the store when it moved (at most once a second).
async fn heartbeat(
    acker: Arc<Acker>,
    store: Store,
    progress: Option<(String, AssetProgress)>,
    mut fraction: watch::Receiver<f64>,
    ack_wait: Duration,
) {
    let ack_every = ack_wait / 3;
    let tick = ack_every.clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut last_ack = Instant::now();
    let mut written: Option<f64> = None;
    loop {
        if let Some((key, base)) = &progress {
            let f = *fraction.borrow_and_update();
            if written != Some(f) {
                let p = AssetProgress {
                    fraction: f,
                    ..base.clone()
                };
                if jobs::put_json(&store, key, &p).await.is_ok() {
                    written = Some(f);
                }
            }
        }
        if last_ack.elapsed() >= ack_every {
            if let Err(e) = acker.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "progress ack not sent");
            }
            last_ack = Instant::now();
        }
        tokio::time::sleep(tick).await;
    }
}
